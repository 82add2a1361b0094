"""The shared notification model: history features must only look at earlier days."""

import pandas as pd
import pytest

from mlsd.models import notification_model as nm
from mlsd.datasets import load

LOG = pd.DataFrame(
    {
        "user_id": [1, 1, 1, 2, 1],
        "day": [0, 0, 1, 1, 3],
        "topic": ["a", "b", "a", "a", "a"],
        "opened": [1, 0, 1, 1, 0],
    }
)


def test_history_counts_only_earlier_days():
    history = nm.history_as_of(LOG, ["user_id"])
    # user 1: nothing before day 0; two sends (one open) before day 1; three sends, two opens before day 3
    assert history["sends"].tolist() == [0, 0, 2, 0, 3]
    assert history["opens"].tolist() == [0, 0, 1, 0, 2]
    by_topic = nm.history_as_of(LOG, ["user_id", "topic"])
    assert by_topic["sends"].tolist() == [0, 0, 1, 0, 2]


def test_features_of_the_world_are_complete_and_point_in_time():
    world = load("notifications")
    data = nm.add_features(world.observed["notifications"], world.observed["users"])
    assert len(data) == len(world.observed["notifications"])
    assert data[nm.FEATURES].notna().all().all()
    # no feature may change when the label of the same day changes: flip every label of the last day
    log = world.observed["notifications"]
    flipped = log.assign(opened=log["opened"].where(log["day"] < log["day"].max(), 1 - log["opened"]))
    again = nm.add_features(flipped, world.observed["users"])
    last = log["day"] == log["day"].max()
    pd.testing.assert_frame_equal(data.loc[last, nm.FEATURES], again.loc[last, nm.FEATURES])


def test_both_pipelines_fit_and_predict_probabilities():
    world = load("notifications")
    data = nm.add_features(world.observed["notifications"], world.observed["users"]).head(3000)
    for model in (nm.logistic_regression(), nm.gradient_boosting(seed=0)):
        p = model.fit(data[nm.FEATURES], data["opened"]).predict_proba(data[nm.FEATURES])[:, 1]
        assert ((p > 0) & (p < 1)).all()

