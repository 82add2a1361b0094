"""Chapter 12's core plumbing: the booked listing's rank, the summary metrics, popularity,
carousels and their replay."""

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import similar_listings as case
from mlsd.datasets import load
from mlsd.datasets import similar_listings as sl


@pytest.fixture(scope="module")
def world():
    return load("similar_listings")


@pytest.fixture(scope="module")
def queries(world):
    return sl.ranking_task(world, sl.TEST_DAY, sl.TEST_DAY + 3).queries


def brute_force_rank(world, query, scores_by_id):
    """The booked listing's rank by counting, one query at a time (ties share the mean rank)."""
    candidates = sl.open_listings(world, int(query.region), int(query.day))
    others = candidates[candidates != query.viewed]
    s = np.array([scores_by_id[c] for c in others])
    b = scores_by_id[query.booked]
    return 1 + (s > b).sum() + 0.5 * ((s == b).sum() - 1)


def test_booked_ranks_match_counting_by_hand(world, queries):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(len(world.observed["listings"]))
    ranks = case.booked_ranks(world, queries, lambda v, c: np.tile(values[c], (len(v), 1)))
    expected = [brute_force_rank(world, q, values) for q in queries.itertuples()]
    np.testing.assert_array_equal(ranks, expected)


def test_a_constant_score_gives_the_middle_rank(world, queries):
    ranks = case.booked_ranks(world, queries, lambda v, c: np.zeros((len(v), len(c))))
    sizes = np.array([len(sl.open_listings(world, r, d)) - 1 for r, d in zip(queries["region"], queries["day"])])
    np.testing.assert_array_equal(ranks, (sizes + 1) / 2)


def test_the_viewed_listing_never_counts_even_with_the_top_score(world, queries):
    def viewed_first(viewed, candidates):
        s = np.tile(-np.arange(len(candidates), dtype=float), (len(viewed), 1))
        s[np.arange(len(viewed)), np.searchsorted(candidates, viewed)] = 1e9
        return s

    ranks = case.booked_ranks(world, queries, viewed_first)
    for q, r in zip(queries.itertuples(), ranks):
        candidates = sl.open_listings(world, int(q.region), int(q.day))
        others = candidates[candidates != q.viewed]
        assert r == np.flatnonzero(others == q.booked)[0] + 1


def test_a_perfect_scorer_ranks_every_booking_first(world, queries):
    booked = dict(zip(queries["viewed"], queries["booked"]))

    def perfect(viewed, candidates):
        return np.array([(candidates == booked[v]).astype(float) for v in viewed])

    if len(booked) == len(queries):  # each viewed listing maps to one booking
        assert (case.booked_ranks(world, queries, perfect) == 1).all()


def test_ranks_from_posterior_agrees_with_booked_ranks(world, queries):
    for day, group in queries.groupby("day"):
        group = group.reset_index(drop=True)
        posterior = sl.booking_posterior(world, group["viewed"], day, n_tastes=500)
        p_of = {v: dict(zip(c, p)) for (c, p), v in zip(posterior, group["viewed"])}
        expected = case.ranks_from_posterior(group, posterior)
        got = case.booked_ranks(world, group, lambda viewed, candidates: np.array(
            [[p_of[v][c] for c in candidates] for v in viewed]))
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="entries"):
        case.ranks_from_posterior(queries, [])


def test_clairvoyant_ranks_use_each_sessions_own_taste(world, queries):
    tastes = world.hidden["session_truth"].set_index("session_id").loc[queries["session_id"]].to_numpy()
    ranks = case.clairvoyant_ranks(world, queries, tastes)
    truth = sl.truth_of(world)
    for i, q in enumerate(queries.head(20).itertuples()):
        c = sl.open_listings(world, int(q.region), int(q.day))
        u = dict(zip(c, sl.utilities(truth, tastes[i:i + 1], c)[0]))
        assert ranks[i] == brute_force_rank(world, q, u)
    with pytest.raises(ValueError, match="tastes"):
        case.clairvoyant_ranks(world, queries, tastes[:, :3])


def test_rank_summary_by_hand():
    summary = case.rank_summary([1, 2, 4, 20], k=3)
    assert summary["average rank"] == pytest.approx(6.75)
    assert summary["hit rate@3"] == pytest.approx(0.5)
    assert summary["MRR"] == pytest.approx((1 + 0.5 + 0.25 + 0.05) / 4)


@pytest.mark.parametrize("ranks", [[], [0.5, 2], [1, np.nan], [[1, 2]]])
def test_rank_summary_refuses_bad_ranks(ranks):
    with pytest.raises(ValueError, match="ranks"):
        case.rank_summary(ranks)


def test_popularity_counts_bookings_and_clicks_before_the_day(world):
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    books = case.popularity(world, 10, "bookings")
    views = case.popularity(world, 10, "clicks")
    early = sessions[sessions["day"] < 10]
    assert books.sum() == len(early)
    assert views.sum() == clicks["session_id"].isin(early["session_id"]).sum() - len(early)
    assert books[early["booked"].iloc[0]] >= 1
    with pytest.raises(ValueError, match="what"):
        case.popularity(world, 10, "views")


def test_bad_queries_and_scorers_are_refused(world, queries):
    with pytest.raises(TypeError, match="DataFrame"):
        case.booked_ranks(world, queries.to_numpy(), lambda v, c: 0)
    with pytest.raises(ValueError, match="columns"):
        case.booked_ranks(world, queries.drop(columns="booked"), lambda v, c: 0)
    with pytest.raises(TypeError, match="function"):
        case.booked_ranks(world, queries, 3)
    with pytest.raises(ValueError, match="shape"):
        case.booked_ranks(world, queries, lambda v, c: np.zeros(len(c)))
    with pytest.raises(ValueError, match="finite"):
        case.booked_ranks(world, queries, lambda v, c: np.full((len(v), len(c)), np.nan))
    same = queries.head(2).copy()
    same["booked"] = same["viewed"]
    with pytest.raises(ValueError, match="viewed"):
        case.booked_ranks(world, same, lambda v, c: np.zeros((len(v), len(c))))
    with pytest.raises(ValueError, match="unique index"):
        case.booked_ranks(world, pd.concat([queries.head(2)] * 2), lambda v, c: 0)


def test_carousels_are_the_top_k_without_the_viewed_listing(world, queries):
    values = np.random.default_rng(1).standard_normal(len(world.observed["listings"]))
    shown = case.carousels(world, queries, lambda v, c: np.tile(values[c], (len(v), 1)), k=5)
    for q, row in zip(queries.itertuples(), shown):
        c = sl.open_listings(world, int(q.region), int(q.day))
        c = c[c != q.viewed]
        np.testing.assert_array_equal(row, c[np.argsort(-values[c], kind="stable")[:5]])
    with pytest.raises(ValueError, match="k"):
        case.carousels(world, queries, lambda v, c: 0, k=0)


def test_carousel_replay_counts_later_clicks_and_the_booking(world, queries):
    clicks = world.observed["clicks"]
    q = queries.head(30)
    later = clicks[(clicks["position"] > 0) & (clicks["booked"] == 0)]
    first_later = later.groupby("session_id")["listing_id"].first()
    shown = np.tile(np.arange(10), (len(q), 1))
    for i, s in enumerate(q["session_id"]):
        if s in first_later.index:
            shown[i, 0] = first_later[s]
    shown[:, 1] = q["booked"].to_numpy()
    replay = case.carousel_replay(clicks, q, shown)
    assert (replay["booked_from_carousel"] == 1).all()
    has_later = q["session_id"].isin(first_later.index).to_numpy()
    assert (replay["carousel_clicks"].to_numpy()[has_later] >= 1).all()
    with pytest.raises(ValueError, match="shown"):
        case.carousel_replay(clicks, q, shown[:5])


def test_scorers_by_hand():
    viewed, candidates = np.array([0, 2]), np.array([0, 1, 2])
    pop = case.popularity_scorer([0.0, np.e - 1, 3.0])(viewed, candidates)
    np.testing.assert_allclose(pop, [[0.0, 1.0, np.log(4)]] * 2)
    x = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(case.attribute_scorer(x)(viewed, candidates),
                               [[0.0, -5.0, -1.0], [-1.0, -np.hypot(3, 3), 0.0]])
    w = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    np.testing.assert_allclose(case.cosine_scorer(w)(viewed, candidates),
                               [[1.0, 2 ** -0.5, 0.0], [0.0, 2 ** -0.5, 1.0]])
    with pytest.raises(ValueError, match="counts"):
        case.popularity_scorer([1.0, -1.0])
    with pytest.raises(ValueError, match="non-zero"):
        case.cosine_scorer(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        case.attribute_scorer([[np.nan, 1.0]])


def test_gensim_vectors_puts_each_word_on_its_listing_row():
    from gensim.models import Word2Vec

    model = Word2Vec([["2", "0"], ["0", "2"]] * 5, vector_size=4, min_count=1, sg=1,
                     workers=1, seed=0, epochs=1)
    w_in, w_out, known = case.gensim_vectors(model, 3)
    assert known.tolist() == [True, False, True]
    np.testing.assert_array_equal(w_in[2], model.wv["2"])
    np.testing.assert_array_equal(w_out[0], model.syn1neg[model.wv.key_to_index["0"]])
    assert (w_in[1] == 0).all() and (w_out[1] == 0).all()
    with pytest.raises(ValueError, match="none of the listings"):
        case.gensim_vectors(Word2Vec([["a", "b"]], vector_size=2, min_count=1), 3)


def test_replay_test_splits_the_queries_and_tests_both_metrics(world, queries):
    values = np.random.default_rng(2).standard_normal(len(world.observed["listings"]))
    good = lambda v, c: np.tile(values[c], (len(v), 1))  # noqa: E731
    arm = np.arange(len(queries)) % 2 == 1
    result = case.replay_test(world, queries, good, good, arm)
    ctr, booking = result.values()
    clicks = world.observed["clicks"]
    a = case.carousel_replay(clicks, queries[~arm], case.carousels(world, queries[~arm], good))
    assert ctr.mean_a == pytest.approx(a["carousel_clicks"].mean())
    assert booking.rate_a == pytest.approx(a["booked_from_carousel"].mean())
    with pytest.raises(ValueError, match="both arms"):
        case.replay_test(world, queries, good, good, np.zeros(len(queries), bool))
    with pytest.raises(ValueError, match="booleans"):
        case.replay_test(world, queries, good, good, arm[:3])


def test_sessions_between_keeps_the_windows_sessions_whole(world):
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    rows = case.sessions_between(sessions, clicks, 3, 5)
    days = sessions.set_index("session_id").loc[rows["session_id"], "day"]
    assert days.between(3, 4).all() and set(days) == {3, 4}
    assert len(rows) == clicks["session_id"].isin(sessions.loc[sessions["day"].isin([3, 4]), "session_id"]).sum()
    with pytest.raises(ValueError, match="end_day"):
        case.sessions_between(sessions, clicks, 5, 5)
    with pytest.raises(ValueError, match="sessions table"):
        case.sessions_between(clicks, clicks, 0, 5)
