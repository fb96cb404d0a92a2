"""One network's minibatch steps split between threads (``kernels.train_epoch_parallel``):
the same bits on any number of threads, close to the one-thread epoch, and the model layer's
``n_jobs``.

Shards are made small here (``SHARD_MIN_MACS`` lowered) so that small networks split on
every host; the kernels compile once per dtype (loss, activations and optimizer are values,
not types)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import scipy.sparse
import pytest

from numba_dense import kernels
from numba_dense.kernels import parallel, sync
from numba_dense.kernels.config import MAX_SHARDS, TILE_ROWS
from numba_dense.kernels.errors import InvalidTypeError, InvalidValueError
from numba_dense.model import MLP, MLPClassifier, MLPRegressor
from numba_dense.model.training import threads as epoch_threads

from .conftest import DTYPES, random_array

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
A = kernels.ACTIVATIONS
L = kernels.LOSSES
# sizes, activations, loss: hidden gelu keeps Z; the costs of every output kind
NETWORKS = [
    ([7, 24, 16, 3], ["relu", "tanh", "identity"], "mse"),
    ([6, 20, 5], ["gelu", "identity"], "cross_entropy"),
    ([5, 16, 9, 2], ["silu", "relu", "identity"], "binary_cross_entropy"),
    ([4, 12, 1], ["leaky_relu", "identity"], "huber"),
]
OPTIMIZERS = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("adam", {"weight_decay": 1e-4}),
    ("adamw", {"weight_decay": 1e-2}),
]


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of a few rows, so that these small networks split on any host."""
    monkeypatch.setattr(parallel, "SHARD_MIN_MACS", 256)


def _problem(sizes, loss, dtype, rows=203, seed=0):
    rng = np.random.default_rng(seed)
    X = random_array(rng, (rows, sizes[0]), dtype)
    n_out = sizes[-1]
    if loss == "cross_entropy":
        Y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, rows)]
    elif loss == "binary_cross_entropy":
        Y = rng.uniform(0, 1, (rows, n_out)).astype(dtype)
    else:
        Y = random_array(rng, (rows, n_out), dtype)
    P = int(kernels.param_count(np.array(sizes)))
    params = (rng.standard_normal(P) * 0.3).astype(dtype)
    return X, Y, params


def _network(sizes, acts, loss):
    return kernels.network(sizes, [A[a] for a in acts], L[loss])


def _train(X, Y, params, network, name, hyper, batches, threads=None, epochs=2):
    """Parameters and costs after ``epochs`` epochs: split on ``threads`` threads, or the
    one-thread epoch (``train_epoch_batched``) for threads None."""
    params = params.copy()
    grads = np.zeros_like(params)
    opt = kernels.optimizer(name, params, 0.05 if name == "sgd" else 0.01, **hyper)
    costs = []
    for _ in range(epochs):
        if threads is None:
            work = np.empty(int(kernels.workspace_size(network.sizes, batches.size)), X.dtype)
            costs.append(kernels.train_epoch_batched(X, Y, params, grads, network, opt,
                                                     batches, work))
        else:
            costs.append(kernels.train_epoch_parallel(X, Y, params, grads, network, opt,
                                                      batches, threads))
    return params, costs, int(opt.steps[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_same_bits_on_one_two_and_three_threads_and_close_to_one_epoch(small_shards, dtype):
    rng = np.random.default_rng(1)
    for k, (sizes, acts, loss) in enumerate(NETWORKS):
        X, Y, params0 = _problem(sizes, loss, dtype, seed=k)
        network = _network(sizes, acts, loss)
        for name, hyper in OPTIMIZERS:
            for order, weights in [(np.empty(0, np.int64), np.empty(0)),
                                   (rng.permutation(len(X)), np.empty(0)),
                                   (rng.permutation(len(X)),
                                    rng.uniform(0, 2, len(X)) * (rng.random(len(X)) > 0.2))]:
                batches = kernels.batches(32, order, sample_weight=weights)
                assert parallel.shard_plan(sizes, 32)[0] >= 2
                one, costs, steps = _train(X, Y, params0, network, name, hyper, batches, 1)
                for threads in (2, 3):
                    again, costs_again, _ = _train(X, Y, params0, network, name, hyper,
                                                   batches, threads)
                    assert np.array_equal(one, again), (sizes, name, threads)
                    assert costs == costs_again
                serial, serial_costs, serial_steps = _train(X, Y, params0, network, name,
                                                            hyper, batches)
                assert steps == serial_steps
                rtol = 1e-9 if dtype == np.float64 else 2e-3
                np.testing.assert_allclose(one, serial, rtol=rtol, atol=rtol,
                                           err_msg=str((sizes, name)))
                np.testing.assert_allclose(costs, serial_costs, rtol=rtol)


def test_shard_plan_covers_the_batch_in_tile_rows_and_ignores_threads():
    for sizes in ([20, 64, 64, 1], [54, 128, 64, 7], [10, 32, 1], [784, 128, 10]):
        for batch in (1, 16, 32, 64, 100, 256, 1000, 4096):
            n_shards, rows = parallel.shard_plan(sizes, batch)
            assert 1 <= n_shards <= MAX_SHARDS
            if batch % (MAX_SHARDS * TILE_ROWS) == 0:  # shards of whole tiles: 2^k of them
                assert n_shards & (n_shards - 1) == 0
            assert n_shards * rows >= batch > (n_shards - 1) * rows
            if n_shards > 1:
                assert rows % TILE_ROWS == 0 or rows < TILE_ROWS
                assert rows * (n_shards - 1) < batch  # no empty shard
                assert rows * parallel.forward_macs_per_row(sizes) >= parallel.SHARD_MIN_MACS
    assert parallel.shard_plan([10, 32, 1], 16) == (1, 16)  # too small to split


def test_unit_blocks_cover_every_unit_once():
    sizes = [54, 128, 64, 7]
    for batch in (1, 64, 4096):
        blocks = parallel.unit_blocks(sizes, batch)
        for l, n_out in enumerate(sizes[1:]):
            mine = blocks[blocks[:, 0] == l]
            assert mine[0, 1] == 0 and mine[-1, 2] == n_out
            assert np.all(mine[1:, 1] == mine[:-1, 2])


def test_block_owners_give_each_thread_one_run_of_a_layer_and_balance_the_work():
    """Each thread takes at most one run of consecutive blocks of a layer (so the threads'
    columns of W.T meet at few cache lines), and no thread carries more than an even
    share plus one block."""
    for sizes in ([54, 128, 64, 7], [20, 64, 64, 1], [10, 300, 200, 3], [5, 16, 1],
                  [250, 68], [2, 4096, 1], [100, 50, 50, 50, 50, 1], [3, 1, 17, 2]):
        for batch in (16, 32, 64, 256, 2048):
            blocks = parallel.unit_blocks(sizes, batch)
            cost = [(u1 - u0) * (sizes[l] + 1) for l, u0, u1 in blocks.tolist()]
            for threads in (1, 2, 3, 4, 8, 16, 64):
                owners = parallel.block_owners(blocks, sizes, threads)
                assert owners.shape == (len(blocks),) and owners.dtype == np.int64
                assert ((owners >= 0) & (owners < threads)).all()
                for layer in set(blocks[:, 0].tolist()):
                    run = owners[blocks[:, 0] == layer].tolist()
                    changes = sum(a != b for a, b in zip(run, run[1:]))
                    assert changes == len(set(run)) - 1, (sizes, batch, threads, run)
                load = np.bincount(owners, weights=cost, minlength=threads)
                assert load.max() <= sum(cost) / threads + max(cost), (sizes, threads)
    # a small last block goes with its neighbour, not a big block with another
    blocks = parallel.unit_blocks([250, 68], 16)
    assert [u1 - u0 for _, u0, u1 in blocks.tolist()] == [32, 32, 4]
    assert parallel.block_owners(blocks, [250, 68], 2).tolist() == [0, 1, 1]
    # layers of the largest blocks first: the lone 4,097-unit block is not stacked on others
    blocks = parallel.unit_blocks([2, 4096, 1], 32)
    cost = [(u1 - u0) * ([2, 4096, 1][l] + 1) for l, u0, u1 in blocks.tolist()]
    owners = parallel.block_owners(blocks, [2, 4096, 1], 4)
    assert np.bincount(owners, weights=cost, minlength=4).max() == 2 * 3072


def test_shared_arrays_of_a_split_epoch_start_on_a_cache_line(dtype):
    for n in (1, 7, 1000):
        for _ in range(8):
            a = parallel._line_aligned(n, dtype)
            assert a.shape == (n,) and a.dtype == dtype
            assert a.ctypes.data % parallel.CACHE_LINE == 0


def test_bad_arguments_get_one_line_errors_before_anything_changes(small_shards):
    sizes, acts, loss = NETWORKS[0]
    X, Y, params = _problem(sizes, loss, np.float32)
    network = _network(sizes, acts, loss)
    grads = np.zeros_like(params)
    opt = kernels.optimizer("adam", params, 0.01)
    batches = kernels.batches(32, np.empty(0, np.int64))
    before = params.copy()
    cases = [
        ((X, Y, params, grads, network, opt, batches, 0), InvalidValueError, "threads"),
        ((X, Y, params, grads, network, opt, batches, 1.5), InvalidTypeError, "threads"),
        ((kernels.csr(scipy.sparse.csr_array(X)), Y, params, grads, network, opt, batches, 2),
         InvalidTypeError, "X"),
        ((X, Y, params, grads, network, opt,
          kernels.dropout(batches, np.array([0.1, 0.1]), 0), 2), InvalidTypeError, "batches"),
        ((X, Y[:-1], params, grads, network, opt, batches, 2), ValueError, "Y"),
        ((X, Y.astype(np.float64), params, grads, network, opt, batches, 2), TypeError, "dtype"),
        ((X, Y, params[:-1], grads[:-1], network, opt, batches, 2), ValueError, "params"),
        ((X, Y, params, params, network, opt, batches, 2), ValueError, "grads"),
        ((X, Y, params, grads, network, opt, kernels.batches(0, np.empty(0, np.int64)), 2),
         ValueError, "batch"),
        ((X, Y, params, grads, network, opt, kernels.batches(32, np.array([0, 999])), 2),
         ValueError, "order"),
    ]
    for args, error, word in cases:
        with pytest.raises(error) as info:
            kernels.train_epoch_parallel(*args)
        message = str(info.value)
        assert "\n" not in message and word in message, message
        assert np.array_equal(params, before)


def test_a_failing_thread_stops_the_others_at_the_barrier(monkeypatch):
    """A thread that fails outside compiled code sets the abort flag: the threads waiting
    for it at a barrier return, and its error is raised (no hang)."""
    waited = []

    def worker(t, threads, *args):
        shared = args[-2]
        if t == 1:
            time.sleep(0.2)
            raise MemoryError("thread 1 failed")
        waited.append(sync.barrier(shared, threads))  # thread 0 waits for thread 1
        return 0.0
    monkeypatch.setattr(parallel, "_worker", worker)
    start = time.perf_counter()
    with pytest.raises(MemoryError, match="thread 1 failed"):
        parallel._run(2, (), np.zeros(2))
    assert waited == [False] and time.perf_counter() - start < 30
    assert not [t for t in threading.enumerate() if t.name.startswith("numba-dense shard")]


def test_a_thread_that_fails_to_start_releases_those_started(monkeypatch, small_shards):
    """The second extra thread's start fails (as it does when a process may start no more
    threads): the first, already waiting at a barrier, is released, and the error raised."""
    sizes, acts, loss = NETWORKS[0]
    X, Y, params = _problem(sizes, loss, np.float32)
    real = threading.Thread.start
    starts = []

    def failing(self):
        if self.name.startswith("numba-dense shard"):
            starts.append(self.name)
            if len(starts) == 2:
                raise RuntimeError("can't start new thread")
        return real(self)
    monkeypatch.setattr(threading.Thread, "start", failing)
    opt = kernels.optimizer("adam", params, 0.01)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        kernels.train_epoch_parallel(X, Y, params, np.zeros_like(params),
                                     _network(sizes, acts, loss), opt,
                                     kernels.batches(32, np.empty(0, np.int64)), 3)
    assert not [t for t in threading.enumerate() if t.name.startswith("numba-dense shard")]


def test_a_batch_beyond_the_rows_is_the_epoch_and_allocates_nothing_huge(small_shards):
    sizes, acts, loss = NETWORKS[0]
    X, Y, params0 = _problem(sizes, loss, np.float64)
    network = _network(sizes, acts, loss)
    order = np.empty(0, np.int64)
    whole, costs, _ = _train(X, Y, params0, network, "sgd", {},
                             kernels.batches(len(X), order), 2)
    huge, huge_costs, _ = _train(X, Y, params0, network, "sgd", {},
                                 kernels.batches(2 ** 40, order), 2)
    assert np.array_equal(whole, huge) and costs == huge_costs
    with pytest.raises(InvalidValueError, match="params has 643 elements but the network"):
        kernels.train_epoch_parallel(X, Y, params0[:643], params0[:643].copy(),
                                     kernels.network([7, 2 ** 40, 3], [0, 0], 0),
                                     kernels.optimizer("sgd", params0[:643].copy(), 0.1),
                                     kernels.batches(32, order), 2)


def test_barrier_counts_arrivals_of_every_thread():
    shared = sync.new_sync()
    counts = []

    def run(t):
        for k in range(1, 201):
            assert sync.barrier(shared, 3 * k)
            counts.append(shared[sync.COUNTER] >= 3 * k)
    threads = [threading.Thread(target=run, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert len(counts) == 600 and all(counts)
    assert shared[sync.COUNTER] == 600


# ----------------------------------------------------------------------------- the model

def _tabular(rows=1500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 12)).astype(np.float32)
    y = (np.sin(X[:, 0]) + X[:, 1] * X[:, 2]).astype(np.float32)
    return X, y


def _threads_seen(monkeypatch, slow_on_two=0.0):
    """The list that every later ``kernels.train_epoch_parallel`` call adds its threads to;
    a call on two threads first sleeps ``slow_on_two`` seconds (as beside a core that
    something else holds)."""
    seen = []
    real = kernels.train_epoch_parallel

    def spy(*args):
        seen.append(args[-1])
        if args[-1] == 2 and slow_on_two:
            time.sleep(slow_on_two)
        return real(*args)
    monkeypatch.setattr(kernels, "train_epoch_parallel", spy)
    return seen


def test_fit_gives_the_same_network_on_any_n_jobs(small_shards, monkeypatch):
    _every_step_splits(monkeypatch)
    X, y = _tabular()
    net = MLP([12, 32, 16, 1], seed=0)
    assert epoch_threads.splits(net, 64, False, 0.0)
    seen = _threads_seen(monkeypatch)
    monkeypatch.setattr(epoch_threads, "usable_cores", lambda: 4)  # 4 threads on any host
    nets = []
    for n_jobs in (1, 2, None, -1, 4):
        net = MLP([12, 32, 16, 1], seed=0)
        net.fit(X, y, epochs=3, batch_size=64, optimizer="adam", lr=0.01, seed=4,
                validation_fraction=0.2, n_jobs=n_jobs)
        nets.append(net)
    assert all(np.array_equal(nets[0].params, n.params) for n in nets[1:])
    assert all(nets[0].history.val_loss == n.history.val_loss for n in nets[1:])
    assert 1 in seen and 2 in seen and 4 in seen
    # and it trains: the loss falls
    assert nets[0].history.loss[-1] < nets[0].history.loss[0]


def test_an_epoch_in_pieces_chooses_its_threads_again_and_trains_the_same(small_shards,
                                                                          monkeypatch):
    """Pieces of 3 steps, the free cores changing between them (as when another process
    takes a core mid-epoch): the threads follow, and the parameters are those of one piece
    an epoch, shuffled and in storage order, weighted too."""
    _every_step_splits(monkeypatch)
    X, y = _tabular(1000)
    weights = np.random.default_rng(3).uniform(0.5, 2, len(X))
    whole = {}
    for shuffle in (True, False):
        net = MLP([12, 32, 16, 1], seed=0)
        net.fit(X, y, sample_weight=weights, epochs=2, batch_size=64, shuffle=shuffle,
                seed=1 if shuffle else None, n_jobs=2)
        whole[shuffle] = net.params
    monkeypatch.setattr(epoch_threads, "PIECE_STEPS", 3)
    cores = iter([2, 1, 2, 1, 1, 2] * 20)
    monkeypatch.setattr(epoch_threads, "free_cores", lambda: next(cores))
    seen = _threads_seen(monkeypatch)
    for shuffle in (True, False):
        net = MLP([12, 32, 16, 1], seed=0)
        net.fit(X, y, sample_weight=weights, epochs=2, batch_size=64, shuffle=shuffle,
                seed=1 if shuffle else None)
        assert np.array_equal(net.params, whole[shuffle]), shuffle
    assert seen.count(1) > 2 and seen.count(2) > 2  # 6 pieces an epoch, each chose anew


def test_what_splits_and_what_does_not(small_shards):
    net = MLP([12, 32, 16, 1], seed=0)
    assert epoch_threads.splits(net, 64, False, 0.0)
    assert not epoch_threads.splits(net, 64, True, 0.0)  # sparse X
    assert not epoch_threads.splits(net, 64, False, 0.1)  # dropout
    assert not epoch_threads.splits(net, 1, False, 0.0)  # one row: one shard
    assert not epoch_threads.splits(MLP([12, 1], seed=0), 64, False, 0.0)  # streamed epoch
    big = MLP([1024, 2048, 1], seed=0)  # BLAS-size products: BLAS threads instead
    assert not epoch_threads.splits(big, 256, False, 0.0)


def _every_step_splits(monkeypatch, value=1):
    """Every SPLIT_MIN_MACS_<k> set to ``value``."""
    for k in kernels.config.SPLIT_COUNTS:
        monkeypatch.setattr(kernels.config, "SPLIT_MIN_MACS_%d" % k, value)


def test_threads_follow_free_cores_shards_work_and_search_pools(small_shards, monkeypatch):
    assert kernels.threads.free_cores(others=0) == kernels.threads.usable_cores()
    assert kernels.threads.free_cores(others=1000) == 1
    net = MLP([12, 32, 16, 1], seed=0)  # 912 forward multiply-adds a row
    _every_step_splits(monkeypatch)
    assert parallel.shard_plan(net.sizes, 64)[0] == 16
    # a count above the usable cores counts as the usable cores: threads that wait on each
    # other at every step must not take turns on a core
    cores = kernels.threads.usable_cores()
    assert epoch_threads.epoch_threads(10 ** 6, net, 64) == max(
        (1,) + tuple(k for k in kernels.config.SPLIT_COUNTS if k <= cores))
    monkeypatch.setattr(epoch_threads, "usable_cores", lambda: 64)  # a 64-core machine
    assert epoch_threads.epoch_threads(3, net, 64) == 2  # a power of two
    assert epoch_threads.epoch_threads(40, net, 64) == 16  # no more than the shards
    # each count has its own crossover: here 2 threads from 64 rows, 8 from 32 rows
    monkeypatch.setattr(kernels.config, "SPLIT_MIN_MACS_2", 912 * 64)
    monkeypatch.setattr(kernels.config, "SPLIT_MIN_MACS_4", 912 * 1000)
    monkeypatch.setattr(kernels.config, "SPLIT_MIN_MACS_8", 912 * 32)
    monkeypatch.setattr(kernels.config, "SPLIT_MIN_MACS_16", 912 * 1000)
    assert epoch_threads.epoch_threads(16, net, 64) == 8
    assert epoch_threads.epoch_threads(4, net, 64) == 2
    assert epoch_threads.epoch_threads(4, net, 32) == 1
    _every_step_splits(monkeypatch)
    result = []
    thread = threading.Thread(target=lambda: (epoch_threads.in_pool(), result.append(
        epoch_threads.epoch_threads(4, net, 64))))
    thread.start()
    thread.join()
    assert result == [1]
    assert epoch_threads.epoch_threads(4, net, 64) == 4  # only that thread


def test_busy_processes_leave_a_split_network_one_thread(small_shards, monkeypatch):
    """Processes spinning on every core: the epoch's threads, which wait for each other at
    every step, drop to one (kernels.threads.free_cores), and the fit still gives the same
    parameters as on a quiet machine."""
    _every_step_splits(monkeypatch)
    net = MLP([12, 32, 16, 1], seed=0)
    X, y = _tabular(600)
    quiet = MLP([12, 32, 16, 1], seed=0)
    quiet.fit(X, y, epochs=2, batch_size=64, seed=1, n_jobs=2)
    seen = _threads_seen(monkeypatch)
    cores = kernels.threads.usable_cores()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(cores + 1)]
    try:
        time.sleep(0.5)
        assert epoch_threads.epoch_threads(None, net, 64) == 1
        net.fit(X, y, epochs=2, batch_size=64, seed=1)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert len(seen) >= 2 and set(seen) == {1}
    assert np.array_equal(net.params, quiet.params)


def _pieces_chosen(monkeypatch, seconds_a_step, pieces=200, steps=1024):
    """The threads ``PieceThreads`` gives each of ``pieces`` pieces of ``steps`` steps when
    ``epoch_threads`` says 2 and a piece on k threads takes ``seconds_a_step(piece, k)``."""
    monkeypatch.setattr(epoch_threads, "epoch_threads", lambda n_jobs, net, batch: 2)
    choice = epoch_threads.PieceThreads(None, None, 64)
    chosen = []
    for i in range(pieces):
        k = choice()
        chosen.append(k)
        choice.took(k, steps, steps * seconds_a_step(i, k))
    return chosen


def test_pieces_keep_two_threads_on_a_quiet_machine_trying_one_rarely(monkeypatch):
    chosen = _pieces_chosen(monkeypatch, lambda i, k: 1.0 if k == 2 else 1.4)
    # one thread tried after 2 pieces, then after 16, 32, 64, 64
    assert [i for i, k in enumerate(chosen) if k == 1] == [2, 19, 52, 117, 182]


def test_one_slow_piece_moves_nothing(monkeypatch):
    chosen = _pieces_chosen(monkeypatch, lambda i, k: (3.0 if i % 10 == 5 else 1.0)
                            if k == 2 else 1.4)
    assert [i for i, k in enumerate(chosen) if k == 1] == [2, 19, 52, 117, 182]


def test_pieces_drop_to_one_thread_while_the_split_is_slower_and_come_back(monkeypatch):
    """Something the free-core count cannot see (another guest of the hypervisor) holds a
    core for pieces 50-149: two threads meeting at every step then step at half speed."""
    def seconds(i, k):
        return (2.0 if 50 <= i < 150 else 1.0) if k == 2 else 1.4
    chosen = _pieces_chosen(monkeypatch, seconds)
    assert 1 in chosen[52:54]  # two slow pieces, then one thread
    assert chosen[50:150].count(2) <= 5  # tried again after 64 pieces at most
    back = chosen.index(2, 150)
    assert back <= 150 + 64 and chosen[back:back + 16] == [2] * 16  # and it stays


def test_a_split_slower_from_the_start_is_found_by_the_first_trial(monkeypatch):
    chosen = _pieces_chosen(monkeypatch, lambda i, k: 2.0 if k == 2 else 1.4)
    # two pieces on two threads, then one, trying two after 16, 32, 64, 64 pieces
    assert [i for i, k in enumerate(chosen) if k == 2] == [0, 1, 19, 52, 117, 182]


def test_a_split_slowing_down_after_one_thread_lost_its_trial_moves(monkeypatch):
    chosen = _pieces_chosen(monkeypatch, lambda i, k: (1.0 if i < 5 else 2.0)
                            if k == 2 else 1.4)
    assert chosen[:8] == [2, 2, 1, 2, 2, 2, 2, 1] and set(chosen[8:19]) == {1}


def test_a_split_slowing_down_before_one_thread_is_tried_tries_it(monkeypatch):
    monkeypatch.setattr(epoch_threads, "RETRY_PIECES", (100, 100, 100))
    chosen = _pieces_chosen(monkeypatch, lambda i, k: (1.0 if i < 5 else 2.0)
                            if k == 2 else 1.4)
    assert chosen[:8] == [2] * 7 + [1] and set(chosen[8:100]) == {1}


def test_short_pieces_are_not_timed(monkeypatch):
    short = epoch_threads.TIMED_MIN_SECONDS / 1024 / 2  # seconds a step: half the minimum
    chosen = _pieces_chosen(monkeypatch, lambda i, k: short / 9 if k == 1 else short)
    assert set(chosen) == {2}


def test_fit_runs_its_pieces_on_one_thread_where_two_step_slower(small_shards, monkeypatch):
    """A split epoch slowed down on two threads (a sleep in each two-thread piece, as a core
    that something else holds): fit's pieces move to one thread, the parameters unchanged."""
    _every_step_splits(monkeypatch)
    X, y = _tabular(2000)
    quiet = MLP([12, 32, 16, 1], seed=0)
    quiet.fit(X, y, epochs=3, batch_size=16, seed=1, n_jobs=2)
    monkeypatch.setattr(epoch_threads, "PIECE_STEPS", 8)
    monkeypatch.setattr(epoch_threads, "TIMED_MIN_SECONDS", 0.0)
    monkeypatch.setattr(epoch_threads, "RETRY_PIECES", (2, 2, 8))
    seen = _threads_seen(monkeypatch, slow_on_two=0.02)
    net = MLP([12, 32, 16, 1], seed=0)
    net.fit(X, y, epochs=3, batch_size=16, seed=1, n_jobs=2)
    assert np.array_equal(net.params, quiet.params)
    # 48 pieces: two on two threads, a trial of one thread that wins, then trials of two
    # after 2, 4, 8, 8 ... pieces
    assert len(seen) >= 40 and seen.count(2) <= 12 and seen.count(1) >= 30, seen


def test_pieces_of_a_large_batch_are_timed_too(monkeypatch):
    """At batch 512 a piece is 128 steps (a segment holds 65,536 rows): timed all the same,
    so that a split slowed down on two threads moves to one."""
    _every_step_splits(monkeypatch)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((262_144, 20), dtype=np.float32)
    y = X[:, 0] * X[:, 1]
    assert epoch_threads.splits(MLP([20, 32, 32, 1]), 512, False, 0.0)
    seen = _threads_seen(monkeypatch, slow_on_two=0.02)
    MLP([20, 32, 32, 1], seed=0).fit(X, y, epochs=3, batch_size=512, n_jobs=2)
    # 12 pieces of 128 steps (and the compiling step): two on two threads, a trial of one
    # thread that wins, one thread from there (two tried again after 16 pieces)
    assert len(seen) == 13 and seen.count(2) == 2, seen


@pytest.mark.parametrize("bad, error", [(0, InvalidValueError), (1.0, InvalidTypeError),
                                        (True, InvalidTypeError), (np.bool_(True),
                                                                   InvalidTypeError),
                                        ("2", InvalidTypeError)])
def test_n_jobs_is_checked_in_fit_and_the_estimators(bad, error):
    X, y = _tabular(100)
    net = MLP([12, 4, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(error, match="n_jobs"):
        net.fit(X, y, epochs=1, n_jobs=bad)
    assert np.array_equal(net.params, before)
    with pytest.raises(error, match="n_jobs"):
        MLPRegressor(hidden_layer_sizes=(4,), n_jobs=bad, max_iter=1).fit(X, y)


def test_negative_n_jobs_count_from_the_cores_as_in_scikit_learn(monkeypatch):
    """-1: every free core (None); -k: the usable cores + 1 - k, at least one, as joblib
    and scikit-learn count them; fit, the estimators and the searches alike."""
    monkeypatch.setattr(epoch_threads, "usable_cores", lambda: 8)
    assert epoch_threads.check_jobs(-1) is None
    assert epoch_threads.check_jobs(-2) == 7
    assert epoch_threads.check_jobs(np.int64(-3)) == 6
    assert epoch_threads.check_jobs(-100) == 1
    from numba_dense.model.interfaces import search
    monkeypatch.setattr(search, "usable_cores", lambda: 8)
    assert search.search_threads(-2) == 7 and search.search_threads(None) == 8
    # no more threads than cores: each holds a fit's copy of its fold
    assert search.search_threads(600000) == 8 and search.search_threads(3) == 3
    X, y = _tabular(200)
    MLP([12, 4, 1], seed=0).fit(X, y, epochs=1, n_jobs=-2)
    MLPRegressor(hidden_layer_sizes=(4,), n_jobs=-2, max_iter=1).fit(X, y)


def test_cli_jobs_counts_as_n_jobs_does(monkeypatch, capsys):
    """``train --jobs`` and ``search --jobs`` take n_jobs' values by the same rule
    (check_jobs): -1 every free core, -k all cores but k - 1; 0 or text is one line."""
    from numba_dense.model.interfaces import cli
    monkeypatch.setattr(epoch_threads, "usable_cores", lambda: 8)
    assert cli._jobs("-1") is None and cli._jobs("3") == 3
    assert cli._jobs("-2") == 7 and cli._jobs("-100") == 1
    parser = cli.build_parser()
    assert parser.parse_args(["search", "--data", "x.csv", "--grid", "lr=0.1",
                             "--jobs", "-2"]).search_jobs == 7
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["train", "--jobs", bad])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "--jobs" in err and bad in err, err


def test_estimators_take_n_jobs_and_fit_the_same_on_any_count(small_shards):
    X, y = _tabular(800)
    fitted = [MLPRegressor(hidden_layer_sizes=(32, 16), batch_size=64, max_iter=4,
                           random_state=0, n_jobs=n).fit(X, y) for n in (1, 2)]
    for a, b in zip(fitted[0].coefs_, fitted[1].coefs_):
        assert np.array_equal(a, b)
    labels = (y > np.median(y)).astype(int)
    clf = [MLPClassifier(hidden_layer_sizes=(32,), batch_size=64, max_iter=3, random_state=0,
                         n_jobs=n).fit(X, labels) for n in (1, None)]
    assert np.array_equal(clf[0].predict_proba(X), clf[1].predict_proba(X))
    assert MLPRegressor(n_jobs=3).get_params()["n_jobs"] == 3


# ----------------------------------------------------------------------------- as users meet it

_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from numba_dense.kernels import parallel
    parallel.SHARD_MIN_MACS = 256  # split on any host
    from numba_dense.kernels import config
    for k in config.SPLIT_COUNTS:  # on two threads
        setattr(config, "SPLIT_MIN_MACS_%d" % k, 1)
    from numba_dense.model import MLP
    from numba_dense.model.training.signals import TrainingInterrupted
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300_000, 12)).astype(np.float32)
    y = X[:, 0] * X[:, 1]
    net = MLP([12, 32, 16, 1], seed=0)
    try:
        net.fit(X, y, epochs=40, batch_size=64, n_jobs=2, verbose=True,
                checkpoint=sys.argv[1])
    except TrainingInterrupted as stop:
        print("stopped in epoch %d, finite %s, whole epochs %d"
              % (stop.epoch, np.isfinite(net.params).all(), len(net.history.loss)), flush=True)
""")


def test_ctrl_c_during_a_split_epoch_keeps_the_work_and_leaves_no_thread(tmp_path):
    ckpt = tmp_path / "run.ckpt.npz"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(ckpt)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch 1/40"):
            break
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    assert "finite True" in out, out
    stopped = int(out.split("stopped in epoch ")[1].split(",")[0])
    assert int(out.split("whole epochs ")[1]) == stopped - 1
    assert np.isfinite(MLP.load(ckpt).params).all()  # the checkpoint of the whole epochs


def test_cli_jobs_trains_one_network_to_the_same_file(tmp_path):
    saved = []
    for jobs in ("1", "2", "-1"):
        path = tmp_path / ("net%s.npz" % jobs)
        run = subprocess.run(
            [sys.executable, "-c", "from numba_dense.kernels import parallel; "
             "parallel.SHARD_MIN_MACS = 256; from numba_dense.kernels import config; "
             "config.SPLIT_MIN_MACS_2 = 1; "
             "from numba_dense.model.interfaces.cli import main; "
             "import sys; sys.exit(main(sys.argv[1:]))",
             "train", "--rows", "3000", "--epochs", "2", "--hidden-sizes", "24,12",
             "--batch-size", "64", "--jobs", jobs, "--save", str(path)],
            cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        saved.append(MLP.load(path).params)
    assert np.array_equal(saved[0], saved[1]) and np.array_equal(saved[0], saved[2])


_FIRST_USE = textwrap.dedent("""
    import json, sys
    import numpy as np
    from numba_dense.kernels import config, parallel
    from numba_dense.model.training import threads
    parallel.SHARD_MIN_MACS = 256  # split on any host
    threads.free_cores = lambda: 2  # as on a quiet machine (a test worker may be busy)
    from numba_dense.model import MLP
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 12)).astype(np.float32)
    MLP([12, 32, 16, 1], seed=0).fit(X, X[:, 0], epochs=1, batch_size=64)
    print(json.dumps([config.SPLIT_MIN_MACS_2, config.SOURCES["SPLIT_MIN_MACS_2"]]))
""")


@pytest.mark.parametrize("second, kept", [(2 ** 19, 2 ** 19), (None, None)])
def test_a_first_use_that_finds_no_gain_measures_again_before_keeping_never(
        tmp_path, monkeypatch, second, kept):
    """One quick measurement that says "never split" (kept for good) needs a second one's
    agreement: the lower crossover of the two is kept."""
    from numba_dense.kernels import tuning
    never = tuning.NEVER_SPLIT
    kept = never if kept is None else kept
    answers = iter([{"SPLIT_MIN_MACS_2": never}, {"SPLIT_MIN_MACS_2": second or never}])
    calls = []

    def split_threads(batches):
        calls.append(batches)
        return next(answers), [[2, b, b * 100, 1.0, 1.0] for b in batches]
    monkeypatch.setattr(tuning, "split_threads", split_threads)
    monkeypatch.setattr(epoch_threads, "free_cores", lambda: 2)
    path = tmp_path / "dispatch.json"
    monkeypatch.setenv("NUMBA_DENSE_TUNING", str(path))
    config = kernels.config
    monkeypatch.setattr(config, "SPLIT_MIN_MACS_2", config.SPLIT_MIN_MACS_2)
    monkeypatch.setattr(config, "SOURCES", dict(config.SOURCES))
    epoch_threads._measure_on_first_use(config)
    assert len(calls) == 2 and config.SPLIT_MIN_MACS_2 == kept
    with open(path) as f:
        record = json.load(f)
    assert record["values"]["SPLIT_MIN_MACS_2"] == kept
    assert len(record["split"]["timings"]) == 2 * len(tuning.SPLIT_BATCHES["quick"])


def test_the_thread_crossover_is_measured_on_first_use_and_kept(tmp_path):
    path = tmp_path / "dispatch.json"
    env = dict(os.environ, NUMBA_DENSE_TUNING=str(path))

    def child():
        run = subprocess.run([sys.executable, "-c", _FIRST_USE], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout.strip().splitlines()[-1])
    value, source = child()
    assert source.endswith("(measured on first use)") and str(path) in source
    with open(path) as f:
        record = json.load(f)
    assert record["values"]["SPLIT_MIN_MACS_2"] == value
    assert set(record["values"]) <= set(kernels.config.RUNTIME_TUNABLE)
    # the quick sizes once a count; twice where a first "never" was measured again
    sizes = len(kernels.tuning.SPLIT_BATCHES["quick"])
    assert len(record["split"]["timings"]) in (sizes * len(record["values"]),
                                               2 * sizes * len(record["values"]))
    assert kernels.config.check_tuning(record, kernels.host.cpu_key(),
                                       kernels.host.library_versions(),
                                       kernels.config.VECTOR_BYTES) == record["values"]
    again, source = child()  # a later process reads it, and measures nothing
    assert again == value and source == str(path)
