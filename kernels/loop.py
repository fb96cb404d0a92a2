"""Whole passes over a dataset in compiled code: a training epoch, prediction, the full gradient.

A network is described to compiled code by a ``Network`` record (``kernels.network``):

- ``sizes`` (L + 1,) int64: ``[n_0, n_1, ..., n_L]``, the width of every layer, inputs first;
- ``acts`` (L,) int64: the activation code of every layer (``kernels.ACTIVATIONS``);
- ``loss``: the cost code (``kernels.LOSSES``).

Parameters live in one flat vector ``params`` (P,) laid out layer by layer as
``W_1.ravel(), b_1, W_2.ravel(), b_2, ...`` with ``W_l`` of shape ``(n_l, n_{l-1})``;
gradients and momentum velocity use the same layout. ``workspace`` is one flat buffer of
``workspace_size(sizes, batch_size)`` elements that holds every activation, the error
terms and a gathered minibatch, so an epoch allocates nothing per minibatch.
"""

import numpy as np
from numba import types
from numba.extending import register_jitable
from numba.extending import overload

from .errors import InvalidValueError, TooLargeError
from ._cache import BORROWED, CACHE, njit
from ._checks import (Arg, FLAT, FLAT_OUT, INT, INTS, MATRIX, MATRIX_OUT, OPTIONAL_WEIGHTS,
                      PARAMS_READ, REAL, as_int64,
                      cast_like, check_contiguous, check_dim, check_finite, check_float_dtypes,
                      check_positive, check_same_or_separate, check_separate, checked_add,
                      checked_mul, check_types, kernel, shares_memory)
from .activations import (IDENTITY, N_ACTIVATIONS, NEEDS_Z, RELU, _activate,
                          _backprop_activation, _backprop_activation_z, keep_z_and_activate)
from .config import FASTMATH_REDUCTION, PREFETCH_BYTES, STREAMING_MAX_OUTPUTS
from .dense import _forward
from .embedding import (NETWORK, check_codes, embedding_layout, expand_rows,
                        gradient_scratch, input_columns, network_parts, table_gradient,
                        tables_size)
from .views import matrix_view
from .masks import drop_units, mask_base, rows_mask_base, undo_dropout
from .loss import MSE, N_LOSSES, SOFTMAX_CE, _cost_element, _output_delta
from .optim import (Optimizer, _optimizer_step, _sgd_sweep,
                    check_optimizer, is_plain_sgd)
from ._prefetch import prefetch_row
from .products import product_a_b, product_at_b, forward_scratch_size
from .records import Batches, Dropout
from .sparse import (MATRIX_OR_CSR, batch_rows, check_input, epoch_rows, first_forward,
                     first_layer_gradient, first_layer_weights, first_weight_product,
                     input_cols, input_rows, input_values, is_csr, shuffled_rows,
                     storage_batch, store_first_layer_gradient, transpose_flat)


# ----------------------------------------------------------------------------- layout

@register_jitable
def _layer_offsets(kernel, sizes):
    """``layer_offsets`` for ``kernel``'s messages: every width at least 1, and P (and so
    every offset) within int64 (``OverflowError`` naming sizes otherwise)."""
    n_layers = sizes.shape[0] - 1
    if n_layers < 1:
        raise InvalidValueError("%s: sizes must list at least 2 layer widths (inputs and "
                                "outputs), got %s", kernel, sizes.shape[0])
    offsets = np.empty(n_layers + 1, np.int64)
    o = np.int64(0)
    for l in range(n_layers + 1):
        if sizes[l] < 1:
            raise InvalidValueError("%s: sizes[%s] is %s: every layer width must be at least 1",
                                    kernel, l, sizes[l])
    for l in range(n_layers):
        offsets[l] = o
        o = checked_add(o, checked_add(checked_mul(sizes[l + 1], sizes[l]), sizes[l + 1]))
    if o < 0:
        raise TooLargeError("%s: sizes %s make more than 2**63 - 1 weights and biases, beyond "
                            "int64", kernel, sizes)
    offsets[n_layers] = o
    return offsets


@kernel
def layer_offsets(sizes: INTS):
    """(L + 1,) int64: where each layer's ``W`` starts in ``params``; the last entry is P."""
    check_types("layer_offsets", sizes)
    return _layer_offsets("layer_offsets", as_int64("layer_offsets", "sizes", sizes))


@kernel
def param_count(sizes: INTS):
    """P, the number of weights and biases of a network with these layer sizes."""
    check_types("param_count", sizes)
    return _layer_offsets("param_count", as_int64("param_count", "sizes", sizes))[-1]


# The view helpers are inlined: into the kernels compiled without reference counting
# (``_forward_batch``, ``_backward_batch``) they bring none, and a view returned from a
# function compiled so would reach its caller without the reference that caller frees.
@njit(cache=CACHE, inline="always")
def _weight_view(flat, offsets, sizes, l):
    """``W`` of layer ``l + 1`` (n_{l+1}, n_l) as a view into a flat vector."""
    return matrix_view(flat, offsets[l], sizes[l + 1], sizes[l])


@njit(cache=CACHE, inline="always")
def _bias_view(flat, offsets, sizes, l):
    """``b`` of layer ``l + 1`` (n_{l+1},) as a view into a flat vector."""
    o = offsets[l] + sizes[l + 1] * sizes[l]
    return flat[o:o + sizes[l + 1]]


@njit(cache=CACHE)
def _workspace_layout(sizes, batch_size):
    """Where everything lives in the workspace: the one place its layout is computed.

    Returns ``(a_starts, z_starts, d_starts, x_start, y_start, t_start, total)``: the start
    of every layer's activations block ``A_l`` (batch_size, n_{l+1}), pre-activation block
    ``Z_l`` (the same shape; hidden layers only: the output layer's start is that of an
    empty block) and error-term block ``D_l``, of the gathered batch of X (batch_size,
    n_0) and Y (batch_size, n_L), of the scratch for a transposed weight matrix, and the
    total size. The activations of every layer lie one after another, then the hidden
    layers' Z (written only by layers whose activation needs it: gelu, silu), then two
    buffers of ``batch_size * widest`` for the error terms, which
    alternate from the top layer down (a layer's error term is formed from the one above
    it), then the gathered batch, then room for the largest ``W.T`` that a forward product
    in register tiles can need (``kernels.dense._forward``; none for wide layers, which go
    to BLAS whatever the batch). A value beyond int64 comes out as -1, and so does every
    one after it (``_workspace_size`` refuses them).
    """
    n_layers = sizes.shape[0] - 1
    a_starts = np.empty(n_layers, np.int64)
    z_starts = np.empty(n_layers, np.int64)
    d_starts = np.empty(n_layers, np.int64)
    start = 0
    widest = 0
    transposed = 0
    for l in range(n_layers):
        a_starts[l] = start
        start = checked_add(start, checked_mul(batch_size, sizes[l + 1]))
        widest = max(widest, sizes[l + 1])
        # one row: what the smallest batch needs, so that a batch's last, short rows
        # find room too (n_{l+1} * n_l fits: _layer_offsets checked the sizes)
        transposed = max(transposed, forward_scratch_size(np.int64(1), sizes[l + 1], sizes[l]))
    for l in range(n_layers - 1):
        z_starts[l] = start
        start = checked_add(start, checked_mul(batch_size, sizes[l + 1]))
    z_starts[n_layers - 1] = start  # the output layer keeps none (an empty block)
    block = checked_mul(batch_size, widest)
    for l in range(n_layers):
        d_starts[l] = checked_add(start, block) if (n_layers - 1 - l) % 2 else start
    x_start = checked_add(start, checked_mul(np.int64(2), block))
    y_start = checked_add(x_start, checked_mul(batch_size, sizes[0]))
    t_start = checked_add(y_start, checked_mul(batch_size, sizes[n_layers]))
    return (a_starts, z_starts, d_starts, x_start, y_start, t_start,
            checked_add(t_start, transposed))


@register_jitable
def _workspace_size(kernel, sizes, batch_size):
    """``workspace_size`` for ``kernel``'s messages: valid sizes, a positive batch_size and
    a size within int64 (``OverflowError`` naming sizes and batch_size otherwise)."""
    _layer_offsets(kernel, sizes)
    check_positive(kernel, "batch_size", batch_size)
    total = _workspace_layout(sizes, batch_size)[6]
    if total < 0:
        raise TooLargeError("%s: sizes %s with batch_size %s need more than 2**63 - 1 workspace "
                            "elements, beyond int64", kernel, sizes, batch_size)
    return total


@kernel
def workspace_size(sizes: INTS, batch_size: INT):
    """Elements of scratch an epoch needs: activations, the hidden layers' pre-activations
    (kept for gelu and silu), two error terms, a gathered batch and a transposed weight
    matrix. ``batch_size`` must be positive."""
    check_types("workspace_size", sizes, batch_size)
    return _workspace_size("workspace_size", as_int64("workspace_size", "sizes", sizes),
                           batch_size)


@njit(cache=CACHE, inline="always")
def _biases_of(flat, sizes, l):
    """Layer ``l + 1``'s part (n_{l+1},) of a vector of every layer's biases alone, one
    layer after another (``bias_start``)."""
    o = bias_start(sizes, l)
    return flat[o:o + sizes[l + 1]]


@njit(cache=CACHE, inline="always")
def bias_start(sizes, l):
    """Where layer ``l + 1``'s biases start in a vector of every layer's biases alone."""
    o = 0
    for k in range(l):
        o += sizes[k + 1]
    return o


@njit(cache=CACHE, inline="always")
def _block(workspace, start, rows, cols):
    return matrix_view(workspace, start, rows, cols)


@njit(cache=CACHE, inline="always")
def _rows(work, start, batch_size, cols, row0, m):
    """Rows ``row0:row0 + m`` of the (batch_size, cols) block at ``start``."""
    return _block(work, start, batch_size, cols)[row0:row0 + m]


@njit(cache=CACHE)
def _views(params, grads, sizes, workspace, batch_size):
    """What ``_forward_batch`` and ``_backward_batch`` find every layer's arrays in: the
    tuple ``(params, grads, offsets, sizes, workspace, a_starts, z_starts, d_starts,
    batch_size)`` (``grads`` may be empty for a forward pass only). They form each view
    from it as they need it, rather than index lists of views: a list needs Numba's
    reference counting, whose atomic instructions on every view taken were a fifth of a
    10-32-1 network's minibatch step (AMD EPYC Zen 5)."""
    a_starts, z_starts, d_starts, _, _, _, _ = _workspace_layout(sizes, batch_size)
    return (params, grads, layer_offsets(sizes), sizes, workspace, a_starts, z_starts,
            d_starts, batch_size)


# ----------------------------------------------------------------------------- checks

@register_jitable
def _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss, layout):
    """The network (sizes, acts, loss), X's columns, the size of params (the dense layers',
    and the embedding tables' of ``layout``: ``kernels.embedding``, None without), the
    batch size, the workspace, and X's category codes."""
    n_layers = sizes.shape[0] - 1
    if loss < 0 or loss >= N_LOSSES:
        raise InvalidValueError("%s: loss is %s, not a cost code (kernels.LOSSES)", kernel, loss)
    if n_layers < 1:
        raise InvalidValueError("%s: sizes must list at least 2 layer widths, got %s", kernel,
                                sizes.shape[0])
    for l in range(n_layers + 1):
        check_positive(kernel, "every entry of sizes", sizes[l])
    n_params = _layer_offsets(kernel, sizes)[n_layers]
    if acts.shape[0] != n_layers:
        raise InvalidValueError("%s: acts has %s entries but the network has %s layers "
                                "(len(sizes) - 1): one activation a layer", kernel,
                                acts.shape[0], n_layers)
    for l in range(n_layers):
        if acts[l] < 0 or acts[l] >= N_ACTIVATIONS:
            raise InvalidValueError("%s: acts[%s] is %s, not an activation code", kernel, l,
                                    acts[l])
    if loss != MSE and acts[n_layers - 1] != 0:
        raise InvalidValueError("%s: the cross-entropy costs take logits: the last layer's "
                                "activation must be identity (0), got %s", kernel,
                                acts[n_layers - 1])
    if loss == SOFTMAX_CE and sizes[n_layers] < 2:
        # a softmax over one output is 1 whatever the logit: the cost is 0, the gradient 0
        raise InvalidValueError("%s: loss SOFTMAX_CE needs at least 2 outputs, but sizes[-1] is "
                                "%s; use SIGMOID_BCE for one output", kernel, sizes[n_layers])
    check_dim(kernel, "X", input_cols(X), "sizes[0]",
              input_columns(input_cols(X), sizes, layout), "columns")
    check_dim(kernel, "params", params.shape[0], "the network",
              n_params + tables_size(layout), "elements")
    check_positive(kernel, "batch_size", batch_size)
    need = _workspace_size(kernel, sizes, batch_size)
    if workspace.shape[0] < need:
        raise InvalidValueError("%s: workspace has %s elements but workspace_size(sizes, "
                                "batch_size) is %s", kernel, workspace.shape[0], need)
    check_input(kernel, X)
    check_codes(kernel, X, layout)


@register_jitable
def _unpacked(kernel, X, network):
    """``(network, sizes, acts, layout)`` of a ``Network`` or ``Embeddings`` record: the
    ``Network``, its integer arrays as int64, and the embeddings' layout for X
    (``kernels.embedding``) or None."""
    network, emb = network_parts(network)
    sizes = as_int64(kernel, "network.sizes", network.sizes)
    acts = as_int64(kernel, "network.acts", network.acts)
    return network, sizes, acts, embedding_layout(kernel, emb, input_cols(X), sizes)


@register_jitable
def _check_workspace(kernel, workspace, X, Y, params):
    """The workspace (written) shares no memory with X (a CSR record's values), Y or
    params."""
    check_separate(kernel, "workspace", workspace, "X", input_values(X))
    check_separate(kernel, "workspace", workspace, "Y", Y)
    check_separate(kernel, "workspace", workspace, "params", params)


@register_jitable
def _check_buffers(kernel, X, Y, params, workspace, grads, grads_name):
    """The workspace and ``grads`` (both written) share no memory with X, Y, params or
    each other: a gradient written over the data or the parameters it is computed from
    would be garbage, silently."""
    _check_workspace(kernel, workspace, X, Y, params)
    check_separate(kernel, grads_name, grads, "X", input_values(X))
    check_separate(kernel, grads_name, grads, "Y", Y)
    check_separate(kernel, grads_name, grads, "params", params)
    check_separate(kernel, grads_name, grads, "workspace", workspace)


@register_jitable
def _check_targets(kernel, X, Y, sizes, y_name):
    """``Y`` (named ``y_name``: Y, or predict_into's out) has X's rows and n_L columns."""
    check_dim(kernel, y_name, Y.shape[0], "X", input_rows(X), "rows")
    check_dim(kernel, y_name, Y.shape[1], "sizes[-1]", sizes[sizes.shape[0] - 1], "columns")
    check_contiguous(kernel, y_name, Y)


def _weights_or_none(sample_weight):
    """``sample_weight`` itself, or an empty float64 vector (every row weighs 1) for None."""


@overload(_weights_or_none)
def _weights_or_none_impl(sample_weight):
    if isinstance(sample_weight, (types.NoneType, types.Omitted)):
        return lambda sample_weight: np.empty(0, np.float64)
    return lambda sample_weight: sample_weight


@register_jitable
def _check_weights(kernel, name, weights, n_rows):
    """``weights`` is empty (every row weighs 1) or holds one finite weight >= 0 per row
    of X; returns their sum (float64; ``n_rows`` when empty)."""
    if weights.shape[0] == 0:
        return np.float64(n_rows)
    check_dim(kernel, name, weights.shape[0], "X", n_rows, "rows")
    total = 0.0
    for i in range(weights.shape[0]):
        w = weights[i]
        if not (w >= 0 and w < np.inf):
            raise InvalidValueError("%s: %s[%s] is %g; sample weights must be finite and >= 0",
                                    kernel, name, i, w)
        total += w
    return total


# ----------------------------------------------------------------------------- views

# A view made with reshape costs a call into Numba's runtime, a sizeable part of a small
# network's whole minibatch step (docs/performance.md, "Small products"). So every
# per-layer view is made once per kernel call, and a minibatch of m rows only slices the
# first m rows off them.

@njit(cache=CACHE)
def _gather_block(workspace, sizes, batch_size):
    """The workspace's block for a gathered batch of X (batch_size, n_0)
    (``_workspace_layout``): where a batch with embeddings is looked up."""
    _, _, _, x_start, _, _, _ = _workspace_layout(sizes, batch_size)
    return _block(workspace, x_start, batch_size, sizes[0])


@njit(cache=CACHE)
def _scratch(workspace, sizes, batch_size):
    """The 1-D scratch of the workspace for a transposed weight matrix
    (``_workspace_layout``)."""
    _, _, _, _, _, t_start, total = _workspace_layout(sizes, batch_size)
    return workspace[t_start:total]


# ----------------------------------------------------------------------------- one batch

#: The ``dropout`` of passes that drop nothing (prediction, costs, full gradients): a
#: global array, which compiled code reads as a constant.
#: The ``row0`` of a whole minibatch (``_forward_batch``), and the step of passes that
#: drop nothing: an int64 global, not the literal 0, for which Numba would compile the
#: callee once more.
WHOLE_BATCH = np.int64(0)


@njit(cache=CACHE)
def _gather_rows(src, order, start, out):
    """``out[r] = src[order[start + r]]`` for every row r of out (m, n), element by element:
    a row-slice assignment costs a view and a call per row, 20 times this loop's work for a
    10-feature row."""
    m, n = out.shape
    for r in range(m):
        i = order[start + r]
        for j in range(n):
            out[r, j] = src[i, j]


@njit(cache=CACHE, inline="always")
def prefetch_rows_of(A, order, start, stop):
    """Start loading rows ``order[start:stop]`` of A (as far as ``order`` goes) into cache:
    called with the next minibatch's rows once this one's are gathered, so that they
    arrive while this one trains. A shuffled epoch's gather otherwise waits on every row
    in turn (X beyond the core's caches): 16% of T1's epoch, 12% of T3's
    (docs/performance.md, "Gathering a shuffled minibatch")."""
    for q in range(start, min(stop, order.shape[0])):
        prefetch_row(A, order[q])


@njit(cache=CACHE, inline="always")
def _batch_weight(weights, order, start, m, batch_weights):
    """The total weight of the minibatch of m rows at ``start`` (of ``order``, or in storage
    order when it is empty): m when ``weights`` is empty, else the sum of its rows' weights,
    which are gathered into ``batch_weights[:m]``."""
    if weights.shape[0] == 0:
        return np.float64(m)
    total = 0.0
    for r in range(m):
        w = weights[order[start + r] if order.shape[0] > 0 else start + r]
        batch_weights[r] = w
        total += w
    return total


def _ordered_batch(X, order, start, stop, gather):
    """Rows ``order[start:stop]`` of X: gathered into the first rows of ``gather`` for a
    matrix, the CSR batch ``(X, order, start, m)`` for a CSR record (nothing copied)."""


@overload(_ordered_batch)
def _ordered_batch_impl(X, order, start, stop, gather):
    if isinstance(X, types.Array):
        def gathered(X, order, start, stop, gather):
            Xb = gather[:stop - start]
            _gather_rows(X, order, start, Xb)
            prefetch_rows_of(X, order, stop, stop + (stop - start))  # the next minibatch's
            return Xb
        return gathered
    # a CSR record's shuffled epoch has its rows in order already (shuffled_rows)
    return lambda X, order, start, stop, gather: storage_batch(X, order[:0], start, stop)


def _epoch_batch(X, order, start, stop, gather, layout, params):
    """The first layer's input for the minibatch ``order[start:stop]`` (storage rows
    ``start:stop`` when ``order`` is empty): ``_ordered_batch`` or ``storage_batch`` of X
    without embeddings (``layout`` None); with them, X's numbers and its codes' rows of the
    tables (the end of ``params``) written into ``gather``'s first rows
    (``kernels.embedding.expand_rows``)."""


@overload(_epoch_batch)
def _epoch_batch_impl(X, order, start, stop, gather, layout, params):
    if isinstance(layout, types.NoneType):
        def plain(X, order, start, stop, gather, layout, params):
            if order.shape[0] > 0:
                return _ordered_batch(X, order, start, stop, gather)
            return storage_batch(X, order, start, stop)
        return plain
    if not isinstance(X, types.Array):
        # a CSR record with embeddings: refused by check_codes before any batch; this
        # compiles that refusal rather than a typing error
        def refused(X, order, start, stop, gather, layout, params):
            if stop >= start:
                raise InvalidValueError("category embeddings take X as a matrix, not a CSR "
                                        "record")
            return gather[:0]
        return refused

    def looked_up(X, order, start, stop, gather, layout, params):
        Xb = gather[:stop - start]
        expand_rows(X, order, start, layout, params[params.shape[0] - tables_size(layout):], Xb)
        return Xb
    return looked_up


def _add_table_gradient(layout, views, m, W0, X, order, start, G):
    """Add the embedding tables' gradient of the minibatch of m rows that
    ``_backward_batch`` just went through (its first layer's error term is in ``views``'
    workspace; ``W0`` the first layer's weights it ran with) into the end of ``views``'
    grads (``kernels.embedding.table_gradient``); nothing without embeddings."""


@overload(_add_table_gradient)
def _add_table_gradient_impl(layout, views, m, W0, X, order, start, G):
    if isinstance(layout, types.NoneType) or not isinstance(X, types.Array):
        return lambda layout, views, m, W0, X, order, start, G: None  # (CSR: refused)

    def add(layout, views, m, W0, X, order, start, G):
        _, grads, _, sizes, work, _, _, d_starts, batch_size = views
        delta = _block(work, d_starts[0], batch_size, sizes[1])[:m]
        table_gradient(delta, W0, X, order, start, layout,
                       grads[grads.shape[0] - tables_size(layout):], G)
    return add


@njit(cache=CACHE, **BORROWED)
def _forward_batch(Xb, W0, views, acts, T, dropout, seed, step, row0):
    """Activations of every layer for one batch Xb (m, n_0) into their workspace blocks
    (``views``, from ``_views``; the output layer's: ``_output_block``), and the
    pre-activations of the hidden layers whose activation needs them (gelu, silu) into
    their Z blocks; T is the scratch for ``_forward``'s transposed weights. Xb is a matrix
    or a CSR batch (``kernels.sparse``): only the first layer's product differs
    (``first_forward``), with the first layer's weights W0 as ``first_layer_weights``
    gives them. ``dropout`` (L - 1,) the hidden layers' dropout rates (empty or None: no
    dropout; None, as prediction, costs and epochs without dropout pass it, compiles no
    dropout code), applied to each hidden layer's output with the masks of ``seed`` and
    the optimizer step ``step`` (``kernels.masks``). Xb's rows are
    rows ``row0, row0 + 1, ...`` of their minibatch (a shard of a data-parallel step,
    ``kernels.parallel``; 0 for a whole minibatch): their activations go to those rows of
    the blocks, and each row is dropped as in the whole.

    Compiled without reference counting (``_cache.BORROWED``): every array it touches is
    held by its caller, and it returns none.
    """
    params, _, offsets, sizes, work, a_starts, z_starts, _, batch_size = views
    m = batch_rows(Xb)
    top = sizes.shape[0] - 2
    a_prev = _rows(work, a_starts[0], batch_size, sizes[1], row0, m)
    keep = top > 0 and NEEDS_Z[acts[0]] == 1
    first_forward(Xb, W0, _bias_view(params, offsets, sizes, 0), a_prev,
                  IDENTITY if keep else acts[0], T)
    if keep:
        keep_z_and_activate(a_prev, _rows(work, z_starts[0], batch_size, sizes[1], row0, m),
                            acts[0])
    # "dropout is not None" first: Numba prunes the branch, unlowered, when it is None
    if dropout is not None and top > 0 and dropout.shape[0] > 0 and dropout[0] > 0:
        drop_units(a_prev, dropout[0], rows_mask_base(seed, step, np.int64(0), row0, sizes[1]))
    for l in range(1, top + 1):
        out = _rows(work, a_starts[l], batch_size, sizes[l + 1], row0, m)
        keep = l < top and NEEDS_Z[acts[l]] == 1
        _forward(a_prev, _weight_view(params, offsets, sizes, l),
                 _bias_view(params, offsets, sizes, l), out, IDENTITY if keep else acts[l], T)
        if keep:
            keep_z_and_activate(out, _rows(work, z_starts[l], batch_size, sizes[l + 1], row0, m),
                                acts[l])
        if dropout is not None and l < top and dropout.shape[0] > 0 and dropout[l] > 0:
            drop_units(out, dropout[l], rows_mask_base(seed, step, l, row0, sizes[l + 1]))
        a_prev = out


@njit(cache=CACHE)
def _output_block(views, m):
    """The output activations (m, n_L) that ``_forward_batch`` left: the first m rows of
    the last layer's block."""
    _, _, _, sizes, work, a_starts, _, _, batch_size = views
    top = sizes.shape[0] - 2
    return _block(work, a_starts[top], batch_size, sizes[top + 1])[:m]


@njit(cache=CACHE, **BORROWED)
def _backward_batch(Xb, Yb, W0, dW0, views, acts, loss, scale, accumulate, lr, weights,
                    dropout, seed, step):
    """Backprop one batch whose activations ``_forward_batch`` left in the workspace (and
    its Z blocks) of a whole minibatch (``row0`` 0), with the same ``views``, ``dropout``,
    ``seed`` and ``step``; W0 and dW0
    the first layer's weights and gradient as ``first_layer_weights`` and
    ``first_layer_gradient`` give them (the gradient of the other layers goes to
    ``views``' grads).

    With ``lr == 0`` the gradient ``dC/dTheta`` (the cost ``loss`` summed over rows, each
    times its weight in ``weights`` (m,) or 1 when it is empty, times ``scale``: 1/m for a
    batch mean) is written into the gradient (added in with accumulate). With
    ``lr > 0`` the plain SGD step is fused instead: each ``W`` is updated by one product
    with ``alpha = -lr, beta = 1`` after its error term has been propagated below it, so
    no weight gradient is stored. Returns the batch's summed (weighted) cost. Xb is a
    matrix or a CSR batch: the first layer's weight product is ``first_weight_product``.

    A layer whose output was dropped out has its weight gradient (the product with the
    dropped output the layer above saw) formed before ``undo_dropout`` turns the error
    term and the output back into those before dropout, which its activation's
    derivative needs; other layers keep the order below. Compiled without reference
    counting, as ``_forward_batch``.
    """
    params, grads, offsets, sizes, work, a_starts, z_starts, d_starts, batch_size = views
    m = batch_rows(Xb)
    top = sizes.shape[0] - 2
    fused = lr > 0
    delta = _block(work, d_starts[top], batch_size, sizes[top + 1])[:m]
    cost = _output_delta(_block(work, a_starts[top], batch_size, sizes[top + 1])[:m], Yb,
                         delta, _bias_view(grads, offsets, sizes, top), acts[top], loss,
                         scale, accumulate and not fused, weights)
    for l in range(top, 0, -1):
        a_in = _block(work, a_starts[l - 1], batch_size, sizes[l])[:m]
        W = _weight_view(params, offsets, sizes, l)
        dW = _weight_view(grads, offsets, sizes, l)
        db_below = _bias_view(grads, offsets, sizes, l - 1)
        # Propagate below with the weights as they were in the forward pass.
        below = _block(work, d_starts[l - 1], batch_size, sizes[l])[:m]
        product_a_b(delta, W, below, 1.0, 0.0)
        dropped = False
        if dropout is not None:  # pruned, unlowered, when None (no dropout)
            dropped = dropout.shape[0] > 0 and dropout[l - 1] > 0
            if dropped:
                _weight_step(delta, a_in, W, dW, lr, accumulate)
                undo_dropout(a_in, below, dropout[l - 1], mask_base(seed, step, l - 1))
        if NEEDS_Z[acts[l - 1]] == 1:  # gelu, silu: from the Z _forward_batch kept
            _backprop_activation_z(_block(work, z_starts[l - 1], batch_size, sizes[l])[:m],
                                   below, db_below, acts[l - 1], accumulate and not fused)
        else:
            _backprop_activation(a_in, below, db_below, acts[l - 1],
                                 accumulate and not fused)
        if not dropped:
            _weight_step(delta, a_in, W, dW, lr, accumulate)
        if fused:
            # "not fused": False, as a run-time value (a literal would compile the sweep a
            # second time beside the one the optimizer step uses)
            _sgd_sweep(_bias_view(params, offsets, sizes, l), _bias_view(grads, offsets, sizes, l),
                       lr, not fused)
        delta = below
    # the first layer, whose input is the batch itself (no error term below it)
    if fused:
        first_weight_product(delta, Xb, W0, -lr, 1.0)
        _sgd_sweep(_bias_view(params, offsets, sizes, 0), _bias_view(grads, offsets, sizes, 0),
                   lr, not fused)
    else:
        first_weight_product(delta, Xb, dW0, 1.0, 1.0 if accumulate else 0.0)
    return cost


@njit(cache=CACHE, **BORROWED)
def _backward_deltas(Yb, views, acts, loss, scale, weights, row0, db):
    """The error terms of every layer for rows ``row0:row0 + m`` of a minibatch whose
    activations ``_forward_batch`` left there (Yb (m, n_L) their targets), each layer's
    into its own D block of ``views`` (a layout that keeps every layer's, not two that
    alternate: ``kernels.parallel``), with no weight gradient: a data-parallel step forms
    those from all rows' error terms once every shard's are there. ``db`` (sum of
    n_1 .. n_L,) receives these rows' bias gradients, every layer's one after another
    (``_biases_of``); ``scale``
    and ``weights`` as ``_backward_batch``'s. No dropout. Returns the rows' summed cost."""
    params, _, offsets, sizes, work, a_starts, z_starts, d_starts, batch_size = views
    m = Yb.shape[0]
    top = sizes.shape[0] - 2
    delta = _rows(work, d_starts[top], batch_size, sizes[top + 1], row0, m)
    cost = _output_delta(_rows(work, a_starts[top], batch_size, sizes[top + 1], row0, m),
                         Yb, delta, _biases_of(db, sizes, top), acts[top], loss,
                         scale, False, weights)
    for l in range(top, 0, -1):
        below = _rows(work, d_starts[l - 1], batch_size, sizes[l], row0, m)
        product_a_b(delta, _weight_view(params, offsets, sizes, l), below, 1.0, 0.0)
        db_below = _biases_of(db, sizes, l - 1)
        if NEEDS_Z[acts[l - 1]] == 1:
            _backprop_activation_z(
                _rows(work, z_starts[l - 1], batch_size, sizes[l], row0, m), below,
                db_below, acts[l - 1], False)
        else:
            _backprop_activation(
                _rows(work, a_starts[l - 1], batch_size, sizes[l], row0, m), below,
                db_below, acts[l - 1], False)
        delta = below
    return cost


@njit(cache=CACHE, inline="always")
def _weight_step(delta, a_in, W, dW, lr, accumulate):
    """A layer's weight gradient ``delta.T @ a_in`` into dW (added in with accumulate) or,
    with ``lr > 0``, the fused SGD step ``W -= lr * delta.T @ a_in``."""
    if lr > 0:
        product_at_b(delta, a_in, W, -lr, 1.0)
    else:
        product_at_b(delta, a_in, dW, 1.0, 1.0 if accumulate else 0.0)


# ----------------------------------------------------------------------------- streaming

#: Rows ``_stream_batch`` takes a pass: that many independent dot products in flight, and
#: one load and store of dW for all of them. Eight rows took an epoch of config A (100
#: inputs, 1,000,000 rows) from 19.5 to 12.6 ns a row on an AMD EPYC Zen 5, four 16.3
#: (docs/performance.md, config A). The loop body below is written for this count.
STREAM_ROWS = 8


@njit(cache=CACHE, inline="always")
def _stream_row(order, shuffled, r, k, stop, i0):
    """(row of X, counts) of the k-th row of the pass starting at position r (of ``order``,
    or of X when it is empty): a row past
    ``stop`` is row ``i0`` again (its error term is then zeroed, so it adds nothing)."""
    if r + k < stop:
        return (order[r + k] if shuffled else r + k), True
    return i0, False


@njit(cache=CACHE, fastmath=FASTMATH_REDUCTION, inline="always")
def _stream_batch(X, Y, W, b, dW, db, order, start, stop, act, inv_m, ahead):
    """Rows ``start:stop`` (of ``order``, or of X when it is empty) read once each: forward,
    cost and the error-times-input gradient accumulated into dW (n_out, n_in) and db.
    The rows ``ahead`` positions further on are prefetched (0: none).

    Returns the batch's summed cost (float64). Called with ``act`` a literal constant, so
    that the activation's branches fold away once it is inlined (see epoch_streaming).
    """
    shuffled = order.shape[0] > 0
    n = order.shape[0] if shuffled else X.shape[0]
    zero = cast_like(0, X)
    nothing = cast_like(0, dW)
    batch_cost = 0.0
    # STREAM_ROWS rows a pass: their dot products are independent chains the core
    # overlaps, and each load and store of dW carries all their updates. The rows of a
    # last, partial pass past ``stop`` repeat its first row with a zero error term.
    for r in range(start, stop, STREAM_ROWS):
        for q in range(r + ahead, min(r + ahead + STREAM_ROWS, n) if ahead > 0 else 0):
            prefetch_row(X, order[q] if shuffled else q)
        # 2-D indexing, no row views: a view per row costs more than a 100-wide row's
        # whole arithmetic (docs/performance.md, config A).
        i0 = order[r] if shuffled else r
        i1, v1 = _stream_row(order, shuffled, r, 1, stop, i0)
        i2, v2 = _stream_row(order, shuffled, r, 2, stop, i0)
        i3, v3 = _stream_row(order, shuffled, r, 3, stop, i0)
        i4, v4 = _stream_row(order, shuffled, r, 4, stop, i0)
        i5, v5 = _stream_row(order, shuffled, r, 5, stop, i0)
        i6, v6 = _stream_row(order, shuffled, r, 6, stop, i0)
        i7, v7 = _stream_row(order, shuffled, r, 7, stop, i0)
        for j in range(W.shape[0]):
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
            for p in range(X.shape[1]):
                w = W[j, p]
                s0 += w * X[i0, p]
                s1 += w * X[i1, p]
                s2 += w * X[i2, p]
                s3 += w * X[i3, p]
                s4 += w * X[i4, p]
                s5 += w * X[i5, p]
                s6 += w * X[i6, p]
                s7 += w * X[i7, p]
            bj = b[j]
            c0, g0 = _cost_element(_activate(s0 + bj, act), Y[i0, j], act, MSE, inv_m)
            c1, g1 = _cost_element(_activate(s1 + bj, act), Y[i1, j], act, MSE, inv_m)
            c2, g2 = _cost_element(_activate(s2 + bj, act), Y[i2, j], act, MSE, inv_m)
            c3, g3 = _cost_element(_activate(s3 + bj, act), Y[i3, j], act, MSE, inv_m)
            c4, g4 = _cost_element(_activate(s4 + bj, act), Y[i4, j], act, MSE, inv_m)
            c5, g5 = _cost_element(_activate(s5 + bj, act), Y[i5, j], act, MSE, inv_m)
            c6, g6 = _cost_element(_activate(s6 + bj, act), Y[i6, j], act, MSE, inv_m)
            c7, g7 = _cost_element(_activate(s7 + bj, act), Y[i7, j], act, MSE, inv_m)
            batch_cost += (c0 + (c1 if v1 else 0.0) + (c2 if v2 else 0.0)
                           + (c3 if v3 else 0.0) + (c4 if v4 else 0.0) + (c5 if v5 else 0.0)
                           + (c6 if v6 else 0.0) + (c7 if v7 else 0.0))
            g0 = cast_like(g0, dW)
            g1 = cast_like(g1, dW) if v1 else nothing
            g2 = cast_like(g2, dW) if v2 else nothing
            g3 = cast_like(g3, dW) if v3 else nothing
            g4 = cast_like(g4, dW) if v4 else nothing
            g5 = cast_like(g5, dW) if v5 else nothing
            g6 = cast_like(g6, dW) if v6 else nothing
            g7 = cast_like(g7, dW) if v7 else nothing
            # No "if g != 0" around this (ReLU rows with g = 0 add exact zeros): that
            # branch is mispredicted on about half the rows and costs more than the
            # update it skips.
            for p in range(X.shape[1]):
                dW[j, p] += (((g0 * X[i0, p] + g1 * X[i1, p]) + (g2 * X[i2, p] + g3 * X[i3, p]))
                             + ((g4 * X[i4, p] + g5 * X[i5, p])
                                + (g6 * X[i6, p] + g7 * X[i7, p])))
            db[j] += ((g0 + g1) + (g2 + g3)) + ((g4 + g5) + (g6 + g7))
    return batch_cost


@register_jitable
def prefetch_rows(n_in, itemsize, prefetch_bytes):
    """How many rows ahead the streamed epoch prefetches rows of ``n_in`` values of
    ``itemsize`` bytes: ``prefetch_bytes`` (``config.PREFETCH_BYTES`` in training) of X,
    at least one row. Also called from Python (``benchmarks.prefetch_distance``)."""
    return max(prefetch_bytes // max(n_in * itemsize, 1), 1)


@njit(cache=CACHE, fastmath=FASTMATH_REDUCTION)
def _epoch_streaming(X, Y, params, grads, opt, act, batch_size, order, ahead):
    """``epoch_streaming`` after its checks."""
    n_out, n_in = Y.shape[1], X.shape[1]
    W = params[:n_out * n_in].reshape((n_out, n_in))
    b = params[n_out * n_in:]
    dW = grads[:n_out * n_in].reshape((n_out, n_in))
    db = grads[n_out * n_in:]
    n = order.shape[0] if order.shape[0] > 0 else X.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        inv_m = cast_like(1.0 / (stop - start), X)  # float32 stays float32
        grads[:] = 0
        # ReLU and identity get copies of the row loop with the activation a constant: a
        # choice among all activations inside it kept the ReLU a mispredicted branch
        # (docs/performance.md, config A).
        if act == RELU:
            batch_cost = _stream_batch(X, Y, W, b, dW, db, order, start, stop, RELU, inv_m,
                                       ahead)
        elif act == IDENTITY:
            batch_cost = _stream_batch(X, Y, W, b, dW, db, order, start, stop, IDENTITY,
                                       inv_m, ahead)
        else:
            batch_cost = _stream_batch(X, Y, W, b, dW, db, order, start, stop, act, inv_m,
                                       ahead)
        if not np.isfinite(batch_cost):
            return np.nan
        total += batch_cost
        _optimizer_step(params, grads, opt, False)
    return total / n


def _streamed_epoch(X, Y, params, grads, opt, act, batch_size, order, ahead):
    """``_epoch_streaming`` for a matrix X; never called for a CSR record (sparse input
    takes the general path: ``_streams`` is False for it), which gets NaN."""


def _streams(X):
    """Whether the streamed one-layer epoch can take X: a matrix, not a CSR record."""


@overload(_streamed_epoch)
def _streamed_epoch_impl(X, Y, params, grads, opt, act, batch_size, order, ahead):
    if isinstance(X, types.Array):
        return lambda X, Y, params, grads, opt, act, batch_size, order, ahead: (
            _epoch_streaming(X, Y, params, grads, opt, act, batch_size, order, ahead))
    return lambda X, Y, params, grads, opt, act, batch_size, order, ahead: np.nan


@overload(_streams)
def _streams_impl(X):
    dense = isinstance(X, types.Array)
    return lambda X: dense


def _check_out_and_input(kernel, out, X):
    """predict_into's ``out`` is X itself or separate from it (a matrix X), or separate
    from a CSR record's values."""


@overload(_check_out_and_input)
def _check_out_and_input_impl(kernel, out, X):
    if isinstance(X, types.Array):
        return lambda kernel, out, X: check_same_or_separate(kernel, "out", out, "X", X)
    return lambda kernel, out, X: check_separate(kernel, "out", out, "X", X.data)


# ----------------------------------------------------------------------------- public

#: ``train_epoch``'s ``batches``: a ``Batches`` record, or a ``Dropout`` record (minibatches
#: with dropout).
BATCHES = Arg("record", record=Batches, alternative=Dropout)


def _batches_and_dropout(batches):
    """(Batches, rates, seed) of a ``Dropout`` record; (batches, None, 0) of a
    ``Batches`` record, whose epoch then compiles no dropout code (compiled code only)."""


@overload(_batches_and_dropout)
def _batches_and_dropout_impl(batches):
    if isinstance(batches, types.BaseNamedTuple) and batches.instance_class is Dropout:
        return lambda batches: (batches.batches, batches.rates, batches.seed)
    return lambda batches: (batches, None, 0)


@register_jitable
def _check_dropout(kernel, dropout, n_hidden):
    """``dropout.rates``: None or empty, or one rate in [0, 1) for each of the n_hidden
    hidden layers."""
    if dropout is None or dropout.shape[0] == 0:
        return
    if dropout.shape[0] != n_hidden:
        raise InvalidValueError("%s: dropout.rates must hold one rate for each of the %s hidden "
                                "layers (or none), got %s", kernel, n_hidden, dropout.shape[0])
    for l in range(n_hidden):
        rate = dropout[l]
        if not (rate >= 0 and rate < 1):
            raise InvalidValueError("%s: dropout.rates[%s] is %g: a dropout rate must be in "
                                    "[0, 1)", kernel, l, rate)


@register_jitable
def _check_training(kernel, X, Y, params, grads, sizes, acts, loss, optimizer, batch_size,
                    order, workspace, layout):
    """The entry checks of an epoch: the network, the targets, the optimizer, the order,
    and no written array (params, grads, the optimizer's state, the workspace) sharing
    memory with another array of the call."""
    check_float_dtypes(kernel, "X, Y, params, grads, optimizer.state, workspace",
                       input_values(X), Y, params, grads, optimizer.state, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss, layout)
    _check_targets(kernel, X, Y, sizes, "Y")
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_optimizer(kernel, params, grads, optimizer)
    # params is written too: an update written over the data trains on garbage
    check_separate(kernel, "params", params, "X", input_values(X))
    check_separate(kernel, "params", params, "Y", Y)
    _check_buffers(kernel, X, Y, params, workspace, grads, "grads")
    state = optimizer.state
    check_separate(kernel, "optimizer.state", state, "X", input_values(X))
    check_separate(kernel, "optimizer.state", state, "Y", Y)
    check_separate(kernel, "optimizer.state", state, "grads", grads)
    check_separate(kernel, "optimizer.state", state, "workspace", workspace)
    n_rows = input_rows(X)
    for r in range(order.shape[0]):
        if order[r] < 0 or order[r] >= n_rows:
            raise InvalidValueError("%s: batches.order[%s] is %s, outside range(%s)", kernel, r,
                                    order[r], n_rows)


@kernel
def train_epoch(X: MATRIX_OR_CSR, Y: MATRIX, params: FLAT_OUT, grads: FLAT_OUT,
                network: NETWORK, optimizer: Optimizer, batches: BATCHES, workspace: FLAT_OUT):
    """One epoch of minibatch training, entirely in compiled code.

    X (N, n_0) a matrix or a ``CSR`` record (``kernels.csr(matrix)``: the first layer's
    products then cost what X's non-zeros cost), Y (N, n_L); params, grads (P,);
    ``network`` a ``Network`` record
    (``kernels.network(sizes, acts, loss)``: the cross-entropy costs need an identity last
    layer, whose outputs are then logits); ``optimizer`` an ``Optimizer`` record
    (``kernels.optimizer(name, params, lr, ...)``), whose state and step count the epoch
    advances; ``batches`` a ``Batches`` record (``kernels.batches(size, order)``): ``size``
    rows a minibatch, in the order of the int64 row indices ``order`` (a permutation of
    range(N) for a shuffled epoch, or any part of one to train on a segment; empty for all
    rows in storage order); workspace (``workspace_size(network.sizes, batches.size)``,).

    Every minibatch (the last partial one averaged over its own rows) makes one step of
    ``optimizer_step``; with ``batches.sample_weight`` the step is on the weighted mean
    ``sum_i w_i g_i / sum_i w_i`` of the minibatch (none for a minibatch of total weight 0).
    ``batches`` may also be a ``Dropout`` record (``kernels.dropout(batches, rates, seed)``):
    each hidden layer's output is then dropped out at its rate, by the masks of its seed and
    the optimizer's step count (``kernels.masks``), and the steps and the returned cost are
    those of the dropped-out network.
    params, grads, the optimizer's state and workspace share no memory with each other, X
    or Y. Returns the (weighted) mean over the rows trained of each row's cost (for MSE
    ``||y_i - a_i||^2 / 2``) with the parameters of its batch, or NaN as soon as a batch's
    cost is not finite (the caller restores parameters).
    """
    check_types("train_epoch", X, Y, params, grads, network, optimizer, batches, workspace)
    return _epoch("train_epoch", X, Y, params, grads, network, optimizer, batches, workspace,
                  PREFETCH_BYTES)


@kernel
def train_epoch_batched(X: MATRIX_OR_CSR, Y: MATRIX, params: FLAT_OUT, grads: FLAT_OUT,
                        network: NETWORK, optimizer: Optimizer, batches: BATCHES,
                        workspace: FLAT_OUT):
    """``train_epoch`` without its streamed path for one-layer MSE networks: every network
    through the batched forward and backward passes. Arguments, results and errors as
    ``train_epoch``'s.

    The two give the same parameters for every network that does not stream (all but a
    one-layer MSE network of at most ``config.STREAMING_MAX_OUTPUTS`` outputs on a dense
    X). This one compiles without the streamed epoch, about a sixth of ``train_epoch``'s
    first-run compile time: the model layer, which knows whether its network streams,
    calls it for every network that does not (docs/performance.md, "Start-up").
    """
    check_types("train_epoch_batched", X, Y, params, grads, network, optimizer, batches,
                workspace)
    return _epoch("train_epoch_batched", X, Y, params, grads, network, optimizer, batches,
                  workspace, None)


@register_jitable
def streaming_network(n_layers, n_outputs, loss):
    """Whether ``train_epoch`` takes its streamed path for a network of ``n_layers`` layers,
    ``n_outputs`` outputs and cost ``loss``: one MSE layer of at most
    ``STREAMING_MAX_OUTPUTS`` outputs (the rows must also be unweighted and X dense). Also
    called from Python, by ``model.training.loop.epoch_kernel`` to choose its kernel."""
    return n_layers == 1 and n_outputs <= STREAMING_MAX_OUTPUTS and loss == MSE


@register_jitable
def _epoch_arguments(kernel, X, Y, params, grads, network, optimizer, batches, workspace,
                     emb):
    """The entry checks of an epoch kernel (``_check_training``, the sample weights, the
    category codes of ``emb``, an ``Embeddings`` record or None) for a ``Batches`` record,
    and the arrays its loop takes: ``(sizes, acts, order, weights, layout)``, the integer
    arrays as int64, ``layout`` the embeddings' (``kernels.embedding``) or None. Shared by
    ``train_epoch`` and ``train_epoch_parallel``."""
    sizes = as_int64(kernel, "network.sizes", network.sizes)
    acts = as_int64(kernel, "network.acts", network.acts)
    order = as_int64(kernel, "batches.order", batches.order)
    layout = embedding_layout(kernel, emb, input_cols(X), sizes)
    _check_training(kernel, X, Y, params, grads, sizes, acts, network.loss, optimizer,
                    batches.size, order, workspace, layout)
    _check_weights(kernel, "batches.sample_weight", batches.sample_weight, input_rows(X))
    return sizes, acts, order, batches.sample_weight, layout


@njit(cache=CACHE, nogil=True, inline="always")
def _epoch(kernel, X, Y, params, grads, network, optimizer, batches, workspace,
           prefetch_bytes):
    """The epoch of ``train_epoch`` (``prefetch_bytes`` the prefetch distance of its
    streamed path, in bytes of X: ``prefetch_rows``) and of ``train_epoch_batched``
    (``prefetch_bytes`` None: Numba prunes the streamed path before typing it, so it is
    never compiled)."""
    batches, rates, dropout_seed = _batches_and_dropout(batches)
    network, emb = network_parts(network)
    sizes, acts, order, weights, layout = _epoch_arguments(
        kernel, X, Y, params, grads, network, optimizer, batches, workspace, emb)
    batch_size = batches.size
    loss = network.loss
    weighted = weights.shape[0] > 0
    _check_dropout(kernel, rates, sizes.shape[0] - 2)
    shuffled = order.shape[0] > 0
    n = order.shape[0] if shuffled else input_rows(X)
    if n == 0:
        return 0.0
    n_layers = sizes.shape[0] - 1
    # a compile-time test: the block is pruned when prefetch_bytes is None
    if prefetch_bytes is not None:
        if (streaming_network(n_layers, sizes[n_layers], loss) and not weighted
                and layout is None and _streams(X)):
            return _streamed_epoch(X, Y, params, grads, optimizer, acts[0], batch_size, order,
                                   prefetch_rows(input_cols(X), input_values(X).itemsize,
                                                 prefetch_bytes))

    # (_backward_pass_types repeats the statements below that make _backward_batch's
    # arguments: change the two together.)
    # Plain SGD is fused into the backward pass (no gradient stored); other optimizers
    # need the whole gradient first, and so do embeddings, whose tables' gradient is
    # formed with the first layer's weights as they were in the forward pass.
    embedded = layout is not None
    plain = is_plain_sgd(optimizer)
    fused_lr = optimizer.lr if plain and not embedded else 0.0
    offsets = layer_offsets(sizes)
    W0 = _weight_view(params, offsets, sizes, 0)
    dW0 = _weight_view(grads, offsets, sizes, 0)
    sparse = is_csr(X)
    if sparse:
        # The first layer of a sparse epoch: W_1, its gradient and the optimizer's state
        # for it are held transposed (n_0, n_1) for the epoch, so that each non-zero of X
        # reads and writes one contiguous row of n_1 (csr_product_t, csr_gradient_t)
        # instead of a strided column. Every optimizer updates element by element, so
        # the same permutation of params, grads and state changes no result.
        _transpose_first_layer_of(X, params, grads, optimizer, sizes, plain, False)
        W0 = params[:sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))
        dW0 = grads[:sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))
    # ... and, there, each batch's gradient is added into zeros that the optimizer's sweep
    # leaves behind (_optimizer_step with clear): writing it over (beta = 0) would first
    # zero all of W_1's gradient, a sweep a batch, where a batch's non-zeros touch part.
    adding = sparse and not plain
    # the tables' gradient is added row by row (kernels.embedding) into zeros that each
    # optimizer step leaves behind
    clearing = adding or embedded
    if clearing:
        grads[:] = 0
    G = gradient_scratch(layout, batch_size, sizes[0], params.dtype)
    views = _views(params, grads, sizes, workspace, batch_size)
    _, _, _, x_start, y_start, t_start, total_size = _workspace_layout(sizes, batch_size)
    T = workspace[t_start:total_size]
    gather_X = _block(workspace, x_start, batch_size, sizes[0])
    gather_Y = _block(workspace, y_start, batch_size, sizes[n_layers])
    batch_weights = np.empty(batch_size if weighted else 0, np.float64)
    # X itself, or for a shuffled epoch on a CSR record the copy of its rows in order
    Xe = shuffled_rows(X, order) if shuffled else epoch_rows(X)
    total = 0.0
    total_weight = 0.0
    diverged = False
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        weight = _batch_weight(weights, order, start, m, batch_weights)
        if weight == 0:
            continue  # rows that count for nothing: no step
        scale = 1.0 / weight
        Xb = _epoch_batch(Xe, order, start, stop, gather_X, layout, params)
        if shuffled:
            Yb = gather_Y[:m]
            _gather_rows(Y, order, start, Yb)
            prefetch_rows_of(Y, order, stop, stop + m)
        else:
            Yb = Y[start:stop]
        step = optimizer.steps[0]
        _forward_batch(Xb, W0, views, acts, T, rates, dropout_seed, step, WHOLE_BATCH)
        batch_cost = _backward_batch(Xb, Yb, W0, dW0, views, acts, loss, scale, adding,
                                     fused_lr, batch_weights[:m], rates, dropout_seed, step)
        _add_table_gradient(layout, views, m, W0, Xe, order, start, G)
        if fused_lr == 0:  # clearing leaves the gradient zero for the next batch
            _optimizer_step(params, grads, optimizer, clearing)
        else:
            optimizer.steps[0] += 1
        if not np.isfinite(batch_cost):
            diverged = True
            break
        total += batch_cost
        total_weight += weight
    if sparse:
        _transpose_first_layer_of(X, params, grads, optimizer, sizes, plain, True)
    if diverged:
        return np.nan
    return total / total_weight if total_weight > 0 else 0.0


@njit(nogil=True)
def _backward_pass_types(X, Y, params, grads, network, optimizer, batches, workspace):
    """Compile ``_backward_batch`` for the argument types ``_epoch`` passes it, given the
    epoch kernel's arguments, and run nothing (every statement sits in a branch that is
    never taken: Numba types and compiles it all the same).

    ``kernels.compile_helper`` calls it in a helper process on a first run, so that the
    backward pass, a third of the epoch's compile time, compiles beside the main process
    and is loaded from Numba's cache when the epoch reaches it. Its statements are the
    epoch's, in step with them: ``tests/test_compile_helper.py`` checks that the epoch
    then compiles no other version. Not cached: it runs only when nothing is cached.
    """
    batches, rates, dropout_seed = _batches_and_dropout(batches)
    if batches.size < 0:  # never: typed and compiled only
        network, emb = network_parts(network)
        kernel = "_backward_pass_types"
        sizes = as_int64(kernel, "network.sizes", network.sizes)
        acts = as_int64(kernel, "network.acts", network.acts)
        order = as_int64(kernel, "batches.order", batches.order)
        layout = embedding_layout(kernel, emb, input_cols(X), sizes)
        weights = batches.sample_weight
        batch_size = batches.size
        n_layers = sizes.shape[0] - 1
        plain = is_plain_sgd(optimizer)
        fused_lr = optimizer.lr if plain and layout is None else 0.0
        offsets = layer_offsets(sizes)
        W0 = _weight_view(params, offsets, sizes, 0)
        dW0 = _weight_view(grads, offsets, sizes, 0)
        sparse = is_csr(X)
        if sparse:
            W0 = params[:sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))
            dW0 = grads[:sizes[0] * sizes[1]].reshape((sizes[0], sizes[1]))
        adding = sparse and not plain
        views = _views(params, grads, sizes, workspace, batch_size)
        _, _, _, x_start, y_start, _, _ = _workspace_layout(sizes, batch_size)
        gather_X = _block(workspace, x_start, batch_size, sizes[0])
        gather_Y = _block(workspace, y_start, batch_size, sizes[n_layers])
        batch_weights = np.empty(batch_size if weights.shape[0] > 0 else 0, np.float64)
        shuffled = order.shape[0] > 0
        Xe = shuffled_rows(X, order) if shuffled else epoch_rows(X)
        start = 0
        stop = batch_size
        m = stop - start
        Xb = _epoch_batch(Xe, order, start, stop, gather_X, layout, params)
        if shuffled:
            Yb = gather_Y[:m]
        else:
            Yb = Y[start:stop]
        scale = 1.0 / m
        _backward_batch(Xb, Yb, W0, dW0, views, acts, network.loss, scale, adding, fused_lr,
                        batch_weights[:m], rates, dropout_seed, optimizer.steps[0])


@njit(cache=CACHE)
def _transpose_first_layer(params, grads, opt, sizes, plain, back):
    """Transpose W_1 in params (n_1, n_0) <-> (n_0, n_1) in place, with the optimizer's
    state vectors for it (none for plain SGD); going ``back``, also grads (the last
    batch's gradient, when grads is not the state itself)."""
    n_0, n_1 = sizes[0], sizes[1]
    rows, cols = (n_0, n_1) if back else (n_1, n_0)
    size = n_0 * n_1
    P = params.shape[0]
    scratch = np.empty(size, params.dtype)
    transpose_flat(params, rows, cols, scratch)
    if not plain:
        for s in range(opt.state.shape[0] // P):
            transpose_flat(opt.state[s * P:(s + 1) * P], rows, cols, scratch)
    if back and not (not plain and shares_memory(grads, opt.state)):
        transpose_flat(grads, rows, cols, scratch)


def _transpose_first_layer_of(X, params, grads, opt, sizes, plain, back):
    """``_transpose_first_layer`` for a CSR record X; nothing for a matrix, whose epoch
    then compiles no transposition (the ``if sparse`` around the call is a runtime test
    to Numba, which would otherwise compile the body for dense epochs too)."""


@overload(_transpose_first_layer_of)
def _transpose_first_layer_of_impl(X, params, grads, opt, sizes, plain, back):
    if isinstance(X, types.Array):
        return lambda X, params, grads, opt, sizes, plain, back: None
    return lambda X, params, grads, opt, sizes, plain, back: (
        _transpose_first_layer(params, grads, opt, sizes, plain, back))


@kernel
def epoch_streaming(X: MATRIX, Y: MATRIX, params: FLAT_OUT, grads: FLAT_OUT,
                    optimizer: Optimizer, act: INT, batches: Batches, ahead: INT):
    """The epoch ``train_epoch`` runs for a one-layer MSE network with at most
    ``config.STREAMING_MAX_OUTPUTS`` outputs, each row read once for forward and gradient,
    with activation code ``act`` and a prefetch ``ahead`` rows ahead (0: none;
    ``prefetch_rows`` of ``config.PREFETCH_BYTES`` in training). Public for
    ``benchmarks.prefetch_distance``;
    arguments and result as ``train_epoch``'s, with the network ``[X.shape[1], Y.shape[1]]``.
    """
    check_types("epoch_streaming", X, Y, params, grads, optimizer, act, batches, ahead)
    kernel = "epoch_streaming"
    sizes = np.array([X.shape[1], Y.shape[1]], np.int64)
    acts = np.array([act], np.int64)
    order = as_int64(kernel, "batches.order", batches.order)
    workspace = np.empty(_workspace_size(kernel, sizes, max(batches.size, 1)), X.dtype)
    _check_training(kernel, X, Y, params, grads, sizes, acts, MSE, optimizer, batches.size,
                    order, workspace, None)
    if Y.shape[1] > STREAMING_MAX_OUTPUTS:
        raise InvalidValueError("%s: Y has %s columns; streaming trains at most %s outputs",
                                kernel, Y.shape[1], STREAMING_MAX_OUTPUTS)
    check_positive(kernel, "ahead + 1", ahead + 1)
    if (order.shape[0] if order.shape[0] > 0 else X.shape[0]) == 0:
        return 0.0
    return _epoch_streaming(X, Y, params, grads, optimizer, act, batches.size, order, ahead)


@kernel
def predict_into(X: MATRIX_OR_CSR, params: FLAT, network: NETWORK, out: MATRIX_OUT,
                 batch_size: INT, workspace: FLAT_OUT):
    """``out`` (N, n_L) = the output of ``network`` (``kernels.network``) with ``params`` for
    X (N, n_0) (a matrix or a ``CSR`` record), ``batch_size`` rows at a time (workspace:
    ``workspace_size``).

    For a network trained with a cross-entropy cost these are the logits. ``out`` may be X
    itself (when n_L = n_0: each batch's rows are read before they are written) but shares
    no memory with params or workspace, nor with X otherwise.
    """
    check_types("predict_into", X, params, network, out, batch_size, workspace)
    kernel = "predict_into"
    check_float_dtypes(kernel, "X, params, out, workspace", input_values(X), params, out,
                       workspace)
    network, sizes, acts, layout = _unpacked(kernel, X, network)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, MSE, layout)
    _check_targets(kernel, X, out, sizes, "out")
    check_separate(kernel, "workspace", workspace, "X", input_values(X))
    check_separate(kernel, "workspace", workspace, "params", params)
    _check_out_and_input(kernel, out, X)
    check_separate(kernel, "out", out, "params", params)
    check_separate(kernel, "out", out, "workspace", workspace)
    W0 = first_layer_weights(X, _weight_view(params, layer_offsets(sizes), sizes, 0))
    views = _views(params, params[:0], sizes, workspace, batch_size)
    T = _scratch(workspace, sizes, batch_size)
    gather = _gather_block(workspace, sizes, batch_size)
    n = input_rows(X)
    no_order = np.empty(0, np.int64)
    step = np.int64(0)  # not the literal 0: the epoch's compiled forward pass (dataset_cost)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        _forward_batch(_epoch_batch(X, no_order, start, stop, gather, layout, params), W0,
                       views, acts, T, None, 0, step, WHOLE_BATCH)
        out[start:stop] = _output_block(views, stop - start)


@kernel
def dataset_cost(X: MATRIX_OR_CSR, Y: MATRIX, params: FLAT, network: NETWORK, batch_size: INT,
                 workspace: FLAT_OUT, sample_weight: OPTIONAL_WEIGHTS = None):
    """The summed cost ``sum_i c_i`` of ``network`` on X (N, n_0), Y (N, n_L); no gradient.

    Processed ``batch_size`` rows at a time (the workspace of ``workspace_size``); sums
    rather than means so that chunks of a large dataset add up exactly. With
    ``sample_weight`` (N,) (finite, >= 0) the sum is ``sum_i w_i c_i``.
    """
    check_types("dataset_cost", X, Y, params, network, batch_size, workspace, sample_weight)
    kernel = "dataset_cost"
    check_float_dtypes(kernel, "X, Y, params, workspace", input_values(X), Y, params, workspace)
    network, sizes, acts, layout = _unpacked(kernel, X, network)
    loss = network.loss
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss, layout)
    _check_targets(kernel, X, Y, sizes, "Y")
    _check_workspace(kernel, workspace, X, Y, params)
    weights = _weights_or_none(sample_weight)
    _check_weights(kernel, "sample_weight", weights, input_rows(X))
    W0 = first_layer_weights(X, _weight_view(params, layer_offsets(sizes), sizes, 0))
    views = _views(params, params[:0], sizes, workspace, batch_size)
    T = _scratch(workspace, sizes, batch_size)
    gather = _gather_block(workspace, sizes, batch_size)
    n_layers = sizes.shape[0] - 1
    delta = _block(workspace, views[7][n_layers - 1], batch_size,
                   sizes[n_layers])  # written with scale 0, never read
    db = np.empty(sizes[n_layers], input_values(X).dtype)
    total = 0.0
    n = input_rows(X)
    no_order = np.empty(0, np.int64)
    # The step and "accumulate" as run-time values, not the literals 0 and False: Numba
    # compiles a callee again for each literal argument, and with these the two callees
    # share the epoch's compiled versions (about 3 s less of a first run's compiling).
    step = np.int64(0)
    accumulate = n < 0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        _forward_batch(_epoch_batch(X, no_order, start, stop, gather, layout, params), W0,
                       views, acts, T, None, 0, step, WHOLE_BATCH)
        out = _output_block(views, stop - start)
        total += _output_delta(out, Y[start:stop], delta[:stop - start], db,
                               acts[n_layers - 1], loss, 0.0, accumulate,
                               weights[start:stop])
    return total


@kernel
def batch_gradient(X: MATRIX_OR_CSR, Y: MATRIX, params: PARAMS_READ, grads: FLAT_OUT,
                   network: NETWORK, batch_size: INT, workspace: FLAT_OUT, scale: REAL):
    """``grads = scale * sum_i dc_i/dTheta`` over the rows of X (N, n_0), Y (N, n_L).

    ``scale = 1/N`` gives the mean gradient; ``scale = 1`` the sum (what data-parallel
    training adds up across processes before dividing by the global row count).
    Returns the summed cost ``sum_i c_i``.
    """
    check_types("batch_gradient", X, Y, params, grads, network, batch_size, workspace, scale)
    kernel = "batch_gradient"
    check_float_dtypes(kernel, "X, Y, params, grads, workspace", input_values(X), Y, params,
                       grads, workspace)
    return _batch_gradient(kernel, X, Y, params, grads, network, batch_size, workspace, scale,
                           np.empty(0, np.float64), None, 0)


@kernel
def dropout_gradient(X: MATRIX_OR_CSR, Y: MATRIX, params: PARAMS_READ, grads: FLAT_OUT,
                     network: NETWORK, dropout: Dropout, workspace: FLAT_OUT, scale: REAL):
    """``batch_gradient`` of one minibatch with dropout: ``grads = scale * sum_i
    w_i dc_i/dTheta`` over the rows of X (N, n_0), Y (N, n_L), with each hidden layer's
    output dropped out at its rate in ``dropout.rates`` (inverted dropout, as in
    ``train_epoch``) by the masks of ``dropout.seed`` at step 0 (``kernels.masks``; row i's
    masks are those of row i of a minibatch of ``train_epoch``).

    ``dropout`` a ``Dropout`` record (``kernels.dropout(kernels.batches(size), rates,
    seed)``): X holds at most ``dropout.batches.size`` rows (one call is one minibatch; the
    workspace is ``workspace_size(network.sizes, dropout.batches.size)``), its
    ``order`` must be empty (rows in storage order) and its ``sample_weight`` (N,) or
    empty gives ``w_i`` (1 when empty). A caller that steps several times gives each step
    a seed of its own: data-parallel training (``model.training.distributed``) hashes
    the epoch's seed, the optimizer's step count and the process's rank into it, so that
    no two minibatches of a fit share masks. Returns the summed (weighted) cost.
    Raises ``InvalidValueError`` for more rows than ``dropout.batches.size``, a non-empty
    order, rates out of [0, 1) or not one per hidden layer, and as ``batch_gradient``.
    """
    check_types("dropout_gradient", X, Y, params, grads, network, dropout, workspace, scale)
    kernel = "dropout_gradient"
    check_float_dtypes(kernel, "X, Y, params, grads, workspace", input_values(X), Y, params,
                       grads, workspace)
    sizes = as_int64(kernel, "network.sizes", network_parts(network)[0].sizes)
    batches = dropout.batches
    _check_dropout(kernel, dropout.rates, sizes.shape[0] - 2)
    if batches.order.shape[0] > 0:
        raise InvalidValueError("%s: dropout.batches.order must be empty (the rows of X in "
                                "storage order), got %s indices", kernel,
                                batches.order.shape[0])
    n = input_rows(X)
    if n > batches.size:
        raise InvalidValueError("%s: X has %s rows but dropout.batches.size is %s: one call "
                                "is one minibatch", kernel, n, batches.size)
    _check_weights(kernel, "dropout.batches.sample_weight", batches.sample_weight, n)
    return _batch_gradient(kernel, X, Y, params, grads, network, batches.size, workspace,
                           scale, batches.sample_weight, dropout.rates, dropout.seed)


@njit(cache=CACHE)
def _batch_gradient(kernel, X, Y, params, grads, network, batch_size, workspace, scale,
                    weights, rates, seed):
    """``batch_gradient`` with every row's term also times its weight in ``weights`` (N,),
    or 1 when ``weights`` is empty, and hidden layers dropped out at ``rates`` by the masks
    of ``seed`` at step 0 (``rates`` None or empty: none; ``dropout_gradient`` passes at
    most one batch); ``kernel`` names the public kernel in messages; ``network`` a
    ``Network`` or ``Embeddings`` record."""
    network, sizes, acts, layout = _unpacked(kernel, X, network)
    loss = network.loss
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss, layout)
    _check_targets(kernel, X, Y, sizes, "Y")
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    _check_buffers(kernel, X, Y, params, workspace, grads, "grads")
    check_finite(kernel, "scale", scale)
    n = input_rows(X)
    if n == 0:
        grads[:] = 0
        return 0.0
    offsets = layer_offsets(sizes)
    # CSR input: the first layer transposed (kernels.sparse, first_layer_weights)
    W0 = first_layer_weights(X, _weight_view(params, offsets, sizes, 0))
    dW0 = _weight_view(grads, offsets, sizes, 0)
    G0 = first_layer_gradient(X, dW0)
    views = _views(params, grads, sizes, workspace, batch_size)
    T = _scratch(workspace, sizes, batch_size)
    gather = _gather_block(workspace, sizes, batch_size)
    G = gradient_scratch(layout, batch_size, sizes[0], params.dtype)
    grads[params.shape[0] - tables_size(layout):] = 0  # the tables' gradient is added into
    total = 0.0
    no_order = np.empty(0, np.int64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        Xb = _epoch_batch(X, no_order, start, stop, gather, layout, params)
        _forward_batch(Xb, W0, views, acts, T, rates, seed, WHOLE_BATCH, WHOLE_BATCH)
        total += _backward_batch(Xb, Y[start:stop], W0, G0, views, acts,
                                 loss, scale, start > 0, 0.0, weights[start:stop],
                                 rates, seed, WHOLE_BATCH)
        _add_table_gradient(layout, views, stop - start, W0, X, no_order, start, G)
    store_first_layer_gradient(X, dW0, G0)
    return total


@kernel
def loss_and_gradient(X: MATRIX_OR_CSR, Y: MATRIX, params: PARAMS_READ, grads: FLAT_OUT,
                      network: NETWORK, batch_size: INT, workspace: FLAT_OUT,
                      sample_weight: OPTIONAL_WEIGHTS = None):
    """Full-batch cost C (docs/MATH.md, the mean over rows) and its gradient into grads.

    Processed ``batch_size`` rows at a time, every row weighted 1/N; with
    ``sample_weight`` (N,) (finite, >= 0, not all 0) row i weighs ``w_i / sum(w)``: C is
    the weighted mean ``sum_i w_i c_i / sum_i w_i`` (scikit-learn's, for which integer
    weights equal repeated rows). Returns C.
    """
    check_types("loss_and_gradient", X, Y, params, grads, network, batch_size, workspace,
                sample_weight)
    kernel = "loss_and_gradient"
    if input_rows(X) == 0:
        raise InvalidValueError("loss_and_gradient: X has 0 rows; the mean over no "
                                "samples is undefined")
    weights = _weights_or_none(sample_weight)
    total = _check_weights(kernel, "sample_weight", weights, input_rows(X))
    if total == 0:
        raise InvalidValueError("loss_and_gradient: sample_weight sums to 0; the weighted "
                                "mean is undefined")
    check_float_dtypes(kernel, "X, Y, params, grads, workspace", input_values(X), Y, params,
                       grads, workspace)
    return _batch_gradient(kernel, X, Y, params, grads, network, batch_size, workspace,
                           1.0 / total, weights, None, 0) / total
