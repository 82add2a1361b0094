"""Chapter 7 (video search): the plumbing the chapter uses but does not teach.

The chapter writes what it teaches: the BM25F scorer over an inverted index, the query tower
and the re-ranker's features. Here are the parts around them: bags of words as sparse matrices,
rankings from scores or from candidate tables, the metrics per query (nDCG@10 with the ideal
over the whole corpus, reciprocal rank, candidate recall), and the numbers the prose quotes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from mlsd._checks import check_int
from mlsd.evaluation.ranking import ndcg_at_k, top_k

__all__ = ["bag_of_words", "ndcg_at_10", "reciprocal_ranks", "candidate_recall", "ranking_from_pairs",
           "union_candidates"]


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
    table = pd.crosstab([long["query"], long["video"]], long["by"]).gt(0).reset_index()
    table.columns.name = None
    return table[["query", "video", *lists]].sort_values(["query", "video"], ignore_index=True)


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
