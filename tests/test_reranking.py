import numpy as np
import pytest

from mlsd.evaluation.ranking import top_k
from mlsd.systems.reranking import boost, cap_per_group, demote, drop_blocked, filter_out, first_kept


def test_cap_per_group_by_hand():
    lists = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    groups = np.array([7, 7, 5, 7, 5])           # items 0, 1, 3 share group 7
    assert cap_per_group(lists, groups, 1).tolist() == [
        [True, False, True, False, False], [True, True, False, False, False]]
    assert cap_per_group(lists, groups, 2).tolist() == [
        [True, True, True, False, True], [True, True, True, True, False]]
    assert cap_per_group(lists, groups, 5).all()


def test_cap_per_group_matches_a_loop_and_counts_dropped_items():
    rng = np.random.default_rng(0)
    groups = rng.integers(-1, 6, 40)               # any integers, -1 included
    lists = np.stack([rng.permutation(40)[:25] for _ in range(30)])
    for m in (1, 2, 3):
        expected = np.zeros(lists.shape, bool)
        for r, row in enumerate(lists):
            seen = {}
            for j, item in enumerate(row):          # every earlier position counts
                seen[groups[item]] = seen.get(groups[item], 0) + 1
                expected[r, j] = seen[groups[item]] <= m
        assert np.array_equal(cap_per_group(lists, groups, m), expected)


def test_first_kept_keeps_order_and_refuses_short_rows():
    lists = np.array([[5, 6, 7, 8], [1, 2, 3, 4]])
    keep = np.array([[False, True, False, True], [True, True, True, False]])
    assert first_kept(lists, keep, 2).tolist() == [[6, 8], [1, 2]]
    with pytest.raises(ValueError, match="row 0 keeps 2 items, fewer than k=3"):
        first_kept(lists, keep, 3)
    with pytest.raises(ValueError, match="shape"):
        first_kept(lists, keep[:, :2], 1)
    with pytest.raises(TypeError, match="boolean"):
        first_kept(lists, keep.astype(int), 1)


def test_one_per_duplicate_group_without_blocked_items():
    # chapter 5's rule: walk down the list, drop blocked photos and repeated duplicate groups
    lists = np.array([[3, 0, 1, 2, 4, 5]])
    group = np.array([0, 0, 1, 1, 2, 3])
    blocked = np.array([False, False, False, True, False, False])
    keep = drop_blocked(lists, blocked) & cap_per_group(lists, group, 1)
    assert first_kept(lists, keep, 3).tolist() == [[0, 4, 5]]   # 3 blocked takes 2's group


def test_filter_boost_and_demote_on_scores():
    scores = np.array([[0.9, 0.5, 0.4, -np.inf], [0.1, 0.2, 0.3, 0.4]])
    assert filter_out(scores, np.array([True, False, False, False]))[:, 0].tolist() == [-np.inf] * 2
    out = boost(scores, np.array([False, False, True, True]), 1.5)
    assert out[0].tolist() == pytest.approx([0.9, 0.5, 0.6, -np.inf])
    assert np.array_equal(boost(scores, np.zeros(4, bool), 2.0), scores)
    demoted = demote(scores, np.array([[True, False, False, True], [False, True, True, False]]))
    assert [list(top_k(row, 4)) for row in demoted] == [[1, 2, 0, 3], [3, 0, 2, 1]]
    assert demoted[0, 3] == -np.inf                    # never shown stays never shown
    assert np.array_equal(demote(scores, np.zeros(scores.shape, bool)), scores)


def test_creator_cap_on_scores_equals_a_per_user_loop():
    # chapter 9's rule: among each row's 5 best, a group's third item drops below the rest
    rng = np.random.default_rng(1)
    scores = np.where(rng.random((20, 30)) < 0.2, -np.inf, rng.random((20, 30)))
    groups = rng.integers(0, 4, 30)
    lists = top_k(scores, 5)
    over = ~cap_per_group(lists, groups, 2) & np.isfinite(np.take_along_axis(scores, lists, 1))
    rows = np.broadcast_to(np.arange(20)[:, None], lists.shape)
    mask = np.zeros(scores.shape, bool)
    mask[rows[over], lists[over]] = True
    fast = demote(scores, mask)
    for r in range(20):
        slow, count = scores[r].copy(), {}
        for i in np.argsort(-scores[r], kind="stable")[:5]:
            count[groups[i]] = count.get(groups[i], 0) + 1
            if count[groups[i]] > 2 and np.isfinite(scores[r, i]):
                slow[i] -= 10.0
        assert list(top_k(fast[r], 30)) == list(top_k(slow, 30))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cap_per_group(np.array([0, 1]), np.zeros(2), 1), ValueError, "2-D"),
    (lambda: cap_per_group(np.array([[0, 5]]), np.zeros(2), 1), ValueError, "item id 5"),
    (lambda: cap_per_group(np.array([[0.0, 1.0]]), np.zeros(2), 1), TypeError, "integer"),
    (lambda: cap_per_group(np.array([[0, 1]]), np.zeros(2), 0), ValueError, "max_per_group"),
    (lambda: drop_blocked(np.array([[0, 1]]), np.zeros(2)), TypeError, "boolean"),
    (lambda: filter_out(np.zeros((2, 3)), np.zeros(2, bool)), ValueError, "broadcast"),
    (lambda: boost(np.zeros((2, 3)), np.zeros(3, bool), -1.0), ValueError, "factor"),
    (lambda: boost(np.full((1, 1), np.nan), np.zeros(1, bool), 2.0), ValueError, "NaN"),
    (lambda: demote(np.zeros((2, 3)), np.zeros((3, 2), bool)), ValueError, "shape"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_demote_orders_a_row_alone_as_within_a_matrix():
    rng = np.random.default_rng(2)
    scores = np.round(rng.random((6, 40)), 2)          # many exact ties
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    demoted = rng.random(scores.shape) < 0.3
    together = demote(scores, demoted)
    for r in range(6):
        alone = demote(scores[[r]], demoted[[r]])[0]
        assert list(top_k(alone, 40)) == list(top_k(together[r], 40))
        kept = np.isfinite(scores[r]) & ~demoted[r]
        low = demoted[r] & np.isfinite(scores[r])
        if kept.any() and low.any():
            assert together[r][low].max() < together[r][kept].min()
