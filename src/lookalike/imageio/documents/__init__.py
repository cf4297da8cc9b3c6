"""Pull every picture out of Word, Excel, PowerPoint and PDF documents, safely.

`extract_pictures(path)` returns a `DocResult`: the pictures (bytes Pillow can decode), the ones that
were found but could not be used (with a one-line reason) and, for a document that cannot be read
at all, `error`. It never raises for a bad document, so the rest of a folder goes on.

Image ids follow the data contract (DESIGN.md, `docs check`):

* OOXML (.docx/.xlsx/.pptx, macro-enabled and template variants): the zip part name, e.g.
  ``word/media/image3.jpeg``. Every part under ``word|xl|ppt/media/`` whose bytes are an image (by
  magic bytes, not by extension) counts; audio/video parts do not; embedded OLE packages are not
  opened. ``Picture.sha256`` is of the part bytes. Locations come from the ``.rels`` files: the
  paragraph number (or header/footer) in Word, ``Sheet!B3`` (drawing anchor), ``Sheet!B3 (in cell)``,
  ``Sheet header/footer`` or ``Sheet background`` in Excel, ``slide N`` in PowerPoint.
  Only zip parts are read: macros never run.
* PDF: ``p{page}-{n}``, 1-based page and 1-based position in the order pypdf's
  ``PdfReader(doc).pages[page-1].images`` lists them. ``Picture.sha256`` is of the raw, still-encoded
  stream. A plain ``/DCTDecode`` stream is the JPEG file itself and is passed through as is; other
  images are decoded by pypdf (JPX, CCITT, LZW, ASCII85, run-length, Flate, CMYK, greyscale...).
* EMF/WMF (and SVG) vector pictures are rendered to PNG with LibreOffice (``soffice --headless``) or
  Inkscape when one is installed (ImageMagick is not used: it has no EMF reader on Linux). Without
  one they are listed in `skipped` with a reason; their bytes stay in `DocResult.vectors` and their
  digest in `DocResult.digests`, so byte-identical vector pictures can still be paired by sha256.
  `convert_vectors(results)` renders the vector pictures of many documents in one converter run.
* Legacy binary .doc/.xls/.ppt files are NOT supported: they get the one-line reason "legacy binary
  Office format ... save it as .docx/.xlsx/.pptx". Signature scanning is unreliable there (pictures
  are split across 512-byte sectors of the compound file), so we do not guess.

Safety: a file size limit; zip limits (member count, per-member and total uncompressed size,
compression ratio) checked on the declared sizes, which zipfile also enforces while reading;
password-protected OOXML (an OLE compound file with an ``EncryptedPackage`` stream) and PDFs are
refused with a reason; XML is parsed with defusedxml (no DTD, no entities: a billion-laughs part
refuses the document); part names with absolute paths, ``..``, backslashes or drive letters are
ignored and listed as skipped; nothing is ever written to disk under a part name (vector
conversion uses numbered temporary files). PDFs have a page limit and a time limit (checked between
images; results so far are kept and `error` says where it stopped) and a pixel limit per image,
checked from the image dictionary before anything is decoded. The type of a file is taken from its
content, not its extension (a PDF named .docx is read as a PDF).
"""


from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from lookalike.imageio.documents.common import (
    _CFB_MAGIC, _ENCRYPTED_PACKAGE, DEFAULT_LIMITS, DOCUMENT_EXTENSIONS, LEGACY_EXTENSIONS, OOXML_EXTENSIONS,
    PDF_EXTENSIONS, RASTER_KINDS, VECTOR_KINDS, DocResult, Limits, Picture, _one_line, _Refuse, log, sniff_image,
)
from lookalike.imageio.documents.ooxml import _extract_ooxml
from lookalike.imageio.documents.pdf import _extract_pdf
from lookalike.imageio.documents.vectors import VECTOR_BATCH, convert_vectors, vector_converter

__all__ = ["DEFAULT_LIMITS", "DOCUMENT_EXTENSIONS", "LEGACY_EXTENSIONS", "OOXML_EXTENSIONS", "PDF_EXTENSIONS",
           "RASTER_KINDS", "VECTOR_KINDS",
           "VECTOR_BATCH", "DocResult", "Limits", "Picture", "convert_vectors", "extract_pictures",
           "iter_documents", "sniff_image", "vector_converter"]


def extract_pictures(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS, convert: bool = True) -> DocResult:
    """Every picture in one document. Never raises for a bad document: see `DocResult.error`.

    `convert=False` leaves vector pictures in `skipped` (bytes kept in `vectors`) so that
    `convert_vectors` can render many documents in one converter run.
    """
    start = time.monotonic()
    res = DocResult(doc=str(path))
    try:
        data = _read_file(Path(path), limits)
        kind = _container_kind(data, Path(path).suffix.lower())
        if kind == "pdf":
            _extract_pdf(data, res, limits, start)
        else:
            _extract_ooxml(data, res, limits)
    except _Refuse as e:
        res.error = str(e)
    except MemoryError:
        res.error = "out of memory while reading the document: raise the limits only for trusted files"
    except Exception as e:  # a bug or a library failure must not stop a folder run
        log.debug("extract_pictures(%s) failed", path, exc_info=True)
        res.error = f"cannot read document: {type(e).__name__}: {_one_line(e)}"
    if convert and res.vectors:
        convert_vectors([res], limits=limits)
    res.seconds = time.monotonic() - start
    return res


def iter_documents(paths: Iterable[str | os.PathLike], *, include_legacy: bool = True) -> Iterator[Path]:
    """Documents under `paths`, sorted per folder, each once.

    Folders are walked without following symbolic links (no loops); files given explicitly are
    yielded whatever their extension. Legacy .doc/.xls/.ppt are yielded too by default, so that
    `extract_pictures` reports them as unsupported instead of ignoring them silently.
    """
    wanted = DOCUMENT_EXTENSIONS | (LEGACY_EXTENSIONS if include_legacy else frozenset())
    seen: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    f = Path(root) / name
                    if f.suffix.lower() in wanted and not name.startswith("~$") and f.is_file():
                        key = f.resolve()
                        if key not in seen:
                            seen.add(key)
                            yield f
        elif p.exists():
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                yield p



def _read_file(p: Path, limits: Limits) -> bytes:
    try:
        size = p.stat().st_size
        if size == 0:
            raise _Refuse("empty file (0 bytes)")
        if size > limits.max_file_bytes:
            raise _Refuse(f"file is {size / 2**20:.0f} MiB, above the {limits.max_file_bytes / 2**20:.0f} MiB limit")
        return p.read_bytes()
    except OSError as e:
        raise _Refuse(f"cannot read file: {e.strerror or e}") from None


def _container_kind(data: bytes, suffix: str) -> str:
    """'pdf' or 'zip' from the content; anything else is refused with a reason."""
    if data[:1024].lstrip().startswith(b"%PDF") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "zip"
    if data.startswith(_CFB_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            raise _Refuse("password-protected (encrypted) Office document: save a copy without a password to check its pictures")
        raise _Refuse("legacy binary Office format (.doc/.xls/.ppt) is not supported: save it as .docx/.xlsx/.pptx "
                      "(e.g. soffice --headless --convert-to docx FILE) and check that copy")
    if suffix in LEGACY_EXTENSIONS:  # e.g. a .doc that is really RTF or HTML
        raise _Refuse(f"not a supported document (named {suffix}, a legacy Office type): save it as .docx/.xlsx/.pptx")
    what = sniff_image(data)
    if what:
        raise _Refuse(f"this is a {what.upper()} image, not a document: index it as an image instead")
    if suffix in OOXML_EXTENSIONS:
        raise _Refuse(f"not an Office Open XML file (no ZIP signature) although named {suffix}: damaged or wrong extension")
    raise _Refuse("not a PDF or Office Open XML document (unknown content)")


