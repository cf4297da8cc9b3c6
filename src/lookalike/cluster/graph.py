"""kNN similarity graphs and their connected components (never an n x n matrix).

Everything here works on either
- (n, d) float32 L2-normalised vectors: `knn_edges` finds each vector's k nearest neighbours with faiss
  (exact up to `exact_max` vectors, IVF beyond) and keeps edges whose cosine is at least a threshold; or
- an explicit weighted edge list (a, b, w) over items 0..n-1, e.g. a search mode's fused pair scores.

Components at several thresholds at once are nested: the edges above a higher threshold are a subset of
those above a lower one, so every cluster at the higher threshold lies inside one at the lower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

EXACT_MAX = 50_000  # up to this many vectors a flat (exact) index is fast enough


@dataclass
class Edges:
    """Undirected weighted edges over items 0..n-1 (each pair once, a < b)."""

    n: int
    a: np.ndarray  # int64
    b: np.ndarray  # int64
    w: np.ndarray  # float32 similarity in [0, 1] (cosine for vectors)

    def __len__(self) -> int:
        return len(self.a)

    def above(self, threshold: float) -> "Edges":
        keep = self.w >= threshold
        return Edges(self.n, self.a[keep], self.b[keep], self.w[keep])

    def subgraph(self, members: np.ndarray) -> "Edges":
        """Edges among `members`, renumbered 0..len(members)-1 in the order given."""
        pos = np.full(self.n, -1, np.int64)
        pos[members] = np.arange(len(members))
        keep = (pos[self.a] >= 0) & (pos[self.b] >= 0)
        return Edges(len(members), pos[self.a[keep]], pos[self.b[keep]], self.w[keep])


def check_vectors(X) -> np.ndarray:
    """(n, d) float32, C-contiguous; rows are expected L2-normalised (cosine = inner product)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"need an (n, d) array of vectors, got shape {X.shape}")
    return X


def normalise(X) -> np.ndarray:
    X = check_vectors(X).copy()
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    return X


def make_edges(n: int, a, b, w) -> Edges:
    """Edges from any list of pairs: self-loops dropped, each pair once (a < b) with its best weight."""
    a, b, w = np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(w, np.float32)
    keep = a != b
    a, b, w = a[keep], b[keep], w[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    if len(lo):
        order = np.lexsort((-w, hi, lo))  # best weight first within each pair
        lo, hi, w = lo[order], hi[order], w[order]
        first = np.ones(len(lo), bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, w = lo[first], hi[first], w[first]
    return Edges(n, lo, hi, w)


def build_index(X: np.ndarray, *, exact_max: int = EXACT_MAX, nprobe: int = 8, seed: int = 0):
    """A faiss inner-product index over X: flat when small, IVF (trained on a sample) when large.

    IVF with 2 sqrt(n) lists and 8 probed: each query compares ~6 sqrt(n) vectors; neighbours above a
    clustering threshold are close, so they share a list far more often than arbitrary neighbours."""
    import faiss

    n, d = X.shape
    if n <= exact_max:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(2 * np.sqrt(n))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = X[rng.choice(n, size=min(n, 30 * nlist), replace=False)]
        with single_thread():  # k-means training: extra threads only contend on a small busy box
            index.train(sample)
        index.nprobe = nprobe
    index.add(X)
    return index


class single_thread:
    """faiss on one thread inside the block: single queries and k-means on a small busy machine run
    several times faster without OpenMP contention (measured 14 vs 74 ms per flat query on 2 cores)."""

    def __enter__(self):
        import faiss

        self.faiss, self.threads = faiss, faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)

    def __exit__(self, *exc):
        self.faiss.omp_set_num_threads(self.threads)
        return False


def knn(X, k: int, *, index=None, batch: int = 16384, exact_max: int = EXACT_MAX) -> tuple[np.ndarray, np.ndarray]:
    """k nearest other vectors of every row: (sims (n, k) float32, nbrs (n, k) int64, -1 = none)."""
    X = check_vectors(X)
    n = len(X)
    k = max(0, min(k, n - 1))
    if k == 0:  # one vector (e.g. the one face of an index) has no neighbours
        return np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)
    index = index if index is not None else build_index(X, exact_max=exact_max)
    sims = np.empty((n, k), np.float32)
    nbrs = np.empty((n, k), np.int64)
    for s in range(0, n, batch):
        D, I = index.search(X[s:s + batch], k + 1)
        own = np.arange(s, s + len(D))[:, None]
        # drop the row itself; if the search missed it (ties, IVF), drop the weakest instead
        is_self = I == own
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
        keep = np.ones_like(I, dtype=bool)
        keep[np.arange(len(I)), drop] = False
        sims[s:s + len(D)] = D[keep].reshape(-1, k)
        nbrs[s:s + len(D)] = I[keep].reshape(-1, k)
    return sims, nbrs


def knn_edges(X, *, k: int = 10, threshold: float = 0.0, **kw) -> Edges:
    """Edges of the kNN graph of vectors X whose cosine is >= threshold (k neighbours per vector)."""
    return edges_from_knn(*knn(X, k, **kw), threshold=threshold)


def edges_from_knn(sims: np.ndarray, nbrs: np.ndarray, *, threshold: float = 0.0) -> Edges:
    """Edges of a kNN result (`knn`) whose cosine is >= threshold."""
    rows = np.repeat(np.arange(len(sims)), sims.shape[1])
    s, b = sims.ravel(), nbrs.ravel()
    keep = (b >= 0) & (s >= threshold)
    return make_edges(len(sims), rows[keep], b[keep], s[keep])


def components(edges: Edges, threshold: float | None = None) -> np.ndarray:
    """Connected component label (0..c-1) of every item, over edges with weight >= threshold."""
    # scipy loads here, not at import: every `index` run imports the cluster engine to check its state
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    e = edges if threshold is None else edges.above(threshold)
    g = coo_matrix((np.ones(len(e), np.int8), (e.a, e.b)), shape=(e.n, e.n))
    return connected_components(g, directed=False)[1].astype(np.int64)


def nested_components(edges: Edges, thresholds: Sequence[float]) -> dict[float, np.ndarray]:
    """Components at several thresholds at once: {threshold: labels}; higher thresholds nest inside lower."""
    return {float(t): components(edges, t) for t in sorted(thresholds)}


def groups(labels: np.ndarray) -> list[np.ndarray]:
    """Members of every label, as index arrays, largest group first (ties: first member first)."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    out = np.split(order, cuts) if len(order) else []
    return sorted(out, key=lambda g: (-len(g), g[0]))


def relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0.. by group size (largest first), so runs are comparable."""
    out = np.empty(len(labels), np.int64)
    for i, g in enumerate(groups(labels)):
        out[g] = i
    return out
