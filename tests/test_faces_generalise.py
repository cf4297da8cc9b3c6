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

    conf = {k: BY["face"][k] for k in ("threshold", "k", "link_threshold", "floor")} | params
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
