"""The people-you-may-know world (Chapter 14): schema and datasheet, a simple graph that only
grows, newcomers, views between non-friends, profiles that show the truth or a blank, the true
edge probability (its formula, its guards, its calibration, its ceiling), and the world
continued past week 2 (with a classmates campaign)."""

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mlsd import datasets
from mlsd.cases.people_you_may_know import core
from mlsd.datasets import people_you_may_know as pk
from mlsd.evaluation.metrics import roc_auc

K = pk.KNOBS
N = K["n_users"]
WEEKS = (0, pk.TRAIN_WEEK, pk.TEST_WEEK)
LIVE_WEEK = pk.TEST_WEEK + 1  # the first live week
CAMPAIGN = 2.0


@pytest.fixture(scope="module")
def world():
    return pk.generate(pk.DEFAULT_SEED)  # only for what the stored files do not keep


@pytest.fixture(scope="module")
def stored():
    return datasets.load(pk.NAME)  # the stored files at seed 0: the same tables, read fast


@pytest.fixture(scope="module")
def week2(stored):
    """Week 2's candidates (friends of friends at the end of week 1), labels and true probabilities."""
    snap = core.snapshot(stored, pk.TRAIN_WEEK)
    pairs = core.friends_of_friends(snap.graph)
    labels = core.became_friends(stored.observed["friendships"], pairs, pk.TEST_WEEK)
    p = pk.edge_probability(stored, pairs["user_a"], pairs["user_b"], pk.TEST_WEEK)
    return snap, pairs, labels, p


@pytest.fixture(scope="module")
def live(stored):
    return pk.live_weeks(stored, 1)


@pytest.fixture(scope="module")
def campaign(stored):
    return pk.live_weeks(stored, 1, campaign=CAMPAIGN, campaign_week=LIVE_WEEK)


def newcomers(world) -> np.ndarray:
    users = world.observed["users"]
    return users["user_id"].to_numpy()[users["joined"].to_numpy() == pk.TEST_WEEK]


def friend_sets(friendships: pd.DataFrame, week: int) -> list[set]:
    """Each user's friends at the end of ``week``, from the rows (no sparse algebra)."""
    friends = [set() for _ in range(N)]
    for a, b in friendships.loc[friendships["week"] <= week, ["user_a", "user_b"]].itertuples(index=False):
        friends[a].add(b)
        friends[b].add(a)
    return friends


def pair_keys(frame: pd.DataFrame, a="user_a", b="user_b") -> set:
    return set(zip(frame[a].tolist(), frame[b].tolist()))


def check_simple(friendships: pd.DataFrame) -> None:
    """No self loops, no pair twice, the smaller id first, ids in range."""
    a, b = friendships["user_a"].to_numpy(), friendships["user_b"].to_numpy()
    assert (a < b).all()
    assert a.min() >= 0 and b.max() < N
    assert not friendships.duplicated(["user_a", "user_b"]).any()


def check_views(views: pd.DataFrame, friendships: pd.DataFrame) -> None:
    """Views are positive counts, one row per (viewer, viewed, week), never between friends at
    the end of that week, and never by or of someone who has not joined yet."""
    assert list(views.columns) == ["viewer", "viewed", "week", "count"]
    assert (views["count"] > 0).all() and (views["viewer"] != views["viewed"]).all()
    assert not views.duplicated(["viewer", "viewed", "week"]).any()
    for week, rows in views.groupby("week"):
        graph = pk.adjacency(friendships, N, int(week))
        assert not np.asarray(graph[rows["viewer"].to_numpy(), rows["viewed"].to_numpy()]).any(), week


def within_binomial(hits, p, sds=4.0):
    """|observed count - expected count| within ``sds`` binomial standard deviations."""
    gap = abs(np.sum(hits) - np.sum(p))
    return gap <= sds * np.sqrt(np.sum(p * (1 - p))), (int(np.sum(hits)), float(np.sum(p)))


# -------------------------------------------------------------- schema and datasheet


def test_the_datasheet_and_dtypes_are_those_generate_makes(world, stored):
    assert datasets.GENERATORS[pk.NAME] == (pk.generate, pk.DEFAULT_SEED)
    assert stored.summary.strip() == world.datasheet().strip()  # the stored datasheet is up to date
    for kind in ("observed", "hidden"):
        for name, frame in getattr(world, kind).items():
            got = getattr(stored, kind)[name].dtypes.astype(str).to_dict()
            assert got == frame.dtypes.astype(str).to_dict(), name
    assert world.knobs == K and world.seed == stored.seed == pk.DEFAULT_SEED
    with pytest.raises(ValueError, match="seed must be >= 0"):
        pk.generate(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        pk.generate(1.0)


def test_every_column_is_described_and_no_hidden_column_is_observed(world):
    assert sorted(world.observed) == ["friendships", "users", "views"]
    assert sorted(world.hidden) == ["user_truth"]
    columns = {f"{t}.{c}" for kind in (world.observed, world.hidden) for t, f in kind.items()
               for c in f.columns}
    assert columns == set(world.columns)  # every column described, no stale description
    assert all(text.strip() for text in world.columns.values())
    hidden_only = set(world.hidden["user_truth"].columns) - {"user_id", *pk.ATTRIBUTES}
    for name, frame in world.observed.items():
        assert not hidden_only & set(frame.columns), name


def test_the_summary_states_the_tables_numbers(stored):
    users, friendships, views = (stored.observed[t] for t in ("users", "friendships", "views"))
    text = " ".join(stored.summary.split())
    per_week = friendships.groupby("week").size()
    old = (users["joined"] == 0).sum()
    assert f"{N:,} people in {K['n_communities']} hidden communities" in text
    assert f"they hold {per_week[0]:,} friendships, {2 * per_week[0] / old:.1f} friends per person" in text
    assert f"week 1 adds {per_week[1]:,} and week 2 {per_week[2]:,}" in text
    assert f"{K['newcomers']} people join in week 2" in text
    assert f"{views['count'].sum():,} profile views" in text
    assert f"school {(users['school'] == pk.MISSING).mean():.0%}" in text


def test_ids_and_values_are_the_stated_ones(stored):
    users, truth = stored.observed["users"], stored.hidden["user_truth"]
    assert list(users.columns) == ["user_id", "joined", *pk.ATTRIBUTES]
    assert np.array_equal(users["user_id"], np.arange(N))
    assert np.array_equal(truth["user_id"], np.arange(N))
    assert set(users["joined"]) == {0, pk.TEST_WEEK} and len(newcomers(stored)) == K["newcomers"]
    assert truth["community"].between(0, K["n_communities"] - 1).all()
    for name, knob in zip(pk.ATTRIBUTES, ("schools", "employers", "cities")):
        values = K[knob][0]
        assert truth[name].between(0, values - 1).all(), name  # the truth is never blank
        assert users[name].between(pk.MISSING, values - 1).all(), name
    friendships, views = stored.observed["friendships"], stored.observed["views"]
    assert list(friendships.columns) == ["user_a", "user_b", "week"]
    assert set(friendships["week"]) == set(WEEKS)
    assert set(views["week"]) == {0, pk.TRAIN_WEEK}  # the views of week 2 come with the live weeks


# -------------------------------------------------------------- the graph, newcomers, views


def test_the_graph_is_simple_and_only_grows(stored):
    friendships = stored.observed["friendships"]
    check_simple(friendships)
    edges = []
    for week in WEEKS:
        graph = pk.adjacency(friendships, N, week)
        assert (graph != graph.T).nnz == 0 and graph.diagonal().sum() == 0
        assert set(np.unique(graph.data)) == {1.0}
        edges.append(graph.nnz // 2)
    assert edges == np.cumsum(friendships.groupby("week").size()).tolist()
    # adjacency(week) keeps only the edges of weeks <= week
    graph = pk.adjacency(friendships, N, 0)
    new = friendships[friendships["week"] > 0]
    assert not np.asarray(graph[new["user_a"].to_numpy(), new["user_b"].to_numpy()]).any()
    with pytest.raises(ValueError, match="week must be >= 0"):
        pk.adjacency(friendships, N, -1)


def test_common_friends_counts_shared_friends(stored):
    friendships = stored.observed["friendships"]
    friends = friend_sets(friendships, 1)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, N, 300), rng.integers(0, N, 300)
    for k in range(100):  # and pairs two steps apart: a friend of a friend
        middle = min(friends[a[k]] or {a[k]})
        b[k] = max(friends[middle] - {a[k]} or {b[k]})
    got = pk.common_friends(pk.adjacency(friendships, N, 1), a, b)
    assert got.tolist() == [len(friends[x] & friends[y]) for x, y in zip(a, b)]
    assert (got[:100] > 0).mean() > 0.9


def test_newcomers_join_in_week_2_with_a_full_profile_and_no_past(stored):
    users, truth = stored.observed["users"], stored.hidden["user_truth"]
    friendships, views = stored.observed["friendships"], stored.observed["views"]
    joined = newcomers(stored)
    theirs = friendships[friendships["user_a"].isin(joined) | friendships["user_b"].isin(joined)]
    assert len(theirs) > 0 and (theirs["week"] == pk.TEST_WEEK).all()  # friends only from week 2
    assert not (views["viewer"].isin(joined) | views["viewed"].isin(joined)).any()
    for name in pk.ATTRIBUTES:  # the onboarding asks: every field filled in, and true
        assert np.array_equal(users[name].to_numpy()[joined], truth[name].to_numpy()[joined]), name


def test_views_are_never_between_friends_at_the_end_of_their_week(stored):
    views = stored.observed["views"]
    check_views(views, stored.observed["friendships"])
    # and yet they are about people: a viewed profile shares a friend far more often than chance
    week1 = views[views["week"] == 1]
    graph = pk.adjacency(stored.observed["friendships"], N, 1)
    shared = pk.common_friends(graph, week1["viewer"], week1["viewed"]) > 0
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, N, 5000), rng.integers(0, N, 5000)
    chance = (pk.common_friends(graph, a, b) > 0).mean()
    assert shared.mean() > max(0.5, 3 * chance), (shared.mean(), chance)


def test_the_profile_shows_the_truth_or_a_blank(stored):
    users, truth = stored.observed["users"], stored.hidden["user_truth"]
    old = users["joined"].to_numpy() == 0
    for name, knob in zip(pk.ATTRIBUTES, ("schools", "employers", "cities")):
        shown, true = users[name].to_numpy(), truth[name].to_numpy()
        filled = shown != pk.MISSING
        assert np.array_equal(shown[filled], true[filled]), name
        share, n = K[knob][2], old.sum()  # blank at the stated rate among the old users
        assert abs((~filled[old]).mean() - share) < 4 * np.sqrt(share * (1 - share) / n), name
    # the true school follows the community most of the time: its block of schools
    values, follow, _ = K["schools"]
    block = truth["community"].to_numpy() * values // K["n_communities"]
    inside = (truth["school"] >= block) & (truth["school"] < block + values // K["n_communities"])
    assert inside.mean() > follow - 0.03


# -------------------------------------------------------------- the truth: edge_probability


def test_edge_probability_is_the_stated_formula_on_hand_worked_pairs(stored):
    truth = stored.hidden["user_truth"].set_index("user_id")
    friendships = stored.observed["friendships"]
    joined = stored.observed["users"]["joined"].to_numpy()
    z = [f"z_{i}" for i in range(pk.LATENT_DIM)]
    young = int(newcomers(stored)[0])
    fof = core.friends_of_friends(pk.adjacency(friendships, N, 1)).iloc[[0, 500, 9000]]
    pairs = [(3, 1700), (10, 11), (young, 42), *fof.itertuples(index=False, name=None)]
    checked = 0
    for week in (pk.TRAIN_WEEK, pk.TEST_WEEK):
        friends = friend_sets(friendships, week - 1)
        for a, b in pairs:
            if b in friends[a]:
                continue
            ta, tb = truth.loc[a], truth.loc[b]
            shared = len(friends[a] & friends[b])
            logit = (K["base"] - 4 * ((ta[z] - tb[z]) ** 2).sum() / pk.LATENT_DIM
                     + ta["sociability"] + tb["sociability"] + K["common_friends"] * np.log1p(shared)
                     + sum(K["same"][name] * (ta[name] == tb[name]) for name in pk.ATTRIBUTES)
                     + K["newcomer_boost"] * (week in (joined[a], joined[b])))
            expected = 0.0 if max(joined[a], joined[b]) > week else 1 / (1 + np.exp(-logit))
            got = pk.edge_probability(stored, [a], [b], week)
            assert got[0] == pytest.approx(expected, rel=1e-9, abs=1e-15), (a, b, week)
            checked += 1
    assert checked >= 10
    # the campaign adds its weight to a shared true school, and to nothing else
    school = truth["school"].to_numpy()
    a, b = fof["user_a"].to_numpy(), fof["user_b"].to_numpy()
    friends = friend_sets(friendships, pk.TRAIN_WEEK)
    classmate = next(u for u in np.flatnonzero(school == school[3]) if u != 3 and u not in friends[3])
    a, b = np.r_[a, 3], np.r_[b, classmate]
    p0 = pk.edge_probability(stored, a, b, pk.TEST_WEEK)
    p1 = pk.edge_probability(stored, a, b, pk.TEST_WEEK, campaign=CAMPAIGN)
    lift = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    assert np.allclose(lift, CAMPAIGN * (school[a] == school[b]))
    assert (school[a] == school[b]).any() and (school[a] != school[b]).any()


def test_edge_probability_is_a_symmetric_probability(stored, week2):
    _, pairs, _, p = week2
    assert ((p > 0) & (p < 1)).all()
    assert p.min() < 1e-3 and p.max() > 0.3  # it ranks: some pairs are far likelier than others
    rng = np.random.default_rng(2)
    sample = pairs.iloc[rng.choice(len(pairs), 3000, replace=False)]
    a, b = sample["user_a"].to_numpy(), sample["user_b"].to_numpy()
    back = pk.edge_probability(stored, b, a, pk.TEST_WEEK)
    assert np.allclose(back, p[sample.index.to_numpy()], rtol=1e-12, atol=0)
    assert len(pk.edge_probability(stored, [], [], pk.TEST_WEEK)) == 0


def test_a_newcomer_has_probability_zero_before_joining_and_a_boost_on_joining(stored):
    joined = newcomers(stored)
    others = np.setdiff1d(np.arange(200), joined)[: len(joined)]
    assert not pk.edge_probability(stored, joined, others, pk.TRAIN_WEEK).any()
    assert not pk.edge_probability(stored, joined[:30], joined[30:], pk.TRAIN_WEEK).any()
    p2 = pk.edge_probability(stored, joined, others, pk.TEST_WEEK)
    p3 = pk.edge_probability(stored, joined, others, pk.TEST_WEEK + 1)  # one week later: no boost
    graph = pk.adjacency(stored.observed["friendships"], N, pk.TEST_WEEK)
    shared = pk.common_friends(graph, joined, others)  # their first week's friends, shared
    lift = np.log(p2 / (1 - p2)) - np.log(p3 / (1 - p3))
    assert np.allclose(lift, K["newcomer_boost"] - K["common_friends"] * np.log1p(shared))


@pytest.mark.parametrize("a, b, week, kwargs, error, message", [
    ([0, 1], [2], 2, {}, ValueError, "1-D arrays of one length"),
    ([[0, 1]], [[2, 3]], 2, {}, ValueError, "1-D arrays of one length"),
    ([0, -1], [2, 3], 2, {}, ValueError, r"distinct user ids in 0\.\.2999"),
    ([0, 1], [2, N], 2, {}, ValueError, "distinct user ids"),
    ([0, 5], [2, 5], 2, {}, ValueError, "distinct user ids"),
    ([0], [2], 0, {}, ValueError, "week must be >= 1"),
    ([0], [2], 2.0, {}, TypeError, "week must be an integer"),
    ([0], [2], 2, {"campaign": float("nan")}, ValueError, "campaign must be a finite number"),
])
def test_edge_probability_refuses_bad_input(stored, a, b, week, kwargs, error, message):
    with pytest.raises(error, match=message):
        pk.edge_probability(stored, a, b, week, **kwargs)


def test_edge_probability_refuses_pairs_already_friends(stored):
    friendships = stored.observed["friendships"]
    for week in WEEKS:
        rows = friendships[friendships["week"] == week].head(3)
        a, b = rows["user_a"].to_numpy(), rows["user_b"].to_numpy()
        # friends from the end of their week on: not before, whichever way round
        for later in range(max(week + 1, 1), pk.TEST_WEEK + 2):
            with pytest.raises(ValueError, match=f"already friends at the start of week {later}"):
                pk.edge_probability(stored, np.r_[0, b], np.r_[1, a], later)
        if week > 0:
            assert (pk.edge_probability(stored, a, b, week) > 0).all()


def test_the_week_s_friendships_are_draws_from_the_truth(week2):
    _, _, labels, p = week2
    ok, counts = within_binomial(labels, p)
    assert ok, counts
    # the likelier a pair by the truth, the likelier it befriended
    top = p > np.quantile(p, 0.99)
    assert labels[top].mean() > 20 * labels[~top].mean()


def test_friends_of_friends_hold_most_new_friendships(stored, week2):
    friendships = stored.observed["friendships"]
    for week in (pk.TRAIN_WEEK, pk.TEST_WEEK):
        pairs = week2[1] if week == pk.TEST_WEEK else core.friends_of_friends(
            pk.adjacency(friendships, N, week - 1))
        share = core.became_friends(friendships, pairs, week).sum() / (friendships["week"] == week).sum()
        assert 0.85 <= share < 1, (week, share)
    # the rest: the newcomers' (no friend to share yet) and a few pairs further apart
    new = friendships[friendships["week"] == pk.TEST_WEEK]
    graph = pk.adjacency(friendships, N, pk.TRAIN_WEEK)
    outside = new[pk.common_friends(graph, new["user_a"], new["user_b"]) == 0]
    assert len(outside) == len(new) - week2[2].sum()
    joined = newcomers(stored)
    assert (outside["user_a"].isin(joined) | outside["user_b"].isin(joined)).mean() > 0.3


def test_the_oracle_outranks_the_topology_features(week2):
    snap, pairs, labels, p = week2
    features = core.pair_features(snap, pairs)
    oracle = roc_auc(labels, p)
    common = roc_auc(labels, features["common_friends"])
    adamic_adar = roc_auc(labels, features["adamic_adar"])
    assert oracle > max(common, adamic_adar) + 0.03, (oracle, common, adamic_adar)
    assert min(common, adamic_adar) > 0.75  # and yet triadic closure alone ranks well


# --------------------------------------------------------------------------- the world goes on


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((0,), {}, ValueError, "n_weeks must be >= 1"),
    ((1.5,), {}, TypeError, "n_weeks must be an integer"),
    ((2,), {"campaign": 1.0}, ValueError, "together, or neither"),
    ((2,), {"campaign_week": 3}, ValueError, "together, or neither"),
    ((2,), {"campaign": 1.0, "campaign_week": 2}, ValueError, "campaign_week must be >= 3"),
    ((2,), {"campaign": 1.0, "campaign_week": 5}, ValueError, r"fall in the live weeks 3\.\.4"),
    ((2,), {"campaign": 1.0, "campaign_week": 3.0}, TypeError, "campaign_week must be an integer"),
    ((2,), {"campaign": float("inf"), "campaign_week": 3}, ValueError, "campaign must be a finite"),
])
def test_live_weeks_refuse_bad_arguments(stored, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        pk.live_weeks(stored, *args, **kwargs)


def test_live_weeks_return_only_the_new_rows_of_the_live_weeks(stored, live):
    friendships, views = live
    before = stored.observed["friendships"]
    assert list(friendships.columns) == list(before.columns)
    assert set(friendships["week"]) == {LIVE_WEEK} and set(views["week"]) == {pk.TEST_WEEK, LIVE_WEEK}
    everything = pd.concat([before, friendships], ignore_index=True)
    check_simple(everything)  # no new row repeats an old friendship
    check_views(views, everything)
    # about a week's worth, the newcomers now in the game (their views of week 2 are logged)
    assert 0.7 < len(friendships) / (before["week"] == pk.TEST_WEEK).sum() < 1.4
    joined = newcomers(stored)
    assert views["viewer"].isin(joined).any()
    # the stored world is untouched
    assert stored.observed["friendships"]["week"].max() == pk.TEST_WEEK
    assert set(stored.observed["views"]["week"]) == {0, pk.TRAIN_WEEK}


def test_a_classmates_campaign_adds_only_friendships_between_classmates(stored, live, campaign):
    school = stored.hidden["user_truth"]["school"].to_numpy()
    base, boosted = live[0], campaign[0]
    # the same draws: the campaign only raises probabilities, so it keeps every base friendship
    assert pair_keys(base) < pair_keys(boosted)
    extra = boosted[~boosted.set_index(["user_a", "user_b"]).index.isin(list(pair_keys(base)))]
    assert (school[extra["user_a"]] == school[extra["user_b"]]).all()

    def classmates(rows):
        return (school[rows["user_a"]] == school[rows["user_b"]]).mean()

    assert classmates(boosted) > classmates(base) + 0.2, (classmates(base), classmates(boosted))
    # the views of week 2 come before the campaign: the same in both runs
    assert_frame_equal(live[1][live[1]["week"] == pk.TEST_WEEK],
                       campaign[1][campaign[1]["week"] == pk.TEST_WEEK])
