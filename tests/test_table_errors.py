"""Nothing lost, nothing silently wrong when reading tables (issue 20): ``convert`` and
prediction/evaluation on files that are not what they should be give one line naming the
file, the line (1 = the header) and the column, and write nothing.

Command-line behaviour runs the command line in a subprocess, as users meet it.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data import tabular
from numba_dense.model.data.convert import csv_to_npy

pa = pytest.importorskip("pyarrow")
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "numba_dense", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def _one_line_error(result, *words):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def _convert(tmp_path, csv, *options):
    return _cli("convert", str(csv), "--out-x", str(tmp_path / "X.npy"),
                "--out-y", str(tmp_path / "y.npy"), *options)


def _outputs(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".npy", ".raw"))


# ----------------------------------------------------------------------------- convert

def test_convert_refuses_a_header_naming_a_column_twice(tmp_path):
    # the second 'a' used to become a feature: the target leaked into the inputs
    csv = _write(tmp_path / "dup.csv", "a,b,a\n1,2,3\n4,5,6\n")
    _one_line_error(_convert(tmp_path, csv, "--target-col", "a"), "dup.csv",
                    "'a' 2 times (columns 1, 3)")
    assert _outputs(tmp_path) == []
    for skip in ([], ["--skip-bad"]):  # the line parser checks it too
        _one_line_error(_convert(tmp_path, csv, "--target-col", "b", *skip),
                        "'a' 2 times (columns 1, 3)")
    with pytest.raises(tabular.TableError, match=r"'a' 2 times \(columns 1, 3\)"):
        csv_to_npy(csv, tmp_path / "X.npy", tmp_path / "y.npy", "b", skip_bad=True)
    assert _outputs(tmp_path) == []


def test_convert_refuses_duplicate_names_in_parquet_too(tmp_path):
    table = pa.Table.from_arrays([pa.array([1.0, 2.0]), pa.array([3.0, 4.0]),
                                  pa.array([5.0, 6.0])], names=["y", "x", "y"])
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(ValueError, match=r"'y' 2 times \(columns 1, 3\)"):
        csv_to_npy(tmp_path / "dup.parquet", tmp_path / "X.npy", tmp_path / "y.npy", "x")
    assert _outputs(tmp_path) == []


QUOTED = '"a","b","y"\n"1.5","2","3"\n4,5\n"-2","1e3","0.5"\n'


def test_convert_skip_bad_reads_quoted_numbers_and_a_quoted_header(tmp_path):
    # pyarrow's CSV writer (and the README's flights_like script) quote every field
    csv = _write(tmp_path / "quoted.csv", QUOTED)
    result = _convert(tmp_path, csv, "--target-col", "y", "--skip-bad")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "skipped line 3: expected 3 fields, got 2\n"
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1.5, 2], [-2, 1000]])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), [[3], [0.5]])
    # without --skip-bad: the one bad row is reported, the quoted ones are not bad
    result = _convert(tmp_path, csv, "--target-col", "y")
    assert "line 3: expected 3 fields" in _one_line_error(result, "has 1 bad row")


def test_convert_line_parser_quotes_like_the_csv_module(tmp_path):
    text = 'a;"b;c";"say ""y"""\n"1";"2,5";3\n4;"5";"6"\n7;8\n'
    csv = _write(tmp_path / "semi.csv", text)
    result = csv_to_npy(csv, tmp_path / "X.npy", tmp_path / "y.npy", 'say "y"',
                        delimiter=";", skip_bad=True)
    assert result.features == ["a", "b;c"] and result.targets == ['say "y"']
    assert result.bad_lines == [(2, "field '2,5' is not a number"),
                                (4, "expected 3 fields, got 2")]
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[4, 5]])


def test_convert_clean_quoted_file_is_the_same_with_either_parser(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((50, 3))
    csv = tmp_path / "clean.csv"
    pacsv.write_csv(pa.table({"a": data[:, 0], "b": data[:, 1], "y": data[:, 2]}), csv)
    assert csv.read_text().startswith('"a","b","y"')
    fast = csv_to_npy(csv, tmp_path / "X1.npy", tmp_path / "y1.npy", "y", dtype=np.float64)
    line = csv_to_npy(csv, tmp_path / "X2.npy", tmp_path / "y2.npy", "y", dtype=np.float64,
                      skip_bad=True, chunk_rows=7)
    assert (fast.rows, fast.features, line.rows, line.features) == (50, ["a", "b"],
                                                                    50, ["a", "b"])
    np.testing.assert_array_equal(np.load(tmp_path / "X1.npy"), np.load(tmp_path / "X2.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "X2.npy"), data[:, :2])


def test_convert_names_the_line_of_a_byte_that_is_not_utf8(tmp_path):
    csv = _write(tmp_path / "latin.csv", b"a,b,y\n1,2,3\n4,caf\xe9,6\n7,8,9\n")
    line = _one_line_error(_convert(tmp_path, csv, "--target-col", "y"), "latin.csv",
                           "line 3, column 'b': b'caf\\xe9' is not UTF-8 text")
    assert "codec" not in line
    assert _outputs(tmp_path) == []
    result = _convert(tmp_path, csv, "--target-col", "y", "--skip-bad")
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("skipped line 3: field b'caf\\xe9' is not UTF-8 text")
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1, 2], [7, 8]])


def test_convert_names_a_header_that_is_not_utf8(tmp_path):
    csv = _write(tmp_path / "latin.csv", b"a,pr\xe9c,y\n1,2,3\n")
    for skip in ([], ["--skip-bad"]):
        _one_line_error(_convert(tmp_path, csv, "--target-col", "y", *skip), "latin.csv",
                        "line 1 (the header), column 2: b'pr\\xe9c' is not UTF-8 text")
    assert _outputs(tmp_path) == []


@pytest.mark.parametrize("text, words", [
    ("", ["empty.csv is empty: its first line must name the columns"]),
    ("\n\n", ["empty.csv is empty"]),
    ("a,b,y\n", ["empty.csv has column names but no data rows"]),
    ("a,b,y\n1,x,3\n", ["empty.csv has no good data rows",
                        "line 2, column 'b': 'x' is not a number"]),
])
@pytest.mark.parametrize("skip", [[], ["--skip-bad"]], ids=["strict", "skip-bad"])
def test_convert_of_a_file_without_rows_is_one_line(tmp_path, text, words, skip):
    csv = _write(tmp_path / "empty.csv", text)
    if "x" in text and not skip:
        words = ["has 1 bad row (nothing written): line 2, column 'b': 'x' is not a number"]
    _one_line_error(_convert(tmp_path, csv, "--target-col", "y", *skip), *words)
    assert _outputs(tmp_path) == []


@pytest.mark.parametrize("delimiter, message", [
    ("", "--delimiter must be one character, got ''"),
    (";;", "--delimiter must be one character, got ';;'"),
    ("\\t", "--delimiter must be one character, got '\\\\t'"),
    ('"', "--delimiter cannot be a quote or a line break, got '\"'"),
])
def test_convert_refuses_a_delimiter_that_is_not_one_character(tmp_path, delimiter, message):
    csv = _write(tmp_path / "d.csv", "a,b,y\n1,2,3\n")
    # the command line's own wording may differ before the value: its option and the value
    _one_line_error(_convert(tmp_path, csv, "--target-col", "y", "--delimiter", delimiter),
                    "--delimiter", message[message.index("got "):])
    assert _outputs(tmp_path) == []


def test_convert_accepts_a_real_tab_delimiter(tmp_path):
    csv = _write(tmp_path / "d.tsv.csv", "a\tb\ty\n1\t2\t3\n")
    result = _convert(tmp_path, csv, "--target-col", "y", "--delimiter", "\t")
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1, 2]])


# ----------------------------------------------------------------------------- predict, evaluate

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A regression network trained on a CSV (a, b numbers, c text, y), saved."""
    folder = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 300))
    with open(folder / "train.csv", "w") as f:
        f.write("a,b,c,y\n")
        for i in range(300):
            f.write("%.4f,%.4f,%s,%.4f\n" % (a[i], b[i], "xyz"[i % 3], a[i] + b[i]))
    net = MLP([5, 4, 1], seed=0)
    net.fit(folder / "train.csv", "y", epochs=1)
    net.save(folder / "net.npz")
    return folder, net


def _predict(folder, data, out):
    return _cli("predict", "--model", str(folder / "net.npz"), "--data", str(data),
                "--out", str(out))


def _evaluate(folder, data):
    return _cli("evaluate", "--model", str(folder / "net.npz"), "--data", str(data),
                "--target-col", "y")


@pytest.mark.parametrize("rows, commands, words", [
    (b"1,two,y,3\n", ("predict", "evaluate"), ["line 3, column 'b': 'two' is not a number"]),
    (b"1,2\xff,y,3\n", ("predict", "evaluate"),
     ["line 3, column 'b': b'2\\xff' is not UTF-8 text"]),
    (b"1,2,\xe9t\xe9,3\n", ("predict", "evaluate"),
     ["line 3, column 'c': b'\\xe9t\\xe9' is not UTF-8 text"]),
    (b"1,2,y,inf\n", ("evaluate",), ["line 3, column 'y'", "finite number", "got inf"]),
    (b"1,2,y,-1e300\n", ("evaluate",), ["line 3, column 'y'", "float32's range", "got -1e+300"]),
    (b"1e308,2,y,3\n", ("predict", "evaluate"),
     ["line 3, column 'a': 1e+308 is out of range", "beyond float32's range"]),
], ids=["text", "utf8-number", "utf8-text", "inf-target", "huge-target", "huge-input"])
def test_predict_and_evaluate_name_file_line_and_column(trained, tmp_path, rows, commands,
                                                        words):
    folder, _ = trained
    data = _write(tmp_path / "new.csv", b"a,b,c,y\n1,2,x,3\n" + rows + b"4,5,z,6\n")
    for command in commands:
        out = tmp_path / "p.csv"
        result = (_predict(folder, data, out) if command == "predict"
                  else _evaluate(folder, data))
        line = _one_line_error(result, "new.csv: ", *words)
        assert "Arrow" not in line and "codec" not in line, line
        assert not out.exists()


def test_a_value_overflowing_float32_once_scaled_is_refused_not_predicted(trained, tmp_path):
    folder, net = trained
    data = _write(tmp_path / "new.csv", "a,b,c,y\n1,2,x,3\n1e39,2,y,3\n")
    with pytest.raises(tabular.TableError, match=r"line 3, column 'a': 1e\+39 is out of "
                                                 r"range: standardized with the training "
                                                 r"mean \S+ and scale \S+ it is \S+e\+3[89], "
                                                 r"beyond float32's range"):
        net.predict(data)
    with pytest.raises(tabular.TableError, match=r"line 3, column 'a'"):
        net.score(data, "y")
    # within range once scaled: predicted, and finite
    _write(tmp_path / "ok.csv", "a,b,c,y\n1,2,x,3\n1e37,2,y,3\n")
    assert np.isfinite(net.predict(tmp_path / "ok.csv")).all()


def test_training_names_the_line_of_an_infinite_target(tmp_path):
    rows = ["%d,%d" % (i, 2 * i) for i in range(20)]
    rows[12] = "12,inf"
    _write(tmp_path / "t.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"t\.csv: line 14, column 'y': inf is not a usable "
                                         r"value; write an empty field for a missing one"):
        MLP([1, 2, 1]).fit(tmp_path / "t.csv", "y", epochs=1)


def test_a_column_too_large_to_standardize_is_refused_at_fit(tmp_path):
    rows = ["%d,%d" % (i, i) for i in range(20)]
    rows[3] = "1e300,3"
    _write(tmp_path / "t.csv", "x,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(tabular.TableError, match=r"t\.csv: column 'x' holds values too large "
                                                 r"to standardize \(1e\+300"):
        tabular.Preprocessing.fit(tmp_path / "t.csv", "y")


def test_a_class_not_seen_in_training_names_file_line_and_column(tmp_path):
    rows = ["%d,%d" % (i, i % 3) for i in range(30)]
    _write(tmp_path / "t.csv", "x,y\n" + "\n".join(rows) + "\n")
    net = MLP([1, 3, 3], output="softmax", loss="cross_entropy")
    net.fit(tmp_path / "t.csv", "y", epochs=1)
    _write(tmp_path / "new.csv", "x,y\n1,1\n2,7\n")
    with pytest.raises(tabular.TableError, match=r"new\.csv: line 3, column 'y': the target "
                                                 r"'7' is not one of the 3 classes"):
        net.score(tmp_path / "new.csv", "y")


# ----------------------------------------------------------------------------- Parquet types

@pytest.fixture(scope="module")
def parquet_net(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pq")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 200))
    pq.write_table(pa.table({"a": a, "b": b, "c": ["x", "y"] * 100, "y": a - b}),
                   folder / "train.parquet")
    net = MLP([4, 4, 1], seed=0)
    net.fit(folder / "train.parquet", "y", epochs=1)
    net.save(folder / "net.npz")
    table = pa.table({"a": a[:3], "b": b[:3], "c": ["x", "y", "x"], "y": (a - b)[:3]})
    pq.write_table(table, folder / "plain.parquet")
    return folder, net, table


@pytest.mark.parametrize("extra", [pa.array([[1, 2], [3], []]),
                                   pa.array([{"p": 1}, {"p": 2}, {"p": 3}]),
                                   pa.array([b"\x00", b"\x01", b"\x02"])],
                         ids=["list", "struct", "binary"])
def test_an_unused_column_of_any_type_is_ignored(parquet_net, tmp_path, extra):
    folder, net, table = parquet_net
    pq.write_table(table.append_column("tags", extra), tmp_path / "extra.parquet")
    np.testing.assert_array_equal(net.predict(tmp_path / "extra.parquet"),
                                  net.predict(folder / "plain.parquet"))
    assert net.score(tmp_path / "extra.parquet", "y") == net.score(folder / "plain.parquet",
                                                                   "y")
    if extra.type == pa.list_(pa.int64()):  # and on the command line
        result = _predict(folder, tmp_path / "extra.parquet", tmp_path / "p.npy")
        assert result.returncode == 0, result.stderr
        assert _evaluate(folder, tmp_path / "extra.parquet").returncode == 0


@pytest.mark.parametrize("name, values, kind", [
    ("a", pa.array([[1.0], [2.0], [3.0]]), "number"),
    ("c", pa.array([["x"], ["y"], ["x"]]), "text"),
    ("y", pa.array([{"p": 1.0}, {"p": 2.0}, {"p": 3.0}]), "number"),
], ids=["list-feature", "list-text-feature", "struct-target"])
def test_a_used_column_of_a_nested_type_is_one_line(parquet_net, tmp_path, name, values, kind):
    folder, net, table = parquet_net
    table = table.set_column(table.schema.get_field_index(name), name, values)
    path = tmp_path / "nested.parquet"
    pq.write_table(table, path)
    words = ["nested.parquet: column %r has type %s<" % (name, str(values.type).split("<")[0]),
             "cannot be read as the %s values the model was trained with" % kind]
    if name != "y":
        _one_line_error(_predict(folder, path, tmp_path / "p.npy"), *words)
        assert not (tmp_path / "p.npy").exists()
    else:  # predict does not read the target
        assert _predict(folder, path, tmp_path / "p.npy").returncode == 0
    _one_line_error(_evaluate(folder, path), *words)


# ----------------------------------------------------------------------------- bad-input trial

def _numbers_csv(path, n=400, typo_at=None, column="y"):
    rng = np.random.default_rng(3)
    with open(path, "w") as f:
        f.write("a,y\n")
        for i in range(n):
            value = "abc" if i == typo_at else "%.4f" % rng.standard_normal()
            f.write("%.4f,%s\n" % (rng.standard_normal(), value))
    return path


def test_a_typo_in_a_numeric_target_is_refused_not_400_classes(tmp_path):
    path = _numbers_csv(tmp_path / "t.csv", typo_at=200)
    with pytest.raises(tabular.TableError, match=r"t\.csv: line 202, column 'y': the target "
                                                 r"holds numbers and the text 'abc'"):
        tabular.Preprocessing.fit(path, "y")
    prep = tabular.Preprocessing.fit(_numbers_csv(tmp_path / "ok.csv"), "y")
    assert prep.task == "regression"


def _decimal_comma_csv(path, n=40):
    rng = np.random.default_rng(4)
    a, y = rng.standard_normal((2, n))
    with open(path, "w") as f:
        f.write("a;n;c;y\n")
        for i in range(n):
            f.write(("%.4f;%d;%s;%.4f\n" % (a[i], i, "xy"[i % 2], y[i])).replace(".", ","))
    return path, a.round(4), y.round(4)


def test_decimal_commas_of_a_semicolon_csv_are_numbers_and_saved_in_the_schema(tmp_path):
    path, a, y = _decimal_comma_csv(tmp_path / "eu.csv")
    prep = tabular.Preprocessing.fit(path, "y")
    assert prep.task == "regression" and prep.target_decimal == ","
    columns = {c["name"]: c for c in prep.columns}
    assert columns["a"]["type"] == "number" and columns["a"]["decimal"] == ","
    assert "decimal" not in columns["n"] and columns["c"]["type"] == "text"
    assert columns["a"]["mean"] == pytest.approx(a.mean())
    prep = tabular.Preprocessing.from_json(prep.to_json())  # as saved with the model
    X, yy = next(prep.batches(path))
    np.testing.assert_allclose(X[:, 0], (a - a.mean()) / a.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(yy, y, rtol=1e-6)
    # a later file written with decimal points does not fit a decimal-comma column
    _write(tmp_path / "points.csv", "a;n;c;y\n1.5;1;x;2,5\n")
    with pytest.raises(tabular.TableError, match=r"points\.csv: line 2, column 'a': '1\.5' "
                                                 r"is not a number written with a decimal "
                                                 r"comma"):
        next(prep.batches(tmp_path / "points.csv"))


def test_decimal_commas_after_rows_of_integers_and_commas_in_a_comma_csv(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(tabular, "BLOCK_BYTES", 1 << 10)  # integers fill the first blocks
    rows = ["%d;%d" % (i, i % 3) for i in range(400)] + ["-0,0026;1", "3,5;2"]
    _write(tmp_path / "late.csv", "a;y\n" + "\n".join(rows) + "\n")
    prep = tabular.Preprocessing.fit(tmp_path / "late.csv", "y")
    assert prep.columns[0]["type"] == "number" and prep.columns[0]["decimal"] == ","
    # a comma-delimited file cannot hold a decimal comma unquoted: "1,5" stays text
    _write(tmp_path / "quoted.csv", 'a,y\n"1,5",1\n"2,5",2\n"3,5",3\n')
    prep = tabular.Preprocessing.fit(tmp_path / "quoted.csv", "y")
    assert prep.columns[0]["type"] == "text" and "decimal" not in prep.columns[0]


def test_inf_in_a_feature_is_refused_in_training_not_imputed(tmp_path):
    _write(tmp_path / "inf.csv", "a,b,y\n1,2,3\n4,inf,5\n1,,2\n")
    with pytest.raises(tabular.TableError, match=r"inf\.csv: line 3, column 'b': inf is not a "
                                                 r"usable value; write an empty field for a "
                                                 r"missing one"):
        tabular.Preprocessing.fit(tmp_path / "inf.csv", "y")
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": [1.0, -np.inf, 2.0],
                             "y": [1.0, 2.0, 3.0]}), tmp_path / "inf.parquet")
    with pytest.raises(tabular.TableError, match=r"inf\.parquet: row 2, column 'b': -inf is "
                                                 r"not a usable value"):
        tabular.Preprocessing.fit(tmp_path / "inf.parquet", "y")
    _write(tmp_path / "nan.csv", "a,b,y\n1,2,3\n4,NaN,5\n1,,2\n")  # missing: imputed
    assert tabular.Preprocessing.fit(tmp_path / "nan.csv", "y").imputed == {"b": 2}


def test_inf_in_a_feature_is_refused_in_predict_and_evaluate(trained, tmp_path):
    folder, net = trained
    _write(tmp_path / "new.csv", "a,b,c,y\n1,2,x,3\n1,-inf,y,3\n")
    for call in (lambda: net.predict(tmp_path / "new.csv"),
                 lambda: net.score(tmp_path / "new.csv", "y")):
        with pytest.raises(tabular.TableError, match=r"new\.csv: line 3, column 'b': -inf is "
                                                     r"not a usable value"):
            call()
    _write(tmp_path / "nan.csv", "a,b,c,y\n1,2,x,3\n1,,y,3\n")
    assert np.isfinite(net.predict(tmp_path / "nan.csv")).all()


@pytest.mark.parametrize("value", [1, 0, -1, "5", True, 2.5, None])
def test_max_categories_must_be_an_integer_of_at_least_2(tmp_path, value):
    _write(tmp_path / "t.csv", "a,y\n1,2\n")
    with pytest.raises(ValueError, match="max_categories must be an integer >= 2, got %s"
                       % re.escape(repr(value))):
        tabular.Preprocessing.fit(tmp_path / "t.csv", "y", max_categories=value)


@pytest.mark.parametrize("features", [[], ""])
def test_an_empty_list_of_features_is_refused(tmp_path, features):
    _write(tmp_path / "t.csv", "a,b,y\n1,2,3\n")
    with pytest.raises(tabular.TableError, match="features names no column"):
        tabular.Preprocessing.fit(tmp_path / "t.csv", "y", features=features)


def test_a_file_that_is_not_a_table_is_named_so(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros(3))
    with pytest.raises(tabular.TableError, match=r"X\.npy is not a \.csv or \.parquet table"):
        tabular.Preprocessing.fit(tmp_path / "X.npy", "y")


@pytest.mark.parametrize("data, words", [
    ("a,b,y\n1,2,3\n".encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
    ("a,b,y\n1,2,3\n".encode("utf-16-le"), "is UTF-16 text: save it as UTF-8"),
    ("a,b,y\n1,2,3\n".encode("utf-32"), "is UTF-32 text: save it as UTF-8"),
    (b"a\xe4,b,y\n1,2,3\n", "line 1 (the header), column 1: b'a\\xe4' is not UTF-8 text"),
], ids=["utf16-bom", "utf16-no-bom", "utf32", "latin1-header"])
def test_a_csv_that_is_not_utf8_says_so_with_the_file(tmp_path, data, words):
    path = _write(tmp_path / "enc.csv", data)
    with pytest.raises(tabular.TableError) as info:
        tabular.Preprocessing.fit(path, "y")
    assert str(info.value).startswith(str(path)) and words in str(info.value)
    assert "codec" not in str(info.value) and "fields" not in str(info.value)
    if "UTF-" in words and "header" not in words:  # convert says it too
        with pytest.raises(ValueError, match=re.escape(words)):
            csv_to_npy(path, tmp_path / "X.npy", tmp_path / "y.npy", "y")


def test_a_parquet_file_named_csv_is_named_so(tmp_path):
    pq.write_table(pa.table({"a": [1.0], "y": [2.0]}), tmp_path / "p.csv")
    with pytest.raises(tabular.TableError, match=r"p\.csv is a Parquet file named \.csv"):
        tabular.Preprocessing.fit(tmp_path / "p.csv", "y")


def test_a_table_with_a_header_but_no_rows_is_one_line_in_predict_and_evaluate(trained,
                                                                               tmp_path):
    folder, net = trained
    _write(tmp_path / "empty.csv", "a,b,c,y\n")
    with pytest.raises(tabular.TableError, match=r"empty\.csv has a header line but no rows: "
                                                 r"there is nothing to predict"):
        net.predict(tmp_path / "empty.csv")
    with pytest.raises(tabular.TableError, match=r"empty\.csv has a header line but no rows: "
                                                 r"there is nothing to score"):
        net.score(tmp_path / "empty.csv", "y")


@pytest.mark.parametrize("change, words", [
    (lambda s: s["columns"][1].update(name="a"), "column name 'a' used more than once"),
    (lambda s: s["columns"][0].update(name=s["target"]), "column name 'y' used more than once"),
    (lambda s: s["columns"][0].pop("name"), "columns[0] has no column name"),
])
def test_preprocessing_with_repeated_or_missing_names_is_refused(trained, tmp_path, change,
                                                                 words):
    import json
    folder, net = trained
    spec = json.loads(net.preprocessing.to_json())
    change(spec)
    with pytest.raises(ValueError, match=re.escape(words)):
        tabular.Preprocessing.from_json(json.dumps(spec))
    saved = dict(np.load(folder / "net.npz"))
    saved["preprocessing"] = np.array(json.dumps(spec))
    np.savez(tmp_path / "bad.npz", **saved)
    # (a missing name is found by the file's own checks first, in its words)
    with pytest.raises(ValueError, match=r"bad\.npz.*" + re.escape(
            words if "more than once" in words else "columns[0]")):
        MLP.load(tmp_path / "bad.npz")


def test_convert_names_the_column_of_a_value_that_is_not_a_number(tmp_path):
    _write(tmp_path / "base.csv", "a,c,y\n1,y,3\n")
    with pytest.raises(ValueError, match=r"line 2, column 'c': 'y' is not a number"):
        csv_to_npy(tmp_path / "base.csv", tmp_path / "X.npy", tmp_path / "y.npy", "y")
    assert _outputs(tmp_path) == []


def test_convert_names_a_parquet_column_that_is_not_numbers(tmp_path):
    pq.write_table(pa.table({"a": [[1, 2], [3]], "y": [1.0, 2.0]}), tmp_path / "list.parquet")
    with pytest.raises(ValueError, match=r"list\.parquet: column 'a' has Parquet type list<"):
        csv_to_npy(tmp_path / "list.parquet", tmp_path / "X.npy", tmp_path / "y.npy", "y")
    assert _outputs(tmp_path) == []


@pytest.mark.parametrize("skip", [False, True])
def test_convert_a_value_beyond_float32_is_a_bad_row(tmp_path, skip):
    _write(tmp_path / "big.csv", "a,y\n1,3\n1e39,2\n2,-1e40\n4,5\n")
    if not skip:
        with pytest.raises(ValueError, match=r"2 bad rows .*line 3, column 'a': 1e\+39 "
                                             r"overflows float32; line 4, column 'y': "
                                             r"-1e\+40 overflows float32"):
            csv_to_npy(tmp_path / "big.csv", tmp_path / "X.npy", tmp_path / "y.npy", "y")
        assert _outputs(tmp_path) == []
        pq.write_table(pa.table({"a": [1.0, 1e39], "y": [1.0, 2.0]}), tmp_path / "big.parquet")
        with pytest.raises(ValueError, match=r"big\.parquet: row 2, column 'a': 1e\+39 "
                                             r"overflows float32"):
            csv_to_npy(tmp_path / "big.parquet", tmp_path / "X.npy", tmp_path / "y.npy", "y")
        # float64 holds it
        csv_to_npy(tmp_path / "big.csv", tmp_path / "X.npy", tmp_path / "y.npy", "y",
                   dtype=np.float64)
        assert np.load(tmp_path / "X.npy")[1, 0] == 1e39
    else:
        result = csv_to_npy(tmp_path / "big.csv", tmp_path / "X.npy", tmp_path / "y.npy", "y",
                            skip_bad=True)
        assert result.n_bad == 2
        np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), [[1], [4]])


@pytest.mark.parametrize("x, y, what", [("x.csv", "y.npy", "--out-x"),
                                        ("x.npy", "y.txt", "--out-y")])
def test_convert_outputs_must_be_npy(tmp_path, x, y, what):
    _write(tmp_path / "t.csv", "a,y\n1,2\n")
    with pytest.raises(ValueError, match="%s .*must end in .npy" % what):
        csv_to_npy(tmp_path / "t.csv", tmp_path / x, tmp_path / y, "y")
    assert not (tmp_path / x).exists() and not (tmp_path / y).exists()


def test_a_column_both_chosen_and_dropped_and_a_gzip_csv_are_refused(tmp_path):
    import gzip

    from numba_dense.model.data import tabular
    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join("%d,%d,%d\n" % (i, i % 3, i) for i in range(20)))
    with pytest.raises(ValueError, match="'a' named both as features and to drop"):
        tabular.Preprocessing.fit(str(table), "y", features=["a", "b"], drop=["a"])
    packed = tmp_path / "packed.csv"
    packed.write_bytes(gzip.compress(table.read_bytes()))
    with pytest.raises(ValueError, match=r"is gzip-compressed, not CSV text: name it "
                                         r".*packed\.csv\.gz \(read as it is\)"):
        tabular.Preprocessing.fit(str(packed), "y")


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2"])
def test_a_compressed_csv_reads_as_the_csv_does(tmp_path, capsys, suffix):
    """name.csv.gz and name.csv.bz2 are read as the CSV inside (pyarrow decompresses by the
    suffix, Python's csv module through open_csv_text): the same columns, the same rows,
    a late bad value named by its line, an empty or damaged file in one line; train,
    predict and convert take them."""
    import bz2
    import gzip
    from numba_dense.model.interfaces.cli import main
    module = gzip if suffix == ".csv.gz" else bz2
    rows = ["%d,%s,%d,%.1f" % (i, "abc"[i % 3], i % 2 == 0, i * 0.5) for i in range(300)]
    text = "n,letter,even,y\n" + "\n".join(rows) + "\n"
    plain, packed = tmp_path / "t.csv", tmp_path / ("t" + suffix)
    plain.write_text(text)
    packed.write_bytes(module.compress(text.encode()))
    a, b = tabular.Preprocessing.fit(str(plain), "y"), tabular.Preprocessing.fit(str(packed), "y")
    assert a.columns == b.columns and a.task == b.task
    upper = tmp_path / ("T" + suffix.upper())  # pyarrow alone guesses from lower case only
    upper.write_bytes(packed.read_bytes())
    assert tabular.Preprocessing.fit(str(upper), "y").columns == a.columns
    (tmp_path / ("folder" + suffix)).mkdir()
    with pytest.raises(ValueError, match="a folder, not a file"):
        tabular.column_names(str(tmp_path / ("folder" + suffix)))
    for (Xa, ya), (Xb, yb) in zip(a.batches(str(plain)), b.batches(str(packed))):
        np.testing.assert_array_equal(Xa, Xb)
        np.testing.assert_array_equal(ya, yb)
    late = tmp_path / ("late" + suffix)
    late.write_bytes(module.compress((text + "7,b,1,seven\n").encode()))
    with pytest.raises(ValueError, match=r"line 302.*'seven'"):
        tabular.Preprocessing.fit(str(late), "y")
    empty, damaged = tmp_path / ("empty" + suffix), tmp_path / ("damaged" + suffix)
    empty.write_bytes(module.compress(b""))
    damaged.write_bytes(module.compress(text.encode())[:40] + b"\x00" * 40)
    with pytest.raises(ValueError, match="the file is empty"):
        tabular.column_names(str(empty))
    with pytest.raises(ValueError) as caught:
        tabular.Preprocessing.fit(str(damaged), "y")
    assert len(str(caught.value).splitlines()) == 1 and str(damaged) in str(caught.value)
    model, out = str(tmp_path / "m.npz"), str(tmp_path / "p.csv")
    assert main(["train", "--data", str(packed), "--target-col", "y", "--epochs", "1",
                 "--save", model]) == 0
    assert main(["predict", "--model", model, "--data", str(packed), "--out", out]) == 0
    numbers = tmp_path / ("numbers" + suffix)
    numbers.write_bytes(module.compress(
        ("a,b,y\n" + "".join("%d,%d,%d\n" % (i, i % 7, i % 3) for i in range(300))).encode()))
    done = csv_to_npy(str(numbers), str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), ["y"])
    assert done.rows == 300 and np.load(tmp_path / "X.npy").shape == (300, 2)
    # damaged past the first 64 KB: pyarrow's read fails, and the line search after it
    big = ("n,y\n" + "".join("%d,%d\n" % (i, i) for i in range(60000))).encode()
    cut = module.compress(big)
    (tmp_path / ("cut" + suffix)).write_bytes(cut[:len(cut) // 2] + b"\x00" * 100)
    for read in (lambda path: tabular.Preprocessing.fit(path, "y"),
                 lambda path: csv_to_npy(path, str(tmp_path / "cx.npy"),
                                         str(tmp_path / "cy.npy"), ["y"])):
        with pytest.raises(ValueError, match="not a readable compressed file") as caught:
            read(str(tmp_path / ("cut" + suffix)))
        assert len(str(caught.value).splitlines()) == 1
    capsys.readouterr()
