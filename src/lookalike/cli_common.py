"""What every `lookalike` command shares: the root group that turns errors into one line and an exit
code, output to stdout or `-o FILE` in every format, and the common options.

Exit codes: 0 success; 1 the command ran but some inputs failed (each named on stderr); 2 bad input
or usage (nothing done); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 carries its own copy of click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click import ClickException

from lookalike.progress import console


class Fmt(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


IndexOpt = typer.Option(None, "--index", help="Index directory (default .lookalike, env LOOKALIKE_INDEX).")


def fmt_opt(default: Fmt = Fmt.table) -> Fmt:
    return typer.Option(default, "--format", help="table | csv | json | html (html needs -o).")


OutOpt = typer.Option(None, "-o", "--output", help="Write the output to this file instead of stdout (any --format).")


def say_error(message: str) -> None:
    """One line on stderr."""
    from rich.markup import escape

    console.print(f"[red]error:[/] {escape(' '.join(str(message).split()))}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2):
    say_error(message)
    raise typer.Exit(code)


class Root(TyperGroup):
    """The `lookalike` group: user errors from any command (or sub-command mounted below it) end as
    one line on stderr and a non-zero exit code, never a traceback. LOOKALIKE_DEBUG=1 re-raises."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name=prog_name or "lookalike", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except ClickException as e:
            where = f" (see `{e.ctx.command_path} --help`)" if getattr(e, "ctx", None) else ""
            say_error(e.format_message() + where)
            rv = e.exit_code
        except typer.Abort:
            rv = 1
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        from lookalike.errors import LookalikeError

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            what = ctx.invoked_subcommand
            resume = "; everything indexed so far is kept: run the same command again to resume" if what == "index" else ""
            console.print(f"interrupted{resume}", highlight=False)
            raise typer.Exit(130)
        except (LookalikeError, ValueError, OSError) as e:
            if os.environ.get("LOOKALIKE_DEBUG"):
                raise
            fail(str(e))


def check_out(out: Optional[Path], fmt: Fmt | None = None) -> None:
    """Before any work: -o goes to an existing folder; html needs -o."""
    if fmt == Fmt.html and not out:
        fail("--format html needs -o FILE.html")
    if out is not None:
        parent = Path(out).parent
        if not parent.is_dir():
            fail(f"cannot write -o {out}: the folder {parent} does not exist")
        if Path(out).is_dir():
            fail(f"cannot write -o {out}: it is a folder; give a file name")


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def emit(fmt: Fmt, out: Optional[Path], *, header=None, rows=None, data=None,
         table: Callable[[], str] | None = None, html: Callable[[], str] | None = None) -> None:
    """Print (or write to `out`) the output in `fmt`: csv from header+rows, json from data, table and
    html from their builders (strings). A format a command does not have falls back as documented:
    table -> csv, html -> needs a builder."""
    if fmt == Fmt.html:
        if html is None:
            fail("this command has no html output; use --format table, csv or json")
        text = html()
    elif fmt == Fmt.json:
        text = json.dumps(data, indent=1, default=str) + "\n"
    elif fmt == Fmt.table and table is not None:
        text = table()
    else:
        text = csv_text(header, rows)
    if out is not None:
        Path(out).write_text(text, encoding="utf-8")
        console.print(f"wrote {out}", highlight=False)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def aligned(rows: list[list[str]], header: list[str] | None = None) -> str:
    """A plain-text table (columns padded), for --format table."""
    rows = [list(map(str, r)) for r in rows]
    if header:
        rows = [header] + rows
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def open_index(index: Optional[Path], progress=None, *, create: bool = False):
    """The index; a command other than `index` never creates one (IndexMissing: one line, exit 2)."""
    from lookalike.api import Index  # imported here: `hash` and `--help` start without the engine

    return Index.open(index, progress=progress, create=create)
