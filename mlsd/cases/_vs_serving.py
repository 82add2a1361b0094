"""Chapter 7 (video search), online evaluation and serving: the plumbing around the lesson.

- :func:`page_truth`: the hidden grade and clickbait flag of every video on simulated pages,
  for the analysis of a simulated A/B test (a real platform measures watch time instead);
- :func:`append_to_index`: add a batch of new uploads to the chapter's inverted index without
  re-reading the old videos' text (posting lists, document frequencies, field lengths);
- :class:`StageClock`: time each stage of a request path, one request at a time;
- :func:`create_search_app`: a FastAPI app that answers ``{"query": ..., "k": ...}`` with a
  page of video ids, and refuses malformed requests with a 4xx.

The lead merges these into :mod:`mlsd.cases.video_search`.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at
# runtime, and the request model is a local class built by create_search_app.

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import sparse

from mlsd._checks import check_int
from mlsd.cases.video_search import bag_of_words
from mlsd.datasets import video_search as vs
from mlsd.datasets.world import all_tables
from mlsd.evaluation import experiments as ab
# the serving chapter's body-size limit and 422 answer without the input echoed back
from mlsd.systems.serving import _BodySizeLimit, _validation_error

__all__ = ["cached", "page_truth", "online_metrics", "append_to_index", "rebound", "StageClock", "create_search_app"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())


# --------------------------------------------------------------------------- A/B analysis


def cached(engine: Callable[[list[str]], np.ndarray], texts) -> np.ndarray:
    """``engine``'s pages for ``texts``, each distinct query searched once (a results cache).

    ``engine`` takes a list of queries and returns one row per query (e.g. (n, k) video ids);
    rows are repeated for the repeated queries. Same answer as ``engine(list(texts))`` for a
    deterministic engine, at the cost of the distinct queries only.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of query strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    codes, distinct = pd.factorize(pd.Series(texts, dtype=object))
    pages = np.asarray(engine(list(distinct)))
    if len(pages) != len(distinct):
        raise ValueError(f"engine returned {len(pages)} rows for {len(distinct)} queries")
    return pages[codes]


def page_truth(world, intents: pd.DataFrame, pages) -> tuple[np.ndarray, np.ndarray]:
    """Hidden: the grade (0-3) and the clickbait flag of each video shown on each page.

    ``world`` is the world or its tables (e.g. :func:`mlsd.datasets.video_search.new_uploads`'s
    result); ``intents`` has one row per search with columns ``topic`` and ``concept`` (as
    returned by ``new_slang``); ``pages`` is (n_searches, k) video ids, -1 for an empty slot,
    which gets grade 0 and no flag. Returns two arrays of the pages' shape (int8, bool).
    """
    truth = all_tables(world)["video_truth"]
    pages = np.asarray(pages)
    if pages.ndim != 2 or len(pages) != len(intents):
        raise ValueError(f"pages must be (n_searches, k) with one row per intent, got {pages.shape}")
    if not np.issubdtype(pages.dtype, np.integer):
        raise ValueError(f"pages must hold integer video ids, got {pages.dtype}")
    if pages.size and (pages.min() < -1 or pages.max() >= len(truth)):
        raise ValueError(f"pages must hold video ids 0..{len(truth) - 1} or -1 for an empty slot")
    missing = {"topic", "concept"} - set(intents.columns)
    if missing:
        raise ValueError(f"intents lacks the columns {sorted(missing)}")
    row = {intent: i for i, intent in enumerate(vs.INTENTS)}
    try:
        rows = np.array([row[t, c] for t, c in zip(intents["topic"], intents["concept"])], dtype=np.int64)
    except KeyError as error:
        raise ValueError(f"unknown intent {error.args[0]!r}") from None
    empty, safe = pages < 0, np.maximum(pages, 0)
    grades = vs.grade_matrix(truth)[rows[:, None], safe]
    bait = truth["clickbait"].to_numpy(bool)[safe]
    return np.where(empty, 0, grades).astype(np.int8), bait & ~empty


ONLINE_METRICS = ("searches with a click", "clicks per search",
                  "successful searches (hidden grade >= 2)", "clicks on clickbait, share (hidden)")


def online_metrics(control, treatment, *, alpha: float = 0.05) -> dict:
    """The chapter's four online metrics, each tested between the arms.

    Each arm is ``(clicked, grades, clickbait)``: boolean clicks (n_searches, k) and the
    hidden grade and flag of each shown video (:func:`page_truth`). Returns
    :data:`ONLINE_METRICS` name -> test result (for ``ab_table`` / ``ab_numbers``):

    - searches with a click: a two-proportion test;
    - clicks per search: Welch's test on each search's clicks;
    - successful searches, a click on a video of grade >= 2: a two-proportion test (the grade
      stands in for what a platform measures after the click, such as watch time);
    - the share of clicks that went to clickbait: a ratio test with the search as the unit.
    """
    arms = []
    for name, arm in (("control", control), ("treatment", treatment)):
        if len(arm) != 3:
            raise ValueError(f"{name} must be (clicked, grades, clickbait)")
        clicked, grades, bait = (np.asarray(x) for x in arm)
        if clicked.ndim != 2 or clicked.shape != grades.shape or clicked.shape != bait.shape:
            raise ValueError(f"{name}: clicked, grades and clickbait must be 2-D of one shape, got "
                             f"{clicked.shape}, {grades.shape}, {bait.shape}")
        clicked, bait = clicked.astype(bool), bait.astype(bool)
        arms.append((clicked, (clicked & (grades >= 2)).any(axis=1), clicked & bait))
    (c, good_c, bait_c), (t, good_t, bait_t) = arms
    tests = (ab.two_proportion_test(c.any(1).sum(), len(c), t.any(1).sum(), len(t), alpha=alpha),
             ab.welch_test(c.sum(1), t.sum(1), alpha=alpha),
             ab.two_proportion_test(good_c.sum(), len(c), good_t.sum(), len(t), alpha=alpha),
             ab.ratio_test(bait_c.sum(1), c.sum(1), bait_t.sum(1), t.sum(1), alpha=alpha))
    return dict(zip(ONLINE_METRICS, tests))


# --------------------------------------------------------------------------- indexing


def append_to_index(index: Mapping, new_videos: pd.DataFrame, fields: Sequence[str]) -> dict:
    """The chapter's inverted index with ``new_videos`` appended as the next rows.

    Only the new videos' text is tokenised. Each field's counts (videos x words, ``csc``) get
    the new rows, and new columns for words no older video used; the document frequencies are
    the old ones plus the batch's, and the idf is recomputed from them with the chapter's
    formula ``log(1 + (n - df + 0.5) / (df + 0.5))``; field lengths are appended (BM25F reads
    their mean at query time). The result also keeps ``df`` so that the next batch need not
    recount it. ``index`` is not modified.

    An index built from scratch over all the videos scores every query the same (its word
    columns may come in another order).
    """
    fields = list(fields)
    needed = {"counts", "vocabulary", "idf", "length"}
    if not isinstance(index, Mapping) or needed - set(index):
        raise ValueError(f"index must be a mapping with keys {sorted(needed)}")
    if not fields or set(fields) != set(index["counts"]):
        raise ValueError(f"fields must be the index's fields {sorted(index['counts'])}, got {fields}")
    if missing := set(fields) - set(new_videos.columns):
        raise ValueError(f"new_videos lacks the text columns {sorted(missing)}")
    if len(new_videos) == 0:
        raise ValueError("new_videos is empty: nothing to append")
    old = {f: sparse.csc_matrix(index["counts"][f]) for f in fields}
    n_old = old[fields[0]].shape[0]
    vocabulary = dict(index["vocabulary"])
    for text in new_videos[fields].agg(" ".join, axis=1):
        for word in text.split():
            vocabulary.setdefault(word, len(vocabulary))
    n_words = len(vocabulary)
    counts = {}
    for f in fields:
        grown = old[f].copy()
        grown.resize((n_old, n_words))                     # columns for the new words
        batch = bag_of_words(new_videos[f].tolist(), vocabulary)[0]
        counts[f] = sparse.vstack([grown, batch], format="csc")
    df_old = index.get("df")
    if df_old is None:
        df_old = np.asarray((sum(old.values()) > 0).sum(axis=0)).ravel()
    batch_any = sum(counts[f][n_old:] for f in fields) > 0
    df = np.r_[df_old, np.zeros(n_words - len(df_old))] + np.asarray(batch_any.sum(axis=0)).ravel()
    n = n_old + len(new_videos)
    length = {f: np.r_[index["length"][f], np.asarray(counts[f][n_old:].sum(axis=1)).ravel()] for f in fields}
    return {"counts": counts, "vocabulary": vocabulary, "idf": np.log(1 + (n - df + 0.5) / (df + 0.5)),
            "length": length, "df": df}


@contextmanager
def rebound(namespace: dict, **values):
    """Within the block, the names of ``namespace`` (e.g. a notebook's ``globals()``) hold
    ``values``; on leaving it, even by an exception, each name gets back the value it had.

    The chapter's functions read the corpus from the notebook's globals (``index``,
    ``videos``...): this serves another corpus for a while without leaving it behind for the
    cells that follow. A name assigned again inside the block is restored too. Every name must
    exist in ``namespace`` already (a misspelt name would otherwise go unnoticed).
    """
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict such as globals(), got {type(namespace).__name__}")
    missing = sorted(set(values) - set(namespace))
    if missing:
        raise ValueError(f"no such names to rebind: {missing}")
    saved = {name: namespace[name] for name in values}
    namespace.update(values)
    try:
        yield
    finally:
        namespace.update(saved)


# --------------------------------------------------------------------------- timing


class StageClock:
    """Wall-clock milliseconds of each stage of a request path, request after request.

    Use one ``with clock.stage(name):`` block per stage and request; :meth:`table` then
    summarises each stage and the whole request (the sum of its stages)::

        clock = StageClock()
        for query in queries:
            with clock.stage("retrieval"):
                ...
            with clock.stage("ranking"):
                ...
        clock.table()
    """

    def __init__(self):
        self.ms: dict[str, list[float]] = {}

    @contextmanager
    def stage(self, name: str):
        """Time the block and record it under ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a stage needs a non-empty name, got {name!r}")
        start = time.perf_counter()
        yield
        self.ms.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    def table(self, total: str = "whole request") -> pd.DataFrame:
        """Per stage (in the order first timed) and for ``total``: requests, mean, p50, p99, max ms.

        Raises ``ValueError`` if nothing was timed or the stages were timed a different number
        of times (a request that skipped a stage cannot be summed).
        """
        if not self.ms:
            raise ValueError("no stage was timed")
        sizes = {len(v) for v in self.ms.values()}
        if len(sizes) != 1:
            raise ValueError(f"stages were timed unequal numbers of times: "
                             f"{ {k: len(v) for k, v in self.ms.items()} }")
        runs = {name: np.array(v) for name, v in self.ms.items()}
        runs[total] = np.sum(list(runs.values()), axis=0)
        return pd.DataFrame({name: {"requests": len(x), "mean ms": x.mean(),
                                    "p50 ms": np.percentile(x, 50), "p99 ms": np.percentile(x, 99),
                                    "max ms": x.max()} for name, x in runs.items()}).T


# --------------------------------------------------------------------------- the HTTP app


def create_search_app(search_one: Callable[[str, int], Sequence[int]], *, max_k: int = 100,
                      max_query_chars: int = 200, max_body_bytes: int = 10_000,
                      model_version: str = "1") -> FastAPI:
    """A FastAPI app that serves a search engine over HTTP.

    ``search_one(query, k)`` returns up to ``k`` video ids, best first (a -1 marks an empty
    slot and is dropped). Endpoints:

    - ``GET /health`` -> ``{"status": "ok", "model_version": ...}``;
    - ``POST /search`` with ``{"query": "cartoon soccer", "k": 10}`` (``k`` optional, 10) ->
      ``{"query": ..., "videos": [id, ...], "model_version": ...}``. A query with no known word
      is a valid request: its answer may be an empty list.

    Malformed requests get a 4xx with a JSON ``detail`` and the server keeps serving: **422**
    for a missing, non-string, blank or over-long query, a ``k`` that is not an integer in
    1..``max_k`` or an unknown key (nothing is converted: ``"10"`` is not a ``k``); **413** for
    a body over ``max_body_bytes``. An exception inside ``search_one`` is logged and answered
    with a **500** and a generic message.
    """
    max_k = check_int("max_k", max_k, minimum=1)
    max_query_chars = check_int("max_query_chars", max_query_chars, minimum=1)
    max_body_bytes = check_int("max_body_bytes", max_body_bytes, minimum=1)
    if not callable(search_one):
        raise TypeError(f"search_one must be callable, got {type(search_one).__name__}")

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        query: str = Field(min_length=1, max_length=max_query_chars)
        k: int = Field(default=10, ge=1, le=max_k)

        @field_validator("query")
        @classmethod
        def _not_blank(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("query is blank")
            return value

    app = FastAPI(title="mlsd video search", version=str(model_version))
    app.add_middleware(_BodySizeLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/health")
    def health():
        return {"status": "ok", "model_version": model_version}

    @app.post("/search")
    def search(body: SearchRequest):
        try:
            page = [int(v) for v in search_one(body.query, body.k) if int(v) >= 0][:body.k]
        except Exception:
            logger.exception("search failed for a query of %d characters", len(body.query))
            raise HTTPException(500, "internal error while searching") from None
        return {"query": body.query, "videos": page, "model_version": model_version}

    return app
