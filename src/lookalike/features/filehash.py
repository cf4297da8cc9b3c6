"""imagehash-compatible hashes of a whole picture, for the `lookalike hash` command.

imagehash shrinks the whole picture with Pillow's Lanczos filter and takes an unnormalised DCT. Doing
the same from a luma image of about 128 px keeps its numbers (within a bit or two) at a small fraction
of the cost: Lanczos from full size is most of imagehash's time. The filter is applied as small weight
matrices (per axis, cut into bands: the kernel covers a few pixels), and images of one size are
shrunk together, so a batch costs a few matrix products per size rather than many per image.
PDQ (Facebook's 256-bit hash) is computed from the 64x64 thumbnail, as pdqhash computes it there.

This module imports numpy only (no Pillow, OpenCV or engine): `hash` on a small batch is mostly
start-up, and OpenCV alone takes longer to import than hashing a hundred files.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from lookalike.imageio.resize import area_shrink

SHORT_SIDE = 128  # the luma image every hash starts from has a short side of 128-255 px (`decode_luma`)


def haar_ll8(px: np.ndarray) -> np.ndarray:
    """imagehash's Haar wHash of a square image whose side is a multiple of 8: its full-depth LL band
    removed (the mean, subtracted from every pixel) then the level-log2(side/8) LL band compared with
    its median. Haar LL coefficients are scaled block means and the subtracted mean moves them and their
    median alike, so that is exactly the 8x8 block means against their median (checked against
    PyWavelets in tests)."""
    n = px.shape[0] // 8
    ll = px.reshape(8, n, 8, n).mean(axis=(1, 3))
    return np.packbits(ll > median(ll))


def median(a: np.ndarray) -> float:
    """np.median (the same number) without its NaN check, which imports numpy.ma (a tenth of `hash`'s
    start-up); the index's hashes (`features.hashes`) use it too."""
    flat = a.ravel()
    k = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, k)[k])
    part = np.partition(flat, [k - 1, k])
    return float(part[k - 1] + part[k]) / 2.0


_WIDTHS = (8, 9, 32, 64)  # the thumbnails' sides: aHash, dHash (9 wide), pHash, wHash and PDQ
_FIRST_ROW = {8: 0, 9: 8, 32: 17, 64: 49}  # where each size's rows start in `_lanczos_weights`


@lru_cache(maxsize=256)
def _lanczos_weights(src: int) -> np.ndarray:
    """(113, src) Lanczos-3 weights as Pillow computes them when shrinking `src` pixels to 8, 9, 32 and
    64 (rows in that order, `_FIRST_ROW`): the kernel stretched by the scale, centred on each output
    pixel's centre, each row normalised to 1. Only the source pixels inside each window are evaluated,
    all sizes in one go (per size, numpy's call overhead was a thirtieth of `hash` on a small batch)."""
    dst = np.array(_WIDTHS)
    scale = src / dst
    stretch = np.maximum(scale, 1.0)
    size = np.repeat(np.arange(len(dst)), dst)  # each output row: its size, its index within the size
    centre = (np.arange(len(size)) - np.repeat(np.cumsum(dst) - dst, dst) + 0.5) * scale[size]
    taps = (6.0 * stretch).astype(np.int64)[size] + 2  # source pixels per window
    row = np.repeat(np.arange(len(size)), taps)  # each tap's output row, and its place in the window
    place = np.arange(taps.sum()) - np.repeat(np.cumsum(taps) - taps, taps)
    j = np.floor(centre - 3.0 * stretch[size]).astype(np.int64)[row] + place
    x = (j + 0.5 - centre[row]) / stretch[size][row]
    keep = (j >= 0) & (j < src) & (np.abs(x) < 3.0)  # a window's taps are distinct pixels: one cell each
    px = np.pi * np.where(x[keep] == 0, 1e-9, x[keep])
    out = np.zeros((len(size), src))
    out[row[keep], j[keep]] = 3.0 * np.sin(px) * np.sin(px / 3.0) / (px * px)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


@lru_cache(maxsize=1)
def _dct8(n: int = 32) -> np.ndarray:
    """The first 8 rows of scipy's unnormalised DCT-II matrix (imagehash's dct), n points."""
    k, i = np.arange(8)[:, None], np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def pdq_input(gray: np.ndarray) -> np.ndarray:
    """PDQ works on a 64x64 luma buffer made by its own tent filter, whose cost grows with the square of
    the input side; an area-averaged 64x64 square makes that filter a no-op (window 1) and lands as close
    to a full-size PDQ as the reference's 512 px input does, at a small fraction of the cost. Takes
    greyscale (any size, uint8 or float), returns the RGB uint8 pdqhash wants (R = G = B = luma)."""
    g = gray if gray.dtype == np.uint8 else np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    if g.shape[0] > 64 or g.shape[1] > 64:
        g = area_shrink(g, 64, 64)
    return np.ascontiguousarray(np.dstack([g, g, g]))


@lru_cache(maxsize=1)
def _pdq_dct() -> np.ndarray:
    """PDQ's 16x64 DCT matrix in float32, built as the reference builds it: rows 1-16 of a 64-point
    DCT-II (the DC row left out), scaled by sqrt(2/64)."""
    i, j = np.arange(1, 17)[:, None], np.arange(64)[None, :]
    scale = float(np.float32(np.sqrt(2.0 / 64)))
    return (scale * np.cos((np.pi / 2.0 / 64) * i * (2 * j + 1))).astype(np.float32)


def pdq_of_squares(squares: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """PDQ bits (n, 256; pdqhash.compute's order) and qualities of 64x64 luma squares holding whole
    numbers 0-255: pdqhash's own results. On such a square the reference's tent filter and decimation
    leave every pixel as it is, so PDQ is its quality metric, a 16x16 DCT and a threshold at the median
    (the 128th smallest value, as Torben's method returns); computed here for all squares at once
    instead of one pdqhash call each (a third of `hash`'s own work). Matrix products round differently
    from the reference's loops (by 0.0011 at most on 1207 photos, whose values reach thousands), which
    could swap the two values around the median: where those two are within 0.01 (plus a millionth of
    the largest value), pdqhash computes the square (about 1 photo in 100)."""
    n = len(squares)
    a = squares.astype(np.float32)
    d = _pdq_dct()
    values = (d @ a @ d.T).reshape(n, 256)
    middle = np.partition(values, [127, 128], axis=1)
    bits = (values > middle[:, 127:128])[:, ::-1].copy()
    close = middle[:, 128] - middle[:, 127] <= 0.01 + 1e-6 * np.abs(values).max(axis=1)
    for j in np.flatnonzero(close):  # e.g. a flat square: every value is rounding noise
        import pdqhash

        rgb = np.ascontiguousarray(np.repeat(squares[j].astype(np.uint8)[:, :, None], 3, axis=2))
        bits[j] = pdqhash.compute(rgb)[0].astype(bool)
    steps = np.concatenate([(a[:, :-1, :] - a[:, 1:, :]).reshape(n, -1),
                            (a[:, :, :-1] - a[:, :, 1:]).reshape(n, -1)], axis=1)
    gradient = np.abs(np.trunc(steps * 100 / 255)).sum(axis=1).astype(np.int64)  # as the reference's ints
    return bits, np.minimum(gradient // 90, 100).tolist()


_SIZES = ((8, 8), (9, 8), (32, 32), (64, 64))  # (w, h): aHash, dHash, pHash, wHash and PDQ thumbnails
_BLOCK = 8  # outputs per band block


@lru_cache(maxsize=256)
def _bands(src: int, dsts: tuple[int, ...]) -> tuple[tuple[int, int, int, int, np.ndarray], ...]:
    """Lanczos weights from `src` pixels to each size in `dsts` (outputs side by side), cut into blocks
    of a few outputs, each with only the span of source pixels it reads: (first source, end, first
    output, end, weights as a (span, outputs) matrix). A 64-pixel thumbnail's kernel spans a tenth of a
    128-pixel row, so the blocks skip most of a dense product's multiplications by zero."""
    blocks, start = [], 0
    for dst in dsts:
        w = _lanczos_weights(src)[_FIRST_ROW[dst] : _FIRST_ROW[dst] + dst]
        reach = 3.0 * max(src / dst, 1.0) + 1.0  # the kernel's half-width in source pixels, and a margin
        for o in range(0, dst, _BLOCK):
            top = min(o + _BLOCK, dst)
            lo = max(0, math.floor(o * src / dst - reach))  # the block's windows: centres (o + 0.5) * scale ...
            hi = min(src, math.ceil(top * src / dst + reach))
            blocks.append((lo, hi, start + o, start + top, np.ascontiguousarray(w[o:top, lo:hi].T)))
        start += dst
    return tuple(blocks)


def _shrink_rows(x: np.ndarray, dsts: tuple[int, ...]) -> np.ndarray:
    """Each row of x (M, src) float32 Lanczos-shrunk to every size in `dsts`, side by side, rounded and
    clipped to 0-255 as Pillow does after each pass."""
    out = np.empty((x.shape[0], sum(dsts)), np.float32)
    for lo, hi, a, b, w in _bands(x.shape[1], dsts):
        np.matmul(x[:, lo:hi], w, out=out[:, a:b])
    return np.clip(np.rint(out, out=out), 0, 255, out=out)


def thumbnails(stack: np.ndarray, sizes: tuple[tuple[int, int], ...] = _SIZES) -> list[np.ndarray]:
    """The Lanczos shrinks of a stack of same-size greyscale images (n, H, W) to each (w, h) in `sizes`
    (a part of `_SIZES`, in its order: 8x8, 9x8, 32x32, 64x64), as Pillow makes them from an 8-bit
    image: the horizontal pass first, each pass rounded to 0-255 (ties between neighbours matter to
    dHash). Each size's products are the same whichever other sizes are asked for."""
    n, rows, cols = stack.shape
    across = _shrink_rows(stack.reshape(n * rows, cols).astype(np.float32), tuple(w for w, _ in sizes))
    across = across.reshape(n, rows, -1)
    out, start = [], 0
    for w, h in sizes:  # the vertical pass on columns: each thumbnail's columns as rows
        cols_as_rows = across[:, :, start : start + w].transpose(0, 2, 1).reshape(n * w, rows)
        out.append(_shrink_rows(cols_as_rows, (h,)).reshape(n, w, h).transpose(0, 2, 1))
        start += w
    return out


HASHES = ("ahash", "dhash", "phash", "whash", "pdq")  # packed in this order: 8 bytes each, PDQ's 32
_BITS = {"ahash": 64, "dhash": 64, "phash": 64, "whash": 64, "pdq": 256}
# where each hash sits in a row of many_hashes' bits: [start, end) bit offsets
SPAN = {k: (sum(_BITS[j] for j in HASHES[:i]), sum(_BITS[j] for j in HASHES[: i + 1])) for i, k in enumerate(HASHES)}
_THUMBNAIL = {"ahash": (8, 8), "dhash": (9, 8), "phash": (32, 32), "whash": (64, 64), "pdq": (64, 64)}


def many_hashes(grays: list[np.ndarray], kinds: tuple[str, ...] = HASHES) -> tuple[np.ndarray, list[int]]:
    """aHash, dHash, pHash, wHash (64-bit, imagehash's definitions) and PDQ (256-bit) of luma images
    (HxW uint8, short side 64 px or more: `decode_luma`): an (N, 64) uint8 array of packed bits per image
    (8 bytes per 64-bit hash in that order, then PDQ's 32) and PDQ's qualities (0-100; under ~50 the
    hash is unreliable). Only the hashes in `kinds` are computed (the others' bytes stay 0, quality 0
    without PDQ), with the same bits as when all are. Each thumbnail is a Lanczos shrink straight from
    the luma image, as imagehash shrinks from full size; images of one size are shrunk together (per
    image, numpy's call overhead was most of the cost)."""
    packed = np.zeros((len(grays), SPAN[HASHES[-1]][1] // 8), np.uint8)
    quality = [0] * len(grays)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, g in enumerate(grays):
        by_shape.setdefault(g.shape, []).append(i)
    sizes = tuple(s for s in _SIZES if s in {_THUMBNAIL[k] for k in kinds})
    dct = _dct8()
    for shape, idx in by_shape.items():
        thumb = dict(zip(sizes, thumbnails(np.stack([grays[i] for i in idx]), sizes)))
        n = len(idx)
        bits = np.zeros((n, SPAN[HASHES[-1]][1]), bool)
        if "ahash" in kinds:
            a = thumb[8, 8]
            bits[:, slice(*SPAN["ahash"])] = a.reshape(n, 64) > a.mean(axis=(1, 2)).reshape(n, 1)
        if "dhash" in kinds:
            d = thumb[9, 8]
            bits[:, slice(*SPAN["dhash"])] = (d[:, :, 1:] > d[:, :, :-1]).reshape(n, 64)
        if "phash" in kinds:
            low = (dct @ thumb[32, 32].astype(np.float64) @ dct.T).reshape(n, 64)
            bits[:, slice(*SPAN["phash"])] = low > _medians(low)
        if "whash" in kinds:
            ll = thumb[64, 64].reshape(n, 8, 8, 8, 8).mean(axis=(2, 4)).reshape(n, 64)  # see haar_ll8
            bits[:, slice(*SPAN["whash"])] = ll > _medians(ll)
        if "pdq" in kinds:
            bits[:, slice(*SPAN["pdq"])], quality_here = pdq_of_squares(thumb[64, 64])
            for j, q in zip(idx, quality_here):
                quality[j] = q
        packed[idx] = np.packbits(bits, axis=1)
    return packed, quality


def _medians(rows: np.ndarray) -> np.ndarray:
    """np.median of each row of 64 values (the mean of the middle two), as a column."""
    mid = np.partition(rows, [31, 32], axis=1)
    return ((mid[:, 31] + mid[:, 32]) / 2.0)[:, None]
