"""How every kind of input becomes rows for a network: arrays, memmaps and ``.npy`` files,
table files, and the targets that go with them.

``MLP`` keeps to the network; what turns ``X`` and ``y`` into checked sources
(``sources.Source``), a table into arrays through its preprocessing (``model.data.tabular``),
and a network's outputs back into the target's units lives here.
"""

import contextlib
import os
import tempfile

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from . import sources, tabular
from .sources import EVAL_BATCH
from .targets import ROBUST_LOSSES, TargetScaling, target_moments
from .validation import (as_features, check_matrix_shape, check_target_rows, described,
                         float_matrix, is_sparse, targets_matrix, plain)


def features_of(net, X, name="X"):
    """X as the network's dense (or SciPy sparse) rows of its dtype, checked; with category
    embeddings, its codes checked too (before a cast to float32 could round a code that is
    not an integer onto one)."""
    embeddings = getattr(net, "embeddings", None)
    before_cast = (embeddings is not None and isinstance(X, np.ndarray) and X.ndim == 2
                   and X.dtype.kind == "f" and X.dtype != net.dtype
                   and X.shape[1] == net.n_inputs)
    if before_cast:
        embeddings.check_codes(X, name)
    Xc = as_features(X, name, net.dtype, net.n_inputs)
    if embeddings is not None:
        if is_sparse(Xc):
            raise InvalidValueError("%s is a sparse matrix, but a network with category "
                                    "embeddings reads its code columns row by row: pass a "
                                    "dense array" % name)
        if not before_cast:  # (codes valid before the cast stay valid: MLP's 2**24 bound)
            embeddings.check_codes(Xc, name)
    return Xc


def targets_of(net, y, name, n_rows, x_name):
    check_target_rows(y, name, n_rows, x_name)
    return targets_matrix(y, name, net.dtype, net.n_outputs, net._target_kind)


def source_of(net, X, y, x_name, y_name, batch_size=1, chunk_rows=None, sample_weight=None,
              *, values_to_epoch=False):
    """An ArraySource or, for paths and memmaps, a StreamSource; checked, nothing changed.
    With ``sample_weight`` (N,) an ArraySource always (weighted rows are held in memory).
    ``values_to_epoch``: an unweighted dense X in memory is converted but its values are
    left unchecked (the source's ``values_check``), for a first epoch that finds a NaN or
    inf itself (``fit_sources``)."""
    if sample_weight is not None:
        if sources.is_streamed(X):
            X, y = np.asarray(sources.open_array(X, x_name)), np.asarray(
                sources.open_array(y, y_name))
        Xc = features_of(net, X, x_name)
        return sources.ArraySource(Xc, targets_of(net, sources.open_array(y, y_name), y_name,
                                                  Xc.shape[0], x_name), sample_weight)
    if sources.is_streamed(X):
        Xm = sources.open_array(X, x_name)
        ym = sources.open_array(y, y_name)
        check_matrix_shape(Xm, x_name, net.n_inputs, "features")
        check_target_rows(ym, y_name, Xm.shape[0], x_name)
        # The targets' shape and values are checked on the first rows now, the rest
        # chunk by chunk as they are read.
        targets_matrix(np.asarray(ym[:1]), y_name, net.dtype, net.n_outputs,
                       net._target_kind)
        batch_size = max(1, min(batch_size, Xm.shape[0]))  # as in memory: <= the rows
        rows = sources.chunk_rows_for(net.n_inputs, net.dtype, batch_size, chunk_rows)
        return sources.StreamSource(Xm, ym, (x_name, y_name),
                                    (net.dtype, net.n_outputs, net._target_kind), rows,
                                    codes=getattr(net, "embeddings", None))
    if not (values_to_epoch and not is_sparse(X) and getattr(net, "embeddings", None) is None):
        Xc = features_of(net, X, x_name)
        return sources.ArraySource(Xc, targets_of(net, sources.open_array(y, y_name), y_name,
                                                  Xc.shape[0], x_name))
    Xc, values_check = float_matrix(X, x_name, net.dtype, net.n_inputs, "features")
    try:
        Y = targets_of(net, sources.open_array(y, y_name), y_name, Xc.shape[0], x_name)
    except (ValueError, TypeError):
        values_check(Xc)  # X's own bad value first, as when X was checked before y
        raise
    return sources.ArraySource(Xc, Y, values_check=values_check)


def fit_sources(net, X, y, settings, data_options, sample_weight=None, values_to_epoch=False):
    """(training source, validation source or None) that ``fit`` trains on, checked;
    nothing changed. ``settings``: a ``training.options.Settings``; ``data_options``: a
    ``training.options.DataOptions``; ``sample_weight``: ``row_weights``' or None.

    ``values_to_epoch``: the training rows' values are left unchecked, for a first epoch
    that finds a NaN or inf itself (``training.loop.epoch_finds_nonfinite``): it saves a
    read of X, as long as a large X's one-layer epoch (``source_of``). Validation rows,
    which no epoch trains on, are checked now. Where a check after X's fails (y, the
    validation rows or options), X's values are checked first, so that the error names
    X's first bad value, as when X was checked before everything else."""
    source = source_of(net, X, y, "X", "y", settings.batch_size, data_options.chunk_rows,
                       sample_weight, values_to_epoch=values_to_epoch)
    try:
        return _with_validation(net, source, settings, data_options)
    except (ValueError, TypeError):
        source.check_values()
        raise


def _with_validation(net, source, settings, data_options):
    """``fit_sources``' pair once the training rows' source is made."""
    validation_data = data_options.validation_data
    fraction = data_options.validation_fraction
    chunk_rows = data_options.chunk_rows
    val_source = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise InvalidTypeError("validation_data must be a pair (X_val, y_val), got %s"
                                   % described(validation_data))
        val_source = source_of(net, *validation_data, "validation X", "validation y",
                               EVAL_BATCH, chunk_rows)
    elif fraction:
        n_val = int(source.n_rows * fraction)
        if not 0 < n_val < source.n_rows:
            raise InvalidValueError("validation_fraction=%g of %d rows "
                                    "leaves %d for validation "
                                    "and %d for training; both need at least one"
                                    % (fraction, source.n_rows, n_val, source.n_rows - n_val))
        if data_options.validation_seed is None:
            source, val_source = source.split(n_val)
        else:
            source, val_source = source.split_random(
                n_val, np.random.default_rng(data_options.validation_seed))
        val_source.check_values()
    if settings.early_stopping is not None and val_source is None:
        raise InvalidValueError("early_stopping needs validation rows: pass validation_data "
                                "or validation_fraction")
    return source, val_source


def class_labels_of(net, y):
    """One class index per row of a classifier's targets ``y`` (N,) labels or (N, K)
    one-hot rows (argmax); ``InvalidValueError`` for several labels a row (multi-label)."""
    Y = np.asarray(y)
    if Y.ndim == 2 and Y.shape[1] == 1:
        Y = Y[:, 0]
    if Y.ndim == 1:
        return Y
    if net.output == "softmax":
        return Y.argmax(axis=1)
    raise InvalidValueError("class_weight needs one label per row, got y of shape %s "
                            "(several sigmoid outputs: multi-label)" % (Y.shape,))


def _short_list(values, most=10):
    """``[a, b, ...]`` of at most ``most`` plain values, for a message."""
    return "[%s%s]" % (", ".join(plain(v) for v in list(values)[:most]),
                       ", ..." if len(values) > most else "")


def class_weights(labels, class_weight):
    """Each row's weight from its label and ``class_weight`` ("balanced" or a dict),
    scikit-learn's ``compute_sample_weight`` meaning; float64 (N,)."""
    classes, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if isinstance(class_weight, str) and class_weight == "balanced":
        per_class = len(labels) / (len(classes) * counts.astype(np.float64))
    elif isinstance(class_weight, dict):
        per_class = np.ones(len(classes))
        # a key that names no class would be ignored without a word: a typo's weight lost
        unknown = [c for c in class_weight if not np.any(classes == c)]
        if unknown:
            raise InvalidValueError("class_weight names %s, not classes of y (its classes are "
                                    "%s)" % (_short_list(unknown), _short_list(classes)))
        for c, w in class_weight.items():
            if not (isinstance(w, (int, float, np.integer, np.floating))
                    and not isinstance(w, bool) and np.isfinite(w) and w >= 0):
                raise InvalidValueError("class_weight[%r] must be a finite number >= 0, got %r"
                                        % (c, w))
            per_class[classes == c] = float(w)
    else:
        raise InvalidValueError("class_weight must be 'balanced' or a dict {class: weight}, "
                                "got %r" % (class_weight,))
    return per_class[index.ravel()]


def row_weights(net, y, sample_weight, class_weight):
    """The per-row weights ``fit`` trains with (float64 (N,)): ``sample_weight`` (checked:
    one finite weight >= 0 per row) times the class weights of ``class_weight``."""
    n = len(sources.open_array(y, "y"))
    weights = np.ones(n)
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        if w.ndim != 1 or w.dtype.kind not in "iuf" or len(w) != n:
            raise InvalidValueError("sample_weight must be a 1-D array of %d numbers (one per "
                                    "row of y), got %s of shape %s" % (n, w.dtype, w.shape))
        if not np.isfinite(w).all() or (w < 0).any():
            raise InvalidValueError("sample_weight must be finite and >= 0, got %s"
                                    % plain(w[~(np.isfinite(w) & (w >= 0))][0]))
        weights = weights * w
    if class_weight is not None:
        weights = weights * class_weights(class_labels_of(net, sources.open_array(y, "y")),
                                          class_weight)
    if n and not weights.any():  # an epoch would take no step and report a cost of 0
        given = [name for name, value in (("sample_weight", sample_weight),
                                          ("class_weight", class_weight)) if value is not None]
        raise InvalidValueError("%s: every row weighs 0, so there is nothing to train on"
                                % " times ".join(given))
    return weights


def target_scaling_for(net, source, standardize_target):
    """The ``TargetScaling`` a fit trains with: the network's own when it has one (it was
    trained with it), else learned from the training rows' targets, or None (MPI:
    ``distributed._target_scaling``)."""
    if net.target_scaling is not None or not net.scales_targets(standardize_target):
        return net.target_scaling
    if net.loss in ROBUST_LOSSES:  # median and MAD: outliers do not set the units
        return TargetScaling.learn_robust(source.target_blocks())
    return TargetScaling.learn(target_moments(source.target_blocks()))


def scaled(net, source):
    """A source whose targets are in the units the network's outputs are in."""
    return source if net.target_scaling is None else source.scaled(net.target_scaling)


@contextlib.contextmanager
def rows_of(net, X, y):
    """(X, y) as ``fit`` reads rows: a table file (``tabular.is_table``) as memmaps of its
    arrays through the network's preprocessing, in a temporary folder removed when the
    block ends; anything else as given."""
    if not tabular.is_table(X):
        yield X, y
        return
    with tempfile.TemporaryDirectory(prefix="numba-dense-") as work:
        yield table_arrays(net, X, y, work)


def table_arrays(net, path, target, work):
    """(X, y) memmaps of a table file through ``net.preprocessing`` (fit if needed)."""
    if not isinstance(target, str):
        raise InvalidTypeError("y: with a table file as X, y names its target column, got %s"
                               % type(target).__name__)
    prep = net.preprocessing
    if prep is not None:
        tabular.check_preprocessing(net)
        if prep.target != target and net.history is not None:
            raise InvalidValueError(
                "y: this network was trained to predict %r from %s, not %r; a further fit "
                "must keep its target and inputs (build a new MLP for %r)"
                % (prep.target, os.fspath(path), target, target))
    if prep is None or prep.target != target:
        prep = tabular.Preprocessing.fit(path, target, classify=net.is_classifier)
    if prep.n_features != net.n_inputs:
        shown = ", ".join(prep.feature_names[:8]) + (", ..." if prep.n_features > 8 else "")
        if getattr(net, "embeddings", None) is not None and not prep.embeddings:
            fix = ("this network embeds category codes: set net.preprocessing = "
                   "Preprocessing.fit(path, target, category_encoding=\"embedding\") (or "
                   "\"auto\") and build the network for it")
        else:
            fix = "build it as MLP([%d, ...]%s)" % (
                prep.n_features, ", embeddings=prep.embeddings" if prep.embeddings else "")
        raise InvalidValueError("%s makes %d inputs (%s) but the network has %d: %s"
                                % (os.fspath(path), prep.n_features, shown, net.n_inputs, fix))
    tabular.check_embeddings(prep, net, os.fspath(path))
    X, y = prep.write_npy(path, os.path.join(work, "X.npy"), os.path.join(work, "y.npy"))
    net.preprocessing = prep
    return X, y


def table_preprocessing(net, path):
    if net.preprocessing is None:
        raise InvalidValueError("%s is a table file, but this network was "
                                "not trained on one: it "
                                "has no preprocessing to read it with (convert it with "
                                "`python -m numba_dense "
                                "convert` and pass arrays)" % os.fspath(path))
    return tabular.check_preprocessing(net)


def outputs(net, X):
    """The last layer's outputs (logits for a cross-entropy network), (N, n_L)."""
    if tabular.is_table(X):
        net.last_read = {}
        chunks = [net._forward(Xc) for Xc, _ in
                  table_preprocessing(net, X).batches(X, with_target=False,
                                                      counts=net.last_read)]
        return (np.concatenate(chunks) if chunks
                else np.empty((0, net.n_outputs), net.dtype))
    if sources.is_streamed(X):
        Xm = sources.open_array(X, "X")
        check_matrix_shape(Xm, "X", net.n_inputs, "features")
        out = np.empty((Xm.shape[0], net.n_outputs), net.dtype)
        rows = sources.chunk_rows_for(net.n_inputs, net.dtype, 1)
        for a, b, Xc in sources.feature_chunks(Xm, "X", net.dtype, rows,
                                               getattr(net, "embeddings", None)):
            out[a:b] = net._forward(Xc)
        return out
    return net._forward(features_of(net, X))
