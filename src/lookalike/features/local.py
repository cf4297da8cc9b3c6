"""Local features (SIFT keypoints + RootSIFT descriptors) for geometric verification of copies.

Descriptors are RootSIFT (Hellinger-normalised SIFT), quantised to uint8 so that L2 distance between
them approximates the Hellinger distance of the original SIFT histograms: more distinctive matches
than plain SIFT at the same cost. Keypoints are stored in the coordinates of the working image that
was passed in (not of the downscaled copy SIFT ran on), so masks and boxes from other extractors line up.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_SIDE = 320  # long side SIFT runs at (SIFT doubles it internally for its first octave); ~26 ms CPU
DEFAULT_MAX_KEYPOINTS = 320  # ~41 KB raw, ~25-30 KB after zlib; enough for crops down to ~1/3 of the area
_ROOT_SCALE = 512.0  # RootSIFT components are <= 1 and rarely above 0.5: x512 uses the uint8 range

_MAGIC = b"LLF1"
_HEADER = struct.Struct("<4sIIIH")  # magic, width, height, n keypoints, fixed-point steps per pixel

_sift_cache: dict[int, cv2.SIFT] = {}


@dataclass
class LocalFeatures:
    xy: np.ndarray  # (n, 2) float32, pixel coordinates in the image passed to extract_local
    desc: np.ndarray  # (n, 128) uint8 RootSIFT
    width: int  # size of that image
    height: int

    def __len__(self) -> int:
        return len(self.xy)


def _sift(n: int) -> cv2.SIFT:
    if n not in _sift_cache:
        _sift_cache[n] = cv2.SIFT_create(nfeatures=n)
    return _sift_cache[n]


def root_sift(desc: np.ndarray) -> np.ndarray:
    """SIFT (float) -> RootSIFT quantised to uint8."""
    d = desc.astype(np.float32)
    d /= d.sum(axis=1, keepdims=True) + 1e-7
    return np.clip(np.sqrt(d) * _ROOT_SCALE + 0.5, 0, 255).astype(np.uint8)


def extract_local(
    rgb: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    max_keypoints: int = DEFAULT_MAX_KEYPOINTS,
    side: int = DEFAULT_SIDE,
) -> LocalFeatures:
    """SIFT keypoints + RootSIFT descriptors of an RGB (or grey) image.

    mask: HxW, nonzero where keypoints are allowed (e.g. the inverted person mask for background search).
    """
    if rgb.ndim == 3:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif rgb.ndim == 2:
        gray = rgb
    else:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {rgb.shape}")
    h, w = gray.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    m = None
    if mask is not None:
        if mask.shape[:2] != (h, w):
            raise ValueError(f"mask shape {mask.shape[:2]} differs from image shape {(h, w)}")
        m = (np.asarray(mask) > 0).astype(np.uint8) * 255
        if m.shape != gray.shape:
            m = cv2.resize(m, (gray.shape[1], gray.shape[0]), interpolation=cv2.INTER_NEAREST)
    kps, desc = _sift(max_keypoints).detectAndCompute(gray, m)
    if desc is None or not kps:
        return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), w, h)
    # SIFT may return a few more than asked (ties, multiple orientations): keep the strongest
    if len(kps) > max_keypoints:
        order = np.argsort([-k.response for k in kps], kind="stable")[:max_keypoints]
        kps = [kps[i] for i in order]
        desc = desc[order]
    xy = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    xy = (xy + 0.5) / np.float32(scale) - 0.5  # back to the input image's pixel grid
    return LocalFeatures(xy, root_sift(desc), w, h)


def to_bytes(lf: LocalFeatures) -> bytes:
    """Compact serialisation (~30 KB for 320 keypoints): header, xy as fixed-point uint16 (1/8 pixel on
    images up to 8K), descriptors uint8, zlib-compressed."""
    n = len(lf.xy)
    q = max(1, min(8, 65535 // max(lf.width, lf.height, 1)))
    xy = np.clip(np.round((lf.xy + 0.5) * q), 0, 65535).astype("<u2")
    body = xy.tobytes() + np.ascontiguousarray(lf.desc, dtype=np.uint8).tobytes()
    return _HEADER.pack(_MAGIC, lf.width, lf.height, n, q) + zlib.compress(body, 6)


def from_bytes(b: bytes) -> LocalFeatures:
    if len(b) < _HEADER.size or b[:4] != _MAGIC:
        raise ValueError("not a lookalike local-feature blob (wrong magic): recompute the features")
    _, w, h, n, q = _HEADER.unpack_from(b)
    body = zlib.decompress(b[_HEADER.size :])
    xy = np.frombuffer(body, "<u2", count=2 * n).reshape(n, 2).astype(np.float32) / q - 0.5
    desc = np.frombuffer(body, np.uint8, offset=4 * n, count=128 * n).reshape(n, 128).copy()
    return LocalFeatures(xy, desc, w, h)
