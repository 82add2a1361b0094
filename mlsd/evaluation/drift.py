"""Data drift: is the live data still like the data the model was trained on?

A deployed model silently assumes that tomorrow's inputs look like its training data. These
functions compare a reference sample (``expected``: training data, or last month) with a live
sample (``actual``: today) and score a monitor that raises alarms over time:

- :func:`population_stability_index` and :func:`psi_categorical` -- *how much* a feature's
  distribution moved, on a scale with conventional thresholds;
- :func:`ks_test` -- *whether* two numeric samples differ, as a hypothesis test;
- :func:`evaluate_alarms` -- how fast an alarm rule caught a drift, and how often it cried wolf;
- :func:`binomial_band`, :func:`dispersion_threshold` -- a day's band from counting theory, and
  one widened by the day-to-day variation measured on reference days; :func:`run_alarms` and
  :func:`first_alarm` turn a daily signal and its band into alarms (chapters 10 and 12).

Conventions: numeric samples are non-empty 1-D arrays of finite numbers; bad input fails early
with an error that names the problem. ``tests/test_drift.py`` checks the PSI against its
analytic value on normal distributions and the KS wrapper against SciPy.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats

from mlsd._checks import check_finite, check_finite_array, check_int

__all__ = ["population_stability_index", "psi_categorical", "ks_test", "evaluate_alarms", "binomial_band",
           "dispersion_threshold", "run_alarms", "first_alarm"]

#: proportions are floored at this value before the log in the PSI (see its docstring)
PSI_EPS = 1e-6


# --------------------------------------------------------------------------- argument checks


def _labels(name: str, values) -> list:
    """A non-empty 1-D sequence of category labels, as a list."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of category labels, not a string: {values!r}")
    labels = list(values)
    if not labels:
        raise ValueError(f"{name} is empty")
    return labels


def _eps(eps) -> float:
    eps = check_finite("eps", eps)
    if not 0 < eps < 1:
        raise ValueError(f"eps must be in (0, 1), got {eps!r}")
    return eps


# --------------------------------------------------------------------------- PSI


def _psi(e: np.ndarray, a: np.ndarray, eps: float) -> float:
    """PSI from two vectors of bin proportions (each summing to 1)."""
    e, a = np.maximum(e, eps), np.maximum(a, eps)
    return float(np.sum((a - e) * np.log(a / e)))


def population_stability_index(expected, actual, *, bins: int = 10, eps: float = PSI_EPS) -> float:
    """Population stability index (PSI) of a numeric feature, from ``expected`` to ``actual``.

    Cut the real line into bins at the quantiles of ``expected``, so that each bin holds about
    1/``bins`` of it; let e_i and a_i be the shares of ``expected`` and ``actual`` in bin i::

        PSI = sum_i (a_i - e_i) ln(a_i / e_i)

    Every term is >= 0 (a_i - e_i and ln(a_i / e_i) have the same sign), so PSI >= 0, and it is
    0 only if the two histograms agree. It is the symmetrised Kullback-Leibler divergence
    KL(a || e) + KL(e || a) of the binned distributions. Range [0, inf).

    Bins: the inner edges are the quantiles of ``expected`` at 1/bins, ..., (bins-1)/bins; the
    outer edges are -inf and +inf, so every value of ``actual`` falls in some bin, even one
    outside the range seen in ``expected``. Bins are closed on the right, (q_i, q_{i+1}].
    If ``expected`` has ties, several quantiles can coincide; repeated edges are dropped, so
    there are fewer (and unequal) bins, and a point mass stays in one bin.

    Empty bins: a share of 0 would make ln(a_i / e_i) infinite, so both shares are floored at
    ``eps`` before the log (and not renormalised: the total error is at most bins * eps). A bin
    with 10% of ``actual`` and none of ``expected`` then adds 0.1 ln(0.1 / 1e-6) ~ 1.15: finite,
    but clearly a major shift. The value of such a bin depends on ``eps``.

    Rule of thumb (from credit scoring): PSI < 0.1 no significant shift, 0.1-0.25 moderate shift
    (investigate), > 0.25 major shift (act). These thresholds are a convention, not a
    statistical test: they ignore the sample sizes, and PSI depends on the number of bins.
    For a normal feature whose mean shifts by mu standard deviations, PSI is a little below
    mu^2 (the unbinned value; with 10 bins, 0.96 mu^2 at mu = 0.1), so 0.1 is a shift of ~0.3 sd.

    References: Siddiqi (2006), *Credit Risk Scorecards*, ch. 8; Yurdakul (2018), "Statistical
    properties of population stability index", PhD dissertation, Western Michigan University.
    """
    expected, actual = check_finite_array("expected", expected), check_finite_array("actual", actual)
    bins = check_int("bins", bins, minimum=2)
    eps = _eps(eps)
    inner_edges = np.unique(np.quantile(expected, np.arange(1, bins) / bins))  # unique: ties
    n_bins = len(inner_edges) + 1
    # side="left": a value equal to an edge goes to the bin below it, so bins are (q_i, q_{i+1}]
    e = np.bincount(np.searchsorted(inner_edges, expected), minlength=n_bins) / len(expected)
    a = np.bincount(np.searchsorted(inner_edges, actual), minlength=n_bins) / len(actual)
    return _psi(e, a, eps)


def psi_categorical(expected, actual, *, eps: float = PSI_EPS) -> float:
    """Population stability index of a categorical feature, over the shares of each category.

    ``expected`` and ``actual`` are sequences of category labels (any hashable values, e.g.
    strings). With e_c and a_c the shares of category c in each::

        PSI = sum_c (a_c - e_c) ln(a_c / e_c)

    over the union of the categories seen in either sample. A category that appears on one side
    only has share 0 on the other, floored at ``eps`` as in :func:`population_stability_index`
    (a new category is exactly the kind of shift a monitor should flag). Missing values count
    as a category only if they are encoded as one (e.g. ``"missing"``). Range [0, inf), with the
    same rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major.

    References: Siddiqi (2006), *Credit Risk Scorecards*, ch. 8.
    """
    expected, actual = _labels("expected", expected), _labels("actual", actual)
    eps = _eps(eps)
    count_e, count_a = Counter(expected), Counter(actual)
    # first-appearance order (not a set): the sum is then the same float on every run
    categories = list(dict.fromkeys(expected + actual))
    e = np.array([count_e[c] for c in categories]) / len(expected)
    a = np.array([count_a[c] for c in categories]) / len(actual)
    return _psi(e, a, eps)


# --------------------------------------------------------------------------- KS test


def ks_test(expected, actual) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: ``(statistic, p_value)``, two-sided.

    The statistic is the largest vertical distance between the two empirical CDFs::

        D = max_x |F_expected(x) - F_actual(x)|,    range [0, 1]

    and the p-value is the probability of a D at least this large if both samples came from the
    same continuous distribution. This is ``scipy.stats.ks_2samp(expected, actual)`` (exact
    p-values for small samples, asymptotic for large), with the arguments checked.

    A caution for monitoring: the test answers "is there *any* difference?", and with the large
    samples of production traffic the answer is almost always yes -- a shift far too small to
    hurt the model gets a tiny p-value. That is why drift monitors usually alarm on an effect
    size with a threshold (:func:`population_stability_index`, or D itself) instead of on p < 0.05.

    References: Massey (1951), "The Kolmogorov-Smirnov test for goodness of fit", *JASA* 46;
    Hodges (1958), "The significance probability of the Smirnov two-sample test", *Arkiv för
    Matematik* 3.
    """
    expected, actual = check_finite_array("expected", expected), check_finite_array("actual", actual)
    result = stats.ks_2samp(expected, actual, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


# --------------------------------------------------------------------------- alarms


def evaluate_alarms(alarms, change_at: int | None) -> dict:
    """Score a drift monitor on a stream of periods (e.g. days) whose drift onset is known.

    ``alarms[t]`` is True if the monitor alarmed in period t; ``change_at`` is the index of the
    first drifted period, or None for a stream without drift. Returns a dict:

    - ``detected`` (bool): some alarm at or after ``change_at`` (always False without drift);
    - ``delay`` (int or None): periods from ``change_at`` to the first alarm at or after it
      (0 = caught on the first drifted period); None if never detected;
    - ``false_alarms`` (int): alarms before ``change_at`` (every alarm, without drift);
    - ``false_alarm_rate`` (float): false alarms / periods before ``change_at`` (over all
      periods without drift), in [0, 1]. It is NaN if ``change_at`` is 0: there is no
      drift-free period to estimate it from.

    The two kinds of error trade off: a more sensitive rule detects sooner and alarms falsely
    more often. Alarms after the first detection are not scored.

    References: Basseville & Nikiforov (1993), *Detection of Abrupt Changes: Theory and
    Application*, ch. 1 (detection delay and false-alarm rate as the criteria of a detector).
    """
    arr = np.asarray(alarms)
    if arr.ndim != 1:
        raise ValueError(f"alarms must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("alarms is empty")
    if arr.dtype.kind not in "biu" or not np.isin(arr, (0, 1)).all():
        raise ValueError("alarms must contain only booleans (or 0 and 1)")
    arr = arr.astype(bool)
    if change_at is None:
        return {"detected": False, "delay": None, "false_alarms": int(arr.sum()),
                "false_alarm_rate": float(arr.mean())}
    change_at = check_int("change_at", change_at, minimum=0)
    if change_at >= len(arr):
        raise ValueError(f"change_at must be < len(alarms) = {len(arr)}, got {change_at}")
    before, after = arr[:change_at], arr[change_at:]
    detected = bool(after.any())
    return {
        "detected": detected,
        "delay": int(np.argmax(after)) if detected else None,  # argmax: index of the first True
        "false_alarms": int(before.sum()),
        "false_alarm_rate": float(before.mean()) if change_at else float("nan"),
    }


def binomial_band(reference_rate: float, reference_n: int, n, z: float = 3.0):
    """The band ``rate ± z`` standard errors for a day of ``n`` searches, around a reference.

    The reference rate is smoothed by one success and one failure in ``reference_n`` searches
    (a rate of exactly 0 would give a band of width 0). Returns ``(low, high)`` arrays.
    """
    if not 0 <= reference_rate <= 1 or reference_n < 1 or z <= 0:
        raise ValueError("need a reference rate in [0, 1], reference_n >= 1 and z > 0")
    n = np.asarray(n, dtype=float)
    if (n < 1).any():
        raise ValueError("every day needs at least one search")
    p = (reference_rate * reference_n + 1) / (reference_n + 2)
    half = z * np.sqrt(p * (1 - p) / n)
    return np.clip(p - half, 0, 1), np.clip(p + half, 0, 1)


def dispersion_threshold(stat, n, reference, dof: int, level: float = 0.999):
    """A threshold per day for a daily statistic whose ``n`` x value is about chi-square(``dof``)
    when the day's ``n`` rows are independent draws like the reference rows: a categorical PSI
    (``dof`` = categories - 1, n x PSI being close to Pearson's chi-square) or the squared length
    of a whitened mean (``dof`` = its coordinates).

    Rows are rarely independent (a user's registrations or clicks share a taste), so n x value
    runs larger by a factor, the dispersion ``phi`` = mean(n x value over the ``reference`` days)
    / ``dof`` (quasi-likelihood; McCullagh & Nelder 1989, ch. 4). A day of n rows gets the
    threshold ``phi * chi2.ppf(level, dof) / n``. Returns ``(threshold array, phi)``.

    Raises ``ValueError`` unless ``stat``, ``n`` and ``reference`` (booleans, at least one True)
    hold one value per day, every n >= 1 and every value finite and >= 0, and 0 < level < 1.
    """
    stat, n = np.asarray(stat, dtype=float), np.asarray(n, dtype=float)
    reference = np.asarray(reference)
    dof = check_int("dof", dof, minimum=1)
    if stat.ndim != 1 or n.shape != stat.shape or reference.shape != stat.shape:
        raise ValueError("stat, n and reference need one value per day (1-d, one length)")
    if reference.dtype != bool or not reference.any():
        raise ValueError("reference must be a boolean per day marking at least one day")
    if (n < 1).any() or not np.isfinite(stat).all() or (stat < 0).any():
        raise ValueError("every day needs n >= 1 and a finite value >= 0")
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    phi = float(np.mean(n[reference] * stat[reference]) / dof)
    return phi * stats.chi2.ppf(level, dof) / n, phi


def run_alarms(values, low, high, run: int = 2) -> np.ndarray:
    """True on each day that ends ``run`` days in a row with the value outside ``[low, high]``
    (either side; ``low`` = -inf watches one side). Asking for two days cuts chance alarms at
    the cost of a day's delay. ``low`` and ``high`` are numbers or one per day."""
    values, low, high = (np.asarray(a, dtype=float) for a in (values, low, high))
    run = check_int("run", run, minimum=1)
    if values.ndim != 1:
        raise ValueError("values must be 1-d (one per day)")
    low, high = np.broadcast_to(low, values.shape), np.broadcast_to(high, values.shape)
    if (low > high).any():
        raise ValueError("each day's band needs low <= high")
    streak, out = 0, np.zeros(len(values), dtype=bool)
    for t, outside in enumerate((values < low) | (values > high)):
        streak = streak + 1 if outside else 0
        out[t] = streak >= run
    return out


def first_alarm(days, alarms, after: int | None = None) -> int | None:
    """The first day with an alarm (at or after ``after``), or ``None``."""
    days, alarms = np.asarray(days), np.asarray(alarms)
    if days.ndim != 1 or alarms.shape != days.shape:
        raise ValueError("days and alarms need one value per day (1-d, one length)")
    if alarms.dtype != bool:
        raise ValueError("alarms must be booleans")
    hit = alarms if after is None else alarms & (days >= after)
    return int(days[hit][0]) if hit.any() else None
