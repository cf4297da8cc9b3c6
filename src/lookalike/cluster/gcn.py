"""Learned refiner: a small graph convolutional network that scores each member of a first cluster.

The two-stage face clustering method (kNN first clusters, then a GCN over each cluster's similarity
matrix and member features predicting every member's confidence, as in Yang et al., "Learning to
Cluster Faces on an Affinity Graph", CVPR 2019, GCN-S) in a form small enough to train on a CPU in
seconds from a few labelled groups:

- graph: the cluster's member x member similarity (refine.similarity), negative values cut, row-normalised;
- member features: that member's similarity profile (mean, max, min, std, share above the link
  threshold, cosine to the cluster centre, z-score of its mean within the cluster), log cluster size and
  optional attribute columns (face quality, detection score...) - nothing tied to the embedding's size;
- two GraphSAGE-style layers (neighbour mean + self, ReLU), a linear head: P(member belongs to the
  cluster's majority group).

Re-clustering: each first cluster is split by average linkage as in the default refiner, then every
member of every part is scored; members under `min_confidence` leave as singletons.

Training (`train`) uses torch on CPU and writes the weights as .npz; inference here is numpy only, so
torch is not needed at run time. Labelled groups for training must be licensed for that use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.cluster.graph import Edges, components, groups
from lookalike.cluster.refine import Refined, average_linkage, refine_each, similarity

N_BASE = 8  # member features before attribute columns


def member_features(S: np.ndarray, link_threshold: float, attributes: np.ndarray | None = None) -> np.ndarray:
    """(m, N_BASE + a) features of each member from its cluster's similarity matrix."""
    m = len(S)
    off = ~np.eye(m, dtype=bool)
    Sm = np.where(off, S, np.nan)
    mean = np.nanmean(Sm, axis=1)
    feats = [mean, np.nanmax(Sm, axis=1), np.nanmin(Sm, axis=1), np.nanstd(Sm, axis=1),
             np.nanmean(Sm >= link_threshold, axis=1) if m > 1 else np.zeros(m),
             S.mean(axis=1) / np.sqrt(max(S.mean(), 1e-6)),  # cosine to the centre, for unit vectors
             (mean - mean.mean()) / (mean.std() + 1e-3), np.full(m, np.log(m))]
    F = np.stack(feats, axis=1)
    if attributes is not None:
        F = np.concatenate([F, attributes], axis=1)
    return np.nan_to_num(F).astype(np.float32)


def adjacency(S: np.ndarray) -> np.ndarray:
    A = np.maximum(S, 0)
    return (A / np.maximum(A.sum(axis=1, keepdims=True), 1e-6)).astype(np.float32)


@dataclass
class GCNWeights:
    params: dict[str, np.ndarray]
    link_threshold: float
    n_attr: int

    def save(self, path: str | Path) -> None:
        np.savez(path, link_threshold=self.link_threshold, n_attr=self.n_attr, **self.params)

    @classmethod
    def load(cls, path: str | Path) -> "GCNWeights":
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no trained refiner; run `lookalike cluster train` first "
                                    "or use the default refiner")
        z = np.load(path)
        params = {k: z[k] for k in z.files if k not in ("link_threshold", "n_attr")}
        return cls(params, float(z["link_threshold"]), int(z["n_attr"]))

    def predict(self, S: np.ndarray, attributes: np.ndarray | None = None) -> np.ndarray:
        """Confidence in [0, 1] of every member of one cluster (numpy forward pass)."""
        p = self.params
        F = member_features(S, self.link_threshold, attributes)
        F = (F - p["mu"]) / p["sd"]
        A = adjacency(S)
        h = F
        for i in (1, 2):
            h = np.maximum(A @ h @ p[f"w{i}n"] + h @ p[f"w{i}s"] + p[f"b{i}"], 0)
        logit = h @ p["wo"] + p["bo"]
        return (1 / (1 + np.exp(-logit.ravel()))).astype(np.float32)


def refine_gcn(X, labels, weights: GCNWeights, *, min_confidence: float = 0.5,
               attributes: np.ndarray | None = None, context=None, pairs=None, max_size: int = 5000) -> Refined:
    """Split every first cluster by average linkage (as the default refiner), then let the GCN score each
    member of each part; members under `min_confidence` leave as singletons."""
    X = None if X is None else np.asarray(X, np.float32)

    def one(g):
        S = similarity(X, g, context=context, pairs=pairs)
        sub = average_linkage(S, weights.link_threshold)
        c = np.ones(len(g), np.float32)
        alone = int(sub.max()) + 1
        for h in groups(sub):
            if len(h) >= 3:
                c[h] = weights.predict(S[np.ix_(h, h)], None if attributes is None else attributes[g[h]])
                for i in h[c[h] < min_confidence]:  # low-confidence members leave as singletons
                    sub[i], alone = alone, alone + 1
        return sub, c

    return refine_each(labels, one, max_size=max_size)


def proposals(X, truth: np.ndarray, edges: Edges, *, thresholds, link_thresholds, context=None,
              max_size: int = 3000):
    """Training clusters of varied purity: first clusters at several thresholds and their splits."""
    seen = set()
    for t in thresholds:
        for g in groups(components(edges, t)):
            if 3 <= len(g) <= max_size:
                yield g
                S = similarity(X, g, context=context)
                for lt in link_thresholds:
                    for h in groups(average_linkage(S, lt)):
                        key = tuple(g[h])
                        if len(h) >= 3 and key not in seen:
                            seen.add(key)
                            yield g[h]


def train(samples, *, link_threshold: float, hidden: int = 32, epochs: int = 400, lr: float = 0.01,
          seed: int = 0, log=None) -> GCNWeights:
    """Fit the GCN on CPU. samples: [(S (m, m) similarity, attributes (m, a) or None, target (m,) 0/1)]."""
    try:
        import torch
    except ImportError as e:  # inference needs numpy only; training needs the setup's CPU torch
        raise ValueError("training the refiner needs PyTorch: pip install torch==2.13.0 (CPU wheel)") from e

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend (20x slower on a busy 2-core box)
    data = [(member_features(S, link_threshold, A), adjacency(S), y.astype(np.float32)) for S, A, y in samples]
    if not data:
        raise ValueError("no training clusters of 3+ members: give more labelled groups")
    allF = np.concatenate([d[0] for d in data])
    mu, sd = allF.mean(axis=0), allF.std(axis=0) + 1e-6
    # all clusters as one block-diagonal graph: one full-batch step per epoch
    from scipy.sparse import block_diag

    A = block_diag([d[1] for d in data]).tocoo()
    A = torch.sparse_coo_tensor(np.vstack([A.row, A.col]), A.data.astype(np.float32), A.shape,
                                check_invariants=False).coalesce()
    F = torch.from_numpy(((allF - mu) / sd).astype(np.float32))
    y = torch.from_numpy(np.concatenate([d[2] for d in data]))
    nf = allF.shape[1]

    def lin(i, o):
        return torch.nn.Parameter(torch.randn(i, o) * np.sqrt(2.0 / i))

    P = {"w1n": lin(nf, hidden), "w1s": lin(nf, hidden), "b1": torch.nn.Parameter(torch.zeros(hidden)),
         "w2n": lin(hidden, hidden), "w2s": lin(hidden, hidden), "b2": torch.nn.Parameter(torch.zeros(hidden)),
         "wo": lin(hidden, 1), "bo": torch.nn.Parameter(torch.zeros(1))}
    opt = torch.optim.Adam(P.values(), lr=lr, weight_decay=1e-4)
    pos = float(y.mean())
    weight = torch.tensor((1 - pos) / max(pos, 1e-3))  # balance members in and out
    for epoch in range(epochs):
        h = F
        for i in (1, 2):
            h = torch.relu(torch.sparse.mm(A, h @ P[f"w{i}n"]) + h @ P[f"w{i}s"] + P[f"b{i}"])
        logit = (h @ P["wo"] + P["bo"]).squeeze(1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y, pos_weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if log and epoch % 100 == 0:
            log(f"epoch {epoch}: loss {loss.item():.4f}")
    params = {k: v.detach().numpy().astype(np.float32) for k, v in P.items()}
    params.update(mu=mu.astype(np.float32), sd=sd.astype(np.float32))
    n_attr = nf - N_BASE
    return GCNWeights(params, link_threshold, n_attr)


def training_samples(X, truth, edges: Edges, *, thresholds, link_thresholds, attributes=None, context=None):
    """(S, attributes, target) per proposal; target = member has the proposal's majority label."""
    truth = np.asarray(truth)
    out = []
    for g in proposals(X, truth, edges, thresholds=thresholds, link_thresholds=link_thresholds, context=context):
        lab = truth[g]
        vals, counts = np.unique(lab, return_counts=True)
        y = (lab == vals[np.argmax(counts)]).astype(np.float32)
        out.append((similarity(X, g, context=context), None if attributes is None else attributes[g], y))
    return out
