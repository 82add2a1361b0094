import json
import logging
import socket
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlsd.systems.serving import (BackgroundServer, StageClock, check_loopback_url,
                                  create_prediction_app, latency_summary, load_test,
                                  open_loop_load_test)

SCHEMA = {
    "device": ("ios", "android", "web"),
    "age": {"type": "int", "min": 13, "max": 120},
    "amount": {"type": "float", "min": 0.0},
}
MAX_BATCH = 60
MAX_BODY = 20_000
VALID = {"device": "ios", "age": 30, "amount": 12.5}


def _data(n, seed):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "device": rng.choice(SCHEMA["device"], n),
        "age": rng.integers(13, 121, n),
        "amount": rng.exponential(50.0, n),
    })
    logit = 0.8 * (X["device"] == "ios") - 0.03 * (X["age"] - 40) + 0.01 * X["amount"] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def model():
    X, y = _data(500, seed=0)
    encode = ColumnTransformer([
        ("device", OneHotEncoder(handle_unknown="ignore"), ["device"]),
        ("numbers", StandardScaler(), ["age", "amount"]),
    ])
    return make_pipeline(encode, LogisticRegression()).fit(X, y)


@pytest.fixture(scope="module")
def server(model):
    app = create_prediction_app(
        lambda X: model.predict_proba(X)[:, 1], SCHEMA,
        max_batch=MAX_BATCH, max_body_bytes=MAX_BODY, model_version="test-1",
    )
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=5.0, trust_env=False) as c:
        yield c


def _assert_serving(client):
    response = client.post("/predict", json={"instances": [VALID]})
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 1


# --------------------------------------------------------------------------- the happy path


def test_health(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": "test-1"}


def test_served_predictions_equal_offline_predictions(client, model):
    X, _ = _data(50, seed=1)
    response = client.post("/predict", json={"instances": X.to_dict(orient="records")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "test-1"
    np.testing.assert_allclose(body["predictions"], model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)


def test_an_int_is_accepted_for_a_float_feature(client):
    response = client.post("/predict", json={"instances": [dict(VALID, amount=12)]})
    assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- bad requests


def _instances(*rows):
    return {"json": {"instances": list(rows)}}


def _without(key):
    return {k: v for k, v in VALID.items() if k != key}


def _chunks():  # no Content-Length: the size is only known from the bytes received
    yield b'{"instances": ['
    for _ in range(30):
        yield b" " * 1000


BAD_REQUESTS = {
    # name: (method, request arguments, expected status, strings the answer must contain)
    "malformed json": ("POST", {"content": b'{"instances": [', "headers": {"content-type": "application/json"}}, 422, ["JSON decode error"]),
    "not an object": ("POST", {"json": [VALID]}, 422, ['"body"']),
    "no instances key": ("POST", {"json": {"rows": [VALID]}}, 422, ['"instances"', "missing"]),
    "missing field": ("POST", _instances(_without("age")), 422, ['"age"', "missing"]),
    "extra field": ("POST", _instances(dict(VALID, colour="red")), 422, ['"colour"', "extra_forbidden"]),
    "string for an int": ("POST", _instances(dict(VALID, age="30")), 422, ['"age"', "int_type"]),
    "float for an int": ("POST", _instances(dict(VALID, age=30.5)), 422, ['"age"', "int_type"]),
    "bool for a float": ("POST", _instances(dict(VALID, amount=True)), 422, ['"amount"', "float_type"]),
    "above max": ("POST", _instances(dict(VALID, age=500)), 422, ['"age"', "less_than_equal"]),
    "below min": ("POST", _instances(dict(VALID, amount=-1.0)), 422, ['"amount"', "greater_than_equal"]),
    "NaN": ("POST", {"content": b'{"instances": [{"device": "ios", "age": 30, "amount": NaN}]}', "headers": {"content-type": "application/json"}}, 422, ['"amount"', "finite_number"]),
    "unknown category": ("POST", _instances(dict(VALID, device="windows")), 422, ['"device"', "literal_error"]),
    "empty instances": ("POST", _instances(), 422, ['"instances"', "too_short"]),
    "batch too large": ("POST", _instances(*[VALID] * (MAX_BATCH + 1)), 413, [f"max_batch={MAX_BATCH}"]),
    "body too large": ("POST", {"json": {"instances": [VALID], "pad": " " * MAX_BODY}}, 413, [f"{MAX_BODY} bytes"]),
    "body too large, chunked": ("POST", {"content": _chunks}, 413, [f"{MAX_BODY} bytes"]),
    "wrong method": ("GET", {}, 405, ["Method Not Allowed"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_gets_a_clear_4xx_and_the_server_keeps_serving(client, case):
    method, kwargs, status, needles = BAD_REQUESTS[case]
    if callable(kwargs.get("content")):
        kwargs = dict(kwargs, content=kwargs["content"]())
    response = client.request(method, "/predict", **kwargs)
    assert response.status_code == status, response.text
    assert "detail" in response.json()
    for needle in needles:
        assert needle in response.text
    _assert_serving(client)


def test_failing_model_gets_a_500_without_the_traceback():
    def broken(X):
        raise RuntimeError("secret internal detail")

    with BackgroundServer(create_prediction_app(broken, SCHEMA)) as server:
        with httpx.Client(base_url=server.url, trust_env=False) as c:
            for _ in range(2):  # still serving after the first failure
                response = c.post("/predict", json={"instances": [VALID]})
                assert response.status_code == 500
                assert response.json() == {"detail": "internal error while predicting"}
                assert "secret" not in response.text
            assert c.get("/health").status_code == 200


@pytest.mark.parametrize("output", [np.ones((1, 2)), np.array([1.5]), np.array([np.nan]), np.ones(3)])
def test_bad_model_output_gets_a_500(output):
    with BackgroundServer(create_prediction_app(lambda X: output, SCHEMA)) as server:
        response = httpx.post(server.url + "/predict", json={"instances": [VALID]}, trust_env=False)
    assert response.status_code == 500


@pytest.mark.parametrize(
    "schema, error, message",
    [
        ({}, ValueError, "non-empty"),
        ([("age", {"type": "int"})], ValueError, "mapping"),
        ({"age": {"type": "double"}}, ValueError, "'int' or 'float'"),
        ({"age": {"type": "int", "low": 0}}, ValueError, "unknown keys"),
        ({"age": {"type": "int", "min": 5, "max": 1}}, ValueError, "above max"),
        ({"device": ()}, ValueError, "categorical"),
        ({"device": ("ios", 3)}, ValueError, "categorical"),
        ({"device": "ios"}, TypeError, "list of categories"),
        ({"_private": ("a",)}, ValueError, "feature names"),
    ],
)
def test_bad_schema_is_refused(schema, error, message):
    with pytest.raises(error, match=message):
        create_prediction_app(lambda X: np.zeros(len(X)), schema)


def test_bad_app_arguments_are_refused():
    with pytest.raises(TypeError, match="callable"):
        create_prediction_app("model", SCHEMA)
    with pytest.raises(ValueError, match="max_batch"):
        create_prediction_app(lambda X: X, SCHEMA, max_batch=0)


# --------------------------------------------------------------------------- the server


def test_server_stops_cleanly_and_closes_its_port():
    threads_before = set(threading.enumerate())
    server = BackgroundServer(create_prediction_app(lambda X: np.zeros(len(X)), SCHEMA))
    with pytest.raises(RuntimeError, match="not running"):
        server.url
    with server:
        port = server.port
        assert port > 0 and server.url == f"http://127.0.0.1:{port}"
        assert httpx.get(server.url + "/health", trust_env=False).status_code == 200
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    assert not server.running
    server.stop()  # stopping a stopped server does nothing
    assert set(threading.enumerate()) - threads_before == set()  # no thread left behind
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_server_keeps_its_log_instead_of_printing_it(model, capfd):
    """In a notebook, a server thread's stderr would land in whatever cell runs next."""
    app = create_prediction_app(lambda X: model.predict_proba(X)[:, 1], SCHEMA)
    with BackgroundServer(app) as server:
        logging.getLogger("uvicorn.error").warning("a client went away")
    logging.getLogger("uvicorn.error").error("after the server stopped")
    assert server.log == ["WARNING uvicorn.error: a client went away"]
    captured = capfd.readouterr()
    assert "went away" not in captured.err + captured.out and "stopped" not in captured.err


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost", "192.168.1.10", "::"])
def test_server_refuses_non_loopback_hosts(host):
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        BackgroundServer(create_prediction_app(lambda X: np.zeros(len(X)), SCHEMA), host=host)


# --------------------------------------------------------------------------- load tests


def test_load_test_against_the_server(server):
    payloads = [{"instances": [VALID]}, {"instances": [dict(VALID, device="web")] * 5}]
    result = load_test(server.url + "/predict", payloads, n_requests=40, concurrency=4)
    assert result.n_requests == 40 and result.errors == 0
    assert result.latencies_ms.shape == result.status_codes.shape == (40,)
    assert np.all(result.status_codes == 200) and result.ok_share == 1.0
    assert np.all(np.isfinite(result.latencies_ms)) and np.all(result.latencies_ms > 0)
    assert result.seconds > 0 and result.throughput_rps > 0
    assert latency_summary(result.latencies_ms)["n"] == 40


def test_load_test_counts_transport_errors():
    with BackgroundServer(create_prediction_app(lambda X: np.zeros(len(X)), SCHEMA)) as server:
        url = server.url + "/predict"
    result = load_test(url, [{"instances": [VALID]}], n_requests=3, concurrency=1, timeout=1.0)
    assert result.errors == 3 and np.all(result.status_codes == 0) and result.ok_share == 0.0


def test_load_test_stops_at_max_seconds(server):
    result = load_test(server.url + "/predict", [{"instances": [VALID]}], n_requests=10_000, max_seconds=0.2)
    assert 1 <= result.n_requests < 10_000
    assert result.seconds < 5


def test_load_test_sends_the_first_request_even_if_the_budget_ran_out_while_starting(server):
    # a budget shorter than starting a thread: on a loaded machine 0.2 s can be, too
    result = load_test(server.url + "/predict", [{"instances": [VALID]}], n_requests=100,
                       max_seconds=1e-9)
    assert result.n_requests == 1 and result.status_codes.tolist() == [200]


@pytest.mark.parametrize(
    "url, kwargs, message",
    [
        ("http://example.com/predict", {}, "127.0.0.1"),
        ("http://10.0.0.1:8000/predict", {}, "127.0.0.1"),
        ("ftp://127.0.0.1/predict", {}, "127.0.0.1"),
        ("http://127.0.0.1:1/predict", {"n_requests": 0}, "n_requests"),
        ("http://127.0.0.1:1/predict", {"concurrency": 0}, "concurrency"),
        ("http://127.0.0.1:1/predict", {"payloads": []}, "payloads"),
        ("http://127.0.0.1:1/predict", {"max_seconds": 0}, "max_seconds"),
    ],
)
def test_load_test_refuses_bad_arguments(url, kwargs, message):
    arguments = {"payloads": [{}], "n_requests": 1} | kwargs
    with pytest.raises(ValueError, match=message):
        load_test(url, arguments.pop("payloads"), **arguments)


@pytest.fixture(scope="module")
def slow_server():
    """A server that answers one request at a time in 20 ms: at most 50 a second."""
    lock = threading.Lock()

    def predict(X):
        with lock:
            time.sleep(0.02)
        return np.zeros(len(X))

    with BackgroundServer(create_prediction_app(predict, SCHEMA)) as running:
        yield running


def test_open_loop_below_capacity_answers_every_request_quickly(slow_server):
    result = open_loop_load_test(slow_server.url + "/predict", [{"instances": [VALID]}],
                                 rate=15.0, duration=1.0, seed=0)
    due = np.cumsum(np.random.default_rng(0).exponential(1 / 15, 100))
    assert result.n_requests == np.sum(due < 1.0)   # the arrivals of the seed, no more
    assert result.errors == 0 and result.ok_share == 1.0
    assert np.all(np.isfinite(result.latencies_ms)) and np.all(result.latencies_ms > 0)


def test_open_loop_overload_grows_a_backlog_a_closed_loop_never_shows(slow_server):
    url, payloads = slow_server.url + "/predict", [{"instances": [VALID]}]
    # 80 a second for 1.5 s, over the capacity: the backlog, hence the wait, grows for as long
    # as the load lasts, so the last tenth of the requests waits far longer than the first.
    opened = open_loop_load_test(url, payloads, rate=80.0, duration=1.5, seed=1, timeout=5.0)
    first, *_, last = np.array_split(opened.latencies_ms, 10)
    assert np.median(last) > 1.5 * np.median(first) and np.median(last) > 500   # 25 services
    assert opened.errors == 0 and opened.seconds > 2.0   # it drains after the arrivals stop
    # Four clients that wait for their answers never queue more than four requests.
    closed = load_test(url, payloads, n_requests=60, concurrency=4)
    assert closed.errors == 0 and np.percentile(closed.latencies_ms, 99) < np.median(last) / 2


@pytest.mark.parametrize(
    "url, kwargs, message",
    [
        ("http://example.com/predict", {}, "127.0.0.1"),
        ("http://127.0.0.1:1/predict", {"rate": 0}, "rate"),
        ("http://127.0.0.1:1/predict", {"duration": -1}, "duration"),
        ("http://127.0.0.1:1/predict", {"rate": 1e6, "duration": 1}, "100,000"),
        ("http://127.0.0.1:1/predict", {"payloads": []}, "payloads"),
        ("http://127.0.0.1:1/predict", {"seed": -1}, "seed"),
        ("http://127.0.0.1:1/predict", {"max_in_flight": 0}, "max_in_flight"),
    ],
)
def test_open_loop_load_test_refuses_bad_arguments(url, kwargs, message):
    arguments = {"payloads": [{}], "rate": 1.0, "duration": 1.0, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        open_loop_load_test(url, arguments.pop("payloads"), **arguments)


# --------------------------------------------------------------------------- latency summary


def test_latency_summary_by_hand():
    # linear percentiles of 1..100 sit at 0-based position 99 q / 100: p50 = 50.5,
    # p95 = 1 + 94.05 = 95.05, p99 = 1 + 98.01 = 99.01
    summary = latency_summary(np.arange(1, 101))
    assert summary == pytest.approx(
        {"n": 100, "mean_ms": 50.5, "p50_ms": 50.5, "p95_ms": 95.05, "p99_ms": 99.01, "max_ms": 100.0}
    )
    assert json.dumps(summary)  # plain Python numbers, ready to print or glue


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]], [1.0, np.nan], [1.0, np.inf], [1.0, -0.5]])
def test_latency_summary_refuses_bad_input(bad):
    with pytest.raises(ValueError, match="latencies_ms"):
        latency_summary(bad)


# --------------------------------------------------------------------------- the loopback check


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/predict", "https://127.0.0.1",
                                 "http://127.3.4.5:1", "http://localhost:9", "http://[::1]:8000/",
                                 "http://[0:0:0:0:0:0:0:1]:80"])
def test_check_loopback_url_accepts_this_machine(url):
    assert check_loopback_url(url, "stable_url") == url


@pytest.mark.parametrize("url, message", [
    ("http://example.com/predict", "stable_url must point at this machine.*'example.com'"),
    ("http://10.0.0.1:8000", "stable_url must point at this machine.*'10.0.0.1'"),
    ("http://[2001:db8::1]:80", "stable_url must point at this machine"),
    ("http://0.0.0.0:80", "stable_url must point at this machine"),
    ("ftp://127.0.0.1/predict", "stable_url must be an http:// or https:// URL"),
    ("127.0.0.1:8000", "stable_url must be an http:// or https:// URL"),
    ("http://[::1:80", "stable_url is not a valid URL"),
])
def test_check_loopback_url_refuses_other_hosts_and_schemes(url, message):
    with pytest.raises(ValueError, match=message):
        check_loopback_url(url, "stable_url")


def test_check_loopback_url_needs_a_string():
    with pytest.raises(TypeError, match="url must be a string URL"):
        check_loopback_url(b"http://127.0.0.1")


def test_the_load_generators_accept_the_ipv6_loopback():
    """Nothing listens there: the request fails (status 0), but the URL is not refused."""
    result = load_test("http://[::1]:9/predict", [{}], n_requests=1, timeout=0.5)
    assert result.n_requests == 1 and result.errors == 1


# --------------------------------------------------------------------------- StageClock


def test_stage_clock_sums_stages_into_the_whole_request():
    clock = StageClock()
    for _ in range(3):
        with clock.stage("a"):
            pass
        with clock.stage("b"):
            sum(range(1000))
    table = clock.table()
    assert list(table.index) == ["a", "b", "whole request"]
    assert (table["requests"] == 3).all()
    assert table.loc["whole request", "mean ms"] == pytest.approx(table["mean ms"].iloc[:2].sum())
    assert (table[["mean ms", "p50 ms", "p99 ms", "max ms"]] >= 0).all().all()


def test_stage_clock_refuses_unequal_stages_nothing_timed_and_nameless_stages():
    clock = StageClock()
    with pytest.raises(ValueError, match="no stage"):
        clock.table()
    with clock.stage("a"):
        pass
    with clock.stage("a"):
        pass
    with clock.stage("b"):
        pass
    with pytest.raises(ValueError, match="unequal"):
        clock.table()
    with pytest.raises(ValueError, match="non-empty name"):
        with clock.stage(""):
            pass


def test_asyncio_records_go_to_the_server_log_while_it_runs(capsys):
    app = create_prediction_app(lambda X: [0.5] * len(X), SCHEMA)
    logger = logging.getLogger("asyncio")
    propagate = logger.propagate
    with BackgroundServer(app) as server:
        logger.warning("a record from the event loop")
        assert logger.propagate is False
    assert any("asyncio: a record from the event loop" in line for line in server.log)
    assert "a record from the event loop" not in capsys.readouterr().err
    assert logger.propagate is propagate and server._log_handler not in logger.handlers


def test_faiss_threads_sets_the_count_inside_and_restores_it():
    import faiss

    from mlsd.systems.serving import faiss_threads

    before = faiss.omp_get_max_threads()
    with faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ValueError, match="n must be >= 1"):
        with faiss_threads(0):
            pass
