"""The records compiled code takes in place of long argument lists.

Each is a named tuple, which Numba types field by field: pass one from Python or build one
inside your own ``@njit`` code (``Network(sizes, acts, loss)``). The factory functions
(``network``, ``batches``; ``kernels.optimizer`` for ``kernels.Optimizer``) convert their
fields to the types the compiled versions were made for, so a list of ints or an int32
array does not compile another version.
"""

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload

from .errors import InvalidTypeError, InvalidValueError
from ._checks import INT, INTS, WEIGHTS, Arg
from .variants import LOSSES, MSE, quantile_code


class Network(namedtuple("Network", "sizes acts loss")):
    """How compiled code sees a network: ``sizes`` (L + 1,) int64, the width of every layer,
    inputs first; ``acts`` (L,) int64, every layer's activation code
    (``kernels.ACTIVATIONS``); ``loss`` a cost code (``kernels.LOSSES``; the cross-entropies
    need an identity last layer, whose outputs are then logits)."""

    __slots__ = ()
    FIELDS = {"sizes": INTS, "acts": INTS, "loss": INT}
    MADE_BY = "kernels.network(sizes, acts, loss)"


#: "every row weighs 1": the default ``sample_weight`` of ``Batches``.
NO_WEIGHTS = np.empty(0, np.float64)


class Batches(namedtuple("Batches", "size order sample_weight", defaults=(NO_WEIGHTS,))):
    """The minibatches of an epoch: ``size`` rows each (the last may be shorter), taken in
    the order of ``order`` (int64 row indices, a permutation of range(N) for a shuffled
    epoch, or any part of one) or, when ``order`` is empty, in storage order.

    ``sample_weight`` (N,) float32 or float64, one weight >= 0 per row of X (indexed as X
    is, not as ``order``), or empty (the default) for all 1: each minibatch then steps on
    the weighted mean of its rows' gradients, ``sum_i w_i g_i / sum_i w_i`` (scikit-learn's
    meaning; a minibatch whose weights sum to 0 makes no step)."""

    __slots__ = ()
    FIELDS = {"size": INT, "order": INTS, "sample_weight": WEIGHTS}
    MADE_BY = "kernels.batches(size, order, sample_weight)"


class Dropout(namedtuple("Dropout", "batches rates seed")):
    """An epoch's minibatches with dropout on the hidden layers, passed to ``train_epoch``
    in place of its ``Batches``: ``batches`` the ``Batches`` record; ``rates`` (L - 1,)
    float32 or float64, the share of each hidden layer's units dropped at every step, each in
    [0, 1) (0: that layer keeps all); ``seed`` (int64), which with the optimizer's step
    count decides which units each step drops (``kernels.masks``), so an epoch's masks are
    reproducible."""

    __slots__ = ()
    FIELDS = {"batches": Arg("record", record=Batches), "rates": WEIGHTS, "seed": INT}
    MADE_BY = "kernels.dropout(batches, rates, seed)"


def _int64_vector(value, name):
    array = np.asarray(value)
    if array.size == 0:
        return np.empty(0, np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise InvalidTypeError("%s must be a 1-D array of integers, got %s of shape %s"
                               % (name, array.dtype, array.shape))
    if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
        raise InvalidValueError("%s holds %d, more than int64 holds" % (name, array.max()))
    return np.ascontiguousarray(array, np.int64)


def _integer(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidTypeError("%s must be an integer, got %r" % (name, value))
    return int(value)


def network(sizes, acts, loss=None, quantile=None):
    """A ``Network`` record: sizes and acts as int64 vectors; ``loss`` a code of
    ``kernels.LOSSES`` or its name (default MSE). Values are checked by the kernels.

    ``loss="quantile"`` needs ``quantile``, its level q (a multiple of 0.0001 in (0, 1)):
    the record's ``loss`` is then ``kernels.quantile_code(q)``, the code that carries q
    (``kernels.variants.QUANTILE_STEPS`` says why); ``InvalidValueError`` names a missing
    or bad level, or one given with another loss."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise InvalidValueError("loss must be one of %s, got %r" % (sorted(LOSSES), loss))
        if loss == "quantile":
            if quantile is None:
                raise InvalidValueError("loss='quantile' needs quantile=, its level in (0, 1), "
                                        "got None")
            return Network(_int64_vector(sizes, "sizes"), _int64_vector(acts, "acts"),
                           quantile_code(quantile))
        loss = LOSSES[loss]
    if quantile is not None:
        raise InvalidValueError("quantile= is the level of loss='quantile', got it with loss=%r"
                                % (loss,))
    return Network(_int64_vector(sizes, "sizes"), _int64_vector(acts, "acts"),
                   MSE if loss is None else _integer(loss, "loss"))


def batches(size, order=None, sample_weight=None):
    """A ``Batches`` record: ``size`` rows a minibatch, in the order of ``order`` (None or
    empty: storage order), rows weighted by ``sample_weight`` (None: all 1; else a 1-D
    array of one weight per row of X, made float64 unless it is float32)."""
    if sample_weight is None:
        weights = NO_WEIGHTS
    else:
        weights = np.asarray(sample_weight)
        if weights.ndim != 1 or weights.dtype.kind not in "iuf":
            raise InvalidTypeError("sample_weight must be a 1-D array of numbers, got %s of "
                                   "shape %s" % (weights.dtype, weights.shape))
        if weights.dtype != np.float32:
            weights = weights.astype(np.float64)
        weights = np.ascontiguousarray(weights)
    return Batches(_integer(size, "batch size"),
                   np.empty(0, np.int64) if order is None else _int64_vector(order, "order"),
                   weights)


def dropout(batches, rates, seed=0):
    """A ``Dropout`` record: the ``Batches`` record ``batches`` with hidden layers dropped
    out at ``rates``, one rate per hidden layer (a sequence of numbers, made float64
    unless a float32 array), by the masks of the integer ``seed``. The rates' values are
    checked by ``train_epoch``."""
    if not isinstance(batches, Batches):
        raise InvalidTypeError("batches must be a kernels.Batches (kernels.batches(size, ...)), "
                               "got %s" % type(batches).__name__)
    array = np.asarray(rates)
    if array.ndim != 1 or array.dtype.kind not in "iuf":
        raise InvalidTypeError("dropout rates must be a 1-D array of numbers, got %s of shape %s"
                               % (array.dtype, array.shape))
    if array.dtype != np.float32:
        array = array.astype(np.float64)
    return Dropout(batches, np.ascontiguousarray(array), _integer(seed, "dropout seed"))


def _missing(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


@overload(batches)
def _batches_in_compiled_code(size, order=None, sample_weight=None):
    """``kernels.batches`` inside the user's own ``@njit`` code, where a ``Batches`` built
    with its class needs all three fields (Numba does not fill a named tuple's defaults)."""
    if _missing(order) and _missing(sample_weight):
        return lambda size, order=None, sample_weight=None: Batches(
            size, np.empty(0, np.int64), np.empty(0, np.float64))
    if _missing(sample_weight):
        return lambda size, order=None, sample_weight=None: Batches(
            size, order, np.empty(0, np.float64))
    if _missing(order):
        return lambda size, order=None, sample_weight=None: Batches(
            size, np.empty(0, np.int64), sample_weight)
    return lambda size, order=None, sample_weight=None: Batches(size, order, sample_weight)
