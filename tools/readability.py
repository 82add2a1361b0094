"""Measure a chapter against BOOK.md's readability limits, and say which it breaks.

    .venv/bin/python tools/readability.py chapters/*.ipynb

Prints, per notebook: lines in code cells, functions and classes defined, code cells over 30
and over 40 lines (and the longest), lines over 88 characters, the most lines recording numbers
for the prose (``glue(``, ``glue_numbers(``, ``glue_headline(``) in one cell, the words of prose
and the reading time; then every limit broken, and the functions or classes defined in more
than one notebook (a helper written twice belongs in ``mlsd``; ``duplicates`` does not read
notebooks, this does). ``tests/test_readability.py`` holds every chapter to the limits.

Lines are counted as a reader meets them: every line of every non-empty code cell, blank lines
and comments included (what the page shows). The reading time counts what a reader of the
chapter reads (solutions are collapsed and optional, so they are left out) at the rates below.
"Going further" notes are collapsed and optional too: a dropdown admonition titled "Going
further: ..." holding a deep dive the rest of the chapter does not build on. Their words are
counted apart, as ``minutes going further``, and the front matter states both figures.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mlsd.book.exercises import strip_solutions  # noqa: E402

MAX_LINE = 88
CELL_LINES = 30          # a code cell's length; up to CELL_LINES_HARD with a reason...
CELL_LINES_HARD = 40     # ...given in a comment on its first line
GLUE_LINES = 1           # lines recording numbers for the prose, per cell
CASE_STUDY_LINES = 600   # lines in the code cells of one case study
CASE_STUDY_DEFINITIONS = 25
CASE_STUDY_MINUTES = 45

#: Silent reading of non-fiction by adults: 238 words a minute (Brysbaert, 2019, a meta-analysis
#: of 190 studies). Code is read more slowly than prose; 20 lines a minute (3 s a line) is reading
#: along to follow what a cell does, not studying it.
WORDS_PER_MINUTE = 238
CODE_LINES_PER_MINUTE = 20

GLUE_CALL = re.compile(r"\bglue\w*\(")
#: A collapsed, optional deep dive: ``:::{admonition} Going further: ...`` with a
#: ``:class: dropdown`` line (``{dropdown}`` is not used, so one pattern finds them all).
GOING_FURTHER = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{admonition\} Going further\b[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S)
WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")
FIRST_CASE_STUDY = 5     # chapters from this number on are case studies


def _notebook(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def code_cells(path: Path) -> list[str]:
    """The sources of a notebook's non-empty code cells."""
    return [source for cell in _notebook(path)["cells"] if cell["cell_type"] == "code"
            and (source := "".join(cell["source"])).strip()]


def definitions(source: str) -> list[str]:
    """Names of the functions and classes a cell defines at its top level."""
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                       for line in source.splitlines())   # IPython magics are not Python
    try:
        tree = ast.parse(python)
    except SyntaxError:
        return []
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return [node.name for node in tree.body if isinstance(node, kinds)]


def going_further(path: Path) -> list[str]:
    """The bodies of the notebook's "Going further" notes (solutions left out)."""
    cells = strip_solutions(_notebook(path))["cells"]
    bodies = [m["body"] for c in cells if c["cell_type"] == "markdown"
              for m in GOING_FURTHER.finditer("".join(c["source"]))]
    for body in bodies:
        if not re.match(r"(:\w+:.*\n)*:class:[^\n]*\bdropdown\b", body):
            raise ValueError(f"a Going further note is not collapsed (:class: dropdown): {body[:60]!r}")
    return bodies


def reading_minutes(path: Path) -> tuple[int, int, float]:
    """``(words of prose, lines of code, minutes)`` a reader spends on the chapter, solutions and
    "Going further" notes left out."""
    cells = strip_solutions(_notebook(path))["cells"]
    words = sum(len(WORD.findall(GOING_FURTHER.sub("", "".join(c["source"]))))
                for c in cells if c["cell_type"] == "markdown")
    lines = sum(len(source.splitlines()) for c in cells if c["cell_type"] == "code"
                and (source := "".join(c["source"])).strip())
    return words, lines, words / WORDS_PER_MINUTE + lines / CODE_LINES_PER_MINUTE


def measure(path: Path) -> dict:
    """The readability figures of one notebook (see the module docstring)."""
    cells = code_cells(path)
    lengths = [len(c.splitlines()) for c in cells]
    lines = [line for c in cells for line in c.splitlines()]
    words, _, minutes = reading_minutes(path)
    return {
        "lines of code": sum(lengths),
        "functions and classes": sum(len(definitions(c)) for c in cells),
        f"cells over {CELL_LINES} lines": sum(n > CELL_LINES for n in lengths),
        f"cells over {CELL_LINES_HARD} lines": sum(n > CELL_LINES_HARD for n in lengths),
        "longest cell": max(lengths, default=0),
        f"lines over {MAX_LINE} characters": sum(len(line) > MAX_LINE for line in lines),
        "most glue lines in a cell": max((len(GLUE_CALL.findall(c)) for c in cells), default=0),
        "words of prose": words,
        "minutes to read": round(minutes),
        "minutes going further": round(sum(len(WORD.findall(b)) for b in going_further(path))
                                       / WORDS_PER_MINUTE),
    }


def is_case_study(path: Path) -> bool:
    match = re.match(r"(\d+)_", Path(path).name)
    return bool(match) and int(match[1]) >= FIRST_CASE_STUDY


def problems(path: Path, *, reading_time: bool = True) -> list[str]:
    """Every readability limit the notebook breaks, each named with where (empty if none);
    ``reading_time=False`` leaves the case studies' reading time out."""
    found = []
    for number, source in enumerate(code_cells(path), 1):
        lines = source.splitlines()
        where = f"code cell {number} ({lines[0][:40]!r}...)"
        if len(lines) > CELL_LINES_HARD:
            found.append(f"{where}: {len(lines)} lines (limit {CELL_LINES_HARD})")
        elif len(lines) > CELL_LINES and not lines[0].lstrip().startswith("#"):
            found.append(f"{where}: {len(lines)} lines; over {CELL_LINES}, say why in a comment on its first line")
        wide = [line for line in lines if len(line) > MAX_LINE]
        if wide:
            found.append(f"{where}: {len(wide)} lines over {MAX_LINE} characters, e.g. {wide[0]!r}")
        glue = sum(bool(GLUE_CALL.search(line)) for line in lines)
        if glue > GLUE_LINES:
            found.append(f"{where}: {glue} lines record numbers for the prose; use one glue_numbers(...) call")
    if is_case_study(path):
        figures = measure(path)
        if figures["lines of code"] > CASE_STUDY_LINES:
            found.append(f"{figures['lines of code']:,} lines of code (limit {CASE_STUDY_LINES})")
        if figures["functions and classes"] > CASE_STUDY_DEFINITIONS:
            found.append(f"{figures['functions and classes']} functions and classes (limit {CASE_STUDY_DEFINITIONS})")
        if reading_time and figures["minutes to read"] > CASE_STUDY_MINUTES:
            found.append(f"reads in {figures['minutes to read']} minutes (limit {CASE_STUDY_MINUTES})")
    return found


def defined_twice(paths: list[Path]) -> dict[str, list[str]]:
    """``{name: [notebooks]}`` for every function or class defined in more than one notebook."""
    where = defaultdict(set)
    for path in paths:
        for cell in code_cells(path):
            for name in definitions(cell):
                where[name].add(Path(path).stem)
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
    for path in paths:
        for problem in problems(path):
            print(f"{path.stem}: {problem}")
    twice = defined_twice(paths)
    print("\nDefined in more than one notebook: "
          + ("; ".join(f"{name} ({', '.join(stems)})" for name, stems in twice.items()) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
