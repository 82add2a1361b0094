"""mlsd.cases.video_recommendation: chapter 9's plumbing, on a hand-made world."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate, stats  # noqa: E402

from mlsd.cases import video_recommendation as case  # noqa: E402
from mlsd.datasets import video_recommendation as vr  # noqa: E402
from mlsd.systems.feature_store import FeatureStore  # noqa: E402

# three users, six videos by three creators; the log runs over days 0..9
USERS = pd.DataFrame({"user_id": [0, 1, 2], "language": ["en", "es", "en"],
                      "device": ["phone", "tv", "desktop"],
                      "signup_genre": ["music", "gaming", "news"]})
VIDEOS = pd.DataFrame({"video_id": range(6), "creator_id": [0, 0, 1, 1, 2, 2],
                       "genre": ["music", "music", "gaming", "news", "music", "gaming"],
                       "language": ["en", "en", "es", "en", "es", "en"],
                       "upload_day": [0, 0, 1, 2, 5, 8],
                       "length_seconds": [60, 120, 300, 600, 60, 90]})
SUBSCRIPTIONS = pd.DataFrame({"user_id": [0, 2], "creator_id": [2, 0]})
LOG = pd.DataFrame({  # user, video, day, second, watched
    "user_id": [0, 0, 0, 1, 1, 2, 0, 1, 2, 2],
    "video_id": [0, 1, 3, 2, 3, 0, 4, 4, 5, 1],
    "day": [1, 2, 3, 2, 4, 6, 7, 8, 9, 9],
    "second": [10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
    "watched": [1, 1, 0, 1, 1, 0, 1, 0, 1, 1],
    "source": ["random"] * 10,
})


@pytest.fixture
def catalogue():
    return case.make_catalogue(USERS, VIDEOS, SUBSCRIPTIONS, 3)


def test_catalogue_codes_and_checks(catalogue):
    assert catalogue.n_users == 3 and catalogue.n_videos == 6
    assert list(catalogue.genre) == [vr.GENRES.index(g) for g in VIDEOS["genre"]]
    assert catalogue.subscribed.tolist() == [[False, False, True], [False] * 3,
                                             [True, False, False]]
    with pytest.raises(ValueError, match="videos must be sorted by video_id"):
        case.make_catalogue(USERS, VIDEOS.iloc[::-1], SUBSCRIPTIONS, 3)


def test_history_reads_the_log_before_the_cut_only(catalogue):
    h = case.make_history(LOG, 7, catalogue)
    assert h.watched.toarray().tolist() == [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0],
                                            [0] * 6]
    assert h.impressions.tolist() == [2, 1, 1, 2, 0, 0]       # day 6 counts, day 7 does not
    assert h.recent.tolist() == [0, 0, 0, 1, 0, 0]            # watches on days 4..6
    assert h.last_watched[0, :3].tolist() == [1, 0, -1]       # newest first, -1 padding
    future = LOG.assign(watched=np.where(LOG["day"] >= 7, 1 - LOG["watched"], LOG["watched"]))
    again = case.make_history(future, 7, catalogue)
    assert (again.watched != h.watched).nnz == 0 and np.array_equal(again.watches, h.watches)
    allowed = case.allowed_at(h, catalogue, rows=[0, 1])
    assert allowed[0].tolist() == [False, False, True, True, True, False]  # not 5: uploaded day 8
    assert not allowed[2].any()


def test_genre_share_content_and_trending(catalogue):
    h = case.make_history(LOG, 7, catalogue)
    share = case.genre_share(h, catalogue)
    assert np.allclose(share.sum(axis=1), 1)
    assert share[2].argmax() == vr.GENRES.index("news")        # no watches: the sign-up genre
    content = case.content_score(share, catalogue.user_language, catalogue, h)
    assert content.shape == (3, 6)
    # same genre share and popularity, the video in the user's language scores 3 more
    assert content[0, 0] - content[0, 4] == pytest.approx(
        3.0 + 0.1 * (np.log1p(h.watches[0]) - np.log1p(h.watches[4])))
    assert np.array_equal(case.trending_score(h), h.recent + 1e-3 * h.watches)


def test_item_index_neighbours():
    vectors = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [-1.0, 0]])
    index = case.ItemIndex(vectors)
    assert np.allclose(np.diag(index.similarity()), 1, atol=1e-6)
    found = index.neighbours(np.array([[0, -1], [-1, -1]]), 2)
    assert found[0].tolist() == [True, True, False, False]
    assert not found[1].any()                                   # no seed, no neighbour


def test_features_and_labels(catalogue):
    rng = np.random.default_rng(0)
    h = case.make_history(LOG, 7, catalogue)
    ctx = case.make_context(h, catalogue, rng.normal(size=(3, 2)), rng.normal(size=(6, 2)))
    table = case.pair_features(ctx, catalogue, np.array([0, 1]), np.array([4, 4]))
    assert table.shape == (2, 14)
    assert table["language match"].tolist() == [0.0, 1.0]
    assert table["subscribed"].tolist() == [1.0, 0.0]
    u, v, y = case.label_pairs(LOG, ctx, catalogue, None, "impressions", seed=0)
    assert sorted(zip(u, v, y)) == [(0, 4, 1), (1, 4, 0), (2, 1, 1)]  # not 5: uploaded day 8
    funnel = np.ones((3, 6), bool)
    u, v, y = case.label_pairs(LOG, ctx, catalogue, funnel, "candidates", seed=0,
                               negatives_per_user=2)
    assert (u[y == 1].tolist(), v[y == 1].tolist()) == ([0, 2], [4, 1])
    assert len(v[y == 0]) == 4 and set(u[y == 0]) == {0, 2}
    assert 4 not in v[(y == 0) & (u == 0)] and 1 not in v[(y == 0) & (u == 2)]
    with pytest.raises(ValueError, match="negatives"):
        case.label_pairs(LOG, ctx, catalogue, funnel, "clicks", seed=0)


def _judge(k=2):
    task = vr.RankingTask(7, np.array([0, 1]), np.arange(5), {0: {0}, 1: set()},
                          {0: {2, 3}, 1: {4}})
    truth = np.array([[0.9, 0.1, 0.5, 0.4, 0.0, 0.2], [0.0, 0.2, 0.1, 0.3, 0.8, 0.0]])
    return case.Judge(task, truth, np.arange(6) % 2, k)


def test_judge_lists_metrics_and_panels():
    judge = _judge()
    lists = judge.lists(np.array([9.0, 5, 4, 3, 2, 1]))   # one ranking for everyone
    assert lists == {0: [1, 2], 1: [0, 1]}                # user 0 already watched video 0
    assert judge.expected_relevance(lists).tolist() == pytest.approx([0.3, 0.1])
    oracle = np.full((3, 6), -np.inf)
    oracle[[0, 1]] = judge.truth
    best = judge.lists(oracle)
    assert best == {0: [2, 3], 1: [4, 3]} and judge.score(oracle) == pytest.approx(0.5)
    row = judge.evaluate(best)
    assert row["MAP@2"] == pytest.approx(1.0) and row["P@2"] == pytest.approx(0.75)
    one = judge.panel([1])
    assert one.task.users.tolist() == [1] and one.evaluate(best)["MAP@2"] == 1.0
    shares = judge.lift_shares(best, lists, best, ["MAP@2"])
    assert shares == {"MAP@2 lift share": pytest.approx(1.0)}
    with pytest.raises(ValueError, match="rows"):
        case.Judge(judge.task, judge.truth[:1], np.zeros(6), 2)


def test_simulate_ab_is_a_welch_test_on_watches_per_user():
    users = np.arange(40)
    task = vr.RankingTask(7, users, np.arange(4), {u: set() for u in users.tolist()},
                          {u: {0} for u in users.tolist()})
    judge = case.Judge(task, np.tile([0.9, 0.8, 0.1, 0.0], (40, 1)), np.zeros(4), 2)
    good, bad = ({u: lst for u in users.tolist()} for lst in ([0, 1], [2, 3]))
    result = judge.simulate_ab(bad, good, seed=0)
    assert (result.n_a, result.n_b) == (20, 20)
    assert result.mean_a <= 0.3 and result.mean_b >= 1.2 and result.p_value < 0.001
    again = judge.simulate_ab(bad, good, seed=0)
    assert again.mean_b == result.mean_b


def test_serve_days_and_cadences():
    p = np.array([[0.9, 0.5, 0.1], [0.2, 0.3, 0.4]])
    first = np.array([[np.inf, 1, np.inf], [np.inf] * 3])      # user 0 watched video 1 on day 1
    fans_top = (np.array([True, False]), np.array([True, False, False]))
    table, per_user = case.serve_days({0: p}, range(3), first, np.array([0, 0, 1]), p, k=1,
                                      top=fans_top)
    # day 0: nothing uploaded before it; day 2: user 0 has watched video 1, video 2 is up
    assert table["expected relevance@1"].tolist() == pytest.approx([0.0, 0.6, 0.65])
    assert table["top"].tolist() == [0.0, 1.0, 1.0]
    assert per_user.shape == (3, 2)
    served = case.cadence_scores(lambda ranker, cut: (ranker, cut), {0: "a", 7: "b"}, (0, 7))
    assert served == {"frozen": {0: ("a", 0)},
                      "weekly refresh, ranker kept": {0: ("a", 0), 7: ("a", 7)},
                      "weekly retrain": {0: ("a", 0), 7: ("b", 7)}}


def test_trend_numbers_describe_the_stream():
    class Live:  # a stand-in stream: four days, three uploads of which one short
        n_days = 4
        videos = pd.DataFrame({"video_id": [6, 7, 8]})
        impressions = pd.DataFrame({"watched": [1, 0, 1, 1, 0]})

    trend = {"day": 2, "uploads_per_day": 1, "fan_share": 0.3, "fan_taste": 3.0}
    is_short = np.array([False] * 8 + [True])
    numbers, stream = case.trend_numbers(trend, Live, is_short, seed=0)
    assert numbers["monitor_other_uploads"] == pytest.approx(0.5)        # two others, 4 days
    assert numbers["monitor_shorts_upload_share"] == pytest.approx(1 / 1.5)
    assert (numbers["monitor_live_days"], numbers["monitor_drift_day"]) == (4, 2)
    assert numbers["monitor_fan_taste"] == 3.0 and numbers["monitor_n_genres"] == len(vr.GENRES)
    # the favourite genre's taste: the expected largest of n normal tastes, by integration
    n, sd = len(vr.GENRES), vr.KNOBS["genre_taste_sd"]
    exact = integrate.quad(lambda x: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1),
                           -10, 10)[0]
    assert numbers["monitor_favourite_taste"] == pytest.approx(sd * exact, abs=0.01 * sd)
    assert stream["stream"].tolist() == [4, 5, 3, 3, 1]
    again, _ = case.trend_numbers(trend, Live, is_short, seed=0)
    assert again == numbers


def test_cadence_gain_pairs_the_users():
    rng = np.random.default_rng(0)
    frozen = rng.uniform(0.1, 0.5, 200)                  # users differ far more than cadences
    last_week = {"frozen": frozen, "weekly refresh, ranker kept": frozen + 0.02,
                 "weekly retrain": frozen + 0.04 + rng.normal(0, 0.01, 200)}
    numbers, intervals = case.cadence_gain(last_week, seed=0)
    gain = numbers["monitor_retrain_gain"]
    assert numbers["monitor_retrain_low"] < gain < numbers["monitor_retrain_high"]
    assert gain == pytest.approx(0.04, abs=0.003)
    assert numbers["monitor_refresh_share"] == pytest.approx(0.5, abs=0.05)
    assert 0 < numbers["monitor_share_low"] < 0.5 < numbers["monitor_share_high"] < 1
    assert [numbers[f"monitor_{k}_verdict"].data for k in ("retrain", "refresh", "gap")] == [
        "a detectable difference"] * 3
    assert intervals.index.tolist() == ["retrain - frozen, 95% interval",
                                        "refresh's share, 95% interval"]
    assert case.cadence_gain(last_week, seed=0)[0]["monitor_share_low"] == numbers[
        "monitor_share_low"]
    with pytest.raises(ValueError, match="three cadences"):
        case.cadence_gain({"frozen": frozen}, seed=0)


def test_gini_days_text_and_feedback_loop():
    assert case.gini(np.array([[1.0, 1, 1, 1]]))[0] == pytest.approx(0)
    assert case.gini(np.array([[0.0, 0, 0, 1]]))[0] == pytest.approx(0.75)
    assert [case.days_text(n) for n in (0, 1, 3)] == ["the same day", "one day", "3 days"]
    sim = dict(runs=2, days=5, n_start=20, new_per_day=2, slots=3, views=50, history=5)
    loops = {name: case.simulate_feed(score, eps, **sim, seed=1) for name, score, eps in (
        ("count", lambda s, w: w, 0.0), ("explore", lambda s, w: (w + 1) / (s + 15), 0.5))}
    assert list(loops["count"].index) == [1, 2, 3, 4, 5]
    again = case.simulate_feed(lambda s, w: w, 0.0, **sim, seed=1)
    pd.testing.assert_frame_equal(again, loops["count"])
    assert (loops["count"]["quality shown"] <= loops["count"]["best possible"] + 0.2).all()
    table = case.loop_summary(loops, 2)
    numbers = case.loop_numbers(table, loops, ("c", "e"), sim, 0.5, 2)
    assert numbers["monitor_sim_new"] == 10 and numbers["monitor_sim_epsilon"] == 0.5
    assert numbers["monitor_e_new_shown"] == table.loc["explore", "new videos ever shown"]


def test_genre_monitor_flags_a_new_genre():
    days = np.repeat(np.arange(10), 20)
    genre = np.where(np.arange(200) % 2 == 0, "music", "news").astype(object)
    genre[days == 9] = "shorts"
    watch_genre = pd.Series(genre, index=days)
    monitor = case.genre_monitor(watch_genre, range(7, 10), watch_genre[days < 8], window=7)
    assert monitor.loc[9, "genre PSI"] > 1 > monitor.loc[8, "genre PSI"]
    assert monitor["unseen-genre share"].tolist() == [0.0, 0.0, 1.0]


def test_feed_server_serves_the_ranked_funnel(tmp_path, catalogue):
    h = case.make_history(LOG, 7, catalogue)
    rng = np.random.default_rng(0)
    ctx = case.make_context(h, catalogue, rng.normal(size=(3, 2)), rng.normal(size=(6, 2)))

    class ByVideoAge:  # a stand-in ranker: newer is better
        def predict_proba(self, features):
            score = 1 / (1 + features["video age"].to_numpy())
            return np.c_[1 - score, score]

    store = FeatureStore(tmp_path / "c.sqlite")
    store.write("candidates", pd.DataFrame({"user_id": [0, 0], "video_id": [2, 3]}),
                key=["user_id", "video_id"])
    server = case.FeedServer(ctx, catalogue, ByVideoAge(), lambda s, *a, **k: s, {}, store,
                             {"WALS": 2, "item neighbours": 1, "content": 1, "trending": 1},
                             k=2)
    top, ms, sizes = server.serve(0, server.nightly)
    assert top == [4, 3]                   # 4: a followed creator's fresh upload; 3: newest
    assert list(ms) == list(case.FeedServer.STAGES)
    assert sizes["personal candidates"] == 2 and sizes["served"] == 2
    lists, stage_ms, funnel = server.replay([0], {"nightly": server.nightly,
                                                  "on the fly": server.on_the_fly})
    assert lists["nightly"] == {0: [4, 3]} and set(stage_ms) == {"nightly", "on the fly"}
    table, totals = case.latency_table(stage_ms)
    assert table.index[-1] == "whole request" and len(totals["nightly"]) == 1
    store.close()


def test_figures_draw():
    import matplotlib.pyplot as plt

    sim = dict(runs=1, days=3, n_start=5, new_per_day=1, slots=2, views=10, history=2)
    loops = {name: case.simulate_feed(lambda s, w: w, 0.0, **sim) for name in "abc"}
    learning = pd.DataFrame({"impressions per user before the cut-off": [1.0, 2.0],
                             "MAP@10 lift share": [0.1, 0.2],
                             "expected relevance@10 lift share": [0.1, 0.3]})
    offline = pd.DataFrame({"MAP@10": [0.1, 0.2], "expected relevance@10": [0.1, 0.5]},
                           index=["base", "oracle (true p)"])
    for fig in (case.plot_log(LOG), case.plot_loops(loops),
                case.plot_learning_curve(learning),
                case.plot_offline(offline, {"oracle (true p)": "oracle"})):
        assert fig.axes
        plt.close(fig)
