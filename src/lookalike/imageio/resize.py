"""Exact area averaging of greyscale images with numpy alone (no OpenCV import on the hash path)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def _area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) weights of exact area averaging (OpenCV's INTER_AREA): each output pixel is the mean
    of the source span it covers, partly covered source pixels weighed by their share. (Pillow's BOX
    filter gives a partly covered pixel all or nothing.)"""
    edges = np.arange(dst + 1) * (src / dst)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(src)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_shrink(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area-average a uint8 greyscale image to w x h (uint8, rounded as OpenCV does). A large image is
    first block-averaged by whole factors (Pillow's reduce), so the weight matrices stay small."""
    rows, cols = gray.shape
    ky, kx = max(1, rows // (2 * h)), max(1, cols // (2 * w))
    if ky > 1 or kx > 1:
        from PIL import Image  # here: `hash` on JPEGs of a few MP never loads Pillow

        gray = np.asarray(Image.fromarray(gray).reduce((kx, ky)))
        rows, cols = gray.shape
    out = _area_weights(rows, h) @ gray.astype(np.float64) @ _area_weights(cols, w).T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
