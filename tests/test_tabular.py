"""Real tabular files: CSV and Parquet with names, quoting, text categories, missing values,
text labels and scaling, through model.data.tabular, MLP and the command line."""

import os
import subprocess
import sys

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data import tabular
from numba_dense.model.interfaces.cli import main

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

FLIGHTS = '''dep_time,carrier,"origin, city",distance,arr_delay,on_time
517,UA,"EWR, Newark",1400,11,no
533,UA,"LGA, New York",1416,20,no
542,AA,"JFK, New York",1089,NA,yes
544,B6,"JFK, New York",NA,-18,yes
554,DL,,762,-25,yes
555,UA,"EWR, Newark",,12,no
'''


@pytest.fixture
def flights(tmp_path):
    path = tmp_path / "flights.csv"
    path.write_text(FLIGHTS)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A 3,000-row table with a text column, missing values and a text label, in CSV and
    Parquet."""
    folder = tmp_path_factory.mktemp("tables")
    rng = np.random.default_rng(0)
    n = 3000
    carrier = np.array(["UA", "AA", "DL"])[rng.integers(0, 3, n)]
    dep = rng.standard_normal(n) * 300 + 1200      # in the thousands, as departure times
    month = rng.integers(1, 13, n).astype(float)
    delay = (dep - 1200) / 300 + 2 * (carrier == "UA") + 0.1 * rng.standard_normal(n)
    dep_missing = dep.copy()
    dep_missing[::50] = np.nan
    table = pa.table({"dep_time": pa.array(dep_missing, from_pandas=True),
                      "carrier": carrier, "month": month, "delay": delay,
                      "late": np.where(delay > 1, "late", "on time")})
    pacsv.write_csv(table, folder / "m.csv")
    pq.write_table(table, folder / "m.parquet")
    return folder, delay


# ----------------------------------------------------------------------------- preprocessing

def test_preprocessing_reads_quotes_missing_values_and_categories(flights):
    prep = tabular.Preprocessing.fit(flights, "arr_delay", drop=["on_time"])
    assert prep.rows == 5 and prep.dropped_rows == 1      # the NA target, counted
    assert prep.imputed == {"distance": 2, "origin, city": 1}
    assert prep.feature_names == ["dep_time", "carrier=B6", "carrier=DL", "carrier=UA",
                                  "origin, city=<missing>", "origin, city=EWR, Newark",
                                  "origin, city=JFK, New York", "origin, city=LGA, New York",
                                  "distance"]
    X, y = next(prep.batches(flights))
    np.testing.assert_array_equal(y, [11, 20, -18, -25, 12])
    assert X.dtype == np.float32 and X.shape == (5, 9)
    np.testing.assert_allclose(X[:, 0].mean(), 0, atol=1e-6)      # standardized
    np.testing.assert_allclose(X[:, 0].std(), 1, rtol=1e-5)
    assert X[2, 8] == 0 and X[4, 8] == 0                          # imputed with the mean
    np.testing.assert_array_equal(X[3, 1:8], [0, 1, 0, 1, 0, 0, 0])  # DL, missing city


def test_text_labels_are_classes_and_come_back_as_text(flights):
    prep = tabular.Preprocessing.fit(flights, "on_time")
    assert prep.task == "classification" and prep.classes == ["no", "yes"]
    _, y = next(prep.batches(flights))
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1, 0])
    assert list(prep.labels([1, 0])) == ["yes", "no"]


def test_unseen_categories_encode_as_zeros_and_are_counted(flights, tmp_path):
    prep = tabular.Preprocessing.fit(flights, "arr_delay")
    new = tmp_path / "new.csv"
    new.write_text("dep_time,carrier,\"origin, city\",distance,arr_delay,on_time\n"
                   "600,WN,\"SFO, San Francisco\",2500,3,maybe\n")
    counts = {}
    X, _ = next(prep.batches(new, counts=counts))
    assert counts["unseen"] == {"carrier": 1, "origin, city": 1, "on_time": 1}
    assert X[0, 1:4].sum() == 0


def test_parquet_reads_as_the_csv_does(mixed):
    folder, _ = mixed
    a = tabular.Preprocessing.fit(folder / "m.csv", "delay", drop=["late"])
    b = tabular.Preprocessing.fit(folder / "m.parquet", "delay", drop=["late"])
    assert a.feature_names == b.feature_names and a.rows == b.rows == 3000
    Xa = np.concatenate([X for X, _ in a.batches(folder / "m.csv")])
    Xb = np.concatenate([X for X, _ in b.batches(folder / "m.parquet")])
    np.testing.assert_allclose(Xa, Xb, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("a,b,y\n1,2,3\n4,5\n6,7,8\n", r"bad\.csv: line 3: expected 3 fields \(as the header\), "
                                   r"got 2"),
    ("a,b,y\n" + "1,2,3\n" * 200000 + "4,UA,6\n", r"bad\.csv: line 200002, column 'b' holds "
                                                  r"numbers and the text 'UA'"),
    ("a,b,y\n" + "1,2,3\n" * 20 + "4,UA,6\n", r"bad\.csv: line 22, column 'b' holds numbers and "
     r"the text 'UA': fix the value, or leave the column "
     r"out with --drop-cols b"),
    ("a,b,y\n", r"bad\.csv has a header line but no rows"),
    ("", r"bad\.csv: the file is empty"),
])
def test_bad_files_are_one_line_errors_with_line_and_column(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(tabular.TableError, match=message):
        tabular.Preprocessing.fit(path, "y")


def test_a_missing_column_is_named(flights, tmp_path):
    prep = tabular.Preprocessing.fit(flights, "arr_delay")
    with pytest.raises(tabular.TableError, match="has no column 'nope'"):
        tabular.Preprocessing.fit(flights, "nope")
    other = tmp_path / "other.csv"
    other.write_text("dep_time,distance,arr_delay\n1,2,3\n")
    with pytest.raises(tabular.TableError, match="has no column 'carrier', 'origin, city', "
                                                 "'on_time', which the model was trained with"):
        next(prep.batches(other))


# ----------------------------------------------------------------------------- MLP

def test_mlp_trains_on_a_table_path_and_keeps_its_preprocessing(mixed, tmp_path):
    folder, delay = mixed
    net = MLP([5, 16, 1], seed=0)  # dep_time, carrier (3), month
    with pytest.raises(ValueError, match=r"makes 7 inputs .* build it as MLP\(\[7, ...\]\)"):
        net.fit(folder / "m.csv", "delay", epochs=1)
    net = MLP([7, 16, 1], seed=0)
    net.fit(folder / "m.csv", "delay", epochs=1)  # "late" (2 categories) is a feature here
    net = MLP([5, 16, 1], seed=0)
    net.preprocessing = tabular.Preprocessing.fit(folder / "m.csv", "delay", drop=["late"])
    net.fit(folder / "m.parquet", "delay", epochs=8, lr=0.05)
    assert net.score(folder / "m.csv", "delay") > 0.9
    net.save(tmp_path / "net.npz")
    back = MLP.load(tmp_path / "net.npz")
    assert back.preprocessing.feature_names == net.preprocessing.feature_names
    np.testing.assert_array_equal(back.predict(folder / "m.csv"), net.predict(folder / "m.csv"))


def test_mlp_classifier_on_text_labels_predicts_text(mixed):
    folder, _ = mixed
    net = MLP([5, 16, 2], output="softmax", seed=0)
    net.preprocessing = tabular.Preprocessing.fit(folder / "m.csv", "late", drop=["delay"])
    net.fit(folder / "m.csv", "late", epochs=10, lr=0.1)
    pred = net.predict(folder / "m.csv")
    assert set(pred) <= {"late", "on time"} and net.score(folder / "m.csv", "late") > 0.9


# ----------------------------------------------------------------------------- command line

def test_train_evaluate_predict_on_raw_files(mixed, tmp_path, capsys):
    folder, delay = mixed
    model = str(tmp_path / "net.npz")
    assert main(["train", "--data", str(folder / "m.csv"), "--target-col", "delay",
                 "--drop-cols", "late", "--hidden-sizes", "16", "--epochs", "8", "--lr", "0.05",
                 "--save", model]) == 0
    out = capsys.readouterr().out
    assert "read m.csv: 3000 rows, 3 columns -> 5 inputs" in out
    assert "numbers, standardized: dep_time, month" in out and "one-hot: carrier (3)" in out
    assert "imputed (numbers: the mean; text: a category of its own): dep_time 60" in out
    assert main(["evaluate", "--model", model, "--data", str(folder / "m.parquet"),
                 "--target-col", "delay"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("loss") and lines[1].startswith("r2")
    assert float(lines[1].split()[1]) > 0.9
    assert main(["predict", "--model", model, "--data", str(folder / "m.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    pred = np.loadtxt(tmp_path / "pred.csv", delimiter=",", skiprows=1)
    assert open(tmp_path / "pred.csv").readline().strip() == "delay"
    assert pred.shape == (3000,) and np.corrcoef(pred, delay)[0, 1] > 0.95


def test_text_target_on_the_command_line_writes_labels(mixed, tmp_path, capsys):
    folder, _ = mixed
    model = str(tmp_path / "clf.npz")
    assert main(["train", "--data", str(folder / "m.parquet"), "--target-col", "late",
                 "--drop-cols", "delay", "--hidden-sizes", "8", "--epochs", "6", "--lr", "0.1",
                 "--save", model]) == 0
    assert "training a softmax classifier" in capsys.readouterr().out
    assert main(["predict", "--model", model, "--data", str(folder / "m.csv"),
                 "--out", str(tmp_path / "labels.csv")]) == 0
    labels = open(tmp_path / "labels.csv").read().splitlines()
    assert labels[0] == "late" and set(labels[1:]) <= {"late", "on time"}
    # as .npy: a text array that np.load reads without pickle (it was an object array)
    assert main(["predict", "--model", model, "--data", str(folder / "m.csv"),
                 "--out", str(tmp_path / "labels.npy")]) == 0
    saved = np.load(tmp_path / "labels.npy")
    assert saved.dtype.kind == "U" and saved.tolist() == labels[1:]


@pytest.mark.parametrize("content, args, message", [
    ("a,b,y\n1,2,3\n4,5\n", [], "error: .*bad.csv: line 3: expected 3 fields"),
    ("a,b,y\n1,2,3\n", ["--target-col", "z"], "error: .*bad.csv has no column 'z'"),
    ("a,b,y\n", [], "error: .*bad.csv has a header line but no rows"),
])
def test_bad_tables_on_the_command_line_are_one_line_errors(tmp_path, content, args, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    save = tmp_path / "net.npz"
    result = subprocess.run([sys.executable, "-m", "numba_dense", "train", "--data", str(path),
                             *(args or ["--target-col", "y"]), "--save", str(save)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1
    import re
    assert re.match(message, result.stderr), result.stderr
    assert not save.exists()


def test_convert_reads_parquet_too(mixed, tmp_path):
    folder, _ = mixed
    numeric = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [3.0, 4.0], "y": [5.0, 6.0]}), numeric)
    assert main(["convert", str(numeric), "--target-col", "y", "--out-x",
                 str(tmp_path / "X.npy"), "--out-y", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1, 3], [2, 4]])


def test_training_from_a_csv_larger_than_the_memory_bound_stays_within_it(tmp_path):
    """Memory does not grow with the file: training on a 180 MB CSV (read in 1 MB blocks,
    trained on from disk) after a 30 MB one raises the peak by less than 32 MB, where
    holding its extra 1,500,000 rows as float32 would take 54 MB. And the first file's own
    growth stays near the constant part (pyarrow's blocks in flight, one chunk of rows,
    the allocators' arenas: about 55-70 MB on the development machine, varying from run to
    run, so bounded loosely). Measured in a subprocess, so that its peak is its own."""
    script = r'''
import os, resource, sys
import numpy as np
from numba_dense.model import MLP
from numba_dense.model.data import tabular
from benchmarks.read_tables import make_csv
small, big = sys.argv[1], sys.argv[2]
make_csv(small, 300_000)
make_csv(big, 1_800_000)
tabular.BLOCK_BYTES = 1 << 20
net = MLP([9, 8, 1], seed=0)
net.fit(np.zeros((64, 9)), np.zeros(64), epochs=1)      # kernels compiled and loaded
tabular._pyarrow(), tabular._coltypes()                  # and pyarrow
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = peak()
MLP([9, 8, 1], seed=0).fit(small, "y", epochs=1, batch_size=256, chunk_rows=20_000)
middle = peak()
MLP([9, 8, 1], seed=0).fit(big, "y", epochs=1, batch_size=256, chunk_rows=20_000)
print(os.path.getsize(big) / 2**20, middle - before, peak() - middle)
'''
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "small.csv"),
                             str(tmp_path / "big.csv")], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 0, result.stderr
    size, first, second = map(float, result.stdout.split())
    assert size > 3 * 60 and first + second < 100 and second < 32, (size, first, second)


def test_evaluate_and_predict_say_what_they_left_out_and_did_not_know(flights, tmp_path,
                                                                      capsys):
    model = str(tmp_path / "net.npz")
    assert main(["train", "--data", str(flights), "--target-col", "arr_delay", "--drop-cols",
                 "on_time", "--hidden-sizes", "4", "--epochs", "1", "--validation-fraction",
                 "0", "--save", model]) == 0
    capsys.readouterr()
    new = tmp_path / "new.csv"
    new.write_text("dep_time,carrier,\"origin, city\",distance,arr_delay\n"
                   "600,WN,\"EWR, Newark\",2500,3\n610,UA,\"EWR, Newark\",2500,NA\n")
    assert main(["evaluate", "--model", model, "--data", str(new), "--target-col",
                 "arr_delay"]) == 0
    out = capsys.readouterr().out
    assert "left out 1 rows whose target is missing" in out
    assert ("values not seen in training (encoded as <infrequent> where the column has it, "
            "else as all zeros): carrier 1") in out
    assert main(["predict", "--model", model, "--data", str(new), "--out",
                 str(tmp_path / "p.csv")]) == 0
    assert ("values not seen in training (encoded as <infrequent> where the column has it, "
            "else as all zeros): carrier 1") in \
        capsys.readouterr().out
    assert len(open(tmp_path / "p.csv").read().splitlines()) == 3  # header + both rows


def test_reading_a_table_never_imports_pandas(tmp_path):
    """pyarrow imports pandas (0.15 s) the first time it is handed a Python value or asked
    for ``to_numpy``: reading and preprocessing a table (numbers, bools, dates, text, a
    category code, missing values), one-hot or embedded, and encoding it again as
    ``predict`` does, hands it Arrow values only (``model.data.columns``). In a
    subprocess, where nothing else has imported pandas."""
    path = tmp_path / "t.csv"
    path.write_text("x,flag,when,city,code,y\n"
                    "1.5,true,2024-01-02T03:04:05Z,Oslo,7,a\n"
                    "2.5,False,2024-02-02,,8,b\n"
                    ",TRUE,2024-03-02T00:00:00,Bergen,7,a\n"
                    "4.0,false,,Oslo,9,b\n")
    script = r'''
import sys
from numba_dense.model.data import tabular
for encoding in ("onehot", "embedding"):
    prep = tabular.Preprocessing.fit(sys.argv[1], "y", category_encoding=encoding,
                                     categorical=["code"])
    for batch in tabular.read_batches(sys.argv[1]):
        X = prep.transform(batch)[0]
    assert X.shape[0] == 4, X.shape
assert "pandas" not in sys.modules, "pandas imported"
print("ok")
'''
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
