"""The service's own small database inside the index directory (`INDEX/service.sqlite`).

Keys (hashed) and labels of uploaded images (a name is a label, never a path). Kept
apart from the engine's catalog so the service never changes the engine's schema. One connection
shared by every thread behind a lock: these are a few tiny rows, written rarely.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys(
    id INTEGER PRIMARY KEY, prefix TEXT NOT NULL, hash TEXT UNIQUE NOT NULL, role TEXT NOT NULL,
    name TEXT, created_at REAL NOT NULL, revoked_at REAL);
CREATE TABLE IF NOT EXISTS labels(
    path TEXT PRIMARY KEY, name TEXT NOT NULL, uploaded_at REAL NOT NULL, uploaded_by TEXT);
"""


class ServiceStore:
    def __init__(self, index_dir: str | Path):
        self.path = Path(index_dir) / "service.sqlite"
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def close(self) -> None:
        self.db.close()

    def execute(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def change(self, sql: str, args: tuple = ()) -> int:
        """Run one write statement; returns the rows changed (or the new row id for an INSERT)."""
        with self.lock:
            cur = self.db.execute(sql, args)
            return cur.lastrowid if sql.lstrip().upper().startswith("INSERT") else cur.rowcount

    # -- labels of uploads -------------------------------------------------------------------
    def set_label(self, path: str, name: str, by: str | None) -> None:
        self.change("INSERT OR IGNORE INTO labels(path, name, uploaded_at, uploaded_by) VALUES (?,?,?,?)",
                    (path, name, time.time(), by))

    def labels(self, paths: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(paths), 900):
            chunk = paths[i:i + 900]
            out.update(self.execute(f"SELECT path, name FROM labels WHERE path IN ({','.join('?' * len(chunk))})",
                                    tuple(chunk)))
        return out

    def drop_label(self, path: str) -> None:
        self.change("DELETE FROM labels WHERE path=?", (path,))
