"""Time an epoch of each configuration for NumPy, numba-dense and (if installed) PyTorch.

    python -m benchmarks.compare_peers              # all configurations, 3 alternating rounds
    python -m benchmarks.compare_peers --configs A B --rounds 5

Implementations run alternately in one process, round after round, and the median of the
rounds is reported, so that the drift of a shared machine hits them all alike. Besides the
epochs it measures, in the same run, the best float32 GEMM rate (for D's efficiency) and one
streaming read of A's X (A is bound by memory bandwidth).
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit

import kernels

from .configs import CONFIGS, make_data, matmul_flops
from .peers import RUNNERS, gemm_rates


@njit(cache=True, fastmath={"reassoc", "contract"})
def stream_read(X):
    """Sum of every element: one streaming read of X at memory bandwidth."""
    flat = X.reshape(-1)
    total = flat.dtype.type(0)
    for i in range(flat.shape[0]):
        total += flat[i]
    return total


def _time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(names, rounds):
    results = {}
    for name in names:
        config = CONFIGS[name]
        X, Y = make_data(config)
        runners = {}
        for impl, make in RUNNERS.items():
            runner = make(config, X, Y)
            if runner is None:
                print("  %s: PyTorch is not installed; skipping it (pip install torch)" % name)
                continue
            runners[impl] = runner
        times = {impl: [] for impl in runners}
        reads = []
        stream_read(X[:10])
        for _ in range(rounds):
            for impl, run in runners.items():
                times[impl].append(_time(lambda: run(config.epochs)) / config.epochs)
            reads.append(_time(lambda: stream_read(X)))
        results[name] = {impl: statistics.median(t) for impl, t in times.items()}
        results[name]["read"] = statistics.median(reads)
        print("  %s done: %s" % (name, ", ".join("%s %.3fs" % kv for kv in results[name].items())),
              flush=True)
    return results


def report(results, rates):
    best = max(rates.values())
    print()
    print("float32 GEMM 4096^3: " + ", ".join("%s %.0f GFLOP/s" % kv for kv in rates.items()))
    print()
    header = ("| config | network | batch | rows | NumPy s/epoch | numba-dense s/epoch | "
              "numba-dense samples/s | vs NumPy | PyTorch s/epoch | vs PyTorch |")
    print(header)
    print("| --- " * 10 + "|")
    for name, r in results.items():
        c = CONFIGS[name]
        torch_cols = ("%.3f | %.1fx" % (r["torch"], r["torch"] / r["numba"])
                      if "torch" in r else "n/a | n/a")
        print("| %s | %s | %d | %s | %.3f | %.3f | %.3g | %.1fx | %s |" % (
            name, "-".join(map(str, c.sizes)), c.batch, format(c.rows, ","), r["numpy"],
            r["numba"], c.rows / r["numba"], r["numpy"] / r["numba"], torch_cols))
    print()
    if "A" in results:
        r = results["A"]
        print("A: epoch / one streaming read of X = %.2f (read %.3fs, %.1f GB/s)" % (
            r["numba"] / r["read"], r["read"], CONFIGS["A"].rows * 100 * 4 / r["read"] / 1e9))
    if "D" in results:
        rate = matmul_flops(CONFIGS["D"]) / results["D"]["numba"] / 1e9
        print("D: %.0f GFLOP/s of needed matrix products = %.0f%% of the best GEMM rate (%.0f)"
              % (rate, 100 * rate / best, best))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(kernels.blas_summary())
    rates = gemm_rates()
    results = measure(args.configs, args.rounds)
    rates.update({k + " (after)": v for k, v in gemm_rates().items()})
    report(results, rates)


if __name__ == "__main__":
    main()
