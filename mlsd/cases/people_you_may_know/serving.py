"""Chapter 14's serving plumbing: the weekly batch into SQLite, the lookup path, the cold-start
user and the HTTP app.

Suggestions are computed **in batch**: once a week every friend-of-friend pair is scored and
each person's best ``k`` are written to a store, so a request is one read of a few rows. What
changes between two batches is handled at read time, cheaply:

- **the store**: :class:`SuggestionStore` is a
  :class:`~mlsd.systems.feature_store.FeatureStore` with three tables: ``suggestions`` (keyed
  by person, then rank: one person's list is one range scan), ``friendships`` (the live graph,
  both directions) and ``dismissed`` (the "not interested" clicks, kept across weeks);
- **the weekly job**: :func:`write_suggestions` replaces every list in one transaction,
  :func:`write_friendships` the graph; :func:`weekly_batch` is the whole job (candidates,
  features, scores, writes), timed stage by stage;
- **the live writes**: :func:`add_friendship` when a request is accepted, :func:`dismiss`
  when a suggestion is turned down;
- **the request**: :func:`suggestions_for` reads a person's stored list and leaves out who
  became a friend since the batch or was dismissed; :func:`cold_start_suggestions` answers a
  person with no friend of a friend (a newcomer) from the profile alone;
  :func:`create_pymk_app` serves both over HTTP (``GET /suggestions``).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime.

import logging
import re
import threading
from collections.abc import Callable
from time import perf_counter
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query
from pydantic import BeforeValidator
from scipy import sparse

from mlsd._checks import check_frame, check_int, check_int_ids
from mlsd.cases.people_you_may_know import core
from mlsd.datasets import people_you_may_know as pk
from mlsd.systems.feature_store import FeatureStore
from mlsd.systems.serving import service_app

__all__ = ["SuggestionStore", "write_suggestions", "write_friendships", "add_friendship",
           "dismiss", "weekly_batch", "suggestions_for", "cold_start_suggestions",
           "create_pymk_app"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suggestions (
    user_id INTEGER NOT NULL, rank INTEGER NOT NULL, candidate_id INTEGER NOT NULL,
    score REAL NOT NULL, week INTEGER NOT NULL,
    PRIMARY KEY (user_id, rank)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS friendships (
    user_id INTEGER NOT NULL, friend_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dismissed (
    user_id INTEGER NOT NULL, candidate_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, candidate_id)) WITHOUT ROWID;
"""
_SUGGESTION_COLUMNS = ["candidate_id", "score", "rank"]
_COLD_COLUMNS = ["candidate_id", "matches", "degree"]


# --------------------------------------------------------------------------- the store


class SuggestionStore(FeatureStore):
    """The suggestions, the live friendships and the dismissals in one SQLite database.

    ``path`` is a file (its tables are kept if they exist) or ``":memory:"``. Any thread may
    use it: the connection is shared (``check_same_thread=False``) and every read and write of
    this module holds :attr:`lock`, so a web server's worker threads take turns. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, path=":memory:"):
        super().__init__(path, shared=True)
        self.lock = threading.RLock()
        self._db.executescript(_SCHEMA)

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""
        with self.lock:
            return super().count(table)

    def size_bytes(self) -> int:
        """The size of the database in bytes (page count x page size)."""
        with self.lock:
            return super().size_bytes()


def _store(store) -> SuggestionStore:
    if not isinstance(store, SuggestionStore):
        raise TypeError(f"store must be a SuggestionStore, got {type(store).__name__}")
    return store


def _ids(name: str, values) -> np.ndarray:
    ids = check_int_ids(name, values)
    if (ids < 0).any():
        raise ValueError(f"{name} must be user ids >= 0, got {int(ids.min())}")
    return ids


# --------------------------------------------------------------------------- the weekly job


def write_suggestions(store: SuggestionStore, pairs: pd.DataFrame, scores, week: int, *,
                      k: int = 20) -> dict:
    """Replace every stored list with this week's: each person's best ``k`` candidates.

    ``pairs`` holds unordered candidate pairs (``user_a``, ``user_b``; a pair at most once)
    and ``scores`` one finite number per pair. A pair is on both people's lists: a
    friendship needs one of the two to ask. Each list is sorted by score, best first, ties by
    the smaller candidate id (so the same scores always give the same lists), and ranked from
    1. The old rows are deleted and the new ones inserted in **one transaction**: a reader
    sees last week's lists or this week's, never half of each, and a failure leaves last
    week's in place. Returns ``{"pairs scored", "people", "rows"}``.
    """
    store = _store(store)
    check_frame("pairs", pairs, ["user_a", "user_b"])
    week = check_int("week", week, minimum=0)
    k = check_int("k", k, minimum=1)
    a, b = _ids("pairs.user_a", pairs["user_a"]), _ids("pairs.user_b", pairs["user_b"])
    s = np.asarray(scores)
    if s.ndim != 1 or len(s) != len(a):
        raise ValueError(f"scores must be one number per pair: {len(a)} pairs, "
                         f"got shape {s.shape}")
    if len(s) and s.dtype.kind not in "biuf":
        raise ValueError(f"scores must be numbers, got values of type {s.dtype}")
    s = s.astype(np.float64)
    if not np.isfinite(s).all():
        i = int(np.flatnonzero(~np.isfinite(s))[0])
        raise ValueError(f"scores must be finite, got {s[i]} for pair {i}")
    if (a == b).any():
        raise ValueError(f"a pair joins two different people, got {int(a[a == b][0])} twice")
    low, high = np.minimum(a, b), np.maximum(a, b)
    if len(a) and pd.DataFrame({"low": low, "high": high}).duplicated().any():
        raise ValueError("a pair appears twice in pairs (in either order)")
    user, candidate, score = np.r_[a, b], np.r_[b, a], np.r_[s, s]
    order = np.lexsort((candidate, -score, user))   # by person, best score, smaller id
    user, candidate, score = user[order], candidate[order], score[order]
    starts = np.r_[0, np.flatnonzero(user[1:] != user[:-1]) + 1] if len(user) else np.zeros(0, int)
    rank = np.arange(len(user)) - np.repeat(starts, np.diff(np.r_[starts, len(user)])) + 1
    keep = rank <= k
    rows = list(zip(user[keep].tolist(), rank[keep].tolist(), candidate[keep].tolist(),
                    score[keep].tolist(), [week] * int(keep.sum())))
    with store.lock, store._db:
        store._db.execute("DELETE FROM suggestions")
        store._db.executemany("INSERT INTO suggestions (user_id, rank, candidate_id, score, week)"
                              " VALUES (?, ?, ?, ?, ?)", rows)
    return {"pairs scored": len(a), "people": len(starts), "rows": len(rows)}


def write_friendships(store: SuggestionStore, graph) -> int:
    """Replace the ``friendships`` table with ``graph`` (a symmetric sparse adjacency).

    Each friendship is stored in both directions, so "is ``c`` a friend of ``u``" is one point
    lookup on the key. One transaction. Returns the rows written (twice the friendships).
    Friendships made after ``graph`` was taken are not in it: write it from the latest graph.
    """
    store = _store(store)
    if not sparse.issparse(graph):
        raise TypeError(f"graph must be a scipy sparse matrix, got {type(graph).__name__}")
    if graph.ndim != 2 or graph.shape[0] != graph.shape[1]:
        raise ValueError(f"graph must be square, got shape {graph.shape}")
    graph = sparse.csr_matrix(graph, copy=True)
    graph.eliminate_zeros()
    if (graph != graph.T).nnz:
        raise ValueError("graph must be symmetric: a friendship goes both ways")
    if graph.diagonal().any():
        raise ValueError("graph must have no self-loop: nobody is their own friend")
    edges = graph.tocoo()
    order = np.lexsort((edges.col, edges.row))
    rows = list(zip(edges.row[order].tolist(), edges.col[order].tolist()))
    with store.lock, store._db:
        store._db.execute("DELETE FROM friendships")
        store._db.executemany("INSERT INTO friendships (user_id, friend_id) VALUES (?, ?)", rows)
    return len(rows)


def _two_people(a, b, names=("a", "b")) -> tuple[int, int]:
    a, b = (check_int(name, v, minimum=0) for name, v in zip(names, (a, b)))
    if a == b:
        raise ValueError(f"{names[0]} and {names[1]} must be two different people, got {a} twice")
    return a, b


def add_friendship(store: SuggestionStore, a: int, b: int) -> int:
    """The live write when ``a`` and ``b`` become friends: both directions, one transaction.

    From the next request on, neither is suggested to the other, a week before the batch
    knows. Idempotent (a repeated event changes nothing). Returns the rows added (2 or 0).
    """
    store = _store(store)
    a, b = _two_people(a, b)
    with store.lock, store._db:
        cursor = store._db.executemany(
            "INSERT OR IGNORE INTO friendships (user_id, friend_id) VALUES (?, ?)", [(a, b), (b, a)])
    return cursor.rowcount


def dismiss(store: SuggestionStore, user_id: int, candidate_id: int) -> int:
    """``user_id`` turned ``candidate_id`` down: never suggest them to ``user_id`` again.

    The row outlives the weekly batch (which rewrites only ``suggestions``). One direction:
    the other person may still see ``user_id``. Idempotent; returns the rows added (1 or 0).
    """
    store = _store(store)
    user_id, candidate_id = _two_people(user_id, candidate_id, ("user_id", "candidate_id"))
    with store.lock, store._db:
        cursor = store._db.execute(
            "INSERT OR IGNORE INTO dismissed (user_id, candidate_id) VALUES (?, ?)",
            (user_id, candidate_id))
    return cursor.rowcount


def weekly_batch(store: SuggestionStore, snap: core.Snapshot,
                 score: Callable[[pd.DataFrame], np.ndarray], *, k: int = 20) -> dict:
    """The weekly job on ``snap``: candidates, features, scores, then the two writes.

    Candidates are every friend-of-friend pair (:func:`~.core.friends_of_friends`), their
    features :func:`~.core.pair_features` and ``score(X)`` one finite number per row (higher:
    more likely to connect). The graph is written before the suggestions, so by the time a
    new list is visible the lookup already filters with the graph it was computed on. Each
    stage is timed (``time.perf_counter``) so the chapter can say where a week's batch goes.
    Returns :func:`write_suggestions`' counts, the seconds of each stage (``"candidates s"``,
    ``"features s"``, ``"scoring s"``, ``"writing s"``) and ``"store MB"`` (10^6 bytes).
    """
    store = _store(store)
    if not isinstance(snap, core.Snapshot):
        raise TypeError(f"snap must be a Snapshot, got {type(snap).__name__}")
    if not callable(score):
        raise TypeError("score must be callable: score(X) -> one number per candidate pair")
    k = check_int("k", k, minimum=1)
    times = {}
    start = perf_counter()
    candidates = core.friends_of_friends(snap.graph)
    times["candidates s"] = perf_counter() - start
    start = perf_counter()
    X = core.pair_features(snap, candidates)
    times["features s"] = perf_counter() - start
    start = perf_counter()
    scores = np.asarray(score(X)) if len(X) else np.zeros(0)
    times["scoring s"] = perf_counter() - start
    if scores.shape != (len(X),):
        raise ValueError(f"score returned shape {scores.shape} for {len(X)} candidate pairs")
    start = perf_counter()
    write_friendships(store, snap.graph)
    counts = write_suggestions(store, candidates, scores, snap.week, k=k)
    times["writing s"] = perf_counter() - start
    return {**counts, **times, "store MB": store.size_bytes() / 1e6}


# --------------------------------------------------------------------------- the request


def suggestions_for(store: SuggestionStore, user_id: int, k: int = 10) -> pd.DataFrame:
    """The first ``k`` of ``user_id``'s stored list still worth showing, in rank order.

    One range scan of the person's rows, each checked against ``friendships`` (became friends
    since the batch) and ``dismissed`` by a point lookup on their keys. Returns
    ``candidate_id``, ``score`` and ``rank`` (the rank the batch gave, so a gap shows what was
    left out); an empty frame with those columns when nothing is left or the person has no
    stored row.
    """
    store = _store(store)
    user_id = check_int("user_id", user_id, minimum=0)
    k = check_int("k", k, minimum=1)
    sql = ("SELECT s.candidate_id, s.score, s.rank FROM suggestions AS s WHERE s.user_id = ?"
           " AND NOT EXISTS (SELECT 1 FROM friendships AS f"
           " WHERE f.user_id = s.user_id AND f.friend_id = s.candidate_id)"
           " AND NOT EXISTS (SELECT 1 FROM dismissed AS d"
           " WHERE d.user_id = s.user_id AND d.candidate_id = s.candidate_id)"
           " ORDER BY s.rank LIMIT ?")
    start = perf_counter()
    with store.lock:
        rows = store._db.execute(sql, (user_id, k)).fetchall()
        store.timings["suggestions"].append(perf_counter() - start)
    frame = pd.DataFrame(rows, columns=_SUGGESTION_COLUMNS)
    return frame.astype({"candidate_id": np.int64, "score": np.float64, "rank": np.int64})


def _left_out(store: SuggestionStore, user_id: int) -> list:
    """The person's friends and the people they dismissed, from the store."""
    with store.lock:
        rows = store._db.execute(
            "SELECT friend_id FROM friendships WHERE user_id = ? UNION "
            "SELECT candidate_id FROM dismissed WHERE user_id = ?", (user_id, user_id)).fetchall()
    return [row[0] for row in rows]


def _profiles(users: pd.DataFrame, degree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``users``' ids, their profile fields (one row each) and their degrees, checked."""
    check_frame("users", users, ["user_id", *pk.ATTRIBUTES])
    ids = _ids("users.user_id", users["user_id"])
    if len(np.unique(ids)) != len(ids):
        raise ValueError("users.user_id must be unique")
    degree = np.asarray(degree)
    if degree.ndim != 1 or degree.dtype.kind not in "iuf":
        raise ValueError(f"degree must be a 1-D array of friend counts, got shape {degree.shape}"
                         f" of {degree.dtype}")
    if len(ids) and ids.max() >= len(degree):
        raise ValueError(f"degree has {len(degree)} entries but users has id {int(ids.max())}")
    degree = degree[ids]
    if not (np.isfinite(degree).all() and (degree >= 0).all() and (degree % 1 == 0).all()):
        raise ValueError("degree must hold friend counts: whole numbers >= 0")
    fields = check_int_ids("the profile fields", users[list(pk.ATTRIBUTES)].to_numpy().ravel())
    return ids, fields.reshape(len(ids), len(pk.ATTRIBUTES)), degree.astype(np.int64)


def _cold_start(ids, fields, degree, user_id: int, k: int, exclude) -> pd.DataFrame:
    at = np.flatnonzero(ids == user_id)
    if not len(at):
        raise ValueError(f"user_id {user_id} is not in users")
    own = fields[at[0]]
    matches = ((fields == own) & (own != pk.MISSING)).sum(axis=1)  # a blank never matches
    keep = (matches > 0) & (ids != user_id) & ~np.isin(ids, exclude)
    order = np.lexsort((ids[keep], -degree[keep], -matches[keep]))[:k]
    return pd.DataFrame({"candidate_id": ids[keep][order], "matches": matches[keep][order],
                         "degree": degree[keep][order]}, columns=_COLD_COLUMNS)


def cold_start_suggestions(users: pd.DataFrame, degree, user_id: int, *, k: int = 10,
                           exclude=()) -> pd.DataFrame:
    """Suggestions for a person the graph cannot help (no friend of a friend: a newcomer).

    Everyone else in ``users`` is ranked by how many of the profile fields (school, employer,
    city) they share with the person: a blank field (``MISSING``) matches nothing, not even
    another blank, since two people who left their employer empty share nothing. Ties go to
    the better connected (``degree[id]``, their friend count: likelier to be active and to
    accept), then to the smaller id. Leaves out the person, the ids in ``exclude`` and anyone
    with no match, so fewer than ``k`` may come back. Returns ``candidate_id``, ``matches``
    and ``degree``.
    """
    ids, fields, degree = _profiles(users, degree)
    user_id = check_int("user_id", user_id, minimum=0)
    k = check_int("k", k, minimum=1)
    exclude = _ids("exclude", list(exclude))
    return _cold_start(ids, fields, degree, user_id, k, exclude)


# --------------------------------------------------------------------------- the app


def _digits(value):
    """Query parameters arrive as text: an id is written in digits (``7``, not ``7.0``)."""
    if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,30}", value):
        raise ValueError("must be a whole number written in digits, such as 7")
    return value


_Whole = Annotated[int, BeforeValidator(_digits)]


def create_pymk_app(store: SuggestionStore, users: pd.DataFrame, degree, *, n_users: int,
                    max_k: int = 50, model_version: str = "1") -> FastAPI:
    """A FastAPI app serving "people you may know".

    ``GET /suggestions?user_id=<id>&k=<n>`` (``k`` defaults to 10) answers ``{"user_id",
    "source", "suggestions": [{"user_id", "score", "matches"}, ...]}``: from the weekly batch
    (:func:`suggestions_for`; ``source`` ``"batch"``, ``matches`` null) or, when nothing of the
    batch is left for the person (none stored, as for a newcomer, or all friends or dismissed
    since), from the profile (:func:`cold_start_suggestions` without the person's current
    friends and dismissals, read from the store; ``source`` ``"cold start"``, ``score`` null).
    ``GET /health`` as every service. ``users`` and ``degree`` are read into memory once.

    Bad requests get a 4xx naming the fault, and the server keeps serving: **422** for a
    missing ``user_id``, a ``user_id`` or ``k`` that is not a whole number in digits (``7.0``,
    ``true``) and a ``k`` outside ``1 .. max_k``; **404** for a ``user_id`` outside ``0 ..
    n_users - 1``. An exception while answering is logged and answered with a 500.
    """
    store = _store(store)
    n_users = check_int("n_users", n_users, minimum=1)
    max_k = check_int("max_k", max_k, minimum=1)
    ids, fields, degree = _profiles(users, degree)
    if len(ids) != n_users or (len(ids) and ids.max() >= n_users):
        raise ValueError(f"users must hold every id 0 .. n_users - 1 = {n_users - 1} once, "
                         f"got {len(ids)} rows")
    app = service_app("mlsd people you may know", model_version, 1_000)

    @app.get("/suggestions")
    def suggest(user_id: Annotated[_Whole, Query()],
                k: Annotated[_Whole, Query(ge=1, le=max_k)] = 10):
        if not 0 <= user_id < n_users:
            raise HTTPException(404, f"unknown user {user_id}")
        try:
            batch = suggestions_for(store, user_id, k)
            if len(batch):
                items = [{"user_id": int(c), "score": float(s), "matches": None}
                         for c, s in zip(batch["candidate_id"], batch["score"])]
                return {"user_id": user_id, "source": "batch", "suggestions": items}
            cold = _cold_start(ids, fields, degree, user_id, k, _left_out(store, user_id))
        except Exception:
            logger.exception("suggestions failed for user %d", user_id)
            raise HTTPException(500, "internal error while reading suggestions") from None
        items = [{"user_id": int(c), "score": None, "matches": int(m)}
                 for c, m in zip(cold["candidate_id"], cold["matches"])]
        return {"user_id": user_id, "source": "cold start", "suggestions": items}

    return app
