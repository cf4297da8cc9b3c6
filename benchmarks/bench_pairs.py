"""Does the self-supervised background pair head (`lookalike train pairs`) beat the untrained pipeline?

    python benchmarks/bench_pairs.py [--index DIR] [--views 2] [--epochs 200]

Indexes ../shared/data/background (or $LOOKALIKE_DATA/background) with the background features, trains the
pair head from the index's own photos WITHOUT the set's labels, then scores leave-one-out retrieval with the
set's `background` labels: mAP of the masked CNN descriptor (bg_cnn) raw vs through the head, and the share of
same-person / other-background pairs whose P(same) is above 0.5 vs the share of true pairs.
Prints a table.

    python benchmarks/bench_pairs.py --labelled [--index DIR]

The labelled-pair source instead (`train pairs --pairs`): the head is trained on every pair of the photos of
half of the backgrounds (alternating by name, labels = same background) and scored on the other half, and
the other way round: leave-one-out mAP among the held-out half's photos, raw vs through the head.
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
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--spare", type=float, default=0.9, help="quantile of raw cosine above which others are not negatives")
    ap.add_argument("--labelled", action="store_true", help="measure training from labelled pairs instead")
    args = ap.parse_args()
    ds = datasets.read_background(DATA / "background")
    if args.labelled:
        return labelled(ds, args.index)
    with tempfile.TemporaryDirectory() as tmp, Index.open(args.index or tmp) as idx:
        t0 = time.perf_counter()
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), defaults=False)
        t_index = time.perf_counter() - t0
        from lookalike.heads.pairs import make_views, train

        cache = Path(idx.dir) / f"bench-views{args.views}.npz"  # views take minutes: reused by later runs
        t0 = time.perf_counter()
        if cache.is_file():
            z = np.load(cache)
            V, owner = z["X"], z["owner"]
        else:
            V, owner = make_views([str(ds.files[k]) for k in ds.images], views=args.views)
            np.savez(cache, X=V, owner=owner)
        t_views = time.perf_counter() - t0
        head = train(V, owner, epochs=args.epochs, spare=args.spare)
        report = {**head.report, "view_seconds": round(t_views, 1)}
        by_path = idx.catalog.ids_by_path()
        ids = [by_path[str(ds.files[k])] for k in ds.images]
        vals = idx.feature_values(ids, "bg_cnn")
    X = np.stack([vals[i] for i in ids])
    groups = [ds.group[k] for k in ds.images]
    Z = head.embed(X)
    rows = [("bg_cnn cosine (untrained)", leave_one_out_map(X, groups)),
            ("bg_cnn through the pair head", leave_one_out_map(Z, groups))]
    pos = {tuple(sorted(p)) for p in ds.positive_pairs()}
    neg = {tuple(sorted(p)) for p in ds.hard_negative_pairs()}
    key = {k: n for n, k in enumerate(ds.images)}
    C = Z @ Z.T
    pr = head.probability(C)
    share = lambda pairs: float(np.mean([pr[key[a], key[b]] > 0.5 for a, b in pairs]))  # noqa: E731
    print(f"indexed {len(ids)} images in {t_index:.0f} s; head trained on {report['items']} items "
          f"({report['photos']} photos + views) in {report['view_seconds']} s (views) + {report['train_seconds']} s")
    print(f"{'descriptor':34s} {'mAP':>6s}")
    for name, m in rows:
        print(f"{name:34s} {m:6.3f}")
    print(f"P(same) > 0.5: true pairs {share(pos):.3f}, same-person/other-background pairs {share(neg):.3f}")


def labelled(ds, where) -> None:
    from lookalike.heads.labelled import fit_held_out

    with tempfile.TemporaryDirectory() as tmp, Index.open(where or tmp) as idx:
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), defaults=False)
        by_path = idx.catalog.ids_by_path()
        ids = [by_path[str(ds.files[k])] for k in ds.images]
        vals = idx.feature_values(ids, "bg_cnn")
    X = np.stack([vals[i] for i in ids]).astype(np.float32)
    groups = [ds.group[k] for k in ds.images]
    half = {g: n % 2 for n, g in enumerate(sorted(set(groups)))}
    print(f"{'trained on':12s} {'tested on':10s} {'pairs':>6s} {'raw mAP':>8s} {'head mAP':>9s} {'seconds':>8s}  "
          "epoch chosen on held-out images of the training half (val AUC head / raw)")
    for h in (0, 1):
        tr = np.array([n for n, g in enumerate(groups) if half[g] == h])
        te = np.array([n for n, g in enumerate(groups) if half[g] != h])
        a, b = np.triu_indices(len(tr), 1)
        y = np.array([groups[tr[i]] == groups[tr[j]] for i, j in zip(a, b)], np.int64)
        t0 = time.perf_counter()
        head, held = fit_held_out(X[tr], a, b, y)
        secs = time.perf_counter() - t0
        g_te = [groups[n] for n in te]
        print(f"half {'AB'[h]:7s} half {'AB'[1 - h]:5s} {len(y):6d} {leave_one_out_map(X[te], g_te):8.3f} "
              f"{leave_one_out_map(head.embed(X[te]), g_te):9.3f} {secs:8.1f}  "
              f"{held.get('best_epoch')} ({held.get('auc_head')} / {held.get('auc_raw')})")


if __name__ == "__main__":
    main()
