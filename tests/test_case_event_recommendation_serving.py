"""Chapter 10's serving plumbing: the feed's candidates, the nightly tables, the live store,
the request's features (equal to the point-in-time ones) and the HTTP app."""

import threading

import httpx
import numpy as np
import pandas as pd
import pytest

from mlsd.cases import event_recommendation as case
from mlsd.systems.serving import BackgroundServer

# --------------------------------------------------------------------------- a tiny world
#
# Three users at (0, 0), (3, 4) and (10, 0); two hosts; four events. User 1's registrations
# count for user 0 (friends: user_id 1 -> friend_id 0), and user 0's for user 1.

HOME = np.array([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]])
DECLARED = np.array([[1.0, 0, 1], [0, 1, 0], [0, 0, 0]])          # 3 categories
CATALOG = pd.DataFrame({
    "host_id": [0, 0, 1, 1], "category": np.array([0, 1, 2, 0], dtype=np.int8),
    "slot": np.array([0, 1, 1, 0], dtype=np.int8), "log_price": [0.0, 1.5, 2.0, 0.5],
    "start_day": [5, 12, 14, 15], "created_day": [0, 6, 8, 9],
    "x_km": [0.0, 6.0, 3.0, 0.0], "y_km": [0.0, 8.0, 0.0, 30.0]},
    index=pd.Index([0, 1, 2, 3], name="event_id"))
FRIENDS = pd.DataFrame({"user_id": [1, 0], "friend_id": [0, 1]})
FOLLOWS = pd.DataFrame({"user_id": [0], "host_id": [1]})
LOG = pd.DataFrame({
    "day": [1, 2, 3, 7, 9, 9, 10],
    "user_id": [0, 1, 0, 1, 2, 0, 1],
    "event_id": [0, 0, 1, 1, 2, 2, 2],
    "registered": [1, 1, 0, 1, 1, 0, 1]})
DAY = 10   # the night before day 10: the row of day 10 is not known yet


def tables():
    return case.nightly_tables(LOG, CATALOG, HOME, DECLARED, FRIENDS, DAY)


def stored():
    store = case.SharedFeatureStore()
    case.write_nightly(store, tables())
    return store


def live_store():
    live = case.LiveStore()
    reg = LOG.loc[(LOG["registered"] == 1) & (LOG["day"] < DAY), ["user_id", "event_id", "day"]]
    live.load(reg, FRIENDS, FOLLOWS)
    return live


# --------------------------------------------------------------------------- candidates


def test_open_events_are_created_in_the_week_before_and_start_after():
    events = CATALOG.reset_index()
    assert case.open_events(events, 10).tolist() == [1, 2, 3]   # 0 started on day 5
    assert case.open_events(events, 14).tolist() == [3]          # 2 starts on day 14
    assert case.open_events(events, 10, window=2).tolist() == [2, 3]
    with pytest.raises(ValueError, match="lacks the columns"):
        case.open_events(events.drop(columns="start_day"), 10)
    with pytest.raises(TypeError, match="day must be an integer"):
        case.open_events(events, 10.0)


def test_index_finds_the_events_within_the_radius_boundary_included():
    index = case.CandidateIndex(CATALOG)
    assert len(index) == 4
    assert index.within(0.0, 0.0, 10.0).tolist() == [0, 1, 2]   # event 1 at exactly 10 km
    assert index.within(0.0, 0.0, 9.99).tolist() == [0, 2]
    assert index.within(0.0, 30.0, 1.0).tolist() == [3]
    assert index.within(100.0, 100.0, 1.0).tolist() == []


def test_index_agrees_with_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    places = pd.DataFrame(rng.uniform(0, 60, (500, 2)), columns=["x_km", "y_km"],
                          index=pd.Index(rng.permutation(500) + 1000))
    index = case.CandidateIndex(places)
    for x, y in rng.uniform(0, 60, (20, 2)):
        d = np.hypot(x - places["x_km"], y - places["y_km"])
        assert index.within(x, y, 15.0).tolist() == sorted(places.index[d <= 15.0])


def test_index_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        case.CandidateIndex(CATALOG.iloc[:0])
    with pytest.raises(ValueError, match="lacks the columns"):
        case.CandidateIndex(CATALOG.drop(columns="y_km"))
    with pytest.raises(TypeError, match="DataFrame"):
        case.CandidateIndex(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="missing or infinite"):
        case.CandidateIndex(CATALOG.assign(x_km=[0.0, np.nan, 1.0, 2.0]))
    index = case.CandidateIndex(CATALOG)
    with pytest.raises(ValueError, match="km must be > 0"):
        index.within(0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="x must be a finite number"):
        index.within(np.nan, 0.0, 5.0)


# --------------------------------------------------------------------------- the nightly job


def test_nightly_users_by_hand():
    users = tables()["users"].set_index("user_id")
    # user 0 registered for event 0 on day 1 (distance 0, log price 0, category 0, slot 0);
    # was shown 1 (day 3) and 2 (day 9) without registering: 3 impressions
    assert users.loc[0, ["registrations", "impressions", "mean_distance",
                         "mean_log_price"]].tolist() == [1, 3, 0.0, 0.0]
    # user 1: event 0 (day 2, 5 km, category 0, slot 0), event 1 (day 7, 5 km, category 1,
    # slot 1); the registration of day 10 is not known the night before day 10
    assert users.loc[1, ["registrations", "impressions", "mean_distance",
                         "mean_log_price"]].tolist() == [2, 2, 5.0, 0.75]
    assert users.loc[1, ["category_0", "category_1", "category_2", "slot_0", "slot_1"]].tolist() \
        == [1, 1, 0, 1, 1]
    assert users.loc[0, ["declared_0", "declared_1", "declared_2"]].tolist() == [1, 0, 1]
    # user 2 registered for event 2 on day 9; user with none has NaN means
    assert users.loc[2, "mean_distance"] == 7.0
    empty = case.nightly_tables(LOG, CATALOG, HOME, DECLARED, FRIENDS, 1)["users"]
    assert empty["mean_distance"].isna().all() and (empty["registrations"] == 0).all()


def test_nightly_pairs_events_hosts_and_seen_by_hand():
    t = tables()
    pairs = t["user_hosts"].set_index(["user_id", "host_id"])
    # host 0: user 0 (event 0), user 1 (events 0, 1); friends: user 1's two count for 0,
    # user 0's one counts for 1
    assert pairs.loc[(0, 0)].tolist() == [1, 2]
    assert pairs.loc[(1, 0)].tolist() == [2, 1]
    assert pairs.loc[(2, 1)].tolist() == [1, 0]
    assert len(pairs) == 3
    events = t["events"].set_index("event_id")
    assert events.loc[[0, 1, 2], ["event_registrations", "event_impressions"]].to_numpy(
    ).tolist() == [[2, 2], [1, 2], [1, 2]]
    hosts = t["hosts"].set_index("host_id")
    assert hosts.to_numpy().tolist() == [[3, 4], [1, 2]]
    assert t["seen"].to_numpy().tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [2, 2]]


def test_nightly_restricts_events_and_pairs_to_the_given_events():
    t = case.nightly_tables(LOG, CATALOG, HOME, DECLARED, FRIENDS, DAY, events=[2, 3])
    assert t["events"]["event_id"].tolist() == [2, 3]
    assert set(t["user_hosts"]["host_id"]) == {1}
    assert t["seen"].to_numpy().tolist() == [[0, 2], [2, 2]]


def test_nightly_rejects_bad_input():
    with pytest.raises(ValueError, match="lacks the columns"):
        case.nightly_tables(LOG.drop(columns="registered"), CATALOG, HOME, DECLARED, FRIENDS, DAY)
    with pytest.raises(ValueError, match="home must be"):
        case.nightly_tables(LOG, CATALOG, HOME[:, :1], DECLARED, FRIENDS, DAY)
    with pytest.raises(ValueError, match="home must be"):
        case.nightly_tables(LOG, CATALOG, HOME, DECLARED[:2], FRIENDS, DAY)
    with pytest.raises(TypeError, match="day must be an integer"):
        case.nightly_tables(LOG, CATALOG, HOME, DECLARED, FRIENDS, "10")
    with pytest.raises(TypeError, match="FeatureStore"):
        case.write_nightly(object(), tables())
    with pytest.raises(ValueError, match="tables lacks"):
        case.write_nightly(case.SharedFeatureStore(), {"users": tables()["users"]})


def test_write_nightly_and_the_request_lookups():
    store = stored()
    summary = case.write_nightly(store, tables())
    assert summary.loc["user_hosts", "key"] == "user_id, host_id"
    assert summary["rows"].tolist() == [3, 3, 4, 2, 6]
    user = case.user_row(store, 1)
    assert user["registrations"] == 2 and user["x_km"] == 3.0
    assert case.user_row(store, 0)[["x_km", "y_km"]].tolist() == [0.0, 0.0]
    assert case.user_host_rows(store, 0).to_dict("index") == {
        0: {"user_host_registrations": 1.0, "friends_at_host": 2.0}}
    assert case.seen_events(store, 0).tolist() == [0, 1, 2]
    rows = case.event_rows(store, [2, 0, 2])
    assert rows.index.tolist() == [2, 0, 2]
    assert rows["host_registrations"].tolist() == [1, 3, 1]
    with pytest.raises(LookupError, match="unknown user_id 7"):
        case.user_row(store, 7)
    with pytest.raises(ValueError, match="unknown event_id"):
        case.event_rows(store, [9])
    with pytest.raises(ValueError, match="user_id must be >= 0"):
        case.user_row(store, -1)


def test_the_shared_store_may_be_read_from_another_thread():
    store, out = stored(), []
    thread = threading.Thread(target=lambda: out.append(case.user_row(store, 2)["registrations"]))
    thread.start()
    thread.join()
    assert out == [1.0]


# --------------------------------------------------------------------------- the live store


def test_live_store_counts_friends_registrations_in_the_friend_direction():
    live = live_store()
    assert live.count("registrations") == 4
    # user 1's registrations (events 0, 1) count for user 0; user 0's (event 0) for user 1
    assert live.friends_registered(0, [0, 1, 2, 3]).tolist() == [1, 1, 0, 0]
    assert live.friends_registered(1, [0, 1, 2]).tolist() == [1, 0, 0]
    assert live.friends_registered(2, [0, 1, 2]).tolist() == [0, 0, 0]
    live.register(1, 3, DAY)                      # counts for user 0 at once
    assert live.friends_registered(0, [3]).tolist() == [1]
    assert live.registered(1).tolist() == [0, 1, 3]
    assert live.followed(0).tolist() == [1] and live.followed(2).tolist() == []


def test_live_store_rejects_duplicates_and_bad_input():
    live = live_store()
    with pytest.raises(ValueError, match="already registered"):
        live.register(0, 0, DAY)
    with pytest.raises(TypeError, match="user_id must be an integer"):
        live.register("0", 1, DAY)
    with pytest.raises(ValueError, match="no table"):
        live.count("users")
    with pytest.raises(ValueError, match="duplicate"):
        case.LiveStore().load(pd.DataFrame({"user_id": [1, 1], "event_id": [2, 2],
                                           "day": [0, 1]}), FRIENDS, FOLLOWS)
    with pytest.raises(ValueError, match="must hold integers"):
        case.LiveStore().load(pd.DataFrame({"user_id": [1.5], "event_id": [2], "day": [0]}),
                             FRIENDS, FOLLOWS)


# --------------------------------------------------------------------------- the features


def offline_features(pairs, log):
    """The chapter's point-in-time features of (user_id, event_id, day) pairs, written as the
    chapter writes them (its ``with_event`` and ``point_in_time_features``)."""
    def with_event(p):
        out = p[["user_id", "event_id", "day"]].join(
            CATALOG[["host_id", "category", "slot", "log_price", "start_day", "created_day"]],
            on="event_id")
        place = CATALOG.loc[out["event_id"], ["x_km", "y_km"]].to_numpy()
        return out.assign(distance_km=np.hypot(*(HOME[out["user_id"]] - place).T))

    p, shown = with_event(pairs), with_event(log)
    reg = shown[log["registered"].to_numpy() == 1]
    by_friends = reg.merge(FRIENDS, on="user_id").drop(columns="user_id").rename(
        columns={"friend_id": "user_id"})
    before = lambda facts, *by, value=None: case.known_before(facts, p, list(by), value)
    n = before(reg, "user_id")
    mean = lambda total: np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)
    followed = pd.MultiIndex.from_frame(FOLLOWS[["user_id", "host_id"]])
    X = pd.DataFrame({
        "distance_km": p["distance_km"],
        "user_mean_distance": mean(before(reg, "user_id", value="distance_km")),
        "category_share": (before(reg, "user_id", "category")
                           + DECLARED[p["user_id"], p["category"]]) / (n + 2),
        "declared": DECLARED[p["user_id"], p["category"]],
        "slot_share": (before(reg, "user_id", "slot") + 1) / (n + 3),
        "log_price": p["log_price"],
        "user_mean_log_price": mean(before(reg, "user_id", value="log_price")),
        "user_registrations": n, "user_impressions": before(shown, "user_id"),
        "followed": pd.MultiIndex.from_frame(p[["user_id", "host_id"]]).isin(followed),
        "user_host_registrations": before(reg, "user_id", "host_id"),
        "friends_registered": before(by_friends, "user_id", "event_id"),
        "friends_at_host": before(by_friends, "user_id", "host_id"),
        "event_registrations": before(reg, "event_id"),
        "event_impressions": before(shown, "event_id"),
        "host_registrations": before(reg, "host_id"),
        "host_impressions": before(shown, "host_id"),
        "days_until_start": p["start_day"] - p["day"],
        "days_open": p["day"] - p["created_day"],
        "slot": p["slot"], "category": p["category"]}, index=pairs.index)
    return X.astype(float)


def served(store, live, user_id, event_ids, columns=case.FEATURES):
    return case.feed_features(case.user_row(store, user_id), case.user_host_rows(store, user_id),
                             case.event_rows(store, event_ids),
                             live.friends_registered(user_id, event_ids),
                             live.followed(user_id), DAY, columns=columns)


@pytest.mark.parametrize("user_id", [0, 1, 2])
def test_served_features_equal_the_point_in_time_features_to_the_bit(user_id):
    store, live = stored(), live_store()
    events = [0, 1, 2, 3]
    X = served(store, live, user_id, events)
    pairs = pd.DataFrame({"user_id": user_id, "event_id": events, "day": DAY})
    expected = offline_features(pairs, LOG[LOG["day"] < DAY])
    assert list(X.columns) == list(case.FEATURES) == list(expected.columns)
    assert np.array_equal(X.to_numpy(), expected.to_numpy(), equal_nan=True)
    assert X.index.tolist() == events


def test_served_features_hand_values_and_freshness():
    store, live = stored(), live_store()
    X = served(store, live, 0, [1, 2])
    assert X["distance_km"].tolist() == [10.0, 3.0]
    assert X["category_share"].tolist() == [(0 + 0) / 3, (0 + 1) / 3]
    assert X["followed"].tolist() == [0.0, 1.0]
    assert X["friends_registered"].tolist() == [1.0, 0.0]
    live.register(1, 2, DAY)                       # a friend registers: n to n + 1, now
    assert served(store, live, 0, [1, 2])["friends_registered"].tolist() == [1.0, 1.0]
    assert served(store, live, 0, [1, 2])["event_registrations"].tolist() == [1.0, 1.0]


def test_features_follow_the_columns_given_and_reject_bad_input():
    store, live = stored(), live_store()
    order = list(reversed(case.FEATURES))
    assert list(served(store, live, 0, [1], columns=order).columns) == order
    with pytest.raises(ValueError, match="unknown"):
        served(store, live, 0, [1], columns=["distance_km", "nope"])
    user, rows = case.user_row(store, 0), case.event_rows(store, [1, 2])
    with pytest.raises(ValueError, match="one count per event"):
        case.feed_features(user, case.user_host_rows(store, 0), rows, [1.0], [], DAY)
    with pytest.raises(TypeError, match="Series"):
        case.feed_features(user.to_dict(), case.user_host_rows(store, 0), rows, [0, 0], [], DAY)
    with pytest.raises(ValueError, match="lacks the columns"):
        case.feed_features(user, case.user_host_rows(store, 0), rows.drop(columns="slot"),
                          [0, 0], [], DAY)


def test_feed_items_round_the_distance_and_keep_the_order():
    X = pd.DataFrame({"distance_km": [3.4, 12.6], "friends_registered": [0.0, 2.0]},
                     index=pd.Index([7, 9], name="event_id"))
    assert case.feed_items([9, 7], [0.5, 0.25], X) == [
        {"event_id": 9, "score": 0.5, "distance_km": 13, "friends_registered": 2},
        {"event_id": 7, "score": 0.25, "distance_km": 3, "friends_registered": 0}]
    with pytest.raises(ValueError, match="one length"):
        case.feed_items([9, 7], [0.5], X)


def test_fault_names_the_problem():
    assert case.fault({"detail": "unknown user_id 5"}) == "unknown user_id 5"
    assert case.fault({"detail": [{"loc": ["body", "k"], "msg": "Field required"}]}) \
        == "k: Field required"
    with pytest.raises(ValueError, match="no 'detail'"):
        case.fault({"events": []})
    with pytest.raises(ValueError, match="a str or a list"):
        case.fault({"detail": 3})


# --------------------------------------------------------------------------- the app


def ranked(user_id, k):
    return [{"event_id": e, "score": 1.0 / (e + 1), "distance_km": 1,
             "friends_registered": 0} for e in range(k)]


def serve(feed=ranked):
    """A running feed app on 127.0.0.1, its client and its live store."""
    live = live_store()
    app = case.create_feed_app(feed, lambda u, e: live.register(u, e, DAY),
                              n_users=3, events=[1, 2, 3], max_k=5)
    server = BackgroundServer(app).start()
    return server, httpx.Client(base_url=server.url, trust_env=False, timeout=10), live


@pytest.fixture(scope="module")
def app():
    server, client, live = serve()
    yield client, live
    client.close()
    server.stop()


def test_app_serves_a_feed_and_takes_a_registration(app):
    client, live = app
    answer = client.post("/feed", json={"user_id": 2, "k": 3})
    assert answer.status_code == 200
    assert [item["event_id"] for item in answer.json()["events"]] == [0, 1, 2]
    assert client.post("/register", json={"user_id": 2, "event_id": 3}).json() == {
        "registered": True}
    assert live.registered(2).tolist() == [2, 3]
    again = client.post("/register", json={"user_id": 2, "event_id": 3})
    assert again.status_code == 409 and "already registered" in again.json()["detail"]


@pytest.mark.parametrize("path, body, status, words", [
    ("/feed", {"user_id": 3, "k": 2}, 404, "unknown user_id 3"),
    ("/feed", {"user_id": 0, "k": 0}, 422, "k"),
    ("/feed", {"user_id": 0, "k": 6}, 422, "k"),
    ("/feed", {"user_id": "0", "k": 2}, 422, "user_id"),
    ("/feed", {"user_id": 0, "k": 2.0}, 422, "k"),
    ("/feed", {"user_id": True, "k": 2}, 422, "user_id"),
    ("/feed", {"user_id": -1, "k": 2}, 422, "user_id"),
    ("/feed", {"user_id": 0}, 422, "k"),
    ("/feed", {"user_id": 0, "k": 2, "home": [0, 0]}, 422, "home"),
    ("/register", {"user_id": 0, "event_id": 0}, 404, "not open"),
    ("/register", {"user_id": 9, "event_id": 1}, 404, "unknown user_id 9"),
    ("/register", {"event_id": 1}, 422, "user_id"),
])
def test_app_answers_bad_requests_with_a_4xx_naming_the_fault(app, path, body, status, words):
    client, _ = app
    answer = client.post(path, json=body)
    assert answer.status_code == status
    assert words in case.fault(answer.json())
    assert client.post("/feed", json={"user_id": 0, "k": 1}).status_code == 200   # serving


def test_app_answers_malformed_json_and_big_bodies(app):
    client, _ = app
    assert client.post("/feed", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/feed", json={"user_id": 0, "k": 1, "pad": "x" * 2000}).status_code == 413


def test_app_hides_a_failing_feed_behind_a_500():
    def broken(user_id, k):
        raise RuntimeError("secret traceback")

    server, client, _ = serve(broken)
    try:
        answer = client.post("/feed", json={"user_id": 0, "k": 1})
        assert answer.status_code == 500 and "secret" not in answer.text
        assert client.get("/health").json()["status"] == "ok"
    finally:
        client.close()
        server.stop()


def test_create_feed_app_rejects_bad_arguments():
    with pytest.raises(TypeError, match="callable"):
        case.create_feed_app(None, lambda u, e: None, n_users=3, events=[1])
    with pytest.raises(ValueError, match="n_users must be >= 1"):
        case.create_feed_app(lambda u, k: [], lambda u, e: None, n_users=0, events=[1])
    with pytest.raises(TypeError, match="max_k must be an integer"):
        case.create_feed_app(lambda u, k: [], lambda u, e: None, n_users=3, events=[1],
                            max_k=2.5)
