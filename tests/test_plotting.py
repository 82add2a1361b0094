import math

import matplotlib

matplotlib.use("Agg")  # in this test process only (an MPLBACKEND variable would reach the notebook kernels)

import matplotlib.pyplot as plt
import pytest

from mlsd.book.plotting import OKABE_ITO, ROLE_COLORS, metric_bars, use_book_style


@pytest.fixture(autouse=True)
def restore_rcparams():
    with matplotlib.rc_context():
        yield
    plt.close("all")


def test_style_is_applied_only_when_asked():
    import importlib

    import mlsd.book.plotting

    before = dict(matplotlib.rcParams)
    importlib.reload(mlsd.book.plotting)
    assert dict(matplotlib.rcParams) == before  # importing changes nothing
    use_book_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
    assert matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0] == OKABE_ITO["blue"]


def test_tables_show_full_text():
    import pandas as pd

    message = "hour must be between 7 and 23, the hours the model was trained on; got 3" * 2
    with pd.option_context("display.max_colwidth", 50):
        use_book_style()
        assert message in pd.DataFrame({"error": [message]}).to_html()


def test_metric_bars_draws_one_labelled_bar_per_system_coloured_by_role():
    scores = {"baseline": 0.6, "model": 0.7, "oracle": 0.75}
    ax = metric_bars(scores, "ROC-AUC", roles={"baseline": "baseline", "oracle": "oracle"})
    bars = ax.patches
    assert [b.get_width() for b in bars] == [0.6, 0.7, 0.75]
    expected = [ROLE_COLORS["baseline"], ROLE_COLORS["model"], ROLE_COLORS["oracle"]]
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars] == [c.lower() for c in expected]
    assert [t.get_text() for t in ax.texts] == ["0.600", "0.700", "0.750"]
    assert ax.get_xlabel() == "ROC-AUC"


@pytest.mark.parametrize(
    "scores, metric, roles, message",
    [
        ({}, "AUC", None, "non-empty mapping"),
        ([0.5], "AUC", None, "non-empty mapping"),
        ({"m": math.nan}, "AUC", None, "'m' must be a finite number"),
        ({"m": "0.5"}, "AUC", None, "'m' must be a finite number"),
        ({"m": 0.5}, "", None, "metric must be a non-empty string"),
        ({"m": 0.5}, "AUC", {"m": "hero"}, "unknown roles \\['hero'\\]"),
    ],
)
def test_bad_input_is_named(scores, metric, roles, message):
    with pytest.raises(ValueError, match=message):
        metric_bars(scores, metric, roles=roles)


def test_tables_print_large_whole_numbers_with_thousands_separators():
    import pandas as pd

    from mlsd.book.plotting import table_html

    frame = pd.DataFrame({"users": [20_000_000, 12], "mixed": [120_000_000, "x"],
                          "user_id": [123_456, 7], "rate": [0.123456789, 1.5]})
    html = table_html(frame)
    assert "20,000,000" in html and "120,000,000" in html and ">12<" in html
    assert "123456" in html, "identifiers are not quantities: no separators"
    assert "0.123457" in html, "floats are left as pandas formats them"
    plain = pd.DataFrame({"rate": [0.1234567891, 2.0], "label": ["a", "b"]})
    assert table_html(plain) == plain._repr_html_(), "nothing else changes"
    with pytest.raises(TypeError, match="DataFrame"):
        table_html(frame["users"])
