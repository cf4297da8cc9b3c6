"""Decode any image safely to an RGB working image plus metadata.

Every failure becomes `BadInput` with a one-line reason; nothing else escapes. The format is sniffed
from the bytes (never the extension), EXIF orientation is applied, every Pillow mode ends as RGB
(transparency over white), animations give their first frame, and JPEGs decode in draft mode straight
to the smallest DCT scale that still covers the working size.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from lookalike import config
from lookalike.errors import BadInput
from lookalike.imageio.quick import apply_orientation as _apply_orientation
from lookalike.imageio.quick import decode_luma, read_bytes  # noqa: F401 (re-exported)

ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None  # we check the pixel count ourselves, before decoding, with a clear reason

_heif_ready = False


def register_heif() -> None:
    """HEIC/HEIF and AVIF through pillow-heif, registered on the first such file (its import costs as
    much as hashing a few files, and most collections hold none)."""
    global _heif_ready
    if _heif_ready:
        return
    _heif_ready = True
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        if hasattr(pillow_heif, "register_avif_opener"):
            pillow_heif.register_avif_opener()
    except Exception:  # pragma: no cover - optional codec
        pass

try:  # libjpeg-turbo, as Pillow's JPEG decoder, but 2-2.5x faster for the same pixels
    import simplejpeg
except ImportError:  # pragma: no cover - Pillow decodes everything without it, only slower
    simplejpeg = None


def opencv():
    """OpenCV, imported on first use: `lookalike hash` decodes without it (it takes longer to import
    than hashing a hundred files). Parallelism comes from worker processes, so one thread."""
    import cv2

    cv2.setNumThreads(1)
    return cv2


@dataclass
class Decoded:
    rgb: np.ndarray  # HxWx3 uint8, C-contiguous, long side <= work_side
    width: int  # original size, after EXIF orientation
    height: int
    format: str
    sha256: str  # of the file bytes
    pixel_digest: str  # of the decoded working pixels
    source: bytes | None = field(default=None, repr=False, compare=False)  # the file's bytes: see finer()

    def finer(self, side: int) -> np.ndarray:
        """The image at up to `side` px on its long side, decoded again from the file when the working
        image is smaller than both (a picture shown small in a large screenshot needs its own pixels);
        the working image otherwise."""
        if self.source is None or max(self.rgb.shape[:2]) >= min(side, max(self.width, self.height)):
            return self.rgb
        try:
            return decode_bytes(self.source, work_side=side).rgb
        except BadInput:  # decoded once at the working size: cannot happen, but never worth a failure
            return self.rgb

    @property
    def gray(self) -> np.ndarray:
        cv2 = opencv()
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2GRAY)


def load_file(path: str | Path, work_side: int = config.WORK_SIDE) -> Decoded:
    return decode_bytes(read_bytes(path), work_side=work_side)


def decode_bytes(data: bytes, work_side: int = config.WORK_SIDE, max_pixels: int = config.MAX_PIXELS,
                 keep_source: bool = False) -> Decoded:
    """keep_source: the result holds the bytes, for Decoded.finer (features of a small part need it)."""
    with _decode_errors() as seen:
        im, fmt, w, h = _open(data, max_pixels, seen)
        orientation = _exif_orientation(im)
        rgb = _fast_jpeg(data, im, work_side) if fmt == "JPEG" else None
        if rgb is None:
            if fmt == "JPEG":
                scale = work_side / max(w, h)
                if scale < 1:
                    im.draft("RGB", (max(1, int(w * scale + 0.5)), max(1, int(h * scale + 0.5))))
            im.load()
            rgb = _to_rgb_array(im)

    rgb = _apply_orientation(rgb, orientation)
    ow, oh = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    rgb = _fit(rgb, work_side)
    rgb = np.ascontiguousarray(rgb)
    return Decoded(rgb, ow, oh, fmt, hashlib.sha256(data).hexdigest(), _digest(rgb),
                   data if keep_source else None)


def _fast_jpeg(data: bytes, im: Image.Image, work_side: int) -> np.ndarray | None:
    """An RGB or greyscale JPEG decoded by libjpeg-turbo (simplejpeg) at the smallest of the scales 1/8,
    1/4, 1/2 and 1 that still covers the working size: the pixels Pillow's draft mode gives (the same
    library and scales), in less than half the time. The finer M/8 scales are not used: their working
    images differ enough from an area resize to move retrieval and clustering scores (measured 0.4-3
    points lower). None for anything simplejpeg will not decode cleanly (CMYK, damaged or truncated
    data): Pillow then decodes it, or gives the reason."""
    if simplejpeg is None or im.mode not in ("RGB", "L"):
        return None
    w, h = im.size
    f = next((f for f in (8, 4, 2) if max(w, h) / f >= work_side), 1)
    try:
        return simplejpeg.decode_jpeg(
            data, colorspace="RGB", min_width=math.ceil(w / f), min_height=math.ceil(h / f), strict=True
        )
    except Exception:  # strict: any libjpeg warning (corrupt data, truncation) sends the file to Pillow
        return None


def decode_luma_pillow(data: bytes, *, min_side: int = 64, max_pixels: int = config.MAX_PIXELS) -> np.ndarray:
    """`quick.decode_luma` for what it leaves to Pillow (any format, any mode): the oriented luma, a
    JPEG's decoded in draft mode at the smallest DCT scale that keeps the short side >= `min_side`."""
    with _decode_errors() as seen:
        im, fmt, w, h = _open(data, max_pixels, seen)
        if fmt == "JPEG":
            s = next((s for s in (8, 4, 2) if min(w, h) // s >= min_side), 1)
            im.draft("L", (w // s, h // s) if s > 1 else None)
        im.load()
        orientation = _exif_orientation(im)
        gray = _luma(im)
    return _apply_orientation(gray, orientation)


def _luma(im: Image.Image) -> np.ndarray:
    """Luma of a loaded image without building the RGB image where Pillow can do it directly."""
    mode = im.mode
    if mode == "P" and "transparency" in im.info or mode in ("PA", "RGBa", "La"):
        im, mode = im.convert("RGBA"), "RGBA"
    if mode == "L":
        return np.asarray(im)
    if mode in ("RGB", "1", "P"):
        return np.asarray(im.convert("L"))
    if mode in ("RGBA", "LA"):  # over white, on luma: a*L + (1-a)*255 equals the RGB composite's luma
        lum, alpha = im.convert("LA").split()
        white = Image.new("L", im.size, 255)
        white.paste(lum, (0, 0), alpha)
        return np.asarray(white)
    # CMYK, YCbCr, LAB, 16-bit, float...: the same rules as the working image
    return np.asarray(Image.fromarray(np.ascontiguousarray(_to_rgb_array(im))).convert("L"))


def full_pixel_digest(data: bytes, *, max_pixels: int = config.MAX_PIXELS) -> tuple[str, int, int]:
    """sha256 of the full-resolution pixels (EXIF orientation applied) and their shape; width, height.

    Equal for pixel-identical files whatever their format (JPEG, lossless PNG/WebP, BMP...), and
    different as soon as one pixel or the transparency differs: opaque pictures are hashed as RGB,
    others as RGBA. Decodes at full size: use it to confirm candidates, not on every file. JPEGs decode
    with libjpeg-turbo through simplejpeg (the same pixels as Pillow's decoder, in half the time).
    """
    with _decode_errors() as seen:
        im, fmt, w, h = _open(data, max_pixels, seen)
        orientation = _exif_orientation(im)
        tag, px = "", _fast_jpeg(data, im, max(w, h)) if fmt == "JPEG" else None
        if px is None:
            im.load()
            px = np.asarray(im) if im.mode in _HIGH_DEPTH else None
            if px is not None and (px.min() < 0 or px.max() > 255 or not np.array_equal(px, np.round(px))):
                tag = im.mode  # values 8 bits cannot hold: hash them as they are
            else:
                try:
                    px = np.asarray(im.convert("RGBA"))
                    if px[..., 3].min() == 255:
                        px = px[..., :3]
                except ValueError:  # modes Pillow cannot convert to RGBA (LAB, HSV, I;16): opaque working pixels
                    px = _to_rgb_array(im)
    px = np.ascontiguousarray(_apply_orientation(px, orientation))
    return _digest(px, tag), px.shape[1], px.shape[0]


def _digest(px: np.ndarray, tag: str = "") -> str:
    """sha256 of a C-contiguous array's bytes then its shape (and tag), without copying the pixels."""
    h = hashlib.sha256(memoryview(px).cast("B"))
    h.update(f"{px.shape}{tag}".encode())
    return h.hexdigest()


_HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _open(data: bytes, max_pixels: int, seen: dict) -> tuple[Image.Image, str, int, int]:
    """Open lazily (header only) and refuse empty images and decompression bombs."""
    if not data:
        raise BadInput("empty file (0 bytes)")
    if data[4:8] == b"ftyp":  # an ISO media file: HEIC, AVIF (or a video, refused below)
        register_heif()
    im = Image.open(io.BytesIO(data))
    fmt = seen["format"] = im.format or "unknown"
    w, h = im.size
    if w <= 0 or h <= 0:
        raise BadInput(f"{fmt} image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise BadInput(
            f"{fmt} image is {w}x{h} = {w * h / 1e6:.0f} MP, above the {max_pixels / 1e6:.0f} MP limit "
            "(decompression-bomb guard; raise LOOKALIKE_MAX_PIXELS to allow it)"
        )
    return im, fmt, w, h


@contextmanager
def _decode_errors():
    """Turn every decoder failure into `BadInput` with a one-line reason."""
    seen = {"format": "image"}  # filled in by `_open`, for the reason
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield seen
    except BadInput:
        raise
    except Image.UnidentifiedImageError:
        raise BadInput("not an image Pillow can identify (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError, struct_error()) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "truncated" in msg:
            msg = "image file is truncated"
        raise BadInput(f"cannot decode {seen['format']}: {msg}") from None


def struct_error():
    import struct

    return struct.error


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:
        return 1  # broken EXIF never costs the picture


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in _HIGH_DEPTH:
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
    cv2 = opencv()
    return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
