"""mlsd.cases.visual_search: Chapter 5's plumbing, checked against definitions and by hand."""

import functools

import numpy as np
import pandas as pd
import pytest

from mlsd.cases import visual_search as case
from mlsd.datasets import visual_search as vs
from mlsd.evaluation import metrics


@functools.cache
def world():
    return vs.generate(0)


def test_normalise_and_search_rank_by_cosine():
    rng = np.random.default_rng(0)
    c, q = rng.normal(size=(50, 8)), rng.normal(size=(5, 8))
    cn, qn = case.normalise(c), case.normalise(q)
    np.testing.assert_allclose(np.linalg.norm(cn, axis=1), 1, rtol=1e-6)
    want = np.argsort(-(qn @ cn.T), axis=1, kind="stable")[:, :3]
    np.testing.assert_array_equal(case.search(qn, cn, 3), want)
    assert (case.normalise(np.zeros((1, 3))) == 0).all()
    with pytest.raises(ValueError, match="dimensions"):
        case.search(qn, cn[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        case.normalise(np.ones(3))


def test_hand_features_ignore_position_and_chunking():
    rng = np.random.default_rng(1)
    pixels = np.zeros((3, 16, 16, 3), np.float32)
    pixels[:, 4:8, 4:8] = rng.random(3)[:, None, None, None] * [1, 0.5, 0.2]
    shifted = np.roll(pixels, 5, axis=2)                 # the same object, moved
    np.testing.assert_allclose(case.hand_features(pixels), case.hand_features(shifted),
                               atol=1e-6)
    many = rng.random((7, 16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(case.hand_features(many, chunk=3), case.hand_features(many),
                               rtol=1e-6)
    assert case.hand_features(many).shape == (7, 72)
    with pytest.raises(ValueError, match="photos, height, width, 3"):
        case.hand_features(many[..., 0])


def test_ranking_metrics_match_the_one_list_definitions():
    w = world()
    catalogue = w.observed["catalogue"]
    rng = np.random.default_rng(2)
    queries = rng.choice(len(w.observed["queries"]), 15, replace=False)
    truth = w.hidden["query_truth"]["product_id"].to_numpy()
    ranked = []
    for q in queries:   # a few of the product's photos among random ones: every metric moves
        own = catalogue.loc[catalogue["product_id"] == truth[q], "image_id"].to_numpy()
        row = np.r_[rng.choice(own, rng.integers(0, 4), replace=False),
                    rng.choice(len(catalogue), 12, replace=False)]
        ranked.append(rng.permutation(np.unique(row))[:10])
    ranked = np.array(ranked)
    got = case.ranking_metrics(w, queries, ranked)
    reference = []
    for q, row in zip(queries, ranked):
        grades = vs.relevance(w, [q], catalogue["image_id"].to_numpy())[0]
        graded = {int(i): int(g) for i, g in zip(catalogue["image_id"], grades) if g > 0}
        product = {i for i, g in graded.items() if g == 2}
        row = list(row)
        reference.append({"nDCG@10": metrics.ndcg_at_k(row, graded, 10),
                          "MRR@10": metrics.reciprocal_rank(row, product, 10),
                          "hit rate@10": metrics.hit_rate_at_k(row, product, 10),
                          "recall@10": metrics.recall_at_k(row, product, 10),
                          "precision@10 (same category)": metrics.precision_at_k(
                              row, set(graded), 10)})
    want = pd.DataFrame(reference).mean()
    for name, value in got.items():
        assert value == pytest.approx(want[name], rel=1e-9), name
    with pytest.raises(ValueError, match=">= 10"):
        case.ndcg_at_10(w, queries, ranked[:, :5])


def test_exact_neighbours_and_recall():
    rng = np.random.default_rng(3)
    c = case.normalise(rng.normal(size=(300, 6)))
    q = case.normalise(rng.normal(size=(25, 6)))
    exact = case.ExactNeighbours(q, c, k=5, block=7)
    np.testing.assert_array_equal(exact.ids, np.argsort(-(q @ c.T), axis=1, kind="stable")[:, :5])
    assert exact.recall(exact.ids) == 1.0
    half = exact.ids.copy()
    half[:, 3:] = -1                                     # faiss's padding never counts
    assert exact.recall(half) == pytest.approx(0.6)
    assert exact.recall(exact.ids[:4], rows=np.arange(4)) == 1.0
    with pytest.raises(ValueError, match="for the 25 queries"):
        exact.recall(exact.ids[:3])


def test_time_per_query_keeps_the_fastest_round():
    calls = []
    seconds = case.time_per_query({"a": calls.append}, np.zeros((4, 2)), rounds=2)
    assert len(calls) == 2 * (1 + 4) and seconds["a"] >= 0


def test_duplicate_groups_join_the_first_earlier_copy():
    photos = np.array([[0.0, 0], [0.001, 0], [1, 1], [0, 0.002], [5, 5], [5, 5.01]])
    group = case.duplicate_groups(photos, np.array([[0, 1, 2, 3], [4, 5, 5, 5]])[:1], 0.05)
    np.testing.assert_array_equal(group, [0, 0, 2, 0, 4, 5])   # listing 2 not given
    group = case.duplicate_groups(photos, np.array([[0, 1, 2], [3, 4, 5]]), 0.05)
    np.testing.assert_array_equal(group, [0, 0, 2, 3, 4, 4])   # only within a listing


def test_list_shares():
    ranked = np.array([[0, 1, 2], [3, 4, 5]])
    shares = case.list_shares(ranked, group=np.array([0, 0, 2, 3, 4, 5]),
                              blocked=np.array([False] * 5 + [True]), k=3)
    assert shares == {"lists with a repeated photo": 0.5, "lists with a blocked product": 0.5}


def test_expected_rate_and_the_simulated_test():
    p = np.array([[0.5, 0.5], [0.0, 0.0]])
    assert case.expected_rate(p) == pytest.approx(0.375)
    assert case.expected_rate(p, np.array([[True, False]] * 2)) == pytest.approx(0.25)
    ones, zeros = np.ones((3, 2)), np.zeros((3, 2))
    results = case.simulate_click_test((zeros, ones), (zeros > 0, ones > 0), 500,
                                       np.random.default_rng(0))
    ctr = results["search CTR"]
    assert (ctr.rate_a, ctr.rate_b, ctr.n_a, ctr.n_b) == (0.0, 1.0, 500, 500)
    assert results["exact-product click rate"].rate_b == 1.0
    with pytest.raises(ValueError, match="one"):
        case.simulate_click_test((zeros, ones[:2]), (zeros > 0, ones > 0), 5,
                                 np.random.default_rng(0))


def test_scale_out():
    table = case.scale_out({"1M": 1_000_000}, {"flat": 264, "pq": 24}, usable_gb=0.1)
    assert table.loc["1M", "flat (GB)"] == pytest.approx(0.264)
    assert table.loc["1M", "machines, flat"] == 3 and table.loc["1M", "machines, pq"] == 1
    with pytest.raises(ValueError, match="usable_gb"):
        case.scale_out({"1M": 1}, {"flat": 1}, 0)


def test_a_stale_index_files_new_vectors_without_moving_its_centroids():
    rng = np.random.default_rng(4)
    vectors = case.normalise(rng.normal(size=(400, 8)))
    index = case.stale_index(vectors, np.arange(300), np.arange(300, 400), 4, seed=0, niter=5)
    assert case.faiss_list_sizes(index).sum() == 400
    exact = case.ExactNeighbours(vectors[290:310], vectors, k=5)   # 10 of them new
    import faiss

    state = case.ivf_state(index, exact, np.arange(300, 400), faiss.SearchParametersIVF(nprobe=4))
    assert state["recall@5 (all)"] == 1.0 == state["recall@5 (new products)"]   # all probed
    assert state["scanned per query (all)"] == 400


def test_daily_d_pools_a_window_of_days():
    reference = np.linspace(0, 1, 200)
    values, days = np.r_[np.linspace(0, 1, 50), np.linspace(0.5, 1.5, 50)], np.repeat([1, 2], 50)
    d = case.daily_d(reference, values, days, window=1)["KS D"]
    assert list(d.index) == [1, 2] and d[1] < 0.05 < 0.4 < d[2]
    assert list(case.daily_d(reference, values, days, window=2).index) == [2]


def test_by_week_folds_days_into_weeks_and_leaves_missing_days_blank():
    daily = pd.DataFrame({"photos": [5, 6, 7, 8, 9], "alarm": [False, True, False, True, True]},
                         index=[11, 12, 13, 14, 16])   # day 10 and day 15 missing
    table = case.by_week(daily, first_day=10, days=3)
    assert list(table.columns) == [1, 2, 3]
    assert list(table.index) == [("10-12", "photos"), ("10-12", "alarm"), ("13-15", "photos"),
                                 ("13-15", "alarm"), ("16-16", "photos"), ("16-16", "alarm")]
    assert table.loc[("10-12", "photos")].tolist() == ["", 5, 6]
    assert table.loc[("13-15", "alarm")].tolist() == [False, True, ""]
    assert table.loc[("16-16", "photos")].tolist() == [9, "", ""]
    assert type(table.loc[("10-12", "photos"), 2]) is int or isinstance(
        table.loc[("10-12", "photos"), 2], np.integer)   # 5, not 5.0
    with pytest.raises(ValueError, match="first_day"):
        case.by_week(daily, first_day=12)


def test_phrases_follow_the_numbers():
    phrases = case.freshness_phrases(1.0, 0.05, 1.0)
    assert phrases["scale_new_in_top_list"].data == "all of them"
    assert "cost recall" in phrases["scale_recall_phrase"].data
    monitor = pd.DataFrame({"KS D": [0.1, 0.1, 0.5, 0.5, 0.1, 0.3],
                            "alarm": [False, False, True, True, False, True]},
                           index=[1, 2, 3, 4, 5, 6])
    story = case.monitor_phrases(monitor, drift_day=3, wave_days=2, window=1, delay=0)
    assert story["mon_alarm_days"] == 2
    assert "at most 0.100" in story["mon_quiet_phrase"].data
    assert "on 1 of the 2 ordinary days after it (day 6)" in story["mon_after_wave"].data


def test_pad_lists_and_expected_rates():
    np.testing.assert_array_equal(case.pad_lists([[3, 1], [2]], 3), [[3, 1, -1], [2, -1, -1]])
    with pytest.raises(ValueError, match="longer"):
        case.pad_lists([[1, 2, 3]], 2)
    rates = case.expected_rates({"a": np.array([[0.5, 0.5]])}, {"a": np.array([[2, 0]])})
    assert rates.loc["a"].tolist() == [0.75, 0.5]


def test_category_fill_takes_allowed_photos_of_the_query_category():
    w = world()
    products, catalogue = w.observed["products"], w.observed["catalogue"]
    allowed = np.arange(0, len(catalogue), 2)
    fill = case.category_fill(w, np.arange(5), allowed, 4)
    truth = w.hidden["query_truth"]["product_id"].to_numpy()[:5]
    category = products["category"].to_numpy()
    photo_category = category[catalogue["product_id"].to_numpy()]
    assert fill.shape == (5, 4) and np.isin(fill, allowed).all()
    assert (photo_category[fill] == category[truth][:, None]).all()


def test_one_query_searchers_answer_one_query_each():
    import faiss

    rng = np.random.default_rng(5)
    c = case.normalise(rng.normal(size=(300, 8)))
    flat = faiss.IndexFlatIP(8)
    flat.add(c)
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(8), 8, 4, faiss.METRIC_INNER_PRODUCT)
    ivf.train(c)
    ivf.add(c)
    hnsw = faiss.IndexHNSWFlat(8, 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.add(c)

    class Numpy:
        def search(self, q, k, nprobe):
            return np.argsort(-(c @ q))[:k], None

    searchers = case.one_query_searchers(c, flat, Numpy(), ivf, hnsw, [4], [64], k=3)
    want = np.argsort(-(c @ c[7]))[:3]
    assert set(searchers) == {("exact, numpy", None), ("exact, faiss", None),
                              ("IVF, numpy", 4), ("IVF, faiss", 4), ("HNSW, faiss", 64)}
    np.testing.assert_array_equal(searchers[("exact, numpy", None)](c[7]), want)
    np.testing.assert_array_equal(searchers[("IVF, faiss", 4)](c[7])[1][0], want)


def test_number_bundles_name_what_the_prose_quotes():
    recall = pd.Series({("IVF, numpy", 1): 0.8, ("IVF, numpy", 2): 0.97,
                        ("IVF, faiss", 1): 0.85, ("IVF, faiss", 2): 0.96,
                        ("HNSW, faiss", 10): 0.9, ("HNSW, faiss", 20): 0.99})
    ann = case.ann_numbers(recall, 2, 0.95, 0.1)
    assert ann["ann_ivf_max_gap"] == pytest.approx(0.05)
    assert ann["ann_hnsw_recall_min"] == 0.9 and "border" in ann["ann_nprobe1_phrase"].data
    qps = pd.Series({("exact, numpy", None): 100.0, ("exact, faiss", None): 200.0,
                     ("IVF, numpy", 2): 400.0, ("IVF, faiss", 2): 1000.0})
    speed = case.speed_numbers(qps, 2)
    assert speed["ann_speedup_vs_flat"] == 5 and speed["ann_faiss_over_numpy"] == 2.5
    recovery = pd.DataFrame({"new-style queries": [0.5, 0.7], "old queries (test)": [0.6, 0.6]},
                            index=["control", "retrained"])
    gains = {"new-style queries": (0.1, 0.3), "old queries (test)": (-0.01, 0.02)}
    numbers = case.recovery_numbers(recovery, gains, "retrained", "control", 10, 123)
    assert numbers["mon_retrained_new"] == 0.7 and numbers["mon_gain_new_low"] == 0.1
    assert numbers["mon_old_phrase"].data == "no detectable difference"
    assert (numbers["mon_retrain_epochs"], numbers["mon_catalogue_size"]) == (10, 123)
    table = case.scale_out({"100M": 100_000_000, "1B": 1_000_000_000},
                           {"IVF-Flat": 264, "IVF-PQ": 24}, 32)
    scale = case.scale_numbers(table, 64, 32, 512, 205.0)
    assert scale["scale_machines_flat_100m"] == 1 and "fits" in scale["scale_fit_phrase"].data
