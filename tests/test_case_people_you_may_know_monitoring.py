"""Chapter 14's monitoring plumbing: the live weeks and each week's pairs (on a hand-built graph and
once on the stored world), undoing negative sampling, the weekly signals and the paired AUC gain."""

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mlsd.cases import people_you_may_know as package
from mlsd.cases.people_you_may_know import core
from mlsd.cases.people_you_may_know import monitoring as mon
from mlsd.datasets import load
from mlsd.datasets import people_you_may_know as pk
from mlsd.datasets.world import World
from mlsd.evaluation.metrics import roc_auc

BLANK = pk.MISSING
LIVE_WEEK = pk.TEST_WEEK + 1  # the first live week: 3


def users_with_schools(schools) -> pd.DataFrame:
    schools = np.asarray(schools, dtype=np.int64)
    return pd.DataFrame({"user_id": np.arange(len(schools)), "school": schools})


def week(number: int, edges, labels) -> mon.WeekPairs:
    """A hand-built week: its pairs and labels (the features are not read by the signals)."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    pairs = pd.DataFrame({"user_a": edges[:, 0], "user_b": edges[:, 1]})
    return mon.WeekPairs(number, pairs, pd.DataFrame(index=pairs.index), np.asarray(labels, dtype=np.int64))


def friendships_of(edges, weeks) -> pd.DataFrame:
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return pd.DataFrame({"user_a": edges[:, 0], "user_b": edges[:, 1], "week": np.asarray(weeks, np.int64)})


def pair_set(frame: pd.DataFrame) -> set:
    return set(zip(np.minimum(frame["user_a"], frame["user_b"]).tolist(),
                   np.maximum(frame["user_a"], frame["user_b"]).tolist()))


def test_the_package_exports_the_monitoring_names():
    for name in mon.__all__:
        assert getattr(package, name) is getattr(mon, name)


# --------------------------------------------------------------------------- live weeks and week pairs


@pytest.fixture(scope="module")
def tiny():
    """30 people: a random graph over weeks 0..2 (the log), week 3's friendships live; 29 has no friends."""
    n = 30
    rng = np.random.default_rng(7)
    a, b = np.triu_indices(n - 1, 1)
    drawn = rng.random(len(a)) < 0.12
    log = friendships_of(np.c_[a[drawn], b[drawn]], rng.choice([0, 1, 2], drawn.sum(), p=[0.7, 0.2, 0.1]))
    users = pd.DataFrame({"user_id": np.arange(n), "joined": 0, "school": rng.integers(0, 3, n),
                          "employer": rng.integers(0, 2, n), "city": np.where(rng.random(n) < 0.3, BLANK, 0)})
    views = pd.DataFrame({"viewer": [0, 3], "viewed": [5, 8], "week": [1, 2], "count": [2, 1]})
    world = World(name="tiny", seed=0, summary="", hidden={},
                  observed={"users": users, "friendships": log, "views": views})
    # week 3: five pairs that are friends of friends at the end of week 2, and two with the loner 29
    graph = pk.adjacency(log, n, 2)
    fof = core.friends_of_friends(graph)
    chosen = fof.iloc[rng.choice(len(fof), 5, replace=False)]
    new = friendships_of(np.r_[chosen.to_numpy(), [[0, 29], [4, 29]]], np.full(7, LIVE_WEEK))
    live = mon.LiveData(pd.concat([log, new], ignore_index=True), views, LIVE_WEEK)
    return world, live, chosen


def test_week_pairs_on_a_hand_built_graph(tiny):
    world, live, chosen = tiny
    n = len(world.observed["users"])
    wp = mon.week_pairs(world, live, LIVE_WEEK)
    assert wp.week == LIVE_WEEK and len(wp.pairs) == len(wp.X) == len(wp.y)
    # the candidates: every pair with a friend in common at the end of week 2 and not friends, by brute force
    friends = [set() for _ in range(n)]
    for a, b in zip(*live.friendships.query("week <= 2")[["user_a", "user_b"]].to_numpy().T):
        friends[a].add(b)
        friends[b].add(a)
    expected = sorted((i, j) for i in range(n) for j in range(i + 1, n) if j not in friends[i]
                      and friends[i] & friends[j])
    assert list(zip(wp.pairs["user_a"], wp.pairs["user_b"])) == expected
    # the labels: the week-3 friendships among them (the loner's two friendships are no candidates)
    positives = pair_set(wp.pairs[wp.y == 1])
    assert positives == pair_set(chosen) and wp.y.sum() == 5 and set(wp.y.tolist()) == {0, 1}
    # the features are the snapshot's at the end of week 2
    assert list(wp.X.columns) == list(core.FEATURES)
    common = [len(friends[a] & friends[b]) for a, b in expected]
    assert wp.X["common_friends"].tolist() == common
    # week 2's batch reads the log only, with week 2's labels
    earlier = mon.week_pairs(world, live, pk.TEST_WEEK)
    log_two = world.observed["friendships"].query("week == 2")
    assert pair_set(earlier.pairs[earlier.y == 1]) == pair_set(log_two) & pair_set(earlier.pairs)


def test_week_pairs_refuses_a_week_past_the_live_data(tiny):
    world, live, _ = tiny
    with pytest.raises(ValueError, match=r"week 4 is past the live data \(the last week is 3\)"):
        mon.week_pairs(world, live, LIVE_WEEK + 1)
    with pytest.raises(ValueError, match="week must be >= 1"):
        mon.week_pairs(world, live, 0)
    with pytest.raises(TypeError, match="week must be an integer"):
        mon.week_pairs(world, live, 3.0)


@pytest.fixture(scope="module")
def stored():
    return load(pk.NAME)


def test_live_data_and_week_pairs_on_the_stored_world(stored, monkeypatch):
    log_friendships, log_views = stored.observed["friendships"], stored.observed["views"]
    live = mon.live_data(stored, 1)
    assert isinstance(live, mon.LiveData) and live.last_week == LIVE_WEEK
    # the log's rows first, unchanged, then only the new weeks': friendships of week 3, views of weeks 2, 3
    k = len(log_friendships)
    pd.testing.assert_frame_equal(live.friendships.iloc[:k], log_friendships, check_dtype=False)
    assert len(live.friendships) > k and set(live.friendships["week"].iloc[k:]) == {LIVE_WEEK}
    assert list(live.friendships.index) == list(range(len(live.friendships)))
    v = len(log_views)
    pd.testing.assert_frame_equal(live.views.iloc[:v], log_views, check_dtype=False)
    assert set(live.views["week"].iloc[v:]) == {pk.TEST_WEEK, LIVE_WEEK}
    assert set(log_views["week"]) == {0, pk.TRAIN_WEEK}
    # a simple graph still: no friendship twice
    assert len(pair_set(live.friendships)) == len(live.friendships)

    # the features of 400,000 pairs take seconds (the hand-built test checks them): here, what they are fed
    seen = {}

    def features(snap, pairs):
        seen.update(snap=snap, pairs=pairs)
        return pd.DataFrame(index=pairs.index)

    monkeypatch.setattr(core, "pair_features", features)
    wp = mon.week_pairs(stored, live, LIVE_WEEK)
    assert wp.week == LIVE_WEEK and len(wp.pairs) == len(wp.X) == len(wp.y) > 100_000
    assert seen["pairs"] is wp.pairs and seen["snap"].week == pk.TEST_WEEK
    assert seen["snap"].views["week"].max() == pk.TEST_WEEK  # the live week-2 views, not the log's
    # the pairs two steps apart at the end of week 2 (common friends > 0) and not friends then, each once
    graph = pk.adjacency(live.friendships, len(stored.observed["users"]), pk.TEST_WEEK)
    two_steps = sparse.triu(graph @ graph, k=1).tocsr()
    two_steps = (two_steps - two_steps.multiply(graph)).tocoo()
    two_steps.eliminate_zeros()
    assert (seen["snap"].graph != graph).nnz == 0
    order = np.lexsort((two_steps.col, two_steps.row))
    assert np.array_equal(wp.pairs["user_a"], two_steps.row[order])
    assert np.array_equal(wp.pairs["user_b"], two_steps.col[order])
    # the labels are week 3's friendships: every one of them that was a candidate, and nothing else
    assert np.array_equal(wp.y, core.became_friends(live.friendships, wp.pairs, LIVE_WEEK))
    new = live.friendships[live.friendships["week"] == LIVE_WEEK]
    candidates = new[pk.common_friends(graph, new["user_a"], new["user_b"]) > 0]
    assert pair_set(wp.pairs[wp.y == 1]) == pair_set(candidates) and 0 < wp.y.sum() < len(new)

    with pytest.raises(ValueError, match="past the live data"):
        mon.week_pairs(stored, live, LIVE_WEEK + 1)


def test_live_data_checks_its_arguments_before_drawing(stored):
    with pytest.raises(ValueError, match="n_weeks must be >= 1"):
        mon.live_data(stored, 0)
    with pytest.raises(ValueError, match="campaign and campaign_week together"):
        mon.live_data(stored, 1, campaign=2.0)
    with pytest.raises(ValueError, match="campaign_week must fall in the live weeks"):
        mon.live_data(stored, 1, campaign=2.0, campaign_week=LIVE_WEEK + 1)


# --------------------------------------------------------------------------- undoing negative sampling


def test_undo_negative_sampling_inverts_the_odds_scaling():
    p_true = np.array([0.0, 1e-6, 0.001, 0.02, 0.3, 0.5, 0.9, 0.999, 1.0])
    for keep in (0.01, 0.1, 0.37, 1.0):
        # sampling the negatives multiplies the odds p / (1 - p) by 1 / keep
        sampled = p_true / (p_true + keep * (1 - p_true))
        assert np.allclose(mon.undo_negative_sampling(sampled, keep), p_true, rtol=1e-12, atol=1e-15), keep
    # the formula by hand: keep p / (keep p + 1 - p)
    assert mon.undo_negative_sampling(0.5, 0.25) == pytest.approx(0.2)
    assert mon.undo_negative_sampling(0.8, 0.1) == pytest.approx(0.08 / 0.28)


def test_undo_negative_sampling_recovers_a_simulated_rate():
    # pairs befriend with probability 2 %; a model fit on every positive and 10 % of the negatives
    # sees a rate of 0.02 / (0.02 + 0.1 x 0.98); undoing it gives back the population's 2 %
    rng = np.random.default_rng(0)
    p, keep = 0.02, 0.1
    y = rng.random(500_000) < p
    kept = y | (rng.random(len(y)) < keep)
    sampled_rate = y[kept].mean()
    assert sampled_rate == pytest.approx(p / (p + keep * (1 - p)), rel=0.05)
    assert float(mon.undo_negative_sampling(sampled_rate, keep)) == pytest.approx(p, rel=0.05)


def test_undo_negative_sampling_keep_one_is_the_identity_and_keep_lowers():
    p = np.linspace(0, 1, 101)
    assert np.allclose(mon.undo_negative_sampling(p, 1.0), p, rtol=1e-15, atol=1e-15)
    low = mon.undo_negative_sampling(p, 0.2)
    assert isinstance(low, np.ndarray) and low.shape == p.shape
    assert low[0] == 0.0 and low[-1] == pytest.approx(1.0, abs=1e-15)
    assert (low[1:-1] < p[1:-1]).all() and (np.diff(low) > 0).all()  # lower, and in the same order
    assert mon.undo_negative_sampling([[0.5, 0.5]], 0.5).shape == (1, 2)


def test_undo_negative_sampling_keeps_a_certain_pair_certain():
    # a probability comes back a probability: p = 1 stays 1 (and may go back in), whatever keep is
    for keep in (0.13, 0.2, 0.5):
        out = mon.undo_negative_sampling(1.0, keep)
        assert out <= 1.0, (keep, float(out))
        mon.undo_negative_sampling(out, keep)


@pytest.mark.parametrize("keep", [0.0, -0.1, 1.01, np.nan, np.inf])
def test_undo_negative_sampling_rejects_a_keep_outside_zero_one(keep):
    with pytest.raises(ValueError, match="keep"):
        mon.undo_negative_sampling([0.5], keep)


@pytest.mark.parametrize("p", [[-0.01, 0.5], [0.5, 1.01], [np.nan]])
def test_undo_negative_sampling_rejects_what_is_not_a_probability(p):
    with pytest.raises(ValueError, match=r"p must hold probabilities in \[0, 1\]"):
        mon.undo_negative_sampling(p, 0.5)


# --------------------------------------------------------------------------- weekly signals


USERS = users_with_schools([0, 0, 1, BLANK, BLANK, 1, 2, 2])
# week 3: made (0, 1) schoolmates, (3, 4) both blank, (1, 2) not; (2, 5) schoolmates but not made
WEEK3 = week(3, [[0, 1], [3, 4], [1, 2], [0, 5], [2, 5]], [1, 1, 1, 0, 0])
P3 = np.array([0.5, 0.2, 0.4, 0.1, 0.3])
# week 4: made (6, 7) schoolmates and (0, 3) one blank
WEEK4 = week(4, [[6, 7], [0, 3], [1, 5], [2, 6]], [1, 1, 0, 0])
P4 = np.array([0.9, 0.8, 0.1, 0.2])


def test_weekly_signals_by_hand():
    old = {3: np.array([0.9, 0.2, 0.5, 0.1, 0.6]), 4: np.array([0.3, 0.4, 0.35, 0.1])}
    new = {4: np.array([0.8, 0.7, 0.1, 0.2])}
    table = mon.weekly_signals({4: WEEK4, 3: WEEK3}, {3: P3, 4: P4}, {"old": old, "new": new}, USERS)
    assert table.index.tolist() == [3, 4] and table.index.name == "week"
    assert list(table.columns) == ["predicted", "made", "z", "schoolmates", "AUC old", "AUC new", "alarm"]
    assert table["predicted"].tolist() == pytest.approx([1.5, 2.0])
    assert table["made"].tolist() == [3, 2]
    z3 = (3 - 1.5) / np.sqrt(0.25 + 0.16 + 0.24 + 0.09 + 0.21)
    z4 = (2 - 2.0) / np.sqrt(0.09 + 0.16 + 0.09 + 0.16)
    assert table["z"].tolist() == pytest.approx([z3, z4])
    # the blank pair is no match: 1 of week 3's three friendships, 1 of week 4's two
    assert table["schoolmates"].tolist() == pytest.approx([1 / 3, 1 / 2])
    assert table.loc[3, "AUC old"] == pytest.approx(roc_auc(WEEK3.y, old[3]))
    assert table.loc[4, "AUC old"] == pytest.approx(roc_auc(WEEK4.y, old[4]))
    assert table.loc[4, "AUC new"] == 1.0 and np.isnan(table.loc[3, "AUC new"])  # new ran in week 4 only
    assert not table["alarm"].any()  # |z| = 1.54 < 3


def test_weekly_signals_alarm_on_the_threshold_and_without_scores():
    weeks, predicted = {3: WEEK3, 4: WEEK4}, {3: P3, 4: P4}
    table = mon.weekly_signals(weeks, predicted, {}, USERS, z=1.5)
    assert list(table.columns) == ["predicted", "made", "z", "schoolmates", "alarm"]
    assert table["alarm"].tolist() == [True, False]
    assert table["alarm"].tolist() == (table["z"].abs() > 1.5).tolist()
    assert not mon.weekly_signals(weeks, predicted, {}, USERS, z=1.6)["alarm"].any()
    # too few made: z is negative, and the alarm sees its size
    lower = mon.weekly_signals({3: WEEK3}, {3: np.full(5, 0.95)}, {}, USERS, z=1.5)
    assert lower.loc[3, "z"] < -1.5 and lower.loc[3, "alarm"]


def test_weekly_signals_schoolmates_is_blank_in_a_week_without_friendships():
    quiet = week(5, [[0, 1], [2, 5]], [0, 0])
    table = mon.weekly_signals({5: quiet}, {5: np.array([0.1, 0.2])}, {}, USERS)
    assert table.loc[5, "made"] == 0 and np.isnan(table.loc[5, "schoolmates"])
    assert table.loc[5, "z"] == pytest.approx(-0.3 / np.sqrt(0.09 + 0.16))


def test_weekly_signals_z_is_standard_normal_when_nothing_changes():
    rng = np.random.default_rng(1)
    n_users, n_pairs, n_weeks = 50, 3_000, 150
    users = users_with_schools(rng.integers(0, 3, n_users))
    weeks, predicted = {}, {}
    for w in range(n_weeks):
        edges = rng.integers(0, n_users, (n_pairs, 2))
        p = rng.beta(0.5, 20, n_pairs)
        weeks[w], predicted[w] = week(w, edges, rng.random(n_pairs) < p), p
    z = mon.weekly_signals(weeks, predicted, {}, users)["z"]
    assert abs(z.mean()) < 0.3 and 0.8 < z.std() < 1.2
    # the made friendships run 50 % above the model's: the z-scores and alarms follow
    # (some 73 expected a week, sd 8.4: 50 % more is some 4 sds)
    shifted = {w: week(w, weeks[w].pairs.to_numpy(), rng.random(n_pairs) < 1.5 * predicted[w])
               for w in range(n_weeks)}
    table = mon.weekly_signals(shifted, predicted, {}, users)
    assert 3 < table["z"].mean() < 6 and table["alarm"].mean() > 0.6


def test_weekly_signals_rejects_predictions_of_the_wrong_length():
    with pytest.raises(ValueError, match="week 3: 4 predictions for 5 pairs"):
        mon.weekly_signals({3: WEEK3}, {3: P3[:4]}, {}, USERS)
    with pytest.raises(ValueError, match="z must be a finite number"):
        mon.weekly_signals({3: WEEK3}, {3: P3}, {}, USERS, z=np.nan)


# --------------------------------------------------------------------------- the AUC gain


@pytest.fixture(scope="module")
def gain_week():
    """300 pairs among 60 people; ``after`` sees the pair's propensity better than ``before``."""
    rng = np.random.default_rng(3)
    n_users, n_pairs = 60, 300
    a = rng.integers(0, n_users - 1, n_pairs)
    b = a + 1 + rng.integers(0, n_users - 1 - a)
    signal = rng.normal(size=n_pairs)
    y = (rng.random(n_pairs) < 1 / (1 + np.exp(-(2 * signal - 1)))).astype(np.int64)
    before = signal + rng.normal(scale=2.0, size=n_pairs)
    after = signal + rng.normal(scale=0.3, size=n_pairs)
    return week(3, np.c_[a, b], y), before, after, n_users


def test_auc_gain_is_the_difference_of_the_aucs_and_its_interval_holds_it(gain_week):
    wp, before, after, n_users = gain_week
    gain, low, high = mon.auc_gain(wp, before, after, n_users, seed=0)
    assert gain == pytest.approx(roc_auc(wp.y, after) - roc_auc(wp.y, before), abs=1e-12)
    assert gain > 0.1 and 0 < low < gain < high < 1
    # the reverse comparison mirrors it: same draws, the gains negated
    back = mon.auc_gain(wp, after, before, n_users, seed=0)
    assert back == pytest.approx((-gain, -high, -low), abs=1e-12)


def test_auc_gain_of_a_system_over_itself_is_zero(gain_week):
    wp, before, _, n_users = gain_week
    assert mon.auc_gain(wp, before, before.copy(), n_users, seed=5) == (0.0, 0.0, 0.0)


def test_auc_gain_interval_is_seeded_and_narrows_with_the_level(gain_week):
    wp, before, after, n_users = gain_week
    first = mon.auc_gain(wp, before, after, n_users, seed=11)
    assert mon.auc_gain(wp, before, after, n_users, seed=11) == first
    other = mon.auc_gain(wp, before, after, n_users, seed=12)
    assert other[0] == first[0] and other[1:] != first[1:]
    # the same draws at a lower level: an interval inside the other
    half = mon.auc_gain(wp, before, after, n_users, seed=11, level=0.5)
    assert first[1] < half[1] < half[2] < first[2]
    wide = mon.auc_gain(wp, before, after, n_users, seed=11, n_resamples=400)
    assert wide[0] == first[0] and wide[1] < wide[0] < wide[2]


def test_auc_gain_rejects_few_resamples_and_a_bad_level(gain_week):
    wp, before, after, n_users = gain_week
    with pytest.raises(ValueError, match="n_resamples must be >= 100"):
        mon.auc_gain(wp, before, after, n_users, seed=0, n_resamples=99)
    with pytest.raises(TypeError, match="n_resamples must be an integer"):
        mon.auc_gain(wp, before, after, n_users, seed=0, n_resamples=200.0)
    for level in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match=r"level must be in \(0, 1\)"):
            mon.auc_gain(wp, before, after, n_users, seed=0, level=level)
    with pytest.raises(ValueError, match="level must be a finite number"):
        mon.auc_gain(wp, before, after, n_users, seed=0, level=np.nan)
    with pytest.raises(ValueError, match="one length"):
        mon.auc_gain(wp, before[:-1], after, n_users, seed=0)
