"""Every chapter notebook (and Markdown page) keeps the book's conventions (the content itself is checked by nbval)."""

import json
import re

import pytest

from conftest import CHAPTERS, ROOT
from course import toc_files

IDS = [p.stem for p in CHAPTERS]


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_is_at_least_one_chapter():
    assert CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_is_in_the_table_of_contents(path):
    assert f"file: chapters/{path.stem}\n" in (ROOT / "_toc.yml").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_outputs_are_stored_and_clean(path):
    cells = code_cells(load(path))
    assert all(c.get("execution_count") for c in cells), "a code cell was never executed"
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1)), "not executed top to bottom"
    errors = [o for c in cells for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, "an error output is stored"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_has_a_seed_in_a_parameters_cell(path):
    params = [c for c in code_cells(load(path)) if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "SEED" in "".join(params[0]["source"])


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_figure_has_a_caption_and_alt_text(path):
    for cell in code_cells(load(path)):
        outputs = cell.get("outputs", [])
        if not any({"image/png", "image/jpeg", "image/svg+xml"} & set(o.get("data", {})) for o in outputs):
            continue
        mystnb = cell["metadata"].get("mystnb", {})
        source = "".join(cell["source"])[:60]
        assert mystnb.get("figure", {}).get("caption", "").strip(), f"figure without caption: {source!r}"
        assert mystnb.get("image", {}).get("alt", "").strip(), f"figure without alt text: {source!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_kernel_is_the_standard_python3(path):
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_glued_values_are_plain_python_literals(path):
    """A glued numpy scalar shows as 'np.float64(...)', which {glue:text} cannot format."""
    for cell in code_cells(load(path)):
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            text = output.get("data", {}).get("application/papermill.record/text/plain")
            if name and text is not None:
                text = "".join(text) if isinstance(text, list) else text
                assert not text.startswith("np."), f"glue {name!r} holds a numpy scalar: {text}; glue float(...) or int(...)"


MARKDOWN_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]*)\)|<img\b(?P<attrs>[^>]*)>")


def images_without_alt(text):
    """Markdown and HTML images in ``text`` whose alt text is empty or missing."""
    return [m[0] for m in MARKDOWN_IMAGE.finditer(text)
            if (m["src"] is not None and not m["alt"].strip()) or (m["attrs"] is not None and not re.search(r'alt="[^"]+"', m["attrs"]))]


def test_image_check_catches_a_missing_alt_text():
    assert images_without_alt('![](a.png) ![A chart](b.png) <img src="c.png"> <img alt="D" src="d.png">') == [
        "![](a.png)", '<img src="c.png">']


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_every_image_in_the_text_has_alt_text(path):
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    assert images_without_alt(markdown) == []


def myst_comment_lines(markdown: str) -> list[str]:
    """Lines MyST drops as comments: any that starts with %, such as a "95\n% interval" wrap."""
    return [line for line in markdown.splitlines() if line.startswith("%")]


def test_comment_check_catches_a_percent_sign_wrapped_to_a_line_start():
    assert myst_comment_lines("a gain of 0.1 (95\n% interval 0.0 to 0.2)") == ["% interval 0.0 to 0.2)"]
    assert myst_comment_lines("a gain of 0.1 (95 % interval\n0.0 to 0.2)") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_no_line_of_prose_is_hidden_as_a_myst_comment(path):
    """A Markdown line that starts with % is a MyST comment: it vanishes from the page unseen."""
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    assert myst_comment_lines(markdown) == []


HEADING = re.compile(r"^(#{1,6})\s+\S")


def heading_levels(markdown_texts):
    """The level of every Markdown heading, in order (lines inside fenced blocks are not headings)."""
    levels = []
    for text in markdown_texts:
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced and (match := HEADING.match(line)):
                levels.append(len(match.group(1)))
    return levels


def assert_headings_in_order(levels, where):
    """One title first, and no level skipped on the way down (a screen reader's outline of the page)."""
    assert levels and levels[0] == 1 and levels.count(1) == 1, f"{where}: one '# title', first, is expected; levels {levels}"
    for before, after in zip(levels, levels[1:]):
        assert after <= before + 1, f"{where}: a level-{after} heading follows a level-{before} one"


def test_heading_check_catches_a_skipped_level():
    with pytest.raises(AssertionError, match="level-3 heading follows a level-1"):
        assert_headings_in_order(heading_levels(["# Title", "### Too deep"]), "example")
    assert heading_levels(["# Title\n```python\n# a comment, not a heading\n```\n## Part"]) == [1, 2]


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_headings_are_in_order(path):
    markdown = ["".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown"]
    assert_headings_in_order(heading_levels(markdown), path.name)


TOC_PAGES = sorted(ROOT / f"{entry}.md" for entry in toc_files(ROOT) if (ROOT / f"{entry}.md").exists())


def test_the_toc_has_markdown_pages():
    assert TOC_PAGES


@pytest.mark.parametrize("page", TOC_PAGES, ids=lambda p: p.name)
def test_pages_headings_are_in_order(page):
    assert_headings_in_order(heading_levels([page.read_text(encoding="utf-8")]), page.name)


@pytest.mark.parametrize("page", TOC_PAGES, ids=lambda p: p.name)
def test_pages_images_have_alt_text(page):
    assert images_without_alt(page.read_text(encoding="utf-8")) == []
