"""What dropout costs an epoch: ``kernels.train_epoch`` of a configuration with no dropout
against the same epoch with every hidden layer dropped out at 0.1 (``kernels.Dropout``),
alternating in one process, medians.

    python -m benchmarks.dropout_cost                       # T1 and T3, 7 rounds
    python -m benchmarks.dropout_cost --configs T1 --rounds 11

The masks are hashed, not stored (``kernels.masks``): each hidden unit costs one SplitMix64
hash in the forward pass and one in the backward pass. asv tracks the same epochs
(``bench_epochs.DropoutEpoch``).
"""

import argparse
import statistics
import time

import numpy as np

from numba_dense import kernels

from .configs import CONFIGS, LR, is_classifier, make_data

RATE = 0.1


def make_epoch(config, rate, rows=50_000):
    """A function running one epoch of ``config`` (Adam, shuffled) with every hidden layer
    dropped out at ``rate`` (0: a plain ``Batches``), compiled and warmed up."""
    X, Y = make_data(config, rows)
    if is_classifier(config):
        Y = np.eye(config.sizes[-1], dtype=np.float32)[Y]
        loss, last = "cross_entropy", kernels.IDENTITY
    else:
        loss, last = "mse", kernels.IDENTITY
    sizes = np.array(config.sizes)
    network = kernels.network(sizes, [kernels.RELU] * (len(sizes) - 2) + [last], loss)
    params = (np.random.default_rng(0).standard_normal(int(kernels.param_count(sizes)))
              * 0.05).astype(np.float32)
    grads = np.zeros_like(params)
    optimizer = kernels.optimizer("adam", params, LR / 10)
    work = np.empty(int(kernels.workspace_size(sizes, config.batch)), np.float32)
    order = np.random.default_rng(1).permutation(X.shape[0])
    batches = kernels.batches(config.batch, order)
    if rate:
        batches = kernels.dropout(batches, [rate] * (len(sizes) - 2), 7)

    def epoch():
        return kernels.train_epoch(X, Y, params, grads, network, optimizer, batches, work)

    epoch()
    return epoch


def measure(name, rounds):
    """(seconds without dropout, seconds with), medians of alternating rounds."""
    config = CONFIGS[name]
    runs = {0.0: make_epoch(config, 0.0), RATE: make_epoch(config, RATE)}
    times = {rate: [] for rate in runs}
    for _ in range(rounds):
        for rate, run in runs.items():
            start = time.perf_counter()
            run()
            times[rate].append(time.perf_counter() - start)
    return statistics.median(times[0.0]), statistics.median(times[RATE])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["T1", "T3"], choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print("| config | no dropout, s/epoch | dropout %.1f, s/epoch | ratio |" % RATE)
    print("| --- | --- | --- | --- |")
    for name in args.configs:
        if len(CONFIGS[name].sizes) < 3:
            continue  # no hidden layer to drop
        plain, dropped = measure(name, args.rounds)
        row = (name, plain, dropped, dropped / plain)
        print("| %s (50,000 rows) | %.4f | %.4f | %.2f |" % row)


if __name__ == "__main__":
    main()
