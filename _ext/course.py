"""A local Sphinx extension for the pages about the course as a whole, generated from the chapters.

Two directives, so that no number on those pages is typed by hand:

- ``{scoreboard}``: one table over every chapter of the table of contents: its task, the
  headline metric's baseline, final system and oracle (the values the chapter glued with
  ``mlsd.evaluation.headline.glue_headline``, read from its stored outputs), the share of achievable lift,
  and its running time and peak memory as measured by ``make bench`` (``chapters/bench.json``).
- ``{chapter-facts} chapters/05_visual_search``: one chapter's learning objectives,
  prerequisites and reading time (from the front matter at the top of the notebook), its measured
  running time, and its exercises (for the instructor guide).

The same functions read the front matter and the measurements for the tests, which check
that every chapter has them (``tests/test_course.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

from mlsd.book.exercises import exercises as read_exercises
from mlsd.evaluation.headline import HEADLINE_NAMES, read_headline

BENCH = Path("chapters") / "bench.json"

# The front matter every chapter opens with (its first Markdown cell), after the title and the
# opening paragraphs; ``tests/test_course.py`` checks that each chapter has all four parts.
FRONT_MATTER = re.compile(
    r"^\*\*You will learn to\*\*\n(?P<objectives>(?:- .*\n(?:  .*\n)*)+)\n"
    r"\*\*Prerequisites\*\*: (?P<prerequisites>.+?)\n\n"
    r"\*\*Time\*\*: (?P<time>.+?)(?:\n\n|\n?\Z)",
    re.M | re.S,
)


def toc_files(root: Path) -> list[str]:
    """Every document in ``_toc.yml``, root first, as paths without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def toc_chapters(root: Path) -> list[str]:
    """The notebooks of the table of contents, in order (``chapters/05_visual_search``...)."""
    return [f for f in toc_files(root) if (root / f"{f}.ipynb").exists()]


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def front_matter(nb: dict) -> dict:
    """The title, objectives (a list), prerequisites and time stated in a chapter's first cell.

    Raises ``ValueError`` naming what is missing when the cell does not follow the format.
    """
    cell = next((c for c in nb["cells"] if c["cell_type"] == "markdown"), None)
    text = "".join(cell["source"]) if cell else ""
    title = re.match(r"# (.+)\n", text)
    if not title:
        raise ValueError("the first Markdown cell must start with the chapter's '# title'")
    match = FRONT_MATTER.search(text)
    if not match:
        missing = [part for part in ("**You will learn to**\n- ", "**Prerequisites**: ", "**Time**: ") if part not in text]
        raise ValueError(f"the first Markdown cell lacks the front matter ({', '.join(missing) or 'layout'}): "
                         "'**You will learn to**' and a list, then '**Prerequisites**: ...' and '**Time**: ...', "
                         "each in its own paragraph")
    objectives = [" ".join(item.split()) for item in re.split(r"^- ", match["objectives"], flags=re.M) if item.strip()]
    return {
        "title": title[1].strip(),
        "objectives": objectives,
        "prerequisites": " ".join(match["prerequisites"].split()),
        "time": " ".join(match["time"].split()),
    }


def bench_records(root: Path) -> dict:
    """``make bench``'s measurements, by notebook stem (empty if never run)."""
    path = root / BENCH
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def run_time(record: dict | None) -> str:
    """'51 s, 1.3 GB': a measurement as the pages show it."""
    if not record:
        return "not measured yet (`make bench`)"
    return f"{record['seconds']:.0f} s, {record['peak_mb'] / 1024:.1f} GB"


def percent_range(low: float, high: float) -> str:
    """'53–57%' for (0.53, 0.57), kept on one line by word joiners around the dash."""
    return f"{100 * low:.0f}\u2060\u2013\u2060{high:.0%}"


def seed_spread(record: dict | None) -> str:
    """'53–57%': the lowest and highest lift share ``make bench`` recorded across seeds."""
    by_seed = (record or {}).get("headline_by_seed")
    if not by_seed:
        return "not measured yet (`make bench`)"
    shares = [h["lift_share"] for h in by_seed.values()]
    return percent_range(min(shares), max(shares))


def share_interval(headline: dict) -> str:
    """'41–55%': the 95 % bootstrap interval of the lift share a chapter glued."""
    low, high = headline["headline_lift_share_interval"]
    return percent_range(low, high)


def seeds_measured(records: list[dict]) -> str:
    """'0, 1 and 2': the seeds of every recorded headline."""
    seeds = sorted({int(s) for r in records for s in r.get("headline_by_seed", {})})
    return ", ".join(map(str, seeds[:-1])) + f" and {seeds[-1]}" if len(seeds) > 1 else ", ".join(map(str, seeds))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _absolute_links(text: str, folder: str) -> str:
    """Markdown links between chapters (``[Chapter 2](02_offline_metrics)``) as ``{doc}`` roles
    that resolve from any page."""
    return re.sub(r"\[([^\]]+)\]\(([\w-]+)\)", lambda m: f"{{doc}}`{m[1]} </{folder}/{m[2]}>`", text)


def measured_on(records: list[dict]) -> str:
    """Where and when the measurements were taken, e.g. '2 x Xeon ..., 2026-11-30'."""
    machines = sorted({r["machine"] for r in records})
    dates = sorted({r["measured_on"] for r in records})
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    return f"{'; '.join(machines)}, {span}"


class _MarkdownDirective(SphinxDirective):
    """A directive that writes Markdown and lets MyST parse it in place."""

    def parse_markdown(self, markdown: str) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(markdown.splitlines(), source=self.env.docname), self.content_offset, container)
        return container.children

    def chapter(self, docname: str) -> tuple[Path, dict]:
        path = Path(self.env.srcdir) / f"{docname}.ipynb"
        if not path.exists():
            raise self.error(f"no chapter notebook {docname}.ipynb")
        self.env.note_dependency(str(path))
        self.env.note_dependency(str(Path(self.env.srcdir) / BENCH))
        return path, load_notebook(path)


class Scoreboard(_MarkdownDirective):
    """``{scoreboard}``: the headline result and cost of every chapter, in table-of-contents order."""

    has_content = False

    def run(self):
        root = Path(self.env.srcdir)
        bench = bench_records(root)
        rows = [
            "| chapter: task (baseline) | metric | baseline | final system | oracle "
            "| lift share (95 % interval) | lift share across seeds | run time, memory |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        measured = []
        for docname in toc_chapters(root):
            path, nb = self.chapter(docname)
            h = read_headline(nb)
            try:
                name = front_matter(nb)["title"].split(":")[0]
            except ValueError as error:
                raise self.error(f"{path.name}: {error}") from None
            if path.stem in bench:
                measured.append(bench[path.stem])
            cost = run_time(bench.get(path.stem))
            if not h:
                rows.append(f"| {{doc}}`{name} </{docname}>`: one step of the framework, no headline | | | | | | | {cost} |")
                continue
            if missing := sorted(set(HEADLINE_NAMES) - set(h)):
                raise self.error(f"{path.name} glued only part of its headline (no {', '.join(missing)}): "
                                 "call mlsd.evaluation.headline.glue_headline and run `make outputs`")
            rows.append(
                f"| {{doc}}`{name} </{docname}>`: {_cell(h['headline_task'])} ({_cell(h['headline_baseline_name'])}) "
                f"| {_cell(h['headline_metric'])} | {h['headline_baseline']!r} | {h['headline_model']!r} "
                f"| {h['headline_oracle']!r} | {h['headline_lift_share']:.0%} ({share_interval(h)}) "
                f"| {seed_spread(bench.get(path.stem))} | {cost} |"
            )
        note = (f"The 95 % interval: a paired bootstrap over the chapter's test units (users, queries, "
                f"impressions) at the stored seed. "
                f"Lift share across seeds: the lowest and highest at seeds {seeds_measured(measured)}. "
                f"Run time and peak memory: `make bench` on {measured_on(measured)} (stored in `{BENCH}`)."
                if measured else "")
        parsed = self.parse_markdown("\n".join(rows) + "\n\n" + note)
        for node in parsed:   # eight columns: _static/book.css sets this table a size smaller
            for table in node.findall(nodes.table):
                table["classes"].append("scoreboard")
        return parsed


class ChapterFacts(_MarkdownDirective):
    """``{chapter-facts} chapters/05_visual_search``: objectives, prerequisites, times, exercises."""

    required_arguments = 1
    has_content = False

    def run(self):
        docname = self.arguments[0].removesuffix(".ipynb")
        path, nb = self.chapter(docname)
        try:
            facts, listed = front_matter(nb), read_exercises(nb)
        except ValueError as error:
            raise self.error(f"{path.name}: {error}") from None
        record = bench_records(Path(self.env.srcdir)).get(path.stem)
        measured = f"{run_time(record)} on {record['machine']} (`make bench`, {record['measured_on']})" if record else run_time(None)
        exercises = "".join(f"\n  - {exercise_line(e)}" for e in listed) or " none"
        folder = str(Path(docname).parent)
        objectives = "\n".join(f"  - {_absolute_links(item, folder)}" for item in facts["objectives"])
        markdown = (
            f"- **Chapter**: {{doc}}`/{docname}`\n"
            f"- **Learning objectives**: the reader will learn to\n{objectives}\n"
            f"- **Prerequisites**: {_absolute_links(facts['prerequisites'], folder)}\n"
            f"- **Time, as the chapter states it**: {facts['time']}\n"
            f"- **Measured running time and peak memory**: {measured}\n"
            f"- **Exercises** (level, time, and the answers checked by code):{exercises}\n"
        )
        return self.parse_markdown(markdown)


def exercise_line(exercise) -> str:
    """One exercise for the guide: its reference, level, time, kind and checked answers."""
    kinds = {"design": "changes the design", "trade-off": "written trade-off"}
    notes = [f"{exercise.level.lower()}, {exercise.minutes} min"]
    notes += [kinds[c] for c in sorted(exercise.classes)]
    checked = ", ".join(f"`{a.name}`" for a in exercise.answers) or "none (graded by hand)"
    return f"{{ref}}`{exercise.label}` ({'; '.join(notes)}); checked: {checked}"


def chapter_number(docname: str) -> int | None:
    """9 for ``chapters/09_video_recommendation``; None for a page that is no chapter."""
    match = re.fullmatch(r"chapters/(\d+)_\w+", docname)
    return int(match[1]) if match else None


def number_per_chapter(app, env) -> list[str]:
    """Number figures, tables and exercises within each chapter, after its number: "Fig. 9.3",
    "Exercise 9.2". Sphinx counts them across the whole book ("Fig. 17" opens chapter 9), so
    adding a chapter would renumber every later one and stale an instructor's handout; the
    chapter number comes from the file name, which BOOK.md fixes. Runs after Sphinx assigned
    its numbers (``env-get-updated``, priority 900); returns the pages whose numbers changed."""
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        prefix = (number,) if (number := chapter_number(docname)) is not None else ()
        for numbers in by_type.values():
            renumbered = {key: (*prefix, i) for i, key in enumerate(sorted(numbers, key=numbers.get), 1)}
            if renumbered != numbers:
                numbers.clear()
                numbers.update(renumbered)
                changed.append(docname)
    return sorted(set(changed))


def number_chapter_title(app, doctree) -> None:
    """Put the chapter's number before its title ("9. Video recommendation: ..."), on the page and
    in the sidebar, from the file name as the figures are. Runs before Sphinx's title collector
    (priority 400), which then copies the numbered title for the sidebar and links."""
    number = chapter_number(app.env.docname)
    section = next(iter(doctree.findall(nodes.section)), None)
    if number is not None and section is not None and isinstance(section[0], nodes.title):
        section[0].insert(0, nodes.Text(f"{number}. "))


def setup(app):
    app.connect("doctree-read", number_chapter_title, priority=400)
    app.add_directive("scoreboard", Scoreboard)
    app.add_directive("chapter-facts", ChapterFacts)
    app.connect("env-get-updated", number_per_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
