"""What shuffling costs an epoch: ``fit``'s default (shuffled rows) against ``shuffle=False``.

    python -m benchmarks.shuffled_epoch                     # T1 and T3, one thread, 5 rounds
    python -m benchmarks.shuffled_epoch --configs T1 --jobs 0 --rounds 7

A shuffled epoch draws a permutation (``np.random.Generator.permutation``) and gathers each
minibatch's rows from wherever they lie in X, which for these configurations is larger than
the core's caches; the next minibatch's rows are prefetched while one trains
(``kernels.loop.prefetch_rows_of``). Each round trains a fresh network for 3 epochs both
ways, alternating, and keeps the median of epochs 2 and 3 (``History.seconds``, which
includes the permutation); prints the medians over rounds, their difference, the
permutation's own time and the CPU model (docs/performance.md, "Gathering a shuffled
minibatch").
"""

import argparse
import statistics
import time

import numpy as np

from benchmarks.configs import CONFIGS, LR, cpu_line, make_data


def _epoch(config, X, Y, shuffle, n_jobs):
    from numba_dense.model import MLP
    net = MLP(config.sizes, output=config.output, seed=0)
    history = net.fit(X, Y, epochs=3, batch_size=config.batch, lr=LR, shuffle=shuffle,
                      n_jobs=n_jobs, verbose=False)
    return statistics.median(history.seconds[1:])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["T1", "T3"], choices=sorted(CONFIGS))
    parser.add_argument("--jobs", type=int, default=1,
                        help="fit's n_jobs (0: None, the free cores; default 1)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    n_jobs = args.jobs or None
    print(cpu_line())
    print("| config | rows | shuffled s/epoch | shuffle=False s/epoch | difference | "
          "permutation |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.configs:
        config = CONFIGS[name]
        X, Y = make_data(config)
        _epoch(config, X[:1000], Y[:1000], True, n_jobs)  # compile or load the kernels
        times = {True: [], False: []}
        for _ in range(args.rounds):
            for shuffle in (True, False):
                times[shuffle].append(_epoch(config, X, Y, shuffle, n_jobs))
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for _ in range(10):
            rng.permutation(len(X))
        permutation = (time.perf_counter() - start) / 10
        on, off = statistics.median(times[True]), statistics.median(times[False])
        print("| %s %s, b%d | %d | %.4f | %.4f | %.1f ms | %.1f ms |"
              % (name, "-".join(map(str, config.sizes)), config.batch, len(X), on, off,
                 (on - off) * 1e3, permutation * 1e3))


if __name__ == "__main__":
    main()
