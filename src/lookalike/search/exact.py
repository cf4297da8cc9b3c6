"""Exact mode: byte-identical files, and pixel-identical files whatever their format.

The stored pixel digest is of the working image (long side <= 768, JPEGs decoded at a reduced scale), so
above 768 px a JPEG and its lossless PNG twin get different digests, and two images that differ in one
pixel may get the same one. Decoding every file at full size to settle it would be slow, so:

1. candidates are files of the same size (after EXIF orientation) whose working images agree: same
   working digest, or stored hashes (pHash, PDQ, 2500-bit fingerprint) within a few bits: a
   draft-decoded JPEG and the full decode of its twin differ that little (measured: 0-2 bits);
2. each candidate gets a full-resolution digest (RGBA, so transparency counts), computed on demand from
   the file and cached in the catalog as feature "pixels"; equal digests = exact.

Byte-identical files (same sha256) need no decoding at all. Where a source cannot be read back
(pictures indexed from documents, files moved since), identical working images count instead.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict

import numpy as np

from lookalike import config, parallel
from lookalike.errors import BadInput
from lookalike.imageio.load import full_pixel_digest, read_bytes
from lookalike.search.modes import Hit, Mode, PairHit, Query

DIGEST = "pixels"  # catalog feature name of the cached full-resolution digest
DIGEST_VERSION = "2"  # 2: opaque pictures hashed as RGB
# Where a source cannot be read back (pictures inside documents, moved files), identical working
# images count, as before this module: certain up to 768 px, near-certain above.
FALLBACK = {"compared": "working image"}
# Bits a format change may flip in the working image's hashes (measured on JPEG/PNG/BMP/WebP twins of
# 51 photos above 1 MP: pHash 0, PDQ <= 2, fingerprint <= 2). Beyond these, pixels surely differ.
MAX_BITS = {"phash8": 4, "pdq8": 6, "fingerprint": 12}


class ExactMode(Mode):
    """Byte-identical files (sha256) or identical full-resolution pixels (any format)."""

    name, features, threshold = "exact", ("phash8", "pdq8", "fingerprint"), 1.0

    def search(self, index, q: Query, k: int, min_score: float) -> list[Hit]:
        hits: dict[int, Hit] = {}
        rows = index.catalog.files()
        for r in rows:
            if r.sha256 == q.sha256:
                hits[r.id] = (r.id, 1.0, "sha256", {})
        q_codes = {n: _code(n, q.features[n]) for n in MAX_BITS if n in q.features}
        codes = _codes(index)
        cands = []
        for r in rows:
            if r.id in hits or (r.width, r.height) != q.size:
                continue
            theirs = codes.get(r.id, {})
            near = all(_bits(c ^ theirs[n]) <= MAX_BITS[n] for n, c in q_codes.items() if n in theirs)
            if near or r.pixel_digest == q.pixel_digest:
                cands.append(r)
        if not cands and q.key and os.path.isfile(q.key):
            return sorted(hits.values(), key=lambda h: h[0])[:k]  # no twin to confirm: no full-size decode
        q_full = _query_digest(q)
        if q_full is None:  # the query is not a file to read back: identical working images count
            for r in rows:
                if r.id not in hits and r.pixel_digest == q.pixel_digest:
                    hits[r.id] = (r.id, 1.0, "pixels", dict(FALLBACK))
        else:
            digests = _digests(index, cands)
            for r in cands:
                if digests.get(r.id) == q_full[0]:
                    hits[r.id] = (r.id, 1.0, "pixels", {})
                elif r.id not in digests and r.pixel_digest == q.pixel_digest:
                    hits[r.id] = (r.id, 1.0, "pixels", dict(FALLBACK))
        return sorted(hits.values(), key=lambda h: h[0])[:k]

    def pairs(self, index, threshold: float) -> list[PairHit]:
        rows = index.catalog.files()
        by_sha: dict[str, list] = defaultdict(list)
        for r in rows:
            by_sha[r.sha256].append(r)
        # one representative per distinct file content: byte copies share their pixels
        reps = [g[0] for g in by_sha.values()]
        codes = _codes(index)
        by_size: dict[tuple, list] = defaultdict(list)
        for r in reps:
            by_size[(r.width, r.height)].append(r)
        cand_pairs = []
        for group in by_size.values():
            if len(group) > 1:
                cand_pairs += _candidates(group, codes)
        digests = _digests(index, list({r.id: r for p in cand_pairs for r in p}.values()))
        same, fallback = [], set()
        for a, b in cand_pairs:
            if a.id in digests and b.id in digests:
                if digests[a.id] == digests[b.id]:
                    same.append((a, b))
            elif a.pixel_digest == b.pixel_digest:  # one cannot be read back: the working image decides
                same.append((a, b))
                fallback.add(frozenset((a.sha256, b.sha256)))
        groups = _components([[r.sha256 for r in p] for p in same] + [[s] for s in by_sha])
        out: list[PairHit] = []
        for shas in groups:
            members = sorted((r for s in shas for r in by_sha[s]), key=lambda r: r.id)
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    if a.sha256 == b.sha256:
                        out.append((a.id, b.id, 1.0, "sha256", {}))
                    else:
                        det = dict(FALLBACK) if frozenset((a.sha256, b.sha256)) in fallback else {}
                        out.append((a.id, b.id, 1.0, "pixels", det))
        return out


def _candidates(group: list, codes: dict[int, dict]) -> list[tuple]:
    """Pairs of same-size files whose working images agree (same digest, or every hash both have
    within its bound)."""
    out = []
    for i, a in enumerate(group[:-1]):
        near = np.ones(len(group) - i - 1, dtype=bool)
        for name, bound in MAX_BITS.items():
            mine = codes.get(a.id, {}).get(name)
            if mine is None:
                continue  # no evidence: the full digest decides
            others = [codes.get(b.id, {}).get(name) for b in group[i + 1:]]
            have = np.array([o is not None for o in others])
            if have.any():
                stack = np.stack([o if o is not None else mine for o in others])
                dist = np.bitwise_count(stack ^ mine).sum(axis=1)
                near &= ~have | (dist <= bound)
        for j, b in enumerate(group[i + 1:]):
            if near[j] or a.pixel_digest == b.pixel_digest:
                out.append((a, b))
    return out


def _digests(index, rows: list) -> dict[int, str]:
    """Full-resolution digests of these files: cached ones from the catalog, the others computed from
    the files (in worker processes when there are many) and stored. Files that cannot be read, or
    changed since indexing, get none."""
    if not rows:
        return {}
    cat = index.catalog
    out = {fid: bytes(blob).hex() for fid, blob in cat.features_by_ids([r.id for r in rows], DIGEST, DIGEST_VERSION)}
    todo = [(r.id, r.path, r.sha256) for r in rows if r.id not in out and os.path.isfile(r.path)]
    chunks = [todo[i : i + 16] for i in range(0, len(todo), 16)]
    workers = min(config.workers(), len(chunks)) if len(todo) >= 48 else 1
    new = []
    for part in parallel.imap(_file_digests, chunks, workers=workers, on_crash=lambda _: []):  # crashed: no digest
        for fid, digest in part:
            out[fid] = digest
            new.append((fid, {DIGEST: (DIGEST_VERSION, bytes.fromhex(digest))}))
    if new:
        cat.put_features(new)
    return out


def _file_digests(items: list[tuple[int, str, str]]) -> list[tuple[int, str]]:
    """(id, full digest) of each (id, path, sha256 at indexing) whose file still has those bytes."""
    out = []
    for fid, path, sha in items:
        try:
            data = read_bytes(path)
            if hashlib.sha256(data).hexdigest() == sha:  # else changed since indexing: `index` again first
                out.append((fid, full_pixel_digest(data)[0]))
        except BadInput:
            pass
    return out


def _query_digest(q: Query) -> tuple[str, int, int] | None:
    """Full-resolution digest and size of a query read from a file; None when it is not one."""
    if not q.key or not os.path.isfile(q.key):
        return None
    try:
        data = read_bytes(q.key)
        if hashlib.sha256(data).hexdigest() != q.sha256:
            return None
        return full_pixel_digest(data)
    except BadInput:
        return None


def _codes(index) -> dict[int, dict[str, np.ndarray]]:
    """The hashes candidates are compared on, per file id, as uint64 words."""
    def build():
        out: dict[int, dict] = defaultdict(dict)
        for name in MAX_BITS:
            for fid, blob in index.catalog.iter_feature(name):
                out[fid][name] = _code(name, blob)
        return dict(out)

    return index.cached("exact:codes", tuple(MAX_BITS), build)


def _code(name: str, value) -> np.ndarray:
    """The part of a stored hash that describes the image as it is (row 0 of the dihedral ones), as
    big-endian uint64 words (zero-padded) so XOR + bit count give the Hamming distance."""
    raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else np.asarray(value, np.uint8).tobytes()
    raw = raw[: {"phash8": 8, "pdq8": 32}.get(name, len(raw))]
    raw += bytes(-len(raw) % 8)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def _bits(x: np.ndarray) -> int:
    return int(np.bitwise_count(x).sum())


def _components(groups: list[list[str]]) -> list[set[str]]:
    """Connected components of items linked by appearing in one group (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for g in groups:
        for x in g[1:]:
            parent[find(x)] = find(g[0])
        find(g[0])
    comps: dict[str, set[str]] = defaultdict(set)
    for x in parent:
        comps[find(x)].add(x)
    return list(comps.values())
