import math

import nbformat
import pytest
from nbclient import NotebookClient

from mlsd.headline import HEADLINE_NAMES, glue_headline, lift_share, read_headline


@pytest.mark.parametrize(
    "baseline, model, oracle, share",
    [
        (0.5, 0.75, 1.0, 0.5),  # higher is better (AUC)
        (0.30, 0.24, 0.20, 0.6),  # lower is better (log loss): the same formula
        (0.5, 0.5, 0.9, 0.0),
        (0.5, 0.9, 0.9, 1.0),
        (0.5, 0.4, 0.9, -0.25),  # worse than the baseline: negative, not clipped
    ],
)
def test_lift_share(baseline, model, oracle, share):
    assert math.isclose(lift_share(baseline, model, oracle), share)


@pytest.mark.parametrize(
    "args, message",
    [
        ((0.5, 0.6, 0.5), "no achievable lift"),
        ((math.nan, 0.6, 0.9), "baseline must be a finite number"),
        ((0.5, math.inf, 0.9), "model must be a finite number"),
        ((0.5, 0.6, "0.9"), "oracle must be a finite number"),
    ],
)
def test_lift_share_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        lift_share(*args)


@pytest.mark.parametrize(
    "metric, task, baseline_name, message",
    [
        (" ", "rank videos", "most popular", "metric must be a non-empty string"),
        ("MAP@10", "", "most popular", "task must be a non-empty string"),
        ("MAP@10", "rank videos", None, "baseline_name must be a non-empty string"),
    ],
)
def test_glue_headline_rejects_empty_names(metric, task, baseline_name, message):
    with pytest.raises(ValueError, match=message):
        glue_headline(metric, 0.5, 0.6, 0.9, task=task, baseline_name=baseline_name)


def test_glued_headline_reads_back_from_an_executed_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from mlsd.headline import glue_headline\n_ = glue_headline('MAP@10', 0.1, 0.2, 0.3, task='rank videos', baseline_name='most popular')"),
    ])
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()
    headline = read_headline(nb)
    assert set(headline) == set(HEADLINE_NAMES)
    assert headline["headline_metric"] == "MAP@10"
    assert headline["headline_task"] == "rank videos" and headline["headline_baseline_name"] == "most popular"
    assert math.isclose(headline["headline_lift_share"], 0.5)
    assert read_headline(nbformat.v4.new_notebook()) == {}
