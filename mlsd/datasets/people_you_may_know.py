"""The people-you-may-know world (Chapter 14): who will befriend whom next week?

A social network of ``n_users`` people in ``n_communities`` hidden communities (friend
circles: a town's families, a class, a club). The app sees who is friends with whom and since
which week, each user's profile (school, employer, city, each often left blank) and how often a
user looked at another's profile. It does not see why people connect.

The story, drawn once per seed:

- **people** have a hidden position in an 8-dimensional social space (their community's centre
  plus their own offset) and a hidden sociability (how readily they befriend anyone). Their
  true school, employer and city follow their community most of the time; the profile shows
  each only when the user filled it in;
- **the graph at week 0** (before the log): a pair is friends with probability
  ``sigmoid(base0 + closeness + sociabilities + shared school, employer, city)``, where
  ``closeness = -4 ||z_i - z_j||^2 / dim`` (the same scale in every dimension);
- **each week** every pair not yet friends befriends with the true probability::

      logit = base + closeness + social_i + social_j + 1.2 log(1 + common friends)
              + 0.8 same school + 0.4 same employer + 0.2 same city

  common friends counted on the graph at the start of the week (the edges of the week do not
  see each other). That probability is the hidden truth: :func:`edge_probability` recomputes
  it for any pair at any week, and the oracle ranks by it, a true ceiling;
- **profile views**: in each week a user looks at another's profile a Poisson number of times,
  more often the closer and more sociable they are and the more friends they share.
  Views are the app's one direct view of closeness, and a noisy one: they add nothing the
  truth does not already hold;
- **newcomers**: a small cohort joins in week 2 (the test week) with a filled-in profile and
  no friends yet: the cold-start users. In their first week the app's onboarding makes them
  readier to connect.

:func:`live_weeks` continues the world past week 2, and can start a *classmates campaign*: a
prompt to "find your classmates" that makes shared schools matter more from a given week on.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets._hashing import sigmoid
from mlsd.datasets.world import World

DEFAULT_SEED = 0
NAME = "people_you_may_know"

#: week 0 is the graph before the log; the model trains on week 0 -> 1 and is tested on 1 -> 2
TRAIN_WEEK, TEST_WEEK = 1, 2
LATENT_DIM = 8
ATTRIBUTES = ("school", "employer", "city")
MISSING = -1

KNOBS = {
    "n_users": 3_000,
    "n_communities": 12,
    "latent_dim": LATENT_DIM,
    "centre_sd": 1.0,              # communities' centres ~ N(0, 1) in each dimension
    "position_sd": 0.6,            # a user's offset from the centre
    "sociability_sd": 0.5,         # log sociability ~ N(0, 0.5)
    "newcomers": 60,               # users who join in week 2 (the cold-start cohort)
    "newcomer_boost": 1.5,         # added to a newcomer's logit in their first week
    # attributes: (values in all, share following the community, share missing); the values
    # are shared out among the communities (3 schools each; two communities to a city)
    "schools": (36, 0.8, 0.3),
    "employers": (24, 0.5, 0.5),
    "cities": (6, 0.85, 0.1),
    # the graph at week 0
    "base0": -1.1,
    # each week's new friendships
    "base": -5.3,
    "common_friends": 1.2,         # per log(1 + common friends)
    "same": {"school": 0.8, "employer": 0.4, "city": 0.2},
    "same0": {"school": 1.0, "employer": 0.0, "city": 0.0},
    # profile views in a week: Poisson(exp(views_base + closeness + social_viewer
    #                                        + views_common x log(1 + common friends)))
    "views_base": -3.6,
    "views_common": 1.0,
}

WHY = {
    "n_users, n_communities": "3,000 people in 12 circles: about 18 friends each and some 270 "
                              "friends of friends, so a week's candidates are some 400,000 pairs",
    "base, common_friends": "about 1.2 new friendships per person a week, nearly nine in ten of "
                            "them between friends of friends (triadic closure), as the source reports",
    "same, position_sd": "closeness is mostly hidden: the profile's shared school, employer and "
                         "city, the graph's structure and the views each show part of it",
    "schools, employers, cities": "attributes are often left blank, so the oracle (which knows "
                                  "the true ones) has information no feature has",
    "newcomers": "60 people join in the test week with no friends: no friend of a friend to suggest",
}

COLUMNS = {
    "users.user_id": "user id, 0..n-1",
    "users.joined": "the week the user joined (0: before the log; 2: the newcomers)",
    **{f"users.{a}": f"the {a} on the profile, an id; {MISSING} if left blank" for a in ATTRIBUTES},
    "friendships.user_a": "one friend (the smaller id)",
    "friendships.user_b": "the other friend",
    "friendships.week": "the week they became friends (0: at or before week 0)",
    "views.viewer": "the user who looked",
    "views.viewed": "the profile looked at (never a friend at the time)",
    "views.week": "the week of the views",
    "views.count": "how many times in that week (rows with 0 are left out)",
    "user_truth.user_id": "hidden: the user",
    "user_truth.community": "hidden: the user's community",
    "user_truth.sociability": "hidden: log sociability, added to every logit of the user's pairs",
    **{f"user_truth.{a}": f"hidden: the true {a} (never blank)" for a in ATTRIBUTES},
    **{f"user_truth.z_{i}": f"hidden: position in the social space, coordinate {i}" for i in range(LATENT_DIM)},
}


# --------------------------------------------------------------------------- the truth


def _truth_arrays(world: World):
    truth = world.hidden["user_truth"]
    z = truth[[f"z_{i}" for i in range(LATENT_DIM)]].to_numpy()
    attributes = truth[list(ATTRIBUTES)].to_numpy()
    return z, truth["sociability"].to_numpy(), attributes


def _closeness(z: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = np.zeros(len(a))
    for coordinate in z.T:  # a dimension at a time: 4.5 million pairs, gathered from one column
        total += (coordinate[a] - coordinate[b]) ** 2
    return -4.0 * total / z.shape[1]


def _same(attributes: np.ndarray, a, b) -> np.ndarray:
    """(pairs, attributes): True where the two share the (true) attribute."""
    return np.column_stack([attributes[a, k] == attributes[b, k] for k in range(len(ATTRIBUTES))])


def _shared(same: np.ndarray, weights: dict) -> np.ndarray:
    return sum(weights[name] * same[:, k] for k, name in enumerate(ATTRIBUTES))


def adjacency(friendships: pd.DataFrame, n_users: int, week: int) -> sparse.csr_matrix:
    """The friendship graph at the end of ``week`` (edges of weeks <= ``week``), symmetric 0/1 CSR."""
    week = check_int("week", week, minimum=0)
    f = friendships[friendships["week"] <= week]
    a, b = f["user_a"].to_numpy(), f["user_b"].to_numpy()
    ones = np.ones(2 * len(a))
    return sparse.csr_matrix((ones, (np.r_[a, b], np.r_[b, a])), shape=(n_users, n_users))


def common_friends(graph: sparse.csr_matrix, a, b) -> np.ndarray:
    """How many friends users ``a[k]`` and ``b[k]`` share on ``graph`` (an :func:`adjacency`)."""
    a, b = np.asarray(a), np.asarray(b)
    return np.asarray(graph[a].multiply(graph[b]).sum(axis=1)).ravel()


def _logit(world: World, a, b, week: int, shared_friends: np.ndarray, campaign: float = 0.0,
           closeness: np.ndarray | None = None, same: np.ndarray | None = None) -> np.ndarray:
    k = KNOBS
    z, social, attributes = _truth_arrays(world)
    weights = dict(k["same"], school=k["same"]["school"] + campaign)
    closeness = _closeness(z, a, b) if closeness is None else closeness
    same = _same(attributes, a, b) if same is None else same
    joined = world.observed["users"]["joined"].to_numpy()
    logit = (k["base"] + closeness + social[a] + social[b]
             + k["common_friends"] * np.log1p(shared_friends) + _shared(same, weights)
             + k["newcomer_boost"] * ((joined[a] == week) | (joined[b] == week)))
    inactive = (joined[a] > week) | (joined[b] > week)
    return np.where(inactive, -np.inf, logit)


def edge_probability(world: World, a, b, week: int, *, friendships: pd.DataFrame | None = None,
                     campaign: float = 0.0) -> np.ndarray:
    """The hidden truth: the chance that users ``a[k]`` and ``b[k]`` become friends in ``week``.

    The pairs must not be friends at the start of the week (the end of ``week - 1``); common
    friends are counted on that graph. ``friendships`` defaults to the world's (pass the
    live weeks' too for a later week) and ``campaign`` is the classmates campaign's extra weight
    on a shared school (:func:`live_weeks`). A user who has not joined yet has probability 0.
    """
    week = check_int("week", week, minimum=1)
    friendships = world.observed["friendships"] if friendships is None else friendships
    a, b = (np.asarray(x, dtype=np.int64) for x in (a, b))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D arrays of one length, got shapes {a.shape} and {b.shape}")
    n = len(world.observed["users"])
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n or (a == b).any()):
        raise ValueError(f"a and b must be distinct user ids in 0..{n - 1}")
    graph = adjacency(friendships, n, week - 1)
    if len(a) and np.asarray(graph[a, b]).ravel().any():
        raise ValueError(f"some pairs are already friends at the start of week {week}")
    shared_friends = common_friends(graph, a, b)
    return sigmoid(_logit(world, a, b, week, shared_friends, check_finite("campaign", campaign)))


# --------------------------------------------------------------------------- generation


def _people(seed: int):
    k = KNOBS
    rng = make_rng(seed, NAME, "people")
    n, c = k["n_users"], k["n_communities"]
    community = rng.integers(0, c, n)
    centres = rng.normal(0.0, k["centre_sd"], (c, LATENT_DIM))
    z = centres[community] + rng.normal(0.0, k["position_sd"], (n, LATENT_DIM))
    sociability = rng.normal(0.0, k["sociability_sd"], n)
    truth = {"user_id": np.arange(n), "community": community, "sociability": sociability}
    observed = {"user_id": np.arange(n)}
    for name, (values, follow, missing) in zip(ATTRIBUTES, (k["schools"], k["employers"], k["cities"])):
        r = make_rng(seed, NAME, name)
        own = community * values // c + r.integers(0, max(1, values // c), n)
        true = np.where(r.random(n) < follow, own, r.integers(0, values, n))
        truth[name] = true
        observed[name] = np.where(r.random(n) < missing, MISSING, true)
    joined = np.zeros(n, dtype=np.int64)
    newcomers = make_rng(seed, NAME, "newcomers").choice(n, k["newcomers"], replace=False)
    joined[newcomers] = TEST_WEEK
    for name in ATTRIBUTES:  # a newcomer fills in the profile: the onboarding asks
        observed[name][newcomers] = truth[name][newcomers]
    truth |= {f"z_{i}": z[:, i] for i in range(LATENT_DIM)}
    observed = {"user_id": observed["user_id"], "joined": joined, **{a: observed[a] for a in ATTRIBUTES}}
    return pd.DataFrame(observed), pd.DataFrame(truth)


class _AllPairs(NamedTuple):
    """Every pair (a < b) with what never changes: closeness and shared true attributes."""

    a: np.ndarray
    b: np.ndarray
    closeness: np.ndarray
    same: np.ndarray


def _all_pairs(z: np.ndarray, attributes: np.ndarray) -> _AllPairs:
    a, b = np.triu_indices(len(z), 1)
    return _AllPairs(a, b, _closeness(z, a, b), _same(attributes, a, b))


def _initial_graph(seed: int, users: pd.DataFrame, social: np.ndarray, pairs: _AllPairs) -> pd.DataFrame:
    k = KNOBS
    a, b = pairs.a, pairs.b
    logit = k["base0"] + pairs.closeness + social[a] + social[b] + _shared(pairs.same, k["same0"])
    joined = users["joined"].to_numpy()
    keep = (make_rng(seed, NAME, "week 0").random(len(a)) < sigmoid(logit)) & (joined[a] == 0) & (joined[b] == 0)
    return pd.DataFrame({"user_a": a[keep], "user_b": b[keep], "week": 0})


def _open_pairs(graph: sparse.csr_matrix, pairs: _AllPairs):
    """The pairs not friends on ``graph`` (a mask over ``pairs``), and their common friends."""
    open_pair = graph.toarray()[pairs.a, pairs.b] == 0
    a, b = pairs.a[open_pair], pairs.b[open_pair]
    return open_pair, (graph @ graph).toarray()[a, b]


def _friendships(world: World, pairs: _AllPairs, week: int, friendships: pd.DataFrame, campaign: float,
                 stream: str) -> pd.DataFrame:
    """The new friendships of ``week``, drawn over every pair not friends at its start."""
    graph = adjacency(friendships, len(world.observed["users"]), week - 1)
    open_pair, shared_friends = _open_pairs(graph, pairs)
    a, b = pairs.a[open_pair], pairs.b[open_pair]
    p = sigmoid(_logit(world, a, b, week, shared_friends, campaign, pairs.closeness[open_pair],
                       pairs.same[open_pair]))
    new = make_rng(world.seed, NAME, stream, "friendships").random(len(a)) < p
    return pd.DataFrame({"user_a": a[new], "user_b": b[new], "week": week})


def _poisson(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Poisson counts by inversion, one uniform each: exact, and quick when nearly every rate is tiny.

    Only the few draws above the chance of 0 go round the loop (numpy's sampler spends several
    uniforms on every one of the 9 million).
    """
    u = rng.random(len(rate))
    count = np.zeros(len(rate), dtype=np.int64)
    pmf = np.exp(-rate)
    cdf = pmf.copy()
    more = np.flatnonzero(u > cdf)
    k = 0
    while len(more) and k < 1_000:  # the bound only guards against rounding: rates are far below it
        k += 1
        pmf[more] *= rate[more] / k
        cdf[more] += pmf[more]
        count[more] = k
        more = more[u[more] > cdf[more]]
    return count


def _views(world: World, pairs: _AllPairs, week: int, friendships: pd.DataFrame, stream: str) -> pd.DataFrame:
    """Profile views in ``week`` between users not friends at its end (both directions)."""
    k = KNOBS
    graph = adjacency(friendships, len(world.observed["users"]), week)
    open_pair, shared_friends = _open_pairs(graph, pairs)
    a, b = pairs.a[open_pair], pairs.b[open_pair]
    _, social, _ = _truth_arrays(world)
    joined = world.observed["users"]["joined"].to_numpy()
    pair = pairs.closeness[open_pair] + k["views_common"] * np.log1p(shared_friends)  # the same both ways
    rng = make_rng(world.seed, NAME, stream, "views")
    blocks = []
    for viewer, viewed in ((a, b), (b, a)):  # a direction at a time: half the memory, the same draws
        rate = np.exp(k["views_base"] + pair + social[viewer])
        rate[(joined[viewer] > week) | (joined[viewed] > week)] = 0.0
        count = _poisson(rng, rate)
        seen = count > 0
        blocks.append(pd.DataFrame({"viewer": viewer[seen], "viewed": viewed[seen], "week": week,
                                    "count": count[seen]}))
    return pd.concat(blocks, ignore_index=True).sort_values(["viewer", "viewed"], ignore_index=True)


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the people-you-may-know world at ``seed``: the graph at week 0 and weeks 1 and 2."""
    seed = check_int("seed", seed, minimum=0)
    users, truth = _people(seed)
    world = World(name=NAME, seed=seed, observed={"users": users}, hidden={"user_truth": truth},
                  summary="", knobs=dict(KNOBS), columns=dict(COLUMNS))
    z, social, attributes = _truth_arrays(world)
    pairs = _all_pairs(z, attributes)
    friendships = _initial_graph(seed, users, social, pairs)
    views = [_views(world, pairs, 0, friendships, "week 0")]
    for week in (TRAIN_WEEK, TEST_WEEK):
        new = _friendships(world, pairs, week, friendships, 0.0, f"week {week}")
        friendships = pd.concat([friendships, new], ignore_index=True)
        if week < TEST_WEEK:
            views.append(_views(world, pairs, week, friendships, f"week {week}"))
    world.observed["friendships"] = friendships
    world.observed["views"] = pd.concat(views, ignore_index=True)
    world.summary = _summary(world)
    return world


def live_weeks(world: World, n_weeks: int, *, campaign: float | None = None,
               campaign_week: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The world continued past the test week for ``n_weeks``: (friendships, views).

    Only the new rows are returned: the friendships of weeks 3 .. 2 + ``n_weeks`` and the views
    of weeks 2 .. 2 + ``n_weeks`` (a week's views feed the next week's prediction). From
    ``campaign_week`` on, a classmates campaign adds ``campaign`` to the weight of a shared
    school in the true logit: the app prompts people to find their classmates.
    """
    n_weeks = check_int("n_weeks", n_weeks, minimum=1)
    if (campaign is None) != (campaign_week is None):
        raise ValueError("give campaign and campaign_week together, or neither")
    first, last = TEST_WEEK + 1, TEST_WEEK + n_weeks
    if campaign is not None:
        campaign = check_finite("campaign", campaign)
        campaign_week = check_int("campaign_week", campaign_week, minimum=first)
        if campaign_week > last:
            raise ValueError(f"campaign_week must fall in the live weeks {first}..{last}, got {campaign_week}")
    friendships = world.observed["friendships"]
    z, _, attributes = _truth_arrays(world)
    pairs = _all_pairs(z, attributes)
    new, views = [], [_views(world, pairs, TEST_WEEK, friendships, f"live {TEST_WEEK}")]
    for week in range(first, last + 1):
        boost = campaign if campaign is not None and week >= campaign_week else 0.0
        edges = _friendships(world, pairs, week, friendships, boost, f"live {week}")
        friendships = pd.concat([friendships, edges], ignore_index=True)
        new.append(edges)
        views.append(_views(world, pairs, week, friendships, f"live {week}"))
    return pd.concat(new, ignore_index=True), pd.concat(views, ignore_index=True)


def _summary(world: World) -> str:
    obs, k = world.observed, KNOBS
    users, friendships, views = obs["users"], obs["friendships"], obs["views"]
    n = len(users)
    per_week = friendships.groupby("week").size()
    degree = 2 * per_week.loc[0] / (users["joined"] == 0).sum()
    blank = ", ".join(f"{a} {(users[a] == MISSING).mean():.0%}" for a in ATTRIBUTES)
    why = "\n".join(f"- `{name}`: {reason}." for name, reason in WHY.items())
    return f"""
A social network of {n:,} people in {k['n_communities']} hidden communities. At week 0 (before the
log) they hold {per_week.loc[0]:,} friendships, {degree:.1f} friends per person on average; week 1
adds {per_week.loc[TRAIN_WEEK]:,} and week 2 {per_week.loc[TEST_WEEK]:,}. {k['newcomers']} people join in
week 2 with no friends. Profiles leave fields blank: {blank}. {views['count'].sum():,} profile views
between people not (yet) friends are logged over weeks 0 and 1.

Each week every pair not yet friends becomes friends with a probability that is a logistic
function of their closeness in a hidden social space, both people's sociability, how many friends
they share (log 1 + n) and whether they share a school, an employer or a city. `hidden/` holds
the positions, sociabilities and true attributes; `mlsd.datasets.people_you_may_know.edge_probability`
recomputes any pair's probability in any week: the oracle.

Known biases: the profile shows a school, employer or city only when the user filled it in; views
are logged only between people not friends at the end of the week; friendships never end.

Why these values:
{why}
""".strip()
