"""Time per epoch and scaling of data-parallel training over MPI, 1 and 2 ranks.

    python -m benchmarks.mpi_scaling                       # 1024-4096-4096-1, batch 1024/rank
    python -m benchmarks.mpi_scaling --rows 8192 --epochs 2 --sizes 1024,4096,4096,1

Needs the [mpi] extra. Every run trains on the same ``--rows`` rows per epoch (split
evenly across the ranks, so a global minibatch is ``batch x ranks`` rows and an epoch has
fewer steps with more ranks) and reports the median epoch time, the time inside
``Allreduce`` per step, and the scaling efficiency ``T(1 rank) / (ranks x T(ranks))``.
Each rank's BLAS gets ``cores / ranks`` threads, so the ranks never oversubscribe the cores;
the 1-rank baseline is shown with 1 thread (same cores per rank) and with all of them (the
same machine).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

import numpy as np


def worker(args):
    """Runs inside mpiexec: train, and print rank 0's timings as JSON."""
    from mpi4py import MPI

    from numba_dense.model import MLP
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = args.rows // size
    rng = np.random.default_rng(rank)
    X = rng.standard_normal((rows, sizes[0]), dtype=np.float32) / np.float32(np.sqrt(sizes[0]))
    y = np.tanh(X[:, :sizes[-1]].sum(axis=1, keepdims=True))
    net = MLP(sizes, seed=0)
    net.fit(X[:8], y[:8], epochs=1, batch_size=4, comm=comm)  # compile / load the cache
    history = net.fit(X, y, epochs=args.epochs, batch_size=args.batch, lr=0.001, shuffle=False,
                      comm=comm)
    steps = -(-rows // args.batch)
    if rank == 0:
        print(json.dumps({"ranks": size, "epoch_s": statistics.median(history.seconds),
                          "allreduce_s_per_step": statistics.median(history.comm_seconds) / steps,
                          "steps": steps, "params": int(net.params.size)}))


def launch(ranks, threads, args):
    mpiexec = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
               or shutil.which("mpiexec"))
    if mpiexec is None:
        sys.exit("mpi_scaling: no mpiexec; pip install -e '.[mpi]'")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "benchmarks.mpi_scaling",
           "--worker", "--rows", str(args.rows), "--epochs", str(args.epochs), "--batch",
           str(args.batch), "--sizes", args.sizes]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096, help="rows per epoch, all ranks")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1024, help="minibatch per rank")
    parser.add_argument("--sizes", default="1024,4096,4096,1")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    cores = os.cpu_count()
    runs = [("1 rank x 1 thread", 1, 1), ("1 rank x %d threads" % cores, 1, cores),
            ("%d ranks x 1 thread" % cores, cores, 1)]
    results = [(label, launch(ranks, threads, args)) for label, ranks, threads in runs]
    base = results[0][1]["epoch_s"]
    print("network %s, %d rows per epoch, batch %d per rank, %d parameters (%.0f MB all-reduced "
          "per step)" % (args.sizes.replace(",", "-"), args.rows, args.batch,
                         results[0][1]["params"], results[0][1]["params"] * 4 / 1e6))
    print()
    print("| run | steps/epoch | s/epoch | all-reduce ms/step | speed-up vs 1x1 | efficiency |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, r in results:
        speedup = base / r["epoch_s"]
        cores_used = int(label.split()[0]) * int(label.split()[3])
        print("| %s | %d | %.2f | %.1f | %.2fx | %.0f%% |" % (
            label, r["steps"], r["epoch_s"], 1e3 * r["allreduce_s_per_step"], speedup,
            100 * speedup / cores_used))


if __name__ == "__main__":
    main()
