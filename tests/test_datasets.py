"""The data scaffolding: worlds, their files, the checksums, and loading."""

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from mlsd import datasets
from mlsd.datasets.world import World, checksums, read_checksums, write_world


def tiny_world(**overrides):
    fields = dict(
        name="tiny",
        seed=0,
        observed={"events": pd.DataFrame({"id": [1, 2], "score": [0.5, 0.25], "kind": ["a", "b"]})},
        hidden={"truth": pd.DataFrame({"id": [1, 2], "p": [0.1, 0.9]})},
        summary="A tiny world.",
        knobs={"n": 2},
        columns={"events.id": "the id"},
    )
    fields.update(overrides)
    return World(**fields)


def test_write_world_separates_observed_from_hidden(tmp_path):
    written = write_world(tiny_world(), tmp_path)
    names = sorted(p.relative_to(tmp_path).as_posix() for p in written)
    assert names == ["tiny/DATASHEET.md", "tiny/events.csv.gz", "tiny/hidden/truth.csv.gz"]
    sheet = (tmp_path / "tiny" / "DATASHEET.md").read_text()
    for expected in ["A tiny world.", "| `n` | 2 |", "`hidden/truth.csv.gz` (2 rows)", "| `id` | int | 1 to 2 | the id |"]:
        assert expected in sheet


def test_writing_twice_gives_identical_bytes(tmp_path):
    write_world(tiny_world(), tmp_path / "a")
    write_world(tiny_world(), tmp_path / "b")
    assert checksums(tmp_path / "a") == checksums(tmp_path / "b")


def test_rewriting_removes_stale_tables(tmp_path):
    write_world(tiny_world(), tmp_path)
    write_world(tiny_world(hidden={}), tmp_path)
    assert not (tmp_path / "tiny" / "hidden" / "truth.csv.gz").exists()


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"name": "Bad Name"}, ValueError, "lower-case identifier"),
        ({"seed": -2}, ValueError, "seed must be >= 0"),
        ({"observed": {}}, ValueError, "no observed tables"),
        ({"observed": {"events": [1, 2]}}, TypeError, "must be a DataFrame"),
        ({"hidden": {"events": pd.DataFrame({"x": [1]})}}, ValueError, "both observed and hidden"),
        (
            {"observed": {"events": pd.DataFrame({"t": pd.to_datetime(["2026-01-01"])})}},
            TypeError,
            "store timestamps as numbers",
        ),
    ],
)
def test_bad_worlds_are_rejected_with_the_reason(overrides, error, message):
    with pytest.raises(error, match=message):
        tiny_world(**overrides)


@pytest.mark.parametrize("name", sorted(datasets.GENERATORS))
def test_load_reads_back_what_generate_makes(name):
    generated, loaded = datasets.generate(name), datasets.load(name)
    for kind in ("observed", "hidden"):
        assert sorted(getattr(generated, kind)) == sorted(getattr(loaded, kind))
        for table, frame in getattr(generated, kind).items():
            assert_frame_equal(getattr(loaded, kind)[table], frame, check_dtype=False)


@pytest.mark.parametrize("name", sorted(datasets.GENERATORS))
def test_another_seed_gives_another_world(name):
    default = datasets.load(name)
    other = datasets.load(name, seed=default.seed + 1)
    assert other.seed == default.seed + 1
    table = next(iter(default.observed))
    assert not default.observed[table].equals(other.observed[table])


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="unknown dataset 'nope'; known datasets: .*notifications"):
        datasets.load("nope")
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        datasets.write_all(names=["nope"])


def test_missing_data_folder_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("MLSD_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run `make data`"):
        datasets.load("notifications")


# The data checks: data/ is exactly what the generators make.

def test_stored_data_matches_its_checksums():
    root = datasets.data_dir()
    assert checksums(root) == read_checksums(root), "data/ changed without `make data`"


def test_regenerating_the_data_is_byte_identical(tmp_path):
    datasets.write_all(tmp_path)
    assert checksums(tmp_path) == read_checksums(datasets.data_dir())


# The notifications world continued as a stream with drift (Chapter 4).

from mlsd.datasets.notifications import stream  # noqa: E402


def test_stream_without_drift_continues_the_world_reproducibly():
    log, p = stream(0, 28, 5)
    again, _ = stream(0, 28, 5)
    pd.testing.assert_frame_equal(log, again)
    world = datasets.load("notifications")
    assert log["notification_id"].min() == world.observed["notifications"]["notification_id"].max() + 1
    assert sorted(log["day"].unique()) == [28, 29, 30, 31, 32]
    assert p.index.equals(pd.Index(log["notification_id"]))


def test_each_drift_moves_what_it_should_from_its_day_on():
    _, p_base = stream(0, 28, 10)
    log_night, _ = stream(0, 28, 10, [{"day": 33, "kind": "night_sends", "share": 0.5}])
    night = log_night["hour"] >= 22
    assert night[log_night["day"] < 33].mean() < 0.15 < 0.45 < night[log_night["day"] >= 33].mean()
    log_prior, p_prior = stream(0, 28, 10, [{"day": 33, "kind": "prior", "shift": -1.0}])
    base_log, _ = stream(0, 28, 10)
    late = (base_log["day"] >= 33).to_numpy()
    assert (p_prior.to_numpy()[~late] == p_base.to_numpy()[~late]).all()
    assert (p_prior.to_numpy()[late] < p_base.to_numpy()[late]).all()
    _, p_taste = stream(0, 28, 10, [{"day": 28, "kind": "topic_taste", "topic": "sports", "shift": -2.0}])
    sports = (base_log["topic"] == "sports").to_numpy()
    assert (p_taste.to_numpy()[sports] < p_base.to_numpy()[sports]).all()
    assert (p_taste.to_numpy()[~sports] == p_base.to_numpy()[~sports]).all()


@pytest.mark.parametrize(
    "drifts, message",
    [
        ([{"day": 30, "kind": "earthquake"}], "unknown drift kind 'earthquake'"),
        ([{"day": 10, "kind": "prior", "shift": -1.0}], "drift day must be >= 28"),
        ([{"day": 30, "kind": "night_sends", "share": 1.5}], "share must be in \\[0, 1\\]"),
        ([{"day": 30, "kind": "topic_taste", "topic": "weather", "shift": 1.0}], "topic_taste needs a topic"),
    ],
)
def test_bad_drifts_are_named(drifts, message):
    with pytest.raises(ValueError, match=message):
        stream(0, 28, 5, drifts)


def test_stream_cannot_overlap_the_stored_world():
    with pytest.raises(ValueError, match="first_day must be >= 28"):
        stream(0, 20, 5)
