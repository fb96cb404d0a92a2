"""A large ``predict`` on one thread against two: the table behind
``model.data.parallel.MIN_THREAD_ROWS``.

    python -m benchmarks.predict_threads                              # T1's network
    python -m benchmarks.predict_threads --rows 8192 16384 65536 1000000 --calls 50

``kernels.predict_into`` in one call (with the BLAS threads ``MLP._forward`` gives it)
against ``model.data.parallel.forward_into`` on two threads, the minimum of ``--calls``
calls each, in one process. Prints the CPU model.
"""

import argparse
import time

import numpy as np

from numba_dense import MLP, kernels
from numba_dense.model.data import parallel
from numba_dense.model.data.sources import EVAL_BATCH
from numba_dense.model.training.loop import network_record

from .configs import cpu_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 64, 64, 1])
    parser.add_argument("--rows", type=int, nargs="+", default=[8192, 16384, 65536])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args(argv)
    net = MLP(args.sizes, seed=0, dtype=np.float32)
    network = network_record(net)
    rng = np.random.default_rng(0)
    print("%s float32, minimum of %d calls; %s" % ("-".join(map(str, args.sizes)), args.calls,
                                                   cpu_model()))
    print("| rows | one thread | two threads |")
    print("| ---: | ---: | ---: |")
    for n in args.rows:
        X = rng.standard_normal((n, args.sizes[0])).astype(np.float32)
        out = np.empty((n, args.sizes[-1]), np.float32)
        batch = min(EVAL_BATCH, n)
        work = net._workspace(batch)
        best = []
        for threads in (1, 2):
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                if threads == 1:
                    with kernels.blas_threads(kernels.blas_threads_for(net.sizes, batch)):
                        kernels.predict_into(X, net.params, network, out, batch, work)
                else:
                    parallel.forward_into(net, network, X, out, batch, threads)
                times.append(time.perf_counter() - start)
            best.append(min(times))
        print("| %s | %.2f ms | %.2f ms |" % (format(n, ","), best[0] * 1e3, best[1] * 1e3))


if __name__ == "__main__":
    main()
