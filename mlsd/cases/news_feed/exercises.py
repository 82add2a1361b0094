"""Chapter 13's exercises: the plumbing their solutions share (it uses the core's nDCG).

- **the weights**: :func:`reweighted_value` weighs the predicted reactions with another set of
  weights than :data:`mlsd.datasets.news_feed.VALUE_WEIGHTS`, :func:`top_k_totals` sums any
  outcome (expected clicks, hides, clickbait posts) over each feed's first k posts, and
  :func:`weighting_outcomes` does both for several weightings at once;
- **comparisons over viewers**: the core's :func:`~mlsd.cases.news_feed.core.viewer_gain` is
  the mean per-viewer gain of one system over another with a paired bootstrap interval,
  :func:`interval_reads` says how it reads, and :func:`sliced_gain` gives the gain per slice;
- **AUC**: :func:`auc_gain` is the difference of two scores' ROC-AUC on the same labels with
  DeLong's interval (no resampling: fast on a hundred thousand rows);
- **the heads**: :func:`head_report` puts each reaction's positives in the log, the AUC of
  one or more systems on drawn labels beside the AUC of the true probabilities, and their
  calibration in one table;
- **affinity embeddings**: :func:`connection_matrix` (viewer x author, from the connection
  graph and optionally counts from the log) and :func:`svd_affinity`, the pair's entry in the
  matrix's rank-k reconstruction, for several k at once.

The exercises' models (a comment head retrained with one more feature) stay in the notebook:
they are the lesson's heads, which this module does not import.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_frame, check_int, check_int_ids
from mlsd.cases.news_feed.core import _aligned, ndcg_by_request, viewer_gain
from mlsd.datasets import news_feed as nf
from mlsd.evaluation.metrics import _midranks, roc_auc

__all__ = ["reweighted_value", "top_k_totals", "weighting_outcomes", "interval_reads",
           "sliced_gain", "auc_gain", "head_report", "connection_matrix", "svd_affinity"]

_VALUE_COLUMNS = nf.REACTIONS + ("dwell",)


# --------------------------------------------------------------------------- the weights


def reweighted_value(reactions: pd.DataFrame, weights: dict) -> np.ndarray:
    """Each row's value under ``weights``: ``sum_r weights[r] * reactions[r]``, with the
    dwell (seconds) counted in minutes under the key ``dwell_minutes``.

    ``weights`` uses the keys of :data:`~mlsd.datasets.news_feed.VALUE_WEIGHTS`; a key left out
    weighs 0 (``{"click": 1.0}`` ranks by clicks alone), so with ``VALUE_WEIGHTS`` this is
    :func:`~mlsd.datasets.news_feed.expected_value`. Raises for an unknown key or a weight that
    is not a finite number.
    """
    check_frame("reactions", reactions, _VALUE_COLUMNS)
    if not isinstance(weights, dict) or not weights:
        raise TypeError(f"weights must be a non-empty dict like VALUE_WEIGHTS, got {weights!r}")
    unknown = sorted(set(weights) - set(nf.VALUE_WEIGHTS))
    if unknown:
        raise ValueError(f"unknown weights {unknown}; the keys are {list(nf.VALUE_WEIGHTS)}")
    w = {key: check_finite(f"weights[{key!r}]", value) for key, value in weights.items()}
    value = np.zeros(len(reactions))
    for reaction in nf.REACTIONS:
        value += w.get(reaction, 0.0) * reactions[reaction].to_numpy(dtype=float)
    return value + w.get("dwell_minutes", 0.0) * reactions["dwell"].to_numpy(dtype=float) / 60.0


def top_k_totals(request, score, outcomes: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """For each request, the sum of every column of ``outcomes`` over its first ``k`` posts
    by ``score`` (highest first; ties keep the input order, as in ``ndcg_by_request``), and
    ``posts``, how many posts that is (fewer than ``k`` for a short feed).

    ``outcomes`` has one row per candidate, aligned with ``request`` and ``score`` by position
    (the true probabilities of clicks and hides, say, or a 0/1 clickbait flag). Returns a frame
    indexed by request (sorted): its column means are per-feed averages.
    """
    k = check_int("k", k, minimum=1)
    request = np.asarray(request)
    score = np.asarray(score, dtype=float)
    check_frame("outcomes", outcomes, ())
    if request.ndim != 1 or score.shape != request.shape or len(outcomes) != len(request):
        raise ValueError(f"request, score and outcomes need one row per candidate, got "
                         f"{request.shape}, {score.shape} and {len(outcomes)} rows")
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite")
    values = outcomes.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("outcomes must be finite numbers")
    codes, requests = pd.factorize(request, sort=True)
    order = np.lexsort((np.arange(len(codes)), -score, codes))
    ranked = codes[order]
    position = np.arange(len(ranked)) - np.searchsorted(ranked, ranked, side="left")
    top = order[position < k]
    sums = np.zeros((len(requests), values.shape[1]))
    np.add.at(sums, codes[top], values[top])
    out = pd.DataFrame(sums, index=pd.Index(requests, name="request"), columns=outcomes.columns)
    out["posts"] = np.bincount(codes[top], minlength=len(requests))
    return out


def weighting_outcomes(request, predicted: pd.DataFrame, weightings: dict, outcomes: pd.DataFrame,
                       gain=None, k: int = 10) -> tuple[pd.DataFrame, dict]:
    """Rank every feed by ``predicted`` under each of ``weightings`` (name -> weights, as
    :func:`reweighted_value` takes them) and sum ``outcomes`` over each feed's first ``k``.

    Returns ``(table, tops)``: ``table`` has a row per weighting with the per-feed mean of every
    outcome column and of ``posts`` (how many posts the first k hold), and, given ``gain`` (the
    true value of each candidate), ``nDCG@k``; ``tops`` maps each name to its
    :func:`top_k_totals` frame (one row per feed), for paired comparisons.
    """
    if not isinstance(weightings, dict) or not weightings:
        raise TypeError("weightings must be a non-empty dict: name -> weights")
    rows, tops = {}, {}
    for name, weights in weightings.items():
        score = reweighted_value(predicted, weights)
        tops[name] = top_k_totals(request, score, outcomes, k)
        rows[name] = tops[name].mean().to_dict()
        if gain is not None:
            rows[name][f"nDCG@{k}"] = float(ndcg_by_request(request, score, gain, k).mean())
    return pd.DataFrame(rows).T, tops


# --------------------------------------------------------------------------- comparisons


def interval_reads(low: float, high: float) -> str:
    """How a gain's interval reads in a sentence ("the gain is ..."): "beyond chance" above 0,
    "a loss beyond chance" below 0, else "within what chance explains"."""
    low, high = check_finite("low", low), check_finite("high", high)
    if low > high:
        raise ValueError(f"need low <= high, got {low} and {high}")
    if low > 0:
        return "beyond chance"
    return "a loss beyond chance" if high < 0 else "within what chance explains"


def sliced_gain(before: pd.Series, after: pd.Series, slices: pd.Series, *, seed,
                n_resamples: int = 1000) -> pd.DataFrame:
    """:func:`viewer_gain` in every slice of the viewers: one row per slice (in the order of
    its categories, or sorted) with ``viewers``, ``before``, ``after``, ``gain``, ``low`` and
    ``high``.

    ``slices`` labels each viewer (a Series on the viewers' index, e.g. activity quartiles from
    ``pd.qcut``); one generator (``seed``) draws every slice's resamples in turn.
    """
    b, a = _aligned(before, after)
    if not isinstance(slices, pd.Series):
        raise TypeError(f"slices must be a Series labelling each viewer, got {type(slices).__name__}")
    missing = b.index.difference(slices.index)
    if len(missing):
        raise ValueError(f"slices has no label for {len(missing)} viewers, e.g. {missing[0]!r}")
    label = slices.reindex(b.index)
    if label.isna().any():
        raise ValueError("every scored viewer needs a slice label (got NaN)")
    names = (label.cat.categories if isinstance(label.dtype, pd.CategoricalDtype)
             else pd.Index(sorted(label.unique())))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rows = {}
    for name in names:
        inside = (label == name).to_numpy()
        if inside.sum() < 2:
            raise ValueError(f"slice {name!r} has fewer than two scored viewers")
        gain, low, high = viewer_gain(b[inside], a[inside], seed=rng, n_resamples=n_resamples)
        rows[name] = {"viewers": int(inside.sum()), "before": b[inside].mean(),
                      "after": a[inside].mean(), "gain": gain, "low": low, "high": high}
    out = pd.DataFrame(rows).T
    out["viewers"] = out["viewers"].astype(int)
    return out.rename_axis(slices.name)


def auc_gain(labels, before, after, level: float = 0.95) -> tuple[float, float, float]:
    """``AUC(after) - AUC(before)`` on the same labels, and its interval by DeLong's method:
    ``(gain, low, high)``.

    The two AUCs are correlated (the same positives and negatives), so the variance of their
    difference comes from each positive's and each negative's placement values under both
    scores (DeLong, DeLong & Clarke-Pearson 1988; the midrank computation of Sun & Xu 2014).
    A normal interval at ``level``; no resampling, so it costs a few sorts.
    """
    from scipy.stats import norm

    labels = np.asarray(labels)
    scores = [np.asarray(s, dtype=float) for s in (before, after)]
    if labels.ndim != 1 or any(s.shape != labels.shape for s in scores):
        raise ValueError(f"labels, before and after must be 1-D of one length, got "
                         f"{labels.shape}, {scores[0].shape} and {scores[1].shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not all(np.isfinite(s).all() for s in scores):
        raise ValueError("scores must be finite")
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    positive = labels == 1
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        raise ValueError("need at least two positives and two negatives")
    aucs, v10, v01 = [], [], []
    for s in scores:
        x, y = s[positive], s[~positive]
        tz = _midranks(np.concatenate([x, y]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - _midranks(x)) / n)        # each positive's share of negatives below
        v01.append(1.0 - (tz[m:] - _midranks(y)) / m)  # each negative's share of positives above
    s10, s01 = np.cov(np.array(v10)), np.cov(np.array(v01))
    variance = ((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m
                + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n)
    gain = float(aucs[1] - aucs[0])
    half = float(norm.ppf((1 + level) / 2) * np.sqrt(max(variance, 0.0)))
    return gain, gain - half, gain + half


# --------------------------------------------------------------------------- the heads


def head_report(log: pd.DataFrame, drawn: pd.DataFrame, true: pd.DataFrame,
                systems: dict) -> pd.DataFrame:
    """One row per reaction: what its head learned from, how it ranks and how it calibrates.

    Columns: ``log positives`` (the training log's labels); ``AUC: <name>`` for each of
    ``systems`` (name -> a frame of predicted probabilities per reaction), scored against
    ``drawn``, labels drawn for every test candidate with
    :func:`~mlsd.datasets.news_feed.draw_reactions`; ``AUC: truth``, the true probabilities
    against the same labels (the ceiling); and ``mean / true: <name>``, a system's mean
    prediction over the mean true probability (1 when calibrated in the large). ``drawn``,
    ``true`` and every system's frame are aligned row by row.
    """
    check_frame("log", log, nf.REACTIONS)
    check_frame("drawn", drawn, nf.REACTIONS)
    check_frame("true", true, nf.REACTIONS)
    if not isinstance(systems, dict) or not systems:
        raise TypeError("systems must be a non-empty dict: name -> predicted probabilities")
    if "truth" in systems:
        raise ValueError("'truth' names the true probabilities' column: call the system otherwise")
    for name, frame in systems.items():
        check_frame(f"systems[{name!r}]", frame, nf.REACTIONS)
        if len(frame) != len(drawn):
            raise ValueError(f"systems[{name!r}] has {len(frame)} rows, drawn has {len(drawn)}: "
                             "they must be aligned row by row")
    if len(true) != len(drawn):
        raise ValueError(f"true has {len(true)} rows, drawn has {len(drawn)}")
    rows = {}
    for head in nf.REACTIONS:
        labels = drawn[head].to_numpy()
        row = {"log positives": int(log[head].sum())}
        row |= {f"AUC: {n}": roc_auc(labels, f[head].to_numpy()) for n, f in systems.items()}
        row["AUC: truth"] = roc_auc(labels, true[head].to_numpy())
        row |= {f"mean / true: {n}": float(f[head].mean() / true[head].mean())
                for n, f in systems.items()}
        rows[head] = row
    out = pd.DataFrame(rows).T
    out["log positives"] = out["log positives"].astype(int)
    return out


# --------------------------------------------------------------------------- affinity embeddings


def connection_matrix(connections: pd.DataFrame, n_users: int, n_authors: int,
                      counts: pd.DataFrame | None = None) -> np.ndarray:
    """The viewer x author matrix of the connection graph: 1 where the viewer is connected to
    the author, 0 elsewhere; with ``counts`` (columns ``user_id``, ``author_id``, ``count``:
    the pair's likes and comments in the log before a cut-off, say), ``log(1 + count)`` is
    added to the pair's entry.

    The graph is known before any log row, so vectors learned from it alone are point-in-time
    for every row; counts from the log are not, for the rows they were counted over.
    """
    n_users = check_int("n_users", n_users, minimum=1)
    n_authors = check_int("n_authors", n_authors, minimum=1)
    check_frame("connections", connections, ("user_id", "author_id"))
    users = check_int_ids("user_id", connections["user_id"])
    authors = check_int_ids("author_id", connections["author_id"])
    if len(users) and (users.min() < 0 or users.max() >= n_users or authors.min() < 0
                       or authors.max() >= n_authors):
        raise ValueError(f"ids must lie in 0..{n_users - 1} (viewers) and 0..{n_authors - 1} (authors)")
    matrix = np.zeros((n_users, n_authors))
    matrix[users, authors] = 1.0
    if counts is not None:
        check_frame("counts", counts, ("user_id", "author_id", "count"))
        u = check_int_ids("counts.user_id", counts["user_id"])
        a = check_int_ids("counts.author_id", counts["author_id"])
        c = counts["count"].to_numpy(dtype=float)
        if not (np.isfinite(c).all() and (c >= 0).all()):
            raise ValueError("counts must be finite and non-negative")
        if (matrix[u, a] == 0).any():
            raise ValueError("counts name a pair that is not connected")
        np.add.at(matrix, (u, a), np.log1p(c))
    return matrix


def svd_affinity(matrix, users, authors, dims) -> pd.DataFrame:
    """Each (viewer, author) pair's entry in the rank-k truncated SVD of ``matrix``, one
    column per k in ``dims``.

    With ``matrix = U S V^T``, the viewer's vector is its row of ``U_k S_k`` and the author's
    its row of ``V_k``; their dot product is the pair's entry in the best rank-k approximation
    of the matrix: how strongly the pair *would* be tied, read from the viewers and authors
    around them. Computed from the eigenvectors of ``matrix^T matrix`` (authors x authors,
    small), so every k costs one decomposition. The sign of a singular vector is arbitrary,
    and the dot product does not depend on it. The frame has the index of ``users`` when it is
    a Series (a log's or the candidates' column), so it aligns with their features.
    """
    index = users.index if isinstance(users, pd.Series) else None
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or not np.isfinite(matrix).all():
        raise ValueError(f"matrix must be a finite 2-D array (viewers x authors), got shape {matrix.shape}")
    users, authors = check_int_ids("users", users), check_int_ids("authors", authors)
    if users.shape != authors.shape:
        raise ValueError(f"users and authors need one id per pair, got {users.shape} and {authors.shape}")
    if len(users) and (users.min() < 0 or users.max() >= matrix.shape[0] or authors.min() < 0
                       or authors.max() >= matrix.shape[1]):
        raise ValueError(f"ids must index the matrix's {matrix.shape[0]} rows and {matrix.shape[1]} columns")
    dims = [check_int("dim", d, minimum=1) for d in np.atleast_1d(dims).tolist()]
    if not dims or len(set(dims)) != len(dims) or max(dims) > min(matrix.shape):
        raise ValueError(f"dims must be distinct, between 1 and {min(matrix.shape)}, got {dims}")
    _, vectors = np.linalg.eigh(matrix.T @ matrix)
    vectors = vectors[:, ::-1][:, :max(dims)]                  # largest singular values first
    viewer = matrix @ vectors                                  # = U_k S_k, a row per viewer
    terms = viewer[users] * vectors[authors]
    cumulative = np.cumsum(terms, axis=1)
    return pd.DataFrame({d: cumulative[:, d - 1] for d in dims}, index=index)
