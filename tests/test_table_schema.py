"""One schema per table, decided over the whole file and enforced on new files: the kinds of
input real files have (each case a small generated file reproducing a public bug report)."""

import datetime
import decimal

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data import tabular
from numba_dense.model.interfaces.cli import main

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402


def _fit(path, target, **kw):
    return tabular.Preprocessing.fit(path, target, **kw)


def _types(prep):
    return {c["name"]: c["type"] for c in prep.columns}


def test_true_false_columns_as_pandas_writes_them_are_bools(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"is_foreign": rng.random(200) < 0.3, "size": rng.random(200),
                          "price": rng.random(200) * 1000})
    path = tmp_path / "cars.csv"
    frame.to_csv(path, index=False)
    assert path.read_text().splitlines()[1].split(",")[0] in ("True", "False")
    prep = _fit(path, "price")
    assert _types(prep) == {"is_foreign": "bool", "size": "number"}
    X, _ = next(prep.batches(path))
    raw = frame["is_foreign"].to_numpy(float)
    np.testing.assert_allclose(X[:, 0], (raw - raw.mean()) / raw.std(), rtol=1e-5)
    assert any("True/False (as 1/0), standardized: is_foreign" in line
               for line in prep.summary())
    # a bool target is a classification with classes False and True
    clf = _fit(path, "is_foreign")
    assert clf.task == "classification" and clf.classes == [False, True]


def test_quoted_line_breaks_at_any_file_size(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "BLOCK_BYTES", 1 << 14)   # many blocks: breaks cross them
    path = tmp_path / "notes.csv"
    rows = ['%d,"note %d\nsecond line, with a comma",%d' % (i, i % 7, i % 3) for i in range(3000)]
    path.write_text("x,note,y\n" + "\n".join(rows) + "\n")
    prep = _fit(path, "y", classify=True)
    assert prep.rows == 3000 and _types(prep) == {"x": "number", "note": "text"}
    assert len(prep.columns[1]["categories"]) == 7
    assert sum(len(X) for X, _ in prep.batches(path)) == 3000


def test_bad_value_after_quoted_line_breaks_names_its_line(tmp_path):
    prep_file = tmp_path / "train.csv"
    prep_file.write_text('x,note,y\n1,"a\nb",2\n3,"c",4\n')
    prep = _fit(prep_file, "y")
    new = tmp_path / "new.csv"
    new.write_text('x,note,y\n1,"a\nb",2\nseven,"c",4\n')
    with pytest.raises(tabular.TableError, match=r"new\.csv: line 4, column 'x': 'seven' is "
                                                 r"not a number"):
        list(prep.batches(new))


def test_parquet_dictionary_columns_as_feature_and_target(tmp_path):
    city = pa.array(["Oslo", "Bergen", "Oslo", "Tromso"] * 50).dictionary_encode()
    table = pa.table({"city": city, "t": np.arange(200.0), "label": city})
    path = tmp_path / "cities.parquet"
    pq.write_table(table, path)
    assert pa.types.is_dictionary(pq.read_schema(path).field("city").type)
    prep = _fit(path, "label")
    assert prep.task == "classification" and prep.classes == ["Bergen", "Oslo", "Tromso"]
    assert _types(prep) == {"city": "text", "t": "number"}
    X, y = next(prep.batches(path))
    np.testing.assert_array_equal(y[:4], [1, 0, 1, 2])
    assert X[:4, :3].tolist() == [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_a_column_of_nothing_but_missing_values_is_left_out_in_csv_and_parquet(tmp_path):
    """A CSV column of empty fields has no type; a Parquet column keeps its type (double,
    string, bool) with nulls only: either way it holds no values and is left out, not
    imputed as an input of constant zeros."""
    n = 120
    t = np.arange(float(n))
    table = pa.table({"t": t, "nums": pa.nulls(n, pa.float64()),
                      "text": pa.nulls(n, pa.string()), "flags": pa.nulls(n, pa.bool_()),
                      "y": t * 2})
    pq.write_table(table, tmp_path / "gaps.parquet")
    (tmp_path / "gaps.csv").write_text(
        "t,nums,text,flags,y\n" + "".join("%d,,,,%d\n" % (i, 2 * i) for i in range(n)))
    for path in (tmp_path / "gaps.parquet", tmp_path / "gaps.csv"):
        prep = _fit(path, "y")
        assert _types(prep) == {"t": "number"}, path
        assert set(prep.left_out) == {"nums", "text", "flags"}
        assert all(why.startswith("no values") for why in prep.left_out.values())


def test_every_arrow_type_of_a_parquet_file(tmp_path):
    n = 6
    day = datetime.date(2024, 3, 1)
    table = pa.table({
        "flag": pa.array([True, False, None, True, False, True]),
        "count": pa.array([1, None, 3, 4, 5, 6], pa.int64()),
        "price": pa.array([decimal.Decimal("1.50")] * n, pa.decimal128(5, 2)),
        "day": pa.array([day + datetime.timedelta(days=i) for i in range(n)], pa.date32()),
        "day64": pa.array([day] * n, pa.date64()),
        "stamp": pa.array([datetime.datetime(2024, 3, 1, i) for i in range(n)],
                          pa.timestamp("ms")),
        "zoned": pa.array([datetime.datetime(2024, 3, 1, i) for i in range(n)],
                          pa.timestamp("us", tz="Europe/Oslo")),
        "wait": pa.array([datetime.timedelta(seconds=i) for i in range(n)], pa.duration("s")),
        "name": pa.array(list("abcabc"), pa.large_string()),
        "y": pa.array(np.arange(n, dtype=float)),
    })
    path = tmp_path / "types.parquet"
    pq.write_table(table, path)
    prep = _fit(path, "y")
    assert _types(prep) == {"flag": "bool", "count": "number", "price": "number",
                            "day": "datetime", "day64": "datetime", "stamp": "datetime",
                            "zoned": "datetime", "wait": "number", "name": "text"}
    X, y = next(prep.batches(path))
    assert np.isfinite(X).all() and X.shape == (n, prep.n_features)
    day_col = prep.columns[3]
    assert day_col["mean"] == pytest.approx(
        (datetime.datetime(2024, 3, 1) - datetime.datetime(1970, 1, 1)).total_seconds()
        + 2.5 * 86400)
    assert prep.imputed == {"count": 1, "flag": 1}


def test_a_column_of_an_unusable_type_is_one_line_naming_it(tmp_path):
    table = pa.table({"tags": pa.array([[1, 2], [3]]), "y": [1.0, 2.0]})
    path = tmp_path / "lists.parquet"
    pq.write_table(table, path)
    with pytest.raises(tabular.TableError, match=r"lists\.parquet: column 'tags' has type "
                                                 r"list<.*>, which cannot be a network input: "
                                                 r"leave it out with --drop-cols tags"):
        _fit(path, "y")
    result = main(["train", "--data", str(path), "--target-col", "y", "--epochs", "1"])
    assert result == 2


def test_csv_dates_and_timestamps_are_seconds(tmp_path):
    path = tmp_path / "days.csv"
    lines = ["2024-03-%02d,2013-01-01T%02d:00:00Z,%d" % (d, d % 24, d) for d in range(1, 29)]
    path.write_text("day,hour,y\n" + "\n".join(lines) + "\n")
    prep = _fit(path, "y")
    assert _types(prep) == {"day": "datetime", "hour": "datetime"}
    assert prep.columns[0]["scale"] == pytest.approx(86400 * np.std(np.arange(28)))
    assert main(["train", "--data", str(path), "--target-col", "y", "--epochs", "2"]) == 0


def test_a_text_column_empty_for_the_first_megabyte_is_text(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "BLOCK_BYTES", 1 << 14)
    path = tmp_path / "season.csv"
    first = ["%d,,%d" % (i, i % 5) for i in range(20000)]
    later = ["%d,%s,%d" % (i, ("SPRING", "AUTUMN")[i % 2], i % 5) for i in range(2000)]
    path.write_text("x,season,y\n" + "\n".join(first + later) + "\n")
    assert path.stat().st_size > 4 * tabular.BLOCK_BYTES
    prep = _fit(path, "y")
    assert _types(prep) == {"x": "number", "season": "text"}
    assert prep.columns[1]["categories"] == ["<missing>", "AUTUMN", "SPRING"]
    counts = dict(zip(*np.unique(np.concatenate([X[:, 1:].argmax(1)
                                                 for X, _ in prep.batches(path)]),
                                 return_counts=True)))
    assert counts == {0: 20000, 1: 1000, 2: 1000}


def test_a_column_that_turns_to_text_late_is_counted_from_its_first_row(tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "BLOCK_BYTES", 1 << 14)
    path = tmp_path / "codes.csv"
    codes = ["%03d" % (i % 4) for i in range(6000)] + ["A15", "B20"] * 500
    path.write_text("code,y\n" + "".join("%s,%d\n" % (c, i % 3) for i, c in enumerate(codes)))
    prep = _fit(path, "y")
    assert prep.columns[0]["type"] == "text"
    assert prep.columns[0]["categories"] == ["000", "001", "002", "003", "A15", "B20"]


def test_store_codes_learned_as_text_stay_text_in_new_files(tmp_path):
    rng = np.random.default_rng(0)
    codes = np.array(["007", "012", "A15", "B20"])
    effect = {"007": 10.0, "012": -10.0, "A15": 5.0, "B20": -5.0}
    picks = codes[rng.integers(0, 4, 2000)]
    train = tmp_path / "stores.csv"
    train.write_text("store,x,sales\n" + "".join(
        "%s,%.3f,%.3f\n" % (c, x, effect[c] + x) for c, x in zip(picks, rng.random(2000))))
    model = str(tmp_path / "net.npz")
    assert main(["train", "--data", str(train), "--target-col", "sales", "--save", model,
                 "--epochs", "30"]) == 0
    net = MLP.load(model)
    assert net.preprocessing.columns[0]["type"] == "text"
    only_numbers = tmp_path / "only_numbers.csv"
    only_numbers.write_text("store,x\n007,0.5\n012,0.5\n")
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("store,x\n007,0.5\n012,0.5\nA15,0.5\n")
    a, b = net.predict(str(only_numbers)), net.predict(str(mixed))
    assert not net.last_read.get("unseen")
    np.testing.assert_allclose(a, b[:2], rtol=1e-6)
    np.testing.assert_allclose(a[:, 0], [10.5, -9.5], atol=1.0)


def test_numbers_with_one_typo_are_an_error_not_text(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("a,y\n" + "".join("%d,%d\n" % (i, i) for i in range(100)) + "1O,3\n")
    with pytest.raises(tabular.TableError, match=r"line 102, column 'a' holds numbers and "
                                                 r"the text '1O'"):
        _fit(path, "y")


# ----------------------------------------------------------------------------- categories

def test_rare_categories_are_grouped_as_infrequent(tmp_path):
    rng = np.random.default_rng(1)
    values = ["v%02d" % min(int(rng.exponential(8)), 59) for _ in range(5000)]
    path = tmp_path / "rare.csv"
    path.write_text("cat,y\n" + "".join("%s,%d\n" % (v, i % 2) for i, v in enumerate(values)))
    prep = _fit(path, "y", max_categories=10)
    column = prep.columns[0]
    assert len(column["categories"]) == 9 and column["infrequent"]
    top = sorted(set(values), key=lambda v: (-values.count(v), v))[:9]
    assert column["categories"] == sorted(top)
    assert column["grouped"] == len(set(values)) - 9
    assert prep.feature_names[-1] == "cat=<infrequent>" and prep.n_features == 10
    assert any("cat (10, %d rare values grouped as <infrequent>)" % column["grouped"] in line
               for line in prep.summary())
    X, _ = next(prep.batches(path))
    rare = np.array([v not in top for v in values])
    np.testing.assert_array_equal(X[:, 9] == 1, rare)
    assert (X.sum(axis=1) == 1).all()
    new = tmp_path / "new.csv"
    new.write_text("cat,y\nnever_seen,1\n%s,0\n" % sorted(set(values) - set(top))[0])
    counts = {}
    X, _ = next(prep.batches(new, counts=counts))
    assert X[:, 9].tolist() == [1, 1] and counts["unseen"] == {"cat": 1}


def test_identifiers_are_left_out_and_reported_unless_kept(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("id,x,y\n" + "".join("row%d,%d,%d\n" % (i, i % 5, i) for i in range(300)))
    prep = _fit(path, "y", max_categories=20)
    assert [c["name"] for c in prep.columns] == ["x"]
    assert "identifier" in prep.left_out["id"] and "--keep-identifiers" in prep.left_out["id"]
    assert any(line.startswith("  left out id: an identifier (300 distinct values")
               for line in prep.summary())
    kept = _fit(path, "y", max_categories=20, keep_identifiers=True)
    assert kept.n_features == 1 + 20
    only = tmp_path / "only_ids.csv"
    only.write_text("id,y\n" + "".join("row%d,%d\n" % (i, i) for i in range(300)))
    with pytest.raises(tabular.TableError, match="no usable feature column is left"):
        _fit(only, "y")


def test_duplicate_column_names_are_refused_naming_them(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("y,x,y\n1,2,3\n")
    with pytest.raises(tabular.TableError, match=r"the header names 'y' 2 times \(columns "
                                                 r"1, 3\)"):
        _fit(path, "y")


def test_a_model_saved_before_the_schema_still_reads_files(tmp_path):
    spec = {"target": "y", "task": "regression", "classes": None, "scale": True,
            "columns": [{"name": "a", "kind": "numeric", "mean": 1.0, "scale": 2.0},
                        {"name": "c", "kind": "text", "categories": ["u", "v"]}],
            "feature_names": ["a", "c=u", "c=v"], "rows": 2, "dropped_rows": 0,
            "imputed": {}, "source": "old.csv"}
    prep = tabular.Preprocessing(spec)
    path = tmp_path / "new.csv"
    path.write_text("a,c,y\n3,v,1\n")
    X, y = next(prep.batches(path))
    assert X.tolist() == [[1.0, 0.0, 1.0]] and y.tolist() == [1.0]
