"""Peer baseline for copy detection: perceptual hashes on shared/data/near_duplicate.

For `imagehash` pHash and dHash (64-bit), as a typical user runs them (PIL.Image.open, no EXIF
handling): every pair of readable images within a Hamming distance t, for t = 4..14, scored
against the true copy pairs (the transitive closure of pairs.csv), plus the false-positive rate
on hard_negatives.csv, average precision over all pairs (score = -distance) and the recall at
99 % precision. If `imagededup` is installed (pip install imagededup --no-deps), its PHash and
DHash are run the same way at their default threshold (max_distance_threshold=10).

    python benchmarks/baseline_imagehash.py [--data ../shared/data] [--per-transform]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import types
import warnings
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

from lookalike.eval import datasets, metrics

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = range(4, 15)


def hash_bits(files: dict[str, Path], fn) -> tuple[list[str], np.ndarray, list[str], float]:
    """Hash every file with an imagehash function; returns keys, bit matrix, failures, seconds."""
    keys, bits, failed = [], [], []
    t0 = time.perf_counter()
    for key, path in files.items():
        try:
            with Image.open(path) as im:
                h = fn(im)
        except Exception:  # what an imagehash user does: skip files PIL cannot read
            failed.append(key)
            continue
        keys.append(key)
        bits.append(h.hash.ravel())
    return keys, np.array(bits, dtype=bool), failed, time.perf_counter() - t0


def hamming_pairs(keys: list[str], bits: np.ndarray, max_t: int) -> tuple[list[tuple[str, str]], np.ndarray]:
    """All pairs with Hamming distance <= max_t, and their distances."""
    packed = np.packbits(bits, axis=1)  # N x 8 bytes
    words = packed.view(">u8").ravel()
    out_pairs, out_d = [], []
    for i in range(len(keys) - 1):
        d = np.bitwise_count(words[i] ^ words[i + 1:])
        for j in np.flatnonzero(d <= max_t):
            out_pairs.append(metrics.pair(keys[i], keys[i + 1 + j]))
            out_d.append(int(d[j]))
    return out_pairs, np.array(out_d, dtype=int)


def all_pair_scores(keys: list[str], bits: np.ndarray, truth: set) -> tuple[np.ndarray, np.ndarray]:
    """Score (-distance) and truth label of every pair of hashed images."""
    words = np.packbits(bits, axis=1).view(">u8").ravel()
    scores, labels = [], []
    for i in range(len(keys) - 1):
        scores.append(-np.bitwise_count(words[i] ^ words[i + 1:]).astype(float))
        labels.append([metrics.pair(keys[i], k) in truth for k in keys[i + 1:]])
    return np.concatenate(scores), np.concatenate(labels)


def row(name: str, t: int | str, pred, truth, hard, seconds: float) -> dict:
    r = metrics.pair_prf(pred, truth)
    return {"method": name, "t": t, "pairs": r.tp + r.fp, "P": r.precision, "R": r.recall,
            "F1": r.f1, "hardFPR": metrics.false_positive_rate(pred, hard), "s": seconds}


def print_table(rows: list[dict]) -> None:
    print(f"{'method':<18}{'t':>4}{'pairs':>8}{'P':>8}{'R':>8}{'F1':>8}{'hardFPR':>9}{'time s':>8}")
    for r in rows:
        print(f"{r['method']:<18}{r['t']:>4}{r['pairs']:>8}{r['P']:>8.3f}{r['R']:>8.3f}{r['F1']:>8.3f}"
              f"{r['hardFPR']:>9.3f}{r['s']:>8.1f}")


def import_imagededup_hashers():
    """imagededup's PHash/DHash, or None. Its package __init__s import torchvision and
    matplotlib (for the CNN and plotting only), so they are bypassed to reach the hashing module."""
    spec = importlib.util.find_spec("imagededup")
    if spec is None:
        return None
    base = Path(spec.submodule_search_locations[0])
    for sub in ("utils", "methods"):
        name = f"imagededup.{sub}"
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(base / sub)]
            sys.modules[name] = stub
    try:
        from imagededup.methods.hashing import DHash, PHash
    except ImportError as exc:
        print(f"imagededup hashers do not import: {exc}")
        return None
    return {"imagededup PHash": PHash, "imagededup DHash": DHash}


def run_imagededup(files: dict[str, Path], truth, hard) -> list[dict]:
    hashers = import_imagededup_hashers()
    if not hashers:
        return []
    import logging
    logging.disable(logging.WARNING)  # it logs every unreadable file and every search step
    rows = []
    for name, cls in hashers.items():
        hasher = cls(verbose=False)
        t0 = time.perf_counter()
        enc = {}
        for key, path in files.items():
            try:
                h = hasher.encode_image(image_file=path)
            except Exception:
                h = None
            if h:
                enc[key] = h
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dups = hasher.find_duplicates(encoding_map=enc, scores=False, num_dist_workers=1)
        pred = {metrics.pair(a, b) for a, bs in dups.items() for b in bs}
        rows.append(row(name, 10, pred, truth, hard, time.perf_counter() - t0))
        print(f"{name}: hashed {len(enc)} of {len(files)} files")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    default=Path(os.environ.get("LOOKALIKE_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--per-transform", action="store_true",
                    help="print recall per transform at each method's best-F1 threshold")
    args = ap.parse_args()

    ds = datasets.read_near_duplicate(args.data / "near_duplicate")
    truth, hard = ds.true_pairs(), ds.hard_negative_pairs()
    files = {k: ds.files[k] for k in ds.images}  # unreadable files too: the hasher must cope
    print(f"{len(files)} images, {len(ds.components)} copy groups, {len(truth)} true pairs, "
          f"{len(hard)} hard negatives\n")

    rows, summary, per_transform = [], [], []
    for name, fn in {"imagehash pHash": imagehash.phash, "imagehash dHash": imagehash.dhash}.items():
        keys, bits, failed, secs = hash_bits(files, fn)
        t0 = time.perf_counter()
        pairs, dist = hamming_pairs(keys, bits, max(THRESHOLDS))
        secs += time.perf_counter() - t0
        mine = [row(name, t, [p for p, d in zip(pairs, dist) if d <= t], truth, hard, secs)
                for t in THRESHOLDS]
        rows += mine
        scores, labels = all_pair_scores(keys, bits, truth)
        ap_all = metrics.scored_average_precision(scores, labels, n_positive=len(truth))
        r99, thr = metrics.recall_at_precision(scores, labels, n_positive=len(truth), precision=0.99)
        summary.append(f"{name}: {len(failed)} unreadable, AP over all pairs {ap_all:.3f}, "
                       f"recall@99%P {r99:.3f} (t <= {-thr:.0f})" if thr is not None else
                       f"{name}: {len(failed)} unreadable, AP {ap_all:.3f}, 99% precision never reached")
        if args.per_transform:
            t = max(mine, key=lambda r: r["F1"])["t"]
            pred = [p for p, d in zip(pairs, dist) if d <= t]
            per_transform.append((name, t, metrics.per_category_recall(pred, ds.pair_transforms())))

    rows += run_imagededup(files, truth, hard)
    print_table(rows)
    print()
    print("\n".join(summary))
    for name, t, per in per_transform:
        print(f"\nrecall per transform, {name} at t={t}:")
        for cat, r in sorted(per.items(), key=lambda kv: kv[1].recall):
            print(f"  {cat:<36}{r.recall:6.3f}  ({r.tp}/{r.tp + r.fn})")


if __name__ == "__main__":
    main()
