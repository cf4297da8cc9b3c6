"""Copy candidates from perceptual hashes: PDQ and pHash of all 8 rotations/mirrors of the query
against the plain hashes of the collection, through an exact Hamming index (never n x n).

Distances become scores in [0, 1] on one fixed, documented scale: 1 at distance 0, 0.8 at the
method's copy threshold (PDQ 64/256, pHash 8/64), falling to 0 at the distance of unrelated
pictures (half the bits). The copy mode's default threshold, 0.8, is therefore exactly the
threshold each hash is known to work at.
"""

from __future__ import annotations

import numpy as np

from lookalike.store.hamming import HammingIndex

# method -> (bits, copy threshold, distance of unrelated images)
SCALES = {"pdq": (256, 64, 128), "phash": (64, 8, 32)}


def hash_score(method: str, d: np.ndarray | int) -> np.ndarray:
    bits, t, rand = SCALES[method]
    d = np.asarray(d, dtype=np.float32)
    near = 1.0 - 0.2 * d / t
    far = 0.8 * (rand - d) / (rand - t)
    return np.clip(np.where(d <= t, near, far), 0.0, 1.0)


def radius_for(method: str, min_score: float) -> int:
    """Largest distance whose score is still >= min_score."""
    bits, t, rand = SCALES[method]
    if min_score >= 0.8:
        return int(np.floor((1.0 - min_score) * t / 0.2 + 1e-9))
    return int(np.floor(rand - min_score * (rand - t) / 0.8 + 1e-9))


class HashMatcher:
    """Both hash indexes of one collection; `codes[method]` is (n, 8, nbytes) per file id order."""

    def __init__(self, ids: np.ndarray, codes: dict[str, np.ndarray]):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.codes = codes
        self.index = {}
        for m, c in codes.items():
            ix = HammingIndex(SCALES[m][0])
            ix.add(self.ids, np.ascontiguousarray(c[:, 0]))
            self.index[m] = ix

    def query(self, variants: dict[str, np.ndarray], min_score: float) -> dict[int, tuple[float, str, int]]:
        """Best (score, method, distance) per indexed id for one query's (8, nbytes) codes."""
        best: dict[int, tuple[float, str, int]] = {}
        for m, codes in variants.items():
            r = radius_for(m, min_score)
            for ids, dists in self.index[m].range_search(codes, r):
                for i, d in zip(ids.tolist(), dists.tolist()):
                    s = float(hash_score(m, d))
                    if i not in best or s > best[i][0]:
                        best[i] = (s, m, int(d))
        return best

    def all_pairs(self, min_score: float) -> dict[tuple[int, int], tuple[float, str, int]]:
        """Best (score, method, distance) for every pair of indexed ids within reach (i < j)."""
        parts = []
        methods = list(self.codes)
        for mi, m in enumerate(methods):
            r = radius_for(m, min_score)
            for v in range(self.codes[m].shape[1]):
                rows, ids, dists = self.index[m].range_pairs(np.ascontiguousarray(self.codes[m][:, v]), r)
                q = self.ids[rows]
                keep = q != ids
                a, b, d = np.minimum(q, ids)[keep], np.maximum(q, ids)[keep], dists[keep]
                parts.append((a, b, hash_score(m, d), np.full(len(a), mi), d))
        if not parts:
            return {}
        a, b, s, mi, d = (np.concatenate(x) for x in zip(*parts))
        order = np.lexsort((-s, b, a))  # per pair, best score first
        a, b, s, mi, d = a[order], b[order], s[order], mi[order], d[order]
        first = np.ones(len(a), bool)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        return {(int(x), int(y)): (float(z), methods[k], int(w))
                for x, y, z, k, w in zip(a[first], b[first], s[first], mi[first], d[first])}
