"""mlsd.systems.feature_store.FeatureStore: round trips, NULLs, key order, errors, timings."""

import numpy as np
import pandas as pd
import pytest

from mlsd.systems.feature_store import FeatureStore


@pytest.fixture
def store(tmp_path):
    with FeatureStore(tmp_path / "features.sqlite") as s:
        yield s


def _users():
    return pd.DataFrame({"user_id": np.array([3, 1, 2], dtype=np.int64),
                         "country": ["br", "fr", None], "score": [0.5, np.nan, 2.0],
                         "active": [True, False, True]})


def test_round_trip_with_nulls(store):
    store.write("users", _users(), key=["user_id"])
    assert store.count("users") == 3
    rows = store.lookup("users", ["user_id", "country", "score", "active"])
    assert rows == [(1, "fr", None, 0), (2, None, 2.0, 1), (3, "br", 0.5, 1)]  # key order
    assert all(type(v) in (int, float, str, type(None)) for row in rows for v in row)
    assert store.lookup("users", ["country"], user_id=np.int64(3)) == [("br",)]
    assert store.lookup("users", ["country"], user_id=99) == []


def test_range_scan_on_a_key_prefix(store):
    pairs = pd.DataFrame({"user_id": [2, 1, 1, 2, 1], "video_id": [5, 9, 3, 1, 4]})
    store.write("candidates", pairs, key=["user_id", "video_id"])
    assert store.lookup("candidates", ["video_id"], user_id=1) == [(3,), (4,), (9,)]
    assert store.lookup("candidates", ["video_id"], user_id=2, video_id=5) == [(5,)]


def test_lookup_in_keeps_the_order_of_the_values(store):
    store.write("users", _users(), key="user_id")
    rows = store.lookup_in("users", ["country", "score"], "user_id", [3, 1, 3, np.int64(2)])
    assert rows == [("br", 0.5), ("fr", None), ("br", 0.5), (None, 2.0)]
    with pytest.raises(ValueError, match=r"unknown user_id in 'users': \[7, 8\]"):
        store.lookup_in("users", ["country"], "user_id", [1, 7, 8])


def test_lookup_in_many_keys(store):
    ids = np.arange(2000)
    store.write("ads", pd.DataFrame({"ad_id": ids, "bid": ids / 10}), key=["ad_id"])
    order = np.random.default_rng(0).permutation(ids)
    assert [b for (b,) in store.lookup_in("ads", ["bid"], "ad_id", order)] == list(order / 10)


def test_rewrite_replaces_the_table_and_same_rows_give_the_same_size(tmp_path):
    sizes = []
    for name, frame in (("a", _users()), ("b", _users().iloc[::-1])):
        with FeatureStore(tmp_path / f"{name}.sqlite") as s:
            s.write("users", frame, key=["user_id"])
            s.write("users", frame, key=["user_id"])  # rewritten whole, not appended
            assert s.count("users") == 3
            sizes.append(s.size_bytes())
    assert sizes[0] == sizes[1] == (tmp_path / "a.sqlite").stat().st_size


def test_timings_are_recorded_per_table(store):
    store.write("users", _users(), key=["user_id"])
    store.lookup("users", ["country"], user_id=1)
    store.lookup_in("users", ["country"], "user_id", [1, 2])
    assert len(store.timings["users"]) == 2 and all(t >= 0 for t in store.timings["users"])
    assert "ads" not in store.timings


def test_bad_input_names_the_problem(store):
    store.write("users", _users(), key=["user_id"])
    with pytest.raises(ValueError, match="no table 'ads'"):
        store.lookup("ads", ["x"])
    with pytest.raises(ValueError, match=r"unknown columns \['age'\]"):
        store.lookup("users", ["age"])
    with pytest.raises(ValueError, match="unknown columns"):
        store.lookup("users", ["country"], nope=1)
    with pytest.raises(TypeError, match="list of column names"):
        store.lookup("users", "country")
    with pytest.raises(ValueError, match="unique"):
        store.write("t", pd.DataFrame({"k": [1, 1], "v": [1, 2]}), key=["k"])
    with pytest.raises(ValueError, match="missing values"):
        store.write("t", pd.DataFrame({"k": [1.0, np.nan]}), key=["k"])
    with pytest.raises(ValueError, match="key must name columns"):
        store.write("t", pd.DataFrame({"k": [1]}), key=["id"])
    with pytest.raises(TypeError, match="DataFrame"):
        store.write("t", {"k": [1]}, key=["k"])
    with pytest.raises(TypeError, match="path"):
        FeatureStore(3)


def test_only_a_shared_store_may_be_used_from_another_thread():
    import sqlite3
    import threading

    frame = pd.DataFrame({"user_id": [1, 2], "clicks": [3, 4]})
    outcomes = {}
    for shared in (False, True):
        with FeatureStore(":memory:", shared=shared) as store:
            store.write("users", frame, ["user_id"])

            def read():
                try:
                    outcomes[shared] = store.lookup("users", ["clicks"], user_id=2)
                except sqlite3.ProgrammingError as error:
                    outcomes[shared] = error

            worker = threading.Thread(target=read)
            worker.start()
            worker.join()
    assert isinstance(outcomes[False], sqlite3.ProgrammingError)
    assert outcomes[True] == [(4,)]
    with pytest.raises(TypeError, match="shared"):
        FeatureStore(":memory:", shared="yes")
