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


def test_shadow_and_canary_accept_the_ipv6_loopback_and_name_a_bad_url(servers):
    """The URL check is serving's check_loopback_url: ::1 passes (nothing listens there, so
    the shadow's requests fail), a remote host is refused with the argument's name."""
    ipv6 = "http://[::1]:9/"
    result = rollout.shadow_deployment(servers["stable"], ipv6, _traffic(10), ["x"], timeout=0.5)
    assert (result.served_status == 200).all() and result.shadow_error_rate == 1
    with pytest.raises(ValueError, match="shadow_url must point at this machine"):
        rollout.shadow_deployment(servers["stable"], "http://10.0.0.1:80", _traffic(5), ["x"])
    with pytest.raises(ValueError, match="canary_url must be an http"):
        rollout.canary_release(servers["stable"], "ftp://127.0.0.1", [(0.5, _traffic(5))],
                               lambda served: {"ok": True}, ["x"])


def _opens(n, seed=0, users=200):
    traffic = _traffic(n, seed, users)
    return traffic.assign(opened=np.random.default_rng(seed + 100).random(n) < traffic["x"])


def _open_rate_guardrail(served):
    canary = served[served["arm"] == "canary"]
    if len(canary) < 50:
        return {"open rate": None}
    stable = served[served["arm"] == "stable"]
    return {"open rate": bool(canary["opened"].mean() >= stable["opened"].mean() - 0.1)}


def test_replay_canary_matches_the_servers(servers):
    """Scores computed beforehand, the same ramp: the same users, decisions and predictions."""
    stages = [(0.1, _opens(300, 1)), (0.5, _opens(300, 2))]
    by_servers = rollout.canary_release(servers["stable"], servers["good"], stages,
                                        _open_rate_guardrail, ["x"], salt=2, batch_size=50)
    replayed = rollout.replay_canary(
        stages, [t["x"] * 0.5 for _, t in stages], [t["x"].to_numpy() * 0.6 for _, t in stages],
        _open_rate_guardrail, salt=2, versions=("stable", "good"))
    pd.testing.assert_frame_equal(replayed.stages, by_servers.stages)
    columns = ["arm", "p", "status", "model_version", "stage"]
    pd.testing.assert_frame_equal(replayed.traffic[columns], by_servers.traffic[columns],
                                  check_dtype=False)
    assert replayed.latency.empty and replayed.users_exposed == by_servers.users_exposed


def test_replay_canary_rolls_back_a_worse_version():
    stages = [(0.2, _opens(400, 3)), (0.5, _opens(400, 4)), (0.8, _opens(400, 5))]
    stable = [t["x"].to_numpy() for _, t in stages]

    def guardrails(served):  # the canary may not send less often than stable
        sent = served["p"] >= 0.5
        rates = sent.groupby(served["arm"]).mean()
        return {"sends": bool(rates.get("canary", 1) >= rates["stable"] - 0.2)}

    result = rollout.replay_canary(stages, stable, [s * 0.1 for s in stable], guardrails)
    assert result.rolled_back_at == 0 and list(result.stages["decision"]) == ["roll back"]
    assert set(result.traffic["model_version"]) == {"stable", "canary"}
    same = rollout.replay_canary(stages, stable, stable, guardrails, salt=5)
    assert same.promoted and len(same.stages) == 3


def test_replay_canary_checks_its_arguments():
    stages = [(0.5, _opens(20))]
    scores = [np.zeros(20)]
    ok = lambda served: {"ok": True}  # noqa: E731
    with pytest.raises(ValueError, match="one score array per stage"):
        rollout.replay_canary(stages, scores, scores + scores, ok)
    with pytest.raises(ValueError, match=r"canary_scores\[0\] must hold 20 finite scores"):
        rollout.replay_canary(stages, scores, [np.zeros(19)], ok)
    with pytest.raises(ValueError, match="finite"):
        rollout.replay_canary(stages, scores, [np.full(20, np.nan)], ok)
    with pytest.raises(ValueError, match="versions"):
        rollout.replay_canary(stages, scores, scores, ok, versions=("v1",))
    with pytest.raises(ValueError, match="no column"):
        rollout.replay_canary(stages, scores, scores, ok, user_column="member")
    with pytest.raises(TypeError, match="callable"):
        rollout.replay_canary(stages, scores, scores, {"ok": True})
    with pytest.raises(TypeError, match="stages must be a list"):
        rollout.replay_canary(_opens(20), scores, scores, ok)
    with pytest.raises(ValueError, match="must be in"):
        rollout.replay_canary([(1.0, _opens(20))], scores, scores, ok)


def test_outcome_names_the_stage_of_the_rollback():
    stages = [(0.2, _opens(100, 1)), (0.5, _opens(100, 2))]
    scores = [np.zeros(100), np.zeros(100)]
    verdicts = iter([{"ok": True}, {"ok": False}])
    rolled = rollout.replay_canary(stages, scores, scores, lambda served: next(verdicts))
    assert rolled.outcome == "stage 2"
    kept = rollout.replay_canary(stages, scores, scores, lambda served: {"ok": None})
    assert kept.outcome == "promoted"


def test_ramp_stages_cut_consecutive_days_from_the_first():
    traffic = pd.DataFrame({"day": np.repeat([10, 11, 12, 13, 14], 3), "user_id": np.arange(15)})
    stages = rollout.ramp_stages(traffic, [(0.1, 1), (0.3, 2), (0.5, 2)])
    assert [share for share, _ in stages] == [0.1, 0.3, 0.5]
    assert [sorted(set(part["day"])) for _, part in stages] == [[10], [11, 12], [13, 14]]
    with pytest.raises(ValueError, match="past the traffic's last day"):
        rollout.ramp_stages(traffic, [(0.1, 3), (0.5, 3)])
    with pytest.raises(ValueError, match=r"ramp\[0\] must be a \(share, days\) pair"):
        rollout.ramp_stages(traffic, [0.1])
    with pytest.raises(TypeError, match="days of ramp"):
        rollout.ramp_stages(traffic, [(0.1, 1.5)])
    with pytest.raises(ValueError, match="'date' column"):
        rollout.ramp_stages(traffic, [(0.1, 1)], day_column="date")
    with pytest.raises(ValueError, match="non-empty list"):
        rollout.ramp_stages(traffic, [])


def test_start_servers_serves_each_version_and_checks_first():
    predictors = {"a": lambda X: X["x"].to_numpy() * 0.1, "b": lambda X: X["x"].to_numpy() * 0.2}
    servers = rollout.start_servers(predictors, SCHEMA, max_batch=10)
    try:
        for version, server in servers.items():
            scored = rollout.score_batches(server.url, _traffic(5), ["x"], batch_size=5)
            assert (scored["model_version"] == version).all()
    finally:
        for server in servers.values():
            server.stop()
    with pytest.raises(TypeError, match="callable"):
        rollout.start_servers({"a": 1}, SCHEMA)
    with pytest.raises(ValueError, match="max_batch"):
        rollout.start_servers(predictors, SCHEMA, max_batch=0)  # no server started
    with pytest.raises(TypeError, match="non-empty dict"):
        rollout.start_servers({}, SCHEMA)
