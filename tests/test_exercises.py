"""Reading exercises and solutions back from the notebooks (``mlsd.book.exercises``)."""

import json
import sys

import numpy as np
import pytest

from conftest import CHAPTERS, ROOT
from mlsd.book.exercises import (LEVELS, answers_json, exercise_rng, exercise_texts, exercises, split_solutions,
                                 strip_solutions)

sys.path.insert(0, str(ROOT / "tools"))
from readability import is_case_study  # noqa: E402


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


# --- level, time, classes and hand-in (``exercises``) ------------------------------------------

STATEMENT = """```{{exercise}} {title}
:label: ex-{n}
{option}
Which is it?

**Hand in:**
{items}
```"""


def exercise_nb(title="Intermediate · 20 min", option="", items="- Two sentences: why.", n="a"):
    return {"cells": [md(STATEMENT.format(title=title, option=option, items=items, n=n))]}


def test_exercises_reads_level_time_classes_and_the_checked_answers():
    items = ('- `share_lost` (number ± 0.01): the share of the lift lost.\n'
             '- `ratio` (number ± 5 %):\n  a ratio, over two lines.\n'
             '- `n_flips` (integer): how many.\n- `better` (True or False): whether.\n'
             '- `winner` (one of "A", "B"): which.\n- A table: per rate, the winner.')
    [ex] = exercises(exercise_nb(option=":class: design trade-off", items=items))
    assert (ex.label, ex.level, ex.minutes, ex.classes) == ("ex-a", "Intermediate", 20, {"design", "trade-off"})
    assert [a.name for a in ex.answers] == ["share_lost", "ratio", "n_flips", "better", "winner"]
    assert ex.hand_in[1] == "`ratio` (number ± 5 %): a ratio, over two lines."
    assert len(ex.hand_in) == 6 and "Which is it?" in ex.statement
    share, ratio, n_flips, better, winner = ex.answers
    assert share.accepts(0.34, np.float64(0.349)) and not share.accepts(0.34, 0.351)
    assert share.accepted(0.34) == "0.330 to 0.350"
    assert ratio.accepts(200.0, 209) and not ratio.accepts(200.0, 211)
    assert n_flips.accepts(3, 3.0) and not n_flips.accepts(3, 4) and not n_flips.accepts(3, 3.5)
    assert better.accepts(True, np.bool_(True)) and not better.accepts(True, 1)
    assert winner.accepts("A", "A") and not winner.accepts("A", "a") and not winner.accepts("A", "C")
    assert not share.accepts(0.34, "0.34") and not share.accepts(0.34, float("nan"))


@pytest.mark.parametrize("answer, value, error", [
    ("`x` (number ± 0.01)", "0.3", TypeError), ("`x` (number ± 0.01)", float("inf"), ValueError),
    ("`x` (integer)", 2.5, ValueError), ("`x` (True or False)", 1, TypeError),
    ('`x` (one of "A", "B")', "C", ValueError)])
def test_an_answer_of_the_wrong_kind_is_refused_with_its_name(answer, value, error):
    [ex] = exercises(exercise_nb(items=f"- {answer}: it."))
    with pytest.raises(error, match="`x` must be"):
        ex.answers[0].value(value)


@pytest.mark.parametrize("kwargs, message", [
    ({"title": ""}, "title must be the level and the time"),
    ({"title": "Easy · 20 min"}, "title must be the level and the time"),
    ({"title": "Intermediate, 20 minutes"}, "title must be the level and the time"),
    ({"option": ":class: hard"}, "unknown class"),
    ({"items": ""}, "list is empty"),
    ({"items": "- `x` (a number): it."}, "the kind must be one of"),
    ({"items": "- `x` (integer): a.\n- `x` (integer): b."}, "names an answer twice"),
])
def test_a_malformed_exercise_is_an_error_naming_it(kwargs, message):
    with pytest.raises(ValueError, match=message):
        exercises(exercise_nb(**kwargs))


def test_two_exercises_handing_in_the_same_name_is_an_error():
    one, two = (exercise_nb(items="- `x` (integer): it.", n=n)["cells"][0] for n in "ab")
    with pytest.raises(ValueError, match="as an earlier exercise does"):
        exercises({"cells": [one, two]})
    with pytest.raises(ValueError, match="Hand in"):
        exercises({"cells": [md("```{exercise} Advanced · 5 min\n:label: ex\nNo hand-in.\n```")]})


def test_answers_json_reads_plain_values_and_marks_what_is_missing():
    namespace = {"a": np.float64(0.25), "b": np.bool_(True), "c": "A", "d": [1, 2], "e": object}
    assert json.loads(answers_json(namespace, ["a", "b", "c", "d", "missing"])) == {
        "a": 0.25, "b": True, "c": "A", "d": [1, 2], "missing": None}
    assert json.loads(answers_json(namespace, ["e"]))["e"] == "<class 'object'>"


# --- every chapter's exercises follow the format (issue 20) -------------------------------------


def chapter_exercises(path):
    return exercises(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_every_exercise_states_level_time_and_hand_in_from_easy_to_hard(path):
    found = chapter_exercises(path)  # raises, naming the exercise, on a malformed statement
    assert found, f"{path.stem} has no exercise"
    levels = [LEVELS.index(e.level) for e in found]
    assert levels == sorted(levels), f"not from easy to hard: {[(e.label, e.level) for e in found]}"
    for exercise in found:
        assert exercise.answers or "trade-off" in exercise.classes, (
            f"{exercise.label}: only a written trade-off may hand in no answer checked by code")


@pytest.mark.parametrize("path", [p for p in CHAPTERS if is_case_study(p)], ids=lambda path: path.stem)
def test_a_case_study_has_five_exercises_one_changing_the_design_one_a_written_trade_off(path):
    found = chapter_exercises(path)
    assert len(found) >= 5, f"{path.stem} has {len(found)} exercises"
    assert any("design" in e.classes for e in found), "no exercise changes the design"
    assert any("trade-off" in e.classes for e in found), "no exercise asks for a written trade-off"
