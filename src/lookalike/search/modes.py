"""Search modes: what 'alike' means, which stored features it needs, how it scores.

A mode answers two questions on one collection: `search` (what in the collection looks like this
query?) and `pairs` (which pairs of the collection look alike?). Both work from candidates given by an
index (never an n x n matrix) and return file ids with a score in [0, 1], the deciding method and
the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from lookalike.features import hashes as H
from lookalike.features import registry
from lookalike.search.hashmatch import HashMatcher

if TYPE_CHECKING:
    from lookalike.api import Index

Hit = tuple[int, float, str, dict]  # file id, score, method, details
PairHit = tuple[int, int, float, str, dict]


@dataclass
class Query:
    """A query image's identity and features (computed with the same extractors as the index)."""

    key: str
    sha256: str
    pixel_digest: str
    features: dict
    rgb: np.ndarray
    size: tuple[int, int]  # (width, height) of the original, after EXIF orientation


class Mode:
    name: ClassVar[str]
    features: ClassVar[tuple[str, ...]]
    threshold: ClassVar[float]  # default: score at or above which two images count as alike
    # features pairs() computes on first use for (nearly) every file: `dedup` computes them with
    # `features`, in one decoding pass, rather than in a pass of their own
    pair_features: ClassVar[tuple[str, ...]] = ()

    def search(self, index: Index, q: Query, k: int, min_score: float) -> list[Hit]:
        raise NotImplementedError

    def pairs(self, index: Index, threshold: float) -> list[PairHit]:
        raise NotImplementedError


class HashMode(Mode):
    """Copies by perceptual hashes alone (no models, fastest): re-encoded, resized, recoloured,
    flipped or rotated by 90 degrees, letterboxed or padded, lightly overlaid."""

    name, features, threshold = "hash", ("phash8", "pdq8"), 0.8

    def _matcher(self, index: Index) -> HashMatcher:
        def build():
            ids, pdq, ph, quality = [], [], [], []
            pdq_rows = dict(index.catalog.iter_feature("pdq8"))
            for fid, blob in index.catalog.iter_feature("phash8"):
                if fid in pdq_rows:
                    ids.append(fid)
                    ph.append(np.frombuffer(blob, np.uint8).reshape(8, 8))
                    codes, q = H.split_pdq8(np.frombuffer(pdq_rows[fid], np.uint8))
                    pdq.append(codes)
                    quality.append(q)
            if not ids:
                return HashMatcher(np.zeros(0, np.int64), {"pdq": np.zeros((0, 8, 32), np.uint8), "phash": np.zeros((0, 8, 8), np.uint8)})
            return HashMatcher(np.array(ids), {"pdq": np.stack(pdq), "phash": np.stack(ph)}, np.array(quality))

        return index.cached("hashmatcher", ("phash8", "pdq8"), build)

    def search(self, index, q, k, min_score):
        variants = {
            "pdq": H.split_pdq8(q.features["pdq8"])[0],
            "phash": np.asarray(q.features["phash8"]).reshape(8, 8),
        }
        hits = [(fid, s, m, {"distance": d}) for fid, (s, m, d) in self._matcher(index).query(variants, min_score).items()]
        hits += [h for h in ExactMode().search(index, q, k, min_score)]
        return _best_per_id(hits)

    def pairs(self, index, threshold):
        found = self._matcher(index).all_pairs(threshold)
        hits = [(a, b, s, m, {"distance": d}) for (a, b), (s, m, d) in found.items()]
        hits += ExactMode().pairs(index, threshold)
        return _best_per_pair(hits)


class _Groups:
    """Union-find over file ids."""

    def __init__(self):
        self.parent: dict[int, int] = {}

    def root(self, i: int) -> int:
        while self.parent.setdefault(i, i) != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def same(self, a: int, b: int) -> bool:
        return self.root(a) == self.root(b)

    def join(self, a: int, b: int) -> bool:
        ra, rb = self.root(a), self.root(b)
        self.parent[ra] = rb
        return ra != rb


def transitive_pairs(direct: list[PairHit], *, max_group: int = 500) -> list[PairHit]:
    """Copies of copies: pairs joined only through other copies (two crops of one photo that share no
    pixels), scored by the weakest link of the strongest path (maximum spanning tree). Groups larger
    than max_group are left as direct pairs only (their closure would be quadratic in size). Pairs in
    `direct` are not repeated."""
    forest = _Groups()
    tree: dict[int, list[tuple[int, float]]] = {}
    for a, b, s, *_ in sorted(direct, key=lambda h: -h[2]):
        if forest.join(a, b):
            tree.setdefault(a, []).append((b, s))
            tree.setdefault(b, []).append((a, s))
    groups: dict[int, list[int]] = {}
    for i in tree:
        groups.setdefault(forest.root(i), []).append(i)
    have = {(h[0], h[1]) for h in direct}
    out = []
    for members in groups.values():
        if len(members) > max_group:
            continue
        for src in members:  # bottleneck score from src to every other member along the tree
            best, stack = {src: 1.0}, [src]
            while stack:
                u = stack.pop()
                for v, s in tree[u]:
                    if v not in best:
                        best[v] = min(best[u], s)
                        stack.append(v)
            for dst, s in best.items():
                if src < dst and (src, dst) not in have:
                    out.append((src, dst, s, "transitive", {}))
    return out


def _best_per_id(hits: list[Hit]) -> list[Hit]:
    best: dict[int, Hit] = {}
    for h in hits:
        if h[0] not in best or h[1] > best[h[0]][1]:
            best[h[0]] = h
    return sorted(best.values(), key=lambda h: -h[1])


def _best_per_pair(hits: list[PairHit]) -> list[PairHit]:
    best: dict[tuple[int, int], PairHit] = {}
    for h in hits:
        key = (min(h[0], h[1]), max(h[0], h[1]))
        if key not in best or h[2] > best[key][2]:
            best[key] = (key[0], key[1], *h[2:])
    return sorted(best.values(), key=lambda h: (-h[2], h[0], h[1]))


# Modes of layers above the engine register themselves when their package is imported, on first use.
PLUGIN_MODES = {"text-guided": "lookalike.text"}


def get_mode(name: str) -> Mode:
    if name not in MODES and name in PLUGIN_MODES:
        import importlib

        importlib.import_module(PLUGIN_MODES[name])
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; choose one of: {', '.join([*MODES, *PLUGIN_MODES])}")
    return MODES[name]


def query_features(mode: Mode) -> list[str]:
    return [n for n in mode.features if n in registry.names()]


# The other modes import this module's Mode, so they register after it is defined.
from lookalike.search.copy import CopyMode  # noqa: E402
from lookalike.search.exact import ExactMode  # noqa: E402
from lookalike.search.similar import SimilarMode  # noqa: E402
from lookalike.search.background import BackgroundMode  # noqa: E402
from lookalike.search.faces import FaceMode  # noqa: E402

MODES: dict[str, Mode] = {"exact": ExactMode(), "hash": HashMode(), "copy": CopyMode(), "similar": SimilarMode(), "background": BackgroundMode(), "face": FaceMode()}
