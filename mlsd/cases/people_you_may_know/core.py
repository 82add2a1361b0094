"""Chapter 14's core plumbing: a week's snapshot of the graph, its candidates and pair features.

The model (which features, which trees) and its evaluation are the lesson: they live in the
notebook. Here, what the chapter, the batch job and the monitors all compute the same way:

- **the snapshot**: :func:`snapshot` is what the app knows at the end of a week: the graph, the
  profiles, the views so far;
- **candidates**: :func:`friends_of_friends` lists every pair two steps apart and not friends,
  from one sparse product of the graph with itself;
- **features**: :func:`graph_embeddings` (a spectral embedding and its one- and two-hop means
  over friends, GraphSAGE's aggregation without learned weights) and :func:`pair_features`,
  every feature of a candidate pair;
- **the metric**: :func:`auc_scorer` scores ROC-AUC with each person counted a given number of
  times (a bootstrap over people); :func:`map_per_user` is mean average precision over the
  people who made a friend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.linalg import eigsh

from mlsd._checks import check_frame, check_int
from mlsd.datasets import people_you_may_know as pk

__all__ = ["TOPOLOGY", "PROFILE", "ACTIVITY", "EMBEDDING", "FEATURES", "Snapshot", "snapshot",
           "friends_of_friends", "graph_embeddings", "pair_features", "became_friends", "auc_scorer",
           "map_per_user"]

#: the features by family (the chapter adds them family by family)
TOPOLOGY = ("common_friends", "adamic_adar", "jaccard", "degree_min", "degree_max", "degree_sum")
PROFILE = tuple(f"same_{a}" for a in pk.ATTRIBUTES)
ACTIVITY = ("views_week", "views_all", "viewing_sum", "viewing_min")
EMBEDDING = ("spectral", "hop1", "hop2", "hop1_spectral", "hop1_profile")
FEATURES = TOPOLOGY + PROFILE + ACTIVITY + EMBEDDING


@dataclass
class Snapshot:
    """What the app knows at the end of ``week``: the graph (symmetric 0/1 CSR), profiles, views."""

    week: int
    graph: sparse.csr_matrix
    users: pd.DataFrame
    views: pd.DataFrame  # views of weeks <= week

    @property
    def degree(self) -> np.ndarray:
        return np.asarray(self.graph.sum(axis=1), dtype=float).ravel()


def snapshot(world, week: int, *, friendships: pd.DataFrame | None = None,
             views: pd.DataFrame | None = None) -> Snapshot:
    """The graph, profiles and views at the end of ``week`` (pass live weeks' rows for later weeks)."""
    week = check_int("week", week, minimum=0)
    friendships = world.observed["friendships"] if friendships is None else friendships
    views = world.observed["views"] if views is None else views
    check_frame("friendships", friendships, ("user_a", "user_b", "week"))
    check_frame("views", views, ("viewer", "viewed", "week", "count"))
    users = world.observed["users"]
    if week > friendships["week"].max():
        raise ValueError(f"no friendships are known past week {friendships['week'].max()}; "
                         f"pass the live weeks' to see week {week}")
    return Snapshot(week, pk.adjacency(friendships, len(users), week), users,
                    views[views["week"] <= week].reset_index(drop=True))


def friends_of_friends(graph: sparse.csr_matrix) -> pd.DataFrame:
    """Every pair (``user_a`` < ``user_b``) with a friend in common and not friends yet.

    One sparse product: ``(A @ A)[i, j]`` counts the paths of length two from ``i`` to ``j``,
    that is their common friends. Sorted by ``user_a`` then ``user_b``.
    """
    paths = sparse.triu(graph @ graph, k=1).tocoo()
    pairs = pd.DataFrame({"user_a": paths.row.astype(np.int64), "user_b": paths.col.astype(np.int64)})
    friends = np.asarray(graph[pairs["user_a"].to_numpy(), pairs["user_b"].to_numpy()]).ravel() > 0
    return pairs[~friends].sort_values(["user_a", "user_b"], ignore_index=True)


def _spectral(graph: sparse.csr_matrix, dim: int) -> np.ndarray:
    """The top ``dim`` eigenvectors of D^-1/2 A D^-1/2, each scaled by its eigenvalue."""
    inverse_root = sparse.diags(1.0 / np.sqrt(np.maximum(np.asarray(graph.sum(axis=1)).ravel(), 1.0)))
    n = graph.shape[0]
    # a fixed start vector: ARPACK's default is random, and the embedding must not change per run
    values, vectors = eigsh(inverse_root @ graph @ inverse_root, k=dim, which="LA", v0=np.full(n, n ** -0.5))
    order = np.argsort(-values)
    vectors = vectors[:, order] * values[order]
    return vectors * np.where(vectors[np.abs(vectors).argmax(axis=0), np.arange(dim)] < 0, -1.0, 1.0)


def _one_hot_profile(users: pd.DataFrame) -> np.ndarray:
    blocks = []
    for name in pk.ATTRIBUTES:
        values = users[name].to_numpy()
        block = np.zeros((len(users), int(values.max()) + 1))
        known = values != pk.MISSING
        block[np.flatnonzero(known), values[known]] = 1.0
        blocks.append(block)
    return np.hstack(blocks)


def _mean_over_friends(graph: sparse.csr_matrix, h: np.ndarray) -> np.ndarray:
    degree = np.asarray(graph.sum(axis=1)).ravel()
    return (graph @ h) / np.maximum(degree, 1.0)[:, None]


def graph_embeddings(snap: Snapshot, dim: int = 16) -> dict[str, np.ndarray]:
    """Each person as vectors: ``spectral`` (``dim`` numbers), and ``hop0``, ``hop1``, ``hop2``.

    ``hop0`` is the person's own unit-length spectral vector beside their profile as one-hot
    columns (blank fields are zeros); ``hop1`` is the mean of their friends' ``hop0`` and
    ``hop2`` the mean of their friends' ``hop1``: GraphSAGE's mean aggregator, two layers deep,
    without the learned weights (the gradient boosting downstream weighs the similarities).
    A friend's profile fills in a blank one: a person who left their school blank but whose
    friends went to one school likely did too.
    """
    dim = check_int("dim", dim, minimum=1)
    spectral = _spectral(snap.graph, dim)
    norm = np.linalg.norm(spectral, axis=1, keepdims=True)
    hop0 = np.hstack([spectral / np.maximum(norm, 1e-12), _one_hot_profile(snap.users)])
    hop1 = _mean_over_friends(snap.graph, hop0)
    return {"spectral": spectral, "hop0": hop0, "hop1": hop1, "hop2": _mean_over_friends(snap.graph, hop1)}


def _dot(h: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``h[a[k]] . h[b[k]]`` for every pair: one product of the people's vectors (thousands),
    then a lookup per pair, instead of gathering a vector for each of the 400,000 pairs."""
    return (h @ h.T)[a, b]


def _cosine(h: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(h, axis=1, keepdims=True)
    return _dot(np.divide(h, norm, out=np.zeros_like(h), where=norm > 0), a, b)


def _view_counts(views: pd.DataFrame, n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Views between ``a[k]`` and ``b[k]``, both directions."""
    matrix = sparse.csr_matrix((views["count"].to_numpy(dtype=float),
                                (views["viewer"].to_numpy(), views["viewed"].to_numpy())), shape=(n, n))
    matrix = matrix + matrix.T  # duplicate entries are summed
    return np.asarray(matrix[a, b]).ravel()


def pair_features(snap: Snapshot, pairs: pd.DataFrame, embeddings: dict | None = None) -> pd.DataFrame:
    """Every feature of :data:`FEATURES` for each pair, as of the snapshot's week.

    Topology: common friends, Adamic-Adar (common friends weighted 1 / log degree), Jaccard
    and the two degrees. Profile: 1 if both filled in the field and it matches, 0 if it does
    not, NaN if either left it blank. Activity: views between the two in the week and in all
    weeks so far, and how many profiles each looked at in the week. Embedding: the spectral
    vectors' dot product and the cosine of the hop vectors (:func:`graph_embeddings`).
    """
    check_frame("pairs", pairs, ("user_a", "user_b"))
    a, b = pairs["user_a"].to_numpy(np.int64), pairs["user_b"].to_numpy(np.int64)
    n = snap.graph.shape[0]
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n):
        raise ValueError(f"user ids must be in 0..{n - 1}")
    embeddings = graph_embeddings(snap) if embeddings is None else embeddings
    degree = snap.degree
    shared = snap.graph[a].multiply(snap.graph[b])
    common = np.asarray(shared.sum(axis=1), dtype=float).ravel()
    adamic_adar = np.asarray(shared @ (1.0 / np.log(np.maximum(degree, 2.0)))).ravel()
    union = degree[a] + degree[b] - common
    f = {"common_friends": common, "adamic_adar": adamic_adar,
         "jaccard": np.divide(common, union, out=np.zeros_like(common), where=union > 0),
         "degree_min": np.minimum(degree[a], degree[b]), "degree_max": np.maximum(degree[a], degree[b]),
         "degree_sum": degree[a] + degree[b]}
    for name in pk.ATTRIBUTES:
        va, vb = snap.users[name].to_numpy()[a], snap.users[name].to_numpy()[b]
        blank = (va == pk.MISSING) | (vb == pk.MISSING)
        f[f"same_{name}"] = np.where(blank, np.nan, (va == vb).astype(float))
    this_week = snap.views[snap.views["week"] == snap.week]
    looked = np.bincount(this_week["viewer"], weights=this_week["count"], minlength=n)
    f |= {"views_week": _view_counts(this_week, n, a, b), "views_all": _view_counts(snap.views, n, a, b),
          "viewing_sum": looked[a] + looked[b], "viewing_min": np.minimum(looked[a], looked[b])}
    spectral, hop1 = embeddings["spectral"], embeddings["hop1"]
    dim = spectral.shape[1]
    f |= {"spectral": _dot(spectral, a, b),
          "hop1": _cosine(hop1, a, b), "hop2": _cosine(embeddings["hop2"], a, b),
          "hop1_spectral": _dot(hop1[:, :dim], a, b),
          "hop1_profile": _cosine(hop1[:, dim:], a, b)}
    return pd.DataFrame(f, columns=list(FEATURES))


def became_friends(friendships: pd.DataFrame, pairs: pd.DataFrame, week: int) -> np.ndarray:
    """1 where the pair became friends in ``week``, else 0 (the label)."""
    week = check_int("week", week, minimum=1)
    check_frame("pairs", pairs, ("user_a", "user_b"))
    new = friendships[friendships["week"] == week]
    key = np.minimum(new["user_a"], new["user_b"]).to_numpy(np.int64) * 2**32 + np.maximum(
        new["user_a"], new["user_b"]).to_numpy(np.int64)
    a, b = pairs["user_a"].to_numpy(np.int64), pairs["user_b"].to_numpy(np.int64)
    return np.isin(np.minimum(a, b) * 2**32 + np.maximum(a, b), key).astype(np.int64)


def auc_scorer(labels, scores, user_a, user_b, n_users: int):
    """A function ``weights -> ROC-AUC`` with person ``u`` counted ``weights[u]`` times.

    For a bootstrap over people (:func:`mlsd.evaluation.headline.resampled_intervals`): a pair
    counts as the mean of its two people's weights. The negatives are sorted once and each
    positive's place among them found once, so a resample costs one cumulative sum of the
    negatives' weights; a negative tied with a positive counts one half, as in
    :func:`mlsd.evaluation.metrics.roc_auc`, which it equals with every weight 1.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=float)
    a, b = np.asarray(user_a, dtype=np.int64), np.asarray(user_b, dtype=np.int64)
    if not (y.shape == s.shape == a.shape == b.shape) or y.ndim != 1:
        raise ValueError("labels, scores, user_a and user_b must be 1-D arrays of one length")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    n_users = check_int("n_users", n_users, minimum=2)
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n_users):
        raise ValueError(f"user ids must be in 0..{n_users - 1}")
    negative, positive = ~y, y
    if not positive.any() or not negative.any():
        raise ValueError("ROC-AUC needs both a positive and a negative pair")
    order = np.argsort(s[negative], kind="stable")
    neg_a, neg_b, neg_s = a[negative][order], b[negative][order], s[negative][order]
    pos_a, pos_b, pos_s = a[positive], b[positive], s[positive]
    # the negatives below each positive, and those tied with it (which count one half)
    below = np.searchsorted(neg_s, pos_s, side="left")
    up_to = np.searchsorted(neg_s, pos_s, side="right")

    def score(weights) -> float:
        w = np.asarray(weights, dtype=float)
        if w.shape != (n_users,) or not (np.isfinite(w) & (w >= 0)).all():
            raise ValueError(f"weights must be {n_users} non-negative numbers, one per person")
        cumulative = np.concatenate(([0.0], np.cumsum(w[neg_a] + w[neg_b])))
        pos_weight = w[pos_a] + w[pos_b]
        total_pos, total_neg = pos_weight.sum(), cumulative[-1]
        if total_pos == 0 or total_neg == 0:
            raise ValueError("ROC-AUC needs both a positive and a negative pair with weight")
        wins = (cumulative[below] + cumulative[up_to]) / 2
        return float((pos_weight * wins).sum() / (total_pos * total_neg))

    return score


def map_per_user(pairs: pd.DataFrame, labels, scores) -> float:
    """Mean average precision of each person's list (their candidates by score), over people with a new friend.

    Each pair is on both people's lists. With one or two new friends a week per person, a
    person's AP is mostly where their one friend ranks: a noisy metric at this scale.
    """
    check_frame("pairs", pairs, ("user_a", "user_b"))
    y, s = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    if not (len(y) == len(s) == len(pairs)):
        raise ValueError("pairs, labels and scores must have one length")
    lists = pd.DataFrame({"user": np.r_[pairs["user_a"], pairs["user_b"]], "y": np.r_[y, y], "s": np.r_[s, s]})
    lists = lists[lists.groupby("user")["y"].transform("sum") > 0]
    lists = lists.sort_values(["user", "s"], ascending=[True, False], kind="stable")
    rank = lists.groupby("user").cumcount() + 1
    hits = lists.groupby("user")["y"].cumsum()
    precision_at_hits = (hits / rank).where(lists["y"] > 0, 0.0)
    per_user = precision_at_hits.groupby(lists["user"]).sum() / lists.groupby("user")["y"].sum()
    return float(per_user.mean())
