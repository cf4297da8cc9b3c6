"""Ray as the process pool: `imap` with the same contract as parallel.imap (fn over tasks, results
in task order), on a Ray cluster instead of local processes.

- Workers are Ray actors, one CPU each: the initializer runs once per actor and heavy models load
  once per actor (the feature registry caches them per process), not per task.
- Backpressure: at most `in_flight` tasks per actor are submitted ahead of the result being read,
  so a slow writer never lets decoded chunks pile up in the object store.
- Results come back in task order, so the one catalog writer (the driver) assigns the same file ids
  and writes the same rows as a local run, a chunk per transaction: kill -9 the driver and a re-run
  resumes from the last written chunk. A killed worker is restarted by Ray and its task retried
  (max_restarts / max_task_retries), so the run itself goes on.
- Without an address a private local Ray starts with `workers` CPUs, no dashboard and a small object
  store, and is shut down at the end. With one ("auto", "HOST:PORT", "ray://HOST:PORT") the driver
  joins that cluster; its workers must see the same file paths (shared storage) and lookalike.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")

OBJECT_STORE_BYTES = 128 << 20  # chunks are a few MB each and bounded in flight: plenty


def start(workers: int, address: str | None = None) -> bool:
    """Connect to Ray (start a local one without an address); True if this call started it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if address:
        ray.init(address=address, **kw)
    else:
        # the driver's environment reaches the local workers: PYTHONPATH, LOOKALIKE_* settings
        try:
            ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, **kw)
        except Exception:  # a local Ray's start timed out (busy machine, a killed session's leftovers; Ray raises a
            # bare Exception or a RuntimeError): once more, and a second failure is reported
            ray.shutdown()
            ray.init(num_cpus=workers, object_store_memory=OBJECT_STORE_BYTES, **kw)
    return True


def imap(fn: Callable[[T], R], tasks: Iterable[T], *, workers: int | None = None, address: str | None = None,
         initializer: Callable | None = None, initargs: tuple = (), in_flight: int = 2) -> Iterator[R]:
    """fn over tasks in order, as tasks of `workers` Ray actors (one CPU each). workers=None: every
    CPU of the cluster (of this machine for a local Ray)."""
    import ray

    started = start(workers or os.cpu_count() or 1, address)
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = min(workers or cpus, cpus)
        if hasattr(tasks, "__len__"):
            workers = max(1, min(workers, len(tasks)))

        @ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)
        class Worker:
            def __init__(self):
                if initializer:
                    initializer(*initargs)

            def run(self, task):
                return fn(task)

        actors = [Worker.remote() for _ in range(workers)]
        pending: deque = deque()
        it = iter(tasks)
        n = 0
        for task in it:
            pending.append(actors[n % workers].run.remote(task))
            n += 1
            if len(pending) >= in_flight * workers:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
        for a in actors:
            ray.kill(a)
    finally:
        if started:
            ray.shutdown()
