"""tools/readability.py measures what the readability limits are about (issue 18's table)."""

import sys

import nbformat

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import readability  # noqa: E402


def _notebook(tmp_path, name, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t\n" + "x" * 200)]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def test_measure_counts_code_only(tmp_path):
    long_cell = "\n".join(f"x{i} = {i}" for i in range(41))
    path = _notebook(tmp_path, "a",
                     "def f():\n    return 1\n\n\nclass C:\n    pass\n",
                     long_cell,
                     "%matplotlib inline\nglue('a', 1); glue('b', 2)\ny = '" + "y" * 90 + "'")
    m = readability.measure(path)
    assert m["lines of code"] == 4 + 41 + 2  # blank lines and magics do not count
    assert m["functions and classes"] == 2
    assert m["cells over 30 lines"] == m["cells over 40 lines"] == 1 and m["longest cell"] == 41
    assert m["lines over 88 characters"] == 1  # the markdown's long line is not code
    assert m["most glue calls in a cell"] == 2


def test_a_helper_defined_in_two_notebooks_is_named(tmp_path):
    a = _notebook(tmp_path, "a", "def top_k(x):\n    pass\n", "def only_here():\n    pass")
    b = _notebook(tmp_path, "b", "def top_k(y):\n    return y\n")
    assert readability.defined_twice([a, b]) == {"top_k": ["a", "b"]}
