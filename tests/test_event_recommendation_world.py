"""The event recommendation world (Chapter 10): schema, the old feed's log, the truth, the
evaluation protocol, the oracle, and the world continued past the log with drift."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import sparse

from mlsd import datasets
from mlsd.book.seeding import make_rng
from mlsd.datasets import event_recommendation as er
from mlsd.datasets._hashing import sigmoid

K = er.KNOBS
N_RULE = K["feed_size"] - K["explore"]
HIDDEN_COLUMNS = {f"taste_{c}" for c in er.CATEGORIES} | {
    "reach_km", "price_sensitivity", "style_1", "style_2", "quality", "pair_noise_salt"}
DATASHEET = Path(datasets.data_dir()) / er.NAME / "DATASHEET.md"


@pytest.fixture(scope="module")
def world():
    return er.generate(er.DEFAULT_SEED)


@pytest.fixture(scope="module")
def stored():
    return datasets.load(er.NAME)  # the stored files at seed 0


@pytest.fixture(scope="module")
def log(world):
    return world.observed["impressions"]


@pytest.fixture(scope="module")
def truth(world):
    return er.truth_of(world)


@pytest.fixture(scope="module")
def task(world):
    return er.ranking_task(world)


@pytest.fixture(scope="module")
def logged_p(world, log, truth):
    """The true p of every impression, with the friends registered before its day (vectorised:
    one call for all days, the per-pair day of ``friends_registered``) and the count itself."""
    u, e, day = (log[c].to_numpy() for c in ("user_id", "event_id", "day"))
    friends = er.friends_registered(truth.friends, er.registrations_of(log), u, e, day)
    return sigmoid(er._logit(truth, u, e, day, friends)), friends


def logit(p):
    return np.log(p) - np.log1p(-p)


def within_binomial(hits, p, sds=4.0, slack=0.0):
    """|observed count - expected count| within ``sds`` binomial standard deviations."""
    gap = abs(np.sum(hits) - np.sum(p))
    return gap <= sds * np.sqrt(np.sum(p * (1 - p))) + slack, (np.sum(hits), np.sum(p))


# --------------------------------------------------------------------------- reproducibility and schema


def test_the_stored_files_are_generate_at_seed_0(world, stored):
    assert datasets.GENERATORS[er.NAME] == (er.generate, er.DEFAULT_SEED)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(world, kind)) == sorted(getattr(stored, kind))
        for name, frame in getattr(world, kind).items():
            # values, names and order; the dtype of `registered` is the test below
            assert_frame_equal(getattr(stored, kind)[name], frame, check_dtype=False, obj=name)
    assert stored.summary.strip() == world.datasheet().strip()  # the datasheet is up to date
    assert not er._people(1)["users"].equals(world.observed["users"])  # another seed, another world
    with pytest.raises(ValueError):
        er.generate(-1)


def test_generated_and_loaded_tables_have_the_same_dtypes(world, stored):
    for name, frame in world.observed.items():
        assert_frame_equal(stored.observed[name], frame, obj=name)


def test_observed_tables_hold_no_hidden_column(world):
    assert sorted(world.observed) == ["events", "follows", "friends", "hosts", "impressions", "users"]
    assert sorted(world.hidden) == ["host_truth", "salts", "user_truth"]
    described = {}
    for key in er.COLUMNS:
        table, column = key.split(".")
        described.setdefault(table, set()).add(column)
    for table, frame in world.observed.items():
        assert set(frame.columns) == described[table], table
    for table, frame in world.observed.items():
        assert not HIDDEN_COLUMNS & set(frame.columns), table
    for reason in er.WHY:  # every reason names knobs
        assert set(reason.split(", ")) <= set(K), reason


def test_every_hidden_column_is_described(world):
    for table, frame in world.hidden.items():
        for column in frame.columns:
            assert f"{table}.{column}" in er.COLUMNS, f"{table}.{column}"


def test_the_datasheet_names_and_describes_every_column():
    sheet = DATASHEET.read_text(encoding="utf-8")
    sections = dict(re.findall(r"### `(?:hidden/)?(\w+)\.csv\.gz`[^\n]*\n(.*?)(?=\n### |\Z)",
                               sheet, flags=re.S))
    for key, description in er.COLUMNS.items():
        table, column = key.split(".")
        columns = ([column.replace("<category>", c) for c in er.CATEGORIES]
                   if "<category>" in column else [column])
        for name in columns:
            assert f"| `{name}` |" in sections[table], key
        if "<category>" not in column:
            assert re.search(rf"\| `{column}` \|[^\n]*\| {re.escape(description)} \|",
                             sections[table]), key


def test_ids_run_from_0_and_events_are_made_as_the_knobs_say(world):
    obs, hid = world.observed, world.hidden
    for table, column, n in [(obs["users"], "user_id", K["n_users"]),
                             (hid["user_truth"], "user_id", K["n_users"]),
                             (obs["hosts"], "host_id", K["n_hosts"]),
                             (hid["host_truth"], "host_id", K["n_hosts"]),
                             (obs["events"], "event_id", K["days"] * K["events_per_day"])]:
        assert np.array_equal(table[column], np.arange(n)), column
    events = obs["events"]
    assert events["created_day"].is_monotonic_increasing  # ids in creation order
    assert (events["created_day"].value_counts() == K["events_per_day"]).all()
    lead = events["start_day"] - events["created_day"]
    assert lead.between(*K["lead_days"]).all() and lead.nunique() == 21 - 4 + 1
    assert events["host_id"].between(0, K["n_hosts"] - 1).all()
    assert abs((events["price"] == 0).mean() - K["free_share"]) < 0.03
    assert set(events["category"]) == set(er.CATEGORIES) and set(events["slot"]) == set(er.SLOTS)
    for frame in (obs["users"], obs["hosts"], events):
        assert frame[["x_km", "y_km"]].stack().between(0, K["region_km"]).all()
    users = obs["users"]
    assert (users["declared_1"] != users["declared_2"]).all()
    follows = obs["follows"]
    assert not follows.duplicated().any() and follows["host_id"].between(0, K["n_hosts"] - 1).all()


def test_friends_are_symmetric_without_self_loops(world, truth):
    friends = world.observed["friends"]
    assert (friends["user_id"] != friends["friend_id"]).all()
    assert not friends.duplicated().any()
    pairs = set(zip(friends["user_id"], friends["friend_id"]))
    assert all((b, a) in pairs for a, b in pairs)
    assert (truth.friends != truth.friends.T).nnz == 0
    degree = np.diff(truth.friends.indptr)
    assert degree.min() >= 1 and K["friends_drawn"] <= degree.mean() <= 2 * K["friends_drawn"]


# --------------------------------------------------------------------------- the old feed's log


def test_every_impression_is_of_an_open_event_in_a_well_formed_feed(world, log):
    events = world.observed["events"]
    created = events["created_day"].to_numpy()[log["event_id"]]
    start = events["start_day"].to_numpy()[log["event_id"]]
    day = log["day"].to_numpy()
    assert ((created <= day) & (day < start)).all()
    assert log["day"].between(0, K["days"] - 1).all() and log["day"].is_monotonic_increasing
    # one feed per active user and day: distinct positions and events, rule slots first
    assert not log.duplicated(["day", "user_id", "position"]).any()
    assert not log.duplicated(["day", "user_id", "event_id"]).any()
    assert log["position"].between(0, K["feed_size"] - 1).all()
    assert (log["source"] == np.where(log["position"] < N_RULE, "rule", "explore")).all()
    per_feed = log.groupby(["day", "user_id"])["source"].value_counts().unstack(fill_value=0)
    assert (per_feed["explore"] <= K["explore"]).all() and (per_feed["rule"] <= N_RULE).all()
    assert (per_feed["explore"] == K["explore"]).mean() > 0.99
    assert (per_feed["rule"] == N_RULE).mean() > 0.99
    active = log.groupby("day")["user_id"].nunique()
    n, share = K["n_users"], K["active_share"]
    assert (abs(active - n * share) < 4.5 * np.sqrt(n * share * (1 - share))).all()


def test_nobody_registers_twice_nor_sees_an_event_after_registering(log):
    reg = er.registrations_of(log)
    assert list(reg.columns) == ["user_id", "event_id", "day"] and len(reg) == log["registered"].sum()
    assert not reg.duplicated(["user_id", "event_id"]).any()
    later = log.merge(reg, on=["user_id", "event_id"], suffixes=("", "_registered"))
    assert (later["day"] <= later["day_registered"]).all()
    assert set(log["registered"]) == {0, 1}


def test_explore_slots_are_uniform_among_open_events_and_the_rule_is_not(world, log, truth):
    """Where the shown event ranks by distance among the day's open events (0 nearest, 1
    farthest): uniform (mean 1/2) for explore, near the top for the rule. Every fourth day."""
    created = world.observed["events"]["created_day"].to_numpy()
    start = truth.event_start
    shown_log = log[log["day"] % 4 == 0].reset_index(drop=True)
    rank = np.empty(len(shown_log))
    for day, rows in shown_log.groupby("day").indices.items():
        open_ = np.flatnonzero((created <= day) & (start > day))
        u, e = shown_log["user_id"].to_numpy()[rows], shown_log["event_id"].to_numpy()[rows]
        to_open = np.hypot(*(truth.home[u][:, None, :] - truth.event_place[open_][None]).T).T
        shown = np.hypot(*(truth.home[u] - truth.event_place[e]).T)
        rank[rows] = (to_open < shown[:, None]).sum(axis=1) / (len(open_) - 1)
    explore = (shown_log["source"] == "explore").to_numpy()
    assert abs(rank[explore].mean() - 0.5) < 0.02, rank[explore].mean()
    assert abs(np.quantile(rank[explore], 0.25) - 0.25) < 0.03
    assert rank[~explore].mean() < 0.2, rank[~explore].mean()


def test_explore_impressions_register_less_than_the_rules(log):
    rate = log.groupby("source")["registered"].mean()
    n = log["source"].value_counts()
    sd = np.sqrt(sum(rate[s] * (1 - rate[s]) / n[s] for s in er.SOURCES))
    assert rate["explore"] < rate["rule"] - 10 * sd, rate.to_dict()
    assert 0.03 < log["registered"].mean() < 0.15


# --------------------------------------------------------------------------- the truth


def test_the_logs_registrations_follow_the_true_probability(log, logged_p):
    p, friends = logged_p
    hits = log["registered"].to_numpy()
    ok, counts = within_binomial(hits, p)
    assert ok, counts
    deciles = np.digitize(p, np.quantile(p, np.linspace(0.1, 0.9, 9)))
    for d in range(10):
        ok, counts = within_binomial(hits[deciles == d], p[deciles == d])
        assert ok, (d, counts)
    for source in er.SOURCES:
        where = (log["source"] == source).to_numpy()
        ok, counts = within_binomial(hits[where], p[where])
        assert ok, (source, counts)


def test_the_log_used_the_friends_registered_before_the_day(world, log, truth, logged_p):
    p, friends = logged_p
    hits = log["registered"].to_numpy()
    some = friends > 0
    assert some.sum() > 1_000
    ok, counts = within_binomial(hits[some], p[some])
    assert ok, counts
    # without the friends term the same impressions would register far less than they did
    u, e, day = (log[c].to_numpy()[some] for c in ("user_id", "event_id", "day"))
    p_alone = sigmoid(er._logit(truth, u, e, day, np.zeros(some.sum())))
    assert not within_binomial(hits[some], p_alone, sds=8)[0]
    # the public function gives the same logits, one day at a time
    one_day = np.flatnonzero(log["day"].to_numpy() == 60)
    z = er.true_logit(world, log["user_id"].to_numpy()[one_day],
                      log["event_id"].to_numpy()[one_day], 60)
    assert np.allclose(sigmoid(z), p[one_day], rtol=0, atol=1e-12)


def brute_friends_registered(friend_pairs, registrations, u, e, day):
    friends = {}
    for a, b in friend_pairs:
        friends.setdefault(a, set()).add(b)
    day = np.broadcast_to(day, np.shape(u))
    return np.array([sum(1 for f, ev, t in registrations
                         if f in friends.get(uu, ()) and ev == ee and t < dd)
                     for uu, ee, dd in zip(u, e, day)])


@pytest.mark.parametrize("seed", range(5))
def test_friends_registered_counts_friends_strictly_before_the_day(seed):
    rng = np.random.default_rng(seed)
    n_users, n_events = 9, 6
    drawn = {tuple(sorted(rng.choice(n_users, 2, replace=False))) for _ in range(12)}
    pairs = [(a, b) for a, b in drawn] + [(b, a) for a, b in drawn]
    friends = sparse.csr_matrix((np.ones(len(pairs)), tuple(np.array(pairs).T)),
                                shape=(n_users, n_users))
    who = rng.choice(n_users * n_events, 25, replace=False)  # one registration per pair at most
    reg = pd.DataFrame({"user_id": who // n_events, "event_id": who % n_events,
                        "day": rng.integers(0, 6, len(who))}).sample(frac=1, random_state=seed)
    u, e = rng.integers(0, n_users, 60), rng.integers(0, n_events, 60)
    day = rng.integers(0, 8, 60)
    rows = reg.to_numpy().tolist()
    got = er.friends_registered(friends, reg, u, e, day)
    assert np.array_equal(got, brute_friends_registered(pairs, rows, u, e, day))
    assert got.max() > 0
    assert np.array_equal(er.friends_registered(friends, reg, u, e, 3),
                          brute_friends_registered(pairs, rows, u, e, 3))
    none = reg.iloc[:0]
    assert np.array_equal(er.friends_registered(friends, none, u, e, day), np.zeros(60))
    # a registration on the query's own day is not known yet
    same_day = pd.DataFrame({"user_id": [pairs[0][1]], "event_id": [2], "day": [4]})
    assert er.friends_registered(friends, same_day, [pairs[0][0]] * 2, [2, 2], [4, 5]).tolist() == [0, 1]


def test_friends_registered_has_no_hidden_limit_on_the_day():
    friends = sparse.csr_matrix(np.array([[0, 1], [1, 0]]))
    other_event = pd.DataFrame({"user_id": [1], "event_id": [1], "day": [5]})
    assert er.friends_registered(friends, other_event, [0], [0], [20_000]).tolist() == [0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(user_ids=[0, 1], event_ids=[0]), "one shape"),
    (dict(user_ids=[K["n_users"]], event_ids=[0]), "user id is out of range"),
    (dict(user_ids=[-1], event_ids=[0]), "user id is out of range"),
    (dict(user_ids=[0], event_ids=[K["days"] * K["events_per_day"]]), "event id is out of range"),
    (dict(user_ids=[0], event_ids=[-2]), "event id is out of range"),
    (dict(user_ids=[0], event_ids=[0], day=-1), "day must be >= 0"),
])
def test_true_logit_refuses_bad_input(world, kwargs, message):
    args = dict(day=10) | kwargs
    with pytest.raises(ValueError, match=message):
        er.true_logit(world, args["user_ids"], args["event_ids"], args["day"])


def test_true_logit_without_noise_leaves_out_exactly_the_pair_noise(world, truth):
    u, e = np.arange(0, 2_000, 7), np.arange(3_000, 3_000 + len(np.arange(0, 2_000, 7)))
    gap = er.true_logit(world, u, e, 84) - er.true_logit(world, u, e, 84, noise=False)
    assert np.allclose(gap, K["pair_noise_sd"] * er._hash_normal(truth.salt, u, e), atol=1e-12)
    assert er.true_logit(world, [], [], 5).shape == (0,)


# --------------------------------------------------------------------------- the evaluation protocol


def test_the_candidates_are_the_weeks_new_events_near_and_never_shown(world, log, task, truth):
    pairs, events = task.pairs, world.observed["events"]
    assert task.cutoff == er.CUTOFF_DAY
    assert list(pairs.columns) == ["user_id", "event_id", "distance_km", "p", "p_no_noise",
                                   "registered"]
    new = events.query("created_day >= @er.CUTOFF_DAY - @er.WEEK and created_day < @er.CUTOFF_DAY"
                       " and start_day > @er.CUTOFF_DAY")["event_id"].to_numpy()
    assert np.array_equal(task.events, new) and set(pairs["event_id"]) == set(new)
    u, e = pairs["user_id"].to_numpy(), pairs["event_id"].to_numpy()
    assert np.allclose(pairs["distance_km"], np.hypot(*(truth.home[u] - truth.event_place[e]).T))
    assert pairs["distance_km"].max() <= 50.0
    assert not pairs.duplicated(["user_id", "event_id"]).any()
    # nothing about a candidate pair was observed: never shown, so never registered either
    shown = log[["user_id", "event_id"]].drop_duplicates()
    assert not pairs.merge(shown, on=["user_id", "event_id"]).shape[0]
    # and nothing else is left out: every near, never shown (user, new event) pair is there
    dist = np.hypot(*(truth.home[:, None, :] - truth.event_place[new][None]).T).T
    seen = shown[shown["event_id"].isin(new)]
    seen_dist = dist[seen["user_id"], np.searchsorted(new, seen["event_id"])]
    for max_km in (50.0, 10.0):
        expected = (dist <= max_km).sum() - (seen_dist <= max_km).sum()
        got = pairs if max_km == 50.0 else er.ranking_task(world, max_km=max_km).pairs
        assert len(got) == expected, max_km
    assert len(seen) > 1_000  # the exclusion is not idle: the old feed showed new events


def test_labels_are_drawn_from_p_reproducibly(world, task):
    pairs = task.pairs
    again = er.ranking_task(world)
    assert_frame_equal(again.pairs, pairs)
    assert np.array_equal(again.events, task.events)
    p = pairs["p"].to_numpy()
    assert within_binomial(pairs["registered"].to_numpy(), p)[0]
    deciles = np.digitize(p, np.quantile(p, np.linspace(0.1, 0.9, 9)))
    for d in range(10):
        assert within_binomial(pairs["registered"].to_numpy()[deciles == d], p[deciles == d])[0], d
    # p is the truth at the cut-off, with the log's friends registered so far
    z = er.true_logit(world, pairs["user_id"].to_numpy()[:5_000],
                      pairs["event_id"].to_numpy()[:5_000], er.CUTOFF_DAY)
    assert np.allclose(sigmoid(z), p[:5_000], rtol=0, atol=1e-12)


def test_p_and_p_no_noise_differ_by_the_pair_noise_only(task, truth):
    pairs = task.pairs
    keep = pairs["p"].between(1e-9, 1 - 1e-9) & pairs["p_no_noise"].between(1e-9, 1 - 1e-9)
    pairs = pairs[keep]
    gap = logit(pairs["p"].to_numpy()) - logit(pairs["p_no_noise"].to_numpy())
    noise = er._hash_normal(truth.salt, pairs["user_id"].to_numpy(), pairs["event_id"].to_numpy())
    assert np.allclose(gap, K["pair_noise_sd"] * noise, atol=1e-6)
    assert abs(gap.mean()) < 4 * K["pair_noise_sd"] / np.sqrt(len(gap))
    assert abs(gap.std() - K["pair_noise_sd"]) < 0.01
    assert abs(np.corrcoef(gap, logit(pairs["p_no_noise"].to_numpy()))[0, 1]) < 0.01


def test_an_earlier_cutoff_reads_only_the_log_before_it(world, log):
    valid = er.ranking_task(world, er.CUTOFF_DAY - er.WEEK)
    pairs = valid.pairs
    created = world.observed["events"]["created_day"].to_numpy()[pairs["event_id"]]
    assert (created >= 70).all() and (created < 77).all()
    before = log.loc[log["day"] < 77, ["user_id", "event_id"]].drop_duplicates()
    after = er.registrations_of(log[log["day"] >= 77])
    assert not pairs.merge(before, on=["user_id", "event_id"]).shape[0]
    assert pairs.merge(after, on=["user_id", "event_id"]).shape[0] > 100  # still candidates
    # p is the truth on day 77: friends registered before it, days until the start from it
    head = pairs.iloc[:3_000]
    z = er.true_logit(world, head["user_id"].to_numpy(), head["event_id"].to_numpy(), 77)
    assert np.allclose(sigmoid(z), head["p"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(cutoff=er.WEEK - 1), ValueError, "cutoff must be >= 7"),
    (dict(cutoff=84.0), TypeError, "cutoff must be an integer"),
    (dict(max_km=0.0), ValueError, "max_km must be positive"),
    (dict(cutoff=200), ValueError, "no event was created"),
])
def test_ranking_task_refuses_bad_arguments(world, kwargs, error, message):
    with pytest.raises(error, match=message):
        er.ranking_task(world, **kwargs)


# --------------------------------------------------------------------------- the oracle


def expected_precision(pairs: pd.DataFrame, score: np.ndarray, k: int = 10) -> pd.Series:
    """Per user, the expected precision@k under p of the ranking by ``score`` (ties to the
    lower event id): the mean of p over the top k."""
    ranked = pairs.assign(_s=score).sort_values(["user_id", "_s", "event_id"],
                                                ascending=[True, False, True], kind="stable")
    return ranked.groupby("user_id").head(k).groupby("user_id")["p"].sum() / k


def test_the_oracle_is_a_ceiling_for_observable_rankings(world, log, task):
    """What is checked: on 400 users of the test week, the expected precision@10 under the true
    p of the oracle's ranking (by p without the pair noise) against rankings by observable
    scores: distance, popularity so far, the old feed's rule (declared category, distance,
    popularity) and random. The pair noise is independent of everything observed and
    sigmoid is increasing, so in expectation over the noise no observable ranking beats the
    oracle; on a sample we ask for a clear margin in the mean and a majority of users. The
    clairvoyant ranking (by p itself) is a ceiling for every single user."""
    users = make_rng(0, "test", "oracle users").choice(K["n_users"], 400, replace=False)
    pairs = task.pairs[task.pairs["user_id"].isin(users)].reset_index(drop=True)
    events, people = world.observed["events"], world.observed["users"]
    popularity = er.registrations_of(log)["event_id"].value_counts()
    pop = np.log1p(popularity.reindex(pairs["event_id"], fill_value=0).to_numpy())
    category = events["category"].to_numpy()[pairs["event_id"]]
    declared = people.set_index("user_id").loc[pairs["user_id"], ["declared_1", "declared_2"]]
    in_declared = (declared.to_numpy() == category[:, None]).any(axis=1)
    dist = pairs["distance_km"].to_numpy()
    rule = (-dist / K["rule_distance_km"] + K["rule_category"] * in_declared
            + K["rule_popularity"] * pop)
    rival = {"distance": -dist, "popularity": pop, "old rule": rule,
             "random": make_rng(0, "test", "random scores").random(len(pairs))}
    oracle = expected_precision(pairs, pairs["p_no_noise"].to_numpy())
    clairvoyant = expected_precision(pairs, pairs["p"].to_numpy())
    assert (clairvoyant >= oracle - 1e-12).all()
    for name, score in rival.items():
        other = expected_precision(pairs, score)
        assert oracle.mean() > other.mean() + 0.02, (name, oracle.mean(), other.mean())
        assert (oracle > other).mean() > 0.9, name
    assert clairvoyant.mean() > oracle.mean()  # the noise is real: it costs the oracle


# --------------------------------------------------------------------------- the world goes on


@pytest.fixture(scope="module")
def continued(world):
    return er.live_days(world, 3)


def test_live_days_keeps_the_log_and_continues_it(world, continued):
    events, log = continued
    n = len(world.observed["events"])
    assert_frame_equal(events.iloc[:n], world.observed["events"])
    stored = world.observed["impressions"]
    assert_frame_equal(log.iloc[:len(stored)].reset_index(drop=True), stored)
    new_events = events.iloc[n:]
    assert np.array_equal(new_events["event_id"], np.arange(n, n + 3 * K["events_per_day"]))
    assert sorted(new_events["created_day"].unique()) == [84, 85, 86]
    new = log.iloc[len(stored):]
    assert sorted(new["day"].unique()) == [84, 85, 86]
    created = events["created_day"].to_numpy()[new["event_id"]]
    start = events["start_day"].to_numpy()[new["event_id"]]
    assert ((created <= new["day"]) & (new["day"] < start)).all()
    assert not er.registrations_of(log).duplicated(["user_id", "event_id"]).any()
    again = er.live_days(world, 3)
    assert_frame_equal(again[1], log) and again[0].equals(events)


def test_live_days_is_the_same_process_as_generation(world, continued, monkeypatch):
    """Generating 87 days gives the 3 days live_days adds to the 84 stored ones."""
    monkeypatch.setitem(er.KNOBS, "days", er.CUTOFF_DAY + 3)
    longer = er.generate(er.DEFAULT_SEED)
    events, log = continued
    assert_frame_equal(longer.observed["events"], events)
    assert_frame_equal(longer.observed["impressions"], log)


def test_a_taste_shift_moves_registrations_of_the_shifted_categories(world, continued):
    shift = np.zeros(len(er.CATEGORIES))
    up, down = er.CATEGORIES.index("outdoors"), er.CATEGORIES.index("music")
    shift[up], shift[down] = 1.5, -1.5
    n_stored = len(world.observed["impressions"])
    base_events, base = er.live_days(world, 6)
    events, log = er.live_days(world, 6, taste_shift=shift, shift_day=86)
    # before the shift day nothing changes
    before = log["day"] < 86
    assert_frame_equal(log[before], base[base["day"] < 86])
    assert_frame_equal(events[events["created_day"] < 86],
                       base_events[base_events["created_day"] < 86])

    def after(ev, lg):
        lg = lg.iloc[n_stored:]
        lg = lg[lg["day"] >= 86]
        return lg.assign(category=ev["category"].to_numpy()[lg["event_id"]])

    rates = {name: after(ev, lg).groupby("category")["registered"].mean()
             for name, (ev, lg) in {"base": (base_events, base), "shift": (events, log)}.items()}
    assert rates["shift"]["outdoors"] > rates["base"]["outdoors"] + 0.05, rates
    assert rates["shift"]["music"] < rates["base"]["music"] - 0.03, rates
    others = [c for c in er.CATEGORIES if c not in ("outdoors", "music")]
    assert (abs(rates["shift"][others] - rates["base"][others]) < 0.04).all(), rates
    # and new events outside their host's category lean to the favoured one (20 days of them)
    events = er.live_days(world, 20, taste_shift=shift, shift_day=84)[0].query("created_day >= 84")
    main = world.observed["hosts"]["category"].to_numpy()[events["host_id"]]
    off = events["category"][events["category"].to_numpy() != main].value_counts(normalize=True)
    favour = np.exp(shift) / np.exp(shift).sum()  # drawn from these, then those equal to main dropped
    assert favour[up] < off["outdoors"] and off["music"] < 2 * favour[down], off


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_days=0), ValueError, "n_days must be >= 1"),
    (dict(n_days=1.5), TypeError, "n_days must be an integer"),
    (dict(taste_shift=np.zeros(3), shift_day=84), ValueError, "one finite number per category"),
    (dict(taste_shift=np.zeros((2, 8)), shift_day=84), ValueError, "one finite number per category"),
    (dict(taste_shift=np.zeros(8)), ValueError, "give shift_day"),
])
def test_live_days_refuses_bad_arguments(world, kwargs, error, message):
    args = dict(n_days=2) | kwargs
    with pytest.raises(error, match=message):
        er.live_days(world, **args)


def test_true_logit_takes_one_day_per_pair(world):
    u, e = np.array([0, 1, 2]), np.array([5, 6, 7])
    days = np.array([10, 11, 12])
    each = np.concatenate([er.true_logit(world, u[[i]], e[[i]], int(d)) for i, d in enumerate(days)])
    assert np.array_equal(er.true_logit(world, u, e, days), each)
    with pytest.raises(ValueError, match="one shape"):
        er.true_logit(world, u, e, days[:2])
    with pytest.raises(ValueError, match="whole numbers"):
        er.true_logit(world, u, e, np.array([1.5, 2.0, 3.0]))
