"""Persistence of the risk engine: `risk.sqlite` next to the index's catalog.

Tables: applications (with the file id of their photo in the index), links (pairs of applications and the
evidence between them, found when the later-scored one arrived), scores (risk, risk_at_submission - written
once, never updated -, case, reasons, signals), cases (stable ids), decisions (analyst labels for training).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from lookalike.risk.applications import Application

SCHEMA = """
CREATE TABLE IF NOT EXISTS applications(
    seq INTEGER PRIMARY KEY, application_id TEXT UNIQUE NOT NULL, applicant_id TEXT NOT NULL, photo TEXT,
    file_id INTEGER, submitted_at REAL NOT NULL, submitted_text TEXT, ip TEXT, subnet TEXT, mac TEXT,
    mac_local INTEGER, device_id TEXT, lat REAL, lon REAL, cell TEXT, scene REAL, photo_error TEXT,
    bg_cluster INTEGER, wall TEXT);
CREATE INDEX IF NOT EXISTS app_ip ON applications(ip);
CREATE INDEX IF NOT EXISTS app_subnet ON applications(subnet);
CREATE INDEX IF NOT EXISTS app_mac ON applications(mac);
CREATE INDEX IF NOT EXISTS app_device ON applications(device_id);
CREATE INDEX IF NOT EXISTS app_cell ON applications(cell);
CREATE INDEX IF NOT EXISTS app_file ON applications(file_id);
CREATE INDEX IF NOT EXISTS app_cluster ON applications(bg_cluster);
CREATE TABLE IF NOT EXISTS wall_tokens(token TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY(token, seq));
CREATE TABLE IF NOT EXISTS links(
    a INTEGER NOT NULL, b INTEGER NOT NULL, bg REAL, evidence TEXT NOT NULL, PRIMARY KEY(a, b));
CREATE INDEX IF NOT EXISTS links_b ON links(b);
CREATE TABLE IF NOT EXISTS scores(
    seq INTEGER PRIMARY KEY, risk REAL, risk_at_submission REAL NOT NULL, case_id INTEGER, reasons TEXT,
    reasons_at_submission TEXT, signals TEXT, signals_at_submission TEXT);
CREATE TABLE IF NOT EXISTS decisions(application_id TEXT PRIMARY KEY, label TEXT NOT NULL, at REAL);
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT);
"""

CELL = 0.005  # GPS grid cell (~500 m) used to find nearby applications without scanning them all


def cell_of(lat: float | None, lon: float | None) -> str | None:
    return None if lat is None or lon is None else f"{int(lat // CELL)}:{int(lon // CELL)}"


def near_cells(lat: float, lon: float) -> list[str]:
    i, j = int(lat // CELL), int(lon // CELL)
    return [f"{i + di}:{j + dj}" for di in (-1, 0, 1) for dj in (-1, 0, 1)]


class RiskStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def transaction(self):
        return _Tx(self.db)

    # -- state ------------------------------------------------------------------------------------
    def get(self, key: str, default=None):
        r = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r else default

    def put(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO state(key, value) VALUES (?,?)", (key, json.dumps(value)))

    # -- applications -----------------------------------------------------------------------------
    def seq_of(self, application_id: str) -> int | None:
        r = self.db.execute("SELECT seq FROM applications WHERE application_id=?", (application_id,)).fetchone()
        return r[0] if r else None

    def add_application(self, app: Application, *, file_id: int | None, scene: float | None,
                        photo_error: str | None) -> int:
        from lookalike.risk.applications import Application as _  # noqa: F401 (type only)

        cur = self.db.execute(
            "INSERT INTO applications(application_id, applicant_id, photo, file_id, submitted_at, submitted_text, ip,"
            " subnet, mac, mac_local, device_id, lat, lon, cell, scene, photo_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (app.application_id, app.applicant_id, app.photo, file_id, app.submitted_at, app.submitted_text, app.ip,
             app.subnet, app.mac, int(app.mac_local), app.device_id, app.lat, app.lon, cell_of(app.lat, app.lon),
             scene, photo_error))
        return int(cur.lastrowid)

    def rows(self, seqs=None) -> dict[int, sqlite3.Row]:
        self.db.row_factory = sqlite3.Row
        try:
            if seqs is None:
                rs = self.db.execute("SELECT * FROM applications ORDER BY seq").fetchall()
            else:
                seqs = list(seqs)
                rs = []
                for i in range(0, len(seqs), 900):
                    part = seqs[i:i + 900]
                    rs += self.db.execute(f"SELECT * FROM applications WHERE seq IN ({','.join('?' * len(part))})",
                                          part).fetchall()
        finally:
            self.db.row_factory = None
        return {r["seq"]: r for r in rs}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM applications").fetchone()[0]

    # -- links ------------------------------------------------------------------------------------
    def add_links(self, a: int, links: dict[int, dict]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO links(a, b, bg, evidence) VALUES (?,?,?,?)",
                            [(a, b, ev.get("bg"), json.dumps(ev)) for b, ev in links.items()])

    def links_of(self, seqs=None) -> dict[tuple[int, int], dict]:
        """Links as {(newer seq, older seq): evidence}; all of them, or those touching `seqs`."""
        if seqs is None:
            rs = self.db.execute("SELECT a, b, evidence FROM links").fetchall()
        else:
            seqs, rs = list(seqs), []
            for i in range(0, len(seqs), 400):
                part = seqs[i:i + 400]
                q = ",".join("?" * len(part))
                rs += self.db.execute(f"SELECT a, b, evidence FROM links WHERE a IN ({q}) OR b IN ({q})",
                                      part + part).fetchall()
        return {(a, b): json.loads(e) for a, b, e in rs}

    # -- scores -----------------------------------------------------------------------------------
    def set_submission(self, seq: int, risk: float, reasons: str, signals: dict) -> None:
        """risk_at_submission is written once: a second call for the same application changes nothing."""
        self.db.execute("INSERT OR IGNORE INTO scores(seq, risk_at_submission, reasons_at_submission, "
                        "signals_at_submission) VALUES (?,?,?,?)", (seq, risk, reasons, json.dumps(signals)))

    def set_risk(self, items: list[tuple[int, float, str, dict]]) -> None:
        self.db.executemany("UPDATE scores SET risk=?, reasons=?, signals=? WHERE seq=?",
                            [(r, why, json.dumps(sig), s) for s, r, why, sig in items])

    def set_cases(self, case_of: dict[int, int | None]) -> None:
        self.db.executemany("UPDATE scores SET case_id=? WHERE seq=?", [(c, s) for s, c in case_of.items()])

    def cases_stored(self) -> dict[int, int]:
        return dict(self.db.execute("SELECT seq, case_id FROM scores WHERE case_id IS NOT NULL"))

    def decide(self, application_id: str, label: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO decisions(application_id, label, at) VALUES (?,?,?)",
                        (application_id, label, time.time()))

    def decisions(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT application_id, label FROM decisions"))


class _Tx:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
