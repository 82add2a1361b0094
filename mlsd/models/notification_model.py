"""The push-notification open model: features and pipelines (Chapter 1 explains them).

Chapter 1 builds this model step by step and shows this code; Chapters 3 and 4 serve and
monitor the same model, so it lives here, once.

Features are computed **as of the day of each notification**: a user's history only
counts what happened on earlier days, so the same code is valid offline (training) and
online (a nightly job uploads yesterday's history to the feature store).
"""

from __future__ import annotations

import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

PRIOR_RATE, PRIOR_WEIGHT = 0.12, 10  # a 12% open rate, worth 10 notifications
TOPIC_PRIOR_WEIGHT = 3  # a topic rate is shrunk towards the user's own rate

CATEGORICAL = ["platform", "topic", "favourite_topic"]
NUMERIC = ["nth_today", "tenure_days", "user_open_rate", "topic_sends",
           "user_topic_open_rate"]
FEATURES = CATEGORICAL + ["hour"] + NUMERIC


def history_as_of(log: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sends and opens per ``keys`` on all days *before* each notification's day."""
    daily = (log.groupby(keys + ["day"])["opened"].agg(sends="size", opens="sum")
             .reset_index())
    daily[["sends", "opens"]] = daily.groupby(keys)[["sends", "opens"]].cumsum()
    daily["day"] += 1  # what happened on day d is known from day d + 1
    rows = log[keys + ["day"]].reset_index().sort_values("day")
    joined = pd.merge_asof(rows, daily.sort_values("day"), on="day", by=keys,
                           direction="backward")
    return joined.set_index("index").sort_index()[["sends", "opens"]].fillna(0)


def add_features(log: pd.DataFrame, users: pd.DataFrame) -> pd.DataFrame:
    """Join the user profile; add the smoothed history features to each notification."""
    df = log.merge(users, on="user_id", how="left", validate="many_to_one")
    user = history_as_of(log, ["user_id"])
    sends = df["past_sends"] + user["sends"]
    opens = df["past_opens"] + user["opens"]
    df["user_open_rate"] = (opens + PRIOR_WEIGHT * PRIOR_RATE) / (sends + PRIOR_WEIGHT)
    topic = history_as_of(log, ["user_id", "topic"])
    df["topic_sends"] = topic["sends"]
    topic_opens = topic["opens"] + TOPIC_PRIOR_WEIGHT * df["user_open_rate"]
    df["user_topic_open_rate"] = topic_opens / (topic["sends"] + TOPIC_PRIOR_WEIGHT)
    df["tenure_days"] = df["tenure_days"] + df["day"]
    return df


def logistic_regression() -> Pipeline:
    """One-hot categories (the hour too: its effect is no line), scaled numbers."""
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL + ["hour"]),
        (StandardScaler(), NUMERIC),
    )
    return make_pipeline(encode, LogisticRegression(max_iter=1000))


def gradient_boosting(seed: int) -> Pipeline:
    """Ordinal-encoded categories (boosting splits on them natively), raw numbers."""
    encode = make_column_transformer(
        (OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
         CATEGORICAL),
        ("passthrough", ["hour"] + NUMERIC),
    )
    model = HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))), learning_rate=0.05,
        max_iter=300, random_state=seed)
    return make_pipeline(encode, model)
