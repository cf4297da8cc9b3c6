"""Evaluation of "same background" search on a set in the background format (shared/data/background).

    python -m lookalike.eval.background [DATA_DIR] [--index DIR]

Indexes the set, then measures in one run:
- leave-one-out retrieval (relevance = same `background`) for the background mode and, as the
  baseline, the whole-image "similar" mode: mAP and recall@k;
- pairs at the background mode's default threshold: precision / recall against all same-background
  pairs, and the false-match rate among same-person / other-background pairs (the hard negatives);
- person-mask mean IoU of the stored masks against the set's masks/ (composites only).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lookalike.eval import datasets, metrics


def _register() -> None:
    """Make sure the background extractors and mode are known (the lead wires them in for good)."""
    import lookalike.features.background  # noqa: F401  (registers bg_* extractors)
    from lookalike.search.background import BackgroundMode
    from lookalike.search.modes import MODES

    MODES.setdefault("background", BackgroundMode())


def _set_dir(data_dir: str | os.PathLike) -> Path:
    d = Path(data_dir)
    return d / "background" if (d / "background").is_dir() and not (d / "images").is_dir() else d


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """IoU of two person masks (nonzero = person) after resizing `truth` to pred's size."""
    t = cv2.resize(truth, (pred.shape[1], pred.shape[0]), interpolation=cv2.INTER_AREA) > 127
    p = pred > 127
    union = np.logical_or(p, t).sum()
    return 1.0 if union == 0 else float(np.logical_and(p, t).sum() / union)


def evaluate_background(data_dir: str | os.PathLike, index_dir: str | os.PathLike | None = None, *,
                        workers: int | None = 1, ks: tuple[int, ...] = (1, 5, 10),
                        similar: bool = True, every: int = 1,
                        thresholds: tuple[float, ...] = (0.45, 0.5, 0.55, 0.6, 0.65),
                        weight_grid: tuple[tuple[float, float, float], ...] = ((0.5, 0.3, 0.2), (0.5, 0.4, 0.1),
                                                                              (0.5, 0.5, 0.0)),
                        pair_head: str = "index") -> dict:
    """Index the set (in `index_dir`, kept for reuse, or a temporary folder) and return the metrics.

    every: keep every n-th background only (sorted by name), for quick runs such as the tests.
    thresholds: pair precision / recall / same-person false matches are also given at these scores.
    weight_grid: (global, local, colour) weights whose mAP is recomputed from the same results' components.
    pair_head: "on" / "off" / "index" (the index's setting): the trained pair head (`train pairs`) in the
    global component, when the index has one."""
    _register()
    from lookalike.search.modes import MODES

    ds = datasets.read_background(_set_dir(data_dir))
    if every > 1:
        keep = set(sorted(set(ds.group.values()))[::every])
        ds.images = [k for k in ds.images if ds.group[k] in keep]
        ds.files = {k: ds.files[k] for k in ds.images}
    out: dict = {"images": len(ds.images), "queries": len(ds.queries)}
    mode = MODES["background"]
    before, mode.pair_head = mode.pair_head, pair_head
    try:
        return _evaluate(ds, out, index_dir, workers, ks, similar, thresholds, weight_grid)
    finally:
        mode.pair_head = before


def _evaluate(ds, out, index_dir, workers, ks, similar, thresholds, weight_grid) -> dict:
    from lookalike.api import Index
    from lookalike.features.background import BACKGROUND_FEATURES
    from lookalike.heads.pairs import head_for_search
    from lookalike.search.modes import MODES

    relevant = ds.relevant_sets()
    n = len(ds.images)
    with tempfile.TemporaryDirectory(prefix="lookalike-bg-") as tmp, Index.open(index_dir or tmp) as idx:
        t0 = time.perf_counter()
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), workers=workers,
                defaults=similar)  # the whole-image features only for the `similar` baseline
        out["index_seconds"] = round(time.perf_counter() - t0, 2)
        out["pair_head"] = head_for_search(idx, MODES["background"].pair_head) is not None
        key_of = {str(ds.files[k]): k for k in ds.images}

        for mode in ("background", "similar") if similar else ("background",):
            t0 = time.perf_counter()
            res = idx.search([str(ds.files[q]) for q in ds.queries], mode=mode, k=n, min_score=0.0)
            secs = time.perf_counter() - t0
            rankings = {q: [key_of.get(m.path, m.path) for m in r.results] for q, r in zip(ds.queries, res)}
            rm = metrics.retrieval_metrics(rankings, relevant, ks=ks)
            out[mode] = {"map": round(rm.mean_ap, 4), "recall_at": {k: round(v, 4) for k, v in rm.recall_at.items()},
                         "ms_per_query": round(1000 * secs / max(1, len(ds.queries)), 1)}
            if mode == "background":
                out["weights"] = _reweighted(res, ds.queries, key_of, relevant, ks, weight_grid)
                if out["pair_head"]:
                    out["global_variants"] = {v: {"map": _reweighted(res, ds.queries, key_of, relevant, ks,
                                                                     (MODES["background"].weights,), v)}
                                              for v in GLOBAL_VARIANTS}

        mode = MODES["background"]
        # one pass at the lowest threshold of interest, then every threshold from its scores
        low = min(thresholds + (mode.threshold,))
        scored = mode.pairs(idx, low)
        paths = idx.catalog.paths({i for h in scored for i in h[:2]})
        scored = [(metrics.pair(key_of.get(paths[a], paths[a]), key_of.get(paths[b], paths[b])), sc, det)
                  for a, b, sc, _, det in scored]
        positives, hard = ds.positive_pairs(), ds.hard_negative_pairs()

        def at(t: float, variant: str | None = None) -> dict:
            predicted = {p for p, sc, det in scored
                         if (sc if variant is None else _variant_score(det, mode.weights, variant)) >= t}
            prf = metrics.pair_prf(predicted, positives)
            return {"threshold": t, "precision": round(prf.precision, 4), "recall": round(prf.recall, 4),
                    "f1": round(prf.f1, 4), "tp": prf.tp, "fp": prf.fp, "fn": prf.fn, "hard_negatives": len(hard),
                    "hard_negative_above": len(predicted & hard),
                    "hard_negative_false_rate": round(len(predicted & hard) / max(1, len(hard)), 4)}

        out["pairs"] = at(mode.threshold)
        out["thresholds"] = [at(t) for t in sorted(set(thresholds))]
        for v in out.get("global_variants", {}):
            out["global_variants"][v]["pairs"] = at(mode.threshold, v)

        ids = {r.path: r.id for r in idx.catalog.files()}
        comp = [k for k in ds.images if ds.mask_path(k) is not None and str(ds.files[k]) in ids]
        recs = idx.feature_values([ids[str(ds.files[k])] for k in comp], "bg_mask")
        ious: dict[str, list[float]] = {"small": [], "large": []}
        for k in comp:
            rec = recs.get(ids[str(ds.files[k])])
            truth = cv2.imread(str(ds.mask_path(k)), cv2.IMREAD_GRAYSCALE)
            if rec is not None and truth is not None:
                # small: the person covers under 10 % of the frame (full-body shots), the hard case
                ious["small" if (truth > 127).mean() < 0.1 else "large"].append(mask_iou(rec.mask, truth))
        every_iou = [x for v in ious.values() for x in v]
        out["mask_iou"] = {"mean": round(float(np.mean(every_iou)), 4) if every_iou else 0.0,
                           "images": len(every_iou),
                           "by_size": {k: round(float(np.mean(v)), 4) for k, v in ious.items() if v}}
    return out


# what the global component ramps when the pair head is on, recomputed from one run's components
# (the head run's candidates and expansion: an approximation of the run without the head for "raw")
GLOBAL_VARIANTS = {"raw": lambda c, h: c, "head": lambda c, h: h, "mean": lambda c, h: (c + h) / 2}


def _variant_score(d: dict, w, variant: str) -> float:
    from lookalike.search.background import BackgroundMode, _ramp

    mode = BackgroundMode()
    g = d["global"] if d.get("head") is None else _ramp(GLOBAL_VARIANTS[variant](d["cosine"], d["head"]),
                                                         mode.cos_floor, mode.cos_full)
    s = w[0] * g + w[1] * d["local"] + w[2] * d["colour"]
    return min(s, mode.weak_cap) if d.get("reasons") else s


def _reweighted(res, queries, key_of, relevant, ks, grid, variant: str | None = None):
    """mAP of other fusion weights, re-ranking the background results from their per-component scores
    (and of a global variant, when given: then the mAP of the one weight in `grid`)."""
    from lookalike.search.background import BackgroundMode

    cap = BackgroundMode().weak_cap
    out = {}
    for w in grid:
        rankings = {}
        for q, r in zip(queries, res):
            def score(m):
                d = m.details
                if variant is not None:
                    return _variant_score(d, w, variant)
                s = w[0] * d["global"] + w[1] * d["local"] + w[2] * d["colour"]
                return min(s, cap) if d.get("reasons") else s
            rankings[q] = [key_of.get(m.path, m.path) for m in sorted(r.results, key=lambda m: -score(m))]
        rm = metrics.retrieval_metrics(rankings, relevant, ks=ks)
        out["/".join(f"{x:g}" for x in w)] = round(rm.mean_ap, 4)
    return next(iter(out.values())) if variant is not None else out



def table(r: dict) -> str:
    lines = [f"background set: {r['images']} images, {r['queries']} queries, indexed in {r['index_seconds']} s; "
             f"pair head {'on' if r.get('pair_head') else 'off'}"]
    ks = list(r["background"]["recall_at"])
    lines.append(f"{'mode':<12}{'mAP':>8}" + "".join(f"{'R@' + str(k):>8}" for k in ks) + f"{'ms/q':>8}")
    for mode in ("background", "similar"):
        if mode in r:
            m = r[mode]
            lines.append(f"{mode:<12}{m['map']:>8.3f}" + "".join(f"{m['recall_at'][k]:>8.3f}" for k in ks)
                         + f"{m['ms_per_query']:>8.0f}")
    p = r["pairs"]
    lines.append(f"pairs at threshold {p['threshold']}: precision {p['precision']:.3f} recall {p['recall']:.3f} "
                 f"F1 {p['f1']:.3f} (tp {p['tp']}, fp {p['fp']}, fn {p['fn']})")
    lines.append(f"same person / other background above threshold: {100 * p['hard_negative_false_rate']:.2f}% "
                 f"of {p['hard_negatives']}")
    if r.get("weights"):
        lines.append("background mAP by weights (global/local/colour): "
                     + ", ".join(f"{w} {m:.3f}" for w, m in r["weights"].items()))
    for t in r.get("thresholds", []):
        lines.append(f"  at {t['threshold']:.2f}: precision {t['precision']:.3f} recall {t['recall']:.3f} "
                     f"same-person/other-background {t['hard_negative_above']}/{t['hard_negatives']}")
    for v, m in r.get("global_variants", {}).items():
        p = m["pairs"]
        lines.append(f"  global = {v} (recomputed from the head run): mAP {m['map']:.3f}, at {p['threshold']:.2f} "
                     f"precision {p['precision']:.3f} recall {p['recall']:.3f} same-person/other-background "
                     f"{p['hard_negative_above']}/{p['hard_negatives']}")
    mi = r["mask_iou"]
    lines.append(f"person mask IoU: {mi['mean']:.3f} over {mi['images']} composites"
                 + "".join(f", {k} people {v:.3f}" for k, v in mi.get("by_size", {}).items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    ap.add_argument("data", nargs="?", default=os.environ.get("LOOKALIKE_DATA", str(default)))
    ap.add_argument("--index", default=None, help="index folder to build or reuse (default: a temporary one)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    print(table(evaluate_background(args.data, args.index, workers=args.workers)))


if __name__ == "__main__":
    main(sys.argv[1:])
