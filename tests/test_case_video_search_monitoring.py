"""Chapter 7's monitoring plumbing: the results cache, daily rates and bands, unknown words,
query expansion, hidden grades by intent, the section's numbers and figure."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mlsd.cases import video_search as case  # noqa: E402
from mlsd.datasets import load  # noqa: E402
from mlsd.datasets import video_search as vs  # noqa: E402


@pytest.fixture(scope="module")
def world():
    return load("video_search", seed=0)


# --------------------------------------------------------------------------- the results cache


def test_bag_ignores_order_and_repeats():
    assert case.bag("soccer goals soccer") == case.bag("goals soccer") == "goals soccer"
    assert case.bag("") == ""


def test_cached_search_searches_each_bag_once_and_returns_a_row_per_text():
    calls = []

    def fake_search(texts, k=2):
        calls.append(list(texts))
        return np.array([[len(t), k] for t in texts])

    out = case.cached_search(fake_search, ["b a", "a b", "c", "a b b"], k=7)
    assert calls == [["a b", "c"]]
    assert out.tolist() == [[3, 7], [3, 7], [1, 7], [3, 7]]


def test_cached_search_rejects_a_string_and_an_empty_list():
    with pytest.raises(TypeError, match="not one string"):
        case.cached_search(lambda t: t, "footy")
    with pytest.raises(ValueError, match="empty"):
        case.cached_search(lambda t: t, [])
    with pytest.raises(ValueError, match="rows for 2 queries"):
        case.cached_search(lambda t: np.zeros((1, 1)), ["a", "b"])


# --------------------------------------------------------------------------- signals


def test_no_known_word_needs_every_word_unknown_to_every_vocabulary():
    index, tower = {"goals": 0}, {"soccer": 0, "goals": 1}
    texts = ["footy", "footy goals", "soccer", "footy footy", ""]
    assert case.no_known_word(texts, index, tower).tolist() == [True, False, False, True, True]
    assert case.no_known_word(["soccer"], index).tolist() == [True]
    with pytest.raises(ValueError, match="vocabulary"):
        case.no_known_word(["soccer"])


def test_daily_rates_counts_searches_and_averages_each_flag():
    out = case.daily_rates([3, 3, 4, 3], zero=[1, 0, 0, 0], click=[True, True, False, False])
    assert out.index.tolist() == [3, 4] and out.index.name == "day"
    assert out["searches"].tolist() == [3, 1]
    assert np.allclose(out["zero"], [1 / 3, 0]) and np.allclose(out["click"], [2 / 3, 0])
    with pytest.raises(ValueError, match="one value per search"):
        case.daily_rates([1, 2], zero=[1])
    with pytest.raises(ValueError, match="at least one flag"):
        case.daily_rates([1, 2])


def test_unknown_words_ranks_words_by_day_and_skips_known_ones():
    texts = ["footy goals", "footy", "zzz footy", "goals", "zzz"]
    out = case.unknown_words(texts, [1, 1, 1, 2, 2], [{"goals": 0}], top=1)
    assert out.index.tolist() == [(1, "footy"), (2, "zzz")]
    assert out["searches"].tolist() == [3, 1]
    with pytest.raises(ValueError, match="one day per text"):
        case.unknown_words(texts, [1], [{}])


# --------------------------------------------------------------------------- fixes and truth


def test_expand_queries_appends_the_partner_of_each_word_with_a_rule():
    rules = {"footy": "soccer"}
    assert case.expand_queries(["footy goals", "goals", "footy"], rules) == [
        "footy goals soccer", "goals", "footy soccer"]
    with pytest.raises(TypeError, match="map words to words"):
        case.expand_queries(["footy"], {"footy": 3})


def test_intent_grades_match_the_rated_queries_grades(world):
    intents = world.hidden["query_intents"].head(5)
    expected = vs.true_grades(world, intents["query_id"])
    assert np.array_equal(vs.intent_grades(world, intents), expected)
    with pytest.raises(ValueError, match="not an intent"):
        vs.intent_grades(world, pd.DataFrame({"topic": ["football"], "concept": ["nope"]}))
    with pytest.raises(ValueError, match="columns"):
        vs.intent_grades(world, pd.DataFrame({"topic": ["football"]}))


# --------------------------------------------------------------------------- numbers and figure


def _section():
    daily = pd.DataFrame({"searches": [10, 10, 10, 10],
                          "zero-result rate": [0, 0, 0.2, 0.1],
                          "CTR": [0.7, 0.7, 0.6, 0.6],
                          "zero-result rate, fixed": [0, 0, 0.2, 0.0],
                          "CTR, fixed": [0.7, 0.7, 0.6, 0.65]}, index=[28, 29, 30, 31])
    recovered = pd.DataFrame({"nDCG@10": [0.3, 0.7, 0.8], "low": [0.2, 0.6, 0.7],
                              "high": [0.4, 0.8, 0.9]},
                             index=["deployed", "query expansion", "retrained tower"])
    caught = {"zero-result rate": {"detected": True, "delay": 0},
              "CTR": {"detected": False, "delay": None}}
    gains = {"query expansion": (0.3, 0.5), "retrained tower": (0.4, 0.6)}
    support = pd.DataFrame({"word": ["footy", "footy"], "partner": ["goals", "match"],
                            "retries": [5, 4]})
    return daily, caught, {"zero-result rate": 30, "CTR": None}, recovered, gains, 0.7, \
        {"deployed": 0.5, "retrained": 0.6}, {"footy": "goals"}, support


def test_section_numbers_names_what_the_prose_quotes():
    out = case.section_numbers(*_section(), fix_day=31, first_day=28)
    assert out["mon_fix_day"] == 31 and out["mon_first_day"] == 28
    assert out["mon_zero_alarm_day"] == 30 and out["mon_zero_peak"] == 0.2
    assert out["mon_zero_fixed"] == 0.0 and out["mon_ctr_verdict"] == "never leaves its band"
    assert (out["mon_rule_word"], out["mon_rule_partner"], out["mon_rule_support"]) == (
        "footy", "goals", 5)
    assert out["mon_gain_retrained_low"] == 0.4 and out["mon_ndcg_expansion"] == 0.7
    assert "mon_gain_deployed_low" not in out


def test_section_numbers_needs_the_three_systems_and_a_rule():
    args = list(_section())
    args[3] = args[3].drop(index="retrained tower")
    with pytest.raises(ValueError, match="systems"):
        case.section_numbers(*args, fix_day=31)
    args = list(_section())
    args[7] = {}
    with pytest.raises(ValueError, match="no rule"):
        case.section_numbers(*args, fix_day=31)


def test_plot_monitoring_draws_three_panels():
    daily, _, alarm_day, recovered, *_ = _section()
    bands = {"zero-result rate": (np.zeros(4), np.full(4, 0.05)),
             "CTR": (np.full(4, 0.5), np.full(4, 0.9))}
    fig, axes = plt.subplots(3)
    case.plot_monitoring(axes, daily, bands, 30, 31, recovered, 0.7)
    assert [ax.get_title() for ax in axes[:2]] == ["zero-result rate", "CTR"]
    assert len(axes[2].patches) == 3
    plt.close(fig)
