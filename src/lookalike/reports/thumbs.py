"""Thumbnails as data URIs / JPEG bytes, made with the safe decoder (a bad file gives none)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from lookalike.errors import BadInput
from lookalike.imageio import decode_bytes, read_bytes


def thumbnail_jpeg(source: str | bytes, side: int = 160) -> bytes | None:
    try:
        img = decode_bytes(source if isinstance(source, bytes) else read_bytes(source), work_side=side)
    except BadInput:
        return None
    buf = io.BytesIO()
    Image.fromarray(img.rgb).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def data_uri(source: str | bytes, side: int = 160) -> str | None:
    jpg = thumbnail_jpeg(source, side)
    return "data:image/jpeg;base64," + base64.b64encode(jpg).decode() if jpg else None
