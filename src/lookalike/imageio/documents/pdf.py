"""PDF: every image XObject, passed through or decoded by pypdf, within page, pixel and time limits."""

from __future__ import annotations

import hashlib
import io
import re
import time
import warnings

from lookalike.imageio.documents.common import (
    RASTER_KINDS, DocResult, Limits, _add_picture, _one_line, _Refuse, sniff_image,
)


def _extract_pdf(data: bytes, res: DocResult, limits: Limits, start: float) -> None:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            encrypted = reader.is_encrypted
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as e:
        raise _Refuse(f"damaged PDF: {_one_line(e)}") from None
    if encrypted:
        try:
            ok = reader.decrypt("")  # owner-password-only PDFs open with the empty user password
        except DependencyError:
            raise _Refuse("encrypted PDF (AES): install the 'cryptography' package or save an unencrypted copy") from None
        except Exception as e:
            raise _Refuse(f"encrypted PDF that cannot be opened: {_one_line(e)}") from None
        if not ok:
            raise _Refuse("password-protected PDF: save a copy without a password to check its pictures")
    try:
        n_pages = len(reader.pages)
    except (PdfReadError, FileNotDecryptedError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise _Refuse(f"damaged PDF (page tree): {_one_line(e)}") from None
    problems: list[str] = []
    if n_pages > limits.max_pages:
        problems.append(f"only the first {limits.max_pages} of {n_pages} pages were read (page limit)")
    for page_no in range(1, min(n_pages, limits.max_pages) + 1):
        try:
            page = reader.pages[page_no - 1]
            _skip_inline_scan_if_none(page)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keys = page.images.keys()
        except Exception as e:
            problems.append(f"page {page_no} unreadable: {_one_line(e)}")
            continue
        for n, key in enumerate(keys, 1):
            if time.monotonic() - start > limits.max_seconds:
                problems.insert(0, f"stopped at page {page_no} of {n_pages} after {limits.max_seconds:.0f} s (time limit)")
                res.error = "; ".join(problems)
                return
            _pdf_image(page, key, f"p{page_no}-{n}", f"page {page_no}", res, limits)
    if problems:
        res.error = "; ".join(problems)


_INLINE_IMAGE = re.compile(rb"(?:^|\s)BI\s")


def _skip_inline_scan_if_none(page) -> None:
    """Spare pypdf its slow token-by-token parse of the page content when it has no inline image.

    pypdf lists inline images after the XObject images and finds them by parsing the whole
    content stream (90 % of the time on text-heavy PDFs). Without a ``BI`` operator there are
    none, so an empty cache gives the same list. Falls back to pypdf's way if its internals change.
    """
    if getattr(page, "_content_stream_images", "absent") is not None:
        return
    try:
        contents = page.get_contents()
        data = contents.get_data() if contents is not None else b""
    except Exception:
        return
    if not _INLINE_IMAGE.search(data):
        page._content_stream_images = {}


def _resolve_xobject(page, key):
    """The image XObject behind a pypdf image key (a name, or a path of names through forms)."""
    if isinstance(key, str) and key.startswith("~"):
        return None  # inline image
    names = [key] if isinstance(key, str) else list(key)
    obj = page
    for name in names:
        obj = obj["/Resources"].get_object()["/XObject"].get_object()[name].get_object()
    return obj


def _pdf_image(page, key, image_id: str, location: str, res: DocResult, limits: Limits) -> None:
    xobj, raw = None, None
    try:
        xobj = _resolve_xobject(page, key)
        if xobj is not None:
            w, h = int(xobj.get("/Width", 0)), int(xobj.get("/Height", 0))
            if w * h > limits.max_pixels:
                raw = getattr(xobj, "_data", b"") or b""
                res.digests[image_id] = hashlib.sha256(raw).hexdigest()
                res.locations[image_id] = location
                res.skipped.append((image_id, f"{w}x{h} image, above the {limits.max_pixels / 1e6:.0f} MP limit"))
                return
            raw = getattr(xobj, "_data", None)  # raw, still-encoded stream bytes
    except Exception:
        xobj = None
    filters = xobj.get("/Filter") if xobj is not None else None
    filters = [filters] if isinstance(filters, str) else list(filters or [])
    # A lone /DCTDecode stream is a JPEG file: pass it through (fast, and robust to odd colour spaces).
    if raw and filters == ["/DCTDecode"] and "/Decode" not in xobj and raw.startswith(b"\xff\xd8"):
        _add_picture(res, image_id, raw, location, "jpeg", hashlib.sha256(raw).hexdigest())
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            blob, img = _pdf_decode(page, key, xobj)
        kind = sniff_image(blob)
        if kind not in RASTER_KINDS:  # re-encode whatever pypdf produced into a PNG
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
            blob, kind = buf.getvalue(), "png"
        sha = hashlib.sha256(raw if raw is not None else blob).hexdigest()
        _add_picture(res, image_id, blob, location, kind, sha)
    except Exception as e:
        kind = sniff_image(raw or b"")
        sha = hashlib.sha256(raw or b"").hexdigest()
        if kind in RASTER_KINDS:  # e.g. JPX with a colour space pypdf cannot handle: the stream is a JP2 file
            _add_picture(res, image_id, raw, location, kind, sha)
        else:
            res.digests[image_id] = sha
            res.locations[image_id] = location
            res.skipped.append((image_id, f"cannot decode PDF image ({'/'.join(f.lstrip('/') for f in filters) or 'raw'}): {_one_line(e)}"))


def _pdf_decode(page, key, xobj):
    """(image file bytes, PIL image) for one PDF image, decoded by pypdf.

    pypdf saves PNGs at zlib level 6, which costs seconds on a large scan; its internal
    `_xobj_to_image` takes Pillow save options, so ask for level 1 and fall back to the
    public API if that internal ever changes.
    """
    if xobj is not None:
        try:
            from pypdf.generic._image_xobject import _xobj_to_image

            _, blob, img = _xobj_to_image(xobj, {"compress_level": 1})
            return blob, img
        except (ImportError, TypeError):
            pass
    imf = page.images[key]
    return imf.data, imf.image


