"""What the Python-call argument check costs a public kernel, on this machine.

    python -m benchmarks.call_overhead [--calls 200000] [--rounds 5]

Every public kernel's dispatcher is a subclass of Numba's whose ``__call__`` explains a
failed call (``kernels._checks.kernel``). This times calls of small kernels through it
and through a plain ``numba.njit`` dispatcher of the very same function, alternating
round after round in one process, and prints the median microseconds per call of each
and their difference: the price of the check on a call that succeeds. Calls from your
own ``@njit`` code do not go through a dispatcher and pay nothing.
"""

import argparse
import statistics
import time

import numpy as np
from numba import njit

from numba_dense import kernels


def _cases():
    """(name, public kernel, arguments): small inputs, so that the call is the cost."""
    p = np.zeros(10, np.float32)
    g = np.ones(10, np.float32)
    A = np.ones((4, 8), np.float32)
    G = np.ones((4, 8), np.float32)
    X = np.ones((4, 3), np.float32)
    W = np.ones((2, 3), np.float32)
    b = np.zeros(2, np.float32)
    out = np.empty((4, 2), np.float32)
    adam = kernels.optimizer("adam", p, 1e-3)
    return [("sgd_update", kernels.sgd_update, (p, g, 0.01)),
            ("relu_mask", kernels.relu_mask, (A, G)),
            ("dense_forward", kernels.dense_forward, (X, W, b, out, True)),
            ("optimizer_step (adam)", kernels.optimizer_step, (p, g, adam))]


def _per_call(function, args, calls):
    start = time.perf_counter()
    for _ in range(calls):
        function(*args)
    return (time.perf_counter() - start) / calls * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print("%-24s %12s %12s %10s" % ("kernel", "checked us", "plain us", "check us"))
    for name, public, call_args in _cases():
        plain = njit(public.py_func)  # the same function, in a plain dispatcher
        public(*call_args)
        plain(*call_args)
        checked, bare = [], []
        for _ in range(args.rounds):
            checked.append(_per_call(public, call_args, args.calls))
            bare.append(_per_call(plain, call_args, args.calls))
        c, p = statistics.median(checked), statistics.median(bare)
        print("%-24s %12.3f %12.3f %10.3f" % (name, c, p, c - p))


if __name__ == "__main__":
    main()
