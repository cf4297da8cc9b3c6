"""Exact Hamming-distance index for binary codes (aHash/dHash/pHash/wHash, PDQ).

Codes are uint8 arrays of shape (n, nbytes). Small jobs go to faiss' brute-force
``IndexBinaryFlat``; large radius joins (dedup over a whole collection, many queries at
once) use multi-index hashing: the code is cut into m substrings and, by the pigeonhole
principle, two codes within distance r must have some substring i within r_i of each
other whenever sum(r_i + 1) >= r + 1. Candidates from that probe are verified on the full
code, so results are exact. Each substring table is a counting sort of the keys; probes
walk the queries in key order so the table lookups stay cache friendly.

faiss' own IndexBinaryMultiHash is exact too but measured 8x-50x slower here (hash maps and
a per-query candidate set), hence this numpy version.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["HammingIndex", "hamming_distances"]

_MAX_KEY_BITS = 22  # 2**22-entry tables: at 24 bits, 1 M x 256-bit peaked at 983 MB RSS
_BATCH = 1 << 21  # candidate pairs verified at a time: bounds memory on skewed data


def _as_codes(codes, nbytes: int) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes.reshape(1, -1)
    if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != nbytes:
        raise ValueError(
            f"codes must be a uint8 array of shape (n, {nbytes}), got {codes.dtype} {codes.shape}: "
            "pack bits with np.packbits(..., axis=1)"
        )
    return np.ascontiguousarray(codes)


def _words(codes: np.ndarray) -> np.ndarray:
    """(n, nbytes) uint8 -> (n, ceil(nbytes/8)) big-endian uint64 (zero padded: distances unchanged)."""
    n, nb = codes.shape
    nw = -(-nb // 8)
    if nb != nw * 8:
        codes = np.concatenate([codes, np.zeros((n, nw * 8 - nb), np.uint8)], axis=1)
    return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance between two (n, nwords) uint64 arrays."""
    return np.bitwise_count(a ^ b).sum(axis=1, dtype=np.int32)


@dataclass(frozen=True)
class _Chunk:
    start: int  # first bit, counted from the most significant bit of the code
    bits: int

    def keys(self, words: np.ndarray) -> np.ndarray:
        word, offset = divmod(self.start, 64)
        head = min(self.bits, 64 - offset)  # bits taken from this word; the rest from the next
        key = (words[:, word] >> np.uint64(64 - offset - head)) & np.uint64((1 << head) - 1)
        if head < self.bits:
            tail = self.bits - head
            key = (key << np.uint64(tail)) | (words[:, word + 1] >> np.uint64(64 - tail))
        return key.astype(np.uint32)


def _ball(bits: int, radius: int) -> list[int]:
    """All bit patterns of popcount <= radius on `bits` bits, 0 first."""
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in c) for c in itertools.combinations(range(bits), r)]
    return out


def _ball_size(bits: int, radius: int) -> int:
    return sum(math.comb(bits, r) for r in range(radius + 1))


def _plan(nwords: int, n_index: int, n_query: int, radius: int, *, force: bool = False):
    """Pick substrings + radii minimising a rough cost model (ns), or None for brute force.

    Substrings may straddle 64-bit words. Constants measured on a 2-core x86 box: a probe
    costs ~6 ns per query, a verified candidate ~25 ns, brute force ~0.4 ns per code word
    compared (faiss, popcount).
    """
    best, best_cost = None, math.inf if force else 0.4 * nwords * n_index * n_query
    nbits = 64 * nwords
    for m in range(max(1, -(-nbits // _MAX_KEY_BITS)), min(nbits, radius + 1) + 1):
        sizes = [nbits // m + (1 if i < nbits % m else 0) for i in range(m)]
        chunks, start = [], 0
        for size in sizes:
            chunks.append(_Chunk(start, size))
            start += size
        # radius units: sum(r_i + 1) = radius + 1; bigger chunks take the extra units
        units = [(radius + 1) // m] * m
        for i in sorted(range(m), key=lambda i: -chunks[i].bits)[: (radius + 1) % m]:
            units[i] += 1
        used = [(c, u - 1) for c, u in zip(chunks, units) if u > 0]
        cost = 0.0
        for c, r in used:
            probes = _ball_size(c.bits, r)
            cost += n_query * probes * (6 + 25 * n_index / 2**c.bits) + 3 * 2**c.bits + 60 * n_index
        if cost < best_cost:
            best, best_cost = used, cost
    return best


class HammingIndex:
    """Exact Hamming index over `nbits`-bit codes with int64 ids."""

    def __init__(self, nbits: int, *, threads: int | None = None):
        if nbits <= 0 or nbits % 8:
            raise ValueError(f"nbits must be a positive multiple of 8, got {nbits}")
        self.nbits = nbits
        self.nbytes = nbits // 8
        self.threads = threads or min(os.cpu_count() or 1, 8)
        self._codes = np.zeros((0, self.nbytes), np.uint8)
        self._ids = np.zeros(0, np.int64)
        self._flat = None  # faiss IndexBinaryFlat, built on first brute-force use

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def add(self, ids, codes) -> None:
        codes = _as_codes(codes, self.nbytes)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(codes):
            raise ValueError(f"{len(ids)} ids for {len(codes)} codes")
        self._codes = np.concatenate([self._codes, codes]) if self.ntotal else codes.copy()
        self._ids = np.concatenate([self._ids, ids])
        self._flat = None

    def _faiss(self):
        if self._flat is None:
            import faiss

            self._flat = faiss.IndexBinaryFlat(self.nbits)
            self._flat.add(self._codes)
        return self._flat

    def search(self, codes, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest codes per query: (dists int32 (nq, k), ids int64 (nq, k)); -1 ids pad."""
        codes = _as_codes(codes, self.nbytes)
        if self.ntotal == 0:
            return np.full((len(codes), k), self.nbits + 1, np.int32), np.full((len(codes), k), -1, np.int64)
        D, I = self._faiss().search(codes, k)
        ids = np.where(I >= 0, self._ids[np.maximum(I, 0)], -1)
        return D.astype(np.int32), ids

    def range_search(self, codes, radius: int, *, method: str = "auto") -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (ids, dists) of every indexed code within `radius` (inclusive), nearest first.

        method: "auto" (cost model), "flat" (faiss brute force) or "mih" (multi-index hashing).
        For very many queries prefer `range_pairs` (flat arrays, no per-query Python objects).
        """
        q, ids, d = self.range_pairs(codes, radius, method=method)
        bounds = np.searchsorted(q, np.arange(len(_as_codes(codes, self.nbytes)) + 1))
        return [(ids[a:b], d[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def range_pairs(self, codes, radius: int, *, method: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query row, id, dist) within `radius`, sorted by query row then distance."""
        codes = _as_codes(codes, self.nbytes)
        parts = []
        step = max(self.ntotal, 1 << 18)  # query batches bound the per-substring key arrays
        for s in range(0, len(codes), step):
            q, x, d = self._join(_words(codes[s : s + step]), radius, self_join=False, method=method)
            parts.append((q + s, x, d))
        q, x, d = (np.concatenate(p) for p in zip(*parts)) if parts else self._join(_words(codes), 0, self_join=False, method="flat")
        order = np.lexsort((d, q))
        return q[order], self._ids[x[order]], d[order]

    def pairs_within(self, radius: int, *, method: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every pair of indexed codes within `radius`: (i_ids, j_ids, dists) with i_id < j_id.

        Streams candidates in batches, so memory is the codes, one substring table and the output.
        """
        a, b, d = self._join(_words(self._codes), radius, self_join=True, method=method)
        i, j = self._ids[a], self._ids[b]
        return np.minimum(i, j), np.maximum(i, j), d

    # -- internals ---------------------------------------------------------------------

    def _join(self, qwords: np.ndarray, radius: int, *, self_join: bool, method: str):
        """(query rows, index rows, dists) of all pairs within radius; rows are positions."""
        if method not in ("auto", "flat", "mih"):
            raise ValueError(f"method must be 'auto', 'flat' or 'mih', got {method!r}")
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
        if self.ntotal == 0 or len(qwords) == 0 or radius < 0:
            return empty
        plan = None if method == "flat" else _plan(qwords.shape[1], self.ntotal, len(qwords), radius,
                                                   force=method == "mih")
        if plan is None:
            return self._brute(qwords, radius, self_join)
        xwords = qwords if self_join else _words(self._codes)
        return self._mih(plan, qwords, xwords, radius, self_join)

    def _brute(self, qwords, radius, self_join):
        index = self._faiss()
        qcodes = qwords.astype(">u8").view(np.uint8)[:, : self.nbytes]
        qs, xs, ds = [], [], []
        step = max(1, (1 << 24) // max(1, self.ntotal))
        for s in range(0, len(qcodes), step):
            lims, D, I = index.range_search(np.ascontiguousarray(qcodes[s : s + step]), radius + 1)  # faiss: d < r
            q = np.repeat(np.arange(s, s + len(lims) - 1), np.diff(lims).astype(np.int64))
            if self_join:
                keep = I > q
                q, I, D = q[keep], I[keep], D[keep]
            qs.append(q), xs.append(I.astype(np.int64)), ds.append(D.astype(np.int32))
        return np.concatenate(qs), np.concatenate(xs), np.concatenate(ds)

    def _mih(self, plan, qwords, xwords, radius, self_join):
        qkeys = [c.keys(qwords) for c, _ in plan]
        xkeys = qkeys if self_join else [c.keys(xwords) for c, _ in plan]
        out = []
        for ci, (chunk, r) in enumerate(plan):
            # counting sort of the index keys: sorted rows with key k are start[k]:start[k+1]
            counts = np.bincount(xkeys[ci], minlength=1 << chunk.bits)
            start = np.zeros(len(counts) + 1, np.int32 if len(xkeys[ci]) < 2**31 else np.int64)
            np.cumsum(counts, out=start[1:])
            counts = counts.astype(np.int32)
            xorder = np.argsort(xkeys[ci], kind="stable")
            qorder = xorder if self_join else np.argsort(qkeys[ci], kind="stable")
            qsorted = qkeys[ci][qorder]
            # words in key order: probes then read both sides almost sequentially
            xw = xwords[xorder]
            qw = xw if self_join else qwords[qorder]
            # self join, pattern p != 0: a pair is found from both ends; keep it from the end
            # whose key has p's top bit clear, so only those keys need probing
            half = {}
            if self_join:
                for bit in range(chunk.bits):
                    pos = np.flatnonzero((qsorted >> np.uint32(bit)) & np.uint32(1) == 0).astype(np.int32)
                    half[bit] = (pos, qsorted[pos])

            def probe(patterns, ci=ci, counts=counts, start=start, xorder=xorder, qorder=qorder,
                      qsorted=qsorted, xw=xw, qw=qw, half=half):
                found = []
                for p in patterns:
                    if self_join and p:
                        pos, keys = half[p.bit_length() - 1]
                    else:
                        pos, keys = None, qsorted
                    target = keys ^ np.uint32(p)
                    cnt = counts[target]
                    t = np.flatnonzero(cnt)
                    lo = start[target[t]]
                    cnt = cnt[t].astype(np.int64)
                    if pos is not None:
                        t = pos[t]
                    if self_join and not p:
                        # same bucket, same sorted order: pair a position only with later ones
                        cnt = lo + cnt - t - 1
                        lo = t + 1
                        keep = cnt > 0
                        t, lo, cnt = t[keep], lo[keep], cnt[keep]
                    for s, e in _batches(cnt):
                        qi = np.repeat(t[s:e], cnt[s:e])
                        xi = _ranges(lo[s:e], cnt[s:e])
                        d = hamming_distances(qw[qi], xw[xi])
                        keep = d <= radius
                        found.append(self._first_chunk_only(qorder[qi[keep]], xorder[xi[keep]], d[keep],
                                                            plan[:ci], qkeys, xkeys))
                return found

            patterns = _ball(chunk.bits, r)
            groups = [patterns[i :: self.threads] for i in range(self.threads)]
            with ThreadPoolExecutor(self.threads) as pool:
                for found in pool.map(probe, groups):
                    out += found
            del xw, qw, half
        if not out:
            return (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int32))
        q, x, d = (np.concatenate(parts) for parts in zip(*out))
        return q, x, d

    @staticmethod
    def _first_chunk_only(q, x, d, earlier, qkeys, xkeys):
        """A pair near in several substrings is reported by the first of them only."""
        for i, (_, r) in enumerate(earlier):
            keep = np.bitwise_count(qkeys[i][q] ^ xkeys[i][x]) > r
            q, x, d = q[keep], x[keep], d[keep]
        return q.astype(np.int64), x.astype(np.int64), d


def _batches(cnt: np.ndarray):
    """Split rows so each slice expands to about _BATCH candidate pairs."""
    if len(cnt) == 0:
        return
    cum = np.cumsum(cnt)
    cuts = np.searchsorted(cum, np.arange(_BATCH, cum[-1], _BATCH), side="right")
    edges = np.unique(np.concatenate([[0], cuts, [len(cnt)]]))
    yield from zip(edges[:-1], edges[1:])


def _ranges(lo: np.ndarray, cnt: np.ndarray) -> np.ndarray:
    """Concatenation of arange(lo[i], lo[i] + cnt[i])."""
    total = int(cnt.sum())
    offsets = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
    return np.arange(total, dtype=np.int64) + offsets
