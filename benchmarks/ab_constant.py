"""Whole epochs with one constant of ``kernels`` changed, against the code as it is.

    python -m benchmarks.ab_constant FORWARD_TILED_MAX_MACS "1 << 18" --configs T3 T1
    python -m benchmarks.ab_constant PREFETCH_BYTES 3200 --configs A --rounds 5

``tune_small`` and the other tuning scripts time one product or loop at a time, hot, back
to back. An epoch interleaves them with everything else (the sweeps, the other layers'
products, BLAS's threads waking for one call among several), so where the isolated
timings are close, this settles a threshold on what users run: it copies the ``kernels``
package into a temporary folder, rewrites the line ``NAME = ...`` there, and times
``MLP.fit`` epochs of each configuration with the current and the changed code, each in a
fresh process of its own (its own Numba cache folder), alternating round after round;
it prints the medians and their ratio.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba_dense
from numba_dense import kernels

from .configs import CONFIGS


def _rewrite(package, name, value):
    """Set the module-level ``name = ...`` in the copied package; exactly one must exist."""
    pattern = re.compile(r"^%s = .*$" % re.escape(name), re.MULTILINE)
    hits = [(path, path.read_text()) for path in sorted(package.glob("*.py"))]
    hits = [(path, text) for path, text in hits if pattern.search(text)]
    if len(hits) != 1:
        raise SystemExit("ab_constant: %s is defined in %d files of kernels/, not one"
                         % (name, len(hits)))
    path, text = hits[0]
    old = pattern.search(text).group(0)
    path.write_text(pattern.sub("%s = %s" % (name, value), text, count=1))
    return old


def _worker(config_name, epochs):
    from .peers import make_runner

    config = CONFIGS[config_name]
    run = make_runner("numba", config)  # warms up: compiles or loads the cache
    start = time.perf_counter()
    run(epochs)
    print((time.perf_counter() - start) / epochs)


def _time(config_name, epochs, pythonpath, cache_dir):
    # Both sides with the packaged values as written: a tuning file of this CPU
    # (python -m numba_dense tune) would replace the constant being compared.
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, NUMBA_DENSE_TUNING="off")
    env.pop("NUMBA_DENSE_CACHE_BASE", None)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-m", "benchmarks.ab_constant", "--worker",
                          config_name, "--epochs", str(epochs)],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="a module-level constant of kernels/")
    parser.add_argument("value", nargs="?", help="the Python expression to try instead")
    parser.add_argument("--configs", nargs="+", default=["T1", "T3"], choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.epochs)
    if args.name is None or args.value is None:
        parser.error("give a constant's name and the value to try")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # A copy of the whole package, laid out as installed, first on the worker's
        # PYTHONPATH: its kernels are the changed ones.
        root = tmp / "changed" / "numba_dense"
        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(Path(numba_dense.__file__).parent, root, ignore=skip)
        shutil.copytree(Path(numba_dense.model.__file__).parent, root / "model", ignore=skip)
        package = root / "kernels"
        shutil.copytree(Path(kernels.__file__).parent, package, ignore=skip)
        old = _rewrite(package, args.name, args.value)
        variants = [("as is: " + old, None, str(tmp / "cache-as-is")),
                    ("changed: %s = %s" % (args.name, args.value), str(package.parent.parent),
                     str(tmp / "cache-changed"))]
        for name in args.configs:
            times = {label: [] for label, _, _ in variants}
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else variants[::-1]
                for label, path, cache in order:
                    times[label].append(_time(name, args.epochs, path, cache))
            medians = [statistics.median(times[label]) for label, _, _ in variants]
            for (label, _, _), median in zip(variants, medians):
                print("%-3s %-45s %.4f s/epoch  (rounds: %s)"
                      % (name, label, median, " ".join("%.4f" % t for t in times[label])))
            print("%-3s changed / as is: %.3f" % (name, medians[1] / medians[0]))


if __name__ == "__main__":
    main()
