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

import numpy as np
from pathlib import Path
from typing import Callable, Iterable, Sequence

from lookalike import config
from lookalike.errors import BadInput
from lookalike.features import registry
from lookalike.imageio import Decoded, decode_bytes, read_bytes
from lookalike.ingest import AddReport, compute_missing, index_blobs, index_files
from lookalike.search.modes import MODES, Query, get_mode
from lookalike.search.results import DedupResult, Match, Pair, QueryResult, groups_from_pairs
from lookalike.store.catalog import Catalog

Progress = Callable[[str], Callable[[int, int], None]] | None

# Features computed by a plain `index` run: cheap hashes always; deep features join as modes need them.
DEFAULT_FEATURES = ["ahash", "dhash", "whash", "phash8", "pdq8", "colorhist", "fingerprint"]


def default_features() -> list[str]:
    """Hashes always; the CNN descriptor too once its model is prepared (copy and similar modes use it)."""
    from lookalike import models

    return DEFAULT_FEATURES + (["cnn"] if models.is_prepared("efficientnet-lite0") else [])


class Index:
    def __init__(self, directory: str | os.PathLike | None = None, *, progress: Progress = None):
        self.dir = config.index_dir(directory)
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
            engine: str = "local", ray_address: str | None = None) -> AddReport:
        """Index files and folders incrementally (unchanged files are skipped). New files join the
        clusters online for every `by` in `cluster` and every `by` clustered before in this index.
        defaults=False computes only `features` now (e.g. hashes alone: modes add theirs when used).
        engine="ray" extracts on Ray (a local one, or the cluster at `ray_address`)."""
        from lookalike.cluster.engine import online_kinds, update_online

        feats = list(dict.fromkeys(list(features or []) + (default_features() if defaults else [])))
        report = index_files(self.catalog, paths, feats, workers=workers, progress=self._bar("Indexing"),
                             skip_dir=self.dir, engine=engine, ray_address=ray_address)
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

    def remove(self, paths: Iterable[str]) -> int:
        return self.catalog.remove(paths)

    # -- querying -----------------------------------------------------------------------------
    def search(self, queries: Iterable[str | os.PathLike], *, mode: str = "copy", k: int = 10,
               min_score: float = 0.5) -> list[QueryResult]:
        m = get_mode(mode)
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
            out.append(QueryResult(key, [Match(paths[h[0]], h[1], h[2], h[3]) for h in hits]))
        return out

    def make_query(self, key: str, data: bytes, features: Sequence[str]) -> Query:
        img = decode_bytes(data)
        return Query(key, img.sha256, img.pixel_digest, self.compute(img, features), img.rgb,
                     (img.width, img.height))

    @staticmethod
    def compute(img: Decoded, features: Sequence[str]) -> dict:
        return {n: registry.get(n).compute(img) for n in features}

    def dedup(self, *, mode: str = "copy", threshold: float | None = None) -> DedupResult:
        m = get_mode(mode)
        self.ensure(m.features)
        t = m.threshold if threshold is None else threshold
        hits = [h for h in m.pairs(self, t) if h[2] >= t]
        paths = self.catalog.paths({i for h in hits for i in h[:2]})
        pairs = [Pair(*sorted((paths[a], paths[b])), s, meth, det) for a, b, s, meth, det in hits]
        pairs.sort(key=lambda p: (-p.score, p.a, p.b))
        return DedupResult(mode, t, pairs, groups_from_pairs(pairs))

    # -- clustering (lookalike.cluster) ----------------------------------------------------------
    def cluster(self, *, by: str = "image", threshold: float | None = None, refiner: str | None = None):
        """Cluster every file (or face) by image, background or face; ids stay stable across runs."""
        from lookalike.cluster.engine import cluster_index

        return cluster_index(self, by=by, threshold=threshold, refiner=refiner)

    def clusters(self, *, by: str = "image"):
        """The stored clusters (last batch run plus online assignments since)."""
        from lookalike.cluster.engine import stored_clusters

        return stored_clusters(self, by=by)

    def train_refiner(self, labels_csv: str | os.PathLike, *, by: str = "face", column: str | None = None,
                      epochs: int = 400):
        """Train the learned (GCN) cluster refiner from a CSV of labelled groups (path,label)."""
        from lookalike.cluster.engine import read_labels, train_refiner

        return train_refiner(self, read_labels(labels_csv, column=column), by=by, epochs=epochs)

    def errors(self) -> list[tuple[str, str]]:
        return self.catalog.errors()

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
