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


def file_hashes(gray: np.ndarray) -> dict[str, np.ndarray | int]:
    """aHash, dHash, pHash, wHash (64-bit, imagehash's definitions), PDQ (256-bit) and its quality,
    from a luma image (HxW uint8) with a short side of 128 px or more (`decode_luma`). Each thumbnail
    is a Lanczos shrink straight from that image, as imagehash shrinks from full size."""
    small = gray
    px = lanczos(small, 8, 8)
    out: dict = {"ahash": np.packbits(px > px.mean())}
    px = lanczos(small, 9, 8)
    out["dhash"] = np.packbits(px[:, 1:] > px[:, :-1])
    dct = _dct8()
    low = dct @ lanczos(small, 32, 32).astype(np.float64) @ dct.T
    out["phash"] = np.packbits(low > median(low))
    px = lanczos(small, 64, 64)
    out["whash"] = haar_ll8(px)
    out["pdq"], out["pdq_quality"] = pdq(px)  # PDQ's own input is a 64x64 luma square
    return out


def hex_code(bits: np.ndarray) -> str:
    return bytes(np.asarray(bits, dtype=np.uint8)).hex()
