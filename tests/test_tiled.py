"""The register-tiled products (kernels.tiled) against NumPy, edges and strides included."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numba_dense.kernels.products import (BACKPROP_TILED_MAX_MACS, FORWARD_TILED_MAX_MACS,
                                          GRADIENT_TILED_MAX_MACS)
from numba_dense.kernels.tiled import TILE_ROWS, tiled_a_b, transpose_into, vector_lanes

from .conftest import DTYPES, assert_close, random_array

from .test_kernels import PATH_SHAPES


def _reference(A, B, C0, alpha, beta):
    out = alpha * (A.astype(np.float64) @ B.astype(np.float64))
    return out + beta * C0 if beta != 0 else out


@given(m=st.integers(1, 13), k=st.integers(0, 20), n=st.integers(1, 41),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, 0.75]),
       transposed=st.booleans(), dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_tiled_product_matches_numpy(m, k, n, alpha, beta, transposed, dtype, seed):
    """Every mix of whole tiles, single rows, masked and thin column edges; A as a
    transposed view (the weight gradient's ``delta.T``) or C-ordered; beta 0 never reads C."""
    rng = np.random.default_rng(seed)
    A = random_array(rng, (m, k), dtype)
    if transposed:
        A = np.ascontiguousarray(A.T).T
    B = random_array(rng, (k, n), dtype)
    C0 = random_array(rng, (m, n), dtype)
    C = C0.copy() if beta != 0 else np.full((m, n), np.nan, dtype)
    tiled_a_b(A, B, C, alpha, beta)
    assert_close(C, _reference(A, B, C0, alpha, beta), dtype, scale=max(k, 1))


@pytest.mark.parametrize("m,k,n", [(5, 3, 11), (9, 7, 19), (4, 16, 8), (1, 2, 3)])
def test_tiled_product_writes_and_reads_nothing_outside(dtype, m, k, n):
    """C, A and B as windows inside larger arrays: the masked edge tiles must not touch the
    sentinels around C, and NaN beyond B's and A's edges must not leak in."""
    rng = np.random.default_rng(m * k * n)
    big_c = np.full((m + 4, n + 40), 7, dtype)
    C = big_c[2:2 + m, 3:3 + n]
    big_b = np.full((k + 2, n + 40), np.nan, dtype)
    B = big_b[1:1 + k, 5:5 + n]
    B[...] = random_array(rng, (k, n), dtype)
    big_a = np.full((m + 2, k + 2), np.nan, dtype)
    A = big_a[1:1 + m, 1:1 + k]
    A[...] = random_array(rng, (m, k), dtype)
    tiled_a_b(A, B, C, 1.0, 1.0)
    assert_close(C, 7 + A.astype(np.float64) @ B, dtype, scale=k)
    outside = big_c.copy()
    outside[2:2 + m, 3:3 + n] = 7
    assert (outside == 7).all()


def test_tiled_product_propagates_nan_and_inf(dtype):
    A = np.ones((6, 3), dtype)
    B = np.ones((3, 20), dtype)
    A[1, 2] = np.nan
    B[0, 17] = np.inf
    C = np.zeros((6, 20), dtype)
    tiled_a_b(A, B, C, 1.0, 0.0)
    assert np.isnan(C[1]).all()
    assert np.isinf(C[[0, 2, 3, 4, 5], 17]).all()
    assert (C[0, :17] == 3).all()


@pytest.mark.parametrize("n,k", [(1, 1), (3, 5), (8, 8), (9, 17), (64, 20), (20, 64), (33, 40)])
def test_transpose_into(dtype, n, k):
    rng = np.random.default_rng(n * k)
    W = random_array(rng, (n, k), dtype)
    WT = np.full((k, n), np.nan, dtype)
    transpose_into(W, WT)
    assert (WT == W.T).all()


def test_tile_shape_fits_the_vector_registers():
    """4 rows x 2 vectors: 8 accumulators, 2 loads of B and a broadcast of A fit the 16
    vector registers of AVX2; vectors are 8 float32 or 4 float64."""
    assert TILE_ROWS == 4
    assert vector_lanes(np.empty((1, 1), np.float32)) == 8
    assert vector_lanes(np.empty((1, 1), np.float64)) == 4


@pytest.mark.parametrize("threshold", [FORWARD_TILED_MAX_MACS, BACKPROP_TILED_MAX_MACS,
                                       GRADIENT_TILED_MAX_MACS])
def test_path_shapes_cover_tiles_and_blas(threshold):
    """test_kernels' path tests run products on both sides of every tiled threshold."""
    macs = [m * n_in * n_out for m, n_in, n_out in PATH_SHAPES if n_out > 10]
    assert min(macs) <= threshold < max(macs)
