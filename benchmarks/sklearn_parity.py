"""numba-dense's ``MLPRegressor``/``MLPClassifier`` against scikit-learn's: held-out score and
fit time, same data, same hyperparameters, same number of epochs.

    python -m benchmarks.sklearn_parity                 # every dataset, both solvers, 3 rounds
    python -m benchmarks.sklearn_parity --datasets friedman --solvers adam --rounds 5

Datasets: scikit-learn's bundled digits, breast cancer and diabetes, and a 200,000-row
synthetic regression (Friedman #1, 10 features, noise 1). Features are standardized on the
training split (75%); the score (accuracy or R^2) is taken on the other 25%. Both
estimators get scikit-learn's defaults (hidden (100,), ReLU, batch "auto" = 200, alpha 1e-4,
learning_rate_init 0.001; "sgd" with momentum 0.9 and Nesterov) except that every fit runs
exactly the same number of epochs (``--epochs``; by default scikit-learn's ``max_iter``, 200,
on the bundled datasets and 20 on the 200,000-row one; ``n_iter_no_change`` = epochs, so
``tol`` never stops one early) and ``random_state=0``.

Each fit runs in a process of its own (one BLAS pool per process, as a user has), the two
implementations alternating round after round; the table gives medians over the rounds.
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

DATASETS = ("digits", "breast_cancer", "diabetes", "friedman")
IMPLEMENTATIONS = ("scikit-learn", "numba-dense")


def load(name):
    """(X_train, X_test, y_train, y_test, is_classifier), standardized on the training split."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    if name == "friedman":
        X, y = datasets.make_friedman1(n_samples=200_000, n_features=10, noise=1.0,
                                       random_state=0)
        classifier = False
    else:
        loader = {"digits": datasets.load_digits, "breast_cancer": datasets.load_breast_cancer,
                  "diabetes": datasets.load_diabetes}[name]
        X, y = loader(return_X_y=True)
        classifier = name != "diabetes"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=y if classifier else None)
    scaler = StandardScaler().fit(X_train)
    if not classifier:  # scaled targets: the defaults' learning rate suits them
        mean, std = y_train.mean(), y_train.std()
        y_train, y_test = (y_train - mean) / std, (y_test - mean) / std
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test, classifier


def estimator(impl, classifier, solver, epochs):
    if impl == "scikit-learn":
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    else:
        from numba_dense.model import MLPClassifier, MLPRegressor
    cls = MLPClassifier if classifier else MLPRegressor
    return cls(solver=solver, max_iter=epochs, n_iter_no_change=epochs, random_state=0)


def worker(impl, dataset, solver, epochs):
    """One fit in this process; prints a JSON line {score, seconds, epochs}."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    warnings.simplefilter("ignore", ConvergenceWarning)
    X_train, X_test, y_train, y_test, classifier = load(dataset)
    if impl == "numba-dense":  # compile (or load the cached kernels) outside the timing
        estimator(impl, classifier, solver, 1).fit(X_train[:500], y_train[:500])
    est = estimator(impl, classifier, solver, epochs)
    start = time.perf_counter()
    est.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(json.dumps(dict(score=float(est.score(X_test, y_test)), seconds=seconds,
                          epochs=int(est.n_iter_))))


def run_worker(impl, dataset, solver, epochs):
    out = subprocess.run([sys.executable, "-m", "benchmarks.sklearn_parity", "--worker", impl,
                          dataset, solver, str(epochs)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError("%s on %s failed:\n%s" % (impl, dataset, out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--solvers", nargs="+", default=["adam", "sgd"], choices=["adam", "sgd"])
    parser.add_argument("--epochs", type=int, help="epochs per fit (default 200; 20 on friedman)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", nargs=4, metavar=("IMPL", "DATASET", "SOLVER", "EPOCHS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        impl, dataset, solver, epochs = args.worker
        return worker(impl, dataset, solver, int(epochs))

    print("| dataset | solver | epochs | scikit-learn score | numba-dense score | difference "
          "| scikit-learn s | numba-dense s | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for dataset in args.datasets:
        for solver in args.solvers:
            epochs = args.epochs or (20 if dataset == "friedman" else 200)
            results = {impl: [] for impl in IMPLEMENTATIONS}
            for r in range(args.rounds):
                order = IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]
                for impl in order:
                    results[impl].append(run_worker(impl, dataset, solver, epochs))
            sk, nd = results["scikit-learn"], results["numba-dense"]
            s_score, n_score = sk[0]["score"], nd[0]["score"]  # seeded: the same every round
            s_sec = float(np.median([r["seconds"] for r in sk]))
            n_sec = float(np.median([r["seconds"] for r in nd]))
            print("| %s | %s | %d | %.4f | %.4f | %+.4f | %.3f | %.3f | %.1f× |"
                  % (dataset, solver, nd[0]["epochs"], s_score, n_score, n_score - s_score,
                     s_sec, n_sec, s_sec / n_sec), flush=True)


if __name__ == "__main__":
    main()
