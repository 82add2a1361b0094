"""Answer keys (``make keys``) and the otter-grader round trip (``make assignment``, ``make grade``),
on chapter 2, the quickest chapter: keys at two seeds, a correct submission at each seed scores
full marks, a wrong one scores exactly what it got right."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlsd.book.exercises import exercises

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/02_offline_metrics.ipynb"
FOLDER = ROOT / "_build" / "assignments" / "02_offline_metrics"
sys.path.insert(0, str(ROOT / "tools"))
from student import solution_fragments, site_text, find  # noqa: E402


def make(*args):
    done = subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def keys():
    out = {}
    for seed in (0, 1):
        printed = make("keys", f"SEED={seed}", f"NB={CHAPTER}")
        out[seed] = json.loads((ROOT / "_build" / "keys" / f"seed-{seed}" / "02_offline_metrics.json").read_text())
        assert "metrics-ex-bins  ece_at_50_bins = " in printed
    return out


def test_make_keys_writes_every_checked_answer_at_each_seed(keys):
    listed = exercises(json.loads((ROOT / CHAPTER).read_text()))
    for seed, key in keys.items():
        assert key["seed"] == seed
        for exercise in listed:
            answers = key["exercises"][exercise.label]["answers"]
            assert list(answers) == [a.name for a in exercise.answers]
            for answer in exercise.answers:  # of its kind, and accepted against itself
                assert answer.accepts(answers[answer.name]["key"], answers[answer.name]["key"])
    ece = {seed: key["exercises"]["metrics-ex-bins"]["answers"]["ece_at_50_bins"]["key"] for seed, key in keys.items()}
    hand = {seed: key["exercises"]["metrics-ex-hand"]["answers"]["hand_ap_at_3"]["key"] for seed, key in keys.items()}
    assert ece[0] != ece[1], "the seed did not reach the chapter"
    assert hand[0] == hand[1] == pytest.approx(1 / 6), "a worked example does not depend on the seed"


def test_the_key_at_the_stored_seed_is_what_the_stored_outputs_show(keys):
    nb = json.loads((ROOT / CHAPTER).read_text())
    printed = next("".join(o["data"]["text/plain"]) for c in nb["cells"] if c["cell_type"] == "code"
                   and "ece_by_bins" in "".join(c["source"]) for o in c["outputs"] if "data" in o)
    stored = {int(k): float(v) for k, v in re.findall(r"(\d+): ([\d.]+)", printed)}
    answers = keys[0]["exercises"]["metrics-ex-bins"]["answers"]
    assert round(answers["ece_at_5_bins"]["key"], 4) == stored[5]
    assert round(answers["ece_at_50_bins"]["key"], 4) == stored[50]


def submission(name, source, replace):
    """A copy of ``source`` with the given cells' code replaced: ``{cell's first line: code}``."""
    nb = json.loads(source.read_text())
    for cell in nb["cells"]:
        first = "".join(cell["source"]).split("\n")[0]
        if cell["cell_type"] == "code" and first in replace:
            cell["source"] = replace[first]
    path = ROOT / "_build" / "grades" / "submissions" / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb))
    return path


def graded(path):
    printed = make("grade", f"NB={CHAPTER}", f"SUBMISSION={path}")
    return {label: (float(score), float(points)) for label, score, points
            in re.findall(r"^(\S+-ex-\S+)\s+([\d.]+) / ([\d.]+)$", printed, re.M)}


@pytest.fixture(scope="module")
def assignment(keys):
    make("assignment", f"NB={CHAPTER}", "SEEDS=0,1")
    return FOLDER


def test_the_student_notebook_holds_no_solution_and_asks_for_every_answer(assignment):
    book = json.loads((ROOT / CHAPTER).read_text())
    student = site_text(assignment / "student")
    leaked = [f for label, fs in solution_fragments(book).items() for f in fs if find(f, student)]
    assert not leaked, leaked
    code = "\n".join("".join(c["source"]) for c in json.loads(
        (assignment / "student" / "02_offline_metrics.ipynb").read_text())["cells"] if c["cell_type"] == "code")
    for exercise in exercises(book):
        assert f'grader.check("{exercise.label}")' in code
        for answer in exercise.answers:
            assert f"{answer.name} = ..." in code
    assert "ece_by_bins" not in code  # the solution's code is gone too


def test_a_correct_submission_scores_full_marks_at_each_seed(assignment):
    for seed in (0, 1):
        path = submission(f"correct-seed-{seed}", assignment / "solutions.ipynb", {"SEED = 0": f"SEED = {seed}"})
        scores = graded(path)
        assert scores == {"metrics-ex-hand": (4, 4), "metrics-ex-bins": (2, 2), "metrics-ex-imbalance": (3, 3)}, seed


def test_a_wrong_submission_scores_only_what_it_got_right(assignment):
    wrong = {  # AP@3 not divided by 3, the ECE of the wrong model and a string, B's lead and "A"
        "hand_precision_at_3 = ...": "hand_precision_at_3, hand_recall_at_3 = 1 / 3, 1 / 3\n"
                                     "hand_reciprocal_rank, hand_ap_at_3 = 1 / 2, 1 / 2",
        "ece_at_5_bins = ...": "ece_at_5_bins = metrics.expected_calibration_error(\n"
                               "    y_sim, models['overconfident'], n_bins=5)\nece_at_50_bins = '0.0129'",
        "roc_auc_prefers = ...": "roc_auc_prefers, ap_flips_between = 'A', '10% and 30%'\nap_lead_at_1pct = -0.3",
    }
    path = submission("wrong", assignment / "student" / "02_offline_metrics.ipynb", wrong)
    assert graded(path) == {"metrics-ex-hand": (3, 4), "metrics-ex-bins": (0, 2), "metrics-ex-imbalance": (1, 3)}
