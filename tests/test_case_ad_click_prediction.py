"""mlsd.cases.ad_click_prediction: chapter 11's plumbing, on hand-made data and on the world."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from mlsd.cases import ad_click_prediction as case  # noqa: E402
from mlsd.datasets import ad_click_prediction as acp  # noqa: E402
from mlsd.datasets import load  # noqa: E402
from mlsd.evaluation import metrics  # noqa: E402
from mlsd.systems.feature_store import FeatureStore  # noqa: E402


@pytest.fixture(scope="module")
def world():
    return load("ad_click_prediction", seed=0)


@pytest.fixture(scope="module")
def log(world):
    return case.join_impressions(world.observed, world.observed["impressions"])


def _frame(n=4):
    return pd.DataFrame({
        "age_band": ["18-24", "25-34", "18-24", "55+"][:n], "country": ["us", "br", "us", "fr"][:n],
        "device": "mobile", "placement": "feed", "hour": [1, 2, 1, 3][:n],
        "day_of_week": "mon", "category": ["gaming", "travel", "gaming", "auto"][:n],
        "format": "image", "advertiser_id": [1, 2, 1, 3][:n], "campaign_id": [1, 2, 1, 3][:n],
        "creative_id": [10, 20, 10, 30][:n],
        "interests": ["sports;gaming", "travel", "sports;gaming", "cars;music;tech"][:n],
    })


# --------------------------------------------------------------------------- keys


def test_keys_are_the_same_in_any_frame():
    frame = _frame()
    parts = case.key_parts(frame, [("interest", "category"), ("hour", "device")])
    rows, keys = parts[("interest", "category")]
    assert list(rows) == [0, 0, 1, 2, 2, 3, 3, 3]  # one key per declared interest
    assert keys[0] == keys[3] and keys[1] == keys[4]  # rows 0 and 2 are equal
    alone = case.key_parts(frame.iloc[[2]].reset_index(drop=True), [("interest", "category")])
    assert list(alone[("interest", "category")][1]) == list(keys[3:5])
    # the field name is part of the key: "hour = 1" is not "advertiser = 1"
    assert parts["hour"][1][0] != parts["advertiser_id"][1][0]
    assert case.mix(np.array([1], np.uint64), np.array([2], np.uint64)) != case.mix(
        np.array([2], np.uint64), np.array([1], np.uint64))


def test_vocabulary_drops_unseen_keys_and_hashing_keeps_them():
    rows, keys = case.feature_keys(_frame(), [])
    vocab = case.Vocabulary(keys[rows < 2])
    X = vocab.design(rows, keys, 4)
    assert X.shape == (4, len(np.unique(keys[rows < 2])))
    assert X[3].sum() < len(case.PLAIN) + 2  # row 3 has values rows 0-1 never had
    assert X[2].sum() == (rows == 2).sum()  # row 2 equals row 0: every key known
    H = case.hashed_design(rows, keys, 4, bits=10)
    assert H.shape == (4, 1024) and H.sum() == len(keys)  # every key lands somewhere


def test_stack_keys_shifts_the_second_frame():
    rows, keys = case.stack_keys((np.array([0, 1]), np.array([5, 6])),
                                 (np.array([0]), np.array([7])), first_rows=2)
    assert list(rows) == [0, 1, 2] and list(keys) == [5, 6, 7]


# --------------------------------------------------------------------------- metrics, baselines


def test_rate_baseline_shrinks_towards_the_overall_rate():
    fit = pd.DataFrame({"advertiser_id": [1, 1, 1, 1, 2], "clicked": [1, 1, 0, 0, 0]})
    scored = pd.DataFrame({"advertiser_id": [1, 2, 3]})
    p = case.rate_baseline(fit, scored, "advertiser_id", m=5)
    overall = 0.4
    assert p == pytest.approx([(2 + 5 * overall) / 9, (0 + 5 * overall) / 6, overall])
    with pytest.raises(ValueError, match="m must be"):
        case.rate_baseline(fit, scored, "advertiser_id", m=-1)


def test_unit_log_loss_averages_to_the_log_loss_and_scores_have_the_five_metrics():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.5, 400)
    y = (rng.random(400) < p).astype(int)
    assert case.unit_log_loss(y, p).mean() == pytest.approx(metrics.log_loss(y, p))
    assert set(case.ctr_scores(y, p)) == {"log loss", "NCE", "ROC-AUC", "PR-AUC", "ECE"}
    with pytest.raises(ValueError, match="shapes"):
        case.unit_log_loss(y, p[:-1])
    cal = case.calibration_of(y, p)
    assert cal["mean predicted / observed"] == pytest.approx(p.mean() / y.mean())


def test_compare_puts_the_baseline_at_0_and_the_oracle_at_1():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.3, 2000)
    y = (rng.random(2000) < p).astype(int)
    systems = {"base": np.full(2000, y.mean()), "model": np.clip(p * 1.2, 0, 1), "oracle": p}
    table, losses = case.compare(y, systems, "base", "oracle", "model")
    assert table.loc["base", "LL share"] == pytest.approx(0)
    assert table.loc["oracle", "LL share"] == pytest.approx(1)
    assert table.loc["oracle", "AUC share"] == pytest.approx(1)
    assert table.loc["model", "Δ vs final"] == 0 and table.loc["model", "± 95%"] == 0
    assert list(table.columns[-4:]) == ["LL share", "AUC share", "Δ vs final", "± 95%"]
    assert losses["model"].mean() == pytest.approx(table.loc["model", "log loss"])


def test_calibration_table_and_recalibration():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.3, 3000)
    y = (rng.random(3000) < p).astype(int)
    table = case.calibration_table({"a": y, "b": y}, {"a": {"x": p, "y": p / 2},
                                                      "b": {"x": p, "y": p}})
    assert list(table.index) == ["x", "y"] and table.columns[0] == ("a", "ECE")
    repaired = case.recalibrate(p / 3, y, p / 3)  # too low by a factor 3: both repairs fix it
    assert np.argsort(repaired["Platt"]).tolist() == np.argsort(p).tolist()  # same order
    for how in ("Platt", "isotonic"):
        assert repaired[how].mean() == pytest.approx(y.mean(), rel=0.05)
    scores = case.recalibrated_scores(p / 3, y, p / 3, y)
    assert scores["ECE, Platt"] < scores["ECE, as trained"]


def test_ctr_model_and_leaf_features_fit_and_predict(log):
    frame = log.iloc[:4000]
    model = case.CTRModel(0.1, [("hour", "device")]).fit(frame)
    p = model.predict_proba(frame.iloc[:50])
    assert p.shape == (50,) and ((0 < p) & (p < 1)).all()
    trees = case.TreeTable(frame, seed=0)
    table = trees.table(frame, fitting=True)
    assert list(table.columns[:len(case.CATEGORIES)]) == case.CATEGORIES
    leaf = case.LeafFeatures(table, frame["clicked"], np.arange(2000), seed=0, n_estimators=3)
    X = leaf.with_design(table, model.vocabulary.design(*case.feature_keys(frame, [("hour", "device")]), len(frame)))
    assert X.shape[0] == len(frame) and (X[:, :leaf.encoder.transform(leaf.leaves(table)).shape[1]].sum(axis=1) == 3).all()


# --------------------------------------------------------------------------- the auction


def _auction():
    bids = np.array([[1.0, 2.0], [3.0, 1.0]])
    true_p = np.array([[0.1, 0.04], [0.01, 0.2]])
    rows = pd.DataFrame({"advertiser_id": [1, 2, 1, 2]})
    return case.Auction(pd.DataFrame({"user_id": [0, 1]}), np.array([[5, 6], [5, 7]]), rows,
                        bids, true_p)


def test_auction_winners_and_expected_outcomes():
    auction = _auction()
    assert list(auction.winners(auction.true_p)) == [0, 1]  # 0.1 > 0.08; 0.03 < 0.2
    assert list(auction.winners(np.array([0.01, 0.1, 0.1, 0.1]))) == [1, 0]
    expected = auction.expected({"oracle": [0, 1]}, shares={"first": np.array([[1, 0], [1, 0]])})
    assert expected.loc["oracle", "expected CTR"] == pytest.approx(0.15)
    assert expected.loc["oracle", "expected revenue per 1,000 requests ($)"] == pytest.approx(
        1000 * (0.1 * 1 + 0.2 * 1) / 2)
    assert expected.loc["oracle", "first"] == 0.5
    calibration = auction.calibration({"arm": auction.true_p.ravel() * 2}, {"arm": [0, 1]})
    assert calibration.loc["arm"].tolist() == pytest.approx([2, 2])


def test_replay_ab_splits_the_traffic_and_pays_only_clicks():
    auction = _auction()
    clicked, revenue, treated = case.replay_ab(auction, {"control": np.array([1, 0]),
                                                         "treatment": np.array([0, 1])},
                                               n_traffic=10_000, rng=np.random.default_rng(0))
    assert treated.sum() == 5000 and (revenue[~clicked] == 0).all()
    assert set(np.round(revenue[clicked], 6)) <= {1.0, 2.0, 3.0}
    assert clicked[treated].mean() > clicked[~treated].mean()  # 0.15 against 0.025
    again = case.replay_ab(auction, {"control": np.array([1, 0]), "treatment": np.array([0, 1])},
                           n_traffic=10_000, rng=np.random.default_rng(0))
    assert np.array_equal(again[1], revenue)


def test_build_auction_respects_targeting(world, log):
    test = log[log["day"] >= acp.TEST_CUTOFF_DAY]
    auction = case.build_auction(world, test, 50, 5, np.random.default_rng(0))
    assert auction.bids.shape == auction.true_p.shape == auction.candidates.shape == (50, 5)
    rows = auction.rows
    targeted = rows["targeting"].to_numpy() != "broad"
    likes = rows["interests"].str.split(";")
    ok = [any(c in acp.MATCHES[i] for i in interests)
          for interests, c in zip(likes[targeted], rows["category"][targeted])]
    assert all(ok)  # an interest-targeted ad only for a user with a matching interest
    assert (np.sort(auction.candidates, axis=1)[:, 1:] != np.sort(auction.candidates, axis=1)[:, :-1]).all()


# --------------------------------------------------------------------------- serving


class _EchoModel:
    """predict_proba returns the ad's advertiser id / 100 and records the frame it saw."""

    def predict_proba(self, frame):
        self.frame = frame
        return frame["advertiser_id"].to_numpy() / 100


def test_feature_store_and_score_request(world, log, tmp_path):
    store = FeatureStore(tmp_path / "f.sqlite")
    known = acp.labels_at(log[log["day"] >= 14], 21)
    ads = case.write_feature_store(store, world.observed, known)
    assert store.count("ads") == len(ads) and store.count("users") == len(world.observed["users"])
    row = log.iloc[123]
    model = _EchoModel()
    context = {"day": row["day"], "second": row["second"], "device": row["device"],
               "placement": row["placement"]}
    ids = [row["creative_id"], ads["creative_id"].iloc[0]]
    p, ms = case.score_request(store, model, row["user_id"], context, ids)
    assert set(ms) == {"lookup", "features", "model"}
    served = model.frame.iloc[0]
    for column in ("advertiser_id", "category", "country", "interests", "hour", "day_of_week"):
        assert served[column] == row[column]  # the row the offline join built
    assert p[0] == row["advertiser_id"] / 100
    with pytest.raises(ValueError, match="unknown creative_id"):
        case.score_request(store, model, row["user_id"], context, [10**9])
    with pytest.raises(ValueError, match="unknown user_id"):
        case.score_request(store, model, 10**9, context, ids)
    latency, totals = case.latency_table({1: [ms, ms]})
    assert list(latency.columns.get_level_values(1)) == ["p50 ms", "p95 ms"]
    assert totals[1].iloc[0] == pytest.approx(sum(ms.values()))
    store.close()


# --------------------------------------------------------------------------- the stream


def _stream():
    # 4 impressions in hours 0, 0, 1, 2 of day 0; clicks after 30 min, never, 2 h, never
    day, second = np.zeros(4, int), np.array([100, 200, 3700, 7300])
    delay = np.array([1800.0, np.nan, 7200.0, np.nan])
    X = np.eye(4)
    return case.ClickStream(X, [1, 0, 1, 0], day, second, delay)


def test_click_stream_labels_each_hour_three_ways():
    stream = _stream()
    assert stream.hours(0, 1) == slice(0, 2) and stream.hours(-3, 1) == slice(0, 2)
    X, y = stream.naive(1)  # hour 1: impression 2, its click arrives in hour 3
    assert X.tolist() == [[0, 0, 1, 0]] and y.tolist() == [0]
    assert stream.eventual(1)[1].tolist() == [1]
    X, y = stream.wait_one_hour(1)  # hour 0's impressions, clicks arrived by 2:00
    assert y.tolist() == [1, 0]
    X, y = stream.fake_negatives(3)  # hour 3: no impression, impression 2's click arrives
    assert y.tolist() == [1] and X.tolist() == [[0, 0, 1, 0]]
    X, y = stream.fake_negatives(0)  # hour 0: two negatives, impression 0's click (0:31)
    assert y.tolist() == [0, 0, 1]
    assert stream.missing_share(slice(0, 4), 3600) == 0.5
    with pytest.raises(ValueError, match="sorted"):
        case.ClickStream(np.eye(2), [0, 0], [0, 0], [5, 1], [np.nan, np.nan])


def test_stream_learner_predicts_before_it_learns():
    hour = np.arange(24)  # one impression an hour on day 0, clicked every other hour
    X, y = np.eye(4)[hour % 4], (hour % 2 == 0).astype(int)
    stream = case.ClickStream(X, y, np.zeros(24, int), hour * 3600 + 10,
                              np.where(y == 1, 60.0, np.nan))
    frozen = LogisticRegression().fit(X[:4], y[:4])
    p, model = case.incremental(stream, frozen, 1e-3, 0, 0.5, stream.eventual, 0, 1)
    assert p.shape == (24,)
    assert p[0] == pytest.approx(frozen.predict_proba(X[:1])[0, 1])  # before any update
    assert p[4] != pytest.approx(frozen.predict_proba(X[4:5])[0, 1])  # after four updates
    assert not np.allclose(model.coef_, frozen.coef_)


def test_daily_retrain_and_excess_over_the_oracle():
    rng = np.random.default_rng(3)
    n = 24 * 6 * 20  # 20 impressions an hour for 6 days
    seconds = np.arange(n) * (6 * 86_400 // n)
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 0.3).astype(int)
    stream = case.ClickStream(X, y, seconds // 86_400, seconds % 86_400,
                              np.where(y == 1, 10.0, np.nan))
    p, base, log, seconds_taken = case.daily_retrain(stream, 1.0, 2, [2, 3, 4, 5])
    assert p.shape == base.shape == (n * 4 // 6,) and list(log.index) == [2, 3, 4, 5]
    assert log["rows"].iloc[0] == n * 2 // 6 and seconds_taken > 0
    rows, day = stream.days(2, 6), (seconds // 86_400)[stream.days(2, 6)]
    oracle = metrics.daily_log_loss(y[rows], np.full(len(p), 0.3), day)
    excess = case.excess_log_loss(oracle, y[rows], day, p[: len(p) // 2])
    assert list(excess.index) == [2, 3]
    missing = case.missing_clicks(stream, rows, 2, [2, 3, 4, 5])
    assert len(missing) == 4 and (missing >= 0).all()


def test_monitors_and_figures(log, world):
    import matplotlib.pyplot as plt

    frame = log[log["day"] < 4].reset_index(drop=True)
    stream = case.ClickStream(np.zeros((len(frame), 1)), frame["clicked"], frame["day"],
                              frame["second"], frame["click_delay_seconds"])
    rows = stream.days(1, 4)
    monitors = case.daily_monitors(frame, stream, stream.days(0, 1), [1, 2, 3],
                                   np.full(rows.stop - rows.start, 0.02),
                                   frame["day"].to_numpy()[rows])
    assert list(monitors.index) == [1, 2, 3] and (monitors["category-mix PSI"] >= 0).all()
    for fig in (case.plot_log_overview(log), case.plot_monitors(monitors, [1, 2, 3])):
        assert len(fig.axes) >= 3
        plt.close(fig)
