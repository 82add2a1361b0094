"""Chapter 12's exercises: the plumbing their solutions share (it uses the core's ranks).

- **cold start**: :func:`region_mean_rows`, the cold start that knows only the region;
- **negatives**: :func:`neighbour_region_share`, how regional an embedding's neighbourhoods
  are, and :func:`same_region_noise`, how often word2vec's random negatives fall in the
  context's own region;
- **precomputed lists**: :func:`precomputed_lists` (a nightly top-k per listing),
  :func:`calendar_matrix` and :func:`list_survivors` (what the request's filters leave of
  each list);
- **the session**: :func:`first_clicks`, :func:`vector_ranks` (ranks for one query vector
  per query) and :func:`session_posterior`, the oracle given a session's first clicks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int, check_int_ids
from mlsd.book.seeding import make_rng
from mlsd.cases.similar_listings.core import _grouped_ranks, _queries
from mlsd.datasets import similar_listings as sl
from mlsd.datasets.world import World

__all__ = ["region_mean_rows", "neighbour_region_share", "same_region_noise", "precomputed_lists",
           "calendar_matrix", "list_survivors", "precomputed_survivors", "first_clicks", "vector_ranks",
           "session_posterior"]


def _world(world) -> World:
    if not isinstance(world, World):
        raise TypeError(f"world must be a World, got {type(world).__name__}")
    return world


# --------------------------------------------------------------------------- cold start


def region_mean_rows(matrix, region, known) -> np.ndarray:
    """A copy of ``matrix`` (one row, or one value, per listing) whose rows for the listings
    not ``known`` are the mean row of the known listings of their region: the cold start that
    knows only where a listing is.

    Raises ``ValueError`` if a region has unknown listings and no known one.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim not in (1, 2):
        raise ValueError(f"matrix must be 1-D or 2-D (one row per listing), got shape {matrix.shape}")
    region = check_int_ids("region", region)
    known = np.asarray(known)
    if known.dtype != bool:
        raise TypeError(f"known must be a boolean array, got {known.dtype}")
    if not (len(matrix) == len(region) == len(known)):
        raise ValueError(f"matrix, region and known need one row per listing, got {len(matrix)}, "
                         f"{len(region)} and {len(known)}")
    out = matrix.copy()
    for r in np.unique(region[~known]):
        donors = known & (region == r)
        if not donors.any():
            raise ValueError(f"region {r} has no known listing to take a mean from")
        out[~known & (region == r)] = matrix[donors].mean(axis=0)
    return out


# --------------------------------------------------------------------------- what negatives teach


def neighbour_region_share(vectors, region, k: int = 10) -> float:
    """The mean share of each listing's ``k`` nearest neighbours by cosine (itself left out)
    that lie in its own region: near 1 when the embedding keeps the regions apart.

    Raises ``ValueError`` for ``k + 1`` listings or fewer, or a zero or non-finite vector.
    """
    v = np.asarray(vectors, dtype=float)
    region = check_int_ids("region", region)
    k = check_int("k", k, minimum=1)
    if v.ndim != 2 or len(v) != len(region):
        raise ValueError(f"vectors must be (listings, dim) with one region per row, got {v.shape} "
                         f"and {region.shape}")
    if len(v) <= k:
        raise ValueError(f"need more than k = {k} listings, got {len(v)}")
    norms = np.linalg.norm(v, axis=1)
    if not np.isfinite(v).all() or (norms == 0).any():
        raise ValueError("vectors must be finite and non-zero (a cosine needs a direction)")
    unit = v / norms[:, None]
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    nearest = np.argpartition(-cosine, k - 1, axis=1)[:, :k]
    return float((region[nearest] == region[:, None]).mean())


def same_region_noise(counts, region, power: float = 0.75) -> float:
    """How often a random negative lies in its context's region: contexts drawn in proportion
    to ``counts`` (clicks per listing) and negatives from word2vec's noise, ``counts **
    power`` normalised. The sum over regions of the context's share times the noise's."""
    counts = np.asarray(counts, dtype=float)
    region = check_int_ids("region", region)
    power = check_finite("power", power)
    if counts.shape != region.shape or counts.ndim != 1:
        raise ValueError(f"counts and region need one value per listing, got {counts.shape} and {region.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any() or counts.sum() == 0:
        raise ValueError("counts must be finite, non-negative and not all zero")
    noise = counts ** power
    contexts = np.bincount(region, counts) / counts.sum()
    return float(np.sum(contexts * np.bincount(region, noise) / noise.sum()))


# --------------------------------------------------------------------------- precomputed lists


def precomputed_lists(w_in, w_out, log_pop, alpha: float, region, k: int = 50, open_mask=None) -> np.ndarray:
    """The nightly job of the precomputed design: for every listing, the ids of the ``k`` best
    other listings of its region by the chapter's score ``w_out[c] . w_in[v] + alpha *
    log_pop[c]``, best first (ties to the smaller id); ``-1`` pads a region with fewer than
    ``k + 1`` candidates. ``open_mask`` (one bool per listing) keeps closed listings out."""
    w_in, w_out = np.asarray(w_in, dtype=float), np.asarray(w_out, dtype=float)
    log_pop = np.asarray(log_pop, dtype=float)
    region = check_int_ids("region", region)
    k = check_int("k", k, minimum=1)
    alpha = check_finite("alpha", alpha)
    n = len(region)
    if w_in.ndim != 2 or w_in.shape != w_out.shape or w_in.shape[0] != n or log_pop.shape != (n,):
        raise ValueError(f"w_in and w_out must be (listings, dim) and log_pop (listings,), for {n} "
                         f"listings; got {w_in.shape}, {w_out.shape} and {log_pop.shape}")
    open_mask = np.ones(n, bool) if open_mask is None else np.asarray(open_mask)
    if open_mask.dtype != bool or open_mask.shape != (n,):
        raise ValueError(f"open_mask must be one bool per listing ({n}), got {open_mask.dtype} {open_mask.shape}")
    out = np.full((n, k), -1, dtype=np.int64)
    for r in np.unique(region):
        members = np.flatnonzero(region == r)
        candidates = members[open_mask[members]]
        scores = w_in[members] @ w_out[candidates].T + alpha * log_pop[candidates]
        scores[members[:, None] == candidates[None, :]] = -np.inf   # not itself
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top = candidates[order]
        top[np.take_along_axis(scores, order, axis=1) == -np.inf] = -1
        out[members, :top.shape[1]] = top
    return out


def calendar_matrix(blocked: pd.DataFrame, n_listings: int, first_night: int, n_nights: int) -> np.ndarray:
    """The calendar as a ``(listings, nights)`` bool array, True where the listing is free:
    ``blocked`` has a row ``(listing_id, night)`` per night that cannot be booked, nights
    ``first_night .. first_night + n_nights - 1``."""
    if not isinstance(blocked, pd.DataFrame) or not {"listing_id", "night"} <= set(blocked.columns):
        raise ValueError("blocked must be a DataFrame with columns listing_id and night")
    n_listings = check_int("n_listings", n_listings, minimum=1)
    first_night = check_int("first_night", first_night, minimum=0)
    n_nights = check_int("n_nights", n_nights, minimum=1)
    ids, nights = check_int_ids("listing_id", blocked["listing_id"]), check_int_ids("night", blocked["night"]) - first_night
    if ids.size and (ids.min() < 0 or ids.max() >= n_listings):
        raise ValueError(f"blocked names a listing outside 0..{n_listings - 1}")
    if nights.size and (nights.min() < 0 or nights.max() >= n_nights):
        raise ValueError(f"blocked names a night outside {first_night}..{first_night + n_nights - 1}")
    free = np.ones((n_listings, n_nights), dtype=bool)
    free[ids, nights] = False
    return free


def list_survivors(lists, requests, free, first_night: int, price) -> np.ndarray:
    """For each request (a dict with ``listing_id``, ``check_in``, ``nights`` and optionally
    ``max_price`` and ``session``), which entries of the viewed listing's precomputed list pass
    its filters: free every night of the stay (``free`` from :func:`calendar_matrix`, its first
    column night ``first_night``), at most ``max_price``, not among the session's clicks.
    Padding (``-1``) never passes. A ``(requests, k)`` bool array."""
    lists = np.asarray(lists)
    free = np.asarray(free)
    price = np.asarray(price, dtype=float)
    if lists.ndim != 2 or lists.dtype.kind not in "iu":
        raise ValueError(f"lists must be a (listings, k) integer array, got {lists.dtype} {lists.shape}")
    if free.ndim != 2 or free.dtype != bool or len(free) != len(lists) or price.shape != (len(lists),):
        raise ValueError("free must be a (listings, nights) bool array and price one value per listing, "
                         "for the lists' listings")
    first_night = check_int("first_night", first_night, minimum=0)
    out = np.zeros((len(requests), lists.shape[1]), dtype=bool)
    for i, request in enumerate(requests):
        if not isinstance(request, dict) or not {"listing_id", "check_in", "nights"} <= set(request):
            raise ValueError(f"request {i} must be a dict with listing_id, check_in and nights")
        start = check_int("check_in", request["check_in"], minimum=first_night) - first_night
        stay = check_int("nights", request["nights"], minimum=1)
        if start + stay > free.shape[1]:
            raise ValueError(f"request {i}'s stay runs past the calendar")
        top = lists[check_int("listing_id", request["listing_id"], minimum=0)]
        ok = (top >= 0) & ~np.isin(top, list(request.get("session", ())))
        ok &= free[np.maximum(top, 0), start:start + stay].all(axis=1)
        if request.get("max_price") is not None:
            ok &= price[np.maximum(top, 0)] <= check_finite("max_price", request["max_price"])
        out[i] = ok
    return out


# --------------------------------------------------------------------------- the session


def first_clicks(clicks: pd.DataFrame, m: int, session_ids=None) -> pd.DataFrame:
    """The first ``m`` clicks (before the booking row) of every session that has at least
    ``m``: one row per session, indexed by ``session_id`` (in the order of ``session_ids`` if
    given, else ascending), columns ``click_0`` .. ``click_{m-1}``. Sessions with fewer
    clicks are left out."""
    if not isinstance(clicks, pd.DataFrame):
        raise TypeError(f"clicks must be a DataFrame, got {type(clicks).__name__}")
    missing = {"session_id", "position", "listing_id", "booked"} - set(clicks.columns)
    if missing:
        raise ValueError(f"clicks lack the columns {sorted(missing)}")
    m = check_int("m", m, minimum=1)
    rows = clicks[(clicks["booked"] == 0) & (clicks["position"] < m)]
    wide = rows.pivot(index="session_id", columns="position", values="listing_id")
    wide = wide.reindex(columns=range(m)).dropna().astype(np.int64)
    wide.columns = [f"click_{i}" for i in range(m)]
    if session_ids is not None:
        wanted = check_int_ids("session_ids", session_ids)
        wide = wide.loc[wanted[np.isin(wanted, wide.index)]]
    return wide


def vector_ranks(world: World, queries, vectors, w_out, log_pop, alpha: float) -> np.ndarray:
    """The booked listing's rank for each query of a ranking task when query ``i`` is scored
    with its own vector: ``w_out[c] . vectors[i] + alpha * log_pop[c]`` over the task's
    candidates (the listings open in the region that day, the viewed one left out), as
    :func:`booked_ranks` ranks them. For a query vector built from more than the viewed
    listing, such as the mean over a session's clicks."""
    q = _queries(queries)
    vectors, w_out = np.asarray(vectors, dtype=float), np.asarray(w_out, dtype=float)
    log_pop = np.asarray(log_pop, dtype=float)
    alpha = check_finite("alpha", alpha)
    if vectors.ndim != 2 or len(vectors) != len(q):
        raise ValueError(f"vectors must hold one row per query ({len(q)}), got shape {vectors.shape}")
    if w_out.ndim != 2 or w_out.shape[1] != vectors.shape[1] or log_pop.shape != (len(w_out),):
        raise ValueError(f"w_out must be (listings, {vectors.shape[1]}) and log_pop one value per "
                         f"listing, got {w_out.shape} and {log_pop.shape}")
    return _grouped_ranks(_world(world), q, lambda rows, viewed, c: vectors[rows] @ w_out[c].T
                          + alpha * log_pop[c])


def session_posterior(world: World, clicked, day, *, n_tastes: int = 4_000, seed: int = 0):
    """The oracle given a session's first clicks: p(booked = j | the first clicks were
    ``clicked[i]``, in that order, on ``day[i]``), for every listing open in the region.

    ``clicked`` is ``(queries, m)``: the listing ids clicked first, second, ... (all in one
    region, distinct). By Monte Carlo over the same ``n_tastes`` prior tastes as
    :func:`~mlsd.datasets.similar_listings.booking_posterior` (which this equals given one
    click), each weighted by the Plackett-Luce probability of the clicks: the product over
    clicks of ``exp(u_click) / sum of exp(u)`` over the open listings not clicked yet (the
    world's guests click without replacement). How many clicks a guest makes does not depend on
    the taste, so a session's length tells nothing more.

    Returns ``(posteriors, effective)``. ``posteriors`` has one ``(candidates, p)`` per query:
    the open listings (ascending, clicked ones included) and ``p`` of shape ``(m, candidates)``,
    whose row ``j`` conditions on the first ``j + 1`` clicks. ``effective`` is ``(queries, m)``:
    the effective number of tastes behind each estimate (``(sum w)^2 / sum w^2``; a few dozen
    make a noisy oracle).
    """
    _world(world)
    clicked = np.asarray(clicked)
    if clicked.ndim == 1:
        clicked = clicked[:, None]
    if clicked.ndim != 2 or clicked.shape[1] < 1 or (clicked.size and clicked.dtype.kind not in "iu"):
        raise ValueError(f"clicked must be (queries, m) integer listing ids, got {clicked.dtype} {clicked.shape}")
    day = np.asarray(day)
    if day.ndim > 1 or (day.ndim == 1 and len(day) != len(clicked)):
        raise ValueError(f"day must be one day, or one per query ({len(clicked)}), got shape {day.shape}")
    if day.size and day.dtype.kind not in "iu":
        raise TypeError(f"day must hold integer days, got {day.dtype}")
    day = np.broadcast_to(day.astype(np.int64), clicked.shape[:1])
    n_tastes = check_int("n_tastes", n_tastes, minimum=100)
    truth = sl.truth_of(world)
    if clicked.size and (clicked.min() < 0 or clicked.max() >= len(truth.region)):
        raise ValueError("clicked holds an unknown listing id")
    region = truth.region[clicked]
    if (region != region[:, :1]).any():
        raise ValueError("a session's clicks must all be in one region")
    if (truth.created[clicked] > day[:, None]).any():
        raise ValueError("a clicked listing was not online on its day")
    if (np.sort(clicked, axis=1)[:, 1:] == np.sort(clicked, axis=1)[:, :-1]).any():
        raise ValueError("a session's clicks must be distinct listings (guests click without replacement)")
    tastes = make_rng(check_int("seed", seed, minimum=0), sl.NAME, "posterior").standard_normal(
        (n_tastes, sl.STYLE_DIM))
    m = clicked.shape[1]
    posteriors: list = [None] * len(clicked)
    effective = np.empty(clicked.shape)
    for r in np.unique(region[:, 0]):
        ids = np.flatnonzero(truth.region == r)
        rows = np.flatnonzero(region[:, 0] == r)
        u = sl.utilities(truth, tastes, ids).T                       # (region's listings, tastes)
        u -= u.max(axis=0)
        e_click, e_book = np.exp(u), np.exp(truth.book_sharpness * u)
        days, day_of = np.unique(day[rows], return_inverse=True)
        is_open = truth.created[ids][None, :] <= days[:, None]      # (days, listings)
        z_click, z_book = is_open.astype(float) @ e_click, is_open.astype(float) @ e_book
        at = np.searchsorted(ids, clicked[rows])                    # (queries, m)
        e_at = e_click[at]                                          # (queries, m, tastes)
        left = z_click[day_of][:, None, :] - (np.cumsum(e_at, axis=1) - e_at)  # not clicked yet
        left = np.maximum(left, 1e-300)
        log_w = np.cumsum(u[at] - np.log(left), axis=1)             # (queries, m, tastes)
        w = np.exp(log_w - log_w.max(axis=2, keepdims=True))
        effective[rows] = w.sum(axis=2) ** 2 / np.sum(w ** 2, axis=2)
        w /= w.sum(axis=2, keepdims=True) * z_book[day_of][:, None, :]  # and each taste's sum
        p = (w.reshape(-1, len(tastes)) @ e_book.T).reshape(len(rows), m, len(ids))
        for j, i in enumerate(rows):
            keep = is_open[day_of[j]]
            posteriors[i] = (ids[keep], p[j][:, keep])
    return posteriors, effective


def precomputed_survivors(world: World, w_in, w_out, log_pop, alpha: float, *, day: int,
                          nights: int = 120, top: int = 50, n_requests: int = 300,
                          seed: int) -> np.ndarray:
    """Precompute each listing's ``top`` list the night before ``day`` (listings online by then)
    and filter the lists of ``n_requests`` requests of that day: the serving section's calendar
    (:func:`blocked_nights`) and requests (:func:`request_sample`) at ``seed``. Returns a
    (requests, top) boolean array: which of each list's entries pass the filters."""
    from mlsd.cases.similar_listings.serving import blocked_nights, request_sample

    w = _world(world)
    day = check_int("day", day, minimum=1)
    nights = check_int("nights", nights, minimum=1)
    listings = w.observed["listings"]
    blocked = blocked_nights(listings["listing_id"], day, nights, seed=seed)
    free = calendar_matrix(blocked, len(listings), day, nights)
    lists = precomputed_lists(w_in, w_out, log_pop, alpha, listings["region"].to_numpy(), top,
                              open_mask=listings["created_day"].to_numpy() < day)
    stays = request_sample(w, day, n=n_requests, seed=seed, k=10, first_night=day,
                           last_night=day + nights - 1)
    return list_survivors(lists, stays, free, day, listings["price"].to_numpy())
