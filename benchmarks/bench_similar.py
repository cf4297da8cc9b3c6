"""Similar-image retrieval split by difficulty: mAP over all same-place pairs, over the hard ones only
(SIFT finds fewer than HARD_INLIERS RANSAC inliers between the two: another side, another season or
light, little shared geometry) and over the rest, for the engine's `similar` mode and for global
descriptors alone (EfficientNet-Lite0 / Lite2 GeM, with and without alpha query expansion).

    python benchmarks/bench_similar.py [--data ../shared/data]

Hard AP of a query ranks its hard positives among all non-relevant images (its easy positives are
left out of the ranking), so it measures exactly the pairs that are hard.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from pathlib import Path

import numpy as np

from lookalike.eval import datasets
from lookalike.eval.metrics import ranked_ap

REPO = Path(__file__).resolve().parents[1]
HARD_INLIERS = 8


def split_maps(rankings: dict[str, list[str]], relevant: dict[str, set[str]], hard: set) -> tuple:
    """(mAP all, mAP hard, mAP easy, queries with hard pairs)."""
    all_, hard_, easy_ = [], [], []
    for q, ranked in rankings.items():
        pos = relevant[q]
        all_.append(ranked_ap(ranked, pos))
        for want, out in ((True, hard_), (False, easy_)):
            sub = {p for p in pos if ((q, p) in hard) == want}
            if sub:
                out.append(ranked_ap([k for k in ranked if k not in pos or k in sub], sub))
    return float(np.mean(all_)), float(np.mean(hard_)), float(np.mean(easy_)), len(hard_)


def alpha_qe(D: np.ndarray, k: int = 3, alpha: float = 3.0) -> np.ndarray:
    S = D @ D.T
    np.fill_diagonal(S, -1)
    out = D.copy()
    for q in range(len(D)):
        top = np.argsort(-S[q])[:k]
        out[q] += (np.clip(S[q, top], 0, 1)[:, None] ** alpha * D[top]).sum(axis=0)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def main() -> None:
    from lookalike.api import Index
    from lookalike.features.cnn import CnnDescriptor, equalised_grey
    from lookalike.features.local import extract_local
    from lookalike.imageio import load_file
    from lookalike.search.verify import verify

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    ds = datasets.read_retrieval(args.data / "retrieval")
    relevant = {q: {k for k in ds.images if k != q and ds.group[k] == ds.group[q]} for q in ds.queries}
    imgs = {k: load_file(ds.files[k]) for k in ds.images}
    local = {k: extract_local(imgs[k].rgb) for k in ds.queries}
    hard = set()
    for a, b in itertools.combinations(ds.queries, 2):
        if ds.group[a] == ds.group[b] and verify(local[a], local[b]).inliers < HARD_INLIERS:
            hard |= {(a, b), (b, a)}
    n_pairs = sum(len(v) for v in relevant.values()) // 2
    print(f"{len(ds.queries)} queries, {len(ds.images)} images, {n_pairs} same-place pairs, "
          f"{len(hard) // 2} hard (< {HARD_INLIERS} SIFT inliers)\n")
    print(f"{'method':<40}{'mAP':>7}{'hard':>7}{'easy':>7}")
    rows = []
    keys = list(ds.images)
    descs = {}
    for model in ("efficientnet-lite0", "efficientnet-lite2"):
        descs[f"{model} GeM"] = CnnDescriptor(model).embed([imgs[k].rgb for k in keys])
    grey = CnnDescriptor("efficientnet-lite2").embed([equalised_grey(imgs[k].rgb) for k in keys])
    # the mean of two cosines is the cosine of the two concatenated halves, each scaled by 1/sqrt 2
    descs["lite2 colour + grey GeM"] = np.concatenate([descs["efficientnet-lite2 GeM"], grey], 1) / np.sqrt(2)
    for label, D in descs.items():
        for name, X in ((label, D), (f"{label} + alpha-QE", alpha_qe(D))):
            S = X @ X.T
            rankings = {q: [keys[j] for j in np.argsort(-S[keys.index(q)]) if keys[j] != q] for q in ds.queries}
            rows.append((name, *split_maps(rankings, relevant, hard)[:3]))
    with tempfile.TemporaryDirectory() as tmp, Index.open(tmp) as idx:
        idx.add([str(ds.files[k]) for k in keys], workers=1)
        res = idx.search([str(ds.files[q]) for q in ds.queries], mode="similar", k=len(keys), min_score=0.0)
        rankings = {q: [ds.key_of(m.path) for m in r.results if ds.key_of(m.path) != q]
                    for q, r in zip(ds.queries, res)}
        rows.append(("lookalike similar (engine)", *split_maps(rankings, relevant, hard)[:3]))
    for name, m_all, m_hard, m_easy in rows:
        print(f"{name:<40}{m_all:>7.3f}{m_hard:>7.3f}{m_easy:>7.3f}")


if __name__ == "__main__":
    main()
