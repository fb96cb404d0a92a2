"""model.MLPRegressor / MLPClassifier: scikit-learn's own estimator checks, drop-in use,
and parity with scikit-learn's MLPs."""

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from model import MLPClassifier, MLPRegressor  # noqa: E402


# The settings scikit-learn checks its own MLPs with (max_iter=100); every check runs, and none
# is expected to fail (scikit-learn's own MLPs declare no expected failures either).
@parametrize_with_checks([MLPRegressor(max_iter=100),
                          MLPClassifier(max_iter=100)])
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ----------------------------------------------------------------------------- drop-in use

@pytest.fixture(scope="module")
def regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 6)) * [1, 10, 100, 1, 1, 1]
    return X, X[:, 0] - 0.02 * X[:, 1] + 0.005 * X[:, 2] + 0.1 * rng.standard_normal(400)


@pytest.fixture(scope="module")
def classes():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4))
    labels = np.array(["setosa", "versicolor", "virginica"])
    return X, labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def test_pipeline_with_standard_scaler(regression):
    X, y = regression
    pipe = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,),
                                                        max_iter=300, random_state=0))
    quiet(pipe.fit, X, y)
    assert pipe.score(X, y) > 0.9


def test_grid_search_over_learning_rate_and_alpha(regression):
    X, y = regression
    grid = GridSearchCV(make_pipeline(StandardScaler(),
                                      MLPRegressor(hidden_layer_sizes=(8,), max_iter=50,
                                                   random_state=0)),
                        {"mlpregressor__learning_rate_init": [1e-3, 1e-2],
                         "mlpregressor__alpha": [1e-4, 1e-1]}, cv=2)
    quiet(grid.fit, X, y)
    assert grid.best_params_["mlpregressor__learning_rate_init"] == 1e-2
    assert len(grid.cv_results_["params"]) == 4


def test_clone_copies_every_setting_and_no_fitted_state(regression):
    X, y = regression
    est = MLPRegressor(hidden_layer_sizes=(5, 3), solver="sgd", learning_rate_init=0.05,
                       alpha=0.01, dtype=np.float64, random_state=3, max_iter=5)
    quiet(est.fit, X / 100, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_") and not hasattr(copy, "n_iter_")


def test_string_labels_and_the_fitted_attributes(classes):
    X, y = classes
    clf = quiet(MLPClassifier(hidden_layer_sizes=(20,), max_iter=300, random_state=0).fit, X, y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    assert set(clf.predict(X)) <= set(clf.classes_) and clf.score(X, y) > 0.9
    P = clf.predict_proba(X)
    assert P.shape == (300, 3) and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P), rtol=1e-6)
    assert clf.out_activation_ == "softmax" and clf.n_outputs_ == 3 and clf.n_layers_ == 3
    assert [c.shape for c in clf.coefs_] == [(4, 20), (20, 3)]
    assert [b.shape for b in clf.intercepts_] == [(20,), (3,)]
    assert clf.n_iter_ == len(clf.loss_curve_) and clf.t_ == 300 * clf.n_iter_
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ <= clf.loss_
    assert clf.n_features_in_ == 4


def test_binary_and_multilabel_targets():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 3))
    yes_no = np.where(X[:, 0] > 0, "yes", "no")
    clf = quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=200, random_state=0,
                              learning_rate_init=0.01).fit, X, yes_no)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert clf.predict_proba(X).shape == (200, 2) and clf.score(X, yes_no) > 0.9
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 0]).astype(int)
    multi = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0,
                                learning_rate_init=0.01).fit, X, Y)
    assert multi.predict(X).shape == (200, 3) and multi.predict_proba(X).shape == (200, 3)
    assert multi.score(X, Y) > 0.8


def test_dataframes_in_with_feature_names(regression):
    pd = pytest.importorskip("pandas")
    X, y = regression
    frame = pd.DataFrame(X / X.std(axis=0), columns=["a", "b", "c", "d", "e", "f"])
    est = quiet(MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit,
                frame, pd.Series(y))
    assert list(est.feature_names_in_) == ["a", "b", "c", "d", "e", "f"]
    assert est.predict(frame).shape == (400,)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(frame.rename(columns={"a": "z"}))


def test_partial_fit_and_warm_start_continue_training(classes):
    X, y = classes
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X[:150], y[:150], classes=np.unique(y))
    first = clf.loss_
    for _ in range(20):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 21 and clf.loss_ < first
    warm = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    quiet(warm.fit, X, y)
    before = [c.copy() for c in warm.coefs_]
    quiet(warm.fit, X, y)  # continues from the fitted weights
    assert warm.loss_curve_[-1] < warm.loss_curve_[4] and len(warm.loss_curve_) == 10
    assert not np.array_equal(before[0], warm.coefs_[0])


def test_early_stopping_records_validation_scores(regression):
    X, y = regression
    est = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, n_iter_no_change=3,
                       max_iter=500, random_state=0, learning_rate_init=0.01)
    quiet(est.fit, StandardScaler().fit_transform(X), y)
    assert est.n_iter_ < 500 and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_sgd_learning_rate_schedules_follow_scikit_learn(regression, schedule):
    from sklearn.neural_network import MLPRegressor as SkMLP
    X, y = regression
    X = StandardScaler().fit_transform(X)
    kwargs = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate=schedule,
                  learning_rate_init=0.05, max_iter=60, random_state=0, n_iter_no_change=2,
                  tol=1e-3, shuffle=False, alpha=0.0)
    ours = quiet(MLPRegressor(dtype=np.float64, **kwargs).fit, X, y)
    theirs = quiet(SkMLP(**kwargs).fit, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)


def test_same_start_as_scikit_learn_gives_the_same_model(classes):
    """Seeded, float64, one sgd epoch: the same initial weights and the same steps."""
    from sklearn.neural_network import MLPClassifier as SkMLP
    X, y = classes
    kwargs = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=3, random_state=5,
                  shuffle=False, alpha=0.0)
    ours = quiet(MLPClassifier(dtype=np.float64, **kwargs).fit, X, y)
    theirs = quiet(SkMLP(**kwargs).fit, X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)


@pytest.mark.parametrize("kwargs, message", [
    (dict(solver="lbfgs"), "solver='lbfgs' is not offered"),
    (dict(activation="gelu"), "'activation' parameter must be one of"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes must be > 0"),
    (dict(learning_rate_init=0), "'learning_rate_init' parameter must be in the range"),
    (dict(beta_1=1.0), "'beta_1' parameter must be in the range"),
    (dict(dtype=np.int32), "'dtype' parameter must be float32 or float64"),
])
def test_bad_parameters_are_refused_at_fit(regression, kwargs, message):
    X, y = regression
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        MLPRegressor(**kwargs).fit(X, y)
