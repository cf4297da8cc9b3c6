"""Acting on duplicate groups: which member to keep, a plan of what to do with the others, doing it
with a log, and undoing a move from that log. Decisions (not duplicates / keep all / keep one) live
in the catalog; `Index.dedup` honours them through `apply_decisions`.

Keeper rules (`--keep`):
  best     highest resolution, then largest file, then oldest (EXIF capture date, else mtime)
  oldest   oldest first, then highest resolution, then largest file
  largest  largest file, then highest resolution, then oldest
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lookalike.imageio.exif import exif_timestamp
from lookalike.search.results import DupGroup, Pair, dup_groups

KEEP_RULES = ("best", "oldest", "largest")
ACTIONS = ("move", "hardlink", "delete")


@dataclass
class Facts:
    """What a keeper rule looks at for one member."""

    pixels: int
    size: int
    taken: float  # EXIF capture time, else mtime, else +inf (unknown counts as newest)


def facts(catalog, paths: list[str]) -> dict[str, Facts]:
    out = {}
    for p in paths:
        row = catalog.file(p) or catalog.blob(p)
        pixels = (row.width or 0) * (row.height or 0) if row else 0
        size = (row.size or 0) if row else 0
        taken = exif_timestamp(p) if row and row.mtime_ns is not None else None
        if taken is None:
            taken = row.mtime_ns / 1e9 if row and row.mtime_ns else float("inf")
        out[p] = Facts(pixels, size, taken)
    return out


def choose_keeper(members: list[str], info: dict[str, Facts], rule: str = "best") -> str:
    if rule not in KEEP_RULES:
        raise ValueError(f"unknown --keep {rule!r}; choose one of: {', '.join(KEEP_RULES)}")
    order = {
        "best": lambda p: (-info[p].pixels, -info[p].size, info[p].taken, p),
        "oldest": lambda p: (info[p].taken, -info[p].pixels, -info[p].size, p),
        "largest": lambda p: (-info[p].size, -info[p].pixels, info[p].taken, p),
    }[rule]
    return min(members, key=order)


def apply_decisions(catalog, pairs: list[Pair], key_of: dict[str, str], *, rule: str = "best",
                    include_decided: bool = False) -> tuple[list[Pair], list[DupGroup]]:
    """Drop pairs inside one "not_duplicates" decision, group the rest, flag groups a keep_all/keep_one
    decision covers (dropped with their pairs unless include_decided), suggest a keeper per group.
    key_of: {shown path: catalog key} of every path in `pairs`."""
    decisions = catalog.decisions()
    apart: dict[str, set[int]] = {}
    for d in decisions:
        if d["verdict"] == "not_duplicates":
            for k in d["members"]:
                apart.setdefault(k, set()).add(d["id"])
    pairs = [p for p in pairs if not (apart.get(key_of[p.a], set()) & apart.get(key_of[p.b], set()))]
    groups = dup_groups(pairs)
    covering = [(d, set(d["members"])) for d in decisions if d["verdict"] in ("keep_all", "keep_one")]
    info = facts(catalog, [m for g in groups for m in g.members])
    shown = {k: p for p, k in key_of.items()}
    for g in groups:
        keys = {key_of[m] for m in g.members}
        d = next((d for d, ks in reversed(covering) if keys <= ks), None)
        g.keeper = choose_keeper(g.members, info, rule)
        if d is not None:
            g.decided, g.decision = True, d["id"]
            if d["verdict"] == "keep_one" and shown.get(d["keeper"]) in g.members:
                g.keeper = shown[d["keeper"]]
    if not include_decided:
        groups = [g for g in groups if not g.decided]
        pairs = [p for g in groups for p in g.pairs]
        pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs, groups


# -- acting on groups ----------------------------------------------------------------------------------


def parse_action(action: str) -> tuple[str, Path | None]:
    """"move:DIR" | "hardlink" | "delete" -> (verb, folder)."""
    verb, _, target = action.partition(":")
    if verb not in ACTIONS:
        raise ValueError(f"unknown --action {action!r}; choose move:DIR, hardlink or delete")
    if verb == "move" and not target:
        raise ValueError("--action move needs a folder: move:DIR")
    return verb, Path(target) if target else None


def plan(groups: list[DupGroup], action: str) -> list[dict]:
    """One row per member that is not kept: {group, keep, path, action, target}. Pictures that are not
    files (from documents) are left out: there is nothing on disk to act on."""
    verb, folder = parse_action(action)
    rows = []
    for g in groups:
        for m in g.members:
            if m == g.keeper or not os.path.isfile(m):
                continue
            target = ""
            if verb == "move":
                target = str(folder / _relative(m))
            elif verb == "hardlink":
                target = g.keeper
            rows.append({"group": g.id, "keep": g.keeper, "path": m, "action": verb, "target": target})
    return rows


def _relative(path: str) -> str:
    """Where a moved file goes under the folder: its absolute path without the root (no collisions)."""
    return os.path.abspath(path).lstrip(os.sep).replace(":", "")


def write_plan(rows: list[dict], out: str | Path | None, fmt: str) -> str:
    """The plan as CSV or JSON text (written to `out` when given)."""
    if fmt == "json":
        text = json.dumps(rows, indent=1) + "\n"
    else:
        from io import StringIO

        buf = StringIO()
        w = csv.DictWriter(buf, ["group", "keep", "path", "action", "target"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        text = buf.getvalue()
    if out:
        Path(out).write_text(text, encoding="utf-8")
    return text


def execute(rows: list[dict], log: str | Path) -> tuple[int, list[tuple[str, str]]]:
    """Do the plan; every done step is appended to `log` (JSON lines) as it happens, so a crash
    leaves a true log. Returns (done, [(path, reason)] of steps that failed)."""
    done, failed = 0, []
    with open(log, "a", encoding="utf-8") as f:
        for r in rows:
            src, verb, target = r["path"], r["action"], r["target"]
            try:
                if not os.path.isfile(r["keep"]):
                    raise OSError(f"the kept file {r['keep']} is missing; nothing done")
                if verb == "move":
                    if os.path.lexists(target):
                        raise OSError(f"{target} exists")
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.move(src, target)
                elif verb == "hardlink":
                    tmp = f"{src}.lookalike-tmp"
                    os.link(target, tmp)
                    os.replace(tmp, src)
                else:
                    os.remove(src)
            except OSError as e:
                failed.append((src, getattr(e, "strerror", None) or str(e)))
                continue
            done += 1
            f.write(json.dumps({"at": time.time(), **r}) + "\n")
            f.flush()
    return done, failed


def undo(log: str | Path) -> tuple[int, list[tuple[str, str]]]:
    """Move files back as the log says (moves only; hardlinks and deletions cannot be undone: the
    plan said so before). Returns (restored, [(path, reason)])."""
    restored, failed = 0, []
    lines = [json.loads(x) for x in Path(log).read_text(encoding="utf-8").splitlines() if x.strip()]
    for r in reversed(lines):
        if r.get("action") != "move":
            failed.append((r.get("path", "?"), f"a {r.get('action')} cannot be undone"))
            continue
        try:
            if os.path.lexists(r["path"]):
                raise OSError(f"{r['path']} exists again")
            os.makedirs(os.path.dirname(os.path.abspath(r["path"])), exist_ok=True)
            shutil.move(r["target"], r["path"])
            restored += 1
        except OSError as e:
            failed.append((r["path"], getattr(e, "strerror", None) or str(e)))
    return restored, failed
