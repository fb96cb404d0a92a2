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

from ._checks import check_contiguous, check_dim, check_float_dtypes, check_positive
from .activations import (N_ACTIVATIONS, RELU, activate, backprop_activation,
                          derivative_from_output)
from .dense import forward_into
from .loss import MSE, N_LOSSES, output_delta
from .optim import momentum_update_into, sgd_update_into
from .products import product_a_b, product_at_b

#: A one-layer network with at most this many outputs trains by streaming each row once:
#: its forward product and its error-times-input gradient are done while the row is in
#: L1 cache, instead of two passes over the batch (the single ReLU neuron, config A).
STREAMING_MAX_OUTPUTS = 8


# ----------------------------------------------------------------------------- layout

@njit(cache=True)
def layer_offsets(sizes):
    """(L + 1,) int64: where each layer's ``W`` starts in ``params``; the last entry is P."""
    n_layers = sizes.shape[0] - 1
    offsets = np.empty(n_layers + 1, np.int64)
    o = 0
    for l in range(n_layers + 1):
        if sizes[l] < 1:
            raise ValueError("sizes[" + str(l) + "] is " + str(sizes[l])
                             + ": every layer width must be at least 1")
    for l in range(n_layers):
        offsets[l] = o
        o += sizes[l + 1] * sizes[l] + sizes[l + 1]
    offsets[n_layers] = o
    return offsets


@njit(cache=True)
def param_count(sizes):
    """P, the number of weights and biases of a network with these layer sizes."""
    return layer_offsets(sizes)[-1]


@njit(cache=True)
def weight_view(flat, offsets, sizes, l):
    """``W`` of layer ``l + 1`` (n_{l+1}, n_l) as a view into a flat vector."""
    o = offsets[l]
    return flat[o:o + sizes[l + 1] * sizes[l]].reshape((sizes[l + 1], sizes[l]))


@njit(cache=True)
def bias_view(flat, offsets, sizes, l):
    """``b`` of layer ``l + 1`` (n_{l+1},) as a view into a flat vector."""
    o = offsets[l] + sizes[l + 1] * sizes[l]
    return flat[o:o + sizes[l + 1]]


@njit(cache=True)
def workspace_size(sizes, batch_size):
    """Elements of scratch an epoch needs: activations, two error terms, a gathered batch."""
    n_layers = sizes.shape[0] - 1
    widest = 0
    total_width = 0
    for l in range(1, n_layers + 1):
        total_width += sizes[l]
        widest = max(widest, sizes[l])
    return batch_size * (total_width + 2 * widest + sizes[0] + sizes[n_layers])


@njit(cache=True)
def _block(workspace, start, rows, cols):
    return workspace[start:start + rows * cols].reshape((rows, cols))


# ----------------------------------------------------------------------------- checks

@njit(cache=True)
def _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss=MSE):
    n_layers = sizes.shape[0] - 1
    if loss < 0 or loss >= N_LOSSES:
        raise ValueError(kernel + ": loss is " + str(loss) + ", not a cost code (kernels.LOSSES)")
    if loss != MSE and acts[acts.shape[0] - 1] != 0:
        raise ValueError(kernel + ": the cross-entropy costs take logits: the last layer's "
                         "activation must be identity (0), got " + str(acts[acts.shape[0] - 1]))
    if n_layers < 1:
        raise ValueError(kernel + ": sizes must list at least 2 layer widths, got "
                         + str(sizes.shape[0]))
    for l in range(n_layers + 1):
        check_positive(kernel, "every entry of sizes", sizes[l])
    check_dim(kernel, "acts", acts.shape[0], "sizes", n_layers, "entries (layers)")
    for l in range(n_layers):
        if acts[l] < 0 or acts[l] >= N_ACTIVATIONS:
            raise ValueError(kernel + ": acts[" + str(l) + "] is " + str(acts[l])
                             + ", not an activation code")
    check_dim(kernel, "X", X.shape[1], "sizes[0]", sizes[0], "columns")
    check_dim(kernel, "params", params.shape[0], "the network", param_count(sizes), "elements")
    check_positive(kernel, "batch_size", batch_size)
    need = workspace_size(sizes, batch_size)
    if workspace.shape[0] < need:
        raise ValueError(kernel + ": workspace has " + str(workspace.shape[0])
                         + " elements but workspace_size(sizes, batch_size) is " + str(need))
    check_contiguous(kernel, "X", X)


@njit(cache=True)
def _check_targets(kernel, X, Y, sizes):
    check_dim(kernel, "Y", Y.shape[0], "X", X.shape[0], "rows")
    check_dim(kernel, "Y", Y.shape[1], "sizes[-1]", sizes[sizes.shape[0] - 1], "columns")
    check_contiguous(kernel, "Y", Y)


# ----------------------------------------------------------------------------- views

# A view made with reshape costs a call into Numba's runtime (about 35 ns); a 10-32-1
# network's whole minibatch step takes 3-4 us. So every per-layer view is made once per
# kernel call, and a minibatch of m rows only slices the first m rows off them.

@njit(cache=True)
def _param_views(flat, sizes):
    """([W_l (n_{l+1}, n_l)], [b_l (n_{l+1},)]): every layer's views into a flat vector."""
    offsets = layer_offsets(sizes)
    n_layers = sizes.shape[0] - 1
    return ([weight_view(flat, offsets, sizes, l) for l in range(n_layers)],
            [bias_view(flat, offsets, sizes, l) for l in range(n_layers)])


@njit(cache=True)
def _work_views(workspace, sizes, batch_size):
    """([A_l], [D_l]): (batch_size, n_{l+1}) blocks of the workspace for every layer's output
    activations and error term.

    The workspace holds the activations of every layer one after another, then two buffers
    of ``batch_size * widest`` for the error terms, which alternate from the top layer down
    (a layer's error term is formed from the one above it), then a gathered batch of X and
    Y (``workspace_size``).
    """
    n_layers = sizes.shape[0] - 1
    A = []
    start = 0
    widest = 0
    for l in range(n_layers):
        A.append(_block(workspace, start, batch_size, sizes[l + 1]))
        start += batch_size * sizes[l + 1]
        widest = max(widest, sizes[l + 1])
    D = []
    for l in range(n_layers):
        buffer = start + ((n_layers - 1 - l) % 2) * batch_size * widest
        D.append(_block(workspace, buffer, batch_size, sizes[l + 1]))
    return A, D


# ----------------------------------------------------------------------------- one batch

@njit(cache=True)
def forward_batch(Xb, W, b, A, acts):
    """Activations of every layer for one batch Xb (m, n_0) into the blocks A (views).

    Returns the output activations (m, n_L), the first m rows of the last block.
    """
    m = Xb.shape[0]
    a_prev = Xb
    for l in range(len(W)):
        out = A[l][:m]
        forward_into(a_prev, W[l], b[l], out, acts[l])
        a_prev = out
    return a_prev


@njit(cache=True)
def backward_batch(Xb, Yb, W, b, dW, db, A, D, acts, loss, scale, accumulate, lr):
    """Backprop one batch whose activations ``forward_batch`` left in A.

    With ``lr == 0`` the gradient ``dC/dTheta`` (the cost ``loss`` summed over rows times
    ``scale``, 1/m for a batch mean) is written into the views dW, db (added in with
    accumulate). With ``lr > 0`` the SGD step is fused instead: each ``W`` is updated by
    one product with ``alpha = -lr, beta = 1`` after its error term has been propagated
    below it, so no weight gradient is stored. Returns the batch's summed cost (``m * C``).
    """
    m = Xb.shape[0]
    top = len(W) - 1
    fused = lr > 0
    delta = D[top][:m]
    cost = output_delta(A[top][:m], Yb, delta, db[top], acts[top], loss, scale,
                        accumulate and not fused)
    for l in range(top, -1, -1):
        a_in = Xb if l == 0 else A[l - 1][:m]
        if l > 0:
            # Propagate below with the weights as they were in the forward pass.
            below = D[l - 1][:m]
            product_a_b(delta, W[l], below, 1.0, 0.0)
            backprop_activation(a_in, below, db[l - 1], acts[l - 1], accumulate and not fused)
        if fused:
            product_at_b(delta, a_in, W[l], -lr, 1.0)
            sgd_update_into(b[l], db[l], lr)
        else:
            product_at_b(delta, a_in, dW[l], 1.0, 1.0 if accumulate else 0.0)
        if l > 0:
            delta = below
    return cost


# ----------------------------------------------------------------------------- streaming

@njit(cache=True, fastmath={"contract", "reassoc"})
def _epoch_streaming(X, Y, params, grads, velocity, n_in, n_out, act, batch_size, lr,
                     momentum, weight_decay, order):
    """One epoch of a one-layer MSE network, each row read once for forward and gradient."""
    W = params[:n_out * n_in].reshape((n_out, n_in))
    b = params[n_out * n_in:]
    dW = grads[:n_out * n_in].reshape((n_out, n_in))
    db = grads[n_out * n_in:]
    shuffled = order.shape[0] > 0
    n = order.shape[0] if shuffled else X.shape[0]
    plain = momentum == 0 and weight_decay == 0
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        inv_m = 1.0 / (stop - start)
        grads[:] = 0
        batch_sse = 0.0
        for r in range(start, stop):
            i = order[r] if shuffled else r
            x = X[i]
            for j in range(n_out):
                w = W[j]
                s = b[j] * 0
                for p in range(n_in):
                    s += w[p] * x[p]
                a = activate(s + b[j], act)
                e = a - Y[i, j]
                batch_sse += np.float64(e) * np.float64(e)
                if act != RELU or a > 0:
                    g = e * inv_m * derivative_from_output(a, act)
                    dwj = dW[j]
                    for p in range(n_in):
                        dwj[p] += g * x[p]
                    db[j] += g
        if not np.isfinite(batch_sse):
            return np.nan
        total += batch_sse
        if plain:
            sgd_update_into(params, grads, lr)
        else:
            momentum_update_into(params, grads, velocity, lr, momentum, weight_decay)
    return 0.5 * total / n


# ----------------------------------------------------------------------------- public

@njit(cache=True)
def train_epoch(X, Y, params, grads, velocity, sizes, acts, batch_size, lr, momentum,
                weight_decay, order, workspace, loss=MSE):
    """One epoch of minibatch SGD, entirely in compiled code.

    X (N, n_0), Y (N, n_L); params, grads (P,); velocity (P,) when momentum or
    weight_decay is non-zero, else it may be empty; sizes (L + 1,), acts (L,) int64;
    order: int64 row indices, each in range(N), giving the rows to train on in order (a
    permutation of range(N) for a shuffled epoch, or any part of one to train on a
    segment), or an empty array for all rows in storage order; workspace
    (workspace_size(sizes, batch_size),); loss: a cost code of ``kernels.LOSSES`` (MSE;
    the cross-entropies need an identity last layer, whose outputs are then logits).

    Minibatches are ``batch_size`` consecutive rows (of ``order``); the last partial
    batch is averaged over its own rows. The step is ``params -= lr * grad`` (or the
    momentum step of ``sgd_momentum_update``). Returns the mean over the rows trained of
    each row's cost (for MSE ``||y_i - a_i||^2 / 2``) with the parameters of its batch, or
    NaN as soon as a batch's cost is not finite (the caller restores parameters).
    """
    kernel = "train_epoch"
    check_float_dtypes(kernel, "X, Y, params, grads, velocity, workspace",
                       X, Y, params, grads, velocity, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes)
    p = params.shape[0]
    check_dim(kernel, "grads", grads.shape[0], "params", p, "elements")
    plain = momentum == 0 and weight_decay == 0
    if not plain:
        check_dim(kernel, "velocity", velocity.shape[0], "params", p, "elements")
    shuffled = order.shape[0] > 0
    for r in range(order.shape[0]):
        if order[r] < 0 or order[r] >= X.shape[0]:
            raise ValueError(kernel + ": order[" + str(r) + "] is " + str(order[r])
                             + ", outside range(" + str(X.shape[0]) + ")")
    if not lr > 0:
        raise ValueError(kernel + ": lr must be positive")
    n = order.shape[0] if shuffled else X.shape[0]
    if n == 0:
        return 0.0

    n_layers = sizes.shape[0] - 1
    if n_layers == 1 and sizes[1] <= STREAMING_MAX_OUTPUTS and loss == MSE:
        return _epoch_streaming(X, Y, params, grads, velocity, sizes[0], sizes[1], acts[0],
                                batch_size, lr, momentum, weight_decay, order)

    W, b = _param_views(params, sizes)
    dW, db = _param_views(grads, sizes)
    A, D = _work_views(workspace, sizes, batch_size)
    n_in = sizes[0]
    n_out = sizes[n_layers]
    gather_x = workspace.shape[0] - batch_size * (n_in + n_out)
    gather_X = _block(workspace, gather_x, batch_size, n_in)
    gather_Y = _block(workspace, gather_x + batch_size * n_in, batch_size, n_out)
    total = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        if shuffled:
            Xb = gather_X[:m]
            Yb = gather_Y[:m]
            for r in range(m):
                Xb[r] = X[order[start + r]]
                Yb[r] = Y[order[start + r]]
        else:
            Xb = X[start:stop]
            Yb = Y[start:stop]
        forward_batch(Xb, W, b, A, acts)
        if plain:
            batch_cost = backward_batch(Xb, Yb, W, b, dW, db, A, D, acts, loss, 1.0 / m,
                                        False, lr)
        else:
            batch_cost = backward_batch(Xb, Yb, W, b, dW, db, A, D, acts, loss, 1.0 / m,
                                        False, 0.0)
            momentum_update_into(params, grads, velocity, lr, momentum, weight_decay)
        if not np.isfinite(batch_cost):
            return np.nan
        total += batch_cost
    return total / n


@njit(cache=True)
def predict_into(X, params, sizes, acts, out, batch_size, workspace):
    """``out`` (N, n_L) = the network's output for X (N, n_0), ``batch_size`` rows at a time.

    For a network trained with a cross-entropy cost these are the logits.
    """
    kernel = "predict_into"
    check_float_dtypes(kernel, "X, params, out, workspace", X, params, out, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace)
    _check_targets(kernel, X, out, sizes)
    W, b = _param_views(params, sizes)
    A, _ = _work_views(workspace, sizes, batch_size)
    n = X.shape[0]
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        out[start:stop] = forward_batch(X[start:stop], W, b, A, acts)


@njit(cache=True)
def dataset_cost(X, Y, params, sizes, acts, batch_size, workspace, loss=MSE):
    """The summed cost ``N * C`` of the network on X (N, n_0), Y (N, n_L); no gradient.

    Processed ``batch_size`` rows at a time (the workspace of ``workspace_size``); sums
    rather than means so that chunks of a large dataset add up exactly.
    """
    kernel = "dataset_cost"
    check_float_dtypes(kernel, "X, Y, params, workspace", X, Y, params, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes)
    W, b = _param_views(params, sizes)
    A, D = _work_views(workspace, sizes, batch_size)
    n_layers = sizes.shape[0] - 1
    delta = D[n_layers - 1]  # written with scale 0, never read
    db = np.empty(sizes[n_layers], X.dtype)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        out = forward_batch(X[start:stop], W, b, A, acts)
        total += output_delta(out, Y[start:stop], delta[:stop - start], db,
                              acts[n_layers - 1], loss, 0.0, False)
    return total


@njit(cache=True)
def batch_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, scale, loss=MSE):
    """``grads = scale * sum_i dc_i/dTheta`` over the rows of X (N, n_0), Y (N, n_L).

    ``scale = 1/N`` gives the mean gradient; ``scale = 1`` the sum (what data-parallel
    training adds up across processes before dividing by the global row count).
    Returns the summed cost ``sum_i c_i``.
    """
    kernel = "batch_gradient"
    check_float_dtypes(kernel, "X, Y, params, grads, workspace", X, Y, params, grads, workspace)
    _check_network(kernel, X, params, sizes, acts, batch_size, workspace, loss)
    _check_targets(kernel, X, Y, sizes)
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    if X.shape[0] == 0:
        grads[:] = 0
        return 0.0
    W, b = _param_views(params, sizes)
    dW, db = _param_views(grads, sizes)
    A, D = _work_views(workspace, sizes, batch_size)
    total = 0.0
    for start in range(0, X.shape[0], batch_size):
        stop = min(start + batch_size, X.shape[0])
        forward_batch(X[start:stop], W, b, A, acts)
        total += backward_batch(X[start:stop], Y[start:stop], W, b, dW, db, A, D, acts,
                                loss, scale, start > 0, 0.0)
    return total


@njit(cache=True)
def loss_and_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, loss=MSE):
    """Full-batch cost C (docs/MATH.md, the mean over rows) and its gradient into grads.

    Processed ``batch_size`` rows at a time, every row weighted 1/N. Returns C.
    """
    n = X.shape[0]
    if n == 0:
        raise ValueError("loss_and_gradient: X has 0 rows; the mean over no samples is undefined")
    return batch_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace, 1.0 / n,
                          loss) / n
