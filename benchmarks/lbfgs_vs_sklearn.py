"""numba-dense's ``solver="lbfgs"`` against scikit-learn's: fit time and final loss, same data,
same settings, same start.

    python -m benchmarks.lbfgs_vs_sklearn                        # both datasets, 3 rounds
    python -m benchmarks.lbfgs_vs_sklearn --datasets regression --rounds 5
    python -m benchmarks.lbfgs_vs_sklearn --block 1024           # lbfgs's kernel block rows

Datasets: ``make_regression`` (20,000 x 50, 10 informative features, noise 10; features
standardized, target scaled to unit variance) and scikit-learn's bundled digits (1,797 x 64,
10 classes, standardized). Both estimators: hidden (64, 64), ReLU, alpha 1e-4,
``max_iter`` 200 (``--max-iter``), ``tol`` 1e-4 (scikit-learn's defaults otherwise),
float64 parameters, ``random_state=0`` (numba-dense starts from scikit-learn's initial
weights, drawn from the same random state).

Each fit runs in a process of its own (one BLAS pool per process, as a user has), the two
implementations alternating round after round, numba-dense's kernels compiled (or loaded
from the cache) by a one-iteration fit on 500 rows before the timing starts, and
scikit-learn given the same warm-up fit and the same half-second pause after it; the table
gives medians over the rounds of the
fit's seconds, and its final ``loss_`` and ``n_iter_`` (the same every round: seeded).
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

DATASETS = ("regression", "digits")
IMPLEMENTATIONS = ("scikit-learn", "numba-dense")


def load(name):
    """(X, y, is_classifier), standardized."""
    from sklearn import datasets
    from sklearn.preprocessing import StandardScaler
    if name == "regression":
        X, y = datasets.make_regression(n_samples=20_000, n_features=50, n_informative=10,
                                        noise=10.0, random_state=0)
        return StandardScaler().fit_transform(X), (y - y.mean()) / y.std(), False
    X, y = datasets.load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y, True


def estimator(impl, classifier, max_iter):
    if impl == "scikit-learn":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    else:
        from numba_dense.model import MLPClassifier, MLPRegressor
    cls = MLPClassifier if classifier else MLPRegressor
    return cls(hidden_layer_sizes=(64, 64), solver="lbfgs", max_iter=max_iter, random_state=0)


def worker(impl, dataset, max_iter, block):
    """One fit in this process; prints a JSON line {seconds, loss, n_iter}."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y, classifier = load(dataset)
    if impl == "numba-dense" and block:
        from numba_dense.model.training import full_batch
        full_batch.FIXED_BLOCK_ROWS = block
    # the same warm-up fit for both: numba-dense's compiles (or loads the cached kernels),
    # and both import what their first fit imports, outside the timing
    estimator(impl, classifier, 1).fit(X[:500], y[:500])
    # and the same pause after it: OpenBLAS's worker threads spin for about 2**28 cycles
    # (its THREAD_TIMEOUT) after their last threaded call before they sleep, and a spinning
    # worker of the warm-up took 70 ms of a core from numba-dense's first timed fit
    # (per-thread CPU from /proc/self/task): a cost of the warm-up, not of either fit
    time.sleep(0.5)
    est = estimator(impl, classifier, max_iter)
    start = time.perf_counter()
    est.fit(X, y)
    seconds = time.perf_counter() - start
    assert est.coefs_[0].dtype == np.float64
    print(json.dumps(dict(seconds=seconds, loss=float(est.loss_), n_iter=int(est.n_iter_))))


def run_worker(impl, dataset, max_iter, block):
    out = subprocess.run([sys.executable, "-m", "benchmarks.lbfgs_vs_sklearn", "--worker", impl,
                          dataset, str(max_iter), str(block or 0)], capture_output=True,
                         text=True)
    if out.returncode:
        raise RuntimeError("%s on %s failed:\n%s" % (impl, dataset, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block", type=int, default=0,
                        help="rows per kernel block in numba-dense's lbfgs (default: "
                        "full_batch.block_rows's choice)")
    parser.add_argument("--worker", nargs=4, metavar=("IMPL", "DATASET", "MAX_ITER", "BLOCK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        impl, dataset, max_iter, block = args.worker
        return worker(impl, dataset, int(max_iter), int(block))

    print("| dataset | scikit-learn loss | numba-dense loss | scikit-learn n_iter "
          "| numba-dense n_iter | scikit-learn s | numba-dense s | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dataset in args.datasets:
        results = {impl: [] for impl in IMPLEMENTATIONS}
        for r in range(args.rounds):
            order = IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]
            for impl in order:
                results[impl].append(run_worker(impl, dataset, args.max_iter, args.block))
        sk, nd = results["scikit-learn"], results["numba-dense"]
        s_sec = float(np.median([r["seconds"] for r in sk]))
        n_sec = float(np.median([r["seconds"] for r in nd]))
        print("| %s | %.6g | %.6g | %d | %d | %.3f | %.3f | %.1f× |"
              % (dataset, sk[0]["loss"], nd[0]["loss"], sk[0]["n_iter"], nd[0]["n_iter"],
                 s_sec, n_sec, s_sec / n_sec), flush=True)


if __name__ == "__main__":
    main()
