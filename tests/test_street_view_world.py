"""The Street View blurring world (chapter 6): templates, rendering, annotations and the new sensor."""

import numpy as np
import pytest

from mlsd.datasets import street_view_blurring as sv


@pytest.fixture(scope="module")
def world():
    return sv.generate(0)


def test_templates_have_the_stated_shapes_and_inner_structure():
    for i, h in enumerate(sv.FACE_HEIGHTS):
        t = sv.templates()[("face", i)]
        assert t.shape == (h, round(0.75 * h))
        assert (t == -0.6).sum() >= 3  # eyes and mouth, opposite to the skin
        assert (t == 1).sum() > (t == -0.6).sum()
        assert np.array_equal(t, t[:, ::-1])  # a face is symmetric
    for i, w in enumerate(sv.PLATE_WIDTHS):
        t = sv.templates()[("plate", i)]
        assert t.shape == (round(w / 3), w)
        # five characters: five runs of dark columns across the middle row
        middle = t[t.shape[0] // 2] < 0
        assert np.sum(np.diff(middle.astype(int)) == 1) == 5
    with pytest.raises(ValueError):
        sv.face_template(3)


def test_annotations_are_inside_the_photo_and_do_not_overlap(world):
    a = world.observed["annotations"]
    assert len(a) == len(world.hidden["objects"])
    assert np.array_equal(a["photo_id"], world.hidden["objects"]["photo_id"])
    assert a[["x1", "y1"]].min().min() >= 0 and a[["x2", "y2"]].max().max() <= sv.IMAGE_SIZE
    for _, g in a.groupby("photo_id"):
        boxes = g[["x1", "y1", "x2", "y2"]].to_numpy()
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a1, b1, a2, b2 = boxes[i]
                c1, d1, c2, d2 = boxes[j]
                assert a2 <= c1 or c2 <= a1 or b2 <= d1 or d2 <= b1
    sizes = (a["x2"] - a["x1"]).where(a["label"] == "plate", a["y2"] - a["y1"])
    assert set(sizes[a["label"] == "face"]) == set(sv.FACE_HEIGHTS)
    assert set(sizes[a["label"] == "plate"]) == set(sv.PLATE_WIDTHS)


def test_pixels_are_background_plus_objects_plus_the_stated_noise(world):
    ids = np.arange(200)
    photo = sv.pixels(world, ids)
    assert photo.dtype == np.float32 and photo.shape == (200, 64, 64)
    assert photo.min() >= 0 and photo.max() <= 1
    residual = photo - sv.clean_background(world, ids) - sv.object_layer(world, ids)
    unclipped = (photo > 0) & (photo < 1)
    assert abs(residual[unclipped].std() - sv.KNOBS["noise"]) < 0.002
    assert abs(residual[unclipped].mean()) < 0.002


def test_pixels_do_not_depend_on_what_else_is_rendered(world):
    alone = sv.pixels(world, [7])
    with_others = sv.pixels(world, [3, 7, 11])
    assert np.array_equal(alone[0], with_others[1])
    with pytest.raises(ValueError, match="photo ids"):
        sv.pixels(world, [len(world.observed["photos"])])


def test_objects_differ_from_decoys_by_their_inner_structure(world):
    # the clean background holds the decoys; the object layer holds exactly the annotated boxes
    layer = sv.object_layer(world, np.arange(100))
    a = world.observed["annotations"]
    mask = np.zeros_like(layer, dtype=bool)
    for r in a[a["photo_id"] < 100].itertuples():
        mask[r.photo_id, r.y1:r.y2, r.x1:r.x2] = True
    assert np.all(layer[~mask] == 0)
    assert np.all(np.abs(layer[mask]) <= sv.KNOBS["contrast"][1] + 1e-6)


def test_new_sensor_is_noisier_and_continues_the_world(world):
    t = sv.new_sensor(world, 300, first_day=30, n_days=3, v2_share=[0.0, 0.5, 1.0])
    new = t["photos"].iloc[len(world.observed["photos"]):]
    assert len(new) == 300 and new["day"].between(30, 32).all()
    assert (new.loc[new["day"] == 30, "sensor"] == "v1").all()
    assert (new.loc[new["day"] == 32, "sensor"] == "v2").all()
    assert np.array_equal(t["photos"]["photo_id"], np.arange(len(t["photos"])))
    ids = new["photo_id"].to_numpy()
    residual = sv.pixels(t, ids) - sv.clean_background(t, ids) - sv.object_layer(t, ids)
    v2 = (new["sensor"] == "v2").to_numpy()
    assert residual[v2].std() > 1.3 * residual[~v2].std()
    again = sv.new_sensor(world, 300, first_day=30, n_days=3, v2_share=[0.0, 0.5, 1.0])
    assert again["photos"].equals(t["photos"]) and again["annotations"].equals(t["annotations"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(first_day=10), "after the world's last day"),
    (dict(v2_share=1.5), "v2_share"),
    (dict(noise=-0.1), "noise"),
    (dict(n_photos=0), "n_photos"),
])
def test_bad_sensor_roll_outs_are_named(world, kwargs, message):
    args = dict(n_photos=100, first_day=30, n_days=2, v2_share=0.5) | kwargs
    with pytest.raises(ValueError, match=message):
        sv.new_sensor(world, **args)
