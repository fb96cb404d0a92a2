"""The dense layer: forward pass (matrix product, bias, activation) and backprop to the input."""

import numpy as np

from ._cache import BORROWED, CACHE, njit
from ._checks import (FLAG, MATRIX, MATRIX_OUT, VECTOR, cast_like, check_contiguous,
                      check_dim, check_float_dtypes, check_separate, check_types, kernel)
from .activations import IDENTITY, RELU, _activate, add_bias_activate
from .config import FASTMATH_REDUCTION, FORWARD_LOOP_MAX_OUTPUTS
from .products import (product_a_b, product_a_bt, product_a_bt_transposed,
                       forward_scratch_size)


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_REDUCTION)
def forward_loop(X, W, b, out, act):
    """``out = sigma(X @ W.T + b)`` as one loop; X (m, k), W (n, k), b (n,), out (m, n)."""
    m, k = X.shape
    n = W.shape[0]
    for i in range(m):
        for j in range(n):
            s = cast_like(0, out)  # not b[j] * 0: float32 times an int is float64 in numba
            for p in range(k):
                s += X[i, p] * W[j, p]
            out[i, j] = _activate(s + b[j], act)


@njit(cache=CACHE, **BORROWED)
def _forward(X, W, b, out, act, scratch):
    """Unchecked ``out = sigma(X @ W.T + b)``: a loop for thin layers, else the product
    (``kernels.products.product_a_bt``: register tiles on ``W.T`` copied into the 1-D
    ``scratch`` when small, a BLAS call when large) and one sweep for bias and activation.
    """
    if W.shape[0] <= FORWARD_LOOP_MAX_OUTPUTS:
        forward_loop(X, W, b, out, act)
        return
    product_a_bt(X, W, out, scratch)
    add_bias_activate(out, b, act)


@njit(cache=CACHE, **BORROWED)
def _forward_transposed(X, W, WT, b, out, act):
    """``_forward`` with ``W.T`` at hand in WT (n_in, n_out)
    (``kernels.products.product_a_bt_transposed``)."""
    if W.shape[0] <= FORWARD_LOOP_MAX_OUTPUTS:
        forward_loop(X, W, b, out, act)
        return
    product_a_bt_transposed(X, W, WT, out)
    add_bias_activate(out, b, act)


@kernel
def dense_forward(X: MATRIX, W: MATRIX, b: VECTOR, out: MATRIX_OUT, relu: FLAG):
    """``out = X @ W.T + b``, with ``max(0, .)`` in the same pass when ``relu`` is true.

    X (m, n_in), W (n_out, n_in), b (n_out,), out (m, n_out); all C-contiguous, one dtype;
    ``out`` shares no memory with X, W or b.
    """
    check_types("dense_forward", X, W, b, out, relu)
    check_float_dtypes("dense_forward", "X, W, b, out", X, W, b, out)
    check_dim("dense_forward", "W", W.shape[1], "X", X.shape[1], "columns")
    check_dim("dense_forward", "b", b.shape[0], "W", W.shape[0], "elements (rows of W)")
    check_dim("dense_forward", "out", out.shape[0], "X", X.shape[0], "rows")
    check_dim("dense_forward", "out", out.shape[1], "W", W.shape[0], "columns (rows of W)")
    check_contiguous("dense_forward", "X", X)
    check_contiguous("dense_forward", "W", W)
    check_contiguous("dense_forward", "out", out)
    check_separate("dense_forward", "out", out, "X", X)
    check_separate("dense_forward", "out", out, "W", W)
    check_separate("dense_forward", "out", out, "b", b)
    scratch = np.empty(forward_scratch_size(X.shape[0], W.shape[0], W.shape[1]), W.dtype)
    _forward(X, W, b, out, RELU if relu else IDENTITY, scratch)


@kernel
def backprop_input(delta: MATRIX, W: MATRIX, out: MATRIX_OUT):
    """``out = delta @ W``: the gradient with respect to the layer's input.

    delta (m, n_out), W (n_out, n_in), out (m, n_in); all C-contiguous, one dtype; ``out``
    shares no memory with delta or W.
    """
    check_types("backprop_input", delta, W, out)
    check_float_dtypes("backprop_input", "delta, W, out", delta, W, out)
    check_dim("backprop_input", "W", W.shape[0], "delta", delta.shape[1], "rows (columns of delta)")
    check_dim("backprop_input", "out", out.shape[0], "delta", delta.shape[0], "rows")
    check_dim("backprop_input", "out", out.shape[1], "W", W.shape[1], "columns")
    check_contiguous("backprop_input", "delta", delta)
    check_contiguous("backprop_input", "W", W)
    check_contiguous("backprop_input", "out", out)
    check_separate("backprop_input", "out", out, "delta", delta)
    check_separate("backprop_input", "out", out, "W", W)
    product_a_b(delta, W, out, 1.0, 0.0)
