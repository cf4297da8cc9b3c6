"""`lookalike train text`: index the captioned images, fit the image-text head, store it in the index."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from lookalike.text import head as H
from lookalike.text.captions import read_captions
from lookalike.text.search import HEAD_FILE, REPORT_FILE, feature_matrix

if TYPE_CHECKING:
    from lookalike.api import Index


@dataclass
class Pairs:
    """Captioned images as the head's training input."""

    X: np.ndarray  # (n_images, d) raw image input (head.image_input)
    T: np.ndarray  # (n_pairs, 384) MiniLM vectors of the captions
    image: np.ndarray  # (n_pairs,) row of X each caption describes
    paths: list[str]  # path of each row of X


def gather(index: "Index", rows: list[tuple[str, str]], features=H.IMAGE_FEATURES) -> tuple[Pairs, list[str]]:
    """Training pairs from (path, caption) rows whose images are indexed; problems for the others."""
    from lookalike.text.encoder import encoder

    index.ensure(features)
    ids, mats = feature_matrix(index, features)
    by_path = index.catalog.ids_by_path()
    row_of = {int(i): r for r, i in enumerate(ids)}
    problems, keep = [], []
    for p, cap in rows:
        fid = by_path.get(p)
        if fid is None or fid not in row_of:
            problems.append(f"{p}: not usable (unreadable image: see `lookalike errors`)")
        else:
            keep.append((row_of[fid], cap))
    used = sorted({r for r, _ in keep})
    new = {r: n for n, r in enumerate(used)}
    X = H.image_input({n: m[used] for n, m in mats.items()}, features)
    T = encoder().encode([c for _, c in keep]) if keep else np.zeros((0, 384), np.float32)
    paths = index.catalog.paths(ids[used].tolist())
    return Pairs(X, T, np.array([new[r] for r, _ in keep], np.int64), [paths[int(ids[r])] for r in used]), problems


def split_images(n_images: int, holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) image rows: a random `holdout` share of the images (none below 20 images)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_images)
    n_val = int(round(holdout * n_images)) if n_images >= 20 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def subset(p: Pairs, rows: np.ndarray) -> Pairs:
    new = -np.ones(len(p.X), np.int64)
    new[rows] = np.arange(len(rows))
    sel = new[p.image] >= 0
    return Pairs(p.X[rows], p.T[sel], new[p.image[sel]], [p.paths[r] for r in rows])


def fit(p: Pairs, *, config: H.TrainConfig | None = None, holdout: float = 0.1, refit: bool = True,
        log: Callable[[str], None] | None = None) -> H.TextHead:
    """Fit on all but a held-out share of the images, choosing the epoch by held-out Recall@10; report it;
    then (refit) fit again on every image for that many epochs."""
    c = config or H.TrainConfig()
    tr, va = split_images(len(p.X), holdout, c.seed)
    if len(va) == 0:
        return H.train(p.X, p.T, p.image, features=H.IMAGE_FEATURES, config=c, log=log)
    a, b = subset(p, tr), subset(p, va)
    first = H.train(a.X, a.T, a.image, features=H.IMAGE_FEATURES, config=c, val=(b.X, b.T, b.image), log=log)
    best = first.report["best_epoch"]
    held = {"images": int(len(va)), "captions": int(len(b.T)), "best_epoch": best,
            **{f"recall@{k}": H.recall_at(first, b.X, b.T, b.image, k) for k in (1, 5, 10)}}
    if not refit:
        first.report["held_out"] = held
        return first
    if log:
        log(f"held-out Recall@10 {held['recall@10']} at epoch {best}; refitting on all {len(p.X)} images")
    final = H.train(p.X, p.T, p.image, features=H.IMAGE_FEATURES, config=H.TrainConfig(**{**c.__dict__, "epochs": best}),
                    log=log)
    final.report["held_out"] = held
    final.report["train_seconds"] = round(first.report["train_seconds"] + final.report["train_seconds"], 1)
    return final


@dataclass
class TrainTextReport:
    path: Path
    report: dict
    problems: list[str] = field(default_factory=list)


def train_text(index: "Index", captions_csv: str | os.PathLike, *, epochs: int | None = None,
               holdout: float = 0.1, log=None) -> TrainTextReport:
    """Index the images of a caption CSV, train the head, save it (and its report) in the index."""
    caps = read_captions(captions_csv)
    if not caps.rows:
        raise ValueError(f"{captions_csv}: no usable caption rows" + (f" ({caps.problems[0]})" if caps.problems else ""))
    index.add(caps.images, features=list(H.IMAGE_FEATURES))
    pairs, problems = gather(index, caps.rows)
    if len(pairs.T) < 8:
        raise ValueError(f"{captions_csv}: only {len(pairs.T)} usable captioned images; a head needs more")
    config = H.TrainConfig() if epochs is None else H.TrainConfig(epochs=epochs)
    head = fit(pairs, config=config, holdout=holdout, log=log)
    head.report.update(captions_csv=str(captions_csv), rows_used=int(len(pairs.T)),
                       rows_skipped=len(caps.problems) + len(problems), other_split_rows=caps.skipped_split)
    out = Path(index.dir) / HEAD_FILE
    head.save(out)
    summary = {k: v for k, v in head.report.items() if k != "history"}
    (Path(index.dir) / REPORT_FILE).write_text(json.dumps({**summary, "history": head.report["history"]}, indent=1))
    return TrainTextReport(out, summary, caps.problems + problems)
