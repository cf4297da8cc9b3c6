"""`lookalike compare A B`: every method's verdict on two images, side by side, with what it means."""

from __future__ import annotations

import cv2
import numpy as np

from lookalike.errors import BadInput
from lookalike.features import hashes as H
from lookalike.imageio import load_file
from lookalike.search.hashmatch import SCALES, hash_score


def ssim(a: np.ndarray, b: np.ndarray, side: int = 256) -> float:
    """Mean structural similarity of two greyscale images resized to side x side."""
    a = cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA).astype(np.float64)
    b = cv2.resize(b, (side, side), interpolation=cv2.INTER_AREA).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(s.mean())


def size_similarity(wa: int, ha: int, wb: int, hb: int) -> tuple[float, float]:
    """(aspect similarity, area ratio), both in [0, 1]; rotation by 90 degrees ignored for aspect."""
    ra, rb = max(wa, ha) / min(wa, ha), max(wb, hb) / min(wb, hb)
    return min(ra, rb) / max(ra, rb), min(wa * ha, wb * hb) / max(wa * ha, wb * hb)


def compare_files(a: str, b: str) -> list[dict]:
    try:
        ia, ib = load_file(a), load_file(b)
    except BadInput as e:
        return [{"method": "decode", "score": None, "raw": str(e), "meaning": "cannot compare"}]
    rows = []

    def add(method, score, raw, meaning):
        rows.append({"method": method, "score": None if score is None else float(score), "raw": raw, "meaning": meaning})

    add("sha256", float(ia.sha256 == ib.sha256), "same bytes" if ia.sha256 == ib.sha256 else "different bytes",
        "1 = byte-identical files")
    add("pixels", float(ia.pixel_digest == ib.pixel_digest), "", "1 = identical decoded pixels")
    ga, gb = H.trim_borders(ia.gray), H.trim_borders(ib.gray)
    ba, bb = H.hash_base(ga), H.hash_base(gb)  # what the index hashes: the same numbers as `search`
    for name in ("ahash", "dhash", "whash"):
        d = H.hamming(H._FUNCS_64[name](ba), H._FUNCS_64[name](bb))
        add(name, 1 - d / 64, f"{d}/64 bits", "similarity 1 - d/64; copies usually d <= 10")
    pa, pb = H.phash_dihedral(ba), H.phash_dihedral(bb)
    d0 = H.hamming(pa[0], pb[0])
    dd = min(H.hamming(pa[0], x) for x in pb)
    add("phash", hash_score("phash", d0), f"{d0}/64 bits", f"copy if >= 0.8 (d <= {SCALES['phash'][1]})")
    add("phash (rotations/mirrors)", hash_score("phash", dd), f"{dd}/64 bits", "best of the 8 rotations/mirrors")
    (qa, quality_a), (qb, quality_b) = H.pdq_dihedral(ba), H.pdq_dihedral(bb)
    d0 = H.hamming(qa[0], qb[0])
    dd = min(H.hamming(qa[0], x) for x in qb)
    add("pdq", hash_score("pdq", d0), f"{d0}/256 bits (quality {quality_a}/{quality_b})",
        f"copy if >= 0.8 (d <= {SCALES['pdq'][1]}); quality < 50 = unreliable")
    add("pdq (rotations/mirrors)", hash_score("pdq", dd), f"{dd}/256 bits", "best of the 8 rotations/mirrors")
    ca, cb = H.color_histogram(ia.rgb), H.color_histogram(ib.rgb)
    add("colour histogram", float(np.minimum(ca, cb).sum()), "intersection of 64-bin RGB histograms",
        "1 = same colours (says nothing about layout)")
    fa, fb = H.content_fingerprint(ba), H.content_fingerprint(bb)
    add("content fingerprint", 1 - H.hamming(fa, fb) / 2500, "50x50 Otsu layout", "1 = same dark/light layout")
    add("ssim", ssim(ga, gb), "on 256x256 greyscale", "1 = identical structure; copies > 0.7 unless cropped/rotated")
    asp, area = size_similarity(ia.width, ia.height, ib.width, ib.height)
    add("aspect", asp, f"{ia.width}x{ia.height} vs {ib.width}x{ib.height}", "1 = same aspect ratio")
    add("area", area, "", "1 = same pixel count")
    try:
        from lookalike.features.local import extract_local
        from lookalike.search.verify import verify

        v = verify(extract_local(ia.rgb), extract_local(ib.rgb))
        add("sift+ransac", v.score, f"{v.inliers} inliers of {v.matches} matches" + (" (mirrored)" if v.flipped else ""),
            "geometric check: >= 0.5 = the same picture (survives crops, rotation)")
    except Exception as e:  # optional evidence
        add("sift+ransac", None, str(e), "unavailable")
    return rows
