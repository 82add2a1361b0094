"""The ad click prediction world (Chapter 11): schema, realism, reproducibility, truth, drift, delays, stream."""

import functools

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mlsd import datasets
from mlsd.datasets import ad_click_prediction as ad

K = ad.KNOBS
END = K["n_days"]
CUTOFF = ad.TEST_CUTOFF_DAY
PRIOR = {"day": END + 7, "kind": "prior", "shift": -0.5}
TRAVEL = {"day": END + 3, "kind": "category", "category": "travel", "shift": 1.0}


@functools.cache
def world(seed: int = 0):
    return ad.generate(seed)


def tables(seed: int = 0):
    return world(seed).observed


@functools.cache
def joined(seed: int = 0) -> pd.DataFrame:
    """The impressions with their campaign, advertiser, category and true p."""
    t = tables(seed)
    log = t["impressions"]
    campaign = t["creatives"]["campaign_id"].to_numpy()[log["creative_id"]]
    advertiser = t["campaigns"]["advertiser_id"].to_numpy()[campaign]
    return log.assign(
        campaign_id=campaign,
        advertiser_id=advertiser,
        category=t["advertisers"]["category"].to_numpy()[advertiser],
        p=ad.true_probability(world(seed), log),
    )


@functools.cache
def plain():
    return ad.stream(0, END, 14)


@functools.cache
def drifted():
    return ad.stream(0, END, 14, [PRIOR, TRAVEL])


# --------------------------------------------------------------------------- schema and ranges


def test_ids_are_contiguous_and_every_key_joins():
    t = tables()
    for table, key in (("users", "user_id"), ("advertisers", "advertiser_id"), ("campaigns", "campaign_id"), ("creatives", "creative_id")):
        assert (t[table][key].to_numpy() == np.arange(len(t[table]))).all(), f"{table}.{key}"
    for table, key, parent in [
        ("campaigns", "advertiser_id", "advertisers"),
        ("creatives", "campaign_id", "campaigns"),
        ("impressions", "user_id", "users"),
        ("impressions", "creative_id", "creatives"),
    ]:
        assert t[table][key].isin(t[parent][key]).all(), f"{table}.{key} does not join to {parent}"
    assert len(t["users"]) == K["n_users"] and len(t["advertisers"]) >= K["n_advertisers"]
    assert (world().hidden["creative_truth"]["creative_id"] == t["creatives"]["creative_id"]).all()
    assert t["creatives"]["campaign_id"].is_monotonic_increasing and t["campaigns"]["start_day"].is_monotonic_increasing


def test_sizes_are_those_of_a_small_ad_network():
    t = tables()
    assert 300_000 < len(t["impressions"]) < 600_000
    assert 100 <= len(t["campaigns"]) <= 300 and 400 <= len(t["creatives"]) <= 1200
    per_campaign = t["creatives"].groupby("campaign_id").size()
    assert per_campaign.min() >= 1 and 3 <= per_campaign.mean() <= 5


def test_categories_and_timestamps_are_in_range():
    t = tables()
    log = t["impressions"]
    assert log["day"].between(0, END - 1).all() and log["second"].between(0, 86_399).all()
    assert log.sort_values(["day", "second"], kind="stable").index.equals(log.index), "log in time order"
    assert set(log["device"]) == set(ad.DEVICES) and set(log["placement"]) == set(ad.PLACEMENTS)
    assert not ((log["device"] == "mobile") & (log["placement"] == "sidebar")).any(), "no sidebar on phones"
    assert set(t["users"]["age_band"]) == set(ad.AGE_BANDS) and set(t["users"]["country"]) == set(ad.COUNTRIES)
    assert set(t["advertisers"]["category"]) <= set(ad.CATEGORIES) and set(t["creatives"]["format"]) == set(ad.FORMATS)
    assert set(t["campaigns"]["targeting"]) == {"broad", "interest"}
    interests = t["users"]["interests"].str.split(";")
    assert interests.map(len).between(1, 3).all()
    assert all(list(x) == sorted(set(x), key=ad.INTERESTS.index) for x in interests), "distinct, in the order of INTERESTS"
    assert set(t["users"]["interests"].str.get_dummies(sep=";").columns) == set(ad.INTERESTS)


def test_ads_are_shown_only_while_their_campaign_runs_and_targeting_holds():
    t, log = tables(), joined()
    campaigns = t["campaigns"].set_index("campaign_id")
    start, end = campaigns["start_day"].to_numpy()[log["campaign_id"]], campaigns["end_day"].to_numpy()[log["campaign_id"]]
    assert ((log["day"] >= start) & (log["day"] <= end)).all()
    joins = t["campaigns"].merge(t["advertisers"], on="advertiser_id")
    assert (joins.loc[joins["join_day"] >= 0, "start_day"] >= joins.loc[joins["join_day"] >= 0, "join_day"]).all()
    # an interest-targeted campaign reaches only users with an interest about its category
    targeted = (campaigns["targeting"].to_numpy()[log["campaign_id"]] == "interest")
    interests = t["users"]["interests"].to_numpy()[log.loc[targeted, "user_id"]]
    categories = log.loc[targeted, "category"].to_numpy()
    assert all(any(c in ad.MATCHES[i] for i in text.split(";")) for text, c in zip(interests[:20_000], categories[:20_000]))
    assert targeted.mean() > 0.1


# --------------------------------------------------------------------------- labels and delays


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_base_ctr_is_between_one_and_three_percent(seed):
    ctr = tables(seed)["impressions"]["clicked"].mean()
    assert 0.01 < ctr < 0.03


def test_clicks_have_positive_realistic_delays_and_only_clicks_have_one():
    log = tables()["impressions"]
    assert set(log["clicked"].unique()) == {0, 1}
    assert (log["click_delay_seconds"].notna() == (log["clicked"] == 1)).all()
    delay = log["click_delay_seconds"].dropna()
    assert (delay >= 1).all() and (delay == delay.round()).all()
    assert delay.max() <= K["click_delay_max_days"] * 86_400
    assert 100 < delay.median() < 400, "median: a few minutes"
    assert 0.05 < (delay > 3600).mean() < 0.2, "a long tail to hours"
    assert 0.001 < (delay > 86_400).mean() < 0.02, "a small share beyond a day"


def test_labels_at_counts_only_clicks_that_have_arrived():
    log = tables()["impressions"]
    known = ad.labels_at(log, 14, 3600)
    shown = known["day"] * 86_400 + known["second"]
    assert (shown < 14 * 86_400 + 3600).all() and len(known) == (log["day"] * 86_400 + log["second"] < 14 * 86_400 + 3600).sum()
    arrived = shown + known["click_delay_seconds"] <= 14 * 86_400 + 3600
    assert (known["clicked_by_then"] == (known["clicked"].astype(bool) & arrived)).all()
    assert (known["clicked_by_then"] <= known["clicked"]).all()
    recent = known["day"] == 14  # clicks on the last hour's impressions are mostly still missing
    assert known.loc[recent, "clicked_by_then"].sum() < known.loc[recent, "clicked"].sum()
    assert known.loc[known["day"] < 10, "clicked_by_then"].sum() == known.loc[known["day"] < 10, "clicked"].sum()
    with pytest.raises(ValueError, match="second must be in 0..86399"):
        ad.labels_at(log, 3, 86_400)
    with pytest.raises(ValueError, match="columns day, second, clicked"):
        ad.labels_at(log.drop(columns="click_delay_seconds"), 3)


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_tables_and_another_seed_differs():
    again = ad.generate(0)
    for kind in ("observed", "hidden"):
        for name, frame in getattr(world(0), kind).items():
            assert_frame_equal(getattr(again, kind)[name], frame)
    assert again.summary == world(0).summary
    for name in ("impressions", "users", "campaigns"):
        assert not tables(1)[name].equals(tables(0)[name])
    for name in ("effects", "creative_truth", "salts"):
        assert not world(1).hidden[name].equals(world(0).hidden[name])


# --------------------------------------------------------------------------- the hidden truth


def test_hash_noise_is_standard_normal_and_deterministic():
    a, b = np.repeat(np.arange(400), 500), np.tile(np.arange(500), 400)
    z = ad._hash_normal(12345, a, b)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert (ad._hash_normal(12345, a, b) == z).all()
    assert abs(np.corrcoef(z, ad._hash_normal(54321, a, b))[0, 1]) < 0.01


def test_clicks_match_the_true_probability():
    log = joined()
    p, clicked = log["p"].to_numpy(), log["clicked"].to_numpy()
    groups = {"all": np.ones(len(log), dtype=bool)}
    groups |= {f"placement {x}": (log["placement"] == x).to_numpy() for x in ad.PLACEMENTS}
    groups |= {f"week {w}": (log["day"] // 7 == w).to_numpy() for w in range(4)}
    decile = np.searchsorted(np.quantile(p, np.linspace(0.1, 0.9, 9)), p)
    groups |= {f"p decile {d}": decile == d for d in range(10)}
    for name, mask in groups.items():
        se = np.sqrt(np.sum(p[mask] * (1 - p[mask]))) / mask.sum()
        assert abs(clicked[mask].mean() - p[mask].mean()) < 4 * se, name


def test_the_true_probability_from_the_stored_files_equals_the_generated_one():
    stored = datasets.load("ad_click_prediction")
    log = stored.observed["impressions"]
    np.testing.assert_array_equal(ad.true_probability(stored, log), joined()["p"].to_numpy())


def test_the_terms_add_up_to_the_log_odds_and_every_term_but_the_noise_is_observable():
    log = tables()["impressions"].iloc[::50]
    terms = ad.log_odds_terms(world(), log)
    assert list(terms.columns) == list(ad.TERMS)
    p = ad.true_probability(world(), log)
    np.testing.assert_allclose(K["base_logit"] + terms.sum(axis=1), np.log(p / (1 - p)), atol=1e-9)
    assert abs(terms["noise"].std() - K["impression_noise_sd"]) < 0.02
    # the same observed columns give the same terms, apart from the noise
    moved = log.assign(second=(log["second"] // 3600) * 3600 + (log["second"] + 1) % 3600)
    again = ad.log_odds_terms(world(), moved)
    assert_frame_equal(again.drop(columns="noise"), terms.drop(columns="noise"))
    assert not np.allclose(again["noise"], terms["noise"])
    # the interest x category cross: users interested in the category click more
    j = joined()
    interested = np.array([any(c in ad.MATCHES[i] for i in text.split(";")) for text, c in
                           zip(tables()["users"]["interests"].to_numpy()[j["user_id"]], j["category"])])
    assert j.loc[interested, "clicked"].mean() > 1.5 * j.loc[~interested, "clicked"].mean()


def test_the_posterior_integrates_out_the_noise_and_depends_only_on_observed_columns():
    log = tables()["impressions"].iloc[::997]
    terms = ad.log_odds_terms(world(), log)
    logit = K["base_logit"] + terms.drop(columns="noise").sum(axis=1).to_numpy()
    z = np.random.default_rng(0).standard_normal(200_000)
    draws = 1 / (1 + np.exp(-(logit[:, None] + K["impression_noise_sd"] * z[None, :])))  # Monte Carlo
    posterior = ad.posterior_probability(world(), log)
    se = draws.std(axis=1) / np.sqrt(len(z))
    assert (np.abs(posterior - draws.mean(axis=1)) < 4 * se + 1e-12).all()
    np.testing.assert_allclose(ad.posterior_probability(world(), log, n_nodes=20), posterior, rtol=1e-10)
    # Jensen: averaging over the noise pulls a rare click's probability up, above sigmoid(logit)
    assert (posterior > 1 / (1 + np.exp(-logit))).all()
    moved = log.assign(second=(log["second"] // 3600) * 3600 + (log["second"] + 1) % 3600)
    np.testing.assert_array_equal(ad.posterior_probability(world(), moved), posterior)
    with pytest.raises(ValueError, match="n_nodes must be >= 2"):
        ad.posterior_probability(world(), log, n_nodes=1)


def test_country_by_category_is_a_cross_of_the_truth():
    effects = world().hidden["effects"]
    cells = effects[effects["term"] == "country_category"]
    assert len(cells) == len(ad.COUNTRIES) * len(ad.CATEGORIES)
    assert abs(cells["logit"].std() - K["country_category_sd"]) < 0.1


def test_true_probability_answers_counterfactuals_and_checks_its_arguments():
    log = tables()["impressions"].head(100)
    sidebar = ad.true_probability(world(), log.assign(device="desktop", placement="sidebar"))
    top = ad.true_probability(world(), log.assign(device="desktop", placement="feed_top"))
    np.testing.assert_allclose(np.log(top / (1 - top)) - np.log(sidebar / (1 - sidebar)), 1.3, atol=1e-9)
    n_creatives = len(tables()["creatives"])
    with pytest.raises(ValueError, match=f"impressions.creative_id must be in 0..{n_creatives - 1}, got {n_creatives}"):
        ad.true_probability(world(), log.assign(creative_id=n_creatives))
    with pytest.raises(ValueError, match="impressions.device must be one of"):
        ad.true_probability(world(), log.assign(device="watch"))
    with pytest.raises(ValueError, match="impressions.second must be integers"):
        ad.true_probability(world(), log.assign(second=0.5))
    with pytest.raises(ValueError, match="missing: \\['placement'\\]"):
        ad.true_probability(world(), log.drop(columns="placement"))
    with pytest.raises(ValueError, match="missing: \\['effects', 'creative_truth', 'salts'\\]"):
        ad.true_probability(world().observed, log)
    with pytest.raises(TypeError, match="world must be a World or a mapping"):
        ad.true_probability([1, 2], log)
    with pytest.raises(TypeError, match="impressions must be a DataFrame"):
        ad.true_probability(world(), log.to_numpy())


# --------------------------------------------------------------------------- drift


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_advertiser_mix_drifts_between_the_first_and_the_last_week(seed):
    first, last = ad.advertiser_shares(world(seed), range(7)), ad.advertiser_shares(world(seed), range(END - 7, END))
    assert abs(first.sum() - 1) < 1e-12 and abs(last.sum() - 1) < 1e-12
    assert 0.5 * np.abs(first - last).sum() > 0.15
    assert (tables(seed)["advertisers"]["join_day"] >= 0).any(), "advertisers join during the log"


def test_the_ctr_trend_is_measurable_in_the_last_week():
    log = joined()
    last = log[log["day"] >= END - 7]
    p = last["p"].to_numpy()
    logit = np.log(p / (1 - p))
    without_trend = 1 / (1 + np.exp(-(logit - K["ctr_trend_per_week"] * last["day"].to_numpy() / 7)))
    se = np.sqrt(np.sum(p * (1 - p))) / len(p)
    clicked = last["clicked"].mean()
    assert abs(clicked - p.mean()) < 4 * se
    assert clicked < without_trend.mean() - 3 * se, "the clicks follow the trend, not a world without it"


# --------------------------------------------------------------------------- the datasheet and the headroom


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_oracle_leaves_room_to_learn(seed):
    room = ad.room_to_learn(world(seed))
    assert room["n_train"] > 2 * room["n_test"] > 0
    assert 0.8 < room["oracle_nce"] < 0.97
    assert room["oracle_log_loss"] < room["posterior_log_loss"] < room["constant_log_loss"] <= room["base_log_loss"] + 1e-12
    assert 0.8 < room["achievable"] / room["room"] < 0.97, "the noise puts a tenth or so of the room out of reach"
    with pytest.raises(ValueError, match="cutoff must leave days on both sides"):
        ad.room_to_learn(world(seed), cutoff=0)


def test_the_datasheet_states_the_measured_numbers_and_the_knobs():
    room, sheet, log = ad.room_to_learn(world()), world().datasheet(), tables()["impressions"]
    for number in (room["base_log_loss"], room["oracle_log_loss"], room["room"], room["posterior_log_loss"], room["achievable"]):
        assert f"{number:.5f}" in sheet
    assert f"{room['oracle_nce']:.3f}" in sheet
    assert f"The click-through rate is {log['clicked'].mean():.2%} overall" in sheet
    assert f"The median click arrives {log['click_delay_seconds'].median():.0f} s" in sheet
    for name, value in K.items():
        assert f"| `{name}` | {value} |" in sheet and f"- `{name}` = {value}: " in sheet
    assert set(ad.WHY) == set(K)
    for term in ad.TERMS:
        assert f"| {term} | " in sheet


# --------------------------------------------------------------------------- the stream


def test_a_stream_continues_the_world_with_the_same_truth():
    s, t = plain(), tables()
    log = s.impressions
    assert sorted(log["day"].unique()) == list(range(END, END + 14))
    assert list(log.columns) == list(t["impressions"].columns)
    assert log.sort_values(["day", "second"], kind="stable").index.equals(log.index)
    # the stored ads are a prefix of the stream's; the new ones continue the ids
    for name in ("advertisers", "campaigns", "creatives", "creative_truth"):
        stored = {**world().observed, **world().hidden}[name]
        assert_frame_equal(s.tables[name].iloc[: len(stored)], stored)
        new = getattr(s, name)
        assert_frame_equal(s.tables[name].iloc[len(stored):].reset_index(drop=True), new)
    assert len(s.campaigns) > 0 and (s.campaigns["start_day"] >= END).all()
    assert log["creative_id"].max() >= len(t["creatives"]), "new creatives are shown"
    # the same users, truth and trend: clicks drawn from the stream's p
    p = s.true_probability(log)
    np.testing.assert_array_equal(p, ad.true_probability(s.tables, log))
    se = np.sqrt(np.sum(p * (1 - p))) / len(p)
    assert abs(log["clicked"].mean() - p.mean()) < 4 * se
    terms = ad.log_odds_terms(s.tables, log)
    np.testing.assert_allclose(terms["trend"], K["ctr_trend_per_week"] * log["day"] / 7)


def test_a_stream_is_reproducible_and_a_day_does_not_depend_on_where_the_stream_starts():
    again = ad.stream(0, END, 14)
    assert_frame_equal(again.impressions, plain().impressions)
    later = ad.stream(0, END + 7, 7)
    assert_frame_equal(later.impressions, plain().impressions[plain().impressions["day"] >= END + 7].reset_index(drop=True))
    assert not ad.stream(1, END, 2).impressions.equals(plain().impressions[plain().impressions["day"] < END + 2])


def test_drifts_change_only_the_clicks_whose_p_they_change():
    base, s = plain().impressions, drifted().impressions
    same = ["day", "second", "user_id", "creative_id", "device", "placement"]
    assert_frame_equal(s[same], base[same])
    p_base, p = plain().true_probability(base), drifted().true_probability(s)
    t = drifted().tables
    category = t["advertisers"]["category"].to_numpy()[t["campaigns"]["advertiser_id"].to_numpy()[t["creatives"]["campaign_id"].to_numpy()[s["creative_id"]]]]
    travel = (category == "travel") & (s["day"] >= TRAVEL["day"]).to_numpy()
    late = (s["day"] >= PRIOR["day"]).to_numpy()
    untouched = ~travel & ~late
    np.testing.assert_array_equal(p[untouched], p_base[untouched])
    assert (p[travel & ~late] > p_base[travel & ~late]).all() and (p[late & ~travel] < p_base[late & ~travel]).all()
    # common random numbers: a higher p can only add clicks, a lower one only remove them
    assert (s["clicked"][untouched] == base["clicked"][untouched]).all()
    assert (s["clicked"][travel & ~late] >= base["clicked"][travel & ~late]).all()
    assert (s["clicked"][late & ~travel] <= base["clicked"][late & ~travel]).all()
    assert (drifted().logit_shift.loc[: PRIOR["day"] - 1] == 0).all() and (drifted().logit_shift.loc[PRIOR["day"]:] == -0.5).all()
    assert (drifted().category_shift.loc[TRAVEL["day"]:, "travel"] == 1.0).all()


def test_a_stream_leaves_the_stored_world_unchanged():
    drifted()
    after = ad.generate(0)
    for kind in ("observed", "hidden"):
        for name, frame in getattr(world(0), kind).items():
            assert_frame_equal(getattr(after, kind)[name], frame)


@pytest.mark.parametrize(
    "args, drifts, error, message",
    [
        ((0, 20, 5), None, ValueError, "first_day must be >= 28"),
        ((0, END, 0), None, ValueError, "n_days must be >= 1"),
        ((-1, END, 5), None, ValueError, "seed must be >= 0"),
        ((0, END, 2.5), None, TypeError, "n_days must be an integer"),
        ((0, END, 5), [{"day": 30, "kind": "earthquake"}], ValueError, "unknown drift kind 'earthquake'"),
        ((0, END, 5), [{**PRIOR, "day": 10}], ValueError, "drift day must be >= 28"),
        ((0, END, 5), [{**PRIOR, "day": END + 5}], ValueError, "drift day must be before the stream's end \\(33\\)"),
        ((0, END, 5), [{"day": 30, "kind": "prior"}], ValueError, "a prior drift needs a 'shift'"),
        ((0, END, 5), [{**PRIOR, "day": 30, "shift": float("nan")}], ValueError, "prior shift must be a finite number"),
        ((0, END, 5), [{**TRAVEL, "category": "toys"}], ValueError, "a category drift needs a category from"),
        ((0, END, 5), {"day": 30, "kind": "prior", "shift": 1.0}, ValueError, "drifts must be a list of dicts"),
        ((0, END, 5), ["prior"], ValueError, "each drift must be a dict"),
    ],
)
def test_bad_stream_arguments_are_named(args, drifts, error, message):
    with pytest.raises(error, match=message):
        ad.stream(*args, drifts)


def test_bad_seeds_are_named_and_stream_truth_stops_at_its_end():
    with pytest.raises(ValueError, match="seed must be >= 0"):
        ad.generate(-1)
    with pytest.raises(TypeError, match="seed must be an integer"):
        ad.generate("0")
    with pytest.raises(ValueError, match="impressions.day must be before the stream's end \\(42\\)"):
        plain().true_probability(plain().impressions.assign(day=END + 14))
