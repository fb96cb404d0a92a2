"""Time an epoch of each configuration for numba-dense and its peers, each in its own process.

    python -m benchmarks.compare_peers                   # every configuration, 3 rounds
    python -m benchmarks.compare_peers --configs T1 T2 --rounds 5 --peers numpy torch
    python -m benchmarks.compare_peers --rows 20000 --rounds 1          # a quick look
    python -m benchmarks.compare_peers --configs T1 B --scaling         # 1, 2, ... N threads

Every implementation (numba-dense, the NumPy loop of ``numpy_loop.py``, PyTorch and
scikit-learn when installed) runs in a worker process of its own, with its own BLAS thread
pool as a user has it, set up and warmed up once. Then rounds alternate: in each round
every worker times the configuration's epochs in turn (the starting worker rotates), while
the others wait idle. Medians over the rounds are reported, so the drift of a shared
machine hits every implementation alike. The same run measures the best float32 GEMM rate
(for D's efficiency) and one streaming read of A's X (A is bound by memory bandwidth).

Every implementation runs with its library's default threads (all the cores for NumPy's
and PyTorch's BLAS and PyTorch's own pool; numba-dense trains one network on one thread,
with BLAS threads only for products large enough, ``kernels.blas_threads_for``). With
``--scaling`` a second table repeats each configuration with every worker limited to 1, 2,
4, ... and all N cores (``THREAD_VARIABLES`` set in the worker's environment before its
libraries load): how each implementation's epoch scales with the cores it is given.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

from numba import njit

from .configs import CONFIGS, cpu_line, make_data, matmul_flops
from .peers import RUNNERS

PEERS = [impl for impl in RUNNERS if impl != "numba"]
#: What limits a worker to ``t`` threads: OpenBLAS (NumPy's and SciPy's), MKL, OpenMP
#: (PyTorch's intra-op pool reads it) and Numba's own pool.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@njit(cache=True, fastmath={"reassoc", "contract"})
def stream_read(X):
    """Sum of every element: one streaming read of X at memory bandwidth."""
    flat = X.reshape(-1)
    total = flat.dtype.type(0)
    for i in range(flat.shape[0]):
        total += flat[i]
    return total


class Worker:
    """One implementation's process (``python -m benchmarks.peers IMPL CONFIG``)."""

    def __init__(self, impl, config, rows, threads=None):
        self.impl = impl
        env = dict(os.environ)
        if threads is not None:  # else the libraries' defaults, as a user has them
            env.update({name: str(threads) for name in THREAD_VARIABLES})
        self.proc = subprocess.Popen([sys.executable, "-m", "benchmarks.peers", impl, config,
                                      str(rows)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     cwd=_ROOT, env=env)
        first = self.proc.stdout.readline().strip()
        self.skip = first[5:] if first.startswith("skip ") else None
        if first != "ready" and self.skip is None:
            self.close()
            raise RuntimeError("%s worker for %s failed to start (said %r)"
                               % (impl, config, first))

    def epoch_seconds(self):
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait()


def measure(config, impls, rounds, threads=None):
    """{impl: median seconds per epoch} for one configuration, plus 'read' for A (with the
    libraries' default threads); every worker limited to ``threads`` threads when given."""
    name = config.name
    workers = {}
    try:
        for impl in impls:
            w = Worker(impl, name, config.rows, threads)
            if w.skip:
                print("  %s: %s skipped: %s" % (name, impl, w.skip), flush=True)
                w.close()
                continue
            workers[impl] = w
        times = {impl: [] for impl in workers}
        order = list(workers)
        for r in range(rounds):
            for impl in order[r % len(order):] + order[:r % len(order)]:
                time.sleep(0.2)  # let the previous worker's BLAS threads go to sleep
                times[impl].append(workers[impl].epoch_seconds())
    finally:
        for w in workers.values():
            w.close()
    result = {impl: statistics.median(t) for impl, t in times.items()}
    if name == "A" and threads is None:
        X, _ = make_data(config)
        stream_read(X[:10])
        reads = []
        for _ in range(max(rounds, 3)):
            start = time.perf_counter()
            stream_read(X)
            reads.append(time.perf_counter() - start)
        result["read"] = statistics.median(reads)
    plural = "" if threads == 1 else "s"
    label = name if threads is None else "%s, %d thread%s" % (name, threads, plural)
    print("  %s: %s" % (label, ", ".join("%s %.4fs" % kv for kv in result.items())), flush=True)
    return result


def thread_counts(cores=None):
    """1, 2, 4, ... below ``cores`` (this machine's by default), then ``cores``."""
    cores = cores or os.cpu_count() or 1
    counts, t = [], 1
    while t < cores:
        counts.append(t)
        t *= 2
    return counts + [cores]


NAMES = {"numba": "numba-dense", "numpy": "NumPy loop", "sklearn": "scikit-learn",
         "torch": "PyTorch"}


def scaling_report(scaling, impls):
    """The table of ``--scaling``: s/epoch of each implementation at each thread count, and
    its speed-up over its own one-thread epoch."""
    print()
    print("Scaling: s/epoch (speed-up over the same implementation on 1 thread)")
    print()
    print("| config | threads | " + " | ".join(NAMES.get(i, i) for i in impls) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in impls) + " |")
    for name, by_threads in scaling.items():
        one = by_threads[min(by_threads)]
        for threads, r in sorted(by_threads.items()):
            cells = ["%.4f (%.2fx)" % (r[i], one[i] / r[i]) if i in r and i in one else "–"
                     for i in impls]
            print("| %s | %d | %s |" % (name, threads, " | ".join(cells)))


def _ratio(r, impl):
    return "%.3f | %.1fx" % (r[impl], r[impl] / r["numba"]) if impl in r else "– | –"


def report(configs, results, rounds):
    print()
    print("CPU: %s, %d cores; medians of %d alternating rounds, each implementation in its "
          "own process with its libraries' default threads"
          % (cpu_line(), os.cpu_count(), rounds))
    print()
    print("| config | network | batch | rows | numba-dense s/epoch | rows/s | NumPy loop | vs "
          "NumPy | scikit-learn | vs sklearn | PyTorch | vs PyTorch |")
    print("| --- " * 12 + "|")
    for name, r in results.items():
        c = configs[name]
        print("| %s | %s | %d | %s | %.4f | %.3g | %s | %s | %s |" % (
            name, "-".join(map(str, c.sizes)) + (" softmax" if c.output == "softmax" else ""),
            c.batch, format(c.rows, ","), r["numba"], c.rows / r["numba"],
            _ratio(r, "numpy"), _ratio(r, "sklearn"), _ratio(r, "torch")))
    print()
    for name, r in results.items():
        gflops = matmul_flops(configs[name]) / r["numba"] / 1e9
        print("%s: %.1f GFLOP/s of the epoch's matrix products" % (name, gflops))
    if "A" in results:
        r = results["A"]
        print("A: epoch / one streaming read of X = %.2f (read %.4fs, %.1f GB/s)" % (
            r["numba"] / r["read"], r["read"], configs["A"].rows * 100 * 4 / r["read"] / 1e9))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--peers", nargs="+", default=PEERS, choices=PEERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=None,
                        help="rows of data instead of each configuration's own (quick runs)")
    parser.add_argument("--scaling", action="store_true",
                        help="also time every worker limited to 1, 2, 4, ... N threads")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.rows is not None and args.rows < 1:
        parser.error("--rows must be at least 1")
    configs = {name: CONFIGS[name] if args.rows is None else CONFIGS[name]._replace(rows=args.rows)
               for name in args.configs}
    impls = ["numba"] + args.peers
    results = {name: measure(c, impls, args.rounds) for name, c in configs.items()}
    report(configs, results, args.rounds)
    if args.scaling:
        scaling = {name: {t: measure(c, impls, args.rounds, t) for t in thread_counts()}
                   for name, c in configs.items()}
        scaling_report(scaling, impls)


if __name__ == "__main__":
    main()
