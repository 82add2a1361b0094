"""A/B tests on a rate such as click-through rate (CTR): plan, analyse, and simulate them.

- :func:`sample_size_two_proportions` -- how many users per arm to detect a given lift;
- :func:`two_proportion_test` -- the z-test and confidence interval for the observed difference;
- :func:`simulate_ab_test`, :func:`simulate_ab_p_values`, :func:`simulate_aa_tests` -- simulated
  experiments, to see the false-positive rate and the power with one's own eyes;
- :func:`simulate_peeking` -- what testing after every interim look does to the false-positive rate;
- :func:`ratio_variance`, :func:`ratio_test` -- a rate over notifications when *users* are
  randomised (the delta method), and :func:`paired_bootstrap` -- an interval for any statistic
  of paired arrays, resampling rows or whole groups (users, weeks) of rows;
- :func:`welch_test` -- a mean per unit (watches per user, revenue per request) compared with
  Welch's t-test;
- :func:`p_value_text`, :func:`verdict_text`, :func:`ab_table`, :func:`ab_numbers` -- how the
  chapters report a test: "p < 0.001", "a detectable difference", one table row per metric or
  experiment, and the numbers a paragraph quotes.

Conventions: arm A is the control and arm B the treatment, so a positive ``difference`` means
the treatment clicks more. Rates are probabilities in (0, 1). Every random function takes an
explicit ``seed`` (a non-negative integer, or a ``numpy.random.Generator`` that it advances),
so a notebook draws exactly the same numbers on every run. ``tests/test_experiments.py`` checks
the test against statsmodels, Welch's test against scipy, and the simulated error rates
against their expected values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlsd._checks import check_finite, check_finite_array, check_int
from mlsd.book.seeding import make_rng

__all__ = [
    "ABTestResult", "sample_size_two_proportions", "two_proportion_test",
    "simulate_ab_test", "simulate_ab_p_values", "simulate_aa_tests", "simulate_peeking",
    "ratio_variance", "ratio_test", "paired_bootstrap",
    "WelchTestResult", "welch_test", "p_value_text", "verdict_text", "ab_table", "ab_numbers",
]


# --------------------------------------------------------------------------- argument checks


def _open_unit(name: str, value) -> float:
    """``value`` as a float strictly between 0 and 1 (a rate, alpha or power)."""
    value = check_finite(name, value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be strictly between 0 and 1, got {value!r}")
    return value


def _counts(arm: str, clicks, n) -> tuple[int, int]:
    n = check_int(f"n_{arm}", n, minimum=1)
    clicks = check_int(f"clicks_{arm}", clicks, minimum=0)
    if clicks > n:
        raise ValueError(f"clicks_{arm} must be <= n_{arm} = {n}, got {clicks}")
    return clicks, n


def _rng(seed) -> np.random.Generator:
    """A Generator from a seed; a Generator passed in is used (and advanced) as it is."""
    return seed if isinstance(seed, np.random.Generator) else make_rng(seed)


# --------------------------------------------------------------------------- planning


def sample_size_two_proportions(p_control, p_treatment, *, alpha=0.05, power=0.8) -> int:
    """Users needed **per arm** for a two-sided two-proportion z-test to detect p1 -> p2.

    With p1 = ``p_control``, p2 = ``p_treatment``, p̄ = (p1 + p2) / 2 and z_q the standard
    normal quantile::

        n = ( z_{1-alpha/2} sqrt(2 p̄ (1 - p̄)) + z_{power} sqrt(p1 (1 - p1) + p2 (1 - p2)) )^2
            / (p2 - p1)^2

    rounded up. The first term is the noise of the difference under "no effect" (pooled rate),
    the second under the effect. With alpha = 0.05 and power = 0.8, (1.96 + 0.84)^2 ~ 7.85, which
    gives the rule of thumb n ~ 16 sigma^2 / delta^2 with sigma^2 = p (1 - p) and delta = p2 - p1.
    Halving the detectable difference quadruples n: small lifts on small rates are expensive
    (a 1% relative lift on a 5% CTR needs about 3 million users per arm).

    References: Kohavi, Tang & Xu (2020), *Trustworthy Online Controlled Experiments*, ch. 17;
    Fleiss, Levin & Paik (2003), *Statistical Methods for Rates and Proportions*, ch. 4.
    """
    p1, p2 = _open_unit("p_control", p_control), _open_unit("p_treatment", p_treatment)
    alpha, power = _open_unit("alpha", alpha), _open_unit("power", power)
    if p1 == p2:
        raise ValueError(f"p_control and p_treatment must differ, both are {p1!r}")
    p_bar = (p1 + p2) / 2
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    root_n = z_alpha * math.sqrt(2 * p_bar * (1 - p_bar)) + z_power * math.sqrt(
        p1 * (1 - p1) + p2 * (1 - p2)
    )
    return math.ceil(root_n**2 / (p2 - p1) ** 2)


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class ABTestResult:
    """The outcome of :func:`two_proportion_test` (arm A = control, arm B = treatment)."""

    rate_a: float
    rate_b: float
    difference: float  #: rate_b - rate_a
    relative_lift: float  #: difference / rate_a (NaN if rate_a is 0)
    z: float
    p_value: float  #: two-sided
    ci_low: float  #: confidence interval for the difference, at level 1 - alpha
    ci_high: float
    alpha: float
    significant: bool  #: p_value < alpha
    n_a: int | None = None  #: units (users, requests) in arm A, when the test knows them
    n_b: int | None = None


def _pooled_z(clicks_a, n_a, clicks_b, n_b):
    """Pooled-variance z statistic; works on numbers and (element-wise) on arrays."""
    p_a, p_b = clicks_a / n_a, clicks_b / n_b
    pooled = (clicks_a + clicks_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    # se = 0 only if both arms are all 0s or all 1s: equal rates, no evidence of a difference
    return np.divide(p_b - p_a, se, out=np.zeros_like(se, dtype=float), where=se > 0)


def _p_value(z):
    return 2 * stats.norm.sf(np.abs(z))


def two_proportion_test(clicks_a, n_a, clicks_b, n_b, *, alpha=0.05) -> ABTestResult:
    """Two-sided z-test for a difference in rates, and a confidence interval for it.

    With rates p_a = clicks_a / n_a, p_b = clicks_b / n_b and the pooled rate
    p = (clicks_a + clicks_b) / (n_a + n_b):

    - ``difference`` = p_b - p_a, ``relative_lift`` = (p_b - p_a) / p_a (NaN if p_a = 0);
    - ``z`` = (p_b - p_a) / sqrt(p (1 - p) (1/n_a + 1/n_b)): the variance is pooled because the
      null hypothesis says both arms share one rate. If p is 0 or 1 (no variation at all), z = 0;
    - ``p_value`` = 2 (1 - Phi(|z|)), Phi the standard normal CDF;
    - ``ci_low``, ``ci_high`` = difference -/+ z_{1-alpha/2} se, with the unpooled standard error
      se = sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b): the Wald interval, built around the
      observed rates rather than the null hypothesis;
    - ``significant`` = p_value < alpha.

    The normal approximation needs a few clicks and non-clicks in each arm (say >= 10 of each);
    at the sample sizes of online experiments it is excellent. Counts are integers with
    0 <= clicks <= n and n >= 1. The p-value equals statsmodels'
    ``proportions_ztest([clicks_b, clicks_a], [n_b, n_a])``.

    References: Kohavi, Tang & Xu (2020), *Trustworthy Online Controlled Experiments*, ch. 17;
    Agresti (2013), *Categorical Data Analysis*, 3rd ed., §3.1.
    """
    clicks_a, n_a = _counts("a", clicks_a, n_a)
    clicks_b, n_b = _counts("b", clicks_b, n_b)
    alpha = _open_unit("alpha", alpha)
    p_a, p_b = clicks_a / n_a, clicks_b / n_b
    difference = p_b - p_a
    z = float(_pooled_z(clicks_a, n_a, clicks_b, n_b))
    p_value = float(_p_value(z))
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half_width = float(stats.norm.ppf(1 - alpha / 2)) * se
    return ABTestResult(
        rate_a=p_a, rate_b=p_b, difference=difference,
        relative_lift=difference / p_a if p_a > 0 else math.nan,
        z=z, p_value=p_value, ci_low=difference - half_width, ci_high=difference + half_width,
        alpha=alpha, significant=p_value < alpha, n_a=n_a, n_b=n_b,
    )


# --------------------------------------------------------------------------- simulation


def simulate_ab_test(p_control, p_treatment, n_per_arm, *, alpha=0.05, seed) -> ABTestResult:
    """One simulated experiment: ``n_per_arm`` users per arm click with the given rates.

    The clicks are Binomial(n_per_arm, p) in each arm (users independent), analysed with
    :func:`two_proportion_test`. Reproducible: the same ``seed`` gives the same result.
    """
    p_a, p_b = _open_unit("p_control", p_control), _open_unit("p_treatment", p_treatment)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    clicks_a, clicks_b = _rng(seed).binomial(n, [p_a, p_b])
    return two_proportion_test(int(clicks_a), n, int(clicks_b), n, alpha=alpha)


def simulate_ab_p_values(p_control, p_treatment, n_per_arm, *, n_experiments, seed) -> np.ndarray:
    """Two-sided p-values of ``n_experiments`` simulated experiments (as :func:`simulate_ab_test`).

    With a real effect, ``(p_values < alpha).mean()`` estimates the power of the test; with
    ``p_control == p_treatment`` it estimates the false-positive rate (see
    :func:`simulate_aa_tests`). Vectorised: all experiments are drawn at once.
    """
    p_a, p_b = _open_unit("p_control", p_control), _open_unit("p_treatment", p_treatment)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    n_experiments = check_int("n_experiments", n_experiments, minimum=1)
    clicks = _rng(seed).binomial(n, [[p_a], [p_b]], size=(2, n_experiments))
    return _p_value(_pooled_z(clicks[0], n, clicks[1], n))


def simulate_aa_tests(p, n_per_arm, *, n_experiments, seed) -> np.ndarray:
    """Two-sided p-values of ``n_experiments`` simulated **A/A tests**: both arms have rate ``p``.

    There is no effect, so every "significant" result is a false positive, and
    ``(p_values < alpha).mean()`` should be close to alpha: over N experiments it is a binomial
    share with standard error sqrt(alpha (1 - alpha) / N). A/A tests are how a team checks its
    experimentation platform before trusting it. With no effect the p-values are close to
    uniform on [0, 1] (not exactly: click counts are discrete).

    References: Kohavi, Tang & Xu (2020), *Trustworthy Online Controlled Experiments*, ch. 19.
    """
    p = _open_unit("p", p)
    return simulate_ab_p_values(p, p, n_per_arm, n_experiments=n_experiments, seed=seed)


def simulate_peeking(p, n_per_arm, *, looks, n_experiments, alpha=0.05, seed) -> float:
    """False-positive rate of A/A tests analysed after each of ``looks`` interim looks.

    Each experiment enrols users in ``looks`` equal batches (the k-th look sees the first
    round(k n_per_arm / looks) users per arm) and runs :func:`two_proportion_test` on the data so
    far after every batch, stopping at the first p < alpha. Returns the share of experiments
    ever declared significant. Both arms have rate ``p``, so each is a false positive: with one
    look this is about alpha, but every extra look is another chance for noise to cross the
    line -- with 10 looks at alpha = 0.05 about 0.19. The fix is to fix n in advance and look
    once, or use a sequential test designed for peeking.

    References: Armitage, McPherson & Rowe (1969), "Repeated significance tests on accumulating
    data", *JRSS A* 132; Johari et al. (2017), "Peeking at A/B tests", *KDD*.
    """
    p = _open_unit("p", p)
    n = check_int("n_per_arm", n_per_arm, minimum=1)
    looks = check_int("looks", looks, minimum=1)
    if looks > n:  # every look needs new users
        raise ValueError(f"looks must be <= n_per_arm = {n}, got {looks}")
    n_experiments = check_int("n_experiments", n_experiments, minimum=1)
    alpha = _open_unit("alpha", alpha)
    n_at_look = np.round(np.arange(1, looks + 1) * n / looks).astype(np.int64)
    batch = np.diff(n_at_look, prepend=0)
    # clicks per (arm, experiment, batch), summed into the running totals seen at each look
    clicks = _rng(seed).binomial(batch, p, size=(2, n_experiments, looks)).cumsum(axis=2)
    p_values = _p_value(_pooled_z(clicks[0], n_at_look, clicks[1], n_at_look))
    return float((p_values < alpha).any(axis=1).mean())


# --------------------------------------------------------------------------- units of randomisation


def _per_unit(arm: str, numerator, denominator) -> tuple[np.ndarray, np.ndarray]:
    y = check_finite_array(f"numerator{arm}", numerator)
    n = check_finite_array(f"denominator{arm}", denominator)
    if len(y) != len(n) or len(y) < 2:
        raise ValueError(f"numerator{arm} and denominator{arm} need one value per unit, at least "
                         f"two units, got lengths {len(y)} and {len(n)}")
    if (n < 0).any() or n.sum() <= 0:
        raise ValueError(f"denominator{arm} must be >= 0 with a positive total")
    return y, n


def ratio_variance(numerator, denominator) -> float:
    """Variance of the ratio metric R = sum(numerator) / sum(denominator), by the delta method.

    Each entry is one unit of randomisation (a user): its numerator (opens) and denominator
    (notifications sent). Units are independent; the notifications of one user are not. With n
    units and mean denominator N̄::

        Var(R) ~ Var(Y_i - R N_i) / (n N̄^2)

    (population variance over units). With every denominator 1 this is the binomial p (1 - p) / n;
    when a user's notifications are opened together (some users open everything) it is larger,
    and a test that counts notifications as independent is too confident.

    References: Deng, Knoblich & Lu (2018), "Applying the delta method in metric analytics",
    *KDD*; Kohavi, Tang & Xu (2020), *Trustworthy Online Controlled Experiments*, ch. 18.
    """
    y, n = _per_unit("", numerator, denominator)
    ratio = y.sum() / n.sum()
    return float(np.var(y - ratio * n) / (len(y) * n.mean() ** 2))


def ratio_test(numerator_a, denominator_a, numerator_b, denominator_b, *, alpha=0.05) -> ABTestResult:
    """Compare a ratio metric (opens / sends) between two arms whose *units* (users) were randomised.

    Arm A is the control. The rates are sum(numerator) / sum(denominator) per arm and the
    standard error of their difference comes from :func:`ratio_variance`, so the analysis is
    at the unit of randomisation. ``z`` = difference / se, the p-value is two-sided and the
    interval is difference -/+ z_{1-alpha/2} se. With one notification per user it gives the
    interval of :func:`two_proportion_test`.
    """
    (ya, na), (yb, nb) = _per_unit("_a", numerator_a, denominator_a), _per_unit("_b", numerator_b, denominator_b)
    alpha = _open_unit("alpha", alpha)
    rate_a, rate_b = float(ya.sum() / na.sum()), float(yb.sum() / nb.sum())
    difference = rate_b - rate_a
    se = math.sqrt(ratio_variance(ya, na) + ratio_variance(yb, nb))
    z = difference / se if se > 0 else 0.0
    p_value = float(_p_value(z))
    half_width = float(stats.norm.ppf(1 - alpha / 2)) * se
    return ABTestResult(
        rate_a=rate_a, rate_b=rate_b, difference=difference,
        relative_lift=difference / rate_a if rate_a > 0 else math.nan,
        z=float(z), p_value=p_value, ci_low=difference - half_width, ci_high=difference + half_width,
        alpha=alpha, significant=p_value < alpha, n_a=len(ya), n_b=len(yb),
    )


def paired_bootstrap(statistic, *arrays, groups=None, seed, n_resamples: int = 1000,
                     level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)``, the arrays resampled together.

    The arrays hold one value per row (labels and two models' predictions, say) and are
    resampled *paired*: the same rows for all, so what is common to both models cancels out of
    a difference. With ``groups`` (one label per row, e.g. the user), whole groups are drawn
    with replacement, keeping the rows of a group together: the bootstrap for data whose rows
    are correlated within a group (a cluster bootstrap). Without it, rows are drawn.

    Returns ``(low, high)`` at ``level``. Reproducible for a given ``seed``.

    References: Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13;
    Field & Welsh (2007), "Bootstrapping clustered data", *JRSS B* 69.
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be a function of the arrays, got {statistic!r}")
    if not arrays:
        raise ValueError("give at least one array to resample")
    arrays = [np.asarray(a) for a in arrays]
    n_rows = len(arrays[0])
    if any(a.ndim != 1 or len(a) != n_rows for a in arrays):
        raise ValueError(f"the arrays must be 1-D of one length, got shapes {[a.shape for a in arrays]}")
    codes = np.arange(n_rows) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(codes) != n_rows:
        raise ValueError(f"groups needs one label per row ({n_rows}), got {len(codes)}")
    level = _open_unit("level", level)
    n_resamples = check_int("n_resamples", n_resamples, minimum=100)
    counts = np.bincount(codes)
    if len(counts) < 2:
        raise ValueError("a bootstrap needs at least two rows (or groups)")
    order, starts = np.argsort(codes, kind="stable"), np.cumsum(counts) - counts
    rng, samples = _rng(seed), np.empty(n_resamples)
    for i in range(n_resamples):
        pick = rng.integers(len(counts), size=len(counts))
        size = counts[pick]  # the rows of each picked group, laid end to end
        rows = order[np.repeat(starts[pick] - np.cumsum(size) + size, size) + np.arange(size.sum())]
        samples[i] = statistic(*(a[rows] for a in arrays))
    low, high = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# --------------------------------------------------------------------------- a mean per unit


@dataclass(frozen=True)
class WelchTestResult:
    """The outcome of :func:`welch_test` (arm A = control, arm B = treatment)."""

    mean_a: float
    mean_b: float
    difference: float  #: mean_b - mean_a
    relative_lift: float  #: difference / mean_a (NaN if mean_a is 0)
    t: float
    df: float  #: Welch-Satterthwaite degrees of freedom
    p_value: float  #: two-sided
    ci_low: float  #: confidence interval for the difference, at level 1 - alpha
    ci_high: float
    alpha: float
    significant: bool  #: p_value < alpha
    n_a: int
    n_b: int


def welch_test(control, treatment, *, alpha=0.05) -> WelchTestResult:
    """Compare the mean of a per-unit metric between two arms with Welch's t-test.

    Each value is one unit of randomisation: a user's watches, a request's revenue. Units are
    independent; what happens inside a unit (one user's ten impressions) need not be, which is
    why the analysis is per unit. With means m_a, m_b, sample variances s_a^2, s_b^2 (ddof 1)
    and sizes n_a, n_b::

        se = sqrt(s_a^2 / n_a + s_b^2 / n_b),   t = (m_b - m_a) / se
        df = se^4 / ( (s_a^2/n_a)^2 / (n_a - 1) + (s_b^2/n_b)^2 / (n_b - 1) )

    (Welch-Satterthwaite); the p-value is two-sided from Student's t with df degrees of freedom
    and the interval is (m_b - m_a) -/+ t_{1-alpha/2, df} se. Unlike Student's test it does not
    assume equal variances, which a treatment that changes behaviour rarely keeps. It equals
    ``scipy.stats.ttest_ind(treatment, control, equal_var=False)``. Skewed metrics (revenue:
    mostly 0, sometimes dollars) need many units for the t approximation; at A/B sizes it holds.

    Raises ``ValueError`` if an arm has fewer than two units or both arms are constant (no
    variance: the test has nothing to measure the difference against).

    References: Welch (1947), "The generalization of Student's problem when several different
    population variances are involved", *Biometrika* 34; Kohavi, Tang & Xu (2020), ch. 17.
    """
    a, b = check_finite_array("control", control), check_finite_array("treatment", treatment)
    for name, arm in (("control", a), ("treatment", b)):
        if len(arm) < 2:
            raise ValueError(f"{name} needs at least two units, got {len(arm)}")
    alpha = _open_unit("alpha", alpha)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        raise ValueError("both arms are constant: Welch's test needs some variance")
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    mean_a, mean_b = float(a.mean()), float(b.mean())
    difference = mean_b - mean_a
    t = difference / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    half_width = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return WelchTestResult(
        mean_a=mean_a, mean_b=mean_b, difference=difference,
        relative_lift=difference / mean_a if mean_a != 0 else math.nan, t=float(t),
        df=float(df), p_value=p_value, ci_low=difference - half_width,
        ci_high=difference + half_width, alpha=alpha, significant=p_value < alpha,
        n_a=len(a), n_b=len(b),
    )


# --------------------------------------------------------------------------- reporting


def p_value_text(p) -> str:
    """A p-value as prose writes it: ``"p < 0.001"`` below 0.001, else ``"p = 0.123"``."""
    p = check_finite("p", p)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be between 0 and 1, got {p!r}")
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict_text(p, alpha=0.05) -> str:
    """``"a detectable difference"`` if ``p < alpha``, else ``"no detectable difference"``.

    "No detectable difference" is not "no difference": the test may be too small to see it.
    """
    p, alpha = check_finite("p", p), _open_unit("alpha", alpha)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be between 0 and 1, got {p!r}")
    return "a detectable difference" if p < alpha else "no detectable difference"


def ab_table(results, digits=None):
    """One row per metric or experiment: control, treatment, difference, lift, interval, p.

    ``results`` maps a row name to a result of :func:`two_proportion_test`, :func:`ratio_test`
    or :func:`welch_test` (mixed freely, with one ``alpha``). Columns: ``control``,
    ``treatment`` (the arms' rates or means), ``difference`` (treatment - control),
    ``relative lift``, ``95% CI low`` and ``95% CI high`` (of the difference; the level
    follows ``alpha``) and ``p-value``. Returns a ``pandas.DataFrame`` of numbers.

    With ``digits``, the table is for showing: numbers rounded to that many decimals and the
    p-value written as prose writes it (``"< 0.001"``, ``"0.382"``), since a rounded p-value
    of ``0.0`` reads as "impossible", which no test can say.
    """
    import pandas as pd

    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict of name -> test result")
    if digits is not None and (isinstance(digits, bool) or not isinstance(digits, int)
                               or not 0 <= digits <= 12):
        raise ValueError(f"digits must be None or a whole number from 0 to 12, got {digits!r}")
    alphas = set()
    rows = {}
    for name, r in results.items():
        if isinstance(r, ABTestResult):
            control, treatment = r.rate_a, r.rate_b
        elif isinstance(r, WelchTestResult):
            control, treatment = r.mean_a, r.mean_b
        else:
            raise TypeError(f"results[{name!r}] must be an ABTestResult or WelchTestResult, "
                            f"got {type(r).__name__}")
        alphas.add(r.alpha)
        rows[name] = [control, treatment, r.difference, r.relative_lift, r.ci_low, r.ci_high,
                      r.p_value]
    if len(alphas) > 1:
        raise ValueError(f"the results must share one alpha, got {sorted(alphas)}")
    level = f"{1 - alphas.pop():.0%}"
    columns = ["control", "treatment", "difference", "relative lift", f"{level} CI low",
               f"{level} CI high", "p-value"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    if digits is None:
        return table
    shown = table.drop(columns="p-value").round(digits)
    shown["p-value"] = [p_value_text(p).removeprefix("p ").removeprefix("= ")
                        for p in table["p-value"]]
    return shown


def ab_numbers(prefix: str, result) -> dict:
    """The numbers a paragraph quotes about one test, named ``{prefix}_...``, for glue.

    ``control``, ``treatment`` (rates or means), ``difference``, ``lift`` (relative),
    ``ci_low`` and ``ci_high`` (of the difference) as floats; ``p`` (:func:`p_value_text`) and
    ``verdict`` (:func:`verdict_text` at the test's alpha) as Markdown, so that
    ``{glue:md}`` prints them without quotes. ``result`` is an :class:`ABTestResult` or a
    :class:`WelchTestResult`.
    """
    from IPython.display import Markdown

    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty str, got {prefix!r}")
    row = ab_table({prefix: result}).iloc[0]
    return {f"{prefix}_control": float(row["control"]),
            f"{prefix}_treatment": float(row["treatment"]),
            f"{prefix}_difference": float(result.difference),
            f"{prefix}_lift": float(result.relative_lift),
            f"{prefix}_ci_low": float(result.ci_low), f"{prefix}_ci_high": float(result.ci_high),
            f"{prefix}_p": Markdown(p_value_text(result.p_value)),
            f"{prefix}_verdict": Markdown(verdict_text(result.p_value, result.alpha))}

