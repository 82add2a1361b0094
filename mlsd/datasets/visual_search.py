"""The visual search world (Chapter 5): which catalogue photos show the product in this photo?

A marketplace has **products** in twelve categories. Each product looks like one prototype: a
shape and a texture set by its category (mugs are discs, lamps striped triangles...) in colours,
proportions and texture scale of its own. Sellers upload several photos of each product (the
**catalogue**); users search with a photo they took (a **query**). Every photo is a small RGB
image (16 x 16 pixels) of its product's prototype seen through an **augmentation**: a shift, a
rotation, a change of scale, a change of brightness, contrast and colour balance, sensor noise
and, sometimes, an occluding patch. Query photos are taken in worse conditions than the sellers'
(more rotation, noise and occlusion). A few catalogue photos are re-uploads of another photo of
the same product (near duplicates), and a few products are blocked by the marketplace's policy.

Relevance is graded: a catalogue photo of the query's product is relevance 2, a photo of another
product of the same category 1, anything else 0. The query's product is hidden (the oracle only).

Pixels are not stored: each photo is a pure function of its product, its view parameters and a
stored salt (a hash, as the other worlds' noise), and :func:`pixels` renders them on demand, so
the repository stores kilobytes of tables instead of megabytes of images. :func:`new_listings`
continues the world with new products of its categories, and :func:`new_style` with products of a
style the catalogue has never had (a thirteenth category), for the monitoring section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd._checks import check_int
from mlsd.datasets._hashing import normal_from_hash, splitmix64
from mlsd.datasets.world import World, all_tables
from mlsd.book.seeding import make_rng

DEFAULT_SEED = 0
NAME = "visual_search"
IMAGE_SIZE = 16

SHAPES = ("disc", "ring", "square", "diamond", "triangle", "cross", "star")
TEXTURES = ("plain", "stripes", "checks", "dots", "zigzag")

#: category -> (shape, texture, base hue in [0, 1)): products of a category share shape and texture
CATEGORIES = {
    "mugs": ("disc", "plain", 0.02),
    "plates": ("ring", "plain", 0.58),
    "lamps": ("triangle", "stripes", 0.12),
    "chairs": ("square", "checks", 0.08),
    "shirts": ("square", "stripes", 0.62),
    "sneakers": ("diamond", "dots", 0.95),
    "watches": ("ring", "dots", 0.50),
    "bags": ("diamond", "plain", 0.30),
    "vases": ("triangle", "plain", 0.75),
    "rugs": ("square", "dots", 0.40),
    "hats": ("disc", "stripes", 0.85),
    "clocks": ("cross", "checks", 0.20),
}
#: the style :func:`new_style` brings in: a shape and a texture no stored category has
NEW_STYLE = {"stickers": ("star", "zigzag", 0.66)}

KNOBS = {
    "n_products": 5_000,
    "images_per_product": 10,
    "catalogue_days": 60,            # products join the catalogue over days 0-59
    "n_queries": 1_000,
    "query_days": 7,                 # queries arrive on days 60-66
    "duplicate_share": 0.03,         # catalogue photos that are re-uploads of another photo
    "blocked_share": 0.02,           # products blocked by policy
    "query_popularity_exponent": 0.8,  # queries pick products with probability ~ rank^-exponent
    "shift": 0.15,                   # +- shift, in units of half the image
    "rotation_degrees": {"catalogue": 12.0, "query": 25.0},   # standard deviation
    "scale": 0.12,                   # +- relative change of size
    "brightness": 0.08,              # +- added to every channel
    "contrast": 0.15,                # +- relative
    "colour_balance": 0.08,          # +- relative, per channel
    "noise": {"catalogue": 0.03, "query": 0.06},               # standard deviation per pixel
    "occlusion": {"catalogue": 0.1, "query": 0.35},            # probability of an occluding patch
}

COLUMNS = {
    "products.product_id": "product id, 0..n-1",
    "products.category": "one of the twelve categories (a shape and a texture)",
    "products.added_day": "day the product joined the catalogue",
    "products.blocked": "the marketplace's policy blocks the product: it must never be shown",
    "catalogue.image_id": "catalogue photo id, 0..n-1 (its row)",
    "catalogue.product_id": "the product the seller uploaded it for",
    "catalogue.day": "upload day",
    "queries.query_id": "query photo id, 0..n-1 (its row)",
    "queries.day": "day of the search",
    "query_truth.query_id": "hidden: the query",
    "query_truth.product_id": "hidden: the product the query photo shows",
    "catalogue_views.image_id": "hidden: the catalogue photo",
    "catalogue_views.duplicate_of": "hidden: the photo it re-uploads (same augmentation, new noise), or -1",
    "salt.salt": "hidden: the key of every hash (products' looks and photos' augmentations)",
}

_ROLE_CODE = {"catalogue": 0, "query": 1}   # keeps the hash streams of the two kinds of photo apart
_QUERY_KEYS = 10**9   # query photos' hash keys start here, apart from the catalogue's


# --------------------------------------------------------------------------- hashing


def _hash(salt: int, ids, stream: int) -> np.ndarray:
    """A uint64 per id: a fixed function of (salt, id, stream); ``stream`` selects an independent draw."""
    ids = np.asarray(ids, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        return splitmix64(splitmix64(ids * np.uint64(0x100000001B3) + np.uint64(salt)) ^ np.uint64(stream * 0x9E3779B97F4A7C15 % 2**64))


def _uniform(salt: int, ids, stream: int) -> np.ndarray:
    """A uniform in [0, 1) per id."""
    return (_hash(salt, ids, stream) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(salt: int, ids, stream: int) -> np.ndarray:
    """A standard normal per id."""
    return normal_from_hash(_hash(salt, ids, stream))


# --------------------------------------------------------------------------- rendering


def _hsv_to_rgb(h, s, v) -> np.ndarray:
    """Vectorised HSV -> RGB, all in [0, 1]; returns (..., 3)."""
    i = np.floor(h * 6.0) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    rgb = np.zeros(np.shape(h) + (3,))
    for k, (r, g, b) in enumerate(choices):
        on = i == k
        rgb[on] = np.stack([np.broadcast_to(r, np.shape(h))[on], np.broadcast_to(g, np.shape(h))[on],
                            np.broadcast_to(b, np.shape(h))[on]], axis=-1)
    return rgb


def _looks(salt: int, product_ids, categories) -> dict:
    """Each product's prototype: shape and texture codes, colours, size, proportions, texture scale."""
    table = {**CATEGORIES, **NEW_STYLE}
    unknown = set(categories) - set(table)
    if unknown:
        raise ValueError(f"unknown categories: {sorted(unknown)}")
    shape = np.array([SHAPES.index(table[c][0]) for c in categories])
    texture = np.array([TEXTURES.index(table[c][1]) for c in categories])
    hue = np.array([table[c][2] for c in categories]) + 0.06 * _normal(salt, product_ids, 1)
    u = lambda k: _uniform(salt, product_ids, k)  # noqa: E731 - a short name for the product's k-th uniform
    return {
        "shape": shape,
        "texture": texture,
        "fg": _hsv_to_rgb(hue % 1.0, 0.45 + 0.5 * u(2), 0.45 + 0.5 * u(3)),
        "tex": _hsv_to_rgb((hue + 0.35 + 0.3 * u(4)) % 1.0, 0.3 + 0.6 * u(5), 0.2 + 0.8 * u(6)),
        "bg": _hsv_to_rgb(u(7), 0.05 + 0.2 * u(8), 0.75 + 0.25 * u(9)),
        "size": 0.5 + 0.25 * u(10),
        "aspect": np.exp(0.25 * (2 * u(11) - 1)),
        "frequency": 2.0 + 2.5 * u(12),
        "angle": np.pi * u(13),
    }


def _augmentations(salt: int, views, role: str) -> dict:
    """Each photo's augmentation, from its view key and role (query photos are taken in worse conditions)."""
    k = KNOBS
    code = 1_000 + 100 * _ROLE_CODE[role]
    u = lambda j: _uniform(salt, views, code + j)  # noqa: E731
    return {
        "dx": k["shift"] * (2 * u(0) - 1),
        "dy": k["shift"] * (2 * u(1) - 1),
        "rotation": np.deg2rad(k["rotation_degrees"][role]) * _normal(salt, views, code + 2),
        "scale": 1 + k["scale"] * (2 * u(3) - 1),
        "brightness": k["brightness"] * (2 * u(4) - 1),
        "contrast": 1 + k["contrast"] * (2 * u(5) - 1),
        "balance": 1 + k["colour_balance"] * (2 * np.stack([u(6), u(7), u(8)], axis=-1) - 1),
        "occluded": u(9) < k["occlusion"][role],
        "patch": np.stack([u(10), u(11), 0.3 + 0.25 * u(12), 0.3 + 0.25 * u(13), u(14)], axis=-1),
        "noise": k["noise"][role],
    }


def _shape_distance(shape, x, y, size) -> np.ndarray:
    """Signed distance-like value, positive inside the shape; ``shape`` holds one code per image."""
    out = np.empty_like(x)
    for code in np.unique(shape):
        on = shape == code
        xs, ys, s = x[on], y[on], size[on][:, None, None]
        r, ax, ay = np.hypot(xs, ys), np.abs(xs), np.abs(ys)
        name = SHAPES[code]
        if name == "disc":
            d = s - r
        elif name == "ring":
            d = np.minimum(s - r, r - 0.55 * s)
        elif name == "square":
            d = 0.85 * s - np.maximum(ax, ay)
        elif name == "diamond":
            d = s - (ax + ay) / 1.1
        elif name == "triangle":
            d = np.minimum(ys + 0.6 * s, 0.8 * s - 0.5 * ys - 0.87 * ax)
        elif name == "cross":
            d = np.maximum(np.minimum(s - ax, 0.35 * s - ay), np.minimum(0.35 * s - ax, s - ay))
        else:  # star
            d = s * (0.7 + 0.3 * np.cos(5 * np.arctan2(ys, xs))) - r
        out[on] = d
    return out


def _texture(texture, x, y, frequency, angle) -> np.ndarray:
    """Texture intensity in [0, 1] at the prototype's coordinates; ``texture`` holds one code per image."""
    out = np.zeros_like(x)
    for code in np.unique(texture):
        name = TEXTURES[code]
        if name == "plain":
            continue
        on = texture == code
        f, a = frequency[on][:, None, None], angle[on][:, None, None]
        along = x[on] * np.cos(a) + y[on] * np.sin(a)
        across = -x[on] * np.sin(a) + y[on] * np.cos(a)
        if name == "stripes":
            t = 0.5 + 0.5 * np.sin(np.pi * f * along)
        elif name == "checks":
            t = 0.5 + 0.5 * np.sign(np.sin(np.pi * f * along) * np.sin(np.pi * f * across))
        elif name == "dots":
            t = (np.hypot((f * along / 2) % 1 - 0.5, (f * across / 2) % 1 - 0.5) < 0.28).astype(x.dtype)
        else:  # zigzag
            t = 0.5 + 0.5 * np.sign(np.sin(np.pi * f * (along + 0.3 * np.abs((f * across) % 2 - 1))))
        out[on] = t
    return out


_NOISE_PATTERNS = 1024


def _noise(salt: int, noise_ids) -> np.ndarray:
    """Unit-variance sensor noise per image, (n, IMAGE_SIZE, IMAGE_SIZE, 3), a fixed function of (salt, id).

    A bank of patterns drawn once from the salt; each image takes one pattern, cyclically shifted by
    its own offset: cheap, and the same id always gets the same noise, whatever else is rendered with it.
    """
    width = IMAGE_SIZE * IMAGE_SIZE * 3
    bank = np.random.default_rng(salt % 2**32).standard_normal((_NOISE_PATTERNS, width), dtype=np.float32)
    pattern = (_uniform(salt, noise_ids, 7_000) * _NOISE_PATTERNS).astype(np.int64)
    offset = (_uniform(salt, noise_ids, 7_001) * width).astype(np.int64)
    cells = (np.arange(width) + offset[:, None]) % width
    return bank[pattern[:, None], cells].reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 3)


def _render(salt: int, looks: dict, aug: dict, noise_ids) -> np.ndarray:
    """(n, IMAGE_SIZE, IMAGE_SIZE, 3) float32 images in [0, 1]."""
    n = len(looks["shape"])
    grid = ((np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE * 2 - 1).astype(np.float32)   # pixel centres in [-1, 1]
    v, u = np.meshgrid(-grid, grid, indexing="ij")                       # rows top to bottom, y up
    col = lambda a: np.asarray(a, dtype=np.float32).reshape(n, 1, 1)  # noqa: E731 - per-image scalars broadcast
    # inverse transform: from the photo's pixel to the prototype's coordinates
    px, py = (u[None] - col(aug["dx"])) / col(aug["scale"]), (v[None] - col(aug["dy"])) / col(aug["scale"])
    cos, sin = np.cos(col(aug["rotation"])), np.sin(col(aug["rotation"]))
    x, y = cos * px + sin * py, -sin * px + cos * py
    x, y = x / col(looks["aspect"]), y * col(looks["aspect"])
    size = np.asarray(looks["size"], dtype=np.float32)
    inside = (1 / (1 + np.exp(-20 * _shape_distance(looks["shape"], x, y, size))))[..., None]
    t = _texture(looks["texture"], x, y, np.asarray(looks["frequency"], np.float32),
                 np.asarray(looks["angle"], np.float32))[..., None]
    rgb = lambda a: np.asarray(a, dtype=np.float32)[:, None, None, :]  # noqa: E731
    colour = rgb(looks["fg"]) * (1 - t) + rgb(looks["tex"]) * t
    image = rgb(looks["bg"]) * (1 - inside) + colour * inside
    # photometric changes, then the occluding patch, then sensor noise
    image = (image - 0.5) * col(aug["contrast"])[..., None] + 0.5 + col(aug["brightness"])[..., None]
    image = image * rgb(aug["balance"])
    cx, cy, w, h, grey = (col(aug["patch"][:, j]) for j in range(5))
    patch = (np.abs((u[None] + 1) / 2 - cx) < w / 2) & (np.abs((1 - v[None]) / 2 - cy) < h / 2)
    patch &= np.asarray(aug["occluded"]).reshape(n, 1, 1)
    image = np.where(patch[..., None], grey[..., None], image)
    image += np.float32(aug["noise"]) * _noise(salt, noise_ids)
    return np.clip(image, 0, 1, out=image)


def pixels(world, kind: str, ids, batch: int = 5_000) -> np.ndarray:
    """The photos ``ids`` of ``kind`` ("catalogue" or "query") as (n, 16, 16, 3) float32 in [0, 1].

    Rendered from the product's look and the photo's augmentation, both hashes of stored keys, so
    the same id gives the same pixels on every call and machine. Reads hidden tables (the query's
    product, the augmentation keys): the chapter uses it as the camera, never as a feature.
    """
    if kind not in ("catalogue", "query"):
        raise ValueError(f"kind must be 'catalogue' or 'query', got {kind!r}")
    t = all_tables(world)
    ids = np.asarray(ids, dtype=np.int64)
    rows = t["catalogue_views"] if kind == "catalogue" else t["query_truth"]
    key = "image_id" if kind == "catalogue" else "query_id"
    if ids.size and (ids.min() < 0 or ids.max() >= len(rows)):
        raise ValueError(f"{kind} ids must be in 0..{len(rows) - 1}")
    if not np.array_equal(rows[key].to_numpy(), np.arange(len(rows))):
        raise ValueError(f"the {kind} table must be indexed by position")
    product = (t["catalogue"]["product_id"] if kind == "catalogue" else t["query_truth"]["product_id"]).to_numpy()[ids]
    if kind == "catalogue":   # a re-upload shares its original's augmentation key
        duplicate_of = rows["duplicate_of"].to_numpy()[ids]
        view = np.where(duplicate_of >= 0, duplicate_of, ids)
    else:
        view = ids + _QUERY_KEYS
    salt = int(t["salt"]["salt"].iloc[0])
    category = t["products"]["category"].to_numpy()
    out = np.empty((len(ids), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    for start in range(0, len(ids), batch):
        part = slice(start, start + batch)
        looks = _looks(salt, product[part], category[product[part]])
        # a re-upload shares its original's augmentation but not its sensor noise
        noise_ids = ids[part] + (0 if kind == "catalogue" else _QUERY_KEYS)
        out[part] = _render(salt, looks, _augmentations(salt, view[part], kind), noise_ids)
    return out


def relevance(world, query_ids, image_ids) -> np.ndarray:
    """Graded relevance (2 same product, 1 same category, 0 otherwise) of each image for each query.

    ``query_ids`` (q,) and ``image_ids`` (q, k) or (k,): returns an int array of the image ids' shape
    (broadcast over queries). Reads the hidden truth: for evaluation only.
    """
    t = all_tables(world)
    query_product = t["query_truth"]["product_id"].to_numpy()[np.asarray(query_ids)]
    image_product = t["catalogue"]["product_id"].to_numpy()[np.asarray(image_ids)]
    category = pd.factorize(t["products"]["category"])[0]
    if image_product.ndim == 1:
        image_product = np.broadcast_to(image_product, (len(query_product), len(image_product)))
    same_product = image_product == query_product[:, None]
    same_category = category[image_product] == category[query_product][:, None]
    return np.where(same_product, 2, np.where(same_category, 1, 0))


# --------------------------------------------------------------------------- generation


def _products(rng, n: int, first_id: int, categories: list[str], days: tuple[int, int], blocked_share: float) -> pd.DataFrame:
    return pd.DataFrame({
        "product_id": np.arange(first_id, first_id + n),
        "category": np.array(categories)[rng.integers(0, len(categories), n)],
        "added_day": np.sort(rng.integers(days[0], days[1], n)),
        "blocked": rng.random(n) < blocked_share,
    })


def _catalogue(rng, products: pd.DataFrame, first_image: int, per_product: int, duplicate_share: float):
    product = np.repeat(products["product_id"].to_numpy(), per_product)
    day = np.repeat(products["added_day"].to_numpy(), per_product)
    image_id = np.arange(first_image, first_image + len(product))
    duplicate_of = np.full(len(product), -1)
    # a re-upload repeats another photo of the same product (same augmentation, new noise)
    dup = np.flatnonzero(rng.random(len(product)) < duplicate_share)
    dup = dup[dup % per_product != 0]                                     # the first photo is never a re-upload
    duplicate_of[dup] = image_id[dup - 1 - rng.integers(0, dup % per_product)]
    while True:   # a re-upload of a re-upload points to the original
        chained = duplicate_of[dup] >= 0
        chained[chained] = duplicate_of[duplicate_of[dup][chained] - first_image] >= 0
        if not chained.any():
            break
        duplicate_of[dup[chained]] = duplicate_of[duplicate_of[dup[chained]] - first_image]
    observed = pd.DataFrame({"image_id": image_id, "product_id": product, "day": day})
    hidden = pd.DataFrame({"image_id": image_id, "duplicate_of": duplicate_of})
    return observed, hidden


def _queries(rng, products: pd.DataFrame, n: int, first_query: int, days: tuple[int, int]):
    k = KNOBS
    ranks = np.arange(1, len(products) + 1)
    popularity = ranks ** -k["query_popularity_exponent"]
    popularity = popularity[rng.permutation(len(products))]              # popularity is unrelated to id
    product = rng.choice(products["product_id"].to_numpy(), n, p=popularity / popularity.sum())
    query_id = np.arange(first_query, first_query + n)
    observed = pd.DataFrame({"query_id": query_id, "day": np.sort(rng.integers(days[0], days[1], n))})
    hidden = pd.DataFrame({"query_id": query_id, "product_id": product})
    return observed, hidden


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the visual search world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    k = KNOBS
    rng = make_rng(seed)
    salt = int(rng.integers(0, 2**62))
    products = _products(rng, k["n_products"], 0, list(CATEGORIES), (0, k["catalogue_days"]), k["blocked_share"])
    catalogue, catalogue_views = _catalogue(rng, products, 0, k["images_per_product"], k["duplicate_share"])
    days = (k["catalogue_days"], k["catalogue_days"] + k["query_days"])
    queries, query_truth = _queries(rng, products, k["n_queries"], 0, days)
    world = World(
        name=NAME,
        seed=seed,
        observed={"products": products, "catalogue": catalogue, "queries": queries},
        hidden={"query_truth": query_truth, "catalogue_views": catalogue_views, "salt": pd.DataFrame({"salt": [salt]})},
        summary="",
        knobs=dict(KNOBS),
        columns=COLUMNS,
    )
    world.summary = _summary(world)
    return world


def new_listings(world, n_products: int, first_day: int, n_days: int = 7, n_queries: int = 0,
                 categories=None) -> dict[str, pd.DataFrame]:
    """The world continued: ``n_products`` new products listed on days ``first_day`` .. ``first_day + n_days - 1``.

    ``categories``: the categories to draw from (default: the twelve of the stored world). Returns
    the world's tables with the new products, their catalogue photos and ``n_queries`` queries for
    them (on the ``n_days`` days after the listings) appended; :func:`pixels` and :func:`relevance`
    accept the result in place of the world, and so does this function (to continue it again).
    """
    n_products = check_int("n_products", n_products, minimum=1)
    n_queries = check_int("n_queries", n_queries, minimum=0)
    first_day = check_int("first_day", first_day, minimum=0)
    n_days = check_int("n_days", n_days, minimum=1)
    categories = list(CATEGORIES) if categories is None else list(categories)
    unknown = set(categories) - set(CATEGORIES) - set(NEW_STYLE)
    if not categories or unknown:
        raise ValueError(f"categories must be among {sorted({**CATEGORIES, **NEW_STYLE})}, got {categories!r}")
    t = dict(all_tables(world))
    salt = int(t["salt"]["salt"].iloc[0])
    rng = make_rng(salt % 2**32, "listings", str(first_day), str(len(t["products"])), *categories)
    new = _products(rng, n_products, len(t["products"]), categories, (first_day, first_day + n_days), 0.0)
    catalogue, views = _catalogue(rng, new, len(t["catalogue"]), KNOBS["images_per_product"], KNOBS["duplicate_share"])
    t["products"] = pd.concat([t["products"], new], ignore_index=True)
    t["catalogue"] = pd.concat([t["catalogue"], catalogue], ignore_index=True)
    t["catalogue_views"] = pd.concat([t["catalogue_views"], views], ignore_index=True)
    if n_queries:
        queries, truth = _queries(rng, new, n_queries, len(t["queries"]), (first_day + n_days, first_day + 2 * n_days))
        t["queries"] = pd.concat([t["queries"], queries], ignore_index=True)
        t["query_truth"] = pd.concat([t["query_truth"], truth], ignore_index=True)
    return t


def new_style(world, n_products: int, first_day: int, n_queries: int = 200) -> dict[str, pd.DataFrame]:
    """Products of a style the catalogue never had (category "stickers": a star with a zigzag texture).

    :func:`new_listings` of that category over a week from ``first_day``, with ``n_queries``
    queries for them the week after.
    """
    check_int("n_queries", n_queries, minimum=1)
    return new_listings(world, n_products, first_day, n_days=7, n_queries=n_queries, categories=list(NEW_STYLE))


def _summary(world: World) -> str:
    t = world.observed
    k = KNOBS
    per_category = t["products"]["category"].value_counts()
    shapes = "\n".join(f"| {name} | {shape} | {texture} | {per_category.get(name, 0):,} |"
                       for name, (shape, texture, _) in CATEGORIES.items())
    n_dup = int((world.hidden["catalogue_views"]["duplicate_of"] >= 0).sum())
    return f"""
A marketplace's catalogue of product photos and a week of users' photo searches. Each product
looks like one prototype (a shape and a texture set by its category; colours, size, proportions
and texture scale of its own); every photo is that prototype through an augmentation (shift,
rotation, scale, brightness, contrast, colour balance, noise, sometimes an occluding patch).
Query photos are taken in worse conditions than catalogue photos. Pixels are **rendered on
demand** by `mlsd.datasets.visual_search.pixels` from the stored keys (16 x 16 RGB, float32 in
[0, 1]), so nothing here is an image file.

- {len(t['products']):,} products, {len(t['catalogue']):,} catalogue photos
  ({k['images_per_product']} per product; {n_dup:,} of them re-uploads of another photo of the
  same product), {len(t['queries']):,} queries on days {k['catalogue_days']}-{k['catalogue_days'] + k['query_days'] - 1};
  {int(t['products']['blocked'].sum()):,} products blocked by policy.
- Queries favour popular products (probability ~ rank^-{k['query_popularity_exponent']}).
- **Relevance** (hidden: the query's product): 2 for a photo of the query's product, 1 for a
  photo of another product of the same category, 0 otherwise (`relevance`). The oracle ranks by it.

| category | shape | texture | products |
| --- | --- | --- | ---: |
{shapes}

**Known biases and limits.** The looks are synthetic and low-resolution: categories differ by
shape and texture, products within a category by colour, proportions and texture scale only.
Augmentations are independent of the product. `new_style` adds a thirteenth category whose shape
and texture no stored product has (a star with a zigzag texture), for drift experiments.
"""
