"""The Street View blurring world (Chapter 6): where are the faces and licence plates in this photo?

A fleet of camera cars photographs streets. Each photo is a small grayscale scene (64 x 64
pixels) with zero to a few **faces** and **licence plates** in several sizes and contrasts, on a
background with a brightness gradient and **decoys**: plain ellipses, plain rectangles and lines
that have a face's or a plate's outline but not its inner structure (eyes and a mouth; the
characters of a plate). Human annotators drew a box around every face and plate (observed);
the object's exact template, its contrast, the clean background with its decoys and the sensor's
noise level are hidden (the oracle only).

Pixels are not stored: each photo is a pure function of its stored parameters and a salt, and
:func:`pixels` renders them on demand (as in the visual search world), so the repository stores
kilobytes of tables instead of megabytes of images. :func:`new_sensor` continues the world with
photos from a new camera sensor (noisier, lower contrast), for the monitoring section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets.world import World, all_tables

DEFAULT_SEED = 0
NAME = "street_view_blurring"
IMAGE_SIZE = 64
LABELS = ("face", "plate")
#: the sizes an object comes in: a face's height (its width is 3/4 of it), a plate's width (its
#: height is 1/3 of it). Four sizes per class, each 4/3 of the one before, so that an image
#: pyramid with four levels brings every object to one canonical window size.
FACE_HEIGHTS = (12, 16, 20, 24)
PLATE_WIDTHS = (18, 24, 30, 36)
DECOYS = ("ellipse", "rectangle", "line")

KNOBS = {
    "n_photos": 2_000,
    "days": 30,                          # photos taken on days 0-29, the same number each day
    "n_cameras": 40,
    "faces_per_photo": (0.45, 0.35, 0.20),    # probability of 0, 1, 2 faces
    "plates_per_photo": (0.50, 0.35, 0.15),   # probability of 0, 1, 2 plates
    "decoys_per_photo": (2, 5),          # uniform on 2..5
    "contrast": (0.08, 0.35),            # |object - background|, uniform
    "bright_face_share": 0.25,           # faces brighter than their background (most are in shade)
    "bright_plate_share": 0.75,          # plates brighter than their background
    "decoy_contrast": (0.10, 0.40),      # |decoy - background|, either sign
    "background_level": (0.35, 0.65),
    "background_gradient": 0.15,         # standard deviation of the change across the photo
    "noise": 0.06,                       # sensor noise, standard deviation per pixel
    "texture": 0.05,                     # standard deviation of the background's texture (facades, foliage)
    "texture_scale": 1.5,                # its correlation length, pixels
}

WHY = {
    "n_photos": "enough for a time split of 1,200 / 400 / 400 photos with over a hundred objects of "
                "each class in every size and split, while a notebook on two cores renders, scans and "
                "trains on them in seconds",
    "contrast": "the faintest objects are about 2.5 noise standard deviations from their background, "
                "so a small face's eyes are hard to see but a whole object is not",
    "bright_face_share": "either sign of contrast, mostly dark: a detector that learns one template of "
                         "raw intensities misses the bright quarter, one that reads gradient orientations does not",
    "decoys_per_photo": "decoys share the outline of an object, so a detector must learn the inner "
                        "structure (eyes and mouth, characters) and not just a blob of the right shape",
    "noise": "the sensor noise no model can remove; it caps even the oracle below a perfect score "
             "for the smallest, faintest objects",
    "background_gradient": "a gradient across the photo moves raw intensities but hardly moves "
                           "local gradient orientations",
}

COLUMNS = {
    "photos.photo_id": "photo id, 0..n-1 (its row)",
    "photos.day": "day the photo was taken",
    "photos.camera_id": "the car's camera",
    "photos.sensor": "camera sensor model: v1 (every stored photo); v2 arrives with new_sensor",
    "annotations.photo_id": "the photo",
    "annotations.label": "face or plate",
    "annotations.x1": "box left edge, pixels (the box covers columns x1..x2-1)",
    "annotations.y1": "box top edge, pixels",
    "annotations.x2": "box right edge",
    "annotations.y2": "box bottom edge",
    "objects.photo_id": "hidden: the photo (one row per annotation, in the same order)",
    "objects.size_index": "hidden: which of the four template sizes (0 smallest)",
    "objects.contrast": "hidden: signed contrast (positive: brighter than the background)",
    "decoys.photo_id": "hidden: the photo",
    "decoys.kind": "hidden: ellipse, rectangle or line",
    "decoys.cx": "hidden: centre column",
    "decoys.cy": "hidden: centre row",
    "decoys.a": "hidden: half width (ellipse, rectangle) or half length (line)",
    "decoys.b": "hidden: half height (ellipse, rectangle) or half thickness (line)",
    "decoys.angle": "hidden: the line's angle, radians (0 for the others)",
    "decoys.contrast": "hidden: signed contrast",
    "backgrounds.photo_id": "hidden: the photo",
    "backgrounds.level": "hidden: mean brightness",
    "backgrounds.gx": "hidden: brightness change from the left edge to the right",
    "backgrounds.gy": "hidden: brightness change from the top edge to the bottom",
    "backgrounds.noise": "hidden: the sensor's noise standard deviation",
    "backgrounds.contrast_scale": "hidden: the sensor's contrast (1 for v1)",
    "salt.salt": "hidden: the key of every photo's sensor noise",
}


# --------------------------------------------------------------------------- templates


def _inside_ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    rows, cols = np.mgrid[0:h, 0:w] + 0.5
    return ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0


def face_template(height: int) -> np.ndarray:
    """A face of ``height`` rows at unit contrast: an ellipse of 1, with eyes and a mouth at -0.6.

    The inner structure is drawn *opposite* to the skin, as shadows are: a face brighter than
    the background has darker eyes and mouth. Width is 3/4 of the height.
    """
    h = check_int("height", height, minimum=8)
    w = round(0.75 * h)
    t = _inside_ellipse(h, w, h / 2, w / 2, h / 2, w / 2).astype(np.float32)
    r = max(1.0, 0.09 * h)
    for side in (-1, 1):
        t[_inside_ellipse(h, w, 0.40 * h, w / 2 + side * 0.2 * w, r, r)] = -0.6
    rows, cols = np.mgrid[0:h, 0:w] + 0.5
    thickness = max(1.0, 0.07 * h)
    mouth = (np.abs(rows - 0.70 * h) <= thickness / 2 + 0.01) & (np.abs(cols - w / 2) <= 0.18 * w + 0.5)
    t[mouth] = -0.6
    return t


def plate_template(width: int) -> np.ndarray:
    """A licence plate ``width`` columns wide at unit contrast: a rectangle of 1 with five dark
    characters (vertical strokes at -0.6). Height is 1/3 of the width."""
    w = check_int("width", width, minimum=9)
    h = round(w / 3)
    t = np.ones((h, w), dtype=np.float32)
    stroke = max(1, round(w / 18))
    top, bottom = round(0.2 * h), h - round(0.2 * h)
    for k in range(5):
        left = round((k + 0.75) * w / 5.5)
        t[top:bottom, left:left + stroke] = -0.6
    return t


def templates() -> dict[tuple[str, int], np.ndarray]:
    """Every object template at unit contrast: ``(label, size index) -> (h, w) array``."""
    out = {("face", i): face_template(h) for i, h in enumerate(FACE_HEIGHTS)}
    out |= {("plate", i): plate_template(w) for i, w in enumerate(PLATE_WIDTHS)}
    return out


# --------------------------------------------------------------------------- rendering


_GRID = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE] + 0.5   # pixel centres (rows, columns)


def _decoy(kind: str, cx: float, cy: float, a: float, b: float, angle: float, rng) -> np.ndarray:
    """The decoy's unit-contrast pattern over the whole photo.

    Ellipses and rectangles carry inner marks drawn by ``rng`` (spots; strokes) so that "has
    something inside" does not separate them from faces and plates: the *arrangement* does.
    """
    rows, cols = _GRID
    dx, dy = cols - cx, rows - cy
    if kind == "line":
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        return ((np.abs(along) <= a) & (np.abs(across) <= b)).astype(np.float32)
    if kind == "ellipse":
        inside = (dx / a) ** 2 + (dy / b) ** 2 <= 1.0
        out = inside.astype(np.float32)
        for _ in range(int(rng.integers(0, 4))):   # spots anywhere inside, not two eyes and a mouth
            sx, sy = rng.uniform(-0.6, 0.6, 2) * (a, b)
            r = max(1.0, rng.uniform(0.06, 0.14) * 2 * b)
            out[inside & (np.hypot(dx - sx, dy - sy) <= r)] = -0.6
        return out
    inside = (np.abs(dx) <= a) & (np.abs(dy) <= b)
    out = inside.astype(np.float32)
    vertical = rng.random() < 0.5
    for _ in range(int(rng.integers(0, 4))):       # a few strokes, not a row of five characters
        at = rng.uniform(-0.8, 0.8) * (a if vertical else b)
        width = max(1.0, rng.uniform(0.03, 0.08) * 2 * a)
        stroke = np.abs((dx if vertical else dy) - at) <= width / 2
        out[inside & stroke & (np.abs(dy if vertical else dx) <= 0.7 * (b if vertical else a))] = -0.6
    return out


def _texture(salt: int, photo_ids) -> np.ndarray:
    """The backgrounds' unit-variance texture (facades, foliage): smoothed noise, a function of each id."""
    fields = np.stack([np.random.default_rng([salt, int(p), 1]).standard_normal((IMAGE_SIZE, IMAGE_SIZE))
                       for p in photo_ids]) if len(photo_ids) else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE))
    scale = KNOBS["texture_scale"]
    fields = ndimage.gaussian_filter(fields, (0, scale, scale), mode="wrap")
    return (fields / fields.std(axis=(1, 2), keepdims=True)).astype(np.float32)


def _rows_of(frame: pd.DataFrame, ids: np.ndarray) -> list[np.ndarray]:
    """For each photo id, the positions of its rows in ``frame`` (stored grouped by photo, in order)."""
    photo = frame["photo_id"].to_numpy()
    if np.any(np.diff(photo) < 0):
        raise ValueError("tables must be sorted by photo_id")
    lo, hi = np.searchsorted(photo, ids, "left"), np.searchsorted(photo, ids, "right")
    return [np.arange(a, b) for a, b in zip(lo, hi)]


def _photo_ids(tables, photo_ids) -> np.ndarray:
    ids = np.asarray(photo_ids, dtype=np.int64).reshape(-1)
    n = len(tables["photos"])
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"photo ids must be in 0..{n - 1}")
    return ids


def clean_background(world, photo_ids) -> np.ndarray:
    """Hidden: the photos ``photo_ids`` without their faces, plates and noise, (n, 64, 64) float32.

    The brightness gradient, the texture and the decoys: what the oracle subtracts before it
    looks for objects.
    """
    t = all_tables(world)
    ids = _photo_ids(t, photo_ids)
    bg = t["backgrounds"].iloc[ids]
    ramp = (np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE - 0.5
    out = (bg["level"].to_numpy()[:, None, None] + bg["gx"].to_numpy()[:, None, None] * ramp[None, None, :]
           + bg["gy"].to_numpy()[:, None, None] * ramp[None, :, None]).astype(np.float32)
    scale = bg["contrast_scale"].to_numpy()
    salt = int(t["salt"]["salt"].iloc[0])
    d = t["decoys"]
    kind, params = d["kind"].to_numpy(), d[["cx", "cy", "a", "b", "angle", "contrast"]].to_numpy()
    out += np.float32(KNOBS["texture"]) * _texture(salt, ids)
    for i, (p, rows) in enumerate(zip(ids.tolist(), _rows_of(d, ids))):
        for j, row in enumerate(rows):
            rng = np.random.default_rng([salt, p, 2, j])
            cx, cy, a, b, angle, contrast = params[row]
            out[i] += np.float32(scale[i] * contrast) * _decoy(kind[row], cx, cy, a, b, angle, rng)
    return out


def object_layer(world, photo_ids) -> np.ndarray:
    """Hidden: the faces and plates of the photos alone (no background, no noise), (n, 64, 64)."""
    t = all_tables(world)
    ids = _photo_ids(t, photo_ids)
    bank = templates()
    scale = t["backgrounds"]["contrast_scale"].to_numpy()[ids]
    a, o = t["annotations"], t["objects"]
    label, size, contrast = a["label"].to_numpy(), o["size_index"].to_numpy(), o["contrast"].to_numpy()
    box = a[["x1", "y1", "x2", "y2"]].to_numpy()
    out = np.zeros((len(ids), IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, rows in enumerate(_rows_of(a, ids)):
        for r in rows:
            x1, y1, x2, y2 = box[r]
            out[i, y1:y2, x1:x2] += np.float32(scale[i] * contrast[r]) * bank[(label[r], size[r])]
    return out


def pixels(world, photo_ids) -> np.ndarray:
    """The photos ``photo_ids`` as (n, 64, 64) float32 in [0, 1]: background, decoys, objects, noise.

    The same id gives the same pixels on every call and machine (the noise is drawn from a
    generator keyed by the salt and the photo id). Reads hidden tables: the chapter uses it as
    the camera, never as a feature.
    """
    t = all_tables(world)
    ids = _photo_ids(t, photo_ids)
    image = clean_background(t, ids) + object_layer(t, ids)
    salt = int(t["salt"]["salt"].iloc[0])
    noise = t["backgrounds"]["noise"].to_numpy()[ids]
    for i, p in enumerate(ids):
        rng = np.random.default_rng([salt, int(p)])
        image[i] += np.float32(noise[i]) * rng.standard_normal((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    return np.clip(image, 0, 1, out=image)


# --------------------------------------------------------------------------- generation


def _place(rng, occupied: list, h: int, w: int, tries: int = 50):
    """A top-left corner for an h x w box inside the photo, one pixel clear of the occupied boxes."""
    for _ in range(tries):
        y, x = int(rng.integers(0, IMAGE_SIZE - h + 1)), int(rng.integers(0, IMAGE_SIZE - w + 1))
        if all(x + w + 1 <= a or a2 + 1 <= x or y + h + 1 <= b or b2 + 1 <= y for a, b, a2, b2 in occupied):
            return x, y
    return None


def _photo_objects(rng, photo_id: int):
    """One photo's objects (annotations and hidden rows) and decoys."""
    k = KNOBS
    annotations, objects, decoys, occupied = [], [], [], []
    for label, sizes, probs, bright in (("face", FACE_HEIGHTS, k["faces_per_photo"], k["bright_face_share"]),
                                        ("plate", PLATE_WIDTHS, k["plates_per_photo"], k["bright_plate_share"])):
        for _ in range(int(rng.choice(len(probs), p=probs))):
            size_index = int(rng.integers(0, len(sizes)))
            h, w = (sizes[size_index], round(0.75 * sizes[size_index])) if label == "face" else \
                (round(sizes[size_index] / 3), sizes[size_index])
            corner = _place(rng, occupied, h, w)
            magnitude = rng.uniform(*k["contrast"])
            sign = 1.0 if rng.random() < bright else -1.0
            if corner is None:
                continue
            x, y = corner
            occupied.append((x, y, x + w, y + h))
            annotations.append((photo_id, label, x, y, x + w, y + h))
            objects.append((photo_id, size_index, round(sign * magnitude, 4)))
    low, high = k["decoys_per_photo"]
    for _ in range(int(rng.integers(low, high + 1))):
        kind = DECOYS[int(rng.integers(0, len(DECOYS)))]
        if kind == "line":
            a, b, angle = rng.uniform(7, 20), rng.choice([0.5, 1.0]), rng.uniform(0, np.pi)
            h = w = int(2 * a) + 2
        else:   # the sizes and shapes of faces and plates, without their inner structure
            if rng.random() < 0.5:
                a = rng.uniform(4, 10)
                b = a / rng.uniform(0.6, 0.9) if kind == "ellipse" else a * rng.uniform(0.3, 1.0)
            else:
                a = rng.uniform(8, 19)
                b = a / rng.uniform(2.5, 4.0)
            angle, h, w = 0.0, int(2 * b) + 2, int(2 * a) + 2
        corner = _place(rng, occupied, min(h, IMAGE_SIZE), min(w, IMAGE_SIZE))
        if corner is None:
            continue
        x, y = corner
        occupied.append((x, y, x + w, y + h))
        contrast = rng.uniform(*k["decoy_contrast"]) * rng.choice([-1.0, 1.0])
        decoys.append((photo_id, kind, round(x + w / 2, 3), round(y + h / 2, 3), round(float(a), 3),
                       round(float(b), 3), round(float(angle), 4), round(float(contrast), 4)))
    return annotations, objects, decoys


def _photos(rng, first_id: int, n: int, days: tuple[int, int], sensor: str, noise: float,
            contrast_scale: float) -> dict[str, pd.DataFrame]:
    k = KNOBS
    ids = np.arange(first_id, first_id + n)
    day = days[0] + (np.arange(n) * (days[1] - days[0])) // n
    photos = pd.DataFrame({"photo_id": ids, "day": day, "camera_id": rng.integers(0, k["n_cameras"], n),
                           "sensor": sensor})
    level = rng.uniform(*k["background_level"], n)
    gradient = rng.normal(0, k["background_gradient"], (n, 2))
    backgrounds = pd.DataFrame({"photo_id": ids, "level": level.round(4), "gx": gradient[:, 0].round(4),
                                "gy": gradient[:, 1].round(4), "noise": noise, "contrast_scale": contrast_scale})
    rows = [_photo_objects(rng, int(p)) for p in ids]
    annotations = pd.DataFrame([a for r in rows for a in r[0]],
                               columns=["photo_id", "label", "x1", "y1", "x2", "y2"])
    objects = pd.DataFrame([o for r in rows for o in r[1]], columns=["photo_id", "size_index", "contrast"])
    decoys = pd.DataFrame([d for r in rows for d in r[2]],
                          columns=["photo_id", "kind", "cx", "cy", "a", "b", "angle", "contrast"])
    return {"photos": photos, "annotations": annotations, "objects": objects, "decoys": decoys,
            "backgrounds": backgrounds}


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the Street View blurring world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    k = KNOBS
    rng = make_rng(seed)
    salt = int(rng.integers(0, 2**62))
    t = _photos(rng, 0, k["n_photos"], (0, k["days"]), "v1", k["noise"], 1.0)
    world = World(
        name=NAME,
        seed=seed,
        observed={"photos": t["photos"], "annotations": t["annotations"]},
        hidden={"objects": t["objects"], "decoys": t["decoys"], "backgrounds": t["backgrounds"],
                "salt": pd.DataFrame({"salt": [salt]})},
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


def new_sensor(world, n_photos: int, first_day: int, n_days: int, *, v2_share, noise: float = 0.09,
               contrast_scale: float = 0.7) -> dict[str, pd.DataFrame]:
    """The world continued: ``n_photos`` new photos on days ``first_day`` .. ``first_day + n_days - 1``.

    The fleet is switching to a new camera sensor, v2: noisier (``noise``) and with lower
    contrast (every object and decoy's contrast times ``contrast_scale``). ``v2_share`` is the
    share of each day's photos taken with v2: a number, or one number per day (a roll-out).
    Returns the world's tables with the new photos appended; :func:`pixels` accepts the result in
    place of the world, and so does this function (to continue it again).
    """
    n_photos = check_int("n_photos", n_photos, minimum=1)
    first_day = check_int("first_day", first_day, minimum=0)
    n_days = check_int("n_days", n_days, minimum=1)
    noise, contrast_scale = check_finite("noise", noise), check_finite("contrast_scale", contrast_scale)
    if noise < 0 or contrast_scale <= 0:
        raise ValueError(f"noise must be >= 0 and contrast_scale > 0, got {noise}, {contrast_scale}")
    share = np.broadcast_to(np.asarray(v2_share, dtype=float), (n_days,))
    if not np.all((share >= 0) & (share <= 1)):
        raise ValueError(f"v2_share must be in [0, 1], got {v2_share!r}")
    t = dict(all_tables(world))
    if first_day <= int(t["photos"]["day"].max()):
        raise ValueError(f"first_day must come after the world's last day ({int(t['photos']['day'].max())})")
    rng = make_rng(int(t["salt"]["salt"].iloc[0]) % 2**32, "new sensor", str(first_day), str(len(t["photos"])))
    per_day = np.diff(np.round(np.linspace(0, n_photos, n_days + 1)).astype(int))
    first = len(t["photos"])
    parts = []
    for d, (count, s) in enumerate(zip(per_day, share)):
        n_v2 = int(rng.binomial(count, s))
        for sensor, n, sd, scale in (("v1", count - n_v2, KNOBS["noise"], 1.0), ("v2", n_v2, noise, contrast_scale)):
            if n:
                parts.append(_photos(rng, first, n, (first_day + d, first_day + d + 1), sensor, sd, scale))
                first += n
    for name in ("photos", "annotations", "objects", "decoys", "backgrounds"):
        t[name] = pd.concat([t[name]] + [p[name] for p in parts], ignore_index=True)
    return t


def _summary(world: World) -> str:
    t = world.observed
    k = KNOBS
    counts = t["annotations"]["label"].value_counts()
    why = "\n".join(f"- `{name}` = {KNOBS[name]}: {reason}." for name, reason in WHY.items())
    return f"""
Street-level photos from a fleet of camera cars, with a box drawn by an annotator around every
face and licence plate. Each photo is a {IMAGE_SIZE} x {IMAGE_SIZE} grayscale scene: a background
with a brightness gradient, {k['decoys_per_photo'][0]}-{k['decoys_per_photo'][1]} **decoys**
(plain ellipses, plain rectangles and lines with the outline of a face or a plate but none of its
inner structure), zero to two faces and zero to two plates, and sensor noise. Pixels are
**rendered on demand** by `mlsd.datasets.street_view_blurring.pixels` (float32 in [0, 1]), so
nothing here is an image file.

- {len(t['photos']):,} photos on days 0-{k['days'] - 1} ({len(t['photos']) // k['days']:,} a day)
  from {k['n_cameras']} cameras; {counts.get('face', 0):,} faces and {counts.get('plate', 0):,} plates.
- **Faces** are ellipses {FACE_HEIGHTS[0]}-{FACE_HEIGHTS[-1]} pixels tall (four sizes) with two
  eyes and a mouth drawn opposite to the skin; a quarter are brighter than their background,
  the rest darker (in shade). **Plates** are rectangles {PLATE_WIDTHS[0]}-{PLATE_WIDTHS[-1]} pixels wide, three times
  wider than tall, with five dark characters; three in four are brighter than the background.
- Contrast |object - background| is uniform on {k['contrast'][0]}-{k['contrast'][1]}; noise has
  standard deviation {k['noise']}.
- **Hidden**: each object's template size and signed contrast, the decoys, the background's
  level and gradient, the sensor's noise. `clean_background` and `templates` give the oracle
  everything but the noise.

**Why these values.**

{why}

**Known biases and limits.** Objects never overlap each other or a decoy, sit wholly inside the
photo at whole-pixel positions and come in exactly four sizes per class: real faces are turned,
cut by the frame and partly hidden. Annotations are exact (real annotators miss small faces and
draw loose boxes). `new_sensor` brings photos from a noisier, lower-contrast sensor, for drift
experiments.
"""
