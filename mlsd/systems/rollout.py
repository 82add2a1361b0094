"""Testing a model in production: a shadow deployment and a canary release, over real HTTP.

Chapter 4 runs both on the notification world, with prediction servers from
:mod:`mlsd.systems.serving` (the stable model and the candidates) on 127.0.0.1, started by
:func:`start_servers`.

- :func:`shadow_deployment` sends every batch of traffic to the primary server, whose answer
  is what users get, and a mirrored copy to the shadow server in a background thread, so the
  candidate is measured on live traffic (its answers, its latency, its errors) while no user
  ever sees it.
- :func:`canary_release` ramps the share of users the candidate serves, stage by stage; after
  each stage it calls the caller's ``guardrails`` on the stage's traffic and rolls back at
  the first breach. A user's place in the ramp is fixed (:func:`user_bucket`), so users who
  met the candidate keep it as the share grows and nobody switches back and forth.
- :func:`ramp_stages` cuts day-stamped traffic into the stages of a ramp (share, days).
- :func:`replay_canary` runs the same ramp on scores computed beforehand, without servers:
  cheap enough to ask how often a ramp rolls back a good model or catches a bad one, over
  many splits of the users.

What a guardrail is (error rate, open rate, latency...) is the chapter's decision, so it is
a function the caller passes. Latencies are wall-clock: a notebook shows them only in cells
that nbval ignores, and a guardrail that decides a book's numbers should not read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd

from mlsd._checks import check_finite, check_int
from mlsd.datasets._hashing import splitmix64
from mlsd.systems.serving import BackgroundServer, check_loopback_url, create_prediction_app

__all__ = [
    "start_servers",
    "score_batches",
    "ShadowResult",
    "shadow_deployment",
    "user_bucket",
    "CanaryResult",
    "canary_release",
    "replay_canary",
    "ramp_stages",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


# --------------------------------------------------------------------------- argument checks


def _check_url(name: str, url) -> str:
    return check_loopback_url(url, name).rstrip("/")  # a base URL: paths are appended


def _check_frame(frame, features) -> list[str]:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"traffic must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise ValueError(f"features must be a non-empty list of column names, got {features!r}")
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise ValueError(f"traffic has no column(s) {missing}")
    return list(features)


# --------------------------------------------------------------------------- servers


def start_servers(predictors: Mapping, schema, **app_options) -> dict:
    """Start one prediction server per model version, on 127.0.0.1; return them by version.

    ``predictors`` maps a version name to its ``predict(X) -> probabilities``; each gets
    :func:`mlsd.systems.serving.create_prediction_app` with the request ``schema``, the
    version as its ``model_version`` and the other ``app_options`` (``max_batch``...). Stop
    them with ``server.stop()`` (if one fails to start, those already started are stopped).
    """
    if not isinstance(predictors, Mapping) or not predictors:
        raise TypeError(f"predictors must be a non-empty dict version -> predict, got {type(predictors).__name__}")
    for version, predict in predictors.items():
        if not isinstance(version, str) or not version:
            raise ValueError(f"versions must be non-empty strings, got {version!r}")
        if not callable(predict):
            raise TypeError(f"the predictor of {version!r} must be callable, got {type(predict).__name__}")
    apps = {v: create_prediction_app(f, schema, model_version=v, **app_options)
            for v, f in predictors.items()}  # every app is checked before any server starts
    servers: dict = {}
    try:
        for version, app in apps.items():
            servers[version] = BackgroundServer(app).start()
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


# --------------------------------------------------------------------------- sending traffic


@dataclass
class _Answers:
    """One server's answers to a run of batches: per instance, and per request."""

    predictions: np.ndarray   # per instance; NaN where the request failed
    status: np.ndarray        # per instance: the HTTP status of its request (0: no response)
    versions: np.ndarray      # per instance: the model_version that answered ("" if none)
    latency_ms: np.ndarray    # per request


def _post(client: httpx.Client, records: list[dict]) -> tuple[list, int, str, float]:
    """POST one batch; return (predictions or None, status, model version, milliseconds)."""
    start = time.perf_counter()
    try:
        response = client.post("/predict", json={"instances": records})
        status = response.status_code
        body = response.json() if status == 200 else {}
    except (httpx.HTTPError, ValueError):
        status, body = 0, {}
    milliseconds = (time.perf_counter() - start) * 1000
    return body.get("predictions"), status, str(body.get("model_version", "")), milliseconds


def _batches(n: int, batch_size: int) -> list[slice]:
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def _collect(n: int, slices: list[slice], replies: list) -> _Answers:
    predictions = np.full(n, np.nan)
    status = np.zeros(n, dtype=int)
    versions = np.full(n, "", dtype=object)
    for part, (values, code, version, _) in zip(slices, replies):
        status[part], versions[part] = code, version
        if values is not None and len(values) == part.stop - part.start:
            predictions[part] = values
    latency = np.array([reply[3] for reply in replies], dtype=float)
    return _Answers(predictions, status, versions, latency)


def _records(frame: pd.DataFrame, features: list[str]) -> list[dict]:
    # to_dict gives Python ints and floats, which JSON (and the strict schema) accepts
    return frame[features].to_dict("records")


def _score(url: str, traffic: pd.DataFrame, features: list[str], batch_size: int,
           timeout: float) -> _Answers:
    records, slices = _records(traffic, features), _batches(len(traffic), batch_size)
    # trust_env=False: no proxy settings from the environment for a request to 127.0.0.1
    with httpx.Client(base_url=url, timeout=timeout, trust_env=False) as client:
        replies = [_post(client, records[part]) for part in slices]
    return _collect(len(traffic), slices, replies)


def _answers_frame(answers: _Answers, index) -> pd.DataFrame:
    return pd.DataFrame({"p": answers.predictions, "status": answers.status,
                         "model_version": answers.versions}, index=index)


def score_batches(url: str, traffic: pd.DataFrame, features, *, batch_size: int = 100,
                  timeout: float = 10.0) -> pd.DataFrame:
    """Score ``traffic`` on a prediction server, ``batch_size`` instances per request.

    Parameters
    ----------
    url
        Base URL of a server from :func:`mlsd.systems.serving.create_prediction_app`
        (127.0.0.1 only).
    traffic
        One row per instance, with (at least) the ``features`` columns.
    features
        The columns sent, in the server's schema order.
    batch_size
        Instances per request (at most the server's ``max_batch``).
    timeout
        Seconds before a request counts as failed (status 0).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``traffic``, with columns ``p`` (the prediction, NaN where the request
        failed), ``status`` (the HTTP status of the instance's request, 0 for no response) and
        ``model_version``.
    """
    url = _check_url("url", url)
    features = _check_frame(traffic, features)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    timeout = check_finite("timeout", timeout)
    return _answers_frame(_score(url, traffic, features, batch_size, timeout), traffic.index)


# --------------------------------------------------------------------------- shadow


@dataclass
class ShadowResult:
    """What :func:`shadow_deployment` saw, one entry per instance or per request.

    Attributes
    ----------
    served, shadow
        Per instance: the primary's prediction (what users got) and the shadow's (NaN where
        the shadow's request failed).
    served_status, shadow_status
        Per instance: the HTTP status of the request that carried it (0: no response).
    served_versions, shadow_versions
        The distinct ``model_version`` values that answered, sorted.
    served_ms, shadow_ms
        Per request: wall-clock latency in milliseconds (the shadow's measured in its own
        thread, from the moment its copy was sent).
    """

    served: np.ndarray
    shadow: np.ndarray
    served_status: np.ndarray
    shadow_status: np.ndarray
    served_versions: tuple
    shadow_versions: tuple
    served_ms: np.ndarray
    shadow_ms: np.ndarray

    @property
    def shadow_error_rate(self) -> float:
        """Share of instances whose mirrored request was not answered 200."""
        return float(np.mean(self.shadow_status != 200))


def shadow_deployment(primary_url: str, shadow_url: str, traffic: pd.DataFrame, features, *,
                      batch_size: int = 100, timeout: float = 10.0) -> ShadowResult:
    """Serve ``traffic`` from the primary server and mirror every request to the shadow.

    Each batch goes to the primary in the calling thread (the user's request path) and a copy
    goes to the shadow through a one-thread executor, so the user's answer never waits for the
    shadow and never depends on it: a slow or failing shadow is recorded, not felt. Parameters
    are those of :func:`score_batches`.

    Returns
    -------
    ShadowResult
    """
    primary_url, shadow_url = _check_url("primary_url", primary_url), _check_url("shadow_url", shadow_url)
    if primary_url == shadow_url:
        raise ValueError("the shadow must be a different server from the primary")
    features = _check_frame(traffic, features)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    timeout = check_finite("timeout", timeout)
    records, slices = _records(traffic, features), _batches(len(traffic), batch_size)
    with (httpx.Client(base_url=primary_url, timeout=timeout, trust_env=False) as primary,
          httpx.Client(base_url=shadow_url, timeout=timeout, trust_env=False) as mirror,
          ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlsd-shadow") as executor):
        mirrored, served = [], []
        for part in slices:
            mirrored.append(executor.submit(_post, mirror, records[part]))  # fire and forget
            served.append(_post(primary, records[part]))  # what the user waits for
        shadowed = [future.result() for future in mirrored]
    n = len(traffic)
    a, b = _collect(n, slices, served), _collect(n, slices, shadowed)
    return ShadowResult(
        served=a.predictions, shadow=b.predictions, served_status=a.status,
        shadow_status=b.status, served_versions=tuple(sorted(set(a.versions) - {""})),
        shadow_versions=tuple(sorted(set(b.versions) - {""})), served_ms=a.latency_ms,
        shadow_ms=b.latency_ms)


# --------------------------------------------------------------------------- canary


def user_bucket(user_ids, salt: int = 0) -> np.ndarray:
    """Each user's fixed place in ``[0, 1)``: a hash of the id and the ``salt``.

    A canary at share ``s`` serves the users whose bucket is below ``s``, so raising the share
    only adds users, and a user's arm never depends on the order of requests. Another ``salt``
    gives an independent split (one per experiment, so the same users are not always first).
    """
    ids = np.asarray(user_ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"user_ids must be a 1-D array of integers, got dtype {ids.dtype} and shape {ids.shape}")
    if ids.size and ids.min() < 0:
        raise ValueError("user_ids must be non-negative")
    salt = check_int("salt", salt, minimum=0)
    with np.errstate(over="ignore"):
        mixed = splitmix64(splitmix64(np.uint64(salt) * _GOLDEN) ^ ids.astype(np.uint64))
    return (mixed >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass
class CanaryResult:
    """What :func:`canary_release` did.

    Attributes
    ----------
    stages
        One row per stage that ran: the ``share`` of users on the canary, the ``instances`` and
        ``users`` it served, each guardrail's verdict (``"ok"``, ``"breach"`` or ``"not enough
        data"``) and the ``decision`` taken after it (``"continue"``, ``"roll back"`` or
        ``"promote"``).
    rolled_back_at
        Index of the stage after which the canary was rolled back; None if it was promoted.
    traffic
        Every instance served, with its ``stage``, ``arm`` (``"stable"`` or ``"canary"``),
        prediction ``p``, ``status`` and ``model_version``.
    latency
        One row per request: ``stage``, ``arm`` and wall-clock ``ms``.
    user_column
        The column of ``traffic`` that identifies a user.
    """

    stages: pd.DataFrame
    rolled_back_at: int | None
    traffic: pd.DataFrame
    latency: pd.DataFrame
    user_column: str = "user_id"

    @property
    def promoted(self) -> bool:
        return self.rolled_back_at is None

    @property
    def outcome(self) -> str:
        """``"promoted"``, or ``"stage k"``: rolled back after the k-th stage (from 1)."""
        return "promoted" if self.promoted else f"stage {self.rolled_back_at + 1}"

    @property
    def users_exposed(self) -> int:
        """Distinct users the canary served before it was promoted or rolled back."""
        canary = self.traffic[self.traffic["arm"] == "canary"]
        return int(canary[self.user_column].nunique())


_VERDICTS = {True: "ok", False: "breach", None: "not enough data"}
_ADDED = {"arm", "p", "status", "model_version", "stage"}


def _check_verdicts(verdicts) -> dict:
    if not isinstance(verdicts, Mapping) or not verdicts:
        raise TypeError(f"guardrails must return a non-empty dict name -> True/False/None, got {verdicts!r}")
    for name, verdict in verdicts.items():
        if not (verdict is None or isinstance(verdict, (bool, np.bool_))):
            raise TypeError(f"guardrail {name!r} returned {verdict!r}; use True (ok), False (breach) "
                            "or None (not enough data)")
    return {name: None if v is None else bool(v) for name, v in verdicts.items()}


def ramp_stages(traffic: pd.DataFrame, ramp, *, day_column: str = "day") -> list:
    """Cut day-stamped ``traffic`` into the stages of a ramp, for :func:`canary_release`.

    ``ramp`` lists ``(share, days)`` pairs: stage 1 serves ``share`` of the users for ``days``
    days from the first day of ``traffic``, stage 2 the next ``days`` days, and so on. Returns
    the ``(share, traffic of those days)`` pairs. The ramp must fit in the traffic's days.
    """
    if not isinstance(traffic, pd.DataFrame):
        raise TypeError(f"traffic must be a pandas DataFrame, got {type(traffic).__name__}")
    if day_column not in traffic.columns or traffic.empty:
        raise ValueError(f"traffic must be non-empty with a {day_column!r} column")
    if isinstance(ramp, (str, Mapping)) or not isinstance(ramp, Sequence) or not ramp:
        raise ValueError(f"ramp must be a non-empty list of (share, days) pairs, got {ramp!r}")
    stages, first, last = [], traffic[day_column].min(), traffic[day_column].max()
    for i, step in enumerate(ramp):
        if not isinstance(step, tuple) or len(step) != 2:
            raise ValueError(f"ramp[{i}] must be a (share, days) pair, got {step!r}")
        share = check_finite(f"share of ramp[{i}]", step[0])
        days = check_int(f"days of ramp[{i}]", step[1], minimum=1)
        if first + days - 1 > last:
            raise ValueError(f"the ramp runs past the traffic's last day ({last}) at ramp[{i}]")
        stages.append((share, traffic[traffic[day_column].between(first, first + days - 1)]))
        first += days
    return stages


def _check_stages(stages, columns: list[str]) -> list[tuple[float, pd.DataFrame]]:
    if isinstance(stages, (str, pd.DataFrame)) or not isinstance(stages, Iterable):
        raise TypeError(f"stages must be a list of (share, traffic) pairs, got {type(stages).__name__}")
    stages = list(stages)
    if not stages:
        raise ValueError("give at least one stage (share, traffic)")
    shares = []
    for i, stage in enumerate(stages):
        if not isinstance(stage, tuple) or len(stage) != 2:
            raise TypeError(f"stage {i} must be a (share, traffic) pair, got {type(stage).__name__}")
        share = check_finite(f"share of stage {i}", stage[0])
        if not 0 < share < 1:
            raise ValueError(f"share of stage {i} must be in (0, 1), got {share}")
        if shares and share < shares[-1]:
            raise ValueError(f"shares must not decrease: stage {i} has {share} after {shares[-1]}")
        _check_frame(stage[1], columns)
        if not stage[1].index.is_unique or stage[1].empty:
            raise ValueError(f"the traffic of stage {i} is empty or has a duplicated index")
        taken = sorted(_ADDED & set(stage[1].columns))
        if taken:
            raise ValueError(f"the traffic of stage {i} already has column(s) {taken}, "
                             "which the canary adds")
        shares.append(share)
    return [(share, traffic) for share, (_, traffic) in zip(shares, stages)]


def _ramp(stages, score: Callable, guardrails: Callable, user_column: str, salt: int) -> CanaryResult:
    """The ramp itself: ``score(i, arm, part)`` answers one arm's part of stage ``i`` with
    ``(answers frame indexed like part, latency frame or None)``."""
    rows, served_parts, latency_parts, rolled_back_at = [], [], [], None
    for i, (share, traffic) in enumerate(stages):
        on_canary = user_bucket(traffic[user_column].to_numpy(), salt) < share
        served = traffic.assign(arm=np.where(on_canary, "canary", "stable"))
        answers = []
        for arm in ("stable", "canary"):
            part = served[served["arm"] == arm]
            if len(part):
                answered, latency = score(i, arm, part)
                answers.append(answered)
                if latency is not None:
                    latency_parts.append(latency)
        served = served.join(pd.concat(answers))
        verdicts = _check_verdicts(guardrails(served))
        breach = any(v is False for v in verdicts.values())
        last = i == len(stages) - 1
        decision = "roll back" if breach else ("promote" if last else "continue")
        canary = served[served["arm"] == "canary"]
        rows.append({"share": share, "instances": len(canary), "users": canary[user_column].nunique(),
                     **{name: _VERDICTS[v] for name, v in verdicts.items()}, "decision": decision})
        served_parts.append(served.assign(stage=i))
        if breach:
            rolled_back_at = i
            break
    latency = (pd.concat(latency_parts, ignore_index=True) if latency_parts
               else pd.DataFrame({"stage": [], "arm": [], "ms": []}))
    return CanaryResult(stages=pd.DataFrame(rows).rename_axis("stage"),
                        rolled_back_at=rolled_back_at, traffic=pd.concat(served_parts),
                        latency=latency, user_column=user_column)


def canary_release(stable_url: str, canary_url: str, stages, guardrails: Callable, features, *,
                   user_column: str = "user_id", salt: int = 0, batch_size: int = 100,
                   timeout: float = 10.0) -> CanaryResult:
    """Ramp a candidate model up stage by stage; roll back at the first guardrail breach.

    Parameters
    ----------
    stable_url, canary_url
        The two prediction servers (127.0.0.1 only).
    stages
        A sequence of ``(share, traffic)`` pairs, in order: the share of users the canary serves
        during the stage, in (0, 1), and the traffic that arrives meanwhile (a DataFrame with
        the ``features`` and ``user_column``, plus whatever the guardrails read, e.g. outcomes).
    guardrails
        ``guardrails(served) -> {name: True | False | None}``, called after each stage on that
        stage's traffic as served (columns added: ``arm``, ``p``, ``status``,
        ``model_version``): True if the guardrail holds, False for a breach, None when there
        is not yet enough data to judge (the ramp goes on).
    features
        The columns sent to the servers, in schema order.
    user_column
        The column that identifies the unit of assignment (the user).
    salt
        Selects the split of users (:func:`user_bucket`).
    batch_size, timeout
        As in :func:`score_batches`; each arm's traffic is sent in its own batches.

    Returns
    -------
    CanaryResult
        The canary is promoted (to 100 %) if every stage passes; after a breach the remaining
        stages do not run (all their traffic would go to the stable model).
    """
    stable_url, canary_url = _check_url("stable_url", stable_url), _check_url("canary_url", canary_url)
    if not callable(guardrails):
        raise TypeError(f"guardrails must be callable, got {type(guardrails).__name__}")
    if isinstance(features, str) or not isinstance(features, Sequence) or not features:
        raise ValueError(f"features must be a non-empty list of column names, got {features!r}")
    features = list(features)
    stages = _check_stages(stages, features + [user_column])
    salt = check_int("salt", salt, minimum=0)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    timeout = check_finite("timeout", timeout)
    urls = {"stable": stable_url, "canary": canary_url}

    def score(i, arm, part):
        scored = _score(urls[arm], part, features, batch_size, timeout)
        latency = pd.DataFrame({"stage": i, "arm": arm, "ms": scored.latency_ms})
        return _answers_frame(scored, part.index), latency

    return _ramp(stages, score, guardrails, user_column, salt)


def replay_canary(stages, stable_scores, canary_scores, guardrails: Callable, *,
                  user_column: str = "user_id", salt: int = 0,
                  versions: tuple[str, str] = ("stable", "canary")) -> CanaryResult:
    """The ramp of :func:`canary_release` on scores computed beforehand, without servers.

    The same users go to the canary (:func:`user_bucket` with ``salt``), the same guardrails
    judge each stage, and the ramp stops at the first breach; but each instance's prediction is
    read from the scores given, every answer has status 200 and no latency is measured. It
    answers questions a real ramp cannot afford: how often would this ramp roll back a good
    model, or catch a subtly bad one, over many splits of the users?

    Parameters
    ----------
    stages, guardrails, user_column, salt
        As in :func:`canary_release` (the traffic needs only ``user_column`` and what the
        guardrails read).
    stable_scores, canary_scores
        One 1-D array of finite scores per stage, aligned with that stage's traffic rows: what
        each version would answer for every instance of the stage.
    versions
        The ``model_version`` each arm's answers carry: (stable's, canary's).

    Returns
    -------
    CanaryResult
        With an empty ``latency`` table.
    """
    if not callable(guardrails):
        raise TypeError(f"guardrails must be callable, got {type(guardrails).__name__}")
    if not isinstance(user_column, str):
        raise TypeError(f"user_column must be a column name, got {user_column!r}")
    stages = _check_stages(stages, [user_column])
    salt = check_int("salt", salt, minimum=0)
    if (not isinstance(versions, tuple) or len(versions) != 2
            or not all(isinstance(v, str) and v for v in versions)):
        raise ValueError(f"versions must be a pair of non-empty names (stable, canary), got {versions!r}")
    scores = {}
    for arm, given in (("stable", stable_scores), ("canary", canary_scores)):
        if isinstance(given, (str, pd.DataFrame)) or not isinstance(given, Sequence) \
                or len(given) != len(stages):
            raise ValueError(f"{arm}_scores must be a list of one score array per stage "
                             f"({len(stages)}), got {type(given).__name__}")
        scores[arm] = []
        for i, (values, (_, traffic)) in enumerate(zip(given, stages)):
            values = np.asarray(values, dtype=float)
            if values.shape != (len(traffic),) or not np.isfinite(values).all():
                raise ValueError(f"{arm}_scores[{i}] must hold {len(traffic)} finite scores, one per "
                                 f"instance of stage {i}, got shape {values.shape}")
            scores[arm].append(pd.Series(values, index=traffic.index))
    version = dict(zip(("stable", "canary"), versions))

    def score(i, arm, part):
        answers = pd.DataFrame({"p": scores[arm][i].loc[part.index], "status": 200,
                                "model_version": version[arm]}, index=part.index)
        return answers, None

    return _ramp(stages, score, guardrails, user_column, salt)
