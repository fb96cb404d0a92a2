"""The BLAS arrangement, the diagnostics, and the benchmark code paths (not their speed)."""

import subprocess
import sys

import numpy as np
import pytest

from kernels import _blas


class _Loader:
    def __init__(self, env):
        self.env, self.seen = env, []

    def __call__(self):
        self.seen.append(self.env.get("OPENBLAS_CORETYPE"))


@pytest.mark.parametrize("avx512", [False, True])
def test_coretype_is_forced_only_on_avx512_and_only_while_loading(avx512):
    env = {}
    load = _Loader(env)
    reason = _blas._choose_coretype(env, {}, lambda: avx512, load)
    if avx512:
        assert load.seen == ["SKYLAKEX"] and "SKYLAKEX" in reason
    else:
        # Forcing SkylakeX kernels on a CPU without AVX-512 dies with an illegal instruction.
        assert load.seen == [] and "no AVX-512" in reason
    assert "OPENBLAS_CORETYPE" not in env


def test_coretype_respects_the_user_and_an_already_loaded_blas():
    env = {"OPENBLAS_CORETYPE": "ZEN"}
    load = _Loader(env)
    assert "set by the user" in _blas._choose_coretype(env, {}, lambda: True, load)
    assert load.seen == [] and env == {"OPENBLAS_CORETYPE": "ZEN"}
    reason = _blas._choose_coretype({}, {_blas._SCIPY_BLAS: object()}, lambda: True, load)
    assert "OPENBLAS_CORETYPE=SKYLAKEX" in reason and load.seen == []


def test_kernels_info_prints_blas_threads_and_rate():
    result = subprocess.run([sys.executable, "-m", "kernels", "info"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "kernels' BLAS: openblas" in result.stdout
    assert "core type" in result.stdout and "GFLOP/s" in result.stdout


def test_gemm_helpers_match_numpy_including_beta(dtype=np.float64):
    rng = np.random.default_rng(0)
    A, B, C = rng.standard_normal((7, 5)), rng.standard_normal((3, 5)), rng.standard_normal((7, 3))
    expected = -0.5 * A @ B.T + C
    _blas.gemm_a_bt(A, B, C, -0.5, 1.0)
    np.testing.assert_allclose(C, expected, rtol=1e-13)
    D, E = rng.standard_normal((7, 4)), rng.standard_normal((5, 4))
    expected = 2.0 * A.T @ D + E
    _blas.gemm_at_b(A, D, E, 2.0, 1.0)
    np.testing.assert_allclose(E, expected, rtol=1e-13)
    F, G = rng.standard_normal((5, 6)), np.empty((7, 6))
    _blas.gemm_a_b(A, F, G, 1.0, 0.0)
    np.testing.assert_allclose(G, A @ F, rtol=1e-13)


def test_benchmark_kernel_table_runs_for_both_implementations():
    from benchmarks import bench_kernels
    for name in bench_kernels.CALLS:
        bench = getattr(bench_kernels, "".join(p.title() for p in name.split("_")))()
        for impl in ("numpy", "numba"):
            bench.setup(impl, "small")
            bench.time_kernel(impl, "small")


def test_benchmark_epoch_runners_train_the_same_network():
    from benchmarks.configs import CONFIGS, make_data
    from benchmarks.peers import numba_runner, numpy_runner
    config = CONFIGS["B"]._replace(sizes=[20, 8, 3], rows=300)
    X, Y = make_data(config)
    for make in (numpy_runner, numba_runner):
        make(config, X, Y)(1)


def test_gemm_rates_measure_both_blas_libraries():
    from benchmarks.peers import gemm_rates
    rates = gemm_rates(n=128, repeats=1)
    assert set(rates) == {"numpy", "numba-dense"} and min(rates.values()) > 0
