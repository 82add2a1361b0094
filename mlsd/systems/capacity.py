"""Capacity arithmetic: how many single-threaded workers a request path needs at peak.

Given the mean service time of each way of answering a request (measured on this machine, or
measured and extrapolated), the peak request rate and how long a request may wait for a free
worker, :func:`capacity_table` sizes each path twice:

- **cores at 100% busy**: ``peak_qps * service time``, the work itself (Little's law); no
  queue could run on fewer;
- **cores needed**: the smallest count of M/M/c workers whose mean wait in the queue stays
  under the target, from the Erlang C formula (:func:`mlsd.systems.queueing.servers_needed`).

The gap between the two is the price of answering within the budget when requests arrive at
random; its share is the **utilisation** the fleet runs at. Chapter 3 derives the
formula and checks it by simulation.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from mlsd._checks import check_finite
from mlsd.systems.queueing import servers_needed

__all__ = ["capacity_table"]


def _positive(name: str, value) -> float:
    value = check_finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def capacity_table(service_ms: Mapping[str, float], peak_qps: float,
                   wait_target_ms: float) -> pd.DataFrame:
    """Workers needed per request path at ``peak_qps``, mean queueing wait under the target.

    Parameters
    ----------
    service_ms
        Path name -> mean service time of one request on one worker, in milliseconds (> 0).
    peak_qps
        Requests per second at peak (> 0).
    wait_target_ms
        Largest acceptable mean wait for a free worker, in milliseconds (>= 0).

    Returns
    -------
    pandas.DataFrame
        One row per path, in the order given, with columns ``mean service (ms)``,
        ``cores at 100% busy`` (``peak_qps * ms / 1000``), ``cores needed`` (an int) and
        ``utilisation`` (busy / needed). The columns' name states the target, so a printed
        table says what "needed" means.

    Raises
    ------
    ValueError
        If ``service_ms`` is empty, a time or the rate is not a positive number, or the
        target is negative.
    TypeError
        If ``service_ms`` is not a mapping.
    """
    if not isinstance(service_ms, Mapping):
        raise TypeError(f"service_ms must map path names to milliseconds, got "
                        f"{type(service_ms).__name__}")
    if not service_ms:
        raise ValueError("service_ms is empty: give at least one path")
    peak_qps = _positive("peak_qps", peak_qps)
    wait_target_ms = check_finite("wait_target_ms", wait_target_ms)
    if wait_target_ms < 0:
        raise ValueError(f"wait_target_ms must be >= 0, got {wait_target_ms}")
    rows = {}
    for path, ms in service_ms.items():
        ms = _positive(f"service_ms[{path!r}]", ms)
        busy = peak_qps * ms / 1000
        needed = servers_needed(peak_qps, 1000 / ms, max_mean_wait=wait_target_ms / 1000)
        rows[path] = {"mean service (ms)": ms, "cores at 100% busy": busy,
                      "cores needed": needed, "utilisation": busy / needed}
    table = pd.DataFrame(rows).T.astype({"cores needed": int})
    table.columns.name = f"mean wait < {wait_target_ms:g} ms at {peak_qps:,.0f} requests/s"
    return table
