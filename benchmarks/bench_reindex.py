"""No-change re-index: how long `lookalike index FOLDER` takes when nothing changed (stat-only skip).

    python benchmarks/bench_reindex.py [N=100000] [--keep DIR]

Makes N small synthetic picture files in 100 folders (byte-identical copies of one 32x32 PNG, so the
first run decodes one file and stores the rest as byte copies of it: building the index stays quick; a
re-index costs the same whatever the pictures hold), indexes them with hashes only, then re-indexes
twice without changes and once after touching 1 % of the files. Prints a table.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Index

HASHES = ["ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint"]


def make_files(root: Path, n: int) -> list[Path]:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    paths = []
    for i in range(n):
        d = root / f"d{i % 100:03d}"
        if i < 100:
            d.mkdir(parents=True, exist_ok=True)
        p = d / f"img{i:06d}.png"
        p.write_bytes(data)
        paths.append(p)
    return paths


def timed(idx: Index, folder: Path):
    t = time.perf_counter()
    rep = idx.add([folder], features=HASHES, defaults=False)
    return time.perf_counter() - t, rep


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-reindex-"))
    try:
        t = time.perf_counter()
        paths = make_files(tmp / "lib", n)
        made = time.perf_counter() - t
        rows = []
        with Index.open(tmp / "idx") as idx:
            idx.add([paths[0]], features=HASHES, defaults=False)  # the one decode: the rest are its byte copies
            dt, rep = timed(idx, tmp / "lib")
            rows.append(("first index (byte copies of 1 indexed file)", dt, rep))
            for k in (1, 2):
                dt, rep = timed(idx, tmp / "lib")
                rows.append((f"no-change re-index #{k}", dt, rep))
            for p in paths[:: 100]:
                os.utime(p, ns=(1, 10**18))
            dt, rep = timed(idx, tmp / "lib")
            rows.append(("re-index after touching 1 %", dt, rep))
        print(f"{n} files ({made:.1f} s to write them), hashes-only index, {os.cpu_count()} cores\n")
        print(f"| run | time | per file | added | unchanged | byte copies | removed |")
        print(f"|---|---|---|---|---|---|---|")
        for name, dt, rep in rows:
            print(f"| {name} | {dt:.2f} s | {dt / n * 1e6:.0f} µs | {rep.added} | {rep.unchanged} | {rep.copies} | {rep.removed} |")
    finally:
        if "--keep" not in sys.argv:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
