"""mlsd.evaluation.ranking over score matrices: top_k_mask, top_k_allowed and ndcg_at_k.

(``top_k`` itself is tested in test_metrics.py.) ``ndcg_at_k`` over matrices is checked
against the one-list definition in :func:`mlsd.evaluation.metrics.ndcg_at_k`.
"""

import numpy as np
import pytest

from mlsd.evaluation import metrics
from mlsd.evaluation.ranking import ndcg_at_k, top_k, top_k_allowed, top_k_mask


def _stable_best(row, allowed, k):
    """Reference: allowed positions sorted by descending score, ties to the lower position."""
    cols = [j for j in np.argsort(-row, kind="stable") if allowed[j]]
    return cols[:k]


def test_top_k_mask_matches_a_stable_sort_of_the_allowed_cells():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rows, items, k = rng.integers(1, 6), rng.integers(1, 12), int(rng.integers(1, 8))
        scores = rng.integers(0, 4, (rows, items)).astype(float)   # many ties
        allowed = rng.random((rows, items)) < 0.6
        mask = top_k_mask(scores, k, allowed)
        for r in range(rows):
            assert set(np.flatnonzero(mask[r])) == set(_stable_best(scores[r], allowed[r], k))


def test_top_k_mask_shares_one_row_of_scores_and_breaks_ties_low():
    allowed = np.array([[True, True, True, True], [False, True, True, False],
                        [False, False, False, False]])
    mask = top_k_mask([1.0, 2.0, 2.0, 2.0], 2, allowed)
    np.testing.assert_array_equal(mask, [[False, True, True, False],
                                         [False, True, True, False],
                                         [False, False, False, False]])


def test_top_k_allowed_is_top_k_among_the_allowed_cells():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 3, (50, 9)).astype(float)
    allowed = rng.random((50, 9)) < 0.7
    allowed[:, :3] = True                                   # every row has at least 3
    best = top_k_allowed(scores, 3, allowed)
    for r in range(50):
        assert list(best[r]) == _stable_best(scores[r], allowed[r], 3)
    np.testing.assert_array_equal(top_k_allowed(scores, 2, np.ones_like(allowed)),
                                  top_k(scores, 2))


@pytest.mark.parametrize("call, error, match", [
    (lambda: top_k_mask([[1.0, 2.0]], 1, [[1, 0]]), TypeError, "boolean"),
    (lambda: top_k_mask([1.0, 2.0, 3.0], 1, np.ones((2, 2), bool)), ValueError, "do not fit"),
    (lambda: top_k_mask(np.ones((3, 2)), 1, np.ones((2, 2), bool)), ValueError, "do not fit"),
    (lambda: top_k_mask([np.nan, 1.0], 1, np.ones((1, 2), bool)), ValueError, "NaN"),
    (lambda: top_k_mask([1.0, 2.0], 0, np.ones((1, 2), bool)), ValueError, "k must be"),
    (lambda: top_k_allowed([1.0, 2.0], 2, np.array([[True, False]])), ValueError, "row 0"),
])
def test_top_k_mask_and_allowed_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_ndcg_at_k_matches_the_one_list_definition():
    rng = np.random.default_rng(2)
    for _ in range(200):
        n_items, k = int(rng.integers(3, 15)), int(rng.integers(1, 8))
        grades = rng.integers(0, 3, n_items)
        grades[rng.integers(n_items)] = 2                   # at least one relevant item
        ranked = rng.permutation(n_items)[: rng.integers(1, n_items + 1)]
        want = metrics.ndcg_at_k(list(ranked), dict(enumerate(grades.tolist())), k)
        gains = grades[ranked][None, :]
        assert ndcg_at_k(gains, grades, k)[0] == pytest.approx(want, rel=1e-12)


def test_ndcg_at_k_per_row_ideal_and_hand_worked_case():
    # row 0: grades 2, 0, 1 at ranks 1-3; judged grades {2, 1, 1}: ideal 2, 1, 1
    gains = np.array([[2, 0, 1], [0, 0, 1]])
    ideal = np.array([[1, 2, 1], [1, 0, 0]])
    d = 1 / np.log2([2, 3, 4])
    want0 = (2 * d[0] + 1 * d[2]) / (2 * d[0] + d[1] + d[2])
    want1 = d[2] / d[0]
    np.testing.assert_allclose(ndcg_at_k(gains, ideal, 3), [want0, want1], rtol=1e-12)
    assert ndcg_at_k([[2, 2, 2]], [2, 2, 2, 2], 3)[0] == pytest.approx(1.0)   # perfect
    assert ndcg_at_k([[1, 1]], [2, 2], 5)[0] == pytest.approx(0.5)            # k past the list


@pytest.mark.parametrize("gains, ideal, error, match", [
    ([1, 0], [1], ValueError, "2-D"),
    ([[1, 0]], [[1], [1]], ValueError, "rows"),
    ([[1, -1]], [1], ValueError, ">= 0"),
    ([[1, np.nan]], [1], ValueError, "finite"),
    ([[0, 0], [1, 0]], [[0, 0], [1, 0]], ValueError, "row 0"),
])
def test_ndcg_at_k_refuses_bad_input(gains, ideal, error, match):
    with pytest.raises(error, match=match):
        ndcg_at_k(gains, ideal, 2)
