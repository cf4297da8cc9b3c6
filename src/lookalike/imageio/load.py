"""Decode any image safely to an RGB working image plus metadata.

Every failure becomes `BadInput` with a one-line reason; nothing else escapes. The format is sniffed
from the bytes (never the extension), EXIF orientation is applied, every Pillow mode ends as RGB
(transparency over white), animations give their first frame, and JPEGs decode in draft mode straight
to the smallest DCT scale that still covers the working size.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

from lookalike import config
from lookalike.errors import BadInput

ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None  # we check the pixel count ourselves, before decoding, with a clear reason

try:  # HEIC/HEIF and AVIF
    import pillow_heif

    pillow_heif.register_heif_opener()
    if hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
except Exception:  # pragma: no cover - optional codec
    pass

cv2.setNumThreads(1)  # parallelism comes from worker processes


@dataclass
class Decoded:
    rgb: np.ndarray  # HxWx3 uint8, C-contiguous, long side <= work_side
    width: int  # original size, after EXIF orientation
    height: int
    format: str
    sha256: str  # of the file bytes
    pixel_digest: str  # of the decoded working pixels

    @property
    def gray(self) -> np.ndarray:
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY)


def read_bytes(path: str | Path, max_bytes: int = config.MAX_FILE_BYTES) -> bytes:
    """Read a file whole, refusing empty or oversized ones with a reason."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size == 0:
            raise BadInput("empty file (0 bytes)")
        if size > max_bytes:
            raise BadInput(f"file is {size / 2**20:.0f} MiB, above the {max_bytes / 2**20:.0f} MiB limit")
        return p.read_bytes()
    except OSError as e:
        raise BadInput(f"cannot read file: {e.strerror or e}") from None


def load_file(path: str | Path, work_side: int = config.WORK_SIDE) -> Decoded:
    return decode_bytes(read_bytes(path), work_side=work_side)


def decode_bytes(data: bytes, work_side: int = config.WORK_SIDE, max_pixels: int = config.MAX_PIXELS) -> Decoded:
    if not data:
        raise BadInput("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            fmt = im.format or "unknown"
            w, h = im.size
            if w <= 0 or h <= 0:
                raise BadInput(f"{fmt} image has no pixels ({w}x{h})")
            if w * h > max_pixels:
                raise BadInput(
                    f"{fmt} image is {w}x{h} = {w * h / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP limit "
                    "(decompression-bomb guard; raise LOOKALIKE_MAX_PIXELS to allow it)"
                )
            if fmt == "JPEG":
                scale = work_side / max(w, h)
                if scale < 1:
                    im.draft("RGB", (max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))))
            im.load()
            orientation = _exif_orientation(im)
            rgb = _to_rgb_array(im)
    except BadInput:
        raise
    except Image.UnidentifiedImageError:
        raise BadInput("not an image Pillow can identify (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError, struct_error()) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "truncated" in msg:
            msg = "image file is truncated"
        raise BadInput(f"cannot decode {fmt if 'fmt' in locals() else 'image'}: {msg}") from None

    rgb = _apply_orientation(rgb, orientation)
    ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    rgb = _fit(rgb, work_side)
    rgb = np.ascontiguousarray(rgb)
    digest = hashlib.sha256(rgb.tobytes() + str(rgb.shape).encode()).hexdigest()
    return Decoded(rgb, ow, oh, fmt, hashlib.sha256(data).hexdigest(), digest)


def struct_error():
    import struct

    return struct.error


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1  # broken EXIF never costs the picture


def _apply_orientation(rgb: np.ndarray, orientation: int) -> np.ndarray:
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
    return ops[orientation](rgb) if orientation in ops else rgb


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if hi <= 255 and lo >= 0:
            g = a
        else:  # stretch high-bit-depth or float data to 8 bits
            g = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        g = np.nan_to_num(g).clip(0, 255).astype(np.uint8)
        return np.dstack([g, g, g])
    if mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    if im.mode in ("LAB", "HSV"):
        im = ImageOps.grayscale(im) if im.mode == "LAB" else im.convert("RGB")
    return np.asarray(im.convert("RGB"))


def _fit(rgb: np.ndarray, side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return rgb
    s = side / max(h, w)
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
