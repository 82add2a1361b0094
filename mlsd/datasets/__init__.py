"""The book's synthetic worlds.

Each case study has a generator ``generate(seed) -> World`` registered in :data:`GENERATORS`
with the seed its stored data was made from. ``make data`` writes every world to ``data/``;
a chapter reads its world with :func:`load`::

    world = load("notifications")           # the stored files in data/notifications/
    world = load("notifications", seed=1)   # the same world at another seed, generated in memory
    world.observed["notifications"], world.hidden["truth"]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mlsd._checks import check_int
from mlsd.datasets import (
    ad_click_prediction,
    event_recommendation,
    harmful_content,
    news_feed,
    notifications,
    people_you_may_know,
    similar_listings,
    street_view_blurring,
    video_recommendation,
    video_search,
    visual_search,
)
from mlsd.datasets.world import DATASHEET, World, checksums, read_checksums, read_tables, write_checksums, write_world

__all__ = ["GENERATORS", "World", "data_dir", "generate", "load", "write_all", "checksums", "read_checksums"]

#: name -> (generator, the seed of the stored data)
GENERATORS: dict[str, tuple[Callable[[int], World], int]] = {
    "ad_click_prediction": (ad_click_prediction.generate, ad_click_prediction.DEFAULT_SEED),
    "event_recommendation": (event_recommendation.generate, event_recommendation.DEFAULT_SEED),
    "harmful_content": (harmful_content.generate, harmful_content.DEFAULT_SEED),
    "news_feed": (news_feed.generate, news_feed.DEFAULT_SEED),
    "notifications": (notifications.generate, notifications.DEFAULT_SEED),
    "people_you_may_know": (people_you_may_know.generate, people_you_may_know.DEFAULT_SEED),
    "similar_listings": (similar_listings.generate, similar_listings.DEFAULT_SEED),
    "street_view_blurring": (street_view_blurring.generate, street_view_blurring.DEFAULT_SEED),
    "video_recommendation": (video_recommendation.generate, video_recommendation.DEFAULT_SEED),
    "video_search": (video_search.generate, video_search.DEFAULT_SEED),
    "visual_search": (visual_search.generate, visual_search.DEFAULT_SEED),
}


def data_dir() -> Path:
    """Where the generated data lives: ``$MLSD_DATA_DIR`` if set, else ``data/`` in the repository."""
    env = os.environ.get("MLSD_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def _generator(name: str) -> tuple[Callable[[int], World], int]:
    if name not in GENERATORS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(GENERATORS))}")
    return GENERATORS[name]


def generate(name: str, seed: int | None = None) -> World:
    """Generate world ``name`` in memory (at its default seed unless ``seed`` is given)."""
    make, default_seed = _generator(name)
    seed = default_seed if seed is None else check_int("seed", seed, minimum=0)
    return make(seed)


def load(name: str, seed: int | None = None) -> World:
    """Load world ``name``: from ``data/<name>/`` at the stored seed, else generated in memory.

    Both paths give equal tables (a unit test checks the round trip), so a notebook's
    parameters cell can change the seed without any other change.
    """
    make, default_seed = _generator(name)
    if seed is not None and check_int("seed", seed, minimum=0) != default_seed:
        return make(seed)
    folder = data_dir() / name
    observed, hidden = read_tables(folder)
    # Read from disk, the world carries its stored datasheet as its summary.
    summary = (folder / DATASHEET).read_text(encoding="utf-8")
    return World(name=name, seed=default_seed, observed=observed, hidden=hidden, summary=summary)


def write_all(root: str | Path | None = None, names: list[str] | None = None) -> Path:
    """Generate the named worlds (default: all) under ``root`` and refresh ``SHA256SUMS``."""
    root = Path(root) if root is not None else data_dir()
    names = names or sorted(GENERATORS)
    for name in names:
        _generator(name)  # fail on an unknown name before writing anything
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_world(generate(name), root)
    return write_checksums(root)
