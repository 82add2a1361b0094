"""Chapter 8's monitoring plumbing: daily signals, their bands and alarms, and the figure.

The chapter teaches what to watch (reports on posts the policy let through, words the
vectorizer has never seen, overturned appeals) and how to respond (review, refit the
vocabulary, retrain). Here are the parts around it: the core's policy applied day by day,
per-day shares with their denominators (and the hidden share of harmful posts caught), a
binomial band around reference days (chapter 7's
:func:`mlsd.cases.video_search.binomial_band`), an alarm rule of consecutive days outside the
band scored by :func:`mlsd.evaluation.drift.evaluate_alarms`, unknown-word counts, a paired
bootstrap of a gain in macro PR-AUC, the numbers the prose quotes and the figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mlsd._checks import check_int
from mlsd.cases.harmful_content import decide, macro_ap_scorer
from mlsd.cases.video_search import binomial_band
from mlsd.evaluation.drift import evaluate_alarms
from mlsd.evaluation.experiments import paired_bootstrap

__all__ = ["decide_by_day", "daily_shares", "daily_recall", "reference_bands", "alarm_days",
           "detect", "unknown_word_counts", "macro_ap_gain", "monitoring_numbers",
           "plot_monitoring"]


def decide_by_day(p_harmful, day, costs: Mapping[str, tuple[float, float]], *,
                  capacity: float) -> np.ndarray:
    """The policy of :func:`mlsd.cases.harmful_content.decide` applied one day at a time: each
    day's review queue holds at most ``capacity`` of that day's posts."""
    p, day = np.asarray(p_harmful, dtype=float), np.asarray(day)
    if p.ndim != 1 or day.shape != p.shape:
        raise ValueError("give one probability and one day per post")
    actions = np.empty(len(p), dtype=object)
    for d in np.unique(day):
        actions[day == d] = decide(p[day == d], costs, capacity=capacity)
    return actions.astype(str)


def daily_shares(day, **signals) -> pd.DataFrame:
    """Per day, each signal's share: the sum of its numerator over the sum of its denominator.

    ``signals[name] = (numerator, denominator)``, one value of each per row (a post): e.g.
    ``(reported & allowed, reported)`` gives the share of reported posts that were allowed,
    ``(unknown words, words)`` the share of unknown words. Returns a frame indexed by day with,
    per signal, the share (column ``name``, NaN on a day whose denominator is 0) and the
    denominator (column ``name + " n"``), which sets the day's band.
    """
    day = np.asarray(day)
    if day.ndim != 1 or not len(day) or not signals:
        raise ValueError("give a non-empty 1-d day per row and at least one signal")
    out = {}
    for name, pair in signals.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(f"signal {name!r} must be a (numerator, denominator) pair")
        num, den = (np.asarray(a, dtype=float) for a in pair)
        if num.shape != day.shape or den.shape != day.shape:
            raise ValueError(f"signal {name!r} needs one numerator and denominator per row ({len(day)})")
        if (num < 0).any() or (num > den).any():
            raise ValueError(f"signal {name!r}: need 0 <= numerator <= denominator on every row")
        sums = pd.DataFrame({"num": num, "den": den}).groupby(day).sum()
        out[name] = sums["num"] / sums["den"].where(sums["den"] > 0)
        out[f"{name} n"] = sums["den"]
    return pd.DataFrame(out).rename_axis("day")


def daily_recall(day, harmful, **actions) -> pd.DataFrame:
    """Per day, the share of truly harmful posts each policy removed or sent to review.

    ``actions[name]`` holds one action per post (as :func:`decide_by_day` returns); the
    column of the result is ``name``. Needs the hidden truth: for the reader, not the team.
    """
    harmful = np.asarray(harmful, dtype=bool)
    if not actions:
        raise ValueError("give at least one policy's actions")
    return daily_shares(day, **{name: (harmful & np.isin(np.asarray(a), ["remove", "review"]),
                                       harmful) for name, a in actions.items()})


def reference_bands(daily: pd.DataFrame, names: Sequence[str], reference, z: float = 3.0) -> dict:
    """For each signal of ``names``, a binomial band of ``z`` standard errors around its
    pooled rate on the ``reference`` days (a boolean mask over ``daily``'s rows).

    Each day's width follows its own denominator (column ``name + " n"`` of
    :func:`daily_shares`). Returns ``{name: (low, high)}``, arrays over the days.
    """
    reference = np.asarray(reference, dtype=bool)
    if reference.shape != (len(daily),) or not reference.any():
        raise ValueError("reference must mark at least one of daily's rows (a boolean per day)")
    bands = {}
    for name in names:
        if name not in daily or f"{name} n" not in daily:
            raise ValueError(f"daily has no signal {name!r} (columns {name!r} and '{name} n')")
        rate, n = daily[name].to_numpy(), daily[f"{name} n"].to_numpy()
        n_reference = n[reference].sum()
        pooled = float(np.nansum(rate[reference] * n[reference]) / n_reference)
        bands[name] = binomial_band(pooled, int(round(n_reference)), np.maximum(n, 1), z=z)
    return bands


def alarm_days(rate, low, high, run: int = 2) -> np.ndarray:
    """True on each day that ends ``run`` consecutive days outside ``[low, high]`` (either side).

    Under the normal approximation, one day out of a 3-standard-error band happens by chance
    about once in 370 days per signal; asking for two in a row cuts false alarms further, at
    the cost of a day's delay.
    A NaN rate (no data that day) is not outside the band.
    """
    rate, low, high = (np.asarray(a, dtype=float) for a in (rate, low, high))
    run = check_int("run", run, minimum=1)
    if rate.ndim != 1 or low.shape != rate.shape or high.shape != rate.shape:
        raise ValueError("rate, low and high must be 1-d arrays of one length (one value per day)")
    if (low > high).any():
        raise ValueError("each day's band needs low <= high")
    outside = (rate < low) | (rate > high)
    streak = np.zeros(len(rate), dtype=int)
    for t, out in enumerate(outside):
        streak[t] = (streak[t - 1] + 1 if t else 1) if out else 0
    return streak >= run


def detect(daily: pd.DataFrame, bands: Mapping, drift_day: int, run: int = 2) -> dict:
    """Each banded signal's alarms (:func:`alarm_days`) scored by
    :func:`mlsd.evaluation.drift.evaluate_alarms` against the known drift day (a day of
    ``daily``'s index): ``{name: {"detected", "delay", "false_alarms", "false_alarm_rate"}}``."""
    days = daily.index.to_numpy()
    if drift_day not in days:
        raise ValueError(f"drift_day {drift_day} is not one of daily's days")
    change_at = int(np.flatnonzero(days == drift_day)[0])
    return {name: evaluate_alarms(alarm_days(daily[name], low, high, run=run), change_at)
            for name, (low, high) in bands.items()}


def unknown_word_counts(texts, vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """For each text, the number of its words (split on spaces) not in ``vocabulary``, and of
    all its words: ``(unknown, words)`` integer arrays."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("every text must be a string")
    if not hasattr(vocabulary, "__contains__"):
        raise TypeError("vocabulary must support `in` (a set or a dict of words)")
    words = [t.split() for t in texts]
    unknown = np.array([sum(w not in vocabulary for w in ws) for ws in words], dtype=np.int64)
    return unknown, np.array([len(ws) for ws in words], dtype=np.int64)


def macro_ap_gain(labels, before, after, *, seed, n_resamples: int = 1000) -> tuple[float, float]:
    """95 % paired bootstrap interval of macro PR-AUC(after) - macro PR-AUC(before).

    Posts are resampled with replacement and both systems scored on the same draw (the
    weights of :func:`mlsd.cases.harmful_content.macro_ap_scorer`), so the posts' difficulty,
    common to both, cancels out. A gain is established only if the interval excludes 0.
    """
    score_before, score_after = macro_ap_scorer(labels, before), macro_ap_scorer(labels, after)
    n = len(np.asarray(labels))

    def gain(rows):
        weights = np.bincount(rows, minlength=n)
        return score_after(weights) - score_before(weights)

    return paired_bootstrap(gain, np.arange(n), seed=seed, n_resamples=n_resamples)


def monitoring_numbers(daily: pd.DataFrame, caught: Mapping, drift_day: int, fix_day: int,
                       recovery: pd.DataFrame, gain: tuple[float, float], **settings) -> dict:
    """The numbers the section's prose quotes, named ``mon_*`` (``settings``: given as is).

    ``daily`` holds the daily signals (:func:`daily_shares`, plus a hidden ``recall`` and
    ``recall, retrained``); ``caught`` the :func:`mlsd.evaluation.drift.evaluate_alarms`
    outcome per signal, in the order unknown words, reported posts let through, overturned
    appeals (quoted as ``mon_unknown_*``, ``mon_reported_*``, ``mon_overturned_*``: the
    verdict, the false alarms, the mean daily share before the drift and from it on);
    ``recovery`` the macro PR-AUC per row (``deployed, before the drift``, ``deployed``,
    ``retrained``) with column ``macro PR-AUC``; ``gain`` the retrained model's paired
    interval.
    """
    needed = {"deployed, before the drift", "deployed", "retrained"}
    if len(caught) != 3:
        raise ValueError(f"caught needs three signals, got {list(caught)}")
    if not needed <= set(recovery.index) or "macro PR-AUC" not in recovery:
        raise ValueError(f"recovery needs the rows {sorted(needed)} and a 'macro PR-AUC' column")
    before = daily.index < drift_day
    between = (daily.index >= drift_day) & (daily.index < fix_day)
    out = {f"mon_{k}": v for k, v in settings.items()}
    out |= {"mon_drift_day": drift_day, "mon_fix_day": fix_day, "mon_fix_day_before": fix_day - 1,
            "mon_last_day": int(daily.index.max())}
    for name, key in zip(caught, ("unknown", "reported", "overturned")):
        c = caught[name]
        out[f"mon_{key}_verdict"] = (f"alarms on day {drift_day + c['delay']}" if c["detected"]
                                     else "never alarms")
        out[f"mon_{key}_false_alarms"] = c["false_alarms"]
        out[f"mon_{key}_before"] = daily.loc[before, name].mean()
        out[f"mon_{key}_after"] = daily.loc[~before, name].mean()
    out |= {"mon_recall_before": daily.loc[before, "recall"].mean(),
            "mon_recall_drifted": daily.loc[between, "recall"].mean(),
            "mon_recall_deployed": daily.loc[daily.index >= fix_day, "recall"].mean(),
            "mon_recall_retrained": daily.loc[daily.index >= fix_day, "recall, retrained"].mean()}
    for row, key in (("deployed, before the drift", "ap_before"), ("deployed", "ap_deployed"),
                     ("retrained", "ap_retrained")):
        out[f"mon_{key}"] = recovery.loc[row, "macro PR-AUC"]
    out["mon_gain_low"], out["mon_gain_high"] = gain
    return out


def plot_monitoring(axes, daily: pd.DataFrame, bands: Mapping, caught: Mapping, drift_day: int,
                    fix_day: int) -> None:
    """The section's figure: each banded signal on its own axis (``axes`` in the order of
    ``bands``) with its band and its first alarm (``caught``: the outcome of
    :func:`mlsd.evaluation.drift.evaluate_alarms` per signal, days counted from
    ``drift_day``); on the last axis the hidden daily recall of the deployed and (from
    ``fix_day``) the retrained system, with the first alarm of any signal; the drift day on all."""
    if len(axes) != len(bands) + 1:
        raise ValueError(f"give one axis per banded signal and one for the recall ({len(bands) + 1})")
    if set(caught) != set(bands):
        raise ValueError("caught and bands must name the same signals")
    alarms = {n: drift_day + c["delay"] for n, c in caught.items() if c["detected"]}
    for ax, (name, (low, high)) in zip(axes, bands.items()):
        ax.fill_between(daily.index, low, high, color="0.85", step="mid", label="band")
        ax.plot(daily.index, daily[name], "o-", ms=3, color="#0072B2", label="daily share")
        ax.set(title=name)
        if name in alarms:
            ax.axvline(alarms[name], color="#D55E00", lw=1, label="first alarm")
    ax = axes[-1]
    ax.plot(daily.index, daily["recall"], "o-", ms=3, color="#0072B2", label="deployed")
    ax.plot(daily.index, daily["recall, retrained"].where(daily.index >= fix_day), "s--", ms=3,
            color="#009E73", label="retrained")
    ax.set(title="hidden: harmful posts removed or reviewed", ylim=(0, 1))
    if alarms:
        ax.axvline(min(alarms.values()), color="#D55E00", lw=1)
    for ax in axes:
        ax.axvline(drift_day - 0.5, color="0.3", ls=":", lw=1, label="drift")
        ax.yaxis.set_major_formatter(lambda y, _: f"{100 * y:.3g}%")
        spec = ax.get_subplotspec()
        if spec is None or spec.is_last_row():
            ax.set(xlabel="day")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[-1].legend(loc="lower left", fontsize=8)
