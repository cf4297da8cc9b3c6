"""Metrics on small hand-made cases; the expected numbers were worked out by hand (see comments)."""

import numpy as np
import pytest

from lookalike.eval import metrics as M

approx = pytest.approx


def test_pair_prf_ignores_order_and_self_pairs():
    pred = [("a", "b"), ("b", "c"), ("a", "d"), ("e", "e")]
    true = [("b", "a"), ("c", "b"), ("c", "a")]
    r = M.pair_prf(pred, true)
    # tp = ab, bc; fp = ad; fn = ac
    assert (r.tp, r.fp, r.fn) == (2, 1, 1)
    assert (r.precision, r.recall, r.f1) == (approx(2 / 3), approx(2 / 3), approx(2 / 3))


def test_pair_prf_empty_cases():
    assert M.pair_prf([], [("a", "b")]) == M.PRF(1.0, 0.0, 0.0, 0, 0, 1)
    assert M.pair_prf([("a", "b")], []).precision == 0.0
    assert M.pair_prf([], []).f1 == 1.0


def test_false_positive_rate_and_per_category_recall():
    assert M.false_positive_rate([("a", "b")], [("b", "a"), ("c", "d")]) == 0.5
    assert M.false_positive_rate([("a", "b")], []) == 0.0
    cats = {("a", "b"): "rot", ("c", "d"): "rot", ("e", "f"): "flip"}
    r = M.per_category_recall([("b", "a"), ("x", "y")], cats)
    assert list(r) == ["flip", "rot"]
    assert (r["rot"].recall, r["rot"].tp, r["rot"].fn) == (0.5, 1, 1)
    assert (r["flip"].recall, r["flip"].tp, r["flip"].fn) == (0.0, 0, 1)


def test_connected_components_and_pairs_within():
    comps = M.connected_components([("a", "b"), ("c", "b"), ("d", "e"), ("b", "a")], items=["f", "a"])
    assert comps == [frozenset("abc"), frozenset("de"), frozenset("f")]
    assert M.pairs_within(comps) == {("a", "b"), ("a", "c"), ("b", "c"), ("d", "e")}
    # a long chain collapses into one component (transitive closure)
    chain = [(i, i + 1) for i in range(1000)]
    assert M.connected_components(chain) == [frozenset(range(1001))]


def test_average_precision():
    # hits at ranks 1 and 3: (1/1 + 2/3) / 2
    assert M.average_precision([1, 0, 1, 0]) == approx(5 / 6)
    # same list but 4 relevant items in total, two never retrieved: (1 + 2/3) / 4
    assert M.average_precision([1, 0, 1, 0], n_relevant=4) == approx(5 / 12)
    assert M.average_precision([0, 0]) == 0.0
    assert M.average_precision([]) == 0.0


def test_retrieval_metrics_leave_one_out():
    rankings = {"q1": ["q1", "a", "x", "b", "a"], "q2": ["x", "y"]}
    relevant = {"q1": {"a", "b"}, "q2": {"c"}, "q3": {"d"}}
    r = M.retrieval_metrics(rankings, relevant, ks=(1, 2, 3))
    # q1 (itself dropped): a x b -> AP (1 + 2/3) / 2 = 5/6; q2 misses c -> 0; q3 has no ranking -> 0
    assert r.ap == {"q1": approx(5 / 6), "q2": 0.0, "q3": 0.0}
    assert r.mean_ap == approx(5 / 18)
    assert r.recall_at == {1: approx(0.5 / 3), 2: approx(0.5 / 3), 3: approx(1 / 3)}
    assert r.hit_at == {1: approx(1 / 3), 2: approx(1 / 3), 3: approx(1 / 3)}
    assert r.n_queries == 3


def test_recall_at_precision_and_scored_ap():
    scores = [0.9, 0.8, 0.7, 0.6, 0.5]
    labels = [1, 1, 0, 1, 1]
    # cut after each: P = 1, 1, 2/3, 3/4, 4/5 ; R = .2, .4, .4, .6, .8 (5 true pairs, one never scored)
    assert M.recall_at_precision(scores, labels, n_positive=5, precision=0.99) == (approx(0.4), 0.8)
    assert M.recall_at_precision(scores, labels, n_positive=5, precision=0.75) == (approx(0.8), 0.5)
    assert M.recall_at_precision(scores, labels, n_positive=5, precision=0.81) == (approx(0.4), 0.8)
    # AP = .2*1 + .2*1 + 0*(2/3) + .2*3/4 + .2*4/5 = .71
    assert M.scored_average_precision(scores, labels, n_positive=5) == approx(0.71)
    # order of the input does not matter
    assert M.scored_average_precision(scores[::-1], labels[::-1], n_positive=5) == approx(0.71)
    with pytest.raises(ValueError, match="n_positive"):
        M.recall_at_precision(scores, labels, n_positive=3)


def test_ties_are_accepted_together():
    scores, labels = [0.9, 0.9, 0.5], [1, 0, 1]
    # at 0.9 both tied pairs come in: P = 1/2, R = 1/2; at 0.5: P = 2/3, R = 1
    assert M.recall_at_precision(scores, labels, n_positive=2, precision=0.99) == (0.0, None)
    assert M.recall_at_precision(scores, labels, n_positive=2, precision=0.6) == (approx(1.0), 0.5)
    assert M.scored_average_precision(scores, labels, n_positive=2) == approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert M.recall_at_precision([], [], n_positive=3) == (0.0, None)


TRUTH = {1: "A", 2: "A", 3: "A", 4: "B", 5: "B"}
PRED = {1: "x", 2: "x", 3: "y", 4: "y", 5: None, 99: "x"}  # 5 = singleton, 99 not in truth


def test_cluster_pair_prf():
    # true pairs 12 13 23 45 (4); predicted 12 34 (2); tp = 12 -> P 1/2, R 1/4, F 1/3
    r = M.cluster_pair_prf(PRED, TRUTH)
    assert (r.tp, r.fp, r.fn) == (1, 1, 3)
    assert (r.precision, r.recall, r.f1) == (0.5, 0.25, approx(1 / 3))
    # an item missing from the prediction is the same as a None label
    assert M.cluster_pair_prf({k: v for k, v in PRED.items() if k != 5}, TRUTH) == r
    # all singletons: nothing claimed (P = 1), nothing found
    assert M.cluster_pair_prf({}, TRUTH).precision == 1.0
    assert M.cluster_pair_prf({}, TRUTH).recall == 0.0


def test_bcubed_prf():
    # per item P: 1, 1, 1/2, 1/2, 1 -> 4/5 ; R: 2/3, 2/3, 1/3, 1/2, 1/2 -> 8/15
    r = M.bcubed_prf(PRED, TRUTH)
    assert r.precision == approx(0.8)
    assert r.recall == approx(8 / 15)
    assert r.f1 == approx(2 * 0.8 * (8 / 15) / (0.8 + 8 / 15))
    # perfect clustering, labels renamed; true singletons (None) stay distinct
    truth = {1: "A", 2: "A", 3: None, 4: None}
    assert M.bcubed_prf({1: 7, 2: 7, 3: 8, 4: 9}, truth).f1 == 1.0
    assert M.bcubed_prf({1: 7, 2: 7, 3: 8, 4: 8}, truth).precision == approx(0.75)  # 1,1,1/2,1/2


def test_nmi():
    assert M.nmi({1: "p", 2: "p", 3: "q", 4: None}, {1: "a", 2: "a", 3: "b", 4: "c"}) == approx(1.0)
    # prediction independent of truth: mutual information 0
    assert M.nmi({1: "x", 2: "y", 3: "x", 4: "y"}, {1: "a", 2: "a", 3: "b", 4: "b"}) == approx(0.0)


def test_labels_from_groups():
    assert M.labels_from_groups([{"a", "b"}, {"c"}]) == {"a": 0, "b": 0, "c": 1}


def test_leave_one_out_map_hand_made():
    # a, b share group "x"; c is a distractor; d is alone in "y" (a query with nothing relevant: AP 0)
    D = np.array([[1.0, 0.0], [0.9, 0.1], [0.95, 0.05], [0.0, 1.0]])
    D = D / np.linalg.norm(D, axis=1, keepdims=True)
    # a ranks c, b -> AP 1/2; b ranks c, a -> AP 1/2; d -> 0
    assert M.leave_one_out_map(D, ["x", "x", "", "y"]) == pytest.approx((0.5 + 0.5 + 0.0) / 3)
