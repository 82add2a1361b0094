"""The event recommendation world (Chapter 10): which upcoming events will this user register for?

An Eventbrite-like platform in one metropolitan region, 60 km across. Events are short-lived: a
host creates one, it takes registrations for one to three weeks, and then it happens. So every
event a feed ranks is new, and what a model can know about it is its attributes, its host and
the few registrations it has gathered so far.

The story, drawn once per seed:

- **users** live in a few neighbourhoods (home ``x_km``, ``y_km``); each has a hidden taste per
  category, a travel tolerance (``reach_km``), a price sensitivity, a preferred time of the week
  (one of three slots) and a 2-d "style"; the profile declares two categories, drawn from the
  taste (so it is a noisy view of it);
- a **friend graph**: each user befriends a few others, mostly nearby and of similar taste;
- **hosts** with a location, a main category, a hidden quality and a style; users **follow** a few
  hosts they like;
- **events**: each day ``events_per_day`` new ones, from hosts (better hosts host more), at a
  place near the host, in the host's category (mostly), in a time slot, at a price (a third are
  free), starting 4-21 days after creation;
- the **old feed**: each day a quarter of the users open the app and see ``feed_size`` open
  events: the best by a rule (nearby, in a declared category, popular so far) plus
  ``explore`` picked uniformly at random among the open events; each shown event is registered
  for with the true probability

      p = sigmoid(b0 + taste[category] - distance / reach + slot fit - price sensitivity x
                  log(1 + price) + host quality + style . host style + host followed
                  + friends registered so far - days until start + pair noise)

  where the pair noise is a hash of (user, event): fixed, and unknowable from anything observed.

Observed: ``users`` (home and declared categories), ``friends``, ``hosts``, ``follows``,
``events`` and ``impressions`` (the old feed's log with registrations, days 0-83). Hidden:
``user_truth``, ``host_truth`` and ``salts``. :func:`true_logit` gives the true logit of any
(user, event) pairs at any day (friends registered so far read from the log); :func:`ranking_task`
the evaluation protocol at a cut-off (the week's new events, within 50 km, labels drawn from the
true p for every candidate); :func:`live_days` continues the world past the log, with drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from mlsd._checks import check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets._hashing import normal_from_hash, sigmoid, splitmix64
from mlsd.datasets.world import World

DEFAULT_SEED = 0
NAME = "event_recommendation"

CATEGORIES = ("music", "food", "sports", "tech", "art", "outdoors", "comedy", "family")
SLOTS = ("weekday evening", "weekend day", "weekend night")
SOURCES = ("rule", "explore")
#: the day the log ends: the test cut-off; the test events are those created in the week before
CUTOFF_DAY = 84
WEEK = 7

KNOBS = {
    "n_users": 2_000,
    "n_hosts": 250,
    "days": CUTOFF_DAY,
    "region_km": 60.0,
    "neighbourhoods": 6,
    "neighbourhood_sd_km": 7.0,
    "events_per_day": 40,
    "lead_days": (4, 21),            # an event starts this many days after its creation
    "free_share": 0.3,
    "active_share": 0.25,            # users who open the app on a day
    "feed_size": 8,
    "explore": 2,                    # of the feed's slots, picked uniformly at random
    "friends_drawn": 5,              # out-edges per user before symmetrising
    "follows_mean": 3.0,
    # the true model (logit scale)
    "b0": -2.2,
    "taste_sd": 1.0,
    "reach_km_median": 7.0,
    "reach_log_sd": 0.4,
    "slot_fit": 0.7,
    "price_sensitivity_median": 0.35,
    "price_log_sd": 0.5,
    "host_quality_sd": 0.5,
    "style_weight": 0.6,
    "followed": 1.0,
    "friends": 0.8,                  # x log(1 + friends registered so far)
    "per_day_until_start": 0.06,
    "pair_noise_sd": 1.0,
    # the old feed's rule
    "rule_distance_km": 8.0,
    "rule_category": 1.2,
    "rule_popularity": 0.6,
}

WHY = {
    "n_users": "2,000 users give a test week of about 2,000 x 280 pairs: enough for a tight interval, "
               "fast enough for a notebook on two cores",
    "active_share, feed_size": "a user sees about 170 events in 12 weeks and registers for about 12: "
                               "a taste estimated from a dozen registrations is the gap the chapter studies",
    "explore": "two random slots per feed: the log holds some unbiased impressions",
    "style_weight": "a taste no profile field shows (style); only co-registration reveals it",
    "pair_noise_sd": "a per-pair effect nobody can learn: the oracle ranks without it",
    "lead_days": "events take registrations for 4-21 days: every test event is new",
}

COLUMNS = {
    "users.user_id": "user id, 0..n-1",
    "users.x_km": "home, km east of the region's corner",
    "users.y_km": "home, km north of the region's corner",
    "users.declared_1": "first category the profile declares",
    "users.declared_2": "second category the profile declares",
    "friends.user_id": "a user",
    "friends.friend_id": "a friend of theirs (each friendship is listed in both directions)",
    "hosts.host_id": "host id, 0..n-1",
    "hosts.x_km": "the host's venue, km east",
    "hosts.y_km": "the host's venue, km north",
    "hosts.category": "the host's main category",
    "follows.user_id": "a user",
    "follows.host_id": "a host they follow",
    "events.event_id": "event id, 0..n-1 (in creation order)",
    "events.host_id": "its host",
    "events.category": "its category",
    "events.x_km": "its place, km east",
    "events.y_km": "its place, km north",
    "events.slot": "its time of the week: " + ", ".join(SLOTS),
    "events.price": "ticket price in dollars (0: free)",
    "events.created_day": "the day it was created (it can be shown from that day)",
    "events.start_day": "the day it happens (it can be shown until the day before)",
    "impressions.day": "the day of the impression",
    "impressions.user_id": "who saw it",
    "impressions.event_id": "what they saw",
    "impressions.position": "its place in the feed, 0 first",
    "impressions.source": "rule (the old feed's rule) or explore (uniformly at random)",
    "impressions.registered": "1 if the user registered (on that day, from that impression)",
    "user_truth.user_id": "hidden: the user",
    **{f"user_truth.taste_{c}": f"hidden: the user's taste for {c} events (logit scale)" for c in CATEGORIES},
    "user_truth.reach_km": "hidden: travel tolerance (the logit falls by 1 per reach_km)",
    "user_truth.price_sensitivity": "hidden: the logit falls by this x log(1 + price)",
    "user_truth.slot": "hidden: the preferred time of the week",
    "user_truth.style_1": "hidden: first coordinate of the user's style",
    "user_truth.style_2": "hidden: second coordinate",
    "host_truth.host_id": "hidden: the host",
    "host_truth.quality": "hidden: the host's quality (logit scale)",
    "host_truth.style_1": "hidden: first coordinate of the host's style",
    "host_truth.style_2": "hidden: second coordinate",
    "salts.pair_noise_salt": "hidden: key of the hash that gives each (user, event) pair its noise",
}


# --------------------------------------------------------------------------- the truth


@dataclass
class Truth:
    """Everything the true model needs, as arrays indexed by id."""

    home: np.ndarray          # (users, 2)
    taste: np.ndarray         # (users, categories)
    reach: np.ndarray         # (users,)
    price_sensitivity: np.ndarray
    slot: np.ndarray          # (users,) codes
    style: np.ndarray         # (users, 2)
    host_quality: np.ndarray  # (hosts,)
    host_style: np.ndarray    # (hosts, 2)
    follows: sparse.csr_matrix  # (users, hosts) 0/1
    friends: sparse.csr_matrix  # (users, users) 0/1, symmetric
    event_host: np.ndarray
    event_category: np.ndarray
    event_place: np.ndarray   # (events, 2)
    event_slot: np.ndarray
    event_price: np.ndarray
    event_start: np.ndarray
    salt: int


def _codes(values, names) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(names)}
    try:
        return np.array([lookup[v] for v in values], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"unknown value {err.args[0]!r}; expected one of {names}") from None


def _hash_normal(salt: int, a, b) -> np.ndarray:
    """Standard normals that are a fixed function of ``(salt, a, b)`` (a hash, no storage)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    with np.errstate(over="ignore"):
        return normal_from_hash(splitmix64((a << np.uint64(32)) ^ b ^ np.uint64(salt)))


def _pair_matrix(n: int, table: pd.DataFrame, a: str, b: str, m: int) -> sparse.csr_matrix:
    ones = np.ones(len(table))
    return sparse.csr_matrix((ones, (table[a].to_numpy(), table[b].to_numpy())), shape=(n, m))


def truth_of(world: World) -> Truth:
    """The hidden and observed arrays the true model reads, from a world's tables."""
    obs, hid = world.observed, world.hidden
    for table in ("users", "friends", "hosts", "follows", "events"):
        if table not in obs:
            raise ValueError(f"the world lacks the observed table {table!r}")
    for table in ("user_truth", "host_truth", "salts"):
        if table not in hid:
            raise ValueError(f"the world lacks the hidden table {table!r}")
    users, hosts, events = obs["users"], obs["hosts"], obs["events"]
    ut, ht = hid["user_truth"], hid["host_truth"]
    n_users, n_hosts = len(users), len(hosts)
    return Truth(
        home=users[["x_km", "y_km"]].to_numpy(float),
        taste=ut[[f"taste_{c}" for c in CATEGORIES]].to_numpy(float),
        reach=ut["reach_km"].to_numpy(float),
        price_sensitivity=ut["price_sensitivity"].to_numpy(float),
        slot=_codes(ut["slot"], SLOTS),
        style=ut[["style_1", "style_2"]].to_numpy(float),
        host_quality=ht["quality"].to_numpy(float),
        host_style=ht[["style_1", "style_2"]].to_numpy(float),
        follows=_pair_matrix(n_users, obs["follows"], "user_id", "host_id", n_hosts),
        friends=_pair_matrix(n_users, obs["friends"], "user_id", "friend_id", n_users),
        event_host=events["host_id"].to_numpy(np.int64),
        event_category=_codes(events["category"], CATEGORIES),
        event_place=events[["x_km", "y_km"]].to_numpy(float),
        event_slot=_codes(events["slot"], SLOTS),
        event_price=events["price"].to_numpy(float),
        event_start=events["start_day"].to_numpy(np.int64),
        salt=int(hid["salts"]["pair_noise_salt"].iloc[0]),
    )


def _logit(t: Truth, u, e, day, friends_registered, noise: bool = True, taste_shift=None) -> np.ndarray:
    """The true logit of pairs (u[i], e[i]) on ``day`` given their friends registered so far."""
    k = KNOBS
    h, c = t.event_host[e], t.event_category[e]
    dist = np.hypot(*(t.home[u] - t.event_place[e]).T)
    follows = np.asarray(t.follows[u, h]).ravel()
    z = (k["b0"] + t.taste[u, c] - dist / t.reach[u]
         + k["slot_fit"] * (t.slot[u] == t.event_slot[e])
         - t.price_sensitivity[u] * np.log1p(t.event_price[e])
         + t.host_quality[h] + k["style_weight"] * (t.style[u] * t.host_style[h]).sum(axis=1)
         + k["followed"] * follows + k["friends"] * np.log1p(friends_registered)
         - k["per_day_until_start"] * (t.event_start[e] - day))
    if taste_shift is not None:
        z = z + taste_shift[c]
    if noise:
        z = z + k["pair_noise_sd"] * _hash_normal(t.salt, u, e)
    return z


def friends_registered(friends: sparse.csr_matrix, registrations: pd.DataFrame, u, e, day) -> np.ndarray:
    """How many of u[i]'s friends registered for e[i] before ``day`` (a scalar or one per pair).

    ``registrations`` holds ``user_id``, ``event_id`` and ``day`` (of the registration).
    """
    u, e = np.asarray(u, dtype=np.int64), np.asarray(e, dtype=np.int64)
    day = np.broadcast_to(np.asarray(day, dtype=np.int64), u.shape)
    reg = registrations[["user_id", "event_id", "day"]].to_numpy(np.int64)
    coo = friends.tocsr()
    # each registration (f, e, t) tells every friend of f: "a friend registered for e on day t"
    counts = np.diff(coo.indptr)[reg[:, 0]]
    told = np.repeat(np.arange(len(reg)), counts)
    starts = coo.indptr[reg[:, 0]]
    offsets = np.arange(len(told)) - np.repeat(np.cumsum(counts) - counts, counts)
    who = coo.indices[starts[told] + offsets]
    n_events = int(max(reg[:, 1].max(initial=0), e.max(initial=0))) + 1
    when = reg[told, 2]
    # one integer per (user told, event, day), so that a sorted array answers "how many
    # before this day" with two binary searches
    span = int(max(when.max(initial=0), day.max(initial=0))) + 2
    if coo.shape[0] * n_events * span >= 2**62:
        raise ValueError("too many users, events or days for friends_registered's 64-bit keys")
    told_keys = np.sort((who * n_events + reg[told, 1]) * span + when)
    query = (u * n_events + e) * span
    lo = np.searchsorted(told_keys, query, side="left")
    hi = np.searchsorted(told_keys, query + np.maximum(day, 0), side="left")   # days < day
    return hi - lo


def true_logit(world: World, user_ids, event_ids, day, *, noise: bool = True,
               registrations: pd.DataFrame | None = None) -> np.ndarray:
    """The true logit of registering for each (user, event) pair if shown on ``day`` (one day
    for all pairs, or one per pair).

    Friends registered so far are read from ``registrations`` (default: the log's). With
    ``noise=False`` the pair noise is left out: the best any model could know.
    """
    if np.ndim(day) == 0:
        day = check_int("day", day, minimum=0)
    else:
        day = np.asarray(day)
        if day.dtype.kind not in "iu" or (day < 0).any():
            raise ValueError("day must hold whole numbers >= 0")
    t = truth_of(world)
    u = np.asarray(user_ids, dtype=np.int64)
    e = np.asarray(event_ids, dtype=np.int64)
    if u.shape != e.shape or np.ndim(day) and np.shape(day) != u.shape:
        raise ValueError(f"user_ids, event_ids (and day, if not one) must have one shape, got "
                         f"{u.shape}, {e.shape} and {np.shape(day)}")
    if len(u) and (u.min() < 0 or u.max() >= len(t.home)):
        raise ValueError("a user id is out of range")
    if len(e) and (e.min() < 0 or e.max() >= len(t.event_host)):
        raise ValueError("an event id is out of range")
    if registrations is None:
        registrations = registrations_of(world.observed["impressions"])
    friends = friends_registered(t.friends, registrations, u, e, day)
    return _logit(t, u, e, day, friends, noise=noise)


def registrations_of(impressions: pd.DataFrame) -> pd.DataFrame:
    """The log's registrations: user_id, event_id, day."""
    reg = impressions.loc[impressions["registered"] == 1, ["user_id", "event_id", "day"]]
    return reg.reset_index(drop=True)


# --------------------------------------------------------------------------- the evaluation protocol


@dataclass
class RankingTask:
    """What to rank at a cut-off, and labels drawn from the truth for every candidate.

    ``pairs`` has one row per candidate (user_id, event_id, distance_km, p, p_no_noise,
    registered): the events created in the week before ``cutoff`` that start after it, within
    ``max_km`` of the user's home, that the old feed has not shown the user yet (so nothing
    about the pair itself has been observed: the pair noise is unknowable, and ranking by
    ``p_no_noise`` is a true ceiling). ``registered`` is drawn from ``p`` for every candidate,
    whatever the old feed showed.
    """

    cutoff: int
    pairs: pd.DataFrame
    events: np.ndarray


def ranking_task(world: World, cutoff: int = CUTOFF_DAY, max_km: float = 50.0, *, users=None,
                 taste_shift=None, shift_day: int | None = None) -> RankingTask:
    """The evaluation protocol at ``cutoff`` (see :class:`RankingTask`); hidden truth inside.

    ``users`` keeps only those users' candidates (a sample, to save time). ``taste_shift`` and
    ``shift_day`` are :func:`live_days`'s season: from ``shift_day`` on, the shift of each
    pair's category is in its true logit (with and without the noise), and so in its label.
    """
    cutoff = check_int("cutoff", cutoff, minimum=WEEK)
    if not 0 < max_km:
        raise ValueError(f"max_km must be positive, got {max_km}")
    shift = _checked_shift(taste_shift, shift_day)
    t = truth_of(world)
    events, log = world.observed["events"], world.observed["impressions"]
    created, start = events["created_day"].to_numpy(), events["start_day"].to_numpy()
    new = np.flatnonzero((created >= cutoff - WEEK) & (created < cutoff) & (start > cutoff))
    if not len(new):
        raise ValueError(f"no event was created in the week before day {cutoff}")
    before = log[log["day"] < cutoff]
    reg = registrations_of(before)
    who = np.arange(len(t.home)) if users is None else np.unique(np.asarray(users, dtype=np.int64))
    if len(who) and (who[0] < 0 or who[-1] >= len(t.home)):
        raise ValueError("a user id is out of range")
    u, e = np.meshgrid(who, new, indexing="ij")
    u, e = u.ravel(), e.ravel()
    dist = np.hypot(*(t.home[u] - t.event_place[e]).T)
    n_events = len(t.event_host)
    seen = np.unique(before["user_id"].to_numpy(np.int64) * n_events + before["event_id"].to_numpy(np.int64))
    keep = (dist <= max_km) & ~np.isin(u * n_events + e, seen)
    u, e, dist = u[keep], e[keep], dist[keep]
    friends = friends_registered(t.friends, reg, u, e, cutoff)
    season = shift if shift is not None and cutoff >= shift_day else None
    p = sigmoid(_logit(t, u, e, cutoff, friends, taste_shift=season))
    p_clean = sigmoid(_logit(t, u, e, cutoff, friends, noise=False, taste_shift=season))
    rng = make_rng(world.seed, NAME, "labels", str(cutoff))
    pairs = pd.DataFrame({"user_id": u, "event_id": e, "distance_km": dist, "p": p,
                          "p_no_noise": p_clean, "registered": (rng.random(len(p)) < p).astype(np.int64)})
    return RankingTask(cutoff, pairs, new)


# --------------------------------------------------------------------------- generation


def _gumbel_top(rng, logits: np.ndarray, k: int) -> np.ndarray:
    """Per row, k columns drawn without replacement with probabilities ~ exp(logits)."""
    g = logits + rng.gumbel(size=logits.shape)
    return np.argsort(-g, axis=1, kind="stable")[:, :k]


def _people(seed: int) -> dict:
    k = KNOBS
    rng = make_rng(seed, NAME, "people")
    n, m, size = k["n_users"], k["n_hosts"], k["region_km"]
    centres = rng.uniform(0.15 * size, 0.85 * size, (k["neighbourhoods"], 2))

    def places(count):
        at = centres[rng.integers(0, len(centres), count)] + rng.normal(0, k["neighbourhood_sd_km"], (count, 2))
        return np.clip(at, 0, size).round(2)

    home = places(n)
    taste = (k["taste_sd"] * rng.normal(size=(n, len(CATEGORIES)))).round(4)
    declared = _gumbel_top(rng, 1.5 * taste, 2)
    ut = {f"taste_{c}": taste[:, j] for j, c in enumerate(CATEGORIES)}
    ut["reach_km"] = (k["reach_km_median"] * np.exp(k["reach_log_sd"] * rng.normal(size=n))).round(3)
    ut["price_sensitivity"] = (k["price_sensitivity_median"]
                               * np.exp(k["price_log_sd"] * rng.normal(size=n))).round(4)
    ut["slot"] = np.array(SLOTS)[rng.choice(3, n, p=[0.4, 0.35, 0.25])]
    style = (rng.normal(size=(n, 2)) / np.sqrt(2)).round(4)
    ut["style_1"], ut["style_2"] = style.T
    users = pd.DataFrame({"user_id": np.arange(n), "x_km": home[:, 0], "y_km": home[:, 1],
                          "declared_1": np.array(CATEGORIES)[declared[:, 0]],
                          "declared_2": np.array(CATEGORIES)[declared[:, 1]]})
    # friends: nearby and alike
    d = np.hypot(home[:, None, 0] - home[None, :, 0], home[:, None, 1] - home[None, :, 1])
    unit = taste / np.linalg.norm(taste, axis=1, keepdims=True)
    affinity = -d / 5.0 + 1.0 * (unit @ unit.T)
    np.fill_diagonal(affinity, -np.inf)
    out = _gumbel_top(rng, affinity, k["friends_drawn"])
    edges = {(min(a, b), max(a, b)) for a, row in enumerate(out.tolist()) for b in row}
    edges = np.array(sorted(edges))
    both = np.vstack([edges, edges[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    friends = pd.DataFrame({"user_id": both[:, 0], "friend_id": both[:, 1]})
    # hosts
    hplace = places(m)
    hcat = rng.integers(0, len(CATEGORIES), m)
    quality = (k["host_quality_sd"] * rng.normal(size=m)).round(4)
    hstyle = (rng.normal(size=(m, 2)) / np.sqrt(2) * 1.4).round(4)
    hosts = pd.DataFrame({"host_id": np.arange(m), "x_km": hplace[:, 0], "y_km": hplace[:, 1],
                          "category": np.array(CATEGORIES)[hcat]})
    host_truth = pd.DataFrame({"host_id": np.arange(m), "quality": quality,
                               "style_1": hstyle[:, 0], "style_2": hstyle[:, 1]})
    # follows: hosts a user likes, near home
    dh = np.hypot(home[:, None, 0] - hplace[None, :, 0], home[:, None, 1] - hplace[None, :, 1])
    like = taste[:, hcat] - dh / 10.0 + quality[None, :] + k["style_weight"] * style @ hstyle.T
    count = np.minimum(rng.poisson(k["follows_mean"], n), 12)
    ranked = _gumbel_top(rng, like, 12)
    rows = [(a, int(h)) for a in range(n) for h in sorted(ranked[a, :count[a]].tolist())]
    follows = pd.DataFrame(rows, columns=["user_id", "host_id"])
    ut = pd.DataFrame({"user_id": np.arange(n), **ut})
    return {"users": users, "friends": friends, "hosts": hosts, "follows": follows,
            "user_truth": ut, "host_truth": host_truth}


def _new_events(seed: int, day: int, first_id: int, hosts: pd.DataFrame, quality: np.ndarray,
                n: int, category_shift=None) -> pd.DataFrame:
    """The events created on ``day``: ids first_id.. first_id + n - 1."""
    k = KNOBS
    rng = make_rng(seed, NAME, "events", str(day))
    weight = np.exp(0.5 * quality)
    host = rng.choice(len(hosts), n, p=weight / weight.sum())
    main = _codes(hosts["category"].to_numpy()[host], CATEGORIES)
    other = rng.integers(0, len(CATEGORIES), n)
    if category_shift is not None:   # a season: more events of the favoured categories
        favour = np.exp(np.asarray(category_shift, dtype=float))
        other = rng.choice(len(CATEGORIES), n, p=favour / favour.sum())
    category = np.where(rng.random(n) < 0.75, main, other)
    place = hosts[["x_km", "y_km"]].to_numpy()[host] + rng.normal(0, 2.0, (n, 2))
    place = np.clip(place, 0, k["region_km"]).round(2)
    free = rng.random(n) < k["free_share"]
    price = np.where(free, 0.0, np.round(np.exp(rng.normal(3.0, 0.6, n)), 0))
    lo, hi = k["lead_days"]
    return pd.DataFrame({"event_id": first_id + np.arange(n), "host_id": host,
                         "category": np.array(CATEGORIES)[category], "x_km": place[:, 0],
                         "y_km": place[:, 1], "slot": np.array(SLOTS)[rng.choice(3, n, p=[0.45, 0.35, 0.2])],
                         "price": price, "created_day": day, "start_day": day + rng.integers(lo, hi + 1, n)})


def _simulate(seed: int, people: dict, salt: int, days: range, taste_shift=None, shift_day=None,
              events: pd.DataFrame | None = None, log: list | None = None):
    """Run the old feed over ``days``; returns (events, impressions). Deterministic per day."""
    k = KNOBS
    log = list(log or [])
    quality = people["host_truth"]["quality"].to_numpy()
    n_users = len(people["users"])
    declared = np.zeros((n_users, len(CATEGORIES)), dtype=bool)
    for col in ("declared_1", "declared_2"):
        declared[np.arange(n_users), _codes(people["users"][col], CATEGORIES)] = True
    frames = [events]
    reg_users, reg_events = [], []
    for frame in log:
        hit = frame["registered"].to_numpy() == 1
        reg_users.append(frame["user_id"].to_numpy()[hit])
        reg_events.append(frame["event_id"].to_numpy()[hit])
    for day in days:
        shifted = taste_shift is not None and day >= shift_day
        new = _new_events(seed, day, int(sum(len(f) for f in frames)), people["hosts"], quality,
                          k["events_per_day"], taste_shift if shifted else None)
        frames.append(new)
        events_now = pd.concat(frames, ignore_index=True)
        t = truth_of(_as_world(seed, people, salt, events_now))
        rng = make_rng(seed, NAME, "day", str(day))
        open_ = np.flatnonzero((events_now["created_day"].to_numpy() <= day)
                               & (events_now["start_day"].to_numpy() > day))
        active = np.flatnonzero(rng.random(n_users) < k["active_share"])
        # registrations so far: per event, and per (friend, event)
        reg_u = np.concatenate(reg_users) if reg_users else np.zeros(0, np.int64)
        reg_e = np.concatenate(reg_events) if reg_events else np.zeros(0, np.int64)
        n_ev = len(events_now)
        R = sparse.csr_matrix((np.ones(len(reg_u)), (reg_u, reg_e)), shape=(n_users, n_ev))
        popularity = np.asarray(R.sum(axis=0)).ravel()[open_]
        done = R[active][:, open_].toarray() > 0
        friends_now = (t.friends[active] @ R[:, open_]).toarray()
        dist = np.hypot(t.home[active, None, 0] - t.event_place[None, open_, 0],
                        t.home[active, None, 1] - t.event_place[None, open_, 1])
        rule = (-dist / k["rule_distance_km"] + k["rule_category"] * declared[active][:, t.event_category[open_]]
                + k["rule_popularity"] * np.log1p(popularity)[None, :] + rng.gumbel(size=dist.shape) * 0.5)
        rule[done] = -np.inf
        n_rule = k["feed_size"] - k["explore"]
        picked = np.argsort(-rule, axis=1, kind="stable")[:, :n_rule]
        noise = rng.random(dist.shape)
        noise[done] = 2.0
        noise[np.arange(len(active))[:, None], picked] = 3.0
        explored = np.argsort(noise, axis=1, kind="stable")[:, :k["explore"]]
        cols = np.hstack([picked, explored])
        rows = np.repeat(np.arange(len(active)), cols.shape[1])
        cols = cols.ravel()
        ok = ~done[rows, cols]
        rows, cols = rows[ok], cols[ok]
        u, e = active[rows], open_[cols]
        shift = np.asarray(taste_shift, dtype=float) if shifted else None
        z = _logit(t, u, e, day, friends_now[rows, cols], taste_shift=shift)
        hit = rng.random(len(z)) < sigmoid(z)
        position = np.tile(np.arange(k["feed_size"]), len(active))[ok]
        source = np.where(position < n_rule, "rule", "explore")
        log.append(pd.DataFrame({"day": day, "user_id": u, "event_id": e, "position": position,
                                 "source": source, "registered": hit.astype(np.int64)}))
        reg_users.append(u[hit])
        reg_events.append(e[hit])
    return pd.concat(frames, ignore_index=True), log


def _as_world(seed: int, people: dict, salt: int, events: pd.DataFrame) -> World:
    observed = {name: people[name] for name in ("users", "friends", "hosts", "follows")}
    observed["events"] = events
    hidden = {"user_truth": people["user_truth"], "host_truth": people["host_truth"],
              "salts": pd.DataFrame({"pair_noise_salt": [salt]})}
    return World(name=NAME, seed=seed, observed=observed, hidden=hidden, summary="")


def _salt(seed: int) -> int:
    return int(make_rng(seed, NAME, "salts").integers(0, 2**62))


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the event recommendation world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    people = _people(seed)
    salt = _salt(seed)
    empty = _new_events(seed, 0, 0, people["hosts"], people["host_truth"]["quality"].to_numpy(), 0)
    events, log = _simulate(seed, people, salt, range(KNOBS["days"]), events=empty)
    world = _as_world(seed, people, salt, events)
    world.observed["impressions"] = pd.concat(log, ignore_index=True)
    world.knobs, world.columns = dict(KNOBS), COLUMNS
    world.summary = _summary(world)
    return world


def _checked_shift(taste_shift, shift_day):
    """A season's shift as an array (or None), checked."""
    if taste_shift is None:
        return None
    taste_shift = np.asarray(taste_shift, dtype=float)
    if taste_shift.shape != (len(CATEGORIES),) or not np.isfinite(taste_shift).all():
        raise ValueError(f"taste_shift needs one finite number per category ({len(CATEGORIES)})")
    if shift_day is None:
        raise ValueError("give shift_day with taste_shift")
    check_int("shift_day", shift_day, minimum=0)
    return taste_shift


def live_days(world: World, n_days: int, *, taste_shift=None, shift_day: int | None = None):
    """The world continued past the log for ``n_days`` under the old feed: (events, impressions).

    ``taste_shift`` (one number per category, logit scale) is added to every user's taste from
    ``shift_day`` on, and new events lean to the favoured categories: a season. The returned
    tables hold the log's days too (the first rows equal the stored ones).
    """
    n_days = check_int("n_days", n_days, minimum=1)
    taste_shift = _checked_shift(taste_shift, shift_day)
    people = {name: world.observed[name] for name in ("users", "friends", "hosts", "follows")}
    people.update(user_truth=world.hidden["user_truth"], host_truth=world.hidden["host_truth"])
    salt = int(world.hidden["salts"]["pair_noise_salt"].iloc[0])
    start = int(world.observed["impressions"]["day"].max()) + 1
    log = [frame for _, frame in world.observed["impressions"].groupby("day", sort=True)]
    events, log = _simulate(world.seed, people, salt, range(start, start + n_days), taste_shift,
                            shift_day, events=world.observed["events"], log=log)
    return events, pd.concat(log, ignore_index=True)


def _summary(world: World) -> str:
    obs = world.observed
    imp = obs["impressions"]
    k = KNOBS
    per_user = imp.groupby("user_id")["registered"].sum()
    why = "\n".join(f"- `{name}`: {reason}." for name, reason in WHY.items())
    return f"""
An event platform in one region {k['region_km']:.0f} km across: {len(obs['users']):,} users,
{len(obs['hosts']):,} hosts and {len(obs['events']):,} events created over {k['days']} days
({k['events_per_day']} a day, each taking registrations for {k['lead_days'][0]}-{k['lead_days'][1]}
days). The old feed's log holds {len(imp):,} impressions with {int(imp['registered'].sum()):,}
registrations ({imp['registered'].mean():.1%} of impressions; a user registered
{per_user.mean():.1f} times on average). {k['explore']} of each feed's {k['feed_size']} slots
were picked uniformly at random among the open events (`source` = explore): the log's only
unbiased impressions.

The true registration probability is a logistic function of taste for the category, distance
over the user's reach, the fit of the time slot, price, host quality, a style match no
profile field shows, a followed host, friends registered so far, days until the start, and a
per-pair noise (sd {k['pair_noise_sd']}) nobody can learn. `hidden/` holds the users' and hosts'
latents and the noise's salt; `mlsd.datasets.event_recommendation.true_logit` recomputes any
pair's logit.

Known biases: the log shows what the old feed chose (near, declared, popular), so registrations
over-represent those events; declared categories are a noisy view of taste; friends registered
is a feature that grows with time, so it must be read as of the impression's day.

Why these values:
{why}
"""
