"""Chapter 13's monitoring: a clickbait wave in the live feed, seen by the hide rate and by
each head's calibration, its cost on a feed day, and the retraining (the "Monitoring"
section of ``chapters/13_news_feed.ipynb``).

The wave itself comes from the world (``nf.live_log``); here is the plumbing around it:

- **the live log**: :func:`join_live` appends the live days to the stored log (posts, their
  hidden truth, impressions joined to their posts), so that ``case.feed_features`` reads the
  counters as they stood at any live moment and ``nf.feed_requests`` finds a later day's
  candidates;
- **daily signals and their bands**: :func:`rate_signal` (a daily rate, e.g. of hides) and
  :func:`calibration_signal` (a head's observed count over its predicted one, per day, from
  :func:`daily_calibration`) each get a band around their level on reference days, as wide
  as counting theory says, widened by the day-to-day variation measured on those days
  (:func:`mlsd.evaluation.drift.dispersion_threshold`); :func:`live_signals` builds the
  section's set and :func:`alarm_table` turns them into alarms
  (``drift.run_alarms``, ``drift.first_alarm``);
- **the cost and the response**: :func:`feed_day` (a day's feed requests, their true value
  and which posts are clickbait), :func:`score_feeds` (nDCG@10 per viewer and the share of
  clickbait in each system's top ten), :func:`ndcg_gain` (a paired bootstrap over viewers),
  :func:`monitoring_numbers` and :func:`feed_numbers` (what the prose quotes) and
  :func:`plot_monitoring` (the section's figure).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from mlsd._checks import check_finite, check_frame, check_int
from mlsd.cases.news_feed.core import ndcg_by_request, viewer_gain, with_posts
from mlsd.datasets import news_feed as nf
from mlsd.datasets.world import World
from mlsd.evaluation.drift import dispersion_threshold, first_alarm, run_alarms

__all__ = ["LiveLog", "join_live", "DailySignal", "daily_calibration", "rate_signal",
           "calibration_signal", "live_signals", "alarm_table", "FeedDay", "feed_day",
           "score_feeds", "ndcg_gain", "monitoring_numbers", "feed_numbers", "plot_monitoring"]

_IMPRESSIONS = ("session_id", "user_id", "post_id", "time") + nf.REACTIONS + ("dwell",)


# --------------------------------------------------------------------------- the live log


class LiveLog(NamedTuple):
    """The stored log continued by the live days.

    ``posts`` and ``post_truth`` hold the log's posts and the live ones (ids 0..n-1, in
    order: what ``nf.truth_of`` takes); ``log`` holds the stored log's rows, then the live
    impressions joined to their posts, with a ``day`` column and a fresh 0..n-1 index;
    ``live`` is True on the live rows."""

    posts: pd.DataFrame
    post_truth: pd.DataFrame
    log: pd.DataFrame
    live: np.ndarray


def join_live(world: World, log: pd.DataFrame, new_posts: pd.DataFrame,
              new_truth: pd.DataFrame, impressions: pd.DataFrame) -> LiveLog:
    """``log`` (the stored impressions joined to their posts) continued by what
    ``nf.live_log(world, ...)`` returns: its posts, their truth and its impressions.

    The live posts must continue the world's post ids and the live impressions must come
    after the log's last one."""
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    log = check_frame("log", log, _IMPRESSIONS + ("author_id", "topic", "media", "created"))
    new_posts = check_frame("new_posts", new_posts, ("post_id", "author_id", "topic", "media",
                                                "created"))
    new_truth = check_frame("new_truth", new_truth, ("post_id", "quality", "virality", "clickbait"))
    impressions = check_frame("impressions", impressions, _IMPRESSIONS)
    posts = pd.concat([world.observed["posts"], new_posts], ignore_index=True)
    truth = pd.concat([world.hidden["post_truth"], new_truth], ignore_index=True)
    if not (np.array_equal(posts["post_id"].to_numpy(), np.arange(len(posts)))
            and np.array_equal(truth["post_id"].to_numpy(), np.arange(len(posts)))):
        raise ValueError("new_posts and new_truth must continue the world's post ids, in order")
    if len(impressions) and len(log) and impressions["time"].min() <= log["time"].max():
        raise ValueError("the live impressions must come after the log's last one")
    live = with_posts(impressions, posts)
    live["day"] = np.floor(live["time"].to_numpy()).astype(int)
    stored = log.assign(day=np.floor(log["time"].to_numpy()).astype(int))
    full = pd.concat([stored, live[stored.columns.intersection(live.columns)]],
                     ignore_index=True)
    is_live = np.arange(len(full)) >= len(stored)
    return LiveLog(posts, truth, full, is_live)


# --------------------------------------------------------------------------- signals


class DailySignal(NamedTuple):
    """A daily signal and its band: ``values`` (a Series indexed by day), ``low`` and
    ``high`` (one per day), the ``level`` it had on the reference days (``center``) and the
    ``dispersion``: how many times the theory's variance the reference days varied."""

    values: pd.Series
    low: np.ndarray
    high: np.ndarray
    center: float
    dispersion: float


def _days(day) -> np.ndarray:
    day = np.asarray(day)
    if day.ndim != 1 or not len(day):
        raise ValueError("day needs one value per row (1-d, not empty)")
    if not np.issubdtype(day.dtype, np.integer):
        raise TypeError(f"day must hold integer days, got dtype {day.dtype}")
    return day


def _reference_days(reference, days: np.ndarray) -> np.ndarray:
    if not isinstance(reference, range) or reference.step != 1 or not len(reference):
        raise TypeError("reference must be a non-empty range of days, e.g. range(14, 21)")
    mask = (days >= reference.start) & (days < reference.stop)
    if not mask.any():
        raise ValueError(f"no day of the signal falls in the reference days {reference}")
    return mask


def _band(values: pd.Series, sd: np.ndarray, center: float, reference, level: float
          ) -> DailySignal:
    """The band ``center +- sqrt(max(phi, 1) x chi2_1(level)) x sd`` of each day.

    ``sd`` is the day's standard deviation by counting theory; ``phi`` = the mean squared
    z score over the reference days (``dispersion_threshold`` with one degree of freedom)
    measures how much more the days really vary. A band is never narrower than theory:
    with few reference days, phi < 1 is chance, not days steadier than counting allows."""
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    days = values.index.to_numpy()
    mask = _reference_days(reference, days)
    z2 = ((values.to_numpy(float) - center) / sd) ** 2
    _, phi = dispersion_threshold(z2, np.ones(len(z2)), mask, 1, level)
    half = np.sqrt(max(phi, 1.0) * stats.chi2.ppf(level, 1)) * sd
    return DailySignal(values, center - half, center + half, float(center), float(phi))


def rate_signal(day, events, reference: range, *, level: float = 0.999) -> DailySignal:
    """The daily rate of a 0/1 ``events`` column (hides, say) and its band.

    The center is the pooled rate over the ``reference`` days; a day of n rows varies by
    ``sqrt(p (1 - p) / n)`` if its rows are independent draws at that rate (binomial), and
    the band widens that by the dispersion measured on the reference days."""
    day = _days(day)
    events = np.asarray(events)
    if events.shape != day.shape or not np.isin(events, (0, 1)).all():
        raise ValueError("events needs one 0 or 1 per row, like day")
    per_day = pd.Series(events, dtype=float).groupby(day, sort=True)
    rate, n = per_day.mean(), per_day.size().to_numpy(float)
    mask = _reference_days(reference, rate.index.to_numpy())
    center = float(np.sum(rate.to_numpy()[mask] * n[mask]) / n[mask].sum())
    if not 0 < center < 1:
        raise ValueError("the reference days need some events and some non-events")
    rate.index.name = "day"
    return _band(rate, np.sqrt(center * (1 - center) / n), center, reference, level)


def daily_calibration(day, labels, predicted) -> pd.DataFrame:
    """Calibration in the large, per day: for one head, the day's ``observed`` count of
    positive ``labels``, the ``expected`` count (the sum of the ``predicted``
    probabilities), the ``variance`` of that count if the predictions are right
    (``sum p (1 - p)``) and their ``ratio`` (observed / expected: 1 = calibrated, above 1 =
    the head predicts too little). Returns a frame indexed by day."""
    day = _days(day)
    labels, predicted = np.asarray(labels), np.asarray(predicted, dtype=float)
    if labels.shape != day.shape or predicted.shape != day.shape:
        raise ValueError("labels and predicted need one value per row, like day")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(predicted).all() or (predicted <= 0).any() or (predicted >= 1).any():
        raise ValueError("predicted must hold probabilities strictly between 0 and 1")
    frame = pd.DataFrame({"observed": labels.astype(float), "expected": predicted,
                          "variance": predicted * (1 - predicted)})
    out = frame.groupby(day, sort=True).sum()
    out.index.name = "day"
    return out.assign(ratio=out["observed"] / out["expected"])


def calibration_signal(day, labels, predicted, reference: range, *,
                       level: float = 0.999) -> DailySignal:
    """A head's daily calibration ratio (:func:`daily_calibration`) and its band.

    The center c is the pooled ratio over the ``reference`` days (a deployed model is
    rarely exactly calibrated on new days: the band watches for a *change*). If the true
    probabilities are c times the predicted ones, a day's observed count varies by about
    ``sqrt(c x sum p (1 - p))``, so its ratio by that over the expected count; the band
    widens that by the dispersion measured on the reference days."""
    table = daily_calibration(day, labels, predicted)
    mask = _reference_days(reference, table.index.to_numpy())
    center = float(table["observed"][mask].sum() / table["expected"][mask].sum())
    if center <= 0:
        raise ValueError("the reference days need some positive labels")
    sd = np.sqrt(center * table["variance"].to_numpy()) / table["expected"].to_numpy()
    return _band(table["ratio"], sd, center, reference, level)


def live_signals(rows: pd.DataFrame, predicted: pd.DataFrame, reference: range, *,
                 heads=nf.REACTIONS, level: float = 0.999) -> dict:
    """The section's daily signals on the live impressions ``rows`` (with ``day`` and the
    reaction labels): ``"hide rate"`` (:func:`rate_signal`), then ``"<head> calibration"``
    for each of ``heads`` (:func:`calibration_signal`, with ``predicted`` = the deployed
    model's probabilities, one row per row)."""
    rows = check_frame("rows", rows, ("day", "hide", *heads))
    predicted = check_frame("predicted", predicted, heads)
    if len(predicted) != len(rows):
        raise ValueError(f"predicted needs one row per row of rows ({len(rows)}), "
                         f"got {len(predicted)}")
    day = rows["day"].to_numpy()
    out = {"hide rate": rate_signal(day, rows["hide"].to_numpy(), reference, level=level)}
    for head in heads:
        out[f"{head} calibration"] = calibration_signal(
            day, rows[head].to_numpy(), predicted[head].to_numpy(), reference, level=level)
    return out


def alarm_table(signals: Mapping[str, DailySignal], *, wave_day: int,
                run: int = 2) -> pd.DataFrame:
    """One row per signal: its reference level, the dispersion, the first alarm on or
    after ``wave_day`` (an alarm = ``run`` days in a row outside the band,
    ``drift.run_alarms``; NaN if none) and the false alarms (alarm days before
    ``wave_day``)."""
    if not isinstance(signals, Mapping) or not signals or not all(
            isinstance(s, DailySignal) for s in signals.values()):
        raise TypeError("signals must map a name to a DailySignal")
    wave_day = check_int("wave_day", wave_day)
    rows = {}
    for name, signal in signals.items():
        days = signal.values.index.to_numpy()
        alarms = run_alarms(signal.values.to_numpy(float), signal.low, signal.high, run)
        first = first_alarm(days, alarms, after=wave_day)
        rows[name] = {"reference level": signal.center, "dispersion": signal.dispersion,
                      "first alarm (day)": np.nan if first is None else first,
                      "false alarms": int(alarms[days < wave_day].sum())}
    table = pd.DataFrame(rows).T
    return table.astype({"reference level": float, "dispersion": float,
                         "first alarm (day)": "Int64", "false alarms": int})


# --------------------------------------------------------------------------- the cost


class FeedDay(NamedTuple):
    """A day's feed requests (``candidates``: ``nf.feed_requests`` joined to the posts),
    each candidate's true value (``gain``) and whether it is clickbait (``clickbait``)."""

    candidates: pd.DataFrame
    gain: np.ndarray
    clickbait: np.ndarray


def feed_day(world: World, live: LiveLog, day: int) -> FeedDay:
    """Every viewer opens the app at the start of ``day`` (a live day): the candidates,
    their true value (the oracle's gain, from the hidden truth with the live posts) and
    their clickbait flag."""
    if not isinstance(live, LiveLog):
        raise TypeError(f"live must be a LiveLog (join_live), got {type(live).__name__}")
    day = check_int("day", day, minimum=nf.TEST_DAY)
    candidates = nf.feed_requests(world, day, posts=live.posts, impressions=live.log)
    candidates = with_posts(candidates, live.posts)
    truth = nf.truth_of(world, live.posts, live.post_truth)
    true = nf.true_reactions(truth, candidates["user_id"].to_numpy(),
                             candidates["post_id"].to_numpy(), candidates["time"].to_numpy())
    bait = live.post_truth["clickbait"].to_numpy()[candidates["post_id"].to_numpy()]
    return FeedDay(candidates, nf.expected_value(true), bait.astype(bool))


def score_feeds(feed: FeedDay, scores: Mapping, *, k: int = 10
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each system's ranking of ``feed`` (``scores``: name -> one score per candidate):
    ``(table, per_viewer)``. ``table`` has per system the mean ``nDCG@10`` over viewers
    (``case.ndcg_by_request``, true gains) and the share of clickbait among its top ``k``
    posts; ``per_viewer`` holds each viewer's nDCG (NaN where undefined), a column per
    system."""
    if not isinstance(feed, FeedDay):
        raise TypeError(f"feed must be a FeedDay (feed_day), got {type(feed).__name__}")
    if not isinstance(scores, Mapping) or not scores:
        raise TypeError("scores must map a system's name to its scores")
    k = check_int("k", k, minimum=1)
    request = feed.candidates["request"].to_numpy()
    per_viewer, bait = {}, {}
    for name, score in scores.items():
        score = np.asarray(score, dtype=float)
        if score.shape != request.shape:
            raise ValueError(f"{name}: give one score per candidate ({len(request)})")
        per_viewer[name] = ndcg_by_request(request, score, feed.gain, k)
        rank = pd.Series(score).groupby(request).rank(ascending=False, method="first")
        bait[name] = feed.clickbait[rank.to_numpy() <= k].mean()
    per_viewer = pd.DataFrame(per_viewer)
    table = pd.DataFrame({f"nDCG@{k}": per_viewer.mean(), f"clickbait in top {k}":
                          pd.Series(bait)})
    return table, per_viewer


def ndcg_gain(per_viewer: pd.DataFrame, before: str, after: str, *, seed) -> tuple:
    """``(gain, low, high)``: the mean over viewers of ``after``'s nDCG less ``before``'s
    (columns of :func:`score_feeds`'s ``per_viewer``), with a 95 % paired bootstrap
    interval over the viewers where both are defined: the core's ``viewer_gain`` on two
    columns."""
    if not isinstance(per_viewer, pd.DataFrame):
        raise TypeError("per_viewer must be score_feeds's per-viewer frame")
    if missing := [c for c in (before, after) if c not in per_viewer]:
        raise ValueError(f"per_viewer lacks the systems {missing}")
    return viewer_gain(per_viewer[before], per_viewer[after], seed=seed)


# --------------------------------------------------------------------------- numbers and figure


def monitoring_numbers(signals: Mapping[str, DailySignal], alarms: pd.DataFrame, *,
                       reference: range | None = None) -> dict:
    """What the prose quotes on the signals, named ``mon_*``: per signal (its name with
    spaces as underscores, e.g. ``hide_calibration``) the reference level ``mon_<key>_ref``,
    its largest value from the first alarm of any signal on, ``mon_<key>_peak``, the
    dispersion ``mon_<key>_phi`` and the verdict ``mon_<key>_alarm`` ("alarms on day d" or
    "does not alarm"); the false alarms of every signal together (``mon_false_alarms``) and
    the first alarm of any (``mon_first_alarm``; raises if no signal alarms: there is
    nothing to respond to). With the ``reference`` days, ``mon_phi_low`` and
    ``mon_phi_high``: the range that holds 95 % of the dispersions measured on that many
    days when counting theory is exact (chi-square with k - 1 degrees of freedom over k)."""
    if not isinstance(alarms, pd.DataFrame) or "first alarm (day)" not in alarms:
        raise TypeError("alarms must be alarm_table's frame")
    if not isinstance(signals, Mapping) or set(alarms.index) != set(signals):
        raise ValueError("alarms and signals must name the same signals")
    days = alarms["first alarm (day)"].dropna()
    if days.empty:
        raise ValueError("no signal alarms")
    out = {"mon_first_alarm": int(days.min()),
           "mon_false_alarms": int(alarms["false alarms"].sum())}
    if reference is not None:
        if not isinstance(reference, range) or len(reference) < 2:
            raise TypeError("reference must be a range of at least two days")
        k = len(reference)
        out["mon_phi_low"], out["mon_phi_high"] = (float(q) for q in
                                                   stats.chi2.ppf([0.025, 0.975], k - 1) / k)
    for name, signal in signals.items():
        key = name.replace(" ", "_")
        first = alarms.loc[name, "first alarm (day)"]
        after = signal.values[signal.values.index >= out["mon_first_alarm"]]
        out[f"mon_{key}_ref"] = signal.center
        out[f"mon_{key}_peak"] = float(after.max()) if len(after) else signal.center
        out[f"mon_{key}_phi"] = signal.dispersion
        out[f"mon_{key}_alarm"] = ("does not alarm" if pd.isna(first)
                                   else f"alarms on day {int(first)}")
    return out


def feed_numbers(table: pd.DataFrame, gain, ratios: Mapping[str, pd.Series],
                 signals: Mapping[str, DailySignal]) -> dict:
    """What the prose quotes on the cost and the retraining, named ``mon_*``.

    From :func:`score_feeds`'s ``table``: ``mon_ndcg_<system>`` and ``mon_bait_<system>``
    (the system's name in lower case, spaces and commas as underscores: ``"EdgeRank"`` gives
    ``mon_ndcg_edgerank``). From :func:`ndcg_gain`'s ``gain``: ``mon_gain``,
    ``mon_gain_low``, ``mon_gain_high`` and ``mon_gain_verdict`` ("a clear gain" if the
    interval lies above 0, "a clear loss" if below, else "not a clear difference"). From
    ``ratios`` (head -> the retrained model's daily calibration ratio,
    :func:`daily_calibration`) and the deployed model's ``signals``: ``mon_<head>_retrained`` and ``mon_<head>_deployed_after``, the mean
    daily ratio of each model over the same days, ``mon_<head>_in_band``, on how many of
    those days the retrained model's ratio lies in the deployed model's band, and
    ``mon_days_after``, how many days that is."""
    if not isinstance(table, pd.DataFrame) or table.shape[1] != 2:
        raise TypeError("table must be score_feeds's table")
    if len(gain) != 3:
        raise ValueError("gain must be ndcg_gain's (gain, low, high)")
    out = {}
    for system, (ndcg, bait) in table.iterrows():
        key = "_".join(str(system).lower().replace(",", " ").split())
        out[f"mon_ndcg_{key}"], out[f"mon_bait_{key}"] = float(ndcg), float(bait)
    for suffix, value in zip(("", "_low", "_high"), gain):
        out[f"mon_gain{suffix}"] = float(value)
    out["mon_gain_verdict"] = ("a clear gain" if gain[1] > 0 else "a clear loss"
                               if gain[2] < 0 else "not a clear difference")
    for head, ratio in ratios.items():
        if f"{head} calibration" not in signals:
            raise ValueError(f"signals has no calibration of the head {head!r}")
        signal = signals[f"{head} calibration"]
        days = signal.values.index.to_numpy()
        where = np.isin(days, ratio.index.to_numpy())
        if where.sum() != len(ratio):
            raise ValueError(f"{head}: the retrained ratio has days the signal has not")
        inside = (ratio.to_numpy() >= signal.low[where]) & (ratio.to_numpy() <= signal.high[where])
        out[f"mon_{head}_retrained"] = float(ratio.mean())
        out[f"mon_{head}_deployed_after"] = float(signal.values.to_numpy()[where].mean())
        out[f"mon_{head}_in_band"] = int(inside.sum())
        out["mon_days_after"] = int(len(ratio))
    return out


def plot_monitoring(axes, signals: Mapping[str, DailySignal], *, heads=("hide", "click"),
                    retrained: Mapping[str, pd.Series] | None = None, wave_day: int,
                    alarm_day: int | None = None, retrain_day: int | None = None) -> None:
    """The section's figure. ``axes[0]``: the daily hide rate (``signals["hide rate"]``)
    with its band, the wave's first day and the first alarm. ``axes[1]``: the calibration
    ratio of each of ``heads`` (``signals["<head> calibration"]``) with its band, and, from
    ``retrain_day``, the retrained model's (``retrained``: head -> ratio by day, dashed)."""
    if len(axes) != 2:
        raise ValueError("give two axes: the hide rate and the calibration")
    needed = ["hide rate", *(f"{h} calibration" for h in heads)]
    if missing := [n for n in needed if n not in signals]:
        raise ValueError(f"signals lacks {missing}")
    if not 1 <= len(heads) <= 3:
        raise ValueError("give one to three heads")
    retrained = {} if retrained is None else dict(retrained)
    if unknown := [h for h in retrained if h not in heads]:
        raise ValueError(f"retrained names heads that are not plotted: {unknown}")
    wave_day = check_int("wave_day", wave_day)
    left, right = axes
    hide = signals["hide rate"]
    x = hide.values.index.to_numpy()
    left.fill_between(x, 100 * hide.low, 100 * hide.high, color="#0072B2", alpha=0.15,
                      lw=0, label="band")
    left.plot(x, 100 * hide.values.to_numpy(), "o-", ms=3, color="#0072B2",
              label="hide rate")
    colors = ["#D55E00", "#009E73", "#CC79A7"]
    for head, color in zip(heads, colors):
        signal = signals[f"{head} calibration"]
        days = signal.values.index.to_numpy()
        right.fill_between(days, signal.low, signal.high, color=color, alpha=0.12, lw=0)
        right.plot(days, signal.values.to_numpy(), "o-", ms=3, color=color,
                   label=f"{head}, deployed")
        if head in retrained:
            ratio = retrained[head]
            right.plot(ratio.index, ratio.to_numpy(), "s--", ms=3, color=color,
                       label=f"{head}, retrained")
    for ax in axes:
        first = ax is left
        ax.axvline(wave_day - 0.5, color="0.3", ls=":", lw=1,
                   label="wave starts" if first else None)
        if alarm_day is not None:
            ax.axvline(alarm_day, color="black", ls="--", lw=1,
                       label="first alarm" if first else None)
        if retrain_day is not None:
            ax.axvline(retrain_day - 0.5, color="0.5", ls="-.", lw=1,
                       label="retrained" if first else None)
        ax.set_xlabel("day")
    for ax in axes:   # headroom above the data for the legend
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.4 * (high - low))
    left.set_ylabel("impressions hidden (%)")
    left.set_title("Hide rate", fontsize=10)
    right.axhline(1.0, color="0.6", lw=0.8)
    right.set_ylabel("observed / predicted")
    right.set_title("Calibration by head (bands shaded)", fontsize=10)
    left.legend(loc="upper left", fontsize=8, ncol=3)
    right.legend(loc="upper left", fontsize=8, ncol=2)
