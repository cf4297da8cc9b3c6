"""`lookalike eval copy|retrieval --data DIR`: score the engine on a ground-truth set (mounted by cli.py)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from lookalike.errors import LookalikeError
from lookalike.progress import bars, console

eval_app = typer.Typer(help="Score the engine on evaluation sets with ground truth (formats of shared/data).",
                       no_args_is_help=True, add_completion=False)

DataOpt = typer.Option(..., "--data", help="The set's folder (or the data tree holding it).",
                       exists=True, file_okay=False)
IndexOpt = typer.Option(None, "--index", help="Keep the index here (default: a temporary one).")
WorkersOpt = typer.Option(None, "--workers", help="Decoding processes (default: one per core).")


class Fmt(str, Enum):
    table = "table"
    json = "json"


def _show(result: dict, fmt: Fmt) -> None:
    if fmt == Fmt.json:
        print(json.dumps({k: v for k, v in result.items() if k != "tables"}, indent=1))
        return
    from rich.table import Table

    for title, columns, rows in result["tables"]:
        t = Table(title=title)
        for i, c in enumerate(columns):
            t.add_column(c, justify="left" if i == 0 else "right")
        for r in rows:
            t.add_row(*map(str, r))
        console.print(t)


def _run(name: str, fmt: Fmt, **kw) -> None:
    from lookalike.eval.run import EVALS

    try:
        with bars() as b:
            result = EVALS[name](progress=b, **kw)
    except (ValueError, FileNotFoundError, LookalikeError) as e:  # unknown mode, not a set folder: no traceback
        console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    except RuntimeError as e:  # a worker's missing model comes back wrapped
        if "models prepare" not in str(e):
            raise
        console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    _show(result, fmt)


@eval_app.command("copy")
def copy_cmd(data: Path = DataOpt,
             mode: str = typer.Option("copy", help="Mode whose dedup is scored."),
             threshold: Optional[float] = typer.Option(None, help="Score threshold (default: the mode's)."),
             index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
             fmt: Fmt = typer.Option(Fmt.table, "--format", help="table | csv | json.")):
    """Copy detection on a near_duplicate-format set: pairwise P/R/F1, AP, recall per transform."""
    _run("copy", fmt, data=data, mode=mode, threshold=threshold, index=index, workers=workers)


@eval_app.command("retrieval")
def retrieval_cmd(data: Path = DataOpt,
                  mode: str = typer.Option("similar", help="Mode used to rank."),
                  modes: Optional[str] = typer.Option(None, help="Several modes side by side, e.g. copy,similar."),
                  index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
                  fmt: Fmt = typer.Option(Fmt.table, "--format", help="table | csv | json.")):
    """Leave-one-out retrieval on a retrieval-format set: mAP and recall@1/5/10 per mode."""
    chosen = [m.strip() for m in (modes or mode).split(",") if m.strip()]
    _run("retrieval", fmt, data=data, modes=chosen, index=index, workers=workers)


@eval_app.command("background")
def background_cmd(data: Path = DataOpt, index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
                   fmt: Fmt = typer.Option(Fmt.table, "--format", help="table | csv | json."),
                   pair_head: str = typer.Option("index", help="Trained pair head (`train pairs`) in the global "
                                                 "component: on | off | index (the index's setting)."),
                   similar: bool = typer.Option(True, help="Also measure whole-image `similar` mode (baseline).")):
    """Same-background retrieval on a background-format set: mAP, recall@k, P/R at the default threshold,
    same-person/other-background false matches, person-mask IoU, side by side with `similar`."""
    from lookalike.eval.background import evaluate_background, table

    try:
        if pair_head not in ("on", "off", "index"):
            raise ValueError(f"--pair-head {pair_head!r}: choose on, off or index")
        result = evaluate_background(data, index, workers=workers, pair_head=pair_head, similar=similar)
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    if fmt == Fmt.json:
        print(json.dumps(result, indent=1, default=str))
    else:
        print(table(result))


@eval_app.command("cluster")
def cluster_cmd(data: Path = DataOpt,
                sets: str = typer.Option("faces,faces_large,background", help="Comma list: faces, faces_large, "
                                         "background, near_duplicate."),
                index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
                cache: Optional[Path] = typer.Option(None, help="Keep face embeddings here (reused next time)."),
                gcn: bool = typer.Option(True, help="Also cross-validate the learned refiner (trains; slower).")):
    """Clustering against ground truth: pairwise P/R/F, BCubed F and NMI, side by side with DBSCAN,
    Chinese whispers and k-means (true k), online assignment and its agreement with batch."""
    from lookalike.eval.cluster import evaluate_cluster, table

    try:
        res = evaluate_cluster(data, sets=[s.strip() for s in sets.split(",") if s.strip()], cache=cache,
                               index_dir=index, gcn=gcn, workers=workers or 1)
    except (ValueError, FileNotFoundError, LookalikeError) as e:
        console.print(f"[red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    print(table(res))


@eval_app.command("risk")
def risk_cmd(data: Path = DataOpt, index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
             walltext: Optional[bool] = typer.Option(None, "--walltext/--no-walltext",
                                                     help="Use the wall-text OCR (default: when installed)."),
             fmt: Fmt = typer.Option(Fmt.table, "--format", help="table | json.")):
    """Fraud risk on a fraud-format set: ring recall at 1 %/5 % legit FPR (all, clean-device members, rings
    with >= half above), ROC-AUC/AP, per-kind FP rates, later members by risk_at_submission, case pairwise
    P/R/F1 and false pairs by kind, OCR phone recall; whole set and each half of its rings/places."""
    _run("risk", fmt, data=data, index=index, workers=workers, walltext=walltext)


@eval_app.command("text")
def text_cmd(data: Path = DataOpt, index: Optional[Path] = IndexOpt, workers: Optional[int] = WorkersOpt,
             epochs: Optional[int] = typer.Option(None, help="Head training epochs (default: the trainer's)."),
             fmt: Fmt = typer.Option(Fmt.table, "--format", help="table | json.")):
    """Text -> image search on a captions-format set: Recall@1/5/10 and mAP per domain for the head trained on
    the train rows, beside the ridge and zero-shot anchors and random."""
    _run("text", fmt, data=data, index=index, workers=workers, epochs=epochs)
