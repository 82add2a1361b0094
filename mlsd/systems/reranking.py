"""Re-ranking: the product's rules applied after the ranker, the same way in every chapter.

A ranker orders candidates by how likely each is to be wanted; a page has other needs. These
functions are the rules the case studies apply after it, written once and tested:

- :func:`cap_per_group` -- at most ``m`` items of one group per list (one photo per duplicate
  group, two videos per creator);
- :func:`first_kept` -- each list cut to its first ``k`` kept items;
- :func:`drop_blocked` -- never an item a policy blocks (a list rule);
- :func:`filter_out` -- the same on a score matrix: a blocked cell scores ``-inf``;
- :func:`boost` -- multiply some items' scores (a freshness boost);
- :func:`demote` -- move some cells of a score matrix below every other candidate of their row.

Two shapes appear. A **list matrix** holds item ids, one ranked list per row, best first
(``rows x positions``): what a retrieval index returns. A **score matrix** holds one score per
(row, item) cell, ``-inf`` for what may not be shown: what a ranker returns before the lists
are cut (with :func:`mlsd.evaluation.ranking.top_k`). Rules that reorder work on either: cut the
lists, mark the cells a rule removes, then :func:`first_kept` (lists) or :func:`demote` (scores).
Order is always the input's; ties keep the lower position, as
:func:`~mlsd.evaluation.ranking.top_k` does.
"""

from __future__ import annotations

import numpy as np

from mlsd._checks import check_finite, check_int

__all__ = ["cap_per_group", "first_kept", "drop_blocked", "filter_out", "boost", "demote"]


def _lists(lists) -> np.ndarray:
    lists = np.asarray(lists)
    if lists.ndim != 2:
        raise ValueError(f"lists must be a 2-D matrix (rows x positions), got shape {lists.shape}")
    if lists.dtype.kind not in "iu":
        raise TypeError(f"lists must hold integer item ids, got values of type {lists.dtype}")
    return lists


def _lookup(name: str, table, lists: np.ndarray) -> np.ndarray:
    """``table[lists]`` after checking every id in ``lists`` indexes the 1-D ``table``."""
    table = np.asarray(table)
    if table.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per item id), got shape {table.shape}")
    if lists.size and (lists.min() < 0 or lists.max() >= len(table)):
        bad = lists.min() if lists.min() < 0 else lists.max()
        raise ValueError(f"lists hold item id {bad}, outside {name} (ids 0..{len(table) - 1})")
    return table[lists]


def _same_shape(name: str, mask, shape) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{name} must be a boolean mask, got values of type {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have the shape {tuple(shape)}, got {mask.shape}")
    return mask


def _scores(scores) -> np.ndarray:
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D matrix (rows x items), got shape {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores hold NaN, which has no rank")
    return scores


def cap_per_group(lists, groups, max_per_group: int) -> np.ndarray:
    """Keep mask: an item stays unless ``max_per_group`` earlier items of its row share its group.

    Walking down each row, position ``j`` is kept when fewer than ``max_per_group`` of the
    positions before it (kept or not, whatever other rules say about them) hold an item of the
    same group. With ``max_per_group = 1`` only the best item of each group survives (one photo
    per duplicate group); with 2, a creator's third video and beyond are dropped.

    Parameters
    ----------
    lists
        ``rows x positions`` integer item ids, best first.
    groups
        1-D, the group id of every item (indexed by item id).
    max_per_group
        How many items of one group a list may show (>= 1).

    Returns
    -------
    numpy.ndarray
        Boolean, the shape of ``lists``: True where the item is kept.

    Raises
    ------
    ValueError
        If ``lists`` is not 2-D, an id is outside ``groups``, or ``max_per_group < 1``.
    """
    lists = _lists(lists)
    max_per_group = check_int("max_per_group", max_per_group, minimum=1)
    group = _lookup("groups", groups, lists)
    # sort each row by group, keeping position order within a group; a cell's rank inside its
    # group's run is the number of earlier positions of the same group
    by_group = np.argsort(group, axis=1, kind="stable")
    grouped = np.take_along_axis(group, by_group, axis=1)
    position = np.arange(lists.shape[1])
    starts = np.where(np.diff(grouped, axis=1, prepend=grouped[:, :1]) != 0, position, 0)
    earlier = np.empty(lists.shape, dtype=np.int64)
    np.put_along_axis(earlier, by_group, position - np.maximum.accumulate(starts, axis=1), axis=1)
    return earlier < max_per_group


def first_kept(lists, keep, k: int) -> np.ndarray:
    """Each row's first ``k`` kept items, in their order: ``rows x k`` item ids.

    Raises
    ------
    ValueError
        If a row keeps fewer than ``k`` items (retrieve more candidates), naming the first such
        row, or if ``keep`` does not have the shape of ``lists``.
    """
    lists = _lists(lists)
    keep = _same_shape("keep", keep, lists.shape)
    k = check_int("k", k, minimum=1)
    short = keep.sum(axis=1) < k
    if short.any():
        row = int(np.flatnonzero(short)[0])
        raise ValueError(f"row {row} keeps {int(keep[row].sum())} items, fewer than k={k}: "
                         "retrieve more candidates")
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]   # kept first, order kept
    return np.take_along_axis(lists, order, axis=1)


def drop_blocked(lists, blocked) -> np.ndarray:
    """Keep mask: True where the listed item is not blocked (``blocked``: 1-D bool per item id)."""
    lists = _lists(lists)
    blocked = np.asarray(blocked)
    if blocked.dtype != bool:
        raise TypeError(f"blocked must be a boolean mask per item, got values of type "
                        f"{blocked.dtype}")
    return ~_lookup("blocked", blocked, lists)


def filter_out(scores, blocked) -> np.ndarray:
    """A copy of ``scores`` with the blocked cells at ``-inf`` (never shown).

    ``blocked`` is boolean and broadcasts to ``scores``: ``rows x items`` (e.g. a video in a
    language the user does not speak), or one row for every row (a policy's blocked items).
    """
    scores = _scores(scores)
    blocked = np.asarray(blocked)
    if blocked.dtype != bool:
        raise TypeError(f"blocked must be a boolean mask, got values of type {blocked.dtype}")
    try:
        return np.where(np.broadcast_to(blocked, scores.shape), -np.inf, scores)
    except ValueError:
        raise ValueError(f"blocked of shape {blocked.shape} does not broadcast to the scores' "
                         f"{scores.shape}") from None


def boost(scores, boosted, factor: float) -> np.ndarray:
    """A copy of ``scores`` with the ``boosted`` items' scores multiplied by ``factor``.

    ``boosted`` is boolean, one value per item (column) or per cell. Multiplying keeps
    ``-inf`` at ``-inf`` and, for non-negative scores such as probabilities, lifts an item by
    a share of its own score: a boost of 1.3 helps a fresh video the ranker likes more than
    one it does not. ``factor = 1`` changes nothing.

    Raises
    ------
    ValueError
        If ``factor`` is not a positive number (a negative one would reverse the order), or
        ``boosted`` does not broadcast to ``scores``.
    """
    scores = _scores(scores)
    factor = check_finite("factor", factor)
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    boosted = np.asarray(boosted)
    if boosted.dtype != bool:
        raise TypeError(f"boosted must be a boolean mask, got values of type {boosted.dtype}")
    try:
        return np.where(np.broadcast_to(boosted, scores.shape), scores * factor, scores)
    except ValueError:
        raise ValueError(f"boosted of shape {boosted.shape} does not broadcast to the scores' "
                         f"{scores.shape}") from None


def demote(scores, demoted) -> np.ndarray:
    """A copy of ``scores`` with the ``demoted`` cells moved below every other finite cell.

    The demoted cells keep their order among themselves (equal scores stay equal, so ties
    still go to the lower position) and stay above ``-inf``: a list with too few other
    candidates still fills up with them, last. Their values become ranks placed below the
    lowest score that is not demoted, so the result orders cells; it is no longer a
    probability. The order is exact (no rounding merges two demoted scores), so a row
    demoted alone orders its cells as the same row demoted within a larger matrix.

    Raises
    ------
    ValueError
        If ``demoted`` does not have the shape of ``scores``.
    """
    scores = _scores(scores)
    demoted = _same_shape("demoted", demoted, scores.shape) & np.isfinite(scores)
    if not demoted.any():
        return scores.copy()
    kept = np.isfinite(scores) & ~demoted
    floor = float(scores[kept].min()) if kept.any() else 0.0
    levels, rank = np.unique(scores[demoted], return_inverse=True)   # ascending, ties shared
    out = scores.copy()
    out[demoted] = floor - len(levels) + rank.ravel()
    return out
