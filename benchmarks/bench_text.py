"""Does the text-guided image space (the trained text head's image side) beat the plain CNN descriptor for
image -> image search?

    lookalike eval text --data ../shared/data --index /tmp/captions-index   # trains, keeps the head there
    python benchmarks/bench_text.py --index /tmp/captions-index

Leave-one-out mAP, cosine of the CNN descriptor (what `--mode similar` ranks its candidates by, before SIFT
re-ranking) vs cosine in the head's image space (`--mode text-guided`):
- retrieval set (../shared/data/retrieval, groups = same landmark / place);
- product test images of the captions set, relevant = same article type (the last word of the title:
  shirts, watches, ...), a proxy label: the set has no image groups for products.
Prints a table.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path


from lookalike.api import Index
from lookalike.eval.metrics import leave_one_out_map
from lookalike.text.search import HEAD_FILE, feature_matrix
from lookalike.text.head import TextHead

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def article(title: str) -> str:
    w = title.lower().split()[-1]
    return w[:-1] if w.endswith("s") else w


def descriptors(idx: Index, head: TextHead, paths: list[str]):
    ids, mats = feature_matrix(idx, head.features)
    by_path = idx.catalog.ids_by_path()
    row = {int(i): r for r, i in enumerate(ids)}
    rows = [row[by_path[p]] for p in paths]
    return mats["cnn"][rows], head.embed_images({n: m[rows] for n, m in mats.items()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path, required=True, help="captions index holding text-head.npz")
    args = ap.parse_args()
    head = TextHead.load(args.index / HEAD_FILE)
    out = []
    # retrieval set
    root = DATA / "retrieval"
    with open(root / "groups.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [str(root / r["path"]) for r in rows]
    with tempfile.TemporaryDirectory() as tmp, Index.open(tmp) as idx:
        idx.add(paths, features=list(head.features))
        cnn, guided = descriptors(idx, head, paths)
    groups = [r["group"] for r in rows]
    out.append(("retrieval (places)", leave_one_out_map(cnn, groups), leave_one_out_map(guided, groups), len(rows)))
    # product test images of the captions set
    croot = DATA / "captions"
    with open(croot / "captions.csv", newline="", encoding="utf-8") as f:
        prod = [r for r in csv.DictReader(f) if r["domain"] == "product" and r["split"] == "test"]
    paths = [str(croot / r["path"]) for r in prod]
    with Index.open(args.index) as idx:
        cnn, guided = descriptors(idx, head, paths)
    groups = [article(r["caption"]) for r in prod]
    out.append(("products (same article type)", leave_one_out_map(cnn, groups), leave_one_out_map(guided, groups),
                len(prod)))
    print(f"{'set':32s} {'CNN (similar)':>14s} {'text-guided':>12s} {'images':>7s}")
    for name, a, b, n in out:
        print(f"{name:32s} {a:14.3f} {b:12.3f} {n:7d}")


if __name__ == "__main__":
    main()
