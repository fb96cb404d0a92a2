"""scikit-learn's ``MLPRegressor`` and ``MLPClassifier``, trained by numba-dense's kernels.

Drop-in replacements: the same constructor parameters, defaults and meanings, the same
fitted attributes and methods (``sample_weight`` in ``fit`` and ``partial_fit``,
``loss="poisson"`` on the regressor), and they pass scikit-learn's own estimator checks and
its own MLP test module with only the import changed, less the tests that read its private
attributes (``tests/test_estimators.py``, ``tests/test_sklearn_suite.py``).

``solver="sgd"`` / ``"adam"``: each epoch runs in compiled code (``kernels.train_epoch``
through ``training.loop.run``); between epochs this module does what scikit-learn's
``_fit_stochastic`` does: the loss curve, ``tol`` / ``n_iter_no_change``, the
"invscaling" and "adaptive" learning rates, early stopping on a validation split.
``solver="lbfgs"``: SciPy's L-BFGS-B on scikit-learn's objective (the same options,
``n_iter_``, ``loss_`` and warnings), the loss and gradient over the whole data set
computed by ``kernels.loss_and_gradient``.

Differences, all documented in docs/guide.md:

- ``dtype`` (extra, default None): the parameters' and arithmetic's precision. None
  follows the input as scikit-learn does (float32 input trains float32, anything else
  float64); ``np.float32`` or ``np.float64`` forces one (float32 about halves the time).
- ``alpha`` is applied as ``weight_decay = alpha / batch_size`` to every parameter, biases
  included (scikit-learn leaves the intercepts unpenalised); the reported loss includes the
  penalty of the weights, as scikit-learn's.
- Adam's ``epsilon`` is added to ``sqrt(v_hat)`` (PyTorch's form) rather than to
  ``sqrt(v)`` (scikit-learn's); the two differ by a factor ``sqrt(1 - beta_2**t)`` on
  ``epsilon``, which matters only in the first steps.
- With ``sample_weight``, an sgd/adam epoch's reported loss is the weighted mean over the
  epoch's rows rather than the mean of its minibatches' weighted means (equal when every
  minibatch weighs the same), and the weight decay per step uses the mean weight.

scikit-learn is needed to import this module (``pip install scikit-learn``); the kernels
and ``MLP`` do not need it.
"""

import numbers
import operator
import warnings

import numpy as np
import scipy.optimize
from scipy.special import xlogy

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import (_check_partial_fit_first_call, type_of_target,
                                          unique_labels)
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                          validate_data)
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError("model.MLPRegressor and model.MLPClassifier need scikit-learn >= 1.6: "
                      "pip install scikit-learn (%s)" % exc) from None

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ..data import sources
from ..data.validation import is_sparse, plain, sparse_features
from ..network.embeddings import widths
from ..network.mlp import EMBEDDING_INIT_STD, MLP, _quantile_level
from ..training import full_batch, loop, signals
from ..training import options as fit_options
from ..training.threads import check_jobs

#: scikit-learn's activation names -> numba-dense's; then the hidden activations scikit-learn
#: lacks, by numba-dense's names (``kernels.ACTIVATION_TABLE``: leaky ReLU of slope 0.01, the
#: exact-erf GELU, SiLU), which issue 25 asks the estimators to expose.
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
                "leaky_relu": "leaky_relu", "gelu": "gelu", "silu": "silu"}
_SOLVERS = ("sgd", "adam", "lbfgs")
_STOCHASTIC_SOLVERS = ("sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
#: scikit-learn gradient boosting's names: the MLP's loss of each (an identity output; the
#: Poisson loss on a log link).
_REGRESSION_LOSSES = {"squared_error": "mse", "poisson": "poisson", "huber": "huber",
                      "absolute_error": "absolute_error", "quantile": "quantile"}


def _hidden_names(activation, n_hidden):
    """numba-dense's activation of every hidden layer from ``activation``: one of
    scikit-learn's names, or a list of one per hidden layer (numba-dense's extra)."""
    if isinstance(activation, (list, tuple)):
        if len(activation) != n_hidden:
            raise InvalidValueError("activation must name one activation per hidden layer (%d), "
                                    "got %d: %s" % (n_hidden, len(activation), plain(activation)))
        for a in activation:
            _check_choice(a, "activation", tuple(_ACTIVATIONS))
        return [_ACTIVATIONS[a] for a in activation]
    _check_choice(activation, "activation", tuple(_ACTIVATIONS))
    return _ACTIVATIONS[activation]


def _check_class_weight(class_weight):
    """None, "balanced" or a dict of weights (scikit-learn's ``class_weight``)."""
    if isinstance(class_weight, dict):
        for label, w in class_weight.items():
            if (isinstance(w, bool) or not isinstance(w, (int, float, np.integer, np.floating))
                    or not np.isfinite(w) or w < 0):
                raise InvalidValueError("class_weight[%s] must be a finite number >= 0, got %s"
                                        % (plain(label), plain(w)))
        return
    if isinstance(class_weight, str) and class_weight == "balanced":
        return
    raise InvalidValueError("class_weight must be None, 'balanced' or a dict {label: weight}, "
                            "got %s" % plain(class_weight))


def _check_choice(value, name, options):
    if not isinstance(value, str) or value not in options:
        raise InvalidValueError("The '%s' parameter must be one of %s; got %s"
                                % (name, ", ".join(repr(o) for o in options), plain(value)))


def _lbfgs_print_option(iprint):
    """scikit-learn's ``iprint`` for L-BFGS-B (SciPy >= 1.15 dropped the option)."""
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:  # pragma: no cover - older or newer scikit-learn
        return {}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


#: scikit-learn's error when training leaves a weight NaN or infinite (its ``_fit``).
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain "
               "large values and need to be preprocessed.")


def _copy_into(views, values, names):
    """Copy ``values`` into the parameter ``views`` (cast to their dtype), all or none.

    Every value is checked and copied out first, so that an error changes nothing and
    values that are themselves views of the parameters are read before anything is written.
    """
    arrays = []
    for view, value, name in zip(views, values, names):
        array = np.asarray(value)
        if array.shape != view.shape:
            raise InvalidValueError("%s must "
                                    "have shape %s, got %s" % (name, view.shape, array.shape))
        arrays.append(np.array(array, dtype=view.dtype))
    for view, array in zip(views, arrays):
        view[...] = array


class _Layers(list):
    """``coefs_`` / ``intercepts_``: one array per layer, each a view of the network's
    parameters, so that what is written into it is what ``predict`` and training use.

    ``layers[i][...] = x`` writes into the network directly; ``layers[i] = x`` (and slice
    assignment) copies ``x`` into layer ``i`` after checking its shape. The number of
    layers is fixed by the network: ``append``, ``del`` and the like raise a TypeError
    (on scikit-learn's plain list they would silently break the model). Copies and
    pickles of the list are plain lists.
    """

    __slots__ = ("_name",)

    def __init__(self, name, views):
        super().__init__(views)
        self._name = name

    def __setitem__(self, index, value):
        if isinstance(index, slice):
            positions = range(len(self))[index]
            values = list(value)
            if len(values) != len(positions):
                raise InvalidValueError("%s: %d arrays for a slice of %d layers "
                                        "(the number of layers "
                                        "is fixed)" % (self._name, len(values), len(positions)))
        else:
            i = operator.index(index)
            positions = [range(len(self))[i]]  # IndexError as a list's when out of range
            values = [value]
        _copy_into([list.__getitem__(self, i) for i in positions], values,
                   ["%s[%d]" % (self._name, i) for i in positions])

    def _fixed(self, *args, **kwargs):
        raise InvalidTypeError("%s has one array per layer of the fitted "
                               "network; its length cannot "
                               "change (assign arrays of the same shapes instead)" % self._name)

    append = extend = insert = pop = remove = clear = sort = reverse = _fixed
    __delitem__ = __iadd__ = __imul__ = _fixed

    def __reduce_ex__(self, protocol):
        return list, (list(self),)


def _check_integer_codes(codes, column):
    """``InvalidValueError`` naming the first of a categorical column's ``codes`` that is not
    an integer."""
    bad = np.flatnonzero(codes != np.floor(codes))
    if len(bad):
        raise InvalidValueError(
            "categorical_features: X[%d, %d] is %s; a categorical column holds integer codes "
            "(negative ones: missing)" % (bad[0], column, plain(codes[bad[0]])))


def _check_number(value, name, low, low_inclusive=True, high=None, high_inclusive=True,
                  integer=False):
    kinds = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise InvalidValueError("The '%s' parameter must be %s; got %s"
                                % (name, "an int" if integer else "a float", plain(value)))
    bad = (value < low if low_inclusive else value <= low) or (
        high is not None and (value > high if high_inclusive else value >= high))
    if bad or not np.isfinite(value):
        raise InvalidValueError("The '%s' parameter must be in the range %s%s, %s%s; got %s"
                                % (name, "[" if low_inclusive else "(", low,
                                   "inf" if high is None else high,
                                   "]" if high_inclusive and high is not None else ")",
                                   plain(value)))


def _check_bool(value, name, allow_int=False):
    """scikit-learn's "boolean" constraint: a string such as "False" would count as true."""
    if isinstance(value, (bool, np.bool_)):
        return
    if allow_int and isinstance(value, numbers.Integral) and value >= 0:
        return
    raise InvalidValueError("The '%s' parameter must be %sTrue or False; got %s"
                            % (name, "an int >= 0 or " if allow_int else "", plain(value)))


def _check_random_state(value):
    """scikit-learn's constraint on ``random_state``: None, an int in [0, 2**32 - 1] or a
    ``numpy.random.RandomState``."""
    if value is None or isinstance(value, np.random.RandomState):
        return
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and 0 <= value <= np.iinfo(np.uint32).max:
        return
    raise InvalidValueError("The 'random_state' parameter must be an int in the range [0, %d], an "
                            "instance of 'numpy.random.RandomState' or None; got %s"
                            % (np.iinfo(np.uint32).max, plain(value)))


def _categorical_columns(given, n, names):
    """The sorted indices of the columns ``categorical_features`` (``given``) selects among
    X's ``n`` columns, whose feature names are ``names`` (empty when X had none); None when
    it selects none. ``InvalidValueError`` naming a bad index, mask or name."""
    if given is None or (hasattr(given, "__len__") and not isinstance(given, str)
                         and len(given) == 0):
        return None
    mask = np.asarray(given)
    if mask.dtype == bool:
        if mask.shape != (n,):
            raise InvalidValueError("categorical_features as a mask must have one entry "
                                    "per column of X (%d), got shape %s" % (n, mask.shape))
        columns = np.flatnonzero(mask)
    elif mask.ndim == 1 and mask.dtype.kind in "iu":
        columns = mask.astype(np.int64)
        bad = [int(c) for c in columns if not -n <= c < n]
        if bad:
            raise InvalidValueError("categorical_features holds column %d, outside the %d "
                                    "columns of X" % (bad[0], n))
        columns = np.unique(columns % n)
    elif mask.ndim == 1 and mask.dtype.kind in "UO" and all(isinstance(v, str) for v in mask):
        # feature names, as HistGradientBoosting takes them: X must have had them
        unknown = [v for v in mask if v not in names]
        if unknown:
            raise InvalidValueError(
                "categorical_features names %r, which is not a feature name of X (%s)"
                % (str(unknown[0]), "its columns: %s" % ", ".join(names) if names
                   else "X has no feature names: pass a DataFrame, or column indices"))
        columns = np.unique([names.index(v) for v in mask])
    else:
        raise InvalidValueError("categorical_features must be None, column indices, feature "
                                "names or a boolean mask of X's columns, got %s" % plain(given))
    return columns if len(columns) else None


class _BaseMLP(BaseEstimator):
    """What the two estimators share; see ``MLPRegressor`` for the parameters."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 n_networks=1,
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, dropout=0.0, n_jobs=None, categorical_features=None,
                 max_embedding_dim=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.n_networks = n_networks
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.n_jobs = n_jobs
        self.categorical_features = categorical_features
        self.max_embedding_dim = max_embedding_dim

    # ------------------------------------------------------------------ checks

    def _check_params(self):
        """Every parameter checked at fit, before anything changes (as scikit-learn)."""
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, (str, bytes, dict)):
            raise InvalidValueError("The 'hidden_layer_sizes' parameter must be an "
                                    "array-like or an int "
                                    "in the range [1, inf); got %s" % plain(sizes))
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        shown = [n.item() if isinstance(n, np.generic) else n for n in sizes]
        for n in sizes:
            if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
                raise InvalidValueError("hidden_layer_sizes must be integers > 0, got %s." % shown)
            if n <= 0:
                raise InvalidValueError("hidden_layer_sizes must be > 0, got %s." % shown)
        _hidden_names(self.activation, len(sizes))
        _check_choice(self.solver, "solver", _SOLVERS)
        fit_options.dropout_rates(fit_options.BY_NAME["dropout"].check(self.dropout, "dropout"),
                                  len(sizes))
        if self.solver == "lbfgs" and np.any(np.asarray(self.dropout, dtype=float) > 0):
            raise InvalidValueError("dropout applies to solver='sgd' and 'adam' (each step "
                                    "drops other units), got dropout=%s with solver='lbfgs'"
                                    % plain(self.dropout))
        _check_choice(self.learning_rate, "learning_rate", _LEARNING_RATES)
        check_jobs(self.n_jobs)
        # scikit-learn's names for the optimizer's hyperparameters, with the bounds of
        # kernels.HYPERPARAMETER_TABLE (momentum below: scikit-learn's range includes 1).
        for name in ("alpha", "learning_rate_init", "beta_1", "beta_2", "epsilon"):
            _check_number(getattr(self, name), name, *fit_options.sklearn_bounds(name))
        if self.batch_size != "auto":
            _check_number(self.batch_size, "batch_size", 1, integer=True)
        _check_number(self.power_t, "power_t", 0)
        _check_number(self.max_iter, "max_iter", 1, integer=True)
        _check_number(self.tol, "tol", 0)
        _check_number(self.momentum, "momentum", 0, high=1)
        if self.solver == "sgd" and self.momentum >= 1:  # scikit-learn ignores it otherwise
            raise InvalidValueError("momentum must be < 1 for solver='sgd' (numba-dense's velocity "
                                    "would never decay; scikit-learn's range [0, "
                                    "1] includes 1), got %s" % plain(self.momentum))
        _check_number(self.validation_fraction, "validation_fraction", 0, False, 1, False)
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and not isinstance(self.n_iter_no_change, (bool, np.bool_))
                and self.n_iter_no_change == np.inf):  # scikit-learn's Options(Real, {inf})
            _check_number(self.n_iter_no_change, "n_iter_no_change", 1, integer=True)
        _check_number(self.max_fun, "max_fun", 1, integer=True)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _check_bool(getattr(self, name), name)
        _check_bool(self.verbose, "verbose", allow_int=True)
        _check_random_state(self.random_state)
        _check_number(self.n_networks, "n_networks", 1, integer=True)
        if getattr(self, "loss", "squared_error") not in _REGRESSION_LOSSES:
            _check_choice(self.loss, "loss", tuple(_REGRESSION_LOSSES))
        if hasattr(self, "quantile"):  # the level checked (and refused with another loss)
            _quantile_level(self.loss, self.quantile)
        if getattr(self, "class_weight", None) is not None:
            _check_class_weight(self.class_weight)
        if self.max_embedding_dim is not None:
            _check_number(self.max_embedding_dim, "max_embedding_dim", 1, integer=True)
        if self.dtype is None:
            return sizes, None
        try:
            dtype = np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise InvalidValueError("The 'dtype' parameter must be None, float32 or float64; "
                                    "got %s" % (dtype if dtype is not None else plain(self.dtype)))
        return sizes, dtype

    def _validate(self, X, y, reset):
        """Validated X (dense, C order, in the parameters' dtype) and y.

        The dtype: the network's once there is one; else ``dtype`` when given; else the
        input's as scikit-learn's ``validate_data(dtype=(float64, float32))`` leaves it
        (float32 stays float32, everything else becomes float64)."""
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=not isinstance(self, ClassifierMixin),
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not reset and hasattr(self, "_net"):
            dtype = self._net.dtype
        elif self.dtype is not None:
            dtype = np.dtype(self.dtype)
        else:
            dtype = np.dtype(X.dtype)
        return self._dense(X, dtype), y

    @staticmethod
    def _dense(X, dtype):
        """X as the kernels take it: dense rows in C order, or a SciPy sparse X kept sparse
        as a CSR matrix of ``dtype`` (the first layer then costs what its non-zeros cost:
        docs/kernels.md, "Sparse input")."""
        if is_sparse(X):
            return sparse_features(X, "X", dtype, X.shape[1])
        return np.ascontiguousarray(X, dtype=dtype)

    # ------------------------------------------------------------------ fitted state

    @property
    def coefs_(self):
        """Weights per layer, (n_in, n_out) each: views of the network's parameters.

        Writable as scikit-learn's: ``est.coefs_ = [...]``, ``est.coefs_[i] = W`` and
        ``est.coefs_[i][...] = ...`` all change the network (values cast to its dtype);
        ``predict``, ``score`` and a later ``warm_start`` fit or ``partial_fit`` use them.
        """
        check_is_fitted(self, "_net")
        return _Layers("coefs_", [W.T for W in self._net.weights])

    @coefs_.setter
    def coefs_(self, value):
        self._assign_layers(self.coefs_, value)

    @property
    def intercepts_(self):
        """Biases per layer, (n_out,) each: views of the network's parameters (writable as
        ``coefs_``)."""
        check_is_fitted(self, "_net")
        return _Layers("intercepts_", self._net.biases)

    @intercepts_.setter
    def intercepts_(self, value):
        self._assign_layers(self.intercepts_, value)

    @staticmethod
    def _assign_layers(layers, value):
        values = list(value)
        if len(values) != len(layers):
            raise InvalidValueError("%s must be a list of %d arrays (one per layer), got %d"
                                    % (layers._name, len(layers), len(values)))
        layers[:] = values

    @property
    def n_layers_(self):
        check_is_fitted(self, "_net")
        return len(self._net.layer_sizes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # kept sparse: the kernels take CSR rows
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_net")

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 "%s is not stochastic." % self.solver)
        return True

    # ------------------------------------------------------------------ training

    def _check_text_categories(self, X):
        """A DataFrame column named by ``categorical_features`` that holds text (a pandas
        category column of strings, object strings): one line saying to pass its integer
        codes, rather than scikit-learn's 'could not convert string to float' from the
        conversion of X. Nothing is set."""
        dtypes = getattr(X, "dtypes", None)
        if dtypes is None:
            return
        names = list(X.columns)
        try:
            columns = _categorical_columns(self.categorical_features, len(names), names)
        except InvalidValueError:
            return  # said where X is resolved (_embeddings), as before this check
        for name in ([] if columns is None else [names[c] for c in columns]):
            dtype = dtypes[name]
            categories = getattr(dtype, "categories", None)
            text = (categories.dtype.kind in "OUS" if categories is not None
                    else getattr(dtype, "kind", "") in "OUS")
            if text:
                raise InvalidValueError(
                    "categorical_features: column %r holds text (%s): a categorical column "
                    "holds integer codes 0..n-1 (for a pandas category column, X[%r].cat.codes)"
                    % (name, dtype, name))

    def _embeddings(self, X):
        """(``MLP(embeddings=...)`` of ``categorical_features`` for the training X, the
        mask ``is_categorical_``), (None, None) for none; ``InvalidValueError`` naming a bad
        index, mask or code. Nothing is set."""
        n = X.shape[1]
        columns = _categorical_columns(self.categorical_features, n,
                                       list(getattr(self, "feature_names_in_", [])))
        if columns is None:
            return None, None
        if is_sparse(X):
            raise InvalidValueError("categorical_features needs a dense X (its code columns "
                                    "are looked up row by row), got a sparse matrix")
        spec = {}
        for c in columns:
            codes = X[:, c]
            _check_integer_codes(codes, c)
            # codes 0..max, and one row for the missing (negative) codes and those predict
            # meets that training did not
            spec[int(c)] = max(int(codes.max()) if len(codes) else -1, -1) + 2
        mask = np.zeros(n, bool)
        mask[columns] = True
        return widths(spec, self.max_embedding_dim), mask

    def _check_later_codes(self, X, mask):
        """A ``warm_start`` fit or ``partial_fit`` on a fitted network: the same categorical
        columns, and no code beyond those of the first fit (the last table row is the
        missing and unknown categories': a new category would be trained as missing)."""
        fitted = getattr(self, "is_categorical_", None)
        same = (fitted is None and mask is None) or (
            fitted is not None and mask is not None and np.array_equal(fitted, mask))
        if not same:
            raise InvalidValueError(
                "categorical_features selects columns %s but the fitted network embeds %s: "
                "fit from scratch (warm_start=False) to change them"
                % ([] if mask is None else np.flatnonzero(mask).tolist(),
                   [] if fitted is None else np.flatnonzero(fitted).tolist()))
        embeddings = self._net.embeddings
        if embeddings is None:
            return
        for column, n in zip(embeddings.columns, embeddings.cardinalities):
            beyond = np.flatnonzero(X[:, column] > n - 2)
            if len(beyond):
                raise InvalidValueError(
                    "categorical_features: X[%d, %d] is %s, beyond the codes 0..%d of the "
                    "first fit (its table has no row of its own for it): fit from scratch "
                    "(warm_start=False) on data that holds every code"
                    % (beyond[0], column, plain(X[beyond[0], column]), n - 2))

    def _initialize(self, n_features, n_outputs, sizes, dtype, output, embeddings=None):
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        self.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
        # The Poisson loss: an identity last layer whose kernels' cost is exp(z) - y z and
        # whose predictions are exp(z).
        extra = {"loss": "poisson"} if output == "exp" else {}
        loss = getattr(self, "loss", "squared_error")
        if loss not in ("squared_error", "poisson"):  # the robust losses on an identity output
            extra = {"loss": _REGRESSION_LOSSES[loss], "quantile": self.quantile}
        hidden = _hidden_names(self.activation, len(sizes))
        self._net = MLP([n_features, *sizes, n_outputs], hidden=hidden,
                        output=output, dtype=dtype, embeddings=embeddings, **extra)
        # scikit-learn's initialisation (Glorot uniform, also for the intercepts) from the
        # same random state, so that a seeded fit starts where scikit-learn's would; with an
        # activation per hidden layer, each layer's factor is that of its own activation
        # (the output layer's that of the last hidden layer, as scikit-learn's one name).
        names = hidden if isinstance(hidden, list) else [hidden] * len(sizes)
        names = names + names[-1:] if names else ["identity"]
        for (W, b), name in zip(zip(self._net.weights, self._net.biases), names):
            factor = 2.0 if name == "sigmoid" else 6.0
            n_out, n_in = W.shape
            bound = np.sqrt(factor / (n_in + n_out))
            W[...] = self._rng.uniform(-bound, bound, (n_in, n_out)).T
            b[...] = self._rng.uniform(-bound, bound, n_out)
        for table in self._net.tables:  # as MLP's (fastai's N(0, 0.01^2))
            table[...] = self._rng.standard_normal(table.shape) * EMBEDDING_INIT_STD
            table[-1] = 0  # missing and unknown codes (_unknown_codes): only missing ones train it
        self._lr = float(self.learning_rate_init)
        self._velocity_lr = self._lr
        for name in ("loss_curve_", "best_loss_", "validation_scores_",
                     "best_validation_score_", "loss_"):
            self.__dict__.pop(name, None)  # a refit with lbfgs has none (as scikit-learn)
        if self.solver not in _STOCHASTIC_SOLVERS:
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _fit(self, X, y, incremental, sample_weight=None):
        sizes, _ = self._check_params()
        if incremental and self.n_networks > 1:
            raise InvalidValueError("partial_fit trains one network; n_networks=%d applies to "
                                    "fit" % self.n_networks)
        given = (X, y, sample_weight)  # what the other members of n_networks > 1 fit on
        first = not hasattr(self, "_net") or (not self.warm_start and not incremental)
        if self.early_stopping and incremental:
            raise InvalidValueError("partial_fit does not support early_stopping=True")
        self._check_text_categories(X)
        X, Y = self._prepare(X, y, incremental, reset=first)
        class_weight = getattr(self, "class_weight", None)
        if class_weight is not None:
            if incremental and class_weight == "balanced":  # scikit-learn's SGDClassifier's rule
                raise InvalidValueError("class_weight 'balanced' is not supported for "
                                        "partial_fit: the classes' frequencies are those of "
                                        "all the data; pass a dict of weights instead")
            # scikit-learn's meaning: each row weighs its class's weight, times its
            # sample_weight ("balanced": n_samples / (n_classes * np.bincount(y)))
            by_class = compute_sample_weight(class_weight, np.asarray(y))
            sample_weight = (by_class if sample_weight is None
                             else by_class * np.asarray(sample_weight, np.float64))
        if sample_weight is not None:
            # scikit-learn's checks (one finite weight >= 0 per row), in float64 whatever
            # the parameters' dtype, before anything changes (warm_start keeps coefs_)
            sample_weight = np.ascontiguousarray(
                _check_sample_weight(sample_weight, X, dtype=np.float64,
                                     ensure_non_negative=True), dtype=np.float64)
        self._rng = check_random_state(self.random_state)
        embeddings, mask = self._embeddings(X)
        if not first:
            self._check_later_codes(X, mask)
        if first:
            self._initialize(X.shape[1], Y.shape[1], sizes, X.dtype, self._output(Y),
                             embeddings)
            self.is_categorical_ = mask
        elif not incremental:
            # scikit-learn makes a new optimizer at every fit, warm_start too (only
            # partial_fit keeps it): no momentum or Adam moments from the last fit, which
            # would push weights assigned to coefs_ in between.
            self._net.velocity[...] = 0
            self._net.step = 0
            self._lr = float(self.learning_rate_init)
        elif not hasattr(self, "_lr"):
            self._lr = float(self.learning_rate_init)
        X = self._unknown_codes(X)  # missing (negative) codes: the last row, trained so
        self._interrupted = False
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, incremental, sample_weight)
        if not np.isfinite(self._net.params).all():  # scikit-learn's check, at its place
            raise InvalidValueError(_NON_FINITE)
        if not incremental:
            self._fit_members(*given)
        return self

    # ------------------------------------------------------------------ n_networks

    def _fit_members(self, X, y, sample_weight):
        """Members 1 to K - 1 of ``n_networks`` K > 1: clones of this estimator with
        ``n_networks=1`` and their own ``random_state`` (``_member_states``), fit on the same
        rows one after another (``numba_dense.model.Ensemble`` trains on threads); with
        ``warm_start`` the members of the last fit continue. A Ctrl-C stops the member it
        reaches (which keeps its work, as a lone fit does) and trains no further member."""
        extra = self.n_networks - 1
        kept = self.__dict__.pop("_members", None)
        if extra == 0 or self._interrupted:
            return  # Ctrl-C stopped member 0: no other member is trained
        if not (self.warm_start and kept is not None and len(kept) == extra):
            from sklearn.base import clone
            kept = [clone(self).set_params(n_networks=1, random_state=state, verbose=False)
                    for state in self._member_states(extra)]
        trained = []
        for member in kept:
            member.fit(X, y, sample_weight=sample_weight)
            trained.append(member)
            if member._interrupted:  # Ctrl-C: this member keeps its work, no further one
                break
        self._members = trained

    def _member_states(self, extra):
        """The ``random_state`` of members 1 to ``extra``: ``random_state + k`` (mod 2**32) for
        an int; None for None; for a ``RandomState``, ints drawn from it after member 0's
        fit."""
        state = self.random_state
        if state is None:
            return [None] * extra
        if isinstance(state, numbers.Integral):
            return [(int(state) + k) % 2 ** 32 for k in range(1, extra + 1)]
        return [int(v) for v in check_random_state(state).randint(0, 2 ** 31 - 1, extra)]

    @property
    def networks_(self):
        """The fitted networks (``numba_dense.MLP``), K = ``n_networks``: member 0 is the one
        ``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_`` and the other fitted
        attributes describe (trained with ``random_state`` itself); predictions average all."""
        check_is_fitted(self)
        return [self._net] + [m._net for m in self.__dict__.get("_members", ())]

    def _averaged(self, method, X):
        """``method`` ("predict" or "predict_proba") of the network, or the mean over the
        members' for ``n_networks`` > 1 (in float64, rounded to the networks' dtype)."""
        members = self.__dict__.get("_members")
        if not members:
            return getattr(self._net, method)(X)
        values = [getattr(net, method)(X) for net in [self._net] + [m._net for m in members]]
        return np.mean(values, axis=0, dtype=np.float64).astype(self._net.dtype)

    def _weights_mask(self):
        """True for the elements of the flat parameters that are weights (not biases)."""
        mask = np.zeros(self._net.params.shape[0], dtype=bool)
        for W in self._net.weights:
            start = (W.__array_interface__["data"][0]
                     - self._net.params.__array_interface__["data"][0]) // W.itemsize
            mask[start:start + W.size] = True
        return mask

    def _loss_constant(self, Y, sample_weight):
        """What scikit-learn's reported loss adds to the kernels' cost: for the half Poisson
        deviance ``xlogy(y, y/p) - y + p`` against the kernels' ``p - y log p``, the
        (weighted) mean of ``xlogy(y, y) - y`` summed over outputs; 0 otherwise."""
        if self.out_activation_ != "exp":
            return 0.0
        Y = np.asarray(Y, dtype=np.float64)
        return float(np.average(xlogy(Y, Y) - Y, weights=sample_weight, axis=0).sum())

    def _fit_lbfgs(self, X, Y, sample_weight):
        """scikit-learn's ``_fit_lbfgs``: L-BFGS-B on the flat parameters (float64 for
        SciPy, copied into the network's dtype for each evaluation), with the value and
        gradient of its ``_backprop``: the mean cost (weighted by ``sample_weight``) plus
        ``alpha/2 ||W||^2 / sum(weights)`` (intercepts unpenalised).

        As scikit-learn's, the squared error's value is averaged over the outputs but its
        gradient is that of the sum over them (its ``deltas`` are ``p - y`` whatever the
        number of outputs): with several outputs the two disagree by that factor, and
        L-BFGS-B follows them to where scikit-learn's goes. The order of the parameters
        differs (ours layer by layer, each W then b); L-BFGS-B does not depend on it."""
        net = self._net
        n = X.shape[0]
        weight_sum = float(n if sample_weight is None else sample_weight.sum())
        mask = self._weights_mask()
        alpha = float(self.alpha)
        per_output = 1.0 / self.n_outputs_ if self._squared_error() else 1.0
        constant = self._loss_constant(Y, sample_weight)
        # the kernels' cost and gradient, on every free core (model.training.full_batch)
        full = full_batch.FullBatch(net, X, Y, sample_weight)

        def loss_grad(theta):
            cost, grad = full.evaluate(theta)
            weights = theta[mask]
            grad[mask] += (alpha / weight_sum) * weights
            loss = (cost * per_output + constant
                    + 0.5 * alpha * float(np.dot(weights, weights)) / weight_sum)
            return loss, grad

        iprint = 1 if (self.verbose is True or self.verbose >= 1) else -1
        with full:
            result = scipy.optimize.minimize(
                loss_grad, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_lbfgs_print_option(iprint)})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        net.params[...] = result.x

    def _fit_stochastic(self, X, Y, incremental, sample_weight=None):
        X_val = y_val = w_val = None
        w_train = sample_weight
        if self.early_stopping:
            # As scikit-learn: stratified for a classifier with one output (binary) only, on
            # its encoding of the labels as booleans (its messages name 'True' / 'False').
            stratify = (Y.astype(bool) if isinstance(self, ClassifierMixin)
                        and self.n_outputs_ == 1 else None)
            if sample_weight is None:
                X, X_val, Y, y_val = train_test_split(X, Y, random_state=self._rng,
                                                      test_size=self.validation_fraction,
                                                      stratify=stratify)
            else:
                X, X_val, Y, y_val, w_train, w_val = train_test_split(
                    X, Y, sample_weight, random_state=self._rng,
                    test_size=self.validation_fraction, stratify=stratify)
                w_train = np.ascontiguousarray(w_train)
            if X_val.shape[0] < 2:
                raise InvalidValueError("The validation set is too small. Increase "
                                        "'validation_fraction' or the size of your dataset.")
            y_val = self._targets_back(y_val)
            best = self._net.params.copy()
        n = X.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It "
                              "is going to be clipped")
            batch = int(np.clip(self.batch_size, 1, n))
        n_batches = -(-n // batch)
        sgd = self.solver == "sgd"
        # The rows are checked once here, not once per epoch (as MLP.fit would).
        if w_train is None:
            source = sources.ArraySource(X, Y)
            weight_sum = float(n)
        else:
            source = sources.ArraySource(X, Y, sample_weight=w_train)
            weight_sum = float(w_train.sum())
        # scikit-learn's L2 gradient is alpha W / (the minibatch's total weight): the mean
        # minibatch's weight here (its row count without sample_weight).
        decay = (self.alpha / batch if w_train is None
                 else self.alpha * n / (batch * weight_sum) if weight_sum > 0 else 0.0)
        settings = fit_options.Settings(
            epochs=1, batch_size=batch, lr=getattr(self, "_velocity_lr", self._lr),
            schedule="constant", step_size=1, gamma=1.0, min_lr=0.0,
            shuffle=bool(self.shuffle), seed=None, early_stopping=None, optimizer=self.solver,
            dropout=fit_options.BY_NAME["dropout"].check(self.dropout, "dropout"),
            hyperparameters=dict(fit_options.hyperparameters_of(self), weight_decay=decay))
        constant = self._loss_constant(Y, w_train)
        run_options = fit_options.RunOptions(n_jobs=check_jobs(self.n_jobs))
        self._net.use_optimizer(self.solver)
        if not incremental:
            self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                if sgd and self._lr != settings.lr and self._net.step:
                    # scikit-learn's velocity carries the rate it was made with
                    # (v = mu v - lr g; theta += v); numba-dense's does not (v = mu v + g;
                    # theta -= lr v, as PyTorch's). Rescaling it when the rate changes makes
                    # the steps scikit-learn's exactly.
                    self._net.velocity *= self._net.dtype.type(settings.lr / self._lr)
                settings.lr = self._lr
                if self.shuffle or settings.dropout:
                    # the epoch's shuffle and dropout masks, from random_state
                    settings.seed = int(self._rng.randint(np.iinfo(np.int32).max))
                try:
                    cost = loop.run(self._net, source, None, settings, run_options).loss[0]
                except loop.DivergedError:
                    # scikit-learn checks nothing while it trains: its weights become inf or
                    # NaN and it goes on (NaN losses and validation scores) to max_iter;
                    # then early stopping brings back the best weights, else _fit raises
                    # its ValueError. ``run`` has put back the weights of the epoch's
                    # start: NaN stands for what scikit-learn's would be, and every later
                    # epoch diverges at its first batch.
                    self._net.params[...] = np.nan
                    cost = np.nan
                self.n_iter_ += 1
                self.t_ += n
                self.loss_ = self._loss(cost, n_batches, weight_sum) + constant
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if self._update_no_improvement_count(X_val, y_val, w_val):
                    best = self._net.params.copy()
                if self.solver == "sgd" and self.learning_rate == "invscaling":
                    self._lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._stop_or_slow_down():
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and "
                                  "the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            if signals.stop_requested():  # a search's Ctrl-C or error: the search stops
                raise
            warnings.warn("Training interrupted by user.")
            self._interrupted = True  # n_networks: no further member is trained
        self._velocity_lr = settings.lr
        if self.early_stopping:
            self._net.params[...] = best

    def _squared_error(self):
        """True for the squared error (scikit-learn's, averaged over the outputs)."""
        return (self.out_activation_ == "identity"
                and getattr(self, "loss", "squared_error") == "squared_error")

    def _loss(self, cost, n_batches, n):
        """scikit-learn's ``loss_``: the data loss plus ``alpha/2 ||W||^2`` per batch
        (``n``: the rows' total weight)."""
        if self._squared_error():
            cost /= self.n_outputs_  # scikit-learn's squared error averages over outputs
        weights = sum(float(np.dot(W.ravel(), W.ravel())) for W in self._net.weights)
        return float(cost + 0.5 * self.alpha * weights * n_batches / n)

    def _update_no_improvement_count(self, X_val, y_val, w_val=None):
        """scikit-learn's rule; True when the parameters are the best so far (early stopping)."""
        if self.early_stopping:
            score = self._score_dense(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                return True
            return False
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]
        return False

    def _stop_or_slow_down(self):
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
               % (what, self.tol, self.n_iter_no_change))
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._lr /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._lr)
        return False

    def _score_dense(self, X, y, sample_weight=None):
        """``score`` on rows already validated (no second feature-name check)."""
        from sklearn.metrics import accuracy_score, r2_score
        pred = self._predict_dense(X)
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan  # as scikit-learn's _score_with_function: a NaN score, no error
        score = accuracy_score if isinstance(self, ClassifierMixin) else r2_score
        return float(score(y, pred, sample_weight=sample_weight))

    def predict(self, X):
        """Predictions: values (n_samples,) or (n_samples, n_outputs) for a regressor; labels
        (n_samples,), or an indicator matrix for multi-label problems, for a classifier."""
        return self._predict_dense(self._outputs(X))

    def _outputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False,
                          dtype=(np.float64, np.float32))
        return self._unknown_codes(self._dense(X, self._net.dtype))

    def _unknown_codes(self, X):
        """X with each categorical column's missing codes (negative) and those beyond the
        training X's mapped to the column's last table row, as HistGradientBoosting treats
        both as missing (copied only when there is one); ``InvalidValueError`` for a code
        that is not an integer."""
        embeddings = self._net.embeddings
        if embeddings is None or is_sparse(X):
            return X
        copied = False
        for column, n in zip(embeddings.columns, embeddings.cardinalities):
            codes = X[:, column]
            _check_integer_codes(codes, column)
            unknown = (codes < 0) | (codes > n - 2)
            if unknown.any():
                if not copied:
                    X, copied = X.copy(), True
                X[unknown, column] = n - 1
        return X


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's ``MLPRegressor`` on numba-dense's compiled epochs.

    Parameters, fitted attributes and methods are scikit-learn's (see its documentation);
    ``dtype`` (default None: the input's float dtype) is numba-dense's extra. ``loss``:
    "squared_error" (an identity output) or "poisson" (the half Poisson deviance on a log
    link: the output is ``exp`` of the last layer, ``out_activation_ == "exp"``), and, with
    scikit-learn gradient boosting's names, "huber" (``delta`` 1 in the target's units:
    these estimators do not standardize y), "absolute_error" and "quantile" (the pinball
    loss at level ``quantile``, a multiple of 0.0001 in (0, 1); ``alpha`` stays the L2
    penalty). ``activation`` may also list one name per hidden layer.

    ``n_jobs`` (numba-dense's extra, default None): the threads a network's minibatch steps
    are split between where that gains (None or -1: the cores no other process is running
    on; ``numba_dense.model.training.threads``); the fit is the same on any count.

    ``categorical_features`` (default None; the name and forms of scikit-learn's
    ``HistGradientBoostingRegressor``): the columns of X that hold category codes, as
    column indices, feature names (of a DataFrame X) or a boolean mask of X's columns.
    Each is read through a learned embedding (``MLP(embeddings=...)``, docs/guide.md
    "Category embeddings") of ``max(code) + 2`` rows over the training X and fastai's
    width ``min(600, round(1.6 * n ** 0.56))``, not as a number: the codes must be
    integers (an error naming the first that is not). As in HistGradientBoosting, a
    negative code is a missing value and a code beyond the training X's, in ``predict``,
    an unknown category, treated as missing: both read the last row, trained on the rows
    with a missing code (zero when there are none). So an ``OrdinalEncoder(
    handle_unknown="use_encoded_value", unknown_value=-1)`` before the estimator works.
    ``is_categorical_`` is the fitted mask; ``coefs_[0]`` is then the first dense layer's
    weights over X's other columns and the embeddings, (n_numbers + sum of widths, n_1).
    ``max_embedding_dim`` (default None): the widest an embedding may be.

    ``n_networks`` (numba-dense's extra, default 1): K > 1 trains K networks on the same rows,
    member k with ``random_state + k`` (``_member_states``), and ``predict`` averages their
    outputs; ``networks_`` lists them, and the fitted attributes of scikit-learn's
    (``coefs_``, ``loss_curve_``, ...) describe member 0. ``partial_fit`` refuses K > 1.
    Ctrl-C stops the member being trained (kept, with scikit-learn's "Training interrupted
    by user." warning) and trains no further one: ``networks_`` and the predictions are then
    those of the members trained so far.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 n_networks=1,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, quantile=None, dropout=0.0, n_jobs=None,
                 categorical_features=None, max_embedding_dim=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            n_networks=n_networks,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype, dropout=dropout, n_jobs=n_jobs,
            categorical_features=categorical_features, max_embedding_dim=max_embedding_dim)
        self.loss = loss
        self.quantile = quantile

    def _prepare(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset)
        if self.loss == "poisson" and np.any(np.asarray(y) < 0):
            # scikit-learn's PoissonRegressor's words (its MLPRegressor trains on and
            # reports a NaN loss).
            raise InvalidValueError("Some value(s) of y are out of the valid range of the "
                                    "loss 'HalfPoissonLoss'.")
        Y = np.asarray(y, dtype=X.dtype)
        return X, np.ascontiguousarray(Y.reshape(len(Y), -1))

    def _output(self, Y):
        return "exp" if self.loss == "poisson" else "identity"

    def _targets_back(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features) and y (n_samples,) or
        (n_samples, n_outputs); ``sample_weight`` (n_samples,) weighs each row's loss."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over the given rows (the optimizer's state carries over)."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _predict_dense(self, X):
        out = self._averaged("predict", X)
        return out.ravel() if out.shape[1] == 1 else out


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's ``MLPClassifier`` on numba-dense's compiled epochs.

    Labels of any type (strings too), binary (one logistic output), multiclass (softmax)
    and multi-label (an indicator matrix: one logistic output per label).

    ``class_weight`` (numba-dense's extra; scikit-learn's meaning, as in its
    ``LogisticRegression``): None, "balanced" (``n_samples / (n_classes * count)`` per
    class, ``sklearn.utils.class_weight.compute_class_weight``) or a dict ``{label:
    weight}``; each row's weight is its class's times its ``sample_weight``. "balanced" is
    refused by ``partial_fit``. ``activation`` may also list one name per hidden layer.

    ``n_networks`` (default 1): K > 1 trains K networks (member k with ``random_state + k``)
    whose probabilities ``predict_proba`` averages, ``predict`` giving the label of the
    highest mean probability; ``networks_`` lists them, ``coefs_`` and the other fitted
    attributes describe member 0, and Ctrl-C stops training as in ``MLPRegressor``.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 n_networks=1,
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype=None, class_weight=None, dropout=0.0, n_jobs=None,
                 categorical_features=None, max_embedding_dim=None):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            n_networks=n_networks,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, dtype=dtype, dropout=dropout, n_jobs=n_jobs,
            categorical_features=categorical_features, max_embedding_dim=max_embedding_dim)
        self.class_weight = class_weight

    def _prepare(self, X, y, incremental, reset):
        X, y = self._validate(X, y, reset)
        if y.dtype == object and any(label is None for label in np.ravel(y)):
            # scikit-learn's own fit fails in np.unique ("'<' not supported between ...").
            raise InvalidValueError("Input y contains None.")
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start and set(classes) != set(self.classes_):
                raise InvalidValueError("warm_start can only be used where `y` "
                                        "has the same classes "
                                        "as in the previous call to fit. "
                                        "Previously got %s, `y` has %s"
                                        % (self.classes_, classes))
            if not self.warm_start and len(np.setdiff1d(classes, self.classes_,
                                                        assume_unique=True)):
                raise InvalidValueError("`y` has classes not in `self.classes_`. `self.classes_` "
                                        "has %s. 'y' has %s." % (self.classes_, classes))
        Y = self._label_binarizer.transform(y).astype(X.dtype)
        return X, Y

    def _output(self, Y):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "sigmoid"

    def _targets_back(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features) and labels y (n_samples,), or an
        indicator matrix (n_samples, n_labels) for multi-label classification;
        ``sample_weight`` (n_samples,) weighs each row's loss."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over the given rows; ``classes`` (every label) on the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def _probabilities(self, X):
        """(n_samples, n_outputs) probabilities of the output units; X validated."""
        P = self._averaged("predict_proba", X)
        if self.out_activation_ == "logistic" and self.n_outputs_ == 1:
            P = P[:, 1:]
        return P

    def _predict_dense(self, X):
        P = self._probabilities(X)
        if self.n_outputs_ == 1:
            P = P.ravel()
        return self._label_binarizer.inverse_transform(P)

    def predict_proba(self, X):
        """Probabilities (n_samples, n_classes); multi-label: (n_samples, n_labels)."""
        P = self._probabilities(self._outputs(X)).astype(np.float64)
        if self.n_outputs_ == 1:
            return np.hstack([1 - P, P])
        return P

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))
