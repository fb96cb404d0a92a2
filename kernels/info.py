"""What BLAS the kernels call, with which kernels and threads, and how fast it multiplies."""

import os
import time

import numpy as np

from ._blas import CORETYPE_DECISION, blas_threadpool


def blas_summary():
    """One paragraph: the BLAS library, its core type, threads and the core-type decision."""
    import numba
    info = blas_threadpool() or {}
    lines = [
        "kernels' BLAS: %s %s (%s), core type %s, %s threads" % (
            info.get("internal_api", "?"), info.get("version", "?"),
            os.path.basename(info.get("filepath", "unknown")), info.get("architecture", "?"),
            info.get("num_threads", "?")),
        "core type: %s" % CORETYPE_DECISION,
        "Numba %s, %d threads (kernels run single-threaded; BLAS owns the cores)" % (
            numba.__version__, numba.config.NUMBA_NUM_THREADS),
    ]
    return "\n".join(lines)


def gemm_gflops(n=2048, dtype=np.float32, repeats=3, blas="kernels"):
    """Best GFLOP/s of an n x n x n product through the kernels' BLAS or NumPy's ("numpy")."""
    from .dense import dense_forward
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    b = np.zeros(n, dtype)
    C = np.empty((n, n), dtype)

    def product():
        if blas == "numpy":
            np.matmul(A, B, out=C)
        else:
            dense_forward(A, B, b, C, False)
    product()  # compile / warm up outside the timing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def main():
    print(blas_summary())
    for dtype in (np.float32, np.float64):
        print("GEMM 2048^3 %s: %.0f GFLOP/s" % (np.dtype(dtype).name, gemm_gflops(dtype=dtype)))
