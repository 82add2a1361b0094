"""Chapter 12's core plumbing: the booked listing's rank for every query at once.

The skip-gram trainer, its negatives and the cold start are the lesson: they live in the
notebook. Here:

- **ranks**: :func:`booked_ranks` scores every query's candidates (the listings open in its
  region that day, the viewed one left out) with a scorer ``score(viewed, candidates) ->
  (queries, candidates)`` and returns the booked listing's rank (1 = first; ties share the
  mean rank); :func:`ranks_from_posterior` does the same for the oracle's lists;
  :func:`clairvoyant_ranks` for the session's own taste; :func:`rank_summary` gives the average
  rank, hit rate at k and mean reciprocal rank; :func:`popularity` counts bookings or clicks,
  :func:`sessions_between` picks a window of the log;
- **scorers** for the baselines and checks: :func:`popularity_scorer`, :func:`attribute_scorer`,
  :func:`cosine_scorer`, and :func:`gensim_vectors` (a gensim model as the chapter's arrays);
- **the online replay**: :func:`carousels` (each query's top k) and :func:`carousel_replay`
  (what a session did with a carousel, assuming a guest clicks a shown listing if and only if
  they clicked it anyway), and :func:`replay_test`, the A/B test of two scorers replayed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlsd._checks import check_int
from mlsd.datasets import similar_listings as sl
from mlsd.datasets.world import World

__all__ = ["booked_ranks", "clairvoyant_ranks", "carousels", "carousel_replay",
           "popularity_scorer", "attribute_scorer", "cosine_scorer", "gensim_vectors",
           "replay_test", "sessions_between", "ranks_from_posterior", "rank_summary", "popularity"]

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
    with threadpool_limits(1):  # many small products: one BLAS thread is faster, and never waits
        for (region, day), group in q.groupby(["region", "day"], sort=True):
            _rank_group(world, q, ranks, region, day, group, score)
    return ranks


def _rank_group(world: World, q: pd.DataFrame, ranks: np.ndarray, region, day, group: pd.DataFrame,
                score: Callable) -> None:
    """Rank one (region, day) group's queries into ``ranks``."""
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
    with threadpool_limits(1):  # many small products: see _grouped_ranks
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


# --------------------------------------------------------------------------- scorers


def _matrix(name: str, values, ndim: int = 2) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != ndim or a.size == 0 or not np.isfinite(a).all():
        raise ValueError(f"{name} must be a non-empty finite {ndim}-d array, got shape {a.shape}")
    return a


def popularity_scorer(counts) -> Callable:
    """A scorer for :func:`booked_ranks`: every viewed listing gets the candidates' log(1 + count)."""
    counts = _matrix("counts", counts, ndim=1)
    if (counts < 0).any():
        raise ValueError("counts must be >= 0")
    return lambda viewed, candidates: np.broadcast_to(
        np.log1p(counts[candidates]), (len(viewed), len(candidates)))


def attribute_scorer(x) -> Callable:
    """A scorer: minus the Euclidean distance between the listings' attribute rows ``x``."""
    x = _matrix("x", x)
    return lambda viewed, candidates: -np.linalg.norm(
        x[viewed][:, None, :] - x[candidates][None, :, :], axis=2)


def cosine_scorer(w) -> Callable:
    """A scorer: the cosine between the viewed listing's row of ``w`` and each candidate's."""
    w = _matrix("w", w)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("every row of w needs a non-zero length for a cosine")
    unit = w / norms
    return lambda viewed, candidates: unit[viewed] @ unit[candidates].T


def gensim_vectors(model, n_listings: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A gensim ``Word2Vec`` trained on listing ids as strings, as the chapter's arrays:
    ``(w_in, w_out, known)``, rows by listing id (zeros for the listings it never saw, which
    ``known`` marks False)."""
    n_listings = check_int("n_listings", n_listings, minimum=1)
    keys = model.wv.key_to_index
    rows = np.array([keys.get(str(i), -1) for i in range(n_listings)])
    known = rows >= 0
    if not known.any():
        raise ValueError("the model knows none of the listings (are its words the ids as strings?)")
    w_in, w_out = (np.where(known[:, None], m[np.maximum(rows, 0)], 0.0).astype(float)
                   for m in (model.wv.vectors, model.syn1neg))
    return w_in, w_out, known


def replay_test(world: World, queries, control: Callable, treatment: Callable, in_treatment,
                k: int = 10) -> dict:
    """The replayed A/B test of two scorers' carousels (see :func:`carousel_replay`): each query
    is in one arm (``in_treatment``, booleans); returns ``{metric: test result}`` for the later
    clicks on the carousel per session (Welch's test) and the share of sessions booking a listing
    it showed (two proportions)."""
    from mlsd.evaluation.experiments import two_proportion_test, welch_test

    q = _queries(queries)
    arm = np.asarray(in_treatment)
    if arm.dtype != bool or arm.shape != (len(q),):
        raise ValueError(f"in_treatment must be {len(q)} booleans, one per query")
    if arm.all() or not arm.any():
        raise ValueError("both arms need queries")
    clicks = world.observed["clicks"]
    a, b = (carousel_replay(clicks, q[m], carousels(world, q[m], score, k))
            for m, score in ((~arm, control), (arm, treatment)))
    return {"carousel clicks per session": welch_test(
                a["carousel_clicks"].to_numpy(float), b["carousel_clicks"].to_numpy(float)),
            "sessions booking from the carousel": two_proportion_test(
                int(a["booked_from_carousel"].sum()), len(a),
                int(b["booked_from_carousel"].sum()), len(b))}


def sessions_between(sessions: pd.DataFrame, clicks: pd.DataFrame, first_day: int,
                     end_day: int) -> pd.DataFrame:
    """The click rows (booking rows included) of the sessions of days ``first_day`` to
    ``end_day - 1``, in the log's order."""
    first_day = check_int("first_day", first_day, minimum=0)
    end_day = check_int("end_day", end_day, minimum=first_day + 1)
    for name, frame, column in (("sessions", sessions, "day"), ("clicks", clicks, "listing_id")):
        if not isinstance(frame, pd.DataFrame) or column not in frame or "session_id" not in frame:
            raise ValueError(f"{name} must be the log's {name} table (with session_id and {column})")
    keep = sessions.loc[sessions["day"].between(first_day, end_day - 1), "session_id"]
    return clicks[clicks["session_id"].isin(keep)]
