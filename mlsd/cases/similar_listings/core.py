"""Chapter 12's plumbing: the booked listing's rank for every query at once, and what the
chapter's sections use but do not teach.

The skip-gram trainer, its negatives and the cold start are the lesson: they live in the
notebook. Here:

- **ranks**: :func:`booked_ranks` scores every query's candidates (the listings open in its
  region that day, the viewed one left out) with a scorer ``score(viewed, candidates) ->
  (queries, candidates)`` and returns the booked listing's rank (1 = first; ties share the
  mean rank); :func:`ranks_from_posterior` does the same for the oracle's lists;
  :func:`rank_summary` gives the average rank, hit rate at k and mean reciprocal rank.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mlsd._checks import check_int
from mlsd.datasets import similar_listings as sl
from mlsd.datasets.world import World

__all__ = ["booked_ranks", "clairvoyant_ranks", "carousels", "carousel_replay", "ranks_from_posterior", "rank_summary", "popularity"]

_QUERY_COLUMNS = ("day", "region", "viewed", "booked")


def _queries(queries) -> pd.DataFrame:
    """Check a RankingTask's queries (a unique index is needed to place each group's ranks)."""
    if not isinstance(queries, pd.DataFrame):
        raise TypeError(f"queries must be a DataFrame (a RankingTask's queries), got {type(queries).__name__}")
    missing = [c for c in _QUERY_COLUMNS if c not in queries.columns]
    if missing:
        raise ValueError(f"queries lack the columns {missing}")
    if not queries.index.is_unique:
        raise ValueError("queries need a unique index")
    if (queries["viewed"] == queries["booked"]).any():
        raise ValueError("a query's booked listing is its viewed listing: it has no rank among the others")
    return queries


def _rank_in_row(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row, the rank of column ``target`` (1 = highest score; ties share the mean rank)."""
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    s = scores[np.arange(len(scores)), target][:, None]
    above = (scores > s).sum(axis=1)
    tied = (scores == s).sum(axis=1) - 1
    return 1.0 + above + 0.5 * tied


def booked_ranks(world: World, queries, score: Callable) -> np.ndarray:
    """The booked listing's rank for each query (a float: ties share the mean rank).

    ``score(viewed, candidates)`` gets the viewed listings of a group of queries that share a
    region and a day, and that day's open listings of the region (ascending ids), and returns a
    (queries, candidates) array of scores, higher first. The viewed listing itself is left out
    of its own query's ranking.
    """
    if not callable(score):
        raise TypeError("score must be a function score(viewed, candidates) -> array")
    return _grouped_ranks(world, _queries(queries), lambda rows, viewed, c: score(viewed, c))


def clairvoyant_ranks(world: World, queries, tastes) -> np.ndarray:
    """The booked listing's rank when each query's candidates are ranked by their true
    utility for the session's own taste (``tastes``: one row per query, hidden)."""
    q = _queries(queries)
    tastes = np.asarray(tastes, dtype=float)
    if tastes.shape != (len(q), sl.STYLE_DIM) or not np.isfinite(tastes).all():
        raise ValueError(f"tastes must be a finite ({len(q)}, {sl.STYLE_DIM}) array, one row per query")
    truth = sl.truth_of(world)
    return _grouped_ranks(world, q, lambda rows, viewed, c: sl.utilities(truth, tastes[rows], c))


def _grouped_ranks(world: World, q: pd.DataFrame, score: Callable) -> np.ndarray:
    ranks = np.empty(len(q))
    for (region, day), group in q.groupby(["region", "day"], sort=True):
        rows = q.index.get_indexer(group.index)
        candidates = sl.open_listings(world, int(region), int(day))
        viewed, booked = group["viewed"].to_numpy(), group["booked"].to_numpy()
        if not (np.isin(viewed, candidates).all() and np.isin(booked, candidates).all()):
            raise ValueError(f"a query's listings are not open in region {region} on day {day}")
        s = np.asarray(score(rows, viewed, candidates), dtype=float)
        if s.shape != (len(group), len(candidates)):
            raise ValueError(f"score returned shape {s.shape}, expected {(len(group), len(candidates))}")
        if not np.isfinite(s).all():
            raise ValueError("scores must be finite")
        # The viewed listing goes below every other, so it never counts above the booked one.
        s = s.copy()
        s[np.arange(len(group)), np.searchsorted(candidates, viewed)] = s.min(axis=1) - 1.0
        ranks[rows] = _rank_in_row(s, np.searchsorted(candidates, booked))
    return ranks


def ranks_from_posterior(queries, posterior) -> np.ndarray:
    """The booked listing's rank for each query when ranking by the oracle's probabilities
    (``sl.booking_posterior``'s answer for the queries' viewed listings and days)."""
    q = _queries(queries)
    if len(posterior) != len(q):
        raise ValueError(f"posterior has {len(posterior)} entries for {len(q)} queries")
    ranks = np.empty(len(q))
    for i, ((candidates, p), viewed, booked) in enumerate(zip(posterior, q["viewed"], q["booked"])):
        keep = candidates != viewed
        c, s = candidates[keep], p[keep]
        where = np.flatnonzero(c == booked)
        if where.size != 1:
            raise ValueError(f"query {i}: the booked listing is not among the posterior's candidates")
        ranks[i] = _rank_in_row(s[None, :], where)[0]
    return ranks


def rank_summary(ranks, k: int = 10) -> dict:
    """Average rank, hit rate at ``k`` and mean reciprocal rank of the booked listing."""
    r = np.asarray(ranks, dtype=float)
    if r.ndim != 1 or r.size == 0 or not np.isfinite(r).all() or (r < 1).any():
        raise ValueError("ranks must be a non-empty 1-d array of ranks >= 1")
    k = check_int("k", k, minimum=1)
    return {"average rank": float(r.mean()), f"hit rate@{k}": float((r <= k).mean()),
            "MRR": float((1.0 / r).mean())}


def popularity(world: World, end_day: int, what: str = "bookings") -> np.ndarray:
    """Per listing, its bookings (or clicks) in the sessions before ``end_day``."""
    end_day = check_int("end_day", end_day, minimum=1)
    if what not in ("bookings", "clicks"):
        raise ValueError(f"what must be 'bookings' or 'clicks', got {what!r}")
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    n = len(world.observed["listings"])
    before = sessions.loc[sessions["day"] < end_day, "session_id"]
    rows = clicks[clicks["session_id"].isin(before) & (clicks["booked"] == (what == "bookings"))]
    return np.bincount(rows["listing_id"], minlength=n).astype(float)


def carousels(world: World, queries, score: Callable, k: int = 10) -> np.ndarray:
    """Each query's carousel: the ``k`` best-scored candidates (viewed listing left out), best
    first, as a (queries, k) array of listing ids. Ties go to the smaller id."""
    q = _queries(queries)
    k = check_int("k", k, minimum=1)
    if not callable(score):
        raise TypeError("score must be a function score(viewed, candidates) -> array")
    out = np.empty((len(q), k), dtype=np.int64)
    for (region, day), group in q.groupby(["region", "day"], sort=True):
        rows = q.index.get_indexer(group.index)
        candidates = sl.open_listings(world, int(region), int(day))
        if len(candidates) <= k:
            raise ValueError(f"region {region} has {len(candidates)} open listings on day {day}: "
                             f"too few for a carousel of {k}")
        viewed = group["viewed"].to_numpy()
        s = np.asarray(score(viewed, candidates), dtype=float)
        if s.shape != (len(group), len(candidates)) or not np.isfinite(s).all():
            raise ValueError("score must return finite scores of shape (queries, candidates)")
        s = s.copy()
        s[np.arange(len(group)), np.searchsorted(candidates, viewed)] = -np.inf
        order = np.argsort(-s, axis=1, kind="stable")[:, :k]
        out[rows] = candidates[order]
    return out


def carousel_replay(clicks: pd.DataFrame, queries, shown) -> pd.DataFrame:
    """Replay each test session against a carousel: per query, how many of the shown listings
    the guest clicked later in the session (after the first click), and whether the booked
    listing was shown. The assumption, stated: a guest clicks a shown listing if and only if
    they clicked it anyway."""
    q = _queries(queries)
    if "session_id" not in q.columns:
        raise ValueError("queries lack the session_id column")
    shown = np.asarray(shown)
    if shown.ndim != 2 or len(shown) != len(q):
        raise ValueError(f"shown must be a (queries, k) array, got shape {shown.shape}")
    later = clicks[(clicks["position"] > 0) & (clicks["booked"] == 0)
                   & clicks["session_id"].isin(q["session_id"])]
    clicked = later.groupby("session_id")["listing_id"].agg(set)
    sets = [clicked.get(s, set()) for s in q["session_id"]]
    hits = np.array([len(c.intersection(row)) for c, row in zip(sets, shown.tolist())])
    booked = (shown == q["booked"].to_numpy()[:, None]).any(axis=1)
    return pd.DataFrame({"carousel_clicks": hits, "booked_from_carousel": booked.astype(int)},
                        index=q.index)
