"""How close is an epoch to the time its matrix products alone take?

    python -m benchmarks.gemm_floor                 # B, C, D, T1, T2, T3; 3 rounds
    python -m benchmarks.gemm_floor --configs B --rounds 5

For each configuration this times, alternately in one process, a real ``MLP.fit`` (per
epoch, over the configuration's epochs, as compare_peers times it) and a compiled loop
that makes exactly the matrix products of that epoch the way the epoch makes them (BLAS
calls with the same shapes, transposes, alpha and beta; register tiles with their
transposed copy of W; loops for thin layers; the same number of batches) and nothing
else: no bias, no activation, no loss, no bookkeeping. Its time is a floor for any
implementation built on these products; the ratio epoch / floor is what everything else
costs. For the wide configurations (B, C, D) the floor is essentially their BLAS calls.
Both run under the BLAS thread limit ``fit`` chooses (``kernels.blas_threads_for``).

It also prints the GFLOP/s of each product shape on its own, tiles against BLAS, which
shows where the BLAS is slow (small inner dimensions, thread start-up per call), and a
**bound**: the epoch's matrix products, each at the best rate this CPU reached for its
shape with any of the compiled loop, the register tiles, one BLAS thread or all of them
(``benchmarks.tune_small``'s timings), times the number of batches; with nothing else in
the epoch, no implementation built on these products is faster.
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit

from numba_dense.kernels.dense import forward_loop
from numba_dense.kernels.products import (FORWARD_LOOP_MAX_OUTPUTS, product_a_b, product_a_bt,
                                          product_at_b, forward_scratch_size)

from numba_dense import kernels
from numba_dense.kernels.tuning import (BLAS, LOOP, TILED, backprop, forward, gradient,
                                        seconds_per_call)

from .configs import CONFIGS, LR, make_data
from .peers import make_runner


@njit(cache=True)
def products_only_epoch(X, weights, biases, scratch, acts, deltas, n_batches, m, lr):
    """The matrix products of ``n_batches`` fused SGD steps of batch ``m``, made as training
    makes them (kernels.dense.forward, kernels.products), and nothing else."""
    n_layers = len(weights)
    for bi in range(n_batches):
        start = (bi * m) % (X.shape[0] - m + 1)
        Xb = X[start:start + m]
        a_prev = Xb
        for l in range(n_layers):
            W = weights[l]
            if W.shape[0] <= FORWARD_LOOP_MAX_OUTPUTS:
                forward_loop(a_prev, W, biases[l], acts[l], 0)
            else:
                product_a_bt(a_prev, W, acts[l], scratch)
            a_prev = acts[l]
        for l in range(n_layers - 1, -1, -1):
            a_in = Xb if l == 0 else acts[l - 1]
            if l > 0:
                product_a_b(deltas[l], weights[l], deltas[l - 1], 1.0, 0.0)
            product_at_b(deltas[l], a_in, weights[l], -lr, 1.0)


def _buffers(config, X):
    m = config.batch
    s = config.sizes
    rng = np.random.default_rng(0)
    weights, biases, acts, deltas = [], [], [], []
    # room for the largest W.T the tiles copy, as in the training workspace
    scratch = np.empty(max(forward_scratch_size(1, s[l + 1], s[l]) for l in range(len(s) - 1)),
                       np.float32)
    for l in range(len(s) - 1):
        weights.append(rng.standard_normal((s[l + 1], s[l]), dtype=np.float32) * 0.01)
        biases.append(np.zeros(s[l + 1], np.float32))
        acts.append(np.zeros((m, s[l + 1]), np.float32))
        deltas.append(rng.standard_normal((m, s[l + 1]), dtype=np.float32) * 0.01)
    return tuple(weights), tuple(biases), scratch, tuple(acts), tuple(deltas)


def shape_rates(config):
    """(label, tiles GFLOP/s, BLAS GFLOP/s) of each distinct product of one batch, alone."""
    m = config.batch
    s = config.sizes
    rng = np.random.default_rng(0)
    rows = []
    for l in range(len(s) - 1):
        n_in, n_out = s[l], s[l + 1]
        A = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32) * 0.01
        b = np.zeros(n_out, np.float32)
        D = rng.standard_normal((m, n_out), dtype=np.float32)
        out = np.empty((m, n_out), np.float32)
        below = np.empty((m, n_in), np.float32)
        calls = [("forward  X @ W.T   %dx%dx%d" % (m, n_out, n_in), forward, (A, W, b, out)),
                 ("dW       D.T @ X   %dx%dx%d" % (n_out, n_in, m), gradient, (D, A, W))]
        if l > 0:
            calls.append(("backprop D @ W     %dx%dx%d" % (m, n_in, n_out), backprop,
                          (D, W, below)))
        for label, fn, args in calls:
            flops = 2.0 * m * n_in * n_out
            rows.append((label,) + tuple(flops / seconds_per_call(fn, (impl,) + args) / 1e9
                                         for impl in (TILED, BLAS)))
    return rows


def product_bound(config):
    """Seconds per epoch if every product ran at its best measured rate and nothing else ran."""
    m, s = config.batch, config.sizes
    rng = np.random.default_rng(0)
    per_batch = 0.0
    for l in range(len(s) - 1):
        n_in, n_out = s[l], s[l + 1]
        A = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32) * 0.01
        b = np.zeros(n_out, np.float32)
        D = rng.standard_normal((m, n_out), dtype=np.float32) * 0.01
        out, below = np.empty((m, n_out), np.float32), np.empty((m, n_in), np.float32)
        calls = [(forward, (A, W, b, out)), (gradient, (D, A, W))]
        if l > 0:
            calls.append((backprop, (D, W, below)))
        for fn, args in calls:
            times = [seconds_per_call(fn, (LOOP,) + args), seconds_per_call(fn, (TILED,) + args)]
            for threads in (1, None):
                with kernels.blas_threads(threads):
                    times.append(seconds_per_call(fn, (BLAS,) + args))
            per_batch += min(times)
    return per_batch * -(-config.rows // m)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["B", "C", "D", "T1", "T2", "T3"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for name in args.configs:
        config = CONFIGS[name]
        X, Y = make_data(config)
        fit = make_runner("numba", config, X, Y)
        buffers = _buffers(config, X)
        n_batches = -(-X.shape[0] // config.batch)
        threads = kernels.blas_threads_for(config.sizes, config.batch)
        products_only_epoch(X, *buffers, 1, config.batch, LR)
        epochs, floors = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            fit(config.epochs)
            epochs.append((time.perf_counter() - t) / config.epochs)
            with kernels.blas_threads(threads):
                t = time.perf_counter()
                products_only_epoch(X, *buffers, n_batches * config.epochs, config.batch, LR)
                floors.append((time.perf_counter() - t) / config.epochs)
        e, f = statistics.median(epochs), statistics.median(floors)
        bound = product_bound(config) if name != "D" else float("nan")
        print("%s %s batch %d: epoch %.3f s, its products alone %.3f s, epoch/floor %.2f; "
              "bound (every product at its best rate) %.3f s, epoch/bound %.2f"
              % (name, "-".join(map(str, config.sizes)), config.batch, e, f, e / f, bound,
                 e / bound))
        if name != "D":
            for label, tiles, blas in shape_rates(config):
                print("    %-40s tiles %6.1f GFLOP/s, BLAS %6.1f GFLOP/s" % (label, tiles, blas))


if __name__ == "__main__":
    main()
