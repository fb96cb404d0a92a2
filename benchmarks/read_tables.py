"""Reading a large numeric CSV into .npy inputs and targets: seconds and peak memory.

    python -m benchmarks.read_tables                     # ~92 MB CSV, 3 rounds
    python -m benchmarks.read_tables --rows 2000000 --rounds 5

Three ways, each run in a process of its own, alternating round after round (medians):

- ``line parser``: the hand-written line-by-line parser numba-dense's converter used to be
  (still the path that reports bad rows by line: ``csv_to_npy(..., skip_bad=True)``);
- ``convert``: ``python -m numba_dense convert``'s path now, pyarrow's streaming CSV reader;
- ``train --data``: what ``train --data file.csv`` does before training: the preprocessing
  fit (one pass: means, standard deviations, categories) and the standardized .npy files
  (a second pass).

Peak memory is the process's peak resident set (``ru_maxrss``) less its size before the
read (interpreter, NumPy and pyarrow loaded).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

METHODS = ("line parser", "convert", "train --data")


def make_csv(path, rows, columns=10, seed=0):
    """A numeric CSV of ``rows`` rows: features x0.. and a target y (six decimals)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    rng = np.random.default_rng(seed)
    names = ["x%d" % i for i in range(columns - 1)] + ["y"]
    # Unquoted numbers (the line parser reads no quoting).
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
    with open(path, "ab") as f, pacsv.CSVWriter(f, pa.schema([(n, pa.float64()) for n in names]),
                                                write_options=options) as writer:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            block = np.round(rng.standard_normal((n, columns)) * 100, 6)
            writer.write_table(pa.table({name: block[:, i] for i, name in enumerate(names)}))


def worker(method, csv_path, workdir):
    """Run one method; print JSON {seconds, peak_mb}."""
    import pyarrow.compute  # noqa: F401  (the libraries' own size is not the read's)
    import pyarrow.csv  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    from numba_dense.model.data import convert
    from numba_dense.model.data import tabular
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    x, y = os.path.join(workdir, "X.npy"), os.path.join(workdir, "y.npy")
    start = time.perf_counter()
    if method == "line parser":
        convert.csv_to_npy(csv_path, x, y, ["y"], skip_bad=True)
    elif method == "convert":
        convert.csv_to_npy(csv_path, x, y, ["y"])
    else:
        prep = tabular.Preprocessing.fit(csv_path, "y")
        prep.write_npy(csv_path, x, y)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = np.load(x, mmap_mode="r").shape[0]
    print(json.dumps(dict(seconds=seconds, peak_mb=(peak - before) / 1024, rows=rows)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--csv", help="use this CSV (with a target column y) instead")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    with tempfile.TemporaryDirectory(prefix="read-tables-") as folder:
        path = args.csv or os.path.join(folder, "numbers.csv")
        if not args.csv:
            make_csv(path, args.rows)
        size = os.path.getsize(path) / 1e6
        results = {m: [] for m in METHODS}
        for r in range(args.rounds):
            order = METHODS[r % len(METHODS):] + METHODS[:r % len(METHODS)]
            for method in order:
                out = subprocess.run([sys.executable, "-m", "benchmarks.read_tables",
                                      "--worker", method, path, folder],
                                     capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(out.stderr)
                results[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
        base = np.median([r["seconds"] for r in results["line parser"]])
        print("CSV: %.0f MB, %d rows; medians of %d rounds" % (
            size, results["convert"][0]["rows"], args.rounds))
        print("| method | seconds | MB/s | vs the line parser | peak memory (MB) |")
        print("| --- | --- | --- | --- | --- |")
        for method in METHODS:
            sec = float(np.median([r["seconds"] for r in results[method]]))
            mem = float(np.median([r["peak_mb"] for r in results[method]]))
            print("| %s | %.2f | %.0f | %.1f× | %.0f |" % (method, sec, size / sec, base / sec,
                                                           mem))


if __name__ == "__main__":
    main()
