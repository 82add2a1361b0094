"""Chapter 10's exercise plumbing: grid cells, facts as friends see them, the hidden taste per
pair, and the paired interval of a per-user difference."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import event_recommendation as case
from mlsd.datasets.event_recommendation import CATEGORIES


def test_cell_centres_by_hand():
    points = np.array([[0.0, 0.0], [4.99, 5.0], [12.3, 7.1], [-0.1, 2.5]])
    np.testing.assert_allclose(case.cell_centres(points, 5.0),
                               [[2.5, 2.5], [2.5, 7.5], [12.5, 7.5], [-2.5, 2.5]])


def test_a_cell_centre_is_never_farther_than_half_a_diagonal_and_is_idempotent():
    points = np.random.default_rng(0).uniform(0, 60, size=(1000, 2))
    centres = case.cell_centres(points, 5.0)
    assert np.hypot(*(points - centres).T).max() <= 5.0 / np.sqrt(2) + 1e-12
    np.testing.assert_array_equal(case.cell_centres(centres, 5.0), centres)
    assert len(np.unique(centres, axis=0)) <= 12 * 12


@pytest.mark.parametrize("points, cell, error, message", [
    (np.zeros((3, 2)), 0.0, ValueError, "cell_km must be a finite number > 0"),
    (np.zeros((3, 2)), float("nan"), ValueError, "cell_km must be a finite number > 0"),
    (np.zeros((3, 2)), "5", TypeError, "cell_km must be a number"),
    (np.zeros((3, 2)), True, TypeError, "cell_km must be a number"),
    (np.zeros(3), 5.0, ValueError, r"\(n, 2\) array"),
    (np.zeros((3, 3)), 5.0, ValueError, r"\(n, 2\) array"),
    (np.array([[0.0, np.inf]]), 5.0, ValueError, "finite"),
])
def test_cell_centres_refuses_bad_input(points, cell, error, message):
    with pytest.raises(error, match=message):
        case.cell_centres(points, cell)


def test_as_seen_by_friends_rekeys_each_fact_to_every_friend():
    friends = pd.DataFrame({"user_id": [0, 1, 0, 2], "friend_id": [1, 0, 2, 0]})
    facts = pd.DataFrame({"user_id": [0, 1, 3], "event_id": [7, 8, 9], "day": [1, 2, 3]})
    seen = case.as_seen_by_friends(facts, friends).sort_values(["event_id", "user_id"])
    assert seen[["user_id", "event_id", "day"]].values.tolist() == [
        [1, 7, 1], [2, 7, 1], [0, 8, 2]]   # user 3 has no friend: the fact is seen by nobody


@pytest.mark.parametrize("facts, friends, error, message", [
    (pd.DataFrame({"event_id": [1]}), pd.DataFrame({"user_id": [0], "friend_id": [1]}),
     ValueError, r"facts lacks the columns \['user_id'\]"),
    (pd.DataFrame({"user_id": [1]}), pd.DataFrame({"user_id": [0]}),
     ValueError, r"friends lacks the columns \['friend_id'\]"),
    (pd.DataFrame({"user_id": [1], "friend_id": [2]}),
     pd.DataFrame({"user_id": [0], "friend_id": [1]}), ValueError, "already has a friend_id"),
    ([1, 2], pd.DataFrame({"user_id": [0], "friend_id": [1]}), TypeError, "DataFrame"),
])
def test_as_seen_by_friends_refuses_bad_input(facts, friends, error, message):
    with pytest.raises(error, match=message):
        case.as_seen_by_friends(facts, friends)


@pytest.fixture
def small_world():
    taste = np.arange(3 * len(CATEGORIES), dtype=float).reshape(3, -1)
    table = pd.DataFrame(taste, columns=[f"taste_{c}" for c in CATEGORIES])
    table.insert(0, "user_id", [2, 0, 1])   # stored out of order: read by id
    return SimpleNamespace(hidden={"user_truth": table})


def test_true_taste_reads_the_users_taste_for_each_pairs_category(small_world):
    got = case.true_taste(small_world, [0, 2, 1, 0], [0, 3, 7, 7])
    # user 0 is the second stored row (8..15), user 2 the first (0..7), user 1 the third
    np.testing.assert_array_equal(got, [8.0, 3.0, 23.0, 15.0])
    np.testing.assert_array_equal(case.true_taste(small_world, np.array([1.0]), np.array([2.0])),
                                  [18.0])


@pytest.mark.parametrize("users, codes, message", [
    ([0, 3], [0, 0], r"user_ids must lie in 0..2"),
    ([0, 1], [0, 8], r"category_codes must lie in 0..7"),
    ([0, 1], [0], "one length"),
    ([0.5], [0], "whole numbers"),
])
def test_true_taste_refuses_bad_input(small_world, users, codes, message):
    with pytest.raises(ValueError, match=message):
        case.true_taste(small_world, users, codes)
    with pytest.raises(ValueError, match="no hidden user_truth"):
        case.true_taste(SimpleNamespace(hidden={}), [0], [0])


def test_user_difference_interval_holds_the_mean_difference_and_aligns_users():
    rng = np.random.default_rng(0)
    b = pd.Series(rng.random(400), index=np.arange(400))
    a = (b + 0.05 + rng.normal(0, 0.01, 400))[::-1]   # another order: aligned by user
    mean, low, high = case.user_difference_interval(a, b, seed=0)
    assert mean == pytest.approx(0.05, abs=0.002) and low < mean < high
    assert high - low < 0.005   # paired: the users' own spread cancels
    assert case.user_difference_interval(b, b, seed=0) == (0.0, 0.0, 0.0)
    assert case.user_difference_interval(a, b, seed=1) != (mean, low, high)


@pytest.mark.parametrize("a, b, error, message", [
    (pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0], index=[0, 5]), ValueError, "same users"),
    (pd.Series([1.0, np.nan]), pd.Series([1.0, 2.0]), ValueError, "not finite"),
    (np.array([1.0, 2.0]), pd.Series([1.0, 2.0]), TypeError, "Series"),
])
def test_user_difference_interval_refuses_bad_input(a, b, error, message):
    with pytest.raises(error, match=message):
        case.user_difference_interval(a, b, seed=0)
    with pytest.raises(ValueError, match="n_resamples"):
        case.user_difference_interval(pd.Series([1.0, 2.0]), pd.Series([1.0, 2.0]), seed=0,
                                    n_resamples=10)


def test_true_taste_on_the_shipped_world_matches_its_hidden_table():
    from mlsd.datasets import load

    world = load("event_recommendation", seed=0)
    truth = world.hidden["user_truth"].set_index("user_id")
    users, codes = np.array([0, 5, 1999, 5]), np.array([0, 7, 3, 2])
    expected = [truth.loc[u, f"taste_{CATEGORIES[c]}"] for u, c in zip(users, codes)]
    np.testing.assert_array_equal(case.true_taste(world, users, codes), expected)
