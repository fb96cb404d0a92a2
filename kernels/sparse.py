"""Sparse input: a CSR matrix through the first layer, costing what its non-zeros cost.

A one-hot table of thousands of columns (``sklearn.preprocessing.OneHotEncoder``'s default
output) has a handful of non-zeros a row. Densified, the first layer's products multiply
every zero; kept as CSR, the forward product of a batch and its weight gradient touch one
column of ``W`` per non-zero:

- forward ``Z[r, k] = sum_nz(row r) v * W[k, j] + b[k]``, then the activation;
- gradient ``dW[k, j] = alpha * sum_r D[r, k] * v + beta * dW[k, j]`` (``alpha = 1``: the
  weight gradient; ``alpha = -lr, beta = 1`` into ``W`` itself: the fused SGD update).

``W`` is stored (n_out, n_in) row-major inside the flat parameters, so both loops run
over the outputs ``k`` outermost (one contiguous row of ``W`` at a time) and the batch's
non-zeros inside, four rows of ``W`` per pass so that each non-zero's index and value are
read once for four outputs (docs/performance.md, "Sparse input", has the alternatives
measured).

A batch is given as positions into an ``order`` (a row's index is ``order[start + r]``)
or, with ``order`` empty, the storage-order range ``start, start + m``; a shuffled epoch
copies its rows in order once (``csr_take_rows``) and reads the copy in storage order.
"""

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import register_jitable
from numba.extending import overload

from ._cache import BORROWED, CACHE, njit
from ._checks import (INT, INTS, MATRIX, MATRIX_OUT, REAL, VECTOR, Arg, as_int64, cast_like,
                      check_contiguous, check_dim, check_finite, check_float_dtypes,
                      check_separate, check_types, kernel)
from .activations import _check_act, add_bias_activate
from ._prefetch import prefetch_at
from .config import CSR_PREFETCH_ROWS, FASTMATH_ELEMENTWISE, FASTMATH_REDUCTION
from .dense import _forward
from .errors import InvalidTypeError, InvalidValueError
from .products import product_at_b


class CSR(namedtuple("CSR", "data indices indptr n_cols")):
    """A CSR matrix as compiled code sees it: ``data`` (nnz,) float32 or float64,
    ``indices`` (nnz,) int64 column of each value, ``indptr`` (N + 1,) int64 where each
    row's values start (row i is ``data[indptr[i]:indptr[i + 1]]``), ``n_cols`` the number
    of columns. Indices need not be sorted within a row; a repeated index adds up, as in
    ``scipy.sparse``."""

    __slots__ = ()
    FIELDS = {"data": VECTOR, "indices": INTS, "indptr": INTS, "n_cols": INT}
    MADE_BY = "kernels.csr(matrix)"


#: The annotation of a whole-network kernel's ``X``: a float matrix or a ``CSR`` record.
MATRIX_OR_CSR = Arg("float", 2, alternative=CSR)


# ----------------------------------------------------------------------------- checks

@register_jitable
def _check_csr(kernel, name, X):
    """The structure of a CSR record: indptr starts at 0 and never decreases, its last
    entry within data and indices, which have one length, every index in range(n_cols).
    One pass over the non-zeros (a few milliseconds for millions)."""
    data, indices, indptr = X.data, X.indices, X.indptr
    if X.n_cols < 0:
        raise InvalidValueError("%s: %s.n_cols is %s: must be at least 0", kernel, name, X.n_cols)
    if indptr.shape[0] < 1:
        raise InvalidValueError("%s: %s.indptr is empty: it must hold n_rows + 1 entries, "
                                "starting with 0", kernel, name)
    if indptr[0] != 0:
        raise InvalidValueError("%s: %s.indptr[0] is %s: must be 0", kernel, name, indptr[0])
    if indices.shape[0] != data.shape[0]:  # check_dim's message, without joining names
        raise InvalidValueError("%s: %s.indices has %s entries but %s.data has %s",
                                kernel, name, indices.shape[0], name, data.shape[0])
    n_rows = indptr.shape[0] - 1
    for i in range(n_rows):
        if indptr[i + 1] < indptr[i]:
            raise InvalidValueError("%s: %s.indptr decreases at row %s (%s then %s): it must "
                                    "never decrease", kernel, name, i, indptr[i], indptr[i + 1])
    if indptr[n_rows] > data.shape[0]:
        raise InvalidValueError("%s: %s.indptr[-1] is %s but %s.data has %s entries", kernel, name,
                                indptr[n_rows], name, data.shape[0])
    n_cols = X.n_cols
    for p in range(indptr[n_rows]):
        j = indices[p]
        if j < 0 or j >= n_cols:
            raise InvalidValueError("%s: %s.indices[%s] is %s, outside range(%s) (n_cols)", kernel,
                                    name, p, j, n_cols)


@njit(cache=CACHE)
def csr_rows(X):
    """The number of rows of a CSR record."""
    return X.indptr.shape[0] - 1


@register_jitable
def _check_rows(kernel, rows, n_rows):
    for r in range(rows.shape[0]):
        if rows[r] < 0 or rows[r] >= n_rows:
            raise InvalidValueError("%s: rows[%s] is %s, outside range(%s)", kernel, r, rows[r],
                                    n_rows)


# ----------------------------------------------------------------------------- the pieces

@njit(cache=CACHE, inline="always")
def _row(order, start, r):
    """Row r of a batch: ``order[start + r]``, or ``start + r`` when order is empty."""
    return order[start + r] if order.shape[0] > 0 else start + r


@njit(cache=CACHE, fastmath=FASTMATH_REDUCTION)
def csr_product_bt(X, order, start, W, out):
    """``out = X[rows] @ W.T`` for the batch of ``out.shape[0]`` rows at ``start`` of
    ``order`` (``_row``); X a CSR record, W (n_out, n_cols), out (m, n_out).

    Four rows of W a pass over the batch's non-zeros: each index and value is loaded once
    for four sums.
    """
    m, n_out = out.shape
    data, indices, indptr = X.data, X.indices, X.indptr
    zero = cast_like(0, out)
    k = 0
    while k + 4 <= n_out:
        w0 = W[k]
        w1 = W[k + 1]
        w2 = W[k + 2]
        w3 = W[k + 3]
        for r in range(m):
            i = _row(order, start, r)
            s0 = zero
            s1 = zero
            s2 = zero
            s3 = zero
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                v = data[p]
                s0 += v * w0[j]
                s1 += v * w1[j]
                s2 += v * w2[j]
                s3 += v * w3[j]
            o = out[r]
            o[k] = s0
            o[k + 1] = s1
            o[k + 2] = s2
            o[k + 3] = s3
        k += 4
    while k < n_out:
        w0 = W[k]
        for r in range(m):
            i = _row(order, start, r)
            s0 = zero
            for p in range(indptr[i], indptr[i + 1]):
                s0 += data[p] * w0[indices[p]]
            out[r, k] = s0
        k += 1


@njit(cache=CACHE)
def csr_forward_rows(X, order, start, W, b, out, act):
    """``out = sigma(X[rows] @ W.T + b)`` for a batch (``csr_product_bt``), the bias and
    activation in one sweep after the product (``add_bias_activate``)."""
    csr_product_bt(X, order, start, W, out)
    add_bias_activate(out, b, act)


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE)
def _scale(C, beta):
    """``C *= beta`` before a gradient adds in: zeros for 0 (whatever C held, NaN too),
    nothing for 1."""
    beta = cast_like(beta, C)
    if beta == 0:
        C[:] = 0
    elif beta != 1:
        C *= beta


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE)
def csr_gradient_rows(X, order, start, D, C, alpha, beta):
    """``C = alpha * D.T @ X[rows] + beta * C`` for a batch of ``D.shape[0]`` rows at
    ``start`` of ``order``; D (m, n_out), C (n_out, n_cols).

    ``alpha = 1``: the weight gradient (``beta = 0`` writes it, ``beta = 1`` adds it in);
    ``C = W, alpha = -lr, beta = 1``: the SGD step fused in. Only the columns of C that the
    batch's non-zeros name are written after the ``beta`` sweep (none when beta is 1).
    """
    m, n_out = D.shape
    data, indices, indptr = X.data, X.indices, X.indptr
    alpha = cast_like(alpha, C)
    _scale(C, beta)
    k = 0
    while k + 4 <= n_out:
        c0 = C[k]
        c1 = C[k + 1]
        c2 = C[k + 2]
        c3 = C[k + 3]
        for r in range(m):
            i = _row(order, start, r)
            d = D[r]
            d0 = alpha * d[k]
            d1 = alpha * d[k + 1]
            d2 = alpha * d[k + 2]
            d3 = alpha * d[k + 3]
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                v = data[p]
                c0[j] += d0 * v
                c1[j] += d1 * v
                c2[j] += d2 * v
                c3[j] += d3 * v
        k += 4
    while k < n_out:
        c0 = C[k]
        for r in range(m):
            i = _row(order, start, r)
            d0 = alpha * D[r, k]
            for p in range(indptr[i], indptr[i + 1]):
                c0[indices[p]] += d0 * data[p]
        k += 1


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE)
def csr_product_t(X, order, start, WT, out):
    """``out = X[rows] @ WT`` for the batch of ``out.shape[0]`` rows at ``start`` of
    ``order`` (``_row``); WT (n_cols, n_out): the first layer's weights transposed, as a
    training epoch on CSR input holds them (``kernels.loop``, "the first layer of a
    sparse epoch"). Each non-zero adds one contiguous row of WT, n_out wide, to its row of
    out: vector loads and stores, where ``csr_product_bt`` reads W a column at a time.
    Per output the sum runs over the row's non-zeros in storage order, as there."""
    m, n_out = out.shape
    data, indices, indptr = X.data, X.indices, X.indptr
    for r in range(m):
        i = _row(order, start, r)
        o = out[r]
        for k in range(n_out):
            o[k] = 0
        for p in range(indptr[i], indptr[i + 1]):
            w = WT[indices[p]]
            v = data[p]
            for k in range(n_out):
                o[k] += v * w[k]


@njit(cache=CACHE)
def csr_forward_t(X, order, start, WT, b, out, act):
    """``out = sigma(X[rows] @ WT + b)`` for a batch (``csr_product_t``), the bias and
    activation in one sweep after the product (``add_bias_activate``)."""
    csr_product_t(X, order, start, WT, out)
    add_bias_activate(out, b, act)


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE)
def csr_gradient_t(X, order, start, D, CT, alpha, beta):
    """``CT = alpha * X[rows].T @ D + beta * CT`` for a batch of ``D.shape[0]`` rows at
    ``start`` of ``order``; D (m, n_out), CT (n_cols, n_out): ``csr_gradient_rows`` on
    the transposed layout, each non-zero adding to one contiguous row of CT. Every element
    gets the same terms in the same order as there (rows, then each row's non-zeros)."""
    m, n_out = D.shape
    data, indices, indptr = X.data, X.indices, X.indptr
    alpha = cast_like(alpha, CT)
    _scale(CT, beta)
    for r in range(m):
        i = _row(order, start, r)
        d = D[r]
        for p in range(indptr[i], indptr[i + 1]):
            c = CT[indices[p]]
            v = data[p]
            if alpha == 1:
                for k in range(n_out):
                    c[k] += d[k] * v
            else:
                for k in range(n_out):
                    c[k] += (alpha * d[k]) * v


@njit(cache=CACHE)
def csr_take_rows(X, order):
    """A CSR record of the rows ``order`` of X, in that order (int64 indices, contiguous
    arrays): one pass over their non-zeros. A shuffled epoch reads its rows through this
    copy in storage order rather than jumping to each row's three arrays for every batch,
    twice (forward and gradient): on 200,000 one-hot rows that took 60 ms an epoch more
    per pass (docs/performance.md, "Sparse input").

    Each row sits at a random place, so each is a few cache misses; the loops ask for
    the row ``CSR_PREFETCH_ROWS`` ahead (its ``indptr`` entry, then its values and
    indices) while copying this one, which halved the copy's time."""
    n = order.shape[0]
    ahead = CSR_PREFETCH_ROWS
    src = X.indptr
    indptr = np.empty(n + 1, np.int64)
    indptr[0] = 0
    for r in range(n):
        if r + ahead < n:
            prefetch_at(src, order[r + ahead])
        i = order[r]
        indptr[r + 1] = indptr[r] + (src[i + 1] - src[i])
    data = np.empty(indptr[n], X.data.dtype)
    indices = np.empty(indptr[n], np.int64)
    for r in range(n):
        if r + ahead < n:
            s = src[order[r + ahead]]  # a prefetch past the end is a hint: it never faults
            prefetch_at(X.data, s)
            prefetch_at(X.indices, s)
        i = order[r]
        q = indptr[r]
        for p in range(src[i], src[i + 1]):
            data[q] = X.data[p]
            indices[q] = X.indices[p]
            q += 1
    return CSR(data, indices, indptr, np.int64(X.n_cols))


def epoch_rows(X):
    """X as an epoch reads it: a matrix as it is; a CSR record with contiguous int64
    arrays (what ``kernels.csr`` makes) as it is, any other as such a copy."""


@overload(epoch_rows)
def _epoch_rows_impl(X):
    if isinstance(X, types.Array):
        return lambda X: X
    if not _is_csr(X):
        return None
    data, indices, indptr, n_cols = X.types
    plain = (indices.dtype == types.int64 and indptr.dtype == types.int64
             and data.layout == "C" and indices.layout == "C" and indptr.layout == "C"
             and n_cols == types.int64)
    if plain:
        return lambda X: X
    return lambda X: csr_take_rows(X, np.arange(csr_rows(X)))


def shuffled_rows(X, order):
    """The rows of a shuffled epoch: a matrix as it is (each batch gathers its rows), a
    CSR record as the copy of its rows ``order`` in that order (``csr_take_rows``)."""


@overload(shuffled_rows)
def _shuffled_rows_impl(X, order):
    if isinstance(X, types.Array):
        return lambda X, order: X
    if _is_csr(X):
        return lambda X, order: csr_take_rows(X, order)
    return None


# ----------------------------------------------------------------------------- public

@kernel
def sparse_forward(X: CSR, rows: INTS, W: MATRIX, b: VECTOR, out: MATRIX_OUT, act: INT):
    """``out = sigma(X[rows] @ W.T + b)``: a dense layer's forward pass on CSR input.

    X a ``CSR`` record (``kernels.csr(matrix)``) of n_in columns; rows int64 row indices
    (empty: every row of X in storage order); W (n_out, n_in), b (n_out,), out (len(rows)
    or N, n_out), C-contiguous, X.data's dtype; ``act`` an activation code
    (``kernels.ACTIVATIONS``). ``out`` shares no memory with X, W or b.
    """
    check_types("sparse_forward", X, rows, W, b, out, act)
    kernel = "sparse_forward"
    check_float_dtypes(kernel, "X.data, W, b, out", X.data, W, b, out)
    indices = as_int64(kernel, "X.indices", X.indices)
    indptr = as_int64(kernel, "X.indptr", X.indptr)
    rows = as_int64(kernel, "rows", rows)
    Xc = CSR(X.data, indices, indptr, X.n_cols)
    _check_csr(kernel, "X", Xc)
    _check_act(kernel, act)
    n_rows = csr_rows(Xc)
    _check_rows(kernel, rows, n_rows)
    check_dim(kernel, "W", W.shape[1], "X", X.n_cols, "columns")
    check_dim(kernel, "b", b.shape[0], "W", W.shape[0], "elements (rows of W)")
    check_dim(kernel, "out", out.shape[0], "rows" if rows.shape[0] > 0 else "X",
              rows.shape[0] if rows.shape[0] > 0 else n_rows, "rows")
    check_dim(kernel, "out", out.shape[1], "W", W.shape[0], "columns (rows of W)")
    check_contiguous(kernel, "W", W)
    check_contiguous(kernel, "out", out)
    check_separate(kernel, "out", out, "X.data", X.data)
    check_separate(kernel, "out", out, "W", W)
    check_separate(kernel, "out", out, "b", b)
    csr_forward_rows(Xc, rows, 0, W, b, out, act)


@kernel
def sparse_weight_gradient(X: CSR, rows: INTS, D: MATRIX, dW: MATRIX_OUT, alpha: REAL,
                           beta: REAL):
    """``dW = alpha * D.T @ X[rows] + beta * dW``: a dense layer's weight gradient on CSR
    input (``alpha = -lr, beta = 1`` with ``dW`` the weights: the SGD step).

    X a ``CSR`` record of n_in columns; rows as ``sparse_forward``'s; D (len(rows) or N,
    n_out) the layer's error term; dW (n_out, n_in), C-contiguous, X.data's dtype, sharing
    no memory with X or D.
    """
    check_types("sparse_weight_gradient", X, rows, D, dW, alpha, beta)
    kernel = "sparse_weight_gradient"
    check_float_dtypes(kernel, "X.data, D, dW", X.data, D, dW)
    indices = as_int64(kernel, "X.indices", X.indices)
    indptr = as_int64(kernel, "X.indptr", X.indptr)
    rows = as_int64(kernel, "rows", rows)
    Xc = CSR(X.data, indices, indptr, X.n_cols)
    _check_csr(kernel, "X", Xc)
    check_finite(kernel, "alpha", alpha)
    check_finite(kernel, "beta", beta)
    n_rows = csr_rows(Xc)
    _check_rows(kernel, rows, n_rows)
    check_dim(kernel, "D", D.shape[0], "rows" if rows.shape[0] > 0 else "X",
              rows.shape[0] if rows.shape[0] > 0 else n_rows, "rows")
    check_dim(kernel, "dW", dW.shape[0], "D", D.shape[1], "rows (columns of D)")
    check_dim(kernel, "dW", dW.shape[1], "X", X.n_cols, "columns")
    check_contiguous(kernel, "D", D)
    check_contiguous(kernel, "dW", dW)
    check_separate(kernel, "dW", dW, "X.data", X.data)
    check_separate(kernel, "dW", dW, "D", D)
    csr_gradient_rows(Xc, rows, 0, D, dW, alpha, beta)


# ----------------------------------------------------------------------------- factory

def csr(matrix, dtype=None):
    """A ``CSR`` record of a ``scipy.sparse`` matrix or array (CSR; any other format is
    converted with ``.tocsr()``), its indices and indptr as int64 (converted once, here)
    and its values float32 or float64 (``dtype`` converts them; without it, values of any
    other dtype are refused). The structure is checked: indptr starting at 0 and never
    decreasing, every index within the columns. A ``CSR`` record is returned as it is,
    checked.
    """
    if isinstance(matrix, CSR):
        record = matrix
        if dtype is not None:
            record = record._replace(data=np.ascontiguousarray(record.data, dtype))
    else:
        import scipy.sparse as sp
        if not sp.issparse(matrix):
            raise InvalidTypeError("csr: matrix must be a scipy.sparse matrix or array (CSR "
                                   "or CSC), got %s" % type(matrix).__name__)
        if len(matrix.shape) != 2:
            raise InvalidValueError("csr: matrix must be 2-D, got shape %s" % (matrix.shape,))
        if matrix.format != "csr":
            matrix = matrix.tocsr()
        data = matrix.data
        if dtype is None and data.dtype not in (np.float32, np.float64):
            raise InvalidTypeError("csr: matrix has values of dtype %s; pass dtype=np.float32 "
                                   "(or np.float64) to convert them" % data.dtype)
        record = CSR(np.ascontiguousarray(data, dtype or data.dtype),
                     np.ascontiguousarray(matrix.indices, np.int64),
                     np.ascontiguousarray(matrix.indptr, np.int64), int(matrix.shape[1]))
    if record.data.dtype not in (np.float32, np.float64):
        raise InvalidTypeError("csr: dtype must be float32 or float64, got %s"
                               % record.data.dtype)
    for name in ("data", "indices", "indptr"):
        if getattr(record, name).ndim != 1:
            raise InvalidValueError("csr: matrix.%s must be 1-D, got shape %s"
                                    % (name, getattr(record, name).shape))
    if record.indices.dtype != np.int64 or record.indptr.dtype != np.int64:
        record = record._replace(indices=np.ascontiguousarray(record.indices, np.int64),
                                 indptr=np.ascontiguousarray(record.indptr, np.int64))
    _check_csr("csr", "matrix", record)
    return record


# ----------------------------------------------------------------------------- either input
#
# The whole-network kernels (kernels.loop) take X as a dense matrix or a CSR record; Numba
# compiles them once per type. These helpers are chosen by type when Numba types the call
# (``overload``), so the dense versions compile to exactly the calls they replace. A batch
# of a dense X is the matrix of its rows; a batch of a CSR X is the tuple ``(X, order,
# start, m)``: rows ``order[start:start + m]``, or ``start:start + m`` when order is empty.


def _is_csr(t):
    return isinstance(t, types.BaseNamedTuple) and t.instance_class is CSR


def _is_csr_batch(t):
    return (isinstance(t, types.BaseTuple) and not isinstance(t, types.BaseNamedTuple)
            and len(t.types) == 4 and _is_csr(t.types[0]))


def is_csr(X):
    """True (a compile-time constant) when X is a ``CSR`` record."""


def first_layer_weights(X, W0):
    """The first layer's weights as batches of X read them (``first_forward``): W0
    (n_out, n_in) itself for a matrix, a transposed copy (n_in, n_out) for a CSR record."""


def first_layer_gradient(X, dW0):
    """Where batches of X put the first layer's weight gradient (``first_weight_product``):
    dW0 (n_out, n_in) itself for a matrix, zeros (n_in, n_out) for a CSR record, which
    ``store_first_layer_gradient`` then writes into dW0."""


def store_first_layer_gradient(X, dW0, G):
    """``dW0 = G.T`` for a CSR record's gradient G from ``first_layer_gradient``; nothing
    for a matrix (G is dW0)."""


@njit(cache=CACHE)
def transpose_flat(flat, rows, cols, scratch):
    """The first ``rows * cols`` elements of ``flat``, a (rows, cols) row-major matrix,
    rewritten in place as its (cols, rows) transpose, through ``scratch`` (at least
    ``rows * cols`` elements)."""
    size = rows * cols
    scratch[:size] = flat[:size]
    for i in range(rows):
        for j in range(cols):
            flat[j * rows + i] = scratch[i * cols + j]


@overload(is_csr)
def _is_csr_impl(X):
    value = _is_csr(X)
    return lambda X: value


@overload(first_layer_weights)
def _first_layer_weights_impl(X, W0):
    if isinstance(X, types.Array):
        return lambda X, W0: W0
    if _is_csr(X):
        return lambda X, W0: np.ascontiguousarray(W0.T)
    return None


@overload(first_layer_gradient)
def _first_layer_gradient_impl(X, dW0):
    if isinstance(X, types.Array):
        return lambda X, dW0: dW0
    if _is_csr(X):
        return lambda X, dW0: np.zeros((dW0.shape[1], dW0.shape[0]), dW0.dtype)
    return None


@overload(store_first_layer_gradient)
def _store_first_layer_gradient_impl(X, dW0, G):
    if isinstance(X, types.Array):
        return lambda X, dW0, G: None

    def store(X, dW0, G):
        n_out, n_in = dW0.shape
        for k in range(n_out):
            for j in range(n_in):
                dW0[k, j] = G[j, k]
    if _is_csr(X):
        return store
    return None


def input_rows(X):
    """The rows of X: ``X.shape[0]``, or a CSR record's ``len(indptr) - 1``."""


def input_cols(X):
    """The columns of X: ``X.shape[1]``, or a CSR record's ``n_cols``."""


def input_values(X):
    """The float array holding X's values: X itself, or a CSR record's ``data`` (for the
    dtype and the memory-sharing checks)."""


def check_input(kernel, X):
    """X is C-contiguous (a matrix) or a well-formed CSR record (``_check_csr``)."""


def storage_batch(X, order, start, stop):
    """Rows ``start:stop`` of X in storage order: a view of a matrix, or a CSR batch
    ``(X, order, start, m)`` (``order`` must be empty)."""


def batch_rows(Xb):
    """The rows of a batch: ``Xb.shape[0]``, or a CSR batch's ``m``."""


def first_forward(Xb, W, b, out, act, T):
    """The first layer's ``out = sigma(Xb @ W.T + b)``: ``kernels.dense._forward`` for a
    matrix; for a CSR batch ``csr_forward_t``, W then the transposed weights (n_in, n_out)
    (``first_layer_weights``), and no scratch T."""


def first_weight_product(delta, Xb, C, alpha, beta):
    """The first layer's ``C = alpha * delta.T @ Xb + beta * C``: ``product_at_b`` for a
    matrix; for a CSR batch ``csr_gradient_t``, C then transposed (n_in, n_out)."""


@overload(input_rows)
def _input_rows_impl(X):
    if isinstance(X, types.Array):
        return lambda X: X.shape[0]
    if _is_csr(X):
        return lambda X: X.indptr.shape[0] - 1
    return None


@overload(input_cols)
def _input_cols_impl(X):
    if isinstance(X, types.Array):
        return lambda X: X.shape[1]
    if _is_csr(X):
        return lambda X: X.n_cols
    return None


@overload(input_values)
def _input_values_impl(X):
    if isinstance(X, types.Array):
        return lambda X: X
    if _is_csr(X):
        return lambda X: X.data
    return None


@overload(check_input)
def _check_input_impl(kernel, X):
    if isinstance(X, types.Array):
        return lambda kernel, X: check_contiguous(kernel, "X", X)
    if _is_csr(X):
        return lambda kernel, X: _check_csr(kernel, "X", X)
    return None


@overload(storage_batch)
def _storage_batch_impl(X, order, start, stop):
    if isinstance(X, types.Array):
        return lambda X, order, start, stop: X[start:stop]
    if _is_csr(X):
        return lambda X, order, start, stop: (X, order, np.int64(start),
                                              np.int64(stop - start))
    return None


@overload(batch_rows)
def _batch_rows_impl(Xb):
    if isinstance(Xb, types.Array):
        return lambda Xb: Xb.shape[0]
    if _is_csr_batch(Xb):
        return lambda Xb: Xb[3]
    return None


@overload(first_forward, jit_options=BORROWED)
def _first_forward_impl(Xb, W, b, out, act, T):
    if isinstance(Xb, types.Array):
        return lambda Xb, W, b, out, act, T: _forward(Xb, W, b, out, act, T)
    if _is_csr_batch(Xb):
        return lambda Xb, W, b, out, act, T: csr_forward_t(Xb[0], Xb[1], Xb[2], W, b,
                                                           out, act)
    return None


@overload(first_weight_product, jit_options=BORROWED)
def _first_weight_product_impl(delta, Xb, C, alpha, beta):
    if isinstance(Xb, types.Array):
        return lambda delta, Xb, C, alpha, beta: product_at_b(delta, Xb, C, alpha, beta)
    if _is_csr_batch(Xb):
        return lambda delta, Xb, C, alpha, beta: csr_gradient_t(Xb[0], Xb[1], Xb[2],
                                                                delta, C, alpha, beta)
    return None
