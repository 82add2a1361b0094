"""The book's one style for plots and tables, set by an explicit call (never as an import
side effect).

>>> from mlsd.book.plotting import use_book_style, ROLE_COLORS
>>> use_book_style()

Colours come from the Okabe-Ito palette, which stays distinguishable under the common forms of
colour blindness. Baseline, model and oracle keep the same colour in every chapter.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from cycler import cycler

from mlsd._checks import check_finite

__all__ = ["OKABE_ITO", "ROLE_COLORS", "use_book_style", "table_html", "metric_bars"]

OKABE_ITO = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "vermillion": "#D55E00",
    "sky": "#56B4E9",
    "purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: The same role keeps the same colour across the book.
ROLE_COLORS = {
    "baseline": "#999999",
    "model": OKABE_ITO["blue"],
    "oracle": OKABE_ITO["green"],
    "alert": OKABE_ITO["vermillion"],
}

_RC = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#DDDDDD",
    "grid.linewidth": 0.8,
    "axes.axisbelow": True,
    "lines.linewidth": 2.0,
    "axes.prop_cycle": cycler(color=[OKABE_ITO[c] for c in ("blue", "orange", "green", "vermillion", "sky", "purple", "black")]),
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (sizes readable on a laptop, colour-blind safe colours)
    and its table style: every cell's full text (pandas cuts it at 50 characters, which hid the
    error messages of chapter 3's bad-request table, the very thing it shows) and large whole
    numbers with thousands separators (see :func:`table_html`)."""
    import pandas as pd  # imported here: importing this module stays free of side effects

    mpl.rcParams.update(_RC)
    pd.set_option("display.max_colwidth", None)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with every notebook kernel
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, table_html)


#: Whole numbers from this size on are printed with thousands separators (20,000,000).
THOUSANDS_FROM = 10_000


def _with_separators(value):
    """``20000000`` → ``"20,000,000"`` for whole numbers from :data:`THOUSANDS_FROM` on; other
    values unchanged (pandas then formats them as it always does)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if abs(int(value)) >= THOUSANDS_FROM:
            return f"{int(value):,}"
    return value


def table_html(frame) -> str:
    """A DataFrame as the notebook shows it, whole numbers ≥ 10,000 with thousands separators.

    The prose writes 120,000,000; a table that prints 120000000 beside it makes the reader count
    digits. Integer columns and whole numbers in mixed (object) columns are formatted; columns
    whose name ends in ``id`` (identifiers, not quantities) and float columns are left as pandas
    shows them.
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"table_html formats a pandas DataFrame, got {type(frame).__name__}")
    shown = frame.copy()
    for position, column in enumerate(frame.columns):
        name = str(column[-1] if isinstance(column, tuple) else column)
        values = frame.iloc[:, position]
        if not name.lower().endswith("id") and (pd.api.types.is_integer_dtype(values)
                                                or values.dtype == object):
            shown.isetitem(position, values.map(_with_separators).astype(object))
    return shown._repr_html_()   # pandas' own notebook HTML, under the display options

def metric_bars(scores: Mapping[str, float], metric: str, *, ax=None, roles: Mapping[str, str] | None = None):
    """Horizontal bars of one metric for several systems, each bar labelled with its value.

    Parameters
    ----------
    scores : mapping
        ``{system name: metric value}``, drawn top to bottom in the given order.
    metric : str
        The metric's name, for the axis label.
    ax : matplotlib Axes, optional
        Where to draw (a new figure if omitted).
    roles : mapping, optional
        ``{system name: role}`` with roles from :data:`ROLE_COLORS`, to colour bars by role
        (unlisted systems are drawn as ``"model"``).

    Returns
    -------
    matplotlib Axes
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError("scores must be a non-empty mapping {system name: value}")
    values = [check_finite(f"score of {name!r}", value) for name, value in scores.items()]
    if not isinstance(metric, str) or not metric:
        raise ValueError("metric must be a non-empty string")
    roles = dict(roles or {})
    bad = set(roles.values()) - set(ROLE_COLORS)
    if bad:
        raise ValueError(f"unknown roles {sorted(bad)}; use {sorted(ROLE_COLORS)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7.0, 0.5 + 0.45 * len(scores)))
    names = list(scores)
    colors = [ROLE_COLORS[roles.get(n, "model")] for n in names]
    bars = ax.barh(names, values, color=colors)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], padding=3)
    ax.set_xlabel(metric)
    ax.grid(axis="y", visible=False)
    ax.set_xlim(min(0.0, min(values)), max(values) * 1.15 if max(values) > 0 else 1.0)
    return ax
