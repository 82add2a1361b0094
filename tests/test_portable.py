"""Where the numeric configuration cannot hold (ARM, an x86-64 CPU without AVX2, an OPENBLAS_CORETYPE
the machine sets for itself): every chapter still runs to the end, and its headline is compared
with the stored one within a tolerance. On a covered machine nbval compares every stored output
instead, and these tests are skipped.

The tolerance, and why. Other SIMD kernels change results in the last bits, and training and
top-k choices can grow that. Measured here (2026-12-05): with numpy on its SSE4 kernels, OpenBLAS
on Sandybridge's and faiss on scalar code (the setting ``tests/test_numeric.py`` uses), every
headline equalled the stored one to 10 decimals; when chapter 9's candidate funnel was cut with
another tie-breaking (0.02 % of its candidates changed), its headline score moved by 0.11 % and
its lift share by under 0.01. A new seed moves the lift shares far more: over seeds 0-2 they span
34-41 % (chapter 1), 53-57 % (5), 64-80 % (9) and 74-81 % (11). So a lift share within
``SHARE_TOLERANCE`` (absolute) and each score within ``RELATIVE_TOLERANCE`` of the stored one
passes: about ten times what a kernel was seen to move, and well inside a seed's spread. A larger
change means a result too fragile to print; fix it in the chapter, not here.
"""

from __future__ import annotations

import math

import pytest

from conftest import CHAPTERS
from mlsd import numeric
from mlsd.evaluation.headline import read_headline

SHARE_TOLERANCE = 0.02  # absolute, on the share of achievable lift
RELATIVE_TOLERANCE = 0.01  # on the baseline's, the model's and the oracle's scores

uncovered_only = pytest.mark.skipif(
    numeric.uncovered_reason() is None,
    reason="the numeric configuration holds here: nbval compares every stored output",
)


@uncovered_only
@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_to_the_end_and_its_headline_is_within_tolerance(path):
    from notebooks import execute

    stored = read_headline(path)
    nb, _ = execute(path)  # raises on any cell's error
    computed = read_headline(nb)
    assert computed.keys() == stored.keys()
    for name, want in stored.items():
        assert_close(name, computed[name], want)


def assert_close(name: str, got, want) -> None:
    """Texts equal; lift shares (and their intervals) within SHARE_TOLERANCE; every score, interval
    bound and system's score within RELATIVE_TOLERANCE."""
    if isinstance(want, str):
        assert got == want, name
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), name
        for key in want:
            assert_close(f"{name}[{key!r}]", got[key], want[key])
    elif isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), name
        for bound, g, w in zip(("low", "high"), got, want):
            assert_close(f"{name} {bound}", g, w)
    elif name.startswith("headline_lift_share"):
        assert math.isclose(got, want, abs_tol=SHARE_TOLERANCE), f"{name}: {got} vs stored {want}"
    else:
        assert math.isclose(got, want, rel_tol=RELATIVE_TOLERANCE), f"{name}: {got} vs stored {want}"


@pytest.mark.parametrize("name, got, want, ok", [
    ("headline_lift_share_interval", (0.41, 0.61), (0.40, 0.60), True),
    ("headline_lift_share_interval", (0.43, 0.60), (0.40, 0.60), False),
    ("headline_systems", {"a": 0.1002}, {"a": 0.1}, True),
    ("headline_systems", {"a": 0.102}, {"a": 0.1}, False),
    ("headline_systems", {"b": 0.1}, {"a": 0.1}, False),
    ("headline_unit", "800 users", "801 users", False),
])
def test_tolerance_reaches_into_intervals_and_systems(name, got, want, ok):
    if ok:
        assert_close(name, got, want)
    else:
        with pytest.raises(AssertionError):
            assert_close(name, got, want)
