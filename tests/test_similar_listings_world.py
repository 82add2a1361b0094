"""The similar listings world (Chapter 12): schema, the click log and its true model, what the
listings' fields show, the oracle, the evaluation protocol, and the world continued past the log."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from threadpoolctl import threadpool_limits

from mlsd import datasets
from mlsd.book.seeding import make_rng
from mlsd.datasets import similar_listings as sl

K = sl.KNOBS
STYLES = [f"style_{i}" for i in range(1, sl.STYLE_DIM + 1)]
TASTES = [f"taste_{i}" for i in range(1, sl.STYLE_DIM + 1)]
HIDDEN_COLUMNS = set(STYLES) | set(TASTES) | {"quality", "share"}
DATASHEET = Path(datasets.data_dir()) / sl.NAME / "DATASHEET.md"
SHIFT = np.array([1.5, 0.0, 0.0, 0.0, -1.5, 0.0])  # a season: more of style 1, less of style 5


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """The products here are small: on a busy machine a second BLAS thread only waits (the
    oracle's 400 queries took 1 s on one thread, 5 to 7 s on two, with other jobs running)."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def world():
    return sl.generate(sl.DEFAULT_SEED)


@pytest.fixture(scope="module")
def stored():
    return datasets.load(sl.NAME)  # the stored files at seed 0


@pytest.fixture(scope="module")
def truth(world):
    return sl.truth_of(world)


@pytest.fixture(scope="module")
def tastes(world):
    return world.hidden["session_truth"][TASTES].to_numpy()


def room_code(listings: pd.DataFrame) -> np.ndarray:
    """The room type as its place in ROOM_TYPES (0 shared room .. 3 house)."""
    return listings["room_type"].map({r: i for i, r in enumerate(sl.ROOM_TYPES)}).to_numpy()


def check_log(listings: pd.DataFrame, sessions: pd.DataFrame, clicks: pd.DataFrame) -> None:
    """The invariants every session log of this world keeps (the stored one and a live one)."""
    assert list(sessions.columns) == ["session_id", "day", "region", "booked"]
    assert list(clicks.columns) == ["session_id", "position", "listing_id", "booked"]
    ids = sessions["session_id"].to_numpy()
    assert np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids)))  # consecutive ids
    assert sessions["day"].is_monotonic_increasing  # in time order
    assert (sessions.groupby("day").size() == K["sessions_per_day"]).all()
    assert sessions["region"].between(0, K["n_regions"] - 1).all()
    # clicks are grouped by session, in session order, positions 0..m-1
    assert clicks["session_id"].is_monotonic_increasing
    assert set(clicks["session_id"]) == set(sessions["session_id"])
    size = clicks.groupby("session_id").size()
    start = clicks.groupby("session_id").cumcount()
    assert np.array_equal(clicks["position"], start)
    # every clicked or booked listing is in the session's region and online that day
    s = sessions.set_index("session_id")
    day = s["day"].to_numpy()[np.searchsorted(s.index, clicks["session_id"])]
    region = s["region"].to_numpy()[np.searchsorted(s.index, clicks["session_id"])]
    listing = clicks["listing_id"].to_numpy()
    assert (listings["region"].to_numpy()[listing] == region).all()
    assert (listings["created_day"].to_numpy()[listing] <= day).all()
    # exactly one booked row per session: the last, the session's booked listing
    assert set(clicks["booked"]) == {0, 1}
    assert (clicks.groupby("session_id")["booked"].sum() == 1).all()
    last = clicks["position"].to_numpy() == size.loc[clicks["session_id"]].to_numpy() - 1
    assert np.array_equal(clicks["booked"].to_numpy() == 1, last)
    assert np.array_equal(clicks.loc[last, "listing_id"], sessions["booked"])
    # the clicks are distinct; the booking row may repeat one of them, once
    only_clicks = clicks[~last]
    assert not only_clicks.duplicated(["session_id", "listing_id"]).any()
    assert clicks.groupby(["session_id", "listing_id"]).size().max() <= 2
    # clicks before the booking: 1 + Poisson(clicks_mean - 1), at most clicks_max
    n_clicks = size - 1
    assert n_clicks.min() >= 1 and n_clicks.max() <= K["clicks_max"]


# -------------------------------------------------------------- reproducibility and schema


def test_generation_is_deterministic_and_the_stored_files_round_trip(world, stored):
    assert datasets.GENERATORS[sl.NAME] == (sl.generate, sl.DEFAULT_SEED)
    one, again = sl.generate(1), sl.generate(1)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(world, kind)) == sorted(getattr(stored, kind))
        for name, frame in getattr(world, kind).items():
            assert_frame_equal(getattr(stored, kind)[name], frame, obj=name)  # dtypes included
            assert_frame_equal(getattr(again, kind)[name], getattr(one, kind)[name], obj=name)
    assert stored.summary.strip() == world.datasheet().strip()  # the datasheet is up to date
    assert not one.observed["listings"].equals(world.observed["listings"])
    assert not one.observed["clicks"].equals(world.observed["clicks"])
    assert stored.seed == world.seed == sl.DEFAULT_SEED
    with pytest.raises(ValueError, match="seed must be >= 0"):
        sl.generate(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        sl.generate(1.0)


def test_every_column_is_described_and_no_hidden_column_is_observed(world):
    assert sorted(world.observed) == ["clicks", "listings", "sessions"]
    assert sorted(world.hidden) == ["listing_truth", "regions", "session_truth"]
    tables = {**world.observed, **world.hidden}
    present = {f"{table}.{column}" for table, frame in tables.items() for column in frame.columns}
    assert present == set(world.columns)  # every column described, no stale description
    assert set(sl.COLUMNS) <= present
    assert all(world.columns[key].strip() for key in present)
    for table, frame in world.observed.items():
        assert not HIDDEN_COLUMNS & set(frame.columns), table
    assert world.knobs == K


def test_the_datasheet_file_names_and_describes_every_column(world):
    sheet = DATASHEET.read_text(encoding="utf-8")
    sections = dict(re.findall(r"### `(?:hidden/)?(\w+)\.csv\.gz`[^\n]*\n(.*?)(?=\n### |\n## |\Z)",
                               sheet, flags=re.S))
    assert sorted(sections) == sorted({**world.observed, **world.hidden})
    for key, description in world.columns.items():
        table, column = key.split(".")
        assert re.search(rf"\| `{column}` \|[^\n]*\| {re.escape(description)} \|",
                         sections[table]), key
    for knob, value in K.items():
        assert f"| `{knob}` | {value} |" in sheet, knob


def test_ids_sizes_and_ranges_are_the_stated_ones(world):
    obs, hid = world.observed, world.hidden
    listings, sessions = obs["listings"], obs["sessions"]
    n, m = K["n_listings"], K["days"] * K["sessions_per_day"]
    for frame, column, size in [(listings, "listing_id", n),
                                (hid["listing_truth"], "listing_id", n),
                                (sessions, "session_id", m),
                                (hid["session_truth"], "session_id", m),
                                (hid["regions"], "region", K["n_regions"])]:
        assert np.array_equal(frame[column], np.arange(size)), column
    assert list(listings.columns) == ["listing_id", "region", "room_type", "bedrooms", "price",
                                      "rating", "created_day"]
    assert set(listings["region"]) == set(range(K["n_regions"]))
    assert set(listings["room_type"]) == set(sl.ROOM_TYPES)
    assert listings["bedrooms"].between(1, 5).all() and (listings["price"] > 0).all()
    assert listings["rating"].dropna().between(1, 5).all()
    # ids in creation order; new_listings of them arrive during the log, the rest on day 0
    created = listings["created_day"]
    assert created.is_monotonic_increasing and created.between(0, K["days"] - 1).all()
    assert (created > 0).sum() == K["new_listings"]
    # the stored styles and tastes are rounded as drawn, so the CSV round trip is exact
    style = hid["listing_truth"][STYLES].to_numpy()
    assert np.array_equal(style, np.round(style, 4))
    taste = hid["session_truth"][TASTES].to_numpy()
    assert np.array_equal(taste, np.round(taste, 3))


def test_the_rating_is_missing_exactly_for_listings_too_new_for_reviews(world):
    listings = world.observed["listings"]
    too_new = listings["created_day"] > K["days"] - 1 - K["reviews_after_days"]
    assert np.array_equal(listings["rating"].isna(), too_new)
    assert too_new.sum() > 0 and (~too_new & (listings["created_day"] > 0)).sum() > 0


def test_regions_draw_listings_and_guests_by_their_share(world):
    share = world.hidden["regions"]["share"].to_numpy()
    assert (np.diff(share) <= 0).all() and share.min() >= 0.01
    assert share.sum() == pytest.approx(1.0, abs=1e-12)
    for frame in (world.observed["listings"], world.observed["sessions"]):
        counts = np.bincount(frame["region"], minlength=K["n_regions"])
        expected = len(frame) * share
        assert (abs(counts - expected) < 4.5 * np.sqrt(expected * (1 - share))).all()
    sizes = world.observed["listings"].groupby("region").size()
    assert sizes.min() >= 30 and sizes.max() <= 600  # very different sizes, none tiny
    assert sizes.max() > 4 * sizes.min()


def test_the_click_log_keeps_its_invariants(world):
    check_log(world.observed["listings"], world.observed["sessions"], world.observed["clicks"])
    clicks = world.observed["clicks"]
    n_clicks = clicks.groupby("session_id").size() - 1
    sd = np.sqrt(K["clicks_mean"] - 1) / np.sqrt(len(n_clicks))
    assert abs(n_clicks.mean() - K["clicks_mean"]) < 4 * sd, n_clicks.mean()
    # a guest often books a listing they clicked: the booking row then repeats it
    repeats = clicks.groupby(["session_id", "listing_id"]).size()
    assert 0.1 < (repeats == 2).sum() / len(n_clicks) < 0.9


def test_hidden_draws_have_the_stated_spread(world):
    style = world.hidden["listing_truth"][STYLES].to_numpy()
    quality = world.hidden["listing_truth"]["quality"].to_numpy()
    taste = world.hidden["session_truth"][TASTES].to_numpy()
    for draws, sd in ((style, 1.0), (taste, 1.0), (quality[:, None], K["quality_sd"])):
        n = len(draws)
        assert (abs(draws.mean(axis=0)) < 4 * sd / np.sqrt(n)).all()
        assert (abs(draws.std(axis=0) / sd - 1) < 4 / np.sqrt(2 * n)).all()


# --------------------------------------------------------------------------- what the fields show


def test_room_type_bedrooms_and_price_show_styles_1_to_3(world):
    listings, hidden = world.observed["listings"], world.hidden["listing_truth"]
    style, quality = hidden[STYLES].to_numpy(), hidden["quality"].to_numpy()
    room, bedrooms = room_code(listings), listings["bedrooms"].to_numpy()
    log_price = np.log(listings["price"].to_numpy())
    assert np.corrcoef(room, style[:, 0])[0, 1] > 0.7
    assert np.corrcoef(bedrooms, style[:, 1])[0, 1] > 0.7
    assert np.corrcoef(log_price, style[:, 2])[0, 1] > 0.45
    assert np.corrcoef(log_price, quality)[0, 1] > 0.15
    rated = listings["rating"].notna().to_numpy()
    assert np.corrcoef(listings["rating"].to_numpy()[rated], quality[rated])[0, 1] > 0.6
    # the room types are in the order of style 1, the bedrooms in the order of style 2
    by_room = pd.Series(style[:, 0]).groupby(room).mean()
    assert list(by_room.index) == [0, 1, 2, 3] and by_room.is_monotonic_increasing
    assert pd.Series(style[:, 1]).groupby(bedrooms).mean().is_monotonic_increasing
    # log price = region level + price_style * style 3 + price_quality * quality + noise
    x = np.c_[style[:, 2], quality, np.eye(K["n_regions"])[listings["region"]]]
    beta, *_ = np.linalg.lstsq(x, log_price, rcond=None)
    noise = K["price_noise_sd"]
    n = len(listings)
    assert abs(beta[0] - K["price_style"]) < 5 * noise / np.sqrt(n)
    assert abs(beta[1] - K["price_quality"]) < 5 * noise / (K["quality_sd"] * np.sqrt(n))
    residual = log_price - x @ beta  # the price is rounded to a dollar: a little extra noise
    assert abs(residual.std() - noise) < 0.01


def test_styles_4_to_6_show_in_no_observable_field(world):
    listings, hidden = world.observed["listings"], world.hidden["listing_truth"]
    style = hidden[STYLES].to_numpy()
    rated = listings["rating"].fillna(listings["rating"].mean()).to_numpy()
    room = room_code(listings)
    fields = np.c_[np.eye(4)[room], listings["bedrooms"], np.log(listings["price"]), rated,
                   listings["rating"].isna(), listings["created_day"],
                   np.eye(K["n_regions"])[listings["region"]]].astype(float)
    fields = fields[:, fields.std(axis=0) > 0]
    for k in (3, 4, 5):
        r = [np.corrcoef(f, style[:, k])[0, 1] for f in fields.T]
        assert max(map(abs, r)) < 0.1, (k, r)
    # all the fields together explain almost none of styles 4-6 and much of styles 1-3
    x = np.c_[np.ones(len(fields)), fields]
    beta, *_ = np.linalg.lstsq(x, style, rcond=None)
    r2 = 1 - (style - x @ beta).var(axis=0) / style.var(axis=0)
    assert (r2[3:] < 0.02).all() and r2[0] > 0.6 and r2[1] > 0.6 and r2[2] > 0.3, r2


# --------------------------------------------------------------------------- the true model


def test_utilities_are_the_stated_formula_on_a_hand_worked_case(world, truth):
    taste = np.zeros((2, sl.STYLE_DIM))
    taste[0, 0], taste[1, 3] = 1.0, -2.0
    ids = np.array([0, 7])
    u = sl.utilities(truth, taste, ids)
    scale = K["style_weight"] / np.sqrt(sl.STYLE_DIM)
    hand = np.array([[scale * truth.style[i, 0] + truth.quality[i] for i in ids],
                     [-2 * scale * truth.style[i, 3] + truth.quality[i] for i in ids]])
    assert u.shape == (2, 2) and np.allclose(u, hand, rtol=0, atol=1e-12)
    assert truth.style_weight == K["style_weight"] and truth.book_sharpness == K["book_sharpness"]
    listings = world.observed["listings"]
    expected = listings.query("region == 3 and created_day <= 50")["listing_id"].to_numpy()
    assert np.array_equal(sl.open_listings(world, 3, 50), expected)


def softmax_scores(truth, sessions, tastes, target, sharpness, exclude=None):
    """The score test of a softmax choice: for the chosen listings ``target`` (one per row of
    ``sessions``) and the model p ~ exp(sharpness * u) over the listings open in the session's
    region that day (less ``exclude``), the z-scores of the derivatives of the log-likelihood
    with respect to the style term's weight, the quality term's weight and the sharpness. Each
    is about N(0, 1) if the choices were drawn from that model."""
    region, day = sessions["region"].to_numpy(), sessions["day"].to_numpy()
    score, info = np.zeros(3), np.zeros(3)
    for r in range(K["n_regions"]):
        rows = np.flatnonzero(region == r)
        ids = np.flatnonzero(truth.region == r)
        x = tastes[rows] @ truth.style[ids].T / np.sqrt(sl.STYLE_DIM)
        q = np.broadcast_to(truth.quality[ids], x.shape)
        u = K["style_weight"] * x + q
        shut = truth.created[ids][None, :] > day[rows][:, None]
        if exclude is not None:
            shut = shut | (ids[None, :] == exclude[rows][:, None])
        logit = np.where(shut, -np.inf, sharpness * u)
        p = np.exp(logit - logit.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        chosen = np.searchsorted(ids, target[rows])
        assert (ids[chosen] == target[rows]).all() and not shut[np.arange(len(rows)), chosen].any()
        for k, f in enumerate((x, q, u)):
            f = np.where(shut, 0.0, f)
            mean = (p * f).sum(axis=1)
            score[k] += (f[np.arange(len(rows)), chosen] - mean).sum()
            info[k] += (p * (f - mean[:, None]) ** 2).sum()
    return score / np.sqrt(info)


def test_clicks_and_bookings_are_drawn_from_the_stated_softmaxes(world, truth, tastes):
    """The log was drawn with Gumbel noise (a sort for the clicks, an argmax for the booking):
    the first click must follow softmax(u), the second softmax(u) without the first, the
    booking softmax(book_sharpness * u), with u = style_weight * taste . style / sqrt(6) +
    quality. A score test on the 30,000 sessions would see a wrong weight of the style term,
    of the quality or of the sharpness; the last check shows it has the power to."""
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    first = clicks.loc[clicks["position"] == 0, "listing_id"].to_numpy()
    booked = sessions["booked"].to_numpy()
    z_first = softmax_scores(truth, sessions, tastes, first, 1.0)
    z_book = softmax_scores(truth, sessions, tastes, booked, K["book_sharpness"])
    assert (abs(z_first) < 4).all(), z_first
    assert (abs(z_book) < 4).all(), z_book
    # the second click, where there is one (else position 1 is the booking row)
    second = clicks[(clicks["position"] == 1) & (clicks["booked"] == 0)]
    has = second["session_id"].to_numpy()
    assert len(has) > 0.9 * len(sessions)
    z_second = softmax_scores(truth, sessions.iloc[has], tastes[has],
                              second["listing_id"].to_numpy(), 1.0, exclude=first[has])
    assert (abs(z_second) < 4).all(), z_second
    # power: the bookings are sharper than the clicks, and the test sees it
    z_wrong = softmax_scores(truth, sessions, tastes, booked, 1.0)
    assert z_wrong[2] > 10, z_wrong


def test_the_generators_draws_are_the_stated_softmaxes_on_a_hand_made_region(monkeypatch):
    """Five listings with no style: every taste then gives u = quality, so the first click is
    drawn from softmax(quality), the second from the same without the first, the booking from
    softmax(book_sharpness * quality); the fifth listing opens on day 10."""
    monkeypatch.setitem(sl.KNOBS, "sessions_per_day", 500)
    quality = np.array([0.0, 0.5, 1.0, -1.0, 1.5])
    listings = pd.DataFrame({"listing_id": np.arange(5), "region": 0,
                             "created_day": [0, 0, 0, 0, 10]})
    hidden = pd.DataFrame({"listing_id": np.arange(5), **{c: 0.0 for c in STYLES},
                           "quality": quality})
    sessions, clicks, _ = sl._simulate(3, listings, hidden, np.array([1.0]), range(20), 0, "hand")
    check_log(listings, sessions, clicks)
    late = (sessions["day"] >= 10).to_numpy()
    first = clicks.loc[clicks["position"] == 0, "listing_id"].to_numpy()
    second = clicks[(clicks["position"] == 1) & (clicks["booked"] == 0)]

    def close(choices, logits):
        p = np.exp(logits - logits.max())
        p /= p.sum()
        n = len(choices)
        counts = np.bincount(choices, minlength=len(p))
        assert (abs(counts - n * p) < 4.5 * np.sqrt(n * p * (1 - p)) + 1).all(), (counts, n * p)

    close(first[~late], quality[:4])
    early_rows = clicks["session_id"].isin(sessions["session_id"][~late])
    assert (clicks.loc[early_rows, "listing_id"] < 4).all()  # not yet online, never shown
    close(first[late], quality)
    close(sessions["booked"].to_numpy()[late], K["book_sharpness"] * quality)
    after_2 = second[(first[second["session_id"]] == 2) & late[second["session_id"]]]
    close(after_2["listing_id"].to_numpy(), np.where(np.arange(5) == 2, -np.inf, quality))
    n_clicks = clicks.groupby("session_id").size().to_numpy() - 1
    assert n_clicks[~late].max() == 4 and n_clicks[late].max() == 5  # no more than are open


# --------------------------------------------------------------------------- the oracle


def brute_posterior(world, truth, viewed, day, n, rng, shift=None, chunk=20_000):
    """p(booked | first click = viewed) by plain Monte Carlo over ``n`` tastes from the prior,
    written from the datasheet's story, with the standard error of each probability."""
    listings = world.observed["listings"]
    here = (listings["region"] == listings["region"][viewed]) & (listings["created_day"] <= day)
    candidates = listings["listing_id"].to_numpy()[here.to_numpy()]
    style, quality = truth.style[candidates], truth.quality[candidates]
    at = int(np.flatnonzero(candidates == viewed)[0])
    weights, books = [], []
    for _ in range(n // chunk):
        taste = rng.standard_normal((chunk, sl.STYLE_DIM)) + (0 if shift is None else shift)
        u = K["style_weight"] * taste @ style.T / np.sqrt(sl.STYLE_DIM) + quality
        click = np.exp(u - u.max(axis=1, keepdims=True))
        weights.append(click[:, at] / click.sum(axis=1))  # p(first click = viewed | taste)
        book = np.exp(K["book_sharpness"] * (u - u.max(axis=1, keepdims=True)))
        books.append(book / book.sum(axis=1, keepdims=True))
    w, b = np.concatenate(weights), np.concatenate(books)
    p = w @ b / w.sum()
    se = np.sqrt(((w[:, None] * (b - p)) ** 2).sum(axis=0)) / w.sum()
    return candidates, p, se


@pytest.fixture(scope="module")
def one_query(world):
    """The first test query in a region of 80 to 200 open listings: (viewed, day)."""
    q = sl.ranking_task(world).queries
    open_count = np.array([len(sl.open_listings(world, r, d))
                           for r, d in zip(q["region"], q["day"])])
    row = q.iloc[int(np.flatnonzero((open_count >= 80) & (open_count <= 200))[0])]
    return int(row["viewed"]), int(row["day"])


@pytest.mark.parametrize("shift", [None, SHIFT], ids=["prior", "shifted"])
def test_the_posterior_matches_a_brute_force_monte_carlo(world, truth, one_query, shift):
    viewed, day = one_query
    n_brute, n_tastes = 100_000, 20_000
    candidates, p_brute, se = brute_posterior(world, truth, viewed, day, n_brute,
                                              make_rng(0, "test", "brute tastes"), shift)
    (got, p), = sl.booking_posterior(world, viewed, day, n_tastes=n_tastes, taste_shift=shift)
    assert np.array_equal(got, candidates)
    assert np.array_equal(got, sl.open_listings(world, int(truth.region[viewed]), day))
    assert (p >= 0).all() and p.sum() == pytest.approx(1.0, abs=1e-12)
    # two independent Monte Carlo estimates of one integral; the oracle's error is about
    # sqrt(n_brute / n_tastes) times the brute force's
    z = (p - p_brute) / (se * np.sqrt(1 + n_brute / n_tastes))
    assert abs(z).max() < 4.5 and (z ** 2).mean() < 2, (abs(z).max(), (z ** 2).mean())
    assert 0.5 * abs(p - p_brute).sum() < 0.03  # total variation distance
    # the viewed listing tells a lot: another viewed listing gives another posterior
    (_, p_other), = sl.booking_posterior(world, int(got[np.argmin(truth.style[got, 0])]), day,
                                         n_tastes=n_tastes, taste_shift=shift)
    assert 0.5 * abs(p - p_other).sum() > 0.2


def test_the_posterior_is_reproducible_and_one_query_at_a_time_is_the_same(world):
    q = sl.ranking_task(world).queries.iloc[:40].sample(frac=1, random_state=0)
    viewed, day = q["viewed"].to_numpy(), q["day"].to_numpy()
    together = sl.booking_posterior(world, viewed, day, n_tastes=500)
    assert len(together) == len(q)
    for i in (0, 17, 39):
        (c, p), = sl.booking_posterior(world, viewed[i], int(day[i]), n_tastes=500)
        assert np.array_equal(c, together[i][0]) and np.allclose(p, together[i][1], atol=1e-12)
        assert viewed[i] in c
    again = sl.booking_posterior(world, viewed, day, n_tastes=500)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(together, again))
    other = sl.booking_posterior(world, viewed[:1], day[:1], n_tastes=500, seed=1)
    assert not np.array_equal(other[0][1], together[0][1])
    alone = sl.booking_posterior(world, viewed[:1], day[:1], n_tastes=500)
    zero = sl.booking_posterior(world, viewed[:1], day[:1], n_tastes=500, taste_shift=np.zeros(6))
    assert np.array_equal(zero[0][1], alone[0][1])
    assert sl.booking_posterior(world, [], 105) == []


def test_a_taste_shift_moves_the_posterior_toward_the_shifted_styles(world, truth):
    q = sl.ranking_task(world).queries.iloc[:60]
    viewed, day = q["viewed"].to_numpy(), q["day"].to_numpy()
    base = sl.booking_posterior(world, viewed, day, n_tastes=1_000)
    moved = sl.booking_posterior(world, viewed, day, n_tastes=1_000, taste_shift=SHIFT)
    gap = np.array([p1 @ truth.style[c] - p0 @ truth.style[c]
                    for (c, p0), (_, p1) in zip(base, moved)])  # (queries, styles)
    assert (gap[:, 0] > 0).all() and (gap[:, 4] < 0).all()
    others = abs(gap[:, [1, 2, 3, 5]].mean(axis=0)).max()
    assert others < 0.3 * min(gap[:, 0].mean(), -gap[:, 4].mean()), gap.mean(axis=0)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(viewed=[-1]), ValueError, "unknown listing id"),
    (dict(viewed=[K["n_listings"]]), ValueError, "unknown listing id"),
    (dict(viewed="late"), ValueError, "not online on its day"),
    (dict(viewed=[0], day=-1), ValueError, "not online on its day"),
    (dict(n_tastes=99), ValueError, "n_tastes must be >= 100"),
    (dict(n_tastes=1_000.0), TypeError, "n_tastes must be an integer"),
    (dict(taste_shift=[1.0, 2.0]), ValueError, "taste_shift needs 6 finite numbers"),
    (dict(taste_shift=[np.nan] * 6), ValueError, "taste_shift needs 6 finite numbers"),
])
def test_booking_posterior_refuses_bad_input(world, kwargs, error, message):
    listings = world.observed["listings"]
    late = int(listings.loc[listings["created_day"] > 105, "listing_id"].iloc[0])
    args = dict(viewed=[0], day=105) | kwargs
    if args["viewed"] == "late":
        args["viewed"] = [late]
    with pytest.raises(error, match=message):
        sl.booking_posterior(world, args.pop("viewed"), args.pop("day"), **args)


@pytest.mark.parametrize("viewed, day", [([1.7], 105), ([1], 105.7)], ids=["id", "day"])
def test_booking_posterior_refuses_fractional_ids_and_days(world, viewed, day):
    """A listing id or a day with a fraction is a mistake upstream, not listing 1 or day 105."""
    with pytest.raises((TypeError, ValueError)):
        sl.booking_posterior(world, viewed, day)


def expected_ranks(score: np.ndarray) -> np.ndarray:
    """Each candidate's rank (1 = first) when ranked by ``score``, ties broken at random: the
    expected rank."""
    higher = (score[None, :] > score[:, None]).sum(axis=1)
    equal = (score[None, :] == score[:, None]).sum(axis=1) - 1
    return 1 + higher + 0.5 * equal


def test_the_oracle_is_a_ceiling_for_observable_rankings(world, truth, tastes):
    """What is checked: on the ~400 test queries of days 105-106, the expected rank of the
    booked listing, under each session's exact booking probabilities (its own taste, the
    viewed listing left out), of the oracle's ranking against four observable rankings:
    bookings and clicks per listing before day 105, the cosine of the listings' attributes,
    and random. Averaged over sessions that is the expectation under the posterior, where the
    oracle is optimal; per session it may lose, but rarely. The clairvoyant ranking (the true
    utility for the session's own taste) is optimal for every session."""
    obs = world.observed
    listings, sessions, clicks = obs["listings"], obs["sessions"], obs["clicks"]
    q = sl.ranking_task(world, 105, 107).queries
    assert 350 < len(q) < 500
    before = sessions["session_id"][sessions["day"] < 105]
    n = len(listings)
    bookings = np.bincount(sessions.loc[before, "booked"], minlength=n)
    old = clicks[clicks["session_id"].isin(before) & (clicks["booked"] == 0)]
    click_counts = np.bincount(old["listing_id"], minlength=n)
    attributes = np.c_[room_code(listings), listings["bedrooms"], np.log(listings["price"]),
                       listings["rating"].fillna(listings["rating"].mean())].astype(float)
    attributes = (attributes - attributes.mean(axis=0)) / attributes.std(axis=0)
    attributes /= np.linalg.norm(attributes, axis=1, keepdims=True)
    rng = make_rng(0, "test", "random scores")
    posterior = sl.booking_posterior(world, q["viewed"].to_numpy(), q["day"].to_numpy())
    names = ["oracle", "bookings", "clicks", "cosine", "random", "clairvoyant"]
    expected, realised = (np.zeros((len(q), len(names))) for _ in range(2))
    for i, (candidates, p) in enumerate(posterior):
        viewed, booked = q["viewed"][i], q["booked"][i]
        keep = candidates != viewed
        c = candidates[keep]
        u = sl.utilities(truth, tastes[q["session_id"][i]][None], c)[0]
        exact = np.exp(K["book_sharpness"] * (u - u.max()))
        exact /= exact.sum()  # the session books ~ this, given it did not book the viewed one
        scores = [p[keep], bookings[c], click_counts[c], attributes[c] @ attributes[viewed],
                  rng.random(len(c)), u]
        for k, score in enumerate(scores):
            r = expected_ranks(score)
            expected[i, k], realised[i, k] = exact @ r, r[c == booked][0]
    oracle = expected[:, 0]
    for k, name in enumerate(names[1:5], start=1):
        gap = expected[:, k] - oracle
        assert gap.mean() > 4 * gap.std() / np.sqrt(len(gap)), (name, gap.mean())
        assert (gap > 0).mean() > 0.75, (name, (gap > 0).mean())
    assert (expected[:, 5] <= oracle + 1e-9).all()  # the clairvoyant, per session
    assert realised[:, 5].mean() < realised[:, 0].mean()  # and on the realised bookings
    assert realised[:, 0].mean() < realised[:, 4].mean()


# --------------------------------------------------------------- the evaluation protocol


def test_the_ranking_task_holds_each_sessions_first_click_and_booking(world):
    sessions, clicks = world.observed["sessions"], world.observed["clicks"]
    first = clicks[clicks["position"] == 0].set_index("session_id")["listing_id"]
    for first_day, end_day in ((sl.TEST_DAY, sl.DAYS), (sl.VALIDATION_DAY, sl.TEST_DAY), (0, 1)):
        task = sl.ranking_task(world, first_day, end_day)
        q = task.queries
        assert (task.first_day, task.end_day) == (first_day, end_day)
        assert list(q.columns) == ["session_id", "day", "region", "viewed", "booked"]
        window = sessions[sessions["day"].between(first_day, end_day - 1)]
        kept = window[first.loc[window["session_id"]].to_numpy() != window["booked"].to_numpy()]
        assert np.array_equal(q["session_id"], kept["session_id"])  # one row each, in order
        s = sessions.set_index("session_id").loc[q["session_id"]]
        assert np.array_equal(q["day"], s["day"]) and np.array_equal(q["region"], s["region"])
        assert np.array_equal(q["booked"], s["booked"])
        assert np.array_equal(q["viewed"], first.loc[q["session_id"]])
        assert (q["viewed"] != q["booked"]).all()
        assert 0.5 < len(q) / len(window) < 1  # some sessions book their first click
    default = sl.ranking_task(world)
    assert (default.first_day, default.end_day) == (sl.TEST_DAY, sl.DAYS)
    halves = pd.concat([sl.ranking_task(world, 90, 100).queries,
                        sl.ranking_task(world, 100, 120).queries], ignore_index=True)
    assert_frame_equal(halves, sl.ranking_task(world, 90, 120).queries)


@pytest.mark.parametrize("first_day, end_day, error, message", [
    (-1, 10, ValueError, "first_day must be >= 0"),
    (10, 10, ValueError, "end_day must be >= 11"),
    (10, 5, ValueError, "end_day must be >= 11"),
    (10.0, 12, TypeError, "first_day must be an integer"),
    (10, 12.5, TypeError, "end_day must be an integer"),
])
def test_ranking_task_refuses_bad_windows(world, first_day, end_day, error, message):
    with pytest.raises(error, match=message):
        sl.ranking_task(world, first_day, end_day)


def test_ranking_task_refuses_a_window_past_the_log(world):
    """A window with no session (after the log's last day) would give an empty task and a
    mean rank of nothing."""
    with pytest.raises(ValueError):
        sl.ranking_task(world, sl.DAYS, sl.DAYS + 10)


# --------------------------------------------------------------------------- the world goes on


@pytest.fixture(scope="module")
def live(world):
    return sl.live_sessions(world, 3)


def test_live_sessions_continue_the_log(world, live):
    sessions, clicks, truth_table = live
    n = len(world.observed["sessions"])
    assert np.array_equal(sessions["session_id"], np.arange(n, n + 3 * K["sessions_per_day"]))
    assert sorted(sessions["day"].unique()) == [sl.DAYS, sl.DAYS + 1, sl.DAYS + 2]
    check_log(world.observed["listings"], sessions, clicks)
    assert np.array_equal(truth_table["session_id"], sessions["session_id"])
    assert list(truth_table.columns) == ["session_id", *TASTES]
    again = sl.live_sessions(world, 3)
    for a, b in zip(live, again):
        assert_frame_equal(a, b)
    # a new stream: not a copy of the log's first days
    first_days = world.observed["sessions"]["region"][:len(sessions)]
    assert not np.array_equal(sessions["region"], first_days)
    assert len(world.observed["sessions"]) == n  # the stored world is not modified


def test_live_sessions_follow_the_same_true_model(world, truth, live):
    sessions, clicks, truth_table = sl.live_sessions(world, 20)
    tastes = truth_table[TASTES].to_numpy()
    first = clicks.loc[clicks["position"] == 0, "listing_id"].to_numpy()
    local = sessions.reset_index(drop=True)
    z_first = softmax_scores(truth, local, tastes, first, 1.0)
    z_book = softmax_scores(truth, local, tastes, local["booked"].to_numpy(), K["book_sharpness"])
    assert (abs(z_first) < 4).all() and (abs(z_book) < 4).all(), (z_first, z_book)


def test_a_taste_shift_moves_the_tastes_from_shift_day_only(world, truth):
    base = sl.live_sessions(world, 4)
    shifted = sl.live_sessions(world, 4, taste_shift=SHIFT, shift_day=sl.DAYS + 2)
    after = (base[0]["day"] >= sl.DAYS + 2).to_numpy()
    for a, b in zip(base, shifted):  # before the shift day, nothing changes
        keep = a["session_id"].isin(base[0]["session_id"][~after])
        assert_frame_equal(a[keep], b[keep])
    gap = shifted[2][TASTES].to_numpy() - base[2][TASTES].to_numpy()
    assert np.allclose(gap[after], SHIFT, rtol=0, atol=1e-12) and (gap[~after] == 0).all()
    # the bookings follow: more style 1, less style 5 (500 sessions)
    style = truth.style
    moved = (style[shifted[0]["booked"][after]].mean(axis=0)
             - style[base[0]["booked"][after]].mean(axis=0))
    assert moved[0] > 0.5 and moved[4] < -0.5 and abs(moved[[1, 2, 3, 5]]).max() < 0.25, moved
    # and the shifted oracle explains them better than the unshifted one
    live_q = shifted[0][after].merge(shifted[1][shifted[1]["position"] == 0], on="session_id")
    live_q = live_q[live_q["listing_id"] != live_q["booked_x"]].iloc[:150]
    viewed, day, booked = (live_q[c].to_numpy() for c in ("listing_id", "day", "booked_x"))

    def log_likelihood(shift):
        post = sl.booking_posterior(world, viewed, day, n_tastes=1_000, taste_shift=shift)
        return sum(np.log(p[c == b][0]) for (c, p), b in zip(post, booked))

    assert log_likelihood(SHIFT) > log_likelihood(None) + 10


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_days=0), ValueError, "n_days must be >= 1"),
    (dict(n_days=1.5), TypeError, "n_days must be an integer"),
    (dict(taste_shift=np.ones(5), shift_day=120), ValueError, "taste_shift needs 6 finite numbers"),
    (dict(taste_shift=np.ones((2, 6)), shift_day=120), ValueError, "taste_shift needs 6 finite"),
    (dict(taste_shift=[np.inf, 0, 0, 0, 0, 0], shift_day=120), ValueError, "finite numbers"),
    (dict(taste_shift=np.ones(6)), ValueError, "together, or neither"),
    (dict(shift_day=121), ValueError, "together, or neither"),
    (dict(taste_shift=np.ones(6), shift_day=-1), ValueError, "shift_day must be >= 0"),
    (dict(taste_shift=np.ones(6), shift_day=120.5), TypeError, "shift_day must be an integer"),
])
def test_live_sessions_refuse_bad_arguments(world, kwargs, error, message):
    args = dict(n_days=2) | kwargs
    with pytest.raises(error, match=message):
        sl.live_sessions(world, args.pop("n_days"), **args)
