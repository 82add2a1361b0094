"""The framework chapter's world: will a user open a push notification within an hour?

Each user has a hidden propensity to open notifications and hidden tastes for four topics; each
notification's true open probability is a logistic function of those, the hour it is sent, how
many the user already got that day (fatigue), the platform and how new the user is. What a team
would log is observed; the true probabilities are hidden and only used for the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.datasets.world import World
from mlsd.book.seeding import make_rng

DEFAULT_SEED = 0

TOPICS = ("breaking_news", "sports", "promotions", "friends")
PLATFORMS = ("android", "ios", "web")

KNOBS = {
    "n_users": 2000,
    "n_days": 28,
    "sends_per_user_day": 1.1,
    "max_sends_per_day": 4,
    "base_logit": -2.3,
    "propensity_sd": 0.8,
    "taste_sd": 0.7,
    "fatigue_per_extra_send": -0.35,
    "evening_boost": 0.5,
    "night_penalty": -0.9,
    "new_user_boost": 0.4,
    "history_sends_mean": 20,
}

SUMMARY = f"""
A news app sends push notifications on {len(TOPICS)} topics ({", ".join(TOPICS)}). For each
notification we log whether the user opened it within an hour. The true open probability is

`logit p = base + propensity(user) + taste(user, topic) + hour effect + fatigue x (nth send today - 1)
+ platform effect + new-user boost`,

with the user's propensity and tastes hidden. Users reveal them only through behaviour: their
open count over the {KNOBS["history_sends_mean"]} or so notifications before the log starts, and a
"favourite topic" that is the argmax of their tastes plus noise.

**Leakage trap.** `session_minutes_after` (minutes spent in the app in the hour after the send)
is recorded in the same log, joined after the fact; it is mostly a consequence of opening, and
it is not known when the decision to send is made.

**Hidden truth.** `hidden/truth.csv.gz`: each notification's true open probability, for the
oracle only.

**Known biases.** Notifications are logged only when sent: the send policy that produced this
log (uniform hours 7-23, random topics) is not the one a model would choose, so the log says
little about hours and topics the policy rarely used. The fatigue effect means the open rate of
a notification depends on the others sent the same day.
"""

COLUMNS = {
    "users.user_id": "unique user id",
    "users.platform": "the device platform",
    "users.tenure_days": "days since sign-up when the log starts",
    "users.favourite_topic": "the topic the user follows most (a noisy view of their tastes)",
    "users.past_sends": "notifications sent to the user in the month before the log",
    "users.past_opens": "of those, how many were opened",
    "notifications.notification_id": "unique id, in send order",
    "notifications.user_id": "joins to users",
    "notifications.day": "day of sending, 0 = first day of the log",
    "notifications.hour": "local hour of sending (7-23)",
    "notifications.topic": "the notification's topic",
    "notifications.nth_today": "1 for the user's first notification of the day, 2 for the second, ...",
    "notifications.session_minutes_after": "minutes in the app during the hour after sending (known only afterwards)",
    "notifications.opened": "1 if opened within an hour (the label)",
    "truth.notification_id": "joins to notifications",
    "truth.p_open": "the true open probability",
}


def _hour_effect(hour: np.ndarray) -> np.ndarray:
    k = KNOBS
    evening = (hour >= 18) & (hour <= 21)
    night = hour >= 22
    return k["evening_boost"] * evening + k["night_penalty"] * night + 0.2 * ((hour >= 7) & (hour <= 8))


@dataclass
class _Population:
    """The users: what is observed about them, and their hidden propensity and tastes."""

    users: pd.DataFrame
    propensity: np.ndarray
    taste: np.ndarray
    user_effect: np.ndarray  # platform and new-user effects, per user


def _population(seed: int) -> _Population:
    k = KNOBS
    n = k["n_users"]
    rng = make_rng(seed, "notifications", "users")
    propensity = rng.normal(0.0, k["propensity_sd"], n)
    taste = rng.normal(0.0, k["taste_sd"], (n, len(TOPICS)))
    favourite = taste + rng.normal(0.0, 0.5, taste.shape)  # the topic users *say* they like
    platform = rng.choice(len(PLATFORMS), size=n, p=[0.5, 0.4, 0.1])
    platform_effect = np.array([0.0, 0.15, -0.4])[platform]
    tenure = rng.exponential(400.0, n).astype(int)
    new_user = k["new_user_boost"] * np.exp(-tenure / 60.0)
    # a month of history under the old policy: the only observable trace of the propensity
    past_sends = rng.poisson(k["history_sends_mean"], n)
    p_past = 1.0 / (1.0 + np.exp(-(k["base_logit"] + propensity + taste.mean(axis=1) + platform_effect)))
    past_opens = rng.binomial(past_sends, p_past)
    users = pd.DataFrame(
        {
            "user_id": np.arange(n),
            "platform": np.array(PLATFORMS)[platform],
            "tenure_days": tenure,
            "favourite_topic": np.array(TOPICS)[favourite.argmax(axis=1)],
            "past_sends": past_sends,
            "past_opens": past_opens,
        }
    )
    return _Population(users, propensity, taste, platform_effect + new_user)


def _send_log(n_users: int, first_day: int, n_days: int, rng: np.random.Generator, night_share=None) -> pd.DataFrame:
    """Who gets a notification when: a Poisson number per user and day, random hours and topics.

    ``night_share`` (an array over days, or None) moves that share of each day's sends to 22-23 h.
    """
    k = KNOBS
    sends = np.minimum(rng.poisson(k["sends_per_user_day"], (n_users, n_days)), k["max_sends_per_day"])
    user = np.repeat(np.tile(np.arange(n_users), n_days), sends.T.ravel())
    day = first_day + np.repeat(np.repeat(np.arange(n_days), n_users), sends.T.ravel())
    m = len(user)
    hour = rng.integers(7, 24, m)
    topic = rng.choice(len(TOPICS), size=m, p=[0.3, 0.25, 0.3, 0.15])
    if night_share is not None:
        moved = rng.random(m) < night_share[day - first_day]
        hour = np.where(moved, rng.integers(22, 24, m), hour)
    log = pd.DataFrame({"user": user, "day": day, "hour": hour, "topic": topic})
    log = log.sort_values(["day", "hour", "user"], kind="stable").reset_index(drop=True)
    log["nth_today"] = log.groupby(["user", "day"]).cumcount() + 1
    return log


def _open_probability(pop: _Population, log: pd.DataFrame, logit_shift=0.0, taste_shift=None) -> np.ndarray:
    k = KNOBS
    u, t = log["user"].to_numpy(), log["topic"].to_numpy()
    taste = pop.taste[u, t] + (0.0 if taste_shift is None else taste_shift[np.arange(len(t)), t])
    logit = (
        k["base_logit"]
        + logit_shift
        + pop.propensity[u]
        + taste
        + _hour_effect(log["hour"].to_numpy())
        + k["fatigue_per_extra_send"] * (log["nth_today"].to_numpy() - 1)
        + pop.user_effect[u]
    )
    return 1.0 / (1.0 + np.exp(-logit))


def _outcomes(p_open: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    m = len(p_open)
    opened = (rng.random(m) < p_open).astype(int)
    browsing = rng.random(m) < 0.08  # some users open the app anyway
    minutes = np.where(opened == 1, rng.gamma(2.0, 4.0, m), np.where(browsing, rng.gamma(1.5, 3.0, m), 0.0))
    return opened, minutes.round(1)


def _notification_table(log: pd.DataFrame, first_id: int, opened: np.ndarray, minutes: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "notification_id": first_id + np.arange(len(log)),
            "user_id": log["user"].to_numpy(),
            "day": log["day"].to_numpy(),
            "hour": log["hour"].to_numpy(),
            "topic": np.array(TOPICS)[log["topic"].to_numpy()],
            "nth_today": log["nth_today"].to_numpy(),
            "session_minutes_after": minutes,
            "opened": opened,
        }
    )


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the notifications world at ``seed``."""
    pop = _population(seed)
    log = _send_log(KNOBS["n_users"], 0, KNOBS["n_days"], make_rng(seed, "notifications", "sends"))
    p_open = _open_probability(pop, log)
    opened, minutes = _outcomes(p_open, make_rng(seed, "notifications", "outcomes"))
    notifications = _notification_table(log, 0, opened, minutes)
    truth = pd.DataFrame({"notification_id": notifications["notification_id"], "p_open": p_open.round(6)})
    return World(
        name="notifications",
        seed=seed,
        observed={"users": pop.users, "notifications": notifications},
        hidden={"truth": truth},
        summary=SUMMARY,
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )


#: The kinds of drift :func:`stream` can inject, and the parameter each takes.
DRIFTS = {
    "night_sends": "share: the share of sends the new policy moves to 22-23 h (feature drift)",
    "prior": "shift: added to every log-odds, e.g. -0.5 (prior or label shift)",
    "topic_taste": "topic, shift: added to every user's taste for that topic (concept drift)",
}


def stream(seed: int, first_day: int, n_days: int, drifts: list[dict] | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Continue the world at ``seed`` for ``n_days`` days from ``first_day``, with drift injected.

    The same users (same hidden propensities and tastes) keep receiving notifications. Each
    drift is a dict with the ``day`` it starts, its ``kind`` (a key of :data:`DRIFTS`) and the
    parameters that kind takes; it lasts to the end of the stream. Chapter 4 monitors this.

    Returns the notifications table (ids continue after the stored world's) and the hidden true
    open probabilities, indexed by ``notification_id``.
    """
    seed = check_int("seed", seed, minimum=0)
    first_day = check_int("first_day", first_day, minimum=KNOBS["n_days"])
    n_days = check_int("n_days", n_days, minimum=1)
    days = np.arange(first_day, first_day + n_days)
    night_share = np.zeros(n_days)
    logit_shift_by_day = np.zeros(n_days)
    taste_shift_by_day = np.zeros((n_days, len(TOPICS)))
    for drift in drifts or []:
        kind, start = drift.get("kind"), drift.get("day")
        if kind not in DRIFTS:
            raise ValueError(f"unknown drift kind {kind!r}; known: {sorted(DRIFTS)}")
        check_int("drift day", start, minimum=first_day)
        on = days >= start
        if kind == "night_sends":
            share = drift["share"]
            if not 0 <= share <= 1:
                raise ValueError(f"night_sends share must be in [0, 1], got {share!r}")
            night_share[on] = share
        elif kind == "prior":
            logit_shift_by_day[on] += check_finite("prior shift", drift["shift"])
        else:
            if drift.get("topic") not in TOPICS:
                raise ValueError(f"topic_taste needs a topic from {TOPICS}, got {drift.get('topic')!r}")
            taste_shift_by_day[on, TOPICS.index(drift["topic"])] += check_finite("taste shift", drift["shift"])

    pop = _population(seed)
    log = _send_log(KNOBS["n_users"], first_day, n_days, make_rng(seed, "notifications", "stream", "sends"), night_share)
    offset = log["day"].to_numpy() - first_day
    p_open = _open_probability(pop, log, logit_shift_by_day[offset], taste_shift_by_day[offset])
    opened, minutes = _outcomes(p_open, make_rng(seed, "notifications", "stream", "outcomes"))
    # ids continue after the stored world's: as many as its send log has rows (no need to
    # regenerate its outcomes and tables for that)
    first_id = len(_send_log(KNOBS["n_users"], 0, KNOBS["n_days"], make_rng(seed, "notifications", "sends")))
    notifications = _notification_table(log, first_id, opened, minutes)
    return notifications, pd.Series(p_open, index=notifications["notification_id"], name="p_open")
