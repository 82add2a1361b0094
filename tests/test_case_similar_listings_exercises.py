"""Chapter 12's exercise plumbing: the region-mean cold start, how regional an embedding and
its random negatives are, precomputed lists against a calendar, the first clicks of a session,
ranks for one query vector per query, and the booking posterior given several clicks."""

import numpy as np
import pandas as pd
import pytest

from mlsd.book.seeding import make_rng
from mlsd.cases.similar_listings import exercises as ex
from mlsd.cases import similar_listings as case
from mlsd.datasets import load
from mlsd.datasets import similar_listings as sl


@pytest.fixture(scope="module")
def world():
    return load("similar_listings", seed=0)


@pytest.fixture(scope="module")
def queries(world):
    return sl.ranking_task(world, sl.VALIDATION_DAY, sl.TEST_DAY).queries.iloc[:150]


# --------------------------------------------------------------------------- cold start


def test_region_mean_rows_by_hand():
    matrix = np.array([[1.0, 0.0], [3.0, 2.0], [9.0, 9.0], [5.0, 5.0], [7.0, 1.0], [0.0, 0.0]])
    region = np.array([0, 0, 0, 1, 1, 1])
    known = np.array([True, True, False, True, False, False])
    out = ex.region_mean_rows(matrix, region, known)
    np.testing.assert_array_equal(out, [[1, 0], [3, 2], [2, 1], [5, 5], [5, 5], [5, 5]])
    np.testing.assert_array_equal(matrix[2], [9.0, 9.0])   # the input is left alone
    np.testing.assert_array_equal(ex.region_mean_rows(matrix[:, 0], region, known),
                                  [1, 3, 2, 5, 5, 5])


@pytest.mark.parametrize("matrix, region, known, error, message", [
    (np.zeros((2, 2)), [0, 1], [True, False], ValueError, "region 1 has no known listing"),
    (np.zeros((2, 2)), [0, 0], [1, 0], TypeError, "known must be a boolean array"),
    (np.zeros((3, 2)), [0, 0], [True, False], ValueError, "one row per listing"),
    (np.zeros((2, 2, 2)), [0, 0], [True, False], ValueError, "1-D or 2-D"),
    (np.zeros((2, 2)), [0.5, 0.0], [True, False], TypeError, "integer ids"),
])
def test_region_mean_rows_refuses_bad_input(matrix, region, known, error, message):
    with pytest.raises(error, match=message):
        ex.region_mean_rows(matrix, np.asarray(region), np.asarray(known))


# --------------------------------------------------------------------------- negatives


def test_neighbour_region_share_by_hand():
    # two regions on two axes; listing 4 of region 1 points along region 0's axis
    vectors = np.array([[1.0, 0.0], [2.0, 0.3], [1.0, -0.1], [0.0, 1.0], [1.0, 0.05], [0.1, 2.0]])
    region = np.array([0, 0, 0, 1, 1, 1])
    # k = 1: listing 4's nearest is region 0's (wrong), and listing 0's or 1's nearest is
    # listing 4 (also wrong); the rest are right
    nearest = [4, 4, 0, 5, 0, 3]
    expected = np.mean(region[nearest] == region)
    assert ex.neighbour_region_share(vectors, region, k=1) == pytest.approx(expected)
    assert ex.neighbour_region_share(vectors * 7.0, region, k=1) == pytest.approx(expected)  # cosine


def test_neighbour_region_share_is_one_for_separate_regions_and_low_when_mixed():
    rng = make_rng(0, "test", "regions")
    region = np.repeat(np.arange(4), 50)
    centres = 10 * np.eye(8)[:4]
    separate = centres[region] + rng.standard_normal((200, 8))
    assert ex.neighbour_region_share(separate, region, k=10) == 1.0
    mixed = rng.standard_normal((200, 8))
    assert ex.neighbour_region_share(mixed, region, k=10) < 0.45   # about 1/4 by chance


@pytest.mark.parametrize("vectors, region, k, message", [
    (np.ones((3, 2)), [0, 0, 1], 3, "more than k = 3"),
    (np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]), [0, 0, 1], 1, "non-zero"),
    (np.array([[1.0, np.nan], [1.0, 0.0], [1.0, 1.0]]), [0, 0, 1], 1, "finite"),
    (np.ones((3, 2)), [0, 0], 1, "one region per row"),
])
def test_neighbour_region_share_refuses_bad_input(vectors, region, k, message):
    with pytest.raises(ValueError, match=message):
        ex.neighbour_region_share(vectors, np.asarray(region), k=k)


def test_same_region_noise_by_hand():
    counts = np.array([1.0, 3.0, 4.0, 0.0])
    region = np.array([0, 0, 1, 1])
    # power 1: contexts and noise alike, region shares 1/2 and 1/2
    assert ex.same_region_noise(counts, region, power=1.0) == pytest.approx(0.5)
    noise = counts ** 0.75
    p0 = (1 + 3 ** 0.75) / noise.sum()
    assert ex.same_region_noise(counts, region) == pytest.approx(0.5 * p0 + 0.5 * (1 - p0))
    assert ex.same_region_noise(counts, np.zeros(4, dtype=int)) == pytest.approx(1.0)


@pytest.mark.parametrize("counts, region, message", [
    ([0.0, 0.0], [0, 1], "not all zero"),
    ([1.0, -1.0], [0, 1], "non-negative"),
    ([1.0, 1.0, 1.0], [0, 1], "one value per listing"),
])
def test_same_region_noise_refuses_bad_input(counts, region, message):
    with pytest.raises(ValueError, match=message):
        ex.same_region_noise(np.asarray(counts), np.asarray(region))


# --------------------------------------------------------------------------- precomputed lists


def test_precomputed_lists_by_hand():
    w_in = np.array([[1.0], [1.0], [1.0], [1.0], [2.0]])
    w_out = np.array([[0.5], [0.1], [0.9], [0.3], [0.0]])
    log_pop = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    region = np.array([0, 0, 0, 0, 1])
    lists = ex.precomputed_lists(w_in, w_out, log_pop, 0.5, region, k=3)
    # listing 0 scores 1: 0.1 + 0.5 = 0.6, 2: 0.9, 3: 0.3 (itself left out)
    np.testing.assert_array_equal(lists[0], [2, 1, 3])
    np.testing.assert_array_equal(lists[2], [1, 0, 3])
    np.testing.assert_array_equal(lists[4], [-1, -1, -1])   # alone in its region
    closed = ex.precomputed_lists(w_in, w_out, log_pop, 0.5, region, k=3,
                                  open_mask=np.array([True, True, False, True, True]))
    np.testing.assert_array_equal(closed[0], [1, 3, -1])


def test_precomputed_lists_match_a_full_sort():
    rng = make_rng(0, "test", "lists")
    region = rng.integers(0, 3, 60)
    w_in, w_out, log_pop = rng.standard_normal((60, 4)), rng.standard_normal((60, 4)), rng.random(60)
    lists = ex.precomputed_lists(w_in, w_out, log_pop, 0.7, region, k=5)
    for v in range(60):
        others = np.flatnonzero((region == region[v]) & (np.arange(60) != v))
        s = w_out[others] @ w_in[v] + 0.7 * log_pop[others]
        np.testing.assert_array_equal(lists[v], others[np.argsort(-s)][:5])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(w_out=np.zeros((4, 2))), ValueError, "w_in and w_out must be"),
    (dict(log_pop=np.zeros(3)), ValueError, "log_pop"),
    (dict(alpha=float("nan")), ValueError, "alpha must be a finite number"),
    (dict(k=0), ValueError, "k must be >= 1"),
    (dict(open_mask=np.ones(5)), ValueError, "open_mask must be one bool per listing"),
])
def test_precomputed_lists_refuse_bad_input(kwargs, error, message):
    args = dict(w_in=np.zeros((5, 2)), w_out=np.zeros((5, 2)), log_pop=np.zeros(5), alpha=0.5,
                region=np.zeros(5, dtype=int), k=2)
    with pytest.raises(error, match=message):
        ex.precomputed_lists(**{**args, **kwargs})


def test_calendar_matrix_and_list_survivors_by_hand():
    blocked = pd.DataFrame({"listing_id": [1, 2, 2], "night": [11, 10, 13]})
    free = ex.calendar_matrix(blocked, 4, first_night=10, n_nights=4)
    np.testing.assert_array_equal(free, [[1, 1, 1, 1], [1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]])
    lists = np.array([[1, 2, 3], [0, 2, 3], [0, 1, -1], [0, 1, 2]])
    price = np.array([100.0, 80.0, 120.0, 200.0])
    requests = [{"listing_id": 0, "check_in": 12, "nights": 2},           # 2 is taken on 13
                {"listing_id": 0, "check_in": 10, "nights": 1, "max_price": 150},
                {"listing_id": 2, "check_in": 10, "nights": 4, "session": [0]},
                {"listing_id": 3, "check_in": 12, "nights": 1, "max_price": None}]
    ok = ex.list_survivors(lists, requests, free, 10, price)
    np.testing.assert_array_equal(ok, [[True, False, True], [True, False, False],
                                       [False, False, False], [True, True, True]])


@pytest.mark.parametrize("request_, message", [
    ({"listing_id": 0, "check_in": 12, "nights": 3}, "runs past the calendar"),
    ({"listing_id": 0, "check_in": 9, "nights": 1}, "check_in must be >= 10"),
    ({"listing_id": 0, "nights": 1}, "a dict with listing_id, check_in and nights"),
    ({"listing_id": 0, "check_in": 10, "nights": 0}, "nights must be >= 1"),
])
def test_list_survivors_refuses_bad_requests(request_, message):
    free = np.ones((2, 4), dtype=bool)
    with pytest.raises(ValueError, match=message):
        ex.list_survivors(np.array([[1], [0]]), [request_], free, 10, np.ones(2))


@pytest.mark.parametrize("blocked, message", [
    (pd.DataFrame({"listing_id": [4], "night": [10]}), "outside 0..3"),
    (pd.DataFrame({"listing_id": [0], "night": [14]}), "outside 10..13"),
    (pd.DataFrame({"listing": [0], "night": [10]}), "columns listing_id and night"),
])
def test_calendar_matrix_refuses_bad_input(blocked, message):
    with pytest.raises(ValueError, match=message):
        ex.calendar_matrix(blocked, 4, 10, 4)


def test_precomputed_survivors_filters_the_nights_lists_for_the_days_requests(world):
    from mlsd.cases.similar_listings import serving

    n = len(world.observed["listings"])
    rng = make_rng(0, "test", "vectors")
    w_in, w_out, log_pop = rng.standard_normal((n, 3)), rng.standard_normal((n, 3)), np.zeros(n)
    ok = ex.precomputed_survivors(world, w_in, w_out, log_pop, 0.5, day=105, nights=30, top=20,
                                  n_requests=40, seed=3)
    assert ok.shape == (40, 20) and ok.dtype == bool and 0 < ok.mean() < 1
    listings = world.observed["listings"]
    blocked = serving.blocked_nights(listings["listing_id"], 105, 30, seed=3)
    lists = ex.precomputed_lists(w_in, w_out, log_pop, 0.5, listings["region"].to_numpy(), 20,
                                 open_mask=listings["created_day"].to_numpy() < 105)
    stays = serving.request_sample(world, 105, n=40, seed=3, k=10, first_night=105, last_night=134)
    expected = ex.list_survivors(lists, stays, ex.calendar_matrix(blocked, n, 105, 30), 105,
                                 listings["price"].to_numpy())
    np.testing.assert_array_equal(ok, expected)
    with pytest.raises(ValueError, match="nights"):
        ex.precomputed_survivors(world, w_in, w_out, log_pop, 0.5, day=105, nights=0, seed=3)


# --------------------------------------------------------------------------- the session


def test_first_clicks_by_hand():
    clicks = pd.DataFrame({"session_id": [5, 5, 5, 5, 6, 6, 7, 7, 7],
                           "position": [0, 1, 2, 3, 0, 1, 0, 1, 2],
                           "listing_id": [10, 11, 12, 11, 20, 21, 30, 31, 32],
                           "booked": [0, 0, 0, 1, 0, 1, 0, 0, 1]})
    two = ex.first_clicks(clicks, 2)
    assert two.index.tolist() == [5, 7] and two.columns.tolist() == ["click_0", "click_1"]
    assert two.to_numpy().tolist() == [[10, 11], [30, 31]]   # session 6 clicked once
    assert ex.first_clicks(clicks, 3).to_numpy().tolist() == [[10, 11, 12]]   # not the booking
    assert ex.first_clicks(clicks, 1, session_ids=[7, 6, 9]).index.tolist() == [7, 6]
    with pytest.raises(ValueError, match="m must be >= 1"):
        ex.first_clicks(clicks, 0)
    with pytest.raises(ValueError, match=r"lack the columns \['position'\]"):
        ex.first_clicks(clicks.drop(columns="position"), 1)


def test_vector_ranks_with_the_viewed_listing_equal_booked_ranks(world, queries):
    style = sl.truth_of(world).style       # a stand-in embedding: the true styles
    log_pop = np.log1p(case.popularity(world, sl.VALIDATION_DAY, "clicks"))
    expected = case.booked_ranks(world, queries, lambda v, c: style[v] @ style[c].T + 0.5 * log_pop[c])
    got = ex.vector_ranks(world, queries, style[queries["viewed"]], style, log_pop, 0.5)
    np.testing.assert_array_equal(got, expected)
    # a query vector of zeros ranks by popularity alone
    flat = ex.vector_ranks(world, queries, np.zeros((len(queries), 6)), style, log_pop, 1.0)
    np.testing.assert_array_equal(flat, case.booked_ranks(
        world, queries, lambda v, c: np.broadcast_to(log_pop[c], (len(v), len(c)))))


def test_vector_ranks_refuses_bad_input(world, queries):
    style = sl.truth_of(world).style
    with pytest.raises(ValueError, match="one row per query"):
        ex.vector_ranks(world, queries, style[:3], style, np.zeros(len(style)), 0.5)
    with pytest.raises(ValueError, match="log_pop one value per listing"):
        ex.vector_ranks(world, queries, style[queries["viewed"]], style, np.zeros(3), 0.5)
    with pytest.raises(TypeError, match="world must be a World"):
        ex.vector_ranks(None, queries, style[queries["viewed"]], style, np.zeros(len(style)), 0.5)


def test_session_posterior_given_one_click_is_the_worlds_oracle(world, queries):
    q = queries.iloc[:12]
    post, effective = ex.session_posterior(world, q["viewed"].to_numpy(), q["day"].to_numpy(),
                                           n_tastes=500)
    oracle = sl.booking_posterior(world, q["viewed"], q["day"], n_tastes=500)
    for (c, p), (c1, p1) in zip(post, oracle):
        np.testing.assert_array_equal(c, c1)
        assert p.shape == (1, len(c))
        np.testing.assert_allclose(p[0], p1, rtol=1e-10, atol=1e-14)
    assert effective.shape == (12, 1) and (effective >= 1).all() and (effective <= 500).all()


def test_session_posterior_weights_the_clicks_in_their_order(world):
    clicks = world.observed["clicks"]
    sessions = world.observed["sessions"].set_index("session_id")
    first = ex.first_clicks(clicks, 2).iloc[:3]
    day = sessions.loc[first.index, "day"].to_numpy()
    post, effective = ex.session_posterior(world, first.to_numpy(), day, n_tastes=500, seed=3)
    truth = sl.truth_of(world)
    tastes = make_rng(3, sl.NAME, "posterior").standard_normal((500, sl.STYLE_DIM))
    for (c, p), (a, b), d, n_eff in zip(post, first.to_numpy(), day, effective):
        u = sl.utilities(truth, tastes, c)                 # by hand: Plackett-Luce, two clicks
        e = np.exp(u)
        ia, ib = np.searchsorted(c, [a, b])
        w = e[:, ia] / e.sum(axis=1) * e[:, ib] / (e.sum(axis=1) - e[:, ia])
        book = np.exp(truth.book_sharpness * u)
        book /= book.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(p[1], w @ book / w.sum(), rtol=1e-9)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert n_eff[1] == pytest.approx(w.sum() ** 2 / (w ** 2).sum())
    swapped, _ = ex.session_posterior(world, first.to_numpy()[:, ::-1], day, n_tastes=500, seed=3)
    assert not np.allclose(swapped[0][1][1], post[0][1][1])   # the order of clicks matters


def test_session_posterior_refuses_bad_input(world):
    listings = world.observed["listings"]
    region = listings["region"].to_numpy()
    a, b = np.flatnonzero(region == 0)[:2]
    other = np.flatnonzero(region == 1)[0]
    late = int(listings["created_day"].idxmax())
    for clicked, day, message in [
        ([[a, other]], 50, "one region"),
        ([[a, a]], 50, "distinct listings"),
        ([[a, len(region)]], 50, "unknown listing id"),
        ([[late]], 0, "not online on its day"),
        ([[0.5, 1.5]], 50, "integer listing ids"),
    ]:
        with pytest.raises(ValueError, match=message):
            ex.session_posterior(world, np.array(clicked), day)
    with pytest.raises(ValueError, match="one per query"):
        ex.session_posterior(world, np.array([[a, b]]), [50, 51])
    with pytest.raises(TypeError, match="integer days"):
        ex.session_posterior(world, np.array([[a, b]]), 50.5)
    with pytest.raises(ValueError, match="n_tastes must be >= 100"):
        ex.session_posterior(world, np.array([[a, b]]), 50, n_tastes=10)
    with pytest.raises(TypeError, match="world must be a World"):
        ex.session_posterior("world", np.array([[a, b]]), 50)
