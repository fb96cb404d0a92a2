"""A split fit's pieces chosen by their timings, quiet and beside a busy process it cannot see.

    python -m benchmarks.contended_split                   # T3, n_jobs=2, 8 epochs, 5 rounds
    python -m benchmarks.contended_split --configs T3 T1 --batch 256 --rounds 3

``fit`` splits a network's minibatch steps between threads and chooses their number again
every ``PIECE_STEPS`` steps (``model.training.threads``): from the free cores, and from the
pieces' own timings (``PieceThreads``), which move the pieces to one thread where two step
slower. ``n_jobs=2`` stands in for a core taken by something the free-core count cannot
see (another guest of a virtual machine's host): the fit asks for two threads whatever the
load, and one process spinning in pure Python (``while True: pass``) holds a core.

Two ways of choosing, each in its own process, alternating, medians of ``--rounds``:

- ``timed``: ``fit`` as it is;
- ``count``: the free-core count and ``n_jobs`` alone (``PieceThreads`` made to return
  ``epoch_threads``' count), as before the pieces were timed.

Prints the whole fit's epoch seconds (``History.seconds``, the input checks and the first
epoch's kernel loading excluded), the share of its rows trained on one thread, and the CPU
model.
"""

import argparse
import json
import statistics
import subprocess
import sys

from benchmarks.configs import CONFIGS, LR, busy_processes, cpu_line, make_data


def _worker(args):
    from numba_dense import kernels
    from numba_dense.model import MLP
    from numba_dense.model.training import threads
    config = CONFIGS[args.worker_config]
    batch = args.batch or config.batch
    if args.worker == "count":
        threads.PieceThreads.__call__ = (
            lambda self: threads.epoch_threads(self.n_jobs, self.net, self.batch_size))
    X, Y = make_data(config)
    MLP(config.sizes, output=config.output, seed=0).fit(  # load the kernels
        X[:4000], Y[:4000], epochs=1, batch_size=batch, lr=LR, verbose=False,
        n_jobs=args.jobs)
    seen = []
    real = kernels.train_epoch_parallel

    def counted(*call):  # (threads, rows) of each piece; the compiling step's one row too
        X, batches = call[0], call[6]
        seen.append((call[-1], len(batches.order) if len(batches.order) else X.shape[0]))
        return real(*call)
    kernels.train_epoch_parallel = counted
    net = MLP(config.sizes, output=config.output, seed=1)
    history = net.fit(X, Y, epochs=args.epochs, batch_size=batch, lr=LR, shuffle=False,
                      verbose=False, n_jobs=args.jobs)
    rows = sum(r for _, r in seen)
    print(json.dumps({"seconds": sum(history.seconds),
                      "one_thread": sum(r for k, r in seen if k == 1) / max(1, rows)}))


def _run(kind, name, args):
    command = [sys.executable, "-m", "benchmarks.contended_split", "--worker", kind,
               "--worker-config", name, "--epochs", str(args.epochs),
               "--jobs", str(args.jobs)]
    if args.batch:
        command += ["--batch", str(args.batch)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["T3"], choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=None,
                        help="minibatch rows (default: each configuration's own)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=2, help="fit's n_jobs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", choices=["timed", "count"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    kinds = ["timed", "count"]
    results = {}
    for busy in (0, 1):
        with busy_processes(busy):
            for r in range(args.rounds):
                for name in args.configs:
                    for kind in kinds[r % 2:] + kinds[:r % 2]:
                        results.setdefault((name, busy, kind), []).append(
                            _run(kind, name, args))
    print(cpu_line())
    print("fit(n_jobs=%d), %d epochs, shuffle=False; medians of %d alternating rounds"
          % (args.jobs, args.epochs, args.rounds))
    print("| config | batch | machine | timed pieces s | rows on one thread | free-core count "
          "only s | rows on one thread | count / timed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.configs:
        for busy in (0, 1):
            t, c = (results[(name, busy, kind)] for kind in kinds)
            ts = statistics.median(x["seconds"] for x in t)
            cs = statistics.median(x["seconds"] for x in c)
            print("| %s | %d | %s | %.3f | %.0f%% | %.3f | %.0f%% | %.2fx |"
                  % (name, args.batch or CONFIGS[name].batch,
                     "quiet" if not busy else "1 busy process", ts,
                     100 * statistics.median(x["one_thread"] for x in t), cs,
                     100 * statistics.median(x["one_thread"] for x in c), cs / ts))


if __name__ == "__main__":
    main()
