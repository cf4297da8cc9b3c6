"""Geometric verification of copy candidates: local-feature matching + RANSAC + a calibrated score.

A copy (crop, rotation, overlay, screenshot, letterbox, mild perspective, mirror...) maps the pixels of
one image onto the other by a single near-similarity transform, so many matches agree on it, with
tiny residuals and near-identical descriptors. Another photograph of the same place or object also
shares matches, but fewer, with larger residuals (3-D parallax, new lighting) and with a transform
that is far from a similarity. `score` combines these cues; score >= 0.5 means "geometrically
confirmed copy" (see COPY_THRESHOLD).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from lookalike.features.local import LocalFeatures

COPY_THRESHOLD = 0.5
RATIO = 0.8  # Lowe's ratio test
MIN_MATCHES = 6  # below this RANSAC is not worth running

# Descriptor of the mirrored patch: SIFT's canonical frame follows the dominant orientation, so a
# mirror flips the 4x4 grid's rows and negates the 8 orientation bins (checked on mirrored images).
_FLIP = np.array([((3 - r) * 4 + c) * 8 + (8 - o) % 8 for r in range(4) for c in range(4) for o in range(8)])


@dataclass
class Verification:
    inliers: int  # matches consistent with the fitted transform
    matches: int  # ratio-test matches
    score: float  # [0, 1]; >= COPY_THRESHOLD = confirmed copy
    model: str  # "homography" | "affine"
    flipped: bool = False  # the copy is mirrored
    coverage: float = 0.0  # share of the better-covered image's area inside the inliers' convex hull
    H: np.ndarray | None = None  # 3x3, maps a's pixel coordinates onto b's
    cues: dict = field(default_factory=dict)  # the raw cues behind the score, for explanations

    @property
    def is_copy(self) -> bool:
        return self.score >= COPY_THRESHOLD


@functools.cache
def _warm_blas() -> None:
    """One larger product first: measured on numpy's OpenBLAS 0.3.31 (Zen, one thread), products of
    two 320 x 128 descriptor sets take 2.0-2.2 ms until the process has multiplied a larger pair
    (400 x 400 here), 0.65 ms after, with the same numbers; cv2.gemm takes 2.0-2.2 ms either way."""
    w = np.ones((400, 128), np.float32)
    w @ w.T


def _match(da: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ratio-test matches a->b, one-to-one: (index in a, index in b, L2 distance).

    One float32 product (numpy's OpenBLAS, one thread in the engine: see _warm_blas) and two argmins:
    faster than cv2.BFMatcher.knnMatch.
    """
    if len(da) < 2 or len(db) < 2:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.float32)
    _warm_blas()
    d2 = (da * da).sum(1)[:, None] + (db * db).sum(1)[None, :]
    d2 -= 2 * (da @ db.T)
    rows = np.arange(len(da))
    first = d2.argmin(1)
    best = d2[rows, first]
    d2[rows, first] = np.inf
    second = d2.min(1)
    ok = best < (RATIO * RATIO) * second
    ia, ib, dist = rows[ok], first[ok], np.sqrt(np.maximum(best[ok], 0))
    # one-to-one: keep the closest match per b keypoint
    order = np.argsort(dist, kind="stable")
    _, keep = np.unique(ib[order], return_index=True)
    keep = np.sort(order[keep])
    return ia[keep], ib[keep], dist[keep].astype(np.float32)


def _norm(w: int, h: int) -> np.ndarray:
    """Pixel -> unit coordinates (centre 0, long side 1)."""
    s = 1.0 / max(w, h, 1)
    return np.array([[s, 0, -0.5 * w * s], [0, s, -0.5 * h * s], [0, 0, 1]])


def _hull_share(pts: np.ndarray, w: int, h: int) -> float:
    if len(pts) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(pts.astype(np.float32)))) / max(1.0, w * h)


def _support(xy: np.ndarray, inl: np.ndarray, H: np.ndarray, w: int, h: int, ow: int, oh: int,
             grid: int = 8) -> float:
    """Share of the textured overlap that agrees: among a's keypoints that H maps inside the other
    image, the fraction lying in grid cells that hold at least one inlier.

    Low when all inliers sit on a shared artificial part (the UI bars of two screenshots of different
    photos, the black corners of two pictures rotated by the same angle) while the picture content,
    full of keypoints, has none; a copy has inliers spread over its content.
    """
    if len(xy) == 0:
        return 0.0
    p = cv2.perspectiveTransform(xy.reshape(-1, 1, 2).astype(np.float64), H).reshape(-1, 2)
    inside = (p[:, 0] >= 0) & (p[:, 0] < ow) & (p[:, 1] >= 0) & (p[:, 1] < oh)
    if not inside.any():
        return 0.0
    cx = np.clip((xy[:, 0] * grid / max(w, 1)).astype(int), 0, grid - 1)
    cy = np.clip((xy[:, 1] * grid / max(h, 1)).astype(int), 0, grid - 1)
    cell = cy * grid + cx
    agreeing = np.zeros(grid * grid, bool)
    agreeing[cell[inl]] = True
    return float(agreeing[cell[inside]].mean())


def _fit(a: LocalFeatures, b: LocalFeatures, ia, ib, dist, model: str, flipped: bool) -> Verification:
    n = len(ia)
    empty = Verification(0, n, 0.0, model, flipped)
    if n < MIN_MATCHES:
        return empty
    src, dst = a.xy[ia].astype(np.float32), b.xy[ib].astype(np.float32)
    # USAC rejects orientation-reversing homographies: fit against b mirrored back, compose it in later
    mirror_b = np.array([[-1.0, 0, b.width - 1], [0, 1, 0], [0, 0, 1]]) if flipped else np.eye(3)
    if flipped:
        dst = dst.copy()
        dst[:, 0] = b.width - 1 - dst[:, 0]
    thr = 0.006 * max(b.width, b.height)  # ~4.6 px on a 768 px working image
    if model == "affine":
        M, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=thr, maxIters=2000)
        H = None if M is None else np.vstack([M, [0, 0, 1]])
    else:
        H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, thr, maxIters=2000, confidence=0.999)
    if H is None or mask is None:
        return empty
    H = mirror_b @ H
    if flipped:
        dst[:, 0] = b.width - 1 - dst[:, 0]
    inl = mask.ravel().astype(bool)
    k = int(inl.sum())
    if k < 4:
        return empty
    # transform in unit coordinates, so that its cues do not depend on image sizes
    Hn = _norm(b.width, b.height) @ H @ np.linalg.inv(_norm(a.width, a.height))
    Hn /= Hn[2, 2] if abs(Hn[2, 2]) > 1e-12 else 1.0
    A = Hn[:2, :2]
    det = float(np.linalg.det(A))
    sv = np.linalg.svd(A, compute_uv=False)
    proj = src[inl].reshape(-1, 1, 2)
    proj = cv2.perspectiveTransform(proj.astype(np.float64), H).reshape(-1, 2)
    resid = np.linalg.norm(proj - dst[inl], axis=1) / thr
    cues = {
        "inliers": k,
        "matches": n,
        "inlier_ratio": k / n,
        "cover_a": _hull_share(src[inl], a.width, a.height),
        "cover_b": _hull_share(dst[inl], b.width, b.height),
        "persp": float(np.hypot(Hn[2, 0], Hn[2, 1])),  # ~0 for similarity/affine copies
        "aniso": float(sv[0] / max(sv[1], 1e-9)),  # 1 for a similarity
        "scale": float(math.sqrt(abs(det))),
        "mirror": det < 0,
        "resid": float(np.median(resid)),  # in units of the RANSAC threshold
        "desc_dist": float(np.median(dist[inl])),  # RootSIFT L2 (x512): copies have near-identical patches
        "support": _support_both(a, b, ia, ib, inl, H),
    }
    v = Verification(k, n, 0.0, model, flipped, max(cues["cover_a"], cues["cover_b"]), H, cues)
    v.score = _score(cues, flipped)
    return v


def _support_both(a: LocalFeatures, b: LocalFeatures, ia, ib, inl, H) -> float:
    """_support in both directions (a onto b, b back onto a); the weaker one counts."""
    try:
        Hi = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return 0.0
    ina = np.zeros(len(a.xy), bool)
    ina[ia[inl]] = True
    inb = np.zeros(len(b.xy), bool)
    inb[ib[inl]] = True
    return min(_support(a.xy, ina, H, a.width, a.height, b.width, b.height),
               _support(b.xy, inb, Hi, b.width, b.height, a.width, a.height))


# Logistic weights over the cues, fitted on near-duplicate copy pairs (positives) against other photos
# of the same place/object (weighted x10) and random pairs, with features from extract_local's defaults.
_W = {
    "log_inliers": 0.6,
    "inlier_ratio": 3.0,
    "coverage": 5.0,  # inliers spread over the image, not one shared sign or facade
    "persp": -2.3,  # unit-coordinate perspective terms (copies <= ~0.25, other viewpoints ~1-20)
    "log_aniso": -0.2,
    "desc_dist": -3.8 / 100,  # RootSIFT x512 units: copies share pixels, so matched patches are near-identical
    "resid": -1.2,  # parallax of a 3-D scene leaves larger residuals than re-encoding noise
}
_BIAS = -2.1
MIN_INLIERS = 8  # fewer inliers never confirm a copy, whatever the other cues say
MIN_SUPPORT = 0.3  # below this share of agreeing content (see _support) a fit never confirms a copy:
# on near_duplicate it removed most frame-only screenshot matches (copy mode's pixel agreement catches
# the rest) and 13 of 3640 verified copy pairs


def _score(c: dict, flipped: bool) -> float:
    """Calibrated copy score in [0, 1]: >= COPY_THRESHOLD kept <= 1 % of other-photo pairs on the dev set."""
    # degenerate transforms: collapse, huge rescale, mirror where the matching did not mirror, shear
    if c["scale"] < 0.05 or c["scale"] > 20 or c["mirror"] != flipped or c["aniso"] > 4:
        return 0.0
    z = _BIAS + (
        _W["log_inliers"] * math.log(c["inliers"])
        + _W["inlier_ratio"] * c["inlier_ratio"]
        + _W["coverage"] * max(c["cover_a"], c["cover_b"])
        + _W["persp"] * min(c["persp"], 1.0)
        + _W["log_aniso"] * min(math.log(c["aniso"]), 1.0)
        + _W["desc_dist"] * c["desc_dist"]
        + _W["resid"] * min(c["resid"], 1.0)
    )
    p = 1.0 / (1.0 + math.exp(-z))
    # the shared part is a UI frame, black corners or a caption, not the picture: not a copy
    return p if c["inliers"] >= MIN_INLIERS and c.get("support", 1.0) >= MIN_SUPPORT else min(p, 0.3)


def verify(a: LocalFeatures, b: LocalFeatures, *, model: str = "homography", mirror: bool = True) -> Verification:
    """Is b a copy of a (or a of b)? Matches a->b, fits `model` with RANSAC, scores the fit.

    model: "homography" (crops, rotations, perspective) or "affine" (rotation + uniform scale + shift;
    the score was calibrated on homography fits). mirror: also try b's mirrored descriptors when the
    plain match does not confirm (flipped copies).
    """
    return verify_many(a, [b], model=model, mirror=mirror)[0]


def verify_many(
    query: LocalFeatures, candidates: list[LocalFeatures], *, model: str = "homography", mirror: bool = True
) -> list[Verification]:
    """verify(query, c) for every candidate, in order (~2-3 ms per candidate on one core)."""
    if model not in ("homography", "affine"):
        raise ValueError(f"model must be 'homography' or 'affine', not {model!r}")
    da = query.desc.astype(np.float32)
    out = []
    for b in candidates:
        db = b.desc.astype(np.float32)
        best = _fit(query, b, *_match(da, db), model, False)
        if mirror and best.score < COPY_THRESHOLD:
            flip = _fit(query, b, *_match(da, np.ascontiguousarray(db[:, _FLIP])), model, True)
            if flip.score > best.score or (flip.score == best.score and flip.inliers > best.inliers):
                best = flip
        out.append(best)
    return out
