"""Whole epochs with a tuning file against the packaged dispatch values, each in its own process.

    python -m benchmarks.tuned_vs_packaged                       # the host's tuning file
    python -m benchmarks.tuned_vs_packaged --file my.json --configs T1 T3 --rounds 5

``python -m numba_dense tune`` chooses the loop/tiles/BLAS crossovers from a grid of single
products; whether the values it writes train faster is a question for whole epochs. Each
round starts one process with ``NUMBA_DENSE_TUNING=FILE`` and one with
``NUMBA_DENSE_TUNING=off`` (the packaged values), in turn (the first of each warms up,
compiling the tuned code into its own cache folder the first time, and is not counted);
each trains every configuration for 3 epochs with ``fit`` (``n_jobs=1``: one thread, so
that the split crossovers, which the file may hold too, do not decide) and reports its
fastest epoch. Prints the medians over the rounds, their ratio and the CPU model.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

from benchmarks.configs import CONFIGS, LR, cpu_line, make_data


def _worker(names):
    from numba_dense.model import MLP
    out = {}
    for name in names:
        config = CONFIGS[name]
        X, Y = make_data(config)
        MLP(config.sizes, output=config.output, seed=0).fit(  # load or compile the kernels
            X[:3000], Y[:3000], epochs=1, batch_size=config.batch, lr=LR, verbose=False,
            n_jobs=1)
        history = MLP(config.sizes, output=config.output, seed=1).fit(
            X, Y, epochs=3, batch_size=config.batch, lr=LR, shuffle=False, verbose=False,
            n_jobs=1)
        out[name] = min(history.seconds)
    print(json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=None,
                        help="the tuning file (default: this host's, as `tune` writes it)")
    parser.add_argument("--configs", nargs="+", default=["T1", "T2", "T3"],
                        choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    path = args.file
    if path is None:
        from numba_dense.kernels import config, host
        path = host.tuning_choice(config.VECTOR_BYTES, {})[0]
    if not path or not os.path.isfile(path):
        parser.error("no tuning file at %s: run `python -m numba_dense tune` or give --file"
                     % path)
    envs = {"tuned": dict(os.environ, NUMBA_DENSE_TUNING=os.path.abspath(path)),
            "packaged": dict(os.environ, NUMBA_DENSE_TUNING="off")}
    command = [sys.executable, "-m", "benchmarks.tuned_vs_packaged", "--worker",
               *args.configs]
    seconds = {kind: [] for kind in envs}
    for r in range(args.rounds + 1):
        for kind in (list(envs) if r % 2 == 0 else list(envs)[::-1]):
            run = subprocess.run(command, env=envs[kind], capture_output=True, text=True)
            if run.returncode:
                sys.exit("%s worker failed:\n%s" % (kind, run.stderr[-2000:]))
            if r:  # round 0 warms up (and compiles the tuned code the first time)
                seconds[kind].append(json.loads(run.stdout.splitlines()[-1]))
    print(cpu_line())
    print("tuning file %s; fit, n_jobs=1, fastest of 3 epochs, medians of %d alternating "
          "rounds" % (path, args.rounds))
    print("| config | tuned s/epoch | packaged s/epoch | tuned / packaged |")
    print("| --- | --- | --- | --- |")
    for name in args.configs:
        t = statistics.median(x[name] for x in seconds["tuned"])
        p = statistics.median(x[name] for x in seconds["packaged"])
        print("| %s | %.4f | %.4f | %.2fx |" % (name, t, p, t / p))


if __name__ == "__main__":
    main()
