"""The similar listings world (Chapter 12): which listings resemble the one a guest is viewing?

A vacation-rental site with listings in twenty regions. A guest searches one region, clicks
through a few listings and books one. The chapter learns listing embeddings from these click
sessions and, for a listing being viewed, ranks the region's other listings so that the one the
guest will book comes early.

The story, drawn once per seed:

- **listings** in ``n_regions`` regions of very different sizes; each has a hidden 6-d
  ``style`` and a hidden ``quality``. What the site shows is a noisy view of a little of it:
  the room type (from style 1), the bedrooms (from style 2), the nightly price (style 3,
  quality and the region's price level) and a rating (quality, and only once the listing has
  reviews). Styles 4-6 show in no field: only who clicks what together reveals them. Most
  listings exist from day 0; the rest arrive one by one (``created_day``);
- **sessions**: each day ``sessions_per_day`` guests search a region (larger regions draw more
  guests). Each has a hidden taste ``t`` (6-d), and every open listing ``j`` in the region a
  utility ``u_j = style_weight * t . style_j / sqrt(6) + quality_j``. The guest clicks
  ``n`` distinct listings drawn without replacement with probabilities ~ ``exp(u)``, in that
  order (the first click is a draw from the softmax), and books one drawn independently with
  probabilities ~ ``exp(book_sharpness * u)``: the booked listing is the session's last row
  (it may also be among the clicks).

Observed: ``listings`` (region, attributes, created_day), ``sessions`` (day, region, booked
listing) and ``clicks`` (session, position, listing; the booking is the last row).
Hidden: ``listing_truth`` (style and quality) and ``session_truth`` (the tastes).

:func:`booking_posterior` is the oracle: given a viewed listing (the first click of a session)
and the day, the probability that the session books each listing, averaged over the tastes that
would have made that first click (Monte Carlo over the taste prior, weighted by the first
click's probability). Ranking by it minimises the expected rank of the booked listing given
what the viewed listing tells: a true ceiling. :func:`ranking_task` is the evaluation protocol;
:func:`live_sessions` continues the world past the log, with a season or a new region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from mlsd._checks import check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets.world import World

DEFAULT_SEED = 0
NAME = "similar_listings"

ROOM_TYPES = ("shared room", "private room", "apartment", "house")
STYLE_DIM = 6
#: the log's days; training ends before VALIDATION_DAY, testing starts at TEST_DAY
DAYS = 120
VALIDATION_DAY = 90
TEST_DAY = 105

KNOBS = {
    "n_regions": 20,
    "n_listings": 3_000,
    "new_listings": 400,              # of n_listings, created one by one over the days
    "region_concentration": 1.5,      # Dirichlet: regions of about 50 to about 500 listings
    "days": DAYS,
    "sessions_per_day": 250,
    "clicks_mean": 6.0,               # clicks before the booking: 1 + Poisson(clicks_mean - 1)
    "clicks_max": 15,
    # the true model
    "style_weight": 2.2,
    "quality_sd": 0.6,
    "book_sharpness": 1.5,
    # what the listing's fields show
    "price_log_mean": 4.7,
    "price_style": 0.35,
    "price_quality": 0.25,
    "price_region_sd": 0.3,
    "price_noise_sd": 0.15,
    "room_type_noise_sd": 0.5,
    "bedrooms_noise_sd": 0.6,
    "rating_noise_sd": 0.25,
    "reviews_after_days": 20,         # a listing shows a rating once it is this many days old
}

WHY = {
    "n_listings, n_regions": "about 150 listings per region: the booked listing's rank is out of a "
                             "realistic candidate list, and a notebook trains on all of them in seconds",
    "sessions_per_day": "30,000 sessions: about ten bookings per listing in the training window, "
                        "so popularity is known well and embeddings must earn their keep",
    "style_weight": "taste matters more than quality: a viewed listing says a lot about what will be "
                    "booked, but one click does not pin a taste down (the oracle's gap to the clairvoyant)",
    "book_sharpness": "a booking is more selective than a click: the booked listing is the best "
                      "evidence of taste, the reason to use it as a global context",
    "price_style, room_type_noise_sd, bedrooms_noise_sd": "the page shows three of the six style "
        "coordinates, through noise, and the other three in no field: attributes alone cannot find "
        "similar listings; co-clicks can",
    "new_listings": "listings arrive every day: the test weeks hold listings no training session saw",
}

COLUMNS = {
    "listings.listing_id": "listing id, 0..n-1",
    "listings.region": "region id, 0..n_regions-1",
    "listings.room_type": "one of: " + ", ".join(ROOM_TYPES),
    "listings.bedrooms": "number of bedrooms (1-5)",
    "listings.price": "nightly price in dollars",
    "listings.rating": "average review, 1-5 (NaN until the listing is reviews_after_days old; "
                       "the stored value is the one shown at the end of the log)",
    "listings.created_day": "the day the listing went online (0: before the log)",
    "sessions.session_id": "session id, 0..n-1 (in time order)",
    "sessions.day": "the day of the session",
    "sessions.region": "the region the guest searched",
    "sessions.booked": "the listing the guest booked",
    "clicks.session_id": "the session",
    "clicks.position": "the click's place in the session, 0 first; the last row is the booking",
    "clicks.listing_id": "the listing clicked (or booked, on the last row)",
    "clicks.booked": "1 on the session's last row: the booked listing",
    "listing_truth.listing_id": "hidden: the listing",
    **{f"listing_truth.style_{i}": f"hidden: style coordinate {i}" for i in range(1, STYLE_DIM + 1)},
    "listing_truth.quality": "hidden: quality (utility scale)",
    "session_truth.session_id": "hidden: the session",
    **{f"session_truth.taste_{i}": f"hidden: the guest's taste, coordinate {i}" for i in range(1, STYLE_DIM + 1)},
}


# --------------------------------------------------------------------------- the truth


@dataclass
class Truth:
    """What the true model needs, as arrays indexed by listing id."""

    region: np.ndarray    # (listings,)
    created: np.ndarray   # (listings,)
    style: np.ndarray     # (listings, STYLE_DIM)
    quality: np.ndarray   # (listings,)
    style_weight: float
    book_sharpness: float


def truth_of(world: World) -> Truth:
    """The world's hidden truth as arrays (for the oracle and the tests; never a feature)."""
    listings = world.observed["listings"]
    truth = world.hidden["listing_truth"]
    if not (listings["listing_id"].to_numpy() == np.arange(len(listings))).all():
        raise ValueError("listings must be indexed 0..n-1 in order")
    style = truth[[f"style_{i}" for i in range(1, STYLE_DIM + 1)]].to_numpy(dtype=float)
    knobs = world.knobs or KNOBS
    return Truth(region=listings["region"].to_numpy(), created=listings["created_day"].to_numpy(),
                 style=style, quality=truth["quality"].to_numpy(dtype=float),
                 style_weight=float(knobs["style_weight"]), book_sharpness=float(knobs["book_sharpness"]))


def utilities(truth: Truth, tastes: np.ndarray, listing_ids) -> np.ndarray:
    """The utility of each listing for each taste: (tastes, listings)."""
    listing_ids = np.asarray(listing_ids)
    s = truth.style[listing_ids]
    return (truth.style_weight / np.sqrt(STYLE_DIM)) * (tastes @ s.T) + truth.quality[listing_ids]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def open_listings(world: World, region: int, day: int) -> np.ndarray:
    """Ids of the listings in ``region`` online on ``day``, ascending."""
    listings = world.observed["listings"]
    keep = (listings["region"].to_numpy() == region) & (listings["created_day"].to_numpy() <= day)
    return listings["listing_id"].to_numpy()[keep]


def _whole_numbers(name: str, values) -> np.ndarray:
    """``values`` as an int64 array (at least 1-d for ids), refusing fractions and non-numbers."""
    a = np.asarray(values)
    fractional = a.dtype.kind == "f" and not (np.isfinite(a).all() and (a == np.round(a)).all())
    if a.dtype.kind not in "iuf" or fractional:
        raise ValueError(f"{name} must hold whole numbers, got {values!r:.80}")
    a = a.astype(np.int64)
    return np.atleast_1d(a) if name == "viewed" else a


def booking_posterior(world: World, viewed, day, *, n_tastes: int = 4_000, seed: int = 0,
                      taste_shift=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The oracle: p(booked = j | the session's first click was ``viewed`` on ``day``).

    For each (viewed, day) pair, returns ``(candidates, p)``: the listings open in the viewed
    listing's region that day (the viewed one included) and the probability that the session
    books each, by Monte Carlo over ``n_tastes`` tastes drawn from the prior (the same draws
    for every pair), each weighted by the probability that it clicks ``viewed`` first.
    ``taste_shift`` moves the prior's mean (a season).
    """
    viewed, day = _whole_numbers("viewed", viewed), _whole_numbers("day", day)
    if viewed.ndim != 1 or day.ndim > 1 or (day.ndim == 1 and day.shape != viewed.shape):
        raise ValueError(f"viewed must be one id or a 1-d array of ids, and day one day or one per "
                         f"viewed listing; got shapes {viewed.shape} and {day.shape}")
    day = np.broadcast_to(day, viewed.shape)
    n_tastes = check_int("n_tastes", n_tastes, minimum=100)
    truth = truth_of(world)
    if viewed.size and (viewed.min() < 0 or viewed.max() >= len(truth.region)):
        raise ValueError("viewed holds an unknown listing id")
    if (truth.created[viewed] > day).any():
        raise ValueError("a viewed listing was not online on its day")
    tastes = make_rng(seed, NAME, "posterior").standard_normal((n_tastes, STYLE_DIM))
    if taste_shift is not None:
        tastes = tastes + _checked_shift(taste_shift)
    out: list = [None] * viewed.size
    keys = pd.DataFrame({"region": truth.region[viewed], "day": day, "i": np.arange(viewed.size)})
    # Small products, many of them: one BLAS thread is several times faster on a busy machine.
    with threadpool_limits(1):
        for (region, d), group in keys.groupby(["region", "day"], sort=True):
            candidates = open_listings(world, int(region), int(d))
            u = utilities(truth, tastes, candidates)
            click = _softmax(u)
            book = _softmax(truth.book_sharpness * u)
            where = np.searchsorted(candidates, viewed[group["i"].to_numpy()])
            weights = click[:, where]                        # (tastes, queries)
            p = (np.ascontiguousarray(weights.T) @ book) / weights.sum(axis=0)[:, None]
            for row, i in enumerate(group["i"].to_numpy()):
                out[i] = (candidates, p[row])
    return out


@dataclass
class RankingTask:
    """The evaluation protocol: for each session in a window, its first click and its booking.

    ``queries`` has one row per session whose booked listing is not its first click:
    ``session_id``, ``day``, ``region``, ``viewed`` (the first click) and ``booked``. A system
    ranks the listings open in the region that day, without the viewed one; the metric is the
    booked listing's rank (1 = first).
    """

    queries: pd.DataFrame
    first_day: int
    end_day: int


def ranking_task(world: World, first_day: int = TEST_DAY, end_day: int = DAYS) -> RankingTask:
    """The sessions of days ``first_day``..``end_day - 1`` as ranking queries."""
    first_day = check_int("first_day", first_day, minimum=0)
    end_day = check_int("end_day", end_day, minimum=first_day + 1)
    sessions = world.observed["sessions"]
    last = int(sessions["day"].max())
    if end_day > last + 1:
        raise ValueError(f"the window {first_day}-{end_day - 1} runs past the log, which ends on day {last}")
    clicks = world.observed["clicks"]
    first = clicks[clicks["position"] == 0].set_index("session_id")["listing_id"]
    s = sessions[(sessions["day"] >= first_day) & (sessions["day"] < end_day)]
    q = pd.DataFrame({"session_id": s["session_id"].to_numpy(), "day": s["day"].to_numpy(),
                      "region": s["region"].to_numpy(),
                      "viewed": first.loc[s["session_id"]].to_numpy(),
                      "booked": s["booked"].to_numpy()})
    q = q[q["viewed"] != q["booked"]].reset_index(drop=True)
    return RankingTask(queries=q, first_day=first_day, end_day=end_day)


# --------------------------------------------------------------------------- generation


def _listings(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    k = KNOBS
    rng = make_rng(seed, NAME, "listings")
    n, n_regions = k["n_listings"], k["n_regions"]
    share = np.sort(rng.dirichlet(np.full(n_regions, k["region_concentration"])))[::-1]
    share = 0.01 + 0.8 * share  # no region below about 1 %
    region = rng.choice(n_regions, size=n, p=share / share.sum())
    created = np.zeros(n, dtype=np.int64)
    created[rng.choice(n, size=k["new_listings"], replace=False)] = rng.integers(1, k["days"], k["new_listings"])
    order = np.lexsort((region, created))  # ids in creation order
    region, created = region[order], created[order]
    style = np.round(rng.standard_normal((n, STYLE_DIM)), 4)  # stored as drawn: 4 decimals
    quality = np.round(k["quality_sd"] * rng.standard_normal(n), 4)
    region_price = k["price_region_sd"] * rng.standard_normal(n_regions)
    room = np.digitize(style[:, 0] + k["room_type_noise_sd"] * rng.standard_normal(n), [-1.2, -0.2, 0.9])
    bedrooms = np.clip(np.round(2.5 + 1.1 * style[:, 1] + k["bedrooms_noise_sd"] * rng.standard_normal(n)), 1, 5)
    log_price = (k["price_log_mean"] + k["price_style"] * style[:, 2] + k["price_quality"] * quality
                 + region_price[region] + k["price_noise_sd"] * rng.standard_normal(n))
    rating = np.clip(np.round(4.3 + 0.5 * quality + k["rating_noise_sd"] * rng.standard_normal(n), 1), 1.0, 5.0)
    rating[created > k["days"] - 1 - k["reviews_after_days"]] = np.nan
    listings = pd.DataFrame({
        "listing_id": np.arange(n), "region": region, "room_type": np.asarray(ROOM_TYPES)[room],
        "bedrooms": bedrooms.astype(np.int64), "price": np.round(np.exp(log_price)).astype(np.int64),
        "rating": rating, "created_day": created})
    truth = pd.DataFrame({"listing_id": np.arange(n),
                          **{f"style_{i + 1}": style[:, i] for i in range(STYLE_DIM)}, "quality": quality})
    return listings, truth, share


def _checked_shift(taste_shift) -> np.ndarray:
    shift = np.asarray(taste_shift, dtype=float)
    if shift.shape != (STYLE_DIM,) or not np.isfinite(shift).all():
        raise ValueError(f"taste_shift needs {STYLE_DIM} finite numbers (one per style coordinate)")
    return shift


def _simulate(seed: int, world_listings: pd.DataFrame, truth_table: pd.DataFrame, share: np.ndarray,
              days: range, first_session: int, stream: str, taste_shift=None, shift_day=None):
    """Sessions for ``days``: (sessions, clicks, session_truth)."""
    k = KNOBS
    rng = make_rng(seed, NAME, stream)
    truth = Truth(region=world_listings["region"].to_numpy(), created=world_listings["created_day"].to_numpy(),
                  style=truth_table[[f"style_{i}" for i in range(1, STYLE_DIM + 1)]].to_numpy(dtype=float),
                  quality=truth_table["quality"].to_numpy(dtype=float),
                  style_weight=float(k["style_weight"]), book_sharpness=float(k["book_sharpness"]))
    n_regions = len(share)
    per_day = k["sessions_per_day"]
    day = np.repeat(np.asarray(list(days), dtype=np.int64), per_day)
    n = day.size
    region = rng.choice(n_regions, size=n, p=share / share.sum())
    taste = np.round(rng.standard_normal((n, STYLE_DIM)), 3)  # stored as drawn: 3 decimals
    if taste_shift is not None:
        taste[day >= shift_day] += _checked_shift(taste_shift)
    n_clicks = np.minimum(1 + rng.poisson(k["clicks_mean"] - 1, n), k["clicks_max"])
    booked = np.empty(n, dtype=np.int64)
    sequences: list = [None] * n
    for r in range(n_regions):
        rows = np.flatnonzero(region == r)
        if rows.size == 0:
            continue
        ids = np.flatnonzero(truth.region == r)
        u = utilities(truth, taste[rows], ids)
        u[truth.created[ids][None, :] > day[rows][:, None]] = -np.inf
        g_click = u + rng.gumbel(size=u.shape)
        g_book = truth.book_sharpness * u + rng.gumbel(size=u.shape)
        order = np.argsort(-g_click, axis=1, kind="stable")
        choice = np.argmax(g_book, axis=1)
        for i, row in enumerate(rows):
            open_count = int(np.isfinite(u[i]).sum())
            clicked = ids[order[i, :min(n_clicks[row], open_count)]]
            b = ids[choice[i]]
            booked[row] = b
            sequences[row] = np.append(clicked, b)
    session_id = first_session + np.arange(n)
    sessions = pd.DataFrame({"session_id": session_id, "day": day, "region": region, "booked": booked})
    lengths = np.array([len(s) for s in sequences])
    clicks = pd.DataFrame({
        "session_id": np.repeat(session_id, lengths),
        "position": np.concatenate([np.arange(m) for m in lengths]),
        "listing_id": np.concatenate(sequences),
        "booked": np.concatenate([np.r_[np.zeros(m - 1, dtype=np.int64), 1] for m in lengths])})
    session_truth = pd.DataFrame({"session_id": session_id,
                                  **{f"taste_{i + 1}": taste[:, i] for i in range(STYLE_DIM)}})
    return sessions, clicks, session_truth


def generate(seed: int = DEFAULT_SEED) -> World:
    """Generate the similar listings world at ``seed``."""
    seed = check_int("seed", seed, minimum=0)
    listings, listing_truth, share = _listings(seed)
    sessions, clicks, session_truth = _simulate(seed, listings, listing_truth, share, range(DAYS), 0, "sessions")
    world = World(name=NAME, seed=seed,
                  observed={"listings": listings, "sessions": sessions, "clicks": clicks},
                  hidden={"listing_truth": listing_truth, "session_truth": session_truth,
                          "regions": pd.DataFrame({"region": np.arange(len(share)), "share": share})},
                  summary="")
    world.knobs, world.columns = dict(KNOBS), dict(COLUMNS)
    world.columns.update({"regions.region": "hidden: the region",
                          "regions.share": "hidden: its weight when a guest picks a region"})
    world.summary = _summary(world)
    return world


def live_sessions(world: World, n_days: int, *, taste_shift=None, shift_day: int | None = None):
    """The world continued past the log for ``n_days``: (sessions, clicks, session_truth).

    Only the new days are returned (session ids continue the log's). ``taste_shift`` (one
    number per style coordinate) moves every guest's taste from ``shift_day`` on: a season.
    """
    n_days = check_int("n_days", n_days, minimum=1)
    if (taste_shift is None) != (shift_day is None):
        raise ValueError("give taste_shift and shift_day together, or neither")
    if taste_shift is not None:
        _checked_shift(taste_shift)
        check_int("shift_day", shift_day, minimum=0)
    share = world.hidden["regions"]["share"].to_numpy()
    start = int(world.observed["sessions"]["day"].max()) + 1
    first_session = int(world.observed["sessions"]["session_id"].max()) + 1
    return _simulate(world.seed, world.observed["listings"], world.hidden["listing_truth"], share,
                     range(start, start + n_days), first_session, f"live-{start}", taste_shift, shift_day)


def _summary(world: World) -> str:
    obs = world.observed
    k = KNOBS
    sizes = obs["listings"].groupby("region").size()
    clicks_per = obs["clicks"].groupby("session_id").size()
    why = "\n".join(f"- `{name}`: {reason}." for name, reason in WHY.items())
    return f"""
A vacation-rental site: {len(obs['listings']):,} listings in {k['n_regions']} regions (from
{sizes.min()} to {sizes.max()} listings), {k['new_listings']} of them created during the log, and
{len(obs['sessions']):,} search sessions over {k['days']} days, each in one region and ending in a
booking ({clicks_per.mean():.1f} rows per session on average, the booking included).

Each listing has a hidden 6-d style and a quality; each session a hidden taste. A guest clicks
listings drawn without replacement from a softmax of their utilities (taste . style, scaled,
plus quality) and books one drawn from a sharper softmax. The room type, bedrooms and price show
three of the style coordinates through noise, and the rating shows quality; the other three
style coordinates show in no field.

`hidden/` holds the styles, qualities, tastes and the regions' weights;
`mlsd.datasets.similar_listings.booking_posterior` gives, for a viewed listing, the probability
of booking each listing of its region: the oracle.

Known biases: a guest clicks and books in one region only, so co-clicks say little across
regions; popular (high-quality) listings appear in many sessions of every taste; new listings
have few or no sessions; the booked listing is appended after the clicks, so it is always the
session's last row (a guest who clicked it earlier has it twice).

Why these values:
{why}
"""
