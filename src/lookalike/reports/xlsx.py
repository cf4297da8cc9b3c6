"""Excel report of look-alike pictures found in documents (`lookalike docs check -o report.xlsx`).

Inputs are plain data, so any caller can build them:

* ``pairs``: a list of dicts (or objects with the same attributes) with keys
  ``doc_a, image_a, doc_b, image_b, score`` (a similarity in [0, 1]) and optionally ``method``
  (e.g. "sha256", "phash", "cnn") and ``location_a`` / ``location_b``.
* ``pictures``: a mapping ``(doc, image_id) -> picture``, where a picture is a
  `lookalike.imageio.documents.Picture` (its ``data`` and ``location`` are used), raw image bytes,
  or None. Pictures missing from the mapping get an empty thumbnail cell.
* ``documents`` (optional): the `DocResult`s of the run (or dicts with ``doc``, ``pictures``,
  ``skipped``, ``error``, ``seconds``). They give the "Documents" sheet its picture/skip/error
  columns; without them the sheet is built from ``pictures`` and ``pairs`` alone.

The workbook has a "Pairs" sheet (one row per pair, best score first, both thumbnails in the row)
and a "Documents" sheet (one row per document: pictures, skipped, copies found within it and
across documents, errors). It opens in Excel, LibreOffice and openpyxl.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from openpyxl import Workbook
from openpyxl.drawing.image import Image as XLImage
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from PIL import Image

from lookalike.errors import BadInput
from lookalike.imageio import decode_bytes

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="305496")
_WRAP = Alignment(wrap_text=True, vertical="top")


def write_xlsx_report(
    path: str | os.PathLike,
    pairs: Iterable[Mapping[str, Any] | Any],
    pictures: Mapping[tuple[str, str], Any],
    *,
    title: str = "lookalike: pictures that look alike in documents",
    documents: Iterable[Any] | None = None,
    thumb_px: int = 120,
    max_thumbnail_rows: int = 5000,
) -> None:
    """Write the report to `path` (.xlsx). See the module docstring for the input types.

    Rows past `max_thumbnail_rows` get no thumbnails, so a huge run still writes a usable file.
    """
    rows = sorted((_pair(p) for p in pairs), key=lambda p: -p["score"])
    wb = Workbook()
    ws = wb.active
    ws.title = "Pairs"
    wb.properties.title = title
    _write_pairs(ws, rows, pictures, title=title, thumb_px=thumb_px, max_thumbnail_rows=max_thumbnail_rows)
    _write_documents(wb.create_sheet("Documents"), rows, pictures, documents)
    wb.save(os.fspath(path))


def _pair(p: Mapping[str, Any] | Any) -> dict[str, Any]:
    get = p.get if isinstance(p, Mapping) else lambda k, d=None: getattr(p, k, d)
    out = {k: get(k) for k in ("doc_a", "image_a", "doc_b", "image_b")}
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise ValueError(f"pair {p!r} lacks {', '.join(missing)}: pairs need doc_a, image_a, doc_b, image_b, score")
    out = {k: str(v) for k, v in out.items()}
    out["score"] = float(get("score", 0.0) or 0.0)
    out["method"] = str(get("method", "") or "")
    out["location_a"] = get("location_a")
    out["location_b"] = get("location_b")
    return out


def _write_pairs(ws, rows, pictures, *, title: str, thumb_px: int, max_thumbnail_rows: int) -> None:
    headers = ["#", "picture A", "picture B", "score", "method", "document A", "image A", "location A",
               "document B", "image B", "location B"]
    widths = [5, thumb_px / 7 + 2, thumb_px / 7 + 2, 9, 10, 32, 24, 18, 32, 24, 18]
    ws["A1"] = title
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"{len(rows)} pairs, best score first. Score: similarity of the two pictures (100 % = identical)."
    _header(ws, 3, headers, widths)
    thumbs: dict[tuple[str, str], bytes | None] = {}  # one thumbnail per picture, reused across rows
    for n, r in enumerate(rows, 1):
        row = 3 + n
        values = [n, None, None, r["score"], r["method"],
                  r["doc_a"], r["image_a"], r["location_a"] or _location(pictures.get((r["doc_a"], r["image_a"]))),
                  r["doc_b"], r["image_b"], r["location_b"] or _location(pictures.get((r["doc_b"], r["image_b"])))]
        for col, v in enumerate(values, 1):
            cell = ws.cell(row=row, column=col, value=v)
            cell.alignment = _WRAP
        ws.cell(row=row, column=4).number_format = "0.0%"
        if n <= max_thumbnail_rows:
            placed = False
            for col, key in ((2, (r["doc_a"], r["image_a"])), (3, (r["doc_b"], r["image_b"]))):
                if key not in thumbs:
                    thumbs[key] = _thumbnail(pictures.get(key), thumb_px)
                if thumbs[key]:
                    img = XLImage(io.BytesIO(thumbs[key]))
                    img.anchor = f"{get_column_letter(col)}{row}"
                    ws.add_image(img)
                    placed = True
                else:
                    ws.cell(row=row, column=col, value="(no preview)")
            if placed:
                ws.row_dimensions[row].height = thumb_px * 0.75 + 6  # points; 1 px = 0.75 pt
    ws.freeze_panes = "B4"
    _print_setup(ws, "3:3")
    if rows:
        ws.auto_filter.ref = f"A3:{get_column_letter(len(headers))}{3 + len(rows)}"


def _write_documents(ws, rows, pictures, documents) -> None:
    headers = ["document", "pictures", "skipped", "copies within", "copies across documents", "seconds",
               "error", "skipped pictures (reason)"]
    widths = [50, 10, 10, 13, 14, 9, 50, 60]
    _header(ws, 1, headers, widths)
    ws.row_dimensions[1].height = 30  # two lines: "copies across / documents"
    within, across = Counter(), Counter()
    for r in rows:
        if r["doc_a"] == r["doc_b"]:
            within[r["doc_a"]] += 1
        else:
            across[r["doc_a"]] += 1
            across[r["doc_b"]] += 1
    info: dict[str, dict[str, Any]] = {}
    for d in documents or []:
        doc = str(_get(d, "doc"))
        pics, skipped = _get(d, "pictures", []), _get(d, "skipped", [])
        info[doc] = {
            "pictures": pics if isinstance(pics, int) else len(pics),
            "skipped": skipped if isinstance(skipped, int) else len(skipped),
            "reasons": "" if isinstance(skipped, int) else "; ".join(f"{s[0]}: {s[1]}" for s in skipped[:20]),
            "error": _get(d, "error") or "",
            "seconds": _get(d, "seconds"),
        }
    counted = Counter(doc for doc, _ in pictures)
    for doc in list(counted) + [r[k] for r in rows for k in ("doc_a", "doc_b")]:
        info.setdefault(doc, {"pictures": counted.get(doc, 0), "skipped": None, "reasons": "", "error": "", "seconds": None})
    for row, doc in enumerate(sorted(info), 2):
        i = info[doc]
        seconds = round(i["seconds"], 2) if isinstance(i["seconds"], (int, float)) else None
        values = [doc, i["pictures"], i["skipped"], within[doc], across[doc], seconds, i["error"], i["reasons"]]
        for col, v in enumerate(values, 1):
            ws.cell(row=row, column=col, value=v).alignment = _WRAP
        # readers do not grow rows to fit wrapped text: give long reasons the lines they need
        lines = max(-(-len(str(v or "")) // int(w)) for v, w in zip(values, widths))
        if lines > 1:
            ws.row_dimensions[row].height = 15 * min(lines, 10)
    ws.freeze_panes = "B2"
    _print_setup(ws, "1:1")
    if info:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{1 + len(info)}"


def _header(ws, row: int, headers: list[str], widths: list[float]) -> None:
    for col, (h, w) in enumerate(zip(headers, widths), 1):
        c = ws.cell(row=row, column=col, value=h)
        c.font, c.fill, c.alignment = _HEADER_FONT, _HEADER_FILL, _WRAP
        ws.column_dimensions[get_column_letter(col)].width = w


def _print_setup(ws, title_rows: str) -> None:
    """Printed (or converted to PDF): landscape, all columns on one page width, header on every page."""
    ws.print_title_rows = title_rows
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


def _location(picture: Any) -> str:
    return str(getattr(picture, "location", "") or "")


def _thumbnail(picture: Any, side: int) -> bytes | None:
    """A small PNG of the picture, or None when it cannot be decoded (the safe decoder decides)."""
    data = picture if isinstance(picture, (bytes, bytearray)) else getattr(picture, "data", None)
    if not data:
        return None
    try:
        rgb = decode_bytes(bytes(data), work_side=max(side, 64)).rgb
    except BadInput:
        return None
    im = Image.fromarray(np.ascontiguousarray(rgb))
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
