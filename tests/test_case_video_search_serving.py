"""Chapter 7's serving plumbing: pages' hidden truth, the online metrics, appending to the
index, stage timings and the search app."""

import httpx
import numpy as np
import pandas as pd
import pytest

from mlsd.cases import video_search as case
from mlsd.datasets import video_search as vs
from mlsd.evaluation import experiments as ab
from mlsd.systems.serving import BackgroundServer

FIELDS = ("title", "tags", "description")


# --------------------------------------------------------------------------- page_truth


def _tables():
    truth = pd.DataFrame({"video_id": [0, 1, 2], "topic": ["cooking", "cooking", "cars"],
                          "concept": ["night", "kids", "night"], "quality": [0.9, 0.9, 0.1],
                          "style": [0, 0, 0], "clickbait": [False, True, False],
                          "tag_spam": [False, False, False]})
    return {"video_truth": truth}


def test_page_truth_reads_grades_by_intent_and_empties_get_nothing():
    intents = pd.DataFrame({"topic": ["cooking", "cars"], "concept": ["night", "any"]})
    grades, bait = case.page_truth(_tables(), intents, np.array([[0, 1, -1], [2, 0, 1]]))
    expected = vs.grade_matrix(_tables()["video_truth"])
    row = {intent: i for i, intent in enumerate(vs.INTENTS)}
    assert grades[0].tolist() == [expected[row["cooking", "night"], 0],
                                  expected[row["cooking", "night"], 1], 0]
    assert grades[0, 0] == 3 and grades[0, 1] == 1           # topic and concept; topic only
    assert grades[1, 0] == expected[row["cars", "any"], 2]
    assert bait.tolist() == [[False, True, False], [False, False, True]]


def test_page_truth_validates_its_inputs():
    intents = pd.DataFrame({"topic": ["cooking"], "concept": ["night"]})
    with pytest.raises(ValueError, match="one row per intent"):
        case.page_truth(_tables(), intents, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="video ids 0..2"):
        case.page_truth(_tables(), intents, np.array([[3]]))
    with pytest.raises(ValueError, match="integer"):
        case.page_truth(_tables(), intents, np.array([[0.5]]))
    with pytest.raises(ValueError, match="not an intent"):
        case.page_truth(_tables(), pd.DataFrame({"topic": ["opera"], "concept": ["any"]}),
                         np.array([[0]]))
    with pytest.raises(ValueError, match="lacks the columns"):
        case.page_truth(_tables(), pd.DataFrame({"topic": ["cooking"]}), np.array([[0]]))


# --------------------------------------------------------------------------- online_metrics


def test_online_metrics_counts_clicks_successes_and_clickbait_per_arm():
    clicked = np.array([[1, 0], [0, 0], [1, 1], [0, 1]], bool)
    grades = np.array([[3, 0], [2, 2], [1, 2], [0, 0]])
    bait = np.array([[0, 0], [0, 0], [1, 0], [0, 1]], bool)
    control = (clicked, grades, bait)
    treatment = (np.ones_like(clicked), np.full((4, 2), 3), np.zeros_like(bait))
    out = case.online_metrics(control, treatment)
    assert list(out) == list(case.ONLINE_METRICS)
    ctr, per_search, success, share = out.values()
    assert (ctr.rate_a, ctr.rate_b) == (0.75, 1.0)
    assert (per_search.mean_a, per_search.mean_b) == (1.0, 2.0)
    assert (success.rate_a, success.rate_b) == (0.5, 1.0)       # searches 0 and 2
    assert (share.rate_a, share.rate_b) == (0.5, 0.0)           # 2 of the 4 clicks are bait


def test_online_metrics_validates_the_arms():
    ok = (np.zeros((3, 2), bool), np.zeros((3, 2)), np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="one shape"):
        case.online_metrics(ok, (ok[0], np.zeros((3, 3)), ok[2]))
    with pytest.raises(ValueError, match=r"treatment must be \(clicked"):
        case.online_metrics(ok, ok[:2])


# --------------------------------------------------------------------------- append_to_index


def _build(videos):
    """The chapter's build_index, written out here."""
    _, vocabulary = case.bag_of_words(videos[list(FIELDS)].agg(" ".join, axis=1))
    counts = {f: case.bag_of_words(videos[f], vocabulary)[0].tocsc() for f in FIELDS}
    df = np.asarray((sum(counts.values()) > 0).sum(axis=0)).ravel()
    n = len(videos)
    return {"counts": counts, "vocabulary": vocabulary,
            "idf": np.log(1 + (n - df + 0.5) / (df + 0.5)),
            "length": {f: np.asarray(counts[f].sum(axis=1)).ravel() for f in FIELDS}}


def _by_word(index):
    """Each word's (idf, per-field column of counts): comparable whatever the column order."""
    return {w: (index["idf"][j], tuple(tuple(index["counts"][f][:, j].toarray().ravel())
                                       for f in FIELDS))
            for w, j in index["vocabulary"].items()}


OLD = pd.DataFrame({"title": ["soccer goals", "guitar", ""], "tags": ["", "bass", "soccer"],
                    "description": ["the match", "", "goals goals"]})
NEW = pd.DataFrame({"title": ["footy goals", "guitar"], "tags": ["bass", ""],
                    "description": ["", "cartoon"]})


def test_append_matches_a_rebuild_word_by_word_and_keeps_the_input():
    old = _build(OLD)
    before = {f: old["counts"][f].copy() for f in FIELDS}
    grown = case.append_to_index(old, NEW, FIELDS)
    rebuilt = _build(pd.concat([OLD, NEW], ignore_index=True))
    got, want = _by_word(grown), _by_word(rebuilt)
    assert set(got) == set(want)
    for word in want:
        assert got[word][0] == pytest.approx(want[word][0])
        assert got[word][1] == want[word][1]
    for f in FIELDS:
        assert np.array_equal(grown["length"][f], rebuilt["length"][f])
        assert (old["counts"][f] != before[f]).nnz == 0        # the input is untouched
        assert grown["counts"][f].format == "csc"
    assert list(grown["vocabulary"])[:len(old["vocabulary"])] == list(old["vocabulary"])


def test_a_second_batch_uses_the_kept_df():
    once = case.append_to_index(case.append_to_index(_build(OLD), NEW.iloc[:1], FIELDS),
                                 NEW.iloc[1:], FIELDS)
    both = case.append_to_index(_build(OLD), NEW, FIELDS)
    assert _by_word(once).keys() == _by_word(both).keys()
    assert np.allclose(once["idf"], both["idf"])


def test_append_validates_its_inputs():
    old = _build(OLD)
    with pytest.raises(ValueError, match="mapping with keys"):
        case.append_to_index({"counts": {}}, NEW, FIELDS)
    with pytest.raises(ValueError, match="the index's fields"):
        case.append_to_index(old, NEW, ("title",))
    with pytest.raises(ValueError, match="lacks the text columns"):
        case.append_to_index(old, NEW.drop(columns="tags"), FIELDS)
    with pytest.raises(ValueError, match="empty"):
        case.append_to_index(old, NEW.iloc[:0], FIELDS)


# --------------------------------------------------------------------------- rebound


def test_rebound_sets_names_for_the_block_and_restores_them_even_after_an_error():
    space = {"index": 1, "videos": "old", "other": 3}
    with case.rebound(space, index=2, videos="new"):
        assert space == {"index": 2, "videos": "new", "other": 3}
        space["index"] = 5                                    # assigned again inside
    assert space == {"index": 1, "videos": "old", "other": 3}
    with pytest.raises(RuntimeError):
        with case.rebound(space, index=9):
            raise RuntimeError("inside")
    assert space["index"] == 1


def test_rebound_refuses_unknown_names_and_a_non_dict():
    with pytest.raises(ValueError, match="no such names"):
        with case.rebound({"index": 1}, indx=2):
            pass
    with pytest.raises(TypeError, match="globals"):
        with case.rebound([("index", 1)], index=2):
            pass


# --------------------------------------------------------------------------- the app


def _engine(query, k):
    if query == "boom":
        raise RuntimeError("broken")
    return [7, -1, 3, 5][:k] if "soccer" in query.split() else [-1] * k


@pytest.fixture(scope="module")
def client():
    """A real server on 127.0.0.1, as the chapter runs it."""
    with BackgroundServer(case.create_search_app(_engine, max_k=50)) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=5) as c:
            yield c


def test_the_app_answers_a_search_and_drops_empty_slots(client):
    assert client.get("/health").json() == {"status": "ok", "model_version": "1"}
    answer = client.post("/search", json={"query": "cartoon soccer", "k": 3}).json()
    assert answer == {"query": "cartoon soccer", "videos": [7, 3], "model_version": "1"}
    assert client.post("/search", json={"query": "soccer"}).json()["videos"] == [7, 3, 5]
    assert client.post("/search", json={"query": "footy"}).json()["videos"] == []


@pytest.mark.parametrize("body", [{"k": 10}, {"query": ""}, {"query": "   "}, {"query": 42},
                                  {"query": ["soccer"]}, {"query": "soccer", "k": 0},
                                  {"query": "soccer", "k": 51}, {"query": "soccer", "k": "10"},
                                  {"query": "soccer", "k": 2.0}, {"query": "x" * 201},
                                  {"query": "soccer", "user": 1}])
def test_the_app_refuses_malformed_requests_with_422_and_keeps_serving(client, body):
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert "detail" in response.json()
    assert client.post("/search", json={"query": "soccer"}).status_code == 200


def test_the_app_answers_413_to_a_large_body_and_500_to_a_failing_engine(client):
    big = client.post("/search", content=b'{"query": "' + b"a" * 20_000 + b'"}',
                      headers={"content-type": "application/json"})
    assert big.status_code == 413
    failed = client.post("/search", json={"query": "boom"})
    assert failed.status_code == 500 and "broken" not in failed.text
    assert client.post("/search", content=b"{not json",
                       headers={"content-type": "application/json"}).status_code == 422


def test_create_search_app_validates_its_arguments():
    with pytest.raises(TypeError, match="callable"):
        case.create_search_app("search")
    with pytest.raises(ValueError, match="max_k"):
        case.create_search_app(_engine, max_k=0)


def test_online_numbers_glue_each_metric_and_the_sample_size():
    rng = np.random.default_rng(0)
    arms = []
    for rate in (0.3, 0.4):
        clicked = rng.random((400, 3)) < rate
        arms.append((clicked, rng.integers(0, 4, clicked.shape), rng.random(clicked.shape) < 0.1))
    online = case.online_metrics(*arms)
    numbers = case.online_numbers(online, 800)
    assert numbers["ab_searches"] == 800 and numbers["ab_per_arm"] == 400
    ctr = online["searches with a click"]
    assert numbers["ab_needed"] == ab.sample_size_two_proportions(ctr.rate_a, ctr.rate_b)
    for short, result in zip(("ctr", "clicks", "success", "bait"), online.values()):
        expected = ab.ab_numbers(f"ab_{short}", result)   # numbers, and Markdown phrases
        assert set(expected) <= set(numbers)
        assert all(numbers[k] == v for k, v in expected.items() if isinstance(v, (int, float)))
    with pytest.raises(ValueError, match="online_metrics"):
        case.online_numbers({"searches with a click": ctr}, 800)
