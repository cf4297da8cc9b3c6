"""Where copy mode's time goes: a fresh index of a folder, then the first `dedup --mode copy` (which
computes the copy features on first use), stage by stage, wall and CPU seconds.

CPU is user + sys of this process and of its worker processes (os.times; a pool's workers count once
the pool has ended), so on a machine shared with other work it says what the run costs where wall time
does not. Each stage's time excludes the stages nested in it (e.g. "verify pairs" without the SIFT
features computed inside it). The last table counts the work: files, pairs verified, matches tried.

    python benchmarks/bench_copy_time.py [--data ../shared/data/near_duplicate] [--index DIR] [--second]

--index keeps the index in DIR (default: a temporary folder); --second also times a second dedup on
the kept index (every feature stored: candidates and verification only).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from lookalike import Index, ingest  # noqa: E402
from lookalike.search import batchverify, keypoints, modes, regions  # noqa: E402


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Stages:
    """Exclusive wall and CPU seconds per named stage (a nested stage's time is taken out of its parent)."""

    def __init__(self):
        self.totals: dict[str, list[float]] = {}
        self.stack: list[list] = []  # [name, wall0, cpu0, nested wall, nested cpu]
        self.counts: dict[str, int] = {}

    @contextmanager
    def stage(self, name: str):
        self.stack.append([name, time.perf_counter(), cpu(), 0.0, 0.0])
        try:
            yield
        finally:
            n, w0, c0, nw, nc = self.stack.pop()
            w, c = time.perf_counter() - w0, cpu() - c0
            tot = self.totals.setdefault(n, [0.0, 0.0])
            tot[0] += w - nw
            tot[1] += c - nc
            if self.stack:
                self.stack[-1][3] += w
                self.stack[-1][4] += c

    def wrap(self, owner, attr: str, name: str, count: str | None = None, size=None):
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*a, **kw):
            if count:
                self.counts[count] = self.counts.get(count, 0) + (size(*a, **kw) if size else 1)
            with self.stage(name):
                return fn(*a, **kw)

        setattr(owner, attr, timed)


def instrument(st: Stages) -> None:
    st.wrap(Index, "ensure", "copy features of every file (SIFT, regions, thumbnails)")
    st.wrap(ingest, "compute_for", "features computed on demand (colour thumbnails, SIFT)", "files given features on demand",
            lambda c, ids, *a, **k: len(ids))
    st.wrap(modes.CopyMode, "_candidates", "CNN candidates (faiss)")
    st.wrap(keypoints.KeypointIndex, "__init__", "keypoint votes (faiss IVF of every SIFT descriptor)")
    st.wrap(modes.CopyMode, "_verify", "verify whole-image pairs (SIFT match, RANSAC)")
    st.wrap(regions, "candidates", "region candidates")
    st.wrap(regions, "verify_regions", "verify region pairs")
    rounds = batchverify._rounds

    def counted(pairs, skip):  # pairs are verified in worker processes: counted here, as they are sent
        for r in rounds(pairs, skip):
            st.counts["whole-image pairs verified"] = st.counts.get("whole-image pairs verified", 0) + len(r)
            yield r

    batchverify._rounds = counted


def table(rows, header) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "near_duplicate"))
    ap.add_argument("--index", default=None, help="keep the index here (must not exist yet)")
    ap.add_argument("--second", action="store_true", help="also time a second dedup on the kept index")
    args = ap.parse_args()
    st = Stages()
    instrument(st)
    tmp = None
    if args.index is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-copy-time-")
        args.index = tmp.name
    load0 = os.getloadavg()[0]
    runs = []
    with Index.open(args.index) as idx:
        with st.stage("index (decode, hashes, cnn)"):
            rep = idx.add([args.data])
        w0, c0 = time.perf_counter(), cpu()
        with st.stage("rest of dedup (grouping, hash pairs, store reads)"):
            res = idx.dedup(mode="copy")
        runs.append(("first dedup", time.perf_counter() - w0, cpu() - c0, len(res.pairs)))
        first = dict(st.totals)
        counts = dict(st.counts)
        if args.second:
            st.totals, st.counts = {}, {}
            idx._cache.clear()
            w0, c0 = time.perf_counter(), cpu()
            with st.stage("rest of dedup (grouping, hash pairs, store reads)"):
                res2 = idx.dedup(mode="copy")
            runs.append(("second dedup (index kept)", time.perf_counter() - w0, cpu() - c0, len(res2.pairs)))
    print(f"{rep.added} files indexed, {rep.failed} unreadable; load average {load0:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} cores\n")
    rows = [[n, f"{w:.1f}", f"{c:.1f}"] for n, (w, c) in sorted(first.items(), key=lambda kv: -kv[1][1])]
    tw, tc = sum(w for w, _ in first.values()), sum(c for _, c in first.values())
    rows.append(["**index + first dedup**", f"**{tw:.1f}**", f"**{tc:.1f}**"])
    table(rows, ["stage (index + first copy dedup)", "wall s", "CPU s"])
    if args.second:
        rows = [[n, f"{w:.1f}", f"{c:.1f}"] for n, (w, c) in sorted(st.totals.items(), key=lambda kv: -kv[1][1])]
        table(rows, ["stage (second dedup, index kept)", "wall s", "CPU s"])
    table([[n, f"{w:.1f}", f"{c:.1f}", p] for n, w, c, p in runs], ["run", "wall s", "CPU s", "pairs"])
    table([[k, v] for k, v in counts.items()], ["work in the first dedup", "count"])
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
