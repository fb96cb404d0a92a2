"""Register-tiled matrix products for the small and middling products of training.

``C = alpha * A @ B + beta * C`` for A (m, k) of any strides, B (k, n) and C (m, n) whose
rows are contiguous. OpenBLAS packs both operands into buffers first and its kernels are
tuned for products wide on every side, so on a tabular network's products (32 x 64 x 64
and the like) these tiles, with no packing and no thread hand-off, run well above it on
one core and near that core's FMA peak (``python -m benchmarks.gemm_floor`` prints both
rates per product; docs/performance.md, "Small products: loops, register tiles, BLAS",
has the figures). ``python -m benchmarks.tune_small`` measures where BLAS takes over
(``kernels.products``).

How: a tile of ``TILE_ROWS`` rows of C by two vectors of columns (2 x 8 float32 or
2 x 4 float64 with AVX2's 32-byte vectors, 2 x 16 or 2 x 8 with AVX-512's 64-byte ones) is
kept in ``2 * TILE_ROWS`` vector registers for the whole sum over k; each step loads two
vectors of a row of B, broadcasts one element of A per tile row and makes ``2 * TILE_ROWS``
fused multiply-adds. The vector width is the widest the CPU has, chosen when
``kernels.config`` is imported (``VECTOR_BYTES``; ``NUMBA_DENSE_VECTOR_BYTES`` sets it).
Numba offers no vector types and LLVM does not turn scalar code into this (64 scalar
accumulators stayed scalar, far below the vector rate), so the tile is written as LLVM
vector IR in an intrinsic (``_make_tile``). The last, partial tile of a row of C uses
masked loads and writes its last vector lane by lane, so no element outside C or B is read
or written. The tile's shape (``TILE_ROWS``, ``VECTOR_BYTES``,
``TILE_VECTORS``, ``THIN_TILE_ROWS``) is set in ``kernels.config``.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import BORROWED, CACHE, njit
from ._checks import cast_like
from .config import THIN_TILE_ROWS, TILE_ROWS, TILE_VECTORS, VECTOR_BYTES


def _make_tile(rows, vectors, masked):
    """An intrinsic ``tile(A, B, C, i0, j0, k, alpha, beta, ncols)`` for one tile of C.

    ``C[i0:i0+rows, j0:j0+w] = alpha * A[i0:i0+rows, :k] @ B[:k, j0:j0+w] + beta * C``
    where ``w`` is the tile width (``vectors`` vectors) or, if ``masked``, ``ncols``
    (1 to that width; lanes beyond it are neither read nor written). With ``beta == 0``
    the old C does not count (a select, not a multiply: it may hold anything, NaN
    included). Indices are not checked: the callers in this module stay in bounds.
    """

    @intrinsic
    def tile(typingctx, A, B, C, i0, j0, k, alpha, beta, ncols):
        if not all(isinstance(t, types.Array) and t.ndim == 2 for t in (A, B, C)):
            return None
        sig = types.void(A, B, C, i0, j0, k, alpha, beta, ncols)

        def codegen(context, builder, signature, args):
            a_ty, b_ty, c_ty = signature.args[:3]
            arrays = [context.make_array(t)(context, builder, v)
                      for t, v in zip(signature.args[:3], args[:3])]
            a_arr, b_arr, c_arr = arrays
            i0_, j0_, k_, n_ = [context.cast(builder, args[i], signature.args[i], types.intp)
                                for i in (3, 4, 5, 8)]
            dtype = c_ty.dtype
            alpha_ = context.cast(builder, args[6], signature.args[6], dtype)
            beta_ = context.cast(builder, args[7], signature.args[7], dtype)
            intp = context.get_value_type(types.intp)
            i32 = ir.IntType(32)
            fty = context.get_value_type(dtype)
            size = context.get_abi_sizeof(fty)
            lanes = VECTOR_BYTES // size
            vty = ir.VectorType(fty, lanes)
            suffix = "v%d%s" % (lanes, "f32" if size == 4 else "f64")
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]), "llvm.fmuladd." + suffix)
            mask_ty = ir.VectorType(ir.IntType(1), lanes)
            vptr = vty.as_pointer()
            masked_load = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vptr, i32, mask_ty, vty]),
                "llvm.masked.load.%s.p0%s" % (suffix, suffix))
            zero = ir.Constant(vty, None)
            align = ir.Constant(i32, size)

            def splat(x, ty=vty):
                """A vector of type ``ty`` with ``x`` in every lane."""
                v = builder.insert_element(ir.Constant(ty, ir.Undefined), x, ir.Constant(i32, 0))
                return builder.shuffle_vector(v, ir.Constant(ty, ir.Undefined),
                                              ir.Constant(ir.VectorType(i32, lanes), [0] * lanes))

            def pointer(arr, ty, i, j):
                return cgutils.get_item_pointer(context, builder, ty, arr, [i, j],
                                                wraparound=False, boundscheck=False)

            def load(arr, ty, i, j, mask):
                p = builder.bitcast(pointer(arr, ty, i, j), vptr)
                if mask is None:
                    return builder.load(p, align=size)
                return builder.call(masked_load, [p, align, mask, zero])

            def store(value, arr, ty, i, j, left):
                """All lanes, or (``left`` given) lanes ``l < left`` one by one: a masked
                store (vmaskmovps) is microcoded and slow on AMD's cores."""
                if left is None:
                    builder.store(value, builder.bitcast(pointer(arr, ty, i, j), vptr),
                                  align=size)
                    return
                for lane in range(lanes):
                    inside = builder.icmp_signed("<", ir.Constant(intp, lane), left)
                    with builder.if_then(inside):
                        column = builder.add(j, ir.Constant(intp, lane))
                        builder.store(builder.extract_element(value, ir.Constant(i32, lane)),
                                      pointer(arr, ty, i, column), align=size)

            cols = [builder.add(j0_, ir.Constant(intp, lanes * v)) for v in range(vectors)]
            masks = [None] * vectors
            lefts = [None] * vectors
            if masked:
                # A two-vector edge tile has more than one vector of columns: its first
                # vector is whole, and only the last one is masked: its lane l is valid
                # when l < left, the columns left after the whole vectors.
                last = vectors - 1
                index_ty = ir.VectorType(intp, lanes)
                left = builder.sub(n_, ir.Constant(intp, lanes * last))
                masks[last] = builder.icmp_signed("<", ir.Constant(index_ty, list(range(lanes))),
                                                  splat(left, index_ty))
                lefts[last] = left
            rows_ = [builder.add(i0_, ir.Constant(intp, r)) for r in range(rows)]
            # Accumulators live in allocas that LLVM promotes to registers.
            acc = [[cgutils.alloca_once_value(builder, zero) for _ in range(vectors)]
                   for _ in range(rows)]
            with cgutils.for_range(builder, k_) as loop:
                p = loop.index
                b = [load(b_arr, b_ty, p, cols[v], masks[v]) for v in range(vectors)]
                for r in range(rows):
                    a = splat(builder.load(pointer(a_arr, a_ty, rows_[r], p)))
                    for v in range(vectors):
                        builder.store(builder.call(fma, [a, b[v], builder.load(acc[r][v])]),
                                      acc[r][v])
            alpha_v = splat(alpha_)
            beta_v = splat(beta_)
            keep = builder.fcmp_unordered("!=", beta_, ir.Constant(fty, 0))
            for r in range(rows):
                for v in range(vectors):
                    c = builder.fmul(beta_v, load(c_arr, c_ty, rows_[r], cols[v], masks[v]))
                    c = builder.select(keep, c, zero)
                    out = builder.call(fma, [alpha_v, builder.load(acc[r][v]), c])
                    store(out, c_arr, c_ty, rows_[r], cols[v], lefts[v])
            return context.get_dummy_value()

        return sig, codegen

    return tile


# Every variant costs compile time (a first run compiles them into every caller), so only
# the tall tiles that do the work and a one-row tile for the rows left over are made.
_tile_tall = _make_tile(TILE_ROWS, TILE_VECTORS, False)
_tile_1 = _make_tile(1, TILE_VECTORS, False)
_edge_tall = _make_tile(TILE_ROWS, TILE_VECTORS, True)
_edge_1 = _make_tile(1, TILE_VECTORS, True)
_thin_tall = _make_tile(THIN_TILE_ROWS, 1, True)
_thin_1 = _make_tile(1, 1, True)


@njit(cache=CACHE, inline="always")
def vector_lanes(C):
    """Elements of C's dtype in one vector of ``VECTOR_BYTES``."""
    return VECTOR_BYTES // C.itemsize


@njit(cache=CACHE, **BORROWED)
def _column_block(A, B, C, j, ncols, k, alpha, beta):
    """Columns ``j:j+ncols`` of C, every row: whole tiles down, then the rows left over one
    tile row at a time (the last rows of a batch whose size is not a multiple of the tile's).

    Column blocks are the outer loop so that the block of B they read (k rows of at most
    two vectors) stays in L1 while every tile of rows reuses it.
    """
    m = C.shape[0]
    lanes = vector_lanes(C)
    i = 0
    if ncols == TILE_VECTORS * lanes:
        while i + TILE_ROWS <= m:
            _tile_tall(A, B, C, i, j, k, alpha, beta, ncols)
            i += TILE_ROWS
        for r in range(i, m):
            _tile_1(A, B, C, r, j, k, alpha, beta, ncols)
    elif ncols > lanes:
        while i + TILE_ROWS <= m:
            _edge_tall(A, B, C, i, j, k, alpha, beta, ncols)
            i += TILE_ROWS
        for r in range(i, m):
            _edge_1(A, B, C, r, j, k, alpha, beta, ncols)
    else:
        while i + THIN_TILE_ROWS <= m:
            _thin_tall(A, B, C, i, j, k, alpha, beta, ncols)
            i += THIN_TILE_ROWS
        for r in range(i, m):
            _thin_1(A, B, C, r, j, k, alpha, beta, ncols)


@intrinsic
def _transpose_block(typingctx, src, dst, i0, j0):
    """``dst[j0:j0+L, i0:i0+L] = src[i0:i0+L, j0:j0+L].T`` for one L x L block (L lanes of a
    vector), in registers: L vector loads, L log2(L) shuffles, L vector stores. Rows of src
    and dst must be contiguous; indices are not checked."""
    if not (isinstance(src, types.Array) and isinstance(dst, types.Array)
            and src.ndim == dst.ndim == 2 and src.dtype == dst.dtype):
        return None
    sig = types.void(src, dst, i0, j0)

    def codegen(context, builder, signature, args):
        s_ty, d_ty = signature.args[:2]
        s_arr = context.make_array(s_ty)(context, builder, args[0])
        d_arr = context.make_array(d_ty)(context, builder, args[1])
        i0_, j0_ = [context.cast(builder, args[i], signature.args[i], types.intp)
                    for i in (2, 3)]
        intp = context.get_value_type(types.intp)
        i32 = ir.IntType(32)
        fty = context.get_value_type(s_ty.dtype)
        size = context.get_abi_sizeof(fty)
        lanes = VECTOR_BYTES // size
        vptr = ir.VectorType(fty, lanes).as_pointer()

        def vpointer(arr, ty, i, j):
            return builder.bitcast(cgutils.get_item_pointer(
                context, builder, ty, arr, [i, j], wraparound=False, boundscheck=False), vptr)

        rows = [builder.load(vpointer(s_arr, s_ty, builder.add(i0_, ir.Constant(intp, r)), j0_),
                             align=size) for r in range(lanes)]
        # Stage b swaps bit b of the row index with bit b of the column index, for every
        # pair of rows that differ in that bit; after all log2(L) stages row c holds column c.
        bit = 1
        while bit < lanes:
            low = [c if not c & bit else lanes + (c ^ bit) for c in range(lanes)]
            high = [c | bit if not c & bit else lanes + c for c in range(lanes)]
            for r in range(lanes):
                if r & bit:
                    continue
                a, b = rows[r], rows[r | bit]
                rows[r] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(i32, lanes), low))
                rows[r | bit] = builder.shuffle_vector(a, b,
                                                       ir.Constant(ir.VectorType(i32, lanes), high))
            bit *= 2
        for c in range(lanes):
            builder.store(rows[c], vpointer(d_arr, d_ty, builder.add(j0_, ir.Constant(intp, c)),
                                            i0_), align=size)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=CACHE, **BORROWED)
def transpose_into(W, WT):
    """``WT[:] = W.T``; W (n, k) and WT (k, n) with contiguous rows, one dtype.

    Vector blocks where both sides are whole, element by element at the edges: several
    times faster than the plain loop (docs/performance.md, "Small products: loops,
    register tiles, BLAS").
    """
    n, k = W.shape
    lanes = vector_lanes(W)
    n_whole = n - n % lanes
    k_whole = k - k % lanes
    for i in range(0, n_whole, lanes):
        for j in range(0, k_whole, lanes):
            _transpose_block(W, WT, i, j)
    for j in range(k_whole, k):  # the columns left over, each a contiguous row of WT
        for i in range(n_whole):
            WT[j, i] = W[i, j]
    for j in range(k):  # the rows left over
        for i in range(n_whole, n):
            WT[j, i] = W[i, j]


@njit(cache=CACHE)
def unit_rows(X):
    """True when the rows of the 2-D X are contiguous (unit stride along a row)."""
    return X.shape[1] <= 1 or X.strides[1] == X.itemsize


@njit(cache=CACHE, **BORROWED)
def tiled_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C`` by register tiles; unchecked.

    A (m, k) any strides (``delta.T`` for a weight gradient), B (k, n) and C (m, n) with
    contiguous rows (``unit_rows``), one dtype. With ``beta == 0`` the old C does not count
    (NaN in it included).
    """
    k = A.shape[1]
    n = C.shape[1]
    alpha = cast_like(alpha, C)
    beta = cast_like(beta, C)
    width = TILE_VECTORS * vector_lanes(C)
    for j in range(0, n, width):
        _column_block(A, B, C, j, min(width, n - j), k, alpha, beta)
