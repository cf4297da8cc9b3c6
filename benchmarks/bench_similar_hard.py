"""`similar` on hard same-place queries: mAP per capture condition (clean, night, thermal, season,
viewpoint; 'hard' = the four together) on a tuning set (retrieval) and a held-out set never tuned on
(other photographs of one place from near_duplicate), for the engine's `similar`, the same without
its grey descriptor (the colour-only `similar` before issue 13) and a naive CNN global-pool baseline.

    python benchmarks/bench_similar_hard.py [--data ../shared/data] [--sets tune,held-out]

Each query is a grouped photo under one condition (lookalike.eval.conditions, seeded), searched with
its own photo removed from the index; its relevant images are the other photos of its place.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hard_places import heldout_set, per_condition_map, queries, tune_set  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
COLS = ("clean", "night", "thermal", "season", "viewpoint", "hard")


def naive_rankings(ps, imgs, qs) -> list[list[str]]:
    """EfficientNet-Lite0 conv features, global average pool, cosine: the naive baseline."""
    from lookalike.features.cnn import CnnDescriptor

    net = CnnDescriptor("efficientnet-lite0", p=1.0)
    keys = list(ps.files)
    G = net.embed([imgs[k] for k in keys])
    Q = net.embed([im for _, _, im in qs])
    return [[keys[j] for j in np.argsort(-(G @ q))] for q in Q]


def engine_rankings(ps, qs, tmp: Path, parts: tuple[str, ...], *,
                    chance_inliers: int | None = None) -> tuple[list[list[str]], float]:
    """The engine's `similar` with these descriptor parts (chance_inliers: 0 = SIFT inliers lift from
    the first, as before issue 13); each query's own photo is taken out of the index while its queries
    run. Returns the rankings and the mean search time per query (ms)."""
    from lookalike.api import Index
    from lookalike.search import modes, similar

    mode = modes.get_mode("similar")
    saved = mode.parts, mode.features, similar.CHANCE_INLIERS
    mode.parts = mode.features = parts
    if chance_inliers is not None:
        similar.CHANCE_INLIERS = chance_inliers
    key_of = {str(p): k for k, p in ps.files.items()}
    out: list[list[str]] = [[] for _ in qs]
    spent = 0.0
    try:
        with Index.open(tmp / f"idx-{'-'.join(parts)}") as idx:
            idx.add([str(p) for p in ps.files.values()], workers=1)
            idx.ensure([*parts, "local"])
            by_src: dict[str, list[int]] = {}
            for i, (src, _, _) in enumerate(qs):
                by_src.setdefault(src, []).append(i)
            for src, rows in by_src.items():
                idx.remove([str(ps.files[src])])
                files = []
                for i in rows:
                    f = tmp / f"q{i}.jpg"
                    cv2.imwrite(str(f), cv2.cvtColor(qs[i][2], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
                    files.append(str(f))
                t = time.perf_counter()
                res = idx.search(files, mode="similar", k=len(ps.files), min_score=0.0)
                spent += time.perf_counter() - t
                for i, r in zip(rows, res):
                    out[i] = [key_of[m.path] for m in r.results if m.path in key_of]
                idx.add([str(ps.files[src])], workers=1)
                idx.ensure([*parts, "local"])
    finally:
        mode.parts, mode.features, similar.CHANCE_INLIERS = saved
    return out, 1000 * spent / max(1, len(qs))


def main() -> None:
    from lookalike.imageio import load_file

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--sets", default="tune,held-out")
    ap.add_argument("--draw", type=int, default=0,
                    help="another seed for the conditions (0: the seeds the README's figures use)")
    args = ap.parse_args()
    makers = {"tune": (tune_set, 0), "held-out": (heldout_set, 1)}
    for name in args.sets.split(","):
        make, seed = makers[name]
        seed += 2 * args.draw
        ps = make(args.data)
        imgs = {k: load_file(p).rgb for k, p in ps.files.items()}
        qs = queries(ps, imgs, seed)
        print(f"\n{name}: {len(ps.files)} images, {len(ps.group)} grouped in {len(set(ps.group.values()))} places, "
              f"{len(qs)} queries")
        print(f"{'method':<46}" + "".join(f"{c:>10}" for c in COLS) + f"{'ms/query':>10}")
        rows = [("naive: Lite0 global average pool", per_condition_map(ps, qs, naive_rankings(ps, imgs, qs)), None)]
        with tempfile.TemporaryDirectory() as tmp:
            for label, parts, kw in (("similar before (colour, lift from 1 inlier)", ("cnn2",), {"chance_inliers": 0}),
                                     ("similar, colour only, lift past 3 inliers", ("cnn2",), {}),
                                     ("similar now (colour + grey, dark: grey)", ("cnn2", "cnn2grey"), {})):
                rk, ms = engine_rankings(ps, qs, Path(tmp), parts, **kw)
                rows.append((label, per_condition_map(ps, qs, rk), ms))
        for label, m, ms in rows:
            print(f"{label:<46}" + "".join(f"{m[c]:>10.3f}" for c in COLS) + (f"{ms:>10.0f}" if ms else f"{'':>10}"),
                  flush=True)


if __name__ == "__main__":
    main()
