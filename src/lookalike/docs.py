"""`lookalike docs check`: find copied pictures within and across Word/Excel/PowerPoint/PDF documents.

    from lookalike.docs import check_documents
    res = check_documents(["contracts/"])
    for p in res.pairs:
        print(p.doc_a, p.image_a, p.doc_b, p.image_b, p.score)

Pipeline: walk the documents; per chunk of DOC_CHUNK documents pull every picture out
(`imageio.documents`), render the chunk's EMF/WMF pictures in one converter run, index the pictures
into an `Index` under ``"{doc}::{image_id}"`` and keep only a small preview of each (so a folder of
thousands of documents runs in flat memory); then run the index's dedup in the chosen mode and map
the pairs back to (document, picture). Pictures with
identical bytes (sha256 of the part / raw PDF stream, vector pictures included) always pair at 1.0.

Flat pictures (solid colours, blank pages, tiny uniform logos) have no structure for a perceptual
hash: PDQ marks them with a low quality and all of them hash alike. A pair that involves such a
picture is kept only when the two look the same at the pixel level too (same aspect ratio, small
colour difference on a tiny thumbnail), so a red square never matches a blue one.
Rendered vector pictures are paired only by identical bytes: their renderings depend on the
converter, not on the document.
Besides the index's hashes (of a border-trimmed view), the pictures are also hashed whole: the same
logo with and without a frame, or on a transparent vs. coloured background, is trimmed differently.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import combinations

import cv2
import numpy as np

from lookalike.errors import BadInput
from lookalike.features import hashes as H
from lookalike.imageio import decode_bytes
from lookalike.imageio.documents import (
    DocResult,
    Picture,
    VECTOR_KINDS,
    convert_vectors,
    extract_pictures,
    iter_documents,
)
from lookalike.search.hashmatch import HashMatcher

Progress = Callable[[str], Callable[[int, int], None]] | None

# Default score thresholds of `docs check` per mode (scores are the mode's own scale); a mode not
# listed uses its own default. Measured on the documents set (benchmarks/bench_docs.py): precision
# 0.992 / recall 0.990 anywhere in 0.80-0.88; recall falls to 0.91 at 0.90. 0.85 is mid-plateau.
DOCS_THRESHOLDS = {"copy": 0.85}

# Below this PDQ quality (0-100) a picture is "flat": hashes cannot tell it from other flat ones.
FLAT_QUALITY = 50
# Flat pictures pair only when their tiny colour thumbnails differ by at most this (mean abs, 0-255)
# and their aspect ratios by at most FLAT_ASPECT (ratio of ratios).
FLAT_MAX_DIFF = 6.0
FLAT_ASPECT = 1.15
_THUMB = 16

# The index cannot re-read pictures held in memory, so features that a mode computes only on demand
# (SIFT keypoints to verify copy-mode candidates, the Lite2 descriptor of similar mode) are computed
# when the pictures are added.
ON_DEMAND_FEATURES = {"copy": ["local"], "similar": ["cnn2", "cnn2grey"]}

# Documents read, indexed and let go per chunk (memory stays flat however many there are); each
# chunk renders its vector pictures in one converter run.
DOC_CHUNK = 200
# After indexing, a picture larger than this keeps only a JPEG preview of PREVIEW_SIDE px (reports).
PREVIEW_BYTES = 48 * 1024
PREVIEW_SIDE = 256


@dataclass
class DocPair:
    doc_a: str
    image_a: str
    doc_b: str
    image_b: str
    score: float  # similarity in [0, 1]; 1.0 = identical bytes or pixels
    method: str  # sha256, pixels, pdq, phash, ... (the mode's deciding evidence)
    location_a: str = ""
    location_b: str = ""
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"doc_a": self.doc_a, "image_a": self.image_a, "doc_b": self.doc_b, "image_b": self.image_b,
                "score": round(self.score, 4), "method": self.method, "location_a": self.location_a,
                "location_b": self.location_b, **self.details}


@dataclass
class DocsCheckResult:
    mode: str
    threshold: float
    pairs: list[DocPair]  # best score first
    documents: list[DocResult]  # one per document, in walk order (Picture.data: a preview, for reports)
    picture_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (doc, image_id, reason) not indexable

    @property
    def pictures(self) -> dict[tuple[str, str], Picture]:
        """(doc, image_id) -> Picture, for reports (thumbnails)."""
        return {(d.doc, p.image_id): p for d in self.documents for p in d.pictures}

    @property
    def errors(self) -> list[tuple[str, str]]:
        """(doc, reason) for every document that could not be read, or only partly."""
        return [(d.doc, d.error) for d in self.documents if d.error]

    @property
    def skipped(self) -> list[tuple[str, str, str]]:
        """(doc, image_id, reason) for every picture found but not compared by its pixels."""
        out = [(d.doc, iid, why) for d in self.documents for iid, why in d.skipped]
        return out + list(self.picture_errors)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "threshold": self.threshold, "pairs": [p.to_dict() for p in self.pairs],
                "errors": [{"doc": d, "reason": r} for d, r in self.errors],
                "skipped": [{"doc": d, "image": i, "reason": r} for d, i, r in self.skipped]}


def default_threshold(mode: str) -> float | None:
    """The docs check's default threshold for `mode` (None: the mode's own default)."""
    return DOCS_THRESHOLDS.get(mode)


def check_documents(paths: Iterable[str | os.PathLike], *, mode: str = "copy", threshold: float | None = None,
                    index_dir: str | os.PathLike | None = None, progress: Progress = None) -> DocsCheckResult:
    """Pairs of look-alike pictures within and across the documents under `paths`.

    `threshold` is the minimum score (similarity in [0, 1]) of a reported pair; None picks the docs
    default for `mode`. Bad documents never stop the run: see `DocsCheckResult.errors`.
    `index_dir` keeps the picture index (re-runs skip unchanged pictures); by default a temporary
    one is used and removed.

    Documents are read, indexed and let go in chunks of `DOC_CHUNK`, so memory does not grow with
    the folder: the result keeps a small preview of each picture (`Picture.data`, at most
    `PREVIEW_BYTES`), not the original bytes; `extract_pictures(doc)` gives those.
    """
    from lookalike.search.modes import get_mode  # the engine loads here, not when the CLI starts

    get_mode(mode)  # an unknown mode fails now, not after reading every document
    docs = list(iter_documents(paths))
    bar = progress("Reading documents") if progress else None

    def chunks() -> Iterator[list[DocResult]]:
        for start in range(0, len(docs), DOC_CHUNK):
            part = []
            for n, doc in enumerate(docs[start:start + DOC_CHUNK], start + 1):
                part.append(extract_pictures(doc, convert=False))  # vectors: one converter run per chunk
                if bar:
                    bar(n, len(docs))
            convert_vectors(part)
            yield part

    if threshold is None:
        threshold = default_threshold(mode)
    if index_dir is not None:
        return _check_chunks(chunks(), mode, threshold, index_dir, progress)
    with tempfile.TemporaryDirectory(prefix="lookalike-docs-") as tmp:
        return _check_chunks(chunks(), mode, threshold, tmp, progress)


def _check(results: list[DocResult], mode: str, threshold: float | None, index_dir, progress: Progress) -> DocsCheckResult:
    """`check_documents` on documents already extracted (and vectors converted): for benchmarks."""
    return _check_chunks([results], mode, threshold, index_dir, progress)


def _check_chunks(chunks: Iterable[list[DocResult]], mode: str, threshold: float | None, index_dir,
                  progress: Progress) -> DocsCheckResult:
    results: list[DocResult] = []
    keys: dict[str, tuple[DocResult, Picture]] = {}
    looks = _Looks()
    picture_errors: list[tuple[str, str, str]] = []
    pairs: dict[tuple[tuple[str, str], tuple[str, str]], DocPair] = {}
    from lookalike.api import Index
    from lookalike.search.modes import _Groups

    with Index.open(index_dir, progress=progress) as idx:
        for part in chunks:
            results += part
            new = {f"{r.doc}::{p.image_id}": (r, p) for r in part for p in r.pictures}
            keys.update(new)
            report = idx.add_blobs([(k, p.data) for k, (_, p) in new.items()], features=ON_DEMAND_FEATURES.get(mode))
            for key, reason in report.errors:
                if key in new:
                    r, p = new[key]
                    picture_errors.append((r.doc, p.image_id, reason))
            looks.add(new)  # also swaps each picture's bytes for a small preview
            for r in part:
                r.vectors = {}  # rendered (or skipped) by now; their digests stay for byte pairs
        dedup = idx.dedup(mode=mode, threshold=threshold)
        used = threshold if threshold is not None else dedup.threshold
        # a cosine of identical vectors can round to just above 1
        found = [(pr.a, pr.b, min(float(pr.score), 1.0), pr.method, dict(pr.details)) for pr in dedup.pairs]
        if mode != "exact":
            found += looks.pairs(used)
        def usable(a, b, method) -> bool:
            if a not in keys or b not in keys:
                return False  # left in a kept index_dir by an earlier run
            if method in ("sha256", "pixels"):
                return True
            if keys[a][1].source_kind in VECTOR_KINDS or keys[b][1].source_kind in VECTOR_KINDS:
                return False  # renderings of vector pictures: only identical bytes count (below)
            return looks.same(a, b)

        direct = [f for f in found if f[3] != "transitive" and usable(*f[:2], f[3])]
        # a copy of a copy holds only through pairs kept here, not through one a flat look rejected
        chains = _Groups()
        for a, b, *_ in direct:
            chains.join(a, b)
        linked = [f for f in found if f[3] == "transitive" and chains.same(f[0], f[1]) and usable(*f[:2], f[3])]
        for a, b, score, method, details in direct + linked:
            (ra, pa), (rb, pb) = keys[a], keys[b]
            _put(pairs, DocPair(ra.doc, pa.image_id, rb.doc, pb.image_id, score, method,
                                pa.location, pb.location, details))
    for p in _byte_pairs(results):
        _put(pairs, p)
    out = sorted(pairs.values(), key=lambda p: (-p.score, p.doc_a, p.image_a, p.doc_b, p.image_b))
    return DocsCheckResult(mode, used, out, results, picture_errors)


def _put(pairs: dict, p: DocPair) -> None:
    """Keep one pair per unordered (picture, picture), with the best score; a before b."""
    a, b = (p.doc_a, p.image_a), (p.doc_b, p.image_b)
    if b < a:
        p = DocPair(p.doc_b, p.image_b, p.doc_a, p.image_a, p.score, p.method, p.location_b, p.location_a, p.details)
        a, b = b, a
    old = pairs.get((a, b))
    # on a tie, identical bytes is the clearest reason to show
    if old is None or p.score > old.score or (p.score == old.score and p.method == "sha256"):
        pairs[(a, b)] = p


def _byte_pairs(results: list[DocResult]) -> list[DocPair]:
    """Every pair of pictures whose stored bytes are identical, usable or skipped (vectors too)."""
    groups: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in results:
        for iid, sha in r.digests.items():
            if sha:
                groups[sha].append((r.doc, iid, r.locations.get(iid, "")))
    out = []
    for members in groups.values():
        for (da, ia, la), (db, ib, lb) in combinations(members, 2):
            out.append(DocPair(da, ia, db, ib, 1.0, "sha256", la, lb))
    return out


class _Looks:
    """Per picture, from one extra decode: hashes of the whole, untrimmed picture and a tiny thumbnail.

    The index hashes a border-trimmed view (good for letterboxed photos); in documents the same
    logo often comes with and without a frame or on a transparent vs. coloured background, where
    trimming cuts the two differently. Hashing the untrimmed picture as well finds those copies.
    The thumbnail decides pairs that involve a flat picture (low PDQ quality). Only small arrays
    are kept, never the decoded images; `add` also replaces a large picture's bytes by a preview.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.info: dict[str, tuple[np.ndarray, float, int]] = {}  # key -> (thumbnail, aspect, quality)
        self._pdq: list[np.ndarray] = []
        self._ph: list[np.ndarray] = []

    def add(self, keys: dict[str, tuple[DocResult, Picture]]) -> None:
        for key, (_, pic) in keys.items():
            try:
                img = decode_bytes(pic.data)
            except BadInput:
                continue  # the index reports it
            base = H.hash_base(img.gray)
            codes, quality = H.pdq_dihedral(base)
            small = cv2.resize(img.rgb, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
            self.info[key] = (small, img.width / max(img.height, 1), quality)
            if pic.source_kind not in VECTOR_KINDS:
                self.ids.append(key)
                self._pdq.append(codes)
                self._ph.append(H.phash_dihedral(base))
            if len(pic.data) > PREVIEW_BYTES:
                pic.data, pic.kind = _preview(img.rgb), "jpeg"

    def pairs(self, threshold: float) -> list[tuple[str, str, float, str, dict]]:
        """(key a, key b, score, method, details) for untrimmed-hash matches, on the copy mode's scale."""
        if len(self.ids) < 2:
            return []
        codes = {"pdq": np.stack(self._pdq), "phash": np.stack(self._ph)}
        matcher = HashMatcher(np.arange(len(self.ids)), codes)
        return [(self.ids[a], self.ids[b], s, m, {"distance": d, "view": "untrimmed"})
                for (a, b), (s, m, d) in matcher.all_pairs(threshold).items() if s >= threshold]

    def same(self, a: str, b: str) -> bool:
        """False when a flat picture is involved and the two do not look the same pixel for pixel."""
        ia, ib = self.info.get(a), self.info.get(b)
        if ia is None or ib is None:
            return False
        if min(ia[2], ib[2]) >= FLAT_QUALITY:
            return True
        ratio = max(ia[1], ib[1]) / max(min(ia[1], ib[1]), 1e-6)
        diff = float(np.abs(ia[0].astype(np.int16) - ib[0].astype(np.int16)).mean())
        return ratio <= FLAT_ASPECT and diff <= FLAT_MAX_DIFF


def _preview(rgb: np.ndarray) -> bytes:
    """A JPEG of at most PREVIEW_SIDE px: enough for report thumbnails, a few KB."""
    h, w = rgb.shape[:2]
    scale = min(1.0, PREVIEW_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes()
