"""The framework chapter's world: will a user open a push notification within an hour?

Each user has a hidden propensity to open notifications and hidden tastes for four topics; each
notification's true open probability is a logistic function of those, the hour it is sent, how
many the user already got that day (fatigue), the platform and how new the user is. What a team
would log is observed; the true probabilities are hidden and only used for the oracle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd.datasets.world import World
from mlsd.seeding import make_rng

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


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the notifications world at ``seed``."""
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

    rng = make_rng(seed, "notifications", "sends")
    sends = np.minimum(rng.poisson(k["sends_per_user_day"], (n, k["n_days"])), k["max_sends_per_day"])
    user = np.repeat(np.tile(np.arange(n), k["n_days"]), sends.T.ravel())
    day = np.repeat(np.repeat(np.arange(k["n_days"]), n), sends.T.ravel())
    m = len(user)
    hour = rng.integers(7, 24, m)
    topic = rng.choice(len(TOPICS), size=m, p=[0.3, 0.25, 0.3, 0.15])
    log = pd.DataFrame({"user": user, "day": day, "hour": hour, "topic": topic})
    log = log.sort_values(["day", "hour", "user"], kind="stable").reset_index(drop=True)
    log["nth_today"] = log.groupby(["user", "day"]).cumcount() + 1
    u, t = log["user"].to_numpy(), log["topic"].to_numpy()
    logit = (
        k["base_logit"]
        + propensity[u]
        + taste[u, t]
        + _hour_effect(log["hour"].to_numpy())
        + k["fatigue_per_extra_send"] * (log["nth_today"].to_numpy() - 1)
        + platform_effect[u]
        + new_user[u]
    )
    p_open = 1.0 / (1.0 + np.exp(-logit))

    rng = make_rng(seed, "notifications", "outcomes")
    opened = (rng.random(m) < p_open).astype(int)
    browsing = rng.random(m) < 0.08  # some users open the app anyway
    minutes = np.where(opened == 1, rng.gamma(2.0, 4.0, m), np.where(browsing, rng.gamma(1.5, 3.0, m), 0.0))

    ids = np.arange(m)
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
    notifications = pd.DataFrame(
        {
            "notification_id": ids,
            "user_id": u,
            "day": log["day"].to_numpy(),
            "hour": log["hour"].to_numpy(),
            "topic": np.array(TOPICS)[t],
            "nth_today": log["nth_today"].to_numpy(),
            "session_minutes_after": minutes.round(1),
            "opened": opened,
        }
    )
    truth = pd.DataFrame({"notification_id": ids, "p_open": p_open.round(6)})
    return World(
        name="notifications",
        seed=seed,
        observed={"users": users, "notifications": notifications},
        hidden={"truth": truth},
        summary=SUMMARY,
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
