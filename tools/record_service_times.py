"""Record the service-time sample that drives Chapter 3's capacity simulations.

    .venv/bin/python tools/record_service_times.py [--requests 1000]

Serves the chapter's model (the logistic regression of Chapter 1, trained on the first three
weeks at seed 0) behind the chapter's schema with ``create_prediction_app`` on a
``BackgroundServer``, sends ``--requests`` single-notification requests **one at a time**
(``load_test(..., concurrency=1)``, after 50 warm-up requests), and writes each request's
latency, which with one client is its service time, to
``data/measured/notification_service_times.csv`` (column ``service_ms``), with a line about the
machine in ``data/measured/README.md``.

Wall-clock times depend on the machine and on what else it runs: record on a quiet machine
(the script prints the load average before and after) and commit the file. The chapter then
simulates with the stored sample, so its capacity numbers are the same on every machine; it
also measures this machine's service times and shows them beside the stored ones.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import machine  # noqa: E402

from mlsd.datasets import data_dir, load  # noqa: E402
from mlsd.models import notification_model as nm  # noqa: E402
from mlsd.systems.serving import (BackgroundServer, create_prediction_app,  # noqa: E402
                                  latency_summary, load_test)

SAMPLE = "notification_service_times.csv"


def chapter_model_and_schema(seed: int = 0):
    """The model and request schema of Chapter 3, built as the chapter builds them."""
    world = load("notifications", seed=seed)
    data = nm.add_features(world.observed["notifications"], world.observed["users"])
    train, test = data[data["day"] < 21], data[data["day"] >= 21]
    model = nm.logistic_regression().fit(train[nm.FEATURES], train["opened"])
    schema = {
        "platform": sorted(train["platform"].unique()),
        "topic": sorted(train["topic"].unique()),
        "favourite_topic": sorted(train["favourite_topic"].unique()),
        "hour": {"type": "int", "min": int(train["hour"].min()), "max": int(train["hour"].max())},
        "nth_today": {"type": "int", "min": 1, "max": 50},
        "tenure_days": {"type": "int", "min": 0},
        "user_open_rate": {"type": "float", "min": 0.0, "max": 1.0},
        "topic_sends": {"type": "float", "min": 0.0},
        "user_topic_open_rate": {"type": "float", "min": 0.0, "max": 1.0},
    }
    return model, schema, test


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.requests < 100:
        parser.error("--requests must be at least 100")
    before = os.getloadavg()[0]
    model, schema, test = chapter_model_and_schema()
    app = create_prediction_app(lambda X: model.predict_proba(X)[:, 1], schema, max_batch=100)
    rows = test.head(200)[nm.FEATURES].to_dict(orient="records")
    payloads = [{"instances": [row]} for row in rows]
    with BackgroundServer(app) as server:
        load_test(server.url + "/predict", payloads, n_requests=50, concurrency=1)  # warm-up
        result = load_test(server.url + "/predict", payloads, n_requests=args.requests,
                           concurrency=1, max_seconds=120)
    if result.ok_share != 1.0 or result.n_requests != args.requests:
        sys.exit(f"only {result.n_requests} requests, {result.ok_share:.1%} answered 200: not stored")
    after = os.getloadavg()[0]
    folder = data_dir() / "measured"
    folder.mkdir(exist_ok=True)
    pd.DataFrame({"service_ms": np.round(result.latencies_ms, 4)}).to_csv(folder / SAMPLE, index=False)
    summary = {k: round(v, 3) for k, v in latency_summary(result.latencies_ms).items()}
    print(f"wrote {folder / SAMPLE}: {summary}")
    print(f"recorded on {machine()}, {datetime.date.today().isoformat()}, "
          f"load average {before:.2f} before and {after:.2f} after")


if __name__ == "__main__":
    main()
