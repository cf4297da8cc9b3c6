"""Background features: what the scene behind the people looks like, with the people taken out.

The person mask is computed once per image (PersonSegmenter, cached on the Decoded object) and every
extractor here reads the background through it:

- `bg_mask`  (blob): the person mask at low resolution, the person's share of the frame and a
  "scene information" score of the background (is there anything to recognise?).
- `bg_cnn`   (float, 320): EfficientNet-Lite0 last-block features, GeM-pooled over the background only.
- `bg_color` (float, 1024): LAB histogram of background pixels after gray-world balance
  (square-rooted: dot = Bhattacharyya).
- `bg_local` (blob): SIFT keypoints outside the dilated person mask: aggregated into VLAD over a codebook
  learned from the collection (search/background.py) and used for geometric verification.
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

_MAGIC_V1 = b"LBM1"
_HEADER_V1 = struct.Struct("<4sHHfff")  # magic, mask width, mask height, person share, scene score, kept share
_MAGIC = b"LBM2"
_HEADER = struct.Struct("<4sHHfffff")  # ... + visible share, empty share of the border ring


@dataclass
class BackgroundInfo:
    person: np.ndarray  # float32 H x W person probability at the working image's size
    keep: np.ndarray  # float32 H x W, 1 = background pixel to use (person removed and dilated)
    person_share: float  # share of the frame covered by the person (probability > 0.5)
    scene: float = 0.0  # scene information score in [0, 1]
    local: object = None  # LocalFeatures of the background (computed on demand, shared)
    visible: float = 1.0  # share of the frame that is background with something in it (not an empty fill)
    empty_ring: float = 0.0  # share of the frame's border ring (person excluded) that is an empty fill


@dataclass
class MaskRecord:
    """What `bg_mask` stores: the low-resolution mask plus per-image facts used by the search."""

    mask: np.ndarray  # uint8 h x w (long side MASK_SIDE), 255 = person
    person_share: float
    scene: float
    kept: float  # share of the frame left as background after dilation
    visible: float = -1.0  # share of the frame that is background and not an empty fill (-1: not stored)
    empty_ring: float = 0.0  # share of the border ring (person excluded) in an empty fill: 1 = a cut-out

    def __post_init__(self):
        if self.visible < 0:  # a blob from before the empty fill was measured: all of it counts
            self.visible = self.kept


_segmenter = None


def segmenter():
    """One PersonSegmenter per process (it owns LiteRT interpreters and is not thread-safe)."""
    global _segmenter
    if _segmenter is None:
        from lookalike.features.person import PersonSegmenter

        _segmenter = PersonSegmenter()
    return _segmenter


def keep_mask(person: np.ndarray, *, dilate: float = DILATE) -> np.ndarray:
    """Background weights: 1 - person probability, with the person grown by `dilate` x long side.
    The dilation runs at a quarter of the resolution (a 47 px kernel at full size costs ~20 ms)."""
    H, W = person.shape
    f = min(1.0, 192 / max(H, W))
    small = cv2.resize(np.clip(person, 0, 1).astype(np.float32), (max(1, round(W * f)), max(1, round(H * f))),
                       interpolation=cv2.INTER_AREA)
    r = max(1, int(round(dilate * max(small.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grown = cv2.resize(cv2.dilate(small, kernel), (W, H), interpolation=cv2.INTER_LINEAR)
    # the full-resolution mask itself stays inside: upscaling must not shave the person's outline
    return (1.0 - np.maximum(grown, person)).astype(np.float32)


def background_info(img: Decoded) -> BackgroundInfo:
    """The person mask and derived background facts of `img`, computed once and cached on it."""
    info = img.__dict__.get(_CACHE_KEY)
    if info is None:
        person = segmenter().mask(img.rgb).astype(np.float32)
        info = BackgroundInfo(person, keep_mask(person), float((person > 0.5).mean()))
        info.local = _local(img.rgb, info.keep)
        info.scene = scene_score(img.rgb, info.keep, n_keypoints=len(info.local))
        info.visible, info.empty_ring = visible_background(img.rgb, info.keep, info.person)
        img.__dict__[_CACHE_KEY] = info
    return info


def _local(rgb: np.ndarray, keep: np.ndarray):
    from lookalike.features.local import extract_local

    return extract_local(rgb, mask=(keep > 0.5).astype(np.uint8))


def empty_fill(rgb: np.ndarray, *, side: int = 256, tol: int = 1, spread: int = 2,
               min_share: float = 0.02) -> np.ndarray:
    """Where the frame is an *empty fill*: large regions of one exact colour, such as the transparency
    of a cut-out (flattened over white), a matte or a clipped sky. Bool mask at `side` px on the long side.

    A pixel is flat when its 3 x 3 neighbourhood varies by at most `tol` levels per channel; a connected
    flat region of at least `min_share` of the frame is empty when 95 % of it lies within `spread`
    levels of its median colour (a smooth gradient, a blurred wall or a noisy photo is not one colour)."""
    s = side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST).astype(np.int16)
    box = np.ones((3, 3), np.uint8)
    flat = ((cv2.dilate(small, box) - cv2.erode(small, box)).max(axis=2) <= tol).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    empty = np.zeros(n, bool)
    for c in np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_share * flat.size):
        if c == 0:
            continue
        px = small[labels == c]
        empty[c] = (np.abs(px - np.median(px, axis=0)).max(axis=1) <= spread).mean() >= 0.95
    return empty[labels]


def visible_background(rgb: np.ndarray, keep: np.ndarray, person: np.ndarray) -> tuple[float, float]:
    """(visible, empty_ring): the share of the frame that is background with something in it (kept
    and not an empty fill), and the share of the frame's border ring, person excluded, that is an
    empty fill (1 for a cut-out: whatever it shows, it was cut out of its background)."""
    empty = empty_fill(rgb)
    size = (empty.shape[1], empty.shape[0])
    kept = cv2.resize(keep, size, interpolation=cv2.INTER_AREA) > 0.5
    visible = float((kept & ~empty).mean())
    not_person = cv2.resize(person, size, interpolation=cv2.INTER_AREA) <= 0.5
    outside = _border(not_person)
    empty_ring = float(_border(empty)[outside].mean()) if outside.any() else 0.0
    return visible, empty_ring


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels of the frame's outermost ring, as one row."""
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def scene_parts(rgb: np.ndarray, keep: np.ndarray, *, n_keypoints: int) -> dict[str, float]:
    """The parts of the scene score, each in [0, 1]: texture (mean gradient strength), keypoints
    (count of background keypoints) and variety (entropy of the background's colours)."""
    side = 256
    s = side / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(keep, size, interpolation=cv2.INTER_AREA) > 0.5
    if m.sum() < 0.02 * m.size:
        return {"texture": 0.0, "keypoints": 0.0, "variety": 0.0}
    g = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    texture = min(1.0, float(np.mean(mag[m])) / 60.0)
    keypoints = min(1.0, n_keypoints / 150.0)
    q = cv2.cvtColor(small, cv2.COLOR_RGB2LAB)[m].astype(np.int64) // 32  # 8 x 8 x 8 colour cells
    h = np.bincount(q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2], minlength=512)
    p = h[h > 0] / h.sum()
    variety = min(1.0, float(-(p * np.log2(p)).sum()) / 4.0)
    return {"texture": texture, "keypoints": keypoints, "variety": variety}


def scene_score(rgb: np.ndarray, keep: np.ndarray, *, n_keypoints: int) -> float:
    """How much there is to recognise in the background, in [0, 1]: the mean of texture (gradient
    strength), keypoint count and colour variety of the background pixels. A white wall scores low."""
    return float(np.mean(list(scene_parts(rgb, keep, n_keypoints=n_keypoints).values())))


def color_histogram(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """LAB histogram of background pixels (4 L x 16 a x 16 b bins), square-rooted and L2-normalised.

    The background's colours are first balanced to grey on average (gray-world): shots of one room
    differ in white balance and exposure more than in what is there. On the DEV background set this
    lifted colour-only mAP from 0.31 to 0.59. Coarse on lightness for the same reason."""
    s = 160 / max(rgb.shape[:2])
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    f = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    w = np.clip(cv2.resize(keep, size, interpolation=cv2.INTER_AREA).ravel(), 0.0, 1.0)
    if w.sum() < 1:  # nothing left of the background: the whole frame is better than nothing
        w = np.ones_like(w)
    mean = (f * w[:, None]).sum(0) / w.sum()
    f = np.clip(f * (mean.mean() / np.maximum(mean, 1.0)), 0, 255).astype(np.uint8)
    q = cv2.cvtColor(f[None], cv2.COLOR_RGB2LAB)[0].astype(np.int64)
    idx = (q[:, 0] // 64) * 256 + (q[:, 1] // 16) * 16 + q[:, 2] // 16
    h = np.sqrt(np.bincount(idx, weights=w, minlength=1024))
    return (h / max(np.linalg.norm(h), 1e-12)).astype(np.float32)


# -- local keypoints aggregated over a codebook learned from the collection ---------------------------


def learn_codebook(descriptors: np.ndarray, *, k: int = 64, seed: int = 0) -> np.ndarray:
    """k-means centroids (k, 128) float32 of background RootSIFT descriptors (a sample of the collection)."""
    import faiss

    x = np.ascontiguousarray(descriptors, dtype=np.float32)
    k = max(1, min(k, len(x) // 39))  # faiss wants 39+ points per centroid
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=seed, verbose=False)
    km.train(x)
    return km.centroids.copy()


def vlad(desc: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """VLAD of one image's descriptors: residuals to the nearest centroid summed per centroid, signed
    square root, per-centroid (intra) and global L2 normalisation -> (k * 128,) float32.
    The dot product of two VLADs compares the scenes' keypoint sets without matching them."""
    k, d = centroids.shape
    v = np.zeros((k, d), np.float32)
    if len(desc):
        x = np.ascontiguousarray(desc, dtype=np.float32)
        # nearest centroid by one product (cv2.gemm: single-threaded, no BLAS thread thrash on small matrices)
        d2 = (centroids * centroids).sum(1)[None] - 2 * cv2.gemm(x, centroids, 1.0, None, 0.0, flags=cv2.GEMM_2_T)
        a = d2.argmin(1)
        order = np.argsort(a, kind="stable")
        sa = a[order]
        starts = np.flatnonzero(np.r_[True, sa[1:] != sa[:-1]])
        used = sa[starts]
        v[used] = np.add.reduceat(x[order], starts, axis=0) - np.diff(np.r_[starts, len(sa)])[:, None] * centroids[used]
    v = np.sign(v) * np.sqrt(np.abs(v))
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    v = v.ravel()
    return v / max(float(np.linalg.norm(v)), 1e-9)


def encode_mask(rec: MaskRecord) -> bytes:
    h, w = rec.mask.shape
    head = _HEADER.pack(_MAGIC, w, h, rec.person_share, rec.scene, rec.kept, rec.visible, rec.empty_ring)
    return head + zlib.compress(rec.mask.tobytes(), 6)


def decode_mask(blob: bytes) -> MaskRecord:
    if blob[:4] == _MAGIC and len(blob) >= _HEADER.size:
        _, w, h, share, scene, kept, visible, ring = _HEADER.unpack_from(blob)
        size = _HEADER.size
    elif blob[:4] == _MAGIC_V1 and len(blob) >= _HEADER_V1.size:  # stored before the empty fill was measured
        (_, w, h, share, scene, kept), visible, ring, size = _HEADER_V1.unpack_from(blob), -1.0, 0.0, _HEADER_V1.size
    else:
        raise ValueError("not a lookalike background-mask blob (wrong magic): recompute the bg_mask feature")
    mask = np.frombuffer(zlib.decompress(blob[size:]), np.uint8).reshape(h, w).copy()
    return MaskRecord(mask, share, scene, kept, visible, ring)


@register
class BackgroundMask(Extractor):
    """Person mask (128 px long side), person share, background kept share, scene score, visible
    background share and empty border ring (v3: the last two, for cut-outs and near-empty frames)."""

    name, version, kind, dim = "bg_mask", "selfie+pose+tiles/v3", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        info = background_info(img)
        H, W = info.person.shape
        s = MASK_SIDE / max(H, W)
        size = (max(1, round(W * s)), max(1, round(H * s)))
        small = cv2.resize(info.person, size, interpolation=cv2.INTER_AREA)
        mask = np.where(small > 0.5, 255, 0).astype(np.uint8)
        return encode_mask(MaskRecord(mask, info.person_share, info.scene, float((info.keep > 0.5).mean()),
                                      info.visible, info.empty_ring))

    def decode(self, blob: bytes) -> MaskRecord:
        return decode_mask(blob)


@register
class BackgroundCnn(Extractor):
    """EfficientNet-Lite0 block features (320 px), GeM-pooled over the background (person removed)."""

    name, kind, dim, needs_model = "bg_cnn", "float", 320, "efficientnet-lite0"

    def __init__(self):
        from lookalike.features.cnn import CnnDescriptor

        self.net = CnnDescriptor("efficientnet-lite0", layer="block", size=320, threads=1)
        self.version = f"{self.net.masked_name}/dil{DILATE:g}/v2"

    def compute(self, img: Decoded) -> np.ndarray:
        return self.compute_batch([img])[0]

    def compute_batch(self, imgs):
        if not imgs:
            return []
        keeps = [background_info(im).keep for im in imgs]
        return list(self.net.embed_masked([im.rgb for im in imgs], keeps))


@register
class BackgroundColor(Extractor):
    """LAB colour histogram of the background pixels after gray-world balance (1024 bins, square-rooted)."""

    name, version, kind, dim = "bg_color", "gw-lab4x16x16/v2", "float", 1024

    def compute(self, img: Decoded) -> np.ndarray:
        return color_histogram(img.rgb, background_info(img).keep)


@register
class BackgroundLocal(Extractor):
    """RootSIFT keypoints outside the dilated person mask."""

    name, version, kind, dim = "bg_local", "sift320x320/v2", "blob", 0

    def compute(self, img: Decoded) -> bytes:
        from lookalike.features.local import to_bytes

        return to_bytes(background_info(img).local)

    def decode(self, blob: bytes):
        from lookalike.features.local import from_bytes

        return from_bytes(blob)


BACKGROUND_FEATURES = ("bg_mask", "bg_cnn", "bg_color", "bg_local")
