"""Reading exercises and solutions back from the notebooks (``mlsd.book.exercises``)."""

import pytest

from mlsd.book.exercises import exercise_texts, split_solutions, strip_solutions


def md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": 1}


FIXTURE = {"cells": [
    md("## Exercises\n\n```{exercise}\n:label: ex-a\n\nWhy is the sky blue on a clear afternoon?\n```\n\n"
       "```{solution-start} ex-a\n:class: dropdown\n```\n\nRayleigh scattering sends the short wavelengths in every direction."),
    code("scattering = 1 / wavelength**4"),
    md("Hence blue, more than red.\n\n```{solution-end}\n```\n\n```{exercise}\n:label: ex-b\n\nAnd at sunset?\n```"),
    md("````{solution} ex-b\n:class: dropdown\n\nThe light crosses more air.\n```python\nlonger_path = True\n```\n````"),
    md("::::{solution-start} ex-c\n::::\nA colon-fenced solution.\n::::{solution-end}\n::::\n\n## References"),
]}


def test_strip_solutions_removes_gated_fenced_and_code_parts_and_keeps_the_rest():
    stripped = strip_solutions(FIXTURE)
    text = "\n".join(c["source"] for c in stripped["cells"])
    assert [c["cell_type"] for c in stripped["cells"]] == ["markdown", "markdown", "markdown"]
    for gone in ("Rayleigh", "scattering", "Hence blue", "more air", "longer_path", "colon-fenced", "solution"):
        assert gone not in text
    assert exercise_texts(stripped) == exercise_texts(FIXTURE) == {
        "ex-a": "\nWhy is the sky blue on a clear afternoon?\n", "ex-b": "\nAnd at sunset?\n"}
    assert text.endswith("## References")


def test_a_solution_left_open_is_an_error():
    with pytest.raises(ValueError, match="'ex-a' is never closed"):
        split_solutions({"cells": [md("```{solution-start} ex-a\n```\nNo end.")]})


def test_an_exercise_without_a_label_is_an_error():
    with pytest.raises(ValueError, match="an exercise has no :label:"):
        exercise_texts({"cells": [md("```{exercise}\nNo label.\n```")]})
