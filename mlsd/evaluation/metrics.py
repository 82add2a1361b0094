"""Offline evaluation metrics, each defined in its docstring: classification, ranking, detection.

Every chapter evaluates with these functions, so their definitions are written down once, here:
the formula, what happens at the edges (no positives, ties, a user with nothing relevant) and a
reference. They are plain NumPy; ``tests/test_metrics.py`` cross-checks them against
scikit-learn wherever it has the same metric.

Conventions:

- **Labels** ``y_true`` are 0/1 (1 = positive); **scores** are any finite numbers (higher = more
  likely positive); **probabilities** are scores in [0, 1].
- **Ranked lists** are sequences of item ids, best first, without duplicates; ``relevant`` is a
  set of ids (or, where graded relevance makes sense, a mapping id -> grade >= 0; a mapping is
  read as the set of ids with a grade > 0 by the binary metrics). Positions are 1-based in the
  formulas: ``rel_i`` is 1 if the item at rank ``i`` is relevant, ``P@i`` the precision at ``i``.
- **Bad input fails early** with an error that names the problem: mismatched lengths, NaN
  scores, labels other than 0/1, a metric that is undefined on the data given. Empty input is an
  error where the metric has no value on it (no labels, no ground-truth boxes, no relevant
  items); where the value is natural it is returned: an empty ranked list (nothing recommended)
  scores 0, a detector with no detections has AP 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mlsd._checks import check_array_1d as _array_1d
from mlsd._checks import check_finite, check_int
from mlsd._checks import check_finite_array as _scores  # scores: finite numbers
from mlsd._checks import raise_first_bad as _first_bad

__all__ = [
    # classification
    "precision", "recall", "f1", "roc_auc", "average_precision", "log_loss",
    "daily_log_loss", "normalized_cross_entropy", "calibration_curve", "expected_calibration_error",
    "calibration_intercept_slope",
    # ranking and retrieval
    "precision_at_k", "recall_at_k", "hit_rate_at_k", "reciprocal_rank",
    "average_precision_at_k", "ndcg_at_k", "mean_over_users",
    # beyond accuracy
    "catalogue_coverage", "intra_list_diversity",
    # detection
    "iou", "iou_matrix", "detection_average_precision", "DetectionMatches", "match_detections",
    "average_precision_of_matches",
]

#: probabilities are clipped to [EPS, 1 - EPS] before taking logs, so a confident mistake costs
#: -log(1e-15) ~ 34.5 nats instead of infinity.
LOG_LOSS_EPS = 1e-15


# --------------------------------------------------------------------------- argument checks


def _labels(name: str, values) -> np.ndarray:
    arr = _array_1d(name, values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must contain only 0 and 1, got values of type {arr.dtype}")
    _first_bad(name, arr, ~np.isin(arr, (0, 1)), "contain only 0 and 1")
    return arr.astype(np.int64)


def _probabilities(name: str, values) -> np.ndarray:
    arr = _scores(name, values)
    _first_bad(name, arr, (arr < 0) | (arr > 1), "contain probabilities in [0, 1]")
    return arr


def _pair(y_true, other, other_name: str, check=_scores) -> tuple[np.ndarray, np.ndarray]:
    """Check ``y_true`` (0/1) and a second array of the same length."""
    y_true, other = _labels("y_true", y_true), check(other_name, other)
    if len(y_true) != len(other):
        raise ValueError(f"y_true and {other_name} have different lengths: {len(y_true)} and {len(other)}")
    return y_true, other


def _choice(name: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


# --------------------------------------------------------------------------- classification


def _confusion(y_true, y_pred) -> tuple[int, int, int]:
    y_true, y_pred = _pair(y_true, y_pred, "y_pred", check=_labels)
    tp = int(np.sum((y_true == 1) & (y_pred == 1)))
    return tp, int(np.sum(y_pred == 1)) - tp, int(np.sum(y_true == 1)) - tp  # tp, fp, fn


def precision(y_true, y_pred) -> float:
    """Precision = TP / (TP + FP): the share of predicted positives that are positive.

    ``y_true`` and ``y_pred`` are 1-D arrays of 0/1. With no predicted positives (TP + FP = 0)
    precision is 0.0 (scikit-learn's ``zero_division=0``). Range [0, 1].

    References: Manning, Raghavan & Schütze (2008), *Introduction to Information Retrieval*, §8.3.
    """
    tp, fp, _ = _confusion(y_true, y_pred)
    return tp / (tp + fp) if tp + fp else 0.0


def recall(y_true, y_pred) -> float:
    """Recall = TP / (TP + FN): the share of actual positives that are predicted positive.

    ``y_true`` and ``y_pred`` are 1-D arrays of 0/1. With no actual positives (TP + FN = 0)
    recall is 0.0 (scikit-learn's ``zero_division=0``). Range [0, 1].

    References: Manning, Raghavan & Schütze (2008), *Introduction to Information Retrieval*, §8.3.
    """
    tp, _, fn = _confusion(y_true, y_pred)
    return tp / (tp + fn) if tp + fn else 0.0


def f1(y_true, y_pred) -> float:
    """F1 = 2 P R / (P + R), the harmonic mean of :func:`precision` P and :func:`recall` R.

    Equivalently 2 TP / (2 TP + FP + FN). It is 0.0 when P + R = 0, which (with the zero
    conventions of P and R) equals scikit-learn's ``f1_score(..., zero_division=0)``. Range [0, 1].

    References: van Rijsbergen (1979), *Information Retrieval*, ch. 7.
    """
    tp, fp, fn = _confusion(y_true, y_pred)
    # 2TP / (2TP + FP + FN) is the same number as 2PR / (P + R) without the 0/0 cases
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` (ascending); tied values share the mean of their ranks."""
    order = np.argsort(x, kind="stable")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve: the probability that a random positive outranks a random negative.

    With n+ positives and n- negatives, and ``R_j`` the rank of example ``j`` among all scores
    (ascending, 1-based; ties get the mean of their ranks)::

        AUC = (sum_{j positive} R_j - n+ (n+ + 1) / 2) / (n+ n-)

    which counts every (positive, negative) pair the model orders correctly, and a tied pair as
    one half (the Mann-Whitney U statistic divided by n+ n-). It equals the trapezoidal area
    under the ROC curve. Range [0, 1]; 0.5 is a random (or constant) score.

    Raises ``ValueError`` if ``y_true`` has a single class: there are no pairs to order.

    References: Hanley & McNeil (1982), "The meaning and use of the area under a receiver
    operating characteristic (ROC) curve", *Radiology* 143; Fawcett (2006), "An introduction
    to ROC analysis", *Pattern Recognition Letters* 27.
    """
    y_true, y_score = _pair(y_true, y_score, "y_score")
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC is undefined when y_true has only one class")
    rank_sum = _midranks(y_score)[y_true == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y_true, y_score) -> float:
    """Average precision (AP), the usual estimate of the area under the precision-recall curve.

    Thresholding the scores at each distinct value t_1 > t_2 > ... gives a precision P_n and a
    recall R_n (predict positive when score >= t_n); then::

        AP = sum_n (R_n - R_{n-1}) P_n,    R_0 = 0

    a step-wise sum with no interpolation between the points (linear interpolation of a PR curve
    is over-optimistic). Tied scores form one threshold. This is scikit-learn's
    ``average_precision_score``. Range [0, 1]; a random score gets about the base rate.

    Raises ``ValueError`` if ``y_true`` has no positives: recall is undefined.

    References: Manning, Raghavan & Schütze (2008), §8.4; Davis & Goadrich (2006), "The
    relationship between precision-recall and ROC curves", *ICML*.
    """
    y_true, y_score = _pair(y_true, y_score, "y_score")
    n_pos = int(y_true.sum())
    if n_pos == 0:
        raise ValueError("average precision is undefined when y_true has no positives")
    order = np.argsort(-y_score, kind="stable")
    hits, s = np.cumsum(y_true[order]), y_score[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last position of each distinct score
    precisions, recalls = hits[last] / (last + 1), hits[last] / n_pos
    return float(np.sum(np.diff(recalls, prepend=0.0) * precisions))


def log_loss(y_true, y_prob) -> float:
    """Log loss (binary cross-entropy): the mean negative log-likelihood of the labels.

    ``y_prob`` is the predicted probability of class 1::

        log loss = -(1/N) sum_j [ y_j log p_j + (1 - y_j) log(1 - p_j) ]   (natural log, nats)

    Probabilities must lie in [0, 1]; they are clipped to [1e-15, 1 - 1e-15] before the log,
    so a certain and wrong prediction costs about 34.5 instead of infinity. Range [0, ~34.5];
    lower is better. A single class in ``y_true`` is allowed.

    References: Murphy (2012), *Machine Learning: A Probabilistic Perspective*, §8.3.1.
    """
    y_true, y_prob = _pair(y_true, y_prob, "y_prob", check=_probabilities)
    p = np.clip(y_prob, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(np.where(y_true == 1, np.log(p), np.log1p(-p))))


def daily_log_loss(y_true, y_prob, day):
    """:func:`log_loss` of each day (or any period), for a monitoring dashboard.

    ``day`` gives each row's period (integers, dates, strings). ``y_prob`` is one array of
    probabilities, or a mapping ``name -> array`` (a model and the oracle, say) to score several
    predictions of the same rows at once. Returns a ``pandas.Series`` (one array) or a
    ``pandas.DataFrame`` (a mapping: one column per name) indexed by the sorted distinct days,
    index name ``"day"``. A day's value is the mean log loss of its rows, so days with more
    traffic are not weighted more; average the rows, not the days, for an overall figure.

    A day with a single class is allowed (as in :func:`log_loss`). For a trend, the log loss
    minus the oracle's on the same rows removes most of the day-to-day change in how
    predictable the rows are.
    """
    import pandas as pd

    y = _labels("y_true", y_true)
    day = _array_1d("day", day)
    if len(day) != len(y):
        raise ValueError(f"day must have one value per label ({len(y)}), got {len(day)}")
    named = isinstance(y_prob, Mapping)
    probs = dict(y_prob) if named else {None: y_prob}
    if not probs:
        raise ValueError("y_prob is an empty mapping: give at least one array of probabilities")
    days, codes = np.unique(day, return_inverse=True)
    order = np.argsort(codes, kind="stable")  # each day's rows together, in their order
    bounds = np.cumsum(np.bincount(codes))[:-1]
    columns = {}
    for name, p in probs.items():
        label = "y_prob" if name is None else f"y_prob[{name!r}]"
        y, p = _pair(y, p, label, check=_probabilities)
        p = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        unit = -np.where(y == 1, np.log(p), np.log1p(-p))
        columns[name] = [float(np.mean(u)) for u in np.split(unit[order], bounds)]
    index = pd.Index(days, name="day")
    if not named:
        return pd.Series(columns[None], index=index, name="log loss")
    return pd.DataFrame(columns, index=index)


def normalized_cross_entropy(y_true, y_prob) -> float:
    """Normalized cross-entropy (NCE): log loss divided by the entropy of the base rate.

    With p the share of positives in ``y_true``::

        NCE = log_loss(y_true, y_prob) / -(p log p + (1 - p) log(1 - p))

    The denominator is the log loss of always predicting p, so NCE = 1 means no better than the
    base rate and lower is better (0 is perfect). Unlike raw log loss it can be compared across
    data sets with different base rates. Range [0, inf).

    Raises ``ValueError`` if ``y_true`` has a single class (the base-rate entropy is 0).

    References: He et al. (2014), "Practical lessons from predicting clicks on ads at Facebook",
    *ADKDD*, §2.1 (where it is called normalized entropy).
    """
    loss = log_loss(y_true, y_prob)  # checks the arguments
    p = float(np.mean(y_true))
    if p in (0.0, 1.0):
        raise ValueError("normalized cross-entropy is undefined when y_true has only one class")
    return float(loss / -(p * np.log(p) + (1 - p) * np.log1p(-p)))


def calibration_curve(y_true, y_prob, n_bins: int = 10, strategy: str = "uniform",
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reliability diagram data: mean predicted probability vs fraction of positives, per bin.

    With ``strategy="uniform"``, [0, 1] is cut into ``n_bins`` equal-width bins; bin b holds the
    probabilities in (b/n_bins, (b+1)/n_bins], the first bin also 0. With ``"quantile"`` the
    edges are the quantiles of ``y_prob``, so that the bins hold about equally many examples:
    the choice when predictions crowd near 0 (click-through rates), where equal-width bins put
    almost everything in the first. For every **non-empty** bin, in bin order:

    - ``mean_predicted[b]``: the mean of the probabilities in the bin,
    - ``fraction_positive[b]``: the share of positive labels in the bin,
    - ``count[b]``: the number of examples in the bin.

    A calibrated model has ``fraction_positive ~ mean_predicted``. The first two arrays equal
    scikit-learn's ``calibration_curve(y_true, y_prob, n_bins=n_bins, strategy=strategy)``,
    which returns them in the other order (fraction of positives first).

    References: DeGroot & Fienberg (1983), "The comparison and evaluation of forecasters",
    *The Statistician* 32; Niculescu-Mizil & Caruana (2005), "Predicting good probabilities
    with supervised learning", *ICML*.
    """
    y_true, y_prob = _pair(y_true, y_prob, "y_prob", check=_probabilities)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    strategy = _choice("strategy", strategy, ("uniform", "quantile"))
    if strategy == "uniform":
        inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    else:
        inner_edges = np.percentile(y_prob, np.linspace(0, 1, n_bins + 1) * 100)[1:-1]  # as scikit-learn
    bins = np.searchsorted(inner_edges, y_prob)  # side="left": a value on an edge goes to the lower bin
    count = np.bincount(bins, minlength=n_bins)
    prob_sum = np.bincount(bins, weights=y_prob, minlength=n_bins)
    pos_sum = np.bincount(bins, weights=y_true, minlength=n_bins)
    kept = count > 0
    return prob_sum[kept] / count[kept], pos_sum[kept] / count[kept], count[kept]


def expected_calibration_error(y_true, y_prob, n_bins: int = 10, strategy: str = "uniform") -> float:
    """Expected calibration error (ECE) over ``n_bins`` bins (equal-width, or equal-mass with
    ``strategy="quantile"``)::

        ECE = sum_{non-empty bins b} (n_b / N) |fraction positive_b - mean predicted_b|

    with the bins of :func:`calibration_curve`. Range [0, 1]; 0 means the reliability diagram
    lies on the diagonal. It depends on ``n_bins`` and the binning, and even a calibrated model
    has a small positive ECE on finite data (sampling noise within each bin).

    References: Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities
    using Bayesian binning", *AAAI*; Guo et al. (2017), "On calibration of modern neural
    networks", *ICML*.
    """
    mean_predicted, fraction_positive, count = calibration_curve(y_true, y_prob, n_bins, strategy)
    return float(np.sum(count / count.sum() * np.abs(fraction_positive - mean_predicted)))


def calibration_intercept_slope(y_true, y_prob) -> tuple[float, float]:
    """Calibration intercept and slope: the logistic recalibration ``y ~ a + b logit(p)``.

    Fits ``P(y = 1) = sigmoid(a + b * logit(p))`` by maximum likelihood (statsmodels' ``Logit``)
    and returns ``(a, b)``. A calibrated model has ``a = 0, b = 1``; ``b < 1`` means
    predictions too extreme (overconfident: too high where high, too low where low), ``b > 1``
    too timid, and ``a`` shifts them all up or down. Unlike the ECE it needs no bins.

    References: Cox (1958), "Two further applications of a model for binary regression",
    *Biometrika* 45; Van Calster et al. (2019), "Calibration: the Achilles heel of predictive
    analytics", *BMC Medicine* 17.

    Raises
    ------
    ValueError
        If a probability is 0 or 1 (its logit is infinite) or ``y_true`` has only one class.
    """
    import statsmodels.api as sm  # imported here: slow to load, and only this function needs it

    y_true, y_prob = _pair(y_true, y_prob, "y_prob", check=_probabilities)
    _first_bad("y_prob", y_prob, (y_prob <= 0) | (y_prob >= 1), "be strictly between 0 and 1 (its logit is used)")
    if y_true.min() == y_true.max():
        raise ValueError("calibration intercept and slope are undefined when y_true has only one class")
    logit = np.log(y_prob) - np.log1p(-y_prob)
    fit = sm.Logit(y_true, sm.add_constant(logit, has_constant="add")).fit(disp=0)
    intercept, slope = fit.params
    return float(intercept), float(slope)


# --------------------------------------------------------------------------- ranking


def _ranked(ranked) -> list:
    if isinstance(ranked, (str, bytes)):
        raise TypeError(f"ranked must be a sequence of item ids, not a string: {ranked!r}")
    items = list(ranked)
    if len(set(items)) != len(items):
        seen = set()
        duplicate = next(item for item in items if item in seen or seen.add(item))
        raise ValueError(f"ranked contains item {duplicate!r} more than once")
    return items


def _grades(relevance) -> dict:
    """Relevance as ``{id: grade}``: a mapping is checked (grades finite, >= 0), a set means 1."""
    if isinstance(relevance, (str, bytes)):
        raise TypeError(
            f"relevant must be a set of item ids or a mapping id -> grade, not a string: {relevance!r}"
        )
    if isinstance(relevance, Mapping):
        grades = {item: check_finite(f"relevance grade of {item!r}", g) for item, g in relevance.items()}
        negative = [item for item, g in grades.items() if g < 0]
        if negative:
            item = negative[0]
            raise ValueError(f"relevance grades must be >= 0, got {relevance[item]!r} for {item!r}")
        return grades
    return dict.fromkeys(relevance, 1.0)


def _relevant_set(relevant) -> set:
    return {item for item, grade in _grades(relevant).items() if grade > 0}


def _hits(ranked, relevant, k: int | None) -> tuple[np.ndarray, set]:
    """``rel_i`` for the top ``k`` items (all if ``k`` is None), and the set of relevant ids."""
    ranked, relevant = _ranked(ranked), _relevant_set(relevant)
    if k is not None:
        ranked = ranked[: check_int("k", k, minimum=1)]
    return np.array([item in relevant for item in ranked], dtype=float), relevant


def _no_relevant(metric: str) -> ValueError:
    return ValueError(f"{metric} is undefined when there are no relevant items")


def precision_at_k(ranked, relevant, k: int) -> float:
    """P@k = (number of relevant items in the top k) / k.

    The denominator is k even if fewer than k items were ranked: the empty slots count as misses.
    With no relevant items it is 0.0 (defined: no hits). Range [0, 1].

    References: Manning, Raghavan & Schütze (2008), §8.4.
    """
    hits, _ = _hits(ranked, relevant, k)
    return float(hits.sum() / k)


def recall_at_k(ranked, relevant, k: int) -> float:
    """R@k = (number of relevant items in the top k) / (number of relevant items).

    A user with more than k relevant items cannot reach 1. Range [0, 1].
    Raises ``ValueError`` when there are no relevant items.

    References: Manning, Raghavan & Schütze (2008), §8.4.
    """
    hits, relevant = _hits(ranked, relevant, k)
    if not relevant:
        raise _no_relevant("recall@k")
    return float(hits.sum() / len(relevant))


def hit_rate_at_k(ranked, relevant, k: int) -> float:
    """HR@k = 1.0 if at least one relevant item is in the top k, else 0.0.

    Averaged over users it is the share of users with a hit. With no relevant items it is 0.0.
    """
    hits, _ = _hits(ranked, relevant, k)
    return float(hits.any())


def reciprocal_rank(ranked, relevant, k: int | None = None) -> float:
    """RR = 1 / (rank of the first relevant item), or 0.0 if there is none (in the top ``k``).

    The mean over users is the mean reciprocal rank (MRR). Only the first relevant item counts.
    With no relevant items it is 0.0. Range [0, 1].

    References: Voorhees (1999), "The TREC-8 question answering track report", *TREC*.
    """
    hits, _ = _hits(ranked, relevant, k)
    first = np.flatnonzero(hits)
    return float(1 / (first[0] + 1)) if len(first) else 0.0


def average_precision_at_k(ranked, relevant, k: int, denominator: str = "min") -> float:
    """AP@k = (1 / D) sum_{i <= k} P@i rel_i: the mean of P@i over the ranks i of the hits.

    Two denominators are in use, and they differ when a user has more than k relevant items:

    - ``"min"`` (default): D = min(k, |relevant|). The best possible top k scores 1 for every
      user. This is "MAP@k" as in recommender competitions (Kaggle's ``ml_metrics.apk``).
    - ``"all"``: D = |relevant|, the IR definition truncated at k (TREC's AP cut at k). A user
      with more than k relevant items can never reach 1: their score is at most k / |relevant|.

    With |relevant| <= k the two are equal. Range [0, 1]. Raises ``ValueError`` when there are
    no relevant items, or ``denominator`` is neither ``"min"`` nor ``"all"``.

    References: Manning, Raghavan & Schütze (2008), §8.4; Hamner, ``ml_metrics`` (Kaggle).
    """
    _choice("denominator", denominator, ("min", "all"))
    hits, relevant = _hits(ranked, relevant, k)
    if not relevant:
        raise _no_relevant("average precision@k")
    precision_at_i = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    d = min(k, len(relevant)) if denominator == "min" else len(relevant)
    return float(np.sum(precision_at_i * hits) / d)


def ndcg_at_k(ranked, relevance, k: int, gain: str = "linear") -> float:
    """Normalized discounted cumulative gain: nDCG@k = DCG@k / ideal DCG@k.

    ``relevance`` maps item ids to grades >= 0 (unlisted items have grade 0); a set of ids
    means grade 1 for each. With rel_i the grade of the item at rank i::

        DCG@k = sum_{i <= k} g(rel_i) / log2(i + 1)

    The ideal DCG@k is the DCG@k of the best possible ranking of **all** judged items, including
    relevant items the system did not rank. The gain g is:

    - ``"linear"`` (default): g(rel) = rel, as in Järvelin & Kekäläinen (2002) and
      scikit-learn's ``ndcg_score``;
    - ``"exponential"``: g(rel) = 2^rel - 1, which stresses the top grades (Burges et al. 2005).

    Both are the same for binary relevance. Range [0, 1]. Raises ``ValueError`` when there are no
    relevant items (the ideal DCG is 0).

    References: Järvelin & Kekäläinen (2002), "Cumulated gain-based evaluation of IR
    techniques", *ACM TOIS* 20(4); Burges et al. (2005), "Learning to rank using gradient
    descent", *ICML*.
    """
    _choice("gain", gain, ("linear", "exponential"))
    ranked, grades, k = _ranked(ranked), _grades(relevance), check_int("k", k, minimum=1)
    g = (lambda rel: rel) if gain == "linear" else (lambda rel: 2.0**rel - 1)

    def dcg(rels) -> float:
        rels = np.asarray(rels, dtype=float)
        return float(np.sum(g(rels) / np.log2(np.arange(2, len(rels) + 2))))

    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal == 0:
        raise _no_relevant("nDCG@k")
    return dcg([grades.get(item, 0.0) for item in ranked[:k]]) / ideal


def mean_over_users(
    metric: Callable[..., float],
    ranked_lists: Mapping,
    relevant: Mapping,
    *,
    k: int | None = None,
    skip_users_without_relevant: bool = True,
    **kwargs,
) -> float:
    """Average a per-list metric over users: ``metric(ranked_lists[u], relevant[u], k=k, **kwargs)``.

    The users are those in ``relevant`` (mapping user -> set of ids, or id -> grade):

    - a user with **no relevant items** has an undefined score for most metrics: skipped by
      default, or scored 0 when ``skip_users_without_relevant=False``;
    - a user **missing from** ``ranked_lists`` or with an empty list scores 0: the system
      recommended nothing;
    - users only in ``ranked_lists`` are ignored (there is nothing to judge them against).

    ``k`` is passed to the metric only if given (so ``reciprocal_rank`` works without it).
    For example ``mean_over_users(average_precision_at_k, recs, truth, k=10)`` is MAP@10 and
    ``mean_over_users(reciprocal_rank, recs, truth)`` is MRR.

    Raises ``ValueError`` if no user is left to average.
    """
    for name, value in (("ranked_lists", ranked_lists), ("relevant", relevant)):
        if not isinstance(value, Mapping):
            raise TypeError(f"{name} must be a mapping user -> ..., got {type(value).__name__}")
    if k is not None:
        kwargs["k"] = k
    scores = []
    for user, user_relevant in relevant.items():
        if not _relevant_set(user_relevant):
            if not skip_users_without_relevant:
                scores.append(0.0)
            continue
        ranked = ranked_lists.get(user)
        no_list = ranked is None or len(ranked) == 0
        scores.append(0.0 if no_list else metric(ranked, user_relevant, **kwargs))
    if not scores:
        raise ValueError(
            "no user left to average: relevant is empty or no user in it has a relevant item "
            "(they are skipped when skip_users_without_relevant=True)"
        )
    return float(np.mean(scores))


# --------------------------------------------------------------------------- beyond accuracy


def catalogue_coverage(ranked_lists: Mapping, catalogue, *, k: int) -> float:
    """Share of the catalogue that appears in at least one user's top ``k``.

    ``ranked_lists`` maps user -> ranked list; ``catalogue`` is the collection of item ids that
    could have been recommended. Recommended ids outside the catalogue raise ``ValueError``
    (usually a bug: a filtered or stale item). Range [0, 1]: a popularity list shown to everyone
    covers k items; a personalised system covers more. Accuracy metrics cannot see this.

    References: Ge, Delgado-Battenfeld & Jannach (2010), "Beyond accuracy: evaluating
    recommender systems by coverage and serendipity", *RecSys*.
    """
    if not isinstance(ranked_lists, Mapping):
        raise TypeError(f"ranked_lists must be a mapping user -> ranked list, got {type(ranked_lists).__name__}")
    catalogue = set(catalogue)
    if not catalogue:
        raise ValueError("catalogue is empty")
    k = check_int("k", k, minimum=1)
    shown = set()
    for ranked in ranked_lists.values():
        shown.update(_ranked(ranked)[:k])
    outside = shown - catalogue
    if outside:
        raise ValueError(f"recommended items not in the catalogue, e.g. {sorted(outside, key=repr)[0]!r}")
    return len(shown) / len(catalogue)


def intra_list_diversity(ranked, category: Mapping, *, k: int) -> float:
    """Share of pairs among the top ``k`` whose items belong to different categories.

    ``category`` maps each item id to a label (a genre, a creator). With n = min(k, len(ranked))
    items, ILD = (pairs with different labels) / (n (n - 1) / 2). Range [0, 1]: 0 when every item
    shares one label, 1 when all labels differ. This is the intra-list diversity of Ziegler et al.
    with the dissimilarity "different category"; with embeddings, use one minus cosine similarity.

    Raises ``ValueError`` for fewer than two items (no pair to compare) or an item without a label.

    References: Ziegler, McNee, Konstan & Lausen (2005), "Improving recommendation lists through
    topic diversification", *WWW*.
    """
    k = check_int("k", k, minimum=1)
    items = _ranked(ranked)[:k]
    if len(items) < 2:
        raise ValueError(f"intra-list diversity needs at least two items, got {len(items)}")
    missing = [item for item in items if item not in category]
    if missing:
        raise ValueError(f"item {missing[0]!r} has no category")
    labels = np.array([category[item] for item in items], dtype=object)
    different = labels[:, None] != labels[None, :]
    n = len(items)
    return float(different[np.triu_indices(n, 1)].sum() / (n * (n - 1) / 2))


# --------------------------------------------------------------------------- detection


def _boxes(name: str, boxes) -> np.ndarray:
    arr = np.asarray(boxes, dtype=float)
    if arr.size == 0:
        arr = arr.reshape(0, 4)  # no boxes at all: an image may have no objects
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must be boxes (x1, y1, x2, y2) of shape (n, 4), got shape {arr.shape}")
    for bad, requirement in (
        (~np.isfinite(arr).all(axis=1), "be finite (no NaN or infinity)"),
        ((arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1]), "have x2 >= x1 and y2 >= y1"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name} must {requirement}, got {arr[i].tolist()} at index {i}")
    return arr


def iou_matrix(boxes_a, boxes_b) -> np.ndarray:
    """IoU of every box in ``boxes_a`` (n, 4) with every box in ``boxes_b`` (m, 4); shape (n, m).

    Boxes are (x1, y1, x2, y2) with x2 >= x1 and y2 >= y1. See :func:`iou`. An empty set of
    boxes (shape (0, 4)) is allowed and gives an empty matrix: an image may have no objects.
    """
    a = _boxes("boxes_a", boxes_a)[:, None, :]  # (n, 1, 4) and (1, m, 4) broadcast to (n, m)
    b = _boxes("boxes_b", boxes_b)[None, :, :]
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    # two zero-area boxes have union 0: call their IoU 0 rather than 0/0
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def iou(box_a, box_b) -> float:
    """Intersection over union (Jaccard index) of two boxes (x1, y1, x2, y2)::

        IoU = area(A ∩ B) / area(A ∪ B)

    Range [0, 1]: 0 for disjoint boxes (or boxes that only touch), 1 for identical boxes.
    Raises ``ValueError`` unless x2 >= x1 and y2 >= y1. Two zero-area boxes have IoU 0.

    References: Everingham et al. (2010), "The PASCAL Visual Object Classes (VOC) Challenge",
    *IJCV* 88, §4.2.
    """
    for name, box in (("box_a", box_a), ("box_b", box_b)):
        if np.shape(box) != (4,):
            raise ValueError(f"{name} must be 4 numbers (x1, y1, x2, y2), got shape {np.shape(box)}")
    return float(iou_matrix([box_a], [box_b])[0, 0])


def detection_average_precision(detections, ground_truth, iou_threshold: float = 0.5) -> float:
    """Average precision of an object detector for one class, over a set of images.

    ``detections`` is a list of ``(image_id, score, box)`` and ``ground_truth`` a list of
    ``(image_id, box)``, boxes as (x1, y1, x2, y2). The procedure:

    1. Sort the detections by score, highest first (stable: equal scores keep their order).
    2. Match each detection, in that order, to the still-unmatched ground-truth box of the same
       image with the highest IoU, if that IoU >= ``iou_threshold``: a true positive. Otherwise
       it is a false positive; so is a second detection of an already matched object.
    3. Precision P_n and recall R_n after each detection; the precision envelope
       P*_n = max_{m >= n} P_m makes the curve monotone; then
       ``AP = sum_n (R_n - R_{n-1}) P*_n`` (R_0 = 0).

    This is the all-point interpolated AP of PASCAL VOC 2010+ and, per class and threshold,
    COCO's matching without its 101-point recall sampling. Unmatched ground truth (misses)
    lowers the recall the curve reaches. No detections gives 0.0. Range [0, 1].

    Raises ``ValueError`` if there is no ground truth (recall undefined).

    References: Everingham et al. (2015), "The PASCAL Visual Object Classes Challenge: a
    retrospective", *IJCV* 111, §3.3; Lin et al. (2014), "Microsoft COCO: common objects in
    context", *ECCV*.
    """
    return average_precision_of_matches(match_detections(detections, ground_truth, iou_threshold))


def _image_ids(values) -> np.ndarray:
    """Image ids as a 1-D array: a 1-D array as given, anything else as an object array (so
    that an id such as a tuple stays one id)."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        return values
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values)
    return arr


@dataclass(frozen=True, eq=False)
class DetectionMatches:
    """Which detections of one class are true positives: :func:`match_detections`' answer.

    ``image``, ``score`` and ``is_tp`` hold one entry per detection, in the order the detections
    were given; ``ground_truth_images`` one entry per ground-truth box, its image. Matching in an
    image depends only on that image's detections and boxes, so the flags hold for any resample
    of the images, and :func:`average_precision_of_matches` scores a resample by weighting the
    images instead of matching again. The score order and integer image codes it needs are
    computed once, on construction:

    - ``order``: the detections by score, highest first (stable: equal scores keep their order);
    - ``images``: the distinct image ids (ground truth's first, then the detections'), so that a
      detection's image code ``c`` is ``images[c]``; ``codes`` holds each detection's code in
      score order and ``truth_per_image`` the number of ground-truth boxes of each image;
    - ``hit_ranks``: the positions of the true positives in score order (0 = best);
    - ``image_index``: ``images`` as an integer array when every id is an integer >= 0 (then an
      array of weights indexed by image id can be used), else None.
    """

    image: np.ndarray
    score: np.ndarray
    is_tp: np.ndarray
    ground_truth_images: np.ndarray
    order: np.ndarray = field(init=False, repr=False)
    images: tuple = field(init=False, repr=False)
    codes: np.ndarray = field(init=False, repr=False)
    truth_per_image: np.ndarray = field(init=False, repr=False)
    hit_ranks: np.ndarray = field(init=False, repr=False)
    image_index: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self):
        image, truth = _image_ids(self.image), _image_ids(self.ground_truth_images)
        score, is_tp = np.asarray(self.score, dtype=float), np.asarray(self.is_tp)
        if score.ndim != 1 or is_tp.ndim != 1 or not len(image) == len(score) == len(is_tp):
            raise ValueError(f"image, score and is_tp must be 1-D with one entry per detection, got shapes "
                             f"{image.shape}, {score.shape} and {is_tp.shape}")
        if is_tp.dtype != bool:
            raise ValueError(f"is_tp must be booleans, got values of type {is_tp.dtype}")
        _first_bad("detection scores", score, ~np.isfinite(score), "be finite (no NaN or infinity)")
        codes: dict = {}
        truth_code = np.array([codes.setdefault(k, len(codes)) for k in truth], dtype=np.intp)
        code = np.array([codes.setdefault(k, len(codes)) for k in image], dtype=np.intp)
        truth_per_image = np.bincount(truth_code, minlength=len(codes)).astype(float)
        hits = np.bincount(code[is_tp], minlength=len(codes))
        if (hits > truth_per_image).any():
            bad = list(codes)[int(np.flatnonzero(hits > truth_per_image)[0])]
            raise ValueError(f"image {bad!r} has more true positives than ground-truth boxes")
        images = tuple(codes)
        integer = all(isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 0 for k in images)
        order = np.argsort(-score, kind="stable")
        for name, value in (("image", image), ("score", score), ("is_tp", is_tp), ("ground_truth_images", truth),
                            ("order", order), ("images", images), ("codes", code[order]),
                            ("truth_per_image", truth_per_image), ("hit_ranks", np.flatnonzero(is_tp[order])),
                            ("image_index", np.array(images, dtype=np.intp) if integer else None)):
            object.__setattr__(self, name, value)


def match_detections(detections, ground_truth, iou_threshold: float = 0.5) -> DetectionMatches:
    """Steps 1-2 of :func:`detection_average_precision`: which detections are true positives.

    Same arguments, validation and errors. The detections are taken by score, highest first
    (stable), and each is matched to the still-unmatched ground-truth box of its image with the
    highest IoU, if that IoU >= ``iou_threshold``. Returns a :class:`DetectionMatches` with the
    flags in the order the detections were given; score it (or any resample of its images) with
    :func:`average_precision_of_matches`.
    """
    threshold = check_finite("iou_threshold", iou_threshold)
    if not 0 < threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if len(ground_truth) == 0:
        raise ValueError("detection AP is undefined when there is no ground truth")
    gt_boxes: dict = {}
    for image, box in ground_truth:
        gt_boxes.setdefault(image, []).append(box)
    gt_boxes = {image: _boxes(f"ground-truth boxes of image {image!r}", b) for image, b in gt_boxes.items()}
    truth_images = _image_ids([image for image, _ in ground_truth])
    if len(detections) == 0:
        return DetectionMatches(_image_ids([]), np.zeros(0), np.zeros(0, dtype=bool), truth_images)

    images = _image_ids([image for image, _, _ in detections])
    scores = _scores("detection scores", [score for _, score, _ in detections])
    boxes = _boxes("detection boxes", [box for _, _, box in detections])
    by_image: dict = {}  # each image's detections, best first: matching in an image needs only them
    for j in np.argsort(-scores, kind="stable"):
        by_image.setdefault(images[j], []).append(j)
    is_tp = np.zeros(len(detections), dtype=bool)
    for image, rows in by_image.items():
        if image not in gt_boxes:
            continue  # detections in an image with no objects: false positives
        overlaps = iou_matrix(boxes[rows], gt_boxes[image])
        matched = np.zeros(overlaps.shape[1], dtype=bool)
        for j, row in zip(rows, overlaps):
            row = np.where(matched, -1.0, row)  # each object is matched at most once
            best = int(np.argmax(row))
            if row[best] >= threshold:
                matched[best] = is_tp[j] = True
    return DetectionMatches(images, scores, is_tp, truth_images)


def _weights_per_image(matches: DetectionMatches, image_weights) -> np.ndarray:
    """The weight of each of ``matches.images``, from a mapping id -> weight or an array."""
    if isinstance(image_weights, Mapping):
        keys = list(image_weights)
        given = np.array([image_weights[k] for k in keys], dtype=float) if keys else np.zeros(0)
        bad = ~np.isfinite(given) | (given < 0)
        if bad.any():
            key = keys[int(np.flatnonzero(bad)[0])]
            raise ValueError(f"image_weights must be finite and >= 0, got {image_weights[key]!r} for image {key!r}")
        return np.array([float(image_weights.get(k, 0.0)) for k in matches.images])
    given = np.asarray(image_weights, dtype=float)
    if given.ndim != 1:
        raise ValueError(f"image_weights must be a mapping image id -> weight or a 1-D array, got shape {given.shape}")
    _first_bad("image_weights", given, ~np.isfinite(given) | (given < 0), "be finite and >= 0")
    if matches.image_index is None:
        raise ValueError("image_weights as an array needs integer image ids 0..n-1; give a mapping image id -> weight")
    if len(matches.image_index) and matches.image_index.max() >= len(given):
        raise ValueError(f"image_weights has {len(given)} entries, but there is an image {matches.image_index.max()}")
    return given[matches.image_index]


def average_precision_of_matches(matches: DetectionMatches, image_weights=None) -> float:
    """Step 3 of :func:`detection_average_precision`, for matched detections, images weighted.

    Without ``image_weights`` this is :func:`detection_average_precision` exactly. With them
    (a mapping image id -> weight >= 0, images missing from it weighing 0; or, when the image
    ids are the integers 0..n-1, a 1-D array indexed by image id), each detection and each
    ground-truth box counts with its image's weight w; after the n-th detection by score::

        TP_n = sum_{m <= n} w_m tp_m,   P_n = TP_n / sum_{m <= n} w_m,   R_n = TP_n / W_truth

    where ``W_truth`` is the total weight of the ground-truth boxes (positions where the
    cumulative weight is still 0 are skipped), then the precision envelope and
    ``AP = sum_n (R_n - R_{n-1}) P*_n`` as before. Weights of k on every image give the
    unweighted AP; a weight of 2 on an image is that image entered twice (its copies ranked
    beside the originals: exactly so unless another image's detection ties on score), 0 the
    image removed.
    This is how a bootstrap over images (weights = how often each image was drawn) rescores a
    resample without matching again: :func:`mlsd.evaluation.headline.resampled_intervals`.

    Raises ``ValueError`` if a weight is negative or not finite, if an array of weights does
    not cover every image id, or if the ground truth weighs 0 in total (recall undefined).
    """
    if not isinstance(matches, DetectionMatches):
        raise TypeError(f"matches must be match_detections' answer, got {type(matches).__name__}")
    if image_weights is None:
        weights = np.ones(len(matches.images))
    else:
        weights = _weights_per_image(matches, image_weights)
    truth_weight = float(matches.truth_per_image @ weights)
    if not truth_weight > 0:
        raise ValueError("detection AP is undefined when the ground truth weighs 0 in total (no boxes counted)")
    if len(matches.hit_ranks) == 0:
        return 0.0  # no detections, or none right: no recall
    w = weights[matches.codes]  # each detection's weight, in score order
    counted = np.cumsum(w)[matches.hit_ranks]  # weight of the detections up to each hit
    tp = np.cumsum(w[matches.hit_ranks])
    precisions = np.divide(tp, counted, out=np.zeros_like(tp), where=counted > 0)
    # recall moves only at hits, and a false positive never raises the precision, so the sum
    # and the envelope need only the hits; the terms are laid out by rank so that the sum adds
    # exactly what a sum over every detection (zeros at false positives) adds
    envelope = np.maximum.accumulate(precisions[::-1])[::-1]
    terms = np.zeros(len(w))
    terms[matches.hit_ranks] = np.diff(tp / truth_weight, prepend=0.0) * envelope
    return float(np.sum(terms))
