"""Exact mode (search/exact.py): byte copies and pixel-identical files in any format, above the
768 px working size too, and nothing that differs by a single pixel."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import Index
from lookalike.search import exact
from lookalike.search.exact import ExactMode



def _big_jpegs(data_dir, n: int) -> list:
    """The `n` smallest near_duplicate JPEGs with a long side of 1600 px or more (by content): big
    enough to be decoded in draft mode (at half size or less) for the working image."""
    root = data_dir / "near_duplicate"
    found = []
    for line in (root / "images.txt").read_text(encoding="utf-8").splitlines():
        try:
            with Image.open(root / line) as im:
                if im.format == "JPEG" and max(im.size) >= 1600:
                    found.append((im.size[0] * im.size[1], line))
        except Exception:
            continue
    if len(found) < n:
        pytest.fail(f"fewer than {n} JPEGs of 1600 px or more in {root}")
    return [root / line for _, line in sorted(found)[:n]]


def _save(rgb: np.ndarray, path, **kw) -> None:
    Image.fromarray(rgb).save(path, **kw)


@pytest.fixture(scope="module")
def twins(data_dir, tmp_path_factory):
    """A folder of twins of two real photos, indexed. Returns (Index, folder)."""
    folder = tmp_path_factory.mktemp("twins")
    a, b = _big_jpegs(data_dir, 2)
    shutil.copy(a, folder / "a.jpg")
    shutil.copy(a, folder / "a_copy.jpeg")  # byte copy
    with Image.open(a) as im:
        px = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))  # the JPEG's own pixels, full size
    _save(px, folder / "a.png")
    _save(px, folder / "a.bmp")
    _save(px, folder / "a.webp", lossless=True, quality=0)
    one = px.copy()
    y, x = one.shape[0] // 2, one.shape[1] // 3
    one[y, x] = one[y, x] ^ 128  # one pixel differs, clearly
    _save(one, folder / "a_onepx.png")
    _save(px, folder / "a_q95.jpg", quality=95)  # same size, looks the same, pixels differ
    shutil.copy(b, folder / "b.jpg")
    with Image.open(b) as im:
        _save(np.asarray(ImageOps.exif_transpose(im).convert("RGB")), folder / "b.png")
    idx = Index.open(folder / "idx")
    report = idx.add([folder], workers=1)
    assert report.added == 9 and report.failed == 0, report
    yield idx, folder
    idx.close()


def _names(idx, hits) -> set:
    paths = idx.catalog.paths({i for h in hits for i in h[:2]})
    return {tuple(sorted(paths[i].rsplit("/", 1)[-1] for i in h[:2])) for h in hits}


A_TWINS = ["a.bmp", "a.jpg", "a.png", "a.webp", "a_copy.jpeg"]


def test_pixel_twins_above_working_size_found(twins):
    idx, _ = twins
    hits = ExactMode().pairs(idx, 1.0)
    expected = {tuple(sorted((x, y))) for i, x in enumerate(A_TWINS) for y in A_TWINS[i + 1:]} | {("b.jpg", "b.png")}
    assert _names(idx, hits) == expected  # 11 pairs: nothing missed, nothing near-identical
    methods = {_names(idx, [h]).pop(): h[3] for h in hits}
    assert methods[("a.jpg", "a_copy.jpeg")] == "sha256"
    assert methods[("a.jpg", "a.png")] == "pixels"
    assert all(h[2] == 1.0 for h in hits)


def test_near_identical_not_exact_and_digests_cached(twins, monkeypatch):
    idx, _ = twins
    ExactMode().pairs(idx, 1.0)
    cached = dict(idx.catalog.db.execute("SELECT file_id, data FROM features WHERE name=?", (exact.DIGEST,)))
    paths = idx.catalog.paths(cached)
    # candidates were decoded (the one-pixel and q95 copies are same-size, look-alike candidates) ...
    assert {"a.png", "a_onepx.png"} <= {p.rsplit("/", 1)[-1] for p in paths.values()}
    assert len(set(cached.values())) == len(cached) - 4  # a.png/bmp/webp/jpg share one digest; b's share one
    # ... and a second run reads them from the catalog instead of decoding again

    def no_decode(data):
        raise AssertionError("full-size digest recomputed")

    monkeypatch.setattr(exact, "full_pixel_digest", no_decode)
    assert len(ExactMode().pairs(idx, 1.0)) == 11


def test_search_finds_twins_of_a_query(twins):
    idx, folder = twins
    q = folder / "a.png"
    query = idx.make_query(str(q), q.read_bytes(), ExactMode.features)
    hits = ExactMode().search(idx, query, 10, 1.0)
    found = {idx.catalog.paths([h[0]])[h[0]].rsplit("/", 1)[-1] for h in hits}
    assert found == set(A_TWINS)
    # a query that is not a file to read back: same bytes, or the same working image
    query.key = "upload"
    hits = ExactMode().search(idx, query, 10, 1.0)
    found = {idx.catalog.paths([h[0]])[h[0]].rsplit("/", 1)[-1]: h for h in hits}
    assert "a.png" in found and set(found) <= set(A_TWINS)
    assert all(h[3] == exact.FALLBACK for n, h in found.items() if n != "a.png")


def test_pictures_not_on_disk_compared_on_working_image(twins):
    """Pictures indexed from memory (documents) cannot be decoded again: identical working images count."""
    _, folder = twins
    blobs = [(f"doc.docx::{n}", (folder / n).read_bytes()) for n in ("a.png", "a.bmp", "a_onepx.png", "b.png")]
    with Index.open(folder / "blob_idx") as idx:
        idx.add_blobs(blobs, workers=1)
        hits = ExactMode().pairs(idx, 1.0)
        paths = idx.catalog.paths({i for h in hits for i in h[:2]})
        assert {tuple(sorted((paths[a], paths[b]))) for a, b, *_ in hits} == {("doc.docx::a.bmp", "doc.docx::a.png")}
        assert hits[0][3:] == ("pixels", exact.FALLBACK)


def test_transparency_counts(tmp_path):
    """A PNG with translucent pixels is not the same picture as its flattening over white."""
    rgba = np.zeros((900, 1000, 4), np.uint8)
    rgba[..., :3] = np.linspace(0, 255, 1000, dtype=np.uint8)[None, :, None]
    rgba[..., 3] = 255
    rgba[:300, :300, 3] = 128
    im = Image.fromarray(rgba)
    im.save(tmp_path / "alpha.png")
    flat = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im).convert("RGB")
    flat.save(tmp_path / "flat.png")
    Image.fromarray(rgba[..., :3]).save(tmp_path / "opaque.png")
    rgba[..., 3] = 255
    Image.fromarray(rgba).save(tmp_path / "opaque_rgba.png")  # opaque alpha: same pixels as opaque.png
    with Index.open(tmp_path / "idx") as idx:
        idx.add([tmp_path], workers=1)
        assert _names(idx, ExactMode().pairs(idx, 1.0)) == {("opaque.png", "opaque_rgba.png")}


@pytest.mark.slow
def test_near_duplicate_exact_pairs_match_reference(exact_found):
    (byte_pairs, pixel_pairs), found = exact_found
    assert len(pixel_pairs - byte_pairs) >= 5
    assert pixel_pairs | byte_pairs == found, (sorted(pixel_pairs - found)[:5], sorted(found - pixel_pairs - byte_pairs)[:5])
