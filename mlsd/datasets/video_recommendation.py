"""The video recommendation world (Chapter 9): which videos will a user watch next?

Creators of very different sizes upload videos in a few genres and languages; users have hidden
tastes. Each (user, video) pair has a **true probability** ``p`` that the user finds the video
worth watching, built from four parts (log-odds scale)::

    logit p = base + propensity(user)
              + genre taste + language match + length fit + creator affinity   (metadata explains)
              + latent user . latent video                                      (hidden factors)
              + quality(video)                                                  (same for everyone)
              + pair noise                                                      (nobody can learn)

A feed shows videos (impressions) for four weeks; exposure is part random, part trending
(rich-get-richer on recent watches), part subscriptions, part search; each impression is watched
with probability ``p``. The log and the metadata are observed. The hidden tables hold what is
needed to recompute ``p`` **exactly** for any pair: :func:`true_relevance`.

Why not store ``p`` for every pair: 3,000 users x 2,000 videos = 6 million rows, about 24 MB of
gzip CSV even at 4 decimals. Instead the per-user and per-video parameters are stored (about
200 kB), and the two per-pair terms (user-creator affinity, pair noise) are a deterministic hash
of the ids and a stored salt, so they need no storage at all.

The evaluation protocol the chapter (and the datasheet's "room to learn") uses is
:func:`room_to_learn`: train on the first three weeks, rank for the last one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.datasets._hashing import normal_from_hash, sigmoid, splitmix64
from mlsd.datasets.world import World, all_tables, stream_drifts
from mlsd.evaluation.metrics import average_precision_at_k, mean_over_users
from mlsd.evaluation.ranking import top_k
from mlsd.book.seeding import make_rng

DEFAULT_SEED = 0
NAME = "video_recommendation"

GENRES = ("music", "gaming", "comedy", "education", "sports", "cooking", "news", "travel")
LANGUAGES = ("en", "es", "hi")
DEVICES = ("phone", "desktop", "tv")
SOURCES = ("random", "trending", "subscription", "search")
LATENT_RANK = 8

KNOBS = {
    # population and catalogue
    "n_users": 3000,
    "n_videos": 2000,
    "n_creators": 300,
    "language_shares": (0.6, 0.25, 0.15),
    "creator_size_pareto_alpha": 1.1,
    "videos_per_creator_size_power": 0.6,
    "video_length_median_seconds": 420,
    "video_length_log_sd": 0.9,
    "catalogue_age_mean_days": 365,
    # time
    "n_days": 28,
    "test_days": 7,
    "burn_in_days": 7,
    "share_videos_uploaded_in_log": 0.25,
    "share_users_signing_up_in_log": 0.1,
    # activity and exposure
    "active_day_share_mean": 0.5,
    "impressions_per_active_day_median": 15,
    "exposure_mix": (0.15, 0.35, 0.25, 0.25),
    "trending_window_days": 3,
    "trending_half_life_days": 7,
    "subscriptions_per_user_mean": 6,
    "search_sharpness": 1.0,
    # the true relevance (log-odds scale)
    "base_logit": -3.5,
    "propensity_sd": 0.5,
    "genre_taste_sd": 1.0,
    "language_mismatch": -2.5,
    "length_fit_weight": 0.3,
    "creator_affinity_sd": 0.7,
    "latent_sd": 1.0,
    "quality_sd": 0.5,
    "pair_noise_sd": 0.5,
}

#: The first day of the test window: the last ``test_days`` of the log are for testing.
TEST_CUTOFF_DAY = KNOBS["n_days"] - KNOBS["test_days"]

#: Why each knob has its value: the datasheet prints these next to the values.
WHY = {
    "n_users": "thousands: enough users for collaborative filtering to find structure, small enough to run in seconds",
    "n_videos": "a catalogue a ranker cannot show in full: each user sees a few percent of it",
    "n_creators": "a channel ecosystem of a few hundred, so a user can subscribe to a handful",
    "language_shares": "most users and videos in one language, two sizeable minorities (as on global platforms)",
    "creator_size_pareto_alpha": "audience sizes follow a power law (alpha near 1): a few channels have most subscribers",
    "videos_per_creator_size_power": "big channels upload more, but less than in proportion to their audience",
    "video_length_median_seconds": "a typical video is several minutes long",
    "video_length_log_sd": "lengths range from shorts to hour-long videos",
    "catalogue_age_mean_days": "most of the catalogue was uploaded before the log starts",
    "n_days": "four weeks: three to train on, one to test",
    "test_days": "a week: weekly seasonality is inside one test window",
    "burn_in_days": "a week simulated but not logged, so trending counts are warm on day 0",
    "share_videos_uploaded_in_log": "about 18 uploads a day: fresh items keep arriving (the cold-start slice)",
    "share_users_signing_up_in_log": "a steady trickle of new users (the other cold-start slice)",
    "active_day_share_mean": "users open the app on about half of the days, some daily, some rarely",
    "impressions_per_active_day_median": "one or two short sessions of scrolling a day",
    "exposure_mix": "shares of impressions from random exploration, trending, subscriptions and search",
    "trending_window_days": "trending counts the watches of the last three days",
    "trending_half_life_days": "trending favours fresh videos: the weight halves when a video's age grows by a week",
    "subscriptions_per_user_mean": "a handful of subscriptions per user",
    "search_sharpness": "search returns videos of the genres and language the user asks for, not exact matches",
    "base_logit": "sets the watch rate on impressions to a few percent, as feeds report",
    "propensity_sd": "some users watch more of what they are shown than others",
    "genre_taste_sd": "genre is the strongest taste that metadata explains",
    "language_mismatch": "a video in a language the user does not speak is rarely watched",
    "length_fit_weight": "users prefer lengths near their own (TV viewers longer, phone viewers shorter)",
    "creator_affinity_sd": "users like some channels more than their genre predicts",
    "latent_sd": "as much taste in hidden factors as in genre: what collaborative filtering can learn",
    "quality_sd": "quality matters, but less than taste: popularity alone cannot rank well",
    "pair_noise_sd": "a part no model can learn: the oracle is not perfect either",
}

COLUMNS = {
    "users.user_id": "unique user id (0 to n_users - 1)",
    "users.signup_day": "day the user signed up (negative: before the log)",
    "users.language": "the user's language",
    "users.device": "the device the user mostly watches on",
    "users.signup_genre": "the genre the user picked at sign-up (a noisy view of their tastes)",
    "creators.creator_id": "unique creator (channel) id",
    "creators.language": "the language the creator publishes in",
    "creators.main_genre": "the genre of most of the creator's videos",
    "creators.subscribers": "platform-wide subscribers at the start of the log (heavy-tailed)",
    "videos.video_id": "unique video id (0 to n_videos - 1)",
    "videos.creator_id": "joins to creators",
    "videos.genre": "the video's genre",
    "videos.language": "the video's language (the creator's)",
    "videos.length_seconds": "duration of the video",
    "videos.upload_day": "day of upload (negative: before the log); shown in feeds from the next day on",
    "subscriptions.user_id": "joins to users",
    "subscriptions.creator_id": "joins to creators",
    "subscriptions.day": "day the user subscribed (negative: before the log); no subscriptions change during the log",
    "impressions.day": "day of the impression, 0 = first day of the log",
    "impressions.second": "second of the day (0 to 86399)",
    "impressions.user_id": "joins to users",
    "impressions.video_id": "joins to videos",
    "impressions.source": "what put the video in the feed: random, trending, subscription or search",
    "impressions.watched": "1 if the user watched the video (the label)",
    "user_truth.user_id": "joins to users",
    "user_truth.propensity": "the user's general tendency to watch (log-odds)",
    "user_truth.length_preference": "log of the user's preferred video length in seconds",
    "video_truth.video_id": "joins to videos",
    "video_truth.quality": "the video's quality (log-odds), the same for every user",
    "salts.pair_noise_salt": "key of the hash that gives each (user, video) pair its noise",
    "salts.creator_affinity_salt": "key of the hash that gives each (user, creator) pair its affinity",
}
COLUMNS.update({f"user_truth.taste_{g}": f"taste for {g} (log-odds)" for g in GENRES})
COLUMNS.update({f"user_truth.latent_{i}": f"hidden factor {i} of the user" for i in range(LATENT_RANK)})
COLUMNS.update({f"video_truth.latent_{i}": f"hidden factor {i} of the video" for i in range(LATENT_RANK)})

SUMMARY = """
A video platform recommends videos on a home feed. {n_users:,} users, {n_videos:,} videos by
{n_creators} creators in {n_genres} genres ({genres}) and {n_languages} languages ({languages}).
For four weeks we log every impression (a video shown in a user's feed) and whether it was
watched. Each (user, video) pair has a hidden true probability `p` that the user finds the video
worth watching:

`logit p = base + propensity(user) + taste(user, genre) + language match + length fit
+ affinity(user, creator) + latent(user) . latent(video) + quality(video) + pair noise`.

Genre, language, length and creator are in the metadata, so a content model can learn the first
half; the {rank} latent factors show only in who watches what (collaborative filtering); quality
is the part popularity captures; the pair noise nobody can learn. `p` does not change over time.

**Exposure.** Each impression comes from one of four sources: random exploration, trending
(videos watched most in the last {window} days, discounted by age: rich-get-richer), the user's
subscriptions (a fresh video of a subscribed creator) and search (videos in the user's language
and favourite genres). A video enters feeds the day after its upload; the feed never shows a
video the user has already watched, nor the same video twice in a day. Watched = impression x
Bernoulli(p).

**Realism.** Users who were active in every week saw a median of {median_impressions:.0f}
impressions over the four weeks; the mean watch rate on impressions is {watch_rate:.1%}. The
largest 10% of creators have {top_creator_share:.0%} of all subscribers.

**Cold start.** {new_users} users sign up and {new_videos} videos are uploaded in the last
{test_days} days (the test week): no history before the test cut-off.

**Room to learn.** Protocol (`room_to_learn` in the module): the cut-off is day {cutoff}; for each of the
{n_test_users:,} users who watch a candidate in the test week, rank the {n_candidates:,} videos
uploaded before the cut-off that the user has not watched before it; relevant = watched in the
test week. At this seed, MAP@10 on the logged labels is {pop_map:.4f} for the popularity
baseline (most watched in the three training weeks) and {oracle_map:.4f} for the oracle (ranked
by the true `p`): {map_ratio:.1f} times the baseline, ahead by {map_margin:.4f}. Against the hidden
truth, the expected share of relevant videos in the top 10 (mean `p` of the list) is
{pop_p:.3f} for popularity and {oracle_p:.3f} for the oracle ({p_ratio:.1f} times). The tests
require the oracle's MAP@10 to be at least twice the baseline's at seeds 0, 1 and 2.

**Hidden truth.** `hidden/user_truth.csv.gz` and `hidden/video_truth.csv.gz` hold each user's
propensity, genre tastes, preferred length and latent factors and each video's quality and latent
factors; `hidden/salts.csv.gz` the keys of the two per-pair terms, which are deterministic hashes
of the ids. `mlsd.datasets.video_recommendation.true_relevance(world, user_ids, video_ids)`
recomputes `p` exactly for any pairs (a full table would be 6 million rows, about 24 MB of gzip CSV).

**Known biases.** The log only shows what the feed chose to show: trending feeds on its own
watches, so popular videos look better than they are, and a video never shown has no label.
Unwatched impressions are not negatives in general: most videos were never shown at all.

**Why these values.**

{why}
"""


# --------------------------------------------------------------------------- small helpers


def _hash_normal(salt: int, a, b) -> np.ndarray:
    """Standard normal numbers that are a fixed function of ``(salt, a, b)``: a hash, no storage.

    ``a`` and ``b`` are integer arrays in [0, 2**32) (broadcast against each other), packed into one
    64-bit key with the salt and mixed by SplitMix64 (see :mod:`mlsd.datasets._hashing`).
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    with np.errstate(over="ignore"):  # the hash relies on 64-bit wrap-around
        return normal_from_hash(splitmix64((a << np.uint64(32)) ^ b ^ np.uint64(salt)))


def _codes(values, names: tuple[str, ...]) -> np.ndarray:
    """Strings -> their position in ``names`` (e.g. genre name -> 0..7)."""
    lookup = {name: i for i, name in enumerate(names)}
    return np.array([lookup[v] for v in values], dtype=np.int64)


# --------------------------------------------------------------------------- the true relevance


@dataclass
class _Truth:
    """Everything ``p`` depends on, as arrays indexed by user id and video id."""

    user_language: np.ndarray
    propensity: np.ndarray
    taste: np.ndarray  # (n_users, n_genres)
    length_preference: np.ndarray
    user_latent: np.ndarray  # (n_users, rank)
    video_genre: np.ndarray
    video_language: np.ndarray
    video_log_length: np.ndarray
    video_creator: np.ndarray
    quality: np.ndarray
    video_latent: np.ndarray  # (n_videos, rank)
    pair_noise_salt: int
    creator_affinity_salt: int


def _truth_from_tables(world) -> _Truth:
    tables = all_tables(world)
    needed = ("users", "videos", "user_truth", "video_truth", "salts")
    missing = [t for t in needed if t not in tables]
    if missing:
        raise ValueError(f"the true relevance needs the tables {needed}; missing: {missing}")
    users, videos = tables["users"], tables["videos"]
    user_truth, video_truth, salts = tables["user_truth"], tables["video_truth"], tables["salts"]
    # ids are positions (0..n-1), so arrays can be indexed by id directly
    for name, frame, col in (("users", users, "user_id"), ("user_truth", user_truth, "user_id"),
                             ("videos", videos, "video_id"), ("video_truth", video_truth, "video_id")):
        if not np.array_equal(frame[col].to_numpy(), np.arange(len(frame))):
            raise ValueError(f"{name}.{col} must be 0, 1, ..., n - 1 in order")
    latent = [f"latent_{i}" for i in range(LATENT_RANK)]
    # a stream's new genres (see :func:`stream`) come after the stored ones, as extra taste columns
    extra = tuple(c[len("taste_"):] for c in user_truth.columns if c.startswith("taste_") and c[len("taste_"):] not in GENRES)
    genres = GENRES + extra
    return _Truth(
        user_language=_codes(users["language"], LANGUAGES),
        propensity=user_truth["propensity"].to_numpy(float),
        taste=user_truth[[f"taste_{g}" for g in genres]].to_numpy(float),
        length_preference=user_truth["length_preference"].to_numpy(float),
        user_latent=user_truth[latent].to_numpy(float),
        video_genre=_codes(videos["genre"], genres),
        video_language=_codes(videos["language"], LANGUAGES),
        video_log_length=np.log(videos["length_seconds"].to_numpy(float)),
        video_creator=videos["creator_id"].to_numpy(np.int64),
        quality=video_truth["quality"].to_numpy(float),
        video_latent=video_truth[latent].to_numpy(float),
        pair_noise_salt=int(salts["pair_noise_salt"].iloc[0]),
        creator_affinity_salt=int(salts["creator_affinity_salt"].iloc[0]),
    )


def _creator_affinity(truth: _Truth, u, c) -> np.ndarray:
    return KNOBS["creator_affinity_sd"] * _hash_normal(truth.creator_affinity_salt, u, c)


def _metadata_logit(truth: _Truth, u, v) -> np.ndarray:
    """The part of the log-odds that the user's tastes for genre and language explain."""
    mismatch = truth.user_language[u] != truth.video_language[v]
    return truth.taste[u, truth.video_genre[v]] + KNOBS["language_mismatch"] * mismatch


def _logit(truth: _Truth, u, v) -> np.ndarray:
    k = KNOBS
    length_fit = -k["length_fit_weight"] * (truth.video_log_length[v] - truth.length_preference[u]) ** 2
    # the latent dot product one factor at a time: a (users, videos, rank) array would not fit
    latent = sum(truth.user_latent[u, i] * truth.video_latent[v, i] for i in range(LATENT_RANK))
    return (
        k["base_logit"]
        + truth.propensity[u]
        + _metadata_logit(truth, u, v)
        + length_fit
        + _creator_affinity(truth, u, truth.video_creator[v])
        + latent
        + truth.quality[v]
        + k["pair_noise_sd"] * _hash_normal(truth.pair_noise_salt, u, v)
    )


def _ids(name: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer ids, got values of type {arr.dtype}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(f"{name} must be ids in 0..{n - 1}, got {arr[bad].flat[0].item()!r}")
    return arr.astype(np.int64)


def true_relevance(world, user_ids, video_ids) -> np.ndarray:
    """The true probability that each user finds each video relevant (watches it if shown).

    ``world`` is the :class:`World` (or a mapping with its ``users``, ``videos``,
    ``user_truth``, ``video_truth`` and ``salts`` tables). ``user_ids`` and ``video_ids`` are
    integer arrays broadcast against each other, as in NumPy: equal-length arrays give one ``p``
    per pair; ``users[:, None]`` and ``videos[None, :]`` give a users x videos matrix.

    This is exactly the ``p`` the watches were drawn from. Use it for the oracle only.
    """
    truth = _truth_from_tables(world)
    u = _ids("user_ids", user_ids, len(truth.propensity))
    v = _ids("video_ids", video_ids, len(truth.quality))
    try:
        np.broadcast_shapes(u.shape, v.shape)
    except ValueError:
        raise ValueError(f"user_ids {u.shape} and video_ids {v.shape} do not broadcast") from None
    return sigmoid(_logit(truth, u, v))


# --------------------------------------------------------------------------- users and catalogue


def _creators(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Creators with a heavy-tailed (Pareto) audience; returns the table and the sizes."""
    k = KNOBS
    rng = make_rng(seed, NAME, "creators")
    n = k["n_creators"]
    size = 1.0 + rng.pareto(k["creator_size_pareto_alpha"], n)  # Pareto with minimum 1
    creators = pd.DataFrame(
        {
            "creator_id": np.arange(n),
            "language": np.array(LANGUAGES)[rng.choice(len(LANGUAGES), n, p=k["language_shares"])],
            "main_genre": np.array(GENRES)[rng.integers(0, len(GENRES), n)],
            "subscribers": np.round(size * 1000).astype(np.int64),
        }
    )
    return creators, size


def _videos(seed: int, creators: pd.DataFrame, size: np.ndarray) -> pd.DataFrame:
    k = KNOBS
    rng = make_rng(seed, NAME, "videos")
    n, n_creators = k["n_videos"], len(creators)
    # every creator has a video; the rest go to creators by a power of their audience
    weight = size ** k["videos_per_creator_size_power"]
    per_creator = 1 + rng.multinomial(n - n_creators, weight / weight.sum())
    creator = np.repeat(np.arange(n_creators), per_creator)
    # 80% of a creator's videos are in the creator's main genre
    main = _codes(creators["main_genre"], GENRES)[creator]
    genre = np.where(rng.random(n) < 0.8, main, rng.integers(0, len(GENRES), n))
    length = np.exp(np.log(k["video_length_median_seconds"]) + rng.normal(0, k["video_length_log_sd"], n))
    in_log = rng.random(n) < k["share_videos_uploaded_in_log"]
    back_catalogue = -1 - np.floor(rng.exponential(k["catalogue_age_mean_days"], n))
    upload_day = np.where(in_log, rng.integers(0, k["n_days"], n), back_catalogue).astype(np.int64)
    videos = pd.DataFrame(
        {
            "creator_id": creator,
            "genre": np.array(GENRES)[genre],
            "language": creators["language"].to_numpy()[creator],
            "length_seconds": np.clip(np.round(length), 15, 4 * 3600).astype(np.int64),
            "upload_day": upload_day,
        }
    )
    # ids in upload order, so a later id is a newer video
    videos = videos.sort_values(["upload_day", "creator_id"], kind="stable").reset_index(drop=True)
    videos.insert(0, "video_id", np.arange(n))
    return videos


def _users(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Users (observed) and their hidden tastes (user_truth)."""
    k = KNOBS
    rng = make_rng(seed, NAME, "users")
    n = k["n_users"]
    language = rng.choice(len(LANGUAGES), n, p=k["language_shares"])
    device = rng.choice(len(DEVICES), n, p=[0.65, 0.2, 0.15])
    taste = rng.normal(0.0, k["genre_taste_sd"], (n, len(GENRES)))
    said = taste + rng.normal(0.0, 0.7, taste.shape)  # what the user picks at sign-up
    # preferred length: TV viewers like long videos, phone viewers short ones
    length_shift = np.array([-0.4, 0.2, 0.8])[device]
    length_preference = np.log(k["video_length_median_seconds"]) + length_shift + rng.normal(0, 0.5, n)
    new = rng.random(n) < k["share_users_signing_up_in_log"]
    # the others signed up before the burn-in, 500 days ago on average
    before = -k["burn_in_days"] - 1 - np.floor(rng.exponential(500, n))
    signup_day = np.where(new, rng.integers(0, k["n_days"], n), before)
    users = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "signup_day": signup_day.astype(np.int64),
            "language": np.array(LANGUAGES)[language],
            "device": np.array(DEVICES)[device],
            "signup_genre": np.array(GENRES)[said.argmax(axis=1)],
        }
    )
    truth = {"user_id": np.arange(n), "propensity": rng.normal(0, k["propensity_sd"], n)}
    truth |= {f"taste_{g}": taste[:, i] for i, g in enumerate(GENRES)}
    truth["length_preference"] = length_preference
    latent = rng.normal(0, np.sqrt(k["latent_sd"] / np.sqrt(LATENT_RANK)), (n, LATENT_RANK))
    truth |= {f"latent_{i}": latent[:, i] for i in range(LATENT_RANK)}
    return users, pd.DataFrame(truth).round(4)


def _video_truth(seed: int, n_videos: int) -> pd.DataFrame:
    k = KNOBS
    rng = make_rng(seed, NAME, "video_truth")
    # user and video factors each with variance latent_sd / sqrt(rank): the dot product of the
    # two then has standard deviation latent_sd
    latent = rng.normal(0, np.sqrt(k["latent_sd"] / np.sqrt(LATENT_RANK)), (n_videos, LATENT_RANK))
    truth = {"video_id": np.arange(n_videos), "quality": rng.normal(0, k["quality_sd"], n_videos)}
    truth |= {f"latent_{i}": latent[:, i] for i in range(LATENT_RANK)}
    return pd.DataFrame(truth).round(4)


def _salts(seed: int) -> pd.DataFrame:
    salt = make_rng(seed, NAME, "salts").integers(0, 2**62, 2)
    return pd.DataFrame({"pair_noise_salt": [int(salt[0])], "creator_affinity_salt": [int(salt[1])]})


def _subscriptions(seed: int, users: pd.DataFrame, creators: pd.DataFrame, size: np.ndarray, truth: _Truth) -> pd.DataFrame:
    """Each user subscribes to a few creators: ones they like, and big ones (they are found more)."""
    k = KNOBS
    rng = make_rng(seed, NAME, "subscriptions")
    n_users, n_creators = len(users), len(creators)
    u, c = np.arange(n_users)[:, None], np.arange(n_creators)[None, :]
    lang_match = truth.user_language[u] == _codes(creators["language"], LANGUAGES)[c]
    liking = (
        _creator_affinity(truth, u, c)
        + truth.taste[u, _codes(creators["main_genre"], GENRES)[c]]
        + k["language_mismatch"] * ~lang_match
    )
    log_weight = liking + 0.5 * np.log(size)[c]  # weight = exp(liking) x sqrt(audience)
    # sample without replacement by the Gumbel-top-k trick: the n largest of log weight + Gumbel noise
    keys = log_weight + rng.gumbel(size=log_weight.shape)
    n_subs = np.minimum(rng.poisson(k["subscriptions_per_user_mean"], n_users), n_creators)
    order = np.argsort(-keys, axis=1)
    rows = np.repeat(np.arange(n_users), n_subs)
    ranks = np.arange(len(rows)) - np.repeat(np.cumsum(n_subs) - n_subs, n_subs)
    signup = users["signup_day"].to_numpy()[rows]
    # subscribed some day between sign-up and the log (or at sign-up for new users)
    start = np.maximum(signup, -365)
    day = np.where(signup >= 0, signup, start + np.floor(rng.random(len(rows)) * (-start)))
    subs = pd.DataFrame({"user_id": rows, "creator_id": order[rows, ranks], "day": day.astype(np.int64)})
    return subs.sort_values(["user_id", "creator_id"]).reset_index(drop=True)


# --------------------------------------------------------------------------- the feed


@dataclass
class _Feed:
    """What the feed needs each day: the videos, the users and the hidden relevance."""

    upload_day: np.ndarray
    signup_day: np.ndarray
    activity: np.ndarray  # share of days each user opens the app
    per_day: np.ndarray  # mean impressions on an active day, per user
    search_cdf: np.ndarray  # flattened: row u holds u + (CDF of where user u's searches lead)
    sub_creators: np.ndarray  # creator ids, grouped by user ...
    sub_start: np.ndarray  # ... user u's are sub_creators[sub_start[u]:sub_start[u + 1]]
    creator_videos: np.ndarray  # video ids, grouped by creator ...
    creator_start: np.ndarray  # ... creator c's are creator_videos[creator_start[c]:creator_start[c + 1]]
    truth: _Truth  # what the true relevance of a pair is computed from


def _freshness(age: np.ndarray) -> np.ndarray:
    """1 for a video uploaded yesterday, halving every ``trending_half_life_days``; 0 if not yet shown."""
    return np.where(age >= 1, 0.5 ** (np.maximum(age - 1, 0) / KNOBS["trending_half_life_days"]), 0.0)


def _trending(feed: _Feed, recent_watches: np.ndarray, day: int) -> np.ndarray:
    """Trending weights: recent watches (plus one, so new videos can start), discounted by age."""
    return (recent_watches + 1.0) * _freshness(day - feed.upload_day)


def _pick(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(len(weights), n, p=weights / weights.sum())


def _subscription_videos(feed: _Feed, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
    """A random subscribed creator of each user, then one of their videos, fresher ones likelier.

    Returns -1 where the creator has nothing to show yet.
    """
    n_subs = feed.sub_start[users + 1] - feed.sub_start[users]
    creator = feed.sub_creators[feed.sub_start[users] + (rng.random(len(users)) * n_subs).astype(np.int64)]
    # old videos keep a little weight: subscribers also dig into a channel's back catalogue
    weight = _freshness(day - feed.upload_day[feed.creator_videos]) + 0.02 * (feed.upload_day[feed.creator_videos] < day)
    cum = np.r_[0.0, np.cumsum(weight)]
    lo, hi = cum[feed.creator_start[creator]], cum[feed.creator_start[creator + 1]]
    pick = np.searchsorted(cum, lo + rng.random(len(users)) * (hi - lo), side="right") - 1
    pick = np.minimum(pick, len(feed.creator_videos) - 1)
    return np.where(hi > lo, feed.creator_videos[pick], -1)


def _search_videos(feed: _Feed, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
    """A draw from each user's search distribution; videos not yet available are drawn again."""
    n_videos = len(feed.upload_day)
    video = np.full(len(users), -1)
    todo = np.arange(len(users))
    for _ in range(100):  # a handful of rounds suffice: most of the catalogue is available
        if not len(todo):
            break
        rows = users[todo]
        video[todo] = np.searchsorted(feed.search_cdf, rows + rng.random(len(todo)), side="right") - rows * n_videos
        video[todo] = np.minimum(video[todo], n_videos - 1)
        todo = todo[feed.upload_day[video[todo]] >= day]
    return video


def _simulate_day(feed: _Feed, day: int, trending: np.ndarray, rng: np.random.Generator, logit_shift: float = 0.0) -> pd.DataFrame:
    """One day of the feed: who opens the app, what each impression shows, what is watched.

    ``logit_shift`` is added to every log-odds (a prior shift; only :func:`stream` uses it).
    """
    n_users = len(feed.signup_day)
    active = (feed.signup_day <= day) & (rng.random(n_users) < feed.activity)
    users = np.repeat(np.arange(n_users), np.where(active, rng.poisson(feed.per_day), 0))
    source = rng.choice(len(SOURCES), len(users), p=KNOBS["exposure_mix"])
    has_subs = feed.sub_start[users + 1] > feed.sub_start[users]
    source[(source == 2) & ~has_subs] = 1  # nobody to follow: trending instead

    video = np.full(len(users), -1)
    random, subscription, search = (np.flatnonzero(source == SOURCES.index(s)) for s in ("random", "subscription", "search"))
    video[random] = rng.choice(np.flatnonzero(feed.upload_day < day), len(random))
    video[subscription] = _subscription_videos(feed, users[subscription], day, rng)
    video[search] = _search_videos(feed, users[search], day, rng)
    source[video == -1] = 1  # a subscribed creator with nothing to show yet: trending instead
    trending_rows = np.flatnonzero(source == 1)
    video[trending_rows] = _pick(trending, len(trending_rows), rng)
    watched = rng.random(len(users)) < sigmoid(_logit(feed.truth, users, video) + logit_shift)  # Bernoulli(p)
    return pd.DataFrame({"day": day, "user_id": users, "video_id": video, "source": source, "watched": watched})


def _seconds(log: pd.DataFrame, lengths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Second of the day of each impression: one session per user and day, impressions in order.

    ``log`` is sorted by user and day. Scrolling past a video takes ~20 s; watching one takes
    about half its length. The session starts at a random time that leaves room for all of it.
    """
    gap = 5 + rng.exponential(15, len(log)) + log["watched"].to_numpy() * 0.5 * lengths[log["video_id"].to_numpy()]
    session = pd.Series(log["user_id"].to_numpy() * 100_000 + log["day"].to_numpy())
    offset = pd.Series(gap).groupby(session).cumsum().to_numpy() - gap  # time since the session began
    span = pd.Series(offset).groupby(session).transform("max").to_numpy()
    begin = pd.Series(rng.random(len(log))).groupby(session).transform("first").to_numpy()
    begin = begin * np.maximum(86_399 - span, 0)
    return np.minimum(begin + offset, 86_399).astype(np.int64)


def _feed(seed: int, users: pd.DataFrame, videos: pd.DataFrame, subs: pd.DataFrame, truth: _Truth) -> _Feed:
    k = KNOBS
    rng = make_rng(seed, NAME, "activity")
    n_users, n_videos = len(users), len(videos)
    # share of active days ~ Beta with the knob's mean; impressions per active day ~ log-normal
    mean = k["active_day_share_mean"]
    activity = rng.beta(2 * mean, 2 * (1 - mean), n_users)
    per_day = k["impressions_per_active_day_median"] * np.exp(rng.normal(0, 0.5, n_users))
    # search leads to videos in the user's language and favourite genres
    u, v = np.arange(n_users)[:, None], np.arange(n_videos)[None, :]
    search = np.cumsum(np.exp(k["search_sharpness"] * _metadata_logit(truth, u, v)), axis=1)
    search = (search / search[:, -1:] + u).ravel()  # row u now spans (u, u + 1]: one searchsorted for all
    creator_of = videos["creator_id"].to_numpy()
    return _Feed(
        upload_day=videos["upload_day"].to_numpy(),
        signup_day=users["signup_day"].to_numpy(),
        activity=activity,
        per_day=per_day,
        search_cdf=search,
        sub_creators=subs["creator_id"].to_numpy(),  # subs is sorted by user
        sub_start=np.searchsorted(subs["user_id"].to_numpy(), np.arange(n_users + 1)),
        creator_videos=np.argsort(creator_of, kind="stable"),
        creator_start=np.searchsorted(np.sort(creator_of), np.arange(creator_of.max() + 2)),
        truth=truth,
    )


def _impressions(seed: int, feed: _Feed, lengths: np.ndarray) -> pd.DataFrame:
    """Run the feed for the burn-in and the logged days; return the impression log."""
    k = KNOBS
    rng = make_rng(seed, NAME, "feed")
    recent = np.zeros((k["trending_window_days"], len(feed.upload_day)))  # watches per day and video
    days = []
    for day in range(-k["burn_in_days"], k["n_days"]):
        log = _simulate_day(feed, day, _trending(feed, recent.sum(axis=0), day), rng)
        recent = np.roll(recent, 1, axis=0)
        recent[0] = np.bincount(log["video_id"], weights=log["watched"], minlength=recent.shape[1])
        if day >= 0:  # the burn-in only warms up the trending counts
            days.append(log)
    return _clean_log(pd.concat(days, ignore_index=True), lengths, make_rng(seed, NAME, "seconds"))


def _clean_log(log: pd.DataFrame, lengths: np.ndarray, rng: np.random.Generator, watched_before=None) -> pd.DataFrame:
    """Simulated days -> the impression log: seconds, the feed's two rules, time order, final columns.

    ``watched_before`` (a :class:`pandas.MultiIndex` of (user_id, video_id), or None) holds pairs
    already watched before these days: they are never shown again.
    """
    log = log.sort_values(["user_id", "day"], kind="stable")
    log["second"] = _seconds(log, lengths, rng)
    # the feed shows a video at most once a day to a user, and never again once it was watched
    # (neither rule looks at the impression's own outcome, so each kept one is still Bernoulli(p))
    log = log[~log.duplicated(["user_id", "video_id", "day"])]
    earlier_watches = log.groupby(["user_id", "video_id"])["watched"].cumsum() - log["watched"]
    log = log[earlier_watches.to_numpy() == 0]
    if watched_before is not None:
        log = log[~pd.MultiIndex.from_arrays([log["user_id"], log["video_id"]]).isin(watched_before)]
    log = log.sort_values(["day", "second", "user_id"], kind="stable")
    return pd.DataFrame(
        {
            "day": log["day"].to_numpy(np.int64),
            "second": log["second"].to_numpy(np.int64),
            "user_id": log["user_id"].to_numpy(np.int64),
            "video_id": log["video_id"].to_numpy(np.int64),
            "source": np.array(SOURCES)[log["source"].to_numpy()],
            "watched": log["watched"].to_numpy(np.int64),
        }
    )


# --------------------------------------------------------------------------- evaluation


def split_at(log: pd.DataFrame, day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a log with a ``day`` column into (days before ``day``, days from ``day`` on).

    A time-based split: everything a model trains on happened before everything it is tested on.
    """
    if not isinstance(log, pd.DataFrame) or "day" not in log.columns:
        raise ValueError("log must be a DataFrame with a 'day' column")
    day = check_int("day", day)
    if not log["day"].min() < day <= log["day"].max():
        raise ValueError(f"day must leave days on both sides: the log has days {log['day'].min()} to {log['day'].max()}, got {day}")
    before = log["day"] < day
    return log[before].reset_index(drop=True), log[~before].reset_index(drop=True)


@dataclass
class RankingTask:
    """Who to rank for at the cut-off, what they may be shown, and what counts as relevant.

    Attributes
    ----------
    cutoff : int
        The first test day.
    users : numpy.ndarray
        The test users: those who watch at least one candidate during the test window.
    candidates : numpy.ndarray
        The videos uploaded before the cut-off (the same for every user).
    seen : dict[int, set[int]]
        Per test user, the videos they watched before the cut-off: never recommended again.
    relevant : dict[int, set[int]]
        Per test user, the candidates they watched in the test window.
    """

    cutoff: int
    users: np.ndarray
    candidates: np.ndarray
    seen: dict
    relevant: dict

    def top_k(self, scores, k: int = 10) -> dict:
        """Each test user's top ``k`` candidates by ``scores``, never a video they already watched.

        ``scores`` has one row per test user and one column per candidate, or is one score per
        candidate for everyone (a popularity ranking). Ties go to the lower video id.
        """
        k = check_int("k", k, minimum=1)
        shape = (len(self.users), len(self.candidates))
        try:
            scores = np.array(np.broadcast_to(scores, shape), dtype=float)  # a copy we may change
        except ValueError:
            raise ValueError(f"scores must have shape (users, candidates) = {shape} or ({shape[1]},)") from None
        rows, cols = self._seen_cells
        scores[rows, cols] = -np.inf
        best = top_k(scores, k)  # ties go to the lower column, that is the lower video id
        shown = np.take_along_axis(scores, best, axis=1) > -np.inf  # never a watched video
        lists = {user: self.candidates[row[ok]].tolist()
                 for user, row, ok in zip(self.users.tolist(), best, shown)}
        return lists

    @functools.cached_property
    def _seen_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the score matrix that hold a video the user already watched."""
        column = {v: j for j, v in enumerate(self.candidates.tolist())}
        cells = [(i, column[v]) for i, user in enumerate(self.users.tolist()) for v in self.seen[user] if v in column]
        return tuple(np.array(x, dtype=np.int64).reshape(-1) for x in zip(*cells)) if cells else (np.empty(0, np.int64),) * 2

    def map_at_k(self, lists: dict, k: int = 10) -> float:
        """MAP@k of ranked lists (user -> video ids) against the logged test watches."""
        return mean_over_users(average_precision_at_k, lists, self.relevant, k=k)


def ranking_task(world, cutoff: int | None = None) -> RankingTask:
    """The evaluation protocol at ``cutoff`` (default :data:`TEST_CUTOFF_DAY`): see :class:`RankingTask`.

    Relevant items are restricted to the candidates: a video uploaded after the cut-off could
    not have been recommended at it, so no ranker is blamed for missing it.
    """
    tables = all_tables(world)
    log, videos = tables["impressions"], tables["videos"]
    cutoff = TEST_CUTOFF_DAY if cutoff is None else check_int("cutoff", cutoff)
    train, test = split_at(log, cutoff)
    candidates = videos.loc[videos["upload_day"] < cutoff, "video_id"].to_numpy(np.int64)
    watched = test[(test["watched"] == 1) & test["video_id"].isin(candidates)]
    relevant = {int(u): set(g.tolist()) for u, g in watched.groupby("user_id")["video_id"]}
    users = np.array(sorted(relevant), dtype=np.int64)
    past = train[(train["watched"] == 1) & train["user_id"].isin(users)]
    seen = {int(u): set() for u in users} | {int(u): set(g.tolist()) for u, g in past.groupby("user_id")["video_id"]}
    return RankingTask(cutoff, users, candidates, seen, relevant)


def popularity_scores(world, task: RankingTask) -> np.ndarray:
    """The popularity baseline: each candidate's watches before the cut-off (one score for all users)."""
    log = all_tables(world)["impressions"]
    train = log[(log["day"] < task.cutoff) & (log["watched"] == 1)]
    return train["video_id"].value_counts().reindex(task.candidates, fill_value=0).to_numpy(float)


def oracle_scores(world, task: RankingTask) -> np.ndarray:
    """The oracle: the true ``p`` of every (test user, candidate) pair, users x candidates."""
    return true_relevance(world, task.users[:, None], task.candidates[None, :])


def room_to_learn(world, k: int = 10) -> dict:
    """How far the oracle is ahead of the popularity baseline: the world's headroom.

    Protocol (:func:`ranking_task` at :data:`TEST_CUTOFF_DAY`, the start of the last week): the
    test users are those who watch at least one candidate in the test week; the candidates are
    the videos uploaded before the cut-off, minus those the user watched before it; relevant =
    watched in the test week. Two rankers:

    - **popularity**: candidates by their watches before the cut-off (:func:`popularity_scores`);
    - **oracle**: candidates by the true ``p`` (:func:`oracle_scores`).

    Returns, for both (keys ``popularity_*`` and ``oracle_*``):

    - ``*_map``: MAP@k on the logged labels, ``mean_over_users(average_precision_at_k, ..., k=k)``;
    - ``*_mean_p``: against the hidden truth, the mean true ``p`` of the top-k list, averaged over
      the test users (the expected share of the list the user finds relevant);

    and ``map_ratio`` (oracle / popularity), ``map_margin`` (oracle - popularity),
    ``mean_p_ratio``, ``n_test_users`` and ``n_candidates``.
    """
    task = ranking_task(world)
    p = oracle_scores(world, task)
    column = {v: j for j, v in enumerate(task.candidates.tolist())}
    out = {"n_test_users": len(task.users), "n_candidates": len(task.candidates)}
    for name, scores in (("popularity", popularity_scores(world, task)), ("oracle", p)):
        lists = task.top_k(scores, k)
        out[f"{name}_map"] = task.map_at_k(lists, k)
        out[f"{name}_mean_p"] = float(np.mean([p[i, [column[v] for v in lists[u]]].mean() for i, u in enumerate(lists)]))
    out["map_ratio"] = out["oracle_map"] / out["popularity_map"]
    out["map_margin"] = out["oracle_map"] - out["popularity_map"]
    out["mean_p_ratio"] = out["oracle_mean_p"] / out["popularity_mean_p"]
    return out


# --------------------------------------------------------------------------- the world


def active_users_impressions(world) -> pd.Series:
    """Impressions per user, for the users who had at least one impression in every week."""
    log = all_tables(world)["impressions"]
    week = log["day"] // 7
    weeks = log.assign(week=week).groupby("user_id")["week"].nunique()
    active = weeks.index[weeks == week.max() + 1]
    return log[log["user_id"].isin(active)].groupby("user_id").size()


def _summary(world: World) -> str:
    k = KNOBS
    observed = world.observed
    subscribers = np.sort(observed["creators"]["subscribers"].to_numpy())[::-1]
    room = room_to_learn(world)
    cutoff = TEST_CUTOFF_DAY
    why = "\n".join(f"- `{name}` = {KNOBS[name]}: {reason}." for name, reason in WHY.items())
    return SUMMARY.format(
        n_users=k["n_users"], n_videos=k["n_videos"], n_creators=k["n_creators"],
        n_genres=len(GENRES), genres=", ".join(GENRES), n_languages=len(LANGUAGES), languages=", ".join(LANGUAGES),
        rank=LATENT_RANK, window=k["trending_window_days"], test_days=k["test_days"], cutoff=cutoff,
        median_impressions=active_users_impressions(world).median(),
        watch_rate=observed["impressions"]["watched"].mean(),
        top_creator_share=subscribers[: len(subscribers) // 10].sum() / subscribers.sum(),
        new_users=int((observed["users"]["signup_day"] >= cutoff).sum()),
        new_videos=int((observed["videos"]["upload_day"] >= cutoff).sum()),
        n_test_users=room["n_test_users"], n_candidates=room["n_candidates"],
        pop_map=room["popularity_map"], oracle_map=room["oracle_map"],
        map_ratio=room["map_ratio"], map_margin=room["map_margin"],
        pop_p=room["popularity_mean_p"], oracle_p=room["oracle_mean_p"], p_ratio=room["mean_p_ratio"],
        why=why,
    )


def _base(seed: int):
    """The stored world's tables (users, creators, creator sizes, videos, subscriptions, hidden, impressions)."""
    creators, size = _creators(seed)
    videos = _videos(seed, creators, size)
    users, user_truth = _users(seed)
    hidden = {"user_truth": user_truth, "video_truth": _video_truth(seed, len(videos)), "salts": _salts(seed)}
    # the watches are drawn from the stored (rounded) tables, so true_relevance gives back exactly p
    truth = _truth_from_tables({"users": users, "videos": videos, **hidden})
    subs = _subscriptions(seed, users, creators, size, truth)
    feed = _feed(seed, users, videos, subs, truth)
    impressions = _impressions(seed, feed, videos["length_seconds"].to_numpy())
    return users, creators, size, videos, subs, hidden, impressions


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the video recommendation world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    users, creators, _, videos, subs, hidden, impressions = _base(seed)
    world = World(
        name=NAME,
        seed=seed,
        observed={"users": users, "creators": creators, "videos": videos, "subscriptions": subs, "impressions": impressions},
        hidden=hidden,
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


# --------------------------------------------------------------------------- the stream (drift)

#: The kinds of drift :func:`stream` can inject, and the parameters each takes.
DRIFTS = {
    "new_genre": (
        "genre, uploads_per_day, fan_share, fan_taste: from its day on, existing creators (picked as for any "
        "upload) publish videos of a new genre (a lower-case name not in GENRES, e.g. 'shorts') at that mean "
        "rate a day, with the catalogue's length distribution; that share of users has a hidden taste of "
        "fan_taste (log-odds, e.g. 3.0) for it, the others one drawn like any genre's (concept drift: no log "
        "before its day shows the genre)"
    ),
    "prior": "shift: added to every log-odds from its day on, e.g. -0.5 (prior or label shift)",
}


@dataclass
class VideoStream:
    """What :func:`stream` returns: the observed stream and the hidden truth behind it.

    Attributes
    ----------
    first_day, n_days : int
        The logged days are ``first_day`` to ``first_day + n_days - 1``.
    impressions : pandas.DataFrame
        The new impressions, same columns as the stored ``impressions`` (observed).
    videos : pandas.DataFrame
        The videos uploaded from the end of the stored log to the end of the stream, same columns
        as the stored ``videos``; ids continue after the stored ones (observed).
    user_truth : pandas.DataFrame
        Hidden: ``user_id`` and, per new genre ``g``, ``taste_g`` (log-odds) and ``fan_g`` (1 if
        the user is one of the genre's fans).
    video_truth : pandas.DataFrame
        Hidden: quality and latent factors of the new videos (columns of the stored ``video_truth``).
    logit_shift : pandas.Series
        Hidden: what the ``prior`` drifts add to every log-odds, by day (0 without them).
    tables : dict[str, pandas.DataFrame]
        Hidden: the stored world's ``users``, ``videos``, ``user_truth``, ``video_truth`` and
        ``salts`` extended with the stream's videos and genre tastes: ``true_relevance(tables, u, v)``
        is the ``p`` of any pair on a day without a prior shift; :meth:`true_relevance` adds it.
    """

    first_day: int
    n_days: int
    impressions: pd.DataFrame
    videos: pd.DataFrame
    user_truth: pd.DataFrame
    video_truth: pd.DataFrame
    logit_shift: pd.Series
    tables: dict

    def true_relevance(self, user_ids, video_ids, day) -> np.ndarray:
        """The exact ``p`` the stream drew watches from, for pairs on ``day`` (all broadcast together).

        ``day`` may be any day up to the stream's last (an int or an integer array). A video can
        only be shown from the day after its upload, but ``p`` is defined for any pair.
        """
        truth = _truth_from_tables(self.tables)
        u = _ids("user_ids", user_ids, len(truth.propensity))
        v = _ids("video_ids", video_ids, len(truth.quality))
        end = self.first_day + self.n_days
        d = _ids("day", day, end)
        try:
            np.broadcast_shapes(u.shape, v.shape, d.shape)
        except ValueError:
            raise ValueError(f"user_ids {u.shape}, video_ids {v.shape} and day {d.shape} do not broadcast") from None
        shift = np.zeros(end)
        shift[self.logit_shift.index.to_numpy()] = self.logit_shift.to_numpy()
        return sigmoid(_logit(truth, u, v) + shift[d])


def _check_drifts(drifts, first_day: int, end: int) -> tuple[list[dict], np.ndarray]:
    """Validate the drifts; return the new genres (validated dicts) and the log-odds shift per day."""
    genres, shift = [], np.zeros(end - first_day)
    for drift, kind, start in stream_drifts(drifts, DRIFTS, first_day, end):
        if kind == "prior":
            if "shift" not in drift:
                raise ValueError("a prior drift needs a 'shift'")
            shift[start - first_day:] += check_finite("prior shift", drift["shift"])
            continue
        missing = [key for key in ("genre", "uploads_per_day", "fan_share", "fan_taste") if key not in drift]
        if missing:
            raise ValueError(f"a new_genre drift needs the keys genre, uploads_per_day, fan_share, fan_taste; missing: {missing}")
        genre = drift["genre"]
        if not isinstance(genre, str) or not genre.isidentifier() or genre != genre.lower():
            raise ValueError(f"new_genre genre must be a lower-case identifier, got {genre!r}")
        if genre in GENRES or genre in [g["genre"] for g in genres]:
            raise ValueError(f"new_genre genre must be new, got {genre!r}; the genres are {GENRES + tuple(g['genre'] for g in genres)}")
        rate = check_finite("new_genre uploads_per_day", drift["uploads_per_day"])
        share = check_finite("new_genre fan_share", drift["fan_share"])
        if rate <= 0:
            raise ValueError(f"new_genre uploads_per_day must be > 0, got {rate}")
        if not 0 <= share <= 1:
            raise ValueError(f"new_genre fan_share must be in [0, 1], got {share}")
        taste = check_finite("new_genre fan_taste", drift["fan_taste"])
        genres.append({"day": start, "genre": genre, "uploads_per_day": rate, "fan_share": share, "fan_taste": taste})
    return genres, shift


def _stream_videos(seed: int, creators: pd.DataFrame, size: np.ndarray, end: int, genres: list[dict], first_id: int) -> pd.DataFrame:
    """Uploads from the end of the stored log to ``end``: the stored world's rate and mix, plus new genres."""
    k = KNOBS
    weight = size ** k["videos_per_creator_size_power"]
    weight = weight / weight.sum()
    main = _codes(creators["main_genre"], GENRES)

    def uploads(rng, rate, start):
        day = np.repeat(np.arange(start, end), rng.poisson(rate, end - start))
        creator = rng.choice(len(creators), len(day), p=weight)
        length = np.exp(np.log(k["video_length_median_seconds"]) + rng.normal(0, k["video_length_log_sd"], len(day)))
        return day, creator, np.clip(np.round(length), 15, 4 * 3600).astype(np.int64)

    # the stored genres, at the stored world's rate (same creators, 80% in their main genre)
    rng = make_rng(seed, NAME, "stream", "videos")
    day, creator, length = uploads(rng, k["n_videos"] * k["share_videos_uploaded_in_log"] / k["n_days"], k["n_days"])
    genre = np.array(GENRES)[np.where(rng.random(len(day)) < 0.8, main[creator], rng.integers(0, len(GENRES), len(day)))]
    parts = [(day, creator, length, genre.astype(object))]
    for g in genres:  # each new genre from its own stream: adding one leaves the other uploads as they were
        day, creator, length = uploads(make_rng(seed, NAME, "stream", "new_genre", g["genre"]), g["uploads_per_day"], g["day"])
        parts.append((day, creator, length, np.full(len(day), g["genre"], dtype=object)))
    day, creator, length, genre = (np.concatenate(p) for p in zip(*parts))
    videos = pd.DataFrame(
        {
            "creator_id": creator.astype(np.int64),
            "genre": genre,
            "language": creators["language"].to_numpy()[creator],
            "length_seconds": length,
            "upload_day": day.astype(np.int64),
        }
    )
    videos = videos.sort_values(["upload_day", "creator_id"], kind="stable").reset_index(drop=True)
    videos.insert(0, "video_id", first_id + np.arange(len(videos)))
    return videos


def stream(seed: int, first_day: int, n_days: int, drifts: list[dict] | None = None) -> VideoStream:
    """Continue the world at ``seed`` for ``n_days`` logged days from ``first_day``, with drift injected.

    The same users (same hidden tastes, activity and subscriptions), creators and catalogue; new
    videos keep arriving at the stored world's rate; the feed works as before (random, trending,
    subscriptions, search; never a watched video again, including watches in the stored log).
    Trending starts warm from the stored log's last days. If ``first_day`` is after the stored
    log's end, the days in between are simulated but not logged (their uploads are in
    ``videos``). Each drift is a dict with the ``day`` it starts (in the logged days), its
    ``kind`` (a key of :data:`DRIFTS`) and that kind's parameters; it lasts to the end.

    Returns a :class:`VideoStream`: the new impressions and videos (observed) and the hidden
    truth; ``VideoStream.true_relevance(users, videos, day)`` is the exact ``p`` of any pair.
    Everything is drawn from new named random streams: the stored world is unchanged.
    """
    k = KNOBS
    seed = check_int("seed", seed, minimum=0)
    first_day = check_int("first_day", first_day, minimum=k["n_days"])
    n_days = check_int("n_days", n_days, minimum=1)
    end = first_day + n_days
    genres, shift = _check_drifts(drifts, first_day, end)

    users, creators, size, videos, subs, hidden, stored_log = _base(seed)
    new_videos = _stream_videos(seed, creators, size, end, genres, len(videos))
    rng = make_rng(seed, NAME, "stream", "video_truth")
    latent = rng.normal(0, np.sqrt(k["latent_sd"] / np.sqrt(LATENT_RANK)), (len(new_videos), LATENT_RANK))
    new_video_truth = {"video_id": new_videos["video_id"].to_numpy(), "quality": rng.normal(0, k["quality_sd"], len(new_videos))}
    new_video_truth = pd.DataFrame(new_video_truth | {f"latent_{i}": latent[:, i] for i in range(LATENT_RANK)}).round(4)
    new_user_truth = pd.DataFrame({"user_id": users["user_id"].to_numpy()})
    for g in genres:
        rng = make_rng(seed, NAME, "stream", "taste", g["genre"])
        fan = rng.random(len(users)) < g["fan_share"]
        new_user_truth[f"taste_{g['genre']}"] = np.where(fan, g["fan_taste"], rng.normal(0, k["genre_taste_sd"], len(users))).round(4)
        new_user_truth[f"fan_{g['genre']}"] = fan.astype(np.int64)
    tables = {
        "users": users,
        "videos": pd.concat([videos, new_videos], ignore_index=True),
        "user_truth": hidden["user_truth"].merge(new_user_truth.filter(regex="^(user_id|taste_)"), on="user_id", how="left"),
        "video_truth": pd.concat([hidden["video_truth"], new_video_truth], ignore_index=True),
        "salts": hidden["salts"],
    }
    truth = _truth_from_tables(tables)  # from the rounded tables, so true_relevance gives back exactly p
    feed = _feed(seed, users, tables["videos"], subs, truth)

    # trending starts from the stored log's watches of its last days (most recent first)
    recent = np.zeros((k["trending_window_days"], len(feed.upload_day)))
    for back in range(k["trending_window_days"]):
        watched = stored_log[(stored_log["day"] == k["n_days"] - 1 - back) & (stored_log["watched"] == 1)]
        recent[back] = np.bincount(watched["video_id"], minlength=recent.shape[1])
    rng = make_rng(seed, NAME, "stream", "feed")
    days = []
    for day in range(k["n_days"], end):
        log = _simulate_day(feed, day, _trending(feed, recent.sum(axis=0), day), rng, shift[day - first_day] if day >= first_day else 0.0)
        recent = np.roll(recent, 1, axis=0)
        recent[0] = np.bincount(log["video_id"], weights=log["watched"], minlength=recent.shape[1])
        days.append(log)
    stored_watches = stored_log[stored_log["watched"] == 1]
    watched_before = pd.MultiIndex.from_arrays([stored_watches["user_id"], stored_watches["video_id"]])
    lengths = tables["videos"]["length_seconds"].to_numpy()
    log = _clean_log(pd.concat(days, ignore_index=True), lengths, make_rng(seed, NAME, "stream", "seconds"), watched_before)
    log = log[log["day"] >= first_day].reset_index(drop=True)
    return VideoStream(
        first_day=first_day,
        n_days=n_days,
        impressions=log,
        videos=new_videos,
        user_truth=new_user_truth,
        video_truth=new_video_truth,
        logit_shift=pd.Series(shift, index=pd.RangeIndex(first_day, end, name="day"), name="logit_shift"),
        tables=tables,
    )
