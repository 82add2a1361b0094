"""Bandits against a fixed split: Thompson sampling on rates (an open or not, per send).

An A/B test with several arms splits traffic equally until its planned end, then ships the
best-looking arm: every send to a worse arm during the test is a cost paid to learn. A bandit
shifts traffic towards the arms that look best while it learns. Thompson sampling does it by
probability matching: each send goes to the arm whose draw from its posterior is highest, so
an arm gets the share of traffic equal to the probability that it is the best (Thompson, 1933;
Russo, Van Roy, Kazerouni, Osband & Wen, 2018, "A tutorial on Thompson sampling").

- :func:`thompson_sampling` -- batched Thompson sampling with Beta posteriors, updated once a
  day (outcomes arrive overnight), over many simulated runs at once;
- :func:`fixed_split` -- the A/B test: an equal split for ``test_days``, then every send to
  the arm with the highest observed rate;
- :func:`prob_best` -- P(each arm has the highest rate) under Beta posteriors, by Monte Carlo,
  and :func:`prob_best_exact`, the same by numerical integration (scipy), to check it.

Both policies return a :class:`BanditRun`: sends and opens per run, day and arm; the regret
(expected opens lost against always sending to the best arm) and when each run settled on an
answer. Rates are the true open probabilities of the arms, known to the simulation only.
Every random function takes an explicit ``seed`` (an integer or a ``numpy.random.Generator``).

To compare policies, :func:`summary_table` reduces each run to the opens lost (with the range
of 95 % of runs) and how often and how soon it settled on the best arm, and
:func:`plot_regret` draws the regret as it accumulates and the share of traffic the best arm
gets, day by day (Chapter 4, "Bandits: learning while earning").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import integrate, stats

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng

__all__ = ["BanditRun", "thompson_sampling", "fixed_split", "prob_best", "prob_best_exact",
           "summary", "summary_table", "plot_regret"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else make_rng(seed)


def _check_rates(rates) -> np.ndarray:
    rates = np.asarray(rates, dtype=float)
    if rates.ndim != 1 or len(rates) < 2:
        raise ValueError(f"rates must be a 1-D array of at least two arms, got shape {rates.shape}")
    if not np.all((rates >= 0) & (rates <= 1)):  # also catches NaN
        raise ValueError(f"rates must be probabilities in [0, 1], got {rates.tolist()}")
    return rates


def _check_prior(prior) -> tuple[float, float]:
    if not isinstance(prior, (tuple, list)) or len(prior) != 2:
        raise ValueError(f"prior must be a pair (alpha, beta), got {prior!r}")
    alpha, beta = (check_finite(f"prior[{i}]", v) for i, v in enumerate(prior))
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"prior parameters must be positive, got {prior!r}")
    return alpha, beta


def _check_level(level) -> float:
    level = check_finite("level", level)
    if not 0.5 < level < 1:
        raise ValueError(f"level must be in (0.5, 1), got {level}")
    return level


@dataclass
class BanditRun:
    """What a policy did in each simulated run.

    Attributes
    ----------
    rates
        The arms' true rates.
    sends, opens
        Arrays of shape (runs, days, arms): sends to each arm, and how many were opened.
    answer
        Per run: the arm the policy settled on (-1 if it never did within the horizon).
    answer_day
        Per run: the day (1 = after the first day's outcomes) it settled; NaN if never.
    """

    rates: np.ndarray
    sends: np.ndarray
    opens: np.ndarray
    answer: np.ndarray
    answer_day: np.ndarray

    @property
    def regret(self) -> np.ndarray:
        """Expected opens lost each day against sending everything to the best arm: (runs, days)."""
        return self.sends @ (self.rates.max() - self.rates)

    @property
    def total_regret(self) -> np.ndarray:
        """Per run: the regret summed over the horizon."""
        return self.regret.sum(axis=1)

    @property
    def days_to_right_answer(self) -> np.ndarray:
        """Per run: the day it settled on the best arm; NaN if it settled on another or never."""
        right = self.answer == int(np.argmax(self.rates))
        return np.where(right, self.answer_day, np.nan)

    def totals(self, run: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """One run's opens and unopened sends per arm, summed over its days: the counts its
        final posteriors are built from (``prob_best(*run.totals(k), ...)``)."""
        run = check_int("run", run, minimum=0)
        if run >= len(self.sends):
            raise ValueError(f"run must be below the number of runs ({len(self.sends)}), got {run}")
        opened = self.opens[run].sum(axis=0)
        return opened, self.sends[run].sum(axis=0) - opened

    @property
    def share_to_best(self) -> np.ndarray:
        """Share of each day's sends that went to the best arm: (runs, days)."""
        return self.sends[:, :, int(np.argmax(self.rates))] / self.sends.sum(axis=2)


def _check_sizes(per_day, days, runs) -> tuple[int, int, int]:
    return (check_int("per_day", per_day, minimum=1), check_int("days", days, minimum=1),
            check_int("runs", runs, minimum=1))


def prob_best(successes, failures, *, prior=(1.0, 1.0), n_draws: int = 4000, seed) -> np.ndarray:
    """P(each arm has the highest rate) under independent Beta posteriors, by Monte Carlo.

    Arm ``k``'s posterior is Beta(prior_alpha + successes_k, prior_beta + failures_k).
    ``successes`` and ``failures`` have arms on the last axis; leading axes (e.g. runs) are
    kept, so one call serves many runs. The standard error of each probability is at most
    ``0.5 / sqrt(n_draws)``.
    """
    s, f = np.asarray(successes, dtype=float), np.asarray(failures, dtype=float)
    if s.shape != f.shape or s.ndim < 1 or s.shape[-1] < 2:
        raise ValueError(f"successes and failures need the same shape with >= 2 arms last, got {s.shape} and {f.shape}")
    if (s < 0).any() or (f < 0).any() or not np.isfinite(s + f).all():
        raise ValueError("successes and failures must be finite and non-negative")
    alpha, beta = _check_prior(prior)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    a, b = alpha + s[..., None, :], beta + f[..., None, :]
    draws = _rng(seed).beta(a, b, size=s.shape[:-1] + (n_draws, s.shape[-1]))
    best = draws.argmax(axis=-1)
    arms = np.arange(s.shape[-1])
    return (best[..., None] == arms).mean(axis=-2)


def prob_best_exact(successes, failures, *, prior=(1.0, 1.0)) -> np.ndarray:
    """P(each arm has the highest rate), by integrating ``pdf_k * prod_j cdf_j`` (scipy quad).

    For one set of arms (1-D inputs). Slow but free of sampling error: it checks
    :func:`prob_best` and :func:`thompson_sampling`'s allocation.
    """
    s, f = np.asarray(successes, dtype=float), np.asarray(failures, dtype=float)
    if s.shape != f.shape or s.ndim != 1 or len(s) < 2 or (s < 0).any() or (f < 0).any():
        raise ValueError("successes and failures must be 1-D, non-negative, the same length >= 2")
    alpha, beta = _check_prior(prior)
    posteriors = [stats.beta(alpha + sk, beta + fk) for sk, fk in zip(s, f)]
    result = []
    for k, arm in enumerate(posteriors):
        others = [p for j, p in enumerate(posteriors) if j != k]
        low, high = arm.ppf(1e-12), arm.ppf(1 - 1e-12)  # where the arm's density lives
        value, _ = integrate.quad(lambda x: arm.pdf(x) * np.prod([p.cdf(x) for p in others]),
                                  low, high, limit=200, epsabs=1e-10)
        result.append(value)
    return np.array(result)


def _split_evenly(per_day: int, arms: int, day: int) -> np.ndarray:
    counts = np.full(arms, per_day // arms)
    extra = (np.arange(arms) - day) % arms < per_day % arms  # the remainder rotates daily
    return counts + extra


def thompson_sampling(rates, *, per_day: int, days: int, runs: int, seed, prior=(1.0, 1.0),
                      level: float = 0.95, n_draws: int = 1000) -> BanditRun:
    """Batched Thompson sampling, in ``runs`` independent simulated runs at once.

    Each day, each of the ``per_day`` sends draws one rate per arm from the posteriors and goes
    to the arm with the highest draw; overnight its outcome (opened with the arm's true rate)
    updates that arm's Beta posterior. A run *settles* on an arm the first day the posterior
    probability that the arm is the best (:func:`prob_best`, ``n_draws`` draws) reaches
    ``level``; it keeps sampling afterwards (a bandit need not stop).

    Returns
    -------
    BanditRun
    """
    rates = _check_rates(rates)
    per_day, days, runs = _check_sizes(per_day, days, runs)
    alpha, beta = _check_prior(prior)
    level = _check_level(level)
    rng = _rng(seed)
    arms = len(rates)
    successes, failures = np.zeros((runs, arms)), np.zeros((runs, arms))
    sends, opens = np.zeros((runs, days, arms), dtype=int), np.zeros((runs, days, arms), dtype=int)
    answer, answer_day = np.full(runs, -1), np.full(runs, np.nan)
    offsets = arms * np.arange(runs)[:, None]
    for day in range(days):
        draws = rng.beta((alpha + successes)[:, None, :], (beta + failures)[:, None, :],
                         size=(runs, per_day, arms))
        chosen = draws.argmax(axis=2) + offsets
        sends[:, day] = np.bincount(chosen.ravel(), minlength=runs * arms).reshape(runs, arms)
        opens[:, day] = rng.binomial(sends[:, day], rates)
        successes += opens[:, day]
        failures += sends[:, day] - opens[:, day]
        sure = prob_best(successes, failures, prior=(alpha, beta), n_draws=n_draws, seed=rng)
        settles = (answer < 0) & (sure.max(axis=1) >= level)
        answer[settles], answer_day[settles] = sure[settles].argmax(axis=1), day + 1
    return BanditRun(rates, sends, opens, answer, answer_day)


def fixed_split(rates, *, per_day: int, days: int, test_days: int, runs: int, seed) -> BanditRun:
    """An A/B test over all arms: an equal split for ``test_days``, then ship the best-looking arm.

    During the test each day's sends are split as evenly as possible (the remainder rotates
    from day to day). After it, every send goes to the arm with the highest observed open rate
    (the first, on a tie): the run settles on that arm on day ``test_days``.

    Returns
    -------
    BanditRun
    """
    rates = _check_rates(rates)
    per_day, days, runs = _check_sizes(per_day, days, runs)
    test_days = check_int("test_days", test_days, minimum=1)
    if test_days > days:
        raise ValueError(f"test_days ({test_days}) cannot exceed days ({days})")
    rng = _rng(seed)
    arms = len(rates)
    sends = np.zeros((runs, days, arms), dtype=int)
    for day in range(test_days):
        sends[:, day] = _split_evenly(per_day, arms, day)
    opens = np.zeros_like(sends)
    opens[:, :test_days] = rng.binomial(sends[:, :test_days], rates)
    observed = opens[:, :test_days].sum(axis=1) / sends[:, :test_days].sum(axis=1)
    answer = observed.argmax(axis=1)
    for day in range(test_days, days):
        sends[np.arange(runs), day, answer] = per_day
        opens[:, day] = rng.binomial(sends[:, day], rates)
    return BanditRun(rates, sends, opens, answer, np.full(runs, float(test_days)))


# --------------------------------------------------------------------------- comparing policies


def _check_runs(runs) -> dict[str, BanditRun]:
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError(f"runs must be a non-empty dict name -> BanditRun, got {type(runs).__name__}")
    for name, run in runs.items():
        if not isinstance(run, BanditRun):
            raise TypeError(f"runs[{name!r}] must be a BanditRun, got {type(run).__name__}")
    shapes = {run.sends.shape[1:] for run in runs.values()}
    if len(shapes) != 1:
        raise ValueError(f"the runs must cover the same days and arms, got shapes (days, arms) {sorted(shapes)}")
    return dict(runs)


def summary(run: BanditRun) -> dict:
    """One policy's runs in five numbers.

    ``opens lost``: the mean total regret over the runs, with ``95% low`` and ``95% high``, the
    2.5th and 97.5th percentiles; ``share right``: the share of runs that settled on the best
    arm within the horizon; ``median day``: the median day they did (NaN if none did).
    """
    if not isinstance(run, BanditRun):
        raise TypeError(f"run must be a BanditRun, got {type(run).__name__}")
    regret, days = run.total_regret, run.days_to_right_answer
    right = ~np.isnan(days)
    return {"opens lost": regret.mean(), "95% low": np.percentile(regret, 2.5),
            "95% high": np.percentile(regret, 97.5), "share right": np.mean(right),
            "median day": np.median(days[right]) if right.any() else np.nan}


def summary_table(runs: Mapping[str, BanditRun]) -> pd.DataFrame:
    """:func:`summary` of each policy, one column per policy (the keys of ``runs``)."""
    return pd.DataFrame({name: summary(run) for name, run in _check_runs(runs).items()})


def plot_regret(runs: Mapping[str, BanditRun], *, test_days: int | None = None,
                arm_name: str = "arm", colors=None):
    """Two panels, one line per policy: the opens lost so far (median, band of 90 % of runs)
    and the median share of each day's sends that went to the best arm.

    ``test_days`` marks the end of a fixed split's test with a dotted line; ``arm_name`` names
    an arm in the labels (e.g. ``"window"``); ``colors`` has one colour per policy (default: the
    Okabe-Ito orange, blue, green...). Returns the figure.
    """
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import OKABE_ITO

    runs = _check_runs(runs)
    horizon = next(iter(runs.values())).sends.shape[1]
    if test_days is not None:
        test_days = check_int("test_days", test_days, minimum=1)
        if test_days > horizon:
            raise ValueError(f"test_days ({test_days}) cannot exceed the runs' {horizon} days")
    if not isinstance(arm_name, str) or not arm_name:
        raise ValueError(f"arm_name must be a non-empty string, got {arm_name!r}")
    palette = ["orange", "blue", "green", "vermillion", "sky", "purple"]
    colors = [OKABE_ITO[c] for c in palette] if colors is None else list(colors)
    if len(colors) < len(runs):
        raise ValueError(f"give one colour per policy: {len(runs)} policies, {len(colors)} colours")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    days = np.arange(1, horizon + 1)
    for (name, run), color in zip(runs.items(), colors):
        regret = run.regret.cumsum(axis=1)
        low, mid, high = np.percentile(regret, [5, 50, 95], axis=0)
        axes[0].fill_between(days, low, high, color=color, alpha=0.25, linewidth=0)
        axes[0].plot(days, mid, color=color, label=name)
        axes[1].plot(days, np.median(run.share_to_best, axis=0), color=color, label=name)
    if test_days is not None:
        axes[0].axvline(test_days, color="#999999", linestyle=":", linewidth=1)
    axes[0].set(xlabel="day", ylabel="opens lost so far\n(median, 5-95% of runs)")
    axes[1].set(xlabel="day", ylim=(0, 1.02),
                ylabel=f"share of the day's sends\nin the best {arm_name} (median)")
    axes[0].legend(loc="upper left")
    return fig
