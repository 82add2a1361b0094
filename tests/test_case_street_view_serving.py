"""Chapter 6's serving plumbing (mlsd.cases.street_view_blurring): blurs, outcomes, reports, the blur store."""

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import street_view_blurring as serving


def detections(rows):
    return pd.DataFrame(rows, columns=["photo_id", "label", "score", "x1", "y1", "x2", "y2"])


def truth(rows):
    return pd.DataFrame(rows, columns=["photo_id", "label", "x1", "y1", "x2", "y2"])


THRESHOLDS = {"face": 0.5, "plate": 0.7}


# --------------------------------------------------------------------------- blur boxes and blur


def test_blur_boxes_keep_scores_at_or_above_threshold_and_round_outward():
    d = detections([(1, "face", 0.5, 2.4, 3.6, 7.1, 9.0),     # exactly at the threshold: kept
                    (1, "face", 0.49, 0, 0, 4, 4),             # below: dropped
                    (2, "plate", 0.7, -3.2, 60.5, 10.2, 70.0),  # clipped to the photo
                    (2, "plate", 0.9, 64.2, 1, 70, 5)])          # empty after clipping: dropped
    got = serving.blur_boxes(d, THRESHOLDS)
    assert got[["x1", "y1", "x2", "y2"]].values.tolist() == [[2, 3, 8, 9], [0, 60, 11, 64]]
    assert got["photo_id"].tolist() == [1, 2] and got["x1"].dtype == np.int64


def test_blur_boxes_reject_bad_input():
    d = detections([(1, "face", 0.9, 0, 0, 4, 4)])
    with pytest.raises(ValueError, match="no threshold for the labels \\['face'\\]"):
        serving.blur_boxes(d, {"plate": 0.5})
    with pytest.raises(ValueError, match="lack the columns \\['score'\\]"):
        serving.blur_boxes(d.drop(columns="score"), THRESHOLDS)
    with pytest.raises(TypeError, match="DataFrame"):
        serving.blur_boxes(d.values, THRESHOLDS)
    with pytest.raises(ValueError, match="NaN"):
        serving.blur_boxes(d.assign(x2=np.nan), THRESHOLDS)
    with pytest.raises(ValueError, match="finite"):
        serving.blur_boxes(d, {"face": float("nan")})


def test_blur_pixelates_only_inside_the_blurred_boxes_and_copies():
    rng = np.random.default_rng(0)
    images = rng.random((2, 16, 16)).astype(np.float32)
    before = images.copy()
    d = detections([(7, "face", 0.9, 2, 3, 10, 7),     # 8 x 4: two tiles of 4 x 4
                    (7, "plate", 0.1, 0, 0, 16, 16),   # below its threshold
                    (99, "face", 0.9, 0, 0, 16, 16)])  # a photo not in the batch
    out = serving.blur(images, d, THRESHOLDS, photo_ids=[5, 7], block=4)
    np.testing.assert_array_equal(images, before)
    np.testing.assert_array_equal(out[0], images[0])
    inside = np.zeros((16, 16), bool)
    inside[3:7, 2:10] = True
    np.testing.assert_array_equal(out[1][~inside], images[1][~inside])
    for x in (2, 6):
        np.testing.assert_allclose(out[1][3:7, x:x + 4], images[1][3:7, x:x + 4].mean(), rtol=1e-6)


def test_blur_tiles_are_cut_at_the_box_edge():
    images = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    out = serving.blur(images, detections([(0, "face", 1.0, 0, 0, 6, 1)]), THRESHOLDS,
                       photo_ids=[0], block=4)
    np.testing.assert_allclose(out[0, 0], [1.5] * 4 + [4.5] * 2)   # a 4-wide tile, then a 2-wide one
    np.testing.assert_array_equal(out[0, 1:], images[0, 1:])


def test_blur_rejects_bad_input():
    images, d = np.zeros((2, 8, 8)), detections([])
    with pytest.raises(ValueError, match="photo_ids has 1 ids for 2 images"):
        serving.blur(images, d, THRESHOLDS, photo_ids=[0])
    with pytest.raises(ValueError, match="must not repeat"):
        serving.blur(images, d, THRESHOLDS, photo_ids=[0, 0])
    with pytest.raises(ValueError, match="\\(n, height, width\\)"):
        serving.blur(images[0], d, THRESHOLDS, photo_ids=[0])
    with pytest.raises(ValueError, match="block must be >= 1"):
        serving.blur(images, d, THRESHOLDS, photo_ids=[0, 1], block=0)


# --------------------------------------------------------------------------- outcomes


def test_covered_share_is_the_union_of_blurs_of_the_same_photo():
    t = truth([(1, "face", 0, 0, 4, 4), (1, "plate", 10, 10, 14, 12), (2, "face", 0, 0, 4, 4)])
    boxes = pd.DataFrame({"photo_id": [1, 1, 1, 3], "x1": [0, 2, 1, 0], "y1": [0, 0, 0, 0],
                          "x2": [2, 4, 3, 8], "y2": [4, 4, 4, 8]})
    # photo 1's face: two halves plus an overlapping box -> all of it; its plate: nothing;
    # photo 2's face: the blur of photo 3 does not count
    np.testing.assert_allclose(serving.covered_share(t, boxes), [1.0, 0.0, 0.0])
    quarter = pd.DataFrame({"photo_id": [1], "x1": [-5], "y1": [-5], "x2": [2], "y2": [2]})
    np.testing.assert_allclose(serving.covered_share(t.iloc[:1], quarter), [0.25])
    with pytest.raises(ValueError, match="empty box"):
        serving.covered_share(truth([(1, "face", 3, 0, 3, 4)]), boxes)


def test_blur_outcomes_count_objects_missed_blurs_and_false_blurs_per_photo():
    t = truth([(1, "face", 0, 0, 10, 10), (1, "plate", 20, 20, 30, 24), (2, "face", 0, 0, 4, 4)])
    d = detections([(1, "face", 0.9, 0, 0, 10, 6),      # covers 60% of the face: not missed
                    (1, "plate", 0.9, 40, 40, 50, 50),  # a blurred wall: false
                    (1, "plate", 0.2, 20, 20, 30, 24),  # the plate, below threshold: missed
                    (3, "face", 0.9, 0, 0, 5, 5),       # a photo with no objects: a false blur
                    (2, "face", 0.9, 0, 0, 4, 1)])      # 25% of photo 2's face: missed, and false
    got = serving.blur_outcomes(d, THRESHOLDS, t, [3, 1, 2, 4])
    assert got.columns.tolist() == ["photo_id", "objects", "missed", "blurs", "false_blurs"]
    assert got.values.tolist() == [[3, 0, 0, 1, 1], [1, 2, 1, 2, 1], [2, 1, 1, 1, 1], [4, 0, 0, 0, 0]]
    strict = serving.blur_outcomes(d, THRESHOLDS, t, [1], min_covered=0.7)
    assert strict["missed"].tolist() == [2]
    with pytest.raises(ValueError, match="min_covered"):
        serving.blur_outcomes(d, THRESHOLDS, t, [1], min_covered=0)


# --------------------------------------------------------------------------- the online signal


def outcomes_of(missed, false_blurs):
    n = len(missed)
    return pd.DataFrame({"photo_id": np.arange(10, 10 + n), "objects": 2, "missed": missed,
                         "blurs": 1, "false_blurs": false_blurs})


def test_simulate_reports_replays_photos_into_random_arms():
    arms = {"control": outcomes_of([2, 0, 1], [0, 1, 0]), "treatment": outcomes_of([0, 0, 1], [3, 3, 3])}
    run = lambda seed, **kw: serving.simulate_reports(  # noqa: E731
        arms, 40_000, mean_views=kw.get("views", 5.0), report_probability=kw.get("p", 0.1),
        rng=np.random.default_rng(seed))
    a = run(1)
    pd.testing.assert_frame_equal(a, run(1))
    assert a["arm"].cat.categories.tolist() == ["control", "treatment"]
    assert abs((a["arm"] == "control").mean() - 0.5) < 0.01
    by_arm = {name: arms[name].set_index("photo_id") for name in arms}
    for name, g in a.groupby("arm", observed=True):   # each row is its arm's photo
        np.testing.assert_array_equal(g["missed"], by_arm[name].loc[g["photo_id"], "missed"])
        np.testing.assert_array_equal(g["false_blurs"], by_arm[name].loc[g["photo_id"], "false_blurs"])
    assert (a.loc[a["missed"] == 0, "reports"] == 0).all()
    # reports per missed object per view: the report probability
    assert abs(a["reports"].sum() / (a["views"] * a["missed"]).sum() - 0.1) < 0.01
    assert abs(a["views"].mean() - 5.0) < 0.05
    every = run(2, p=1.0)
    np.testing.assert_array_equal(every["reports"], every["views"] * every["missed"])
    assert run(3, p=0.0)["reports"].sum() == 0


def test_simulate_reports_rejects_bad_input():
    a = outcomes_of([1, 0], [0, 0])
    ok = dict(mean_views=5, report_probability=0.1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least two arm"):
        serving.simulate_reports({"a": a}, 10, **ok)
    with pytest.raises(ValueError, match="same photos"):
        serving.simulate_reports({"a": a, "b": outcomes_of([1, 0, 0], [0, 0, 0])}, 10, **ok)
    with pytest.raises(ValueError, match="report_probability"):
        serving.simulate_reports({"a": a, "b": a}, 10, **{**ok, "report_probability": 1.5})
    with pytest.raises(TypeError, match="Generator"):
        serving.simulate_reports({"a": a, "b": a}, 10, **{**ok, "rng": 0})


def test_report_summary_by_hand():
    published = pd.DataFrame({"arm": pd.Categorical(["b", "a", "a", "b"], categories=["b", "a"]),
                              "reports": [0, 2, 0, 1], "missed": [0, 1, 1, 1],
                              "false_blurs": [1, 0, 0, 3]})
    got = serving.report_summary(published)
    assert got.index.tolist() == ["b", "a"]   # the arms' order, not the alphabet's
    assert got["photos"].tolist() == [2, 2] and got["reported photos"].tolist() == [1, 1]
    np.testing.assert_allclose(got["reports per 10,000 photos"], [5_000, 10_000])
    np.testing.assert_allclose(got["missed objects per 10,000 photos"], [5_000, 10_000])
    np.testing.assert_allclose(got["false blurs per photo"], [2.0, 0.0])
    with pytest.raises(ValueError, match="simulate_reports' table"):
        serving.report_summary(published.drop(columns="missed"))


# --------------------------------------------------------------------------- batch capacity


def test_batch_cores_by_hand():
    got = serving.batch_cores(10.0, {"daily": (864_000, 1), "backlog": (8_640_001, 5), "none": (0, 1)})
    assert got["cores"].tolist() == [1, 3, 0]   # 8,640,001 / 10 / (5 days) = 2.00... -> 3
    np.testing.assert_allclose(got["core-hours"], [24.0, 8_640_001 / 36_000, 0.0])
    with pytest.raises(ValueError, match="photos_per_core_second must be > 0"):
        serving.batch_cores(0, {"daily": (1, 1)})
    with pytest.raises(ValueError, match="days > 0"):
        serving.batch_cores(1, {"daily": (1, 0)})
    with pytest.raises(ValueError, match="volumes"):
        serving.batch_cores(1, {})


# --------------------------------------------------------------------------- the blur store


V1 = detections([(1, "face", 0.9, 0.5, 0, 4, 4),      # stays (same pixel box in v2)
                 (1, "plate", 0.8, 10, 10, 20, 14),   # removed in v2
                 (2, "face", 0.3, 0, 0, 8, 8),        # below v1's threshold: not published
                 (3, "face", 0.6, 5, 5, 9, 9),        # stays, as a plate in v2
                 (5, "face", 0.9, 10, 10, 20, 20)])   # moved a pixel in v2
V2 = detections([(1, "face", 0.6, 0, 0, 3.5, 4),      # rounds to the same box as v1's
                 (2, "face", 0.6, 0, 0, 8, 8),        # added
                 (2, "plate", 0.75, 30, 30, 40, 34),  # added
                 (3, "plate", 0.95, 5, 5, 9, 9),      # relabelled: the same blur
                 (4, "face", 0.1, 0, 0, 8, 8),        # below threshold
                 (5, "face", 0.9, 11, 10, 21, 20)])   # 90% of v1's box: it reveals nothing


def test_blur_store_round_trip_and_reblur_job(tmp_path):
    path = tmp_path / "blurs.sqlite"
    with serving.BlurStore(path) as store:
        assert store.write("v1", V1, {"face": 0.5, "plate": 0.5}) == 5
        assert store.write("v2", V2, THRESHOLDS) == 6
        assert store.versions() == ["v1", "v2"]
        job = store.reblur("v1", "v2")
        assert job.columns.tolist() == ["photo_id", "added", "removed", "revealed"]
        assert job.values.tolist() == [[1, 0, 1, 1], [2, 2, 0, 0], [5, 1, 1, 0]]
        back = store.reblur("v2", "v1")
        assert back.values.tolist() == [[1, 1, 0, 0], [2, 0, 2, 2], [5, 1, 1, 0]]
        assert store.reblur("v1", "v2", min_covered=0.95)["revealed"].tolist() == [1, 0, 1]
        changes = store.changes("v1", "v2")
        assert changes[changes["photo_id"] == 1].values.tolist() == [["removed", 1, 10, 10, 20, 14]]
        same = store.reblur("v2", "v2")
        assert same.empty and same.columns.tolist() == job.columns.tolist()
    with serving.BlurStore(path) as again:   # the file keeps the history
        stored = again.blurs("v2")
        want = serving.blur_boxes(V2, THRESHOLDS).sort_values(["photo_id", "label"])
        pd.testing.assert_frame_equal(stored, want.reset_index(drop=True), check_dtype=False)


def test_blur_store_refuses_to_rewrite_history_and_unknown_versions(tmp_path):
    with serving.BlurStore(tmp_path / "b.sqlite") as store:
        store.write("v1", V1, {"face": 0.5, "plate": 0.5})
        with pytest.raises(ValueError, match="already stored"):
            store.write("v1", V2, THRESHOLDS)
        with pytest.raises(ValueError, match="unknown version 'v9'"):
            store.reblur("v1", "v9")
        with pytest.raises(ValueError, match="no threshold"):
            store.write("v2", V2, {"face": 0.5})
        with pytest.raises(ValueError, match="non-empty str"):
            store.write("", V2, THRESHOLDS)
        with pytest.raises(ValueError, match="min_covered"):
            store.reblur("v1", "v1", min_covered=0)
        assert store.versions() == ["v1"]   # a failed write leaves nothing behind


def test_arm_difference_by_scene_resamples_scenes_not_copies():
    from mlsd.cases import street_view_blurring as case
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 40, 4000)
    codes = rng.integers(0, 2, 4000)
    arm = pd.Categorical.from_codes(codes, categories=["control", "treatment"])
    # each scene has one value per arm, shared by all its copies: 80 independent values, not 4,000
    value = rng.normal(size=(40, 2))[scene, codes] + 0.5 * codes
    published = pd.DataFrame({"arm": arm, "photo_id": scene, "x": value})
    out = case.arm_difference_by_scene(published, "x", seed=0)
    assert out["treatment"] == pytest.approx(value[codes == 1].mean())
    assert out["difference"] == pytest.approx(value[codes == 1].mean() - value[codes == 0].mean())
    assert out["ci_low"] < out["difference"] < out["ci_high"]
    # copies treated as independent would give an interval about sqrt(100) = 10 times narrower
    naive = 2 * 1.96 * np.sqrt(value[codes == 1].var() / 2000 + value[codes == 0].var() / 2000)
    assert out["ci_high"] - out["ci_low"] > 4 * naive
    assert out == case.arm_difference_by_scene(published, "x", seed=0)
    with pytest.raises(ValueError, match="column"):
        case.arm_difference_by_scene(published, "y", seed=0)
