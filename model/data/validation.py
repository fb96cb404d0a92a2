"""Checks of user input, done once per call before anything changes.

Every message names the argument, what was expected and what was given.
"""

import numbers
import threading

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ...kernels._cache import CACHE, njit  # Numba's cache where it can write one (kernels._cache)
from ...kernels.sparse import csr
from ...kernels.threads import free_cores

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(cache=CACHE, fastmath={"reassoc"}, nogil=True)
def _first_nonfinite_in(flat):
    """Index of the first NaN/inf in a 1-D array, or -1.

    ``x * 0`` is 0 for finite x and NaN otherwise, so one vectorised sum of ``x * 0``
    answers "all finite?" in a single read at memory speed; only then is the array searched
    element by element. On an AMD EPYC Zen 5 this read 400 MB in 12 ms on one thread
    (35 GB/s), where a ``prange`` version took 48 ms on two threads and 96 ms on one (its
    loop was not vectorised); ``_first_nonfinite`` runs it on two halves at once.
    """
    s = flat.dtype.type(0)
    for i in range(flat.shape[0]):
        s += flat[i] * 0
    if s == s:
        return -1
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return i
    return -1


#: Elements from which ``_first_nonfinite`` reads the two halves of an array on two threads
#: when a second core is free: 400 MB of float32 took 8.2 ms so against 10.5 ms on one
#: thread (AMD EPYC Zen 5, medians of 9 alternating rounds; 48.7 against 38.3 GB/s), which
#: is what a one-epoch ``fit`` of config A adds to its epoch. Below about 100 MB the
#: gain is under a millisecond, which reading the free cores (``/proc``) may cost.
TWO_THREAD_ELEMENTS = 1 << 25


def _first_nonfinite(flat):
    """``_first_nonfinite_in(flat)``, the two halves of a large array read at once."""
    n = flat.shape[0]
    if n < TWO_THREAD_ELEMENTS or free_cores() < 2:
        return _first_nonfinite_in(flat)
    half = n // 2 // 64 * 64  # whole cache lines to each thread
    first = [-1]
    reader = threading.Thread(target=lambda: first.__setitem__(0, _first_nonfinite_in(
        flat[:half])))
    reader.start()
    try:
        second = _first_nonfinite_in(flat[half:])
    finally:
        reader.join()
    if first[0] >= 0:
        return first[0]
    return -1 if second < 0 else half + second


def first_nonfinite(arr):
    """Index of the first NaN/inf in the flat order of a float array, or -1."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype.kind != "f":
        return -1
    return int(_first_nonfinite(flat))


def check_finite(arr, name, first_row=0, original_dtype=None):
    """Raise naming the row and column of the first NaN/inf in a C-contiguous 2-D ``arr``.

    ``first_row`` is added to the row in the message (a chunk's place in its file).
    """
    flat = arr.reshape(-1)
    bad = _first_nonfinite(flat)
    if bad >= 0:
        row, col = divmod(int(bad), arr.shape[1])
        what = "NaN" if np.isnan(arr[row, col]) else "inf"
        converted = ("" if original_dtype is None or original_dtype == arr.dtype
                     else " (after conversion to %s)" % arr.dtype)
        raise InvalidValueError("%s contains %s at row %d, column %d%s; only "
                                "finite values are accepted"
                                % (name, what, first_row + row, col, converted))


def plain(value):
    """``repr`` of a value for a message, NumPy scalars as the Python values they hold
    (``2.0``, not ``np.float64(2.0)``; ``'relu'``, not ``np.str_('relu')``)."""
    if isinstance(value, np.floating):
        return str(value)  # the shortest digits of its own precision: 0.7, not 0.699999988
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _non_number_at(arr):
    """(index, value) of the first entry of an object array that is not a real number (bools
    count as numbers), or None."""
    for index, value in np.ndenumerate(arr):
        if not isinstance(value, (numbers.Real, np.bool_)):
            return index, value
    return None


def _at(name, index):
    """``name[i]`` or ``name[i, j]`` for an index of ``np.ndenumerate``."""
    return "%s[%s]" % (name, ", ".join(str(i) for i in index))


def _not_numeric(arr, name, hint=""):
    """The ``InvalidTypeError`` (a ``TypeError``, as NumPy's and scikit-learn's) for an array
    that is not numeric, naming a bad entry where it can."""
    where = ""
    if arr.dtype == object:
        bad = _non_number_at(arr)
        if bad is not None:
            where = " (%s is %s)" % (_at(name, bad[0]), plain(bad[1]))
    elif arr.dtype.kind in "US" and arr.size:
        where = " (%s is %s)" % (_at(name, next(np.ndindex(arr.shape))),
                                 plain(arr.reshape(-1)[0]))
    return InvalidTypeError("%s must be a numeric array, got dtype %s%s%s"
                            % (name, arr.dtype, where, hint))


def _numbers_of_objects(arr):
    """An object array whose entries are all real numbers as a float64 array; else as is."""
    if arr.dtype == object and arr.size and _non_number_at(arr) is None:
        return arr.astype(np.float64)
    return arr


#: A sparse matrix is made dense for the kernels up to this many bytes of dense rows.
SPARSE_MAX_BYTES = 1 << 30


def is_sparse(a):
    """True for a SciPy sparse matrix or array."""
    if not type(a).__module__.startswith("scipy.sparse"):
        return False
    import scipy.sparse
    return scipy.sparse.issparse(a)


def dense(a, name, dtype, n_columns=None, columns_meaning="features"):
    """``a`` itself, or a SciPy sparse ``a`` as a dense array of ``dtype``.

    The kernels compute on dense rows, so a sparse matrix is made dense once, when its dense
    form takes at most ``SPARSE_MAX_BYTES`` (1 GiB); a larger one is refused with a one-line
    error (pass it in row blocks, e.g. to ``partial_fit``).
    """
    if not is_sparse(a):
        return a
    if len(a.shape) != 2:
        raise InvalidValueError("%s must be a 2-D array (rows, %s), got a sparse array of shape %s"
                                % (name, columns_meaning, a.shape))
    rows, columns = (int(n) for n in a.shape)
    if n_columns is not None and columns != n_columns:
        raise InvalidValueError("%s has %d %s (columns) but the network has %d"
                                % (name, columns, columns_meaning, n_columns))
    size = rows * columns * np.dtype(dtype).itemsize
    if size > SPARSE_MAX_BYTES:
        raise InvalidValueError("%s: a sparse matrix of %d x %d takes %.1f GB "
                                "as the dense rows the "
                                "kernels compute on, more than the %d MB numba-dense makes dense "
                                "itself; pass it in row blocks (e.g. to "
                                "partial_fit) as dense arrays"
                                % (name, rows, columns, size / 1e9, SPARSE_MAX_BYTES >> 20))
    return a.toarray().astype(dtype, copy=False)


def check_matrix_shape(arr, name, n_columns, columns_meaning):
    """Numeric, 2-D, at least one row, ``n_columns`` columns; else a clear error."""
    if arr.dtype.kind not in "biuf":
        raise _not_numeric(arr, name)
    if arr.ndim != 2:
        raise InvalidValueError("%s must be a 2-D array (rows, %s), got shape %s"
                                % (name, columns_meaning, arr.shape))
    if arr.shape[0] == 0:
        raise InvalidValueError("%s is empty: it has 0 rows" % name)
    if arr.shape[1] != n_columns:
        raise InvalidValueError("%s has %d %s (columns) but the network has %d"
                                % (name, arr.shape[1], columns_meaning, n_columns))


def described(value):
    """A value's type, and its length when it has one, for a message (never its values)."""
    kind = type(value).__name__
    kind = ("an " if kind[:1].lower() in "aeiou" else "a ") + kind
    try:
        return "%s of length %d" % (kind, len(value))
    except TypeError:
        return kind


def as_array(a, name):
    """``a`` as a NumPy array, or a one-line error naming ``name`` and what was given:
    a mapping, a set or a string is no array (a dict would become a 0-d object array),
    rows of different lengths are named (not NumPy's "inhomogeneous shape" text), and a
    masked array with masked values is refused (the mask would be ignored); one with none
    masked is its data."""
    if isinstance(a, (dict, set, frozenset, str, bytes)) or (
            not isinstance(a, np.ndarray) and hasattr(a, "keys") and hasattr(a, "values")
            and not hasattr(a, "__array__")):
        raise InvalidTypeError("%s must be an array or a list of rows, got %s"
                               % (name, described(a)))
    if isinstance(a, np.ma.MaskedArray):
        n_masked = int(np.ma.count_masked(a))
        if n_masked:
            short = name.split()[-1]
            raise InvalidValueError("%s is a masked array with %d masked value%s: fill or "
                                    "drop them (e.g. %s.filled(value) or %s.compressed())"
                                    % (name, n_masked, "" if n_masked == 1 else "s", short,
                                       short))
        return np.asarray(a.data)
    try:
        return np.asarray(a)
    except ValueError as exc:
        if "inhomogeneous" not in str(exc) and "sequence" not in str(exc):
            raise
        lengths = []
        try:
            lengths = [len(row) for row in a]
        except TypeError:
            pass
        ragged = next((i for i, n in enumerate(lengths) if n != lengths[0]), None)
        detail = (" (row 0 has %d entries, row %d has %d)" % (lengths[0], ragged,
                                                              lengths[ragged])
                  if ragged is not None else "")
        raise InvalidValueError("%s must be rows of equal length, got %s whose rows differ%s"
                                % (name, described(a), detail)) from None


class ValuesCheck:
    """``check_finite`` of an array's values, left for later: ``fit`` leaves the check of
    X's training rows to the first epoch where that epoch finds a NaN or inf itself
    (``model.training.loop.epoch_finds_nonfinite``), and runs this only when the epoch
    diverges, to name the value. ``first_row``: the array's first row in the one the
    user passed (a validation split's rows keep their numbers); ``original_dtype``: the
    user's dtype, named when the conversion made the inf."""

    def __init__(self, name, original_dtype, first_row=0):
        self.name, self.original_dtype, self.first_row = name, original_dtype, first_row

    def rows_from(self, start):
        """The same check for the array's rows from ``start`` on."""
        return ValuesCheck(self.name, self.original_dtype, self.first_row + start)

    def __call__(self, arr):
        check_finite(arr, self.name, self.first_row, self.original_dtype)


def float_matrix(a, name, dtype, n_columns, columns_meaning):
    """``(arr, values_check)``: ``a`` as a C-contiguous 2-D array of ``dtype`` with
    ``n_columns`` columns (``as_float_matrix``), its values not yet checked, and the
    ``ValuesCheck`` that checks them."""
    arr = _numbers_of_objects(as_array(dense(a, name, dtype, n_columns, columns_meaning), name))
    check_matrix_shape(arr, name, n_columns, columns_meaning)
    original = arr.dtype
    with np.errstate(over="ignore"):  # an overflow to inf is reported by the check
        arr = np.ascontiguousarray(arr, dtype=dtype)
    return arr, ValuesCheck(name, original)


def as_float_matrix(a, name, dtype, n_columns, columns_meaning):
    """``a`` as a C-contiguous 2-D array of ``dtype`` with ``n_columns`` columns, or an error.

    Accepts lists and arrays of bool, int or float; converts at most once. ``columns_meaning``
    words the column count in messages ("features", "outputs"). Raises
    ``InvalidValueError`` naming the row and column of a NaN or inf.
    """
    arr, values_check = float_matrix(a, name, dtype, n_columns, columns_meaning)
    values_check(arr)
    return arr


def as_features(X, name, dtype, n_inputs):
    """Inputs (rows, n_inputs) in the network's dtype; a SciPy sparse X stays sparse
    (``sparse_features``)."""
    if is_sparse(X):
        return sparse_features(X, name, dtype, n_inputs)
    return as_float_matrix(X, name, dtype, n_inputs, "features")


def _check_sparse_structure(matrix, name):
    """A CSR matrix whose ``indptr`` and ``indices`` describe its shape (SciPy does not check
    arrays assigned by hand): refused here, naming ``name``, rather than by the kernels'
    own check of the ``kernels.CSR`` record, whose message names ``csr``'s argument."""
    indptr, indices = matrix.indptr, matrix.indices
    rows, columns = matrix.shape
    if (len(indptr) != rows + 1 or indptr[0] != 0 or indptr[-1] != len(indices)
            or (rows and np.diff(indptr).min() < 0)):
        raise InvalidValueError("%s is a sparse matrix whose indptr does not describe its %d "
                                "rows and %d stored values" % (name, rows, len(indices)))
    if len(indices) and (indices.min() < 0 or indices.max() >= columns):
        p = int(np.argmax((indices < 0) | (indices >= columns)))
        row = int(np.searchsorted(indptr, p, side="right")) - 1
        raise InvalidValueError("%s is a sparse matrix with column index %d at row %d, outside "
                                "range(%d)" % (name, int(indices[p]), row, columns))


def sparse_features(a, name, dtype, n_columns):
    """A SciPy sparse ``a`` as a CSR matrix of ``dtype`` (CSC and the other formats
    converted; ``a`` itself when it is one already), checked as a dense X is: 2-D, numeric,
    at least one row, ``n_columns`` columns, finite values. It stays sparse: the kernels
    take it as a ``kernels.CSR`` record (``kernel_rows``), and the first layer then costs
    what its non-zeros cost. Rows are sliced as SciPy slices them (a validation split,
    blocks)."""
    if len(a.shape) != 2:
        raise InvalidValueError("%s must be a 2-D array (rows, features), got a sparse array "
                                "of shape %s" % (name, a.shape))
    if a.dtype.kind not in "biuf":
        raise InvalidTypeError("%s must hold numbers, got a sparse matrix of %s"
                               % (name, a.dtype))
    rows, columns = (int(n) for n in a.shape)
    if rows == 0:
        raise InvalidValueError("%s is empty: it has 0 rows" % name)
    if columns != n_columns:
        raise InvalidValueError("%s has %d features (columns) but the network has %d"
                                % (name, columns, n_columns))
    matrix = a.tocsr()
    _check_sparse_structure(matrix, name)
    original = matrix.dtype
    with np.errstate(over="ignore"):
        matrix = matrix.astype(dtype, copy=False)
    finite = np.isfinite(matrix.data)
    if not finite.all():
        p = int(np.argmin(finite))
        row = int(np.searchsorted(matrix.indptr, p, side="right")) - 1
        converted = ("" if original == matrix.dtype
                     else " (after conversion to %s)" % matrix.dtype)
        raise InvalidValueError("%s contains %s at row %d, column %d%s; only finite values "
                                "are accepted" % (name, "NaN" if np.isnan(matrix.data[p])
                                                  else "inf", row, int(matrix.indices[p]),
                                                  converted))
    return matrix


def kernel_rows(X):
    """Rows as the kernels take them: a SciPy sparse matrix (``sparse_features``) as a
    ``kernels.CSR`` record (its indices as int64, its structure checked), any other X as
    it is."""
    return csr(X) if is_sparse(X) else X


#: What the targets of each kind of cost look like.
REGRESSION, CLASSES, BINARY, COUNTS = "regression", "classes", "binary", "counts"


def check_target_rows(y, name, n_rows, x_name):
    """``y`` has one entry per row of X."""
    if is_sparse(y):
        rows = y.shape[0]
    elif np.ndim(as_array(y, name) if not isinstance(y, np.ndarray) else y) == 0:
        raise InvalidValueError("%s must be an array with one entry per row of %s, got a scalar"
                                % (name, x_name))
    else:
        rows = len(y)
    if rows != n_rows:
        raise InvalidValueError("%s has %d rows but %s has %d" % (name, rows, x_name, n_rows))


def targets_matrix(y, name, dtype, n_outputs, kind, first_row=0):
    """Targets as the (rows, n_outputs) matrix of ``dtype`` that the cost compares with.

    - regression: (rows, n_outputs), or (rows,) for one output; any finite values;
    - classes (softmax): integer labels (rows,) in range(n_outputs), made one-hot, or
      (rows, n_outputs) rows of class probabilities;
    - binary (sigmoid): values in [0, 1], (rows,) for one output;
    - counts (Poisson): as regression, every value >= 0.
    ``first_row`` places the block in its file for messages.
    """
    arr = _numbers_of_objects(as_array(dense(y, name, dtype, columns_meaning="outputs"), name))
    if arr.dtype.kind not in "biuf":
        hint = ""
        if kind == CLASSES:
            hint = ("; class labels must be integers 0..%d (model.MLPClassifier "
                    "takes labels of any type)" % (n_outputs - 1))
        elif kind == BINARY:
            hint = "; binary targets must be numbers in [0, 1]"
        raise _not_numeric(arr, name, hint)
    if kind == CLASSES and arr.ndim == 1:
        return _one_hot(arr, name, dtype, n_outputs, first_row)
    if arr.ndim == 1 and n_outputs == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim == 1:
        raise InvalidValueError("%s is 1-D but the network has %d outputs; pass shape (rows, %d)"
                                % (name, n_outputs, n_outputs))
    check_matrix_shape(arr, name, n_outputs, "outputs")
    original = arr.dtype
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(out, name, first_row, original)
    if kind == COUNTS:
        negative = np.flatnonzero((out < 0).any(axis=1))
        if negative.size:
            r = int(negative[0])
            raise InvalidValueError("%s row %d holds %s; the Poisson loss needs targets >= 0"
                                    % (name, first_row + r, out[r].tolist()))
    elif kind != REGRESSION:
        outside = np.flatnonzero(((out < 0) | (out > 1)).any(axis=1))
        if outside.size:
            r = int(outside[0])
            raise InvalidValueError("%s row %d holds %s; %s targets must lie in [0, 1]"
                                    % (name, first_row + r, out[r].tolist(),
                                       "class-probability" if kind == CLASSES else "binary"))
    return out


def _one_hot(labels, name, dtype, n_classes, first_row):
    if labels.dtype.kind == "f":
        integral = np.isfinite(labels) & (labels == np.round(labels))
        if not integral.all():
            r = int(np.flatnonzero(~integral)[0])
            raise InvalidValueError("%s[%d] is %r: class labels must be integers 0..%d"
                                    % (name, first_row + r, labels[r].item(), n_classes - 1))
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        r = int(bad[0])
        raise InvalidValueError("%s[%d] is %r: class labels must be integers 0..%d (the "
                                "network has %d outputs)"
                                % (name, first_row + r, labels[r].item(), n_classes - 1,
                                   n_classes))
    out = np.zeros((labels.shape[0], n_classes), dtype)
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1
    return out


def integer(value, name, minimum):
    """``value`` as an int >= ``minimum`` (bools are refused: True is no batch size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError("%s must be an integer, got %s" % (name, plain(value)))
    if value < minimum:
        raise InvalidValueError("%s must be >= %d, got %d" % (name, minimum, value))
    return int(value)


def real_number(value, name, low, low_inclusive, high=None):
    """``value`` as a finite float in the range (low or [low, high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError("%s must be a real number, got %s" % (name, plain(value)))
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    if not np.isfinite(value) or too_low or (high is not None and value >= high):
        bound = "%s %s" % (">=" if low_inclusive else ">", low)
        if high is not None:
            bound += " and < %s" % high
        raise InvalidValueError("%s must be %s, got %r" % (name, bound, value))
    return value


def boolean(value, name):
    """``value`` as a bool: True or False (NumPy's too); a string such as "False" is refused
    (it would count as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError("%s must be True or False, got %s" % (name, plain(value)))
    return bool(value)


def random_seed(value, name="seed"):
    """A seed for ``np.random.default_rng``: None, an integer >= 0, or NumPy's Generator,
    BitGenerator or SeedSequence (used as they are)."""
    if value is None or isinstance(value, (np.random.Generator, np.random.BitGenerator,
                                           np.random.SeedSequence)):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError("%s must be None, an integer >= 0 or a "
                               "numpy.random.Generator, got %s"
                               % (name, plain(value)))
    if value < 0:
        raise InvalidValueError("%s must be >= 0, got %d" % (name, value))
    return int(value)


def class_labels(Y, name, kind):
    """The labels ``score`` compares with, from targets checked by ``targets_matrix``:
    the argmax class of each row for softmax (one-hot or class-probability rows), the 0/1
    matrix for sigmoid outputs, whose targets must then be exactly 0 or 1 (a probability
    such as 0.7 is a target for the cost, but no label to count right or wrong)."""
    if kind == CLASSES:
        return Y.argmax(axis=1)
    between = np.flatnonzero(((Y != 0) & (Y != 1)).any(axis=1))
    if between.size:
        r = int(between[0])
        where = ("%s[%d] is %s" % (name, r, plain(Y[r, 0])) if Y.shape[1] == 1
                 else "%s row %d holds [%s]" % (name, r, ", ".join(map(plain, Y[r]))))
        raise InvalidValueError("%s: accuracy needs labels 0 or 1 (the cost also takes "
                                "probabilities, score does not)" % where)
    return Y.astype(np.int64)


def float_dtype(dtype):
    """``dtype`` as np.float32 or np.float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidTypeError("dtype must be float32 or float64, got %s" % plain(dtype)) from None
    if dt not in FLOAT_DTYPES:
        raise InvalidTypeError("dtype must be float32 or float64, got %s" % dt)
    return dt


def choice(value, name, options):
    """``value`` if it is one of ``options`` (a mapping or sequence of names)."""
    if not isinstance(value, str) or value not in options:
        raise InvalidValueError("%s must be one of %s, got %s"
                                % (name, ", ".join(map(repr, options)), plain(value)))
    return value


def is_number(text):
    """True when ``float(text)`` reads the string as a number."""
    try:
        float(text)
        return True
    except ValueError:
        return False
