"""Chapter 10 (event recommendation): the plumbing around the chapter's lesson.

The chapter writes its point-in-time features and trains its ranker in the notebook; this module
holds what is not the lesson, tested once:

- :func:`known_before` -- an as-of join: a running total per key, read strictly before each
  query's day (what was known when an impression was served);
- :func:`average_precision_per_user` -- AP@k of scored (user, event) pairs, every user at once
  (MAP@k is their mean);
- :func:`ndcg_per_user` -- nDCG@k with a graded gain (the true probability) per user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd._checks import check_int
from mlsd.evaluation.ranking import top_k

__all__ = ["average_precision_per_user", "known_before", "ndcg_per_user"]


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
