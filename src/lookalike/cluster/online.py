"""Online clustering: assign each new item as it arrives, from its top-k neighbours.

A new item queries its k nearest already-clustered items. If enough of them are at or above the
similarity threshold - at least `min_count` of them and at least `min_share` of the k looked at - it
joins the cluster holding most of those votes (ties: the higher similarity sum); otherwise it starts a
new cluster. When the votes are split and both the chosen cluster and another one have at least
`merge_count` votes, the item bridges them: they merge into the older (smaller) id and the merge is
recorded (a single look-alike neighbour is not enough to merge two groups). Ids are never reused, so a
stored id keeps meaning the same group across runs.

With min_count=1 and merge_count=1 this reproduces the connected components of the thresholded kNN
graph; higher counts resist chaining through a single bridge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Merge:
    src: int  # the cluster id that disappears
    dst: int  # the id it merged into
    item: int  # the item that bridged them


@dataclass
class OnlineClusterer:
    """In-memory online clusterer over L2-normalised vectors: a faiss flat inner-product index, or an IVF
    index (graph.build_index: trained once on the stored vectors) when `load` gets more than exact_max."""

    dim: int
    threshold: float
    k: int = 10
    min_count: int = 1
    min_share: float = 0.0
    exact_max: int = 50_000
    merge_count: int = 2  # votes a second cluster needs for the item to merge it (0: never merge)
    next_id: int = 0
    labels: list[int] = field(default_factory=list)  # cluster id per item, in insertion order
    merges: list[Merge] = field(default_factory=list)

    def __post_init__(self):
        import faiss

        self._index = faiss.IndexFlatIP(self.dim)
        self._parent: dict[int, int] = {}  # merged id -> id it went into

    def find(self, cid: int) -> int:
        """Current id of a cluster id (follows merges)."""
        while cid in self._parent:
            cid = self._parent[cid]
        return cid

    def load(self, X: np.ndarray | None, labels, *, next_id: int | None = None) -> None:
        """Start from stored state: cluster ids and their vectors (no assignment is made). X=None for a
        clusterer fed only by add_scored, which never searches by vector."""
        if X is not None:
            X = np.ascontiguousarray(X, np.float32).reshape(-1, self.dim)
            if self._index.ntotal == 0 and len(X) > self.exact_max:
                from lookalike.cluster.graph import build_index

                self._index = build_index(X, exact_max=self.exact_max, nprobe=16)
            else:
                self._index.add(X)
        self.labels.extend(int(x) for x in labels)
        self.next_id = max(self.next_id, next_id if next_id is not None else max(self.labels, default=-1) + 1)

    def add(self, X: np.ndarray) -> list[int]:
        """Assign rows of X one after another (each sees the previous ones); returns their cluster ids."""
        X = np.ascontiguousarray(X, np.float32).reshape(-1, self.dim)
        return [self._add_one(x) for x in X]

    def _add_one(self, x: np.ndarray) -> int:
        hits = []
        if self._index.ntotal:
            from lookalike.cluster.graph import single_thread

            with single_thread():
                sims, ids = self._index.search(x[None], min(self.k, self._index.ntotal))
            hits = [(int(i), float(s)) for s, i in zip(sims[0], ids[0]) if i >= 0]
        cid = self.assign(hits)
        self._index.add(x[None])
        return cid

    def add_scored(self, hits: list[tuple[int, float]]) -> int:
        """Assign one new item from neighbour scores computed elsewhere (e.g. a mode's fused search):
        hits = [(earlier item number, score)], best first. No vector is stored for it: a clusterer fed
        this way is not searched by vector (`add`) afterwards."""
        return self.assign(sorted(hits, key=lambda h: -h[1])[: self.k])

    def assign(self, hits: list[tuple[int, float]]) -> int:
        """The voting rule (module doc) for one new item given its top-k (item, similarity); records it."""
        item = len(self.labels)
        votes: dict[int, list[float]] = {}
        n_seen = len(hits)
        for i, s in hits:
            if s >= self.threshold:
                votes.setdefault(self.find(self.labels[i]), []).append(float(s))
        n_above = sum(len(v) for v in votes.values())
        if votes and n_above >= self.min_count and n_above >= self.min_share * max(n_seen, 1):
            ranked = sorted(votes, key=lambda c: (-len(votes[c]), -sum(votes[c])))
            cid = ranked[0]
            need = max(self.merge_count, self.min_count)
            bridged = [c for c in ranked[1:] if len(votes[c]) >= need] if self.merge_count > 0 else []
            if bridged and len(votes[cid]) >= need:
                into = min([cid] + bridged)  # the oldest id survives
                for c in [cid] + bridged:
                    if c != into:
                        self._parent[c] = into
                        self.merges.append(Merge(c, into, item))
                cid = into
        else:
            cid = self.next_id
            self.next_id += 1
        self.labels.append(cid)
        return cid

    def current_labels(self) -> np.ndarray:
        """Cluster id of every item after all merges."""
        return np.array([self.find(c) for c in self.labels], np.int64)
