"""Dedup quality and wall time on near_duplicate: lookalike vs imagededup and imagehash.

* lookalike: a fresh index of the set (all files, unreadable ones included), then `dedup` at each
  mode's default threshold; the time covers indexing and dedup.
* imagededup PHash / DHash at their default threshold (Hamming <= 10), single process, as in
  benchmarks/baseline_imagehash.py (whose import workaround is reused).
* imagehash pHash / dHash at Hamming <= 10 (the common default) and at the threshold with the best
  F1 on this very set (an oracle no user has: an upper bound for the baseline).
Pairwise P/R/F1 against the transitive closure of pairs.csv; hardFPR on hard_negatives.csv.

    python benchmarks/bench_dedup.py [--data ../shared/data] [--modes copy] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import imagehash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_imagehash import THRESHOLDS, hamming_pairs, hash_bits, print_table, row, run_imagededup  # noqa: E402

from lookalike import Index  # noqa: E402
from lookalike.eval import datasets  # noqa: E402
from lookalike.features.hashes import HASH_FEATURES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run_lookalike(ds, files, truth, hard, modes, workers) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp, Index.open(tmp) as idx:
        t0 = time.perf_counter()
        idx.add([str(p) for p in files.values()], workers=workers)
        t_index = time.perf_counter() - t0
        for mode in modes:
            t1 = time.perf_counter()
            res = idx.dedup(mode=mode)
            secs = time.perf_counter() - t1
            pred = ds.pair_keys(res.pairs)
            # the first mode pays for the index; later modes only for features they add
            rows.append(row(f"lookalike {mode}", f"{res.threshold:g}", pred, truth, hard,
                            secs + (t_index if not rows else 0.0)))
        print(f"lookalike: indexed {len(files)} files in {t_index:.1f} s, {len(idx.errors())} unreadable")
    # the model-free mode on an index of hashes only: what to compare with imagededup's time
    with tempfile.TemporaryDirectory(prefix="bench-dedup-hash-") as tmp, Index.open(tmp) as idx:
        t0 = time.perf_counter()
        idx.add([str(p) for p in files.values()], workers=workers, features=list(HASH_FEATURES), defaults=False)
        res = idx.dedup(mode="hash")
        secs = time.perf_counter() - t0
        pred = ds.pair_keys(res.pairs)
        rows.append(row("lookalike hash (hashes only)", f"{res.threshold:g}", pred, truth, hard, secs))
    return rows


def run_imagehash(files, truth, hard) -> list[dict]:
    rows = []
    for name, fn in {"imagehash pHash": imagehash.phash, "imagehash dHash": imagehash.dhash}.items():
        keys, bits, _, secs = hash_bits(files, fn)
        t0 = time.perf_counter()
        pairs, dist = hamming_pairs(keys, bits, max(THRESHOLDS))
        secs += time.perf_counter() - t0
        by_t = {t: row(name, t, [p for p, d in zip(pairs, dist) if d <= t], truth, hard, secs) for t in THRESHOLDS}
        best = max(by_t.values(), key=lambda r: r["F1"])
        rows.append(by_t[10])
        if best["t"] != 10:
            rows.append(dict(best, method=name + " (oracle t)"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--modes", default="copy", help="lookalike modes to run, comma separated")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()

    ds = datasets.read_near_duplicate(args.data / "near_duplicate")
    truth, hard = ds.true_pairs(), ds.hard_negative_pairs()
    files = {k: ds.files[k] for k in ds.images}
    print(f"{len(files)} images, {len(truth)} true pairs (transitive closure), {len(hard)} hard negatives\n")
    rows = run_lookalike(ds, files, truth, hard, [m for m in args.modes.split(",") if m], args.workers)
    rows += run_imagededup(files, truth, hard)
    rows += run_imagehash(files, truth, hard)
    print()
    print_table(rows)


if __name__ == "__main__":
    main()
