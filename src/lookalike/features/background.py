"""Background features: what the scene behind the people looks like, with the people taken out.

The person mask is computed once per image (PersonSegmenter, cached on the Decoded object) and every
extractor here reads the background through it:

- `bg_mask`  (blob): the person mask at low resolution, the person's share of the frame and a
  "scene information" score of the background (is there anything to recognise?).
- `bg_cnn`   (float, 320): EfficientNet-Lite0 last-block features, GeM-pooled over the background only.
- `bg_color` (float, 256): LAB histogram of background pixels (square-rooted: dot = Bhattacharyya).
- `bg_local` (blob): SIFT keypoints outside the dilated person mask, for geometric verification.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded

MASK_SIDE = 128  # long side of the stored person mask
DILATE = 0.03  # person mask grown by this share of the long side: edges and hair halo are not background
_CACHE_KEY = "_background"

_MAGIC = b"LBM1"
_HEADER = struct.Struct("<4sHHfff")  # magic, mask width, mask height, person share, scene score, kept share


@dataclass
class BackgroundInfo:
    person: np.ndarray  # float32 H x W person probability at the working image's size
    keep: np.ndarray  # float32 H x W, 1 = background pixel to use (person removed and dilated)
    person_share: float  # share of the frame covered by the person (probability > 0.5)
    scene: float = 0.0  # scene information score in [0, 1]
    local: object = None  # LocalFeatures of the background (computed on demand, shared)


@dataclass
class MaskRecord:
    """What `bg_mask` stores: the low-resolution mask plus per-image facts used by the search."""

    mask: np.ndarray  # uint8 h x w (long side MASK_SIDE), 255 = person
    person_share: float
    scene: float
    kept: float  # share of the frame left as background after dilation


_segmenter = None


def segmenter():
    """One PersonSegmenter per process (it owns LiteRT interpreters and is not thread-safe)."""
    global _segmenter
    if _segmenter is None:
        from lookalike.features.person import PersonSegmenter

        _segmenter = PersonSegmenter()
    return _segmenter


def keep_mask(person: np.ndarray, *, dilate: float = DILATE) -> np.ndarray:
    """Background weights: 1 - person probability, with the person grown by `dilate` x long side."""
    r = max(1, int(round(dilate * max(person.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grown = cv2.dilate(np.clip(person, 0, 1).astype(np.float32), kernel)
    return (1.0 - grown).astype(np.float32)


def background_info(img: Decoded) -> BackgroundInfo:
    """The person mask and derived background facts of `img`, computed once and cached on it."""
    info = img.__dict__.get(_CACHE_KEY)
    if info is None:
        person = segmenter().mask(img.rgb).astype(np.float32)
        info = BackgroundInfo(person, keep_mask(person), float((person > 0.5).mean()))
        info.local = _local(img.rgb, info.keep)
        info.scene = scene_score(img.rgb, info.keep, n_keypoints=len(info.local))
        img.__dict__[_CACHE_KEY] = info
    return info


def _local(rgb: np.ndarray, keep: np.ndarray):
    from lookalike.features.local import extract_local

    return extract_local(rgb, mask=(keep > 0.5).astype(np.uint8))


def scene_score(rgb: np.ndarray, keep: np.ndarray, *, n_keypoints: int) -> float:
    """How much there is to recognise in the background, in [0, 1]: the mean of texture (gradient
    strength), keypoint count and colour variety of the background pixels. A white wall scores low."""
    side = 256
    s = side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(keep, size, interpolation=cv2.INTER_AREA) > 0.5
    if m.sum() < 0.02 * m.size:
        return 0.0
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    texture = min(1.0, float(np.mean(mag[m])) / 60.0)
    keypoints = min(1.0, n_keypoints / 150.0)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[m]
    h = np.histogramdd(lab // 32, bins=(8, 8, 8), range=((0, 8), (0, 8), (0, 8)))[0].ravel()
    p = h[h > 0] / h.sum()
    variety = min(1.0, float(-(p * np.log2(p)).sum()) / 4.0)
    return float(np.mean([texture, keypoints, variety]))


def color_histogram(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """LAB histogram of background pixels (4 L x 8 a x 8 b bins), square-rooted and L2-normalised.
    Coarse on lightness: shots of one room differ in exposure more than in hue."""
    s = 160 / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    lab = cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2LAB)
    w = cv2.resize(keep, size, interpolation=cv2.INTER_AREA).ravel()
    if w.sum() < 1:  # nothing left of the background: the whole frame is better than nothing
        w = np.ones_like(w)
    q = lab.reshape(-1, 3).astype(np.int32)
    idx = (q[:, 0] // 64) * 64 + (q[:, 1] // 32) * 8 + q[:, 2] // 32
    h = np.sqrt(np.bincount(idx, weights=w, minlength=256))
    return (h / max(np.linalg.norm(h), 1e-12)).astype(np.float32)


def encode_mask(rec: MaskRecord) -> bytes:
    h, w = rec.mask.shape
    return _HEADER.pack(_MAGIC, w, h, rec.person_share, rec.scene, rec.kept) + zlib.compress(rec.mask.tobytes(), 6)


def decode_mask(blob: bytes) -> MaskRecord:
    if len(blob) < _HEADER.size or blob[:4] != _MAGIC:
        raise ValueError("not a lookalike background-mask blob (wrong magic): recompute the bg_mask feature")
    _, w, h, share, scene, kept = _HEADER.unpack_from(blob)
    mask = np.frombuffer(zlib.decompress(blob[_HEADER.size :]), np.uint8).reshape(h, w).copy()
    return MaskRecord(mask, share, scene, kept)


@register
class BackgroundMask(Extractor):
    """Person mask (128 px long side), person share, background kept share and scene score."""

    name, version, kind, dim = "bg_mask", "selfie+pose/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        info = background_info(img)
        H, W = info.person.shape
        s = MASK_SIDE / max(H, W)
        size = (max(1, round(W * s)), max(1, round(H * s)))
        small = cv2.resize(info.person, size, interpolation=cv2.INTER_AREA)
        mask = np.where(small > 0.5, 255, 0).astype(np.uint8)
        return encode_mask(MaskRecord(mask, info.person_share, info.scene, float((info.keep > 0.5).mean())))

    def decode(self, blob: bytes) -> MaskRecord:
        return decode_mask(blob)


@register
class BackgroundCnn(Extractor):
    """EfficientNet-Lite0 block features (320 px), GeM-pooled over the background (person removed)."""

    name, kind, dim, needs_model = "bg_cnn", "float", 320, "efficientnet-lite0"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        self.net = CnnDescriptor("efficientnet-lite0", layer="block", size=320, threads=1)
        self.version = f"{self.net.masked_name}/dil{DILATE:g}/v1"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.compute_batch([img])[0]

    def compute_batch(self, imgs):
        if not imgs:
            return []
        keeps = [background_info(im).keep for im in imgs]
        return list(self.net.embed_masked([im.rgb for im in imgs], keeps))


@register
class BackgroundColor(Extractor):
    """LAB colour histogram of the background pixels (256 bins, square-rooted)."""

    name, version, kind, dim = "bg_color", "lab4x8x8/v1", "float", 256

    def compute(self, img: Decoded) -> np.ndarray:
        return color_histogram(img.rgb, background_info(img).keep)


@register
class BackgroundLocal(Extractor):
    """RootSIFT keypoints outside the dilated person mask."""

    name, version, kind, dim = "bg_local", "sift320x320/v1", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        from lookalike.features.local import to_bytes

        return to_bytes(background_info(img).local)

    def decode(self, blob: bytes):
        from lookalike.features.local import from_bytes

        return from_bytes(blob)


BACKGROUND_FEATURES = ("bg_mask", "bg_cnn", "bg_color", "bg_local")
