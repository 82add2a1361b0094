"""Chapter 14's monitoring plumbing: the live weeks, each week's pairs and the signals on them.

Labels arrive fast in this system: a week after the batch, we know which suggested pairs
became friends. So the monitors can watch the model itself, week by week:

- :func:`live_data` continues the world (:func:`mlsd.datasets.people_you_may_know.live_weeks`)
  and joins the new rows to the log's;
- :func:`week_pairs` is one week's batch as the monitors see it: the candidates at the start
  of the week, their features and, once the week is over, their labels;
- :func:`undo_negative_sampling` turns a model trained on a sample of the negatives back into
  probabilities, so that predicted and realized friendships can be compared;
- :func:`weekly_signals` tabulates, per week, the friendships predicted and made (and a
  Poisson band on their difference), the share made between schoolmates and each system's
  ROC-AUC; :func:`auc_gain` is one system's ROC-AUC gain over another, with an interval
  that resamples people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.cases.people_you_may_know import core
from mlsd.datasets import people_you_may_know as pk
from mlsd.book.seeding import make_rng
from mlsd.evaluation.metrics import roc_auc

__all__ = ["LiveData", "live_data", "WeekPairs", "week_pairs", "undo_negative_sampling", "weekly_signals",
           "auc_gain"]


class LiveData(NamedTuple):
    """The log and the live weeks together: every friendship and every view so far."""

    friendships: pd.DataFrame
    views: pd.DataFrame
    last_week: int


def live_data(world, n_weeks: int, *, campaign: float | None = None, campaign_week: int | None = None) -> LiveData:
    """The world's log continued for ``n_weeks`` (see :func:`~mlsd.datasets.people_you_may_know.live_weeks`)."""
    friendships, views = pk.live_weeks(world, n_weeks, campaign=campaign, campaign_week=campaign_week)
    return LiveData(pd.concat([world.observed["friendships"], friendships], ignore_index=True),
                    pd.concat([world.observed["views"], views], ignore_index=True),
                    pk.TEST_WEEK + n_weeks)


class WeekPairs(NamedTuple):
    """One week's candidates (friends of friends at its start), features and labels."""

    week: int
    pairs: pd.DataFrame
    X: pd.DataFrame
    y: np.ndarray


def week_pairs(world, live: LiveData, week: int) -> WeekPairs:
    """The pairs the batch scored for ``week``: features at the end of ``week - 1``, labels of ``week``."""
    week = check_int("week", week, minimum=1)
    if week > live.last_week:
        raise ValueError(f"week {week} is past the live data (the last week is {live.last_week})")
    snap = core.snapshot(world, week - 1, friendships=live.friendships, views=live.views)
    pairs = core.friends_of_friends(snap.graph)
    return WeekPairs(week, pairs, core.pair_features(snap, pairs),
                     core.became_friends(live.friendships, pairs, week))


def undo_negative_sampling(p, keep: float) -> np.ndarray:
    """Probabilities from a model trained on every positive and a share ``keep`` of the negatives.

    Sampling the negatives multiplies every pair's odds by ``1 / keep``; multiplying the
    predicted odds by ``keep`` undoes it: ``p' = keep p / (keep p + 1 - p)``.
    """
    keep = check_finite("keep", keep)
    if not 0 < keep <= 1:
        raise ValueError(f"keep is a share of the negatives, in (0, 1]; got {keep}")
    p = np.asarray(p, dtype=float)
    if not ((p >= 0) & (p <= 1)).all():
        raise ValueError("p must hold probabilities in [0, 1]")
    return keep * p / (keep * p + (1 - p))


def weekly_signals(weeks: Mapping[int, WeekPairs], predicted: Mapping[int, np.ndarray],
                   scores: Mapping[str, Mapping[int, np.ndarray]], users: pd.DataFrame, *,
                   z: float = 3.0) -> pd.DataFrame:
    """One row per week: friendships predicted and made, their z-score, schoolmates' share, AUCs.

    ``predicted[week]`` holds the deployed model's probabilities for the week's pairs; the
    made friendships are a sum of independent Bernoulli draws, so without a change their
    count has mean ``sum(p)`` and variance ``sum(p (1 - p))``, and ``z`` is the alarm's
    threshold on the standardised difference. ``schoolmates`` is the share of the week's new
    friendships (among the candidates) between people whose profiles show the same school.
    ``scores[name][week]`` adds a ROC-AUC column per system.
    """
    z = check_finite("z", z)
    school = users["school"].to_numpy()
    rows = []
    for week, wp in sorted(weeks.items()):
        p = np.asarray(predicted[week], dtype=float)
        if p.shape != wp.y.shape:
            raise ValueError(f"week {week}: {len(p)} predictions for {len(wp.y)} pairs")
        made, expected, sd = wp.y.sum(), p.sum(), np.sqrt((p * (1 - p)).sum())
        a, b = wp.pairs["user_a"].to_numpy()[wp.y == 1], wp.pairs["user_b"].to_numpy()[wp.y == 1]
        same = (school[a] == school[b]) & (school[a] != pk.MISSING)
        row = {"week": week, "predicted": expected, "made": int(made), "z": (made - expected) / sd,
               "schoolmates": same.mean() if len(a) else np.nan}
        row |= {f"AUC {name}": roc_auc(wp.y, by_week[week]) for name, by_week in scores.items() if week in by_week}
        rows.append(row)
    table = pd.DataFrame(rows).set_index("week")
    table["alarm"] = table["z"].abs() > z
    return table


def auc_gain(wp: WeekPairs, before, after, n_users: int, *, seed: int, n_resamples: int = 200,
             level: float = 0.95) -> tuple[float, float, float]:
    """``after``'s ROC-AUC minus ``before``'s on the week's pairs: (gain, low, high).

    The interval is a paired bootstrap over people (:func:`~mlsd.cases.people_you_may_know.core.auc_scorer`:
    a pair counts as the mean of its two people's draws), percentile, at ``level``.
    """
    n_resamples = check_int("n_resamples", n_resamples, minimum=100)
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    a, b = wp.pairs["user_a"].to_numpy(), wp.pairs["user_b"].to_numpy()
    first, second = (core.auc_scorer(wp.y, s, a, b, n_users) for s in (before, after))
    ones = np.ones(n_users)
    rng = make_rng(seed, "auc gain")
    draws = [rng.multinomial(n_users, ones / n_users) for _ in range(n_resamples)]
    gains = np.array([second(w) - first(w) for w in draws])
    low, high = np.quantile(gains, [(1 - level) / 2, (1 + level) / 2])
    return second(ones) - first(ones), float(low), float(high)
