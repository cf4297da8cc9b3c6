"""`similar` on hard same-place queries (issue 13): a photo of a place made into a night shot, a thermal
frame or a snowy/autumn version (lookalike.eval.conditions, seeded) must still find the OTHER photos of
its place among street-photo distractors, with its own photo not in the index. Fixture made at test time
from ../shared/data/retrieval: 3 places (4 photos each) and 10 street distractors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike import models
from lookalike.eval import conditions
from lookalike.eval.datasets import read_retrieval
from lookalike.eval.metrics import ranked_ap
from lookalike.imageio import load_file


@pytest.fixture(scope="module")
def places(data_dir, model_cache, tmp_path_factory):
    """(index folder, {place: [photo paths]}, [distractor paths]) of a small same-place fixture."""
    from lookalike.api import Index

    for m in ("efficientnet-lite0", "efficientnet-lite2"):
        models.prepare(m)
    ds = read_retrieval(data_dir / "retrieval")
    groups: dict[str, list[str]] = {}
    for k in ds.queries:
        groups.setdefault(ds.group[k], []).append(str(ds.files[k]))
    chosen = {g: sorted(v)[:4] for g, v in sorted(groups.items()) if len(v) >= 3}
    chosen = dict(list(chosen.items())[:3])
    distractors = sorted(str(ds.files[k]) for k in ds.images if not ds.group[k])[:10]
    root = tmp_path_factory.mktemp("similar_hard")
    with Index.open(root / "idx") as idx:
        idx.add([p for v in chosen.values() for p in v] + distractors, workers=1)
    return root, chosen, distractors


def _queries(places, condition: str):
    """(query file, own photo, other photos of its place): the first photo of each place under the
    condition."""
    root, chosen, _ = places
    out = []
    for i, (g, photos) in enumerate(chosen.items()):
        img = conditions.make(load_file(photos[0]).rgb, condition, seed=7 + i)
        f = root / f"{condition}-{i}.jpg"
        cv2.imwrite(str(f), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append((str(f), photos[0], set(photos[1:])))
    return out


def _rankings(places, condition: str, parts: tuple[str, ...] | None = None) -> list[tuple[list[str], set[str]]]:
    """(ranked paths, other photos of its place) of each of the condition's queries, each searched
    with its own photo out of the index; parts: the similar descriptors to use (default: all)."""
    from lookalike.api import Index
    from lookalike.search.modes import get_mode

    mode = get_mode("similar")
    saved = mode.parts, mode.features
    if parts:
        mode.parts = mode.features = parts
    out = []
    try:
        with Index.open(places[0] / "idx") as idx:
            for f, own, others in _queries(places, condition):
                idx.remove([own])
                res = idx.search([f], mode="similar", k=30, min_score=0.0)[0]
                idx.add([own], workers=1)
                out.append(([m.path for m in res.results if m.path != own], others))
    finally:
        mode.parts, mode.features = saved
    return out


def test_conditions_are_seeded_and_keep_the_frame():
    rng = np.random.default_rng(0)
    img = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    for c in conditions.CONDITIONS:
        a, b = conditions.make(img, c, 3), conditions.make(img, c, 3)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
        assert np.array_equal(a, b)
        if c != "viewpoint":
            assert a.shape == img.shape
    with pytest.raises(ValueError, match="unknown condition"):
        conditions.make(img, "fog", 0)


def test_night_and_thermal_find_their_place(places):
    """Every night or thermal query has another photo of its place in its top 3; measured mAP here:
    night 0.956, thermal 0.935 (the colour descriptor alone gets 1.0 on these 3 queries; the grey
    half's gain shows over the 225 held-out queries of benchmarks/bench_similar_hard.py)."""
    for condition in ("night", "thermal"):
        ranked = _rankings(places, condition)
        for top, others in ranked:
            assert set(top[:3]) & others, (condition, top[:3])
        assert np.mean([ranked_ap(r, o) for r, o in ranked]) >= 0.85, condition


def test_grey_descriptor_is_closer_across_light(data_dir, model_cache):
    """The equalised grey descriptor keeps a photo closer to its night and thermal versions than the
    colour one: measured on 7 retrieval photos, grey beat colour on all 14 (mean cosine +0.06)."""
    from lookalike.features.cnn import CnnDescriptor, equalised_grey

    models.prepare("efficientnet-lite2")
    net = CnnDescriptor("efficientnet-lite2")
    ds = read_retrieval(data_dir / "retrieval")
    wins, gain = 0, []
    for i, k in enumerate(sorted(ds.queries)[::4]):
        img = load_file(ds.files[k]).rgb
        for c in ("night", "thermal"):
            x = conditions.make(img, c, i)
            col = net.embed([img, x])
            grey = net.embed([equalised_grey(img), equalised_grey(x)])
            wins += float(grey[0] @ grey[1]) > float(col[0] @ col[1])
            gain.append(float(grey[0] @ grey[1]) - float(col[0] @ col[1]))
    assert wins >= 12 and np.mean(gain) >= 0.03, (wins, gain)


def test_dedup_similar_pairs_agree_with_search(places):
    """pairs() scores a pair by the same mean cosine as search() before re-ranking: every pair dedup
    reports at the threshold is found by search of either file."""
    from lookalike.api import Index

    with Index.open(places[0] / "idx") as idx:
        pairs = idx.dedup(mode="similar").pairs
        assert pairs, "the fixture's places have same-place pairs above the threshold"
        for p in pairs[:5]:
            for a, b in ((p.a, p.b), (p.b, p.a)):
                found = [m.path for m in idx.search([a], mode="similar", k=30)[0].results]
                assert b in found


def test_dark_photos_are_told_from_lit_ones(data_dir):
    """Night versions of retrieval photos are often dark (a bright sky or many lamps keep some above the
    line), the photos themselves and their thermal, season and viewpoint versions never: only night
    queries switch to their grey descriptor (the 130 tuning queries: 18 of 26 night shots, nothing else;
    here 4 of 9)."""
    from lookalike.search.similar import is_dark

    ds = read_retrieval(data_dir / "retrieval")
    dark_nights = []
    for i, k in enumerate(sorted(ds.queries)[::3]):
        img = load_file(ds.files[k]).rgb
        assert not is_dark(img), k
        dark_nights.append(is_dark(conditions.make(img, "night", i)))
        for c in ("thermal", "season", "viewpoint"):
            assert not is_dark(conditions.make(img, c, i)), (k, c)
    assert sum(dark_nights) >= 3, dark_nights
    assert is_dark(np.zeros((5, 7, 3), np.uint8)) and not is_dark(np.full((3, 3, 3), 200, np.uint8))


def test_dark_query_and_dedup_agree(places):
    """A night shot in the index: every pair dedup reports for it, search of the night shot finds, and
    its search scores are never below the mean cosine dedup uses."""
    from lookalike.api import Index

    root, chosen, _ = places
    f, own, others = _queries(places, "night")[0]
    with Index.open(root / "idx") as idx:
        idx.add([f], workers=1)
        try:
            pairs = [p for p in idx.dedup(mode="similar", threshold=0.5).pairs if f in (p.a, p.b)]
            assert pairs, "the night shot pairs with its own photo at 0.5"
            found = {m.path: m.score for m in idx.search([f], mode="similar", k=30, min_score=0.0)[0].results}
            for p in pairs:
                other = p.b if p.a == f else p.a
                assert other in found and found[other] >= p.score - 1e-4, (other, p.score, found.get(other))
        finally:
            idx.remove([f])
