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
  background.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from scipy import ndimage, signal

from mlsd._checks import check_finite, check_int
from mlsd.datasets import street_view_blurring as world_module
from mlsd.evaluation.metrics import iou_matrix

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
    from mlsd.evaluation.metrics import match_detections

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
    from mlsd.evaluation.metrics import average_precision_of_matches

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
    """The highest score threshold whose detections (score >= threshold) reach recall ``target``;
    the lowest score if no threshold does (every detection is kept, and the recall falls short)."""
    target = check_finite("target", target)
    if not 0 < target <= 1:
        raise ValueError(f"target recall must be in (0, 1], got {target}")
    curve = precision_recall(matched)
    if curve.empty:
        raise ValueError("no detections to choose a threshold from")
    reached = np.flatnonzero(curve["recall"].to_numpy() >= target - 1e-12)
    return float(curve["score"].iloc[reached[0] if len(reached) else -1])


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
        mine = detections[(detections["label"] == label) & (detections["score"] >= threshold)]
        for k in np.flatnonzero((annotations["label"] == label).to_numpy()):
            row = annotations.iloc[k]
            near = mine[mine["photo_id"] == row["photo_id"]]
            if len(near):
                best = iou_matrix(row[["x1", "y1", "x2", "y2"]].to_numpy(float)[None],
                                  near[["x1", "y1", "x2", "y2"]].to_numpy(float)).max()
                out[k] = best >= iou_threshold
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
