"""Caption files for `lookalike train text`: CSV rows `path,caption` (extra columns ignored).

Relative paths are relative to the CSV's folder. If a `split` column exists, only `train` rows are used
(the evaluation sets keep their `test` rows as queries). Bad rows never stop the read: each gives one line
saying what is wrong.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Captions:
    rows: list[tuple[str, str]]  # (absolute path, caption)
    problems: list[str] = field(default_factory=list)  # one line per unusable row
    skipped_split: int = 0  # rows of another split than `train`

    @property
    def images(self) -> list[str]:
        return list(dict.fromkeys(p for p, _ in self.rows))


def read_captions(csv_path: str | Path, *, split: str = "train") -> Captions:
    """Rows of a caption CSV; raises ValueError (one line) if the file itself is unusable."""
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    try:
        f = open(csv_path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ValueError(f"{csv_path}: cannot read ({e.strerror or e})") from None
    with f:
        try:
            reader = csv.DictReader(f)
            cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        except (csv.Error, UnicodeDecodeError) as e:
            raise ValueError(f"{csv_path}: not a CSV file ({e})") from None
        if "path" not in cols or "caption" not in cols:
            raise ValueError(f"{csv_path}: needs a header with 'path' and 'caption' columns; found {cols or 'none'}")
        reader.fieldnames = cols
        out = Captions([])
        try:
            for row in reader:
                line = reader.line_num
                if "split" in cols and (row.get("split") or "").strip().lower() != split:
                    out.skipped_split += 1
                    continue
                p, cap = (row.get("path") or "").strip(), " ".join((row.get("caption") or "").split())
                if not p:
                    out.problems.append(f"{csv_path}:{line}: no path")
                elif not cap:
                    out.problems.append(f"{csv_path}:{line}: {p}: empty caption")
                else:
                    full = Path(p) if Path(p).is_absolute() else base / p
                    if not full.is_file():
                        out.problems.append(f"{csv_path}:{line}: {p}: no such file")
                    else:
                        out.rows.append((str(full), cap))
        except (csv.Error, UnicodeDecodeError) as e:
            out.problems.append(f"{csv_path}:{reader.line_num}: unreadable from here on ({e})")
    return out
