"""Chapter 10 (event recommendation): the plumbing around the chapter's lesson.

The chapter writes its point-in-time features and trains its ranker in the notebook; this module
holds what is not the lesson, tested once:

- :func:`known_before` -- an as-of join: a running total per key, read strictly before each
  query's day (what was known when an impression was served);
- :func:`average_precision_per_user` -- AP@k of scored (user, event) pairs, every user at once
  (MAP@k is their mean);
- :func:`ndcg_per_user` -- nDCG@k with a graded gain (the true probability) per user.

Serving (the request path itself is in the notebook):

- :func:`open_events` -- the events a feed ranks on a day: created in the week before it and
  starting after it (the chapter's test events, at the cut-off);
- :class:`CandidateIndex` -- a k-d tree over those events' places: the events within a radius
  of a home, in event-id order;
- :func:`nightly_tables` -- the nightly batch job: per-user aggregates, per (user, host),
  per-event and per-host counts and the events each user was shown, as of a day, with the
  definitions of the chapter's point-in-time features
  (:func:`mlsd.cases.event_recommendation.known_before` on the same rows, so the numbers are
  equal to the bit); :func:`write_nightly` writes them to a
  :class:`~mlsd.systems.feature_store.FeatureStore`;
- :class:`SharedFeatureStore` -- that store with a connection a server's worker threads may use;
- :class:`LiveStore` -- the live tables a request reads: registrations (written the moment one
  happens), friends and follows; how many of a user's friends registered for each event so far;
- :func:`user_row`, :func:`user_host_rows`, :func:`seen_events`, :func:`event_rows` -- a
  request's batch lookups;
- :func:`feed_features` -- the ranker's features of one user's candidates, from those rows and
  the request-time values, in the ranker's column order (:data:`FEATURES`);
- :func:`feed_items` -- the answer's items, with the distance rounded to the kilometre;
- :func:`create_feed_app` -- ``POST /feed`` and ``POST /register`` behind FastAPI;
  :func:`fault` -- the line of a 4xx answer that names the fault.

Monitoring (a season, from :func:`mlsd.datasets.event_recommendation.live_days`):

- :func:`season` -- a taste shift, one number per category, from named categories;
- :func:`live_world` and :func:`catalog_of` -- the world and the event catalog with the live
  days' events (the catalog in the chapter core's layout: integer category/slot codes);
- :func:`category_psi_by_day` and :func:`psi_threshold` -- the daily PSI of the registrations'
  category mix and a threshold calibrated on the reference days (registrations cluster);
- :func:`rate_by_day`, :func:`run_alarms` and :func:`first_alarm` -- a daily rate in a binomial
  band, and the alarm rule (``run`` days in a row outside the band);
- :func:`weekly_table`, :func:`paired_gain` -- weekly MAP@k per system and the paired gain of
  one system over another, bootstrapped over users;
- :func:`signal_numbers`, :func:`monitoring_numbers` and :func:`plot_monitoring` -- the
  section's numbers and figure.

Exercises: :func:`cell_centres` (a home coarsened to its grid cell), :func:`as_seen_by_friends`
(facts about users re-keyed to their friends: the chapter's friends' features use it too),
:func:`true_taste` (the hidden taste of each pair) and :func:`user_difference_interval`.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at runtime.

import dataclasses
import logging
import numbers
import sqlite3
import threading
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial import cKDTree

from mlsd._checks import check_finite, check_int
from mlsd.datasets import event_recommendation as er
from mlsd.datasets.world import World
from mlsd.evaluation import drift
from mlsd.evaluation.drift import binomial_band, psi_categorical
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.evaluation.headline import lift_share
from mlsd.evaluation.ranking import top_k
from mlsd.systems.feature_store import FeatureStore, SQLiteStore
from mlsd.systems.serving import fault, service_app

__all__ = [
    "user_difference_interval",
    "true_taste",
    "cell_centres",
    "as_seen_by_friends",
    "CandidateIndex",
    "FEATURES",
    "LiveStore",
    "SharedFeatureStore",
    "average_precision_per_user",
    "catalog_of",
    "category_psi_by_day",
    "create_feed_app",
    "event_rows",
    "fault",
    "feed_features",
    "feed_items",
    "first_alarm",
    "known_before",
    "live_world",
    "monitoring_numbers",
    "ndcg_per_user",
    "nightly_tables",
    "open_events",
    "paired_gain",
    "plot_monitoring",
    "psi_threshold",
    "rate_by_day",
    "run_alarms",
    "season",
    "seen_events",
    "signal_numbers",
    "user_host_rows",
    "user_row",
    "weekly_table",
    "write_nightly",
]

def known_before(facts: pd.DataFrame, queries: pd.DataFrame, by: list[str], value: str | None = None) -> np.ndarray:
    """For each query row: the total of ``facts[value]`` (or the count of facts) with the same
    ``by`` keys and a ``day`` strictly before the query's ``day``.

    An as-of join (:func:`pandas.merge_asof` with ``allow_exact_matches=False``) on running
    totals: a fact of day t is known from day t + 1 on, never on its own day, so a feature built
    this way cannot see the impression it describes nor anything after it. Returns one float per
    query row, in the queries' order (0 where nothing was known).

    Raises
    ------
    ValueError
        If a column is missing or the days are not integers.
    """
    by = list(by)
    if not by:
        raise ValueError("by must name at least one key column")
    value_cols = [] if value is None else [value]
    for name, frame, cols in (("facts", facts, by + ["day"] + value_cols), ("queries", queries, by + ["day"])):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the columns {missing}")
        if not pd.api.types.is_integer_dtype(frame["day"]):
            raise ValueError(f"{name}.day must hold integers, got {frame['day'].dtype}")
    values = np.ones(len(facts)) if value is None else facts[value].to_numpy(float)
    if np.isnan(values).any():
        raise ValueError(f"facts.{value} holds NaN: a total over it would be unknown")
    facts = facts[by + ["day"]].astype({c: np.int64 for c in by + ["day"]
                                        if pd.api.types.is_integer_dtype(facts[c])})
    queries = queries[by + ["day"]].astype({c: np.int64 for c in by + ["day"]
                                            if pd.api.types.is_integer_dtype(queries[c])})
    totals = facts.assign(_v=values)
    totals = totals.groupby(by + ["day"], as_index=False)["_v"].sum().sort_values("day", kind="stable")
    totals["_v"] = totals.groupby(by)["_v"].cumsum()
    asked = queries[by + ["day"]].reset_index(drop=True)
    asked["_row"] = np.arange(len(asked))
    asked = asked.sort_values("day", kind="stable")
    merged = pd.merge_asof(asked, totals, on="day", by=by, allow_exact_matches=False)
    out = np.zeros(len(queries))
    out[merged["_row"].to_numpy()] = merged["_v"].fillna(0.0).to_numpy()
    return out


def _ranked(users, events, scores, k: int) -> pd.DataFrame:
    """Each user's best ``k`` pairs: their positions in the input, users and ranks (0 best)."""
    users, events, scores = (np.asarray(a) for a in (users, events, scores))
    if not (users.shape == events.shape == scores.shape) or users.ndim != 1:
        raise ValueError(f"users, events and scores must be 1-D of one length, got shapes "
                         f"{users.shape}, {events.shape}, {scores.shape}")
    scores = scores.astype(float)
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN, which has no rank")
    # one row per user, its pairs in event order (so ties go to the lower event id, the same
    # on every machine), padded with -inf; top_k then sorts only each row's best cells
    by_pair = np.lexsort((events, users))
    u = users[by_pair]
    starts = np.searchsorted(u, u, side="left")
    column = np.arange(len(u)) - starts
    row_users, row = np.unique(u, return_inverse=True)
    grid = np.full((len(row_users), int(column.max(initial=0)) + 1), -np.inf)
    grid[row, column] = scores[by_pair]
    where = np.full(grid.shape, -1)
    where[row, column] = by_pair
    best = top_k(grid, k) if len(u) else np.zeros((0, k), dtype=int)
    rows = np.repeat(np.arange(len(row_users)), best.shape[1])
    order = where[rows, best.ravel()]
    real = order >= 0
    return pd.DataFrame({"order": order[real], "user": row_users[rows][real],
                         "rank": np.tile(np.arange(best.shape[1]), len(row_users))[real]})


def average_precision_per_user(users, events, scores, labels, k: int = 10) -> pd.Series:
    """AP@k of each user's pairs ranked by ``scores``, for users with a positive label.

    AP@k = (1 / min(k, positives)) x sum over ranks i <= k holding a positive of precision@i:
    :func:`mlsd.evaluation.metrics.average_precision_at_k` with ``denominator="min"``, for every
    user at once. A user with no positive label has no AP and is left out. Ties go to the lower
    event id. Returns a Series indexed by user id.
    """
    k = check_int("k", k, minimum=1)
    labels = np.asarray(labels)
    if labels.shape != np.shape(users) or not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0/1, one per pair")
    top = _ranked(users, events, scores, k)
    hits = labels[top["order"].to_numpy()]
    found = pd.Series(hits).groupby(top["user"].to_numpy()).cumsum().to_numpy()
    gain = hits * found / (top["rank"].to_numpy() + 1)
    ap = pd.Series(gain).groupby(top["user"].to_numpy()).sum()
    positives = pd.Series(labels).groupby(np.asarray(users)).sum()
    positives = positives[positives > 0]
    return (ap.reindex(positives.index, fill_value=0.0) / np.minimum(k, positives)).rename("AP@k")


def ndcg_per_user(users, events, scores, gains, k: int = 10) -> pd.Series:
    """nDCG@k of each user's pairs ranked by ``scores``, with a graded ``gains`` per pair.

    DCG@k = sum_{i <= k} gain_i / log2(i + 1), divided by the DCG@k of the same user's pairs in
    the best order of their gains. With the true probability as the gain this is the expected
    DCG's share of the best expected DCG: ranking by the truth scores 1. A user whose gains are
    all 0 is left out.
    """
    k = check_int("k", k, minimum=1)
    gains = np.asarray(gains, dtype=float)
    if gains.shape != np.shape(users) or not np.isfinite(gains).all() or (gains < 0).any():
        raise ValueError("gains must be finite, >= 0, one per pair")
    discount = 1.0 / np.log2(np.arange(2, k + 2))

    def dcg(s):
        top = _ranked(users, events, s, k)
        return pd.Series(gains[top["order"].to_numpy()] * discount[top["rank"].to_numpy()]).groupby(
            top["user"].to_numpy()).sum()

    ideal = dcg(gains)
    ideal = ideal[ideal > 0]
    return (dcg(np.asarray(scores, dtype=float)).reindex(ideal.index, fill_value=0.0) / ideal).rename("nDCG@k")


# --------------------------------------------------------------------------- serving

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: the ranker's features, in its column order (the chapter's ``point_in_time_features``)
FEATURES = ("distance_km", "user_mean_distance", "category_share", "declared", "slot_share",
            "log_price", "user_mean_log_price", "user_registrations", "user_impressions",
            "followed", "user_host_registrations", "friends_registered", "friends_at_host",
            "event_registrations", "event_impressions", "host_registrations",
            "host_impressions", "days_until_start", "days_open", "slot", "category")
_EVENT = ("host_id", "category", "slot", "log_price", "start_day", "created_day", "x_km",
          "y_km")
_WEEK = 7


def _columns(frame, name: str, columns) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}")


# --------------------------------------------------------------------------- candidates


def open_events(events: pd.DataFrame, day: int, window: int = _WEEK) -> np.ndarray:
    """Ids of the events created in the ``window`` days before ``day`` that start after it.

    The feed's candidates on ``day``: new events still taking registrations (at the cut-off,
    exactly the events of the chapter's test task). Sorted by id.
    """
    _columns(events, "events", ["event_id", "created_day", "start_day"])
    day, window = check_int("day", day, minimum=0), check_int("window", window, minimum=1)
    created, start = events["created_day"].to_numpy(), events["start_day"].to_numpy()
    keep = (created >= day - window) & (created < day) & (start > day)
    return np.sort(events["event_id"].to_numpy()[keep])


class CandidateIndex:
    """A k-d tree over events' places: which events lie within ``km`` of a point.

    ``places`` is a DataFrame indexed by event id with ``x_km`` and ``y_km``. :meth:`within`
    asks the tree for the events in a slightly larger ball, then keeps those whose distance,
    computed as ``numpy.hypot`` of the differences (the chapter's formula), is at most ``km``:
    an event on the boundary is in or out exactly as offline.
    """

    def __init__(self, places: pd.DataFrame):
        _columns(places, "places", ["x_km", "y_km"])
        if len(places) == 0:
            raise ValueError("places is empty: an index needs at least one event")
        xy = places[["x_km", "y_km"]].to_numpy(float)
        if not np.isfinite(xy).all():
            raise ValueError("places hold a missing or infinite coordinate")
        self.ids = places.index.to_numpy()
        self.xy = xy
        self.tree = cKDTree(xy)

    def __len__(self) -> int:
        return len(self.ids)

    def within(self, x: float, y: float, km: float) -> np.ndarray:
        """Ids of the events at most ``km`` from (x, y), sorted by id."""
        x, y, km = (check_finite(n, v) for n, v in (("x", x), ("y", y), ("km", km)))
        if km <= 0:
            raise ValueError(f"km must be > 0, got {km}")
        near = np.asarray(self.tree.query_ball_point([x, y], km * (1 + 1e-9) + 1e-9), dtype=int)
        exact = np.hypot(x - self.xy[near, 0], y - self.xy[near, 1]) <= km
        return np.sort(self.ids[near[exact]])


# --------------------------------------------------------------------------- the nightly job


def _shown(log: pd.DataFrame, catalog: pd.DataFrame, home: np.ndarray) -> pd.DataFrame:
    """The impressions with the event's attributes and the distance from the user's home."""
    out = log[["user_id", "event_id", "day"]].join(
        catalog[["host_id", "category", "slot", "log_price"]], on="event_id")
    place = catalog.loc[out["event_id"], ["x_km", "y_km"]].to_numpy()
    return out.assign(distance_km=np.hypot(*(home[out["user_id"]] - place).T))


def _per(keys: pd.DataFrame, day: int, facts: pd.DataFrame, value=None) -> np.ndarray:
    return known_before(facts, keys.assign(day=day), list(keys.columns), value)


def nightly_tables(log: pd.DataFrame, catalog: pd.DataFrame, home, declared, friends: pd.DataFrame,
                   day: int, events=None) -> dict[str, pd.DataFrame]:
    """The nightly batch features as of ``day``: what the log knew strictly before it.

    Parameters
    ----------
    log
        Impressions (user_id, event_id, day, registered); rows of ``day`` or later are ignored.
    catalog
        Events indexed by event_id, with host_id, integer category and slot codes, log_price,
        start_day, created_day, x_km and y_km.
    home, declared
        Per user (rows indexed by user id): home (x, y) in km, and 0/1 per category declared.
    friends
        user_id, friend_id: a registration by ``user_id`` counts for ``friend_id``.
    day
        The night's date: facts of earlier days are known.
    events
        The event ids of the ``events`` table (default: every event of the catalog).

    Returns
    -------
    dict
        ``users`` (user_id; home; registrations, impressions, mean distance and log price of
        the registrations; a count per category and per slot; declared 0/1 per category),
        ``user_hosts`` (user_id, host_id; the user's and their friends' registrations at the
        host, for the pairs with any and a host of one of ``events``), ``events`` (event_id;
        the attributes; registrations and impressions so far), ``hosts`` (host_id;
        registrations and impressions) and ``seen`` (user_id, event_id: the events of
        ``events`` each user was shown). Counts and means use the definitions of the
        chapter's point-in-time features.
    """
    _columns(log, "log", ["user_id", "event_id", "day", "registered"])
    _columns(catalog, "catalog", list(_EVENT))
    _columns(friends, "friends", ["user_id", "friend_id"])
    day = check_int("day", day, minimum=0)
    home, declared = np.asarray(home, dtype=float), np.asarray(declared, dtype=float)
    if home.ndim != 2 or home.shape[1] != 2 or declared.shape[:1] != home.shape[:1]:
        raise ValueError(f"home must be (users, 2) and declared (users, categories), got "
                         f"{home.shape} and {declared.shape}")
    log = log[log["day"] < day]
    shown = _shown(log, catalog, home)
    reg = shown[log["registered"].to_numpy() == 1]
    by_friends = reg.merge(friends, on="user_id").drop(columns="user_id").rename(
        columns={"friend_id": "user_id"})
    users = pd.DataFrame({"user_id": np.arange(len(home))})
    n = _per(users, day, reg)
    mean = lambda total: np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)
    table = users.assign(x_km=home[:, 0], y_km=home[:, 1], registrations=n,
                         impressions=_per(users, day, shown),
                         mean_distance=mean(_per(users, day, reg, "distance_km")),
                         mean_log_price=mean(_per(users, day, reg, "log_price")))
    for name, width in (("category", declared.shape[1]), ("slot", int(catalog["slot"].max()) + 1)):
        for code in range(width):
            keys = users.assign(**{name: np.full(len(users), code, dtype=reg[name].dtype)})
            table[f"{name}_{code}"] = _per(keys, day, reg)
    for code in range(declared.shape[1]):
        table[f"declared_{code}"] = declared[:, code]
    ids = catalog.index.to_numpy() if events is None else np.asarray(events)
    pairs = pd.concat([reg[["user_id", "host_id"]], by_friends[["user_id", "host_id"]]])
    pairs = pairs[pairs["host_id"].isin(catalog.loc[ids, "host_id"])].drop_duplicates()
    pairs = pairs.sort_values(["user_id", "host_id"]).reset_index(drop=True)
    user_hosts = pairs.assign(user_host_registrations=_per(pairs, day, reg),
                              friends_at_host=_per(pairs, day, by_friends))
    event_keys = pd.DataFrame({"event_id": ids})
    event_table = event_keys.join(catalog[list(_EVENT)], on="event_id").assign(
        event_registrations=_per(event_keys, day, reg),
        event_impressions=_per(event_keys, day, shown))
    seen = log.loc[log["event_id"].isin(ids), ["user_id", "event_id"]].drop_duplicates()
    host_keys = pd.DataFrame({"host_id": np.unique(catalog["host_id"])})
    hosts = host_keys.assign(host_registrations=_per(host_keys, day, reg),
                             host_impressions=_per(host_keys, day, shown))
    return {"users": table, "user_hosts": user_hosts, "events": event_table, "hosts": hosts,
            "seen": seen.sort_values(["user_id", "event_id"]).reset_index(drop=True)}


_KEYS = {"users": ["user_id"], "user_hosts": ["user_id", "host_id"], "events": ["event_id"],
         "hosts": ["host_id"], "seen": ["user_id", "event_id"]}


def write_nightly(store: FeatureStore, tables: dict) -> pd.DataFrame:
    """Write :func:`nightly_tables`' frames to ``store``; return rows and columns per table."""
    if not isinstance(store, FeatureStore):
        raise TypeError(f"store must be a FeatureStore, got {type(store).__name__}")
    missing = [t for t in _KEYS if t not in tables]
    if missing:
        raise ValueError(f"tables lacks {missing}")
    for name, key in _KEYS.items():
        store.write(name, tables[name], key)
    return pd.DataFrame({name: {"key": ", ".join(key), "rows": store.count(name),
                                "columns": tables[name].shape[1]}
                         for name, key in _KEYS.items()}).T


class SharedFeatureStore(FeatureStore):
    """A :class:`FeatureStore` whose connection any thread may use, one at a time.

    A web server runs its endpoints in worker threads; SQLite's Python driver refuses a
    connection made in another thread unless told otherwise. The caller serialises the calls
    (:func:`create_feed_app` holds a lock around each request).
    """

    def __init__(self, path=":memory:"):
        super().__init__(path, shared=True)


# --------------------------------------------------------------------------- the live tables


_LIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS registrations (
    user_id INTEGER NOT NULL, event_id INTEGER NOT NULL, day INTEGER NOT NULL,
    PRIMARY KEY (user_id, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS friends (
    friend_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    PRIMARY KEY (friend_id, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS follows (
    user_id INTEGER NOT NULL, host_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, host_id)) WITHOUT ROWID;
"""


def _ints(name: str, frame: pd.DataFrame, columns) -> list[tuple]:
    _columns(frame, name, columns)
    values = frame[list(columns)]
    if not all(pd.api.types.is_integer_dtype(t) for t in values.dtypes):
        raise ValueError(f"{name}'s columns {list(columns)} must hold integers")
    return [tuple(int(v) for v in row) for row in values.itertuples(index=False)]


class LiveStore(SQLiteStore):
    """The tables a request reads as they are now: registrations, friends and follows.

    ``registrations`` gets a row the moment a user registers (:meth:`register`); ``friends``
    holds (friend_id, user_id) keyed by the friend, so "whose registrations count for this
    user" is one range scan. The connection may be used from any thread, one at a time.
    """

    def __init__(self, path=":memory:"):
        super().__init__(path, _LIVE_SCHEMA, shared=True)

    def load(self, registrations: pd.DataFrame, friends: pd.DataFrame,
             follows: pd.DataFrame) -> dict:
        """Fill the tables (registrations: user_id, event_id, day; friends: user_id,
        friend_id; follows: user_id, host_id); return their row counts. Raises ``ValueError``
        on a duplicate row (a user registers for an event once)."""
        rows = {"registrations": _ints("registrations", registrations,
                                       ["user_id", "event_id", "day"]),
                "friends": _ints("friends", friends, ["friend_id", "user_id"]),
                "follows": _ints("follows", follows, ["user_id", "host_id"])}
        try:
            with self._db:
                for table, values in rows.items():
                    marks = ", ".join("?" * len(values[0])) if values else "?"
                    self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
        except sqlite3.IntegrityError as error:
            raise ValueError(f"a duplicate row: {error}") from None
        return {table: self.count(table) for table in rows}

    def count(self, table: str) -> int:
        if table not in ("registrations", "friends", "follows"):
            raise ValueError(f"no table {table!r}: registrations, friends or follows")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def register(self, user_id: int, event_id: int, day: int) -> None:
        """Record that ``user_id`` registered for ``event_id`` on ``day``; a second
        registration for the same event raises ``ValueError``."""
        user_id, event_id, day = (check_int(n, v, minimum=0) for n, v in
                                  (("user_id", user_id), ("event_id", event_id), ("day", day)))
        try:
            with self._db:
                self._db.execute("INSERT INTO registrations VALUES (?, ?, ?)",
                                 (user_id, event_id, day))
        except sqlite3.IntegrityError:
            raise ValueError(f"user {user_id} already registered for event {event_id}") from None

    def registered(self, user_id: int) -> np.ndarray:
        """The events ``user_id`` registered for, sorted."""
        user_id = check_int("user_id", user_id, minimum=0)
        rows = self._db.execute("SELECT event_id FROM registrations WHERE user_id = ?",
                                (user_id,)).fetchall()
        return np.array(sorted(r[0] for r in rows), dtype=int)

    def friends_registered(self, user_id: int, event_ids) -> np.ndarray:
        """For each of ``event_ids``: how many of ``user_id``'s friends registered so far."""
        user_id = check_int("user_id", user_id, minimum=0)
        rows = self._db.execute(
            "SELECT r.event_id, COUNT(*) FROM friends AS f JOIN registrations AS r"
            " ON r.user_id = f.user_id WHERE f.friend_id = ? GROUP BY r.event_id",
            (user_id,)).fetchall()
        counts = dict(rows)
        return np.array([counts.get(int(e), 0) for e in np.asarray(event_ids)], dtype=float)

    def followed(self, user_id: int) -> np.ndarray:
        """The hosts ``user_id`` follows, sorted."""
        user_id = check_int("user_id", user_id, minimum=0)
        rows = self._db.execute("SELECT host_id FROM follows WHERE user_id = ? ORDER BY host_id",
                                (user_id,)).fetchall()
        return np.array([r[0] for r in rows], dtype=int)


# --------------------------------------------------------------------------- one request's rows


def _all_columns(store: FeatureStore, table: str) -> list[str]:
    return store._columns(table)


def user_row(store: FeatureStore, user_id: int) -> pd.Series:
    """The user's row of the nightly ``users`` table (one point lookup); ``LookupError`` if
    the user is unknown."""
    user_id = check_int("user_id", user_id, minimum=0)
    columns = _all_columns(store, "users")
    rows = store.lookup("users", columns, user_id=user_id)
    if not rows:
        raise LookupError(f"unknown user_id {user_id}")
    return pd.Series(rows[0], index=columns, dtype=float)


def user_host_rows(store: FeatureStore, user_id: int) -> pd.DataFrame:
    """The user's rows of ``user_hosts`` (a range scan on the key's prefix), by host_id."""
    user_id = check_int("user_id", user_id, minimum=0)
    columns = ["host_id", "user_host_registrations", "friends_at_host"]
    rows = store.lookup("user_hosts", columns, user_id=user_id)
    return pd.DataFrame(rows, columns=columns).set_index("host_id").astype(float)


def seen_events(store: FeatureStore, user_id: int) -> np.ndarray:
    """The open events the user was shown before tonight's batch (a range scan), sorted."""
    user_id = check_int("user_id", user_id, minimum=0)
    return np.array([r[0] for r in store.lookup("seen", ["event_id"], user_id=user_id)],
                    dtype=int)


def event_rows(store: FeatureStore, event_ids) -> pd.DataFrame:
    """The events' rows, with their hosts' counts, in the order of ``event_ids``."""
    event_ids = [int(e) for e in np.asarray(event_ids)]
    columns = [c for c in _all_columns(store, "events") if c != "event_id"]
    frame = pd.DataFrame(store.lookup_in("events", columns, "event_id", event_ids),
                         columns=columns, index=pd.Index(event_ids, name="event_id"))
    host_columns = ["host_registrations", "host_impressions"]
    hosts = store.lookup_in("hosts", host_columns, "host_id", frame["host_id"].tolist())
    return frame.assign(**dict(zip(host_columns, np.array(hosts, dtype=float).reshape(-1, 2).T)))


# --------------------------------------------------------------------------- the features


def feed_features(user: pd.Series, user_hosts: pd.DataFrame, events: pd.DataFrame,
                  friends_registered, followed, day: int, columns=FEATURES) -> pd.DataFrame:
    """The ranker's features of one user's candidate events, in the order of ``columns``
    (default :data:`FEATURES`; pass the model's ``feature_names_in_``).

    ``user`` is the user's nightly row, ``user_hosts`` their (user, host) rows indexed by
    host_id, ``events`` the candidates' rows (:func:`event_rows`); ``friends_registered``
    (one count per candidate) and ``followed`` (host ids) are read at request time, and the
    distance is computed from the home here, on the server. The arithmetic is the chapter's,
    operation for operation, so the values equal the offline ones to the bit.
    """
    day = check_int("day", day, minimum=0)
    if not isinstance(user, pd.Series):
        raise TypeError(f"user must be a pandas Series (a row), got {type(user).__name__}")
    _columns(events, "events", list(_EVENT) + ["event_registrations", "event_impressions",
                                                "host_registrations", "host_impressions"])
    friends_now = np.asarray(friends_registered, dtype=float)
    if friends_now.shape != (len(events),):
        raise ValueError(f"friends_registered needs one count per event ({len(events)}), "
                         f"got shape {friends_now.shape}")
    n = float(user["registrations"])
    category = events["category"].to_numpy(int)
    slot = events["slot"].to_numpy(int)
    row = user.to_dict()
    width = {name: sum(c.startswith(f"{name}_") for c in row)
             for name in ("category", "slot", "declared")}
    per = {name: np.array([row[f"{name}_{i}"] for i in range(n_codes)], dtype=float)
           for name, n_codes in width.items()}
    if category.size and (category.max() >= per["category"].size
                          or slot.max() >= per["slot"].size):
        raise ValueError("an event's category or slot code has no column in the user's row")
    declared = per["declared"][category]
    home = user[["x_km", "y_km"]].to_numpy(float)
    place = events[["x_km", "y_km"]].to_numpy(float)
    at_host = user_hosts.reindex(events["host_id"].to_numpy(), fill_value=0.0)
    X = pd.DataFrame({
        "distance_km": np.hypot(*(home - place).T),
        "user_mean_distance": user["mean_distance"],
        "category_share": (per["category"][category] + declared) / (n + 2),
        "declared": declared,
        "slot_share": (per["slot"][slot] + 1) / (n + 3),
        "log_price": events["log_price"].to_numpy(float),
        "user_mean_log_price": user["mean_log_price"],
        "user_registrations": n, "user_impressions": user["impressions"],
        "followed": np.isin(events["host_id"].to_numpy(), np.asarray(followed, dtype=int)),
        "user_host_registrations": at_host["user_host_registrations"].to_numpy(),
        "friends_registered": friends_now,
        "friends_at_host": at_host["friends_at_host"].to_numpy(),
        "event_registrations": events["event_registrations"].to_numpy(float),
        "event_impressions": events["event_impressions"].to_numpy(float),
        "host_registrations": events["host_registrations"].to_numpy(float),
        "host_impressions": events["host_impressions"].to_numpy(float),
        "days_until_start": events["start_day"].to_numpy() - day,
        "days_open": day - events["created_day"].to_numpy(),
        "slot": slot, "category": category}, index=events.index)
    unknown = [c for c in columns if c not in X.columns]
    if isinstance(columns, str) or unknown:
        raise ValueError(f"columns must be a list of the features {list(FEATURES)}, got "
                         f"{columns!r}" + (f" ({unknown} unknown)" if unknown else ""))
    return X[list(columns)].astype(float)


def feed_items(event_ids, scores, X: pd.DataFrame) -> list[dict]:
    """The answer's items: event id, score, distance rounded to the km, friends registered.

    ``X`` holds the features of the events in ``event_ids`` (indexed by event id). The exact
    distance stays on the server: to the kilometre it tells the user how far, not where the
    user lives to whoever sees the answer.
    """
    event_ids, scores = np.asarray(event_ids), np.asarray(scores, dtype=float)
    if event_ids.shape != scores.shape or event_ids.ndim != 1:
        raise ValueError(f"event_ids and scores must be 1-D of one length, got "
                         f"{event_ids.shape} and {scores.shape}")
    rows = X.loc[event_ids]
    return [{"event_id": int(e), "score": float(s), "distance_km": int(round(d)),
             "friends_registered": int(f)}
            for e, s, d, f in zip(event_ids, scores, rows["distance_km"],
                                  rows["friends_registered"])]


# --------------------------------------------------------------------------- the app


def create_feed_app(feed: Callable[[int, int], list], register: Callable[[int, int], None], *,
                    n_users: int, events, max_k: int = 50, model_version: str = "1",
                    max_body_bytes: int = 1_000) -> FastAPI:
    """A FastAPI app serving the feed and taking registrations.

    ``feed(user_id, k)`` returns the user's top ``k`` items (:func:`feed_items`);
    ``register(user_id, event_id)`` records a registration (``ValueError`` if there is one
    already). Users are ``0 .. n_users - 1``; ``events`` are the ids one may register for.

    Endpoints: ``GET /health``; ``POST /feed`` with ``{"user_id": 7, "k": 10}`` ->
    ``{"user_id": 7, "events": [{"event_id", "score", "distance_km",
    "friends_registered"}, ...], "model_version": ...}``; ``POST /register`` with
    ``{"user_id": 7, "event_id": 3101}`` -> ``{"registered": true}``.

    Bad requests get a 4xx naming the fault and the server keeps serving: **422** for a
    missing or extra field, a value that is not an integer (``"7"``, ``7.0`` and ``true`` are
    refused), a negative id or ``k`` outside ``1 .. max_k``; **404** for an unknown user or an
    event not open; **409** for a second registration; **413** for a body over
    ``max_body_bytes``. An exception in ``feed`` is logged and answered with a 500. The
    calls run one at a time (a lock), since the stores have one connection each.
    """
    n_users = check_int("n_users", n_users, minimum=1)
    max_k = check_int("max_k", max_k, minimum=1)
    if not callable(feed) or not callable(register):
        raise TypeError("feed and register must be callable")
    open_ids = {int(e) for e in np.asarray(events).ravel()}
    lock = threading.Lock()

    class FeedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        user_id: int = Field(ge=0)
        k: int = Field(ge=1, le=max_k)

    class RegisterRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        user_id: int = Field(ge=0)
        event_id: int = Field(ge=0)

    app = service_app("mlsd event feed", model_version, max_body_bytes)

    def known_user(user_id):
        if user_id >= n_users:
            raise HTTPException(404, f"unknown user_id {user_id}")

    @app.post("/feed")
    def serve(body: FeedRequest):
        known_user(body.user_id)
        try:
            with lock:
                items = feed(body.user_id, body.k)
        except Exception:
            logger.exception("the feed failed for user %d", body.user_id)
            raise HTTPException(500, "internal error while ranking") from None
        return {"user_id": body.user_id, "events": items, "model_version": model_version}

    @app.post("/register")
    def take(body: RegisterRequest):
        known_user(body.user_id)
        if body.event_id not in open_ids:
            raise HTTPException(404, f"event_id {body.event_id} is not open for registration")
        try:
            with lock:
                register(body.user_id, body.event_id)
        except ValueError as error:
            raise HTTPException(409, str(error)) from None
        return {"registered": True}

    return app



# --------------------------------------------------------------------------- monitoring

# --------------------------------------------------------------------------- the season


def season(**shift) -> np.ndarray:
    """A taste shift, one number per category of ``er.CATEGORIES`` (0 for those not named),
    from ``category=value`` pairs on the logit scale: ``season(outdoors=1.0, tech=-1.0)``."""
    if not shift:
        raise ValueError("name at least one category and its shift")
    out = np.zeros(len(er.CATEGORIES))
    for name, value in shift.items():
        if name not in er.CATEGORIES:
            raise ValueError(f"unknown category {name!r}; expected one of {er.CATEGORIES}")
        out[er.CATEGORIES.index(name)] = check_finite(name, value)
    return out


def live_world(world: World, events: pd.DataFrame, impressions: pd.DataFrame) -> World:
    """``world`` with the live days' ``events`` and ``impressions`` (as ``er.live_days``
    returns them) in place of the stored ones: what :func:`er.ranking_task` and
    :func:`er.true_logit` read. The stored events must come first, unchanged in id."""
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    stored = world.observed["events"]
    for name, frame, cols in (("events", events, ("event_id", "category", "created_day")),
                              ("impressions", impressions, ("day", "user_id", "event_id"))):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
        if missing := [c for c in cols if c not in frame.columns]:
            raise ValueError(f"{name} lacks the columns {missing}")
    ids = events["event_id"].to_numpy()
    if len(ids) < len(stored) or not (ids == np.arange(len(ids))).all():
        raise ValueError("events must hold the stored events first, ids 0..n-1 in order")
    return dataclasses.replace(world, observed={**world.observed, "events": events,
                                                "impressions": impressions})


def catalog_of(events: pd.DataFrame) -> pd.DataFrame:
    """Events indexed by event_id with integer ``category``/``slot`` codes (positions in
    ``er.CATEGORIES``/``er.SLOTS``) and ``log_price``: the chapter core's catalog layout."""
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a DataFrame, got {type(events).__name__}")
    codes = {}
    for column, names in (("category", er.CATEGORIES), ("slot", er.SLOTS)):
        if not events[column].isin(names).all():
            raise ValueError(f"events.{column} holds a value outside {names}")
        codes[column] = pd.Categorical(events[column], categories=names).codes
    return events.assign(log_price=np.log1p(events["price"]), **codes).set_index("event_id")


# --------------------------------------------------------------------------- daily signals


def category_psi_by_day(day, category, reference) -> pd.DataFrame:
    """Per day, the PSI (:func:`mlsd.evaluation.drift.psi_categorical`) of the categories of
    that day's rows (registrations, say) against the pooled rows of the ``reference`` days.

    ``day`` and ``category`` hold one value per row; ``reference`` is a boolean per row (the
    rows of the reference days). Returns a frame indexed by day: ``psi`` and ``n`` (rows).
    """
    day, category, reference = (np.asarray(a) for a in (day, category, reference))
    if day.ndim != 1 or category.shape != day.shape or reference.shape != day.shape:
        raise ValueError("day, category and reference need one value per row (1-d, one length)")
    if reference.dtype != bool or not reference.any():
        raise ValueError("reference must be a boolean per row marking at least one row")
    expected = category[reference].tolist()
    rows = {d: (psi_categorical(expected, category[day == d].tolist()), int((day == d).sum()))
            for d in np.unique(day)}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["psi", "n"]).rename_axis("day")


def psi_threshold(psi, n, reference, n_categories: int, level: float = 0.999):
    """A threshold per day for a categorical PSI, calibrated on the reference days:
    :func:`mlsd.evaluation.drift.dispersion_threshold` with ``n_categories - 1`` degrees of
    freedom (for independent draws from the reference shares, n x PSI is close to Pearson's
    chi-square; registrations are not independent, so the band is widened by the dispersion
    measured on the reference days). Returns ``(threshold array, phi)``."""
    n_categories = check_int("n_categories", n_categories, minimum=2)
    return drift.dispersion_threshold(psi, n, reference, n_categories - 1, level)


def rate_by_day(day, hit, reference_days, z: float = 3.0) -> pd.DataFrame:
    """Per day, the rate of ``hit`` (0/1 per row) with a band of ``z`` binomial standard
    errors around its pooled rate on ``reference_days`` (:func:`binomial_band`): a frame
    indexed by day with ``rate``, ``n``, ``low``, ``high``."""
    day, hit = np.asarray(day), np.asarray(hit)
    if day.ndim != 1 or hit.shape != day.shape or not len(day):
        raise ValueError("day and hit need one value per row (1-d, one length, not empty)")
    if not np.isin(hit, (0, 1)).all():
        raise ValueError("hit must hold 0/1 values")
    out = pd.DataFrame({"hit": hit, "day": day}).groupby("day")["hit"].agg(["mean", "size"])
    out.columns = ["rate", "n"]
    ref = out.index.isin(list(reference_days))
    if not ref.any():
        raise ValueError("none of reference_days is a day of the data")
    pooled = float((out["rate"] * out["n"])[ref].sum() / out["n"][ref].sum())
    out["low"], out["high"] = binomial_band(pooled, int(out["n"][ref].sum()), out["n"], z=z)
    return out


run_alarms = drift.run_alarms
first_alarm = drift.first_alarm


# --------------------------------------------------------------------------- weekly quality


def weekly_table(per_user: Mapping[int, pd.DataFrame], baseline: str, model: str,
                 oracle: str) -> pd.DataFrame:
    """Per cut-off (the keys of ``per_user``: frames of AP@k per user, one column per system),
    each system's MAP and the model's share of the baseline-to-oracle lift
    (:func:`mlsd.evaluation.headline.lift_share`); a system missing at a cut-off is NaN."""
    if not per_user:
        raise ValueError("give at least one cut-off's per-user frame")
    rows = {}
    for cut, frame in per_user.items():
        if missing := [c for c in (baseline, model, oracle) if c not in frame]:
            raise ValueError(f"cut-off {cut} lacks the systems {missing}")
        means = frame.mean()
        rows[cut] = {**means, f"{model}: lift share": lift_share(
            means[baseline], means[model], means[oracle])}
    return pd.DataFrame(rows).T.rename_axis("cut-off")


def paired_gain(per_user: Mapping[int, pd.DataFrame], before: str, after: str, *, seed: int,
                n_resamples: int = 1000) -> tuple[float, float, float]:
    """Mean AP gain of ``after`` over ``before`` over the (user, cut-off) rows of the given
    cut-offs, with a 95 % paired bootstrap interval that resamples users (a user's weeks stay
    together: :func:`paired_bootstrap` with groups). Returns ``(gain, low, high)``."""
    frames = [f[[before, after]].assign(user=f.index.to_numpy()) for f in per_user.values()]
    if not frames:
        raise ValueError("give at least one cut-off's per-user frame")
    rows = pd.concat(frames, ignore_index=True)
    diff = (rows[after] - rows[before]).to_numpy(float)
    low, high = paired_bootstrap(np.mean, diff, groups=rows["user"].to_numpy(), seed=seed,
                                 n_resamples=n_resamples)
    return float(diff.mean()), low, high


# --------------------------------------------------------------------------- numbers and figure


def signal_numbers(psi: pd.DataFrame, naive_threshold, explore: pd.DataFrame, *,
                   shift_day: int) -> dict:
    """Numbers on the daily signals before the season (days of ``psi`` before ``shift_day``):
    how many there are (``mon_quiet_days``), how many pass ``naive_threshold`` (the PSI
    threshold for independent registrations, dispersion 1: ``mon_naive_alarms``) and the
    rule of thumb's 0.1, "investigate" (``mon_quiet_over_rule``); from ``explore``
    (:func:`rate_by_day` of the explore slots), the mean registrations a day
    (``mon_explore_regs``) and the band's mean half-width as a share of its centre
    (``mon_explore_width``)."""
    naive = np.asarray(naive_threshold, dtype=float)
    if naive.shape != (len(psi),):
        raise ValueError(f"naive_threshold needs one value per day of psi ({len(psi)})")
    quiet = psi.index < shift_day
    if not quiet.any():
        raise ValueError(f"psi has no day before shift_day {shift_day}")
    return {"mon_quiet_days": int(quiet.sum()),
            "mon_naive_alarms": int((psi["psi"].to_numpy() > naive)[quiet].sum()),
            "mon_quiet_over_rule": int((psi.loc[quiet, "psi"] > 0.1).sum()),
            "mon_explore_regs": float((explore["rate"] * explore["n"]).mean()),
            "mon_explore_width": float(((explore["high"] - explore["low"])
                                        / (explore["high"] + explore["low"])).mean())}


def monitoring_numbers(shift, psi: pd.DataFrame, rates: Mapping[str, pd.DataFrame],
                       alarms: Mapping[str, int | None], weekly: pd.DataFrame, gain, *,
                       shift_day: int, fix_day: int, names: Mapping[str, str]) -> dict:
    """The numbers the section's prose quotes, named ``mon_*``.

    ``psi``: :func:`category_psi_by_day`. The weekly cut-offs before ``shift_day`` are
    "before", those from ``fix_day`` on "after", those between "drifted".

    ``alarms``: first alarm day per signal (None: never), in the order category mix, served
    slots, explore slots; ``rates``: the two rate frames (:func:`rate_by_day`) by the same
    names; ``weekly``: :func:`weekly_table` with the systems named in ``names`` (keys
    baseline, deployed, retrained, oracle); ``gain``: :func:`paired_gain`'s triple.
    """
    if len(alarms) != 3 or list(rates) != list(alarms)[1:]:
        raise ValueError("alarms needs three signals; rates the last two, in the same order")
    if missing := {"baseline", "deployed", "retrained", "oracle"} - set(names):
        raise ValueError(f"names lacks {sorted(missing)}")
    shift = np.asarray(shift, dtype=float)
    out = {"mon_shift_day": shift_day, "mon_fix_day": fix_day,
           "mon_shift_up": float(shift.max()), "mon_shift_down": float(-shift.min()),
           "mon_psi_before": float(psi.loc[psi.index < shift_day, "psi"].max()),
           "mon_psi_after": float(psi.loc[psi.index >= shift_day, "psi"].mean())}
    for key, (name, day) in zip(("mix", "served", "explore"), alarms.items()):
        out[f"mon_{key}_verdict"] = f"alarms on day {day}" if day is not None else "never alarms"
        out[f"mon_{key}_delay"] = -1 if day is None else day - shift_day
    for key, frame in zip(("served", "explore"), rates.values()):
        out[f"mon_{key}_before"] = float(frame.loc[frame.index < shift_day, "rate"].mean())
        out[f"mon_{key}_after"] = float(frame.loc[frame.index >= shift_day, "rate"].mean())
    share = f"{names['deployed']}: lift share"
    before, after = weekly.index < shift_day, weekly.index >= fix_day
    for key in ("baseline", "deployed", "oracle"):
        out[f"mon_{key}_before"] = float(weekly.loc[before, names[key]].mean())
        out[f"mon_{key}_after"] = float(weekly.loc[after, names[key]].mean())
    out["mon_retrained_after"] = float(weekly.loc[after, names["retrained"]].mean())
    out["mon_share_before"] = float(weekly.loc[before, share].mean())
    out["mon_share_drifted"] = float(weekly.loc[~before & ~after, share].mean())
    out["mon_share_after"] = float(weekly.loc[after, share].mean())
    out["mon_share_retrained"] = float(np.mean([lift_share(
        *weekly.loc[c, [names["baseline"], names["retrained"], names["oracle"]]])
        for c in weekly.index[after]]))
    out["mon_gain"], out["mon_gain_low"], out["mon_gain_high"] = gain
    out["mon_gain_verdict"] = ("more than chance explains" if gain[1] > 0 else
                               "less than chance explains" if gain[2] < 0 else
                               "within what chance explains")
    return out


def plot_monitoring(axes, psi: pd.DataFrame, threshold, alarm: int | None,
                    weekly: pd.DataFrame, systems: Mapping[str, str], *, shift_day: int,
                    fix_day: int) -> None:
    """The section's figure: on ``axes[0]`` the daily PSI of the registrations' category mix
    under its threshold, with the season's start and the first alarm; on ``axes[1]`` weekly
    MAP by cut-off for ``systems`` (label -> column of ``weekly``), the fix day marked."""
    if len(axes) != 2:
        raise ValueError("give two axes: the daily signal and the weekly MAP")
    left, right = axes
    days = psi.index.to_numpy()
    left.fill_between(days, 0, threshold, color="0.85", step="mid", label="band (no alarm)")
    left.plot(days, psi["psi"], "o-", ms=3, color="#0072B2", label="category mix (PSI)")
    left.axvline(shift_day - 0.5, color="0.3", ls=":", lw=1, label="season starts")
    if alarm is not None:
        left.axvline(alarm, color="#D55E00", lw=1, label="first alarm")
    left.set(xlabel="day", ylabel="PSI against the reference weeks")
    left.legend(loc="upper left", fontsize=8)
    styles = ["s-", "o-", "D--", "^:"]
    colors = ["#999999", "#0072B2", "#009E73", "#000000"]
    for (label, column), style, color in zip(systems.items(), styles, colors):
        right.plot(weekly.index, weekly[column], style, ms=4, color=color, label=label)
    right.axvline(shift_day - 0.5, color="0.3", ls=":", lw=1)
    right.axvline(fix_day - 0.5, color="#009E73", ls="--", lw=1, label="fix day")
    top = np.nanmax(weekly[list(systems.values())].to_numpy(float)) if systems else 1.0
    right.set(xlabel="cut-off day (the week's new events)", ylabel="MAP@10",
              ylim=(0, 1.1 * top))
    right.legend(loc="lower center", fontsize=8, ncol=2)


# --------------------------------------------------------------------------- exercises


def cell_centres(points, cell_km: float) -> np.ndarray:
    """The centre of the square grid cell (side ``cell_km``, one corner at the origin) that holds
    each point of ``points``, an ``(n, 2)`` array of kilometres. A point on a cell's lower edge
    belongs to that cell.

    Raises
    ------
    TypeError
        If ``cell_km`` is not a number.
    ValueError
        If ``points`` is not an ``(n, 2)`` array of finite numbers or ``cell_km`` is not > 0.
    """
    if isinstance(cell_km, bool) or not isinstance(cell_km, numbers.Real):
        raise TypeError(f"cell_km must be a number, got {type(cell_km).__name__} {cell_km!r}")
    if not np.isfinite(cell_km) or cell_km <= 0:
        raise ValueError(f"cell_km must be a finite number > 0, got {cell_km!r}")
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 2 or points.dtype.kind not in "iuf":
        raise ValueError(f"points must be an (n, 2) array of numbers, got shape {points.shape} "
                         f"of {points.dtype}")
    if not np.isfinite(points).all():
        raise ValueError("points must be finite")
    return (np.floor(points / cell_km) + 0.5) * cell_km


def as_seen_by_friends(facts: pd.DataFrame, friends: pd.DataFrame) -> pd.DataFrame:
    """Each row of ``facts`` (about ``user_id``) once per friend of that user, with ``user_id``
    now the friend's: an as-of join by ``user_id`` on the result counts what the friends did.

    ``friends`` lists each friendship in both directions (columns ``user_id``, ``friend_id``).
    The rows keep their other columns; a fact of a user with no friend disappears.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    for name, frame, cols in (("facts", facts, ["user_id"]),
                              ("friends", friends, ["user_id", "friend_id"])):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} lacks the columns {missing}")
    if "friend_id" in facts.columns:
        raise ValueError("facts already has a friend_id column")
    edges = friends[["user_id", "friend_id"]]
    return (facts.merge(edges, on="user_id").drop(columns="user_id")
            .rename(columns={"friend_id": "user_id"}))


def true_taste(world, user_ids, category_codes) -> np.ndarray:
    """The hidden taste (logit scale) of each user in ``user_ids`` for the category whose code
    (an index into ``CATEGORIES``) is in ``category_codes``, pair by pair.

    Raises
    ------
    ValueError
        If the world has no users' truth, or an id or a code is out of range.
    """
    truth = getattr(world, "hidden", {}).get("user_truth")
    if truth is None:
        raise ValueError("world has no hidden user_truth table: pass the event world")
    taste = truth.set_index("user_id").sort_index()[[f"taste_{c}" for c in er.CATEGORIES]]
    users, codes = np.asarray(user_ids), np.asarray(category_codes)
    if users.shape != codes.shape or users.ndim != 1:
        raise ValueError(f"user_ids and category_codes must be 1-D of one length, got shapes "
                         f"{users.shape} and {codes.shape}")
    for name, values, size in (("user_ids", users, len(taste)), ("category_codes", codes,
                                                                  len(er.CATEGORIES))):
        if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
            raise ValueError(f"{name} must hold whole numbers")
        if values.size and (values.min() < 0 or values.max() >= size):
            raise ValueError(f"{name} must lie in 0..{size - 1}, got {values.min()}..{values.max()}")
    return taste.to_numpy()[users.astype(int), codes.astype(int)]


def user_difference_interval(a: pd.Series, b: pd.Series, *, seed, n_resamples: int = 1000
                             ) -> tuple[float, float, float]:
    """``(mean of a - b, low, high)``: two systems' per-user scores (AP@k indexed by user id,
    for the same users), their mean difference and its 95 % paired bootstrap interval over
    users (:func:`paired_gain` with one cut-off).

    Raises
    ------
    TypeError
        If ``a`` or ``b`` is not a Series.
    ValueError
        If they are not indexed by the same users, or hold a value that is not finite.
    """
    for name, s in (("a", a), ("b", b)):
        if not isinstance(s, pd.Series):
            raise TypeError(f"{name} must be a Series of per-user scores, got {type(s).__name__}")
        if not np.isfinite(s.to_numpy(float)).all():
            raise ValueError(f"{name} holds a value that is not finite")
    if not a.index.is_unique or set(a.index) != set(b.index):
        raise ValueError("a and b must hold one score per user, for the same users")
    n_resamples = check_int("n_resamples", n_resamples, minimum=100)
    both = pd.DataFrame({"a": a, "b": b.reindex(a.index)})
    return paired_gain({0: both}, "b", "a", seed=seed, n_resamples=n_resamples)
