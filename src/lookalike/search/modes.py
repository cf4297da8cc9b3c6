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


class Mode:
    name: ClassVar[str]
    features: ClassVar[tuple[str, ...]]
    threshold: ClassVar[float]  # default: score at or above which two images count as alike

    def search(self, index: Index, q: Query, k: int, min_score: float) -> list[Hit]:
        raise NotImplementedError

    def pairs(self, index: Index, threshold: float) -> list[PairHit]:
        raise NotImplementedError


class ExactMode(Mode):
    """Byte-identical files (sha256) or identical decoded pixels."""

    name, features, threshold = "exact", (), 1.0

    def search(self, index, q, k, min_score):
        hits = {}
        for r in index.catalog.files():
            if r.sha256 == q.sha256:
                hits[r.id] = (r.id, 1.0, "sha256", {})
            elif r.pixel_digest == q.pixel_digest and r.id not in hits:
                hits[r.id] = (r.id, 1.0, "pixels", {})
        return list(hits.values())[:k]

    def pairs(self, index, threshold):
        out: dict[tuple[int, int], PairHit] = {}
        for attr, method in (("sha256", "sha256"), ("pixel_digest", "pixels")):
            groups: dict[str, list[int]] = {}
            for r in index.catalog.files():
                groups.setdefault(getattr(r, attr), []).append(r.id)
            for ids in groups.values():
                for a_i, a in enumerate(ids):
                    for b in ids[a_i + 1 :]:
                        out.setdefault((a, b), (a, b, 1.0, method, {}))
        return list(out.values())


class HashMode(Mode):
    """Copies by perceptual hashes alone (no models, fastest): re-encoded, resized, recoloured,
    flipped or rotated by 90 degrees, letterboxed or padded, lightly overlaid."""

    name, features, threshold = "hash", ("phash8", "pdq8"), 0.8

    def _matcher(self, index: Index) -> HashMatcher:
        def build():
            ids, pdq, ph = [], [], []
            pdq_rows = dict(index.catalog.iter_feature("pdq8"))
            for fid, blob in index.catalog.iter_feature("phash8"):
                if fid in pdq_rows:
                    ids.append(fid)
                    ph.append(np.frombuffer(blob, np.uint8).reshape(8, 8))
                    pdq.append(H.split_pdq8(np.frombuffer(pdq_rows[fid], np.uint8))[0])
            if not ids:
                return HashMatcher(np.zeros(0, np.int64), {"pdq": np.zeros((0, 8, 32), np.uint8), "phash": np.zeros((0, 8, 8), np.uint8)})
            return HashMatcher(np.array(ids), {"pdq": np.stack(pdq), "phash": np.stack(ph)})

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


def verified_copy_score(v: float) -> float:
    """Geometric verification score (>= 0.5 = confirmed) on the copy scale (>= 0.8 = copy)."""
    return 0.8 + 0.4 * (v - 0.5) if v >= 0.5 else 1.6 * v


class CopyMode(HashMode):
    """Copies that hashes miss (crops keeping half the picture, rotations by any angle, perspective,
    screenshots, heavy overlays): CNN neighbours are confirmed geometrically with SIFT + RANSAC."""

    name, features, threshold = "copy", ("phash8", "pdq8", "cnn"), 0.8
    neighbours = 10  # CNN candidates per image
    min_cosine = 0.55  # below this, CNN candidates are not worth verifying

    def _verify(self, index, pairs: list[tuple[int, int]], extra: dict | None = None) -> dict:
        from lookalike.search.verify import verify

        ids = sorted({i for p in pairs for i in p if i >= 0})
        local = index.feature_values(ids, "local")
        local.update(extra or {})
        out = {}
        for a, b in pairs:
            if a in local and b in local:
                out[(a, b)] = verify(local[a], local[b])
        return out

    def search(self, index, q, k, min_score):
        hits = {h[0]: h for h in super().search(index, q, k, min_score)}
        sims, ids = index.vectors("cnn").search(np.asarray(q.features["cnn"], np.float32)[None], max(k, self.neighbours))
        cands = [int(i) for s_, i in zip(sims[0], ids[0]) if i >= 0 and s_ >= self.min_cosine
                 and not (int(i) in hits and hits[int(i)][1] >= self.threshold)]
        if cands:
            from lookalike.features.local import extract_local

            qloc = q.features.get("local")
            if qloc is None:
                qloc = extract_local(q.rgb)
            for (a, b), v in self._verify(index, [(-1, c) for c in cands], {-1: qloc}).items():
                s = verified_copy_score(v.score)
                if s >= min_score and (b not in hits or s > hits[b][1]):
                    hits[b] = (b, s, "sift", {"inliers": v.inliers, "verification": round(v.score, 3)})
        return sorted(hits.values(), key=lambda h: -h[1])

    def pairs(self, index, threshold):
        found = {(h[0], h[1]): h for h in super().pairs(index, threshold)}
        vx = index.vectors("cnn")
        sims, nbr = vx.knn_graph(self.neighbours)
        cands = set()
        for a, row_s, row_i in zip(vx.ids(), sims, nbr):
            for s_, b in zip(row_s, row_i):
                if b >= 0 and s_ >= self.min_cosine:
                    key = (int(min(a, b)), int(max(a, b)))
                    if key not in found:
                        cands.add(key)
        for (a, b), v in self._verify(index, sorted(cands)).items():
            s = verified_copy_score(v.score)
            if s >= threshold:
                found[(a, b)] = (a, b, s, "sift", {"inliers": v.inliers, "verification": round(v.score, 3)})
        return _best_per_pair(list(found.values()))


class SimilarMode(Mode):
    """The same object or place: CNN cosine, re-ranked by geometric verification of the top hits."""

    name, features, threshold = "similar", ("cnn",), 0.75
    rerank = 20  # top hits verified with SIFT

    def search(self, index, q, k, min_score):
        from lookalike.features.local import extract_local
        from lookalike.search.verify import verify

        sims, ids = index.vectors("cnn").search(np.asarray(q.features["cnn"], np.float32)[None], max(k, self.rerank))
        hits = [(int(i), float(s_)) for s_, i in zip(sims[0], ids[0]) if i >= 0]
        top = [i for i, _ in hits[: self.rerank]]
        local = index.feature_values(top, "local")
        qloc = extract_local(q.rgb)
        out = []
        for i, cos in hits:
            det = {"cosine": round(cos, 4)}
            score = cos
            if i in local:
                v = verify(qloc, local[i])
                det.update(inliers=v.inliers, verification=round(v.score, 3))
                score = similar_score(cos, v.inliers)
            out.append((i, float(np.clip(score, 0, 1)), "cnn+sift" if det.get("inliers") else "cnn", det))
        return sorted(out, key=lambda h: -h[1])

    def pairs(self, index, threshold):
        vx = index.vectors("cnn")
        sims, nbr = vx.knn_graph(self.rerank)
        out = []
        for a, row_s, row_i in zip(vx.ids(), sims, nbr):
            for s_, b in zip(row_s, row_i):
                if b >= 0 and s_ >= threshold:
                    out.append((int(a), int(b), float(s_), "cnn", {"cosine": round(float(s_), 4)}))
        return _best_per_pair(out)


def similar_score(cosine: float, inliers: int) -> float:
    """Cosine, lifted by geometric agreement: 15+ RANSAC inliers close half the gap to 1."""
    return 1 - (1 - cosine) * (1 - 0.5 * min(inliers, 15) / 15)


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


MODES: dict[str, Mode] = {m.name: m for m in (ExactMode(), HashMode(), CopyMode(), SimilarMode())}


def get_mode(name: str) -> Mode:
    if name not in MODES:
        raise ValueError(f"unknown mode {name!r}; choose one of: {', '.join(MODES)}")
    return MODES[name]


def query_features(mode: Mode) -> list[str]:
    return [n for n in mode.features if n in registry.names()]


# Background mode imports this module's Mode, so it registers after it is defined.
from lookalike.search.background import BackgroundMode  # noqa: E402

MODES["background"] = BackgroundMode()
