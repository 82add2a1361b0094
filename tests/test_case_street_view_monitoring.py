"""Chapter 6's monitoring plumbing (mlsd.cases.street_view_blurring), checked by hand and against definitions."""

import functools

import matplotlib
import numpy as np
import pandas as pd
import pytest

from mlsd.cases import street_view_blurring as mon
from mlsd.cases import street_view_blurring as case
from mlsd.datasets import street_view_blurring as sv
from mlsd.evaluation.metrics import detection_average_precision

matplotlib.use("Agg")


# --------------------------------------------------------------------------- noise_level


@pytest.mark.parametrize("sd", [0.02, 0.06, 0.09])
def test_noise_level_reads_the_noise_through_a_gradient_and_edges(sd):
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[0:64, 0:64]
    scene = 0.3 + 0.004 * cols + 0.002 * rows          # a brightness gradient: cancelled
    scene = scene + 0.3 * ((rows - 30) ** 2 + (cols - 30) ** 2 < 100)   # a disc: its edge is ignored
    images = scene[None] + sd * rng.standard_normal((200, 64, 64))
    estimate = mon.noise_level(images)
    assert estimate.shape == (200,)
    assert abs(np.mean(estimate) / sd - 1) < 0.05   # the edges bias it up a little at low noise
    # a mean of squares would count the edge as noise; the median does not
    flat = mon.noise_level(scene[None] + 0 * images[:1])
    assert flat[0] < 1e-6


def test_noise_level_separates_the_world_s_sensors():
    world = sv.generate(0)
    extended = sv.new_sensor(world, 40, 30, 2, v2_share=[0.0, 1.0])
    new = extended["photos"].iloc[len(world.observed["photos"]):]
    estimate = mon.noise_level(sv.pixels(extended, new["photo_id"]))
    v1, v2 = estimate[new["sensor"] == "v1"], estimate[new["sensor"] == "v2"]
    assert len(v1) == len(v2) == 20
    assert v1.max() < v2.min()
    assert abs(np.median(v1) - sv.KNOBS["noise"]) < 0.01 and abs(np.median(v2) - 0.09) < 0.01


@pytest.mark.parametrize("bad, match", [(np.zeros((4, 4)), "shape"), (np.zeros((1, 2, 8)), "sides"),
                                        (np.full((1, 4, 4), np.nan), "finite")])
def test_noise_level_refuses_bad_images(bad, match):
    with pytest.raises(ValueError, match=match):
        mon.noise_level(bad)


# --------------------------------------------------------------------------- daily_monitor


def test_daily_monitor_band_and_alarms_by_hand():
    reference = [1.0, 3.0, 2.0, 4.0, 3.0, 3.0]   # daily means 2, 3, 3 -> mean 8/3, sd 0.577
    reference_days = [0, 0, 1, 1, 2, 2]
    values, days = [2.7, 2.6, 5.0, 5.0, 0.0], [10, 10, 11, 11, 12]
    monitor, (low, high) = mon.daily_monitor(values, days, reference, reference_days, k=2)
    sd = np.std([2, 3, 3], ddof=1)
    assert low == pytest.approx(8 / 3 - 2 * sd) and high == pytest.approx(8 / 3 + 2 * sd)
    assert monitor.index.tolist() == [10, 11, 12]
    assert monitor["photos"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(monitor["mean"], [2.65, 5.0, 0.0])
    assert monitor["alarm"].tolist() == [False, True, True]


def test_daily_monitor_sorts_days_and_a_wider_band_alarms_less():
    rng = np.random.default_rng(1)
    reference, reference_days = rng.normal(0, 1, 300), np.repeat(np.arange(30), 10)
    values, days = rng.normal(0.6, 1, 200), np.repeat(np.arange(20)[::-1], 10)
    narrow, _ = mon.daily_monitor(values, days, reference, reference_days, k=1)
    wide, _ = mon.daily_monitor(values, days, reference, reference_days, k=4)
    assert narrow.index.tolist() == list(range(20))
    assert wide["alarm"].sum() <= narrow["alarm"].sum()
    assert (wide["alarm"] <= narrow["alarm"]).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"values": [1.0, np.nan]}, "finite"),
    ({"days": [0]}, "one day per value"),
    ({"days": [0.5, 1.5]}, "integers"),
    ({"reference_days": [0, 0, 0, 0]}, "two reference days"),
    ({"k": 0}, "positive"),
])
def test_daily_monitor_refuses_bad_arguments(kwargs, match):
    args = {"values": [1.0, 2.0], "days": [0, 1], "reference_values": [1.0, 2.0, 1.0, 2.0],
            "reference_days": [0, 0, 1, 1]} | kwargs
    k = args.pop("k", 4.0)
    with pytest.raises(ValueError, match=match):
        mon.daily_monitor(*args.values(), k=k)


# --------------------------------------------------------------------------- AP with weights


def _boxes(rows):
    return pd.DataFrame(rows, columns=["photo_id", "label", "x1", "y1", "x2", "y2"])


@functools.cache
def fixture():
    """Photos 7, 3, 9 (in that order): truth and detections of both classes, some misses."""
    truth = _boxes([(7, "face", 0, 0, 10, 10), (7, "plate", 20, 20, 40, 27), (3, "face", 5, 5, 15, 15),
                    (9, "face", 0, 0, 8, 8), (9, "plate", 0, 30, 18, 36), (5, "face", 0, 0, 9, 9)])
    found = pd.DataFrame([(7, "face", 0.9, 0, 0, 10, 10), (7, "face", 0.8, 30, 30, 40, 40),
                          (3, "face", 0.7, 5, 5, 15, 15), (3, "face", 0.95, 40, 40, 50, 50),
                          (9, "face", 0.6, 0, 0, 8, 8), (9, "plate", 0.5, 0, 30, 18, 36),
                          (7, "plate", 0.4, 0, 0, 5, 5), (5, "face", 0.99, 0, 0, 9, 9)],
                         columns=["photo_id", "label", "score", "x1", "y1", "x2", "y2"])
    return truth, found, np.array([7, 3, 9])


def _direct_ap(truth, found, ids, label):
    d = found[(found["label"] == label) & found["photo_id"].isin(ids)]
    t = truth[(truth["label"] == label) & truth["photo_id"].isin(ids)]
    return detection_average_precision(
        list(zip(d["photo_id"], d["score"], d[["x1", "y1", "x2", "y2"]].to_numpy(float))),
        list(zip(t["photo_id"], t[["x1", "y1", "x2", "y2"]].to_numpy(float))))


def test_class_aps_equal_the_definition_and_ignore_other_photos():
    truth, found, ids = fixture()
    matches = mon.match_by_label(found, truth, ids)   # photo 5 is not among ids
    assert matches.n_photos == 3
    aps = mon.class_aps(matches)
    for label in ("face", "plate"):
        assert aps[label] == pytest.approx(_direct_ap(truth, found, ids, label))
    # by hand, faces: 0.95 FP, 0.9 TP, 0.8 FP, 0.7 TP, 0.6 TP -> P at hits 1/2, 2/4, 3/5; envelope 3/5
    assert aps["face"] == pytest.approx(0.6)
    assert aps["plate"] == pytest.approx(0.5)   # 0.5 TP (P 1), 0.4 FP; one of two plates found
    assert aps["mAP"] == pytest.approx(0.55) == mon.mean_ap(matches)
    assert aps == pytest.approx(case.mean_average_precision(found, truth, ids))


def test_weights_remove_and_repeat_photos():
    truth, found, ids = fixture()
    matches = mon.match_by_label(found, truth, ids)
    without_3 = mon.class_aps(matches, [1, 0, 1])   # positions, in the order of ids
    for label in ("face", "plate"):
        assert without_3[label] == pytest.approx(_direct_ap(truth, found, np.array([7, 9]), label))
    assert mon.mean_ap(matches, [2, 2, 2]) == pytest.approx(mon.mean_ap(matches))


def test_ap_by_group_names_a_group_without_boxes():
    truth, found, ids = fixture()
    matches = mon.match_by_label(found, truth, ids)
    with pytest.raises(ValueError, match="group 'b'"):
        mon.ap_by_group(matches, ["a", "b", "a"])   # photo 3 has no plate
    table = mon.ap_by_group(matches, ["a", "a", "b"])   # photos 7, 3 | photo 9
    assert table.loc["b", "face"] == pytest.approx(1.0) and table.loc["b", "plate"] == pytest.approx(1.0)
    want = _direct_ap(truth, found, np.array([7, 3]), "face")
    assert table.loc["a", "face"] == pytest.approx(want)
    assert table.loc["a", "mAP"] == pytest.approx((want + _direct_ap(truth, found, np.array([7]), "plate")) / 2)


def test_match_and_weights_refuse_bad_input():
    truth, found, ids = fixture()
    with pytest.raises(ValueError, match="repeats"):
        mon.match_by_label(found, truth, [7, 7])
    with pytest.raises(ValueError, match="columns"):
        mon.match_by_label(found.drop(columns="score"), truth, ids)
    with pytest.raises(ValueError, match="no annotated plate"):
        mon.match_by_label(found, truth, [3])
    matches = mon.match_by_label(found, truth, ids)
    with pytest.raises(ValueError, match="one weight per photo"):
        mon.mean_ap(matches, [1, 1])
    with pytest.raises(ValueError, match="one label per photo"):
        mon.ap_by_group(matches, ["a"])
    with pytest.raises(TypeError, match="match_by_label"):
        mon.mean_ap({"face": None})


def test_map_difference_interval_brackets_the_difference_and_is_paired():
    rng = np.random.default_rng(3)
    truth = _boxes([(p, "face", 0, 0, 10, 10) for p in range(60)] + [(p, "plate", 20, 20, 38, 26) for p in range(60)])
    found = pd.concat([truth.assign(score=rng.random(len(truth))),      # found, and a false one per photo
                       truth.assign(score=rng.random(len(truth)), x1=40, x2=50)], ignore_index=True)
    ids = np.arange(60)
    matches = mon.match_by_label(found, truth, ids)
    first, second = ids < 30, ids >= 30
    point = mon.mean_ap(matches, first * 1.0) - mon.mean_ap(matches, second * 1.0)
    low, high = mon.map_difference_interval(matches, matches, first, second, seed=0, n_resamples=300)
    assert low <= point <= high and high - low < 0.5
    assert (low, high) == mon.map_difference_interval(matches, matches, first, second, seed=0, n_resamples=300)
    # the same detector on the same photos: every resample differs by exactly 0
    same = mon.map_difference_interval(matches, matches, first, first, seed=0, n_resamples=100)
    assert same == (0.0, 0.0)


def test_map_difference_interval_refuses_bad_masks():
    truth, found, ids = fixture()
    matches = mon.match_by_label(found, truth, ids)
    other = mon.match_by_label(found, truth, [7, 9])
    with pytest.raises(ValueError, match="same photos"):
        mon.map_difference_interval(matches, other, [True] * 3, [True] * 3, seed=0)
    with pytest.raises(ValueError, match="3 booleans"):
        mon.map_difference_interval(matches, matches, [1, 1, 1], [True] * 3, seed=0)


# --------------------------------------------------------------------------- cost, figure, numbers


def test_annotation_cost_by_hand():
    truth, _, _ = fixture()
    cost = mon.annotation_cost(truth, [7, 3, 4], seconds_per_photo=6, seconds_per_box=12, usd_per_hour=30)
    assert cost["photos"] == 3 and cost["boxes"] == 3
    assert cost["hours"] == pytest.approx((3 * 6 + 3 * 12) / 3600)
    assert cost["usd"] == pytest.approx(cost["hours"] * 30)
    with pytest.raises(ValueError, match="usd_per_hour"):
        mon.annotation_cost(truth, [7], seconds_per_photo=1, seconds_per_box=1, usd_per_hour=-1)
    with pytest.raises(ValueError, match="empty"):
        mon.annotation_cost(truth, [], seconds_per_photo=1, seconds_per_box=1, usd_per_hour=1)


def test_plot_monitoring_draws_every_panel():
    import matplotlib.pyplot as plt

    monitor = pd.DataFrame({"mean": [0.06, 0.06, 0.08], "alarm": [False, False, True]}, index=[30, 31, 32])
    frame = pd.DataFrame({"old": [0.9, 0.7], "new": [0.9, 0.85]}, index=[31, 34])
    fig, axes = plt.subplots(1, 3)
    mon.plot_monitoring(axes, monitor, (0.059, 0.061), (32, 33), 32, 34,
                        {"a": ("mAP", frame), "b": ("face recall", frame)}, 0.95)
    assert [len(ax.get_lines()) for ax in axes] == [3, 4, 5]   # lines, alarm, labels day, target
    plt.close(fig)


def test_recall_by_group_by_hand():
    truth, found, ids = fixture()
    faces = case.matches(found, truth, ids, "face")   # faces of photos 7, 3, 9; detections scored 0.6-0.95
    groups = pd.Series(["a", "b", "a"], index=ids)
    table = mon.recall_by_group(faces, pd.Series([0.85, 0.0, 0.85], index=ids), groups)
    # a: photo 7's face found at 0.9 (its 0.8 FP is under 0.85), photo 9's at 0.6 is not: 1 of 2
    # b: threshold 0: photo 3's face found (0.7), and its 0.95 detection is a false blur
    assert table.loc["a", "recall"] == pytest.approx(0.5) and table.loc["b", "recall"] == pytest.approx(1.0)
    assert table.loc["a", "false blurs per photo"] == 0 and table.loc["b", "false blurs per photo"] == 1.0
    low = mon.recall_by_group(faces, pd.Series(0.0, index=ids), groups)
    assert low["recall"].tolist() == [1.0, 1.0] and low.loc["a", "false blurs per photo"] == 0.5
    with pytest.raises(ValueError, match="indexed by photo id"):
        mon.recall_by_group(faces, pd.Series(0.0, index=[7, 3]), groups)
    with pytest.raises(ValueError, match="no box"):
        mon.recall_by_group(faces, pd.Series(0.0, index=[7, 3, 9, 4]), pd.Series(["a", "b", "a", "c"], index=[7, 3, 9, 4]))


def test_numbers_for_the_prose():
    stream = pd.DataFrame({"photo_id": [10, 11, 12, 13], "day": [30, 30, 31, 31],
                           "sensor": ["v1", "v1", "v1", "v2"], "noise": [0.06, 0.062, 0.061, 0.09]})
    assert mon.stream_numbers(stream, 31, 3) == {"mon_stream_photos": 4, "mon_first_day": 30, "mon_last_day": 31,
                                                 "mon_rollout_start": 31, "mon_rollout_end": 33}
    monitor = pd.DataFrame({"mean": [0.061, 0.07], "alarm": [False, True], "v2 share": [0.0, 0.5]}, index=[30, 31])
    got = mon.monitor_numbers(monitor, (0.059, 0.063), {"false_alarms": 0}, 31, stream, [0, 0, 1, 2])
    assert got["mon_reference_days"] == 3 and got["mon_alarm_v2"] == 0.5
    assert got["mon_noise_v1"] == pytest.approx(0.061) and got["mon_noise_v2"] == pytest.approx(0.09)
    by_sensor = pd.DataFrame({"mAP": [0.8, 0.6]}, index=["v1", "v2"])
    cost = {"boxes": 5, "hours": 0.5, "usd": 15.0}
    got = mon.sample_numbers(by_sensor, (0.1, 0.3), cost, ["v1", "v2", "v2"], 4)
    assert got["mon_sample"] == 3 and got["mon_sample_v2"] == 2 and got["mon_drop_high"] == 0.3
    per_sensor = pd.DataFrame({"old": [0.8, 0.5], "new": [0.81, 0.7]}, index=["v1", "v2"])
    got = mon.recovery_numbers(per_sensor, (0.1, 0.3), 39, 1900, 1200)
    assert (got["mon_old_v2"], got["mon_new_v2"], got["mon_new_v1"]) == (0.5, 0.7, 0.81)
    assert got["mon_gain_phrase"].data == "a gain"
    assert "holds zero" in mon.recovery_numbers(per_sensor, (-0.1, 0.3), 39, 1900, 1200)["mon_gain_phrase"].data
    on_sensor = {"one": pd.DataFrame({"recall": [0.95, 0.6], "false blurs per photo": [0.2, 0.1]}, index=["v1", "v2"]),
                 "per": pd.DataFrame({"recall": [0.95, 0.9], "false blurs per photo": [0.2, 0.8]}, index=["v1", "v2"])}
    on_sensor["every"] = pd.DataFrame({"recall": [0.99, 0.92], "false blurs per photo": [9, 9]}, index=["v1", "v2"])
    got = mon.threshold_numbers(on_sensor, -1.0, 0.5, 0.95)
    assert got["mon_every_recall_v2"] == 0.92 and got["mon_per_phrase"].data == "still falls short of the target"
    assert mon.threshold_numbers(on_sensor, -1.0, 0.5, 0.9)["mon_per_phrase"].data == "reaches the target"
    assert (got["mon_one_recall_v2"], got["mon_per_recall_v2"], got["mon_per_false_v2"]) == (0.6, 0.9, 0.8)
    assert got["mon_v2_face_threshold"] == -1.0 and got["mon_face_threshold"] == 0.5
