"""Checks of user input, done once per call before anything changes.

Every message names the argument, what was expected and what was given.
"""

import numbers

import numpy as np
from numba import njit, prange

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


_BLOCK = 1 << 14


@njit(cache=True, fastmath={"reassoc"})
def _first_nonfinite_serial(flat):
    """``_first_nonfinite`` on one thread: for arrays too small to pay for waking the pool."""
    s = flat.dtype.type(0)
    for i in range(flat.shape[0]):
        s += flat[i] * 0
    if s == s:
        return -1
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return i
    return -1


#: Below this many elements the serial scan is faster than starting Numba's threads
#: (which cost about 1 ms per call on a small array).
_PARALLEL_MIN = 1 << 20


@njit(cache=True, parallel=True, fastmath={"reassoc"})
def _first_nonfinite(flat):
    """Index of the first NaN/inf in a 1-D array, or -1.

    ``x * 0`` is 0 for finite x and NaN otherwise, so a block's sum of ``x * 0`` flags it
    with one vectorised, bandwidth-bound read; blocks are shared between Numba's threads
    (no BLAS runs during validation). Only a flagged block is searched element by element.
    """
    n = flat.shape[0]
    n_blocks = (n + _BLOCK - 1) // _BLOCK
    flagged = np.zeros(n_blocks, np.bool_)
    for blk in prange(n_blocks):
        s = flat.dtype.type(0)
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            s += flat[i] * 0
        flagged[blk] = s != s
    for blk in range(n_blocks):
        if flagged[blk]:
            for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
                if not np.isfinite(flat[i]):
                    return i
    return -1


def check_finite(arr, name, first_row=0, original_dtype=None):
    """Raise naming the row and column of the first NaN/inf in a C-contiguous 2-D ``arr``.

    ``first_row`` is added to the row in the message (a chunk's place in its file).
    """
    flat = arr.reshape(-1)
    bad = (_first_nonfinite if flat.size >= _PARALLEL_MIN else _first_nonfinite_serial)(flat)
    if bad >= 0:
        row, col = divmod(int(bad), arr.shape[1])
        what = "NaN" if np.isnan(arr[row, col]) else "inf"
        converted = ("" if original_dtype is None or original_dtype == arr.dtype
                     else " (after conversion to %s)" % arr.dtype)
        raise ValueError("%s contains %s at row %d, column %d%s; only finite values are accepted"
                         % (name, what, first_row + row, col, converted))


def check_matrix_shape(arr, name, n_columns, columns_meaning):
    """Numeric, 2-D, at least one row, ``n_columns`` columns; else a clear error."""
    if arr.dtype.kind not in "biuf":
        raise TypeError("%s must be a numeric array, got dtype %s" % (name, arr.dtype))
    if arr.ndim != 2:
        raise ValueError("%s must be a 2-D array (rows, %s), got shape %s"
                         % (name, columns_meaning, arr.shape))
    if arr.shape[0] == 0:
        raise ValueError("%s is empty: it has 0 rows" % name)
    if arr.shape[1] != n_columns:
        raise ValueError("%s has %d %s (columns) but the network has %d"
                         % (name, arr.shape[1], columns_meaning, n_columns))


def as_float_matrix(a, name, dtype, n_columns, columns_meaning):
    """``a`` as a C-contiguous 2-D array of ``dtype`` with ``n_columns`` columns, or an error.

    Accepts lists and arrays of bool, int or float; converts at most once. ``columns_meaning``
    words the column count in messages ("features", "outputs").
    """
    arr = np.asarray(a)
    check_matrix_shape(arr, name, n_columns, columns_meaning)
    original = arr.dtype
    with np.errstate(over="ignore"):  # an overflow to inf is reported just below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(arr, name, original_dtype=original)
    return arr


def as_features(X, name, dtype, n_inputs):
    """Inputs (rows, n_inputs) in the network's dtype."""
    return as_float_matrix(X, name, dtype, n_inputs, "features")


#: What the targets of each kind of cost look like.
REGRESSION, CLASSES, BINARY = "regression", "classes", "binary"


def check_target_rows(y, name, n_rows, x_name):
    """``y`` has one entry per row of X."""
    if np.ndim(y) == 0:
        raise ValueError("%s must be an array with one entry per row of %s, got a scalar"
                         % (name, x_name))
    if len(y) != n_rows:
        raise ValueError("%s has %d rows but %s has %d" % (name, len(y), x_name, n_rows))


def targets_matrix(y, name, dtype, n_outputs, kind, first_row=0):
    """Targets as the (rows, n_outputs) matrix of ``dtype`` that the cost compares with.

    - regression: (rows, n_outputs), or (rows,) for one output; any finite values;
    - classes (softmax): integer labels (rows,) in range(n_outputs), made one-hot, or
      (rows, n_outputs) rows of class probabilities;
    - binary (sigmoid): values in [0, 1], (rows,) for one output.
    ``first_row`` places the block in its file for messages.
    """
    arr = np.asarray(y)
    if arr.dtype.kind not in "biuf":
        raise TypeError("%s must be a numeric array, got dtype %s" % (name, arr.dtype))
    if kind == CLASSES and arr.ndim == 1:
        return _one_hot(arr, name, dtype, n_outputs, first_row)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim == 1:
        raise ValueError("%s is 1-D but the network has %d outputs; pass shape (rows, %d)"
                         % (name, n_outputs, n_outputs))
    check_matrix_shape(arr, name, n_outputs, "outputs")
    original = arr.dtype
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(out, name, first_row, original)
    if kind != REGRESSION:
        outside = np.flatnonzero(((out < 0) | (out > 1)).any(axis=1))
        if outside.size:
            r = int(outside[0])
            raise ValueError("%s row %d holds %s; %s targets must lie in [0, 1]"
                             % (name, first_row + r, out[r].tolist(),
                                "class-probability" if kind == CLASSES else "binary"))
    return out


def _one_hot(labels, name, dtype, n_classes, first_row):
    if labels.dtype.kind == "f":
        integral = np.isfinite(labels) & (labels == np.round(labels))
        if not integral.all():
            r = int(np.flatnonzero(~integral)[0])
            raise ValueError("%s[%d] is %r: class labels must be integers 0..%d"
                             % (name, first_row + r, labels[r].item(), n_classes - 1))
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        r = int(bad[0])
        raise ValueError("%s[%d] is %r: class labels must be integers 0..%d (the network has "
                         "%d outputs)" % (name, first_row + r, labels[r].item(), n_classes - 1,
                                          n_classes))
    out = np.zeros((labels.shape[0], n_classes), dtype)
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1
    return out


def integer(value, name, minimum):
    """``value`` as an int >= ``minimum`` (bools are refused: True is no batch size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an integer, got %r" % (name, value))
    if value < minimum:
        raise ValueError("%s must be >= %d, got %d" % (name, minimum, value))
    return int(value)


def real_number(value, name, low, low_inclusive, high=None):
    """``value`` as a finite float in the range (low or [low, high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a real number, got %r" % (name, value))
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    if not np.isfinite(value) or too_low or (high is not None and value >= high):
        bound = "%s %s" % (">=" if low_inclusive else ">", low)
        if high is not None:
            bound += " and < %s" % high
        raise ValueError("%s must be %s, got %r" % (name, bound, value))
    return value


def float_dtype(dtype):
    """``dtype`` as np.float32 or np.float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError("dtype must be float32 or float64, got %r" % (dtype,)) from None
    if dt not in FLOAT_DTYPES:
        raise TypeError("dtype must be float32 or float64, got %s" % dt)
    return dt


def choice(value, name, options):
    """``value`` if it is one of ``options`` (a mapping or sequence of names)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError("%s must be one of %s, got %r" % (name, ", ".join(map(repr, options)), value))
    return value


def is_number(text):
    """True when ``float(text)`` reads the string as a number."""
    try:
        float(text)
        return True
    except ValueError:
        return False
