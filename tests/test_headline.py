import json
import math

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from mlsd.evaluation.headline import (HEADLINE_NAMES, glue_headline, headline_intervals, headline_numbers, lift_share,
                           read_headline, resampled_intervals)
from mlsd.evaluation.metrics import average_precision_of_matches, match_detections, roc_auc


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


GOOD = dict(task="rank videos", baseline_name="trending", intervals={"model": (0.15, 0.25), "lift_share": (0.3, 0.7)},
            unit="800 test users", systems={"most popular": 0.05, "trending": 0.1, "final system": 0.2},
            baselines_on_validation={"most popular": 0.04, "trending": 0.09})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(metric=" "), "metric must be a non-empty string"),
        (dict(task=""), "task must be a non-empty string"),
        (dict(baseline_name=None), "baseline_name must be a non-empty string"),
        (dict(unit=""), "unit must be a non-empty string"),
        (dict(intervals=(0.15, 0.25)), "intervals must be headline_intervals' or resampled_intervals' answer"),
        (dict(intervals={"model": (0.21, 0.25), "lift_share": (0.3, 0.7)}), "does not contain the point estimate 0.2"),
        (dict(intervals={"model": (0.15, 0.25), "lift_share": (0.3,)}), "must be a \\(low, high\\) pair"),
        (dict(systems={}), "systems must be a non-empty dict"),
        (dict(systems={"a": float("nan")}), "systems\\['a'\\] must be a finite number"),
        (dict(baselines_on_validation={"most popular": 0.1, "trending": 0.09}),
         "the baseline must be the strongest simple baseline on validation: 'most popular'"),
        (dict(baselines_on_validation={"most popular": 0.1}), "'trending' None"),
        (dict(clairvoyant=math.inf), "clairvoyant must be a finite number"),
    ],
)
def test_glue_headline_rejects_what_breaks_the_contract(changes, message):
    args = dict(metric="MAP@10", baseline=0.1, model=0.2, oracle=0.3) | GOOD | changes
    with pytest.raises(ValueError, match=message):
        glue_headline(**args)


def test_the_strongest_baseline_is_the_lowest_where_lower_is_better():
    """Log loss: the oracle is below the baseline, so the strongest baseline is the lowest."""
    args = GOOD | dict(intervals={"model": (0.25, 0.27), "lift_share": (0.3, 0.7)},
                       baselines_on_validation={"trending": 0.31, "most popular": 0.29})
    with pytest.raises(ValueError, match="'most popular' scores 0.29"):
        glue_headline("log loss", 0.3, 0.26, 0.2, **args)


def test_glued_headline_reads_back_from_an_executed_notebook():
    call = (f"glue_headline('MAP@10', 0.1, 0.2, 0.3, clairvoyant=0.35, **{GOOD!r})")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"from mlsd.evaluation.headline import glue_headline\n_ = {call}"),
    ])
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    headline = read_headline(nb)
    assert set(headline) == set(HEADLINE_NAMES) | {"headline_clairvoyant"}
    assert headline["headline_metric"] == "MAP@10"
    assert headline["headline_task"] == "rank videos" and headline["headline_baseline_name"] == "trending"
    assert math.isclose(headline["headline_lift_share"], 0.5)
    assert headline["headline_model_interval"] == (0.15, 0.25)
    glued = {o["metadata"]["scrapbook"]["name"] for o in nb.cells[0].outputs if "scrapbook" in o.get("metadata", {})}
    assert {"headline_model_low", "headline_model_high", "headline_lift_share_low", "headline_lift_share_high"} <= glued
    assert headline["headline_systems"] == GOOD["systems"]
    assert headline["headline_clairvoyant"] == 0.35
    assert read_headline(nbformat.v4.new_notebook()) == {}
    numbers = headline_numbers(headline)
    assert numbers["lift_share_interval"] == [0.3, 0.7] and numbers["oracle"] == 0.3
    assert "task" not in numbers and "unit" not in numbers
    assert json.loads(json.dumps(numbers)) == numbers  # what make bench stores reads back equal
    # make bench reads the headline from its child process as JSON: intervals come as lists
    assert headline_numbers(json.loads(json.dumps(headline))) == numbers


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


def test_intervals_for_a_metric_that_is_no_mean_resample_predictions_with_their_labels():
    """ROC-AUC: the bootstrap resamples (label, predictions) rows together."""
    rng = np.random.default_rng(0)
    y = (rng.random(1500) < 0.3).astype(float)
    base, model, oracle = (y * shift + rng.normal(0, 1, len(y)) for shift in (0.2, 0.8, 1.6))
    out = headline_intervals(base, model, oracle, seed=0, labels=y, metric=roc_auc, n_resamples=300)
    low, high = out["model"]
    assert low < roc_auc(y, model) < high
    # the Hanley-McNeil standard error of an AUC near 0.72 with 450 positives and 1050 negatives
    assert math.isclose((high - low) / (2 * 1.96), 0.0145, rel_tol=0.25)
    share = lift_share(roc_auc(y, base), roc_auc(y, model), roc_auc(y, oracle))
    assert out["lift_share"][0] < share < out["lift_share"][1]
    with pytest.raises(ValueError, match="give labels and metric together"):
        headline_intervals(base, model, oracle, seed=0, labels=y)
    with pytest.raises(ValueError, match="the same units"):
        headline_intervals(base, model, oracle, seed=0, labels=y[:-1], metric=roc_auc)


# --- intervals for a metric that is no mean over units: the caller scores each resample ------------


def _weighted_means(*per_unit):
    """score(weights) for systems scored by the mean over units: the weighted means."""
    return lambda weights: tuple(float(np.average(v, weights=weights)) for v in per_unit)


def test_resampled_intervals_agree_with_headline_intervals_for_a_mean():
    baseline, oracle, hardness = _units(400)
    model = 0.6 + 0.1 * hardness + np.random.default_rng(1).normal(0, 0.05, 400)
    ours = resampled_intervals(_weighted_means(baseline, model, oracle), 400, seed=0, n_resamples=2000)
    theirs = headline_intervals(baseline, model, oracle, seed=0)
    for name in ("model", "lift_share"):
        width = theirs[name][1] - theirs[name][0]
        assert width > 0
        # the ends agree to within the Monte Carlo error of two bootstraps of 2,000 resamples
        np.testing.assert_allclose(ours[name], theirs[name], atol=min(0.02, 0.1 * width))
    share = lift_share(baseline.mean(), model.mean(), oracle.mean())
    assert ours["model"][0] < model.mean() < ours["model"][1]
    assert ours["lift_share"][0] < share < ours["lift_share"][1]


def test_resampled_intervals_are_paired_and_repeat_with_the_seed():
    baseline, oracle, _ = _units(300)
    halfway = _weighted_means(baseline, baseline + 0.5 * (oracle - baseline), oracle)
    low, high = resampled_intervals(halfway, 300, seed=0)["lift_share"]
    assert math.isclose(low, 0.5) and math.isclose(high, 0.5)  # 0.5 in every paired resample
    model = baseline + np.random.default_rng(2).normal(0.2, 0.1, 300)
    score = _weighted_means(baseline, model, oracle)
    first = resampled_intervals(score, 300, seed=4, n_resamples=200)
    assert resampled_intervals(score, 300, seed=4, n_resamples=200) == first
    assert resampled_intervals(score, 300, seed=5, n_resamples=200) != first


def test_resampled_intervals_pass_bootstrap_multiplicities_and_the_full_sample_first():
    seen = []

    def score(weights):
        seen.append(np.array(weights))
        return 0.2, 0.5 + 0.01 * weights[0], 0.9

    resampled_intervals(score, 7, seed=0, n_resamples=300)
    np.testing.assert_array_equal(seen[0], np.ones(7))
    assert len(seen) == 301
    for weights in seen:
        assert weights.shape == (7,) and weights.dtype.kind == "i" and weights.sum() == 7 and weights.min() >= 0
    # unit 0 is drawn Binomial(7, 1/7) times: mean 1, variance 6/7
    drawn = np.array([w[0] for w in seen[1:]])
    assert math.isclose(drawn.mean(), 1, abs_tol=0.2) and math.isclose(drawn.var(), 6 / 7, rel_tol=0.3)


def test_resampled_intervals_of_map_over_images_from_matched_detections():
    """The use it was written for: detections matched once, each resample scored by weighting
    the images (chapter 6's mAP@0.5 over faces and plates, here over one class)."""
    rng = np.random.default_rng(0)
    n_images = 120
    truth = [(i, (x, 0, x + 10, 10)) for i in range(n_images) for x in (0, 20)[: rng.integers(1, 3)]]

    def detector(hit_rate, n_false):
        found = [(i, 1.0 + rng.random(), box) for i, box in truth if rng.random() < hit_rate]
        stray = [(int(i), rng.random() * 1.5, (40, 0, 50, 10)) for i in rng.integers(0, n_images, n_false)]
        return match_detections(found + stray, truth)

    systems = [detector(0.5, 150), detector(0.8, 60), detector(1.0, 0)]  # baseline, model, oracle

    def score(weights):
        return tuple(average_precision_of_matches(matches, weights) for matches in systems)

    full = score(np.ones(n_images))
    assert full[2] == 1.0 and full[0] < full[1] < 1.0
    out = resampled_intervals(score, n_images, seed=0, n_resamples=300)
    assert out["model"][0] < full[1] < out["model"][1] <= 1.0
    assert out["lift_share"][0] < lift_share(*full) < out["lift_share"][1]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_units=1), ValueError, "at least two units"),
    (dict(n_units=2.5), TypeError, "n_units must be an integer"),
    (dict(level=1.0), ValueError, "level must be strictly between 0 and 1"),
    (dict(level=math.nan), ValueError, "level must be a finite number"),
    (dict(n_resamples=10), ValueError, "n_resamples must be >= 100"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
    (dict(score=lambda w: (0.3, 0.5)), ValueError, "must return three numbers"),
    (dict(score=lambda w: (0.3, math.nan, 0.8)), ValueError, r"score\(weights\)\[1\] must be a finite number"),
    (dict(score=lambda w: (0.3, 0.5, 0.3)), ValueError, "no achievable lift"),
    (dict(score=(0.3, 0.5, 0.8)), TypeError, "score must be a function"),
])
def test_resampled_intervals_refuse_bad_input(kwargs, error, match):
    args = dict(score=lambda w: (0.3, 0.5 + 0.01 * w[0], 0.8), n_units=5, seed=0) | kwargs
    with pytest.raises(error, match=match):
        resampled_intervals(**args)
