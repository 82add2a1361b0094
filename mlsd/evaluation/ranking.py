"""Cutting scores into ranked lists, the same way on every machine.

``np.argpartition`` and unstable sorts leave the order of tied scores to the algorithm, and
numpy picks that algorithm by CPU (its AVX2 and AVX-512 selection kernels choose different
members of a tie). A list cut from tied scores would then differ between machines, and so would
everything computed from it. :func:`top_k` breaks every tie by position instead: the lower
column (in the book, the lower item id) ranks first.

Over whole score matrices (one row per user or query, one column per item):

- :func:`top_k`         -- each row's ``k`` best positions, best first;
- :func:`top_k_mask`    -- the same as a boolean matrix, among the cells a row may show;
- :func:`top_k_allowed` -- each row's ``k`` best allowed positions, best first;
- :func:`ndcg_at_k`     -- graded nDCG@k of many ranked lists at once, the definition of
  :func:`mlsd.evaluation.metrics.ndcg_at_k` (which scores one list given as item ids).
"""

from __future__ import annotations

import numpy as np

from mlsd._checks import check_int

__all__ = ["ndcg_at_k", "top_k", "top_k_allowed", "top_k_mask"]


def top_k(scores, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores along the last axis, best first; ties to the lower position.

    ``scores`` is one ranking (1-D) or one per row (2-D); ``-inf`` ranks last (use it for what
    may not be shown). Returns ``min(k, n)`` positions per row: the same as a stable sort of
    each row by descending score, cut at ``k``, but only each row's cells at least as good as
    its ``k``-th best are sorted.

    Raises
    ------
    ValueError
        If ``scores`` is not 1-D or 2-D, or holds NaN (which has no rank).
    """
    k = check_int("k", k, minimum=1)
    scores = np.asarray(scores, dtype=float)
    if scores.ndim not in (1, 2) or scores.shape[-1] == 0:
        raise ValueError(f"scores must be a non-empty 1-D or 2-D array, got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN, which has no rank")
    neg = -np.atleast_2d(scores)
    k = min(k, neg.shape[1])
    kth = np.partition(neg, k - 1, axis=1)[:, k - 1 : k]
    rows, cols = np.nonzero(neg <= kth)  # at least k cells per row: the k best and any tied with the k-th
    order = np.lexsort((cols, neg[rows, cols], rows))  # by row, then score (best first), then position
    rows, cols = rows[order], cols[order]
    keep = np.arange(len(rows)) - np.searchsorted(rows, rows) < k  # the first k of each row
    best = cols[keep].reshape(len(neg), k)
    return best[0] if scores.ndim == 1 else best


def _allowed_scores(scores, allowed) -> tuple[np.ndarray, np.ndarray]:
    """``scores`` broadcast to ``allowed``'s (rows, items) shape, -inf where not allowed."""
    allowed = np.asarray(allowed)
    if allowed.dtype != bool:
        raise TypeError(f"allowed must be a boolean array, got dtype {allowed.dtype}")
    scores = np.asarray(scores, dtype=float)
    if allowed.ndim != 2 or scores.ndim not in (1, 2):
        raise ValueError(f"allowed must be 2-D and scores 1-D or 2-D, got shapes "
                         f"{allowed.shape} and {scores.shape}")
    scores = np.atleast_2d(scores)
    if scores.shape[1] != allowed.shape[1] or scores.shape[0] not in (1, allowed.shape[0]):
        raise ValueError(f"scores of shape {scores.shape} do not fit allowed of shape "
                         f"{allowed.shape} (one row for all, or one per row)")
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN, which has no rank")
    return np.where(allowed, scores, -np.inf), allowed


def top_k_mask(scores, k: int, allowed) -> np.ndarray:
    """Each row's ``k`` best-scored allowed cells, as a boolean (rows x items) matrix.

    ``allowed`` (rows x items, bool) says which cells a row may show (e.g. items a user has
    not seen yet); ``scores`` is one score per cell, or one row of scores shared by every row
    (item popularity, say). A row with fewer than ``k`` allowed cells marks all of them; a row
    with none is all False. Ties go to the lower column, as in :func:`top_k`.

    Raises
    ------
    TypeError
        If ``allowed`` is not boolean.
    ValueError
        If the shapes do not fit, ``k`` < 1, or ``scores`` hold NaN.
    """
    k = check_int("k", k, minimum=1)
    masked, allowed = _allowed_scores(scores, allowed)
    mask = np.zeros(allowed.shape, dtype=bool)
    rows = np.flatnonzero(allowed.any(axis=1))   # a row allowing nothing has nothing to rank:
    if rows.size:                                 # skipping it spares sorting its all -inf cells
        best = top_k(masked[rows], k)
        mask[rows[:, None], best] = True
    return mask & allowed


def top_k_allowed(scores, k: int, allowed) -> np.ndarray:
    """Positions of each row's ``k`` best-scored allowed cells (rows x k), best first.

    The same cells as :func:`top_k_mask`, in rank order; ties to the lower column. A cell that
    is not allowed is never returned.

    Raises
    ------
    ValueError
        If a row has fewer than ``k`` allowed cells (its list could not be filled), or as
        :func:`top_k_mask`.
    """
    k = check_int("k", k, minimum=1)
    masked, allowed = _allowed_scores(scores, allowed)
    short = allowed.sum(axis=1) < k
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise ValueError(f"row {row} has {int(allowed[row].sum())} allowed cells, fewer than "
                         f"k = {k}")
    return top_k(masked, k)


def ndcg_at_k(gains, ideal_gains, k: int) -> np.ndarray:
    """Each row's normalized discounted cumulative gain at ``k`` (graded, linear gain).

    ``gains`` (rows x positions) holds the graded relevance of each row's ranked items, best
    first; only the first ``k`` positions count. ``ideal_gains`` holds the grades of everything
    judged relevant for each row (rows x m, in any order), or one row shared by all rows; the
    ideal DCG@k is that of the best possible order of those grades. With rel_i the grade at
    rank i::

        DCG@k = sum_{i <= k} rel_i / log2(i + 1),    nDCG@k = DCG@k / ideal DCG@k

    This is :func:`mlsd.evaluation.metrics.ndcg_at_k` with ``gain="linear"`` (the ideal counts
    relevant items the system did not rank), computed for many lists at once. Range [0, 1]
    when the ideal grades include every graded item the lists can show.

    Raises
    ------
    ValueError
        If an array is not 2-D (``ideal_gains`` may be 1-D: one row for all), the row counts
        do not fit, a grade is negative or not finite, or a row's ideal DCG is 0 (nothing
        relevant: nDCG is undefined).
    """
    k = check_int("k", k, minimum=1)
    gains = np.asarray(gains, dtype=float)
    ideal = np.atleast_2d(np.asarray(ideal_gains, dtype=float))
    if gains.ndim != 2 or ideal.ndim != 2:
        raise ValueError(f"gains must be 2-D and ideal_gains 1-D or 2-D, got shapes "
                         f"{gains.shape} and {np.shape(ideal_gains)}")
    if ideal.shape[0] not in (1, gains.shape[0]):
        raise ValueError(f"ideal_gains has {ideal.shape[0]} rows; give 1 or one per row of "
                         f"gains ({gains.shape[0]})")
    for name, arr in (("gains", gains), ("ideal_gains", ideal)):
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise ValueError(f"{name} must be finite grades >= 0")

    def dcg(rows: np.ndarray) -> np.ndarray:
        rows = rows[:, :k]
        return (rows / np.log2(np.arange(2, rows.shape[1] + 2))).sum(axis=1)

    ideal_dcg = dcg(-np.sort(-ideal, axis=1))
    if (ideal_dcg == 0).any():
        row = int(np.flatnonzero(ideal_dcg == 0)[0])
        raise ValueError(f"row {row} of ideal_gains has nothing relevant: nDCG is undefined")
    return dcg(gains) / ideal_dcg
