"""Extraction throughput, local processes vs Ray actors, 1 and 2 workers; catalogs compared bit for bit.

    python benchmarks/bench_ray.py --data ../shared/data/near_duplicate/images --limit 300
    python benchmarks/bench_ray.py --data ../shared/data/near_duplicate/images --runs local:2,ray:2   # whole set

Each run indexes the same files into a fresh index (default features: hashes + CNN) and prints wall
seconds, images/s and the scaling efficiency of 2 workers over 1 (tput2 / 2 tput1). Ray runs include
starting a private local Ray (timed alone on the first line). Every catalog is compared with the
first: same paths, ids, digests and feature bytes.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from lookalike.api import Index
from lookalike.ingest import scan


def catalog_rows(path: Path):
    db = sqlite3.connect(path)
    files = db.execute("SELECT id, path, size, sha256, pixel_digest, width, height, format, status, reason "
                       "FROM files ORDER BY id").fetchall()
    feats = db.execute("SELECT file_id, name, version, data FROM features ORDER BY file_id, name").fetchall()
    db.close()
    return files, feats


def ray_start_seconds(workers: int) -> float:
    from lookalike import raypool

    import ray

    t = time.perf_counter()
    raypool.start(workers)
    ray.get(ray.remote(lambda: 1).remote())
    took = time.perf_counter() - t
    ray.shutdown()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N files (0: all)")
    ap.add_argument("--runs", default="local:1,local:2,ray:1,ray:2", help="engine:workers, comma separated")
    args = ap.parse_args()

    files = list(scan([args.data]))
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    runs = [(e, int(w)) for e, w in (r.split(":") for r in args.runs.split(","))]
    print(f"{len(files)} files from {args.data}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    if any(e == "ray" for e, _ in runs):
        print(f"local Ray start (2 CPUs) + first task: {ray_start_seconds(2):.1f} s")
    print(f"{'engine':>6} {'workers':>7} {'wall_s':>7} {'img/s':>6} {'efficiency':>10}  catalog")
    tput: dict[tuple[str, int], float] = {}
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for n, (engine, workers) in enumerate(runs):
            where = Path(tmp) / f"{engine}{workers}_{n}"
            t = time.perf_counter()
            with Index.open(where) as idx:
                rep = idx.add(files, workers=workers, engine=engine)
            wall = time.perf_counter() - t
            tput[(engine, workers)] = (rep.added + rep.failed + rep.copies) / wall
            rows = catalog_rows(where / "catalog.sqlite")
            same = "reference" if reference is None else ("same bytes" if rows == reference else "DIFFERENT")
            reference = reference or rows
            one = tput.get((engine, 1))
            eff = f"{tput[(engine, workers)] / (workers * one):.2f}" if one and workers > 1 else ""
            print(f"{engine:>6} {workers:>7} {wall:>7.1f} {tput[(engine, workers)]:>6.1f} {eff:>10}  {same}", flush=True)


if __name__ == "__main__":
    main()
