"""Measure the `faces` feature: detection + embedding time per photo, and identity quality.

    python benchmarks/bench_faces.py                          # faces and faces_large
    python benchmarks/bench_faces.py --sets faces_large --cache /tmp/faces_large.pkl   # reuse blobs

For each set: photos with a face, pair metrics of the main (largest) faces (ROC AUC, best pair F1 and
its cosine threshold, precision/recall at SAME_PERSON), then BCubed P/R/F of two simple clusterings
over a sweep of cosine thresholds: average-linkage agglomerative (sklearn) and Chinese whispers
(dlib). Photos without a face count as singletons. `--min-quality Q` leaves faces below Q as
singletons, to see what the quality score buys.

Needs the models prepared (`lookalike models prepare`, or LOOKALIKE_CACHE pointing at a prepared
cache) and the evaluation data (../shared/data or $LOOKALIKE_DATA).
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path

import numpy as np

from lookalike.eval.datasets import read_faces
from lookalike.eval.metrics import bcubed_prf
from lookalike.features.faces import SAME_PERSON, Faces, main_face
from lookalike.imageio import load_file

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def compute(root: Path, cache: Path | None) -> tuple[dict[str, bytes], float]:
    """Blob of every labelled photo, and the mean seconds per photo (decode excluded)."""
    if cache and cache.exists():
        return pickle.loads(cache.read_bytes())
    ds = read_faces(root)
    ext = Faces()
    ext.compute(load_file(ds.files[ds.images[0]]))  # load the models outside the timing
    blobs, spent = {}, 0.0
    for k in ds.images:
        img = load_file(ds.files[k])
        t = time.perf_counter()
        blobs[k] = ext.compute(img)
        spent += time.perf_counter() - t
    out = (blobs, spent / len(ds.images))
    if cache:
        cache.write_bytes(pickle.dumps(out))
    return out


def pair_table(E: np.ndarray, ids: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import precision_recall_curve, roc_auc_score

    iu = np.triu_indices(len(E), 1)
    same, s = (ids[:, None] == ids[None])[iu], (E @ E.T)[iu]
    p, r, t = precision_recall_curve(same, s)
    f = 2 * p * r / np.maximum(p + r, 1e-9)
    i = int(np.argmax(f[:-1]))
    m = s >= SAME_PERSON
    return {
        "auc": roc_auc_score(same, s), "best_f1": f[i], "best_thr": t[i], "p@best": p[i], "r@best": r[i],
        "p@same": (m & same).sum() / max(1, m.sum()), "r@same": (m & same).sum() / same.sum(),
    }  # fmt: skip


def cluster(E: np.ndarray, thr: float, method: str) -> np.ndarray:
    """Cluster labels of unit vectors at cosine threshold `thr`."""
    if method == "average":
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=1 - thr
        ).fit_predict(E)
    import dlib

    # Chinese whispers links vectors closer than a euclidean distance: |a-b|^2 = 2 - 2 cos for unit vectors
    return np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in E.astype(float)], np.sqrt(2 - 2 * thr)))


def evaluate(name: str, blobs: dict[str, bytes], *, min_quality: float = 0.0) -> None:
    ds = read_faces(DATA / name)
    ext = Faces()
    mains = {k: main_face(ext.decode(b)) for k, b in blobs.items()}
    keys = [k for k in ds.images if mains.get(k) is not None and mains[k].quality >= min_quality]
    E = np.stack([mains[k].embedding for k in keys])
    ids = np.array([ds.identity[k] for k in keys])
    found = sum(m is not None for m in mains.values())
    print(f"{name}: {found}/{len(ds.images)} photos with a face, {len(keys)} clustered (quality >= {min_quality})")
    print("  pairs of main faces: " + ", ".join(f"{k} {v:.4f}" for k, v in pair_table(E, ids).items()))
    for method in ("average", "whispers"):
        best = None
        for thr in np.arange(0.86, 0.965, 0.005):
            pred = dict(zip(keys, cluster(E, float(thr), method)))  # photos left out are singletons
            prf = bcubed_prf(pred, ds.identity)
            if best is None or prf.f1 > best[1].f1:
                best = (thr, prf)
            if abs(thr - SAME_PERSON) < 1e-6:
                at = prf
        thr, prf = best
        print(f"  {method:8s} BCubed at {SAME_PERSON}: P {at.precision:.4f} R {at.recall:.4f} F {at.f1:.4f};"
              f" best at {thr:.3f}: P {prf.precision:.4f} R {prf.recall:.4f} F {prf.f1:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["faces", "faces_large"])
    ap.add_argument("--cache", type=Path, help="pickle of the computed blobs (one set only): reused if present")
    ap.add_argument("--min-quality", type=float, default=0.0)
    args = ap.parse_args()
    for name in args.sets:
        blobs, secs = compute(DATA / name, args.cache)
        print(f"{name}: detection + embedding {1000 * secs:.0f} ms per photo (decode excluded)")
        evaluate(name, blobs, min_quality=args.min_quality)


if __name__ == "__main__":
    main()
