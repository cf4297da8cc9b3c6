"""`lookalike train pairs --pairs PAIRS.csv`: the background pair head trained from labelled pairs.

The seeds' other training source: pairs of photos marked same background (1) or not (0). Rows
`path_a,path_b,same` (a header row is allowed; relative paths are relative to the CSV). Malformed rows
(wrong column count, `same` not 0/1, missing file) are reported one line each and skipped. The images are
indexed with the background features; the head (the same g(x) = L2n(x + MLP(x)) as the self-supervised one)
is trained with binary cross-entropy on P(same) = sigmoid(a cos + b), a and b learned with it. A fifth of
the images is held out first: the head is trained on the pairs among the others and the epoch with the best
ROC AUC on the pairs among the held-out images is kept (0: the identity, when training only overfits; it
did with a fixed 300 epochs: DEV half-set mAP 0.856 -> 0.651), reported against the raw descriptor; the head
is then refit on every pair for that many epochs.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.heads.pairs import HEAD_FILE, PairHead, calibration
from lookalike.store.catalog import normalise


@dataclass
class LabelledPairs:
    rows: list[tuple[str, str, int]] = field(default_factory=list)  # (path_a, path_b, same)
    problems: list[str] = field(default_factory=list)


def read_pairs(path: str | Path) -> LabelledPairs:
    """Rows path_a,path_b,same (0/1) of a CSV; one problem line per malformed row."""
    path = Path(path)
    out = LabelledPairs()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    for n, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        if n == 1 and len(row) >= 3 and row[2].strip().lower() not in ("0", "1"):
            continue  # header
        if len(row) != 3:
            out.problems.append(f"{path.name} line {n}: expected path_a,path_b,same, got {len(row)} columns")
            continue
        a, b, same = (c.strip() for c in row)
        if same not in ("0", "1"):
            out.problems.append(f"{path.name} line {n}: same must be 0 or 1, got {same!r}")
            continue
        pa, pb = (p if Path(p).is_absolute() else path.parent / p for p in (a, b))
        missing = [str(p) for p in (pa, pb) if not Path(p).is_file()]
        if not a or not b or missing:
            out.problems.append(f"{path.name} line {n}: no such file {', '.join(missing) or repr(a or b)}")
            continue
        out.rows.append((normalise(pa), normalise(pb), int(same)))  # the index's keys
    return out


def _auc(scores: np.ndarray, y: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, scores)), 4) if 0 < y.sum() < len(y) else None


def fit(X: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, hidden: int = 64, epochs: int = 100,
        lr: float = 1e-3, weight_decay: float = 1e-2, seed: int = 0, val=None, every: int = 10) -> PairHead:
    """Siamese head on descriptors X (n, d) from pairs (a[i], b[i]) labelled y[i] in {0, 1}.
    val: (a, b, y) pairs to score every `every` epochs: the head of the best epoch is returned, its
    report saying which (epoch 0: the untrained identity)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # tiny matrices: a second thread only spins (3.5x the CPU on the shared machine)
    Xt, at, bt, yt = torch.from_numpy(X), torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(y).float()
    d = X.shape[1]
    P = {"w1": torch.nn.Parameter(torch.randn(d, hidden) / np.sqrt(d)), "b1": torch.nn.Parameter(torch.zeros(hidden)),
         "w2": torch.nn.Parameter(torch.zeros(hidden, d)), "a": torch.nn.Parameter(torch.tensor(10.0)),
         "b": torch.nn.Parameter(torch.tensor(-8.0))}
    opt = torch.optim.AdamW(P.values(), lr=lr, weight_decay=weight_decay)
    pos = float(y.mean())
    weight = torch.where(yt > 0, 0.5 / max(pos, 1e-3), 0.5 / max(1 - pos, 1e-3))  # balanced classes
    best = (-1.0, 0, None)
    for epoch in range(epochs + 1):
        z = torch.nn.functional.normalize(Xt + torch.relu(Xt @ P["w1"] + P["b1"]) @ P["w2"], dim=1)
        if val is not None and (epoch % every == 0 or epoch == epochs):
            zn = z.detach().numpy()
            auc = _auc((zn[val[0]] * zn[val[1]]).sum(1), val[2]) or 0.0
            if auc > best[0]:
                best = (auc, epoch, {k: v.detach().numpy().copy() for k, v in P.items()})
        if epoch == epochs:
            break
        logit = P["a"] * (z[at] * z[bt]).sum(1) + P["b"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yt, weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    params = best[2] if best[2] is not None else {k: v.detach().numpy() for k, v in P.items()}
    head = PairHead({k: np.asarray(v, np.float32) for k, v in params.items()})
    head.params.update(calibration(X, head.embed(X)))
    head.report = {"final_loss": round(loss.item(), 4) if epochs else None}
    if val is not None:
        head.report.update({"best_epoch": best[1], "val_auc": best[0]})
    return head


def fit_held_out(X: np.ndarray, a: np.ndarray, b: np.ndarray, y: np.ndarray, *, epochs: int = 100,
                 holdout: float = 0.2, seed: int = 0) -> tuple[PairHead, dict]:
    """Choose the epoch on the pairs among a held-out fifth of the images, then refit on every pair."""
    n = len(X)
    out = np.random.default_rng(seed).random(n) < holdout
    tr, va = ~out[a] & ~out[b], out[a] & out[b]
    held: dict = {}
    best = epochs
    if va.sum() >= 4 and 0 < y[va].sum() < va.sum() and 0 < y[tr].sum() < tr.sum():
        h = fit(X, a[tr], b[tr], y[tr], epochs=epochs, seed=seed, val=(a[va], b[va], y[va]))
        best = h.report["best_epoch"]
        held = {"images": int(out.sum()), "pairs": int(va.sum()), "best_epoch": best, "auc_head": h.report["val_auc"],
                "auc_raw": _auc((X[a[va]] * X[b[va]]).sum(1), y[va])}
    head = fit(X, a, b, y, epochs=best, seed=seed)
    return head, held


def train_labelled(index, pairs_csv: str | Path, *, epochs: int = 100, seed: int = 0,
                   progress=None) -> tuple[Path, dict, list[str]]:
    """Index the pairs' images, train the head on every usable pair, save it in the index.
    Returns (head file, report, problems)."""
    from lookalike.features.background import BACKGROUND_FEATURES

    lp = read_pairs(pairs_csv)
    problems = list(lp.problems)
    paths = sorted({p for a, b, _ in lp.rows for p in (a, b)})
    if paths:
        index.add(paths, features=list(BACKGROUND_FEATURES), defaults=False)
    ids = index.catalog.ids_by_key()  # rows hold keys: a file first indexed under another spelling is found
    vals = index.feature_values([ids[p] for p in paths if p in ids], "bg_cnn")
    row_of = {p: n for n, p in enumerate(p for p in paths if p in ids and ids[p] in vals)}
    keep = []
    for a, b, same in lp.rows:
        bad = [p for p in (a, b) if p not in row_of]
        if bad:
            problems.append(f"{bad[0]}: not usable (unreadable image: see `lookalike errors`)")
        else:
            keep.append((row_of[a], row_of[b], same))
    y = np.array([s for _, _, s in keep], np.int64)
    if len(keep) < 4 or y.sum() == 0 or y.sum() == len(y):
        raise ValueError(f"{len(keep)} usable pairs ({int(y.sum())} same): need a few of each kind")
    X = np.stack([vals[ids[p]] for p in row_of]).astype(np.float32)
    A = np.array([k[0] for k in keep], np.int64)
    B = np.array([k[1] for k in keep], np.int64)
    t0 = time.perf_counter()
    head, held = fit_held_out(X, A, B, y, epochs=epochs, seed=seed)
    head.report.update({"source": "labelled pairs", "pairs": len(keep), "same": int(y.sum()), "images": len(X),
                        "epochs": epochs, "held_out": held, "train_seconds": round(time.perf_counter() - t0, 1),
                        "skipped_rows": len(problems)})
    out = Path(index.dir) / HEAD_FILE
    head.save(out)
    return out, head.report, problems
