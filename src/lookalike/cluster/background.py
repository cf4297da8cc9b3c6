"""Background clusters: groups of photos taken in front of one background that never chain through one
weak pair.

Evidence: the background mode's fused pair scores (masked CNN, background keypoints with RANSAC, colour;
pairs without verified geometry already carry its margin, search/background.py), every kNN pair scored.

1. *Core groups*: connected components of the pairs >= `threshold`, each split by average linkage on
   the pair scores (refine.py, `link_threshold`; missing pairs count 0): a group joins another only
   when the *mean* score between them is high, so one look-alike pair (two rooms furnished alike,
   neighbouring streets, two landmarks in the same light) does not chain two places. No context
   similarity here (faces use it): look-alike places share their neighbours, and it merged them.
2. *Attach*: a photo left alone, or a pair of photos (a second view of a room, a selfie whose person
   hides most of the wall, a photo pulled out of its group by a near-copy outside it), joins the one
   larger group it has at least `attach_links` pairs >= `attach_threshold` with, covering at least
   `attach_share` of that group's members. Attaching never merges two groups of more than
   `attach_small`, and one pair alone is never enough; what two groups claim equally stays apart.

Measured on ../shared/data/background (BCubed F, `lookalike eval cluster --sets background`): see the
README's "Clustering" section (0.904 before, 0.945 now; halves and a look-alike check there).

The module also holds what image clusters share with background clusters: the mode's pair scores as
edges (`mode_edges`) and the online neighbours from the mode's own search (`add_by_search`).
"""

from __future__ import annotations

import numpy as np

from lookalike.cluster import graph as G
from lookalike.cluster.refine import Refined, pair_graph, refine

DEFAULTS = dict(threshold=0.65, link_threshold=0.6, attach_threshold=0.6, attach_links=2, attach_share=0.25,
                attach_small=2)


def cluster_background(edges: G.Edges, *, threshold: float = DEFAULTS["threshold"],
                       link_threshold: float = DEFAULTS["link_threshold"],
                       attach_threshold: float = DEFAULTS["attach_threshold"],
                       attach_links: int = DEFAULTS["attach_links"], attach_share: float = DEFAULTS["attach_share"],
                       attach_small: int = DEFAULTS["attach_small"], refiner: str = "default",
                       gcn_weights=None) -> Refined:
    """Background clusters from pair-score edges (all pairs scored, also below threshold): core groups,
    then lone photos and pairs attached by support (see the module doc). Another refiner ("none":
    components only, "gcn") goes through engine.cluster_edges."""
    from lookalike.cluster.engine import cluster_edges

    if refiner != "default":
        return cluster_edges(edges, threshold=threshold, refiner=refiner, link_threshold=link_threshold,
                             gcn_weights=gcn_weights)
    first = G.components(edges, threshold)
    # pair scores alone, no context similarity: look-alike places are each other's nearest neighbours,
    # so their rows of the pair graph agree and the context average chained them (two Lund streets)
    core = refine(None, first, link_threshold=link_threshold, pairs=pair_graph(edges))
    labels, confidence = attach_alone(edges, core.labels, core.confidence, threshold=attach_threshold,
                                      links=attach_links, share=attach_share, small=attach_small)
    return Refined(G.relabel(labels), confidence)


def attach_alone(edges: G.Edges, labels, confidence=None, *, threshold: float, links: int, share: float,
                 small: int = DEFAULTS["attach_small"], rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Attach every cluster of at most `small` members to the one larger cluster it has enough support
    in: at least `links` edges >= threshold to its members and at least `share` of them. Ties between
    clusters leave it where it is. Returns (labels, confidence); an attached member's confidence is the
    share of its new cluster it is linked to (capped at 1), so it is never preferred as a representative."""
    from scipy.sparse import csr_matrix

    labels = np.array(labels, np.int64)
    conf = np.ones(len(labels), np.float32) if confidence is None else np.array(confidence, np.float32)
    strong = edges.above(threshold)
    adj = csr_matrix((np.ones(2 * len(strong), np.int8), (np.concatenate([strong.a, strong.b]),
                                                           np.concatenate([strong.b, strong.a]))),
                     shape=(edges.n, edges.n))
    for _ in range(rounds):
        sizes = np.bincount(labels, minlength=labels.max() + 1 if len(labels) else 0)
        moves = []
        for members in G.groups(labels):
            if len(members) > small:
                continue
            nbrs = np.concatenate([adj.indices[adj.indptr[i]:adj.indptr[i + 1]] for i in members])
            groups, counts = np.unique(labels[nbrs], return_counts=True)
            ok = (counts >= links) & (counts >= share * sizes[groups]) & (sizes[groups] > small)
            if not ok.any():
                continue
            best = np.sort(counts[ok])[::-1]
            if len(best) > 1 and best[0] == best[1]:
                continue  # claimed equally by two groups: a look-alike, not a member
            g = groups[ok][np.argmax(counts[ok])]
            moves.append((members, g, min(1.0, counts[groups == g][0] / (sizes[g] * len(members)))))
        if not moves:
            break
        for members, g, c in moves:
            labels[members], conf[members] = g, c
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
