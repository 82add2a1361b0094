"""The harmful content world (Chapter 8): schema, the story's shares, the oracle, the helpers, drift."""

import re

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

from mlsd import datasets
from mlsd.datasets import harmful_content as hc

K = hc.KNOBS
LABELS = list(hc.LABELS)
HIDDEN_COLUMNS = {"author_type", "scenario", "severity", "audience", "true_past_violations"}
BAD_ACTORS = [t for t in hc.TYPES if t != "normal"]


@pytest.fixture(scope="module")
def world():
    return datasets.load("harmful_content")  # the stored files at seed 0


@pytest.fixture(scope="module")
def oracle(world):
    return hc.posterior(world)


@pytest.fixture(scope="module")
def later(world):
    return hc.new_posts(world, 4_000, first_day=60, n_days=10)


def words_of(texts) -> set[str]:
    return {w for text in texts for w in text.split()}


def post(text, *, post_id=0, age=700, violations=0, views=60, reports=0):
    return dict(post_id=post_id, day=0, text=text, account_age_days=age, past_violations=violations,
                views_1h=views, reports_1h=reports, has_image=False)


NO_IMAGES = pd.DataFrame(columns=["post_id", *(f"e{j}" for j in range(hc.EMB_DIM))])


# --------------------------------------------------------------------------- reproducibility and schema


def test_generate_is_deterministic_and_the_stored_files_round_trip(world):
    generated = hc.generate(hc.DEFAULT_SEED)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(generated, kind)) == sorted(getattr(world, kind))
        for table, frame in getattr(generated, kind).items():
            assert_frame_equal(getattr(world, kind)[table], frame)
    assert not world.observed["posts"]["text"].isna().any()  # an empty text stays ""
    other = hc.generate(1)
    assert not other.observed["posts"].equals(generated.observed["posts"])
    with pytest.raises(ValueError):
        hc.generate(-1)


def test_tables_and_columns_are_the_stated_ones(world):
    assert datasets.GENERATORS["harmful_content"] == (hc.generate, hc.DEFAULT_SEED)
    assert sorted(world.observed) == ["images", "labels", "posts"]
    assert sorted(world.hidden) == ["truth"]
    described = {}
    for key in hc.COLUMNS:
        table, column = key.split(".")
        described.setdefault(table, []).append(column)
    described["images"] = ["post_id"] + [f"e{j}" for j in range(hc.EMB_DIM)]
    for table, frame in {**world.observed, **world.hidden}.items():
        assert list(frame.columns) == described[table], table
    for table, frame in world.observed.items():  # no hidden column leaks into what a team sees
        assert not HIDDEN_COLUMNS & set(frame.columns), table
    assert set(hc.WHY) == set(K)  # one reason per knob


def test_ids_days_images_and_labels_join(world):
    posts, images = world.observed["posts"], world.observed["images"]
    n = K["n_posts"]
    for table in ("posts", "labels", "truth"):
        assert np.array_equal({**world.observed, **world.hidden}[table]["post_id"], np.arange(n)), table
    assert posts["day"].between(0, K["days"] - 1).all() and posts["day"].is_monotonic_increasing
    # an image row exactly for the posts that have one
    assert np.array_equal(images["post_id"], posts["post_id"][posts["has_image"]])
    assert abs(posts["has_image"].mean() - (1 - K["image_missing"])) < 0.01
    assert images.drop(columns="post_id").round(3).equals(images.drop(columns="post_id"))
    for col in ("account_age_days", "past_violations", "views_1h", "reports_1h"):
        assert pd.api.types.is_integer_dtype(posts[col]) and (posts[col] >= 0).all(), col


def test_the_vocabulary_is_readable_unique_and_what_posts_use(world):
    spellings = [w for v in hc.NEW_SPELLINGS.values() for w in v]
    every = list(hc.VOCABULARY) + spellings + list(hc.SCAM_WORDS)
    assert len(set(every)) == len(every)
    assert all(re.fullmatch(r"[a-z0-9_]+", w) for w in every)
    assert len(hc.VOCABULARY) == 5 * 16 + 30 + 12 + K["n_neutral"]
    assert hc.HARM_WORDS["violence"][0] == "kill" and hc.OBFUSCATED["violence"][0] == "k1ll"
    used = words_of(world.observed["posts"]["text"])
    assert used <= set(hc.VOCABULARY) and not used & (set(spellings) | set(hc.SCAM_WORDS))
    assert len(used) > 0.95 * len(hc.VOCABULARY)


# --------------------------------------------------------------------------- the story's shares


def test_prevalences_are_those_the_chapter_needs(world):
    y = world.hidden["truth"][LABELS]
    assert y.mean().between(0.004, 0.03).all(), y.mean().to_dict()
    assert 0.05 <= y.any(axis=1).mean() <= 0.10
    assert (y.sum(axis=1) == 2).sum() > 50   # threats and porn spam carry two labels


def test_bad_actors_obfuscate_more(world):
    posts, truth = world.observed["posts"], world.hidden["truth"]
    canon = {w for v in hc.HARM_WORDS.values() for w in v}
    twins = {w for v in hc.OBFUSCATED.values() for w in v}
    bags = posts["text"].str.split()
    n_canon = bags.map(lambda ws: sum(w in canon for w in ws)).to_numpy()
    n_twin = bags.map(lambda ws: sum(w in twins for w in ws)).to_numpy()
    harmful = truth[LABELS].any(axis=1).to_numpy()
    normal = (truth["author_type"] == "normal").to_numpy() & harmful
    bad = ~(truth["author_type"] == "normal").to_numpy() & harmful
    share_normal = n_twin[normal].sum() / (n_twin[normal] + n_canon[normal]).sum()
    share_bad = n_twin[bad].sum() / (n_twin[bad] + n_canon[bad]).sum()
    assert share_normal < 0.15 and share_bad > 0.3, (share_normal, share_bad)


def test_raters_miss_positives_by_severity_and_never_invent_one(world):
    rated = world.observed["labels"][LABELS].to_numpy()
    truth = world.hidden["truth"]
    y = truth[LABELS].to_numpy()
    assert not (rated > y).any()
    severity = np.repeat(truth["severity"].to_numpy()[:, None], len(LABELS), axis=1)
    for v, miss in zip((1, 2, 3), K["rater_miss"]):
        positive = (y == 1) & (severity == v)
        assert abs((rated[positive] == 0).mean() - miss) < 0.05, v


def test_many_harmful_posts_have_no_report_yet_and_brigades_report_anything(world):
    posts, truth = world.observed["posts"], world.hidden["truth"]
    harmful = truth[LABELS].any(axis=1).to_numpy()
    assert 0.6 < (posts["reports_1h"].to_numpy()[harmful] == 0).mean() < 0.85
    brigade = (truth["audience"] == "brigade").to_numpy()
    assert posts["reports_1h"][brigade & ~harmful].mean() > 5 * posts["reports_1h"][~brigade & harmful].mean()


def test_a_hateful_meme_is_a_caption_and_template_match(world):
    truth, posts = world.hidden["truth"], world.observed["posts"]
    memes = truth["scenario"].str.startswith("meme").to_numpy()
    hateful = truth["scenario"].str.startswith("meme_hate").to_numpy()
    assert np.array_equal(truth["hate"].to_numpy()[memes], hateful[memes].astype(int))
    # a hateful meme's text holds no more hate words than background use: the harm is the pairing
    hate_words = set(hc.HARM_WORDS["hate"]) | set(hc.OBFUSCATED["hate"])
    n_hate_words = posts["text"].map(lambda t: len(set(t.split()) & hate_words)).to_numpy()
    assert n_hate_words[hateful].mean() < 0.2 * n_hate_words[(truth["scenario"] == "hate").to_numpy()].mean()


# --------------------------------------------------------------------------- the oracle


def test_the_posterior_is_a_calibrated_probability(world, oracle):
    assert list(oracle.columns) == ["post_id", *LABELS, "any_harm"]
    assert np.array_equal(oracle["post_id"], world.observed["posts"]["post_id"])
    p = oracle[LABELS].to_numpy()
    assert p.min() >= 0 and p.max() <= 1
    assert (oracle["any_harm"].to_numpy() >= p.max(axis=1) - 1e-9).all()
    assert (oracle["any_harm"].to_numpy() <= p.sum(axis=1) + 1e-9).all()
    y = world.hidden["truth"][LABELS].to_numpy()
    sd = np.sqrt((p * (1 - p)).sum(axis=0))
    assert (np.abs(y.sum(axis=0) - p.sum(axis=0)) < 4 * sd).all()
    # calibrated in bins of P(any harm), not only on average
    any_y = y.any(axis=1)
    bins = np.digitize(oracle["any_harm"], [0.01, 0.1, 0.5, 0.9])
    for b in np.unique(bins):
        q = oracle["any_harm"].to_numpy()[bins == b]
        assert abs(any_y[bins == b].sum() - q.sum()) < 4 * np.sqrt((q * (1 - q)).sum()) + 3, b


def features(world):
    posts = world.observed["posts"]
    index = {w: i for i, w in enumerate(hc.VOCABULARY)}
    text = np.zeros((len(posts), len(index)))
    for i, t in enumerate(posts["text"]):
        text[i, [index[w] for w in t.split()]] = 1
    image = world.observed["images"].set_index("post_id").reindex(posts["post_id"]).to_numpy()
    age, viol = posts["account_age_days"].to_numpy(), posts["past_violations"].to_numpy()
    views, reports = posts["views_1h"].to_numpy(), posts["reports_1h"].to_numpy()
    other = np.column_stack([posts["has_image"], np.log1p(age), age / 1000, np.log1p(viol), viol,
                             np.log1p(views), np.log1p(reports), reports, reports / (views + 1)])
    return np.hstack([text, np.nan_to_num(image), other])


def test_the_oracle_beats_a_model_of_the_same_observables(world, oracle):
    day = world.observed["posts"]["day"].to_numpy()
    train, test = day < 40, day >= 50
    x = StandardScaler().fit(features(world)[train]).transform(features(world))
    y = world.hidden["truth"][LABELS].to_numpy()
    model_ap, oracle_ap = [], []
    for k, label in enumerate(LABELS):
        lr = LogisticRegression(C=0.1, max_iter=500).fit(x[train], y[train, k])
        model_ap.append(average_precision_score(y[test, k], lr.decision_function(x[test])))
        oracle_ap.append(average_precision_score(y[test, k], oracle[label].to_numpy()[test]))
    assert np.mean(oracle_ap) > np.mean(model_ap) + 0.05, (oracle_ap, model_ap)


def test_hand_made_posts_get_sensible_probabilities(world):
    posts = pd.DataFrame([
        post("kill shoot k1ll st4b attack beat bomb", age=1, violations=3, reports=2),
        post("coffee weekend morning sunny friends", post_id=1, age=2_000),
        post("sunny friends coffee weekend morning", post_id=2, age=2_000),
    ])
    p = hc.posterior(world, posts, NO_IMAGES)
    assert p.loc[0, "violence"] > 0.5
    assert (p.loc[1, [*LABELS, "any_harm"]] < 0.02).all()
    assert_frame_equal(p.iloc[[1]].reset_index(drop=True).drop(columns="post_id"),
                       p.iloc[[2]].reset_index(drop=True).drop(columns="post_id"))  # a bag of words


def test_the_image_counts(world, oracle):
    posts, images, truth = world.observed["posts"], world.observed["images"], world.hidden["truth"]
    ids = truth.index[(truth["scenario"] == "nudity") & posts["has_image"]][:20].to_numpy()
    blind = posts.loc[ids].assign(has_image=False)
    without = hc.posterior(world, blind, images[~images["post_id"].isin(ids)])
    with_image = oracle.loc[ids]
    assert_frame_equal(hc.posterior(world, posts.loc[ids]).reset_index(drop=True), with_image.reset_index(drop=True))
    assert (np.abs(without["nudity"].to_numpy() - with_image["nudity"].to_numpy()) > 1e-3).all()
    assert with_image["nudity"].mean() > without["nudity"].mean()


@pytest.mark.parametrize("change, message", [
    (lambda p, i: (p.drop(columns="reports_1h"), i), "lacks the columns"),
    (lambda p, i: (p.assign(text=p["text"] + " footy"), i), "unknown word 'footy'"),
    (lambda p, i: (p.assign(views_1h=-1), i), "whole numbers"),
    (lambda p, i: (p, i.iloc[1:]), "no row in images"),
    (lambda p, i: (p.assign(has_image=False), i), "a row in images"),
    (lambda p, i: (p, i.drop(columns="e3")), "lacks the columns"),
])
def test_bad_posterior_input_is_refused(world, change, message):
    posts = world.observed["posts"].iloc[:50]
    images = world.observed["images"].query("post_id < 50")
    bad_posts, bad_images = change(posts, images)
    with pytest.raises(ValueError, match=message):
        hc.posterior(world, bad_posts, bad_images)


def test_unknown_words_can_be_left_out(world):
    posts = world.observed["posts"].iloc[:50]
    images = world.observed["images"].query("post_id < 50")
    plain = hc.posterior(world, posts, images)
    assert_frame_equal(hc.posterior(world, posts.assign(text=posts["text"] + " footy"), images,
                                    ignore_unknown=True), plain)


# --------------------------------------------------------------------------- helpers


def test_review_is_the_truth(world, later):
    ids = np.array([5, 3, 29_999, 0])
    reviewed = hc.review(world, ids)
    expected = world.hidden["truth"].set_index("post_id").loc[ids, LABELS].reset_index()
    assert_frame_equal(reviewed, expected)
    new_ids = later["posts"]["post_id"].to_numpy()[:10]
    assert_frame_equal(hc.review(world, new_ids, later["truth"]), later["truth"][["post_id", *LABELS]].iloc[:10])
    with pytest.raises(ValueError, match="unknown post ids"):
        hc.review(world, new_ids)
    with pytest.raises(ValueError, match="unknown post ids"):
        hc.review(world, [-1])


def test_later_reactions_grow_consistently_with_the_first_hour(world):
    posts, truth = world.observed["posts"], world.hidden["truth"]
    first = hc.later_reactions(world, posts, truth, 1)
    assert np.array_equal(first["views"], posts["views_1h"]) and np.array_equal(first["reports"], posts["reports_1h"])
    previous = first
    for hours in (2, 6, 24):
        now = hc.later_reactions(world, posts, truth, hours)
        assert (now["views"] >= previous["views"]).all() and (now["reports"] >= previous["reports"]).all()
        previous = now
    # each later hour brings later_views_share of the first hour's mean views
    mean_first = np.array(K["views_mean"]) @ np.array(K["audience_prior"])
    assert abs((previous["views"] - first["views"]).mean() / 23 - K["later_views_share"] * mean_first) < 1.0
    harmful = truth[LABELS].any(axis=1).to_numpy()
    more = (previous["reports"] - first["reports"]).to_numpy()
    assert more[harmful].mean() > 5 * more[~harmful].mean()
    # the same post gets the same answer whatever else is asked
    part = hc.later_reactions(world, posts.iloc[[7, 3]], truth, 24)
    assert_frame_equal(part, previous.iloc[[7, 3]].reset_index(drop=True))
    with pytest.raises(ValueError, match="hours"):
        hc.later_reactions(world, posts, truth, 0)


def test_appeals_follow_the_knobs_and_overturn_only_benign_removals(world):
    ids = np.arange(K["n_posts"])
    a = hc.appeals(world, ids)
    benign = ~world.hidden["truth"][LABELS].any(axis=1).to_numpy()
    assert abs(a["appealed"][benign].mean() - K["appeal_benign"]) < 0.02
    assert abs(a["appealed"][~benign].mean() - K["appeal_harmful"]) < 0.03
    assert np.array_equal(a["overturned"], a["appealed"] & benign)
    assert_frame_equal(hc.appeals(world, ids[[9, 2]]), a.iloc[[9, 2]].reset_index(drop=True))
    with pytest.raises(ValueError, match="unknown post ids"):
        hc.appeals(world, [K["n_posts"]])


# --------------------------------------------------------------------------- new posts and drift


def test_new_posts_continue_the_world_and_the_oracle_reads_them(world, later):
    n = K["n_posts"]
    assert sorted(later) == ["images", "labels", "posts", "truth"]
    for name, frame in later.items():
        stored = {**world.observed, **world.hidden}[name]
        assert list(frame.columns) == list(stored.columns), name
    assert np.array_equal(later["posts"]["post_id"], np.arange(n, n + 4_000))
    assert later["posts"]["day"].between(60, 69).all()
    assert words_of(later["posts"]["text"]) <= set(hc.VOCABULARY)
    p = hc.posterior(world, later["posts"], later["images"])
    y = later["truth"][LABELS].to_numpy()
    assert abs(y.sum() - p[LABELS].to_numpy().sum()) < 4 * np.sqrt(p[LABELS].to_numpy().sum()) + 5
    assert_frame_equal(hc.new_posts(world, 4_000, first_day=60, n_days=10)["posts"], later["posts"])


def test_obfuscation_drift_brings_new_spellings_only_from_bad_actors(world, later):
    spellings = {w for v in hc.NEW_SPELLINGS.values() for w in v}
    none = hc.new_posts(world, 4_000, first_day=60, n_days=10, drift="obfuscation", share=0.0)
    assert not words_of(none["posts"]["text"]) & spellings
    assert not words_of(world.observed["posts"]["text"]) & spellings
    drifted = hc.new_posts(world, 4_000, first_day=60, n_days=10, drift="obfuscation", share=0.8)
    assert_frame_equal(drifted["truth"], later["truth"])  # the same authors and scenarios
    has_new = drifted["posts"]["text"].map(lambda t: bool(set(t.split()) & spellings)).to_numpy()
    normal = (drifted["truth"]["author_type"] == "normal").to_numpy()
    harmful = drifted["truth"][LABELS].any(axis=1).to_numpy()
    assert not has_new[normal].any()
    assert has_new[~normal & harmful].mean() > 0.25
    with pytest.raises(ValueError, match="unknown word"):
        hc.posterior(world, drifted["posts"], drifted["images"])
    hc.posterior(world, drifted["posts"], drifted["images"], ignore_unknown=True)


@pytest.mark.parametrize("share", [0.02, 0.1])
def test_new_harm_drift_brings_scams_at_the_share_asked(world, share):
    t = hc.new_posts(world, 6_000, first_day=60, n_days=10, drift="new_harm", share=share)
    truth = t["truth"]
    assert list(truth.columns)[-1] == "scam"
    scam = truth["scam"].to_numpy().astype(bool)
    assert abs(scam.mean() - share) < 4 * np.sqrt(share * (1 - share) / len(truth))
    assert (truth["author_type"][scam] == "scammer").all() and not truth[LABELS][scam].any().any()
    words = t["posts"]["text"].str.split()
    with_scam_words = words.map(lambda ws: bool(set(ws) & set(hc.SCAM_WORDS))).to_numpy()
    assert with_scam_words[scam].mean() > 0.6 and not with_scam_words[~scam].any()
    assert hc.review(world, truth["post_id"][scam][:3], truth)["scam"].eq(1).all()
    assert hc.appeals(world, truth["post_id"][scam], truth)["overturned"].sum() == 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(drift="aliens", share=0.1), "unknown drift"),
    (dict(drift="obfuscation", share=1.5), "share"),
    (dict(drift="new_harm", share=-0.1), "share"),
    (dict(share=0.2), "without a drift"),
    (dict(n_posts=0), "n_posts"),
    (dict(n_days=0), "n_days"),
    (dict(first_day=59), "first_day"),
])
def test_bad_new_posts_arguments_are_refused(world, kwargs, message):
    args = dict(n_posts=100, first_day=60, n_days=5) | kwargs
    with pytest.raises(ValueError, match=message):
        hc.new_posts(world, **args)
