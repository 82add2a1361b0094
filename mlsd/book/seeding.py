"""One seed per notebook, and independent random streams derived from it.

Every notebook fixes a single integer seed in its parameters cell and passes it explicitly.
Code that needs randomness asks for a stream *by name*::

    rng_users = make_rng(seed, "users")
    rng_items = make_rng(seed, "items")

Named streams are independent, and adding a new stream never changes the numbers drawn from
the existing ones -- so a generator can grow without silently changing every dataset.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mlsd._checks import check_int


def _key_to_int(key: str) -> int:
    # A stable hash (unlike the built-in ``hash``, which depends on PYTHONHASHSEED).
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "little")


def make_rng(seed: int, *keys: str) -> np.random.Generator:
    """Return a NumPy ``Generator`` for ``seed``, optionally specialised by string ``keys``.

    Parameters
    ----------
    seed : int
        A non-negative integer: the notebook's (or the dataset's) seed.
    *keys : str
        Names that select an independent stream, e.g. ``make_rng(7, "users")``.
        The same ``(seed, keys)`` always gives the same stream.

    Raises
    ------
    TypeError
        If ``seed`` is not an integer or a key is not a string.
    ValueError
        If ``seed`` is negative or a key is empty.
    """
    seed = check_int("seed", seed, minimum=0)
    entropy = [seed]
    for key in keys:
        if not isinstance(key, str):
            raise TypeError(f"stream keys must be strings, got {type(key).__name__} {key!r}")
        if not key:
            raise ValueError("stream keys must be non-empty strings")
        entropy.append(_key_to_int(key))
    return np.random.default_rng(np.random.SeedSequence(entropy))
