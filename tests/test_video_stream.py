"""The video recommendation world continued as a stream with drift: reproducible, consistent, stored world untouched."""

import functools

import numpy as np
import pytest
from pandas.testing import assert_frame_equal, assert_series_equal

from mlsd.datasets import video_recommendation as vr

K = vr.KNOBS
END = K["n_days"]  # the stored log's days are 0 .. END - 1
SHORTS = {"day": END + 5, "kind": "new_genre", "genre": "shorts", "uploads_per_day": 10, "fan_share": 0.2, "fan_taste": 3.0}
PRIOR = {"day": END + 10, "kind": "prior", "shift": -1.0}


@functools.cache
def stored():
    return vr.generate(0)  # cached before any stream is made (this module's first test uses it)


@functools.cache
def plain():
    return vr.stream(0, END, 14)


@functools.cache
def drifted():
    return vr.stream(0, END, 14, [SHORTS, PRIOR])


def test_a_stream_leaves_the_stored_world_unchanged():
    before = stored()
    drifted()
    after = vr.generate(0)
    for kind in ("observed", "hidden"):
        for name, frame in getattr(before, kind).items():
            assert_frame_equal(getattr(after, kind)[name], frame)


def test_same_arguments_give_the_same_stream():
    again = vr.stream(0, END, 14, [SHORTS, PRIOR])
    for name in ("impressions", "videos", "user_truth", "video_truth"):
        assert_frame_equal(getattr(again, name), getattr(drifted(), name))
    assert_series_equal(again.logit_shift, drifted().logit_shift)
    other = vr.stream(1, END, 3)
    assert not other.impressions.equals(plain().impressions[plain().impressions["day"] < END + 3])


def test_ids_continue_and_days_are_in_range():
    s = plain()
    log, videos = s.impressions, s.videos
    assert (videos["video_id"].to_numpy() == K["n_videos"] + np.arange(len(videos))).all()
    assert list(videos.columns) == list(stored().observed["videos"].columns)
    assert list(log.columns) == list(stored().observed["impressions"].columns)
    assert (s.video_truth["video_id"] == videos["video_id"]).all()
    assert videos["upload_day"].between(END, END + 13).all() and videos["upload_day"].is_monotonic_increasing
    assert 10 < len(videos) / 14 < 26  # the stored world's upload rate, about 18 a day
    assert sorted(log["day"].unique()) == list(range(END, END + 14))
    assert log["second"].between(0, 86_399).all()
    assert log.sort_values(["day", "second"], kind="stable").index.equals(log.index), "log in time order"
    assert log["user_id"].between(0, K["n_users"] - 1).all()
    assert log["video_id"].between(0, videos["video_id"].max()).all()
    upload = s.tables["videos"]["upload_day"].to_numpy()[log["video_id"]]
    assert (upload < log["day"]).all(), "a video is shown only after its upload"
    assert set(log["source"]) == set(vr.SOURCES)
    assert set(videos["genre"]) <= set(vr.GENRES)


def test_the_feed_rules_hold_across_the_stored_log():
    log = plain().impressions
    assert not log.duplicated(["user_id", "video_id", "day"]).any()
    old = stored().observed["impressions"]
    old_watches = set(map(tuple, old.loc[old["watched"] == 1, ["user_id", "video_id"]].to_numpy().tolist()))
    assert not any(pair in old_watches for pair in map(tuple, log[["user_id", "video_id"]].to_numpy().tolist()))


def test_a_gap_after_the_stored_log_is_simulated_but_not_logged():
    s = vr.stream(0, END + 4, 2)
    assert sorted(s.impressions["day"].unique()) == [END + 4, END + 5]
    assert s.videos["upload_day"].min() == END  # the gap's uploads are in the catalogue


def test_the_new_genre_appears_only_from_its_day_and_its_fans_watch_it():
    s, day = drifted(), SHORTS["day"]
    videos, log = s.videos, s.impressions
    shorts = videos["genre"] == "shorts"
    assert shorts.sum() > 50 and (videos.loc[shorts, "upload_day"] >= day).all()
    assert set(videos.loc[shorts, "creator_id"]) <= set(stored().observed["creators"]["creator_id"])
    # the other uploads are those of the stream without drift
    assert_frame_equal(videos.loc[~shorts, videos.columns[1:]].reset_index(drop=True), plain().videos[videos.columns[1:]])
    shown = s.tables["videos"]["genre"].to_numpy()[log["video_id"]] == "shorts"
    assert shown.sum() > 1000 and log.loc[shown, "day"].min() == day + 1
    fan = s.user_truth["fan_shorts"].to_numpy()[log["user_id"]] == 1
    assert 0.15 < s.user_truth["fan_shorts"].mean() < 0.25
    assert (s.user_truth.loc[s.user_truth["fan_shorts"] == 1, "taste_shorts"] == 3.0).all()
    fans, others = log.loc[shown & fan, "watched"].mean(), log.loc[shown & ~fan, "watched"].mean()
    assert fans > 3 * others, (fans, others)


def test_watches_are_drawn_from_the_true_p():
    for s in (plain(), drifted()):
        log = s.impressions
        p = s.true_relevance(log["user_id"].to_numpy(), log["video_id"].to_numpy(), log["day"].to_numpy())
        for part in (log["day"] < PRIOR["day"], log["day"] >= PRIOR["day"]):
            w, q = log.loc[part, "watched"].to_numpy(), p[part.to_numpy()]
            assert abs(w.mean() - q.mean()) < 4 * np.sqrt((q * (1 - q)).sum()) / len(q)


def test_the_truth_is_the_stored_one_plus_the_drifts():
    s = drifted()
    users, videos = np.arange(0, K["n_users"], 7)[:, None], np.arange(0, K["n_videos"], 11)[None, :]
    stored_p = vr.true_relevance(stored(), users, videos)
    before, after = s.true_relevance(users, videos, END), s.true_relevance(users, videos, PRIOR["day"])
    np.testing.assert_array_equal(before, stored_p)  # stored pairs: the same p as in the stored world
    assert (after < before).all()  # the prior shift lowers every p from its day on
    new = s.videos["video_id"].to_numpy()[None, :]
    np.testing.assert_array_equal(s.true_relevance(users, new, END), vr.true_relevance(s.tables, users, new))
    assert (s.logit_shift.loc[: PRIOR["day"] - 1] == 0).all() and (s.logit_shift.loc[PRIOR["day"]:] == -1.0).all()


@pytest.mark.parametrize(
    "args, drifts, message",
    [
        ((0, 20, 5), None, "first_day must be >= 28"),
        ((0, END, 0), None, "n_days must be >= 1"),
        ((0, END, 5), [{"day": 30, "kind": "earthquake"}], "unknown drift kind 'earthquake'"),
        ((0, END, 5), [{**SHORTS, "day": 10}], "drift day must be >= 28"),
        ((0, END, 5), [{**SHORTS, "day": END + 5}], "drift day must be before the stream's end \\(33\\)"),
        ((0, END, 5), [{"day": 30, "kind": "prior"}], "a prior drift needs a 'shift'"),
        ((0, END, 5), [{"day": 30, "kind": "prior", "shift": float("nan")}], "prior shift must be a finite number"),
        ((0, END, 5), [{"day": 30, "kind": "new_genre", "genre": "shorts"}], "missing: \\['uploads_per_day'"),
        ((0, END, 5), [{**SHORTS, "day": 30, "genre": "music"}], "genre must be new, got 'music'"),
        ((0, END, 5), [{**SHORTS, "day": 30, "genre": "Shorts!"}], "genre must be a lower-case identifier"),
        ((0, END, 5), [{**SHORTS, "day": 30}, {**SHORTS, "day": 31}], "genre must be new, got 'shorts'"),
        ((0, END, 5), [{**SHORTS, "day": 30, "uploads_per_day": 0}], "uploads_per_day must be > 0"),
        ((0, END, 5), [{**SHORTS, "day": 30, "fan_share": 1.5}], "fan_share must be in \\[0, 1\\]"),
        ((0, END, 5), [{**SHORTS, "day": 30, "fan_taste": "high"}], "fan_taste must be a finite number"),
        ((0, END, 5), {"day": 30, "kind": "prior", "shift": 1.0}, "drifts must be a list of dicts"),
    ],
)
def test_bad_arguments_are_named(args, drifts, message):
    with pytest.raises(ValueError, match=message):
        vr.stream(*args, drifts)


def test_bad_truth_queries_are_named():
    s = plain()
    with pytest.raises(ValueError, match="day must be ids in 0..41"):
        s.true_relevance([0], [0], END + 14)
    with pytest.raises(ValueError, match="video_ids must be ids in"):
        s.true_relevance([0], [K["n_videos"] + len(s.videos)], END)
