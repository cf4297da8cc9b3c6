"""Load on loopback: N concurrent clients searching the HTTP service, then the same while a writer adds
images. Prints one table row per phase: requests, errors, requests/s, p50/p90/p99 latency.

    python benchmarks/bench_serve.py                       # 50 clients, 60 s a phase, copy mode, demo photos
    python benchmarks/bench_serve.py --clients 10 --seconds 10 --mode hash

The service runs as its own process (`lookalike serve`, as deployed); the clients are asyncio tasks of
this process on one httpx connection pool. Each phase is bounded in time (--seconds) and in count
(--max-requests). A request counts as an error unless it answers 200 (201 for uploads).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each phase")
    ap.add_argument("--max-requests", type=int, default=200_000, help="per phase, whatever the time")
    ap.add_argument("--mode", default="copy")
    ap.add_argument("--photos", type=Path, default=REPO / "demo", help="indexed, and used as queries")
    ap.add_argument("--readers", type=int, default=4, help="the service's reader threads")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    index = work / "index"
    lk = [sys.executable, "-m", "lookalike.cli"]
    subprocess.run(lk + ["index", *map(str, photos), "--index", str(index)], check=True, capture_output=True)
    key = lambda role: subprocess.run(lk + ["keys", "create", "--role", role, "--index", str(index)],  # noqa: E731
                                      check=True, capture_output=True, text=True).stdout.strip()
    reader, writer = key("reader"), key("writer")
    port = _free_port()
    server = subprocess.Popen(lk + ["serve", "--index", str(index), "--port", str(port), "--quiet",
                                    "--rate", "1000000", "--burst", "1000000", "--readers", str(args.readers)],
                              stdout=subprocess.DEVNULL, stderr=open(work / "server.log", "w"))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base)
        queries = [p.read_bytes() for p in photos]
        _warm_up(base, reader, queries, args)
        print(f"lookalike service, {len(photos)} indexed photos, {args.clients} clients, mode {args.mode}, "
              f"{args.readers} reader threads, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); "
              f"phases of {args.seconds:g} s")
        rows = [asyncio.run(phase("search", base, reader, queries, args, None)),
                asyncio.run(phase("search + writer", base, reader, queries, args, (writer, photos)))]
    finally:
        server.terminate()  # SIGTERM: graceful stop
        try:
            code = server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed"
    _table(rows)
    print(f"server exit after SIGTERM: {code} (uvicorn finishes requests in flight, then re-raises the signal: -15)")
    if any(r["errors"] or r["upload_errors"] for r in rows):
        print("server log (end):\n" + (work / "server.log").read_text()[-3000:])


async def phase(name: str, base: str, key: str, queries: list[bytes], args, writing) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    uploads: list[float] = []
    upload_errors: list[str] = []
    deadline = time.perf_counter() + args.seconds
    limits = httpx.Limits(max_connections=args.clients + 2, max_keepalive_connections=args.clients + 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        async def client(n: int) -> None:
            rnd = random.Random(n)
            while time.perf_counter() < deadline and len(latencies) + len(errors) < args.max_requests:
                q = rnd.choice(queries)
                t = time.perf_counter()
                try:
                    r = await http.post(f"/v1/search?mode={args.mode}&k=10", files={"file": ("q.jpg", q)},
                                        headers={"Authorization": f"Bearer {key}"})
                    ok = r.status_code == 200 and "results" in r.json()
                    (latencies.append(time.perf_counter() - t) if ok else errors.append(f"{r.status_code} {r.text[:80]}"))
                except httpx.HTTPError as e:
                    errors.append(type(e).__name__)

        async def writer(wkey: str, photos: list[Path]) -> None:
            rnd = random.Random(7)
            n = 0
            while time.perf_counter() < deadline:
                data = _variant(rnd.choice(photos), rnd, n)
                n += 1
                t = time.perf_counter()
                try:
                    r = await http.post("/v1/images", files={"file": (f"new{n}.jpg", data)},
                                        headers={"Authorization": f"Bearer {wkey}"})
                    (uploads.append(time.perf_counter() - t) if r.status_code == 201 else upload_errors.append(str(r.status_code)))
                except httpx.HTTPError as e:
                    upload_errors.append(type(e).__name__)

        start = time.perf_counter()
        tasks = [client(n) for n in range(args.clients)] + ([writer(*writing)] if writing else [])
        await asyncio.gather(*tasks)
        took = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {"phase": name, "requests": len(latencies) + len(errors), "errors": len(errors), "rps": len(latencies) / took,
            "p50": 1000 * q[49], "p90": 1000 * q[89], "p99": 1000 * q[98], "seconds": took,
            "uploads": len(uploads), "upload_errors": len(upload_errors),
            "upload_p50": 1000 * statistics.median(uploads) if uploads else float("nan"),
            "first_errors": errors[:3] + upload_errors[:3]}


def _variant(path: Path, rnd: random.Random, n: int) -> bytes:
    """A new picture each time: a random crop of a demo photo, re-encoded."""
    im = Image.open(path).convert("RGB")
    w, h = im.size
    dx, dy = rnd.randint(0, w // 5), rnd.randint(0, h // 5)
    im = im.crop((dx, dy, w - rnd.randint(0, w // 5), h - rnd.randint(0, h // 5)))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=rnd.randint(60, 95))
    return buf.getvalue()


def _table(rows: list[dict]) -> None:
    print()
    print(f"{'phase':18s} {'requests':>9s} {'errors':>7s} {'req/s':>7s} {'p50 ms':>8s} {'p90 ms':>8s} {'p99 ms':>8s}"
          f" {'uploads':>8s} {'upl. err':>8s} {'upl. p50 ms':>11s}")
    for r in rows:
        print(f"{r['phase']:18s} {r['requests']:9d} {r['errors']:7d} {r['rps']:7.1f} {r['p50']:8.0f} {r['p90']:8.0f}"
              f" {r['p99']:8.0f} {r['uploads']:8d} {r['upload_errors']:8d} {r['upload_p50']:11.0f}")
        if r["first_errors"]:
            print("   first errors:", r["first_errors"])


def _warm_up(base: str, key: str, queries: list[bytes], args) -> None:
    """Not timed: the startup job (features copy search needs) done, and each reader thread's caches
    (hash matcher, vector index) built by a first search."""
    headers = {"Authorization": f"Bearer {key}"}
    while any(j["status"] in ("queued", "running") for j in httpx.get(base + "/v1/jobs", headers=headers).json()["jobs"]):
        time.sleep(0.5)

    async def go():
        async with httpx.AsyncClient(base_url=base, timeout=300) as http:
            await asyncio.gather(*[http.post(f"/v1/search?mode={args.mode}", files={"file": ("q.jpg", q)},
                                             headers=headers) for q in queries[:2 * args.readers]])

    asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(base: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(base + "/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the service did not start")


if __name__ == "__main__":
    main()
