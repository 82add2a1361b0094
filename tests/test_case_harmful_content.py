"""Chapter 8's plumbing: macro average precision (and its weighted version for the bootstrap),
the review queue's counts, and the Bayes decision under costs and a review capacity."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from mlsd.cases import harmful_content as case

COSTS = {"allow": (0.0, 10.0), "demote": (1.0, 3.0), "remove": (4.0, 0.0), "review": (0.5, 0.5)}


@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(0)
    y = (rng.random((600, 3)) < [0.05, 0.2, 0.5]).astype(int)
    scores = y * rng.random((600, 3)) + rng.random((600, 3))
    scores[:, 2] = np.round(scores[:, 2], 1)  # many ties in one class
    return y, scores


def test_macro_average_precision_is_the_mean_of_scikit_learns_per_class(labelled):
    y, s = labelled
    expected = np.mean([average_precision_score(y[:, k], s[:, k]) for k in range(3)])
    assert case.macro_average_precision(y, s) == pytest.approx(expected, abs=1e-12)


def test_the_weighted_scorer_equals_repeating_the_posts(labelled):
    y, s = labelled
    score = case.macro_ap_scorer(y, s)
    assert score(np.ones(len(y))) == pytest.approx(case.macro_average_precision(y, s), abs=1e-12)
    weights = np.random.default_rng(1).multinomial(len(y), np.full(len(y), 1 / len(y)))
    repeated = np.repeat(np.arange(len(y)), weights)
    assert score(weights) == pytest.approx(case.macro_average_precision(y[repeated], s[repeated]), abs=1e-12)


@pytest.mark.parametrize("y, s, message", [
    (np.ones((4, 2)), np.ones((4, 3)), "one shape"),
    (np.full((4, 2), 2), np.ones((4, 2)), "0 or 1"),
    (np.array([[1, 0], [0, 0]]), np.ones((2, 2)), "classes \\[1\\] have none"),
    (np.eye(2), np.array([[np.nan, 0], [0, 1]]), "finite"),
])
def test_bad_labels_or_scores_are_refused(y, s, message):
    with pytest.raises(ValueError, match=message):
        case.macro_average_precision(y, s)
    with pytest.raises(ValueError, match=message):
        case.macro_ap_scorer(y, s)


def test_the_weighted_scorer_checks_its_weights(labelled):
    y, s = labelled
    score = case.macro_ap_scorer(y, s)
    with pytest.raises(ValueError, match="one per post"):
        score(np.ones(3))
    with pytest.raises(ValueError, match="one per post"):
        score(-np.ones(len(y)))
    with pytest.raises(ValueError, match="no positive"):
        score((y[:, 0] == 0).astype(float))


def test_any_harm_combines_independent_classes():
    p = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 0.2]])
    assert case.any_harm(p) == pytest.approx([0.0, 0.75, 1.0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        case.any_harm(np.array([[1.5, 0.0]]))


def test_the_review_queue_counts_harmful_and_unreported_posts():
    scores = np.arange(20.0)[::-1]             # post 0 scores highest
    harmful = np.zeros(20, bool)
    harmful[[0, 2, 5, 19]] = True
    reported = np.zeros(20, bool)
    reported[[2, 19]] = True
    table = case.review_queue_table({"a": scores, "b": -scores}, harmful, reported, capacity=0.2)
    assert table.loc["a", ["queue", "harmful", "no report yet"]].tolist() == [4, 2, 1]
    assert table.loc["b", ["harmful", "no report yet"]].tolist() == [1, 0]
    assert table.loc["a", "precision"] == 0.5
    numbers = case.queue_numbers(table, "b", "a", "a")
    assert numbers["queue_model"] == 2 and numbers["queue_model_proactive"] == 0.5
    with pytest.raises(ValueError, match="capacity"):
        case.review_queue_table({"a": scores}, harmful, reported, capacity=1.5)
    with pytest.raises(ValueError, match="one score"):
        case.review_queue_table({"a": scores[:5]}, harmful, reported, capacity=0.2)


def test_queues_of_growing_size_catch_more():
    rng = np.random.default_rng(2)
    harmful = rng.random(1000) < 0.1
    scores = harmful + rng.random(1000)
    caught = case.caught_by_queue_size(scores, harmful, np.linspace(0.01, 1, 50))
    assert (np.diff(caught) >= 0).all() and caught[-1] == harmful.sum()
    assert case.caught_by_queue_size(harmful.astype(float), harmful, [0.05])[0] == 50  # a perfect queue
    with pytest.raises(ValueError, match="shares"):
        case.caught_by_queue_size(scores, harmful, [0.0])


def test_decide_takes_the_cheapest_action_and_fills_the_queue_where_review_saves_most():
    p = np.array([0.0, 0.05, 0.3, 0.49, 0.51, 0.9, 1.0])
    # without review: allow below 1/8 (10p = 1 + 2p), demote below 1/2 (1 + 2p = 4 - 4p), then remove
    assert case.decide(p, COSTS, capacity=0.01).tolist() == [
        "allow", "allow", "demote", "demote", "remove", "remove", "remove"]
    # one review (capacity 1/7): it goes to the post whose cheapest automatic action costs most,
    # p = 0.49 (demoting costs 1.98; removing the post at 0.51 would cost 1.96)
    assert case.decide(p, COSTS, capacity=1 / 7).tolist() == [
        "allow", "allow", "demote", "review", "remove", "remove", "remove"]
    certain = case.decide(np.array([0.0, 1.0]), COSTS, capacity=0.5)
    assert certain.tolist() == ["allow", "remove"], "never review where it saves nothing"


@pytest.mark.parametrize("p, costs, message", [
    (np.array([1.2]), COSTS, r"\[0, 1\]"),
    (np.array([0.5]), {"allow": (0, 1)}, "each of"),
    (np.array([0.5]), {**COSTS, "remove": (-1.0, 0.0)}, "non-negative"),
])
def test_decide_refuses_bad_input(p, costs, message):
    with pytest.raises(ValueError, match=message):
        case.decide(p, costs, capacity=0.05)


def test_the_cost_table_prices_every_action():
    harmful = np.array([True, True, False, False])
    table = case.cost_table({"policy": np.array(["remove", "allow", "demote", "review"])}, harmful, COSTS)
    assert table.loc["policy", "cost per post"] == pytest.approx((0 + 10 + 1 + 0.5) / 4)
    assert table.loc["policy", "harmful left up"] == 1 and table.loc["policy", "harmless removed"] == 0
    assert table.loc["allow everything", "cost per post"] == pytest.approx(5.0)
    numbers = case.cost_numbers(table, "policy", "policy", "policy")
    assert numbers["cost_allow_all"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="one action"):
        case.cost_table({"bad": np.array(["delete"] * 4)}, harmful, COSTS)
