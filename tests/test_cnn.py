"""CNN descriptor (EfficientNet-Lite0 -> ONNX -> GeM) on the retrieval set.

Converting the model takes a few seconds, so it happens once per session (`cnn` fixture) into the
session model cache (conftest `model_cache`: $LOOKALIKE_CACHE when set, else a temporary folder).
"""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from lookalike import config, models
from lookalike.features.cnn import CnnDescriptor, apply_whitening, fit_pca_whitening
from lookalike.eval.metrics import leave_one_out_map
from lookalike.imageio import load_file


@pytest.fixture(scope="session")
def cnn(model_cache):
    models.prepare("efficientnet-lite0")
    return CnnDescriptor()


@pytest.fixture(scope="session")
def retrieval(data_dir):
    root = data_dir / "retrieval"
    with open(root / "groups.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [load_file(root / r["path"]).rgb for r in rows], [r["group"] for r in rows]


def test_conversion_records_checksum(cnn):
    p = models.path("efficientnet-lite0")
    entry = json.loads((config.cache_dir() / "manifest.json").read_text())["efficientnet-lite0"]
    assert entry["sha256"] == models.sha256_file(p)
    assert p.stat().st_size > 5_000_000


def test_descriptors_are_unit_norm(cnn, retrieval):
    imgs = retrieval[0][:5] + [np.zeros((50, 300, 3), np.uint8), np.full((7, 7), 200, np.uint8)]
    D = cnn.embed(imgs)
    assert D.shape == (7, cnn.dim) and D.dtype == np.float32 and cnn.dim == 1280
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, atol=1e-5)
    assert cnn.embed([]).shape == (0, cnn.dim)


def test_retrieval_map_above_floor(cnn, retrieval):
    imgs, groups = retrieval
    D = cnn.embed(imgs)
    assert leave_one_out_map(D, groups) >= 0.70  # measured 0.77


def test_copy_scores_above_other_photos(cnn, retrieval):
    imgs = retrieval[0][::4]  # different photographs (some of the same landmark)
    copies = []
    for im in imgs:
        small = cv2.resize(im, (im.shape[1] // 2, im.shape[0] // 2), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
        copies.append(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
    A, B = cnn.embed(imgs), cnn.embed(copies)
    copy_cos = np.sum(A * B, axis=1)
    other = A @ A.T
    np.fill_diagonal(other, -1)
    assert copy_cos.min() > 0.9  # measured >= 0.94 (half size, JPEG q75)
    assert np.all(other.max(axis=1) < copy_cos)  # each copy beats every other photo of that image
    assert other[other > -1].mean() < 0.7  # measured 0.51


def test_masked_pooling(cnn, retrieval):
    imgs = retrieval[0][:4]
    full = [np.ones(im.shape[:2], np.float32) for im in imgs]
    np.testing.assert_allclose(cnn.embed_masked(imgs, full), cnn.embed(imgs), atol=1e-5)
    # Keeping only the left half gives a different, still unit-norm descriptor and reports the kept fraction.
    half = []
    for im in imgs:
        m = np.zeros(im.shape[:2], np.float32)
        m[:, : im.shape[1] // 2] = 1
        half.append(m)
    D, kept = cnn.embed_masked(imgs, half, return_kept=True)
    np.testing.assert_allclose(np.linalg.norm(D, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(kept, 0.5, atol=0.01)
    assert np.all(np.sum(D * cnn.embed(imgs), axis=1) < 0.99)
    with pytest.raises(ValueError):
        cnn.embed_masked(imgs[:1], [np.ones((3, 3), np.float32)])


def test_masked_background_search(cnn, data_dir):
    """Same-background retrieval on composites: pooling only the background (ground-truth person masks)
    beats pooling the whole picture."""
    root = data_dir / "background"
    with open(root / "groups.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    mask_of = {r["path"]: (root / "masks" / r["path"][len("images/") :]).with_suffix(".png") for r in rows}
    rows = [r for r in rows if mask_of[r["path"]].exists()]  # composites only
    imgs, keep = [], []
    for r in rows[::2]:
        im = load_file(root / r["path"]).rgb
        m = cv2.imread(str(mask_of[r["path"]]), cv2.IMREAD_GRAYSCALE)
        imgs.append(im)
        keep.append(1 - cv2.resize(m, (im.shape[1], im.shape[0])).astype(np.float32) / 255)
    labels = [r["background"] for r in rows[::2]]
    bg = CnnDescriptor(layer="block", size=320)
    plain, masked = leave_one_out_map(bg.embed(imgs), labels), leave_one_out_map(bg.embed_masked(imgs, keep), labels)
    assert masked >= 0.75  # measured 0.85 (0.83 on all images incl. real photos)
    assert masked > plain + 0.2  # measured 0.52 unmasked


def test_pca_whitening():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 16)) @ rng.normal(size=(16, 16))
    mean, proj = fit_pca_whitening(X, 8)
    assert mean.shape == (16,) and proj.shape == (16, 8)
    W = (X - mean) @ proj
    np.testing.assert_allclose(np.cov(W.T), np.eye(8), atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(apply_whitening(X, mean, proj), axis=1), 1.0, atol=1e-5)
