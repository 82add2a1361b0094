"""``make student``: the student edition, the same book with every exercise solution removed.

    python tools/student.py          # STUDENT_REPO=https://github.com/you/course to keep Binder buttons

Solutions are removed from the sources, not merely hidden: the script copies the repository to
``_build/student/src``, deletes every solution (``{solution-start}`` ... ``{solution-end}``
blocks, the code cells between them, and ``{solution}`` blocks) from the notebooks, leaves the
instructor guide and the CI workflow out, and builds that copy into ``_build/student/html``.
So the pages, the search index and the notebooks offered for download hold no solution, and
``_build/student/src`` is a complete repository an instructor can push for students. The Binder buttons of the student
edition open ``STUDENT_REPO`` when it is given; otherwise they are left out, because the
book's own repository holds the solutions.

The functions that say what a solution is are also what ``tests/test_student.py`` uses to
prove that no solution text reaches the student site and that every exercise does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student"
LEFT_OUT = ["instructors"]  # pages of the full edition that students do not get
IGNORE = shutil.ignore_patterns(".git", "_build", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ipynb_checkpoints")

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


# --- what "solution text appears in the site" means ----------------------------------------

MARKUP = re.compile(r"[`$*_\[\](){}<>|#\\]|\n\s*\n")  # Markdown markup and paragraph breaks
MIN_WORDS = 8


def words(text: str) -> str:
    """Lower-case alphanumeric words joined by single spaces: text as any rendering keeps it."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def fragments(text: str, min_words: int = MIN_WORDS) -> set[str]:
    """Runs of at least ``min_words`` plain words between Markdown markup: text that a page
    showing ``text`` would contain word for word, whatever markup, quotes or math it renders."""
    runs = (words(run) for run in MARKUP.split(text))
    return {run for run in runs if len(run.split()) >= min_words}


class _TextOnly(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def site_text(folder: Path) -> dict[str, str]:
    """``{file: its words}`` for every page, notebook and text source of a built site."""
    texts = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".html":
            parser = _TextOnly()
            parser.feed(path.read_text(encoding="utf-8"))
            text = " ".join(parser.parts)
        elif path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"])
        elif path.suffix in (".md", ".txt"):
            text = path.read_text(encoding="utf-8")
        else:
            continue
        texts[str(path.relative_to(folder))] = f" {words(text)} "
    return texts


def find(fragment: str, texts: dict[str, str]) -> list[str]:
    """The files whose words contain ``fragment``."""
    return [name for name, text in texts.items() if f" {fragment} " in text]


def solution_fragments(nb: dict) -> dict[str, set[str]]:
    """``{label: fragments}`` of each solution, without those the rest of the notebook also says."""
    rest = " " + words("\n".join("".join(c["source"]) for c in strip_solutions(nb)["cells"])) + " "
    return {label: {f for f in fragments(text) if f" {f} " not in rest} for label, text in solution_texts(nb).items()}


# --- the build ---------------------------------------------------------------------------------


def copy_repository(dest: Path) -> None:
    """Copy the repository's files (what git tracks, plus new files it does not ignore)."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (e.g. an unpacked archive)
        shutil.copytree(ROOT, dest, ignore=IGNORE)
        return
    for name in filter(None, listed.stdout.split("\0")):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is listed too
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


def make_student_sources(src: Path, student_repo: str | None) -> int:
    """Turn a copy of the repository into the student edition's sources; return solutions removed."""
    removed = 0
    for path in sorted((src / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        removed += len(solution_texts(nb))
        path.write_text(json.dumps(strip_solutions(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    for page in LEFT_OUT:
        (src / f"{page}.md").unlink(missing_ok=True)
    # a pushed copy would run the full edition's CI, whose tests compare the two editions
    shutil.rmtree(src / ".github", ignore_errors=True)
    toc_path = src / "_toc.yml"
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    for part in toc.get("parts", []):
        part["chapters"] = [entry for entry in part["chapters"] if entry.get("file") not in LEFT_OUT]
    toc["parts"] = [part for part in toc.get("parts", []) if part["chapters"]]
    toc_path.write_text(yaml.safe_dump(toc, sort_keys=False), encoding="utf-8")

    config_path = src / "_config.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["title"] += " (student edition)"
    config["parse"]["myst_substitutions"]["instructor_guide"] = "instructor guide (in the full edition of the book)"
    if student_repo:
        config["repository"]["url"] = student_repo
    else:
        config["launch_buttons"].pop("binderhub_url", None)  # the main repository has the solutions
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return removed


def main() -> int:
    src, html = OUT / "src", OUT / "html"
    copy_repository(src)
    removed = make_student_sources(src, os.environ.get("STUDENT_REPO") or None)
    build = [str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", "-W", "-n", "--keep-going",
             str(src), "--path-output", str(OUT)]
    if subprocess.run(build).returncode != 0:
        return 1
    if html.exists():
        shutil.rmtree(html)
    (OUT / "_build" / "html").rename(html)
    shutil.rmtree(OUT / "_build")
    print(f"Removed {removed} solutions. The student edition is at {html}/index.html; its sources are in {src}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
