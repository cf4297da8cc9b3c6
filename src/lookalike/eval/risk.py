"""`lookalike eval risk --data DIR`: the fraud README's "Scoring" figures for the risk engine.

The checker reads labels.csv, meta.csv and wall_text.csv; the engine sees only applications.csv and the
photos. Figures: ring recall at the 1 % and 5 % legit thresholds (all members, clean-device members, rings
with at least half their members above), ROC-AUC / AP, per-kind false-positive rates at 5 %, recall by
`risk_at_submission` of the ring members that are not their ring's first, pairwise case precision /
recall / F1 and the false pairs by kind, and the OCR phone recall when the walltext feature exists.
`split` scores one half of the rings and legit places (by a hash of their ids) for held-out reporting.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from lookalike.eval import metrics

LEGIT_KINDS = ("legit", "legit_shared_public_place", "legit_plain_wall", "legit_same_person_new_place")


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def half_of(key: str) -> str:
    """'A' or 'B': a fixed split by a hash of a ring / place id (tuning on A, checking on B)."""
    return "A" if hashlib.sha1(key.encode()).digest()[0] % 2 == 0 else "B"


def threshold_at(legit_scores, fpr: float) -> float:
    """The (1 - fpr) quantile of the legit scores: applications strictly above it count as flagged."""
    return float(np.quantile(np.asarray(legit_scores, float), 1.0 - fpr)) if len(legit_scores) else 1.0


def roc_auc(scores, labels) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores)) if 0 < sum(labels) < len(labels) else float("nan")


def score_results(root: Path, results: dict[str, dict], *, subset: set[str] | None = None) -> dict:
    """Figures from {application_id: {"risk", "risk_at_submission", "case"}} against the set's truth."""
    labels = {r["application_id"]: r for r in _rows(root / "labels.csv")}
    meta = {r["application_id"]: r for r in _rows(root / "meta.csv")}
    apps = {r["application_id"]: r for r in _rows(root / "applications.csv")}
    ids = [a for a in labels if a in results and (subset is None or a in subset)]
    kind = {a: labels[a]["kind"] for a in ids}
    ring = {a: labels[a]["ring"] for a in ids if labels[a]["ring"]}
    risk = {a: float(results[a]["risk"]) for a in ids}
    sub = {a: float(results[a]["risk_at_submission"]) for a in ids}
    legit = [a for a in ids if kind[a] != "fraud_ring"]
    fraud = [a for a in ids if kind[a] == "fraud_ring"]
    clean = [a for a in fraud if meta.get(a, {}).get("device_link") == "clean"]
    out: dict = {"applications": len(ids), "fraud": len(fraud), "legit": len(legit), "clean_members": len(clean)}
    by_ring = defaultdict(list)
    for a in fraud:
        by_ring[ring[a]].append(a)
    for x in (0.01, 0.05):
        t = threshold_at([risk[a] for a in legit], x)
        above = {a for a in ids if risk[a] > t}
        out[f"at_{x:g}"] = {
            "threshold": round(t, 4),
            "ring_recall": round(len(above & set(fraud)) / max(1, len(fraud)), 4),
            "clean_recall": round(len(above & set(clean)) / max(1, len(clean)), 4),
            "rings_half_above": sum(1 for m in by_ring.values() if 2 * len(above & set(m)) >= len(m)),
            "rings": len(by_ring),
            "kind_fpr": {k: round(sum(1 for a in legit if kind[a] == k and a in above) /
                                  max(1, sum(1 for a in legit if kind[a] == k)), 4) for k in LEGIT_KINDS},
        }
    y = [kind[a] == "fraud_ring" for a in ids]
    out["roc_auc"] = round(roc_auc([risk[a] for a in ids], y), 4)
    out["ap"] = round(metrics.scored_average_precision([risk[a] for a in ids], y, n_positive=len(fraud)), 4)
    # at submission: ring members after their ring's first submission, threshold from the legit
    # applications' risk_at_submission (same score on both sides)
    later = []
    for m in by_ring.values():
        m = sorted(m, key=lambda a: (apps[a]["submitted_at"], a))
        later += m[1:]
    t_sub = threshold_at([sub[a] for a in legit], 0.05)
    t_risk = out["at_0.05"]["threshold"]  # the same cut as for `risk` (stricter: risk knows more links)
    out["submission"] = {"threshold": round(t_sub, 4), "later_members": len(later),
                         "recall": round(sum(1 for a in later if sub[a] > t_sub) / max(1, len(later)), 4),
                         "recall_at_risk_threshold": round(sum(1 for a in later if sub[a] > t_risk) / max(1, len(later)), 4),
                         "roc_auc": round(roc_auc([sub[a] for a in ids], y), 4)}
    # cases
    case = {a: results[a].get("case") for a in ids}
    groups = defaultdict(list)
    for a, c in case.items():
        if c not in (None, ""):
            groups[c].append(a)
    pred = {metrics.pair(a, b) for g in groups.values() for a, b in combinations(sorted(g), 2)}
    truth = {metrics.pair(a, b) for m in by_ring.values() for a, b in combinations(sorted(m), 2)}
    prf = metrics.pair_prf(pred, truth)
    place = {a: meta.get(a, {}).get("place") for a in ids}
    false = {"public_place": 0, "plain_wall": 0, "re_applicant": 0, "other_with_legit": 0, "between_rings": 0}
    for a, b in pred - truth:
        ka, kb = kind[a], kind[b]
        if ka == kb == "legit_shared_public_place" and place[a] == place[b]:
            false["public_place"] += 1
        elif ka == kb == "legit_plain_wall":
            false["plain_wall"] += 1
        elif ka == kb == "legit_same_person_new_place" and apps[a]["applicant_id"] == apps[b]["applicant_id"]:
            false["re_applicant"] += 1
        elif ka == kb == "fraud_ring":
            false["between_rings"] += 1
        else:
            false["other_with_legit"] += 1
    out["cases"] = {"groups": len(groups), "predicted_pairs": len(pred), "true_pairs": len(truth),
                    "precision": round(prf.precision, 4), "recall": round(prf.recall, 4), "f1": round(prf.f1, 4),
                    "false_pairs": false}
    return out


def ocr_phone_recall(root: Path, idx) -> dict | None:
    """Share of ring posters/notes (visible >= 90 %) whose phone number the walltext feature read."""
    from lookalike.features import registry

    try:
        import lookalike.features.walltext  # noqa: F401  (registers the feature)
    except ImportError:
        return None
    if "walltext" not in registry.names():
        return None
    from lookalike.features.ocr_text import normalise_phone

    rows = [r for r in _rows(root / "wall_text.csv") if r["role"] != "decoy" and float(r["visible_fraction"]) >= 0.9]
    ids = idx.catalog.ids_by_path()
    want = {}
    for r in rows:
        fid = ids.get(str((root / r["photo"]).resolve())) or ids.get(str(root / r["photo"]))
        if fid is not None:
            want.setdefault(fid, []).append(r)
    walls = idx.feature_values(list(want), "walltext")
    read = total = 0
    for fid, rs in want.items():
        phones = set(getattr(walls.get(fid), "phones", []) or [])
        for r in rs:
            total += 1
            target = normalise_phone(r["phone"]) or r["phone"]
            read += target in phones
    return {"signs": total, "read": read, "recall": round(read / max(1, total), 4)}


def _subset(root: Path, half: str) -> set[str]:
    """Applications of the rings / legit places of one half (the split is by ring id or place id)."""
    out = set()
    labels = {r["application_id"]: r for r in _rows(root / "labels.csv")}
    for r in _rows(root / "meta.csv"):
        key = labels[r["application_id"]]["ring"] or r["place"] or r["application_id"]
        if half_of(key) == half:
            out.add(r["application_id"])
    return out


def _fmt(res: dict) -> list[list]:
    a1, a5 = res["at_0.01"], res["at_0.05"]
    rows = [
        ["ring recall at 1 % legit FPR", f"{a1['ring_recall']:.3f} (threshold {a1['threshold']:.3f})"],
        ["ring recall at 5 % legit FPR", f"{a5['ring_recall']:.3f} (threshold {a5['threshold']:.3f})"],
        ["clean-device members' recall at 1 % / 5 %", f"{a1['clean_recall']:.3f} / {a5['clean_recall']:.3f}"],
        ["rings with >= half above, 1 % / 5 %",
         f"{a1['rings_half_above']}/{a1['rings']} / {a5['rings_half_above']}/{a5['rings']}"],
        ["ROC-AUC / AP (risk)", f"{res['roc_auc']:.3f} / {res['ap']:.3f}"],
    ]
    rows += [[f"FP rate at 5 %: {k}", f"{v:.3f}"] for k, v in a5["kind_fpr"].items()]
    s = res["submission"]
    rows += [["later ring members above 5 % (risk_at_submission; legit risk_at_submission cut)",
              f"{s['recall']:.3f} of {s['later_members']} (threshold {s['threshold']:.3f}, AUC {s['roc_auc']:.3f})"],
             ["later ring members above 5 % (risk_at_submission; legit risk cut)",
              f"{s['recall_at_risk_threshold']:.3f} (threshold {a5['threshold']:.3f})"]]
    c = res["cases"]
    rows += [["cases: pairwise precision / recall / F1", f"{c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f}"],
             ["cases: groups, predicted / true pairs", f"{c['groups']}, {c['predicted_pairs']} / {c['true_pairs']}"]]
    rows += [[f"false pairs: {k}", str(v)] for k, v in c["false_pairs"].items()]
    return rows


def eval_risk(data: str | os.PathLike, *, index: str | os.PathLike | None = None, workers: int | None = None,
              weights: dict | None = None, walltext: bool | None = None, progress=None) -> dict:
    """Score the fraud set with a fresh risk state (the index's photo features are reused when `index` is
    given) and compare with the truth, on the whole set and on each half of its rings/places."""
    from lookalike.api import Index
    from lookalike.eval.run import set_dir
    from lookalike.risk import RiskEngine

    root = set_dir(data, "fraud")
    if not (root / "applications.csv").is_file() or not (root / "labels.csv").is_file():
        raise FileNotFoundError(f"{root}: not a fraud-format set (applications.csv, labels.csv)")
    with tempfile.TemporaryDirectory(prefix="lookalike-risk-") as tmp:
        idx_dir = Path(index) if index else Path(tmp)
        (idx_dir / "risk.sqlite").unlink(missing_ok=True)  # a fresh risk state, features kept
        for extra in ("risk.sqlite-wal", "risk.sqlite-shm"):
            (idx_dir / extra).unlink(missing_ok=True)
        with Index.open(idx_dir, progress=progress) as idx:
            t0 = time.perf_counter()
            eng = RiskEngine(idx, weights=weights, walltext=walltext)
            scored = eng.score_csv(root / "applications.csv", progress=progress)
            secs = time.perf_counter() - t0
            ocr = ocr_phone_recall(root, idx) if eng.walltext else None
            eng.close()
    results = {s.application_id: s.to_dict() for s in scored}
    out = {"task": "risk", "data": str(root), "seconds": round(secs, 1), "skipped": len(eng.skipped),
           "all": score_results(root, results)}
    for h in ("A", "B"):
        out[f"half_{h}"] = score_results(root, results, subset=_subset(root, h))
    out["ocr"] = ocr
    tables = [(f"fraud risk: {out['all']['applications']} applications ({secs:.0f} s)", ["metric", "value"],
               _fmt(out["all"]))]
    for h in ("A", "B"):
        r = out[f"half_{h}"]
        tables.append((f"half {h} ({'tuning' if h == 'A' else 'held out'}): {r['applications']} applications",
                       ["metric", "value"], _fmt(r)))
    if ocr:
        tables.append(("OCR", ["metric", "value"],
                       [["ring signs (visible >= 90 %) whose phone was read", f"{ocr['read']}/{ocr['signs']} = {ocr['recall']:.3f}"]]))
    out["tables"] = tables
    return out


def copy_index(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """A copy of an index directory without its risk state (tuning runs start from the same features)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("risk.sqlite*", "risk-photos"), dirs_exist_ok=True)
