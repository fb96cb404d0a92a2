"""What a one-epoch ``fit`` costs beyond its epoch: input checks, target scaling, set-up.

    python -m benchmarks.fit_overhead                 # config A, 400,000 rows (160 MB)
    python -m benchmarks.fit_overhead --identity       # regression targets, standardized
    python -m benchmarks.fit_overhead --config T1 --rows 200000

Each round trains a fresh network for one epoch with ``fit``'s defaults (shuffled rows,
standardized targets) on the same arrays, after one warm-up fit that compiles or loads the
kernels, and records the whole call and the epoch inside it (``History.seconds``, which
includes the shuffle). Prints the medians and their ratio (issue 23: at most 1.25x on
config A), with the CPU's model.
"""

import argparse
import time

import numpy as np

from benchmarks.configs import CONFIGS, LR, cpu_line, make_data


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="A", choices=sorted(CONFIGS))
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--identity", action="store_true",
                        help="an identity output (targets standardized) instead of the config's")
    args = parser.parse_args(argv)

    from numba_dense.model import MLP
    config = CONFIGS[args.config]
    X, Y = make_data(config, rows=args.rows)
    # --identity: a regression output, whose targets fit standardizes (config A's ReLU
    # output is not standardized), to count that pass too
    output = "identity" if args.identity else config.output

    def fit(seed, rows=None):
        net = MLP(config.sizes, output=output, seed=seed)
        start = time.perf_counter()
        history = net.fit(X[:rows], Y[:rows], epochs=1, batch_size=config.batch, lr=LR,
                          verbose=False)
        return time.perf_counter() - start, history.seconds[0]

    fit(0, rows=1000)  # compiles, or loads the kernels from the cache
    times = np.array([fit(seed) for seed in range(1, args.rounds + 1)])
    whole, epoch = np.median(times, axis=0)
    print(cpu_line())
    print("config %s %s, %s output, batch %d, %d rows x %d float32 (%.0f MB), %d rounds"
          % (config.name, "-".join(map(str, config.sizes)), output, config.batch, args.rows,
             config.sizes[0], X.nbytes / 1e6, args.rounds))
    print("fit(epochs=1) %.4f s   its epoch %.4f s   ratio %.2fx (medians)"
          % (whole, epoch, whole / epoch))


if __name__ == "__main__":
    main()
