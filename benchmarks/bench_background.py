"""Speed of background feature extraction, stage by stage, and end to end on 1 and 2 processes.

    python benchmarks/bench_background.py                 # 60 images of the background set
    python benchmarks/bench_background.py --n 248 --procs 1 2

Stages (one process, one thread each): decode, person mask (selfie pass, pose detector, zoomed crops),
keep mask (dilation), background SIFT, scene score, LAB colour, masked CNN; then the four stored
background features (bg_mask, bg_cnn, bg_color, bg_local) computed through the extractor registry on
`--procs` worker processes, which is what `lookalike index --features bg_*` runs.
Needs the models prepared (LOOKALIKE_CACHE) and the data (../shared/data or $LOOKALIKE_DATA).
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def _paths(n: int) -> list[Path]:
    root = DATA / "background"
    with open(root / "groups.csv", newline="") as f:
        rows = sorted(r["path"] for r in csv.DictReader(f))
    step = max(1, len(rows) // n)
    return [root / p for p in rows[::step][:n]]


def stages(paths: list[Path]) -> dict[str, float]:
    """CPU milliseconds per image of every stage, run one after the other in this process (CPU time, not
    wall time: on a shared machine it is what the stage would take on a core of its own; every model
    runs single-threaded, so the two agree on an idle machine)."""
    import numpy as np

    from lookalike.features import background as B
    from lookalike.features.local import extract_local
    from lookalike.imageio import load_file

    from lookalike.features import registry

    seg = B.segmenter()
    cnn = registry.get("bg_cnn").net
    t = dict.fromkeys(["decode", "mask: selfie", "mask: pose", "mask: zoomed crops", "keep mask",
                       "SIFT (background)", "scene score", "LAB colour", "masked CNN"], 0.0)
    imgs = [load_file(paths[0])]  # warm-up: model sessions are created on first use
    seg.mask(imgs[0].rgb)
    cnn.embed_masked([imgs[0].rgb], [np.ones(imgs[0].rgb.shape[:2], np.float32)])
    clock = time.process_time
    for p in paths:
        t0 = clock()
        img = load_file(p)
        t1 = clock()
        t["decode"] += t1 - t0
        timing: dict[str, float] = {}
        person = seg.mask(img.rgb, timing=timing)
        t["mask: selfie"] += timing.get("selfie", 0.0)
        t["mask: pose"] += timing.get("pose", 0.0)
        t["mask: zoomed crops"] += timing.get("crops", 0.0)
        t2 = clock()
        keep = B.keep_mask(person)
        t3 = clock()
        local = extract_local(img.rgb, mask=(keep > 0.5).astype(np.uint8))
        t4 = clock()
        B.scene_score(img.rgb, keep, n_keypoints=len(local))
        t5 = clock()
        B.color_histogram(img.rgb, keep)
        t6 = clock()
        cnn.embed_masked([img.rgb], [keep])
        t7 = clock()
        for k, a, b in (("keep mask", t2, t3), ("SIFT (background)", t3, t4), ("scene score", t4, t5),
                        ("LAB colour", t5, t6), ("masked CNN", t6, t7)):
            t[k] += b - a
    return {k: 1000 * v / len(paths) for k, v in t.items()}


def _extract(path: str) -> float:
    """Decode + every stored background feature of one file; returns the CPU seconds it took."""
    from lookalike.features import registry
    from lookalike.features.background import BACKGROUND_FEATURES
    from lookalike.imageio import load_file

    t0 = time.process_time()
    img = load_file(path)
    for n in BACKGROUND_FEATURES:
        registry.get(n).encode(registry.get(n).compute(img))
    return time.process_time() - t0


def _warm(_):
    _extract(str(_paths(1)[0]))
    return os.getpid()


def end_to_end(paths: list[Path], procs: int) -> tuple[float, float]:
    """(images per second, CPU ms per image): decode + the four stored background features, on `procs`
    processes. On a busy machine the wall-clock rate drops; procs x 1000 / CPU ms is the rate on `procs`
    free cores."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(procs) as ex:
        list(ex.map(_warm, range(procs)))  # models loaded before the clock starts
        t0 = time.perf_counter()
        cpu = list(ex.map(_extract, [str(p) for p in paths], chunksize=4))
        return len(paths) / (time.perf_counter() - t0), 1000 * sum(cpu) / len(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="images (spread over the set)")
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-stages", action="store_true")
    args = ap.parse_args()
    paths = _paths(args.n)
    print(f"{len(paths)} images of {DATA / 'background'}, {os.cpu_count()} CPUs")
    if not args.no_stages:
        st = stages(paths)
        total = sum(st.values())
        for k, v in st.items():
            print(f"  {k:<22}{v:8.1f} ms  {100 * v / total:5.1f} %")
        print(f"  {'total':<22}{total:8.1f} ms  -> {1000 / total:.1f} images/s on one core")
    for n in args.procs:
        rate, cpu = end_to_end(paths, n)
        print(f"end to end, {n} process(es): {rate:.1f} images/s wall clock, {cpu:.1f} CPU ms per image "
              f"-> {n * 1000 / cpu:.1f} images/s on {n} free core(s)")


if __name__ == "__main__":
    main()
