"""mlsd.models.training: Adam against a hand-written update, minibatches, KeepBest."""

import numpy as np
import pytest

from mlsd.models.training import Adam, KeepBest, gradient_check, minibatches


def test_adam_matches_the_published_update():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2))
    params = {"w": w}
    opt = Adam(params, lr=0.01, betas=(0.8, 0.99), eps=1e-6)
    ref, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t in range(1, 6):
        g = rng.normal(size=w.shape)
        opt.step({"w": g})
        m = 0.8 * m + (1 - 0.8) * g
        v = 0.99 * v + (1 - 0.99) * g**2
        ref -= 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.99**t)) + 1e-6)
    assert params["w"] is w                                  # updated in place
    np.testing.assert_allclose(w, ref, rtol=1e-12)
    assert opt.t == 5


def test_adam_minimises_a_quadratic():
    x = np.array([5.0, -3.0])
    opt = Adam({"x": x}, lr=0.1)
    for _ in range(500):
        opt.step({"x": 2 * x})
    np.testing.assert_allclose(x, 0, atol=1e-2)


def test_adam_first_step_moves_each_weight_by_about_lr():
    x = np.array([1.0, 1.0])
    Adam({"x": x}, lr=0.5).step({"x": np.array([1e-3, -7.0])})
    np.testing.assert_allclose(x, [0.5, 1.5], rtol=1e-4)


@pytest.mark.parametrize("make, error, match", [
    (lambda: Adam({}), TypeError, "non-empty dict"),
    (lambda: Adam({"w": np.zeros(2, int)}), TypeError, "float numpy array"),
    (lambda: Adam({"w": [0.0]}), TypeError, "float numpy array"),
    (lambda: Adam({"w": np.zeros(2)}, lr=0), ValueError, "lr"),
    (lambda: Adam({"w": np.zeros(2)}, betas=(0.9, 1.0)), ValueError, "betas"),
    (lambda: Adam({"w": np.zeros(2)}).step({"v": np.zeros(2)}), ValueError, "one gradient"),
    (lambda: Adam({"w": np.zeros(2)}).step({"w": np.zeros(3)}), ValueError, "shape"),
])
def test_adam_refuses_bad_input(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_minibatches_cover_every_row_once_in_a_fresh_order():
    rng = np.random.default_rng(0)
    first = list(minibatches(10, 4, rng))
    assert [len(b) for b in first] == [4, 4, 2]
    np.testing.assert_array_equal(np.sort(np.concatenate(first)), np.arange(10))
    second = np.concatenate(list(minibatches(10, 4, rng)))
    assert not np.array_equal(np.concatenate(first), second)
    # the order is the generator's permutation, drawn when the iteration starts
    np.testing.assert_array_equal(np.concatenate(first),
                                  np.random.default_rng(0).permutation(10))


def test_balanced_minibatches_have_no_short_batch():
    sizes = [len(b) for b in minibatches(10, 4, np.random.default_rng(0), balanced=True)]
    assert sizes == [5, 5]
    assert [len(b) for b in minibatches(3, 4, np.random.default_rng(0), balanced=True)] == [3]


@pytest.mark.parametrize("args, error, match", [
    ((0, 2, np.random.default_rng(0)), ValueError, "n must be"),
    ((5, 0, np.random.default_rng(0)), ValueError, "batch_size"),
    ((5, 2, 0), TypeError, "Generator"),
])
def test_minibatches_refuse_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        minibatches(*args)


def test_keep_best_keeps_a_copy_of_the_best_epoch_and_restores_it():
    params = {"w": np.zeros(2)}
    best = KeepBest()
    for epoch, score in ((1, 0.3), (2, 0.5), (3, 0.5), (4, 0.4)):
        params["w"] += 1
        best.update(epoch, score, params)
    assert best.curve == {1: 0.3, 2: 0.5, 3: 0.5, 4: 0.4}
    assert (best.best_epoch, best.best_score) == (2, 0.5)   # the earliest of a tie
    held = params["w"]
    best.restore(params)
    assert params["w"] is held                               # in place
    np.testing.assert_array_equal(held, [2, 2])

    class Model:
        pass

    model = Model()
    best.restore(model)
    np.testing.assert_array_equal(model.w, [2, 2])


def test_keep_best_for_a_loss():
    best = KeepBest(higher_is_better=False)
    assert best.update(1, 0.7, {"b": 1.0}) and best.update(2, 0.6, {"b": 2.0})
    assert not best.update(3, 0.65, {"b": 3.0})
    assert best.restore({})["b"] == 2.0


@pytest.mark.parametrize("call, error, match", [
    (lambda b: b.update(1, float("nan"), {}), ValueError, "finite"),
    (lambda b: b.update(1, "0.5", {}), ValueError, "finite"),
    (lambda b: b.update(1, 0.5, [1]), TypeError, "dict"),
    (lambda b: (b.update(1, 0.5, {}), b.update(1, 0.6, {})), ValueError, "recorded already"),
    (lambda b: b.restore({}), ValueError, "nothing to restore"),
    (lambda b: KeepBest(higher_is_better=1), TypeError, "True or False"),
])
def test_keep_best_refuses_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call(KeepBest())


def test_gradient_check_tells_a_right_gradient_from_a_wrong_one():
    w = np.random.default_rng(0).normal(size=(3, 4))
    params = {"w": w}
    loss = lambda: float((np.sin(params["w"]) ** 2).sum())          # noqa: E731
    right = {"w": 2 * np.sin(w) * np.cos(w)}
    before = w.copy()
    assert gradient_check(loss, params, right, rng=np.random.default_rng(1)) < 1e-6
    np.testing.assert_array_equal(w, before)                         # weights put back
    assert gradient_check(loss, params, {"w": np.cos(w)}, rng=np.random.default_rng(1)) > 0.1
    with pytest.raises(ValueError, match="no parameter"):
        gradient_check(loss, params, {"v": right["w"]}, rng=np.random.default_rng(1))
