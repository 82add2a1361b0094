"""The video recommendation world (Chapter 9): schema, realism, reproducibility, truth, headroom."""

import functools

import numpy as np
import pytest
from pandas.testing import assert_frame_equal

from mlsd import datasets
from mlsd.datasets import video_recommendation as vr

K = vr.KNOBS
CUTOFF = vr.TEST_CUTOFF_DAY


@functools.cache
def world(seed: int = 0):
    return vr.generate(seed)


def tables(seed: int = 0):
    return world(seed).observed


@functools.cache
def room(seed: int = 0) -> dict:
    return vr.room_to_learn(world(seed))


# --------------------------------------------------------------------------- schema and ranges


def test_ids_are_unique_and_every_key_joins():
    t = tables()
    assert (t["users"]["user_id"].to_numpy() == np.arange(K["n_users"])).all()
    assert (t["videos"]["video_id"].to_numpy() == np.arange(K["n_videos"])).all()
    assert (t["creators"]["creator_id"].to_numpy() == np.arange(K["n_creators"])).all()
    assert set(t["videos"]["creator_id"]) == set(t["creators"]["creator_id"])  # every creator has a video
    assert not t["subscriptions"].duplicated(["user_id", "creator_id"]).any()
    for table, key, parent in [
        ("subscriptions", "user_id", "users"),
        ("subscriptions", "creator_id", "creators"),
        ("impressions", "user_id", "users"),
        ("impressions", "video_id", "videos"),
    ]:
        assert t[table][key].isin(t[parent][key]).all(), f"{table}.{key} does not join to {parent}"
    videos = t["videos"].merge(t["creators"], on="creator_id", suffixes=("", "_creator"))
    assert (videos["language"] == videos["language_creator"]).all()
    hidden = world().hidden
    assert (hidden["user_truth"]["user_id"] == t["users"]["user_id"]).all()
    assert (hidden["video_truth"]["video_id"] == t["videos"]["video_id"]).all()


def test_categories_and_timestamps_are_in_range():
    t = tables()
    log = t["impressions"]
    assert log["day"].between(0, K["n_days"] - 1).all() and log["second"].between(0, 86_399).all()
    assert log.sort_values(["day", "second"], kind="stable").index.equals(log.index), "log in time order"
    assert set(log["source"]) == set(vr.SOURCES)
    assert set(t["videos"]["genre"]) == set(vr.GENRES) and set(t["users"]["language"]) == set(vr.LANGUAGES)
    assert t["videos"]["upload_day"].max() < K["n_days"] and t["users"]["signup_day"].max() < K["n_days"]
    assert (t["videos"]["length_seconds"] > 0).all()


def test_impressions_only_of_uploaded_videos_to_signed_up_users():
    t = tables()
    log = t["impressions"].merge(t["videos"][["video_id", "upload_day"]]).merge(t["users"][["user_id", "signup_day"]])
    assert (log["day"] > log["upload_day"]).all(), "a video enters feeds the day after its upload"
    assert (log["day"] >= log["signup_day"]).all()
    subs = t["subscriptions"].merge(t["users"][["user_id", "signup_day"]])
    assert (subs["day"] >= subs["signup_day"]).all()


def test_watches_are_labels_of_impressions_once_per_pair():
    log = tables()["impressions"]
    assert set(log["watched"].unique()) <= {0, 1}
    assert not log[log["watched"] == 1].duplicated(["user_id", "video_id"]).any(), "a video is watched once"
    assert not log.duplicated(["user_id", "video_id", "day"]).any(), "at most one impression a day per pair"
    # nothing is shown again after it was watched
    first_watch = log[log["watched"] == 1].groupby(["user_id", "video_id"])["day"].min().rename("first_watch")
    later = log.join(first_watch, on=["user_id", "video_id"])
    assert not (later["day"] > later["first_watch"]).any()


def test_cold_start_users_and_videos_exist_and_appear_only_at_the_end():
    t = tables()
    log = t["impressions"]
    new_users = t["users"].loc[t["users"]["signup_day"] >= CUTOFF, "user_id"]
    new_videos = t["videos"].loc[t["videos"]["upload_day"] >= CUTOFF, "video_id"]
    assert len(new_users) >= 0.01 * K["n_users"] and len(new_videos) >= 0.02 * K["n_videos"]
    for ids, column in ((new_users, "user_id"), (new_videos, "video_id")):
        rows = log[log[column].isin(ids)]
        assert len(rows) > 0, f"the cold-start {column}s appear in the log"
        assert rows["day"].min() >= CUTOFF
    # the rest of the users and videos were there before the test window
    assert (t["users"]["signup_day"] < CUTOFF).mean() > 0.9


# --------------------------------------------------------------------------- realism of the knobs


def test_an_active_user_sees_a_few_hundred_impressions():
    impressions = vr.active_users_impressions(world())
    assert len(impressions) > 0.5 * K["n_users"]
    assert 150 <= impressions.median() <= 600


def test_creator_sizes_are_heavy_tailed():
    subscribers = np.sort(tables()["creators"]["subscribers"].to_numpy())[::-1]
    top_decile_share = subscribers[: len(subscribers) // 10].sum() / subscribers.sum()
    assert top_decile_share > 0.4, "the largest 10% of creators have most of the audience"
    assert subscribers[0] > 30 * np.median(subscribers)
    videos_per_creator = tables()["videos"].groupby("creator_id").size()
    assert videos_per_creator.max() > 5 * videos_per_creator.median()


def test_watch_rate_is_a_few_percent_and_exposure_mixes_the_sources():
    log = tables()["impressions"]
    assert 0.02 < log["watched"].mean() < 0.15
    shares = log["source"].value_counts(normalize=True)
    assert (shares > 0.08).all(), "every source contributes a real share of the impressions"


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_tables_and_another_seed_differs():
    again = vr.generate(0)
    for kind in ("observed", "hidden"):
        for name, frame in getattr(world(0), kind).items():
            assert_frame_equal(getattr(again, kind)[name], frame)
    assert again.summary == world(0).summary
    other = world(1)
    for name in ("impressions", "users", "videos"):
        assert not other.observed[name].equals(world(0).observed[name])
    assert not other.hidden["user_truth"].equals(world(0).hidden["user_truth"])


# --------------------------------------------------------------------------- the hidden truth


def test_pair_hash_noise_is_standard_normal_and_deterministic():
    a, b = np.repeat(np.arange(400), 500), np.tile(np.arange(500), 400)
    z = vr._hash_normal(12345, a, b)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert (vr._hash_normal(12345, a, b) == z).all()
    assert np.corrcoef(z, vr._hash_normal(54321, a, b))[0, 1] < 0.01


def test_watch_rate_matches_the_true_probability_of_what_was_shown():
    log = tables()["impressions"]
    p = vr.true_relevance(world(), log["user_id"].to_numpy(), log["video_id"].to_numpy())
    # overall, by source and by decile of p: observed rate within 4 binomial standard errors
    groups = {"all": np.ones(len(log), dtype=bool)}
    groups |= {source: (log["source"] == source).to_numpy() for source in vr.SOURCES}
    decile = np.searchsorted(np.quantile(p, np.linspace(0.1, 0.9, 9)), p)
    groups |= {f"p decile {d}": decile == d for d in range(10)}
    watched = log["watched"].to_numpy()
    for name, mask in groups.items():
        se = np.sqrt(np.sum(p[mask] * (1 - p[mask]))) / mask.sum()
        assert abs(watched[mask].mean() - p[mask].mean()) < 4 * se, name


def test_true_relevance_from_the_stored_files_equals_the_generated_one():
    stored = datasets.load("video_recommendation")
    users, videos = np.arange(0, K["n_users"], 7), np.arange(0, K["n_videos"], 3)
    from_files = vr.true_relevance(stored, users[:, None], videos[None, :])
    generated = vr.true_relevance(world(), users[:, None], videos[None, :])
    np.testing.assert_allclose(from_files, generated, rtol=1e-12, atol=0)


def test_true_relevance_broadcasts_like_numpy_and_checks_its_arguments():
    users, videos = np.array([0, 5, 9]), np.array([3, 4, 1999])
    matrix = vr.true_relevance(world(), users[:, None], videos[None, :])
    assert matrix.shape == (3, 3) and ((matrix > 0) & (matrix < 1)).all()
    np.testing.assert_array_equal(vr.true_relevance(world(), users, videos), np.diag(matrix))
    with pytest.raises(ValueError, match="video_ids must be ids in 0..1999, got 2000"):
        vr.true_relevance(world(), users, [1, 2, 2000])
    with pytest.raises(ValueError, match="user_ids must be integer ids"):
        vr.true_relevance(world(), [0.5], [1])
    with pytest.raises(ValueError, match="do not broadcast"):
        vr.true_relevance(world(), [0, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="missing: \\['user_truth', 'video_truth', 'salts'\\]"):
        vr.true_relevance(world().observed, [0], [1])


# --------------------------------------------------------------------------- evaluation and headroom


def test_split_at_splits_by_day_and_names_bad_days():
    log = tables()["impressions"]
    train, test = vr.split_at(log, CUTOFF)
    assert len(train) + len(test) == len(log)
    assert train["day"].max() == CUTOFF - 1 and test["day"].min() == CUTOFF
    with pytest.raises(ValueError, match="day must leave days on both sides"):
        vr.split_at(log, 0)
    with pytest.raises(ValueError, match="'day' column"):
        vr.split_at(log.drop(columns="day"), CUTOFF)


def test_the_ranking_task_never_recommends_what_was_seen():
    task = vr.ranking_task(world())
    uploaded = tables()["videos"].set_index("video_id").loc[task.candidates, "upload_day"]
    assert (uploaded < CUTOFF).all()
    for user in task.users[:200].tolist():
        assert task.relevant[user] and task.relevant[user] <= set(task.candidates.tolist())
        assert not task.relevant[user] & task.seen[user]
    lists = task.top_k(vr.popularity_scores(world(), task), k=10)
    assert all(len(lists[u]) == 10 and not set(lists[u]) & task.seen[u] for u in lists)
    with pytest.raises(ValueError, match="scores must have shape"):
        task.top_k(np.zeros(3))


@pytest.mark.parametrize("k", [1, 10, 40])
def test_top_k_equals_a_stable_sort_of_each_row_ties_and_removed_items_included(k):
    """top_k partitions instead of sorting whole rows: it must give exactly what a stable sort gives."""
    task = vr.ranking_task(world())
    rng = np.random.default_rng(k)
    shape = (len(task.users), len(task.candidates))
    scores = rng.integers(0, 4, shape).astype(float)  # many ties
    scores[rng.random(shape) < 0.98] = -np.inf  # some users have fewer than k candidates left
    column = {v: j for j, v in enumerate(task.candidates.tolist())}
    lists = task.top_k(scores, k)
    for i, user in enumerate(task.users.tolist()[:300]):
        row = scores[i].copy()
        row[[column[v] for v in task.seen[user] if v in column]] = -np.inf
        best = np.argsort(-row, kind="stable")[:k]
        assert lists[user] == [int(task.candidates[j]) for j in best if row[j] > -np.inf]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_world_leaves_room_to_learn(seed):
    r = room(seed)
    assert r["oracle_map"] >= 2 * r["popularity_map"] > 0
    assert r["oracle_mean_p"] >= 2 * r["popularity_mean_p"]


def test_the_datasheet_states_the_measured_headroom_and_the_knobs():
    r, sheet = room(0), world(0).datasheet()
    for number in (r["popularity_map"], r["oracle_map"], r["map_margin"]):
        assert f"{number:.4f}" in sheet
    assert f"{r['map_ratio']:.1f} times" in sheet
    for name, value in K.items():
        assert f"| `{name}` | {value} |" in sheet and f"- `{name}` = {value}: " in sheet
