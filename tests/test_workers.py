"""A worker process that dies (a crash in native code, the out-of-memory killer) never hangs a run:
the tasks it held run again alone, the one that kills its process too is reported, the rest goes on."""

import os
import shutil
import signal

import pytest

from conftest import REPO
from lookalike import ingest, parallel

_real_extract = ingest.extract_chunk


def _die_on_7(x: int) -> int:
    if x == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


def _extract_or_die(task):
    if any(os.path.basename(key).startswith("crash") for key, _ in task[0]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _real_extract(task)


def test_dead_worker_task_reported_others_in_order():
    out = list(parallel.imap(_die_on_7, range(20), workers=2, on_crash=lambda x: -x))
    assert out == [-7 if x == 7 else x * 10 for x in range(20)]
    with pytest.raises(parallel.WorkerDied):
        list(parallel.imap(_die_on_7, range(20), workers=2))


def test_extraction_goes_on_when_a_worker_dies(tmp_path, monkeypatch):
    """Chunks of 3 files: the chunk holding the crashing file is re-run file by file, so its two good
    neighbours keep their features and only the crashing file gets the reason."""
    photos = sorted(p for p in (REPO / "demo").iterdir() if p.suffix == ".jpg")[:8]
    shutil.copy(photos[4], tmp_path / "crash.jpg")
    paths = [str(p) for p in photos[:4]] + [str(tmp_path / "crash.jpg")] + [str(p) for p in photos[4:]]
    monkeypatch.setattr(ingest, "extract_chunk", _extract_or_die)
    rows = [r["row"] for chunk in ingest._run([(p, {}) for p in paths], ["phash8"], workers=2, chunk=3)
            for _, r in chunk]
    assert [r["path"] for r in rows] == paths
    bad = [r for r in rows if r["status"] != "ok"]
    assert [os.path.basename(r["path"]) for r in bad] == ["crash.jpg"] and "worker process died" in bad[0]["reason"]


def _verify_or_die(local, thumbs, a, b, mirror=True):
    if 13 in (a, b):
        os.kill(os.getpid(), signal.SIGKILL)
    return (float(a + b), {}), None


def test_copy_verification_goes_on_when_a_worker_dies(monkeypatch):
    """Pairs verified in forked workers: the pair that kills its worker is reported unverified (score 0,
    with the reason), every other pair is scored and handed back in order."""
    import multiprocessing

    from lookalike.search import batchverify

    monkeypatch.setattr(batchverify, "_score_pair", _verify_or_die)
    # workers, not threads, even after other tests loaded onnxruntime (forking is unsafe only for its sessions)
    monkeypatch.setattr(parallel, "pool_context", lambda: multiprocessing.get_context("fork"))
    pairs = [(i, i + 1) for i in range(2 * batchverify.MIN_PARALLEL)]
    got = []
    batchverify.score_pairs(pairs, {}, {}, skip=lambda a, b: False, workers=2,
                            done=lambda p, scored, fit: got.append((p, scored)))
    assert [p for p, _ in got] == pairs
    for (a, b), (score, det) in got:
        if 13 in (a, b):
            assert score == 0.0 and "crashed" in det["error"]
        else:
            assert score == a + b
