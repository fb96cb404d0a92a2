"""Plain vectorised NumPy twins of the kernels, with the same signatures.

This is the way a textbook writes each formula of MATH.md. The tests use these as the
oracle; the benchmarks time the compiled kernels against them, and ``train_epoch``
here is the NumPy training loop numba-dense is compared with.
"""

import numpy as np

from .activations import RELU


def _activate(z, act):
    return np.maximum(z, 0, out=z) if act == RELU else z


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


def mse_loss(pred, y):
    """sum((pred - y)**2) / (2m)."""
    return float(np.sum((pred - y) ** 2) / (2 * pred.shape[0]))


def mse_grad(pred, y, out):
    """out = (pred - y) / m."""
    np.subtract(pred, y, out=out)
    out /= pred.shape[0]


# ----------------------------------------------------------------------------- networks

def layer_views(flat, sizes):
    """[(W_1, b_1), ...] as views into a flat vector laid out as kernels.loop describes."""
    views, o = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = flat[o:o + n_out * n_in].reshape(n_out, n_in)
        o += n_out * n_in
        views.append((W, flat[o:o + n_out]))
        o += n_out
    return views


def workspace_size(sizes, batch_size):
    """The twins keep their scratch in NumPy temporaries: no workspace needed."""
    return 0


def _forward(X, layers, acts):
    activations = [X]
    for (W, b), act in zip(layers, acts):
        activations.append(_activate(activations[-1] @ W.T + b, act))
    return activations


def _backward(activations, Y, layers, acts, scale):
    """[(dW, db), ...] of C = scale * sum ||A_L - Y||^2 / 2, and that sum / 2."""
    err = activations[-1] - Y
    half_sse = 0.5 * float(np.sum(err.astype(np.float64) ** 2))
    delta = scale * err
    out = []
    for l in range(len(layers) - 1, -1, -1):
        if acts[l] == RELU:
            delta = delta * (activations[l + 1] > 0)
        W = layers[l][0]
        out.append((delta.T @ activations[l], delta.sum(axis=0)))
        delta = delta @ W
    return out[::-1], half_sse


def train_epoch(X, Y, params, grads, velocity, sizes, acts, batch_size, lr, momentum,
                weight_decay, order, workspace):
    """The NumPy minibatch SGD loop: one Python iteration per minibatch."""
    layers = layer_views(params, sizes)
    grad_views = layer_views(grads, sizes)
    n = X.shape[0]
    total = 0.0
    for start in range(0, n, batch_size):
        if len(order):
            rows = order[start:start + batch_size]
            Xb, Yb = X[rows], Y[rows]
        else:
            Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
        activations = _forward(Xb, layers, acts)
        layer_grads, half_sse = _backward(activations, Yb, layers, acts, 1.0 / Xb.shape[0])
        if not np.isfinite(half_sse):
            return np.nan
        total += half_sse
        for (dW, db), (gW, gb) in zip(layer_grads, grad_views):
            gW[...] = dW
            gb[...] = db
        if momentum == 0 and weight_decay == 0:
            sgd_update(params, grads, lr)
        else:
            sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay)
    return total / n


def predict_into(X, params, sizes, acts, out, batch_size, workspace):
    """out = the network's output for X."""
    out[...] = _forward(X, layer_views(params, sizes), acts)[-1]


def loss_and_gradient(X, Y, params, grads, sizes, acts, batch_size, workspace):
    """Full-batch MSE cost and its gradient into grads; returns the cost."""
    layers = layer_views(params, sizes)
    layer_grads, half_sse = _backward(_forward(X, layers, acts), Y, layers, acts,
                                      1.0 / X.shape[0])
    for (dW, db), (gW, gb) in zip(layer_grads, layer_views(grads, sizes)):
        gW[...] = dW
        gb[...] = db
    return half_sse / X.shape[0]
