"""The visual search world (Chapter 5): schema, rendering, relevance, duplicates, the new style."""

import functools

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from mlsd.datasets import visual_search as vs

K = vs.KNOBS


@functools.cache
def world(seed: int = 0):
    return vs.generate(seed)


def test_tables_have_the_stated_sizes_and_keys():
    t = world().observed
    assert len(t["products"]) == K["n_products"]
    assert len(t["catalogue"]) == K["n_products"] * K["images_per_product"]
    assert len(t["queries"]) == K["n_queries"]
    assert np.array_equal(t["catalogue"]["image_id"], np.arange(len(t["catalogue"])))
    assert set(t["products"]["category"]) == set(vs.CATEGORIES)
    assert (t["catalogue"].groupby("product_id").size() == K["images_per_product"]).all()
    # queries come after the catalogue is built
    assert t["queries"]["day"].min() >= K["catalogue_days"]
    assert 0 < t["products"]["blocked"].mean() < 0.05


def test_photos_are_images_and_rendering_is_a_pure_function_of_the_id():
    w = world()
    photos = vs.pixels(w, "catalogue", [0, 1, 2, 3])
    assert photos.shape == (4, vs.IMAGE_SIZE, vs.IMAGE_SIZE, 3) and photos.dtype == np.float32
    assert photos.min() >= 0 and photos.max() <= 1
    # the same id gives the same pixels, whatever else is rendered with it and in which batch
    again = vs.pixels(w, "catalogue", [3, 2, 9, 1, 0], batch=2)
    assert np.array_equal(again[[4, 3, 1, 0]], photos)
    assert not np.array_equal(vs.pixels(w, "query", [0]), vs.pixels(w, "catalogue", [0]))


def test_photos_of_one_product_are_closer_than_photos_of_others():
    w = world()
    t = w.observed
    photos = vs.pixels(w, "catalogue", np.arange(2_000)).reshape(2_000, -1)
    product = t["catalogue"]["product_id"].to_numpy()[:2_000]
    distance = cdist(photos, photos, "sqeuclidean")  # the pairs' squared distances, in C
    same = product[:, None] == product[None]
    off_diagonal = ~np.eye(2_000, dtype=bool)
    assert distance[same & off_diagonal].mean() < 0.8 * distance[~same].mean()


def test_query_photos_are_noisier_views_of_their_hidden_product():
    k = K
    assert k["noise"]["query"] > k["noise"]["catalogue"] and k["occlusion"]["query"] > k["occlusion"]["catalogue"]
    truth = world().hidden["query_truth"]
    assert truth["product_id"].between(0, K["n_products"] - 1).all()
    # popular products get more queries than a uniform draw would give them
    assert truth["product_id"].value_counts().max() > 3 * K["n_queries"] / K["n_products"]


def test_relevance_is_graded_by_product_then_category():
    w = world()
    t = w.observed
    q = 0
    product = int(w.hidden["query_truth"]["product_id"][q])
    category = t["products"]["category"][product]
    same = t["catalogue"].index[t["catalogue"]["product_id"] == product][0]
    sibling_product = t["products"].index[(t["products"]["category"] == category) & (t["products"].index != product)][0]
    sibling = t["catalogue"].index[t["catalogue"]["product_id"] == sibling_product][0]
    other = t["catalogue"].index[t["products"]["category"].to_numpy()[t["catalogue"]["product_id"]] != category][0]
    assert vs.relevance(w, [q], [same, sibling, other]).tolist() == [[2, 1, 0]]
    # a (q, k) array of images is scored row by row
    assert vs.relevance(w, [q, q], np.array([[same], [other]])).tolist() == [[2], [0]]


def test_a_reupload_shares_its_originals_augmentation_but_not_its_noise():
    w = world()
    views = w.hidden["catalogue_views"]
    dup = views.loc[views["duplicate_of"] >= 0].iloc[0]
    assert views["duplicate_of"][dup["duplicate_of"]] == -1, "re-uploads point to an original"
    copy, original = vs.pixels(w, "catalogue", [dup["image_id"], dup["duplicate_of"]])
    assert 0 < np.abs(copy - original).mean() < 0.1
    assert 0.01 < (views["duplicate_of"] >= 0).mean() < 0.05


def test_new_style_appends_a_category_nobody_has_seen():
    w = world()
    n = len(w.observed["catalogue"])
    t = vs.new_style(w, n_products=20, first_day=70, n_queries=30)
    new = t["products"].iloc[K["n_products"]:]
    assert set(new["category"]) == set(vs.NEW_STYLE) and new["added_day"].between(70, 76).all()
    assert len(t["catalogue"]) == n + 20 * K["images_per_product"] and len(t["queries"]) == K["n_queries"] + 30
    photos = vs.pixels(t, "catalogue", np.arange(n, n + 3))
    assert photos.shape == (3, vs.IMAGE_SIZE, vs.IMAGE_SIZE, 3)
    assert vs.relevance(t, [K["n_queries"]], [n]).shape == (1, 1)
    assert len(w.observed["catalogue"]) == n, "the stored world is not modified"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: vs.pixels(w, "thumbnail", [0]), "kind must be"),
        (lambda w: vs.pixels(w, "catalogue", [-1]), "catalogue ids must be in"),
        (lambda w: vs.pixels(w, "query", [K["n_queries"]]), "query ids must be in"),
        (lambda w: vs.new_style(w, n_products=0, first_day=70), "n_products"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(world())


def test_new_listings_continue_the_world_and_can_be_chained():
    w = world()
    t = vs.new_listings(w, n_products=30, first_day=60, n_days=10)
    new = t["products"].iloc[K["n_products"]:]
    assert set(new["category"]) <= set(vs.CATEGORIES) and new["added_day"].between(60, 69).all()
    assert len(t["queries"]) == K["n_queries"], "no queries unless asked for"
    again = vs.new_style(t, n_products=5, first_day=75, n_queries=3)
    assert len(again["products"]) == K["n_products"] + 35 and set(again["products"]["category"].iloc[-5:]) == set(vs.NEW_STYLE)
    assert vs.pixels(again, "catalogue", [len(again["catalogue"]) - 1]).shape == (1, vs.IMAGE_SIZE, vs.IMAGE_SIZE, 3)
    # the same call gives the same listings
    assert t["catalogue"].equals(vs.new_listings(w, n_products=30, first_day=60, n_days=10)["catalogue"])
    with pytest.raises(ValueError, match="categories must be among"):
        vs.new_listings(w, n_products=3, first_day=60, categories=["boats"])
