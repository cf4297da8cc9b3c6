"""What `lookalike hash` needs from a file, without loading Pillow: its bytes and a small luma image.

A JPEG decodes only its luma at the smallest DCT scale that keeps the short side >= `min_side`
(libjpeg-turbo through simplejpeg: the pixels Pillow's draft mode gives, the same library) and its EXIF
orientation is read from the Exif segment here. Everything else (other formats, CMYK, damaged data,
EXIF or XMP this reader does not follow exactly as Pillow does) goes to Pillow in `load.py`, which
gives the same image or the reason there is none. On a small batch, importing Pillow and opening each
file with it cost about a tenth of the `hash` command's time.
"""

from __future__ import annotations

import os

import numpy as np

from lookalike import config
from lookalike.errors import BadInput

try:  # libjpeg-turbo; without it every file goes to Pillow
    import simplejpeg
except ImportError:  # pragma: no cover
    simplejpeg = None


def read_bytes(path: str | os.PathLike, max_bytes: int = config.MAX_FILE_BYTES) -> bytes:
    """Read a file whole, refusing empty or oversized ones with a reason."""
    try:
        size = os.stat(path).st_size
        if size == 0:
            raise BadInput("empty file (0 bytes)")
        if size > max_bytes:
            raise BadInput(f"file is {size / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB limit")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"cannot read file: {e.strerror or e}") from None


def decode_luma(data: bytes, *, min_side: int = 64, max_pixels: int = config.MAX_PIXELS) -> np.ndarray:
    """Greyscale (ITU-R 601 luma, HxW uint8) shrunk to a short side of about `min_side`..2x that.

    For hashes that need only a small thumbnail: a JPEG decodes just its luma channel at the smallest
    DCT scale that keeps the short side >= `min_side` (up to 8x fewer pixels per side, no colour
    conversion); other formats decode whole and are shrunk by area averaging. EXIF orientation and
    transparency (over white) are applied as in `load.decode_bytes`; a file that cannot be used raises
    BadInput with the reason.
    """
    gray = _jpeg_luma(data, min_side, max_pixels)
    if gray is None:
        from lookalike.imageio.load import decode_luma_pillow

        gray = decode_luma_pillow(data, min_side=min_side, max_pixels=max_pixels)
    short = min(gray.shape)
    if short >= 2 * min_side:  # area averaging keeps every pixel's weight, like a DCT-scaled JPEG
        from lookalike.imageio.resize import area_shrink

        f = min_side / short
        gray = area_shrink(gray, max(1, round(gray.shape[1] * f)), max(1, round(gray.shape[0] * f)))
    return np.ascontiguousarray(gray)


def _jpeg_luma(data: bytes, min_side: int, max_pixels: int) -> np.ndarray | None:
    """The oriented luma of a clean YCbCr or greyscale JPEG at the DCT scale `decode_luma` wants; None
    for anything Pillow should decide on."""
    if simplejpeg is None or data[:3] != b"\xff\xd8\xff":
        return None
    orientation = exif_orientation(data)
    if orientation is None:
        return None
    try:
        h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace not in ("YCbCr", "Gray") or not 0 < w * h <= max_pixels:
            return None
        s = next((s for s in (8, 4, 2) if min(w, h) // s >= min_side), 1)
        gray = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_width=-(-w // s), min_height=-(-h // s),
                                      strict=True)
    except Exception:  # strict: any libjpeg warning (corrupt data, truncation) sends the file to Pillow
        return None
    return apply_orientation(gray[:, :, 0], orientation)


def exif_orientation(jpeg: bytes) -> int | None:
    """The EXIF orientation (1-8; 1 without one) Pillow's `getexif()` gives a JPEG, read from its header
    segments; None where the header holds something this reader leaves to Pillow (several Exif segments,
    XMP, an unusual orientation entry, a malformed header)."""
    pos, exif, xmp = 2, None, False
    while True:
        if pos + 4 > len(jpeg) or jpeg[pos] != 0xFF:
            return None
        marker = jpeg[pos + 1]
        if marker == 0xDA:  # start of scan: the header is over
            break
        if marker in (0x01, 0xFF) or 0xD0 <= marker <= 0xD9:
            return None  # markers without a length, padding: unusual, Pillow copes
        end = pos + 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if marker == 0xE1:
            body = jpeg[pos + 4 : end]
            if body.startswith(b"Exif\0\0"):
                if exif is not None:
                    return None  # Pillow joins several Exif segments
                exif = body[6:]
            elif body.startswith(b"http://ns.adobe.com/xap/1.0/"):
                xmp = True
        pos = end
    found = _tiff_orientation(exif) if exif is not None else 0
    if found is None or (found == 0 and xmp):  # Pillow reads the orientation from XMP then
        return None
    return found if 1 <= found <= 8 else 1  # none, or a value no transpose exists for: as is


def _tiff_orientation(tiff: bytes) -> int | None:
    """Tag 0x0112 of the first IFD of a TIFF header: its value, 0 when absent, None when odd."""
    order = {b"II*\0": "little", b"MM\0*": "big"}.get(tiff[:4])
    if order is None or len(tiff) < 10:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    if ifd < 8 or ifd + 2 + 12 * count > len(tiff):
        return None
    entries = [tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k] for k in range(count)]
    found = [e for e in entries if int.from_bytes(e[:2], order) == 0x0112]
    if not found:
        return 0
    kind, n = int.from_bytes(found[0][2:4], order), int.from_bytes(found[0][4:8], order)
    if len(found) > 1 or kind != 3 or n != 1:  # anything but one SHORT: Pillow's general reader
        return None
    return int.from_bytes(found[0][8:10], order)


def apply_orientation(px: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1-8 as numpy moves (same result as ImageOps.exif_transpose)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.rot90(a[:, ::-1], 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a[:, ::-1], -1),
        8: lambda a: np.rot90(a, 1),
    }
    return ops[orientation](px) if orientation in ops else px
