"""Copies of copies follow a weak link only when a triangle confirms it (issue 13): a crop of a
Sacre-Coeur photo fits another photo of that facade (a `background` composite) at 0.85, and used to
chain that composite into the photo's whole copy group. Fixture made from ../shared/data at test time."""

from __future__ import annotations

from unittest import mock

import pytest
from PIL import Image, ImageOps

from conftest import CopyFixture
from lookalike.search.copy import CopyMode


@pytest.fixture(scope="module")
def facade(data_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("copy_chains")
    photo = ImageOps.exif_transpose(Image.open(data_dir / "retrieval" / "images" / "sacre_coeur" /
                                               "71295362_4051449754.jpg")).convert("RGB")
    photo.thumbnail((1024, 1024), Image.LANCZOS)  # 675 x 1012
    photo.save(tmp / "photo.jpg", quality=92)
    photo.resize((540, 810), Image.LANCZOS).save(tmp / "smaller.jpg", quality=75)
    photo.crop((270, 318, 555, 745)).save(tmp / "crop.jpg", quality=85)  # a 42 % crop: the facade, 2.4x
    other = (data_dir / "background" / "images" / "landmark_sacre_coeur"  # built on another photo of the facade
             / "landmark_sacre_coeur__01_full_p3m_71bcce3a.jpg")
    files = {n: str(tmp / f"{n}.jpg") for n in ("photo", "smaller", "crop")} | {"other_photo": str(other)}
    return CopyFixture(files, tmp / "idx")


def test_crop_joins_its_photo_but_another_photo_of_the_facade_does_not(facade):
    assert facade.pair("photo", "smaller") is not None and facade.pair("photo", "crop") is not None
    for copy in ("photo", "smaller", "crop"):  # before: all three, the first two as copies of copies
        assert facade.pair("other_photo", copy) is None, copy


def _link(a, b, score, method="sift", **det):
    return (a, b, score, method, det)


@pytest.mark.parametrize("verified, chained", [(0.3, False), (0.95, True)])
def test_a_weak_link_joining_two_groups_needs_a_triangle(verified, chained):
    """1-2 and 3-4 are strong pairs; the weak link 2-3 joins them only if 2 or 3 verifies against the
    other's partner."""
    links = [_link(1, 2, 0.97), _link(3, 4, 0.95), _link(2, 3, 0.85, scale=1.0)]
    with mock.patch.object(CopyMode, "_verify_any", return_value={(1, 3): (verified, {}), (2, 4): (0.2, {})}):
        kept, doubtful = CopyMode()._chained(None, links)
    assert ((2, 3) in {h[:2] for h in kept}) is chained and ((2, 3) in doubtful) is not chained


def test_a_part_joins_a_group_freely_but_a_larger_frame_is_checked():
    """A crop (the part: its frame lands at half size in the other) joins its original's group; the
    larger frame of a weak link must verify against the part's partners."""
    calls = []

    def verify_any(self, index, pairs):
        calls.append(pairs)
        return {p: (0.1, {}) for p in pairs}

    with mock.patch.object(CopyMode, "_verify_any", verify_any):
        part, _ = CopyMode()._chained(None, [_link(1, 2, 0.97), _link(3, 1, 0.85, scale=0.5)])  # 3 a part of 1
        larger, _ = CopyMode()._chained(None, [_link(1, 2, 0.97), _link(1, 3, 0.85, scale=0.5)])  # 1 a part of 3
    assert (3, 1) in {h[:2] for h in part}
    assert (1, 3) not in {h[:2] for h in larger} and calls[-1] == [(2, 3)]
