"""K networks at once against one: what an ``Ensemble`` of K T1 networks costs per network.

    python -m benchmarks.ensemble_scaling                  # K = 1, 2, 4, 8, 16; 3 rounds
    python -m benchmarks.ensemble_scaling --ks 16 --rounds 5

One epoch of T1 (20-64-64-1, batch 32, plain SGD, float32; ``benchmarks.configs``) over
50,000 rows: one ``MLP`` trained alone on one thread (``n_jobs=1`` of a one-member
ensemble), against ``Ensemble(n_networks=K)`` on every usable core (``n_jobs=None``). Each
member is bit-identical to the network trained alone (tests/test_ensemble.py), so the ratio
is the price of K networks. All in one process, the settings alternating round after round,
kernels compiled before the timing; medians. Issue 24 asks for 16 networks in at most 6x
the time of one on this 2-core machine.
"""

import argparse
import statistics
import time

from numba_dense.model import Ensemble

from .configs import CONFIGS, LR, make_data


def _fit(n_networks, n_jobs, X, y, config):
    ens = Ensemble(config.sizes, seed=0, n_networks=n_networks, n_jobs=n_jobs)
    start = time.perf_counter()
    ens.fit(X, y, epochs=1, batch_size=config.batch, lr=LR, shuffle=False,
            standardize_target=False)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=50_000)
    args = parser.parse_args(argv)
    config = CONFIGS["T1"]
    X, Y = make_data(config, args.rows)
    y = Y[:, 0]
    _fit(2, None, X[:1000], y[:1000], config)  # compile (or load) outside the timing
    settings = [(1, 1)] + [(k, None) for k in args.ks]
    times = {s: [] for s in settings}
    for _ in range(args.rounds):
        for k, jobs in settings:
            times[(k, jobs)].append(_fit(k, jobs, X, y, config))
    alone = statistics.median(times[(1, 1)])
    print("T1, %d rows, one epoch; one network alone on one thread: %.3f s"
          % (args.rows, alone))
    print("| networks | seconds | x one alone | per network |")
    print("| --- | --- | --- | --- |")
    for k in args.ks:
        t = statistics.median(times[(k, None)])
        print("| %d | %.3f | %.2f | %.3f |" % (k, t, t / alone, t / k))


if __name__ == "__main__":
    main()
