"""Chapter 13's serving plumbing: the stores a feed request reads, its reads, the session's
cached pages and the HTTP app.

The feed is gathered **on read**: when a viewer opens the app, the posts their connections
made in the window are read then, so a post is a candidate as soon as it is written. Here:

- **the stores**: :class:`FeedStore` is a :class:`~mlsd.systems.feature_store.FeatureStore`
  whose :meth:`FeedStore.select` reads rows by equality, ``IN`` lists and half-open ranges on
  a table's key (each a descent of the key's B-tree and a range scan).
  :func:`write_feed_store` is the batch job at the start of a day: ``connections`` (keyed by
  viewer, then author), ``posts`` (keyed by author, then creation time, so "the posts of these
  authors since t" is one range scan per author), ``seen`` (what each viewer was shown) and
  one counter table per key of :data:`~mlsd.cases.news_feed.core.HISTORY_KEYS`
  (``<prefix>_counts``: the log's totals before the cut, what
  :func:`~mlsd.cases.news_feed.core.past_counts` reads at that time). :func:`add_posts` is the
  posting service's write and :func:`record_impressions` the stream job that keeps ``seen``
  and the counters live, impression by impression;
- **the request**: :func:`gather_candidates` reads the viewer's connections, their posts in
  the window and which of those the viewer has seen; :func:`served_features` reads the
  counters of every candidate and computes the features as
  :func:`~mlsd.cases.news_feed.core.feed_features` does, operation for operation;
  :func:`rank_feed` is the whole request (gather, features, a ``score`` callable, sort), one
  :class:`~mlsd.systems.serving.StageClock` stage each; :func:`skew_table` compares served
  features and values with the offline ones; :func:`next_post` finds the post a viewer's
  connections make next (for the freshness demonstration);
- **pagination**: :class:`FeedPages` caches each session's ranked list, and a cursor
  ``"<session>.<offset>"`` pages through it (no repeat, no reordering while scrolling);
  :func:`feed_items` shapes a ranked frame into the answer's items;
- **HTTP and scale**: :func:`create_news_feed_app` (``POST /feed``),
  :func:`malformed_feed_requests`, :func:`feed_answer_table`; :func:`call_cost` (what a
  scoring call costs, fixed and per candidate), :func:`two_pass_scores` (a light first pass
  keeps the best, the heavy model orders them) and :func:`feed_scale` (the arithmetic at
  full scale).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime.

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from time import perf_counter

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from mlsd._checks import check_finite, check_frame, check_int
from mlsd.cases.news_feed.core import COUNTED, HISTORY_KEYS, features_from, with_posts
from mlsd.datasets import news_feed as nf
from mlsd.systems.feature_store import FeatureStore
from mlsd.systems.serving import StageClock, fault, service_app

__all__ = ["FeedStore", "FEED_TABLES", "write_feed_store", "add_posts", "record_impressions",
           "gather_candidates", "served_features", "rank_feed", "next_post", "skew_table",
           "FeedPages", "feed_items", "create_news_feed_app", "malformed_feed_requests",
           "feed_answer_table", "call_cost", "two_pass_scores", "feed_scale"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

#: table -> its key; every counter table is ``<prefix>_counts`` keyed by its HISTORY_KEYS key
FEED_TABLES = {"connections": ("user_id", "author_id"),
               "posts": ("author_id", "created", "post_id"),
               "seen": ("user_id", "post_id"),
               **{f"{prefix}_counts": key for prefix, key in HISTORY_KEYS.items()}}
_COUNTS = list(COUNTED) + ["n"]
_POST_COLUMNS = ["author_id", "created", "post_id", "topic", "media"]
_CANDIDATE_COLUMNS = ["user_id", "author_id", "post_id", "topic", "media", "created", "time",
                      "kind", "contacts"]
_MAX_VALUES = 30_000   # values in one IN list: under SQLite's limit on bound variables


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _store(store) -> "FeedStore":
    if not isinstance(store, FeedStore):
        raise TypeError(f"store must be a FeedStore, got {type(store).__name__}")
    return store


def _plain(values) -> list:
    """Distinct values as Python scalars, in first-seen order."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"a list of values must be 1-D, got shape {array.shape}")
    return list(dict.fromkeys(array.tolist()))


# --------------------------------------------------------------------------- the stores


class FeedStore(FeatureStore):
    """The feed's tables in one SQLite database; any thread may use it, one at a time.

    Adds :meth:`select` to :class:`~mlsd.systems.feature_store.FeatureStore`: reads by
    equality, by ``IN`` list and by half-open range, each timed into ``timings[table]``.
    """

    def __init__(self, path=":memory:"):
        super().__init__(path, shared=True)

    def select(self, table: str, columns, *, equal: Mapping | None = None,
               among: Mapping | None = None, within: Mapping | None = None) -> pd.DataFrame:
        """The ``columns`` of the rows of ``table`` that meet every condition, as a frame.

        ``equal`` maps a column to a value (``=``), ``among`` to a list of values (``IN``; an
        empty list selects nothing) and ``within`` to ``(low, high)`` (``low <= column <
        high``). On the leading columns of the key each condition is a range scan of the
        key's B-tree: ``select("posts", ..., among={"author_id": ids}, within={"created": (t -
        2, t)})`` visits only those authors' posts of those two days. Column names are checked
        against the table. Rows come in key order.
        """
        columns = self._check_columns(table, list(columns) if not isinstance(columns, str)
                                      else columns)
        equal, among, within = dict(equal or {}), dict(among or {}), dict(within or {})
        self._check_columns(table, [*equal, *among, *within])
        where, params = [], []
        for column, value in equal.items():
            if np.ndim(value) != 0:
                raise ValueError(f"equal[{column!r}] must be one value, got {value!r}")
            where.append(f"{_q(column)} = ?")
            params.append(np.asarray(value).item())
        for column, values in among.items():
            values = _plain(values)
            if len(values) > _MAX_VALUES:
                raise ValueError(f"at most {_MAX_VALUES:,} values in one list, got {len(values):,}")
            if not values:
                return pd.DataFrame({c: [] for c in columns})
            where.append(f"{_q(column)} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        for column, bounds in within.items():
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                raise ValueError(f"within[{column!r}] must be (low, high), got {bounds!r}")
            where.append(f"{_q(column)} >= ? AND {_q(column)} < ?")
            params.extend(check_finite(f"within[{column!r}]", b) for b in bounds)
        sql = f"SELECT {', '.join(_q(c) for c in columns)} FROM {_q(table)}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        start = perf_counter()
        rows = self._db.execute(sql, params).fetchall()
        self.timings[table].append(perf_counter() - start)
        return pd.DataFrame(rows, columns=columns)


def write_feed_store(store: FeedStore, log: pd.DataFrame, posts: pd.DataFrame,
                     connections: pd.DataFrame, as_of: float) -> pd.DataFrame:
    """The batch job at time ``as_of``: write every table of :data:`FEED_TABLES` from the log.

    ``connections`` is written whole; ``posts`` are those created before ``as_of``; the
    counters count the log's rows before ``as_of`` (the ``engage`` counter is click + like +
    comment + share, as :func:`~mlsd.cases.news_feed.core.past_counts` counts it), and
    ``seen`` holds those of its rows whose post is young enough to be a candidate again
    (made within :data:`~mlsd.datasets.news_feed.WINDOW_DAYS` of ``as_of``): an older post
    never is, so its row would never be read (production expires them). ``log`` may be the raw impressions: it is joined to ``posts`` if it lacks their
    columns. Returns each table's key and row count.
    """
    store = _store(store)
    as_of = check_finite("as_of", as_of)
    check_frame("log", log, ["user_id", "post_id", "time", *nf.REACTIONS])
    check_frame("posts", posts, _POST_COLUMNS)
    check_frame("connections", connections, ["user_id", "author_id", "kind", "contacts"])
    before = log[log["time"].to_numpy() < as_of]
    if not {"author_id", "topic", "media"} <= set(before.columns):
        before = with_posts(before, posts)
    before = before.assign(engage=before[["click", "like", "comment", "share"]].sum(axis=1))
    created = posts["created"].to_numpy()
    recent = posts.loc[created >= as_of - nf.WINDOW_DAYS, "post_id"]
    tables = {"connections": connections[["user_id", "author_id", "kind", "contacts"]],
              "posts": posts.loc[created < as_of, _POST_COLUMNS],
              "seen": before.loc[before["post_id"].isin(recent), ["user_id", "post_id", "time"]]}
    for prefix, key in HISTORY_KEYS.items():
        grouped = before.groupby(list(key), sort=True)
        counts = grouped[list(COUNTED)].sum().astype(np.int64)
        counts["n"] = grouped.size().astype(np.int64)
        tables[f"{prefix}_counts"] = counts.reset_index()
    for table, frame in tables.items():
        store.write(table, frame, list(FEED_TABLES[table]))
    return pd.DataFrame({table: {"key": ", ".join(FEED_TABLES[table]), "rows": store.count(table)}
                         for table in tables}).T


def add_posts(store: FeedStore, new_posts: pd.DataFrame) -> int:
    """The posting service's write: append ``new_posts`` to the ``posts`` table.

    Gathering on read, this is all a new post needs to reach its audience: the next request
    of any viewer connected to its author reads it. Raises ``ValueError`` on a post already
    in the table. Returns the rows added.
    """
    store = _store(store)
    check_frame("new_posts", new_posts, _POST_COLUMNS)
    rows = [(int(a), float(c), int(p), str(t), str(m)) for a, c, p, t, m in
            new_posts[_POST_COLUMNS].itertuples(index=False, name=None)]
    known = store.select("posts", ["post_id"], among={"post_id": [r[2] for r in rows]})
    if len(known):
        raise ValueError(f"post {int(known['post_id'].iloc[0])} is already in the store")
    with store._db:
        store._db.executemany('INSERT INTO posts (author_id, created, post_id, topic, media) '
                              'VALUES (?, ?, ?, ?, ?)', rows)
    return len(rows)


def record_impressions(store: FeedStore, impressions: pd.DataFrame) -> pd.DataFrame:
    """The stream job: add impressions to ``seen`` and to every counter, in one transaction.

    ``impressions`` has ``user_id``, ``post_id`` and ``time`` and may have reaction columns
    (0 or 1 each; missing ones count 0); each post's author, topic and media are read from the store. A
    counter row that does not exist yet is created. Raises ``ValueError`` for a post the
    store does not know or an impression already recorded (a viewer sees a post once: a
    replayed event must not count twice). Returns the rows added to each table.
    """
    store = _store(store)
    check_frame("impressions", impressions, ["user_id", "post_id", "time"])
    if impressions.empty:
        raise ValueError("impressions is empty: nothing to record")
    if impressions.duplicated(["user_id", "post_id"]).any():
        raise ValueError("an impression (user_id, post_id) appears twice")
    post_ids = _plain(impressions["post_id"])
    info = store.select("posts", ["post_id", "author_id", "topic", "media"],
                        among={"post_id": post_ids}).set_index("post_id")
    unknown = [p for p in post_ids if p not in info.index]
    if unknown:
        raise ValueError(f"post {unknown[0]} is not in the store")
    rows = impressions.reset_index(drop=True)
    rows = rows.assign(**{r: rows[r] if r in rows else 0 for r in nf.REACTIONS})
    flags = rows[list(nf.REACTIONS)].to_numpy()
    if not np.isin(flags, (0, 1)).all():
        raise ValueError(f"reactions are 0 or 1 per impression, got {np.unique(flags).tolist()}")
    rows[list(nf.REACTIONS)] = flags.astype(np.int64)
    rows = rows.assign(**{c: info.loc[rows["post_id"].to_numpy(), c].to_numpy()
                          for c in ("author_id", "topic", "media")})
    rows["engage"] = rows[["click", "like", "comment", "share"]].sum(axis=1)
    for user, users in rows.groupby("user_id"):
        seen = store.select("seen", ["post_id"], equal={"user_id": int(user)},
                            among={"post_id": users["post_id"]})
        if len(seen):
            raise ValueError(f"viewer {int(user)} was already shown post "
                             f"{int(seen['post_id'].iloc[0])}")
    added = {"seen": len(rows)}
    with store._db:
        store._db.executemany("INSERT INTO seen (user_id, post_id, time) VALUES (?, ?, ?)",
                              [(int(u), int(p), float(t)) for u, p, t in
                               rows[["user_id", "post_id", "time"]].itertuples(index=False)])
        for prefix, key in HISTORY_KEYS.items():
            grouped = rows.groupby(list(key), sort=True)
            counts = grouped[list(COUNTED)].sum()
            counts["n"] = grouped.size()
            counts = counts.reset_index()
            table, names = f"{prefix}_counts", [*key, *_COUNTS]
            update = ", ".join(f"{_q(c)} = {_q(c)} + excluded.{_q(c)}" for c in _COUNTS)
            sql = (f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in names)}) VALUES "
                   f"({', '.join('?' * len(names))}) ON CONFLICT ({', '.join(_q(k) for k in key)})"
                   f" DO UPDATE SET {update}")
            store._db.executemany(sql, [tuple(np.asarray(v).item() for v in row)
                                        for row in counts[names].itertuples(index=False)])
            added[table] = len(counts)
    return pd.Series(added, name="rows updated").to_frame()


# --------------------------------------------------------------------------- the request


def gather_candidates(store: FeedStore, user_id: int, time: float,
                      window: float = nf.WINDOW_DAYS) -> pd.DataFrame:
    """The viewer's candidates at ``time``: every post a connection made in the ``window``
    days before, less those the viewer was shown (``feed_requests``' protocol, read from the
    store). Three reads: the viewer's connections (one range scan), their posts since ``time
    - window`` (one range scan per author) and which of those are in ``seen``.

    Returns one row per candidate, by post id: user_id, author_id, post_id, topic, media,
    created, time and the connection's kind and contacts (empty if the viewer has no
    connection or nothing new).
    """
    store = _store(store)
    user_id = check_int("user_id", user_id, minimum=0)
    time, window = check_finite("time", time), check_finite("window", window)
    if window <= 0:
        raise ValueError(f"window must be > 0 days, got {window}")
    follows = store.select("connections", ["author_id", "kind", "contacts"],
                           equal={"user_id": user_id})
    posts = store.select("posts", ["author_id", "post_id", "topic", "media", "created"],
                         among={"author_id": follows["author_id"]},
                         within={"created": (time - window, time)})
    if posts.empty:                 # no connection, or nothing posted in the window
        return pd.DataFrame({c: [] for c in _CANDIDATE_COLUMNS})
    seen = store.select("seen", ["post_id"], equal={"user_id": user_id},
                        among={"post_id": posts["post_id"]})
    fresh = posts[~posts["post_id"].isin(seen["post_id"])]
    out = fresh.merge(follows, on="author_id", how="left").assign(user_id=user_id, time=time)
    return out.sort_values("post_id", kind="stable").reset_index(drop=True)[_CANDIDATE_COLUMNS]


def served_features(store: FeedStore, candidates: pd.DataFrame) -> pd.DataFrame:
    """The model's features of the ``candidates`` (from :func:`gather_candidates`), from the
    counters in the store: one read per counter table, for every candidate at once.

    The arithmetic is :func:`~mlsd.cases.news_feed.core.feed_features`', operation for
    operation, with the counters' totals where it counts the log before each row: while the
    counters hold exactly the log before the request, the two agree to the bit. A key with no
    counter row counts zero.
    """
    store = _store(store)
    rows = check_frame("candidates", candidates, _CANDIDATE_COLUMNS)
    age = (rows["time"].to_numpy(dtype=float) - rows["created"].to_numpy(dtype=float)) * 24.0
    if (age < 0).any():
        raise ValueError("a candidate's time is before its post was created")
    counts = {}
    for prefix, key in HISTORY_KEYS.items():
        key = list(key)
        read = store.select(f"{prefix}_counts", key + _COUNTS,
                            among={k: rows[k] for k in key})
        where = dict(zip(zip(*(read[k].tolist() for k in key)), range(len(read))))
        at = np.array([where.get(k, len(read)) for k in zip(*(rows[c].tolist() for c in key))],
                      dtype=np.int64)
        counts[prefix] = np.vstack([read[_COUNTS].to_numpy(dtype=np.int64),
                                    np.zeros((1, len(_COUNTS)), dtype=np.int64)])[at]
    return features_from(rows["kind"], rows["contacts"], rows["topic"], rows["media"], age,
                         counts, index=rows.index)


def rank_feed(store: FeedStore, score: Callable, user_id: int, time: float,
              clock: StageClock | None = None) -> pd.DataFrame:
    """One feed request: the viewer's candidates with features and value, best first."""
    clock = StageClock() if clock is None else clock
    with clock.stage("candidates (3 reads)"):
        rows = gather_candidates(store, user_id, time)
    with clock.stage("features (7 counter reads)"):
        X = served_features(store, rows)
    with clock.stage("value (the heads)"):
        value = np.asarray(score(X) if len(X) else [], dtype=float)
    if value.shape != (len(X),):
        raise ValueError(f"score returned {value.size} values for {len(X)} candidates")
    with clock.stage("sort"):
        order = np.argsort(-value, kind="stable")
    keys = rows[["user_id", "post_id", "author_id"]]
    return keys.join(X).assign(value=value).iloc[order]


def next_post(posts: pd.DataFrame, connections: pd.DataFrame, user_id: int,
              after: float) -> pd.Series:
    """The first post made at or after ``after`` by one of the viewer's connections (ties: the
    lowest post id); ``LookupError`` if none is."""
    check_frame("posts", posts, ["post_id", "author_id", "created"])
    check_frame("connections", connections, ["user_id", "author_id"])
    user_id = check_int("user_id", user_id, minimum=0)
    after = check_finite("after", after)
    followed = connections.loc[connections["user_id"] == user_id, "author_id"]
    mine = posts[posts["author_id"].isin(followed) & (posts["created"] >= after)]
    if mine.empty:
        raise LookupError(f"no connection of viewer {user_id} posts at or after {after}")
    return mine.sort_values(["created", "post_id"], kind="stable").iloc[0]


def skew_table(served: pd.DataFrame, candidates: pd.DataFrame, X_offline: pd.DataFrame,
               value_offline) -> pd.DataFrame:
    """Training-serving skew for the viewers in ``served``: their served candidates, features
    and values against the offline ones (``candidates``, ``X_offline`` and ``value_offline``
    aligned row for row, as the chapter scores them).

    ``served`` has user_id, post_id, ``value`` and every feature column, one row per served
    candidate, in any order. Returns one row: viewers, candidates, whether the candidate sets
    are the same, and the largest absolute difference in a feature and in a value (0.0 when
    they agree to the bit). Raises ``ValueError`` if the sets differ in size (nothing to
    compare row for row).
    """
    check_frame("served", served, ["user_id", "post_id", "value", *X_offline.columns])
    check_frame("candidates", candidates, ["user_id", "post_id"])
    value_offline = np.asarray(value_offline, dtype=float)
    if not len(candidates) == len(X_offline) == len(value_offline):
        raise ValueError("candidates, X_offline and value_offline must be aligned row for row")
    mine = candidates["user_id"].isin(served["user_id"]).to_numpy()
    offline = candidates.loc[mine, ["user_id", "post_id"]].assign(
        value=value_offline[mine]).join(X_offline.loc[mine])
    offline = offline.sort_values(["user_id", "post_id"], kind="stable").reset_index(drop=True)
    served = served.sort_values(["user_id", "post_id"], kind="stable").reset_index(drop=True)
    if len(served) != len(offline):
        raise ValueError(f"{len(served)} served candidates against {len(offline)} offline ones")
    same = bool((served[["user_id", "post_id"]].to_numpy()
                 == offline[["user_id", "post_id"]].to_numpy()).all())
    columns = list(X_offline.columns)
    feature_gap = np.abs(served[columns].to_numpy(float) - offline[columns].to_numpy(float))
    value_gap = np.abs(served["value"].to_numpy(float) - offline["value"].to_numpy(float))
    return pd.DataFrame({"viewers": [served["user_id"].nunique()],
                         "candidates": [len(served)], "same candidates": [same],
                         "largest feature difference": [float(feature_gap.max(initial=0.0))],
                         "largest value difference": [float(value_gap.max(initial=0.0))]})


# --------------------------------------------------------------------------- pagination


_CURSOR = re.compile(r"^(\d{1,12})\.(\d{1,6})$")


class FeedPages:
    """Each session's ranked list, kept while the viewer scrolls; a cursor pages through it.

    A session starts when a viewer opens the feed (:meth:`open`, with the list ranked once);
    :meth:`page` returns ``page_size`` items from a cursor ``"<session>.<offset>"`` and the
    cursor of the next page. Scrolling never re-ranks, so no post repeats and none moves; a
    post made meanwhile waits for the next session. At most ``max_sessions`` are kept; the
    least recently used is dropped first (production: a cache with an expiry time).
    """

    def __init__(self, max_sessions: int = 10_000):
        self.max_sessions = check_int("max_sessions", max_sessions, minimum=1)
        self._sessions: OrderedDict = OrderedDict()
        self._next = 1

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, user_id: int, items: list) -> str:
        """Start a session of ``user_id`` over ``items`` (ranked, best first); return the
        cursor of its first page."""
        user_id = check_int("user_id", user_id, minimum=0)
        if not isinstance(items, list):
            raise TypeError(f"items must be a list, got {type(items).__name__}")
        session, self._next = self._next, self._next + 1
        self._sessions[session] = (user_id, items)
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return f"{session}.0"

    def page(self, user_id: int, cursor: str, page_size: int) -> tuple[list, str | None]:
        """The items of the page at ``cursor`` and the next page's cursor (``None`` at the end).

        Raises ``ValueError`` for a cursor that is not ``"<session>.<offset>"`` or whose
        offset is past the end of the list, and ``LookupError`` for a session that is unknown,
        expired or another viewer's (the three look the same to the caller).
        """
        user_id = check_int("user_id", user_id, minimum=0)
        page_size = check_int("page_size", page_size, minimum=1)
        match = _CURSOR.match(cursor) if isinstance(cursor, str) else None
        if match is None:
            raise ValueError(f"cursor must look like '<session>.<offset>', got {cursor!r}")
        session, offset = int(match.group(1)), int(match.group(2))
        owner, items = self._sessions.get(session, (None, None))
        if owner != user_id:
            raise LookupError(f"no session {session} of viewer {user_id} (unknown or expired): "
                              "start a new feed")
        if offset > len(items):
            raise ValueError(f"cursor offset {offset} is past the end of the feed "
                             f"({len(items)} posts)")
        self._sessions.move_to_end(session)
        end = offset + page_size
        return items[offset:end], (f"{session}.{end}" if end < len(items) else None)


def feed_items(ranked: pd.DataFrame) -> list:
    """A ranked frame (post_id, author_id, value; best first) as the answer's items."""
    check_frame("ranked", ranked, ["post_id", "author_id", "value"])
    return [{"post_id": int(p), "author_id": int(a), "value": round(float(v), 4)}
            for p, a, v in ranked[["post_id", "author_id", "value"]].itertuples(index=False)]


# --------------------------------------------------------------------------- the app


def create_news_feed_app(rank: Callable[[int], pd.DataFrame], pages: FeedPages, *, n_users: int,
                         max_page_size: int = 50, page_size: int = 10,
                         model_version: str = "1", max_body_bytes: int = 1_000) -> FastAPI:
    """A FastAPI app serving the feed, page by page.

    ``rank(user_id)`` ranks the viewer's candidates now and returns them best first, with
    post_id, author_id and value (:func:`rank_feed`). ``POST /feed`` takes ``{"user_id", "cursor"?, "page_size"?}``:
    without a cursor it ranks and opens a session in ``pages``; with one it returns the next
    page of that session's list. It answers ``{"user_id", "posts": [...], "cursor",
    "model_version"}`` (``cursor`` is ``null`` on the last page); ``GET /health`` as every
    service.

    Bad requests get a 4xx naming the fault, and the server keeps serving: **422** for a
    missing, extra or wrongly typed field (``"7"``, ``7.0`` and ``true`` are not ids), a
    ``page_size`` outside ``1 .. max_page_size``, a cursor that is not ``<session>.<offset>``
    or points past the end; **404** for a viewer outside ``0 .. n_users - 1`` and for a
    session that is unknown, expired or another viewer's; **413** for a body over
    ``max_body_bytes``. An exception in ``rank`` is logged and answered with a 500. Calls run
    one at a time (a lock): the store has one connection.
    """
    if not callable(rank):
        raise TypeError("rank must be callable: rank(user_id) -> ranked candidates")
    if not isinstance(pages, FeedPages):
        raise TypeError(f"pages must be a FeedPages, got {type(pages).__name__}")
    n_users = check_int("n_users", n_users, minimum=1)
    max_page_size = check_int("max_page_size", max_page_size, minimum=1)
    page_size = check_int("page_size", page_size, minimum=1)
    if page_size > max_page_size:
        raise ValueError(f"page_size ({page_size}) exceeds max_page_size ({max_page_size})")
    default_size = page_size
    lock = threading.Lock()

    class FeedRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        user_id: int = Field(ge=0)
        cursor: str | None = Field(default=None, max_length=40)
        page_size: int = Field(default=default_size, ge=1, le=max_page_size)

    app = service_app("mlsd news feed", model_version, max_body_bytes)

    @app.post("/feed")
    def serve(body: FeedRequest):
        if body.user_id >= n_users:
            raise HTTPException(404, f"unknown viewer {body.user_id}")
        with lock:
            cursor = body.cursor
            if cursor is None:
                try:
                    cursor = pages.open(body.user_id, feed_items(rank(body.user_id)))
                except Exception:
                    logger.exception("the feed failed for viewer %d", body.user_id)
                    raise HTTPException(500, "internal error while ranking") from None
            try:
                items, after = pages.page(body.user_id, cursor, body.page_size)
            except ValueError as error:
                raise HTTPException(422, str(error)) from None
            except LookupError as error:
                raise HTTPException(404, str(error.args[0])) from None
        return {"user_id": body.user_id, "posts": items, "cursor": after,
                "model_version": model_version}

    return app


def malformed_feed_requests(user_id: int, cursor: str, *, other_user: int, n_users: int,
                            max_page_size: int = 50) -> dict:
    """Bad requests, by name, around a good viewer ``user_id`` holding ``cursor``: an unknown
    viewer, a viewer id as text, page sizes 0 and ``max_page_size + 1``, a cursor that is not
    one, one past the end of the list, one of an unknown session and ``cursor`` sent by
    ``other_user``."""
    user_id = check_int("user_id", user_id, minimum=0)
    other_user = check_int("other_user", other_user, minimum=0)
    n_users = check_int("n_users", n_users, minimum=1)
    max_page_size = check_int("max_page_size", max_page_size, minimum=1)
    match = _CURSOR.match(cursor) if isinstance(cursor, str) else None
    if match is None:
        raise ValueError(f"cursor must be one the server issued, got {cursor!r}")
    if other_user == user_id:
        raise ValueError("other_user must differ from user_id")
    session = int(match.group(1))
    return {"unknown viewer": {"user_id": n_users},
            "viewer id as text": {"user_id": str(user_id)},
            "page_size = 0": {"user_id": user_id, "page_size": 0},
            f"page_size = {max_page_size + 1}": {"user_id": user_id,
                                                 "page_size": max_page_size + 1},
            "not a cursor": {"user_id": user_id, "cursor": "page-2"},
            "cursor past the end": {"user_id": user_id, "cursor": f"{session}.999999"},
            "unknown session": {"user_id": user_id, "cursor": f"{10**12 - 1}.10"},
            "another viewer's cursor": {"user_id": other_user, "cursor": cursor}}


def feed_answer_table(answers: dict) -> pd.DataFrame:
    """One row per named HTTP answer (``httpx.Response``): its status, the posts it returned
    and, for a 4xx or 5xx, the fault it names (:func:`~mlsd.systems.serving.fault`)."""
    if not isinstance(answers, dict) or not answers:
        raise ValueError("answers must be a non-empty dict of name -> response")
    bad = [name for name, a in answers.items() if not hasattr(a, "status_code")]
    if bad:
        raise TypeError(f"answers {bad} are not HTTP responses")
    ok = {n: a.status_code < 400 for n, a in answers.items()}
    return pd.DataFrame({
        "status": {n: a.status_code for n, a in answers.items()},
        "posts": {n: len(a.json()["posts"]) if ok[n] else 0 for n, a in answers.items()},
        "detail": {n: "" if ok[n] else fault(a.json()) for n, a in answers.items()}})


# --------------------------------------------------------------------------- scale


def call_cost(score: Callable[[pd.DataFrame], np.ndarray], X: pd.DataFrame,
              repeats: int = 3) -> dict:
    """What a call of ``score`` costs: ``per_call_ms``, the best of ``repeats`` timed calls on
    one row (the price of a call, whatever its size), and ``per_candidate_ms``, what each
    further row of ``X`` adds (the best time on all of ``X``, less a call, per extra row;
    never below 0). ``X`` needs at least two rows; the first call is untimed (a warm-up)."""
    if not callable(score):
        raise TypeError("score must be callable: score(X) -> one value per row")
    if not isinstance(X, pd.DataFrame) or len(X) < 2:
        raise ValueError("X must be a DataFrame of at least two rows of features")
    repeats = check_int("repeats", repeats, minimum=1)
    out = np.asarray(score(X.head(2)))
    if out.shape != (2,):
        raise ValueError(f"score returned shape {out.shape} for 2 rows")

    def best(frame):
        times = []
        for _ in range(repeats):
            start = perf_counter()
            score(frame)
            times.append(perf_counter() - start)
        return min(times) * 1000

    one, every = best(X.head(1)), best(X)
    return {"per_call_ms": one, "per_candidate_ms": max(every - one, 0.0) / (len(X) - 1)}


def two_pass_scores(request, light, heavy, keep: int) -> np.ndarray:
    """Scores that rank each request as a two-pass ranker would: the ``keep`` candidates with
    the highest ``light`` score (ties: the first) ordered by ``heavy``, then the others by
    ``light``. Every kept candidate scores above every other of its request; all finite (for
    :func:`~mlsd.cases.news_feed.core.ndcg_by_request`)."""
    keep = check_int("keep", keep, minimum=1)
    request = np.asarray(request)
    light, heavy = np.asarray(light, dtype=float), np.asarray(heavy, dtype=float)
    if not (request.ndim == light.ndim == heavy.ndim == 1) or not (
            len(request) == len(light) == len(heavy)):
        raise ValueError(f"request, light and heavy must be 1-D of one length, got shapes "
                         f"{request.shape}, {light.shape}, {heavy.shape}")
    if not (np.isfinite(light).all() and np.isfinite(heavy).all()):
        raise ValueError("light and heavy scores must be finite")
    if not len(request):
        return np.zeros(0)
    place = pd.Series(light).groupby(request, sort=False).rank(method="first", ascending=False)
    kept = place.to_numpy() <= keep
    lifted = heavy - heavy.min() + (light.max() - light.min()) + 1.0
    return np.where(kept, lifted, light - light.min())



def feed_scale(*, peak_qps: float, connections: float, posts_per_day: float,
               window_days: float, heavy_ms: float, light_ms: float, second_pass: int) -> dict:
    """The feed at full scale, for the prose.

    ``heavy_ms`` and ``light_ms`` are what a candidate costs the heavy model and a light first
    pass (>= 0, e.g. :func:`call_cost`'s ``per_candidate_ms``); the other inputs are positive.
    Returns the inputs and ``candidates`` a request (each connection's posts over the window:
    an upper bound, before what the viewer has seen), ``counter_reads`` a request (one per
    candidate and key of :data:`~mlsd.cases.news_feed.core.HISTORY_KEYS`, before any
    sharing), and the milliseconds a request and the cores busy at ``peak_qps`` to score
    every candidate with the heavy model (``ms_one_pass``, ``cores_one_pass``), or the light
    pass on every candidate and the heavy model on the best ``second_pass``
    (``ms_two_pass``, ``cores_two_pass``). Calls' fixed costs are left out.
    """
    values = dict(peak_qps=peak_qps, connections=connections, posts_per_day=posts_per_day,
                  window_days=window_days, heavy_ms=heavy_ms, light_ms=light_ms)
    for name, value in values.items():
        value = check_finite(name, value)
        if value < 0 or (value == 0 and name not in ("heavy_ms", "light_ms")):
            raise ValueError(f"{name} must be {'>= 0' if name.endswith('_ms') else '> 0'}, "
                             f"got {value}")
    second_pass = check_int("second_pass", second_pass, minimum=1)
    candidates = connections * posts_per_day * window_days
    one_pass = candidates * heavy_ms
    two_pass = candidates * light_ms + min(second_pass, candidates) * heavy_ms
    return {**values, "second_pass": second_pass, "candidates": candidates,
            "counter_reads": candidates * len(HISTORY_KEYS), "ms_one_pass": one_pass,
            "cores_one_pass": peak_qps * one_pass / 1000, "ms_two_pass": two_pass,
            "cores_two_pass": peak_qps * two_pass / 1000}
