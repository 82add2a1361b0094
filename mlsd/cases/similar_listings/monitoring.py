"""Chapter 12's monitoring: a season in the listings' world, seen without labels, its cost,
and the response (the "Monitoring" section of ``chapters/12_similar_listings.ipynb``).

The season itself comes from the world (``sl.live_sessions``); here is the plumbing around it:

- **the live log**: :func:`live_world` appends the live days to the stored log, so that
  ``sl.ranking_task`` and :func:`~mlsd.cases.similar_listings.booked_ranks` read them;
  :func:`live_posterior` is the oracle for those days, season included, computed once per
  region and regime instead of once per day; :func:`recent_clicks` counts what a nightly
  job would count, and :func:`booked_ranks_by_day` ranks with a scorer that changes daily;
- **signals without labels**: :func:`click_signals` computes the section's two daily
  :class:`Signal` s from the log, with :func:`space_signal` (how far the day's clicks moved in
  the deployed model's own space, region by region, via :func:`embedding_shift_by_day`) and
  :func:`psi_by_day` (the room types clicked, by PSI); the threshold of either comes from the
  reference days' own day-to-day variation (:func:`mlsd.evaluation.drift.dispersion_threshold`),
  and :func:`alarm_table` turns them into alarms (``drift.run_alarms`` and ``first_alarm``);
- **the cost and the response**: :func:`weekly_ranks` (average rank per week and system),
  :func:`rank_gain` (a paired bootstrap over sessions) and :func:`gain_verdict` (how its
  interval reads), :func:`placed_last` (a scorer that leaves listings out of the index),
  :func:`monitoring_numbers`, :func:`signal_numbers` and :func:`gain_numbers` (what the
  prose quotes) and :func:`plot_monitoring` (the section's figure).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.cases.similar_listings import core as case
from mlsd.datasets import similar_listings as sl
from mlsd.datasets.world import World
from mlsd.evaluation.drift import dispersion_threshold, first_alarm, psi_categorical, run_alarms
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.evaluation.headline import lift_share

__all__ = ["live_world", "live_posterior", "recent_clicks", "booked_ranks_by_day",
           "Signal", "click_signals", "space_signal", "embedding_shift_by_day",
           "psi_by_day", "alarm_table", "weekly_ranks", "rank_gain", "gain_verdict",
           "placed_last", "monitoring_numbers", "signal_numbers", "gain_numbers",
           "plot_monitoring"]

_LOG_COLUMNS = {"sessions": ("session_id", "day", "region", "booked"),
                "clicks": ("session_id", "position", "listing_id", "booked")}


# --------------------------------------------------------------------------- the live log


def _frame(name: str, frame, columns) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    if missing := [c for c in columns if c not in frame.columns]:
        raise ValueError(f"{name} lacks the columns {missing}")
    return frame


def live_world(world: World, sessions, clicks) -> World:
    """``world`` with the live days' ``sessions`` and ``clicks`` (as ``sl.live_sessions``
    returns them) appended to the stored log: what ``sl.ranking_task`` and
    :func:`~mlsd.cases.similar_listings.booked_ranks` read. The live sessions must come
    after the stored ones, in days and in ids."""
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    sessions = _frame("sessions", sessions, _LOG_COLUMNS["sessions"])
    clicks = _frame("clicks", clicks, _LOG_COLUMNS["clicks"])
    stored = world.observed["sessions"]
    if len(sessions) and (sessions["session_id"].min() <= stored["session_id"].max()
                          or sessions["day"].min() <= stored["day"].max()):
        raise ValueError("the live sessions must follow the stored ones (later ids and days)")
    if not clicks["session_id"].isin(sessions["session_id"]).all():
        raise ValueError("clicks holds a session that is not among the live sessions")
    observed = {**world.observed,
                "sessions": pd.concat([stored, sessions], ignore_index=True),
                "clicks": pd.concat([world.observed["clicks"], clicks], ignore_index=True)}
    return dataclasses.replace(world, observed=observed)


def live_posterior(world: World, queries, *, taste_shift=None, shift_day: int | None = None,
                   n_tastes: int = 4_000) -> list:
    """The oracle (``sl.booking_posterior``) for each query, with the season's
    ``taste_shift`` on the days from ``shift_day``.

    The posterior depends on the day only through the listings open that day and the shift;
    after the last listing went online every day has the same open listings, so those days
    are computed as one (per region and regime: the same answer, many times faster).
    """
    if not isinstance(queries, pd.DataFrame) or not {"day", "viewed"} <= set(queries.columns):
        raise TypeError("queries must be a DataFrame with the columns day and viewed")
    if (taste_shift is None) != (shift_day is None):
        raise ValueError("give taste_shift and shift_day together, or neither")
    last_created = int(world.observed["listings"]["created_day"].max())
    day = queries["day"].to_numpy()
    same_day = np.minimum(day, last_created)   # from then on, the open listings do not change
    season = np.zeros(len(day), dtype=bool) if shift_day is None else day >= check_int(
        "shift_day", shift_day, minimum=0)
    out: list = [None] * len(day)
    for in_season in (False, True):
        rows = np.flatnonzero(season == in_season)
        if rows.size:
            answers = sl.booking_posterior(
                world, queries["viewed"].to_numpy()[rows], same_day[rows], n_tastes=n_tastes,
                taste_shift=taste_shift if in_season else None)
            for i, answer in zip(rows, answers):
                out[i] = answer
    return out


def recent_clicks(sessions, clicks, n_listings: int, end_day: int, days: int) -> np.ndarray:
    """Per listing, its clicks (the booking rows left out) in the sessions of the ``days``
    days before ``end_day``: what a nightly job counts for the popularity term."""
    sessions = _frame("sessions", sessions, _LOG_COLUMNS["sessions"])
    clicks = _frame("clicks", clicks, _LOG_COLUMNS["clicks"])
    n_listings = check_int("n_listings", n_listings, minimum=1)
    end_day, days = check_int("end_day", end_day), check_int("days", days, minimum=1)
    recent = sessions.loc[sessions["day"].between(end_day - days, end_day - 1), "session_id"]
    rows = clicks[clicks["session_id"].isin(recent) & (clicks["booked"] == 0)]
    ids = rows["listing_id"].to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= n_listings):
        raise ValueError(f"clicks holds a listing id outside 0..{n_listings - 1}")
    return np.bincount(ids, minlength=n_listings).astype(float)


def booked_ranks_by_day(world: World, queries, scorer_for_day: Callable) -> np.ndarray:
    """:func:`~mlsd.cases.similar_listings.booked_ranks` with a scorer that changes every
    day: ``scorer_for_day(day)`` returns the scorer that serves that day's queries (a model
    whose popularity term is refreshed nightly, say)."""
    if not callable(scorer_for_day):
        raise TypeError("scorer_for_day must be a function day -> score(viewed, candidates)")
    if not isinstance(queries, pd.DataFrame) or "day" not in queries:
        raise TypeError("queries must be a DataFrame with a day column")
    ranks = np.empty(len(queries))
    positions = pd.Series(np.arange(len(queries)), index=queries.index)
    for day, group in queries.groupby("day", sort=True):
        ranks[positions[group.index].to_numpy()] = case.booked_ranks(
            world, group, scorer_for_day(int(day)))
    return ranks


# --------------------------------------------------------------------------- signals


def _rows(name: str, values, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (n is not None and len(arr) != n) or not len(arr):
        raise ValueError(f"{name} needs one value per row (1-d, not empty"
                         + (f", length {n})" if n is not None else ")"))
    return arr


def _reference(name: str, reference, n: int) -> np.ndarray:
    reference = _rows(name, reference, n)
    if reference.dtype != bool or not reference.any():
        raise ValueError(f"{name} must be a boolean per row marking at least one row")
    return reference


def embedding_shift_by_day(vectors, day, region, reference) -> pd.DataFrame:
    """How far each day's clicks moved in an embedding space, region by region.

    ``vectors`` holds one row per click: the clicked listing's vector in the deployed model
    (its ``w_in``); ``day`` and ``region`` one value per click; ``reference`` is True on the
    clicks of the reference days. Each click's vector is centred on its region's mean over
    the reference clicks (so a day with more guests in one region does not count as a
    shift), then whitened by the covariance of the centred reference clicks. A day's signal
    is the squared length of the mean of its whitened clicks::

        shift_d = || mean over the day's clicks of S^(-1/2) (x - mu_region) ||^2

    For n independent clicks like the reference ones, n x shift_d is about chi-square with
    as many degrees of freedom as the vectors have coordinates (see
    :func:`mlsd.evaluation.drift.dispersion_threshold`).
    Returns a frame indexed by day: ``shift`` and ``n`` (clicks).
    """
    x = np.asarray(vectors, dtype=float)
    if x.ndim != 2 or not len(x) or not np.isfinite(x).all():
        raise ValueError("vectors must be a non-empty 2-d array of finite numbers, "
                         "one row per click")
    day, region = _rows("day", day, len(x)), _rows("region", region, len(x))
    reference = _reference("reference", reference, len(x))
    codes, region_code = np.unique(region, return_inverse=True)
    counts = np.bincount(region_code[reference], minlength=len(codes))
    if (counts == 0).any():
        raise ValueError(f"region {codes[counts == 0][0]} has no reference clicks: a new "
                         "region needs its own reference days")
    means = np.stack([x[reference & (region_code == r)].mean(axis=0) for r in range(len(codes))])
    centred = x - means[region_code]
    cov = np.cov(centred[reference], rowvar=False, ddof=len(codes)).reshape(x.shape[1], -1)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("the reference clicks' vectors span fewer dimensions than they "
                         "have coordinates: give more reference clicks") from None
    white = np.linalg.solve(chol, centred.T).T
    frame = pd.DataFrame(white).groupby(day, sort=True)
    mean, n = frame.mean().to_numpy(), frame.size()
    return pd.DataFrame({"shift": (mean ** 2).sum(axis=1), "n": n.to_numpy()},
                        index=pd.Index(n.index, name="day"))


def psi_by_day(day, category, reference) -> pd.DataFrame:
    """Per day, the PSI (:func:`mlsd.evaluation.drift.psi_categorical`) of that day's
    categories (the room types clicked, say) against the pooled ``reference`` rows.
    Returns a frame indexed by day: ``psi`` and ``n`` (rows)."""
    day = _rows("day", day)
    category = _rows("category", category, len(day))
    reference = _reference("reference", reference, len(day))
    expected = category[reference].tolist()
    days = np.unique(day)
    psi = [psi_categorical(expected, category[day == d].tolist()) for d in days]
    n = [int((day == d).sum()) for d in days]
    return pd.DataFrame({"psi": psi, "n": n}, index=pd.Index(days, name="day"))



class Signal(NamedTuple):
    """A daily label-free signal: its ``values`` (a Series indexed by day), the ``threshold``
    of each day (an alarm line) and the ``dispersion`` that widened the threshold (see
    :func:`mlsd.evaluation.drift.dispersion_threshold`)."""

    values: pd.Series
    threshold: np.ndarray
    dispersion: float


def _days(reference) -> range:
    if not isinstance(reference, range) or reference.step != 1 or not len(reference):
        raise TypeError("reference must be a non-empty range of days, e.g. range(106, 120)")
    return reference


def _seen(sessions, clicks, n_listings: int, first_day: int) -> pd.DataFrame:
    """The clicks that are not bookings, from ``first_day`` on, with their day and region."""
    sessions = _frame("sessions", sessions, _LOG_COLUMNS["sessions"])
    clicks = _frame("clicks", clicks, _LOG_COLUMNS["clicks"])
    seen = clicks.loc[clicks["booked"] == 0, ["session_id", "listing_id"]].merge(
        sessions[["session_id", "day", "region"]], on="session_id")
    seen = seen[seen["day"] >= first_day]
    ids = seen["listing_id"].to_numpy()
    if len(ids) and (ids.min() < 0 or ids.max() >= n_listings):
        raise ValueError(f"clicks holds a listing id outside 0..{n_listings - 1}")
    return seen


def _per_listing(name: str, values, ndim: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != ndim or not len(arr):
        raise ValueError(f"{name} needs one {'row' if ndim == 2 else 'value'} per listing "
                         f"({ndim}-d, not empty)")
    return arr


def space_signal(sessions, clicks, vectors, reference: range, *, by_region: bool = True,
                 level: float = 0.999) -> Signal:
    """The clicks in the model's space, per day from ``reference.start`` on: the log's clicks
    (bookings left out) as the rows of ``vectors`` (one row per listing: the deployed
    model's ``w_in``), through :func:`embedding_shift_by_day` against the ``reference``
    days (a range), with the threshold of :func:`~mlsd.evaluation.drift.dispersion_threshold`. ``by_region=False``
    centres every click on one mean for all regions (to see what centring buys)."""
    reference = _days(reference)
    vectors = _per_listing("vectors", vectors, 2)
    seen = _seen(sessions, clicks, len(vectors), reference.start)
    day = seen["day"].to_numpy()
    region = seen["region"].to_numpy() if by_region else np.zeros(len(seen))
    shift = embedding_shift_by_day(vectors[seen["listing_id"].to_numpy()], day, region,
                                   day < reference.stop)
    band, phi = dispersion_threshold(shift["shift"], shift["n"], shift.index < reference.stop,
                                vectors.shape[1], level)
    return Signal(shift["shift"], band, phi)


def click_signals(sessions, clicks, *, vectors, room_type, reference: range,
                  level: float = 0.999) -> dict:
    """The section's two label-free signals, per day from ``reference.start`` on:
    ``"clicks in the model's space"`` (:func:`space_signal`) and ``"room types clicked
    (PSI)"`` (:func:`psi_by_day` of ``room_type``, one value per listing, with the
    threshold of :func:`~mlsd.evaluation.drift.dispersion_threshold` for the room types less one degrees of freedom).
    Returns ``{name: Signal}``, the input of :func:`alarm_table` and
    :func:`plot_monitoring`."""
    reference = _days(reference)
    room_type = _per_listing("room_type", room_type, 1)
    seen = _seen(sessions, clicks, len(room_type), reference.start)
    day = seen["day"].to_numpy()
    rooms = psi_by_day(day, room_type[seen["listing_id"].to_numpy()], day < reference.stop)
    dof = max(len(np.unique(room_type)) - 1, 1)
    band, phi = dispersion_threshold(rooms["psi"], rooms["n"], rooms.index < reference.stop, dof,
                                level)
    return {"clicks in the model's space": space_signal(sessions, clicks, vectors, reference,
                                                        level=level),
            "room types clicked (PSI)": Signal(rooms["psi"], band, phi)}



def alarm_table(signals: Mapping[str, tuple], *, start: int, shift_day: int,
                run: int = 2) -> pd.DataFrame:
    """One row per signal (``signals``: name -> :class:`Signal`, or a pair (values by day as
    a Series, threshold per day)): its first alarm (:func:`run_alarms`) from ``start`` on,
    the days from ``shift_day`` to it (NaN: none), and the false alarms (alarm days from
    ``start`` to ``shift_day``); integer columns, missing values as ``<NA>``. Signals with a
    dispersion add it as a last column."""
    if not signals:
        raise ValueError("give at least one signal")
    start, shift_day = check_int("start", start), check_int("shift_day", shift_day)
    if shift_day < start:
        raise ValueError(f"shift_day ({shift_day}) must be >= start ({start})")
    rows, dispersion = {}, {}
    for name, signal in signals.items():
        values, threshold = signal[0], signal[1]
        if not isinstance(values, pd.Series):
            raise TypeError(f"{name}: values must be a Series indexed by day")
        days = values.index.to_numpy()
        alarms = run_alarms(values.to_numpy(float), -np.inf, threshold, run=run)
        first = first_alarm(days, alarms & (days >= shift_day))
        rows[name] = {"first alarm (day)": first,
                      "days after the shift": None if first is None else first - shift_day,
                      "false alarms": int((alarms & (days >= start) & (days < shift_day)).sum())}
        if isinstance(signal, Signal):
            dispersion[name] = signal.dispersion
    table = pd.DataFrame.from_dict(rows, orient="index").astype("Int64")
    if dispersion:
        table["dispersion"] = pd.Series(dispersion, dtype=float)
    return table


# --------------------------------------------------------------------------- the cost


def weekly_ranks(day, ranks: Mapping[str, np.ndarray], *, start: int, week: int = 7,
                 baseline: str | None = None, oracle: str | None = None) -> pd.DataFrame:
    """The average rank of the booked listing per week (rows: the week's first day, from
    ``start``) and system (columns; a system's NaN ranks, days it did not serve, are left
    out), with ``n`` (queries). With ``baseline`` and ``oracle`` named, each other system
    also gets its share of the baseline-to-oracle lift (``<name>: lift share``)."""
    day = _rows("day", day)
    if not ranks:
        raise ValueError("give at least one system's ranks")
    week = check_int("week", week, minimum=1)
    start = check_int("start", start)
    if (day < start).any():
        raise ValueError(f"every day must be >= start ({start})")
    frame = pd.DataFrame({name: np.asarray(r, dtype=float) for name, r in ranks.items()})
    if len(frame) != len(day):
        raise ValueError(f"ranks need one value per query ({len(day)})")
    first = start + (day - start) // week * week
    table = frame.groupby(first).mean()
    table.insert(0, "n", frame.groupby(first).size())
    if (baseline is None) != (oracle is None):
        raise ValueError("name both the baseline and the oracle, or neither")
    if baseline is not None:
        if missing := [s for s in (baseline, oracle) if s not in ranks]:
            raise ValueError(f"ranks lacks the systems {missing}")
        for name in ranks:
            if name not in (baseline, oracle):
                table[f"{name}: lift share"] = [
                    np.nan if np.isnan(row[name]) else
                    lift_share(row[baseline], row[name], row[oracle])
                    for _, row in table.iterrows()]
    return table.rename_axis("week from day")


def rank_gain(before, after, *, seed, groups=None, n_resamples: int = 1000):
    """How many places ``after`` moved the booked listing up, on average over the queries
    (``before - after``: positive is better), with a 95 % paired bootstrap interval over
    the queries (or ``groups`` of them). Returns ``(gain, low, high)``."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.ndim != 1 or before.shape != after.shape or len(before) < 2:
        raise ValueError("before and after need one rank per query (1-d, one length, >= 2)")
    if not (np.isfinite(before).all() and np.isfinite(after).all()):
        raise ValueError("ranks must be finite")
    diff = before - after
    low, high = paired_bootstrap(np.mean, diff, groups=groups, seed=seed,
                                 n_resamples=n_resamples)
    return float(diff.mean()), low, high


def gain_verdict(gain, low, high) -> str:
    """How a paired interval reads in a sentence ("the difference is ..."): "a gain beyond
    chance" if it lies above 0, "a loss beyond chance" if below, else "within what chance
    explains"."""
    gain, low, high = (check_finite(n, v) for n, v in (("gain", gain), ("low", low),
                                                        ("high", high)))
    if not low <= gain <= high:
        raise ValueError(f"need low <= gain <= high, got {low}, {gain}, {high}")
    return ("a gain beyond chance" if low > 0 else "a loss beyond chance" if high < 0
            else "within what chance explains")


def placed_last(score: Callable, listing_ids) -> Callable:
    """The scorer ``score`` with the listings ``listing_ids`` moved below every other
    candidate (tied at the bottom): what a system does to listings it has no vector for."""
    if not callable(score):
        raise TypeError("score must be a function score(viewed, candidates) -> array")
    left_out = np.unique(np.asarray(listing_ids, dtype=np.int64))

    def scored(viewed, candidates):
        s = np.array(score(viewed, candidates), dtype=float)
        out = np.isin(candidates, left_out)
        if out.any():
            s[:, out] = s.min() - 1.0
        return s

    return scored


# --------------------------------------------------------------------------- numbers and figure


def monitoring_numbers(weekly: pd.DataFrame, systems: Sequence[str], *, shift_day: int,
                       fix_day: int, periods: Sequence[str] = ("before", "season", "after"),
                       baseline: str = "baseline", oracle: str = "oracle") -> dict:
    """The weekly table's numbers the prose quotes, named ``mon_*``.

    ``weekly`` is :func:`weekly_ranks`'s table, with the columns ``baseline`` and ``oracle``
    (the two ends of the yardstick); ``systems`` are the columns to report. The weeks
    starting before ``shift_day`` are "before", those from ``fix_day`` on "after", those
    between "season". For each of ``periods`` and each system with data in it: the baseline
    and the oracle give ``mon_<system>_<period>``, the average rank over the period's
    queries; any other system gives ``mon_share_<system>_<period>``, its share of the
    baseline-to-oracle lift (:func:`mlsd.evaluation.headline.lift_share`) over the period.
    """
    if not isinstance(weekly, pd.DataFrame) or "n" not in weekly:
        raise TypeError("weekly must be weekly_ranks's table (a DataFrame with a column n)")
    if isinstance(systems, str) or not len(systems):
        raise TypeError("systems must be a list of weekly's columns, e.g. ['deployed']")
    if missing := [c for c in (baseline, oracle, *systems) if c not in weekly]:
        raise ValueError(f"weekly lacks the systems {missing}")
    shift_day, fix_day = check_int("shift_day", shift_day), check_int("fix_day", fix_day)
    if fix_day < shift_day:
        raise ValueError(f"fix_day ({fix_day}) must be >= shift_day ({shift_day})")
    start = weekly.index.to_numpy()
    rows_of = {"before": start < shift_day,
               "season": (start >= shift_day) & (start < fix_day), "after": start >= fix_day}
    if unknown := [p for p in periods if p not in rows_of]:
        raise ValueError(f"unknown periods {unknown}: choose from {list(rows_of)}")
    out = {}
    for period in periods:
        rows = rows_of[period]
        if not rows.any():
            raise ValueError(f"weekly has no week in the period {period!r}")
        n = weekly.loc[rows, "n"].to_numpy(float)

        def average(column):
            values = weekly.loc[rows, column].to_numpy(float)
            keep = ~np.isnan(values)
            return float(np.average(values[keep], weights=n[keep])) if keep.any() else None

        ends = average(baseline), average(oracle)
        for system in systems:
            value = average(system)
            if value is None:
                continue
            if system in (baseline, oracle):
                out[f"mon_{system}_{period}"] = value
            else:
                out[f"mon_share_{system}_{period}"] = lift_share(ends[0], value, ends[1])
    return out


def signal_numbers(signals: Mapping[str, Signal], alarms: pd.DataFrame, *, pooled: Signal,
                   shift_day: int) -> dict:
    """The numbers the prose quotes on the signals, named ``mon_*``.

    ``signals`` are :func:`click_signals`'s (first the model's space, then the attribute
    signal), ``alarms`` their :func:`alarm_table` and ``pooled`` the model-space signal
    without centring the regions (:func:`space_signal` with ``by_region=False``). Returns the
    dispersion of the model-space signal and of the pooled one (``mon_space_phi``,
    ``mon_uncentred_phi``), the days before ``shift_day`` (``mon_quiet_days``) and on how
    many of them the model-space signal crossed a threshold for independent clicks
    (dispersion 1: ``mon_naive_alarms``), ``mon_space_verdict`` and ``mon_rooms_verdict``
    ("alarms on day d" or "never alarms") and ``mon_false_alarms`` (the total).
    """
    if (not isinstance(signals, Mapping) or len(signals) != 2
            or not all(isinstance(s, Signal) for s in signals.values())):
        raise TypeError("signals must be click_signals's two Signals")
    if not isinstance(pooled, Signal):
        raise TypeError("pooled must be a Signal (space_signal(..., by_region=False))")
    if not isinstance(alarms, pd.DataFrame) or len(alarms) != 2:
        raise ValueError("alarms must be alarm_table's frame for two signals")
    shift_day = check_int("shift_day", shift_day)
    space = next(iter(signals.values()))
    quiet = space.values.index.to_numpy() < shift_day
    naive = space.values.to_numpy(float) > np.asarray(space.threshold) / space.dispersion
    out = {"mon_space_phi": space.dispersion, "mon_uncentred_phi": pooled.dispersion,
           "mon_quiet_days": int(quiet.sum()), "mon_naive_alarms": int(naive[quiet].sum())}
    for key, day in zip(("space", "rooms"), alarms["first alarm (day)"]):
        out[f"mon_{key}_verdict"] = "never alarms" if pd.isna(day) else f"alarms on day {day}"
    out["mon_false_alarms"] = int(alarms["false alarms"].sum())
    return out


def gain_numbers(gains: Mapping[str, tuple], *, verdicts: Sequence[str] | None = None) -> dict:
    """``mon_gain_<key>``, ``_low`` and ``_high`` for each ``key -> (gain, low, high)`` of
    :func:`rank_gain`, and ``mon_verdict_<key>`` (:func:`gain_verdict`) for the keys in
    ``verdicts`` (None: every key), the ones whose reading the prose quotes."""
    if not isinstance(gains, Mapping):
        raise TypeError("gains must map a key to rank_gain's (gain, low, high)")
    if verdicts is None:
        verdicts = list(gains)
    elif isinstance(verdicts, str):
        raise TypeError("verdicts must be a list of keys, not one string")
    elif unknown := [k for k in verdicts if k not in gains]:
        raise ValueError(f"verdicts names keys that are not in gains: {unknown}")
    out = {}
    for key, triple in gains.items():
        if len(triple) != 3:
            raise ValueError(f"{key}: give (gain, low, high)")
        for suffix, value in zip(("", "_low", "_high"), triple):
            out[f"mon_gain_{key}{suffix}"] = float(value)
        if key in verdicts:
            out[f"mon_verdict_{key}"] = gain_verdict(*triple)
    return out


def plot_monitoring(axes, signals: Mapping[str, tuple], *, alarms: Mapping[str, int | None],
                    weekly: pd.DataFrame, systems: Mapping[str, str] | Sequence[str],
                    shift_day: int, fix_day: int) -> None:
    """The section's figure. ``axes[0]``: each daily signal over its threshold (``signals``:
    label -> :class:`Signal`, or (values by day as a Series, threshold array)), so that 1 is
    every signal's alarm line, with the season's start and each first alarm (``alarms``, by
    label). ``axes[1]``: the weekly average rank of ``systems`` (label -> column of
    ``weekly``, or a list of columns, each its own label; at most five, drawn in order as
    grey squares, blue circles, purple, black and green dashes: put the baseline first, the
    deployed model second and the oracle last), with the fix day."""
    if len(axes) != 2:
        raise ValueError("give two axes: the daily signals and the weekly ranks")
    if isinstance(systems, str):
        raise TypeError("systems must be a list of weekly's columns or a label -> column map")
    if not isinstance(systems, Mapping):
        systems = {column: column for column in systems}
    if missing := [c for c in systems.values() if c not in weekly]:
        raise ValueError(f"weekly lacks the systems {missing}")
    if not 1 <= len(systems) <= 5 or not 1 <= len(signals) <= 3:
        raise ValueError("give one to three signals and one to five systems")
    alarms = dict(alarms.items())
    if set(alarms) != set(signals):
        raise ValueError("alarms needs one first-alarm day (or None) per signal")
    left, right = axes
    colors = ["#0072B2", "#E69F00", "#CC79A7"]
    for (label, (values, threshold, *_)), color in zip(signals.items(), colors):
        ratio = values.to_numpy(float) / np.asarray(threshold, dtype=float)
        left.plot(values.index, ratio, "o-", ms=3, lw=1.5, color=color, label=label)
        if alarms[label] is not None and not pd.isna(alarms[label]):
            left.axvline(int(alarms[label]), color=color, lw=1, ls="--",
                         label="first alarm" if label == next(iter(signals)) else None)
    left.axhline(1.0, color="#D55E00", lw=1, label="alarm line (threshold)")
    left.axvline(shift_day - 0.5, color="0.3", ls=":", lw=1, label="season starts")
    left.set_yscale("log")
    low, high = left.get_ylim()
    left.set(xlabel="day", ylabel="signal / its threshold", ylim=(low, high * 8))
    left.legend(loc="upper left", fontsize=8, ncol=2)
    styles = ["s-", "o-", "v-.", "^:", "D--"]
    shades = ["#999999", "#0072B2", "#CC79A7", "#000000", "#009E73"]
    for (label, column), style, color in zip(systems.items(), styles, shades):
        right.plot(weekly.index, weekly[column], style, ms=4, color=color, label=label)
    right.axvline(shift_day - 0.5, color="0.3", ls=":", lw=1)
    right.axvline(fix_day - 0.5, color="0.5", ls="--", lw=1, label="fix day")
    top = np.nanmax(weekly[list(systems.values())].to_numpy(float)) if systems else 1.0
    right.set(xlabel="week from day", ylabel="average rank of the booking\n(lower is better)",
              ylim=(0, 1.8 * top), xticks=weekly.index.to_numpy())
    right.legend(loc="upper right", fontsize=8, ncol=2)
