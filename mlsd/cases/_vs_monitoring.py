"""Chapter 7 (video search), monitoring section: the plumbing of "new slang".

Daily rates with a binomial band, the distinct-query results cache, unknown words by day,
query expansion, the hidden grades of searches by intent, and the section's figure. The
lesson (what counts as a zero-result search, mining retries, retraining the tower) stays in
the chapter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from mlsd.datasets import video_search as vs


def _texts(name: str, texts) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a sequence of query strings, not one string")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must hold strings")
    return texts


def bag(text: str) -> str:
    """A query's words, deduplicated and sorted: the key of a query as a bag of words."""
    return " ".join(sorted(set(text.split())))


def search_distinct(search: Callable, texts, **kwargs) -> np.ndarray:
    """``search(texts, **kwargs)`` computed once per distinct bag of words: a results cache.

    The chapter's system ignores word order and repeats, so two searches with the same words get
    the same page; this searches each distinct bag once and returns one row per text.
    """
    texts = _texts("texts", texts)
    if not texts:
        raise ValueError("texts is empty")
    keys, rows = np.unique([bag(t) for t in texts], return_inverse=True)
    return np.asarray(search(list(keys), **kwargs))[rows]


def no_known_word(texts, *vocabularies) -> np.ndarray:
    """True for each text none of whose words is in any of ``vocabularies`` (an empty text too)."""
    texts = _texts("texts", texts)
    if not vocabularies:
        raise ValueError("give at least one vocabulary")
    return np.array([not any(w in v for w in t.split() for v in vocabularies) for t in texts])


def daily_rates(day, **flags) -> pd.DataFrame:
    """Per day, the number of searches and the share of each boolean flag (one per search)."""
    day = np.asarray(day)
    if day.ndim != 1 or not flags:
        raise ValueError("give a 1-d day per search and at least one flag")
    for name, flag in flags.items():
        if np.asarray(flag).shape != day.shape:
            raise ValueError(f"flag {name!r} needs one value per search ({len(day)})")
    frame = pd.DataFrame({name: np.asarray(f, dtype=float) for name, f in flags.items()})
    out = frame.groupby(day).mean()
    out.insert(0, "searches", pd.Series(day).value_counts().sort_index().to_numpy())
    return out.rename_axis("day")


def binomial_band(reference_rate: float, reference_n: int, n, z: float = 3.0):
    """The band ``rate ± z`` standard errors for a day of ``n`` searches, around a reference.

    The reference rate is smoothed by one success and one failure in ``reference_n`` searches
    (a rate of exactly 0 would give a band of width 0). Returns ``(low, high)`` arrays.
    """
    if not 0 <= reference_rate <= 1 or reference_n < 1 or z <= 0:
        raise ValueError("need a reference rate in [0, 1], reference_n >= 1 and z > 0")
    n = np.asarray(n, dtype=float)
    if (n < 1).any():
        raise ValueError("every day needs at least one search")
    p = (reference_rate * reference_n + 1) / (reference_n + 2)
    half = z * np.sqrt(p * (1 - p) / n)
    return np.clip(p - half, 0, 1), np.clip(p + half, 0, 1)


def unknown_words(texts, day, known, top: int = 3) -> pd.DataFrame:
    """Per day, the ``top`` most typed query words that are in none of the ``known`` sets."""
    texts = _texts("texts", texts)
    if len(texts) != len(day):
        raise ValueError("give one day per text")
    words = pd.DataFrame({"day": np.asarray(day), "word": [t.split() for t in texts]})
    words = words.explode("word").dropna()
    words = words[~words["word"].map(lambda w: any(w in k for k in known))]
    counts = words.value_counts(["day", "word"]).rename("searches").reset_index()
    counts = counts.sort_values(["day", "searches", "word"], ascending=[True, False, True])
    return counts.groupby("day").head(top).set_index(["day", "word"])


def expand_queries(texts, rules: Mapping[str, str]) -> list[str]:
    """Each text with ``rules[word]`` appended for every word of it that has a rule."""
    texts = _texts("texts", texts)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in rules.items()):
        raise TypeError("rules must map words to words")
    return [" ".join([t, *(rules[w] for w in t.split() if w in rules)]) for t in texts]


def intent_grades(world, intents: pd.DataFrame) -> np.ndarray:
    """Hidden: the grade of every video for each search's intent (columns topic, concept)."""
    if not {"topic", "concept"} <= set(intents.columns):
        raise ValueError("intents needs columns topic and concept")
    lookup = {intent: j for j, intent in enumerate(vs.INTENTS)}
    rows = [lookup.get(pair, -1) for pair in zip(intents["topic"], intents["concept"])]
    if min(rows, default=0) < 0:
        raise ValueError("intents holds a (topic, concept) pair that is not an intent")
    return vs.grade_matrix(world.hidden["video_truth"])[np.asarray(rows, dtype=np.int64)]


def section_numbers(daily: pd.DataFrame, caught: Mapping, alarm_day: Mapping,
                    recovered: pd.DataFrame, gains: Mapping, without_slang: float,
                    tower_check: Mapping, rules: Mapping, support: pd.DataFrame,
                    **settings) -> dict:
    """The numbers the section's prose quotes, named ``mon_*`` (``settings``: ints as given).

    ``daily`` holds the deployed and ``, fixed`` rates by day; ``caught`` the outcome of
    ``evaluate_alarms`` per signal and ``alarm_day`` its day (None: never); ``recovered`` the
    nDCG@10 per system (rows deployed, query expansion, retrained tower); ``gains`` the paired
    intervals of each fix's gain; ``tower_check`` the tower's validation nDCG@10 (deployed,
    retrained); ``rules`` the mined expansion rules and ``support`` the mined pairs' counts.
    """
    needed = {"deployed", "query expansion", "retrained tower"}
    if not needed <= set(recovered.index) or not needed - {"deployed"} <= set(gains):
        raise ValueError(f"recovered and gains need the systems {sorted(needed)}")
    if not rules:
        raise ValueError("no rule was mined: the section's prose needs one")
    word, partner = next(iter(rules.items()))
    fix_day = settings["fix_day"]
    ctr, fixed_days = caught["CTR"], daily.index >= fix_day
    out = {f"mon_{k}": v for k, v in settings.items()}
    out |= {"mon_last_day": int(daily.index.max()),
            "mon_zero_alarm_day": alarm_day["zero-result rate"],
            "mon_zero_delay": caught["zero-result rate"]["delay"],
            "mon_zero_peak": daily["zero-result rate"].max(),
            "mon_zero_fixed": daily.loc[fixed_days, "zero-result rate, fixed"].max(),
            "mon_ctr_verdict": (f"alarms on day {alarm_day['CTR']}" if ctr["detected"]
                                else "never leaves its band"),
            "mon_ctr_low": daily["CTR"].min(), "mon_ctr_high": daily["CTR"].max(),
            "mon_rule_word": word, "mon_rule_partner": partner,
            "mon_rule_support": int(support.loc[(support["word"] == word)
                                                & (support["partner"] == partner),
                                                "retries"].iloc[0]),
            "mon_without_slang": without_slang,
            "mon_tower_before": tower_check["deployed"],
            "mon_tower_after": tower_check["retrained"]}
    for name, key in (("deployed", "deployed"), ("query expansion", "expansion"),
                      ("retrained tower", "retrained")):
        out[f"mon_ndcg_{key}"] = recovered.loc[name, "nDCG@10"]
        if name in gains:
            out[f"mon_gain_{key}_low"], out[f"mon_gain_{key}_high"] = gains[name]
    return out


def plot_monitoring(axes, daily: pd.DataFrame, bands: Mapping, alarm_day, fix_day,
                    recovered: pd.DataFrame, reference: float) -> None:
    """The section's figure: two daily rates with their bands, alarm and fix day (``axes`` 0
    and 1: columns of ``daily`` named as ``bands``' keys, a ``<name>, fixed`` column for the
    fixed system), and nDCG@10 with 95 % intervals per system (``axes[2]``; ``recovered``
    has columns nDCG@10, low, high) against a ``reference`` line."""
    for ax, (name, (low, high)) in zip(axes[:2], bands.items()):
        ax.fill_between(daily.index, low, high, color="0.85", step="mid", label="band")
        ax.plot(daily.index, daily[name], "o-", color="#0072B2", label="deployed")
        fixed = daily[f"{name}, fixed"].where(daily.index >= fix_day)
        ax.plot(daily.index, fixed, "s--", color="#009E73", label="with the fix")
        if alarm_day is not None:
            ax.axvline(alarm_day, color="#D55E00", lw=1, label="first alarm")
        ax.set(xlabel="day", title=name)
    axes[0].legend(fontsize=8)
    ax, y = axes[2], recovered["nDCG@10"].to_numpy()
    err = np.vstack([y - recovered["low"].to_numpy(), recovered["high"].to_numpy() - y])
    ax.barh(recovered.index[::-1], y[::-1], xerr=err[:, ::-1], color="#0072B2", capsize=3)
    ax.axvline(reference, color="0.3", ls=":", label="football, reference days")
    ax.set(xlabel="nDCG@10, slang searches after the fix day", xlim=(0, 1))
    ax.legend(fontsize=8, loc="lower right")
