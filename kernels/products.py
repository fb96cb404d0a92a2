"""Matrix products for training: a compiled loop for small ones, BLAS for the rest.

A BLAS call has a fixed cost before it multiplies anything (argument checks, buffer
packing, thread hand-off), and BLAS kernels are tuned for products whose every side is
wide. A tabular network's output layer has 1 to 10 units: its weight gradient
``delta.T @ A`` is a ``1 x n_in x m`` product, which took OpenBLAS 1.6 us for
``1 x 32 x 64`` where the loop below needs 0.17 us. For layers that thin these products run
as loops compiled into the caller instead.

The loops are written in the axpy form ``C[i, :] += sum_p A[i, p] * B[p, :]``: the inner
loop runs along a contiguous row of ``B`` and ``C`` with no reduction, so LLVM vectorizes
it without reassociating anything, and four ``p`` are combined per pass so that each load
and store of ``C`` carries four fused multiply-adds.

The thresholds (a layer's output width ``n_out``) are the crossovers that
``python -m benchmarks.tune_small`` measures: it times loop and BLAS over a grid of batch
sizes and widths and prints the threshold that minimizes their summed time. The values
below are its result on the development machine (AMD EPYC, Zen 3, AVX2): over its grid
of 320 shapes a product kind takes 1.03-1.14x the per-shape best with them, against
1.12-2.13x with BLAS always (two runs agreed). The forward threshold rose from 1 to 4 once
the forward loop accumulated float32 in float32 (it had been promoting to float64).
"""

from numba import njit

from ._blas import gemm_a_b, gemm_at_b
from ._checks import cast_like

#: Layers with at most this many outputs compute ``sigma(A @ W.T + b)`` as a loop (dot form).
FORWARD_LOOP_MAX_OUTPUTS = 4
#: ... ``delta @ W`` (backprop to the layer's input) as a loop.
BACKPROP_LOOP_MAX_OUTPUTS = 1
#: ... the weight gradient or update ``W += alpha * delta.T @ A`` as a loop.
GRADIENT_LOOP_MAX_OUTPUTS = 10

_FAST = {"contract"}  # fused multiply-add only: no reassociation, NaN propagates as in BLAS


@njit(cache=True, fastmath=_FAST)
def _loop_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C``; A (m, k) of any strides, B (k, n), C (m, n) C order.

    ``alpha`` and ``beta`` are cast to C's dtype first: a float64 scalar would otherwise
    promote the float32 inner loop to double precision and halve its speed.
    """
    m, k = A.shape
    n = B.shape[1]
    alpha = cast_like(alpha, C)
    beta = cast_like(beta, C)
    for i in range(m):
        c = C[i]
        if beta == 0:
            for j in range(n):
                c[j] = 0
        elif beta != 1:
            for j in range(n):
                c[j] *= beta
        p = 0
        while p + 4 <= k:
            a0 = alpha * A[i, p]
            a1 = alpha * A[i, p + 1]
            a2 = alpha * A[i, p + 2]
            a3 = alpha * A[i, p + 3]
            b0 = B[p]
            b1 = B[p + 1]
            b2 = B[p + 2]
            b3 = B[p + 3]
            for j in range(n):
                c[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
            p += 4
        while p < k:
            a0 = alpha * A[i, p]
            b0 = B[p]
            for j in range(n):
                c[j] += a0 * b0[j]
            p += 1


@njit(cache=True)
def _product_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C``; A (m, k), B (k, n), C (m, n), all C order.

    In training A is the error term ``delta`` (m, n_out) and B the weights (n_out, n_in).
    """
    if A.shape[1] <= BACKPROP_LOOP_MAX_OUTPUTS:
        _loop_a_b(A, B, C, alpha, beta)
    else:
        gemm_a_b(A, B, C, alpha, beta)


@njit(cache=True)
def _product_at_b(A, B, C, alpha, beta):
    """``C = alpha * A.T @ B + beta * C``; A (m, p), B (m, q), C (p, q), all C order.

    In training A is the error term ``delta`` (m, n_out), B the layer's input (m, n_in).
    """
    if A.shape[1] <= GRADIENT_LOOP_MAX_OUTPUTS:
        _loop_a_b(A.T, B, C, alpha, beta)
    else:
        gemm_at_b(A, B, C, alpha, beta)
