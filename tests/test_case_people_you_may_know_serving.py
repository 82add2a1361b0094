"""Chapter 14's serving plumbing: the store, the weekly batch's writes (top k per person, one
transaction), the live writes filtered at lookup, the cold-start ranking, the whole weekly job
on a hand-made snapshot and the HTTP app."""

import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mlsd.cases import people_you_may_know as package
from mlsd.cases.people_you_may_know import core
from mlsd.cases.people_you_may_know import serving as case
from mlsd.datasets.people_you_may_know import MISSING
from mlsd.systems.serving import BackgroundServer, fault


def graph_of(edges, n):
    """A symmetric 0/1 CSR adjacency of ``n`` people from a list of (a, b) friendships."""
    a, b = (np.array([e[i] for e in edges], dtype=np.int64) for i in (0, 1))
    return sparse.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))


def rows(store, table="suggestions"):
    return store._db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()


# Person 0's list is 1 (0.9), then 2 and 3 tied at 0.5 (2 first: the smaller id, although the
# pair (3, 0) comes first in the frame), then 4 (0.1).
PAIRS = pd.DataFrame({"user_a": [3, 0, 0, 0, 1], "user_b": [0, 2, 1, 4, 2]})
SCORES = np.array([0.5, 0.5, 0.9, 0.1, 0.7])


def test_the_package_exports_the_serving_part():
    assert set(case.__all__) <= set(package.__all__)
    assert package.weekly_batch is case.weekly_batch


# --------------------------------------------------------------------------- the store


def test_the_store_holds_three_keyed_tables_and_keeps_a_file(tmp_path):
    path = tmp_path / "pymk.sqlite"
    with case.SuggestionStore(path) as store:
        assert [store.count(t) for t in ("suggestions", "friendships", "dismissed")] == [0, 0, 0]
        case.dismiss(store, 1, 2)
        pages, size = (store._db.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count",
                                                                                "page_size"))
        assert store.size_bytes() == pages * size > 0
        schema = store._db.execute("SELECT sql FROM sqlite_master WHERE name = 'suggestions'")
        assert "PRIMARY KEY (user_id, rank)) WITHOUT ROWID" in schema.fetchone()[0]
        with pytest.raises(ValueError, match="no table 'nope'"):
            store.count("nope")
    with pytest.raises(sqlite3.ProgrammingError):
        store.count("dismissed")                          # closed on leaving the block
    with case.SuggestionStore(path) as again:              # reopening keeps the rows
        assert rows(again, "dismissed") == [(1, 2)]
    with pytest.raises(TypeError, match="path"):
        case.SuggestionStore(3)


# --------------------------------------------------------------------------- the weekly writes


def test_each_person_keeps_the_top_k_with_ties_to_the_smaller_id():
    store = case.SuggestionStore()
    out = case.write_suggestions(store, PAIRS, SCORES, week=1, k=2)
    assert out == {"pairs scored": 5, "people": 5, "rows": 8}
    assert rows(store) == [  # user_id, rank, candidate_id, score, week
        (0, 1, 1, 0.9, 1), (0, 2, 2, 0.5, 1),
        (1, 1, 0, 0.9, 1), (1, 2, 2, 0.7, 1),
        (2, 1, 1, 0.7, 1), (2, 2, 0, 0.5, 1),
        (3, 1, 0, 0.5, 1), (4, 1, 0, 0.1, 1)]
    case.write_suggestions(store, PAIRS, SCORES, week=1, k=3)
    assert case.suggestions_for(store, 0)["candidate_id"].tolist() == [1, 2, 3]
    assert case.write_suggestions(store, PAIRS.iloc[:0], [], week=1)["rows"] == 0


def test_a_new_week_replaces_the_old_one_in_one_transaction(tmp_path, monkeypatch):
    path = tmp_path / "pymk.sqlite"
    store = case.SuggestionStore(path)
    case.write_suggestions(store, PAIRS, SCORES, week=1)
    case.write_suggestions(store, pd.DataFrame({"user_a": [5], "user_b": [6]}), [2.0], week=2)
    assert rows(store) == [(5, 1, 6, 2.0, 2), (6, 1, 5, 2.0, 2)]   # week 1's rows are gone

    seen_by_reader = []

    class ReadThenFail:
        """The connection, except that after inserting the rows another connection reads the
        file (the write is not committed yet), and then the write fails."""

        def __init__(self, db):
            self.db = db

        def __getattr__(self, name):
            return getattr(self.db, name)

        def __enter__(self):
            return self.db.__enter__()

        def __exit__(self, *exc):
            return self.db.__exit__(*exc)

        def executemany(self, sql, values):
            self.db.executemany(sql, values)
            with closing(sqlite3.connect(path)) as reader:
                seen_by_reader.extend(reader.execute("SELECT DISTINCT week FROM suggestions"))
            raise sqlite3.OperationalError("disk full")

    monkeypatch.setattr(store, "_db", ReadThenFail(store._db))
    with pytest.raises(sqlite3.OperationalError, match="disk full"):
        case.write_suggestions(store, PAIRS, SCORES, week=3)
    monkeypatch.undo()
    assert seen_by_reader == [(2,)]         # mid-write, a reader saw last week, not half of this
    assert rows(store) == [(5, 1, 6, 2.0, 2), (6, 1, 5, 2.0, 2)]   # and the delete rolled back
    with pytest.raises(ValueError, match="finite"):               # refused before any write
        case.write_suggestions(store, PAIRS, [0.1, np.nan, 0.2, 0.3, 0.4], week=3)
    assert store.count("suggestions") == 2
    store.close()


@pytest.mark.parametrize("pairs, scores, kwargs, error, message", [
    (PAIRS, SCORES[:4], {}, ValueError, "one number per pair: 5 pairs"),
    (PAIRS, SCORES * np.inf, {}, ValueError, "finite"),
    (PAIRS, SCORES.astype(str), {}, ValueError, "numbers"),
    (PAIRS, SCORES, {"k": 0}, ValueError, "k must be >= 1"),
    (PAIRS, SCORES, {"week": -1}, ValueError, "week must be >= 0"),
    (PAIRS, SCORES, {"week": 1.5}, TypeError, "week must be an integer"),
    (PAIRS.assign(user_b=[0, 2, 1, 4, 1]), SCORES, {}, ValueError, "two different people"),
    (pd.concat([PAIRS, pd.DataFrame({"user_a": [2], "user_b": [0]})]), np.r_[SCORES, 1.0], {},
     ValueError, "appears twice"),
    (PAIRS.assign(user_a=-PAIRS["user_a"]), SCORES, {}, ValueError, ">= 0"),
    (PAIRS.assign(user_a=PAIRS["user_a"] + 0.5), SCORES, {}, TypeError, "integer ids"),
    (PAIRS[["user_a"]], SCORES, {}, ValueError, "lacks the columns"),
])
def test_write_suggestions_refuses_bad_inputs(pairs, scores, kwargs, error, message):
    store = case.SuggestionStore()
    with pytest.raises(error, match=message):
        case.write_suggestions(store, pairs, scores, **{"week": 1, **kwargs})
    assert store.count("suggestions") == 0
    with pytest.raises(TypeError, match="SuggestionStore"):
        case.write_suggestions(object(), PAIRS, SCORES, week=1)


def test_write_friendships_replaces_the_graph_both_ways():
    store = case.SuggestionStore()
    assert case.write_friendships(store, graph_of([(0, 1), (1, 2)], 4)) == 4
    assert rows(store, "friendships") == [(0, 1), (1, 0), (1, 2), (2, 1)]
    case.write_friendships(store, graph_of([(2, 3)], 4))
    assert rows(store, "friendships") == [(2, 3), (3, 2)]
    with pytest.raises(ValueError, match="symmetric"):
        case.write_friendships(store, sparse.csr_matrix(np.triu(np.ones((3, 3)), 1)))
    with pytest.raises(ValueError, match="self-loop"):
        case.write_friendships(store, sparse.identity(3, format="csr"))
    with pytest.raises(ValueError, match="square"):
        case.write_friendships(store, sparse.csr_matrix((2, 3)))
    with pytest.raises(TypeError, match="sparse"):
        case.write_friendships(store, np.zeros((3, 3)))
    assert rows(store, "friendships") == [(2, 3), (3, 2)]


def test_live_writes_are_idempotent_and_checked():
    store = case.SuggestionStore()
    assert case.add_friendship(store, 4, 1) == 2
    assert case.add_friendship(store, 1, 4) == 0            # a replayed event changes nothing
    assert rows(store, "friendships") == [(1, 4), (4, 1)]
    assert case.dismiss(store, 0, 3) == 1 and case.dismiss(store, 0, 3) == 0
    assert rows(store, "dismissed") == [(0, 3)]
    with pytest.raises(ValueError, match="two different people"):
        case.add_friendship(store, 2, 2)
    with pytest.raises(ValueError, match="candidate_id must be >= 0"):
        case.dismiss(store, 0, -1)
    with pytest.raises(TypeError, match="a must be an integer"):
        case.add_friendship(store, True, 2)


# --------------------------------------------------------------------------- the lookup


def test_the_lookup_leaves_out_new_friends_and_dismissed_people():
    store = case.SuggestionStore()
    pairs = pd.DataFrame({"user_a": [0, 0, 0, 0, 0], "user_b": [1, 2, 3, 4, 5]})
    case.write_suggestions(store, pairs, [5.0, 4.0, 3.0, 2.0, 1.0], week=1)
    case.write_friendships(store, graph_of([(0, 9)], 10))
    first = case.suggestions_for(store, 0, k=3)
    assert first.to_dict("list") == {"candidate_id": [1, 2, 3], "score": [5.0, 4.0, 3.0],
                                     "rank": [1, 2, 3]}
    case.add_friendship(store, 0, 1)                 # accepted since the batch
    case.dismiss(store, 0, 3)                        # "not interested"
    later = case.suggestions_for(store, 0, k=3)
    assert later["candidate_id"].tolist() == [2, 4, 5]
    assert later["rank"].tolist() == [2, 4, 5]       # the batch's ranks: the gaps show
    assert case.suggestions_for(store, 3, k=3)["candidate_id"].tolist() == [0]  # one way only
    assert case.suggestions_for(store, 1)["candidate_id"].tolist() == []        # now friends
    case.write_suggestions(store, pairs, [5.0, 4.0, 3.0, 2.0, 1.0], week=2)
    assert 3 not in case.suggestions_for(store, 0)["candidate_id"].tolist()    # still dismissed
    nobody = case.suggestions_for(store, 42)
    assert nobody.empty and list(nobody.columns) == ["candidate_id", "score", "rank"]
    with pytest.raises(ValueError, match="k must be >= 1"):
        case.suggestions_for(store, 0, k=0)
    with pytest.raises(TypeError, match="user_id"):
        case.suggestions_for(store, "0")


def test_readers_on_other_threads_see_one_whole_week_or_the_other():
    store = case.SuggestionStore()
    pairs = pd.DataFrame({"user_a": [0] * 30, "user_b": np.arange(1, 31)})
    weeks = {1: np.arange(30.0), 2: -np.arange(30.0)}
    lists = {}
    for week, scores in weeks.items():
        case.write_suggestions(store, pairs, scores, week=week, k=30)
        lists[week] = case.suggestions_for(store, 0, k=30)["candidate_id"].tolist()
    assert lists[1] == list(range(30, 0, -1)) and lists[2] == list(range(1, 31))
    stop = threading.Event()

    def write():
        week = 1
        while not stop.is_set():
            case.write_suggestions(store, pairs, weeks[week], week=week, k=30)
            week = 3 - week

    def read(_):
        return case.suggestions_for(store, 0, k=30)["candidate_id"].tolist()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(read, range(200)))
    finally:
        stop.set()
        writer.join()
    assert all(answer in (lists[1], lists[2]) for answer in answers)


# --------------------------------------------------------------------------- the cold start

# Person 0 is new: school 1, employer 2, city 3. The others share 0 to 3 fields with them.
USERS = pd.DataFrame({
    "user_id":  [0, 1, 2, 3, 4, 5, 6, 7, 8],
    "joined":   [2, 0, 0, 0, 0, 0, 0, 0, 0],
    "school":   [1, 1, 1, 1, MISSING, 1, 7, MISSING, 1],
    "employer": [2, 2, MISSING, 9, MISSING, MISSING, 8, MISSING, 2],
    "city":     [3, 3, 3, 3, 3, MISSING, 9, MISSING, 3]})
DEGREE = np.array([0, 0, 5, 5, 9, 2, 7, 3, 4], dtype=float)   # as Snapshot.degree gives it


def test_cold_start_ranks_by_shared_fields_then_degree_then_id():
    out = case.cold_start_suggestions(USERS, DEGREE, 0)
    assert list(out.columns) == ["candidate_id", "matches", "degree"]
    assert out.values.tolist() == [[8, 3, 4], [1, 3, 0], [2, 2, 5], [3, 2, 5], [4, 1, 9],
                                   [5, 1, 2]]             # 6 and 7 share nothing: left out
    assert case.cold_start_suggestions(USERS, DEGREE, 0, k=2, exclude=[8])[
        "candidate_id"].tolist() == [1, 2]


def test_a_blank_field_never_matches_not_even_another_blank():
    # 7 left everything blank: nobody matches, although 4 and 5 have blanks too
    assert case.cold_start_suggestions(USERS, DEGREE, 7).empty
    # 2 and 4 both left the employer blank: only the city counts
    out = case.cold_start_suggestions(USERS, DEGREE, 2).set_index("candidate_id")["matches"]
    assert out[4] == 1 and out[5] == 1 and out[0] == 2


@pytest.mark.parametrize("users, degree, kwargs, error, message", [
    (USERS, DEGREE, {"user_id": 99}, ValueError, "user_id 99 is not in users"),
    (USERS, DEGREE[:5], {}, ValueError, "degree has 5 entries"),
    (USERS, -DEGREE, {}, ValueError, "whole numbers >= 0"),
    (USERS, DEGREE + 0.5, {}, ValueError, "whole numbers >= 0"),
    (USERS.drop(columns="city"), DEGREE, {}, ValueError, "lacks the columns"),
    (pd.concat([USERS, USERS.tail(1)]), DEGREE, {}, ValueError, "unique"),
    (USERS, DEGREE, {"k": 0}, ValueError, "k must be >= 1"),
    (USERS, DEGREE, {"exclude": ["a"]}, TypeError, "integer ids"),
])
def test_cold_start_refuses_bad_inputs(users, degree, kwargs, error, message):
    with pytest.raises(error, match=message):
        case.cold_start_suggestions(users, degree, **{"user_id": 0, **kwargs})


# --------------------------------------------------------------------------- the weekly job

# 24 people on a ring, each friends with the next two: person 0's friends are 1, 2, 22, 23 and
# their friends of friends 3 (through 1 and 2), 4 (through 2), 20 (through 22) and 21 (through
# 22 and 23). Scoring by common friends ranks 3 and 21 (2 each), then 4 and 20 (1 each).
N_RING = 24
RING = [(i, (i + step) % N_RING) for i in range(N_RING) for step in (1, 2)]


def ring_snapshot(week=1, extra=()):
    users = pd.DataFrame({"user_id": np.arange(N_RING), "joined": 0,
                          "school": np.arange(N_RING) % 3, "employer": MISSING,
                          "city": np.arange(N_RING) % 2})
    views = pd.DataFrame({"viewer": [0], "viewed": [3], "week": [week], "count": [2]})
    return core.Snapshot(week, graph_of(RING + list(extra), N_RING), users, views)


def common_friends(X):
    return X["common_friends"].to_numpy()


def test_the_weekly_batch_writes_what_the_chapter_computes():
    store, snap = case.SuggestionStore(), ring_snapshot()
    out = case.weekly_batch(store, snap, common_friends, k=3)
    assert list(out) == ["pairs scored", "people", "rows", "candidates s", "features s",
                         "scoring s", "writing s", "store MB"]
    assert (out["pairs scored"], out["people"], out["rows"]) == (48, 24, 72)
    assert all(0 <= out[f"{stage} s"] < 5 for stage in ("candidates", "features", "scoring",
                                                         "writing"))
    assert out["store MB"] == store.size_bytes() / 1e6
    assert store.count("friendships") == 2 * len(RING)
    mine = case.suggestions_for(store, 0)
    assert mine.to_dict("list") == {"candidate_id": [3, 21, 4], "score": [2.0, 2.0, 1.0],
                                    "rank": [1, 2, 3]}
    # the same rows as the chapter's steps, one by one
    by_hand = case.SuggestionStore()
    pairs = core.friends_of_friends(snap.graph)
    case.write_suggestions(by_hand, pairs, common_friends(core.pair_features(snap, pairs)),
                           week=1, k=3)
    assert rows(by_hand) == rows(store)


def test_next_weeks_batch_knows_the_new_friendship_and_a_bad_score_writes_nothing():
    store = case.SuggestionStore()
    case.weekly_batch(store, ring_snapshot(), common_friends, k=3)
    case.weekly_batch(store, ring_snapshot(week=2, extra=[(0, 3)]), common_friends, k=3)
    assert {week for *_, week in rows(store)} == {2}
    assert 3 not in case.suggestions_for(store, 0)["candidate_id"].tolist()
    before = rows(store)
    with pytest.raises(ValueError, match="shape"):
        case.weekly_batch(store, ring_snapshot(week=3), lambda X: np.zeros(2))
    with pytest.raises(TypeError, match="callable"):
        case.weekly_batch(store, ring_snapshot(), None)
    with pytest.raises(TypeError, match="Snapshot"):
        case.weekly_batch(store, "week 3", common_friends)
    assert rows(store) == before


# --------------------------------------------------------------------------- the app


def app_store():
    """Batch lists for 0..4; person 5 is new (no row; friends with 6 since the batch)."""
    store = case.SuggestionStore()
    case.write_suggestions(store, PAIRS, SCORES, week=1)
    case.write_friendships(store, graph_of([(6, 7)], 9))
    case.add_friendship(store, 5, 8)
    return store


def test_the_app_answers_batch_and_cold_start_refuses_bad_requests_and_keeps_serving():
    store = app_store()
    users = USERS.assign(user_id=[5, 1, 2, 3, 4, 0, 6, 7, 8])   # person 5 has 0's profile
    degree = DEGREE[[5, 1, 2, 3, 4, 0, 6, 7, 8]]
    app = case.create_pymk_app(store, users, degree, n_users=9)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                       trust_env=False) as client:
        def get(query):
            return client.get(f"/suggestions?{query}")

        batch = get("user_id=0").json()
        assert batch == {"user_id": 0, "source": "batch", "suggestions": [
            {"user_id": 1, "score": 0.9, "matches": None},
            {"user_id": 2, "score": 0.5, "matches": None},
            {"user_id": 3, "score": 0.5, "matches": None},
            {"user_id": 4, "score": 0.1, "matches": None}]}
        assert [s["user_id"] for s in get("user_id=0&k=2").json()["suggestions"]] == [1, 2]
        case.add_friendship(store, 0, 1)                       # accepted: gone at once
        assert [s["user_id"] for s in get("user_id=0&k=2").json()["suggestions"]] == [2, 3]
        cold = get("user_id=5&k=3").json()                     # 8 is a friend now: left out
        assert cold == {"user_id": 5, "source": "cold start", "suggestions": [
            {"user_id": 1, "score": None, "matches": 3},
            {"user_id": 2, "score": None, "matches": 2},
            {"user_id": 3, "score": None, "matches": 2}]}
        case.dismiss(store, 3, 0)                 # 3's one batch suggestion is turned down:
        used_up = get("user_id=3&k=2").json()     # the profile answers, without 0
        assert used_up["source"] == "cold start"
        assert [(s["user_id"], s["matches"]) for s in used_up["suggestions"]] == [(2, 2), (8, 2)]
        bad = {"no user_id": "k=3", "user_id as text": "user_id=abc",
               "user_id 1.0": "user_id=1.0", "user_id true": "user_id=true",
               "negative user_id": "user_id=-1", "user_id = n_users": "user_id=9",
               "huge user_id": "user_id=123456789012345678901234567890",
               "k = 0": "user_id=0&k=0", "k = 51": "user_id=0&k=51", "k 2.5": "user_id=0&k=2.5"}
        answers = {name: get(query) for name, query in bad.items()}
        assert get("user_id=2&k=1").json()["suggestions"] == [
            {"user_id": 1, "score": 0.7, "matches": None}]     # still serving
        assert client.get("/health").json()["status"] == "ok"
        store.close()                                          # the store breaks: a 500 ...
        broken = get("user_id=0")
        assert client.get("/health").status_code == 200        # ... and the server lives on
    assert {name: a.status_code for name, a in answers.items()} == {
        "no user_id": 422, "user_id as text": 422, "user_id 1.0": 422, "user_id true": 422,
        "negative user_id": 404, "user_id = n_users": 404, "huge user_id": 404,
        "k = 0": 422, "k = 51": 422, "k 2.5": 422}
    assert fault(answers["user_id = n_users"].json()) == "unknown user 9"
    assert fault(answers["no user_id"].json()) == "query.user_id: Field required"
    assert "whole number written in digits" in fault(answers["user_id 1.0"].json())
    assert "less than or equal to 50" in fault(answers["k = 51"].json())
    assert broken.status_code == 500
    assert fault(broken.json()) == "internal error while reading suggestions"


def test_the_app_refuses_bad_arguments():
    store = case.SuggestionStore()
    with pytest.raises(TypeError, match="SuggestionStore"):
        case.create_pymk_app(None, USERS, DEGREE, n_users=9)
    with pytest.raises(ValueError, match="n_users must be >= 1"):
        case.create_pymk_app(store, USERS, DEGREE, n_users=0)
    with pytest.raises(ValueError, match="every id 0 .. n_users - 1 = 9"):
        case.create_pymk_app(store, USERS, DEGREE, n_users=10)
    with pytest.raises(ValueError, match="degree has 5 entries"):
        case.create_pymk_app(store, USERS, DEGREE[:5], n_users=9)
    with pytest.raises(TypeError, match="max_k"):
        case.create_pymk_app(store, USERS, DEGREE, n_users=9, max_k=5.0)
