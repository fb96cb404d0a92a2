"""The register-tiled products (kernels.tiled) against NumPy, edges and strides included."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numba_dense.kernels.products import (BACKPROP_TILED_MAX_MACS, FORWARD_TILED_MAX_MACS,
                                          GRADIENT_TILED_MAX_MACS)
from numba_dense.kernels import config
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
    """The CPU's widest vectors unless the environment says otherwise; 4 rows x 2 vectors
    (8 accumulators, 2 loads of B, a broadcast of A) fit AVX2's 16 registers, 8 x 2 + 3
    AVX-512's 32."""
    if not os.environ.get(config.VECTOR_ENV):
        assert config.VECTOR_BYTES == config.HOST_VECTOR_BYTES == config.compiled_vector_bytes()
    assert TILE_ROWS == {32: 4, 64: 8}[config.VECTOR_BYTES]
    assert vector_lanes(np.empty((1, 1), np.float32)) == config.VECTOR_BYTES // 4
    assert vector_lanes(np.empty((1, 1), np.float64)) == config.VECTOR_BYTES // 8


def test_the_widest_vectors_follow_numbas_target_features(monkeypatch):
    from numba.core import config as numba_config
    monkeypatch.setattr(numba_config, "CPU_FEATURES", "+avx,+avx2,+fma,+avx512f,+avx512vl")
    assert config.compiled_vector_bytes() == 64
    monkeypatch.setattr(numba_config, "CPU_FEATURES", "+avx,+avx2,+fma,-avx512f")
    assert config.compiled_vector_bytes() == 32
    monkeypatch.setattr(numba_config, "CPU_FEATURES", "")  # NUMBA_CPU_NAME=generic, say
    assert config.compiled_vector_bytes() == 32


_OTHER_WIDTH_CHECK = textwrap.dedent("""
    import numpy as np
    from numba_dense.kernels import _cache, config
    from numba_dense.kernels.info import tile_vectors
    from numba_dense.kernels.tiled import tiled_a_b, transpose_into
    assert config.VECTOR_BYTES == {width}, config.VECTOR_BYTES
    assert _cache.TUNED_DIR is not None  # not the cache of the CPU's own width
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for m, k, n in [(1, 1, 1), (7, 5, 3), (8, 9, 16), (17, 33, 31), (33, 64, 64),
                        (40, 3, 70), (9, 0, 5)]:
            A = rng.standard_normal((m, k)).astype(dtype)
            B = rng.standard_normal((k, n)).astype(dtype)
            C0 = rng.standard_normal((m, n)).astype(dtype)
            for a_t in (A, np.ascontiguousarray(A.T).T):
                for beta in (0.0, 0.5):
                    C = C0.copy() if beta else np.full((m, n), np.nan, dtype)
                    tiled_a_b(a_t, B, C, 1.5, beta)
                    want = 1.5 * (A.astype(np.float64) @ B) + beta * C0
                    tol = 1e-4 if dtype == np.float32 else 1e-11
                    assert np.allclose(C, want, rtol=tol, atol=tol * max(k, 1)), (m, k, n)
            WT = np.empty((k, m), dtype)
            transpose_into(A, WT)
            assert (WT == A.T).all()
    print(tile_vectors())
""")


def test_the_other_vector_width_computes_the_same_products(tmp_path):
    """Both tile widths are tested on every host: the one the CPU has here, and the other
    through ``NUMBA_DENSE_VECTOR_BYTES`` (32-byte tiles on an AVX-512 host; on an AVX2 host
    64-byte ones, which LLVM splits into halves), compiled into a cache folder of its own."""
    width = 32 if config.VECTOR_BYTES == 64 else 64
    env = dict(os.environ, NUMBA_DENSE_VECTOR_BYTES=str(width),
               NUMBA_CACHE_DIR=str(tmp_path), NUMBA_DENSE_TUNING="off")
    env.pop("NUMBA_DENSE_CACHE_BASE", None)
    result = subprocess.run([sys.executable, "-c", _OTHER_WIDTH_CHECK.format(width=width)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {32: 4, 64: 8}[width]
    assert "%d-byte vectors" % width in result.stdout
    assert "%d-row tiles: NUMBA_DENSE_VECTOR_BYTES=%d" % (rows, width) in result.stdout


def test_a_bad_vector_width_is_one_line_and_the_cpus_widest(capsys, monkeypatch):
    monkeypatch.setenv(config.VECTOR_ENV, "48")
    assert config._vector_bytes() == (config.HOST_VECTOR_BYTES, "the CPU's widest")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "NUMBA_DENSE_VECTOR_BYTES must be one of 32, 64, got '48'" in err


@pytest.mark.parametrize("threshold", [FORWARD_TILED_MAX_MACS, BACKPROP_TILED_MAX_MACS,
                                       GRADIENT_TILED_MAX_MACS])
def test_path_shapes_cover_tiles_and_blas(threshold):
    """test_kernels' path tests run products on both sides of every tiled threshold."""
    macs = [m * n_in * n_out for m, n_in, n_out in PATH_SHAPES if n_out > 10]
    assert min(macs) <= threshold < max(macs)
