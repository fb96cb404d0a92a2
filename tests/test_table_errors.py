"""Nothing lost, nothing silently wrong when reading tables (issue 20): ``convert`` and
prediction/evaluation on files that are not what they should be give one line naming the
file, the line (1 = the header) and the column, and write nothing.

Command-line behaviour runs the command line in a subprocess, as users meet it.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from numba_dense.model import MLP, tabular
from numba_dense.model.convert import csv_to_npy

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
                           "line 3: field b'caf\\xe9' is not UTF-8 text")
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
    ("a,b,y\n1,x,3\n", ["empty.csv has no good data rows", "line 2: field 'x' is not a number"]),
])
@pytest.mark.parametrize("skip", [[], ["--skip-bad"]], ids=["strict", "skip-bad"])
def test_convert_of_a_file_without_rows_is_one_line(tmp_path, text, words, skip):
    csv = _write(tmp_path / "empty.csv", text)
    if "x" in text and not skip:
        words = ["has 1 bad row (nothing written): line 2: field 'x' is not a number"]
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
    _one_line_error(_convert(tmp_path, csv, "--target-col", "y", "--delimiter", delimiter),
                    message)
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
    with pytest.raises(ValueError, match=r"t\.csv: line 14, column 'y': the target must be a "
                                         r"finite number .*got inf"):
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
