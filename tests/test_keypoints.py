"""Keypoint votes (search/keypoints.py): copies whose CNN descriptor is far from their original's (a crop
of a crop at 30 % of the side, a copy rotated by 135 degrees, a picture shown small in a screenshot)
share distinctive SIFT keypoints with it; photos of other places do not. Photos from ../shared/data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lookalike.features.local import extract_local
from lookalike.imageio import load_file
from lookalike.search.keypoints import MIN_VOTES, KeypointIndex

PLACES = ("london_bridge_19481797_2295892421", "piazza_san_marco_06795901_3725050516",
          "st_pauls_cathedral_30776973_2635313996", "united_states_capitol_26757027_6717084061")


def _rotated(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotated clockwise inside a canvas that holds all of it (black corners), as copies are."""
    h, w = img.shape[:2]
    M = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    c, s = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    M[0, 2] += (nw - w) / 2
    M[1, 2] += (nh - h) / 2
    return cv2.warpAffine(img, M, (nw, nh))


@pytest.fixture(scope="module")
def photos(data_dir):
    pt = data_dir / "retrieval" / "images" / "phototourism"
    lund = data_dir / "retrieval" / "images" / "opensfm_lund"
    paths = [pt / f"{n}.jpg" for n in PLACES] + [lund / f"{i:02d}.jpg" for i in (1, 5, 9, 13)]
    return [load_file(p).rgb for p in paths]


@pytest.fixture(scope="module")
def copies(photos):
    """id -> image: 0-7 the photos; 10 a crop of a crop of photo 1; 11 photo 2 rotated 135 degrees;
    12 photo 3 at a third of its size in the middle of a white page."""
    out = dict(enumerate(photos))
    h, w = photos[1].shape[:2]
    out[10] = photos[1][int(h * 0.35):int(h * 0.65), int(w * 0.4):int(w * 0.7)].copy()
    out[11] = _rotated(photos[2], 135)
    small = cv2.resize(photos[3], (photos[3].shape[1] // 3, photos[3].shape[0] // 3), interpolation=cv2.INTER_AREA)
    page = np.full((photos[3].shape[0], photos[3].shape[1], 3), 250, np.uint8)
    page[40:40 + small.shape[0], 60:60 + small.shape[1]] = small
    out[12] = page
    return out


@pytest.fixture(scope="module")
def votes(copies):
    return KeypointIndex({i: extract_local(im) for i, im in copies.items()})


TRUE = {(1, 10), (2, 11), (3, 12)}


def test_hard_copies_are_candidates_and_their_originals_come_first(votes):
    cands = votes.candidates()
    assert TRUE <= set(cands), {p: votes.votes.get(p, 0) for p in TRUE}
    landmarks = {0, 1, 2, 3}  # photos of four cities (the Lund street photos are one town)
    for original, copy in TRUE:
        ranked = votes.of_file(copy)
        assert next(iter(ranked)) == original, ranked
        # far ahead of the photos of other cities (in a small collection chance keypoint matches
        # do add a few votes: they cost a verification each, bounded by TOP_N a file)
        others = [v for f, v in ranked.items() if f in landmarks and f != original]
        assert ranked[original] >= MIN_VOTES and ranked[original] >= 2 * max(others, default=0), ranked


def test_a_file_outside_the_index_gets_the_same_votes(copies, photos):
    outside = KeypointIndex({i: extract_local(im) for i, im in copies.items() if i != 10})
    found = outside.query(extract_local(copies[10]).desc)
    assert next(iter(found)) == 1, found  # its original first
    indexed = KeypointIndex({i: extract_local(im) for i, im in copies.items()})
    assert next(iter(indexed.of_file(10))) == 1
    assert abs(found[1] - indexed.of_file(10)[1]) <= 0.2 * found[1], (found, indexed.of_file(10))


def test_no_keypoints_no_votes():
    from lookalike.features.local import LocalFeatures

    empty = LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), 10, 10)
    assert KeypointIndex({}).candidates() == {}
    assert KeypointIndex({1: empty, 2: empty}).candidates() == {}
    assert KeypointIndex({1: empty}).query(np.zeros((0, 128), np.uint8)) == {}
