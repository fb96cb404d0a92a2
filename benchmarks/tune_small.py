"""Find where a compiled loop, register tiles and a BLAS call each win, for each kind of product.

    python -m benchmarks.tune_small            # prints the grid's times and the thresholds
    python -m benchmarks.tune_small --quick    # a smaller grid

The training step makes three kinds of product (``kernels/products.py``, ``kernels/dense.py``):

- forward  ``sigma(A @ W.T + b)``: ``forward_loop``; ``W.T`` copied and register tiles
  (``kernels.tiled``); ``gemm_a_bt``; the last two then a bias/activation sweep;
- backprop ``delta @ W``: ``loop_a_b``, ``tiled_a_b``, ``gemm_a_b``;
- gradient ``W -= lr * delta.T @ A``: ``loop_a_b`` and ``tiled_a_b`` on ``delta.T``,
  ``gemm_at_b``.

For each kind it times all three over a grid of batch sizes and layer widths (each call
repeated in compiled code until it has run for a while, the BLAS at its usual thread
count). The rule it tunes: a loop when the layer's output width ``n_out`` is at most
``L`` (the thin side of a tabular network's products: an output layer of 1 to 10 units),
otherwise tiles when the product has at most ``T`` multiply-adds, otherwise BLAS. For every
pair (L, T) it sums the grid's time relative to the best choice shape by shape; the pair
with the lowest total is what ``kernels/products.py`` uses (``*_LOOP_MAX_OUTPUTS``,
``*_TILED_MAX_MACS``). Rerun this on a new CPU before changing them.
"""

import argparse
import itertools
import time

import numpy as np
from numba import njit

from numba_dense.kernels import RELU
from numba_dense.kernels.products import gemm_a_b, gemm_a_bt, gemm_at_b
from numba_dense.kernels.activations import add_bias_activate
from numba_dense.kernels.dense import forward_loop
from numba_dense.kernels.products import loop_a_b
from numba_dense.kernels.tiled import tiled_a_b, transpose_into

LOOP, TILED, BLAS = 0, 1, 2
IMPLS = ("loop", "tiles", "BLAS")


@njit(cache=True)
def forward(impl, A, W, b, out, reps):
    WT = np.empty((W.shape[1], W.shape[0]), W.dtype)
    for _ in range(reps):
        if impl == LOOP:
            forward_loop(A, W, b, out, RELU)
            continue
        if impl == TILED:
            transpose_into(W, WT)
            tiled_a_b(A, WT, out, 1.0, 0.0)
        else:
            gemm_a_bt(A, W, out, 1.0, 0.0)
        add_bias_activate(out, b, RELU)


@njit(cache=True)
def backprop(impl, D, W, below, reps):
    for _ in range(reps):
        if impl == LOOP:
            loop_a_b(D, W, below, 1.0, 0.0)
        elif impl == TILED:
            tiled_a_b(D, W, below, 1.0, 0.0)
        else:
            gemm_a_b(D, W, below, 1.0, 0.0)


@njit(cache=True)
def gradient(impl, D, A, W, reps):
    for _ in range(reps):
        if impl == LOOP:
            loop_a_b(D.T, A, W, -1e-9, 1.0)
        elif impl == TILED:
            tiled_a_b(D.T, A, W, -1e-9, 1.0)
        else:
            gemm_at_b(D, A, W, -1e-9, 1.0)


def seconds_per_call(fn, args, target=0.02):
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
    """Rows (kind, m, n_in, n_out, macs, (loop, tiles, BLAS) seconds) over the grid."""
    rng = np.random.default_rng(0)
    rows = []
    for m, n_in, n_out in itertools.product(batches, widths, widths):
        A = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        b = rng.standard_normal(n_out, dtype=np.float32)
        D = rng.standard_normal((m, n_out), dtype=np.float32)
        out = np.empty((m, n_out), np.float32)
        below = np.empty((m, n_in), np.float32)
        for kind, fn, args in (("forward", forward, (A, W, b, out)),
                               ("backprop", backprop, (D, W, below)),
                               ("gradient", gradient, (D, A, W))):
            times = tuple(seconds_per_call(fn, (impl,) + args) for impl in (LOOP, TILED, BLAS))
            rows.append((kind, m, n_in, n_out, m * n_in * n_out, times))
    return rows


def choice(n_out, macs, loop_max, tiled_max):
    """The implementation the rule picks: LOOP, TILED or BLAS."""
    if n_out <= loop_max:
        return LOOP
    return TILED if macs <= tiled_max else BLAS


def best_thresholds(rows, loop_candidates, tiled_candidates):
    """((L, T), {(L, T): total time relative to the per-shape best}) for one kind."""
    totals = {}
    for pair in itertools.product(loop_candidates, tiled_candidates):
        totals[pair] = sum(times[choice(n_out, macs, *pair)] / min(times)
                           for _, _, _, n_out, macs, times in rows)
    return min(totals, key=totals.get), totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    args = parser.parse_args(argv)
    batches = [16, 64] if args.quick else [8, 16, 32, 64, 128]
    widths = [1, 8, 32, 128] if args.quick else [1, 4, 10, 20, 32, 64, 128, 256]
    rows = grid(batches, widths)
    print("%-9s %5s %5s %5s %9s %9s %9s %9s"
          % ("kind", "m", "n_in", "n_out", "MACs", "loop us", "tiles us", "BLAS us"))
    for kind, m, n_in, n_out, macs, times in rows:
        print("%-9s %5d %5d %5d %9d %9.2f %9.2f %9.2f %s"
              % ((kind, m, n_in, n_out, macs) + tuple(t * 1e6 for t in times)
                 + (IMPLS[int(np.argmin(times))],)))
    loop_candidates = [0] + sorted(set(widths))
    tiled_candidates = [0] + [1 << e for e in range(10, 25)]
    never, always = 0, tiled_candidates[-1]
    print()
    for kind in ("forward", "backprop", "gradient"):
        kind_rows = [r for r in rows if r[0] == kind]
        (loop_max, tiled_max), totals = best_thresholds(kind_rows, loop_candidates,
                                                        tiled_candidates)
        n = len(kind_rows)
        print("%-9s loop for n_out <= %3d, tiles up to 2^%d MACs: grid time %.2f x the "
              "per-shape best (BLAS always: %.2f x, tiles always: %.2f x, loop always: %.2f x)"
              % (kind, loop_max, int(np.log2(max(tiled_max, 1))), totals[loop_max, tiled_max] / n,
                 totals[0, never] / n, totals[0, always] / n,
                 totals[loop_candidates[-1], never] / n))
        best = totals[loop_max, tiled_max]
        close = sorted(pair for pair, total in totals.items()
                       if pair != (loop_max, tiled_max) and total <= 1.01 * best)
        if close:
            print("          within 1%% of it (settle with benchmarks.ab_constant on whole "
                  "epochs): %s" % ", ".join("n_out <= %d, 2^%d" % (l, int(np.log2(max(t, 1))))
                                            for l, t in close))


if __name__ == "__main__":
    main()
