"""Activation functions and their derivatives, applied in passes that happen anyway.

Activations are small integer codes so that a whole network's description is an int
array that compiled code can read. The derivative of every activation here is computed
from the layer's *output* ``A`` (for ReLU ``A > 0`` exactly where ``Z > 0``), so the
forward pass never keeps ``Z``.
"""

from numba import njit

from ._checks import check_dim, check_float_dtypes

IDENTITY = 0
RELU = 1

#: Activation name -> code, the table the model layer validates names against.
ACTIVATIONS = {"identity": IDENTITY, "relu": RELU}

_FAST = {"contract"}  # fused multiply-add is fine; no reassociation: keeps NaN checks exact


@njit(cache=True, fastmath=_FAST, inline="always")
def activate(z, act):
    """sigma(z) for one element; NaN stays NaN (as np.maximum) so divergence is seen."""
    if act == RELU:
        if z > 0 or z != z:
            return z
        return 0.0
    return z


@njit(cache=True, fastmath=_FAST, inline="always")
def derivative_from_output(a, act):
    """sigma'(z) for one element, from a = sigma(z)."""
    if act == RELU:
        return 1 if a > 0 else 0
    return 1


@njit(cache=True, fastmath=_FAST)
def add_bias_activate(out, b, act):
    """In place ``out[i, j] = sigma(out[i, j] + b[j])``: bias and activation in one sweep.

    out (m, n), b (n,).
    """
    m, n = out.shape
    for i in range(m):
        row = out[i]
        for j in range(n):
            row[j] = activate(row[j] + b[j], act)


@njit(cache=True, fastmath=_FAST)
def backprop_activation(A, G, db, act, accumulate):
    """In place ``G *= sigma'(A)``, and ``db = G.sum(axis=0)`` (``+=`` with accumulate).

    A, G (m, n); db (n,). The bias gradient rides along in the sweep that forms the error
    term instead of costing a pass of its own.
    """
    m, n = G.shape
    if not accumulate:
        db[:] = 0
    for i in range(m):
        g = G[i]
        a = A[i]
        for j in range(n):
            if act == RELU and a[j] <= 0:
                g[j] = 0
            db[j] += g[j]


@njit(cache=True)
def relu_mask(A, G):
    """In place ``G[i, j] = 0`` wherever ``A[i, j] <= 0``: backprop through ReLU.

    A, G (m, n), the layer's stored activations and the gradient with respect to them.
    """
    check_float_dtypes("relu_mask", "A, G", A, G)
    check_dim("relu_mask", "G", G.shape[0], "A", A.shape[0], "rows")
    check_dim("relu_mask", "G", G.shape[1], "A", A.shape[1], "columns")
    m, n = G.shape
    for i in range(m):
        for j in range(n):
            if A[i, j] <= 0:
                G[i, j] = 0
