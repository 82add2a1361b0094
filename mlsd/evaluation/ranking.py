"""Cutting scores into ranked lists, the same way on every machine.

``np.argpartition`` and unstable sorts leave the order of tied scores to the algorithm, and
numpy picks that algorithm by CPU (its AVX2 and AVX-512 selection kernels choose different
members of a tie). A list cut from tied scores would then differ between machines, and so would
everything computed from it. :func:`top_k` breaks every tie by position instead: the lower
column (in the book, the lower item id) ranks first.
"""

from __future__ import annotations

import numpy as np

from mlsd._checks import check_int

__all__ = ["top_k"]


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
