"""Chapter 12's serving plumbing: the nightly vectors and the per-region index, the live
calendar and the filters, the request sample, the over-fetch table, the skew check, the
session's query, the HTTP app and the arithmetic at scale."""

import httpx
import numpy as np
import pandas as pd
import pytest

from mlsd.cases.similar_listings import serving as case
from mlsd.datasets.world import World
from mlsd.systems.feature_store import FeatureStore
from mlsd.systems.serving import BackgroundServer

# --------------------------------------------------------------------------- a tiny site
#
# Five listings in two regions; listing 4 goes online on day 3. Vectors of width 2: the
# query side is w_in, the candidate side w_out with log_pop appended.

LISTINGS = pd.DataFrame({"listing_id": [0, 1, 2, 3, 4], "region": [0, 0, 0, 1, 0],
                         "room_type": ["house"] * 5, "bedrooms": [1, 2, 3, 1, 2],
                         "price": [100, 200, 300, 150, 120], "rating": [4.0] * 5,
                         "created_day": [0, 0, 0, 0, 3]})
W_IN = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5], [2.0, 0.0]])
W_OUT = np.array([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5], [1.0, 1.0], [3.0, 0.0]])
LOG_POP = np.array([0.0, 1.0, 2.0, 0.0, 0.5])
ALPHA = 0.5


def table():
    return case.vector_table(LISTINGS, W_IN, W_OUT, LOG_POP)


def stored():
    store = FeatureStore(":memory:", shared=True)
    case.write_vectors(store, table(), model_version="v1", alpha=ALPHA, trained_until=2)
    return store


def calendar():
    cal = case.Calendar(10, 19)
    cal.load(pd.DataFrame({"listing_id": [1, 1, 2], "night": [12, 13, 15]}))
    return cal


# --------------------------------------------------------------------------- the nightly job


def test_vector_table_lays_out_both_sides_and_accepts_a_column_of_log_pop():
    t = table()
    assert list(t.columns) == ["listing_id", "region", "created_day", "price", "log_pop",
                               "in_0", "in_1", "out_0", "out_1"]
    assert t.loc[2, ["in_0", "in_1", "out_0", "out_1", "log_pop"]].tolist() == [1, 1, .5, .5, 2]
    same = case.vector_table(LISTINGS, W_IN, W_OUT, LOG_POP[:, None])
    pd.testing.assert_frame_equal(t, same)


@pytest.mark.parametrize("args, message", [
    ((W_IN[:4], W_OUT, LOG_POP), "rows"),
    ((W_IN, W_OUT[:, :1], LOG_POP), "width"),
    ((W_IN, W_OUT, LOG_POP[:4]), "log_pop"),
    ((np.where(W_IN == 0, np.nan, W_IN), W_OUT, LOG_POP), "NaN"),
])
def test_vector_table_refuses_mismatched_or_missing_values(args, message):
    with pytest.raises(ValueError, match=message):
        case.vector_table(LISTINGS, *args)


def test_vector_table_needs_a_frame_with_the_filter_fields_in_id_order():
    with pytest.raises(TypeError, match="DataFrame"):
        case.vector_table(LISTINGS.to_numpy(), W_IN, W_OUT, LOG_POP)
    with pytest.raises(ValueError, match="price"):
        case.vector_table(LISTINGS.drop(columns="price"), W_IN, W_OUT, LOG_POP)
    with pytest.raises(ValueError, match="0..n-1 in order"):
        case.vector_table(LISTINGS.iloc[::-1], W_IN, W_OUT, LOG_POP)


def test_write_vectors_stores_the_table_and_one_model_row():
    store = FeatureStore(":memory:")
    written = case.write_vectors(store, table(), model_version="v1", alpha=ALPHA,
                                 trained_until=2)
    assert written["rows"].tolist() == [5, 1]
    assert case.model_row(store) == {"model_version": "v1", "alpha": 0.5, "dim": 2,
                                     "trained_until": 2}
    with pytest.raises(TypeError, match="FeatureStore"):
        case.write_vectors({}, table(), model_version="v1", alpha=ALPHA, trained_until=2)
    with pytest.raises(ValueError, match="model_version"):
        case.write_vectors(store, table(), model_version="", alpha=ALPHA, trained_until=2)


def test_the_index_holds_the_listings_online_that_day_by_region():
    index = case.RegionIndex(table(), day=2)
    assert len(index) == 4 and 4 not in index and 3 in index
    assert index.regions == [0, 1] and index.size(0) == 3 and index.size(1) == 1
    assert index.region_of(3) == 1
    with pytest.raises(LookupError, match="not in the index"):
        index.region_of(4)                      # online from day 3
    assert len(case.RegionIndex(table(), day=3)) == 5
    assert index.prices([2, 0]).tolist() == [300.0, 100.0]


def test_search_scores_the_inner_product_with_alpha_times_log_pop():
    index = case.RegionIndex(table(), day=3)
    query = np.r_[W_IN[0], ALPHA]                 # viewing listing 0: (1, 0)
    ids, scores = index.search(0, query, 10)      # more than the region holds: all 4
    # by hand: out . (1, 0) + 0.5 log_pop = 1, 0.5, 1.5, 3.25 for listings 0, 1, 2, 4
    assert ids.tolist() == [4, 2, 0, 1]
    np.testing.assert_allclose(scores, [3.25, 1.5, 1.0, 0.5], rtol=1e-6)
    assert index.search(0, query, 2)[0].tolist() == [4, 2]


def test_search_ranks_as_float64_numpy_on_random_vectors():
    rng = np.random.default_rng(0)
    n = 200
    listings = pd.DataFrame({"listing_id": np.arange(n), "region": rng.integers(0, 3, n),
                             "price": np.full(n, 100), "created_day": np.zeros(n, int)})
    w_in, w_out, lp = rng.standard_normal((n, 8)), rng.standard_normal((n, 8)), rng.random(n)
    index = case.RegionIndex(case.vector_table(listings, w_in, w_out, lp), day=0)
    for viewed in range(0, n, 17):
        region = index.region_of(viewed)
        members = np.flatnonzero(listings["region"] == region)
        exact = w_out[members] @ w_in[viewed] + 0.7 * lp[members]
        ids, scores = index.search(region, np.r_[w_in[viewed], 0.7], 10)
        best = np.argsort(-exact, kind="stable")[:10]
        assert ids.tolist() == members[best].tolist()
        np.testing.assert_allclose(scores, exact[best], atol=1e-5)


def test_the_index_from_the_store_is_the_index_from_the_table():
    store = stored()
    a, b = case.RegionIndex.from_store(store, 3), case.RegionIndex(table(), 3)
    query = np.r_[0.3, -1.0, ALPHA]
    for region in (0, 1):
        for x, y in zip(a.search(region, query, 5), b.search(region, query, 5)):
            np.testing.assert_array_equal(x, y)


def test_the_index_refuses_bad_queries_and_days():
    index = case.RegionIndex(table(), day=3)
    with pytest.raises(ValueError, match="3 finite numbers"):
        index.search(0, [1.0, 0.0], 2)
    with pytest.raises(ValueError, match="finite"):
        index.search(0, [np.nan, 0.0, 0.5], 2)
    with pytest.raises(LookupError, match="region"):
        index.search(7, [1.0, 0.0, 0.5], 2)
    with pytest.raises(ValueError, match="n must be >= 1"):
        index.search(0, [1.0, 0.0, 0.5], 0)
    with pytest.raises(ValueError, match="no listing is online"):
        case.RegionIndex(table().assign(created_day=5), day=2)
    with pytest.raises(ValueError, match="vector_table"):
        case.RegionIndex(table().drop(columns="log_pop"), day=2)


def test_query_vector_is_the_mean_of_the_viewed_and_recent_rows_with_alpha():
    store = stored()
    np.testing.assert_array_equal(case.query_vector(store, 0, (), ALPHA), [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(case.query_vector(store, 0, [1, 2]), [2 / 3, 2 / 3, 0.5])
    with pytest.raises(ValueError, match="unknown listing_id"):
        case.query_vector(store, 9, (), ALPHA)
    with pytest.raises(TypeError, match="recent"):
        case.query_vector(store, 0, ["1"], ALPHA)


# --------------------------------------------------------------------------- the calendar


def test_blocked_nights_are_reproducible_in_range_and_near_their_share_and_run():
    ids = np.arange(400)
    a = case.blocked_nights(ids, 100, 200, seed=3, blocked_share=0.3, mean_run=3.0)
    pd.testing.assert_frame_equal(a, case.blocked_nights(ids, 100, 200, seed=3))
    assert a["night"].between(100, 299).all() and set(a["listing_id"]) <= set(ids)
    assert abs(len(a) / (400 * 200) - 0.3) < 0.01
    grid = np.zeros((400, 200), bool)
    grid[a["listing_id"], a["night"] - 100] = True
    starts = grid[:, 1:] & ~grid[:, :-1]
    assert abs(grid[:, 1:].sum() / starts.sum() - 3.0) < 0.15     # mean run length
    assert not case.blocked_nights(ids, 100, 200, seed=4).equals(a)


@pytest.mark.parametrize("kwargs, message", [
    ({"blocked_share": 0.0}, "blocked_share"), ({"blocked_share": 1.0}, "blocked_share"),
    ({"mean_run": 0.5}, "mean_run"), ({"blocked_share": 0.9, "mean_run": 1.0}, "runs longer"),
])
def test_blocked_nights_refuses_impossible_shares(kwargs, message):
    with pytest.raises(ValueError, match=message):
        case.blocked_nights([0, 1], 0, 10, seed=0, **kwargs)


def test_the_calendar_answers_whether_every_night_of_a_stay_is_free():
    cal = calendar()
    assert cal.count() == 3
    assert cal.free([0, 1, 2], 10, 2).tolist() == [True, True, True]      # nights 10, 11
    assert cal.free([0, 1, 2], 11, 2).tolist() == [True, False, True]     # night 12
    assert cal.free([0, 1, 2], 14, 3).tolist() == [True, True, False]     # night 15
    assert cal.free([], 10, 1).tolist() == []
    many = np.arange(1_200)                                  # more than one query's worth
    assert cal.free(many, 12, 1).sum() == 1_199


def test_booking_blocks_the_nights_and_a_second_booking_is_refused():
    cal = calendar()
    cal.book(0, 16, 2)
    assert cal.free([0], 16, 1).tolist() == [False] and cal.free([0], 18, 1).tolist() == [True]
    with pytest.raises(ValueError, match="not free"):
        cal.book(0, 17, 1)


@pytest.mark.parametrize("check_in, nights, message", [
    (9, 1, "in the past"), (19, 2, "last night, 19"), (10, 0, "nights must be >= 1")])
def test_the_calendar_refuses_stays_outside_it(check_in, nights, message):
    with pytest.raises(ValueError, match=message):
        calendar().free([0], check_in, nights)


def test_the_calendar_refuses_rows_outside_it_and_bad_bounds():
    with pytest.raises(ValueError, match="10..19"):
        case.Calendar(10, 19).load(pd.DataFrame({"listing_id": [0], "night": [20]}))
    with pytest.raises(ValueError, match="last_night must be >= 10"):
        case.Calendar(10, 9)


def test_bookable_applies_the_exclusions_the_price_and_the_calendar():
    index, cal = case.RegionIndex(table(), day=3), calendar()
    ids = [0, 1, 2, 4]
    kw = dict(index=index, calendar=cal, check_in=12, nights=1)
    assert case.bookable(ids, **kw).tolist() == [True, False, True, True]
    assert case.bookable(ids, **kw, max_price=150).tolist() == [True, False, False, True]
    assert case.bookable(ids, **kw, exclude=[0, 4]).tolist() == [False, False, True, False]
    assert case.bookable(ids, **kw, max_price=50).tolist() == [False] * 4


def test_answer_items_carry_id_score_and_price():
    index = case.RegionIndex(table(), day=3)
    items = case.answer_items([4, 2], [3.25, 1.123456], index)
    assert items == [{"listing_id": 4, "score": 3.25, "price": 120.0},
                     {"listing_id": 2, "score": 1.1235, "price": 300.0}]
    with pytest.raises(ValueError, match="shape"):
        case.answer_items([4, 2], [3.25], index)


# --------------------------------------------------------------------------- a tiny log
#
# Region 0 holds listings 0, 1, 2 and 4 (online from day 3); region 1 listing 3. Session 0
# (day 1) clicks 0, 1, 2 and books 2; session 1 (day 3) clicks 1, 0 and books 4; session 2
# (day 3, region 1) clicks 3 and books 3.

SESSIONS = pd.DataFrame({"session_id": [0, 1, 2], "day": [1, 3, 3], "region": [0, 0, 1],
                         "booked": [2, 4, 3]})
CLICKS = pd.DataFrame({"session_id": [0, 0, 0, 0, 1, 1, 1, 2, 2],
                       "position": [0, 1, 2, 3, 0, 1, 2, 0, 1],
                       "listing_id": [0, 1, 2, 2, 1, 0, 4, 3, 3],
                       "booked": [0, 0, 0, 1, 0, 0, 1, 0, 1]})


def tiny_world():
    return World(name="tiny", seed=0, summary="", hidden={},
                 observed={"listings": LISTINGS, "sessions": SESSIONS, "clicks": CLICKS})


def test_session_vectors_average_the_viewed_and_recent_rows():
    got = case.session_vectors(W_IN, [0, 2], [(), (1, 3)])
    np.testing.assert_allclose(got, [[1.0, 0.0], [0.5, 2.5 / 3]])
    with pytest.raises(ValueError, match="one tuple per viewed"):
        case.session_vectors(W_IN, [0, 2], [()])
    with pytest.raises(ValueError, match="beyond"):
        case.session_vectors(W_IN, [0], [(9,)])


def test_request_sample_draws_requests_from_the_days_clicks():
    bodies = case.request_sample(tiny_world(), 3, n=3, seed=0, k=4, first_night=3,
                                 last_night=30, price_share=1.0)
    assert bodies == case.request_sample(tiny_world(), 3, n=3, seed=0, k=4, first_night=3,
                                         last_night=30, price_share=1.0)
    assert [(b["listing_id"], b["session"]) for b in bodies] == [(1, []), (0, [1]), (3, [])]
    for b in bodies:
        assert set(b) == {"listing_id", "check_in", "nights", "k", "session", "max_price"}
        assert 3 < b["check_in"] and b["check_in"] + b["nights"] - 1 <= 30 and b["k"] == 4
        price = LISTINGS.loc[b["listing_id"], "price"]
        assert 0.8 * price - 0.5 <= b["max_price"] <= 1.6 * price + 0.5
    none = case.request_sample(tiny_world(), 3, n=3, seed=0, k=4, first_night=3,
                               last_night=30, price_share=0.0)
    assert all("max_price" not in b for b in none)
    with pytest.raises(ValueError, match="fewer than n=4"):
        case.request_sample(tiny_world(), 3, n=4, seed=0, k=4, first_night=3, last_night=30)


def test_passes_in_order_ranks_the_region_and_applies_each_requests_filters():
    index, cal = case.RegionIndex(table(), day=3), calendar()
    requests = [{"listing_id": 0, "check_in": 12, "nights": 2, "k": 2, "session": []},
                {"listing_id": 1, "check_in": 14, "nights": 2, "k": 2, "session": [4],
                 "max_price": 250.0}]
    got = case.passes_in_order(requests, store=stored(), index=index, calendar=cal,
                               alpha=ALPHA)
    # request 0, query (1, 0 | 0.5): 4 (3.25), 2 (1.5), 0 (1, viewed), 1 (0.5); listing 1 is
    # blocked on night 12 -> 4, 2 pass, 1 does not
    # request 1, query (1, 0.5 | 0.5): 4 (3.25, clicked), 2 (1.75), 1 (viewed), 0 (1);
    # listing 2 costs 300 > 250 -> only 0 passes
    assert [p.tolist() for p in got] == [[True, True, False], [False, True]]
    with pytest.raises(TypeError, match="list of request bodies"):
        case.passes_in_order(requests[0], store=stored(), index=index, calendar=cal,
                             alpha=ALPHA)
    with pytest.raises(ValueError, match="needs listing_id"):
        case.passes_in_order([{"listing_id": 0}], store=stored(), index=index, calendar=cal,
                             alpha=ALPHA)


# --------------------------------------------------------------------------- checks


def test_overfetch_table_by_hand():
    passed = [np.array([1, 0, 1, 1, 0, 0], bool),     # 2 pass in the first 2k, 3 in all
              np.array([0, 0, 0, 1], bool),           # 1 in all: short after both
              np.array([1, 1], bool)]                 # the region is smaller than k
    t = case.overfetch_table(passed, 2, [1, 2, 3])
    assert t["candidates fetched"].tolist() == [2, 4, 6]
    # factor 1: the first 2 hold 1, 0, 2 that pass: a second search for requests 0 and 1;
    # factor 2: request 1 is still short, but its 4 candidates were all fetched already
    np.testing.assert_allclose(t["second search (share)"], [2 / 3, 0, 0])
    np.testing.assert_allclose(t["candidates filtered (mean)"],
                               [(2 + 6 + 2 + 4 + 2) / 3, (4 + 4) / 3 + 2 / 3, 12 / 3])
    np.testing.assert_allclose(t["short after both (share)"], 1 / 3)
    with pytest.raises(ValueError, match="boolean"):
        case.overfetch_table([np.array([1, 0])], 2, [1])
    with pytest.raises(ValueError, match="factor"):
        case.overfetch_table(passed, 2, [])


def test_match_offline_tells_identical_from_rounding_from_a_difference():
    ids, scores = [5, 3, 9], [2.0, 1.0, 0.5]
    assert case.match_offline(ids, np.float32(scores), ids, scores) == "identical"
    near = [1.0, 1.0 + 1e-7, 0.5]                   # 5 and 3 within float32's reach
    assert case.match_offline([5, 3, 9], near, [3, 5, 9], [near[1], near[0], 0.5]) == \
        "reordered within rounding"
    with pytest.raises(AssertionError, match="differ"):
        case.match_offline([5, 3, 8], scores, ids, scores)
    with pytest.raises(AssertionError, match="beyond rounding"):
        case.match_offline([3, 5, 9], [1.0, 2.0, 0.5], ids, scores)
    with pytest.raises(AssertionError, match="more than tol"):
        case.match_offline(ids, [2.1, 1.0, 0.5], ids, scores)


def offline_scores(viewed, candidates):
    return W_OUT[candidates] @ W_IN[viewed] + ALPHA * LOG_POP[candidates]


def test_skew_check_counts_identical_lists_and_raises_on_a_difference():
    index, queries = case.RegionIndex(table(), day=3), pd.DataFrame({"viewed": [0, 2, 3],
                                                                       "region": [0, 0, 1]})
    # viewed 0: 4 (3.25), 2 (1.5); viewed 2: 4 (3.25), 1 (2.5); region 1 holds listing 3 alone
    got = case.skew_check(tiny_world(), queries, store=stored(), index=index, k=2,
                          offline=offline_scores)
    assert got.to_dict() == {"identical": 3, "reordered within rounding": 0}
    assert got.name == "served top 2 vs offline"
    with pytest.raises(AssertionError):
        case.skew_check(tiny_world(), queries, store=stored(), index=index, k=2,
                        offline=lambda v, c: -offline_scores(v, c))
    with pytest.raises(ValueError, match="columns viewed and region"):
        case.skew_check(tiny_world(), queries[["viewed"]], store=stored(), index=index,
                        k=2, offline=offline_scores)
    with pytest.raises(TypeError, match="callable"):
        case.skew_check(tiny_world(), queries, store=stored(), index=index, k=2, offline=1)
    with pytest.raises(ValueError, match="scores for"):
        case.skew_check(tiny_world(), queries, store=stored(), index=index, k=2,
                        offline=lambda v, c: np.zeros(1))


# --------------------------------------------------------------------------- the app


CALLS = []


def similar_stub(listing_id, check_in, nights, k, max_price, session):
    if listing_id == 2:
        raise RuntimeError("boom")
    CALLS.append((listing_id, check_in, nights, k, max_price, session))
    return np.array([0, 3]), np.array([1.5, 0.25], dtype=np.float32)


@pytest.fixture(scope="module")
def client():
    app = case.create_similar_app(similar_stub, index=case.RegionIndex(table(), day=2),
                                  calendar=calendar(), max_k=5, max_nights=7, max_session=3,
                                  model_version="v1")
    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as http:
            yield http


GOOD = {"listing_id": 1, "check_in": 12, "nights": 2, "k": 3}


def test_the_app_answers_a_good_request(client):
    answer = client.post("/similar", json={**GOOD, "max_price": 150, "session": [0]})
    assert answer.status_code == 200
    assert answer.json() == {"listing_id": 1, "model_version": "v1", "similar": [
        {"listing_id": 0, "score": 1.5, "price": 100.0},
        {"listing_id": 3, "score": 0.25, "price": 150.0}]}
    assert CALLS[-1] == (1, 12, 2, 3, 150.0, [0])
    assert client.post("/similar", json=GOOD).status_code == 200
    assert CALLS[-1] == (1, 12, 2, 3, None, [])


@pytest.mark.parametrize("change, status, words", [
    ({"listing_id": 4}, 404, "listing 4 is not in the index"),       # online from day 3
    ({"session": [0, 9]}, 404, "listing 9"),
    ({"nights": 0}, 422, "nights"), ({"nights": 8}, 422, "nights"),
    ({"k": 0}, 422, "k"), ({"k": 6}, 422, "k"),
    ({"listing_id": "1"}, 422, "listing_id"), ({"listing_id": 1.0}, 422, "listing_id"),
    ({"check_in": 9}, 422, "in the past"), ({"check_in": 19}, 422, "last night"),
    ({"max_price": -1}, 422, "max_price"), ({"session": [0, 1, 2, 3]}, 422, "session"),
    ({"colour": "blue"}, 422, "colour"),
])
def test_the_app_answers_malformed_requests_with_a_4xx_naming_the_fault(client, change, status,
                                                                        words):
    answer = client.post("/similar", json={**GOOD, **change})
    assert answer.status_code == status
    assert words in case.fault(answer.json())
    assert client.post("/similar", json=GOOD).status_code == 200      # still serving


def test_malformed_requests_each_get_a_4xx(client):
    body = {**GOOD, "max_price": 150.0}
    bad = case.malformed_requests(body, calendar=calendar(), unknown_listing=4)
    assert len(bad) == 7 and all("max_price" not in b or b["max_price"] < 0
                                 for b in bad.values())
    assert bad["check-in in the past"]["check_in"] == 9
    answers = {name: client.post("/similar", json=b) for name, b in bad.items()}
    shown = case.answer_table({"good": client.post("/similar", json=body), **answers})
    assert shown.loc["good"].tolist() == [200, ""]
    assert shown.loc["unknown listing"].tolist() == [404, "listing 4 is not in the index"]
    assert (shown["status"].drop("unknown listing").iloc[1:] == 422).all()
    assert "past" in shown.loc["check-in in the past", "detail"]
    with pytest.raises(ValueError, match="body must be"):
        case.malformed_requests({"k": 1}, calendar=calendar(), unknown_listing=4)
    with pytest.raises(TypeError, match="Calendar"):
        case.malformed_requests(GOOD, calendar=None, unknown_listing=4)
    with pytest.raises(TypeError, match="not HTTP responses"):
        case.answer_table({"x": {"status": 200}})
    with pytest.raises(ValueError, match="non-empty"):
        case.answer_table({})


def test_the_app_hides_an_internal_error_behind_a_500(client):
    answer = client.post("/similar", json={**GOOD, "listing_id": 2})
    assert answer.status_code == 500 and "boom" not in answer.text
    assert client.get("/health").json() == {"status": "ok", "model_version": "v1"}


def test_create_similar_app_checks_its_arguments():
    index, cal = case.RegionIndex(table(), day=2), calendar()
    with pytest.raises(TypeError, match="callable"):
        case.create_similar_app(None, index=index, calendar=cal)
    with pytest.raises(TypeError, match="RegionIndex"):
        case.create_similar_app(similar_stub, index=None, calendar=cal)
    with pytest.raises(ValueError, match="max_k"):
        case.create_similar_app(similar_stub, index=index, calendar=cal, max_k=0)


def test_fault_reads_both_kinds_of_detail():
    assert case.fault({"detail": "listing 4 is not in the index"}) == \
        "listing 4 is not in the index"
    assert case.fault({"detail": [{"loc": ["body", "k"], "msg": "too big"}]}) == "k: too big"
    with pytest.raises(ValueError, match="detail"):
        case.fault({"similar": []})


# --------------------------------------------------------------------------- scale


def test_scan_timing_times_both_ways():
    times = case.scan_timing(2_000, 100, 4, seed=0, repeats=2)
    assert set(times) == {"one index, region selector", "the region's own index"}
    assert all(t > 0 and np.isfinite(t) for t in times.values())
    with pytest.raises(ValueError, match="exceeds"):
        case.scan_timing(10, 20, 4, seed=0)


def test_scale_numbers_by_hand():
    got = case.scale_numbers(1_000_000, 15, 10_000, 1_000, 5.0)
    assert got == pytest.approx({"candidate side (GB)": 0.064, "query side (GB)": 0.06,
                                 "ms per request (largest region)": 0.05,
                                 "ms per request (one flat index)": 5.0,
                                 "cores scanning (largest region)": 0.05,
                                 "cores scanning (one flat index)": 5.0})
    with pytest.raises(ValueError, match="exceeds"):
        case.scale_numbers(10, 15, 20, 1_000, 5.0)
    with pytest.raises(ValueError, match="> 0"):
        case.scale_numbers(10, 15, 5, 0, 5.0)


def test_full_scale_names_the_sizes_and_scales_the_timed_scan():
    got = case.full_scale(20_000, 100, 500, 3, 1_000, seed=0, repeats=2)
    assert {k: got[k] for k in ("full", "full_regions", "mean_region", "largest",
                                "largest_share", "scan_rows")} == {
        "full": 20_000, "full_regions": 100, "mean_region": 200, "largest": 500,
        "largest_share": 0.025, "scan_rows": 2_000}
    ns = got["scan_own"] * 1e6 / 500                    # per vector, from the timed scan
    assert got["gb_out"] == pytest.approx(20_000 * 4 * 4 / 1e9)
    assert got["ms_flat"] == pytest.approx(20_000 * ns / 1e6)
    assert got["cores_largest"] == pytest.approx(1_000 * 500 * ns / 1e9)
    assert got["scan_selector"] > 0
    with pytest.raises(ValueError, match="a tenth"):
        case.full_scale(20_000, 100, 5_000, 3, 1_000, seed=0)
    with pytest.raises(ValueError, match="n_regions"):
        case.full_scale(20, 100, 1, 3, 1_000, seed=0)

