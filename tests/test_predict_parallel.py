"""Large predictions on several threads (model.data.parallel): the outputs of one thread,
bitwise, for arrays, sparse rows, .npy files and tables; the thread count from the load."""

import numpy as np
import pytest
import scipy.sparse as sp

from numba_dense import MLP, kernels
from numba_dense.model.data import parallel, tabular
from numba_dense.model.data.sources import EVAL_BATCH
from numba_dense.model.data.targets import TargetScaling
from numba_dense.model.training.loop import network_record, workspace

N = 4 * EVAL_BATCH + 37  # two threads' worth at the fixture's MIN_THREAD_ROWS; a short
# last batch


def network(sizes, dtype=np.float32, seed=0, **kw):
    net = MLP(sizes, dtype=dtype, seed=seed, **kw)
    for b in net.biases:
        b[...] = np.random.default_rng(seed + 1).standard_normal(b.shape) * 0.1
    return net


def rows(n, n_in, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_in)).astype(dtype)


def one_call(net, X, batch=EVAL_BATCH):
    """``kernels.predict_into`` over all rows in one call on one BLAS thread: the outputs of
    one thread."""
    out = np.empty((X.shape[0], net.n_outputs), net.dtype)
    batch = min(batch, X.shape[0])
    with kernels.blas_threads(1):
        kernels.predict_into(kernels.csr(X) if sp.issparse(X) else X, net.params,
                             network_record(net), out, batch, workspace(net, batch))
    return out


@pytest.fixture
def threads(monkeypatch):
    """Force a thread count whatever the machine's load; returns the calls of
    ``forward_into`` (their thread counts)."""
    calls = []
    original = parallel.forward_into

    def spy(net, network, X, out, batch, n):
        calls.append(n)
        return original(net, network, X, out, batch, n)

    monkeypatch.setattr(parallel, "forward_into", spy)

    def force(n):
        monkeypatch.setattr(parallel, "free_cores", lambda: n)
        # splits from 2 * 8,192 rows, so that small inputs exercise them (the packaged
        # crossover is the host's measurement, not what the split computes)
        monkeypatch.setattr(parallel, "MIN_THREAD_ROWS", 2 * EVAL_BATCH)
        # and the one-thread path on one BLAS thread, whatever this machine's load: two
        # BLAS threads change last bits (model/data/parallel.py)
        monkeypatch.setattr(kernels, "blas_threads_for", lambda *args, **kwargs: 1)
        return calls
    return force


def test_row_ranges():
    assert parallel.row_ranges(10, 3) == [(0, 3), (3, 6), (6, 10)]
    for n, parts, align in [(N, 8, EVAL_BATCH), (N, 2, EVAL_BATCH), (100, 4, 64), (5, 9, 1),
                            (EVAL_BATCH, 4, EVAL_BATCH), (1, 1, 7)]:
        r = parallel.row_ranges(n, parts, align)
        assert r[0][0] == 0 and r[-1][1] == n and 1 <= len(r) <= parts
        assert all(a < b for a, b in r)
        assert all(r[i][1] == r[i + 1][0] for i in range(len(r) - 1))
        assert all(a % align == 0 for a, _ in r)
    np.testing.assert_array_equal(  # full_batch's cuts, as before
        [a for a, _ in parallel.row_ranges(1000, 3)] + [1000],
        np.linspace(0, 1000, 4).astype(int))


@pytest.mark.parametrize("sizes,dtype,n_threads", [
    ([20, 64, 64, 1], np.float32, 2),    # T1: 64 x 64 products through BLAS
    ([7, 300, 3], np.float64, 3),        # a wide layer; 3 threads, 12 ranges
    ([5, 3, 2], np.float32, 4),          # thin layers: the forward loop
])
def test_forward_into_is_bitwise_one_call(sizes, dtype, n_threads):
    net = network(sizes, dtype, hidden="tanh")
    X = rows(N, sizes[0], dtype)
    expected = one_call(net, X)
    out = np.full_like(expected, np.nan)
    parallel.forward_into(net, network_record(net), X, out, EVAL_BATCH, n_threads)
    np.testing.assert_array_equal(out, expected)


def test_large_inputs_give_the_same_outputs_whatever_the_load(monkeypatch):
    """One free core: the one-thread path, on one BLAS thread (``blas_threads_for``); two:
    the split, one BLAS thread a worker. Bitwise the same outputs (a BLAS on several
    threads would not give them: OpenBLAS 0.3.30 changed the last bits of a quarter of T1's
    rows)."""
    net = network([16, 256, 128, 2], np.float64)
    X = rows(N, 16, np.float64)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 2)
    monkeypatch.setattr(kernels.threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: 1)
    monkeypatch.setattr(kernels.threads, "_recent_other_running_tasks", lambda: 1)
    busy = net.predict(X)
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: 0)
    quiet = net.predict(X)
    np.testing.assert_array_equal(busy, one_call(net, X))
    np.testing.assert_array_equal(quiet, busy)


def test_sparse_rows():
    net = network([30, 16, 2], np.float32)
    X = sp.random(N, 30, density=0.1, format="csr", dtype=np.float32, random_state=0)
    out = np.empty((N, 2), np.float32)
    parallel.forward_into(net, network_record(net), X, out, EVAL_BATCH, 2)
    np.testing.assert_array_equal(out, one_call(net, X))


def test_predict_and_score_split_as_one_thread(threads, monkeypatch):
    net = network([12, 32, 3], np.float32, output="softmax", loss="cross_entropy")
    X = rows(N, 12)
    y = np.random.default_rng(3).integers(0, 3, N)
    calls = threads(2)
    got = net.predict_proba(X), net.predict(X), net.score(X, y)
    assert calls == [2, 2, 2]
    monkeypatch.setattr(parallel, "threads_for", lambda n: 1)
    want = net.predict_proba(X), net.predict(X), net.score(X, y)
    assert len(calls) == 3
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_regression_target_scaling_and_exp(threads):
    calls = threads(3)
    net = network([6, 40, 2], np.float64)
    net.target_scaling = TargetScaling(np.array([1.5, -2.0]), 3.0)
    X = rows(N, 6, np.float64)
    expected = one_call(net, X)
    net.target_scaling.restore(expected)
    np.testing.assert_array_equal(net.predict(X), expected)
    poisson = network([6, 10, 1], np.float32, output="exp", loss="poisson")
    Xp = rows(N, 6) * 0.1
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(poisson.predict(Xp), np.exp(one_call(poisson, Xp)))
    assert calls == [2, 2]  # three free cores, rows for two threads


def test_npy_file_and_memmap(threads, tmp_path):
    calls = threads(2)
    net = network([10, 24, 1], np.float32)
    X = rows(N, 10)
    path = tmp_path / "X.npy"
    np.save(path, X)
    expected = one_call(net, X)
    np.testing.assert_array_equal(net.predict(str(path)), expected)
    np.testing.assert_array_equal(net.predict(np.load(path, mmap_mode="r")), expected)
    assert calls == [2, 2]


def test_table_chunks(threads, tmp_path):
    pacsv = pytest.importorskip("pyarrow.csv")
    import pyarrow as pa
    rng = np.random.default_rng(0)
    columns = {name: rng.standard_normal(N) for name in ("a", "b", "c")}
    columns["y"] = columns["a"] - columns["b"]
    path = tmp_path / "t.csv"
    pacsv.write_csv(pa.table(columns), path)
    net = network([3, 16, 1], np.float32)
    net.preprocessing = tabular.Preprocessing.fit(path, "y")
    X = np.concatenate([Xc for Xc, _ in net.preprocessing.batches(path, with_target=False)])
    expected = one_call(net, X)
    if net.target_scaling is not None:
        net.target_scaling.restore(expected)
    calls = threads(2)
    np.testing.assert_array_equal(net.predict(path), expected)
    assert calls and set(calls) == {2}


def test_thread_count_from_rows_and_load(monkeypatch):
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: 0)
    assert parallel.free_cores() == 4
    assert parallel.threads_for(5 * parallel.MIN_THREAD_ROWS) == 4
    assert parallel.threads_for(3 * parallel.MIN_THREAD_ROWS) == 3
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: 3)
    # three other processes hold three cores
    assert parallel.threads_for(5 * parallel.MIN_THREAD_ROWS) == 1
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: 9)
    assert parallel.free_cores() == 1
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", lambda: None)
    assert parallel.free_cores() == 4  # unknown load: every core

    def no_reading():
        raise AssertionError("small inputs must not read the load")
    monkeypatch.setattr(parallel, "_recent_other_running_tasks", no_reading)
    assert parallel.threads_for(2 * parallel.MIN_THREAD_ROWS - 1) == 1


def test_busy_machine_takes_the_one_thread_path(monkeypatch):
    monkeypatch.setattr(parallel, "free_cores", lambda: 1)

    def fail(*args):
        raise AssertionError("no split on one free core")
    monkeypatch.setattr(parallel, "forward_into", fail)
    net = network([4, 8, 1])
    X = rows(N, 4)
    np.testing.assert_array_equal(net.predict(X), one_call(net, X))


def test_a_worker_error_is_raised(monkeypatch):
    net = network([4, 8, 1])
    X = rows(N, 4)
    out = np.empty((N, 2), np.float32)  # wrong columns: every range's call raises
    with pytest.raises(ValueError):
        parallel.forward_into(net, network_record(net), X, out, EVAL_BATCH, 2)


def test_helper_pool_is_kept_grown_and_renewed_in_a_forked_child(monkeypatch):
    """One pool for the process (no thread start and join per call), a larger one when more
    workers are asked for, and a new one in a forked child, where the parent's threads do
    not exist: a stale pool would never run the child's work."""
    import multiprocessing

    # a fresh start: earlier tests in this process may have grown the shared pool
    monkeypatch.setattr(parallel, "_POOL", {"pool": None, "workers": 0, "pid": None})
    pool = parallel.helper_pool(1)
    assert parallel.helper_pool(1) is pool
    assert pool.submit(sum, [1, 2]).result(timeout=30) == 3
    larger = parallel.helper_pool(3)
    assert larger is not pool and parallel.helper_pool(2) is larger
    assert larger.submit(sum, [1]).result(timeout=30) == 1  # an idle thread at the fork
    with multiprocessing.get_context("fork").Pool(1) as child:
        assert child.apply_async(_sum_in_helper_pool).get(timeout=60) == 6


def _sum_in_helper_pool():
    return parallel.helper_pool(1).submit(sum, [1, 2, 3]).result(timeout=30)
