"""Chapter 8's serving plumbing: the moments table, request bodies, the moderation app and the
review queue store.

The chapter writes what it teaches: the upload-time network, re-scoring as reports arrive, the
request-time policy's thresholds derived from the costs, and the request path scored one post
at a time. Here are the parts around them:

- :func:`moments_table` compares the same posts scored at several moments (at upload, after
  one hour, after a day): macro PR-AUC, the harmful posts a review queue of fixed size finds,
  the gain over a reference moment with a paired bootstrap interval, and the views those posts
  had had before they were queued (:func:`in_queue` is the queue, :func:`moment_numbers` the
  numbers the prose quotes);
- :func:`post_requests` turns rows of the world's ``posts`` and ``images`` tables into the JSON
  bodies a client would send (what the server receives, and what its answers are checked on);
- :func:`create_moderation_app` serves a one-post scoring function over HTTP behind a strict
  schema (``POST /score``), with the book's body limit, 422 answers and ``/health``;
- :class:`ReviewStore` is the daily review queue in SQLite: the policy writes queued posts
  with their priority, reviewers take a day's queue in priority order up to their capacity,
  and their verdicts are stored as the labels the next retraining reads.

Stage timings use :class:`mlsd.cases.video_search.StageClock` (re-exported here).
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
from mlsd.cases.harmful_content import macro_average_precision
from mlsd.cases.video_search import StageClock
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.systems.serving import service_app

__all__ = ["StageClock", "in_queue", "moments_table", "moment_numbers", "REQUEST_FIELDS",
           "post_requests", "create_moderation_app", "ReviewStore"]

Finite = Annotated[float, Field(allow_inf_nan=False)]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- moments


def in_queue(scores, capacity: float) -> np.ndarray:
    """Which posts a review queue of ``capacity`` (a share of the posts) holds: those with the
    highest class score, ties by post order, as in
    :func:`mlsd.cases.harmful_content.review_queue_table`. A boolean mask, one per post."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2 or not np.isfinite(s).all():
        raise ValueError(f"scores must be a finite (posts, classes) array, got shape {s.shape}")
    if not 0 < capacity < 1:
        raise ValueError(f"capacity is a share of posts in (0, 1), got {capacity}")
    mask = np.zeros(len(s), dtype=bool)
    mask[np.argsort(-s.max(axis=1), kind="stable")[:int(round(capacity * len(s)))]] = True
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


class ReviewStore:
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
        self._db = sqlite3.connect(str(path))
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA.format(labels=columns))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the database (a file stays)."""
        self._db.close()

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
