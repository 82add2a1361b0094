"""Argument checks shared by the ``mlsd`` modules: fail early, name the problem."""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import pandas as pd

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")


def check_int(name: str, value, *, minimum: int | None = None) -> int:
    """Return ``value`` as an ``int``; raise if it is not an integer or is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_slug(name: str, value) -> str:
    """Return ``value`` if it is a lower-case identifier such as ``video_recommendation``."""
    if not isinstance(value, str) or not _SLUG.match(value):
        raise ValueError(
            f"{name} must be a lower-case identifier (letters, digits, underscores), got {value!r}"
        )
    return value


def check_finite(name: str, value) -> float:
    """Return ``value`` as a ``float``; raise if it is not a real number or is NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_frame(name: str, frame, columns) -> pd.DataFrame:
    """Return ``frame`` if it is a DataFrame holding every one of ``columns``, or raise."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}")
    return frame


def check_int_ids(name: str, values) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array of ids (may be empty); raise on another shape or kind."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got {arr.dtype}")
    return arr.astype(np.int64)


def check_array_1d(name: str, values) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D array; raise if it has another shape or is empty."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    return arr


def raise_first_bad(name: str, arr: np.ndarray, bad: np.ndarray, requirement: str) -> None:
    """Raise ``ValueError`` naming the first element of ``arr`` where ``bad`` is true, if any."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must {requirement}, got {arr[i].item()!r} at index {i}")


def check_finite_array(name: str, values) -> np.ndarray:
    """Return ``values`` as a non-empty 1-D float64 array of finite numbers, or raise."""
    arr = check_array_1d(name, values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must contain numbers, got values of type {arr.dtype}")
    arr = arr.astype(np.float64)
    raise_first_bad(name, arr, ~np.isfinite(arr), "be finite (no NaN or infinity)")
    return arr
