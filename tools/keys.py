"""``make keys``: answer keys for any seed, by running the solutions.

    python tools/keys.py --seed 3 chapters/02_offline_metrics.ipynb [...]    # make keys SEED=3 NB=...

Each exercise's hand-in names the values checked by code (``mlsd.book.exercises``). This runs
the full edition of each chapter in a fresh kernel at the seed, reads every checked value right
after its solution's last code cell (so a later cell reusing the name cannot change it), checks
its kind, and writes the key with the values accepted around it to
``_build/keys/seed-<n>/<chapter>.json`` (read by ``make assignment``) and ``.md`` (for people).
Without ``--seed``, each chapter's stored seed. A solution that does not assign a checked name,
or assigns a value of the wrong kind, is an error naming the exercise.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import code_digest, seed_value, stored_seed  # noqa: E402
from notebooks import execute  # noqa: E402

from mlsd.book.exercises import exercises, solution_texts, split_solutions  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEYS = ROOT / "_build" / "keys"
MARK = "mlsd-answer-key"


def key_path(notebook: Path, seed: int, suffix: str = ".json") -> Path:
    return KEYS / f"seed-{seed}" / (Path(notebook).stem + suffix)


def capture_cells(nb) -> None:
    """After each solution's last code cell, add a cell whose value is its checked answers."""
    last_code = {label: index for label, index, cell in split_solutions(nb)
                 if label is not None and cell["cell_type"] == "code"}
    for exercise in reversed(exercises(nb)):  # from the end, so earlier indices stay valid
        if not exercise.answers:
            continue
        if exercise.label not in last_code:
            raise ValueError(f"exercise {exercise.label!r} hands in "
                             f"{[a.name for a in exercise.answers]} but its solution has no code cell")
        names = [a.name for a in exercise.answers]
        # The cell's value, not a print: stdout reaches the client through a buffer that a busy
        # machine may flush only after the cell has finished, and then it is lost.
        source = (f"from mlsd.book.exercises import answers_json\n"
                  f"{MARK!r} + ' ' + {exercise.label!r} + ' ' + answers_json(globals(), {names!r})")
        nb.cells.insert(last_code[exercise.label] + 1, nbformat.v4.new_code_cell(source))


def read_answers(nb) -> dict[str, dict]:
    """``{label: {name: value}}`` from the values of the cells :func:`capture_cells` added."""
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            if text[:1] in "'\"" and text[1:].startswith(MARK + " "):   # a str's repr, opening with MARK
                _, label, values = ast.literal_eval(text).split(" ", 2)
                found[label] = json.loads(values)
    return found


def make_key(notebook: Path, seed: int) -> dict:
    """Run ``notebook`` at ``seed``; return its answer key (and write it, .json and .md)."""
    source = json.loads(Path(notebook).read_text(encoding="utf-8"))
    listed = exercises(source)
    if any(e.answers for e in listed) and not solution_texts(source):
        raise ValueError(f"{notebook} has no solutions (is this the student edition?): answer keys are "
                         "computed by the full edition's solutions")
    ran, _ = execute(notebook, params={"SEED": seed}, edit=capture_cells)
    values = read_answers(ran)
    key = {"notebook": str(Path(notebook)), "seed": seed, "code": code_digest(notebook), "exercises": {}}
    for exercise in listed:
        answers = {}
        for answer in exercise.answers:
            value = values.get(exercise.label, {}).get(answer.name)
            if value is None:
                raise ValueError(f"{notebook}: the solution of {exercise.label!r} does not assign `{answer.name}`")
            try:
                value = answer.value(value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{notebook}: the solution of {exercise.label!r}: {error}") from None
            answers[answer.name] = {"key": value, "shown": answer.show(value), "accepted": answer.accepted(value),
                                    "kind": answer.kind,
                                    "tolerance": answer.tolerance, "relative": answer.relative,
                                    "choices": list(answer.choices)}
        key["exercises"][exercise.label] = {"level": exercise.level, "minutes": exercise.minutes,
                                            "hand_in": list(exercise.hand_in), "answers": answers}
    path = key_path(notebook, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(key, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    key_path(notebook, seed, ".md").write_text(as_markdown(key), encoding="utf-8")
    return key


def as_markdown(key: dict) -> str:
    lines = [f"# Answer key: {Path(key['notebook']).stem}, seed {key['seed']}", "",
             "Checked by code (accepted range) and graded by hand (the rubric in the instructor guide).", ""]
    for label, exercise in key["exercises"].items():
        lines += [f"## {label} ({exercise['level']}, {exercise['minutes']} min)", "",
                  "| answer | key | accepted |", "| --- | --- | --- |"]
        lines += [f"| `{name}` | {a['shown']} | {a['accepted']} |" for name, a in exercise["answers"].items()]
        by_hand = [item for item in exercise["hand_in"] if not item.startswith("`")]
        lines += [""] + [f"- graded by hand: {item}" for item in by_hand] + [""]
    return "\n".join(lines)


def current_key(notebook: Path, seed: int) -> dict:
    """The key written for ``notebook`` at ``seed`` if the notebook's code has not changed since;
    otherwise a new one."""
    path = key_path(notebook, seed)
    if path.exists():
        key = json.loads(path.read_text(encoding="utf-8"))
        if key.get("code") == code_digest(notebook):
            return key
    return make_key(notebook, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Write answer keys by running the solutions at a seed.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--seed", type=seed_value, default=None, help="the student's seed (default: each chapter's stored seed)")
    args = parser.parse_args(argv)
    for notebook in args.notebooks:
        if not exercises(json.loads(notebook.read_text(encoding="utf-8"))):
            continue
        seed = stored_seed(notebook) if args.seed is None else args.seed
        try:
            key = make_key(notebook, seed)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 1
        print(f"{key_path(notebook, seed, '.md').relative_to(ROOT)}:")
        for label, exercise in key["exercises"].items():
            for name, answer in exercise["answers"].items():
                print(f"  {label}  {name} = {answer['shown']}  (accept {answer['accepted']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
