"""Measure what BOOK.md's readability limits are about, for each chapter notebook.

    .venv/bin/python tools/readability.py chapters/*.ipynb

Prints, per notebook: lines of code (non-blank), functions and classes defined, code cells over
30 and over 40 lines (and the longest), lines over 88 characters, the most ``glue(`` calls in one
cell, and the names of functions or classes defined in more than one notebook (a helper written
twice belongs in ``mlsd``). ``duplicates`` does not read notebooks; this does.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import defaultdict
from pathlib import Path

MAX_LINE = 88
CELL_LINES = 30
CELL_LINES_HARD = 40


def code_cells(path: Path) -> list[str]:
    """The sources of a notebook's code cells, IPython magics and shell lines blanked out."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            cells.append("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                                   for line in source.splitlines()))
    return cells


def definitions(source: str) -> list[str]:
    """Names of the functions and classes a cell defines at its top level."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


def measure(path: Path) -> dict:
    """The readability figures of one notebook (see the module docstring)."""
    cells = code_cells(path)
    lengths = [sum(1 for line in c.splitlines() if line.strip()) for c in cells]
    lines = [line for c in cells for line in c.splitlines()]
    return {
        "lines of code": sum(lengths),
        "functions and classes": sum(len(definitions(c)) for c in cells),
        f"cells over {CELL_LINES} lines": sum(n > CELL_LINES for n in lengths),
        f"cells over {CELL_LINES_HARD} lines": sum(n > CELL_LINES_HARD for n in lengths),
        "longest cell": max(lengths, default=0),
        f"lines over {MAX_LINE} characters": sum(len(line) > MAX_LINE for line in lines),
        "most glue calls in a cell": max((c.count("glue(") for c in cells), default=0),
    }


def defined_twice(paths: list[Path]) -> dict[str, list[str]]:
    """``{name: [notebooks]}`` for every function or class defined in more than one notebook."""
    where = defaultdict(set)
    for path in paths:
        for cell in code_cells(path):
            for name in definitions(cell):
                where[name].add(path.stem)
    return {name: sorted(stems) for name, stems in sorted(where.items()) if len(stems) > 1}


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv]
    if not paths:
        print(__doc__)
        return 2
    rows = {path.stem: measure(path) for path in paths}
    columns = list(next(iter(rows.values())))
    print("| notebook | " + " | ".join(columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for stem, row in rows.items():
        print(f"| {stem} | " + " | ".join(f"{v:,}" for v in row.values()) + " |")
    twice = defined_twice(paths)
    print("\nDefined in more than one notebook: "
          + ("; ".join(f"{name} ({', '.join(stems)})" for name, stems in twice.items()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
