"""Progress bars for long work (rich), shown on stderr so stdout stays machine-readable."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # messages stay one line each (no wrapping at 80 columns)


class Bars:
    """`bars(title)` returns a callback(done, total) drawing one bar per title."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        # redrawn on each update rather than by rich's refresh thread: worker processes may be forked
        # (lookalike.parallel), and a fork must not copy a thread that could hold the console's lock
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=False,
                                 auto_refresh=False) if self.enabled else None
        self.tasks: dict[str, int] = {}

    def __call__(self, title: str):
        def update(done: int, total: int) -> None:
            if not self.progress:
                return
            if title not in self.tasks:
                self.tasks[title] = self.progress.add_task(title, total=total)
            self.progress.update(self.tasks[title], completed=done, total=total, refresh=True)

        return update


@contextmanager
def bars(enabled: bool = True):
    b = Bars(enabled)
    if b.progress:
        with b.progress:
            yield b
    else:
        yield b
