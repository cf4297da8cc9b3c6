"""Hand edits of stored clusters: merge several clusters into one, split members off into a new one.

Both work on the stored clusters (cluster_members) and record what the person decided as *pins*
(cluster_pins: item -> cluster id), so that a later batch `cluster` run keeps the edit:

- merge: every member of the merged clusters is pinned to the target (the oldest, smallest id); the
  other ids disappear and are recorded in cluster_merges (like online merges, without a bridging file).
- split: the chosen members are pinned to a fresh id (ids are never reused).

A batch re-run gives pinned items their pinned id whatever the clustering says, and lets only unpinned
items vote for the ids of the other clusters (engine._stable_ids), so a split-off group never pulls the
rest of its old cluster along, and a merged cluster stays one. A later edit of the same item replaces
its pin; online merges carry pins along.
"""

from __future__ import annotations

import time
from typing import Sequence

from lookalike.cluster.engine import _next_id, _schema, _set_next, check_by


class UnknownCluster(ValueError):
    """A cluster id that is not stored for this `by` (the service answers 404)."""


def _stored_ids(index, by: str) -> set[int]:
    return {r[0] for r in index.catalog.db.execute("SELECT DISTINCT cluster FROM cluster_members WHERE kind=?", (by,))}


def _pin(index, by: str, items, cluster_id: int) -> None:
    index.catalog.db.executemany(
        "INSERT OR REPLACE INTO cluster_pins(kind, file_id, face, cluster) VALUES (?,?,?,?)",
        [(by, int(f), int(j), int(cluster_id)) for f, j in items])


def pins(index, by: str) -> dict[tuple[int, int], int]:
    """{(file id, face): cluster id} of hand-edited items (empty when nothing was edited)."""
    return {(f, j): c for f, j, c in index.catalog.db.execute(
        "SELECT file_id, face, cluster FROM cluster_pins WHERE kind=?", (by,))}


def merge_clusters(index, ids: Sequence[int], *, by: str) -> int:
    """Move the members of all `ids` into the smallest of them; returns that id. Names: the target's,
    else the first named cluster's (in the order given)."""
    check_by(by)
    ids = list(dict.fromkeys(int(i) for i in ids))
    if len(ids) < 2:
        raise ValueError(f"merge needs at least 2 different cluster ids, got {ids}")
    with index.catalog.transaction():
        _schema(index)
        missing = [i for i in ids if i not in _stored_ids(index, by)]
        if missing:
            raise UnknownCluster(f"no {by} cluster with id {', '.join(map(str, missing))}")
        target = min(ids)
        db = index.catalog.db
        names = index.cluster_names(by=by)
        name = names.get(target) or next((names[i] for i in ids if i in names), None)
        marks = ",".join("?" * len(ids))
        members = db.execute(f"SELECT file_id, face FROM cluster_members WHERE kind=? AND cluster IN ({marks})",
                             (by, *ids)).fetchall()
        now = time.time()
        for src in ids:
            if src != target:
                db.execute("INSERT INTO cluster_merges(kind, src, dst, file_id, face, at) VALUES (?,?,?,?,?,?)",
                           (by, src, target, None, None, now))
                db.execute("DELETE FROM meta WHERE key=?", (f"cluster-name:{by}:{src}",))
        db.execute(f"UPDATE cluster_members SET cluster=? WHERE kind=? AND cluster IN ({marks})", (target, by, *ids))
        db.execute(f"UPDATE cluster_pins SET cluster=? WHERE kind=? AND cluster IN ({marks})", (target, by, *ids))
        _pin(index, by, members, target)
        if name:
            index.catalog.set_meta(f"cluster-name:{by}:{target}", name)
    return target


def split_cluster(index, cluster_id: int, members: Sequence[tuple[str, int]] | Sequence[str], *, by: str) -> int:
    """Move `members` of a cluster into a new cluster; returns its id (never used before).

    members: paths, or (path, face) pairs; a bare path means every member of that file (by face: all its
    faces in the cluster). At least one member must stay behind."""
    check_by(by)
    cluster_id = int(cluster_id)
    if not members:
        raise ValueError("split needs at least one member to move")
    with index.catalog.transaction():
        _schema(index)
        db = index.catalog.db
        rows = db.execute("SELECT file_id, face FROM cluster_members WHERE kind=? AND cluster=?",
                          (by, cluster_id)).fetchall()
        if not rows:
            raise UnknownCluster(f"no {by} cluster with id {cluster_id}")
        inside = {(f, j) for f, j in rows}
        chosen: set[tuple[int, int]] = set()
        for m in members:
            path, face = (m, None) if isinstance(m, str) else (m[0], int(m[1]))
            row = index.catalog.file(path)
            found = {k for k in inside if row is not None and k[0] == row.id and (face is None or k[1] == face)}
            if not found:
                raise ValueError(f"{path}{'' if face is None else f'#{face}'} is not a member of {by} cluster {cluster_id}")
            chosen |= found
        if chosen == inside:
            raise ValueError(f"split would move every member of {by} cluster {cluster_id}: leave at least one behind")
        new_id = _next_id(index, by)
        db.executemany("UPDATE cluster_members SET cluster=? WHERE kind=? AND file_id=? AND face=?",
                       [(new_id, by, f, j) for f, j in sorted(chosen)])
        _pin(index, by, sorted(chosen), new_id)
        _set_next(index, by, new_id + 1)
    return new_id


def merges(index, *, by: str = "image") -> list[tuple[int, int, str | None, int | None, float]]:
    """Recorded merges, online and by hand: (from id, into id, path of the bridging file (None for a hand
    merge), face, unix time)."""
    with index.catalog.transaction():
        _schema(index)
    rows = index.catalog.db.execute(
        "SELECT src, dst, file_id, face, at FROM cluster_merges WHERE kind=? ORDER BY at", (by,)).fetchall()
    paths = index.catalog.paths({r[2] for r in rows if r[2] is not None})
    return [(r[0], r[1], paths.get(r[2]), r[3], r[4]) for r in rows]
