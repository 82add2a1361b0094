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

What a solution is, is read by ``mlsd.book.exercises``; what "solution text appears in a site"
means is defined here, and ``tests/test_student.py`` uses both to prove that no solution text
reaches the student site and that every exercise does.
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

from mlsd.book.exercises import solution_texts, strip_solutions

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student"
LEFT_OUT = ["instructors"]  # pages of the full edition that students do not get
IGNORE = shutil.ignore_patterns(".git", "_build", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ipynb_checkpoints")

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
