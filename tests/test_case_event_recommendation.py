"""Chapter 10's plumbing: the as-of join that keeps features point-in-time, and AP@k and nDCG@k of
scored (user, event) pairs for every user at once."""

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import event_recommendation as case
from mlsd.evaluation.metrics import average_precision_at_k, ndcg_at_k

# --------------------------------------------------------------------------- known_before


def brute_known_before(facts, queries, by, value=None):
    """The definition, one query at a time: the facts with the query's keys and an earlier day."""
    out = []
    for _, q in queries.iterrows():
        same = np.ones(len(facts), bool)
        for key in by:
            same &= facts[key].to_numpy() == q[key]
        same &= facts["day"].to_numpy() < q["day"]
        out.append(same.sum() if value is None else facts[value].to_numpy()[same].sum())
    return np.array(out, dtype=float)


def random_facts_and_queries(seed):
    rng = np.random.default_rng(seed)
    n = 300
    facts = pd.DataFrame({"user_id": rng.integers(0, 6, n), "event_id": rng.integers(0, 5, n),
                          "day": rng.integers(0, 12, n), "v": rng.normal(size=n).round(2)})
    facts.index = rng.permutation(n) + 1_000  # any index: rows are read by position
    queries = pd.DataFrame({"user_id": rng.integers(0, 7, 200), "event_id": rng.integers(0, 6, 200),
                            "day": rng.integers(0, 14, 200)})   # unsorted; keys with no fact too
    queries.index = rng.permutation(200)[::-1]
    return facts, queries


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("by", [["user_id"], ["event_id"], ["user_id", "event_id"]])
@pytest.mark.parametrize("value", [None, "v"])
def test_known_before_is_the_brute_force_sum_of_earlier_facts(seed, by, value):
    facts, queries = random_facts_and_queries(seed)
    got = case.known_before(facts, queries, by, value)
    assert got.shape == (len(queries),) and got.dtype == float
    assert np.allclose(got, brute_known_before(facts, queries, by, value), rtol=0, atol=1e-9)


def test_known_before_by_hand_and_never_on_the_facts_own_day():
    facts = pd.DataFrame({"user_id": [1, 1, 1, 2], "day": [3, 3, 5, 0], "v": [2.0, 0.5, 4.0, 7.0]})
    queries = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 9], "day": [6, 3, 4, 5, 0, 1, 99]})
    assert case.known_before(facts, queries, ["user_id"]).tolist() == [3, 0, 2, 2, 0, 1, 0]
    assert case.known_before(facts, queries, ("user_id",), "v").tolist() == [6.5, 0, 2.5, 2.5, 0, 7, 0]
    # no facts: nothing known; no queries: nothing to answer
    assert case.known_before(facts.iloc[:0], queries, ["user_id"]).tolist() == [0] * 7
    assert case.known_before(facts, queries.iloc[:0], ["user_id"]).shape == (0,)


def test_known_before_answers_in_the_queries_order():
    facts, queries = random_facts_and_queries(7)
    order = np.random.default_rng(7).permutation(len(queries))
    whole = case.known_before(facts, queries, ["user_id", "event_id"], "v")
    part = case.known_before(facts, queries.iloc[order], ["user_id", "event_id"], "v")
    assert np.array_equal(part, whole[order])
    shuffled = case.known_before(facts.sample(frac=1, random_state=1), queries, ["user_id"])
    assert np.array_equal(shuffled, case.known_before(facts, queries, ["user_id"]))


@pytest.mark.parametrize("change, message", [
    (lambda f, q: (f.drop(columns="day"), q), "facts lacks the columns \\['day'\\]"),
    (lambda f, q: (f.drop(columns="user_id"), q), "facts lacks the columns \\['user_id'\\]"),
    (lambda f, q: (f.drop(columns="v"), q), "facts lacks the columns \\['v'\\]"),
    (lambda f, q: (f, q.drop(columns="event_id")), "queries lacks the columns \\['event_id'\\]"),
    (lambda f, q: (f.assign(day=f["day"] + 0.5), q), "facts.day must hold integers"),
    (lambda f, q: (f, q.assign(day=q["day"].astype(float))), "queries.day must hold integers"),
    (lambda f, q: (f, q.assign(day=q["day"].astype(str))), "queries.day must hold integers"),
])
def test_known_before_refuses_bad_input(change, message):
    facts, queries = random_facts_and_queries(0)
    bad_facts, bad_queries = change(facts, queries)
    with pytest.raises(ValueError, match=message):
        case.known_before(bad_facts, bad_queries, ["user_id", "event_id"], "v")


def test_known_before_accepts_integer_columns_of_any_width():
    facts, queries = random_facts_and_queries(1)
    narrow = queries.astype({"day": np.int32, "user_id": np.int32})
    assert np.array_equal(case.known_before(facts, narrow, ["user_id"]),
                          case.known_before(facts, queries, ["user_id"]))


# --------------------------------------------------------------------------- AP@k and nDCG@k per user


def random_pairs(seed, n_users=40):
    """Users with 0-25 candidate events each (ids unique per user), scores with many ties."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in rng.permutation(n_users) * 3:  # users in any order, ids not 0..n-1
        n = rng.integers(1, 26)
        events = rng.choice(100, n, replace=False)
        rows.append(pd.DataFrame({"user": user, "event": events}))
    pairs = pd.concat(rows, ignore_index=True).sample(frac=1, random_state=seed)
    n = len(pairs)
    pairs["score"] = rng.integers(0, 6, n) / 5.0       # ties
    pairs["label"] = (rng.random(n) < 0.15).astype(int)
    pairs["gain"] = np.where(rng.random(n) < 0.7, 0.0, rng.random(n))
    return pairs.reset_index(drop=True)


def ranked_events(group, score="score"):
    """One user's events, best first, ties to the lower event id."""
    return group.sort_values([score, "event"], ascending=[False, True])["event"].tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_average_precision_per_user_is_the_metric_user_by_user(seed, k):
    pairs = random_pairs(seed)
    got = case.average_precision_per_user(pairs["user"], pairs["event"], pairs["score"],
                                          pairs["label"], k=k)
    expected = {user: average_precision_at_k(ranked_events(g), set(g["event"][g["label"] == 1]), k,
                                             denominator="min")
                for user, g in pairs.groupby("user") if g["label"].any()}
    assert got.name == "AP@k"
    assert sorted(got.index) == sorted(expected)      # users with no positive are left out
    assert len(expected) < pairs["user"].nunique()    # (and there are some)
    for user, ap in expected.items():
        assert got[user] == pytest.approx(ap, abs=1e-12), user


def test_average_precision_by_hand_ties_and_a_perfect_ranking():
    users = [0, 0, 0, 0, 1, 1, 2]
    events = [10, 11, 12, 13, 5, 4, 7]
    scores = [0.9, 0.8, 0.7, 0.1, 0.5, 0.5, 0.3]
    labels = [1, 0, 1, 1, 1, 0, 0]
    ap = case.average_precision_per_user(users, events, scores, labels, k=3)
    # user 0: hits at ranks 1 and 3 of 3 positives: (1 + 2/3) / 3; user 1: the tie goes to
    # event 4 (a miss), then event 5: (1/2) / 1; user 2 has no positive
    assert ap.to_dict() == pytest.approx({0: (1 + 2 / 3) / 3, 1: 0.5})
    assert case.average_precision_per_user(users, events, scores, labels, k=1)[1] == 0.0
    pairs = random_pairs(5)
    perfect = case.average_precision_per_user(pairs["user"], pairs["event"], pairs["label"],
                                              pairs["label"], k=4)
    assert (perfect == 1.0).all()
    # booleans are labels too; k beyond every user's list is fine
    assert case.average_precision_per_user(users, events, scores, np.array(labels, bool),
                                           k=50).index.tolist() == [0, 1]


@pytest.mark.parametrize("args, error, message", [
    (([0, 0], [1, 2], [0.1, 0.2], [0, 2]), ValueError, "labels must be 0/1"),
    (([0, 0], [1, 2], [0.1, 0.2], [1]), ValueError, "labels must be 0/1, one per pair"),
    (([0, 0], [1, 2], [0.1], [0, 1]), ValueError, "1-D of one length"),
    (([0, 0], [1], [0.1, 0.2], [0, 1]), ValueError, "1-D of one length"),
    (([[0, 0]], [[1, 2]], [[0.1, 0.2]], [[0, 1]]), ValueError, "1-D of one length"),
    (([0, 0], [1, 2], [np.nan, 0.2], [0, 1]), ValueError, "NaN"),
])
def test_average_precision_refuses_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        case.average_precision_per_user(*args)


@pytest.mark.parametrize("k, error", [(0, ValueError), (2.5, TypeError)])
def test_both_metrics_refuse_a_bad_k(k, error):
    with pytest.raises(error, match="k must be"):
        case.average_precision_per_user([0], [1], [0.5], [1], k=k)
    with pytest.raises(error, match="k must be"):
        case.ndcg_per_user([0], [1], [0.5], [1.0], k=k)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_ndcg_per_user_is_the_metric_user_by_user(seed, k):
    pairs = random_pairs(seed)
    got = case.ndcg_per_user(pairs["user"], pairs["event"], pairs["score"], pairs["gain"], k=k)
    expected = {user: ndcg_at_k(ranked_events(g), dict(zip(g["event"], g["gain"])), k,
                                gain="linear")
                for user, g in pairs.groupby("user") if (g["gain"] > 0).any()}
    assert got.name == "nDCG@k"
    assert sorted(got.index) == sorted(expected)      # users whose gains are all 0 are left out
    assert len(expected) < pairs["user"].nunique()
    for user, value in expected.items():
        assert got[user] == pytest.approx(value, abs=1e-12), user
    best = case.ndcg_per_user(pairs["user"], pairs["event"], pairs["gain"], pairs["gain"], k=k)
    assert np.allclose(best, 1.0, rtol=0, atol=1e-12)


def test_ndcg_by_hand():
    # gains 3, 2, 0 ranked worst first, k = 2: DCG = 0 + 2 / log2(3); ideal = 3 + 2 / log2(3)
    got = case.ndcg_per_user([4, 4, 4, 8], [1, 2, 3, 1], [0.1, 0.5, 0.9, 0.2], [3.0, 2.0, 0.0, 0.0],
                             k=2)
    assert got.index.tolist() == [4]
    assert got[4] == pytest.approx((2 / np.log2(3)) / (3 + 2 / np.log2(3)))


@pytest.mark.parametrize("gains, message", [
    ([1.0, -0.5], "gains must be finite, >= 0"),
    ([1.0, np.inf], "gains must be finite"),
    ([1.0, np.nan], "gains must be finite"),
    ([1.0], "one per pair"),
])
def test_ndcg_refuses_bad_gains(gains, message):
    with pytest.raises(ValueError, match=message):
        case.ndcg_per_user([0, 0], [1, 2], [0.3, 0.4], gains)


def test_known_before_needs_a_key():
    facts, queries = random_facts_and_queries(2)
    with pytest.raises(ValueError, match="at least one key"):
        case.known_before(facts, queries, [])
