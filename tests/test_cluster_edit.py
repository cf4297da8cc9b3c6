"""Hand merge and split of stored clusters (cluster/edit.py): exact member sets and ids, names, errors,
and that a batch re-run keeps the edits; the CLI commands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lookalike import Index

DEMO = Path(__file__).resolve().parents[1] / "demo"
PHOTOS = ["bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "chelsea.jpg", "chelsea_gray_small.jpg",
          "coffee.jpg", "rocket.jpg"]


@pytest.fixture(scope="module")
def template(tmp_path_factory, model_cache):
    """Demo photos clustered by image (copies: the bridges, the two chelseas)."""
    root = tmp_path_factory.mktemp("edit")
    (root / "photos").mkdir()
    for name in PHOTOS:
        shutil.copy(DEMO / name, root / "photos" / name)
    with Index.open(root / "template") as idx:
        idx.add([root / "photos"], workers=1)
        idx.cluster(by="image")
    return root


@pytest.fixture
def idx(template, tmp_path):
    shutil.copytree(template / "template", tmp_path / "idx")
    with Index.open(tmp_path / "idx") as index:
        yield index


def groups(index) -> dict[int, set[str]]:
    return {c.id: {Path(p).name for p, _ in c.members} for c in index.clusters(by="image").clusters}


def id_of(g: dict[int, set[str]], name: str) -> int:
    return next(c for c, ms in g.items() if name in ms)


def test_the_demo_clusters(idx):
    g = groups(idx)
    assert g[id_of(g, "bridge.jpg")] == {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"}
    assert g[id_of(g, "chelsea.jpg")] == {"chelsea.jpg", "chelsea_gray_small.jpg"}


def test_merge_moves_everything_into_the_oldest_id_and_survives_a_batch_run(idx):
    g = groups(idx)
    bridge, chelsea, coffee = id_of(g, "bridge.jpg"), id_of(g, "chelsea.jpg"), id_of(g, "coffee.jpg")
    idx.rename_cluster(chelsea, "cats", by="image")
    target = idx.merge_clusters([coffee, bridge, chelsea], by="image")
    assert target == min(bridge, chelsea, coffee)
    merged = {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg", "chelsea.jpg", "chelsea_gray_small.jpg",
              "coffee.jpg"}
    after = groups(idx)
    assert after[target] == merged and set(after) == {target, id_of(g, "rocket.jpg")}
    assert idx.cluster_names(by="image") == {target: "cats"}  # the first named one's name moves to the target
    from lookalike.cluster import merges

    assert sorted((src, dst, path) for src, dst, path, *_ in merges(idx, by="image")) == sorted(
        (src, target, None) for src in (bridge, chelsea, coffee) if src != target)  # recorded, no bridging file
    rerun = idx.cluster(by="image")  # the batch run separates them again by evidence, but the hand merge wins
    assert {c.id: {Path(p).name for p, _ in c.members} for c in rerun.clusters} == after
    assert groups(idx) == after


def test_split_gets_a_new_id_that_survives_a_batch_run(idx, template):
    g = groups(idx)
    bridge, top = id_of(g, "bridge.jpg"), max(g)
    photos = template / "photos"
    new = idx.split_cluster(bridge, [str(photos / "bridge_flipped.jpg"),
                                     (str(photos / "bridge_blur.jpg"), 0)], by="image")
    assert new > top
    after = groups(idx)
    assert after[bridge] == {"bridge.jpg"} and after[new] == {"bridge_flipped.jpg", "bridge_blur.jpg"}
    idx.cluster(by="image")
    assert groups(idx) == after
    # ids are never reused: a second split gets a fresh id
    assert idx.split_cluster(new, [str(photos / "bridge_blur.jpg")], by="image") == new + 1
    assert groups(idx)[new + 1] == {"bridge_blur.jpg"}


@pytest.mark.parametrize("call, words", [
    (lambda i, g: i.merge_clusters([id_of(g, "bridge.jpg")], by="image"), "at least 2"),
    (lambda i, g: i.merge_clusters([id_of(g, "bridge.jpg"), 98765], by="image"), "no image cluster with id 98765"),
    (lambda i, g: i.split_cluster(98765, ["x.jpg"], by="image"), "no image cluster with id 98765"),
    (lambda i, g: i.split_cluster(id_of(g, "bridge.jpg"), ["/nowhere/coffee.jpg"], by="image"), "not a member"),
    (lambda i, g: i.split_cluster(id_of(g, "chelsea.jpg"), [p for p, _ in next(
        c for c in i.clusters(by="image").clusters if c.id == id_of(g, "chelsea.jpg")).members], by="image"),
     "leave at least one"),
    (lambda i, g: i.merge_clusters([0, 1], by="colour"), "unknown --by"),
])
def test_errors_are_value_errors_and_change_nothing(idx, call, words):
    g = groups(idx)
    with pytest.raises(ValueError, match=words):
        call(idx, g)
    assert groups(idx) == g


def test_cli_merge_and_split(template, tmp_path):
    from lookalike.cli import app

    index = tmp_path / "idx"
    shutil.copytree(template / "template", index)
    with Index.open(index) as idx:
        g = groups(idx)
    bridge, chelsea = id_of(g, "bridge.jpg"), id_of(g, "chelsea.jpg")
    photos = template / "photos"
    run = CliRunner()
    base = ["--by", "image", "--index", str(index)]
    r = run.invoke(app, ["clusters", "merge", str(bridge), str(chelsea), *base])
    assert r.exit_code == 0, r.output
    assert f"into {min(bridge, chelsea)}" in r.output
    r = run.invoke(app, ["clusters", "split", str(min(bridge, chelsea)), str(photos / "coffee.jpg"), *base])
    assert r.exit_code == 2 and "not a member" in r.output and "Traceback" not in r.output
    r = run.invoke(app, ["clusters", "split", str(min(bridge, chelsea)), str(photos / "chelsea.jpg"),
                         str(photos / "chelsea_gray_small.jpg") + "#0", *base])
    assert r.exit_code == 0, r.output
    new = int(r.output.split("new cluster")[1].split()[0])
    with Index.open(index) as again:
        after = groups(again)
    assert after[new] == {"chelsea.jpg", "chelsea_gray_small.jpg"}
    assert after[min(bridge, chelsea)] == {"bridge.jpg", "bridge_blur.jpg", "bridge_flipped.jpg"}
    r = run.invoke(app, ["clusters", "merge", str(new), *base])
    assert r.exit_code == 2 and "at least 2" in r.output
