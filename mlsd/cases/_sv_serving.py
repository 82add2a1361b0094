"""Chapter 6's serving plumbing: blurring, the online signal of missed-blur reports, the blur store.

A section of :mod:`mlsd.cases.street_view_blurring` (merged into it later; it imports nothing from
it). What the chapter uses but does not teach:

- **blurring**: :func:`blur_boxes` keeps the detections at or above their label's threshold and
  rounds their boxes outward to whole pixels; :func:`blur` pixelates those boxes in copies of the
  photos;
- **outcomes**: :func:`covered_share` (how much of each true object a blur hides) and
  :func:`blur_outcomes` (per photo: objects, missed objects, blurs, false blurs);
- the **online signal**: :func:`simulate_reports` replays photos into the arms of an A/B test and
  draws the users' reports of missed blurs; :func:`report_summary` aggregates them per arm;
- **batch capacity**: :func:`batch_cores`, the cores a throughput needs for a volume in a time;
- the **blur store**: :class:`BlurStore`, a SQLite database of every model version's detections
  and thresholds, whose re-blur job (:meth:`BlurStore.reblur`) lists the photos whose published
  blurs change when the model does, and which of them would un-blur an area.

Boxes follow the annotations' convention: (x1, y1, x2, y2) covers columns x1..x2-1 and rows
y1..y2-1.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.evaluation.metrics import iou_matrix

__all__ = ["BlurStore", "batch_cores", "blur", "blur_boxes", "blur_outcomes", "covered_share",
           "report_summary", "simulate_reports"]

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


class BlurStore:
    """The published blurs of every model version, in a SQLite database at ``path``.

    Table ``detections`` holds each version's detections with their boxes rounded outward to
    whole pixels (the box a blur would cover), table ``thresholds`` each version's threshold per
    label, and the view ``blurs`` the detections at or above their threshold: what was
    published. A version is written once (:meth:`write`) and never changed, so the blurs of any
    photo under any version can be audited later. Use it as a context manager, or call
    :meth:`close`.
    """

    def __init__(self, path):
        self._db = sqlite3.connect(str(path))
        self._db.executescript(_SCHEMA)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Close the database (the file stays)."""
        self._db.close()

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
