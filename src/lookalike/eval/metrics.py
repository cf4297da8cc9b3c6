"""Evaluation metrics, implemented once and shared by tests, benchmarks and `lookalike eval`.

Conventions:
* a *pair* is an unordered pair of item keys; `pair(a, b)` gives its canonical (sorted) form and
  every function here canonicalises the pairs it is given, so callers may pass them in any order;
* a *clustering* is a mapping item -> cluster label; a label of ``None`` (or an item missing from
  the prediction) means "a cluster of its own" (singleton);
* scores are similarities: higher = more alike.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import normalized_mutual_info_score

Pair = tuple[Hashable, Hashable]


def pair(a: Hashable, b: Hashable) -> Pair:
    """Canonical (sorted) form of an unordered pair."""
    return (a, b) if a <= b else (b, a)


def pair_set(pairs: Iterable[Sequence[Hashable]]) -> set[Pair]:
    """Canonical set of unordered pairs; self-pairs (a == b) are dropped."""
    return {pair(p[0], p[1]) for p in pairs if p[0] != p[1]}


def _ratio(num: float, den: float, *, empty: float) -> float:
    return float(num) / den if den else empty


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 with the counts behind them."""

    precision: float
    recall: float
    f1: float
    tp: int = 0
    fp: int = 0
    fn: int = 0


# --- pairs -------------------------------------------------------------------------------


def pair_prf(predicted: Iterable[Sequence[Hashable]], truth: Iterable[Sequence[Hashable]]) -> PRF:
    """Pairwise precision/recall/F1 of predicted pairs against true pairs.

    An empty prediction has precision 1 (it claims nothing false); an empty truth has recall 1.
    """
    pred, true = pair_set(predicted), pair_set(truth)
    tp = len(pred & true)
    fp, fn = len(pred) - tp, len(true) - tp
    p = _ratio(tp, tp + fp, empty=1.0)
    r = _ratio(tp, tp + fn, empty=1.0)
    return PRF(p, r, _f1(p, r), tp, fp, fn)


def false_positive_rate(predicted: Iterable[Sequence[Hashable]],
                        negatives: Iterable[Sequence[Hashable]]) -> float:
    """Share of the given negative pairs (e.g. hard negatives) that were predicted as pairs."""
    neg = pair_set(negatives)
    return _ratio(len(pair_set(predicted) & neg), len(neg), empty=0.0)


def per_category_recall(predicted: Iterable[Sequence[Hashable]],
                        categories: Mapping[Pair, str]) -> dict[str, PRF]:
    """Recall per category (e.g. per transform) of the true pairs in `categories` (pair -> name).

    Only recall is meaningful per category: the returned PRF has precision 1 by convention
    (false positives belong to no category), tp = pairs found, fn = pairs missed.
    """
    pred = pair_set(predicted)
    found: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for (a, b), name in categories.items():
        total[name] += 1
        found[name] += pair(a, b) in pred
    out = {}
    for name in sorted(total):
        r = found[name] / total[name]
        out[name] = PRF(1.0, r, _f1(1.0, r), tp=found[name], fn=total[name] - found[name])
    return out


def connected_components(pairs: Iterable[Sequence[Hashable]], *,
                         items: Iterable[Hashable] = ()) -> list[frozenset]:
    """Connected components (transitive closure) of the pairs, by union-find.

    Items in `items` that appear in no pair come back as singleton components. Components are
    sorted largest first, then by their smallest member, so the output is deterministic.
    """
    parent: dict[Hashable, Hashable] = {}

    def find(x: Hashable) -> Hashable:
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for it in items:
        find(it)
    for p in pairs:
        ra, rb = find(p[0]), find(p[1])
        if ra != rb:
            parent[ra] = rb
    groups: dict[Hashable, set] = defaultdict(set)
    for x in list(parent):
        groups[find(x)].add(x)
    return sorted((frozenset(g) for g in groups.values()), key=lambda g: (-len(g), min(g)))


def pairs_within(groups: Iterable[Iterable[Hashable]]) -> set[Pair]:
    """Every unordered pair inside each group (the pairs that a grouping asserts)."""
    out: set[Pair] = set()
    for g in groups:
        members = sorted(set(g))
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                out.add((a, b))
    return out


# --- ranked lists and scored pairs -------------------------------------------------------


def average_precision(relevance: Sequence[bool], *, n_relevant: int | None = None) -> float:
    """Average precision of one ranked list, given the relevance of each rank (best first).

    `n_relevant` is the total number of relevant items; relevant items that are not in the list
    count as found at no rank (they lower AP). Defaults to the relevant items in the list.
    Returns 0 when there is nothing relevant.
    """
    rel = np.asarray(relevance, dtype=bool)
    total = int(rel.sum()) if n_relevant is None else int(n_relevant)
    if total <= 0:
        return 0.0
    hits = np.cumsum(rel)
    ranks = np.arange(1, len(rel) + 1)
    return float((hits[rel] / ranks[rel]).sum() / total)


def ranked_ap(ranked: Sequence[Hashable], positives: set) -> float:
    """Average precision of a ranking of keys against the set of relevant keys (all of them count)."""
    return average_precision([k in positives for k in ranked], n_relevant=len(positives))


def leave_one_out_map(D: np.ndarray, groups: Sequence[str]) -> float:
    """mAP of descriptors D (n, d; cosine = dot product): every item with a group queries all others,
    relevant = same group; an empty group is a distractor (never a query, never relevant)."""
    S = np.asarray(D) @ np.asarray(D).T
    aps = []
    for q, g in enumerate(groups):
        if g:
            order = [i for i in np.argsort(-S[q]) if i != q]
            aps.append(average_precision([groups[i] == g for i in order]))
    return float(np.mean(aps))


@dataclass(frozen=True)
class RetrievalResult:
    """Leave-one-out retrieval metrics over all queries."""

    mean_ap: float
    recall_at: dict[int, float]  # mean share of a query's relevant items found in its top k
    hit_at: dict[int, float]  # share of queries with at least one relevant item in the top k
    ap: dict[Hashable, float]  # AP of each query
    n_queries: int


def retrieval_metrics(rankings: Mapping[Hashable, Sequence[Hashable]],
                      relevant: Mapping[Hashable, Iterable[Hashable]], *,
                      ks: Sequence[int] = (1, 5, 10)) -> RetrievalResult:
    """mAP, recall@k and hit@k for leave-one-out retrieval.

    `relevant` maps each query to its relevant items and defines the queries: a query with no
    ranking scores AP 0 and recall 0. Each ranking lists result items best first; the query
    itself is removed from its own ranking (leave-one-out) and repeated items count once.
    """
    aps: dict[Hashable, float] = {}
    rec = {k: [] for k in ks}
    hit = {k: [] for k in ks}
    for q, rel_items in relevant.items():
        rel = set(rel_items) - {q}
        seen: set = set()
        ranked = []
        for it in rankings.get(q, ()):
            if it != q and it not in seen:
                seen.add(it)
                ranked.append(it in rel)
        aps[q] = average_precision(ranked, n_relevant=len(rel))
        for k in ks:
            found = sum(ranked[:k])
            rec[k].append(_ratio(found, len(rel), empty=0.0))
            hit[k].append(float(found > 0))
    n = len(aps)
    return RetrievalResult(
        mean_ap=float(np.mean(list(aps.values()))) if n else 0.0,
        recall_at={k: float(np.mean(v)) if n else 0.0 for k, v in rec.items()},
        hit_at={k: float(np.mean(v)) if n else 0.0 for k, v in hit.items()},
        ap=aps,
        n_queries=n,
    )


def _pr_curve(scores: Sequence[float], labels: Sequence[bool], n_positive: int):
    """Precision and recall after each distinct score (descending), with those thresholds.

    Pairs with equal scores are accepted or rejected together, as a threshold would.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels differ in length ({s.size} vs {y.size})")
    if n_positive < y.sum():
        raise ValueError(f"n_positive={n_positive} is below the {int(y.sum())} true pairs scored; "
                         "pass the total number of true pairs")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    accepted = np.arange(1, len(s) + 1)
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)  # end of each tie
    tp, accepted, thr = tp[last], accepted[last], s[last]
    precision = tp / accepted
    recall = tp / n_positive if n_positive else np.ones_like(precision)
    return precision, recall, thr


def scored_average_precision(scores: Sequence[float], labels: Sequence[bool], *,
                             n_positive: int) -> float:
    """Average precision over all pairs, from the scored pairs and the total number of true pairs.

    True pairs that were never scored (the engine did not return them) count as missed.
    Ties are resolved as a threshold would (all or none), i.e. step-wise interpolation.
    """
    if n_positive <= 0:
        return 0.0
    precision, recall, _ = _pr_curve(scores, labels, n_positive)
    gains = np.diff(np.r_[0.0, recall])
    return float((gains * precision).sum())


def recall_at_precision(scores: Sequence[float], labels: Sequence[bool], *, n_positive: int,
                        precision: float = 0.99) -> tuple[float, float | None]:
    """Best recall reachable at precision >= `precision`, and the threshold that gives it.

    `scores`/`labels` are the scored pairs and whether each is a true pair; `n_positive` is the
    total number of true pairs (scored or not). Pairs with score >= threshold are accepted.
    Returns (0.0, None) when no threshold reaches the precision.
    """
    prec, rec, thr = _pr_curve(scores, labels, n_positive)
    ok = np.flatnonzero((prec >= precision) & (rec > 0))
    if ok.size == 0:
        return 0.0, None
    best = ok[np.argmax(rec[ok])]  # recall only grows with the cut, so this is the lowest threshold
    return float(rec[best]), float(thr[best])


# --- clusterings -------------------------------------------------------------------------


def _aligned_labels(predicted: Mapping[Hashable, Hashable | None],
                    truth: Mapping[Hashable, Hashable | None]) -> tuple[list, list]:
    """Label lists over the items of `truth`; None or missing labels become unique singletons."""
    pred, true = [], []
    for i, (item, t) in enumerate(truth.items()):
        p = predicted.get(item)
        pred.append(("label", p) if p is not None else ("singleton", i))
        true.append(("label", t) if t is not None else ("singleton", i))
    return pred, true


def _n_pairs(n: int) -> int:
    return n * (n - 1) // 2


def _contingency(pred: list, true: list):
    cells = Counter(zip(pred, true))
    return cells, Counter(pred), Counter(true)


def cluster_pair_prf(predicted: Mapping[Hashable, Hashable | None],
                     truth: Mapping[Hashable, Hashable | None]) -> PRF:
    """Pairwise precision/recall/F1 of a clustering: pairs put together vs pairs truly together.

    Evaluated over the items of `truth`; predicted items outside it are ignored, truth items
    missing from the prediction (or labelled None) are singletons.
    """
    pred, true = _aligned_labels(predicted, truth)
    cells, psize, tsize = _contingency(pred, true)
    tp = sum(_n_pairs(n) for n in cells.values())
    n_pred = sum(_n_pairs(n) for n in psize.values())
    n_true = sum(_n_pairs(n) for n in tsize.values())
    p = _ratio(tp, n_pred, empty=1.0)
    r = _ratio(tp, n_true, empty=1.0)
    return PRF(p, r, _f1(p, r), tp, n_pred - tp, n_true - tp)


def bcubed_prf(predicted: Mapping[Hashable, Hashable | None],
               truth: Mapping[Hashable, Hashable | None]) -> PRF:
    """BCubed precision/recall/F1 (Amigo et al. 2009), averaged over the items of `truth`.

    Per item: precision = share of its predicted cluster with its true label, recall = share of
    its true class in its predicted cluster. Singletons as in `cluster_pair_prf`.
    """
    pred, true = _aligned_labels(predicted, truth)
    n = len(true)
    if n == 0:
        return PRF(1.0, 1.0, 1.0)
    cells, psize, tsize = _contingency(pred, true)
    # each of the m items of a cell (p, t) scores m/|p| precision and m/|t| recall
    p = sum(m * m / psize[pc] for (pc, _), m in cells.items()) / n
    r = sum(m * m / tsize[tc] for (_, tc), m in cells.items()) / n
    return PRF(float(p), float(r), _f1(p, r))


def nmi(predicted: Mapping[Hashable, Hashable | None],
        truth: Mapping[Hashable, Hashable | None]) -> float:
    """Normalised mutual information (scikit-learn, arithmetic mean), singletons as above."""
    pred, true = _aligned_labels(predicted, truth)
    if not true:
        return 1.0
    codes = {}
    pc = [codes.setdefault(x, len(codes)) for x in pred]
    codes = {}
    tc = [codes.setdefault(x, len(codes)) for x in true]
    return float(normalized_mutual_info_score(tc, pc))


def labels_from_groups(groups: Iterable[Iterable[Hashable]]) -> dict[Hashable, int]:
    """Clustering mapping item -> group number, from a list of groups (e.g. components)."""
    return {item: i for i, g in enumerate(groups) for item in g}
