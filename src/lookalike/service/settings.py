"""What `lookalike serve` was started with (one object, passed to the app factory)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Settings:
    index: Path  # the index directory: catalog, uploads, keys; nothing is written outside it
    max_upload_mb: float = 50.0  # request bodies above this: 413 (before the body is read whole)
    allow_roots: list[Path] = field(default_factory=list)  # server-side paths (index jobs) only under these
    readers: int = 4  # threads that search (each has its own read connection); writes go to one writer thread
    request_timeout_s: float = 120.0  # a request still running after this answers 504 (jobs are for long work)
    rate_per_s: float = 50.0  # per key: sustained requests per second ...
    rate_burst: int = 200  # ... and how many may come at once
    log_requests: bool = True

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    def __post_init__(self) -> None:
        self.index = Path(self.index).resolve()
        self.allow_roots = [Path(os.path.realpath(r)) for r in self.allow_roots]

    def allowed(self, path: str) -> Path | None:
        """The real path of `path` if it lies under an allowed root (symbolic links resolved), else None."""
        real = Path(os.path.realpath(path))
        return real if any(real == r or r in real.parents for r in self.allow_roots) else None
