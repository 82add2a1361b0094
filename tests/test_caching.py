"""mlsd.systems.caching.replay_cache: LRU and TTL by hand, against a brute force, errors."""

import numpy as np
import pandas as pd
import pytest

from mlsd.systems.caching import replay_cache


def test_unbounded_cache_hits_every_repeat():
    hits = replay_cache(["a", "b", "a", "c", "b", "a"])
    assert hits.tolist() == [False, False, True, False, True, True]
    assert hits.dtype == bool


def test_lru_evicts_the_least_recently_used():
    # capacity 2: a b a c -> c evicts b (a was used more recently); then b misses, a misses
    hits = replay_cache(list("abacba"), capacity=2)
    assert hits.tolist() == [False, False, True, False, False, False]
    # capacity 1 hits only immediate repeats
    assert replay_cache(list("aabba"), capacity=1).tolist() == [False, True, False, True, False]


def test_ttl_counts_from_the_write_and_a_hit_does_not_renew_it():
    times = [0.0, 5.0, 9.9, 10.0, 10.5, 25.0]
    hits = replay_cache(["k"] * 6, times, ttl=10.0)
    # written at 0; hits at 5 and 9.9; expired at 10 (10 - 0 is not < 10): rewritten at 10;
    # hit at 10.5; expired at 25: miss
    assert hits.tolist() == [False, True, True, False, True, False]


def test_dataframe_rows_are_keys():
    frame = pd.DataFrame({"user": [1, 1, 2, 1], "topic": ["x", "y", "x", "x"]})
    assert replay_cache(frame).tolist() == [False, False, False, True]


def _brute_force(keys, times, capacity, ttl):
    """The same policy written the slow, obvious way: a list of [key, written, last_used]."""
    entries, hits = [], []
    for i, (key, now) in enumerate(zip(keys, times)):
        found = [e for e in entries if e[0] == key]
        if found and (ttl is None or now - found[0][1] < ttl):
            found[0][2] = i
            hits.append(True)
            continue
        hits.append(False)
        entries = [e for e in entries if e[0] != key] + [[key, now, i]]
        if capacity is not None and len(entries) > capacity:
            entries.remove(min(entries, key=lambda e: e[2]))
    return hits


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("capacity, ttl", [(None, None), (3, None), (None, 4.0), (5, 2.5)])
def test_matches_a_brute_force_replay(seed, capacity, ttl):
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 12, 300).tolist()
    times = np.cumsum(rng.exponential(0.5, 300))
    expected = _brute_force(keys, times, capacity, ttl)
    assert replay_cache(keys, times, capacity=capacity, ttl=ttl).tolist() == expected


def test_a_larger_cache_never_hits_less():
    rng = np.random.default_rng(0)
    keys = rng.zipf(1.5, 2000).tolist()
    rates = [replay_cache(keys, capacity=c).mean() for c in (1, 10, 100, None)]
    assert rates == sorted(rates)
    assert rates[-1] == pytest.approx(1 - len(set(keys)) / len(keys))


def test_empty_traffic_has_no_hits():
    assert replay_cache([]).size == 0


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(keys=[[1], [2]]), TypeError, "not hashable"),
    (dict(keys="abc"), TypeError, "sequence"),
    (dict(keys=["a"], ttl=1.0), ValueError, "needs the arrival times"),
    (dict(keys=["a", "b"], times=[1.0]), ValueError, "1 entries for 2 keys"),
    (dict(keys=["a", "b"], times=[2.0, 1.0]), ValueError, "non-decreasing"),
    (dict(keys=["a"], times=[np.nan]), ValueError, "finite"),
    (dict(keys=["a"], capacity=0), ValueError, "capacity"),
    (dict(keys=["a"], capacity=1.5), TypeError, "capacity"),
    (dict(keys=["a"], times=[0.0], ttl=0), ValueError, "ttl"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    keys = kwargs.pop("keys")
    times = kwargs.pop("times", None)
    with pytest.raises(error, match=message):
        replay_cache(keys, times, **kwargs)
