"""Float vector index on Milvus (pymilvus): a milvus-lite file (no server) or a Milvus server by URI.

Same contract as `FaissVectorIndex` (store/vectors.py: ids chosen by the caller, inner product on
L2-normalised vectors, top-k with -inf/-1 padding, range search, kNN graph), so every mode and the
clustering run unchanged on either. One collection per float feature: int64 primary key `id` (the
catalog's file id) and a FLOAT_VECTOR `v`.

Traps, measured (benchmarks/bench_vectors.py --lite-types, README "Scale: Milvus and Ray"):
- milvus-lite 3.x is pure Python (an in-process gRPC server over parquet segments), not Milvus.
  It has no binary vectors: perceptual hashes stay in store/hamming.py (exact).
- Whatever the index type, every search call first walks every stored row in Python (primary-key
  dedup and delete masks, ~5-15 us a row): a search costs O(n) before any index is touched, so
  lite is brute force in effect. The index is only built when a collection is loaded: segments
  flushed after that are brute-force (NumPy) until the next load. FLAT is NumPy brute force;
  AUTOINDEX is faiss HNSW; IVF_PQ, DISKANN, SCANN are accepted at create time and fail later.
  Hence FLAT on lite (exact, nothing to build: an HNSW load took 87-106 s for 20 k x 256-d here and
  queries still cost 69-92 ms, the walk) and large query batches (the walk is paid once per call).
- A lite file is a folder locked by one process at a time: a second process gets a clear error.
On a Milvus server the index is HNSW (M 16, efConstruction 128, ef 128): built by the server as
segments seal, no Python walk; see docs/scale.md for sizes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from lookalike.store.vectors import IndexDamaged, _ids, _vectors

__all__ = ["MilvusVectorIndex", "client", "parse_uri", "DEFAULT_INDEX"]

# index type per kind of store (see the module docstring for why FLAT on lite)
DEFAULT_INDEX = {"lite": ("FLAT", {}), "server": ("HNSW", {"M": 16, "efConstruction": 128})}
SEARCH_EF = 128  # HNSW search breadth: recall@10 >= 0.99 on bench_vectors' clustered data
_INSERT_BYTES = 16 << 20  # rows per insert call: well under gRPC's 64 MB message limit
_QUERY_BATCH = 1024  # queries per search call: lite pays an O(n) Python walk per call
_MAX_LIMIT = 16384  # Milvus caps top-k (and range-search limits) at 16384

_clients: dict[str, object] = {}


def parse_uri(spec: str, index_dir: Path | None = None) -> str:
    """'milvus:FILE.db' -> absolute lite path; 'milvus://HOST:PORT' -> http://HOST:PORT; 'milvus' ->
    vectors.db in the index folder. Raises ValueError for anything else."""
    if spec.startswith("milvus://"):
        host = spec[len("milvus://"):].strip("/")
        if not re.fullmatch(r"[\w.\-]+(:\d+)?", host):
            raise ValueError(f"bad Milvus server address {spec!r}: expected milvus://HOST:PORT")
        return f"http://{host if ':' in host else host + ':19530'}"
    if spec == "milvus" or spec == "milvus:":
        if index_dir is None:
            raise ValueError("'milvus' needs an index folder for its vectors.db")
        return str(Path(index_dir).resolve() / "vectors.db")
    if spec.startswith("milvus:"):
        path = spec[len("milvus:"):]
        if not path.endswith(".db"):
            raise ValueError(f"a milvus-lite file must end in .db, got {path!r}")
        return str(Path(path).resolve())
    raise ValueError(f"unknown vector store {spec!r}: use faiss, milvus:FILE.db or milvus://HOST:PORT")


def is_lite(uri: str) -> bool:
    return not uri.startswith("http")


def client(uri: str):
    """One MilvusClient per URI per process (a lite file starts its in-process server once)."""
    if uri not in _clients:
        import logging

        from pymilvus import MilvusClient

        # pymilvus and milvus-lite log failures at ERROR with a traceback; our callers report them in one line
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
        try:
            # lite's in-process gRPC server keeps gRPC's default 5-minute minimum ping interval: the
            # client's 10 s keepalive pings earn "GOAWAY too_many_pings" lines on stderr in long runs
            opts = {"grpc_options": {"grpc.keepalive_time_ms": 600_000}} if is_lite(uri) else {}
            _clients[uri] = MilvusClient(uri, **opts)
        except Exception as e:
            msg = str(e)
            if is_lite(uri) and "Open local milvus failed" in msg:
                msg = "the milvus-lite file is open in another process (one process at a time) or unreadable"
            raise IndexDamaged(f"cannot open Milvus at {uri}: {msg}") from None
    return _clients[uri]


class MilvusVectorIndex:
    """A Milvus collection holding one float feature's vectors under the catalog's file ids."""

    def __init__(self, dim: int, uri: str, collection: str, *, index_type: str | None = None,
                 index_params: dict | None = None, create: bool = True):
        self.dim, self.uri, self.collection = dim, uri, collection
        kind = "lite" if is_lite(uri) else "server"
        default_type, default_params = DEFAULT_INDEX[kind]
        self.index_type = index_type or default_type
        self.index_params = index_params if index_params is not None else default_params
        self.kind = f"milvus-{kind}-{self.index_type.lower()}"
        self._c = client(uri)
        if create and not self._c.has_collection(collection):
            self._create()

    def _create(self) -> None:
        from pymilvus import DataType

        schema = self._c.create_schema(auto_id=False, description="lookalike vectors")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=self.dim)
        ip = self._c.prepare_index_params()
        ip.add_index("v", index_type=self.index_type, metric_type="IP", params=self.index_params)
        self._c.create_collection(self.collection, schema=schema, index_params=ip, consistency_level="Strong")

    def drop(self) -> None:
        if self._c.has_collection(self.collection):
            self._c.drop_collection(self.collection)

    # -- state -----------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        r = self._c.query(self.collection, filter="", output_fields=["count(*)"])
        return int(r[0]["count(*)"])

    def ids(self) -> np.ndarray:
        """All ids, ascending (the row order of `knn_graph`)."""
        return np.sort(np.concatenate([i for i, _ in self._blocks(vectors=False)] or [np.zeros(0, np.int64)]))

    def _blocks(self, *, vectors: bool = True, batch: int = 4096):
        """Yield (ids, float32 vectors or None) blocks covering the whole collection."""
        it = self._c.query_iterator(self.collection, batch_size=batch, filter="",
                                    output_fields=["id", "v"] if vectors else ["id"])
        try:
            while rows := it.next():
                ids = np.fromiter((r["id"] for r in rows), np.int64, len(rows))
                X = np.array([r["v"] for r in rows], np.float32).reshape(len(rows), self.dim) if vectors else None
                yield ids, X
        finally:
            it.close()

    def vectors_of(self, ids) -> dict[int, np.ndarray]:
        ids = _ids(ids)
        rows = self._c.get(self.collection, ids=ids.tolist(), output_fields=["id", "v"]) if len(ids) else []
        return {int(r["id"]): np.asarray(r["v"], np.float32) for r in rows}

    # -- changes ---------------------------------------------------------------------------

    def add(self, ids, X) -> None:
        """Add vectors under new ids (remove an id first to replace its vector). insert, not upsert:
        an upsert is a delete + insert, and lite checks every tombstone on every search."""
        ids, X = _ids(ids), _vectors(X, self.dim)
        if len(ids) != len(X):
            raise ValueError(f"{len(ids)} ids for {len(X)} vectors")
        step = max(1, _INSERT_BYTES // (4 * self.dim))
        for s in range(0, len(ids), step):
            rows = [{"id": int(i), "v": x} for i, x in zip(ids[s : s + step], X[s : s + step])]
            self._c.insert(self.collection, rows)
        if len(ids):
            self._c.flush(self.collection)  # out of the memtable (always brute force) into indexed segments

    def remove(self, ids) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        ids = _ids(ids)
        if len(ids) == 0:
            return 0
        present = [r["id"] for r in self._c.get(self.collection, ids=ids.tolist(), output_fields=["id"])]
        if present:
            self._c.delete(self.collection, ids=present)
        return len(present)

    # -- queries ---------------------------------------------------------------------------

    def _search(self, Q: np.ndarray, limit: int, params: dict):
        for s in range(0, len(Q), _QUERY_BATCH):
            yield from self._c.search(self.collection, Q[s : s + _QUERY_BATCH], limit=limit, anns_field="v",
                                      output_fields=["id"], search_params={"metric_type": "IP", "params": params})

    def _params(self, k: int) -> dict:
        t = self.index_type.upper()
        return {"ef": max(SEARCH_EF, k)} if t.startswith("HNSW") or t == "AUTOINDEX" else {"nprobe": 32}

    def search(self, Q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (sims float32 (nq, k), ids int64 (nq, k)); missing slots: -inf, -1."""
        Q = _vectors(Q, self.dim)
        k = max(k, 0)
        sims = np.full((len(Q), k), -np.inf, np.float32)
        ids = np.full((len(Q), k), -1, np.int64)
        if k == 0 or len(Q) == 0:
            return sims, ids
        for row, hits in enumerate(self._search(Q, min(k, _MAX_LIMIT), self._params(k))):
            for col, h in enumerate(hits):
                sims[row, col], ids[row, col] = h["distance"], h["id"]
        return sims, ids

    def range_search(self, Q, threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (ids, sims) of every vector with sim >= threshold, best first. Milvus range
        search needs a limit: it is doubled until a query's results stop filling it."""
        Q = _vectors(Q, self.dim)
        out = []
        for q in Q:
            limit = 64
            while True:
                sims, ids = self.search(q[None], limit)
                keep = sims[0] >= np.float32(threshold)
                if keep.all() and ids[0, -1] >= 0 and limit < min(_MAX_LIMIT, self.ntotal):
                    limit = min(_MAX_LIMIT, 4 * limit)
                    continue
                out.append((ids[0][keep], sims[0][keep]))
                break
        return out

    def knn_graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest other vectors of every vector: (sims, ids), (n, k), rows in `ids()` order."""
        rows, sims, nbrs = [], [], []
        for ids, X in self._blocks():
            D, I = self.search(X, k + 1)
            is_self = I == ids[:, None]
            drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
            keep = np.ones_like(I, dtype=bool)
            keep[np.arange(len(I)), drop] = False
            sims.append(D[keep].reshape(-1, k)), nbrs.append(I[keep].reshape(-1, k))
            rows.append(ids)
        if not rows:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        order = np.argsort(np.concatenate(rows), kind="stable")
        return np.concatenate(sims)[order], np.concatenate(nbrs)[order]

    # -- files -----------------------------------------------------------------------------

    def save(self, path, *, stamp: str | None = None) -> None:
        """Milvus persists its own data; `path` gets a small json that ties it to a catalog state."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        meta = {"uri": self.uri, "collection": self.collection, "dim": self.dim, "index_type": self.index_type,
                "index_params": self.index_params, "count": self.ntotal, "stamp": stamp}
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "MilvusVectorIndex":
        meta = read_meta(path)
        self = cls(meta["dim"], meta["uri"], meta["collection"], index_type=meta["index_type"],
                   index_params=meta["index_params"], create=False)
        if not self._c.has_collection(self.collection):
            raise IndexDamaged(f"{path}: Milvus collection {self.collection} is missing; rebuilding it")
        self._c.load_collection(self.collection)  # a reopened collection starts released
        if self.ntotal != meta["count"]:
            raise IndexDamaged(f"{path}: Milvus collection {self.collection} is missing or changed; rebuilding it")
        return self


def read_meta(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise IndexDamaged(f"{path}: missing") from None
    except (ValueError, OSError) as e:
        raise IndexDamaged(f"{path}: damaged ({e})") from None
