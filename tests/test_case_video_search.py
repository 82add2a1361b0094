"""Chapter 7's plumbing: bags of words, per-query ranking metrics, candidate tables."""

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import video_search as case
from mlsd.evaluation import metrics


# --------------------------------------------------------------------------- bags of words


def test_bag_of_words_builds_the_vocabulary_in_order_and_counts_repeats():
    counts, vocabulary = case.bag_of_words(["soccer goals goals", "", "goals cartoon"])
    assert vocabulary == {"soccer": 0, "goals": 1, "cartoon": 2}
    assert counts.toarray().tolist() == [[1, 2, 0], [0, 0, 0], [0, 1, 1]]


def test_bag_of_words_with_a_vocabulary_drops_unknown_words():
    counts, vocabulary = case.bag_of_words(["footy goals", "footy"], {"goals": 0, "match": 1})
    assert vocabulary == {"goals": 0, "match": 1}
    assert counts.shape == (2, 2)
    assert counts.toarray().tolist() == [[1, 0], [0, 0]]


def test_bag_of_words_rejects_a_single_string_and_non_strings():
    with pytest.raises(TypeError, match="sequence of strings"):
        case.bag_of_words("soccer goals")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        case.bag_of_words(["soccer", None])


# --------------------------------------------------------------------------- metrics per query


def test_ndcg_at_10_agrees_with_the_reference_metric_with_the_ideal_over_the_corpus():
    rng = np.random.default_rng(0)
    grades = rng.integers(0, 4, size=(6, 40))
    ranked = np.array([rng.permutation(40)[:10] for _ in range(6)])
    expected = [metrics.ndcg_at_k(list(r), {v: g for v, g in enumerate(row) if g > 0}, 10)
                for r, row in zip(ranked, grades)]
    assert np.allclose(case.ndcg_at_10(ranked, grades), expected)


def test_ndcg_at_10_is_one_for_the_ideal_ranking_and_counts_empty_slots_as_nothing():
    grades = np.array([[0, 3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3]])
    ideal = np.argsort(-grades, axis=1, kind="stable")[:, :10]
    assert case.ndcg_at_10(ideal, grades)[0] == pytest.approx(1.0)
    empty = np.full((1, 10), -1)
    assert case.ndcg_at_10(empty, grades)[0] == 0.0
    # only two of the best videos found: the ideal still counts the ones not retrieved
    partial = np.array([[1, 11] + [-1] * 8])
    assert 0 < case.ndcg_at_10(partial, grades)[0] < 1


def test_ndcg_at_10_rejects_bad_shapes_and_ids():
    grades = np.zeros((2, 5))
    grades[:, 0] = 1
    with pytest.raises(ValueError, match="3 rows"):
        case.ndcg_at_10(np.zeros((3, 10), dtype=int), grades)
    with pytest.raises(ValueError, match="beyond"):
        case.ndcg_at_10(np.full((2, 10), 7), grades)
    with pytest.raises(ValueError, match="integer"):
        case.ndcg_at_10(np.zeros((2, 10)), grades)


def test_reciprocal_ranks_take_the_first_video_of_the_grade():
    grades = np.array([[0, 3, 2, 0], [2, 2, 2, 2], [3, 0, 0, 0]])
    ranked = np.array([[0, 2, 1], [0, 1, 2], [0, 1, 2]])
    assert case.reciprocal_ranks(ranked, grades).tolist() == [1 / 3, 0.0, 1.0]
    assert case.reciprocal_ranks(ranked, grades, min_grade=2).tolist() == [0.5, 1.0, 1.0]


def test_candidate_recall_caps_the_count_at_a_page_of_ten():
    grades = np.zeros((2, 30))
    grades[0, :3] = 3          # three perfect videos
    grades[1, :20] = 3         # twenty: a candidate set needs ten of them
    candidates = pd.DataFrame({"query": [0, 0, 1, 1, 1] + [1] * 9,
                               "video": [0, 5, 0, 1, 2] + list(range(3, 12))})
    recall = case.candidate_recall(candidates, grades)
    assert recall.tolist() == [pytest.approx(1 / 3), 1.0]


# --------------------------------------------------------------------------- candidates


def test_union_candidates_marks_who_proposed_each_pair():
    table = case.union_candidates(text=np.array([[3, 1], [2, 0]]), tower=np.array([[1, 4], [5, 2]]))
    assert table.columns.tolist() == ["query", "video", "text", "tower"]
    assert table[["query", "video"]].values.tolist() == [[0, 1], [0, 3], [0, 4], [1, 0], [1, 2], [1, 5]]
    assert table["text"].tolist() == [True, True, False, True, True, False]
    assert table["tower"].tolist() == [True, False, True, False, True, True]
    with pytest.raises(ValueError, match="at least one"):
        case.union_candidates()


def test_ranking_from_pairs_sorts_pads_and_breaks_ties_by_id():
    ranked = case.ranking_from_pairs([0, 0, 0, 2], [7, 3, 5, 1], [0.5, 0.9, 0.5, 0.1], n_queries=3, k=3)
    assert ranked.tolist() == [[3, 5, 7], [-1, -1, -1], [1, -1, -1]]
    with pytest.raises(ValueError, match="NaN"):
        case.ranking_from_pairs([0], [1], [np.nan], n_queries=1)


def test_rank_of_counts_from_zero_with_ties_to_the_lower_id():
    assert case.rank_of([[0.1, 0.9, 0.5], [1.0, 1.0, 0.0]]).tolist() == [[2, 0, 1], [0, 1, 2]]
    with pytest.raises(ValueError, match="n_queries"):
        case.rank_of([0.1, 0.2])


def test_top_videos_is_best_first():
    scores = np.array([[0.1, 0.9, 0.5], [1.0, 1.0, 0.0]])
    assert case.top_videos(scores, 2).tolist() == [[1, 2], [0, 1]]


def test_slice_numbers_name_the_rows_the_prose_quotes():
    table = pd.DataFrame({"base": [0.6, 0.5, 0.7], "model": [0.7, 0.65, 0.72]},
                         index=["all", "a word in no title", "neither"])
    numbers = case.slice_numbers(table, "base", "model")
    assert numbers == {"slice_mismatch_base": 0.5, "slice_mismatch_model": 0.65,
                       "slice_neither_base": 0.7, "slice_neither_model": 0.72}
    with pytest.raises(ValueError, match="column"):
        case.slice_numbers(table, "bm25", "model")
