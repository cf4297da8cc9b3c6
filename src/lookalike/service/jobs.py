"""Long work as jobs: a folder index, a duplicate scan, a clustering run, features for a mode.

Jobs run on the writer thread one after another (they write the catalog), report progress through the
engine's progress hook, and are kept in memory (the last `KEEP` of them) for `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from lookalike.api import Index

KEEP = 200


@dataclass
class Job:
    id: str
    kind: str
    params: dict
    owner: str
    status: str = "queued"  # queued | running | done | failed
    stage: str = ""
    done: int = 0
    total: int = 0
    result: dict | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "params": self.params, "status": self.status,
                "progress": {"stage": self.stage, "done": self.done, "total": self.total,
                             "fraction": round(self.done / self.total, 4) if self.total else None},
                "result": self.result, "error": self.error, "created_at": self.created_at,
                "started_at": self.started_at, "finished_at": self.finished_at}


class Jobs:
    def __init__(self, engine):
        self.engine = engine
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def start(self, kind: str, params: dict, owner: str, work: Callable[[Index, Job], dict]) -> Job:
        job = Job(uuid.uuid4().hex[:16], kind, params, owner)
        with self.lock:
            self.jobs[job.id] = job
            for old in list(self.jobs)[:-KEEP]:
                if self.jobs[old].status in ("done", "failed"):
                    del self.jobs[old]

        def run(idx: Index) -> None:
            job.status, job.started_at = "running", time.time()
            saved = idx.progress
            idx.progress = lambda stage: self._progress(job, stage)
            try:
                job.result = work(idx, job)
                job.status = "done"
            except Exception as e:  # the job fails with its reason; the service goes on
                job.status, job.error = "failed", f"{type(e).__name__}: {e}"[:500]
            finally:
                idx.progress = saved
                job.finished_at = time.time()
                self.engine.generation += 1

        self.engine.submit_write(run)
        return job

    @staticmethod
    def _progress(job: Job, stage: str):
        job.stage, job.done, job.total = stage, 0, 0

        def update(done: int, total: int) -> None:
            job.done, job.total = done, total

        return update

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def all(self) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda j: -j.created_at)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for j in list(self.jobs.values()):
            out[j.status] = out.get(j.status, 0) + 1
        return out
