"""Chapter 13's monitoring plumbing: the live log, the daily signals and their bands, alarms,
a feed day's cost, the paired gain, the numbers the prose quotes and the figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from mlsd.cases import news_feed as case  # noqa: E402
from mlsd.cases.news_feed import monitoring as mon  # noqa: E402
from mlsd.datasets import load  # noqa: E402
from mlsd.datasets import news_feed as nf  # noqa: E402

WAVE_DAY = nf.LOG_DAYS + 2          # live days 14..16, the wave from day 16
Z = np.sqrt(stats.chi2.ppf(0.999, 1))   # the band's half-width in theory's sds


@pytest.fixture(scope="module")
def world():
    return load("news_feed", seed=0)


@pytest.fixture(scope="module")
def new(world):
    return nf.live_log(world, 3, clickbait_wave=0.5, wave_day=WAVE_DAY)


@pytest.fixture(scope="module")
def log(world):
    return case.with_posts(world.observed["impressions"], world.observed["posts"])


@pytest.fixture(scope="module")
def live(world, log, new):
    return mon.join_live(world, log, *new)


def signal(values, low, high, center=1.0, phi=1.0, first_day=0):
    days = pd.Index(np.arange(first_day, first_day + len(values)), name="day")
    low, high = (np.broadcast_to(np.asarray(b, float), len(values)).copy() for b in (low, high))
    return mon.DailySignal(pd.Series(values, index=days, dtype=float), low, high, center, phi)


# --------------------------------------------------------------------------- the live log


def test_join_live_appends_the_live_days(world, log, new, live):
    new_posts, new_truth, impressions = new
    assert len(live.posts) == len(world.observed["posts"]) + len(new_posts)
    assert np.array_equal(live.posts["post_id"], np.arange(len(live.posts)))
    assert np.array_equal(live.post_truth["post_id"], live.posts["post_id"])
    assert len(live.log) == len(log) + len(impressions) and live.live.sum() == len(impressions)
    assert not live.live[: len(log)].any() and live.live[len(log):].all()
    rows = live.log[live.live]
    assert set(rows["day"]) == {14, 15, 16}
    assert (rows["day"] == np.floor(rows["time"])).all()
    # the live rows carry their posts' authors and media, as the stored ones do
    posts = live.posts.set_index("post_id")
    assert (rows["author_id"].to_numpy() == posts.loc[rows["post_id"], "author_id"]).all()
    assert live.log["day"].iloc[: len(log)].max() == nf.LOG_DAYS - 1
    # point-in-time counters read the live rows too: a viewer's count grows over the live days
    first, last = rows.groupby("user_id").head(1), rows.groupby("user_id").tail(1)
    seen = [case.past_counts(live.log, r, "user_id", ["hide"])["n"].sum() for r in (first, last)]
    assert seen[1] > seen[0] > 0


def test_join_live_refuses_what_does_not_continue_the_world(world, log, new):
    new_posts, new_truth, impressions = new
    with pytest.raises(TypeError, match="World"):
        mon.join_live("world", log, *new)
    with pytest.raises(ValueError, match="lacks the columns"):
        mon.join_live(world, log.drop(columns="author_id"), *new)
    with pytest.raises(ValueError, match="continue the world's post ids"):
        mon.join_live(world, log, new_posts.iloc[1:], new_truth.iloc[1:], impressions)
    early = impressions.assign(time=impressions["time"] - 5.0)
    with pytest.raises(ValueError, match="after the log's last one"):
        mon.join_live(world, log, new_posts, new_truth, early)


# --------------------------------------------------------------------------- signals


def test_rate_signal_by_hand():
    # days 0 and 1 are the reference: 1 event in 4 and 3 in 4, pooled 4 / 8 = 0.5
    day = np.repeat([0, 1, 2], 4)
    events = np.array([1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1])
    s = mon.rate_signal(day, events, range(0, 2))
    assert s.values.tolist() == [0.25, 0.75, 1.0] and s.center == 0.5
    sd = np.sqrt(0.5 * 0.5 / 4)
    # z scores -1 and +1 on the reference days: dispersion 1, the band is theory's
    assert s.dispersion == pytest.approx(1.0)
    assert np.allclose(s.high - s.low, 2 * Z * sd) and np.allclose(s.low + s.high, 1.0)


def test_a_band_is_widened_by_the_measured_dispersion_and_never_narrowed():
    rng = np.random.default_rng(0)
    day = np.repeat(np.arange(40), 2_000)
    steady = rng.random(len(day)) < 0.05
    varying = rng.random(len(day)) < np.repeat(rng.uniform(0.03, 0.07, 40), 2_000)
    calm = mon.rate_signal(day, steady, range(0, 30))
    loud = mon.rate_signal(day, varying, range(0, 30))
    assert 0.4 < calm.dispersion < 2.0 and loud.dispersion > 4
    theory = Z * np.sqrt(calm.center * (1 - calm.center) / 2_000)
    assert np.allclose(calm.high - calm.center, theory * np.sqrt(max(calm.dispersion, 1)))
    assert ((loud.high - loud.low) > 2 * (calm.high - calm.low)).all()
    # a reference as steady as theory or steadier gets theory's band, not a narrower one
    flat = mon.rate_signal(np.repeat([0, 1, 2], 100), np.tile(np.arange(100) < 10, 3),
                           range(0, 2))
    assert flat.dispersion == 0 and np.allclose(flat.high - flat.center,
                                                Z * np.sqrt(0.1 * 0.9 / 100))


def test_daily_calibration_by_hand():
    table = mon.daily_calibration([3, 3, 4, 4], [1, 0, 1, 1], [0.5, 0.25, 0.5, 0.5])
    assert table.index.tolist() == [3, 4] and table.index.name == "day"
    assert table["observed"].tolist() == [1, 2] and table["expected"].tolist() == [0.75, 1.0]
    assert table["variance"].tolist() == [0.25 + 0.1875, 0.5]
    assert table["ratio"].tolist() == pytest.approx([4 / 3, 2.0])


def test_a_calibrated_head_stays_in_band_and_an_underestimate_alarms():
    rng = np.random.default_rng(1)
    day = np.repeat(np.arange(20), 5_000)
    p = rng.uniform(0.005, 0.05, len(day))
    truth = np.where(day >= 12, 1.6 * p, p)     # from day 12 the head predicts too little
    labels = (rng.random(len(day)) < truth).astype(int)
    s = mon.calibration_signal(day, labels, p, range(0, 10))
    assert abs(s.center - 1) < 0.05 and s.dispersion < 3
    table = mon.alarm_table({"head": s}, wave_day=12)
    assert table.loc["head", "first alarm (day)"] == 13     # two days in a row: 12 and 13
    assert table.loc["head", "false alarms"] == 0
    # the band is measured around the reference level, not around 1
    shifted = mon.calibration_signal(day, labels, p / 2, range(0, 10))
    assert shifted.center == pytest.approx(2 * s.center)


def test_a_head_blind_to_the_wave_underestimates_hides_on_the_wave_day(world, live):
    # stand-ins for a model: the true probabilities, and the same with every post of the
    # wave's day stripped of its clickbait (a model that cannot see that a page turned)
    rows = live.log[live.live]
    args = rows["user_id"].to_numpy(), rows["post_id"].to_numpy(), rows["time"].to_numpy()
    true = nf.true_reactions(nf.truth_of(world, live.posts, live.post_truth), *args)
    blind_truth = live.post_truth.assign(clickbait=np.where(
        live.posts["created"] >= WAVE_DAY, 0, live.post_truth["clickbait"]))
    blind = nf.true_reactions(nf.truth_of(world, live.posts, blind_truth), *args)
    day = rows["day"].to_numpy()
    ratio = {(name, h): mon.daily_calibration(day, rows[h], p[h])["ratio"]
             for name, p in (("true", true), ("blind", blind)) for h in ("click", "hide")}
    assert (abs(ratio["true", "click"] - 1) < 0.05).all()
    assert (abs(ratio["true", "hide"] - 1) < 0.1).all()
    # before the wave the two agree; on its first day the blind head misses hides most
    assert ratio["blind", "hide"][WAVE_DAY - 1] == ratio["true", "hide"][WAVE_DAY - 1]
    assert ratio["blind", "hide"][WAVE_DAY] > ratio["true", "hide"][WAVE_DAY] + 0.25
    jump = {h: ratio["blind", h][WAVE_DAY] - ratio["true", h][WAVE_DAY] for h in ("click", "hide")}
    assert jump["hide"] > 2 * jump["click"] > 0


def test_live_signals_name_the_hide_rate_and_every_head():
    rng = np.random.default_rng(2)
    n = 3_000
    rows = pd.DataFrame({"day": np.repeat([14, 15, 16], n // 3),
                         **{h: (rng.random(n) < 0.2).astype(int) for h in nf.REACTIONS}})
    predicted = pd.DataFrame({h: np.full(n, 0.2) for h in nf.REACTIONS})
    signals = mon.live_signals(rows, predicted, range(14, 16))
    assert list(signals) == ["hide rate", *(f"{h} calibration" for h in nf.REACTIONS)]
    assert signals["hide rate"].center == pytest.approx(rows["hide"][:2000].mean())
    with pytest.raises(ValueError, match="one row per row"):
        mon.live_signals(rows, predicted.iloc[1:], range(14, 16))
    with pytest.raises(ValueError, match="lacks the columns"):
        mon.live_signals(rows.drop(columns="hide"), predicted, range(14, 16))


def test_signals_refuse_bad_input():
    with pytest.raises(TypeError, match="range"):
        mon.rate_signal([0, 1], [0, 1], [0])
    with pytest.raises(ValueError, match="no day of the signal"):
        mon.rate_signal([0, 1], [0, 1], range(5, 7))
    with pytest.raises(ValueError, match="0 or 1"):
        mon.rate_signal([0, 1], [0, 2], range(0, 2))
    with pytest.raises(ValueError, match="some events and some non-events"):
        mon.rate_signal([0, 1], [0, 0], range(0, 2))
    with pytest.raises(TypeError, match="integer days"):
        mon.rate_signal([0.5, 1.5], [0, 1], range(0, 2))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mon.daily_calibration([0, 0], [0, 1], [0.0, 0.5])
    with pytest.raises(ValueError, match="one value per row"):
        mon.daily_calibration([0, 0], [0, 1, 1], [0.5, 0.5])
    with pytest.raises(ValueError, match="level"):
        mon.rate_signal([0, 1], [0, 1], range(0, 2), level=1.0)
    with pytest.raises(ValueError, match="positive labels"):
        mon.calibration_signal([0, 1], [0, 0], [0.5, 0.5], range(0, 2))


def test_alarm_table_by_hand():
    # days 0..5; the wave from day 3; outside the band on days 1, 3, 4 and 5
    s = signal([1.0, 2.0, 1.0, 2.0, 2.0, 2.0], 0.5, 1.5, center=1.0, phi=2.5)
    quiet = signal([1.0] * 6, 0.5, 1.5)
    table = mon.alarm_table({"loud": s, "quiet": quiet}, wave_day=3)
    assert table.loc["loud", "first alarm (day)"] == 4      # day 3 and day 4 in a row
    assert table.loc["loud", "false alarms"] == 0           # day 1 alone is not an alarm
    assert pd.isna(table.loc["quiet", "first alarm (day)"])
    assert table.loc["loud", "dispersion"] == 2.5
    early = mon.alarm_table({"loud": s}, wave_day=5)
    assert early.loc["loud", "false alarms"] == 1 and early.loc["loud", "first alarm (day)"] == 5
    with pytest.raises(TypeError, match="DailySignal"):
        mon.alarm_table({"x": (1, 2)}, wave_day=3)


# --------------------------------------------------------------------------- the cost


def test_feed_day_holds_every_viewer_and_the_true_value(world, live):
    feed = mon.feed_day(world, live, WAVE_DAY + 1)
    c = feed.candidates
    assert len(c) == len(feed.gain) == len(feed.clickbait) and feed.clickbait.dtype == bool
    assert (c["time"] == WAVE_DAY + 1).all() and {"author_id", "media", "created"} <= set(c)
    assert (c["created"] < WAVE_DAY + 1).all() and (c["created"] >= WAVE_DAY - 1).all()
    truth = nf.truth_of(world, live.posts, live.post_truth)
    some = c.iloc[:100]
    true = nf.true_reactions(truth, some["user_id"].to_numpy(), some["post_id"].to_numpy(),
                             WAVE_DAY + 1.0)
    assert np.allclose(feed.gain[:100], nf.expected_value(true))
    # the wave's posts are among the candidates, and more of them are clickbait
    wave = c["created"].to_numpy() >= WAVE_DAY
    assert feed.clickbait[wave].mean() > feed.clickbait[~wave].mean()
    with pytest.raises(TypeError, match="LiveLog"):
        mon.feed_day(world, live.log, WAVE_DAY + 1)


def hand_feed():
    candidates = pd.DataFrame({"request": [0, 0, 0, 1, 1], "post_id": np.arange(5)})
    return mon.FeedDay(candidates, np.array([3.0, 1.0, -2.0, 2.0, 1.0]),
                       np.array([False, False, True, True, False]))


def test_score_feeds_by_hand():
    feed = hand_feed()
    scores = {"oracle": feed.gain, "bad": np.array([1.0, 2.0, 3.0, 0.0, 1.0])}
    table, per_viewer = mon.score_feeds(feed, scores, k=1)
    assert per_viewer["oracle"].tolist() == [1.0, 1.0]
    # "bad" puts the -2 post first for viewer 0 (nDCG@1 = -2/3) and the 1 for viewer 1 (1/2)
    assert per_viewer["bad"].tolist() == pytest.approx([-2 / 3, 0.5])
    assert table.loc["bad", "nDCG@1"] == pytest.approx((-2 / 3 + 0.5) / 2)
    # the top one: viewer 0's post 0 and viewer 1's post 3 (clickbait) for the oracle
    assert table.loc["oracle", "clickbait in top 1"] == 0.5
    assert table.loc["bad", "clickbait in top 1"] == 0.5
    table3, _ = mon.score_feeds(feed, scores)
    assert table3["clickbait in top 10"].tolist() == [0.4, 0.4]   # every candidate
    with pytest.raises(ValueError, match="one score per candidate"):
        mon.score_feeds(feed, {"short": [1.0, 2.0]})
    with pytest.raises(TypeError, match="FeedDay"):
        mon.score_feeds(feed.candidates, scores)


def test_ndcg_gain_is_paired_over_viewers():
    rng = np.random.default_rng(3)
    a = rng.uniform(0, 1, 500)
    per_viewer = pd.DataFrame({"a": a, "b": a + 0.05, "same": a})
    per_viewer.loc[7, "b"] = np.nan                 # an undefined viewer is left out
    gain, low, high = mon.ndcg_gain(per_viewer, "a", "b", seed=0)
    assert gain == pytest.approx(0.05) and low == pytest.approx(0.05)
    assert high == pytest.approx(0.05)              # paired: the noise in a cancels
    assert mon.ndcg_gain(per_viewer, "a", "same", seed=0) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="lacks the systems"):
        mon.ndcg_gain(per_viewer, "a", "c", seed=0)


# --------------------------------------------------------------------------- numbers, figure


def hand_signals():
    hide = signal([0.01, 0.011, 0.02, 0.021], 0.005, 0.015, center=0.01, first_day=14)
    cal = signal([1.1, 1.2, 1.9, 2.1], 0.8, 1.5, center=1.15, phi=0.7, first_day=14)
    click = signal([1.0, 1.0, 1.05, 1.1], 0.9, 1.1, first_day=14)
    return {"hide rate": hide, "hide calibration": cal, "click calibration": click}


def test_monitoring_numbers():
    signals = hand_signals()
    alarms = mon.alarm_table(signals, wave_day=16)
    out = mon.monitoring_numbers(signals, alarms)
    assert out["mon_first_alarm"] == 17 and out["mon_false_alarms"] == 0
    assert out["mon_hide_calibration_alarm"] == "alarms on day 17"
    assert out["mon_click_calibration_alarm"] == "does not alarm"
    assert out["mon_hide_calibration_ref"] == 1.15 and out["mon_hide_calibration_peak"] == 2.1
    assert out["mon_hide_calibration_phi"] == 0.7
    assert "mon_phi_low" not in out
    # with k reference days, 95 % of the dispersions lie in chi2(k - 1) / k when theory holds
    ranged = mon.monitoring_numbers(signals, alarms, reference=range(14, 21))
    assert ranged["mon_phi_low"] == pytest.approx(stats.chi2.ppf(0.025, 6) / 7)
    assert ranged["mon_phi_high"] == pytest.approx(stats.chi2.ppf(0.975, 6) / 7)
    rng = np.random.default_rng(4)
    phis = (rng.chisquare(6, 20_000) / 7)
    inside = (phis > ranged["mon_phi_low"]) & (phis < ranged["mon_phi_high"])
    assert abs(inside.mean() - 0.95) < 0.01
    quiet = {"click calibration": signals["click calibration"]}
    with pytest.raises(ValueError, match="no signal alarms"):
        mon.monitoring_numbers(quiet, mon.alarm_table(quiet, wave_day=16))


def test_feed_numbers():
    signals = hand_signals()
    table = pd.DataFrame({"nDCG@10": [0.6, 0.7, 1.0], "clickbait in top 10": [0.01, 0.03, 0.02]},
                         index=["EdgeRank", "stale counters", "oracle"])
    ratios = {"hide": pd.Series([1.2, 1.6], index=[16, 17])}
    out = mon.feed_numbers(table, (0.01, 0.005, 0.02), ratios, signals)
    assert out["mon_ndcg_edgerank"] == 0.6 and out["mon_bait_stale_counters"] == 0.03
    assert (out["mon_gain"], out["mon_gain_low"], out["mon_gain_high"]) == (0.01, 0.005, 0.02)
    assert out["mon_gain_verdict"] == "a clear gain"
    for gain, verdict in (((0.01, -0.01, 0.02), "not a clear difference"),
                          ((-0.02, -0.03, -0.01), "a clear loss")):
        assert mon.feed_numbers(table, gain, {}, signals)["mon_gain_verdict"] == verdict
    assert out["mon_hide_retrained"] == pytest.approx(1.4)
    assert out["mon_hide_deployed_after"] == pytest.approx(2.0)
    assert out["mon_hide_in_band"] == 1 and out["mon_days_after"] == 2
    with pytest.raises(ValueError, match="no calibration of the head"):
        mon.feed_numbers(table, (0, 0, 0), {"like": ratios["hide"]}, signals)
    with pytest.raises(ValueError, match="days the signal has not"):
        mon.feed_numbers(table, (0, 0, 0), {"hide": pd.Series([1.0], index=[30])}, signals)


def test_plot_monitoring_draws_both_panels():
    signals = hand_signals()
    fig, axes = plt.subplots(1, 2)
    mon.plot_monitoring(axes, signals, retrained={"hide": pd.Series([1.2, 1.1], index=[16, 17])},
                        wave_day=16, alarm_day=17, retrain_day=18)
    assert len(axes[0].lines) >= 3 and len(axes[1].lines) >= 4
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert "hide, retrained" in labels and "click, deployed" in labels
    with pytest.raises(ValueError, match="signals lacks"):
        mon.plot_monitoring(axes, signals, heads=("share",), wave_day=16)
    with pytest.raises(ValueError, match="two axes"):
        mon.plot_monitoring(axes[:1], signals, wave_day=16)
    plt.close(fig)
