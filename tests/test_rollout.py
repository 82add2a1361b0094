"""Shadow and canary over real servers on 127.0.0.1: who serves users, routing, rollback."""

import numpy as np
import pandas as pd
import pytest

from mlsd.systems import rollout
from mlsd.systems.serving import BackgroundServer, create_prediction_app

SCHEMA = {"x": {"type": "float", "min": 0.0, "max": 1.0}}


def _server(predict, version):
    app = create_prediction_app(predict, SCHEMA, max_batch=50, model_version=version)
    return BackgroundServer(app)


@pytest.fixture(scope="module")
def servers():
    stable = _server(lambda X: X["x"].to_numpy() * 0.5, "stable")
    good = _server(lambda X: X["x"].to_numpy() * 0.6, "good")
    broken = _server(lambda X: np.full(len(X), 2.0), "broken")  # not a probability: 500
    with stable, good, broken:
        yield {"stable": stable.url, "good": good.url, "broken": broken.url}


def _traffic(n, seed=0, users=200):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.random(n).round(6), "user_id": rng.integers(0, users, n)})


def test_score_batches_returns_one_answer_per_instance(servers):
    traffic = _traffic(120)
    scored = rollout.score_batches(servers["stable"], traffic, ["x"], batch_size=50)
    assert scored.index.equals(traffic.index)
    assert np.allclose(scored["p"], traffic["x"] * 0.5)
    assert (scored["status"] == 200).all() and (scored["model_version"] == "stable").all()


def test_a_failing_server_gives_nan_and_its_status(servers):
    scored = rollout.score_batches(servers["broken"], _traffic(30), ["x"], batch_size=50)
    assert scored["p"].isna().all() and (scored["status"] == 500).all()


def test_shadow_users_get_only_the_primary(servers):
    traffic = _traffic(230)
    result = rollout.shadow_deployment(servers["stable"], servers["good"], traffic, ["x"],
                                       batch_size=50)
    assert result.served_versions == ("stable",) and result.shadow_versions == ("good",)
    assert np.allclose(result.served, traffic["x"] * 0.5)
    assert np.allclose(result.shadow, traffic["x"] * 0.6)
    assert len(result.served_ms) == len(result.shadow_ms) == 5
    assert result.shadow_error_rate == 0


def test_a_failing_shadow_never_reaches_users(servers):
    traffic = _traffic(100)
    result = rollout.shadow_deployment(servers["stable"], servers["broken"], traffic, ["x"],
                                       batch_size=50)
    assert (result.served_status == 200).all()
    assert result.shadow_error_rate == 1 and np.isnan(result.shadow).all()


def test_user_bucket_is_stable_uniform_and_salted():
    users = np.arange(20_000)
    bucket = rollout.user_bucket(users, salt=3)
    assert np.array_equal(bucket, rollout.user_bucket(users, salt=3))
    assert ((bucket >= 0) & (bucket < 1)).all()
    assert abs((bucket < 0.2).mean() - 0.2) < 0.01
    other = rollout.user_bucket(users, salt=4)
    assert abs(np.corrcoef(bucket, other)[0, 1]) < 0.03
    with pytest.raises(ValueError):
        rollout.user_bucket(np.array([0.5, 1.5]))


def _share_on_canary(served):
    return (served["arm"] == "canary").mean()


def test_canary_promotes_when_every_guardrail_holds(servers):
    seen = []

    def guardrails(served):
        seen.append(served)
        return {"errors": bool((served["status"] == 200).all())}

    stages = [(0.1, _traffic(300, 1)), (0.5, _traffic(300, 2))]
    result = rollout.canary_release(servers["stable"], servers["good"], stages, guardrails,
                                    ["x"], salt=1, batch_size=50)
    assert result.promoted and list(result.stages["decision"]) == ["continue", "promote"]
    first, second = seen
    assert 0 < _share_on_canary(first) < _share_on_canary(second)
    canary = second[second["arm"] == "canary"]
    assert (canary["model_version"] == "good").all()
    # a user's arm follows the bucket: everyone on the canary at 10% is still on it at 50%
    early = set(first.loc[first["arm"] == "canary", "user_id"])
    late_stable = set(second.loc[second["arm"] == "stable", "user_id"])
    assert not early & late_stable
    assert result.users_exposed == result.traffic.query("arm == 'canary'")["user_id"].nunique()
    assert set(result.latency["arm"]) == {"stable", "canary"}


def test_canary_rolls_back_at_the_first_breach_and_stops(servers):
    calls = []

    def guardrails(served):
        calls.append(len(served))
        canary = served[served["arm"] == "canary"]
        if len(canary) < 100:
            return {"errors": None}
        return {"errors": bool((canary["status"] == 200).all())}

    stages = [(0.02, _traffic(300, 1)), (0.5, _traffic(300, 2)), (0.9, _traffic(300, 3))]
    result = rollout.canary_release(servers["stable"], servers["broken"], stages, guardrails,
                                    ["x"], salt=0, batch_size=50)
    assert result.rolled_back_at == 1 and not result.promoted
    assert list(result.stages["errors"]) == ["not enough data", "breach"]
    assert list(result.stages["decision"]) == ["continue", "roll back"]
    assert len(calls) == 2


def test_canary_checks_its_arguments(servers):
    good = lambda served: {"ok": True}  # noqa: E731
    with pytest.raises(ValueError):
        rollout.canary_release(servers["stable"], servers["good"], [(1.5, _traffic(5))], good, ["x"])
    with pytest.raises(ValueError):
        rollout.canary_release(servers["stable"], servers["good"],
                               [(0.5, _traffic(5)), (0.1, _traffic(5))], good, ["x"])
    with pytest.raises(ValueError):
        rollout.canary_release("http://example.com", servers["good"], [(0.5, _traffic(5))], good, ["x"])
    with pytest.raises(TypeError):
        rollout.canary_release(servers["stable"], servers["good"], [(0.5, _traffic(5))],
                               lambda served: {"ok": "yes"}, ["x"])
    with pytest.raises(ValueError, match="already has"):
        rollout.canary_release(servers["stable"], servers["good"],
                               [(0.5, _traffic(5).assign(p=0.1))], good, ["x"])
    with pytest.raises(ValueError, match="empty"):
        rollout.canary_release(servers["stable"], servers["good"], [(0.5, _traffic(0))], good, ["x"])
    with pytest.raises(ValueError):
        rollout.shadow_deployment(servers["stable"], servers["stable"], _traffic(5), ["x"])
    with pytest.raises(ValueError):
        rollout.score_batches(servers["stable"], _traffic(5), ["y"])
