"""Measure the CNN descriptor: retrieval mAP, copy recall on a near-duplicate sample, throughput.

    python benchmarks/bench_cnn.py                       # the default descriptor
    python benchmarks/bench_cnn.py --grid                 # compare sizes / resize modes / layers / models
    python benchmarks/bench_cnn.py --speed-only
    python benchmarks/bench_cnn.py --background           # also "same background" mAP with person masks

Needs the models prepared (`lookalike models prepare`, or LOOKALIKE_CACHE pointing at a prepared cache)
and the evaluation data (../shared/data or $LOOKALIKE_DATA). Decoded images are cached in memory only.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np

from lookalike import models
from lookalike.errors import BadInput
from lookalike.features.cnn import CnnDescriptor, apply_whitening, fit_pca_whitening
from lookalike.eval.metrics import leave_one_out_map
from lookalike.imageio import load_file

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def load_retrieval(data: Path = DATA):
    """Images and group labels of the retrieval set ('' = distractor)."""
    root = data / "retrieval"
    with open(root / "groups.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [load_file(root / r["path"]).rgb for r in rows], [r["group"] for r in rows]


def load_copy_sample(data: Path = DATA, n: int = 400, seed: int = 0):
    """A random sample of readable near-duplicate images and their copy-component id (-1 = none)."""
    root = data / "near_duplicate"
    paths = (root / "images.txt").read_text().split()
    parent = {p: p for p in paths}

    def find(p):
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    with open(root / "pairs.csv", newline="") as f:
        for r in csv.DictReader(f):
            parent[find(r["a"])] = find(r["b"])
    sizes: dict[str, int] = {}
    for p in paths:
        sizes[find(p)] = sizes.get(find(p), 0) + 1
    rng = np.random.default_rng(seed)
    imgs, comp, roots = [], [], {}
    for p in rng.permutation(paths):
        if len(imgs) >= n:
            break
        try:
            imgs.append(load_file(root / p).rgb)
        except BadInput:
            continue
        comp.append(roots.setdefault(find(p), len(roots)) if sizes[find(p)] > 1 else -1)
    return imgs, np.array(comp)


def copy_metrics(D: np.ndarray, comp: np.ndarray) -> dict:
    """recall@1 (top neighbour is a copy, over images with a copy in the sample) and pairwise AP."""
    S = D @ D.T
    np.fill_diagonal(S, -np.inf)
    same = (comp[:, None] == comp[None, :]) & (comp[:, None] >= 0)
    np.fill_diagonal(same, False)
    has = same.any(axis=1)
    top = S.argmax(axis=1)
    r1 = float(same[np.arange(len(comp)), top][has].mean())
    iu = np.triu_indices(len(comp), 1)
    s, y = S[iu], same[iu]
    order = np.argsort(-s)
    yy = y[order]
    hits = np.cumsum(yy)
    ap = float((hits[yy] / (np.flatnonzero(yy) + 1)).mean())
    return {"copy_r1": r1, "copy_pairAP": ap}


def load_background(data: Path = DATA):
    """Background-set images, keep masks (1 = background, from the ground-truth person masks; all ones
    for real photos without a mask) and background labels."""
    import cv2

    root = data / "background"
    with open(root / "groups.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    imgs, masks = [], []
    for r in rows:
        im = load_file(root / r["path"]).rgb
        mp = root / "masks" / Path(r["path"]).relative_to("images").with_suffix(".png")
        keep = np.ones(im.shape[:2], np.float32)
        if mp.exists():
            m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE)
            keep = 1 - cv2.resize(m, (im.shape[1], im.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        imgs.append(im)
        masks.append(keep)
    return imgs, masks, [r["background"] for r in rows]


def throughput(desc: CnnDescriptor, images, *, repeat: int = 2) -> tuple[float, float]:
    """(images per second wall-clock, CPU ms per image) for resize + network + pooling on desc.threads
    threads; on a shared machine the CPU time is the steadier number."""
    desc.embed(images[: desc.batch])  # warm-up
    best, cpu = 0.0, float("inf")
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        desc.embed(images)
        best = max(best, len(images) / (time.perf_counter() - t))
        cpu = min(cpu, (time.process_time() - c) / len(images) * 1000)
    return best, cpu


def whitening_gain(D: np.ndarray, groups: list[str], dim: int = 32) -> float:
    """mAP after PCA whitening learned on the collection itself (unsupervised, like an indexer would)."""
    mean, proj = fit_pca_whitening(D, dim)
    return leave_one_out_map(apply_whitening(D, mean, proj), groups)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--copy-n", type=int, default=400)
    ap.add_argument("--background", action="store_true", help="also background mAP with ground-truth masks")
    args = ap.parse_args()
    for m in ("efficientnet-lite0", "efficientnet-lite2"):
        models.prepare(m)

    rimgs, groups = load_retrieval()
    cimgs, comp = ([], None) if args.speed_only else load_copy_sample(n=args.copy_n)
    bimgs, bmasks, blabels = load_background() if args.background else (None, None, None)
    configs = [dict(), dict(layer="block", size=320)]  # the default, and the one for background search
    if args.grid:
        configs = [
            dict(size=s, resize=r, layer=lay, model=m)
            for m in ("efficientnet-lite0", "efficientnet-lite2")
            for lay in ("head", "block")
            for r in ("squash", "crop", "aspect")
            for s in (224, 288)
        ] + [dict(size=224, scales=(320,)), dict(size=320), dict(size=256)]
    for cfg in configs:
        d = CnnDescriptor(threads=args.threads, **cfg)
        row = {"name": d.name}
        row["img_per_s"], row["cpu_ms_per_img"] = throughput(d, rimgs[:32])
        if not args.speed_only:
            D = d.embed(rimgs)
            row["mAP"] = leave_one_out_map(D, groups)
            row["mAP_white32"] = whitening_gain(D, groups, 32)
            row.update(copy_metrics(d.embed(cimgs), comp))
            if args.background:
                row["bg_mAP"] = leave_one_out_map(d.embed(bimgs), blabels)
                row["bg_mAP_masked"] = leave_one_out_map(d.embed_masked(bimgs, bmasks), blabels)
        print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
