"""``make assignment``: a chapter as an otter-grader assignment, graded against answer keys.

    python tools/assignment.py --seeds 0,1,2 chapters/02_offline_metrics.ipynb   # make assignment NB=... SEEDS=...

Otter-grader (https://otter-grader.readthedocs.io) is made for this: from one "master" notebook
holding solutions and tests, ``otter assign`` writes the notebook students get (each checked
answer a ``name = ...`` cell followed by ``grader.check(...)``) and an autograder zip; ``otter
run`` grades a submitted notebook locally, without Docker. This script writes the master from the
book's own chapter: every exercise with checked answers becomes an otter question whose solution
is the book's solution code (removed from the student's copy) and whose tests are

- public (students run them with ``grader.check``): the answer exists and is of its kind;
- hidden (the autograder only, 1 point per answer): the answer is within its tolerance of the key
  at the submission's ``SEED``, for every seed in ``--seeds`` (keys from ``make keys``, reused
  while the chapter's code is unchanged).

So students set ``SEED`` to their own seed, any correct approach within tolerance scores, and the
parts of a hand-in graded by hand (tables, plots, sentences) are left to the rubric. Output, in
``_build/assignments/<chapter>/``: ``student/<chapter>.ipynb`` (to hand out; it is a notebook of
the ``chapters/`` folder), ``<chapter>-autograder.zip`` (for ``make grade``) and the keys.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import seed_list  # noqa: E402
from keys import current_key, key_path  # noqa: E402

from mlsd.book.exercises import EXERCISE, exercise_label, exercises, split_solutions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "assignments"
OTTER = str(Path(sys.executable).parent / "otter")
CONFIG = """# ASSIGNMENT CONFIG
name: {name}
init_cell: true
check_all_cell: false
export_cell: false
run_tests: false
solutions_pdf: false
generate: true
"""


def raw(text: str):
    return nbformat.v4.new_raw_cell(text)


def public_test(answer) -> str:
    return f"from mlsd.book.exercises import Answer\n_ = {answer!r}.value({answer.name})"


def hidden_test(answer, keys: dict[int, object]) -> str:
    return (f'""" # BEGIN TEST CONFIG\nhidden: true\npoints: 1\n""" # END TEST CONFIG\n'
            f"from mlsd.book.exercises import Answer\n"
            f"KEYS = {keys!r}\n"
            f'assert SEED in KEYS, f"no answer key for SEED = {{SEED}}: this assignment has keys for {sorted(keys)}"\n'
            f"assert {answer!r}.accepts(KEYS[SEED], {answer.name}), "
            f'"`{answer.name}` is not within the tolerance of the key"')


def split_at_exercises(text: str) -> list[tuple[str | None, str]]:
    """Markdown text as ``(label or None, piece)``: each exercise block its own piece."""
    pieces, start = [], 0
    for match in EXERCISE.finditer(text):
        pieces += [(None, text[start:match.start()]), (exercise_label(match), match.group(0))]
        start = match.end()
    pieces.append((None, text[start:]))
    return [(label, piece.strip("\n")) for label, piece in pieces if piece.strip()]


def master_notebook(nb: dict, name: str, keys: dict[int, dict]) -> nbformat.NotebookNode:
    """The otter master notebook of a chapter (``nb``, the full edition) with keys per seed."""
    checked = {e.label: e for e in exercises(nb) if e.answers}
    out = nbformat.v4.new_notebook(metadata=nb["metadata"])
    out.cells.append(raw(CONFIG.format(name=name)))
    open_question = None

    def close_question():
        nonlocal open_question
        if open_question is None:
            return
        exercise = checked[open_question]
        out.cells.append(nbformat.v4.new_code_cell(
            "\n".join(f"{a.name} = {a.name}  # SOLUTION" for a in exercise.answers)))
        out.cells += [raw("# END SOLUTION"), raw("# BEGIN TESTS")]
        for answer in exercise.answers:
            by_seed = {seed: key["exercises"][exercise.label]["answers"][answer.name]["key"]
                       for seed, key in keys.items()}
            out.cells += [nbformat.v4.new_code_cell(public_test(answer)),
                          nbformat.v4.new_code_cell(hidden_test(answer, by_seed))]
        out.cells += [raw("# END TESTS"), raw("# END QUESTION")]
        open_question = None

    for solution, _, cell in split_solutions(nb):
        source = "".join(cell["source"])
        if solution is not None:  # the book's solution: its code, hidden from students
            if cell["cell_type"] == "code" and solution == open_question:
                out.cells.append(nbformat.v4.new_code_cell(
                    f"# BEGIN SOLUTION NO PROMPT\n{source}\n# END SOLUTION"))
            continue
        if cell["cell_type"] != "markdown":
            close_question()
            out.cells.append(nbformat.v4.new_code_cell(source, metadata=cell["metadata"]))
            continue
        for label, piece in split_at_exercises(source):
            close_question()
            if label in checked:
                out.cells += [raw(f"# BEGIN QUESTION\nname: {label}\npoints: {len(checked[label].answers)}"),
                              nbformat.v4.new_markdown_cell(piece), raw("# BEGIN SOLUTION")]
                open_question = label
            else:
                out.cells.append(nbformat.v4.new_markdown_cell(piece))
    close_question()
    return out


def make_assignment(notebook: Path, seeds: list[int]) -> Path:
    """Write the chapter's assignment for ``seeds``; return its folder."""
    name = notebook.stem
    keys = {seed: current_key(notebook, seed) for seed in seeds}
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    master = folder / "master" / notebook.name
    master.parent.mkdir(parents=True)
    nbformat.write(master_notebook(json.loads(notebook.read_text(encoding="utf-8")), name, keys), master)
    subprocess.run([OTTER, "assign", str(master), str(folder / "dist")], check=True, capture_output=True, text=True)
    shutil.move(folder / "dist" / "student", folder / "student")
    [zip_file] = (folder / "dist" / "autograder").glob("*.zip")
    shutil.move(zip_file, folder / f"{name}-autograder.zip")
    shutil.move(folder / "dist" / "autograder" / notebook.name, folder / "solutions.ipynb")
    shutil.rmtree(folder / "dist")
    for seed in seeds:
        shutil.copy(key_path(notebook, seed, ".md"), folder / f"key-seed-{seed}.md")
    return folder


def grade(notebook: Path, submission: Path) -> dict:
    """Grade ``submission`` with the chapter's autograder (``otter run``); return otter's results,
    also written to ``_build/grades/<submission>/results.json``."""
    autograder = OUT / notebook.stem / f"{notebook.stem}-autograder.zip"
    if not autograder.exists():
        raise FileNotFoundError(f"{autograder.relative_to(ROOT)} does not exist: run "
                                f"`make assignment NB={notebook} SEEDS=...` first")
    if not submission.is_file():
        raise FileNotFoundError(f"no submitted notebook at {submission}")
    results = ROOT / "_build" / "grades" / submission.stem
    results.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([OTTER, "run", "--no-logo", "-a", str(autograder), "-o", str(results), str(submission)],
                          capture_output=True, text=True)
    if done.returncode != 0 or not (results / "results.json").exists():
        raise RuntimeError(f"otter could not grade {submission}:\n{done.stdout}{done.stderr}")
    return json.loads((results / "results.json").read_text(encoding="utf-8"))


def scores(results: dict) -> dict[str, tuple[float, float]]:
    """``{exercise: (score, points)}`` from otter's results."""
    return {t["name"]: (t["score"], t["max_score"]) for t in results["tests"] if "max_score" in t}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write an otter-grader assignment for a chapter, or grade a submission.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--seeds", type=seed_list, help="write the assignment with keys for these seeds, e.g. 0,1,2")
    parser.add_argument("--grade", type=Path, metavar="SUBMISSION", help="grade this submitted notebook")
    args = parser.parse_args(argv)
    if args.grade:
        try:
            results = grade(args.notebook, args.grade)
        except (FileNotFoundError, RuntimeError) as error:
            parser.exit(1, f"{error}\n")
        per_exercise = scores(results)
        for label, (score, points) in per_exercise.items():
            print(f"{label:32} {score:g} / {points:g}")
        total, points = (sum(v[i] for v in per_exercise.values()) for i in (0, 1))
        print(f"{'total (checked answers)':32} {total:g} / {points:g}; details in _build/grades/{args.grade.stem}/")
        return 0
    if not args.seeds:
        parser.exit(2, "give --seeds (make assignment SEEDS=0,1,2) or --grade SUBMISSION\n")
    if not any(e.answers for e in exercises(json.loads(args.notebook.read_text(encoding="utf-8")))):
        parser.exit(1, f"{args.notebook} has no exercise with answers checked by code\n")
    folder = make_assignment(args.notebook, args.seeds)
    print(f"Assignment for seeds {', '.join(map(str, args.seeds))} in {folder.relative_to(ROOT)}:\n"
          f"  hand out  student/{args.notebook.name}\n"
          f"  grade     make grade NB={args.notebook} SUBMISSION=<the student's notebook>\n"
          f"  keys      key-seed-<n>.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
