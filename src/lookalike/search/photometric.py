"""Pixel agreement after alignment: do the two pictures show the same content where they overlap?

Geometric verification alone is fooled by a shared overlay: two different photos posted in the same
social-media frame match dozens of keypoints on the frame. Warping one small greyscale thumbnail onto
the other with the verified homography and correlating them block by block settles it: copies agree
in most blocks (even recoloured, blurred or with a caption), different photos in one frame do not.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB_SIDE = 128


def thumb(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = g.shape
    s = side / max(h, w)
    return cv2.resize(g, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)


def to_bytes(t: np.ndarray) -> bytes:
    return np.array(t.shape, np.uint16).tobytes() + t.tobytes()


def from_bytes(b: bytes) -> np.ndarray:
    h, w = np.frombuffer(b[:4], np.uint16)
    return np.frombuffer(b[4:], np.uint8).reshape(int(h), int(w))


def agreement(ta: np.ndarray, tb: np.ndarray, H: np.ndarray, size_a: tuple[int, int], size_b: tuple[int, int],
              grid: int = 8) -> float:
    """Share of textured overlap blocks whose correlation after alignment is > 0.5 (0..1).

    H maps image a's working pixels onto b's; size_* are those working images' (width, height).
    """
    sa = np.diag([ta.shape[1] / size_a[0], ta.shape[0] / size_a[1], 1.0])
    sb = np.diag([tb.shape[1] / size_b[0], tb.shape[0] / size_b[1], 1.0])
    Ht = sb @ H @ np.linalg.inv(sa)
    hb, wb = tb.shape
    warped = cv2.warpPerspective(ta.astype(np.float32), Ht, (wb, hb), flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(np.ones_like(ta, np.float32), Ht, (wb, hb), flags=cv2.INTER_NEAREST) > 0.5
    b = tb.astype(np.float32)
    good = total = 0
    ys = np.linspace(0, hb, grid + 1).astype(int)
    xs = np.linspace(0, wb, grid + 1).astype(int)
    for y0, y1 in zip(ys[:-1], ys[1:]):
        for x0, x1 in zip(xs[:-1], xs[1:]):
            m = valid[y0:y1, x0:x1]
            if m.mean() < 0.6:
                continue
            p, q = warped[y0:y1, x0:x1][m], b[y0:y1, x0:x1][m]
            if p.std() < 4 or q.std() < 4:  # flat blocks say nothing
                continue
            total += 1
            good += float(np.corrcoef(p, q)[0, 1]) > 0.5
    return good / total if total else 0.0
