"""ONNX export (model.network.onnx_export): the graph computes what predict computes.

Networks are small and not trained (random weights, a set target scaling), so that only the
prediction kernels compile; the skl2onnx test fits one estimator for two iterations.
"""

import datetime
import math
import warnings

import numpy as np
import pytest

from numba_dense import MLP, kernels
from numba_dense.model.data.targets import TargetScaling
from numba_dense.model.interfaces.cli import main

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from numba_dense.model.network import onnx_export  # noqa: E402

RTOL = 1e-5
TRAINABLE = [a for a in kernels.ACTIVATIONS
             if not getattr(kernels.ACTIVATION_TABLE[kernels.ACTIVATIONS[a]], "needs_z", False)]


def run(model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed)))


def assert_matches(actual, expected):
    """Within 1e-5 relative, measured against the largest value (a value near 0 is compared
    with the scale of the outputs, not its own)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(0)
    return rng.standard_normal((300, 5)).astype(np.float32)


def network(sizes, seed=0, **kw):
    net = MLP(sizes, seed=seed, **kw)
    rng = np.random.default_rng(seed + 1)
    for b in net.biases:
        b[...] = rng.standard_normal(b.shape) * 0.1
    return net


@pytest.mark.parametrize("hidden", TRAINABLE)
def test_every_hidden_activation_with_a_scaled_regression(rows, hidden):
    net = network([5, 7, 6, 2], hidden=hidden)
    net.target_scaling = TargetScaling(mean=np.array([3.0, -2.0]), scale=4.5)
    out = run(net.to_onnx(), {"X": rows})
    assert list(out) == ["variable"]
    assert out["variable"].dtype == np.float32
    assert_matches(out["variable"], net.predict(rows))


def test_one_activation_per_hidden_layer_and_the_robust_losses(rows):
    net = network([5, 7, 6, 1], hidden=["leaky_relu", "tanh"])
    out = run(net.to_onnx(), {"X": rows})
    assert_matches(out["variable"], net.predict(rows))
    for options in (dict(loss="huber"), dict(loss="absolute_error"),
                    dict(loss="quantile", quantile=0.9)):
        net = network([5, 7, 1], **options)
        net.target_scaling = TargetScaling(mean=np.array([2.0]), scale=3.0)
        assert_matches(run(net.to_onnx(), {"X": rows})["variable"], net.predict(rows))


@pytest.mark.parametrize("name", sorted(set(kernels.ACTIVATIONS) - set(TRAINABLE)))
def test_activations_that_cannot_train_yet_export_too(rows, name):
    """GELU and SiLU (set by hand: MLP refuses to train them) as Erf and Sigmoid nodes."""
    net = network([5, 8, 6, 1])
    net.acts[:-1] = kernels.ACTIVATIONS[name]
    assert_matches(run(net.to_onnx(), {"X": rows})["variable"], net.predict(rows))


@pytest.mark.parametrize("kind", ["identity", "relu", "sigmoid_mse", "exp", "softmax",
                                  "sigmoid", "multilabel"])
def test_every_output_kind(rows, kind):
    sizes, options = {
        "identity": ([5, 8, 1], dict()),
        "relu": ([5, 8, 1], dict(output="relu")),
        "sigmoid_mse": ([5, 8, 2], dict(output="sigmoid", loss="mse")),
        "exp": ([5, 8, 1], dict(output="exp")),
        "softmax": ([5, 8, 4], dict(output="softmax")),
        "sigmoid": ([5, 8, 1], dict(output="sigmoid")),
        "multilabel": ([5, 8, 3], dict(output="sigmoid")),
    }[kind]
    net = network(sizes, hidden="tanh", **options)
    out = run(net.to_onnx(), {"X": rows})
    if not net.is_classifier:
        assert_matches(out["variable"], net.predict(rows))
        return
    np.testing.assert_array_equal(out["label"], net.predict(rows))
    assert out["label"].dtype == np.int64
    assert_matches(out["probabilities"], net.predict_proba(rows))


def test_float64_network_makes_a_double_graph(rows):
    """Compared with NumPy in float64 (so that no float64 kernel compiles here; the kernels'
    float64 path is compared with NumPy by tests/test_predict_fast.py and test_kernels.py)."""
    net = network([5, 6, 3], dtype=np.float64, output="softmax")
    X = rows.astype(np.float64)
    out = run(net.to_onnx(), {"X": X})
    Z = np.maximum(X @ net.weights[0].T + net.biases[0], 0) @ net.weights[1].T + net.biases[1]
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    assert out["probabilities"].dtype == np.float64
    np.testing.assert_allclose(out["probabilities"], P / P.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    np.testing.assert_array_equal(out["label"], Z.argmax(axis=1))


def test_to_onnx_writes_the_file_and_checks_its_arguments(rows, tmp_path):
    net = network([5, 4, 1])
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path)
    assert onnx.load(str(path)) == model
    with pytest.raises(FileNotFoundError, match="path: folder .* does not exist"):
        net.to_onnx(tmp_path / "missing" / "net.onnx")
    # a slip of the suffix must not overwrite the network's own file with the graph
    saved = tmp_path / "net.npz"
    net.save(saved)
    before = saved.read_bytes()
    with pytest.raises(ValueError, match="path must end in .onnx, got '.*net.npz'"):
        net.to_onnx(saved)
    assert saved.read_bytes() == before
    with pytest.raises(ValueError, match="opset must be an integer >= 13, got 11"):
        net.to_onnx(opset=11)
    with pytest.raises(TypeError, match="net must be a numba_dense MLP, got str"):
        onnx_export.to_onnx("net.npz")
    net.params[0] = np.nan
    with pytest.raises(ValueError, match="params hold NaN"):
        net.to_onnx()


# ----------------------------------------------------------------------------- tables

def _table(n=120, seed=0):
    """Raw columns: a number with missing values, a True/False, a date/time, two text
    columns (one with missing values and a rare value), and a regression and a class
    target."""
    rng = np.random.default_rng(seed)
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    cols = {
        "price": [None if i % 11 == 3 else float(np.round(rng.normal(50, 20), 2))
                  for i in range(n)],
        "flag": [bool(v) for v in rng.integers(0, 2, n)],
        "when": [start + datetime.timedelta(hours=int(h)) for h in rng.integers(0, 5000, n)],
        "color": [None if i % 13 == 5 else c
                  for i, c in enumerate(rng.choice(["red", "green", "blue"], n))],
        "city": ["Paris" if i == 7 else c for i, c in enumerate(rng.choice(["Lyon", "Nice"], n))],
    }
    cols["size"] = [float(np.round(rng.normal(3, 1), 3)) for _ in range(n)]
    cols["kind"] = [("a", "b", "c")[int(v)] for v in rng.integers(0, 3, n)]
    return cols


def _write_csv(cols, path):
    names = list(cols)
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        for i in range(len(cols[names[0]])):
            fields = []
            for name in names:
                v = cols[name][i]
                if v is None:
                    fields.append("")
                elif isinstance(v, datetime.datetime):
                    fields.append(v.strftime("%Y-%m-%d %H:%M:%S"))
                elif isinstance(v, bool):
                    fields.append("True" if v else "False")
                else:
                    fields.append(str(v))
            f.write(",".join(fields) + "\n")


def _feed(cols, prep):
    """The graph's inputs from the raw columns: numbers, True/False as 1/0 and dates as
    seconds, missing as NaN; text as strings, missing as ""."""
    feed = {}
    for column in prep.columns:
        values = cols[column["name"]]
        if column["kind"] in ("text", "code"):
            feed[column["name"]] = np.array([["" if v is None else v] for v in values],
                                            dtype=object)
        else:
            feed[column["name"]] = np.array(
                [[math.nan if v is None else (v.timestamp() if isinstance(v, datetime.datetime)
                                              else float(v))] for v in values])
    return feed


@pytest.fixture(scope="module")
def table_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    train, test = _table(200, seed=1), _table(60, seed=2)
    test["color"][0] = "purple"  # not seen in training: zeros
    test["city"][1] = "Berlin"  # not seen: <infrequent> if the column has it
    _write_csv(train, folder / "train.csv")
    _write_csv(test, folder / "test.csv")
    return folder, test


@pytest.mark.parametrize("target,output", [("size", "identity"), ("kind", "softmax")])
def test_a_table_network_reads_the_raw_columns(table_files, target, output):
    from numba_dense.model.data.tabular import Preprocessing
    folder, test = table_files
    other = "kind" if target == "size" else "size"
    prep = Preprocessing.fit(folder / "train.csv", target, drop=[other], max_categories=3)
    assert {c["type"] for c in prep.columns} == {"number", "bool", "datetime", "text"}
    n_out = 1 if output == "identity" else 3
    net = network([prep.n_features, 9, n_out], output=output)
    net.preprocessing = prep
    if output == "identity":
        net.target_scaling = TargetScaling(mean=np.array([3.0]), scale=1.5)
    model = net.to_onnx()
    assert [i.name for i in model.graph.input] == [c["name"] for c in prep.columns]
    out = run(model, _feed(test, prep))
    expected = net.predict(folder / "test.csv")
    if output == "identity":
        assert_matches(out["variable"], expected)
    else:
        np.testing.assert_array_equal(out["label"], expected.astype(str))
        assert_matches(out["probabilities"], net.predict_proba(folder / "test.csv"))


@pytest.mark.parametrize("encoding", ["embedding", "auto"])
def test_a_table_network_with_embedded_text_columns_reads_the_raw_columns(
        table_files, encoding):
    """Text columns as category codes (``category_encoding``): the graph maps each value to
    its code (rare, unseen: 0; missing: its own) and looks the code up in the table."""
    from numba_dense.model.data.tabular import Preprocessing
    folder, test = table_files
    prep = Preprocessing.fit(folder / "train.csv", "size", drop=["kind"], max_categories=2,
                             category_encoding=encoding)
    assert "code" in {c["kind"] for c in prep.columns} and prep.embeddings
    net = MLP([prep.n_features, 9, 1], embeddings=prep.embeddings, seed=0)
    for table in net.tables:  # trained-looking tables: every code reads another row
        table[...] = np.random.default_rng(0).standard_normal(table.shape)
    net.preprocessing = prep
    out = run(net.to_onnx(), _feed(test, prep))
    assert_matches(out["variable"], net.predict(folder / "test.csv"))


def test_a_column_kind_the_graph_cannot_read_is_refused(table_files):
    from numba_dense.model.data.tabular import Preprocessing
    folder, _ = table_files
    prep = Preprocessing.fit(folder / "train.csv", "size", drop=["kind"])
    prep.columns[1] = dict(prep.columns[1], kind="embedding")
    net = network([prep.n_features, 3, 1])
    net.preprocessing = prep
    with pytest.raises(onnx_export.OnnxExportError, match="column 'flag' .* kind 'embedding'"):
        net.to_onnx()


# ----------------------------------------------------------------------------- skl2onnx

def _fitted_by_hand(estimator, X, y):
    """``estimator`` as a fit leaves it, with an untrained network: the converter reads its
    network and classes only, and fitting would compile the training kernels (tested by
    tests/test_estimators.py) for a minute."""
    from sklearn.preprocessing import LabelBinarizer
    classifier = y.dtype.kind in "OU"
    if classifier:
        estimator._label_binarizer = LabelBinarizer().fit(y)
        estimator.classes_ = estimator._label_binarizer.classes_
    n_out = len(estimator.classes_) if classifier else 1
    output = "softmax" if classifier else "identity"
    estimator._net = network([X.shape[1], *estimator.hidden_layer_sizes, n_out],
                             hidden="relu", output=output)
    estimator.n_features_in_, estimator.n_outputs_ = X.shape[1], n_out
    estimator.out_activation_ = output
    return estimator


def test_a_pipeline_ending_in_our_estimators_converts_as_one_graph(rows):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from numba_dense import MLPClassifier, MLPRegressor
    from numba_dense.model.interfaces.skl2onnx_converters import register_skl2onnx
    register_skl2onnx()
    register_skl2onnx()  # twice: nothing more
    X = rows * 3 + 1
    y = X[:, 0] - 2 * X[:, 1]
    labels = np.array(["low", "mid", "high"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    for estimator, target in ((MLPRegressor(hidden_layer_sizes=(6,)), y),
                              (MLPClassifier(hidden_layer_sizes=(6,)), labels)):
        scaler = StandardScaler().fit(X)
        pipe = make_pipeline(scaler, _fitted_by_hand(estimator, scaler.transform(X), target))
        options = {type(estimator): {"zipmap": False}} if target is labels else None
        model = skl2onnx.to_onnx(pipe, X[:1], options=options)
        out = list(run(model, {model.graph.input[0].name: X}).values())
        if target is y:
            assert_matches(out[0].ravel(), pipe.predict(X))
        else:
            np.testing.assert_array_equal(out[0], pipe.predict(X))
            assert_matches(out[1], pipe.predict_proba(X))


def test_an_estimator_with_categorical_features_converts_with_its_unknown_row(rows):
    """``categorical_features``: the graph looks the codes up, and a code beyond the
    training X's reads the table's last (unknown-category) row, as ``predict`` does."""
    skl2onnx = pytest.importorskip("skl2onnx")
    from numba_dense import MLPRegressor
    from numba_dense.model.interfaces.skl2onnx_converters import register_skl2onnx
    register_skl2onnx()
    X = rows.astype(np.float64)
    X[:, 2] = np.arange(len(X)) % 4
    estimator = MLPRegressor(hidden_layer_sizes=(6,), max_iter=2, random_state=0,
                             categorical_features=[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        estimator.fit(X, X[:, 0])
    new = X.copy()
    new[:4, 2] = [4, 7, 1e6, -1]  # unseen codes, a missing one
    model = skl2onnx.to_onnx(estimator, new[:1])
    out = run(model, {model.graph.input[0].name: new})
    assert_matches(list(out.values())[0].ravel(), estimator.predict(new))


# ----------------------------------------------------------------------------- command line

def test_export_command(tmp_path, capsys, rows):
    net = network([5, 4, 3], output="softmax")
    net.save(tmp_path / "net.npz")
    assert main(["export", "--model", str(tmp_path / "net.npz"),
                 "--out", str(tmp_path / "net.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    out = run(onnx.load(str(tmp_path / "net.onnx")), {"X": rows})
    np.testing.assert_array_equal(out["label"], net.predict(rows))


@pytest.mark.parametrize("model,out,message", [
    ("missing.npz", "net.onnx", "--model: no such file"),
    ("net.npz", "net.npz", "--out .* is the input --model"),
    ("net.npz", "nowhere/net.onnx", "--out: folder .* does not exist"),
    ("net.npz", "net.txt", "--out must end in .onnx"),
    ("net.npz", ".", "is a folder"),
])
def test_export_refuses_bad_paths_in_one_line(tmp_path, capsys, model, out, message):
    import re
    network([5, 2, 1]).save(tmp_path / "net.npz")
    before = (tmp_path / "net.npz").read_bytes()
    assert main(["export", "--model", str(tmp_path / model),
                 "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1
    assert (tmp_path / "net.npz").read_bytes() == before
