"""Uploaded files: checked from their bytes (never their names), stored only inside the index.

An image upload is decoded by the engine's safe decoder (empty, truncated, corrupt, decompression
bombs: refused with its reason) and then checked for a second format hidden in it (a polyglot: a
script, web page, PDF or ZIP archive riding along in or after the picture). The bytes are stored
under `INDEX/uploads/ab/<sha256>.<format>`, written to a temporary file beside it and renamed into
place, so no reader ever sees half a file. The client's name is kept as a label in the service
database: it never becomes part of a path.
"""

from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import unicodedata
import zipfile
from pathlib import Path

from lookalike.errors import BadInput
from lookalike.imageio import Decoded, decode_bytes

UPLOADS = "uploads"
MAX_NAME = 255
_EXT = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif", "HEIF": "heic",
        "AVIF": "avif", "MPO": "jpg", "ICO": "ico", "PPM": "ppm", "TGA": "tga"}
# Markers of another format inside an image: scripts and pages a browser might run, documents, archives.
_FOREIGN = [(re.compile(rb"<script|<\?php|<html|<!doctype html|<svg|<iframe", re.I), "HTML or script"),
            (re.compile(rb"%PDF-"), "PDF")]
_TRAILING_OK = 64  # padding some encoders leave after the end of the image


def check_name(name: str | None, fallback: str) -> str:
    """A label: any printable text up to 255 characters (paths are fine: they are never used as paths)."""
    name = (name or "").strip() or fallback
    if len(name) > MAX_NAME:
        raise BadInput(f"name is {len(name)} characters long, above the {MAX_NAME} limit")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name):
        raise BadInput("name contains control characters")
    return name


def check_image(data: bytes) -> Decoded:
    """Decode (with every guard of the engine's decoder) and refuse polyglots."""
    img = decode_bytes(data)
    for pattern, what in _FOREIGN:
        if pattern.search(data):
            raise BadInput(f"{img.format} file also contains {what} content (a polyglot file): refused")
    end = image_end(data, img.format)
    if end is not None and len(data) - end > _TRAILING_OK:
        tail = data[end:]
        what = "a ZIP archive" if b"PK\x03\x04" in tail else f"{len(tail)} bytes of other data"
        raise BadInput(f"{img.format} image is followed by {what} after its end (a polyglot file): refused")
    return img


def image_end(data: bytes, fmt: str) -> int | None:
    """Offset just past the end of the image stream, for formats whose end is marked; None if unknown."""
    if fmt == "JPEG":  # (MPO, multi-picture JPEG from stereo cameras and phones, holds more JPEGs after the first)
        return _jpeg_end(data)
    if fmt == "PNG":
        i = data.rfind(b"IEND")
        return i + 8 if i >= 0 else None
    if fmt == "GIF":
        return None  # the trailer byte (0x3B) is too common to find reliably without a full parse
    return None


def _jpeg_end(data: bytes) -> int | None:
    """Walk the marker segments to the first scan, then find the EOI marker (in entropy-coded data a
    0xFF byte is always followed by 0x00 or a restart marker, so FF D9 there is the real end)."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker == 0xDA:  # start of scan
            j = data.find(b"\xff\xd9", i + 2 + length)
            return j + 2 if j >= 0 else None
        i += 2 + length
    return None


def store_upload(index_dir: Path, data: bytes, img: Decoded) -> Path:
    """Write the bytes under the index's uploads folder atomically; returns the final path (absolute)."""
    folder = index_dir / UPLOADS / img.sha256[:2]
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{img.sha256}.{_EXT.get(img.format, 'img')}"
    if final.exists():
        return final
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def is_upload(index_dir: Path, path: str) -> bool:
    p = Path(path)
    return p.is_absolute() and (index_dir / UPLOADS) in p.parents


# -- documents -------------------------------------------------------------------------------------

_OOXML = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}


def document_kind(data: bytes) -> str:
    """docx / xlsx / pptx / pdf from the bytes; BadInput for anything else."""
    if not data:
        raise BadInput("empty file (0 bytes)")
    if data[:5] == b"%PDF-":
        return "pdf"
    if data[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile as e:
            raise BadInput(f"damaged ZIP container: {e}") from None
        if "[Content_Types].xml" in names:
            for prefix, kind in _OOXML.items():
                if any(n.startswith(prefix) for n in names):
                    return kind
        raise BadInput("a ZIP archive, but not a Word, Excel or PowerPoint document")
    raise BadInput("not a .docx, .xlsx, .pptx or .pdf document (checked from its content)")
