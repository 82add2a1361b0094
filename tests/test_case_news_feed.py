"""Chapter 13's core plumbing: point-in-time counters, the feature frame, nDCG with signed gains."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score

from mlsd.cases import news_feed as case
from mlsd.datasets import news_feed as nf


def tiny_log():
    return pd.DataFrame({
        "user_id": [0, 0, 1, 0, 1],
        "author_id": [5, 5, 5, 6, 5],
        "post_id": [10, 11, 10, 12, 11],
        "topic": ["news", "news", "news", "food", "news"],
        "media": ["text", "link", "text", "photo", "link"],
        "time": [1.0, 1.0, 1.5, 2.0, 3.0],
        "click": [1, 0, 1, 0, 1], "like": [0, 1, 0, 0, 0], "comment": [0, 0, 1, 0, 0],
        "share": [0, 0, 0, 0, 1], "hide": [0, 0, 0, 1, 0], "dwell": [6.0, 3.0, 60.0, 0.1, 9.0],
    })


def test_past_counts_see_only_rows_strictly_before():
    log = tiny_log()
    counts = case.past_counts(log, log, ["user_id"], ["click", "hide"])
    # viewer 0: rows at 1.0 (same session: nothing before), then 2.0 sees the two rows at 1.0
    assert counts["n"].tolist() == [0, 0, 0, 2, 1]
    assert counts["click"].tolist() == [0, 0, 0, 1, 1]
    assert counts["hide"].tolist() == [0, 0, 0, 0, 0]
    by_post = case.past_counts(log, log, "post_id")
    assert by_post["n"].tolist() == [0, 0, 1, 0, 1]
    assert by_post.loc[4, "engage"] == 1  # post 11 before time 3: a like
    assert list(by_post.index) == list(log.index)


def test_past_counts_match_a_brute_force_count_on_the_world():
    world = nf.generate(0)
    log = case.with_posts(world.observed["impressions"], world.observed["posts"])
    rows = log.sample(300, random_state=1)
    counts = case.past_counts(log, rows, ["user_id", "author_id"], ["comment"])
    for i, row in rows.iterrows():
        earlier = log[(log["user_id"] == row["user_id"]) & (log["author_id"] == row["author_id"])
                      & (log["time"] < row["time"])]
        assert counts.loc[i, "n"] == len(earlier)
        assert counts.loc[i, "comment"] == earlier["comment"].sum()


def test_past_counts_refuse_bad_input():
    log = tiny_log()
    with pytest.raises(ValueError, match="lacks the columns"):
        case.past_counts(log.drop(columns="time"), log, "user_id")
    with pytest.raises(ValueError, match="at least one key"):
        case.past_counts(log, log, [])
    with pytest.raises(TypeError, match="DataFrame"):
        case.past_counts(log.to_numpy(), log, "user_id")


def test_with_posts_joins_and_keeps_order():
    posts = pd.DataFrame({"post_id": [0, 1], "author_id": [3, 4], "topic": ["news", "tech"],
                          "media": ["text", "video"], "created": [0.5, 0.7]})
    rows = pd.DataFrame({"post_id": [1, 0, 1], "user_id": [9, 8, 7]}, index=[5, 6, 7])
    joined = case.with_posts(rows, posts)
    assert joined["author_id"].tolist() == [4, 3, 4]
    assert list(joined.index) == [5, 6, 7]
    with pytest.raises(ValueError, match="unknown post ids"):
        case.with_posts(pd.DataFrame({"post_id": [2]}), posts)


def test_realized_value_weighs_like_expected_value():
    log = tiny_log()
    value = case.realized_value(log)
    assert value[2] == pytest.approx(1 + 5 + 1.0)  # click, comment, a minute of dwell
    assert value[3] == pytest.approx(-20 + 0.1 / 60)


def test_feed_features_have_one_row_per_row_and_no_future():
    log = tiny_log()
    connections = pd.DataFrame({"user_id": [0, 0, 1], "author_id": [5, 6, 5],
                                "kind": ["friend", "follows", "friend"], "contacts": [3, 0, 1]})
    log["created"] = [0.5, 0.9, 0.5, 1.0, 0.9]
    X = case.feed_features(log, log, connections)
    assert len(X) == len(log) and list(X.index) == list(log.index)
    assert X["friend"].tolist() == [1, 1, 1, 0, 1]
    assert X.loc[0, "age_hours"] == pytest.approx(12.0)
    assert X.loc[0, "user_n"] == 0 and X.loc[3, "user_n"] == pytest.approx(np.log1p(2))
    assert X.loc[0, "user_click"] == pytest.approx(0.1)  # smoothed: no history
    # cutting the log at a row's time changes none of its features
    cut = case.feed_features(log[log["time"] < 2.0], log.loc[[3]], connections)
    pd.testing.assert_frame_equal(cut, X.loc[[3]])
    with pytest.raises(ValueError, match="connected"):
        case.feed_features(log, log.assign(user_id=[0, 0, 1, 1, 1]), connections)
    with pytest.raises(ValueError, match="before its post"):
        case.feed_features(log, log.assign(created=5.0), connections)


def test_ndcg_by_hand_with_a_negative_gain():
    request = [0, 0, 0]
    gain = np.array([3.0, -2.0, 1.0])
    score = np.array([0.1, 0.9, 0.5])  # order: -2, 1, 3
    dcg = -2.0 + 1.0 / np.log2(3) + 3.0 / np.log2(4)
    ideal = 3.0 + 1.0 / np.log2(3) - 2.0 / np.log2(4)
    assert case.ndcg_by_request(request, score, gain).iloc[0] == pytest.approx(dcg / ideal)
    assert case.ndcg_by_request(request, gain, gain).iloc[0] == pytest.approx(1.0)
    k2 = case.dcg_by_request(request, score, gain, k=2).iloc[0]
    assert k2["dcg"] == pytest.approx(-2.0 + 1.0 / np.log2(3))
    assert k2["ideal"] == pytest.approx(3.0 + 1.0 / np.log2(3))


def test_ndcg_matches_scikit_learn_for_non_negative_gains():
    rng = np.random.default_rng(0)
    gains = rng.random((20, 7))
    scores = rng.random((20, 7))
    request = np.repeat(np.arange(20), 7)
    ours = case.ndcg_by_request(request, scores.ravel(), gains.ravel(), k=5)
    assert ours.mean() == pytest.approx(ndcg_score(gains, scores, k=5))


def test_ndcg_leaves_out_what_has_no_order_or_no_good_ideal():
    request = [0, 0, 1, 2, 2]
    gain = [1.0, 2.0, 5.0, -1.0, -3.0]
    result = case.ndcg_by_request(request, [0, 1, 0, 0, 1], gain)
    assert result.index.tolist() == [0, 1, 2]
    assert result.iloc[0] == pytest.approx(1.0)
    assert np.isnan(result.iloc[1]) and np.isnan(result.iloc[2])


def test_ties_keep_the_input_order():
    result = case.dcg_by_request([0, 0], [1.0, 1.0], [0.0, 4.0], k=1)
    assert result["dcg"].iloc[0] == 0.0


def test_pooled_ndcg_weighs_sessions_by_their_ideal():
    request = [0, 0, 1, 1]
    gain = [10.0, 0.0, 0.3, -0.4]
    score = [1.0, 0.0, 0.0, 1.0]  # session 0 perfect, session 1 worst
    per = case.ndcg_by_request(request, score, gain)
    pooled = case.pooled_ndcg(request, score, gain)
    table = case.dcg_by_request(request, score, gain)
    assert pooled == pytest.approx(table["dcg"].sum() / table["ideal"].sum())
    assert per.iloc[1] < -1 and pooled > 0.95
    with pytest.raises(ValueError, match="no request"):
        case.pooled_ndcg([0], [1.0], [1.0])


@pytest.mark.parametrize("request_ids, score, gain, match", [
    ([0, 0], [1.0], [1.0, 2.0], "one length"),
    ([0, 0], [1.0, np.nan], [1.0, 2.0], "finite"),
    ([[0, 0]], [[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
])
def test_ndcg_refuses_bad_input(request_ids, score, gain, match):
    with pytest.raises(ValueError, match=match):
        case.ndcg_by_request(request_ids, score, gain)
    with pytest.raises(TypeError):
        case.ndcg_by_request([0, 0], [1.0, 2.0], [1.0, 2.0], k=1.5)
