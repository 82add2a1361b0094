"""Reading exercises and solutions back from the notebooks (``mlsd.book.exercises``)."""

import numpy as np
import pytest

from mlsd.book.exercises import exercise_rng, exercise_texts, split_solutions, strip_solutions


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


def test_exercise_rng_depends_on_the_seed_and_the_label_only():
    first = exercise_rng(0, "ads-ex-crosses").random(3)
    np.testing.assert_array_equal(first, exercise_rng(0, "ads-ex-crosses").random(3))
    assert not np.allclose(first, exercise_rng(1, "ads-ex-crosses").random(3))
    assert not np.allclose(first, exercise_rng(0, "ads-ex-base-rate").random(3))


@pytest.mark.parametrize("seed, label, error", [
    (-1, "ex-a", ValueError), (0.5, "ex-a", TypeError), (0, "", ValueError),
    (0, "two words", ValueError), (0, 3, ValueError)])
def test_exercise_rng_refuses_bad_arguments(seed, label, error):
    with pytest.raises(error):
        exercise_rng(seed, label)
