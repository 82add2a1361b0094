"""Deterministic per-key randomness shared by the world generators: a value that is a fixed function of ids.

A world can give every (user, video) pair its own noise without storing a table of pairs: the noise is a
hash of the ids and a stored salt. These helpers are that hash (SplitMix64) and the Box-Muller step that
turns it into a standard normal.
"""

from __future__ import annotations

import numpy as np


def splitmix64(x: np.ndarray) -> np.ndarray:
    """One round of the SplitMix64 mixer on uint64 values (relies on 64-bit wrap-around)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def normal_from_hash(h1: np.ndarray) -> np.ndarray:
    """A standard normal from a uint64 hash: one more SplitMix64 round gives a second uniform (Box-Muller)."""
    with np.errstate(over="ignore"):
        h2 = splitmix64(h1)
    u1 = ((h1 >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53  # in (0, 1)
    u2 = (h2 >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
