"""What a photo's EXIF says about it: when, where, with what camera (for `info FILE`, keepers, reports)."""

from __future__ import annotations

import datetime as dt
import os

from PIL import ExifTags, Image

from lookalike.imageio.load import register_heif

_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_DATE_TAGS = (0x9003, 0x9004, 0x0132)  # DateTimeOriginal, DateTimeDigitized, DateTime


def exif_summary(path: str | os.PathLike) -> dict:
    """{date (ISO 8601 or None), camera ("Make Model" or None), gps ([lat, lon] or None)}; never raises
    for a file that is not a picture or has no EXIF (every value None then)."""
    out: dict = {"date": None, "camera": None, "gps": None}
    register_heif()  # HEIC photos carry EXIF too
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            sub = exif.get_ifd(_EXIF_IFD)
            gps = exif.get_ifd(_GPS_IFD)
    except Exception:  # unreadable or not a picture: no EXIF to report
        return out
    for tag in _DATE_TAGS:
        value = sub.get(tag) or exif.get(tag)
        when = _parse_date(value)
        if when:
            out["date"] = when.isoformat()
            break
    camera = " ".join(str(exif.get(t, "")).strip("\x00 ") for t in (0x010F, 0x0110)).strip()
    out["camera"] = camera or None
    out["gps"] = _gps(gps)
    return out


def exif_timestamp(path: str | os.PathLike) -> float | None:
    """The EXIF capture time as a unix timestamp (local time, as cameras write it), or None."""
    d = exif_summary(path)["date"]
    return dt.datetime.fromisoformat(d).timestamp() if d else None


def _parse_date(value) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(value).strip("\x00 ")[:19], "%Y:%m:%d %H:%M:%S")
    except (TypeError, ValueError):
        return None


def _gps(gps) -> list[float] | None:
    names = {ExifTags.GPSTAGS.get(k, k): v for k, v in (gps or {}).items()}
    try:
        lat, lon = _degrees(names["GPSLatitude"]), _degrees(names["GPSLongitude"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if str(names.get("GPSLatitudeRef", "N")).upper().startswith("S"):
        lat = -lat
    if str(names.get("GPSLongitudeRef", "E")).upper().startswith("W"):
        lon = -lon
    return [round(lat, 6), round(lon, 6)]


def _degrees(v) -> float:
    d, m, s = (float(x) for x in v)
    return d + m / 60 + s / 3600
