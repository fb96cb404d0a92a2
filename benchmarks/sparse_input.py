"""Sparse input: an epoch on a one-hot CSR table against the same rows densified.

    python -m benchmarks.sparse_input [--rows 200000] [--groups 8] [--per-group 250]
                                      [--rounds 3] [--epochs 2]

The table is ``rows`` rows of ``groups`` one-hot groups of ``per-group`` columns each
(defaults: 200,000 x 2,000, 8 non-zeros a row, float32), as ``OneHotEncoder`` makes of 8
categorical columns; the target a noisy sum of one weight per category. Each network
(2000-64-1 and 2000-64-32-1, MSE, Adam, batch 200, shuffled) trains ``epochs`` epochs on
the ``kernels.CSR`` record and on the dense matrix, each measurement in a process of its
own (compiled and warmed up by one epoch first, then timed), in alternating order round
after round; the table gives the median seconds an epoch and their ratio. The done-when
of issue 22: the sparse epoch at least 10 times faster.

``asv``: ``SparseEpoch`` below times one epoch of each (a smaller table: 50,000 rows).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np

NETWORKS = {"2000-64-1": ([64, 1], [1, 0]), "2000-64-32-1": ([64, 32, 1], [1, 1, 0])}


def one_hot_table(rows, groups, per_group, seed=0):
    """(scipy CSR X (rows, groups * per_group) float32, Y (rows, 1) float32)."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, per_group, (rows, groups)) + per_group * np.arange(groups)
    X = sp.csr_matrix((np.ones(rows * groups, np.float32), cols.ravel(),
                       np.arange(0, rows * groups + 1, groups)),
                      shape=(rows, groups * per_group))
    effect = rng.standard_normal(groups * per_group).astype(np.float32)
    Y = (effect[cols].sum(axis=1) + rng.standard_normal(rows)).astype(np.float32)
    return X, (Y / Y.std()).reshape(-1, 1)


class Runner:
    """An epoch of ``kernels.train_epoch`` on one network and one form of X, ready to run."""

    def __init__(self, X, Y, hidden, acts, form, batch=200, seed=0):
        from numba_dense import kernels
        self.kernels = kernels
        self.X = kernels.csr(X) if form == "sparse" else X.toarray()
        self.Y = Y
        self.n = X.shape[0]
        self.network = kernels.network([X.shape[1]] + hidden, acts, "mse")
        rng = np.random.default_rng(seed)
        P = int(kernels.param_count(self.network.sizes))
        self.params = (rng.standard_normal(P) * 0.02).astype(np.float32)
        self.grads = np.empty_like(self.params)
        self.optimizer = kernels.optimizer("adam", self.params, 1e-3)
        self.batch = batch
        self.work = np.empty(int(kernels.workspace_size(self.network.sizes, batch)), np.float32)
        self.rng = rng

    def epoch(self):
        order = self.rng.permutation(self.n)
        return self.kernels.train_epoch(self.X, self.Y, self.params, self.grads, self.network,
                                        self.optimizer, self.kernels.batches(self.batch, order),
                                        self.work)


def _child(args):
    """One measurement: build, warm up (compile), time ``epochs`` epochs; print JSON."""
    X, Y = one_hot_table(args.rows, args.groups, args.per_group)
    hidden, acts = NETWORKS[args.network]
    hidden = list(hidden)
    runner = Runner(X, Y, hidden, acts, args.form)
    runner.epoch()
    seconds, costs = [], []
    for _ in range(args.epochs):
        start = time.perf_counter()
        costs.append(runner.epoch())
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": statistics.median(seconds), "cost": costs[-1]}))


def _measure(args, network, form):
    command = [sys.executable, "-m", "benchmarks.sparse_input", "--child", "--form", form,
               "--network", network, "--rows", str(args.rows), "--groups", str(args.groups),
               "--per-group", str(args.per_group), "--epochs", str(args.epochs)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200000)
    parser.add_argument("--groups", type=int, default=8)
    parser.add_argument("--per-group", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--form", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    parser.add_argument("--network", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    columns = args.groups * args.per_group
    print("one-hot table: %d rows x %d columns, %d non-zeros a row, float32; MSE, Adam, "
          "batch 200, shuffled; %d epochs a process, %d rounds"
          % (args.rows, columns, args.groups, args.epochs, args.rounds), flush=True)
    networks = args.networks.split(",")
    seconds = {(n, f): [] for n in networks for f in ("sparse", "dense")}
    for r in range(args.rounds):
        forms = ("sparse", "dense") if r % 2 == 0 else ("dense", "sparse")
        for network in networks:
            for form in forms:
                result = _measure(args, network, form)
                seconds[network, form].append(result["seconds"])
                print("round %d  %-14s %-6s %.3f s/epoch  (cost %.4f)"
                      % (r + 1, network, form, result["seconds"], result["cost"]), flush=True)
    print()
    print("| network | sparse s/epoch | dense s/epoch | dense / sparse |")
    print("| --- | --- | --- | --- |")
    for network in networks:
        s = statistics.median(seconds[network, "sparse"])
        d = statistics.median(seconds[network, "dense"])
        print("| %s | %.3f | %.3f | %.1fx |" % (network.replace("2000", str(columns), 1), s, d,
                                                d / s))


class SparseEpoch:
    """asv: one epoch on a one-hot table of 50,000 x 2,000 (8 non-zeros a row), as the
    CSR record and as the dense matrix."""
    params = [["sparse", "dense"], list(NETWORKS)]
    param_names = ["form", "network"]
    timeout = 900
    number = 1
    repeat = (1, 3, 120.0)

    def setup(self, form, network):
        X, Y = one_hot_table(50000, 8, 250)
        hidden, acts = NETWORKS[network]
        self.runner = Runner(X, Y, list(hidden), acts, form)
        self.runner.epoch()  # compiled and warmed up here

    def time_epoch(self, form, network):
        self.runner.epoch()


if __name__ == "__main__":
    main()
