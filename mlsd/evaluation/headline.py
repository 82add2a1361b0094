"""The headline result every chapter reports: baseline, model, oracle and the lift share.

A chapter calls :func:`glue_headline` once; ``make bench`` (and the scoreboard) read the glued
values back from the executed notebook with :func:`read_headline`. The glue names are agreed
here, in one place.

The **share of achievable lift** is how much of the gap between the baseline and the oracle
(the Bayes-optimal score computed from the hidden truth) the model closes::

    lift_share = (model - baseline) / (oracle - baseline)

It is 0 for a model no better than the baseline and 1 for one as good as the oracle. The same
formula holds for metrics where lower is better (log loss): both differences change sign.

The headline contract (``case_studies.md``) is what makes shares comparable between chapters;
:func:`glue_headline` checks what it can when the notebook runs, the tests the rest:

- the oracle is a true ceiling: nothing in ``systems`` beats it, at seeds 0, 1 and 2;
- the baseline is the strongest simple baseline on validation (``baselines_on_validation``);
- the model's score and the lift share carry 95 % paired bootstrap intervals:
  :func:`headline_intervals` where the metric is a mean over units (or a function of per-unit
  predictions and labels, such as ROC-AUC), :func:`resampled_intervals` where it is neither
  (mAP over the test images, whose detections are matched once and then reweighted).
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from mlsd._checks import check_finite, check_finite_array, check_int

__all__ = ["HEADLINE_NAMES", "OPTIONAL_HEADLINE_NAMES", "lift_share", "headline_intervals", "resampled_intervals",
           "glue_headline", "headline_numbers", "read_headline"]

#: glue name -> meaning
HEADLINE_NAMES = {
    "headline_task": "what the chapter's system predicts or ranks, in a few words",
    "headline_metric": "the metric's name, e.g. 'ROC-AUC' or 'MAP@10'",
    "headline_baseline_name": "what the baseline is, e.g. 'most popular'",
    "headline_baseline": "the baseline's score on the test split",
    "headline_model": "the chapter's final system's score on the test split",
    "headline_oracle": "the oracle's score (from the hidden truth) on the test split",
    "headline_lift_share": "(model - baseline) / (oracle - baseline)",
    "headline_model_interval": "95 % paired bootstrap interval (low, high) for the model's score",
    "headline_lift_share_interval": "95 % paired bootstrap interval (low, high) for the lift share",
    "headline_unit": "what the bootstrap resampled, e.g. '800 test users'",
    "headline_systems": "{system: test score} for every system the chapter scores on the metric",
    "headline_baselines_on_validation": "{simple baseline: validation score}; the baseline is the best",
}

#: glued only where it applies: the score of a predictor that also knows the noise no feature
#: reveals (where the oracle is the posterior given the observable features)
OPTIONAL_HEADLINE_NAMES = {"headline_clairvoyant": "the clairvoyant's score, beside the oracle"}

_GLUE_PREFIX = "application/papermill.record/"


def lift_share(baseline: float, model: float, oracle: float) -> float:
    """Share of the baseline-to-oracle gap that the model closes (see the module docstring).

    Raises
    ------
    ValueError
        If a score is not a finite number, or the oracle equals the baseline (no lift to share).
    """
    baseline, model, oracle = (check_finite(n, v) for n, v in (("baseline", baseline), ("model", model), ("oracle", oracle)))
    if math.isclose(oracle, baseline, rel_tol=0.0, abs_tol=1e-12):
        raise ValueError(f"oracle ({oracle}) equals baseline ({baseline}): there is no achievable lift to share")
    return (model - baseline) / (oracle - baseline)


def _bootstrap_arguments(n_units: int, level, n_resamples) -> tuple[float, int]:
    """Check what every bootstrap here needs: two units, a level in (0, 1), 100 resamples."""
    if n_units < 2:
        raise ValueError("a bootstrap needs at least two units")
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    return level, check_int("n_resamples", n_resamples, minimum=100)


def headline_intervals(baseline, model, oracle, *, seed: int, labels=None, metric=None,
                       level: float = 0.95, n_resamples: int = 2000) -> dict:
    """Paired bootstrap intervals for the model's score and the lift share.

    ``baseline``, ``model`` and ``oracle`` hold one value per unit of the test set (a user, a
    query, an impression), for the same units in the same order. Without ``metric``, each
    system's score is the mean of its values: a user's average precision for MAP, an
    impression's log loss for the mean log loss. With ``metric`` (a function
    ``metric(labels, values) -> float`` such as ROC-AUC, which is no mean over units), the values
    are each system's predictions and ``labels`` the units' outcomes.

    The units are resampled with replacement *together* (paired), so that a unit that is hard
    for every system moves all three scores at once and the lift share's interval reflects only
    how the systems differ. Returns percentile intervals at ``level``::

        {"model": (low, high), "lift_share": (low, high)}

    Raises
    ------
    ValueError
        If the arrays are not 1-D, finite, of one length with at least two units, if ``labels``
        and ``metric`` are not given together, if ``level`` is not in (0, 1), or if the
        oracle's score equals the baseline's (no lift to share).
    """
    from scipy import stats

    from mlsd.book.seeding import make_rng

    values = [check_finite_array(name, v) for name, v in (("baseline", baseline), ("model", model), ("oracle", oracle))]
    if (labels is None) != (metric is None):
        raise ValueError("give labels and metric together (metric(labels, values) scores a system), or neither")
    if labels is not None:
        values.append(check_finite_array("labels", labels))
    if len({len(v) for v in values}) != 1:
        raise ValueError(f"baseline, model, oracle (and labels) must hold the same units, got lengths {[len(v) for v in values]}")
    level, n_resamples = _bootstrap_arguments(len(values[0]), level, n_resamples)
    options = dict(paired=True, n_resamples=n_resamples, confidence_level=level, method="percentile")
    if metric is None:
        lift_share(*(float(v.mean()) for v in values))  # raises if there is no lift to share

        def share(b, m, o, axis=-1):
            b, m, o = (x.mean(axis=axis) for x in (b, m, o))
            return (m - b) / (o - b)

        options |= dict(vectorized=True, batch=100)
        model_score = np.mean
    else:
        lift_share(*(float(metric(values[3], v)) for v in values[:3]))

        def share(b, m, o, y):
            return lift_share(*(float(metric(y, v)) for v in (b, m, o)))

        def model_score(m, y):
            return float(metric(y, m))

        options |= dict(vectorized=False, batch=100)  # resamples drawn 100 at a time: memory
    model_samples = (values[1],) if metric is None else (values[1], values[3])
    model_ci = stats.bootstrap(model_samples, model_score, rng=make_rng(seed, "model"), **options).confidence_interval
    share_ci = stats.bootstrap(tuple(values), share, rng=make_rng(seed, "lift share"), **options).confidence_interval
    return {"model": (float(model_ci.low), float(model_ci.high)),
            "lift_share": (float(share_ci.low), float(share_ci.high))}


def resampled_intervals(score, n_units: int, *, seed: int, level: float = 0.95, n_resamples: int = 1000) -> dict:
    """Paired bootstrap intervals for a headline whose metric is no mean over units.

    mAP over test images is one: each image's detections are ranked against every other image's,
    so neither per-unit values (:func:`headline_intervals`) nor per-unit predictions with labels
    describe it. Here the caller scores a resample itself: ``score(weights)`` returns the
    ``(baseline, model, oracle)`` scores when unit ``i`` of the ``n_units`` test units (images)
    counts ``weights[i]`` times, e.g. by
    :func:`mlsd.evaluation.metrics.average_precision_of_matches` with those image weights.

    Each resample draws the multiplicities as a bootstrap does, ``n_units`` units with
    replacement (``weights`` is an integer array summing to ``n_units``), and scores the three
    systems on the *same* draw (paired), so that a unit hard for every system moves all three
    scores together. The full sample is ``score(np.ones(n_units))``. Returns percentile
    intervals at ``level``, like :func:`headline_intervals`::

        {"model": (low, high), "lift_share": (low, high)}

    The random stream is ``make_rng(seed, "resampled intervals")``: the same seed gives the
    same intervals.

    Raises
    ------
    ValueError
        If ``n_units`` < 2, ``level`` is not in (0, 1), ``n_resamples`` < 100, ``score`` does
        not return three finite numbers, or the oracle's score equals the baseline's on the full
        sample or a resample (no lift to share).

    References: Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 6 (the
    bootstrap) and ch. 13 (percentile intervals).
    """
    from mlsd.book.seeding import make_rng

    if not callable(score):
        raise TypeError(f"score must be a function score(weights) -> (baseline, model, oracle), got {score!r}")
    n_units = check_int("n_units", n_units)
    level, n_resamples = _bootstrap_arguments(n_units, level, n_resamples)

    def scored(weights) -> tuple:
        scores = score(weights)
        if not isinstance(scores, (tuple, list, np.ndarray)) or len(scores) != 3:
            raise ValueError(f"score(weights) must return three numbers (baseline, model, oracle), got {scores!r}")
        return tuple(check_finite(f"score(weights)[{i}]", v) for i, v in enumerate(scores))

    lift_share(*scored(np.ones(n_units, dtype=np.int64)))  # raises if there is no lift to share
    rng = make_rng(seed, "resampled intervals")
    draws = [scored(rng.multinomial(n_units, np.full(n_units, 1.0 / n_units))) for _ in range(n_resamples)]
    models = [m for _, m, _ in draws]
    shares = [lift_share(*d) for d in draws]
    tails = [(1 - level) / 2, (1 + level) / 2]
    return {"model": tuple(float(q) for q in np.quantile(models, tails)),
            "lift_share": tuple(float(q) for q in np.quantile(shares, tails))}


def _scores(name: str, scores) -> dict:
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f"{name} must be a non-empty dict {{system name: score}}, got {scores!r}")
    for key in scores:
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"{name}: every system needs a name, got {key!r}")
    return {key: check_finite(f"{name}[{key!r}]", value) for key, value in scores.items()}


def _interval(name: str, interval, point: float) -> tuple:
    if not isinstance(interval, (tuple, list)) or len(interval) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {interval!r}")
    low, high = (check_finite(name, v) for v in interval)
    if not low <= point <= high:
        raise ValueError(f"{name} {(low, high)} does not contain the point estimate {point}")
    return (low, high)


def glue_headline(metric: str, baseline: float, model: float, oracle: float, *, task: str, baseline_name: str,
                  intervals: dict, unit: str, systems: dict, baselines_on_validation: dict,
                  clairvoyant: float | None = None) -> float:
    """Glue the chapter's headline result under the agreed names; return the lift share.

    ``task`` says what is predicted or ranked ("rank ten videos for a user's home feed") and
    ``baseline_name`` what the baseline is ("most popular"); the scoreboard shows both.
    ``intervals`` is :func:`headline_intervals`' or :func:`resampled_intervals`' answer and
    ``unit`` what it resampled ("800 test users"). ``systems`` holds the test score of every
    system the chapter evaluates on the headline metric (the tests check that none beats the
    oracle), and ``baselines_on_validation`` the validation score of each simple baseline the
    chapter shows: ``baseline_name`` must be the strongest of them. ``clairvoyant`` is the score of a
    predictor that also knows the noise no feature reveals, where the oracle is a posterior.
    Values are glued without display; cite them in prose as ``{glue:text}`headline_model:.3f```,
    and the intervals' ends as ``headline_model_low``, ``headline_model_high``,
    ``headline_lift_share_low`` and ``headline_lift_share_high``.

    Raises
    ------
    ValueError
        If a name is empty, a score not finite, an interval does not contain its point
        estimate, or ``baseline_name`` is not the strongest baseline on validation.
    """
    from myst_nb import glue  # imported here: only notebooks need it

    for name, text in (("metric", metric), ("task", task), ("baseline_name", baseline_name), ("unit", unit)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name} must be a non-empty string, got {text!r}")
    share = lift_share(baseline, model, oracle)
    if not isinstance(intervals, dict) or set(intervals) != {"model", "lift_share"}:
        raise ValueError("intervals must be headline_intervals' or resampled_intervals' answer, "
                         f"{{'model': ..., 'lift_share': ...}}, got {intervals!r}")
    better = 1.0 if oracle > baseline else -1.0  # -1: lower is better (log loss)
    on_validation = _scores("baselines_on_validation", baselines_on_validation)
    strongest = max(on_validation, key=lambda name: better * on_validation[name])
    if baseline_name not in on_validation or better * (on_validation[strongest] - on_validation[baseline_name]) > 0:
        raise ValueError(f"the baseline must be the strongest simple baseline on validation: {strongest!r} "
                         f"scores {on_validation[strongest]}, {baseline_name!r} {on_validation.get(baseline_name)}")
    values = {
        "headline_task": task,
        "headline_metric": metric,
        "headline_baseline_name": baseline_name,
        "headline_baseline": float(baseline),
        "headline_model": float(model),
        "headline_oracle": float(oracle),
        "headline_lift_share": share,
        "headline_model_interval": _interval("intervals['model']", intervals["model"], float(model)),
        "headline_lift_share_interval": _interval("intervals['lift_share']", intervals["lift_share"], share),
        "headline_unit": unit,
        "headline_systems": _scores("systems", systems),
        "headline_baselines_on_validation": on_validation,
    }
    if clairvoyant is not None:
        values["headline_clairvoyant"] = check_finite("clairvoyant", clairvoyant)
    for name in ("headline_model", "headline_lift_share"):  # the ends, for the prose
        values[f"{name}_low"], values[f"{name}_high"] = values[f"{name}_interval"]
    for name, value in values.items():
        glue(name, value, display=False)
    return share


def headline_numbers(headline: dict) -> dict:
    """The numbers of a glued headline, as ``make bench`` records them in JSON: names without
    ``headline_``, intervals as ``[low, high]`` lists."""
    numbers = {}
    for name, value in headline.items():
        if isinstance(value, (float, dict)):
            numbers[name.removeprefix("headline_")] = value
        elif isinstance(value, (tuple, list)):  # a list once read back from JSON
            numbers[name.removeprefix("headline_")] = list(value)
    return numbers


def read_headline(notebook: str | Path | dict) -> dict:
    """Read the glued headline values from an executed notebook (a path or a parsed dict).

    Returns ``{glue name: value}`` for the names in :data:`HEADLINE_NAMES` that the notebook
    glued; an empty dict if it glued none.
    """
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if not isinstance(notebook, dict) else notebook
    found = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name not in HEADLINE_NAMES and name not in OPTIONAL_HEADLINE_NAMES:
                continue
            data = output.get("data", {})
            text = data.get(_GLUE_PREFIX + "text/plain", data.get("text/plain"))
            if isinstance(text, list):
                text = "".join(text)
            found[name] = ast.literal_eval(text)
    return found
