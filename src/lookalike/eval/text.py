"""`lookalike eval text --data DIR`: text -> image retrieval on a captions-format set.

captions.csv rows `path,caption,domain,split`. The head is trained on `train` rows only (the trainer
keeps 10% of those images apart to choose its epoch: that held-out score is reported too); each `test`
caption then ranks the `test` images of its own domain, and the relevant image is its own. Side by side
(the issue's anchors): a ridge regression from the CNN descriptor to MiniLM vectors, the zero-shot
ImageNet-class fallback, and random ranking.
"""

from __future__ import annotations

import csv
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from lookalike.eval.run import Progress, _index, set_dir

KS = (1, 5, 10)


def read_set(folder: Path) -> list[dict]:
    f = folder / "captions.csv"
    if not f.is_file():
        raise FileNotFoundError(f"{folder}: no captions.csv (expected the captions set's format)")
    with open(f, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"path", "caption", "domain", "split"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"{f}: needs columns {sorted(need)}")
    for r in rows:
        r["file"] = str(folder / r["path"])
    return rows


def rank_metrics(ranks: np.ndarray) -> dict:
    """Recall@K and mAP (one relevant item: AP = 1/rank) from 1-based ranks."""
    out = {f"R@{k}": round(float((ranks <= k).mean()), 4) for k in KS}
    out["mAP"] = round(float((1.0 / ranks).mean()), 4)
    return out


def ranks_from_scores(S: np.ndarray, own: np.ndarray) -> np.ndarray:
    """1-based rank of column own[i] in row i of S (ties count against it)."""
    mine = S[np.arange(len(S)), own]
    return 1 + (S > mine[:, None]).sum(axis=1)


def fit_ridge(X: np.ndarray, Y: np.ndarray, alpha: float) -> np.ndarray:
    """W minimising |[X 1] W - Y|^2 + alpha |W|^2 (closed form)."""
    Xb = np.hstack([X, np.ones((len(X), 1), np.float32)])
    A = Xb.T @ Xb + alpha * np.eye(Xb.shape[1], dtype=np.float32)
    return np.linalg.solve(A, Xb.T @ Y).astype(np.float32)


def ridge_anchor(Xtr, Ttr, img_tr, Xval, Tval, img_val) -> tuple[np.ndarray, float]:
    """The issue's baseline: CNN descriptor -> MiniLM vector by ridge regression (one target per caption),
    alpha chosen on the held-out images."""
    best = None
    for alpha in (0.1, 1.0, 10.0, 100.0):
        W = fit_ridge(Xtr[img_tr], Ttr, alpha)
        P = np.hstack([Xval, np.ones((len(Xval), 1), np.float32)]) @ W
        r = (ranks_from_scores(Tval @ P.T, img_val) <= 10).mean()
        if best is None or r > best[1]:
            best = (alpha, r)
    X = np.concatenate([Xtr, Xval])
    T = np.concatenate([Ttr, Tval])
    img = np.concatenate([img_tr, img_val + len(Xtr)])
    return fit_ridge(X[img], T, best[0]), best[0]


def eval_text(data: str | os.PathLike, *, index: str | os.PathLike | None = None, workers: int | None = None,
              epochs: int | None = None, progress: Progress = None, log=None) -> dict:
    from lookalike.text import head as H
    from lookalike.text.encoder import encoder
    from lookalike.text.search import class_text, feature_matrix, softmax, zero_shot_scores
    from lookalike.text.train import Pairs, fit, gather, split_images, subset

    folder = set_dir(data, "captions")
    rows = read_set(folder)
    files = sorted({r["file"] for r in rows})
    with _index([Path(f) for f in files], index, workers=workers, progress=progress) as (idx, facts):
        t0 = time.perf_counter()
        idx.ensure(H.IMAGE_FEATURES)
        facts["feature_seconds"] = round(time.perf_counter() - t0, 1)
        train_rows = [(r["file"], r["caption"]) for r in rows if r["split"] == "train"]
        t0 = time.perf_counter()
        pairs, problems = gather(idx, train_rows)
        facts["encode_train_seconds"] = round(time.perf_counter() - t0, 1)
        config = H.TrainConfig() if epochs is None else H.TrainConfig(epochs=epochs)
        head = fit(pairs, config=config, log=log)
        facts["train_seconds"] = head.report["train_seconds"]
        if index is not None:  # a kept index keeps its head too (for --mode text-guided, search --text)
            from lookalike.text.search import HEAD_FILE

            head.save(Path(index) / HEAD_FILE)
        ids, mats = feature_matrix(idx, H.IMAGE_FEATURES)
        row_of = {p: r for r, p in zip(range(len(ids)), [idx.catalog.paths(ids.tolist())[int(i)] for i in ids])}
        # ridge anchor, fitted on the same train images with the same held-out split for its alpha
        tr, va = split_images(len(pairs.X), 0.1, config.seed)
        cnn_rows = np.array([row_of[p] for p in pairs.paths])
        Pc = Pairs(mats["cnn"][cnn_rows], pairs.T, pairs.image, pairs.paths)
        a, b = subset(Pc, tr), subset(Pc, va)
        W, alpha = ridge_anchor(a.X, a.T, a.image, b.X, b.T, b.image)
        classes = class_text()
        probs = softmax(mats["imagenet"])
        results, per_domain = {}, defaultdict(dict)
        test = [r for r in rows if r["split"] == "test"]
        t0 = time.perf_counter()
        qvec = encoder().encode([r["caption"] for r in test])
        facts["ms_per_query_encode"] = round(1000 * (time.perf_counter() - t0) / max(1, len(test)), 1)
        gallery_img = head.embed_images(mats)
        rng = np.random.default_rng(0)
        for dom in sorted({r["domain"] for r in test}):
            q = [i for i, r in enumerate(test) if r["domain"] == dom]
            gal = sorted({test[i]["file"] for i in q})
            col = {f: n for n, f in enumerate(gal)}
            g_rows = np.array([row_of[f] for f in gal])
            own = np.array([col[test[i]["file"]] for i in q])
            T = qvec[q]
            t0 = time.perf_counter()
            S_head = head.embed_texts(T) @ gallery_img[g_rows].T
            facts[f"ms_per_query_rank_{dom}"] = round(1000 * (time.perf_counter() - t0) / len(q), 3)
            Xg = np.hstack([mats["cnn"][g_rows], np.ones((len(g_rows), 1), np.float32)])
            scores = {"trained head": S_head,
                      "ridge CNN->MiniLM (anchor)": T @ (Xg @ W).T,
                      "ImageNet zero-shot (fallback)": zero_shot_scores(probs[g_rows], T, classes),
                      "random": rng.random((len(q), len(gal)))}
            for method, S in scores.items():
                per_domain[dom][method] = {**rank_metrics(ranks_from_scores(S, own)), "queries": len(q),
                                           "gallery": len(gal)}
        results = dict(per_domain)
    tables = [(f"text -> image retrieval on {folder.name} (test captions rank the test images of their domain)",
               ["domain", "method", "R@1", "R@5", "R@10", "mAP", "queries", "gallery"],
               [[d, m, v["R@1"], v["R@5"], v["R@10"], v["mAP"], v["queries"], v["gallery"]]
                for d, ms in results.items() for m, v in ms.items()])]
    held = head.report.get("held_out", {})
    tables.append(("training (train rows only; 10% of train images held out to choose the epoch)",
                   ["pairs", "images", "epochs", "held-out images", "held-out R@10", "ridge alpha", "train s"],
                   [[head.report["pairs"], head.report["images"], head.report["epochs"], held.get("images", 0),
                     held.get("recall@10", "-"), alpha, facts["train_seconds"]]]))
    return {"set": str(folder), "results": results, "held_out": held, "facts": facts,
            "skipped_rows": problems, "tables": tables}
