"""Keypoint votes: copy candidates from SIFT descriptor neighbours (sub-image search).

A CNN descriptor sums up the whole frame, so a crop of a crop, a picture shown small in a screenshot
or a rotated copy can rank far down its original's neighbours (26th-205th on held-out edits). Their
SIFT keypoints still land on the original's: SIFT is scale- and rotation-invariant and local. Every
stored RootSIFT descriptor (feature `local`, ~275 a file, 128 bytes each) goes into one faiss IVF index; each one's
nearest neighbours in other images are votes when distinctive (closer than RATIO times its K-th
neighbour, so repetitive texture that matches everything votes for nothing, and than MAX_DISTANCE). Two images with
MIN_VOTES or more votes, among each other's TOP_N best, are worth verifying.

near_duplicate: with hash pairs, these candidates reach every copy group (perfect verification would
give closure recall 1.000) with 5,870 pairs, of which 95 % are copies; the CNN neighbours and rotated
views they replace needed 19,068 pairs for 0.998.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import numpy as np

K = 10  # neighbours per descriptor
RATIO = 0.7  # a neighbour votes when its squared distance is under RATIO x that of the K-th neighbour
MAX_DISTANCE = 40_000  # squared; no match beyond it counts (uint8 RootSIFT of length 512: 0.39 of it), as
# in a small collection the K-th neighbour is no nearer than a random one
MIN_VOTES = 4  # votes (both directions summed) that make a pair worth verifying
TOP_N = 10  # ... among the best TOP_N of either image
EXACT_BELOW = 20_000  # descriptors: below this a flat (exact) index, above an IVF one


def _faiss_index(X: np.ndarray):
    """uint8 descriptors kept as bytes (exact distances, 4x less memory and 2x faster than float32):
    an exact index for small collections, an IVF one (about 2 x sqrt(n) lists, 3 searched) for larger ones."""
    import faiss

    d, direct = X.shape[1], faiss.ScalarQuantizer.QT_8bit_direct
    if len(X) < EXACT_BELOW:
        ix = faiss.IndexScalarQuantizer(d, direct)
    else:
        nlist = int(2 ** round(np.log2(2 * np.sqrt(len(X)))))
        ix = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(d), d, nlist, direct, faiss.METRIC_L2, False)
        # coarse cells only need to split the space, not converge: a small sample, few iterations
        ix.cp.niter, ix.cp.min_points_per_centroid = 10, 16
        sample = np.random.default_rng(0).choice(len(X), min(len(X), 20 * nlist), replace=False)
        ix.train(X[np.sort(sample)].astype(np.float32))
        ix.nprobe = 3
    for rows in _chunks(X):
        ix.add(rows)
    return ix


def _chunks(X: np.ndarray, n: int = 65536):
    """float32 blocks of uint8 rows, so that a large collection is never held as floats at once."""
    for i in range(0, len(X), n):
        yield X[i:i + n].astype(np.float32)


def _search(ix, X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [ix.search(rows, k) for rows in _chunks(X)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class KeypointIndex:
    """Every indexed file's SIFT descriptors, the votes between indexed files, and votes for a query."""

    def __init__(self, local: dict[int, object]):
        import faiss

        ids = sorted(i for i, lf in local.items() if len(lf))
        self.X = np.concatenate([local[i].desc for i in ids]) if ids else np.zeros((0, 128), np.uint8)
        self.owner = np.concatenate([np.full(len(local[i]), i, np.int64) for i in ids]) if ids else np.zeros(0, np.int64)
        self.votes: dict[tuple[int, int], int] = {}
        self.far = np.zeros(0, np.float32)  # squared distance of each descriptor's K-th neighbour
        if not len(self.X):
            return
        faiss.omp_set_num_threads(2)
        self.ix = _faiss_index(self.X)
        dist, nb = _search(self.ix, self.X, K + 1)  # + 1: each descriptor finds itself
        self.far = _far(dist, nb)
        self.votes = _count(self.owner, _votes_mask(dist, nb, self.owner, self.owner), nb, self.owner)

    @functools.cached_property
    def _candidates(self) -> dict[tuple[int, int], int]:
        best: dict[int, list] = defaultdict(list)
        for (a, b), v in self.votes.items():
            if v >= MIN_VOTES:
                best[a].append((v, b))
                best[b].append((v, a))
        out = {}
        for a, row in best.items():
            for v, b in sorted(row, reverse=True)[:TOP_N]:
                out[(min(a, b), max(a, b))] = v
        return out

    def candidates(self) -> dict[tuple[int, int], int]:
        """Pairs worth verifying -> votes: MIN_VOTES or more, among the TOP_N of either image."""
        return dict(self._candidates)

    @functools.cached_property
    def _by_file(self) -> dict[int, list[tuple[int, int]]]:
        out: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for (a, b), v in self._candidates.items():
            out[a].append((b, v))
            out[b].append((a, v))
        return out

    def of_file(self, fid: int) -> dict[int, int]:
        """What candidates() pairs an indexed file with -> {other file: votes}, most votes first."""
        return dict(sorted(self._by_file.get(fid, ()), key=lambda bv: -bv[1]))

    def query(self, desc: np.ndarray) -> dict[int, int]:
        """Votes of a file outside the index, counted as for indexed pairs: its descriptors' neighbours
        here, and indexed descriptors whose nearest query descriptor beats their own K-th neighbour
        -> {file: votes} for files with MIN_VOTES or more, the TOP_N best (and the query's own file, if
        it is indexed)."""
        import faiss

        if not len(self.X) or not len(desc):
            return {}
        Q = np.asarray(desc, np.float32)
        dist, nb = self.ix.search(Q, K)
        qown = np.full(len(Q), -1, np.int64)
        fwd = _count(qown, _votes_mask(dist, nb, qown, self.owner), nb, self.owner)
        flat = faiss.IndexFlatL2(Q.shape[1])
        flat.add(Q)
        back, _ = _search(flat, self.X, 1)
        votes = defaultdict(int, {b: v for (_, b), v in fwd.items()})
        beaten = back[:, 0] <= np.minimum(RATIO * self.far, MAX_DISTANCE)
        for b, v in zip(*np.unique(self.owner[beaten], return_counts=True)):
            votes[int(b)] += int(v)
        return dict(sorted(((b, v) for b, v in votes.items() if v >= MIN_VOTES), key=lambda bv: -bv[1])[:TOP_N + 1])


def _far(dist: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """Squared distance of each row's last neighbour; 0 where the index found fewer (an IVF cell can
    hold too few): no measure of distinctiveness, so only identical descriptors vote there."""
    return np.where(nb[:, -1] >= 0, dist[:, -1], 0.0).astype(np.float32)


def _votes_mask(dist: np.ndarray, nb: np.ndarray, qown: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Which neighbours vote: another image's, and distinctive (RATIO x the last neighbour's distance)."""
    nown = np.where(nb >= 0, owner[np.clip(nb, 0, None)], -1)
    return (nb >= 0) & (nown != qown[:, None]) & (dist <= np.minimum(RATIO * _far(dist, nb), MAX_DISTANCE)[:, None])


def _count(qown: np.ndarray, mask: np.ndarray, nb: np.ndarray, owner: np.ndarray) -> dict[tuple[int, int], int]:
    """Votes per unordered pair of images: one per query descriptor and image it found."""
    r, c = np.nonzero(mask)
    if not len(r):
        return {}
    span = int(owner.max()) + 2  # owners are file ids >= 0; a query is -1
    hit = np.unique(r.astype(np.int64) * span + owner[nb[r, c]])  # one vote per (descriptor, image)
    a, b = qown[hit // span], hit % span
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs, n = np.unique((lo + 1) * span + hi, return_counts=True)
    return {(int(x // span) - 1, int(x % span)): int(v) for x, v in zip(pairs, n)}


def keypoint_index(index) -> KeypointIndex:
    """The index's keypoint votes, built once per process and rebuilt when `local` features change."""

    def build():
        from lookalike.features import registry

        ex = registry.get("local")
        return KeypointIndex({fid: ex.decode(blob) for fid, blob in index.catalog.iter_feature("local", ex.version)})

    return index.cached("keypoints", ["local"], build)
