"""Interleaving: compare two rankers on the same users, with team-draft interleaving.

An A/B test shows each user one ranker's list and compares the two groups of users; most of
the noise it fights is how different users are (some open everything, most nothing).
Interleaving shows every user one list merged from both rankers and credits each click to
the ranker that contributed the item, so each user compares the two rankers against
themselves (Radlinski, Kurup & Joachims, 2008; Chapelle, Joachims, Radlinski & Yue, 2012).

- :func:`team_draft` -- the merge: in each round a coin decides which ranker picks first, and
  each picks its best item not yet shown;
- :func:`credit` -- the clicks each ranker earned in one merged list;
- :func:`preference_probabilities` -- for one user, the exact probabilities that ranker A
  wins, B wins or they tie, over the coins and independent clicks;
- :func:`clicks_distribution` -- for one user in an A/B test, the exact distribution of the
  number of clicks on one ranker's top ``k``;
- :func:`interleaving_power`, :func:`ab_power` -- the share of simulated experiments with
  ``n`` users that find ranker B better, from those per-user distributions.

And the plumbing around them: :func:`rank_by_user` turns scores into each user's ranking,
:func:`mean_distributions` averages the exact per-user distributions over a population,
:func:`power_curves` and :func:`users_needed` give both designs' power over a grid of
experiment sizes and the fewest users that reach a target, and :func:`plot_power` draws it.

Chapter 4 uses them to measure how many users each design needs to see the same difference.
Every random function takes an explicit ``seed`` (an integer, or a ``numpy.random.Generator``
that it advances).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng

__all__ = [
    "team_draft",
    "credit",
    "preference_probabilities",
    "clicks_distribution",
    "interleaving_power",
    "ab_power",
    "rank_by_user",
    "mean_distributions",
    "power_curves",
    "users_needed",
    "plot_power",
]

MAX_K = 20


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else make_rng(seed)


def _check_rankings(ranking_a, ranking_b, k) -> tuple[list, list, int]:
    a, b = list(ranking_a), list(ranking_b)
    for name, ranking in (("ranking_a", a), ("ranking_b", b)):
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"{name} lists an item twice: {ranking!r}")
    if set(a) != set(b):
        raise ValueError("ranking_a and ranking_b must rank the same items")
    k = check_int("k", k, minimum=1)
    if k > MAX_K:
        raise ValueError(f"k must be at most {MAX_K}, got {k}")
    return a, b, min(k, len(a))


def _merge(a: list, b: list, k: int, coins) -> tuple[list, list]:
    """Team-draft with the given coins (True: A picks first in that round)."""
    slate, teams, coins = [], [], iter(coins)
    picked = {"A": 0, "B": 0}
    while len(slate) < k:
        if picked["A"] == picked["B"]:
            order = ("A", "B") if next(coins) else ("B", "A")
        else:  # the team with fewer picks completes the round
            order = ("A",) if picked["A"] < picked["B"] else ("B",)
        for team in order:
            if len(slate) == k:
                break
            ranking = a if team == "A" else b
            slate.append(next(item for item in ranking if item not in slate))
            teams.append(team)
            picked[team] += 1
    return slate, teams


def team_draft(ranking_a, ranking_b, k: int, *, seed) -> tuple[list, list]:
    """Merge two rankings of the same items into one list of ``k`` by team-draft.

    Rounds go on until ``k`` items are chosen: a fair coin decides which ranker picks first in
    the round, then each ranker adds its highest-ranked item that is not already in the list.
    Each ranker therefore contributes half the items (one more, when ``k`` is odd and the coin
    favours it), and an item both rankers put first is credited to whichever picked it.

    Parameters
    ----------
    ranking_a, ranking_b
        The two rankers' orderings (best first) of the same items, with no repeats.
    k
        Length of the merged list (at most the number of items; at most 20).
    seed
        An integer seed or a ``numpy.random.Generator``.

    Returns
    -------
    (slate, teams)
        The merged list, and for each position ``"A"`` or ``"B"``: which ranker put it there.

    References
    ----------
    Radlinski, Kurup & Joachims (2008), "How does clickthrough data reflect retrieval
    quality?", *CIKM*.
    """
    a, b, k = _check_rankings(ranking_a, ranking_b, k)
    rng = _rng(seed)
    return _merge(a, b, k, (bool(rng.integers(2)) for _ in itertools.count()))


def credit(teams: Sequence[str], clicked) -> tuple[int, int]:
    """Clicks credited to ranker A and to ranker B in one merged list.

    ``teams`` is the second value :func:`team_draft` returns; ``clicked`` holds one 0/1 (or
    bool) per position. The user prefers the ranker with more credited clicks; equal credits
    (no click at all, most often) are a tie.
    """
    clicked = np.asarray(clicked)
    if len(clicked) != len(teams):
        raise ValueError(f"clicked has {len(clicked)} entries for {len(teams)} positions")
    if not np.isin(clicked, (0, 1)).all():
        raise ValueError("clicked must hold 0/1 or booleans")
    bad = set(teams) - {"A", "B"}
    if bad:
        raise ValueError(f"teams must be 'A' or 'B', got {sorted(bad)}")
    teams = np.asarray(teams)
    return int(clicked[teams == "A"].sum()), int(clicked[teams == "B"].sum())


def _check_p(p_click, items: list) -> dict:
    """``p_click`` as a dict item -> probability; a sequence is aligned with ``items``."""
    if not isinstance(p_click, dict):
        values = np.asarray(p_click, dtype=float)
        if values.shape != (len(items),):
            raise ValueError(f"p_click needs one probability per item ({len(items)}), "
                             f"got shape {values.shape}")
        p_click = dict(zip(items, values.tolist()))
    for item in items:
        if item not in p_click:
            raise ValueError(f"p_click has no probability for item {item!r}")
        p = check_finite(f"p_click[{item!r}]", p_click[item])
        if not 0 <= p <= 1:
            raise ValueError(f"p_click[{item!r}] must be in [0, 1], got {p}")
    return p_click


def preference_probabilities(ranking_a, ranking_b, p_click, k: int) -> tuple[float, float, float]:
    """For one user: the exact probabilities that A wins, B wins, and that they tie.

    Each item is clicked independently with its probability ``p_click`` (a dict item ->
    probability, or a sequence aligned with ``ranking_a``), whatever its position. The
    probabilities average over the team-draft coins (each sequence equally likely) and the
    clicks; the difference of credits is accumulated item by item, so the cost is small for
    any ``k`` up to 20.

    Returns
    -------
    (p_a_wins, p_b_wins, p_tie)
        Summing to 1.
    """
    a, b, k = _check_rankings(ranking_a, ranking_b, k)
    p = _check_p(p_click, a)
    rounds = (k + 1) // 2
    totals = [0.0, 0.0, 0.0]
    for coins in itertools.product((True, False), repeat=rounds):
        slate, teams = _merge(a, b, k, coins)
        # difference[d + k] = P(credit of B - credit of A = d), built one item at a time
        difference = [0.0] * (2 * k + 1)
        difference[k] = 1.0
        for item, team in zip(slate, teams):
            q, step = p[item], (1 if team == "B" else -1)
            moved = [0.0] * (2 * k + 1)
            for d, mass in enumerate(difference):
                if mass:
                    moved[d] += (1 - q) * mass
                    moved[d + step] += q * mass
            difference = moved
        totals[0] += sum(difference[:k])
        totals[1] += sum(difference[k + 1:])
        totals[2] += difference[k]
    return tuple(float(total / 2 ** rounds) for total in totals)


def clicks_distribution(ranking, p_click, k: int) -> np.ndarray:
    """For one user shown the top ``k`` of ``ranking``: P(0 clicks), ..., P(k clicks).

    Clicks are independent with probabilities ``p_click`` (a dict item -> probability, or a
    sequence aligned with ``ranking``): the Poisson-binomial distribution, by convolution.
    The array has ``k + 1`` entries even when the ranking is shorter than ``k``.
    """
    ranking = list(ranking)
    _, _, shown = _check_rankings(ranking, ranking, k)
    p = _check_p(p_click, ranking)
    pmf = np.array([1.0])
    for item in ranking[:shown]:
        pmf = np.convolve(pmf, [1 - p[item], p[item]])
    out = np.zeros(k + 1)
    out[:len(pmf)] = pmf
    return out


def _check_distribution(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or (values < 0).any() or not np.isclose(values.sum(), 1):
        raise ValueError(f"{name} must be a 1-D probability distribution (>= 0, summing to 1)")
    return values / values.sum()


def _critical(alpha) -> float:
    alpha = check_finite("alpha", alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


def interleaving_power(preference, n_users: int, *, n_experiments: int = 2000, alpha=0.05,
                       seed) -> float:
    """Share of simulated interleaving experiments with ``n_users`` that find B better.

    Each experiment draws how many of the ``n_users`` prefer A, prefer B or tie from
    ``preference`` = (P(A wins), P(B wins), P(tie)) for a random user (a multinomial draw), and
    runs the two-sided sign test on the users who preferred one ranker, in its normal
    approximation: ``z = (wins_B - wins_A) / sqrt(wins_B + wins_A)``. An experiment counts if
    ``z`` exceeds the two-sided critical value (B found better at level ``alpha``).
    """
    preference = _check_distribution("preference", preference)
    if len(preference) != 3:
        raise ValueError("preference must be (P(A wins), P(B wins), P(tie))")
    n_users = check_int("n_users", n_users, minimum=1)
    n_experiments = check_int("n_experiments", n_experiments, minimum=1)
    counts = _rng(seed).multinomial(n_users, preference, size=n_experiments)
    decided = counts[:, 0] + counts[:, 1]
    z = np.divide(counts[:, 1] - counts[:, 0], np.sqrt(decided),
                  out=np.zeros(n_experiments), where=decided > 0)
    return float(np.mean(z > _critical(alpha)))


def ab_power(clicks_a, clicks_b, n_per_arm: int, *, n_experiments: int = 2000, alpha=0.05,
             seed) -> float:
    """Share of simulated A/B tests with ``n_per_arm`` users per arm that find B better.

    ``clicks_a`` and ``clicks_b`` are the distributions of a random user's clicks in each arm
    (P(0 clicks), P(1 click), ...), e.g. averages of :func:`clicks_distribution` over users.
    Each experiment draws the clicks of every user of both arms (as multinomial counts) and
    compares the mean clicks per user with users as the units (Welch's z): it counts if B is
    found better at level ``alpha``, two-sided.
    """
    clicks_a, clicks_b = _check_distribution("clicks_a", clicks_a), _check_distribution("clicks_b", clicks_b)
    if len(clicks_a) != len(clicks_b):
        raise ValueError("clicks_a and clicks_b must cover the same numbers of clicks")
    n = check_int("n_per_arm", n_per_arm, minimum=2)
    n_experiments = check_int("n_experiments", n_experiments, minimum=1)
    rng = _rng(seed)
    values = np.arange(len(clicks_a), dtype=float)
    moments = []
    for distribution in (clicks_a, clicks_b):
        counts = rng.multinomial(n, distribution, size=n_experiments)
        mean = counts @ values / n
        moments.append((mean, (counts @ values**2 / n - mean**2) * n / (n - 1)))
    (mean_a, var_a), (mean_b, var_b) = moments
    se = np.sqrt((var_a + var_b) / n)
    z = np.divide(mean_b - mean_a, se, out=np.zeros(n_experiments), where=se > 0)
    return float(np.mean(z > _critical(alpha)))


# --------------------------------------------------------------------------- over a population


def rank_by_user(frame: pd.DataFrame, scores, *, user: str, item: str) -> pd.Series:
    """Each user's items, best score first: a Series indexed by user (sorted) of lists of items.

    ``scores`` holds one finite score per row of ``frame``; ``user`` and ``item`` name the
    columns that identify the user and the item.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in (user, item) if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}")
    scores = np.asarray(scores, dtype=float)
    if scores.shape != (len(frame),) or not np.isfinite(scores).all():
        raise ValueError(f"scores must hold {len(frame)} finite numbers, one per row, got shape {scores.shape}")
    scored = frame[[user, item]].assign(_score=scores)
    scored = scored.sort_values([user, "_score"], ascending=[True, False])
    return scored.groupby(user)[item].agg(list)


def mean_distributions(rankings_a, rankings_b, p_click, k: int):
    """The per-user distributions of :func:`preference_probabilities` and
    :func:`clicks_distribution`, averaged over a population of users.

    ``rankings_a`` and ``rankings_b`` hold one ranking per user, in the same order of users (two
    Series from :func:`rank_by_user` must have the same index); ``p_click`` maps every item to
    its click probability. A random user of the population is then described exactly.

    Returns
    -------
    (preference, clicks_a, clicks_b)
        ``(P(A wins), P(B wins), P(tie))`` for a random user, and the distributions of a random
        user's clicks (``k + 1`` entries) on A's top ``k`` and on B's: the inputs of
        :func:`interleaving_power` and :func:`ab_power`.
    """
    if isinstance(rankings_a, pd.Series) != isinstance(rankings_b, pd.Series) or (
            isinstance(rankings_a, pd.Series) and not rankings_a.index.equals(rankings_b.index)):
        raise ValueError("rankings_a and rankings_b must list the same users in the same order")
    rankings_a, rankings_b = list(rankings_a), list(rankings_b)
    if not rankings_a or len(rankings_a) != len(rankings_b):
        raise ValueError(f"give one ranking per user in each, got {len(rankings_a)} and {len(rankings_b)}")
    if not isinstance(p_click, dict):
        raise TypeError(f"p_click must be a dict item -> probability, got {type(p_click).__name__}")
    k = check_int("k", k, minimum=1)
    preference, clicks_a, clicks_b = np.zeros(3), np.zeros(k + 1), np.zeros(k + 1)
    for a, b in zip(rankings_a, rankings_b):
        preference += preference_probabilities(a, b, p_click, k)
        clicks_a += clicks_distribution(a, p_click, k)
        clicks_b += clicks_distribution(b, p_click, k)
    n = len(rankings_a)
    return preference / n, clicks_a / n, clicks_b / n


def power_curves(preference, clicks_a, clicks_b, users, *, n_experiments: int = 2000,
                 alpha=0.05, seed) -> pd.DataFrame:
    """Power of both designs at each experiment size in ``users`` (users in total).

    Column ``"interleaving"``: :func:`interleaving_power` with all the users; column ``"A/B
    test"``: :func:`ab_power` with half of them in each arm. One generator (``seed``) serves
    every experiment, the interleaving ones first.
    """
    users = np.asarray(users)
    if users.ndim != 1 or users.size == 0 or users.dtype.kind not in "iu":
        raise ValueError(f"users must be a non-empty 1-D array of integers, got {users!r}")
    if users.min() < 4:
        raise ValueError(f"every experiment needs at least 4 users (2 per A/B arm), got {users.min()}")
    rng = _rng(seed)
    options = dict(n_experiments=n_experiments, alpha=alpha, seed=rng)
    interleaved = [interleaving_power(preference, int(n), **options) for n in users]
    split = [ab_power(clicks_a, clicks_b, int(n) // 2, **options) for n in users]
    return pd.DataFrame({"interleaving": interleaved, "A/B test": split}, index=users)


def users_needed(power: pd.DataFrame, target: float = 0.8) -> pd.Series:
    """Per column of ``power`` (as from :func:`power_curves`), the fewest users whose power
    reaches ``target``; raises if a design never reaches it on the grid."""
    if not isinstance(power, pd.DataFrame) or power.empty:
        raise TypeError("power must be a non-empty DataFrame, one column per design")
    target = check_finite("target", target)
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1), got {target}")
    reached = power.ge(target)
    short = [name for name in power.columns if not reached[name].any()]
    if short:
        raise ValueError(f"{short} never reach power {target} on this grid: extend it")
    return reached.idxmax()


def plot_power(power: pd.DataFrame, *, target: float = 0.8, candidate: str = "B", colors=None):
    """Power against users (log scale), one line per design, a dotted line where each reaches
    ``target`` (:func:`users_needed`). ``candidate`` names the better ranker in the label.
    Returns the figure."""
    import matplotlib.pyplot as plt

    from mlsd.book.plotting import OKABE_ITO

    needed = users_needed(power, target)
    colors = [OKABE_ITO["orange"], OKABE_ITO["blue"], OKABE_ITO["green"]] if colors is None else list(colors)
    if len(colors) < power.shape[1]:
        raise ValueError(f"give one colour per design: {power.shape[1]} designs, {len(colors)} colours")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (name, column), color in zip(power.items(), colors):
        ax.plot(column.index, column, color=color, label=name)
        ax.axvline(needed[name], color=color, linestyle=":", linewidth=1)
    ax.axhline(target, color="#999999", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlabel="users in the experiment (both arms of the A/B test)",
           ylabel=f"power: share of experiments\nthat find {candidate} better", ylim=(0, 1.02))
    ax.legend(loc="upper left")
    return fig
