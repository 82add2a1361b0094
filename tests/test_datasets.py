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
