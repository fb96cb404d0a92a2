"""Whole passes over a dataset in compiled code: a training epoch, prediction, the full gradient.

A network is described to compiled code by two int64 arrays:

- ``sizes`` (L + 1,): ``[n_0, n_1, ..., n_L]``, the width of every layer, inputs first;
- ``acts`` (L,): the activation code of every layer (``kernels.ACTIVATIONS``).

Parameters live in one flat vector ``params`` (P,) laid out layer by layer as
``W_1.ravel(), b_1, W_2.ravel(), b_2, ...`` with ``W_l`` of shape ``(n_l, n_{l-1})``;
gradients and momentum velocity use the same layout. ``workspace`` is one flat buffer of
``workspace_size(sizes, batch_size)`` elements that holds every activation, the error
terms and a gathered minibatch, so an epoch allocates nothing per minibatch.
"""

import numpy as np
from numba import njit

from ._cache import CACHE
from ._checks import (as_int64, cast_like, check_contiguous, check_dim, check_finite,
                      check_float_dtypes, check_positive, check_same_or_separate, check_separate,
                      checked_add, checked_mul, ints_text)
from .activations import IDENTITY, N_ACTIVATIONS, RELU, _activate, _backprop_activation
from .dense import _forward
from .loss import MSE, N_LOSSES, SOFTMAX_CE, _mse_element, _output_delta
from .optim import SGD, _check_optimizer, _optimizer_step, _sgd_sweep
from ._prefetch import prefetch_row
from .products import product_a_b, product_at_b, forward_scratch_size

#: A one-layer network with at most this many outputs trains by streaming each row once:
#: its forward product and its error-times-input gradient are done while the row is in
#: L1 cache, instead of two passes over the batch (the single ReLU neuron, config A).
STREAMING_MAX_OUTPUTS = 8
#: ... and asks for the row this many rows ahead while it works on one (a software
#: prefetch), so that reading X overlaps the arithmetic. Chosen by
#: ``python -m benchmarks.prefetch_distance``: on the development machine (AMD EPYC, Zen 3)
#: 8 rows ahead took config A's epoch (100 float32 a row) from 33.7 to 26.2 ns a row in
#: storage order and from 139 to 120 ns shuffled; 4 to 16 were within 3% of it, 2 and 32
#: gained less (32 almost nothing shuffled).
PREFETCH_ROWS = 8


# ----------------------------------------------------------------------------- layout

@njit(cache=CACHE)
def _layer_offsets(kernel, sizes):
    """``layer_offsets`` for ``kernel``'s messages: every width at least 1, and P (and so
    every offset) within int64 (``OverflowError`` naming sizes otherwise)."""
    n_layers = sizes.shape[0] - 1
    if n_layers < 1:
        raise ValueError(kernel + ": sizes must list at least 2 layer widths (inputs and "
                         "outputs), got " + str(sizes.shape[0]))
    offsets = np.empty(n_layers + 1, np.int64)
    o = np.int64(0)
    for l in range(n_layers + 1):
        if sizes[l] < 1:
            raise ValueError(kernel + ": sizes[" + str(l) + "] is " + str(sizes[l])
                             + ": every layer width must be at least 1")
    for l in range(n_layers):
        offsets[l] = o
        o = checked_add(o, checked_add(checked_mul(sizes[l + 1], sizes[l]), sizes[l + 1]))
    if o < 0:
        raise OverflowError(kernel + ": sizes " + ints_text(sizes) + " make more than 2**63 - 1 "
                            "weights and biases, beyond int64")
    offsets[n_layers] = o
    return offsets


@njit(cache=CACHE)
def layer_offsets(sizes):
    """(L + 1,) int64: where each layer's ``W`` starts in ``params``; the last entry is P."""
    return _layer_offsets("layer_offsets", as_int64("layer_offsets", "sizes", sizes))


@njit(cache=CACHE)
def param_count(sizes):
    """P, the number of weights and biases of a network with these layer sizes."""
    return _layer_offsets("param_count", as_int64("param_count", "sizes", sizes))[-1]


@njit(cache=CACHE)
def _weight_view(flat, offsets, sizes, l):
    """``W`` of layer ``l + 1`` (n_{l+1}, n_l) as a view into a flat vector."""
    o = offsets[l]
    return flat[o:o + sizes[l + 1] * sizes[l]].reshape((sizes[l + 1], sizes[l]))


@njit(cache=CACHE)
def _bias_view(flat, offsets, sizes, l):
    """``b`` of layer ``l + 1`` (n_{l+1},) as a view into a flat vector."""
    o = offsets[l] + sizes[l + 1] * sizes[l]
    return flat[o:o + sizes[l + 1]]


@njit(cache=CACHE)
def _workspace_layout(sizes, batch_size):
    """Where everything lives in the workspace: the one place its layout is computed.

    Returns ``(a_starts, d_starts, x_start, y_start, t_start, total)``: the start of every
    layer's activations block ``A_l`` (batch_size, n_{l+1}) and error-term block ``D_l``, of
    the gathered batch of X (batch_size, n_0) and Y (batch_size, n_L), of the scratch for a
    transposed weight matrix, and the total size. The activations of every layer lie one
    after another, then two buffers of ``batch_size * widest`` for the error terms, which
    alternate from the top layer down (a layer's error term is formed from the one above
    it), then the gathered batch, then room for the largest ``W.T`` that a forward product
    in register tiles can need (``kernels.dense._forward``; none for wide layers, which go
    to BLAS whatever the batch). A value beyond int64 comes out as -1, and so does every
    one after it (``_workspace_size`` refuses them).
    """
    n_layers = sizes.shape[0] - 1
    a_starts = np.empty(n_layers, np.int64)
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
        transposed = max(transposed, forward_scratch_size(1, sizes[l + 1], sizes[l]))
    block = checked_mul(batch_size, widest)
    for l in range(n_layers):
        d_starts[l] = checked_add(start, block) if (n_layers - 1 - l) % 2 else start
    x_start = checked_add(start, checked_mul(2, block))
    y_start = checked_add(x_start, checked_mul(batch_size, sizes[0]))
    t_start = checked_add(y_start, checked_mul(batch_size, sizes[n_layers]))
    return a_starts, d_starts, x_start, y_start, t_start, checked_add(t_start, transposed)


@njit(cache=CACHE)
def _workspace_size(kernel, sizes, batch_size):
    """``workspace_size`` for ``kernel``'s messages: valid sizes, a positive batch_size and
    a size within int64 (``OverflowError`` naming sizes and batch_size otherwise)."""
    _layer_offsets(kernel, sizes)
    check_positive(kernel, "batch_size", batch_size)
    total = _workspace_layout(sizes, batch_size)[5]
    if total < 0:
        raise OverflowError(kernel + ": sizes " + ints_text(sizes) + " with batch_size "
                            + str(batch_size) + " need more than 2**63 - 1 workspace "
                            "elements, beyond int64")
    return total


@njit(cache=CACHE)
def workspace_size(sizes, batch_size):
    """Elements of scratch an epoch needs: activations, two error terms, a gathered batch
    and a transposed weight matrix. ``batch_size`` must be positive."""
    return _workspace_size("workspace_size", as_int64("workspace_size", "sizes", sizes),
                           batch_size)


@njit(cache=CACHE)
def _block(workspace, start, rows, cols):
    return workspace[start:start + rows * cols].reshape((rows, cols))


# ----------------------------------------------------------------------------- checks

@njit(cache=CACHE)
def _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss=MSE):
    n_layers = sizes.shape[0] - 1
    if loss < 0 or loss >= N_LOSSES:
        raise ValueError(kernel + ": loss is " + str(loss) + ", not a cost code (kernels.LOSSES)")
    if n_layers < 1:
        raise ValueError(kernel + ": sizes must list at least 2 layer widths, got "
                         + str(sizes.shape[0]))
    for l in range(n_layers + 1):
        check_positive(kernel, "every entry of sizes", sizes[l])
    n_params = _layer_offsets(kernel, sizes)[n_layers]
    check_dim(kernel, "acts", acts.shape[0], "sizes", n_layers, "entries (layers)")
    for l in range(n_layers):
        if acts[l] < 0 or acts[l] >= N_ACTIVATIONS:
            raise ValueError(kernel + ": acts[" + str(l) + "] is " + str(acts[l])
                             + ", not an activation code")
    if loss != MSE and acts[n_layers - 1] != 0:
        raise ValueError(kernel + ": the cross-entropy costs take logits: the last layer's "
                         "activation must be identity (0), got " + str(acts[n_layers - 1]))
    if loss == SOFTMAX_CE and sizes[n_layers] < 2:
        # a softmax over one output is 1 whatever the logit: the cost is 0, the gradient 0
        raise ValueError(kernel + ": loss SOFTMAX_CE needs at least 2 outputs, but sizes[-1] "
                         "is " + str(sizes[n_layers]) + "; use SIGMOID_BCE for one output")
    check_dim(kernel, "X", X.shape[1], "sizes[0]", sizes[0], "columns")
    check_dim(kernel, "params", params.shape[0], "the network", n_params, "elements")
    check_positive(kernel, "batch_size", batch_size)
    need = _workspace_size(kernel, sizes, batch_size)
    if workspace.shape[0] < need:
        raise ValueError(kernel + ": workspace has " + str(workspace.shape[0])
                         + " elements but workspace_size(sizes, batch_size) is " + str(need))
    check_contiguous(kernel, "X", X)


@njit(cache=CACHE)
def _check_workspace(kernel, workspace, X, Y, params):
    """The workspace (written) shares no memory with X, Y or params."""
    check_separate(kernel, "workspace", workspace, "X", X)
    check_separate(kernel, "workspace", workspace, "Y", Y)
    check_separate(kernel, "workspace", workspace, "params", params)


@njit(cache=CACHE)
def _check_buffers(kernel, X, Y, params, workspace, grads, grads_name):
    """The workspace and ``grads`` (both written) share no memory with X, Y, params or
    each other: a gradient written over the data or the parameters it is computed from
    would be garbage, silently."""
    _check_workspace(kernel, workspace, X, Y, params)
    check_separate(kernel, grads_name, grads, "X", X)
    check_separate(kernel, grads_name, grads, "Y", Y)
    check_separate(kernel, grads_name, grads, "params", params)
    check_separate(kernel, grads_name, grads, "workspace", workspace)


@njit(cache=CACHE)
def _check_targets(kernel, X, Y, sizes, y_name):
    """``Y`` (named ``y_name``: Y, or predict_into's out) has X's rows and n_L columns."""
    check_dim(kernel, y_name, Y.shape[0], "X", X.shape[0], "rows")
    check_dim(kernel, y_name, Y.shape[1], "sizes[-1]", sizes[sizes.shape[0] - 1], "columns")
    check_contiguous(kernel, y_name, Y)


# ----------------------------------------------------------------------------- views

# A view made with reshape costs a call into Numba's runtime (about 35 ns); a 10-32-1
# network's whole minibatch step takes 3-4 us. So every per-layer view is made once per
# kernel call, and a minibatch of m rows only slices the first m rows off them.

@njit(cache=CACHE)
def _param_views(flat, sizes):
    """([W_l (n_{l+1}, n_l)], [b_l (n_{l+1},)]): every layer's views into a flat vector."""
    offsets = layer_offsets(sizes)
    n_layers = sizes.shape[0] - 1
    return ([_weight_view(flat, offsets, sizes, l) for l in range(n_layers)],
            [_bias_view(flat, offsets, sizes, l) for l in range(n_layers)])


@njit(cache=CACHE)
def _work_views(workspace, sizes, batch_size):
    """([A_l], [D_l], T): (batch_size, n_{l+1}) blocks of the workspace for every layer's
    output activations and error term, and the 1-D scratch T for a transposed weight
    matrix (``_workspace_layout``)."""
    a_starts, d_starts, _, _, t_start, total = _workspace_layout(sizes, batch_size)
    n_layers = sizes.shape[0] - 1
    return ([_block(workspace, a_starts[l], batch_size, sizes[l + 1]) for l in range(n_layers)],
            [_block(workspace, d_starts[l], batch_size, sizes[l + 1]) for l in range(n_layers)],
            workspace[t_start:total])


# ----------------------------------------------------------------------------- one batch

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


@njit(cache=CACHE)
def _forward_batch(Xb, W, b, A, acts, T):
    """Activations of every layer for one batch Xb (m, n_0) into the blocks A (views); T is
    the scratch for ``_forward``'s transposed weights.

    Returns the output activations (m, n_L), the first m rows of the last block.
    """
    m = Xb.shape[0]
    a_prev = Xb
    for l in range(len(W)):
        out = A[l][:m]
        _forward(a_prev, W[l], b[l], out, acts[l], T)
        a_prev = out
    return a_prev


@njit(cache=CACHE)
def _backward_batch(Xb, Yb, W, b, dW, db, A, D, acts, loss, scale, accumulate, lr):
    """Backprop one batch whose activations ``_forward_batch`` left in A.

    With ``lr == 0`` the gradient ``dC/dTheta`` (the cost ``loss`` summed over rows times
    ``scale``, 1/m for a batch mean) is written into the views dW, db (added in with
    accumulate). With ``lr > 0`` the plain SGD step is fused instead: each ``W`` is updated
    by one product with ``alpha = -lr, beta = 1`` after its error term has been propagated
    below it, so no weight gradient is stored. Returns the batch's summed cost (``m * C``).
    """
    m = Xb.shape[0]
    top = len(W) - 1
    fused = lr > 0
    delta = D[top][:m]
    cost = _output_delta(A[top][:m], Yb, delta, db[top], acts[top], loss, scale,
                         accumulate and not fused)
    for l in range(top, -1, -1):
        a_in = Xb if l == 0 else A[l - 1][:m]
        if l > 0:
            # Propagate below with the weights as they were in the forward pass.
            below = D[l - 1][:m]
            product_a_b(delta, W[l], below, 1.0, 0.0)
            _backprop_activation(a_in, below, db[l - 1], acts[l - 1], accumulate and not fused)
        if fused:
            product_at_b(delta, a_in, W[l], -lr, 1.0)
            _sgd_sweep(b[l], db[l], lr)
        else:
            product_at_b(delta, a_in, dW[l], 1.0, 1.0 if accumulate else 0.0)
        if l > 0:
            delta = below
    return cost


# ----------------------------------------------------------------------------- streaming

@njit(cache=CACHE, fastmath={"contract", "reassoc"}, inline="always")
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
    batch_cost = 0.0
    # Two rows per pass: their dot products are independent chains the core overlaps, and
    # each load and store of dW carries two rows' updates. An odd last row is paired with
    # itself and its twin's error term set to zero.
    for r in range(start, stop, 2):
        for q in range(r + ahead, min(r + ahead + 2, n) if ahead > 0 else 0):
            prefetch_row(X, order[q] if shuffled else q)
        # 2-D indexing, no row views: a view per row costs more than a 100-wide row's
        # whole arithmetic (config A: 0.072 -> 0.04 s an epoch).
        i0 = order[r] if shuffled else r
        pair = r + 1 < stop
        i1 = i0 if not pair else (order[r + 1] if shuffled else r + 1)
        for j in range(W.shape[0]):
            s0 = zero
            s1 = zero
            for p in range(X.shape[1]):
                s0 += W[j, p] * X[i0, p]
                s1 += W[j, p] * X[i1, p]
            cost0, g0 = _mse_element(_activate(s0 + b[j], act), Y[i0, j], act, inv_m)
            cost1, g1 = _mse_element(_activate(s1 + b[j], act), Y[i1, j], act, inv_m)
            g0 = cast_like(g0, dW)
            g1 = cast_like(g1, dW) if pair else cast_like(0, dW)
            batch_cost += cost0 + (cost1 if pair else 0.0)
            # No "if g != 0" around this (ReLU rows with g = 0 add exact zeros): that
            # branch is mispredicted on about half the rows and costs more than the
            # update it skips.
            for p in range(X.shape[1]):
                dW[j, p] += g0 * X[i0, p] + g1 * X[i1, p]
            db[j] += g0 + g1
    return batch_cost


@njit(cache=CACHE, fastmath={"contract", "reassoc"})
def epoch_streaming(X, Y, params, grads, state, n_in, n_out, act, batch_size, order, opt,
                    ahead):
    """One epoch of a one-layer MSE network, each row read once for forward and gradient.

    ``opt`` is the optimizer tuple of ``train_epoch``; ``ahead`` how many rows ahead to
    prefetch (``PREFETCH_ROWS``; 0 for none).
    """
    W = params[:n_out * n_in].reshape((n_out, n_in))
    b = params[n_out * n_in:]
    dW = grads[:n_out * n_in].reshape((n_out, n_in))
    db = grads[n_out * n_in:]
    n = order.shape[0] if order.shape[0] > 0 else X.shape[0]
    total = 0.0
    t = opt[1]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        inv_m = cast_like(1.0 / (stop - start), X)  # float32 stays float32
        grads[:] = 0
        # ReLU and identity get copies of the row loop with the activation a constant: a
        # choice among all activations inside it kept the ReLU a mispredicted branch and
        # cost about half of config A's time (30 -> 20 ns a row hot in cache).
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
        t += 1
        _optimizer_step(params, grads, state, opt[0], t, opt[2], opt[3], opt[4], opt[5],
                        opt[6], opt[7], opt[8])
    return total / n


# ----------------------------------------------------------------------------- public

# Public kernels take None for a left-out option and name its value inside. Numba's
# dispatcher recognises only one left-out default value of each Python type per process
# (numba issue #6173): a call leaving out beta2=0.999 after anything had left out
# beta1=0.9 cost 0.2 ms instead of 5 us. None is one value, so it always hits.

@njit(cache=CACHE)
def train_epoch(X, Y, params, grads, velocity, sizes, acts, batch_size, lr, momentum,
                weight_decay, order, workspace, loss=None, optimizer=None, beta1=None,
                beta2=None, eps=None, nesterov=None, step=None):
    """One epoch of minibatch training, entirely in compiled code.

    X (N, n_0), Y (N, n_L); params, grads (P,); ``velocity``: the optimizer's state,
    (P,) for SGD with momentum or weight_decay (may be empty for plain SGD), (2P,) for
    Adam and AdamW (their moments ``[m, v]``, zero before the first step); sizes (L + 1,),
    acts (L,) int64; order: int64 row indices, each in range(N), giving the rows to train
    on in order (a permutation of range(N) for a shuffled epoch, or any part of one to
    train on a segment), or an empty array for all rows in storage order; workspace
    (workspace_size(sizes, batch_size),); loss: a cost code of ``kernels.LOSSES`` (MSE;
    the cross-entropies need an identity last layer, whose outputs are then logits).

    Minibatches are ``batch_size`` consecutive rows (of ``order``); the last partial
    batch is averaged over its own rows. Each makes one step of ``optimizer``
    (``kernels.OPTIMIZERS``): SGD ``params -= lr * grad``, or with momentum / weight_decay
    the step of ``sgd_momentum_update`` (``nesterov``: PyTorch's Nesterov form); Adam and
    AdamW the step of ``adam_update`` with ``t = step + 1, step + 2, ...`` (``step``: the
    steps taken before this call; this epoch takes ``ceil(rows / batch_size)``).
    Options left out (or None): loss MSE, optimizer SGD, beta1 0.9, beta2 0.999, eps 1e-8,
    nesterov False, step 0.
    ``lr`` must be positive and finite, ``momentum`` in [0, 1) and ``weight_decay``
    non-negative (``kernels.optim._check_hyperparameters``, which every update kernel
    shares); sizes, acts and order of another integer dtype are converted to int64;
    params, grads, velocity and workspace share no memory with each other, X or Y.
    Returns the mean over the rows trained of each row's cost (for MSE ``||y_i - a_i||^2
    / 2``) with the parameters of its batch, or NaN as soon as a batch's cost is not
    finite (the caller restores parameters).
    """
    kernel = "train_epoch"
    return _train_epoch(X, Y, params, grads, velocity, as_int64(kernel, "sizes", sizes),
                        as_int64(kernel, "acts", acts), batch_size, lr, momentum, weight_decay,
                        as_int64(kernel, "order", order), workspace,
                        MSE if loss is None else loss,
                        SGD if optimizer is None else optimizer,
                        0.9 if beta1 is None else beta1, 0.999 if beta2 is None else beta2,
                        1e-8 if eps is None else eps, False if nesterov is None else nesterov,
                        0 if step is None else step)


@njit(cache=CACHE)
def _train_epoch(X, Y, params, grads, velocity, sizes, acts, batch_size, lr, momentum,
                 weight_decay, order, workspace, loss, optimizer, beta1, beta2, eps, nesterov,
                 step):
    """``train_epoch`` with every option given."""
    kernel = "train_epoch"
    check_float_dtypes(kernel, "X, Y, params, grads, velocity, workspace",
                       X, Y, params, grads, velocity, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes, "Y")
    p = params.shape[0]
    check_dim(kernel, "grads", grads.shape[0], "params", p, "elements")
    _check_optimizer(kernel, params, velocity, "velocity", optimizer, lr, momentum, weight_decay,
                     beta1, beta2, eps)
    # params is written too: an update written over the data trains on garbage
    check_separate(kernel, "params", params, "X", X)
    check_separate(kernel, "params", params, "Y", Y)
    _check_buffers(kernel, X, Y, params, workspace, grads, "grads")
    check_separate(kernel, "velocity", velocity, "X", X)
    check_separate(kernel, "velocity", velocity, "Y", Y)
    check_separate(kernel, "velocity", velocity, "params", params)
    check_separate(kernel, "velocity", velocity, "grads", grads)
    check_separate(kernel, "velocity", velocity, "workspace", workspace)
    if step < 0:
        raise ValueError(kernel + ": step is " + str(step) + "; it counts the steps taken")
    shuffled = order.shape[0] > 0
    for r in range(order.shape[0]):
        if order[r] < 0 or order[r] >= X.shape[0]:
            raise ValueError(kernel + ": order[" + str(r) + "] is " + str(order[r])
                             + ", outside range(" + str(X.shape[0]) + ")")
    n = order.shape[0] if shuffled else X.shape[0]
    if n == 0:
        return 0.0

    # The optimizer travels as one tuple: (code, step, lr, momentum, weight_decay, beta1,
    # beta2, eps, nesterov), the arguments of _optimizer_step after the arrays.
    opt = (optimizer, step, float(lr), float(momentum), float(weight_decay), float(beta1),
           float(beta2), float(eps), bool(nesterov))
    n_layers = sizes.shape[0] - 1
    if n_layers == 1 and sizes[1] <= STREAMING_MAX_OUTPUTS and loss == MSE:
        return epoch_streaming(X, Y, params, grads, velocity, sizes[0], sizes[1], acts[0],
                               batch_size, order, opt, PREFETCH_ROWS)

    # Plain SGD is fused into the backward pass (no gradient stored); other optimizers
    # need the whole gradient first.
    fused_lr = lr if optimizer == SGD and momentum == 0 and weight_decay == 0 else 0.0
    W, b = _param_views(params, sizes)
    dW, db = _param_views(grads, sizes)
    A, D, T = _work_views(workspace, sizes, batch_size)
    _, _, x_start, y_start, _, _ = _workspace_layout(sizes, batch_size)
    gather_X = _block(workspace, x_start, batch_size, sizes[0])
    gather_Y = _block(workspace, y_start, batch_size, sizes[n_layers])
    total = 0.0
    t = step
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        if shuffled:
            Xb = gather_X[:m]
            Yb = gather_Y[:m]
            _gather_rows(X, order, start, Xb)
            _gather_rows(Y, order, start, Yb)
        else:
            Xb = X[start:stop]
            Yb = Y[start:stop]
        _forward_batch(Xb, W, b, A, acts, T)
        batch_cost = _backward_batch(Xb, Yb, W, b, dW, db, A, D, acts, loss, 1.0 / m, False,
                                     fused_lr)
        t += 1
        if fused_lr == 0:
            _optimizer_step(params, grads, velocity, optimizer, t, lr, momentum, weight_decay,
                            beta1, beta2, eps, nesterov)
        if not np.isfinite(batch_cost):
            return np.nan
        total += batch_cost
    return total / n


@njit(cache=CACHE)
def predict_into(X, params, sizes, acts, out, batch_size, workspace):
    """``out`` (N, n_L) = the network's output for X (N, n_0), ``batch_size`` rows at a time.

    For a network trained with a cross-entropy cost these are the logits. ``out`` may be X
    itself (when n_L = n_0: each batch's rows are read before they are written) but shares
    no memory with params or workspace, nor with X otherwise.
    """
    kernel = "predict_into"
    sizes = as_int64(kernel, "sizes", sizes)
    acts = as_int64(kernel, "acts", acts)
    check_float_dtypes(kernel, "X, params, out, workspace", X, params, out, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace)
    _check_targets(kernel, X, out, sizes, "out")
    check_separate(kernel, "workspace", workspace, "X", X)
    check_separate(kernel, "workspace", workspace, "params", params)
    check_same_or_separate(kernel, "out", out, "X", X)
    check_separate(kernel, "out", out, "params", params)
    check_separate(kernel, "out", out, "workspace", workspace)
    W, b = _param_views(params, sizes)
    A, _, T = _work_views(workspace, sizes, batch_size)
    n = X.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = _forward_batch(X[start:stop], W, b, A, acts, T)


@njit(cache=CACHE)
def dataset_cost(X, Y, params, sizes, acts, batch_size, workspace, loss=None):
    """The summed cost ``N * C`` of the network on X (N, n_0), Y (N, n_L); no gradient.

    Processed ``batch_size`` rows at a time (the workspace of ``workspace_size``); sums
    rather than means so that chunks of a large dataset add up exactly.
    """
    kernel = "dataset_cost"
    loss = MSE if loss is None else loss  # None: see train_epoch
    sizes = as_int64(kernel, "sizes", sizes)
    acts = as_int64(kernel, "acts", acts)
    check_float_dtypes(kernel, "X, Y, params, workspace", X, Y, params, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes, "Y")
    _check_workspace(kernel, workspace, X, Y, params)
    W, b = _param_views(params, sizes)
    A, D, T = _work_views(workspace, sizes, batch_size)
    n_layers = sizes.shape[0] - 1
    delta = D[n_layers - 1]  # written with scale 0, never read
    db = np.empty(sizes[n_layers], X.dtype)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        out = _forward_batch(X[start:stop], W, b, A, acts, T)
        total += _output_delta(out, Y[start:stop], delta[:stop - start], db,
                               acts[n_layers - 1], loss, 0.0, False)
    return total


@njit(cache=CACHE)
def batch_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, scale, loss=None):
    """``grads = scale * sum_i dc_i/dTheta`` over the rows of X (N, n_0), Y (N, n_L).

    ``scale = 1/N`` gives the mean gradient; ``scale = 1`` the sum (what data-parallel
    training adds up across processes before dividing by the global row count).
    Returns the summed cost ``sum_i c_i``.
    """
    kernel = "batch_gradient"
    loss = MSE if loss is None else loss  # None: see train_epoch
    sizes = as_int64(kernel, "sizes", sizes)
    acts = as_int64(kernel, "acts", acts)
    check_float_dtypes(kernel, "X, Y, params, grads, workspace", X, Y, params, grads, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes, "Y")
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    _check_buffers(kernel, X, Y, params, workspace, grads, "grads")
    check_finite(kernel, "scale", scale)
    if X.shape[0] == 0:
        grads[:] = 0
        return 0.0
    W, b = _param_views(params, sizes)
    dW, db = _param_views(grads, sizes)
    A, D, T = _work_views(workspace, sizes, batch_size)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        _forward_batch(X[start:stop], W, b, A, acts, T)
        total += _backward_batch(X[start:stop], Y[start:stop], W, b, dW, db, A, D, acts,
                                 loss, scale, start > 0, 0.0)
    return total


@njit(cache=CACHE)
def loss_and_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, loss=None):
    """Full-batch cost C (docs/MATH.md, the mean over rows) and its gradient into grads.

    Processed ``batch_size`` rows at a time, every row weighted 1/N. Returns C.
    """
    n = X.shape[0]
    if n == 0:
        raise ValueError("loss_and_gradient: X has 0 rows; the mean over no samples is undefined")
    return batch_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, 1.0 / n,
                          loss) / n
