"""Chapter 8 (harmful content detection): the plumbing the chapter uses but does not teach.

The chapter writes what it teaches: the feature blocks, the multi-task network's training loop
with its epochs chosen on validation, out-of-fold logits and the late-fusion stack, the cost
matrix and the labels' recall. Here are the parts around them: macro average precision (and a
fast weighted version for the bootstrap), the review queue's counts, the Bayes decision under
costs and a review capacity, and the numbers the prose quotes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from mlsd.evaluation.metrics import average_precision

__all__ = ["average_precision", "macro_average_precision", "macro_ap_scorer", "any_harm",
           "review_queue_table", "queue_numbers", "caught_by_queue_size", "ACTIONS", "decide",
           "cost_table", "cost_numbers"]

#: the actions a policy takes, in the order the cost tables list them
ACTIONS = ("allow", "demote", "remove", "review")


def _labels_and_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(labels), np.asarray(scores, dtype=float)
    if y.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"labels and scores must be (posts, classes) arrays of one shape, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if (y.sum(axis=0) == 0).any():
        raise ValueError(f"every class needs a positive; classes {np.flatnonzero(y.sum(axis=0) == 0).tolist()} have none")
    return y.astype(bool), s


def macro_average_precision(labels, scores) -> float:
    """Mean over the columns (classes) of average precision: the macro PR-AUC.

    ``labels`` and ``scores`` are (posts, classes) arrays. Each class counts the same however
    rare: a rare class's poor AP pulls the mean down as much as a common class's would.
    """
    y, s = _labels_and_scores(labels, scores)
    return float(np.mean([average_precision(y[:, k], s[:, k]) for k in range(y.shape[1])]))


def macro_ap_scorer(labels, scores) -> Callable[[np.ndarray], float]:
    """A function ``weights -> macro average precision`` with post ``i`` counted ``weights[i]`` times.

    For a bootstrap over posts (:func:`mlsd.evaluation.headline.resampled_intervals`): the
    posts are sorted once per class, so each resample costs a few cumulative sums instead of
    a sort. Tied scores form one threshold, as in :func:`average_precision`; with all weights 1
    it equals :func:`macro_average_precision`.
    """
    y, s = _labels_and_scores(labels, scores)
    sorted_classes = []
    for k in range(y.shape[1]):
        order = np.argsort(-s[:, k], kind="stable")
        ends = np.r_[np.diff(s[order, k]) != 0, True]  # last post of each distinct score
        sorted_classes.append((order, y[order, k], ends))

    def score(weights) -> float:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(y),) or (w < 0).any():
            raise ValueError(f"weights must be {len(y)} non-negative numbers, one per post")
        aps = []
        for order, positive, ends in sorted_classes:
            wo = w[order]
            hits, seen = np.cumsum(wo * positive)[ends], np.cumsum(wo)[ends]
            if hits[-1] == 0:
                raise ValueError("a class has no positive among the weighted posts")
            precision = np.divide(hits, seen, out=np.zeros_like(hits), where=seen > 0)
            aps.append(np.sum(np.diff(hits, prepend=0.0) * precision) / hits[-1])
        return float(np.mean(aps))

    return score


def any_harm(probabilities) -> np.ndarray:
    """P(at least one class) from per-class probabilities, treating the classes as independent.

    The classes are not independent (a threat is violent and hateful), so this overstates the
    chance of harm a little for posts with two high classes; the oracle's exact P(any harm)
    needs no such assumption.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError("probabilities must be a (posts, classes) array of values in [0, 1]")
    return 1 - np.prod(1 - p, axis=1)


def _queue(scores, capacity: float) -> np.ndarray:
    if not 0 < capacity < 1:
        raise ValueError(f"capacity is a share of posts in (0, 1), got {capacity}")
    s = np.asarray(scores, dtype=float)
    return np.argsort(-s, kind="stable")[: int(round(capacity * len(s)))]


def review_queue_table(scores: Mapping[str, np.ndarray], harmful, reported, *, capacity: float) -> pd.DataFrame:
    """Each system's review queue: its ``capacity`` share of posts with the highest scores.

    Columns: the queue's size, the truly harmful posts in it, those of them with no user
    report yet (proactive catches) and the queue's precision. Ties are broken by post order.
    """
    harmful, reported = np.asarray(harmful, dtype=bool), np.asarray(reported, dtype=bool)
    rows = {}
    for name, s in scores.items():
        if len(s) != len(harmful) or len(reported) != len(harmful):
            raise ValueError(f"{name}: give one score, one truth and one report flag per post")
        queued = _queue(s, capacity)
        rows[name] = {"queue": len(queued), "harmful": int(harmful[queued].sum()),
                      "no report yet": int((harmful & ~reported)[queued].sum())}
    table = pd.DataFrame(rows).T
    table["precision"] = table["harmful"] / table["queue"]
    return table


def queue_numbers(queue: pd.DataFrame, baseline: str, model: str, oracle: str) -> dict:
    """The numbers the prose quotes from :func:`review_queue_table`."""
    return {"queue_size": int(queue.loc[model, "queue"]),
            "queue_baseline": int(queue.loc[baseline, "harmful"]),
            "queue_model": int(queue.loc[model, "harmful"]),
            "queue_oracle": int(queue.loc[oracle, "harmful"]),
            "queue_model_proactive": queue.loc[model, "no report yet"] / queue.loc[model, "harmful"]}


def caught_by_queue_size(scores, harmful, shares) -> np.ndarray:
    """Truly harmful posts in a queue of each size (a share of the posts), best scores first."""
    harmful = np.asarray(harmful, dtype=bool)
    found = np.cumsum(harmful[np.argsort(-np.asarray(scores, dtype=float), kind="stable")])
    shares = np.asarray(shares, dtype=float)
    if len(found) != len(harmful) or not ((shares > 0) & (shares <= 1)).all():
        raise ValueError("give one score per post and queue shares in (0, 1]")
    return found[np.maximum(np.round(shares * len(harmful)).astype(int), 1) - 1]


def _costs(costs: Mapping[str, tuple[float, float]]) -> np.ndarray:
    if set(costs) != set(ACTIONS):
        raise ValueError(f"give a (cost if harmless, cost if harmful) pair for each of {ACTIONS}, got {sorted(costs)}")
    table = np.array([costs[a] for a in ACTIONS], dtype=float)
    if table.shape != (len(ACTIONS), 2) or not np.isfinite(table).all() or (table < 0).any():
        raise ValueError("each cost must be a pair of non-negative numbers")
    return table


def decide(p_harmful, costs: Mapping[str, tuple[float, float]], *, capacity: float) -> np.ndarray:
    """The cheapest action for each post, with at most ``capacity`` of the posts reviewed.

    ``costs[action] = (cost if harmless, cost if harmful)``. With a probability ``p`` of harm,
    an action's expected cost is ``(1 - p) * harmless + p * harmful``: a line in ``p``; each post
    gets the cheapest of allow, demote and remove. Review is the cheapest action wherever its
    cost is below that, but the queue is full at ``capacity``: it takes the posts where
    reviewing saves the most (the most uncertain ones, not the highest scores).
    """
    p = np.asarray(p_harmful, dtype=float)
    if p.ndim != 1 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError("p_harmful must be one probability in [0, 1] per post")
    table = _costs(costs)
    expected = np.outer(1 - p, table[:, 0]) + np.outer(p, table[:, 1])   # (posts, actions)
    automatic = expected[:, :3].argmin(axis=1)
    saving = expected[np.arange(len(p)), automatic] - expected[:, 3]
    reviewed = _queue(saving, capacity)
    chosen = automatic.copy()
    chosen[reviewed[saving[reviewed] > 0]] = 3
    return np.array(ACTIONS)[chosen]


def cost_table(decisions: Mapping[str, np.ndarray], harmful, costs: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """Shares of posts per action, the mistakes left and the cost per post, for each policy.

    A reviewed post costs the review and is then decided correctly. A last row, "allow
    everything", is the cost of doing nothing.
    """
    harmful = np.asarray(harmful, dtype=bool)
    table = _costs(costs)
    rows = {}
    for name, actions in {**decisions, "allow everything": np.full(len(harmful), "allow")}.items():
        actions = np.asarray(actions)
        if len(actions) != len(harmful) or not np.isin(actions, ACTIONS).all():
            raise ValueError(f"{name}: give one action of {ACTIONS} per post")
        index = pd.Index(ACTIONS).get_indexer(actions)
        per_post = table[index, harmful.astype(int)]
        rows[name] = {**{a: float(np.mean(actions == a)) for a in ACTIONS},
                      "harmful left up": int((harmful & (actions == "allow")).sum()),
                      "harmless removed": int((~harmful & (actions == "remove")).sum()),
                      "cost per post": float(per_post.mean())}
    return pd.DataFrame(rows).T


def cost_numbers(costs: pd.DataFrame, baseline: str, model: str, oracle: str) -> dict:
    """The numbers the prose quotes from :func:`cost_table`."""
    per_post = costs["cost per post"]
    return {"cost_baseline": per_post[baseline], "cost_model": per_post[model],
            "cost_oracle": per_post[oracle], "cost_allow_all": per_post["allow everything"]}
