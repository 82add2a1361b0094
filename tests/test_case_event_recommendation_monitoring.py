"""Chapter 10's monitoring plumbing: the season, the live world, the seasonal ranking task,
the daily signals and their bands, the alarm rule, weekly MAP and the paired gain."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import special, stats  # noqa: E402

from mlsd.cases import event_recommendation as case  # noqa: E402
from mlsd.datasets import event_recommendation as er  # noqa: E402
from mlsd.datasets import load  # noqa: E402
from mlsd.evaluation.drift import binomial_band  # noqa: E402
from mlsd.evaluation.headline import lift_share  # noqa: E402


@pytest.fixture(scope="module")
def world():
    return load("event_recommendation", seed=0)


@pytest.fixture(scope="module")
def lived(world):
    shift = case.season(outdoors=1.0, tech=-1.0)
    events, log = er.live_days(world, 3, taste_shift=shift, shift_day=er.CUTOFF_DAY + 1)
    return case.live_world(world, events, log), shift


# --------------------------------------------------------------------------- the season


def test_season_puts_each_shift_at_its_category():
    shift = case.season(outdoors=1.0, tech=-0.5)
    assert shift.shape == (len(er.CATEGORIES),)
    assert shift[er.CATEGORIES.index("outdoors")] == 1.0
    assert shift[er.CATEGORIES.index("tech")] == -0.5
    assert (shift != 0).sum() == 2


@pytest.mark.parametrize("kwargs, error, message", [
    ({}, ValueError, "at least one category"),
    ({"surfing": 1.0}, ValueError, "unknown category 'surfing'"),
    ({"music": float("nan")}, ValueError, "music"),
])
def test_season_rejects_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        case.season(**kwargs)


# --------------------------------------------------------------------------- the live world


def test_live_world_holds_the_live_tables_and_keeps_the_rest(world, lived):
    live, _ = lived
    assert len(live.observed["events"]) > len(world.observed["events"])
    assert live.observed["impressions"]["day"].max() == er.CUTOFF_DAY + 2
    assert live.observed["users"] is world.observed["users"]
    assert live.hidden is world.hidden
    assert world.observed["impressions"]["day"].max() == er.CUTOFF_DAY - 1   # not changed


def test_live_world_rejects_bad_input(world):
    events, log = world.observed["events"], world.observed["impressions"]
    with pytest.raises(TypeError, match="World"):
        case.live_world({"events": events}, events, log)
    with pytest.raises(TypeError, match="events must be a DataFrame"):
        case.live_world(world, events.to_numpy(), log)
    with pytest.raises(ValueError, match="impressions lacks"):
        case.live_world(world, events, log.drop(columns="day"))
    with pytest.raises(ValueError, match="stored events first"):
        case.live_world(world, events.iloc[1:], log)


def test_catalog_of_codes_categories_and_slots_as_positions(world):
    events = world.observed["events"]
    catalog = case.catalog_of(events)
    assert catalog.index.name == "event_id" and len(catalog) == len(events)
    row = events.iloc[5]
    assert catalog.loc[5, "category"] == er.CATEGORIES.index(row["category"])
    assert catalog.loc[5, "slot"] == er.SLOTS.index(row["slot"])
    assert catalog.loc[5, "log_price"] == pytest.approx(np.log1p(row["price"]))
    with pytest.raises(ValueError, match="events.category"):
        case.catalog_of(events.assign(category="surfing"))
    with pytest.raises(TypeError, match="DataFrame"):
        case.catalog_of(events.to_dict())


# --------------------------------------------------------------------------- the season in the truth


def test_ranking_task_adds_the_season_on_the_logit_scale(lived):
    live, shift = lived
    cut = er.CUTOFF_DAY + 2
    plain = er.ranking_task(live, cut).pairs
    season = er.ranking_task(live, cut, taste_shift=shift, shift_day=er.CUTOFF_DAY + 1).pairs
    assert season[["user_id", "event_id"]].equals(plain[["user_id", "event_id"]])
    category = case.catalog_of(live.observed["events"])["category"].to_numpy()
    added = shift[category[plain["event_id"]]]
    for column in ("p", "p_no_noise"):
        moved = special.logit(season[column]) - special.logit(plain[column])
        assert np.allclose(moved, added, atol=1e-8)
    assert (season["p"] > plain["p"])[added > 0].all()
    assert (season["p"] < plain["p"])[added < 0].all()


def test_ranking_task_before_the_season_and_for_some_users(lived):
    live, shift = lived
    cut = er.CUTOFF_DAY + 1
    plain = er.ranking_task(live, cut).pairs
    early = er.ranking_task(live, cut, taste_shift=shift, shift_day=cut + 1).pairs
    assert np.array_equal(early["p"], plain["p"])                    # not yet in season
    few = er.ranking_task(live, cut, users=[11, 3, 7]).pairs
    assert set(few["user_id"]) == {3, 7, 11}
    mine = plain[plain["user_id"].isin([3, 7, 11])].reset_index(drop=True)
    assert np.array_equal(few["p"], mine["p"])
    again = er.ranking_task(live, cut, users=[11, 3, 7]).pairs
    assert few["registered"].equals(again["registered"])             # reproducible
    with pytest.raises(ValueError, match="out of range"):
        er.ranking_task(live, cut, users=[-1])


@pytest.mark.parametrize("shift, day, message", [
    (np.zeros(3), 90, "one finite number per category"),
    (np.full(len(er.CATEGORIES), np.inf), 90, "one finite number per category"),
    (np.zeros(len(er.CATEGORIES)), None, "give shift_day"),
])
def test_ranking_task_rejects_a_bad_season(lived, shift, day, message):
    with pytest.raises(ValueError, match=message):
        er.ranking_task(lived[0], er.CUTOFF_DAY + 1, taste_shift=shift, shift_day=day)


# --------------------------------------------------------------------------- daily signals


def test_category_psi_by_day_by_hand():
    day = [1, 1, 1, 1, 2, 2, 3, 3]
    category = ["a", "b", "a", "b", "a", "a", "a", "b"]
    reference = np.array([True] * 4 + [False] * 4)
    out = case.category_psi_by_day(day, category, reference)
    assert out.index.tolist() == [1, 2, 3] and out["n"].tolist() == [4, 2, 2]
    # day 2: shares (1, 0) against (0.5, 0.5); the empty share is floored at 1e-6
    by_hand = 0.5 * np.log(1 / 0.5) + (1e-6 - 0.5) * np.log(1e-6 / 0.5)
    assert out.loc[2, "psi"] == pytest.approx(by_hand)
    assert out.loc[1, "psi"] == 0 and out.loc[3, "psi"] == 0


@pytest.mark.parametrize("args, message", [
    (([1, 2], ["a"], [True, True]), "one value per row"),
    (([1, 2], ["a", "b"], [0, 1]), "boolean per row"),
    (([1, 2], ["a", "b"], [False, False]), "boolean per row"),
])
def test_category_psi_by_day_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        case.category_psi_by_day(*args)


def test_psi_threshold_by_hand():
    psi, n = np.array([0.02, 0.04, 0.5]), np.array([100, 200, 100])
    threshold, phi = case.psi_threshold(psi, n, np.array([True, True, False]), 3, level=0.99)
    assert phi == pytest.approx((100 * 0.02 + 200 * 0.04) / 2 / 2)      # mean(n psi) / (k-1)
    assert threshold == pytest.approx(phi * stats.chi2.ppf(0.99, 2) / n)
    assert threshold[0] == pytest.approx(2 * threshold[1])                # half the rows: twice


def test_psi_threshold_of_independent_draws_has_dispersion_near_one():
    rng = np.random.default_rng(0)
    shares = np.array([0.4, 0.3, 0.2, 0.1])
    days = np.repeat(np.arange(160), 300)
    category = rng.choice(4, len(days), p=shares)
    psi = case.category_psi_by_day(days, category, days < 100)
    threshold, phi = case.psi_threshold(psi["psi"], psi["n"], psi.index < 100, 4, level=0.99)
    assert 0.75 < phi < 1.3
    assert (psi["psi"] > threshold)[psi.index >= 100].mean() < 0.06     # about 1 % expected


@pytest.mark.parametrize("args, kwargs, message", [
    (([0.1], [10, 20], [True]), {}, "one value per day"),
    (([0.1], [10], [1]), {}, "boolean per day"),
    (([0.1], [0], [True]), {}, "n >= 1"),
    (([-0.1], [10], [True]), {}, "finite value >= 0"),
    (([0.1], [10], [True]), {"level": 1.0}, "level"),
])
def test_psi_threshold_rejects_bad_input(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        case.psi_threshold(*args, 3, **kwargs)


def test_rate_by_day_bands_each_day_around_the_pooled_reference():
    day = np.repeat([1, 2, 3], [100, 100, 25])
    hit = np.r_[np.ones(10), np.zeros(90), np.ones(30), np.zeros(70), np.zeros(25)]
    out = case.rate_by_day(day, hit, [1, 2])
    assert out["rate"].tolist() == [0.1, 0.3, 0.0] and out["n"].tolist() == [100, 100, 25]
    low, high = binomial_band(0.2, 200, np.array([100, 100, 25]))
    assert np.allclose(out["low"], low) and np.allclose(out["high"], high)
    assert out.loc[3, "high"] - out.loc[3, "low"] > out.loc[1, "high"] - out.loc[1, "low"]
    with pytest.raises(ValueError, match="none of reference_days"):
        case.rate_by_day(day, hit, [9])
    with pytest.raises(ValueError, match="0/1"):
        case.rate_by_day(day, hit * 2, [1])


def test_run_alarms_need_a_run_of_days_outside():
    values = [0.5, 5, 5, 0.5, 5, 5, 5, -1]
    assert case.run_alarms(values, 0, 1).tolist() == [False, False, True, False, False, True,
                                                     True, True]
    assert case.run_alarms(values, 0, 1, run=1).tolist() == [False, True, True, False, True,
                                                            True, True, True]
    assert case.run_alarms(values, 0, 1, run=3).sum() == 2
    with pytest.raises(ValueError, match="low <= high"):
        case.run_alarms(values, 2, 1)
    with pytest.raises(ValueError, match="run"):
        case.run_alarms(values, 0, 1, run=0)


def test_first_alarm_finds_the_first_alarm_day_from_a_day_on():
    days, alarms = np.arange(10, 15), [True, False, False, True, True]
    assert case.first_alarm(days, alarms) == 10
    assert case.first_alarm(days, alarms, after=11) == 13
    assert case.first_alarm(days, [False] * 5) is None
    with pytest.raises(ValueError, match="one value per day"):
        case.first_alarm(days, [True])


# --------------------------------------------------------------------------- weekly quality


def _weeks():
    a = pd.DataFrame({"base": [0.1, 0.2], "model": [0.3, 0.3], "oracle": [0.5, 0.4]},
                     index=[1, 2])
    b = pd.DataFrame({"base": [0.1, 0.1], "model": [0.2, 0.2], "oracle": [0.3, 0.5],
                      "new": [0.3, 0.4]}, index=[1, 3])
    return {84: a, 91: b}


def test_weekly_table_by_hand():
    out = case.weekly_table(_weeks(), "base", "model", "oracle")
    assert out.index.tolist() == [84, 91] and out.index.name == "cut-off"
    assert out.loc[84, "model"] == pytest.approx(0.3)
    assert out.loc[84, "model: lift share"] == pytest.approx(lift_share(0.15, 0.3, 0.45))
    assert np.isnan(out.loc[84, "new"]) and out.loc[91, "new"] == pytest.approx(0.35)
    with pytest.raises(ValueError, match="lacks the systems"):
        case.weekly_table(_weeks(), "base", "new", "oracle")
    with pytest.raises(ValueError, match="at least one"):
        case.weekly_table({}, "base", "model", "oracle")


def test_paired_gain_is_the_mean_difference_over_user_weeks():
    weeks = _weeks()
    gain, low, high = case.paired_gain({91: weeks[91]}, "model", "new", seed=0)
    assert gain == pytest.approx(0.15) and low <= gain <= high
    both = {k: f.assign(new=f["model"] + 0.05) for k, f in weeks.items()}
    assert case.paired_gain(both, "model", "new", seed=0) == pytest.approx((0.05,) * 3)
    with pytest.raises(ValueError, match="at least one"):
        case.paired_gain({}, "model", "new", seed=0)


def test_paired_gain_resamples_users_not_rows():
    # a user with the same gain in each of many weeks is one unit, not many: with two users
    # (gains 0 and 1), every resample's mean is 0, 1 or a mix weighted by their rows
    week = pd.DataFrame({"a": [0.0, 0.0], "b": [0.0, 1.0]}, index=[1, 2])
    weeks = {cut: week for cut in range(10)}
    gain, low, high = case.paired_gain(weeks, "a", "b", seed=0)
    assert gain == pytest.approx(0.5) and low == 0.0 and high == 1.0


# --------------------------------------------------------------------------- numbers and figure


def _inputs():
    days = np.arange(80, 100)
    psi = pd.DataFrame({"psi": np.where(days < 90, 0.05, 0.6), "n": 300}, index=days)
    rate = pd.DataFrame({"rate": np.where(days < 90, 0.1, 0.12), "n": 1000, "low": 0.08,
                         "high": 0.11}, index=days)
    weekly = pd.DataFrame({"base": [0.1, 0.1, 0.12], "model": [0.2, 0.18, 0.2],
                           "oracle": [0.3, 0.32, 0.34], "new": [np.nan, np.nan, 0.24]},
                          index=[84, 91, 98])
    weekly["model: lift share"] = [0.5, 0.8 / 2.2, 0.8 / 2.2]
    return psi, {"served": rate, "explore": rate}, weekly


def test_monitoring_numbers_quotes_the_section():
    psi, rates, weekly = _inputs()
    out = case.monitoring_numbers(
        case.season(outdoors=1.0, tech=-0.5), psi, rates,
        {"mix": 91, "served": 92, "explore": None}, weekly, (0.02, 0.01, 0.03),
        shift_day=90, fix_day=98,
        names={"baseline": "base", "deployed": "model", "retrained": "new", "oracle": "oracle"})
    assert out["mon_mix_verdict"] == "alarms on day 91" and out["mon_mix_delay"] == 1
    assert out["mon_explore_verdict"] == "never alarms" and out["mon_explore_delay"] == -1
    assert out["mon_shift_up"] == 1.0 and out["mon_shift_down"] == 0.5
    assert out["mon_served_before"] == pytest.approx(0.1)
    assert out["mon_share_before"] == 0.5 and out["mon_share_drifted"] == pytest.approx(0.8 / 2.2)
    assert out["mon_share_retrained"] == pytest.approx(lift_share(0.12, 0.24, 0.34))
    assert out["mon_gain_verdict"] == "more than chance explains"
    assert all(k.startswith("mon_") for k in out)


def test_signal_numbers_count_the_quiet_days_by_hand():
    psi, rates, _ = _inputs()
    psi.loc[81, "psi"], psi.loc[82, "psi"] = 0.2, 0.08
    out = case.signal_numbers(psi, np.full(len(psi), 0.07), rates["explore"], shift_day=90)
    assert out["mon_quiet_days"] == 10
    assert out["mon_naive_alarms"] == 2 and out["mon_quiet_over_rule"] == 1
    assert out["mon_explore_regs"] == pytest.approx(np.mean(np.where(psi.index < 90, 100, 120)))
    assert out["mon_explore_width"] == pytest.approx(0.03 / 0.19)
    with pytest.raises(ValueError, match="one value per day"):
        case.signal_numbers(psi, [0.1], rates["explore"], shift_day=90)
    with pytest.raises(ValueError, match="no day before"):
        case.signal_numbers(psi, np.zeros(len(psi)), rates["explore"], shift_day=0)


def test_monitoring_numbers_rejects_bad_input():
    psi, rates, weekly = _inputs()
    names = {"baseline": "base", "deployed": "model", "retrained": "new", "oracle": "oracle"}
    with pytest.raises(ValueError, match="three signals"):
        case.monitoring_numbers(np.zeros(8), psi, rates, {"mix": 1}, weekly, (0, 0, 0),
                               shift_day=90, fix_day=98, names=names)
    with pytest.raises(ValueError, match="names lacks"):
        case.monitoring_numbers(np.zeros(8), psi, rates, {"m": 1, "served": 1, "explore": 1},
                               weekly, (0, 0, 0), shift_day=90, fix_day=98,
                               names={"baseline": "base"})


def test_plot_monitoring_draws_two_panels():
    psi, _, weekly = _inputs()
    fig, axes = plt.subplots(1, 2)
    case.plot_monitoring(axes, psi, np.full(len(psi), 0.3), 91, weekly,
                        {"deployed": "model", "retrained": "new"}, shift_day=90, fix_day=98)
    assert len(axes[1].get_lines()) == 4          # two systems, the season and the fix lines
    with pytest.raises(ValueError, match="two axes"):
        case.plot_monitoring([axes[0]], psi, 0.3, None, weekly, {}, shift_day=90, fix_day=98)
    plt.close(fig)
