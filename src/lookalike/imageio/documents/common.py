"""What every document reader shares: limits, results, magic-byte sniffing."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field

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

log = logging.getLogger("lookalike.imageio.documents")


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



def _no_converter_reason(kind: str) -> str:
    return f"{kind.upper()} vector picture: no converter installed (install libreoffice to compare it)"


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



def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
