"""`lookalike eval ...`: index an evaluation set, run the engine, score it against the ground truth.

Each evaluation is a function `eval_<task>(data, *, ...) -> dict` registered in `EVALS`; the dict is
JSON-ready and carries `tables` (title, columns, rows) for printing. Metrics come from
`lookalike.eval.metrics`, ground truth from `lookalike.eval.datasets`.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from lookalike.api import Index
from lookalike.eval import datasets, metrics
from lookalike.search.modes import MODES

Progress = Callable[[str], Callable[[int, int], None]] | None


def set_dir(data: str | os.PathLike, name: str) -> Path:
    """The set's folder: `data` itself, or `data/name` when given the whole data tree."""
    data = Path(data)
    if (data / name).is_dir() and not (data / "images").is_dir():
        return data / name
    return data


def check_modes(modes: Sequence[str]) -> list[str]:
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {', '.join(unknown)}: this engine has {', '.join(MODES)}")
    return list(modes)


@contextmanager
def _index(files: Sequence[Path], index: str | os.PathLike | None, *, workers: int | None,
           progress: Progress) -> Iterator[tuple[Index, dict]]:
    """An index holding `files` (a temporary one unless `index` is given) and timing facts."""
    with tempfile.TemporaryDirectory(prefix="lookalike-eval-") as tmp:
        with Index.open(index or tmp, progress=progress) as idx:
            t0 = time.perf_counter()
            rep = idx.add([str(f) for f in files], workers=workers)
            info = idx.info()
            facts = {"index_seconds": round(time.perf_counter() - t0, 2), "files": len(files),
                     "indexed": info["files_ok"], "unreadable": info["files_error"], "failed_now": rep.failed}
            yield idx, facts


def _prf(r: metrics.PRF) -> dict:
    return {"precision": round(r.precision, 4), "recall": round(r.recall, 4), "f1": round(r.f1, 4),
            "tp": r.tp, "fp": r.fp, "fn": r.fn}


# -- copy detection (near_duplicate format) ---------------------------------------------------

def eval_copy(data: str | os.PathLike, *, mode: str = "copy", threshold: float | None = None,
              index: str | os.PathLike | None = None, workers: int | None = None,
              progress: Progress = None) -> dict:
    """Pairwise copy detection on a near_duplicate-format folder at the mode's default threshold."""
    check_modes([mode])
    ds = datasets.read_near_duplicate(set_dir(data, "near_duplicate"))
    truth, hard = ds.true_pairs(), ds.hard_negative_pairs()
    listed = {metrics.pair(p.a, p.b) for p in ds.pairs}
    with _index([ds.files[k] for k in ds.images], index, workers=workers, progress=progress) as (idx, facts):
        errors = {ds.key_of(p): r for p, r in idx.errors()}
        t0 = time.perf_counter()
        res = idx.dedup(mode=mode, threshold=threshold)
        facts["dedup_seconds"] = round(time.perf_counter() - t0, 2)
        # a lower cut gives the scored pairs behind AP and recall at 99 % precision
        low = idx.dedup(mode=mode, threshold=min(0.5, res.threshold)) if res.threshold > 0.5 else res
    pred = ds.pair_keys(res.pairs)
    scored = {}
    for p in low.pairs:
        k = metrics.pair(ds.key_of(p.a), ds.key_of(p.b))
        scored[k] = max(p.score, scored.get(k, 0.0))
    scores, labels = list(scored.values()), [k in truth for k in scored]
    r99, t99 = metrics.recall_at_precision(scores, labels, n_positive=len(truth), precision=0.99)
    closure = metrics.pair_prf(pred, truth)
    # listed pairs: a copy pair that is not listed (only implied by transitivity) counts neither way
    on_list = metrics.pair_prf({p for p in pred if p in listed or not ds.is_copy(*p)}, listed)
    per = metrics.per_category_recall(pred, {metrics.pair(p.a, p.b): p.transform for p in ds.pairs})
    # what each threshold buys (closure precision/recall, hard negatives), from the low-cut scored pairs
    by_threshold = []
    for t in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        if t < low.threshold:
            continue
        at = {k for k, sc in scored.items() if sc >= t}
        r = metrics.pair_prf(at, truth)
        by_threshold.append({"threshold": t, "precision": round(r.precision, 4), "recall": round(r.recall, 4),
                             "hard_negative_fpr": round(metrics.false_positive_rate(at, hard), 4)})
    missing_unreadable = sorted(ds.unreadable - set(errors))
    out = {
        "task": "copy", "mode": mode, "threshold": res.threshold, "data": str(ds.root), **facts,
        "pairs_predicted": len(pred), "true_pairs": len(truth), "listed_pairs": len(listed),
        "closure": _prf(closure), "listed": _prf(on_list),
        "ap": round(metrics.scored_average_precision(scores, labels, n_positive=len(truth)), 4),
        "ap_min_score": low.threshold,
        "recall_at_99p": round(r99, 4), "threshold_at_99p": t99,
        "hard_negative_fpr": round(metrics.false_positive_rate(pred, hard), 4),
        "hard_negatives": len(hard),
        "unexpected_errors": sorted(set(errors) - ds.unreadable), "unreadable_not_reported": missing_unreadable,
        "per_transform": {t: {"recall": round(r.recall, 4), "found": r.tp, "pairs": r.tp + r.fn}
                          for t, r in per.items()},
        "by_threshold": by_threshold,
    }
    out["tables"] = [
        (f"copy detection: mode {mode}, threshold {res.threshold}", ["metric", "value"], [
            ["precision / recall / F1 (transitive closure)",
             f"{closure.precision:.3f} / {closure.recall:.3f} / {closure.f1:.3f}"],
            ["precision / recall / F1 (listed pairs a->b)",
             f"{on_list.precision:.3f} / {on_list.recall:.3f} / {on_list.f1:.3f}"],
            ["recall at 99 % precision (closure)",
             f"{r99:.3f}" + (f" (score >= {t99:.3f})" if t99 is not None else " (never reached)")],
            [f"average precision (pairs scored >= {low.threshold})", f"{out['ap']:.3f}"],
            ["hard-negative false-positive rate", f"{out['hard_negative_fpr']:.4f} of {len(hard)}"],
            ["pairs predicted / true (closure)", f"{len(pred)} / {len(truth)}"],
            ["files / unreadable reported", f"{facts['files']} / {facts['unreadable']}"],
            ["index s / dedup s", f"{facts['index_seconds']} / {facts['dedup_seconds']}"],
        ]),
        ("what a threshold buys (closure pairs)", ["threshold", "precision", "recall", "hard-negative FPR"],
         [[f"{r['threshold']:g}", f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['hard_negative_fpr']:.4f}"]
          for r in by_threshold]),
        ("recall per transform (listed pairs)", ["transform", "recall", "found"],
         [[t, f"{r.recall:.3f}", f"{r.tp}/{r.tp + r.fn}"]
          for t, r in sorted(per.items(), key=lambda kv: (kv[1].recall, kv[0]))]),
    ]
    return out


@contextmanager
def _no_rerank(mode, off: bool):
    """Temporarily switch off a mode's geometric re-ranking (SimilarMode.rerank = 0)."""
    old = getattr(mode, "rerank", None)
    if off and old is not None:
        mode.rerank = 0
    try:
        yield
    finally:
        if off and old is not None:
            mode.rerank = old


# -- retrieval (retrieval format: groups.csv) ---------------------------------------------------

def eval_retrieval(data: str | os.PathLike, *, modes: Sequence[str] = ("similar",),
                   index: str | os.PathLike | None = None, workers: int | None = None,
                   ks: Sequence[int] = (1, 5, 10), progress: Progress = None) -> dict:
    """Leave-one-out ranking of every grouped image against all others, for each mode."""
    modes = check_modes(modes)
    ds = datasets.read_retrieval(set_dir(data, "retrieval"))
    relevant = ds.relevant_sets()
    rows, per_mode = [], {}
    # similar mode is also scored on its global descriptor alone, to show what verification adds
    runs = [(m, m) for m in modes] + ([("similar (global CNN only)", "similar")] if "similar" in modes else [])
    with _index([ds.files[k] for k in ds.images], index, workers=workers, progress=progress) as (idx, facts):
        n = len(ds.images)
        for label, mode in runs:
            t0 = time.perf_counter()
            with _no_rerank(MODES[mode], label != mode):
                results = idx.search([str(ds.files[q]) for q in ds.queries], mode=mode, k=n, min_score=0.0)
            secs = time.perf_counter() - t0
            rankings = {q: [ds.key_of(m.path) for m in r.results] for q, r in zip(ds.queries, results)}
            rm = metrics.retrieval_metrics(rankings, relevant, ks=ks)
            per_mode[label] = {"map": round(rm.mean_ap, 4),
                              "recall_at": {k: round(v, 4) for k, v in rm.recall_at.items()},
                              "hit_at": {k: round(v, 4) for k, v in rm.hit_at.items()},
                              "queries": rm.n_queries, "search_seconds": round(secs, 2)}
            rows.append([label, f"{rm.mean_ap:.3f}", *(f"{rm.recall_at[k]:.3f}" for k in ks),
                         f"{1000 * secs / max(1, rm.n_queries):.0f}"])
    return {"task": "retrieval", "data": str(ds.root), **facts, "queries": len(ds.queries), "modes": per_mode,
            "tables": [(f"leave-one-out retrieval: {len(ds.queries)} queries, {len(ds.images)} images",
                        ["mode", "mAP", *(f"R@{k}" for k in ks), "ms/query"], rows)]}


# The lead adds "background" and "cluster" here with the same shape: (data, **options) -> dict.
def eval_risk(data, **kw) -> dict:
    from lookalike.eval.risk import eval_risk as run

    return run(data, **kw)


def eval_text(data: str | os.PathLike, **kw) -> dict:
    """Text -> image retrieval on a captions-format set (lookalike.eval.text)."""
    from lookalike.eval.text import eval_text as run

    return run(data, **kw)


EVALS: dict[str, Callable[..., dict]] = {"copy": eval_copy, "retrieval": eval_retrieval, "risk": eval_risk,
                                        "text": eval_text}
