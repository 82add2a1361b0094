import dataclasses
import math

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_effectsize,
    proportions_ztest,
)

from scipy import stats

from mlsd.evaluation.experiments import (
    ABTestResult,
    WelchTestResult,
    ab_numbers,
    ab_table,
    p_value_text,
    verdict_text,
    welch_test,
    paired_bootstrap,
    ratio_test,
    ratio_variance,
    sample_size_two_proportions,
    simulate_aa_tests,
    simulate_ab_p_values,
    simulate_ab_test,
    simulate_peeking,
    two_proportion_test,
)

N_EXPERIMENTS = 4000  # simulated experiments per rate estimate


def _band(rate, n=N_EXPERIMENTS, k=3):
    """rate -/+ k binomial standard errors of a share estimated from n experiments."""
    se = math.sqrt(rate * (1 - rate) / n)
    return rate - k * se, rate + k * se


# --------------------------------------------------------------------------- sample size


def test_sample_size_hand_computed():
    # p1 = .10, p2 = .12, p̄ = .11; z_.975 = 1.959964, z_.8 = 0.841621
    # 1.959964 sqrt(2 * .11 * .89) = 0.867270;  0.841621 sqrt(.10 * .90 + .12 * .88) = 0.372221
    # n = (0.867270 + 0.372221)^2 / .02^2 = 1.536339 / .0004 = 3840.85 -> 3841
    assert sample_size_two_proportions(0.10, 0.12) == 3841


@pytest.mark.parametrize(
    "p1, p2", [(0.10, 0.12), (0.05, 0.055), (0.02, 0.025), (0.30, 0.25), (0.5, 0.6)]
)
@pytest.mark.parametrize("alpha, power", [(0.05, 0.8), (0.01, 0.9)])
def test_sample_size_agrees_with_statsmodels(p1, p2, alpha, power):
    # statsmodels sizes on Cohen's h = 2 asin(sqrt p2) - 2 asin(sqrt p1), a different
    # approximation; the two agree to well under 1% here
    h = proportion_effectsize(p2, p1)
    expected = NormalIndPower().solve_power(h, alpha=alpha, power=power, ratio=1)
    n = sample_size_two_proportions(p1, p2, alpha=alpha, power=power)
    assert n == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("p1, p2", [(0.10, 0.12), (0.05, 0.055), (0.02, 0.021)])
def test_sample_size_rule_of_thumb(p1, p2):
    # n ~ 16 sigma^2 / delta^2 with sigma^2 = p̄ (1 - p̄), at alpha = .05 and power = .8
    p_bar = (p1 + p2) / 2
    rule = 16 * p_bar * (1 - p_bar) / (p2 - p1) ** 2
    assert sample_size_two_proportions(p1, p2) == pytest.approx(rule, rel=0.05)


def test_sample_size_grows_as_the_effect_shrinks_and_is_symmetric():
    n_big = sample_size_two_proportions(0.10, 0.12)
    n_small = sample_size_two_proportions(0.10, 0.11)
    assert 3.5 < n_small / n_big < 4.5  # half the difference, about four times the users
    assert sample_size_two_proportions(0.12, 0.10) == n_big
    assert sample_size_two_proportions(0.10, 0.12, power=0.9) > n_big
    assert sample_size_two_proportions(0.10, 0.12, alpha=0.01) > n_big


# --------------------------------------------------------------------------- the test


COUNTS = [  # (clicks_a, n_a, clicks_b, n_b): equal and unequal arms, no difference, a zero count
    (100, 1000, 120, 1000), (50, 1000, 50, 1000), (30, 2000, 52, 1500),
    (480, 10_000, 410, 9_000), (3, 40, 0, 35),
]


@pytest.mark.parametrize("clicks_a, n_a, clicks_b, n_b", COUNTS)
def test_two_proportion_test_agrees_with_statsmodels(clicks_a, n_a, clicks_b, n_b):
    result = two_proportion_test(clicks_a, n_a, clicks_b, n_b)
    z, p_value = proportions_ztest([clicks_b, clicks_a], [n_b, n_a])  # pooled; (b - a)
    assert result.z == pytest.approx(z, abs=1e-9)
    assert result.p_value == pytest.approx(p_value, abs=1e-9)
    # confint_proportions_2indep(count1, nobs1, count2, nobs2) is for p1 - p2: b first
    for alpha in (0.05, 0.1):
        low, high = confint_proportions_2indep(
            clicks_b, n_b, clicks_a, n_a, method="wald", compare="diff", alpha=alpha
        )
        result = two_proportion_test(clicks_a, n_a, clicks_b, n_b, alpha=alpha)
        assert (result.ci_low, result.ci_high) == pytest.approx((low, high), abs=1e-9)


def test_two_proportion_test_fields():
    result = two_proportion_test(100, 1000, 130, 1000)
    assert isinstance(result, ABTestResult)
    assert (result.rate_a, result.rate_b) == (0.1, 0.13)
    assert result.difference == pytest.approx(0.03)
    assert result.relative_lift == pytest.approx(0.3)
    # pooled rate .115: z = .03 / sqrt(.115 * .885 * 2/1000) = .03 / 0.014267 = 2.1028
    assert result.z == pytest.approx(0.03 / math.sqrt(0.115 * 0.885 * 0.002))
    assert result.significant and result.p_value < 0.05 and result.alpha == 0.05
    assert result.ci_low < result.difference < result.ci_high
    types = {f.name: type(getattr(result, f.name)) for f in dataclasses.fields(result)}
    # no NumPy scalars
    assert types == {**dict.fromkeys(types, float), "significant": bool, "n_a": int, "n_b": int}
    assert (result.n_a, result.n_b) == (1000, 1000)


def test_two_proportion_test_degenerate_counts():
    none = two_proportion_test(0, 50, 0, 80)  # nobody clicked: no evidence of a difference
    assert (none.z, none.p_value, none.significant) == (0.0, 1.0, False)
    assert math.isnan(none.relative_lift)
    assert two_proportion_test(50, 50, 80, 80).p_value == 1.0
    assert math.isnan(two_proportion_test(0, 1000, 30, 1000).relative_lift)  # no lift over 0


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aa_false_positive_rate_is_alpha(seed):
    p_values = simulate_aa_tests(0.05, 2000, n_experiments=N_EXPERIMENTS, seed=seed)
    assert p_values.shape == (N_EXPERIMENTS,)
    assert np.all((0 <= p_values) & (p_values <= 1))
    low, high = _band(0.05)  # 0.05 -/+ 3 * 0.0034
    assert low < (p_values < 0.05).mean() < high
    low, high = _band(0.10)
    assert low < (p_values < 0.10).mean() < high


def test_simulated_p_values_match_two_proportion_test():
    # the vectorised p-values are those of two_proportion_test on the same draws
    rng = np.random.default_rng(9)
    clicks = rng.binomial(500, [[0.1], [0.12]], size=(2, 5))
    p_values = simulate_ab_p_values(0.1, 0.12, 500, n_experiments=5, seed=np.random.default_rng(9))
    expected = [two_proportion_test(int(a), 500, int(b), 500).p_value for a, b in clicks.T]
    np.testing.assert_allclose(p_values, expected, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_peeking_inflates_the_false_positive_rate(seed):
    once = simulate_peeking(0.05, 2000, looks=1, n_experiments=N_EXPERIMENTS, seed=seed)
    ten = simulate_peeking(0.05, 2000, looks=10, n_experiments=N_EXPERIMENTS, seed=seed)
    low, high = _band(0.05)
    assert low < once < high
    assert ten > 0.1  # Armitage et al. (1969): about 0.19 with 10 looks
    assert simulate_peeking(0.05, 2000, looks=50, n_experiments=N_EXPERIMENTS, seed=seed) > ten


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_effect_sized_for_80_percent_power_is_detected_80_percent_of_the_time(seed):
    n = sample_size_two_proportions(0.10, 0.12, power=0.8)
    p_values = simulate_ab_p_values(0.10, 0.12, n, n_experiments=N_EXPERIMENTS, seed=seed)
    low, high = _band(0.8)  # 0.8 -/+ 3 * 0.0063
    assert low < (p_values < 0.05).mean() < high


def test_simulate_ab_test_returns_a_result():
    result = simulate_ab_test(0.10, 0.13, 20_000, seed=0)
    assert isinstance(result, ABTestResult)
    assert result.significant and result.ci_low < 0.03 < result.ci_high


def test_simulations_are_reproducible():
    assert simulate_ab_test(0.1, 0.12, 1000, seed=3) == simulate_ab_test(0.1, 0.12, 1000, seed=3)
    a = simulate_aa_tests(0.1, 1000, n_experiments=50, seed=3)
    np.testing.assert_array_equal(a, simulate_aa_tests(0.1, 1000, n_experiments=50, seed=3))
    assert not np.array_equal(a, simulate_aa_tests(0.1, 1000, n_experiments=50, seed=4))
    peek = dict(looks=5, n_experiments=200, seed=3)
    assert simulate_peeking(0.1, 1000, **peek) == simulate_peeking(0.1, 1000, **peek)
    # a Generator is used as given, and advanced
    rng = np.random.default_rng(3)
    first, second = (simulate_aa_tests(0.1, 1000, n_experiments=50, seed=rng) for _ in range(2))
    assert not np.array_equal(first, second)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((0.1, 0.1), {}, ValueError, "p_control and p_treatment must differ"),
        ((0.0, 0.1), {}, ValueError, "p_control must be strictly between 0 and 1"),
        ((0.1, 1.0), {}, ValueError, "p_treatment must be strictly between 0 and 1"),
        ((0.1, 0.2), {"alpha": 0}, ValueError, "alpha must be strictly between 0 and 1"),
        ((0.1, 0.2), {"power": 1.5}, ValueError, "power must be strictly between 0 and 1"),
        ((0.1, float("nan")), {}, ValueError, "p_treatment must be a finite number"),
        (("0.1", 0.2), {}, ValueError, "p_control must be a finite number"),
    ],
)
def test_sample_size_rejects_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        sample_size_two_proportions(*args, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((11, 10, 5, 10), {}, ValueError, "clicks_a must be <= n_a = 10, got 11"),
        ((1, 10, -1, 10), {}, ValueError, "clicks_b must be >= 0"),
        ((0, 0, 0, 10), {}, ValueError, "n_a must be >= 1"),
        ((1.0, 10, 1, 10), {}, TypeError, "clicks_a must be an integer"),
        ((1, 10, 1, 10.5), {}, TypeError, "n_b must be an integer"),
        ((1, 10, 1, 10), {"alpha": 1}, ValueError, "alpha must be strictly between 0 and 1"),
    ],
)
def test_two_proportion_test_rejects_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        two_proportion_test(*args, **kwargs)


def test_simulations_reject_bad_input():
    with pytest.raises(ValueError, match="n_experiments must be >= 1"):
        simulate_aa_tests(0.1, 100, n_experiments=0, seed=0)
    with pytest.raises(ValueError, match="p must be strictly between 0 and 1"):
        simulate_aa_tests(1.0, 100, n_experiments=10, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        simulate_aa_tests(0.1, 100, n_experiments=10, seed=-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        simulate_ab_test(0.1, 0.2, 100, seed=None)
    with pytest.raises(ValueError, match="looks must be <= n_per_arm = 5"):
        simulate_peeking(0.1, 5, looks=6, n_experiments=10, seed=0)
    with pytest.raises(ValueError, match="looks must be >= 1"):
        simulate_peeking(0.1, 5, looks=0, n_experiments=10, seed=0)
    with pytest.raises(ValueError, match="n_per_arm must be >= 1"):
        simulate_ab_p_values(0.1, 0.2, 0, n_experiments=10, seed=0)


# --------------------------------------------------------------------------- units of randomisation


def test_ratio_test_with_one_notification_per_user_is_the_two_proportion_interval():
    rng = np.random.default_rng(0)
    a, b = rng.random(3000) < 0.10, rng.random(2500) < 0.12
    ratio = ratio_test(a, np.ones(3000), b, np.ones(2500))
    counts = two_proportion_test(int(a.sum()), 3000, int(b.sum()), 2500)
    for field in ("rate_a", "rate_b", "difference", "relative_lift", "ci_low", "ci_high"):
        assert getattr(ratio, field) == pytest.approx(getattr(counts, field), rel=1e-12)
    assert ratio.p_value == pytest.approx(counts.p_value, rel=0.05)  # unpooled vs pooled z
    assert all(type(getattr(ratio, f.name)) in (float, bool, int) for f in dataclasses.fields(ratio))
    assert (ratio.n_a, ratio.n_b) == (3000, 2500)


def test_ratio_variance_matches_simulated_clustered_users():
    # users differ in propensity, so one user's notifications are opened together
    rng = np.random.default_rng(1)

    def users(n=500):
        sends, propensity = rng.integers(1, 15, size=n), rng.beta(0.5, 4, size=n)
        return rng.binomial(sends, propensity), sends

    ratios = [opens.sum() / sends.sum() for opens, sends in (users() for _ in range(3000))]
    opens, sends = users()
    assert ratio_variance(opens, sends) == pytest.approx(np.var(ratios), rel=0.15)
    rate = opens.sum() / sends.sum()
    assert ratio_variance(opens, sends) > 2 * rate * (1 - rate) / sends.sum()  # not binomial


def test_paired_bootstrap_of_a_mean_is_the_normal_interval():
    x = np.random.default_rng(2).normal(size=2000)
    low, high = paired_bootstrap(np.mean, x, seed=0)
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.15 * half)
    assert paired_bootstrap(np.mean, x, seed=0) == (low, high)


def test_paired_bootstrap_groups_resample_whole_groups():
    x = np.random.default_rng(3).normal(size=300)
    repeated, groups = np.repeat(x, 4), np.repeat(np.arange(300), 4)
    # identical rows within each group: resampling groups is resampling the 300 values
    assert paired_bootstrap(np.mean, repeated, groups=groups, seed=5) == paired_bootstrap(np.mean, x, seed=5)
    # treating the 1200 rows as independent understates the width by about sqrt(4)
    rows = np.subtract(*paired_bootstrap(np.mean, repeated, seed=5)[::-1])
    grouped = np.subtract(*paired_bootstrap(np.mean, repeated, groups=groups, seed=5)[::-1])
    assert 1.6 < grouped / rows < 2.5


def test_paired_bootstrap_pairs_the_arrays():
    rng = np.random.default_rng(4)
    common = rng.normal(scale=10, size=1000)
    a, b = common + rng.normal(size=1000), common + 0.5 + rng.normal(size=1000)
    low, high = paired_bootstrap(lambda u, v: np.mean(v - u), a, b, seed=0)
    assert 0.3 < low < 0.5 < high < 0.7  # the common part cancels: width ~ 4 sqrt(2) / sqrt(1000)


@pytest.mark.parametrize("call, error", [
    (lambda: ratio_variance([1, 2], [1]), ValueError),
    (lambda: ratio_variance([1, 2], [0, 0]), ValueError),
    (lambda: ratio_variance([1, 2], [1, -1]), ValueError),
    (lambda: ratio_test([1, 0], [1, 1], [1, np.nan], [1, 1]), ValueError),
    (lambda: paired_bootstrap("mean", [1, 2], seed=0), TypeError),
    (lambda: paired_bootstrap(np.mean, seed=0), ValueError),
    (lambda: paired_bootstrap(np.mean, [1, 2], [1, 2, 3], seed=0), ValueError),
    (lambda: paired_bootstrap(np.mean, [1, 2], groups=[0], seed=0), ValueError),
    (lambda: paired_bootstrap(np.mean, [1, 2], groups=[0, 0], seed=0), ValueError),
    (lambda: paired_bootstrap(np.mean, [1, 2], seed=0, level=1), ValueError),
    (lambda: paired_bootstrap(np.mean, [1, 2], seed=0, n_resamples=10), ValueError),
])
def test_units_of_randomisation_reject_bad_input(call, error):
    with pytest.raises(error):
        call()


# --------------------------------------------------------------------------- Welch's test, reporting


@pytest.mark.parametrize("alpha", [0.05, 0.01])
@pytest.mark.parametrize("n_a, n_b, shift, scale_b", [(400, 400, 0.1, 1.0), (50, 300, 0.5, 3.0),
                                                      (2000, 1500, 0.0, 0.5)])
def test_welch_test_agrees_with_scipy(n_a, n_b, shift, scale_b, alpha):
    rng = np.random.default_rng(n_a + n_b)
    a = rng.poisson(1.0, n_a).astype(float)  # watches per user: skewed, many zeros
    b = rng.poisson(1.0 + shift, n_b) * scale_b
    result = welch_test(a, b, alpha=alpha)
    expected = stats.ttest_ind(b, a, equal_var=False)
    ci = expected.confidence_interval(1 - alpha)
    assert isinstance(result, WelchTestResult)
    assert result.t == pytest.approx(expected.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-8, abs=1e-300)
    assert result.df == pytest.approx(expected.df, rel=1e-10)
    assert (result.ci_low, result.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert result.difference == pytest.approx(b.mean() - a.mean())
    assert result.relative_lift == pytest.approx(b.mean() / a.mean() - 1)
    assert (result.n_a, result.n_b, result.alpha) == (n_a, n_b, alpha)
    assert result.significant == (result.p_value < alpha)


def test_welch_test_hand_computed():
    # a: mean 2, var 1 (ddof 1), n 3; b: mean 4, var 4, n 3: se^2 = 1/3 + 4/3 = 5/3
    # df = (5/3)^2 / ((1/3)^2 / 2 + (4/3)^2 / 2) = (25/9) / (17/18) = 50/17
    result = welch_test([1, 2, 3], [2, 4, 6])
    assert result.t == pytest.approx(2 / math.sqrt(5 / 3))
    assert result.df == pytest.approx(50 / 17)


def test_welch_test_rejects_bad_input():
    with pytest.raises(ValueError, match="at least two units"):
        welch_test([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="constant"):
        welch_test([1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        welch_test([1.0, np.nan], [2.0, 3.0])
    with pytest.raises(ValueError, match="alpha"):
        welch_test([1.0, 2.0], [2.0, 3.0], alpha=1.5)


def test_welch_test_false_positive_rate():
    rng = np.random.default_rng(0)
    samples = rng.exponential(1.0, (2000, 2, 200))  # A/A tests on a skewed metric
    p = np.array([welch_test(a, b).p_value for a, b in samples])
    low, high = _band(0.05, n=2000)
    assert low < (p < 0.05).mean() < high


@pytest.mark.parametrize("p, text", [(0.0, "p < 0.001"), (0.000999, "p < 0.001"),
                                     (0.001, "p = 0.001"), (0.04321, "p = 0.043"),
                                     (1.0, "p = 1.000")])
def test_p_value_text(p, text):
    assert p_value_text(p) == text


def test_verdict_text():
    assert verdict_text(0.01) == "a detectable difference"
    assert verdict_text(0.05) == "no detectable difference"  # p < alpha, strictly
    assert verdict_text(0.03, alpha=0.01) == "no detectable difference"
    for bad in (-0.1, 1.2, np.nan):
        with pytest.raises(ValueError):
            verdict_text(bad)
        with pytest.raises(ValueError):
            p_value_text(bad)


def test_ab_table_mixes_tests():
    rate = two_proportion_test(100, 1000, 130, 1000)
    mean = welch_test([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 6.0])
    table = ab_table({"CTR": rate, "revenue": mean})
    assert list(table.index) == ["CTR", "revenue"]
    assert list(table.columns) == ["control", "treatment", "difference", "relative lift",
                                   "95% CI low", "95% CI high", "p-value"]
    assert table.loc["CTR", "treatment"] == 0.13 and table.loc["revenue", "control"] == 2.5
    assert table.loc["revenue", "p-value"] == mean.p_value
    assert list(ab_table({"x": two_proportion_test(1, 10, 2, 10, alpha=0.1)}).columns)[4] == (
        "90% CI low")


def test_ab_table_for_showing_writes_p_as_prose_does():
    tiny = two_proportion_test(1000, 10000, 1400, 10000)   # p far below 0.001
    middling = two_proportion_test(100, 1000, 110, 1000)
    shown = ab_table({"tiny": tiny, "middling": middling}, digits=3)
    assert list(shown.columns) == list(ab_table({"tiny": tiny}).columns)
    assert shown.loc["tiny", "p-value"] == "< 0.001"
    assert shown.loc["middling", "p-value"] == f"{middling.p_value:.3f}"
    assert shown.loc["tiny", "treatment"] == 0.14
    assert shown.loc["middling", "relative lift"] == round(middling.relative_lift, 3)


def test_ab_table_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        ab_table({})
    with pytest.raises(TypeError, match="WelchTestResult"):
        ab_table({"x": 0.5})
    with pytest.raises(ValueError, match="one alpha"):
        ab_table({"a": two_proportion_test(1, 10, 2, 10),
                  "b": two_proportion_test(1, 10, 2, 10, alpha=0.1)})
    for bad in (-1, 13, 2.0, True, "4"):
        with pytest.raises(ValueError, match="digits"):
            ab_table({"a": two_proportion_test(1, 10, 2, 10)}, digits=bad)


def test_ab_numbers_names_every_number_once():
    rate = two_proportion_test(100, 1000, 130, 1000)
    numbers = ab_numbers("ab_ctr", rate)
    assert set(numbers) == {f"ab_ctr_{k}" for k in ("control", "treatment", "difference", "lift",
                                                     "ci_low", "ci_high", "p", "verdict")}
    assert numbers["ab_ctr_lift"] == rate.relative_lift and numbers["ab_ctr_control"] == 0.1
    assert numbers["ab_ctr_p"].data == p_value_text(rate.p_value)
    assert numbers["ab_ctr_verdict"].data == "a detectable difference"
    mean = welch_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.5], alpha=0.1)
    assert ab_numbers("x", mean)["x_treatment"] == mean.mean_b
    assert ab_numbers("x", mean)["x_verdict"].data == verdict_text(mean.p_value, 0.1)
    with pytest.raises(ValueError, match="prefix"):
        ab_numbers("", rate)
