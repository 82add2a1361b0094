"""Chapter 8's monitoring plumbing: daily shares, bands, the alarm rule, unknown words, the
paired gain in macro PR-AUC, the section's numbers and figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402


from mlsd.cases import harmful_content as case  # noqa: E402
from mlsd.evaluation.drift import evaluate_alarms  # noqa: E402

# --------------------------------------------------------------------------- the policy, day by day


def test_decide_by_day_fills_each_days_queue_separately():
    costs = {"allow": (0.0, 10.0), "demote": (1.0, 3.0), "remove": (4.0, 0.0), "review": (0.5, 0.5)}
    p = np.r_[np.full(10, 0.3), np.full(10, 0.3)]
    day = np.repeat([1, 2], 10)
    actions = case.decide_by_day(p, day, costs, capacity=0.2)
    assert [(actions[day == d] == "review").sum() for d in (1, 2)] == [2, 2]
    assert (actions[day == 1] == case.decide(p[:10], costs, capacity=0.2)).all()
    with pytest.raises(ValueError, match="one probability and one day"):
        case.decide_by_day(p, day[:5], costs, capacity=0.2)


# --------------------------------------------------------------------------- daily shares and bands


def test_daily_shares_divide_sums_per_day_and_keep_the_denominators():
    day = [5, 5, 5, 6, 6]
    out = case.daily_shares(day, flag=([1, 0, 0, 1, 0], [1, 1, 0, 1, 0]),
                           words=([0, 2, 1, 0, 0], [3, 4, 1, 2, 2]))
    assert out.index.tolist() == [5, 6] and out.index.name == "day"
    assert out["flag"].tolist() == [0.5, 1.0] and out["flag n"].tolist() == [2, 1]
    assert np.allclose(out["words"], [3 / 8, 0]) and out["words n"].tolist() == [8, 4]
    empty = case.daily_shares([1, 2], x=([0, 0], [1, 0]))       # day 2 has no denominator
    assert empty["x"].iloc[0] == 0 and np.isnan(empty["x"].iloc[1])


@pytest.mark.parametrize("kwargs, message", [
    ({}, "at least one signal"),
    ({"x": [1, 0]}, "pair"),
    ({"x": ([1], [1, 1])}, "one numerator and denominator per row"),
    ({"x": ([2, 0], [1, 1])}, "numerator <= denominator"),
    ({"x": ([-1, 0], [1, 1])}, "numerator <= denominator"),
])
def test_daily_shares_rejects_bad_signals(kwargs, message):
    with pytest.raises(ValueError, match=message):
        case.daily_shares([1, 2], **kwargs)


def test_daily_recall_counts_removed_and_reviewed_harmful_posts():
    actions = np.array(["remove", "review", "demote", "allow", "remove", "allow"])
    out = case.daily_recall([1, 1, 1, 1, 2, 2], [1, 1, 1, 0, 0, 1], policy=actions)
    assert np.allclose(out["policy"], [2 / 3, 0]) and out["policy n"].tolist() == [3, 1]
    with pytest.raises(ValueError, match="at least one policy"):
        case.daily_recall([1], [1])


def test_reference_bands_pool_the_reference_days_and_widen_on_small_days():
    daily = case.daily_shares(np.repeat([0, 1, 2], [100, 100, 25]),
                             x=(np.r_[np.ones(10), np.zeros(90), np.ones(30), np.zeros(70),
                                      np.zeros(25)], np.ones(225)))
    (low, high), = case.reference_bands(daily, ["x"], [True, False, False]).values()
    p = (10 + 1) / (100 + 2)                          # smoothed as in binomial_band
    assert high[0] == pytest.approx(p + 3 * np.sqrt(p * (1 - p) / 100))
    assert high[2] - low[2] > high[0] - low[0]        # 25 posts: a wider band
    both = case.reference_bands(daily, ["x"], [True, True, False])["x"]
    p = (40 + 1) / (200 + 2)                          # pooled over the two reference days
    assert both[1][0] == pytest.approx(p + 3 * np.sqrt(p * (1 - p) / 100))


def test_reference_bands_reject_bad_arguments():
    daily = case.daily_shares([0, 1], x=([0, 1], [1, 1]))
    with pytest.raises(ValueError, match="no signal 'y'"):
        case.reference_bands(daily, ["y"], [True, False])
    with pytest.raises(ValueError, match="at least one"):
        case.reference_bands(daily, ["x"], [False, False])
    with pytest.raises(ValueError, match="at least one"):
        case.reference_bands(daily, ["x"], [True])


# --------------------------------------------------------------------------- the alarm rule


def test_alarm_days_need_a_run_outside_the_band_on_either_side():
    rate = [0.5, 0.9, 0.5, 0.9, 0.9, 0.1, 0.1, np.nan]
    low, high = np.full(8, 0.3), np.full(8, 0.7)
    assert case.alarm_days(rate, low, high, run=2).tolist() == [
        False, False, False, False, True, True, True, False]
    assert case.alarm_days(rate, low, high, run=1).tolist() == [
        False, True, False, True, True, True, True, False]
    assert not case.alarm_days(rate, low, high, run=5).any()


def test_detect_scores_each_signals_alarms_from_the_drift_day():
    days = np.arange(60, 73)
    daily = pd.DataFrame({"x": np.r_[np.full(10, 0.5), 0.9, 0.9, 0.9],
                          "y": np.r_[0.9, 0.9, np.full(11, 0.5)]}, index=days)
    bands = {name: (np.full(13, 0.3), np.full(13, 0.7)) for name in ("x", "y")}
    out = case.detect(daily, bands, 70)
    assert out["x"] == {"detected": True, "delay": 1, "false_alarms": 0, "false_alarm_rate": 0.0}
    assert out["y"] == {"detected": False, "delay": None, "false_alarms": 1, "false_alarm_rate": 0.1}
    assert out["x"] == evaluate_alarms(case.alarm_days(daily["x"], *bands["x"]), 10)
    with pytest.raises(ValueError, match="not one of daily's days"):
        case.detect(daily, bands, 90)


@pytest.mark.parametrize("args, error", [
    (([0.5, 0.5], [0.3], [0.7, 0.7]), ValueError),
    (([0.5], [0.8], [0.7]), ValueError),
    (([[0.5]], [[0.3]], [[0.7]]), ValueError),
])
def test_alarm_days_reject_bad_bands(args, error):
    with pytest.raises(error):
        case.alarm_days(*args)
    with pytest.raises(ValueError, match="run"):
        case.alarm_days([0.5], [0.3], [0.7], run=0)


# --------------------------------------------------------------------------- unknown words


def test_unknown_word_counts_count_words_outside_the_vocabulary():
    unknown, words = case.unknown_word_counts(["kill kiill day", "", "day day"], {"kill": 0, "day": 1})
    assert unknown.tolist() == [1, 0, 0] and words.tolist() == [3, 0, 2]
    with pytest.raises(TypeError, match="not one string"):
        case.unknown_word_counts("kill day", {"kill"})
    with pytest.raises(TypeError, match="every text"):
        case.unknown_word_counts(["kill", 3], {"kill"})
    with pytest.raises(TypeError, match="vocabulary"):
        case.unknown_word_counts(["kill"], 3)


# --------------------------------------------------------------------------- the gain's interval


def test_macro_ap_gain_is_positive_for_a_better_ranking_and_zero_for_the_same():
    rng = np.random.default_rng(0)
    labels = (rng.random((400, 3)) < 0.1).astype(int)
    noisy = labels + rng.normal(0, 1.0, labels.shape)
    sharp = labels + rng.normal(0, 0.3, labels.shape)
    low, high = case.macro_ap_gain(labels, noisy, sharp, seed=0, n_resamples=200)
    observed = case.macro_average_precision(labels, sharp) - case.macro_average_precision(labels, noisy)
    assert 0 < low < observed < high
    assert case.macro_ap_gain(labels, noisy, noisy, seed=0, n_resamples=200) == (0.0, 0.0)
    assert case.macro_ap_gain(labels, noisy, sharp, seed=0, n_resamples=200) == (low, high)
    with pytest.raises(ValueError):
        case.macro_ap_gain(labels, noisy, sharp[:10], seed=0)


# --------------------------------------------------------------------------- numbers and figure


@pytest.fixture()
def section():
    days = np.arange(60, 70)
    daily = pd.DataFrame({"unknown words": np.r_[np.zeros(5), np.full(5, 0.02)],
                          "reported, let through": 0.6, "overturned": 0.002,
                          "recall": np.r_[np.full(5, 0.5), np.full(5, 0.4)],
                          "recall, retrained": 0.5}, index=pd.Index(days, name="day"))
    caught = {"unknown words": {"detected": True, "delay": 1, "false_alarms": 0},
              "reported, let through": {"detected": False, "delay": None, "false_alarms": 1},
              "overturned": {"detected": False, "delay": None, "false_alarms": 0}}
    recovery = pd.DataFrame({"macro PR-AUC": [0.4, 0.2, 0.35]},
                            index=["deployed, before the drift", "deployed", "retrained"])
    return daily, caught, recovery


def test_monitoring_numbers_name_every_quoted_number(section):
    daily, caught, recovery = section
    out = case.monitoring_numbers(daily, caught, 65, 68, recovery, (0.1, 0.2), n_added=7)
    assert out["mon_n_added"] == 7 and out["mon_drift_day"] == 65 and out["mon_last_day"] == 69
    assert out["mon_fix_day"] == 68 and out["mon_fix_day_before"] == 67
    assert out["mon_unknown_verdict"] == "alarms on day 66"
    assert out["mon_reported_verdict"] == "never alarms" and out["mon_reported_false_alarms"] == 1
    assert out["mon_unknown_before"] == 0 and out["mon_unknown_after"] == pytest.approx(0.02)
    assert out["mon_recall_before"] == 0.5 and out["mon_recall_drifted"] == pytest.approx(0.4)
    assert out["mon_recall_retrained"] == 0.5
    assert (out["mon_ap_before"], out["mon_ap_deployed"], out["mon_ap_retrained"]) == (0.4, 0.2, 0.35)
    assert (out["mon_gain_low"], out["mon_gain_high"]) == (0.1, 0.2)
    with pytest.raises(ValueError, match="recovery needs"):
        case.monitoring_numbers(daily, caught, 65, 68, recovery.drop("retrained"), (0.1, 0.2))


def test_plot_monitoring_draws_one_panel_per_signal_and_the_recall(section):
    daily, _, _ = section
    bands = {name: (np.zeros(10), np.full(10, 0.01)) for name in
             ("unknown words", "reported, let through", "overturned")}
    caught = {name: {"detected": name == "unknown words", "delay": 1} for name in bands}
    fig, axes = plt.subplots(2, 2, sharex=True)
    case.plot_monitoring(axes.ravel(), daily, bands, caught, 65, 68)
    axes = axes.ravel()
    assert [ax.get_title() for ax in axes][:3] == list(bands)
    assert len(axes[0].lines) == 3                   # the share, the alarm, the drift
    assert len(axes[1].lines) == 2                   # no alarm on this signal
    assert len(axes[-1].lines) == 4                  # deployed, retrained, alarm, drift
    assert axes[0].lines[1].get_xdata()[0] == 66     # the alarm: drift day + delay
    with pytest.raises(ValueError, match="one axis per banded signal"):
        case.plot_monitoring(axes[:3], daily, bands, caught, 65, 68)
    with pytest.raises(ValueError, match="same signals"):
        case.plot_monitoring(axes, daily, bands, {"x": caught["overturned"]}, 65, 68)
    plt.close(fig)
