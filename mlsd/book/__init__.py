"""The book's own machinery: what a notebook needs that is not about machine learning.

- :mod:`~mlsd.book.seeding`   -- one seed per notebook, independent named random streams.
- :mod:`~mlsd.book.plotting`  -- the book's one matplotlib and table style, set by an explicit call.
- :mod:`~mlsd.book.diagrams`  -- system diagrams (offline vs online world) from a small spec.
- :mod:`~mlsd.book.exercises` -- the exercises and solutions, read back from the notebooks.

and, here, :func:`glue_numbers` (the numbers a chapter's prose quotes, recorded in one line)
and :func:`show_source` (shared code shown where a chapter explains it).
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

__all__ = ["glue_numbers", "show_source"]

#: The widest code line the book shows: 88 characters fit the text column at 1366 px.
CODE_WIDTH = 88


def glue_numbers(**values) -> None:
    """Record values for the prose, ``name=value`` each: ``{glue:text}`name``` quotes them.

    One call takes every number a cell hands to the text, so the bookkeeping is one line under
    the code a reader came for (the book's readability limit), not a tail of ``glue`` calls.
    numpy scalars are stored as Python numbers (their text is ``0.5``, not ``np.float64(0.5)``);
    round in the prose with a format spec (``{glue:text}`name:.2f```), or here when the rounded
    value is itself the point.

    Raises
    ------
    ValueError
        If no value is given, or a number is NaN or infinite (a sentence cannot quote it).
    TypeError
        If a value is None.
    """
    from myst_nb import glue

    if not values:
        raise ValueError("give at least one name=value to glue")
    checked = {}
    for name, value in values.items():   # check every value before gluing any
        if value is None:
            raise TypeError(f"{name} is None: compute it before gluing it")
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(value):
            raise ValueError(f"{name} is {value}: the prose cannot quote a number that is not finite")
        checked[name] = value
    for name, value in checked.items():
        glue(name, value, display=False)

def show_source(*objects):
    """Show the source code of functions, classes or modules as one highlighted code block.

    Chapters use it to display code that lives in ``mlsd`` (because several chapters share it)
    where the chapter explains it, instead of redefining it in the notebook.

    Raises
    ------
    ValueError
        If nothing is given, or a line is wider than :data:`CODE_WIDTH` (the reader would have
        to scroll sideways: wrap the source in ``mlsd``).
    TypeError
        If an object has no source (a number, a built-in).
    """
    from IPython.display import Markdown

    if not objects:
        raise ValueError("give at least one function, class or module to show")
    try:
        sources = [inspect.getsource(obj).rstrip() for obj in objects]
    except TypeError as error:
        raise TypeError(f"cannot show the source of {objects!r}: {error}") from None
    wide = [line for source in sources for line in source.splitlines() if len(line) > CODE_WIDTH]
    if wide:
        raise ValueError(f"{len(wide)} lines are wider than the book's {CODE_WIDTH} characters, "
                         f"e.g. {wide[0]!r}: wrap them where they are defined")
    return Markdown("```python\n" + "\n\n\n".join(sources) + "\n```")
