"""Copies that show a small part of the other image, seen closer.

A crop of a crop (under ~45 % of the original's side) or a crop shown inside a screenshot shows the
original's content 2-3x larger. SIFT runs at 320 px, where that part of the original holds a few
coarse keypoints, and the 128 px thumbnail a 40-60 px patch: the fit is found with few inliers and
high descriptor distance (verification 0.04-0.62) and its pixel agreement is measured on a handful
of blocks. When a candidate's fit zooms by ZOOM or more and falls short, the larger side is seen
closer (the `zoom` feature: SIFT at the full working side with more keypoints, a 384 px thumbnail,
computed for those images only) and the pair is scored again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lookalike.features.local import LocalFeatures, extract_local

ZOOM = 1.8  # a fit that scales by this much or more (either way) is looked at closer when it fails ...
MAX_ZOOM = 6.0  # ... up to this much (a part under a sixth of the side is not worth a closer look) ...
MIN_EVIDENCE = 0.01  # ... and that the first look found more than chance (verification score; chance fits of
# 4-7 inliers between unrelated photos score ~0.001: 1531 zoomed failed fits on the held-out seed 13, 86 above)
SLACK = 1  # thumbnail pixels a block may be off and still agree: a fit extrapolated from a zoomed part
# lands fine texture a pixel off (a screenshot's crop, verification 0.98: 67 % of blocks agree, 98 % within 1 px)
MIN_CHECKED = 0.64  # copy-scale score from which a rescued pair is checked for a changed patch
INSIDE = 0.05  # the smaller side's frame must land inside the larger's, up to this share of its side
SIDE, KEYPOINTS = 768, 1500  # about the keypoint density of 320 px SIFT, over the working image
THUMB_SIDE = 384


@dataclass
class Zoomed:
    local: LocalFeatures  # in the working image's pixels, like the `local` feature
    thumb: np.ndarray  # grey, THUMB_SIDE px long side


def describe(rgb: np.ndarray) -> Zoomed:
    from lookalike.search.photometric import thumb

    return Zoomed(extract_local(rgb, side=SIDE, max_keypoints=KEYPOINTS), thumb(rgb, THUMB_SIDE))


def to_bytes(z: Zoomed) -> bytes:
    from lookalike.features import local as L
    from lookalike.search import photometric as P

    lb = L.to_bytes(z.local)
    return struct.pack("<I", len(lb)) + lb + P.to_bytes(z.thumb)


def from_bytes(b: bytes) -> Zoomed:
    from lookalike.features import local as L
    from lookalike.search import photometric as P

    (n,) = struct.unpack_from("<I", b)
    return Zoomed(L.from_bytes(b[4:4 + n]), P.from_bytes(b[4 + n:]))


def larger_side(det: dict, zoom: float = ZOOM) -> int | None:
    """Which side of a scored pair (a, b) holds the other's content as a small part, so must be seen
    closer: 0 (a), 1 (b), or None when the fit does not zoom by `zoom` (or there is none). The fit maps
    a onto b in unit coordinates: scale >= zoom means b shows a part of a, enlarged."""
    s = det.get("scale")
    if not s or det.get("verification", 0.0) < MIN_EVIDENCE or not 1 / MAX_ZOOM <= s <= MAX_ZOOM:
        return None
    return part_side(s, zoom)


def part_side(scale: float, at: float) -> int | None:
    """The larger frame of a fit that maps a onto b with this scale (unit coordinates): 0 (a) when
    scale >= at (b shows a part of a, enlarged), 1 (b) when scale <= 1 / at, None in between."""
    return 0 if scale >= at else 1 if scale <= 1 / at else None


def _inside(H: np.ndarray, small: LocalFeatures, big: LocalFeatures) -> bool:
    """Does the smaller side's whole frame land inside the larger's? A crop, or a picture region, is a
    part of its original; two composites sharing one pasted person are not parts of each other."""
    import cv2

    w, h = small.width, small.height
    corners = cv2.perspectiveTransform(np.float64([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]]), H).reshape(-1, 2)
    tol = INSIDE * max(big.width, big.height)
    return bool(np.isfinite(corners).all() and (corners >= -tol).all()
                and (corners[:, 0] <= big.width + tol).all() and (corners[:, 1] <= big.height + tol).all())


@dataclass
class OutsideImage:
    """An image outside the index (a query) as copy verification sees it."""

    local: LocalFeatures
    thumb: np.ndarray  # grey 128 px (photometric.thumb)
    zoom: Callable[[], Zoomed]  # the image seen closer, computed when a zoomed fit first asks for it
    colour: np.ndarray | None = None  # 256 px colour thumbnail (photometric.colour_thumb): same-scene check


def values(index, ids, extra: dict | None = None) -> dict:
    """{id: Zoomed} of indexed files (computed and stored on first use) and of images outside the
    index (extra: {id: OutsideImage})."""
    out = {}
    for i in ids:
        outside = (extra or {}).get(i)
        if outside is not None:
            out[i] = outside.zoom()
    rest = sorted(i for i in ids if i >= 0 and i not in out)
    if rest:
        out.update(index.feature_values(rest, "zoom"))
    return out


def rescore(small: LocalFeatures, small_thumb, big: Zoomed, whole: bool = True) -> tuple[float, dict]:
    """Copy-scale score of the smaller-content side against the larger side seen closer. The fit maps
    the larger side onto the smaller, so pixels agree on the smaller side's grid, all of whose blocks
    the part covers (on the larger side's grid a 40 % part covers a few blocks). whole: the smaller
    side is a whole image, not a picture region (whose edges disagree in a thin patch)."""
    from lookalike.search.copy import copy_score
    from lookalike.search.verify import verify

    v = verify(big.local, small)
    s, det = copy_score(v, big.thumb, small_thumb, big.local, small, slack=SLACK)
    try:
        inside = v.H is not None and _inside(np.linalg.inv(v.H), small, big.local)
    except np.linalg.LinAlgError:
        inside = False
    det["zoomed"] = True
    if not inside:
        return 0.0, det
    if whole and s >= MIN_CHECKED:  # a crop changes no pixel: one background composited at another zoom with
        # another person does (a patch that disagrees, as copy_score's same-scene rule asks of fixed framings)
        from lookalike.search.copy import MOMENT_PATCH
        from lookalike.search.photometric import changed_region

        patch = changed_region(big.thumb, small_thumb, v.H, (big.local.width, big.local.height),
                               (small.width, small.height))
        if patch >= MOMENT_PATCH:
            return 0.0, {**det, "changed_patch": round(patch, 3)}
    return s, det
