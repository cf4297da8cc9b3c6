"""Latency of scoring one new loan application at submission against a large history, and the cost of the
retrospective pass.

    python benchmarks/bench_risk.py --data ../shared/data/fraud [--history 100000] [--queries 40] [--walltext]

History: the fraud set's photos are indexed once (background features); the synthetic history copies their
stored features into `--history` catalog rows (the masked CNN vector jittered so that no two are equal;
the photos repeat) and gives each an application with its own applicant, device, MAC, IP and time spread
over 6 months (about 2 % of them on a few busy carrier IPs). Each query is a real photo of the set
submitted as bytes with `RiskEngine.submit` under a new id: decoding, person mask, every feature, the
background search over the whole history, device/network look-ups, the scores, the re-scoring of its
neighbourhood and its case are all inside the timing. Prints a table (p50 / p95 / max in ms).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_history(idx, n: int, seed: int = 0) -> None:
    """n synthetic files (features copied from the indexed photos, bg_cnn jittered) and n applications."""
    from lookalike.features import registry
    from lookalike.risk import RiskEngine
    from lookalike.risk.applications import Application

    rng = np.random.default_rng(seed)
    cat = idx.catalog
    src = [r for r in cat.files() if not r.path.startswith("synthetic/")]
    feats = {r.id: cat.features_of(r.id) for r in src}
    versions = {r.id: cat.feature_versions(r.id) for r in src}
    cnn = registry.get("bg_cnn")
    items, t0 = [], time.perf_counter()
    for i in range(n):
        r = src[i % len(src)]
        f = dict(feats[r.id])
        v = cnn.decode(f["bg_cnn"]) + rng.normal(0, 0.02, cnn.dim).astype(np.float32)
        f["bg_cnn"] = cnn.encode(v / np.linalg.norm(v))
        row = {"path": f"synthetic/{i:07d}.jpg", "size": r.size, "mtime_ns": 0, "sha256": f"syn{i}",
               "pixel_digest": f"syn{i}", "width": r.width, "height": r.height, "format": r.format,
               "status": "ok", "reason": None}
        items.append((row, {k: (versions[r.id][k], b) for k, b in f.items()}))
        if len(items) == 2000 or i == n - 1:
            cat.write_many(items)
            items = []
    print(f"history files written: {n} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    eng = RiskEngine(idx, walltext=False)
    ids = cat.ids_by_path()
    start = 1736121600.0  # 2025-01-06
    busy = [f"100.64.{k}.1" for k in range(20)]
    with eng.store.transaction():
        for i in range(n):
            ip = busy[i % 20] if rng.random() < 0.02 else f"{rng.integers(1, 223)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}.{rng.integers(1, 254)}"
            app = Application(f"hist{i:07d}", f"cus{i:07d}", f"synthetic/{i:07d}.jpg", start + rng.random() * 180 * 86400,
                              "", ip, ":".join(f"{x:02x}" for x in rng.integers(0, 256, 6)), f"dev-{i:07d}",
                              22.5 + rng.random() * 0.2, 113.9 + rng.random() * 0.3)
            seq = eng.store.add_application(app, file_id=ids[app.photo], scene=0.5, photo_error=None)
            eng.store.db.execute("UPDATE applications SET bg_cluster=? WHERE seq=?", (i % len(src), seq))
            eng.store.set_submission(seq, 0.0, "", {})
        eng.store.put("next_bg_cluster", len(src))
    eng.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(os.environ.get("LOOKALIKE_DATA", "../shared/data"), "fraud"))
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--walltext", action="store_true", help="Also read the wall text of each photo (OCR).")
    ap.add_argument("--keep", help="Keep the history index in this folder (re-used when present).")
    a = ap.parse_args()
    from lookalike.api import Index
    from lookalike.features.background import BACKGROUND_FEATURES
    from lookalike.risk import RiskEngine
    from lookalike.risk.applications import read_applications

    data = Path(a.data)
    apps = read_applications(data / "applications.csv").applications
    tmp = tempfile.mkdtemp(prefix="bench-risk-")
    where = Path(a.keep or tmp)
    try:
        fresh = not (where / "risk.sqlite").exists()
        with Index.open(where) as idx:
            if fresh:
                t0 = time.perf_counter()
                idx.add([str(data / "images")], features=list(BACKGROUND_FEATURES), defaults=False)
                print(f"indexed {len(apps)} photos in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
                build_history(idx, a.history)
            eng = RiskEngine(idx, walltext=a.walltext)
            # warm-up: models loaded, vector index and codebook built (a running service has them)
            eng.submit({"application_id": "warm", "applicant_id": "warm", "submitted_at": "2025-07-01T10:00:00+08:00"},
                       Path(apps[0].photo).read_bytes())
            rnd = random.Random(1)
            times = []
            for q in range(a.queries):
                src = rnd.choice(apps)
                # trailing bytes after the JPEG's end: new bytes (no byte-copy shortcut), same picture
                photo = Path(src.photo).read_bytes() + os.urandom(16)
                fields = {"application_id": f"bench{q}-{time.time_ns()}", "applicant_id": f"new{q}",
                          "submitted_at": "2025-07-02T10:00:00+08:00", "ip": src.ip or "", "mac": src.mac or "",
                          "device_id": src.device_id or "", "gps_lat": src.lat or "", "gps_lon": src.lon or ""}
                t0 = time.perf_counter()
                eng.submit(fields, photo)
                times.append(1000 * (time.perf_counter() - t0))
            n_hist = eng.store.count()
            # retrospective pass: every application of the set's neighbourhood re-scored with everything known
            t0 = time.perf_counter()
            n_retro = min(n_hist, 5000)
            eng.rescore(set(range(1, n_retro + 1)))
            retro = (time.perf_counter() - t0) / n_retro
            eng.close()
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    t = sorted(times)
    print(f"| history | queries | p50 ms | p95 ms | max ms | retrospective ms/application | wall text |")
    print(f"|---|---|---|---|---|---|---|")
    print(f"| {n_hist} | {len(t)} | {statistics.median(t):.0f} | {t[int(0.95 * (len(t) - 1))]:.0f} | {t[-1]:.0f} | "
          f"{1000 * retro:.2f} | {'yes' if a.walltext else 'no'} |")


if __name__ == "__main__":
    main()
