"""Costs and their gradients: mean squared error, softmax cross-entropy, sigmoid BCE, Poisson.

Every cost is a sum over a row's outputs, averaged over rows (as docs/MATH.md's MSE):

- ``MSE``: ``C = sum((a - y)**2) / (2m)`` on the output activations ``a``;
- ``SOFTMAX_CE``: ``C = -sum(y * log_softmax(z)) / m`` on the logits ``z``;
- ``SIGMOID_BCE``: ``C = -sum(y log s(z) + (1 - y) log(1 - s(z))) / m`` on the logits;
- ``POISSON``: ``C = sum(exp(z) - y z) / m`` on the log of the predicted rate ``z`` (a log
  link: the prediction is ``exp(z)``). This is the half Poisson deviance
  ``sum(y log(y / exp(z)) - y + exp(z)) / m`` (scikit-learn's ``MLPRegressor(loss="poisson")``,
  McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 1989, section 6.2) less
  ``sum(y log y - y) / m``, which does not depend on the network; its gradient is
  ``exp(z) - y``.

Every cost may weight its rows (``sample_weight``): ``C = sum_i w_i c_i / sum_i w_i``, the
weighted mean scikit-learn's estimators minimise (integer weights count a row that many
times).

The two cross-entropies take logits, never probabilities: ``log_softmax`` is formed as
``z - max(z) - log(sum(exp(z - max(z))))`` and the BCE as
``max(z, 0) - z y + log1p(exp(-|z|))``, so no exp overflows and no log sees 0. Their
gradient with respect to the logits is ``softmax(z) * sum(y) - y`` and ``s(z) - y``.
"""

import numpy as np
from numba import njit

from .errors import InvalidValueError
from ._cache import CACHE
from ._checks import (MATRIX, MATRIX_OUT, cast_like, check_same_or_separate,
                      check_same_shape, check_types, kernel)
from .activations import IDENTITY, RELU, _derivative_from_output, _sigmoid_scalar
from .config import FASTMATH_ELEMENTWISE
from .variants import LOSSES, MSE, N_LOSSES, POISSON, SIGMOID_BCE, SOFTMAX_CE  # noqa: F401

# Each cost is written once, as a function of one row ``i`` of 2-D arrays (indexed in
# place: a row view costs a call into Numba's runtime, more than a 1-output row's whole
# arithmetic): it returns the row's cost and, when ``scale != 0``, writes ``D[i] = scale *
# dC/dz`` (the error term). Training (``_output_delta``) and the public cost and gradient
# kernels all call these.


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _mse_element(a, y, act, scale):
    """(``(a - y)**2 / 2`` in float64, ``scale * (a - y) * sigma'(a)``) of one output."""
    e = a - y
    d = scale * e
    if act == RELU:
        # Times 1 or 0 rather than "0 if a <= 0 else d": LLVM compiled that to a branch,
        # mispredicted on about half the rows of a ReLU output. NaN stays NaN either way.
        d *= cast_like(a > 0, d)
    elif act != IDENTITY:
        d *= _derivative_from_output(a, act)
    return 0.5 * np.float64(e) * np.float64(e), d


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _mse_row(A, Y, D, i, act, scale):
    """``sum((a - y)**2) / 2`` of row i in float64, and ``D[i] = scale * (a - y) * sigma'(a)``."""
    total = 0.0
    for j in range(A.shape[1]):
        cost, d = _mse_element(A[i, j], Y[i, j], act, scale)
        total += cost
        if scale != 0:
            D[i, j] = d
    return total


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE)
def _softmax_ce_row(Z, Y, D, i, scale):
    """Row i's cross-entropy from logits Z (m, n), and ``D[i] = scale * dC/dz`` when scale != 0."""
    n = Z.shape[1]
    top = Z[i, 0]
    for j in range(1, n):
        top = max(top, Z[i, j])
    s = 0.0
    for j in range(n):
        s += np.exp(np.float64(Z[i, j]) - top)
    lse = top + np.log(s)
    loss = 0.0
    ysum = 0.0
    for j in range(n):
        loss -= np.float64(Y[i, j]) * (np.float64(Z[i, j]) - lse)
        ysum += Y[i, j]
    if scale != 0:
        for j in range(n):
            D[i, j] = scale * (np.exp(np.float64(Z[i, j]) - lse) * ysum - Y[i, j])
    return loss


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _sigmoid_bce_row(Z, Y, D, i, scale):
    """Row i's ``sum(max(z, 0) - z y + log1p(exp(-|z|)))`` in float64 (stable for any z), and
    ``D[i] = scale * (s(z) - y)`` when scale != 0."""
    total = 0.0
    for j in range(Z.shape[1]):
        z = np.float64(Z[i, j])
        total += max(z, 0.0) - z * Y[i, j] + np.log1p(np.exp(-abs(z)))
        if scale != 0:
            D[i, j] = scale * (_sigmoid_scalar(Z[i, j]) - Y[i, j])
    return total


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _poisson_row(Z, Y, D, i, scale):
    """Row i's ``sum(exp(z) - y z)`` in float64 from log rates Z, and
    ``D[i] = scale * (exp(z) - y)`` when scale != 0. A z beyond about 709 makes the cost
    infinite (float64's exp overflows): training reports it as divergence."""
    total = 0.0
    for j in range(Z.shape[1]):
        z = np.float64(Z[i, j])
        rate = np.exp(z)
        total += rate - np.float64(Y[i, j]) * z
        if scale != 0:
            D[i, j] = scale * (rate - Y[i, j])
    return total


@njit(cache=CACHE, inline="always")
def _cost_row(A, Y, D, i, act, loss, scale):
    """The row function of cost code ``loss``, on row i."""
    if loss == SOFTMAX_CE:
        return _softmax_ce_row(A, Y, D, i, scale)
    if loss == SIGMOID_BCE:
        return _sigmoid_bce_row(A, Y, D, i, scale)
    if loss == POISSON:
        return _poisson_row(A, Y, D, i, scale)
    return _mse_row(A, Y, D, i, act, scale)


@njit(cache=CACHE)
def _output_delta(A, Y, delta, db, act, loss, scale, accumulate, weights):
    """Output error term, its bias gradient and the cost in one sweep.

    ``delta = scale * w_i * dc_i/dZ`` of the output layer (``scale = 1/m`` for the batch
    mean, ``1 / sum(w)`` for a weighted one): ``(A - Y) * sigma'(A)`` for MSE,
    ``softmax(A) * sum(Y) - Y`` and ``s(A) - Y`` for the cross-entropies, whose ``A`` are
    the logits (the layer's activation is identity), ``exp(A) - Y`` for Poisson.
    ``weights`` (m,) are the rows' weights ``w_i``, or empty for all 1.
    ``db = delta.sum(axis=0)`` (``+=`` with accumulate; untouched when scale is 0).
    A, Y, delta (m, n); db (n,). Returns the batch's summed cost ``sum_i w_i c_i`` in
    float64 (for MSE ``c_i = sum((a_i - y_i)**2) / 2``).
    """
    m, n = A.shape
    if scale != 0 and not accumulate:
        db[:] = 0
    weighted = weights.shape[0] > 0
    total = 0.0
    for i in range(m):
        if not weighted:
            total += _cost_row(A, Y, delta, i, act, loss, scale)
        else:
            w = np.float64(weights[i])
            row_scale = scale * w
            total += w * _cost_row(A, Y, delta, i, act, loss, row_scale)
            if scale != 0 and row_scale == 0:
                # a row of weight 0 counts for nothing, but the row function writes
                # nothing when its scale is 0: clear what an earlier batch left
                for j in range(n):
                    delta[i, j] = 0
        if scale != 0:
            for j in range(n):
                db[j] += delta[i, j]
    return total


@njit(cache=CACHE)
def _check_pair(kernel, pred, y):
    check_same_shape(kernel, "pred, y", y, "y", pred, "pred")
    if pred.shape[0] == 0:
        raise InvalidValueError(kernel + ": pred has 0 rows; the mean over no samples is undefined")


@njit(cache=CACHE)
def _check_out(kernel, Z, out):
    """out (m, n) like Z; out may be Z itself (every kernel here reads a row, or an element,
    of Z before writing the same one of out), but no other view overlapping it."""
    check_same_shape(kernel, "Z, out", out, "out", Z, "Z")
    check_same_or_separate(kernel, "out", out, "Z", Z)


@njit(cache=CACHE)
def _mean_cost(pred, y, loss):
    """The mean over rows of a cost of ``_cost_row``; nothing written."""
    total = 0.0
    for i in range(pred.shape[0]):
        total += _cost_row(pred, y, pred, i, IDENTITY, loss, 0.0)
    return total / pred.shape[0]


@njit(cache=CACHE)
def _mean_gradient(pred, y, out, loss):
    """``out = dC/dpred`` of the mean over rows of a cost of ``_cost_row``."""
    scale = 1.0 / pred.shape[0]
    for i in range(pred.shape[0]):
        _cost_row(pred, y, out, i, IDENTITY, loss, scale)


@kernel
def mse_loss(pred: MATRIX, y: MATRIX):
    """``C = sum((pred - y)**2) / (2m)``, m = rows; pred, y (m, n). Returns a float."""
    check_types("mse_loss", pred, y)
    _check_pair("mse_loss", pred, y)
    return _mean_cost(pred, y, MSE)


@kernel
def mse_grad(pred: MATRIX, y: MATRIX, out: MATRIX_OUT):
    """``out = (pred - y) / m``, the gradient of ``mse_loss`` with respect to pred; all (m, n)."""
    check_types("mse_grad", pred, y, out)
    check_same_shape("mse_grad", "pred, y", y, "y", pred, "pred")
    check_same_shape("mse_grad", "pred, out", out, "out", pred, "pred")
    check_same_or_separate("mse_grad", "out", out, "pred", pred)
    check_same_or_separate("mse_grad", "out", out, "y", y)
    if pred.shape[0] == 0:
        return
    _mean_gradient(pred, y, out, MSE)


# ----------------------------------------------------------------------------- cross-entropy

@njit(cache=CACHE)
def _check_logits(kernel, Z, Y):
    check_same_shape(kernel, "Z, Y", Y, "Y", Z, "Z")
    if Z.shape[0] == 0:
        raise InvalidValueError(kernel + ": Z has 0 rows; the mean over no samples is undefined")


@kernel
def softmax_cross_entropy(Z: MATRIX, Y: MATRIX):
    """``C = -sum(Y * log_softmax(Z)) / m`` from logits Z (m, n) and targets Y (m, n).

    Y holds one-hot rows or class probabilities. Returns a float.
    """
    check_types("softmax_cross_entropy", Z, Y)
    _check_logits("softmax_cross_entropy", Z, Y)
    return _mean_cost(Z, Y, SOFTMAX_CE)


@kernel
def softmax_cross_entropy_grad(Z: MATRIX, Y: MATRIX, out: MATRIX_OUT):
    """``out = (softmax(Z) * Y.sum(axis=1, keepdims=True) - Y) / m``: dC/dZ; all (m, n)."""
    check_types("softmax_cross_entropy_grad", Z, Y, out)
    _check_logits("softmax_cross_entropy_grad", Z, Y)
    _check_out("softmax_cross_entropy_grad", Z, out)
    check_same_or_separate("softmax_cross_entropy_grad", "out", out, "Y", Y)
    _mean_gradient(Z, Y, out, SOFTMAX_CE)


@kernel
def sigmoid_binary_cross_entropy(Z: MATRIX, Y: MATRIX):
    """``C = sum(max(Z, 0) - Z Y + log1p(exp(-|Z|))) / m``: BCE of sigmoid(Z) against Y in [0, 1].

    Z, Y (m, n); summed over outputs, averaged over rows. Returns a float.
    """
    check_types("sigmoid_binary_cross_entropy", Z, Y)
    _check_logits("sigmoid_binary_cross_entropy", Z, Y)
    return _mean_cost(Z, Y, SIGMOID_BCE)


@kernel
def sigmoid_binary_cross_entropy_grad(Z: MATRIX, Y: MATRIX, out: MATRIX_OUT):
    """``out = (sigmoid(Z) - Y) / m``: dC/dZ; all (m, n)."""
    check_types("sigmoid_binary_cross_entropy_grad", Z, Y, out)
    _check_logits("sigmoid_binary_cross_entropy_grad", Z, Y)
    _check_out("sigmoid_binary_cross_entropy_grad", Z, out)
    check_same_or_separate("sigmoid_binary_cross_entropy_grad", "out", out, "Y", Y)
    _mean_gradient(Z, Y, out, SIGMOID_BCE)


@kernel
def poisson_loss(Z: MATRIX, Y: MATRIX):
    """``C = sum(exp(Z) - Y Z) / m``: the half Poisson deviance of rates ``exp(Z)`` against
    counts Y >= 0, less its part that depends on Y alone (see the module's note).

    Z (log rates), Y (m, n); summed over outputs, averaged over rows. Returns a float.
    """
    check_types("poisson_loss", Z, Y)
    _check_logits("poisson_loss", Z, Y)
    return _mean_cost(Z, Y, POISSON)


@kernel
def poisson_loss_grad(Z: MATRIX, Y: MATRIX, out: MATRIX_OUT):
    """``out = (exp(Z) - Y) / m``: dC/dZ of ``poisson_loss``; all (m, n)."""
    check_types("poisson_loss_grad", Z, Y, out)
    _check_logits("poisson_loss_grad", Z, Y)
    _check_out("poisson_loss_grad", Z, out)
    check_same_or_separate("poisson_loss_grad", "out", out, "Y", Y)
    _mean_gradient(Z, Y, out, POISSON)


@kernel
def softmax(Z: MATRIX, out: MATRIX_OUT):
    """``out = exp(Z - max) / sum(exp(Z - max))`` row by row: probabilities from logits (m, n)."""
    check_types("softmax", Z, out)
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


@kernel
def sigmoid(Z: MATRIX, out: MATRIX_OUT):
    """``out = 1 / (1 + exp(-Z))`` elementwise, without overflow; Z, out (m, n)."""
    check_types("sigmoid", Z, out)
    _check_out("sigmoid", Z, out)
    m, n = Z.shape
    for i in range(m):
        for j in range(n):
            out[i, j] = _sigmoid_scalar(Z[i, j])
