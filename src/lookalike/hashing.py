"""`lookalike hash`: perceptual hashes of files, fast, in parallel for large batches.

Only small thumbnails are hashed, so files are decoded straight to a small luma image (a JPEG
decodes its Y channel at 1/2 to 1/8 scale) instead of the full working image the index uses. The
64-bit hashes follow imagehash's definitions on the whole picture (no border trimming), so the
numbers compare with imagehash's; PDQ is Facebook's reference (pdqhash) fed a 64x64 luma.

A small batch is a short job, so it must start fast: `run_cli` answers `lookalike hash FILE...`
before the rest of the CLI parses (typer's argument coercion imports pydantic, half a second), the
engine is never imported, and batches under POOL_MIN_FILES run in this process (a pool's start-up
costs more than it saves on a few hundred files, and nothing on a busy machine); there the files
are decoded on a thread per core (libjpeg-turbo and Pillow release the GIL).
"""

from __future__ import annotations

import sys
from functools import partial

import numpy as np

from lookalike import config, parallel
from lookalike.errors import BadInput
from lookalike.features.filehash import HASHES, SHORT_SIDE, SPAN, many_hashes
from lookalike.imageio.quick import decode_luma, read_bytes

COLUMNS = ("path", *HASHES)
CHUNK = 32  # files decoded, then hashed together (images of one shape share the matrix products)
POOL_MIN_FILES = 300  # fewer files: one process (a pool costs 12 % more CPU, and saves time only with a free core)


def hash_file(path: str) -> dict:
    """Hex aHash, dHash, pHash, wHash (64-bit), PDQ (256-bit) and pdq_quality of one file; or a reason."""
    return _hash_chunk([path])[0]


def parse_hashes(names: str) -> tuple[str, ...] | None:
    """`--hashes ahash,phash`: the names in `HASHES` order, or None when one is not a hash."""
    wanted = {n.strip().lower() for n in names.split(",") if n.strip()}
    if not wanted or not wanted <= set(HASHES):
        return None
    return tuple(h for h in HASHES if h in wanted)


def _luma(path: str) -> np.ndarray | str:
    """The file's small luma image (`decode_luma`), or the reason it has none."""
    try:
        return decode_luma(read_bytes(path), min_side=SHORT_SIDE)
    except BadInput as e:
        return str(e)
    except Exception as e:  # a decoder bug must not stop the run
        return f"unexpected error while decoding: {type(e).__name__}: {e}"[:300]


def _decode(paths: list[str], threads: int) -> list:
    """`_luma` of every path, in order, on this thread and threads - 1 others: the decoders release
    the GIL, so 2 threads take two thirds of the wall time for the same CPU (plain threads:
    concurrent.futures would import logging, a hundredth of a small batch's time)."""
    lumas: list = [None] * len(paths)
    todo = iter(range(len(paths)))  # shared: each next() is atomic under the GIL

    def work() -> None:
        for i in todo:
            lumas[i] = _luma(paths[i])

    if threads > 1:
        import threading

        helpers = [threading.Thread(target=work, daemon=True) for _ in range(min(threads, len(paths)) - 1)]
        for t in helpers:
            t.start()
        work()
        for t in helpers:
            t.join()
    else:
        work()
    return lumas


_HEX = {k: slice(lo // 4, hi // 4) for k, (lo, hi) in SPAN.items()}  # hex digits of many_hashes' bit spans


def _hash_chunk(paths: list[str], kinds: tuple[str, ...] = HASHES, threads: int = 1) -> list[dict]:
    """Rows for a few files: each decoded alone (on `threads` threads), then all hashed together
    (`many_hashes`)."""
    lumas = _decode(paths, threads)
    ok = [i for i, g in enumerate(lumas) if not isinstance(g, str)]
    rows: list[dict] = [{"path": p, "reason": g} if isinstance(g, str) else {"path": p} for p, g in zip(paths, lumas)]
    if ok:
        packed, quality = many_hashes([lumas[i] for i in ok], kinds)
        for i, bits, q in zip(ok, packed, quality):
            code = bits.tobytes().hex()
            rows[i].update({k: code[_HEX[k]] for k in kinds})
            if "pdq" in kinds:
                rows[i]["pdq_quality"] = q
    return rows


def hash_files(paths: list[str], *, workers: int | None = None, kinds: tuple[str, ...] = HASHES) -> list[dict]:
    """One dict per path, in order: hex ahash, dhash, phash, whash, pdq and pdq_quality (those of
    `kinds`, in `HASHES` order); or reason."""
    paths = [str(p) for p in paths]
    threads = 1
    if workers is None:  # a small batch: one process, decoding on a thread per core
        workers, threads = (config.workers(), 1) if len(paths) >= POOL_MIN_FILES else (1, config.workers())
    size = CHUNK if workers > 1 else 8 * CHUNK  # one process: larger batches share more matrix products
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    n = min(workers, len(chunks))
    task = partial(_hash_chunk, kinds=kinds, threads=threads)
    return [r for res in parallel.imap(task, chunks, workers=n, on_crash=_crashed) for r in res]


def _crashed(paths: list[str]) -> list[dict]:
    return [{"path": p, "reason": "the worker process died while decoding it (a crash or out of memory)"} for p in paths]


def write_rows(rows: list[dict], fmt: str, out=None, err=None, columns: tuple[str, ...] = COLUMNS) -> None:
    """The `hash` command's output: CSV (`columns`) or JSON on `out`, one line per skipped file on `err`."""
    out, err = out or sys.stdout, err or sys.stderr
    if fmt == "json":
        import json

        print(json.dumps(rows, indent=1), file=out)
    else:
        import csv

        w = csv.writer(out, lineterminator="\n")
        w.writerow(columns)
        w.writerows([r.get(c, "") for c in columns] for r in rows if "reason" not in r)
    for r in rows:
        if "reason" in r:  # the same line as the full CLI's say_error
            print(f"error: {r['path']}: {r['reason']}", file=err)


def run_cli(args: list[str]) -> int | None:
    """`lookalike hash` arguments handled without typer: PATH... [--format csv|json] [--hashes LIST].
    None for anything else (--help, an unknown option or hash, no path): the full CLI then parses and
    explains."""
    fmt, kinds, paths, rest = "csv", HASHES, [], iter(args)
    for a in rest:
        if a.partition("=")[0] in ("--format", "--hashes"):
            value = a.partition("=")[2] if "=" in a else next(rest, "")
            if a.startswith("--format"):
                fmt = value
            else:
                kinds = parse_hashes(value)
            if fmt not in ("csv", "json") or kinds is None:
                return None
        elif a.startswith("-") and a != "-":
            return None
        else:
            paths.append(a)
    if not paths:
        return None
    rows = hash_files(paths, kinds=kinds)
    try:
        write_rows(rows, fmt, columns=("path", *kinds))
    except BrokenPipeError:  # `lookalike hash ... | head`: the reader has all it wanted
        sys.stdout = None
    return 1 if any("reason" in r for r in rows) else 0
