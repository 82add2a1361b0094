"""Team-draft interleaving and the power simulations: hand cases, Monte Carlo, properties."""

import itertools

import matplotlib
import numpy as np
import pandas as pd
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


def test_rank_by_user_sorts_each_users_items_by_score():
    frame = pd.DataFrame({"user": [2, 1, 2, 1, 2], "item": ["a", "b", "c", "d", "e"]})
    ranked = il.rank_by_user(frame, [0.1, 0.9, 0.5, 0.2, 0.3], user="user", item="item")
    assert ranked.to_dict() == {1: ["b", "d"], 2: ["c", "e", "a"]}
    with pytest.raises(ValueError, match="one per row"):
        il.rank_by_user(frame, [0.1, 0.2], user="user", item="item")
    with pytest.raises(ValueError, match="no column"):
        il.rank_by_user(frame, np.zeros(5), user="member", item="item")
    with pytest.raises(TypeError, match="DataFrame"):
        il.rank_by_user(frame.to_dict(), np.zeros(5), user="user", item="item")


def test_mean_distributions_average_the_users():
    p = dict(zip(A, [0.3, 0.2, 0.5, 0.1, 0.4]))
    other = ["e", "a", "b", "c", "d"]
    preference, clicks_a, clicks_b = il.mean_distributions([A, other], [B, A], p, 3)
    expected = (np.add(il.preference_probabilities(A, B, p, 3),
                       il.preference_probabilities(other, A, p, 3)) / 2)
    assert np.allclose(preference, expected) and preference.sum() == pytest.approx(1)
    assert np.allclose(clicks_a, (il.clicks_distribution(A, p, 3)
                                  + il.clicks_distribution(other, p, 3)) / 2)
    assert np.allclose(clicks_b, (il.clicks_distribution(B, p, 3)
                                  + il.clicks_distribution(A, p, 3)) / 2)


def test_mean_distributions_reject_misaligned_users():
    p = dict(zip(A, [0.3] * 5))
    with pytest.raises(ValueError, match="same users"):
        il.mean_distributions(pd.Series([A], index=[1]), pd.Series([B], index=[2]), p, 2)
    with pytest.raises(ValueError, match="one ranking per user"):
        il.mean_distributions([A, A], [B], p, 2)
    with pytest.raises(TypeError, match="dict"):
        il.mean_distributions([A], [B], [0.3] * 5, 2)


def test_power_curves_are_the_power_functions_with_one_generator():
    preference, clicks_a, clicks_b = (0.09, 0.11, 0.8), [0.8, 0.15, 0.05], [0.78, 0.16, 0.06]
    users = np.array([100, 1000])
    power = il.power_curves(preference, clicks_a, clicks_b, users, n_experiments=300, seed=4)
    rng = np.random.default_rng(4)
    expected = [il.interleaving_power(preference, n, n_experiments=300, seed=rng) for n in users]
    expected += [il.ab_power(clicks_a, clicks_b, n // 2, n_experiments=300, seed=rng) for n in users]
    assert list(power.columns) == ["interleaving", "A/B test"] and list(power.index) == [100, 1000]
    assert power.T.to_numpy().ravel().tolist() == expected
    with pytest.raises(ValueError, match="at least 4 users"):
        il.power_curves(preference, clicks_a, clicks_b, [2, 100], seed=0)
    with pytest.raises(ValueError, match="integers"):
        il.power_curves(preference, clicks_a, clicks_b, [10.5], seed=0)


def test_users_needed_is_the_first_size_reaching_the_target():
    power = pd.DataFrame({"x": [0.1, 0.85, 0.9], "y": [0.2, 0.5, 0.8]}, index=[10, 100, 1000])
    assert il.users_needed(power).to_dict() == {"x": 100, "y": 1000}
    with pytest.raises(ValueError, match=r"\['y'\] never reach"):
        il.users_needed(power, target=0.85)
    with pytest.raises(ValueError, match="target"):
        il.users_needed(power, target=1.5)


def test_plot_power_marks_where_each_design_reaches_the_target():
    matplotlib.use("Agg")
    power = pd.DataFrame({"x": [0.1, 0.85, 0.9], "y": [0.2, 0.5, 0.8]}, index=[10, 100, 1000])
    fig = il.plot_power(power, candidate="v2")
    ax = fig.axes[0]
    vertical = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert vertical == [100, 1000] and "find v2 better" in ax.get_ylabel()
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="one colour per design"):
        il.plot_power(power, colors=["red"])
