import os
import subprocess
import sys

import numpy as np
import pytest

from mlsd.book.seeding import make_rng


def test_same_seed_and_keys_give_the_same_stream():
    assert np.array_equal(make_rng(3, "users").random(5), make_rng(3, "users").random(5))


def test_keys_and_seeds_select_different_streams():
    draws = {
        "users": make_rng(3, "users").random(5),
        "items": make_rng(3, "items").random(5),
        "seed 4": make_rng(4, "users").random(5),
        "no key": make_rng(3).random(5),
    }
    values = list(draws.values())
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            assert not np.allclose(values[i], values[j])


def test_stream_does_not_depend_on_hash_randomisation():
    code = "from mlsd.book.seeding import make_rng; print(make_rng(0, 'users').integers(0, 10**9))"
    draws = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("0", "1", "random")
    }
    assert len(draws) == 1


@pytest.mark.parametrize(
    "seed, keys, error, message",
    [
        (-1, (), ValueError, "seed must be >= 0"),
        (1.5, (), TypeError, "seed must be an integer"),
        (True, (), TypeError, "seed must be an integer"),
        (1, (3,), TypeError, "stream keys must be strings"),
        (1, ("",), ValueError, "non-empty"),
    ],
)
def test_bad_arguments_are_named(seed, keys, error, message):
    with pytest.raises(error, match=message):
        make_rng(seed, *keys)
