"""`risk train`: fit the fusion on a lender's own labelled history, and say honestly whether it helps.

Labels come from a CSV (application_id plus `label` = fraud | not_fraud | 1 | 0, or `kind` as in the fraud
set's labels.csv where fraud_ring = fraud) and from the analysts' decisions stored by `decide`. The
features are the stored signals of each application (`risk`'s, knowing everything). Stratified 5-fold
cross-validation compares, on the same folds: the default noisy-OR, a logistic regression and gradient
boosting (scikit-learn) by ROC-AUC, average precision and recall at 1 % / 5 % false-positive rate. The
logistic model is stored (and used for `risk` from then on) only when it beats the defaults on every
fold-averaged figure, or when `save=True` forces it.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lookalike.errors import BadInput
from lookalike.risk.fusion import DEFAULT_WEIGHTS, SIGNALS

TRUE = {"fraud", "1", "true", "yes", "fraud_ring"}
FALSE = {"not_fraud", "0", "false", "no", "legit", "legit_shared_public_place", "legit_plain_wall",
         "legit_same_person_new_place"}


def read_labels(path: str | Path) -> dict[str, int]:
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror or e})") from None
    if not rows or "application_id" not in rows[0]:
        raise BadInput(f"{path}: need columns application_id and label (fraud|not_fraud) or kind")
    col = "label" if "label" in rows[0] else "kind" if "kind" in rows[0] else None
    if col is None:
        raise BadInput(f"{path}: need a 'label' (fraud|not_fraud) or 'kind' column")
    out = {}
    for r in rows:
        v = (r.get(col) or "").strip().lower()
        if v in TRUE:
            out[r["application_id"]] = 1
        elif v in FALSE:
            out[r["application_id"]] = 0
    return out


def _noisy_or(X: np.ndarray) -> np.ndarray:
    w = np.array([DEFAULT_WEIGHTS[k] for k in SIGNALS])
    return 1.0 - np.prod(1.0 - np.clip(X * w, 0, 1), axis=1)


def _figures(y, s) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    neg = np.sort(s[y == 0])
    out = {"auc": roc_auc_score(y, s), "ap": average_precision_score(y, s)}
    for x in (0.01, 0.05):
        t = np.quantile(neg, 1 - x) if len(neg) else 1.0
        out[f"recall_{x:g}"] = float((s[y == 1] > t).mean())
    return out


def cross_validate(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> dict[str, dict]:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    k = max(2, min(folds, int(y.sum()), int((1 - y).sum())))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    res = {"defaults": [], "logistic": [], "boosting": []}
    for tr, te in cv.split(X, y):
        res["defaults"].append(_figures(y[te], _noisy_or(X[te])))
        lr = LogisticRegression(C=1.0, max_iter=2000).fit(X[tr], y[tr])
        res["logistic"].append(_figures(y[te], lr.predict_proba(X[te])[:, 1]))
        gb = GradientBoostingClassifier(n_estimators=100, max_depth=2, random_state=seed).fit(X[tr], y[tr])
        res["boosting"].append(_figures(y[te], gb.predict_proba(X[te])[:, 1]))
    return {m: {f: float(np.mean([r[f] for r in rs])) for f in rs[0]} for m, rs in res.items()}


def train(eng, labels_csv: str | Path | None = None, *, save: bool | None = None) -> dict:
    """Cross-validate the fusions on the labelled applications; store the logistic model when it wins."""
    import json

    labels = {a: (1 if lab == "fraud" else 0) for a, lab in eng.store.decisions().items()}
    if labels_csv is not None:
        labels.update(read_labels(labels_csv))
    X, y, missing = [], [], 0
    for a, lab in labels.items():
        sig = eng.signals(a)
        if not sig:
            missing += 1
            continue
        X.append([sig.get(k, 0.0) for k in SIGNALS])
        y.append(lab)
    X, y = np.array(X, float), np.array(y, int)
    if len(y) < 10 or y.sum() < 3 or (1 - y).sum() < 3:
        raise BadInput(f"too few labelled scored applications to train ({len(y)}: {int(y.sum())} fraud); "
                       "score them first with `risk score`")
    cv = cross_validate(X, y)
    wins = all(cv["logistic"][f] > cv["defaults"][f] for f in cv["defaults"])
    out = {"labelled": len(y), "fraud": int(y.sum()), "not_scored": missing, "cv": cv, "logistic_beats_defaults": wins}
    if save or (save is None and wins):
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
        model = {"intercept": float(lr.intercept_[0]), "coef": dict(zip(SIGNALS, map(float, lr.coef_[0])))}
        eng.store.put("model", model)
        eng.model = model
        eng.rescore()
        out["saved"] = model
    else:
        out["saved"] = None
    json.dumps(out)  # JSON-ready
    return out


def clear_model(eng) -> None:
    eng.store.db.execute("DELETE FROM state WHERE key='model'")
    eng.model = None
    eng.rescore()

