"""All pairs within a Hamming radius over n synthetic codes (exact, planted near-copies).

    python benchmarks/bench_hamming.py --n 1000000            # both 64-bit r=8 and 256-bit r=31
    python benchmarks/bench_hamming.py --n 200000 --bits 64

Random codes plus planted near-copies at known distances 0..radius (and some at radius+1..+3
that must NOT be reported). Prints n, bits, radius, seconds (wall; cpu_s = process CPU time, all threads), peak RSS MB, pairs found,
planted recall. Run it alone (peak RSS is the process's).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from lookalike.store.hamming import HammingIndex


def synth(n: int, nbits: int, radius: int, *, planted: int, seed: int = 0):
    """n codes; the last `planted` are copies of random earlier codes with d bits flipped."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, nbits // 8), dtype=np.uint8)
    src = rng.choice(n - planted, planted, replace=False)
    dist = rng.integers(0, radius + 4, planted)  # some just beyond the radius
    bits = np.unpackbits(codes[src], axis=1)
    for row, d in enumerate(dist):
        flip = rng.choice(nbits, d, replace=False)
        bits[row, flip] ^= 1
    codes[n - planted :] = np.packbits(bits, axis=1)
    return codes, src, np.arange(n - planted, n), dist


def run(n: int, nbits: int, radius: int, planted: int) -> dict:
    codes, src, dst, dist = synth(n, nbits, radius, planted=planted)
    index = HammingIndex(nbits)
    index.add(np.arange(n, dtype=np.int64), codes)
    t, c0 = time.perf_counter(), time.process_time()
    i, j, d = index.pairs_within(radius)
    seconds = time.perf_counter() - t
    cpu = time.process_time() - c0
    found = set(zip(i.tolist(), j.tolist()))
    want = dist <= radius
    hit = sum((min(a, b), max(a, b)) in found for a, b in zip(src[want], dst[want]))
    wrong = sum((min(a, b), max(a, b)) in found for a, b in zip(src[~want], dst[~want]))
    assert d.max(initial=0) <= radius and len(found) == len(i), "distances or duplicates wrong"
    assert wrong == 0, "a pair beyond the radius was reported"
    return dict(n=n, bits=nbits, radius=radius, seconds=seconds, cpu=cpu,
                rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                pairs=len(i), recall=hit / max(1, want.sum()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--bits", type=int, choices=[64, 256], nargs="*", default=[64, 256])
    ap.add_argument("--planted", type=int, default=10_000)
    args = ap.parse_args()
    print(f"{'n':>9} {'bits':>4} {'radius':>6} {'seconds':>8} {'cpu_s':>7} {'peakRSS_MB':>10} {'pairs':>8} {'recall':>7}")
    for nbits in args.bits:
        r = run(args.n, nbits, 8 if nbits == 64 else 31, args.planted)
        print(f"{r['n']:>9} {r['bits']:>4} {r['radius']:>6} {r['seconds']:>8.2f} {r['cpu']:>7.2f} {r['rss']:>10.0f} "
              f"{r['pairs']:>8} {r['recall']:>7.1%}", flush=True)


if __name__ == "__main__":
    main()
