"""Chapter 12's monitoring plumbing: the live log and its oracle, the label-free signals and
their bands, alarms, the weekly table, paired gains, the left-out scorer and the figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from mlsd.cases.similar_listings import monitoring as mon  # noqa: E402
from mlsd.cases import similar_listings as case  # noqa: E402
from mlsd.datasets import load  # noqa: E402
from mlsd.datasets import similar_listings as sl  # noqa: E402
from mlsd.evaluation.drift import dispersion_threshold, psi_categorical  # noqa: E402

SHIFT = np.array([0.0, 0.0, 0.0, 1.5, 1.5, 0.0])
SHIFT_DAY = sl.DAYS + 2


@pytest.fixture(scope="module")
def world():
    return load("similar_listings")


@pytest.fixture(scope="module")
def live(world):
    sessions, clicks, _ = sl.live_sessions(world, 4, taste_shift=SHIFT, shift_day=SHIFT_DAY)
    return sessions, clicks


@pytest.fixture(scope="module")
def lived(world, live):
    return mon.live_world(world, *live)


# --------------------------------------------------------------------------- the live log


def test_live_world_appends_the_live_days_and_ranking_task_reads_them(world, live, lived):
    sessions, clicks = live
    assert len(lived.observed["sessions"]) == len(world.observed["sessions"]) + len(sessions)
    assert len(lived.observed["clicks"]) == len(world.observed["clicks"]) + len(clicks)
    assert len(world.observed["sessions"]) == sl.DAYS * sl.KNOBS["sessions_per_day"]  # unchanged
    queries = sl.ranking_task(lived, sl.DAYS, sl.DAYS + 4).queries
    assert set(queries["day"]) == set(range(sl.DAYS, sl.DAYS + 4))
    assert queries["session_id"].isin(sessions["session_id"]).all()


def test_live_world_refuses_bad_logs(world, live):
    sessions, clicks = live
    with pytest.raises(TypeError, match="World"):
        mon.live_world("world", sessions, clicks)
    with pytest.raises(TypeError, match="sessions must be a DataFrame"):
        mon.live_world(world, sessions.to_numpy(), clicks)
    with pytest.raises(ValueError, match="lacks the columns"):
        mon.live_world(world, sessions.drop(columns="day"), clicks)
    with pytest.raises(ValueError, match="follow the stored ones"):
        mon.live_world(world, world.observed["sessions"].tail(5), clicks)
    with pytest.raises(ValueError, match="not among the live sessions"):
        mon.live_world(world, sessions.iloc[1:], clicks)


def test_live_posterior_is_the_oracle_computed_once_per_regime(lived):
    queries = sl.ranking_task(lived, sl.DAYS, sl.DAYS + 4).queries
    queries = queries.groupby("day").head(6).reset_index(drop=True)
    fast = mon.live_posterior(lived, queries, taste_shift=SHIFT, shift_day=SHIFT_DAY,
                              n_tastes=300)
    for q, (candidates, p) in zip(queries.itertuples(), fast):
        shift = SHIFT if q.day >= SHIFT_DAY else None
        ((c, expected),) = sl.booking_posterior(lived, [q.viewed], q.day, n_tastes=300,
                                                taste_shift=shift)
        np.testing.assert_array_equal(candidates, c)
        np.testing.assert_allclose(p, expected, rtol=1e-12)
    # the season changes the answer on its days, and only there
    plain = mon.live_posterior(lived, queries, n_tastes=300)
    season = queries["day"].to_numpy() >= SHIFT_DAY
    moved = [not np.allclose(a[1], b[1]) for a, b in zip(fast, plain)]
    assert np.array_equal(moved, season)


def test_live_posterior_refuses_half_a_season(lived):
    queries = sl.ranking_task(lived, sl.DAYS, sl.DAYS + 1).queries
    with pytest.raises(ValueError, match="together"):
        mon.live_posterior(lived, queries, taste_shift=SHIFT)
    with pytest.raises(TypeError, match="day and viewed"):
        mon.live_posterior(lived, queries.drop(columns="viewed"))


def test_recent_clicks_counts_the_clicks_of_the_window_by_hand():
    sessions = pd.DataFrame({"session_id": [0, 1, 2], "day": [3, 4, 5], "region": 0,
                             "booked": [1, 2, 0]})
    clicks = pd.DataFrame({"session_id": [0, 0, 1, 1, 1, 2, 2],
                           "position": [0, 1, 0, 1, 2, 0, 1],
                           "listing_id": [0, 1, 2, 2, 2, 1, 0],
                           "booked": [0, 1, 0, 0, 1, 0, 1]})
    # days 4 and 5 (before day 6, two days): session 1 clicks 2 twice, session 2 clicks 1
    np.testing.assert_array_equal(mon.recent_clicks(sessions, clicks, 4, 6, 2), [0, 1, 2, 0])
    np.testing.assert_array_equal(mon.recent_clicks(sessions, clicks, 3, 4, 1), [1, 0, 0])
    np.testing.assert_array_equal(mon.recent_clicks(sessions, clicks, 3, 3, 5), [0, 0, 0])
    with pytest.raises(ValueError, match="outside 0..1"):
        mon.recent_clicks(sessions, clicks, 2, 6, 2)
    with pytest.raises(ValueError, match="days must be >= 1"):
        mon.recent_clicks(sessions, clicks, 4, 6, 0)
    with pytest.raises(ValueError, match="lacks the columns"):
        mon.recent_clicks(sessions.drop(columns="day"), clicks, 4, 6, 2)


def test_booked_ranks_by_day_serves_each_day_its_own_scorer(lived):
    queries = sl.ranking_task(lived, sl.DAYS, sl.DAYS + 4).queries.sample(
        frac=1.0, random_state=0)   # shuffled: the ranks must come back in the queries' order
    n = len(lived.observed["listings"])
    values = np.random.default_rng(1).standard_normal(n)
    same = lambda v, c: np.tile(values[c], (len(v), 1))  # noqa: E731
    np.testing.assert_array_equal(mon.booked_ranks_by_day(lived, queries, lambda day: same),
                                  case.booked_ranks(lived, queries, same))
    booked = np.zeros(n)
    booked[queries["booked"]] = 1.0   # a scorer that knows the bookings, on odd days only

    def scorer_for_day(day):
        return (lambda v, c: np.tile(booked[c], (len(v), 1))) if day % 2 else same

    ranks = mon.booked_ranks_by_day(lived, queries, scorer_for_day)
    odd = queries["day"].to_numpy() % 2 == 1
    assert (ranks[~odd] == case.booked_ranks(lived, queries[~odd], same)).all()
    assert ranks[odd].mean() < case.booked_ranks(lived, queries[odd], same).mean()
    with pytest.raises(TypeError, match="scorer_for_day"):
        mon.booked_ranks_by_day(lived, queries, None)


# --------------------------------------------------------------------------- signals


def test_embedding_shift_is_zero_on_a_day_at_the_region_means():
    # region 0's reference clicks average (1, 0) and region 1's (0, 4); day 9 sits on them
    vectors = np.array([[0, 1], [2, -1], [0, 3], [0, 5], [1, 0], [0, 4], [1, 0], [0, 4]])
    region = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    day = np.array([1, 1, 1, 1, 9, 9, 9, 9])
    out = mon.embedding_shift_by_day(vectors, day, region, day == 1)
    assert list(out.index) == [1, 9] and list(out["n"]) == [4, 4]
    assert out.loc[9, "shift"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc[1, "shift"] == pytest.approx(0.0, abs=1e-12)   # centred on its own means


def test_embedding_shift_by_hand_in_one_dimension():
    # reference: 0, 2 (mean 1, variance with ddof=1 region: 2), a day at 3, 3: mean
    # whitened (3 - 1) / sqrt(2) -> shift 2
    out = mon.embedding_shift_by_day([[0.0], [2.0], [3.0], [3.0]], [0, 0, 1, 1], [5, 5, 5, 5],
                                     np.array([True, True, False, False]))
    assert out.loc[1, "shift"] == pytest.approx(2.0)


def test_embedding_shift_ignores_region_offsets_and_linear_maps():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 4))
    region, day = rng.integers(0, 3, 600), rng.integers(0, 6, 600)
    x[day >= 4] += [1.0, 0.0, 0.0, 0.0]   # a shift on days 4 and 5
    reference = day < 3
    base = mon.embedding_shift_by_day(x, day, region, reference)
    offsets = rng.standard_normal((3, 4)) * 10   # a region moved as a whole is not a shift
    mixed = (x + offsets[region]) @ rng.standard_normal((4, 4))   # nor a change of basis
    np.testing.assert_allclose(mon.embedding_shift_by_day(mixed, day, region, reference),
                               base, rtol=1e-9)
    assert base.loc[[4, 5], "shift"].min() > 5 * base.loc[[0, 1, 2, 3], "shift"].max()


def test_independent_clicks_give_a_dispersion_near_one():
    rng = np.random.default_rng(4)
    n_days, per_day, dim = 60, 400, 8
    x = rng.standard_normal((n_days * per_day, dim))
    day = np.repeat(np.arange(n_days), per_day)
    region = rng.integers(0, 5, len(x))
    out = mon.embedding_shift_by_day(x, day, region, day < 40)
    _, phi = dispersion_threshold(out["shift"], out["n"], out.index < 40, dim)
    assert 0.75 < phi < 1.25
    # ... while clicks in sessions of ten that share a taste vary about ten times as much
    taste = np.repeat(rng.standard_normal((len(x) // 10, dim)), 10, axis=0)
    out = mon.embedding_shift_by_day(x + taste, day, region, day < 40)
    _, phi = dispersion_threshold(out["shift"], out["n"], out.index < 40, dim)
    assert 5 < phi < 10


@pytest.mark.parametrize("change, match", [
    (dict(vectors=np.full((6, 2), np.nan)), "finite"),
    (dict(vectors=np.zeros(6)), "2-d"),
    (dict(day=[0, 0, 0, 0, 1]), "day needs one value per row"),
    (dict(reference=[1, 1, 1, 1, 0, 0]), "boolean"),
    (dict(reference=np.zeros(6, bool)), "at least one row"),
    (dict(region=[0, 0, 0, 0, 1, 1]), "region 1 has no reference clicks"),
    (dict(vectors=np.ones((6, 2))), "fewer dimensions"),
])
def test_embedding_shift_refuses_bad_input(change, match):
    args = dict(vectors=np.array([[0.0, 1], [1, 0], [2, 2], [1, 3], [0, 0], [5, 5]]),
                day=[0, 0, 0, 0, 1, 1], region=[0] * 6,
                reference=np.array([True] * 4 + [False] * 2))
    args.update(change)
    with pytest.raises(ValueError, match=match):
        mon.embedding_shift_by_day(**args)


def test_psi_by_day_is_psi_categorical_per_day():
    day = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2])
    room = np.array(["a", "a", "b", "b", "a", "b", "b", "b", "c"])
    out = mon.psi_by_day(day, room, day == 0)
    expected = ["a", "a", "b", "b"]
    assert out.loc[0, "psi"] == 0.0
    assert out.loc[1, "psi"] == psi_categorical(expected, ["a", "b"]) == 0.0
    assert out.loc[2, "psi"] == pytest.approx(psi_categorical(expected, ["b", "b", "c"]))
    assert list(out["n"]) == [4, 2, 3]
    with pytest.raises(ValueError, match="category needs one value per row"):
        mon.psi_by_day(day, room[:-1], day == 0)


def _small_log():
    """Eight days, two regions, four listings; each session clicks two listings and books a
    third (the booking rows must not count)."""
    rng = np.random.default_rng(3)
    n = 40
    sessions = pd.DataFrame({"session_id": np.arange(n), "day": np.repeat(np.arange(8), 5),
                             "region": rng.integers(0, 2, n), "booked": 0})
    clicked = rng.integers(0, 4, (n, 2))
    clicks = pd.DataFrame({"session_id": np.repeat(np.arange(n), 3),
                           "position": np.tile([0, 1, 2], n),
                           "listing_id": np.c_[clicked, np.full(n, 3)].ravel(),
                           "booked": np.tile([0, 0, 1], n)})
    return sessions, clicks


def test_click_signals_are_the_day_signals_of_the_clicks_by_hand():
    sessions, clicks = _small_log()
    vectors = np.random.default_rng(4).standard_normal((4, 2))
    rooms = np.array(["flat", "house", "flat", "room"])
    reference = range(2, 5)
    signals = mon.click_signals(sessions, clicks, reference=reference, vectors=vectors,
                                room_type=rooms)
    space, psi = signals.values()
    assert list(signals) == ["clicks in the model's space", "room types clicked (PSI)"]
    # by hand: the clicks that are not bookings, from day 2 on, with their day and region
    seen = clicks[clicks["booked"] == 0].merge(sessions, on="session_id",
                                               suffixes=("", "_s"))
    seen = seen[seen["day"] >= 2]
    ref = (seen["day"] < 5).to_numpy()
    shift = mon.embedding_shift_by_day(vectors[seen["listing_id"]], seen["day"],
                                       seen["region"], ref)
    band, phi = dispersion_threshold(shift["shift"], shift["n"], shift.index < 5, 2)
    pd.testing.assert_series_equal(space.values, shift["shift"])
    np.testing.assert_allclose(space.threshold, band)
    assert space.dispersion == phi and isinstance(space, mon.Signal)
    by_day = mon.psi_by_day(seen["day"].to_numpy(), rooms[seen["listing_id"]], ref)
    band, phi = dispersion_threshold(by_day["psi"], by_day["n"], by_day.index < 5, 2)
    pd.testing.assert_series_equal(psi.values, by_day["psi"])
    assert psi.dispersion == phi and np.allclose(psi.threshold, band)
    assert space.values.index.tolist() == list(range(2, 8))
    # pooling the regions is one region for all
    pooled = mon.space_signal(sessions, clicks, vectors, reference, by_region=False)
    one = mon.embedding_shift_by_day(vectors[seen["listing_id"]], seen["day"],
                                     np.zeros(len(seen)), ref)
    np.testing.assert_allclose(pooled.values, one["shift"])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(reference=(2, 5)), TypeError, "range of days"),
    (dict(reference=range(2, 2)), TypeError, "range of days"),
    (dict(room_type=np.array([["flat"] * 4])), ValueError, "room_type needs one value"),
    (dict(vectors=np.zeros(4)), ValueError, "vectors needs one row"),
    (dict(vectors=np.zeros((3, 2))), ValueError, "outside 0..2"),
])
def test_click_signals_refuse_bad_input(kwargs, error, match):
    sessions, clicks = _small_log()
    args = {"reference": range(2, 5), "vectors": np.random.default_rng(4).standard_normal(
        (4, 2)), "room_type": np.array(["flat", "house", "flat", "room"]), **kwargs}
    with pytest.raises(error, match=match):
        mon.click_signals(sessions, clicks, **args)
    with pytest.raises(ValueError, match="lacks the columns"):
        mon.click_signals(sessions.drop(columns="region"), clicks, reference=range(2, 5),
                          vectors=np.zeros((4, 2)), room_type=np.zeros(4))


def test_alarm_table_by_hand():
    days = pd.Index(range(10, 20))
    loud = pd.Series([0, 2, 2, 0, 0, 2, 2, 2, 2, 2.0], index=days)   # a false alarm on 12
    quiet = pd.Series(np.zeros(10), index=days)
    table = mon.alarm_table({"loud": (loud, 1.0), "quiet": (quiet, np.ones(10))},
                            start=11, shift_day=15)
    assert table.loc["loud"].tolist() == [16, 1, 1]
    assert table.loc["quiet", "false alarms"] == 0
    assert table.loc[["quiet"], "first alarm (day)"].isna().all()
    assert "dispersion" not in table
    signals = {"loud": mon.Signal(loud, np.ones(10), 2.5), "quiet": (quiet, 1.0)}
    table = mon.alarm_table(signals, start=11, shift_day=15)
    assert table.loc["loud", "dispersion"] == 2.5 and np.isnan(table.loc["quiet", "dispersion"])
    assert table.loc["loud", "first alarm (day)"] == 16
    with pytest.raises(TypeError, match="Series"):
        mon.alarm_table({"x": (loud.to_numpy(), 1.0)}, start=11, shift_day=15)
    with pytest.raises(ValueError, match="shift_day"):
        mon.alarm_table({"loud": (loud, 1.0)}, start=16, shift_day=15)


# --------------------------------------------------------------------------- the cost


def test_weekly_ranks_and_lift_share_by_hand():
    day = np.array([0, 1, 7, 8, 13])
    ranks = {"base": [10, 20, 10, 10, 10], "model": [5, 5, 8, 6, 7],
             "oracle": [2, 2, 4, 4, 4], "late": [np.nan, np.nan, 1, 1, 1]}
    table = mon.weekly_ranks(day, ranks, start=0, baseline="base", oracle="oracle")
    assert table.index.tolist() == [0, 7]
    assert table["n"].tolist() == [2, 3]
    assert table["model"].tolist() == [5.0, 7.0]
    assert table.loc[0, "model: lift share"] == pytest.approx((15 - 5) / (15 - 2))
    assert table.loc[7, "model: lift share"] == pytest.approx((10 - 7) / (10 - 4))
    assert np.isnan(table.loc[0, "late"]) and np.isnan(table.loc[0, "late: lift share"])
    assert table.loc[7, "late: lift share"] == pytest.approx(1.5)   # better than the oracle
    plain = mon.weekly_ranks(day + 3, ranks, start=3, week=5)
    assert plain.index.tolist() == [3, 8, 13] and "model: lift share" not in plain


@pytest.mark.parametrize("kwargs, match", [
    (dict(start=1), "every day must be >= start"),
    (dict(start=0, baseline="base"), "both"),
    (dict(start=0, baseline="base", oracle="nobody"), "lacks the systems"),
    (dict(start=0, week=0), "week must be >= 1"),
])
def test_weekly_ranks_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mon.weekly_ranks([0, 1], {"base": [1, 2], "oracle": [1, 1]}, **kwargs)
    with pytest.raises(ValueError, match="one value per query"):
        mon.weekly_ranks([0, 1, 2], {"base": [1, 2]}, start=0)


def test_rank_gain_is_the_mean_improvement_with_a_paired_interval():
    rng = np.random.default_rng(5)
    before = rng.integers(1, 50, 400).astype(float)
    after = before - 3 + rng.normal(0, 1, 400)
    gain, low, high = mon.rank_gain(before, after, seed=0)
    assert gain == pytest.approx(np.mean(before - after))
    assert low < gain < high and 2.7 < low and high < 3.3   # paired: the noise is small
    assert mon.rank_gain(before, before, seed=0) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="one rank per query"):
        mon.rank_gain(before, after[:-1], seed=0)
    with pytest.raises(ValueError, match="finite"):
        mon.rank_gain([1.0, np.nan], [1.0, 2.0], seed=0)


def test_gain_verdict_reads_the_interval():
    assert mon.gain_verdict(2.0, 1.0, 3.0) == "a gain beyond chance"
    assert mon.gain_verdict(-2.0, -3.0, -1.0) == "a loss beyond chance"
    assert mon.gain_verdict(0.5, -1.0, 2.0) == "within what chance explains"
    with pytest.raises(ValueError, match="low <= gain <= high"):
        mon.gain_verdict(5.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="finite"):
        mon.gain_verdict(np.nan, 1.0, 3.0)


def test_placed_last_moves_the_left_out_listings_below_every_other(world):
    queries = sl.ranking_task(world, sl.TEST_DAY, sl.TEST_DAY + 2).queries
    n = len(world.observed["listings"])
    values = np.random.default_rng(2).standard_normal(n)
    score = lambda v, c: np.tile(values[c], (len(v), 1))  # noqa: E731
    left_out = queries["booked"].to_numpy()[:5]
    ranks = case.booked_ranks(world, queries, mon.placed_last(score, left_out))
    plain = case.booked_ranks(world, queries, score)
    for q, r, p in zip(queries.itertuples(), ranks, plain):
        others = sl.open_listings(world, int(q.region), int(q.day))
        others = others[others != q.viewed]
        out = np.isin(others, left_out).sum()
        if q.booked in left_out:   # tied at the bottom with the other left-out listings
            assert r == len(others) - out + (out + 1) / 2
        else:
            assert r <= p
    s = mon.placed_last(score, [3])(np.array([0]), np.array([1, 3, 5]))
    assert s[0, 1] < s[0, [0, 2]].min() and (s[0, [0, 2]] == values[[1, 5]]).all()
    with pytest.raises(TypeError, match="score must be a function"):
        mon.placed_last(None, [1])


# --------------------------------------------------------------------------- numbers and figure


def _weekly():
    day = np.repeat([0, 7, 14, 21], 2)
    ranks = {"base": [10.0] * 8, "dep": [5, 5, 7, 7, 8, 8, 8, 8],
             "oracle": [2.0] * 8, "new": [np.nan] * 4 + [3.0] * 4}
    return mon.weekly_ranks(day, ranks, start=0, baseline="base", oracle="oracle")


def _ends(table):
    return table.rename(columns={"base": "baseline"})


def test_monitoring_numbers_by_hand():
    weekly = _ends(_weekly())
    out = mon.monitoring_numbers(weekly, ["oracle", "dep", "new"], shift_day=7, fix_day=14)
    # ends as average ranks, models as their share of the lift; "new" serves only after
    assert out == pytest.approx({
        "mon_oracle_before": 2.0, "mon_oracle_season": 2.0, "mon_oracle_after": 2.0,
        "mon_share_dep_before": 5 / 8, "mon_share_dep_season": 3 / 8,
        "mon_share_dep_after": 2 / 8, "mon_share_new_after": 7 / 8})
    some = mon.monitoring_numbers(weekly, ["baseline", "dep"], shift_day=7, fix_day=14,
                                  periods=["season"])
    assert some == pytest.approx({"mon_baseline_season": 10.0, "mon_share_dep_season": 3 / 8})
    # weeks are weighted by their queries: two weeks after the fix day, 2 and 6 queries
    uneven = mon.weekly_ranks(np.r_[0, 7, np.full(2, 14), np.full(6, 21)],
                              {"baseline": [10.0] * 10, "oracle": [2.0] * 10,
                               "dep": [6, 6] + [4] * 2 + [8] * 6}, start=0,
                              baseline="baseline", oracle="oracle")
    after = mon.monitoring_numbers(uneven, ["dep"], shift_day=7, fix_day=14,
                                   periods=["after"])
    assert after["mon_share_dep_after"] == pytest.approx((10 - 7) / 8)


@pytest.mark.parametrize("args, kwargs, error, match", [
    (("weekly", ["dep"]), {}, TypeError, "weekly_ranks's table"),
    ((None, "dep"), {}, TypeError, "list of weekly's columns"),
    ((None, ["nobody"]), {}, ValueError, "lacks the systems"),
    ((None, ["dep"]), dict(baseline="base2"), ValueError, "lacks the systems"),
    ((None, ["dep"]), dict(periods=["winter"]), ValueError, "unknown periods"),
    ((None, ["dep"]), dict(fix_day=28), ValueError, "no week in the period 'after'"),
    ((None, ["dep"]), dict(shift_day=14, fix_day=7), ValueError, "fix_day"),
])
def test_monitoring_numbers_refuses_bad_input(args, kwargs, error, match):
    weekly = _ends(_weekly()) if args[0] is None else args[0]
    kwargs = {"shift_day": 7, "fix_day": 14, **kwargs}
    with pytest.raises(error, match=match):
        mon.monitoring_numbers(weekly, args[1], **kwargs)


def test_plot_monitoring_draws_both_panels():
    days = pd.Index(range(0, 28))
    signal = pd.Series(np.r_[np.full(7, 0.5), np.full(21, 3.0)], index=days)
    fig, axes = plt.subplots(1, 2)
    mon.plot_monitoring(axes, {"s": (signal, np.ones(28))}, alarms={"s": 8},
                        weekly=_weekly(), systems={"baseline": "base", "deployed": "dep",
                                                   "oracle": "oracle"},
                        shift_day=7, fix_day=14)
    assert len(axes[0].lines) == 4    # the signal, its first alarm, the alarm line, the season
    assert len(axes[1].lines) == 5    # three systems, the season, the fix day
    fig2, axes2 = plt.subplots(1, 2)
    mon.plot_monitoring(axes2, {"s": mon.Signal(signal, np.ones(28), 2.0)}, alarms={"s": None},
                        weekly=_weekly(), systems=["base", "dep", "oracle", "new"],
                        shift_day=7, fix_day=14)
    assert [line.get_label() for line in axes2[1].lines[:4]] == ["base", "dep", "oracle", "new"]
    assert len(axes2[0].lines) == 3   # no alarm line: the signal never alarmed
    plt.close(fig2)
    with pytest.raises(ValueError, match="lacks the systems"):
        mon.plot_monitoring(axes, {"s": (signal, 1.0)}, alarms={"s": 8}, weekly=_weekly(),
                            systems=["nobody"], shift_day=7, fix_day=14)
    with pytest.raises(TypeError, match="systems must be a list"):
        mon.plot_monitoring(axes, {"s": (signal, 1.0)}, alarms={"s": 8}, weekly=_weekly(),
                            systems="dep", shift_day=7, fix_day=14)
    with pytest.raises(ValueError, match="two axes"):
        mon.plot_monitoring(axes[:1], {}, alarms={}, weekly=_weekly(), systems={},
                            shift_day=7, fix_day=14)
    with pytest.raises(ValueError, match="one first-alarm day"):
        mon.plot_monitoring(axes, {"s": (signal, 1.0)}, alarms={}, weekly=_weekly(),
                            systems={"b": "base"}, shift_day=7, fix_day=14)
    plt.close(fig)


def test_signal_numbers_by_hand():
    days = pd.Index([0, 1, 2, 3], name="day")
    # dispersion 1.5, so the threshold for independent clicks is 0.1 / 1.5: days 0, 1, 2 and
    # 3 are above it, and days 0-2 come before the shift (day 3 does not count)
    space = mon.Signal(pd.Series([0.07, 0.05, 0.5, 0.2], index=days), np.full(4, 0.1), 1.5)
    rooms = mon.Signal(pd.Series([0.0, 0.0, 0.0, 0.0], index=days), np.full(4, 0.1), 1.2)
    pooled = mon.Signal(space.values, space.threshold, 3.0)
    alarms = pd.DataFrame({"first alarm (day)": [2, None], "false alarms": [1, 0]},
                          index=["space", "rooms"]).astype("Int64")
    out = mon.signal_numbers({"space": space, "rooms": rooms}, alarms, pooled=pooled,
                             shift_day=3)
    assert out == {"mon_space_phi": 1.5, "mon_uncentred_phi": 3.0, "mon_quiet_days": 3,
                   "mon_naive_alarms": 2, "mon_space_verdict": "alarms on day 2",
                   "mon_rooms_verdict": "never alarms", "mon_false_alarms": 1}
    with pytest.raises(TypeError, match="two Signals"):
        mon.signal_numbers({"space": space}, alarms, pooled=pooled, shift_day=3)
    with pytest.raises(TypeError, match="pooled must be a Signal"):
        mon.signal_numbers({"space": space, "rooms": rooms}, alarms, pooled=None, shift_day=3)
    with pytest.raises(ValueError, match="two signals"):
        mon.signal_numbers({"space": space, "rooms": rooms}, alarms.iloc[:1], pooled=pooled,
                           shift_day=3)


def test_gain_numbers_flatten_each_interval():
    out = mon.gain_numbers({"a_b": (2.0, 1.0, 3.0), "c": (0.0, -1.0, 1.0)})
    assert out == {"mon_gain_a_b": 2.0, "mon_gain_a_b_low": 1.0, "mon_gain_a_b_high": 3.0,
                   "mon_verdict_a_b": "a gain beyond chance", "mon_gain_c": 0.0,
                   "mon_gain_c_low": -1.0, "mon_gain_c_high": 1.0,
                   "mon_verdict_c": "within what chance explains"}
    with pytest.raises(ValueError, match="gain, low, high"):
        mon.gain_numbers({"x": (1.0, 2.0)})
    some = mon.gain_numbers({"a_b": (2.0, 1.0, 3.0), "c": (0.0, -1.0, 1.0)}, verdicts=["c"])
    assert "mon_verdict_a_b" not in some and some["mon_verdict_c"] == out["mon_verdict_c"]
    assert len(mon.gain_numbers({"c": (0.0, -1.0, 1.0)}, verdicts=[])) == 3
    with pytest.raises(ValueError, match="not in gains"):
        mon.gain_numbers({"c": (0.0, -1.0, 1.0)}, verdicts=["d"])
    with pytest.raises(TypeError, match="list of keys"):
        mon.gain_numbers({"c": (0.0, -1.0, 1.0)}, verdicts="c")
