"""The student edition (``make student``): every solution removed, every exercise kept."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from conftest import ROOT, SITE, STUDENT_SITE
from course import toc_chapters, toc_files
from mlsd.book.exercises import exercise_texts, exercises
from site_audit import audit_page
from student import LEFT_OUT, find, fragments, make_student_sources, site_text, solution_fragments

TOC_CHAPTERS = toc_chapters(ROOT)


def md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def test_the_leak_check_finds_a_solution_left_in_a_page(tmp_path):
    """What the site tests below rely on: a page quoting a solution is caught, whatever its markup."""
    nb = {"cells": [md("```{exercise}\n:label: ex\nAsk.\n```\n```{solution-start} ex\n```\n"
                       "Both differences change sign together, so the ratio keeps its **meaning**.\n"
                       "```{solution-end}\n```")]}
    (fragment,) = solution_fragments(nb)["ex"]
    (tmp_path / "page.html").write_text("<p>Both differences change sign\ntogether, so the ratio keeps its <em>meaning</em>.</p>")
    (tmp_path / "clean.html").write_text("<p>Ask.</p><script>both differences change sign together so the ratio keeps its</script>")
    assert find(fragment, site_text(tmp_path)) == ["page.html"]


def test_fragments_are_runs_of_plain_words_between_markup():
    assert fragments("A `code` run of exactly eight plain words here, then $x$ more") == {
        "run of exactly eight plain words here then"}


@pytest.mark.parametrize("student_repo", [None, "https://github.com/you/course"])
def test_student_sources_drop_solutions_and_the_guide_and_point_binder_at_the_students_repository(tmp_path, student_repo):
    for name in ["_config.yml", "_toc.yml", *(f"{page}.md" for page in LEFT_OUT), "chapters/01_framework.ipynb"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    assert make_student_sources(tmp_path, student_repo) == 3
    nb = json.loads((tmp_path / "chapters" / "01_framework.ipynb").read_text())
    assert not solution_fragments(nb) and len(exercise_texts(nb)) == 3
    assert not any((tmp_path / f"{page}.md").exists() or f"file: {page}\n" in (tmp_path / "_toc.yml").read_text() for page in LEFT_OUT)
    config = yaml.safe_load((tmp_path / "_config.yml").read_text())
    assert config["title"].endswith("(student edition)")
    if student_repo:
        assert config["repository"]["url"] == student_repo and config["launch_buttons"]["binderhub_url"]
    else:
        assert "binderhub_url" not in config["launch_buttons"]


@pytest.fixture(scope="module")
def sites():
    for folder, command in ((SITE, "make book"), (STUDENT_SITE, "make student")):
        if not (folder / "index.html").exists():
            pytest.fail(f"no site at {folder}: run `{command}` first (`make test` does)")
    return site_text(SITE), site_text(STUDENT_SITE)


@pytest.mark.parametrize("docname", TOC_CHAPTERS)
def test_no_solution_text_reaches_the_student_edition(sites, docname):
    full, student = sites
    solutions = solution_fragments(json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8")))
    assert solutions, f"{docname} has no solution"
    for label, found in solutions.items():
        assert found, f"solution {label} has no run of plain words to look for"
        # the check has teeth: the full edition shows this solution's words
        assert any(find(f, full) for f in found), f"solution {label} is not found in the full edition"
        leaks = {f: find(f, student) for f in found if find(f, student)}
        assert not leaks, f"solution {label} appears in the student edition: {leaks}"


@pytest.mark.parametrize("docname", TOC_CHAPTERS)
def test_every_exercise_is_in_the_student_edition(sites, docname):
    _, student = sites
    page = (STUDENT_SITE / f"{docname}.html").read_text(encoding="utf-8")
    exercises = exercise_texts(json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8")))
    assert exercises
    for label, statement in exercises.items():
        assert re.search(rf'<div class="exercise[\w -]* admonition" id="{label}">', page), f"exercise {label} is missing"
        for fragment in fragments(statement, min_words=5):
            assert f"{docname}.html" in find(fragment, student), f"exercise {label}'s text is missing: {fragment!r}"
    assert 'class="solution' not in page


@pytest.mark.parametrize("docname", TOC_CHAPTERS)
def test_students_see_each_exercise_s_level_time_and_what_to_hand_in(sites, docname):
    _, student = sites
    page = (STUDENT_SITE / f"{docname}.html").read_text(encoding="utf-8")
    for exercise in exercises(json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf-8"))):
        block = exercise_block(page, exercise.label)
        title = re.search(r'<p class="admonition-title">(.*?)</p>', block, re.S)[1]
        title = " ".join(re.sub(r"<[^>]+>", " ", title).split())
        assert re.fullmatch(rf"Exercise \d+\.\d+ \({exercise.level} · {exercise.minutes} min\)", title), title
        assert "Hand in:" in block, f"{exercise.label}: no hand-in"
        for answer in exercise.answers:
            assert f'<span class="pre">{answer.name}</span>' in block, f"{exercise.label}: {answer.name} not shown"


def exercise_block(page: str, label: str) -> str:
    """The HTML of the exercise ``label``: its ``<div>``, up to the tag that closes it."""
    start = re.search(rf'<div class="exercise[\w -]* admonition" id="{label}">', page).start()
    depth = 0
    for tag in re.finditer(r"<(/?)div\b", page[start:]):
        depth += -1 if tag[1] else 1
        if depth == 0:
            return page[start:start + tag.end()]
    raise AssertionError(f"the exercise {label} is never closed")


def test_student_notebooks_and_pages_hold_no_solution_and_no_instructor_guide():
    notebooks = sorted((STUDENT_SITE / "_sources" / "chapters").glob("*.ipynb"))
    assert len(notebooks) == len(TOC_CHAPTERS)
    for path in notebooks:
        assert "{solution" not in path.read_text(encoding="utf-8"), f"{path.name} offers a solution for download"
    for page in LEFT_OUT:
        assert (SITE / f"{page}.html").exists() and not (STUDENT_SITE / f"{page}.html").exists()


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.mark.parametrize("page", [f for f in toc_files(ROOT) if f not in LEFT_OUT])
def test_student_page_is_clean(context, student_url, page):
    assert audit_page(context, student_url + page + ".html") == []


@pytest.mark.parametrize("page", TOC_CHAPTERS)
def test_student_chapter_offers_its_notebook_without_a_binder_button(context, student_url, page):
    """Without STUDENT_REPO, Binder would open the book's repository, solutions included."""
    tab = context.new_page()
    tab.goto(student_url + page + ".html")
    assert tab.locator('a[href*="mybinder.org"]').count() == 0
    download = tab.locator(f'a[href$="_sources/{page}.ipynb"]')
    assert download.count() == 1
    response = tab.request.get(student_url + f"_sources/{page}.ipynb")
    assert response.ok and "{exercise}" in response.text() and "{solution" not in response.text()
    tab.close()
