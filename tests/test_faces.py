"""The `faces` feature: every face with box, score, quality and a unit-length embedding, on real data."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.eval.datasets import read_faces
from lookalike.eval.metrics import bcubed_prf
from lookalike.imageio import Decoded, load_file

@pytest.fixture(scope="module")
def ext(face_models):
    """The registered extractor, with its models prepared."""
    from lookalike.features import registry

    return registry.get("faces")


def _decoded(rgb: np.ndarray) -> Decoded:
    return Decoded(rgb=rgb, width=rgb.shape[1], height=rgb.shape[0], format="test", sha256="", pixel_digest="")


def _main_faces(ext, root, keys):
    from lookalike.features.faces import main_face

    mains = {}
    for k in keys:
        img = load_file(root / k)
        faces = ext.decode(ext.compute(img))
        h, w = img.rgb.shape[:2]
        assert all(a.size >= b.size for a, b in zip(faces, faces[1:]))  # largest first
        for f in faces:
            assert f.embedding.dtype == np.float32 and f.embedding.shape == (128,)
            assert abs(np.linalg.norm(f.embedding) - 1) < 1e-4
            assert 0 <= f.quality <= 1 and 0 <= f.score <= 1
            x0, y0, x1, y1 = f.box
            assert -0.25 * w < x0 < x1 < 1.25 * w and -0.25 * h < y0 < y1 < 1.25 * h
        mains[k] = main_face(faces)
        assert mains[k] is (faces[0] if faces else None)
    return mains


def _average_linkage(E: np.ndarray, thr: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    return AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                   distance_threshold=1 - thr).fit_predict(E)  # fmt: skip


def test_blob_round_trip_and_no_face(ext):
    from lookalike.features.faces import FaceRecord, decode_faces, encode_faces, main_face

    assert ext.kind == "blob" and ext.version
    e = np.random.default_rng(0).normal(size=128).astype(np.float32)
    recs = [FaceRecord((1.0, 2.0, 30.0, 40.0), 0.9, 0.7, e / np.linalg.norm(e))]
    back = decode_faces(encode_faces(recs))
    assert back[0].box == recs[0].box and np.array_equal(back[0].embedding, recs[0].embedding)
    assert back[0].score == pytest.approx(0.9) and back[0].quality == pytest.approx(0.7)
    with pytest.raises(ValueError, match="recompute"):
        decode_faces(b"nope")
    blank = ext.decode(ext.compute(_decoded(np.full((240, 320, 3), 128, np.uint8))))
    assert blank == [] and main_face(blank) is None


def test_faces_set_clusters_by_person(ext, data_dir):
    from lookalike.features.faces import SAME_PERSON

    ds = read_faces(data_dir / "faces")
    mains = _main_faces(ext, ds.root, ds.images)
    keys = [k for k in ds.images if mains[k] is not None]
    assert len(keys) >= len(ds.images) - 1
    E = np.stack([mains[k].embedding for k in keys])
    ids = np.array([ds.identity[k] for k in keys])
    iu = np.triu_indices(len(E), 1)
    same, match = (ids[:, None] == ids[None])[iu], (E @ E.T)[iu] >= SAME_PERSON
    precision, recall = (match & same).sum() / max(1, match.sum()), (match & same).sum() / same.sum()
    prf = bcubed_prf(dict(zip(keys, _average_linkage(E, SAME_PERSON))), ds.identity)
    print(f"faces: pairs at {SAME_PERSON}: P {precision:.3f} R {recall:.3f}; BCubed {prf}")
    assert precision >= 0.99 and recall >= 0.97
    assert prf.f1 >= 0.98

    for rel in ds.multi_face:  # the group photo shows several people
        assert len(ext.decode(ext.compute(load_file(ds.root / rel)))) >= 2


def test_faces_large_sample_pairs_and_quality(ext, data_dir):
    """Every 16th in-the-wild photo (54 photos): same-person pairs of the main faces."""
    from sklearn.metrics import roc_auc_score

    from lookalike.features.faces import SAME_PERSON

    ds = read_faces(data_dir / "faces_large")
    sample = sorted(ds.images)[::16]
    mains = _main_faces(ext, ds.root, sample)
    keys = [k for k in sample if mains[k] is not None]
    assert len(keys) >= len(sample) - 1
    E = np.stack([mains[k].embedding for k in keys])
    ids = np.array([ds.identity[k] for k in keys])
    S = E @ E.T
    iu = np.triu_indices(len(E), 1)
    same, s = (ids[:, None] == ids[None])[iu], S[iu]
    match = s >= SAME_PERSON
    auc = roc_auc_score(same, s)
    precision, recall = (match & same).sum() / max(1, match.sum()), (match & same).sum() / same.sum()
    print(f"faces_large sample ({len(keys)} photos): AUC {auc:.4f}, at {SAME_PERSON}: P {precision:.3f} R {recall:.3f}")
    assert auc >= 0.99
    assert precision >= 0.90 and recall >= 0.83
