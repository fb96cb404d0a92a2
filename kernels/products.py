"""Matrix products for training: compiled loops, register tiles or BLAS, by size.

A BLAS call has a fixed cost before it multiplies anything (argument checks, packing both
operands into buffers, thread hand-off), and BLAS kernels are tuned for products whose
every side is wide. So training picks, for each product:

- a **loop** compiled into the caller for layers a few units wide: the forward product of
  an output layer of 1 to 4 units (dot form, ``kernels.dense.forward_loop``) and the
  weight gradient of a one-unit layer (``1 x n_in x m``), where BLAS's fixed cost is many
  times the arithmetic;
- **register tiles** (``kernels.tiled``) for every other product up to a size: on a
  tabular network's 64-wide products they beat OpenBLAS on one core, which packs both
  operands first;
- **BLAS** for larger products, where its cache blocking and its second thread win.

The loops are written in the axpy form ``C[i, :] += sum_p A[i, p] * B[p, :]``: the inner
loop runs along a contiguous row of ``B`` and ``C`` with no reduction, so LLVM vectorizes
it without reassociating anything, and four ``p`` are combined per pass so that each load
and store of ``C`` carries four fused multiply-adds.

The thresholds (``*_LOOP_MAX_OUTPUTS``, ``*_TILED_MAX_MACS``) live in ``kernels.config``
and are imported here: they are the crossovers that ``python -m benchmarks.tune_small``
measures over a grid of shapes for each kind of product. The rates and the tuning runs
are in docs/performance.md, "Small products: loops, register tiles, BLAS".
"""


from ._cache import BORROWED, CACHE, njit
from ._blas import gemm_a_b, gemm_a_bt, gemm_at_b  # noqa: F401  (public here: the BLAS product)
from ._checks import cast_like
from .config import (BACKPROP_LOOP_MAX_OUTPUTS, BACKPROP_TILED_MAX_MACS,  # noqa: F401 (public here)
                     FASTMATH_ELEMENTWISE, FORWARD_LOOP_MAX_OUTPUTS, FORWARD_TILED_MAX_MACS,
                     GRADIENT_LOOP_MAX_OUTPUTS, GRADIENT_TILED_MAX_MACS)
from .tiled import tiled_a_b, transpose_into, unit_rows
from .views import matrix_view


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def loop_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C``; A (m, k) of any strides, B (k, n), C (m, n) C order.

    ``alpha`` and ``beta`` are cast to C's dtype first: a float64 scalar would otherwise
    promote the float32 inner loop to double precision and halve its speed.
    """
    m, k = A.shape
    n = B.shape[1]
    alpha = cast_like(alpha, C)
    beta = cast_like(beta, C)
    for i in range(m):
        # Elements by index, not row views (c = C[i]): each view of an array costs an
        # atomic increment and decrement of its reference count, and this runs once per
        # row of a minibatch.
        if beta == 0:
            for j in range(n):
                C[i, j] = 0
        elif beta != 1:
            for j in range(n):
                C[i, j] *= beta
        p = 0
        while p + 4 <= k:
            a0 = alpha * A[i, p]
            a1 = alpha * A[i, p + 1]
            a2 = alpha * A[i, p + 2]
            a3 = alpha * A[i, p + 3]
            for j in range(n):
                C[i, j] += (a0 * B[p, j] + a1 * B[p + 1, j] + a2 * B[p + 2, j]
                            + a3 * B[p + 3, j])
            p += 4
        while p < k:
            a0 = alpha * A[i, p]
            for j in range(n):
                C[i, j] += a0 * B[p, j]
            p += 1


@njit(cache=CACHE, **BORROWED)
def product_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C``; A (m, k), B (k, n), C (m, n), all C order.

    In training A is the error term ``delta`` (m, n_out) and B the weights (n_out, n_in).
    """
    m, k = A.shape
    if k <= BACKPROP_LOOP_MAX_OUTPUTS:
        loop_a_b(A, B, C, alpha, beta)
    elif m * k * B.shape[1] <= BACKPROP_TILED_MAX_MACS and unit_rows(B) and unit_rows(C):
        tiled_a_b(A, B, C, alpha, beta)
    else:
        gemm_a_b(A, B, C, alpha, beta)


@njit(cache=CACHE, **BORROWED)
def product_at_b(A, B, C, alpha, beta):
    """``C = alpha * A.T @ B + beta * C``; A (m, p), B (m, q), C (p, q), all C order.

    In training A is the error term ``delta`` (m, n_out), B the layer's input (m, n_in).
    """
    m, p = A.shape
    if p <= GRADIENT_LOOP_MAX_OUTPUTS:
        loop_a_b(A.T, B, C, alpha, beta)
    elif m * p * B.shape[1] <= GRADIENT_TILED_MAX_MACS and unit_rows(B) and unit_rows(C):
        tiled_a_b(A.T, B, C, alpha, beta)
    else:
        gemm_at_b(A, B, C, alpha, beta)


@njit(cache=CACHE)
def forward_scratch_size(m, n_out, n_in):
    """Elements of scratch the forward product of a layer (n_out, n_in) over ``m`` rows needs
    for its copy of ``W.T``: ``n_out * n_in`` when it is small enough for register tiles,
    else 0 (it goes to BLAS)."""
    return n_out * n_in if m * n_out * n_in <= FORWARD_TILED_MAX_MACS else 0


@njit(cache=CACHE, **BORROWED)
def product_a_bt_transposed(X, W, WT, out):
    """``product_a_bt`` with ``W.T`` at hand in WT (k, n): the register tiles read it
    instead of a fresh copy (a data-parallel step keeps every layer's ``W.T`` up to date,
    ``kernels.parallel``, rather than copy it once a shard); a BLAS call for large
    products, as there."""
    n, k = W.shape
    if forward_scratch_size(X.shape[0], n, k) > 0 and unit_rows(X) and unit_rows(out):
        tiled_a_b(X, WT, out, 1.0, 0.0)
    else:
        gemm_a_bt(X, W, out, 1.0, 0.0)


@njit(cache=CACHE, **BORROWED)
def product_a_bt(X, W, out, scratch):
    """``out = X @ W.T``; X (m, k), W (n, k), out (m, n), all C order; scratch 1-D.

    Register tiles on ``W.T`` copied into ``scratch`` when the product is small enough and
    scratch has room for it (``forward_scratch_size``), else a BLAS call. Layers thin enough
    for the forward loop (``FORWARD_LOOP_MAX_OUTPUTS``) never come here: that loop adds the
    bias and activation in the same pass (``kernels.dense._forward``).
    """
    n, k = W.shape
    size = forward_scratch_size(X.shape[0], n, k)
    if size > 0 and scratch.shape[0] >= size and unit_rows(X) and unit_rows(out):
        WT = matrix_view(scratch, 0, k, n)
        transpose_into(W, WT)
        tiled_a_b(X, WT, out, 1.0, 0.0)
    else:
        gemm_a_bt(X, W, out, 1.0, 0.0)
