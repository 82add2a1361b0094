"""Chapter 12's serving plumbing: the nightly vectors, the per-region index, the live calendar,
the request's filters and the HTTP app.

The score of a candidate ``c`` for a viewed listing ``v`` is ``w_out[c] . w_in[v] + alpha *
log_pop[c]``. Appending ``log_pop[c]`` to the candidate's vector and ``alpha`` to the query's
makes it one inner product, which an exact inner-product index scores as it is:

- **the nightly job**: :func:`vector_table` lays out the embeddings (``in_*`` for the query
  side, ``out_*`` and ``log_pop`` for the candidate side) with the fields a filter needs, and
  :func:`write_vectors` writes them to a :class:`~mlsd.systems.feature_store.FeatureStore`
  with a ``model`` row (version, alpha, training cut-off); :class:`RegionIndex` reads them
  back into one exact faiss ``IndexFlatIP`` per region, holding the listings online that day;
- **the request**: :func:`query_vector` averages the viewed listing's ``in_*`` row with those
  of the session's recent clicks (one read from the store) and appends ``alpha``;
  :class:`Calendar` is the live table of blocked nights, read at request time
  (:meth:`Calendar.free`) and written when a guest books (:meth:`Calendar.book`);
  :func:`blocked_nights` draws its rows (serving data, not part of the world);
  :func:`bookable` applies the filters (price in memory first, then the calendar) and
  :func:`answer_items` shapes the answer;
- **checks**: :func:`request_sample` draws requests from a day's sessions,
  :func:`passes_in_order` says which of a region's candidates, in score order, pass each
  request's filters, :func:`overfetch_table` counts what an over-fetch costs and the second
  searches it leaves, :func:`match_offline` compares a served list with the offline ranking
  and :func:`skew_check` does so for a day's queries; :func:`session_vectors` is the
  session's query computed offline, for many queries at once;
- **HTTP and scale**: :func:`create_similar_app` (``POST /similar``),
  :func:`malformed_requests` (bad bodies to try), :func:`fault` and :func:`answer_table`
  (what the server answered), :func:`scan_timing` (a flat scan with and without a region's
  own index), :func:`scale_numbers` (memory and scan cost at full scale) and
  :func:`full_scale` (both, with the sizes behind them, named for the prose).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint's annotations at runtime.

import logging
import numbers
import threading
import time
from collections.abc import Callable

import faiss
import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from mlsd._checks import check_finite, check_int
from mlsd.book.seeding import make_rng
from mlsd.datasets import similar_listings as _world
from mlsd.datasets.world import World
from mlsd.systems.feature_store import FeatureStore, SQLiteStore
from mlsd.systems.serving import faiss_threads, fault, service_app

__all__ = ["vector_table", "write_vectors", "model_row", "RegionIndex", "query_vector",
           "blocked_nights", "Calendar", "bookable", "answer_items", "request_sample",
           "passes_in_order", "overfetch_table", "match_offline", "skew_check",
           "session_vectors", "create_similar_app", "malformed_requests", "fault",
           "answer_table", "scan_timing", "scale_numbers", "full_scale"]

logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

VECTORS, MODEL = "vectors", "model"
_FIELDS = ["listing_id", "region", "created_day", "price"]


# --------------------------------------------------------------------------- checks


def _matrix(name: str, value, rows: int | None = None) -> np.ndarray:
    m = np.asarray(value)
    if m.ndim != 2 or m.shape[1] < 1 or m.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a 2-D array of numbers, got shape {m.shape}")
    if rows is not None and m.shape[0] != rows:
        raise ValueError(f"{name} has {m.shape[0]} rows, expected {rows} (one per listing)")
    if not np.isfinite(m).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return m.astype(float)


def _log_pop(value, rows: int) -> np.ndarray:
    """log popularity as a 1-D array: (n,) or (n, 1) accepted."""
    p = np.asarray(value)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.shape != (rows,) or p.dtype.kind not in "iuf" or not np.isfinite(p).all():
        raise ValueError(f"log_pop must be {rows} finite numbers ((n,) or (n, 1)), "
                         f"got shape {p.shape}")
    return p.astype(float)


def _id_array(name: str, values) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim == 0:
        a = a[None]
    if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
        raise TypeError(f"{name} must be a 1-D list of integer ids, got {values!r}")
    return a.astype(np.int64)


def _dim(columns, prefix: str) -> int:
    return sum(c.startswith(prefix) and c[len(prefix):].isdigit() for c in columns)



# --------------------------------------------------------------------------- the nightly job


def vector_table(listings: pd.DataFrame, w_in, w_out, log_pop) -> pd.DataFrame:
    """One row per listing: its id, region, created_day and price, the query side ``in_0 ..``
    (``w_in``), the candidate side ``out_0 ..`` (``w_out``) and ``log_pop``.

    ``log_pop`` may be ``(n,)`` or ``(n, 1)``. Raises ``ValueError`` if a matrix has another
    number of rows than ``listings``, the two matrices differ in width, or a value is NaN.
    """
    if not isinstance(listings, pd.DataFrame):
        raise TypeError(f"listings must be a DataFrame, got {type(listings).__name__}")
    missing = [c for c in _FIELDS if c not in listings.columns]
    if missing:
        raise ValueError(f"listings lack the columns {missing}")
    n = len(listings)
    if not np.array_equal(listings["listing_id"].to_numpy(), np.arange(n)):
        raise ValueError("listings must be listing ids 0..n-1 in order (row i of the "
                         "matrices is listing i)")
    w_in, w_out = _matrix("w_in", w_in, n), _matrix("w_out", w_out, n)
    if w_in.shape[1] != w_out.shape[1]:
        raise ValueError(f"w_in and w_out differ in width: {w_in.shape[1]} and {w_out.shape[1]}")
    frame = listings[_FIELDS].reset_index(drop=True).copy()
    frame["price"] = frame["price"].astype(float)
    frame["log_pop"] = _log_pop(log_pop, n)
    d = w_in.shape[1]
    side = pd.DataFrame(np.c_[w_in, w_out], columns=[f"in_{i}" for i in range(d)]
                        + [f"out_{i}" for i in range(d)])
    return pd.concat([frame, side], axis=1)


def write_vectors(store: FeatureStore, table: pd.DataFrame, *, model_version: str,
                  alpha: float, trained_until: int) -> pd.DataFrame:
    """The nightly job's write: ``vectors`` (keyed by listing_id) and one ``model`` row
    (version, alpha, dimension, the first day not trained on). Returns rows per table."""
    if not isinstance(store, FeatureStore):
        raise TypeError(f"store must be a FeatureStore, got {type(store).__name__}")
    if not isinstance(table, pd.DataFrame) or _dim(table.columns, "out_") < 1:
        raise ValueError("table must be a vector_table() frame")
    if not isinstance(model_version, str) or not model_version:
        raise ValueError(f"model_version must be a non-empty string, got {model_version!r}")
    alpha = check_finite("alpha", alpha)
    trained_until = check_int("trained_until", trained_until, minimum=1)
    store.write(VECTORS, table, ["listing_id"])
    store.write(MODEL, pd.DataFrame({"model_version": [model_version], "alpha": [alpha],
                                     "dim": [_dim(table.columns, "out_")],
                                     "trained_until": [trained_until]}), ["model_version"])
    return pd.DataFrame({name: {"key": key, "rows": store.count(name)}
                         for name, key in ((VECTORS, "listing_id"), (MODEL, "model_version"))}).T


def model_row(store: FeatureStore) -> dict:
    """The store's ``model`` row as a dict (``ValueError`` if there is not exactly one)."""
    columns = store._columns(MODEL)
    rows = store.lookup(MODEL, columns)
    if len(rows) != 1:
        raise ValueError(f"the store holds {len(rows)} model rows, expected one")
    return dict(zip(columns, rows[0]))


class RegionIndex:
    """One exact inner-product faiss index per region, over the listings online on ``day``.

    A candidate's vector is ``[out_0, .., out_{d-1}, log_pop]`` in float32; a query
    ``[q_0, .., q_{d-1}, alpha]`` scores it ``out . q + alpha * log_pop``. Each region's
    ``IndexIDMap(IndexFlatIP)`` returns listing ids. Build it from a :func:`vector_table`
    frame, or with :meth:`from_store` from the nightly job's table.
    """

    def __init__(self, table: pd.DataFrame, day: int):
        day = check_int("day", day, minimum=0)
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"table must be a DataFrame, got {type(table).__name__}")
        d = _dim(table.columns, "out_")
        needed = _FIELDS + ["log_pop"] + [f"out_{i}" for i in range(d)]
        missing = [c for c in needed if c not in table.columns]
        if d < 1 or missing:
            raise ValueError(f"table must be a vector_table() frame (lacks {missing or 'out_*'})")
        online = table[table["created_day"].to_numpy() <= day]
        if online.empty:
            raise ValueError(f"no listing is online on day {day}")
        self.day, self.dim = day, d + 1
        ids = online["listing_id"].to_numpy(np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("listing ids must be unique")
        vectors = np.ascontiguousarray(online[needed[5:] + ["log_pop"]].to_numpy(np.float32))
        self._region = dict(zip(ids.tolist(), online["region"].astype(int).tolist()))
        self._price = dict(zip(ids.tolist(), online["price"].astype(float).tolist()))
        self._indexes = {}
        for region in sorted(set(self._region.values())):
            rows = np.flatnonzero(online["region"].to_numpy() == region)
            index = faiss.IndexIDMap(faiss.IndexFlatIP(self.dim))
            index.add_with_ids(vectors[rows], ids[rows])
            self._indexes[region] = index

    @classmethod
    def from_store(cls, store: FeatureStore, day: int) -> "RegionIndex":
        """Read the nightly ``vectors`` table and index the listings online on ``day``."""
        columns = store._columns(VECTORS)
        return cls(pd.DataFrame(store.lookup(VECTORS, columns), columns=columns), day)

    def __len__(self) -> int:
        return len(self._region)

    def __contains__(self, listing_id) -> bool:
        return isinstance(listing_id, numbers.Integral) and int(listing_id) in self._region

    @property
    def regions(self) -> list[int]:
        return list(self._indexes)

    def region_of(self, listing_id: int) -> int:
        """The listing's region; ``LookupError`` if it is not in the index."""
        if listing_id not in self:
            raise LookupError(f"listing {listing_id!r} is not in the index of day {self.day}")
        return self._region[int(listing_id)]

    def size(self, region: int) -> int:
        """Listings indexed in ``region``."""
        if region not in self._indexes:
            raise LookupError(f"no region {region!r} in the index")
        return int(self._indexes[region].ntotal)

    def prices(self, ids) -> np.ndarray:
        """The indexed listings' nightly prices, in the order of ``ids``."""
        ids = _id_array("ids", ids)
        unknown = [int(i) for i in ids if int(i) not in self._price]
        if unknown:
            raise LookupError(f"listings {unknown[:5]} are not in the index")
        return np.array([self._price[int(i)] for i in ids], dtype=float)

    def search(self, region: int, query, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` listings of ``region`` with the highest ``vector . query`` (all of them if
        the region has fewer), best first: ``(ids, scores)``, scores in float32."""
        size = self.size(region)
        n = min(check_int("n", n, minimum=1), size)
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if q.shape[1] != self.dim or not np.isfinite(q).all():
            raise ValueError(f"query must be {self.dim} finite numbers, got shape {q.shape[1:]}")
        with faiss_threads(1):
            scores, ids = self._indexes[region].search(q, n)
        return ids[0], scores[0]


def query_vector(store: FeatureStore, viewed: int, recent=(), alpha: float | None = None
                 ) -> np.ndarray:
    """The query for a viewed listing: the mean of the ``in_*`` rows of ``viewed`` and of the
    session's ``recent`` clicks (one read), with ``alpha`` appended (the store's model's
    alpha if None). ``ValueError`` names an unknown listing."""
    ids = [check_int("viewed", viewed, minimum=0)] + [int(i) for i in _id_array("recent", recent)]
    if alpha is None:
        alpha = model_row(store)["alpha"]
    alpha = check_finite("alpha", alpha)
    columns = [c for c in store._columns(VECTORS) if c.startswith("in_")]
    rows = np.array(store.lookup_in(VECTORS, columns, "listing_id", ids), dtype=float)
    return np.r_[rows.mean(axis=0), alpha]


# --------------------------------------------------------------------------- the live calendar


def blocked_nights(listing_ids, first_night: int, n_nights: int, *, seed: int,
                   blocked_share: float = 0.3, mean_run: float = 3.0) -> pd.DataFrame:
    """Nights each listing is not bookable, as rows ``(listing_id, night)``.

    Each listing's nights ``first_night .. first_night + n_nights - 1`` follow a two-state
    chain: a blocked run ends each night with probability ``1 / mean_run`` and a free run
    becomes blocked with the probability that makes ``blocked_share`` of nights blocked in the
    long run (the first night is drawn from that share). Serving data drawn from
    ``make_rng(seed, "calendar")``, not part of the world.
    """
    ids = np.unique(_id_array("listing_ids", listing_ids))
    first_night = check_int("first_night", first_night, minimum=0)
    n_nights = check_int("n_nights", n_nights, minimum=1)
    share, run = check_finite("blocked_share", blocked_share), check_finite("mean_run", mean_run)
    if not 0 < share < 1 or run < 1:
        raise ValueError(f"blocked_share must be in (0, 1) and mean_run >= 1, got {share}, {run}")
    leave = 1 / run
    enter = share * leave / (1 - share)   # stationary share: enter / (enter + leave)
    if enter > 1:
        raise ValueError(f"blocked_share {share} needs runs longer than mean_run {run}")
    rng = make_rng(seed, "calendar")
    u = rng.random((len(ids), n_nights))
    blocked = np.empty(u.shape, dtype=bool)
    blocked[:, 0] = u[:, 0] < share
    for t in range(1, n_nights):
        blocked[:, t] = np.where(blocked[:, t - 1], u[:, t] >= leave, u[:, t] < enter)
    rows, nights = np.nonzero(blocked)
    return pd.DataFrame({"listing_id": ids[rows], "night": first_night + nights})


_CALENDAR = """
CREATE TABLE IF NOT EXISTS blocked (
    listing_id INTEGER NOT NULL, night INTEGER NOT NULL,
    PRIMARY KEY (listing_id, night)) WITHOUT ROWID;
"""


class Calendar(SQLiteStore):
    """The live calendar: a row per (listing, night) that cannot be booked; nights
    ``first_night .. last_night`` are on sale, and a night without a row is free.

    Read on every request (:meth:`free`, one range scan per candidate on the key), written
    the moment a guest books (:meth:`book`). Any thread may use the connection, one at a time.
    """

    def __init__(self, first_night: int, last_night: int, path=":memory:"):
        self.first_night = check_int("first_night", first_night, minimum=0)
        self.last_night = check_int("last_night", last_night, minimum=self.first_night)
        super().__init__(path, _CALENDAR, shared=True)

    def load(self, blocked: pd.DataFrame) -> int:
        """Insert :func:`blocked_nights` rows (nights outside the calendar raise); return the
        number of rows."""
        if not isinstance(blocked, pd.DataFrame) or not {"listing_id", "night"} <= set(blocked):
            raise ValueError("blocked must be a DataFrame with columns listing_id and night")
        nights = blocked["night"].to_numpy()
        if nights.size and (nights.min() < self.first_night or nights.max() > self.last_night):
            raise ValueError(f"blocked nights must lie in {self.first_night}..{self.last_night}")
        rows = blocked[["listing_id", "night"]].sort_values(["listing_id", "night"])
        with self._db:
            self._db.executemany("INSERT INTO blocked VALUES (?, ?)",
                                 rows.astype(int).itertuples(index=False, name=None))
        return self.count()

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM blocked").fetchone()[0])

    def check_stay(self, check_in: int, nights: int) -> tuple[int, int]:
        """``(check_in, nights)`` if the stay lies inside the calendar, else ``ValueError``."""
        check_in = check_int("check_in", check_in)
        nights = check_int("nights", nights, minimum=1)
        if check_in < self.first_night:
            raise ValueError(f"check_in night {check_in} is in the past: the calendar starts "
                             f"at night {self.first_night}")
        if check_in + nights - 1 > self.last_night:
            raise ValueError(f"a stay of {nights} nights from night {check_in} ends after the "
                             f"calendar's last night, {self.last_night}")
        return check_in, nights

    def free(self, ids, check_in: int, nights: int) -> np.ndarray:
        """For each listing of ``ids``: is every night ``check_in .. check_in + nights - 1``
        free? One query for all of them."""
        check_in, nights = self.check_stay(check_in, nights)
        ids = _id_array("ids", ids)
        taken = []
        for start in range(0, len(ids), 500):   # well under SQLite's limit on variables
            chunk = [int(i) for i in ids[start:start + 500]]
            marks = ", ".join("?" * len(chunk))
            taken += self._db.execute(
                f"SELECT DISTINCT listing_id FROM blocked WHERE listing_id IN ({marks})"
                " AND night >= ? AND night < ?", chunk + [check_in, check_in + nights]).fetchall()
        return ~np.isin(ids, [row[0] for row in taken])

    def book(self, listing_id: int, check_in: int, nights: int) -> None:
        """Block the stay's nights for ``listing_id``; ``ValueError`` if one is taken."""
        listing_id = check_int("listing_id", listing_id, minimum=0)
        if not self.free([listing_id], check_in, nights)[0]:
            raise ValueError(f"listing {listing_id} is not free for {nights} nights "
                             f"from night {check_in}")
        with self._db:
            self._db.executemany("INSERT INTO blocked VALUES (?, ?)",
                                 [(listing_id, n) for n in range(check_in, check_in + nights)])


def bookable(ids, *, index: "RegionIndex", calendar: Calendar, check_in: int, nights: int,
             max_price: float | None = None, exclude=()) -> np.ndarray:
    """For each candidate of ``ids``: not in ``exclude`` (the viewed listing and the session's
    clicks), at most ``max_price`` a night (None: any price) and free every night of the stay.
    The price is checked in memory first, so the calendar reads only the survivors."""
    ids = _id_array("ids", ids)
    ok = ~np.isin(ids, _id_array("exclude", list(exclude)))
    if max_price is not None:
        max_price = check_finite("max_price", max_price)
        ok &= index.prices(ids) <= max_price
    ok[ok] = calendar.free(ids[ok], check_in, nights)
    return ok


def answer_items(ids, scores, index: "RegionIndex") -> list[dict]:
    """The answer's items: listing id, score (4 decimals) and nightly price."""
    ids, scores = _id_array("ids", ids), np.asarray(scores, dtype=float)
    if ids.shape != scores.shape:
        raise ValueError(f"ids and scores differ in shape: {ids.shape} and {scores.shape}")
    return [{"listing_id": int(i), "score": round(float(s), 4), "price": p}
            for i, s, p in zip(ids, scores, index.prices(ids))]


# --------------------------------------------------------------------------- requests and checks


def request_sample(world: World, day: int, *, n: int, seed: int, k: int, first_night: int,
                   last_night: int, recent: int = 5, price_share: float = 0.5,
                   mean_lead: float = 14.0, mean_nights: float = 3.0) -> list[dict]:
    """``n`` request bodies drawn from the clicks of ``day``'s sessions (without replacement).

    Each click is a request for its listing, with the session's ``recent`` previous clicks
    (most recent last); the stay starts ``1 + Geometric`` nights after ``day`` (mean
    ``mean_lead``) for ``1 + Poisson(mean_nights - 1)`` nights (at most 14), clipped into
    ``first_night .. last_night``; ``price_share`` of the requests carry a ``max_price`` of
    the viewed listing's price times a uniform 0.8-1.6, rounded to the dollar. Synthetic
    traffic from ``make_rng(seed, "requests")``, not part of the world.
    """
    day = check_int("day", day, minimum=0)
    n, k, recent = (check_int(name, v, minimum=1) for name, v in (("n", n), ("k", k),
                                                                    ("recent", recent)))
    first_night = check_int("first_night", first_night, minimum=0)
    last_night = check_int("last_night", last_night, minimum=first_night)
    share = check_finite("price_share", price_share)
    if not 0 <= share <= 1:
        raise ValueError(f"price_share must be in [0, 1], got {share}")
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    price = world.observed["listings"]["price"].to_numpy()
    today = sessions.loc[sessions["day"] == day, "session_id"]
    rows = clicks[clicks["session_id"].isin(today) & (clicks["booked"] == 0)]
    if len(rows) < n:
        raise ValueError(f"day {day} has {len(rows)} clicks, fewer than n={n}")
    rng = make_rng(seed, "requests")
    picked = np.sort(rng.choice(len(rows), n, replace=False))
    session, listing = rows["session_id"].to_numpy(), rows["listing_id"].to_numpy()
    lead = rng.geometric(1 / check_finite("mean_lead", mean_lead), n)
    stay = np.minimum(1 + rng.poisson(check_finite("mean_nights", mean_nights) - 1, n), 14)
    stay = np.minimum(stay, last_night - first_night + 1)
    start = np.clip(day + lead, first_night, last_night - stay + 1)
    capped = rng.random(n) < share
    factor = rng.uniform(0.8, 1.6, n)
    bodies = []
    for j, i in enumerate(picked):
        before = np.flatnonzero(session[:i] == session[i])   # rows are in click order
        body = {"listing_id": int(listing[i]), "check_in": int(start[j]),
                "nights": int(stay[j]), "k": k,
                "session": [int(x) for x in listing[before[-recent:]]]}
        if capped[j]:
            body["max_price"] = float(np.round(price[listing[i]] * factor[j]))
        bodies.append(body)
    return bodies


def passes_in_order(requests, *, store: FeatureStore, index: RegionIndex, calendar: Calendar,
                    alpha: float) -> list[np.ndarray]:
    """Per request of :func:`request_sample`: the whole region ranked for its query (the
    viewed listing and the session's clicks left out), True where a candidate passes the
    request's filters (:func:`bookable`). The input of :func:`overfetch_table`."""
    if isinstance(requests, dict) or not isinstance(requests, (list, tuple)):
        raise TypeError(f"requests must be a list of request bodies, got {type(requests).__name__}")
    passed = []
    for request in requests:
        if not isinstance(request, dict) or not {"listing_id", "check_in", "nights"} <= set(
                request):
            raise ValueError(f"a request needs listing_id, check_in and nights: {request!r}")
        viewed, session = request["listing_id"], list(request.get("session", []))
        query = query_vector(store, viewed, session, alpha)
        region = index.region_of(viewed)
        ids, _ = index.search(region, query, index.size(region))
        ids = ids[~np.isin(ids, [viewed, *session])]
        passed.append(bookable(ids, index=index, calendar=calendar,
                               check_in=request["check_in"], nights=request["nights"],
                               max_price=request.get("max_price")))
    return passed


def overfetch_table(passed, k: int, factors) -> pd.DataFrame:
    """What fetching ``factor * k`` candidates costs and leaves, per over-fetch factor.

    ``passed`` holds, per request, booleans over the region's candidates in score order (the
    viewed listing and the session's clicks already left out): True where the candidate
    passes the filters. A request whose first ``factor * k`` candidates hold fewer than ``k``
    that pass, and do not cover the region, needs a **second search** over the whole region.
    Columns: candidates fetched; second search (share of requests); candidates filtered (mean
    per request, the second search's included); short after both (share: the whole region
    holds fewer than ``k`` that pass).
    """
    k = check_int("k", k, minimum=1)
    if isinstance(passed, np.ndarray) or not isinstance(passed, (list, tuple)) or not passed:
        raise ValueError("passed must be a non-empty list of 1-D boolean arrays")
    flags = [np.asarray(p) for p in passed]
    if any(f.ndim != 1 or f.dtype != bool for f in flags):
        raise ValueError("passed must be a non-empty list of 1-D boolean arrays")
    factors = [check_int("factor", f, minimum=1) for f in factors]
    if not factors:
        raise ValueError("give at least one over-fetch factor")
    size = np.array([len(f) for f in flags])
    total = np.array([f.sum() for f in flags])
    rows = {}
    for factor in factors:
        n = factor * k
        second = np.array([f[:n].sum() < k for f in flags]) & (size > n)
        rows[factor] = {"candidates fetched": n,
                        "second search (share)": second.mean(),
                        "candidates filtered (mean)": np.mean(np.minimum(n, size)
                                                              + second * size),
                        "short after both (share)": np.mean(total < k)}
    table = pd.DataFrame(rows).T.astype({"candidates fetched": int})
    table.index.name = "over-fetch factor"
    return table


def match_offline(served_ids, served_scores, offline_ids, offline_scores, *,
                  tol: float = 1e-4) -> str:
    """Compare a served top list with the offline one (both best first).

    ``offline_scores`` are the offline (float64) scores of ``offline_ids``. Returns
    ``"identical"`` if the ids agree in order and every served score is within ``tol`` of
    its offline score; ``"reordered within rounding"`` if the sets agree and the served
    order puts no listing more than ``tol`` below a listing after it by the offline scores
    (float32 rounding can swap two near-equal scores); raises ``AssertionError`` otherwise.
    """
    tol = check_finite("tol", tol)
    s_ids, o_ids = _id_array("served_ids", served_ids), _id_array("offline_ids", offline_ids)
    s_sc, o_sc = np.asarray(served_scores, float), np.asarray(offline_scores, float)
    if s_ids.shape != s_sc.shape or o_ids.shape != o_sc.shape:
        raise ValueError("ids and scores must have matching shapes")
    if set(s_ids.tolist()) != set(o_ids.tolist()) or len(s_ids) != len(o_ids):
        raise AssertionError(f"served {s_ids.tolist()} and offline {o_ids.tolist()} differ")
    exact = dict(zip(o_ids.tolist(), o_sc.tolist()))
    in_served_order = np.array([exact[i] for i in s_ids.tolist()])
    if np.abs(in_served_order - s_sc).max(initial=0.0) > tol:
        raise AssertionError("a served score differs from its offline score by more than tol")
    if np.array_equal(s_ids, o_ids):
        return "identical"
    worst = np.maximum.accumulate(in_served_order[::-1])[::-1]   # best score at or after
    if (worst - in_served_order).max(initial=0.0) > tol:
        raise AssertionError("the served order differs from the offline one beyond rounding")
    return "reordered within rounding"


def skew_check(world: World, queries: pd.DataFrame, *, store: FeatureStore, index: RegionIndex,
               k: int, offline: Callable[[int, np.ndarray], np.ndarray]) -> pd.Series:
    """Training-serving skew, query by query: the served top ``k`` without filters (the store's
    query for the viewed listing alone, searched in ``index``) against the offline top ``k``
    among the listings open in the region on the index's day, scored by
    ``offline(viewed, candidates)`` (float64). Returns how many lists are ``identical`` and
    how many ``reordered within rounding`` (:func:`match_offline`, which raises on any other
    difference)."""
    if not isinstance(queries, pd.DataFrame) or not {"viewed", "region"} <= set(queries.columns):
        raise ValueError("queries must be a DataFrame with columns viewed and region")
    if queries.empty:
        raise ValueError("queries is empty: nothing to check")
    if not callable(offline):
        raise TypeError("offline must be callable: offline(viewed, candidates) -> scores")
    k = check_int("k", k, minimum=1)
    verdicts = []
    for viewed, region in zip(queries["viewed"].astype(int), queries["region"].astype(int)):
        served, served_scores = index.search(region, query_vector(store, viewed), k + 1)
        keep = served != viewed
        candidates = _world.open_listings(world, region, index.day)
        candidates = candidates[candidates != viewed]
        exact = np.asarray(offline(viewed, candidates), dtype=float)
        if exact.shape != candidates.shape:
            raise ValueError(f"offline returned {exact.shape[0] if exact.ndim else 0} scores "
                             f"for {len(candidates)} candidates")
        best = np.argsort(-exact, kind="stable")[:k]
        verdicts.append(match_offline(served[keep][:k], served_scores[keep][:k],
                                      candidates[best], exact[best]))
    counts = pd.Series(verdicts).value_counts()
    return counts.reindex(["identical", "reordered within rounding"], fill_value=0).rename(
        f"served top {k} vs offline")


def session_vectors(w_in, viewed, recent) -> np.ndarray:
    """Per query, the mean of the ``w_in`` rows of ``viewed[i]`` and of the ids in
    ``recent[i]`` (a tuple, maybe empty): the query :func:`query_vector` reads from the store,
    computed offline for many queries at once."""
    w_in = _matrix("w_in", w_in)
    viewed = _id_array("viewed", viewed)
    recent = list(recent)
    if len(recent) != len(viewed):
        raise ValueError(f"recent needs one tuple per viewed listing ({len(viewed)}), "
                         f"got {len(recent)}")
    width = 1 + max((len(r) for r in recent), default=0)
    ids = np.full((len(viewed), width), -1, dtype=np.int64)
    ids[:, 0] = viewed
    for i, r in enumerate(recent):
        ids[i, 1:1 + len(r)] = r
    if ids.max(initial=0) >= len(w_in):
        raise ValueError(f"an id is beyond w_in's {len(w_in)} rows")
    present = ids >= 0
    total = (w_in[np.maximum(ids, 0)] * present[:, :, None]).sum(axis=1)
    return total / present.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the app


def create_similar_app(similar: Callable[..., list], *, index: RegionIndex, calendar: Calendar,
                       max_k: int = 50, max_nights: int = 30, max_session: int = 20,
                       model_version: str = "1", max_body_bytes: int = 2_000) -> FastAPI:
    """A FastAPI app serving similar listings.

    ``similar(listing_id, check_in, nights, k, max_price, session)`` returns the ids and
    scores of the answer, best first. ``POST /similar`` takes ``{"listing_id", "check_in",
    "nights", "k", "max_price"?, "session"?}`` (nights numbered as the log's days) and
    answers ``{"listing_id", "similar": [{"listing_id", "score", "price"}, ...],
    "model_version"}`` (:func:`answer_items`); ``GET /health`` as every service.

    Bad requests get a 4xx naming the fault, and the server keeps serving: **422** for a
    missing, extra or wrongly typed field (``"7"``, ``7.0`` and ``true`` are not ids), ``k``
    outside ``1 .. max_k``, ``nights`` outside ``1 .. max_nights``, a ``max_price`` that is
    not a positive number, more than ``max_session`` clicks, or a stay that starts in the
    past or ends after the calendar; **404** for a listing (viewed or in the session) that
    is not in the index; **413** for a body over ``max_body_bytes``. An exception in
    ``similar`` is logged and answered with a 500. Calls run one at a time (a lock): the
    store and the calendar have one connection each.
    """
    if not callable(similar):
        raise TypeError("similar must be callable")
    if not isinstance(index, RegionIndex) or not isinstance(calendar, Calendar):
        raise TypeError("index must be a RegionIndex and calendar a Calendar")
    max_k, max_nights, max_session = (check_int(name, v, minimum=1) for name, v in (
        ("max_k", max_k), ("max_nights", max_nights), ("max_session", max_session)))
    lock = threading.Lock()

    class SimilarRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        listing_id: int = Field(ge=0)
        check_in: int = Field(ge=0)
        nights: int = Field(ge=1, le=max_nights)
        k: int = Field(ge=1, le=max_k)
        max_price: float | None = Field(default=None, gt=0, allow_inf_nan=False)
        session: list[int] = Field(default_factory=list, max_length=max_session)

    app = service_app("mlsd similar listings", model_version, max_body_bytes)

    @app.post("/similar")
    def serve(body: SimilarRequest):
        unknown = [i for i in [body.listing_id, *body.session] if i not in index]
        if unknown:
            raise HTTPException(404, f"listing {unknown[0]} is not in the index")
        try:
            calendar.check_stay(body.check_in, body.nights)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        try:
            with lock:
                ids, scores = similar(body.listing_id, body.check_in, body.nights, body.k,
                                      body.max_price, body.session)
                items = answer_items(ids, scores, index)
        except Exception:
            logger.exception("similar failed for listing %d", body.listing_id)
            raise HTTPException(500, "internal error while searching") from None
        return {"listing_id": body.listing_id, "similar": items, "model_version": model_version}

    return app


def malformed_requests(body: dict, *, calendar: Calendar, unknown_listing: int) -> dict:
    """Bad variants of a good request ``body``, by name: an unknown listing, zero nights, too
    many results, a listing id sent as text, a stay that starts in the past or ends after the
    calendar, and a negative price cap."""
    if not isinstance(body, dict) or not {"listing_id", "check_in", "nights", "k"} <= set(body):
        raise ValueError(f"body must be a request with listing_id, check_in, nights and k: "
                         f"{body!r}")
    if not isinstance(calendar, Calendar):
        raise TypeError(f"calendar must be a Calendar, got {type(calendar).__name__}")
    unknown_listing = check_int("unknown_listing", unknown_listing, minimum=0)
    body = {name: value for name, value in body.items() if name != "max_price"}
    return {"unknown listing": {**body, "listing_id": unknown_listing},
            "nights = 0": {**body, "nights": 0}, "k = 51": {**body, "k": 51},
            "listing id as text": {**body, "listing_id": str(body["listing_id"])},
            "check-in in the past": {**body, "check_in": calendar.first_night - 1},
            "beyond the calendar": {**body, "check_in": calendar.last_night, "nights": 3},
            "negative price": {**body, "max_price": -50.0}}



def answer_table(answers: dict) -> pd.DataFrame:
    """One row per named HTTP answer (``httpx.Response``): its status and, for a 4xx or 5xx,
    the fault it names (:func:`fault`)."""
    if not isinstance(answers, dict) or not answers:
        raise ValueError("answers must be a non-empty dict of name -> response")
    bad = [name for name, a in answers.items() if not hasattr(a, "status_code")]
    if bad:
        raise TypeError(f"answers {bad} are not HTTP responses")
    return pd.DataFrame({"status": {n: a.status_code for n, a in answers.items()},
                         "detail": {n: fault(a.json()) if a.status_code >= 400 else ""
                                    for n, a in answers.items()}})


# --------------------------------------------------------------------------- scale


def scan_timing(n_rows: int, region_rows: int, dim: int, *, seed: int, repeats: int = 20
                ) -> dict:
    """Milliseconds per query (mean of ``repeats``, one thread) of an exact flat search for
    the top 40 of ``region_rows`` random vectors: in an index of ``n_rows`` with an
    ``IDSelectorBatch`` of the region's ids, and in the region's own index."""
    n_rows = check_int("n_rows", n_rows, minimum=2)
    region_rows = check_int("region_rows", region_rows, minimum=1)
    dim, repeats = check_int("dim", dim, minimum=1), check_int("repeats", repeats, minimum=1)
    if region_rows > n_rows:
        raise ValueError(f"region_rows ({region_rows}) exceeds n_rows ({n_rows})")
    rng = make_rng(seed, "scan timing")
    x = rng.standard_normal((n_rows, dim), dtype=np.float32)
    members = np.sort(rng.choice(n_rows, region_rows, replace=False)).astype(np.int64)
    q = rng.standard_normal((1, dim), dtype=np.float32)
    everything, own = faiss.IndexFlatIP(dim), faiss.IndexFlatIP(dim)
    everything.add(x)
    own.add(x[members])
    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(members))
    runs = {"one index, region selector": lambda: everything.search(q, 40, params=params),
            "the region's own index": lambda: own.search(q, 40)}
    out = {}
    with faiss_threads(1):
        for name, run in runs.items():
            run()
            start = time.perf_counter()
            for _ in range(repeats):
                run()
            out[name] = (time.perf_counter() - start) / repeats * 1e3
    return out


def scale_numbers(n_listings: int, dim: int, largest_region: int, qps: float,
                  ns_per_vector: float) -> dict:
    """Arithmetic at full scale, float32 vectors, exact (flat) search on one core.

    Returns the memory of the candidate side (``dim + 1`` floats a listing) and of the query
    side (``dim``); the milliseconds of a scan of the largest region's own index and of one
    flat index over every listing, at ``ns_per_vector``; and the cores that ``qps`` such
    scans keep busy. Every request scanning the largest region is an upper bound on the
    per-region cost.
    """
    n_listings = check_int("n_listings", n_listings, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    largest = check_int("largest_region", largest_region, minimum=1)
    if largest > n_listings:
        raise ValueError(f"largest_region ({largest}) exceeds n_listings ({n_listings})")
    qps, ns = check_finite("qps", qps), check_finite("ns_per_vector", ns_per_vector)
    if qps <= 0 or ns <= 0:
        raise ValueError(f"qps and ns_per_vector must be > 0, got {qps} and {ns}")
    return {"candidate side (GB)": n_listings * (dim + 1) * 4 / 1e9,
            "query side (GB)": n_listings * dim * 4 / 1e9,
            "ms per request (largest region)": largest * ns / 1e6,
            "ms per request (one flat index)": n_listings * ns / 1e6,
            "cores scanning (largest region)": qps * largest * ns / 1e9,
            "cores scanning (one flat index)": qps * n_listings * ns / 1e9}


def full_scale(n_listings: int, n_regions: int, largest_region: int, dim: int, qps: float, *,
               seed: int, repeats: int = 10) -> dict:
    """The site at full scale, for the prose: its sizes, a timed flat scan and the arithmetic.

    Times :func:`scan_timing` over a tenth of ``n_listings`` random vectors of ``dim + 1``
    numbers (the candidate side), with ``largest_region`` of them as the region, and scales
    the region's own scan with :func:`scale_numbers`. Keys: ``full``, ``full_regions``,
    ``mean_region``, ``largest``, ``largest_share``, ``scan_rows``, ``scan_own`` and
    ``scan_selector`` (ms a query), ``gb_out``, ``gb_in``, ``ms_largest``, ``ms_flat``,
    ``cores_largest``, ``cores_flat``.
    """
    n_listings = check_int("n_listings", n_listings, minimum=10)
    n_regions = check_int("n_regions", n_regions, minimum=1)
    if n_regions > n_listings:
        raise ValueError(f"n_regions ({n_regions}) exceeds n_listings ({n_listings})")
    scan_rows = n_listings // 10
    largest = check_int("largest_region", largest_region, minimum=1)
    if largest > scan_rows:
        raise ValueError(f"largest_region ({largest}) exceeds a tenth of n_listings "
                         f"({scan_rows}), the rows timed")
    dim = check_int("dim", dim, minimum=1)
    scan = scan_timing(scan_rows, largest, dim + 1, seed=seed, repeats=repeats)
    own = scan["the region's own index"]
    scale = scale_numbers(n_listings, dim, largest, qps, own * 1e6 / largest)
    names = ["gb_out", "gb_in", "ms_largest", "ms_flat", "cores_largest", "cores_flat"]
    return {"full": n_listings, "full_regions": n_regions,
            "mean_region": n_listings // n_regions, "largest": largest,
            "largest_share": largest / n_listings, "scan_rows": scan_rows, "scan_own": own,
            "scan_selector": scan["one index, region selector"],
            **dict(zip(names, scale.values()))}
