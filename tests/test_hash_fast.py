"""`lookalike hash`'s fast path gives what the general one gives: JPEG luma through simplejpeg with the
EXIF orientation read from the header, PDQ of the 64x64 squares computed together, images hashed in
batches. Each is checked against Pillow / pdqhash / one image at a time."""

from __future__ import annotations

import glob
import io
import os
import struct

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import BadInput
from lookalike.features.filehash import SHORT_SIDE, many_hashes, pdq_of_squares, thumbnails
from lookalike.imageio import quick

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo")


def _photo(w: int = 1200, h: int = 900, seed: int = 0) -> np.ndarray:
    """A smooth picture with edges (noise alone hashes to noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * (c + 1) + y * (3 - c)) % 256 for c in range(3)], axis=2).astype(np.float64)
    img[h // 3 : h // 2, w // 4 : w // 2] = rng.integers(0, 255, 3)
    return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


def _with_segment(jpeg: bytes, marker: int, body: bytes) -> bytes:
    """The JPEG with one more APPn segment right after SOI."""
    return jpeg[:2] + struct.pack(">BBH", 0xFF, marker, len(body) + 2) + body + jpeg[2:]


def _exif(orientation: int, order: str = "<", kind: int = 3) -> bytes:
    """An Exif APP1 body whose first IFD holds only the orientation (SHORT by default, or LONG)."""
    head = (b"II*\0" if order == "<" else b"MM\0*") + struct.pack(order + "I", 8)
    value = struct.pack(order + "HH", orientation, 0) if kind == 3 else struct.pack(order + "I", orientation)
    entry = struct.pack(order + "HHI", 0x0112, kind, 1) + value
    return b"Exif\0\0" + head + struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)


def _pillow_luma(data: bytes, monkeypatch) -> np.ndarray | str:
    """What `decode_luma` gives when Pillow decodes everything (the general path)."""
    with monkeypatch.context() as m:
        m.setattr(quick, "simplejpeg", None)
        try:
            return quick.decode_luma(data, min_side=SHORT_SIDE)
        except BadInput as e:
            return str(e)


def test_jpeg_luma_equals_pillow_draft(monkeypatch):
    """Same pixels as Pillow's draft mode at every DCT scale, for colour, greyscale, 4:4:4 and
    progressive JPEGs and the demo photos; the fast path is the one taken."""
    photo = _photo()
    cases = [_jpeg(photo), _jpeg(photo, subsampling=0), _jpeg(photo, progressive=True),
             _jpeg(np.ascontiguousarray(photo[:, :, 1])), _jpeg(photo[:300, :500]), _jpeg(photo[:150, :700]),
             _jpeg(np.repeat(np.repeat(photo, 2, 0), 2, 1))]  # short sides 900, 300, 150, 1800: scales 1/8 .. 1
    cases += [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(DEMO, "*.jpg")))]
    for data in cases:
        assert quick._jpeg_luma(data, SHORT_SIDE, 10**9) is not None
        fast = quick.decode_luma(data, min_side=SHORT_SIDE)
        assert np.array_equal(fast, _pillow_luma(data, monkeypatch))
        assert SHORT_SIDE <= min(fast.shape) < 2 * SHORT_SIDE or min(fast.shape) < SHORT_SIDE


@pytest.mark.parametrize("order", ["<", ">"])
def test_exif_orientation_read_as_pillow_reads_it(order, monkeypatch):
    photo = _photo(400, 300, seed=1)
    plain = _jpeg(photo)
    for k in range(1, 9):
        data = _with_segment(plain, 0xE1, _exif(k, order))
        assert quick.exif_orientation(data) == k
        assert np.array_equal(quick.decode_luma(data, min_side=SHORT_SIDE), _pillow_luma(data, monkeypatch))
    assert quick.exif_orientation(plain) == 1


def test_unusual_headers_go_to_pillow(monkeypatch):
    """What the header reader does not follow exactly as Pillow does is left to Pillow: XMP orientation,
    two Exif segments (Pillow joins them), an orientation stored as LONG, a broken Exif block, CMYK,
    truncated data. The result is Pillow's either way."""
    photo = _photo(400, 300, seed=2)
    plain = _jpeg(photo)
    xmp = b'http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    cases = {
        "xmp": _with_segment(plain, 0xE1, xmp),
        "two exif": _with_segment(_with_segment(plain, 0xE1, _exif(3)), 0xE1, _exif(6)),
        "long": _with_segment(plain, 0xE1, _exif(6, kind=4)),
        "broken exif": _with_segment(plain, 0xE1, b"Exif\0\0II*\0\xff\xff\xff\x7f"),
    }
    for name, data in cases.items():
        assert quick.exif_orientation(data) is None, name
        assert np.array_equal(quick.decode_luma(data, min_side=SHORT_SIDE), _pillow_luma(data, monkeypatch)), name
    assert quick.decode_luma(cases["xmp"], min_side=SHORT_SIDE).shape[0] > 150  # turned upright (6)
    cmyk = io.BytesIO()
    Image.fromarray(photo).convert("CMYK").save(cmyk, "JPEG")
    assert quick._jpeg_luma(cmyk.getvalue(), SHORT_SIDE, 10**9) is None
    assert quick.decode_luma(cmyk.getvalue(), min_side=SHORT_SIDE).shape == (150, 200)  # 1/2 scale
    with pytest.raises(BadInput, match="truncated"):
        quick.decode_luma(plain[: len(plain) // 2], min_side=SHORT_SIDE)


def test_pdq_of_squares_equals_pdqhash():
    """Bits and quality equal pdqhash's on photos' 64x64 thumbnails, noise, gradients and flat squares
    (where every DCT value is rounding noise and pdqhash itself decides)."""
    pdqhash = pytest.importorskip("pdqhash")
    rng = np.random.default_rng(3)
    squares = [thumbnails(quick.decode_luma(open(p, "rb").read(), min_side=SHORT_SIDE)[None])[3][0]
               for p in sorted(glob.glob(os.path.join(DEMO, "*.jpg")))]
    for i in range(60):
        kind = i % 4
        if kind == 0:
            squares.append(rng.integers(0, 256, (64, 64)).astype(np.float32))
        elif kind == 1:
            walk = np.cumsum(rng.integers(-3, 4, (64, 64)), axis=i % 2) + 128
            squares.append(np.clip(walk, 0, 255).astype(np.float32))
        elif kind == 2:
            squares.append(np.full((64, 64), float(rng.integers(0, 256)), np.float32))
        else:
            squares.append((rng.integers(0, 2, (64, 64)) * 255).astype(np.float32))
    bits, quality = pdq_of_squares(np.stack(squares))
    for square, b, q in zip(squares, bits, quality):
        rgb = np.ascontiguousarray(np.repeat(square.astype(np.uint8)[:, :, None], 3, axis=2))
        ref_bits, ref_quality = pdqhash.compute(rgb)
        assert np.array_equal(b, ref_bits.astype(bool)) and q == ref_quality


def test_hashes_do_not_depend_on_the_batch():
    """Images hashed together (same shapes share products) give what each gives alone."""
    photo = _photo(900, 700, seed=4)
    variants = (photo, photo[:, ::-1], photo[::-1], photo[:600], photo[50:, 30:], photo.transpose(1, 0, 2))
    grays = [quick.decode_luma(_jpeg(np.ascontiguousarray(p)), min_side=SHORT_SIDE) for p in variants]
    together, quality = many_hashes(grays)
    for i, g in enumerate(grays):
        alone, q = many_hashes([g])
        assert np.array_equal(together[i], alone[0]) and quality[i] == q[0]
    assert len({bytes(row) for row in together}) == len(grays)


def _lanczos_one_size(src: int, dst: int) -> np.ndarray:
    """Pillow's Lanczos-3 weights for one output size, written plainly: each output's whole window."""
    scale = src / dst
    stretch = max(scale, 1.0)
    centre = (np.arange(dst) + 0.5) * scale
    j = np.floor(centre - 3.0 * stretch).astype(np.int64)[:, None] + np.arange(int(6.0 * stretch) + 2)[None, :]
    x = (j + 0.5 - centre[:, None]) / stretch
    px = np.pi * np.where(x == 0, 1e-9, x)
    inside = (j >= 0) & (j < src)
    w = 3.0 * np.sin(px) * np.sin(px / 3.0) / (px * px) * ((np.abs(x) < 3.0) & inside)
    out = np.zeros((dst, src))
    out[np.nonzero(inside)[0], j[inside]] = w[inside]
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def test_lanczos_weights_of_all_sizes_at_once_equal_one_size_at_a_time():
    """The weights of the four thumbnail sizes, computed together, are the same numbers (not merely close:
    a rounding difference can move a thumbnail pixel across a .5 and a dHash bit with it)."""
    from lookalike.features.filehash import _FIRST_ROW, _WIDTHS, _lanczos_weights

    for src in [*range(1, 300), *range(300, 2500, 37)]:
        together = _lanczos_weights(src)
        for dst in _WIDTHS:
            rows = together[_FIRST_ROW[dst] : _FIRST_ROW[dst] + dst]
            assert np.array_equal(rows, _lanczos_one_size(src, dst)), (src, dst)


def test_some_hashes_only_give_the_same_bits():
    """`--hashes phash` (or any part) computes only those thumbnails, with the bits of a full run."""
    from lookalike.features.filehash import HASHES

    photo = _photo(1100, 800, seed=5)
    grays = [quick.decode_luma(_jpeg(np.ascontiguousarray(p)), min_side=SHORT_SIDE)
             for p in (photo, photo[::-1], photo[:500])]
    full, quality = many_hashes(grays)
    spans = {"ahash": slice(0, 8), "dhash": slice(8, 16), "phash": slice(16, 24), "whash": slice(24, 32),
             "pdq": slice(32, 64)}
    for kinds in [("phash",), ("ahash", "pdq"), ("dhash", "whash"), HASHES]:
        part, q = many_hashes(grays, kinds)
        for k in HASHES:
            expected = full[:, spans[k]] if k in kinds else np.zeros_like(full[:, spans[k]])
            assert np.array_equal(part[:, spans[k]], expected), (kinds, k)
        assert q == (quality if "pdq" in kinds else [0] * len(grays))


def test_hash_command_hashes_option(tmp_path, capsys):
    """The fast path's `--hashes`: those columns, in the usual order; an unknown name goes to the full CLI."""
    from lookalike.hashing import parse_hashes, run_cli

    files = sorted(glob.glob(os.path.join(DEMO, "*.jpg")))[:3]
    assert run_cli(files) == 0
    full = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    assert run_cli(["--hashes", "pdq,phash", *files]) == 0
    part = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    assert part == [[r[0], r[3], r[5]] for r in full] and part[0] == ["path", "phash", "pdq"]
    assert run_cli(["--hashes=phash,bogus", *files]) is None
    assert parse_hashes("PHash, ahash") == ("ahash", "phash") and parse_hashes(",") is None


def test_decoding_on_threads_gives_the_rows_of_one_thread(tmp_path):
    """A small batch decodes on a thread per core: the same rows in the same order as one thread,
    a bad file in the middle reported in its place."""
    from lookalike.hashing import _hash_chunk

    paths = []
    for i in range(9):
        p = tmp_path / f"{i}.jpg"
        p.write_bytes(_jpeg(_photo(640 + 16 * i, 480, seed=i)) if i != 4 else b"not an image")
        paths.append(str(p))
    one, three = _hash_chunk(paths), _hash_chunk(paths, threads=3)
    assert one == three and [r["path"] for r in three] == paths
    assert "reason" in three[4] and sum("reason" in r for r in three) == 1
