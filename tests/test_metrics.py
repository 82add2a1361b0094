import dataclasses
import math
import time

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve as sk_calibration_curve

from mlsd.evaluation.metrics import (
    DetectionMatches,
    average_precision,
    average_precision_at_k,
    average_precision_of_matches,
    calibration_curve,
    calibration_intercept_slope,
    detection_average_precision,
    expected_calibration_error,
    f1,
    hit_rate_at_k,
    iou,
    iou_matrix,
    log_loss,
    match_detections,
    mean_over_users,
    ndcg_at_k,
    normalized_cross_entropy,
    precision,
    precision_at_k,
    recall,
    recall_at_k,
    reciprocal_rank,
    roc_auc,
)
from mlsd.evaluation.ranking import top_k

N_CASES = 200  # randomized cross-checks per metric (the brief asks for at least 100)


# --------------------------------------------------------------------------- random cases


def _labels(rng, n, both_classes=True):
    """0/1 labels with a random base rate between 2% and 98% (imbalance in both directions)."""
    y = (rng.random(n) < rng.uniform(0.02, 0.98)).astype(int)
    if both_classes:
        y[:2] = (0, 1)
        rng.shuffle(y)
    return y


def _scores(rng, y):
    """Scores that carry some signal; a third of the cases rounded to create many ties."""
    s = rng.normal(size=len(y)) + y * rng.uniform(0, 2)
    kind = rng.integers(3)
    return s if kind == 0 else np.round(s, 1) if kind == 1 else np.round(s)


def _probabilities(rng, y, low=0.0, high=1.0):
    """Probabilities, half of them rounded to 1 decimal: ties and values exactly on bin edges."""
    p = np.clip(1 / (1 + np.exp(-_scores(rng, y))), low, high)
    return np.round(p, 1).clip(low, high) if rng.random() < 0.5 else p


def _cases(seed, both_classes=True):
    rng = np.random.default_rng(seed)
    for _ in range(N_CASES):
        n = int(rng.integers(2, 300))
        yield rng, _labels(rng, n, both_classes)


# --------------------------------------------------------------------------- sklearn cross-checks


def test_precision_recall_f1_match_sklearn_zero_division_0():
    count = 0
    for rng, y in _cases(0, both_classes=False):
        y_pred = (rng.random(len(y)) < rng.uniform(0, 1)).astype(int)
        if rng.random() < 0.1:
            y_pred[:] = 0  # no predicted positives: precision 0 by convention
        if rng.random() < 0.1:
            y[:] = 0  # no actual positives: recall 0 by convention
        for ours, theirs in ((precision, skm.precision_score), (recall, skm.recall_score), (f1, skm.f1_score)):
            assert ours(y, y_pred) == pytest.approx(theirs(y, y_pred, zero_division=0), abs=1e-9)
        count += 1
    assert count == N_CASES


def test_roc_auc_matches_sklearn():
    count = 0
    for rng, y in _cases(1):
        s = _scores(rng, y)
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
        count += 1
    assert count == N_CASES


def test_average_precision_matches_sklearn():
    count = 0
    for rng, y in _cases(2):
        s = _scores(rng, y)
        assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-9)
        count += 1
    assert count == N_CASES


def test_log_loss_matches_sklearn():
    count = 0
    for rng, y in _cases(3, both_classes=False):
        p = _probabilities(rng, y, 0.01, 0.99)  # away from 0/1, where the clipping constants differ
        assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p, labels=[0, 1]), abs=1e-9)
        count += 1
    assert count == N_CASES


def test_calibration_curve_matches_sklearn_uniform_bins():
    count = 0
    for rng, y in _cases(4):
        p = _probabilities(rng, y)
        n_bins = int(rng.integers(1, 21))
        mean_predicted, fraction_positive, counts = calibration_curve(y, p, n_bins=n_bins)
        sk_fraction, sk_mean = sk_calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
        np.testing.assert_allclose(mean_predicted, sk_mean, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fraction_positive, sk_fraction, rtol=0, atol=1e-9)
        assert counts.sum() == len(y) and (counts > 0).all()
        count += 1
    assert count == N_CASES


def test_calibration_curve_matches_sklearn_quantile_bins():
    count = 0
    for rng, y in _cases(14):
        p = _probabilities(rng, y)
        n_bins = int(rng.integers(1, 21))
        mean_predicted, fraction_positive, counts = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
        sk_fraction, sk_mean = sk_calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
        np.testing.assert_allclose(mean_predicted, sk_mean, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fraction_positive, sk_fraction, rtol=0, atol=1e-9)
        assert counts.sum() == len(y)
        count += 1
    assert count == N_CASES


def test_quantile_bins_hold_equal_mass_where_predictions_crowd_near_zero():
    rng = np.random.default_rng(11)
    p = rng.beta(0.5, 30, 100_000)  # click-through rates: almost all below 0.1
    y = (rng.random(len(p)) < p).astype(int)
    _, _, uniform = calibration_curve(y, p, n_bins=10)
    _, _, quantile = calibration_curve(y, p, n_bins=10, strategy="quantile")
    assert uniform[0] > 0.95 * len(p)  # one bin holds nearly everything
    assert quantile.min() >= 0.099 * len(p) and quantile.max() <= 0.101 * len(p)
    assert expected_calibration_error(y, p, strategy="quantile") < 0.005
    assert expected_calibration_error(y, 2 * p, strategy="quantile") > expected_calibration_error(y, 2 * p) > 0


def test_calibration_intercept_and_slope_recover_a_known_miscalibration():
    rng = np.random.default_rng(12)
    p = 1 / (1 + np.exp(-rng.normal(-1, 1.5, 200_000)))
    logit = np.log(p / (1 - p))
    for a, b in ((0.0, 1.0), (0.5, 0.6), (-0.3, 1.4)):  # truth: P(y) = sigmoid(a + b logit(p))
        y = (rng.random(len(p)) < 1 / (1 + np.exp(-(a + b * logit)))).astype(int)
        intercept, slope = calibration_intercept_slope(y, p)
        assert intercept == pytest.approx(a, abs=0.03) and slope == pytest.approx(b, abs=0.03)


@pytest.mark.parametrize("y, p, match", [
    ([0, 1, 1], [0.2, 1.0, 0.7], "strictly between 0 and 1"),
    ([1, 1, 1], [0.2, 0.5, 0.7], "only one class"),
    ([0, 1], [0.2, 0.5, 0.7], "different lengths"),
])
def test_calibration_intercept_and_slope_refuse_bad_input(y, p, match):
    with pytest.raises(ValueError, match=match):
        calibration_intercept_slope(y, p)


def test_calibration_curve_refuses_an_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        calibration_curve([0, 1], [0.2, 0.7], strategy="kmeans")


def test_ndcg_linear_gain_matches_sklearn():
    rng = np.random.default_rng(5)
    count = 0
    for _ in range(N_CASES):
        n = int(rng.integers(2, 40))
        grades = rng.integers(0, 5, n) * (rng.random(n) < 0.5)  # many unjudged (grade 0) items
        grades[rng.integers(n)] = rng.integers(1, 5)  # at least one relevant item
        scores = rng.permutation(n).astype(float)  # no ties: the ranking is unambiguous
        k = int(rng.integers(1, n + 3))
        ranked = list(np.argsort(-scores))
        relevance = {i: int(g) for i, g in enumerate(grades)}
        expected = skm.ndcg_score([grades], [scores], k=k)  # its ideal DCG also uses all judgements
        assert ndcg_at_k(ranked, relevance, k) == pytest.approx(expected, abs=1e-9)
        count += 1
    assert count == N_CASES


# --------------------------------------------------------------------------- hand-worked cases


def test_average_precision_at_k_min_and_all_differ_for_a_user_with_more_than_k_relevant():
    ranked = ["a", "x", "b", "c", "y"]
    relevant = {"a", "b", "c", "d", "e", "f"}  # 6 relevant items, k = 3
    # top 3: a (hit, P@1 = 1), x (miss), b (hit, P@3 = 2/3): the sum of P@i rel_i is 1 + 2/3 = 5/3
    # "min": D = min(3, 6) = 3 -> 5/9;  "all": D = 6 -> 5/18
    assert average_precision_at_k(ranked, relevant, 3) == pytest.approx(5 / 9)
    assert average_precision_at_k(ranked, relevant, 3, denominator="all") == pytest.approx(5 / 18)
    # a perfect top 3 still scores only 3/6 with "all", 1 with "min"
    assert average_precision_at_k(["a", "b", "c"], relevant, 3, denominator="all") == pytest.approx(0.5)
    assert average_precision_at_k(["a", "b", "c"], relevant, 3) == 1.0


def test_average_precision_at_k_min_and_all_agree_when_relevant_fit_in_k():
    # relevant {a, b} (2 <= k = 3): same sum 1 + 2/3 = 5/3, D = 2 either way -> 5/6
    for denominator in ("min", "all"):
        assert average_precision_at_k(["a", "x", "b", "c"], {"a", "b"}, 3, denominator) == pytest.approx(5 / 6)


def test_mean_reciprocal_rank_small_example():
    ranked = {"u1": ["a", "b", "c"], "u2": ["x", "y", "a"], "u3": ["x", "y", "z"]}
    relevant = {"u1": {"a"}, "u2": {"a", "b"}, "u3": {"a"}}
    # u1: first hit at rank 1 -> 1; u2: rank 3 -> 1/3; u3: none -> 0; MRR = (1 + 1/3 + 0) / 3 = 4/9
    assert mean_over_users(reciprocal_rank, ranked, relevant) == pytest.approx(4 / 9)
    # with a cut-off k = 2, u2's hit at rank 3 no longer counts: (1 + 0 + 0) / 3
    assert mean_over_users(reciprocal_rank, ranked, relevant, k=2) == pytest.approx(1 / 3)


def test_ndcg_graded_with_both_gains():
    ranked = ["b", "a", "c", "d"]
    relevance = {"a": 3, "b": 2, "d": 1, "e": 3}  # "e" is relevant but not ranked; "c" is unjudged (0)
    # linear, k = 3: DCG = 2/log2(2) + 3/log2(3) + 0/log2(4); ideal grades 3, 3, 2 -> 3 + 3/log2(3) + 2/2
    linear = (2 + 3 / math.log2(3)) / (3 + 3 / math.log2(3) + 1)  # = 0.6606...
    assert ndcg_at_k(ranked, relevance, 3) == pytest.approx(linear)
    # exponential: gains 2^3 - 1 = 7, 3, 0; ideal gains 7, 7, 3 -> 7 + 7/log2(3) + 3/2
    exponential = (3 + 7 / math.log2(3)) / (7 + 7 / math.log2(3) + 1.5)  # = 0.5742...
    assert ndcg_at_k(ranked, relevance, 3, gain="exponential") == pytest.approx(exponential)
    # binary relevance (a set): both gains agree; hit at ranks 2 and 3 of {a, c}: (1/log2(3) + 1/2) / (1 + 1/log2(3))
    binary = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    for gain in ("linear", "exponential"):
        assert ndcg_at_k(["x", "a", "c"], {"a", "c"}, 3, gain=gain) == pytest.approx(binary)


def test_iou_of_two_boxes():
    # overlap of (0,0)-(2,2) and (1,1)-(3,3) is the unit square; union = 4 + 4 - 1 = 7
    assert iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert iou((0, 0, 2, 2), (0, 0, 2, 2)) == 1.0
    assert iou((0, 0, 2, 2), (5, 5, 6, 6)) == 0.0  # disjoint
    assert iou((0, 0, 2, 2), (2, 0, 4, 2)) == 0.0  # touching along an edge
    assert iou((1, 1, 1, 1), (1, 1, 1, 1)) == 0.0  # two zero-area boxes: 0, not 0/0


def test_iou_matrix_agrees_with_iou_pairwise():
    rng = np.random.default_rng(6)
    corners = rng.uniform(0, 10, size=(13, 2))
    boxes = np.hstack([corners, corners + rng.uniform(0, 5, size=(13, 2))])
    a, b = boxes[:5], boxes[5:]
    matrix = iou_matrix(a, b)
    assert matrix.shape == (5, 8)
    expected = [[iou(x, y) for y in b] for x in a]
    np.testing.assert_allclose(matrix, expected)
    np.testing.assert_allclose(matrix, iou_matrix(b, a).T)  # symmetric
    assert iou_matrix([], b).shape == (0, 8)  # an image with no detections


def test_detection_average_precision_two_images_with_a_duplicate_and_a_miss():
    ground_truth = [
        ("img1", (0, 0, 10, 10)),
        ("img1", (20, 20, 30, 30)),
        ("img2", (0, 0, 10, 10)),
        ("img2", (50, 50, 60, 60)),  # never detected: a miss
    ]
    detections = [
        ("img2", 0.7, (0, 0, 10, 10)),  # 3rd by score: TP (IoU 1)
        ("img1", 0.9, (0, 0, 10, 10)),  # 1st: TP (IoU 1)
        ("img1", 0.6, (20, 20, 30, 31)),  # 4th: TP (IoU 100/110)
        ("img1", 0.8, (0, 0, 10, 9)),  # 2nd: IoU 0.9 with an already matched box -> duplicate, FP
    ]
    # in score order: TP, FP, TP, TP; 4 ground-truth boxes
    # precision 1, 1/2, 2/3, 3/4; recall 1/4, 1/4, 2/4, 3/4; envelope 1, 3/4, 3/4, 3/4
    # AP = 1/4 * 1 + 0 * 3/4 + 1/4 * 3/4 + 1/4 * 3/4 = 5/8  (without the envelope: 0.604)
    assert detection_average_precision(detections, ground_truth) == pytest.approx(5 / 8)
    # at IoU 0.95 the 4th detection (IoU 0.909) is a FP too: TP, FP, TP, FP -> 1/4 + 1/4 * 2/3 = 5/12
    assert detection_average_precision(detections, ground_truth, iou_threshold=0.95) == pytest.approx(5 / 12)


def test_detection_matches_the_best_unmatched_ground_truth_box():
    # two objects overlapping one another; the first detection takes the one it overlaps most,
    # the second detection, closest to that same object, falls back to the other (IoU 0.6 >= 0.5)
    ground_truth = [("im", (0, 0, 10, 10)), ("im", (4, 0, 14, 10))]
    detections = [("im", 0.9, (0, 0, 10, 10)), ("im", 0.8, (1, 0, 11, 10))]
    assert iou((1, 0, 11, 10), (0, 0, 10, 10)) > iou((1, 0, 11, 10), (4, 0, 14, 10)) >= 0.5
    assert detection_average_precision(detections, ground_truth) == 1.0


def test_detection_edge_cases():
    truth = [("a", (0, 0, 1, 1))]
    assert detection_average_precision([], truth) == 0.0  # no detections: no recall
    assert detection_average_precision([("b", 0.9, (0, 0, 1, 1))], truth) == 0.0  # wrong image
    # a false positive in an image without objects ranked first halves the precision of the hit
    assert detection_average_precision([("b", 0.9, (0, 0, 1, 1)), ("a", 0.5, (0, 0, 1, 1))], truth) == 0.5


def test_binary_ranking_metrics_small_example():
    ranked, relevant = ["a", "x", "b", "y"], {"a", "b", "c"}
    assert precision_at_k(ranked, relevant, 2) == 0.5  # a of (a, x)
    assert precision_at_k(["a"], relevant, 4) == 0.25  # empty slots count as misses
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(2 / 3)  # a, b of 3 relevant
    assert hit_rate_at_k(ranked, relevant, 1) == 1.0 and hit_rate_at_k(["x", "a"], relevant, 1) == 0.0
    assert reciprocal_rank(["x", "y", "b"], relevant) == pytest.approx(1 / 3)
    # a mapping is read as the ids with a grade > 0 by the binary metrics
    assert recall_at_k(ranked, {"a": 2, "b": 1, "c": 1, "x": 0}, 3) == pytest.approx(2 / 3)


def test_metrics_defined_without_relevant_items():
    assert precision_at_k(["a", "b"], set(), 2) == 0.0
    assert hit_rate_at_k(["a", "b"], set(), 2) == 0.0
    assert reciprocal_rank(["a", "b"], set()) == 0.0
    assert precision_at_k([], {"a"}, 3) == 0.0  # nothing ranked


def test_precision_recall_f1_small_example():
    y_true, y_pred = [1, 1, 0, 0, 1], [1, 0, 1, 0, 1]  # TP 2, FP 1, FN 1
    assert precision(y_true, y_pred) == pytest.approx(2 / 3)
    assert recall(y_true, y_pred) == pytest.approx(2 / 3)
    assert f1(y_true, y_pred) == pytest.approx(2 / 3)
    assert precision([1, 0], [0, 0]) == 0.0 and recall([0, 0], [1, 0]) == 0.0 and f1([0, 0], [0, 0]) == 0.0


def test_roc_auc_counts_ties_as_one_half():
    # pairs (pos, neg): (0.8, 0.1) correct, (0.8, 0.5) correct, (0.5, 0.1) correct, (0.5, 0.5) tie -> 3.5 / 4
    assert roc_auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.1]) == pytest.approx(3.5 / 4)


# --------------------------------------------------------------------------- properties


def test_a_perfect_ranking_scores_one():
    grades = {"a": 3, "b": 2, "c": 1, "d": 1}
    ranked = ["a", "b", "c", "d", "x", "y"]  # relevant first, in decreasing grade
    for k in (1, 3, 6):
        assert average_precision_at_k(ranked, grades, k) == 1.0
        assert ndcg_at_k(ranked, grades, k) == pytest.approx(1.0)
        assert ndcg_at_k(ranked, grades, k, gain="exponential") == pytest.approx(1.0)
    assert average_precision_at_k(ranked, grades, 4, denominator="all") == 1.0
    assert reciprocal_rank(ranked, grades) == 1.0
    y = np.array([0, 1, 0, 1, 1, 0, 0])
    assert roc_auc(y, y + 0.1) == 1.0
    assert average_precision(y, y * 2.0) == 1.0


def test_random_scores_give_auc_one_half_and_ap_the_base_rate():
    rng = np.random.default_rng(7)
    y = (rng.random(100_000) < 0.2).astype(int)
    s = rng.random(100_000)
    assert roc_auc(y, s) == pytest.approx(0.5, abs=0.01)  # standard error ~0.002
    assert average_precision(y, s) == pytest.approx(y.mean(), abs=0.01)
    assert roc_auc(y, np.zeros(100_000)) == 0.5  # a constant score: every pair is a tie


def test_roc_auc_is_invariant_to_strictly_monotone_transforms():
    for rng, y in _cases(8):
        s = _scores(rng, y)
        auc = roc_auc(y, s)
        for transform in (np.exp, lambda x: x**3 + x, lambda x: 5 * x - 2, np.arctan):
            assert roc_auc(y, transform(s)) == pytest.approx(auc, abs=1e-12)


def test_nce_of_the_base_rate_predictor_is_one_and_better_models_score_lower():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.05, 0.95, 50_000)
    y = (rng.random(50_000) < p).astype(int)
    assert normalized_cross_entropy(y, np.full(len(y), y.mean())) == pytest.approx(1.0, abs=1e-12)
    assert normalized_cross_entropy(y, p) < 1.0


def test_ece_of_calibrated_probabilities_is_small_and_of_miscalibrated_ones_large():
    rng = np.random.default_rng(10)
    p = rng.random(200_000)
    y = (rng.random(200_000) < p).astype(int)  # labels drawn from the probabilities: calibrated
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p**3) > 0.1  # systematically too low


def test_calibration_curve_bins_and_counts():
    y = [0, 0, 1, 1, 1]
    p = [0.0, 0.1, 0.5, 0.55, 1.0]  # 0.1 and 0.5 sit on bin edges: they belong to the lower bin
    mean_predicted, fraction_positive, count = calibration_curve(y, p, n_bins=4)
    # bins [0, .25]: 0, .1 | (.25, .5]: .5 | (.5, .75]: .55 | (.75, 1]: 1
    np.testing.assert_allclose(mean_predicted, [0.05, 0.5, 0.55, 1.0])
    np.testing.assert_allclose(fraction_positive, [0, 1, 1, 1])
    assert count.tolist() == [2, 1, 1, 1]
    # ECE = 2/5 * 0.05 + 1/5 * 0.5 + 1/5 * 0.45 + 0 = 0.21
    assert expected_calibration_error(y, p, n_bins=4) == pytest.approx(0.21)


def test_log_loss_clips_certain_mistakes():
    # a certain, wrong prediction costs -log(1e-15) ~ 34.5 nats instead of infinity
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15), rel=1e-6)
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- mean_over_users


RANKED = {"u1": ["a", "b", "c"], "u2": ["x", "y"], "u4": ["a", "b"]}  # u4 is not in RELEVANT
RELEVANT = {"u1": {"a", "c"}, "u2": set(), "u3": {"z"}}  # u2: nothing relevant; u3: no list


def test_mean_over_users_skips_users_without_relevant_items_by_default():
    # recall@2: u1 = 1/2 (a of a, c); u2 skipped; u3 has no list -> 0; u4 ignored
    assert mean_over_users(recall_at_k, RANKED, RELEVANT, k=2) == pytest.approx((0.5 + 0) / 2)


def test_mean_over_users_can_count_users_without_relevant_items_as_zero():
    expected = (0.5 + 0 + 0) / 3
    assert mean_over_users(recall_at_k, RANKED, RELEVANT, k=2, skip_users_without_relevant=False) == pytest.approx(expected)


def test_mean_over_users_scores_users_without_predictions_zero():
    relevant = {"u1": {"a"}, "u5": {"a"}, "u6": {"a"}}
    ranked = {"u1": ["a"], "u5": []}  # u5: an empty list; u6: no list at all
    for metric in (precision_at_k, recall_at_k, hit_rate_at_k, average_precision_at_k, ndcg_at_k):
        assert mean_over_users(metric, ranked, relevant, k=1) == pytest.approx(1 / 3)


def test_mean_over_users_passes_keyword_arguments_to_the_metric():
    ranked = {"u": ["a", "x", "b"]}
    relevant = {"u": {"a", "b", "c", "d"}}
    # sum of P@i rel_i over the top 3 = 1 + 2/3; "all": / 4, "min": / 3
    assert mean_over_users(average_precision_at_k, ranked, relevant, k=3, denominator="all") == pytest.approx(5 / 12)
    assert mean_over_users(average_precision_at_k, ranked, relevant, k=3) == pytest.approx(5 / 9)
    graded = {"u": {"a": 1, "b": 2}}
    assert mean_over_users(ndcg_at_k, ranked, graded, k=3, gain="exponential") == ndcg_at_k(
        ranked["u"], graded["u"], 3, gain="exponential"
    )


@pytest.mark.parametrize("relevant", [{}, {"u2": set()}, {"u2": {"a": 0}}])
def test_mean_over_users_raises_when_no_user_is_left(relevant):
    with pytest.raises(ValueError, match="no user left to average"):
        mean_over_users(recall_at_k, RANKED, relevant, k=2)


def test_mean_over_users_counting_zeros_leaves_users_to_average():
    assert mean_over_users(recall_at_k, RANKED, {"u2": set()}, k=2, skip_users_without_relevant=False) == 0.0


# --------------------------------------------------------------------------- bad input

NAN, INF = float("nan"), float("inf")
LABEL_METRICS = [precision, recall, f1]  # (y_true, y_pred)
SCORE_METRICS = [roc_auc, average_precision]  # (y_true, y_score)
PROBABILITY_METRICS = [log_loss, normalized_cross_entropy, calibration_curve, expected_calibration_error]
CLASSIFICATION = LABEL_METRICS + SCORE_METRICS + PROBABILITY_METRICS


def _cases_for(metrics, args, error, message):
    return [pytest.param(f, args, error, message, id=f"{f.__name__}-{message}") for f in metrics]


BAD_CLASSIFICATION = [
    *_cases_for(CLASSIFICATION, ([0, 1, 1], [0, 1]), ValueError, r"y_true and y_\w+ have different lengths: 3 and 2"),
    *_cases_for(CLASSIFICATION, ([], []), ValueError, "y_true is empty"),
    *_cases_for(CLASSIFICATION, ([0, 2], [0, 1]), ValueError, "y_true must contain only 0 and 1, got 2 at index 1"),
    *_cases_for(CLASSIFICATION, ([0, -1.0], [0, 1]), ValueError, "y_true must contain only 0 and 1, got -1.0"),
    *_cases_for(CLASSIFICATION, ([0, NAN], [0, 1]), ValueError, "y_true must contain only 0 and 1, got nan"),
    *_cases_for(CLASSIFICATION, (["no", "yes"], [0, 1]), ValueError, "y_true must contain only 0 and 1"),
    *_cases_for(CLASSIFICATION, ([[0, 1]], [[0, 1]]), ValueError, r"y_true must be 1-D, got shape \(1, 2\)"),
    *_cases_for(LABEL_METRICS, ([0, 1], [0, 0.5]), ValueError, "y_pred must contain only 0 and 1, got 0.5"),
    *_cases_for(SCORE_METRICS, ([0, 1], [0.2, NAN]), ValueError, r"y_score must be finite \(no NaN or infinity\), got nan"),
    *_cases_for(SCORE_METRICS, ([0, 1], [-INF, 0.2]), ValueError, "y_score must be finite .* got -inf at index 0"),
    *_cases_for(SCORE_METRICS, ([0, 1], ["a", "b"]), ValueError, "y_score must contain numbers"),
    *_cases_for(PROBABILITY_METRICS, ([0, 1], [0.2, NAN]), ValueError, "y_prob must be finite"),
    *_cases_for(PROBABILITY_METRICS, ([0, 1], [0.2, 1.5]), ValueError, r"y_prob must contain probabilities in \[0, 1\], got 1.5"),
    *_cases_for(PROBABILITY_METRICS, ([0, 1], [-0.1, 0.5]), ValueError, r"probabilities in \[0, 1\], got -0.1"),
    pytest.param(roc_auc, ([1, 1], [0.2, 0.3]), ValueError, "ROC-AUC is undefined when y_true has only one class", id="auc-1"),
    pytest.param(roc_auc, ([0, 0], [0.2, 0.3]), ValueError, "only one class", id="auc-0"),
    pytest.param(average_precision, ([0, 0], [0.2, 0.3]), ValueError, "undefined when y_true has no positives", id="ap"),
    pytest.param(normalized_cross_entropy, ([1, 1], [0.2, 0.3]), ValueError, "only one class", id="nce-1"),
    pytest.param(normalized_cross_entropy, ([0, 0], [0.2, 0.3]), ValueError, "only one class", id="nce-0"),
]


@pytest.mark.parametrize("metric, args, error, message", BAD_CLASSIFICATION)
def test_bad_classification_input_is_named(metric, args, error, message):
    with pytest.raises(error, match=message):
        metric(*args)


@pytest.mark.parametrize("metric", [calibration_curve, expected_calibration_error])
@pytest.mark.parametrize("n_bins, error, message", [(0, ValueError, "n_bins must be >= 1"), (2.5, TypeError, "n_bins must be an integer")])
def test_bad_n_bins(metric, n_bins, error, message):
    with pytest.raises(error, match=message):
        metric([0, 1], [0.2, 0.8], n_bins=n_bins)


K_METRICS = [precision_at_k, recall_at_k, hit_rate_at_k, average_precision_at_k, ndcg_at_k, reciprocal_rank]


@pytest.mark.parametrize("metric", K_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "ranked, relevant, k, error, message",
    [
        (["a", "b"], {"a"}, 0, ValueError, "k must be >= 1, got 0"),
        (["a", "b"], {"a"}, -2, ValueError, "k must be >= 1"),
        (["a", "b"], {"a"}, 1.5, TypeError, "k must be an integer, got float"),
        (["a", "b"], {"a"}, True, TypeError, "k must be an integer"),
        (["a", "b", "a"], {"a"}, 2, ValueError, "ranked contains item 'a' more than once"),
        ("ab", {"a"}, 2, TypeError, "ranked must be a sequence of item ids, not a string"),
        (["a", "b"], "a", 2, TypeError, "relevant must be a set of item ids or a mapping"),
        (["a", "b"], {"a": -1}, 2, ValueError, "relevance grades must be >= 0, got -1 for 'a'"),
        (["a", "b"], {"a": NAN}, 2, ValueError, "relevance grade of 'a' must be a finite number"),
    ],
)
def test_bad_ranking_input_is_named(metric, ranked, relevant, k, error, message):
    with pytest.raises(error, match=message):
        metric(ranked, relevant, k)


@pytest.mark.parametrize("metric", [recall_at_k, average_precision_at_k, ndcg_at_k], ids=lambda f: f.__name__)
@pytest.mark.parametrize("relevant", [set(), {}, {"a": 0}], ids=["empty set", "empty mapping", "only grade 0"])
def test_metrics_undefined_without_relevant_items_raise(metric, relevant):
    with pytest.raises(ValueError, match="undefined when there are no relevant items"):
        metric(["a", "b"], relevant, 2)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: average_precision_at_k(["a"], {"a"}, 1, denominator="max"), "denominator must be one of 'min', 'all', got 'max'"),
        (lambda: ndcg_at_k(["a"], {"a"}, 1, gain="log"), "gain must be one of 'linear', 'exponential', got 'log'"),
    ],
)
def test_unknown_option_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((recall_at_k, ["a"], {"u": {"a"}}), TypeError, "ranked_lists must be a mapping user"),
        ((recall_at_k, {"u": ["a"]}, [{"a"}]), TypeError, "relevant must be a mapping user"),
    ],
)
def test_mean_over_users_bad_arguments(args, error, message):
    with pytest.raises(error, match=message):
        mean_over_users(*args, k=1)


BOX = (0, 0, 1, 1)
TRUTH = [("im", BOX)]


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: iou((2, 0, 1, 1), BOX), ValueError, r"x2 >= x1 and y2 >= y1, got \[2.0, 0.0, 1.0, 1.0\]"),
        (lambda: iou(BOX, (0, 3, 1, 1)), ValueError, "boxes_b must have x2 >= x1 and y2 >= y1"),
        (lambda: iou((0, 0, 1), BOX), ValueError, r"box_a must be 4 numbers \(x1, y1, x2, y2\)"),
        (lambda: iou(BOX, (0, 0, NAN, 1)), ValueError, "must be finite"),
        (lambda: iou_matrix([[0, 0, 1]], [BOX]), ValueError, r"boxes_a must be boxes .* of shape \(n, 4\), got shape \(1, 3\)"),
        (lambda: iou_matrix([BOX], [(0, 0, INF, 1)]), ValueError, "boxes_b must be finite"),
        (lambda: detection_average_precision([("im", 0.5, BOX)], []), ValueError, "no ground truth"),
        (lambda: detection_average_precision([("im", NAN, BOX)], TRUTH), ValueError, "detection scores must be finite"),
        (lambda: detection_average_precision([("im", 0.5, (1, 1, 0, 0))], TRUTH), ValueError, "detection boxes must have x2 >= x1"),
        (lambda: detection_average_precision([], [("im", (1, 0, 0, 1))]), ValueError, "ground-truth boxes of image 'im' must have x2 >= x1"),
        (lambda: detection_average_precision([], TRUTH, iou_threshold=0), ValueError, r"iou_threshold must be in \(0, 1\], got 0"),
        (lambda: detection_average_precision([], TRUTH, iou_threshold=1.5), ValueError, "iou_threshold must be in"),
        (lambda: detection_average_precision([], TRUTH, iou_threshold=NAN), ValueError, "iou_threshold must be a finite number"),
    ],
)
def test_bad_detection_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- detection AP from matches, images weighted (a bootstrap over images) ---------------------------

TWO_IMAGES_TRUTH = [("img1", (0, 0, 10, 10)), ("img1", (20, 20, 30, 30)), ("img2", (0, 0, 10, 10)),
                    ("img2", (50, 50, 60, 60))]
TWO_IMAGES_DETECTIONS = [("img2", 0.7, (0, 0, 10, 10)), ("img1", 0.9, (0, 0, 10, 10)),
                         ("img1", 0.6, (20, 20, 30, 31)), ("img1", 0.8, (0, 0, 10, 9))]


def _reference_detection_ap(detections, ground_truth, iou_threshold=0.5):
    """The definition step by step: one detection at a time, best score first (stable)."""
    matched = [False] * len(ground_truth)
    hits = []
    for _, (image, _, box) in sorted(enumerate(detections), key=lambda d: (-d[1][1], d[0])):
        candidates = [(iou(box, b), -g) for g, (im, b) in enumerate(ground_truth) if im == image and not matched[g]]
        overlap, g = max(candidates, default=(-1.0, 0))  # ties: the first box, as np.argmax
        hits.append(overlap >= iou_threshold)
        if hits[-1]:
            matched[-g] = True
    tp = np.cumsum(hits)
    precisions = tp / np.arange(1, len(hits) + 1)
    envelope = np.maximum.accumulate(precisions[::-1])[::-1] if hits else precisions
    return float(np.sum(np.diff(tp / len(ground_truth), prepend=0.0) * envelope))


def _detection_case(seed, n_images=6, ties=True):
    """Boxes on a small grid, so that overlaps, duplicates and misses are common."""
    rng = np.random.default_rng(seed)

    def box():
        x, y = rng.integers(0, 8, 2)
        return (int(x), int(y), int(x + rng.integers(1, 6)), int(y + rng.integers(1, 6)))

    def near(image, b):  # a detection of an object: its box, a side or two moved a unit
        x1, y1, x2, y2 = np.array(b) + rng.integers(-1, 2, 4) * (rng.random(4) < 0.3)
        return image, (int(x1), int(y1), int(max(x1, x2)), int(max(y1, y2)))

    truth = [(int(rng.integers(n_images)), box()) for _ in range(rng.integers(1, 12))]
    found = [near(*truth[g]) for g in rng.integers(0, len(truth), rng.integers(0, 15))]
    stray = [(int(rng.integers(n_images + 2)), box()) for _ in range(rng.integers(0, 15))]
    scores = rng.integers(0, 4, 30).astype(float) if ties else rng.random(30)
    return [(image, float(score), b) for (image, b), score in zip(found + stray, scores)], truth


def _copy_images(detections, truth, weights):
    """The detections and boxes with image i entered weights[i] times (copies get new ids)."""
    def copies(image):
        return [image] + [(image, k) for k in range(1, weights.get(image, 0))] if weights.get(image, 0) else []

    return ([(c, s, b) for image, s, b in detections for c in copies(image)],
            [(c, b) for image, b in truth for c in copies(image)])


def test_matches_of_the_hand_worked_case_keep_the_detections_order():
    matches = match_detections(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH)
    # by score: img1 0.9 TP, img1 0.8 duplicate FP, img2 0.7 TP, img1 0.6 TP; given order 0.7, 0.9, 0.6, 0.8
    np.testing.assert_array_equal(matches.is_tp, [True, True, True, False])
    np.testing.assert_array_equal(matches.score, [0.7, 0.9, 0.6, 0.8])
    assert list(matches.image) == ["img2", "img1", "img1", "img1"]
    assert list(matches.ground_truth_images) == ["img1", "img1", "img2", "img2"]
    assert average_precision_of_matches(matches) == pytest.approx(5 / 8)
    strict = match_detections(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH, iou_threshold=0.95)
    np.testing.assert_array_equal(strict.is_tp, [True, True, False, False])
    assert average_precision_of_matches(strict) == pytest.approx(5 / 12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        matches.is_tp = np.zeros(4, dtype=bool)


def test_matching_then_scoring_is_detection_average_precision_on_the_hand_worked_cases():
    truth = [("a", (0, 0, 1, 1))]
    cases = [
        (TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH, 0.5),
        (TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH, 0.95),
        ([("im", 0.9, (0, 0, 10, 10)), ("im", 0.8, (1, 0, 11, 10))],
         [("im", (0, 0, 10, 10)), ("im", (4, 0, 14, 10))], 0.5),
        ([], truth, 0.5),
        ([("b", 0.9, (0, 0, 1, 1))], truth, 0.5),
        ([("b", 0.9, (0, 0, 1, 1)), ("a", 0.5, (0, 0, 1, 1))], truth, 0.5),
    ]
    for detections, ground_truth, threshold in cases:
        split = average_precision_of_matches(match_detections(detections, ground_truth, threshold))
        assert split == detection_average_precision(detections, ground_truth, threshold)
    assert [average_precision_of_matches(match_detections(d, t, th)) for d, t, th in cases[2:]] == [1.0, 0.0, 0.0, 0.5]


@pytest.mark.parametrize("seed", range(40))
def test_detection_ap_agrees_with_the_step_by_step_definition_ties_included(seed):
    detections, truth = _detection_case(seed, ties=True)
    for threshold in (0.3, 0.5, 0.75):
        want = _reference_detection_ap(detections, truth, threshold)
        matches = match_detections(detections, truth, threshold)
        assert average_precision_of_matches(matches) == pytest.approx(want, abs=1e-12)
        assert average_precision_of_matches(matches) == detection_average_precision(detections, truth, threshold)


@pytest.mark.parametrize("seed", range(20))
def test_weights_of_two_on_every_image_change_nothing(seed):
    detections, truth = _detection_case(seed)
    matches = match_detections(detections, truth)
    images = set(matches.images)
    unweighted = average_precision_of_matches(matches)
    assert average_precision_of_matches(matches, {image: 2 for image in images}) == unweighted
    # an array indexed by image id is the same weighting as the mapping
    assert average_precision_of_matches(matches, np.full(max(images) + 1, 2)) == unweighted


@pytest.mark.parametrize("seed", range(20))
def test_a_weight_counts_an_image_that_many_times(seed):
    """Weight k on an image == its detections and boxes entered k times under new image ids;
    0 == the image removed. Distinct scores: a copy then sits next to its original."""
    detections, truth = _detection_case(seed, ties=False)
    matches = match_detections(detections, truth)
    rng = np.random.default_rng(100 + seed)
    weights = {image: int(rng.integers(0, 4)) for image in matches.images}
    weights[truth[0][0]] = max(weights[truth[0][0]], 1)  # some ground truth left
    want = _reference_detection_ap(*_copy_images(detections, truth, weights))
    assert average_precision_of_matches(matches, weights) == pytest.approx(want, abs=1e-12)
    weights_array = np.zeros(max(matches.images) + 1)
    weights_array[list(weights)] = list(weights.values())
    assert average_precision_of_matches(matches, weights_array) == pytest.approx(want, abs=1e-12)


def test_doubling_one_image_and_removing_another_by_hand():
    matches = match_detections(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH)
    # img2 twice: by score img1 TP, img1 FP, img2 TP (weight 2), img1 TP; 6 boxes
    # precision 1, 1/2, 3/4, 4/5; recall 1/6, 1/6, 3/6, 4/6; envelope 1, 4/5, 4/5, 4/5
    assert average_precision_of_matches(matches, {"img1": 1, "img2": 2}) == pytest.approx(1 / 6 + 3 / 6 * 4 / 5)
    copied = _copy_images(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH, {"img1": 1, "img2": 2})
    assert detection_average_precision(*copied) == pytest.approx(1 / 6 + 3 / 6 * 4 / 5)
    # img1 removed (weight 0, or missing from the mapping): one TP of img2's two boxes
    without_img1 = [d for d in TWO_IMAGES_DETECTIONS if d[0] == "img2"], [t for t in TWO_IMAGES_TRUTH if t[0] == "img2"]
    assert detection_average_precision(*without_img1) == 0.5
    assert average_precision_of_matches(matches, {"img1": 0, "img2": 1}) == 0.5
    assert average_precision_of_matches(matches, {"img2": 3}) == 0.5


@pytest.mark.parametrize("seed", range(20))
def test_a_zero_weight_removes_the_image(seed):
    detections, truth = _detection_case(seed)
    matches = match_detections(detections, truth)
    dropped = detections[0][0] if detections else truth[0][0]
    kept_truth = [t for t in truth if t[0] != dropped]
    if not kept_truth:
        return  # nothing left to recall
    kept = [d for d in detections if d[0] != dropped]
    weights = {image: float(image != dropped) for image in matches.images}
    assert average_precision_of_matches(matches, weights) == pytest.approx(
        detection_average_precision(kept, kept_truth), abs=1e-12)


def test_the_weighted_ap_skips_detections_before_any_weight():
    # the two best detections are in an image weighing 0: the curve starts at the third
    matches = DetectionMatches(image=np.array([0, 0, 1]), score=[0.9, 0.8, 0.1], is_tp=[True, False, True],
                               ground_truth_images=[0, 1])
    assert average_precision_of_matches(matches) == pytest.approx(1 / 2 + 1 / 2 * 2 / 3)
    assert average_precision_of_matches(matches, [0, 1]) == 1.0
    assert average_precision_of_matches(matches, [1, 0]) == 1.0  # the TP, then weightless ones


def test_cross_check_against_sklearn_average_precision_scaled_by_the_recall_reached():
    """The check chapter 6 cites. scikit-learn's ``average_precision_score`` of the TP flags,
    times the share of ground truth matched, is our AP *without* the precision envelope; with
    distinct scores it equals ours when the precision at each hit is at least that at every
    later hit, and is below it otherwise. Applying the envelope to scikit-learn's
    ``precision_recall_curve`` (recall scaled the same way) gives our AP in every case."""
    checked = unequal = 0
    for seed in range(60):
        detections, truth = _detection_case(seed, ties=False)
        matches = match_detections(detections, truth)
        if matches.is_tp.sum() == 0:
            continue
        ours = average_precision_of_matches(matches)
        reached = matches.is_tp.sum() / len(truth)  # recall at the end of the list
        sk_ap = skm.average_precision_score(matches.is_tp, matches.score) * reached
        precision_at_hits = (np.cumsum(matches.is_tp[matches.order]) / np.arange(1, len(matches.order) + 1))[
            matches.is_tp[matches.order]]
        if np.all(np.diff(precision_at_hits) <= 0):
            assert ours == pytest.approx(sk_ap, abs=1e-12)
        else:
            assert ours > sk_ap
            unequal += 1
        p, r, _ = skm.precision_recall_curve(matches.is_tp, matches.score)
        p, r = p[:-1][::-1], r[:-1][::-1] * reached  # by score, highest first; without the (1, 0) end
        envelope = np.maximum.accumulate(p[::-1])[::-1]
        assert ours == pytest.approx(np.sum(np.diff(r, prepend=0.0) * envelope), abs=1e-12)
        checked += 1
    assert checked >= 40 and 0 < unequal < checked  # both cases occur
    hand = match_detections(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH)  # 5/8; without the envelope 29/48
    sk_hand = skm.average_precision_score(hand.is_tp, hand.score) * 3 / 4
    assert sk_hand == pytest.approx(29 / 48) and average_precision_of_matches(hand) == pytest.approx(5 / 8)


def test_detection_matches_from_twenty_thousand_detections_score_in_milliseconds():
    """A bootstrap rescoring 1,000 resamples x 3 systems x 2 classes needs this fast (the target
    is < 2 ms per call; asserted with room for a busy machine)."""
    rng = np.random.default_rng(0)
    n_images, n = 500, 20_000
    matches = DetectionMatches(image=rng.integers(0, n_images, n), score=rng.random(n), is_tp=np.zeros(n, dtype=bool),
                               ground_truth_images=np.arange(n_images))
    weights = rng.multinomial(n_images, np.full(n_images, 1 / n_images))
    average_precision_of_matches(matches, weights)
    start = time.perf_counter()
    for _ in range(50):
        average_precision_of_matches(matches, weights)
    assert (time.perf_counter() - start) / 50 < 0.02


@pytest.mark.parametrize(
    "weights, error, message",
    [
        ({"img1": -1, "img2": 1}, ValueError, r"image_weights must be finite and >= 0, got -1 for image 'img1'"),
        ({"img1": 1, "img2": NAN}, ValueError, "image_weights must be finite and >= 0, got nan for image 'img2'"),
        ({"img1": INF}, ValueError, "must be finite and >= 0"),
        ({"img1": 0, "img2": 0}, ValueError, "ground truth weighs 0"),
        ({"img3": 1}, ValueError, "ground truth weighs 0"),
        ([1.0, 1.0], ValueError, "needs integer image ids 0..n-1; give a mapping"),
        ([[1.0, 1.0]], ValueError, "mapping image id -> weight or a 1-D array"),
    ],
)
def test_bad_image_weights_are_named(weights, error, message):
    matches = match_detections(TWO_IMAGES_DETECTIONS, TWO_IMAGES_TRUTH)
    with pytest.raises(error, match=message):
        average_precision_of_matches(matches, weights)


def test_bad_weight_arrays_and_matches_are_named():
    matches = DetectionMatches(image=[0, 2], score=[0.9, 0.8], is_tp=[True, False], ground_truth_images=[0])
    with pytest.raises(ValueError, match="image_weights must be finite and >= 0, got -1.0 at index 1"):
        average_precision_of_matches(matches, [1, -1, 1])
    with pytest.raises(ValueError, match="image_weights has 2 entries, but there is an image 2"):
        average_precision_of_matches(matches, [1, 1])
    with pytest.raises(ValueError, match="ground truth weighs 0"):
        average_precision_of_matches(matches, [0, 1, 1])
    with pytest.raises(TypeError, match="match_detections' answer"):
        average_precision_of_matches([(0, 0.9, True)])
    with pytest.raises(ValueError, match="more true positives than ground-truth boxes"):
        DetectionMatches(image=[0, 0], score=[0.9, 0.8], is_tp=[True, True], ground_truth_images=[0])
    with pytest.raises(ValueError, match="one entry per detection"):
        DetectionMatches(image=[0, 0], score=[0.9], is_tp=[True, True], ground_truth_images=[0])
    with pytest.raises(ValueError, match="is_tp must be booleans"):
        DetectionMatches(image=[0], score=[0.9], is_tp=[1], ground_truth_images=[0])
    with pytest.raises(ValueError, match="detection scores must be finite"):
        DetectionMatches(image=[0], score=[NAN], is_tp=[False], ground_truth_images=[0])


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: match_detections([("im", 0.5, BOX)], []), "no ground truth"),
        (lambda: match_detections([("im", NAN, BOX)], TRUTH), "detection scores must be finite"),
        (lambda: match_detections([("im", 0.5, (1, 1, 0, 0))], TRUTH), "detection boxes must have x2 >= x1"),
        (lambda: match_detections([], [("im", (1, 0, 0, 1))]), "ground-truth boxes of image 'im' must have x2 >= x1"),
        (lambda: match_detections([], TRUTH, iou_threshold=0), r"iou_threshold must be in \(0, 1\], got 0"),
    ],
)
def test_match_detections_validates_like_detection_average_precision(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------- beyond accuracy

from mlsd.evaluation.metrics import catalogue_coverage, intra_list_diversity  # noqa: E402


def test_catalogue_coverage_counts_distinct_items_in_the_top_k():
    lists = {"u1": ["a", "b", "c"], "u2": ["b", "d", "e"], "u3": []}
    # top 2: {a, b} | {b, d} = 3 of 5 items; top 3 adds c and e: 5 of 5
    assert catalogue_coverage(lists, "abcde", k=2) == pytest.approx(3 / 5)
    assert catalogue_coverage(lists, "abcde", k=3) == 1.0
    same_for_everyone = {u: ["a", "b"] for u in range(100)}
    assert catalogue_coverage(same_for_everyone, "abcdefghij", k=2) == pytest.approx(0.2)


def test_intra_list_diversity_is_the_share_of_pairs_with_different_labels():
    genre = {"a": "music", "b": "music", "c": "news", "d": "sports"}
    # pairs among a, b, c, d: 6; only (a, b) share a label: 5 / 6
    assert intra_list_diversity(["a", "b", "c", "d"], genre, k=4) == pytest.approx(5 / 6)
    assert intra_list_diversity(["a", "b", "c", "d"], genre, k=2) == 0.0
    assert intra_list_diversity(["a", "c", "d"], genre, k=10) == 1.0


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: catalogue_coverage({"u": ["z"]}, "ab", k=1), ValueError, "not in the catalogue"),
        (lambda: catalogue_coverage({"u": ["a"]}, "", k=1), ValueError, "catalogue is empty"),
        (lambda: catalogue_coverage({"u": ["a"]}, "ab", k=0), ValueError, "k must be >= 1"),
        (lambda: catalogue_coverage([["a"]], "ab", k=1), TypeError, "must be a mapping"),
        (lambda: intra_list_diversity(["a"], {"a": 1}, k=5), ValueError, "at least two items"),
        (lambda: intra_list_diversity(["a", "b"], {"a": 1}, k=5), ValueError, "item 'b' has no category"),
        (lambda: intra_list_diversity(["a", "a"], {"a": 1}, k=5), ValueError, "more than once"),
    ],
)
def test_beyond_accuracy_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- top_k: ranked lists cut the same way on every machine ------------------------------------------


def test_top_k_matches_a_stable_sort_with_many_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 40)).astype(float)  # few distinct values: ties everywhere
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    for k in (1, 5, 40, 100):
        want = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(top_k(scores, k), want)


def test_top_k_breaks_ties_by_the_lower_position():
    np.testing.assert_array_equal(top_k([1.0, 3.0, 3.0, 2.0, 3.0], 2), [1, 2])
    np.testing.assert_array_equal(top_k([[0.0, 0.0, 0.0]], 2), [[0, 1]])


@pytest.mark.parametrize("scores, k, error, match", [
    ([1.0, np.nan], 1, ValueError, "NaN"),
    (np.zeros((2, 2, 2)), 1, ValueError, "1-D or 2-D"),
    ([], 1, ValueError, "non-empty"),
    ([1.0], 0, ValueError, "k must be >= 1"),
    ([1.0], 1.5, TypeError, "k must be an integer"),
])
def test_top_k_refuses_bad_input(scores, k, error, match):
    with pytest.raises(error, match=match):
        top_k(scores, k)
