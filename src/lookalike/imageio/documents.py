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

import hashlib
import io
import logging
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import time
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from lookalike import config

OOXML_EXTENSIONS = frozenset(
    ".docx .docm .dotx .dotm .xlsx .xlsm .xltx .xltm .pptx .pptm .potx .potm .ppsx .ppsm".split()
)
PDF_EXTENSIONS = frozenset({".pdf"})
LEGACY_EXTENSIONS = frozenset(".doc .dot .xls .xlt .ppt .pot .pps".split())
DOCUMENT_EXTENSIONS = OOXML_EXTENSIONS | PDF_EXTENSIONS

RASTER_KINDS = frozenset({"png", "jpeg", "gif", "bmp", "tiff", "webp", "jp2", "ico"})  # Pillow decodes these
VECTOR_KINDS = frozenset({"emf", "wmf", "emz", "wmz", "svg"})

_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_MEDIA_RE = re.compile(r"^(word|xl|ppt)/media/[^/]+$")
_R_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_OFFICE_DOC = "/officeDocument"  # suffix of the main-part relationship type

log = logging.getLogger(__name__)


@dataclass
class Limits:
    """Safety limits; the defaults are far above any real document."""

    max_file_bytes: int = config.MAX_FILE_BYTES
    max_members: int = 20_000  # zip entries
    max_member_bytes: int = 256 * 2**20  # uncompressed size of one zip entry
    max_total_bytes: int = 1024 * 2**20  # uncompressed size of all entries together
    max_ratio: float = 200.0  # compression ratio, for entries above ratio_min_bytes
    ratio_min_bytes: int = 4 * 2**20
    max_pages: int = 2000  # PDF pages read
    max_seconds: float = 120.0  # per document (PDF decoding; checked between images)
    max_pixels: int = config.MAX_PIXELS  # per PDF image, checked before decoding
    convert_timeout: float = 180.0  # one vector-conversion run (VECTOR_BATCH pictures at most)


DEFAULT_LIMITS = Limits()


@dataclass
class Picture:
    image_id: str  # zip part name, or p{page}-{n} in a PDF
    data: bytes  # an image file Pillow can decode (PNG for rendered vector pictures)
    location: str  # where it sits: "paragraph 4", "Sheet1!B3", "slide 2", "page 1"
    kind: str  # format of `data`: png, jpeg, gif, bmp, tiff, webp, jp2, ico
    sha256: str = ""  # of the original bytes (OOXML part / raw PDF stream), for byte-identity
    source_kind: str = ""  # format in the document (emf for a rendered EMF, else == kind)


@dataclass
class DocResult:
    doc: str
    pictures: list[Picture] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image_id, one-line reason)
    error: str | None = None  # the document (or part of it) could not be read: one-line reason
    digests: dict[str, str] = field(default_factory=dict)  # image_id -> sha256, every picture found
    locations: dict[str, str] = field(default_factory=dict)  # image_id -> location, every picture found
    vectors: dict[str, bytes] = field(default_factory=dict)  # image_id -> EMF/WMF/SVG bytes
    seconds: float = 0.0  # time spent on this document

    @property
    def found(self) -> int:
        """Pictures found, usable or not."""
        return len(self.pictures) + len(self.skipped)


class _Refuse(Exception):
    """The whole document is refused; the message is the one-line reason."""


# ---------------------------------------------------------------- public entry points


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


def sniff_image(data: bytes) -> str | None:
    """Image format from the magic bytes, or None for anything else (audio, video, OLE...)."""
    head = data[:64]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(data) > 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "jp2"
    if head[:4] == b"\x01\x00\x00\x00" and head[40:44] == b" EMF":
        return "emf"
    if head[:4] == b"\xd7\xcd\xc6\x9a" or head[:6] in (b"\x01\x00\x09\x00\x00\x03", b"\x02\x00\x09\x00\x00\x03"):
        return "wmf"
    if head[:4] == b"\x00\x00\x01\x00" and len(data) > 22:
        return "ico"
    if head[:4] == b"II\xbc\x01":
        return "wdp"  # JPEG XR / HD Photo: Office writes it, Pillow cannot read it
    if head.startswith(b"\x1f\x8b"):
        return "gzip"  # EMZ/WMZ are gzip-compressed EMF/WMF; decided by the part name
    text = data[:1024].lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "svg"
    return None


# ---------------------------------------------------------------- files and containers


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


# ---------------------------------------------------------------- OOXML


def _unsafe_name(name: str) -> bool:
    return (
        name.startswith(("/", "\\"))
        or "\\" in name
        or "\x00" in name
        or re.match(r"^[A-Za-z]:", name) is not None
        or ".." in name.split("/")
    )


class _Package:
    """Read-only view of an OOXML zip: size-checked parts, relationships, safe XML."""

    def __init__(self, data: bytes, limits: Limits):
        self.limits = limits
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as e:
            raise _Refuse(f"damaged or truncated ZIP package: {_one_line(e)}") from None
        if len(infos) > limits.max_members:
            raise _Refuse(f"ZIP has {len(infos)} entries, above the {limits.max_members} limit (zip bomb?)")
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            raise _Refuse(
                f"ZIP expands to {total / 2**20:.0f} MiB, above the {limits.max_total_bytes / 2**20:.0f} MiB limit (zip bomb?)"
            )
        self.unsafe: list[str] = []
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for i in infos:
            if i.file_size > limits.max_member_bytes:
                raise _Refuse(f"ZIP entry expands to {i.file_size / 2**20:.0f} MiB, above the per-entry limit (zip bomb?)")
            if i.file_size > limits.ratio_min_bytes and i.file_size > limits.max_ratio * max(i.compress_size, 1):
                raise _Refuse(
                    f"ZIP entry compressed {i.file_size / max(i.compress_size, 1):.0f}:1, above the "
                    f"{limits.max_ratio:.0f}:1 limit (zip bomb?)"
                )
            if _unsafe_name(i.filename):
                self.unsafe.append(i.filename)
            elif not i.is_dir():
                self.infos[i.filename] = i
        if "[Content_Types].xml" not in self.infos:
            raise _Refuse("ZIP file without [Content_Types].xml: not an Office Open XML document")
        self.rels: dict[str, dict[str, tuple[str, str]]] = {}  # source -> rId -> (target part, type)
        self.refs: dict[str, list[tuple[str, str]]] = defaultdict(list)  # target -> [(source, rId)]
        for name in self.infos:
            if name.endswith(".rels") and posixpath.basename(posixpath.dirname(name)) == "_rels":
                self._load_rels(name)

    def read(self, name: str) -> bytes:
        info = self.infos[name]
        with self.zip.open(info) as f:  # zipfile stops at the declared size and checks the CRC
            return f.read(self.limits.max_member_bytes + 1)

    def xml(self, name: str):
        """Parsed XML part, or None when missing or malformed; hostile XML refuses the document."""
        if name not in self.infos:
            return None
        try:
            return SafeET.fromstring(self.read(name), forbid_dtd=True)
        except DefusedXmlException:
            raise _Refuse(f"XML part {name} declares a DTD or entities (billion-laughs/external-entity attack?): refused") from None
        except (SafeET.ParseError, zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError):
            return None  # malformed part: locations fall back, pictures still count

    def _load_rels(self, rels_name: str) -> None:
        folder = posixpath.dirname(posixpath.dirname(rels_name))
        source = posixpath.join(folder, posixpath.basename(rels_name)[: -len(".rels")])  # "" for _rels/.rels
        root = self.xml(rels_name)
        if root is None:
            return
        table = self.rels.setdefault(source, {})
        base = posixpath.dirname(source)
        for rel in root:
            if not rel.tag.endswith("Relationship") or rel.get("TargetMode") == "External":
                continue
            rid, target = rel.get("Id"), rel.get("Target")
            if not rid or not target:
                continue
            target = unquote(target)
            full = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
            full = posixpath.normpath(full)
            if full.startswith("..") or _unsafe_name(full):
                continue
            table[rid] = (full, rel.get("Type", ""))
            self.refs[full].append((source, rid))

    def main_part(self) -> str | None:
        for target, rtype in self.rels.get("", {}).values():
            if rtype.endswith(_OFFICE_DOC):
                return target
        return None


def _extract_ooxml(data: bytes, res: DocResult, limits: Limits) -> None:
    pkg = _Package(data, limits)
    for name in pkg.unsafe:
        res.skipped.append((name, "unsafe part name (absolute path, '..', backslash or drive letter): ignored"))
    media = sorted(n for n in pkg.infos if _MEDIA_RE.match(n))
    if not media:
        return
    where = _Locator(pkg).locate
    for name in media:
        try:
            blob = pkg.read(name)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as e:
            res.skipped.append((name, f"damaged or unreadable part: {_one_line(e)}"))
            continue
        kind = sniff_image(blob)
        ext = name.rsplit(".", 1)[-1].lower()
        if kind == "gzip":
            kind = {"emz": "emz", "wmz": "wmz", "svgz": "svg"}.get(ext)
        if kind is None:
            continue  # audio, video, fonts, OLE: not pictures
        _add_picture(res, name, blob, where(name), kind)


def _add_picture(res: DocResult, image_id: str, blob: bytes, location: str, kind: str, sha: str | None = None) -> None:
    sha = sha or hashlib.sha256(blob).hexdigest()
    res.digests[image_id] = sha
    res.locations[image_id] = location
    if kind in RASTER_KINDS:
        res.pictures.append(Picture(image_id, blob, location, kind, sha, kind))
    elif kind in VECTOR_KINDS:
        res.vectors[image_id] = blob
        res.skipped.append((image_id, _no_converter_reason(kind)))
    elif kind == "wdp":
        res.skipped.append((image_id, "JPEG XR (HD Photo) picture: no decoder for it here"))
    else:
        res.skipped.append((image_id, f"{kind} picture: no decoder for it here"))


def _col_letters(col: int) -> str:
    s = ""
    col += 1
    while col:
        col, r = divmod(col - 1, 26)
        s = chr(65 + r) + s
    return s


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Locator:
    """Turns a media part name into a human location by following relationships upwards."""

    def __init__(self, pkg: _Package):
        self.pkg = pkg
        self.main = pkg.main_part() or ""
        self.family = self.main.split("/", 1)[0] if self.main else ""
        self._paragraphs: dict[str, list[int]] | None = None
        self._anchors: dict[str, dict[str, str]] = {}
        self._sheet_names: dict[str, str] | None = None
        self._slides: dict[str, int] | None = None
        self._in_cell: dict[str, list[str]] | None = None

    def locate(self, part: str) -> str:
        places: list[str] = []
        for source, rid in self.pkg.refs.get(part, []):
            for p in self._describe(source, rid, 0):
                if p not in places:
                    places.append(p)
        if not places:
            return "unreferenced"
        more = f" (+{len(places) - 6} more)" if len(places) > 6 else ""
        return "; ".join(places[:6]) + more

    def _parents(self, part: str, depth: int, suffix: str = "") -> list[str]:
        out = []
        if depth < 4:
            for source, rid in self.pkg.refs.get(part, []):
                out += [p + suffix for p in self._describe(source, rid, depth + 1)]
        return out or [posixpath.basename(part) + suffix]

    def _describe(self, source: str, rid: str, depth: int) -> list[str]:
        base = posixpath.basename(source)
        if self.family == "word":
            if source == self.main:
                paras = self._word_paragraphs().get(rid)
                return [f"paragraph {n}" for n in paras] if paras else ["document"]
            for prefix, label in (("header", "header"), ("footer", "footer"), ("footnotes", "footnotes"),
                                  ("endnotes", "endnotes"), ("comments", "comments")):
                if base.startswith(prefix):
                    return [label]
            if "/glossary/" in source:
                return ["glossary"]
        elif self.family == "xl":
            names = self._sheets()
            if source in names:
                return [f"{names[source]} background"]
            if source.endswith(".vml"):
                return [f"{names.get(s, posixpath.basename(s))} header/footer" for s, _ in self.pkg.refs.get(source, [])] or ["header/footer"]
            if "/drawings/" in source and source.endswith(".xml"):
                cell = self._drawing_anchors(source).get(rid, "")
                sheets = [names.get(s, posixpath.basename(s)) for s, _ in self.pkg.refs.get(source, [])
                          if s in names] or self._parents(source, depth)
                return [f"{s}!{cell}" if cell else s for s in sheets]
            if source.endswith("richData/richValueRel.xml"):
                return self._in_cell_images().get(rid) or ["in cell"]
            if "/charts/" in source:
                return self._parents(source, depth, " (chart)")
        elif self.family == "ppt":
            slides = self._slide_numbers()
            if source in slides:
                return [f"slide {slides[source]}"]
            if "/notesSlides/" in source:
                return [f"notes of {p}" for p in self._parents(source, depth)]
            for part, label in (("/slideLayouts/", "slide layout"), ("/slideMasters/", "slide master"),
                                ("/notesMasters/", "notes master"), ("/handoutMasters/", "handout master")):
                if part in source:
                    return [label]
        if source == "":
            return ["package"]
        return self._parents(source, depth)

    # Word: paragraph number (1-based, document order) of every relationship id used in the body.
    def _word_paragraphs(self) -> dict[str, list[int]]:
        if self._paragraphs is None:
            self._paragraphs = defaultdict(list)
            root = self.pkg.xml(self.main)
            if root is not None:
                count = 0
                stack = [(root, 0)]
                while stack:  # explicit stack: deep XML must not hit the recursion limit
                    el, para = stack.pop()
                    if _local(el.tag) == "p":
                        count += 1
                        para = count
                    for key, value in el.attrib.items():
                        is_ref = key.startswith(_R_NS) or key.endswith("}relid")  # VML uses o:relid too
                        if is_ref and para and para not in self._paragraphs[value]:
                            self._paragraphs[value].append(para)
                    stack.extend((child, para) for child in reversed(el))
        return self._paragraphs

    # Excel
    def _sheets(self) -> dict[str, str]:
        if self._sheet_names is None:
            self._sheet_names = {}
            root = self.pkg.xml(self.main)
            rels = self.pkg.rels.get(self.main, {})
            if root is not None:
                for el in root.iter():
                    if _local(el.tag) == "sheet":
                        target = rels.get(el.get(_R_NS + "id", ""), ("", ""))[0]
                        if target:
                            self._sheet_names[target] = el.get("name", posixpath.basename(target))
        return self._sheet_names

    def _drawing_anchors(self, drawing: str) -> dict[str, str]:
        if drawing not in self._anchors:
            cells: dict[str, str] = {}
            root = self.pkg.xml(drawing)
            for anchor in (root if root is not None else []):
                cell = ""
                for el in anchor:
                    if _local(el.tag) == "from":
                        vals = {_local(c.tag): (c.text or "").strip() for c in el}
                        if vals.get("col", "").isdigit() and vals.get("row", "").isdigit():
                            cell = f"{_col_letters(int(vals['col']))}{int(vals['row']) + 1}"
                for el in anchor.iter():
                    for key, value in el.attrib.items():
                        if key.startswith(_R_NS):
                            cells.setdefault(value, cell)
            self._anchors[drawing] = cells
        return self._anchors[drawing]

    def _in_cell_images(self) -> dict[str, list[str]]:
        """rId of xl/richData/richValueRel.xml -> ["Sheet1!B3 (in cell)", ...]."""
        if self._in_cell is not None:
            return self._in_cell
        self._in_cell = defaultdict(list)
        folder = posixpath.dirname(self.main)
        rel_root = self.pkg.xml(f"{folder}/richData/richValueRel.xml")
        rv_root = self.pkg.xml(f"{folder}/richData/rdrichvalue.xml")
        if rel_root is None or rv_root is None:
            return self._in_cell
        rel_ids = [el.get(_R_NS + "id") for el in rel_root if _local(el.tag) == "rel"]
        rv_rel: list[int | None] = []  # rich value index -> index into rel_ids (first <v>: LocalImageIdentifier)
        for rv in rv_root:
            if _local(rv.tag) == "rv":
                vs = [v.text for v in rv if _local(v.tag) == "v"]
                rv_rel.append(int(vs[0]) if vs and (vs[0] or "").strip().isdigit() else None)
        vm_to_rv = self._value_metadata(folder)
        for sheet, name in self._sheets().items():
            for cell, vm in self._cells_with_vm(sheet):
                rv = vm_to_rv.get(vm, vm - 1)
                if 0 <= rv < len(rv_rel) and rv_rel[rv] is not None and 0 <= rv_rel[rv] < len(rel_ids):
                    label = f"{name}!{cell} (in cell)"
                    if label not in self._in_cell[rel_ids[rv_rel[rv]]]:
                        self._in_cell[rel_ids[rv_rel[rv]]].append(label)
        return self._in_cell

    def _value_metadata(self, folder: str) -> dict[int, int]:
        """vm (1-based) -> rich value index, via xl/metadata.xml."""
        root = self.pkg.xml(f"{folder}/metadata.xml")
        if root is None:
            return {}
        future: list[int] = []
        out: dict[int, int] = {}
        for el in root:
            if _local(el.tag) == "futureMetadata" and el.get("name") == "XLRICHVALUE":
                for bk in el:
                    rvb = next((x for x in bk.iter() if _local(x.tag) == "rvb"), None)
                    future.append(int(rvb.get("i", "-1")) if rvb is not None else -1)
        for el in root:
            if _local(el.tag) == "valueMetadata":
                for n, bk in enumerate((b for b in el if _local(b.tag) == "bk"), 1):
                    rc = next((x for x in bk if _local(x.tag) == "rc"), None)
                    v = int(rc.get("v", "-1")) if rc is not None else -1
                    if 0 <= v < len(future):
                        out[n] = future[v]
        return out

    def _cells_with_vm(self, sheet: str) -> Iterator[tuple[str, int]]:
        if sheet not in self.pkg.infos:
            return
        try:
            with self.pkg.zip.open(self.pkg.infos[sheet]) as f:
                for _, el in SafeET.iterparse(f, forbid_dtd=True):
                    if _local(el.tag) == "c":
                        vm = el.get("vm")
                        if vm and vm.isdigit():
                            yield el.get("r", "?"), int(vm)
                        el.clear()
        except DefusedXmlException:
            raise _Refuse(f"XML part {sheet} declares a DTD or entities (billion-laughs/external-entity attack?): refused") from None
        except (SafeET.ParseError, zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError):
            return

    # PowerPoint: slide number from the order of presentation.xml's sldIdLst.
    def _slide_numbers(self) -> dict[str, int]:
        if self._slides is None:
            self._slides = {}
            root = self.pkg.xml(self.main)
            rels = self.pkg.rels.get(self.main, {})
            if root is not None:
                n = 0
                for el in root.iter():
                    if _local(el.tag) == "sldId":
                        n += 1
                        target = rels.get(el.get(_R_NS + "id", ""), ("", ""))[0]
                        if target:
                            self._slides[target] = n
        return self._slides


# ---------------------------------------------------------------- PDF


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


# ---------------------------------------------------------------- vector pictures


def vector_converter() -> str | None:
    """Path of the program that renders EMF/WMF to PNG here (LibreOffice or Inkscape), or None."""
    for name in ("soffice", "libreoffice", "inkscape"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _no_converter_reason(kind: str) -> str:
    return f"{kind.upper()} vector picture: no converter installed (install libreoffice to compare it)"


def convert_vectors(results: list[DocResult], *, limits: Limits = DEFAULT_LIMITS) -> None:
    """Render the vector pictures of `results` to PNG, in place, with few converter runs.

    Rendered pictures move from `skipped` to `pictures` (kind "png", source_kind "emf"...);
    the others keep a skipped reason. Identical vector pictures (the same logo in many documents)
    are rendered once. Files go to the converter in batches of `VECTOR_BATCH`, each batch with its
    own time limit, so a large folder does not run into one overall limit. Files are written to a
    private temporary folder under numbered names, never under their part names.
    """
    todo = [(r, iid) for r in results for iid in r.vectors if any(s[0] == iid for s in r.skipped)]
    if not todo:
        return
    program = vector_converter()
    if program is None:
        return  # the skipped reasons already say what to install
    unique: dict[bytes, int] = {}  # vector bytes -> number of its rendering
    names: list[str] = []  # a part name of each, for the type of gzip-compressed ones
    for r, iid in todo:
        if r.vectors[iid] not in unique:
            unique[r.vectors[iid]] = len(unique)
            names.append(iid)
    blobs = list(unique)
    rendered: dict[int, bytes | None] = {}
    failures: dict[int, str | None] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-vec-") as tmp:
        for first in range(0, len(blobs), VECTOR_BATCH):
            batch = Path(tmp, f"batch{first}")
            out_dir = batch / "out"
            out_dir.mkdir(parents=True)
            inputs = []
            for i in range(first, min(first + VECTOR_BATCH, len(blobs))):
                kind = _vector_kind(blobs[i], names[i])
                inputs.append(batch / f"{i}.{kind}")
                inputs[-1].write_bytes(blobs[i])
            failure = _run_converter(program, inputs, out_dir, batch, limits.convert_timeout)
            for src in inputs:
                i = int(src.stem)
                rendered[i] = _crop_page(out_dir / f"{i}.png")  # one PNG bytes object shared by all users
                failures[i] = failure
    for r, iid in todo:
        i = unique[r.vectors[iid]]
        png = rendered.get(i)
        kind = _vector_kind(r.vectors[iid], iid)
        if png is None:
            reason = f"{kind.upper()} vector picture: conversion failed ({failures.get(i) or 'no output'})"
            r.skipped = [(s, reason if s == iid else why) for s, why in r.skipped]
            continue
        r.skipped = [s for s in r.skipped if s[0] != iid]
        r.pictures.append(Picture(iid, png, r.locations.get(iid, ""), "png", r.digests.get(iid, ""), kind))


VECTOR_BATCH = 100  # vector pictures per converter run (about 1 s each: well inside convert_timeout)


def _vector_kind(blob: bytes, image_id: str = "") -> str:
    """emf/wmf/svg from the bytes; for gzip (emz/wmz/svgz) the part name's extension says which."""
    kind = sniff_image(blob)
    if kind == "gzip":
        return image_id.rsplit(".", 1)[-1].lower() if "." in image_id else "emz"
    return kind or "emf"


def _run_converter(program: str, inputs: list[Path], out_dir: Path, tmp: Path, timeout: float) -> str | None:
    """Run LibreOffice (one process for all files) or Inkscape (one per file); a short failure reason or None."""
    env = dict(os.environ, HOME=str(tmp))  # no writes to the user's profile
    try:
        if Path(program).name.startswith(("soffice", "libreoffice")):
            # A private profile lets several runs go at once; a large page gives enough pixels,
            # and _crop_page cuts the picture out of the page it is drawn on.
            size = '{"PixelWidth":{"type":"long","value":"1588"},"PixelHeight":{"type":"long","value":"2246"}}'
            cmd = [program, f"-env:UserInstallation={tmp.as_uri()}/profile", "--headless", "--norestore",
                   "--convert-to", f"png:draw_png_Export:{size}", "--outdir", str(out_dir), *map(str, inputs)]
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env, timeout=timeout, check=False, start_new_session=True)
        else:
            deadline = time.monotonic() + timeout
            for src in inputs:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "time limit"
                subprocess.run([program, str(src), "--export-type=png", f"--export-filename={out_dir / (src.stem + '.png')}"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env, timeout=left, check=False, start_new_session=True)
    except subprocess.TimeoutExpired:
        return f"converter took more than {timeout:.0f} s"
    except OSError as e:
        return f"cannot run {Path(program).name}: {e.strerror or e}"
    return None


def _crop_page(png: Path) -> bytes | None:
    """The drawing cut out of the white/transparent page the converter rendered it on, as PNG bytes."""
    from PIL import Image, ImageChops

    if not png.is_file():
        return None
    try:
        with Image.open(png) as im:
            im.load()
            rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat = Image.alpha_composite(white, rgba).convert("RGB")
        box = ImageChops.difference(flat, Image.new("RGB", flat.size, (255, 255, 255))).getbbox()
        if box:
            flat = flat.crop(box)
        buf = io.BytesIO()
        flat.save(buf, format="PNG")
        return buf.getvalue()
    except Exception:
        return None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
