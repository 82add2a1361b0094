"""Chapter 14's core plumbing on small hand-built graphs: the snapshot, friends-of-friends
candidates, pair features (against networkx and brute force), graph embeddings, the label,
ROC-AUC weighted by person and mAP per person."""

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlsd.cases import people_you_may_know as case
from mlsd.datasets import people_you_may_know as pk
from mlsd.datasets.world import World
from mlsd.evaluation.metrics import roc_auc

N = 41  # a random graph on 0..39 and one person with no friends (40)
DIM = 4
BLANK = pk.MISSING


def tiny_world(friendships: pd.DataFrame, users: pd.DataFrame, views: pd.DataFrame | None = None) -> World:
    views = pd.DataFrame({"viewer": [], "viewed": [], "week": [], "count": []}, dtype="int64") \
        if views is None else views
    return World(name="tiny", seed=0, summary="",
                 observed={"users": users, "friendships": friendships, "views": views}, hidden={})


def random_users(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    users = {"user_id": np.arange(n), "joined": np.zeros(n, dtype=np.int64)}
    for name, values in zip(pk.ATTRIBUTES, (4, 3, 2)):
        users[name] = np.where(rng.random(n) < 0.3, BLANK, rng.integers(0, values, n))
    return pd.DataFrame(users)


@pytest.fixture(scope="module")
def nx_graph():
    g = nx.gnp_random_graph(N - 1, 0.12, seed=3)
    g.add_node(N - 1)
    return g


@pytest.fixture(scope="module")
def world(nx_graph):
    edges = np.array(sorted(nx_graph.edges()))
    rng = np.random.default_rng(1)
    friendships = pd.DataFrame({"user_a": edges[:, 0], "user_b": edges[:, 1],
                                "week": rng.choice([0, 1], len(edges), p=[0.8, 0.2])})
    return tiny_world(friendships, random_users(N))


@pytest.fixture(scope="module")
def snap(world):
    return case.snapshot(world, 1)


@pytest.fixture(scope="module")
def embeddings(snap):
    return case.graph_embeddings(snap, dim=DIM)


@pytest.fixture(scope="module")
def all_pairs():
    a, b = np.triu_indices(N, 1)
    return pd.DataFrame({"user_a": a, "user_b": b})


@pytest.fixture(scope="module")
def features(snap, all_pairs, embeddings):
    return case.pair_features(snap, all_pairs, embeddings)


def friendships_of(edges, weeks=None) -> pd.DataFrame:
    edges = np.asarray(edges)
    weeks = np.zeros(len(edges), dtype=np.int64) if weeks is None else weeks
    return pd.DataFrame({"user_a": edges[:, 0], "user_b": edges[:, 1], "week": weeks})


# --------------------------------------------------------------------------- the snapshot


def test_snapshot_sees_the_graph_and_views_up_to_its_week():
    friendships = friendships_of([[0, 1], [1, 2], [2, 3]], weeks=[0, 1, 2])
    views = pd.DataFrame({"viewer": [0, 3, 1], "viewed": [2, 0, 3], "week": [0, 1, 2], "count": [1, 2, 3]})
    world = tiny_world(friendships, random_users(4), views)
    snap = case.snapshot(world, 1)
    assert snap.week == 1 and snap.users is world.observed["users"]
    assert sorted(zip(*snap.graph.nonzero())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    assert snap.degree.tolist() == [1, 2, 1, 0]
    assert snap.views["week"].tolist() == [0, 1] and list(snap.views.index) == [0, 1]
    assert case.snapshot(world, 0).graph.nnz == 2 and case.snapshot(world, 2).graph.nnz == 6
    # a later week needs the live weeks' rows
    later = pd.concat([friendships, friendships_of([[0, 3]], weeks=[3])], ignore_index=True)
    assert case.snapshot(world, 3, friendships=later).degree.tolist() == [2, 2, 2, 2]


def test_snapshot_refuses_a_week_past_the_data_and_bad_tables():
    world = tiny_world(friendships_of([[0, 1], [1, 2]], weeks=[0, 1]), random_users(3))
    with pytest.raises(ValueError, match="no friendships are known past week 1; pass the live weeks'"):
        case.snapshot(world, 2)
    with pytest.raises(ValueError, match="week must be >= 0"):
        case.snapshot(world, -1)
    with pytest.raises(TypeError, match="week must be an integer"):
        case.snapshot(world, 1.0)
    with pytest.raises(ValueError, match="friendships lacks the columns"):
        case.snapshot(world, 0, friendships=world.observed["friendships"].drop(columns="week"))
    with pytest.raises(ValueError, match="views lacks the columns"):
        case.snapshot(world, 0, views=pd.DataFrame({"viewer": [0]}))


# --------------------------------------------------------------------------- candidates


def test_friends_of_friends_on_hand_drawn_graphs():
    def graph(edges, n):
        return pk.adjacency(friendships_of(edges), n, 0)

    path = case.friends_of_friends(graph([[0, 1], [1, 2], [2, 3]], 4))
    assert list(path.columns) == ["user_a", "user_b"]
    assert list(zip(path["user_a"], path["user_b"])) == [(0, 2), (1, 3)]
    assert case.friends_of_friends(graph([[0, 1], [1, 2], [0, 2]], 3)).empty  # a triangle: all friends
    star = case.friends_of_friends(graph([[3, 0], [3, 1], [3, 2], [3, 4]], 5))
    assert list(zip(star["user_a"], star["user_b"])) == [(0, 1), (0, 2), (0, 4), (1, 2), (1, 4), (2, 4)]
    assert star["user_a"].dtype == np.int64 and star["user_b"].dtype == np.int64


def test_friends_of_friends_match_a_brute_force_enumeration(snap):
    friends = [set(snap.graph[i].indices) for i in range(N)]
    expected = sorted((i, j) for i in range(N) for j in range(i + 1, N)
                      if j not in friends[i] and friends[i] & friends[j])
    got = case.friends_of_friends(snap.graph)
    assert list(zip(got["user_a"], got["user_b"])) == expected
    assert len(expected) > 100
    assert list(got.index) == list(range(len(got)))


# --------------------------------------------------------------------------- pair features


def test_topology_features_match_networkx(snap, nx_graph, world, all_pairs, features):
    g = nx.Graph()  # the graph at the end of week 1: every edge of weeks 0 and 1
    g.add_nodes_from(range(N))
    f = world.observed["friendships"]
    g.add_edges_from(zip(f["user_a"], f["user_b"]))
    assert nx.utils.graphs_equal(g, nx_graph)
    pairs = list(zip(all_pairs["user_a"], all_pairs["user_b"]))
    common = [len(list(nx.common_neighbors(g, a, b))) for a, b in pairs]
    assert features["common_friends"].tolist() == common
    adamic_adar = [score for _, _, score in nx.adamic_adar_index(g, pairs)]
    assert np.allclose(features["adamic_adar"], adamic_adar, rtol=1e-12, atol=0)
    jaccard = [score for _, _, score in nx.jaccard_coefficient(g, pairs)]
    assert np.allclose(features["jaccard"], jaccard, rtol=1e-12, atol=0)
    degree = np.array([g.degree(i) for i in range(N)])
    a, b = all_pairs["user_a"].to_numpy(), all_pairs["user_b"].to_numpy()
    assert features["degree_min"].tolist() == np.minimum(degree[a], degree[b]).tolist()
    assert features["degree_max"].tolist() == np.maximum(degree[a], degree[b]).tolist()
    assert features["degree_sum"].tolist() == (degree[a] + degree[b]).tolist()
    assert list(features.columns) == list(case.FEATURES) and len(features) == len(all_pairs)
    assert np.isfinite(features.drop(columns=list(case.PROFILE)).to_numpy()).all()


def test_adamic_adar_floors_a_friend_s_degree_at_two():
    # 0 - 1 - 2 and a leaf 3 on 0; on the self-pair (0, 0) the leaf is a "common friend" of degree 1
    snap = case.snapshot(tiny_world(friendships_of([[0, 1], [1, 2], [0, 3]]), random_users(4)), 0)
    pairs = pd.DataFrame({"user_a": [0, 0], "user_b": [2, 0]})
    got = case.pair_features(snap, pairs, case.graph_embeddings(snap, dim=1))["adamic_adar"]
    assert got.tolist() == pytest.approx([1 / np.log(2), 1 / np.log(2) + 1 / np.log(2)])


def test_profile_features_are_blank_when_either_field_is(snap, all_pairs, features):
    users = snap.users
    a, b = all_pairs["user_a"].to_numpy(), all_pairs["user_b"].to_numpy()
    for name in pk.ATTRIBUTES:
        va, vb = users[name].to_numpy()[a], users[name].to_numpy()[b]
        got = features[f"same_{name}"].to_numpy()
        blank = (va == BLANK) | (vb == BLANK)
        assert np.isnan(got[blank]).all() and blank.any(), name
        assert np.array_equal(got[~blank], (va == vb)[~blank].astype(float)), name
        assert set(got[~blank]) == {0.0, 1.0}, name
    # two blanks are not a match
    users = pd.DataFrame({"user_id": [0, 1, 2], "joined": 0, "school": [BLANK, BLANK, 5],
                          "employer": [1, 1, 2], "city": [0, BLANK, 0]})
    snap = case.snapshot(tiny_world(friendships_of([[0, 1]]), users), 0)
    pairs = pd.DataFrame({"user_a": [0, 0], "user_b": [1, 2]})
    got = case.pair_features(snap, pairs, case.graph_embeddings(snap, dim=1))
    assert got["same_school"].isna().all()
    assert got["same_employer"].tolist() == [1.0, 0.0]
    assert np.isnan(got.loc[0, "same_city"]) and got.loc[1, "same_city"] == 1.0


def test_view_features_count_both_directions():
    views = pd.DataFrame({"viewer": [0, 1, 0, 2, 3, 0], "viewed": [1, 0, 1, 3, 2, 3],
                          "week": [1, 1, 0, 0, 1, 2], "count": [2, 3, 5, 1, 4, 7]})
    world = tiny_world(friendships_of([[0, 4], [1, 4], [2, 4], [3, 4]], weeks=[0, 0, 0, 2]),
                       random_users(5), views)
    snap = case.snapshot(world, 1)  # the week-2 view is in the future
    pairs = pd.DataFrame({"user_a": [0, 1, 2, 0, 0], "user_b": [1, 0, 3, 3, 2]})
    got = case.pair_features(snap, pairs, case.graph_embeddings(snap, dim=1))
    assert got["views_week"].tolist() == [5, 5, 4, 0, 0]
    assert got["views_all"].tolist() == [10, 10, 5, 0, 0]
    looked = np.array([2, 3, 0, 4, 0])  # profiles each looked at in week 1
    a, b = pairs["user_a"].to_numpy(), pairs["user_b"].to_numpy()
    assert got["viewing_sum"].tolist() == (looked[a] + looked[b]).tolist()
    assert got["viewing_min"].tolist() == np.minimum(looked[a], looked[b]).tolist()


def test_pair_features_refuse_unknown_users(snap, embeddings):
    with pytest.raises(ValueError, match=r"user ids must be in 0\.\.40"):
        case.pair_features(snap, pd.DataFrame({"user_a": [0], "user_b": [N]}), embeddings)
    with pytest.raises(ValueError, match="user ids must be in"):
        case.pair_features(snap, pd.DataFrame({"user_a": [-1], "user_b": [3]}), embeddings)
    with pytest.raises(ValueError, match="pairs lacks the columns"):
        case.pair_features(snap, pd.DataFrame({"user_a": [0]}), embeddings)


# --------------------------------------------------------------------------- embeddings


def test_graph_embeddings_have_the_stated_shapes_and_are_deterministic(snap, embeddings):
    width = DIM + sum(int(snap.users[name].max()) + 1 for name in pk.ATTRIBUTES)
    assert embeddings["spectral"].shape == (N, DIM)
    for hop in ("hop0", "hop1", "hop2"):
        assert embeddings[hop].shape == (N, width), hop
    again = case.graph_embeddings(snap, dim=DIM)
    assert sorted(again) == sorted(embeddings) == ["hop0", "hop1", "hop2", "spectral"]
    for name, values in embeddings.items():
        assert np.array_equal(values, again[name]), name  # the same bits, run after run
    with pytest.raises(ValueError, match="dim must be >= 1"):
        case.graph_embeddings(snap, dim=0)


def test_hop0_is_the_unit_spectral_vector_beside_the_one_hot_profile(snap, embeddings):
    hop0, spectral = embeddings["hop0"], embeddings["spectral"]
    norms = np.linalg.norm(hop0[:, :DIM], axis=1)
    has_friends = snap.degree > 0
    assert np.allclose(norms[has_friends], 1.0)
    assert np.allclose(hop0[:, :DIM] * np.linalg.norm(spectral, axis=1, keepdims=True), spectral)
    column = DIM
    for name in pk.ATTRIBUTES:
        values = snap.users[name].to_numpy()
        block = hop0[:, column: column + values.max() + 1]
        column += values.max() + 1
        assert np.array_equal(block.sum(axis=1), (values != BLANK).astype(float)), name  # blank: zeros
        filled = values != BLANK
        assert np.array_equal(block[filled].argmax(axis=1), values[filled]), name
    assert column == hop0.shape[1]


def test_hops_are_means_over_friends(snap, embeddings):
    for lower, upper in (("hop0", "hop1"), ("hop1", "hop2")):
        for person in range(N):
            friends = snap.graph[person].indices
            expected = embeddings[lower][friends].mean(axis=0) if len(friends) else 0.0
            assert np.allclose(embeddings[upper][person], expected), (upper, person)
    assert snap.degree[N - 1] == 0 and not embeddings["hop1"][N - 1].any()  # no friends: zeros


def test_spectral_columns_are_eigenvectors_scaled_by_their_eigenvalues(snap, embeddings):
    inverse_root = 1 / np.sqrt(np.maximum(snap.degree, 1.0))  # D^-1/2 A D^-1/2, dense
    normalized = snap.graph.toarray() * inverse_root[:, None] * inverse_root[None, :]
    top = np.sort(np.linalg.eigvalsh(normalized))[::-1][:DIM]
    spectral = embeddings["spectral"]
    scale = np.linalg.norm(spectral, axis=0)  # |eigenvalue| times a unit eigenvector
    assert np.allclose(scale, np.abs(top), atol=1e-8)
    assert np.allclose(normalized @ spectral, spectral * top, atol=1e-8)
    # the sign: each column's largest entry (in size) is positive
    assert (spectral[np.abs(spectral).argmax(axis=0), np.arange(DIM)] > 0).all()


def test_embedding_features_are_dot_products_and_cosines(embeddings, all_pairs, features):
    def cosine(u, v):
        norm = np.linalg.norm(u) * np.linalg.norm(v)
        return u @ v / norm if norm > 0 else 0.0

    spectral, hop1, hop2 = embeddings["spectral"], embeddings["hop1"], embeddings["hop2"]
    for k in range(0, len(all_pairs), 37):
        a, b = all_pairs.loc[k, "user_a"], all_pairs.loc[k, "user_b"]
        row = features.loc[k]
        assert row["spectral"] == pytest.approx(spectral[a] @ spectral[b], abs=1e-12)
        assert row["hop1"] == pytest.approx(cosine(hop1[a], hop1[b]), abs=1e-12)
        assert row["hop2"] == pytest.approx(cosine(hop2[a], hop2[b]), abs=1e-12)
        assert row["hop1_spectral"] == pytest.approx(hop1[a, :DIM] @ hop1[b, :DIM], abs=1e-12)
        assert row["hop1_profile"] == pytest.approx(cosine(hop1[a, DIM:], hop1[b, DIM:]), abs=1e-12)
    alone = features[(all_pairs["user_b"] == N - 1).to_numpy()]
    assert (alone["hop1"] == 0).all()  # no friends, no hop vector: a cosine of 0, not NaN


# --------------------------------------------------------------------------- the label


def test_became_friends_marks_the_week_s_new_pairs_in_either_order():
    friendships = friendships_of([[0, 1], [1, 2], [2, 3], [0, 3]], weeks=[0, 1, 1, 2])
    pairs = pd.DataFrame({"user_a": [2, 0, 2, 0, 1], "user_b": [1, 1, 3, 3, 3]})
    labels = case.became_friends(friendships, pairs, 1)
    assert labels.tolist() == [1, 0, 1, 0, 0] and labels.dtype == np.int64
    assert case.became_friends(friendships, pairs, 2).tolist() == [0, 0, 0, 1, 0]
    assert not case.became_friends(friendships, pairs, 3).any()
    assert len(case.became_friends(friendships, pairs.iloc[:0], 1)) == 0
    with pytest.raises(ValueError, match="week must be >= 1"):
        case.became_friends(friendships, pairs, 0)
    with pytest.raises(ValueError, match="pairs lacks the columns"):
        case.became_friends(friendships, pairs.drop(columns="user_b"), 1)


# --------------------------------------------------------------------------- the metrics


def scored_pairs(n_pairs=300, n_users=25, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_users, n_pairs)
    b = (a + rng.integers(1, n_users, n_pairs)) % n_users
    labels = (rng.random(n_pairs) < 0.3).astype(int)
    scores = labels + rng.normal(0, 1.2, n_pairs)
    return labels, (np.round(scores, 1) if ties else scores), a, b


def test_auc_scorer_with_every_weight_one_is_roc_auc():
    for ties in (True, False):
        labels, scores, a, b = scored_pairs(ties=ties)
        if ties:
            assert len(np.unique(scores)) < len(scores) / 3
        scorer = case.auc_scorer(labels, scores, a, b, 25)
        assert scorer(np.ones(25)) == pytest.approx(roc_auc(labels, scores), abs=1e-12)
        assert scorer(np.full(25, 3.0)) == pytest.approx(roc_auc(labels, scores), abs=1e-12)
    # all tied: one half
    assert case.auc_scorer([0, 1, 0, 1], [2.0] * 4, [0, 1, 2, 3], [1, 2, 3, 0], 4)(np.ones(4)) == 0.5


def test_auc_scorer_weighs_a_pair_by_its_two_people_as_scikit_learn_does():
    labels, scores, a, b = scored_pairs(seed=1)
    scorer = case.auc_scorer(labels, scores, a, b, 25)
    rng = np.random.default_rng(2)
    for _ in range(5):
        weights = rng.poisson(1.0, 25)  # a bootstrap over people: some counted twice, some not at all
        expected = roc_auc_score(labels, scores, sample_weight=(weights[a] + weights[b]) / 2)
        assert scorer(weights) == pytest.approx(expected, abs=1e-12)
    # counting a person twice is counting their pairs' half-weights twice
    weights = np.ones(25)
    weights[0] = 2
    duplicated = np.r_[np.arange(len(a)), np.flatnonzero((a == 0) | (b == 0))]
    half = np.r_[np.ones(len(a)), np.full(len(duplicated) - len(a), 0.5)]
    assert scorer(weights) == pytest.approx(roc_auc_score(labels[duplicated], scores[duplicated],
                                                          sample_weight=half), abs=1e-12)


@pytest.mark.parametrize("labels, scores, a, b, n_users, error, message", [
    ([0, 1, 1], [0.1, 0.2], [0, 1], [1, 2], 3, ValueError, "1-D arrays of one length"),
    ([0, 1], [0.1, 0.2], [0, 1], [1], 3, ValueError, "1-D arrays of one length"),
    ([[0, 1]], [[0.1, 0.2]], [[0, 1]], [[1, 2]], 3, ValueError, "1-D arrays of one length"),
    ([0, 1], [0.1, np.nan], [0, 1], [1, 2], 3, ValueError, "scores must be finite"),
    ([0, 1], [0.1, np.inf], [0, 1], [1, 2], 3, ValueError, "scores must be finite"),
    ([0, 1], [0.1, 0.2], [0, 1], [1, 0], 1, ValueError, "n_users must be >= 2"),
    ([0, 1], [0.1, 0.2], [0, 1], [1, 0], 3.0, TypeError, "n_users must be an integer"),
])
def test_auc_scorer_refuses_bad_pairs(labels, scores, a, b, n_users, error, message):
    with pytest.raises(error, match=message):
        case.auc_scorer(labels, scores, a, b, n_users)


def test_auc_scorer_refuses_bad_weights():
    scorer = case.auc_scorer([0, 1, 0, 1], [0.1, 0.4, 0.3, 0.2], [0, 1, 2, 3], [1, 2, 3, 0], 4)
    for weights in (np.ones(3), np.ones(5), np.ones((4, 1)), [1, 1, -1, 1]):
        with pytest.raises(ValueError, match="weights must be 4 non-negative numbers"):
            scorer(weights)
    # a resample without the people of every positive (or every negative) pair has no AUC
    two = case.auc_scorer([0, 1], [0.1, 0.2], [0, 2], [1, 3], 4)
    for weights in ([1, 1, 0, 0], [0, 0, 1, 1], np.zeros(4)):
        with pytest.raises(ValueError, match="needs both a positive and a negative"):
            two(weights)
    assert two([1, 0, 0, 1]) == 1.0  # each pair keeps half its weight
    assert scorer([1, 1, 1, 1]) == pytest.approx(roc_auc([0, 1, 0, 1], [0.1, 0.4, 0.3, 0.2]))


def test_auc_scorer_refuses_non_finite_weights():
    scorer = case.auc_scorer([0, 1, 0, 1], [0.1, 0.4, 0.3, 0.2], [0, 1, 2, 3], [1, 2, 3, 0], 4)
    for weights in ([np.nan, 1, 1, 1], [np.inf, 1, 1, 1]):
        with pytest.raises(ValueError, match="weights"):
            scorer(weights)


def test_auc_scorer_refuses_user_ids_out_of_range():
    for a in ([-1, 0], [3, 0]):
        with pytest.raises(ValueError):
            case.auc_scorer([0, 1], [0.1, 0.2], a, [1, 2], 3)


def average_precision_by_person(pairs: pd.DataFrame, labels, scores) -> float:
    """Brute force: each person's candidates (either side of a pair) by score, AP over their
    new friends, averaged over the people with one or more."""
    per_person = []
    for person in np.union1d(pairs["user_a"], pairs["user_b"]):
        mine = np.flatnonzero((pairs["user_a"] == person).to_numpy() | (pairs["user_b"] == person).to_numpy())
        ranked = np.asarray(labels)[mine][np.argsort(-np.asarray(scores)[mine])]
        if ranked.sum() == 0:
            continue
        hits = np.flatnonzero(ranked)
        per_person.append(np.mean([(k + 1) / (rank + 1) for k, rank in enumerate(hits)]))
    return float(np.mean(per_person))


def test_map_per_user_matches_a_brute_force_average_precision_per_person():
    for seed in range(3):
        labels, scores, a, b = scored_pairs(n_pairs=200, n_users=30, seed=seed, ties=False)
        pairs = pd.DataFrame({"user_a": a, "user_b": b})
        expected = average_precision_by_person(pairs, labels, scores)
        assert case.map_per_user(pairs, labels, scores) == pytest.approx(expected, abs=1e-12)


def test_map_per_user_by_hand():
    # person 0: candidates 1 (new friend, ranked 2nd) and 2 (ranked 1st) -> AP 1/2
    # person 1: only candidate 0 -> AP 1; person 2: no new friend -> left out; person 3: 4, AP 1
    pairs = pd.DataFrame({"user_a": [0, 0, 3], "user_b": [1, 2, 4]}, index=[10, 11, 12])
    assert case.map_per_user(pairs, [1, 0, 1], [0.1, 0.9, 0.5]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    # tied scores keep the rows' order
    assert case.map_per_user(pairs, [1, 0, 0], [0.5, 0.5, 0.5]) == pytest.approx(1.0)
    assert case.map_per_user(pairs, [0, 1, 0], [0.5, 0.5, 0.5]) == pytest.approx((0.5 + 1) / 2)
    with pytest.raises(ValueError, match="one length"):
        case.map_per_user(pairs, [1, 0], [0.1, 0.9, 0.5])
    with pytest.raises(ValueError, match="pairs lacks the columns"):
        case.map_per_user(pairs.drop(columns="user_a"), [1, 0, 1], [0.1, 0.9, 0.5])
