"""Chapter 13's core plumbing: point-in-time features from the log, and nDCG for every feed at once.

The reaction heads, their calibration and the value they are summed into are the lesson: they
live in the notebook. Here:

- **the log as rows**: :func:`with_posts` joins each row to its post (author, topic, media,
  creation time), :func:`realized_value` weighs a logged impression's reactions as
  :data:`mlsd.datasets.news_feed.VALUE_WEIGHTS` weighs expected ones;
- **features**: :func:`past_counts` counts, for each row, the log's reactions *strictly before*
  the row's time under a key (the viewer, the pair, the post...), the way a feature store's
  counters would have read them; :func:`feed_features` builds every feature the chapter uses;
- **the metric**: :func:`ndcg_by_request` is nDCG@k with signed gains (a hide is worth -20) for
  every request at once, and says which requests it leaves out and why; :func:`pooled_ndcg`
  is the ratio of summed DCG to summed ideal DCG, the stable form for realized gains.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd._checks import check_frame, check_int
from mlsd.datasets import news_feed as nf
from mlsd.evaluation.experiments import paired_bootstrap

__all__ = ["COUNTED", "HISTORY_KEYS", "CATEGORICAL", "with_posts", "realized_value", "past_counts",
           "feed_features", "features_from", "dcg_by_request", "ndcg_by_request", "pooled_ndcg",
           "viewer_gain"]

#: the log columns counted for every key: each reaction, and any engagement at all
COUNTED = nf.REACTIONS + ("engage",)
#: feature prefix -> the key its counters are kept under
HISTORY_KEYS = {
    "pair": ("user_id", "author_id"),
    "author": ("author_id",),
    "user": ("user_id",),
    "user_topic": ("user_id", "topic"),
    "user_media": ("user_id", "media"),
    "author_media": ("author_id", "media"),
    "post": ("post_id",),
}
#: the categorical features (integer codes); every other feature is a number
CATEGORICAL = ("topic", "media")
_ROW_COLUMNS = ("user_id", "post_id", "time")


def with_posts(rows: pd.DataFrame, posts: pd.DataFrame) -> pd.DataFrame:
    """``rows`` (with ``post_id``) joined to each post's author, topic, media and creation time.

    Columns ``rows`` already has are kept; the order of ``rows`` is kept. Raises if a post id
    is unknown.
    """
    check_frame("rows", rows, ("post_id",))
    check_frame("posts", posts, ("post_id", "author_id", "topic", "media", "created"))
    add = [c for c in ("author_id", "topic", "media", "created") if c not in rows.columns]
    info = posts.set_index("post_id")
    unknown = ~rows["post_id"].isin(info.index)
    if unknown.any():
        raise ValueError(f"unknown post ids, e.g. {rows.loc[unknown, 'post_id'].iloc[0]}")
    joined = info.loc[rows["post_id"].to_numpy(), add].reset_index(drop=True)
    joined.index = rows.index
    return pd.concat([rows, joined], axis=1)


def realized_value(log: pd.DataFrame) -> np.ndarray:
    """Each logged impression's value: its reactions weighed like expected ones, dwell in minutes."""
    check_frame("log", log, nf.REACTIONS + ("dwell",))
    return nf.expected_value(log)


def past_counts(log: pd.DataFrame, rows: pd.DataFrame, by, columns=COUNTED) -> pd.DataFrame:
    """For each row, the log's totals of ``columns`` and its row count ``n`` under the key ``by``,
    over log rows *strictly before* the row's ``time``.

    This is a point-in-time join: a row at time t sees what a counter updated by every earlier
    impression would have read at t, never the row's own session or anything later. ``log`` and
    ``rows`` need ``time`` and the key columns; ``log`` needs ``columns`` (``engage`` may be
    left out: it is computed as click + like + comment + share). Returns a frame aligned with
    ``rows`` (zeros where the key has no earlier rows).
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise ValueError("by must name at least one key column")
    columns = list(columns)
    log = check_frame("log", log, by + ["time"] + [c for c in columns if c != "engage"])
    check_frame("rows", rows, by + ["time"])
    if "engage" in columns and "engage" not in log:
        log = log.assign(engage=log[["click", "like", "comment", "share"]].sum(axis=1))
    grouped = log.groupby(by + ["time"], sort=True)
    totals = grouped[columns].sum()
    totals["n"] = grouped.size()
    totals = totals.groupby(level=by, sort=False).cumsum().reset_index().sort_values("time", kind="stable")
    left = rows[by + ["time"]].assign(_row=np.arange(len(rows))).sort_values("time", kind="stable")
    joined = pd.merge_asof(left, totals, on="time", by=by, allow_exact_matches=False)
    joined = joined.sort_values("_row")[columns + ["n"]].fillna(0.0)
    joined.index = rows.index
    return joined


def feed_features(log: pd.DataFrame, rows: pd.DataFrame, connections: pd.DataFrame) -> pd.DataFrame:
    """Every feature of the chapter's model for each row (an impression or a candidate).

    ``rows`` needs ``user_id``, ``post_id``, ``time`` and the post's columns (see
    :func:`with_posts`). Features: whether the author is a friend, the log of the contact count,
    the topic and media (integer codes), the post's age in hours, and for every key in
    :data:`HISTORY_KEYS` the log of its earlier impressions and each counted reaction's rate,
    smoothed (``(count + 0.1) / (n + 1)``) so a key with no history gets a small rate, not 0/0.
    """
    rows = check_frame("rows", rows, _ROW_COLUMNS + ("author_id", "topic", "media", "created"))
    check_frame("connections", connections, ("user_id", "author_id", "kind", "contacts"))
    pair = rows[["user_id", "author_id"]].merge(connections, on=["user_id", "author_id"], how="left")
    if pair["kind"].isna().any():
        raise ValueError("every row's viewer must be connected to the post's author")
    age = (rows["time"].to_numpy() - rows["created"].to_numpy()) * 24.0
    if (age < 0).any():
        raise ValueError("a row's time is before its post was created")
    counts = {prefix: past_counts(log, rows, key)[[*COUNTED, "n"]].to_numpy()
              for prefix, key in HISTORY_KEYS.items()}
    return features_from(pair["kind"], pair["contacts"], rows["topic"], rows["media"], age,
                         counts, index=rows.index)


def features_from(kind, contacts, topic, media, age_hours, counts, *, index) -> pd.DataFrame:
    """The feature frame from its parts, one row per candidate: the one arithmetic behind
    :func:`feed_features` (counts from the log) and ``serving.served_features`` (counts from
    the serving counters), so that the two agree to the bit.

    ``kind`` is each pair's connection type, ``contacts`` its contact count, ``topic`` and
    ``media`` the post's, ``age_hours`` its age; ``counts`` maps every prefix of
    :data:`HISTORY_KEYS` to an array with a row per candidate and the columns ``COUNTED`` then
    ``n``: the reactions and the impressions counted under that key before the candidate.
    """
    features = {
        "friend": (np.asarray(kind) == "friend").astype(np.int8),
        "contacts": np.log1p(np.asarray(contacts)),
        "topic": pd.Categorical(topic, categories=nf.TOPICS).codes.astype(np.int8),
        "media": pd.Categorical(media, categories=nf.MEDIA).codes.astype(np.int8),
        "age_hours": age_hours,
    }
    for prefix in HISTORY_KEYS:
        table = np.asarray(counts[prefix])
        if table.shape != (len(features["friend"]), len(COUNTED) + 1):
            raise ValueError(f"counts[{prefix!r}] must have a row per candidate and "
                             f"{len(COUNTED) + 1} columns, got shape {table.shape}")
        n = table[:, -1]
        features[f"{prefix}_n"] = np.log1p(n)
        for j, column in enumerate(COUNTED):
            features[f"{prefix}_{column}"] = (table[:, j] + 0.1) / (n + 1.0)
    return pd.DataFrame(features, index=index)


def dcg_by_request(request, score, gain, k: int = 10) -> pd.DataFrame:
    """Every request's DCG@k under ``score``, its ideal DCG@k and its number of candidates.

    Each request's candidates are ordered by ``score`` (highest first; ties keep the input
    order) and ``DCG@k = sum_{i <= k} gain_i / log2(i + 1)``; the ideal orders the same
    candidates by ``gain``. Gains may be negative. Returns a frame indexed by request
    (sorted) with columns ``dcg``, ``ideal`` and ``candidates``.
    """
    k = check_int("k", k, minimum=1)
    request = np.asarray(request)
    score = np.asarray(score, dtype=float)
    gain = np.asarray(gain, dtype=float)
    if not (request.ndim == score.ndim == gain.ndim == 1) or not len(request) == len(score) == len(gain):
        raise ValueError(f"request, score and gain must be 1-D of one length, got shapes "
                         f"{request.shape}, {score.shape}, {gain.shape}")
    if not (np.isfinite(score).all() and np.isfinite(gain).all()):
        raise ValueError("scores and gains must be finite")
    codes, requests = pd.factorize(request, sort=True)
    discount = 1.0 / np.log2(np.arange(2, k + 2))

    def dcg(order_key: np.ndarray) -> np.ndarray:
        order = np.lexsort((np.arange(len(codes)), -order_key, codes))
        ranked = codes[order]
        start = np.searchsorted(ranked, ranked, side="left")
        position = np.arange(len(ranked)) - start
        top = position < k
        return np.bincount(ranked[top], gain[order][top] * discount[position[top]], len(requests))

    return pd.DataFrame({"dcg": dcg(score), "ideal": dcg(gain),
                         "candidates": np.bincount(codes, minlength=len(requests))},
                        index=pd.Index(requests, name="request"))


def ndcg_by_request(request, score, gain, k: int = 10) -> pd.Series:
    """nDCG@k of every request's ranking, with signed gains; NaN where it is not defined.

    nDCG@k = DCG@k / ideal DCG@k (:func:`dcg_by_request`). Gains may be negative (a post the
    viewer would rather hide), so a ranking can score below 0, and the ideal ordering still
    scores exactly 1. A request is left out (NaN) when its ideal DCG@k is not positive (no
    ordering does any good: nDCG would divide by zero or flip sign) or it has fewer than two
    candidates (one order only).

    Returns a Series indexed by request (sorted).
    """
    table = dcg_by_request(request, score, gain, k)
    defined = (table["ideal"] > 0) & (table["candidates"] >= 2)
    values = np.where(defined, table["dcg"] / table["ideal"].where(defined, 1.0), np.nan)
    return pd.Series(values, index=table.index, name=f"ndcg@{k}")


def pooled_ndcg(request, score, gain, k: int = 10) -> float:
    """The DCG@k of every request summed, over their ideal DCG@k summed (requests with at
    least two candidates and a positive ideal).

    With *realized* gains (what a logged viewer did), most sessions' ideal is small and one
    hide (-20) swings such a session's nDCG by tens, so the mean of per-session nDCG is ruled
    by a few sessions; the pooled ratio weighs each session by what was at stake in it.
    """
    table = dcg_by_request(request, score, gain, k)
    table = table[(table["ideal"] > 0) & (table["candidates"] >= 2)]
    if table.empty:
        raise ValueError("no request has two candidates and a positive ideal DCG")
    return float(table["dcg"].sum() / table["ideal"].sum())


def _aligned(before, after) -> tuple[pd.Series, pd.Series]:
    for name, s in (("before", before), ("after", after)):
        if not isinstance(s, pd.Series):
            raise TypeError(f"{name} must be a Series indexed by viewer (ndcg_by_request's), "
                            f"got {type(s).__name__}")
        if not s.index.is_unique:
            raise ValueError(f"{name} has a viewer twice in its index")
    before, after = before.align(after, join="outer")  # a viewer missing from one is NaN there
    both = before.notna() & after.notna()  # a viewer left out of either is left out of both
    return before[both].astype(float), after[both].astype(float)


def viewer_gain(before: pd.Series, after: pd.Series, *, seed, n_resamples: int = 1000,
                level: float = 0.95) -> tuple[float, float, float]:
    """The mean per-viewer gain ``after - before`` and its paired bootstrap interval:
    ``(gain, low, high)``.

    ``before`` and ``after`` are per-viewer scores indexed by viewer (two systems'
    ``ndcg_by_request``); viewers NaN or missing in either are left out of both. ``seed`` is
    an int or a ``np.random.Generator`` (``exercise_rng``).
    """
    b, a = _aligned(before, after)
    if len(b) < 2:
        raise ValueError(f"need at least two viewers scored by both systems, got {len(b)}")
    low, high = paired_bootstrap(lambda x, y: float(np.mean(y - x)), b.to_numpy(), a.to_numpy(),
                                 seed=seed, n_resamples=n_resamples, level=level)
    return float((a - b).mean()), low, high
