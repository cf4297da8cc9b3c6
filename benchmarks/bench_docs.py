"""`docs check` on the documents set: seconds per document and per picture, and pair quality.

    python benchmarks/bench_docs.py [--data ../shared/data] [--thresholds 0.8,0.85,0.9]

Prints a timing table (extraction by container type, vector conversion, indexing + dedup) and
precision/recall of the predicted pairs against documents/pairs.csv at several thresholds, with
recall per note category at the default threshold.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from lookalike import docs as D
from lookalike.imageio.documents import convert_vectors, extract_pictures, iter_documents

REPO = Path(__file__).resolve().parents[1]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--thresholds", default="0.8,0.85,0.88,0.9,0.95")
    ap.add_argument("--mode", default="copy")
    args = ap.parse_args()
    root = args.data / "documents"
    thresholds = [float(t) for t in args.thresholds.split(",")]
    default = D.default_threshold(args.mode)

    t0 = time.perf_counter()
    results = []
    per_kind: dict[str, list[float]] = defaultdict(list)
    for doc in iter_documents([root / "docs"]):
        r = extract_pictures(doc, convert=False)
        results.append(r)
        per_kind[doc.suffix.lower()].append(r.seconds)
    t1 = time.perf_counter()
    convert_vectors(results)
    t2 = time.perf_counter()
    n_vec = sum(len(r.vectors) for r in results)  # counted now: the check lets go of the vector bytes
    with tempfile.TemporaryDirectory() as tmp:
        res = D._check(results, args.mode, min(thresholds + [default or 1.0]), tmp, None)
    t3 = time.perf_counter()

    n_docs = len(results)
    n_pics = sum(len(r.pictures) for r in results)
    print(f"{n_docs} documents, {n_pics} pictures ({n_vec} vector), {len(res.skipped)} skipped, {len(res.errors)} errors")
    print(f"{'stage':<28}{'seconds':>9}{'s/doc':>9}{'ms/picture':>12}")
    for name, s in [("extract", t1 - t0), ("convert vectors (soffice)", t2 - t1), ("index + dedup + verify", t3 - t2),
                    ("total", t3 - t0)]:
        print(f"{name:<28}{s:9.2f}{s / n_docs:9.3f}{1000 * s / max(n_pics, 1):12.1f}")
    print(f"\n{'extract by type':<28}{'docs':>9}{'s/doc':>9}")
    for kind, secs in sorted(per_kind.items()):
        print(f"{kind:<28}{len(secs):9d}{sum(secs) / len(secs):9.3f}")

    truth = {}
    for r in _rows(root / "pairs.csv"):
        truth[frozenset({(r["doc_a"], r["image_a"]), (r["doc_b"], r["image_b"])})] = r["note"].split(" (")[0]
    rel = lambda d: Path(d).relative_to(root).as_posix()  # noqa: E731
    scored = {frozenset({(rel(p.doc_a), p.image_a), (rel(p.doc_b), p.image_b)}): p.score for p in res.pairs}
    print(f"\n{'threshold':<12}{'pairs':>7}{'TP':>6}{'precision':>11}{'recall':>8}")
    for t in sorted(set(thresholds + ([default] if default else []))):
        pred = {k for k, s in scored.items() if s >= t}
        tp = len(pred & truth.keys())
        mark = "  <- default" if t == default else ""
        print(f"{t:<12}{len(pred):7d}{tp:6d}{tp / max(len(pred), 1):11.3f}{tp / len(truth):8.3f}{mark}")
    if default:
        pred = {k for k, s in scored.items() if s >= default}
        found = Counter(note for k, note in truth.items() if k in pred)
        print(f"\nrecall per note at {default}:")
        for note, n in Counter(truth.values()).most_common():
            print(f"  {note:<36}{found[note]:5d}/{n:<5d}{found[note] / n:.3f}")


if __name__ == "__main__":  # the index uses spawned worker processes
    main()
