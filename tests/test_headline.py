import math

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from mlsd.headline import HEADLINE_NAMES, glue_headline, headline_intervals, lift_share, read_headline


@pytest.mark.parametrize(
    "baseline, model, oracle, share",
    [
        (0.5, 0.75, 1.0, 0.5),  # higher is better (AUC)
        (0.30, 0.24, 0.20, 0.6),  # lower is better (log loss): the same formula
        (0.5, 0.5, 0.9, 0.0),
        (0.5, 0.9, 0.9, 1.0),
        (0.5, 0.4, 0.9, -0.25),  # worse than the baseline: negative, not clipped
    ],
)
def test_lift_share(baseline, model, oracle, share):
    assert math.isclose(lift_share(baseline, model, oracle), share)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.5, 0.6, 0.5), "no achievable lift"),
        ((math.nan, 0.6, 0.9), "baseline must be a finite number"),
        ((0.5, math.inf, 0.9), "model must be a finite number"),
        ((0.5, 0.6, "0.9"), "oracle must be a finite number"),
    ],
)
def test_lift_share_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        lift_share(*args)


@pytest.mark.parametrize(
    "metric, task, baseline_name, message",
    [
        (" ", "rank videos", "most popular", "metric must be a non-empty string"),
        ("MAP@10", "", "most popular", "task must be a non-empty string"),
        ("MAP@10", "rank videos", None, "baseline_name must be a non-empty string"),
    ],
)
def test_glue_headline_rejects_empty_names(metric, task, baseline_name, message):
    with pytest.raises(ValueError, match=message):
        glue_headline(metric, 0.5, 0.6, 0.9, task=task, baseline_name=baseline_name)


def test_glued_headline_reads_back_from_an_executed_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from mlsd.headline import glue_headline\n_ = glue_headline('MAP@10', 0.1, 0.2, 0.3, task='rank videos', baseline_name='most popular')"),
    ])
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    headline = read_headline(nb)
    assert set(headline) == set(HEADLINE_NAMES)
    assert headline["headline_metric"] == "MAP@10"
    assert headline["headline_task"] == "rank videos" and headline["headline_baseline_name"] == "most popular"
    assert math.isclose(headline["headline_lift_share"], 0.5)
    assert read_headline(nbformat.v4.new_notebook()) == {}


# --- paired bootstrap intervals ---------------------------------------------------------------------


def _units(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    hardness = rng.normal(0, 1, n)  # shared by every system: what pairing cancels
    baseline = 0.3 + 0.1 * hardness + rng.normal(0, 0.02, n)
    oracle = 0.8 + 0.1 * hardness + rng.normal(0, 0.02, n)
    return baseline, oracle, hardness


def test_intervals_contain_the_point_estimates_and_match_the_normal_approximation():
    baseline, oracle, hardness = _units()
    model = 0.6 + 0.1 * hardness + np.random.default_rng(1).normal(0, 0.05, len(hardness))
    out = headline_intervals(baseline, model, oracle, seed=0)
    low, high = out["model"]
    assert low < model.mean() < high
    half = 1.96 * model.std(ddof=1) / np.sqrt(len(model))
    assert math.isclose(high - low, 2 * half, rel_tol=0.1)
    share = lift_share(baseline.mean(), model.mean(), oracle.mean())
    assert out["lift_share"][0] < share < out["lift_share"][1]


def test_the_lift_share_is_paired_over_units():
    """A model exactly halfway between baseline and oracle on every unit has share 0.5 in every
    resample; resampling the systems independently would spread it by the units' hardness."""
    baseline, oracle, _ = _units()
    model = baseline + 0.5 * (oracle - baseline)
    low, high = headline_intervals(baseline, model, oracle, seed=0)["lift_share"]
    assert math.isclose(low, 0.5) and math.isclose(high, 0.5)


def test_intervals_narrow_with_more_units_and_repeat_with_the_seed():
    widths = []
    for n in (400, 6400):
        baseline, oracle, hardness = _units(n)
        model = 0.6 + 0.1 * hardness + np.random.default_rng(1).normal(0, 0.05, n)
        low, high = headline_intervals(baseline, model, oracle, seed=3)["model"]
        widths.append(high - low)
        assert headline_intervals(baseline, model, oracle, seed=3)["model"] == (low, high)
    assert math.isclose(widths[0] / widths[1], 4, rel_tol=0.2)  # 16 times the units: a quarter


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(model=[0.5, 0.6]), ValueError, "the same units"),
    (dict(baseline=[0.3], model=[0.5], oracle=[0.8]), ValueError, "at least two units"),
    (dict(model=[0.5, np.nan, 0.6]), ValueError, "finite"),
    (dict(oracle=[0.3, 0.3, 0.3], baseline=[0.3, 0.3, 0.3]), ValueError, "no achievable lift"),
    (dict(level=1.0), ValueError, "level must be strictly between 0 and 1"),
    (dict(n_resamples=10), ValueError, "n_resamples must be >= 100"),
])
def test_intervals_refuse_bad_input(kwargs, error, match):
    args = dict(baseline=[0.3, 0.2, 0.4], model=[0.5, 0.4, 0.6], oracle=[0.8, 0.7, 0.9], seed=0) | kwargs
    with pytest.raises(error, match=match):
        headline_intervals(**args)
