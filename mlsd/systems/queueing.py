"""Capacity planning: Erlang C for the M/M/c queue, and a discrete-event simulation beyond it.

A service with ``c`` replicas, each answering one request at a time from a shared FIFO queue,
is the M/M/c queue when requests arrive as a Poisson process (rate ``lambda`` per second) and
service times are exponential (mean ``1 / mu`` seconds). With offered load ``a = lambda / mu``
and utilisation ``rho = a / c < 1``, the **Erlang C formula** (Erlang 1917; Kleinrock 1975,
section 3.5) gives the probability that an arriving request has to wait, and from it the mean
wait in the queue ``W_q = C / (c mu - lambda)``, and the whole wait distribution: a request
that waits waits an exponential time of rate ``c mu - lambda``, so the tail and the p99 wait
have closed forms too (:func:`erlang_c_wait_tail`, :func:`erlang_c_wait_quantile`).

Real services break the formula's assumptions: traffic spikes, measured (not exponential)
service times, a cache in front, clients that give up, replicas added by an autoscaler.
:func:`simulate_queue` simulates all of these with SimPy; with none of them it reproduces Erlang
C (mean wait, P(wait), tail and p99), which is how ``tests/test_queueing.py`` checks it.

References
----------
A. K. Erlang (1917), "Solution of some problems in the theory of probabilities of significance
in automatic telephone exchanges", *Elektroteknikeren* 13.
L. Kleinrock (1975), *Queueing Systems, Volume 1: Theory*, Wiley.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Mapping

import numpy as np
import simpy

from mlsd._checks import check_finite, check_int

__all__ = [
    "erlang_c",
    "mmc_mean_wait",
    "erlang_c_wait_tail",
    "erlang_c_wait_quantile",
    "servers_needed",
    "Autoscale",
    "QueueResult",
    "simulate_queue",
]


# --------------------------------------------------------------------------- Erlang C


def _positive(name: str, value) -> float:
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _offered_load(arrival_rate, service_rate, servers) -> tuple[float, int]:
    """``a = lambda / mu`` and ``c``, after checking the queue is stable (``rho < 1``)."""
    arrival_rate = _positive("arrival_rate", arrival_rate)
    service_rate = _positive("service_rate", service_rate)
    servers = check_int("servers", servers, minimum=1)
    a = arrival_rate / service_rate
    if a >= servers:
        raise ValueError(
            f"unstable: utilisation rho = arrival_rate / (servers * service_rate) = {a / servers:.3f} >= 1; "
            "the queue grows without bound"
        )
    return a, servers


def erlang_c(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Probability that an arriving request waits in an M/M/c queue (the Erlang C formula).

    With offered load ``a = lambda / mu`` and utilisation ``rho = a / c``::

        C(c, a) = B(c, a) / (1 - rho * (1 - B(c, a)))

    where ``B`` is the Erlang B (loss) formula, computed by the stable recursion
    ``B(0, a) = 1``, ``B(k, a) = a B(k-1, a) / (k + a B(k-1, a))``; the textbook closed form
    with ``a**c / c!`` overflows for a few hundred servers, the recursion does not (Erlang
    1917; Kleinrock 1975, eq. 3.40).

    Parameters
    ----------
    arrival_rate
        ``lambda``, requests per second (> 0).
    service_rate
        ``mu``, requests per second that one server completes (> 0), i.e. 1 / mean service time.
    servers
        ``c`` >= 1.

    Raises
    ------
    ValueError
        On non-positive rates, and when ``rho >= 1`` (the queue is unstable).
    """
    a, c = _offered_load(arrival_rate, service_rate, servers)
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - (a / c) * (1 - b))


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in the queue (before service) of an M/M/c queue, in the unit of the rates.

    ``W_q = C(c, a) / (c mu - lambda)``, averaged over all requests (those that do not wait
    count as 0). Raises like :func:`erlang_c`.
    """
    c_prob = erlang_c(arrival_rate, service_rate, servers)
    return c_prob / (servers * service_rate - arrival_rate)


def erlang_c_wait_tail(arrival_rate: float, service_rate: float, servers: int, t) -> float | np.ndarray:
    """``P(W_q > t)``: the probability that a request waits longer than ``t`` in an M/M/c queue.

    A request waits with probability ``C`` (:func:`erlang_c`); given that it waits, its wait is
    exponential with rate ``c mu - lambda`` (all ``c`` servers busy, the queue drains at that
    rate), so ``P(W_q > t) = C exp(-(c mu - lambda) t)`` for ``t >= 0`` (Kleinrock 1975,
    eq. 3.44). ``t`` is a number or an array, in the unit of the rates. Raises like
    :func:`erlang_c`, and on a negative or non-finite ``t``.
    """
    times = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError(f"t must be finite and >= 0, got {t!r}")
    tail = erlang_c(arrival_rate, service_rate, servers) * np.exp(
        -(servers * service_rate - arrival_rate) * times)
    return float(tail) if tail.ndim == 0 else tail


def erlang_c_wait_quantile(arrival_rate: float, service_rate: float, servers: int, q: float) -> float:
    """The ``q``-quantile of the wait in an M/M/c queue, e.g. ``q=0.99`` for the p99 wait.

    Inverts :func:`erlang_c_wait_tail`: ``t = ln(C / (1 - q)) / (c mu - lambda)`` when the
    waiting probability ``C`` exceeds ``1 - q``, else 0 (more than a share ``q`` of requests
    do not wait at all). ``q`` in [0, 1).
    """
    q = check_finite("q", q)
    if not 0 <= q < 1:
        raise ValueError(f"q must be in [0, 1), got {q}")
    c_prob = erlang_c(arrival_rate, service_rate, servers)
    if c_prob <= 1 - q:
        return 0.0
    return math.log(c_prob / (1 - q)) / (servers * service_rate - arrival_rate)


def servers_needed(
    arrival_rate: float,
    service_rate: float,
    max_mean_wait: float | None = None,
    max_wait_probability: float | None = None,
    *,
    max_servers: int = 100_000,
) -> int:
    """The smallest number of M/M/c servers that meets every target given.

    Starts from the smallest stable count, ``floor(lambda / mu) + 1``, and adds one server at a
    time: both the mean wait and the probability of waiting fall as servers are added.

    Parameters
    ----------
    arrival_rate, service_rate
        ``lambda`` and ``mu`` as in :func:`erlang_c`.
    max_mean_wait
        Target on :func:`mmc_mean_wait`, ``W_q <= max_mean_wait`` (same time unit as the rates).
    max_wait_probability
        Target on :func:`erlang_c`, ``C <= max_wait_probability``.
    max_servers
        Give up (``ValueError``) above this count.

    Raises
    ------
    ValueError
        If no target is given, a target is negative, or no count up to ``max_servers`` meets them.
    """
    if max_mean_wait is None and max_wait_probability is None:
        raise ValueError("give a target: max_mean_wait and/or max_wait_probability")
    for name, target in (("max_mean_wait", max_mean_wait), ("max_wait_probability", max_wait_probability)):
        if target is not None and check_finite(name, target) < 0:
            raise ValueError(f"{name} must be >= 0, got {target}")
    arrival_rate = _positive("arrival_rate", arrival_rate)
    service_rate = _positive("service_rate", service_rate)
    max_servers = check_int("max_servers", max_servers, minimum=1)
    for c in range(math.floor(arrival_rate / service_rate) + 1, max_servers + 1):
        wait_ok = max_mean_wait is None or mmc_mean_wait(arrival_rate, service_rate, c) <= max_mean_wait
        prob_ok = max_wait_probability is None or erlang_c(arrival_rate, service_rate, c) <= max_wait_probability
        if wait_ok and prob_ok:
            return c
    raise ValueError(f"no number of servers up to max_servers={max_servers} meets the target")


# --------------------------------------------------------------------------- simulation inputs


@dataclass(frozen=True)
class Autoscale:
    """A simple target-utilisation autoscaler for :func:`simulate_queue`.

    Every ``check_every`` seconds it measures the arrival rate of the last ``check_every``
    seconds (requests that need a replica, i.e. cache misses), hence the utilisation the
    replicas planned so far would have, ``rate * mean_service_time / planned``. If that is
    within ``tolerance`` of the target (relative), nothing changes; otherwise it asks for::

        desired = ceil(rate * mean_service_time / target_utilisation)

    replicas, clipped to [initial servers, ``max_servers``]. This is the rule of Kubernetes'
    Horizontal Pod Autoscaler, whose default tolerance, 0.1, keeps the random ups and downs of
    Poisson traffic from adding and retiring a replica at every check. Replicas asked for become available
    ``warmup_delay`` seconds later (a new machine boots and loads the model). When ``desired``
    is below the replicas running or starting, the surplus is retired, replicas still warming
    up first (the newest first: they have served nothing yet, and cancelling them costs no
    capacity); only then running ones: a stop message joins the back of the queue and the
    replica that takes it shuts down, so no request is dropped. The replicas running never go
    below the initial count. There is no cool-down or smoothing: keep it simple.
    """

    target_utilisation: float = 0.7
    check_every: float = 10.0
    warmup_delay: float = 30.0
    max_servers: int = 50
    tolerance: float = 0.1

    def __post_init__(self):
        target = check_finite("target_utilisation", self.target_utilisation)
        if not 0 < target <= 1:
            raise ValueError(f"target_utilisation must be in (0, 1], got {target}")
        _positive("check_every", self.check_every)
        if check_finite("warmup_delay", self.warmup_delay) < 0:
            raise ValueError(f"warmup_delay must be >= 0, got {self.warmup_delay}")
        check_int("max_servers", self.max_servers, minimum=1)
        if check_finite("tolerance", self.tolerance) < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance}")


def _autoscale(autoscale, servers: int) -> Autoscale | None:
    if autoscale is None or isinstance(autoscale, Autoscale):
        policy = autoscale
    elif isinstance(autoscale, Mapping):
        unknown = set(autoscale) - set(Autoscale.__dataclass_fields__)
        if unknown:
            raise ValueError(f"autoscale has unknown keys {sorted(unknown)}; allowed: {list(Autoscale.__dataclass_fields__)}")
        policy = Autoscale(**autoscale)
    else:
        raise TypeError(f"autoscale must be None, a dict or an Autoscale, got {type(autoscale).__name__}")
    if policy is not None and policy.max_servers < servers:
        raise ValueError(f"autoscale max_servers ({policy.max_servers}) is below servers ({servers})")
    return policy


def _rate_schedule(arrival_rate, duration: float) -> list[tuple[float, float]]:
    """The arrival rate as sorted ``(start, rate)`` pieces starting at 0."""
    if not isinstance(arrival_rate, (list, tuple)):
        return [(0.0, _positive("arrival_rate", arrival_rate))]
    if not arrival_rate:
        raise ValueError("arrival_rate schedule is empty")
    pieces = []
    for k, piece in enumerate(arrival_rate):
        if not isinstance(piece, (list, tuple)) or len(piece) != 2:
            raise ValueError(f"arrival_rate[{k}] must be a (start_time, rate) pair, got {piece!r}")
        pieces.append((check_finite(f"arrival_rate[{k}] start", piece[0]), _positive(f"arrival_rate[{k}] rate", piece[1])))
    starts = [s for s, _ in pieces]
    if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
        raise ValueError(f"arrival_rate start times must begin at 0 and increase strictly, got {starts}")
    if starts[-1] >= duration:
        raise ValueError(f"arrival_rate has a piece starting at {starts[-1]}, not before duration={duration}")
    return pieces


def _arrival_times(rng, pieces, duration: float) -> np.ndarray:
    """Poisson arrivals, piece by piece: a Poisson count, then that many uniform times, sorted."""
    ends = [s for s, _ in pieces[1:]] + [duration]
    times = []
    for (start, rate), end in zip(pieces, ends):
        n = rng.poisson(rate * (end - start))
        times.append(np.sort(rng.uniform(start, end, n)))
    return np.concatenate(times)


def _service_sampler(service_time):
    """``(draw(rng, n), mean)`` for an exponential mean or an array of measured times."""
    if np.ndim(service_time) == 0:
        mean = _positive("service_time", service_time)
        return (lambda rng, n: rng.exponential(mean, n)), mean
    measured = np.asarray(service_time, dtype=float)
    if measured.ndim != 1 or measured.size == 0:
        raise ValueError(f"service_time must be a number or a non-empty 1-D array, got shape {measured.shape}")
    if not np.all(np.isfinite(measured)) or np.any(measured <= 0):
        raise ValueError("measured service times must be finite and > 0 (seconds)")
    return (lambda rng, n: rng.choice(measured, n)), float(measured.mean())


# --------------------------------------------------------------------------- the result


@dataclass
class QueueResult:
    """One simulated run, one array entry per request, in arrival order.

    Attributes
    ----------
    arrival_time
        Seconds since the start.
    wait
        Seconds in the queue before a replica took the request (0 for a cached request; the
        timeout for one that timed out).
    latency
        Seconds from arrival to the answer: ``wait + service time``, or ``cache_time`` for a
        cached request, or the timeout for one that timed out (the client's error came then).
    timed_out, cached
        Booleans.
    servers_over_time
        ``(times, counts)``: the number of running replicas from each time on, e.g. for
        ``plt.step(*result.servers_over_time, where="post")``.
    duration, warmup
        As passed to :func:`simulate_queue`.
    """

    arrival_time: np.ndarray
    wait: np.ndarray
    latency: np.ndarray
    timed_out: np.ndarray
    cached: np.ndarray
    servers_over_time: tuple[np.ndarray, np.ndarray]
    duration: float
    warmup: float

    def summary(self, after: float | None = None, before: float | None = None) -> dict:
        """Statistics of the requests that arrived in ``[after, before)``.

        ``after`` defaults to the warm-up, ``before`` to the duration. Returned keys:

        - ``n_requests``: requests that arrived in the window;
        - ``mean_wait``: mean time in the queue over all of them (a cached request waits 0,
          one that timed out waited the timeout);
        - ``p50_latency``, ``p95_latency``, ``p99_latency``: percentiles (numpy, linear) of the
          latency of the requests that were answered, i.e. did not time out (NaN if none);
        - ``timed_out_share``, ``cached_share``: shares of all requests in the window;
        - ``throughput_rps``: requests answered per second of the window.
        """
        after = self.warmup if after is None else check_finite("after", after)
        before = self.duration if before is None else check_finite("before", before)
        if not 0 <= after < before:
            raise ValueError(f"need 0 <= after < before, got after={after}, before={before}")
        window = (self.arrival_time >= after) & (self.arrival_time < before)
        if not window.any():
            raise ValueError(f"no request arrived in [{after}, {before})")
        answered = self.latency[window & ~self.timed_out]
        p50, p95, p99 = np.percentile(answered, [50, 95, 99]) if answered.size else (np.nan,) * 3
        return {
            "n_requests": int(window.sum()),
            "mean_wait": float(self.wait[window].mean()),
            "p50_latency": float(p50),
            "p95_latency": float(p95),
            "p99_latency": float(p99),
            "timed_out_share": float(self.timed_out[window].mean()),
            "cached_share": float(self.cached[window].mean()),
            "throughput_rps": answered.size / (before - after),
        }


# --------------------------------------------------------------------------- the simulation

_STOP = -1  # a queue item that tells the replica taking it to shut down


def simulate_queue(
    *,
    arrival_rate,
    service_time,
    servers: int,
    duration: float,
    seed: int,
    warmup: float = 0.0,
    cache_hit_rate: float = 0.0,
    cache_time: float = 0.0,
    timeout: float | None = None,
    autoscale: Autoscale | Mapping | None = None,
) -> QueueResult:
    """Simulate replicas serving a shared FIFO queue (SimPy); return every request's timings.

    Parameters
    ----------
    arrival_rate
        Requests per second of a Poisson process: a number, or a piecewise-constant schedule
        ``[(0, rate0), (start1, rate1), ...]`` (start times increasing from 0), e.g.
        ``[(0, 20), (600, 200), (900, 20)]`` for a 10x spike from t = 600 s to 900 s.
    service_time
        A number: exponential service times with this mean, in seconds (the M/M/c case). An
        array: measured service times in seconds, resampled with replacement.
    servers
        Replicas at the start (>= 1); each serves one request at a time.
    duration
        Requests arrive during ``[0, duration)`` seconds. The ones still queued at the end are
        served to completion, so every request has a latency.
    seed
        Seed of ``np.random.default_rng``, the only source of randomness.
    warmup
        Default start of the window :meth:`QueueResult.summary` measures (the queue starts
        empty, which is not its steady state).
    cache_hit_rate, cache_time
        This share of requests is answered from a cache in ``cache_time`` seconds, without a
        replica.
    timeout
        None, or the seconds a synchronous client waits *in the queue* before giving up: such a
        request leaves the queue unserved and is marked ``timed_out``. Once a replica has taken
        a request it is served to completion.
    autoscale
        None, or an :class:`Autoscale` (or a dict of its fields) adding and retiring replicas.

    Returns
    -------
    QueueResult

    Notes
    -----
    **Common random numbers.** All draws are made up front, in a fixed order, and for every
    request: arrival times, then a cache coin, then a service time. So two runs with the same
    seed, ``arrival_rate``, ``service_time`` and ``duration`` see the same requests with the
    same service times, whatever their ``servers``, ``timeout``, ``autoscale`` or cache
    settings; the cache coin is a uniform number compared with ``cache_hit_rate``, so a higher
    hit rate caches a superset of the requests. Comparisons between designs are then paired,
    not blurred by different random traffic.

    **The asynchronous design** (the request is acknowledged at once, put on a queue and
    processed by a worker later) needs no separate simulator: it is ``timeout=None`` with
    ``latency`` read as the time to completion. Run the same seed with a ``timeout`` for the
    synchronous design: the requests are identical, and only the waiting behaviour differs.

    **Cost.** Every request is a few SimPy events; about 100,000 requests take a second or two.
    Memory is a few arrays of one entry per request.
    """
    servers = check_int("servers", servers, minimum=1)
    duration = _positive("duration", duration)
    warmup = check_finite("warmup", warmup)
    if not 0 <= warmup < duration:
        raise ValueError(f"warmup must be in [0, duration), got {warmup}")
    seed = check_int("seed", seed, minimum=0)
    hit_rate = check_finite("cache_hit_rate", cache_hit_rate)
    if not 0 <= hit_rate <= 1:
        raise ValueError(f"cache_hit_rate must be in [0, 1], got {hit_rate}")
    cache_time = check_finite("cache_time", cache_time)
    if cache_time < 0:
        raise ValueError(f"cache_time must be >= 0, got {cache_time}")
    timeout = None if timeout is None else _positive("timeout", timeout)
    policy = _autoscale(autoscale, servers)
    pieces = _rate_schedule(arrival_rate, duration)
    draw_service, mean_service = _service_sampler(service_time)

    rng = np.random.default_rng(seed)
    arrival = _arrival_times(rng, pieces, duration)
    n = arrival.size
    cached = rng.random(n) < hit_rate
    service = draw_service(rng, n)

    wait = np.zeros(n)
    timed_out = np.zeros(n, dtype=bool)
    replica_times = _simulate_replicas(arrival, service, ~cached, servers, duration, timeout, policy, mean_service, wait, timed_out)
    latency = np.where(cached, cache_time, np.where(timed_out, wait, wait + service))
    return QueueResult(
        arrival_time=arrival,
        wait=wait,
        latency=latency,
        timed_out=timed_out,
        cached=cached,
        servers_over_time=replica_times,
        duration=duration,
        warmup=warmup,
    )


def _simulate_replicas(arrival, service, queued, servers, duration, timeout, policy, mean_service, wait, timed_out):
    """Run the SimPy model of the replicas; fill ``wait`` and ``timed_out`` in place.

    Only the requests marked ``queued`` (cache misses) enter the queue. Returns the
    ``(times, counts)`` of running replicas.
    """
    env = simpy.Environment()
    queue = simpy.Store(env)  # unbounded FIFO shared by all replicas
    history = [(0.0, servers)]
    running = [servers]  # a list so the nested processes can update it
    to_queue = np.flatnonzero(queued)

    def arrivals():
        for i in to_queue:
            yield env.timeout(arrival[i] - env.now)
            queue.put(i)

    def replica():
        while True:
            i = yield queue.get()
            if i == _STOP:
                running[0] -= 1
                history.append((env.now, running[0]))
                return
            waited = env.now - arrival[i]
            # A client that gave up has left the queue at arrival + timeout; taking it costs the
            # replica no time, which is exactly as if it had left.
            if timeout is not None and waited > timeout:
                wait[i], timed_out[i] = timeout, True
                continue
            wait[i] = waited
            yield env.timeout(service[i])

    # The batches of replicas still warming up, oldest first: [replicas in the batch]. Lists, so
    # that a scale-down can cancel replicas before they start.
    warming = []

    def add_replicas(batch):
        yield env.timeout(policy.warmup_delay)
        del warming[next(k for k, b in enumerate(warming) if b is batch)]  # by identity
        if batch[0]:
            running[0] += batch[0]
            history.append((env.now, running[0]))
            for _ in range(batch[0]):
                env.process(replica())

    def retire(surplus):
        """Cancel warming replicas, newest first, then stop running ones for the rest."""
        for batch in reversed(warming):
            cancelled = min(surplus, batch[0])
            batch[0] -= cancelled
            surplus -= cancelled
        for _ in range(surplus):
            queue.put(_STOP)

    def autoscaler():
        planned = servers  # running, plus warming up, minus asked to stop
        times = arrival[to_queue]
        while env.now + policy.check_every <= duration:
            yield env.timeout(policy.check_every)
            recent = np.searchsorted(times, env.now) - np.searchsorted(times, env.now - policy.check_every)
            load = recent / policy.check_every * mean_service  # busy replicas needed on average
            if abs(load / (planned * policy.target_utilisation) - 1) <= policy.tolerance:
                continue
            # the 1e-9 keeps 7.0000000001 from becoming 8 replicas
            desired = min(max(math.ceil(load / policy.target_utilisation - 1e-9), servers), policy.max_servers)
            if desired > planned:
                warming.append(batch := [desired - planned])
                env.process(add_replicas(batch))
            elif desired < planned:
                retire(planned - desired)
            planned = desired

    env.process(arrivals())
    for _ in range(servers):
        env.process(replica())
    if policy is not None:
        env.process(autoscaler())
    env.run()  # ends when no event is left: every request has been served or has timed out
    times, counts = zip(*history)
    return np.array(times), np.array(counts)
