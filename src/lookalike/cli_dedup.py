"""`lookalike dedup --action`, `undo`, `decide`, `decisions`: acting on duplicate groups and remembering
what the user decided (registered on the main app by lookalike.cli)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from lookalike.cli_common import (Fmt, IndexOpt, OutOpt, aligned, check_out, emit, fail, fmt_opt, open_index,
                                  say_error)
from lookalike.progress import console


def act(idx, res, action: str, apply: bool, log: Optional[Path], fmt: Fmt, out: Optional[Path]) -> None:
    from lookalike.duplicates import execute, plan, write_plan

    rows = plan(res.groups, action)
    text = write_plan(rows, out, "json" if fmt == Fmt.json else "csv")
    if out is None and not apply:
        print(text, end="")
    if not apply:
        console.print(f"dry run: {len(rows)} files would be {rows[0]['action'] if rows else 'touched'}d "
                      f"({len(res.groups)} groups); add --apply to do it", highlight=False)
        return
    log = log or idx.dir / time.strftime("actions-%Y%m%d-%H%M%S.jsonl")
    done, failed = execute(rows, log)
    gone = [r["path"] for r in rows if r["action"] in ("move", "delete")]
    idx.remove([p for p in gone if not Path(p).exists()])
    console.print(f"done {done} of {len(rows)}; log: {log}" +
                  (f"; undo with `lookalike undo {log}`" if action.startswith("move") else ""), highlight=False)
    for path, reason in failed:
        say_error(f"{path}: {reason}")
    if failed:
        raise typer.Exit(1)


def undo(log: Path = typer.Argument(..., help="The log an `dedup --action move:DIR --apply` wrote.")):
    """Move files back where a `dedup --action move:DIR --apply` took them from (re-index them after)."""
    from lookalike.duplicates import undo as undo_moves

    if not log.is_file():
        fail(f"{log}: no such log file")
    restored, failed = undo_moves(log)
    console.print(f"restored {restored} files; run `lookalike index` on their folders to index them again",
                  highlight=False)
    for path, reason in failed:
        say_error(f"{path}: {reason}")
    if failed:
        raise typer.Exit(1)


VERDICT_NAMES = {"not-duplicates": "not_duplicates", "keep-all": "keep_all", "keep-one": "keep_one"}


def decide(verdict: str = typer.Argument(..., help="not-duplicates | keep-all | keep-one"),
           paths: List[str] = typer.Argument(..., help="The files the decision is about (two or more)."),
           keeper: Optional[str] = typer.Option(None, help="keep-one: the file to keep."),
           index: Optional[Path] = IndexOpt):
    """Remember a decision about duplicates: `dedup` never pairs not-duplicates again and leaves groups
    covered by keep-all/keep-one out (see `lookalike decisions`)."""
    v = VERDICT_NAMES.get(verdict, verdict)
    if v not in VERDICT_NAMES.values():
        fail(f"unknown verdict {verdict!r}; choose one of: {', '.join(VERDICT_NAMES)}")
    with open_index(index) as idx:
        did = idx.decide(paths, v, keeper=keeper)
    console.print(f"decision {did}: {verdict} ({len(paths)} files); undo with `lookalike decisions --undo {did}`",
                  highlight=False)


def decisions(undo_id: Optional[int] = typer.Option(None, "--undo", help="Forget this decision."),
              fmt: Fmt = fmt_opt(), out: Optional[Path] = OutOpt, index: Optional[Path] = IndexOpt):
    """The decisions about duplicates kept in the index."""
    check_out(out, fmt if fmt != Fmt.html else Fmt.table)
    with open_index(index) as idx:
        if undo_id is not None:
            idx.undo_decision(undo_id)
            console.print(f"forgot decision {undo_id}", highlight=False)
            return
        rows = idx.decisions()
    emit(fmt, out, data=rows, header=["id", "verdict", "members", "keeper", "created_at"],
         rows=[(d["id"], d["verdict"], "|".join(d["members"]), d["keeper"] or "", round(d["created_at"])) for d in rows],
         table=lambda: aligned([(d["id"], d["verdict"], ", ".join(d["members"]), d["keeper"] or "") for d in rows],
                               ["id", "verdict", "members", "keeper"]))
