"""The video search world (Chapter 7): schema, queries and intents, grades, raters, clicks, slang."""

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from scipy import stats

from mlsd import datasets
from mlsd.book.seeding import make_rng
from mlsd.datasets import video_search as vs
from mlsd.evaluation.metrics import ndcg_at_k

K = vs.KNOBS
HIDDEN_COLUMNS = {"topic", "concept", "quality", "style", "clickbait", "tag_spam", "salt"}
UPLOADER_WORDS = {up for pairs in vs.TOPICS.values() for up, _ in pairs} | {up for up, _ in vs.CONCEPTS.values()}
SEARCHER_WORDS = {s for pairs in vs.TOPICS.values() for _, s in pairs} | {s for _, s in vs.CONCEPTS.values()}


@pytest.fixture(scope="module")
def world():
    return datasets.load("video_search")  # the stored files at seed 0


@pytest.fixture(scope="module")
def grades(world):
    return vs.grade_matrix(world.hidden["video_truth"])


def words_of(texts) -> set[str]:
    return {w for text in texts for w in text.split()}


# --------------------------------------------------------------------------- reproducibility and schema


def test_generate_is_deterministic_and_the_stored_files_round_trip(world):
    # the stored files were written by another process: equal tables mean the same seed gives
    # the same world, and the CSV round trip keeps empty titles, tags and descriptions as ""
    generated = vs.generate(vs.DEFAULT_SEED)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(generated, kind)) == sorted(getattr(world, kind))
        for table, frame in getattr(generated, kind).items():
            assert_frame_equal(getattr(world, kind)[table], frame)
    videos = world.observed["videos"]
    for field in ("title", "tags", "description"):
        assert (videos[field] == "").any() and not videos[field].isna().any()
    other = vs.generate(1)
    assert not other.observed["videos"].equals(generated.observed["videos"])
    assert not other.observed["searches"].equals(generated.observed["searches"])
    with pytest.raises(ValueError):
        vs.generate(-1)


def test_tables_and_columns_are_the_stated_ones(world):
    assert datasets.GENERATORS["video_search"] == (vs.generate, vs.DEFAULT_SEED)
    assert sorted(world.observed) == ["embeddings", "queries", "searches", "shown", "videos"]
    assert sorted(world.hidden) == ["query_intents", "salt", "search_intents", "video_truth"]
    described = {}
    for key in vs.COLUMNS:
        table, column = key.split(".")
        described.setdefault(table, []).append(column)
    described["embeddings"] = ["video_id"] + [f"e{j}" for j in range(K["embedding_dim"])]
    for table, frame in {**world.observed, **world.hidden}.items():
        assert list(frame.columns) == described[table], table
    for table, frame in world.observed.items():  # no hidden column leaks into what a team sees
        assert not HIDDEN_COLUMNS & set(frame.columns), table


def test_ids_are_rows_and_every_key_joins(world):
    t = {**world.observed, **world.hidden}
    n = K["n_videos"]
    for table in ("videos", "embeddings", "video_truth"):
        assert np.array_equal(t[table]["video_id"], np.arange(n)), table
    n_searches = K["n_searches"]
    assert np.array_equal(t["searches"]["search_id"], np.arange(n_searches))
    assert np.array_equal(t["search_intents"]["search_id"], np.arange(n_searches))
    assert np.array_equal(t["shown"]["search_id"], np.repeat(np.arange(n_searches), K["shown"]))
    assert np.array_equal(t["shown"]["position"], np.tile(np.arange(1, K["shown"] + 1), n_searches))
    assert t["shown"]["video_id"].between(0, n - 1).all()
    assert not t["shown"].duplicated(["search_id", "video_id"]).any()  # a video once per page
    assert t["searches"]["day"].between(0, K["days"] - 1).all() and t["searches"]["day"].is_monotonic_increasing
    sizes = K["n_rated_queries"]
    assert np.array_equal(t["queries"]["query_id"], np.arange(sum(sizes.values())))
    assert np.array_equal(t["query_intents"]["query_id"], t["queries"]["query_id"])
    assert t["queries"]["split"].value_counts().to_dict() == sizes
    for table in ("query_intents", "search_intents"):
        assert set(zip(t[table]["topic"], t[table]["concept"])) <= set(vs.INTENTS)
    truth = t["video_truth"]
    assert set(truth["topic"]) == set(vs.TOPICS) and set(truth["concept"]) == set(vs.CONCEPTS)
    assert truth["quality"].between(0, 1).all() and truth["style"].between(0, K["n_styles"] - 1).all()
    assert abs(truth["clickbait"].mean() - K["clickbait_share"]) < 0.015
    assert abs(truth["tag_spam"].mean() - K["tag_spam_share"]) < 0.015


def test_texts_hold_the_stated_vocabulary_and_empty_fields(world):
    videos = world.observed["videos"]
    assert abs((videos["tags"] == "").mean() - K["empty_tags_share"] * (1 - K["tag_spam_share"])) < 0.02
    assert abs((videos["description"] == "").mean() - K["empty_description_share"]) < 0.02
    known = UPLOADER_WORDS | SEARCHER_WORDS | set(vs.FILLER_TITLE) | set(vs.FILLER_TEXT) | set(vs.BAIT)
    for field in ("title", "tags", "description"):
        assert words_of(videos[field]) <= known, field
    # clickbait titles carry bait words; honest titles never do
    bait = videos["title"].map(lambda s: bool(set(s.split()) & set(vs.BAIT))).to_numpy()
    assert np.array_equal(bait, world.hidden["video_truth"]["clickbait"].to_numpy())


def test_the_vocabulary_mismatch_exists(world):
    videos = world.observed["videos"]
    searcher_only = SEARCHER_WORDS - UPLOADER_WORDS
    assert len(searcher_only) >= 30
    titles = words_of(videos["title"])
    assert not searcher_only & titles  # titles use the uploaders' words only
    # descriptions and tags use part of the searchers' words, so a search over them finds some
    assert searcher_only <= words_of(videos["description"]) | words_of(videos["tags"])
    # searchers type them: a large share of logged queries has a word no title holds
    queries = world.observed["searches"]["query"]
    unmatched = queries.map(lambda q: bool(set(q.split()) - titles - set(vs.FILLER_QUERY)))
    assert 0.4 < unmatched.mean() < 0.95


def test_the_embedding_separates_topics_better_than_concepts(world):
    e = world.observed["embeddings"].drop(columns="video_id").to_numpy()
    truth = world.hidden["video_truth"]

    def nearest_centroid_accuracy(labels):
        labels = labels.to_numpy()
        names = np.unique(labels)
        centroids = np.stack([e[labels == name].mean(0) for name in names])
        guess = names[((e[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)]
        return (guess == labels).mean()

    topic, concept = nearest_centroid_accuracy(truth["topic"]), nearest_centroid_accuracy(truth["concept"])
    assert topic > 0.98 and 0.5 < concept < topic


# --------------------------------------------------------------------------- queries and intents


def test_intent_prior_is_a_distribution_with_the_stated_shares():
    prior = vs.intent_prior().reshape(len(vs.TOPICS), len(vs.CONCEPTS) + 1)
    assert np.isclose(prior.sum(), 1)
    assert np.allclose(prior[:, 0] / prior.sum(1), K["no_concept_share"])
    topic = prior.sum(1)
    assert np.all(np.diff(topic) < 0)  # topics in the order of their popularity
    assert np.isclose(topic[0] / topic[1], 2 ** K["topic_popularity_zipf"])


def test_intent_posterior_rows_are_distributions_and_every_logged_query_is_possible(world):
    queries = world.observed["searches"]["query"]
    posterior = vs.intent_posterior(queries)
    assert posterior.shape == (len(queries), len(vs.INTENTS))
    assert np.all(posterior >= 0) and np.allclose(posterior.sum(1), 1)
    # the posterior is calibrated: summed over the log, it predicts the count of each true topic
    truth = world.hidden["search_intents"]
    topics = posterior.reshape(len(queries), len(vs.TOPICS), -1).sum(2)
    predicted = topics.sum(0)
    observed = truth["topic"].value_counts().reindex(vs.TOPIC_NAMES).to_numpy()
    assert np.all(np.abs(observed - predicted) < 4 * np.sqrt(predicted) + 5)
    # and the true intent gets the largest posterior for most searches
    true_intent = vs._intent_index(truth["topic"], truth["concept"])
    assert (posterior.argmax(1) == true_intent).mean() > 0.65
    assert (topics.argmax(1) == pd.Categorical(truth["topic"], categories=vs.TOPIC_NAMES).codes).mean() > 0.95


def intent_of(posterior_row, topic, concept):
    return posterior_row[vs.INTENTS.index((topic, concept))]


def test_a_query_naming_a_topic_and_a_concept_is_understood():
    soccer_night, order_free, soccer = vs.intent_posterior(["soccer goals night", "night goals soccer", "soccer"])
    assert intent_of(soccer_night, "football", "night") > 0.9
    assert np.array_equal(soccer_night, order_free)  # a bag of words: the order does not matter
    # without a concept word, the topic is sure and the mass is on 'any', the rest spread over concepts
    by_topic = soccer.reshape(len(vs.TOPICS), -1)
    assert np.isclose(by_topic[vs.TOPIC_NAMES.index("football")].sum(), 1)
    assert 0.5 < intent_of(soccer, "football", "any") < 1
    assert intent_of(soccer, "football", "night") > 0.02


@pytest.mark.parametrize("word, topics", [("python", ("coding", "pets")), ("bass", ("guitar", "fishing"))])
def test_an_ambiguous_word_splits_the_mass_between_two_topics(word, topics):
    posterior = vs.intent_posterior([word])[0].reshape(len(vs.TOPICS), -1).sum(1)
    shares = [posterior[vs.TOPIC_NAMES.index(t)] for t in topics]
    assert all(share > 0.1 for share in shares) and np.isclose(sum(shares), 1)
    # a second word settles it
    settled = vs.intent_posterior([f"{word} {vs.TOPICS[topics[1]][0][1]}"])[0].reshape(len(vs.TOPICS), -1).sum(1)
    assert settled[vs.TOPIC_NAMES.index(topics[1])] > 0.99


@pytest.mark.parametrize("query", ["", "footy", "soccer recipe", "soccer goals highlights match", "best best soccer"])
def test_an_impossible_query_is_refused(query):
    with pytest.raises(ValueError, match="cannot come from any intent"):
        vs.intent_posterior([query])


@pytest.mark.parametrize("intent", [("football", "night"), ("coding", "any"), ("pets", "aerial")])
def test_the_enumerated_query_distribution_matches_the_sampler(intent):
    dist = vs._query_distribution(*intent)
    assert np.isclose(sum(dist.values()), 1)
    n = 20_000
    sampled = vs._sample_queries(make_rng(3, "test"), np.full(n, vs.INTENTS.index(intent)))
    assert all(1 <= len(q.split()) <= 4 for q in sampled)
    counts = pd.Series([tuple(sorted(q.split())) for q in sampled]).value_counts()
    assert set(counts.index) <= set(dist)
    # chi-square over the queries expected at least 5 times, the rest pooled
    keys = sorted(dist, key=dist.get, reverse=True)
    expected = np.array([dist[k] for k in keys]) * n
    seen = counts.reindex(keys, fill_value=0).to_numpy()
    big = expected >= 5
    f_exp, f_obs = np.r_[expected[big], expected[~big].sum()], np.r_[seen[big], seen[~big].sum()]
    assert stats.chisquare(f_obs, f_exp).pvalue > 1e-3


# --------------------------------------------------------------------------- grades


def test_grade_matrix_follows_its_rules_on_hand_made_videos():
    videos = pd.DataFrame({
        "topic": ["cooking", "cooking", "guitar", "cooking", "cooking", "guitar"],
        "concept": ["night", "outdoor", "night", "night", "outdoor", "night"],
        "quality": [0.9, 0.9, 0.9, 0.2, 0.2, 0.2],
    })
    g = vs.grade_matrix(videos)
    assert g.shape == (len(vs.INTENTS), 6) and g.dtype == np.int8
    # topic and concept 3, topic only 1, other topic 0; low quality one less (never below 0)
    assert g[vs.INTENTS.index(("cooking", "night"))].tolist() == [3, 1, 0, 2, 0, 0]
    # an intent with no concept: every video of its topic is a 3
    assert g[vs.INTENTS.index(("cooking", "any"))].tolist() == [3, 3, 0, 2, 2, 0]
    assert g[vs.INTENTS.index(("guitar", "night"))].tolist() == [0, 0, 3, 0, 0, 2]


def test_grades_are_0_to_3_and_most_videos_answer_no_intent(world, grades):
    assert grades.shape == (len(vs.INTENTS), K["n_videos"])
    assert grades.min() == 0 and grades.max() == 3
    assert set(np.unique(grades)) == {0, 1, 2, 3}
    # every intent has at least ten videos of grade 3 at seed 0
    assert (grades == 3).sum(1).min() >= 10


def test_expected_grades_is_the_posterior_times_the_grades(world, grades):
    queries = world.observed["queries"]["query"].iloc[:50]
    expected = vs.expected_grades(world, queries)
    assert np.allclose(expected, vs.intent_posterior(queries) @ grades)
    assert expected.min() >= 0 and expected.max() <= 3


def test_ranking_by_the_true_grades_is_perfect(world):
    test = world.observed["queries"].query("split == 'test'")["query_id"].to_numpy()[:20]
    true = vs.true_grades(world, test)
    assert true.shape == (len(test), K["n_videos"]) and true.dtype == np.int8
    intents = world.hidden["query_intents"].set_index("query_id").loc[test]
    assert np.array_equal(true, vs.grade_matrix(world.hidden["video_truth"])[
        vs._intent_index(intents["topic"], intents["concept"])])
    for row in true:
        relevance = {int(v): int(row[v]) for v in np.flatnonzero(row)}
        assert ndcg_at_k(np.argsort(-row, kind="stable")[:10], relevance, 10) == pytest.approx(1.0)
        assert ndcg_at_k(np.argsort(row, kind="stable")[:10], relevance, 10) == 0.0


# --------------------------------------------------------------------------- raters


def test_raters_are_consistent_and_one_grade_off_at_the_stated_rate(world):
    rng = np.random.default_rng(0)
    q = np.repeat(np.arange(1_000), 100)
    v = rng.integers(0, K["n_videos"], len(q))
    rated = vs.rate(world, q, v)
    assert rated.dtype == np.int8 and rated.min() >= 0 and rated.max() <= 3
    # the same pair gets the same grade, whatever else is rated with it
    order = rng.permutation(len(q))[:5_000]
    assert np.array_equal(vs.rate(world, q[order], v[order]), rated[order])
    assert np.array_equal(vs.rate(world, q, v), rated)
    truth = vs.true_grades(world, np.arange(1_000))[q, v]
    assert np.abs(rated.astype(int) - truth).max() == 1
    # every grade is off at the stated rate: from 1 or 2 either way, from 0 up, from 3 down
    inner = (truth == 1) | (truth == 2)
    assert abs((rated[inner] != truth[inner]).mean() - K["rater_error"]) < 0.02
    assert abs((rated[~inner] != truth[~inner]).mean() - K["rater_error"]) < 0.01
    assert (rated[truth == 0] >= 0).all() and (rated[truth == 3] <= 3).all()
    # the errors are not biased up or down on inner grades
    up, down = (rated[inner] > truth[inner]).mean(), (rated[inner] < truth[inner]).mean()
    assert abs(up - down) < 0.03
    assert len(vs.rate(world, [], [])) == 0


def test_true_grades_refuse_unknown_queries(world):
    with pytest.raises(ValueError, match="unknown query ids"):
        vs.true_grades(world, [0, 1_000])


@pytest.mark.parametrize("query_ids, video_ids, message", [
    ([0, 1], [0], "of one length"),
    ([[0]], [[0]], "1-d"),
    ([0], [K["n_videos"]], "video_ids must be in"),
    ([0], [-1], "video_ids must be in"),
    ([1_000], [0], "unknown query ids"),
])
def test_bad_rating_requests_are_refused(world, query_ids, video_ids, message):
    with pytest.raises(ValueError, match=message):
        vs.rate(world, query_ids, video_ids)


# --------------------------------------------------------------------------- clicks


def test_the_logged_clicks_are_position_biased(world):
    shown = world.observed["shown"]
    by_position = shown.groupby("position")["clicked"].mean().to_numpy()
    assert by_position[0] > 2 * by_position[-1] and by_position[0] > by_position[4] > by_position[-1]
    assert 0.03 < shown["clicked"].mean() < 0.3


def test_clicks_fall_with_position_and_rise_with_grade(world, grades):
    intents = world.hidden["search_intents"].iloc[:8_000]
    shown = np.random.default_rng(1).integers(0, K["n_videos"], (len(intents), 10))
    # put a relevant video (grade 3) in a random slot of half the lists
    idx = vs._intent_index(intents["topic"], intents["concept"])
    best = np.array([np.flatnonzero(grades[j] == 3)[0] for j in idx])
    rows = np.arange(0, len(shown), 2)
    slots = np.random.default_rng(2).integers(0, 10, len(rows))
    shown[rows] = np.where(shown[rows] == best[rows, None], (best[rows, None] + 1) % K["n_videos"], shown[rows])
    shown[rows, slots] = best[rows]
    clicked = vs.clicks(world, intents, shown)
    assert clicked.shape == shown.shape and clicked.dtype == bool
    assert np.array_equal(clicked, vs.clicks(world, intents, shown))  # reproducible
    g = grades[idx[:, None], shown]
    rate_by_position = [clicked[:, i][g[:, i] == 0].mean() for i in range(10)]
    assert rate_by_position[0] > 2.5 * rate_by_position[-1]
    assert np.all(np.diff(np.convolve(rate_by_position, np.ones(3) / 3, "valid")) < 0.005)
    assert clicked[g == 3].mean() > 4 * clicked[g == 0].mean()


def test_empty_slots_are_never_clicked_and_bad_shapes_are_refused(world):
    intents = world.hidden["search_intents"].iloc[:500]
    shown = np.random.default_rng(3).integers(0, K["n_videos"], (500, 5))
    shown[:, 1::2] = -1
    clicked = vs.clicks(world, intents, shown)
    assert not clicked[:, 1::2].any() and clicked[:, ::2].any()
    with pytest.raises(ValueError, match="one row per search"):
        vs.clicks(world, intents, shown[:-1])
    with pytest.raises(ValueError, match="one row per search"):
        vs.clicks(world, intents, shown[:, 0])
    with pytest.raises(ValueError, match="video ids"):
        vs.clicks(world, intents, np.full((500, 5), K["n_videos"]))
    with pytest.raises(ValueError, match="video ids"):
        vs.clicks(world, intents, np.full((500, 5), -2))


# --------------------------------------------------------------------------- the new slang


def test_slang_is_adopted_at_the_stated_share_and_only_by_the_topics_searchers(world):
    none, hidden = vs.new_slang(world, 2_000, first_day=28, n_days=2, slang_share=0.0)
    assert not none["query"].str.contains("footy").any()
    assert list(none.columns) == ["search_id", "day", "query", "retry"]
    assert list(hidden.columns) == ["search_id", "topic", "concept"]
    assert none["day"].between(28, 29).all() and none["day"].is_monotonic_increasing
    football = (hidden["topic"] == "football").to_numpy()
    assert football.sum() > 100
    every, hidden_every = vs.new_slang(world, 2_000, first_day=28, n_days=2, slang_share=1.0)
    pd.testing.assert_frame_equal(hidden_every, hidden)  # the same searchers, only the words change
    has_slang = every["query"].map(lambda q: "footy" in q.split()).to_numpy()
    assert np.array_equal(has_slang, football)  # adopters always carry the slang, others never
    # the slang takes the place of one word: the rest of the query is unchanged
    for before, after in zip(none["query"][football], every["query"][football]):
        assert len(before.split()) == len(after.split())
        assert len(set(before.split()) - set(after.split())) == 1
    assert np.array_equal(every["retry"], none["retry"])
    # a share per day
    ramp, hidden_ramp = vs.new_slang(world, 2_000, first_day=28, n_days=2, slang_share=[0.0, 1.0])
    slang = ramp["query"].map(lambda q: "footy" in q.split()).to_numpy()
    ramp_football = (hidden_ramp["topic"] == "football").to_numpy()
    assert not slang[ramp["day"].to_numpy() == 28].any()
    assert np.array_equal(slang[ramp["day"].to_numpy() == 29], ramp_football[ramp["day"].to_numpy() == 29])


def test_the_slang_is_a_new_word(world):
    searches, _ = vs.new_slang(world, 2_000, first_day=28, n_days=2, slang_share=1.0)
    videos = world.observed["videos"]
    for field in ("title", "tags", "description"):
        assert "footy" not in words_of(videos[field])
    assert "footy" not in words_of(world.observed["searches"]["query"])
    assert "footy" not in words_of(world.observed["queries"]["query"])
    assert "footy" not in words_of(searches["retry"])  # a retry is a fresh query without the slang
    vs.intent_posterior(searches["retry"])  # every retry is a query the world can produce
    with pytest.raises(ValueError, match="cannot come from any intent"):
        vs.intent_posterior(searches["query"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(slang_share=1.5), "slang_share"),
    (dict(slang_share=[0.5, -0.1]), "slang_share"),
    (dict(word="football"), "searchers' words"),   # the uploaders' word, not the searchers'
    (dict(topic="curling"), "searchers' words"),
    (dict(slang="soccer"), "new word"),
    (dict(slang="goal!"), "new word"),
    (dict(n_searches=0), "n_searches"),
    (dict(n_days=0), "n_days"),
    (dict(first_day=-1), "first_day"),
    (dict(first_day=27), "after the log's last day"),
    (dict(slang="outdoors"), "new word"),   # a concept's word
    (dict(slang="amazing"), "new word"),    # a bait word
    (dict(slang="subscribe"), "new word"),  # filler
])
def test_bad_slang_arguments_are_refused(world, kwargs, message):
    args = dict(n_searches=100, first_day=28, n_days=2, slang_share=0.5) | kwargs
    with pytest.raises(ValueError, match=message):
        vs.new_slang(world, **args)


# --------------------------------------------------------------------------- new uploads


def test_new_uploads_continue_the_corpus_and_the_functions_accept_them(world):
    n = K["n_videos"]
    t = vs.new_uploads(world, 300, first_day=28, n_days=3)
    for table in ("videos", "embeddings", "video_truth"):
        assert np.array_equal(t[table]["video_id"], np.arange(n + 300)), table
        assert_frame_equal(t[table].iloc[:n], {**world.observed, **world.hidden}[table])
    new = t["videos"].iloc[n:]
    assert new["upload_day"].between(28, 30).all()
    # days old: far fewer views than the stored videos
    assert new["views"].median() < 0.1 * world.observed["videos"]["views"].median()
    assert set(t["video_truth"]["topic"].iloc[n:]) <= set(vs.TOPICS)
    # grades, raters and clicks cover the new ids
    assert vs.grade_matrix(t["video_truth"]).shape == (len(vs.INTENTS), n + 300)
    assert vs.rate(t, [0, 1], [n, n + 299]).shape == (2,)
    with pytest.raises(ValueError, match="video_ids must be in"):
        vs.rate(world, [0], [n])
    with pytest.raises(ValueError, match="after the last upload"):
        vs.new_uploads(world, 300, first_day=27, n_days=3)
    again = vs.new_uploads(world, 300, first_day=28, n_days=3)
    assert_frame_equal(again["videos"], t["videos"])
    assert_frame_equal(again["embeddings"], t["embeddings"])
