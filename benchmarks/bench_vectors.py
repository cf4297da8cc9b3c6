"""Top-10 search over n synthetic 256-d descriptors, one query at a time.

    python benchmarks/bench_vectors.py --n 1000000          # the issue's target
    python benchmarks/bench_vectors.py --switch              # flat latency vs n (exact_max)

Vectors are 256-d (a PCA of the 1280-d CNN descriptor; 1 M x 1280 x 4 B would be 5 GB),
stored as float16 inside an IVF (2 bytes/dim: 0.5 GB at 1 M). Data have cluster structure
(two-level Zipf-sized clusters of different spreads, plus near-copies), so recall means something.
Prints n, kind, build seconds, index MB, p50/p99 ms, recall@10 vs exact.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np

from lookalike.store.vectors import FaissVectorIndex


def clustered(n: int, dim: int = 256, *, seed: int = 0) -> np.ndarray:
    """Unit vectors in two-level clusters (2000 topics x 10 sub-clusters, Zipf-sized, with
    different spreads) plus 5% near-copies of other vectors: roughly how CNN descriptors of
    a photo collection look, and hard enough that approximate search can miss."""
    rng = np.random.default_rng(seed)
    topics = rng.normal(size=(2000, dim)).astype(np.float32) / np.sqrt(dim)
    subs = np.repeat(topics, 10, axis=0) + 0.6 * rng.normal(size=(20000, dim)).astype(np.float32) / np.sqrt(dim)
    weight = 1.0 / np.arange(1, len(subs) + 1) ** 0.7
    weight = rng.permutation(weight / weight.sum())
    spread = rng.uniform(0.2, 0.5, len(subs)).astype(np.float32) / np.sqrt(dim)
    X = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        c = rng.choice(len(subs), m, p=weight)
        X[s : s + m] = subs[c] + spread[c, None] * rng.normal(size=(m, dim)).astype(np.float32)
    copies = np.flatnonzero(rng.random(n) < 0.05)
    X[copies] = X[rng.integers(0, n, len(copies))] + 0.05 / np.sqrt(dim) * rng.normal(size=(len(copies), dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def latency(index, Q, k=10):
    times = []
    for q in Q:
        t = time.perf_counter()
        index.search(q[None], k)
        times.append(time.perf_counter() - t)
    return np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3


def recall(index, X, Q, k=10):
    import faiss

    exact = faiss.IndexFlatIP(X.shape[1])
    exact.add(X)
    _, want = exact.search(Q, k)
    _, got = index.search(Q, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got.tolist(), want.tolist())]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--nprobe", type=int, default=None)
    ap.add_argument("--switch", action="store_true", help="flat (exact) latency for several n")
    args = ap.parse_args()

    if args.switch:
        print(f"{'n':>8} {'p50_ms':>7} {'p99_ms':>7}")
        X = clustered(400_300, args.dim)
        X, Q = X[:-300], X[-300:]
        for n in (25_000, 50_000, 100_000, 200_000, 400_000):
            index = FaissVectorIndex(args.dim, exact_max=10**9)
            index.add(np.arange(n), X[:n])
            p50, p99 = latency(index, Q)
            print(f"{n:>8} {p50:>7.2f} {p99:>7.2f}", flush=True)
        return

    X = clustered(args.n + args.queries, args.dim)  # queries: held-out draws of the same data
    X, Q = X[: args.n], X[args.n :]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    index = FaissVectorIndex(args.dim, nprobe=args.nprobe)
    index.add(np.arange(args.n), X)
    build = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        index.save(os.path.join(tmp, "v.idx"))
        mb = os.path.getsize(os.path.join(tmp, "v.idx")) / 2**20
    p50, p99 = latency(index, Q)
    rec = recall(index, X, Q[:200])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'n':>8} {'dim':>4} {'kind':>9} {'nprobe':>6} {'build_s':>8} {'index_MB':>8} {'p50_ms':>7} "
          f"{'p99_ms':>7} {'recall@10':>9} {'peakRSS_MB':>10}")
    nprobe = getattr(index._index, "nprobe", 0)
    print(f"{args.n:>8} {args.dim:>4} {index.kind:>9} {nprobe:>6} {build:>8.1f} {mb:>8.0f} {p50:>7.2f} "
          f"{p99:>7.2f} {rec:>9.3f} {rss:>10.0f}   (data alone: {rss0:.0f} MB RSS)")


if __name__ == "__main__":
    main()
