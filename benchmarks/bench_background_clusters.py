"""Same background, split for held-out checking: search mAP, pairs at the threshold and clusters, on the
whole background set and on each half of its backgrounds (issue 13).

    python benchmarks/bench_background_clusters.py [--index DIR] [--margin 0.05] [--no-search]

The halves are the risk eval's split (eval/risk.py `half_of`, a hash of the background name): the
clustering parameters and the unverified margin were chosen on half A; half B is held out. Search
queries of one half rank the whole collection; pairs and clusters of one half use its photos alone.
`--margin` sets BackgroundMode.unverified_margin (0 = the score before issue 13) for a comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--index", default=None, help="index folder to build or reuse (default: a temporary one)")
    ap.add_argument("--margin", type=float, default=None, help="unverified margin (default: the mode's)")
    ap.add_argument("--no-search", action="store_true", help="skip the search mAP (the slow part)")
    ap.add_argument("--weights", default=None, help="global,local,colour weights (default: the mode's)")
    ap.add_argument("--dump", default=None, help="write each query's AP, half and scored results to this JSON file")
    args = ap.parse_args(argv)

    from lookalike.api import Index
    from lookalike.cluster import graph as G
    from lookalike.cluster.background import cluster_background
    from lookalike.cluster.engine import BY
    from lookalike.eval import datasets, metrics
    from lookalike.eval.background import _register
    from lookalike.eval.risk import half_of
    from lookalike.features.background import BACKGROUND_FEATURES
    from lookalike.search.modes import MODES

    _register()
    mode = MODES["background"]
    if args.margin is not None:
        mode.unverified_margin = args.margin
    if args.weights:
        mode.weights = tuple(float(w) for w in args.weights.split(","))
    ds = datasets.read_background(Path(args.data) / "background")
    half = {k: half_of(ds.group[k]) for k in ds.images}
    parts = {"all": set(ds.images), "A (tuning)": {k for k in ds.images if half[k] == "A"},
             "B (held out)": {k for k in ds.images if half[k] == "B"}}
    relevant = ds.relevant_sets()
    rows = {name: {} for name in parts}
    with tempfile.TemporaryDirectory(prefix="lookalike-bgc-") as tmp, Index.open(args.index or tmp) as idx:
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), workers=1)
        key_of = {str(ds.files[k]): k for k in ds.images}
        if not args.no_search:
            t0 = time.perf_counter()
            res = idx.search([str(ds.files[q]) for q in ds.queries], mode="background", k=len(ds.images), min_score=0.0)
            print(f"searched {len(ds.queries)} queries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
            rankings = {q: [key_of.get(m.path, m.path) for m in r.results] for q, r in zip(ds.queries, res)}
            for name, keys in parts.items():
                rm = metrics.retrieval_metrics({q: r for q, r in rankings.items() if q in keys},
                                               {q: r for q, r in relevant.items() if q in keys}, ks=(10,))
                rows[name]["mAP"] = rm.mean_ap
                if name == "all" and args.dump:
                    import json

                    dump = {q: {"ap": rm.ap[q], "group": ds.group[q], "half": half[q],
                                "results": [(key_of.get(m.path, m.path), m.score, m.details) for m in r.results[:60]]}
                            for q, r in zip(ds.queries, res)}
                    Path(args.dump).write_text(json.dumps(dump, default=float))
        ids = idx.catalog.ids_by_path()
        fids = [ids[str(ds.files[k])] for k in ds.images]
        pos = {f: n for n, f in enumerate(fids)}
        scored = [(pos[a], pos[b], s) for a, b, s, *_ in mode.pairs(idx, BY["background"]["pair_floor"])
                  if a in pos and b in pos]
    positives = ds.positive_pairs()
    for name, keys in parts.items():
        members = np.array([n for n, k in enumerate(ds.images) if k in keys], np.int64)
        sub = {n: i for i, n in enumerate(members)}
        e = [(sub[a], sub[b], s) for a, b, s in scored if a in sub and b in sub]
        edges = G.make_edges(len(members), *zip(*e)) if e else G.make_edges(len(members), [], [], [])
        predicted = {metrics.pair(ds.images[members[a]], ds.images[members[b]])
                     for a, b, s in zip(edges.a, edges.b, edges.w) if s >= mode.threshold}
        truth_pairs = {p for p in positives if set(p) <= keys}
        prf = metrics.pair_prf(predicted, truth_pairs)
        rows[name].update(pairP=prf.precision, pairR=prf.recall, fp=prf.fp)
        lab = cluster_background(edges).labels
        b3 = metrics.bcubed_prf({ds.images[m]: int(lab[i]) for i, m in enumerate(members)},
                                {ds.images[m]: ds.group[ds.images[m]] for m in members})
        rows[name].update(b3P=b3.precision, b3R=b3.recall, b3F=b3.f1)
        rows[name]["photos"] = len(members)
    print(f"background set, unverified margin {mode.unverified_margin}, threshold {mode.threshold}")
    cols = ["photos", "mAP", "pairP", "pairR", "fp", "b3P", "b3R", "b3F"]
    print(f"{'part':<14}" + "".join(f"{c:>8}" for c in cols))
    for name, r in rows.items():
        print(f"{name:<14}" + "".join(f"{r[c]:>8}" if isinstance(r.get(c), int) else
                                       f"{r[c]:>8.3f}" if c in r else f"{'-':>8}" for c in cols))


if __name__ == "__main__":
    main(sys.argv[1:])
