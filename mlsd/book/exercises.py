"""The book's exercises and solutions, as the notebooks write them, read back.

A chapter writes each exercise as a ``{exercise}`` block with a ``:label:``, followed by its
solution between ``{solution-start} label`` and ``{solution-end}`` (sphinx-exercise's gated
directives, which let code cells sit inside a solution), or as one ``{solution} label`` block.
``make student`` removes the solutions with :func:`strip_solutions`; the instructor guide lists
the exercises with :func:`exercise_texts`; the tests check both.

A solution draws its random numbers from :func:`exercise_rng`, its own generator seeded from the
chapter's seed and the exercise's label, so its numbers do not depend on which cells ran before
it (an answer key for a student's seed stays right when a chapter gains a cell).
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from mlsd._checks import check_int

__all__ = ["split_solutions", "strip_solutions", "solution_texts", "exercise_texts", "exercise_rng"]


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


EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}[^\n]*\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S)


def exercise_texts(nb: dict) -> dict[str, str]:
    """``{label: statement}`` of every exercise (labels are required: the guide cites them)."""
    found = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            for match in EXERCISE.finditer("".join(cell["source"])):
                label = re.search(r"^:label: (\S+)", match["body"], re.M)
                if not label:
                    raise ValueError(f"an exercise has no :label: {match['body'][:60]!r}")
                found[label[1]] = re.sub(r"^:\w+:.*\n", "", match["body"], flags=re.M)
    return found
