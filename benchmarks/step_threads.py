"""One network on 1, 2, ... N threads: the data-parallel epoch against the one-thread epoch.

    python -m benchmarks.step_threads                        # T1 T2 T3, 1..cores threads
    python -m benchmarks.step_threads --configs T1 --shard-macs 32768 65536 131072
    python -m benchmarks.step_threads --threads 1 2 4 8 16 --rounds 5

For each configuration (``benchmarks.configs``: float32, plain SGD) and each shard size
``--shard-macs`` (``kernels.config.SHARD_MIN_MACS``: fewest forward multiply-adds in a
shard), times one epoch of

- ``serial``: ``kernels.train_epoch_batched``, the one-thread epoch ``fit`` ran before;
- ``threads=k``: ``kernels.train_epoch_parallel`` on k threads (k = 1 runs the shards one
  after another on the calling thread: the cost of splitting alone),

in alternating rounds within one process, and prints the median seconds, each one's speed
over ``serial`` and the shard plan. The crossover is the smallest shard whose two-thread
epoch beats ``serial`` by a margin; ``docs/performance.md`` ("One network on every core")
keeps the runs. Run it alone: another process on the cores makes the threads wait.
"""

import argparse
import statistics
import time

import numpy as np

from numba_dense import kernels
from numba_dense.kernels import parallel
from numba_dense.kernels.threads import usable_cores

from .configs import CONFIGS, LR, cpu_line, is_classifier, make_data


def _network(config):
    acts = [kernels.ACTIVATIONS["relu"]] * (len(config.sizes) - 2)
    if is_classifier(config):
        return kernels.network(config.sizes, acts + [kernels.ACTIVATIONS["identity"]],
                               kernels.LOSSES["cross_entropy"])
    acts.append(kernels.ACTIVATIONS[config.output])
    return kernels.network(config.sizes, acts, kernels.LOSSES["mse"])


def _targets(config, Y):
    if not is_classifier(config):
        return Y
    onehot = np.zeros((len(Y), config.sizes[-1]), np.float32)
    onehot[np.arange(len(Y)), Y] = 1
    return onehot


def _epoch_runner(config, X, Y, how):
    """A function that trains one epoch from the same start, and returns its seconds."""
    network = _network(config)
    sizes = np.array(config.sizes, np.int64)
    params0 = (np.random.default_rng(1).standard_normal(int(kernels.param_count(sizes)))
               * 0.1).astype(np.float32)
    batches = kernels.batches(config.batch, np.empty(0, np.int64))
    work = np.empty(int(kernels.workspace_size(sizes, config.batch)), np.float32)

    def run():
        params = params0.copy()
        grads = np.zeros_like(params)
        opt = kernels.optimizer("sgd", params, LR)
        start = time.perf_counter()
        if how == "serial":
            kernels.train_epoch_batched(X, Y, params, grads, network, opt, batches, work)
        else:
            kernels.train_epoch_parallel(X, Y, params, grads, network, opt, batches, how)
        return time.perf_counter() - start
    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["T1", "T2", "T3"])
    parser.add_argument("--threads", nargs="+", type=int, default=None)
    parser.add_argument("--shard-macs", nargs="+", type=int,
                        default=[kernels.config.SHARD_MIN_MACS])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None,
                        help="minibatch rows instead of each configuration's own")
    args = parser.parse_args(argv)
    threads = args.threads or list(range(1, usable_cores() + 1))
    print(cpu_line())
    print("%-4s %10s %8s %10s %10s %8s"
          % ("cfg", "shard MACs", "shards", "how", "s/epoch", "speed-up"))
    for name in args.configs:
        config = CONFIGS[name]
        if args.batch:
            config = config._replace(batch=args.batch)
        X, Y = make_data(config, rows=args.rows)
        Y = _targets(config, Y)
        for macs in args.shard_macs:
            parallel.SHARD_MIN_MACS = macs
            plan = parallel.shard_plan(config.sizes, config.batch)
            hows = ["serial"] + threads
            runners = {how: _epoch_runner(config, X, Y, how) for how in hows}
            for run in runners.values():
                run()  # compile, and warm the caches
            times = {how: [] for how in hows}
            for _ in range(args.rounds):
                for how in hows:
                    times[how].append(runners[how]())
            serial = statistics.median(times["serial"])
            for how in hows:
                median = statistics.median(times[how])
                label = how if how == "serial" else "threads=%d" % how
                print("%-4s %10d %8s %10s %10.4f %7.2fx" % (
                    name, macs, "%dx%d" % plan, label, median, serial / median))


if __name__ == "__main__":
    main()
