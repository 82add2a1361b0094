"""data/measured/: samples recorded on a machine, not generated (Chapter 3's service times)."""

import hashlib

import numpy as np
import pandas as pd

from mlsd import datasets
from mlsd.datasets.world import MEASURED, checksums

SAMPLE = datasets.data_dir() / MEASURED / "notification_service_times.csv"


def test_the_service_time_sample_is_a_sample_of_service_times():
    sample = pd.read_csv(SAMPLE)
    assert list(sample.columns) == ["service_ms"]
    ms = sample["service_ms"].to_numpy()
    assert len(ms) >= 400 and np.all(np.isfinite(ms)) and np.all(ms > 0)
    # one request to a scikit-learn pipeline over HTTP: milliseconds, not microseconds or seconds
    assert 1 < np.median(ms) < 100


def test_the_readme_says_how_and_where_it_was_measured():
    text = (SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    for fragment in (SAMPLE.name, "tools/record_service_times.py", "load average"):
        assert fragment in text


def test_measured_files_are_not_in_the_generated_data_checksums(tmp_path):
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "a.csv").write_text("x\n1\n")
    before = checksums(tmp_path)
    (tmp_path / MEASURED).mkdir()
    (tmp_path / MEASURED / "sample.csv").write_text("service_ms\n1.0\n")
    assert checksums(tmp_path) == before == {
        "world/a.csv": hashlib.sha256(b"x\n1\n").hexdigest()}
