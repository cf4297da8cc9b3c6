"""imagehash-compatible hashes of a whole picture, for the `lookalike hash` command.

imagehash shrinks the whole picture with Pillow's Lanczos filter and takes an unnormalised DCT. Doing
the same from a luma image of about 128 px keeps its numbers (within a bit or two) at a small fraction
of the cost: Lanczos from full size is most of imagehash's time. The filter is applied as two small
weight matrices (one per axis), so four thumbnails cost four tiny matrix products.

This module imports numpy, Pillow and pdqhash only (no OpenCV, no engine): `hash` on a small batch is
mostly start-up, and OpenCV alone takes longer to import than hashing a hundred files.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pdqhash

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
    """np.median without its NaN check, which imports numpy.ma (a tenth of `hash`'s start-up)."""
    flat = a.ravel()
    k = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, k)[k])
    part = np.partition(flat, [k - 1, k])
    return float(part[k - 1] + part[k]) / 2.0


@lru_cache(maxsize=512)
def _lanczos_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) Lanczos-3 weights as Pillow computes them when shrinking: the kernel stretched by the
    scale, centred on each output pixel's centre, each row normalised to 1. Only the band of source
    pixels inside each window is evaluated."""
    scale = src / dst
    stretch = max(scale, 1.0)
    centre = (np.arange(dst) + 0.5) * scale
    j = np.floor(centre - 3.0 * stretch).astype(np.int64)[:, None] + np.arange(int(6.0 * stretch) + 2)[None, :]
    x = (j + 0.5 - centre[:, None]) / stretch
    px = np.pi * np.where(x == 0, 1e-9, x)
    w = 3.0 * np.sin(px) * np.sin(px / 3.0) / (px * px) * ((np.abs(x) < 3.0) & (j >= 0) & (j < src))
    out = np.zeros((dst, src))
    np.add.at(out, (np.repeat(np.arange(dst), j.shape[1]), np.clip(j, 0, src - 1).ravel()), w.ravel())
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def lanczos(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    """Lanczos shrink of a greyscale image to w x h, as Pillow does it on an 8-bit image: the horizontal
    pass first, each pass rounded to 0-255 (ties between neighbours matter to dHash)."""
    rows, cols = gray.shape
    across = np.clip(np.rint(gray.astype(np.float32) @ _lanczos_weights(cols, w).T), 0, 255)
    return np.clip(np.rint(_lanczos_weights(rows, h) @ across), 0, 255)


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


def pdq(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """Facebook's PDQ (256 bits) of a greyscale image and its quality (0-100; under ~50 the hash is
    unreliable)."""
    bits, quality = pdqhash.compute(pdq_input(gray))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def pdq_bits_rgb(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """PDQ's 256 bits (unpacked, pdqhash.compute's order) and quality of an RGB uint8 image. The 16x16
    DCT comes from pdqhash (compute_float) and is thresholded here as the reference does (above the
    median that Torben's method returns: the 128th smallest), without pdqhash's bit-by-bit unpacking
    in Python."""
    values, quality = pdqhash.compute_float(rgb)
    return values > np.partition(values, 127)[127], int(quality)


_SIZES = ((8, 8), (9, 8), (32, 32), (64, 64))  # (w, h): aHash, dHash, pHash, wHash and PDQ thumbnails


@lru_cache(maxsize=256)
def _thumbnail_weights(rows: int, cols: int) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[int, ...]]:
    """The four thumbnails' horizontal Lanczos weights side by side (one product for all four), their
    vertical weights, and where each thumbnail's columns start."""
    across = np.concatenate([_lanczos_weights(cols, w) for w, _ in _SIZES]).T.copy()
    down = tuple(_lanczos_weights(rows, h) for _, h in _SIZES)
    starts = tuple(np.cumsum([0] + [w for w, _ in _SIZES]).tolist())
    return across, down, starts


def file_hashes(gray: np.ndarray) -> dict[str, np.ndarray | int]:
    """aHash, dHash, pHash, wHash (64-bit, imagehash's definitions), PDQ (256-bit) and its quality,
    from a luma image (HxW uint8) with a short side of 64 px or more (`decode_luma`)."""
    bits, quality = many_hashes([gray])
    return {"ahash": bits[0, :8], "dhash": bits[0, 8:16], "phash": bits[0, 16:24], "whash": bits[0, 24:32],
            "pdq": bits[0, 32:], "pdq_quality": quality[0]}


def many_hashes(grays: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """`file_hashes` of many luma images at once: an (N, 64) uint8 array of packed bits per image (aHash,
    dHash, pHash, wHash: 8 bytes each, then PDQ's 32) and PDQ's qualities. Images of one shape are
    shrunk together (one matrix product per axis and thumbnail for all of them): per image, numpy's
    call overhead was most of the cost. Each thumbnail is a Lanczos shrink straight from the luma
    image, as imagehash shrinks from full size."""
    packed = np.zeros((len(grays), 64), np.uint8)
    quality = [0] * len(grays)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, g in enumerate(grays):
        by_shape.setdefault(g.shape, []).append(i)
    dct = _dct8()
    for shape, idx in by_shape.items():
        across_w, down, starts = _thumbnail_weights(*shape)
        stack = np.stack([grays[i] for i in idx]).astype(np.float32)  # (n, H, W)
        across = stack @ across_w
        np.clip(np.rint(across, out=across), 0, 255, out=across)
        a, d, p, w = (np.clip(np.rint(t, out=t), 0, 255, out=t)
                      for t in (dw @ across[:, :, starts[k] : starts[k + 1]] for k, dw in enumerate(down)))
        n = len(idx)
        low = (dct @ p.astype(np.float64) @ dct.T).reshape(n, 64)
        ll = w.reshape(n, 8, 8, 8, 8).mean(axis=(2, 4)).reshape(n, 64)  # wHash: see haar_ll8
        squares = np.repeat(w.astype(np.uint8)[..., None], 3, axis=3)  # PDQ's RGB input, R = G = B
        pdq = np.zeros((n, 256), bool)
        for j in range(n):
            pdq[j], quality[idx[j]] = pdq_bits_rgb(squares[j])
        bits = np.concatenate([a.reshape(n, 64) > a.mean(axis=(1, 2)).reshape(n, 1),
                               (d[:, :, 1:] > d[:, :, :-1]).reshape(n, 64),
                               low > _medians(low), ll > _medians(ll), pdq], axis=1)
        packed[idx] = np.packbits(bits, axis=1)
    return packed, quality


def _medians(rows: np.ndarray) -> np.ndarray:
    """np.median of each row of 64 values (the mean of the middle two), as a column."""
    mid = np.partition(rows, [31, 32], axis=1)
    return ((mid[:, 31] + mid[:, 32]) / 2.0)[:, None]


def hex_code(bits: np.ndarray) -> str:
    return bytes(np.asarray(bits, dtype=np.uint8)).hex()
