"""Costs and their gradients: mean squared error, softmax cross-entropy, sigmoid BCE, Poisson,
Huber, absolute error and quantile (pinball).

Every cost is a sum over a row's outputs, averaged over rows (as docs/MATH.md's MSE):

- ``MSE``: ``C = sum((a - y)**2) / (2m)`` on the output activations ``a``;
- ``SOFTMAX_CE``: ``C = -sum(y * log_softmax(z)) / m`` on the logits ``z``;
- ``SIGMOID_BCE``: ``C = -sum(y log s(z) + (1 - y) log(1 - s(z))) / m`` on the logits;
- ``POISSON``: ``C = sum(exp(z) - y z) / m`` on the log of the predicted rate ``z`` (a log
  link: the prediction is ``exp(z)``). This is the half Poisson deviance
  ``sum(y log(y / exp(z)) - y + exp(z)) / m`` (scikit-learn's ``MLPRegressor(loss="poisson")``,
  McCullagh & Nelder, *Generalized Linear Models*, 2nd ed., 1989, section 6.2) less
  ``sum(y log y - y) / m``, which does not depend on the network; its gradient is
  ``exp(z) - y``;
- ``HUBER``: ``C = sum(h(a - y)) / m`` with ``h(e) = e**2 / 2`` for ``|e| <= delta``, else
  ``delta (|e| - delta / 2)`` (``delta = HUBER_DELTA = 1``, PyTorch's ``nn.HuberLoss``
  form: it equals MSE's ``e**2 / 2`` within ``delta``); gradient ``clip(e, -delta, delta)``;
- ``ABSOLUTE_ERROR``: ``C = sum(|a - y|) / m``; gradient ``sign(a - y)`` (0 where a == y);
- ``QUANTILE`` at level q (the code carries q: ``variants.quantile_code``): the pinball
  loss ``C = sum(q max(y - a, 0) + (1 - q) max(a - y, 0)) / m`` (Koenker & Bassett,
  "Regression Quantiles", Econometrica 46, 1978; scikit-learn's ``mean_pinball_loss``),
  minimised by the q-th conditional quantile; gradient ``1 - q`` where ``a > y``, ``-q``
  where ``a < y``, 0 where equal (at q = 0.5 half the absolute error's).

The last three train an identity output (``a = z``), scikit-learn gradient boosting's
``loss="huber"``, ``"absolute_error"``, ``"quantile"``.

Every cost may weight its rows (``sample_weight``): ``C = sum_i w_i c_i / sum_i w_i``, the
weighted mean scikit-learn's estimators minimise (integer weights count a row that many
times).

The two cross-entropies take logits, never probabilities: ``log_softmax`` is formed as
``z - max(z) - log(sum(exp(z - max(z))))`` and the BCE as
``max(z, 0) - z y + log1p(exp(-|z|))``, so no exp overflows and no log sees 0. Their
gradient with respect to the logits is ``softmax(z) * sum(y) - y`` and ``s(z) - y``.
"""

import numpy as np
from numba.extending import register_jitable

from .errors import InvalidValueError
from ._cache import BORROWED, CACHE, njit
from ._checks import (MATRIX, MATRIX_OUT, REAL, check_same_or_separate,
                      check_same_shape, check_types, kernel)
from .activations import (GELU, IDENTITY, RELU, SILU, _derivative_from_output,
                          _sigmoid_scalar)
from .config import FASTMATH_ELEMENTWISE
from .variants import (ABSOLUTE_ERROR, HUBER, HUBER_DELTA, LOSSES, MSE, N_LOSSES,  # noqa: F401
                       POISSON, QUANTILE, QUANTILE_STEPS, SIGMOID_BCE, SOFTMAX_CE,
                       quantile_code)

# Each cost is written once. Every cost but softmax cross-entropy is a sum of one function
# of each output, written as an element function of scalars (``_cost_element``: the
# element's cost in float64 and ``scale * dc/dz``); softmax cross-entropy needs its whole
# row (``_softmax_ce_rows``). ``_cost_rows`` runs either over a batch: the rows' loop is
# inside it, and no function inside the loop takes an array. That matters: every call of
# an inlined function with array arguments increments and decrements the arrays'
# reference counts (atomic instructions), and when the row functions were called once per
# row with the arrays, those took more than half of a 10-32-1 network's minibatch step
# (AMD EPYC Zen 5; ``perf`` and gdb stacks). Training (``_output_delta``) and the public
# cost and gradient kernels all call ``_cost_rows``.


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _cost_element(a, y, act, loss, scale):
    """``(c, d)`` of one output: its cost ``c`` in float64 and ``d = scale * dc/dz``, for
    every cost code but ``SOFTMAX_CE``; ``a`` is the activation (MSE, with the output
    layer's activation ``act``), the logit (sigmoid BCE), the log rate (Poisson) or the
    identity output (Huber, absolute error, quantile); ``y`` its target."""
    if loss == SIGMOID_BCE:
        # max(z, 0) - z y + log1p(exp(-|z|)): stable for any z
        z = np.float64(a)
        return (max(z, 0.0) - z * y + np.log1p(np.exp(-abs(z))),
                scale * (_sigmoid_scalar(a) - y))
    if loss == POISSON:
        # exp(z) - y z from the log rate z; a z beyond about 709 makes the cost infinite
        # (float64's exp overflows): training reports it as divergence
        z = np.float64(a)
        rate = np.exp(z)
        return rate - np.float64(y) * z, scale * (rate - y)
    if loss == HUBER:
        e = np.float64(a) - np.float64(y)
        size = abs(e)
        if size <= HUBER_DELTA:
            cost = 0.5 * e * e
        else:  # NaN lands here too: its cost stays NaN
            cost = HUBER_DELTA * (size - 0.5 * HUBER_DELTA)
        return cost, scale * min(max(e, -HUBER_DELTA), HUBER_DELTA)
    if loss == ABSOLUTE_ERROR:
        e = np.float64(a) - np.float64(y)
        return abs(e), scale * (np.float64(e > 0) - np.float64(e < 0))
    if loss >= QUANTILE:  # the level rides in the code (kernels.variants.QUANTILE_STEPS)
        q = (loss - QUANTILE + 1) / QUANTILE_STEPS
        e = np.float64(a) - np.float64(y)
        cost = (1.0 - q) * e if e > 0 else -q * e  # NaN: -q * NaN, NaN
        return cost, scale * ((1.0 - q) * np.float64(e > 0) - q * np.float64(e < 0))
    # MSE: (a - y)**2 / 2 and scale * (a - y) * sigma'(a)
    e = a - y
    d = scale * np.float64(e)
    if act == RELU:
        # Times 1 or 0 rather than "0 if a <= 0 else d": LLVM compiled that to a branch,
        # mispredicted on about half the rows of a ReLU output. NaN stays NaN either way.
        d *= np.float64(a > 0)
    elif act != IDENTITY:
        d *= _derivative_from_output(a, act)
    return 0.5 * np.float64(e) * np.float64(e), d


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def _softmax_ce_rows(Z, Y, D, scale, weights):
    """``sum_i w_i c_i``, row i's cross-entropy ``c_i`` from logits Z (m, n), and
    ``D[i] = scale * w_i * dc_i/dz`` when ``scale != 0`` (``weights`` and rows of weight 0
    as ``_cost_rows``'s)."""
    m, n = Z.shape
    weighted = weights.shape[0] > 0
    total = 0.0
    for i in range(m):
        w = np.float64(weights[i]) if weighted else 1.0
        row_scale = scale * w
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
        if row_scale != 0:
            for j in range(n):
                D[i, j] = row_scale * (np.exp(np.float64(Z[i, j]) - lse) * ysum - Y[i, j])
        elif scale != 0:  # a row of weight 0: no error term (not 0 times its NaN or inf)
            for j in range(n):
                D[i, j] = 0
        total += w * loss
    return total


@njit(cache=CACHE, **BORROWED)
def _cost_rows(A, Y, D, act, loss, scale, weights):
    """``sum_i w_i c_i`` in float64 over the rows of A, Y (m, n) for cost code ``loss``,
    and, when ``scale != 0``, ``D[i] = scale * w_i * dc_i/dz`` (zeros for a row of weight
    0, whatever its cost; D (m, n) may be A itself when ``scale`` is 0: nothing is written
    then). ``weights`` (m,) are the rows'
    weights ``w_i``, or empty for all 1 (multiplying by 1.0 is exact: the same results bit
    for bit as no weights)."""
    m, n = A.shape
    weighted = weights.shape[0] > 0
    total = 0.0
    if loss == SOFTMAX_CE:
        return _softmax_ce_rows(A, Y, D, scale, weights)
    for i in range(m):
        w = np.float64(weights[i]) if weighted else 1.0
        row_scale = scale * w
        row = 0.0
        for j in range(n):
            cost, d = _cost_element(A[i, j], Y[i, j], act, loss, row_scale)
            row += cost
            if row_scale != 0:
                D[i, j] = d
            elif scale != 0:  # a row of weight 0: no error term (not 0 times its NaN or inf)
                D[i, j] = 0
        total += w * row
    return total


@njit(cache=CACHE, **BORROWED)
def _output_delta(A, Y, delta, db, act, loss, scale, accumulate, weights):
    """Output error term, its bias gradient and the cost.

    ``delta = scale * w_i * dc_i/dZ`` of the output layer (``scale = 1/m`` for the batch
    mean, ``1 / sum(w)`` for a weighted one): ``(A - Y) * sigma'(A)`` for MSE,
    ``softmax(A) * sum(Y) - Y`` and ``s(A) - Y`` for the cross-entropies, whose ``A`` are
    the logits (the layer's activation is identity), ``exp(A) - Y`` for Poisson,
    ``clip(A - Y, -1, 1)`` for Huber, ``sign(A - Y)`` for the absolute error and
    ``(1 - q) [A > Y] - q [A < Y]`` for the quantile loss at level q.
    ``weights`` (m,) are the rows' weights ``w_i``, or empty for all 1.
    ``db = delta.sum(axis=0)`` (``+=`` with accumulate; untouched when scale is 0).
    A, Y, delta (m, n); db (n,). Returns the batch's summed cost ``sum_i w_i c_i`` in
    float64 (for MSE ``c_i = sum((a_i - y_i)**2) / 2``).
    """
    m, n = A.shape
    if act == GELU or act == SILU:  # once a call: sigma'(z) is no function of A for these
        raise InvalidValueError("the output layer's activation is gelu or silu, whose "
                                "derivative needs Z: use them on hidden layers' kernels "
                                "with activation_backward_z (docs/kernels.md)")
    total = _cost_rows(A, Y, delta, act, loss, scale, weights)
    if scale == 0:
        return total
    if not accumulate:
        for j in range(n):
            db[j] = 0
    for i in range(m):
        for j in range(n):
            db[j] += delta[i, j]
    return total


@register_jitable
def _check_pair(kernel, pred, y):
    check_same_shape(kernel, "pred, y", y, "y", pred, "pred")
    if pred.shape[0] == 0:
        raise InvalidValueError("%s: pred has 0 rows; the mean over no samples is undefined",
                                kernel)


@register_jitable
def _check_out(kernel, Z, out):
    """out (m, n) like Z; out may be Z itself (every kernel here reads a row, or an element,
    of Z before writing the same one of out), but no other view overlapping it."""
    check_same_shape(kernel, "Z, out", out, "out", Z, "Z")
    check_same_or_separate(kernel, "out", out, "Z", Z)


@njit(cache=CACHE)
def _mean_cost(pred, y, loss):
    """The mean over rows of a cost of ``_cost_rows``; nothing written."""
    return _cost_rows(pred, y, pred, IDENTITY, loss, 0.0,
                      np.empty(0, np.float64)) / pred.shape[0]


@njit(cache=CACHE)
def _mean_gradient(pred, y, out, loss):
    """``out = dC/dpred`` of the mean over rows of a cost of ``_cost_rows``."""
    _cost_rows(pred, y, out, IDENTITY, loss, 1.0 / pred.shape[0], np.empty(0, np.float64))


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

@register_jitable
def _check_logits(kernel, Z, Y):
    check_same_shape(kernel, "Z, Y", Y, "Y", Z, "Z")
    if Z.shape[0] == 0:
        raise InvalidValueError("%s: Z has 0 rows; the mean over no samples is undefined", kernel)


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
def huber_loss(pred: MATRIX, y: MATRIX):
    """``C = sum(h(pred - y)) / m``, Huber's cost with ``delta = HUBER_DELTA`` (1):
    ``h(e) = e**2 / 2`` where ``|e| <= 1``, else ``|e| - 1/2``. pred, y (m, n), one float
    dtype; ``ValueError`` for 0 rows or mismatched shapes. Returns a float."""
    check_types("huber_loss", pred, y)
    _check_pair("huber_loss", pred, y)
    return _mean_cost(pred, y, HUBER)


@kernel
def huber_loss_grad(pred: MATRIX, y: MATRIX, out: MATRIX_OUT):
    """``out = clip(pred - y, -1, 1) / m``: dC/dpred of ``huber_loss``; all (m, n)."""
    check_types("huber_loss_grad", pred, y, out)
    _check_pair("huber_loss_grad", pred, y)
    _check_out("huber_loss_grad", pred, out)
    check_same_or_separate("huber_loss_grad", "out", out, "y", y)
    _mean_gradient(pred, y, out, HUBER)


@kernel
def absolute_error_loss(pred: MATRIX, y: MATRIX):
    """``C = sum(|pred - y|) / m``; pred, y (m, n), one float dtype; ``ValueError`` for 0
    rows or mismatched shapes. Returns a float."""
    check_types("absolute_error_loss", pred, y)
    _check_pair("absolute_error_loss", pred, y)
    return _mean_cost(pred, y, ABSOLUTE_ERROR)


@kernel
def absolute_error_loss_grad(pred: MATRIX, y: MATRIX, out: MATRIX_OUT):
    """``out = sign(pred - y) / m`` (0 where equal): dC/dpred of ``absolute_error_loss``;
    all (m, n)."""
    check_types("absolute_error_loss_grad", pred, y, out)
    _check_pair("absolute_error_loss_grad", pred, y)
    _check_out("absolute_error_loss_grad", pred, out)
    check_same_or_separate("absolute_error_loss_grad", "out", out, "y", y)
    _mean_gradient(pred, y, out, ABSOLUTE_ERROR)


@register_jitable
def _quantile_code(kernel, quantile):
    """``variants.quantile_code`` in compiled code: ``ValueError`` naming ``quantile``
    unless it is a multiple of 1 / QUANTILE_STEPS in (0, 1)."""
    k = round(quantile * QUANTILE_STEPS)
    if not (0 < quantile < 1) or abs(k - quantile * QUANTILE_STEPS) > 1e-6:
        raise InvalidValueError("%s: quantile must be a multiple of 0.0001 in (0, 1), got %g",
                                kernel, quantile)
    return QUANTILE + np.int64(k) - 1


@kernel
def quantile_loss(pred: MATRIX, y: MATRIX, quantile: REAL):
    """``C = sum(q max(y - pred, 0) + (1 - q) max(pred - y, 0)) / m``: the pinball loss at
    level ``q = quantile``, a multiple of 0.0001 in (0, 1) (``ValueError`` otherwise).
    pred, y (m, n), one float dtype. Returns a float."""
    check_types("quantile_loss", pred, y, quantile)
    _check_pair("quantile_loss", pred, y)
    return _mean_cost(pred, y, _quantile_code("quantile_loss", quantile))


@kernel
def quantile_loss_grad(pred: MATRIX, y: MATRIX, quantile: REAL, out: MATRIX_OUT):
    """``out = ((1 - q) [pred > y] - q [pred < y]) / m``: dC/dpred of ``quantile_loss``;
    all (m, n)."""
    check_types("quantile_loss_grad", pred, y, quantile, out)
    _check_pair("quantile_loss_grad", pred, y)
    _check_out("quantile_loss_grad", pred, out)
    check_same_or_separate("quantile_loss_grad", "out", out, "y", y)
    _mean_gradient(pred, y, out, _quantile_code("quantile_loss_grad", quantile))


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
