"""BLAS threads chosen per epoch: one for small products or a busy machine, restored after."""

import subprocess
import sys
import time

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import threads
from numba_dense.model import MLP

BIG = [1024, 4096, 1]  # largest product 64 x 1024 x 4096: well above the threshold


def test_small_networks_get_one_thread_and_big_ones_the_free_cores():
    assert threads.largest_product([32, 128, 64, 1], 32) == 32 * 128 * 64
    assert kernels.blas_threads_for([10, 32, 1], 16, others=0) == 1
    assert kernels.blas_threads_for(BIG, 64, others=0) is None
    cores = threads.usable_cores()
    assert kernels.blas_threads_for(BIG, 64, others=1) == max(cores - 1, 1)
    assert kernels.blas_threads_for(BIG, 64, others=cores + 5) == 1


def test_busy_processes_are_seen_and_make_big_networks_single_threaded():
    cores = threads.usable_cores()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(cores)]
    try:
        time.sleep(0.5)
        assert threads.other_running_tasks() >= cores
        assert kernels.blas_threads_for(BIG, 64) == 1
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_blas_threads_lowers_and_restores_only_the_kernels_blas():
    before = threads.current_blas_threads()
    if before is None or before < 2:
        pytest.skip("the kernels' BLAS has a single thread here; nothing to lower")
    with kernels.blas_threads(1):
        assert threads.current_blas_threads() == 1
    assert threads.current_blas_threads() == before
    with kernels.blas_threads(before + 4):  # never raised above what the user set
        assert threads.current_blas_threads() == before
    with pytest.raises(RuntimeError):
        with kernels.blas_threads(1):
            raise RuntimeError("restored on the way out")
    assert threads.current_blas_threads() == before


def test_fit_runs_a_small_network_on_one_blas_thread(monkeypatch):
    before = threads.current_blas_threads()
    if before is None or before < 2:
        pytest.skip("the kernels' BLAS has a single thread here; nothing to lower")
    seen = []
    real = kernels.train_epoch_batched  # what a network of two layers trains with

    def recording(*args):
        seen.append(threads.current_blas_threads())
        return real(*args)
    monkeypatch.setattr(kernels, "train_epoch_batched", recording)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 10)).astype(np.float32)
    MLP([10, 32, 1], seed=0).fit(X, X[:, 0], epochs=2, batch_size=16)
    assert seen and set(seen) == {1}
    assert threads.current_blas_threads() == before
