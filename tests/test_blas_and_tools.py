"""The BLAS arrangement, the diagnostics, and the benchmark code paths (not their speed)."""

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from numba_dense.kernels import _blas


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


def test_scipy_blas_loads_without_scipy_linalg_and_stays_importable():
    """The kernels load SciPy's cython_blas from its file alone (scipy.linalg's __init__
    took 0.2 s of every start), and a kernel call does not import it either (Numba's
    array maths checks for SciPy's BLAS); a later import of it, or of scipy.linalg, finds
    the same module, and a gemm through it still computes."""
    code = ("import sys, numba_dense\n"
            "from numba_dense.kernels import _blas\n"
            "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg imported'\n"
            "_blas._check_blas_dims(1, 2, 3)\n"  # Numba's target context, its array maths
            "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg imported by a call'\n"
            "import scipy.linalg.cython_blas as first\n"
            "import scipy, scipy.linalg\n"
            "from scipy.linalg import cython_blas\n"
            "assert first is cython_blas is sys.modules['scipy.linalg.cython_blas']\n"
            "assert scipy.linalg.cython_blas is first\n"
            "import llvmlite.binding as llvm\n"
            "from numba.extending import get_cython_function_address as address\n"
            "assert llvm.address_of_symbol('numba_dense_sgemm') == "
            "address('scipy.linalg.cython_blas', 'sgemm'), 'two BLAS'\n"
            "import numpy as np\n"
            "print(scipy.linalg.blas.sgemm(1.0, np.eye(2, dtype=np.float32),"
            " np.ones((2, 2), np.float32)).sum())\n")
    # the same whoever chose OpenBLAS's core type (the user; OpenBLAS on a CPU without
    # AVX-512, as with NUMBA_DENSE_NO_CORETYPE)
    for extra in ({}, {"NUMBA_DENSE_NO_CORETYPE": "1"}):
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env={**env, **extra})
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip() == "4.0"


def test_a_compiled_module_that_is_not_there_is_an_import_error():
    with pytest.raises(ImportError):
        _blas._extension_alone("numpy.no_such_extension_module")
    with pytest.raises(ImportError):
        _blas._extension_alone("no_such_package_at_all.cython_blas")


def test_kernels_info_prints_blas_threads_and_rate():
    result = subprocess.run([sys.executable, "-m", "numba_dense.kernels", "info"],
                            capture_output=True,
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


@pytest.mark.parametrize("name", ["A", "T1", "T3"])
def test_numpy_baseline_trains_exactly_what_numba_dense_trains(name):
    """The NumPy loop is an honest twin: same costs, same updates, to float32 rounding."""
    from benchmarks.configs import CONFIGS, LR, is_classifier, make_data
    from benchmarks.numpy_loop import NumpyLoop, one_hot
    from numba_dense.model import MLP
    config = CONFIGS[name]._replace(rows=203)  # a last partial batch too
    X, Y = make_data(config)
    net = MLP(config.sizes, output=config.output, seed=0)
    loop = NumpyLoop(net.weights, net.biases, config.output, config.batch)
    loop.epoch(X, one_hot(Y, config.sizes[-1]) if is_classifier(config) else Y, LR)
    net.fit(X, Y, epochs=1, batch_size=config.batch, lr=LR, shuffle=False,
            standardize_target=False)  # the NumPy loop trains on y as given
    for l in range(len(loop.W)):
        np.testing.assert_allclose(loop.W[l], net.weights[l], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(loop.b[l], net.biases[l], rtol=1e-4, atol=1e-5)
        assert not np.array_equal(loop.W[l], MLP(config.sizes, seed=0).weights[l])


def test_compare_peers_runs_each_implementation_in_its_own_process(capsys):
    from benchmarks import compare_peers
    compare_peers.main(["--configs", "T2", "--rounds", "2", "--rows", "3000",
                        "--peers", "numpy", "sklearn", "--scaling"])
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| T2 | 10-")]
    assert len(row) == 1 and "3,000" in row[0]
    cells = [c.strip() for c in row[0].split("|")]
    assert cells[8].endswith("x") and cells[10].endswith("x")  # NumPy and sklearn ratios
    assert "own process" in out and "register tiles of" in out  # the CPU and its vectors
    # the scaling table: a row per thread count, each implementation's one-thread epoch 1x
    scaling = [line.split("|")[1:-1] for line in out.splitlines()
               if line.startswith("| T2 | ") and line.split("|")[2].strip().isdigit()]
    assert [int(r[1]) for r in scaling] == compare_peers.thread_counts()
    assert all(cell.strip().endswith("(1.00x)") for cell in scaling[0][2:])
    assert all(len(r) == 5 for r in scaling)


def test_compare_peers_limits_every_library_of_a_worker_to_its_threads(monkeypatch):
    from benchmarks import compare_peers
    seen = {}

    class Popen:
        def __init__(self, args, env, **kw):
            seen.update(env)
            raise OSError("not started")
    monkeypatch.setattr(compare_peers.subprocess, "Popen", Popen)
    with pytest.raises(OSError):
        compare_peers.Worker("numpy", "T2", 100, threads=3)
    assert all(seen[name] == "3" for name in compare_peers.THREAD_VARIABLES)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    with pytest.raises(OSError):
        compare_peers.Worker("numpy", "T2", 100)  # the defaults: the environment as it is
    assert seen["OMP_NUM_THREADS"] == "7"


def test_prefetch_distance_times_every_distance_in_both_orders(capsys):
    from benchmarks import prefetch_distance
    from numba_dense.kernels.config import PREFETCH_BYTES
    from numba_dense.kernels.loop import prefetch_rows
    default = prefetch_rows(20, 4, PREFETCH_BYTES)  # rows of 20 float32
    for extra in ([], ["--shuffle"]):
        prefetch_distance.main(["--rows", "3000", "--n-in", "20", "--rounds", "1"] + extra)
        rows = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("| ") and line[2].isdigit()]
        assert [int(r.split()[1]) for r in rows] == list(prefetch_distance.DISTANCES)
        assert sum("(PREFETCH_BYTES)" in r for r in rows) == (
            default in prefetch_distance.DISTANCES)


def test_shared_pass_times_the_products_a_fused_first_layer_would_make(capsys):
    """benchmarks.shared_pass: the one wide product holds each network's own product (its
    columns for the forward, its rows for the gradient), so the timings compare like with
    like; and main prints the bound."""
    from benchmarks import shared_pass
    setting = shared_pass.Setting([5, 4, 1], 3, 50, 3)
    for fused in (False, True):
        for gradient in (False, True):
            setting.first_layer(fused, gradient, reps=1)
    n_1 = setting.Ws.shape[1]
    wide = setting.out.reshape(3, 3, n_1).transpose(1, 0, 2)  # (batch, K, n_1) -> K first
    np.testing.assert_allclose(wide, setting.outs, rtol=1e-6)
    assert np.all(setting.outs >= 0) and np.any(setting.outs > 0)  # ReLU ran, not zeros
    np.testing.assert_allclose(setting.dW.reshape(setting.dWs.shape), setting.dWs, rtol=1e-5)
    shared_pass.main(["--network", "5,4,1", "--batch", "3", "--rows", "60", "--networks", "3",
                      "--rounds", "1"])
    out = capsys.readouterr().out
    assert "| shared gather saves |" in out and "3 networks take at least" in out, out


def test_asv_can_instantiate_every_class_it_would_discover():
    """asv takes any class with a time_/peakmem_/mem_ method for a benchmark and calls it
    with no arguments; a helper class with such a method breaks the whole suite."""
    import importlib
    import inspect
    import pkgutil

    import benchmarks
    for info in pkgutil.iter_modules(benchmarks.__path__):
        module = importlib.import_module("benchmarks." + info.name)
        for name, klass in inspect.getmembers(module, inspect.isclass):
            if klass.__module__ != module.__name__:
                continue
            if any(attr.startswith(("time_", "peakmem_", "mem_", "track_"))
                   for attr in dir(klass)):
                klass()  # must not need arguments


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 pause")
def test_two_cores_split_trains_exactly_like_one_thread():
    """The benchmark's two-thread split computes every element as one thread does (rows
    split, not sums), so the weights must agree bit for bit after a few steps."""
    from benchmarks import two_cores
    rng = np.random.default_rng(0)
    sizes, m = [20, 64, 64, 1], 32
    X = rng.standard_normal((m, sizes[0]), dtype=np.float32)
    runs = []
    for two in (False, True):
        W = tuple(np.random.default_rng(1).standard_normal((sizes[l + 1], sizes[l]),
                                                           dtype=np.float32) * 0.1
                  for l in range(3))
        WT = tuple(np.empty(w.T.shape, np.float32) for w in W)
        A = tuple(np.zeros((m, w.shape[0]), np.float32) for w in W)
        D = tuple(np.full((m, w.shape[0]), 0.01, np.float32) for w in W)
        args = (X, W, WT, A, D, 0.1)
        box = np.zeros(8, np.int64)
        if two:
            two_cores._with_helper(box, args, two_cores._steps, *args, 3, True)
        else:
            two_cores._steps(box, *args, 3, False)
        runs.append(W)
    for w1, w2 in zip(*runs):
        assert np.array_equal(w1, w2)
        assert not np.array_equal(w1, np.random.default_rng(1).standard_normal(
            w1.shape, dtype=np.float32) * 0.1)  # the steps changed something


def test_ab_constant_rewrites_exactly_one_definition(tmp_path):
    from benchmarks import ab_constant
    (tmp_path / "a.py").write_text("X = 1\nFORWARD_TILED_MAX_MACS = 1 << 18\n")
    (tmp_path / "b.py").write_text("Y = 2\n")
    old = ab_constant._rewrite(tmp_path, "FORWARD_TILED_MAX_MACS", "1 << 19")
    assert old == "FORWARD_TILED_MAX_MACS = 1 << 18"
    assert (tmp_path / "a.py").read_text() == "X = 1\nFORWARD_TILED_MAX_MACS = 1 << 19\n"
    with pytest.raises(SystemExit, match="NOPE is defined in 0 files"):
        ab_constant._rewrite(tmp_path, "NOPE", "3")


def test_perf_map_names_a_function_compiled_in_this_process(tmp_path):
    """benchmarks.perf_map reads Numba's internals (a library's LLVM module and its JIT
    engine): a Numba release that moves them must fail here, not give an empty map."""
    from numba import njit
    from benchmarks import perf_map

    @njit
    def perf_map_probe_sum(a):
        return a.sum() * 2.0

    assert perf_map_probe_sum(np.ones(3)) == 6.0
    import weakref

    class Dead:
        pass
    dead = weakref.proxy(Dead())  # a dead proxy among the objects, as a long run leaves
    path, count = perf_map.write_perf_map(str(tmp_path / "perf-1.map"))
    lines = open(path).read().splitlines()
    assert count == len(lines) > 0
    mine = [line for line in lines if "perf_map_probe_sum" in line]
    assert mine, lines[:5]
    start, size, name = mine[0].split(" ", 2)
    assert int(start, 16) > 0 and int(size, 16) > 0
    del dead
