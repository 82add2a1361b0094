"""Chapter 8's serving plumbing: request bodies, the moderation app and the review queue store."""

import httpx
import numpy as np
import pandas as pd
import pytest

from mlsd.cases import harmful_content as srv
from mlsd.systems.serving import BackgroundServer

LABELS = ["violence", "nudity", "hate", "spam", "self_harm"]


def _tables():
    posts = pd.DataFrame({"post_id": [7, 8], "day": [50, 50], "text": ["kill day", "coffee"],
                          "account_age_days": [3, 400], "past_violations": [1, 0],
                          "views_1h": [40, 9], "reports_1h": [2, 0], "has_image": [True, False]})
    images = pd.DataFrame({"post_id": [7], **{f"e{i}": [i / 10] for i in range(16)}})
    return posts, images


# --------------------------------------------------------------------------- moments


def _moments():
    labels = np.zeros((10, 2), dtype=int)
    labels[[0, 1, 2], 0] = 1
    labels[3, 1] = 1
    early = np.zeros((10, 2))
    early[[0, 5], 0] = [0.9, 0.8]                 # queue of 2: post 0 (harmful) and 5
    late = early.copy()
    late[[1, 3], 1] = [0.95, 0.99]                # queue of 2: posts 3 and 1, both harmful
    views = np.arange(10) * 10.0
    return labels, {"upload": (early, 0), "later": (late, views)}


def test_in_queue_takes_the_highest_class_scores_ties_by_order():
    scores = np.array([[0.1, 0.5], [0.5, 0.0], [0.9, 0.2], [0.0, 0.0]])
    assert srv.in_queue(scores, 0.5).tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="capacity"):
        srv.in_queue(scores, 1.0)
    with pytest.raises(ValueError, match="finite"):
        srv.in_queue(np.array([[np.nan]]), 0.5)


def test_moments_table_counts_catches_views_and_the_gain():
    labels, moments = _moments()
    table = srv.moments_table(moments, labels, capacity=0.2, reference="upload", seed=0)
    assert table["harmful in queue"].tolist() == [1, 2]
    assert table.loc["upload", "views before the catch"] == 0            # a scalar: every post
    assert table.loc["later", "views before the catch"] == 20.0          # posts 1 and 3
    assert tuple(table.loc["upload", ["gain low", "gain high"]]) == (0, 0)
    low, high = table.loc["later", ["gain low", "gain high"]]
    assert low <= 1 <= high
    assert table.loc["later", "macro PR-AUC"] > table.loc["upload", "macro PR-AUC"]
    numbers = srv.moment_numbers(table, first="upload", then="later")
    assert numbers["then_caught"] == 2 and numbers["first_views"] == 0.0
    assert set(numbers) == {f"{s}_{k}" for s in ("first", "then")
                            for k in ("auc", "caught", "low", "high", "views")}


def test_moments_table_validates_its_inputs():
    labels, moments = _moments()
    with pytest.raises(ValueError, match="reference"):
        srv.moments_table(moments, labels, capacity=0.2, reference="noon", seed=0)
    with pytest.raises(ValueError, match="later"):
        srv.moments_table({**moments, "later": (moments["later"][0], -1)}, labels,
                          capacity=0.2, reference="upload", seed=0)
    with pytest.raises(ValueError, match="later"):
        srv.moments_table({**moments, "later": (np.zeros((9, 2)), 0)}, labels,
                          capacity=0.2, reference="upload", seed=0)
    table = srv.moments_table(moments, labels, capacity=0.2, reference="upload", seed=0)
    with pytest.raises(ValueError, match="no moments"):
        srv.moment_numbers(table, x="noon")


# --------------------------------------------------------------------------- post_requests


def test_post_requests_builds_plain_json_bodies():
    bodies = srv.post_requests(*_tables())
    assert [list(b) for b in bodies] == [list(srv.REQUEST_FIELDS)] * 2
    assert bodies[0]["image"] == [i / 10 for i in range(16)] and bodies[1]["image"] is None
    assert bodies[0]["views_1h"] == 40 and type(bodies[0]["views_1h"]) is int
    assert bodies[1] == {"text": "coffee", "has_image": False, "image": None,
                         "account_age_days": 400, "past_violations": 0, "views_1h": 9,
                         "reports_1h": 0}


def test_post_requests_validates_the_tables():
    posts, images = _tables()
    with pytest.raises(ValueError, match="lacks the columns"):
        srv.post_requests(posts.drop(columns="text"), images)
    with pytest.raises(ValueError, match="has_image disagrees"):
        srv.post_requests(posts.assign(has_image=[True, True]), images)


# --------------------------------------------------------------------------- the app


def _score(post):
    p = 0.9 if "kill" in post["text"] else 0.01
    return [p, 0.0, 0.0, 0.0, 0.0], p, "remove" if p > 0.5 else "allow"


@pytest.fixture(scope="module")
def client():
    app = srv.create_moderation_app(_score, LABELS)
    with BackgroundServer(app) as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as c:
            yield c


def _good():
    return srv.post_requests(*_tables())[0]


def test_a_good_post_is_scored(client):
    answer = client.post("/score", json=_good())
    assert answer.status_code == 200
    body = answer.json()
    assert body["scores"] == dict(zip(LABELS, [0.9, 0, 0, 0, 0]))
    assert (body["p_harmful"], body["action"], body["model_version"]) == (0.9, "remove", "1")
    plain = client.post("/score", json=srv.post_requests(*_tables())[1])
    assert plain.status_code == 200 and plain.json()["action"] == "allow"


MALFORMED = {"no text": {"text": None}, "text not a string": {"text": 7},
             "image of 15": {"image": [0.0] * 15}, "image of 17": {"image": [0.0] * 17},
             "image without has_image": {"has_image": False},
             "has_image without image": {"image": None}, "negative views": {"views_1h": -1},
             "negative reports": {"reports_1h": -3}, "age not an int": {"account_age_days": 2.5},
             "count as text": {"past_violations": "0"}, "flag as text": {"has_image": "yes"},
             "unknown field": {"surprise": 1}, "text too long": {"text": "x" * 5001}}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_posts_get_422_and_the_server_keeps_serving(client, change):
    body = {**_good(), **change}
    if change == {"text": None}:
        del body["text"]
    answer = client.post("/score", json=body)
    assert answer.status_code == 422, answer.text
    assert all("input" not in error for error in answer.json()["detail"])   # no echo
    assert client.get("/health").json()["status"] == "ok"
    assert client.post("/score", json=_good()).status_code == 200


def test_an_image_with_a_non_finite_value_and_broken_json_get_422(client):
    raw = '{"text": "a", "has_image": true, "image": [NaN' + ", 0" * 15 + "], "
    raw += '"account_age_days": 1, "past_violations": 0, "views_1h": 1, "reports_1h": 0}'
    headers = {"content-type": "application/json"}
    assert client.post("/score", content=raw, headers=headers).status_code == 422
    assert client.post("/score", content="{not json", headers=headers).status_code == 422


def test_a_large_body_gets_413(client):
    assert client.post("/score", json={**_good(), "text": "w " * 20_000}).status_code == 413


def test_a_failing_scorer_gets_a_500_without_its_traceback():
    def broken(post):
        raise RuntimeError("secret detail")

    def wrong_shape(post):
        return [0.5, 0.5], 0.5, "allow"

    for scorer in (broken, wrong_shape):
        with BackgroundServer(srv.create_moderation_app(scorer, LABELS)) as server:
            answer = httpx.post(server.url + "/score", json=_good(), trust_env=False, timeout=10)
        assert answer.status_code == 500 and "secret" not in answer.text


def test_create_moderation_app_validates_its_arguments():
    with pytest.raises(ValueError, match="distinct"):
        srv.create_moderation_app(_score, ["a", "a"])
    with pytest.raises(TypeError, match="callable"):
        srv.create_moderation_app("model", LABELS)
    with pytest.raises(ValueError, match="embedding_size"):
        srv.create_moderation_app(_score, LABELS, embedding_size=0)


# --------------------------------------------------------------------------- ReviewStore


def _verdicts(ids, harmful):
    return pd.DataFrame({"post_id": ids, **{k: [int(h and k == "hate") for h in harmful]
                                            for k in LABELS}})


def test_the_queue_is_taken_by_priority_up_to_capacity():
    with srv.ReviewStore(LABELS) as store:
        assert store.add(50, [10, 11, 12, 13], [0.2, 0.9, 0.5, 0.9], [0.1, 0.5, 0.3, 0.6]) == 4
        store.add(51, [20], [5.0], [0.5])
        assert store.take(50, 3).tolist() == [11, 13, 12]      # ties by post id
        assert store.take(50, 3).tolist() == [10]               # what is left
        assert store.take(50, 3).tolist() == []
        assert store.take(51, 0).tolist() == []
        assert store.day_summary(50) == {"queued": 4, "reviewed": 4, "harmful": 0}
        assert store.day_summary(51) == {"queued": 1, "reviewed": 0, "harmful": 0}


def test_verdicts_round_trip_and_count_as_found():
    with srv.ReviewStore(LABELS) as store:
        store.add(50, [3, 1, 2], [0.3, 0.2, 0.1], [0.5, 0.5, 0.5])
        taken = store.take(50, 2)
        written = _verdicts(taken, [True, False])
        assert store.record(written) == 2
        read = store.verdicts()
        pd.testing.assert_frame_equal(read, written.sort_values("post_id").reset_index(drop=True),
                                      check_dtype=False)
        assert store.day_summary(50) == {"queued": 3, "reviewed": 2, "harmful": 1}


def test_the_store_persists_in_a_file(tmp_path):
    path = tmp_path / "queue.sqlite"
    with srv.ReviewStore(LABELS, path) as store:
        store.add(50, [1], [1.0], [0.5])
        store.record(_verdicts(store.take(50, 1), [True]))
    with srv.ReviewStore(LABELS, path) as store:
        assert store.verdicts()["hate"].tolist() == [1]


def test_the_store_validates_what_it_is_given():
    with pytest.raises(ValueError, match="identifiers"):
        srv.ReviewStore(["self harm"])
    with srv.ReviewStore(LABELS) as store:
        store.add(50, [1, 2], [1.0, 0.5], [0.5, 0.5])
        with pytest.raises(ValueError, match="queued already"):
            store.add(50, [1], [1.0], [0.5])
        with pytest.raises(ValueError, match="one priority"):
            store.add(50, [3, 4], [1.0], [0.5, 0.5])
        with pytest.raises(ValueError, match="finite"):
            store.add(50, [3], [np.nan], [0.5])
        with pytest.raises(ValueError, match="integers"):
            store.add(50, [3.5], [1.0], [0.5])
        with pytest.raises(ValueError, match="capacity"):
            store.take(50, -1)
        with pytest.raises(ValueError, match="not taken"):
            store.record(_verdicts([1], [True]))
        store.take(50, 1)
        with pytest.raises(ValueError, match="0 or 1"):
            store.record(_verdicts([1], [True]).assign(hate=2))
        with pytest.raises(ValueError, match="lacks the columns"):
            store.record(_verdicts([1], [True]).drop(columns="spam"))
        store.record(_verdicts([1], [True]))
        with pytest.raises(ValueError, match="verdict already"):
            store.record(_verdicts([1], [True]))
