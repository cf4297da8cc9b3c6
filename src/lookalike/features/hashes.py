"""Perceptual hashes and cheap descriptors, computed from the decoded working image.

The classic 64-bit hashes follow imagehash's definitions (so numbers compare with it) but all start
from one 128x128 area-averaged greyscale square of the border-trimmed working image (`hash_base`):
one resize of the working image per file instead of one per hash. PDQ is computed from the same
square (see `filehash.pdq_input`).
"""

from __future__ import annotations

import cv2
import numpy as np
import pdqhash

from lookalike.features.filehash import haar_ll8, median, pdq_input
from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded

def trim_borders(img: np.ndarray, *, tol: int = 14, min_keep: float = 0.2) -> np.ndarray:
    """Cut away flat borders (letterbox bars, the canvas around a shrunk or rotated copy) of an RGB or
    greyscale image.

    A row or column is border when nearly all its pixels are within `tol` of the border colour.
    Both sides of a comparison get the same treatment, so a copy that was padded hashes like
    its original.
    """
    g = (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img).astype(np.int16)
    h, w = g.shape
    edge = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    ref = int(median(edge))
    off = np.abs(g - ref) > tol
    rows = np.nonzero(off.mean(axis=1) > 0.02)[0]
    cols = np.nonzero(off.mean(axis=0) > 0.02)[0]
    if len(rows) == 0 or len(cols) == 0:
        return img
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (y1 - y0) < min_keep * h or (x1 - x0) < min_keep * w or (y1 - y0, x1 - x0) == (h, w):
        return img
    return img[y0:y1, x0:x1]


def _small(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(gray.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_AREA)


BASE_SIDE = 128


def hash_base(gray: np.ndarray) -> np.ndarray:
    """The 128x128 area-averaged square (float32) the 64-bit hashes and the fingerprint shrink from:
    one area resize of the working image instead of one per hash (a fifth of the time; the 8-64 px
    hash squares come out the same to within rounding)."""
    h, w = gray.shape[:2]
    if h <= BASE_SIDE and w <= BASE_SIDE:
        return gray.astype(np.float32)
    return _small(gray, BASE_SIDE, BASE_SIDE)


def ahash(gray: np.ndarray) -> np.ndarray:
    px = _small(gray, 8, 8)
    return np.packbits(px > px.mean())


def dhash(gray: np.ndarray) -> np.ndarray:
    px = _small(gray, 9, 8)
    return np.packbits(px[:, 1:] > px[:, :-1])


def whash(gray: np.ndarray) -> np.ndarray:
    return haar_ll8(_small(gray, 64, 64))


def color_histogram(rgb: np.ndarray) -> np.ndarray:
    """64-bin (4x4x4) RGB histogram, L1-normalised; bin index r * 16 + g * 4 + b of the top 2 bits.
    Counts every other pixel of every other row of images above 256 px: the same proportions to a
    fraction of a percent, at a quarter of the cost."""
    if min(rgb.shape[:2]) > 256:
        rgb = rgb[::2, ::2]
    hist = cv2.calcHist([np.ascontiguousarray(rgb)], [0, 1, 2], None, [4, 4, 4], [0, 256] * 3).ravel()
    return hist / max(float(hist.sum()), 1.0)


def content_fingerprint(gray: np.ndarray) -> np.ndarray:
    """50x50 Otsu-binarised thumbnail (2500 bits): the layout of dark and light."""
    small = np.clip(_small(gray, 50, 50) + 0.5, 0, 255).astype(np.uint8)
    _, bw = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.packbits(bw.astype(bool))


_FUNCS_64 = {"ahash": ahash, "dhash": dhash, "whash": whash}  # pHash: phash_dihedral


# The 8 rotations/mirrors of an image, for rotation/flip-invariant matching on the query side.
DIHEDRAL = {
    "original": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip": lambda a: a[:, ::-1],
    "flip_rot90": lambda a: np.rot90(a[:, ::-1], 1),
    "flip_rot180": lambda a: np.rot90(a[:, ::-1], 2),
    "flip_rot270": lambda a: np.rot90(a[:, ::-1], 3),
}


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def _base(img: Decoded) -> np.ndarray:
    """hash_base of the border-trimmed greyscale working image (cached on the image)."""
    if "_hash_base" not in img.__dict__:
        img.__dict__["_hash_base"] = hash_base(trim_borders(img.gray))
    return img.__dict__["_hash_base"]


def phash_dihedral(gray: np.ndarray) -> np.ndarray:
    """pHash of the 8 rotations/mirrors, shape (8, 8): the moves are applied to the 32x32 thumbnail."""
    small = _small(gray, 32, 32)
    out = []
    for move in DIHEDRAL.values():
        low = cv2.dct(np.ascontiguousarray(move(small)))[:8, :8]
        out.append(np.packbits(low > median(low)))
    return np.stack(out)


def pdq_dihedral(gray: np.ndarray) -> tuple[np.ndarray, int]:
    """PDQ of the 8 rotations/mirrors (8, 32) of a greyscale image, in pdqhash's order (row 0 =
    original), and the quality."""
    hashes, quality = pdqhash.compute_dihedral(pdq_input(gray))
    codes = np.stack([np.packbits(np.asarray(h, dtype=np.uint8)) for h in hashes])
    return codes, int(quality)


class _Hash(Extractor):
    kind, dim = "binary", 64

    def compute(self, img: Decoded) -> np.ndarray:
        return _FUNCS_64[self.name](_base(img))


@register
class AHash(_Hash):
    name, version = "ahash", "2"


@register
class DHash(_Hash):
    name, version = "dhash", "2"


@register
class WHash(_Hash):
    name, version = "whash", "2"


@register
class PHash8(Extractor):
    """pHash of the image and of its 7 other rotations/mirrors (row 0 is the plain pHash)."""

    name, version, kind, dim = "phash8", "2", "binary", 8 * 64

    def compute(self, img: Decoded) -> np.ndarray:
        return phash_dihedral(_base(img)).ravel()


@register
class PDQ8(Extractor):
    """PDQ of the image and its 7 other rotations/mirrors (row 0 is the plain PDQ), then a quality byte."""

    name, version, kind, dim = "pdq8", "3", "binary", 8 * 256 + 8

    def compute(self, img: Decoded) -> np.ndarray:
        codes, quality = pdq_dihedral(_base(img))
        return np.append(codes.ravel(), np.uint8(quality))


def split_pdq8(blob: np.ndarray) -> tuple[np.ndarray, int]:
    return np.asarray(blob[:256]).reshape(8, 32), int(blob[256])


@register
class ColorHistogram(Extractor):
    name, version, kind, dim = "colorhist", "2", "float", 64

    def compute(self, img: Decoded) -> np.ndarray:
        return color_histogram(img.rgb)


@register
class ContentFingerprint(Extractor):
    name, version, kind, dim = "fingerprint", "2", "binary", 2504

    def compute(self, img: Decoded) -> np.ndarray:
        return content_fingerprint(_base(img))


HASH_FEATURES = ("ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint")
