"""Copy mode on the failure classes of issue 13, on fixtures made from ../shared/data at test time:
a crop shown small in a desktop screenshot and a photo pasted into a collage are found (picture
regions); two photos of one fixed camera at another moment are not copies; a logo overlay still is."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image

from conftest import CopyFixture, desktop_screenshot

def _collage(photos: list[Image.Image]) -> Image.Image:
    """Three photos on a checked background."""
    yy, xx = np.mgrid[0:1100, 0:1600]
    checks = ((xx // 24 + yy // 24) % 2 == 0)[..., None]
    canvas = Image.fromarray(np.where(checks, np.uint8([30, 120, 40]), np.uint8([150, 110, 170])).astype(np.uint8))
    for im, (x0, y0, x1, y1) in zip(photos, [(40, 40, 760, 520), (820, 60, 1560, 560), (300, 600, 1300, 1060)]):
        pic = im.copy()
        pic.thumbnail((x1 - x0, y1 - y0), Image.LANCZOS)
        canvas.paste(pic, (x0, y0))
    return canvas


@pytest.fixture(scope="module")
def fixture_dedup(data_dir, tmp_path_factory):
    """One small index of every fixture and its copy pairs."""
    tmp = tmp_path_factory.mktemp("copy_regions")
    rng = random.Random(13)
    retrieval = sorted((data_dir / "retrieval" / "images" / "phototourism").glob("*.jpg"))
    shot_src, collage_src = str(retrieval[5]), str(retrieval[10])
    faces = sorted((data_dir / "faces_large").rglob("*.jpg"))[:2]
    load = lambda p: Image.open(p).convert("RGB")  # noqa: E731
    desktop_screenshot(load(shot_src), rng).save(tmp / "screenshot.jpg", quality=85)
    _collage([load(faces[0]), load(collage_src), load(faces[1])]).save(tmp / "collage.jpg", quality=85)
    balcony = data_dir / "background" / "images" / "bm_balcony"
    nd = data_dir / "near_duplicate" / "images" / "derived_transforms"
    files = {
        "screenshot_original": shot_src, "screenshot": str(tmp / "screenshot.jpg"),
        "collage_original": collage_src, "collage": str(tmp / "collage.jpg"),
        "moment_a": str(balcony / "bm_balcony__real0_bm_subject.jpg"),
        "moment_b": str(balcony / "bm_balcony__real3_bm_subject.jpg"),
        "moment_c": str(balcony / "bm_balcony__real1_bm_subject.jpg"),  # the head turned: a patch of 2.7 %
        "logo_original": str(nd / "originals" / "o001.jpg"),
        "logo_copy": str(nd / "copies" / "o001__logo_overlay.jpg"),
    }
    return CopyFixture(files, tmp / "idx")


def test_screenshot_of_a_crop_is_found(fixture_dedup):
    fx = fixture_dedup
    assert fx.pair("screenshot_original", "screenshot") is not None
    # search agrees with dedup, from either side
    for q, other in (("screenshot", "screenshot_original"), ("screenshot_original", "screenshot")):
        assert fx.search_finds(q, other), (q, other)


def test_photo_in_a_collage_is_found(fixture_dedup):
    fx = fixture_dedup
    assert fx.pair("collage_original", "collage") is not None
    assert fx.search_finds("collage_original", "collage")


def test_fixed_camera_another_moment_is_not_a_copy(fixture_dedup, data_dir):
    """Real photos of one balcony from one camera, the subject moved or only her head turned: they align
    perfectly but disagree in one natural patch. Not reported; verification calls them the same scene."""
    from lookalike.features.local import extract_local
    from lookalike.imageio.load import load_file
    from lookalike.search.copy import copy_score
    from lookalike.search.photometric import colour_thumb, thumb
    from lookalike.search.verify import verify

    fx = fixture_dedup
    for other in ("moment_b", "moment_c"):
        assert fx.pair("moment_a", other) is None, other
        a, b = load_file(fx.files["moment_a"]).rgb, load_file(fx.files[other]).rgb
        la, lb = extract_local(a), extract_local(b)
        v = verify(la, lb)
        assert v.is_copy  # the geometry alone says copy
        score, det = copy_score(v, thumb(a), thumb(b), la, lb, lambda: (colour_thumb(a), colour_thumb(b)))
        assert score < 0.8 and det["relation"] == "same-scene", (other, det)


def test_logo_overlay_is_still_a_copy(fixture_dedup):
    fx = fixture_dedup
    p = fx.pair("logo_original", "logo_copy")
    assert p is not None and p.score >= 0.8
    assert p.details.get("relation") != "same-scene"


def test_no_regions_in_an_ordinary_photo_and_pictures_in_a_composite(fixture_dedup):
    from lookalike.features.regions import find_regions
    from lookalike.imageio.load import load_file

    fx = fixture_dedup
    for role in ("screenshot_original", "collage_original", "moment_a", "logo_original"):
        assert find_regions(load_file(fx.files[role]).rgb) == [], role
    shot = find_regions(load_file(fx.files["screenshot"]).rgb)
    assert len(shot) >= 1
    x0, y0, x1, y1 = shot[0]  # the picture: 530 px of 1600 at (520, 120), working image 768 px wide
    s = 768 / 1600
    assert abs(x0 - 520 * s) < 12 and abs(x1 - 1050 * s) < 12 and abs(y0 - 120 * s) < 12
    assert len(find_regions(load_file(fx.files["collage"]).rgb)) == 3


def test_regions_of_files_that_share_keypoints_are_candidates():
    """regions.voted: each region of a file sharing keypoints with another is verified against the
    other's whole image, unless the other is a composite too (two collages sharing one photo)."""
    from types import SimpleNamespace

    from lookalike.search.regions import voted

    e = np.eye(4, dtype=np.float32)
    owners = {1: [SimpleNamespace(cnn=e[0]), SimpleNamespace(cnn=e[1])], 3: [SimpleNamespace(cnn=e[2])]}
    wholes = {1: e[3], 2: e[0], 3: e[2]}
    assert voted(owners, [(1, 2), (1, 3)], wholes) == [(1, 2, 0, 1.0), (1, 2, 1, 0.0)]
    assert voted(owners, [(2, 3)], wholes) == [(3, 2, 0, 0.0)]
