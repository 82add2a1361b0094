"""Model compression: a big model distilled into a small one, a pipeline compiled to arrays.

Chapter 3 serves the notification model and finds that most of its five milliseconds are the
scikit-learn pipeline's fixed cost (a DataFrame built, encoded and scaled for one row), not
arithmetic. Three standard moves make a model smaller and faster, each with a price to measure:

- **Distillation** (Hinton, Vinyals & Dean 2015): train a small *student* on the probabilities
  of a big *teacher* instead of on the 0/1 labels. :func:`distil` fits any scikit-learn
  classifier to soft labels, by giving each row twice, as a positive with weight ``p`` and as
  a negative with weight ``1 - p``: the weighted log loss is then exactly the cross-entropy
  between the teacher's and the student's probabilities.
- **Compilation**: a fitted logistic-regression pipeline (one-hot categories, scaled numbers)
  is a sum of one weight per category and one weight per number. :func:`compile_logistic`
  folds the encoder and the scaler into those weights; :class:`LinearScorer` scores a row with
  a few dictionary look-ups and multiplications, no DataFrame.
- **Lower precision**: :meth:`LinearScorer.astype` stores the weights in ``float16`` (2 bytes
  each instead of 8). The arithmetic stays in ``float64``, so the only change is the rounding
  of each weight, and the result does not depend on the CPU's vector instructions.

:func:`model_bytes` is the size compared: the bytes of the pickled object, what would be
shipped to a server or a phone.

References
----------
G. Hinton, O. Vinyals, J. Dean (2015), "Distilling the knowledge in a neural network",
arXiv:1503.02531. C. Buciluǎ, R. Caruana, A. Niculescu-Mizil (2006), "Model compression",
*KDD*. A. Gholami et al. (2021), "A survey of quantization methods for efficient neural
network inference", arXiv:2103.13630.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlsd._checks import check_array_1d

__all__ = ["LinearScorer", "compile_logistic", "distil", "model_bytes"]

_DTYPES = (np.float16, np.float32, np.float64)


def model_bytes(model) -> int:
    """Bytes of ``pickle.dumps(model)`` (protocol 5): the size of the model as shipped."""
    return len(pickle.dumps(model, protocol=5))


# --------------------------------------------------------------------------- distillation


def distil(student, X, teacher_probabilities, **fit_params):
    """Fit ``student`` to a teacher's probabilities (soft labels) instead of 0/1 labels.

    Each row of ``X`` is given twice: labelled 1 with weight ``p`` and labelled 0 with weight
    ``1 - p``, where ``p`` is the teacher's probability for the row. A classifier minimising the
    weighted log loss then minimises the cross-entropy to the teacher,
    ``-sum_j [p_j log q_j + (1 - p_j) log(1 - q_j)]``, whose minimum is the teacher's own
    probabilities where the student can represent them. The weights of a row sum to 1, so a
    regularised student is regularised as it would be on hard labels.

    Parameters
    ----------
    student
        An unfitted scikit-learn classifier, or a :class:`~sklearn.pipeline.Pipeline` ending in
        one, whose ``fit`` takes ``sample_weight`` (routed to the pipeline's last step).
    X
        The transfer set: a DataFrame (or array) of the rows to imitate the teacher on.
    teacher_probabilities
        The teacher's probability of the positive class for each row of ``X``, in [0, 1].
    **fit_params
        Passed on to ``student.fit``.

    Returns
    -------
    The fitted ``student``.

    Raises
    ------
    ValueError
        If the lengths differ, or a probability is NaN or outside [0, 1].
    TypeError
        If ``student`` has no ``fit`` method.
    """
    if not callable(getattr(student, "fit", None)):
        raise TypeError(f"student must be a scikit-learn estimator, got {type(student).__name__}")
    p = check_array_1d("teacher_probabilities", teacher_probabilities)
    if p.dtype.kind not in "biuf":
        raise ValueError(f"teacher_probabilities must be numbers, got values of type {p.dtype}")
    p = p.astype(np.float64)
    if not np.all((p >= 0) & (p <= 1)):  # also catches NaN
        raise ValueError("teacher_probabilities must lie in [0, 1] (no NaN)")
    if len(X) != len(p):
        raise ValueError(f"X has {len(X)} rows but teacher_probabilities has {len(p)}")
    twice = pd.concat([X, X], ignore_index=True) if isinstance(X, pd.DataFrame) \
        else np.concatenate([np.asarray(X), np.asarray(X)])
    labels = np.r_[np.ones(len(p), dtype=int), np.zeros(len(p), dtype=int)]
    weights = np.r_[p, 1.0 - p]
    key = "sample_weight"
    if isinstance(student, Pipeline):
        key = f"{student.steps[-1][0]}__sample_weight"
    return student.fit(twice, labels, **{key: weights}, **fit_params)


# --------------------------------------------------------------------------- the compiled scorer


@dataclass(frozen=True, eq=False)
class LinearScorer:
    """A logistic regression as plain weights: ``sigmoid(b + sum of category weights + w . x)``.

    Build one with :func:`compile_logistic`. The weights are stored in ``dtype`` (see
    :meth:`astype`); every computation is in ``float64``, term after term in a fixed order.

    Attributes
    ----------
    intercept
        ``b``, with the scaler's means folded in.
    categorical
        ``(column, categories, weights)`` per categorical column: the weight added when the
        column has that category.
    numeric
        The numeric columns, and ``numeric_weights`` their weights (divided by the scaler's
        scale: the raw number is multiplied by it).
    unknown
        ``"ignore"``: an unseen category adds 0 (what ``OneHotEncoder(handle_unknown="ignore")``
        does); ``"error"``: it raises ``ValueError``.
    """

    intercept: np.ndarray
    categorical: tuple
    numeric: tuple
    numeric_weights: np.ndarray
    unknown: str = "ignore"

    def __post_init__(self):
        if self.unknown not in ("ignore", "error"):
            raise ValueError(f"unknown must be 'ignore' or 'error', got {self.unknown!r}")
        dtypes = {self.intercept.dtype, self.numeric_weights.dtype}
        dtypes |= {weights.dtype for _, _, weights in self.categorical}
        if len(dtypes) != 1 or dtypes.pop().type not in _DTYPES:
            raise ValueError("the weights must share one dtype among float16, float32, float64")

    def __getstate__(self):  # the look-up tables are rebuilt, not shipped
        return {k: v for k, v in self.__dict__.items() if k != "_tables"}

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def dtype(self) -> np.dtype:
        return self.intercept.dtype

    @property
    def n_weights(self) -> int:
        """Parameters stored: the intercept, one per category, one per number."""
        return 1 + sum(len(w) for _, _, w in self.categorical) + len(self.numeric)

    @cached_property
    def _tables(self):
        """Python floats for the per-row path: ``({column: {category: w}}, [(column, w)])``."""
        lookups = {column: dict(zip(categories, weights.astype(np.float64).tolist()))
                   for column, categories, weights in self.categorical}
        numbers = list(zip(self.numeric, self.numeric_weights.astype(np.float64).tolist()))
        return lookups, numbers

    def astype(self, dtype) -> "LinearScorer":
        """The same scorer with every weight rounded to ``dtype`` (float16, float32 or float64)."""
        dtype = np.dtype(dtype)
        if dtype.type not in _DTYPES:
            raise ValueError(f"dtype must be float16, float32 or float64, got {dtype}")
        return LinearScorer(
            self.intercept.astype(dtype),
            tuple((c, cats, w.astype(dtype)) for c, cats, w in self.categorical),
            self.numeric, self.numeric_weights.astype(dtype), self.unknown)

    def _category_weights(self, column, categories, weights, values: pd.Series) -> np.ndarray:
        found = values.map(dict(zip(categories, weights.astype(np.float64).tolist())))
        missing = found.isna().to_numpy()
        if missing.any() and self.unknown == "error":
            value = values.to_numpy()[np.flatnonzero(missing)[0]]
            raise ValueError(f"column {column!r} has the unseen category {value!r}")
        return found.fillna(0.0).to_numpy(dtype=np.float64)

    def decision_function(self, X) -> np.ndarray:
        """Log-odds for each row of ``X`` (a DataFrame, or a list of dicts), in float64."""
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(list(X))
        needed = [c for c, _, _ in self.categorical] + list(self.numeric)
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise ValueError(f"X lacks the columns {absent}")
        z = np.full(len(frame), float(self.intercept), dtype=np.float64)
        for column, categories, weights in self.categorical:
            z = z + self._category_weights(column, categories, weights, frame[column])
        numbers = self.numeric_weights.astype(np.float64)
        for column, weight in zip(self.numeric, numbers):
            z = z + weight * frame[column].to_numpy(dtype=np.float64)
        return z

    def probabilities(self, X) -> np.ndarray:
        """Probability of the positive class for each row, 1-D (what a prediction app serves)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def probability(self, instance: Mapping) -> float:
        """Probability for one row given as a dict: plain Python, no array is built."""
        lookups, numbers = self._tables
        z = float(self.intercept)
        for column, table in lookups.items():
            value = instance[column]
            if value in table:
                z += table[value]
            elif self.unknown == "error":
                raise ValueError(f"column {column!r} has the unseen category {value!r}")
        for column, weight in numbers:
            z += weight * instance[column]
        return 1.0 / (1.0 + math.exp(-z))


def _steps(pipeline) -> tuple[ColumnTransformer, LogisticRegression]:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise TypeError("compile_logistic takes a fitted Pipeline of two steps: a "
                        f"ColumnTransformer, then a LogisticRegression; got {pipeline!r}")
    (_, encode), (_, model) = pipeline.steps
    if not isinstance(encode, ColumnTransformer) or not isinstance(model, LogisticRegression):
        raise TypeError("compile_logistic takes a ColumnTransformer then a LogisticRegression, "
                        f"got {type(encode).__name__} then {type(model).__name__}")
    if not hasattr(model, "coef_") or not hasattr(encode, "transformers_"):
        raise ValueError("the pipeline is not fitted")
    if model.coef_.shape[0] != 1:
        raise ValueError("compile_logistic handles binary classification only")
    return encode, model


def _is_identity(transformer) -> bool:
    if isinstance(transformer, str):
        return transformer == "passthrough"
    return (isinstance(transformer, FunctionTransformer) and transformer.func is None
            and transformer.inverse_func is None)


def _one_hot_weights(encoder, columns, coef, start):
    if encoder.drop is not None or getattr(encoder, "_infrequent_enabled", False):
        raise ValueError("OneHotEncoder with drop or infrequent categories is not supported")
    parts = []
    for column, categories in zip(columns, encoder.categories_):
        weights = coef[start:start + len(categories)]
        parts.append((column, tuple(categories.tolist()), weights.astype(np.float64)))
        start += len(categories)
    return parts, start, encoder.handle_unknown


def compile_logistic(pipeline) -> LinearScorer:
    """Fold a fitted ``ColumnTransformer -> LogisticRegression`` pipeline into a scorer.

    Supported transformers: ``OneHotEncoder`` (no ``drop``, no infrequent categories),
    ``StandardScaler`` and ``"passthrough"``; dropped columns are ignored. Columns must be
    named. Returns a :class:`LinearScorer`. A scaled column ``x`` contributes ``w (x - m) / s = (w / s) x - w m / s``: the
    weight is divided by the scale and ``w m / s`` moves into the intercept, so the scorer
    multiplies raw numbers. The probabilities equal the pipeline's up to floating-point
    rounding (a few units in the last place).

    Raises
    ------
    TypeError
        If ``pipeline`` is not such a pipeline, or holds an unsupported transformer.
    ValueError
        If it is not fitted, is not binary, or a column appears twice.
    """
    encode, model = _steps(pipeline)
    coef = model.coef_[0].astype(np.float64)
    intercept = float(model.intercept_[0])
    categorical, numeric, numeric_weights, start, handles = [], [], [], 0, set()
    for name, transformer, columns in encode.transformers_:
        if isinstance(transformer, str) and transformer == "drop" or len(columns) == 0:
            continue
        if not all(isinstance(c, str) for c in columns):
            raise TypeError(f"transformer {name!r}: columns must be given by name")
        if isinstance(transformer, OneHotEncoder):
            parts, start, handle = _one_hot_weights(transformer, columns, coef, start)
            categorical += parts
            handles.add("ignore" if handle == "ignore" else "error")
            continue
        if isinstance(transformer, StandardScaler):
            mean = transformer.mean_ if transformer.mean_ is not None else np.zeros(len(columns))
            scale = transformer.scale_ if transformer.scale_ is not None else np.ones(len(columns))
        elif _is_identity(transformer):  # "passthrough", as fitted
            mean, scale = np.zeros(len(columns)), np.ones(len(columns))
        else:
            raise TypeError(f"transformer {name!r}: {type(transformer).__name__} is not supported")
        weights = coef[start:start + len(columns)] / scale
        intercept -= math.fsum((weights * mean).tolist())
        numeric += list(columns)
        numeric_weights += weights.tolist()
        start += len(columns)
    names = [c for c, _, _ in categorical] + numeric
    if len(set(names)) != len(names):
        raise ValueError(f"a column appears twice in the pipeline: {names}")
    if start != len(coef):
        raise ValueError(f"the transformers give {start} features, the model has {len(coef)}")
    if len(handles) > 1:
        raise ValueError("the one-hot encoders disagree on handle_unknown")
    unknown = handles.pop() if handles else "error"
    return LinearScorer(np.array(intercept), tuple(categorical), tuple(numeric),
                        np.array(numeric_weights, dtype=np.float64), unknown)
