"""The catalog: one SQLite database (WAL) per index directory, the source of truth.

One row per file (path as given, size, mtime, sha256, pixel digest, size in pixels, format, status and
reason) and one row per (file, feature). A file row and its features are written in one transaction,
so a run killed at any moment leaves only whole files behind and a re-run simply continues.

Identity: a file is known by its *key*, the absolute path with every folder resolved (symlinks,
`..`, relative spellings), so one folder given once relative and once absolute is indexed once. The
row keeps the spelling it was first indexed under as its `path` (what every command shows). Pictures
held in memory (documents' images) are keyed by the caller's key verbatim and have no mtime.

Decisions: what a user said about a set of files ("not duplicates", "keep all", "keep one"), kept
by key so later dedup runs honour them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,
    size INTEGER, mtime_ns INTEGER,
    sha256 TEXT, pixel_digest TEXT,
    width INTEGER, height INTEGER, format TEXT,
    status TEXT NOT NULL,            -- 'ok' or 'error'
    reason TEXT,                     -- one line, for errors
    added_at REAL,
    key TEXT                         -- normalised identity (see the module docstring)
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE INDEX IF NOT EXISTS files_pixels ON files(pixel_digest);
CREATE TABLE IF NOT EXISTS features(
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY(file_id, name)
);
CREATE INDEX IF NOT EXISTS features_name ON features(name, version);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS decisions(
    id INTEGER PRIMARY KEY,
    verdict TEXT NOT NULL,           -- not_duplicates | keep_all | keep_one
    members TEXT NOT NULL,           -- JSON list of file keys
    keeper TEXT,                     -- file key, for keep_one
    created_at REAL NOT NULL
);
"""

VERDICTS = ("not_duplicates", "keep_all", "keep_one")

# Tables of other layers that hang off a file id (clusters): emptied for a file that is removed or
# whose content changed, so no stale assignment outlives the picture it described.
DEPENDENT_TABLES = ("cluster_members",)


def normalise(path: str | os.PathLike) -> str:
    """The key of a file path: absolute, folders resolved (see the module docstring)."""
    p = os.path.abspath(os.fspath(path))
    head, tail = os.path.split(p)
    return os.path.join(os.path.realpath(head), tail)


@dataclass
class FileRow:
    id: int
    path: str
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    pixel_digest: str | None
    width: int | None
    height: int | None
    format: str | None
    status: str
    reason: str | None


_FILE_COLS = "id, path, size, mtime_ns, sha256, pixel_digest, width, height, format, status, reason"


class Catalog:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Indexes made before file keys existed: add the column and fill it (relative paths resolve
        against the current folder); a file stored twice under two spellings keeps its oldest row."""
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(files)")}
        has_index = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name='files_key'").fetchone()
        if "key" in cols and has_index and not self.db.execute("SELECT 1 FROM files WHERE key IS NULL LIMIT 1").fetchone():
            return  # up to date: no write lock taken just to open the catalog
        with self.transaction():
            if "key" not in cols:
                self.db.execute("ALTER TABLE files ADD COLUMN key TEXT")
            todo = self.db.execute("SELECT id, path, mtime_ns FROM files WHERE key IS NULL ORDER BY id").fetchall()
            if todo:
                taken = {r[0] for r in self.db.execute("SELECT key FROM files WHERE key IS NOT NULL")}
                for fid, path, mtime in todo:
                    key = path if mtime is None else normalise(path)
                    if key in taken:
                        self._delete_ids([fid])
                    else:
                        taken.add(key)
                        self.db.execute("UPDATE files SET key=? WHERE id=?", (key, fid))
            self.db.execute("CREATE UNIQUE INDEX IF NOT EXISTS files_key ON files(key)")

    def close(self) -> None:
        self.db.close()

    # -- files ---------------------------------------------------------------------------------
    def file(self, path: str | os.PathLike) -> FileRow | None:
        """The row of a file on disk, whatever spelling of its path is given (or of a stored key)."""
        r = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE key=?", (normalise(path),)).fetchone()
        if r is None:
            r = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE path=?", (os.fspath(path),)).fetchone()
        return FileRow(*r) if r else None

    def blob(self, key: str) -> FileRow | None:
        """The row of an in-memory picture indexed under `key`."""
        r = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE key=?", (key,)).fetchone()
        return FileRow(*r) if r else None

    def key_of(self, path: str | os.PathLike) -> str:
        """The key a path is (or would be) stored under: a stored path or key as is, else normalised."""
        p = os.fspath(path)
        r = self.db.execute("SELECT key FROM files WHERE path=? OR key=? LIMIT 1", (p, p)).fetchone()
        return r[0] if r else normalise(p)

    def stat_rows(self) -> dict[str, tuple[int, int | None, int | None, str]]:
        """{key: (id, size, mtime_ns, status)} of every file on disk (what a re-index compares with)."""
        return {k: (i, s, m, st) for i, k, s, m, st in self.db.execute(
            "SELECT id, key, size, mtime_ns, status FROM files WHERE mtime_ns IS NOT NULL")}

    def incomplete_ids(self, versions: dict[str, str]) -> set[int]:
        """Ids of files lacking some feature of `versions` ({name: version}) at that version (one
        indexed lookup per file and feature: cheap when, as in a re-index, nothing is missing)."""
        out: set[int] = set()
        n_ok = self.db.execute("SELECT COUNT(*) FROM files WHERE status='ok'").fetchone()[0]
        for name, version in versions.items():
            have = self.db.execute("SELECT COUNT(*) FROM features WHERE name=? AND version=?", (name, version)).fetchone()[0]
            if have == n_ok:  # every ok file has it (the usual re-index): no per-file lookups
                continue
            out.update(r[0] for r in self.db.execute(
                "SELECT f.id FROM files f LEFT JOIN features x ON x.file_id=f.id AND x.name=? "
                "WHERE x.file_id IS NULL OR x.version<>?", (name, version)))
        return out

    def under(self, folder: str | os.PathLike) -> list[FileRow]:
        """Files whose key lies under this folder (any spelling of it)."""
        root = normalise(folder).rstrip(os.sep) + os.sep
        return [FileRow(*r) for r in self.db.execute(
            f"SELECT {_FILE_COLS} FROM files WHERE substr(key, 1, ?) = ?", (len(root), root))]

    def keys(self, ids: Iterable[int]) -> dict[int, str]:
        return self._by_ids(ids, "key")

    def gone(self, under: Iterable[str] | None = None, *, skip: set[str] = frozenset()) -> list[FileRow]:
        """Files on disk that no longer exist (only those under these keys' folders, when given;
        keys in `skip` were just seen and are not checked)."""
        roots = [r if r.endswith(os.sep) else r + os.sep for r in under] if under is not None else None
        exact = set(under or ())
        ids = []
        for fid, key in self.db.execute("SELECT id, key FROM files WHERE mtime_ns IS NOT NULL"):
            if key in skip or roots is not None and key not in exact and not key.startswith(tuple(roots)):
                continue
            if not os.path.lexists(key):
                ids.append(fid)
        return [r for r in (self.file_by_id(i) for i in ids) if r is not None]

    def file_by_id(self, file_id: int) -> FileRow | None:
        r = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE id=?", (file_id,)).fetchone()
        return FileRow(*r) if r else None

    def files(self, status: str | None = "ok") -> list[FileRow]:
        q = f"SELECT {_FILE_COLS} FROM files" + (" WHERE status=?" if status else "") + " ORDER BY id"
        return [FileRow(*r) for r in self.db.execute(q, (status,) if status else ())]

    def by_sha256(self, sha: str) -> FileRow | None:
        r = self.db.execute(
            f"SELECT {_FILE_COLS} FROM files WHERE sha256=? AND status='ok' ORDER BY id LIMIT 1", (sha,)
        ).fetchone()
        return FileRow(*r) if r else None

    def paths(self, ids: Iterable[int]) -> dict[int, str]:
        return self._by_ids(ids, "path")

    def _by_ids(self, ids: Iterable[int], col: str) -> dict[int, str]:
        ids = list(ids)
        out: dict[int, str] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            q = f"SELECT id, {col} FROM files WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(self.db.execute(q, chunk))
        return out

    def ids_by_path(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT path, id FROM files WHERE status='ok'"))

    def ids_by_key(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT key, id FROM files WHERE status='ok'"))

    def errors(self) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT path, reason FROM files WHERE status='error' ORDER BY path"))

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))

    def write(self, row: dict, features: dict[str, tuple[str, bytes]]) -> int:
        """Insert or replace a file and its features in one transaction; returns the file id."""
        with self.transaction():
            return self._write(row, features)

    def _write(self, row: dict, features: dict[str, tuple[str, bytes]]) -> int:
        """row["key"]: the identity (default: the normalised path; blobs pass their key). A file already
        stored under another spelling keeps its stored path."""
        key = row.get("key") or normalise(row["path"])
        old = self.db.execute("SELECT id, path, sha256 FROM files WHERE key=?", (key,)).fetchone()
        cols = ["path", "size", "mtime_ns", "sha256", "pixel_digest", "width", "height", "format", "status", "reason"]
        vals = [row.get(c) for c in cols] + [time.time(), key]
        if old:
            file_id = old[0]
            vals[0] = old[1]
            sets = ", ".join(f"{c}=?" for c in cols) + ", added_at=?, key=?"
            self.db.execute(f"UPDATE files SET {sets} WHERE id=?", vals + [file_id])
            self.db.execute("DELETE FROM features WHERE file_id=?", (file_id,))
            if old[2] != row.get("sha256"):
                self._drop_dependents([file_id])
        else:
            if self.db.execute("SELECT 1 FROM files WHERE path=?", (vals[0],)).fetchone():
                vals[0] = key  # the same spelling names another file (given from another folder)
            q = f"INSERT INTO files({', '.join(cols)}, added_at, key) VALUES ({', '.join('?' * (len(cols) + 2))})"
            file_id = self.db.execute(q, vals).lastrowid
        self._put_features(file_id, features)
        return file_id

    def write_many(self, items: list[tuple[dict, dict]]) -> list[int]:
        with self.transaction():
            return [self._write(r, f) for r, f in items]

    def remove(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget files (any spelling of their path, or their key); returns how many were known."""
        ids = [r.id for r in (self.file(p) or self.blob(os.fspath(p)) for p in paths) if r is not None]
        with self.transaction():
            self._delete_ids(ids)
        return len(ids)

    def remove_ids(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        with self.transaction():
            self._delete_ids(ids)
        return len(ids)

    def _delete_ids(self, ids: list[int]) -> None:
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            marks = ",".join("?" * len(chunk))
            self.db.execute(f"DELETE FROM features WHERE file_id IN ({marks})", chunk)
            self.db.execute(f"DELETE FROM files WHERE id IN ({marks})", chunk)
        self._drop_dependents(ids)

    def _drop_dependents(self, ids: list[int]) -> None:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for t in DEPENDENT_TABLES:
            if t in tables:
                for i in range(0, len(ids), 900):
                    chunk = ids[i : i + 900]
                    self.db.execute(f"DELETE FROM {t} WHERE file_id IN ({','.join('?' * len(chunk))})", chunk)
        self._bump("files")

    # -- decisions -------------------------------------------------------------------------------
    def add_decision(self, keys: list[str], verdict: str, keeper: str | None) -> int:
        with self.transaction():
            return self.db.execute("INSERT INTO decisions(verdict, members, keeper, created_at) VALUES (?,?,?,?)",
                                   (verdict, json.dumps(keys), keeper, time.time())).lastrowid

    def decisions(self) -> list[dict]:
        """[{id, verdict, members (keys), keeper (key), created_at}], oldest first."""
        return [{"id": i, "verdict": v, "members": json.loads(m), "keeper": k, "created_at": t}
                for i, v, m, k, t in self.db.execute(
                    "SELECT id, verdict, members, keeper, created_at FROM decisions ORDER BY id")]

    def remove_decision(self, decision_id: int) -> bool:
        with self.transaction():
            return self.db.execute("DELETE FROM decisions WHERE id=?", (decision_id,)).rowcount > 0

    def display_paths(self, keys: Iterable[str]) -> dict[str, str]:
        """{key: the path shown for it}: the stored path of indexed files, else the key itself."""
        keys = list(keys)
        out = {k: k for k in keys}
        for i in range(0, len(keys), 900):
            chunk = keys[i : i + 900]
            out.update(self.db.execute(f"SELECT key, path FROM files WHERE key IN ({','.join('?' * len(chunk))})", chunk))
        return out

    # -- features ------------------------------------------------------------------------------
    def _put_features(self, file_id: int, features: dict[str, tuple[str, bytes]]) -> None:
        for name, (version, blob) in features.items():
            self.db.execute(
                "INSERT OR REPLACE INTO features(file_id, name, version, data) VALUES (?,?,?,?)",
                (file_id, name, version, blob),
            )
            self._bump(name)

    def put_features(self, items: list[tuple[int, dict[str, tuple[str, bytes]]]]) -> None:
        with self.transaction():
            for file_id, feats in items:
                self._put_features(file_id, feats)

    def feature_versions(self, file_id: int) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, version FROM features WHERE file_id=?", (file_id,)))

    def features_of(self, file_id: int) -> dict[str, bytes]:
        return dict(self.db.execute("SELECT name, data FROM features WHERE file_id=?", (file_id,)))

    def missing(self, name: str, version: str) -> list[FileRow]:
        """ok files lacking feature `name` at `version`."""
        q = (
            f"SELECT {', '.join('f.' + c.strip() for c in _FILE_COLS.split(','))} FROM files f "
            "LEFT JOIN features x ON x.file_id=f.id AND x.name=? AND x.version=? "
            "WHERE f.status='ok' AND x.file_id IS NULL ORDER BY f.id"
        )
        return [FileRow(*r) for r in self.db.execute(q, (name, version))]

    def iter_feature(self, name: str, version: str | None = None) -> Iterator[tuple[int, bytes]]:
        q = "SELECT x.file_id, x.data FROM features x JOIN files f ON f.id=x.file_id WHERE x.name=? AND f.status='ok'"
        args: tuple = (name,)
        if version is not None:
            q += " AND x.version=?"
            args = (name, version)
        yield from self.db.execute(q + " ORDER BY x.file_id", args)

    def features_by_ids(self, ids: Iterable[int], name: str, version: str) -> list[tuple[int, bytes]]:
        ids = list(ids)
        out = []
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            q = (f"SELECT file_id, data FROM features WHERE name=? AND version=? "
                 f"AND file_id IN ({','.join('?' * len(chunk))})")
            out += self.db.execute(q, (name, version, *chunk)).fetchall()
        return out

    def feature(self, file_id: int, name: str) -> bytes | None:
        r = self.db.execute("SELECT data FROM features WHERE file_id=? AND name=?", (file_id, name)).fetchone()
        return r[0] if r else None

    # -- change stamps (vector index caches compare these) ---------------------------------------
    def _bump(self, name: str) -> None:
        self.db.execute(
            "INSERT INTO meta(key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
            (f"gen:{name}",),
        )

    def stamp(self, name: str) -> str:
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (f"gen:{name}",)).fetchone()
        f = self.db.execute("SELECT value FROM meta WHERE key='gen:files'").fetchone()
        return f"{r[0] if r else 0}.{f[0] if f else 0}"

    def get_meta(self, key: str) -> str | None:
        r = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)", (key, value))

    # -- transactions ------------------------------------------------------------------------------
    def transaction(self):
        return _Tx(self.db)


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.outer = False

    def __enter__(self):
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.outer:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
