"""The engine's one front door: CLI, server and Python users all call `Index`.

    from lookalike import Index
    with Index.open(".lookalike") as idx:
        idx.add(["photos/"])
        for r in idx.search(["query.jpg"], mode="copy"):
            print(r.query, [(m.path, m.score) for m in r.results])
        dup = idx.dedup(mode="copy")
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from lookalike import config
from lookalike.errors import BadInput, IndexMissing
from lookalike.features import registry
from lookalike.imageio import Decoded, decode_bytes, read_bytes
from lookalike.ingest import AddReport, compute_missing, index_blobs, index_files
from lookalike.search.modes import MODES, Query, get_mode
from lookalike.search.results import DedupResult, Match, Pair, QueryResult
from lookalike.store.catalog import VERDICTS, Catalog

Progress = Callable[[str], Callable[[int, int], None]] | None

# Parallelism is worker processes. numpy's BLAS threads only spin on the engine's many small products
# (SIFT descriptor matching: copy dedup of near_duplicate took 263 s of CPU with 2 BLAS threads on a
# busy machine, 97 s with one, same pairs), so the engine's process runs BLAS on one thread.
threadpool_limits(1, user_api="blas")

# Features computed by a plain `index` run: cheap hashes always; deep features join as modes need them.
DEFAULT_FEATURES = ["ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint"]


def default_features() -> list[str]:
    """Hashes always; the CNN descriptor too once its model is prepared (copy and similar modes use it)."""
    from lookalike import models

    return DEFAULT_FEATURES + (["cnn"] if models.is_prepared("efficientnet-lite0") else [])


class Index:
    def __init__(self, directory: str | os.PathLike | None = None, *, progress: Progress = None,
                 create: bool = True):
        """create=False: an index directory that does not exist raises IndexMissing (nothing is made)."""
        self.dir = config.index_dir(directory)
        if not create and not (self.dir / "catalog.sqlite").is_file():
            raise IndexMissing(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.dir / "catalog.sqlite")
        self.progress = progress
        self._cache: dict[str, tuple[tuple, object]] = {}

    @classmethod
    def open(cls, directory: str | os.PathLike | None = None, **kw) -> "Index":
        return cls(directory, **kw)

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- building -----------------------------------------------------------------------------
    def add(self, paths: Iterable[str | os.PathLike], *, features: Sequence[str] | None = None,
            workers: int | None = None, cluster: Sequence[str] = (), defaults: bool = True,
            include: Sequence[str] = (), exclude: Sequence[str] = (), min_size: int = 0,
            engine: str = "local", ray_address: str | None = None) -> AddReport:
        """Index files and folders incrementally (unchanged files are skipped) and drop indexed files
        under them that are gone from the disk (report.removed). New files join the clusters online
        for every `by` in `cluster` and every `by` clustered before in this index.
        defaults=False computes only `features` now (e.g. hashes alone: modes add theirs when used).
        include/exclude: shell globs on file names or paths (see ingest.scan); min_size: pictures whose
        short side is below it are recorded as errors with that reason.
        engine="ray" extracts on Ray (a local one, or the cluster at `ray_address`)."""
        from lookalike.cluster.engine import online_kinds, update_online

        feats = list(dict.fromkeys(list(features or []) + (default_features() if defaults else [])))
        registry.check(feats)
        report = index_files(self.catalog, paths, feats, workers=workers, progress=self._bar("Indexing"),
                             skip_dir=self.dir, include=include, exclude=exclude, min_size=min_size,
                             engine=engine, ray_address=ray_address)
        kinds = list(dict.fromkeys([*cluster, *online_kinds(self)]))
        if kinds:
            report.clustered = update_online(self, kinds)
        return report

    def add_blobs(self, items: Sequence[tuple[str, bytes]], *, features: Sequence[str] | None = None,
                  workers: int | None = None) -> AddReport:
        """Index pictures held in memory under keys of your choice (e.g. "report.docx::word/media/image1.png")."""
        feats = list(dict.fromkeys(list(features or []) + default_features()))
        return index_blobs(self.catalog, list(items), feats, workers=workers, progress=self._bar("Indexing pictures"))

    def ensure(self, features: Iterable[str], *, workers: int | None = None) -> int:
        """Compute features that indexed files lack (done automatically when a mode needs them)."""
        return compute_missing(self.catalog, list(features), workers=workers, progress=self._bar("Computing features"))

    def remove(self, paths: Iterable[str | os.PathLike]) -> int:
        """Forget these files (any spelling of their paths) or every indexed file under these folders;
        returns how many were forgotten. Nothing on disk is touched."""
        ids = set()
        for p in paths:
            row = self.catalog.file(p) or self.catalog.blob(os.fspath(p))
            if row is not None:
                ids.add(row.id)
            ids |= {r.id for r in self.catalog.under(p)}
        return self.catalog.remove_ids(sorted(ids))

    def prune(self) -> list[str]:
        """Forget every indexed file that no longer exists on disk; returns their paths."""
        gone = self.catalog.gone()
        self.catalog.remove_ids([r.id for r in gone])
        return [r.path for r in gone]

    # -- decisions about duplicates ---------------------------------------------------------------
    def decide(self, members: Sequence[str | os.PathLike], verdict: str, keeper: str | None = None) -> int:
        """Remember what a user decided about these files (paths as stored or any spelling of them):
        "not_duplicates" (dedup never pairs them again), "keep_all" or "keep_one" (with `keeper`): a
        group all of whose members one such decision covers is flagged decided. Returns its id."""
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}; choose one of: {', '.join(VERDICTS)}")
        keys = list(dict.fromkeys(self.catalog.key_of(m) for m in members))
        if len(keys) < 2:
            raise ValueError("a decision needs at least two different files")
        key = None
        if verdict == "keep_one":
            if keeper is None:
                raise ValueError("keep_one needs the keeper: one of the members")
            key = self.catalog.key_of(keeper)
            if key not in keys:
                raise ValueError(f"the keeper {keeper} is not one of the members")
        elif keeper is not None:
            raise ValueError(f"a keeper only goes with keep_one, not {verdict}")
        return self.catalog.add_decision(keys, verdict, key)

    def decisions(self) -> list[dict]:
        """[{id, verdict, members, keeper, created_at}], oldest first; paths as stored."""
        out = self.catalog.decisions()
        shown = self.catalog.display_paths({k for d in out for k in d["members"]})
        for d in out:
            d["members"] = [shown[k] for k in d["members"]]
            d["keeper"] = shown.get(d["keeper"], d["keeper"]) if d["keeper"] else None
        return out

    def undo_decision(self, decision_id: int) -> None:
        if not self.catalog.remove_decision(int(decision_id)):
            raise ValueError(f"no decision {decision_id}: `lookalike decisions` lists them")

    # -- querying -----------------------------------------------------------------------------
    def search(self, queries: Iterable[str | os.PathLike], *, mode: str = "copy", k: int = 10,
               min_score: float | None = None) -> list[QueryResult]:
        """The indexed files alike to each query, best first. min_score: default the mode's threshold
        (what counts as alike). A query that is itself indexed finds itself: that match carries
        details["self"] = True and the result `indexed` = True."""
        m = get_mode(mode)
        _check_k(k)
        min_score = m.threshold if min_score is None else _check_score(min_score, "min_score")
        self.ensure(m.features)
        out = []
        for q in queries:
            key = str(q)
            try:
                query = self.make_query(key, read_bytes(key), m.features)
            except BadInput as e:
                out.append(QueryResult(key, [], error=str(e)))
                continue
            hits = m.search(self, query, k, min_score)
            hits = [h for h in hits if h[1] >= min_score][:k]
            paths = self.catalog.paths(h[0] for h in hits)
            own = self.catalog.file(key)
            matches = [Match(paths[h[0]], h[1], h[2], dict(h[3], self=True) if own and h[0] == own.id else h[3])
                       for h in hits]
            out.append(QueryResult(key, matches, indexed=own is not None and own.status == "ok"))
        return out

    def make_query(self, key: str, data: bytes, features: Sequence[str]) -> Query:
        img = decode_bytes(data, keep_source=True)
        return Query(key, img.sha256, img.pixel_digest, self.compute(img, features), img.rgb,
                     (img.width, img.height))

    @staticmethod
    def compute(img: Decoded, features: Sequence[str]) -> dict:
        """Features of a query image in the form `feature_values` gives them (blob kinds decoded), so
        a mode reads a query's features one way whether they were computed now or stored."""
        return {n: registry.get(n).value(img) for n in features}

    def dedup(self, *, mode: str = "copy", threshold: float | None = None, keep: str = "best",
              include_decided: bool = False) -> DedupResult:
        """Pairs and groups of alike files. Decisions are honoured (see `decide`): pairs inside a
        "not_duplicates" decision never come back; groups a keep_all/keep_one decision covers are
        flagged `decided` and left out unless include_decided. Each group suggests a keeper by the
        rule `keep` (best | oldest | largest, see lookalike.duplicates)."""
        from lookalike.duplicates import KEEP_RULES, apply_decisions

        m = get_mode(mode)
        if keep not in KEEP_RULES:
            raise ValueError(f"unknown keep rule {keep!r}; choose one of: {', '.join(KEEP_RULES)}")
        t = m.threshold if threshold is None else _check_score(threshold, "threshold")
        self.ensure([*m.features, *m.pair_features])  # one decoding pass for what pairs() will need
        hits = [h for h in m.pairs(self, t) if h[2] >= t]
        ids = {i for h in hits for i in h[:2]}
        paths, keys = self.catalog.paths(ids), self.catalog.keys(ids)
        pairs = [Pair(*sorted((paths[a], paths[b])), s, meth, det) for a, b, s, meth, det in hits]
        pairs.sort(key=lambda p: (-p.score, p.a, p.b))
        pairs, groups = apply_decisions(self.catalog, pairs, {paths[i]: keys[i] for i in ids}, rule=keep,
                                        include_decided=include_decided)
        return DedupResult(mode, t, pairs, groups)

    # -- clustering (lookalike.cluster) ----------------------------------------------------------
    def cluster(self, *, by: str = "image", threshold: float | None = None, refiner: str | None = None):
        """Cluster every file (or face) by image, background or face; ids stay stable across runs."""
        from lookalike.cluster.engine import cluster_index

        return cluster_index(self, by=by, threshold=threshold, refiner=refiner)

    def clusters(self, *, by: str = "image"):
        """The stored clusters (last batch run plus online assignments since)."""
        from lookalike.cluster.engine import stored_clusters

        return stored_clusters(self, by=by)

    def rename_cluster(self, cluster_id: int, name: str, *, by: str = "face") -> None:
        """Name a cluster (empty name: forget it). Names belong to the id, which re-clustering keeps."""
        from lookalike.cluster.engine import check_by

        check_by(by)
        key = f"cluster-name:{by}:{int(cluster_id)}"
        with self.catalog.transaction():
            if name:
                self.catalog.set_meta(key, name)
            else:
                self.catalog.db.execute("DELETE FROM meta WHERE key=?", (key,))

    def merge_clusters(self, ids: Sequence[int], *, by: str) -> int:
        """Merge stored clusters into the oldest (smallest) id, returned; the others disappear. The name is
        the target's, else the first named one's. A later batch `cluster` run keeps the merge (cluster/edit.py)."""
        from lookalike.cluster.edit import merge_clusters

        return merge_clusters(self, ids, by=by)

    def split_cluster(self, cluster_id: int, members: Sequence[tuple[str, int]] | Sequence[str], *, by: str) -> int:
        """Move members (paths, or (path, face) for faces) of a stored cluster into a new cluster; returns its
        id (never used before). A later batch `cluster` run keeps the split (cluster/edit.py)."""
        from lookalike.cluster.edit import split_cluster

        return split_cluster(self, cluster_id, members, by=by)

    def cluster_names(self, *, by: str = "face") -> dict[int, str]:
        prefix = f"cluster-name:{by}:"
        return {int(k[len(prefix):]): v for k, v in self.catalog.db.execute(
            "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix))}

    def train_refiner(self, labels_csv: str | os.PathLike, *, by: str = "face", column: str | None = None,
                      epochs: int = 400):
        """Train the learned (GCN) cluster refiner from a CSV of labelled groups (path,label)."""
        from lookalike.cluster.engine import read_labels, train_refiner

        return train_refiner(self, read_labels(labels_csv, column=column), by=by, epochs=epochs)

    def errors(self) -> list[tuple[str, str]]:
        return self.catalog.errors()

    def file_info(self, path: str | os.PathLike) -> dict:
        """What the index and the file's EXIF say about one file (date, camera, GPS)."""
        from lookalike.imageio.exif import exif_summary

        row = self.catalog.file(path) or self.catalog.blob(os.fspath(path))
        out: dict = {"path": os.fspath(path), "indexed": row is not None}
        if row is not None:
            out.update(path=row.path, key=self.catalog.keys([row.id])[row.id], status=row.status, reason=row.reason,
                       width=row.width, height=row.height, format=row.format, bytes=row.size, sha256=row.sha256,
                       features=sorted(self.catalog.feature_versions(row.id)))
        elif not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no such file, and not in the index")
        out.update(exif_summary(path) if os.path.exists(path) else {"date": None, "camera": None, "gps": None})
        return out

    def info(self) -> dict:
        counts = self.catalog.counts()
        feats = dict(self.catalog.db.execute("SELECT name, COUNT(*) FROM features GROUP BY name"))
        return {"index": str(self.dir), "files_ok": counts.get("ok", 0), "files_error": counts.get("error", 0),
                "features": feats, "modes": list(MODES), "vectors": self.vector_store}

    # -- helpers for modes --------------------------------------------------------------------
    def cached(self, key: str, features: Sequence[str], build: Callable[[], object]):
        """An in-memory structure built from stored features, rebuilt when those features change."""
        stamp = tuple(self.catalog.stamp(f) for f in features)
        hit = self._cache.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
        value = build()
        self._cache[key] = (stamp, value)
        return value

    @property
    def vector_store(self) -> str:
        """Where float vectors are searched: 'faiss' (files in the index folder, the default),
        'milvus:FILE.db' (milvus-lite) or 'milvus://HOST:PORT'. Kept in the catalog's settings."""
        return self.catalog.get_meta("vectors") or "faiss"

    def use_vectors(self, store: str) -> dict[str, int]:
        """Choose the vector store and move this index's vectors there now, from the catalog's stored
        features (nothing is re-extracted). Returns {feature: vectors in the new store}."""
        from lookalike.store.vectors import VECTOR_FEATURES, check_store

        try:
            check_store(store)
        except ValueError as e:
            raise BadInput(str(e)) from None
        have = dict(self.catalog.db.execute("SELECT name, COUNT(*) FROM features GROUP BY name"))
        moved = {n: self.vectors(n, store=store).ntotal for n in VECTOR_FEATURES if have.get(n)}
        self.catalog.set_meta("vectors", store)  # only once the new store holds everything
        return moved

    def vectors(self, name: str, *, store: str | None = None):
        """The vector index of float feature `name` in the chosen store, rebuilt from the catalog when stale."""
        from lookalike.store.vectors import open_store

        ex = registry.get(name)
        store = store or self.vector_store

        def build():
            def loader():
                rows = list(self.catalog.iter_feature(name, ex.version))
                ids = np.array([r[0] for r in rows], dtype=np.int64)
                X = np.stack([ex.decode(r[1]) for r in rows]) if rows else np.zeros((0, ex.dim), np.float32)
                return ids, X

            return open_store(store, self.dir, name, stamp=self.catalog.stamp(name), index_id=self._index_id(),
                              loader=loader, dim=ex.dim)

        return self.cached(f"vectors:{store}:{name}", [name], build)

    def _index_id(self) -> str:
        """A random id naming this index's collections on a shared Milvus server."""
        iid = self.catalog.get_meta("index_id")
        if not iid:
            import uuid

            iid = uuid.uuid4().hex[:12]
            self.catalog.set_meta("index_id", iid)
        return iid

    def feature_values(self, ids: Sequence[int], name: str) -> dict[int, object]:
        """Feature `name` of these files, computing (and storing) it for files that lack it."""
        ex = registry.get(name)
        rows = {fid: blob for fid, blob in self.catalog.features_by_ids(ids, name, ex.version)}
        missing = [i for i in ids if i not in rows]
        if missing:
            from lookalike.ingest import compute_for

            compute_for(self.catalog, missing, [name])
            rows.update(self.catalog.features_by_ids(missing, name, ex.version))
        return {fid: ex.decode(blob) for fid, blob in rows.items()}

    def _bar(self, title: str):
        return self.progress(title) if self.progress else None


def _check_score(value: float, name: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (scores are similarities), not {value}")
    return value


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
