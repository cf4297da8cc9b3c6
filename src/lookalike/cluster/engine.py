"""Clustering an index: batch (`cluster_index`) and online (`assign_new`), with ids stable across runs.

Pipeline (batch): evidence -> first clusters (connected components of the kNN graph above a
threshold) -> refinement (default: average linkage + member confidence, refine.py; "gcn": the learned
refiner, gcn.py; "none") -> ids matched to the stored ones -> stored in the catalog.

What is clustered, per `by` (defaults in BY, measured on ../shared/data, see eval/cluster.py):

- "image": one item per file; edges = the copy mode's verified pair scores (hashes, CNN + SIFT), so a
  cluster is a group of copies. threshold 0.8 (the copy threshold). No refinement by default: the copy
  relation is transitive and a crop shares little CNN similarity with its original.
- "background": one item per file; edges = the background mode's fused pair scores (masked CNN +
  background keypoints, every pair scored >= 0.3); background.py: core groups (components at 0.65 split
  by average linkage, link 0.6), then lone photos attached by support (2+ pairs), never one weak pair.
- "face": one item per detected face (largest first); edges = kNN cosine of the face embeddings
  (k 20, threshold 0.9), refinement with context similarity (floor 0.89, link 0.72); a cluster of 2 (3)
  faces needs cosine 0.94 (mean 0.93), else it splits (stray photos of two people, refine.py).

Online (`assign_new`, called by `index` for new files): each new item joins the cluster of its top-k
stored neighbours when at least `min_count` of them are above `online_threshold` (online.py): face and
image neighbours by vector cosine (faces 0.94, images CNN 0.9), background neighbours by the background
mode's fused search score (0.65; merge_count 0 = no merges: with fused scores one strong bridge
pair was enough to chain rooms).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.cluster import graph as G
from lookalike.cluster.background import DEFAULTS as BACKGROUND, add_by_search, cluster_background, mode_edges
from lookalike.cluster.refine import Refined, context_graph, refine, split_loose_small

BY: dict[str, dict] = {
    "image": dict(threshold=0.8, k=10, refiner="none", link_threshold=0.0, floor=None, vectors="cnn", pair_floor=0.8,
                  online_threshold=0.8, online_k=10, min_count=1, merge_count=1),
    "background": dict(threshold=BACKGROUND["threshold"], k=15, refiner="default",
                       link_threshold=BACKGROUND["link_threshold"], floor=None, vectors="bg_cnn", pair_floor=0.3,
                       online_threshold=0.65, online_k=10, min_count=1, merge_count=0),
    # floor 0.89 (was 0.85): in a small set (~13 people) a face's 20 neighbours hold other people above
    # 0.85, their context made look-alikes one person (bench_face_clusters.py: P 0.87 -> 0.99 held out)
    # small_min_cosine: a cluster of 2 (3) faces needs mean cosine 0.94 (0.93), see refine.split_loose_small
    "face": dict(threshold=0.9, k=20, refiner="default", link_threshold=0.72, floor=0.89, vectors=None,
                 small_min_cosine={2: 0.94, 3: 0.93}, online_threshold=0.94, online_k=10, min_count=1,
                 merge_count=3),
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS cluster_members(
    kind TEXT NOT NULL, file_id INTEGER NOT NULL, face INTEGER NOT NULL, cluster INTEGER NOT NULL,
    confidence REAL, PRIMARY KEY(kind, file_id, face));
CREATE INDEX IF NOT EXISTS cluster_members_cluster ON cluster_members(kind, cluster);
CREATE TABLE IF NOT EXISTS cluster_state(kind TEXT PRIMARY KEY, next_id INTEGER NOT NULL, params TEXT);
CREATE TABLE IF NOT EXISTS cluster_merges(
    kind TEXT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL, file_id INTEGER, face INTEGER, at REAL);
CREATE TABLE IF NOT EXISTS cluster_pins(
    kind TEXT NOT NULL, file_id INTEGER NOT NULL, face INTEGER NOT NULL, cluster INTEGER NOT NULL,
    PRIMARY KEY(kind, file_id, face));
"""


@dataclass
class Cluster:
    id: int
    members: list[tuple[str, int]]  # (path, face index; 0 for image/background), representative first
    confidence: list[float]  # per member, same order

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def representative(self) -> tuple[str, int]:
        return self.members[0]


@dataclass
class ClusterResult:
    by: str
    threshold: float
    refiner: str
    clusters: list[Cluster] = field(default_factory=list)  # largest first
    boxes: dict = field(default_factory=dict)  # by face: (path, face) -> box in working-image pixels

    def rows(self) -> list[tuple[str, int, int]]:
        """(path, face, cluster id) per member, by path."""
        return sorted((p, f, c.id) for c in self.clusters for p, f in c.members)

    def to_json(self) -> list[dict]:
        return [{"cluster": c.id, "size": c.size, "representative": c.representative[0],
                 "members": [{"path": p, "face": f, "confidence": round(s, 4)}
                             for (p, f), s in zip(c.members, c.confidence)]} for c in self.clusters]


def check_by(by: str) -> dict:
    if by not in BY:
        raise ValueError(f"unknown --by {by!r}; choose one of: {', '.join(BY)}")
    return BY[by]


# -- clustering arrays ------------------------------------------------------------------------------


def cluster_vectors(X, *, threshold: float, k: int = 20, refiner: str = "default", link_threshold: float = 0.75,
                    floor: float | None = None, attributes=None, attr_weight: float = 0.0,
                    gcn_weights=None, sources=None, small_min_cosine: dict[int, float] | None = None) -> Refined:
    """Cluster L2-normalised vectors: kNN first clusters at `threshold`, then the refiner.

    floor: if set, the refiners also use the context similarity of the kNN graph (refine.py).
    small_min_cosine: {size: bar}: refined clusters of that size below the bar split (split_loose_small).
    sources: per vector, its file: vectors of one file (faces of one photo) never share a cluster."""
    X = G.check_vectors(X)
    if len(X) == 0:
        return Refined(np.zeros(0, np.int64), np.zeros(0, np.float32))
    sims, nbrs = G.knn(X, k)
    first = G.components(G.edges_from_knn(sims, nbrs, threshold=threshold))
    context = context_graph(sims, nbrs, floor=floor) if floor is not None and refiner != "none" else None
    res = _refine(X, first, refiner, link_threshold=link_threshold, context=context, attributes=attributes,
                  attr_weight=attr_weight, gcn_weights=gcn_weights, sources=sources)
    if small_min_cosine and refiner != "none":
        res = split_loose_small(X, res, small_min_cosine)
    return res


def cluster_edges(edges: G.Edges, *, threshold: float, refiner: str = "none", link_threshold: float = 0.6,
                  split: str = "average", gcn_weights=None) -> Refined:
    """Cluster from explicit weighted edges (a mode's pair scores, all pairs scored, also below threshold):
    first clusters over edges >= threshold, refined on the matrix of pair scores (missing = 0) averaged
    with its context similarity (rows of that matrix: shared, similarly scored neighbours)."""
    from lookalike.cluster.refine import pair_graph, row_normalised

    first = G.components(edges, threshold)
    if refiner == "none":
        return _refine(None, first, refiner, link_threshold=link_threshold)
    P = pair_graph(edges)
    return _refine(None, first, refiner, link_threshold=link_threshold, context=row_normalised(P), pairs=P,
                   split=split, gcn_weights=gcn_weights)


def _refine(X, first, refiner, *, link_threshold, context=None, attributes=None, attr_weight=0.0,
            gcn_weights=None, pairs=None, split: str = "average", sources=None) -> Refined:
    if refiner == "none":
        return Refined(G.relabel(first), np.ones(len(first), np.float32))
    if refiner == "default":
        return refine(X, first, link_threshold=link_threshold, context=context, attributes=attributes,
                      attr_weight=attr_weight, pairs=pairs, split=split,
                      sources=None if sources is None else np.asarray(sources))
    if refiner == "gcn":
        from lookalike.cluster.gcn import GCNWeights, refine_gcn

        if gcn_weights is None:
            raise ValueError("refiner='gcn' needs trained weights: run `lookalike cluster train` first")
        w = gcn_weights if isinstance(gcn_weights, GCNWeights) else GCNWeights.load(gcn_weights)
        return refine_gcn(X, first, w, context=context, attributes=attributes, pairs=pairs)
    raise ValueError(f"unknown refiner {refiner!r}; choose default, gcn or none")


# -- items of an index --------------------------------------------------------------------------------


@dataclass
class Items:
    keys: list[tuple[int, int]]  # (file id, face index)
    X: np.ndarray | None  # (n, d) unit vectors, or None
    quality: np.ndarray | None = None
    boxes: dict = field(default_factory=dict)  # faces: (file id, face index) -> box in working-image pixels


def gather(index, by: str, ids=None, *, vectors: bool = True) -> Items:
    """The items to cluster and their vectors: files (image, background) or faces (face).
    vectors=False: files with the vector feature, without their vectors (X is None); faces always
    come with theirs."""
    conf = check_by(by)
    ids = [r.id for r in index.catalog.files()] if ids is None else list(ids)
    if by == "face":
        from lookalike.cluster.faces import faces_of

        faces = faces_of(index, ids)
        keys, vecs, qual, boxes = [], [], [], {}
        for i in ids:
            for j, f in enumerate(faces.get(i, [])):
                keys.append((i, j))
                vecs.append(f.embedding)
                qual.append(f.quality)
                boxes[(i, j)] = tuple(float(x) for x in f.box)
        X = np.array(vecs, np.float32).reshape(len(keys), -1) if keys else np.zeros((0, 128), np.float32)
        return Items(keys, X, np.array(qual, np.float32), boxes)
    vals = index.feature_values(ids, conf["vectors"])
    keys = [(i, 0) for i in ids if i in vals]
    X = G.normalise(np.stack([vals[i] for i, _ in keys])) if keys and vectors else None
    return Items(keys, X)


def cluster_index(index, *, by: str = "image", threshold: float | None = None, refiner: str | None = None,
                  gcn_weights: str | Path | None = None, save: bool = True) -> ClusterResult:
    """Cluster every file (or face) of an index; ids stay stable across runs (stored in the catalog).

    threshold / refiner: None = the defaults of BY[by]. gcn_weights: .npz from `train_refiner`
    (default: cluster-gcn-{by}.npz in the index folder)."""
    from lookalike.search.modes import get_mode

    conf = check_by(by)
    t = conf["threshold"] if threshold is None else float(threshold)
    refiner = refiner or conf["refiner"]
    if refiner == "gcn" and gcn_weights is None:
        gcn_weights = Path(index.dir) / f"cluster-gcn-{by}.npz"
    if by == "face":
        index.ensure(["faces"])  # with a progress bar: finding faces is the slow part
        items = gather(index, by)
        res = cluster_vectors(items.X, threshold=t, k=conf["k"], refiner=refiner,
                              link_threshold=conf["link_threshold"], floor=conf["floor"], gcn_weights=gcn_weights,
                              sources=[i for i, _ in items.keys], small_min_cosine=conf["small_min_cosine"])
    else:
        index.ensure(get_mode("copy" if by == "image" else "background").features)
        items = gather(index, by)
        edges = mode_edges(index, by, items.keys, min(t, conf["pair_floor"]))
        if by == "background":
            res = cluster_background(edges, threshold=t, refiner=refiner, gcn_weights=gcn_weights)
        else:
            res = cluster_edges(edges, threshold=t, refiner=refiner, link_threshold=conf["link_threshold"],
                                gcn_weights=gcn_weights)
    confidence = member_confidence(res.confidence, items.quality)
    with index.catalog.transaction():
        _schema(index)
        ids = _stable_ids(index, by, items.keys, res.labels)
        if save:
            _save(index, by, items.keys, ids, confidence, {"threshold": t, "refiner": refiner})
    return _result(index, by, t, refiner, items.keys, ids, confidence, items.boxes)


def member_confidence(confidence: np.ndarray, quality: np.ndarray | None) -> np.ndarray:
    """A member's confidence weighed by its quality in [0, 1] where known (faces): a blurred or doubtful
    detection in the middle of its cluster is less sure, and so never its representative."""
    if quality is None:
        return confidence
    return np.asarray(confidence, np.float32) * (0.5 + 0.5 * np.asarray(quality, np.float32))


def _result(index, by, t, refiner, keys, ids, confidence, boxes=None) -> ClusterResult:
    """boxes: faces' boxes by (file id, face), kept in the result so reports can show the face itself."""
    paths = index.catalog.paths({k[0] for k in keys})
    members: dict[int, list] = {}
    for n, (k, cid) in enumerate(zip(keys, ids)):
        if k[0] in paths:  # a file forgotten since (older indexes kept its rows)
            members.setdefault(int(cid), []).append((paths[k[0]], k[1], float(confidence[n])))
    clusters = []
    for cid, ms in members.items():
        # representative first: the most confident member (ties by path), the same in batch and stored results
        ms.sort(key=lambda m: (-m[2], m[0], m[1]))
        clusters.append(Cluster(cid, [(p, f) for p, f, _ in ms], [c for *_, c in ms]))
    clusters.sort(key=lambda c: (-c.size, c.id))
    by_path = {(paths.get(f, str(f)), j): b for (f, j), b in (boxes or {}).items()}
    return ClusterResult(by, t, refiner, clusters, by_path)


# -- storage ------------------------------------------------------------------------------------------


def _schema(index) -> None:
    for stmt in SCHEMA.strip().split(";"):
        if stmt.strip():
            index.catalog.db.execute(stmt)


def _next_id(index, by: str) -> int:
    r = index.catalog.db.execute("SELECT next_id FROM cluster_state WHERE kind=?", (by,)).fetchone()
    return r[0] if r else 0


def _stable_ids(index, by: str, keys, labels) -> np.ndarray:
    """Map new labels to stored ids: each new cluster takes the stored id most of its members had
    (largest clusters choose first, an id is used once); the rest get fresh ids. Items pinned by a hand
    merge or split (edit.py) keep their pinned id and do not vote, so hand edits survive a batch run."""
    from lookalike.cluster.edit import pins

    pinned = pins(index, by)
    old = {(f, j): c for f, j, c in index.catalog.db.execute(
        "SELECT file_id, face, cluster FROM cluster_members WHERE kind=?", (by,))}
    next_id = _next_id(index, by)
    ids = np.empty(len(keys), np.int64)
    taken: set[int] = set()
    for g in G.groups(labels):
        votes: dict[int, int] = {}
        free = [n for n in g if tuple(keys[n]) not in pinned]
        for n in free:
            c = old.get(tuple(keys[n]))
            if c is not None and c not in taken:
                votes[c] = votes.get(c, 0) + 1
        if not free:
            continue
        if votes:
            cid = max(votes, key=lambda c: (votes[c], -c))
        else:
            cid, next_id = next_id, next_id + 1
        taken.add(cid)
        ids[free] = cid
    for n, key in enumerate(keys):
        if tuple(key) in pinned:
            ids[n] = pinned[tuple(key)]
            taken.add(ids[n])
    _set_next(index, by, max(next_id, max(taken, default=-1) + 1))
    return ids


def _set_next(index, by: str, next_id: int, params: dict | None = None) -> None:
    db = index.catalog.db
    db.execute("INSERT INTO cluster_state(kind, next_id, params) VALUES (?,?,?) ON CONFLICT(kind) DO UPDATE SET "
               "next_id=excluded.next_id, params=COALESCE(excluded.params, cluster_state.params)",
               (by, int(next_id), json.dumps(params) if params else None))


def _save(index, by, keys, ids, confidence, params) -> None:
    db = index.catalog.db
    db.execute("DELETE FROM cluster_members WHERE kind=?", (by,))
    db.executemany("INSERT INTO cluster_members(kind, file_id, face, cluster, confidence) VALUES (?,?,?,?,?)",
                   [(by, int(f), int(j), int(c), float(s)) for (f, j), c, s in zip(keys, ids, confidence)])
    _set_next(index, by, _next_id(index, by), params)


def stored_clusters(index, *, by: str = "image") -> ClusterResult:
    """The clusters as stored by the last batch run plus online assignments (for `lookalike clusters`)."""
    check_by(by)
    with index.catalog.transaction():
        _schema(index)
    rows = index.catalog.db.execute(
        "SELECT file_id, face, cluster, confidence FROM cluster_members WHERE kind=? ORDER BY file_id, face",
        (by,)).fetchall()
    params = index.catalog.db.execute("SELECT params FROM cluster_state WHERE kind=?", (by,)).fetchone()
    p = json.loads(params[0]) if params and params[0] else {}
    keys = [(r[0], r[1]) for r in rows]
    boxes = gather(index, by, sorted({k[0] for k in keys})).boxes if by == "face" else None
    return _result(index, by, p.get("threshold", BY[by]["threshold"]), p.get("refiner", "stored"), keys,
                   np.array([r[2] for r in rows], np.int64), np.array([r[3] or 0.0 for r in rows], np.float32), boxes)


# -- online -----------------------------------------------------------------------------------------


def assign_new(index, file_ids, *, by: str = "image", threshold: float | None = None, k: int | None = None,
               min_count: int | None = None, min_share: float = 0.0,
               merge_count: int | None = None) -> dict[tuple[int, int], int]:
    """Online hook for `index`: give newly indexed files (or their faces) a cluster id now.

    Items already stored are left alone. Returns {(file id, face): cluster id} for the new items.
    Merges (a new item bridging two clusters) relabel the younger cluster and are recorded."""
    from lookalike.cluster.online import OnlineClusterer

    conf = check_by(by)
    with index.catalog.transaction():
        _schema(index)
        stored = index.catalog.db.execute(
            "SELECT file_id, face, cluster FROM cluster_members WHERE kind=?", (by,)).fetchall()
        known = {(f, j) for f, j, _ in stored}
        new_files = [i for i in dict.fromkeys(int(x) for x in file_ids)]
        new = gather(index, by, new_files)
        todo = [n for n, key in enumerate(new.keys) if key not in known]
        if not todo:
            return {}
        # image/background neighbours come from the mode's own search (add_by_search), not from vectors:
        # their stored items need only their cluster ids (background.py)
        by_search = by in ("image", "background")
        old = gather(index, by, sorted({f for f, _, _ in stored}), vectors=not by_search)
        label_of = {(f, j): c for f, j, c in stored}
        keep = [n for n, key in enumerate(old.keys) if key in label_of]
        dim = new.X.shape[1]
        oc = OnlineClusterer(dim, threshold=conf["online_threshold"] if threshold is None else threshold,
                             k=k or conf["online_k"], min_count=min_count or conf["min_count"], min_share=min_share,
                             merge_count=conf["merge_count"] if merge_count is None else merge_count,
                             next_id=_next_id(index, by))
        if keep:
            oc.load(None if by_search else old.X[keep], [label_of[old.keys[n]] for n in keep],
                    next_id=_next_id(index, by))
        n0 = len(oc.labels)
        if by_search:
            add_by_search(index, oc, [old.keys[n][0] for n in keep] + [new.keys[n][0] for n in todo], n0,
                           mode="copy" if by == "image" else "background")
        else:
            oc.add(new.X[todo])
        labels = oc.current_labels()
        db = index.catalog.db
        now = time.time()
        for m in oc.merges:
            item = m.item - n0
            f, j = new.keys[todo[item]] if item >= 0 else (None, None)
            db.execute("INSERT INTO cluster_merges(kind, src, dst, file_id, face, at) VALUES (?,?,?,?,?,?)",
                       (by, m.src, m.dst, f, j, now))
            db.execute("UPDATE cluster_members SET cluster=? WHERE kind=? AND cluster=?", (m.dst, by, m.src))
            db.execute("UPDATE cluster_pins SET cluster=? WHERE kind=? AND cluster=?", (m.dst, by, m.src))
        out = {}
        for n, lab in zip(todo, labels[n0:]):
            out[new.keys[n]] = int(lab)
            db.execute("INSERT OR REPLACE INTO cluster_members(kind, file_id, face, cluster, confidence) "
                       "VALUES (?,?,?,?,?)", (by, new.keys[n][0], new.keys[n][1], int(lab), None))
        _set_next(index, by, oc.next_id)
    return out


def online_kinds(index) -> list[str]:
    """The `by`s clustered before in this index: `index` keeps them up to date online. Read-only: an
    index never clustered gets no cluster tables from this check, which runs on every `index`."""
    db = index.catalog.db
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='cluster_state'").fetchone():
        return []
    return [r[0] for r in db.execute("SELECT kind FROM cluster_state ORDER BY kind")]


def update_online(index, kinds) -> dict[str, int]:
    """The online step after `index`: assign every file not yet clustered for each `by` in `kinds`;
    returns how many items each got. A `by` never clustered before starts here, and is followed from now on."""
    done = {}
    for by in kinds:
        check_by(by)
        with index.catalog.transaction():
            _schema(index)
            if by not in online_kinds(index):
                _set_next(index, by, 0)
        seen = {r[0] for r in index.catalog.db.execute(
            "SELECT DISTINCT file_id FROM cluster_members WHERE kind=?", (by,))}
        new = [r.id for r in index.catalog.files() if r.id not in seen]
        done[by] = len(assign_new(index, new, by=by)) if new else 0
    return done


def train_refiner(index, labels: dict[str, str], *, by: str = "face", out: str | Path | None = None,
                  epochs: int = 400, log=None) -> Path:
    """Train the learned (GCN) refiner from labelled groups {path: group} of indexed files; returns the
    .npz path (default: cluster-gcn-{by}.npz in the index folder, which refiner='gcn' then uses).

    For faces the label is that of the file's largest face. Training data must be licensed for it."""
    from lookalike.cluster import gcn

    conf = check_by(by)
    if by != "face":
        raise ValueError("the learned refiner is trained on face embeddings only: use --by face "
                         "(image and background clusters come from pair scores; use the default refiner)")
    rows = {p: index.catalog.file(p) for p in labels}  # any spelling of a path finds its file
    label_of = {r.id: labels[p] for p, r in rows.items() if r is not None and r.status == "ok"}
    chosen = list(label_of)
    if len(chosen) < 3:
        raise ValueError(f"only {len(chosen)} of {len(labels)} labelled paths are indexed: index the labelled files first")
    items = gather(index, by, chosen)
    keep = [n for n, (f, j) in enumerate(items.keys) if j == 0]
    X = items.X[keep]
    truth = np.array([label_of[items.keys[n][0]] for n in keep])
    sims, nbrs = G.knn(X, conf["k"])
    context = context_graph(sims, nbrs, floor=conf["floor"]) if conf["floor"] is not None else None
    edges = G.edges_from_knn(sims, nbrs)
    lt = conf["link_threshold"]
    t = conf["threshold"]
    samples = gcn.training_samples(X, truth, edges, thresholds=[t - 0.02, t, t + 0.02, t + 0.04],
                                   link_thresholds=[lt - 0.1, lt - 0.05, lt, lt + 0.05], context=context)
    weights = gcn.train(samples, link_threshold=lt, epochs=epochs, log=log)
    out = Path(out) if out else Path(index.dir) / f"cluster-gcn-{by}.npz"
    weights.save(out)
    return out


def read_labels(csv_path: str | Path, *, column: str | None = None) -> dict[str, str]:
    """Labelled groups for `train_refiner` from a CSV with a `path` column and a label column
    (`column`, else the first of identity / group / background / label / cluster / person / name, else
    the first column that is not `path`). Relative paths are resolved against the CSV's folder, as in the
    evaluation sets (identities.csv, groups.csv); the index matches them whatever spelling it holds."""
    import csv

    base = Path(csv_path).resolve().parent
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        known = ("identity", "group", "background", "label", "cluster", "person", "name")
        others = [c for c in cols if c != "path"]
        col = column or next((c for c in known if c in cols), None) or (others[0] if len(cols) >= 2 else None)
        if "path" not in cols or col is None or col not in cols:
            raise ValueError(f"{csv_path}: need a 'path' column and a label column (--column; default the first of "
                             f"{', '.join(known)}, else the other column); found {cols}")
        out = {}
        for row in reader:
            p, lab = (row.get("path") or "").strip(), (row.get(col) or "").strip()
            if p and lab:
                out[str(p if Path(p).is_absolute() else base / p)] = lab
    return out
