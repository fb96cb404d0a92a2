"""model.GridSearchCV / RandomizedSearchCV: scikit-learn's searches, our fits on threads.

With the same splits they report scikit-learn's numbers exactly (the same code computes
them); the fits of numba-dense's estimators run on threads of this process with one BLAS
thread each; other estimators are searched as scikit-learn searches them.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import model_selection as skl  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import numba_dense  # noqa: E402
from numba_dense.kernels.threads import current_blas_threads, usable_cores  # noqa: E402
from numba_dense.model import GridSearchCV, MLPClassifier, MLPRegressor, RandomizedSearchCV  # noqa: E402,E501
from numba_dense.model.interfaces import search  # noqa: E402
from numba_dense.model.training import signals  # noqa: E402

GRID = {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 1e-1]}


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return X, (y - y.mean()) / y.std()


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _regressor(**kw):
    return MLPRegressor(**dict(dict(hidden_layer_sizes=(16,), max_iter=15, random_state=0),
                               **kw))


def _same_results(a, b):
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key], err_msg=key)
    for k in range(a.n_splits_):
        key = "split%d_test_score" % k
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key], err_msg=key)
    assert a.cv_results_["params"] == b.cv_results_["params"]


def test_exported_at_the_top_level():
    assert numba_dense.GridSearchCV is GridSearchCV
    assert numba_dense.model.RandomizedSearchCV is RandomizedSearchCV
    assert issubclass(GridSearchCV, skl.GridSearchCV)
    assert issubclass(RandomizedSearchCV, skl.RandomizedSearchCV)


def test_grid_search_equals_scikit_learns_over_the_same_estimator(diabetes):
    X, y = diabetes
    cv = KFold(3, shuffle=True, random_state=0)
    theirs = skl.GridSearchCV(_regressor(), GRID, cv=cv, n_jobs=1).fit(X, y)
    ours = GridSearchCV(_regressor(), GRID, cv=cv, n_jobs=2).fit(X, y)
    _same_results(ours, theirs)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], rtol=1e-12)
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == theirs.best_score_
    assert ours.n_threads_ == 2 and theirs.n_splits_ == ours.n_splits_ == 3
    # the refit best estimator is the same network
    np.testing.assert_array_equal(ours.best_estimator_.predict(X),
                                  theirs.best_estimator_.predict(X))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.score(X, y) == theirs.score(X, y)


def test_one_thread_and_two_give_identical_results(diabetes):
    X, y = diabetes
    cv = KFold(3, shuffle=True, random_state=1)
    one = GridSearchCV(_regressor(), GRID, cv=cv, n_jobs=1, return_train_score=True).fit(X, y)
    two = GridSearchCV(_regressor(), GRID, cv=cv, n_jobs=2, return_train_score=True).fit(X, y)
    _same_results(one, two)
    np.testing.assert_array_equal(one.cv_results_["mean_train_score"],
                                  two.cv_results_["mean_train_score"])
    assert one.best_params_ == two.best_params_
    assert one.n_threads_ == 1 and two.n_threads_ == 2


class _Recording(MLPRegressor):
    """An MLPRegressor that notes the thread and the BLAS limit of each fit."""

    seen = []

    def fit(self, X, y, sample_weight=None):
        _Recording.seen.append((threading.current_thread().name,
                                current_blas_threads()))
        return super().fit(X, y, sample_weight=sample_weight)


def test_fits_run_on_threads_with_one_blas_thread_and_the_refit_does_not(diabetes):
    X, y = diabetes
    _Recording.seen = []
    before = current_blas_threads()
    search = GridSearchCV(_Recording(hidden_layer_sizes=(8,), max_iter=5, random_state=0),
                          {"alpha": [1e-4, 1e-3]}, cv=3, n_jobs=2).fit(X, y)
    assert search.n_threads_ == 2
    fits, refit = _Recording.seen[:-1], _Recording.seen[-1]
    assert len(fits) == 6
    assert all(name != threading.main_thread().name for name, _ in fits)
    if before is not None:
        assert all(blas == 1 for _, blas in fits)
        assert refit == (threading.main_thread().name, before)
        assert current_blas_threads() == before


def test_n_jobs_none_means_the_usable_cores(diabetes):
    X, y = diabetes
    search = GridSearchCV(_regressor(max_iter=2), {"alpha": [1e-4]}, cv=2).fit(X, y)
    assert search.n_threads_ == usable_cores()
    assert GridSearchCV(_regressor(), GRID).cv == 5


def test_classifier_with_integer_cv_equals_scikit_learns():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    grid = {"learning_rate_init": [1e-3, 1e-2], "alpha": [1e-4, 1e-1]}
    theirs = skl.GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X, y)  # StratifiedKFold
    ours = GridSearchCV(est, grid, cv=3, n_jobs=2).fit(X, y)
    _same_results(ours, theirs)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))


def test_in_a_pipeline(diabetes):
    X, y = load_diabetes(return_X_y=True)
    y = (y - y.mean()) / y.std()
    pipe = make_pipeline(StandardScaler(), _regressor())
    grid = {"mlpregressor__alpha": [1e-4, 1e-1], "mlpregressor__learning_rate_init": [1e-2]}
    cv = KFold(3, shuffle=True, random_state=0)
    theirs = skl.GridSearchCV(pipe, grid, cv=cv, n_jobs=1).fit(X, y)
    ours = GridSearchCV(pipe, grid, cv=cv, n_jobs=2).fit(X, y)
    assert ours.n_threads_ == 2  # the pipeline holds one of ours: threads
    _same_results(ours, theirs)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_a_failing_candidate_is_scored_by_error_score(diabetes):
    X, y = diabetes
    est = _regressor(solver="sgd")
    grid = {"momentum": [0.9, 1.0]}  # 1.0 is refused at fit with solver="sgd"
    cv = KFold(3, shuffle=True, random_state=0)
    with pytest.warns(FitFailedWarning, match="3 fits failed"):
        ours = GridSearchCV(est, grid, cv=cv, n_jobs=2).fit(X, y)
    with pytest.warns(FitFailedWarning):
        theirs = skl.GridSearchCV(est, grid, cv=cv, n_jobs=1).fit(X, y)
    assert np.isnan(ours.cv_results_["mean_test_score"][1])
    _same_results(ours, theirs)
    assert ours.best_params_ == {"momentum": 0.9}
    with pytest.warns(FitFailedWarning):
        low = GridSearchCV(est, grid, cv=cv, n_jobs=2, error_score=-7.0).fit(X, y)
    assert low.cv_results_["mean_test_score"][1] == -7.0
    with pytest.raises(ValueError, match="momentum must be < 1"):
        GridSearchCV(est, grid, cv=cv, n_jobs=2, error_score="raise").fit(X, y)


def test_randomized_search_equals_scikit_learns(diabetes):
    X, y = diabetes
    cv = KFold(3, shuffle=True, random_state=0)
    dist = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], "learning_rate_init": [1e-3, 3e-3, 1e-2]}
    theirs = skl.RandomizedSearchCV(_regressor(), dist, n_iter=3, cv=cv, random_state=0,
                                    n_jobs=1).fit(X, y)
    ours = RandomizedSearchCV(_regressor(), dist, n_iter=3, cv=cv, random_state=0,
                              n_jobs=2).fit(X, y)
    _same_results(ours, theirs)
    assert ours.best_params_ == theirs.best_params_ and ours.n_threads_ == 2


def test_other_estimators_are_searched_as_scikit_learn_searches_them(diabetes):
    X, y = diabetes
    ours = GridSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, cv=3).fit(X, y)
    theirs = skl.GridSearchCV(Ridge(), {"alpha": [0.1, 10.0]}, cv=3).fit(X, y)
    assert ours.n_threads_ is None
    _same_results(ours, theirs)


def test_bad_arguments_are_one_line_errors_naming_them(diabetes):
    X, y = diabetes
    with pytest.raises(numba_dense.InvalidValueError,
                       match=r"^param_grid: 'lerning_rate' is not a parameter of MLPRegressor"
                             r".*\balpha\b") as info:
        GridSearchCV(_regressor(), {"learning_rate": ["constant"], "lerning_rate": [1]},
                     cv=2).fit(X, y)
    assert "\n" not in str(info.value)
    # in a pipeline: the step's own parameters, not the pipeline's
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    with pytest.raises(numba_dense.InvalidValueError,
                       match=r"^param_grid: 'mlpregressor__lerning': 'lerning' is not a "
                             r"parameter of MLPRegressor, "
                             r"Pipeline's 'mlpregressor' \(its parameters: .*\balpha\b"):
        GridSearchCV(make_pipeline(StandardScaler(), _regressor()),
                     {"mlpregressor__lerning": [1]}, cv=2).fit(X, y)
    with pytest.raises(numba_dense.InvalidValueError,
                       match=r"^param_grid: 'bogus' is not a parameter of Pipeline \(its "
                             r"parameters: .*\bmlpregressor\b"):
        GridSearchCV(make_pipeline(StandardScaler(), _regressor()), {"bogus": [1]},
                     cv=2).fit(X, y)
    with pytest.raises(numba_dense.InvalidValueError, match="param_grid: 'mlpregressor__alfa'"):
        GridSearchCV(make_pipeline(StandardScaler(), _regressor()),
                     {"mlpregressor__alfa": [1.0]}, cv=2).fit(X, y)
    with pytest.raises(numba_dense.InvalidValueError, match="param_distributions: 'beta'"):
        RandomizedSearchCV(_regressor(), {"beta": [1.0]}, cv=2).fit(X, y)
    with pytest.raises(numba_dense.InvalidValueError, match="n_jobs must be None, -1 or a "
                                                            "thread count >= 1, got 0"):
        GridSearchCV(_regressor(), GRID, cv=2, n_jobs=0).fit(X, y)
    with pytest.raises(ValueError, match="'cv' parameter"):  # scikit-learn's own check
        GridSearchCV(_regressor(), GRID, cv=1).fit(X, y)
    with pytest.raises(TypeError, match="needs to be a list"):
        GridSearchCV(_regressor(), {"alpha": 0.1}, cv=2).fit(X, y)


_CTRL_C_SEARCH = r"""
import os, signal, sys, threading, time, warnings
import numpy as np
from sklearn.datasets import load_diabetes
from numba_dense.model import GridSearchCV, MLPRegressor
X, y = load_diabetes(return_X_y=True)
X, y = np.tile((X - X.mean(0)) / X.std(0), (20, 1)), np.tile((y - y.mean()) / y.std(), 20)
warnings.simplefilter("ignore")
est = MLPRegressor(hidden_layer_sizes=(32,), max_iter=1, tol=0.0, n_iter_no_change=10**9,
                   random_state=0)
GridSearchCV(est, {"alpha": [1e-4]}, cv=2, n_jobs=1).fit(X, y)  # compiled or loaded
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.perf_counter()
try:
    GridSearchCV(est.set_params(max_iter=100_000), {"alpha": [1e-4, 1e-1]}, cv=2,
                 n_jobs=int(sys.argv[1])).fit(X, y)
except KeyboardInterrupt:
    print("stopped after %.1f s" % (time.perf_counter() - start))
"""


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ctrl_c_stops_a_search_in_a_program_of_its_own(n_jobs):
    """As a user meets it: a script's search, a real SIGINT a second in. With n_jobs=1 the
    fits run on the calling thread, whose estimator re-raises a search's stop. (On a loaded
    machine this search once ran on after the signal: the search's handler was not held by
    the epoch's bookkeeping block, and an interrupt landing inside it became an
    UnboundLocalError that error_score swallowed; see the two tests below.)"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        # The script times the stop itself; the timeout only ends a search that never
        # stops, and leaves room for a first run that compiles the estimator's kernels
        # (over two minutes when CI's other worker is compiling too).
        out = subprocess.run([sys.executable, "-c", _CTRL_C_SEARCH, str(n_jobs)], cwd=root,
                             capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("the search was still running 600 s after it started")
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"stopped after \d+\.\d s\n", out.stdout), (out.stdout, out.stderr)
    assert float(out.stdout.split()[2]) < 60


_CTRL_C_LBFGS_SEARCH = r"""
import os, signal, threading, time, warnings
from sklearn.datasets import make_regression
from numba_dense.model import GridSearchCV, MLPRegressor
X, y = make_regression(n_samples=20000, n_features=50, noise=10, random_state=0)
warnings.simplefilter("ignore")
est = MLPRegressor(hidden_layer_sizes=(64, 64), solver="lbfgs", max_iter=2, random_state=0)
GridSearchCV(est, {"alpha": [1e-4]}, cv=2, n_jobs=2).fit(X, y)  # compiled or loaded
est.set_params(max_iter=10**6, max_fun=10**6, tol=0.0)
before = set(threading.enumerate())
threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
start = time.perf_counter()
try:
    GridSearchCV(est, {"alpha": [1e-4, 1e-3]}, cv=2, n_jobs=2).fit(X, y)
except KeyboardInterrupt:
    left = [t.name for t in set(threading.enumerate()) - before
            if not t.name.startswith("numba_dense")]
    print("stopped after %.1f s, threads left %s" % (time.perf_counter() - start, left))
"""


def test_ctrl_c_stops_a_threaded_search_of_lbfgs_fits():
    """L-BFGS returns to Python only between its steps: the full-batch evaluation checks
    the search's stop there (before, the running L-BFGS fits went on to their end)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run([sys.executable, "-c", _CTRL_C_LBFGS_SEARCH], cwd=root,
                             capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail("the search was still running 600 s after it started")
    assert out.returncode == 0, out.stderr[-2000:]
    match = re.fullmatch(r"stopped after (\d+\.\d) s, threads left \[\]\n", out.stdout)
    assert match, (out.stdout, out.stderr[-2000:])
    assert float(match.group(1)) < 30


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals reach the main thread only")
def test_a_searchs_ctrl_c_is_held_to_the_end_of_a_segment():
    """The search's handler (which sets its stop event, then raises) is held by
    sigint_deferred as Python's own is: the KeyboardInterrupt comes at the end of the
    block, never inside the bookkeeping it protects."""
    stop = threading.Event()
    reached = False
    with search._signals_stop(stop), signals.stop_on(stop):
        with pytest.raises(KeyboardInterrupt):
            with signals.sigint_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the signal is handled (held) on the way through
                reached = True
    assert reached and stop.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_set_stop_event_raises_at_the_end_of_a_segment_on_any_thread():
    """A search's stop that reached the main thread but whose exception was lost (caught
    by code between segments) still stops the next segment's fit."""
    stop = threading.Event()
    stop.set()
    with signals.stop_on(stop), pytest.raises(KeyboardInterrupt, match="stopped by"):
        with signals.sigint_deferred():
            pass
    with signals.sigint_deferred():  # no stop_on: nothing to raise
        pass


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals reach the main thread only")
@pytest.mark.parametrize("n_jobs", [2])
def test_ctrl_c_stops_the_running_fits_after_their_segment(diabetes, n_jobs):
    """In this process: the stop leaves no thread of the search behind."""
    X, y = diabetes
    X = np.tile(X, (20, 1))  # 8,840 rows: an epoch of milliseconds, a fit of 10 minutes
    y = np.tile(y, 20)
    est = MLPRegressor(hidden_layer_sizes=(32,), max_iter=100_000, tol=0.0,
                       n_iter_no_change=10**9, random_state=0)
    before = set(threading.enumerate())  # other libraries' threads (tqdm's monitor, ...)
    GridSearchCV(est.set_params(max_iter=1), {"alpha": [1e-4]}, cv=2, n_jobs=2).fit(X, y)
    # a finished search leaves no thread of its pool behind (only numba-dense's kept pool)
    left = set(threading.enumerate()) - before
    assert all(t.name.startswith("numba_dense") for t in left), left
    before = set(threading.enumerate())
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GridSearchCV(est.set_params(max_iter=100_000), GRID, cv=2, n_jobs=n_jobs).fit(X, y)
    timer.join()
    assert time.perf_counter() - start < 30
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # the fits stopped before fit raised: no thread of the search is left training
    left = set(threading.enumerate()) - before
    assert not left, left


# ----------------------------------------------------------------------------- command line

@pytest.fixture(scope="module")
def diabetes_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    X, y = load_diabetes(return_X_y=True)
    np.savez(folder / "d.npz", X=X.astype(np.float32), y=y.astype(np.float32))
    rng = np.random.default_rng(0)
    with open(folder / "t.csv", "w") as f:
        f.write("a,b,colour,label\n")
        for _ in range(300):
            a, b = rng.standard_normal(2)
            colour = rng.choice(["red", "green"])
            label = "yes" if a + (colour == "red") > 0.5 else "no"
            f.write("%.5f,%.5f,%s,%s\n" % (a, b, colour, label))
    return folder


def _run_cli(args, capsys):
    from numba_dense.model.interfaces.cli import main
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_search_prints_the_candidates_and_saves_the_best(diabetes_files, tmp_path, capsys):
    from numba_dense.model import MLP
    status, out, err = _run_cli(
        ["search", "--data", str(diabetes_files / "d.npz"), "--hidden-sizes", "8",
         "--epochs", "3", "--cv", "3", "--jobs", "2", "--grid", "lr=1e-3,1e-2",
         "weight_decay=0,1e-4", "--save", str(tmp_path / "best.npz")], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("3-fold cross-validation of 4 candidates (12 fits) on 2 threads")
    assert lines[1].split() == ["lr", "weight_decay", "mean", "r2", "std", "rank", "s/fit"]
    rows = [line.split() for line in lines[2:6]]
    assert [r[:2] for r in rows] == [["0.001", "0"], ["0.001", "0.0001"], ["0.01", "0"],
                                     ["0.01", "0.0001"]]
    assert sorted(int(r[4]) for r in rows) == [1, 2, 3, 4]
    best = [r for r in rows if r[4] == "1"][0]
    assert lines[6].startswith("best: lr=%s weight_decay=%s (r2 %s" % (best[0], best[1], best[2]))
    assert "saved to" in out
    net = MLP.load(tmp_path / "best.npz")
    assert net.layer_sizes == [10, 8, 1]


def test_cli_search_equals_the_estimator_search_it_runs(diabetes_files, capsys):
    """The table's means are GridSearchCV's over the adapter, with the folds it prints."""
    from numba_dense.model.interfaces import network_search
    status, out, err = _run_cli(
        ["search", "--data", str(diabetes_files / "d.npz"),
         "--epochs", "2", "--cv", "2", "--jobs", "1", "--grid", "hidden_sizes=4,6x3",
         "--seed", "3"], capsys)
    assert status == 0, err
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert [r[0] for r in rows] == ["4", "6x3"]
    data = np.load(diabetes_files / "d.npz")
    est = network_search.NetworkEstimator(hidden_sizes=[4], hidden="relu", output="identity",
                                          loss=None, quantile=None, dtype="float32", seed=3,
                                          n_outputs=1, classifier=False, epochs=2,
                                          batch_size=256, optimizer="adam", lr=1e-3,
                                          validation_fraction=0.1, validation_seed=3,
                                          early_stopping=10)
    search = GridSearchCV(est, {"hidden_sizes": [[4], [6, 3]]}, n_jobs=1,
                          cv=network_search.splitter(2, False, 3)).fit(data["X"], data["y"])
    for row, mean in zip(rows, search.cv_results_["mean_test_score"]):
        assert row[1] == "%.6g" % mean


def test_cli_search_on_a_table_of_text_labels(diabetes_files, capsys):
    status, out, err = _run_cli(
        ["search", "--data", str(diabetes_files / "t.csv"), "--target-col", "label",
         "--hidden-sizes", "8", "--epochs", "5", "--cv", "2", "--grid", "lr=1e-2,3e-2"],
        capsys)
    assert status == 0, err
    assert "searching softmax classifiers" in out
    assert "score: accuracy on the held-out fold" in out and "best: lr=" in out


@pytest.mark.parametrize("grid, words", [
    (["lr"], "--grid takes NAME=V1,V2"),
    (["learning_rate=1"], "'learning_rate' is not a training option"),
    (["lr=fast"], "--grid lr: bad value 'fast'"),
    (["lr=1e-3,1e-3"], "--grid lr lists '1e-3' twice"),
    (["lr=-1"], "lr must be"),
    (["momentum=0.5,0.9"], "momentum applies to --optimizer sgd only"),
    (["optimizer=adam,rmsprop"], "choose from"),
    (["hidden_sizes=8x0"], "--grid hidden_sizes"),
    (["lr=1e-3", "lr=1e-2"], "--grid names lr twice"),
])
def test_cli_search_bad_grids_are_one_line_errors(diabetes_files, capsys, grid, words):
    status, out, err = _run_cli(["search", "--data", str(diabetes_files / "d.npz"),
                                 "--epochs", "1", "--grid", *grid], capsys)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


def test_cli_search_reads_grid_values_as_their_flags_read_them(diabetes_files, capsys):
    """early_stopping=0 is off, as --early-stopping 0 (it was refused as below 1); a
    validation_fraction=0 candidate trains without the default patience, as train
    --validation-fraction 0 does (its every fit failed); a candidate whose hidden layers do
    not match --dropout's rates is refused before training (it failed in its fits)."""
    data = str(diabetes_files / "d.npz")
    base = ["search", "--data", data, "--epochs", "2", "--cv", "2", "--hidden-sizes", "4"]
    for grid in ("early_stopping=0,3", "validation_fraction=0,0.1"):
        status, out, err = _run_cli(base + ["--grid", grid], capsys)
        assert status == 0 and "failed" not in out + err, err
        assert "best: " in out
    for extra, grid, words in (
            (["--dropout", "0.1,0.1"], "hidden_sizes=4,4x4",
             "--grid candidate hidden_sizes=4: dropout must hold one rate per hidden layer"),
            (["--early-stopping", "3"], "validation_fraction=0,0.1",
             "--grid candidate validation_fraction=0: early_stopping 3 watches the "
             "validation loss")):
        status, out, err = _run_cli(
            [a for a in base if a not in ("--hidden-sizes", "4")] + extra + ["--grid", grid],
            capsys)
        lines = err.strip().splitlines()
        assert status == 2 and out == "" and len(lines) == 1 and words in lines[0], err


def test_cli_search_refuses_an_option_both_in_the_grid_and_given(diabetes_files, capsys):
    status, _, err = _run_cli(["search", "--data", str(diabetes_files / "d.npz"), "--lr",
                               "0.01", "--grid", "lr=1e-3,1e-2"], capsys)
    assert status == 2 and "--grid lr and --lr both set it" in err
    with pytest.raises(SystemExit) as info:  # argparse's refusal, as for the other commands
        _run_cli(["search", "--data", str(diabetes_files / "d.npz"), "--cv", "1", "--grid",
                  "lr=1e-3"], capsys)
    assert info.value.code == 2
    assert "argument --cv: must be at least 2, got 1" in capsys.readouterr().err


def test_cli_search_has_help_and_checks_its_output_first(diabetes_files, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _run_cli(["search", "--help"], capsys)
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m numba_dense search")
    status, out, err = _run_cli(["search", "--data", str(diabetes_files / "d.npz"), "--grid",
                                 "lr=1e-3,1e-2", "--save", str(tmp_path / "no" / "b.npz")],
                                capsys)
    assert status == 2 and out == "" and err.startswith("error: --save")


def test_cli_search_shows_a_failed_candidate_and_goes_on(diabetes_files, capsys):
    status, out, err = _run_cli(["search", "--data", str(diabetes_files / "d.npz"),
                                 "--optimizer", "sgd", "--epochs", "5", "--cv", "2",
                                 "--validation-fraction", "0", "--grid", "lr=10,1e-3"], capsys)
    assert status == 0, err
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert rows[0] == ["10", "failed"] and rows[1][3] == "1"
    assert "failed: lr=10: DivergedError: training diverged" in out
    assert "best: lr=0.001 " in out
