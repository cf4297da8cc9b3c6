"""Clustering speed and memory: batch clustering of N synthetic 128-d vectors, online assignment latency.

    python benchmarks/bench_cluster.py --n 1000000          # batch: kNN (faiss IVF) + components + refiner
    python benchmarks/bench_cluster.py --online 100000      # online latency per photo at 100k clusters

Synthetic data: random unit centres in 128-d, 1-19 members each (mean 10), members at cosine ~0.93 to
their centre. Peak memory is the process's max RSS. Run one at a time: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def synthetic(n: int, dim: int = 128, *, noise: float = 0.35, seed: int = 0):
    """(X (n, dim) unit float32, labels): clusters of 1-19 members around random unit centres."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 20, size=n // 5)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    labels = np.repeat(np.arange(len(sizes)), sizes)[:n]
    C = rng.standard_normal((len(sizes), dim), dtype=np.float32)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    X = C[labels]
    X += rng.standard_normal(X.shape, dtype=np.float32) * (noise / np.sqrt(dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, labels


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def bench_batch(n: int, *, threshold: float, k: int, refiner: str) -> None:
    from lookalike.cluster import graph as G
    from lookalike.cluster.refine import refine
    from lookalike.eval.metrics import bcubed_prf

    t0 = time.perf_counter()
    X, truth = synthetic(n)
    print(f"data: {n} x {X.shape[1]} in {time.perf_counter() - t0:.1f} s, {truth.max() + 1} true clusters")
    t0 = time.perf_counter()
    sims, nbrs = G.knn(X, k)
    t_knn = time.perf_counter() - t0
    rows = np.repeat(np.arange(n), sims.shape[1])
    ok = (nbrs.ravel() >= 0) & (sims.ravel() >= threshold)
    edges = G.make_edges(n, rows[ok], nbrs.ravel()[ok], sims.ravel()[ok])
    del rows, ok
    nested = G.nested_components(edges, [threshold, threshold + 0.05, threshold + 0.1])
    first = nested[threshold]
    t_cc = time.perf_counter() - t0 - t_knn
    labels = refine(X, first, link_threshold=threshold).labels if refiner == "default" else first
    t_ref = time.perf_counter() - t0 - t_knn - t_cc
    total = time.perf_counter() - t0
    b = bcubed_prf(dict(enumerate(labels.tolist())), dict(enumerate(truth.tolist())))
    print(f"kNN (k={k}, faiss {'IVF' if n > G.EXACT_MAX else 'flat'}): {t_knn:.1f} s; edges {len(edges)}; "
          f"3 nested thresholds: {t_cc:.1f} s; refiner {refiner}: {t_ref:.1f} s")
    print(f"batch total {total:.1f} s for {n} vectors, {len(set(labels.tolist()))} clusters, "
          f"BCubed F {b.f1:.4f}; peak memory {peak_gb():.2f} GB")


def bench_online(clusters: int, *, queries: int, threshold: float) -> None:
    from lookalike.cluster.online import OnlineClusterer

    X, truth = synthetic(clusters * 10)  # ~10 members per cluster: 2 per cluster stored, the rest queries
    keep = np.flatnonzero(np.r_[True, np.diff(truth) != 0])  # first member of every cluster
    keep = np.unique(np.concatenate([keep, keep + 1]))
    keep = keep[keep < len(X)]
    oc = OnlineClusterer(X.shape[1], threshold=threshold, k=10)
    oc.load(X[keep], truth[keep])
    n_clusters = len(set(oc.labels))
    rng = np.random.default_rng(1)
    rest = rng.choice(np.setdiff1d(np.arange(len(X)), keep), size=queries, replace=False)
    lat = []
    for i in rest:
        t0 = time.perf_counter()
        oc.add(X[i:i + 1])
        lat.append(time.perf_counter() - t0)
    lat = np.array(lat) * 1000
    agree = np.mean([oc.labels[len(keep) + n] == truth[i] for n, i in enumerate(rest)])
    print(f"online: {n_clusters} clusters, {len(keep)} stored vectors, {len(rest)} photos assigned: "
          f"latency median {np.median(lat):.2f} ms, p95 {np.percentile(lat, 95):.2f} ms, "
          f"joined the right cluster {100 * agree:.1f} %; peak memory {peak_gb():.2f} GB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=0, help="batch: number of synthetic vectors (e.g. 1000000)")
    ap.add_argument("--online", type=int, default=0, help="online: number of clusters (e.g. 100000)")
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--refiner", default="default", choices=["default", "none"])
    args = ap.parse_args()
    if not args.n and not args.online:
        ap.error("give --n N (batch) and/or --online CLUSTERS")
    if args.n:
        bench_batch(args.n, threshold=args.threshold, k=args.k, refiner=args.refiner)
    if args.online:
        bench_online(args.online, queries=args.queries, threshold=args.threshold)


if __name__ == "__main__":
    main()
