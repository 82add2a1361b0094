"""Chapter 6's plumbing: the image pyramid, sliding windows and their scores, detections, the oracle.

The chapter teaches the detector's parts by writing them: the gradient-orientation features
(HOG), the logistic regression over windows, hard-negative mining and non-maximum suppression.
What it uses but does not teach lives here:

- the **pyramid**: every photo resized so that each of the four object sizes fills one
  canonical window (:data:`LEVELS`); window positions every :data:`STRIDE` pixels;
- **cell maps**: per-pixel channels (orientation bins, or raw intensity) summed over
  :data:`CELL` x :data:`CELL` boxes at every position, so a window's feature is a gather;
- **window scores** of a linear model for every window of every photo, computed as shifted sums
  of the cell maps (no window's feature vector is ever materialised);
- **detections**: the top windows of each photo after suppression, as a table;
- the **oracle**: matching pursuit with the hidden templates on the photo minus its hidden clean
  background;
- **evaluation**: matched detections, AP and mAP, precision-recall, a threshold for a recall
  target and what it blurs;
- **serving**: :func:`blur` pixelates the boxes at or above their threshold,
  :func:`blur_outcomes` counts missed objects and false blurs per photo, :func:`simulate_reports`
  draws users' reports of missed blurs for an A/B test, :func:`batch_cores` sizes a batch job, and
  :class:`BlurStore` (SQLite) keeps every model version's blurs and lists the re-blur job;
- **monitoring**: :func:`noise_level` estimates a photo's noise without labels and
  :func:`daily_monitor` raises an alarm on it; :func:`match_by_label`, :func:`ap_by_group` and
  :func:`map_difference_interval` score a labelled sample by group with a bootstrap, and
  :func:`recall_by_group` a threshold per photo.

Boxes follow the annotations' convention: (x1, y1, x2, y2) covers columns x1..x2-1 and rows
y1..y2-1 (detections' boxes are floats in the same pixel coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from scipy import ndimage, signal

from mlsd._checks import check_array_1d, check_finite, check_finite_array, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets import street_view_blurring as world_module
from mlsd.evaluation.experiments import paired_bootstrap
from mlsd.evaluation.metrics import (DetectionMatches, average_precision_of_matches, iou_matrix,
                                     match_detections)
from mlsd.systems.feature_store import SQLiteStore

#: pyramid scales: a face 12, 16, 20 or 24 pixels tall becomes 16 (a plate 18-36 wide becomes 24)
LEVELS = (4 / 3, 1.0, 0.8, 2 / 3)
CELL = 4          # pixels per cell side
STRIDE = 2        # pixels between windows, at each level
#: the canonical window of each class, in cells (rows, columns): 16 x 12 and 8 x 24 pixels
WINDOWS = {"face": (4, 3), "plate": (2, 6)}
NORMALISATIONS = ("none", "l2", "standardise")


def _images(images) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 3:
        raise ValueError(f"images must be an (n, height, width) array, got shape {arr.shape}")
    return arr


def _label(label: str) -> tuple[int, int]:
    if label not in WINDOWS:
        raise ValueError(f"label must be one of {sorted(WINDOWS)}, got {label!r}")
    return WINDOWS[label]


def level_scale(level: int) -> float:
    """The exact scale of pyramid level ``level``: its photo size over the original's (85 / 64 for 4 / 3)."""
    level = check_int("level", level, minimum=0)
    if level >= len(LEVELS):
        raise ValueError(f"level must be below {len(LEVELS)}, got {level}")
    return round(world_module.IMAGE_SIZE * LEVELS[level]) / world_module.IMAGE_SIZE


def pyramid(images) -> list[np.ndarray]:
    """The photos at each scale of :data:`LEVELS` (bilinear, pixel edges aligned)."""
    images = _images(images)
    return [ndimage.zoom(images, (1, f, f), order=1, grid_mode=True, mode="nearest") for f in LEVELS]


def cell_maps(channels) -> np.ndarray:
    """Sums of ``channels`` (n, h, w, c) over CELL x CELL boxes every STRIDE pixels.

    Entry (u, v) is the box whose top-left pixel is (STRIDE * u, STRIDE * v); the maps have
    (h // STRIDE - 1, w // STRIDE - 1) positions (a last odd row or column is dropped). Each box is
    four 2 x 2 blocks added in a fixed order, so the sums do not depend on the machine.
    """
    channels = np.asarray(channels, dtype=np.float32)
    if channels.ndim != 4:
        raise ValueError(f"channels must be (n, height, width, channels), got shape {channels.shape}")
    n, h, w, c = channels.shape
    h, w = h - h % STRIDE, w - w % STRIDE
    blocks = channels[:, :h, :w].reshape(n, h // STRIDE, STRIDE, w // STRIDE, STRIDE, c).sum(axis=(2, 4))
    return blocks[:, :-1, :-1] + blocks[:, 1:, :-1] + blocks[:, :-1, 1:] + blocks[:, 1:, 1:]


#: a window's neighbouring cells are this many positions apart in the cell maps
_STEP = CELL // STRIDE


def window_grid(cells_shape, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The window corners (rows ``ys``, columns ``xs``, in cell-map positions) that fit in maps of (h, w)."""
    rows, cols = _label(label)
    h, w = cells_shape[:2]
    return np.arange(h - (rows - 1) * _STEP), np.arange(w - (cols - 1) * _STEP)


def window_boxes(ys, xs, label: str, level: int) -> np.ndarray:
    """The (len(ys), len(xs), 4) boxes (x1, y1, x2, y2) of windows at ``level``, in photo pixels."""
    rows, cols = _label(label)
    f = level_scale(level)
    y1, x1 = np.meshgrid(np.asarray(ys, float) * STRIDE / f, np.asarray(xs, float) * STRIDE / f, indexing="ij")
    return np.stack([x1, y1, x1 + cols * CELL / f, y1 + rows * CELL / f], axis=-1)


def _normalise(features: np.ndarray, how: str) -> np.ndarray:
    if how == "l2":
        return features / np.sqrt((features**2).sum(-1, keepdims=True) + 1e-4)
    if how == "standardise":
        centred = features - features.mean(-1, keepdims=True)
        return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-4)
    return features


def gather(cells, image_index, ys, xs, label: str, normalise: str = "l2") -> np.ndarray:
    """The feature vectors of windows (image, top-left ys, xs) from cell maps: (n, rows * cols * c).

    A window's feature is its cells' channels side by side (row by row), then normalised:
    ``"l2"`` to unit length (HOG's contrast invariance), ``"standardise"`` to mean 0 and
    variance 1, or ``"none"``.
    """
    rows, cols = _label(label)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    i, y, x = (np.asarray(a, dtype=np.int64) for a in (image_index, ys, xs))
    parts = [cells[i, y + _STEP * r, x + _STEP * c] for r in range(rows) for c in range(cols)]
    return _normalise(np.concatenate(parts, axis=-1), normalise)


def gather_windows(cells: list[np.ndarray], windows: pd.DataFrame, label: str, normalise: str = "l2") -> np.ndarray:
    """The features of the windows of a :func:`top_windows` table, in its row order."""
    out = None
    level = windows["level"].to_numpy()
    for lvl, c in enumerate(cells):
        on = np.flatnonzero(level == lvl)
        part = gather(c, windows["photo"].to_numpy()[on], windows["y"].to_numpy()[on],
                      windows["x"].to_numpy()[on], label, normalise)
        if out is None:
            out = np.empty((len(windows), part.shape[1]), dtype=part.dtype)
        out[on] = part
    return out


def window_scores(cells, coef, intercept: float, label: str, normalise: str = "l2") -> np.ndarray:
    """A linear model's score ``coef . feature + intercept`` for every window: (n, len(ys), len(xs)).

    Equal to scoring :func:`gather`'s features for every window of :func:`window_grid`, without
    building them: each cell's channels are projected once, then the projections are summed
    at the window's cell offsets.
    """
    rows, cols = _label(label)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    n, h, w, channels = cells.shape
    coef = np.asarray(coef, dtype=np.float32).reshape(rows * cols, channels)
    ys, xs = window_grid(cells.shape[1:3], label)
    flat = cells.reshape(-1, channels)
    # one matrix product: each cell's projection on every window cell's weights, and its sum
    projected = (flat @ np.vstack([coef, np.ones((1, channels), np.float32)]).T).reshape(n, h, w, -1)
    energy = (np.square(flat) @ np.ones((channels, 1), np.float32)).reshape(n, h, w)
    total = projected[..., -1]
    score = np.zeros((n, len(ys), len(xs)), dtype=np.float32)
    norm, mean = np.zeros_like(score), np.zeros_like(score)
    for k in range(rows * cols):
        r, c = divmod(k, cols)
        at = (slice(None), slice(_STEP * r, _STEP * r + len(ys)), slice(_STEP * c, _STEP * c + len(xs)))
        score += projected[at + (k,)]
        norm += energy[at]
        mean += total[at]
    d = rows * cols * channels
    if normalise == "l2":
        score = score / np.sqrt(norm + 1e-4)
    elif normalise == "standardise":
        mean /= d
        score = (score - mean * coef.sum()) / np.sqrt(norm / d - mean**2 + 1e-4)
    return score + np.float32(intercept)


def ground_truth(annotations: pd.DataFrame, photo_ids, label: str) -> list[np.ndarray]:
    """Each photo's true boxes of ``label``, (k, 4) float arrays in the order of ``photo_ids``."""
    _label(label)
    rows = annotations[annotations["label"] == label]
    order = np.argsort(rows["photo_id"].to_numpy(), kind="stable")
    photo = rows["photo_id"].to_numpy()[order]
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(float)[order]
    ids = np.asarray(photo_ids)
    first, last = np.searchsorted(photo, ids, "left"), np.searchsorted(photo, ids, "right")
    return [boxes[a:b] for a, b in zip(first, last)]


def window_overlaps(truth: list[np.ndarray], label: str, level: int, ys, xs) -> np.ndarray:
    """Each window's best IoU with a true box of its photo: (n, len(ys), len(xs))."""
    boxes = window_boxes(ys, xs, label, level).reshape(-1, 4)
    most = max((len(t) for t in truth), default=0)
    if most == 0:
        return np.zeros((len(truth), len(ys), len(xs)))
    padded = np.zeros((len(truth), most, 4))   # zero-area boxes overlap nothing
    for i, t in enumerate(truth):
        padded[i, :len(t)] = t
    w = boxes[None, :, None, :]                 # (1, windows, 1, 4) against (n, 1, most, 4)
    t = padded[:, None, :, :]
    inter = (np.clip(np.minimum(w[..., 2], t[..., 2]) - np.maximum(w[..., 0], t[..., 0]), 0, None)
             * np.clip(np.minimum(w[..., 3], t[..., 3]) - np.maximum(w[..., 1], t[..., 1]), 0, None))
    union = ((w[..., 2] - w[..., 0]) * (w[..., 3] - w[..., 1])
             + (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1]) - inter)
    overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).max(axis=2)
    return overlap.reshape(len(truth), len(ys), len(xs))


def top_windows(scores: list[np.ndarray], label: str, candidates: int = 100) -> pd.DataFrame:
    """Each photo's ``candidates`` best windows over all levels, best first (ties: the lower
    level, then row, then column): one row per window with photo (the row in the score maps),
    level, y, x (cell-map position), score and its box x1, y1, x2, y2 in photo pixels.
    ``scores`` holds one (n, ny, nx) array per level."""
    candidates = check_int("candidates", candidates, minimum=1)
    if len(scores) != len(LEVELS):
        raise ValueError(f"scores must hold one map per level ({len(LEVELS)}), got {len(scores)}")
    grids = [window_grid_of(s, label) for s in scores]
    boxes = np.concatenate([window_boxes(*g, label, lvl).reshape(-1, 4) for lvl, g in enumerate(grids)])
    level = np.concatenate([np.full(s[0].size, lvl) for lvl, s in enumerate(scores)])
    y = np.concatenate([np.repeat(g[0], len(g[1])) for g in grids])
    x = np.concatenate([np.tile(g[1], len(g[0])) for g in grids])
    flat = np.concatenate([s.reshape(len(s), -1) for s in scores], axis=1)
    candidates = min(candidates, flat.shape[1])
    # the best of each row, ties at the cut going to the lower window (argpartition's are arbitrary)
    kth = -np.partition(-flat, candidates - 1, axis=1)[:, candidates - 1:candidates]
    above, at = flat > kth, flat == kth
    take = above | (at & (np.cumsum(at, axis=1) <= candidates - above.sum(axis=1, keepdims=True)))
    best = np.nonzero(take)[1].reshape(len(flat), candidates)
    order = np.argsort(-np.take_along_axis(flat, best, axis=1), axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1).ravel()
    photo = np.repeat(np.arange(len(flat)), candidates)
    return pd.DataFrame({"photo": photo, "level": level[best], "y": y[best], "x": x[best],
                         "score": flat[photo, best], **dict(zip(("x1", "y1", "x2", "y2"), boxes[best].T))})


def suppress_per_photo(windows: pd.DataFrame, photo_ids, label: str, suppress: Callable, *,
                       iou_threshold: float, keep: int = 10) -> pd.DataFrame:
    """Detections from scored windows (a :func:`top_windows` table, scores possibly replaced): per
    photo, ``suppress(boxes, scores, iou_threshold)`` (the indices kept, best first), then the
    ``keep`` best. Returns one row per detection: photo_id, label, score, x1, y1, x2, y2."""
    keep = check_int("keep", keep, minimum=1)
    check_finite("iou_threshold", iou_threshold)
    photo_ids = np.asarray(photo_ids)
    order = np.argsort(windows["photo"].to_numpy(), kind="stable")   # group the photos' rows
    boxes = windows[["x1", "y1", "x2", "y2"]].to_numpy()[order]
    scores, photo = windows["score"].to_numpy()[order], windows["photo"].to_numpy()[order]
    first, last = np.searchsorted(photo, np.arange(len(photo_ids)), "left"), np.searchsorted(photo, np.arange(len(photo_ids)), "right")
    rows = []
    for i, (a, b) in enumerate(zip(first, last)):
        kept = a + np.asarray(suppress(boxes[a:b], scores[a:b], iou_threshold), dtype=np.int64)[:keep]
        rows += [(photo_ids[i], label, float(scores[j]), *boxes[j]) for j in kept]
    return pd.DataFrame(rows, columns=["photo_id", "label", "score", "x1", "y1", "x2", "y2"])


def detect(scores: list[np.ndarray], photo_ids, label: str, suppress: Callable, *, iou_threshold: float,
           candidates: int = 100, keep: int = 10) -> pd.DataFrame:
    """Detections from window scores: :func:`top_windows`, then :func:`suppress_per_photo`."""
    windows = top_windows(scores, label, candidates)
    return suppress_per_photo(windows, photo_ids, label, suppress, iou_threshold=iou_threshold, keep=keep)


def window_grid_of(score_map: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """The window corners behind a score map of shape (n, ny, nx)."""
    _label(label)
    return np.arange(score_map.shape[1]), np.arange(score_map.shape[2])


# --------------------------------------------------------------------------- the oracle


def oracle_detections(world, photo_ids, *, steps: int = 8) -> pd.DataFrame:
    """The clairvoyant ceiling: matching pursuit with the hidden templates on photo - clean background.

    It knows what no detector can: the clean background (gradient, texture, decoys) and the exact
    templates. For ``steps`` rounds it finds, in each photo's residual, the template and position
    that explain the most energy (the largest normalised correlation over both classes and all
    sizes), records it with its signal-to-noise ratio as the score, and subtracts it. Objects are
    explained jointly across classes, so a plate is not also reported as a face.
    """
    t = world if isinstance(world, dict) else world_module.all_tables(world)
    ids = np.asarray(photo_ids, dtype=np.int64)
    residual = world_module.pixels(t, ids) - world_module.clean_background(t, ids)
    noise = t["backgrounds"].set_index("photo_id").loc[ids, "noise"].to_numpy()
    bank = {key: tpl / np.linalg.norm(tpl) for key, tpl in world_module.templates().items()}
    rows, n = [], len(ids)
    for _ in range(check_int("steps", steps, minimum=1)):
        best, choice = np.full(n, -np.inf), [None] * n
        for key, tpl in bank.items():
            corr = signal.fftconvolve(residual, tpl[None, ::-1, ::-1], mode="valid", axes=(1, 2))
            flat = np.abs(corr).reshape(n, -1)
            j = flat.argmax(axis=1)
            value = flat[np.arange(n), j]
            for i in np.flatnonzero(value > best):
                y, x = divmod(int(j[i]), corr.shape[2])
                best[i], choice[i] = value[i], (key, y, x, float(corr[i, y, x]))
        for i, photo in enumerate(ids.tolist()):
            (label, size), y, x, amplitude = choice[i]
            tpl = bank[(label, size)]
            h, w = tpl.shape
            residual[i, y:y + h, x:x + w] -= amplitude * tpl
            rows.append((photo, label, best[i] / noise[i], x, y, x + w, y + h))
    return pd.DataFrame(rows, columns=["photo_id", "label", "score", "x1", "y1", "x2", "y2"])


# --------------------------------------------------------------------------- training windows and evaluation


def overlaps_by_level(cells: list[np.ndarray], truth: list[np.ndarray], label: str) -> list[np.ndarray]:
    """:func:`window_overlaps` at every level of ``cells``: each window's best IoU with a true box."""
    return [window_overlaps(truth, label, level, *window_grid(c.shape[1:3], label)) for level, c in enumerate(cells)]


def training_windows(cells: list[np.ndarray], overlaps: list[np.ndarray], label: str, rng, *,
                     negatives_per_photo: int, normalise: str = "l2", positive_iou: float = 0.6,
                     negative_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Labelled windows for a first training set: every window whose IoU with a true box of
    ``label`` is at least ``positive_iou`` (label 1), and ``negatives_per_photo`` windows per photo
    drawn at random among those below ``negative_iou`` (label 0), over all levels. Windows in
    between are ambiguous and left out. ``cells`` holds one cell map per level, ``overlaps`` the
    windows' IoUs (:func:`overlaps_by_level`). Returns features (n, d) and labels (n,).
    """
    negatives_per_photo = check_int("negatives_per_photo", negatives_per_photo, minimum=0)
    if not 0 <= negative_iou < positive_iou <= 1:
        raise ValueError(f"need 0 <= negative_iou < positive_iou <= 1, got {negative_iou}, {positive_iou}")
    if len(cells) != len(LEVELS) or len(overlaps) != len(LEVELS):
        raise ValueError("cells and overlaps must hold one array per level")
    features, labels = [], []
    total = negatives_per_photo * len(cells[0])
    for level, (c, overlap) in enumerate(zip(cells, overlaps)):
        share = total * (level + 1) // len(LEVELS) - total * level // len(LEVELS)
        ys, xs = window_grid(c.shape[1:3], label)
        if overlap.shape != (len(c), len(ys), len(xs)):
            raise ValueError(f"overlaps of shape {overlap.shape} do not match the windows {(len(c), len(ys), len(xs))}")
        i, a, b = np.nonzero(overlap >= positive_iou)
        features.append(gather(c, i, ys[a], xs[b], label, normalise))
        labels.append(np.ones(len(i)))
        i, a, b = np.nonzero(overlap < negative_iou)
        pick = np.sort(rng.choice(len(i), size=min(len(i), share), replace=False))
        features.append(gather(c, i[pick], ys[a[pick]], xs[b[pick]], label, normalise))
        labels.append(np.zeros(len(pick)))
    return np.concatenate(features), np.concatenate(labels)


def matches(detections: pd.DataFrame, annotations: pd.DataFrame, photo_ids, label: str,
            iou_threshold: float = 0.5):
    """The detections of ``label`` on ``photo_ids`` matched to the annotations (see
    :func:`mlsd.evaluation.metrics.match_detections`)."""
    photo_ids = np.asarray(photo_ids)
    truth = ground_truth(annotations, photo_ids, label)
    gt = [(p, box) for p, boxes in zip(photo_ids.tolist(), truth) for box in boxes]
    mine = detections[(detections["label"] == label) & detections["photo_id"].isin(photo_ids)]
    found = list(zip(mine["photo_id"].tolist(), mine["score"].to_numpy(),
                     mine[["x1", "y1", "x2", "y2"]].to_numpy()))
    return match_detections(found, gt, iou_threshold)


def mean_average_precision(detections: pd.DataFrame, annotations: pd.DataFrame, photo_ids,
                           iou_threshold: float = 0.5) -> dict:
    """AP of each class and their mean (mAP) on ``photo_ids``: ``{"face": ..., "plate": ..., "mAP": ...}``."""
    ap = {label: average_precision_of_matches(matches(detections, annotations, photo_ids, label, iou_threshold))
          for label in WINDOWS}
    return ap | {"mAP": float(np.mean(list(ap.values())))}


def precision_recall(matched) -> pd.DataFrame:
    """The precision-recall curve of matched detections (:func:`matches`): after each detection by
    score, best first, its score, the recall and the precision so far."""
    hits = np.cumsum(matched.is_tp[matched.order])
    return pd.DataFrame({"score": matched.score[matched.order],
                         "recall": hits / len(matched.ground_truth_images),
                         "precision": hits / np.arange(1, len(hits) + 1)})


def threshold_for_recall(matched, target: float) -> float:
    """The highest score threshold whose detections (score >= threshold) reach recall ``target``.

    If no threshold does, the highest one that reaches the best recall the detections allow:
    lowering it further would add false blurs and no object."""
    target = check_finite("target", target)
    if not 0 < target <= 1:
        raise ValueError(f"target recall must be in (0, 1], got {target}")
    curve = precision_recall(matched)
    if curve.empty:
        raise ValueError("no detections to choose a threshold from")
    recall = curve["recall"].to_numpy()
    reached = np.flatnonzero(recall >= min(target, recall.max()) - 1e-12)
    return float(curve["score"].iloc[reached[0]])


def at_threshold(matched, threshold: float, n_photos: int) -> dict:
    """What blurring every detection scoring >= ``threshold`` does: recall, precision and false
    blurs per photo over ``n_photos`` photos."""
    n_photos = check_int("n_photos", n_photos, minimum=1)
    on = matched.score >= check_finite("threshold", threshold)
    hits = int(matched.is_tp[on].sum())
    return {"recall": hits / len(matched.ground_truth_images), "precision": hits / max(int(on.sum()), 1),
            "false blurs per photo": int((on & ~matched.is_tp).sum()) / n_photos}


def covered(annotations: pd.DataFrame, detections: pd.DataFrame, thresholds: dict, iou_threshold: float = 0.5) -> np.ndarray:
    """For each annotation, whether a detection of its class scoring at or above the class's
    threshold overlaps it with IoU >= ``iou_threshold``: the object would be blurred."""
    check_finite("iou_threshold", iou_threshold)
    out = np.zeros(len(annotations), dtype=bool)
    for label, threshold in thresholds.items():
        _label(label)
        kept = _boxes_by_photo(detections[(detections["label"] == label)
                                          & (detections["score"] >= threshold)], float)
        true_boxes = annotations[BOX].to_numpy(float)
        photos = annotations["photo_id"].to_numpy()
        for k in np.flatnonzero((annotations["label"] == label).to_numpy()):
            near = kept.get(photos[k])
            if near is not None:
                out[k] = iou_matrix(true_boxes[k:k + 1], near).max() >= iou_threshold
    return out


# --------------------------------------------------------------------------- figures

#: box colours by class (colour-blind safe: vermillion and blue)
COLOURS = {"face": "#D55E00", "plate": "#0072B2"}


def plot_photos(axes, images, photo_ids, boxes: pd.DataFrame | None = None, *, dashed=False, titles=None):
    """Draw photos ``photo_ids`` (rows of ``images``) on ``axes``, with the boxes of ``boxes`` (a
    table with photo_id, label, x1, y1, x2, y2: annotations or detections) in their class colour."""
    axes, photo_ids = list(axes), np.asarray(photo_ids).tolist()
    if len(axes) < len(photo_ids):
        raise ValueError(f"{len(photo_ids)} photos need as many axes, got {len(axes)}")
    for k, (ax, photo) in enumerate(zip(axes, photo_ids)):
        ax.imshow(images[photo], cmap="gray", vmin=0, vmax=1)
        if boxes is not None:
            for r in boxes[boxes["photo_id"] == photo].itertuples():
                ax.add_patch(Rectangle((r.x1 - 0.5, r.y1 - 0.5), r.x2 - r.x1, r.y2 - r.y1, fill=False,
                                       lw=1.5, ec=COLOURS[r.label], ls="--" if dashed else "-"))
        if titles is not None:
            ax.set_title(titles[k], fontsize=10)
        ax.set_axis_off()


# --------------------------------------------------------------------------- serving: blurring, reports, the blur store

BOX = ["x1", "y1", "x2", "y2"]
DETECTION_COLUMNS = ["photo_id", "label", "score", *BOX]
SECONDS_PER_DAY = 86_400


def _detections(detections) -> pd.DataFrame:
    if not isinstance(detections, pd.DataFrame):
        raise TypeError(f"detections must be a DataFrame, got {type(detections).__name__}")
    missing = [c for c in DETECTION_COLUMNS if c not in detections.columns]
    if missing:
        raise ValueError(f"detections lack the columns {missing}")
    return detections


def _thresholds(thresholds, labels) -> dict[str, float]:
    if not isinstance(thresholds, Mapping):
        raise TypeError(f"thresholds must map label -> score, got {type(thresholds).__name__}")
    out = {str(k): check_finite(f"thresholds[{k!r}]", v) for k, v in thresholds.items()}
    unknown = sorted(set(labels) - set(out))
    if unknown:
        raise ValueError(f"thresholds has no threshold for the labels {unknown}")
    return out


def blur_boxes(detections, thresholds, image_shape=(64, 64)) -> pd.DataFrame:
    """The detections that are blurred: score >= their label's threshold, boxes in whole pixels.

    Boxes are rounded **outward** (floor of x1, y1; ceiling of x2, y2), so a blur never covers
    less than the detection, and clipped to the photo (``image_shape`` = (height, width)); boxes
    left empty by clipping are dropped. Returns the table's columns with integer boxes, in the
    input order.
    """
    d = _detections(detections)
    thr = _thresholds(thresholds, d["label"].unique())
    return _pixel_boxes(d[d["score"].to_numpy(float) >= d["label"].map(thr).to_numpy(float)], image_shape)


def _pixel_boxes(kept: pd.DataFrame, image_shape) -> pd.DataFrame:
    """Detections with boxes rounded outward to whole pixels, clipped, empty ones dropped."""
    height, width = (check_int("image_shape", s, minimum=1) for s in image_shape)
    box = kept[BOX].to_numpy(float)
    if not np.isfinite(box).all():
        raise ValueError("detections have a box coordinate that is NaN or infinite")
    lo = np.clip(np.floor(box[:, :2]), 0, [width, height]).astype(np.int64)
    hi = np.clip(np.ceil(box[:, 2:]), 0, [width, height]).astype(np.int64)
    out = kept[["photo_id", "label", "score"]].assign(x1=lo[:, 0], y1=lo[:, 1], x2=hi[:, 0], y2=hi[:, 1])
    return out[(out["x2"] > out["x1"]) & (out["y2"] > out["y1"])].reset_index(drop=True)


def blur(images, detections, thresholds, *, photo_ids, block: int = 4) -> np.ndarray:
    """Copies of ``images`` (n, height, width) with every blurred detection pixelated.

    ``photo_ids[i]`` is the id of ``images[i]``. Each box of :func:`blur_boxes` is cut into
    ``block`` x ``block`` tiles (from its top-left corner) and every tile is replaced by its mean:
    the structure that identifies a face or a plate (eyes, characters) is gone, the scene's
    brightness stays. Boxes are pixelated one after the other, in the table's order. The input
    is not modified.
    """
    out = np.array(images, dtype=np.float32, copy=True)
    if out.ndim != 3:
        raise ValueError(f"images must be an (n, height, width) array, got shape {out.shape}")
    ids = np.asarray(photo_ids).reshape(-1)
    if len(ids) != len(out):
        raise ValueError(f"photo_ids has {len(ids)} ids for {len(out)} images")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("photo_ids must not repeat")
    block = check_int("block", block, minimum=1)
    boxes = blur_boxes(detections, thresholds, out.shape[1:])
    row_of = {p: i for i, p in enumerate(ids.tolist())}
    for photo, x1, y1, x2, y2 in boxes[["photo_id", *BOX]].itertuples(index=False):
        if photo not in row_of:
            continue
        image = out[row_of[photo]]
        for y in range(y1, y2, block):
            for x in range(x1, x2, block):
                tile = image[y:min(y + block, y2), x:min(x + block, x2)]
                tile[...] = tile.mean()
    return out


def _boxes_by_photo(frame: pd.DataFrame, dtype) -> dict:
    """photo_id -> its rows' (k, 4) boxes, in the table's order (a numpy split: fast)."""
    photo, box = frame["photo_id"].to_numpy(), frame[BOX].to_numpy(dtype)
    order = np.argsort(photo, kind="stable")
    ids, starts = np.unique(photo[order], return_index=True)
    return dict(zip(ids.tolist(), np.split(box[order], starts[1:])))


def covered_share(annotations, boxes) -> np.ndarray:
    """For each row of ``annotations``, the share of its box's pixels inside some box of ``boxes``
    of the same photo (the union of the blurs: two half-covering blurs cover it all).

    Both tables have photo_id, x1, y1, x2, y2 in whole pixels (``boxes`` as :func:`blur_boxes`
    returns them). Returns a float array in [0, 1], one entry per annotation.
    """
    for name, t in (("annotations", annotations), ("boxes", boxes)):
        if not isinstance(t, pd.DataFrame) or not {"photo_id", *BOX} <= set(t.columns):
            raise ValueError(f"{name} must be a DataFrame with photo_id, x1, y1, x2, y2")
    by_photo = _boxes_by_photo(boxes, np.int64)
    none = np.zeros((0, 4), np.int64)
    out = np.zeros(len(annotations))
    rows = annotations[["photo_id", *BOX]].itertuples(index=False)
    for k, (photo, x1, y1, x2, y2) in enumerate(rows):
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"annotation {k} is an empty box ({x1}, {y1}, {x2}, {y2})")
        mask = np.zeros((y2 - y1, x2 - x1), dtype=bool)
        for bx1, by1, bx2, by2 in by_photo.get(photo, none):
            mask[max(by1 - y1, 0):max(by2 - y1, 0), max(bx1 - x1, 0):max(bx2 - x1, 0)] = True
        out[k] = mask.mean()
    return out


def blur_outcomes(detections, thresholds, annotations, photo_ids, *, min_covered: float = 0.5,
                  iou_threshold: float = 0.5, image_shape=(64, 64)) -> pd.DataFrame:
    """What the published photos show, one row per photo of ``photo_ids`` (in that order).

    Columns: ``objects`` (true faces and plates), ``missed`` (true objects of which less than
    ``min_covered`` of the area is blurred: a viewer can see most of it), ``blurs`` (boxes
    blurred) and ``false_blurs`` (blurred boxes whose IoU with every true box of the photo,
    of either class, is below ``iou_threshold``: a blurred tree or wall, the privacy's cost).
    """
    min_covered = check_finite("min_covered", min_covered)
    iou_threshold = check_finite("iou_threshold", iou_threshold)
    if not 0 < min_covered <= 1 or not 0 < iou_threshold <= 1:
        raise ValueError(f"min_covered and iou_threshold must be in (0, 1], got {min_covered}, "
                         f"{iou_threshold}")
    ids = np.asarray(photo_ids).reshape(-1)
    boxes = blur_boxes(detections, thresholds, image_shape)
    boxes = boxes[boxes["photo_id"].isin(ids)]
    truth = annotations[annotations["photo_id"].isin(ids)]
    missed = truth.assign(missed=covered_share(truth, boxes) < min_covered)
    true_boxes, blurred = _boxes_by_photo(truth, float), boxes[BOX].to_numpy(float)
    false = np.ones(len(boxes), dtype=bool)
    for photo, rows in boxes.groupby("photo_id").indices.items():
        if photo in true_boxes:
            false[rows] = iou_matrix(blurred[rows], true_boxes[photo]).max(axis=1) < iou_threshold
    counts = pd.DataFrame({
        "objects": truth.groupby("photo_id").size(),
        "missed": missed.groupby("photo_id")["missed"].sum(),
        "blurs": boxes.groupby("photo_id").size(),
        "false_blurs": pd.Series(false, index=boxes["photo_id"].to_numpy()).groupby(level=0).sum(),
    })
    out = counts.reindex(ids).fillna(0).astype(np.int64)
    return out.rename_axis("photo_id").reset_index()


def simulate_reports(outcomes: Mapping[str, pd.DataFrame], n_photos: int, *, mean_views: float,
                     report_probability: float, rng: np.random.Generator) -> pd.DataFrame:
    """A simulated A/B test of blurring, measured by users' reports of missed blurs.

    ``n_photos`` photos are published; each goes to an arm of ``outcomes`` (arm name -> the
    table of :func:`blur_outcomes`, over the same photos) at random, with equal probability,
    and is one of that table's photos drawn at random (**replayed**: the arms see the same scenes
    blurred by their own model). A photo gets Poisson(``mean_views``) views; at every view, each
    missed object is reported with probability ``report_probability``, independently. Returns
    one row per published photo: arm, photo_id, views, missed, false_blurs, reports.

    False blurs are carried along but never reported: nobody complains that a tree is blurred.
    """
    if not isinstance(outcomes, Mapping) or len(outcomes) < 2:
        raise ValueError("outcomes must map at least two arm names to blur_outcomes tables")
    n_photos = check_int("n_photos", n_photos, minimum=1)
    mean_views = check_finite("mean_views", mean_views)
    p = check_finite("report_probability", report_probability)
    if mean_views < 0 or not 0 <= p <= 1:
        raise ValueError(f"mean_views must be >= 0 and report_probability in [0, 1], got "
                         f"{mean_views}, {p}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
    tables = [t.reset_index(drop=True) for t in outcomes.values()]
    if len({len(t) for t in tables}) != 1 or not all(t["photo_id"].equals(tables[0]["photo_id"])
                                                     for t in tables):
        raise ValueError("every arm's outcomes must cover the same photos in the same order")
    arm = rng.integers(0, len(tables), n_photos)
    scene = rng.integers(0, len(tables[0]), n_photos)
    views = rng.poisson(mean_views, n_photos)
    missed = np.stack([t["missed"].to_numpy() for t in tables])[arm, scene]
    false_blurs = np.stack([t["false_blurs"].to_numpy() for t in tables])[arm, scene]
    reports = rng.binomial(views * missed, p)
    names = pd.Categorical.from_codes(arm, categories=list(outcomes))
    return pd.DataFrame({"arm": names, "photo_id": tables[0]["photo_id"].to_numpy()[scene],
                         "views": views, "missed": missed, "false_blurs": false_blurs,
                         "reports": reports})


def report_summary(published: pd.DataFrame) -> pd.DataFrame:
    """Per arm of :func:`simulate_reports`' table: what the team sees and what it does not.

    Columns: ``photos``, ``reported photos`` (with at least one report, the proportion an A/B
    test compares), ``reports per 10,000 photos``, ``missed objects per 10,000 photos`` (the
    truth, hidden in production) and ``false blurs per photo`` (never reported).
    """
    need = {"arm", "reports", "missed", "false_blurs"}
    if not isinstance(published, pd.DataFrame) or not need <= set(published.columns):
        raise ValueError(f"published must be simulate_reports' table, with columns {sorted(need)}")
    g = published.groupby("arm", sort=True, observed=True)   # a categorical: in the arms' order
    n = g.size()
    return pd.DataFrame({
        "photos": n,
        "reported photos": g["reports"].apply(lambda r: int((r > 0).sum())),
        "reports per 10,000 photos": 1e4 * g["reports"].sum() / n,
        "missed objects per 10,000 photos": 1e4 * g["missed"].sum() / n,
        "false blurs per photo": g["false_blurs"].mean(),
    })


def arm_difference_by_scene(published: pd.DataFrame, column: str, *, seed: int, n_resamples: int = 2000,
                            level: float = 0.95) -> dict:
    """Treatment minus control of the mean of ``column`` per published photo (:func:`simulate_reports`'
    table, arms in the order control, treatment), with a percentile interval from a bootstrap over
    **scenes**: the replayed test photos are resampled, each with all its published copies in both
    arms. Copies of one scene share its missed objects, so resampling published photos one by one
    would shrink the interval to the views' noise alone; the scenes are the real sample.

    Returns ``{"control", "treatment", "difference", "ci_low", "ci_high"}``.
    """
    if not isinstance(published, pd.DataFrame) or column not in published or "arm" not in published:
        raise ValueError(f"published must be simulate_reports' table with an arm and a {column!r} column")
    arms = list(published["arm"].cat.categories) if hasattr(published["arm"], "cat") else sorted(published["arm"].unique())
    if len(arms) != 2:
        raise ValueError(f"need exactly two arms (control, treatment), got {arms}")
    n_resamples = check_int("n_resamples", n_resamples, minimum=100)
    level = check_finite("level", level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    scenes, code = np.unique(published["photo_id"].to_numpy(), return_inverse=True)
    values = published[column].to_numpy(dtype=float)
    sums, counts = np.zeros((len(scenes), 2)), np.zeros((len(scenes), 2))
    for k, arm in enumerate(arms):
        on = (published["arm"] == arm).to_numpy()
        sums[:, k] = np.bincount(code[on], weights=values[on], minlength=len(scenes))
        counts[:, k] = np.bincount(code[on], minlength=len(scenes))
    weights = make_rng(seed, "scene bootstrap").multinomial(len(scenes), np.full(len(scenes), 1 / len(scenes)),
                                                           size=n_resamples)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ sums) / (weights @ counts)
    difference = means[:, 1] - means[:, 0]
    low, high = np.nanquantile(difference, [(1 - level) / 2, (1 + level) / 2])
    control, treatment = sums.sum(axis=0) / counts.sum(axis=0)
    return {"control": float(control), "treatment": float(treatment), "difference": float(treatment - control),
            "ci_low": float(low), "ci_high": float(high)}


def batch_cores(photos_per_core_second: float, volumes: Mapping[str, tuple[float, float]]) -> pd.DataFrame:
    """Cores a batch job needs: one row per ``name -> (photos, days to process them in)``.

    Columns: ``photos``, ``days``, ``core-hours`` (photos / throughput / 3600) and ``cores``
    (the core-seconds over the seconds available, rounded up). A batch job has no latency
    budget and no queueing to size for: the cores only have to keep up on average, so leave
    headroom for failures and re-runs on top.
    """
    rate = check_finite("photos_per_core_second", photos_per_core_second)
    if rate <= 0:
        raise ValueError(f"photos_per_core_second must be > 0, got {rate}")
    if not isinstance(volumes, Mapping) or not volumes:
        raise ValueError("volumes must map a name to (photos, days)")
    rows = {}
    for name, (photos, days) in volumes.items():
        photos, days = check_finite(f"{name} photos", photos), check_finite(f"{name} days", days)
        if photos < 0 or days <= 0:
            raise ValueError(f"{name}: photos must be >= 0 and days > 0, got {photos}, {days}")
        seconds = photos / rate
        rows[name] = {"photos": int(photos), "days": days, "core-hours": seconds / 3600,
                      "cores": math.ceil(seconds / (days * SECONDS_PER_DAY))}
    return pd.DataFrame.from_dict(rows, orient="index")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS thresholds (
    version TEXT NOT NULL, label TEXT NOT NULL, threshold REAL NOT NULL,
    PRIMARY KEY (version, label));
CREATE TABLE IF NOT EXISTS detections (
    version TEXT NOT NULL, photo_id INTEGER NOT NULL, label TEXT NOT NULL, score REAL NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS detections_by_version ON detections (version, photo_id);
CREATE VIEW IF NOT EXISTS blurs AS
    SELECT d.* FROM detections AS d JOIN thresholds AS t USING (version, label)
    WHERE d.score >= t.threshold;
"""

#: the boxes blurred under one version and not the other: 'added' (new only), 'removed' (old only)
_CHANGES = """
WITH old AS (SELECT photo_id, x1, y1, x2, y2 FROM blurs WHERE version = :old),
     new AS (SELECT photo_id, x1, y1, x2, y2 FROM blurs WHERE version = :new)
SELECT 'added' AS change, * FROM (SELECT * FROM new EXCEPT SELECT * FROM old)
UNION ALL
SELECT 'removed', * FROM (SELECT * FROM old EXCEPT SELECT * FROM new)
ORDER BY photo_id, change, x1, y1, x2, y2
"""


class BlurStore(SQLiteStore):
    """The published blurs of every model version, in a SQLite database at ``path``.

    Table ``detections`` holds each version's detections with their boxes rounded outward to
    whole pixels (the box a blur would cover), table ``thresholds`` each version's threshold per
    label, and the view ``blurs`` the detections at or above their threshold: what was
    published. A version is written once (:meth:`write`) and never changed, so the blurs of any
    photo under any version can be audited later. Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, path):
        super().__init__(path, _SCHEMA)

    def versions(self) -> list[str]:
        """The model versions written, sorted."""
        return [v for (v,) in self._db.execute("SELECT DISTINCT version FROM thresholds ORDER BY version")]

    def write(self, version: str, detections, thresholds, image_shape=(64, 64)) -> int:
        """Store ``version``'s detections and thresholds; returns the number of detections stored.

        Raises ``ValueError`` if the version exists already (published blurs are history).
        """
        if not isinstance(version, str) or not version:
            raise ValueError(f"version must be a non-empty str, got {version!r}")
        if version in self.versions():
            raise ValueError(f"version {version!r} is already stored; write a new version")
        d = _detections(detections)
        thr = _thresholds(thresholds, d["label"].unique())
        boxes = _pixel_boxes(d, image_shape)
        rows = [(version, int(p), str(lab), float(s), int(a), int(b), int(c), int(e))
                for p, lab, s, a, b, c, e in boxes[DETECTION_COLUMNS].itertuples(index=False)]
        with self._db:
            self._db.executemany("INSERT INTO thresholds VALUES (?, ?, ?)",
                                 [(version, label, t) for label, t in thr.items()])
            self._db.executemany("INSERT INTO detections VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def blurs(self, version: str) -> pd.DataFrame:
        """The blurred boxes published under ``version``: photo_id, label, score, x1, y1, x2, y2."""
        self._known(version)
        rows = self._db.execute("SELECT photo_id, label, score, x1, y1, x2, y2 FROM blurs "
                                "WHERE version = ? ORDER BY photo_id, label, score DESC, x1, y1", (version,)).fetchall()
        return pd.DataFrame(rows, columns=DETECTION_COLUMNS)

    def changes(self, old: str, new: str) -> pd.DataFrame:
        """The boxes blurred under one version only: change ('added': ``new`` only, or
        'removed': ``old`` only), photo_id, x1, y1, x2, y2. Boxes are compared by exact pixel
        box, whatever their label or score (a blur is a blur)."""
        self._known(old)
        self._known(new)
        rows = self._db.execute(_CHANGES, {"old": old, "new": new}).fetchall()
        return pd.DataFrame(rows, columns=["change", "photo_id", *BOX])

    def reblur(self, old: str, new: str, *, min_covered: float = 0.5) -> pd.DataFrame:
        """The re-blur job from ``old`` to ``new``: the photos whose set of blurred boxes changes.

        One row per such photo: photo_id, ``added`` (boxes blurred by ``new`` only),
        ``removed`` (boxes blurred by ``old`` only) and ``revealed`` (removed boxes of which less
        than ``min_covered`` of the area is still under a blur of ``new``: applying the new
        version would show what was hidden). An addition only hides more and can be published
        at once; a reveal is an un-blur, which a pipeline should never apply without a human
        look. A removed box still covered by the new blurs (a box moved by a pixel) reveals
        nothing.
        """
        min_covered = check_finite("min_covered", min_covered)
        if not 0 < min_covered <= 1:
            raise ValueError(f"min_covered must be in (0, 1], got {min_covered}")
        changes = self.changes(old, new)
        removed = changes[changes["change"] == "removed"]
        now = self.blurs(new)
        revealed = covered_share(removed, now[now["photo_id"].isin(removed["photo_id"])]) < min_covered
        counts = pd.DataFrame({
            "added": (changes["change"] == "added").groupby(changes["photo_id"]).sum(),
            "removed": (changes["change"] == "removed").groupby(changes["photo_id"]).sum(),
            "revealed": pd.Series(revealed, index=removed["photo_id"].to_numpy()).groupby(level=0).sum(),
        })
        return counts.fillna(0).astype(np.int64).rename_axis("photo_id").reset_index()

    def _known(self, version) -> None:
        if version not in self.versions():
            raise ValueError(f"unknown version {version!r}; stored: {self.versions()}")


# --------------------------------------------------------------------------- monitoring: a new camera sensor

#: a second difference in both directions: it cancels a constant and a linear ramp (and the
#: gradient across a photo), and turns noise of standard deviation s into noise of standard
#: deviation 6 s (the kernel's entries squared sum to 36)
NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
#: median |z| of a standard normal z: the median absolute deviation of noise with sd s is 0.6745 s
_MAD_PER_SD = 0.6745
LABELS = tuple(WINDOWS)   # the classes: face, plate


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
        out[label] = matches(detections, annotations, ids, label, iou)
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
