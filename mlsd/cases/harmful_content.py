"""Chapter 8 (harmful content detection): the plumbing the chapter uses but does not teach.

The chapter writes what it teaches: the feature blocks, the multi-task network's training loop
with its epochs chosen on validation, out-of-fold logits and the late-fusion stack, the cost
matrix and the labels' recall, the upload-time network and the re-scoring models, the
request-time thresholds, and what to watch when adversaries change their spelling. Here are the
parts around them: macro average precision (and a fast weighted version for the bootstrap), the
review queue's counts, the Bayes decision under costs and a review capacity; the moments table
(the same posts scored at upload, at one hour and later), request bodies, the moderation app
and the review queue in SQLite; the daily monitoring signals, their bands and alarms, and the
monitoring figure; and the numbers the prose quotes.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime.

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlsd._checks import check_int
from mlsd.evaluation.drift import binomial_band, evaluate_alarms
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.evaluation.metrics import average_precision
from mlsd.systems.feature_store import SQLiteStore
from mlsd.systems.serving import service_app

__all__ = ["average_precision", "macro_average_precision", "macro_ap_scorer", "any_harm",
           "review_queue_table", "queue_numbers", "caught_by_queue_size", "ACTIONS", "decide",
           "cost_table", "cost_numbers", "in_queue", "moments_table", "moment_numbers",
           "REQUEST_FIELDS", "post_requests", "create_moderation_app", "ReviewStore",
           "decide_by_day", "daily_shares", "daily_recall", "reference_bands", "alarm_days",
           "detect", "unknown_word_counts", "macro_ap_gain", "monitoring_numbers",
           "plot_monitoring"]

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
    return pd.DataFrame(rows).T.astype({"harmful left up": int, "harmless removed": int})


def cost_numbers(costs: pd.DataFrame, baseline: str, model: str, oracle: str) -> dict:
    """The numbers the prose quotes from :func:`cost_table`."""
    per_post = costs["cost per post"]
    return {"cost_baseline": per_post[baseline], "cost_model": per_post[model],
            "cost_oracle": per_post[oracle], "cost_allow_all": per_post["allow everything"]}


# --------------------------------------------------------------------------- serving

Finite = Annotated[float, Field(allow_inf_nan=False)]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- moments


def in_queue(scores, capacity: float) -> np.ndarray:
    """Which posts a review queue of ``capacity`` (a share of the posts) holds: those with the
    highest class score, ties by post order, as in
    :func:`review_queue_table`. A boolean mask, one per post."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or not np.isfinite(s).all():
        raise ValueError(f"scores must be a finite (posts, classes) array, got shape {s.shape}")
    mask = np.zeros(len(s), dtype=bool)
    mask[_queue(s.max(axis=1), capacity)] = True
    return mask


def moments_table(moments: Mapping[str, tuple], labels, *, capacity: float, reference: str,
                  seed: int) -> pd.DataFrame:
    """The same posts scored at several moments: what each moment's review queue finds, and when.

    ``moments[name] = (scores, views)``: a (posts, classes) array of scores at that moment and
    the views each post has had by then (one per post, or one number for all, e.g. 0 at
    upload); ``labels`` is the (posts, classes) truth. One row per moment: the macro PR-AUC;
    the harmful posts in a review queue of ``capacity`` (:func:`in_queue`); the gain in them
    over moment ``reference``, as a 95 % paired bootstrap interval over posts (the queues held
    fixed, the posts resampled, :func:`mlsd.evaluation.experiments.paired_bootstrap` with
    ``seed``); and the mean views those harmful posts had had before they were queued.
    """
    y = np.asarray(labels)
    if reference not in moments:
        raise ValueError(f"reference {reference!r} is not one of the moments {list(moments)}")
    harmful = y.any(axis=1)
    caught, rows = {}, {}
    for name, (scores, views) in moments.items():
        s = np.asarray(scores, dtype=float)
        v = np.broadcast_to(np.asarray(views, dtype=float), (len(y),))
        if s.shape != y.shape or (v < 0).any():
            raise ValueError(f"{name}: give (posts, classes) scores like labels and "
                             f"non-negative views")
        caught[name] = in_queue(s, capacity) & harmful
        rows[name] = {"macro PR-AUC": macro_average_precision(y, s),
                      "harmful in queue": int(caught[name].sum()),
                      "views before the catch": v[caught[name]].mean() if caught[name].any() else 0.0}
    for name in moments:
        rows[name]["gain low"], rows[name]["gain high"] = paired_bootstrap(
            lambda a, b: b.sum() - a.sum(), caught[reference], caught[name], seed=seed)
    table = pd.DataFrame(rows).T.astype({"harmful in queue": int})
    return table[["macro PR-AUC", "harmful in queue", "gain low", "gain high",
                  "views before the catch"]]


def moment_numbers(table: pd.DataFrame, **moments: str) -> dict:
    """The numbers the prose quotes from :func:`moments_table`: for each ``short=row`` given,
    ``<short>_auc``, ``<short>_caught``, ``<short>_low`` and ``<short>_high`` (the gain's
    interval) and ``<short>_views`` (mean views before the catch)."""
    missing = [row for row in moments.values() if row not in table.index]
    if missing:
        raise ValueError(f"no moments {missing} in the table")
    return {f"{short}_{key}": kind(table.loc[row, column]) for short, row in moments.items()
            for key, column, kind in (("auc", "macro PR-AUC", float),
                                      ("caught", "harmful in queue", int),
                                      ("low", "gain low", float), ("high", "gain high", float),
                                      ("views", "views before the catch", float))}


# --------------------------------------------------------------------------- the HTTP app


#: the fields of a ``POST /score`` body, in order
REQUEST_FIELDS = ("text", "has_image", "image", "account_age_days", "past_violations",
                  "views_1h", "reports_1h")
_POST_COLUMNS = ("post_id", "text", "has_image", "account_age_days", "past_violations",
                 "views_1h", "reports_1h")


def post_requests(posts: pd.DataFrame, images: pd.DataFrame) -> list[dict]:
    """One ``POST /score`` body per row of ``posts``, in order.

    ``images`` holds ``post_id`` and the embedding columns (one row per post with an image).
    A post with an image sends its embedding as a list of floats, one without sends
    ``None`` (JSON ``null``). Counts are sent as Python ints, so the bodies are plain JSON.

    Raises ``ValueError`` if a column is missing, or a post flagged ``has_image`` has no row in
    ``images`` (or one without an image has one).
    """
    missing = [c for c in _POST_COLUMNS if c not in posts.columns]
    if missing or "post_id" not in images.columns:
        raise ValueError(f"posts lacks the columns {missing}" if missing else "images lacks post_id")
    embedding = images.set_index("post_id")
    has_image = posts["has_image"].to_numpy(bool)
    found = posts["post_id"].isin(embedding.index).to_numpy()
    if (found != has_image).any():
        bad = posts["post_id"].to_numpy()[found != has_image][:5].tolist()
        raise ValueError(f"has_image disagrees with the images table for posts {bad}")
    bodies = []
    for row in posts.itertuples(index=False):
        image = embedding.loc[row.post_id].to_numpy(float).tolist() if row.has_image else None
        bodies.append({"text": str(row.text), "has_image": bool(row.has_image), "image": image,
                       **{c: int(getattr(row, c)) for c in REQUEST_FIELDS[3:]}})
    return bodies


def create_moderation_app(score_post: Callable[[dict], tuple], labels: Sequence[str], *,
                          embedding_size: int = 16, max_text_chars: int = 5_000,
                          max_body_bytes: int = 20_000, model_version: str = "1") -> FastAPI:
    """A FastAPI app that scores one post per request.

    ``score_post(post)`` takes a validated body as a dict (the fields of
    :data:`REQUEST_FIELDS`; ``image`` a list of ``embedding_size`` floats or ``None``) and
    returns ``(scores, p_harmful, action)``: one probability per label, P(any harm) and the
    policy's action. Endpoints:

    - ``GET /health`` -> ``{"status": "ok", "model_version": ...}``;
    - ``POST /score`` with ``{"text": "...", "has_image": true, "image": [16 floats],
      "account_age_days": 12, "past_violations": 0, "views_1h": 40, "reports_1h": 1}`` ->
      ``{"scores": {label: p, ...}, "p_harmful": p, "action": "...", "model_version": ...}``.

    Malformed requests get a 4xx with a JSON ``detail`` and the server keeps serving: **422**
    for a missing or unknown field, a text that is not a string (or longer than
    ``max_text_chars``), an image of the wrong length or with a non-finite value, an image
    given while ``has_image`` is false (or missing while it is true), a count that is negative
    or not an integer (nothing is converted: ``"3"`` and ``3.0`` are not counts); **413** for a
    body over ``max_body_bytes``. An exception inside ``score_post``, or an answer that is not
    ``len(labels)`` probabilities, a probability and a string, is logged and answered with a
    **500** and a generic message.
    """
    labels = list(labels)
    if not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) < len(labels):
        raise ValueError(f"labels must be distinct non-empty strings, got {labels!r}")
    embedding_size = check_int("embedding_size", embedding_size, minimum=1)
    max_text_chars = check_int("max_text_chars", max_text_chars, minimum=1)
    max_body_bytes = check_int("max_body_bytes", max_body_bytes, minimum=1)
    if not callable(score_post):
        raise TypeError(f"score_post must be callable, got {type(score_post).__name__}")

    class PostRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        text: str = Field(max_length=max_text_chars)
        has_image: bool
        image: list[Finite] | None = Field(min_length=embedding_size, max_length=embedding_size)
        account_age_days: int = Field(ge=0)
        past_violations: int = Field(ge=0)
        views_1h: int = Field(ge=0)
        reports_1h: int = Field(ge=0)

        @model_validator(mode="after")
        def _image_matches_flag(self):
            if self.has_image != (self.image is not None):
                raise ValueError("give an image exactly when has_image is true")
            return self

    app = service_app("mlsd harmful content", model_version, max_body_bytes)

    @app.post("/score")
    def score(body: PostRequest):
        try:
            scores, p_harmful, action = score_post(body.model_dump())
            scores, p_harmful = np.asarray(scores, dtype=float), float(p_harmful)
            if scores.shape != (len(labels),) or not np.all((scores >= 0) & (scores <= 1)):
                raise ValueError(f"score_post returned scores of shape {scores.shape} or outside [0, 1]")
            if not 0 <= p_harmful <= 1 or not isinstance(action, str):
                raise ValueError("score_post returned a p_harmful outside [0, 1] or a non-str action")
        except Exception:
            logger.exception("scoring failed for a post of %d characters", len(body.text))
            raise HTTPException(500, "internal error while scoring") from None
        return {"scores": dict(zip(labels, scores.tolist())), "p_harmful": p_harmful,
                "action": action, "model_version": model_version}

    return app


# --------------------------------------------------------------------------- the review queue


_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    post_id INTEGER PRIMARY KEY, day INTEGER NOT NULL, priority REAL NOT NULL,
    p_harmful REAL NOT NULL, taken INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS queue_by_day ON queue (day, taken, priority);
CREATE TABLE IF NOT EXISTS verdicts (
    post_id INTEGER PRIMARY KEY REFERENCES queue (post_id), {labels});
"""


class ReviewStore(SQLiteStore):
    """The review queue and the reviewers' verdicts, in a SQLite database at ``path``.

    Table ``queue`` holds each queued post with its day, its priority (the order reviewers
    work in, highest first) and its P(harm); table ``verdicts`` one row per reviewed post with
    a 0/1 column per label. The policy :meth:`add`\\ s posts; reviewers :meth:`take` a day's
    queue in priority order up to their capacity and :meth:`record` their verdicts; the next
    retraining reads :meth:`verdicts`. ``path=":memory:"`` (the default) keeps the database in
    memory. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, labels: Sequence[str], path=":memory:"):
        self.labels = list(labels)
        if not self.labels or not all(isinstance(x, str) and x.isidentifier() for x in self.labels) \
                or len(set(self.labels)) < len(self.labels):
            raise ValueError(f"labels must be distinct identifiers, got {self.labels!r}")
        columns = ", ".join(f"{label} INTEGER NOT NULL CHECK ({label} IN (0, 1))" for label in self.labels)
        super().__init__(path, _SCHEMA.format(labels=columns))
        self._db.execute("PRAGMA foreign_keys = ON")

    def add(self, day: int, post_ids, priorities, p_harmful) -> int:
        """Queue ``post_ids`` on ``day`` with their priorities and P(harm); returns how many.

        Raises ``ValueError`` for arrays of different lengths, a priority that is not finite, a
        P(harm) outside [0, 1], or a post that is queued already.
        """
        day = check_int("day", day, minimum=0)
        ids = np.asarray(post_ids)
        priority, p = np.asarray(priorities, dtype=float), np.asarray(p_harmful, dtype=float)
        if ids.ndim != 1 or priority.shape != ids.shape or p.shape != ids.shape:
            raise ValueError(f"give one priority and one p_harmful per post id, got {ids.shape}, "
                             f"{priority.shape} and {p.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"post ids must be integers, got dtype {ids.dtype}")
        if not np.isfinite(priority).all() or not ((p >= 0) & (p <= 1)).all():
            raise ValueError("priorities must be finite and p_harmful in [0, 1]")
        rows = [(int(i), day, float(s), float(q)) for i, s, q in zip(ids, priority, p)]
        try:
            with self._db:
                self._db.executemany("INSERT INTO queue (post_id, day, priority, p_harmful) "
                                     "VALUES (?, ?, ?, ?)", rows)
        except sqlite3.IntegrityError:
            raise ValueError("a post is queued already (or appears twice)") from None
        return len(rows)

    def take(self, day: int, capacity: int) -> np.ndarray:
        """The reviewers' work for ``day``: up to ``capacity`` posts not taken yet, highest
        priority first (ties by post id); they are marked taken."""
        day = check_int("day", day, minimum=0)
        capacity = check_int("capacity", capacity, minimum=0)
        ids = [i for (i,) in self._db.execute(
            "SELECT post_id FROM queue WHERE day = ? AND taken = 0 "
            "ORDER BY priority DESC, post_id LIMIT ?", (day, capacity))]
        with self._db:
            self._db.executemany("UPDATE queue SET taken = 1 WHERE post_id = ?", [(i,) for i in ids])
        return np.array(ids, dtype=np.int64)

    def record(self, verdicts: pd.DataFrame) -> int:
        """Store the reviewers' verdicts (``post_id`` and a 0/1 column per label); returns how
        many. Raises ``ValueError`` for a missing column, a value not 0/1, a post that was not
        taken from the queue, or one already decided."""
        missing = [c for c in ["post_id", *self.labels] if c not in verdicts.columns]
        if missing:
            raise ValueError(f"verdicts lacks the columns {missing}")
        values = verdicts[self.labels].to_numpy()
        if not np.isin(values, (0, 1)).all():
            raise ValueError("verdicts must be 0 or 1")
        ids = verdicts["post_id"].to_numpy()
        taken = {i for (i,) in self._db.execute("SELECT post_id FROM queue WHERE taken = 1")}
        untaken = [int(i) for i in ids if int(i) not in taken]
        if untaken:
            raise ValueError(f"posts {untaken[:5]} were not taken from the queue")
        marks = ", ".join("?" * (1 + len(self.labels)))
        try:
            with self._db:
                self._db.executemany(f"INSERT INTO verdicts VALUES ({marks})",
                                     [(int(i), *map(int, v)) for i, v in zip(ids, values)])
        except sqlite3.IntegrityError:
            raise ValueError("a post has a verdict already (or appears twice)") from None
        return len(ids)

    def verdicts(self) -> pd.DataFrame:
        """Every stored verdict, by post id: what the next retraining reads as labels."""
        rows = self._db.execute(f"SELECT post_id, {', '.join(self.labels)} FROM verdicts "
                                "ORDER BY post_id").fetchall()
        return pd.DataFrame(rows, columns=["post_id", *self.labels])

    def day_summary(self, day: int) -> dict:
        """For ``day``: posts ``queued``, ``reviewed`` (taken) and found ``harmful`` (a verdict
        with at least one label)."""
        day = check_int("day", day, minimum=0)
        harmful = " OR ".join(f"v.{label} = 1" for label in self.labels)
        queued, reviewed, found = self._db.execute(
            f"SELECT COUNT(*), COALESCE(SUM(q.taken), 0), COALESCE(SUM({harmful}), 0) "
            "FROM queue AS q LEFT JOIN verdicts AS v USING (post_id) WHERE q.day = ?",
            (day,)).fetchone()
        return {"queued": int(queued), "reviewed": int(reviewed), "harmful": int(found)}


# --------------------------------------------------------------------------- monitoring


def decide_by_day(p_harmful, day, costs: Mapping[str, tuple[float, float]], *,
                  capacity: float) -> np.ndarray:
    """The policy of :func:`decide` applied one day at a time: each
    day's review queue holds at most ``capacity`` of that day's posts."""
    p, day = np.asarray(p_harmful, dtype=float), np.asarray(day)
    if p.ndim != 1 or day.shape != p.shape:
        raise ValueError("give one probability and one day per post")
    actions = np.empty(len(p), dtype=object)
    for d in np.unique(day):
        actions[day == d] = decide(p[day == d], costs, capacity=capacity)
    return actions.astype(str)


def daily_shares(day, **signals) -> pd.DataFrame:
    """Per day, each signal's share: the sum of its numerator over the sum of its denominator.

    ``signals[name] = (numerator, denominator)``, one value of each per row (a post): e.g.
    ``(reported & allowed, reported)`` gives the share of reported posts that were allowed,
    ``(unknown words, words)`` the share of unknown words. Returns a frame indexed by day with,
    per signal, the share (column ``name``, NaN on a day whose denominator is 0) and the
    denominator (column ``name + " n"``), which sets the day's band.
    """
    day = np.asarray(day)
    if day.ndim != 1 or not len(day) or not signals:
        raise ValueError("give a non-empty 1-d day per row and at least one signal")
    out = {}
    for name, pair in signals.items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(f"signal {name!r} must be a (numerator, denominator) pair")
        num, den = (np.asarray(a, dtype=float) for a in pair)
        if num.shape != day.shape or den.shape != day.shape:
            raise ValueError(f"signal {name!r} needs one numerator and denominator per row ({len(day)})")
        if (num < 0).any() or (num > den).any():
            raise ValueError(f"signal {name!r}: need 0 <= numerator <= denominator on every row")
        sums = pd.DataFrame({"num": num, "den": den}).groupby(day).sum()
        out[name] = sums["num"] / sums["den"].where(sums["den"] > 0)
        out[f"{name} n"] = sums["den"]
    return pd.DataFrame(out).rename_axis("day")


def daily_recall(day, harmful, **actions) -> pd.DataFrame:
    """Per day, the share of truly harmful posts each policy removed or sent to review.

    ``actions[name]`` holds one action per post (as :func:`decide_by_day` returns); the
    column of the result is ``name``. Needs the hidden truth: for the reader, not the team.
    """
    harmful = np.asarray(harmful, dtype=bool)
    if not actions:
        raise ValueError("give at least one policy's actions")
    return daily_shares(day, **{name: (harmful & np.isin(np.asarray(a), ["remove", "review"]),
                                       harmful) for name, a in actions.items()})


def reference_bands(daily: pd.DataFrame, names: Sequence[str], reference, z: float = 3.0) -> dict:
    """For each signal of ``names``, a binomial band of ``z`` standard errors around its
    pooled rate on the ``reference`` days (a boolean mask over ``daily``'s rows).

    Each day's width follows its own denominator (column ``name + " n"`` of
    :func:`daily_shares`). Returns ``{name: (low, high)}``, arrays over the days.
    """
    reference = np.asarray(reference, dtype=bool)
    if reference.shape != (len(daily),) or not reference.any():
        raise ValueError("reference must mark at least one of daily's rows (a boolean per day)")
    bands = {}
    for name in names:
        if name not in daily or f"{name} n" not in daily:
            raise ValueError(f"daily has no signal {name!r} (columns {name!r} and '{name} n')")
        rate, n = daily[name].to_numpy(), daily[f"{name} n"].to_numpy()
        n_reference = n[reference].sum()
        pooled = float(np.nansum(rate[reference] * n[reference]) / n_reference)
        bands[name] = binomial_band(pooled, int(round(n_reference)), np.maximum(n, 1), z=z)
    return bands


def alarm_days(rate, low, high, run: int = 2) -> np.ndarray:
    """True on each day that ends ``run`` consecutive days outside ``[low, high]`` (either side).

    Under the normal approximation, one day out of a 3-standard-error band happens by chance
    about once in 370 days per signal; asking for two in a row cuts false alarms further, at
    the cost of a day's delay.
    A NaN rate (no data that day) is not outside the band.
    """
    rate, low, high = (np.asarray(a, dtype=float) for a in (rate, low, high))
    run = check_int("run", run, minimum=1)
    if rate.ndim != 1 or low.shape != rate.shape or high.shape != rate.shape:
        raise ValueError("rate, low and high must be 1-d arrays of one length (one value per day)")
    if (low > high).any():
        raise ValueError("each day's band needs low <= high")
    outside = (rate < low) | (rate > high)
    streak = np.zeros(len(rate), dtype=int)
    for t, out in enumerate(outside):
        streak[t] = (streak[t - 1] + 1 if t else 1) if out else 0
    return streak >= run


def detect(daily: pd.DataFrame, bands: Mapping, drift_day: int, run: int = 2) -> dict:
    """Each banded signal's alarms (:func:`alarm_days`) scored by
    :func:`mlsd.evaluation.drift.evaluate_alarms` against the known drift day (a day of
    ``daily``'s index): ``{name: {"detected", "delay", "false_alarms", "false_alarm_rate"}}``."""
    days = daily.index.to_numpy()
    if drift_day not in days:
        raise ValueError(f"drift_day {drift_day} is not one of daily's days")
    change_at = int(np.flatnonzero(days == drift_day)[0])
    return {name: evaluate_alarms(alarm_days(daily[name], low, high, run=run), change_at)
            for name, (low, high) in bands.items()}


def unknown_word_counts(texts, vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """For each text, the number of its words (split on spaces) not in ``vocabulary``, and of
    all its words: ``(unknown, words)`` integer arrays."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("every text must be a string")
    if not hasattr(vocabulary, "__contains__"):
        raise TypeError("vocabulary must support `in` (a set or a dict of words)")
    words = [t.split() for t in texts]
    unknown = np.array([sum(w not in vocabulary for w in ws) for ws in words], dtype=np.int64)
    return unknown, np.array([len(ws) for ws in words], dtype=np.int64)


def macro_ap_gain(labels, before, after, *, seed, n_resamples: int = 1000) -> tuple[float, float]:
    """95 % paired bootstrap interval of macro PR-AUC(after) - macro PR-AUC(before).

    Posts are resampled with replacement and both systems scored on the same draw (the
    weights of :func:`macro_ap_scorer`), so the posts' difficulty,
    common to both, cancels out. A gain is established only if the interval excludes 0.
    """
    score_before, score_after = macro_ap_scorer(labels, before), macro_ap_scorer(labels, after)
    n = len(np.asarray(labels))

    def gain(rows):
        weights = np.bincount(rows, minlength=n)
        return score_after(weights) - score_before(weights)

    return paired_bootstrap(gain, np.arange(n), seed=seed, n_resamples=n_resamples)


def monitoring_numbers(daily: pd.DataFrame, caught: Mapping, drift_day: int, fix_day: int,
                       recovery: pd.DataFrame, gain: tuple[float, float], **settings) -> dict:
    """The numbers the section's prose quotes, named ``mon_*`` (``settings``: given as is).

    ``daily`` holds the daily signals (:func:`daily_shares`, plus a hidden ``recall`` and
    ``recall, retrained``); ``caught`` the :func:`mlsd.evaluation.drift.evaluate_alarms`
    outcome per signal, in the order unknown words, reported posts let through, overturned
    appeals (quoted as ``mon_unknown_*``, ``mon_reported_*``, ``mon_overturned_*``: the
    verdict, the false alarms, the mean daily share before the drift and from it on);
    ``recovery`` the macro PR-AUC per row (``deployed, before the drift``, ``deployed``,
    ``retrained``) with column ``macro PR-AUC``; ``gain`` the retrained model's paired
    interval.
    """
    needed = {"deployed, before the drift", "deployed", "retrained"}
    if len(caught) != 3:
        raise ValueError(f"caught needs three signals, got {list(caught)}")
    if not needed <= set(recovery.index) or "macro PR-AUC" not in recovery:
        raise ValueError(f"recovery needs the rows {sorted(needed)} and a 'macro PR-AUC' column")
    before = daily.index < drift_day
    between = (daily.index >= drift_day) & (daily.index < fix_day)
    out = {f"mon_{k}": v for k, v in settings.items()}
    out |= {"mon_drift_day": drift_day, "mon_fix_day": fix_day, "mon_fix_day_before": fix_day - 1,
            "mon_last_day": int(daily.index.max())}
    for name, key in zip(caught, ("unknown", "reported", "overturned")):
        c = caught[name]
        out[f"mon_{key}_verdict"] = (f"alarms on day {drift_day + c['delay']}" if c["detected"]
                                     else "never alarms")
        out[f"mon_{key}_false_alarms"] = c["false_alarms"]
        out[f"mon_{key}_before"] = daily.loc[before, name].mean()
        out[f"mon_{key}_after"] = daily.loc[~before, name].mean()
    out |= {"mon_recall_before": daily.loc[before, "recall"].mean(),
            "mon_recall_drifted": daily.loc[between, "recall"].mean(),
            "mon_recall_deployed": daily.loc[daily.index >= fix_day, "recall"].mean(),
            "mon_recall_retrained": daily.loc[daily.index >= fix_day, "recall, retrained"].mean()}
    for row, key in (("deployed, before the drift", "ap_before"), ("deployed", "ap_deployed"),
                     ("retrained", "ap_retrained")):
        out[f"mon_{key}"] = recovery.loc[row, "macro PR-AUC"]
    out["mon_gain_low"], out["mon_gain_high"] = gain
    return out


def plot_monitoring(axes, daily: pd.DataFrame, bands: Mapping, caught: Mapping, drift_day: int,
                    fix_day: int) -> None:
    """The section's figure: each banded signal on its own axis (``axes`` in the order of
    ``bands``) with its band and its first alarm (``caught``: the outcome of
    :func:`mlsd.evaluation.drift.evaluate_alarms` per signal, days counted from
    ``drift_day``); on the last axis the hidden daily recall of the deployed and (from
    ``fix_day``) the retrained system, with the first alarm of any signal; the drift day on all."""
    if len(axes) != len(bands) + 1:
        raise ValueError(f"give one axis per banded signal and one for the recall ({len(bands) + 1})")
    if set(caught) != set(bands):
        raise ValueError("caught and bands must name the same signals")
    alarms = {n: drift_day + c["delay"] for n, c in caught.items() if c["detected"]}
    for ax, (name, (low, high)) in zip(axes, bands.items()):
        ax.fill_between(daily.index, low, high, color="0.85", step="mid", label="band")
        ax.plot(daily.index, daily[name], "o-", ms=3, color="#0072B2", label="daily share")
        ax.set(title=name)
        if name in alarms:
            ax.axvline(alarms[name], color="#D55E00", lw=1, label="first alarm")
    ax = axes[-1]
    ax.plot(daily.index, daily["recall"], "o-", ms=3, color="#0072B2", label="deployed")
    ax.plot(daily.index, daily["recall, retrained"].where(daily.index >= fix_day), "s--", ms=3,
            color="#009E73", label="retrained")
    ax.set(title="hidden: harmful posts removed or reviewed", ylim=(0, 1))
    if alarms:
        ax.axvline(min(alarms.values()), color="#D55E00", lw=1)
    for ax in axes:
        ax.axvline(drift_day - 0.5, color="0.3", ls=":", lw=1, label="drift")
        ax.yaxis.set_major_formatter(lambda y, _: f"{100 * y:.3g}%")
        spec = ax.get_subplotspec()
        if spec is None or spec.is_last_row():
            ax.set(xlabel="day")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[-1].legend(loc="lower left", fontsize=8)
