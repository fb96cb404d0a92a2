"""Hyperparameter searches with scikit-learn's interface, numba-dense's fits on threads.

``GridSearchCV`` and ``RandomizedSearchCV`` are scikit-learn's own classes
(``sklearn.model_selection``), subclassed: the candidates, the splits, ``_fit_and_score``,
``cv_results_``, ``best_params_``, ``best_score_``, ``best_estimator_``, ``refit``,
``scoring`` and ``error_score`` are scikit-learn's code, so with the same splits they report
scikit-learn's numbers exactly (``tests/test_search.py``). What changes is where the
candidate x fold fits run when the estimator is numba-dense's (an ``MLPRegressor`` or
``MLPClassifier``, alone or anywhere inside a ``Pipeline`` or another meta-estimator, or the
command line's network adapter):

- **Threads, not processes.** The fits run in a pool of ``n_jobs`` threads of this process
  (joblib's threading backend): X and y are shared, never pickled to workers. Our
  estimators' epochs are compiled code that releases the GIL, so the threads train at once.
  ``n_jobs=None`` (and -1) means the usable cores (``kernels.threads.usable_cores()``, this
  process's CPU affinity), -2 all but one, as joblib counts; 1 runs the fits one after
  another on the calling thread, as scikit-learn's ``n_jobs=1``.
- **One BLAS thread per fit** while several run (``kernels.blas_threads(1)``, for the
  search only: the refit of the best candidate runs afterwards with the BLAS as it was).
  The products of small networks never call BLAS (the compiled loops make them), so a fit
  gives the same numbers on a thread as alone.
- **Ctrl-C** (and SIGTERM where the command line handles it as Ctrl-C) stops every running
  fit after the compiled segment it is in (``training.signals.stop_on``), waits for them,
  and raises ``KeyboardInterrupt``, with ``n_jobs=1`` and during the refit too (where
  scikit-learn's MLP would keep the cut-short fit and go on to the next); so does an error
  raised with ``error_score="raise"``.
  (joblib's own abort would leave the running fits training after ``fit`` has raised.)

Estimators that are not numba-dense's (scikit-learn's own MLP, a ``Ridge``, ...) are
searched exactly as scikit-learn's classes search them (``n_jobs=None`` meaning 1, other
values joblib's default backend of processes).

Not yet: candidates that could share one compiled pass over the data (issue 24) do not:
each candidate x fold is a separate fit (its own validation of X, its own epochs), only
run concurrently.
"""

import inspect
import signal
import threading
import time
from contextlib import contextmanager
from multiprocessing.pool import ThreadPool

import numpy as np

try:
    import sklearn.model_selection as _skl
    from joblib import parallel_config
    from joblib._parallel_backends import FallbackToBackend, SequentialBackend, ThreadingBackend
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("model.GridSearchCV needs scikit-learn >= 1.6: pip install scikit-learn "
                      "(%s)" % exc) from None

from ... import kernels
from ...kernels.errors import InvalidValueError
from ...kernels.threads import usable_cores
from ..training import threads as epoch_threads
from ..training import signals
from .estimators import _BaseMLP

__all__ = ["GridSearchCV", "RandomizedSearchCV", "search_threads"]


def _is_ours(estimator, depth=0):
    """True when ``estimator`` is one of numba-dense's estimators, or holds one among its
    parameters (a ``Pipeline``'s steps, a meta-estimator's ``estimator``), to any depth."""
    if isinstance(estimator, _BaseMLP) or getattr(type(estimator), "_numba_dense_threads",
                                                  False):
        return True
    if depth > 8 or not hasattr(estimator, "get_params") or isinstance(estimator, type):
        return False
    try:
        values = estimator.get_params(deep=False).values()
    except Exception:  # noqa: BLE001 - an object whose get_params needs more: not ours
        return False
    for value in values:
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, tuple) and len(item) >= 2:  # a Pipeline's (name, step)
                item = item[1]
            if _is_ours(item, depth + 1):
                return True
    return False


def search_threads(n_jobs):
    """The threads a search of numba-dense's estimators runs its fits on: ``n_jobs`` None or
    -1: the usable cores; -k: the usable cores + 1 - k (at least 1); k >= 1: k, but at most
    the usable cores (``n_threads_`` says how many ran): each thread holds a fit's copy of
    its fold's rows, and the fits release the GIL, so threads beyond the cores add memory
    and no speed (``--jobs 600000`` would otherwise ask for more threads than the system
    gives). ``InvalidValueError`` for 0, ``InvalidTypeError`` for a value that is not an
    int."""
    jobs = epoch_threads.check_jobs(n_jobs)
    cores = usable_cores()
    return cores if jobs is None else min(jobs, cores)


def _check_grid_names(estimator, grid, argument):
    """Every name of a ``param_grid`` (a dict or a list of dicts) is a parameter of
    ``estimator``: one line naming the argument otherwise (scikit-learn would raise in every
    fit, with the whole list of parameters)."""
    if not hasattr(estimator, "get_params"):
        return  # scikit-learn's own check says what is wrong
    grids = [grid] if isinstance(grid, dict) else grid if isinstance(grid, (list, tuple)) else []
    try:
        params = estimator.get_params(deep=True)
    except Exception:  # noqa: BLE001
        return
    for g in grids:
        if not isinstance(g, dict):
            continue
        for name in g:
            if name in params:
                continue
            # step__name: name the step's own parameters (a Pipeline's, a wrapper's)
            owner, inner, prefix = estimator, name, ""
            step, _, rest = name.rpartition("__")
            if step and hasattr(params.get(step), "get_params"):
                owner, inner, prefix = params[step], rest, ", %s's %r" % (
                    type(estimator).__name__, step)
            known = [k for k in owner.get_params(deep=True) if "__" not in k]
            raise InvalidValueError(
                "%s: %s%r is not a parameter of %s%s (its parameters: %s)"
                % (argument, "%r: " % name if prefix else "", inner, type(owner).__name__,
                   prefix, ", ".join(sorted(known))))


class _StopOnThreads(ThreadingBackend):
    """joblib's threading backend of ``jobs`` threads whose threads stop their fits when
    ``stop`` is set (``signals.stop_on``, set for the pool's threads as they start)."""

    def __init__(self, jobs, stop, **kwargs):
        super().__init__(**kwargs)
        self.jobs = jobs
        self.stop = stop
        self.threads = []  # the pool's threads, as they start

    def effective_n_jobs(self, n_jobs):
        return self.jobs

    def configure(self, n_jobs=1, parallel=None, **backend_kwargs):
        if self.jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        self.parallel = parallel
        self._n_jobs = self.jobs
        return self.jobs

    def _get_pool(self):
        if self._pool is None:
            self._pool = ThreadPool(self._n_jobs, initializer=_watch,
                                    initargs=(self.stop, self.threads))
        return self._pool

    def wait(self):
        """At the end of a search, and after an error or Ctrl-C: end the pool (its queued
        fits dropped) and wait for its threads, which end their running fits after the
        compiled segment each is in (``stop`` is set). Neither joblib's abort nor a thread
        pool's terminate waits for the threads: without this, fits would go on training
        after ``fit`` has raised, and a finished search would return with its threads still
        exiting. A second Ctrl-C stops the wait (the threads are daemons)."""
        self.stop.set()
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.terminate()
        while any(t.is_alive() for t in self.threads):
            time.sleep(0.02)


def _watch(stop, threads):
    # What ``signals.stop_on(stop)`` sets, for the whole life of a pool thread (a context
    # manager left open here would be closed, and the event reset, once collected).
    signals._thread_stop.event = stop
    epoch_threads.in_pool()  # the pool fills the cores: each fit's steps on its own thread
    threads.append(threading.current_thread())


@contextmanager
def _signals_stop(stop):
    """On the main thread: a stop signal (Ctrl-C, or one the command line raises as Ctrl-C)
    sets ``stop`` before it raises as it would, so the pool's threads end their fits after
    their compiled segment instead of the pool waiting for them to finish."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for s in signals.STOP_SIGNALS:
        handler = signal.getsignal(s)
        if signals.raises(handler):
            @signals.raising  # held by sigint_deferred to the end of a fit's segment
            def relay(signum, frame, handler=handler):
                stop.set()
                handler(signum, frame)
            previous[s] = signal.signal(s, relay)
    try:
        yield
    finally:
        signals.restore_handlers(previous)


class _ThreadedSearch:
    """What both searches add to scikit-learn's: the fits of numba-dense's estimators on
    threads of this process (see the module's docstring)."""

    #: The threads of the last ``fit`` (None: the estimator was not numba-dense's and
    #: scikit-learn's joblib backend ran the fits).
    n_threads_ = None

    def fit(self, X, y=None, **params):
        """Run the search: every candidate on every split, then (``refit``) the best
        candidate on all of X, y; returns self. X (n_samples, n_features) and y
        (n_samples,) or (n_samples, n_outputs) as the estimator takes them; ``params`` go
        to the estimator's ``fit`` (``sample_weight`` is split with the rows), the scorer
        and the splitter, as scikit-learn's. Raises scikit-learn's errors, numba-dense's
        ``InvalidValueError`` for an unknown parameter name in the grid and a bad
        ``n_jobs``; a fit's error goes to ``error_score`` as in scikit-learn."""
        self._check_names()
        if not _is_ours(self.estimator):
            self.n_threads_ = self._blas_limit = None
            return super().fit(X, y, **params)
        jobs = search_threads(self.n_jobs)
        stop = threading.Event()
        backend = _StopOnThreads(jobs, stop)
        self._blas_limit = 1 if jobs > 1 else None
        try:
            # stop_on: this thread's own fits (n_jobs=1, and the refit) see the stop too,
            # and raise rather than keep their work as a lone fit's Ctrl-C does
            with _signals_stop(stop), signals.stop_on(stop), parallel_config(backend=backend):
                super().fit(X, y, **params)
        finally:
            # After Ctrl-C or a fit's error with error_score="raise": stop the running fits.
            # After success too: a thread pool's terminate does not join its threads, so
            # without the wait fit would return while the pool's threads are still exiting.
            backend.wait()
        self.n_threads_ = jobs
        return self

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        with kernels.blas_threads(getattr(self, "_blas_limit", None)):
            if "callback_ctx" in inspect.signature(super()._run_search).parameters:
                return super()._run_search(evaluate_candidates, callback_ctx=callback_ctx)
            return super()._run_search(evaluate_candidates)  # scikit-learn < 1.9


class GridSearchCV(_ThreadedSearch, _skl.GridSearchCV):
    """scikit-learn's ``GridSearchCV``, the fits of numba-dense's estimators on threads.

    ``estimator``: any scikit-learn estimator; numba-dense's ``MLPRegressor`` /
    ``MLPClassifier`` (alone or in a ``Pipeline``) train on ``n_jobs`` threads of this
    process, others as scikit-learn trains them. ``param_grid``: a dict ``{parameter: [values,
    ...]}`` or a list of such dicts (``"mlpregressor__alpha"`` inside a pipeline), every
    combination a candidate. ``scoring``, ``refit``, ``verbose``, ``pre_dispatch``,
    ``error_score`` and ``return_train_score``: scikit-learn's. ``cv``: an int K (K folds:
    ``StratifiedKFold`` for a classifier, ``KFold`` otherwise, unshuffled, as
    scikit-learn's), a splitter or an iterable of (train, test) index arrays. ``n_jobs``:
    None or -1, the usable cores; k >= 1, k threads (1: one fit after another).

    Fitted attributes: scikit-learn's (``cv_results_``, ``best_params_``, ``best_score_``,
    ``best_estimator_``, ``best_index_``, ``scorer_``, ``n_splits_``, ``refit_time_``,
    ``multimetric_``), and ``n_threads_`` (the threads of the last fit; None when the
    estimator was not numba-dense's).
    """

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=5,
                 verbose=0, pre_dispatch="2*n_jobs", error_score=np.nan,
                 return_train_score=False):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)

    def _check_names(self):
        _check_grid_names(self.estimator, self.param_grid, "param_grid")


class RandomizedSearchCV(_ThreadedSearch, _skl.RandomizedSearchCV):
    """scikit-learn's ``RandomizedSearchCV``, the fits of numba-dense's estimators on threads.

    ``param_distributions``: ``{parameter: list of values or a distribution with an rvs
    method}`` (or a list of such dicts); ``n_iter`` candidates are drawn with
    ``random_state``. The other parameters and the fitted attributes are those of
    ``GridSearchCV`` (scikit-learn's, plus ``n_threads_``).
    """

    def __init__(self, estimator, param_distributions, *, n_iter=10, scoring=None, n_jobs=None,
                 refit=True, cv=5, verbose=0, pre_dispatch="2*n_jobs", random_state=None,
                 error_score=np.nan, return_train_score=False):
        super().__init__(estimator, param_distributions, n_iter=n_iter, scoring=scoring,
                         n_jobs=n_jobs, refit=refit, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, random_state=random_state,
                         error_score=error_score, return_train_score=return_train_score)

    def _check_names(self):
        _check_grid_names(self.estimator, self.param_distributions, "param_distributions")
