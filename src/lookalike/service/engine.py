"""One writer and many readers on the index.

SQLite connections belong to the thread that opened them, so each reader thread opens its own
`Index` (its own read connection and in-memory caches) and one writer thread owns the `Index` that
every service write goes through: uploads, deletions, decisions, risk submissions and jobs run there
one at a time, in order. Readers see the catalog through WAL snapshots: a file row and its features
are committed together, so a request never sees a half-written file. Features a mode needs and the
index lacks are computed by the writer too (never by several readers at once).

The person-segmentation and face models run in interpreters that are not thread-safe, so work that
may run them (every write, background-mode and inspect reads) holds `models_lock`; hash, copy,
exact and similar searches (ONNX CNN, thread-safe) run side by side.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from fastapi import HTTPException

from lookalike.api import Index
from lookalike.features import registry
from lookalike.search.modes import get_mode
from lookalike.service.settings import Settings

T = TypeVar("T")


class Engine:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._local = threading.local()
        self._opened: list[Index] = []
        self._opened_lock = threading.Lock()
        self.readers = ThreadPoolExecutor(settings.readers, thread_name_prefix="lookalike-read")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="lookalike-write")
        self._ready: dict[str, tuple] = {}  # mode -> feature stamps at which it had every feature
        self.models_lock = threading.RLock()
        self.generation = 0  # bumped by every service write (caches of derived results compare it)

    def index(self) -> Index:
        """This thread's Index (opened on first use)."""
        idx = getattr(self._local, "index", None)
        if idx is None:
            idx = self._local.index = Index.open(self.settings.index)
            with self._opened_lock:
                self._opened.append(idx)
        return idx

    async def read(self, fn: Callable[[Index], T], *, models: bool = False) -> T:
        """Run `fn(index)` on a reader thread; models=True when it may run the non-thread-safe models."""
        if not models:
            return await self._run(self.readers, fn)

        def locked(idx: Index) -> T:
            with self.models_lock:
                return fn(idx)

        return await self._run(self.readers, locked)

    async def write(self, fn: Callable[[Index], T]) -> T:
        return await self._run(self.writer, self._writing(fn))

    def submit_write(self, fn: Callable[[Index], T]) -> Future:
        """Queue work on the writer without waiting (jobs)."""
        w = self._writing(fn)
        return self.writer.submit(lambda: w(self.index()))

    def _writing(self, fn: Callable[[Index], T]) -> Callable[[Index], T]:
        def wrapped(idx: Index) -> T:
            with self.models_lock:
                try:
                    return fn(idx)
                finally:
                    self.generation += 1

        return wrapped

    async def _run(self, pool: ThreadPoolExecutor, fn: Callable[[Index], T]) -> T:
        fut = pool.submit(lambda: fn(self.index()))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.settings.request_timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"the request took longer than {self.settings.request_timeout_s:.0f} s; "
                                     "long work (folder index, duplicate scan, clustering) belongs in a job: "
                                     "POST /v1/jobs") from None

    async def ensure_mode(self, mode: str) -> None:
        """Have the writer compute the features `mode` needs that some indexed files lack."""
        m = get_mode(mode)

        def stamps(idx: Index) -> tuple:
            return tuple(idx.catalog.stamp(f) for f in m.features)

        def missing(idx: Index) -> tuple | None:
            st = stamps(idx)
            if self._ready.get(mode) == st:
                return None
            if any(idx.catalog.missing(f, registry.get(f).version) for f in m.features):
                return st
            self._ready[mode] = st
            return None

        if await self.read(missing) is not None:
            def compute(idx: Index) -> None:
                idx.ensure(m.features, workers=1)
                self._ready[mode] = stamps(idx)

            await self.write(compute)

    def close(self) -> None:
        self.writer.shutdown(wait=True, cancel_futures=True)
        self.readers.shutdown(wait=True, cancel_futures=True)
        for idx in self._opened:
            try:
                idx.close()
            except Exception:  # a connection of a thread that is gone
                pass
