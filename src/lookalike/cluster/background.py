"""Background clusters: groups of photos taken in front of one background that never chain through one
weak pair.

Evidence: the background mode's fused pair scores (masked CNN, background keypoints with RANSAC, colour;
pairs without verified geometry already carry its margin, search/background.py), every kNN pair scored.

1. *Core groups*: connected components of the pairs >= `threshold`, each split by average linkage on
   the pair scores averaged with their context similarity (refine.py, `link_threshold`): a group joins
   another only when the *mean* score between them is high, so one look-alike pair (two rooms furnished
   alike, neighbouring streets, two landmarks in the same light) does not chain two places.
2. *Attach*: a photo left alone (a second view of a room, a selfie whose person hides most of the
   wall) joins the one group it has at least `attach_links` pairs >= `attach_threshold` with, covering
   at least `attach_share` of that group's members. Attaching never merges two groups, and one pair
   alone is never enough; a photo that two groups claim equally stays alone.

Measured on ../shared/data/background (BCubed F, `lookalike eval cluster --sets background`): 0.904 before
(average linkage alone, no margin), core groups alone 0.898, with attach 0.941 (P 0.973, R 0.911); on
the half of the backgrounds used to choose the parameters 0.951, on the held-out half 0.977.

The module also holds what image clusters share with background clusters: the mode's pair scores as
edges (`mode_edges`) and the online neighbours from the mode's own search (`add_by_search`).
"""

from __future__ import annotations

import numpy as np

from lookalike.cluster import graph as G
from lookalike.cluster.refine import Refined, pair_graph, refine, row_normalised

DEFAULTS = dict(threshold=0.65, link_threshold=0.6, attach_threshold=0.55, attach_links=2, attach_share=0.25)


def cluster_background(edges: G.Edges, *, threshold: float = DEFAULTS["threshold"],
                       link_threshold: float = DEFAULTS["link_threshold"],
                       attach_threshold: float = DEFAULTS["attach_threshold"],
                       attach_links: int = DEFAULTS["attach_links"], attach_share: float = DEFAULTS["attach_share"],
                       refiner: str = "default", gcn_weights=None) -> Refined:
    """Background clusters from pair-score edges (all pairs scored, also below threshold): core groups,
    then lone photos attached by support (see the module doc). refiner "none": components only."""
    from lookalike.cluster.engine import cluster_edges

    if refiner != "default":
        return cluster_edges(edges, threshold=threshold, refiner=refiner, link_threshold=link_threshold,
                             gcn_weights=gcn_weights)
    first = G.components(edges, threshold)
    P = pair_graph(edges)
    core = refine(None, first, link_threshold=link_threshold, context=row_normalised(P), pairs=P)
    labels, confidence = attach_alone(edges, core.labels, core.confidence, threshold=attach_threshold,
                                      links=attach_links, share=attach_share)
    return Refined(G.relabel(labels), confidence)


def attach_alone(edges: G.Edges, labels, confidence=None, *, threshold: float, links: int, share: float,
                 rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Attach every item alone in its cluster to the one cluster it has enough support in: at least
    `links` edges >= threshold to its members and at least `share` of them. Ties between clusters leave
    it alone. Returns (labels, confidence); an attached item's confidence is the share of its new
    cluster it is linked to (capped at 1), so it is never preferred as a representative."""
    labels = np.array(labels, np.int64)
    conf = np.ones(len(labels), np.float32) if confidence is None else np.array(confidence, np.float32)
    from scipy.sparse import csr_matrix

    strong = edges.above(threshold)
    adj = csr_matrix((np.ones(2 * len(strong), np.int8), (np.concatenate([strong.a, strong.b]),
                                                           np.concatenate([strong.b, strong.a]))),
                     shape=(edges.n, edges.n))
    for _ in range(rounds):
        sizes = np.bincount(labels, minlength=labels.max() + 1 if len(labels) else 0)
        alone = sizes[labels] == 1
        moves = {}
        for i in np.flatnonzero(alone):
            nbrs = adj.indices[adj.indptr[i]:adj.indptr[i + 1]]
            if len(nbrs) < links:
                continue
            groups, counts = np.unique(labels[nbrs], return_counts=True)
            ok = (counts >= links) & (counts >= share * sizes[groups]) & (sizes[groups] > 1)
            if not ok.any():
                continue
            best = np.sort(counts[ok])[::-1]
            if len(best) > 1 and best[0] == best[1]:
                continue  # claimed equally by two groups: a look-alike, not a member
            g = groups[ok][np.argmax(counts[ok])]
            moves[i] = (g, min(1.0, counts[groups == g][0] / sizes[g]))
        if not moves:
            break
        for i, (g, c) in moves.items():
            labels[i], conf[i] = g, c
    return labels, conf


def mode_edges(index, by: str, keys, threshold: float) -> G.Edges:
    """The pair scores >= threshold of the mode behind `by` (copy for image, background) as edges over
    `keys` ((file id, face) per item)."""
    from lookalike.search.modes import get_mode

    pos = {k[0]: n for n, k in enumerate(keys)}
    mode = get_mode("copy" if by == "image" else "background")
    a, b, w = [], [], []
    for p in mode.pairs(index, threshold):
        if p[0] in pos and p[1] in pos:
            a.append(pos[p[0]]), b.append(pos[p[1]]), w.append(p[2])
    return G.make_edges(len(keys), a, b, w)


def add_by_search(index, oc, file_ids: list[int], n0: int, *, mode: str) -> None:
    """Online image/background: neighbours are the mode's own search results (copy: hashes + CNN +
    SIFT verification; background: masked CNN + local verification), on the same scale as batch
    clustering, not raw vector cosines. Each new file queries with its stored features; copy search also
    needs the picture itself (the rotated views of the query). Files that cannot be read back, or
    lack a feature, start their own cluster."""
    from lookalike.errors import BadInput
    from lookalike.imageio import load_file
    from lookalike.search.modes import Query, get_mode, query_features

    m = get_mode(mode)
    names = query_features(m)
    item_of = {f: n for n, f in enumerate(file_ids)}
    values = {name: index.feature_values(file_ids[n0:], name) for name in names}
    for n in range(n0, len(file_ids)):
        fid = file_ids[n]
        row, feats = index.catalog.file_by_id(fid), {name: values[name].get(fid) for name in names}
        try:
            if row is None or any(v is None for v in feats.values()):
                oc.add_scored([])
                continue
            rgb = load_file(row.path).rgb if mode == "copy" else None
        except (BadInput, OSError):
            oc.add_scored([])
            continue
        hits = m.search(index, Query(row.path, row.sha256, row.pixel_digest, feats, rgb, (row.width, row.height)), oc.k + 1, 0.0)
        oc.add_scored([(item_of[h[0]], h[1]) for h in hits if item_of.get(h[0], n) < n])
