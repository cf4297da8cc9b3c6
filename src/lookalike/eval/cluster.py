"""Evaluation of clustering against the ground truth of ../shared/data, side by side with baselines.

    python -m lookalike.eval.cluster --data ../shared/data [--sets faces,faces_large,background] [--cache DIR]

Sets and truth: faces and faces_large (identities.csv, one label per photo for its largest face; photos
where no face is found count as singletons), background (groups.csv background column), near_duplicate
(copy groups; slow: indexes 1042 images with SIFT). Metrics: pairwise P/R/F, BCubed P/R/F, NMI.

Methods in one run on the same features: the engine (first clusters + default refiner), first clusters
alone, the learned GCN refiner (2-fold cross-validation by label: trained on half the groups, scored on
the other half; it never sees the groups it is scored on), DBSCAN, Chinese whispers and k-means with
the true k. "online" is the online assignment (file order) and "agreement" its pairwise F / BCubed F
against the batch clustering.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.cluster import baselines as B
from lookalike.cluster import graph as G
from lookalike.cluster.engine import BY, cluster_edges, cluster_vectors
from lookalike.cluster.online import OnlineClusterer
from lookalike.cluster.refine import context_graph
from lookalike.eval import datasets, metrics

FACE_SETS = ("faces", "faces_large")
ALL_SETS = ("faces", "faces_large", "background", "near_duplicate")


def scores(pred: dict, truth: dict) -> dict:
    p = metrics.cluster_pair_prf(pred, truth)
    b = metrics.bcubed_prf(pred, truth)
    return {"pair_p": round(p.precision, 4), "pair_r": round(p.recall, 4), "pair_f": round(p.f1, 4),
            "bcubed_p": round(b.precision, 4), "bcubed_r": round(b.recall, 4), "bcubed_f": round(b.f1, 4),
            "nmi": round(metrics.nmi(pred, truth), 4), "clusters": len(set(pred.values()))}


def online_labels(X, conf: dict) -> np.ndarray:
    """Online assignment of X's rows in order, with the online defaults of one BY entry."""
    oc = OnlineClusterer(X.shape[1], threshold=conf["online_threshold"], k=conf["online_k"],
                         min_count=conf["min_count"], merge_count=conf["merge_count"])
    oc.add(X)
    return oc.current_labels()


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """How alike two clusterings of the same items are (pairwise F and BCubed F, one taken as truth)."""
    pa, pb = dict(enumerate(a.tolist())), dict(enumerate(b.tolist()))
    return {"pair_f": round(metrics.cluster_pair_prf(pa, pb).f1, 4),
            "bcubed_f": round(metrics.bcubed_prf(pa, pb).f1, 4)}


def _gcn_cv(X, labels_true, first_threshold, conf, *, folds: int = 2, epochs: int = 300, seed: int = 0) -> np.ndarray:
    """Labels from the GCN refiner, each fold trained on the other folds' groups only."""
    from lookalike.cluster import gcn

    names = sorted(set(labels_true))
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(names, rng.integers(folds, size=len(names))))
    fold = np.array([fold_of[t] for t in labels_true])
    out = np.zeros(len(X), np.int64)
    offset = 0
    lt = conf["link_threshold"]
    for f in range(folds):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        if len(te) == 0:
            continue
        Xt = X[tr]
        sims, nbrs = G.knn(Xt, conf["k"])
        ctx = context_graph(sims, nbrs, floor=conf["floor"]) if conf["floor"] is not None else None
        samples = gcn.training_samples(Xt, np.asarray(labels_true)[tr], G.edges_from_knn(sims, nbrs),
                                       thresholds=[first_threshold - 0.02, first_threshold, first_threshold + 0.02],
                                       link_thresholds=[lt - 0.05, lt, lt + 0.05], context=ctx)
        w = gcn.train(samples, link_threshold=lt, epochs=epochs, seed=seed)
        r = cluster_vectors(X[te], threshold=first_threshold, k=conf["k"], refiner="gcn", link_threshold=lt,
                            floor=conf["floor"], gcn_weights=w)
        out[te] = r.labels + offset
        offset += r.labels.max() + 1
    return out


def _methods(X, *, conf, threshold, cw_threshold, dbscan_threshold, true_k, truth_labels, gcn: bool,
             edges_fn=None, sources=None) -> tuple[dict[str, np.ndarray], dict]:
    """Labels of every method on the same vectors X; edges_fn(threshold) gives mode edges if any;
    sources: per vector, its photo (the engine's cannot-link)."""
    out, secs = {}, {}

    def timed(name, fn):
        t0 = time.perf_counter()
        out[name] = fn()
        secs[name] = round(time.perf_counter() - t0, 2)

    if edges_fn is None:
        timed("engine", lambda: cluster_vectors(X, threshold=threshold, k=conf["k"], refiner="default",
                                                link_threshold=conf["link_threshold"], floor=conf["floor"],
                                                sources=sources, small_min_cosine=conf.get("small_min_cosine")).labels)
        timed("first clusters", lambda: cluster_vectors(X, threshold=threshold, k=conf["k"], refiner="none").labels)
        if gcn:
            timed("gcn (2-fold cv)", lambda: _gcn_cv(X, truth_labels, threshold, conf))
    else:
        from lookalike.cluster.background import cluster_background

        edges = edges_fn()
        timed("engine", lambda: cluster_background(edges, threshold=threshold).labels)
        timed("avg linkage + context (old)", lambda: cluster_edges(edges, threshold=threshold, refiner=conf["refiner"],
                                                                   link_threshold=conf["link_threshold"]).labels)
        timed("first clusters", lambda: cluster_edges(edges, threshold=threshold, refiner="none").labels)
    if edges_fn is not None:
        timed("chinese whispers fused 0.65", lambda: B.chinese_whispers(edges.above(0.65)))
    timed(f"dbscan {dbscan_threshold}", lambda: B.dbscan(X, threshold=dbscan_threshold))
    timed(f"chinese whispers {cw_threshold}",
          lambda: B.chinese_whispers_vectors(X, threshold=cw_threshold, k=conf["k"]))
    timed(f"k-means (true k={true_k})", lambda: B.kmeans(X, k=true_k))
    return out, secs


def evaluate_faces(root: Path, *, cache: str | os.PathLike | None = None, gcn: bool = True) -> dict:
    from lookalike.cluster.faces import faces_of_paths

    ds = datasets.read_faces(root)
    truth = {k: ds.identity[k] for k in ds.images}
    keys = list(truth)
    t0 = time.perf_counter()
    faces = faces_of_paths([str(ds.files[k]) for k in keys], cache=cache)
    face_secs = round(time.perf_counter() - t0, 1)
    # every face is clustered (as the engine does); each photo is scored by its largest face
    rows = [(n, j) for n, fs in enumerate(faces) for j in range(len(fs))]
    X = np.array([faces[n][j].embedding for n, j in rows], np.float32).reshape(len(rows), -1)
    largest = {n: r for r, (n, j) in enumerate(rows) if j == 0}
    conf = BY["face"]
    item_truth = [truth[keys[n]] if j == 0 else f"_extra{r}" for r, (n, j) in enumerate(rows)]
    labels, secs = _methods(X, conf=conf, threshold=conf["threshold"], cw_threshold=0.94, dbscan_threshold=0.93,
                            true_k=len(set(truth.values())), truth_labels=item_truth, gcn=gcn,
                            sources=[n for n, _ in rows])
    labels["online"] = online_labels(X, conf)
    res = {"photos": len(keys), "faces": len(rows), "no_face": len(keys) - len(largest), "face_seconds": face_secs,
           "methods": {}, "seconds": secs}
    for name, lab in labels.items():
        pred = {keys[n]: int(lab[r]) for n, r in largest.items()}
        res["methods"][name] = scores(pred, truth)
    res["agreement"] = agreement(labels["online"], labels["engine"])
    return res


def evaluate_background(root: Path, *, index_dir=None, workers: int | None = 1) -> dict:
    from lookalike.api import Index
    from lookalike.eval.background import _register
    from lookalike.features.background import BACKGROUND_FEATURES
    from lookalike.search.modes import MODES

    _register()
    ds = datasets.read_background(root)
    truth = {k: ds.group[k] for k in ds.images}
    conf = BY["background"]
    with tempfile.TemporaryDirectory(prefix="lookalike-cl-") as tmp, Index.open(index_dir or tmp) as idx:
        idx.add([str(ds.files[k]) for k in ds.images], features=list(BACKGROUND_FEATURES), workers=workers)
        ids = idx.catalog.ids_by_path()
        keys = [k for k in ds.images if str(ds.files[k]) in ids]
        fids = [ids[str(ds.files[k])] for k in keys]
        vec = idx.feature_values(fids, conf["vectors"])
        X = G.normalise(np.stack([vec[i] for i in fids]))
        pos = {f: n for n, f in enumerate(fids)}
        pairs = MODES["background"].pairs(idx, conf["pair_floor"])

        def edges_fn():
            e = [(pos[a], pos[b], s) for a, b, s, *_ in pairs if a in pos and b in pos]
            return G.make_edges(len(fids), *zip(*e)) if e else G.make_edges(len(fids), [], [], [])

        labels, secs = _methods(X, conf=conf, threshold=conf["threshold"], cw_threshold=0.9, dbscan_threshold=0.9,
                                true_k=len(set(truth.values())), truth_labels=None, gcn=False, edges_fn=edges_fn)
    # online as `index` would do it: each photo in turn, from its fused scores to the photos before it
    oc = OnlineClusterer(X.shape[1], threshold=conf["online_threshold"], k=conf["online_k"],
                         min_count=conf["min_count"], merge_count=conf["merge_count"])
    nb: dict[int, list] = {}
    for a, b, s, *_ in pairs:
        if a in pos and b in pos:
            lo, hi = sorted((pos[a], pos[b]))
            nb.setdefault(hi, []).append((lo, s))
    for n in range(len(keys)):
        oc.add_scored(nb.get(n, []))
    labels["online"] = oc.current_labels()
    res = {"photos": len(keys), "methods": {}, "seconds": secs}
    for name, lab in labels.items():
        res["methods"][name] = scores({k: int(lab[n]) for n, k in enumerate(keys)}, truth)
    res["agreement"] = agreement(labels["online"], labels["engine"])
    res["halves"] = _background_halves(edges_fn(), keys, truth)
    return res


def _background_halves(edges, keys, truth) -> dict:
    """The engine on each half of the backgrounds alone (the risk eval's split by a hash of the
    background name): A was used to choose the clustering parameters, B is held out."""
    from lookalike.cluster.background import cluster_background
    from lookalike.eval.risk import half_of

    out = {}
    for h in ("A", "B"):
        members = np.array([n for n, k in enumerate(keys) if half_of(truth[k]) == h], np.int64)
        lab = cluster_background(edges.subgraph(members)).labels
        out[h] = scores({keys[m]: int(lab[i]) for i, m in enumerate(members)},
                        {keys[m]: truth[keys[m]] for m in members})
    return out


def evaluate_near_duplicate(root: Path, *, index_dir=None, workers: int | None = 1) -> dict:
    from lookalike.api import Index
    from lookalike.cluster.engine import cluster_index

    ds = datasets.read_near_duplicate(root)
    truth = {k: n for n, comp in enumerate(ds.components) for k in comp}
    truth.update({k: None for k in ds.readable if k not in truth})
    with tempfile.TemporaryDirectory(prefix="lookalike-cl-") as tmp, Index.open(index_dir or tmp) as idx:
        idx.add([str(ds.files[k]) for k in ds.readable], workers=workers)
        t0 = time.perf_counter()
        r = cluster_index(idx, by="image", save=False)
        secs = round(time.perf_counter() - t0, 2)
    key_of = {str(ds.files[k]): k for k in ds.readable}
    pred = {key_of[p]: c.id for c in r.clusters for p, _ in c.members if p in key_of}
    return {"photos": len(truth), "methods": {"engine": scores(pred, truth)}, "seconds": {"engine": secs}}


def evaluate_cluster(data_dir: str | os.PathLike, *, sets=("faces", "faces_large", "background"),
                     cache: str | os.PathLike | None = None, index_dir: str | os.PathLike | None = None,
                     gcn: bool = True, workers: int | None = 1) -> dict:
    """Metrics per set and method (see the module doc). cache: folder for face embeddings (.npz per set);
    index_dir: folder for the background / near_duplicate indexes (kept for reuse)."""
    data = Path(data_dir)
    out = {}
    for name in sets:
        root = data / name
        if not root.is_dir():
            raise FileNotFoundError(f"{root} not found: point --data at the shared/data folder")
        t0 = time.perf_counter()
        if name in FACE_SETS:
            out[name] = evaluate_faces(root, cache=Path(cache) / f"eval-{name}-feature.npz" if cache else None,
                                       gcn=gcn)
        elif name == "background":
            out[name] = evaluate_background(root, index_dir=Path(index_dir) / "background" if index_dir else None,
                                            workers=workers)
        elif name == "near_duplicate":
            out[name] = evaluate_near_duplicate(root, index_dir=Path(index_dir) / "near_duplicate" if index_dir
                                                else None, workers=workers)
        else:
            raise ValueError(f"unknown set {name!r}; choose from {', '.join(ALL_SETS)}")
        out[name]["total_seconds"] = round(time.perf_counter() - t0, 1)
    return out


def table(res: dict) -> str:
    lines = []
    for name, r in res.items():
        extra = f", {r['faces']} faces, {r['no_face']} photos without a face" if "faces" in r else ""
        lines.append(f"\n{name}: {r['photos']} photos{extra} ({r['total_seconds']} s)")
        lines.append(f"{'method':<28}{'pairP':>7}{'pairR':>7}{'pairF':>7}{'B3 P':>7}{'B3 R':>7}{'B3 F':>7}"
                     f"{'NMI':>7}{'#cl':>6}{'sec':>7}")
        for m, s in r["methods"].items():
            lines.append(f"{m:<28}{s['pair_p']:>7.3f}{s['pair_r']:>7.3f}{s['pair_f']:>7.3f}{s['bcubed_p']:>7.3f}"
                         f"{s['bcubed_r']:>7.3f}{s['bcubed_f']:>7.3f}{s['nmi']:>7.3f}{s['clusters']:>6}"
                         f"{r['seconds'].get(m, float('nan')):>7}")
        if "agreement" in r:
            a = r["agreement"]
            lines.append(f"online vs batch agreement: pairwise F {a['pair_f']:.3f}, BCubed F {a['bcubed_f']:.3f}")
        for h, s in r.get("halves", {}).items():
            role = "tuning" if h == "A" else "held out"
            lines.append(f"engine on half {h} ({role}) alone: BCubed P {s['bcubed_p']:.3f} "
                         f"R {s['bcubed_r']:.3f} F {s['bcubed_f']:.3f}, {s['clusters']} clusters")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    ap.add_argument("--data", default=os.environ.get("LOOKALIKE_DATA", str(default)))
    ap.add_argument("--sets", default="faces,faces_large,background", help=f"comma list of {','.join(ALL_SETS)}")
    ap.add_argument("--cache", default=None, help="folder to keep face embeddings in (.npz), reused next time")
    ap.add_argument("--index", default=None, help="folder to keep the background / near_duplicate indexes in")
    ap.add_argument("--no-gcn", action="store_true", help="skip the learned refiner (its cross-validation trains)")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    res = evaluate_cluster(args.data, sets=[s for s in args.sets.split(",") if s], cache=args.cache,
                           index_dir=args.index, gcn=not args.no_gcn, workers=args.workers)
    print(table(res))


if __name__ == "__main__":
    main(sys.argv[1:])
