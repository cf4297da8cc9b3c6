"""Float vector indexes (L2-normalised descriptors, inner product = cosine) on faiss.

`FaissVectorIndex` is exact (IndexFlatIP in IndexIDMap2) while small and switches to an
inverted file with float16 codes (IndexIVFScalarQuantizer, QT_fp16, no residuals) past
`exact_max` vectors. IVF-fp16 rather than HNSW because it supports removal, builds in
seconds instead of minutes on 2 cores, and at 2 bytes/dim keeps 1 M x 256-d in ~0.5 GB;
search inside the probed lists is exact up to fp16 rounding.

Files are one blob written atomically: [faiss index][json meta][meta length][magic]. The
meta carries a CRC of the index bytes, so a truncated or damaged file is detected and
`open_or_rebuild` rebuilds it from the catalog.
"""

from __future__ import annotations

import json
import math
import os
import struct
import threading
import zlib
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

__all__ = ["VectorIndex", "FaissVectorIndex", "open_or_rebuild", "IndexDamaged"]

_MAGIC = b"LKVIDX01"
EXACT_MAX = 50_000  # measured: flat top-10 of one 256-d query ~20 ms at 50 k on a busy 2-core box
_BATCH = 4096  # query rows per faiss call in bulk jobs: bounds the (batch x k) buffers


class IndexDamaged(Exception):
    """The saved index is missing, truncated or corrupt: rebuild it from the catalog."""


@runtime_checkable
class VectorIndex(Protocol):
    """What search, dedup and clustering need from a vector index backend."""

    dim: int

    @property
    def ntotal(self) -> int: ...

    def add(self, ids, X) -> None: ...

    def remove(self, ids) -> int: ...

    def search(self, Q, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def range_search(self, Q, threshold: float) -> list[tuple[np.ndarray, np.ndarray]]: ...

    def knn_graph(self, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, path) -> None: ...


_MAX_THREADS = 0


def _faiss():
    global _MAX_THREADS
    import faiss

    if not _MAX_THREADS:
        _MAX_THREADS = faiss.omp_get_max_threads()
        # Batches of >= 8 queries (one image and its 8 dihedral variants) go through one
        # BLAS matrix product instead of 8 passes over the data (faiss' default is 20).
        faiss.cvar.distance_compute_blas_threshold = 8
    return faiss


def _threads(faiss, nq: int, threads: int | None) -> None:
    """One OpenMP thread for small query batches: measured on a busy 2-core box, 2 threads
    made a batch of 8 queries 30x slower (spinning barriers) and single queries 2x slower."""
    faiss.omp_set_num_threads(1 if nq < 64 else (threads or _MAX_THREADS))


def _vectors(X, dim: int) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2 or X.shape[1] != dim or not np.issubdtype(X.dtype, np.floating):
        raise ValueError(f"vectors must be a float array of shape (n, {dim}), got {X.dtype} {X.shape}")
    return np.ascontiguousarray(X, dtype=np.float32)


def _ids(ids) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)


class FaissVectorIndex:
    """Exact while small, IVF-fp16 beyond `exact_max` vectors; ids are int64 chosen by the caller."""

    def __init__(self, dim: int, *, exact_max: int = EXACT_MAX, nprobe: int | None = None,
                 threads: int | None = None):
        faiss = _faiss()
        self.threads = threads
        self.dim = dim
        self.exact_max = exact_max
        self.nprobe = nprobe
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._trained_on = 0  # vectors the IVF was trained on (0: exact index)

    # -- state -----------------------------------------------------------------------------

    @property
    def ntotal(self) -> int:
        return self._index.ntotal

    @property
    def kind(self) -> str:
        return "ivf-fp16" if self._trained_on else "exact"

    def ids(self) -> np.ndarray:
        """All ids, ascending (the row order of `knn_graph`)."""
        return np.sort(np.concatenate([i for i, _ in self._blocks()] or [np.zeros(0, np.int64)]))

    def _blocks(self):
        """Yield (ids, float32 vectors) blocks covering the whole index."""
        faiss = _faiss()
        if not self._trained_on:
            ids = faiss.vector_to_array(self._index.id_map)
            flat = faiss.downcast_index(self._index.index)
            xb = faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.dim).reshape(-1, self.dim)
            for s in range(0, len(ids), _BATCH * 4):
                yield ids[s : s + _BATCH * 4].copy(), xb[s : s + _BATCH * 4].copy()
            return
        invlists = self._index.invlists
        for lno in range(self._index.nlist):
            size = invlists.list_size(lno)
            if size == 0:
                continue
            ids = faiss.rev_swig_ptr(invlists.get_ids(lno), size).copy()
            codes = faiss.rev_swig_ptr(invlists.get_codes(lno), size * self.dim * 2)
            yield ids, codes.view(np.float16).reshape(size, self.dim).astype(np.float32)

    # -- changes ---------------------------------------------------------------------------

    def add(self, ids, X) -> None:
        """Add vectors under new ids (remove an id first to replace its vector)."""
        ids, X = _ids(ids), _vectors(X, self.dim)
        if len(ids) != len(X):
            raise ValueError(f"{len(ids)} ids for {len(X)} vectors")
        if len(ids) == 0:
            return
        n = self.ntotal + len(ids)
        if (not self._trained_on and n > self.exact_max) or (self._trained_on and n > 16 * self._trained_on):
            self._rebuild_ivf(ids, X)  # coarse lists would be too few / too long: retrain
        else:
            _threads(_faiss(), len(X), self.threads)
            self._index.add_with_ids(X, ids)

    def remove(self, ids) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        faiss = _faiss()
        ids = _ids(ids)
        if len(ids) == 0 or self.ntotal == 0:
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def _rebuild_ivf(self, new_ids, new_X) -> None:
        faiss = _faiss()
        _threads(faiss, len(new_X) + self.ntotal, self.threads)
        if self.ntotal:
            blocks = list(self._blocks()) + [(new_ids, new_X)]
            ids = np.concatenate([b[0] for b in blocks])
            X = np.concatenate([b[1] for b in blocks])
            del blocks
        else:
            ids, X = new_ids, new_X
        nlist = int(min(16384, max(64, 2 * math.sqrt(len(X)))))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT, False)
        # 40 points per list is plenty for k-means and keeps training to seconds
        sample = np.random.default_rng(0).choice(len(X), min(len(X), 40 * nlist), replace=False)
        index.cp.max_points_per_centroid = 40
        index.train(X[np.sort(sample)])
        for s in range(0, len(X), 65536):
            index.add_with_ids(X[s : s + 65536], ids[s : s + 65536])
        self._index = index
        self._trained_on = len(X)
        self._set_nprobe()

    def _set_nprobe(self) -> None:
        # default measured on clustered synthetic data: recall@10 >= 0.95 (bench_vectors.py)
        self._index.nprobe = self.nprobe or max(16, self._index.nlist // 32)

    # -- queries ---------------------------------------------------------------------------

    def search(self, Q, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (sims float32 (nq, k), ids int64 (nq, k)); missing slots: -inf, -1."""
        Q = _vectors(Q, self.dim)
        if self.ntotal == 0 or k <= 0:
            return np.full((len(Q), max(k, 0)), -np.inf, np.float32), np.full((len(Q), max(k, 0)), -1, np.int64)
        _threads(_faiss(), len(Q), self.threads)
        sims, ids = self._index.search(Q, k)
        sims[ids < 0] = -np.inf
        return sims, ids

    def range_search(self, Q, threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (ids, sims) of every vector with sim >= threshold, best first."""
        Q = _vectors(Q, self.dim)
        out = []
        for s in range(0, len(Q), _BATCH):
            if self.ntotal == 0:
                out += [(np.zeros(0, np.int64), np.zeros(0, np.float32))] * len(Q[s : s + _BATCH])
                continue
            # faiss keeps sim > radius for inner product
            _threads(_faiss(), len(Q[s : s + _BATCH]), self.threads)
            lims, D, I = self._index.range_search(Q[s : s + _BATCH], float(np.nextafter(np.float32(threshold), -1)))
            for a, b in zip(lims[:-1], lims[1:]):
                order = np.argsort(-D[a:b], kind="stable")
                out.append((I[a:b][order], D[a:b][order]))
        return out

    def knn_graph(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest other vectors of every vector: (sims, ids), (n, k), rows in `ids()` order."""
        rows, sims, nbrs = [], [], []
        for ids, X in self._blocks():
            for s in range(0, len(ids), _BATCH):
                D, I = self.search(X[s : s + _BATCH], k + 1)
                own = ids[s : s + _BATCH, None]
                # drop the vector itself; if the search missed it, drop the weakest instead
                is_self = I == own
                drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
                keep = np.ones_like(I, dtype=bool)
                keep[np.arange(len(I)), drop] = False
                sims.append(D[keep].reshape(-1, k)), nbrs.append(I[keep].reshape(-1, k))
                rows.append(ids[s : s + _BATCH])
        if not rows:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        order = np.argsort(np.concatenate(rows), kind="stable")
        return np.concatenate(sims)[order], np.concatenate(nbrs)[order]

    # -- files -----------------------------------------------------------------------------

    def save(self, path, *, stamp: str | None = None) -> None:
        """Write atomically (tmp file + os.replace); `stamp` ties the file to a catalog state."""
        faiss = _faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # threads may save at once
        try:
            faiss.write_index(self._index, str(tmp))
            size, crc = _crc(tmp)
            meta = json.dumps({"dim": self.dim, "exact_max": self.exact_max, "nprobe": self.nprobe,
                               "trained_on": self._trained_on, "size": size, "crc": crc,
                               "stamp": stamp}).encode()
            with open(tmp, "ab") as f:
                f.write(meta + struct.pack("<Q", len(meta)) + _MAGIC)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path) -> "FaissVectorIndex":
        """Read a file written by `save`; raises IndexDamaged if it is missing or corrupt."""
        meta = read_meta(path)
        faiss = _faiss()
        if _crc(path, meta["size"]) != (meta["size"], meta["crc"]):
            raise IndexDamaged(f"{path}: checksum mismatch; rebuild the index from the catalog")
        self = cls(meta["dim"], exact_max=meta["exact_max"], nprobe=meta["nprobe"])
        try:
            self._index = faiss.read_index(str(path))
        except RuntimeError as e:
            raise IndexDamaged(f"{path}: {e}; rebuild the index from the catalog") from None
        self._trained_on = meta["trained_on"]
        if self._trained_on:
            self._set_nprobe()
        return self


def read_meta(path) -> dict:
    """The json trailer of a saved index (dim, stamp, ...); raises IndexDamaged."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            if end < 16:
                raise IndexDamaged(f"{path}: file too short; rebuild the index from the catalog")
            f.seek(end - 16)
            tail = f.read(16)
            if tail[8:] != _MAGIC:
                raise IndexDamaged(f"{path}: not a lookalike index or truncated; rebuild it from the catalog")
            (n,) = struct.unpack("<Q", tail[:8])
            if n > end - 16:
                raise IndexDamaged(f"{path}: damaged trailer; rebuild the index from the catalog")
            f.seek(end - 16 - n)
            meta = json.loads(f.read(n))
        if meta["size"] != end - 16 - n:
            raise IndexDamaged(f"{path}: size mismatch; rebuild the index from the catalog")
        return meta
    except FileNotFoundError:
        raise IndexDamaged(f"{path}: missing") from None
    except (ValueError, KeyError) as e:
        raise IndexDamaged(f"{path}: damaged trailer ({e}); rebuild the index from the catalog") from None


def _crc(path, size: int | None = None) -> tuple[int, int]:
    crc, done = 0, 0
    with open(path, "rb") as f:
        while size is None or done < size:
            chunk = f.read(1 << 22 if size is None else min(1 << 22, size - done))
            if not chunk:
                break
            crc, done = zlib.crc32(chunk, crc), done + len(chunk)
    return done, crc


def open_or_rebuild(path, *, stamp: str, loader: Callable[[], tuple[np.ndarray, np.ndarray]],
                    dim: int | None = None, **options) -> FaissVectorIndex:
    """Load the index at `path` if intact and saved with `stamp`, else rebuild from `loader()`.

    `loader() -> (ids, X)` reads the catalog, the source of truth. `options` go to
    FaissVectorIndex when building. The rebuilt index is saved with `stamp`.
    """
    try:
        if read_meta(path).get("stamp") == stamp:
            return FaissVectorIndex.load(path)
    except IndexDamaged:
        pass
    ids, X = loader()
    X = np.asarray(X)
    index = FaissVectorIndex(dim or X.shape[1], **options)
    index.add(ids, X)
    index.save(path, stamp=stamp)
    return index


# -- choosing the store: faiss files in the index folder, or Milvus (store/milvus.py) ---------------

VECTOR_FEATURES = ("cnn", "bg_cnn")  # the float features the modes search through `Index.vectors`


def check_store(spec: str) -> str:
    """'faiss', 'milvus', 'milvus:FILE.db' or 'milvus://HOST:PORT'; raises ValueError otherwise."""
    if spec != "faiss":
        from lookalike.store.milvus import parse_uri

        parse_uri(spec, Path("."))
    return spec


def open_store(store: str, index_dir: Path, name: str, *, stamp: str, index_id: str,
               loader: Callable[[], tuple[np.ndarray, np.ndarray]], dim: int):
    """The vector index of feature `name` in the chosen store, rebuilt from `loader()` (the catalog)
    when missing, damaged or older than `stamp`."""
    index_dir = Path(index_dir)
    if store == "faiss":
        return open_or_rebuild(index_dir / f"vectors-{name}.faiss", stamp=stamp, loader=loader, dim=dim)
    from lookalike.store.milvus import MilvusVectorIndex, parse_uri, read_meta as milvus_meta

    uri = parse_uri(store, index_dir)
    path = index_dir / f"vectors-{name}.milvus.json"
    try:
        meta = milvus_meta(path)
        if meta.get("stamp") == stamp and meta.get("uri") == uri:
            return MilvusVectorIndex.load(path)
    except IndexDamaged:
        pass
    index = MilvusVectorIndex(dim, uri, f"lookalike_{index_id}_{name}", create=False)
    index.drop()  # rebuilt whole from the catalog, as the faiss file is
    index._create()
    ids, X = loader()
    index.add(ids, np.asarray(X))
    index.save(path, stamp=stamp)
    return index
