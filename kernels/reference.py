"""Plain vectorised NumPy twins of the kernels, with the same signatures.

This is the way a textbook writes each formula of docs/MATH.md. The tests use these as the
oracle; the benchmarks time the compiled kernels against them, and ``train_epoch``
here is the NumPy training loop numba-dense is compared with.
"""

import numpy as np

from .masks import GOLDEN, LANE_BITS, LANES, _M1, _M2
from .embedding import Embeddings
from .records import Dropout, Network
from .sparse import CSR
from .variants import (ABSOLUTE_ERROR, ACTIVATION_TABLE, ADAM, ADAMW, GELU, HUBER, HUBER_DELTA,
                       LEAKY_RELU, LEAKY_SLOPE, MSE, POISSON, QUANTILE, QUANTILE_STEPS, RELU,
                       SIGMOID, SIGMOID_BCE, SILU, SOFTMAX_CE, TANH, quantile_code)


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z)).astype(z.dtype, copy=False)


def _activate(z, act):
    if act == RELU:
        return np.maximum(z, 0, out=z)
    if act == TANH:
        return np.tanh(z)
    if act == SIGMOID:
        return _sigmoid(z)
    if act == LEAKY_RELU:
        return np.where(z > 0, z, z * z.dtype.type(LEAKY_SLOPE))
    if act == GELU:
        return (z * _Phi(z)).astype(z.dtype, copy=False)
    if act == SILU:
        return z * _sigmoid(z)
    return z


def _Phi(z):
    """The standard normal CDF, in float64."""
    from scipy.special import ndtr
    return ndtr(np.asarray(z, np.float64))


def _derivative_z(z, act):
    """sigma'(z) from the pre-activation z."""
    if act == GELU:
        z64 = np.asarray(z, np.float64)
        return (_Phi(z64) + z64 * np.exp(-0.5 * z64 * z64) / np.sqrt(2 * np.pi)).astype(z.dtype)
    if act == SILU:
        s = _sigmoid(z)
        return s * (1 + z * (1 - s))
    return _derivative(_activate(z.copy(), act), act)


def _derivative(a, act):
    if act == RELU:
        return (a > 0).astype(a.dtype)
    if act == TANH:
        return 1 - a * a
    if act == SIGMOID:
        return a * (1 - a)
    if act == LEAKY_RELU:
        return np.where(a > 0, 1, LEAKY_SLOPE).astype(a.dtype)
    if act in (GELU, SILU):
        raise ValueError("the derivative of gelu and silu needs Z: activation_backward_z")
    return np.ones_like(a)


def activation_forward(Z, act):
    """Z = sigma(Z) in place."""
    Z[...] = _activate(Z.copy(), act)


def activation_backward(A, G, act):
    """G *= sigma'(A), from the output A."""
    G *= _derivative(A, act)


def activation_backward_z(Z, G, act):
    """G *= sigma'(Z), from the pre-activation Z."""
    G *= _derivative_z(Z, act)


def dense_forward(X, W, b, out, relu):
    """out = X @ W.T + b, then max(0, .) when relu."""
    np.matmul(X, W.T, out=out)
    out += b
    if relu:
        np.maximum(out, 0, out=out)


def relu_mask(A, G):
    """G[A <= 0] = 0."""
    G[A <= 0] = 0


def accumulate_gradients(delta, X, dW, db, scale, accumulate):
    """dW (+)= scale * delta.T @ X; db (+)= scale * delta.sum(axis=0)."""
    if accumulate:
        dW += scale * (delta.T @ X)
        db += scale * delta.sum(axis=0)
    else:
        dW[...] = scale * (delta.T @ X)
        db[...] = scale * delta.sum(axis=0)


def backprop_input(delta, W, out):
    """out = delta @ W."""
    np.matmul(delta, W, out=out)


def sgd_update(params, grads, lr):
    """params -= lr * grads."""
    params -= lr * grads


def sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay):
    """velocity = momentum * velocity + grads + weight_decay * params; params -= lr * velocity."""
    velocity *= momentum
    velocity += grads + weight_decay * params
    params -= lr * velocity


def _adam_step(params, grads, m, v, t, opt):
    """One Adam / AdamW step at 1-based step t, as torch.optim.Adam / AdamW."""
    lr, wd = opt.lr, opt.weight_decay
    if opt.code == ADAMW:
        params *= 1 - lr * wd
        g = grads
    else:
        g = grads + wd * params
    m *= opt.beta1
    m += (1 - opt.beta1) * g
    v *= opt.beta2
    v += (1 - opt.beta2) * g * g
    denom = np.sqrt(v) / np.sqrt(1 - opt.beta2 ** t) + opt.eps
    params -= (lr / (1 - opt.beta1 ** t)) * m / denom


def optimizer_step(params, grads, optimizer):
    """One step of an ``Optimizer`` record: Adam/AdamW on ``state = [m, v]``, plain SGD, or
    SGD with (Nesterov) momentum and weight decay on ``state = velocity``; advances
    ``optimizer.steps``."""
    P = params.shape[0]
    opt = optimizer
    opt.steps[0] += 1
    if opt.code in (ADAM, ADAMW):
        _adam_step(params, grads, opt.state[:P], opt.state[P:2 * P], int(opt.steps[0]), opt)
    elif opt.momentum == 0 and opt.weight_decay == 0:
        sgd_update(params, grads, opt.lr)
    else:
        g = grads + opt.weight_decay * params
        v = opt.state[:P]
        v *= opt.momentum
        v += g
        params -= opt.lr * (g + opt.momentum * v if opt.nesterov else v)


def layer_offsets(sizes):
    """(L + 1,) int64: where each layer's W starts in params; the last entry is P."""
    sizes = [int(n) for n in sizes]
    offsets = [0]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        offsets.append(offsets[-1] + n_out * n_in + n_out)
    return np.array(offsets, np.int64)


def param_count(sizes):
    """P = sum over layers of n_out * n_in + n_out."""
    return int(layer_offsets(sizes)[-1])


def mse_loss(pred, y):
    """sum((pred - y)**2) / (2m)."""
    return float(np.sum((pred - y) ** 2) / (2 * pred.shape[0]))


def mse_grad(pred, y, out):
    """out = (pred - y) / m."""
    np.subtract(pred, y, out=out)
    out /= pred.shape[0]


def _log_softmax(Z):
    Z = Z.astype(np.float64)
    shifted = Z - Z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_cross_entropy(Z, Y):
    """-sum(Y * log_softmax(Z)) / m."""
    return float(-(Y * _log_softmax(Z)).sum() / Z.shape[0])


def softmax_cross_entropy_grad(Z, Y, out):
    """out = (softmax(Z) * Y.sum(1) - Y) / m."""
    out[...] = (np.exp(_log_softmax(Z)) * Y.sum(axis=1, keepdims=True) - Y) / Z.shape[0]


def softmax(Z, out):
    out[...] = np.exp(_log_softmax(Z))


def sigmoid(Z, out):
    out[...] = _sigmoid(Z.astype(np.float64))


def sigmoid_binary_cross_entropy(Z, Y):
    """sum(softplus(Z) - Z Y) / m, i.e. -sum(Y log s(Z) + (1 - Y) log(1 - s(Z))) / m."""
    Z = Z.astype(np.float64)
    return float((np.logaddexp(0, Z) - Z * Y).sum() / Z.shape[0])


def sigmoid_binary_cross_entropy_grad(Z, Y, out):
    """out = (sigmoid(Z) - Y) / m."""
    out[...] = (_sigmoid(Z.astype(np.float64)) - Y) / Z.shape[0]


def poisson_loss(Z, Y):
    """sum(exp(Z) - Y Z) / m."""
    Z = Z.astype(np.float64)
    return float((np.exp(Z) - Y * Z).sum() / Z.shape[0])


def poisson_loss_grad(Z, Y, out):
    """out = (exp(Z) - Y) / m."""
    out[...] = (np.exp(Z.astype(np.float64)) - Y) / Z.shape[0]


def _huber(E):
    size = np.abs(E)
    cost = np.where(size <= HUBER_DELTA, 0.5 * E * E, HUBER_DELTA * (size - 0.5 * HUBER_DELTA))
    return cost, np.clip(E, -HUBER_DELTA, HUBER_DELTA)


def _pinball(E, q):
    """Pinball cost and gradient of errors E = pred - y at level q."""
    return np.where(E > 0, (1 - q) * E, -q * E), (1 - q) * (E > 0) - q * (E < 0)


def huber_loss(pred, y):
    """sum(h(pred - y)) / m, h Huber's with delta = 1."""
    return float(_huber(pred.astype(np.float64) - y)[0].sum() / pred.shape[0])


def huber_loss_grad(pred, y, out):
    """out = clip(pred - y, -1, 1) / m."""
    out[...] = _huber(pred.astype(np.float64) - y)[1] / pred.shape[0]


def absolute_error_loss(pred, y):
    """sum(|pred - y|) / m."""
    return float(np.abs(pred.astype(np.float64) - y).sum() / pred.shape[0])


def absolute_error_loss_grad(pred, y, out):
    """out = sign(pred - y) / m."""
    out[...] = np.sign(pred.astype(np.float64) - y) / pred.shape[0]


def quantile_loss(pred, y, quantile):
    """sum(q max(y - pred, 0) + (1 - q) max(pred - y, 0)) / m."""
    quantile_code(quantile)
    return float(_pinball(pred.astype(np.float64) - y, quantile)[0].sum() / pred.shape[0])


def quantile_loss_grad(pred, y, quantile, out):
    """out = ((1 - q) [pred > y] - q [pred < y]) / m."""
    quantile_code(quantile)
    out[...] = _pinball(pred.astype(np.float64) - y, quantile)[1] / pred.shape[0]


def _row_costs_and_delta(out, Y, act, loss):
    """Every row's cost (m,) and dC/dZ of the output layer (unscaled, unweighted)."""
    if loss == SOFTMAX_CE:
        logp = _log_softmax(out)
        return -(Y * logp).sum(axis=1), np.exp(logp) * Y.sum(axis=1, keepdims=True) - Y
    if loss == SIGMOID_BCE:
        Z = out.astype(np.float64)
        return (np.logaddexp(0, Z) - Z * Y).sum(axis=1), _sigmoid(Z) - Y
    if loss == POISSON:
        Z = out.astype(np.float64)
        return (np.exp(Z) - Y * Z).sum(axis=1), np.exp(Z) - Y
    if loss in (HUBER, ABSOLUTE_ERROR) or loss >= QUANTILE:
        E = out.astype(np.float64) - Y
        if loss == HUBER:
            cost, delta = _huber(E)
        elif loss == ABSOLUTE_ERROR:
            cost, delta = np.abs(E), np.sign(E)
        else:
            cost, delta = _pinball(E, (loss - QUANTILE + 1) / QUANTILE_STEPS)
        return cost.sum(axis=1), delta.astype(out.dtype)
    err = out - Y
    return 0.5 * np.sum(err.astype(np.float64) ** 2, axis=1), err * _derivative(out, act)


def _cost_and_delta(out, Y, act, loss, weights=None):
    """Summed (weighted) cost of a batch and the (row-weighted) dC/dZ of the output layer."""
    costs, delta = _row_costs_and_delta(out, Y, act, loss)
    if weights is None or len(weights) == 0:
        return float(costs.sum()), delta
    return float(costs @ weights), delta * weights[:, None]


# ----------------------------------------------------------------------------- networks

def _dense(X):
    """X as a NumPy matrix: a ``kernels.CSR`` record densified (the twins of the
    whole-network kernels take either, as the kernels do)."""
    if isinstance(X, CSR):
        import scipy.sparse as sp
        return sp.csr_matrix((X.data, X.indices, X.indptr),
                             shape=(len(X.indptr) - 1, X.n_cols)).toarray()
    return X


def sparse_forward(X, rows, W, b, out, act):
    """out = sigma(X[rows] @ W.T + b) of a CSR record (all rows when rows is empty)."""
    Xd = _dense(X)
    Xd = Xd[rows] if len(rows) else Xd
    out[...] = _activate((Xd @ W.T + b).astype(out.dtype), act)


def sparse_weight_gradient(X, rows, D, dW, alpha, beta):
    """dW = alpha * D.T @ X[rows] + beta * dW of a CSR record."""
    Xd = _dense(X)
    Xd = Xd[rows] if len(rows) else Xd
    dW[...] = alpha * (D.T @ Xd) + beta * dW


def layer_views(flat, sizes):
    """[(W_1, b_1), ...] as views into a flat vector laid out as kernels.loop describes."""
    views, o = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = flat[o:o + n_out * n_in].reshape(n_out, n_in)
        o += n_out * n_in
        views.append((W, flat[o:o + n_out]))
        o += n_out
    return views


def _split(network, params, grads=None):
    """(Network, the tables' lookup or None, the dense layers' params, their grads, the
    tables' grads) of a ``Network`` or ``Embeddings`` record."""
    if not isinstance(network, Embeddings):
        return network, None, params, grads, None
    n = param_count(network.network.sizes)
    lookup = _Lookup(network, params[n:])
    return (network.network, lookup, params[:n], None if grads is None else grads[:n],
            None if grads is None else grads[n:])


class _Lookup:
    """The embedding lookup of kernels.embedding, with NumPy indexing."""

    def __init__(self, emb, tables):
        self.columns = np.asarray(emb.columns, np.int64)
        self.tables, o = [], 0
        for n, d in zip(emb.cardinalities, emb.dims):
            self.tables.append((o, int(n), int(d)))
            o += int(n) * int(d)
        self.flat = tables

    def __call__(self, X):
        """The first layer's input: X's other columns, then each code's table row."""
        numbers = np.delete(X, self.columns, axis=1)
        parts = [numbers]
        for c, (o, n, d) in zip(self.columns, self.tables):
            codes = X[:, c].astype(np.int64)
            parts.append(self.flat[o:o + n * d].reshape(n, d)[codes])
        return np.concatenate(parts, axis=1).astype(X.dtype)

    def gradient(self, X, G, out):
        """The tables' gradient into ``out``: G (m, n_0) the first layer's input gradient."""
        out[...] = 0
        col = X.shape[1] - len(self.columns)
        for c, (o, n, d) in zip(self.columns, self.tables):
            table = out[o:o + n * d].reshape(n, d)
            np.add.at(table, X[:, c].astype(np.int64), G[:, col:col + d])
            col += d


def workspace_size(sizes, batch_size):
    """The twins keep their scratch in NumPy temporaries: no workspace needed."""
    return 0


def _u64(x):
    return np.asarray(x).astype(np.uint64)


def _mix(x):
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


def dropout_mask(seed, step, layer, m, n, rate):
    """The (m, n) bool mask of hidden layer ``layer`` at optimizer step ``step``, True where
    a unit is dropped: the formula of ``kernels.masks``'s docstring, vectorised."""
    g = np.uint64(GOLDEN)
    words = -(-n // LANES)
    with np.errstate(over="ignore"):
        x = _mix(_u64(np.int64(seed)) + g)
        x = _mix(x + _u64(np.int64(step)) * g)
        base = _mix(x + np.uint64(layer + 1) * g)
        counters = np.arange(1, m * words + 1, dtype=np.uint64).reshape(m, words)
        hashes = _mix(base + counters * g)
    shifts = (np.arange(LANES, dtype=np.uint64) * np.uint64(LANE_BITS))
    lanes = (hashes[:, :, None] >> shifts) & np.uint64(0xFFFF)
    threshold = np.uint64(min(np.round(rate * 2.0 ** LANE_BITS), 2.0 ** LANE_BITS - 1))
    return (lanes < threshold).reshape(m, words * LANES)[:, :n]


def _forward(X, layers, acts, dropout=(), seed=0, step=0):
    """[X, A_1, ..., A_L]; with ``dropout`` rates, the hidden layers' outputs as dropped
    out (and, second, the masks' keep factors: 0 or 1 / (1 - rate), None where no
    dropout)."""
    activations, factors = [X], []
    for l, ((W, b), act) in enumerate(zip(layers, acts)):
        a = _activate(activations[-1] @ W.T + b, act)
        factor = None
        if l < len(layers) - 1 and len(dropout) and dropout[l] > 0:
            dropped = dropout_mask(seed, step, l, a.shape[0], a.shape[1], dropout[l])
            factor = np.where(dropped, 0.0, 1.0 / (1.0 - dropout[l]))
            a = (a * factor).astype(a.dtype)
        activations.append(a)
        factors.append(factor)
    if len(dropout):
        return activations, factors
    return activations


def _backward(activations, Y, layers, acts, scale, loss=MSE, weights=None, factors=None):
    """[(dW, db), ...] of scale * (summed, row-weighted cost of the batch), and that cost;
    ``factors`` the dropout keep factors of ``_forward`` (None: no dropout)."""
    cost, delta = _cost_and_delta(activations[-1], Y, acts[-1], loss, weights)
    delta = (scale * delta).astype(activations[-1].dtype)
    out = []
    for l in range(len(layers) - 1, -1, -1):
        if l < len(layers) - 1:
            factor = None if factors is None else factors[l]
            if factor is not None:
                # d(dropped)/d(output) is the keep factor; the derivative needs the output
                # before dropout, activations[l + 1] / factor where kept
                delta = delta * factor
            if ACTIVATION_TABLE[acts[l]].needs_z:  # gelu, silu: Z again, from A below
                W, b = layers[l]
                delta = delta * _derivative_z(activations[l] @ W.T + b, acts[l])
            else:
                a = activations[l + 1]
                if factor is not None:
                    a = np.where(factor > 0, a / np.where(factor > 0, factor, 1.0), 0.0)
                delta = delta * _derivative(a, acts[l])
        W = layers[l][0]
        out.append((delta.T @ activations[l], delta.sum(axis=0)))
        delta = delta @ W
    return out[::-1], cost, delta


def train_epoch(X, Y, params, grads, network, optimizer, batches, workspace):
    """The NumPy minibatch loop: one Python iteration per minibatch."""
    dropout = None
    if isinstance(batches, Dropout):
        batches, dropout = batches.batches, batches
    X = _dense(X)
    network, lookup, dense, dense_grads, table_grads = _split(network, params, grads)
    sizes, acts, loss = network
    layers = layer_views(dense, sizes)
    grad_views = layer_views(dense_grads, sizes)
    order, batch_size, weights = batches.order, batches.size, batches.sample_weight
    seed = 0 if dropout is None else dropout.seed
    dropout = np.empty(0) if dropout is None else np.asarray(dropout.rates, np.float64)
    n = len(order) if len(order) else X.shape[0]
    rows = order if len(order) else np.arange(n)
    total = total_weight = 0.0
    for start in range(0, n, batch_size):
        batch = rows[start:start + batch_size]
        Xb, Yb = X[batch], Y[batch]
        raw, Xb = Xb, (Xb if lookup is None else lookup(Xb))
        wb = weights[batch].astype(np.float64) if len(weights) else None
        weight = float(wb.sum()) if wb is not None else float(len(batch))
        if weight == 0:
            continue
        if len(dropout):
            activations, factors = _forward(Xb, layers, acts, dropout, seed,
                                            int(optimizer.steps[0]))
        else:
            activations, factors = _forward(Xb, layers, acts), None
        layer_grads, cost, G = _backward(activations, Yb, layers, acts, 1.0 / weight, loss,
                                         wb, factors)
        if lookup is not None:
            lookup.gradient(raw, G, table_grads)
        if not np.isfinite(cost):
            return np.nan
        total += cost
        total_weight += weight
        for (dW, db), (gW, gb) in zip(layer_grads, grad_views):
            gW[...] = dW
            gb[...] = db
        optimizer_step(params, grads, optimizer)
    return total / total_weight if total_weight else 0.0


def train_epoch_batched(X, Y, params, grads, network, optimizer, batches, workspace):
    """``train_epoch``: the two compiled kernels differ only in how they compute (a streamed
    pass for one-layer MSE networks), not in what."""
    return train_epoch(X, Y, params, grads, network, optimizer, batches, workspace)


def epoch_streaming(X, Y, params, grads, optimizer, act, batches, ahead):
    """``train_epoch`` of the one-layer MSE network ``[X.shape[1], Y.shape[1]]``."""
    network = Network(np.array([X.shape[1], Y.shape[1]]), np.array([act]), MSE)
    return train_epoch(X, Y, params, grads, network, optimizer, batches, None)


def predict_into(X, params, network, out, batch_size, workspace):
    """out = the network's output for X."""
    network, lookup, params, _, _ = _split(network, params)
    X = _dense(X) if lookup is None else lookup(X)
    out[...] = _forward(X, layer_views(params, network.sizes), network.acts)[-1]


def predict_workspace_size(sizes):
    """The twins keep their scratch in NumPy temporaries: no workspace needed."""
    return 0


def predict_rows(X, params, network, out, workspace):
    """out = the network's output for a few rows X (predict_into's values)."""
    out[...] = _forward(_dense(X), layer_views(params, network.sizes), network.acts)[-1]


def predict_transformed(X, params, sizes, acts, out, workspace, transform):
    """predict_rows, then out * transform[0] + transform[2:], then exp where transform[1];
    False (out untouched) when X holds a NaN or inf."""
    if not np.isfinite(X).all():
        return False
    z = _forward(_dense(X), layer_views(params, sizes), acts)[-1] * transform[0] + transform[2:]
    out[...] = np.exp(z) if transform[1] != 0 else z
    return True


def batch_gradient(X, Y, params, grads, network, batch_size, workspace, scale):
    """grads = scale * summed gradient over the rows; returns the summed cost."""
    return _weighted_gradient(X, Y, params, grads, network, scale, None)


def dropout_gradient(X, Y, params, grads, network, dropout, workspace, scale):
    """grads = scale * summed (row-weighted) gradient of one minibatch with its hidden
    layers dropped out by the masks of ``dropout.seed`` at step 0; returns the summed
    cost."""
    network, lookup, params, dense_grads, table_grads = _split(network, params, grads)
    sizes, acts, loss = network
    layers = layer_views(params, sizes)
    rates = np.asarray(dropout.rates, np.float64)
    weights = dropout.batches.sample_weight
    weights = np.asarray(weights, np.float64) if len(weights) else None
    Xd = _dense(X) if lookup is None else lookup(X)
    if len(rates):
        activations, factors = _forward(Xd, layers, acts, rates, dropout.seed, 0)
    else:
        activations, factors = _forward(Xd, layers, acts), None
    layer_grads, cost, G = _backward(activations, Y, layers, acts, scale, loss, weights,
                                     factors)
    for (dW, db), (gW, gb) in zip(layer_grads, layer_views(dense_grads, sizes)):
        gW[...] = dW
        gb[...] = db
    if lookup is not None:
        lookup.gradient(X, G, table_grads)
    return cost


def _weighted_gradient(X, Y, params, grads, network, scale, weights):
    """grads = scale * summed (row-weighted) gradient over the rows; returns the summed cost."""
    network, lookup, params, dense_grads, table_grads = _split(network, params, grads)
    sizes, acts, loss = network
    layers = layer_views(params, sizes)
    Xd = _dense(X) if lookup is None else lookup(X)
    layer_grads, cost, G = _backward(_forward(Xd, layers, acts), Y, layers, acts, scale, loss,
                                     weights)
    for (dW, db), (gW, gb) in zip(layer_grads, layer_views(dense_grads, sizes)):
        gW[...] = dW
        gb[...] = db
    if lookup is not None:
        lookup.gradient(X, G, table_grads)
    return cost


def loss_and_gradient(X, Y, params, grads, network, batch_size, workspace, sample_weight=None):
    """Full-batch (weighted) mean cost and its gradient into grads; returns the cost."""
    n = len(Y) if sample_weight is None else float(np.sum(sample_weight, dtype=np.float64))
    return _weighted_gradient(X, Y, params, grads, network, 1.0 / n, sample_weight) / n


def dataset_cost(X, Y, params, network, batch_size, workspace, sample_weight=None):
    """Summed (weighted) cost over all rows."""
    network, lookup, params, _, _ = _split(network, params)
    sizes, acts, loss = network
    out = _forward(_dense(X) if lookup is None else lookup(X), layer_views(params, sizes),
                   acts)[-1]
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    return _cost_and_delta(out, Y, acts[-1], loss, weights)[0]
