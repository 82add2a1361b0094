"""The ad click prediction world (Chapter 11): will this user click this ad, here, now?

An ad platform shows one ad per ad request (an **impression**) to users of a site and its apps.
Users have an age band, a country and one to three interests; advertisers (each in one product
category) run campaigns with a few creatives; each request comes with a context (local hour,
device, placement). Every impression has a **true click probability** ``p``, a logistic model in
which every term but the last is a function of observed columns::

    logit p = base + trend x weeks + day of week
              + age band + country + device + placement + category + format   (main effects)
              + interest x category + age band x category + hour x device       (feature crosses)
              + country x category                                    (a cross few would try first)
              + advertiser + campaign + creative                                (per-id effects)
              + impression noise                                                (nobody can learn)

The platform's log is observed: who saw which creative when and where, whether they clicked, and
how long after the impression the click arrived (clicks come in with a delay). The world drifts
slowly: advertisers' budgets grow or shrink week by week, advertisers arrive and leave, campaigns
start and end (new creatives every week), and the click-through rate drifts down a little every
week (ad fatigue).

The hidden tables hold what is needed to recompute ``p`` **exactly** for any impression, observed
or not: :func:`true_probability`. The noise term is a deterministic hash of the impression's
user, creative, day and second and a stored salt, so it needs no storage. No feature reveals it,
so the best any model can do is :func:`posterior_probability`, ``p`` with the noise integrated
out: the oracle of a model's headline.

:func:`stream` continues the world after the stored four weeks with the same users, advertisers
and truth (the drifts go on) and can inject more; :func:`room_to_learn` is the evaluation
protocol the chapter and the datasheet use (train on the first three weeks, test on the last).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from mlsd._checks import check_finite, check_int
from mlsd.datasets._hashing import normal_from_hash, sigmoid, splitmix64
from mlsd.datasets.world import World, all_tables, stream_drifts
from mlsd.book.seeding import make_rng

DEFAULT_SEED = 0
NAME = "ad_click_prediction"

AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
COUNTRIES = ("us", "in", "br", "gb", "de", "fr", "mx", "jp")
INTERESTS = ("sports", "fitness", "travel", "cooking", "gaming", "tech", "fashion", "beauty", "finance", "parenting", "music", "cars")
CATEGORIES = ("retail", "travel", "finance", "gaming", "food", "auto", "beauty", "electronics", "entertainment", "health")
DEVICES = ("mobile", "desktop", "tablet")
PLACEMENTS = ("feed_top", "feed", "article", "sidebar")
FORMATS = ("image", "video", "carousel")
DAYS_OF_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # day 0 of the log is a Monday

#: The ad categories each interest is about: a user with the interest is ``interest_match_logit``
#: likelier (log-odds) to click an ad of those categories; interest-targeted campaigns are shown
#: only to users with a matching interest.
MATCHES = {
    "sports": ("health", "retail"),
    "fitness": ("health",),
    "travel": ("travel",),
    "cooking": ("food",),
    "gaming": ("gaming", "electronics"),
    "tech": ("electronics",),
    "fashion": ("retail", "beauty"),
    "beauty": ("beauty",),
    "finance": ("finance",),
    "parenting": ("retail", "food"),
    "music": ("entertainment",),
    "cars": ("auto", "finance"),
}

#: Relative traffic by local hour (0-23) on each device: desktops at work, phones and tablets in the evening.
HOUR_TRAFFIC = {
    "mobile": (.5, .3, .15, .1, .1, .15, .4, .8, 1, .9, .8, .9, 1.1, 1, .9, .9, .9, 1, 1.2, 1.4, 1.6, 1.6, 1.3, .9),
    "desktop": (.1, .05, .03, .03, .03, .05, .15, .4, .9, 1.3, 1.5, 1.5, 1.2, 1.3, 1.5, 1.4, 1.3, 1, .6, .5, .5, .4, .3, .2),
    "tablet": (.3, .15, .1, .05, .05, .05, .2, .4, .5, .5, .5, .5, .6, .6, .6, .6, .7, .8, 1, 1.4, 1.7, 1.7, 1.2, .7),
}
#: The local hour at which each device's click-through rate peaks (the hour x device cross).
DEVICE_PEAK_HOUR = {"mobile": 21, "desktop": 11, "tablet": 20}
#: Shares of each device's impressions by placement (no sidebar on phones).
PLACEMENT_SHARES = {"mobile": (0.3, 0.5, 0.2, 0.0), "desktop": (0.2, 0.35, 0.2, 0.25), "tablet": (0.25, 0.45, 0.2, 0.1)}
#: Relative traffic by day of the week (Monday first): a little more at the weekend.
DOW_TRAFFIC = (1.0, 1.0, 1.0, 1.0, 1.05, 1.15, 1.15)
#: How far back the campaigns running at the start of the log are simulated (days).
HISTORY_DAYS = 120

KNOBS = {
    # users and traffic
    "n_users": 3000,
    "age_band_shares": (0.18, 0.3, 0.22, 0.16, 0.14),
    "country_shares": (0.3, 0.18, 0.12, 0.1, 0.09, 0.08, 0.07, 0.06),
    "interests_per_user_shares": (0.4, 0.35, 0.25),
    "impressions_per_user_day_median": 2.5,
    "impressions_per_user_day_log_sd": 1.0,
    "device_shares": (0.6, 0.3, 0.1),
    "device_stickiness": 0.8,
    # advertisers, campaigns, creatives
    "n_advertisers": 40,
    "new_advertisers_per_week": 1.0,
    "advertiser_churn_per_week": 0.02,
    "new_advertiser_ramp_days": 28,
    "campaigns_running_per_advertiser": 2.0,
    "campaigns_spend_elasticity": 0.5,
    "campaign_duration_mean_days": 21,
    "share_campaigns_targeted": 0.4,
    "creatives_per_campaign_mean": 4,
    "advertiser_spend_log_sd": 1.0,
    "campaign_budget_log_sd": 0.5,
    "creative_rotation_log_sd": 0.5,
    # time and drift
    "n_days": 28,
    "test_days": 7,
    "advertiser_growth_sd_per_week": 0.25,
    "ctr_trend_per_week": -0.04,
    # the true click probability (log-odds scale)
    "base_logit": -4.4,
    "weekend_logit": 0.1,
    "age_band_sd": 0.15,
    "country_sd": 0.2,
    "device_logit": (0.0, -0.2, 0.1),
    "placement_logit": (0.3, 0.0, -0.3, -1.0),
    "format_logit": (0.0, 0.2, 0.1),
    "category_sd": 0.3,
    "interest_match_logit": 0.8,
    "interest_category_sd": 0.15,
    "age_category_sd": 0.25,
    "hour_device_amplitude": 0.25,
    "country_category_sd": 0.3,
    "advertiser_sd": 0.3,
    "campaign_sd": 0.2,
    "creative_sd": 0.25,
    "impression_noise_sd": 0.3,
    # delayed clicks
    "click_delay_median_seconds": 180,
    "click_delay_log_sd": 2.5,
    "click_delay_max_days": 3,
}

#: The first day of the test window: the last ``test_days`` of the log are for testing.
TEST_CUTOFF_DAY = KNOBS["n_days"] - KNOBS["test_days"]

#: Why each knob has its value: the datasheet prints these next to the values.
WHY = {
    "n_users": "a few thousand users: enough impressions per cell of every cross, small enough to generate in seconds",
    "age_band_shares": "the age mix of a social or news audience: most users between 25 and 44",
    "country_shares": "one large market and a tail of smaller ones, as for a global site",
    "interests_per_user_shares": "shares of users with 1, 2 and 3 declared or inferred interests",
    "impressions_per_user_day_median": "a few ad impressions a day for a typical user",
    "impressions_per_user_day_log_sd": "heavy users see ten times more ads than light ones: they dominate the log",
    "device_shares": "most traffic on phones, a third on desktops, a little on tablets",
    "device_stickiness": "most of a user's impressions come from their main device",
    "n_advertisers": "a few dozen advertisers at the start: a small ad network",
    "new_advertisers_per_week": "about one new advertiser a week (their ids are new in the test week)",
    "advertiser_churn_per_week": "a few advertisers stop starting campaigns each month",
    "new_advertiser_ramp_days": "a new advertiser tests with a small budget and scales up to its full spend over its first four weeks",
    "campaigns_running_per_advertiser": "an advertiser runs about two campaigns at a time, on average",
    "campaigns_spend_elasticity": "big spenders run more campaigns at once (always on), small ones one now and then: running campaigns grow as spend to this power",
    "campaign_duration_mean_days": "campaign flights last a few weeks (gamma, shape 2)",
    "share_campaigns_targeted": "four campaigns in ten target users whose interests match their category; the rest are broad",
    "creatives_per_campaign_mean": "a campaign rotates a handful of creatives (at least one)",
    "advertiser_spend_log_sd": "spend is heavy-tailed: a few advertisers buy most impressions",
    "campaign_budget_log_sd": "an advertiser splits its spend unevenly across its running campaigns",
    "creative_rotation_log_sd": "the ad server rotates a campaign's creatives unevenly",
    "n_days": "four weeks: three to train on, one to test",
    "test_days": "a week: the day-of-week pattern is inside one test window",
    "advertiser_growth_sd_per_week": "budgets drift: an advertiser's spend changes by about 25% a week, up or down (advertiser-mix drift)",
    "ctr_trend_per_week": "ad fatigue: the log-odds of a click drift down 0.04 a week (about 4% fewer clicks a week, all else equal)",
    "base_logit": "sets the click-through rate near 2%, typical of feed ads (display banners are lower, search ads higher)",
    "weekend_logit": "users browse at leisure and click a little more at the weekend",
    "age_band_sd": "age alone changes the click rate a little",
    "country_sd": "markets differ in click rates by tens of percent",
    "device_logit": "(mobile, desktop, tablet): small differences between devices once the hour is known",
    "placement_logit": "(feed_top, feed, article, sidebar): position matters most; the sidebar is the blind spot",
    "format_logit": "(image, video, carousel): richer formats draw a few more clicks",
    "category_sd": "some product categories are clicked more than others",
    "interest_match_logit": "a user interested in the ad's category is about twice as likely to click (the cross that targeting exploits)",
    "interest_category_sd": "weaker affinities between every interest and every category",
    "age_category_sd": "age changes what is interesting (gaming for the young, finance for the older)",
    "hour_device_amplitude": "each device's click rate peaks at its own hour (desktop late morning, phone and tablet in the evening)",
    "country_category_sd": "markets differ in what they buy (cars in one, beauty in another), as much as categories differ overall: a cross that is not among the obvious first ones (interest, age and hour crosses), so a model that tries only those misses it",
    "advertiser_sd": "advertisers differ in brand pull and landing pages",
    "campaign_sd": "campaigns of one advertiser differ less than advertisers do",
    "creative_sd": "creatives differ as much as advertisers: the id with the most levels and the fewest clicks each",
    "impression_noise_sd": "what no logged feature explains (the page around the ad, the user's mood): the oracle knows it, no model can",
    "click_delay_median_seconds": "half of the clicks are logged within a few minutes of the impression",
    "click_delay_log_sd": "a long tail: users come back to a tab hours later; a few clicks arrive a day or more after the impression",
    "click_delay_max_days": "the log-normal is cut at three days: the click log is joined to impressions for three days, no longer",
}

COLUMNS = {
    "users.user_id": "unique user id (0 to n_users - 1)",
    "users.age_band": "age band",
    "users.country": "country code",
    "users.interests": "one to three interests, ';'-separated, in the order of INTERESTS (users.interests.str.get_dummies(sep=';'))",
    "advertisers.advertiser_id": "unique advertiser id; ids after the first n_advertisers joined during the log",
    "advertisers.category": "the product category the advertiser sells in (all its campaigns)",
    "advertisers.join_day": "day the advertiser joined the platform (negative: before the log)",
    "campaigns.campaign_id": "unique campaign id, in order of start",
    "campaigns.advertiser_id": "joins to advertisers",
    "campaigns.start_day": "first day the campaign runs (negative: before the log)",
    "campaigns.end_day": "last day the campaign runs (the booked flight; may be after the log)",
    "campaigns.targeting": "broad (anyone) or interest (only users with an interest matching the category)",
    "creatives.creative_id": "unique creative (ad) id",
    "creatives.campaign_id": "joins to campaigns",
    "creatives.format": "image, video or carousel",
    "impressions.day": "day of the impression, 0 = first day of the log (a Monday)",
    "impressions.second": "second of the day in the user's local time (0 to 86399); hour = second // 3600",
    "impressions.user_id": "joins to users",
    "impressions.creative_id": "joins to creatives (and on to campaigns and advertisers)",
    "impressions.device": "the device of the request",
    "impressions.placement": "where on the page or app the ad was shown",
    "impressions.clicked": "1 if the user clicked the ad (the label), whenever the click arrived",
    "impressions.click_delay_seconds": "seconds from the impression to the click being logged (empty if no click)",
    "effects.term": "which term of the log-odds: a main effect (e.g. placement) or a cross (e.g. interest_category)",
    "effects.level": "the level of the term's first feature (e.g. sidebar, or the interest of a cross)",
    "effects.level_2": "the level of a cross's second feature (e.g. the category); '-' for a main effect",
    "effects.logit": "the term's contribution to the log-odds of a click",
    "creative_truth.creative_id": "joins to creatives",
    "creative_truth.advertiser_effect": "the advertiser's effect (log-odds), the same for all its creatives",
    "creative_truth.campaign_effect": "the campaign's effect (log-odds)",
    "creative_truth.creative_effect": "the creative's own effect (log-odds)",
    "salts.impression_noise_salt": "key of the hash that gives each impression its noise",
}

#: The terms of the log-odds, in the order :func:`log_odds_terms` returns them.
TERMS = (
    "trend", "day_of_week", "age_band", "country", "device", "placement", "category", "format",
    "interest_category", "age_category", "hour_device", "country_category", "advertiser", "campaign", "creative",
    "noise",
)

SUMMARY = """
An ad network shows one ad per request on a site and its apps. {n_users:,} users (age band,
country, one to three of {n_interests} interests) see ads of {n_advertisers} advertisers in
{n_categories} categories, who run {n_campaigns} campaigns with {n_creatives} creatives during the
four weeks of the log; each request has a context (local hour, device: {devices}; placement:
{placements}). We log every impression ({n_impressions:,}), whether it was clicked and how long
the click took to arrive. Each impression has a hidden true click probability `p`:

`logit p = base + trend x weeks + day of week + age band + country + device + placement + category
+ format + interest x category + age band x category + hour x device + country x category
+ advertiser + campaign + creative + impression noise`.

Every term but the last is a function of observed columns: a model with the right features,
crosses and id embeddings can learn them (the per-id effects only as far as each id has clicks).
The noise is the part no model can learn; it has {noise_share:.0%} of the variance of the log-odds
across the logged impressions. The best any model can do is therefore not `p` but the posterior
click probability given the observed columns, `E[sigmoid(logit p)]` over the noise
(`posterior_probability` in the module). Of the four crosses, three are the ones a practitioner
tries first (interest, age band and hour crossed with what they obviously modulate); country x
category is not, so that choosing crosses is a real question, answered on validation data.

**Where the log-odds vary** (variance of each term across the logged impressions, and its share
of the variance of the log-odds; the terms are nearly independent, so the shares add up to
{share_sum:.0%}):

{variance_table}

**Serving.** Each request picks a running campaign with probability proportional to its budget
(the advertiser's spend for the day, split across its running campaigns); interest-targeted
campaigns ({targeted_share:.0%} of them) are eligible only for users with an interest matching
their category. Then one of the campaign's creatives is picked by the ad server's rotation
weights. The serving never looks at `p`. Clicked = Bernoulli(`p`).

**Base rate.** The click-through rate is {ctr:.2%} overall; by week: {weekly_ctr}.

**Drift.** The advertiser mix shifts: the total variation distance between the advertisers'
shares of impressions in the first and the last week is {mix_tvd:.2f} (budgets grow and shrink,
campaigns start and end); {joined} advertisers join during the log; {only_first} advertisers shown in the
first week show nothing in the last, and {only_last} shown in the last were not in the first. The log-odds drift by
{trend} a week (ad fatigue): {trend_3w:+.2f} between the first and the last week, a factor of
{trend_factor:.2f} on the odds, on top of what the mix changes. In the test week,
{new_creative_share:.0%} of the impressions show a creative (and {new_campaign_share:.0%} a
campaign, {new_advertiser_share:.0%} an advertiser) never shown in the three training weeks.

**Delayed clicks.** The median click arrives {delay_median:.0f} s after its impression;
{delay_hour:.1%} arrive more than an hour later, {delay_day:.2%} more than a day later and none
more than {max_days} days later ({after_log:.2%} of the clicks arrive after the log's end). `clicked` holds the eventual
label; to see the labels as they were known at a time `t`, count a click only if the
impression's time plus its delay is before `t` (`labels_at` in the module).

**Room to learn.** Protocol (`room_to_learn` in the module): train on days 0 to {last_train}
({n_train:,} impressions, CTR {train_ctr:.3%}), test on days {cutoff} to {last_day}
({n_test:,} impressions, CTR {test_ctr:.3%}). On the test week the log loss of the base-rate
predictor (the training weeks' CTR for every impression) is {base_ll:.5f}; that of the
clairvoyant (the true `p`, noise included) is {oracle_ll:.5f}: a normalized cross-entropy
(clairvoyant / base rate) of {oracle_nce:.3f}, an improvement of {room:.5f} per impression. No
model can see the noise: the oracle, the posterior given the observed columns, scores
{posterior_ll:.5f}, an achievable improvement of {achievable:.5f}. The best constant in
hindsight (the test week's own CTR) scores {const_ll:.5f}. A model's share of the achievable
lift is (base-rate log loss - model log loss) / {achievable:.5f}.

**Hidden truth.** `hidden/effects.csv.gz` holds every main effect and every cell of the four
crosses; `hidden/creative_truth.csv.gz` the advertiser, campaign and creative effects of each
creative; `hidden/salts.csv.gz` the key of the impression noise, a deterministic hash of the
impression's user, creative, day and second. The intercept and the trend are the knobs
`base_logit` and `ctr_trend_per_week`.
`mlsd.datasets.ad_click_prediction.true_probability(world, impressions)` recomputes `p` exactly
for any impressions, logged or not, and `posterior_probability(world, impressions)` the
oracle's prediction.

**Known biases.** The log shows only what the serving chose: interest-targeted campaigns are
seen almost only by matching users, so a campaign's click rate in the log is not its click rate
on a broad audience, and category is confounded with targeting. Heavy users see many more ads:
per-impression metrics weight them more. Creatives, campaigns and advertisers keep arriving, so
the test week has ids a model never saw. `clicked` is the eventual label: clicks that arrive
after the log's end are in it, which a live system would not yet know.

**Why these values.**

{why}
"""


# --------------------------------------------------------------------------- small helpers


def _hash_normal(salt: int, *keys) -> np.ndarray:
    """Standard normal numbers that are a fixed function of ``salt`` and the integer arrays ``keys``.

    Each key (non-negative integers below 2**63, broadcast together) is folded into a SplitMix64
    hash (see :mod:`mlsd.datasets._hashing`), which then gives a normal.
    """
    keys = np.broadcast_arrays(*(np.asarray(k, dtype=np.uint64) for k in keys))
    with np.errstate(over="ignore"):  # the hash relies on 64-bit wrap-around
        h = np.full(keys[0].shape, np.uint64(salt), dtype=np.uint64)
        for key in keys:
            h = splitmix64(h ^ key)
        return normal_from_hash(splitmix64(h))


def _codes(name: str, values, names: tuple[str, ...]) -> np.ndarray:
    """Strings -> their position in ``names``; a clear error for an unknown value."""
    lookup = {v: i for i, v in enumerate(names)}
    values = np.asarray(values, dtype=object)
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values.tolist()):
        if v not in lookup:
            raise ValueError(f"{name} must be one of {names}, got {v!r}")
        out[i] = lookup[v]
    return out


def _fast_codes(name: str, values, names: tuple[str, ...]) -> np.ndarray:
    """Like :func:`_codes` for long columns with few distinct values (factorize first)."""
    codes, uniques = pd.factorize(pd.Series(values).astype(object), use_na_sentinel=False)
    return _codes(name, uniques, names)[codes]


def _interest_matrix(interests) -> np.ndarray:
    """The users' ';'-separated interests -> a users x interests 0/1 matrix."""
    lookup = {v: i for i, v in enumerate(INTERESTS)}
    out = np.zeros((len(interests), len(INTERESTS)))
    for row, text in enumerate(interests):
        if not isinstance(text, str) or not text:
            raise ValueError(f"users.interests must be ';'-separated interests, got {text!r} for user {row}")
        for name in text.split(";"):
            if name not in lookup:
                raise ValueError(f"users.interests must be from {INTERESTS}, got {name!r} for user {row}")
            out[row, lookup[name]] = 1.0
    return out


def _match_matrix() -> np.ndarray:
    """interests x categories: 1 where the interest is about the category (:data:`MATCHES`)."""
    m = np.zeros((len(INTERESTS), len(CATEGORIES)))
    for interest, categories in MATCHES.items():
        for c in categories:
            m[INTERESTS.index(interest), CATEGORIES.index(c)] = 1.0
    return m


# --------------------------------------------------------------------------- the true probability


@dataclass
class _Truth:
    """Everything ``p`` depends on, as arrays indexed by ids and category codes."""

    user_age: np.ndarray
    user_country: np.ndarray
    user_interest_category: np.ndarray  # (n_users, n_categories): sum of the cross over the user's interests
    creative_category: np.ndarray
    creative_format: np.ndarray
    advertiser_effect: np.ndarray  # per creative
    campaign_effect: np.ndarray  # per creative
    creative_effect: np.ndarray
    day_of_week: np.ndarray
    age_band: np.ndarray
    country: np.ndarray
    device: np.ndarray
    placement: np.ndarray
    category: np.ndarray
    format: np.ndarray
    age_category: np.ndarray  # (n_age_bands, n_categories)
    hour_device: np.ndarray  # (24, n_devices)
    country_category: np.ndarray  # (n_countries, n_categories)
    noise_salt: int


_MAIN_TERMS = {
    "day_of_week": DAYS_OF_WEEK,
    "age_band": AGE_BANDS,
    "country": COUNTRIES,
    "device": DEVICES,
    "placement": PLACEMENTS,
    "category": CATEGORIES,
    "format": FORMATS,
}
_CROSS_TERMS = {
    "interest_category": (INTERESTS, CATEGORIES),
    "age_category": (AGE_BANDS, CATEGORIES),
    "hour_device": (tuple(str(h) for h in range(24)), DEVICES),
    "country_category": (COUNTRIES, CATEGORIES),
}


def _effect_arrays(effects: pd.DataFrame) -> dict[str, np.ndarray]:
    """The long ``effects`` table -> one array per term (vectors for main effects, matrices for crosses)."""
    missing = [c for c in ("term", "level", "level_2", "logit") if c not in effects.columns]
    if missing:
        raise ValueError(f"effects must have the columns term, level, level_2, logit; missing: {missing}")
    out = {}
    for term, levels in _MAIN_TERMS.items():
        rows = effects[effects["term"] == term]
        arr = np.full(len(levels), np.nan)
        arr[_codes(f"effects level of {term}", rows["level"].astype(str), levels)] = rows["logit"].to_numpy(float)
        out[term] = arr
    for term, (first, second) in _CROSS_TERMS.items():
        rows = effects[effects["term"] == term]
        arr = np.full((len(first), len(second)), np.nan)
        i = _codes(f"effects level of {term}", rows["level"].astype(str), first)
        j = _codes(f"effects level_2 of {term}", rows["level_2"].astype(str), second)
        arr[i, j] = rows["logit"].to_numpy(float)
        out[term] = arr
    for term, arr in out.items():
        if np.isnan(arr).any():
            raise ValueError(f"effects lacks some levels of the term {term!r}")
    return out


def _check_ids(name: str, frame: pd.DataFrame, col: str) -> None:
    if not np.array_equal(frame[col].to_numpy(), np.arange(len(frame))):
        raise ValueError(f"{name}.{col} must be 0, 1, ..., n - 1 in order")


def _truth_from_tables(world) -> _Truth:
    tables = all_tables(world)
    needed = ("users", "advertisers", "campaigns", "creatives", "effects", "creative_truth", "salts")
    missing = [t for t in needed if t not in tables]
    if missing:
        raise ValueError(f"the true probability needs the tables {needed}; missing: {missing}")
    users, advertisers, campaigns, creatives = (tables[t] for t in needed[:4])
    creative_truth = tables["creative_truth"]
    for name, col in (("users", "user_id"), ("advertisers", "advertiser_id"), ("campaigns", "campaign_id"),
                      ("creatives", "creative_id"), ("creative_truth", "creative_id")):
        _check_ids(name, tables[name], col)
    if len(creative_truth) != len(creatives):
        raise ValueError(f"creative_truth has {len(creative_truth)} rows for {len(creatives)} creatives")
    effects = _effect_arrays(tables["effects"])
    advertiser_category = _codes("advertisers.category", advertisers["category"], CATEGORIES)
    creative_advertiser = campaigns["advertiser_id"].to_numpy(np.int64)[creatives["campaign_id"].to_numpy(np.int64)]
    return _Truth(
        user_age=_codes("users.age_band", users["age_band"], AGE_BANDS),
        user_country=_codes("users.country", users["country"], COUNTRIES),
        user_interest_category=_interest_matrix(users["interests"].tolist()) @ effects["interest_category"],
        creative_category=advertiser_category[creative_advertiser],
        creative_format=_codes("creatives.format", creatives["format"], FORMATS),
        advertiser_effect=creative_truth["advertiser_effect"].to_numpy(float),
        campaign_effect=creative_truth["campaign_effect"].to_numpy(float),
        creative_effect=creative_truth["creative_effect"].to_numpy(float),
        day_of_week=effects["day_of_week"],
        age_band=effects["age_band"],
        country=effects["country"],
        device=effects["device"],
        placement=effects["placement"],
        category=effects["category"],
        format=effects["format"],
        age_category=effects["age_category"],
        hour_device=effects["hour_device"],
        country_category=effects["country_category"],
        noise_salt=int(tables["salts"]["impression_noise_salt"].iloc[0]),
    )


def _terms(truth: _Truth, day, second, user, creative, device, placement) -> dict[str, np.ndarray]:
    """The terms of the log-odds (:data:`TERMS`), one array each; ``device`` and ``placement`` are codes."""
    k = KNOBS
    cat = truth.creative_category[creative]
    age = truth.user_age[user]
    noise_key = (user.astype(np.uint64) << np.uint64(32)) | creative.astype(np.uint64)
    return {
        "trend": k["ctr_trend_per_week"] * day / 7.0,
        "day_of_week": truth.day_of_week[day % 7],
        "age_band": truth.age_band[age],
        "country": truth.country[truth.user_country[user]],
        "device": truth.device[device],
        "placement": truth.placement[placement],
        "category": truth.category[cat],
        "format": truth.format[truth.creative_format[creative]],
        "interest_category": truth.user_interest_category[user, cat],
        "age_category": truth.age_category[age, cat],
        "hour_device": truth.hour_device[second // 3600, device],
        "country_category": truth.country_category[truth.user_country[user], cat],
        "advertiser": truth.advertiser_effect[creative],
        "campaign": truth.campaign_effect[creative],
        "creative": truth.creative_effect[creative],
        "noise": k["impression_noise_sd"] * _hash_normal(truth.noise_salt, noise_key, day * 86_400 + second),
    }


def _logit(truth: _Truth, day, second, user, creative, device, placement) -> np.ndarray:
    terms = _terms(truth, day, second, user, creative, device, placement)
    return KNOBS["base_logit"] + sum(terms[t] for t in TERMS)


_IMPRESSION_COLUMNS = ("day", "second", "user_id", "creative_id", "device", "placement")


def _impression_arrays(truth: _Truth, impressions) -> tuple[np.ndarray, ...]:
    """Validate an impressions table; return (day, second, user, creative, device code, placement code)."""
    if not isinstance(impressions, pd.DataFrame):
        raise TypeError(f"impressions must be a DataFrame, got {type(impressions).__name__}")
    missing = [c for c in _IMPRESSION_COLUMNS if c not in impressions.columns]
    if missing:
        raise ValueError(f"impressions must have the columns {_IMPRESSION_COLUMNS}; missing: {missing}")
    out = []
    for col, low, high in (("day", 0, None), ("second", 0, 86_399), ("user_id", 0, len(truth.user_age) - 1),
                           ("creative_id", 0, len(truth.creative_effect) - 1)):
        arr = impressions[col].to_numpy()
        if arr.dtype.kind not in "iu":
            raise ValueError(f"impressions.{col} must be integers, got values of type {arr.dtype}")
        bad = (arr < low) | ((arr > high) if high is not None else False)
        if bad.any():
            allowed = f"{low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"impressions.{col} must be in {allowed}, got {arr[bad][0].item()!r}")
        out.append(arr.astype(np.int64))
    out.append(_fast_codes("impressions.device", impressions["device"], DEVICES))
    out.append(_fast_codes("impressions.placement", impressions["placement"], PLACEMENTS))
    return tuple(out)


def log_odds_terms(world, impressions: pd.DataFrame) -> pd.DataFrame:
    """Each term of the true log-odds (columns :data:`TERMS`) for each row of ``impressions``.

    The log-odds is ``KNOBS["base_logit"]`` plus the row sum. For the datasheet's variance table
    and for exercises that ask which terms a model recovered; never a feature.
    """
    truth = _truth_from_tables(world)
    terms = _terms(truth, *_impression_arrays(truth, impressions))
    return pd.DataFrame({t: np.broadcast_to(terms[t], len(impressions)) for t in TERMS}, index=impressions.index)


def true_probability(world, impressions: pd.DataFrame) -> np.ndarray:
    """The true click probability of each impression (one per row of ``impressions``).

    ``world`` is the :class:`World` (or a mapping with its ``users``, ``advertisers``,
    ``campaigns``, ``creatives``, ``effects``, ``creative_truth`` and ``salts`` tables).
    ``impressions`` needs the columns ``day``, ``second``, ``user_id``, ``creative_id``,
    ``device`` and ``placement``; any combination is allowed, logged or not (to ask what the
    click rate would have been had another ad been shown).

    For the logged impressions this is exactly the ``p`` the clicks were drawn from, noise
    included: a clairvoyant, which no model can match (:func:`posterior_probability` can be).
    """
    truth = _truth_from_tables(world)
    return sigmoid(_logit(truth, *_impression_arrays(truth, impressions)))


def posterior_probability(world, impressions: pd.DataFrame, n_nodes: int = 32) -> np.ndarray:
    """The click probability given the observed columns: the best prediction any model can make.

    The impression noise is a hash no feature reveals, so given everything observed the click
    probability is ``E[sigmoid(logit - noise + s Z)]`` over ``Z ~ N(0, 1)``, with ``s`` the knob
    ``impression_noise_sd``. The expectation is computed by Gauss-Hermite quadrature on
    ``n_nodes`` nodes (exact to ~1e-12 at 32 for these log-odds). Same arguments as
    :func:`true_probability`; use it for the oracle only.
    """
    n_nodes = check_int("n_nodes", n_nodes, minimum=2)
    truth = _truth_from_tables(world)
    terms = _terms(truth, *_impression_arrays(truth, impressions))
    logit = KNOBS["base_logit"] + sum(terms[t] for t in TERMS if t != "noise")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # weight exp(-z^2 / 2)
    weights = weights / weights.sum()
    out = np.zeros(len(logit))
    for z, w in zip(nodes, weights):
        out += w * sigmoid(logit + KNOBS["impression_noise_sd"] * z)
    return out


# --------------------------------------------------------------------------- users, ads, effects


@dataclass
class _Users:
    table: pd.DataFrame
    rate: np.ndarray  # mean impressions per day
    main_device: np.ndarray


def _users(seed: int) -> _Users:
    k = KNOBS
    rng = make_rng(seed, NAME, "users")
    n = k["n_users"]
    age = rng.choice(len(AGE_BANDS), n, p=k["age_band_shares"])
    country = rng.choice(len(COUNTRIES), n, p=k["country_shares"])
    # interests: a popularity per interest plus an age-dependent one, drawn without replacement
    # by the Gumbel-top-k trick
    popularity = rng.normal(0, 0.3, len(INTERESTS)) + rng.normal(0, 0.6, (len(AGE_BANDS), len(INTERESTS)))
    keys = popularity[age] + rng.gumbel(size=(n, len(INTERESTS)))
    n_interests = 1 + rng.choice(len(k["interests_per_user_shares"]), n, p=k["interests_per_user_shares"])
    order = np.argsort(-keys, axis=1)
    chosen = np.zeros((n, len(INTERESTS)), dtype=bool)
    for j in range(len(k["interests_per_user_shares"])):
        rows = np.flatnonzero(n_interests > j)
        chosen[rows, order[rows, j]] = True
    names = np.array(INTERESTS, dtype=object)
    interests = [";".join(names[row]) for row in chosen]
    rate = k["impressions_per_user_day_median"] * np.exp(rng.normal(0, k["impressions_per_user_day_log_sd"], n))
    main_device = rng.choice(len(DEVICES), n, p=k["device_shares"])
    table = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "age_band": np.array(AGE_BANDS)[age],
            "country": np.array(COUNTRIES)[country],
            "interests": interests,
        }
    )
    return _Users(table, rate, main_device)


@dataclass
class _Ads:
    """Advertisers, campaigns and creatives that exist before ``horizon``, and how they are served."""

    advertisers: pd.DataFrame
    campaigns: pd.DataFrame
    creatives: pd.DataFrame
    creative_truth: pd.DataFrame
    spend_log: np.ndarray  # per advertiser: log of the daily spend at day 0
    growth: np.ndarray  # per advertiser: change of the log spend per week
    budget: np.ndarray  # per campaign: relative budget within its advertiser
    rotation: np.ndarray  # per creative: relative rotation weight within its campaign


def _ads(seed: int, horizon: int) -> _Ads:
    """Every advertiser, campaign and creative that exists before day ``horizon``.

    Each advertiser's attributes and campaigns come from its own random stream, and arrivals
    from another one, so a longer horizon only adds advertisers, campaigns and creatives after
    the shorter one's: the stored world's are a prefix of every stream's (same ids, same values).
    """
    k = KNOBS
    # arrivals: the first n_advertisers exist at the start; then a Poisson process
    join = [None] * k["n_advertisers"]
    rng = make_rng(seed, NAME, "advertiser_arrivals")
    t = 0.0
    while True:
        t += rng.exponential(7.0 / k["new_advertisers_per_week"])
        if t >= horizon:
            break
        join.append(int(t))
    adv_rows, camp_rows, creative_rows = [], [], []
    for a, join_day in enumerate(join):
        rng = make_rng(seed, NAME, "advertiser", str(a))
        category = rng.choice(len(CATEGORIES), p=_category_shares())
        tenure = 1 + int(rng.exponential(720))
        size, growth, effect = rng.normal(0, k["advertiser_spend_log_sd"]), rng.normal(0, k["advertiser_growth_sd_per_week"]), rng.normal(0, k["advertiser_sd"])
        joined = -tenure if join_day is None else join_day
        leave = max(joined, 0) + rng.exponential(7.0 / k["advertiser_churn_per_week"])
        adv_rows.append((a, CATEGORIES[category], joined, size, growth, effect))
        # campaigns running at once: the knob's mean, more for big spenders (lognormal mean correction)
        elasticity = k["campaigns_spend_elasticity"]
        running = k["campaigns_running_per_advertiser"] * np.exp(elasticity * size - (elasticity * k["advertiser_spend_log_sd"]) ** 2 / 2)
        gap_mean = k["campaign_duration_mean_days"] / running
        # campaigns: a Poisson process of starts (from the join day for a newcomer, whose first
        # campaign starts on the day it joins), until the advertiser leaves or the horizon
        t = -HISTORY_DAYS + rng.exponential(gap_mean) if join_day is None else float(join_day)
        seq = 0
        while int(np.floor(t)) < min(leave, horizon):
            start = int(np.floor(t))
            duration = max(1, int(round(rng.gamma(2.0, k["campaign_duration_mean_days"] / 2.0))))
            targeted = rng.random() < k["share_campaigns_targeted"]
            budget = np.exp(rng.normal(0, k["campaign_budget_log_sd"]))
            c_effect = rng.normal(0, k["campaign_sd"])
            n_creatives = 1 + rng.poisson(k["creatives_per_campaign_mean"] - 1)
            formats = rng.choice(len(FORMATS), n_creatives, p=[0.6, 0.25, 0.15])
            effects = rng.normal(0, k["creative_sd"], n_creatives)
            rotation = np.exp(rng.normal(0, k["creative_rotation_log_sd"], n_creatives))
            if start + duration > 0:  # ended before the log: never seen
                camp_rows.append((start, a, seq, start + duration - 1, "interest" if targeted else "broad", budget, c_effect))
                creative_rows += [(start, a, seq, j, FORMATS[formats[j]], effects[j], rotation[j]) for j in range(n_creatives)]
            seq += 1
            t += rng.exponential(gap_mean)
    adv = pd.DataFrame(adv_rows, columns=["advertiser_id", "category", "join_day", "size", "growth", "effect"])
    camp = pd.DataFrame(camp_rows, columns=["start_day", "advertiser_id", "seq", "end_day", "targeting", "budget", "effect"])
    camp = camp.sort_values(["start_day", "advertiser_id", "seq"], kind="stable").reset_index(drop=True)
    camp["campaign_id"] = np.arange(len(camp))
    cre = pd.DataFrame(creative_rows, columns=["start_day", "advertiser_id", "seq", "j", "format", "effect", "rotation"])
    cre = cre.merge(camp[["start_day", "advertiser_id", "seq", "campaign_id"]], on=["start_day", "advertiser_id", "seq"])
    cre = cre.sort_values(["campaign_id", "j"], kind="stable").reset_index(drop=True)
    cre["creative_id"] = np.arange(len(cre))
    a_of_creative = camp["advertiser_id"].to_numpy()[cre["campaign_id"].to_numpy()]
    creative_truth = pd.DataFrame(
        {
            "creative_id": cre["creative_id"].to_numpy(),
            "advertiser_effect": adv["effect"].to_numpy()[a_of_creative],
            "campaign_effect": camp["effect"].to_numpy()[cre["campaign_id"].to_numpy()],
            "creative_effect": cre["effect"].to_numpy(),
        }
    ).round(4)
    return _Ads(
        advertisers=adv[["advertiser_id", "category", "join_day"]].astype({"join_day": np.int64}),
        campaigns=camp[["campaign_id", "advertiser_id", "start_day", "end_day", "targeting"]].astype(
            {"advertiser_id": np.int64, "start_day": np.int64, "end_day": np.int64}),
        creatives=cre[["creative_id", "campaign_id", "format"]],
        creative_truth=creative_truth,
        spend_log=adv["size"].to_numpy(),
        growth=adv["growth"].to_numpy(),
        budget=camp["budget"].to_numpy(),
        rotation=cre["rotation"].to_numpy(),
    )


def _category_shares() -> np.ndarray:
    """Shares of advertisers by category: retail the largest, automotive the smallest."""
    return np.array([0.2, 0.08, 0.1, 0.1, 0.1, 0.06, 0.08, 0.1, 0.1, 0.08])


def _effects(seed: int) -> pd.DataFrame:
    """The main effects and the four crosses of the log-odds, as one long table."""
    k = KNOBS
    rng = make_rng(seed, NAME, "effects")
    main = {
        "day_of_week": np.array([0, 0, 0, 0, 0, k["weekend_logit"], k["weekend_logit"]], dtype=float),
        "age_band": rng.normal(0, k["age_band_sd"], len(AGE_BANDS)),
        "country": rng.normal(0, k["country_sd"], len(COUNTRIES)),
        "device": np.array(k["device_logit"], dtype=float),
        "placement": np.array(k["placement_logit"], dtype=float),
        "category": rng.normal(0, k["category_sd"], len(CATEGORIES)),
        "format": np.array(k["format_logit"], dtype=float),
    }
    hours = np.arange(24)[:, None]
    peak = np.array([DEVICE_PEAK_HOUR[d] for d in DEVICES])[None, :]
    cross = {
        "interest_category": k["interest_match_logit"] * _match_matrix()
        + rng.normal(0, k["interest_category_sd"], (len(INTERESTS), len(CATEGORIES))),
        "age_category": rng.normal(0, k["age_category_sd"], (len(AGE_BANDS), len(CATEGORIES))),
        "hour_device": k["hour_device_amplitude"] * np.cos(2 * np.pi * (hours - peak) / 24),
    }
    # drawn last, so that the other effects keep their values
    cross["country_category"] = rng.normal(0, k["country_category_sd"], (len(COUNTRIES), len(CATEGORIES)))
    rows = [(term, level, "-", value) for term, values in main.items() for level, value in zip(_MAIN_TERMS[term], values)]
    for term, values in cross.items():
        first, second = _CROSS_TERMS[term]
        rows += [(term, a, b, values[i, j]) for i, a in enumerate(first) for j, b in enumerate(second)]
    return pd.DataFrame(rows, columns=["term", "level", "level_2", "logit"]).round({"logit": 4})


def _salts(seed: int) -> pd.DataFrame:
    salt = make_rng(seed, NAME, "salts").integers(0, 2**62)
    return pd.DataFrame({"impression_noise_salt": [int(salt)]})


# --------------------------------------------------------------------------- serving and clicks


@dataclass
class _Server:
    """What the ad server needs each day: users, campaigns, creatives and the truth."""

    users: _Users
    ads: _Ads
    eligible_category: np.ndarray  # (n_users, n_categories) bool: a user has an interest matching the category
    campaign_category: np.ndarray
    campaign_targeted: np.ndarray
    creative_start: np.ndarray  # creatives of campaign c are creative_start[c]:creative_start[c + 1]
    truth: _Truth


def _server(users: _Users, ads: _Ads, truth: _Truth) -> _Server:
    camp = ads.campaigns
    category = _codes("advertisers.category", ads.advertisers["category"], CATEGORIES)
    campaign_of = ads.creatives["campaign_id"].to_numpy()
    return _Server(
        users=users,
        ads=ads,
        eligible_category=(_interest_matrix(users.table["interests"].tolist()) @ _match_matrix()) > 0,
        campaign_category=category[camp["advertiser_id"].to_numpy()],
        campaign_targeted=(camp["targeting"] == "interest").to_numpy(),
        creative_start=np.searchsorted(campaign_of, np.arange(len(camp) + 1)),
        truth=truth,
    )


def _campaign_weights(server: _Server, day: int) -> np.ndarray:
    """Each campaign's share of the day's budget: the advertiser's spend, split across its running campaigns."""
    camp, ads = server.ads.campaigns, server.ads
    running = ((camp["start_day"] <= day) & (camp["end_day"] >= day)).to_numpy()
    advertiser = camp["advertiser_id"].to_numpy()
    budget = np.where(running, ads.budget, 0.0)
    per_advertiser = np.bincount(advertiser, weights=budget, minlength=len(ads.spend_log))
    tenure = day - ads.advertisers["join_day"].to_numpy() + 1
    ramp = np.clip(tenure / KNOBS["new_advertiser_ramp_days"], 0.0, 1.0)
    spend = ramp * np.exp(ads.spend_log + ads.growth * day / 7.0)
    return np.where(running, spend[advertiser] * budget / np.where(per_advertiser[advertiser] > 0, per_advertiser[advertiser], 1.0), 0.0)


def _pick_rows(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """One column per row of ``weights`` (rows need not sum to one), chosen with uniforms ``u``."""
    cum = np.cumsum(weights, axis=1)
    return np.minimum((cum < u[:, None] * cum[:, -1:]).sum(axis=1), weights.shape[1] - 1)


def _simulate_day(server: _Server, seed: int, day: int, shift: float = 0.0, category_shift=None) -> pd.DataFrame:
    """One day of ad requests, served ads and clicks. Every random draw comes from the day's own stream.

    ``shift`` (a number) and ``category_shift`` (an array over categories, or None) are added to
    the log-odds (only :func:`stream` uses them). The draws do not depend on ``p``, so a stream
    with drift differs from one without only in the clicks that ``p`` changed.
    """
    k = KNOBS
    rng = make_rng(seed, NAME, "day", str(day))
    users = server.users
    n_users = len(users.rate)
    user = np.repeat(np.arange(n_users), rng.poisson(users.rate * DOW_TRAFFIC[day % 7] / np.mean(DOW_TRAFFIC)))
    m = len(user)
    device = np.where(rng.random(m) < k["device_stickiness"], users.main_device[user], rng.choice(len(DEVICES), m, p=k["device_shares"]))
    hour = _pick_rows(np.array([HOUR_TRAFFIC[d] for d in DEVICES])[device], rng.random(m))
    second = hour * 3600 + rng.integers(0, 3600, m)
    placement_weights = np.array([PLACEMENT_SHARES[d] for d in DEVICES])
    placement = _pick_rows(placement_weights[device], rng.random(m))
    # the campaign: by budget among those running; targeted ones only for matching users
    weights = _campaign_weights(server, day)
    running = np.flatnonzero(weights > 0)
    if not len(running):
        raise RuntimeError(f"no campaign runs on day {day}")  # not reached with the stored knobs
    eligible = ~server.campaign_targeted[running][None, :] | server.eligible_category[user][:, server.campaign_category[running]]
    weights = weights[running][None, :] * eligible
    weights[weights.sum(axis=1) == 0] = 1.0  # nothing eligible (only targeted campaigns run): any running one
    campaign = running[_pick_rows(weights, rng.random(m))]
    # the creative: by the ad server's rotation weights within the campaign
    start, stop = server.creative_start[campaign], server.creative_start[campaign + 1]
    cum = np.r_[0.0, np.cumsum(server.ads.rotation)]
    lo, hi = cum[start], cum[stop]
    creative = np.searchsorted(cum, lo + rng.random(m) * (hi - lo), side="right") - 1
    creative = np.clip(creative, start, stop - 1)
    # the click and its delay (drawn for every impression, used for the clicks)
    u_click, z_delay = rng.random(m), rng.standard_normal(m)
    days = np.full(m, day, dtype=np.int64)
    logit = _logit(server.truth, days, second, user, creative, device, placement) + shift
    if category_shift is not None:
        logit = logit + category_shift[server.truth.creative_category[creative]]
    clicked = u_click < sigmoid(logit)
    # a log-normal cut at the maximum delay: the normal quantile of the uniform ndtr(z), scaled to below the cut
    z_max = np.log(k["click_delay_max_days"] * 86_400 / k["click_delay_median_seconds"]) / k["click_delay_log_sd"]
    z_delay = special.ndtri(special.ndtr(z_delay) * special.ndtr(z_max))
    delay = np.maximum(1.0, np.round(k["click_delay_median_seconds"] * np.exp(k["click_delay_log_sd"] * z_delay)))
    return pd.DataFrame(
        {
            "day": days,
            "second": second.astype(np.int64),
            "user_id": user.astype(np.int64),
            "creative_id": creative.astype(np.int64),
            "device": np.array(DEVICES)[device],
            "placement": np.array(PLACEMENTS)[placement],
            "clicked": clicked.astype(np.int64),
            "click_delay_seconds": np.where(clicked, delay, np.nan),
        }
    )


def _log(days: list[pd.DataFrame]) -> pd.DataFrame:
    log = pd.concat(days, ignore_index=True)
    return log.sort_values(["day", "second", "user_id"], kind="stable").reset_index(drop=True)


def _base(seed: int, horizon: int):
    """Users, ads up to ``horizon``, the hidden tables and the truth built from the rounded tables."""
    users = _users(seed)
    ads = _ads(seed, horizon)
    hidden = {"effects": _effects(seed), "creative_truth": ads.creative_truth, "salts": _salts(seed)}
    tables = {"users": users.table, "advertisers": ads.advertisers, "campaigns": ads.campaigns, "creatives": ads.creatives, **hidden}
    truth = _truth_from_tables(tables)  # from the rounded tables, so true_probability gives back exactly p
    return users, ads, hidden, tables, truth


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the ad click prediction world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    k = KNOBS
    users, ads, hidden, _, truth = _base(seed, k["n_days"])
    server = _server(users, ads, truth)
    impressions = _log([_simulate_day(server, seed, day) for day in range(k["n_days"])])
    world = World(
        name=NAME,
        seed=seed,
        observed={
            "users": users.table,
            "advertisers": ads.advertisers,
            "campaigns": ads.campaigns,
            "creatives": ads.creatives,
            "impressions": impressions,
        },
        hidden=hidden,
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


# --------------------------------------------------------------------------- evaluation helpers


def labels_at(impressions: pd.DataFrame, day: int, second: int = 0) -> pd.DataFrame:
    """The impressions logged before time (``day``, ``second``), with their labels as known then.

    A click counts only if it has arrived: impression time + ``click_delay_seconds`` <= the time.
    Returns those rows with a column ``clicked_by_then`` (0 or 1) next to the eventual ``clicked``.
    """
    if not isinstance(impressions, pd.DataFrame) or not {"day", "second", "clicked", "click_delay_seconds"} <= set(impressions.columns):
        raise ValueError("impressions must be a DataFrame with the columns day, second, clicked, click_delay_seconds")
    day = check_int("day", day)
    second = check_int("second", second, minimum=0)
    if second > 86_399:
        raise ValueError(f"second must be in 0..86399, got {second}")
    now = day * 86_400 + second
    shown = impressions["day"].to_numpy(np.int64) * 86_400 + impressions["second"].to_numpy(np.int64)
    before = impressions[shown < now].copy()
    arrived = shown[shown < now] + before["click_delay_seconds"].fillna(np.inf).to_numpy() <= now
    before["clicked_by_then"] = (before["clicked"].to_numpy() == 1) & arrived
    before["clicked_by_then"] = before["clicked_by_then"].astype(np.int64)
    return before


def _log_loss(y: np.ndarray, p) -> float:
    p = np.clip(np.broadcast_to(np.asarray(p, dtype=float), y.shape), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def room_to_learn(world, cutoff: int | None = None) -> dict:
    """How far the oracle is ahead of the base rate on the test days: the world's headroom.

    Protocol: train on the days before ``cutoff`` (default :data:`TEST_CUTOFF_DAY`), test on the
    days from it on; labels are the eventual ``clicked``. Returns ``n_train``, ``n_test``,
    ``train_ctr``, ``test_ctr`` and the test log losses of

    - ``base_log_loss``: the base-rate predictor (the training CTR for every test impression);
    - ``oracle_log_loss``: the true ``p`` (:func:`true_probability`), the clairvoyant;
    - ``posterior_log_loss``: the posterior given the observed columns
      (:func:`posterior_probability`), the best any model can do;
    - ``constant_log_loss``: the best constant in hindsight (the test CTR);

    and ``oracle_nce`` = oracle / base (normalized cross-entropy), ``room`` = base - oracle and
    ``achievable`` = base - posterior, the achievable improvement: a model's share of it is
    ``(base - model) / achievable``.
    """
    tables = all_tables(world)
    log = tables["impressions"]
    cutoff = TEST_CUTOFF_DAY if cutoff is None else check_int("cutoff", cutoff)
    if not log["day"].min() < cutoff <= log["day"].max():
        raise ValueError(f"cutoff must leave days on both sides: the log has days {log['day'].min()} to {log['day'].max()}, got {cutoff}")
    train, test = log[log["day"] < cutoff], log[log["day"] >= cutoff]
    y = test["clicked"].to_numpy(float)
    train_ctr, test_ctr = float(train["clicked"].mean()), float(y.mean())
    out = {
        "n_train": len(train), "n_test": len(test), "train_ctr": train_ctr, "test_ctr": test_ctr,
        "base_log_loss": _log_loss(y, train_ctr),
        "oracle_log_loss": _log_loss(y, true_probability(world, test)),
        "posterior_log_loss": _log_loss(y, posterior_probability(world, test)),
        "constant_log_loss": _log_loss(y, test_ctr),
    }
    out["oracle_nce"] = out["oracle_log_loss"] / out["base_log_loss"]
    out["room"] = out["base_log_loss"] - out["oracle_log_loss"]
    out["achievable"] = out["base_log_loss"] - out["posterior_log_loss"]
    return out


def advertiser_shares(world, days) -> pd.Series:
    """Each advertiser's share of the impressions on ``days`` (an iterable of days), by advertiser id."""
    tables = all_tables(world)
    log = tables["impressions"]
    log = log[log["day"].isin(list(days))]
    advertiser = tables["campaigns"]["advertiser_id"].to_numpy()[tables["creatives"]["campaign_id"].to_numpy()[log["creative_id"].to_numpy()]]
    counts = np.bincount(advertiser, minlength=len(tables["advertisers"]))
    return pd.Series(counts / max(counts.sum(), 1), index=pd.RangeIndex(len(counts), name="advertiser_id"), name="share")


# --------------------------------------------------------------------------- the datasheet


def _summary(world: World) -> str:
    k = KNOBS
    obs = world.observed
    log, campaigns, creatives = obs["impressions"], obs["campaigns"], obs["creatives"]
    terms = log_odds_terms(world, log)
    total = k["base_logit"] + terms.sum(axis=1)
    var_total = total.var()
    variance = terms.var() / var_total
    rows = ["| term | variance | share |", "| --- | --- | --- |"]
    rows += [f"| {t} | {terms[t].var():.4f} | {variance[t]:.1%} |" for t in TERMS]
    rows.append(f"| **log-odds** (all terms together) | {var_total:.4f} | 100% |")
    weeks = log["day"] // 7
    weekly_ctr = log.groupby(weeks)["clicked"].mean()
    first, last = advertiser_shares(world, range(7)), advertiser_shares(world, range(k["n_days"] - 7, k["n_days"]))
    train, test = log[log["day"] < TEST_CUTOFF_DAY], log[log["day"] >= TEST_CUTOFF_DAY]
    campaign_of = creatives["campaign_id"].to_numpy()
    advertiser_of = campaigns["advertiser_id"].to_numpy()
    seen = {
        "creative": np.isin(test["creative_id"], train["creative_id"].unique()),
        "campaign": np.isin(campaign_of[test["creative_id"]], campaign_of[train["creative_id"].unique()]),
        "advertiser": np.isin(advertiser_of[campaign_of[test["creative_id"]]], advertiser_of[campaign_of[train["creative_id"].unique()]]),
    }
    clicks = log[log["clicked"] == 1]
    delay = clicks["click_delay_seconds"].to_numpy()
    arrival = clicks["day"].to_numpy() * 86_400 + clicks["second"].to_numpy() + delay
    room = room_to_learn(world)
    trend_3w = k["ctr_trend_per_week"] * 3
    why = "\n".join(f"- `{name}` = {KNOBS[name]}: {reason}." for name, reason in WHY.items())
    return SUMMARY.format(
        n_users=k["n_users"], n_interests=len(INTERESTS), n_advertisers=len(obs["advertisers"]),
        n_categories=len(CATEGORIES), n_campaigns=len(campaigns), n_creatives=len(creatives),
        devices=", ".join(DEVICES), placements=", ".join(PLACEMENTS), n_impressions=len(log),
        noise_share=variance["noise"], variance_table="\n".join(rows), share_sum=variance.sum(),
        targeted_share=(campaigns["targeting"] == "interest").mean(),
        ctr=log["clicked"].mean(),
        weekly_ctr=", ".join(f"{c:.2%}" for c in weekly_ctr),
        mix_tvd=0.5 * np.abs(first - last).sum(),
        joined=int((obs["advertisers"]["join_day"] >= 0).sum()),
        only_first=int(((first > 0) & (last == 0)).sum()), only_last=int(((first == 0) & (last > 0)).sum()),
        trend=k["ctr_trend_per_week"], trend_3w=trend_3w, trend_factor=np.exp(trend_3w),
        new_creative_share=1 - seen["creative"].mean(), new_campaign_share=1 - seen["campaign"].mean(),
        new_advertiser_share=1 - seen["advertiser"].mean(),
        delay_median=np.median(delay), delay_hour=(delay > 3600).mean(), delay_day=(delay > 86_400).mean(),
        after_log=(arrival >= k["n_days"] * 86_400).mean(), max_days=k["click_delay_max_days"],
        last_train=TEST_CUTOFF_DAY - 1, cutoff=TEST_CUTOFF_DAY, last_day=k["n_days"] - 1,
        n_train=room["n_train"], n_test=room["n_test"], train_ctr=room["train_ctr"], test_ctr=room["test_ctr"],
        base_ll=room["base_log_loss"], oracle_ll=room["oracle_log_loss"], oracle_nce=room["oracle_nce"],
        room=room["room"], const_ll=room["constant_log_loss"],
        posterior_ll=room["posterior_log_loss"], achievable=room["achievable"],
        why=why,
    )


# --------------------------------------------------------------------------- the stream (drift)

#: The kinds of drift :func:`stream` can inject on top of the world's own (advertiser mix, CTR
#: trend, new advertisers, campaigns and creatives, which simply continue), and their parameters.
DRIFTS = {
    "prior": "shift: added to every log-odds from its day on, e.g. -0.3 (prior or label shift)",
    "category": (
        "category, shift: added to the log-odds of every ad of that category (one of CATEGORIES) from its day "
        "on, e.g. travel +0.5 before the holidays (concept drift: the same features, another click rate)"
    ),
}


@dataclass
class AdStream:
    """What :func:`stream` returns: the observed stream and the hidden truth behind it.

    Attributes
    ----------
    first_day, n_days : int
        The logged days are ``first_day`` to ``first_day + n_days - 1``.
    impressions : pandas.DataFrame
        The new impressions, same columns as the stored ``impressions`` (observed).
    advertisers, campaigns, creatives : pandas.DataFrame
        The advertisers, campaigns and creatives that appear after the stored log (join or start
        from its end to the stream's end), same columns as the stored tables; ids continue after
        the stored ones (observed).
    creative_truth : pandas.DataFrame
        Hidden: the effects of the new creatives (columns of the stored ``creative_truth``).
    logit_shift : pandas.Series
        Hidden: what the ``prior`` drifts add to every log-odds, by day (0 without them).
    category_shift : pandas.DataFrame
        Hidden: what the ``category`` drifts add, by day (rows) and category (columns).
    tables : dict[str, pandas.DataFrame]
        Hidden: the stored world's tables (users, advertisers, campaigns, creatives, effects,
        creative_truth, salts) extended with the stream's ads: ``true_probability(tables, log)``
        is ``p`` without the injected drifts; :meth:`true_probability` adds them.
    """

    first_day: int
    n_days: int
    impressions: pd.DataFrame
    advertisers: pd.DataFrame
    campaigns: pd.DataFrame
    creatives: pd.DataFrame
    creative_truth: pd.DataFrame
    logit_shift: pd.Series
    category_shift: pd.DataFrame
    tables: dict

    def true_probability(self, impressions: pd.DataFrame) -> np.ndarray:
        """The exact ``p`` of each impression (the stream's own, or any other up to its last day)."""
        truth = _truth_from_tables(self.tables)
        day, second, user, creative, device, placement = _impression_arrays(truth, impressions)
        end = self.first_day + self.n_days
        if (day >= end).any():
            raise ValueError(f"impressions.day must be before the stream's end ({end}), got {day[day >= end][0].item()}")
        shift = np.zeros(end)
        shift[self.logit_shift.index.to_numpy()] = self.logit_shift.to_numpy()
        by_category = np.zeros((end, len(CATEGORIES)))
        by_category[self.category_shift.index.to_numpy()] = self.category_shift[list(CATEGORIES)].to_numpy()
        logit = _logit(truth, day, second, user, creative, device, placement)
        return sigmoid(logit + shift[day] + by_category[day, truth.creative_category[creative]])


def _check_drifts(drifts, first_day: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate the drifts; return the log-odds shift per day and per day and category."""
    shift, by_category = np.zeros(end - first_day), np.zeros((end - first_day, len(CATEGORIES)))
    for drift, kind, start in stream_drifts(drifts, DRIFTS, first_day, end):
        if "shift" not in drift:
            raise ValueError(f"a {kind} drift needs a 'shift'")
        value = check_finite(f"{kind} shift", drift["shift"])
        if kind == "prior":
            shift[start - first_day:] += value
        else:
            if drift.get("category") not in CATEGORIES:
                raise ValueError(f"a category drift needs a category from {CATEGORIES}, got {drift.get('category')!r}")
            by_category[start - first_day:, CATEGORIES.index(drift["category"])] += value
    return shift, by_category


def stream(seed: int, first_day: int, n_days: int, drifts: list[dict] | None = None) -> AdStream:
    """Continue the world at ``seed`` for ``n_days`` logged days from ``first_day``, with drift injected.

    The same users, advertisers and truth. The world's own drifts go on: budgets keep growing
    or shrinking, advertisers keep arriving and leaving, campaigns start and end with new
    creatives, and the log-odds keep falling by ``ctr_trend_per_week``. Each day is drawn from
    its own random stream, so a day's requests and served ads do not depend on ``first_day``
    (the days between the stored log's end and ``first_day`` are skipped, nothing carries over)
    and the drifts change only the clicks whose ``p`` they change.

    Each drift is a dict with the ``day`` it starts (in the logged days), its ``kind`` (a key of
    :data:`DRIFTS`) and that kind's parameters; it lasts to the end. Returns an
    :class:`AdStream`; ``AdStream.true_probability(impressions)`` is the exact ``p``. The stored
    world is unchanged.
    """
    k = KNOBS
    seed = check_int("seed", seed, minimum=0)
    first_day = check_int("first_day", first_day, minimum=k["n_days"])
    n_days = check_int("n_days", n_days, minimum=1)
    end = first_day + n_days
    shift, by_category = _check_drifts(drifts, first_day, end)

    users, ads, hidden, tables, truth = _base(seed, end)
    server = _server(users, ads, truth)
    log = _log([_simulate_day(server, seed, day, shift[day - first_day], by_category[day - first_day]) for day in range(first_day, end)])
    # the ads of the stored world are a prefix of these (see _ads): the rest are new
    new_advertisers = ads.advertisers[ads.advertisers["join_day"] >= k["n_days"]]
    new_campaigns = ads.campaigns[ads.campaigns["start_day"] >= k["n_days"]]
    new_creatives = ads.creatives[ads.creatives["campaign_id"].isin(new_campaigns["campaign_id"])]
    days = pd.RangeIndex(first_day, end, name="day")
    return AdStream(
        first_day=first_day,
        n_days=n_days,
        impressions=log,
        advertisers=new_advertisers.reset_index(drop=True),
        campaigns=new_campaigns.reset_index(drop=True),
        creatives=new_creatives.reset_index(drop=True),
        creative_truth=ads.creative_truth[ads.creative_truth["creative_id"].isin(new_creatives["creative_id"])].reset_index(drop=True),
        logit_shift=pd.Series(shift, index=days, name="logit_shift"),
        category_shift=pd.DataFrame(by_category, index=days, columns=list(CATEGORIES)),
        tables=tables,
    )
