"""Decisions about duplicates kept in the index and honoured by dedup; keepers; the catalog migration."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from lookalike import Index

DEMO = Path(__file__).resolve().parents[1] / "demo"
HASHES = dict(features=["phash8", "pdq8"], defaults=False, workers=1)


@pytest.fixture()
def lib(tmp_path):
    """bridge + 2 copies (one at twice the size), chelsea + 1 copy, an unrelated photo."""
    d = tmp_path / "lib"
    d.mkdir()
    for name in ("bridge.jpg", "bridge_blur.jpg", "chelsea.jpg", "chelsea_gray_small.jpg", "rocket.jpg"):
        shutil.copy(DEMO / name, d / name)
    with Image.open(DEMO / "bridge.jpg") as im:
        im.resize((im.width * 2, im.height * 2)).save(d / "bridge_big.png")
    idx = Index.open(tmp_path / "idx")
    idx.add([d], **HASHES)
    yield d, idx
    idx.close()


def _groups(idx, **kw):
    return [sorted(Path(m).name for m in g.members) for g in idx.dedup(mode="hash", **kw).groups]


def test_groups_carry_ids_pairs_and_keeper(lib):
    d, idx = lib
    res = idx.dedup(mode="hash")
    assert [sorted(Path(m).name for m in g) for g in res.groups] == [
        ["bridge.jpg", "bridge_big.png", "bridge_blur.jpg"], ["chelsea.jpg", "chelsea_gray_small.jpg"]]
    g = res.groups[0]
    assert g.id == 1 and len(g.pairs) >= 2 and all({p.a, p.b} <= set(g.members) for p in g.pairs)
    assert Path(g.keeper).name == "bridge_big.png"  # highest resolution
    assert Path(res.groups[1].keeper).name == "chelsea.jpg"  # the grey copy is smaller
    data = res.to_dict()["groups"][0]
    assert {"id", "members", "keeper", "decided", "pairs"} <= set(data)


def test_not_duplicates_never_come_back(lib):
    d, idx = lib
    did = idx.decide([d / "chelsea.jpg", d / "chelsea_gray_small.jpg"], "not_duplicates")
    assert _groups(idx) == [["bridge.jpg", "bridge_big.png", "bridge_blur.jpg"]]
    assert all("chelsea" not in p.a for p in idx.dedup(mode="hash").pairs)
    # survives reopening and re-indexing
    idx.add([d], **HASHES)
    assert len(_groups(idx)) == 1
    assert idx.decisions()[0]["id"] == did and idx.decisions()[0]["verdict"] == "not_duplicates"
    idx.undo_decision(did)
    assert len(_groups(idx)) == 2 and idx.decisions() == []


def test_keep_all_and_keep_one_flag_groups_decided(lib):
    d, idx = lib
    bridges = [str(d / n) for n in ("bridge.jpg", "bridge_blur.jpg", "bridge_big.png")]
    did = idx.decide(bridges, "keep_all")
    assert _groups(idx) == [["chelsea.jpg", "chelsea_gray_small.jpg"]]
    groups = idx.dedup(mode="hash", include_decided=True).groups
    decided = [g for g in groups if g.decided]
    assert len(decided) == 1 and decided[0].decision == did
    idx.undo_decision(did)
    keeper = str(d / "bridge_blur.jpg")
    idx.decide(bridges, "keep_one", keeper=keeper)
    g = next(g for g in idx.dedup(mode="hash", include_decided=True).groups if g.decided)
    assert g.keeper == keeper
    # a decision covering only part of a group does not decide it
    idx.decide(bridges[:2], "keep_all")
    assert len(idx.dedup(mode="hash").groups) == 1


def test_decide_validates(lib):
    d, idx = lib
    a, b = d / "bridge.jpg", d / "bridge_blur.jpg"
    with pytest.raises(ValueError, match="keeper"):
        idx.decide([a, b], "keep_one")
    with pytest.raises(ValueError, match="not one of the members"):
        idx.decide([a, b], "keep_one", keeper=d / "rocket.jpg")
    with pytest.raises(ValueError, match="verdict"):
        idx.decide([a, b], "maybe")
    with pytest.raises(ValueError, match="two"):
        idx.decide([a, str(a)], "keep_all")
    with pytest.raises(ValueError):
        idx.undo_decision(999)


def test_decision_members_normalised(lib, monkeypatch):
    d, idx = lib
    monkeypatch.chdir(d.parent)
    idx.decide(["lib/chelsea.jpg", str(d / "chelsea_gray_small.jpg")], "not_duplicates")
    assert sorted(idx.decisions()[0]["members"]) == sorted(str(d / n) for n in ("chelsea.jpg", "chelsea_gray_small.jpg"))
    assert len(_groups(idx)) == 1


def test_old_catalog_migrates(tmp_path):
    """An index made before file keys and decisions: opens, keys filled, one row per file."""
    d = tmp_path / "lib"
    d.mkdir()
    shutil.copy(DEMO / "bridge.jpg", d / "a.jpg")
    db = sqlite3.connect(tmp_path / "catalog.sqlite")
    db.executescript("""
CREATE TABLE files(id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, pixel_digest TEXT, width INTEGER, height INTEGER, format TEXT, status TEXT NOT NULL,
    reason TEXT, added_at REAL);
CREATE TABLE features(file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(file_id, name));
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
""")
    db.execute("INSERT INTO files(path, size, mtime_ns, status) VALUES (?, 1, 1, 'ok')", (str(d / "a.jpg"),))
    db.execute("INSERT INTO files(path, size, mtime_ns, status) VALUES (?, 1, 1, 'ok')", (str(d / ".." / "lib" / "a.jpg"),))
    db.commit()
    db.close()
    with Index.open(tmp_path) as idx:
        assert idx.info()["files_ok"] == 1
        rep = idx.add([d], **HASHES)
        assert (rep.added, idx.info()["files_ok"]) == (1, 1)
        assert idx.decide([d / "a.jpg", d / "b.jpg"], "keep_all") == 1


def test_labels_csv_second_column_default_and_any_spelling(tmp_path, monkeypatch):
    """`cluster train` labels (issue 14, defect 13): a `path,person` CSV needs no --column; labels
    spelled absolute find files the index holds as relative paths."""
    from lookalike.cluster.engine import read_labels

    d = tmp_path / "lib"
    d.mkdir()
    for n in ("bridge.jpg", "rocket.jpg"):
        shutil.copy(DEMO / n, d / n)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,person\n{d / 'bridge.jpg'},ann\nlib/rocket.jpg,bob\n")
    got = read_labels(labels)
    assert got == {str(d / "bridge.jpg"): "ann", str(d / "rocket.jpg"): "bob"}
    monkeypatch.chdir(tmp_path)
    with Index.open("idx") as idx:
        idx.add(["lib"], **HASHES)
        assert {idx.catalog.file(p).path for p in got} == {"lib/bridge.jpg", "lib/rocket.jpg"}
