"""Costs and their gradients: mean squared error, softmax cross-entropy, sigmoid BCE.

Every cost is a sum over a row's outputs, averaged over rows (as docs/MATH.md's MSE):

- ``MSE``: ``C = sum((a - y)**2) / (2m)`` on the output activations ``a``;
- ``SOFTMAX_CE``: ``C = -sum(y * log_softmax(z)) / m`` on the logits ``z``;
- ``SIGMOID_BCE``: ``C = -sum(y log s(z) + (1 - y) log(1 - s(z))) / m`` on the logits.

The two cross-entropies take logits, never probabilities: ``log_softmax`` is formed as
``z - max(z) - log(sum(exp(z - max(z))))`` and the BCE as
``max(z, 0) - z y + log1p(exp(-|z|))``, so no exp overflows and no log sees 0. Their
gradient with respect to the logits is ``softmax(z) * sum(y) - y`` and ``s(z) - y``.
"""

import numpy as np
from numba import njit

from ._checks import check_dim, check_float_dtypes
from .activations import IDENTITY, RELU, derivative_from_output, sigmoid_scalar

MSE = 0
SOFTMAX_CE = 1
SIGMOID_BCE = 2

#: Cost name -> code, as the model layer spells them.
LOSSES = {"mse": MSE, "cross_entropy": SOFTMAX_CE, "binary_cross_entropy": SIGMOID_BCE}
N_LOSSES = len(LOSSES)


@njit(cache=True, fastmath={"contract"})
def half_sse(pred, y):
    """``sum((pred - y)**2) / 2`` accumulated in float64; pred, y (m, n)."""
    m, n = pred.shape
    total = 0.0
    for i in range(m):
        for j in range(n):
            e = np.float64(pred[i, j]) - np.float64(y[i, j])
            total += e * e
    return 0.5 * total


@njit(cache=True, fastmath={"contract"})
def softmax_ce_row(z, y, d, scale):
    """One row's cross-entropy from logits z (n,), and ``d = scale * dC/dz`` when scale != 0."""
    n = z.shape[0]
    top = z[0]
    for j in range(1, n):
        top = max(top, z[j])
    s = 0.0
    for j in range(n):
        s += np.exp(np.float64(z[j]) - top)
    lse = top + np.log(s)
    loss = 0.0
    ysum = 0.0
    for j in range(n):
        loss -= np.float64(y[j]) * (np.float64(z[j]) - lse)
        ysum += y[j]
    if scale != 0:
        for j in range(n):
            d[j] = scale * (np.exp(np.float64(z[j]) - lse) * ysum - y[j])
    return loss


@njit(cache=True, fastmath={"contract"}, inline="always")
def sigmoid_bce_element(z, y):
    """``-(y log s(z) + (1 - y) log(1 - s(z)))`` in float64, stable for any z."""
    z = np.float64(z)
    return max(z, 0.0) - z * y + np.log1p(np.exp(-abs(z)))


@njit(cache=True, fastmath={"contract"})
def output_delta(A, Y, delta, db, act, loss, scale, accumulate):
    """Output error term, its bias gradient and the cost in one sweep.

    ``delta = scale * dC/dZ`` of the output layer (``scale = 1/m`` for the batch mean):
    ``(A - Y) * sigma'(A)`` for MSE, ``softmax(A) * sum(Y) - Y`` and ``s(A) - Y`` for the
    cross-entropies, whose ``A`` are the logits (the layer's activation is identity).
    ``db = delta.sum(axis=0)`` (``+=`` with accumulate). A, Y, delta (m, n); db (n,).
    Returns the batch's summed cost ``m * C`` in float64 (for MSE ``sum((A - Y)**2) / 2``).
    """
    m, n = A.shape
    if not accumulate:
        db[:] = 0
    total = 0.0
    for i in range(m):
        a = A[i]
        y = Y[i]
        d = delta[i]
        if loss == SOFTMAX_CE:
            total += softmax_ce_row(a, y, d, scale)
        elif loss == SIGMOID_BCE:
            for j in range(n):
                total += sigmoid_bce_element(a[j], y[j])
                d[j] = scale * (sigmoid_scalar(a[j]) - y[j])
        else:
            for j in range(n):
                e = a[j] - y[j]
                total += 0.5 * np.float64(e) * np.float64(e)
                if act == RELU and a[j] <= 0:
                    d[j] = 0
                elif act == IDENTITY or act == RELU:
                    d[j] = scale * e
                else:
                    d[j] = scale * e * derivative_from_output(a[j], act)
        for j in range(n):
            db[j] += d[j]
    return total


@njit(cache=True)
def _check_pair(kernel, pred, y):
    check_float_dtypes(kernel, "pred, y", pred, y)
    check_dim(kernel, "y", y.shape[0], "pred", pred.shape[0], "rows")
    check_dim(kernel, "y", y.shape[1], "pred", pred.shape[1], "columns")


@njit(cache=True)
def mse_loss(pred, y):
    """``C = sum((pred - y)**2) / (2m)``, m = rows; pred, y (m, n). Returns a float."""
    _check_pair("mse_loss", pred, y)
    if pred.shape[0] == 0:
        raise ValueError("mse_loss: pred has 0 rows; the mean over no samples is undefined")
    return half_sse(pred, y) / pred.shape[0]


@njit(cache=True, fastmath={"contract"})
def mse_grad(pred, y, out):
    """``out = (pred - y) / m``, the gradient of ``mse_loss`` with respect to pred; all (m, n)."""
    _check_pair("mse_grad", pred, y)
    check_float_dtypes("mse_grad", "pred, out", pred, out)
    check_dim("mse_grad", "out", out.shape[0], "pred", pred.shape[0], "rows")
    check_dim("mse_grad", "out", out.shape[1], "pred", pred.shape[1], "columns")
    m, n = pred.shape
    if m == 0:
        return
    inv_m = 1.0 / m
    for i in range(m):
        for j in range(n):
            out[i, j] = (pred[i, j] - y[i, j]) * inv_m


# ----------------------------------------------------------------------------- cross-entropy

@njit(cache=True)
def _check_logits(kernel, Z, Y):
    check_float_dtypes(kernel, "Z, Y", Z, Y)
    check_dim(kernel, "Y", Y.shape[0], "Z", Z.shape[0], "rows")
    check_dim(kernel, "Y", Y.shape[1], "Z", Z.shape[1], "columns")
    if Z.shape[0] == 0:
        raise ValueError(kernel + ": Z has 0 rows; the mean over no samples is undefined")


@njit(cache=True)
def _check_out(kernel, Z, out):
    check_float_dtypes(kernel, "Z, out", Z, out)
    check_dim(kernel, "out", out.shape[0], "Z", Z.shape[0], "rows")
    check_dim(kernel, "out", out.shape[1], "Z", Z.shape[1], "columns")


@njit(cache=True)
def softmax_cross_entropy(Z, Y):
    """``C = -sum(Y * log_softmax(Z)) / m`` from logits Z (m, n) and targets Y (m, n).

    Y holds one-hot rows or class probabilities. Returns a float.
    """
    _check_logits("softmax_cross_entropy", Z, Y)
    total = 0.0
    for i in range(Z.shape[0]):
        total += softmax_ce_row(Z[i], Y[i], Z[i], 0.0)
    return total / Z.shape[0]


@njit(cache=True)
def softmax_cross_entropy_grad(Z, Y, out):
    """``out = (softmax(Z) * Y.sum(axis=1, keepdims=True) - Y) / m``: dC/dZ; all (m, n)."""
    _check_logits("softmax_cross_entropy_grad", Z, Y)
    _check_out("softmax_cross_entropy_grad", Z, out)
    scale = 1.0 / Z.shape[0]
    for i in range(Z.shape[0]):
        softmax_ce_row(Z[i], Y[i], out[i], scale)


@njit(cache=True)
def sigmoid_binary_cross_entropy(Z, Y):
    """``C = sum(max(Z, 0) - Z Y + log1p(exp(-|Z|))) / m``: BCE of sigmoid(Z) against Y in [0, 1].

    Z, Y (m, n); summed over outputs, averaged over rows. Returns a float.
    """
    _check_logits("sigmoid_binary_cross_entropy", Z, Y)
    m, n = Z.shape
    total = 0.0
    for i in range(m):
        for j in range(n):
            total += sigmoid_bce_element(Z[i, j], Y[i, j])
    return total / m


@njit(cache=True)
def sigmoid_binary_cross_entropy_grad(Z, Y, out):
    """``out = (sigmoid(Z) - Y) / m``: dC/dZ; all (m, n)."""
    _check_logits("sigmoid_binary_cross_entropy_grad", Z, Y)
    _check_out("sigmoid_binary_cross_entropy_grad", Z, out)
    m, n = Z.shape
    scale = 1.0 / m
    for i in range(m):
        for j in range(n):
            out[i, j] = scale * (sigmoid_scalar(Z[i, j]) - Y[i, j])


@njit(cache=True)
def softmax(Z, out):
    """``out = exp(Z - max) / sum(exp(Z - max))`` row by row: probabilities from logits (m, n)."""
    _check_out("softmax", Z, out)
    m, n = Z.shape
    for i in range(m):
        top = Z[i, 0]
        for j in range(1, n):
            top = max(top, Z[i, j])
        s = 0.0
        for j in range(n):
            out[i, j] = np.exp(Z[i, j] - top)
            s += out[i, j]
        for j in range(n):
            out[i, j] /= s


@njit(cache=True)
def sigmoid(Z, out):
    """``out = 1 / (1 + exp(-Z))`` elementwise, without overflow; Z, out (m, n)."""
    _check_out("sigmoid", Z, out)
    m, n = Z.shape
    for i in range(m):
        for j in range(n):
            out[i, j] = sigmoid_scalar(Z[i, j])
