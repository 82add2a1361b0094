"""mlsd.models.compression: the compiled scorer equals its pipeline, float16 rounds only the
weights, distillation recovers a teacher it can represent, and bad input is named."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mlsd.models import notification_model as nm
from mlsd.models.compression import LinearScorer, compile_logistic, distil, model_bytes


def _frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], n),
        "hour": rng.integers(7, 24, n),
        "size": rng.normal(50, 10, n),
        "age": rng.exponential(300, n),
    })
    logit = (-1 + (X["colour"] == "red") * 0.8 - (X["hour"] >= 20) * 0.5
             + 0.03 * (X["size"] - 50) - 0.001 * X["age"])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _pipeline(numeric="scale", handle_unknown="ignore"):
    numbers = StandardScaler() if numeric == "scale" else "passthrough"
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown=handle_unknown), ["colour", "hour"]),
        (numbers, ["size", "age"]))
    return make_pipeline(encode, LogisticRegression(max_iter=1000))


@pytest.mark.parametrize("numeric", ["scale", "passthrough"])
def test_compiled_scorer_equals_the_pipeline(numeric):
    X, y = _frame()
    pipe = _pipeline(numeric).fit(X, y)
    scorer = compile_logistic(pipe)
    expected = pipe.predict_proba(X)[:, 1]
    np.testing.assert_allclose(scorer.probabilities(X), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scorer.decision_function(X), pipe.decision_function(X), atol=1e-10)
    rows = X.head(50).to_dict(orient="records")
    np.testing.assert_allclose([scorer.probability(r) for r in rows], expected[:50], atol=1e-12)
    np.testing.assert_allclose(scorer.probabilities(rows), expected[:50], atol=1e-12)
    assert scorer.n_weights == 1 + 3 + 17 + 2


def test_the_notification_model_compiles():
    X, y = _frame()
    X = X.rename(columns={"colour": "topic"})
    rng = np.random.default_rng(1)
    for column in ("platform", "favourite_topic"):
        X[column] = rng.choice(["a", "b"], len(X))
    for column in nm.NUMERIC:
        X[column] = rng.normal(size=len(X))
    pipe = nm.logistic_regression().fit(X[nm.FEATURES], y)
    scorer = compile_logistic(pipe)
    np.testing.assert_allclose(scorer.probabilities(X), pipe.predict_proba(X[nm.FEATURES])[:, 1],
                               atol=1e-12)


def test_float16_rounds_each_weight_and_nothing_else():
    X, y = _frame()
    scorer = compile_logistic(_pipeline().fit(X, y))
    half = scorer.astype(np.float16)
    assert half.dtype == np.float16 and half.n_weights == scorer.n_weights
    # by hand: the float64 scorer whose weights are the float16 values gives the same answer
    by_hand = LinearScorer(half.intercept.astype(np.float64),
                           tuple((c, cats, w.astype(np.float64)) for c, cats, w in half.categorical),
                           half.numeric, half.numeric_weights.astype(np.float64))
    np.testing.assert_array_equal(half.probabilities(X), by_hand.probabilities(X))
    # float16 keeps about three significant digits: the probabilities barely move
    assert np.abs(half.probabilities(X) - scorer.probabilities(X)).max() < 5e-3
    assert model_bytes(half) < model_bytes(scorer)


def test_pickling_ships_the_weights_not_the_lookup_tables():
    X, y = _frame()
    scorer = compile_logistic(_pipeline().fit(X, y))
    before = model_bytes(scorer)
    scorer.probability(X.iloc[0].to_dict())  # builds the cached tables
    assert model_bytes(scorer) == before
    again = pickle.loads(pickle.dumps(scorer))
    assert again.probability(X.iloc[0].to_dict()) == scorer.probability(X.iloc[0].to_dict())


def test_unseen_categories_follow_the_encoder():
    X, y = _frame()
    unseen = X.head(1).assign(colour="purple")
    ignore = compile_logistic(_pipeline().fit(X, y))
    assert ignore.unknown == "ignore"
    np.testing.assert_allclose(ignore.probabilities(unseen),
                               _pipeline().fit(X, y).predict_proba(unseen)[:, 1], atol=1e-12)
    strict = compile_logistic(_pipeline(handle_unknown="error").fit(X, y))
    with pytest.raises(ValueError, match="unseen category 'purple'"):
        strict.probabilities(unseen)
    with pytest.raises(ValueError, match="unseen category 'purple'"):
        strict.probability(unseen.iloc[0].to_dict())


def test_distillation_recovers_a_teacher_the_student_can_represent():
    X, y = _frame(6000)
    teacher = _pipeline().fit(X, y)
    p = teacher.predict_proba(X)[:, 1]
    student = distil(_pipeline(), X, p)
    # same model family, same regularisation: the student's probabilities are the teacher's
    np.testing.assert_allclose(student.predict_proba(X)[:, 1], p, atol=0.02)
    # a bare estimator (not a pipeline) takes the weights directly
    bare = distil(LogisticRegression(), X[["size", "age"]], p)
    assert bare.coef_.shape == (1, 2)


def test_distillation_transfers_what_a_boosted_teacher_learned():
    X, y = _frame(6000)
    encode = make_column_transformer((OrdinalEncoder(), ["colour"]),
                                     ("passthrough", ["hour", "size", "age"]))
    teacher = make_pipeline(encode, HistGradientBoostingClassifier(max_iter=50, random_state=0))
    p = teacher.fit(X, y).predict_proba(X)[:, 1]
    student = distil(_pipeline(), X, p)
    # the student tracks the teacher more closely than a model of the labels does
    on_labels = _pipeline().fit(X, y).predict_proba(X)[:, 1]
    assert np.mean((student.predict_proba(X)[:, 1] - p) ** 2) < np.mean((on_labels - p) ** 2)


def test_model_bytes_is_the_pickle_size():
    assert model_bytes([1, 2, 3]) == len(pickle.dumps([1, 2, 3], protocol=5))


@pytest.mark.parametrize("make, error, message", [
    (lambda: LogisticRegression().fit([[0], [1]], [0, 1]), TypeError, "Pipeline of two steps"),
    (lambda: make_pipeline(StandardScaler(), LogisticRegression()), TypeError, "ColumnTransformer"),
    (lambda: _pipeline(), ValueError, "not fitted"),
    (lambda: make_pipeline(make_column_transformer((OneHotEncoder(drop="first"), ["colour"])),
                           LogisticRegression()).fit(*_frame()), ValueError, "drop"),
    (lambda: make_pipeline(make_column_transformer((OrdinalEncoder(), ["colour"])),
                           LogisticRegression()).fit(*_frame()), TypeError, "OrdinalEncoder"),
    (lambda: make_pipeline(make_column_transformer((StandardScaler(), [2, 3])),
                           LogisticRegression()).fit(_frame()[0].to_numpy()[:, :],
                                                     _frame()[1]), TypeError, "by name"),
])
def test_unsupported_pipelines_are_named(make, error, message):
    with pytest.raises(error, match=message):
        compile_logistic(make())


def test_multiclass_is_refused():
    X, _ = _frame()
    y = np.arange(len(X)) % 3
    with pytest.raises(ValueError, match="binary"):
        compile_logistic(_pipeline().fit(X, y))


@pytest.mark.parametrize("p, error, message", [
    (np.full(10, 0.5)[:-1], ValueError, "9"),
    (np.r_[np.full(9, 0.5), 1.5], ValueError, r"\[0, 1\]"),
    (np.r_[np.full(9, 0.5), np.nan], ValueError, r"\[0, 1\]"),
    (np.array(["a"] * 10), ValueError, "numbers"),
])
def test_distil_checks_the_soft_labels(p, error, message):
    X, _ = _frame(10)
    with pytest.raises(error, match=message):
        distil(_pipeline(), X, p)
    with pytest.raises(TypeError, match="estimator"):
        distil(object(), X, np.full(10, 0.5))


def test_scorer_checks_its_inputs():
    X, y = _frame()
    scorer = compile_logistic(_pipeline().fit(X, y))
    with pytest.raises(ValueError, match="lacks the columns"):
        scorer.probabilities(X.drop(columns="age"))
    with pytest.raises(ValueError, match="float16, float32 or float64"):
        scorer.astype(np.int8)
    with pytest.raises(ValueError, match="unknown must be"):
        LinearScorer(scorer.intercept, scorer.categorical, scorer.numeric,
                     scorer.numeric_weights, unknown="maybe")
    with pytest.raises(ValueError, match="share one dtype"):
        LinearScorer(scorer.intercept.astype(np.float16), scorer.categorical, scorer.numeric,
                     scorer.numeric_weights)
