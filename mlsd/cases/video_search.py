"""Chapter 7 (video search): the plumbing the chapter uses but does not teach.

The chapter writes what it teaches: the BM25F scorer over an inverted index, the query tower,
the re-ranker's features, mining retries for query expansion. Here are the parts around them:
bags of words as sparse matrices, rankings from scores or from candidate tables, the metrics
per query (nDCG@10 with the ideal over the whole corpus, reciprocal rank, candidate recall);
the A/B analysis; appending uploads to the index, timing the request path and the HTTP app;
the slang monitor's daily rates, bands and figure; and the numbers the prose quotes.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at
# runtime, and the request model is a local class built by create_search_app.

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator
from scipy import sparse

from mlsd._checks import check_int
from mlsd.datasets import video_search as vs
from mlsd.datasets.world import all_tables
from mlsd.evaluation import experiments as ab
from mlsd.evaluation.ranking import ndcg_at_k, top_k
from mlsd.evaluation.drift import binomial_band
from mlsd.systems.serving import StageClock, service_app

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

__all__ = ["bag_of_words", "ndcg_at_10", "reciprocal_ranks", "candidate_recall", "ranking_from_pairs",
           "union_candidates", "rank_of", "top_videos", "slice_numbers", "cached_search", "page_truth", "online_metrics",
           "online_numbers",
           "append_to_index", "rebound", "StageClock", "create_search_app", "no_known_word", "daily_rates",
           "binomial_band", "unknown_words", "expand_queries", "section_numbers", "plot_monitoring"]


def bag_of_words(texts, vocabulary: dict[str, int] | None = None) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """Word counts of space-separated ``texts`` as a sparse (n_texts, n_words) matrix.

    With ``vocabulary`` (word -> column), words outside it are dropped (a query word the index
    never saw); without, the vocabulary is built from the texts in order of first appearance.
    Returns the matrix (float64 counts, duplicates summed) and the vocabulary.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    grow = vocabulary is None
    vocabulary = {} if grow else vocabulary
    rows, cols = [], []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(text).__name__}")
        for word in text.split():
            j = vocabulary.get(word)
            if j is None:
                if not grow:
                    continue
                j = vocabulary[word] = len(vocabulary)
            rows.append(i)
            cols.append(j)
    counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocabulary)))
    counts.sum_duplicates()
    return counts, vocabulary


def _grades(grades, n_queries: int) -> np.ndarray:
    grades = np.asarray(grades, dtype=float)
    if grades.ndim != 2 or len(grades) != n_queries:
        raise ValueError(f"grades must be (n_queries, n_videos) with {n_queries} rows, got shape {grades.shape}")
    return grades


def _ranked(ranked) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2 or not np.issubdtype(ranked.dtype, np.integer):
        raise ValueError(f"ranked must be a 2-D integer array (queries x positions), got {ranked.dtype} {ranked.shape}")
    return ranked


def _gains(ranked: np.ndarray, grades: np.ndarray) -> np.ndarray:
    """The grade at each ranked position; an empty slot (-1) gains nothing."""
    if ranked.size and ranked.max() >= grades.shape[1]:
        raise ValueError(f"ranked holds video ids beyond the {grades.shape[1]} graded videos")
    return np.where(ranked >= 0, np.take_along_axis(grades, np.maximum(ranked, 0), axis=1), 0.0)


def ndcg_at_10(ranked, grades) -> np.ndarray:
    """Each query's nDCG@10 (linear gain): ``ranked`` (n_queries, >= 10) video ids best first
    (-1: empty), ``grades`` (n_queries, n_videos) every video's grade. The ideal is the best ten
    grades of the **whole corpus**, not of the candidates: a system that never retrieves the
    best videos cannot score 1."""
    ranked = _ranked(ranked)
    grades = _grades(grades, len(ranked))
    return ndcg_at_k(_gains(ranked, grades), grades, 10)


def reciprocal_ranks(ranked, grades, min_grade: int = 3) -> np.ndarray:
    """Each query's 1 / (position of the first video of grade >= ``min_grade``), 0 if none is ranked."""
    ranked = _ranked(ranked)
    hit = _gains(ranked, _grades(grades, len(ranked))) >= min_grade
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), 1.0 / (first + 1), 0.0)


def candidate_recall(candidates: pd.DataFrame, grades, min_grade: int = 3) -> np.ndarray:
    """Per query, the share of its videos of grade >= ``min_grade`` (in the corpus, at most ten:
    what a top ten needs) that the candidate table holds.

    ``candidates`` has columns ``query`` (row of ``grades``) and ``video``.
    """
    grades = np.asarray(grades, dtype=float)
    good = grades >= min_grade
    found = np.zeros(len(grades))
    q, v = candidates["query"].to_numpy(), candidates["video"].to_numpy()
    np.add.at(found, q, good[q, v])
    return np.minimum(found, 10) / np.maximum(np.minimum(good.sum(axis=1), 10), 1)


def union_candidates(**lists) -> pd.DataFrame:
    """The union of several retrievers' candidate lists: one row per (query, video).

    Each keyword argument is a retriever's (n_queries, k) video ids; a column of that name tells
    whether the retriever proposed the pair. Rows are sorted by query, then video.
    """
    if not lists:
        raise ValueError("give at least one retriever's candidates")
    frames = []
    for name, ids in lists.items():
        ids = _ranked(ids)
        frames.append(pd.DataFrame({"query": np.repeat(np.arange(len(ids)), ids.shape[1]),
                                    "video": ids.ravel(), "by": name}))
    long = pd.concat(frames, ignore_index=True)
    proposed = pd.DataFrame({name: long["by"].to_numpy() == name for name in lists})
    pairs = pd.concat([long[["query", "video"]], proposed], axis=1)
    return pairs.groupby(["query", "video"], sort=True).any().reset_index()


def ranking_from_pairs(query, video, score, n_queries: int, k: int = 10) -> np.ndarray:
    """The top ``k`` videos per query from scored (query, video) pairs: (n_queries, k) ids, -1
    where a query has fewer than ``k`` pairs. Ties go to the lower video id."""
    n_queries, k = check_int("n_queries", n_queries, minimum=1), check_int("k", k, minimum=1)
    frame = pd.DataFrame({"query": np.asarray(query), "video": np.asarray(video), "score": np.asarray(score, float)})
    if frame["score"].isna().any():
        raise ValueError("score holds NaN")
    frame = frame.sort_values(["query", "score", "video"], ascending=[True, False, True], kind="stable")
    frame["position"] = frame.groupby("query").cumcount()
    frame = frame[frame["position"] < k]
    out = np.full((n_queries, k), -1, dtype=np.int64)
    out[frame["query"].to_numpy(), frame["position"].to_numpy()] = frame["video"].to_numpy()
    return out


def rank_of(scores) -> np.ndarray:
    """Each video's rank per query (row), 0 for the best; ties to the lower video id."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n_queries, n_videos), got shape {scores.shape}")
    return np.argsort(np.argsort(-scores, axis=1, kind="stable"), axis=1, kind="stable")


def top_videos(scores, k: int) -> np.ndarray:
    """The ``k`` best-scored videos per query (rows of ``scores``), best first: ``top_k`` by row."""
    return top_k(scores, k)


def slice_numbers(by_slice: pd.DataFrame, baseline: str, model: str) -> dict:
    """The slice table's numbers the prose quotes: nDCG@10 of baseline and model on queries with
    a word in no title, and on queries with neither difficulty."""
    for name in (baseline, model):
        if name not in by_slice.columns:
            raise ValueError(f"{name!r} is not a column of the slice table")
    out = {}
    for key, row in (("mismatch", "a word in no title"), ("neither", "neither")):
        out[f"slice_{key}_base"] = float(by_slice.loc[row, baseline])
        out[f"slice_{key}_model"] = float(by_slice.loc[row, model])
    return out


# --------------------------------------------------------------------------- results cache and A/B analysis


def _texts(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of query strings, not one string")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must hold strings")
    return texts


def bag(text: str) -> str:
    """A query's words, deduplicated and sorted: the key of a query as a bag of words."""
    return " ".join(sorted(set(text.split())))


def cached_search(search: Callable, texts, **kwargs) -> np.ndarray:
    """``search(texts, **kwargs)`` computed once per distinct bag of words: a results cache.

    The chapter's system ignores word order and repeats, so two searches with the same words get
    the same page; this searches each distinct bag once and returns one row per text. (Only for
    an engine of which that holds.)
    """
    texts = _texts("texts", texts)
    if not texts:
        raise ValueError("texts is empty")
    keys, rows = np.unique([bag(t) for t in texts], return_inverse=True)
    pages = np.asarray(search(list(keys), **kwargs))
    if len(pages) != len(keys):
        raise ValueError(f"search returned {len(pages)} rows for {len(keys)} queries")
    return pages[rows]


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
    empty, safe = pages < 0, np.maximum(pages, 0)
    grades = np.take_along_axis(vs.intent_grades(world, intents), safe, axis=1)
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


def online_numbers(online: dict, n_searches: int) -> dict:
    """The A/B section's numbers for the prose: each metric's ``ab_numbers`` under the prefixes
    ``ab_ctr``, ``ab_clicks``, ``ab_success`` and ``ab_bait`` (in :data:`ONLINE_METRICS`' order),
    the searches in all and in the treatment arm, and the searches per arm needed to detect the
    observed difference in searches with a click (5 % level, 80 % power)."""
    if list(online) != list(ONLINE_METRICS):
        raise ValueError(f"online must be online_metrics' answer, with keys {ONLINE_METRICS}")
    ctr = online[ONLINE_METRICS[0]]
    numbers = {"ab_searches": check_int("n_searches", n_searches, minimum=1), "ab_per_arm": ctr.n_b,
               "ab_needed": ab.sample_size_two_proportions(ctr.rate_a, ctr.rate_b)}
    for short, result in zip(("ctr", "clicks", "success", "bait"), online.values()):
        numbers |= ab.ab_numbers(f"ab_{short}", result)
    return numbers


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

    app = service_app("mlsd video search", model_version, max_body_bytes)

    @app.post("/search")
    def search(body: SearchRequest):
        try:
            page = [int(v) for v in search_one(body.query, body.k) if int(v) >= 0][:body.k]
        except Exception:
            logger.exception("search failed for a query of %d characters", len(body.query))
            raise HTTPException(500, "internal error while searching") from None
        return {"query": body.query, "videos": page, "model_version": model_version}

    return app


# --------------------------------------------------------------------------- monitoring: new slang


def no_known_word(texts, *vocabularies) -> np.ndarray:
    """True for each text none of whose words is in any of ``vocabularies`` (an empty text too)."""
    texts = _texts("texts", texts)
    if not vocabularies:
        raise ValueError("give at least one vocabulary")
    return np.array([not any(w in v for w in t.split() for v in vocabularies) for t in texts])


def daily_rates(day, **flags) -> pd.DataFrame:
    """Per day, the number of searches and the share of each boolean flag (one per search)."""
    day = np.asarray(day)
    if day.ndim != 1 or not flags:
        raise ValueError("give a 1-d day per search and at least one flag")
    for name, flag in flags.items():
        if np.asarray(flag).shape != day.shape:
            raise ValueError(f"flag {name!r} needs one value per search ({len(day)})")
    frame = pd.DataFrame({name: np.asarray(f, dtype=float) for name, f in flags.items()})
    out = frame.groupby(day).mean()
    out.insert(0, "searches", pd.Series(day).value_counts().sort_index().to_numpy())
    return out.rename_axis("day")


def unknown_words(texts, day, known, top: int = 3) -> pd.DataFrame:
    """Per day, the ``top`` most typed query words that are in none of the ``known`` sets."""
    texts = _texts("texts", texts)
    if len(texts) != len(day):
        raise ValueError("give one day per text")
    words = pd.DataFrame({"day": np.asarray(day), "word": [t.split() for t in texts]})
    words = words.explode("word").dropna()
    words = words[~words["word"].map(lambda w: any(w in k for k in known))]
    counts = words.value_counts(["day", "word"]).rename("searches").reset_index()
    counts = counts.sort_values(["day", "searches", "word"], ascending=[True, False, True])
    return counts.groupby("day").head(top).set_index(["day", "word"])


def expand_queries(texts, rules: Mapping[str, str]) -> list[str]:
    """Each text with ``rules[word]`` appended for every word of it that has a rule."""
    texts = _texts("texts", texts)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in rules.items()):
        raise TypeError("rules must map words to words")
    return [" ".join([t, *(rules[w] for w in t.split() if w in rules)]) for t in texts]


def section_numbers(daily: pd.DataFrame, caught: Mapping, alarm_day: Mapping,
                    recovered: pd.DataFrame, gains: Mapping, without_slang: float,
                    tower_check: Mapping, rules: Mapping, support: pd.DataFrame,
                    **settings) -> dict:
    """The numbers the section's prose quotes, named ``mon_*`` (``settings``: ints as given).

    ``daily`` holds the deployed and ``, fixed`` rates by day; ``caught`` the outcome of
    ``evaluate_alarms`` per signal and ``alarm_day`` its day (None: never); ``recovered`` the
    nDCG@10 per system (rows deployed, query expansion, retrained tower); ``gains`` the paired
    intervals of each fix's gain; ``tower_check`` the tower's validation nDCG@10 (deployed,
    retrained); ``rules`` the mined expansion rules and ``support`` the mined pairs' counts.
    """
    needed = {"deployed", "query expansion", "retrained tower"}
    if not needed <= set(recovered.index) or not needed - {"deployed"} <= set(gains):
        raise ValueError(f"recovered and gains need the systems {sorted(needed)}")
    if not rules:
        raise ValueError("no rule was mined: the section's prose needs one")
    word, partner = next(iter(rules.items()))
    fix_day = settings["fix_day"]
    ctr, fixed_days = caught["CTR"], daily.index >= fix_day
    out = {f"mon_{k}": v for k, v in settings.items()}
    out |= {"mon_last_day": int(daily.index.max()),
            "mon_zero_alarm_day": alarm_day["zero-result rate"],
            "mon_zero_delay": caught["zero-result rate"]["delay"],
            "mon_zero_peak": daily["zero-result rate"].max(),
            "mon_zero_fixed": daily.loc[fixed_days, "zero-result rate, fixed"].max(),
            "mon_ctr_verdict": (f"alarms on day {alarm_day['CTR']}" if ctr["detected"]
                                else "never leaves its band"),
            "mon_ctr_low": daily["CTR"].min(), "mon_ctr_high": daily["CTR"].max(),
            "mon_rule_word": word, "mon_rule_partner": partner,
            "mon_rule_support": int(support.loc[(support["word"] == word)
                                                & (support["partner"] == partner),
                                                "retries"].iloc[0]),
            "mon_without_slang": without_slang,
            "mon_tower_before": tower_check["deployed"],
            "mon_tower_after": tower_check["retrained"]}
    for name, key in (("deployed", "deployed"), ("query expansion", "expansion"),
                      ("retrained tower", "retrained")):
        out[f"mon_ndcg_{key}"] = recovered.loc[name, "nDCG@10"]
        if name in gains:
            out[f"mon_gain_{key}_low"], out[f"mon_gain_{key}_high"] = gains[name]
    return out


def plot_monitoring(axes, daily: pd.DataFrame, bands: Mapping, alarm_day, fix_day,
                    recovered: pd.DataFrame, reference: float) -> None:
    """The section's figure: two daily rates with their bands, alarm and fix day (``axes`` 0
    and 1: columns of ``daily`` named as ``bands``' keys, a ``<name>, fixed`` column for the
    fixed system), and nDCG@10 with 95 % intervals per system (``axes[2]``; ``recovered``
    has columns nDCG@10, low, high) against a ``reference`` line."""
    for ax, (name, (low, high)) in zip(axes[:2], bands.items()):
        ax.fill_between(daily.index, low, high, color="0.85", step="mid", label="band")
        ax.plot(daily.index, daily[name], "o-", color="#0072B2", label="deployed")
        fixed = daily[f"{name}, fixed"].where(daily.index >= fix_day)
        ax.plot(daily.index, fixed, "s--", color="#009E73", label="with the fix")
        if alarm_day is not None:
            ax.axvline(alarm_day, color="#D55E00", lw=1, label="first alarm")
        ax.set(xlabel="day", title=name)
    axes[0].legend(loc="upper left")
    ax, y = axes[2], recovered["nDCG@10"].to_numpy()
    err = np.vstack([y - recovered["low"].to_numpy(), recovered["high"].to_numpy() - y])
    ax.barh(recovered.index[::-1], y[::-1], xerr=err[:, ::-1], color="#0072B2", capsize=3)
    ax.axvline(reference, color="0.3", ls=":", label="football, reference days")
    ax.set(xlabel="nDCG@10, slang searches after the fix day", xlim=(0, 1))
    ax.legend(loc="upper right")
