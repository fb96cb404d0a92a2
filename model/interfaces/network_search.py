"""The command line's ``search``: a grid of ``MLP.fit`` options, cross-validated on threads.

How it trains: ``NetworkEstimator`` makes an ``MLP`` and its ``fit`` options look like a
scikit-learn estimator (``get_params`` / ``set_params`` over one flat namespace: the
network's ``hidden_sizes``, ``hidden`` and ``seed``, and every option of
``training.options.FIT_OPTIONS``; ``fit`` builds ``MLP([n_in, *hidden_sizes, n_out], ...)``
and calls ``MLP.fit``; ``score`` is ``MLP.score``: R^2 for a regression, accuracy for a
classifier). ``model.GridSearchCV`` then runs its candidate x fold fits on threads of this
process, with scikit-learn's bookkeeping (``cv_results_``, ranks, the refit of the best).
Each fit is the fit ``train`` would make with those options on the fold's training rows
(the same defaults: Adam, early stopping on 10% of those rows drawn with --seed, standardized
regression targets), scored on the fold's held-out rows.

A table's preprocessing (categories, means and scales) is learned once over the whole file,
as ``train`` learns it, and shared by every fold: the held-out rows took part in those
statistics, not in any network's training.
"""

import time

import numpy as np

try:
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("the search command needs scikit-learn >= 1.6: pip install scikit-learn "
                      "(%s)" % exc) from None

from ...kernels.errors import InvalidValueError
from ..network.mlp import MLP
from ..training import options as fit_options
from .search import GridSearchCV, search_threads

#: The network's own parameters (the rest of a ``NetworkEstimator``'s are ``MLP.fit``'s).
NETWORK_PARAMS = ("hidden_sizes", "hidden", "output", "loss", "quantile", "dtype", "seed",
                  "n_outputs", "classifier")
#: The names ``--grid`` takes besides the command line's training options: the network's.
GRID_NETWORK = ("hidden_sizes", "hidden", "seed")
#: ``MLP.fit`` options that ``--grid`` takes besides those with a flag of the table.
GRID_FIT_EXTRA = ("epochs", "validation_fraction", "early_stopping")


def grid_names():
    """Every name ``--grid`` takes."""
    return (GRID_NETWORK + tuple(o.name for o in fit_options.cli_options())
            + GRID_FIT_EXTRA)


class NetworkEstimator(BaseEstimator):
    """An ``MLP`` and its ``fit`` options as a scikit-learn estimator (the ``search``
    command's). Parameters: ``NETWORK_PARAMS`` (``n_outputs``: the output width, fixed by
    the whole data set so that every fold agrees; ``classifier``: True for a softmax or
    sigmoid network) and any option of ``MLP.fit`` (``shuffle``: with ``seed`` also the
    shuffling seed, as ``train --seed``). ``fit(X, y)`` sets ``net_`` (the trained ``MLP``)."""

    _numba_dense_threads = True  # model.GridSearchCV runs its fits on threads

    def __init__(self, **params):
        self._params = dict(params)
        self.failures = []  # (params, message) of the fits that raised, shared by clones

    def get_params(self, deep=True):
        return dict(self._params)

    def set_params(self, **params):
        self._params.update(params)
        return self

    def __sklearn_clone__(self):
        twin = NetworkEstimator(**self._params)
        twin.failures = self.failures
        return twin

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier" if self._params.get("classifier") else "regressor"
        return tags

    def __repr__(self):
        return "NetworkEstimator(%s)" % ", ".join("%s=%r" % kv for kv in
                                                  sorted(self._params.items()))

    def fit_options(self):
        """The ``MLP.fit`` keywords of these parameters: those that apply (``momentum``
        only with sgd, ...), ``seed`` the shuffling seed when ``shuffle``."""
        p = self._params
        values = {k: v for k, v in p.items() if k in fit_options.BY_NAME}
        values["seed"] = p.get("seed") if p.get("shuffle", True) else None
        # As the flags read them: patience 0 is early stopping off (--early-stopping 0), and
        # the patience the search chose by default (``default_patience``) needs validation
        # rows, so a candidate of validation_fraction 0 trains without it, as train does.
        if values.get("early_stopping") == 0 or (
                p.get("default_patience") and values.get("validation_fraction") == 0):
            values["early_stopping"] = None
        return {k: v for k, v in values.items()
                if fit_options.applies(fit_options.BY_NAME[k], values)}

    def network(self, n_inputs):
        p = self._params
        sizes = [n_inputs, *p["hidden_sizes"], p["n_outputs"]]
        return MLP(sizes, hidden=p.get("hidden", "relu"), output=p.get("output", "identity"),
                   loss=p.get("loss"), dtype=p.get("dtype", "float32"), seed=p.get("seed"),
                   quantile=p.get("quantile"), embeddings=p.get("embeddings"))

    def fit(self, X, y):
        try:
            net = self.network(X.shape[1])
            net.fit(X, y, **self.fit_options())
        except Exception as exc:
            self.failures.append((self._params, "%s: %s" % (type(exc).__name__, exc)))
            raise
        self.net_ = net
        return self

    def predict(self, X):
        return self.net_.predict(X)

    def score(self, X, y):
        return self.net_.score(X, y)


# ----------------------------------------------------------------------------- the grid

def _boolean(text):
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false, got %r" % text)


def parse_grid(items, converters):
    """``{name: [values]}`` of ``--grid`` items ``name=v1,v2,...``. ``converters``: {name:
    a function of one value's text} (the flag's argparse type; ``bool`` for a flag).
    ``hidden_sizes`` values are widths joined by ``x`` (``128x64``). One-line
    ``InvalidValueError`` naming ``--grid`` for a bad item, name or value."""
    grid = {}
    names = grid_names()
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not text.strip():
            raise InvalidValueError("--grid takes NAME=V1,V2,... items (lr=1e-3,3e-3), got %r"
                                    % item)
        if name not in names:
            raise InvalidValueError("--grid: %r is not a training option the search can vary; "
                                    "it takes: %s" % (name, ", ".join(names)))
        if name in grid:
            raise InvalidValueError("--grid names %s twice: give its values in one item" % name)
        values = []
        for part in text.split(","):
            part = part.strip()
            try:
                if name == "hidden_sizes":
                    value = converters[name](part.replace("x", ","))
                else:
                    value = converters[name](part)
            except Exception as exc:  # argparse's types raise their own kinds
                raise InvalidValueError("--grid %s: bad value %r: %s" % (name, part, exc)) \
                    from None
            if isinstance(value, list) and name != "hidden_sizes":
                value = value[0] if len(value) == 1 else value
            if value in values:
                raise InvalidValueError("--grid %s lists %r twice" % (name, part))
            values.append(value)
        grid[name] = values
    return grid


def check_candidates(base, grid):
    """Refuse, before any training, a candidate whose options do not go together (a grid
    value that would be ignored, a bad value, ``min_lr`` above ``lr``): one line naming the
    candidate."""
    for candidate in ParameterGrid(grid):
        p = dict(base, **candidate)
        label = "--grid candidate %s" % describe(candidate)
        values = {k: v for k, v in p.items() if k in fit_options.BY_NAME}
        for name in candidate:
            option = fit_options.BY_NAME.get(name)
            if option is not None and not fit_options.applies(option, values):
                setting, users = option.applies
                raise InvalidValueError(
                    "%s: %s applies to %s %s only; this candidate has %s %s"
                    % (label, name, fit_options.flag(setting), " or ".join(users),
                       fit_options.flag(setting), values.get(setting)))
        hidden = p.get("hidden")
        n_hidden = len(p["hidden_sizes"])
        if isinstance(hidden, list) and len(hidden) not in (1, n_hidden):
            raise InvalidValueError("%s: --hidden names %d activations but the candidate has %d "
                                    "hidden layers" % (label, len(hidden), n_hidden))
        try:
            options = fit_options.checked(NetworkEstimator(**p).fit_options())
            fit_options.dropout_rates(options.get("dropout", 0.0), n_hidden)
        except (ValueError, TypeError) as exc:
            raise InvalidValueError("%s: %s" % (label, exc)) from None
        if options.get("early_stopping") and not options.get("validation_fraction", 0.1):
            raise InvalidValueError("%s: early_stopping %d watches the validation loss, but "
                                    "validation_fraction 0 holds out no rows"
                                    % (label, options["early_stopping"]))


def _shown(value):
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value) if value else "none"
    return "%g" % value if isinstance(value, float) else str(value)


def describe(candidate):
    """``lr=0.001 weight_decay=0``."""
    return " ".join("%s=%s" % (k, _shown(v)) for k, v in sorted(candidate.items()))


def splitter(k, classifier, seed):
    """The --cv folds: shuffled (a file's rows are often ordered), stratified for a
    classifier, seeded by --seed."""
    kind = StratifiedKFold if classifier else KFold
    return kind(n_splits=k, shuffle=True, random_state=seed)


def run(X, y, base, grid, cv, jobs, refit, out=print):
    """Cross-validate every candidate of ``grid`` (``{name: [values]}``) over ``base``
    (``NetworkEstimator``'s parameters) with ``cv`` folds on ``jobs`` threads (None: the
    usable cores); print the table and the best candidate; returns the fitted
    ``GridSearchCV`` (``best_estimator_.net_`` is the best network refit on all rows when
    ``refit``)."""
    import warnings

    from sklearn.exceptions import FitFailedWarning

    check_candidates(base, grid)
    estimator = NetworkEstimator(**base)
    classifier = bool(base.get("classifier"))
    folds = splitter(cv, classifier, base.get("seed"))
    n_candidates = len(ParameterGrid(grid))
    threads = search_threads(jobs)
    what = "accuracy" if classifier else "r2"
    out("%d-fold cross-validation of %d candidates (%d fits) on %d thread%s; score: %s on "
        "the held-out fold" % (cv, n_candidates, cv * n_candidates, threads,
                               "" if threads == 1 else "s", what))
    search = GridSearchCV(estimator, grid, cv=folds, n_jobs=threads, refit=False,
                          error_score=np.nan)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitFailedWarning)
        warnings.filterwarnings("ignore", "One or more of the test scores are non-finite")
        search.fit(X, y)
    seconds = time.perf_counter() - start
    results = search.cv_results_
    means = results["mean_test_score"]
    if np.all(np.isnan(means)):
        raise InvalidValueError("every candidate failed; the first error: %s"
                                % estimator.failures[0][1] if estimator.failures
                                else "every candidate failed")
    for line in table(results, grid, what):
        out(line)
    failed = {}
    for params, message in estimator.failures:
        failed.setdefault(describe({k: params[k] for k in grid}), message)
    for label, message in failed.items():
        out("failed: %s: %s" % (label, message.splitlines()[0] if message else ""))
    best = int(results["rank_test_score"].argmin())  # scikit-learn's choice of the best
    out("best: %s (%s %.6g +- %.2g over %d folds); the search took %.2fs"
        % (describe(results["params"][best]), what, means[best],
           results["std_test_score"][best], cv, seconds))
    search.best_index_ = best
    search.best_params_ = results["params"][best]
    if refit:
        start = time.perf_counter()
        search.best_estimator_ = estimator.__sklearn_clone__().set_params(
            **search.best_params_).fit(X, y)
        out("refit the best candidate on all %d rows in %.2fs" % (X.shape[0],
                                                                  time.perf_counter() - start))
    return search


def table(results, grid, what):
    """The lines of the candidates' table: each candidate's values, the mean and standard
    deviation of its held-out score over the folds, its rank and its mean seconds per fit."""
    names = list(grid)
    header = names + ["mean " + what, "std", "rank", "s/fit"]
    rows = []
    for i, params in enumerate(results["params"]):
        mean = results["mean_test_score"][i]
        rows.append([_shown(params[n]) for n in names]
                    + (["failed", "", "", ""] if np.isnan(mean) else
                       ["%.6g" % mean, "%.2g" % results["std_test_score"][i],
                        str(results["rank_test_score"][i]),
                        "%.2f" % results["mean_fit_time"][i]]))
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
            for r in [header] + rows]
