"""Saving and loading networks as .npz files: plain arrays only, never pickle."""

import json
import os
from dataclasses import asdict

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ... import kernels

from ...kernels.variants import LOSS_TABLE
from ..data.targets import SCALE_POWER

from ..data.sources import read_npz
from ..training.history import History
from ..data.tabular import Preprocessing, check_preprocessing, column_width
from ..data.paths import atomic_write
from ..data.targets import TargetScaling
from ..data.validation import first_nonfinite
from .embeddings import CategoryEmbeddings

FORMAT = "numba-dense-mlp"
# 6 category embeddings (embedding_columns, _cardinalities, _dims: optional, and
# layer_sizes[0] X's columns); 5 the regression target's scaling; 4 the optimizer and its
# step, and a table file's preprocessing; 3 the last fit's history; 2 the cost ("loss")
VERSION = 6


def atomic_savez(path, what, **arrays):
    """``np.savez`` to ``path`` through a temporary file and a rename: never a half file."""
    atomic_write(path, what, lambda f: np.savez(f, **arrays))


def network_arrays(net):
    """Everything that defines a trained network, as plain arrays (the history as JSON)."""
    history = getattr(net, "history", None)
    embeddings = getattr(net, "embeddings", None)
    return dict(format=np.array(FORMAT), version=np.array(VERSION),
                layer_sizes=np.array(net.layer_sizes, np.int64),
                **({} if embeddings is None else embeddings.to_arrays()),
                hidden=np.array(net.hidden), output=np.array(net.output),
                loss=np.array(net.loss), dtype=np.array(net.dtype.name),
                **({} if getattr(net, "quantile", None) is None
                   else {"quantile": np.array(net.quantile)}),
                params=net.params, velocity=net.velocity,
                optimizer=np.array(net.optimizer), step=np.array(net.step),
                fit_history=np.array(json.dumps(asdict(history)) if history else ""),
                preprocessing=np.array(net.preprocessing.to_json() if getattr(
                    net, "preprocessing", None) is not None else ""),
                **_scaling_arrays(getattr(net, "target_scaling", None)))


def _scaling_arrays(scaling):
    if scaling is None:
        return {"target_mean": np.empty(0), "target_scale": np.array(1.0)}
    return scaling.to_arrays()


def save(net, path):
    """Write ``net`` to ``path`` (the exact name given); a crash mid-write leaves no half file.

    A network whose parameters hold NaN or inf is refused (ValueError): ``load`` would
    refuse the file, and its predictions would be NaN."""
    bad = first_nonfinite(net.params)
    if bad >= 0:
        raise InvalidValueError("save: params hold %s at index %d; a network "
                                "with NaN/inf parameters "
                                "predicts NaN and is not written (train it again, with a lower lr)"
                                % ("NaN" if np.isnan(net.params[bad]) else "inf", bad))
    check_preprocessing(net)  # a Preprocessing of the network's inputs, or None
    atomic_savez(path, "save", **network_arrays(net))


def _bad(path, why):
    return InvalidValueError("load: %r is not a valid numba-dense model file: %s"
                             % (os.fspath(path), " ".join(str(why).split())))


def bad_file(path, exc):
    """The one-line error for a saved model whose fields are each valid but do not go
    together (``MLP.load``: the constructor's own check of them), naming the file."""
    return _bad(path, exc)


def read_arrays(path, what="load"):
    """Every array of an .npz file, or a clear error."""
    try:
        return read_npz(path, what)
    except ValueError as exc:
        raise _bad(os.fspath(path), str(exc).split(": ", 2)[-1]) from None


#: The output layers a saved network may name: the activations and softmax (``MLP``'s
#: ``OUTPUTS``; whether output and loss go together is the constructor's check).
_OUTPUTS = tuple(kernels.ACTIVATIONS) + tuple(
    c.output for c in LOSS_TABLE if c.output != "any" and c.output not in kernels.ACTIVATIONS)

_DTYPES = ("float32", "float64")


def _text(path, arrays, key, options=None, default=None):
    """The string saved as ``key`` (a 0-d string array), one of ``options`` when given."""
    if key not in arrays:
        return default
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise _bad(path, "%s must be a string, got %s of shape %s"
                   % (key, _kind(value), value.shape))
    text = str(value)
    if options is not None and text not in options:
        raise _bad(path, "%s is %r, not one of %s" % (key, text, ", ".join(map(repr, options))))
    return text


def _hidden(path, arrays):
    """The hidden layers' activation: one name (a 0-d string array), or one name per
    hidden layer (a 1-D string array, saved from ``MLP(hidden=[...])``)."""
    value = arrays.get("hidden")
    if value is not None and value.ndim == 1 and value.dtype.kind == "U":
        names = [str(v) for v in value]
        bad = [n for n in names if n not in kernels.ACTIVATIONS]
        if bad:
            raise _bad(path, "hidden holds %r, not one of %s"
                       % (bad[0], ", ".join(map(repr, kernels.ACTIVATIONS))))
        return names
    return _text(path, arrays, "hidden", tuple(kernels.ACTIVATIONS))


def _kind(value):
    return "dtype %s" % value.dtype if value.dtype.kind != "U" else "a string"


def _whole(path, arrays, key, minimum, default=None):
    """The integer saved as ``key`` (a 0-d integer array), >= ``minimum``."""
    if key not in arrays:
        return default
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind not in "iu":
        raise _bad(path, "%s must be an integer, got %s of shape %s"
                   % (key, _kind(value), value.shape))
    if int(value) < minimum:
        raise _bad(path, "%s is %d; it must be >= %d" % (key, int(value), minimum))
    return int(value)


def _vector(path, arrays, key, dtype, n):
    """The (n,) array of ``dtype`` saved as ``key``, every value finite."""
    value = arrays[key]
    plural = key == "params"
    if value.shape != (n,):
        raise _bad(path, "%s has shape %s but layer_sizes %s need (%d,)"
                   % (key, value.shape, arrays["layer_sizes"].tolist(), n))
    if value.dtype != np.dtype(dtype):
        raise _bad(path, "%s %s %s but the model's dtype is %s"
                   % (key, "are" if plural else "is", value.dtype, dtype))
    bad = first_nonfinite(value)
    if bad >= 0:
        raise _bad(path, "%s %s %s at index %d" % (
            key, "hold" if plural else "holds", "NaN" if np.isnan(value[bad]) else "inf", bad))
    return value


def load(path, arrays=None):
    """The saved state of a network as a dict of plain values.

    Every field is checked here, so that a damaged or hand-made file is refused when it
    loads (a ValueError naming the file and the field), never at its first use: the format
    and version, the names (hidden, output, loss, dtype, optimizer), the layer sizes, the
    dtype, shape and finiteness of the parameters and optimizer state, the step count,
    the history, the target scaling and a table file's preprocessing.
    """
    path = os.fspath(path)
    if arrays is None:
        arrays = read_arrays(path)
    fmt = arrays.get("format")
    if isinstance(fmt, np.ndarray) and fmt.ndim == 0 and str(fmt) == "numba-dense-ensemble":
        raise _bad(path, "it holds an ensemble (format 'numba-dense-ensemble'), not one "
                   "network: read it with Ensemble.load or numba_dense.model.load_model")
    needed = ("format", "version", "layer_sizes", "hidden", "output", "dtype", "params",
              "velocity")
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise _bad(path, "missing arrays %s" % ", ".join(missing))
    for key, value in arrays.items():  # a member that is not a .npy array comes as bytes
        if not isinstance(value, np.ndarray):
            raise _bad(path, "member %r is not a NumPy array (got %s)"
                       % (key, type(value).__name__))
    if str(arrays["format"]) != FORMAT:
        raise _bad(path, "format is %r, expected %r" % (str(arrays["format"]), FORMAT))
    version = _whole(path, arrays, "version", 1)
    if version > VERSION:
        raise _bad(path, "version %d, this numba-dense reads versions 1 to %d"
                   % (version, VERSION))
    # What each version writes is required of it (a field left out would otherwise take a
    # default: an sgd optimizer, no target scaling).
    since = {4: ("optimizer", "step"), 5: ("target_mean", "target_scale")}
    lacking = [key for v, keys in since.items() if version >= v for key in keys
               if key not in arrays]
    if lacking:
        raise _bad(path, "version %d lacks %s" % (version, ", ".join(lacking)))
    sizes = arrays["layer_sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or (sizes < 1).any():
        raise _bad(path, "layer_sizes is %s (%s); it must list at least 2 widths >= 1"
                   % (sizes.tolist(), sizes.dtype))
    hidden = _hidden(path, arrays)
    output = _text(path, arrays, "output", _OUTPUTS)
    loss = _text(path, arrays, "loss", tuple(kernels.LOSSES), default="mse")
    dtype = _text(path, arrays, "dtype", _DTYPES)
    optimizer = _text(path, arrays, "optimizer", tuple(kernels.OPTIMIZERS), default="sgd")
    step = _whole(path, arrays, "step", 0, default=0)
    embeddings = _embeddings(path, arrays, int(sizes[0]))
    dense_sizes = sizes.astype(np.int64)
    if embeddings is not None:
        dense_sizes[0] = embeddings.input_width(int(sizes[0]))
        if dense_sizes[0] < 1:
            raise _bad(path, "the embeddings leave the network no input")
    try:
        n_params = int(kernels.param_count(dense_sizes)) + (
            0 if embeddings is None else embeddings.table_size)
    except OverflowError:
        raise _bad(path, "layer_sizes %s make more than 2**63 - 1 parameters"
                   % sizes.tolist()) from None
    vectors = kernels.OPTIMIZER_TABLE[kernels.OPTIMIZERS[optimizer]].state_vectors
    params = _vector(path, arrays, "params", dtype, n_params)
    velocity = _vector(path, arrays, "velocity", dtype, vectors * n_params)
    scaling = _target_scaling(path, arrays, int(sizes[-1]))
    if scaling is not None and (output != "identity" or loss not in SCALE_POWER):
        raise _bad(path, "target_mean / target_scale: a target scaling belongs to a regression "
                   "(output 'identity', loss 'mse', 'huber', 'absolute_error' or 'quantile'), "
                   "not output %r with loss %r" % (output, loss))
    quantile = None
    if "quantile" in arrays:
        value = arrays["quantile"]
        if value.ndim != 0 or value.dtype.kind != "f":
            raise _bad(path, "quantile must be a float, got %s of shape %s"
                       % (_kind(value), value.shape))
        quantile = float(value)
    return {"layer_sizes": sizes.tolist(), "hidden": hidden, "output": output,
            "embeddings": None if embeddings is None else embeddings.as_dict(),
            "dtype": dtype, "loss": loss, "quantile": quantile,
            "params": params, "velocity": velocity,
            "optimizer": optimizer, "step": step,
            "history": _history(path, arrays),
            "preprocessing": _preprocessing(path, arrays, int(sizes[0])),
            "target_scaling": scaling}


#: The arrays of a network's category embeddings (``embeddings.CategoryEmbeddings``).
_EMBEDDING_KEYS = ("embedding_columns", "embedding_cardinalities", "embedding_dims")


def _embeddings(path, arrays, n_columns):
    """The saved ``CategoryEmbeddings``, checked, or None for a network without."""
    present = [key for key in _EMBEDDING_KEYS if key in arrays]
    if not present:
        return None
    if len(present) != len(_EMBEDDING_KEYS):
        raise _bad(path, "%s without %s" % (", ".join(present), ", ".join(
            key for key in _EMBEDDING_KEYS if key not in arrays)))
    columns, cards, dims = (arrays[key] for key in _EMBEDDING_KEYS)
    for key, value in zip(_EMBEDDING_KEYS, (columns, cards, dims)):
        if value.ndim != 1 or value.dtype.kind not in "iu" or len(value) != len(columns):
            raise _bad(path, "%s must be a 1-D integer array of %d entries, got %s of shape "
                       "%s" % (key, len(columns), value.dtype, value.shape))
    try:
        return CategoryEmbeddings.parse(
            {int(c): (int(n), int(d)) for c, n, d in zip(columns, cards, dims)}, n_columns)
    except (ValueError, TypeError) as exc:
        raise _bad(path, str(exc)) from None


def _target_scaling(path, arrays, n_outputs):
    try:
        return TargetScaling.from_arrays(arrays, n_outputs)
    except (ValueError, TypeError) as exc:
        raise _bad(path, str(exc)) from None


#: What every saved preprocessing holds (``tabular.Preprocessing.fit``, since 0.1).
_PREPROCESSING_FIELDS = ("target", "task", "columns", "classes", "scale", "feature_names",
                         "rows", "dropped_rows", "imputed", "source")


def _preprocessing_problem(spec, n_inputs):
    """What is wrong with a saved preprocessing (its JSON, parsed), or None."""
    if not isinstance(spec, dict):
        return "is JSON %s, not an object" % type(spec).__name__
    missing = [key for key in _PREPROCESSING_FIELDS if key not in spec]
    if missing:
        return "lacks %s" % ", ".join(map(repr, missing))
    if not isinstance(spec["target"], str):
        return "target is %r, not a column name" % (spec["target"],)
    if spec["task"] not in ("regression", "classification"):
        return "task is %r, not 'regression' or 'classification'" % (spec["task"],)
    classes = spec["classes"]
    if spec["task"] == "classification" and (not isinstance(classes, list) or not classes):
        return "classes is %r; a classification needs a list of its classes" % (classes,)
    columns, names = spec["columns"], spec["feature_names"]
    if not isinstance(columns, list) or not columns:
        return "columns is %r, not a list of columns" % (columns,)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return "feature_names is not a list of names"
    if len(names) != n_inputs:
        return ("feature_names lists %d inputs but the network has %d (layer_sizes[0])"
                % (len(names), n_inputs))
    width = 0
    for i, column in enumerate(columns):
        where = "columns[%d]" % i
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            return "%s is %s, not a column with a name" % (where, _short(column))
        kind = column.get("kind")
        if kind == "numeric":
            for key in ("mean", "scale"):
                value = column.get(key)
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not np.isfinite(value) or (key == "scale" and value == 0):
                    return "%s (%r) has %s %r" % (where, column["name"], key, value)
            if column.get("encoding", "standard") not in ("standard", "ple"):
                return "%s (%r) has encoding %r, not 'standard' or 'ple'" \
                    % (where, column["name"], column.get("encoding"))
            if column.get("encoding") == "ple":
                edges = column.get("edges")
                if not _increasing(edges):
                    return "%s (%r) has edges %s, not a list of at least two increasing " \
                        "finite numbers" % (where, column["name"], _short(edges))
        elif kind == "text":
            if not isinstance(column.get("categories"), list):
                return "%s (%r) has no list of categories" % (where, column["name"])
            if column.get("infrequent") and not isinstance(column.get("rare"), list):
                return "%s (%r) groups rare values but has no list of them" \
                    % (where, column["name"])
        elif kind == "code":  # a text column read as a category code (an embedding)
            for key in ("categories", "rare"):
                if not isinstance(column.get(key), list):
                    return "%s (%r) has no list of %s" % (where, column["name"], key)
        else:
            return "%s (%r) has kind %r, not 'numeric', 'text' or 'code'" \
                % (where, column["name"], kind)
        width += column_width(column)  # its fields checked above
    if width != len(names):
        return "columns make %d inputs but feature_names lists %d" % (width, len(names))
    return None


def _increasing(edges):
    """True for a list of at least two finite numbers, each above the one before."""
    if not isinstance(edges, list) or len(edges) < 2 or not all(
            isinstance(e, (int, float)) and not isinstance(e, bool) for e in edges):
        return False
    edges = np.asarray(edges, np.float64)
    return bool(np.isfinite(edges).all() and (np.diff(edges) > 0).all())


def _preprocessing(path, arrays, n_inputs):
    """The ``tabular.Preprocessing`` saved with a network trained on a table file, or None."""
    text = _text(path, arrays, "preprocessing", default="")
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise _bad(path, "preprocessing is not valid JSON: %s" % exc) from None
    why = _preprocessing_problem(spec, n_inputs)
    if why:
        raise _bad(path, "preprocessing %s" % why)
    try:
        prep = Preprocessing.from_json(text)
        prep.summary()  # a cheap use of every field the checks above did not look at
    except (KeyError, TypeError, AttributeError, ValueError, IndexError) as exc:
        raise _bad(path, "preprocessing is not valid (%s: %s)"
                   % (type(exc).__name__, exc)) from None
    return prep


#: The lists of a saved ``History``, one number per epoch.
_HISTORY_LISTS = ("loss", "val_loss", "lr", "seconds", "comm_seconds")


def _history(path, arrays):
    """The saved ``History`` of the last fit, or None (older files, untrained networks)."""
    text = _text(path, arrays, "fit_history", default="")
    if not text:
        return None
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise InvalidTypeError("JSON %s, not an object" % type(spec).__name__)
        history = History(**spec)
    except (ValueError, TypeError) as exc:
        raise _bad(path, "fit_history is not a valid history: %s" % exc) from None
    for key in _HISTORY_LISTS:
        values = getattr(history, key)
        if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise _bad(path, "fit_history: %s is %s, not a list of numbers"
                       % (key, _short(values)))
    for key in ("best_epoch", "stopped_epoch", "interrupted_epoch"):
        value = getattr(history, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _bad(path, "fit_history: %s is %r, not an epoch number" % (key, value))
    return history


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
