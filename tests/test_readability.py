"""Every chapter within BOOK.md's readability limits, measured by tools/readability.py."""

import re
import sys

import nbformat
import pytest

from conftest import CHAPTERS, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import readability  # noqa: E402

IDS = [p.stem for p in CHAPTERS]


def _notebook(tmp_path, name, *sources, prose="# t\n" + "x" * 200):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(prose)]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def test_measure_counts_every_line_a_reader_sees_in_code(tmp_path):
    long_cell = "\n".join(f"x{i} = {i}" for i in range(41))
    path = _notebook(tmp_path, "a",
                     "def f():\n    return 1\n\n\nclass C:\n    pass",
                     long_cell,
                     "%matplotlib inline\nglue('a', 1); glue('b', 2)\nglue_numbers(c=3)\ny = '" + "y" * 90 + "'",
                     "   ")
    m = readability.measure(path)
    assert m["lines of code"] == 6 + 41 + 4  # blank lines count (the page shows them), empty cells not
    assert m["functions and classes"] == 2
    assert m["cells over 30 lines"] == m["cells over 40 lines"] == 1 and m["longest cell"] == 41
    assert m["lines over 88 characters"] == 1  # the markdown's long line is not code
    assert m["most glue lines in a cell"] == 3


def test_reading_time_counts_prose_and_code_but_not_solutions(tmp_path):
    prose = ("# t\n" + "word " * 476 + "\n\n```{solution-start} ex\n```\n" + "hidden " * 1000
             + "\n```{solution-end}\n```")
    path = _notebook(tmp_path, "a", "x = 1\n" * 40, prose=prose)
    words, lines, minutes = readability.reading_minutes(path)
    assert words == 477 and lines == 40   # "t" and 476 words; the solution is left out
    assert minutes == pytest.approx(477 / 238 + 40 / 20)


def test_going_further_notes_are_counted_apart(tmp_path):
    note = ":::{admonition} Going further: why\n:class: dropdown\n" + "deep " * 476 + "\n:::"
    path = _notebook(tmp_path, "a", "x = 1", prose="# t\n" + "word " * 237 + "\n\n" + note)
    words, _, _ = readability.reading_minutes(path)
    assert words == 238   # "t" and 237 words; the note is apart
    assert readability.measure(path)["minutes going further"] == 2
    shown = _notebook(tmp_path, "b", "x = 1", prose=note.replace(":class: dropdown\n", ""))
    with pytest.raises(ValueError, match="not collapsed"):
        readability.measure(shown)


def test_problems_name_each_broken_limit(tmp_path):
    path = _notebook(tmp_path, "05_case",
                     "\n".join(f"x{i} = {i}" for i in range(35)),                 # over 30, no reason
                     "# 35 lines: one loop\n" + "\n".join(f"y{i} = {i}" for i in range(34)),  # a reason
                     "glue_numbers(a=1)\nglue('b', 2)\nz = '" + "z" * 90 + "'")
    found = readability.problems(path)
    assert len(found) == 3, found
    for expected in ("35 lines; over 30", "2 lines record numbers", "over 88"):
        assert any(expected in problem for problem in found), (expected, found)
    assert readability.problems(_notebook(tmp_path, "01_part_one", "x = 1")) == []


def test_a_helper_defined_in_two_notebooks_is_named(tmp_path):
    a = _notebook(tmp_path, "a", "def top_k(x):\n    pass\n", "def only_here():\n    pass")
    b = _notebook(tmp_path, "b", "def top_k(y):\n    return y\n")
    assert readability.defined_twice([a, b]) == {"top_k": ["a", "b"]}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_chapter_is_within_the_readability_limits(path):
    assert readability.problems(path, reading_time=False) == []


# Issue 18 is open on this point: after their code was cut to 600 lines, these case studies
# still read in about an hour (their prose is 7,400-8,700 words). Strict: the test fails as
# soon as one of them reads in 45 minutes, so that its name is taken off this list.
READ_TOO_LONG: set[str] = set()


@pytest.mark.parametrize("path", [
    pytest.param(path, marks=pytest.mark.xfail(strict=True, reason="issue 18: prose not cut yet"))
    if path.stem in READ_TOO_LONG else path
    for path in CHAPTERS if readability.is_case_study(path)], ids=lambda path: path.stem)
def test_case_study_reads_in_45_minutes_at_most(path):
    assert readability.measure(path)["minutes to read"] <= readability.CASE_STUDY_MINUTES


def test_no_helper_is_defined_in_two_chapters():
    assert readability.defined_twice(CHAPTERS) == {}


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_the_reading_time_a_chapter_states_is_the_measured_one(path):
    """The front matter's "about N minutes to read" within 5 minutes or 20 % of the measure, and
    "M more for the optional Going further notes" likewise, where the chapter has some."""
    opening = "".join(nbformat.read(path, as_version=4).cells[0].source)
    figures = readability.measure(path)
    stated = int(re.search(r"about (\d+) minutes to read", opening)[1])
    measured = figures["minutes to read"]
    assert abs(stated - measured) <= max(5, 0.2 * measured), f"states {stated} minutes, measured {measured}"
    further = re.search(r"(\d+) more for the optional .Going further. notes", opening)
    if figures["minutes going further"] == 0:
        assert further is None, "the chapter has no Going further notes"
    else:
        assert further, "the front matter does not say how long the Going further notes take"
        stated, measured = int(further[1]), figures["minutes going further"]
        assert abs(stated - measured) <= max(2, 0.2 * measured), f"states {stated}, measured {measured}"
