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

    def __init__(self, ids: np.ndarray, codes: dict[str, np.ndarray], quality: np.ndarray | None = None):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.codes = codes
        self.quality = quality  # PDQ quality (0-100) per id, same order; below 50 PDQ calls a hash unreliable
        self._row = {int(i): n for n, i in enumerate(self.ids.tolist())}
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

    def pair_score(self, method: str, a: int, b: int) -> float:
        """Score of one pair by one method: b's plain code against a's 8 rotations/mirrors."""
        ra, rb = self._row.get(a), self._row.get(b)
        if ra is None or rb is None:
            return 0.0
        c = self.codes[method]
        d = np.unpackbits(np.bitwise_xor(c[ra], c[rb, 0][None]), axis=1).sum(axis=1).min()
        return float(hash_score(method, int(d)))

    def weak_pair(self, a: int, b: int, *, min_quality: int = 50) -> bool:
        """A hash match the other hash contradicts (scores it as unrelated, < 0.5), or one between
        low-content pictures (PDQ quality < 50: dark, flat, tiny) that the two hashes do not both
        confirm: a lone 64-bit pHash collides for different small dark photos (distance 0 seen)."""
        ra, rb = self._row.get(a), self._row.get(b)
        if ra is None or rb is None:
            return False
        both = min(self.pair_score("pdq", a, b), self.pair_score("phash", a, b))
        low = self.quality is not None and min(self.quality[ra], self.quality[rb]) < min_quality
        return both < 0.5 or (low and both < 0.8)

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
