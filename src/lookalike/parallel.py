"""Worker processes for CPU-bound work (decoding, hashing, digests): one pool idiom for the package.

Processes fork where that is safe: on Linux, while this process runs no other Python thread (one
could hold a lock the child then waits on forever, e.g. stderr's) and no library whose runtime state a
child could inherit half-made (onnxruntime or torch sessions and thread pools) has been loaded;
numpy's and OpenCV's idle native thread pools are fork-safe (they reset in the child). Workers then inherit
the imported modules instead of importing them again, which under spawn costs about a second of CPU
per worker. Everywhere else they spawn: every function passed here is a module-level function with
picklable arguments.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


FORK_UNSAFE = ("onnxruntime", "torch", "mediapipe", "dlib")


def pool_context():
    """fork where it is safe (see the module docstring), spawn elsewhere."""
    import multiprocessing  # here: a one-process run (e.g. `hash` on a few files) never loads it

    safe = (sys.platform.startswith("linux") and threading.active_count() == 1
            and not any(m in sys.modules for m in FORK_UNSAFE))
    return multiprocessing.get_context("fork" if safe else "spawn")


class WorkerDied(RuntimeError):
    """A worker process died (killed, out of memory, a crash in native code) while running a task."""


def imap(fn: Callable[[T], R], tasks: Iterable[T], *, workers: int, initializer: Callable | None = None,
         initargs: tuple = (), on_crash: Callable[[T], R] | None = None) -> Iterator[R]:
    """fn over tasks in order, in `workers` processes (inline, in this process, for one).

    A worker that dies does not hang the run (multiprocessing.Pool waits forever for its task): the
    tasks in flight then run again one at a time in a fresh process, and a task that kills that one too
    gets `on_crash(task)` as its result, or raises WorkerDied without `on_crash`. The others go on.
    """
    if workers <= 1:
        if initializer:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    todo = deque(enumerate(tasks))
    suspects: deque = deque()  # (i, task) in flight when a worker died: each is tried alone
    done: dict[int, R] = {}
    next_out = 0
    while todo or suspects:
        alone = bool(suspects)
        queue = suspects if alone else todo
        running: dict = {}
        culprit = None
        ctx = pool_context()
        with ProcessPoolExecutor(1 if alone else workers, mp_context=ctx, initializer=initializer,
                                 initargs=initargs) as pool:
            try:
                while queue or running:
                    while queue and len(running) < (1 if alone else 2 * workers):
                        i, task = queue.popleft()
                        with _main_script_hidden(ctx):  # spawned workers start on a submit
                            running[pool.submit(fn, task)] = (i, task)
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for f in finished:
                        done[running[f][0]] = f.result()  # raises BrokenProcessPool if its worker died
                        del running[f]
                    while next_out in done:
                        yield done.pop(next_out)
                        next_out += 1
            except BrokenProcessPool:
                if alone:  # this task killed a process of its own: it is the one
                    (culprit,) = running.values()
                else:
                    suspects.extend(sorted(running.values(), key=lambda it: it[0]))
        if culprit is not None:  # handled once the broken pool is gone (on_crash may start a pool)
            if on_crash is None:
                raise WorkerDied("a worker process died (killed, out of memory or crashed) on a task")
            done[culprit[0]] = on_crash(culprit[1])
        while next_out in done:
            yield done.pop(next_out)
            next_out += 1


@contextmanager
def _main_script_hidden(ctx):
    """Spawned workers must not re-run the caller's script: a plain script without
    `if __name__ == "__main__":` would index again in every worker and fail in a loop ("bootstrapping
    phase"). Workers only run this package's functions, so they need nothing from __main__; while
    they start, a script's path is hidden from multiprocessing (a module run with -m is left alone)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if ctx.get_start_method() == "fork" or main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path
