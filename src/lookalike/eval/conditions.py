"""Hard capture conditions made from an ordinary photo, for held-out checks of `similar` search: the same
place at night, through a thermal camera, in another season, or from another viewpoint. Each is seeded
and works on uint8 RGB arrays (H x W x 3); none is ever used to train anything shipped.
"""

from __future__ import annotations

import cv2
import numpy as np

CONDITIONS = ("night", "thermal", "season", "viewpoint")


def _f(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def night(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark, blue-tinted ambient light, orange street lamps, sensor noise and a little blur."""
    h, w = img.shape[:2]
    x = _f(img) ** rng.uniform(2.2, 3.2) * rng.uniform(0.35, 0.6)
    x *= np.array([0.7, 0.85, 1.25], np.float32) * rng.uniform(0.9, 1.1, 3).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    glow = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 8))):  # light sources: orange glows
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0, 1) * w
        r = rng.uniform(0.02, 0.08) * max(h, w)
        glow += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)) * rng.uniform(0.5, 1.0)
    x += glow[..., None] * np.array([1.0, 0.6, 0.25], np.float32)
    x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.6, 1.4))
    x += rng.normal(0, rng.uniform(0.02, 0.05), x.shape).astype(np.float32)
    return _u8(x)


def thermal(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Low-resolution grey intensity, inverted half the time (hot = dark), often false-coloured."""
    h, w = img.shape[:2]
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    s = rng.uniform(0.2, 0.35)
    g = cv2.resize(cv2.resize(g, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA), (w, h))
    g = cv2.GaussianBlur(g, (0, 0), rng.uniform(1.0, 2.0))
    if rng.random() < 0.5:
        g = 255 - g
    g = cv2.equalizeHist(g)
    palette = rng.choice([None, cv2.COLORMAP_INFERNO, cv2.COLORMAP_JET, cv2.COLORMAP_HOT])
    if palette is None:
        return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(cv2.applyColorMap(g, int(palette)), cv2.COLOR_BGR2RGB)


def season(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Autumn (greens turn orange-brown) or winter (washed-out, snowy white over the upper-facing parts)."""
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hue, sat = hsv[..., 0], hsv[..., 1]
    if rng.random() < 0.5:  # autumn: OpenCV hue 0..180, green 35..85 -> orange 10..20
        green = ((hue > 30) & (hue < 90)).astype(np.float32)
        hsv[..., 0] = hue * (1 - green) + rng.uniform(8, 20) * green
        hsv[..., 1] = np.minimum(255, sat * (1 + 0.5 * green))
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 180
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
        return _u8(_f(out) * np.array([1.1, 0.95, 0.8], np.float32))
    x = _f(img)
    grey = x.mean(axis=2, keepdims=True)
    x = 0.35 * x + 0.65 * grey  # overcast, desaturated
    # snow settles where the image is bright and smooth-ish: blend towards white there
    smooth = cv2.GaussianBlur(grey[..., 0], (0, 0), 3)
    snow = np.clip((smooth - rng.uniform(0.3, 0.5)) * 3, 0, 1)[..., None] * rng.uniform(0.5, 0.9)
    x = x * (1 - snow) + snow * np.array([0.95, 0.97, 1.0], np.float32)
    x = x * rng.uniform(1.0, 1.2) + 0.05
    return _u8(x)


def viewpoint(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another vantage point: a strong perspective warp, then a partial crop (45-70 % of each side)
    shown at another scale."""
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    d = rng.uniform(0.12, 0.25, (4, 2)) * np.float32([w, h])
    side = rng.choice([-1, 1])  # one side recedes: that side's corners move towards the centre line
    shift = np.float32([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * d
    if side > 0:
        shift[[0, 3], 1] *= 0.3
    else:
        shift[[1, 2], 1] *= 0.3
    M = cv2.getPerspectiveTransform(src, (src + shift).astype(np.float32))
    warped = cv2.warpPerspective(img, M, (w, h), borderMode=cv2.BORDER_REFLECT)
    fh, fw = rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.7)
    ch, cw = int(h * fh), int(w * fw)
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = warped[y : y + ch, x : x + cw]
    s = rng.uniform(0.6, 1.4)
    return cv2.resize(crop, (max(32, int(cw * s)), max(32, int(ch * s))), interpolation=cv2.INTER_AREA)


APPLY = {"night": night, "thermal": thermal, "season": season, "viewpoint": viewpoint}


def make(img: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """The image under one condition, reproducible from the seed."""
    if condition not in APPLY:
        raise ValueError(f"unknown condition {condition!r}; choose one of: {', '.join(CONDITIONS)}")
    return APPLY[condition](np.ascontiguousarray(img[..., :3]), np.random.default_rng(seed))
