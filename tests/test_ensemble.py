"""Ensembles (model.network.ensemble): members bit-identical to networks trained alone, on
one thread or several; averaged predictions; one file; one ONNX graph."""

import _thread
import os
import threading

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris

from numba_dense import MLP
from numba_dense.model import Ensemble, EnsembleInterrupted, load_model
from numba_dense.model.network import ensemble as ensemble_module

FIT = dict(epochs=4, batch_size=32, lr=0.01)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y


def _alone(sizes, net_seed, X, y, **kw):
    options = dict(kw)
    net_options = {key: options.pop(key) for key in ("output",) if key in options}
    net = MLP(sizes, seed=net_seed, **net_options)
    net.fit(X, y, **options)
    return net


def test_members_are_the_networks_trained_alone_on_one_or_two_threads(diabetes):
    X, y = diabetes
    w = np.linspace(0.5, 2.0, len(y))
    ensembles = []
    for jobs in (1, 2, None):  # None: the usable cores
        ens = Ensemble([10, 16, 8, 1], seed=3, n_networks=3, n_jobs=jobs)
        histories = ens.fit(X, y, sample_weight=w, seed=7, validation_fraction=0.2, **FIT)
        assert len(histories) == 3 and ens.histories == histories
        ensembles.append(ens)
    for k in range(3):
        alone = _alone([10, 16, 8, 1], 3 + k, X, y, sample_weight=w, seed=7 + k,
                       validation_fraction=0.2, **FIT)
        for ens in ensembles:
            np.testing.assert_array_equal(ens.members[k].params, alone.params)
            assert ens.members[k].history.loss == alone.history.loss
            assert ens.members[k].target_scaling.scale == alone.target_scaling.scale
    assert ensembles[0].seeds == [3, 4, 5]
    assert not np.array_equal(ensembles[0].members[0].params, ensembles[0].members[1].params)


def test_a_classifier_with_class_weight_on_threads(iris):
    X, y = iris
    ens = Ensemble([4, 8, 3], output="softmax", seed=0, n_networks=2, n_jobs=2)
    ens.fit(X, y, class_weight="balanced", seed=1, **FIT)
    for k in range(2):
        alone = _alone([4, 8, 3], k, X, y, output="softmax", class_weight="balanced",
                       seed=1 + k, **FIT)
        np.testing.assert_array_equal(ens.members[k].params, alone.params)
    members = ens.predict_proba_members(X)
    assert members.shape == (2, 150, 3) and members.dtype == np.float32
    np.testing.assert_allclose(ens.predict_proba(X), members.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(ens.predict(X), ens.predict_proba(X).argmax(1))
    labels = ens.predict_members(X)
    assert labels.shape == (2, 150)
    np.testing.assert_array_equal(labels[1], ens.members[1].predict(X))
    assert ens.score(X, y) == np.mean(ens.predict(X) == y)
    assert ens.score(X, y) > 0.6


def test_float64_and_sparse_rows_are_converted_once_for_every_member(diabetes):
    import scipy.sparse
    X, y = diabetes
    X64 = X.astype(np.float64)
    X64[np.abs(X64) < 0.02] = 0.0
    for rows in (X64, scipy.sparse.csc_matrix(X64)):
        ens = Ensemble([10, 8, 1], seed=2, n_networks=2, n_jobs=2)
        ens.fit(rows, y, seed=0, **FIT)
        alone = _alone([10, 8, 1], 3, rows, y, seed=1, **FIT)
        np.testing.assert_array_equal(ens.members[1].params, alone.params)
        np.testing.assert_allclose(ens.predict(rows), ens.predict_members(rows).mean(0),
                                   rtol=1e-6)


def test_predict_averages_the_members_and_scores_it(diabetes):
    X, y = diabetes
    ens = Ensemble([10, 8, 1], seed=0, n_networks=3, n_jobs=1)
    ens.fit(X, y, seed=0, **FIT)
    members = ens.predict_members(X)
    assert members.shape == (3, len(X), 1)
    np.testing.assert_allclose(ens.predict(X), members.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(members[2], ens.members[2].predict(X))
    pred = ens.predict(X).astype(np.float64)[:, 0]
    r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert ens.score(X, y) == pytest.approx(r2, rel=1e-9)
    # a memmap / .npy path is read in chunks: the same predictions
    assert len(ens) == ens.n_networks == 3
    with pytest.raises(TypeError, match="classifier"):
        ens.predict_proba(X)


def test_npy_paths(diabetes, tmp_path):
    X, y = diabetes
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    ens = Ensemble([10, 8, 1], seed=0, n_networks=2, n_jobs=2)
    ens.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), seed=0, **FIT)
    alone = _alone([10, 8, 1], 1, str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), seed=1,
                   **FIT)
    np.testing.assert_array_equal(ens.members[1].params, alone.params)
    np.testing.assert_allclose(ens.predict(str(tmp_path / "X.npy")), ens.predict(X), rtol=1e-6)


def test_save_and_load_one_file(diabetes, iris, tmp_path):
    X, y = diabetes
    ens = Ensemble([10, 8, 1], seed=5, n_networks=2, n_jobs=1)
    ens.fit(X, y, seed=0, **FIT)
    path = tmp_path / "ens.npz"
    ens.save(path)
    back = Ensemble.load(path)
    assert back.seeds == [5, 6] and len(back) == 2
    for a, b in zip(ens.members, back.members):
        np.testing.assert_array_equal(a.params, b.params)
        assert a.history.loss == b.history.loss
    np.testing.assert_array_equal(back.predict(X), ens.predict(X))
    assert isinstance(load_model(path), Ensemble)
    ens.members[0].save(tmp_path / "net.npz")
    assert isinstance(load_model(tmp_path / "net.npz"), MLP)
    with pytest.raises(ValueError, match="numba-dense-ensemble"):
        MLP.load(path)
    # a damaged member is named
    arrays = dict(np.load(path))
    arrays["member1.params"] = arrays["member1.params"][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="member 1: params has shape"):
        Ensemble.load(tmp_path / "bad.npz")
    del arrays["member1.params"]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="member 1"):
        Ensemble.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="expected 'numba-dense-ensemble'"):
        Ensemble.load(tmp_path / "net.npz")


def test_errors_name_the_member_and_outputs_are_checked_first(diabetes, tmp_path):
    X, y = diabetes
    ens = Ensemble([10, 8, 1], seed=0, n_networks=2, n_jobs=2)
    before = [m.params.copy() for m in ens.members]
    with pytest.raises(ValueError, match="epochs"):
        ens.fit(X, y, epochs=-1)
    with pytest.raises(FileNotFoundError, match="member 0"):
        ens.fit(X, y, checkpoint=str(tmp_path / "missing" / "c.npz"), **FIT)
    with pytest.raises(ValueError, match="NaN"):
        ens.fit(np.full_like(X, np.nan), y, **FIT)
    for b, m in zip(before, ens.members):
        np.testing.assert_array_equal(b, m.params)
    # a member diverging: its error, with a note naming it
    with pytest.raises(FloatingPointError) as info:
        ens.fit(X * 1e4, y * 1e6, epochs=3, lr=1e3, standardize_target=False, seed=0)
    assert info.value.ensemble_member in (0, 1)
    assert "member" in "".join(getattr(info.value, "__notes__", []))
    with pytest.raises(ValueError, match="n_networks"):
        Ensemble([10, 1], n_networks=0)
    with pytest.raises(ValueError, match="n_jobs"):
        Ensemble([10, 1], n_jobs=0)
    with pytest.raises(ValueError, match="share their architecture"):
        Ensemble.from_members([MLP([10, 1]), MLP([10, 2, 1])])
    with pytest.raises(TypeError, match="must be an MLP"):
        Ensemble.from_members([MLP([10, 1]), "net"])
    with pytest.raises(ValueError, match="2 seeds for 1 members"):
        Ensemble.from_members([MLP([10, 1])], seeds=[0, 1])


def test_checkpoints_are_one_file_per_member(diabetes, tmp_path):
    X, y = diabetes
    ens = Ensemble([10, 8, 1], seed=0, n_networks=2, n_jobs=2)
    ens.fit(X, y, seed=0, checkpoint=str(tmp_path / "c.npz"), **FIT)
    assert sorted(os.listdir(tmp_path)) == ["c.member0.npz", "c.member1.npz"]
    again = Ensemble([10, 8, 1], seed=0, n_networks=2, n_jobs=1)
    again.fit(X, y, seed=0, checkpoint=str(tmp_path / "c.npz"), resume=True, **FIT)
    for a, b in zip(ens.members, again.members):
        np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("checkpointed", [False, True])
def test_ctrl_c_stops_every_member(diabetes, tmp_path, checkpointed):
    """With a checkpoint each member's interrupt checkpoint is written on its own thread;
    that write's end raised the thread's stop as a bare KeyboardInterrupt, which replaced
    the member's TrainingInterrupted: the ensemble reported no member cut short and the
    command line saved nothing."""
    X, y = diabetes
    ens = Ensemble([10, 8, 1], seed=0, n_networks=3, n_jobs=2)
    ens.fit(X[:50], y[:50], epochs=1)  # compiled before the timer starts
    checkpoint = dict(checkpoint=str(tmp_path / "c.npz")) if checkpointed else {}
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(EnsembleInterrupted) as info:
            ens.fit(X, y, epochs=100_000, batch_size=32, **checkpoint)
    finally:
        timer.cancel()
    stop = info.value
    # members 0 and 1 were training (two threads), 2 had not started
    assert stop.finished == [] and sorted(stop.interrupted) == [0, 1]
    if checkpointed:  # each interrupted member's checkpoint holds its last whole epoch
        assert sorted(os.listdir(tmp_path)) == ["c.member0.npz", "c.member1.npz"]
    assert stop.history is stop.interrupted[0].history and stop.epoch >= 1
    assert not [t for t in threading.enumerate() if t.name.startswith("numba-dense-member")]
    assert isinstance(stop, KeyboardInterrupt)
    for m in ens.members[:2]:  # the members keep what they trained, as MLP.fit does
        assert np.isfinite(m.params).all()


# ----------------------------------------------------------------------------- tables

def _write_table(path, n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], n)
    y = 2 * a - b + (color == "red") + rng.normal(scale=0.1, size=n)
    kind = np.where(a + (color == "blue") > 0.3, "up", "down")
    with open(path, "w") as f:
        f.write("a,b,color,y,kind\n")
        for i in range(n):
            b_text = "" if i % 17 == 3 else "%.4f" % b[i]
            f.write("%.4f,%s,%s,%.4f,%s\n" % (a[i], b_text, color[i], y[i], kind[i]))


def _inputs(path, target):
    from numba_dense.model.data.tabular import Preprocessing
    return Preprocessing.fit(path, target).n_features


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble_tables")
    _write_table(folder / "train.csv", 200, 0)
    _write_table(folder / "test.csv", 60, 1)
    return folder


def test_a_table_is_read_once_and_members_match_networks_trained_alone(table):
    train = str(table / "train.csv")
    n = _inputs(train, "y")
    ens = Ensemble([n, 8, 1], seed=0, n_networks=2, n_jobs=2)
    ens.fit(train, "y", seed=0, **FIT)
    alone = MLP([n, 8, 1], seed=1)
    alone.fit(train, "y", seed=1, **FIT)
    np.testing.assert_array_equal(ens.members[1].params, alone.params)
    assert ens.members[1].preprocessing is ens.members[0].preprocessing
    test = str(table / "test.csv")
    np.testing.assert_allclose(ens.predict(test), ens.predict_members(test).mean(0), rtol=1e-6)
    assert -1 < ens.score(test, "y") <= 1


def test_a_table_classifier_predicts_its_labels(table):
    train, test = str(table / "train.csv"), str(table / "test.csv")
    ens = Ensemble([_inputs(train, "kind"), 8, 2], output="softmax", seed=0, n_networks=2, n_jobs=1)
    ens.fit(train, "kind", seed=0, **FIT)
    labels = ens.predict(test)
    assert set(labels) <= {"up", "down"}
    assert ens.predict_members(test).shape == (2, 60)
    assert 0 <= ens.score(test, "kind") <= 1


# ----------------------------------------------------------------------------- ONNX

@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _run(ort, model, feed):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed)))


def _matches(actual, expected):
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("output,n_out", [("identity", 2), ("exp", 1), ("softmax", 3),
                                          ("sigmoid", 1), ("sigmoid", 3)])
def test_onnx_averages_the_members(ort, iris, tmp_path, output, n_out):
    X, labels = iris
    if output == "softmax":
        y = labels
    elif output == "sigmoid":
        y = (labels == 1).astype(np.int64) if n_out == 1 else np.eye(3)[labels]
    elif output == "exp":
        y = labels.astype(np.float64)
    else:
        y = np.stack([X[:, 0] * 3 + 10, X[:, 1] - X[:, 2]], axis=1)
    ens = Ensemble([4, 6, n_out], output=output, seed=0, n_networks=3, n_jobs=1)
    ens.fit(X, y, seed=0, **FIT)
    path = tmp_path / "ens.onnx"
    model = ens.to_onnx(path)
    assert path.exists()
    out = _run(ort, model, {"X": X})
    if ens.is_classifier:
        _matches(out["probabilities"], ens.predict_proba(X))
        np.testing.assert_array_equal(out["label"], ens.predict(X))
    else:
        _matches(out["variable"], ens.predict(X))
    with pytest.raises(ValueError, match=".onnx"):
        ens.to_onnx(tmp_path / "ens.npz")


@pytest.mark.parametrize("target,output,n_out", [("y", "identity", 1), ("kind", "softmax", 2)])
def test_onnx_of_a_table_ensemble_reads_the_raw_columns(ort, table, target, output, n_out):
    import csv
    train, test = str(table / "train.csv"), str(table / "test.csv")
    ens = Ensemble([_inputs(train, target), 8, n_out], output=output, seed=0,
                   n_networks=2, n_jobs=1)
    ens.fit(train, target, seed=0, **FIT)
    model = ens.to_onnx()
    prep = ens.preprocessing
    with open(test) as f:
        rows = list(csv.DictReader(f))
    feed = {}
    for column in prep.columns:
        values = [r[column["name"]] for r in rows]
        if column["kind"] == "text":
            feed[column["name"]] = np.array([[v] for v in values], dtype=object)
        else:
            feed[column["name"]] = np.array([[float(v) if v else np.nan] for v in values])
    out = _run(ort, model, feed)
    if output == "identity":
        _matches(out["variable"], ens.predict(test))
    else:
        np.testing.assert_array_equal(out["label"], ens.predict(test).astype(str))
        _matches(out["probabilities"], ens.predict_proba(test))


def test_module_docstring_names_the_seed_rule():
    assert "seed + k" in ensemble_module.__doc__


# ----------------------------------------------------------------------------- command line

def test_train_networks_then_predict_evaluate_and_export(table, tmp_path, capsys):
    from numba_dense.model.interfaces.cli import main
    train, test = str(table / "train.csv"), str(table / "test.csv")
    model = str(tmp_path / "ens.npz")
    assert main(["train", "--data", train, "--target-col", "y", "--hidden-sizes", "8",
                 "--epochs", "3", "--networks", "3", "--jobs", "2", "--seed", "4",
                 "--save", model]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 3 networks" in out and "seeds 4 to 6" in out
    assert "network 2 (seed 6): 3 epochs" in out and "saved to" in out
    ens = load_model(model)
    assert isinstance(ens, Ensemble) and ens.seeds == [4, 5, 6]
    # the members are the networks `train` makes alone with seeds 4, 5 and 6
    alone = str(tmp_path / "alone.npz")
    assert main(["train", "--data", train, "--target-col", "y", "--hidden-sizes", "8",
                 "--epochs", "3", "--seed", "5", "--save", alone]) == 0
    np.testing.assert_array_equal(MLP.load(alone).params, ens.members[1].params)
    capsys.readouterr()
    assert main(["evaluate", "--model", model, "--data", test, "--target-col", "y"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "r2 %.6g" % ens.score(test, "y")
    assert main(["predict", "--model", model, "--data", test,
                 "--out", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), ens.predict(test))
    if _has_onnx():
        assert main(["export", "--model", model, "--out", str(tmp_path / "ens.onnx")]) == 0
        assert (tmp_path / "ens.onnx").exists()


def _has_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


# ----------------------------------------------------------------------------- estimators

def test_estimators_with_n_networks_average_members_seeded_random_state_plus_k(diabetes, iris):
    from sklearn.base import clone
    from numba_dense.model import MLPClassifier, MLPRegressor
    X, y = diabetes
    options = dict(hidden_layer_sizes=(8,), max_iter=5, learning_rate_init=0.01)
    reg = MLPRegressor(n_networks=3, random_state=4, **options)
    with pytest.warns(Warning):  # max_iter reached: ConvergenceWarning, per member
        reg.fit(X, y)
    nets = reg.networks_
    assert len(nets) == 3 and nets[0] is reg._net
    for k in (1, 2):
        with pytest.warns(Warning):
            alone = MLPRegressor(random_state=4 + k, **options).fit(X, y)
        np.testing.assert_array_equal(nets[k].params, alone._net.params)
    with pytest.warns(Warning):
        np.testing.assert_array_equal(
            reg.coefs_[0], MLPRegressor(random_state=4, **options).fit(X, y).coefs_[0])
    expected = np.mean([n.predict(X)[:, 0] for n in nets], axis=0)
    np.testing.assert_allclose(reg.predict(X), expected, rtol=1e-6)
    assert clone(reg).get_params()["n_networks"] == 3
    with pytest.raises(ValueError, match="n_networks"):
        reg.partial_fit(X, y)
    with pytest.raises(ValueError, match="n_networks"):
        MLPRegressor(n_networks=0).fit(X, y)

    X, labels = iris
    clf = MLPClassifier(n_networks=2, random_state=0, **options)
    with pytest.warns(Warning):
        clf.fit(X, np.array(["a", "b", "c"])[labels])
    P = np.mean([n.predict_proba(X) for n in clf.networks_], axis=0)
    np.testing.assert_allclose(clf.predict_proba(X), P, rtol=1e-6)
    np.testing.assert_array_equal(clf.predict(X), np.array(["a", "b", "c"])[P.argmax(1)])
    # one network: exactly as before (no averaging)
    with pytest.warns(Warning):
        one = MLPClassifier(random_state=0, **options).fit(X, labels)
    assert len(one.networks_) == 1
    np.testing.assert_array_equal(one.predict_proba(X), one._net.predict_proba(X))


@pytest.mark.parametrize("stop_at, trained", [(2, 1), (5, 2)])
def test_ctrl_c_in_an_estimators_member_trains_no_further_member(diabetes, monkeypatch,
                                                                 stop_at, trained):
    """n_networks=4, 3 epochs each: a Ctrl-C in member 0's second epoch (call 2 of the
    epoch loop) or member 1's (call 5) keeps the members trained so far, the interrupted
    one with its work, warns once, and trains none after it (members 1-3 trained in full
    after member 0's Ctrl-C, found by a helper's attack)."""
    from numba_dense.model import MLPRegressor
    from numba_dense.model.interfaces import estimators
    X, y = diabetes
    real, calls = estimators.loop.run, []

    def run_with_a_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(estimators.loop, "run", run_with_a_ctrl_c)
    reg = MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, n_networks=4, random_state=0)
    with pytest.warns(UserWarning, match="Training interrupted by user") as warned:
        reg.fit(X, y)
    assert sum("interrupted" in str(w.message) for w in warned) == 1
    assert len(calls) == stop_at and len(reg.networks_) == trained
    # epochs done: member 0's, then each further member's
    members = reg.__dict__.get("_members", [])
    assert [reg.n_iter_] + [m.n_iter_ for m in members] == ([1] if trained == 1 else [3, 1])
    np.testing.assert_allclose(reg.predict(X), np.mean([n.predict(X)[:, 0] for n in
                                                        reg.networks_], axis=0), rtol=1e-6)


def _by_hand(estimator, X, y, seed):
    """``estimator`` as a fit leaves it, with a random network (no training: the converter
    reads the networks and classes only)."""
    from sklearn.preprocessing import LabelBinarizer
    classifier = y.dtype.kind in "OU"
    if classifier:
        estimator._label_binarizer = LabelBinarizer().fit(y)
        estimator.classes_ = estimator._label_binarizer.classes_
    n_out = (len(estimator.classes_) if len(estimator.classes_) > 2 else 1) if classifier else 1
    output = ("softmax" if n_out > 1 else "sigmoid") if classifier else "identity"
    estimator._net = MLP([X.shape[1], 6, n_out], output=output, seed=seed)
    estimator.n_features_in_, estimator.n_outputs_ = X.shape[1], n_out
    estimator.out_activation_ = {"sigmoid": "logistic"}.get(output, output)
    return estimator


@pytest.mark.parametrize("kind", ["regressor", "multiclass", "binary"])
def test_skl2onnx_converts_an_estimator_with_n_networks_as_its_average(iris, kind):
    skl2onnx = pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    from sklearn.base import clone
    from numba_dense import MLPClassifier, MLPRegressor
    from numba_dense.model.interfaces.skl2onnx_converters import register_skl2onnx
    register_skl2onnx()
    X, labels = iris
    if kind == "regressor":
        est, y = MLPRegressor(hidden_layer_sizes=(6,), n_networks=3), X[:, 0] * 2.0
    else:
        names = np.array(["a", "b", "c"] if kind == "multiclass" else ["a", "b", "b"])
        est, y = MLPClassifier(hidden_layer_sizes=(6,), n_networks=3), names[labels]
    _by_hand(est, X, y, 0)
    est._members = [_by_hand(clone(est).set_params(n_networks=1), X, y, k) for k in (1, 2)]
    options = None if kind == "regressor" else {type(est): {"zipmap": False}}
    model = skl2onnx.to_onnx(est, X[:1], options=options)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: X})
    if kind == "regressor":
        _matches(out[0].ravel(), est.predict(X))
    else:
        _matches(out[1], est.predict_proba(X))
        np.testing.assert_array_equal(out[0], est.predict(X))


def test_ctrl_c_during_train_networks_saves_the_ensemble_so_far(diabetes, tmp_path, capsys):
    from numba_dense.model.interfaces.cli import main
    X, y = diabetes
    np.savez(tmp_path / "d.npz", X=np.tile(X, (20, 1)), y=np.tile(y, 20))
    base = ["train", "--data", str(tmp_path / "d.npz"), "--hidden-sizes", "8",
            "--networks", "3", "--jobs", "2", "--batch-size", "32"]
    assert main(base + ["--epochs", "1"]) == 0  # compiled before the timer starts
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        status = main(base + ["--epochs", "100000", "--early-stopping", "0",
                              "--save", str(tmp_path / "ens.npz")])
    finally:
        timer.cancel()
    assert status == 130
    err = capsys.readouterr().err
    assert "0 of 3 members finished" in err and "saved the ensemble so far" in err
    ens = Ensemble.load(tmp_path / "ens.npz")
    assert all(ens.members[k].history.interrupted_epoch for k in (0, 1))
    assert ens.members[2].step == 0  # not started: its initial parameters


# ----------------------------------------------------------------------------- MPI

def test_an_ensemble_trains_over_mpi_member_after_member(tmp_path):
    """With comm the members train one after another on every rank (the same collective
    calls in the same order); member k equals MLP(seed=seed + k) trained over MPI alone."""
    import shutil
    import subprocess
    import sys
    import textwrap
    pytest.importorskip("mpi4py")
    mpiexec = (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
               or shutil.which("mpiexec"))
    if mpiexec is None:
        pytest.skip("no mpiexec")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import sys, numpy as np
        from mpi4py import MPI
        from numba_dense.model import MLP, Ensemble
        comm, folder = MPI.COMM_WORLD, sys.argv[1]
        rng = np.random.default_rng(comm.Get_rank())
        X = rng.standard_normal((60, 4))
        y = np.tanh(X @ [1.0, -1.0, 0.5, 0.0])
        options = dict(epochs=2, batch_size=8, lr=0.05, seed=3, comm=comm)
        ens = Ensemble([4, 6, 1], seed=0, n_networks=2)
        ens.fit(X, y, **options)
        alone = MLP([4, 6, 1], seed=1)
        alone.fit(X, y, **dict(options, seed=4))
        np.save(folder + "/e%d.npy" % comm.Get_rank(), ens.members[1].params)
        np.save(folder + "/a%d.npy" % comm.Get_rank(), alone.params)
    """))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=root)
    result = subprocess.run([mpiexec, "-n", "2", sys.executable, str(script), str(tmp_path)],
                            capture_output=True, text=True, cwd=root, env=env, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    for r in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / ("e%d.npy" % r)),
                                      np.load(tmp_path / "a0.npy"))


def test_scikit_learn_protocol_clone_set_params_and_cross_validation():
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score
    rng = np.random.default_rng(0)
    X = rng.standard_normal((150, 3))
    y = X.sum(axis=1)
    ens = Ensemble([3, 8, 1], seed=2, n_networks=3, n_jobs=2)
    ens.fit(X, y, epochs=2)
    twin = clone(ens)
    assert twin.get_params() == ens.get_params() and twin.seeds == [2, 3, 4]
    trained = ens.members[1].params.copy()
    ens.set_params(hidden="relu", n_networks=3)  # unchanged: the trained members stay
    np.testing.assert_array_equal(ens.members[1].params, trained)
    ens.set_params(n_networks=2)
    assert len(ens.members) == 2 and ens.histories is None
    with pytest.raises(ValueError, match="unknown parameters bogus"):
        ens.set_params(bogus=1)
    scores = cross_val_score(Ensemble([3, 8, 1], seed=0, n_networks=2), X, y, cv=3)
    assert np.isfinite(scores).all()
