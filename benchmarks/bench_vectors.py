"""Top-10 search over n synthetic 256-d descriptors, one query at a time.

    python benchmarks/bench_vectors.py --n 1000000          # the issue's target
    python benchmarks/bench_vectors.py --switch              # flat latency vs n (exact_max)
    python benchmarks/bench_vectors.py --backend milvus --n 1000000   # faiss and Milvus side by side
    python benchmarks/bench_vectors.py --lite-types          # what milvus-lite really builds per index type

Vectors are 256-d (a PCA of the 1280-d CNN descriptor; 1 M x 1280 x 4 B would be 5 GB),
stored as float16 inside an IVF (2 bytes/dim: 0.5 GB at 1 M). Data have cluster structure
(two-level Zipf-sized clusters of different spreads, plus near-copies), so recall means something.
Prints n, kind, build seconds, index MB, p50/p99 ms, recall@10 vs exact.
--backend milvus: the same data in faiss, then in Milvus (a milvus-lite file, or --uri
milvus://HOST:PORT), one row each; memory is the process' resident growth while building (lite runs
in-process) and, for Milvus, the size of its files.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np

from lookalike.store.vectors import FaissVectorIndex


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def du_mb(path) -> float:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs) / 2**20


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
    ap.add_argument("--backend", choices=["faiss", "milvus"], default="faiss",
                    help="milvus: faiss and Milvus side by side on the same data")
    ap.add_argument("--uri", default=None, help="Milvus: milvus:FILE.db (default: a temporary lite file) "
                                                "or milvus://HOST:PORT")
    ap.add_argument("--milvus-queries", type=int, default=100,
                    help="single queries timed on Milvus (lite: ~1 s each at 200 k)")
    ap.add_argument("--index-type", default=None, help="Milvus index type (default: HNSW)")
    ap.add_argument("--lite-types", action="store_true", help="latency/recall of each milvus-lite index type vs n")
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

    if args.lite_types:
        return lite_types(args)
    if args.backend == "milvus":
        return side_by_side(args)

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


def _row(name, n, build, mem, disk, p50, p99, rec):
    print(f"{name:>24} {n:>8} {build:>8.1f} {mem:>8.0f} {disk:>8.0f} {p50:>7.2f} {p99:>7.2f} {rec:>9.3f}", flush=True)


def side_by_side(args) -> None:
    import gc

    from lookalike.store.milvus import MilvusVectorIndex, parse_uri

    X = clustered(args.n + args.queries, args.dim)
    X, Q = X[: args.n], X[args.n :]
    print(f"n={args.n} dim={args.dim} queries={args.queries} (one at a time), recall@10 on 200 vs exact")
    print(f"{'backend':>24} {'n':>8} {'build_s':>8} {'mem_MB':>8} {'disk_MB':>8} {'p50_ms':>7} {'p99_ms':>7} {'recall@10':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        m0 = rss_mb()
        t = time.perf_counter()
        index = FaissVectorIndex(args.dim, nprobe=args.nprobe)
        index.add(np.arange(args.n), X)
        build, mem = time.perf_counter() - t, rss_mb() - m0
        index.save(os.path.join(tmp, "v.idx"))
        p50, p99 = latency(index, Q)
        _row(f"faiss {index.kind}", args.n, build, mem, os.path.getsize(os.path.join(tmp, "v.idx")) / 2**20,
             p50, p99, recall(index, X, Q[:200]))
        del index
        gc.collect()
        uri = parse_uri(args.uri) if args.uri else os.path.join(tmp, "bench.db")
        m0 = rss_mb()
        t = time.perf_counter()
        index = MilvusVectorIndex(args.dim, uri, "bench", index_type=args.index_type, create=False)
        index.drop()
        index._create()
        index.add(np.arange(args.n), X)
        index.search(Q[:1], 10)  # lite builds segment indexes lazily: count the first query as build
        build, mem = time.perf_counter() - t, rss_mb() - m0
        p50, p99 = latency(index, Q[: args.milvus_queries])
        _row(index.kind, args.n, build, mem, du_mb(uri) if os.path.isdir(uri) else float("nan"), p50, p99,
             recall(index, X, Q[:200]))
        if args.uri:
            index.drop()


def _attached(uri: str, collection: str) -> str:
    """The index classes milvus-lite attached to the collection's segments (its internals: lite only)."""
    from milvus_lite.server_manager import server_manager_instance

    _, db, _ = server_manager_instance._servers[os.path.abspath(uri)]
    segs = db.get_collection(collection)._segment_cache.values()
    return ",".join(sorted({type(s.indexes["v"]).__name__ if "v" in s.indexes else "none" for s in segs})) or "none"


def lite_types(args) -> None:
    """What milvus-lite does per index type: after insert+flush (as used) and after a reload (when
    it builds indexes). Brute force shows as latency growing with n and recall 1."""
    from lookalike.store.milvus import MilvusVectorIndex

    sizes = (5_000, 20_000)
    X = clustered(sizes[-1] + 100, args.dim)
    X, Q = X[:-100], X[-100:]
    print(f"{'index_type':>10} {'n':>6} {'state':>8} {'build_s':>8} {'p50_ms':>7} {'p99_ms':>7} {'recall@10':>9}  attached")
    with tempfile.TemporaryDirectory() as tmp:
        uri = os.path.join(tmp, "t.db")
        for it in ("FLAT", "IVF_FLAT", "HNSW", "AUTOINDEX", "IVF_PQ", "DISKANN"):
            for n in sizes:
                name = f"{it}_{n}"
                params = {"nlist": int(2 * np.sqrt(n)), "M": 16, "efConstruction": 128, "m": 16}
                index = None
                try:
                    index = MilvusVectorIndex(args.dim, uri, name, index_type=it, index_params=params)
                    for state in ("flushed", "reloaded"):
                        t = time.perf_counter()
                        if state == "flushed":
                            index.add(np.arange(n), X[:n])
                        else:
                            index._c.release_collection(name)
                            index._c.load_collection(name)
                        index.search(Q[:1], 10)
                        build = time.perf_counter() - t
                        p50, p99 = latency(index, Q[:50])
                        print(f"{it:>10} {n:>6} {state:>8} {build:>8.1f} {p50:>7.1f} {p99:>7.1f} "
                              f"{recall(index, X[:n], Q[:50]):>9.3f}  {_attached(uri, name)}", flush=True)
                except Exception as e:
                    print(f"{it:>10} {n:>6}  accepted at create, then: {str(e).splitlines()[0][:100]}", flush=True)
                    break
                finally:
                    if index is not None:
                        index.drop()


if __name__ == "__main__":
    main()
