"""Thumbnails as data URIs / JPEG bytes, made with the safe decoder (a bad file gives none)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from lookalike.errors import BadInput
from lookalike.imageio import decode_bytes, read_bytes


def thumbnail_jpeg(source: str | bytes, side: int = 160, *, box: tuple | None = None) -> bytes | None:
    """JPEG thumbnail (long side `side`); `box` (x0, y0, x1, y1 in working-image pixels) crops to it
    first, with a margin of a third of its size (a face and a little of its surroundings)."""
    try:
        data = source if isinstance(source, bytes) else read_bytes(source)
        img = decode_bytes(data) if box else decode_bytes(data, work_side=side)
    except BadInput:
        return None
    pic = Image.fromarray(img.rgb)
    if box:
        x0, y0, x1, y1 = box
        m = max(x1 - x0, y1 - y0) / 3
        pic = pic.crop((int(max(0, x0 - m)), int(max(0, y0 - m)), int(min(pic.width, x1 + m)), int(min(pic.height, y1 + m))))
        pic.thumbnail((side, side))
    buf = io.BytesIO()
    pic.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def data_uri(source: str | bytes, side: int = 160, *, box: tuple | None = None) -> str | None:
    jpg = thumbnail_jpeg(source, side, box=box)
    return "data:image/jpeg;base64," + base64.b64encode(jpg).decode() if jpg else None
