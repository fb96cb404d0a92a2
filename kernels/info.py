"""What BLAS the kernels call, with which kernels and threads, and how fast it multiplies."""

import os
import time

import numpy as np

from . import _cache, config, host
from ._blas import CORETYPE_DECISION, blas_threadpool

#: What each vector width of the register tiles is called.
VECTOR_NAMES = {16: "SSE/NEON", 32: "AVX2", 64: "AVX-512"}
#: The dispatch values ``dispatch_summary`` prints: the tuned ones, then the BLAS threads'.
DISPATCH_NAMES = tuple(config.TUNABLE) + ("SINGLE_THREAD_MAX_MACS",)


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


def tile_vectors():
    """The register tiles' vectors, for a reader: ``64-byte vectors (AVX-512), 8-row
    tiles: the CPU's widest``."""
    width = config.VECTOR_BYTES
    return "%d-byte vectors (%s), %d-row tiles: %s" % (
        width, VECTOR_NAMES.get(width, "?"), config.TILE_ROWS, config.VECTOR_SOURCE)


def dispatch_summary():
    """Lines (one str): the CPU, the vector width the register tiles use, each dispatch
    value in force and where it came from ("packaged" or a tuning file), and where
    compiled code is cached."""
    flags = host.cpu_flags()
    lines = [
        "CPU: %s (%s)" % (host.cpu_model(), ", ".join(
            "%s %s" % (flag, "yes" if have else "no") for flag, have in flags.items())),
        "register tiles: " + tile_vectors(),
        "dispatch values in force:",
    ]
    for name in DISPATCH_NAMES:
        source = config.SOURCES.get(name, "packaged")
        lines.append("  %-26s %10d  %s" % (name, getattr(config, name),
                                           "packaged" if source == "packaged" else
                                           "tuning file"))
    if config.TUNING_FILE is not None:
        lines.append("tuning file: %s" % config.TUNING_FILE)
    else:
        lines.append("tuning file: none in force: %s (python -m numba_dense tune measures "
                     "them)" % config.TUNING_STATUS)
    if _cache.TUNED_DIR is not None:
        lines.append("Numba cache of the tuned kernels: %s" % _cache.TUNED_DIR)
    elif not _cache.CACHE:
        lines.append("Numba cache: off (every process compiles the kernels)")
    else:
        from numba.core import config as numba_config
        lines.append("Numba cache: %s" % (numba_config.CACHE_DIR
                                          or "Numba's default (__pycache__ beside the source)"))
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


def main(rate=True):
    """``python -m numba_dense.kernels info``: the BLAS, the dispatch in force and (when
    ``rate``) the GEMM rate of each dtype."""
    print(blas_summary())
    print(dispatch_summary())
    if not rate:
        return
    for dtype in (np.float32, np.float64):
        print("GEMM 2048^3 %s: %.0f GFLOP/s" % (np.dtype(dtype).name, gemm_gflops(dtype=dtype)))
