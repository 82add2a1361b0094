import math

import pytest

from mlsd.systems.capacity import capacity_table
from mlsd.systems.queueing import mmc_mean_wait


def test_capacity_table_by_hand():
    table = capacity_table({"fast": 10.0, "slow": 40.0}, peak_qps=1000, wait_target_ms=5)
    assert list(table.index) == ["fast", "slow"]
    assert list(table.columns) == ["mean service (ms)", "cores at 100% busy", "cores needed",
                                   "utilisation"]
    assert table.columns.name == "mean wait < 5 ms at 1,000 requests/s"
    assert table.loc["fast", "cores at 100% busy"] == pytest.approx(10.0)   # Little's law
    assert table.loc["slow", "cores at 100% busy"] == pytest.approx(40.0)
    for path, ms in (("fast", 10.0), ("slow", 40.0)):
        c = int(table.loc[path, "cores needed"])
        assert c > 1000 * ms / 1000                                      # stable
        assert mmc_mean_wait(1000, 1000 / ms, c) <= 0.005                # meets the target
        assert mmc_mean_wait(1000, 1000 / ms, c - 1) > 0.005 or c - 1 <= 1000 * ms / 1000
        assert table.loc[path, "utilisation"] == pytest.approx(ms / c)
    assert table["cores needed"].dtype.kind == "i"


def test_one_server_case():
    # 1 request/s of 100 ms: rho = 0.1 on one server, W_q = rho / (mu - lambda) = 0.1 / 9 s
    table = capacity_table({"x": 100.0}, peak_qps=1, wait_target_ms=1000 * 0.1 / 9 + 1e-9)
    assert int(table.loc["x", "cores needed"]) == 1
    assert math.isclose(table.loc["x", "utilisation"], 0.1)


@pytest.mark.parametrize("args, error, message", [
    (({}, 10, 5), ValueError, "empty"),
    (([10.0], 10, 5), TypeError, "map path names"),
    (({"a": 0.0}, 10, 5), ValueError, "service_ms\\['a'\\]"),
    (({"a": 1.0}, -1, 5), ValueError, "peak_qps"),
    (({"a": 1.0}, 10, -5), ValueError, "wait_target_ms"),
    (({"a": float("nan")}, 10, 5), ValueError, "finite"),
])
def test_bad_input_is_named(args, error, message):
    with pytest.raises(error, match=message):
        capacity_table(*args)
