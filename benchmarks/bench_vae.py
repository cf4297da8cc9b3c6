"""Does fusing the background auto-encoder (`lookalike train vae`) with the masked CNN descriptor beat the
CNN descriptor alone?

    python benchmarks/bench_vae.py [--index DIR] [--epochs 60] [--fuse bg_cnn+bg_vae] [--weights 1,0.25 1,0.5 1,1]

Indexes ../shared/data/background (or $LOOKALIKE_DATA/background) with the background features (reusing DIR),
trains the auto-encoder on the index's own photos WITHOUT labels, then scores leave-one-out retrieval with the
set's `background` labels: mAP of each part alone and of the fusion at each weight. The weights are a choice
made with labels, so the set is split in two halves of backgrounds (alternating by name): the weight chosen
on one half is reported on the other. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.api import Index
from lookalike.eval import datasets
from lookalike.eval.metrics import leave_one_out_map
from lookalike.features.background import BACKGROUND_FEATURES

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--fuse", default="bg_cnn+bg_vae", help="features to concatenate, joined by '+'")
    ap.add_argument("--weights", nargs="+", default=["1,0.25", "1,0.5", "1,1"], help="one weight list per fusion")
    ap.add_argument("--retrain", action="store_true", help="train the auto-encoder even if the index has one")
    args = ap.parse_args()
    from lookalike.features.vae import VAE_FILE, bind, fuse, parse_fuse, train_vae

    ds = datasets.read_background(DATA / "background")
    with tempfile.TemporaryDirectory() as tmp, Index.open(args.index or tmp) as idx:
        t0 = time.perf_counter()
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), defaults=False)
        t_index = time.perf_counter() - t0
        report = None
        if args.retrain or not (Path(idx.dir) / VAE_FILE).is_file():
            _, report = train_vae(idx, epochs=args.epochs)
        bind(idx)
        by_path = idx.catalog.ids_by_path()
        ids = [by_path[str(ds.files[k])] for k in ds.images]
        names = [n for n, _ in parse_fuse(args.fuse)]
        t0 = time.perf_counter()
        vals = {n: idx.feature_values(ids, n) for n in names}
        t_feat = time.perf_counter() - t0
    parts = {n: np.stack([vals[n][i] for i in ids]) for n in names}
    groups = [ds.group[k] for k in ds.images]
    names_sorted = sorted(set(groups))
    half = {g: n % 2 for n, g in enumerate(names_sorted)}

    def scores(D):
        every = leave_one_out_map(D, groups)
        halves = [leave_one_out_map(D, [g if half[g] == h else "" for g in groups]) for h in (0, 1)]
        return every, halves

    rows = [(f"{n} alone", *scores(fuse([parts[n]], [1.0]))) for n in names]
    fused = []
    for w in args.weights:
        pw = parse_fuse(args.fuse, w)
        fused.append((f"{args.fuse} weights {w}", *scores(fuse([parts[n] for n, _ in pw], [x for _, x in pw]))))
    if report:
        print(f"auto-encoder trained on {report['images']} photos (no labels): inputs {report['prepare_seconds']} s, "
              f"training {report['train_seconds']} s, {report['epochs']} epochs, final loss {report['history'][-1]['loss']}")
    print(f"indexed {len(ids)} images in {t_index:.0f} s; features read/computed in {t_feat:.1f} s")
    print(f"{'descriptor':40s} {'mAP':>6s} {'half A':>7s} {'half B':>7s}")
    for name, m, (a, b) in rows + fused:
        print(f"{name:40s} {m:6.3f} {a:7.3f} {b:7.3f}")
    base = rows[0][2]
    for h, other in ((0, 1), (1, 0)):
        best = max(fused, key=lambda r: r[2][h])
        print(f"weights chosen on half {'AB'[h]}: {best[0]} -> half {'AB'[other]} mAP {best[2][other]:.3f} "
              f"vs {names[0]} alone {base[other]:.3f}")


if __name__ == "__main__":
    main()
