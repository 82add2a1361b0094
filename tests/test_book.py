"""mlsd.book: the notebook helpers (gluing numbers for the prose, showing shared source)."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
from IPython.display import Markdown

import myst_nb
from mlsd.book import glue_numbers, show_source
from mlsd.models import notification_model as nm


@pytest.fixture
def glued(monkeypatch):
    calls = {}

    def fake_glue(name, value, display=True):
        assert display is False, "numbers for the prose are never displayed where they are recorded"
        calls[name] = value

    monkeypatch.setattr(myst_nb, "glue", fake_glue)
    return calls


def test_glue_numbers_records_every_name_as_a_plain_python_value(glued):
    text = Markdown("p < 0.001")
    glue_numbers(n_users=np.int64(20_000_000), recall=np.float64(0.5), p=text, label="two weeks")
    assert glued == {"n_users": 20_000_000, "recall": 0.5, "p": text, "label": "two weeks"}
    assert type(glued["n_users"]) is int and type(glued["recall"]) is float  # not np.float64(0.5)


@pytest.mark.parametrize("bad, error", [({"x": None}, TypeError),
                                        ({"x": float("nan")}, ValueError),
                                        ({"x": np.float64("inf")}, ValueError)])
def test_glue_numbers_refuses_what_a_sentence_cannot_quote(glued, bad, error):
    with pytest.raises(error):
        glue_numbers(ok=1, **bad)
    assert not glued, "nothing is glued when one value is refused"
    with pytest.raises(ValueError, match="at least one"):
        glue_numbers()


def test_show_source_renders_a_python_block_and_rejects_bad_input():
    block = show_source(nm.history_as_of)
    assert block.data.startswith("```python\ndef history_as_of(")
    with pytest.raises(ValueError, match="at least one"):
        show_source()
    with pytest.raises(TypeError, match="cannot show the source"):
        show_source(42)


def test_show_source_refuses_code_wider_than_the_column():
    namespace = {}
    wide = "def wide():\n    return '" + "x" * 90 + "'\n"
    path = Path(tempfile.mkdtemp()) / "wide_module.py"
    path.write_text(wide)
    exec(compile(wide, str(path), "exec"), namespace)
    with pytest.raises(ValueError, match="wider than the book's 88 characters"):
        show_source(namespace["wide"])
