"""Hamming and float vector indexes: exact answers on small cases, files, rebuilds, removal."""

import numpy as np
import pytest

from lookalike.store.hamming import HammingIndex
from lookalike.store.vectors import FaissVectorIndex, IndexDamaged, VectorIndex, open_or_rebuild

# -- binary codes ------------------------------------------------------------------------


def _codes(n, nbits, *, planted, radius, seed=0):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n, nbits), dtype=np.uint8)
    src = rng.choice(n // 2, planted, replace=False)
    dst = n // 2 + np.arange(planted)
    for s, t in zip(src, dst):
        bits[t] = bits[s]
        bits[t, rng.choice(nbits, rng.integers(0, radius + 3), replace=False)] ^= 1
    return np.packbits(bits, axis=1), bits


def _truth_pairs(bits, radius):
    b = bits.astype(np.int32)
    d = b @ (1 - b).T + (1 - b) @ b.T  # all pairwise Hamming distances (small n only)
    i, j = np.nonzero(np.triu(d <= radius, 1))
    return {(a, c): int(d[a, c]) for a, c in zip(i, j)}


@pytest.mark.parametrize("nbits,radius", [(64, 8), (256, 31)])
@pytest.mark.parametrize("method", ["flat", "mih"])
def test_pairs_within_exact(nbits, radius, method):
    codes, bits = _codes(1500, nbits, planted=200, radius=radius)
    ids = np.arange(1500, dtype=np.int64) * 7 + 3  # ids are not positions
    index = HammingIndex(nbits)
    index.add(ids[:700], codes[:700])
    index.add(ids[700:], codes[700:])
    assert index.ntotal == 1500
    i, j, d = index.pairs_within(radius, method=method)
    got = {(int(a), int(b)): int(c) for a, b, c in zip(i, j, d)}
    want = {(int(ids[a]), int(ids[b])): c for (a, b), c in _truth_pairs(bits, radius).items()}
    assert len(got) == len(i)  # no pair reported twice
    assert got == want and len(want) >= 150


@pytest.mark.parametrize("method", ["flat", "mih"])
def test_range_search_and_knn(method):
    codes, bits = _codes(1000, 64, planted=100, radius=8, seed=1)
    index = HammingIndex(64)
    index.add(np.arange(1000), codes)
    q = codes[500:540]
    res = index.range_search(q, 8, method=method)
    b = bits.astype(np.int32)
    d = b[500:540] @ (1 - b).T + (1 - b[500:540]) @ b.T
    for row, (ids, dists) in enumerate(res):
        assert set(ids.tolist()) == set(np.flatnonzero(d[row] <= 8).tolist())
        assert np.array_equal(dists, d[row, ids]) and np.all(np.diff(dists) >= 0)
    qr, ids, dists = index.range_pairs(q, 8, method=method)
    assert np.array_equal(ids, np.concatenate([i for i, _ in res])) and np.all(np.diff(qr) >= 0)
    D, I = index.search(q, 3)
    assert np.array_equal(D, np.sort(d, axis=1)[:, :3])
    assert np.array_equal(np.take_along_axis(d, I, 1), D)  # ids match their distances


def test_hamming_rejects_bad_codes():
    with pytest.raises(ValueError, match="uint8"):
        HammingIndex(64).add([1], np.zeros((1, 4), np.uint8))


# -- float vectors -----------------------------------------------------------------------


def _clustered(n, dim=32, *, clusters=50, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    X = centres[rng.integers(0, clusters, n)] + 0.35 * rng.normal(size=(n, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32)


def _exact_topk(X, ids, Q, k):
    S = Q @ X.T
    top = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, top, 1), ids[top]


@pytest.fixture(params=["faiss", "milvus-lite"])
def new_vectors(request, tmp_path):
    """An empty vector index of each backend: faiss (in memory) and Milvus (a milvus-lite file)."""
    if request.param == "faiss":
        return lambda dim: FaissVectorIndex(dim)
    from lookalike.store.milvus import MilvusVectorIndex

    return lambda dim: MilvusVectorIndex(dim, str(tmp_path / "v.db"), f"t{dim}")


def test_exact_search_range_knn_remove(new_vectors):
    X = _clustered(800)
    ids = np.arange(800, dtype=np.int64) * 10
    index = new_vectors(32)
    assert isinstance(index, VectorIndex)
    index.add(ids, X)
    sims, got = index.search(X[:20], 5)
    want_s, want_i = _exact_topk(X, ids, X[:20], 5)
    assert np.allclose(sims, want_s, atol=1e-5) and np.array_equal(got[:, 0], ids[:20])
    res = index.range_search(X[:5], 0.9)
    for row, (rid, rs) in enumerate(res):
        assert set(rid.tolist()) == set(ids[(X @ X[row]) >= 0.9].tolist()) and np.all(np.diff(rs) <= 0)
    gs, gi = index.knn_graph(4)
    assert gi.shape == (800, 4) and not np.any(gi == ids[:, None])
    ws, wi = _exact_topk(X, ids, X, 5)
    assert np.allclose(gs, ws[:, 1:], atol=1e-5)
    assert index.remove(ids[:100]) == 100 and index.ntotal == 700
    _, got = index.search(X[:100], 3)
    assert not np.isin(got, ids[:100]).any()


def test_switch_to_ivf_keeps_recall_and_removes():
    X = _clustered(6000, seed=2)
    ids = np.arange(6000, dtype=np.int64)
    index = FaissVectorIndex(32, exact_max=2000)
    index.add(ids[:1500], X[:1500])
    assert index.kind == "exact"
    index.add(ids[1500:], X[1500:])  # crosses exact_max: trains the IVF
    assert index.kind == "ivf-fp16" and index.ntotal == 6000
    Q = _clustered(200, seed=3)
    _, want = _exact_topk(X, ids, Q, 10)
    _, got = index.search(Q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), want.tolist())])
    assert recall >= 0.95
    assert index.remove(ids[:10]) == 10 and index.ntotal == 5990
    assert not np.isin(index.search(X[:10], 5)[1], ids[:10]).any()
    gs, gi = index.knn_graph(5)
    assert gi.shape == (5990, 5) and np.array_equal(index.ids(), ids[10:])


@pytest.mark.parametrize("exact_max", [10_000, 500])
def test_save_load_round_trip(tmp_path, exact_max):
    X = _clustered(1500, seed=4)
    index = FaissVectorIndex(32, exact_max=exact_max)
    index.add(np.arange(1500), X)
    index.save(tmp_path / "v.idx", stamp="s1")
    again = FaissVectorIndex.load(tmp_path / "v.idx")
    assert again.kind == index.kind and again.ntotal == 1500
    for a, b in zip(index.search(X[:50], 10), again.search(X[:50], 10)):
        assert np.array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["v.idx"]  # no temp file left behind


def test_open_or_rebuild(tmp_path):
    X = _clustered(300, seed=5)
    calls = []

    def loader():
        calls.append(1)
        return np.arange(300), X

    path = tmp_path / "sub" / "v.idx"
    a = open_or_rebuild(path, stamp="v1", loader=loader)  # missing: built
    b = open_or_rebuild(path, stamp="v1", loader=loader)  # intact, same stamp: loaded
    assert len(calls) == 1 and b.ntotal == 300
    open_or_rebuild(path, stamp="v2", loader=loader)  # catalog changed: rebuilt
    assert len(calls) == 2
    raw = bytearray(path.read_bytes())
    raw[200] ^= 0xFF  # flip a byte inside the faiss payload
    path.write_bytes(bytes(raw))
    with pytest.raises(IndexDamaged):
        FaissVectorIndex.load(path)
    c = open_or_rebuild(path, stamp="v2", loader=loader)
    assert len(calls) == 3 and np.array_equal(c.search(X[:5], 1)[1][:, 0], np.arange(5))
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    open_or_rebuild(path, stamp="v2", loader=loader)
    assert len(calls) == 4 and FaissVectorIndex.load(path).ntotal == a.ntotal
