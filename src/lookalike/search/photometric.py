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
              grid: int = 8, slack: int = 0) -> float:
    """Share of textured overlap blocks whose correlation after alignment is > 0.5 (0..1).

    H maps image a's working pixels onto b's; size_* are those working images' (width, height).
    slack: a block may agree shifted by up to this many thumbnail pixels (a fit extrapolated from a 2-3x
    zoom lands fine texture, a brick wall, a pixel off, which decorrelates it).
    """
    sa = np.diag([ta.shape[1] / size_a[0], ta.shape[0] / size_a[1], 1.0])
    sb = np.diag([tb.shape[1] / size_b[0], tb.shape[0] / size_b[1], 1.0])
    Ht = sb @ H @ np.linalg.inv(sa)
    ta, Ht = _prefiltered(ta, Ht)
    hb, wb = tb.shape
    warped = cv2.warpPerspective(ta.astype(np.float32), Ht, (wb, hb), flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(np.ones_like(ta, np.float32), Ht, (wb, hb), flags=cv2.INTER_NEAREST) > 0.5
    b = tb.astype(np.float32)
    ys = np.linspace(0, hb, grid + 1).astype(int)
    xs = np.linspace(0, wb, grid + 1).astype(int)
    n, var_w, var_b, cov = _block_moments(warped, b, valid, ys, xs)
    # blocks mostly inside the overlap and textured on both sides (flat blocks say nothing)
    seen = (n >= 0.6 * np.outer(np.diff(ys), np.diff(xs))) & (var_w >= 16) & (var_b >= 16)
    good = (n > 2) & (_correlation(cov, var_w, var_b) > 0.5)
    for dy in range(-slack, slack + 1):
        for dx in range(-slack, slack + 1):
            if dy or dx:
                moved = np.roll(valid, (dy, dx), (0, 1)) & valid
                n, var_w, var_b, cov = _block_moments(np.roll(warped, (dy, dx), (0, 1)), b, moved, ys, xs)
                good |= (n > 2) & (var_w > 1e-6) & (var_b > 1e-6) & (_correlation(cov, var_w, var_b) > 0.5)
    total = int(seen.sum())
    return int((seen & good).sum()) / total if total else 0.0


def _block_sums(x: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sums of x over the grid's blocks (rows ys, columns xs), all at once from an integral image."""
    ii = cv2.integral(np.ascontiguousarray(x, np.float64))
    return ii[ys[1:]][:, xs[1:]] - ii[ys[:-1]][:, xs[1:]] - ii[ys[1:]][:, xs[:-1]] + ii[ys[:-1]][:, xs[:-1]]


def _block_moments(w: np.ndarray, b: np.ndarray, mask: np.ndarray, ys, xs):
    """Per block, over the pixels where mask: their count, the variances of w and b and their covariance."""
    m = mask.astype(np.float64)
    w, b = w * m, b * m
    n = _block_sums(m, ys, xs)
    k = np.maximum(n, 1)
    mw, mb = _block_sums(w, ys, xs) / k, _block_sums(b, ys, xs) / k
    var_w = np.maximum(_block_sums(w * w, ys, xs) / k - mw * mw, 0)
    var_b = np.maximum(_block_sums(b * b, ys, xs) / k - mb * mb, 0)
    return n, var_w, var_b, _block_sums(w * b, ys, xs) / k - mw * mb


def _correlation(cov: np.ndarray, var_w: np.ndarray, var_b: np.ndarray) -> np.ndarray:
    """Per-block correlation from _block_moments (NaN where a side is flat)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return cov / np.sqrt(var_w * var_b)


def _prefiltered(t: np.ndarray, Ht: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A thumbnail that Ht (thumbnail pixels) shrinks, resized first by area to about the size it lands
    at, and Ht for that smaller copy: warping shrinks by sampling and aliases texture (a photo 60 px
    wide in a phone screenshot's thumbnail agreed with its original in 71-79 % of the blocks)."""
    h, w = t.shape[:2]
    corners = np.float64([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]])
    mapped = cv2.perspectiveTransform(corners, Ht)
    if not np.isfinite(mapped).all():
        return t, Ht
    s = np.sqrt(cv2.contourArea(mapped.astype(np.float32)) / float(w * h))
    if not 0.05 < s < 0.8:
        return t, Ht
    small = cv2.resize(t, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
    up = np.diag([w / small.shape[1], h / small.shape[0], 1.0])
    return small, Ht @ up


def _aligned(ta: np.ndarray, tb: np.ndarray, H: np.ndarray, size_a, size_b) -> tuple[np.ndarray, np.ndarray]:
    """ta warped onto tb's frame by H (given in working pixels), and where it lands."""
    sa = np.diag([ta.shape[1] / size_a[0], ta.shape[0] / size_a[1], 1.0])
    sb = np.diag([tb.shape[1] / size_b[0], tb.shape[0] / size_b[1], 1.0])
    Ht = sb @ H @ np.linalg.inv(sa)
    ta, Ht = _prefiltered(ta, Ht)
    hb, wb = tb.shape[:2]
    warped = cv2.warpPerspective(ta, Ht, (wb, hb), flags=cv2.INTER_LINEAR)
    valid = cv2.warpPerspective(np.ones(ta.shape[:2], np.uint8), Ht, (wb, hb), flags=cv2.INTER_NEAREST) > 0
    return warped, valid


def _gain_offset(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y ~ gain * x + offset (np.polyfit's line, in closed form: a tenth of its time)."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    xm, ym = x.mean(), y.mean()
    dx = x - xm
    var = float(dx @ dx)
    gain = float(dx @ (y - ym)) / var if var > 0 else 0.0
    return gain, ym - gain * xm


def _onto_coarser(ta, tb, H, size_a, size_b):
    """The pair's arguments ordered so that a is warped onto the side that shows the overlap at the
    coarser resolution (a 2x crop compared on its own grid disagrees wherever the original's
    thumbnail lacks its detail)."""
    sa = np.diag([ta.shape[1] / size_a[0], ta.shape[0] / size_a[1], 1.0])
    sb = np.diag([tb.shape[1] / size_b[0], tb.shape[0] / size_b[1], 1.0])
    Ht = sb @ H @ np.linalg.inv(sa)
    h, w = ta.shape[:2]
    mapped = cv2.perspectiveTransform(np.float64([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]]), Ht)
    if np.isfinite(mapped).all() and cv2.contourArea(mapped.astype(np.float32)) > 1.5 * w * h:
        try:
            return tb, ta, np.linalg.inv(H), size_b, size_a
        except np.linalg.LinAlgError:
            pass
    return ta, tb, H, size_a, size_b


def changed_region(ta: np.ndarray, tb: np.ndarray, H: np.ndarray, size_a, size_b, grid: int = 16) -> float:
    """The largest connected patch of aligned blocks that disagree, as a share of the overlap's blocks
    (grey thumbnails, after a global gain and offset, at the coarser side's resolution): where a
    subject moved or another person stands.
    Copies measured mostly < 0.03 (overlays and logos up to 0.09: see graphic_change)."""
    ta, tb, H, size_a, size_b = _onto_coarser(ta, tb, H, size_a, size_b)
    warped, valid = _aligned(ta.astype(np.float32), tb, H, size_a, size_b)
    b = tb.astype(np.float32)
    if valid.sum() < 64:
        return 0.0
    gain, offset = _gain_offset(warped[valid], b[valid])
    m = valid.astype(np.float64)
    p, q = (warped * gain + offset) * m, b * m
    ys = np.linspace(0, b.shape[0], grid + 1).astype(int)
    xs = np.linspace(0, b.shape[1], grid + 1).astype(int)

    n, vp, vq, cov = _block_moments(p, q, valid, ys, xs)
    seen = n >= 0.6 * np.outer(np.diff(ys), np.diff(xs))
    diff = _block_sums(np.abs(p - q), ys, xs) / np.maximum(n, 1)
    flat = (vp < 16) & (vq < 16)
    corr = cov / np.sqrt(np.maximum(vp * vq, 1e-9))
    bad = seen & np.where(flat, diff > 20, (corr < 0.5) & (diff > 10))
    count, _, stats, _ = cv2.connectedComponentsWithStats(bad.astype(np.uint8), connectivity=4)
    return max((int(stats[i][4]) for i in range(1, count)), default=0) / max(int(seen.sum()), 1)


def colour_thumb(rgb: np.ndarray, side: int = 256) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    return cv2.resize(rgb, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)


def _two_colours(px: np.ndarray) -> float:
    """Share of pixels in the 2 most frequent colours (16 levels a channel): high for text in one
    colour with an outline (dev text overlays 0.48-0.86), lower for a pasted person (0.15-0.48)."""
    if len(px) < 20:
        return 1.0
    q = px.astype(np.int32) // 16
    counts = np.bincount(q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2], minlength=4096)
    return float(np.sort(counts)[-2:].sum()) / len(px)


def _flat(rgb: np.ndarray, changed: np.ndarray) -> float:
    """Share of the changed part's inner pixels whose 3 x 3 neighbourhood is flat (std < 6 in every
    channel): a logo or sticker is flat fills (dev logos 0.78-0.92), a photographed person has
    shading and texture (0.22-0.61)."""
    inner = cv2.erode(changed.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    if inner.sum() < 10:
        return 1.0
    f = rgb.astype(np.float32)
    mean, sq = cv2.blur(f, (3, 3)), cv2.blur(f * f, (3, 3))
    std = np.sqrt(np.maximum(sq - mean * mean, 0)).max(axis=2)
    return float((std[inner] < 6).mean())


def graphic_change(ca: np.ndarray, cb: np.ndarray, H: np.ndarray, size_a, size_b) -> float:
    """How graphic the pixels that changed between two aligned colour thumbnails are, on the more
    graphic side (>= MAX_GRAPHIC = 0.6 in copy mode: graphic): a pasted logo or sticker is flat
    fills, a caption one colour and its outline; another moment of a real scene (a person moved,
    another person pasted in) is neither. The flat share counts 6/7 (0.7 flat is graphic), the
    two-colour share 5/4 (0.48 is graphic). The 4 most frequent coarse colours used before gave
    pasted people 0.6-0.83, as graphic as dev overlays (0.64-0.88)."""
    ca, cb, H, size_a, size_b = _onto_coarser(ca, cb, H, size_a, size_b)
    warped, valid = _aligned(ca, cb, H, size_a, size_b)
    gw = cv2.cvtColor(warped, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gb = cv2.cvtColor(cb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if valid.sum() < 64:
        return 1.0
    gain, offset = _gain_offset(gw[valid], gb[valid])
    changed = ((np.abs(gw * gain + offset - gb) > 30) & valid).astype(np.uint8)
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    return max(max(_flat(side, changed) * 6 / 7, _two_colours(side[changed]) * 5 / 4) for side in (warped, cb))


def unaligned_patch(ta: np.ndarray, tb: np.ndarray) -> float:
    """changed_region of two thumbnails of one framing (aspect ratios within 3 %), aligned by their
    sizes alone, as a near-identical hash pair is; 0 for other framings (a letterbox, a pad), which
    hashes reach through their own variants."""
    (ha, wa), (hb, wb) = ta.shape[:2], tb.shape[:2]
    if abs(np.log((wa / ha) / (wb / hb))) > 0.03:
        return 0.0
    return changed_region(ta, tb, np.diag([wb / wa, hb / ha, 1.0]), (wa, ha), (wb, hb))
