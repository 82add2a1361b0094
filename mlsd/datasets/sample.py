"""A tiny world that proves the pipeline: will a user tap a push notification?

It exists so the book's machinery (data -> notebook -> nbval -> HTML) can be tested before the
real chapters arrive; the framework chapter replaces it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd.datasets.world import World
from mlsd.seeding import make_rng

DEFAULT_SEED = 0

KNOBS = {
    "n_notifications": 6000,
    "n_days": 28,
    "base_logit": -2.2,
    "weight_past_ctr": 5.0,
    "weight_days_since_visit": -0.12,
    "evening_boost": 0.8,
}

SUMMARY = """
Push notifications sent over four weeks, and whether each was tapped. The probability of a tap
comes from a logistic model of the user's past tap rate, the days since their last visit and
whether the notification was sent in the evening (18:00-22:00), so the Bayes-optimal score is
known exactly.

**Hidden truth.** `hidden/truth.csv.gz` holds each notification's true tap probability. It is
for computing the oracle (the best achievable score) only.

**Known biases.** None by design: notifications are sent uniformly in time and the tap
model does not change over the four weeks.
"""

COLUMNS = {
    "notifications.notification_id": "unique id, in send order",
    "notifications.day": "day of sending, 0 = first day",
    "notifications.hour": "hour of sending (0-23)",
    "notifications.past_ctr": "the user's tap rate over earlier notifications",
    "notifications.days_since_visit": "days since the user last opened the app",
    "notifications.tapped": "1 if the user tapped the notification (the label)",
    "truth.notification_id": "joins to notifications",
    "truth.p_tap": "the true tap probability",
}


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the sample world at ``seed``."""
    k = KNOBS
    n = k["n_notifications"]
    rng = make_rng(seed, "sample", "features")
    day = np.sort(rng.integers(0, k["n_days"], size=n))
    hour = rng.integers(0, 24, size=n)
    past_ctr = rng.beta(2.0, 8.0, size=n).round(4)
    days_since_visit = rng.exponential(4.0, size=n).round(2)
    evening = (hour >= 18) & (hour <= 22)
    logit = (
        k["base_logit"]
        + k["weight_past_ctr"] * (past_ctr - 0.2)
        + k["weight_days_since_visit"] * days_since_visit
        + k["evening_boost"] * evening
    )
    p_tap = 1.0 / (1.0 + np.exp(-logit))
    tapped = (make_rng(seed, "sample", "labels").random(n) < p_tap).astype(int)
    ids = np.arange(n)
    notifications = pd.DataFrame(
        {
            "notification_id": ids,
            "day": day,
            "hour": hour,
            "past_ctr": past_ctr,
            "days_since_visit": days_since_visit,
            "tapped": tapped,
        }
    )
    truth = pd.DataFrame({"notification_id": ids, "p_tap": p_tap.round(6)})
    return World(
        name="sample",
        seed=seed,
        observed={"notifications": notifications},
        hidden={"truth": truth},
        summary=SUMMARY,
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
