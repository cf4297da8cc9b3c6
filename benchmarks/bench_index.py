"""End-to-end `lookalike index` throughput on 1 MP JPEGs, with a per-feature time breakdown, side by
side with imagededup (PHash and CNN encoders) on the same files.

Makes ~300 JPEGs of about 1 MP (1155 x 866, quality 90) from the photos of the data set (retrieval,
background and near_duplicate originals, upscaled or cropped as needed) in a temporary folder, then:

* lookalike: a fresh `lookalike index DIR` (CLI, default features, default workers) -> images/s;
* breakdown: decode + each default feature, timed in one process on a sample (ms per image, one core);
* imagededup: PHash (and CNN, MobileNet, when its weights are cached locally: nothing is downloaded)
  encode_images on the same folder.

    python benchmarks/bench_index.py [--data ../shared/data] [--n 300] [--workers N] [--no-imagededup]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = (1155, 866)  # 1.0 MP, 4:3


def make_jpegs(data: Path, out: Path, n: int) -> list[Path]:
    """n distinct ~1 MP JPEGs from the data set's photos (each source used once, then with a shifted crop)."""
    srcs = sorted((data / "retrieval" / "images").rglob("*.jpg")) + sorted((data / "background" / "images").rglob("*.jpg"))
    srcs += sorted((data / "near_duplicate" / "images" / "derived_transforms").glob("*/originals/*.jpg"))
    srcs += sorted((data / "near_duplicate" / "images" / "sacre_coeur_rot_scale" / "mapping").glob("*.jpg"))
    if not srcs:
        raise SystemExit(f"no photos found under {data}: pass --data pointing at the shared data tree")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        img = cv2.imread(str(srcs[i % len(srcs)]), cv2.IMREAD_COLOR)
        if img is None:
            continue
        # scale to cover 1155 x 866, then crop (a different crop on each reuse of a source)
        h, w = img.shape[:2]
        s = max(SIZE[0] / w, SIZE[1] / h) * (1 + 0.1 * (i // len(srcs)))
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
        y = (img.shape[0] - SIZE[1]) // 2
        x = (img.shape[1] - SIZE[0]) // 2
        p = out / f"img{i:04d}.jpg"
        cv2.imwrite(str(p), img[y : y + SIZE[1], x : x + SIZE[0]], [cv2.IMWRITE_JPEG_QUALITY, 90])
        files.append(p)
    return files


def run_index(folder: Path, workers: int | None) -> tuple[float, float]:
    """Wall time and CPU seconds (all processes) of a fresh `lookalike index folder` (a new process, as a
    user runs it). On a shared machine the CPU time is the steadier figure."""
    with tempfile.TemporaryDirectory(prefix="bench-index-db-") as db:
        cmd = [sys.executable, "-m", "lookalike.cli", "index", str(folder), "--index", db]
        if workers:
            cmd += ["--workers", str(workers)]
        env = dict(os.environ, LOOKALIKE_PROGRESS="0")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        secs = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode:
            raise SystemExit(f"lookalike index failed ({r.returncode}): {r.stderr[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return secs, cpu


def breakdown(files: list[Path], sample: int = 40) -> list[tuple[str, float]]:
    """ms per image for reading + decoding and for each default feature, one process, one thread."""
    from lookalike.api import default_features
    from lookalike.features import registry
    from lookalike.imageio import decode_bytes, read_bytes

    cv2.setNumThreads(1)
    files = files[:sample]
    t0 = time.process_time()  # CPU time: steadier than wall time on a shared machine
    imgs = [decode_bytes(read_bytes(p)) for p in files]
    rows = [("read + decode", 1000 * (time.process_time() - t0) / len(files))]
    for name in default_features():
        ex = registry.get(name)
        ex.compute_batch(imgs[:2])  # load models outside the timing
        t0 = time.process_time()
        ex.compute_batch(imgs)
        rows.append((name, 1000 * (time.process_time() - t0) / len(files)))
    return rows


def _cpu() -> float:
    """CPU seconds of this process and its finished children."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_imagededup(folder: Path) -> list[tuple[str, float, float]]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from baseline_imagehash import import_imagededup_hashers

    import logging

    logging.disable(logging.WARNING)
    rows = []
    hashers = import_imagededup_hashers() or {}
    n = len(list(folder.glob("*.jpg")))
    for name, cls in hashers.items():
        t0, c0 = time.perf_counter(), _cpu()
        cls(verbose=False).encode_images(image_dir=str(folder), recursive=False, num_enc_workers=os.cpu_count())
        rows.append((name, n / (time.perf_counter() - t0), n / (_cpu() - c0) * os.cpu_count()))
    # imagededup's CNN encoder downloads MobileNet weights from the internet on first use: run it
    # only when torchvision already has them cached
    cache = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    if any(cache.glob("mobilenet_v3_small*.pth")):
        try:
            from imagededup.methods.cnn import CNN

            t0, c0 = time.perf_counter(), _cpu()
            CNN(verbose=False).encode_images(image_dir=str(folder), recursive=False, num_enc_workers=0)
            rows.append(("imagededup CNN (MobileNetV3)", n / (time.perf_counter() - t0), n / (_cpu() - c0) * os.cpu_count()))
        except Exception as e:  # torchvision missing or too new for imagededup
            rows.append((f"imagededup CNN (failed: {type(e).__name__})", float("nan"), float("nan")))
    else:
        rows.append(("imagededup CNN (weights not cached: skipped)", float("nan"), float("nan")))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--no-imagededup", action="store_true")
    args = ap.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lookalike-bench-index-"))
    try:
        files = make_jpegs(args.data, folder, args.n)
        mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"{len(files)} JPEGs of {SIZE[0]}x{SIZE[1]} ({mb:.0f} MB) in {folder}; {os.cpu_count()} cores")
        cores = args.workers or os.cpu_count()
        secs, cpu = run_index(folder, args.workers)
        print(f"\nlookalike index (default features, fresh index): {secs:.1f} s wall, {len(files) / secs:.1f} images/s; "
              f"{cpu:.1f} CPU s = {len(files) / cpu * cores:.1f} images/s on {cores} free cores")
        print("\nper-image CPU time, one process, one thread (ms):")
        rows = breakdown(files)
        for name, ms in rows:
            print(f"  {name:<16} {ms:7.1f}")
        total = sum(ms for _, ms in rows)
        print(f"  {'total':<16} {total:7.1f}  -> {1000 / total * cores:.0f} images/s upper bound on {cores} cores")
        if not args.no_imagededup:
            print("\nimagededup on the same files (encode only; images/s wall, images/s on free cores from CPU time):")
            for name, ips, cpu_ips in run_imagededup(folder):
                print(f"  {name:<44} {ips:7.1f} {cpu_ips:7.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
