"""The headline result every chapter reports: baseline, model, oracle and the lift share.

A chapter calls :func:`glue_headline` once; ``make bench`` (and the scoreboard) read the glued
values back from the executed notebook with :func:`read_headline`. The glue names are agreed
here, in one place.

The **share of achievable lift** is how much of the gap between the baseline and the oracle
(the Bayes-optimal score computed from the hidden truth) the model closes::

    lift_share = (model - baseline) / (oracle - baseline)

It is 0 for a model no better than the baseline and 1 for one as good as the oracle. The same
formula holds for metrics where lower is better (log loss): both differences change sign.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np

from mlsd._checks import check_finite, check_finite_array, check_int

__all__ = ["HEADLINE_NAMES", "lift_share", "headline_intervals", "glue_headline", "read_headline"]

#: glue name -> meaning
HEADLINE_NAMES = {
    "headline_task": "what the chapter's system predicts or ranks, in a few words",
    "headline_metric": "the metric's name, e.g. 'ROC-AUC' or 'MAP@10'",
    "headline_baseline_name": "what the baseline is, e.g. 'most popular'",
    "headline_baseline": "the baseline's score on the test split",
    "headline_model": "the chapter's final system's score on the test split",
    "headline_oracle": "the oracle's score (from the hidden truth) on the test split",
    "headline_lift_share": "(model - baseline) / (oracle - baseline)",
}

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


def headline_intervals(baseline, model, oracle, *, seed: int, level: float = 0.95,
                       n_resamples: int = 2000) -> dict:
    """Paired bootstrap intervals for the model's score and the lift share.

    ``baseline``, ``model`` and ``oracle`` hold one value per unit of the test set (a user, a
    query, an impression), for the same units in the same order, such that each system's score
    is their mean: a user's average precision for MAP, an impression's log loss for the mean log
    loss. The units are resampled with replacement *together* (paired), so that a unit that is
    hard for every system moves all three scores at once and the lift share's interval reflects
    only how the systems differ. Returns percentile intervals at ``level``::

        {"model": (low, high), "lift_share": (low, high)}

    Metrics that are no mean over units (ROC-AUC) need their own resampling.

    Raises
    ------
    ValueError
        If the arrays are not 1-D, finite, of one length with at least two units, if ``level`` is
        not in (0, 1), or if the oracle's mean equals the baseline's (no lift to share).
    """
    from scipy import stats

    from mlsd.seeding import make_rng

    values = [check_finite_array(name, v) for name, v in (("baseline", baseline), ("model", model), ("oracle", oracle))]
    if len({len(v) for v in values}) != 1:
        raise ValueError(f"baseline, model and oracle must hold the same units, got lengths {[len(v) for v in values]}")
    if len(values[0]) < 2:
        raise ValueError("a bootstrap needs at least two units")
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    n_resamples = check_int("n_resamples", n_resamples, minimum=100)
    lift_share(*(float(v.mean()) for v in values))  # raises if there is no lift to share

    def share(b, m, o, axis=-1):
        b, m, o = (x.mean(axis=axis) for x in (b, m, o))
        return (m - b) / (o - b)

    options = dict(paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=level,
                   method="percentile", batch=100)
    model_ci = stats.bootstrap((values[1],), np.mean, rng=make_rng(seed, "model"), **options).confidence_interval
    share_ci = stats.bootstrap(tuple(values), share, rng=make_rng(seed, "lift share"), **options).confidence_interval
    return {"model": (float(model_ci.low), float(model_ci.high)),
            "lift_share": (float(share_ci.low), float(share_ci.high))}


def glue_headline(metric: str, baseline: float, model: float, oracle: float, *, task: str, baseline_name: str) -> float:
    """Glue the chapter's headline result under the agreed names; return the lift share.

    ``task`` says what is predicted or ranked ("rank ten videos for a user's home feed") and
    ``baseline_name`` what the baseline is ("most popular"); the scoreboard shows both. Values are
    glued without display; cite them in prose as ``{glue:text}`headline_model:.3f```.
    """
    from myst_nb import glue  # imported here: only notebooks need it

    for name, text in (("metric", metric), ("task", task), ("baseline_name", baseline_name)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{name} must be a non-empty string, got {text!r}")
    share = lift_share(baseline, model, oracle)
    values = {
        "headline_task": task,
        "headline_metric": metric,
        "headline_baseline_name": baseline_name,
        "headline_baseline": float(baseline),
        "headline_model": float(model),
        "headline_oracle": float(oracle),
        "headline_lift_share": share,
    }
    for name, value in values.items():
        glue(name, value, display=False)
    return share


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
            if name not in HEADLINE_NAMES:
                continue
            data = output.get("data", {})
            text = data.get(_GLUE_PREFIX + "text/plain", data.get("text/plain"))
            if isinstance(text, list):
                text = "".join(text)
            found[name] = ast.literal_eval(text)
    return found
