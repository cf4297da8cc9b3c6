"""Same-background search on the background set (every 6th background, to keep the run short).

Floors sit a little below what was measured on the DEV set (see the report of evaluate_background):
full set: background mAP 0.88-0.90, similar 0.48; this subset: 0.99 vs 0.89.
"""

import os

import numpy as np
import pytest

from lookalike import models


@pytest.fixture(scope="module")
def result(data_dir, tmp_path_factory):
    # models are prepared once into $LOOKALIKE_CACHE when set (CI), else into a temporary cache dir
    old = os.environ.get("LOOKALIKE_CACHE")
    if not old:
        os.environ["LOOKALIKE_CACHE"] = str(tmp_path_factory.mktemp("lookalike-cache"))
    try:
        for name in ("efficientnet-lite0", "selfie-segmentation", "pose-detection"):
            if not models.is_prepared(name):
                models.prepare(name)
        from lookalike.eval.background import evaluate_background

        yield evaluate_background(data_dir, every=6)
    finally:
        if not old:
            del os.environ["LOOKALIKE_CACHE"]


def test_background_beats_whole_image_search(result):
    assert result["background"]["map"] >= 0.88
    assert result["background"]["map"] - result["similar"]["map"] >= 0.06  # 0.09 here, 0.40 on the full set
    assert result["background"]["recall_at"][10] >= 0.85


def test_same_person_other_background_is_not_a_match(result):
    p = result["pairs"]
    assert p["hard_negatives"] > 0
    assert p["hard_negative_false_rate"] <= 0.01
    assert p["precision"] >= 0.95
    assert p["recall"] >= 0.65


def test_person_mask_quality(result):
    assert result["mask_iou"]["images"] > 20
    assert result["mask_iou"]["mean"] >= 0.72  # 0.76 here, 0.82 on the full set


def test_mask_blob_round_trip_and_reasons():
    from lookalike.features.background import MaskRecord, decode_mask, encode_mask
    from lookalike.search.background import BackgroundMode

    rec = MaskRecord(np.eye(8, dtype=np.uint8) * 255, 0.7, 0.2, 0.25)
    back = decode_mask(encode_mask(rec))
    assert np.array_equal(back.mask, rec.mask) and back.person_share == pytest.approx(0.7)
    plain = MaskRecord(rec.mask, 0.1, 0.9, 0.8)
    mode = BackgroundMode()
    score, _, det = mode.fuse(0.99, 0.99, 1.0, rec, plain)
    assert score <= mode.weak_cap < mode.threshold
    assert any(r.startswith("not comparable: the person covers 70%") for r in det["reasons"])
    assert any(r.startswith("weak evidence: plain background") for r in det["reasons"])
    score, _, det = mode.fuse(0.99, 0.99, 1.0, plain, plain)
    assert score >= mode.threshold and "reasons" not in det
