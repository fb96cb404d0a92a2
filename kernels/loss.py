"""The mean-squared-error cost ``C = sum((pred - y)**2) / (2m)`` and its gradient."""

import numpy as np
from numba import njit

from ._checks import check_dim, check_float_dtypes
from .activations import RELU


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
def mse_output_delta(A, Y, delta, db, act, scale, accumulate):
    """Output error term, its bias gradient and the loss in one sweep.

    ``delta = scale * (A - Y) * sigma'(A)`` (``scale = 1/m`` for the batch mean) and
    ``db = delta.sum(axis=0)`` (``+=`` with accumulate). A, Y, delta (m, n); db (n,).
    Returns ``sum((A - Y)**2) / 2`` in float64.
    """
    m, n = A.shape
    if not accumulate:
        db[:] = 0
    total = 0.0
    for i in range(m):
        a = A[i]
        y = Y[i]
        d = delta[i]
        for j in range(n):
            e = a[j] - y[j]
            total += np.float64(e) * np.float64(e)
            if act == RELU and a[j] <= 0:
                d[j] = 0
            else:
                d[j] = scale * e
            db[j] += d[j]
    return 0.5 * total


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
