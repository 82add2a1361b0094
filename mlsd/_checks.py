"""Argument checks shared by the ``mlsd`` modules: fail early, name the problem."""

from __future__ import annotations

import math
import numbers
import re

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
