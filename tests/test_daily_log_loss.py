"""mlsd.evaluation.metrics.daily_log_loss: the log loss of each day, as chapters 4 and 11 chart it."""

import numpy as np
import pandas as pd
import pytest

from mlsd.evaluation.metrics import daily_log_loss, log_loss


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.3, n)
    return (rng.random(n) < p).astype(int), p, rng.integers(3, 8, n)


def test_each_day_is_the_log_loss_of_its_rows():
    y, p, day = _data()
    daily = daily_log_loss(y, p, day)
    assert isinstance(daily, pd.Series) and daily.index.name == "day"
    assert list(daily.index) == sorted(set(day))
    for d, value in daily.items():
        assert value == log_loss(y[day == d], p[day == d])  # exactly: the same sum, same order


def test_a_mapping_gives_one_column_per_prediction():
    y, p, day = _data()
    frame = daily_log_loss(y, {"model": p, "oracle": np.clip(p * 1.1, 0, 1)}, day)
    assert list(frame.columns) == ["model", "oracle"]
    pd.testing.assert_series_equal(frame["model"], daily_log_loss(y, p, day), check_names=False)


def test_days_may_be_strings_and_in_any_order():
    y, p, _ = _data(6)
    day = np.array(["tue", "mon", "tue", "mon", "wed", "mon"])
    daily = daily_log_loss(y, p, day)
    assert list(daily.index) == ["mon", "tue", "wed"]
    assert daily["wed"] == log_loss(y[4:5], p[4:5])


@pytest.mark.parametrize("args, match", [
    (([0, 1], [0.1, 0.2], [1]), "one value per label"),
    (([0, 1], [0.1, 1.2], [1, 1]), r"\[0, 1\]"),
    (([0, 2], [0.1, 0.2], [1, 1]), "0 and 1"),
    (([0, 1], {"m": [0.1]}, [1, 1]), "different lengths"),
    (([0, 1], {}, [1, 1]), "empty mapping"),
])
def test_bad_input_names_the_problem(args, match):
    with pytest.raises(ValueError, match=match):
        daily_log_loss(*args)
