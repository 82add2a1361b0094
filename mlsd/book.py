"""Small helpers for the notebooks themselves."""

from __future__ import annotations

import inspect

__all__ = ["show_source"]


def show_source(*objects):
    """Show the source code of functions, classes or modules as one highlighted code block.

    Chapters use it to display code that lives in ``mlsd`` (because several chapters share it)
    where the chapter explains it, instead of redefining it in the notebook.
    """
    from IPython.display import Markdown

    if not objects:
        raise ValueError("give at least one function, class or module to show")
    try:
        sources = [inspect.getsource(obj).rstrip() for obj in objects]
    except TypeError as error:
        raise TypeError(f"cannot show the source of {objects!r}: {error}") from None
    return Markdown("```python\n" + "\n\n\n".join(sources) + "\n```")
