"""A software prefetch for compiled loops: ask the CPU to start loading a row it needs soon.

The streamed one-layer epoch (config A) reads each row of X once, from memory, and does
about as much arithmetic on it as the read takes. The hardware prefetcher alone left the
two in sequence; asking for a row a few rows ahead overlaps them.
``python -m benchmarks.prefetch_distance`` measures how far ahead
(``kernels.config.PREFETCH_BYTES``); docs/performance.md, "The streamed one-layer epoch
(config A)", has the figures.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import CACHE, njit
from .config import CACHE_LINE_BYTES


def _prefetch_codegen(context, builder, signature, args):
    """``llvm.prefetch`` of the element of array ``args[0]`` at the indices ``args[1:]``."""
    array_type = signature.args[0]
    ary = context.make_array(array_type)(context, builder, args[0])
    index = [context.cast(builder, a, t, types.intp)
             for a, t in zip(args[1:], signature.args[1:])]
    pointer = cgutils.get_item_pointer(context, builder, array_type, ary, index,
                                       wraparound=False, boundscheck=False)
    i8p = ir.IntType(8).as_pointer()
    i32 = ir.IntType(32)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    prefetch = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    # (address, 0 = read, 3 = keep in every cache level, 1 = data cache)
    builder.call(prefetch, [builder.bitcast(pointer, i8p), ir.Constant(i32, 0),
                            ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


@intrinsic
def prefetch_at(typingctx, array, i):
    """``llvm.prefetch`` of ``&array[i]`` of a 1-D array (the cache line holding it), with
    no bounds check: a prefetch never faults, but callers stay in bounds."""
    if not (isinstance(array, types.Array) and array.ndim == 1):
        return None
    return types.void(array, i), _prefetch_codegen


@intrinsic
def _prefetch_element(typingctx, array, i, j):
    """``llvm.prefetch`` (read, keep in all cache levels) of ``&array[i, j]``; no bounds check,
    and none needed: a prefetch is a hint that never faults, but callers stay in bounds."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    return types.void(array, i, j), _prefetch_codegen


@njit(cache=CACHE, inline="always")
def prefetch_row(X, i):
    """Start loading row ``i`` of the 2-D C-contiguous X (N, n) into cache, every line of it."""
    n = X.shape[1]
    step = max(CACHE_LINE_BYTES // X.itemsize, 1)
    for j in range(0, n, step):
        _prefetch_element(X, i, j)
    _prefetch_element(X, i, n - 1)  # the row's last line, when it does not start on a line
