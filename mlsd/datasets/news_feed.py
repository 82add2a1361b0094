"""The news feed world (Chapter 13): which unseen posts should head a user's feed?

A social app where ``n_users`` viewers follow friends (people) and pages; together these
``n_authors`` authors post every day. When a viewer opens the app, the feed ranks the posts
their connections made in the last two days that the viewer has not yet seen. A viewer scrolls
through the first few and reacts: clicks, likes, comments, shares, hides, and spends some
seconds on each (dwell).

The story, drawn once per seed:

- **viewers** have hidden topic interests (a topic far below their taste is one they dislike),
  a media taste, a reactivity (active users react; passive ones mostly scroll), how often they
  open the app and how far they scroll;
- **authors** are people or pages. Pages post more, more links and videos, and a few of them
  post clickbait. Every author has a hidden quality;
- **connections**: a viewer befriends people and follows pages. The pair's hidden
  **closeness** has a part shared through latent positions (people close to the viewer's
  friends are close to the viewer) and a part of its own. The app sees the connection type and
  a noisy count of past contacts (messages, tags);
- **posts** have an observed topic, media type and creation time, and a hidden quality,
  virality and clickbait flag.

The true model. For viewer ``u`` and post ``p`` of author ``a``, ``h`` hours old::

    shared  = 0.8 closeness + 0.7 interest[topic] + 0.5 media taste[media] + 0.4 quality
              - age decay x h + pair noise
    click   = base + shared + link + clickbait                          + noise
    like    = base + shared + reactivity + photo                        + noise
    comment = base + 0.6 shared + 1.6 closeness + reactivity + text     + noise
    share   = base + 0.5 shared + quality + video + virality            + noise   (rare)
    hide    = base - 0.5 shared + clickbait + disliked topic            + noise
    log dwell (seconds) = base + 0.35 shared + video + quality - clickbait + noise + draw noise

Each reaction is a Bernoulli draw of the sigmoid of its logit. Every noise term is a
deterministic hash of (viewer, post, reaction) and a stored salt: per-pair noise no feature
reveals, part of the truth. :func:`true_reactions` gives the probabilities and the expected
dwell for any viewer and post at any time; :func:`expected_value` weighs them into what the
chapter ranks by, and :data:`VALUE_WEIGHTS` says how.

The log (``impressions``) comes from the app's old feed: newest first, except a random order in
a small share of sessions (exploration, flagged). :func:`feed_requests` is the evaluation
protocol: every viewer opens the app at the start of a day and every unseen post of the last
two days is a candidate. :func:`live_log` continues the world past the log, and can start a
clickbait wave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets._hashing import normal_from_hash, sigmoid, splitmix64
from mlsd.datasets.world import World

DEFAULT_SEED = 0
NAME = "news_feed"

TOPICS = ("news", "sports", "music", "food", "travel", "tech", "family", "humour")
MEDIA = ("text", "photo", "link", "video")
REACTIONS = ("click", "like", "comment", "share", "hide")
#: what one expected reaction is worth in the feed's value (dwell in minutes): see the chapter
VALUE_WEIGHTS = {"click": 1.0, "like": 1.0, "comment": 5.0, "share": 10.0, "dwell_minutes": 1.0,
                 "hide": -20.0}
#: the log's days; a feed request at the start of day d sees posts from the two days before it
LOG_DAYS = 14
VALIDATION_DAY = 12
TEST_DAY = 14
WINDOW_DAYS = 2.0
LATENT_DIM = 4

KNOBS = {
    "n_users": 2_000,
    "n_people": 400,
    "n_pages": 100,
    "friends_mean": 22,                # people a viewer is friends with (Poisson)
    "pages_mean": 7,                   # pages a viewer follows (Poisson)
    "posts_per_day_person": 0.6,       # mean; each author's own rate is Gamma(2) around it
    "posts_per_day_page": 2.5,
    "sessions_per_day_mean": 0.5,      # viewers' app-open rates: Beta(2, 2) around it
    "scroll_mean": 9.0,                # posts seen per session: 2 + Poisson(scroll - 2), per viewer
    "explore_share": 0.1,              # sessions shown in a random order
    "log_days": LOG_DAYS,
    # closeness
    "closeness_latent": 0.8,           # weight of the shared part (latent positions)
    "closeness_own_sd": 0.7,           # the pair's own part
    "friend_offset": 0.8,              # friends are closer than pages
    "contacts_scale": 1.0,             # contacts ~ Poisson(exp(contacts_scale x closeness + 0.5))
    # posts
    "quality_author_sd": 0.6,
    "quality_post_sd": 0.6,
    "clickbait_pages": 0.2,            # share of pages that post clickbait
    "clickbait_rate": 0.6,             # of such a page's link and video posts
    # the true model
    "age_decay_per_hour": 0.03,
    "pair_noise_sd": 0.5,              # in the shared logit
    "head_noise_sd": 0.6,              # in each reaction's own logit
    "dwell_draw_sd": 0.8,
}

WHY = {
    "n_users, n_people, n_pages": "2,000 viewers and 500 authors: about 30 connections and 60-70 "
                                  "candidate posts per feed, and a notebook trains on the log in seconds",
    "closeness_latent, closeness_own_sd": "closeness drives comments; its shared part can be learned "
        "from who reacts to whom (embeddings), its own part only from the pair's history",
    "contacts_scale": "the contact count is the app's one direct view of closeness, and a noisy one",
    "clickbait_pages, clickbait_rate": "clickbait earns clicks and costs hides: a feed ranked by clicks "
                                       "rewards it, a feed ranked by value does not",
    "pair_noise_sd, head_noise_sd": "every reaction has noise no feature reveals: no model reaches "
                                    "the oracle, whose ranking knows it",
    "explore_share": "a tenth of sessions is shown in random order: the log sees old posts too",
    "share base": "shares are rare (about 0.4 % of impressions): the hardest head to learn",
}

COLUMNS = {
    "authors.author_id": "author id, 0..n-1 (people first, then pages)",
    "authors.kind": "'person' or 'page'",
    "authors.followers": "how many viewers are connected to the author (shown on the profile)",
    "connections.user_id": "the viewer",
    "connections.author_id": "an author the viewer sees posts from",
    "connections.kind": "'friend' (a person) or 'follows' (a page)",
    "connections.contacts": "a noisy count of the pair's past contacts (messages, tags)",
    "posts.post_id": "post id, 0..n-1 (in time order)",
    "posts.author_id": "the author",
    "posts.topic": "one of: " + ", ".join(TOPICS),
    "posts.media": "one of: " + ", ".join(MEDIA),
    "posts.created": "when the post was made, in days (fractional) from the start of the log",
    "impressions.session_id": "the feed session (one app open)",
    "impressions.user_id": "the viewer",
    "impressions.post_id": "the post shown",
    "impressions.time": "when the session opened, in days (fractional)",
    "impressions.position": "the post's place in the feed, 0 first",
    "impressions.explore": "1 if the session's feed was in a random order, 0 if newest first",
    "impressions.click": "1 if the viewer clicked the post (opened its link, photo or video)",
    "impressions.like": "1 if the viewer liked the post",
    "impressions.comment": "1 if the viewer commented on the post",
    "impressions.share": "1 if the viewer shared the post",
    "impressions.hide": "1 if the viewer hid the post ('show me less of this')",
    "impressions.dwell": "seconds the viewer spent on the post",
    "user_truth.user_id": "hidden: the viewer",
    "user_truth.activity": "hidden: the chance the viewer opens the app on a day",
    "user_truth.reactivity": "hidden: how readily the viewer likes and comments",
    "user_truth.scroll": "hidden: the mean number of posts the viewer sees per session",
    **{f"user_truth.interest_{t}": f"hidden: interest in {t} (below -0.5: disliked)" for t in TOPICS},
    **{f"user_truth.media_{m}": f"hidden: taste for {m} posts" for m in MEDIA},
    **{f"user_truth.x_{i}": f"hidden: latent position, coordinate {i}" for i in range(LATENT_DIM)},
    "author_truth.author_id": "hidden: the author",
    "author_truth.is_page": "hidden: 1 for a page (also observed as authors.kind)",
    "author_truth.quality": "hidden: the author's mean post quality",
    "author_truth.clickbait_page": "hidden: 1 if the page posts clickbait",
    "author_truth.post_rate": "hidden: posts a day",
    "author_truth.main_topic": "hidden: index of the author's main topic",
    **{f"author_truth.y_{i}": f"hidden: latent position, coordinate {i}" for i in range(LATENT_DIM)},
    "pair_truth.user_id": "hidden: the viewer",
    "pair_truth.author_id": "hidden: the author",
    "pair_truth.closeness": "hidden: the closeness of a connected viewer and author",
    "post_truth.post_id": "hidden: the post",
    "post_truth.quality": "hidden: the post's quality",
    "post_truth.virality": "hidden: how shareable the post is beyond its quality",
    "post_truth.clickbait": "hidden: 1 if the post is clickbait",
    "meta.salt": "hidden: the salt of the per-pair noise hash",
}

#: logit intercepts and effects of the true model (see the module docstring)
_BASE = {"click": -3.5, "like": -3.9, "comment": -6.9, "share": -7.4, "hide": -5.4, "dwell": 1.4}
_EFFECTS = {
    "click": {"shared": 1.0, "link": 1.2, "clickbait": 1.5},
    "like": {"shared": 1.0, "reactivity": 1.0, "photo": 1.0},
    "comment": {"shared": 0.6, "closeness": 1.6, "reactivity": 1.0, "text": 0.8},
    "share": {"shared": 0.5, "quality": 1.0, "video": 0.9, "virality": 1.2},
    "hide": {"shared": -0.5, "clickbait": 2.2, "disliked": 1.5},
    "dwell": {"shared": 0.35, "video": 0.9, "quality": 0.3, "clickbait": -0.6},
}
_HEAD_KEYS = {name: k for k, name in enumerate(("shared",) + REACTIONS + ("dwell",))}


# --------------------------------------------------------------------------- the truth


@dataclass
class Truth:
    """The hidden truth as arrays (for the oracle, the tests and the chapter's checks; never a feature)."""

    interest: np.ndarray      # (users, topics)
    media_taste: np.ndarray   # (users, media)
    reactivity: np.ndarray    # (users,)
    closeness: dict           # (user, author) -> closeness, connected pairs only
    post_author: np.ndarray   # (posts,)
    post_topic: np.ndarray    # (posts,) topic index
    post_media: np.ndarray    # (posts,) media index
    post_created: np.ndarray  # (posts,)
    quality: np.ndarray       # (posts,)
    virality: np.ndarray      # (posts,)
    clickbait: np.ndarray     # (posts,) 0 or 1
    salt: int


def truth_of(world: World, posts: pd.DataFrame | None = None,
             post_truth: pd.DataFrame | None = None) -> Truth:
    """The world's hidden truth as arrays; ``posts``/``post_truth`` replace the log's (live days)."""
    posts = world.observed["posts"] if posts is None else posts
    post_truth = world.hidden["post_truth"] if post_truth is None else post_truth
    if not np.array_equal(posts["post_id"].to_numpy(), np.arange(len(posts))):
        raise ValueError("posts must hold post ids 0..n-1 in order")
    if not np.array_equal(post_truth["post_id"].to_numpy(), posts["post_id"].to_numpy()):
        raise ValueError("post_truth must have one row per post, in the same order")
    users = world.hidden["user_truth"]
    pairs = world.hidden["pair_truth"]
    keys = zip(pairs["user_id"].to_numpy().tolist(), pairs["author_id"].to_numpy().tolist())
    return Truth(
        interest=users[[f"interest_{t}" for t in TOPICS]].to_numpy(),
        media_taste=users[[f"media_{m}" for m in MEDIA]].to_numpy(),
        reactivity=users["reactivity"].to_numpy(),
        closeness=dict(zip(keys, pairs["closeness"].to_numpy().tolist())),
        post_author=posts["author_id"].to_numpy(),
        post_topic=pd.Categorical(posts["topic"], categories=TOPICS).codes.astype(int),
        post_media=pd.Categorical(posts["media"], categories=MEDIA).codes.astype(int),
        post_created=posts["created"].to_numpy(dtype=float),
        quality=post_truth["quality"].to_numpy(),
        virality=post_truth["virality"].to_numpy(),
        clickbait=post_truth["clickbait"].to_numpy(),
        salt=int(world.hidden["meta"]["salt"].iloc[0]),
    )


def _noise(salt: int, users: np.ndarray, posts: np.ndarray, head: str) -> np.ndarray:
    """Standard normal noise that is a fixed function of (viewer, post, head) and the salt."""
    key = (users.astype(np.uint64) * np.uint64(1_000_003) + posts.astype(np.uint64)) * np.uint64(16)
    with np.errstate(over="ignore"):
        h = splitmix64(key + np.uint64(_HEAD_KEYS[head]) + np.uint64(salt))
        return normal_from_hash(splitmix64(h))


def _pairs(users, posts, time, n_posts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = np.asarray(users)
    posts = np.asarray(posts)
    if users.shape != posts.shape or users.ndim != 1:
        raise ValueError(f"users and posts must be 1-D arrays of one length, got shapes "
                         f"{users.shape} and {posts.shape}")
    for name, ids in (("users", users), ("posts", posts)):
        if len(ids) and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"{name} must be integer ids, got dtype {ids.dtype}")
    if len(posts) and (posts.min() < 0 or posts.max() >= n_posts):
        raise ValueError(f"post ids must be in 0..{n_posts - 1}")
    time = np.broadcast_to(np.asarray(time, dtype=float), users.shape)
    if not np.isfinite(time).all():
        raise ValueError("time must be finite")
    return users.astype(np.int64), posts.astype(np.int64), time


def true_reactions(truth: Truth, users, posts, time) -> pd.DataFrame:
    """The true probability of each reaction and the expected dwell (seconds) of each pair.

    ``users`` and ``posts`` are equal-length id arrays; ``time`` (days, fractional; one value or
    one per pair) is when the feed shows the post. Every pair must be connected (the viewer sees
    the author's posts), and no post may be shown before it exists.
    """
    users, posts, time = _pairs(users, posts, time, len(truth.post_author))
    authors = truth.post_author[posts]
    try:
        close = np.array([truth.closeness[k] for k in zip(users.tolist(), authors.tolist())])
    except KeyError as err:
        raise ValueError(f"viewer {err.args[0][0]} is not connected to author {err.args[0][1]}") from None
    close = close.reshape(users.shape)
    age_hours = (time - truth.post_created[posts]) * 24.0
    if (age_hours < 0).any():
        raise ValueError("a post cannot be shown before it is created")
    topic, media = truth.post_topic[posts], truth.post_media[posts]
    interest = truth.interest[users, topic]
    k = KNOBS
    x = {
        "closeness": close, "quality": truth.quality[posts], "virality": truth.virality[posts],
        "clickbait": truth.clickbait[posts].astype(float), "reactivity": truth.reactivity[users],
        "disliked": np.maximum(0.0, -interest - 0.5),
        **{m: (media == i).astype(float) for i, m in enumerate(MEDIA)},
    }
    x["shared"] = (0.8 * close + 0.7 * interest + 0.5 * truth.media_taste[users, media]
                   + 0.4 * x["quality"] - k["age_decay_per_hour"] * age_hours
                   + k["pair_noise_sd"] * _noise(truth.salt, users, posts, "shared"))
    out = {}
    for head in REACTIONS + ("dwell",):
        z = _BASE[head] + sum(w * x[name] for name, w in _EFFECTS[head].items())
        z = z + k["head_noise_sd"] * _noise(truth.salt, users, posts, head)
        out[head] = sigmoid(z) if head != "dwell" else np.exp(z + k["dwell_draw_sd"] ** 2 / 2)
    return pd.DataFrame(out)


def expected_value(reactions: pd.DataFrame) -> np.ndarray:
    """Each post's value: the :data:`VALUE_WEIGHTS` sum of its expected reactions (dwell in minutes)."""
    missing = [c for c in REACTIONS + ("dwell",) if c not in reactions]
    if missing:
        raise ValueError(f"reactions lack the columns {missing}")
    w = VALUE_WEIGHTS
    value = sum(w[r] * reactions[r].to_numpy(dtype=float) for r in REACTIONS)
    return value + w["dwell_minutes"] * reactions["dwell"].to_numpy(dtype=float) / 60.0


def draw_reactions(reactions: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Labels drawn from the true probabilities: 0/1 per reaction and a dwell in seconds."""
    n = len(reactions)
    out = {r: (rng.random(n) < reactions[r].to_numpy()).astype(np.int64) for r in REACTIONS}
    sd = KNOBS["dwell_draw_sd"]
    log_mean = np.log(reactions["dwell"].to_numpy()) - sd**2 / 2
    # logged to a tenth of a second; a glance shorter than that still counts as 0.1 s
    out["dwell"] = np.maximum(0.1, np.round(np.exp(log_mean + sd * rng.standard_normal(n)), 1))
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- generation


def _people(seed: int):
    k = KNOBS
    rng = make_rng(seed, NAME, "people")
    n_users, n_authors = k["n_users"], k["n_people"] + k["n_pages"]
    is_page = np.arange(n_authors) >= k["n_people"]
    activity = np.clip(rng.beta(2, 2, n_users) * 2 * k["sessions_per_day_mean"], 0.02, 1.0)
    users = pd.DataFrame({
        "user_id": np.arange(n_users),
        "activity": activity,
        # active viewers open the app more often and react more
        "reactivity": 1.5 * (activity - k["sessions_per_day_mean"]) + 0.4 * rng.standard_normal(n_users),
        "scroll": np.clip(rng.gamma(4.0, k["scroll_mean"] / 4.0, n_users), 2, 30),
        **{f"interest_{t}": rng.standard_normal(n_users) for t in TOPICS},
        **{f"media_{m}": 0.5 * rng.standard_normal(n_users) for m in MEDIA},
        **{f"x_{i}": rng.standard_normal(n_users) for i in range(LATENT_DIM)},
    })
    n_pages = int(is_page.sum())
    clickbait_page = np.zeros(n_authors, dtype=np.int64)
    clickbait_page[is_page] = rng.random(n_pages) < k["clickbait_pages"]
    rate = np.where(is_page, k["posts_per_day_page"], k["posts_per_day_person"])
    authors = pd.DataFrame({
        "author_id": np.arange(n_authors),
        "is_page": is_page.astype(np.int64),
        "quality": k["quality_author_sd"] * rng.standard_normal(n_authors),
        "clickbait_page": clickbait_page,
        "post_rate": rate * rng.gamma(2.0, 0.5, n_authors),
        "main_topic": rng.integers(0, len(TOPICS), n_authors),
        **{f"y_{i}": rng.standard_normal(n_authors) for i in range(LATENT_DIM)},
    })
    return users, authors


def _connections(seed: int, users: pd.DataFrame, authors: pd.DataFrame):
    """Who sees whom: friends drawn by latent closeness, pages by topic interest."""
    k = KNOBS
    rng = make_rng(seed, NAME, "connections")
    x = users[[f"x_{i}" for i in range(LATENT_DIM)]].to_numpy()
    y = authors[[f"y_{i}" for i in range(LATENT_DIM)]].to_numpy()
    latent = x @ y.T / np.sqrt(LATENT_DIM)
    is_page = authors["is_page"].to_numpy().astype(bool)
    interest = users[[f"interest_{t}" for t in TOPICS]].to_numpy()
    rows = []
    for u in range(len(users)):
        n_friends = max(3, rng.poisson(k["friends_mean"]))
        n_pages = max(1, rng.poisson(k["pages_mean"]))
        p = np.exp(1.5 * latent[u, ~is_page])
        friends = rng.choice(np.flatnonzero(~is_page), n_friends, replace=False, p=p / p.sum())
        q = np.exp(1.2 * interest[u, authors["main_topic"].to_numpy()[is_page]])
        pages = rng.choice(np.flatnonzero(is_page), n_pages, replace=False, p=q / q.sum())
        rows.append(np.column_stack([np.full(n_friends + n_pages, u), np.concatenate([friends, pages])]))
    pairs = np.concatenate(rows)
    page = is_page[pairs[:, 1]]
    closeness = (k["closeness_latent"] * latent[pairs[:, 0], pairs[:, 1]]
                 + k["closeness_own_sd"] * rng.standard_normal(len(pairs))
                 + np.where(page, -k["friend_offset"], k["friend_offset"]) * 0.5)
    contacts = rng.poisson(np.exp(k["contacts_scale"] * closeness + 0.5) * np.where(page, 0.2, 1.0))
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    connections = pd.DataFrame({"user_id": pairs[order, 0], "author_id": pairs[order, 1],
                                "kind": np.where(page[order], "follows", "friend"),
                                "contacts": contacts[order]})
    pair_truth = pd.DataFrame({"user_id": pairs[order, 0], "author_id": pairs[order, 1],
                               "closeness": closeness[order]})
    return connections, pair_truth


def _posts(seed: int, authors: pd.DataFrame, first_day: float, end_day: float, first_id: int,
           stream: str, clickbait_authors=None):
    """Posts created in [first_day, end_day): observed and hidden tables, ids from first_id."""
    k = KNOBS
    rng = make_rng(seed, NAME, stream, "posts")
    span = end_day - first_day
    counts = rng.poisson(authors["post_rate"].to_numpy() * span)
    author = np.repeat(authors["author_id"].to_numpy(), counts)
    n = len(author)
    created = first_day + span * rng.random(n)
    is_page = authors["is_page"].to_numpy()[author].astype(bool)
    main = authors["main_topic"].to_numpy()[author]
    topic = np.where(rng.random(n) < 0.6, main, rng.integers(0, len(TOPICS), n))
    media_p = np.where(is_page[:, None], [0.1, 0.25, 0.4, 0.25], [0.35, 0.45, 0.1, 0.1])
    media = (rng.random(n)[:, None] > np.cumsum(media_p, axis=1)).sum(axis=1)
    cb_author = authors["clickbait_page"].to_numpy()[author].astype(bool)
    if clickbait_authors is not None:
        cb_author |= np.isin(author, clickbait_authors)
    clickbait = (cb_author & (media >= 2) & (rng.random(n) < k["clickbait_rate"])).astype(np.int64)
    quality = (authors["quality"].to_numpy()[author] + k["quality_post_sd"] * rng.standard_normal(n)
               - 0.5 * clickbait)
    virality = rng.standard_normal(n)
    order = np.argsort(created, kind="stable")
    ids = first_id + np.arange(n)
    posts = pd.DataFrame({"post_id": ids, "author_id": author[order],
                          "topic": np.array(TOPICS)[topic[order]], "media": np.array(MEDIA)[media[order]],
                          "created": np.round(created[order], 5)})
    post_truth = pd.DataFrame({"post_id": ids, "quality": quality[order], "virality": virality[order],
                               "clickbait": clickbait[order]})
    return posts, post_truth


_AUTHOR_STRIDE = 10**10   # > the ticks of any time in the world


def _ticks(days) -> np.ndarray:
    """Times as whole 1e-5 days (times are stored to 5 decimals), offset to stay positive."""
    return np.round(np.asarray(days, dtype=float) * 1e5).astype(np.int64) + 10**8


def _candidates(connections: pd.DataFrame, posts: pd.DataFrame, requests: pd.DataFrame,
                seen: np.ndarray | None = None) -> pd.DataFrame:
    """Every (request, post) with the post by a connection, made in the window before the request.

    ``requests`` has request, user_id, time; ``seen`` holds user_id * 10**7 + post_id keys to leave out.
    """
    merged = requests.merge(connections[["user_id", "author_id"]], on="user_id")
    created = posts["created"].to_numpy()
    by_author = posts.sort_values(["author_id", "created"], kind="stable")
    p_sorted = by_author["post_id"].to_numpy()
    # exact integer keys (author, time in 1e-5 days): a post exactly WINDOW_DAYS old is in
    key = by_author["author_id"].to_numpy() * _AUTHOR_STRIDE + _ticks(by_author["created"])
    a = merged["author_id"].to_numpy() * _AUTHOR_STRIDE
    t = _ticks(merged["time"])
    lo = np.searchsorted(key, a + t - round(WINDOW_DAYS * 1e5), side="left")
    hi = np.searchsorted(key, a + t, side="left")
    n = hi - lo
    rep = np.repeat(np.arange(len(merged)), n)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    post = p_sorted[np.repeat(lo, n) + offsets]
    out = merged.iloc[rep].reset_index(drop=True)
    out["post_id"] = post
    out["created"] = created[post - int(posts["post_id"].iloc[0])] if len(posts) else []
    if seen is not None and len(seen):
        keys = out["user_id"].to_numpy().astype(np.int64) * 10**7 + post
        out = out[~np.isin(keys, seen)].reset_index(drop=True)
    return out.sort_values(["request", "post_id"], kind="stable").reset_index(drop=True)


def _simulate(seed: int, users, connections, posts, truth: Truth, days, first_session: int,
              stream: str, seen: np.ndarray | None = None):
    """The old feed's log over ``days``: newest first, random order in explored sessions."""
    k = KNOBS
    rng = make_rng(seed, NAME, stream, "sessions")
    activity = users["activity"].to_numpy()
    scroll = users["scroll"].to_numpy()
    logs = []
    seen = np.zeros(0, dtype=np.int64) if seen is None else seen
    session = first_session
    for day in days:
        opened = np.flatnonzero(rng.random(len(users)) < activity)
        time = np.round(day + rng.random(len(opened)), 5)
        requests = pd.DataFrame({"request": session + np.arange(len(opened)), "user_id": opened, "time": time})
        explore = rng.random(len(opened)) < k["explore_share"]
        depth = 2 + rng.poisson(scroll[opened] - 2)
        session += len(opened)
        cand = _candidates(connections, posts, requests, seen)
        r = cand["request"].to_numpy() - requests["request"].iloc[0] if len(requests) else np.zeros(0, int)
        # newest first; explored sessions by a random key
        sort_key = np.where(explore[r], rng.random(len(cand)), -cand["created"].to_numpy())
        cand = cand.assign(_key=sort_key).sort_values(["request", "_key"], kind="stable")
        cand["position"] = cand.groupby("request").cumcount()
        r = cand["request"].to_numpy() - requests["request"].iloc[0]
        shown = cand[cand["position"].to_numpy() < depth[r]].reset_index(drop=True)
        r = shown["request"].to_numpy() - requests["request"].iloc[0]
        probs = true_reactions(truth, shown["user_id"].to_numpy(), shown["post_id"].to_numpy(),
                               shown["time"].to_numpy())
        labels = draw_reactions(probs, rng)
        logs.append(pd.DataFrame({"session_id": shown["request"].to_numpy(), "user_id": shown["user_id"],
                                  "post_id": shown["post_id"], "time": shown["time"],
                                  "position": shown["position"], "explore": explore[r].astype(np.int64),
                                  **labels}))
        seen = np.concatenate([seen, shown["user_id"].to_numpy().astype(np.int64) * 10**7
                               + shown["post_id"].to_numpy()])
    return pd.concat(logs, ignore_index=True)


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the news feed world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    users, authors = _people(seed)
    connections, pair_truth = _connections(seed, users, authors)
    posts, post_truth = _posts(seed, authors, -WINDOW_DAYS, LOG_DAYS + 1, 0, "log")
    salt = int(make_rng(seed, NAME, "salt").integers(0, 2**31))
    followers = connections.groupby("author_id").size().reindex(authors["author_id"], fill_value=0)
    observed = {"authors": pd.DataFrame({"author_id": authors["author_id"],
                                         "kind": np.where(authors["is_page"] == 1, "page", "person"),
                                         "followers": followers.to_numpy()}),
                "connections": connections, "posts": posts}
    hidden = {"user_truth": users, "author_truth": authors, "pair_truth": pair_truth,
              "post_truth": post_truth, "meta": pd.DataFrame({"salt": [salt]})}
    world = World(name=NAME, seed=seed, observed=observed, hidden=hidden, summary="")
    truth = truth_of(world)
    world.observed["impressions"] = _simulate(seed, users, connections, posts, truth, range(LOG_DAYS), 0, "log")
    world.knobs, world.columns = dict(KNOBS), dict(COLUMNS)
    world.summary = _summary(world)
    return world


def _seen_keys(impressions: pd.DataFrame) -> np.ndarray:
    return impressions["user_id"].to_numpy().astype(np.int64) * 10**7 + impressions["post_id"].to_numpy()


def feed_requests(world: World, day: int = TEST_DAY, *, posts: pd.DataFrame | None = None,
                  impressions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The evaluation protocol: every viewer opens the app at the start of ``day``.

    Returns one row per candidate: ``request`` (= the viewer), ``user_id``, ``author_id``,
    ``post_id``, ``created`` and ``time`` (= ``day``). The candidates are the posts the viewer's
    connections made in the two days before, less those the log (rows before ``day``) showed
    the viewer. ``posts`` and ``impressions`` default to the world's (pass longer ones for live
    days).
    """
    day = check_int("day", day, minimum=int(WINDOW_DAYS))
    posts = world.observed["posts"] if posts is None else posts
    impressions = world.observed["impressions"] if impressions is None else impressions
    if day > np.ceil(posts["created"].max()):
        raise ValueError(f"day {day} is past the posts (the last created on day "
                         f"{posts['created'].max():.2f}); pass the live days' posts")
    users = np.arange(len(world.hidden["user_truth"]))
    requests = pd.DataFrame({"request": users, "user_id": users, "time": float(day)})
    before = impressions[impressions["time"] < day]
    return _candidates(world.observed["connections"], posts, requests, _seen_keys(before))


def live_log(world: World, n_days: int, *, clickbait_wave: float | None = None,
             wave_day: int | None = None):
    """The world continued past the log for ``n_days``: (posts, post_truth, impressions).

    Only the new rows are returned (ids continue the log's). From ``wave_day`` a share
    ``clickbait_wave`` of the pages that did not post clickbait start to (a clickbait wave).
    The log comes from the old feed, as the stored log does (newest first, a random order in
    explored sessions). To score a later day's feed, join the posts and their truth to the
    world's (:func:`truth_of` takes them) and call :func:`feed_requests` with them.
    """
    n_days = check_int("n_days", n_days, minimum=1)
    if (clickbait_wave is None) != (wave_day is None):
        raise ValueError("give clickbait_wave and wave_day together, or neither")
    start = LOG_DAYS
    end = start + n_days
    authors = world.hidden["author_truth"]
    posts, post_truth = world.observed["posts"], world.hidden["post_truth"]
    blocks = [(start + 1, end + 1, None)]
    if clickbait_wave is not None:
        if not 0.0 <= check_finite("clickbait_wave", clickbait_wave) <= 1.0:
            raise ValueError(f"clickbait_wave is a share of pages, in [0, 1]; got {clickbait_wave}")
        wave_day = check_int("wave_day", wave_day, minimum=start + 1)
        if wave_day >= end:
            raise ValueError(f"wave_day must fall in the live days {start + 1}..{end - 1}, got {wave_day}")
        honest = authors.loc[(authors["is_page"] == 1) & (authors["clickbait_page"] == 0), "author_id"]
        rng = make_rng(world.seed, NAME, "wave")
        turned = rng.choice(honest.to_numpy(), int(round(clickbait_wave * len(honest))), replace=False)
        blocks = [(start + 1, wave_day, None), (wave_day, end + 1, np.sort(turned))]
    new_posts, new_truth = [], []
    next_id = len(posts)
    for first, last, turned in blocks:
        if last <= first:
            continue
        p, t = _posts(world.seed, authors, first, last, next_id, f"live-{first}", turned)
        new_posts.append(p)
        new_truth.append(t)
        next_id += len(p)
    all_posts = pd.concat([posts, *new_posts], ignore_index=True)
    all_truth = pd.concat([post_truth, *new_truth], ignore_index=True)
    truth = truth_of(world, all_posts, all_truth)
    impressions = world.observed["impressions"]
    log = _simulate(world.seed, world.hidden["user_truth"], world.observed["connections"], all_posts,
                    truth, range(start, end), int(impressions["session_id"].max()) + 1, f"live-{start}",
                    _seen_keys(impressions))
    return (pd.concat(new_posts, ignore_index=True), pd.concat(new_truth, ignore_index=True), log)


def _summary(world: World) -> str:
    obs, hid = world.observed, world.hidden
    k = KNOBS
    imp = obs["impressions"]
    rates = ", ".join(f"{r} {imp[r].mean():.1%}" for r in REACTIONS)
    per_user = obs["connections"].groupby("user_id").size()
    cb = hid["post_truth"]["clickbait"].mean()
    why = "\n".join(f"- `{name}`: {reason}." for name, reason in WHY.items())
    return f"""
A social app: {k['n_users']:,} viewers and {k['n_people'] + k['n_pages']} authors ({k['n_people']}
people, {k['n_pages']} pages). Each viewer sees the posts of {per_user.mean():.0f} connections on
average (friends and followed pages). {len(obs['posts']):,} posts over the {k['log_days']} days of the
log and the days around it ({cb:.1%} of them clickbait); {len(imp):,} impressions from the old feed
(newest first; {k['explore_share']:.0%} of sessions in a random order), in
{imp['session_id'].nunique():,} sessions.

Reaction rates in the log: {rates}; mean dwell {imp['dwell'].mean():.1f} s.

Every reaction's probability is a logistic function of a shared engagement term (closeness,
topic interest, media taste, quality, age) and effects of its own (clickbait draws clicks and
hides, closeness comments, quality, video and virality shares), with per-pair noise no feature
reveals. `hidden/` holds the viewers' interests, tastes and reactivity, the authors' quality,
each connection's closeness, each post's quality, virality and clickbait flag, and the noise
salt; `mlsd.datasets.news_feed.true_reactions` recomputes every probability, and
`expected_value` weighs them into the value the chapter ranks by: the oracle's gain.

Known biases: the log shows newest posts first, so old posts are seen mostly in explored
sessions; a viewer sees a post at most once; reactions are drawn independently given their
probabilities (a viewer may like and hide one post); closeness shows only through a noisy
contact count and the pair's history.

Why these values:
{why}
""".strip()
