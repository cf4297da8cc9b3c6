"""Refinement of first clusters (connected components of the kNN graph), without learning.

Connected components chain: one weak bridge (a blurred face, a look-alike, a photo of two rooms) joins
two groups. Each first cluster is therefore re-clustered on its own similarity matrix (members x
members, small), where an exact method is affordable:

1. similarity: cosine of the main features, optionally mixed with attribute features (colour, scene,
   face quality...) by `attr_weight`, and averaged with a *context* similarity: the cosine between two
   members' rows of the global kNN graph (weights = cosine above `floor`). Two photos of one person
   share neighbours even when their own cosine is middling (profile vs frontal), while a look-alike
   bridge shares few; on faces_large this lifts BCubed F from 0.92 (cosine alone) to 0.94;
2. split: average-linkage agglomeration cut at `link_threshold` - a group joins another only if the
   *mean* similarity between them is high enough, so a single bridge no longer suffices (split="whispers":
   Chinese whispers over the member pairs >= link_threshold instead; measured worse on all sets so far);
3. confidence per member: its mean similarity to the rest of its (new) cluster, ramped to [0, 1]
   between `link_threshold - margin` and `link_threshold + margin`;
4. members whose confidence is below `min_confidence` move to the sub-cluster they are most similar
   to on average if that one accepts them, otherwise they become singletons.

Small clusters must be tighter (`split_loose_small`, faces): a cluster of two or three faces is only
as sure as its one or three pairs, while a larger one averages many. In a small album most such clusters
are stray photos of two people (a profile, a blurred shot) that found each other at cosine 0.90-0.94,
so a pair needs cosine >= 0.94 and a triple a mean >= 0.93 (bench_face_clusters.py, tuning half: pairs
below 0.95 were another person's 4 times in 5), else it splits.

Cannot-link (`sources`): items from one source (two faces of one photo) are never one person. Their
pair gets a distance no average can absorb (CANNOT), so average linkage never merges two groups
holding such a pair and no member moves into a group holding its sibling; first clusters too small
to refine are split when they hold one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.cluster.graph import groups, relabel

CANNOT = 1e9  # distance of a cannot-link pair: larger than any mean of up to 5000 x 5000 distances can hide


def context_graph(sims: np.ndarray, nbrs: np.ndarray, *, floor: float):
    """Sparse (n, n) kNN graph with rows L2-normalised: weight max(cos - floor, 0), self weight 1 - floor.

    The dot product of two rows is the context similarity of two items (shared, similar neighbours)."""
    from scipy.sparse import csr_matrix

    n, k = sims.shape
    rows = np.concatenate([np.repeat(np.arange(n), k), np.arange(n)])
    cols = np.concatenate([nbrs.ravel(), np.arange(n)])
    vals = np.concatenate([np.maximum(sims.ravel() - floor, 0), np.full(n, 1 - floor)]).astype(np.float32)
    keep = (cols >= 0) & (vals > 0)
    return row_normalised(csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n)))


@dataclass
class Refined:
    labels: np.ndarray  # int64 cluster label per item (0.. by size)
    confidence: np.ndarray  # float32 in [0, 1] per item (singletons: 1)


def pair_graph(edges, *, self_weight: float = 1.0):
    """Sparse symmetric (n, n) matrix of explicit pair scores (a mode's fused scores), unit diagonal.

    Used in place of vectors for clusters found from an edge list: missing pairs count as 0."""
    from scipy.sparse import csr_matrix

    n = edges.n
    rows = np.concatenate([edges.a, edges.b, np.arange(n)])
    cols = np.concatenate([edges.b, edges.a, np.arange(n)])
    vals = np.concatenate([edges.w, edges.w, np.full(n, self_weight)]).astype(np.float32)
    return csr_matrix((vals, (rows, cols)), shape=(n, n))


def row_normalised(W):
    """Rows scaled to unit L2 norm: their dot products are context similarities."""
    from scipy.sparse import csr_matrix

    norms = np.sqrt(np.asarray(W.multiply(W).sum(axis=1)).ravel())
    return csr_matrix(W.multiply(1 / np.maximum(norms, 1e-12)[:, None]))


def similarity(X: np.ndarray | None, members: np.ndarray, *, attributes: np.ndarray | None = None,
               attr_weight: float = 0.0, context=None, pairs=None) -> np.ndarray:
    """Member x member similarity: cosine of X (or the block of a `pair_graph` when X is None), mixed with
    the cosine of attribute rows if given, averaged with the context similarity if a context is given."""
    if X is not None:
        Xm = X[members]
        S = Xm @ Xm.T
    else:
        S = pairs[members][:, members].toarray()
    if attributes is not None and attr_weight > 0:
        A = attributes[members]
        S = (1 - attr_weight) * S + attr_weight * (A @ A.T)
    if context is not None:
        Wm = context[members]
        S = (S + (Wm @ Wm.T).toarray()) / 2
    return np.asarray(S, np.float32)


def average_linkage(S: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clusters of a similarity matrix, merging while mean similarity >= threshold."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    m = len(S)
    if m < 2:
        return np.zeros(m, np.int64)
    D = np.maximum(1.0 - S.astype(np.float64), 0.0)  # unbounded above: cannot-link pairs stay CANNOT apart
    np.fill_diagonal(D, 0.0)
    Z = linkage(squareform(D, checks=False), method="average")
    return fcluster(Z, t=1.0 - threshold, criterion="distance").astype(np.int64) - 1


def whispers(S: np.ndarray, threshold: float) -> np.ndarray:
    """Chinese whispers clusters over the member pairs with similarity >= threshold."""
    from lookalike.cluster.baselines import chinese_whispers
    from lookalike.cluster.graph import Edges

    a, b = np.nonzero(np.triu(S >= threshold, 1))
    return chinese_whispers(Edges(len(S), a, b, S[a, b]))


def mean_to_groups(S: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(m, c) mean similarity of each member to each sub-cluster, excluding itself."""
    c = labels.max() + 1
    onehot = np.zeros((len(labels), c), np.float32)
    onehot[np.arange(len(labels)), labels] = 1
    sums = S @ onehot - onehot * np.diag(S)[:, None]
    counts = onehot.sum(axis=0)[None, :] - onehot
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def cannot_link(S: np.ndarray, members: np.ndarray, sources: np.ndarray | None) -> np.ndarray:
    """S with the pairs of members from one source set to 1 - CANNOT (see the module doc)."""
    if sources is None:
        return S
    src = np.asarray(sources)[members]
    same = src[:, None] == src[None, :]
    np.fill_diagonal(same, False)
    if same.any():
        S = S.astype(np.float64)
        S[same] = 1.0 - CANNOT
    return S


def refine_each(labels, split, *, max_size: int = 5000, sources: np.ndarray | None = None) -> Refined:
    """Re-cluster every first cluster of 3..max_size members with `split(members) -> (sub-labels, confidence)`
    (smaller and larger ones stay whole, confidence 1; a pair from one source splits) and number all
    parts globally."""
    labels = np.asarray(labels, np.int64)
    out = np.empty(len(labels), np.int64)
    conf = np.ones(len(labels), np.float32)
    next_label = 0
    for g in groups(labels):
        if len(g) == 2 and sources is not None and sources[g[0]] == sources[g[1]]:
            out[g] = next_label, next_label + 1
            next_label += 2
            continue
        if len(g) < 3 or len(g) > max_size:
            out[g] = next_label
            next_label += 1
            continue
        sub, c = split(g)
        out[g] = sub + next_label
        conf[g] = c
        next_label += int(sub.max()) + 1
    return Refined(relabel(out), conf)


def refine(X, labels, *, link_threshold: float, min_confidence: float = 0.5, margin: float = 0.1,
           attributes: np.ndarray | None = None, attr_weight: float = 0.0, context=None, pairs=None,
           split: str = "average", max_size: int = 5000, sources: np.ndarray | None = None) -> Refined:
    """Split and clean every first cluster (see the module doc); clusters above max_size are kept whole.

    X: (n, d) unit vectors, or None with `pairs` = a `pair_graph` of explicit scores. sources: per
    item, where it comes from (a file id); items of one source never share a cluster."""
    X = None if X is None else np.asarray(X, np.float32)

    def one(g):
        S = similarity(X, g, attributes=attributes, attr_weight=attr_weight, context=context, pairs=pairs)
        S = cannot_link(S, g, sources)
        sub = average_linkage(S, link_threshold) if split == "average" else whispers(S, link_threshold)
        M = mean_to_groups(S, sub)
        own = M[np.arange(len(g)), sub]
        c = np.clip((own - (link_threshold - margin)) / (2 * margin), 0, 1)
        c[np.isnan(own)] = 1.0  # alone in its sub-cluster
        low = np.flatnonzero(c < min_confidence)
        if len(low):
            sub = sub.copy()
            alone = sub.max() + 1
            for i in low:
                row = np.where(np.isnan(M[i]), -np.inf, M[i])
                best = int(np.argmax(row))
                if best != sub[i] and row[best] >= link_threshold:
                    sub[i] = best
                else:
                    sub[i], alone = alone, alone + 1
            M = mean_to_groups(S, sub)
            own = M[np.arange(len(g)), sub]
            c = np.where(np.isnan(own), 1.0, np.clip((own - (link_threshold - margin)) / (2 * margin), 0, 1))
        return sub, c

    return refine_each(labels, one, max_size=max_size, sources=sources)


def split_loose_small(X: np.ndarray, refined: Refined, min_mean: dict[int, float]) -> Refined:
    """Split clusters of m members (m a key of min_mean, e.g. {2: 0.94, 3: 0.93}) whose mean pairwise
    cosine is below min_mean[m]: a triple keeps its best pair if that pair passes the pair bar (m = 2),
    the others become singletons (confidence 1, as every singleton)."""
    labels, conf = refined.labels.copy(), refined.confidence.copy()
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for g in groups(labels):
        bar = min_mean.get(len(g))
        if bar is None:
            continue
        S = X[g] @ X[g].T
        iu = np.triu_indices(len(g), 1)
        if S[iu].mean() >= bar:
            continue
        best = int(np.argmax(S[iu]))
        a, b = iu[0][best], iu[1][best]
        keep = {a, b} if len(g) > 2 and S[a, b] >= min_mean.get(2, np.inf) else {0}
        for x in range(len(g)):
            if x not in keep:
                labels[g[x]], conf[g[x]] = next_label, 1.0
                next_label += 1
    return Refined(relabel(labels), conf)
