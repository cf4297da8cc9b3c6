"""Settings with defaults and environment overrides, in one place."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pathlib is imported where a path is made: `lookalike hash` never needs one
    from pathlib import Path

DEFAULT_INDEX_DIR = ".lookalike"


def index_dir(explicit: str | os.PathLike | None = None) -> Path:
    """`--index DIR`, else $LOOKALIKE_INDEX, else ./.lookalike."""
    from pathlib import Path

    return Path(explicit or os.environ.get("LOOKALIKE_INDEX") or DEFAULT_INDEX_DIR)


def cache_dir() -> Path:
    """Where converted models live: $LOOKALIKE_CACHE, else the user's cache dir."""
    from pathlib import Path

    env = os.environ.get("LOOKALIKE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lookalike"


def workers() -> int:
    """Decode/extract processes: $LOOKALIKE_WORKERS, else one per core."""
    return int(os.environ.get("LOOKALIKE_WORKERS") or os.cpu_count() or 1)


# Pixel limit for one image (decompression-bomb guard): 200 MP, well above any camera.
MAX_PIXELS = int(os.environ.get("LOOKALIKE_MAX_PIXELS") or 200_000_000)
# Bytes limit for one file read into memory.
MAX_FILE_BYTES = int(os.environ.get("LOOKALIKE_MAX_FILE_BYTES") or 512 * 1024 * 1024)
# Long side of the working image every feature is computed from (JPEGs decode in draft mode to it).
WORK_SIDE = 768
