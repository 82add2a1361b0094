import math

import numpy as np
import pytest
from scipy import stats

from mlsd.evaluation.drift import (binomial_band, dispersion_threshold, evaluate_alarms, first_alarm,
                                   ks_test, population_stability_index, psi_categorical, run_alarms)

EPS = 1e-6  # the default floor of the PSI functions


def _analytic_psi_normal_shift(mu, bins):
    """PSI of N(mu, 1) against N(0, 1) over the N(0, 1) decile (or other quantile) bins."""
    q = np.r_[-np.inf, stats.norm.ppf(np.arange(1, bins) / bins), np.inf]
    a = np.diff(stats.norm.cdf(q - mu))  # a_i = Phi(q_{i+1} - mu) - Phi(q_i - mu)
    e = 1 / bins
    return float(np.sum((a - e) * np.log(a / e)))


# --------------------------------------------------------------------------- numeric PSI


def test_psi_of_a_sample_against_itself_is_zero():
    x = np.random.default_rng(0).normal(size=1000)
    assert population_stability_index(x, x) == 0.0


def test_psi_of_two_samples_of_one_distribution_is_near_zero():
    rng = np.random.default_rng(1)
    psi = population_stability_index(rng.normal(size=100_000), rng.normal(size=100_000))
    assert 0 <= psi < 1e-3  # sampling noise alone: about (bins - 1) (1/n_e + 1/n_a) ~ 2e-4


@pytest.mark.parametrize("mu", [0.1, 0.25, 0.5])
@pytest.mark.parametrize("bins", [10, 20])
def test_psi_on_normal_shift_matches_the_analytic_value(mu, bins):
    rng = np.random.default_rng(2)
    n = 500_000
    psi = population_stability_index(rng.normal(size=n), rng.normal(mu, size=n), bins=bins)
    # over 40 seeds the estimate's standard deviation was about 0.004 mu at this n: 5 sd
    assert psi == pytest.approx(_analytic_psi_normal_shift(mu, bins), abs=0.02 * mu)


def test_psi_grows_with_the_shift():
    rng = np.random.default_rng(3)
    reference, noise = rng.normal(size=50_000), rng.normal(size=50_000)
    psis = [population_stability_index(reference, noise + mu) for mu in (0, 0.1, 0.2, 0.5, 1, 2)]
    assert np.all(np.diff(psis) > 0)
    assert psis[0] < 0.1 < psis[3]  # mu = 0.5 is past the "moderate" threshold (~0.24)


def test_psi_hand_computed():
    # expected [1, 2, 3, 4] with bins=2: one inner edge at the median 2.5, shares e = (.5, .5);
    # actual [1, 1, 1, 4]: a = (.75, .25).
    # PSI = .25 ln(.75/.5) + (-.25) ln(.25/.5) = .25 (ln 1.5 + ln 2) = .25 ln 3
    psi = population_stability_index([1, 2, 3, 4], [1, 1, 1, 4], bins=2)
    assert psi == pytest.approx(0.25 * math.log(3), rel=1e-12)


def test_psi_value_on_an_edge_goes_to_the_bin_below():
    # expected [0..4], bins=2: edge at the median 2, bins (-inf, 2] and (2, inf): e = (.6, .4).
    # actual [2, 3]: 2 sits on the edge and belongs to the lower bin, so a = (.5, .5).
    psi = population_stability_index([0, 1, 2, 3, 4], [2, 3], bins=2)
    assert psi == pytest.approx(-0.1 * math.log(0.5 / 0.6) + 0.1 * math.log(0.5 / 0.4), rel=1e-12)


def test_psi_with_ties_in_expected_uses_unique_edges():
    # expected: five 0s and 1..5. bins=5 asks for the quantiles at .2, .4, .6, .8 (linear
    # interpolation): 0, 0, 1.4, 3.2. The repeated 0 is dropped, leaving 4 bins
    # (-inf, 0], (0, 1.4], (1.4, 3.2], (3.2, inf) with e = (.5, .1, .2, .2).
    expected = [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]
    # actual: six 0s, then 1, 2, 4, 5: a = (.6, .1, .1, .2).
    # PSI = .1 ln(.6/.5) + 0 + (-.1) ln(.1/.2) + 0 = .1 ln 2.4
    actual = [0, 0, 0, 0, 0, 0, 1, 2, 4, 5]
    psi = population_stability_index(expected, actual, bins=5)
    assert psi == pytest.approx(0.1 * math.log(2.4), rel=1e-12)
    assert population_stability_index(expected, expected, bins=5) == 0.0


def test_psi_of_a_constant_expected_is_finite():
    # every quantile is 5: one edge, bins (-inf, 5] and (5, inf); the empty bin is floored at eps
    psi = population_stability_index([5.0] * 10, [5.0] * 9 + [6.0])
    assert psi == pytest.approx(-0.1 * math.log(0.9) + (0.1 - EPS) * math.log(0.1 / EPS))


def test_psi_values_outside_the_expected_range_are_counted():
    # the outer edges are -inf and +inf: an actual far above every expected value is in the top bin
    expected = np.arange(100.0)
    assert population_stability_index(expected, expected + 1000) > 10


# --------------------------------------------------------------------------- categorical PSI


def test_psi_categorical_hand_computed():
    # shares e = (a .5, b .3, c .2), a = (a .4, b .4, c .2):
    # PSI = (.4-.5) ln(.4/.5) + (.4-.3) ln(.4/.3) + 0 = .1 ln 1.25 + .1 ln(4/3) ~ 0.051083
    expected = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    actual = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    psi = psi_categorical(expected, actual)
    assert psi == pytest.approx(0.1 * math.log(1.25) + 0.1 * math.log(4 / 3), rel=1e-12)
    assert psi == pytest.approx(0.051083, abs=1e-6)
    assert psi_categorical(expected[::-1], actual[::-1]) == pytest.approx(psi, rel=1e-12)


def test_psi_categorical_new_category_gets_eps():
    # e = (x .5, y .5, z 0 -> eps), a = (x .5, y .4, z .1):
    # PSI = 0 + (-.1) ln(.4/.5) + (.1 - eps) ln(.1/eps) ~ 0.0223 + 1.1513
    expected, actual = ["x", "y"] * 5, ["x"] * 5 + ["y"] * 4 + ["z"]
    want = -0.1 * math.log(0.8) + (0.1 - EPS) * math.log(0.1 / EPS)
    assert psi_categorical(expected, actual) == pytest.approx(want, rel=1e-12)
    assert psi_categorical(actual, expected) == pytest.approx(want, rel=1e-12)  # symmetric here
    assert psi_categorical(expected, actual, eps=1e-3) < psi_categorical(expected, actual)


def test_psi_categorical_accepts_integer_labels_and_identical_samples():
    assert psi_categorical([1, 2, 2, 3], np.array([3, 2, 1, 2])) == 0.0


# --------------------------------------------------------------------------- KS test


def test_ks_test_agrees_with_scipy():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=300), rng.normal(0.1, size=400)
    result = stats.ks_2samp(x, y)
    assert ks_test(x, y) == (result.statistic, result.pvalue)
    assert all(type(v) is float for v in ks_test(x, y))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_test_detects_a_shift_but_not_a_same_distribution(seed):
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=2000)
    _, p_same = ks_test(reference, rng.normal(size=2000))
    statistic, p_shift = ks_test(reference, rng.normal(0.3, size=2000))
    # under no shift the p-value is uniform: 1 seed in 20 gives p < 0.05 (seed 2: 0.045), so the
    # bar is 0.01 for these fixed seeds
    assert p_same > 0.01
    assert p_shift < 1e-6 and 0.05 < statistic < 0.2  # population D = 2 Phi(0.15) - 1 ~ 0.12


def test_ks_test_flags_a_harmless_shift_on_large_samples_while_psi_stays_small():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=500_000), rng.normal(0.02, size=500_000)  # a 0.02-sd shift
    _, p_value = ks_test(x, y)
    assert p_value < 1e-6
    assert population_stability_index(x, y) < 0.01


# --------------------------------------------------------------------------- alarms


def test_evaluate_alarms_detected_with_delay():
    alarms = [0, 0, 0, 0, 0, 0, 1, 1, 0, 1]  # drift from period 4, first alarm at 6
    assert evaluate_alarms(alarms, 4) == {
        "detected": True, "delay": 2, "false_alarms": 0, "false_alarm_rate": 0.0,
    }


def test_evaluate_alarms_alarm_on_the_first_drifted_period_has_delay_zero():
    assert evaluate_alarms([False, False, True], 2)["delay"] == 0


def test_evaluate_alarms_never_detected():
    result = evaluate_alarms([False] * 10, 3)
    assert result == {"detected": False, "delay": None, "false_alarms": 0, "false_alarm_rate": 0.0}


def test_evaluate_alarms_false_alarms_before_the_change():
    alarms = [True, False, True, False, False, False, False, False, True, False]
    # drift from period 5: alarms at 0 and 2 are false (2 of 5 periods), the one at 8 detects
    assert evaluate_alarms(alarms, 5) == {
        "detected": True, "delay": 3, "false_alarms": 2, "false_alarm_rate": 0.4,
    }


def test_evaluate_alarms_no_drift_stream():
    result = evaluate_alarms(np.array([0, 1, 0, 0, 1, 0, 0, 0]), None)
    assert result == {"detected": False, "delay": None, "false_alarms": 2, "false_alarm_rate": 0.25}


def test_evaluate_alarms_change_at_zero_has_no_false_alarm_rate():
    result = evaluate_alarms([True, False], 0)
    assert result["detected"] and result["delay"] == 0 and result["false_alarms"] == 0
    assert math.isnan(result["false_alarm_rate"])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"expected": [], "actual": [1.0]}, ValueError, "expected is empty"),
        ({"expected": [1.0], "actual": [[1.0]]}, ValueError, r"actual must be 1-D"),
        ({"expected": [1.0, np.nan], "actual": [1.0]}, ValueError, "finite.*at index 1"),
        ({"expected": [1.0], "actual": [np.inf]}, ValueError, "actual must be finite"),
        ({"expected": ["a"], "actual": [1.0]}, ValueError, "expected must contain numbers"),
        ({"expected": [1.0], "actual": [1.0], "bins": 1}, ValueError, "bins must be >= 2"),
        ({"expected": [1.0], "actual": [1.0], "bins": 2.5}, TypeError, "bins must be an integer"),
        ({"expected": [1.0], "actual": [1.0], "eps": 0}, ValueError, r"eps must be in \(0, 1\)"),
    ],
)
def test_psi_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        population_stability_index(**kwargs)


def test_psi_categorical_rejects_bad_input():
    with pytest.raises(ValueError, match="actual is empty"):
        psi_categorical(["a"], [])
    with pytest.raises(TypeError, match="not a string"):
        psi_categorical("abc", ["a"])
    with pytest.raises(ValueError, match="eps must be a finite number"):
        psi_categorical(["a"], ["a"], eps=float("nan"))


def test_ks_test_rejects_bad_input():
    with pytest.raises(ValueError, match="actual is empty"):
        ks_test([1.0, 2.0], [])
    with pytest.raises(ValueError, match="expected must be finite"):
        ks_test([np.nan], [1.0])


@pytest.mark.parametrize(
    "alarms, change_at, error, match",
    [
        ([], None, ValueError, "alarms is empty"),
        ([[True]], None, ValueError, "alarms must be 1-D"),
        ([0, 2], None, ValueError, "alarms must contain only booleans"),
        ([0.0, 1.0], None, ValueError, "alarms must contain only booleans"),
        ([False, True], 2, ValueError, r"change_at must be < len\(alarms\) = 2"),
        ([False, True], -1, ValueError, "change_at must be >= 0"),
        ([False, True], 1.0, TypeError, "change_at must be an integer"),
    ],
)
def test_evaluate_alarms_rejects_bad_input(alarms, change_at, error, match):
    with pytest.raises(error, match=match):
        evaluate_alarms(alarms, change_at)


def test_binomial_band_is_smoothed_and_narrows_with_more_searches():
    low, high = binomial_band(0.0, 98, [10, 1000])
    p = 1 / 100                                      # one success in 98 + 2
    assert np.allclose(high, p + 3 * np.sqrt(p * (1 - p) / np.array([10, 1000])))
    assert low[0] == 0 < low[1] < p < high[1] < high[0]
    low, high = binomial_band(0.5, 10_000, 100, z=2)
    assert low == pytest.approx(0.4, abs=1e-3) and high == pytest.approx(0.6, abs=1e-3)
    for bad in ((1.5, 10, 5), (0.5, 0, 5), (0.5, 10, 0)):
        with pytest.raises(ValueError):
            binomial_band(*bad)


def test_dispersion_threshold_by_hand():
    threshold, phi = dispersion_threshold([0.1, 0.3, 5.0], [10, 10, 20],
                                         np.array([True, True, False]), 2)
    assert phi == pytest.approx((1.0 + 3.0) / 2 / 2)
    np.testing.assert_allclose(threshold, phi * stats.chi2.ppf(0.999, 2) / np.array([10, 10, 20]))


@pytest.mark.parametrize("args, match", [
    (([0.1], [10], np.array([True]), 0), "dof must be >= 1"),
    (([0.1, 0.2], [10], np.array([True, True]), 1), "one value per day"),
    (([0.1], [10], np.array([False]), 1), "at least one day"),
    (([-0.1], [10], np.array([True]), 1), "finite value >= 0"),
    (([0.1], [0], np.array([True]), 1), "n >= 1"),
])
def test_dispersion_threshold_refuses_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        dispersion_threshold(*args)
    with pytest.raises(ValueError, match="level"):
        dispersion_threshold([0.1], [10], np.array([True]), 1, level=1.0)


def test_run_alarms_above_a_threshold_need_two_days_in_a_row_and_first_alarm_finds_them():
    values = [0, 2, 2, 0, 2, 2, 2]
    alarms = run_alarms(values, -np.inf, 1.0)
    assert alarms.tolist() == [False, False, True, False, False, True, True]
    assert run_alarms(values, -np.inf, 1.0, run=1).tolist() == [v > 1 for v in values]
    assert run_alarms(values, -np.inf, [3, 1, 1, 1, 3, 3, 3]).tolist() == [False, False, True] + [False] * 4
    days = np.arange(10, 17)
    assert first_alarm(days, alarms) == 12
    assert first_alarm(days, alarms, after=13) == 15
    assert first_alarm(days, np.zeros(7, bool)) is None
    with pytest.raises(ValueError, match="run must be >= 1"):
        run_alarms(values, -np.inf, 1.0, run=0)
    with pytest.raises(ValueError, match="booleans"):
        first_alarm(days, np.ones(7))
