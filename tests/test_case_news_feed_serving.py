"""Chapter 13's serving plumbing: the stores and their batch job, the request's reads against
the offline features (a hand-made world and the real one), the stream job, the session's
pages, the HTTP app, the two-pass scores and the arithmetic at scale."""

import time

import httpx
import numpy as np
import pandas as pd
import pytest

from mlsd.cases.news_feed import core
from mlsd.cases.news_feed import serving as case
from mlsd.datasets import load
from mlsd.datasets import news_feed as nf
from mlsd.systems.serving import BackgroundServer, StageClock

# --------------------------------------------------------------------------- a tiny world
#
# Viewer 0 sees authors 0 (a friend) and 1 (a page); viewer 1 sees authors 0 and 2. Six
# posts; the batch job runs at day 4, so post 5 (day 4.2) is not written, and a request at
# day 4 sees the posts of days [2, 4): posts 2, 3 and 4. Viewer 1 was shown post 2.

CONNECTIONS = pd.DataFrame({"user_id": [0, 0, 1, 1], "author_id": [0, 1, 0, 2],
                            "kind": ["friend", "follows", "friend", "friend"],
                            "contacts": [3, 0, 1, 5]})
POSTS = pd.DataFrame({"post_id": [0, 1, 2, 3, 4, 5], "author_id": [0, 1, 0, 2, 1, 0],
                      "topic": ["news", "sports", "music", "food", "news", "humour"],
                      "media": ["text", "photo", "link", "video", "text", "photo"],
                      "created": [0.5, 1.2, 2.5, 3.0, 3.5, 4.2]})
_ROWS = [  # user, post, time, click, like, comment, share, hide
    (0, 0, 1.0, 1, 1, 0, 0, 0),
    (0, 1, 1.5, 0, 0, 0, 0, 1),
    (1, 0, 1.1, 0, 0, 1, 0, 0),
    (1, 2, 2.8, 1, 0, 0, 1, 0),
]
LOG = pd.DataFrame(_ROWS, columns=["user_id", "post_id", "time", *nf.REACTIONS]).assign(dwell=5.0)
AS_OF = 4.0


def tiny_store(log=LOG):
    store = case.FeedStore()
    case.write_feed_store(store, log, POSTS, CONNECTIONS, as_of=AS_OF)
    return store


def offline(log, rows):
    """The chapter's offline features of ``rows`` (user_id, post_id, time)."""
    return core.feed_features(core.with_posts(log, POSTS), core.with_posts(rows, POSTS),
                              CONNECTIONS)


# --------------------------------------------------------------------------- the store


def test_select_reads_by_equality_list_and_range_in_key_order():
    store = tiny_store()
    posts = store.select("posts", ["post_id"], among={"author_id": [1, 0]},
                         within={"created": (1.0, 3.5)})
    assert posts["post_id"].tolist() == [2, 1]      # key order: author 0 first, then 1
    one = store.select("connections", ["author_id", "kind"], equal={"user_id": 1})
    assert one.values.tolist() == [[0, "friend"], [2, "friend"]]
    none = store.select("posts", ["post_id", "topic"], among={"author_id": []})
    assert none.empty and list(none.columns) == ["post_id", "topic"]
    assert len(store.timings["posts"]) == 1          # the empty list never reached SQLite


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(columns=["nope"]), ValueError, "unknown columns"),
    (dict(columns=["post_id"], equal={"nope": 1}), ValueError, "unknown columns"),
    (dict(columns=["post_id"], within={"created": (1.0,)}), ValueError, "low, high"),
    (dict(columns=["post_id"], within={"created": (1.0, float("nan"))}), ValueError, "finite"),
    (dict(columns=["post_id"], among={"author_id": [[1, 2]]}), ValueError, "1-D"),
    (dict(columns=["post_id"], equal={"author_id": [1, 2]}), ValueError, "one value"),
])
def test_select_refuses_unknown_columns_and_bad_conditions(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny_store().select("posts", **kwargs)


def test_the_batch_job_writes_every_table_with_hand_worked_counts():
    store = tiny_store()
    written = case.write_feed_store(store, LOG, POSTS, CONNECTIONS, as_of=AS_OF)
    assert list(written.index) == list(case.FEED_TABLES)
    assert written.loc["posts", "rows"] == 5                      # post 5 is in the future
    assert written.loc["seen", "rows"] == 1                       # only (1, 2) is young
    pair = store.select("pair_counts", ["user_id", "author_id", *core.COUNTED, "n"])
    assert pair.values.tolist() == [  # click like comment share hide engage n
        [0, 0, 1, 1, 0, 0, 0, 2, 1], [0, 1, 0, 0, 0, 0, 1, 0, 1], [1, 0, 1, 0, 1, 1, 0, 3, 2]]
    topic = store.select("user_topic_counts", ["topic", "n"], equal={"user_id": 1})
    assert topic.values.tolist() == [["music", 1], ["news", 1]]


def test_the_batch_job_refuses_bad_inputs():
    with pytest.raises(TypeError, match="FeedStore"):
        case.write_feed_store(object(), LOG, POSTS, CONNECTIONS, as_of=AS_OF)
    with pytest.raises(ValueError, match="lacks the columns"):
        case.write_feed_store(case.FeedStore(), LOG.drop(columns="hide"), POSTS, CONNECTIONS,
                              as_of=AS_OF)
    with pytest.raises(ValueError, match="as_of"):
        case.write_feed_store(case.FeedStore(), LOG, POSTS, CONNECTIONS, as_of=float("inf"))


# --------------------------------------------------------------------------- the request


def test_gather_candidates_is_the_window_less_what_was_seen():
    store = tiny_store()
    mine = case.gather_candidates(store, 0, AS_OF)
    assert mine["post_id"].tolist() == [2, 4]
    assert mine[["kind", "contacts"]].values.tolist() == [["friend", 3], ["follows", 0]]
    assert case.gather_candidates(store, 1, AS_OF)["post_id"].tolist() == [3]  # 2 was seen
    assert case.gather_candidates(store, 0, 3.0)["post_id"].tolist() == [1, 2]
    assert case.gather_candidates(store, 7, AS_OF).empty        # no connections, no feed
    with pytest.raises(ValueError, match="window"):
        case.gather_candidates(store, 0, AS_OF, window=0)
    with pytest.raises(TypeError, match="user_id"):
        case.gather_candidates(store, "0", AS_OF)


def test_served_features_equal_the_offline_ones_to_the_bit():
    store = tiny_store()
    rows = pd.concat([case.gather_candidates(store, u, AS_OF) for u in (0, 1)],
                     ignore_index=True)
    served = case.served_features(store, rows)
    expected = offline(LOG, rows[["user_id", "post_id", "time"]])
    pd.testing.assert_frame_equal(served, expected, check_exact=True)
    assert served.loc[0, "pair_n"] == np.log1p(1)               # viewer 0 with author 0
    assert served.loc[0, "pair_like"] == (1 + 0.1) / 2
    assert served.loc[1, "post_n"] == 0 and served.loc[1, "post_click"] == 0.1


def test_served_features_refuse_rows_before_their_post():
    rows = case.gather_candidates(tiny_store(), 0, AS_OF).assign(time=2.0)
    with pytest.raises(ValueError, match="before its post"):
        case.served_features(tiny_store(), rows)


def test_the_stream_job_equals_the_batch_job_and_hides_what_was_shown():
    store = tiny_store()
    shown = pd.DataFrame({"user_id": [0, 0], "post_id": [2, 4], "time": [4.5, 4.5],
                          "like": [1, 0], "hide": [0, 1]})
    added = case.record_impressions(store, shown)
    assert added.loc["seen", "rows updated"] == 2
    assert case.gather_candidates(store, 0, 4.6).empty
    # the counters now hold what a batch job over the longer log writes
    longer = pd.concat([LOG, shown.assign(click=0, comment=0, share=0, dwell=1.0)],
                       ignore_index=True)
    batch = case.FeedStore()
    case.write_feed_store(batch, longer, POSTS, CONNECTIONS, as_of=5.0)
    for prefix, key in core.HISTORY_KEYS.items():
        columns = [*key, *core.COUNTED, "n"]
        live = store.select(f"{prefix}_counts", columns)
        pd.testing.assert_frame_equal(live, batch.select(f"{prefix}_counts", columns))


def test_the_stream_job_refuses_replays_and_unknown_posts_without_writing():
    store = tiny_store()
    before = store.select("user_counts", ["user_id", "n"])
    with pytest.raises(ValueError, match="already shown post 2"):
        case.record_impressions(store, pd.DataFrame({"user_id": [1, 1], "post_id": [3, 2],
                                                     "time": [4.1, 4.1]}))
    with pytest.raises(ValueError, match="post 5 is not in the store"):
        case.record_impressions(store, pd.DataFrame({"user_id": [0], "post_id": [5],
                                                     "time": [4.3]}))
    with pytest.raises(ValueError, match="0 or 1"):
        case.record_impressions(store, pd.DataFrame({"user_id": [0], "post_id": [2],
                                                     "time": [4.1], "like": [2]}))
    with pytest.raises(ValueError, match="twice"):
        case.record_impressions(store, pd.DataFrame({"user_id": [0, 0], "post_id": [2, 2],
                                                     "time": [4.1, 4.1]}))
    pd.testing.assert_frame_equal(store.select("user_counts", ["user_id", "n"]), before)


def test_a_new_post_reaches_the_next_request_once_written():
    store = tiny_store()
    assert 5 not in case.gather_candidates(store, 0, 4.3)["post_id"].tolist()
    assert case.add_posts(store, POSTS[POSTS["post_id"] == 5]) == 1
    assert 5 in case.gather_candidates(store, 0, 4.3)["post_id"].tolist()
    with pytest.raises(ValueError, match="already in the store"):
        case.add_posts(store, POSTS[POSTS["post_id"] == 5])


def test_the_real_world_serves_what_the_chapter_scores():
    world = load("news_feed", seed=0)
    posts, connections = world.observed["posts"], world.observed["connections"]
    log = core.with_posts(world.observed["impressions"], posts)
    store = case.FeedStore()
    case.write_feed_store(store, log, posts, connections, as_of=nf.TEST_DAY)
    requests = nf.feed_requests(world)
    viewers = [3, 500, 1999]
    wanted = core.with_posts(requests[requests["user_id"].isin(viewers)].reset_index(drop=True),
                             posts)
    rows = pd.concat([case.gather_candidates(store, u, nf.TEST_DAY) for u in viewers],
                     ignore_index=True)
    assert rows[["user_id", "post_id"]].values.tolist() == \
        wanted[["user_id", "post_id"]].values.tolist()
    pd.testing.assert_frame_equal(case.served_features(store, rows),
                                  core.feed_features(log, wanted, connections), check_exact=True)


def test_rank_feed_times_four_stages_and_sorts_by_score():
    store, clock = tiny_store(), StageClock()
    ranked = case.rank_feed(store, lambda X: -X["age_hours"].to_numpy(), 0, AS_OF, clock)
    assert ranked["post_id"].tolist() == [4, 2]                  # the younger first
    assert ranked["value"].tolist() == [-12.0, -36.0]
    assert list(clock.ms) == ["candidates (3 reads)", "features (7 counter reads)",
                              "value (the heads)", "sort"]
    nothing = case.rank_feed(store, lambda X: 1 / 0, 7, AS_OF)   # no candidate: no scoring
    assert nothing.empty and "value" in nothing
    with pytest.raises(ValueError, match="1 values for 2 candidates"):
        case.rank_feed(store, lambda X: np.zeros(1), 0, AS_OF)


def test_next_post_is_the_first_by_a_connection_at_or_after_a_time():
    assert case.next_post(POSTS, CONNECTIONS, 1, after=2.6)["post_id"] == 3
    assert case.next_post(POSTS, CONNECTIONS, 0, after=3.0)["post_id"] == 4
    with pytest.raises(LookupError, match="no connection of viewer 1"):
        case.next_post(POSTS, CONNECTIONS, 1, after=4.3)


# --------------------------------------------------------------------------- skew


def _served_and_offline():
    store = tiny_store()
    rows = pd.concat([case.gather_candidates(store, u, AS_OF) for u in (0, 1)],
                     ignore_index=True)
    X = case.served_features(store, rows)
    value = X["pair_n"].to_numpy() + X["age_hours"].to_numpy()
    served = rows[["user_id", "post_id"]].join(X).assign(value=value).iloc[::-1]
    return served, rows[["user_id", "post_id"]], X, value


def test_skew_table_is_zero_when_served_equals_offline_in_any_order():
    served, candidates, X, value = _served_and_offline()
    table = case.skew_table(served, candidates, X, value)
    assert table.iloc[0].tolist() == [2, 3, True, 0.0, 0.0]


def test_skew_table_measures_a_difference_and_refuses_misaligned_inputs():
    served, candidates, X, value = _served_and_offline()
    drift = served.assign(pair_like=served["pair_like"] + 0.25, value=served["value"] - 1)
    table = case.skew_table(drift, candidates, X, value)
    assert table["largest feature difference"].iloc[0] == pytest.approx(0.25)
    assert table["largest value difference"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="served candidates"):
        case.skew_table(served.iloc[:-1], candidates, X, value)
    with pytest.raises(ValueError, match="aligned"):
        case.skew_table(served, candidates, X, value[:-1])


# --------------------------------------------------------------------------- pages


def items(n):
    return [{"post_id": i, "author_id": 0, "value": float(-i)} for i in range(n)]


def test_pages_walk_the_cached_list_without_repeats():
    pages = case.FeedPages()
    cursor, seen = pages.open(3, items(25)), []
    while cursor is not None:
        page, cursor = pages.page(3, cursor, 10)
        seen += [item["post_id"] for item in page]
    assert seen == list(range(25))
    assert pages.page(3, "1.20", 10) == (items(25)[20:], None)
    assert pages.page(3, "1.25", 10) == ([], None)


@pytest.mark.parametrize("user, cursor, error, message", [
    (3, "1-10", ValueError, "<session>.<offset>"),
    (3, 110, ValueError, "<session>.<offset>"),
    (3, "1.26", ValueError, "past the end"),
    (4, "1.10", LookupError, "no session 1 of viewer 4"),
    (3, "9.0", LookupError, "no session 9"),
])
def test_pages_refuse_bad_cursors(user, cursor, error, message):
    pages = case.FeedPages()
    pages.open(3, items(25))
    with pytest.raises(error, match=message):
        pages.page(user, cursor, 10)


def test_pages_forget_the_least_recently_used_session():
    pages = case.FeedPages(max_sessions=2)
    first, second = pages.open(0, items(3)), pages.open(1, items(3))
    pages.page(0, first, 1)                       # session 1 is used again
    pages.open(2, items(3))                       # so session 2 goes
    assert len(pages) == 2 and pages.page(0, first, 1)[0] == items(1)
    with pytest.raises(LookupError, match="expired"):
        pages.page(1, second, 1)


def test_feed_items_shape_the_answer():
    ranked = pd.DataFrame({"post_id": [7, 3], "author_id": [1, 2], "value": [0.123456, -1.0]})
    assert case.feed_items(ranked) == [{"post_id": 7, "author_id": 1, "value": 0.1235},
                                       {"post_id": 3, "author_id": 2, "value": -1.0}]
    with pytest.raises(ValueError, match="value"):
        case.feed_items(ranked.drop(columns="value"))


# --------------------------------------------------------------------------- the app


def test_the_app_pages_answers_bad_requests_with_4xx_and_keeps_serving():
    pages = case.FeedPages()

    def rank(user):
        if user == 9:
            raise RuntimeError("boom")
        return pd.DataFrame({"post_id": range(15), "author_id": 0, "value": -np.arange(15.0)})

    app = case.create_news_feed_app(rank, pages, n_users=10, max_page_size=20)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                       trust_env=False) as client:
        first = client.post("/feed", json={"user_id": 2}).json()
        assert [p["post_id"] for p in first["posts"]] == list(range(10))
        last = client.post("/feed", json={"user_id": 2, "cursor": first["cursor"]}).json()
        assert [p["post_id"] for p in last["posts"]] == list(range(10, 15))
        assert last["cursor"] is None
        bad = case.malformed_feed_requests(2, first["cursor"], other_user=3, n_users=10,
                                           max_page_size=20)
        answers = {name: client.post("/feed", json=body) for name, body in bad.items()}
        answers["ranking fails"] = client.post("/feed", json={"user_id": 9})
        answers["cursor as a number"] = client.post("/feed", json={"user_id": 2, "cursor": 1})
        table = case.feed_answer_table(answers)
        assert client.get("/health").status_code == 200
    assert table["status"].to_dict() == {
        "unknown viewer": 404, "viewer id as text": 422, "page_size = 0": 422,
        "page_size = 21": 422, "not a cursor": 422, "cursor past the end": 422,
        "unknown session": 404, "another viewer's cursor": 404, "ranking fails": 500,
        "cursor as a number": 422}
    assert table.loc["unknown viewer", "detail"] == "unknown viewer 10"
    assert table.loc["another viewer's cursor", "detail"].startswith("no session 1 of viewer 3")
    assert (table["posts"] == 0).all()


def test_the_app_and_its_helpers_refuse_bad_arguments():
    with pytest.raises(TypeError, match="callable"):
        case.create_news_feed_app(None, case.FeedPages(), n_users=3)
    with pytest.raises(TypeError, match="FeedPages"):
        case.create_news_feed_app(lambda u: [], {}, n_users=3)
    with pytest.raises(ValueError, match="exceeds max_page_size"):
        case.create_news_feed_app(lambda u: [], case.FeedPages(), n_users=3, page_size=60)
    with pytest.raises(ValueError, match="issued"):
        case.malformed_feed_requests(0, "abc", other_user=1, n_users=3)
    with pytest.raises(ValueError, match="differ"):
        case.malformed_feed_requests(0, "1.0", other_user=0, n_users=3)
    with pytest.raises(TypeError, match="not HTTP responses"):
        case.feed_answer_table({"x": 200})


# --------------------------------------------------------------------------- scale


def test_two_pass_scores_keep_the_light_best_and_order_them_by_heavy():
    request = np.array([0, 0, 0, 0, 1, 1])
    light = np.array([4.0, 3.0, 2.0, 1.0, 1.0, 2.0])
    heavy = np.array([0.0, 9.0, 100.0, 5.0, 1.0, 0.0])
    s = case.two_pass_scores(request, light, heavy, keep=2)
    assert np.isfinite(s).all()
    assert list(np.argsort(-s[:4])) == [1, 0, 2, 3]   # kept 0 and 1 by heavy, then light
    assert list(np.argsort(-s[4:])) == [0, 1]         # both kept: heavy orders them
    everything = case.two_pass_scores(request, light, heavy, keep=4)
    for r in (0, 1):   # keeping every candidate is the heavy ranking
        at = request == r
        assert list(np.argsort(-everything[at])) == list(np.argsort(-heavy[at], kind="stable"))
    with pytest.raises(ValueError, match="finite"):
        case.two_pass_scores(request, light, heavy * np.nan, keep=2)
    with pytest.raises(ValueError, match="one length"):
        case.two_pass_scores(request, light[:3], heavy, keep=2)


def test_call_cost_splits_a_fixed_cost_from_a_cost_per_row():
    def score(frame):
        time.sleep(0.002)                          # 2 ms a call, plus a little per row
        return frame["a"].to_numpy() * 2

    X = pd.DataFrame({"a": np.arange(2_000.0)})
    cost = case.call_cost(score, X, repeats=2)
    assert cost["per_call_ms"] >= 2.0
    assert 0 <= cost["per_candidate_ms"] < 0.01
    with pytest.raises(TypeError, match="callable"):
        case.call_cost(3, X)
    with pytest.raises(ValueError, match="shape"):
        case.call_cost(lambda frame: np.zeros(3), X)
    with pytest.raises(ValueError, match="two rows"):
        case.call_cost(score, X.head(1))


def test_feed_scale_arithmetic():
    out = case.feed_scale(peak_qps=1_000, connections=100, posts_per_day=2, window_days=2,
                          heavy_ms=0.1, light_ms=0.001, second_pass=50)
    assert out["candidates"] == 400 and out["counter_reads"] == 400 * 7
    assert out["ms_one_pass"] == pytest.approx(40) and out["cores_one_pass"] == pytest.approx(40)
    assert out["ms_two_pass"] == pytest.approx(0.4 + 5)
    assert out["cores_two_pass"] == pytest.approx(5.4)
    assert case.feed_scale(peak_qps=1, connections=1, posts_per_day=1, window_days=1,
                           heavy_ms=1, light_ms=0, second_pass=5)["ms_two_pass"] == 1
    with pytest.raises(ValueError, match="peak_qps must be > 0"):
        case.feed_scale(peak_qps=0, connections=100, posts_per_day=2, window_days=2,
                        heavy_ms=0.1, light_ms=0.001, second_pass=50)
    with pytest.raises(ValueError, match="light_ms must be >= 0"):
        case.feed_scale(peak_qps=1, connections=100, posts_per_day=2, window_days=2,
                        heavy_ms=0.1, light_ms=-1, second_pass=50)
