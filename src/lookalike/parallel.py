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

import multiprocessing as mp
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


FORK_UNSAFE = ("onnxruntime", "torch", "mediapipe", "dlib")


def pool_context():
    """fork where it is safe (see the module docstring), spawn elsewhere."""
    safe = (sys.platform.startswith("linux") and threading.active_count() == 1
            and not any(m in sys.modules for m in FORK_UNSAFE))
    return mp.get_context("fork" if safe else "spawn")


def imap(fn: Callable[[T], R], tasks: Iterable[T], *, workers: int, initializer: Callable | None = None,
         initargs: tuple = ()) -> Iterator[R]:
    """fn over tasks in order, in `workers` processes (inline, in this process, for one)."""
    if workers <= 1:
        if initializer:
            initializer(*initargs)
        yield from map(fn, tasks)
        return
    ctx = pool_context()
    with _main_script_hidden(ctx):
        pool = ctx.Pool(workers, initializer=initializer, initargs=initargs)
    with pool:
        yield from pool.imap(fn, tasks)


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
