"""Face clustering on people and photos it was not tuned on (issue 13): look-alikes in a small set stay
apart, non-faces (animals, objects) make no person cluster. Fixtures are made from ../shared/data at
test time; figures in the comments were measured with benchmarks/bench_face_clusters.py."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.eval import metrics
from lookalike.eval.datasets import read_faces

# Two CelebA people whose mean faces are 0.962 alike, in a small set of 10 people x 6 photos: with the
# context of every face's 20 neighbours taken from 0.85 up (the defaults before) they were one cluster
# (BCubed P 0.713), as three pairs of people were on the hidden twin of `faces`.
LOOKALIKES = ("person_2862e374", "person_5433dafa")
OTHERS = ("person_505b251c", "person_22398862", "person_03586ecc", "person_5507dcff", "person_3c85b4a6",
          "person_0d6e00e1", "person_326a0eb2", "person_29685939")


@pytest.fixture(scope="module")
def small_set(data_dir, face_models):
    """(identity per photo, faces per photo) of the 10 people's first 6 photos each (as the data lists them)."""
    from lookalike.cluster.faces import faces_of_paths

    ds = read_faces(data_dir / "faces_large")
    keys = []
    for person in LOOKALIKES + OTHERS:
        keys += [k for k in ds.images if ds.identity[k] == person][:6]
    faces = faces_of_paths([str(ds.files[k]) for k in keys])
    return [ds.identity[k] for k in keys], faces


def _cluster_photos(ids, faces, **params):
    """Cluster every face as the engine does (cannot-link within a photo); label each photo by its
    largest face, photos without a face alone. Returns ({photo: label}, {photo: identity})."""
    from lookalike.cluster.engine import BY, cluster_vectors

    conf = {k: BY["face"][k] for k in ("threshold", "k", "link_threshold", "floor", "small_min_cosine")} | params
    rows = [(n, j) for n, fs in enumerate(faces) for j in range(len(fs))]
    X = np.array([faces[n][j].embedding for n, j in rows], np.float32).reshape(len(rows), -1)
    lab = cluster_vectors(X, sources=[n for n, _ in rows], **conf).labels
    pred = {n: f"alone{n}" for n in range(len(ids))}
    pred.update({n: int(lab[r]) for r, (n, j) in enumerate(rows) if j == 0})
    return pred, dict(enumerate(ids))


def test_lookalikes_in_a_small_set_are_two_people(small_set):
    ids, faces = small_set
    pred, truth = _cluster_photos(ids, faces)
    a = {pred[n] for n, i in truth.items() if i == LOOKALIKES[0]}
    b = {pred[n] for n, i in truth.items() if i == LOOKALIKES[1]}
    assert not a & b, "two look-alike people share a cluster"
    b3 = metrics.bcubed_prf(pred, truth)
    assert b3.precision >= 0.97 and b3.f1 >= 0.94, b3  # measured P 1.000, F 0.974
    # the fixture is a real hard case: the previous context (floor 0.85, link 0.75) merged the two
    old, _ = _cluster_photos(ids, faces, floor=0.85, link_threshold=0.75)
    assert {old[n] for n, i in truth.items() if i == LOOKALIKES[0]} & \
           {old[n] for n, i in truth.items() if i == LOOKALIKES[1]}


# -- non-faces ------------------------------------------------------------------------------------------

# photos of ../shared/data/captions whose captions name no person (dogs, a cat, a bird): the first 12,
# by name, on which BlazeFace fired before the face-ness check (177 such photos: 17 still hold a
# "face"); and the demo's cat, cup and portal, which made a cluster of their own.
ANIMALS = ("031620bc201d", "0324b26abda1", "033b4266a904", "03f55a5008e4", "06168fde5852", "06e8c2becea0",
           "072d7286ef81", "079a60aed5cb", "0934dde384b7", "0998cb0095bd", "0b1541856712", "0ba37c4d2c7a")
OBJECTS = ("demo/chelsea.jpg", "demo/chelsea_stickers.jpg", "demo/coffee_phone_screenshot.jpg",
           "demo/cathedral_rot90_caption.jpg")


def test_animals_and_objects_make_no_person(tmp_path, data_dir, face_models):
    from lookalike.api import Index
    from lookalike.cluster import cluster_index

    paths = [str(data_dir / "captions" / "images" / f"{n}.jpg") for n in ANIMALS]
    paths += [str(data_dir / p) for p in OBJECTS]
    with Index.open(tmp_path / "idx") as idx:
        idx.add(paths, workers=1)
        faces = idx.feature_values(list(idx.catalog.ids_by_path().values()), "faces")
        found = sum(len(v) for v in faces.values())
        clusters = cluster_index(idx, by="face", save=False).clusters
    assert found <= 2, f"{found} detections kept as faces"  # measured: 1 (a leaping dog)
    assert all(c.size == 1 for c in clusters), [c.members for c in clusters]


def test_faceness_separates_a_face_from_its_surroundings():
    """The rule itself: a confirmed detection whose two landmark models agree is a face; a weak one
    whose landmark models disagree is not; HOG detections (no keypoints) are judged on the rest."""
    from lookalike.features.faces import FACENESS_MIN, faceness

    assert faceness(score=0.86, confirm=0.92, eyes=0.02) >= FACENESS_MIN  # a typical face
    assert faceness(score=0.52, confirm=0.76, eyes=0.06) >= FACENESS_MIN  # a small, weakly detected one
    assert faceness(score=0.59, confirm=0.55, eyes=0.14) < FACENESS_MIN  # a dog's head
    assert faceness(score=0.60, confirm=0.63, eyes=0.16) < FACENESS_MIN  # the demo's cat
    assert faceness(score=0.9, confirm=0.9, eyes=None) >= FACENESS_MIN


# -- small clusters must be tighter ----------------------------------------------------------------------

# faces_large photos (half 0 of bench_face_clusters.py, the tuning half): 8 photos of person_2862e374
# and 1 of person_579d6bb4, two people seen once (285eb0a8, 34828924), one seen twice (1b28111f, its two
# photos at cosine 0.956) and two more seen once. Without the bar for small clusters two pairs of
# different people came out (a stray photo of 2862e374 with 579d6bb4 at 0.933, another with 34828924):
# BCubed P 0.867; with it P 1.000 and the real pair stays.
STRAYS = ("1f4f1af2f2d8", "7219a58b0dee", "796c20c342ac", "af9a0b5d4b19", "b438d4cc9f97", "c4ff356e9668",
          "c903ec320d00", "e047c15ffbef", "e3a44f84e01c", "2caeb47a638b", "6f9a05bd8ab2", "19f69a91dd33",
          "1da3546d4e89", "bba2d308bf59", "32e7fff69f94")
TWICE = ("19f69a91dd33", "1da3546d4e89")


def test_split_loose_small_clusters_by_size():
    """Synthetic: a pair below the pair bar splits, one above stays; a loose triple keeps its good pair;
    a cluster of four is left to the refiner."""
    from lookalike.cluster.refine import Refined, split_loose_small

    def at(cos):  # two unit vectors at cosine `cos`
        return [[1.0, 0.0], [cos, np.sqrt(1 - cos * cos)]]

    X = np.array(at(0.92) + at(0.96) + at(0.97) + [[0.9, -np.sqrt(1 - 0.81)]] + at(0.8) + at(0.8), np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3])
    out = split_loose_small(X, Refined(labels, np.full(11, 0.5, np.float32)), {2: 0.94, 3: 0.93}).labels
    assert out[0] != out[1] and out[2] == out[3]
    assert out[4] == out[5] and out[6] not in (out[4], out[7])  # triple mean 0.88: its 0.97 pair stays
    assert len(set(out[7:])) == 1  # four members: not judged here


@pytest.fixture(scope="module")
def strays(data_dir, face_models):
    from lookalike.cluster.faces import faces_of_paths

    ds = read_faces(data_dir / "faces_large")
    keys = [f"images/{n}.jpg" for n in STRAYS]
    return [ds.identity[k] for k in keys], faces_of_paths([str(ds.files[k]) for k in keys])


def test_stray_photos_of_two_people_are_no_pair(strays):
    ids, faces = strays
    pred, truth = _cluster_photos(ids, faces)
    assert metrics.bcubed_prf(pred, truth).precision == 1.0
    assert pred[STRAYS.index(TWICE[0])] == pred[STRAYS.index(TWICE[1])]  # a real pair stays one person
    main = [pred[n] for n, i in truth.items() if i == "person_2862e374"]
    assert max(main.count(c) for c in main) >= 4
    old, _ = _cluster_photos(ids, faces, small_min_cosine=None)  # the fixture is a real case
    assert metrics.bcubed_prf(old, truth).precision < 0.9
