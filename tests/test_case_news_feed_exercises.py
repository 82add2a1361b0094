"""Chapter 13's exercise plumbing: the value under other weights, sums over each feed's top k,
per-viewer gains with paired intervals (overall and per slice), the heads' report, and the
affinity of a pair read from a truncated SVD of the connection graph."""

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import news_feed as case
from mlsd.cases.news_feed import exercises as ex
from mlsd.datasets import load
from mlsd.datasets import news_feed as nf
from mlsd.evaluation.metrics import roc_auc


@pytest.fixture(scope="module")
def world():
    return load("news_feed", seed=0)


def reactions(n=4):
    return pd.DataFrame({"click": np.linspace(0.1, 0.4, n), "like": 0.2, "comment": 0.05,
                         "share": 0.01, "hide": np.linspace(0.0, 0.03, n),
                         "dwell": np.linspace(6.0, 60.0, n)})


# --------------------------------------------------------------------------- the weights


def test_reweighted_value_is_expected_value_under_the_books_weights():
    r = reactions()
    np.testing.assert_allclose(ex.reweighted_value(r, nf.VALUE_WEIGHTS), nf.expected_value(r))
    np.testing.assert_allclose(ex.reweighted_value(r, {"click": 1.0}), r["click"])
    # by hand, row 0: 2 x 0.1 click - 5 x 0.0 hide + 6 s = 0.1 minutes
    np.testing.assert_allclose(ex.reweighted_value(r, {"click": 2.0, "hide": -5.0,
                                                       "dwell_minutes": 1.0})[0], 0.3)


@pytest.mark.parametrize("weights, error, message", [
    ({"clicks": 1.0}, ValueError, "unknown weights \\['clicks'\\]"),
    ({"click": float("nan")}, ValueError, "finite"),
    ({}, TypeError, "non-empty dict"),
    ([("click", 1.0)], TypeError, "non-empty dict"),
])
def test_reweighted_value_refuses_bad_weights(weights, error, message):
    with pytest.raises(error, match=message):
        ex.reweighted_value(reactions(), weights)


def test_reweighted_value_needs_every_reaction_column():
    with pytest.raises(ValueError, match="lacks the columns \\['dwell'\\]"):
        ex.reweighted_value(reactions().drop(columns="dwell"), {"click": 1.0})


def test_top_k_totals_by_hand():
    request = np.array([7, 7, 7, 3, 3])
    score = np.array([0.2, 0.9, 0.2, 0.1, 0.5])    # request 7: rows 1, then 0 and 2 tied
    outcomes = pd.DataFrame({"hide": [1.0, 10.0, 100.0, 1000.0, 10000.0], "bait": [1, 0, 1, 0, 1]})
    out = ex.top_k_totals(request, score, outcomes, k=2)
    assert out.index.tolist() == [3, 7]
    assert out.loc[7, "hide"] == 11.0                 # the tie keeps the input order: row 0
    assert out.loc[3, "hide"] == 11000.0              # a feed of two: both
    assert out["posts"].tolist() == [2, 2] and out.loc[7, "bait"] == 1
    every = ex.top_k_totals(request, score, outcomes, k=10)
    assert every["posts"].tolist() == [2, 3] and every["hide"].sum() == outcomes["hide"].sum()


@pytest.mark.parametrize("score, outcomes, k, error, message", [
    ([1.0, 2.0], pd.DataFrame({"a": [1.0, 2.0, 3.0]}), 10, ValueError, "one row per candidate"),
    ([1.0, np.nan, 0.0], pd.DataFrame({"a": [1.0, 2.0, 3.0]}), 10, ValueError, "finite"),
    ([1.0, 2.0, 0.0], pd.DataFrame({"a": [1.0, np.inf, 3.0]}), 10, ValueError, "finite"),
    ([1.0, 2.0, 0.0], {"a": [1.0, 2.0, 3.0]}, 10, TypeError, "DataFrame"),
    ([1.0, 2.0, 0.0], pd.DataFrame({"a": [1.0, 2.0, 3.0]}), 0, ValueError, "k must be >= 1"),
])
def test_top_k_totals_refuses_bad_input(score, outcomes, k, error, message):
    with pytest.raises(error, match=message):
        ex.top_k_totals([0, 0, 1], score, outcomes, k=k)


def test_weighting_outcomes_ranks_by_each_weighting():
    # two feeds of three posts; clicks only puts the clicky, hidden post first
    predicted = pd.DataFrame({"click": [0.9, 0.1, 0.2, 0.3, 0.1, 0.5], "like": 0.0,
                              "comment": [0.0, 0.2, 0.0, 0.0, 0.0, 0.0], "share": 0.0,
                              "hide": [0.5, 0.0, 0.0, 0.0, 0.0, 0.0], "dwell": 0.0})
    request = np.array([0, 0, 0, 1, 1, 1])
    outcomes = pd.DataFrame({"bait": [1, 0, 0, 0, 0, 1]})
    gain = np.array([-5.0, 1.0, 0.5, 0.2, 0.1, 0.4])
    table, tops = ex.weighting_outcomes(request, predicted, {
        "book": nf.VALUE_WEIGHTS, "clicks": {"click": 1.0}}, outcomes, gain, k=1)
    assert table.loc["clicks", "bait"] == 1.0          # both feeds open with the bait
    assert table.loc["book", "bait"] == 0.5            # the hide keeps feed 0's bait down
    assert table["posts"].tolist() == [1.0, 1.0]
    assert table.loc["book", "nDCG@1"] == pytest.approx((1.0 + 0.4 / 0.4) / 2)
    assert set(tops) == {"book", "clicks"} and tops["book"].index.tolist() == [0, 1]
    with pytest.raises(TypeError, match="weightings must be a non-empty dict"):
        ex.weighting_outcomes(request, predicted, {}, outcomes)


# --------------------------------------------------------------------------- comparisons


def test_viewer_gain_by_hand_leaves_out_viewers_missing_in_either():
    before = pd.Series([0.5, 0.2, np.nan, 0.4, 0.9], index=[1, 2, 3, 4, 5])
    after = pd.Series([0.7, 0.2, 0.8, 0.6], index=[1, 2, 3, 4])   # viewer 5: not scored
    gain, low, high = ex.viewer_gain(before, after, seed=0)
    assert gain == pytest.approx((0.2 + 0.0 + 0.2) / 3)             # viewers 1, 2 and 4
    assert low <= gain <= high and 0.0 <= low and high <= 0.2 + 1e-12
    assert ex.viewer_gain(before, after, seed=0) == (gain, low, high)   # reproducible
    assert ex.viewer_gain(after, before, seed=0)[0] == pytest.approx(-gain)


def test_viewer_gain_interval_covers_a_known_shift():
    rng = np.random.default_rng(3)
    before = pd.Series(rng.random(400))
    after = before + 0.05 + 0.02 * rng.standard_normal(400)
    gain, low, high = ex.viewer_gain(before, after, seed=np.random.default_rng(1))
    assert low < 0.05 < high and high - low < 0.01


@pytest.mark.parametrize("before, after, error, message", [
    ([0.1, 0.2], pd.Series([0.1, 0.2]), TypeError, "Series indexed by viewer"),
    (pd.Series([0.1, 0.2], index=[1, 1]), pd.Series([0.1, 0.2]), ValueError, "viewer twice"),
    (pd.Series([0.1, np.nan]), pd.Series([0.1, 0.2]), ValueError, "at least two viewers"),
])
def test_viewer_gain_refuses_bad_input(before, after, error, message):
    with pytest.raises(error, match=message):
        ex.viewer_gain(before, after, seed=0)


def test_interval_reads():
    assert ex.interval_reads(0.01, 0.02) == "beyond chance"
    assert ex.interval_reads(-0.02, -0.01) == "a loss beyond chance"
    assert ex.interval_reads(-0.01, 0.02) == "within what chance explains"
    with pytest.raises(ValueError, match="low <= high"):
        ex.interval_reads(0.2, 0.1)


def test_sliced_gain_by_hand():
    index = pd.Index(range(8), name="request")
    before = pd.Series([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5], index=index)
    after = before + np.array([0.1, 0.1, 0.1, 0.1, -0.2, 0.0, -0.2, 0.0])
    slices = pd.Series(pd.Categorical(["b"] * 4 + ["a"] * 4, categories=["b", "a"]),
                       index=index, name="activity")
    out = ex.sliced_gain(before, after, slices, seed=0)
    assert out.index.tolist() == ["b", "a"] and out.index.name == "activity"
    assert out["viewers"].tolist() == [4, 4]
    assert out.loc["b", "gain"] == pytest.approx(0.1) and out.loc["b", "low"] == pytest.approx(0.1)
    assert out.loc["a", "before"] == pytest.approx(0.5) and out.loc["a", "gain"] == pytest.approx(-0.1)
    assert (out["low"] <= out["gain"]).all() and (out["gain"] <= out["high"]).all()


def test_sliced_gain_refuses_unlabelled_viewers():
    before, after = pd.Series([0.1, 0.2, 0.3]), pd.Series([0.2, 0.2, 0.4])
    with pytest.raises(ValueError, match="no label for 1 viewers"):
        ex.sliced_gain(before, after, pd.Series(["a", "a"]), seed=0)
    with pytest.raises(ValueError, match="fewer than two scored viewers"):
        ex.sliced_gain(before, after, pd.Series(["a", "a", "b"]), seed=0)
    with pytest.raises(TypeError, match="slices must be a Series"):
        ex.sliced_gain(before, after, ["a", "a", "b"], seed=0)


def test_auc_gain_matches_the_difference_and_a_bootstrap():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.2).astype(int)
    a = y + 1.5 * rng.standard_normal(3000)
    b = a + 0.3 * y + 0.5 * rng.standard_normal(3000)
    gain, low, high = ex.auc_gain(y, a, b)
    assert gain == pytest.approx(roc_auc(y, b) - roc_auc(y, a))
    draws = []
    for _ in range(400):
        i = rng.integers(0, 3000, 3000)
        draws.append(roc_auc(y[i], b[i]) - roc_auc(y[i], a[i]))
    assert (high - low) / 2 / 1.96 == pytest.approx(np.std(draws), rel=0.15)
    assert ex.auc_gain(y, a, a) == (0.0, 0.0, 0.0)       # a score against itself
    g, lo, hi = ex.auc_gain(y, b, a)
    assert g == pytest.approx(-gain) and lo == pytest.approx(-high)


def test_auc_gain_by_hand_with_ties():
    y = [1, 1, 0, 0, 0]
    # before: positives 0.9 and 0.5, negatives 0.5, 0.2, 0.1: 5.5 of 6 pairs (a tie is half)
    before, after = [0.9, 0.5, 0.5, 0.2, 0.1], [0.9, 0.8, 0.5, 0.2, 0.1]
    gain, low, high = ex.auc_gain(y, before, after)
    assert gain == pytest.approx(1.0 - 5.5 / 6) and low <= gain <= high


@pytest.mark.parametrize("labels, before, after, message", [
    ([1, 0, 2, 0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "0 or 1"),
    ([1, 0, 0, 0], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "two positives and two negatives"),
    ([1, 1, 0, 0], [0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4], "one length"),
    ([1, 1, 0, 0], [0.1, np.nan, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], "finite"),
])
def test_auc_gain_refuses_bad_input(labels, before, after, message):
    with pytest.raises(ValueError, match=message):
        ex.auc_gain(labels, before, after)


# --------------------------------------------------------------------------- the heads


def test_head_report_with_the_truth_as_a_system(world):
    """Stand-ins, no training: the true probabilities, and a click head that knows nothing."""
    cand = case.with_posts(nf.feed_requests(world), world.observed["posts"]).iloc[:4000]
    true = nf.true_reactions(nf.truth_of(world), cand["user_id"].to_numpy(),
                             cand["post_id"].to_numpy(), cand["time"].to_numpy())
    drawn = nf.draw_reactions(true, np.random.default_rng(0))
    flat = true.assign(click=true["click"].mean())
    log = world.observed["impressions"]
    out = ex.head_report(log, drawn, true, {"oracle": true, "flat click": flat})
    assert out.index.tolist() == list(nf.REACTIONS)
    assert list(out.columns) == ["log positives", "AUC: oracle", "AUC: flat click", "AUC: truth",
                                 "mean / true: oracle", "mean / true: flat click"]
    assert out["log positives"].tolist() == [int(log[r].sum()) for r in nf.REACTIONS]
    np.testing.assert_allclose(out["AUC: truth"], [roc_auc(drawn[r], true[r]) for r in nf.REACTIONS])
    np.testing.assert_allclose(out["AUC: oracle"], out["AUC: truth"])
    assert out.loc["click", "AUC: flat click"] == pytest.approx(0.5)
    np.testing.assert_allclose(out["mean / true: oracle"], 1.0)
    np.testing.assert_allclose(out["mean / true: flat click"], 1.0)   # flat, but calibrated


def test_head_report_refuses_misaligned_frames():
    r = pd.DataFrame({h: [0.1, 0.2, 0.3] for h in nf.REACTIONS})
    labels = pd.DataFrame({h: [0, 1, 1] for h in nf.REACTIONS})
    with pytest.raises(ValueError, match="aligned row by row"):
        ex.head_report(labels, labels, r, {"m": r.iloc[:2]})
    with pytest.raises(TypeError, match="non-empty dict"):
        ex.head_report(labels, labels, r, {})
    with pytest.raises(ValueError, match="'truth' names the true probabilities"):
        ex.head_report(labels, labels, r, {"truth": r})
    with pytest.raises(ValueError, match="lacks the columns \\['share'\\]"):
        ex.head_report(labels, labels, r, {"m": r.drop(columns="share")})


# --------------------------------------------------------------------------- affinity


def test_connection_matrix_by_hand():
    connections = pd.DataFrame({"user_id": [0, 0, 2], "author_id": [1, 2, 0]})
    m = ex.connection_matrix(connections, 3, 3)
    np.testing.assert_array_equal(m, [[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    counts = pd.DataFrame({"user_id": [0, 2], "author_id": [2, 0], "count": [np.e - 1, 0.0]})
    m = ex.connection_matrix(connections, 3, 3, counts)
    assert m[0, 2] == pytest.approx(2.0) and m[2, 0] == 1.0 and m[0, 1] == 1.0


@pytest.mark.parametrize("connections, counts, message", [
    (pd.DataFrame({"user_id": [3], "author_id": [0]}), None, "ids must lie in"),
    (pd.DataFrame({"user_id": [0], "author_id": [0]}),
     pd.DataFrame({"user_id": [1], "author_id": [0], "count": [1]}), "not connected"),
    (pd.DataFrame({"user_id": [0], "author_id": [0]}),
     pd.DataFrame({"user_id": [0], "author_id": [0], "count": [-1]}), "non-negative"),
    (pd.DataFrame({"user_id": [0]}), None, "lacks the columns \\['author_id'\\]"),
])
def test_connection_matrix_refuses_bad_input(connections, counts, message):
    with pytest.raises(ValueError, match=message):
        ex.connection_matrix(connections, 3, 3, counts)


def test_svd_affinity_is_the_truncated_svd():
    rng = np.random.default_rng(0)
    matrix = (rng.random((30, 12)) < 0.3).astype(float)
    users, authors = np.repeat(np.arange(30), 12), np.tile(np.arange(12), 30)
    out = ex.svd_affinity(matrix, users, authors, [2, 12])
    u, s, vt = np.linalg.svd(matrix, full_matrices=False)
    rank2 = (u[:, :2] * s[:2]) @ vt[:2]
    np.testing.assert_allclose(out[2].to_numpy(), rank2.ravel(), atol=1e-9)
    np.testing.assert_allclose(out[12].to_numpy(), matrix.ravel(), atol=1e-9)   # full rank
    # a rank-one matrix is its own rank-one approximation
    one = np.outer([1.0, 2.0, 0.0], [3.0, 1.0])
    np.testing.assert_allclose(ex.svd_affinity(one, [1, 0], [0, 1], 1)[1], [6.0, 1.0])


def test_svd_affinity_keeps_the_index_of_a_series():
    users = pd.Series([0, 1], index=[10, 20])
    out = ex.svd_affinity(np.eye(2), users, pd.Series([0, 0], index=[10, 20]), [1, 2])
    assert out.index.tolist() == [10, 20] and out.columns.tolist() == [1, 2]


@pytest.mark.parametrize("users, authors, dims, error, message", [
    ([0, 1], [0], [1], ValueError, "one id per pair"),
    ([0, 5], [0, 0], [1], ValueError, "must index the matrix"),
    ([0, 1], [0, 0], [3], ValueError, "dims must be distinct, between 1 and 2"),
    ([0, 1], [0, 0], [1, 1], ValueError, "dims must be distinct"),
    ([0.0, 1.0], [0, 0], [1], TypeError, "integer ids"),
])
def test_svd_affinity_refuses_bad_input(users, authors, dims, error, message):
    with pytest.raises(error, match=message):
        ex.svd_affinity(np.eye(2), np.asarray(users), np.asarray(authors), dims)


def test_svd_affinity_of_the_graph_follows_the_hidden_latent_closeness(world):
    """The world draws friends by a latent product: the graph's SVD recovers it, well above
    chance (the exercise's point is that the contact count already carries it)."""
    connections = world.observed["connections"]
    graph = ex.connection_matrix(connections, len(world.hidden["user_truth"]),
                                 len(world.observed["authors"]))
    affinity = ex.svd_affinity(graph, connections["user_id"], connections["author_id"], [8])[8]
    x = world.hidden["user_truth"][[f"x_{i}" for i in range(nf.LATENT_DIM)]].to_numpy()
    y = world.hidden["author_truth"][[f"y_{i}" for i in range(nf.LATENT_DIM)]].to_numpy()
    latent = (x[connections["user_id"]] * y[connections["author_id"]]).sum(axis=1)
    assert np.corrcoef(affinity, latent)[0, 1] > 0.5
