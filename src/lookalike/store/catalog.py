"""The catalog: one SQLite database (WAL) per index directory, the source of truth.

One row per file (path as given, size, mtime, sha256, pixel digest, size in pixels, format, status and
reason) and one row per (file, feature). A file row and its features are written in one transaction,
so a run killed at any moment leaves only whole files behind and a re-run simply continues.
"""

from __future__ import annotations

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
    added_at REAL
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files(sha256);
CREATE INDEX IF NOT EXISTS files_pixels ON files(pixel_digest);
CREATE TABLE IF NOT EXISTS features(
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY(file_id, name)
);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
"""


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

    def close(self) -> None:
        self.db.close()

    # -- files ---------------------------------------------------------------------------------
    def file(self, path: str) -> FileRow | None:
        r = self.db.execute(f"SELECT {_FILE_COLS} FROM files WHERE path=?", (path,)).fetchone()
        return FileRow(*r) if r else None

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
        ids = list(ids)
        out: dict[int, str] = {}
        for i in range(0, len(ids), 900):
            chunk = ids[i : i + 900]
            q = f"SELECT id, path FROM files WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(self.db.execute(q, chunk))
        return out

    def ids_by_path(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT path, id FROM files WHERE status='ok'"))

    def errors(self) -> list[tuple[str, str]]:
        return list(self.db.execute("SELECT path, reason FROM files WHERE status='error' ORDER BY path"))

    def counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))

    def write(self, row: dict, features: dict[str, tuple[str, bytes]]) -> int:
        """Insert or replace a file and its features in one transaction; returns the file id."""
        with self.transaction():
            return self._write(row, features)

    def _write(self, row: dict, features: dict[str, tuple[str, bytes]]) -> int:
        old = self.db.execute("SELECT id FROM files WHERE path=?", (row["path"],)).fetchone()
        cols = ["path", "size", "mtime_ns", "sha256", "pixel_digest", "width", "height", "format", "status", "reason"]
        vals = [row.get(c) for c in cols] + [time.time()]
        if old:
            file_id = old[0]
            sets = ", ".join(f"{c}=?" for c in cols) + ", added_at=?"
            self.db.execute(f"UPDATE files SET {sets} WHERE id=?", vals + [file_id])
            self.db.execute("DELETE FROM features WHERE file_id=?", (file_id,))
        else:
            q = f"INSERT INTO files({', '.join(cols)}, added_at) VALUES ({', '.join('?' * (len(cols) + 1))})"
            file_id = self.db.execute(q, vals).lastrowid
        self._put_features(file_id, features)
        return file_id

    def write_many(self, items: list[tuple[dict, dict]]) -> list[int]:
        with self.transaction():
            return [self._write(r, f) for r, f in items]

    def remove(self, paths: Iterable[str]) -> int:
        n = 0
        with self.transaction():
            for p in paths:
                n += self.db.execute("DELETE FROM files WHERE path=?", (p,)).rowcount
            self._bump("files")
        return n

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
