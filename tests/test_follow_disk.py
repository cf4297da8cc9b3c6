"""The index follows the disk (issue 14, defects 1 and 7): after files are deleted, moved and overwritten
and `index` runs again, no command reports a path that no longer exists or a stale cluster; one file
given under two spellings is indexed once; the README's Python example runs as a plain script."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from lookalike.cli import app

DEMO = Path(__file__).resolve().parents[1] / "demo"
runner = CliRunner()


def run(*args) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


def _paths_in(text: str) -> set[str]:
    return {w for w in text.replace(",", " ").replace('"', " ").split() if w.endswith((".jpg", ".png"))}


def test_deleted_moved_overwritten_files(tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    lib.mkdir()
    for n in ("bridge.jpg", "bridge_blur.jpg", "chelsea.jpg", "chelsea_gray_small.jpg", "rocket.jpg", "cathedral.jpg"):
        shutil.copy(DEMO / n, lib / n)
    run("index", lib, "--index", idx, "--workers", "1")
    first = run("cluster", "--by", "image", "--index", idx, "--format", "json").stdout
    by_path = {m["path"]: c["cluster"] for c in json.loads(first) for m in c["members"]}
    assert by_path[str(lib / "bridge.jpg")] == by_path[str(lib / "bridge_blur.jpg")]

    (lib / "rocket.jpg").unlink()                                             # deleted
    (lib / "sub").mkdir()
    shutil.move(lib / "chelsea_gray_small.jpg", lib / "sub" / "moved.jpg")    # moved
    shutil.copy(DEMO / "cathedral.jpg", lib / "bridge_blur.jpg")              # overwritten with another picture
    os.utime(lib / "bridge_blur.jpg", ns=(1, 10**18))
    res = run("index", lib, "--index", idx, "--workers", "1")
    assert "removed 2" in res.output, res.output

    outputs = {
        "dedup": run("dedup", "--index", idx, "--format", "csv").stdout,
        "dedup-json": run("dedup", "--index", idx, "--format", "json").stdout,
        "search": run("search", lib / "chelsea.jpg", lib / "cathedral.jpg", "--index", idx, "--format", "csv").stdout,
        "clusters": run("clusters", "--by", "image", "--index", idx, "--format", "json").stdout,
        "cluster-csv": run("clusters", "--by", "image", "--index", idx, "--format", "csv").stdout,
        "errors": run("errors", "--index", idx, "--format", "csv").stdout,
    }
    for name, text in outputs.items():
        gone = [p for p in _paths_in(text) if not Path(p).exists()]
        assert not gone, (name, gone)
    pairs = {frozenset((r["a"], r["b"])) for r in csv.DictReader(io.StringIO(outputs["dedup"]))}
    moved = str(lib / "sub" / "moved.jpg")
    assert frozenset((str(lib / "chelsea.jpg"), moved)) in pairs  # the moved copy, under its new path only
    assert frozenset((str(lib / "cathedral.jpg"), str(lib / "bridge_blur.jpg"))) in pairs  # its new content
    assert frozenset((str(lib / "bridge.jpg"), str(lib / "bridge_blur.jpg"))) not in pairs  # not its old one
    clusters = {m["path"]: c["cluster"] for c in json.loads(outputs["clusters"]) for m in c["members"]}
    assert clusters[str(lib / "bridge_blur.jpg")] == clusters[str(lib / "cathedral.jpg")]  # no stale cluster
    assert clusters[str(lib / "bridge_blur.jpg")] != clusters[str(lib / "bridge.jpg")]
    assert moved in clusters and str(lib / "rocket.jpg") not in clusters

    # remove and prune
    (lib / "chelsea.jpg").unlink()
    assert "removed 1 files that no longer exist" in run("prune", "--index", idx).output
    assert "removed 1" in run("remove", lib / "sub", "--index", idx).output
    info = json.loads(run("info", "--index", idx).stdout)
    assert info["files_ok"] == 3  # bridge, bridge_blur (now a cathedral), cathedral


def test_relative_and_absolute_spellings_are_one_file(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    for n in ("bridge.jpg", "rocket.jpg"):
        shutil.copy(DEMO / n, lib / n)
    monkeypatch.chdir(tmp_path)
    run("index", "lib", "--index", "idx", "--hashes-only", "--workers", "1")
    again = run("index", lib, "./lib/../lib", "--index", "idx", "--hashes-only", "--workers", "1")
    assert "added 0, unchanged 2" in again.output
    assert json.loads(run("info", "--index", "idx").stdout)["files_ok"] == 2
    assert run("dedup", "--mode", "exact", "--index", "idx").stdout.strip() == "a,b,score,method"
    # paths are shown as first given (relative here), whatever spelling a later command uses
    data = json.loads(run("search", lib / "bridge.jpg", "--mode", "hash", "--index", "idx", "--format", "json").stdout)
    assert data[0]["indexed"] and [m["path"] for m in data[0]["results"]] == [os.path.join("lib", "bridge.jpg")]
    assert "removed 1" in run("remove", lib / "rocket.jpg", "--index", "idx").output


README_EXAMPLE = """
from lookalike import Index
with Index.open("idx") as idx:
    idx.add(["photos/"])
    hits = idx.search(["photos/bridge.jpg"], mode="similar")[0].results
    dup = idx.dedup(mode="copy")
    groups = idx.cluster(by="image")
    print(len(hits), len(dup.groups), len(groups.clusters))
"""


def test_readme_example_runs_as_a_plain_script(tmp_path):
    """No `if __name__ == "__main__":`: workers (spawned once a model is loaded) must not re-run it."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(DEMO.glob("*.jpg"))[:20]:
        shutil.copy(p, photos / p.name)
    (tmp_path / "example.py").write_text(textwrap.dedent(README_EXAMPLE))
    env = dict(os.environ, LOOKALIKE_WORKERS="2", PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    res = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0 and "bootstrapping" not in res.stderr, res.stderr[-2000:]
    n_hits, n_groups, n_clusters = map(int, res.stdout.split())
    assert n_hits >= 1 and n_groups >= 2 and n_clusters >= 10
