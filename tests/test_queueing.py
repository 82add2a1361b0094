import math

import numpy as np
import pytest

from mlsd.systems.queueing import (Autoscale, erlang_c, erlang_c_wait_quantile, erlang_c_wait_tail,
                                   mmc_mean_wait, servers_needed, simulate_queue)

SEED = 0


# --------------------------------------------------------------------------- Erlang C


def test_erlang_c_by_hand():
    # lambda = 2, mu = 1, c = 3: a = 2, rho = 2/3. Erlang B by recursion:
    # B1 = 2/(1+2) = 2/3, B2 = (4/3)/(2+4/3) = 2/5, B3 = (4/5)/(3+4/5) = 4/19.
    # C = B3 / (1 - rho (1 - B3)) = (4/19) / (1 - (2/3)(15/19)) = (4/19) / (9/19) = 4/9.
    assert erlang_c(2, 1, 3) == pytest.approx(4 / 9, rel=1e-12)
    # W_q = C / (c mu - lambda) = (4/9) / (3 - 2) = 4/9
    assert mmc_mean_wait(2, 1, 3) == pytest.approx(4 / 9, rel=1e-12)
    # the same, from the closed form: a^c/c! * c/(c-a) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a))
    top = 2**3 / math.factorial(3) * 3 / (3 - 2)
    assert erlang_c(2, 1, 3) == pytest.approx(top / (1 + 2 + 2 + top), rel=1e-12)


def test_erlang_c_for_one_server_is_rho():
    # M/M/1: an arrival waits exactly when the server is busy, probability rho; W_q = rho/(mu-lambda)
    assert erlang_c(7, 10, 1) == pytest.approx(0.7)
    assert mmc_mean_wait(7, 10, 1) == pytest.approx(0.7 / 3)


def test_erlang_c_is_stable_for_many_servers():
    # a**c / c! overflows a float for c = 1000; the recursion does not
    c_prob = erlang_c(950, 1, 1000)
    assert 0 < c_prob < 1 and math.isfinite(c_prob)
    assert erlang_c(900, 1, 1000) < c_prob  # fewer arrivals, fewer waits


@pytest.mark.parametrize("args", [(3, 1, 3), (4, 1, 3), (10, 2, 5)])
def test_erlang_c_refuses_unstable_queues(args):
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(*args)
    with pytest.raises(ValueError, match="unstable"):
        mmc_mean_wait(*args)


@pytest.mark.parametrize(
    "args, error",
    [((0, 1, 1), ValueError), ((1, -1, 3), ValueError), ((float("nan"), 1, 3), ValueError),
     ((1, 1, 0), ValueError), ((1, 1, 2.5), TypeError)],
)
def test_erlang_c_refuses_bad_inputs(args, error):
    with pytest.raises(error):
        erlang_c(*args)


def test_servers_needed_by_hand():
    # lambda = 2, mu = 1: c = 2 is unstable, c = 3 waits 4/9 on average (above), c = 4 waits
    # C/(4-2) with C = B4 / (1 - (1/2)(1 - B4)), B4 = (2 * 4/19)/(4 + 8/19) = 2/21: C = 4/23, W_q = 2/23.
    assert mmc_mean_wait(2, 1, 4) == pytest.approx(2 / 23)
    assert servers_needed(2, 1, max_mean_wait=0.5) == 3
    assert servers_needed(2, 1, max_mean_wait=0.1) == 4
    assert servers_needed(2, 1, max_wait_probability=0.2) == 4
    assert servers_needed(2, 1, max_mean_wait=0.5, max_wait_probability=0.2) == 4  # both targets


@pytest.mark.parametrize("arrival_rate, service_rate, target", [(45, 10, 0.01), (300, 2, 0.05), (0.5, 1, 0.2)])
def test_servers_needed_is_the_smallest_count(arrival_rate, service_rate, target):
    c = servers_needed(arrival_rate, service_rate, max_mean_wait=target)
    assert mmc_mean_wait(arrival_rate, service_rate, c) <= target
    if c - 1 > arrival_rate / service_rate:  # c - 1 servers are stable: they must miss the target
        assert mmc_mean_wait(arrival_rate, service_rate, c - 1) > target


def test_servers_needed_refuses_bad_targets():
    with pytest.raises(ValueError, match="give a target"):
        servers_needed(2, 1)
    with pytest.raises(ValueError, match="max_mean_wait"):
        servers_needed(2, 1, max_mean_wait=-1)
    with pytest.raises(ValueError, match="max_servers"):
        servers_needed(200, 1, max_mean_wait=0.0001, max_servers=150)


# --------------------------------------------------------------------------- the simulation versus theory


@pytest.mark.parametrize(
    "servers, rho, n_requests",
    # Lengths chosen from runs over 8 seeds: the run-to-run standard deviation of the simulated
    # mean wait is about 2% of it at these lengths, so 5% is a margin of more than 2 sd.
    [(1, 0.7, 150_000), (4, 0.8, 400_000), (8, 0.85, 600_000)],
)
def test_simulated_mean_wait_matches_erlang_c(servers, rho, n_requests):
    mu = 10.0  # 100 ms mean service time
    lam = rho * servers * mu
    duration = n_requests / lam
    result = simulate_queue(arrival_rate=lam, service_time=1 / mu, servers=servers,
                            duration=duration, seed=SEED, warmup=0.01 * duration)
    summary = result.summary()
    assert summary["mean_wait"] == pytest.approx(mmc_mean_wait(lam, mu, servers), rel=0.05)
    assert summary["throughput_rps"] == pytest.approx(lam, rel=0.02)
    assert summary["timed_out_share"] == 0 and summary["cached_share"] == 0
    # The whole wait distribution, not only its mean: P(wait), the tail at the median and the
    # p90 of the wait, and the p99 wait a chapter reports. Over 4 seeds the simulated shares
    # were within 0.005 of the formula and the p99 within 8 % (waits are autocorrelated).
    wait = result.wait[result.arrival_time >= result.warmup]
    assert np.mean(wait > 0) == pytest.approx(erlang_c(lam, mu, servers), abs=0.015)
    for q in (0.5, 0.9):
        t = erlang_c_wait_quantile(lam, mu, servers, q)
        assert np.mean(wait > t) == pytest.approx(erlang_c_wait_tail(lam, mu, servers, t), abs=0.01)
    assert np.quantile(wait, 0.99) == pytest.approx(
        erlang_c_wait_quantile(lam, mu, servers, 0.99), rel=0.15)


def test_wait_tail_and_quantile_by_hand():
    # M/M/1 at rho = 0.5, mu = 1: C = rho = 0.5, the wait tail decays at c mu - lambda = 0.5
    assert erlang_c_wait_tail(0.5, 1.0, 1, 0.0) == pytest.approx(0.5)
    np.testing.assert_allclose(erlang_c_wait_tail(0.5, 1.0, 1, np.array([2.0, 4.0])),
                               0.5 * np.exp(-0.5 * np.array([2.0, 4.0])))
    assert erlang_c_wait_quantile(0.5, 1.0, 1, 0.99) == pytest.approx(math.log(50) / 0.5)
    assert erlang_c_wait_quantile(0.5, 1.0, 1, 0.4) == 0.0   # 50 % never wait: the p40 is 0
    t99 = erlang_c_wait_quantile(8.0, 1.0, 10, 0.99)
    assert erlang_c_wait_tail(8.0, 1.0, 10, t99) == pytest.approx(0.01)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="t must be"):
            erlang_c_wait_tail(0.5, 1.0, 1, bad)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="q must be"):
            erlang_c_wait_quantile(0.5, 1.0, 1, bad)
    with pytest.raises(ValueError, match="unstable"):
        erlang_c_wait_tail(2.0, 1.0, 1, 1.0)


def test_measured_constant_service_times_match_pollaczek_khinchine():
    # M/D/1 (Kleinrock 1975, eq. 5.65 with E[S^2] = S^2): W_q = rho S / (2 (1 - rho))
    duration = 100_000 / 7.0
    result = simulate_queue(arrival_rate=7.0, service_time=np.array([0.1]), servers=1,
                            duration=duration, seed=SEED, warmup=0.01 * duration)
    assert result.summary()["mean_wait"] == pytest.approx(0.7 * 0.1 / (2 * 0.3), rel=0.05)
    served = ~result.timed_out
    np.testing.assert_allclose(result.latency[served] - result.wait[served], 0.1)


def test_cache_hits_reduce_the_load_on_the_replicas():
    # 40% of requests answered by the cache: the replicas see Poisson traffic at 0.6 lambda,
    # i.e. an M/M/1 queue at rho = 0.7 instead of an unstable one at rho = 1.17
    hit_rate, lam_replicas, mu = 0.4, 7.0, 10.0
    duration = 150_000 / lam_replicas
    result = simulate_queue(arrival_rate=lam_replicas / (1 - hit_rate), service_time=1 / mu, servers=1,
                            duration=duration, seed=SEED, warmup=0.01 * duration,
                            cache_hit_rate=hit_rate, cache_time=0.002)
    after_warmup = result.arrival_time >= result.warmup
    expected = mmc_mean_wait(lam_replicas, mu, 1)
    assert result.wait[after_warmup & ~result.cached].mean() == pytest.approx(expected, rel=0.05)
    summary = result.summary()
    assert summary["cached_share"] == pytest.approx(hit_rate, abs=0.01)
    assert summary["mean_wait"] == pytest.approx((1 - hit_rate) * expected, rel=0.05)  # cached wait 0
    assert np.all(result.latency[result.cached] == 0.002) and np.all(result.wait[result.cached] == 0)


# --------------------------------------------------------------------------- reproducibility


SMALL = dict(arrival_rate=30.0, service_time=0.1, servers=4, duration=200.0, warmup=20.0)


def test_same_seed_gives_identical_results():
    a, b = simulate_queue(**SMALL, seed=7), simulate_queue(**SMALL, seed=7)
    for field in ("arrival_time", "wait", "latency", "timed_out", "cached"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.summary() == b.summary()
    assert not np.array_equal(simulate_queue(**SMALL, seed=8).arrival_time, a.arrival_time)


def test_designs_compared_on_the_same_seed_see_the_same_requests():
    base = simulate_queue(**SMALL, seed=7)
    for other in (simulate_queue(**SMALL, seed=7, timeout=0.05),
                  simulate_queue(**(SMALL | {"servers": 2}), seed=7),
                  simulate_queue(**SMALL, seed=7, cache_hit_rate=0.5)):
        np.testing.assert_array_equal(other.arrival_time, base.arrival_time)
    # a higher hit rate caches a superset of the requests
    low, high = (simulate_queue(**SMALL, seed=7, cache_hit_rate=h).cached for h in (0.2, 0.5))
    assert np.all(high[low])


def test_result_arrays_and_summary():
    result = simulate_queue(**SMALL, seed=1)
    n = result.arrival_time.size
    assert n == pytest.approx(30 * 200, rel=0.05)
    assert all(getattr(result, f).shape == (n,) for f in ("wait", "latency", "timed_out", "cached"))
    assert np.all(np.diff(result.arrival_time) >= 0) and np.all(result.wait >= 0)
    assert np.all(result.latency > result.wait)
    times, counts = result.servers_over_time
    assert times.tolist() == [0.0] and counts.tolist() == [4]
    summary = result.summary()
    assert set(summary) == {"n_requests", "mean_wait", "p50_latency", "p95_latency", "p99_latency",
                            "timed_out_share", "cached_share", "throughput_rps"}
    assert summary["n_requests"] == np.sum(result.arrival_time >= 20.0)
    assert summary["p50_latency"] <= summary["p95_latency"] <= summary["p99_latency"]
    with pytest.raises(ValueError, match="after < before"):
        result.summary(after=100, before=50)


# --------------------------------------------------------------------------- spikes, timeouts, autoscaling

SPIKE = [(0, 20.0), (100, 200.0), (220, 20.0)]  # 10x for two minutes; 4 replicas handle 40/s


def test_spike_raises_p99_latency():
    result = simulate_queue(arrival_rate=SPIKE, service_time=0.1, servers=4, duration=400.0, seed=SEED)
    before, during = result.summary(after=10, before=100), result.summary(after=100, before=220)
    assert during["n_requests"] / 120 == pytest.approx(200, rel=0.05)
    assert before["p99_latency"] < 1.0 < 10 * before["p99_latency"] < during["p99_latency"]


def test_timeouts_happen_only_with_a_timeout():
    loaded = dict(arrival_rate=36.0, service_time=0.1, servers=4, duration=500.0, seed=SEED)  # rho = 0.9
    patient = simulate_queue(**loaded)
    assert not patient.timed_out.any()
    impatient = simulate_queue(**loaded, timeout=0.2)
    gave_up = impatient.timed_out
    assert 0 < gave_up.mean() < 0.5
    assert np.all(impatient.wait[gave_up] == 0.2) and np.all(impatient.latency[gave_up] == 0.2)
    assert np.all(impatient.wait[~gave_up] <= 0.2)
    # the requests that gave up freed the replicas: the others wait less than with patient clients
    assert impatient.wait[~gave_up].mean() < patient.wait.mean()
    assert impatient.summary()["timed_out_share"] == pytest.approx(gave_up.mean())


def test_autoscaling_adds_servers_after_the_warmup_delay_and_lowers_p99():
    policy = {"target_utilisation": 0.7, "check_every": 10.0, "warmup_delay": 30.0, "max_servers": 50}
    common = dict(arrival_rate=SPIKE, service_time=0.1, servers=4, duration=400.0, seed=SEED)
    fixed = simulate_queue(**common)
    scaled = simulate_queue(**common, autoscale=policy)
    times, counts = scaled.servers_over_time
    first_added = times[np.argmax(counts > 4)]
    # the spike starts at 100 s, the first check after it is at 110 s, the servers come 30 s later
    assert first_added == pytest.approx(140.0)
    assert counts.max() == math.ceil(200 * 0.1 / 0.7)  # 29 replicas for 200 requests/s at 70%
    assert counts.min() == 4 and counts[-1] == 4  # back to the initial count after the spike
    spike = dict(after=100, before=220)
    assert scaled.summary(**spike)["p99_latency"] < 0.5 * fixed.summary(**spike)["p99_latency"]
    # never more than max_servers, and an Autoscale object works like the dict
    capped = simulate_queue(**common, autoscale=Autoscale(**(policy | {"max_servers": 10})))
    assert capped.servers_over_time[1].max() == 10


def test_a_burst_shorter_than_the_warmup_cancels_the_replicas_still_warming_up():
    # 200 requests/s from 20 s to 30 s: the check at 25 s asks for 29 replicas, which would be
    # warm at 55 s; the check at 35 s sees 20 requests/s again and wants 4.
    policy = {"target_utilisation": 0.7, "check_every": 5.0, "warmup_delay": 30.0}
    result = simulate_queue(arrival_rate=[(0, 20.0), (20, 200.0), (30, 20.0)], service_time=0.1,
                            servers=4, duration=120.0, seed=SEED, autoscale=policy)
    times, counts = result.servers_over_time
    # the 25 replicas asked for are cancelled before they start; the 4 running keep running
    assert list(counts) == [4]


@pytest.mark.parametrize("service_time", [0.03, np.array([0.016, 0.02, 0.024, 0.06])],
                         ids=["exponential", "measured"])
def test_autoscaling_never_runs_fewer_replicas_than_it_started_with(service_time):
    # Steady traffic near the target: Poisson noise makes the autoscaler add a replica, then
    # retire one, while others are still warming up. Over 20 seeds the fleet never shrinks below
    # its floor (it used to retire a running replica before one warming up had started).
    policy = {"target_utilisation": 0.6, "check_every": 2.0, "warmup_delay": 10.0, "tolerance": 0.0}
    mean = float(np.mean(service_time))
    scaled = 0
    for seed in range(20):
        result = simulate_queue(arrival_rate=0.6 * 5 / mean, service_time=service_time, servers=5,
                                duration=90.0, seed=seed, autoscale=policy)
        times, counts = result.servers_over_time
        assert counts.min() >= 5, (seed, list(zip(times, counts)))
        scaled += counts.max() > 5
    assert scaled >= 10   # the fleet does grow and shrink, so the floor is really tested


# --------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "changes, error, message",
    [
        ({"arrival_rate": 0.0}, ValueError, "arrival_rate"),
        ({"arrival_rate": [(5, 1.0)]}, ValueError, "begin at 0"),
        ({"arrival_rate": [(0, 1.0), (50, 2.0), (20, 1.0)]}, ValueError, "increase"),
        ({"arrival_rate": [(0, 1.0), (50, -2.0)]}, ValueError, "rate"),
        ({"arrival_rate": [(0, 1.0), (300, 2.0)]}, ValueError, "duration"),
        ({"arrival_rate": [(0, 1.0, 2)]}, ValueError, "pair"),
        ({"service_time": -0.1}, ValueError, "service_time"),
        ({"service_time": np.array([0.1, 0.0])}, ValueError, "measured"),
        ({"service_time": np.ones((2, 2))}, ValueError, "1-D"),
        ({"servers": 0}, ValueError, "servers"),
        ({"servers": 2.0}, TypeError, "servers"),
        ({"duration": 0}, ValueError, "duration"),
        ({"warmup": 200.0}, ValueError, "warmup"),
        ({"seed": None}, TypeError, "seed"),
        ({"cache_hit_rate": 1.5}, ValueError, "cache_hit_rate"),
        ({"cache_time": -1}, ValueError, "cache_time"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"autoscale": {"target": 0.7}}, ValueError, "unknown keys"),
        ({"autoscale": {"target_utilisation": 1.5}}, ValueError, "target_utilisation"),
        ({"autoscale": {"max_servers": 2}}, ValueError, "below servers"),
        ({"autoscale": 0.7}, TypeError, "autoscale"),
    ],
)
def test_simulate_queue_refuses_bad_arguments(changes, error, message):
    with pytest.raises(error, match=message):
        simulate_queue(**(SMALL | {"seed": 0} | changes))
