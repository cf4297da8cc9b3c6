"""Picture regions (features/regions.py) on real files of ../shared/data: a box that a few stray pixels
widen is trimmed, so the picture is still found; a person pasted on a photo is no picture; a picture
shown small in a large screenshot is described from the file's own pixels (Decoded.finer), where the
768 px working image leaves it too few to verify against its original."""

from __future__ import annotations

import io
import random

from PIL import Image

from conftest import desktop_screenshot

from lookalike.features import regions as FR
from lookalike.features import registry
from lookalike.imageio import decode_bytes, load_file
from lookalike.search import zoom as Z


def test_stray_pixels_do_not_hide_a_picture(data_dir):
    """Dev desktop screenshots whose picture box a few pixels of its border widened: found now."""
    copies = data_dir / "near_duplicate" / "images" / "derived_transforms" / "copies"
    for name in ("o007", "o009", "o015", "o016", "o017"):
        img = load_file(copies / f"{name}__screenshot.jpg").rgb
        boxes = FR.find_regions(img)
        assert len(boxes) == 1, name
        x0, y0, x1, y1 = boxes[0]
        assert (x1 - x0) * (y1 - y0) >= 0.6 * img.shape[0] * img.shape[1], (name, boxes)


def test_photographs_and_pasted_people_are_no_pictures(data_dir):
    """The background set's photos (people pasted on backgrounds among them): at most one small region
    in 248 (a patch of sky between roofs), none around a pasted person."""
    files = sorted((data_dir / "background" / "images").glob("*/*.jpg"))
    assert len(files) >= 200
    found = {f.name: FR.find_regions(load_file(f).rgb) for f in files}
    with_regions = [n for n, b in found.items() if b]
    assert len(with_regions) <= 1, with_regions
    assert not any("rembg" in n for n in with_regions)


def _screenshot(photo: Image.Image, rng: random.Random) -> bytes:
    """A 30 % crop of the photo, 380 px wide in a 1920 x 1080 desktop screenshot (152 px of the working image)."""
    shot = desktop_screenshot(photo, rng, crop=0.3, size=(1920, 1080), panel=300, lines=40, captions=False,
                              at=(1200, 300), width=380)
    out = io.BytesIO()
    shot.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_small_picture_is_described_from_its_own_pixels(data_dir, model_cache):
    """Each screenshot's region verified against its original seen closer (as copy mode does): from the
    working image's 152 px 10 of 12 reach the copy threshold, from the file's own pixels all of them."""
    from lookalike import models

    models.prepare("efficientnet-lite0")
    net = registry.get("cnn").net
    found = {"working": 0, "finer": 0}
    shown = 0
    for path in sorted((data_dir / "retrieval" / "images" / "phototourism").glob("*.jpg")):
        data = _screenshot(Image.open(path).convert("RGB"), random.Random(7))
        shot = decode_bytes(data, keep_source=True)
        original = Z.describe(load_file(path).rgb)
        for how, finer in (("working", None), ("finer", shot.finer)):
            regions = FR.describe(shot.rgb, net, finer)
            if regions:
                r = regions[0]
                found[how] += Z.rescore(r.local, r.thumb, original, whole=False)[0] >= 0.8
        shown += bool(FR.find_regions(shot.rgb))
    assert shown >= 11
    assert found["finer"] == shown, found
    assert found["working"] <= shown - 2, found


def test_finer_decodes_the_file_again_only_when_it_is_larger(data_dir):
    photo = Image.open(sorted((data_dir / "retrieval" / "images" / "phototourism").glob("*.jpg"))[0]).convert("RGB")
    out = io.BytesIO()
    photo.thumbnail((480, 480))
    photo.resize((photo.width * 5, photo.height * 5)).save(out, "JPEG", quality=90)  # 2400 px long side
    img = decode_bytes(out.getvalue(), keep_source=True)
    assert max(img.rgb.shape[:2]) == 768
    assert max(img.finer(1500).shape[:2]) == 1500
    assert max(img.finer(5000).shape[:2]) == 2400  # never beyond the file's own size
    assert img.finer(600) is img.rgb  # the working image is fine enough
    assert decode_bytes(out.getvalue()).finer(1500) is not None  # without the bytes: the working image
    assert max(decode_bytes(out.getvalue()).finer(1500).shape[:2]) == 768
