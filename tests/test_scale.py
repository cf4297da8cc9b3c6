"""Scale-out: Milvus as the vector store behind every mode (same answers as faiss), the store kept in
the index's settings and moved without re-extracting, and Ray extraction (same catalog bytes as local,
kill -9 of the driver or of a worker loses and doubles nothing)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lookalike.api import Index
from lookalike.store.milvus import MilvusVectorIndex, parse_uri
from lookalike.store.vectors import open_store

DEMO = Path(__file__).resolve().parents[1] / "demo"
FEATURES = ["ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint", "cnn"]


def _catalog(path) -> tuple[list, list]:
    """Files (path, digests, size, status) in id order and every feature row's bytes."""
    db = sqlite3.connect(path)
    files = db.execute("SELECT id, path, size, sha256, pixel_digest, width, height, format, status, reason "
                       "FROM files ORDER BY id").fetchall()
    feats = db.execute("SELECT file_id, name, version, data FROM features ORDER BY file_id, name").fetchall()
    db.close()
    return files, feats


# -- Milvus store: files, stamps, settings ------------------------------------------------------------------

def test_uri_forms(tmp_path):
    assert parse_uri("milvus://10.0.0.5:19530") == "http://10.0.0.5:19530"
    assert parse_uri("milvus://milvus.local") == "http://milvus.local:19530"
    assert parse_uri("milvus", tmp_path) == str(tmp_path.resolve() / "vectors.db")
    assert parse_uri(f"milvus:{tmp_path}/x.db") == str(tmp_path / "x.db")
    for bad in ("milvus:x.txt", "milvus://a b", "pinecone"):
        with pytest.raises(ValueError):
            parse_uri(bad, tmp_path)


def test_milvus_store_rebuilds_only_when_the_catalog_changed(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    calls = []

    def loader():
        calls.append(1)
        return np.arange(300) * 3, X

    kw = dict(index_id="t", loader=loader, dim=16)
    a = open_store("milvus", tmp_path, "cnn", stamp="1.1", **kw)
    b = open_store("milvus", tmp_path, "cnn", stamp="1.1", **kw)  # same stamp: reopened, not rebuilt
    assert len(calls) == 1 and b.ntotal == 300 and isinstance(b, MilvusVectorIndex)
    assert np.array_equal(b.search(X[:5], 1)[1][:, 0], np.arange(5) * 3)
    open_store("milvus", tmp_path, "cnn", stamp="2.1", **kw)  # catalog changed: rebuilt whole
    assert len(calls) == 2 and a.ntotal == 300  # not doubled


# -- every mode through Milvus gives the faiss answers ------------------------------------------------------

@pytest.fixture(scope="module")
def demo_indexes(tmp_path_factory):
    """The demo folder indexed once (faiss), and a copy moved to milvus-lite without re-extracting."""
    root = tmp_path_factory.mktemp("scale_demo")
    with Index.open(root / "faiss") as idx:
        idx.add([DEMO])
    shutil.copytree(root / "faiss", root / "milvus")
    with Index.open(root / "milvus") as idx:
        before = _catalog(idx.catalog.path)[1]
        moved = idx.use_vectors("milvus")
        assert _catalog(idx.catalog.path)[1] == before  # nothing re-extracted
        assert moved == {"cnn": 23} and idx.info()["vectors"] == "milvus"
    return root / "faiss", root / "milvus"


@pytest.mark.parametrize("mode", ["copy", "similar"])
def test_modes_give_the_same_answers_on_both_stores(demo_indexes, mode):
    out = {}
    for where in demo_indexes:
        with Index.open(where) as idx:
            hits = idx.search([DEMO / "bridge.jpg", DEMO / "street_a.jpg"], mode=mode, k=8, min_score=0.3)
            pairs = idx.dedup(mode=mode).pairs
            out[where.name] = ([[(m.path, round(m.score, 3)) for m in r.results] for r in hits],
                               [(p.a, p.b, round(p.score, 3)) for p in pairs])
            assert hits[0].results and pairs
    assert out["faiss"] == out["milvus"]


def test_clusters_the_same_on_both_stores_and_moves_back(demo_indexes):
    groups = {}
    for where in demo_indexes:
        with Index.open(where) as idx:
            res = idx.cluster(by="image")
            groups[where.name] = sorted(sorted(p for p, _ in c.members) for c in res.clusters if c.size > 1)
    assert groups["faiss"] == groups["milvus"] and groups["faiss"]
    with Index.open(demo_indexes[1]) as idx:  # and back to faiss
        assert idx.use_vectors("faiss") == {"cnn": 23} and idx.vector_store == "faiss"


def test_cli_vectors_option(tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli import app

    r = CliRunner().invoke(app, ["index", str(DEMO / "bridge.jpg"), "--index", str(tmp_path), "--vectors", "weaviate"])
    assert r.exit_code == 2 and "unknown vector store" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["index", str(DEMO / "bridge.jpg"), "--index", str(tmp_path), "--engine", "spark"])
    assert r.exit_code == 2 and "unknown engine" in r.output
    # an unreachable server: one line, exit 2, and the index keeps its working store
    r = CliRunner().invoke(app, ["index", str(DEMO / "bridge.jpg"), "--index", str(tmp_path),
                                 "--vectors", "milvus://127.0.0.1:1"])
    assert r.exit_code == 2 and "cannot open Milvus" in r.output and "Traceback" not in r.output
    with Index.open(tmp_path) as idx:
        assert idx.vector_store == "faiss" and idx.info()["files_ok"] == 1


# -- Ray extraction ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_subset(near_dup, tmp_path_factory):
    """64 near_duplicate images (every format the set has among them) and their catalog indexed locally."""
    files = sorted(p for p in (near_dup.root / "images").rglob("*") if p.is_file())
    files = files[:: max(1, len(files) // 64)][:64]
    root = tmp_path_factory.mktemp("ray_subset")
    sub = root / "images"
    sub.mkdir()
    for n, f in enumerate(files):
        (sub / f"{n:03d}_{f.name}").symlink_to(f)
    with Index.open(root / "local") as idx:
        idx.add([sub], features=FEATURES, defaults=False, workers=2)
    return sub, _catalog(root / "local" / "catalog.sqlite")


def _index_cmd(images: Path, where: Path) -> list[str]:
    code = ("import sys; from lookalike.api import Index; idx = Index.open(sys.argv[2]); "
            f"r = idx.add([sys.argv[1]], features={FEATURES!r}, defaults=False, workers=2, engine='ray'); "
            "print('added', r.added, 'unchanged', r.unchanged)")
    return [sys.executable, "-c", code, str(images), str(where)]


def test_ray_gives_the_local_catalog_bit_for_bit(ray_subset, tmp_path):
    images, local = ray_subset
    with Index.open(tmp_path) as idx:
        rep = idx.add([images], features=FEATURES, defaults=False, workers=2, engine="ray")
    assert rep.added + rep.failed == 64
    assert _catalog(tmp_path / "catalog.sqlite") == local


def test_kill_9_of_the_ray_driver_then_rerun_resumes(ray_subset, tmp_path):
    images, local = ray_subset
    db = tmp_path / "catalog.sqlite"
    p = subprocess.Popen(_index_cmd(images, tmp_path), start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    written = 0
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            if db.exists():
                try:
                    written = sqlite3.connect(db).execute("SELECT COUNT(*) FROM files").fetchone()[0]
                except sqlite3.Error:
                    written = 0
                if written >= 16:
                    break
            time.sleep(0.1)
        assert p.poll() is None, "the run ended before it could be killed"
        os.kill(p.pid, signal.SIGKILL)  # the driver, mid-run
        p.wait()
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the local Ray it had started (its own session)
        except ProcessLookupError:
            pass
    assert 16 <= written < 64
    out = subprocess.run(_index_cmd(images, tmp_path), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "unchanged" in out.stdout and int(out.stdout.split()[3]) >= 16  # resumed: written chunks kept
    assert _catalog(db) == local  # nothing lost, nothing doubled, same ids and bytes


def test_kill_9_of_a_ray_worker_is_retried(tmp_path):
    from lookalike import raypool

    def die_once(task):  # nested, so Ray ships it by value (workers cannot import this test module)
        """kill -9 its own process the first time it sees task 3."""
        import os
        import signal

        n, marker = task
        if n == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return n * n, os.getpid()

    marker = str(tmp_path / "died")
    out = list(raypool.imap(die_once, [(n, marker) for n in range(12)], workers=2))
    assert os.path.exists(marker)  # a worker really died
    assert [r for r, _ in out] == [n * n for n in range(12)]  # every result once, in order
    assert len({pid for _, pid in out}) >= 2
