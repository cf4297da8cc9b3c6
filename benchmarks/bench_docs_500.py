"""A folder of 500 documents in one `docs check` run: wall time, seconds per document, peak memory.

    python benchmarks/bench_docs_500.py [--data ../shared/data] [--sizes 125,500] [--xlsx]

Builds each folder under /tmp from the documents set, cycling over its documents:
the first round are byte copies, the second are the same OOXML packages re-zipped (other bytes,
same pictures), later rounds have their JPEG pictures re-encoded at another quality (new bytes,
so they are compared by their pixels, not by sha256); PDFs are copied. One document in 50 is
truncated, to show that bad documents are reported and the run goes on.
Then runs ``lookalike docs check FOLDER --format json`` (and ``-o report.xlsx`` with --xlsx) in
a child process and prints its wall time, s/doc, ms/picture and peak RSS: "main MB" of the
`lookalike` process itself (it holds the documents' results), "max MB" of the largest process
of all runs so far, workers included (resource.getrusage(RUSAGE_CHILDREN)). Run two sizes to see
how memory grows with the folder.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OOXML = (".docx", ".xlsx", ".pptx")


def _rezip(src: Path, dst: Path, *, reencode: bool, level: int) -> None:
    """Copy an OOXML package member by member; JPEG media re-encoded when asked."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if reencode and "/media/" in info.filename and data[:3] == b"\xff\xd8\xff":
                try:
                    im = Image.open(io.BytesIO(data))
                    buf = io.BytesIO()
                    im.convert("RGB").save(buf, format="JPEG", quality=80)
                    data = buf.getvalue()
                except Exception:
                    pass  # keep the original bytes
            zout.writestr(info.filename, data)


def build(src_docs: list[Path], n: int, out: Path) -> int:
    """Write `n` documents into `out`; returns how many were deliberately truncated."""
    out.mkdir(parents=True)
    bad = 0
    for i in range(n):
        src = src_docs[i % len(src_docs)]
        rnd = i // len(src_docs)
        dst = out / f"{i:04d}_{src.stem[:40]}{src.suffix.lower()}"
        if i % 50 == 49:
            dst.write_bytes(src.read_bytes()[: max(src.stat().st_size // 3, 1)])
            bad += 1
        elif rnd == 0 or src.suffix.lower() not in OOXML:
            shutil.copyfile(src, dst)
        else:
            _rezip(src, dst, reencode=rnd >= 2, level=1 + rnd % 9)
    return bad


# The CLI, reporting its own peak RSS on exit (the children's peak comes from RUSAGE_CHILDREN).
_MAIN = """import resource, runpy, sys
sys.argv[0] = "lookalike"
try:
    runpy.run_module("lookalike.cli", run_name="__main__")
finally:
    print("MAIN_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def run(folder: Path, n: int, bad: int, xlsx: bool) -> None:
    cmd = [sys.executable, "-c", _MAIN, "docs", "check", str(folder), "--format", "json"]
    if xlsx:
        cmd += ["-o", str(folder.parent / f"report{n}.xlsx")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    if proc.returncode != 0:
        sys.exit(f"docs check failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    pairs, errors = len(out["pairs"]), len(out["errors"])
    main_mb = int(proc.stderr.rsplit("MAIN_RSS_KB", 1)[1].split()[0]) / 1024
    summary = " ".join(proc.stderr.split())  # "N documents, M pictures compared, ..." (may be wrapped)
    pics = int(summary.split(" pictures compared")[0].split()[-1]) if " pictures compared" in summary else 0
    print(f"{n:>6}{wall:9.1f}{wall / n:9.3f}{1000 * wall / max(pics, 1):12.1f}{pics:8d}{pairs:8d}"
          f"{errors:>6}/{bad:<4}{main_mb:9.0f}{rss_mb:9.0f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--sizes", default="500", help="comma-separated folder sizes, each run separately")
    ap.add_argument("--xlsx", action="store_true", help="also write the Excel report")
    args = ap.parse_args()
    src = sorted(p for p in (args.data / "documents" / "docs").rglob("*") if p.suffix.lower() in OOXML + (".pdf",))
    if not src:
        sys.exit(f"no documents under {args.data / 'documents' / 'docs'}")
    print(f"source: {len(src)} documents")
    print(f"{'docs':>6}{'wall s':>9}{'s/doc':>9}{'ms/picture':>12}{'pics':>8}{'pairs':>8}{'errors/bad':>11}{'main MB':>9}{'max MB':>9}")
    with tempfile.TemporaryDirectory(prefix="lookalike-500-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = Path(tmp, f"docs{n}")
            bad = build(src, n, folder)
            run(folder, n, bad, args.xlsx)
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
