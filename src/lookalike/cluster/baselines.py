"""Baseline clusterings to compare against, on the same features: DBSCAN, Chinese whispers, k-means.

All take L2-normalised vectors (cosine similarity = inner product) and return a label per row;
DBSCAN's noise points become singletons so every item has a cluster.
"""

from __future__ import annotations

import numpy as np

from lookalike.cluster.graph import Edges, check_vectors, knn_edges, relabel


def dbscan(X, *, threshold: float, min_samples: int = 2) -> np.ndarray:
    """scikit-learn DBSCAN with eps = the euclidean distance of cosine `threshold` on unit vectors."""
    from sklearn.cluster import DBSCAN

    X = check_vectors(X)
    eps = float(np.sqrt(max(0.0, 2 - 2 * threshold)))
    labels = DBSCAN(eps=eps, min_samples=min_samples).fit(X).labels_.astype(np.int64)
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())
    return relabel(labels)


def chinese_whispers(edges: Edges, *, iterations: int = 20, seed: int = 0) -> np.ndarray:
    """Chinese whispers (Biemann 2006) as in dlib: every node takes its neighbours' heaviest label."""
    rng = np.random.default_rng(seed)
    nbrs: list[list[tuple[int, float]]] = [[] for _ in range(edges.n)]
    for a, b, w in zip(edges.a.tolist(), edges.b.tolist(), edges.w.tolist()):
        nbrs[a].append((b, w))
        nbrs[b].append((a, w))
    labels = np.arange(edges.n)
    for _ in range(iterations):
        changed = 0
        for i in rng.permutation(edges.n):
            if not nbrs[i]:
                continue
            votes: dict[int, float] = {}
            for j, w in nbrs[i]:
                votes[labels[j]] = votes.get(labels[j], 0.0) + w
            best = max(votes, key=votes.get)
            if best != labels[i]:
                labels[i] = best
                changed += 1
        if not changed:
            break
    return relabel(labels)


def chinese_whispers_vectors(X, *, threshold: float, k: int = 30, seed: int = 0) -> np.ndarray:
    """Chinese whispers over the kNN graph edges with cosine >= threshold."""
    return chinese_whispers(knn_edges(X, k=k, threshold=threshold), seed=seed)


def kmeans(X, *, k: int, seed: int = 0) -> np.ndarray:
    """Spherical k-means (faiss) with a given number of clusters, e.g. the true k."""
    import faiss

    X = check_vectors(X)
    k = max(1, min(k, len(X)))
    km = faiss.Kmeans(X.shape[1], k, niter=50, nredo=3, spherical=True, seed=seed, verbose=False)
    km.train(X)
    return relabel(km.index.search(X, 1)[1][:, 0].astype(np.int64))
