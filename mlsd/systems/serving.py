"""Serving a model for real: an HTTP app, a background server and a small load generator.

The serving chapter puts a trained model behind HTTP and measures it. Three pieces are shared:

- :func:`create_prediction_app` wraps any ``predict_proba`` in a FastAPI app with a validated
  request schema, a health check and clear 4xx answers to bad requests.
- :class:`BackgroundServer` runs that app with uvicorn in a daemon thread of the notebook (or
  test) process, on ``127.0.0.1`` only, and stops it cleanly.
- :func:`load_test` sends a bounded number of requests from a few threads and records every
  latency and status code; :func:`latency_summary` reduces the latencies to the percentiles a
  latency budget is written in.
- :func:`open_loop_load_test` sends requests at Poisson times whatever the server does, as
  independent users do: the load that shows overload, which a closed loop cannot.
- :func:`check_loopback_url` refuses any URL but an http(s) one on this machine (127.0.0.1,
  ::1 or localhost): the load generators here and :mod:`mlsd.systems.rollout` use it.

Wall-clock latencies differ from run to run: a notebook prints them only in cells that nbval
ignores, and tests check them only loosely (positive, finite).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint's annotations at
# runtime, and the request model is a local variable built by create_prediction_app.

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
import numpy as np
import pandas as pd
import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from mlsd._checks import check_finite, check_int

__all__ = [
    "service_app",
    "create_prediction_app",
    "BackgroundServer",
    "LoadTestResult",
    "load_test",
    "open_loop_load_test",
    "latency_summary",
    "check_loopback_url",
    "fault",
    "faiss_threads",
    "StageClock",
]

# A library does not print log records unless the application configures logging; without this,
# Python's last-resort handler would print them to stderr (and into whichever notebook cell runs).
logger = logging.getLogger(__name__)
logger.addHandler(logging.NullHandler())

LOOPBACK_HOST = "127.0.0.1"
_NUMBER_TYPES = {"int": int, "float": float}


# --------------------------------------------------------------------------- the request schema


def _instance_field(name, spec):
    """The pydantic ``(type, Field)`` pair for one feature of the schema."""
    if isinstance(spec, (tuple, list)):
        if not spec or not all(isinstance(v, str) for v in spec):
            raise ValueError(f"schema[{name!r}]: a categorical needs a non-empty list of strings, got {spec!r}")
        return Literal[tuple(spec)], Field()
    if not isinstance(spec, Mapping):
        raise TypeError(f"schema[{name!r}] must be a list of categories or a dict with a 'type', got {spec!r}")
    unknown = set(spec) - {"type", "min", "max"}
    if unknown:
        raise ValueError(f"schema[{name!r}] has unknown keys {sorted(unknown)}; allowed: type, min, max")
    if spec.get("type") not in _NUMBER_TYPES:
        raise ValueError(f"schema[{name!r}]['type'] must be 'int' or 'float', got {spec.get('type')!r}")
    low, high = (None if spec.get(k) is None else check_finite(f"schema[{name!r}][{k!r}]", spec[k]) for k in ("min", "max"))
    if low is not None and high is not None and low > high:
        raise ValueError(f"schema[{name!r}]: min ({low}) is above max ({high})")
    extra = {"allow_inf_nan": False} if spec["type"] == "float" else {}
    return _NUMBER_TYPES[spec["type"]], Field(ge=low, le=high, **extra)


def _instance_model(schema) -> type[BaseModel]:
    """A pydantic model for one instance: every feature required, nothing else allowed.

    ``strict=True`` refuses conversions: ``"3"`` is not a number, ``2.0`` is not an int and
    ``true`` is neither (an int is accepted where a float is expected).
    """
    if not isinstance(schema, Mapping) or not schema:
        raise ValueError(f"schema must be a non-empty mapping feature name -> spec, got {schema!r}")
    for name in schema:
        if not isinstance(name, str) or not name or name.startswith("_"):
            raise ValueError(f"feature names must be non-empty strings not starting with '_', got {name!r}")
    fields = {name: _instance_field(name, spec) for name, spec in schema.items()}
    return create_model("Instance", __config__=ConfigDict(extra="forbid", strict=True), **fields)


# --------------------------------------------------------------------------- the app


class _BodySizeLimit:
    """ASGI middleware: answer 413 to a body over ``max_bytes`` before anything parses it.

    It checks the declared Content-Length first, then counts the bytes actually received (a
    client may send no Content-Length, or a wrong one) and stops reading at the limit.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_large(scope, receive, send)
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope, receive, send):
        detail = f"request body is larger than the limit of {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _replay(body: bytes, receive):
    """An ASGI ``receive`` that hands over the body already read, then defers to the real one."""
    sent = False

    async def replayed():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _validation_error(request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 answer without the ``input`` of each error.

    The default answer echoes the offending input back, which fails for a NaN (JSON has no NaN,
    so the 422 would become a 500) and would send a large body back in full.
    """
    errors = [{k: v for k, v in error.items() if k != "input"} for error in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


def _checked_probabilities(probabilities, n: int) -> list[float]:
    """The model's output as a list of floats; raise if it is not ``n`` probabilities."""
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (n,):
        raise ValueError(f"predict_proba returned shape {p.shape}, expected ({n},)")
    if not np.all((p >= 0) & (p <= 1)):  # also catches NaN
        raise ValueError("predict_proba returned values outside [0, 1] (or NaN)")
    return p.tolist()


def service_app(title: str, model_version, max_body_bytes: int) -> FastAPI:
    """A FastAPI app with what every service of the book has: a request body limited to
    ``max_body_bytes`` (413 beyond), malformed JSON and invalid fields answered with a 422 that
    does not echo the input, and ``GET /health`` -> ``{"status": "ok", "model_version": ...}``."""
    app = FastAPI(title=title, version=str(model_version))
    app.add_middleware(_BodySizeLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)

    @app.get("/health")
    def health():
        return {"status": "ok", "model_version": model_version}

    return app


def create_prediction_app(
    predict_proba: Callable[[pd.DataFrame], np.ndarray],
    schema: Mapping,
    *,
    max_batch: int = 100,
    max_body_bytes: int = 100_000,
    model_version: str = "1",
) -> FastAPI:
    """A FastAPI app that serves ``predict_proba`` behind a validated JSON schema.

    Parameters
    ----------
    predict_proba
        Takes a DataFrame of instances (columns in schema order) and returns a 1-D array of
        probabilities, one per row, e.g. ``lambda X: pipeline.predict_proba(X)[:, 1]``.
    schema
        Feature name -> spec. A spec is a list (or tuple) of the allowed strings, for a
        categorical feature, or a dict ``{"type": "int" | "float", "min": ..., "max": ...}``
        with optional inclusive bounds.
    max_batch
        Most instances accepted in one request.
    max_body_bytes
        Largest request body accepted, in bytes.
    model_version
        Reported by both endpoints, so a client can tell which model answered.

    Returns
    -------
    fastapi.FastAPI
        With two endpoints:

        - ``GET /health`` -> ``{"status": "ok", "model_version": ...}``;
        - ``POST /predict`` with ``{"instances": [{feature: value, ...}, ...]}`` ->
          ``{"predictions": [p, ...], "model_version": ...}``.

    Notes
    -----
    Bad requests are answered with a 4xx and a JSON ``detail``; the server keeps serving:

    - **413** for a body over ``max_body_bytes`` (checked on Content-Length and on the bytes
      actually received, before parsing) and for more than ``max_batch`` instances. The batch is
      well-formed but too large for this server, which is what 413 (Content Too Large) says;
      a 422 would tell the client its request is invalid, which it is not.
    - **422** (FastAPI's validation error, whose ``detail`` lists each error with its location,
      e.g. ``["body", "instances", 0, "age"]``) for malformed JSON, a missing, extra, wrongly
      typed or out-of-range feature (NaN and infinity included), an unknown category and an
      empty ``instances`` list. Unlike FastAPI's default, the errors do not echo the input.
    - **405** for a wrong method, **404** for an unknown path (FastAPI's defaults).

    An exception inside ``predict_proba``, or an output that is not one probability per
    instance, is logged (logger ``mlsd.systems.serving``) and answered with a **500** and a generic
    message: the traceback stays on the server.
    """
    max_batch = check_int("max_batch", max_batch, minimum=1)
    max_body_bytes = check_int("max_body_bytes", max_body_bytes, minimum=1)
    if not callable(predict_proba):
        raise TypeError(f"predict_proba must be callable, got {type(predict_proba).__name__}")
    Instance = _instance_model(schema)
    # The upper bound on the batch is checked in the endpoint, to answer 413 rather than 422.
    PredictRequest = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid", strict=True),
        instances=(list[Instance], Field(min_length=1)),
    )
    columns = list(schema)

    app = service_app("mlsd prediction service", model_version, max_body_bytes)

    @app.post("/predict")
    def predict(body: PredictRequest):
        n = len(body.instances)
        if n > max_batch:
            raise HTTPException(413, f"{n} instances in one request; the limit is max_batch={max_batch}")
        X = pd.DataFrame([row.model_dump() for row in body.instances], columns=columns)
        try:
            predictions = _checked_probabilities(predict_proba(X), n)
        except Exception:
            logger.exception("predict_proba failed on a batch of %d instances", n)
            raise HTTPException(500, "internal error while predicting") from None
        return {"predictions": predictions, "model_version": model_version}

    return app


# --------------------------------------------------------------------------- the server


# uvicorn's log goes to the running servers' ``log`` lists, never to stderr: in a notebook, a
# background thread's stderr lands in whichever cell runs at that moment (a warning about a
# client that gave up during an overload test would appear, or not, in the next cell's output,
# depending on the machine's speed). The NullHandler swallows what arrives while none runs.
_UVICORN_LOG = logging.getLogger("uvicorn")
_UVICORN_LOG.addHandler(logging.NullHandler())
_UVICORN_LOG.propagate = False


# The server's event loop logs through ``asyncio`` too ("socket.send() raised exception", a
# task destroyed while pending), and that logger has no handler: its records would fall
# through to Python's last-resort handler, stderr, at whatever moment the loop hits them
# (in a notebook, under a later cell). While a server runs they go to its log instead.
_ASYNCIO_LOG = logging.getLogger("asyncio")
_asyncio_capture = {"servers": 0, "propagate": True}
_asyncio_lock = threading.Lock()


def _capture_asyncio(handler: logging.Handler, on: bool) -> None:
    with _asyncio_lock:
        if on:
            if _asyncio_capture["servers"] == 0:
                _asyncio_capture["propagate"] = _ASYNCIO_LOG.propagate
                _ASYNCIO_LOG.propagate = False
            _asyncio_capture["servers"] += 1
            _ASYNCIO_LOG.addHandler(handler)
        else:
            _ASYNCIO_LOG.removeHandler(handler)
            _asyncio_capture["servers"] -= 1
            if _asyncio_capture["servers"] == 0:
                _ASYNCIO_LOG.propagate = _asyncio_capture["propagate"]


class _LogLines(logging.Handler):
    """Appends each formatted log record to a list."""

    def __init__(self, lines: list[str]):
        super().__init__(logging.WARNING)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class BackgroundServer:
    """Run an ASGI app with uvicorn in a daemon thread, on 127.0.0.1 only.

    Use it as a context manager::

        with BackgroundServer(app) as server:
            httpx.get(server.url + "/health")

    Parameters
    ----------
    app
        The ASGI app, e.g. from :func:`create_prediction_app`.
    host
        Must be ``"127.0.0.1"``: the book's servers are reachable from this machine only.
    port
        0 (the default) lets the operating system pick a free port; :attr:`port` tells which.
    start_timeout
        Seconds to wait for the server to start (and, in :meth:`stop`, to stop).

    Notes
    -----
    A server runs once: :meth:`start` on a server that was already started raises
    ``RuntimeError`` (create a new one instead); :meth:`stop` on a server that is not running
    does nothing. uvicorn's and asyncio's warnings and errors while it runs are kept in
    :attr:`log` (lines such as ``"WARNING uvicorn.error: ..."``, from every server running at
    the time), not printed.
    """

    def __init__(self, app, host: str = LOOPBACK_HOST, port: int = 0, *, start_timeout: float = 10.0):
        if host != LOOPBACK_HOST:
            raise ValueError(f"servers bind 127.0.0.1 only, got host={host!r}")
        port = check_int("port", port, minimum=0)
        if port > 65535:
            raise ValueError(f"port must be <= 65535, got {port}")
        self.start_timeout = check_finite("start_timeout", start_timeout)
        # log_config=None: uvicorn keeps its hands off logging (its default sends it to stderr)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", log_config=None,
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self.log: list[str] = []
        self._log_handler = _LogLines(self.log)
        self._capturing = False
        self._thread: threading.Thread | None = None
        self._loop = None
        self.host, self.port = host, None

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:54321``."""
        if self.port is None:
            raise RuntimeError("the server is not running: call start() or use it in a with-block")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "BackgroundServer":
        """Start the server thread and wait until it accepts connections; return ``self``."""
        if self._thread is not None:
            raise RuntimeError("this server was already started; create a new BackgroundServer")
        self._capture_logs(True)
        self._thread = threading.Thread(target=self._server.run, name="mlsd-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._capture_logs(False)
                raise RuntimeError("the server stopped while starting (is the port already in use?)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start within {self.start_timeout} s")
            time.sleep(0.01)
        listener = self._server.servers[0]
        self.port, self._loop = listener.sockets[0].getsockname()[1], listener.get_loop()
        return self

    def stop(self) -> None:
        """Ask the server to exit and wait for its thread; raise if it is still alive after that."""
        if not self.running:
            return
        self._server.should_exit = True
        self._thread.join(self.start_timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {self.start_timeout} s")
        # The plain ``def`` endpoints ran in AnyIO worker threads of the server's event loop;
        # they were told to stop with it, and exit within moments: wait, so none is left behind.
        for thread in threading.enumerate():
            if getattr(thread, "loop", None) is self._loop:
                thread.join(self.start_timeout)
        self._capture_logs(False)
        self.port = None

    def _capture_logs(self, on: bool) -> None:
        """Send uvicorn's and asyncio's records to :attr:`log` (on), or stop (off; idempotent)."""
        if on == self._capturing:
            return
        (_UVICORN_LOG.addHandler if on else _UVICORN_LOG.removeHandler)(self._log_handler)
        _capture_asyncio(self._log_handler, on)
        self._capturing = on

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

def fault(answer: dict) -> str:
    """A short line naming the fault in a 4xx answer's JSON (``{"detail": ...}``): the text of
    a 404, 409 or of a 422 an endpoint raised, or ``field: message`` of the first validation
    error FastAPI found. For the tables of malformed requests the chapters show."""
    if not isinstance(answer, dict) or "detail" not in answer:
        raise ValueError(f"not an error answer (no 'detail'): {answer!r}")
    detail = answer["detail"]
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        where = [str(part) for part in detail[0].get("loc", []) if part != "body"]
        return f"{'.'.join(where) or 'body'}: {detail[0].get('msg', '')}"
    raise ValueError(f"an error answer's detail must be a str or a list of errors, got {detail!r}")

@contextmanager
def faiss_threads(n: int):
    """faiss on ``n`` OpenMP threads inside the block, restored after: a serving worker's small
    searches use one core, and threads waiting for work would only slow it down."""
    import faiss  # imported here: only the chapters with an index need it

    n = check_int("n", n, minimum=1)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


# --------------------------------------------------------------------------- load generation


@dataclass
class LoadTestResult:
    """What :func:`load_test` measured, one entry per request sent, in the order they were sent.

    Attributes
    ----------
    latencies_ms
        Time from sending the request to reading the whole response (or to the transport
        error), in milliseconds.
    status_codes
        HTTP status code, or 0 where the request failed without a response (refused
        connection, timeout).
    seconds
        Wall-clock duration of the whole test.
    errors
        Number of requests that failed without a response (status code 0).
    """

    latencies_ms: np.ndarray
    status_codes: np.ndarray
    seconds: float
    errors: int

    @property
    def n_requests(self) -> int:
        return len(self.status_codes)

    @property
    def throughput_rps(self) -> float:
        """Requests completed (any status) per second of wall-clock time."""
        return self.n_requests / self.seconds if self.seconds > 0 else float("nan")

    @property
    def ok_share(self) -> float:
        """Share of the requests sent that were answered 200."""
        return float(np.mean(self.status_codes == 200)) if self.n_requests else float("nan")


def check_loopback_url(url, name: str = "url") -> str:
    """Return ``url`` if it is an http(s) URL on this machine; raise naming ``name`` otherwise.

    The book's clients send requests only to its own servers, which bind the loopback
    interface: the host must be ``localhost`` or a loopback address (``127.0.0.1`` and the
    rest of ``127.0.0.0/8``, or IPv6 ``::1``, written ``http://[::1]:8000``). Used by the load
    generators here and by :mod:`mlsd.systems.rollout`'s shadow and canary.

    Raises
    ------
    TypeError
        If ``url`` is not a string.
    ValueError
        If its scheme is not http or https, or its host is not the loopback.
    """
    if not isinstance(url, str):
        raise TypeError(f"{name} must be a string URL, got {type(url).__name__}")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as error:  # e.g. an unclosed IPv6 bracket
        raise ValueError(f"{name} is not a valid URL ({error}): {url!r}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{name} must be an http:// or https:// URL, got {url!r}")
    if not (host == "localhost" or _is_loopback_ip(host)):
        raise ValueError(f"{name} must point at this machine (127.0.0.1, ::1 or localhost), "
                         f"got host {host!r} in {url!r}")
    return url


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_test(
    url: str,
    payloads: list,
    *,
    n_requests: int,
    concurrency: int = 4,
    timeout: float = 5.0,
    max_seconds: float = 30.0,
) -> LoadTestResult:
    """POST ``n_requests`` JSON bodies to ``url`` from ``concurrency`` threads; time each one.

    Request ``i`` sends ``payloads[i % len(payloads)]``. Each thread has its own
    ``httpx.Client`` (one keep-alive connection) and sends its next request as soon as the
    previous one is answered: a *closed-loop* load of ``concurrency`` clients.

    The test is bounded in count and in time: no new request is sent once ``max_seconds``
    have passed, so it lasts at most about ``max_seconds + timeout`` seconds, and the result
    then holds fewer than ``n_requests`` entries, but never none: the first request is sent
    however long the threads and their clients took to start (on a loaded machine that can
    exceed a short budget, and a load test that sent nothing would measure nothing).

    Parameters
    ----------
    url
        Full endpoint URL on this machine, e.g. ``server.url + "/predict"``; other hosts are
        refused.
    payloads
        Non-empty list of JSON-serialisable request bodies.
    n_requests, concurrency
        Total requests (>= 1) and worker threads (>= 1).
    timeout
        Seconds before one request is abandoned (counted in ``errors``).
    max_seconds
        Wall-clock budget for the whole test.
    """
    url = check_loopback_url(url)
    n_requests = check_int("n_requests", n_requests, minimum=1)
    concurrency = check_int("concurrency", concurrency, minimum=1)
    if not isinstance(payloads, (list, tuple)) or not payloads:
        raise ValueError("payloads must be a non-empty list of JSON bodies")
    timeout, max_seconds = check_finite("timeout", timeout), check_finite("max_seconds", max_seconds)
    if timeout <= 0 or max_seconds <= 0:
        raise ValueError(f"timeout and max_seconds must be > 0, got {timeout} and {max_seconds}")

    latencies = np.full(n_requests, np.nan)
    codes = np.zeros(n_requests, dtype=np.int64)
    claimed = [0]  # the next request index; a list so the workers can share and update it
    lock = threading.Lock()
    start = time.perf_counter()

    def next_index():
        with lock:
            over_time = claimed[0] > 0 and time.perf_counter() - start > max_seconds
            if claimed[0] >= n_requests or over_time:
                return None
            claimed[0] += 1
            return claimed[0] - 1

    def worker():
        # trust_env=False: no proxy settings from the environment for a request to 127.0.0.1
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            while (i := next_index()) is not None:
                sent = time.perf_counter()
                try:
                    codes[i] = client.post(url, json=payloads[i % len(payloads)]).status_code
                except httpx.TransportError:
                    codes[i] = 0
                latencies[i] = (time.perf_counter() - sent) * 1000

    threads = [threading.Thread(target=worker, name=f"mlsd-load-{k}") for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    n = claimed[0]
    return LoadTestResult(latencies[:n], codes[:n], time.perf_counter() - start, int(np.sum(codes[:n] == 0)))


def open_loop_load_test(
    url: str,
    payloads: list,
    *,
    rate: float,
    duration: float,
    seed: int,
    timeout: float = 2.0,
    max_in_flight: int = 64,
) -> LoadTestResult:
    """POST JSON bodies at the times of a Poisson process, whether or not earlier ones were answered.

    :func:`load_test` is a *closed* loop: each client waits for its answer before it sends
    again, so a slow server slows the load down and never sees more than ``concurrency``
    requests at once. Users do not wait for each other. Here request ``i`` is due at the
    ``i``-th arrival of a Poisson process of ``rate`` per second over ``duration`` seconds
    (gaps drawn with ``np.random.default_rng(seed)``), and it is sent then, from a pool of
    ``max_in_flight`` threads. Above the server's capacity the backlog grows for as long as the
    test lasts: latencies climb, and requests start to time out.

    Latency is counted from the time a request was *due*, not from when a thread could send it,
    so time spent queued in this client counts, as it would in a user's browser (counting from
    the send would hide the overload: "coordinated omission"). A request still unsent
    ``timeout`` seconds after it was due is given up without being sent (status 0), like one
    that waited ``timeout`` for an answer.

    Parameters
    ----------
    url, payloads
        As in :func:`load_test` (127.0.0.1 or localhost only; request ``i`` sends
        ``payloads[i % len(payloads)]``).
    rate, duration
        Arrivals per second (> 0) and seconds of arrivals (> 0); at most 100,000 requests.
    seed
        Seed of the arrival times (>= 0): two tests with one seed send at the same times.
    timeout
        Seconds after its due time before a request counts as failed (status 0).
    max_in_flight
        Threads, hence requests open at once (>= 1).

    Returns
    -------
    LoadTestResult
        One entry per request due, in the order due; ``seconds`` is the whole test's wall clock.
    """
    url = check_loopback_url(url)
    if not isinstance(payloads, (list, tuple)) or not payloads:
        raise ValueError("payloads must be a non-empty list of JSON bodies")
    rate, duration = check_finite("rate", rate), check_finite("duration", duration)
    timeout = check_finite("timeout", timeout)
    if rate <= 0 or duration <= 0 or timeout <= 0:
        raise ValueError(f"rate, duration and timeout must be > 0, got {rate}, {duration} and {timeout}")
    if rate * duration > 100_000:
        raise ValueError(f"rate * duration = {rate * duration:,.0f} requests; at most 100,000")
    seed = check_int("seed", seed, minimum=0)
    max_in_flight = check_int("max_in_flight", max_in_flight, minimum=1)

    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / rate, int(rate * duration * 1.5) + 50)
    due = np.cumsum(gaps)
    due = due[due < duration]
    n = due.size
    latencies = np.full(n, np.nan)
    codes = np.zeros(n, dtype=np.int64)
    local = threading.local()
    start = time.perf_counter()

    def send(i):
        waited = time.perf_counter() - start - due[i]
        if waited > timeout:   # given up before it could be sent
            latencies[i] = waited * 1000
            return
        if not hasattr(local, "client"):   # one keep-alive connection per thread
            # trust_env=False: no proxy settings from the environment for 127.0.0.1
            local.client = httpx.Client(trust_env=False)
            clients.append(local.client)
        try:
            codes[i] = local.client.post(url, json=payloads[i % len(payloads)],
                                         timeout=timeout - waited).status_code
        except httpx.TransportError:
            codes[i] = 0
        latencies[i] = (time.perf_counter() - start - due[i]) * 1000

    clients = []
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="mlsd-open-load") as pool:
        for i in range(n):
            pause = due[i] - (time.perf_counter() - start)
            if pause > 0:
                time.sleep(pause)
            pool.submit(send, i)
    for client in clients:
        client.close()
    return LoadTestResult(latencies, codes, time.perf_counter() - start, int(np.sum(codes == 0)))


def latency_summary(latencies_ms) -> dict:
    """Count, mean, median, 95th and 99th percentile and maximum of latencies in milliseconds.

    Percentiles are ``numpy.percentile(..., method="linear")``: the ``q``-th percentile of ``n``
    sorted values interpolates linearly at position ``(n - 1) * q / 100`` (0-based), so the
    p50 of 1, 2, ..., 100 is 50.5 and its p99 is 99.01.

    Raises
    ------
    ValueError
        If the input is empty, not 1-D, or holds a NaN, an infinite or a negative value.
    """
    x = np.asarray(latencies_ms, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"latencies_ms must be a non-empty 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x < 0):
        raise ValueError("latencies_ms must be finite and non-negative")
    p50, p95, p99 = np.percentile(x, [50, 95, 99], method="linear")
    return {
        "n": int(x.size),
        "mean_ms": float(x.mean()),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(x.max()),
    }


class StageClock:
    """Wall-clock milliseconds of each stage of a request path, request after request.

    Use one ``with clock.stage(name):`` block per stage and request; :meth:`table` then
    summarises each stage and the whole request (the sum of its stages)::

        clock = StageClock()
        for query in queries:
            with clock.stage("retrieval"):
                ...
            with clock.stage("ranking"):
                ...
        clock.table()
    """

    def __init__(self):
        self.ms: dict[str, list[float]] = {}

    @contextmanager
    def stage(self, name: str):
        """Time the block and record it under ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a stage needs a non-empty name, got {name!r}")
        start = time.perf_counter()
        yield
        self.ms.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    def table(self, total: str = "whole request") -> pd.DataFrame:
        """Per stage (in the order first timed) and for ``total``: requests, mean, p50, p99, max ms.

        Raises ``ValueError`` if nothing was timed or the stages were timed a different number
        of times (a request that skipped a stage cannot be summed).
        """
        if not self.ms:
            raise ValueError("no stage was timed")
        sizes = {len(v) for v in self.ms.values()}
        if len(sizes) != 1:
            raise ValueError(f"stages were timed unequal numbers of times: "
                             f"{ {k: len(v) for k, v in self.ms.items()} }")
        runs = {name: np.array(v) for name, v in self.ms.items()}
        runs[total] = np.sum(list(runs.values()), axis=0)
        return pd.DataFrame({name: {"requests": len(x), "mean ms": x.mean(),
                                    "p50 ms": np.percentile(x, 50), "p99 ms": np.percentile(x, 99),
                                    "max ms": x.max()} for name, x in runs.items()}).T
