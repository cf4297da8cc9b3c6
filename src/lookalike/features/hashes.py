"""Perceptual hashes and cheap descriptors, computed from the decoded working image.

The classic 64-bit hashes follow imagehash's definitions (so numbers compare with it) but work on a
small greyscale image resized with area averaging; wHash uses a fixed 64 px Haar pyramid instead of a
size that grows with the input, which makes it both faster and independent of resolution.
"""

from __future__ import annotations

import cv2
import numpy as np
import pdqhash
import pywt
from PIL import Image

from lookalike.features.registry import Extractor, register
from lookalike.imageio import Decoded

HASHES_64 = ("ahash", "dhash", "phash", "whash")


def trim_borders(rgb: np.ndarray, *, tol: int = 14, min_keep: float = 0.2) -> np.ndarray:
    """Cut away flat borders (letterbox bars, the canvas around a shrunk or rotated copy).

    A row or column is border when nearly all its pixels are within `tol` of the border colour.
    Both sides of a comparison get the same treatment, so a copy that was padded hashes like
    its original.
    """
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int16) if rgb.ndim == 3 else rgb.astype(np.int16)
    h, w = g.shape
    edge = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    ref = int(np.median(edge))
    off = np.abs(g - ref) > tol
    rows = np.nonzero(off.mean(axis=1) > 0.02)[0]
    cols = np.nonzero(off.mean(axis=0) > 0.02)[0]
    if len(rows) == 0 or len(cols) == 0:
        return rgb
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if (y1 - y0) < min_keep * h or (x1 - x0) < min_keep * w or (y1 - y0, x1 - x0) == (h, w):
        return rgb
    return rgb[y0:y1, x0:x1]


def _gray(img: Decoded | np.ndarray) -> np.ndarray:
    rgb = img.rgb if isinstance(img, Decoded) else img
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _small(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)


def ahash(gray: np.ndarray) -> np.ndarray:
    px = _small(gray, 8, 8)
    return np.packbits(px > px.mean())


def dhash(gray: np.ndarray) -> np.ndarray:
    px = _small(gray, 9, 8)
    return np.packbits(px[:, 1:] > px[:, :-1])


def phash(gray: np.ndarray) -> np.ndarray:
    low = cv2.dct(_small(gray, 32, 32))[:8, :8]
    return np.packbits(low > np.median(low))


def whash(gray: np.ndarray) -> np.ndarray:
    px = _small(gray, 64, 64) / 255.0
    coeffs = pywt.wavedec2(px, "haar", level=6)
    coeffs[0] *= 0  # drop the overall brightness, as imagehash's remove_max_haar_ll does
    px = pywt.waverec2(coeffs, "haar")
    ll = pywt.wavedec2(px, "haar", level=3)[0]
    return np.packbits(ll > np.median(ll))


def pdq(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Facebook's PDQ (256 bits) and its quality (0-100; under ~50 the hash is unreliable)."""
    h, w = rgb.shape[:2]
    if max(h, w) > 512:  # PDQ's reference downsamples to 512 first; same hash, less work
        s = 512 / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def color_histogram(rgb: np.ndarray) -> np.ndarray:
    """64-bin (4x4x4) RGB histogram, L1-normalised."""
    q = (rgb >> 6).astype(np.int32)
    idx = (q[..., 0] << 4) | (q[..., 1] << 2) | q[..., 2]
    hist = np.bincount(idx.ravel(), minlength=64).astype(np.float32)
    return hist / max(hist.sum(), 1.0)


def content_fingerprint(gray: np.ndarray) -> np.ndarray:
    """50x50 Otsu-binarised thumbnail (2500 bits): the layout of dark and light."""
    small = cv2.resize(gray, (50, 50), interpolation=cv2.INTER_AREA)
    _, bw = cv2.threshold(small, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return np.packbits(bw.astype(bool))


# -- imagehash-compatible hashes (the `lookalike hash` command) --------------------------------
# imagehash shrinks the whole picture with Pillow's Lanczos filter and takes an unnormalised DCT.
# Doing the same from a luma image of about 128 px keeps its numbers (within a bit or two) at a
# small fraction of the cost: Lanczos from full size is most of imagehash's time.

def _lanczos(gray: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(gray).resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64)


def _shrink(gray: np.ndarray, short: int) -> np.ndarray:
    """Area-average down to a short side of `short` (never up)."""
    h, w = gray.shape
    f = short / min(h, w)
    if f >= 1:
        return gray
    return cv2.resize(gray, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def file_hashes(gray: np.ndarray) -> dict[str, np.ndarray | int]:
    """aHash, dHash, pHash, wHash (64-bit, imagehash's definitions), PDQ (256-bit) and its quality,
    from a luma image (HxW uint8) with a short side of 128 px or more (`decode_luma`)."""
    small = _shrink(gray, 128)
    px = _lanczos(small, 8, 8)
    out: dict = {"ahash": np.packbits(px > px.mean())}
    px = _lanczos(small, 9, 8)
    out["dhash"] = np.packbits(px[:, 1:] > px[:, :-1])
    low = cv2.dct(_lanczos(small, 32, 32))[:8, :8]
    low[0, :] *= np.sqrt(2)  # cv2's DCT is orthonormal; scipy's (imagehash's) weighs row/column 0 more
    low[:, 0] *= np.sqrt(2)
    out["phash"] = np.packbits(low > np.median(low))
    px = _lanczos(small, 64, 64) / 255.0
    coeffs = pywt.wavedec2(px, "haar", level=6)
    coeffs[0] *= 0  # imagehash's remove_max_haar_ll
    ll = pywt.wavedec2(pywt.waverec2(coeffs, "haar"), "haar", level=3)[0]
    out["whash"] = np.packbits(ll > np.median(ll))
    # PDQ works on a 64x64 luma buffer made by its own tent filter, whose cost grows with the square
    # of the input side; an area-averaged 64x64 square makes that filter a no-op (window 1) and
    # lands as close to a full-size PDQ as the usual 512 px input does.
    sq = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA)
    bits, quality = pdqhash.compute(np.dstack([sq, sq, sq]))  # R = G = B = luma: pdqhash's luma is the same
    out["pdq"], out["pdq_quality"] = np.packbits(bits.astype(np.uint8)), int(quality)
    return out


_FUNCS_64 = {"ahash": ahash, "dhash": dhash, "phash": phash, "whash": whash}


def all_hashes(rgb: np.ndarray) -> dict[str, np.ndarray | int]:
    gray = _gray(rgb)
    out: dict = {name: f(gray) for name, f in _FUNCS_64.items()}
    out["pdq"], out["pdq_quality"] = pdq(rgb)
    return out


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


def dihedral_codes(rgb: np.ndarray, name: str) -> np.ndarray:
    """The hash `name` of all 8 dihedral variants, shape (8, nbytes)."""
    out = []
    for move in DIHEDRAL.values():
        v = np.ascontiguousarray(move(rgb))
        out.append(pdq(v)[0] if name == "pdq" else _FUNCS_64[name](_gray(v)))
    return np.stack(out)


def hex_code(bits: np.ndarray) -> str:
    return bytes(np.asarray(bits, dtype=np.uint8)).hex()


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(np.bitwise_xor(a, b)).sum())


def _view(img: Decoded) -> np.ndarray:
    """The border-trimmed working image every hash is computed from (cached on the image)."""
    if "_trimmed" not in img.__dict__:
        img.__dict__["_trimmed"] = np.ascontiguousarray(trim_borders(img.rgb))
    return img.__dict__["_trimmed"]


def phash_dihedral(gray: np.ndarray) -> np.ndarray:
    """pHash of the 8 rotations/mirrors, shape (8, 8): the moves are applied to the 32x32 thumbnail."""
    small = _small(gray, 32, 32)
    out = []
    for move in DIHEDRAL.values():
        low = cv2.dct(np.ascontiguousarray(move(small)))[:8, :8]
        out.append(np.packbits(low > np.median(low)))
    return np.stack(out)


def pdq_dihedral(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """PDQ of the 8 rotations/mirrors (8, 32), in pdqhash's order (row 0 = original), and the quality."""
    h, w = rgb.shape[:2]
    if max(h, w) > 512:
        s = 512 / max(h, w)
        rgb = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    hashes, quality = pdqhash.compute_dihedral(np.ascontiguousarray(rgb))
    codes = np.stack([np.packbits(np.asarray(h, dtype=np.uint8)) for h in hashes])
    return codes, int(quality)


class _Hash(Extractor):
    kind, dim = "binary", 64

    def compute(self, img: Decoded) -> np.ndarray:
        return _FUNCS_64[self.name](_gray(_view(img)))


@register
class AHash(_Hash):
    name, version = "ahash", "1"


@register
class DHash(_Hash):
    name, version = "dhash", "1"


@register
class WHash(_Hash):
    name, version = "whash", "1"


@register
class PHash8(Extractor):
    """pHash of the image and of its 7 other rotations/mirrors (row 0 is the plain pHash)."""

    name, version, kind, dim = "phash8", "1", "binary", 8 * 64

    def compute(self, img: Decoded) -> np.ndarray:
        return phash_dihedral(_gray(_view(img))).ravel()


@register
class PDQ8(Extractor):
    """PDQ of the image and its 7 other rotations/mirrors (row 0 is the plain PDQ), then a quality byte."""

    name, version, kind, dim = "pdq8", "1", "binary", 8 * 256 + 8

    def compute(self, img: Decoded) -> np.ndarray:
        codes, quality = pdq_dihedral(_view(img))
        return np.append(codes.ravel(), np.uint8(quality))


def split_pdq8(blob: np.ndarray) -> tuple[np.ndarray, int]:
    return np.asarray(blob[:256]).reshape(8, 32), int(blob[256])


@register
class ColorHistogram(Extractor):
    name, version, kind, dim = "colorhist", "1", "float", 64

    def compute(self, img: Decoded) -> np.ndarray:
        return color_histogram(img.rgb)


@register
class ContentFingerprint(Extractor):
    name, version, kind, dim = "fingerprint", "1", "binary", 2504

    def compute(self, img: Decoded) -> np.ndarray:
        return content_fingerprint(_gray(img))


HASH_FEATURES = ("ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint")
