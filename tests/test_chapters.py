"""Every chapter notebook keeps the book's conventions (the content itself is checked by nbval)."""

import json

import pytest

from conftest import CHAPTERS, ROOT

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
        if not any({"image/png", "image/svg+xml"} & set(o.get("data", {})) for o in outputs):
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
