"""Thompson sampling and the fixed split: checked against scipy, closed forms and properties."""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import special

from mlsd.evaluation import bandits

RATES = np.array([0.05, 0.08, 0.06])


def _two_arm_closed_form(a1, b1, a2, b2):
    """P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), a2 an integer (Miller, 2015)."""
    total = 0.0
    for i in range(int(a2)):
        total += math.exp(special.betaln(a1 + i, b1 + b2) - math.log(b2 + i)
                          - special.betaln(1 + i, b2) - special.betaln(a1, b1))
    return total


def test_prob_best_exact_matches_the_closed_form_for_two_arms():
    s, f = np.array([3, 7]), np.array([12, 9])
    exact = bandits.prob_best_exact(s, f)
    closed = _two_arm_closed_form(1 + 3, 1 + 12, 1 + 7, 1 + 9)
    assert exact[1] == pytest.approx(closed, abs=1e-8)
    assert exact.sum() == pytest.approx(1, abs=1e-8)


def test_prob_best_monte_carlo_agrees_with_integration():
    s, f = np.array([30, 41, 35]), np.array([470, 459, 465])
    mc = bandits.prob_best(s, f, n_draws=200_000, seed=0)
    exact = bandits.prob_best_exact(s, f)
    assert np.abs(mc - exact).max() < 4 * 0.5 / math.sqrt(200_000)


def test_prob_best_keeps_leading_axes_and_is_seeded():
    s = np.array([[1, 5], [5, 1]])
    f = np.array([[9, 5], [5, 9]])
    p = bandits.prob_best(s, f, n_draws=2000, seed=3)
    assert p.shape == (2, 2)
    assert np.allclose(p.sum(axis=1), 1)
    assert p[0, 1] > 0.5 and p[1, 0] > 0.5
    assert np.array_equal(p, bandits.prob_best(s, f, n_draws=2000, seed=3))


def test_thompson_first_day_is_uniform_under_the_flat_prior():
    run = bandits.thompson_sampling(RATES, per_day=30_000, days=1, runs=2, seed=0)
    share = run.sends[:, 0] / 30_000
    assert np.abs(share - 1 / 3).max() < 0.01


def test_thompson_allocation_is_probability_matching():
    """Day 2's share of sends per arm is P(arm is best) given day 1's outcomes (scipy)."""
    run = bandits.thompson_sampling([0.05, 0.052, 0.051], per_day=50_000, days=2, runs=1,
                                    seed=1)
    opened, sent = run.opens[0, 0], run.sends[0, 0]
    exact = bandits.prob_best_exact(opened, sent - opened)
    share = run.sends[0, 1] / 50_000
    assert exact.max() < 0.9  # the posteriors still overlap: a real test of the matching
    assert np.abs(share - exact).max() < 0.01


def test_thompson_learns_the_best_arm_and_beats_the_fixed_split():
    ts = bandits.thompson_sampling(RATES, per_day=2000, days=20, runs=20, seed=0)
    ab = bandits.fixed_split(RATES, per_day=2000, days=20, test_days=15, runs=20, seed=0)
    assert ts.share_to_best[:, -1].mean() > 0.8
    assert ts.total_regret.mean() < 0.5 * ab.total_regret.mean()
    assert (ts.answer[~np.isnan(ts.answer_day)] == 1).all()
    assert ts.sends.sum(axis=2).min() == 2000


def test_fixed_split_regret_during_the_test_is_the_equal_split_regret():
    run = bandits.fixed_split(RATES, per_day=3000, days=5, test_days=5, runs=3, seed=0)
    gaps = RATES.max() - RATES
    assert run.total_regret == pytest.approx(np.full(3, 5 * 1000 * gaps.sum()))
    assert (run.answer_day == 5).all()


def test_fixed_split_ships_the_best_looking_arm():
    run = bandits.fixed_split([0.01, 0.5], per_day=100, days=4, test_days=1, runs=5, seed=0)
    assert (run.answer == 1).all()
    assert (run.sends[:, 1:, 1] == 100).all() and (run.sends[:, 1:, 0] == 0).all()
    assert np.array_equal(run.days_to_right_answer, np.ones(5))
    assert (run.regret[:, 1:] == 0).all()


def test_runs_are_reproducible():
    a = bandits.thompson_sampling(RATES, per_day=100, days=3, runs=2, seed=7)
    b = bandits.thompson_sampling(RATES, per_day=100, days=3, runs=2, seed=7)
    assert np.array_equal(a.sends, b.sends) and np.array_equal(a.opens, b.opens)


@pytest.mark.parametrize("kwargs, error", [
    ({"rates": [0.1]}, ValueError),
    ({"rates": [0.1, 1.2]}, ValueError),
    ({"rates": [0.1, float("nan")]}, ValueError),
    ({"per_day": 0}, ValueError),
    ({"days": 2.5}, TypeError),
    ({"prior": (0, 1)}, ValueError),
    ({"level": 0.4}, ValueError),
])
def test_thompson_rejects_bad_arguments(kwargs, error):
    arguments = {"rates": RATES, "per_day": 10, "days": 2, "runs": 1, "seed": 0, **kwargs}
    with pytest.raises(error):
        bandits.thompson_sampling(**arguments)


def test_fixed_split_rejects_a_test_longer_than_the_horizon():
    with pytest.raises(ValueError, match="test_days"):
        bandits.fixed_split(RATES, per_day=10, days=3, test_days=4, runs=1, seed=0)


def test_prob_best_rejects_mismatched_counts():
    with pytest.raises(ValueError):
        bandits.prob_best([1, 2], [3], seed=0)
    with pytest.raises(ValueError):
        bandits.prob_best([1, -2], [3, 3], seed=0)


def test_summary_by_hand():
    run = bandits.fixed_split([0.01, 0.5], per_day=100, days=4, test_days=1, runs=5, seed=0)
    # every run ships the best arm after day 1: the regret is day 1's 50 sends to the worse arm
    assert bandits.summary(run) == pytest.approx({
        "opens lost": 50 * 0.49, "95% low": 50 * 0.49, "95% high": 50 * 0.49,
        "share right": 1.0, "median day": 1.0})


def test_summary_table_has_one_column_per_policy_and_nan_when_never_right():
    ts = bandits.thompson_sampling(RATES, per_day=50, days=2, runs=40, seed=0)
    ab = bandits.fixed_split(RATES, per_day=50, days=2, test_days=2, runs=40, seed=0)
    table = bandits.summary_table({"bandit": ts, "A/B": ab})
    assert list(table.columns) == ["bandit", "A/B"]
    assert list(table.index) == ["opens lost", "95% low", "95% high", "share right", "median day"]
    assert table.loc["95% low"].le(table.loc["opens lost"] + 1e-9).all()
    assert table.loc["opens lost"].le(table.loc["95% high"] + 1e-9).all()
    assert table.loc["opens lost", "A/B"] == pytest.approx(ab.total_regret.mean())
    never = bandits.fixed_split([0.5, 0.5000001], per_day=2, days=1, test_days=1, runs=3, seed=0)
    never.answer[:] = 0  # settled on the worse arm in every run
    assert np.isnan(bandits.summary(never)["median day"])
    assert bandits.summary(never)["share right"] == 0


def test_plot_regret_draws_both_panels():
    matplotlib.use("Agg")
    runs = {"bandit": bandits.thompson_sampling(RATES, per_day=50, days=5, runs=4, seed=0),
            "A/B": bandits.fixed_split(RATES, per_day=50, days=5, test_days=3, runs=4, seed=0)}
    fig = bandits.plot_regret(runs, test_days=3, arm_name="window")
    left, right = fig.axes
    assert len(left.get_lines()) == 3 and len(right.get_lines()) == 2  # 2 medians + test end
    assert "best window" in right.get_ylabel()
    assert left.get_lines()[0].get_ydata()[-1] == pytest.approx(
        np.median(runs["bandit"].regret.sum(axis=1)))
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("call, error, message", [
    (lambda: bandits.summary_table({}), TypeError, "non-empty dict"),
    (lambda: bandits.summary_table({"a": RATES}), TypeError, "BanditRun"),
    (lambda: bandits.summary([1, 2]), TypeError, "BanditRun"),
    (lambda: bandits.summary_table({
        "a": bandits.fixed_split(RATES, per_day=9, days=2, test_days=1, runs=1, seed=0),
        "b": bandits.fixed_split(RATES, per_day=9, days=3, test_days=1, runs=1, seed=0)}),
     ValueError, "same days"),
    (lambda: bandits.plot_regret({"a": bandits.fixed_split(
        RATES, per_day=9, days=2, test_days=1, runs=1, seed=0)}, test_days=3),
     ValueError, "test_days"),
    (lambda: bandits.plot_regret({"a": bandits.fixed_split(
        RATES, per_day=9, days=2, test_days=1, runs=1, seed=0)}, colors=[]),
     ValueError, "one colour per policy"),
])
def test_comparisons_reject_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_totals_are_one_runs_counts_over_its_days():
    run = bandits.thompson_sampling(RATES, per_day=40, days=3, runs=2, seed=0)
    opened, missed = run.totals(run=1)
    assert np.array_equal(opened, run.opens[1].sum(axis=0))
    assert np.array_equal(opened + missed, run.sends[1].sum(axis=0)) and (missed >= 0).all()
    with pytest.raises(ValueError, match="below the number of runs"):
        run.totals(run=2)
