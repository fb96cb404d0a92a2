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

from numba_dense import NumbaDenseError  # noqa: E402
from numba_dense.model import MLPClassifier, MLPRegressor  # noqa: E402


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
    (dict(solver="newton"), "'solver' parameter must be one of 'sgd', 'adam', 'lbfgs'"),
    (dict(n_iter_no_change=-np.inf), "'n_iter_no_change' parameter must be an int"),
    (dict(n_iter_no_change=2.5), "'n_iter_no_change' parameter must be an int"),
    (dict(activation="swish"), "'activation' parameter must be one of"),
    (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes must be > 0"),
    (dict(learning_rate_init=0), "'learning_rate_init' parameter must be in the range"),
    (dict(beta_1=1.0), "'beta_1' parameter must be in the range"),
    (dict(dtype=np.int32), "'dtype' parameter must be None, float32 or float64"),
    # issue 20: what scikit-learn's own parameter validation refuses, refused here too (it
    # was accepted, or failed in NumPy with its own words)
    (dict(dtype="foo"), "'dtype' parameter must be None, float32 or float64; got 'foo'"),
    (dict(hidden_layer_sizes=(3.5,)), "hidden_layer_sizes must be integers > 0, got [3.5]."),
    (dict(hidden_layer_sizes="ab"), "'hidden_layer_sizes' parameter must be an array-like or an "
     "int in the range [1, inf); got 'ab'"),
    (dict(hidden_layer_sizes=(np.int64(4), np.int64(0))), "must be > 0, got [4, 0]."),
    (dict(random_state=-5), "'random_state' parameter must be an int in the range "
     "[0, 4294967295], an instance of 'numpy.random.RandomState' or None; got -5"),
    (dict(random_state=1.5), "'random_state' parameter must be an int"),
    (dict(shuffle="False"), "The 'shuffle' parameter must be True or False; got 'False'"),
    (dict(early_stopping="no"), "The 'early_stopping' parameter must be True or False"),
    (dict(warm_start="no"), "The 'warm_start' parameter must be True or False"),
    (dict(nesterovs_momentum=None), "The 'nesterovs_momentum' parameter must be True or False"),
    (dict(verbose="no"), "The 'verbose' parameter must be an int >= 0 or True or False"),
    (dict(alpha=np.float64(-1)), "The 'alpha' parameter must be in the range [0, inf); got -1.0"),
])
def test_bad_parameters_are_refused_at_fit(regression, kwargs, message):
    X, y = regression
    with pytest.raises(ValueError) as info:
        MLPRegressor(**kwargs).fit(X, y)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_momentum_of_1_is_refused_for_sgd_and_ignored_otherwise(regression):
    X, y = regression
    with pytest.raises(ValueError) as info:
        MLPRegressor(solver="sgd", momentum=1.0, max_iter=2).fit(X, y)
    assert str(info.value) == ("momentum must be < 1 for solver='sgd' (numba-dense's velocity "
                               "would never decay; scikit-learn's range [0, 1] includes 1), "
                               "got 1.0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        # scikit-learn ignores the options of the other solver: so does the estimator
        MLPRegressor(solver="adam", momentum=1.0, nesterovs_momentum=True, max_iter=2).fit(X, y)
        MLPRegressor(solver="sgd", beta_1=0.5, beta_2=0.9, epsilon=1e-3, max_iter=2).fit(X, y)


def test_a_missing_label_is_refused_in_scikit_learns_words():
    X = np.random.default_rng(0).standard_normal((6, 2))
    # scikit-learn's own fit fails in np.unique: "'<' not supported between ... 'NoneType'"
    with pytest.raises(ValueError, match="^Input y contains None.$"):
        MLPClassifier(max_iter=2).fit(X, ["a", None, "b", "a", "b", "a"])


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_stays_sparse_and_matches_dense(monkeypatch, solver):
    """A SciPy sparse X (CSR, or CSC as it is) trains through the kernels' CSR path, never
    made dense (a dense copy would be refused here), and gives what the same rows dense
    give, up to rounding; a one-hot X of many columns is what this is for."""
    sparse = pytest.importorskip("scipy.sparse")
    from numba_dense.model.data import validation
    rng = np.random.default_rng(0)
    X = sparse.random(80, 30, density=0.1, format="csr", random_state=0, dtype=np.float64)
    y = X @ rng.standard_normal(30)
    params = dict(hidden_layer_sizes=(5,), solver=solver, max_iter=20, random_state=0,
                  shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense_est = MLPRegressor(**params).fit(X.toarray(), y)
        monkeypatch.setattr(validation, "SPARSE_MAX_BYTES", 100)
        sparse_est = MLPRegressor(**params).fit(X.tocsc(), y)
    np.testing.assert_allclose(sparse_est.predict(X), dense_est.predict(X.toarray()),
                               rtol=1e-7, atol=1e-9)
    assert sparse_est.loss_ == pytest.approx(dense_est.loss_, rel=1e-7)


# ----------------------------------------------------------------------------- divergence

@pytest.fixture(scope="module")
def targets_in_the_tens():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 5))
    return X, 30 + 10 * X @ rng.standard_normal(5)


SKLEARN_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may "
                      "contain large values and need to be preprocessed.")


# lr=1 with momentum: the loss itself overflows (numba-dense's epoch loop raises
# DivergedError); lr=0.1 without: the loss stays finite but the validation predictions
# overflow float32 (r2_score raised "Input contains infinity"). Both as scikit-learn: a NaN
# validation score, training goes on, the best weights come back at the end.
@pytest.mark.parametrize("lr, momentum", [(1.0, 0.9), (0.1, 0.0)])
def test_early_stopping_goes_on_through_a_diverged_epoch(targets_in_the_tens, lr, momentum):
    X, y = targets_in_the_tens
    diverged = 0
    for seed in range(6):
        est = MLPRegressor(solver="sgd", momentum=momentum, learning_rate_init=lr,
                           early_stopping=True, max_iter=30, random_state=seed)
        with np.errstate(all="ignore"):
            quiet(est.fit, X, y)
        scores = np.array(est.validation_scores_)
        assert len(scores) == est.n_iter_
        if np.isnan(scores).any():
            diverged += 1
            # scikit-learn's rule: a NaN score is no "no improvement", so no early stop.
            assert est.n_iter_ == 30 and np.isnan(est.loss_curve_[-1])
        assert est.best_validation_score_ == max(scores[~np.isnan(scores)], default=-np.inf)
        assert all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)
        assert np.isfinite(est.predict(X)).all()
    assert diverged >= 3


def test_diverging_without_early_stopping_raises_scikit_learns_value_error(targets_in_the_tens):
    from sklearn.neural_network import MLPRegressor as SkMLP
    X, y = targets_in_the_tens
    kwargs = dict(solver="sgd", momentum=0.9, learning_rate_init=1.0, max_iter=20)
    with np.errstate(all="ignore"), pytest.raises(ValueError) as theirs:
        quiet(SkMLP(random_state=0, **kwargs).fit, X, y)
    assert str(theirs.value) == SKLEARN_NON_FINITE
    for seed in range(4):
        est = MLPRegressor(random_state=seed, **kwargs)
        with pytest.raises(ValueError) as ours:
            quiet(est.fit, X, y)
        assert isinstance(ours.value, ValueError) and str(ours.value) == SKLEARN_NON_FINITE
        assert isinstance(ours.value, NumbaDenseError)  # and catchable as ours
        assert est.n_iter_ == 20 and np.isnan(est.loss_curve_[-1])  # trained on, as theirs
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        est.partial_fit(X, y)  # the weights stay NaN, as scikit-learn's
    assert est.n_iter_ == 21


# ----------------------------------------------------------------------------- coefs_

def forward(est, X):
    """The regressor's output computed from its coefs_ and intercepts_ (relu hidden)."""
    h = X
    for i, (W, b) in enumerate(zip(est.coefs_, est.intercepts_)):
        h = h @ W.astype(np.float64) + b
        if i < len(est.coefs_) - 1:
            h = np.maximum(h, 0)
    return h.ravel()


@pytest.fixture()
def small_regressor(regression):
    X, y = regression
    X = StandardScaler().fit_transform(X)
    est = quiet(MLPRegressor(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                             dtype=np.float32).fit, X, y)
    return est, X, y


def test_assigned_coefs_and_intercepts_are_what_predict_uses(small_regressor):
    est, X, y = small_regressor
    rng = np.random.default_rng(3)
    before = est.predict(X)
    est.coefs_[1] = rng.standard_normal((8, 1))          # item assignment, float64 in
    assert est.coefs_[1].dtype == np.float32
    np.testing.assert_allclose(est.predict(X), forward(est, X), rtol=1e-4, atol=1e-4)
    assert not np.allclose(est.predict(X), before)
    est.coefs_ = [rng.standard_normal((6, 8)), rng.standard_normal((8, 1)).tolist()]
    est.intercepts_ = [np.ones(8), [0.5]]                 # whole lists, nested lists too
    assert est.intercepts_[1][0] == 0.5
    np.testing.assert_allclose(est.predict(X), forward(est, X), rtol=1e-4, atol=1e-4)
    est.intercepts_[1] += 2.0                              # in place, then stored back
    est.coefs_[0][:, 1:] = 0                               # in-place write into the array
    expected = forward(est, X)
    np.testing.assert_allclose(est.predict(X), expected, rtol=1e-4, atol=1e-4)
    from sklearn.metrics import r2_score
    assert est.score(X, y) == pytest.approx(r2_score(y, expected), rel=1e-4)
    est.coefs_ = [np.zeros((6, 8)), np.zeros((8, 1))]
    np.testing.assert_array_equal(est.predict(X), np.full(len(X), 2.5, np.float32))


def test_bad_coefs_assignments_are_refused_and_change_nothing(small_regressor):
    est, X, y = small_regressor
    before = est.predict(X)
    with pytest.raises(ValueError, match=r"^coefs_ must be a list of 2 arrays \(one per "
                                         r"layer\), got 1$"):
        est.coefs_ = [np.zeros((6, 8))]
    with pytest.raises(ValueError, match=r"^coefs_\[1\] must have shape \(8, 1\), got "
                                         r"\(1, 8\)$"):
        est.coefs_ = [np.zeros((6, 8)), np.zeros((1, 8))]  # the first is not written either
    with pytest.raises(ValueError, match=r"^intercepts_\[0\] must have shape \(8,\), got "
                                         r"\(3,\)$"):
        est.intercepts_[0] = np.zeros(3)
    with pytest.raises(IndexError):
        est.coefs_[2] = np.zeros((8, 1))
    with pytest.raises(TypeError, match="one array per layer"):
        est.coefs_.append(np.zeros((1, 1)))
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(AttributeError, match="not fitted"):
        MLPRegressor().coefs_ = [np.zeros((6, 8)), np.zeros((8, 1))]


def test_warm_start_and_partial_fit_start_from_assigned_weights_as_scikit_learn(classes):
    """Weights assigned to both estimators (three ways into ours): the same next steps."""
    from sklearn.neural_network import MLPClassifier as SkMLP
    X, y = classes
    kwargs = dict(hidden_layer_sizes=(6,), solver="sgd", max_iter=3, random_state=5,
                  shuffle=False, alpha=0.0, warm_start=True, learning_rate_init=0.05)
    rng = np.random.default_rng(7)
    new = [rng.uniform(-0.5, 0.5, s) for s in [(4, 6), (6, 3), (6,), (3,)]]
    for continue_training in ("fit", "partial_fit"):
        ours = quiet(MLPClassifier(dtype=np.float64, **kwargs).fit, X, y)
        theirs = quiet(SkMLP(**kwargs).fit, X, y)
        ours.coefs_ = new[:2]
        ours.intercepts_[0] = new[2]
        ours.intercepts_[1][...] = new[3]
        theirs.coefs_ = [a.copy() for a in new[:2]]
        theirs.intercepts_ = [a.copy() for a in new[2:]]
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
        for _ in range(2):
            quiet(getattr(ours, continue_training), X, y)
            quiet(getattr(theirs, continue_training), X, y)
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_coefs_lists_copy_and_pickle_as_plain_lists(small_regressor):
    import copy
    import pickle
    est, X, y = small_regressor
    est.coefs_[0] = np.ones((6, 8))
    saved = copy.deepcopy(est.coefs_)
    assert type(saved) is list and type(pickle.loads(pickle.dumps(est.coefs_))) is list
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))
    again.coefs_[1] = np.zeros((8, 1))                    # still the network's own views
    np.testing.assert_array_equal(again.predict(X), np.full(len(X), again.intercepts_[1][0]))
    np.testing.assert_array_equal(est.coefs_[0], saved[0])  # the original is untouched
    assert not hasattr(clone(est), "coefs_")


# ----------------------------------------------------------------------------- lbfgs

@pytest.fixture(scope="module")
def diabetes():
    from sklearn.datasets import load_diabetes
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std()


@pytest.mark.parametrize("max_iter", [1, 5])
def test_lbfgs_takes_scikit_learns_first_steps(diabetes, max_iter):
    # Same start (scikit-learn's Glorot-uniform from the same random state), same objective
    # and gradient: L-BFGS-B takes the same first steps. A different objective would differ
    # here in the fifth digit or before: the L2 term on the intercepts too, or, with these
    # two outputs, the gradient of the squared error averaged over the outputs (scikit-learn
    # reports that average but steps on the gradient of their sum).
    from sklearn.neural_network import MLPRegressor as Theirs
    X, y = diabetes
    Y = np.column_stack([y, X[:, 2]])
    kwargs = dict(hidden_layer_sizes=(8, 4), activation="tanh", solver="lbfgs", alpha=0.1,
                  max_iter=max_iter, random_state=0)
    ours = quiet(MLPRegressor(**kwargs).fit, X, Y)
    theirs = quiet(Theirs(**kwargs).fit, X, Y)
    assert ours.n_iter_ == theirs.n_iter_ == max_iter
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-10)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_lbfgs_converges_to_scikit_learns_loss(diabetes):
    from sklearn.neural_network import MLPRegressor as Theirs
    X, y = diabetes
    kwargs = dict(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", alpha=0.1,
                  max_iter=3000, tol=1e-10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # both converge
        ours = MLPRegressor(**kwargs).fit(X, y)
        theirs = Theirs(**kwargs).fit(X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    assert ours.n_iter_ > 100
    # scikit-learn's lbfgs leaves no loss curve and no stochastic solver's bookkeeping
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        assert not hasattr(ours, name) and not hasattr(theirs, name)


def test_lbfgs_warns_when_max_iter_ends_it_and_warm_start_continues(diabetes):
    X, y = diabetes
    est = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3, random_state=0,
                       warm_start=True)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge after 3"):
        est.fit(X, y)
    first = est.loss_
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    assert est.n_iter_ == 3 and est.loss_ < first
    with pytest.raises(AttributeError, match="partial_fit"):
        est.partial_fit(X, y)


def test_lbfgs_classifier_binary_multiclass_and_multilabel():
    from sklearn.neural_network import MLPClassifier as Theirs
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 4))
    targets = [X[:, 0] > 0, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5),
               np.column_stack([X[:, 0] > 0, X[:, 1] > 0])]
    for y in targets:
        kwargs = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=4, random_state=1,
                      alpha=1e-2)
        ours = quiet(MLPClassifier(**kwargs).fit, X, y)
        theirs = quiet(Theirs(**kwargs).fit, X, y)
        assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)


# ----------------------------------------------------------------------------- dtype

@pytest.mark.parametrize("given, dtype, trained", [
    (np.float32, None, np.float32), (np.float64, None, np.float64),
    (np.int64, None, np.float64), (np.float64, np.float32, np.float32),
    (np.float32, np.float64, np.float64)])
def test_parameters_take_the_inputs_float_dtype_unless_dtype_is_given(given, dtype, trained):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((40, 3)) * 3).astype(given)
    y = X[:, 0] if given == np.float64 else X[:, 0].astype(np.float64)  # a strided view too
    est = quiet(MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype).fit, X, y)
    assert all(a.dtype == trained for a in est.coefs_ + est.intercepts_)
    assert est.predict(X.astype(np.float64)).shape == (40,)


# ----------------------------------------------------------------------------- sample_weight

@pytest.fixture(scope="module")
def weighted_rows():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((50, 3))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(50)
    w = rng.integers(0, 4, 50)
    return X, y, w


def test_integer_weights_equal_repeated_rows_lbfgs(weighted_rows):
    X, y, w = weighted_rows
    kwargs = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.01, max_iter=50,
                  random_state=0)
    weighted = quiet(MLPRegressor(**kwargs).fit, X, y, sample_weight=w)
    repeated = quiet(MLPRegressor(**kwargs).fit, np.repeat(X, w, axis=0), np.repeat(y, w))
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-8)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-6,
                               atol=1e-8)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_integer_weights_equal_repeated_rows_one_minibatch(weighted_rows, solver):
    # One minibatch (batch_size "auto": every row, under 200) in storage order: the weighted
    # mean over the rows is the mean over the repeated rows, step for step.
    X, y, w = weighted_rows
    kwargs = dict(hidden_layer_sizes=(6,), solver=solver, alpha=0.01, max_iter=30,
                  shuffle=False, random_state=0, learning_rate_init=0.01, dtype=np.float64)
    weighted = quiet(MLPRegressor(**kwargs).fit, X, y, sample_weight=w)
    repeated = quiet(MLPRegressor(**kwargs).fit, np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(weighted.predict(X), repeated.predict(X), rtol=1e-9,
                               atol=1e-12)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_weights_of_ones_equal_no_weights(classes, solver, early_stopping):
    X, y = classes
    if solver == "lbfgs" and early_stopping:
        pytest.skip("lbfgs does not use early stopping")
    kwargs = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=10, random_state=0,
                  early_stopping=early_stopping)
    weighted = quiet(MLPClassifier(**kwargs).fit, X, y, sample_weight=np.ones(len(y)))
    plain = quiet(MLPClassifier(**kwargs).fit, X, y)
    np.testing.assert_allclose(weighted.predict_proba(X), plain.predict_proba(X), rtol=1e-6)
    assert weighted.loss_ == pytest.approx(plain.loss_, rel=1e-6)
    if early_stopping:
        np.testing.assert_allclose(weighted.validation_scores_, plain.validation_scores_)


def test_sample_weight_in_partial_fit_and_validation(classes):
    X, y = classes
    w = np.where(y == "setosa", 2.0, 1.0)
    clf = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    clf.partial_fit(X, y, w, classes=np.unique(y))
    clf.partial_fit(X, y, sample_weight=w)
    assert clf.n_iter_ == 2
    with pytest.raises(ValueError, match="sample_weight"):
        clf.partial_fit(X, y, sample_weight=w[:-1])


# ----------------------------------------------------------------------------- poisson

def test_poisson_loss_is_scikit_learns_half_deviance():
    from sklearn.neural_network import MLPRegressor as Theirs
    rng = np.random.default_rng(42)
    X = np.linspace(0, 1, 100).reshape(-1, 1)
    y = rng.poisson(np.exp(X[:, 0] + 1)).astype(float)
    kwargs = dict(loss="poisson", hidden_layer_sizes=(3,), activation="tanh", solver="lbfgs",
                  alpha=1e-3, max_iter=5, random_state=0)
    ours = quiet(MLPRegressor(**kwargs).fit, X, y)
    theirs = quiet(Theirs(**kwargs).fit, X, y)
    assert ours.out_activation_ == "exp"
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7)
    adam = quiet(MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=3,
                              random_state=0).fit, X, y)
    pred = adam.predict(X)
    assert (pred > 0).all() and np.isfinite(adam.loss_)
    with pytest.raises(ValueError, match="out of the valid range of the loss"):
        MLPRegressor(loss="poisson").fit(X, y - 5)
    with pytest.raises(ValueError, match="'loss' parameter must be one of"):
        MLPRegressor(loss="hinge").fit(X, y)


def test_diverged_error_is_also_a_value_error():
    from numba_dense.model.training.loop import DivergedError
    assert issubclass(DivergedError, ValueError)
    assert issubclass(DivergedError, FloatingPointError)
    assert issubclass(DivergedError, NumbaDenseError)
