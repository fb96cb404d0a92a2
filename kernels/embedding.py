"""Learned category embeddings: a lookup layer in front of a network's first dense layer.

A column of X that holds category codes (integers ``0 .. n_c - 1`` stored as floats, so
that X stays one float matrix through files, chunks and MPI shards) is replaced, row by
row, by a learned vector of ``d_c`` numbers: row ``code`` of the column's table
``E_c`` (n_c, d_c). The first dense layer sees

    ``[x_numbers, E_1[code_1], E_2[code_2], ...]``

X's other columns in their order, then the embeddings in the order of their columns
(Guo and Berkhahn, "Entity Embeddings of Categorical Variables", 2016; fastai's tabular
learner). Its width ``n_0 = n_x - C + sum(d_c)`` is ``network.sizes[0]``.

The tables live in the flat parameter vector after the dense layers,
``[W_1, b_1, ..., W_L, b_L, E_1.ravel(), E_2.ravel(), ...]``, so every optimizer, the
checkpoints and the MPI reduction treat them as any other parameter. Their gradient is
the first layer's input gradient, ``G = D_1 @ W_1`` (m, n_0), added into the row of each
row's code: ``dE_c[code_rc] += G[r, embedding c's columns]``. An optimizer step sweeps
the whole tables, as PyTorch's dense ``nn.Embedding`` gradient does (rows absent from a
minibatch still move with momentum or Adam's moments).

A network with embeddings travels to the kernels as an ``Embeddings`` record in place of
its ``Network`` (``kernels.embeddings(network, columns, cardinalities, dims)``); the
functions below are no-ops, compiled away, for a plain ``Network``.
"""

from collections import namedtuple

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

from ._cache import CACHE, njit
from ._checks import INTS, Arg, as_int64, check_dim, checked_add, checked_mul
from .errors import InvalidTypeError, InvalidValueError, TooLargeError
from .products import product_a_b
from .records import Network, _int64_vector


class Embeddings(namedtuple("Embeddings", "network columns cardinalities dims")):
    """A network whose first layer reads learned embeddings of category-code columns:
    ``network`` its ``Network`` record (``sizes[0]`` the width after the lookup, ``n_x - C +
    sum(dims)``); ``columns`` (C,) int64, strictly increasing, the columns of X that hold
    codes; ``cardinalities`` (C,) int64 >= 1, each column's number of categories (codes
    ``0 .. n_c - 1``); ``dims`` (C,) int64 >= 1, each embedding's width."""

    __slots__ = ()
    FIELDS = {"network": Arg("record", record=Network), "columns": INTS,
              "cardinalities": INTS, "dims": INTS}
    MADE_BY = "kernels.embeddings(network, columns, cardinalities, dims)"


#: The ``network`` argument of the whole-network kernels: a ``Network`` record, or an
#: ``Embeddings`` record for a network with category embeddings.
NETWORK = Arg("record", record=Network, alternative=Embeddings)


def embeddings(network, columns, cardinalities, dims):
    """An ``Embeddings`` record (the integer vectors as int64); values are checked by the
    kernels. Raises ``InvalidTypeError`` for a ``network`` that is not a ``Network`` record
    or vectors that are not 1-D integer arrays."""
    if not isinstance(network, Network):
        raise InvalidTypeError("network must be a kernels.Network (kernels.network(sizes, "
                               "acts, loss)), got %s" % type(network).__name__)
    return Embeddings(network, _int64_vector(columns, "columns"),
                      _int64_vector(cardinalities, "cardinalities"), _int64_vector(dims, "dims"))


def table_size(cardinalities, dims):
    """The number of parameters of the embedding tables: ``sum_c n_c * d_c`` (Python ints,
    exact)."""
    return sum(int(n) * int(d) for n, d in zip(cardinalities, dims))


def embedding_dim(n_categories):
    """fastai's rule for an embedding's width: ``min(600, round(1.6 * n ** 0.56))`` for a
    column of n categories (fastai ``tabular.model.emb_sz_rule``, from Jeremy Howard's
    measurements), at least 1. ``InvalidValueError`` for a count that is not an integer
    >= 1 (``InvalidTypeError`` for one that is not a number)."""
    if isinstance(n_categories, (bool, np.bool_)) or not isinstance(
            n_categories, (int, np.integer, float, np.floating)):
        raise InvalidTypeError("embedding_dim: n_categories must be an integer >= 1, got %r"
                               % (n_categories,))
    if not (n_categories >= 1 and float(n_categories).is_integer()):
        raise InvalidValueError("embedding_dim: n_categories must be an integer >= 1, got %r"
                                % (n_categories,))
    return max(1, min(600, int(round(1.6 * float(n_categories) ** 0.56))))


# ----------------------------------------------------------------------------- compiled

def network_parts(network):
    """``(Network, Embeddings)`` of an ``Embeddings`` record, ``(network, None)`` of a
    ``Network``, whose kernels then compile no embedding code (compiled code only)."""


@overload(network_parts)
def _network_parts_impl(network):
    if isinstance(network, types.BaseNamedTuple) and network.instance_class is Embeddings:
        return lambda network: (network.network, network)
    return lambda network: (network, None)


@register_jitable
def _layout(kernel, emb, n_x, sizes):
    """The lookup layer's layout for X of n_x columns, checked against the network's
    ``sizes``: ``(numbers, columns, cardinalities, dims, table_starts, out_starts,
    n_tables)``, int64 vectors: X's columns that are not codes, in order; the code columns;
    where each table starts in the tables (after the dense layers in params); where each
    embedding starts in the first layer's input; the tables' total size."""
    columns = as_int64(kernel, "network.columns", emb.columns)
    cards = as_int64(kernel, "network.cardinalities", emb.cardinalities)
    dims = as_int64(kernel, "network.dims", emb.dims)
    C = columns.shape[0]
    check_dim(kernel, "network.cardinalities", cards.shape[0], "network.columns", C,
              "entries")
    check_dim(kernel, "network.dims", dims.shape[0], "network.columns", C, "entries")
    for c in range(C):
        if columns[c] < 0 or columns[c] >= n_x:
            raise InvalidValueError("%s: network.columns[%s] is %s, outside the %s columns of X",
                                    kernel, c, columns[c], n_x)
        if c > 0 and columns[c] <= columns[c - 1]:
            raise InvalidValueError("%s: network.columns must be strictly increasing, got %s "
                                    "after %s", kernel, columns[c], columns[c - 1])
        if cards[c] < 1:
            raise InvalidValueError("%s: network.cardinalities[%s] is %s; a column has at least "
                                    "1 category", kernel, c, cards[c])
        if dims[c] < 1:
            raise InvalidValueError("%s: network.dims[%s] is %s; an embedding has at least 1 "
                                    "number", kernel, c, dims[c])
    numbers = np.empty(n_x - C, np.int64)
    j = 0
    c = 0
    for col in range(n_x):
        if c < C and columns[c] == col:
            c += 1
        else:
            numbers[j] = col
            j += 1
    table_starts = np.empty(C, np.int64)
    out_starts = np.empty(C, np.int64)
    total = np.int64(0)
    width = np.int64(n_x - C)
    for c in range(C):
        table_starts[c] = total
        out_starts[c] = width
        total = checked_add(total, checked_mul(cards[c], dims[c]))
        width = checked_add(width, dims[c])
    if total < 0 or width < 0:
        raise TooLargeError("%s: the embedding tables hold more than 2**63 - 1 numbers", kernel)
    if width != sizes[0]:
        raise InvalidValueError("%s: network.sizes[0] is %s but X's %s number columns and the "
                                "embeddings' widths make %s inputs", kernel, sizes[0], n_x - C,
                                width)
    return numbers, columns, cards, dims, table_starts, out_starts, total


def embedding_layout(kernel, emb, n_x, sizes):
    """``_layout`` of an ``Embeddings`` record; None for None."""


@overload(embedding_layout)
def _embedding_layout_impl(kernel, emb, n_x, sizes):
    if isinstance(emb, types.NoneType):
        return lambda kernel, emb, n_x, sizes: None
    return lambda kernel, emb, n_x, sizes: _layout(kernel, emb, n_x, sizes)


def input_columns(X_cols, sizes, layout):
    """The columns X must have: ``sizes[0]``, or with embeddings the numbers' and the code
    columns' count (compiled code only)."""


@overload(input_columns)
def _input_columns_impl(X_cols, sizes, layout):
    if isinstance(layout, types.NoneType):
        return lambda X_cols, sizes, layout: sizes[0]
    return lambda X_cols, sizes, layout: X_cols  # _layout checked the widths


def tables_size(layout):
    """The tables' size in params: 0 without embeddings (compiled code only)."""


@overload(tables_size)
def _tables_size_impl(layout):
    if isinstance(layout, types.NoneType):
        return lambda layout: np.int64(0)
    return lambda layout: layout[6]


@register_jitable
def _check_codes(kernel, X, layout):
    _, columns, cards, _, _, _, _ = layout
    for i in range(X.shape[0]):
        for c in range(columns.shape[0]):
            v = X[i, columns[c]]
            if not (v >= 0 and v < cards[c] and v == np.floor(v)):
                raise InvalidValueError("%s: X[%s, %s] is %g, not a category code: column %s "
                                        "holds integers in [0, %s)", kernel, i, columns[c], v,
                                        columns[c], cards[c])


def check_codes(kernel, X, layout):
    """``InvalidValueError`` naming the first entry of a code column of X (a matrix) that
    is not an integer in ``[0, n_c)``; nothing without embeddings (compiled code only)."""


@overload(check_codes)
def _check_codes_impl(kernel, X, layout):
    if isinstance(layout, types.NoneType):
        return lambda kernel, X, layout: None
    if not isinstance(X, types.Array):
        def refuse(kernel, X, layout):
            raise InvalidValueError("%s: category embeddings take X as a matrix, not a CSR "
                                    "record", kernel)
        return refuse
    return lambda kernel, X, layout: _check_codes(kernel, X, layout)


@njit(cache=CACHE, inline="always")
def _code(X, i, column, n):
    """Row ``i``'s code in ``column`` as int64, checked again (``InvalidValueError``): the
    entry checks read X before the GIL is released, and a code another thread writes in
    between must not index outside its table."""
    v = X[i, column]
    if not (v >= 0 and v < n):
        raise InvalidValueError("X[%s, %s] is %g, not a category code: column %s holds "
                                "integers in [0, %s) (changed during the call)", i, column, v,
                                column, n)
    return np.int64(v)


@njit(cache=CACHE)
def expand_rows(X, order, start, layout, tables, out):
    """The first layer's input for rows ``order[start:start + m]`` of X (storage rows
    ``start:start + m`` when ``order`` is empty) into ``out`` (m, n_0): the number columns,
    then each code's row of its table (``tables``: the tables' part of params)."""
    numbers, columns, cards, dims, table_starts, out_starts, _ = layout
    m = out.shape[0]
    n_numbers = numbers.shape[0]
    for r in range(m):
        i = order[start + r] if order.shape[0] > 0 else start + r
        for j in range(n_numbers):
            out[r, j] = X[i, numbers[j]]
        for c in range(columns.shape[0]):
            d = dims[c]
            base = table_starts[c] + _code(X, i, columns[c], cards[c]) * d
            o = out_starts[c]
            for k in range(d):
                out[r, o + k] = tables[base + k]


@njit(cache=CACHE)
def table_gradient(delta, W0, X, order, start, layout, dtables, G):
    """Add the tables' gradient of a minibatch into ``dtables``: ``G = delta @ W0`` (the
    first layer's error term (m, n_1) times its weights (n_1, n_0): the gradient of its
    input), each embedding's columns of row r added into the row of row r's code. ``G``
    a scratch of at least m rows of n_0; rows as ``expand_rows``'."""
    numbers, columns, cards, dims, table_starts, out_starts, _ = layout
    m = delta.shape[0]
    Gm = G[:m]
    product_a_b(delta, W0, Gm, 1.0, 0.0)
    for r in range(m):
        i = order[start + r] if order.shape[0] > 0 else start + r
        for c in range(columns.shape[0]):
            d = dims[c]
            base = table_starts[c] + _code(X, i, columns[c], cards[c]) * d
            o = out_starts[c]
            for k in range(d):
                dtables[base + k] += Gm[r, o + k]


def gradient_scratch(layout, batch_size, n_0, dtype):
    """The scratch ``table_gradient`` needs, (batch_size, n_0); an empty (0, 0) matrix
    without embeddings (compiled code only)."""


@overload(gradient_scratch)
def _gradient_scratch_impl(layout, batch_size, n_0, dtype):
    if isinstance(layout, types.NoneType):
        return lambda layout, batch_size, n_0, dtype: np.empty((0, 0), dtype)
    return lambda layout, batch_size, n_0, dtype: np.empty((batch_size, n_0), dtype)
