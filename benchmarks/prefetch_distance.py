"""How far ahead the streamed one-layer epoch should prefetch rows (``config.PREFETCH_BYTES``;
the distance it gives rows of this width is marked).

    python -m benchmarks.prefetch_distance            # config A's shape, 1,000,000 rows
    python -m benchmarks.prefetch_distance --rows 200000 --n-in 32 --shuffle

Times ``kernels.epoch_streaming`` (the epoch ``train_epoch`` runs for a one-layer
network of at most ``STREAMING_MAX_OUTPUTS`` outputs) on data far larger than the caches,
for each distance in rows, alternating the distances round after round, and prints the
median ns per row of each with its ratio to no prefetch. The internal kernel is timed on
purpose: the distance is its argument, and the public ``train_epoch`` fixes it.
"""

import argparse
import time

import numpy as np

DISTANCES = (0, 2, 4, 8, 16, 32)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--n-in", type=int, default=100)
    parser.add_argument("--batch", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--shuffle", action="store_true", help="rows in a random order")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args(argv)

    from numba_dense.kernels import RELU, batches, epoch_streaming, optimizer
    from numba_dense.kernels.config import PREFETCH_BYTES
    from numba_dense.kernels.loop import prefetch_rows
    rng = np.random.default_rng(0)
    dtype = np.dtype(args.dtype)
    X = rng.standard_normal((args.rows, args.n_in), dtype=np.float32).astype(dtype, copy=False)
    X *= dtype.type(1 / np.sqrt(args.n_in))
    Y = np.tanh(X @ rng.standard_normal((args.n_in, 1)).astype(dtype)).astype(dtype)
    start = (rng.standard_normal(args.n_in + 1) / np.sqrt(args.n_in)).astype(dtype)
    grads = np.zeros_like(start)
    epoch_batches = batches(args.batch, rng.permutation(args.rows) if args.shuffle else None)

    def epoch(distance):
        params = start.copy()
        opt = optimizer("sgd", params, 0.001)  # plain SGD, lr 0.001
        began = time.perf_counter()
        epoch_streaming(X, Y, params, grads, opt, RELU, epoch_batches, distance)
        return (time.perf_counter() - began) / args.rows * 1e9

    for d in DISTANCES:
        epoch(d)  # compile (once) and touch the data
    times = {d: [] for d in DISTANCES}
    for r in range(args.rounds):
        for d in DISTANCES[r % len(DISTANCES):] + DISTANCES[:r % len(DISTANCES)]:
            times[d].append(epoch(d))
    base = np.median(times[0])
    print("streamed epoch, %d rows x %d %s, batch %d, %s order; medians of %d rounds"
          % (args.rows, args.n_in, args.dtype, args.batch,
             "shuffled" if args.shuffle else "storage", args.rounds))
    print("| rows ahead | ns per row | vs no prefetch |")
    print("| --- | --- | --- |")
    default = prefetch_rows(args.n_in, dtype.itemsize, PREFETCH_BYTES)
    for d in DISTANCES:
        mark = " (PREFETCH_BYTES)" if d == default else ""
        print("| %d%s | %.1f | %.2fx |" % (d, mark, np.median(times[d]),
                                           base / np.median(times[d])))


if __name__ == "__main__":
    main()
