"""Bytes per photo per feature in a real catalog (the capacity plan's input, docs/scale.md).

    python benchmarks/catalog_bytes.py INDEX_DIR [INDEX_DIR ...]

Prints, per feature, the files that have it and the mean stored bytes (SQLite payload), then the
catalog file's bytes per file (rows, indexes and page slack included).
"""

from __future__ import annotations

import os
import sqlite3
import sys


def main() -> None:
    total: dict[str, list[int]] = {}
    files = size = 0
    for where in sys.argv[1:]:
        path = os.path.join(where, "catalog.sqlite")
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        for name, n, b in db.execute("SELECT name, COUNT(*), SUM(LENGTH(data)) FROM features GROUP BY name"):
            t = total.setdefault(name, [0, 0])
            t[0] += n
            t[1] += b
        files += db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        size += os.path.getsize(path) + sum(os.path.getsize(path + s) for s in ("-wal",) if os.path.exists(path + s))
        db.close()
    print(f"{'feature':>12} {'files':>6} {'bytes/photo':>11}")
    for name, (n, b) in sorted(total.items(), key=lambda kv: -kv[1][1] / kv[1][0]):
        print(f"{name:>12} {n:>6} {b / n:>11.0f}")
    print(f"catalog file: {size / max(files, 1):.0f} bytes per file over {files} files")


if __name__ == "__main__":
    main()
