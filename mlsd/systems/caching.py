"""Caches measured, not assumed: replay the keys a service sees through an LRU/TTL cache.

A cache in front of a model helps exactly as much as its **hit rate**, the share of requests
whose key it already holds, and that share is a property of the traffic, not of the cache: a
key must *repeat*, within the cache's lifetime and capacity, to be a hit. So the hit rate is
measured by replaying the requests the service actually receives, in order, through the
cache policy. :func:`replay_cache` does that for the two policies most caches combine:

- **LRU** (least recently used): at most ``capacity`` entries; a new entry evicts the one used
  longest ago;
- **TTL** (time to live): an entry answers for ``ttl`` time units after it was written, then
  the next request for its key is a miss and writes it again (e.g. until features change).

Chapter 3 replays the notification service's requests through caches keyed three ways (the
whole request, the user, the nightly table's key) and feeds the measured hit rate to the
capacity arithmetic and the queueing simulation (``cache_hit_rate`` of
:func:`mlsd.systems.queueing.simulate_queue`).

References
----------
L. A. Belady (1966), "A study of replacement algorithms for a virtual-storage computer",
*IBM Systems Journal* 5(2). B. Fitzpatrick (2004), "Distributed caching with memcached",
*Linux Journal* 124.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int, check_finite_array

__all__ = ["replay_cache"]


def _keys(keys) -> list:
    if isinstance(keys, pd.DataFrame):
        return list(keys.itertuples(index=False, name=None))
    if isinstance(keys, (str, bytes)) or not hasattr(keys, "__len__"):
        raise TypeError("keys must be a sequence of hashable keys or a DataFrame, "
                        f"got {type(keys).__name__}")
    keys = keys.tolist() if isinstance(keys, (np.ndarray, pd.Series, pd.Index)) else list(keys)
    for i, key in enumerate(keys):
        if not isinstance(key, Hashable):
            raise TypeError(f"keys[{i}] is not hashable: {key!r}")
    return keys


def replay_cache(keys, times=None, *, capacity: int | None = None,
                 ttl: float | None = None) -> np.ndarray:
    """Replay requests through an LRU cache with an optional TTL; return which ones hit.

    Request ``i`` looks up ``keys[i]`` at ``times[i]``. It is a **hit** if the cache holds the
    key and the entry was written less than ``ttl`` before (``times[i] - written < ttl``); a
    hit makes the entry the most recently used, without renewing its TTL. Otherwise it is a
    **miss**: the answer is computed and written with ``written = times[i]``, and if the
    cache then holds more than ``capacity`` entries, the least recently used one is evicted
    (expired entries stay until they are evicted or rewritten, as in most caches).

    Parameters
    ----------
    keys
        One hashable key per request, in arrival order (tuples, strings, numbers), or a
        DataFrame whose rows are the keys.
    times
        Arrival times, non-decreasing, in any unit; needed with ``ttl`` only.
    capacity
        Most entries held (>= 1); None for no limit.
    ttl
        Time to live of an entry (> 0), in the unit of ``times``; None for no expiry.

    Returns
    -------
    numpy.ndarray
        Booleans, True where the request was a hit; ``.mean()`` is the hit rate. The first
        request of each key is always a miss (a cold cache).

    Raises
    ------
    TypeError
        If a key is not hashable.
    ValueError
        If ``times`` is missing with a ``ttl``, has another length, is not non-decreasing or
        not finite, or ``capacity`` or ``ttl`` is not positive.
    """
    keys = _keys(keys)
    if capacity is not None:
        capacity = check_int("capacity", capacity, minimum=1)
    if ttl is not None and check_finite("ttl", ttl) <= 0:
        raise ValueError(f"ttl must be > 0, got {ttl}")
    if times is None:
        if ttl is not None:
            raise ValueError("a ttl needs the arrival times")
        times = np.zeros(len(keys))
    elif len(keys) == 0:
        times = np.zeros(0)
    else:
        times = check_finite_array("times", times)
        if len(times) != len(keys):
            raise ValueError(f"times has {len(times)} entries for {len(keys)} keys")
        if np.any(np.diff(times) < 0):
            raise ValueError("times must be non-decreasing (requests in arrival order)")
    cache: OrderedDict = OrderedDict()  # key -> time written, least recently used first
    hits = np.zeros(len(keys), dtype=bool)
    for i, (key, now) in enumerate(zip(keys, times.tolist())):
        written = cache.get(key)
        if written is not None and (ttl is None or now - written < ttl):
            hits[i] = True
            cache.move_to_end(key)
            continue
        cache[key] = now
        cache.move_to_end(key)
        if capacity is not None and len(cache) > capacity:
            cache.popitem(last=False)
    return hits
