"""An epoch of ``fit`` with its defaults, on a quiet machine and beside processes busy on the cores.

    python -m benchmarks.busy_machine                    # T1, T3 and C, beside 3 busy processes
    python -m benchmarks.busy_machine --configs T3 --busy 3 --rounds 5

Issue 23: beside three busy processes an epoch is still at most 3x its quiet time. ``fit``
with ``n_jobs=None`` splits a network's steps over the free cores (``kernels.parallel``)
and hands BLAS the free cores only (``kernels.blas_threads_for``); both read the load
(``kernels.threads.free_cores``) before each epoch and, for a split epoch, every
``PIECE_STEPS`` steps, so that no thread of the step waits for a core another process
holds. Each round trains a fresh network for two epochs with ``fit``'s defaults but the
configuration's batch size and lr and takes the second epoch's ``History.seconds``
(the first loads the kernels); the quiet rounds run first, then the same rounds with
``--busy`` processes spinning in pure Python (``while True: pass``), started half a second
before. Two cores shared with three such processes leave this one 2/4 to 2/5 of the
machine, so about 2-2.5x is the fair share on a 2-core host. Prints the medians, their
ratio and the CPU model.
"""

import argparse
import statistics

from benchmarks.configs import CONFIGS, LR, busy_processes, cpu_line, is_classifier, make_data


def _epoch_seconds(config, X, Y, seed, n_jobs=None):
    from numba_dense.model import MLP
    net = MLP(config.sizes, output=config.output, seed=seed)
    history = net.fit(X, Y, epochs=2, batch_size=config.batch, lr=LR, verbose=False,
                      n_jobs=n_jobs)
    return history.seconds[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["T1", "T3", "C"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--busy", type=int, default=3, help="busy processes beside the epoch")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=None,
                        help="fit's n_jobs (default None: the free cores)")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows of each configuration (default: its own, C's 60,000)")
    args = parser.parse_args(argv)
    data = {name: make_data(CONFIGS[name], rows=args.rows) for name in args.configs}
    for name in args.configs:  # compile or load every kernel before timing
        config = CONFIGS[name]
        _epoch_seconds(config, data[name][0][:2000], data[name][1][:2000], 0)
    quiet = {name: [] for name in args.configs}
    busy = {name: [] for name in args.configs}
    for times, spinning in ((quiet, 0), (busy, args.busy)):
        with busy_processes(spinning):
            for r in range(args.rounds):
                for name in args.configs:
                    times[name].append(_epoch_seconds(CONFIGS[name], *data[name], r + 1,
                                                      args.jobs))
    print(cpu_line())
    print("fit's defaults (n_jobs=%s), the second epoch of each fit; medians of %d rounds"
          % (args.jobs, args.rounds))
    print("| config | rows | quiet s/epoch | beside %d busy processes | slowdown |" % args.busy)
    print("| --- | --- | --- | --- | --- |")
    for name in args.configs:
        config = CONFIGS[name]
        q, b = statistics.median(quiet[name]), statistics.median(busy[name])
        kind = "classifier" if is_classifier(config) else "regression"
        print("| %s %s, b%d (%s) | %d | %.4f | %.4f | %.2fx |"
              % (name, "-".join(map(str, config.sizes)), config.batch, kind,
                 len(data[name][0]), q, b, b / q))


if __name__ == "__main__":
    main()
