"""Find the sizes below which a compiled loop beats a BLAS call, for each kind of product.

    python -m benchmarks.tune_small            # prints the grid's times and the thresholds
    python -m benchmarks.tune_small --quick    # a smaller grid

The training step makes three kinds of product (``kernels/products.py``, ``kernels/dense.py``):

- forward  ``sigma(A @ W.T + b)``: ``_forward_loop`` against ``gemm_a_bt`` + bias/activation;
- backprop ``delta @ W``: ``_loop_a_b`` against ``gemm_a_b``;
- gradient ``W -= lr * delta.T @ A``: ``_loop_a_b`` on ``delta.T`` against ``gemm_at_b``.

For each kind it times both over a grid of batch sizes and layer widths (each call
repeated in compiled code until it has run for a while, the BLAS at its usual thread
count). What decides is the layer's output width ``n_out``, the thin side of a tabular
network's products (an output layer of 1 to 10 units, whose gradient is a BLAS call of
``1 x n_in x m``): for a threshold ``t`` it sums the grid's time when every product of a
layer with ``n_out <= t`` is a loop and every other a BLAS call, relative to the best
choice shape by shape. The threshold with the lowest total is the crossover that
``kernels/products.py`` (``LOOP_MAX_OUTPUTS``) uses; rerun this on a new CPU before
changing it.
"""

import argparse
import itertools
import time

import numpy as np
from numba import njit

from kernels import RELU
from kernels._blas import gemm_a_b, gemm_a_bt, gemm_at_b
from kernels.activations import _add_bias_activate
from kernels.dense import _forward_loop
from kernels.products import _loop_a_b


@njit(cache=True)
def _forward(loop, A, W, b, out, reps):
    for _ in range(reps):
        if loop:
            _forward_loop(A, W, b, out, RELU)
        else:
            gemm_a_bt(A, W, out, 1.0, 0.0)
            _add_bias_activate(out, b, RELU)


@njit(cache=True)
def _backprop(loop, D, W, below, reps):
    for _ in range(reps):
        if loop:
            _loop_a_b(D, W, below, 1.0, 0.0)
        else:
            gemm_a_b(D, W, below, 1.0, 0.0)


@njit(cache=True)
def _gradient(loop, D, A, W, reps):
    for _ in range(reps):
        if loop:
            _loop_a_b(D.T, A, W, -1e-9, 1.0)
        else:
            gemm_at_b(D, A, W, -1e-9, 1.0)


def _seconds_per_call(fn, args, target=0.02):
    fn(*args, 1)
    reps = 1
    while True:
        start = time.perf_counter()
        fn(*args, reps)
        elapsed = time.perf_counter() - start
        if elapsed > target:
            return elapsed / reps
        reps *= 4


def grid(batches, widths):
    """Rows (kind, m, n_in, n_out, macs, loop seconds, BLAS seconds) over the grid."""
    rng = np.random.default_rng(0)
    rows = []
    for m, n_in, n_out in itertools.product(batches, widths, widths):
        A = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        b = rng.standard_normal(n_out, dtype=np.float32)
        D = rng.standard_normal((m, n_out), dtype=np.float32)
        out = np.empty((m, n_out), np.float32)
        below = np.empty((m, n_in), np.float32)
        for kind, fn, args in (("forward", _forward, (A, W, b, out)),
                               ("backprop", _backprop, (D, W, below)),
                               ("gradient", _gradient, (D, A, W))):
            loop = _seconds_per_call(fn, (True,) + args)
            blas = _seconds_per_call(fn, (False,) + args)
            rows.append((kind, m, n_in, n_out, m * n_in * n_out, loop, blas))
    return rows


def best_threshold(rows, candidates):
    """(threshold, {threshold: total time relative to the per-shape best}) for one kind."""
    totals = {}
    for t in candidates:
        totals[t] = sum((loop if n_out <= t else blas) / min(loop, blas)
                        for _, _, _, n_out, _, loop, blas in rows)
    return min(totals, key=totals.get), totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    args = parser.parse_args(argv)
    batches = [16, 64] if args.quick else [8, 16, 32, 64, 128]
    widths = [1, 8, 32, 128] if args.quick else [1, 4, 10, 20, 32, 64, 128, 256]
    rows = grid(batches, widths)
    print("%-9s %5s %5s %5s %9s %9s %9s"
          % ("kind", "m", "n_in", "n_out", "MACs", "loop us", "BLAS us"))
    for kind, m, n_in, n_out, macs, loop, blas in rows:
        print("%-9s %5d %5d %5d %9d %9.2f %9.2f %s" % (kind, m, n_in, n_out, macs, loop * 1e6,
                                                       blas * 1e6, "loop" if loop < blas else ""))
    candidates = [0] + sorted(set(widths))
    print()
    for kind in ("forward", "backprop", "gradient"):
        best, totals = best_threshold([r for r in rows if r[0] == kind], candidates)
        n = sum(1 for r in rows if r[0] == kind)
        print("%-9s loop for n_out <= %3d: grid time %.2f x the per-shape best (BLAS always: "
              "%.2f x, loop always: %.2f x)"
              % (kind, best, totals[best] / n, totals[0] / n, totals[candidates[-1]] / n))


if __name__ == "__main__":
    main()
