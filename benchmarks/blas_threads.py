"""One BLAS thread or two: the crossover by product size, and an epoch beside busy processes.

    python -m benchmarks.blas_threads                 # both parts
    python -m benchmarks.blas_threads --part products
    python -m benchmarks.blas_threads --part load --busy 3

``products``: times a training product (``A @ W.T`` of a batch, through the kernels' BLAS)
with one thread and with the BLAS's own count over a grid of batch sizes and widths, and
prints the threshold (in multiply-adds, a power of two) below which one thread gives the
lowest summed time over the grid, relative to the best choice shape by shape: the value
for ``kernels.threads.SINGLE_THREAD_MAX_MACS``.

``load``: an epoch of the command line's default network (32-128-64-1, batch 64, momentum
0.9, 200,000 rows) on a quiet machine and then beside ``--busy`` processes that spin on
the CPU, with the BLAS left at its thread count and with the thread limit ``MLP.fit``
chooses before each epoch (``kernels.blas_threads_for``). Medians of alternating rounds.
"""

import argparse
import itertools
import statistics
import time

import numpy as np
from numba import njit

from benchmarks.configs import busy_processes
from numba_dense import kernels
from numba_dense.kernels.products import gemm_a_bt
from numba_dense.model.data.datasets import teacher_regression


@njit(cache=True)
def _repeat(A, W, out, reps):
    for _ in range(reps):
        gemm_a_bt(A, W, out, 1.0, 0.0)


def _per_call(A, W, out, threads, target=0.05):
    with kernels.blas_threads(threads):
        _repeat(A, W, out, 1)
        reps = 1
        while True:
            start = time.perf_counter()
            _repeat(A, W, out, reps)
            elapsed = time.perf_counter() - start
            if elapsed > target:
                return elapsed / reps
            reps *= 4


def products():
    rng = np.random.default_rng(0)
    rows = []
    print("%6s %6s %6s %10s %10s %10s" % ("m", "n_in", "n_out", "MACs", "1 thr us", "2 thr us"))
    for m, width in itertools.product([32, 64, 128, 256], [32, 64, 128, 256, 512, 1024]):
        A = rng.standard_normal((m, width), dtype=np.float32)
        W = rng.standard_normal((width, width), dtype=np.float32)
        out = np.empty((m, width), np.float32)
        one, two = _per_call(A, W, out, 1), _per_call(A, W, out, None)
        macs = m * width * width
        rows.append((macs, one, two))
        print("%6d %6d %6d %10d %10.2f %10.2f" % (m, width, width, macs, one * 1e6, two * 1e6))
    totals = {}
    for e in range(14, 28):
        totals[1 << e] = sum((one if macs < 1 << e else two) / min(one, two)
                             for macs, one, two in rows) / len(rows)
    best = min(totals, key=totals.get)
    print()
    print("one thread below %d MACs: grid time %.3f x the per-shape best (one thread always: "
          "%.3f x, never: %.3f x); kernels.threads.SINGLE_THREAD_MAX_MACS = %d"
          % (best, totals[best], totals[1 << 27], totals[1 << 14],
             kernels.threads.SINGLE_THREAD_MAX_MACS))


def _epoch_seconds(net, X, Y, work, order, policy):
    threads = kernels.blas_threads_for(net.sizes, 64) if policy else None
    network = kernels.network(net.sizes, net.acts)
    optimizer = kernels.optimizer("sgd", net.params, 0.01, momentum=0.9)
    with kernels.blas_threads(threads):
        start = time.perf_counter()
        kernels.train_epoch(X, Y, net.params, net.grads, network, optimizer,
                            kernels.batches(64, order), work)
        return time.perf_counter() - start


def load(busy, rounds):
    from numba_dense.model import MLP
    X, y = teacher_regression()
    Y = y.reshape(-1, 1)
    net = MLP([32, 128, 64, 1], seed=0)
    work = np.empty(kernels.workspace_size(net.sizes, 64), np.float32)
    order = np.empty(0, np.int64)
    policies = {"BLAS's own count": False, "fit's choice (kernels.blas_threads_for)": True}
    _epoch_seconds(net, X, Y, work, order, False)
    results = {}
    for label in ("quiet", "beside %d busy processes" % busy):
        with busy_processes(0 if label == "quiet" else busy):
            times = {name: [] for name in policies}
            for _ in range(rounds):
                for name, policy in policies.items():
                    times[name].append(_epoch_seconds(net, X, Y, work, order, policy))
        results[label] = {name: statistics.median(t) for name, t in times.items()}
    print("default network 32-128-64-1, batch 64, 200,000 rows; medians of %d rounds" % rounds)
    print("| threads | quiet s/epoch | beside %d busy s/epoch | slowdown |" % busy)
    print("| --- | --- | --- | --- |")
    quiet, loaded = results.values()
    for name in policies:
        print("| %s | %.3f | %.3f | %.1fx |"
              % (name, quiet[name], loaded[name], loaded[name] / quiet[name]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["products", "load", "both"], default="both")
    parser.add_argument("--busy", type=int, default=3, help="busy processes beside the epoch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(kernels.blas_summary())
    if args.part in ("products", "both"):
        products()
    if args.part in ("load", "both"):
        load(args.busy, args.rounds)


if __name__ == "__main__":
    main()
