"""Indexing: scan paths, decode and extract features in worker processes, write the catalog.

The main process stats and checksums files (cheap) and decides what needs work: unchanged files are
skipped, byte-identical copies of an indexed file reuse its features without decoding. Workers
(spawn-safe) decode and extract in chunks so batched models run efficiently. Results are written a
chunk per transaction: a killed run loses at most the chunks in flight, and a re-run redoes exactly
those.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from fnmatch import fnmatch
from typing import Callable, Iterable, Sequence

from lookalike import config, parallel
from lookalike.errors import BadInput, LookalikeError
from lookalike.features import registry
from lookalike.imageio import decode_bytes, read_bytes
from lookalike.store.catalog import Catalog, normalise

# Never images; skipped silently when walking folders (anything else is tried and, if it is not an
# image, recorded with its reason).
NOT_IMAGES = {
    ".txt", ".csv", ".md", ".json", ".xml", ".html", ".htm", ".py", ".db", ".sqlite", ".wal", ".shm",
    ".docx", ".xlsx", ".pptx", ".pdf", ".doc", ".xls", ".ppt", ".zip", ".gz", ".tar", ".mp4", ".mov",
    ".avi", ".mp3", ".wav", ".log", ".yaml", ".yml", ".toml", ".ini", ".faiss", ".npy", ".pkl",
}


@dataclass
class AddReport:
    added: int = 0
    unchanged: int = 0
    copies: int = 0  # byte-identical to an indexed file: features reused without decoding
    failed: int = 0
    removed: int = 0  # files gone from the disk since the last run, dropped from the index
    errors: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # given paths that do not exist
    clustered: dict[str, int] = field(default_factory=dict)  # online cluster assignments per `by`


# Files that travel next to pictures (editors' sidecars, thumbnails' databases): skipped when walking.
SIDECARS = {".xmp", ".aae", ".thm", ".dop", ".pp3", ".on1", ".lrv", ".xmp~", ".bak", ".tmp", ".part"}


@dataclass
class Scan:
    files: list[tuple[str, str]]  # (path as the user spelled it, key), sorted by folder
    roots: list[str]  # keys of the given paths (what a re-index checks for vanished files)
    missing: list[str]  # given paths that do not exist


def scan(paths: Iterable[str | os.PathLike], *, skip_dir: Path | None = None, include: Sequence[str] = (),
         exclude: Sequence[str] = ()) -> Scan:
    """Files under the given paths with their keys (store/catalog.normalise), sorted, no symlink loops.

    include/exclude: shell globs matched against a file's name and its path as spelled (a file is
    kept when it matches some include, if any are given, and no exclude)."""
    skip = normalise(skip_dir) if skip_dir else None
    out = Scan([], [], [])

    def wanted(path: str, name: str) -> bool:
        if include and not any(fnmatch(name, g) or fnmatch(path, g) for g in include):
            return False
        return not any(fnmatch(name, g) or fnmatch(path, g) for g in exclude)

    for p in paths:
        p = os.fspath(p)
        key = normalise(p)
        out.roots.append(key)
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p, followlinks=False):
                rel = os.path.relpath(root, p)
                key_dir = (key if rel == "." else os.path.join(key, rel)) + os.sep
                root += "" if root.endswith(os.sep) else os.sep
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and key_dir + d != skip)
                for f in sorted(files):
                    ext = f[f.rfind("."):].lower() if "." in f else ""
                    if f.startswith(".") or ext in NOT_IMAGES or ext in SIDECARS:
                        continue
                    if not (include or exclude) or wanted(root + f, f):
                        out.files.append((root + f, key_dir + f))
        elif os.path.lexists(p):
            out.files.append((p, key))
        else:
            out.missing.append(p)
    return out


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# -- worker side --------------------------------------------------------------------------------

def _init_worker(threads: int) -> None:
    import multiprocessing
    import signal

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if multiprocessing.parent_process() is not None:  # a worker (not an inline run in the main process)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to report (re-running resumes)
    import cv2

    cv2.setNumThreads(1)


def extract_chunk(task: tuple[list[tuple[str, bytes | None]], list[str]]) -> list[dict]:
    """Decode each (path or key, bytes-or-None) and compute the named features. Runs in a worker."""
    items, names = task
    decoded, out = [], []
    for key, data in items:
        row = {"path": key, "status": "error"}
        try:
            raw = data if data is not None else read_bytes(key)
            img = decode_bytes(raw, keep_source=True)
            row.update(status="ok", reason=None, sha256=img.sha256, pixel_digest=img.pixel_digest,
                       width=img.width, height=img.height, format=img.format)
            decoded.append((len(out), img))
        except BadInput as e:
            row["reason"] = str(e)
        except Exception as e:  # a decoder bug must not stop the run either
            row["reason"] = f"unexpected error while decoding: {type(e).__name__}: {e}"[:300]
        out.append({"row": row, "features": {}})
    for name in names:
        ex = registry.get(name)
        try:
            values = ex.compute_batch([img for _, img in decoded])
        except Exception as e:  # one bad image in a batch: fall back to one at a time
            values = []
            for _, img in decoded:
                try:
                    values.append(ex.compute(img))
                except Exception as e1:
                    values.append(e1)
            if all(isinstance(v, Exception) for v in values) and values:
                if isinstance(e, LookalikeError):  # e.g. a model not prepared: the user's one line
                    raise
                raise RuntimeError(f"feature {name!r} failed: {e}") from e
        for (i, _), v in zip(decoded, values):
            if isinstance(v, Exception):
                out[i]["row"].update(status="error", reason=f"feature {name} failed: {v}"[:300])
            else:
                out[i]["features"][name] = (ex.version, ex.encode(v))
    return out


def _crashed_chunk(task: tuple[list[tuple[str, bytes | None]], list[str]]) -> list[dict]:
    """A chunk whose worker process died even when run alone (a crash in native code, the kernel's
    out-of-memory killer): its files run again one per task, so only the file that kills its process
    gets the reason; the run goes on."""
    items, names = task
    if len(items) > 1:
        singles = [([item], names) for item in items]
        return [r for res in parallel.imap(extract_chunk, singles, workers=min(2, config.workers()),
                                           initializer=_init_worker, initargs=(1,), on_crash=_crashed_chunk)
                for r in res]
    reason = "the worker process died while decoding it (a crash in a decoder or out of memory)"
    return [{"row": {"path": key, "status": "error", "reason": reason}, "features": {}} for key, _ in items]


# -- main side ----------------------------------------------------------------------------------

def index_files(
    catalog: Catalog,
    paths: Iterable[str | os.PathLike],
    features: list[str],
    *,
    workers: int | None = None,
    chunk: int = 16,
    progress: Callable[[int, int], None] | None = None,
    skip_dir: Path | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    min_size: int = 0,
    engine: str = "local",
    ray_address: str | None = None,
) -> AddReport:
    """Index what is new or changed under `paths` and drop what vanished from them. Unchanged files
    (same key, size and mtime, every feature at its version) cost one stat: nothing is read.
    engine "ray": extraction runs as Ray tasks (lookalike.raypool), the catalog is still written here."""
    report = AddReport()
    versions = {n: registry.get(n).version for n in features}
    todo: list[tuple[str, dict]] = []
    copies: list[tuple[dict, dict]] = []
    found = scan(paths, skip_dir=skip_dir, include=include, exclude=exclude)
    report.missing = found.missing
    known = catalog.stat_rows()
    incomplete = catalog.incomplete_ids(versions)
    seen: set[str] = set()
    unchanged: set[str] = set()  # keys known to exist now (the vanished-file check skips them)
    done = 0
    for path, key in found.files:
        if key in seen:  # one file given twice (two spellings)
            continue
        seen.add(key)
        try:
            st = os.stat(path)
        except OSError as e:
            report.failed += 1
            report.errors.append((path, f"cannot read file: {e.strerror}"))
            try:  # an entry that exists but cannot be read (a symlink loop, no permission) is recorded
                lst = os.lstat(path)
                catalog.write({"path": path, "key": key, "size": lst.st_size, "mtime_ns": lst.st_mtime_ns,
                               "status": "error", "reason": f"cannot read file: {e.strerror}"}, {})
            except OSError:
                pass  # vanished since the scan: nothing to record
            continue
        old = known.get(key)
        if old and old[1] == st.st_size and old[2] == st.st_mtime_ns and (old[3] == "error" or old[0] not in incomplete):
            report.unchanged += 1
            unchanged.add(key)
            done += 1
            continue
        base = {"path": path, "key": key, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if st.st_size and st.st_size <= config.MAX_FILE_BYTES:
            try:
                sha = file_sha256(path)
            except OSError:
                sha = None
            twin = catalog.by_sha256(sha) if sha else None
            if twin:  # a copy of an indexed file (or itself, touched): its features, no decoding
                have = catalog.features_of(twin.id)
                vers = catalog.feature_versions(twin.id)
                if all(vers.get(n) == v for n, v in versions.items()):
                    row = dict(base, sha256=twin.sha256, pixel_digest=twin.pixel_digest, width=twin.width,
                               height=twin.height, format=twin.format, status="ok", reason=None)
                    copies.append((row, {n: (vers[n], have[n]) for n in features}))
                    continue
        todo.append((path, base))
    if copies:
        catalog.write_many(copies)
        report.copies += len(copies)
        done += len(copies)
    total = len(found.files)
    if progress:
        progress(done, total)
    for results in _run(todo, features, workers=workers, chunk=chunk, engine=engine, ray_address=ray_address):
        items = []
        for base, res in results:
            row = dict(base, **res["row"])
            feats = res["features"]
            if row["status"] == "ok" and min(row["width"], row["height"]) < min_size:
                row.update(status="error", reason=f"{row['width']}x{row['height']} px, smaller than --min-size {min_size}")
                feats = {}
            items.append((row, feats))
            if row["status"] == "ok":
                report.added += 1
            else:
                report.failed += 1
                report.errors.append((row["path"], row["reason"]))
        catalog.write_many(items)
        done += len(items)
        if progress:
            progress(done, total)
    # last, so that a moved file found its features above under its old path
    gone = [r.id for r in catalog.gone(found.roots, skip=unchanged)]
    report.removed = catalog.remove_ids(gone) if gone else 0
    return report


def index_blobs(catalog: Catalog, items: list[tuple[str, bytes]], features: list[str], *,
                workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> AddReport:
    """Index in-memory pictures (e.g. extracted from documents) under caller-chosen keys."""
    report = AddReport()
    versions = {n: registry.get(n).version for n in features}
    todo = []
    for key, data in items:
        sha = hashlib.sha256(data).hexdigest()
        old = catalog.blob(key)
        if old and old.sha256 == sha and all(catalog.feature_versions(old.id).get(n) == v for n, v in versions.items()):
            report.unchanged += 1
            continue
        todo.append((key, {"path": key, "key": key, "size": len(data), "mtime_ns": None}, data))
    done = 0
    for results in _run([(k, b) for k, b, _ in todo], features, workers=workers, chunk=16,
                        blobs={k: d for k, _, d in todo}):
        items_out = []
        for base, res in results:
            row = dict(base, **res["row"])
            items_out.append((row, res["features"]))
            report.added += row["status"] == "ok"
            if row["status"] != "ok":
                report.failed += 1
                report.errors.append((row["path"], row["reason"]))
        catalog.write_many(items_out)
        done += len(items_out)
        if progress:
            progress(done, len(todo))
    return report


def _run(todo: list[tuple[str, dict]], features: list[str], *, workers: int | None, chunk: int,
         blobs: dict[str, bytes] | None = None, engine: str = "local", ray_address: str | None = None):
    """Yield [(base_row, result)] per chunk, from worker processes (or inline for one worker), or from
    Ray actors (engine "ray": paths go absolute, as Ray workers need not share our working folder)."""
    chunks = [todo[i : i + chunk] for i in range(0, len(todo), chunk)]
    n = min(workers or config.workers(), max(1, len(chunks)))
    if engine == "ray" and chunks:
        from lookalike import raypool

        tasks = [([(os.path.abspath(p), None) for p, _ in c], features) for c in chunks]
        # no --workers: every CPU of the Ray cluster (of this machine for a local Ray)
        results = raypool.imap(extract_chunk, tasks, workers=workers, address=ray_address, initializer=_init_worker,
                               initargs=(1,))
    else:
        tasks = [([(p, (blobs or {}).get(p)) for p, _ in c], features) for c in chunks]
        results = parallel.imap(extract_chunk, tasks, workers=n, initializer=_init_worker, initargs=(1,),
                                on_crash=_crashed_chunk)
    for c, res in zip(chunks, results):
        for (p, _), r in zip(c, res):
            r["row"]["path"] = p  # the key as the caller spelled it
        yield [(b, r) for (_, b), r in zip(c, res)]


def compute_missing(catalog: Catalog, names: list[str], *, workers: int | None = None,
                    progress: Callable[[int, int], None] | None = None, chunk: int = 16) -> int:
    """Compute features that some indexed files lack (a mode used on an index built without them)."""
    lacks: dict[int, list[str]] = {}
    for n in names:
        for row in catalog.missing(n, registry.get(n).version):
            lacks.setdefault(row.id, []).append(n)
    # each file gets only what it lacks (one decoding for all of it); files lacking the same features
    # run together; files are read by key (absolute): a relative stored path depends on the folder a
    # command runs in
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, ns in lacks.items():
        groups.setdefault(tuple(ns), []).append(i)
    done, total = 0, len(lacks)
    for ns, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        ids_by_path = {k: i for i, k in sorted(catalog.keys(ids).items())}
        step = (lambda d, _t, base=done: progress(base + d, total)) if progress else None
        done += _compute(catalog, ids_by_path, list(ns), workers=workers, progress=step, chunk=chunk)
    return done


def compute_for(catalog: Catalog, ids: list[int], names: list[str], *, workers: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Compute features for these files only (e.g. local features of search candidates)."""
    keys = catalog.keys(ids)  # read by key, as in compute_missing
    # small jobs run inline: starting worker processes costs more than it saves
    return _compute(catalog, {k: i for i, k in keys.items()}, names,
                    workers=1 if len(ids) < 64 else workers, progress=progress)


def _compute(catalog: Catalog, ids_by_path: dict[str, int], names: list[str], *, workers, progress,
             chunk: int = 16) -> int:
    if not ids_by_path:
        return 0
    todo = [(p, {}) for p in ids_by_path]
    done = 0
    for results in _run(todo, names, workers=workers, chunk=chunk):
        items = []
        for _, res in results:
            fid = ids_by_path[res["row"]["path"]]
            if res["row"]["status"] == "ok":
                items.append((fid, res["features"]))
        catalog.put_features(items)
        done += len(results)
        if progress:
            progress(done, len(todo))
    return done
