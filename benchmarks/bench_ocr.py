"""Wall-text OCR on the fraud set: phone numbers read, loan adverts found, false alarms, time per photo.

    python benchmarks/bench_ocr.py                    # every photo with a sign + 60 photos without one
    python benchmarks/bench_ocr.py --no-sign 0        # only the photos with a sign (about 2 min)
    python benchmarks/bench_ocr.py --no-sign all      # + every photo without a sign (about 8 min)
    python benchmarks/bench_ocr.py --full-res         # read the original photo, not the 768 px working copy

Each photo goes the way the "walltext" feature takes it: decoded to the engine's working copy (long side
<= 768), the person mask of the background features, then `read_wall_text`. `wall_text.csv` (ground truth,
never read by the engine) says which photo carries which sign, its phone number and how much of it is
visible. Times are CPU milliseconds per photo of this process (one onnxruntime thread), so that other
work on a shared machine does not inflate them.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("LOOKALIKE_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
VISIBLE = 0.9  # rows with at least this share of the sign visible are the "readable" ones


def load_truth(root: Path) -> tuple[list[dict], dict[str, str]]:
    with open(root / "wall_text.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(root / "labels.csv", newline="", encoding="utf-8") as f:
        labels = {r["application_id"]: r["ring"] for r in csv.DictReader(f)}
    for r in rows:
        r["visible"] = float(r["visible_fraction"] or 0)
        r["digits"] = re.sub(r"\D", "", r["phone"])
        r["ring"] = labels.get(r["application_id"], "")
    # the ring's sticky note is stuck on top of its poster and hides part of it, which visible_fraction
    # (person and frame only) does not count: flag the posters whose box meets a note's
    by_photo = defaultdict(list)
    for r in rows:
        by_photo[r["photo"]].append(r)
    for r in rows:
        r["covered"] = r["role"] == "ring_poster" and any(
            o["role"] == "ring_note" and _overlap(r["visible_bbox"], o["visible_bbox"]) for o in by_photo[r["photo"]])
    return rows, labels


def _overlap(a: str, b: str) -> bool:
    if not a or not b:
        return False
    ax0, ay0, ax1, ay1 = map(float, a.split())
    bx0, by0, bx1, by1 = map(float, b.split())
    return min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0)


def read(path: Path, full_res: bool):
    """(WallText, mask ms, OCR ms) for one photo, the way the walltext feature reads it."""
    from lookalike.features.background import background_info, segmenter
    from lookalike.imageio import load_file
    from lookalike.features.walltext import read_wall_text

    if full_res:
        from PIL import Image, ImageOps

        rgb = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        t0 = time.process_time()
        person = segmenter().mask(rgb)
        t1 = time.process_time()
        wt = read_wall_text(rgb, person)
    else:
        img = load_file(path)
        t0 = time.process_time()
        person = background_info(img).person
        t1 = time.process_time()
        wt = read_wall_text(img.rgb, person, size=(img.width, img.height))
    t2 = time.process_time()
    return wt, (t1 - t0) * 1000, (t2 - t1) * 1000


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def share(k: int, n: int) -> str:
    return f"{k}/{n} = {k / n:.0%}" if n else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "fraud")
    ap.add_argument("--no-sign", default="60", help="photos without any sign to read: a number or 'all'")
    ap.add_argument("--full-res", action="store_true", help="read the original photo instead of the working copy")
    ap.add_argument("--verbose", action="store_true", help="print what was read in every photo")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    root = args.data
    if not (root / "wall_text.csv").is_file():
        print(f"no fraud set at {root} (set LOOKALIKE_DATA)", file=sys.stderr)
        return 2
    rows, labels = load_truth(root)
    with_sign = sorted({r["photo"] for r in rows})
    all_photos = sorted(f"images/{p.name}" for p in (root / "images").glob("*.jpg"))
    without = [p for p in all_photos if p not in set(with_sign)]
    n = len(without) if args.no_sign == "all" else int(args.no_sign)
    without = without[:: max(1, len(without) // n)][:n] if n else []

    from lookalike.features.walltext import engine

    engine()  # load once, outside the timings
    got, mask_ms, ocr_ms, empty = {}, [], [], 0
    for i, p in enumerate(with_sign + without, 1):
        wt, m_ms, o_ms = read(root / p, args.full_res)
        got[p] = wt
        mask_ms.append(m_ms)
        ocr_ms.append(o_ms)
        empty += not wt.lines
        if args.verbose:
            print(f"{p}: {wt.evidence()}", flush=True)
        elif i % 20 == 0:
            print(f"  {i}/{len(with_sign) + len(without)} photos read", file=sys.stderr, flush=True)

    # 1. phone numbers read, per role, on the readable rows (and by visibility on all rows)
    out = []
    for role in ("ring_poster", "ring_note", "decoy", "all"):
        sel = [r for r in rows if r["digits"] and r["visible"] >= VISIBLE and role in (r["role"], "all")]
        hit = [r for r in sel if r["digits"] in got[r["photo"]].phones]
        clear = [r for r in sel if not r["covered"]]
        out.append([role, len(sel), share(len(hit), len(sel)),
                    share(sum(r["digits"] in got[r["photo"]].phones for r in clear), len(clear))])
    table(f"Phone numbers read (wall_text.csv rows with visible_fraction >= {VISIBLE})",
          ["role", "rows", "phone read", "phone read, posters under a note left out"], out)
    missed = [r for r in rows if r["digits"] and r["visible"] >= VISIBLE and r["digits"] not in got[r["photo"]].phones]
    for r in missed:
        print(f"  missed {r['photo']} {r['role']} {r['phone']}{' (poster under the note)' if r['covered'] else ''}: "
              f"read {got[r['photo']].text[:70]!r}")
    out = []
    for lo, hi in ((0.9, 1.01), (0.5, 0.9), (0.01, 0.5)):
        sel = [r for r in rows if r["digits"] and lo <= r["visible"] < hi]
        out.append([f"{lo:g}-{min(hi, 1):g}", len(sel), share(sum(r["digits"] in got[r["photo"]].phones for r in sel), len(sel))])
    table("Phone numbers read by visible share of the sign (all rows with a phone)", ["visible", "rows", "phone read"], out)
    out = []
    for ring in sorted({r["ring"] for r in rows if r["ring"]}):
        sel = [r for r in rows if r["ring"] == ring and r["digits"] and r["visible"] >= VISIBLE]
        out.append([ring, len(sel), share(sum(r["digits"] in got[r["photo"]].phones for r in sel), len(sel))])
    table(f"Per ring (visible >= {VISIBLE})", ["ring", "rows", "phone read"], out)

    # 2. loan adverts: found on ring posters, false on decoys and on photos without a sign
    poster_photos = sorted({r["photo"] for r in rows if r["role"] == "ring_poster" and r["visible"] >= VISIBLE})
    poster_any = sorted({r["photo"] for r in rows if r["role"] == "ring_poster" and r["visible"] > 0})
    decoys = sorted({r["photo"] for r in rows if r["role"] == "decoy"})
    note_only = sorted({r["photo"] for r in rows if r["role"] == "ring_note"} - {r["photo"] for r in rows if r["role"] == "ring_poster" and r["visible"] > 0})
    out = [
        [f"ring poster visible >= {VISIBLE}", len(poster_photos), share(sum(got[p].loan_ad for p in poster_photos), len(poster_photos)), ""],
        ["ring poster visible > 0", len(poster_any), share(sum(got[p].loan_ad for p in poster_any), len(poster_any)), ""],
        ["ring note only (name + phone)", len(note_only), share(sum(got[p].loan_ad for p in note_only), len(note_only)), ""],
        ["decoy sign (harmless text)", len(decoys), share(sum(got[p].loan_ad for p in decoys), len(decoys)),
         share(sum(got[p].harmless for p in decoys), len(decoys))],
        ["no sign at all", len(without), share(sum(got[p].loan_ad for p in without), len(without)),
         share(sum(got[p].harmless for p in without), len(without))],
    ]
    table("Loan-advert wording", ["photos", "n", "loan_ad", "harmless"], out)
    for p in decoys + without:
        if got[p].loan_ad or got[p].phones:
            print(f"  {p}: {got[p].evidence()}")
    with_phone = sum(bool(got[p].phones) for p in without)
    print(f"\nphotos without a sign where a phone number was read: {share(with_phone, len(without))}")

    # 3. time
    m, o = np.array(mask_ms), np.array(ocr_ms)
    table(f"CPU ms per photo ({len(m)} photos, {'original size' if args.full_res else 'working copy <= 768 px'}, "
          "1 onnxruntime thread)", ["stage", "mean", "p50", "p95"],
          [["person mask (shared with the background features)", f"{m.mean():.0f}", f"{np.median(m):.0f}", f"{np.percentile(m, 95):.0f}"],
           ["wall-text OCR", f"{o.mean():.0f}", f"{np.median(o):.0f}", f"{np.percentile(o, 95):.0f}"]])
    print(f"\nphotos where no text was found: {share(empty, len(m))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
