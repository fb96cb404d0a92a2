"""How long the README's first command waits before its first epoch: on an empty compile
cache and on a filled one.

    python -m benchmarks.first_run                    # 2 rounds of `train --epochs 1`
    python -m benchmarks.first_run --rounds 3 -- --hidden 64,32

Each round runs ``python -m numba_dense train --epochs 1`` (and the ``train`` options given
after ``--``) in a process of its own with ``NUMBA_CACHE_DIR`` pointed at a new, empty folder,
then once more on the cache that run filled. For each run it reads the output line by line
as it comes and prints the seconds from the start of the process to the ``compiling
kernels`` notice and to the first ``epoch 1/`` line (which includes that epoch), and the CPU
seconds the process used (``resource.getrusage`` of its children). Medians over the rounds
are printed with the CPU model. ``NUMBA_DENSE_TUNING=off`` unless ``--tuned``: the packaged
dispatch values, whatever tuning file this machine has. Issue 23's targets: the first epoch
within 20 s of starting to train on an empty cache, within 1 s on a filled one
(docs/performance.md, "Start-up").
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from .configs import cpu_model


def one_run(cache, train_args, tuned):
    """(seconds to the compiling notice or None, seconds to 'epoch 1/', CPU seconds)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONUNBUFFERED="1")
    # Python's own bytecode cache, as on a user's machine: with PYTHONDONTWRITEBYTECODE set
    # (as on the machine this project is developed on) every run compiles numba's, SciPy's
    # and our modules from source again, 1.6 s of a filled-cache start
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not tuned:
        env["NUMBA_DENSE_TUNING"] = "off"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "numba_dense", "train", "--epochs", "1", *train_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=tempfile.gettempdir())
    notice = first = None
    lines = []
    for line in process.stdout:
        lines.append(line)
        now = time.perf_counter() - start
        if notice is None and line.startswith("compiling kernels"):
            notice = now
        if first is None and line.startswith("epoch 1/"):
            first = now
    if process.wait() != 0 or first is None:
        sys.exit("train failed:\n" + "".join(lines[-20:]))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return notice, first, cpu


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, train_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) \
        if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tuned", action="store_true",
                        help="use this machine's tuning file, if any")
    args = parser.parse_args(own)
    if args.rounds < 1:
        parser.error("--rounds: expected an integer >= 1, got %d" % args.rounds)
    rows = {"empty cache": [], "filled cache": []}
    for r in range(args.rounds):
        cache = tempfile.mkdtemp(prefix="numba-dense-first-run-")
        try:
            for kind in rows:
                rows[kind].append(one_run(cache, train_args, args.tuned))
                notice, first, cpu = rows[kind][-1]
                print("round %d, %s: notice %s s, first epoch %.1f s, CPU %.1f s" % (
                    r + 1, kind, "-" if notice is None else "%.1f" % notice, first, cpu),
                    flush=True)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    print("\n%s; python -m numba_dense train --epochs 1 %s; medians of %d rounds"
          % (cpu_model(), " ".join(train_args), args.rounds))
    print("| cache | seconds to the compiling notice | seconds to the first epoch's line "
          "| CPU seconds |")
    print("| --- | --- | --- | --- |")
    for kind, runs in rows.items():
        notices = [n for n, _, _ in runs if n is not None]
        print("| %s | %s | %.1f | %.1f |" % (
            kind, "%.1f" % statistics.median(notices) if notices else "-",
            statistics.median(f for _, f, _ in runs), statistics.median(c for _, _, c in runs)))


if __name__ == "__main__":
    main()
