import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.fail(f"evaluation data not found at {DATA} (set LOOKALIKE_DATA)")
    return DATA


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """$LOOKALIKE_CACHE when set (CI and `make test`: models converted once and reused), else one
    temporary cache for the whole session. Tests prepare what they need into it with models.prepare."""
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("LOOKALIKE_CACHE"):
            mp.setenv("LOOKALIKE_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield Path(os.environ["LOOKALIKE_CACHE"])
