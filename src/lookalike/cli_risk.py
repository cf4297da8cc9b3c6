"""`lookalike risk score|case|cases|decide|train`: fraud risk of loan applications (mounted by cli.py)."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lookalike.errors import LookalikeError
from lookalike.progress import bars, console

risk_app = typer.Typer(help="Fraud risk of loan applications: photo background, devices, wall text, cases.",
                       no_args_is_help=True, add_completion=False)

IndexOpt = typer.Option(None, "--index", help="Index directory (default .lookalike, env LOOKALIKE_INDEX).")


class Fmt(str, Enum):
    csv = "csv"
    json = "json"
    html = "html"


def _fail(msg: str, code: int = 2):
    console.print(f"[red]error:[/] {escape(msg)}", soft_wrap=True)
    raise typer.Exit(code)


def _engine(index: Optional[Path], b=None):
    from lookalike.api import Index
    from lookalike.risk import RiskEngine

    idx = Index.open(index, progress=b)
    return idx, RiskEngine(idx)


def _write(text: str, out: Optional[Path]) -> None:
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text)


@risk_app.command("score")
def score_cmd(applications: Path = typer.Argument(..., help="Applications CSV (format of shared/data/fraud/"
                                                  "applications.csv; photo paths relative to its folder)."),
              index: Optional[Path] = IndexOpt,
              fmt: Fmt = typer.Option(Fmt.csv, "--format", help="csv | json | html."),
              out: Optional[Path] = typer.Option(None, "-o", help="Write to this file instead of standard output.")):
    """Score applications in submitted_at order (new ones only; earlier runs are kept) and print
    application_id,risk,risk_at_submission,case,reasons. Bad rows: one line each on stderr, the run goes on."""
    if fmt == Fmt.html and not out:
        raise typer.BadParameter("--format html needs -o FILE.html")
    try:
        with bars() as b:
            idx, eng = _engine(index, b)
            try:
                results = eng.score_csv(applications, progress=b)
                skipped, rejected = eng.skipped, eng.rejected
            finally:
                eng.close()
                idx.close()
    except (LookalikeError, ValueError) as e:
        _fail(str(e))
    for app_id, reason in skipped:
        console.print(f"[yellow]{escape(app_id)}[/]: {escape(reason)}", soft_wrap=True)  # one line each
    if fmt == Fmt.json:
        _write(json.dumps([r.to_dict() for r in results], indent=1) + "\n", out)
    elif fmt == Fmt.html:
        from lookalike.risk.report import scored_html

        _write(scored_html(results), out)
    else:
        fh = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["application_id", "risk", "risk_at_submission", "case", "reasons"])
        for r in results:
            w.writerow([r.application_id, f"{r.risk:.4f}", f"{r.risk_at_submission:.4f}",
                        "" if r.case is None else r.case, r.reasons])
        if out:
            fh.close()
            console.print(f"wrote {out}")
    n_bad = len(rejected)
    console.print(f"scored {len(results)} applications, {sum(1 for r in results if r.case is not None)} in cases; "
                  f"{n_bad} rows skipped")
    if n_bad and not results:
        raise typer.Exit(1)


@risk_app.command("case")
def case_cmd(case_id: int = typer.Argument(..., help="Case id (see `lookalike risk cases`)."),
             index: Optional[Path] = IndexOpt,
             fmt: Fmt = typer.Option(Fmt.html, "--format", help="html | json."),
             out: Optional[Path] = typer.Option(None, "-o", help="Write to this file instead of standard output.")):
    """One case for review: members side by side (person masked), what links each pair, timeline, risks."""
    idx, eng = _engine(index)
    try:
        if fmt == Fmt.html:
            if not out:
                raise typer.BadParameter("--format html needs -o FILE.html")
            _write(eng.case_html(case_id), out)
        else:
            _write(json.dumps(eng.case(case_id), indent=1, default=str) + "\n", out)
    except LookalikeError as e:
        _fail(str(e), 1)
    finally:
        eng.close()
        idx.close()


@risk_app.command("cases")
def cases_cmd(index: Optional[Path] = IndexOpt):
    """Every case: id, size, distinct applicants, highest risk, time span (CSV)."""
    idx, eng = _engine(index)
    try:
        rows = eng.cases()
    finally:
        eng.close()
        idx.close()
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["case", "size", "applicants", "max_risk", "first", "last", "span_days"])
    for c in rows:
        w.writerow([c["case"], c["size"], c["applicants"], f"{c['max_risk']:.4f}", c["first"], c["last"], c["span_days"]])


@risk_app.command("decide")
def decide_cmd(application_id: str, label: str = typer.Argument(..., help="fraud | not_fraud"),
               index: Optional[Path] = IndexOpt):
    """Record an analyst's decision (used by `risk train` and by the known-fraud device signal)."""
    idx, eng = _engine(index)
    try:
        eng.decide(application_id, label)
    except (LookalikeError, ValueError) as e:
        _fail(str(e))
    finally:
        eng.close()
        idx.close()
    console.print(f"{application_id}: {label}")


@risk_app.command("train")
def train_cmd(labels: Path = typer.Argument(..., help="CSV: application_id,label (fraud|not_fraud) or the "
                                            "fraud set's labels.csv (kind)."),
              index: Optional[Path] = IndexOpt,
              save: Optional[bool] = typer.Option(None, "--save/--no-save", help="Store the logistic fusion "
                                                  "(default: only when it beats the defaults in cross-validation).")):
    """Fit the fusion on labelled applications; 5-fold cross-validation against the default weights."""
    from lookalike.risk.train import train

    idx, eng = _engine(index)
    try:
        res = train(eng, labels, save=save)
    except (LookalikeError, ValueError) as e:
        _fail(str(e))
    finally:
        eng.close()
        idx.close()
    from rich.table import Table

    t = Table(title=f"5-fold cross-validation: {res['labelled']} labelled applications, {res['fraud']} fraud")
    for c in ("fusion", "ROC-AUC", "AP", "recall at 1 % FPR", "recall at 5 % FPR"):
        t.add_column(c, justify="left" if c == "fusion" else "right")
    for m, f in res["cv"].items():
        t.add_row(m, f"{f['auc']:.3f}", f"{f['ap']:.3f}", f"{f['recall_0.01']:.3f}", f"{f['recall_0.05']:.3f}")
    console.print(t)
    console.print("logistic regression " + ("beats" if res["logistic_beats_defaults"] else "does NOT beat")
                  + " the default weights on every figure; " +
                  ("stored: `risk` now uses it." if res["saved"] else "defaults kept."))
