"""mlsd.cases.street_view_blurring: Chapter 6's plumbing, checked by brute force and by hand."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from mlsd.cases import street_view_blurring as case
from mlsd.datasets import street_view_blurring as sv
from mlsd.evaluation import metrics

matplotlib.use("Agg")

BOX = ["x1", "y1", "x2", "y2"]


@pytest.fixture(scope="module")
def world():
    return sv.generate(0)


def random_cells(rng, n=3, h=14, w=17, c=2):
    return rng.random((n, h, w, c)).astype(np.float32)


def random_boxes(rng, k, size=40):
    corner = rng.uniform(0, size, (k, 2))
    extent = rng.uniform(2, 20, (k, 2))
    return np.c_[corner, corner + extent]


# --------------------------------------------------------------------------- pyramid and cells


def test_pyramid_shapes_constants_and_identity():
    rng = np.random.default_rng(0)
    images = rng.random((2, 64, 64)).astype(np.float32)
    levels = case.pyramid(images)
    assert [lvl.shape for lvl in levels] == [(2, s, s) for s in (85, 64, 51, 43)]
    np.testing.assert_allclose(levels[case.LEVELS.index(1.0)], images, atol=1e-6)
    for lvl in case.pyramid(np.full((1, 64, 64), 0.37)):
        np.testing.assert_allclose(lvl, 0.37, atol=1e-6)
    with pytest.raises(ValueError, match="height, width"):
        case.pyramid(images[0])


def brute_cells(channels):
    n, h, w, c = channels.shape
    out = np.zeros((n, (h - case.CELL) // case.STRIDE + 1, (w - case.CELL) // case.STRIDE + 1, c))
    for u in range(out.shape[1]):
        for v in range(out.shape[2]):
            y, x = case.STRIDE * u, case.STRIDE * v
            out[:, u, v] = channels[:, y:y + case.CELL, x:x + case.CELL].sum(axis=(1, 2))
    return out


def test_cell_maps_are_box_sums_every_stride():
    rng = np.random.default_rng(1)
    channels = rng.random((2, 12, 16, 3))
    cells = case.cell_maps(channels)
    assert cells.shape == (2, 12 // 2 - 1, 16 // 2 - 1, 3)
    np.testing.assert_allclose(cells, brute_cells(channels), rtol=1e-5)
    odd = rng.random((1, 13, 11, 2))                      # the last row and column are dropped
    assert case.cell_maps(odd).shape == (1, 5, 4, 2)
    np.testing.assert_allclose(case.cell_maps(odd), brute_cells(odd), rtol=1e-5)
    np.testing.assert_array_equal(case.cell_maps(odd), case.cell_maps(odd[:, :12, :10]))
    with pytest.raises(ValueError, match="height, width, channels"):
        case.cell_maps(channels[..., 0])


# --------------------------------------------------------------------------- windows


def test_window_grid_fits_the_maps():
    ys, xs = case.window_grid((31, 31), "face")     # a 64-pixel photo at level 1.0
    np.testing.assert_array_equal(ys, np.arange(25))     # 16-pixel-tall windows at 0, 2, ..., 48
    np.testing.assert_array_equal(xs, np.arange(27))     # 12-pixel-wide windows at 0, 2, ..., 52
    ys, xs = case.window_grid((31, 31, 8), "plate")
    assert (len(ys), len(xs)) == (29, 21)                # 8 x 24 pixels
    with pytest.raises(ValueError, match="label"):
        case.window_grid((31, 31), "car")


def test_window_boxes_by_hand_at_each_level():
    # the window at cell-map position (y=3, x=5) starts at pixel (6, 10) of the level, whose
    # exact scale is its size over the photo's (85 / 64, not 4 / 3: sizes are whole pixels)
    for level, size in enumerate((85, 64, 51, 43)):
        f = size / 64
        assert case.level_scale(level) == f
        face = case.window_boxes([3], [5], "face", level)
        assert face.shape == (1, 1, 4)
        np.testing.assert_allclose(face[0, 0], [10 / f, 6 / f, 10 / f + 12 / f, 6 / f + 16 / f])
        plate = case.window_boxes([3], [5], "plate", level)
        np.testing.assert_allclose(plate[0, 0], [10 / f, 6 / f, 10 / f + 24 / f, 6 / f + 8 / f])
        assert case.pyramid(np.zeros((1, 64, 64)))[level].shape == (1, size, size)
    np.testing.assert_allclose(case.window_boxes([0], [1], "plate", 1)[0, 0], [2, 0, 26, 8])
    with pytest.raises(ValueError, match="level"):
        case.level_scale(4)
    boxes = case.window_boxes([0, 1, 2], [4, 7], "face", 1)
    assert boxes.shape == (3, 2, 4)
    np.testing.assert_allclose(boxes[2, 1], [14, 4, 26, 20])   # row = ys, column = xs
    with pytest.raises(ValueError, match="label"):
        case.window_boxes([0], [0], "car", 0)


def test_gather_lays_cells_side_by_side_then_normalises():
    rng = np.random.default_rng(2)
    cells = random_cells(rng).astype(float)
    raw = case.gather(cells, [1], [2], [3], "face", "none")
    want = np.concatenate([cells[1, 2 + 2 * r, 3 + 2 * c] for r in range(4) for c in range(3)])
    np.testing.assert_array_equal(raw[0], want)
    assert raw.shape == (1, 4 * 3 * 2)
    l2 = case.gather(cells, [1], [2], [3], "face", "l2")[0]
    np.testing.assert_allclose(l2, want / np.sqrt(want @ want + 1e-4))
    st = case.gather(cells, [1], [2], [3], "face", "standardise")[0]
    np.testing.assert_allclose(st, (want - want.mean()) / np.sqrt(want.var() + 1e-4))
    assert case.gather(cells, [0, 2], [0, 0], [0, 1], "plate").shape == (2, 2 * 6 * 2)
    with pytest.raises(ValueError, match="normalise"):
        case.gather(cells, [0], [0], [0], "face", "max")
    with pytest.raises(ValueError, match="label"):
        case.gather(cells, [0], [0], [0], "car")


def scored_by_gather(cells, coef, intercept, label, normalise):
    """Every window's score from its gathered features (in float64): (n, len(ys), len(xs))."""
    ys, xs = case.window_grid(cells.shape[1:3], label)
    i, a, b = np.meshgrid(np.arange(len(cells)), ys, xs, indexing="ij")
    features = case.gather(cells.astype(float), i.ravel(), a.ravel(), b.ravel(), label, normalise)
    return (features @ coef + intercept).reshape(i.shape)


@pytest.mark.parametrize("label", ["face", "plate"])
@pytest.mark.parametrize("normalise", case.NORMALISATIONS)
def test_window_scores_equal_scoring_gathered_features(label, normalise):
    rng = np.random.default_rng(3)
    cells = random_cells(rng, n=3, h=15, w=18, c=3)
    rows, cols = case.WINDOWS[label]
    coef = rng.normal(size=rows * cols * 3)
    scores = case.window_scores(cells, coef, 0.25, label, normalise)
    want = scored_by_gather(cells, coef, 0.25, label, normalise)
    assert scores.shape == want.shape
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_window_scores_standardise_on_real_intensity_cells(world):
    # raw-intensity cells sit near 8 with a small spread: window_scores' one-pass float32 variance
    # must stay close to gather's two-pass one (the chapter's standardised baseline)
    images = sv.pixels(world, np.arange(6))
    rng = np.random.default_rng(15)
    for level, photos in enumerate(case.pyramid(images)):
        cells = case.cell_maps(photos[..., None])
        coef = rng.normal(size=12)
        scores = case.window_scores(cells, coef, -1.0, "face", "standardise")
        want = scored_by_gather(cells, coef, -1.0, "face", "standardise")
        np.testing.assert_allclose(scores, want, atol=5e-3 * want.std())


def test_window_scores_reject_bad_arguments():
    cells = random_cells(np.random.default_rng(4))
    with pytest.raises(ValueError, match="normalise"):
        case.window_scores(cells, np.zeros(24), 0.0, "face", "max")
    with pytest.raises(ValueError, match="label"):
        case.window_scores(cells, np.zeros(24), 0.0, "car")
    with pytest.raises(ValueError):
        case.window_scores(cells, np.zeros(23), 0.0, "face")


# --------------------------------------------------------------------------- truth and overlaps


def annotation_table(rng, photos, label_of=("face", "plate")):
    rows = []
    for p in photos:
        for k in range(rng.integers(0, 4)):
            x1, y1, x2, y2 = random_boxes(rng, 1)[0]
            rows.append((p, label_of[k % len(label_of)], x1, y1, x2, y2))
    return pd.DataFrame(rows, columns=["photo_id", "label", *BOX])


def test_ground_truth_keeps_each_photos_boxes_of_the_label():
    rng = np.random.default_rng(5)
    table = annotation_table(rng, [7, 3, 9, 3, 12]).sample(frac=1, random_state=0)
    ids = [12, 3, 4, 7, 9]                                 # photo 4 has no boxes
    truth = case.ground_truth(table, ids, "face")
    assert len(truth) == 5 and truth[2].shape == (0, 4)
    for p, boxes in zip(ids, truth):
        mine = table[(table.photo_id == p) & (table.label == "face")]
        np.testing.assert_array_equal(boxes, mine[BOX].to_numpy(float))
    with pytest.raises(ValueError, match="label"):
        case.ground_truth(table, ids, "car")


def test_window_overlaps_agree_with_iou_matrix():
    rng = np.random.default_rng(6)
    truth = [random_boxes(rng, 3), np.zeros((0, 4)), random_boxes(rng, 1)]
    ys, xs = np.arange(9), np.arange(11)
    for label in case.WINDOWS:
        for level in range(len(case.LEVELS)):
            got = case.window_overlaps(truth, label, level, ys, xs)
            assert got.shape == (3, 9, 11)
            windows = case.window_boxes(ys, xs, label, level).reshape(-1, 4)
            for i, t in enumerate(truth):
                want = metrics.iou_matrix(windows, t).max(axis=1) if len(t) else np.zeros(len(windows))
                np.testing.assert_allclose(got[i].ravel(), want, atol=1e-12)
    assert (case.window_overlaps([np.zeros((0, 4))] * 2, "face", 0, ys, xs) == 0).all()
    assert case.window_overlaps([np.zeros((0, 4))] * 2, "face", 0, ys, xs).shape == (2, 9, 11)
    one = case.window_boxes([2], [3], "plate", 2)[0, 0]   # a window's own box overlaps it fully
    assert case.window_overlaps([one[None]], "plate", 2, [2], [3])[0, 0, 0] == pytest.approx(1.0)


def pyramid_cells(rng, n=2, size=24, c=2):
    """Cell maps at every level of random (n, size, size, c) channels, resized like a pyramid."""
    return [case.cell_maps(rng.random((n, round(size * f), round(size * f), c))) for f in case.LEVELS]


def test_overlaps_by_level_is_window_overlaps_on_each_grid():
    rng = np.random.default_rng(7)
    cells = pyramid_cells(rng)
    truth = [random_boxes(rng, 2, size=16), np.zeros((0, 4))]
    got = case.overlaps_by_level(cells, truth, "face")
    assert len(got) == len(case.LEVELS)
    for level, (c, overlap) in enumerate(zip(cells, got)):
        ys, xs = case.window_grid(c.shape[1:3], "face")
        np.testing.assert_array_equal(overlap, case.window_overlaps(truth, "face", level, ys, xs))
        assert (overlap[1] == 0).all()


# --------------------------------------------------------------------------- training windows


def training_setup(seed=8, n=4):
    rng = np.random.default_rng(seed)
    cells = pyramid_cells(rng, n=n, size=32)
    # true boxes that are windows of level 1, so that some windows overlap them fully
    truth = [case.window_boxes([1 + p], [2], "face", 1)[0, 0][None] for p in range(n)]
    truth[-1] = np.zeros((0, 4))
    return cells, case.overlaps_by_level(cells, truth, "face")


def test_training_windows_positives_negatives_and_features():
    cells, overlaps = training_setup()
    X, y = case.training_windows(cells, overlaps, "face", np.random.default_rng(0), negatives_per_photo=6,
                                 normalise="none")
    positives = [np.argwhere(o >= 0.6) for o in overlaps]
    assert int(y.sum()) == sum(len(p) for p in positives) > 0
    assert int((y == 0).sum()) == 4 * 6                     # 4 photos, 6 negatives each
    want = np.concatenate([case.gather(c, *p.T, "face", "none") for c, p in zip(cells, positives)])
    np.testing.assert_allclose(X[y == 1], want, rtol=1e-6)
    # every negative is some window below 0.3 IoU (its features are a gather of one)
    below = np.concatenate([case.gather(c, *np.argwhere(o < 0.3).T, "face", "none")
                            for c, o in zip(cells, overlaps)])
    for row in X[y == 0]:
        assert np.isclose(below, row, rtol=1e-6).all(axis=1).any()
    assert X.shape == (len(y), 4 * 3 * 2)
    X2, y2 = case.training_windows(cells, overlaps, "face", np.random.default_rng(0), negatives_per_photo=6,
                                   normalise="none")
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = case.training_windows(cells, overlaps, "face", np.random.default_rng(1), negatives_per_photo=6,
                                  normalise="none")
    assert not np.array_equal(X, X3)
    l2, _ = case.training_windows(cells, overlaps, "face", np.random.default_rng(0), negatives_per_photo=6)
    np.testing.assert_allclose(np.linalg.norm(l2, axis=1), 1, atol=1e-3)


def test_training_windows_draw_negatives_per_photo_for_any_photo_count():
    # 3 photos x 2 negatives = 6, whatever the number of levels the draw is split over
    cells, overlaps = training_setup(n=3)
    _, y = case.training_windows(cells, overlaps, "face", np.random.default_rng(0), negatives_per_photo=2)
    assert int((y == 0).sum()) == 3 * 2


def test_training_windows_reject_bad_arguments():
    cells, overlaps = training_setup()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="negatives_per_photo"):
        case.training_windows(cells, overlaps, "face", rng, negatives_per_photo=-1)
    with pytest.raises(ValueError, match="negative_iou < positive_iou"):
        case.training_windows(cells, overlaps, "face", rng, negatives_per_photo=1, negative_iou=0.6)
    with pytest.raises(ValueError, match="one array per level"):
        case.training_windows(cells[:3], overlaps[:3], "face", rng, negatives_per_photo=1)
    with pytest.raises(ValueError, match="do not match"):
        case.training_windows(cells, overlaps, "plate", rng, negatives_per_photo=1)
    with pytest.raises(ValueError, match="normalise"):
        case.training_windows(cells, overlaps, "face", rng, negatives_per_photo=1, normalise="max")


# --------------------------------------------------------------------------- detections


def score_maps(rng, n=3, shapes=((9, 11), (7, 8), (5, 6), (4, 5)), ties=False):
    maps = [rng.normal(size=(n, *s)).astype(np.float32) for s in shapes]
    return [np.round(m) for m in maps] if ties else maps


def brute_top(scores, label, candidates):
    rows = []
    for lvl, s in enumerate(scores):
        boxes = case.window_boxes(np.arange(s.shape[1]), np.arange(s.shape[2]), label, lvl)
        for p, y, x in np.ndindex(*s.shape):
            rows.append((p, lvl, y, x, float(s[p, y, x]), *boxes[y, x]))
    table = pd.DataFrame(rows, columns=["photo", "level", "y", "x", "score", *BOX])
    table = table.sort_values(["photo", "score", "level", "y", "x"], ascending=[True, False, True, True, True])
    return table.groupby("photo").head(candidates).reset_index(drop=True)


@pytest.mark.parametrize("ties", [False, True])
def test_top_windows_best_first_with_ties_by_lower_window(ties):
    rng = np.random.default_rng(9)
    scores = score_maps(rng, ties=ties)
    for label in case.WINDOWS:
        got = case.top_windows(scores, label, candidates=25)
        want = brute_top(scores, label, 25)
        assert len(got) == 3 * 25 and list(got.columns) == list(want.columns)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)


def test_top_windows_caps_candidates_and_checks_levels():
    scores = score_maps(np.random.default_rng(10), n=2, shapes=((2, 2), (1, 2), (1, 1), (1, 1)))
    got = case.top_windows(scores, "face", candidates=100)
    assert (got.groupby("photo").size() == 8).all()           # every window, once
    with pytest.raises(ValueError, match="one map per level"):
        case.top_windows(scores[:3], "face")
    with pytest.raises(ValueError, match="candidates"):
        case.top_windows(scores, "face", candidates=0)


def keep_all(boxes, scores, iou_threshold):
    return np.argsort(-scores, kind="stable")


def keep_first(boxes, scores, iou_threshold):
    return [int(np.argmax(scores))]


def test_detect_and_suppress_per_photo():
    rng = np.random.default_rng(11)
    scores = score_maps(rng)
    ids = np.array([40, 41, 47])
    det = case.detect(scores, ids, "plate", keep_all, iou_threshold=0.3, candidates=20, keep=5)
    top = brute_top(scores, "plate", 5)
    assert list(det.columns) == ["photo_id", "label", "score", *BOX]
    np.testing.assert_array_equal(det["photo_id"], ids[top["photo"]])
    assert (det["label"] == "plate").all()
    np.testing.assert_allclose(det[["score", *BOX]].to_numpy(), top[["score", *BOX]].to_numpy(), rtol=1e-6)
    one = case.detect(scores, ids, "plate", keep_first, iou_threshold=0.3, candidates=20, keep=5)
    best = top.groupby("photo").head(1)
    np.testing.assert_array_equal(one["photo_id"], ids)
    np.testing.assert_allclose(one[["score", *BOX]].to_numpy(), best[["score", *BOX]].to_numpy(), rtol=1e-6)
    calls = []
    windows = case.top_windows(scores, "plate", 20)
    case.suppress_per_photo(windows, ids, "plate", lambda b, s, t: calls.append((b, s, t)) or [], iou_threshold=0.4)
    assert len(calls) == 3 and all(len(b) == len(s) == 20 and t == 0.4 for b, s, t in calls)
    np.testing.assert_array_equal(calls[1][1], windows.loc[windows.photo == 1, "score"])
    with pytest.raises(ValueError, match="keep"):
        case.suppress_per_photo(windows, ids, "plate", keep_all, iou_threshold=0.4, keep=0)
    with pytest.raises(ValueError, match="iou_threshold"):
        case.suppress_per_photo(windows, ids, "plate", keep_all, iou_threshold=float("nan"))


def test_suppress_per_photo_groups_a_table_in_any_row_order():
    # a rescored table re-sorted by score (photos interleaved) must give the same detections,
    # not boxes handed to the wrong photo
    scores = score_maps(np.random.default_rng(14))
    windows = case.top_windows(scores, "face", 20)
    ids = [5, 6, 7]
    want = case.suppress_per_photo(windows, ids, "face", keep_all, iou_threshold=0.5, keep=4)
    shuffled = windows.sort_values("score", ascending=False, kind="stable")
    got = case.suppress_per_photo(shuffled, ids, "face", keep_all, iou_threshold=0.5, keep=4)
    pd.testing.assert_frame_equal(got, want)


def test_gather_windows_follows_the_table_order():
    rng = np.random.default_rng(12)
    cells = pyramid_cells(rng, n=2, size=32)
    scores = [case.window_scores(c, rng.normal(size=24), 0.0, "face") for c in cells]
    windows = case.top_windows(scores, "face", candidates=15).sample(frac=1, random_state=1)
    got = case.gather_windows(cells, windows, "face", "none")
    assert got.shape == (30, 24)
    for k, r in enumerate(windows.itertuples()):
        np.testing.assert_array_equal(got[k], case.gather(cells[r.level], [r.photo], [r.y], [r.x], "face", "none")[0])
    # the windows' boxes are their grid positions at their level
    for r in windows.itertuples():
        np.testing.assert_allclose([r.x1, r.y1, r.x2, r.y2], case.window_boxes([r.y], [r.x], "face", r.level)[0, 0])


# --------------------------------------------------------------------------- the oracle


def test_oracle_finds_every_true_box_far_above_the_noise(world):
    ids = np.arange(12)
    det = case.oracle_detections(world, ids)
    annotations = world.observed["annotations"]
    assert (det.groupby("photo_id").size() == 8).all()
    for p in ids:
        truth = annotations[annotations.photo_id == p]
        mine = det[det.photo_id == p].sort_values("score", ascending=False)
        best, rest = mine.iloc[:len(truth)], mine.iloc[len(truth):]
        for t in truth.itertuples():
            same = best[best.label == t.label]
            assert len(same) and metrics.iou_matrix([[t.x1, t.y1, t.x2, t.y2]], same[BOX]).max() == 1.0
        if len(truth):
            assert best["score"].min() > 2 * rest["score"].max()
    ap = case.mean_average_precision(det, annotations, ids)
    assert ap == {"face": 1.0, "plate": 1.0, "mAP": 1.0}
    with pytest.raises(ValueError, match="steps"):
        case.oracle_detections(world, ids[:1], steps=0)


# --------------------------------------------------------------------------- evaluation by hand


ANNOTATIONS = pd.DataFrame(
    [(10, "face", 0, 0, 10, 10), (10, "plate", 20, 20, 40, 30), (11, "face", 5, 5, 15, 15),
     (12, "plate", 50, 50, 60, 55)], columns=["photo_id", "label", *BOX])
DETECTIONS = pd.DataFrame(
    [(10, "face", 0.9, 0, 0, 10, 10),        # TP
     (12, "face", 0.8, 0, 0, 10, 10),        # FP: no face in photo 12
     (11, "face", 0.7, 30, 30, 40, 40),      # FP: nowhere near
     (11, "face", 0.6, 5, 5, 15, 15),        # TP
     (10, "face", 0.5, 1, 0, 11, 10),        # FP: a duplicate (IoU 0.82 with a matched face)
     (10, "plate", 0.4, 20, 20, 40, 30),     # TP
     (11, "plate", 0.2, 0, 0, 30, 10),       # FP
     (99, "face", 0.95, 0, 0, 10, 10)],      # not one of the photos evaluated
    columns=["photo_id", "label", "score", *BOX])
IDS = [10, 11, 12]


def test_matches_and_mean_average_precision_by_hand():
    face = case.matches(DETECTIONS, ANNOTATIONS, IDS, "face")
    np.testing.assert_array_equal(face.is_tp, [True, False, False, True, False])
    np.testing.assert_array_equal(face.score, [0.9, 0.8, 0.7, 0.6, 0.5])
    assert len(face.ground_truth_images) == 2
    plate = case.matches(DETECTIONS, ANNOTATIONS, IDS, "plate")
    np.testing.assert_array_equal(plate.is_tp, [True, False])
    # face: recall 1/2 at precision 1, then 1 at precision 2/4; plate: recall 1/2 at precision 1
    ap = case.mean_average_precision(DETECTIONS, ANNOTATIONS, IDS)
    assert ap == pytest.approx({"face": 0.75, "plate": 0.5, "mAP": 0.625})
    strict = case.mean_average_precision(DETECTIONS.assign(x2=DETECTIONS.x2 + 2), ANNOTATIONS, IDS,
                                         iou_threshold=0.95)  # IoU 100/120 and 200/220: no match
    assert strict == {"face": 0.0, "plate": 0.0, "mAP": 0.0}
    assert case.matches(DETECTIONS, ANNOTATIONS, [10], "face").is_tp.tolist() == [True, False]


def test_precision_recall_and_thresholds_by_hand():
    face = case.matches(DETECTIONS, ANNOTATIONS, IDS, "face")
    curve = case.precision_recall(face)
    np.testing.assert_allclose(curve["score"], [0.9, 0.8, 0.7, 0.6, 0.5])
    np.testing.assert_allclose(curve["recall"], [0.5, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(curve["precision"], [1, 1 / 2, 1 / 3, 2 / 4, 2 / 5])
    assert case.threshold_for_recall(face, 0.5) == 0.9
    assert case.threshold_for_recall(face, 0.75) == 0.6
    assert case.threshold_for_recall(face, 1.0) == 0.6
    plate = case.matches(DETECTIONS, ANNOTATIONS, IDS, "plate")
    assert case.threshold_for_recall(plate, 1.0) == 0.4   # unreachable: where the best recall begins
    assert case.at_threshold(face, 0.6, 3) == pytest.approx(
        {"recall": 1.0, "precision": 0.5, "false blurs per photo": 2 / 3})
    assert case.at_threshold(face, 0.85, 3) == pytest.approx(
        {"recall": 0.5, "precision": 1.0, "false blurs per photo": 0.0})
    assert case.at_threshold(face, 0.95, 3) == {"recall": 0.0, "precision": 0.0, "false blurs per photo": 0.0}
    for bad in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="target"):
            case.threshold_for_recall(face, bad)
    none = case.matches(DETECTIONS.iloc[:0], ANNOTATIONS, IDS, "face")
    with pytest.raises(ValueError, match="no detections"):
        case.threshold_for_recall(none, 0.5)
    with pytest.raises(ValueError, match="n_photos"):
        case.at_threshold(face, 0.5, 0)
    with pytest.raises(ValueError, match="threshold"):
        case.at_threshold(face, float("nan"), 3)


def test_covered_by_hand():
    np.testing.assert_array_equal(case.covered(ANNOTATIONS, DETECTIONS, {"face": 0.6, "plate": 0.3}),
                                  [True, True, True, False])
    np.testing.assert_array_equal(case.covered(ANNOTATIONS, DETECTIONS, {"face": 0.65}),
                                  [True, False, False, False])
    np.testing.assert_array_equal(case.covered(ANNOTATIONS, DETECTIONS, {"face": 0.0}, iou_threshold=0.85),
                                  [True, False, True, False])
    assert not case.covered(ANNOTATIONS, DETECTIONS, {}).any()
    with pytest.raises(ValueError, match="label"):
        case.covered(ANNOTATIONS, DETECTIONS, {"car": 0.5})
    with pytest.raises(ValueError, match="iou_threshold"):
        case.covered(ANNOTATIONS, DETECTIONS, {"face": 0.5}, iou_threshold=float("inf"))


# --------------------------------------------------------------------------- figures


def test_plot_photos_draws_one_rectangle_per_box():
    images = np.random.default_rng(13).random((13, 64, 64))
    fig, axes = plt.subplots(1, 3)
    try:
        case.plot_photos(axes, images, [12, 10, 11], ANNOTATIONS, dashed=True, titles=["a", "b", "c"])
        rects = [[p for p in ax.patches if isinstance(p, Rectangle)] for ax in axes]
        assert [len(r) for r in rects] == [1, 2, 1]
        plate = rects[0][0]
        assert plate.get_xy() == (49.5, 49.5) and (plate.get_width(), plate.get_height()) == (10, 5)
        assert matplotlib.colors.to_hex(plate.get_edgecolor()) == case.COLOURS["plate"].lower()
        assert plate.get_linestyle() == "--"
        assert [ax.get_title() for ax in axes] == ["a", "b", "c"]
        assert len(axes[0].images) == 1
        case.plot_photos(axes[:1], images, [11])                    # no boxes
        with pytest.raises(ValueError, match="axes"):
            case.plot_photos(axes[:2], images, [10, 11, 12], ANNOTATIONS)
    finally:
        plt.close(fig)
