"""Team-draft interleaving and the power simulations: hand cases, Monte Carlo, properties."""

import itertools

import numpy as np
import pytest
from scipy import stats

from mlsd.evaluation import interleaving as il

A = ["a", "b", "c", "d", "e"]
B = ["c", "d", "a", "e", "b"]


def test_team_draft_by_hand():
    # coins: A first in round 1, B first in round 2
    slate, teams = il._merge(A, B, 4, iter([True, False]))
    assert slate == ["a", "c", "d", "b"]
    assert teams == ["A", "B", "B", "A"]


@pytest.mark.parametrize("seed", range(20))
def test_team_draft_properties(seed):
    slate, teams = il.team_draft(A, B, 5, seed=seed)
    assert sorted(slate) == sorted(A)                     # every item once
    assert abs(teams.count("A") - teams.count("B")) <= 1  # balanced teams
    for team, ranking in (("A", A), ("B", B)):
        mine = [item for item, t in zip(slate, teams) if t == team]
        # each team's items are the best in its ranking among what was still free
        assert mine == sorted(mine, key=ranking.index)
    assert il.team_draft(A, B, 5, seed=seed) == (slate, teams)


def test_team_draft_first_item_is_a_top_item():
    for seed in range(10):
        slate, teams = il.team_draft(A, B, 2, seed=seed)
        assert set(slate) == {"a", "c"}


def test_credit_counts_clicks_per_team():
    assert il.credit(["A", "B", "B", "A"], [1, 0, 1, 1]) == (2, 1)
    with pytest.raises(ValueError):
        il.credit(["A", "B"], [1])
    with pytest.raises(ValueError):
        il.credit(["A", "C"], [1, 0])


def test_identical_rankers_tie_on_average():
    p = [0.3, 0.2, 0.5, 0.1, 0.4]
    a_wins, b_wins, tie = il.preference_probabilities(A, A, p, 3)
    assert a_wins == pytest.approx(b_wins)
    assert a_wins + b_wins + tie == pytest.approx(1)


def test_preference_probabilities_by_enumeration():
    p = dict(zip(A, [0.3, 0.2, 0.5, 0.1, 0.4]))
    expected = np.zeros(3)
    for coins in itertools.product((True, False), repeat=2):
        slate, teams = il._merge(A, B, 3, iter(coins))
        for clicks in itertools.product((0, 1), repeat=3):
            weight = np.prod([p[i] if c else 1 - p[i] for i, c in zip(slate, clicks)]) / 4
            ca, cb = il.credit(teams, clicks)
            expected[0 if ca > cb else 1 if cb > ca else 2] += weight
    assert np.allclose(il.preference_probabilities(A, B, p, 3), expected)


def test_preference_probabilities_match_a_simulation():
    p = dict(zip(A, [0.3, 0.2, 0.5, 0.1, 0.4]))
    rng = np.random.default_rng(0)
    counts = np.zeros(3)
    for _ in range(20_000):
        slate, teams = il.team_draft(A, B, 3, seed=rng)
        ca, cb = il.credit(teams, rng.random(3) < [p[i] for i in slate])
        counts[0 if ca > cb else 1 if cb > ca else 2] += 1
    assert np.abs(counts / 20_000 - il.preference_probabilities(A, B, p, 3)).max() < 0.01


def test_the_better_ranker_wins_more_often():
    p = dict(zip(A, [0.05, 0.05, 0.6, 0.5, 0.05]))  # B ranks c and d, the good items, first
    a_wins, b_wins, _ = il.preference_probabilities(A, B, p, 2)
    assert b_wins > a_wins


def test_clicks_distribution_is_binomial_when_probabilities_are_equal():
    assert np.allclose(il.clicks_distribution(A, [0.3] * 5, 3), stats.binom.pmf(range(4), 3, 0.3))
    short = il.clicks_distribution(["x"], [0.5], 3)
    assert np.allclose(short, [0.5, 0.5, 0, 0])


def test_power_without_a_difference_is_half_alpha():
    """Both tests count B found better, two-sided: alpha / 2 when nothing differs."""
    aa = il.interleaving_power((0.1, 0.1, 0.8), 5000, n_experiments=20_000, seed=0)
    ab = il.ab_power([0.7, 0.2, 0.1], [0.7, 0.2, 0.1], 2000, n_experiments=20_000, seed=0)
    band = 4 * np.sqrt(0.025 * 0.975 / 20_000)
    assert abs(aa - 0.025) < band and abs(ab - 0.025) < band


def test_ab_power_matches_the_normal_approximation():
    clicks_a, clicks_b = np.array([0.8, 0.15, 0.05]), np.array([0.78, 0.16, 0.06])
    values = np.arange(3)
    mean = [d @ values for d in (clicks_a, clicks_b)]
    var = [d @ values**2 - m**2 for d, m in zip((clicks_a, clicks_b), mean)]
    n = 6000
    expected = stats.norm.sf(1.96 - (mean[1] - mean[0]) / np.sqrt(sum(var) / n))
    assert il.ab_power(clicks_a, clicks_b, n, n_experiments=8000, seed=1) == pytest.approx(expected, abs=0.03)


def test_interleaving_power_grows_with_users():
    low = il.interleaving_power((0.09, 0.11, 0.8), 500, seed=0)
    high = il.interleaving_power((0.09, 0.11, 0.8), 8000, seed=0)
    assert low < 0.5 < high


@pytest.mark.parametrize("args", [
    (["a", "a"], ["a", "b"], 1),
    (["a", "b"], ["a", "c"], 1),
    (["a", "b"], ["b", "a"], 0),
])
def test_team_draft_rejects_bad_rankings(args):
    with pytest.raises((ValueError, TypeError)):
        il.team_draft(*args, seed=0)


def test_preference_rejects_bad_probabilities():
    with pytest.raises(ValueError):
        il.preference_probabilities(A, B, [0.1] * 4, 3)
    with pytest.raises(ValueError):
        il.preference_probabilities(A, B, [0.1, 0.2, 1.5, 0.1, 0.1], 3)
    with pytest.raises(ValueError):
        il.interleaving_power((0.5, 0.6, 0.1), 10, seed=0)
