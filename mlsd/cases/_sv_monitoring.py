"""Chapter 6's monitoring plumbing (a section of :mod:`mlsd.cases.street_view_blurring`, kept
apart until it is merged): a label-free noise monitor, AP with photo weights and its bootstrap,
recall under a threshold per photo, annotation cost, the monitoring figure and the numbers the
prose quotes.

The fleet switches to a new camera sensor, noisier and with lower contrast
(:func:`mlsd.datasets.street_view_blurring.new_sensor`). Before any label arrives, the photos
themselves say that something changed: :func:`noise_level` estimates each photo's noise, and
:func:`daily_monitor` raises an alarm when a day's mean leaves a band set on reference days.
With labels, :func:`match_by_label` matches a detector's detections once, and :func:`mean_ap`
and :func:`ap_by_group` score any weighting of the photos (a group, a period, a bootstrap
resample) without matching again; :func:`map_difference_interval` bootstraps a difference of
two such mAPs, and :func:`recall_by_group` scores a threshold per photo (one per sensor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from mlsd._checks import check_array_1d, check_finite, check_finite_array
from mlsd.cases import street_view_blurring as case
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.evaluation.metrics import DetectionMatches, average_precision_of_matches

#: a second difference in both directions: it cancels a constant and a linear ramp (and the
#: gradient across a photo), and turns noise of standard deviation s into noise of standard
#: deviation 6 s (the kernel's entries squared sum to 36)
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
#: median |z| of a standard normal z: the median absolute deviation of noise with sd s is 0.6745 s
_MAD_PER_SD = 0.6745
LABELS = tuple(case.WINDOWS)   # the classes: face, plate


def noise_level(images) -> np.ndarray:
    """Each photo's sensor noise, estimated from its pixels alone: (n,) float64.

    The photo is filtered with :data:`NOISE_KERNEL` (a Laplacian-like second difference, which
    removes the brightness level and gradient), and the noise standard deviation is read from
    the filtered values' median absolute value (a median absolute deviation, as they have mean
    about 0): ``median(|filtered|) / (0.6745 * 6)``. The median ignores the few large values at
    the edges of objects and decoys, where a mean of squares would count them as noise
    (Immerkaer 1996 uses the mean absolute value; the median is the robust version). Smooth
    texture and clipping at 0 and 1 bias the estimate a little, the same way on every day.

    References: Immerkaer (1996), "Fast noise variance estimation", *Computer Vision and Image
    Understanding* 64(2); Donoho & Johnstone (1994), "Ideal spatial adaptation by wavelet
    shrinkage", *Biometrika* 81 (the MAD of fine-scale coefficients as a noise estimate).

    Raises ``ValueError`` if ``images`` is not (n, height, width) with height, width >= 3, or
    holds a value that is not finite.
    """
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 3 or min(arr.shape[1:]) < 3:
        raise ValueError(f"images must be (n, height, width) with sides >= 3, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("images hold values that are not finite")
    filtered = ndimage.correlate(arr, NOISE_KERNEL[None], mode="nearest")[:, 1:-1, 1:-1]
    return np.median(np.abs(filtered).reshape(len(arr), -1), axis=1).astype(np.float64) / (_MAD_PER_SD * 6)


def _days(name: str, days, n: int) -> np.ndarray:
    arr = check_array_1d(name, days)
    if len(arr) != n:
        raise ValueError(f"{name} needs one day per value ({n}), got {len(arr)}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr


def daily_monitor(values, days, reference_values, reference_days, *, k: float = 4.0):
    """A daily alarm on the mean of a per-photo statistic, its band set on reference days only.

    Each reference day's mean of ``reference_values`` gives one number; the band is their mean
    plus or minus ``k`` standard deviations (ddof=1), so a day of the live stream (``values``
    with their ``days``) alarms when its mean falls outside it. A band from daily means (and not
    from single photos) has the width of a day's sampling noise: with a hundred photos a day a
    small shift in the mix is caught. With k = 4 and normal daily means a false alarm comes
    about once in 16,000 days; but a band from few reference days is itself uncertain.

    Returns ``(monitor, (low, high))``: a DataFrame indexed by day (sorted) with columns
    ``photos``, ``mean`` and ``alarm`` (bool), and the band.

    Raises ``ValueError`` if the values are not finite, a days array does not have one integer
    per value, there are fewer than two reference days, or ``k`` is not positive.
    """
    values, reference_values = check_finite_array("values", values), check_finite_array(
        "reference_values", reference_values)
    days = _days("days", days, len(values))
    reference_days = _days("reference_days", reference_days, len(reference_values))
    k = check_finite("k", k)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    daily_reference = pd.Series(reference_values).groupby(reference_days).mean()
    if len(daily_reference) < 2:
        raise ValueError("the band needs at least two reference days")
    centre, spread = float(daily_reference.mean()), float(daily_reference.std(ddof=1))
    band = (centre - k * spread, centre + k * spread)
    monitor = pd.Series(values).groupby(days).agg(["size", "mean"]).rename(columns={"size": "photos"})
    monitor.index.name = "day"
    monitor["alarm"] = (monitor["mean"] < band[0]) | (monitor["mean"] > band[1])
    return monitor, band


@dataclass(frozen=True)
class PhotoMatches:
    """:func:`match_by_label`'s answer: the photos (in order) and each class's matches."""

    photo_ids: np.ndarray
    by_label: dict[str, DetectionMatches]

    @property
    def n_photos(self) -> int:
        return len(self.photo_ids)


def match_by_label(detections: pd.DataFrame, annotations: pd.DataFrame, photo_ids, *,
                   iou: float = 0.5) -> PhotoMatches:
    """Each class's detections on the photos ``photo_ids`` matched to their annotations, once.

    ``detections`` has the columns photo_id, label, score, x1, y1, x2, y2 (a detector's
    table; rows of other photos are ignored) and ``annotations`` photo_id, label, x1, y1, x2,
    y2. The matching is the case module's :func:`~mlsd.cases.street_view_blurring.matches`,
    one class at a time; :func:`mean_ap` then takes one weight per photo, in the order of
    ``photo_ids``.

    Raises ``ValueError`` if ``photo_ids`` is empty or repeats an id, a table misses a column,
    or a class has no annotated box on these photos (AP undefined).
    """
    ids = check_array_1d("photo_ids", photo_ids)
    if len(np.unique(ids)) != len(ids):
        raise ValueError("photo_ids repeats an id")
    for name, frame, columns in (("detections", detections, ["photo_id", "label", "score"]),
                                 ("annotations", annotations, ["photo_id", "label"])):
        missing = set(columns + ["x1", "y1", "x2", "y2"]) - set(frame.columns)
        if missing:
            raise ValueError(f"{name} misses the columns {sorted(missing)}")
    if ids.dtype.kind not in "iu" or ids.min() < 0:
        raise ValueError("photo_ids must be integers >= 0")
    out = {}
    for label in LABELS:
        if not ((annotations["label"] == label) & annotations["photo_id"].isin(ids)).any():
            raise ValueError(f"no annotated {label} on these photos: its AP is undefined")
        out[label] = case.matches(detections, annotations, ids, label, iou)
    return PhotoMatches(ids, out)


def _matches(matches) -> PhotoMatches:
    if not isinstance(matches, PhotoMatches):
        raise TypeError(f"matches must be match_by_label's answer, got {type(matches).__name__}")
    return matches


def class_aps(matches: PhotoMatches, weights=None) -> dict[str, float]:
    """AP of each class with photo ``weights`` (one per position of the matched photos; all 1
    by default), as :func:`mlsd.evaluation.metrics.average_precision_of_matches` defines it,
    and their mean under the key ``"mAP"``.

    Raises ``ValueError`` if ``weights`` does not hold one finite weight >= 0 per photo, or a
    class's boxes weigh 0 in total."""
    ids = _matches(matches).photo_ids
    w = np.ones(len(ids)) if weights is None else check_finite_array("weights", weights)
    if w.ndim != 1 or len(w) != len(ids):
        raise ValueError(f"weights needs one weight per photo ({len(ids)}), got shape {w.shape}")
    by_id = np.zeros(int(ids.max()) + 1)   # the matches' images are photo ids
    by_id[ids] = w
    aps = {label: average_precision_of_matches(m, by_id) for label, m in matches.by_label.items()}
    return aps | {"mAP": float(np.mean(list(aps.values())))}


def mean_ap(matches: PhotoMatches, weights=None) -> float:
    """The mean over classes of :func:`class_aps`: mAP with photo weights (a bootstrap's statistic)."""
    return class_aps(matches, weights)["mAP"]


def map_difference_interval(first: PhotoMatches, second: PhotoMatches, first_photos, second_photos,
                            *, seed: int, n_resamples: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of ``mAP(first on first_photos) - mAP(second on second_photos)``.

    Both are matches of the same photos (two detectors, or one detector twice); the masks
    (booleans, one per photo) pick the photos each mAP is taken over: the same photos for two
    detectors (a paired comparison), or two groups (v1 and v2 photos) for one detector. Each
    resample draws the photos with replacement (:func:`mlsd.evaluation.experiments.paired_bootstrap`)
    and weighs every photo by how often it was drawn, in both terms: no matching again.

    Raises ``ValueError`` if the two were matched on different numbers of photos or a mask
    does not hold one boolean per photo.
    """
    n = _matches(first).n_photos
    if _matches(second).n_photos != n:
        raise ValueError(f"first and second must match the same photos, got {n} and {second.n_photos}")
    masks = [np.asarray(m) for m in (first_photos, second_photos)]
    if any(m.dtype != bool or m.shape != (n,) for m in masks):
        raise ValueError(f"first_photos and second_photos must be {n} booleans each")

    def difference(rows):
        drawn = np.bincount(rows, minlength=n)
        return mean_ap(first, drawn * masks[0]) - mean_ap(second, drawn * masks[1])

    return paired_bootstrap(difference, np.arange(n), seed=seed, n_resamples=n_resamples, level=level)


def ap_by_group(matches: PhotoMatches, groups) -> pd.DataFrame:
    """AP per class and mAP for each group of the matched photos (``groups``: one label per
    position, e.g. the sensor or a period of days): one row per group, in sorted order.

    Raises ``ValueError`` if ``groups`` does not have one label per photo, or a group has no
    box of a class.
    """
    n = _matches(matches).n_photos
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n:
        raise ValueError(f"groups needs one label per photo ({n}), got shape {groups.shape}")
    rows = {}
    for g in sorted(set(groups.tolist())):   # Python values: a group's name reads plainly
        try:
            rows[g] = class_aps(matches, (groups == g).astype(float))
        except ValueError as error:
            raise ValueError(f"group {g!r}: {error}") from error
    return pd.DataFrame.from_dict(rows, orient="index")


def annotation_cost(annotations: pd.DataFrame, photo_ids, *, seconds_per_photo: float,
                    seconds_per_box: float, usd_per_hour: float) -> dict:
    """What labelling the photos ``photo_ids`` costs: every photo looked at, every box drawn.

    Returns ``{"photos", "boxes", "hours", "usd"}``. The three rates are assumptions to state
    (a box takes seconds to draw and check; a photo with nothing in it still takes a look).

    Raises ``ValueError`` if a rate is negative or not finite, or ``photo_ids`` is empty.
    """
    ids = check_array_1d("photo_ids", photo_ids)
    rates = {name: check_finite(name, value) for name, value in (
        ("seconds_per_photo", seconds_per_photo), ("seconds_per_box", seconds_per_box),
        ("usd_per_hour", usd_per_hour))}
    for name, value in rates.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    boxes = int(annotations["photo_id"].isin(ids).sum())
    hours = (len(ids) * rates["seconds_per_photo"] + boxes * rates["seconds_per_box"]) / 3600
    return {"photos": len(ids), "boxes": boxes, "hours": hours, "usd": hours * rates["usd_per_hour"]}


def recall_by_group(matched: DetectionMatches, thresholds, groups) -> pd.DataFrame:
    """Recall and false blurs per photo of one class's detections, each photo with its own
    threshold, for each group of photos (a period of days, a sensor).

    ``matched`` is one class's matches whose images are photo ids
    (:func:`mlsd.cases.street_view_blurring.matches`); ``thresholds`` and ``groups`` are Series
    indexed by photo id (every matched photo in them): a detection scoring at or above its
    photo's threshold is blurred. Returns one row per group (sorted) with ``recall`` (boxes
    blurred / boxes) and ``false blurs per photo`` (blurred detections of no box / photos).

    Raises ``ValueError`` if a photo of the matches is missing from ``thresholds`` or
    ``groups``, or a group has no box (recall undefined).
    """
    if not isinstance(matched, DetectionMatches):
        raise TypeError(f"matched must be match_detections' answer, got {type(matched).__name__}")
    photos = np.union1d(np.asarray(matched.image, dtype=np.int64),
                        np.asarray(matched.ground_truth_images, dtype=np.int64))
    for name, series in (("thresholds", thresholds), ("groups", groups)):
        if not isinstance(series, pd.Series) or not np.isin(photos, series.index).all():
            raise ValueError(f"{name} must be a Series indexed by photo id holding every matched photo")
    on = matched.score >= thresholds.reindex(matched.image).to_numpy(float)
    group_of = groups.reindex(matched.image).to_numpy()
    boxes = groups.reindex(matched.ground_truth_images).value_counts()
    table = pd.DataFrame({
        "recall": pd.Series(group_of[on & matched.is_tp]).value_counts().reindex(boxes.index, fill_value=0) / boxes,
        "false blurs per photo": pd.Series(group_of[on & ~matched.is_tp]).value_counts().reindex(
            boxes.index, fill_value=0) / groups.value_counts().reindex(boxes.index)})
    missing = sorted(set(groups.unique()) - set(boxes.index))
    if missing:
        raise ValueError(f"groups {missing} have no box: their recall is undefined")
    return table.sort_index()


def plot_monitoring(axes, monitor: pd.DataFrame, band: tuple, rollout: tuple, alarm_day: int,
                    labels_day: int, panels: dict, target: float):
    """Left: the daily mean noise estimate with its band, the roll-out shaded, the first alarm
    circled. Then one panel per entry of ``panels`` (title -> (y label, DataFrame indexed by a
    period's middle day, one column per line)), with the alarm (dotted) and the day the labels
    arrive (dashed) marked; a panel whose y label starts with "face recall" also gets the
    ``target`` as a horizontal line."""
    from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS

    left = axes[0]
    for ax in axes:
        ax.axvspan(rollout[0] - 0.5, rollout[1] + 0.5, color=OKABE_ITO["orange"], alpha=0.15,
                   linewidth=0, label="v2 roll-out" if ax is left else None)
        ax.axvline(alarm_day, color=ROLE_COLORS["alert"], linestyle=":", linewidth=1.2)
    left.plot(monitor.index, monitor["mean"], color=ROLE_COLORS["model"], marker=".",
              label="daily mean")
    left.axhspan(*band, color=ROLE_COLORS["baseline"], alpha=0.3, linewidth=0,
                 label="reference band")
    left.plot([alarm_day], [monitor.loc[alarm_day, "mean"]], "o", color=ROLE_COLORS["alert"],
              markersize=10, fillstyle="none", label=f"first alarm (day {alarm_day})")
    left.set(xlabel="day", ylabel="estimated noise (sd)", title="Label-free monitor")
    left.legend(loc="upper left", fontsize=8)
    for ax, (title, (ylabel, frame)) in zip(axes[1:], panels.items()):
        for name, color in zip(frame.columns, (ROLE_COLORS["baseline"], ROLE_COLORS["model"],
                                               OKABE_ITO["purple"])):
            ax.plot(frame.index, frame[name], marker="o", color=color, label=name)
        ax.axvline(labels_day, color=ROLE_COLORS["model"], linestyle="--", linewidth=1.2,
                   label=f"labels in (day {labels_day})")
        if ylabel.startswith("face recall"):
            ax.axhline(target, color=ROLE_COLORS["oracle"], linewidth=1, label=f"target {target:.2f}")
        ax.set(xlabel="day (three-day periods)", ylabel=ylabel, title=title)
        ax.legend(loc="lower left", fontsize=8)
    return axes


# ------------------------- the numbers the prose quotes (for mlsd.book.glue_numbers)


def stream_numbers(stream: pd.DataFrame, rollout_start: int, rollout_days: int) -> dict:
    """The new photos (``stream``: photo_id, day, sensor) and the roll-out's first and last day."""
    return {"mon_stream_photos": len(stream), "mon_first_day": int(stream["day"].min()),
            "mon_last_day": int(stream["day"].max()), "mon_rollout_start": int(rollout_start),
            "mon_rollout_end": int(rollout_start + rollout_days - 1)}


def monitor_numbers(monitor: pd.DataFrame, band: tuple, alarm: dict, alarm_day: int,
                    stream: pd.DataFrame, reference_days) -> dict:
    """The label-free monitor's numbers: the band, the reference days, the first alarm (day,
    the day's v2 share, the false alarms before it) and the mean noise estimate per sensor.

    ``monitor`` is :func:`daily_monitor`'s table with a ``v2 share`` column, ``alarm``
    :func:`mlsd.evaluation.drift.evaluate_alarms`' answer and ``stream`` the new photos with
    their ``noise`` estimate."""
    noise = stream.groupby("sensor")["noise"].mean()
    return {"mon_band_low": float(band[0]), "mon_band_high": float(band[1]),
            "mon_reference_days": len(np.unique(reference_days)), "mon_alarm_day": int(alarm_day),
            "mon_alarm_v2": float(monitor.loc[alarm_day, "v2 share"]),
            "mon_false_alarms": int(alarm["false_alarms"]),
            "mon_noise_v1": float(noise["v1"]), "mon_noise_v2": float(noise["v2"])}


def sample_numbers(by_sensor: pd.DataFrame, drop_ci: tuple, cost: dict, sensors, label_days: int) -> dict:
    """The labelled sample's numbers: its size and v2 photos (``sensors``: one per photo), mAP
    per sensor (``by_sensor``: :func:`ap_by_group`), the drop's interval and the labels' cost
    (:func:`annotation_cost`)."""
    sensors = np.asarray(sensors)
    return {"mon_sample": len(sensors), "mon_sample_v2": int((sensors == "v2").sum()),
            "mon_label_days": int(label_days), "mon_map_v1": float(by_sensor.loc["v1", "mAP"]),
            "mon_map_v2": float(by_sensor.loc["v2", "mAP"]), "mon_drop_low": float(drop_ci[0]),
            "mon_drop_high": float(drop_ci[1]), "mon_label_boxes": int(cost["boxes"]),
            "mon_label_hours": float(cost["hours"]), "mon_label_usd": float(cost["usd"])}


def recovery_numbers(per_sensor: pd.DataFrame, gain_ci: tuple, retrain_day: int, n_retrain: int,
                     n_fresh: int) -> dict:
    """The retraining's numbers: mAP of both detectors (``per_sensor``: one row per sensor, the
    deployed detector's column first, the retrained one's second) on the unlabelled photos,
    the v2 gain's interval and a phrase for it (``mon_gain_phrase``), the retraining day and the
    number of training and scored photos."""
    from IPython.display import Markdown

    (old_v1, new_v1), (old_v2, new_v2) = per_sensor.loc["v1"], per_sensor.loc["v2"]
    low, high = gain_ci
    phrase = ("no detectable gain: the interval holds zero" if low <= 0 <= high else
              "a gain" if low > 0 else "a loss")
    return {"mon_gain_phrase": Markdown(phrase), "mon_old_v1": float(old_v1), "mon_new_v1": float(new_v1), "mon_old_v2": float(old_v2),
            "mon_new_v2": float(new_v2), "mon_gain_low": float(gain_ci[0]),
            "mon_gain_high": float(gain_ci[1]), "mon_retrain_day": int(retrain_day),
            "mon_retrain_photos": int(n_retrain), "mon_fresh": int(n_fresh)}


def threshold_numbers(on_sensor: dict, v2_threshold: float, threshold: float, target: float) -> dict:
    """Face recall and false blurs per photo on each sensor (``on_sensor``: policy name ->
    :func:`recall_by_group` by sensor; the policies are one threshold, one per sensor, and
    every kept box blurred), the two face thresholds, and whether the per-sensor threshold
    reaches the recall ``target`` on v2 (``mon_per_phrase``)."""
    from IPython.display import Markdown

    one_table, per_table, every_table = list(on_sensor.values())[:3]
    out = {"mon_face_threshold": float(threshold), "mon_v2_face_threshold": float(v2_threshold),
           "mon_every_recall_v2": float(every_table.loc["v2", "recall"]),
           "mon_per_phrase": Markdown(
               "reaches the target" if per_table.loc["v2", "recall"] >= target
               else "still falls short of the target")}
    for short, table in (("one", one_table), ("per", per_table)):
        for sensor in ("v1", "v2"):
            out[f"mon_{short}_recall_{sensor}"] = float(table.loc[sensor, "recall"])
            out[f"mon_{short}_false_{sensor}"] = float(table.loc[sensor, "false blurs per photo"])
    return out
