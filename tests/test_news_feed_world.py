"""The news feed world (Chapter 13): schema, the old feed's log and its true model, what the
datasheet says the world hides, the evaluation protocol, the oracle, and the world continued
past the log (with a clickbait wave)."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mlsd import datasets
from mlsd.book.seeding import make_rng
from mlsd.cases.news_feed import ndcg_by_request
from mlsd.datasets import news_feed as nf

K = nf.KNOBS
N_AUTHORS = K["n_people"] + K["n_pages"]
HEADS = nf.REACTIONS + ("dwell",)
HIDDEN_COLUMNS = {"closeness", "quality", "virality", "clickbait", "clickbait_page", "reactivity",
                  "activity", "scroll", "salt", "is_page", "post_rate", "main_topic"}
IMPRESSION_COLUMNS = ["session_id", "user_id", "post_id", "time", "position", "explore",
                      *nf.REACTIONS, "dwell"]
DATASHEET = Path(datasets.data_dir()) / nf.NAME / "DATASHEET.md"
WAVE_DAY = nf.LOG_DAYS + 2  # live days 14..17, the wave from day 16


@pytest.fixture(scope="module")
def world():
    return nf.generate(nf.DEFAULT_SEED)


@pytest.fixture(scope="module")
def stored():
    return datasets.load(nf.NAME)  # the stored files at seed 0


@pytest.fixture(scope="module")
def truth(world):
    return nf.truth_of(world)


@pytest.fixture(scope="module")
def log_truth(world, truth):
    """The true reactions of every logged impression, at the time it was shown."""
    imp = world.observed["impressions"]
    return nf.true_reactions(truth, imp["user_id"].to_numpy(), imp["post_id"].to_numpy(),
                             imp["time"].to_numpy())


@pytest.fixture(scope="module")
def live(world):
    return nf.live_log(world, 3)


def logit(p):
    return np.log(p) - np.log1p(-p)


def author_of(posts: pd.DataFrame, post_ids) -> np.ndarray:
    return posts["author_id"].to_numpy()[np.asarray(post_ids) - int(posts["post_id"].iloc[0])]


def check_log(world, posts: pd.DataFrame, impressions: pd.DataFrame) -> None:
    """The invariants every impression log of this world keeps (the stored one and a live one):
    ``posts`` holds every post the log may show (ids 0..n-1)."""
    assert list(impressions.columns) == IMPRESSION_COLUMNS
    assert np.array_equal(posts["post_id"], np.arange(len(posts)))
    user, post, time = (impressions[c].to_numpy() for c in ("user_id", "post_id", "time"))
    # grouped by session, sessions in day order; one viewer, one time, one order per session
    assert impressions["session_id"].is_monotonic_increasing
    assert np.floor(impressions.groupby("session_id")["time"].first()).is_monotonic_increasing
    per_session = impressions.groupby("session_id")[["user_id", "time", "explore"]].nunique()
    assert (per_session == 1).all().all()
    # positions 0..m-1 within each session
    assert np.array_equal(impressions["position"], impressions.groupby("session_id").cumcount())
    # every post is by an author the viewer is connected to, made in the window before the session
    pairs = world.observed["connections"][["user_id", "author_id"]]
    keys = set(zip(pairs["user_id"].tolist(), pairs["author_id"].tolist()))
    assert all(k in keys for k in zip(user.tolist(), author_of(posts, post).tolist()))
    age = time - posts["created"].to_numpy()[post]
    # (the window is [time - 2 days, time): a post exactly two days old may be shown)
    assert (age > 0).all() and (age <= nf.WINDOW_DAYS + 1e-9).all(), (age.min(), age.max())
    # a viewer never sees a post twice
    assert not impressions.duplicated(["user_id", "post_id"]).any()
    # the old feed's order: newest first, except in explored sessions
    rule = impressions[impressions["explore"] == 0]
    created = posts["created"].to_numpy()[rule["post_id"].to_numpy()]
    same = np.diff(rule["session_id"].to_numpy()) == 0
    assert (np.diff(created)[same] <= 0).all()
    explored = impressions.groupby("session_id")["explore"].first()
    assert set(explored) <= {0, 1}
    n, share = len(explored), K["explore_share"]
    assert abs(explored.mean() - share) < 4 * np.sqrt(share * (1 - share) / n), explored.mean()
    # explored sessions really are shuffled: some show an older post above a newer one
    shuffled = impressions[impressions["explore"] == 1]
    created = posts["created"].to_numpy()[shuffled["post_id"].to_numpy()]
    same = np.diff(shuffled["session_id"].to_numpy()) == 0
    assert (np.diff(created)[same] > 0).mean() > 0.3
    # labels: 0/1 reactions and a dwell in seconds
    for r in nf.REACTIONS:
        assert set(impressions[r].unique()) == {0, 1}, r
    assert (impressions["dwell"] >= 0).all() and np.isfinite(impressions["dwell"]).all()


def within_binomial(hits, p, sds=4.0):
    """|observed count - expected count| within ``sds`` binomial standard deviations."""
    gap = abs(np.sum(hits) - np.sum(p))
    return gap <= sds * np.sqrt(np.sum(p * (1 - p))), (int(np.sum(hits)), float(np.sum(p)))


# -------------------------------------------------------------- reproducibility and schema


def test_generation_is_deterministic_and_the_stored_files_round_trip(world, stored):
    assert datasets.GENERATORS[nf.NAME] == (nf.generate, nf.DEFAULT_SEED)
    one, again = nf.generate(1), nf.generate(1)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(world, kind)) == sorted(getattr(stored, kind))
        for name, frame in getattr(world, kind).items():
            # values, names and order (the dtypes are the next test)
            assert_frame_equal(getattr(stored, kind)[name], frame, check_dtype=False, obj=name)
            assert_frame_equal(getattr(again, kind)[name], getattr(one, kind)[name], obj=name)
    assert stored.summary.strip() == world.datasheet().strip()  # the datasheet is up to date
    assert not one.observed["posts"].equals(world.observed["posts"])  # another seed, another world
    assert not one.observed["impressions"].equals(world.observed["impressions"])
    assert stored.seed == world.seed == nf.DEFAULT_SEED
    with pytest.raises(ValueError, match="seed must be >= 0"):
        nf.generate(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        nf.generate(1.0)


def test_the_stored_files_keep_the_generated_dtypes(world, stored):
    """``load`` at the stored seed and at any other seed must give the same dtypes, or a
    notebook's output (and its arithmetic) changes with the seed."""
    for kind in ("observed", "hidden"):
        for name, frame in getattr(world, kind).items():
            got = getattr(stored, kind)[name].dtypes.astype(str).to_dict()
            assert got == frame.dtypes.astype(str).to_dict(), name


def test_every_column_is_described_and_no_hidden_column_is_observed(world):
    assert sorted(world.observed) == ["authors", "connections", "impressions", "posts"]
    assert sorted(world.hidden) == ["author_truth", "meta", "pair_truth", "post_truth",
                                    "user_truth"]
    observed = {f"{t}.{c}" for t, frame in world.observed.items() for c in frame.columns}
    assert observed <= set(world.columns)  # every observed column has its own description
    hidden = {f"{t}.{c}" for t, frame in world.hidden.items() for c in frame.columns}
    for table, frame in world.hidden.items():  # a hidden table: described whole or by column
        assert f"{table}.*" in world.columns or any(
            f"{table}.{c}" in world.columns for c in frame.columns), table
    stale = set(world.columns) - observed - hidden - {f"{t}.*" for t in world.hidden}
    assert not stale  # no description of a column that does not exist
    assert all(text.strip() for text in world.columns.values())
    for table, frame in world.observed.items():
        assert not HIDDEN_COLUMNS & set(frame.columns), table
    assert world.knobs == K


def test_the_datasheet_file_describes_every_observed_column(world):
    sheet = DATASHEET.read_text(encoding="utf-8")
    sections = dict(re.findall(r"### `(?:hidden/)?(\w+)\.csv\.gz`[^\n]*\n(.*?)(?=\n### |\n## |\Z)",
                               sheet, flags=re.S))
    assert sorted(sections) == sorted({**world.observed, **world.hidden})
    for table, frame in world.observed.items():
        for column in frame.columns:
            description = world.columns[f"{table}.{column}"]
            assert re.search(rf"\| `{column}` \|[^\n]*\| {re.escape(description)} \|",
                             sections[table]), (table, column)
    for knob, value in K.items():
        assert f"| `{knob}` | {value} |" in sheet, knob


def test_ids_sizes_and_relations_are_the_stated_ones(world):
    obs, hid = world.observed, world.hidden
    authors, connections, posts = obs["authors"], obs["connections"], obs["posts"]
    for frame, column, size in [(authors, "author_id", N_AUTHORS),
                                (hid["author_truth"], "author_id", N_AUTHORS),
                                (hid["user_truth"], "user_id", K["n_users"]),
                                (posts, "post_id", len(posts)),
                                (hid["post_truth"], "post_id", len(posts))]:
        assert np.array_equal(frame[column], np.arange(size)), column
    # people first, then pages
    assert list(authors["kind"]) == ["person"] * K["n_people"] + ["page"] * K["n_pages"]
    assert np.array_equal(hid["author_truth"]["is_page"], authors["kind"] == "page")
    # connections: one row per (viewer, author), sorted; friends are people, follows are pages
    assert list(connections.columns) == ["user_id", "author_id", "kind", "contacts"]
    assert not connections.duplicated(["user_id", "author_id"]).any()
    keys = connections[["user_id", "author_id"]]
    assert np.array_equal(keys, keys.sort_values(["user_id", "author_id"]))
    page = authors["kind"].to_numpy()[connections["author_id"]] == "page"
    assert np.array_equal(connections["kind"] == "follows", page)
    assert set(connections["user_id"]) == set(range(K["n_users"]))  # every viewer sees someone
    per_user = connections.groupby("user_id")["kind"].value_counts().unstack(fill_value=0)
    assert per_user["friend"].min() >= 3 and per_user["follows"].min() >= 1
    assert (connections["contacts"] >= 0).all()
    assert_frame_equal(hid["pair_truth"][["user_id", "author_id"]],
                       connections[["user_id", "author_id"]])
    # posts: in creation order, from two days before the log to the day after it
    assert list(posts.columns) == ["post_id", "author_id", "topic", "media", "created"]
    assert posts["created"].is_monotonic_increasing
    assert posts["created"].min() >= -nf.WINDOW_DAYS and posts["created"].max() < nf.LOG_DAYS + 1
    assert set(posts["topic"]) == set(nf.TOPICS) and set(posts["media"]) == set(nf.MEDIA)
    assert posts["author_id"].between(0, N_AUTHORS - 1).all()
    assert set(hid["post_truth"]["clickbait"]) == {0, 1}
    # only clickbait pages post clickbait, and only links and videos
    bait = hid["post_truth"]["clickbait"].to_numpy() == 1
    assert (hid["author_truth"]["clickbait_page"].to_numpy()[posts["author_id"][bait]] == 1).all()
    assert set(posts["media"][bait]) == {"link", "video"}
    assert len(hid["meta"]) == 1


def test_the_log_keeps_its_invariants(world):
    imp = world.observed["impressions"]
    check_log(world, world.observed["posts"], imp)
    assert imp["time"].min() >= 0 and imp["time"].max() < nf.LOG_DAYS
    assert set(np.floor(imp["time"]).astype(int)) == set(range(nf.LOG_DAYS))
    assert imp["session_id"].min() == 0


def test_every_dwell_is_positive(world):
    """A dwell is the seconds a viewer spent on a post they were shown: more than none."""
    dwell = world.observed["impressions"]["dwell"]
    assert (dwell > 0).all(), f"{(dwell <= 0).sum()} impressions with dwell {dwell.min()}"


# --------------------------------------------------------------------------- the true model


def by_hand(world, user: int, post: int, time: float) -> dict:
    """The true reactions of one pair, from the hidden tables and the formula of the module's
    docstring (the intercepts, effects and noise hash are the module's own)."""
    users = world.hidden["user_truth"].set_index("user_id").loc[user]
    p = world.observed["posts"].set_index("post_id").loc[post]
    truth = world.hidden["post_truth"].set_index("post_id").loc[post]
    close = world.hidden["pair_truth"].set_index(["user_id", "author_id"]).loc[
        (user, p["author_id"]), "closeness"]
    salt = int(world.hidden["meta"]["salt"].iloc[0])

    def noise(head):
        return float(nf._noise(salt, np.array([user]), np.array([post]), head)[0])

    interest = users[f"interest_{p['topic']}"]
    shared = (0.8 * close + 0.7 * interest + 0.5 * users[f"media_{p['media']}"]
              + 0.4 * truth["quality"] - K["age_decay_per_hour"] * 24 * (time - p["created"])
              + K["pair_noise_sd"] * noise("shared"))
    media = {m: float(p["media"] == m) for m in nf.MEDIA}
    bait, react = float(truth["clickbait"]), users["reactivity"]
    b, e = nf._BASE, nf._EFFECTS
    z = {"click": b["click"] + e["click"]["shared"] * shared + e["click"]["link"] * media["link"]
         + e["click"]["clickbait"] * bait,
         "like": b["like"] + e["like"]["shared"] * shared + e["like"]["reactivity"] * react
         + e["like"]["photo"] * media["photo"],
         "comment": b["comment"] + e["comment"]["shared"] * shared
         + e["comment"]["closeness"] * close + e["comment"]["reactivity"] * react
         + e["comment"]["text"] * media["text"],
         "share": b["share"] + e["share"]["shared"] * shared
         + e["share"]["quality"] * truth["quality"]
         + e["share"]["video"] * media["video"] + e["share"]["virality"] * truth["virality"],
         "hide": b["hide"] + e["hide"]["shared"] * shared + e["hide"]["clickbait"] * bait
         + e["hide"]["disliked"] * max(0.0, -interest - 0.5),
         "dwell": b["dwell"] + e["dwell"]["shared"] * shared + e["dwell"]["video"] * media["video"]
         + e["dwell"]["quality"] * truth["quality"] + e["dwell"]["clickbait"] * bait}
    out = {h: 1 / (1 + np.exp(-(z[h] + K["head_noise_sd"] * noise(h)))) for h in nf.REACTIONS}
    out["dwell"] = np.exp(z["dwell"] + K["head_noise_sd"] * noise("dwell")
                          + K["dwell_draw_sd"] ** 2 / 2)
    return out


def test_true_reactions_are_the_stated_formula_on_hand_worked_pairs(world, truth):
    assert {h: set(e) for h, e in nf._EFFECTS.items()} == {
        "click": {"shared", "link", "clickbait"}, "like": {"shared", "reactivity", "photo"},
        "comment": {"shared", "closeness", "reactivity", "text"},
        "share": {"shared", "quality", "video", "virality"},
        "hide": {"shared", "clickbait", "disliked"},
        "dwell": {"shared", "video", "quality", "clickbait"}}
    imp = world.observed["impressions"]
    posts, post_truth = world.observed["posts"], world.hidden["post_truth"]
    users = world.hidden["user_truth"]
    media = posts["media"].to_numpy()[imp["post_id"]]
    topic = posts["topic"].to_numpy()[imp["post_id"]]
    interest = users[[f"interest_{t}" for t in nf.TOPICS]].to_numpy()[
        imp["user_id"], pd.Categorical(topic, categories=nf.TOPICS).codes]
    bait = post_truth["clickbait"].to_numpy()[imp["post_id"]] == 1
    picks = [np.flatnonzero(bait & (media == "link"))[0],        # clickbait link
             np.flatnonzero(media == "video")[0],                 # video
             np.flatnonzero((media == "text") & (interest < -1))[0],  # a disliked topic
             np.flatnonzero(media == "photo")[0]]
    rows = imp.iloc[picks]
    later = rows["time"].to_numpy() + np.array([0.0, 0.4, 1.3, 3.0])  # any time after creation
    got = nf.true_reactions(truth, rows["user_id"].to_numpy(), rows["post_id"].to_numpy(), later)
    assert list(got.columns) == list(HEADS) and len(got) == len(picks)
    for i, (u, p, t) in enumerate(zip(rows["user_id"], rows["post_id"], later)):
        hand = by_hand(world, int(u), int(p), float(t))
        for head in HEADS:
            assert got[head].iloc[i] == pytest.approx(hand[head], rel=1e-12, abs=0), (i, head)
    # one pair alone, with a scalar time, gives the same numbers
    first = rows.iloc[:1]
    alone = nf.true_reactions(truth, first["user_id"].to_numpy(), first["post_id"].to_numpy(),
                              float(later[0]))
    assert_frame_equal(alone, got.iloc[:1])


def test_the_noise_is_a_fixed_standard_normal_per_pair_and_head(truth):
    rng = make_rng(0, "test", "noise pairs")
    u, p = rng.integers(0, K["n_users"], 20_000), rng.integers(0, 8_000, 20_000)
    draws = np.array([nf._noise(truth.salt, u, p, head) for head in ("shared",) + HEADS])
    assert np.array_equal(draws[1], nf._noise(truth.salt, u, p, "click"))
    n = draws.shape[1]
    assert (abs(draws.mean(axis=1)) < 4 / np.sqrt(n)).all()
    assert (abs(draws.std(axis=1) - 1) < 4 / np.sqrt(2 * n)).all()
    off_diagonal = np.corrcoef(draws)[~np.eye(len(draws), dtype=bool)]
    assert abs(off_diagonal).max() < 4 / np.sqrt(n)
    other_salt = nf._noise(truth.salt + 1, u, p, "click")
    assert abs(np.corrcoef(other_salt, draws[1])[0, 1]) < 4 / np.sqrt(n)


def test_true_reactions_are_deterministic_probabilities(world, truth, log_truth):
    imp = world.observed["impressions"].iloc[:2_000]
    args = (imp["user_id"].to_numpy(), imp["post_id"].to_numpy(), imp["time"].to_numpy())
    assert_frame_equal(nf.true_reactions(truth, *args), nf.true_reactions(truth, *args))
    assert_frame_equal(nf.true_reactions(truth, *args), log_truth.iloc[:2_000])
    probs = log_truth[list(nf.REACTIONS)].to_numpy()
    assert ((probs > 0) & (probs < 1)).all()
    assert (log_truth["dwell"] > 0).all() and np.isfinite(log_truth["dwell"]).all()
    empty = nf.true_reactions(truth, np.zeros(0, int), np.zeros(0, int), 14.0)
    assert list(empty.columns) == list(HEADS) and len(empty) == 0


def test_older_posts_score_lower_through_the_shared_term(world, truth):
    """All else equal, half a day more of age lowers the shared logit by the stated decay: the
    heads move by their weight on it (hides go up), dwell and the value go down."""
    imp = world.observed["impressions"].iloc[::250]
    u, p, t = (imp[c].to_numpy() for c in ("user_id", "post_id", "time"))
    young = nf.true_reactions(truth, u, p, t)
    old = nf.true_reactions(truth, u, p, t + 0.5)
    drop = K["age_decay_per_hour"] * 12
    for head in nf.REACTIONS:
        moved = logit(old[head].to_numpy()) - logit(young[head].to_numpy())
        assert np.allclose(moved, -nf._EFFECTS[head]["shared"] * drop, rtol=0, atol=1e-9), head
    moved = np.log(old["dwell"].to_numpy()) - np.log(young["dwell"].to_numpy())
    assert np.allclose(moved, -nf._EFFECTS["dwell"]["shared"] * drop, rtol=0, atol=1e-12)
    for head in ("click", "like", "comment", "share", "dwell"):
        assert (old[head] < young[head]).all(), head
    assert (old["hide"] > young["hide"]).all()
    assert (nf.expected_value(old) < nf.expected_value(young)).all()


@pytest.mark.parametrize("users, posts, time, error, message", [
    ([0], [None], 14.0, TypeError, "posts must be integer ids"),
    ([0.0], [100], 14.0, TypeError, "users must be integer ids"),
    ([0], [100.0], 14.0, TypeError, "posts must be integer ids"),
    ([0, 1], [100], 14.0, ValueError, "one length"),
    ([[0]], [[100]], 14.0, ValueError, "1-D"),
    ([0], [10**6], 14.0, ValueError, r"post ids must be in 0\.\.\d+"),
    ([0], [-1], 14.0, ValueError, "post ids must be in"),
    ([0], [100], np.nan, ValueError, "time must be finite"),
])
def test_true_reactions_refuse_bad_input(truth, users, posts, time, error, message):
    with pytest.raises(error, match=message):
        nf.true_reactions(truth, np.array(users), np.array(posts), time)


def test_true_reactions_refuse_an_unconnected_pair_and_a_post_before_it_exists(world, truth):
    connections, posts = world.observed["connections"], world.observed["posts"]
    friends_of_0 = set(connections.loc[connections["user_id"] == 0, "author_id"])
    stranger = int(posts.loc[~posts["author_id"].isin(friends_of_0), "post_id"].iloc[0])
    author = int(posts["author_id"].iloc[stranger])
    with pytest.raises(ValueError, match=f"viewer 0 is not connected to author {author}"):
        nf.true_reactions(truth, np.array([0]), np.array([stranger]), 14.0)
    with pytest.raises(ValueError, match="not connected"):  # an unknown viewer
        nf.true_reactions(truth, np.array([K["n_users"]]), np.array([stranger]), 14.0)
    friend_post = posts.loc[posts["author_id"].isin(friends_of_0)].iloc[-1]
    u, p = np.array([0]), np.array([int(friend_post["post_id"])])
    nf.true_reactions(truth, u, p, friend_post["created"])  # at creation: fine
    with pytest.raises(ValueError, match="before it is created"):
        nf.true_reactions(truth, u, p, friend_post["created"] - 0.01)


def test_truth_of_refuses_posts_out_of_order(world):
    posts, post_truth = world.observed["posts"], world.hidden["post_truth"]
    with pytest.raises(ValueError, match="post ids 0..n-1 in order"):
        nf.truth_of(world, posts.iloc[::-1], post_truth.iloc[::-1])
    with pytest.raises(ValueError, match="one row per post"):
        nf.truth_of(world, posts, post_truth.iloc[:-1])


def test_the_log_labels_are_draws_from_the_truth(world, log_truth):
    """For every reaction, overall and in each fifth of the true probability, the log's count
    matches the true expected count; the mean dwell matches the mean expected dwell."""
    imp = world.observed["impressions"]
    for r in nf.REACTIONS:
        hits, p = imp[r].to_numpy(), log_truth[r].to_numpy()
        ok, counts = within_binomial(hits, p)
        assert ok, (r, counts)
        fifth = pd.qcut(p, 5, labels=False)
        for f in range(5):
            ok, counts = within_binomial(hits[fifth == f], p[fifth == f], sds=4.5)
            assert ok, (r, f, counts)
    mean = log_truth["dwell"].to_numpy()
    sd = mean * np.sqrt(np.exp(K["dwell_draw_sd"] ** 2) - 1)  # a log-normal draw around it
    gap = abs(imp["dwell"].sum() - mean.sum())
    assert gap < 4 * np.sqrt((sd**2).sum()), (imp["dwell"].mean(), mean.mean())
    # and the log-dwell's spread around its mean is the stated draw noise
    resid = np.log(imp["dwell"].clip(lower=0.05)) - (np.log(mean) - K["dwell_draw_sd"] ** 2 / 2)
    assert abs(resid[mean > 5].std() - K["dwell_draw_sd"]) < 0.02


def test_draw_reactions_draws_from_the_given_probabilities():
    frame = pd.DataFrame({r: [0.0, 1.0, 0.3] for r in nf.REACTIONS} | {"dwell": [1.0, 30, 10]})
    big = frame.loc[np.repeat([0, 1, 2], 20_000)].reset_index(drop=True)
    labels = nf.draw_reactions(big, make_rng(0, "test", "draws"))
    assert list(labels.columns) == list(HEADS)
    for r in nf.REACTIONS:
        rate = labels[r].groupby(np.repeat([0, 1, 2], 20_000)).mean()
        assert rate[0] == 0 and rate[1] == 1 and abs(rate[2] - 0.3) < 4 * np.sqrt(0.21 / 20_000)
    dwell = labels["dwell"].groupby(np.repeat([0, 1, 2], 20_000)).mean()
    assert np.allclose(dwell, [1.0, 30.0, 10.0], rtol=0.03)
    again = nf.draw_reactions(big, make_rng(0, "test", "draws"))
    assert_frame_equal(labels, again)


# --------------------------------------------------------------------------- the value


def test_expected_value_weighs_reactions_as_value_weights_say():
    assert nf.VALUE_WEIGHTS == {"click": 1.0, "like": 1.0, "comment": 5.0, "share": 10.0,
                                "dwell_minutes": 1.0, "hide": -20.0}
    zero = dict.fromkeys(HEADS, 0.0)
    rows = [zero | {"click": 1.0}, zero | {"like": 1.0}, zero | {"comment": 1.0},
            zero | {"share": 1.0}, zero | {"hide": 1.0}, zero | {"dwell": 60.0},
            {"click": 0.2, "like": 0.1, "comment": 0.05, "share": 0.01, "hide": 0.02,
             "dwell": 30.0, "extra": 99.0}]
    value = nf.expected_value(pd.DataFrame(rows))
    hand = [1, 1, 5, 10, -20, 1, 0.2 + 0.1 + 5 * 0.05 + 10 * 0.01 - 20 * 0.02 + 30 / 60]
    assert np.allclose(value, hand, rtol=0, atol=1e-12)
    assert isinstance(value, np.ndarray) and value.shape == (7,)


@pytest.mark.parametrize("missing", [*nf.REACTIONS, "dwell"])
def test_expected_value_refuses_a_missing_column(missing):
    frame = pd.DataFrame({h: [0.1] for h in HEADS}).drop(columns=missing)
    with pytest.raises(ValueError, match=f"lack the columns.*'{missing}'"):
        nf.expected_value(frame)


# --------------------------------------------------------------------------- the protocol


@pytest.fixture(scope="module")
def requests(world):
    return nf.feed_requests(world)


def brute_force_candidates(world, user: int, day: int, posts=None, impressions=None) -> list:
    posts = world.observed["posts"] if posts is None else posts
    impressions = world.observed["impressions"] if impressions is None else impressions
    connections = world.observed["connections"]
    authors = set(connections.loc[connections["user_id"] == user, "author_id"])
    window = posts[posts["author_id"].isin(authors) & (posts["created"] >= day - nf.WINDOW_DAYS)
                   & (posts["created"] < day)]
    before = impressions[impressions["time"] < day]
    seen = before.loc[before["user_id"] == user, "post_id"]
    return sorted(set(window["post_id"]) - set(seen))


def test_feed_requests_are_the_unseen_posts_of_the_window(world, requests):
    posts = world.observed["posts"]
    assert list(requests.columns) == ["request", "user_id", "time", "author_id", "post_id",
                                      "created"]
    assert np.array_equal(requests["request"], requests["user_id"])
    assert (requests["time"] == nf.TEST_DAY).all()
    assert np.array_equal(requests["author_id"], author_of(posts, requests["post_id"]))
    assert np.array_equal(requests["created"], posts["created"].to_numpy()[requests["post_id"]])
    assert not requests.duplicated(["request", "post_id"]).any()
    assert requests["request"].is_monotonic_increasing
    sizes = requests.groupby("request").size()
    assert len(sizes) > 0.95 * K["n_users"] and 30 < sizes.mean() < 100, (len(sizes), sizes.mean())
    busiest = int(world.observed["impressions"]["user_id"].value_counts().index[0])
    for user in (0, 1, busiest):
        got = requests.loc[requests["user_id"] == user, "post_id"].tolist()
        assert got == brute_force_candidates(world, user, nf.TEST_DAY), user
    # the validation day's requests leave out only what the log showed before it
    valid = nf.feed_requests(world, nf.VALIDATION_DAY)
    assert (valid["time"] == nf.VALIDATION_DAY).all()
    for user in (0, busiest):
        got = valid.loc[valid["user_id"] == user, "post_id"].tolist()
        assert got == brute_force_candidates(world, user, nf.VALIDATION_DAY), user


@pytest.mark.parametrize("day, error, message", [
    (1, ValueError, "day must be >= 2"),
    (-3, ValueError, "day must be >= 2"),
    (16, ValueError, "past the posts"),
    (14.0, TypeError, "day must be an integer"),
])
def test_feed_requests_refuse_a_bad_day(world, day, error, message):
    with pytest.raises(error, match=message):
        nf.feed_requests(world, day)


def test_the_oracle_is_a_true_ceiling(world, truth, requests):
    """Ranking each viewer's candidates by their true value scores nDCG@10 = 1, and no
    observable ranking beats it for any viewer."""
    u, p = requests["user_id"].to_numpy(), requests["post_id"].to_numpy()
    gain = nf.expected_value(nf.true_reactions(truth, u, p, requests["time"].to_numpy()))
    oracle = ndcg_by_request(requests["request"], gain, gain)
    defined = oracle.notna()
    assert defined.sum() > 0.9 * requests["request"].nunique()
    assert np.allclose(oracle[defined], 1.0, rtol=0, atol=1e-12)
    imp = world.observed["impressions"]
    reactions = imp[["click", "like", "comment", "share"]].sum(axis=1)
    popularity = reactions.groupby(author_of(world.observed["posts"], imp["post_id"])).sum()
    contacts = requests.merge(world.observed["connections"], on=["user_id", "author_id"],
                              how="left")["contacts"]
    rankings = {"newest first": requests["created"].to_numpy(),
                "random": make_rng(0, "test", "random ranking").random(len(requests)),
                "author popularity": popularity.reindex(requests["author_id"], fill_value=0)
                .to_numpy(),
                "contacts": contacts.to_numpy()}
    for name, score in rankings.items():
        ndcg = ndcg_by_request(requests["request"], score, gain)
        assert ndcg.index.equals(oracle.index) and np.array_equal(ndcg.notna(), defined), name
        assert (ndcg[defined] <= oracle[defined] + 1e-12).all(), name
        assert ndcg.mean() < 0.9, (name, ndcg.mean())  # far from it, too


# --------------------------------------------------------------------------- what the world hides


def test_the_world_hides_what_the_datasheet_says(world, log_truth):
    imp, posts = world.observed["impressions"], world.observed["posts"]
    # comments rise with the pair's hidden closeness
    closeness = world.hidden["pair_truth"].set_index(["user_id", "author_id"])["closeness"]
    pair = pd.MultiIndex.from_arrays([imp["user_id"], author_of(posts, imp["post_id"])])
    close = closeness.reindex(pair).to_numpy()
    assert not np.isnan(close).any()
    by_quarter = imp["comment"].groupby(pd.qcut(close, 4, labels=False)).mean()
    assert by_quarter.is_monotonic_increasing and by_quarter.iloc[-1] > 20 * by_quarter.iloc[0]
    # hides (and clicks) rise with the post's hidden clickbait flag
    bait = world.hidden["post_truth"]["clickbait"].to_numpy()[imp["post_id"]] == 1
    assert 0.01 < bait.mean() < 0.2
    assert imp["hide"][bait].mean() > 3 * imp["hide"][~bait].mean()
    assert imp["click"][bait].mean() > 1.5 * imp["click"][~bait].mean()
    # shares are rare
    assert 0.001 < imp["share"].mean() < 0.01
    assert imp["share"].mean() < min(imp[r].mean() for r in nf.REACTIONS if r != "share")
    # the contact count shows closeness, with noise
    connections = world.observed["connections"]
    rho = connections["contacts"].corr(world.hidden["pair_truth"]["closeness"], method="spearman")
    assert 0.5 < rho < 0.98, rho
    # the per-pair noise: even the true comment probability given closeness varies a lot
    assert np.corrcoef(close, logit(log_truth["comment"].to_numpy()))[0, 1] < 0.95


# --------------------------------------------------------------------------- the world goes on


def test_live_log_continues_the_world(world, live):
    posts, post_truth = world.observed["posts"], world.hidden["post_truth"]
    imp = world.observed["impressions"]
    new_posts, new_truth, new_imp = live
    n = len(posts)
    # post ids continue, in creation order, after the log's posts (which end at day 15)
    assert list(new_posts.columns) == list(posts.columns)
    assert new_posts.dtypes.equals(posts.dtypes)
    assert np.array_equal(new_posts["post_id"], np.arange(n, n + len(new_posts)))
    assert np.array_equal(new_truth["post_id"], new_posts["post_id"])
    assert list(new_truth.columns) == list(post_truth.columns)
    assert new_posts["created"].is_monotonic_increasing
    created = new_posts["created"]
    assert created.min() >= nf.LOG_DAYS + 1 and created.max() < nf.LOG_DAYS + 4
    # sessions continue, on the live days only
    assert new_imp["session_id"].min() > imp["session_id"].max()
    assert new_imp["time"].min() >= nf.LOG_DAYS and new_imp["time"].max() < nf.LOG_DAYS + 3
    assert set(np.floor(new_imp["time"]).astype(int)) == {14, 15, 16}
    all_posts = pd.concat([posts, new_posts], ignore_index=True)
    check_log(world, all_posts, new_imp)
    # no viewer sees a post twice, across the log and the live days
    both = pd.concat([imp, new_imp], ignore_index=True)
    assert not both.duplicated(["user_id", "post_id"]).any()
    # deterministic; the stored world is not modified
    for a, b in zip(live, nf.live_log(world, 3)):
        assert_frame_equal(a, b)
    assert len(world.observed["posts"]) == n and len(world.hidden["post_truth"]) == n
    # the live labels are draws from the same truth
    truth = nf.truth_of(world, all_posts, pd.concat([post_truth, new_truth], ignore_index=True))
    p = nf.true_reactions(truth, new_imp["user_id"].to_numpy(), new_imp["post_id"].to_numpy(),
                          new_imp["time"].to_numpy())
    for r in nf.REACTIONS:
        ok, counts = within_binomial(new_imp[r].to_numpy(), p[r].to_numpy())
        assert ok, (r, counts)
    # a live day's feed requests leave out what the log and the live days showed
    requests = nf.feed_requests(world, nf.LOG_DAYS + 2, posts=all_posts, impressions=both)
    busiest = int(new_imp["user_id"].value_counts().index[0])
    got = requests.loc[requests["user_id"] == busiest, "post_id"].tolist()
    assert got == brute_force_candidates(world, busiest, nf.LOG_DAYS + 2, all_posts, both)


def test_a_clickbait_wave_turns_honest_pages_from_wave_day_only(world):
    base = nf.live_log(world, 4)
    wave = nf.live_log(world, 4, clickbait_wave=0.5, wave_day=WAVE_DAY)
    authors = world.hidden["author_truth"]
    honest = ((authors["is_page"] == 1) & (authors["clickbait_page"] == 0)).to_numpy()
    page = authors["is_page"].to_numpy() == 1

    def shares(run):
        new_posts, new_truth, _ = run
        author = new_posts["author_id"].to_numpy()
        bait = new_truth["clickbait"].to_numpy() == 1
        after = new_posts["created"].to_numpy() >= WAVE_DAY
        return author, bait, after, [bait[page[author] & ~after].mean(),
                                     bait[page[author] & after].mean()]

    author, bait, after, (before_share, after_share) = shares(wave)
    _, _, _, (base_before, base_after) = shares(base)
    # before the wave day no honest page posts clickbait; from it, many do
    assert not (bait & honest[author] & ~after).any()
    turned = np.unique(author[bait & honest[author] & after])
    assert 0.25 * honest.sum() < len(turned) <= round(0.5 * honest.sum())
    se = np.sqrt(base_after * (1 - base_after) / (page[author] & after).sum())
    assert abs(before_share - base_before) < 0.05
    assert after_share > base_after + 10 * se and after_share > 2 * before_share
    # the feed's first live day (posts of the log only) is the same with and without the wave
    first = (base[2]["time"] < nf.LOG_DAYS + 1).to_numpy()
    assert_frame_equal(base[2][first], wave[2][(wave[2]["time"] < nf.LOG_DAYS + 1).to_numpy()])
    # a wave of none changes nothing: honest pages stay honest
    none = nf.live_log(world, 4, clickbait_wave=0.0, wave_day=WAVE_DAY)
    n_author, n_bait = none[0]["author_id"].to_numpy(), none[1]["clickbait"].to_numpy() == 1
    assert not (n_bait & honest[n_author]).any()


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_days=0), ValueError, "n_days must be >= 1"),
    (dict(n_days=-2), ValueError, "n_days must be >= 1"),
    (dict(n_days=1.5), TypeError, "n_days must be an integer"),
    (dict(clickbait_wave=0.3), ValueError, "together, or neither"),
    (dict(wave_day=16), ValueError, "together, or neither"),
    (dict(clickbait_wave=0.3, wave_day=13), ValueError, "wave_day must be >= 15"),
    (dict(clickbait_wave=0.3, wave_day=17), ValueError, "wave_day must fall in the live days"),
    (dict(clickbait_wave=0.3, wave_day=40), ValueError, "wave_day must fall in the live days"),
    (dict(clickbait_wave=0.3, wave_day=16.0), TypeError, "wave_day must be an integer"),
    (dict(clickbait_wave=-0.1, wave_day=16), ValueError, r"in \[0, 1\]"),
    (dict(clickbait_wave=1.5, wave_day=16), ValueError, r"in \[0, 1\]"),
    (dict(clickbait_wave=float("nan"), wave_day=16), ValueError, "finite number"),
])
def test_live_log_refuses_bad_arguments(world, kwargs, error, message):
    args = dict(n_days=3) | kwargs  # live days 14, 15, 16
    with pytest.raises(error, match=message):
        nf.live_log(world, args.pop("n_days"), **args)
