"""Loan applications: reading and validating them (CSV in the format of shared/data/fraud/applications.csv).

A bad field never stops a run. A malformed IP, MAC, device id or GPS is reported in one line and left out
(the application is still scored on everything else); a missing time or application id, or an id seen twice
in one file, skips that application with a reason. A CSV without the required columns is an error.
"""

from __future__ import annotations

import csv
import ipaddress
import re
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from lookalike.errors import BadInput

COLUMNS = ("application_id", "applicant_id", "photo", "submitted_at", "ip", "mac", "device_id", "gps_lat", "gps_lon")
REQUIRED = ("application_id", "applicant_id", "photo", "submitted_at")

_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")


@dataclass
class Application:
    application_id: str
    applicant_id: str
    photo: str  # absolute path, or "" when the photo came as bytes (submit)
    submitted_at: float  # POSIX seconds (UTC)
    submitted_text: str = ""
    ip: str | None = None
    mac: str | None = None
    device_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    problems: list[str] = field(default_factory=list)  # fields left out, one line each

    @property
    def subnet(self) -> str | None:
        """The /24 of the IP (carrier NAT and home networks share it)."""
        return ".".join(self.ip.split(".")[:3]) if self.ip else None

    @property
    def mac_local(self) -> bool:
        """Locally administered (randomised) MAC: phones invent these per network, so they say less."""
        return bool(self.mac) and int(self.mac[:2], 16) & 0x02 != 0

    def to_dict(self) -> dict:
        return asdict(self)


def parse_time(text: str) -> float:
    """ISO-8601 with an offset -> POSIX seconds. A time without an offset is taken as UTC."""
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


def _ip(text: str) -> str:
    a = ipaddress.ip_address(text.strip())
    if a.version != 4:
        raise ValueError("not IPv4")
    return str(a)


def _mac(text: str) -> str:
    m = text.strip().lower().replace("-", ":")
    if not _MAC.match(m):
        raise ValueError("not aa:bb:cc:dd:ee:ff")
    return m


def _device(text: str) -> str:
    return str(uuid.UUID(text.strip()))


def from_fields(fields: dict, *, photo: str = "", base: Path | None = None) -> Application:
    """One application from a dict of CSV fields. Raises BadInput when it cannot be scored at all
    (no id, applicant or time); a malformed optional field is dropped and noted in `problems`."""
    get = lambda k: str(fields.get(k) or "").strip()  # noqa: E731
    app_id, applicant = get("application_id"), get("applicant_id")
    if not app_id:
        raise BadInput("no application_id")
    if not applicant:
        raise BadInput(f"{app_id}: no applicant_id")
    try:
        ts = parse_time(get("submitted_at"))
    except ValueError:
        raise BadInput(f"{app_id}: malformed submitted_at {get('submitted_at')!r} (want ISO-8601, e.g. "
                       "2025-01-06T17:49:12+08:00)") from None
    p = photo or get("photo")
    if p and base is not None and not Path(p).is_absolute():
        p = str((base / p).resolve())
    app = Application(app_id, applicant, p, ts, get("submitted_at"))
    for name, parse, attr in (("ip", _ip, "ip"), ("mac", _mac, "mac"), ("device_id", _device, "device_id")):
        if get(name):
            try:
                setattr(app, attr, parse(get(name)))
            except ValueError:
                app.problems.append(f"malformed {name} {get(name)!r} ignored")
    lat, lon = get("gps_lat"), get("gps_lon")
    if lat or lon:
        try:
            la, lo = float(lat), float(lon)
            if not (-90 <= la <= 90 and -180 <= lo <= 180):
                raise ValueError
            app.lat, app.lon = la, lo
        except ValueError:
            app.problems.append(f"malformed GPS {lat!r},{lon!r} ignored")
    return app


@dataclass
class ReadResult:
    applications: list[Application]  # valid ones, in submitted_at order
    skipped: list[tuple[str, str]]  # (application id or row, reason)


def read_applications(path: str | Path) -> ReadResult:
    """Read and validate an applications CSV. Raises BadInput when the file cannot be read or lacks
    required columns; every other problem is one line in `skipped` or in an application's `problems`."""
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise BadInput(f"{path}: cannot read ({e.strerror or e})") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})")
        apps, skipped, seen = [], [], set()
        try:
            rows = list(reader)
        except (csv.Error, UnicodeDecodeError) as e:
            raise BadInput(f"{path}: not a readable CSV ({e})") from None
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        try:
            app = from_fields(row, base=path.parent)
        except BadInput as e:
            skipped.append((row.get("application_id") or f"line {n}", f"line {n}: {e}"))
            continue
        if app.application_id in seen:
            skipped.append((app.application_id, f"line {n}: duplicate application_id {app.application_id} (first kept)"))
            continue
        seen.add(app.application_id)
        apps.append(app)
    apps.sort(key=lambda a: (a.submitted_at, a.application_id))
    return ReadResult(apps, skipped)
