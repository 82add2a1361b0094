"""The bookkeeping of a training loop, written once: the optimiser, the batches, early stopping.

A chapter that teaches a model writes its loss and gradients; what turns them into a trained
model is the same every time and lives here:

- :class:`Adam`        -- the Adam update (Kingma & Ba 2015), bias-corrected, on a dict of arrays;
- :func:`minibatches`  -- one epoch's minibatches, a fresh random order each epoch;
- :class:`KeepBest`    -- the validation score of each epoch and a copy of the best parameters
  (early stopping judged on validation only);
- :func:`gradient_check` -- a hand-written gradient against central differences of the loss.

A loop then reads::

    opt, best = Adam(params, lr=3e-3), KeepBest()
    for epoch in range(1, epochs + 1):
        for rows in minibatches(n, 256, rng):
            opt.step(gradients(params, x[rows]))
        best.update(epoch, validation_score(params), params)
    best.restore(params)

Reference: Kingma & Ba (2015), "Adam: a method for stochastic optimization", *ICLR*.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterator, Mapping

import numpy as np

from mlsd._checks import check_finite, check_int

__all__ = ["Adam", "KeepBest", "gradient_check", "minibatches"]


def _params(name: str, params) -> dict:
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"{name} must be a non-empty dict of name -> numpy array")
    for key, value in params.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            raise TypeError(f"{name}[{key!r}] must be a float numpy array (updated in place), "
                            f"got {type(value).__name__}")
    return dict(params)


class Adam:
    """Adam on a dict of float arrays, updated in place by :meth:`step`.

    For each array p with gradient g, at step t = 1, 2, ...::

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
        p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    The first and second moments start at zero; the divisions by 1 - b^t correct their bias
    towards zero in the first steps. Weight decay (L2) is not built in: add ``l2 * p`` to the
    gradient of the arrays it applies to.

    Parameters
    ----------
    params : dict of str to ndarray
        The arrays to train; each is changed in place, so a model holding them sees the update.
    lr : float
        The step size (> 0).
    betas : (float, float)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        Added to the denominator (> 0).

    Raises
    ------
    TypeError
        If ``params`` is not a non-empty dict of float arrays.
    ValueError
        If ``lr`` or ``eps`` is not positive or a beta is outside [0, 1).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = _params("params", params)
        self.lr, self.eps = check_finite("lr", lr), check_finite("eps", eps)
        if self.lr <= 0 or self.eps <= 0:
            raise ValueError(f"lr and eps must be > 0, got lr={lr!r}, eps={eps!r}")
        if len(betas) != 2 or not all(0 <= check_finite("beta", b) < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.t = 0
        self.m = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.v = {name: np.zeros_like(p) for name, p in self.params.items()}

    def step(self, grads) -> None:
        """Apply one update; ``grads`` maps each parameter's name to its gradient (same shape).

        Raises
        ------
        ValueError
            If a parameter has no gradient, a name is unknown, or a shape differs.
        """
        if not isinstance(grads, Mapping) or set(grads) != set(self.params):
            names = sorted(grads) if isinstance(grads, Mapping) else type(grads).__name__
            raise ValueError(f"grads must give one gradient per parameter "
                             f"{sorted(self.params)}, got {names}")
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        for name, p in self.params.items():
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise ValueError(f"the gradient of {name!r} has shape {g.shape}, "
                                 f"the parameter {p.shape}")
            m, v = self.m[name], self.v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g**2
            p -= self.lr * (m / (1 - b1**self.t)) / (np.sqrt(v / (1 - b2**self.t)) + self.eps)


def minibatches(n: int, batch_size: int, rng, *, balanced: bool = False) -> Iterator[np.ndarray]:
    """One epoch's minibatches: the row indices ``0 .. n-1`` in a fresh random order, cut up.

    The order is ``rng.permutation(n)``, drawn when the iteration starts (so call this once
    per epoch). By default the batches are consecutive slices of ``batch_size`` rows, the last
    one shorter when ``batch_size`` does not divide ``n``. With ``balanced=True`` the order is
    cut into ``max(1, n // batch_size)`` batches whose sizes differ by at most one (each at
    least ``batch_size``): no short last batch, which matters when a batch's rows are each
    other's negatives, as in contrastive training.

    Raises
    ------
    TypeError
        If ``rng`` is not a ``numpy.random.Generator``.
    ValueError
        If ``n`` or ``batch_size`` is below 1.
    """
    n, batch_size = check_int("n", n, minimum=1), check_int("batch_size", batch_size, minimum=1)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return _batches(n, batch_size, rng, balanced)


def _batches(n: int, batch_size: int, rng, balanced: bool) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    if balanced:
        yield from np.array_split(order, max(1, n // batch_size))
    else:
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


class KeepBest:
    """Early stopping's bookkeeping: each epoch's validation score, and the best parameters.

    :meth:`update` records ``curve[epoch] = score`` and, when the score beats every earlier
    one (strictly: the earliest of tied epochs is kept), a deep copy of the parameters.
    :meth:`restore` copies the best parameters back into a dict (by key) or an object (by
    attribute), e.g. ``best.restore(model)`` after training ``model.W1``, ``model.W2``; an
    array already there of the same shape is overwritten in place, so an optimiser or a model
    holding it sees the restored values.

    Parameters
    ----------
    higher_is_better : bool
        True for a score such as nDCG or AUC, False for a loss.
    """

    def __init__(self, higher_is_better: bool = True):
        if not isinstance(higher_is_better, bool):
            raise TypeError(f"higher_is_better must be True or False, got {higher_is_better!r}")
        self.higher_is_better = higher_is_better
        self.curve: dict = {}
        self.best_epoch = None
        self.best_score = None
        self.best_params: dict | None = None

    def update(self, epoch, score, params) -> bool:
        """Record one epoch's validation ``score``; keep a copy of ``params`` if it is the best.

        ``params`` is a dict of name -> array (or any value); returns whether it was kept.

        Raises
        ------
        ValueError
            If ``score`` is not a finite number, or ``epoch`` was recorded already.
        TypeError
            If ``params`` is not a dict.
        """
        if isinstance(score, np.generic):
            score = score.item()
        if not isinstance(score, numbers.Real):
            raise ValueError(f"score must be a finite number, got {score!r}")
        score = check_finite("score", score)
        if epoch in self.curve:
            raise ValueError(f"epoch {epoch!r} was recorded already")
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a dict of name -> array, got {type(params).__name__}")
        self.curve[epoch] = score
        better = self.best_score is None or (
            score > self.best_score if self.higher_is_better else score < self.best_score)
        if better:
            self.best_epoch, self.best_score = epoch, score
            self.best_params = {name: copy.deepcopy(value) for name, value in params.items()}
        return better

    def restore(self, target):
        """Copy the best parameters into ``target`` (a dict, or an object's attributes); return it.

        Raises
        ------
        ValueError
            If nothing was recorded yet.
        """
        if self.best_params is None:
            raise ValueError("no epoch was recorded: there is nothing to restore")
        for name, value in self.best_params.items():
            current = target.get(name) if isinstance(target, dict) else getattr(target, name, None)
            if isinstance(current, np.ndarray) and np.shape(value) == current.shape:
                current[...] = value          # in place: whoever holds the array sees the best
            elif isinstance(target, dict):
                target[name] = copy.deepcopy(value)
            else:
                setattr(target, name, copy.deepcopy(value))
        return target


def gradient_check(loss, params, grads, *, rng, n: int = 5, eps: float = 1e-6) -> float:
    """The largest relative error of ``grads`` against a numerical gradient of ``loss``.

    For ``n`` weights drawn at random (with ``rng``) from each array of ``params`` named in
    ``grads``, the weight is nudged by +/- ``eps`` in place and the central difference
    ``(loss() - loss()) / (2 eps)`` is compared with the analytic gradient:
    ``|numerical - analytic| / max(|analytic|, 1e-8)``. Each weight is put back afterwards.
    ``loss`` takes no arguments and reads the arrays of ``params``. Computed in float64, a
    correct gradient gives errors around 1e-7 or less; a wrong one, errors near 1.

    Raises
    ------
    ValueError
        If ``grads`` names an array ``params`` lacks, or a shape differs.
    """
    n, eps = check_int("n", n, minimum=1), check_finite("eps", eps)
    errors = []
    for name, grad in grads.items():
        if name not in params or np.shape(params[name]) != np.shape(grad):
            raise ValueError(f"grads[{name!r}] has no parameter of its shape in params")
        weights = params[name]
        for _ in range(n):
            index = tuple(int(rng.integers(0, size)) for size in weights.shape)
            saved = weights[index]
            weights[index] = saved + eps
            up = loss()
            weights[index] = saved - eps
            down = loss()
            weights[index] = saved
            analytic = grad[index]
            errors.append(abs((up - down) / (2 * eps) - analytic) / max(abs(analytic), 1e-8))
    return float(max(errors))
