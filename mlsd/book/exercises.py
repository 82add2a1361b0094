"""The book's exercises and solutions, as the notebooks write them, read back.

A chapter writes each exercise as a ``{exercise}`` block with a ``:label:``, followed by its
solution between ``{solution-start} label`` and ``{solution-end}`` (sphinx-exercise's gated
directives, which let code cells sit inside a solution), or as one ``{solution} label`` block.
``make student`` removes the solutions with :func:`strip_solutions`; the instructor guide lists
the exercises with :func:`exercise_texts`; the tests check both.

A solution draws its random numbers from :func:`exercise_rng`, its own generator seeded from the
chapter's seed and the exercise's label, so its numbers do not depend on which cells ran before
it (an answer key for a student's seed stays right when a chapter gains a cell).

What students see and hand in is part of the statement, and :func:`exercises` reads it back::

    ```{exercise} Intermediate · 20 min
    :label: metrics-ex-imbalance
    :class: trade-off

    The question...

    **Hand in:**
    - `ap_lead_at_1pct` (number ± 0.05): A's average-precision lead at 1 % positives.
    - A table of which model each metric prefers, per positive rate.
    ```

The title is the level (introductory, intermediate or advanced) and the expected minutes.
``:class:`` may name ``design`` (the exercise changes the design) and ``trade-off`` (a written
judgement, graded with the rubric). A hand-in item that opens with a variable name and its kind
is checked by code (``make keys``, the autograder); the other items are graded by hand. Kinds:
``number ± 0.01`` (absolute), ``number ± 5 %`` (relative), ``integer``, ``True or False``,
``one of "a", "b"``.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import zlib
from dataclasses import dataclass

import numpy as np

from mlsd._checks import check_int

__all__ = ["split_solutions", "strip_solutions", "solution_texts", "exercise_texts", "exercise_rng",
           "Answer", "Exercise", "exercises", "exercise_label", "answers_json", "LEVELS"]


def exercise_rng(seed: int, label: str) -> np.random.Generator:
    """The random generator of one exercise's solution: the same for a seed and a label.

    Seeded with ``[seed, crc32(label)]`` (``np.random.SeedSequence`` mixes both), so two
    exercises of one chapter draw independent numbers, and a solution draws the same numbers
    whichever cells ran before it. ``seed`` is the chapter's ``SEED`` (>= 0); ``label`` the
    exercise's ``:label:``.
    """
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(label, str) or not re.fullmatch(r"[\w-]+", label):
        raise ValueError(f"label must be an exercise label (letters, digits, -, _), got {label!r}")
    return np.random.default_rng([seed, zlib.crc32(label.encode())])

# An opening fence (``` or :::, three or more) of a directive, and the directive's name.
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}\s*(?P<argument>\S*)")


def _markdown_pieces(text: str, label: str | None):
    """Split a Markdown cell into ``(solution label or None, text)`` pieces.

    ``label`` is the solution open at the start of the cell (gated solutions span cells); the
    second value returned is the one still open at the end.
    """
    pieces, lines = [], iter(text.splitlines(keepends=True))
    current, current_label = [], label

    def flush(next_label):
        nonlocal current, current_label
        if current:
            pieces.append((current_label, "".join(current)))
        current, current_label = [], next_label

    def through_closing_fence(opening):
        current.append(opening.string)
        for line in lines:  # the directive's options (or whole body), up to its closing fence
            current.append(line)
            if line.rstrip() == opening["fence"]:
                return

    for line in lines:
        opening = FENCE.match(line)
        name = opening["name"] if opening else None
        if current_label is None and name in ("solution", "solution-start"):
            flush(opening["argument"] or "?")
            through_closing_fence(opening)
            if name == "solution":  # the whole solution was inside that fence
                flush(None)
        elif current_label is not None and name == "solution-end":
            through_closing_fence(opening)
            flush(None)
        else:
            current.append(line)
    flush(current_label)
    return pieces, current_label


def split_solutions(nb: dict) -> list[tuple[str | None, int, dict]]:
    """Each cell, or piece of a Markdown cell, as ``(label of the solution it belongs to or None,
    index of the cell it comes from, cell)``."""
    out, label = [], None
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            out.append((label, index, cell))
            continue
        pieces, label = _markdown_pieces("".join(cell["source"]), label)
        out.extend((piece_label, index, {**cell, "source": text}) for piece_label, text in pieces)
    if label is not None:
        raise ValueError(f"solution {label!r} is never closed by a {{solution-end}}")
    return out


def strip_solutions(nb: dict) -> dict:
    """A copy of the notebook with every solution removed (Markdown and code)."""
    cells, kept_from = [], None  # kept_from: the index of the cell the last kept piece came from
    for label, index, cell in split_solutions(nb):
        if label is not None:
            continue
        if cell["cell_type"] == "markdown":
            if index == kept_from:  # two pieces of one cell, around a removed solution
                cells[-1]["source"] += cell["source"]
                continue
            cell = {**cell, "source": "".join(cell["source"])}
        cells.append(cell)
        kept_from = index
    for cell in cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = re.sub(r"\n{3,}", "\n\n", cell["source"]).strip("\n")
    return {**nb, "cells": [c for c in cells if c["cell_type"] != "markdown" or c["source"].strip()]}


def solution_texts(nb: dict) -> dict[str, str]:
    """``{label: text}`` of every solution: its Markdown and the source of its code cells."""
    texts: dict[str, list[str]] = {}
    for label, _, cell in split_solutions(nb):
        if label is not None:
            texts.setdefault(label, []).append("".join(cell["source"]))
    return {label: "\n\n".join(parts) for label, parts in texts.items()}


EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}(?P<title>[^\n]*)\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S)


def exercise_label(match: re.Match) -> str:
    """The ``:label:`` of an exercise block matched by ``EXERCISE`` (required: the guide cites it)."""
    label = re.search(r"^:label: (\S+)", match["body"], re.M)
    if not label:
        raise ValueError(f"an exercise has no :label: {match['body'][:60]!r}")
    return label[1]


def exercise_texts(nb: dict) -> dict[str, str]:
    """``{label: statement}`` of every exercise (labels are required: the guide cites them)."""
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for match in EXERCISE.finditer("".join(cell["source"])):
                found[exercise_label(match)] = re.sub(r"^:\w+:.*\n", "", match["body"], flags=re.M)
    return found


# --- what an exercise asks for: level, time, classes, hand-in, checked answers -----------------

LEVELS = ("Introductory", "Intermediate", "Advanced")
CLASSES = {"design", "trade-off"}
TITLE = re.compile(rf"^(?P<level>{'|'.join(LEVELS)}) · (?P<minutes>\d+) min$")
CHECKED = re.compile(r"^`(?P<name>[A-Za-z_]\w*)` \((?P<kind>[^)]*)\): \S")
KINDS = re.compile(r"^(?:number ± (?P<tolerance>\d+(?:\.\d+)?)(?P<relative> %)?|(?P<integer>integer)"
                   r"|(?P<bool>True or False)|one of (?P<choices>\"[^\"]+\"(?:, \"[^\"]+\")*))$")


@dataclass(frozen=True)
class Answer:
    """A value an exercise's hand-in names, and how close a student's value must be to the key's."""

    name: str
    kind: str  # "number", "integer", "bool" or "choice"
    tolerance: float = 0.0  # numbers: absolute, or a fraction of the key when ``relative``
    relative: bool = False
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, name: str, text: str) -> "Answer":
        kind = KINDS.match(text)
        if not kind:
            raise ValueError(f"`{name}` ({text}): the kind must be one of: number ± 0.01, number ± 5 %, "
                             'integer, True or False, one of "a", "b"')
        if kind["tolerance"]:
            tolerance = float(kind["tolerance"]) / (100 if kind["relative"] else 1)
            return cls(name, "number", tolerance, bool(kind["relative"]))
        if kind["choices"]:
            return cls(name, "choice", choices=tuple(re.findall(r'"([^"]+)"', kind["choices"])))
        return cls(name, "integer" if kind["integer"] else "bool")

    def value(self, value):
        """``value`` as plain JSON (a float, int, bool or str) if it is of this answer's kind."""
        wrong = f"`{self.name}` must be {self.describe()}, got {type(value).__name__} {value!r}"
        if self.kind == "bool":
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(wrong)
            return bool(value)
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(wrong)
            return value
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(wrong)
        if self.kind == "integer":
            if not float(value).is_integer():
                raise ValueError(wrong)
            return int(value)
        if not math.isfinite(value):
            raise ValueError(wrong)
        return float(value)

    def describe(self) -> str:
        if self.kind == "number":
            return "a number"
        if self.kind == "integer":
            return "a whole number"
        if self.kind == "bool":
            return "True or False"
        return "one of " + ", ".join(f'"{c}"' for c in self.choices)

    def margin(self, key) -> float:
        """How far from ``key`` a number may be and still be accepted (0 for the other kinds)."""
        return self.tolerance * abs(key) if self.relative else self.tolerance

    def accepts(self, key, value) -> bool:
        """Whether a student's ``value`` is right when the answer key says ``key``."""
        try:
            value = self.value(value)
        except (TypeError, ValueError):
            return False
        if self.kind == "number":
            return abs(value - key) <= self.margin(key) * (1 + 1e-9)
        return value == key

    def _digits(self, key) -> int:
        margin = self.margin(key)
        return max(0, 1 - math.floor(math.log10(margin))) if margin > 0 else 6

    def show(self, key) -> str:
        """The key for people: numbers to the digits their tolerance makes meaningful."""
        return f"{key:.{self._digits(key)}f}" if self.kind == "number" else repr(key)

    def accepted(self, key) -> str:
        """The values accepted around ``key``, for people: ``0.331 to 0.351``."""
        if self.kind != "number":
            return repr(key)
        low, high, digits = key - self.margin(key), key + self.margin(key), self._digits(key)
        return f"{low:.{digits}f} to {high:.{digits}f}"


@dataclass(frozen=True)
class Exercise:
    """One exercise as its statement gives it."""

    label: str
    level: str
    minutes: int
    classes: frozenset[str]
    statement: str
    hand_in: tuple[str, ...]  # every item, checked by code or by hand
    answers: tuple[Answer, ...]  # the items checked by code


def _hand_in(label: str, body: str) -> tuple[list[str], list[Answer]]:
    parts = re.split(r"^\*\*Hand in:\*\*\s*$", body, flags=re.M)
    if len(parts) != 2:
        raise ValueError(f"exercise {label!r} needs one '**Hand in:**' line followed by a list of what to hand in")
    items = re.findall(r"^- (.+(?:\n  .+)*)", parts[1], flags=re.M)
    if not items:
        raise ValueError(f"exercise {label!r}: its '**Hand in:**' list is empty")
    items = [" ".join(item.split()) for item in items]
    answers = []
    for item in items:
        checked = CHECKED.match(item)
        if checked:
            answers.append(Answer.parse(checked["name"], checked["kind"]))
    names = [a.name for a in answers]
    if len(set(names)) != len(names):
        raise ValueError(f"exercise {label!r} names an answer twice: {names}")
    return items, answers


def exercises(nb: dict) -> list[Exercise]:
    """Every exercise of a notebook, in order, with its level, time, classes and hand-in.

    Raises ``ValueError`` naming the exercise when its title, classes or hand-in do not follow
    the format in this module's docstring, or when two exercises of the notebook hand in a
    variable of the same name (the autograder reads them from one namespace).
    """
    found, names = [], set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for match in EXERCISE.finditer("".join(cell["source"])):
            label = exercise_label(match)
            title = TITLE.match(match["title"].strip())
            if not title:
                raise ValueError(f"exercise {label!r}: its title must be the level and the time, such as "
                                 f"'Intermediate · 20 min' (levels: {', '.join(LEVELS)}), got {match['title']!r}")
            option = re.search(r"^:class: (.+)$", match["body"], re.M)
            classes = frozenset(option[1].split()) if option else frozenset()
            if classes - CLASSES:
                raise ValueError(f"exercise {label!r}: unknown class {sorted(classes - CLASSES)} "
                                 f"(known: {sorted(CLASSES)})")
            statement = re.sub(r"^:\w+:.*\n", "", match["body"], flags=re.M)
            hand_in, answers = _hand_in(label, statement)
            clash = names & {a.name for a in answers}
            if clash:
                raise ValueError(f"exercise {label!r} hands in {sorted(clash)}, as an earlier exercise does")
            names |= {a.name for a in answers}
            found.append(Exercise(label, title["level"], int(title["minutes"]), classes, statement,
                                  tuple(hand_in), tuple(answers)))
    return found


def answers_json(namespace: dict, names: list[str]) -> str:
    """JSON of ``{name: value}`` for ``names`` in ``namespace`` (a kernel's ``globals()``): how
    ``make keys`` reads a solution's answers. A name not assigned is ``null``; numpy scalars
    become plain numbers; any other object its ``repr``, for the kind check to refuse by name."""
    def plain(value):
        return value.item() if isinstance(value, np.generic) else value
    return json.dumps({name: plain(namespace[name]) if name in namespace else None for name in names},
                      default=repr)
