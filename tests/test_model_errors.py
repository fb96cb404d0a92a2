"""Issue 20: nothing silently wrong, no tracebacks, one-line messages naming the argument (or
the file and the field), what was expected and what was given."""

import contextlib
import json

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import threads
from numba_dense.model import MLP
from numba_dense.model.network import persistence
from numba_dense.model.data.tabular import Preprocessing
from numba_dense.model.data.sources import EVAL_BATCH


def _one_line(exc):
    text = str(exc)
    assert "\n" not in text, text
    assert "<object type" not in text and "np.float64(" not in text and "np.int64(" not in text
    return text


# ----------------------------------------------------------------------------- score

@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[3, 0], [0, 3], [-3, -3]])
    labels = rng.integers(0, 3, 90)
    X = centers[labels] + 0.3 * rng.standard_normal((90, 2))
    return X, labels


@pytest.mark.parametrize("y, error, message", [
    (np.full(90, 5), ValueError, "y[0] is 5: class labels must be integers 0..2"),
    (np.full(90, -1), ValueError, "y[0] is -1: class labels must be integers 0..2"),
    (np.full(90, 1.5), ValueError, "y[0] is 1.5: class labels must be integers 0..2"),
    (np.array([0] * 89 + [None], dtype=object), TypeError, "(y[89] is None)"),
    (np.array(["a"] * 90), TypeError, "(y[0] is 'a'); class labels must be integers 0..2"),
])
def test_score_refuses_labels_outside_the_classes_as_cost_does(blobs, y, error, message):
    X, _ = blobs
    net = MLP([2, 3], output="softmax", seed=0)
    with pytest.raises(error) as from_score:
        net.score(X, y)
    with pytest.raises(error) as from_cost:
        net.cost(X, y)
    assert message in _one_line(from_score.value)
    assert str(from_score.value) == str(from_cost.value)  # one shared check


def test_score_still_counts_labels_and_one_hot_rows(blobs):
    X, labels = blobs
    net = MLP([2, 8, 3], output="softmax", seed=0)
    net.fit(X, labels, epochs=20, lr=0.1, seed=0)
    accuracy = net.score(X, labels)
    assert accuracy == float((net.predict(X) == labels).mean()) > 0.9
    assert net.score(X, np.eye(3)[labels]) == accuracy


def test_score_of_a_sigmoid_network_needs_labels_0_or_1(blobs):
    X, labels = blobs
    net = MLP([2, 1], output="sigmoid", seed=0)
    y = (labels == 0).astype(float)
    assert 0 <= net.score(X, y) <= 1
    y[4] = 0.7  # a target the cost takes, but no label
    with pytest.raises(ValueError) as info:
        net.score(X, y)
    assert _one_line(info.value).startswith("y[4] is 0.7: accuracy needs labels 0 or 1")
    with pytest.raises(ValueError, match=r"y\[4\] is 2.0|y row 4 holds \[2.0\]"):
        net.score(X, np.where(np.arange(90) == 4, 2.0, y))


# ----------------------------------------------------------------------------- loading

@pytest.fixture
def saved(tmp_path):
    """(path, arrays) of a small saved regression network (with a target scaling)."""
    net = MLP([3, 4, 2], seed=0)
    rng = np.random.default_rng(0)
    net.fit(rng.standard_normal((20, 3)), rng.standard_normal((20, 2)), epochs=1)
    path = tmp_path / "m.npz"
    net.save(path)
    return path, dict(np.load(path))


def _with(path, arrays, **changes):
    arrays = dict(arrays)
    for key, value in changes.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


def _nan_at(a, i, value=np.nan):
    a = a.copy()
    a[i] = value
    return a


BAD_FIELDS = [
    (lambda a: dict(params=_nan_at(a["params"], 3)), "params hold NaN at index 3"),
    (lambda a: dict(params=_nan_at(a["params"], 5, np.inf)), "params hold inf at index 5"),
    (lambda a: dict(params=a["params"].astype(np.int64)),
     "params are int64 but the model's dtype is float32"),
    (lambda a: dict(params=a["params"].astype(np.float64)),
     "params are float64 but the model's dtype is float32"),
    (lambda a: dict(velocity=_nan_at(a["velocity"], 0)), "velocity holds NaN at index 0"),
    (lambda a: dict(dtype=np.array("float16")), "dtype is 'float16', not one of 'float32'"),
    (lambda a: dict(dtype=np.array(32)), "dtype must be a string, got dtype int64"),
    (lambda a: dict(hidden=np.array("mish")), "hidden is 'mish', not one of 'identity'"),
    (lambda a: dict(output=np.array("softplus")), "output is 'softplus', not one of"),
    (lambda a: dict(loss=np.array("hinge")), "loss is 'hinge', not one of 'mse'"),
    (lambda a: dict(optimizer=np.array("lbfgs")), "optimizer is 'lbfgs', not one of"),
    (lambda a: dict(step=np.array(-1)), "step is -1; it must be >= 0"),
    (lambda a: dict(version=np.array("5")), "version must be an integer, got a string"),
    (lambda a: dict(layer_sizes=np.array([3.0, 4.0, 2.0])), "layer_sizes is [3.0, 4.0, 2.0]"),
    (lambda a: dict(fit_history=np.array('{"loss": "abc"}')),
     "fit_history: loss is 'abc', not a list of numbers"),
    (lambda a: dict(fit_history=np.array("[1]")), "fit_history is not a valid history: JSON list"),
    (lambda a: dict(preprocessing=np.array("{}")),
     "preprocessing lacks 'target', 'task', 'columns'"),
    (lambda a: dict(target_mean=np.array([np.nan, 0.0])), "target_mean [nan, 0.0]"),
    (lambda a: dict(target_scale=np.array([1.0, 2.0])),
     "target_scale (dtype float64, shape (2,)) must be numbers"),
    (lambda a: dict(target_scale=None), "version 6 lacks target_scale"),
    # valid fields that do not go together: the constructor's message, naming the file
    (lambda a: dict(output=np.array("softmax"), loss=np.array("mse"), target_mean=np.empty(0),
                    target_scale=np.array(1.0)),
     "output='softmax' trains with loss='cross_entropy', got loss='mse'"),
    (lambda a: dict(output=np.array("softmax"), loss=np.array("cross_entropy")),
     "a target scaling belongs to a regression"),
    # what a version writes is required of it (it would take a default silently)
    (lambda a: dict(target_mean=None), "version 6 lacks target_mean"),
    (lambda a: dict(target_scale=None, target_mean=None), "version 6 lacks target_mean, "
     "target_scale"),
    (lambda a: dict(optimizer=None), "version 6 lacks optimizer"),
    (lambda a: dict(optimizer=None, version=np.array(4), target_mean=None, target_scale=None),
     "version 4 lacks optimizer"),
    (lambda a: dict(layer_sizes=np.array([2**40, 2**40, 1])),
     "layer_sizes [1099511627776, 1099511627776, 1] make more than 2**63 - 1 parameters"),
]


@pytest.mark.parametrize("change, message", BAD_FIELDS)
def test_a_bad_field_is_refused_at_load_naming_the_file(saved, tmp_path, change, message):
    path, arrays = saved
    bad = _with(tmp_path / "bad.npz", arrays, **change(arrays))
    # persistence.load checks each field; whether they go together is MLP's check
    loads = (MLP.load,) if "trains with" in message else (MLP.load, persistence.load)
    for load in loads:
        with pytest.raises(ValueError) as info:
            load(bad)
        text = _one_line(info.value)
        assert text.startswith("load: %r is not a valid numba-dense model file: "
                               % str(bad)), text
        assert message in text, text


def test_a_member_that_is_not_an_array_is_refused_at_load(saved, tmp_path):
    import zipfile
    path, _ = saved
    bad = tmp_path / "bytes.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            dst.writestr(item.filename,
                         b"hello" if item.filename == "params.npy" else src.read(item))
    with pytest.raises(ValueError) as info:
        MLP.load(bad)
    text = _one_line(info.value)
    assert str(bad) in text and "member 'params' is not a NumPy array (got bytes)" in text


def test_a_version_4_file_without_scaling_arrays_still_loads(saved, tmp_path):
    path, arrays = saved
    old = _with(tmp_path / "v4.npz", arrays, version=np.array(4), target_mean=None,
                target_scale=None)
    assert MLP.load(old).target_scaling is None


def test_the_saved_file_itself_loads_and_predicts(saved):
    path, _ = saved
    assert np.isfinite(MLP.load(path).predict(np.zeros((2, 3)))).all()


def _spec(n_inputs=3):
    return dict(target="y", task="regression", target_type="number",
                columns=[{"name": "c%d" % i, "kind": "numeric", "type": "number", "mean": 0.0,
                          "scale": 1.0} for i in range(n_inputs)],
                classes=None, scale=True, feature_names=["c%d" % i for i in range(n_inputs)],
                rows=20, dropped_rows=0, imputed={}, left_out={}, grouped={}, source="t.csv")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("columns"), "preprocessing lacks 'columns'"),
    (lambda s: s.update(columns=[]), "preprocessing columns is [], not a list of columns"),
    (lambda s: s.update(task="clustering"), "preprocessing task is 'clustering'"),
    (lambda s: s.update(task="classification"),
     "preprocessing classes is None; a classification needs a list of its classes"),
    (lambda s: s.update(feature_names=["a", "b"]),
     "preprocessing feature_names lists 2 inputs but the network has 3"),
    (lambda s: s["columns"][1].pop("mean"), "preprocessing columns[1] ('c1') has mean None"),
    (lambda s: s["columns"][1].update(scale=0.0), "preprocessing columns[1] ('c1') has scale 0.0"),
    (lambda s: s["columns"][2].update(kind="date"), "columns[2] ('c2') has kind 'date'"),
    (lambda s: s["columns"][2].update(kind="text", categories=["u", "v"]),
     "preprocessing columns make 4 inputs but feature_names lists 3"),
])
def test_a_bad_preprocessing_is_refused_at_load(tmp_path, edit, message):
    net = MLP([3, 1], seed=0)
    net.preprocessing = Preprocessing(_spec())
    net.save(tmp_path / "t.npz")
    assert MLP.load(tmp_path / "t.npz").preprocessing.feature_names == ["c0", "c1", "c2"]
    spec = _spec()
    edit(spec)
    bad = _with(tmp_path / "bad.npz", dict(np.load(tmp_path / "t.npz")),
                preprocessing=np.array(json.dumps(spec)))
    with pytest.raises(ValueError) as info:
        MLP.load(bad)
    text = _one_line(info.value)
    assert text.startswith("load: %r is not a valid numba-dense model file: " % str(bad))
    assert message in text, text


def test_save_refuses_nan_parameters(tmp_path):
    net = MLP([3, 2], seed=0)
    net.params[4] = np.nan
    with pytest.raises(ValueError, match="save: params hold NaN at index 4"):
        net.save(tmp_path / "n.npz")
    assert not (tmp_path / "n.npz").exists()


# ----------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("sizes, error, message", [
    (5, ValueError, "layer_sizes must list at least 2 widths [inputs, ..., outputs], got 5"),
    ("34", ValueError, "layer_sizes must list at least 2 widths"),
    ([3, 0], ValueError, "layer_sizes[1] must be >= 1, got 0"),
    ([3.5, 2], TypeError, "layer_sizes[0] must be an integer, got 3.5"),
    ([3, np.float64(2)], TypeError, "layer_sizes[1] must be an integer, got 2.0"),
])
def test_bad_layer_sizes(sizes, error, message):
    with pytest.raises(error) as info:
        MLP(sizes)
    assert message in _one_line(info.value)


@pytest.mark.parametrize("call", [
    lambda: MLP([3, 2], seed=-5),
    lambda: MLP([3, 2]).initialize(-5),
    lambda: MLP([3, 2]).fit(np.zeros((4, 3)), np.zeros((4, 2)), seed=-5),
])
def test_a_negative_seed_gets_our_message_not_numpys(call):
    with pytest.raises(ValueError) as info:
        call()
    assert _one_line(info.value) == "seed must be >= 0, got -5"


def test_seed_may_be_a_generator_but_not_a_float():
    a = MLP([3, 2], seed=np.random.default_rng(1))
    b = MLP([3, 2], seed=1)
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(TypeError, match="seed must be None, an integer >= 0 or a numpy"):
        MLP([3, 2], seed=1.5)


@pytest.mark.parametrize("changes, error, message", [
    (dict(shuffle="False"), TypeError, "shuffle must be True or False, got 'False'"),
    (dict(shuffle=None), TypeError, "shuffle must be True or False, got None"),
    (dict(nesterov="yes"), TypeError, "nesterov must be True or False, got 'yes'"),
    (dict(schedule="cosine", lr=0.01, min_lr=0.1), ValueError,
     "min_lr must be <= lr for schedule='cosine' (the rate falls from lr to min_lr), got "
     "min_lr=0.1 > lr=0.01"),
    (dict(epochs=np.float64(2)), TypeError, "epochs must be an integer, got 2.0"),
    (dict(lr=np.float32(-1)), ValueError, "lr must be > 0.0, got -1.0"),
    (dict(schedule=np.str_("cosinus")), ValueError, "got 'cosinus'"),
    # options that the optimizer, schedule or checkpointing in use would ignore
    (dict(optimizer="adam", momentum=0.5), ValueError,
     "momentum=0.5 applies to optimizer='sgd'; this fit uses 'adam'"),
    (dict(optimizer="adamw", nesterov=True), ValueError,
     "nesterov=True applies to optimizer='sgd'; this fit uses 'adamw'"),
    (dict(beta1=0.8), ValueError,
     "beta1=0.8 applies to optimizer='adam' or 'adamw'; this fit uses 'sgd'"),
    (dict(beta2=0.99), ValueError, "beta2=0.99 applies to optimizer='adam' or 'adamw'"),
    (dict(eps=1e-6), ValueError, "eps=1e-06 applies to optimizer='adam' or 'adamw'"),
    (dict(min_lr=0.001), ValueError,
     "min_lr=0.001 applies to schedule='cosine'; this fit uses 'constant'"),
    (dict(schedule="cosine", gamma=0.5), ValueError,
     "gamma=0.5 applies to schedule='step'; this fit uses 'cosine'"),
    (dict(step_size=3), ValueError, "step_size=3 applies to schedule='step'"),
    (dict(checkpoint_every=2), ValueError,
     "checkpoint_every=2 applies with checkpoint=path; this fit has checkpoint=None"),
    (dict(validation_seed=3), ValueError,
     "validation_seed=3 applies with validation_fraction > 0; this fit has "
     "validation_fraction=0.0"),
    # a string counts as true: a bool is required
    (dict(verbose="no"), TypeError, "verbose must be True or False, got 'no'"),
    (dict(verbose="False"), TypeError, "verbose must be True or False, got 'False'"),
    (dict(progress="False"), TypeError, "progress must be None, True or False, got 'False'"),
    (dict(validation_data=(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))), TypeError,
     "validation_data must be a pair (X_val, y_val), got a tuple of length 3"),
    (dict(validation_data=5), TypeError,
     "validation_data must be a pair (X_val, y_val), got an int"),
])
def test_bad_options_are_refused_before_anything_changes(changes, error, message):
    net = MLP([3, 2], seed=0)
    before = net.params.copy()
    with pytest.raises(error) as info:
        net.fit(np.zeros((8, 3)), np.zeros((8, 2)), **{"epochs": 2, **changes})
    assert message in _one_line(info.value)
    np.testing.assert_array_equal(net.params, before)


def test_min_lr_equal_to_lr_or_other_schedules_are_fine():
    net = MLP([3, 2], seed=0)
    X, y = np.zeros((8, 3)), np.zeros((8, 2))
    assert net.fit(X, y, epochs=2, schedule="cosine", lr=0.1, min_lr=0.1).lr == [0.1, 0.1]
    net.fit(X, y, epochs=1, schedule="step", lr=0.01, step_size=3, gamma=0.5)
    net.fit(X, y, epochs=1, optimizer="adam", beta1=0.8, beta2=0.99, eps=1e-6)
    net.fit(X, y, epochs=1, momentum=0.9, nesterov=True, verbose=False, progress=False)
    net.partial_fit(X, y, optimizer="adamw")


def test_masked_arrays_with_masked_values_are_refused():
    net = MLP([3, 1], seed=0)
    X, y = np.ones((4, 3)), np.ones(4)
    mask = np.zeros((4, 3), bool)
    mask[1, 2] = mask[3, 0] = True
    with pytest.raises(ValueError) as info:
        net.fit(np.ma.masked_array(X, mask), y, epochs=1)
    assert _one_line(info.value).startswith(
        "X is a masked array with 2 masked values: fill or drop them")
    with pytest.raises(ValueError, match="^y is a masked array with 1 masked value: fill"):
        net.fit(X, np.ma.masked_array(y, [0, 0, 1, 0]), epochs=1)
    with pytest.raises(ValueError, match="^X is a masked array with 2 masked values"):
        net.predict(np.ma.masked_array(X, mask))
    net.fit(np.ma.masked_array(X), y, epochs=1)  # nothing masked: its data


@pytest.mark.parametrize("X, y, message", [
    ({"X": np.ones((4, 5))}, np.ones(4), "X must be an array or a list of rows, got a dict of "
     "length 1"),
    ([[1, 2, 3, 4, 5], [1, 2]], [1, 2], "X must be rows of equal length, got a list of length "
     "2 whose rows differ (row 0 has 5 entries, row 1 has 2)"),
    (np.ones((4, 5)), {"y": np.ones(4)}, "y must be an array or a list of rows, got a dict "
     "of length 1"),
    (np.ones((4, 5)), [[1], [2, 3], [1], [1]], "y must be rows of equal length, got a list of "
     "length 4 whose rows differ (row 0 has 1 entries, row 1 has 2)"),
])
def test_data_that_is_no_array_is_named_in_one_line(X, y, message):
    with pytest.raises((TypeError, ValueError)) as info:
        MLP([5, 1], seed=0).fit(X, y, epochs=1)
    assert _one_line(info.value) == message


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "base.csv"
    rows = ["%g,%g,%g,%g" % tuple(r) for r in rng.standard_normal((30, 4))]
    path.write_text("a,b,c,y\n" + "\n".join(rows) + "\n")
    return str(path)


def test_a_warm_fit_on_a_table_keeps_the_target(table):
    net = MLP([3, 1], seed=0)
    net.fit(table, "y", epochs=1)
    before = net.params.copy()
    with pytest.raises(ValueError) as info:
        net.fit(table, "a", epochs=1)
    assert "y: this network was trained to predict 'y' from" in _one_line(info.value)
    assert "not 'a'" in str(info.value)
    assert net.preprocessing.target == "y"
    np.testing.assert_array_equal(net.params, before)
    net.fit(table, "y", epochs=1)  # the same target: a warm fit
    fresh = MLP([3, 1], seed=0)  # never trained: its preprocessing may be learned again
    fresh.preprocessing = net.preprocessing
    fresh.fit(table, "a", epochs=1)
    assert fresh.preprocessing.target == "a"


def test_a_bad_preprocessing_attribute_is_named(table, tmp_path):
    net = MLP([3, 1], seed=0)
    net.preprocessing = "x"
    for call in (lambda: net.save(tmp_path / "m.npz"), lambda: net.predict(table),
                 lambda: net.fit(table, "y", epochs=1)):
        with pytest.raises(TypeError) as info:
            call()
        assert _one_line(info.value) == ("preprocessing must be None or a "
                                         "numba_dense.model.data.tabular.Preprocessing, got str")
    trained = MLP([3, 1], seed=0)
    trained.fit(table, "y", epochs=1)
    wide = MLP([5, 1], seed=0)
    wide.preprocessing = trained.preprocessing
    for call in (lambda: wide.save(tmp_path / "w.npz"), lambda: wide.predict(table)):
        with pytest.raises(ValueError) as info:
            call()
        assert _one_line(info.value) == ("preprocessing makes 3 inputs but the network has 5 "
                                         "(layer_sizes[0])")
    assert not (tmp_path / "w.npz").exists()


def test_a_none_label_is_named():
    net = MLP([2, 3], output="softmax", seed=0)
    with pytest.raises(TypeError) as info:
        net.fit(np.zeros((3, 2)), [0, None, 1], epochs=1)
    assert _one_line(info.value) == (
        "y must be a numeric array, got dtype object (y[1] is None); class labels must be "
        "integers 0..2 (model.MLPClassifier takes labels of any type)")


def test_object_arrays_of_numbers_are_numbers():
    net = MLP([2, 3], output="softmax", seed=0)
    net.fit(np.array([[0, 1], [1, 0], [1, 1]], dtype=object), np.array([0, 2, 1], dtype=object),
            epochs=1)


def test_sparse_input_stays_sparse(monkeypatch):
    # kept sparse through the first layer (kernels.CSR): the same training as the dense
    # rows, sums taken in another order (rounding apart), and no dense-size limit
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5)) * (rng.random((40, 5)) < 0.3)
    y = X @ np.arange(5.0)
    a, b = MLP([5, 4, 1], seed=0), MLP([5, 4, 1], seed=0)
    a.fit(sparse.csr_matrix(X), y, epochs=2, seed=0)
    b.fit(X, y, epochs=2, seed=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.predict(sparse.csc_matrix(X)), b.predict(X), rtol=1e-5,
                               atol=1e-5)
    assert a.score(sparse.csr_matrix(X), y) == pytest.approx(b.score(X, y), rel=1e-5)
    with pytest.raises(ValueError, match=r"^X has 4 features \(columns\) but the network has 5$"):
        a.predict(sparse.csr_matrix(X[:, :4]))
    from numba_dense.model.data import validation
    monkeypatch.setattr(validation, "SPARSE_MAX_BYTES", 100)
    assert a.predict(sparse.csr_matrix(X)).shape == (40, 1)


def test_an_npz_path_is_refused_naming_its_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((4, 3)), y=np.zeros(4))
    net = MLP([3, 1], seed=0)
    for call in (lambda: net.fit(path, np.zeros(4), epochs=1), lambda: net.predict(path)):
        with pytest.raises(ValueError) as info:
            call()
        assert _one_line(info.value) == (
            "X: %r is an .npz archive (arrays: X, y), not one array; pass the array itself, "
            "e.g. np.load(%r)['X'], or save it as a .npy file to stream it"
            % (str(path), str(path)))


# ----------------------------------------------------------------------------- BLAS threads

@pytest.fixture
def thread_log(monkeypatch):
    """Record the limit asked of ``kernels.blas_threads_for`` (made to say 1) and, inside
    each compiled evaluation call, the limits in force and the BLAS thread count."""
    log = {"asked": [], "in_call": []}
    active = []
    real_blas_threads = kernels.blas_threads

    def blas_threads_for(sizes, batch_size, others=None):
        log["asked"].append(([int(n) for n in sizes], int(batch_size)))
        return 1

    @contextlib.contextmanager
    def blas_threads(limit):
        active.append(limit)
        try:
            with real_blas_threads(limit):
                yield
        finally:
            active.pop()

    def recorded(kernel):
        def call(*args):
            log["in_call"].append((kernel.__name__, list(active),
                                   threads.current_blas_threads()))
            return kernel(*args)
        return call

    monkeypatch.setattr(kernels, "blas_threads_for", blas_threads_for)
    monkeypatch.setattr(kernels, "blas_threads", blas_threads)
    monkeypatch.setattr(kernels, "predict_into", recorded(kernels.predict_into))
    monkeypatch.setattr(kernels, "loss_and_gradient", recorded(kernels.loss_and_gradient))
    return log


def test_evaluation_runs_blas_with_trainings_thread_limit(thread_log):
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((5000, 4)), rng.integers(0, 3, 5000)
    net = MLP([4, 6, 3], output="softmax", seed=0)
    net.predict(X)
    net.predict_proba(X[:10])
    net.score(X, labels)
    net.gradients(X, labels)
    names = [name for name, _, _ in thread_log["in_call"]]
    assert names == ["predict_into"] * 3 + ["loss_and_gradient"]
    for _, limits, blas in thread_log["in_call"]:
        assert limits == [1]
        assert blas in (None, 1)  # None: this BLAS's thread count cannot be read
    assert thread_log["asked"] == [([4, 6, 3], EVAL_BATCH), ([4, 6, 3], 10),
                                   ([4, 6, 3], EVAL_BATCH), ([4, 6, 3], EVAL_BATCH)]


@pytest.mark.parametrize("corrupt, message", [
    ("indices", r"^X is a sparse matrix with column index 99 at row 2, outside range\(6\)$"),
    ("indptr", r"^X is a sparse matrix whose indptr does not describe its 6 rows and 6 "
               r"stored values$"),
])
def test_a_sparse_x_with_a_corrupt_structure_is_refused_naming_x(corrupt, message):
    """SciPy accepts index arrays assigned by hand; the refusal names X, not the kernels'
    ``csr`` argument, and comes before any training or prediction."""
    import scipy.sparse as sp
    X = sp.csr_matrix(np.eye(6, dtype=np.float32))
    if corrupt == "indices":
        X.indices[2] = 99
    else:
        X.indptr[3] = 1
    net = MLP([6, 4, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(kernels.InvalidValueError, match=message):
        net.fit(X, np.arange(6.0), epochs=1)
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(kernels.InvalidValueError, match=message):
        net.predict(X)


@pytest.mark.parametrize("cores", [1, 2])
def test_the_finite_check_finds_the_first_bad_value_in_either_half(monkeypatch, cores):
    """A large array is read as two halves on two threads when a core is free: the index
    found is the first in flat order wherever the NaN and inf fall, as on one thread."""
    from numba_dense.model.data import validation
    monkeypatch.setattr(validation, "TWO_THREAD_ELEMENTS", 1000)
    monkeypatch.setattr(validation, "free_cores", lambda others=None: cores)
    for dtype in (np.float32, np.float64):
        flat = np.zeros(4099, dtype)
        assert validation.first_nonfinite(flat) == -1
        for bad in ([5], [2040], [2047, 2048], [2049], [4098], [3000, 10], [100, 4000]):
            flat = np.zeros(4099, dtype)
            for i, b in enumerate(bad):
                flat[b] = np.nan if i % 2 == 0 else np.inf
            assert validation.first_nonfinite(flat) == min(bad), bad
    X = np.zeros((41, 100), np.float32)
    X[30, 7] = np.inf
    with pytest.raises(ValueError, match="X contains inf at row 30, column 7"):
        validation.check_finite(X, "X")


# ----------------------------------------------------------------------------- X's values
# checked by the first epoch (issue 23: a one-epoch fit of config A within 1.25x its epoch)

def _state(net):
    params, velocity, optimizer, step = net.snapshot()
    return params, velocity, optimizer, step, net.target_scaling, net.history


def _same_state(a, b):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2:] == b[2:]


@pytest.fixture(scope="module")
def streamed_rows():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((203, 6))
    return X, X @ rng.standard_normal(6) + 1.0


def _counted_checks(monkeypatch):
    """The arrays ``check_finite`` reads (their shapes), as a list filled while it runs."""
    from numba_dense.model.data import validation
    seen = []
    real = validation.check_finite

    def counting(arr, *args, **kwargs):
        seen.append(arr.shape)
        return real(arr, *args, **kwargs)
    monkeypatch.setattr(validation, "check_finite", counting)
    return seen


def test_a_streamed_epoch_checks_x_itself_and_other_networks_check_first(monkeypatch,
                                                                         streamed_rows):
    """The one-layer MSE network's epoch is X's check: fit reads X once fewer; a network
    whose epoch does not stream and weighted rows are checked before training."""
    X, y = streamed_rows
    seen = _counted_checks(monkeypatch)
    MLP([6, 1], seed=0).fit(X, y, epochs=1)
    assert (203, 6) not in seen
    MLP([6, 1], seed=0).fit(X, y, epochs=1, validation_fraction=0.2)
    assert (40, 6) in seen and (163, 6) not in seen  # the validation rows, checked first
    for net, kwargs in [(MLP([6, 3, 1], seed=0), {}),
                        (MLP([6, 1], seed=0), dict(sample_weight=np.ones(203)))]:
        seen.clear()
        net.fit(X, y, epochs=1, **kwargs)
        assert (203, 6) in seen


@pytest.mark.parametrize("output, optimizer, dtype", [
    ("identity", "sgd", np.float64), ("relu", "adam", np.float32),
    ("relu", "sgd", np.float64), ("tanh", "adamw", np.float32)])
@pytest.mark.parametrize("bad", [(0, 0, np.nan), (97, 5, np.inf), (202, 2, np.nan),
                                 (202, 0, -np.inf), (180, 1, 1e300)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_a_bad_value_found_by_the_epoch_is_named_and_nothing_changes(
        streamed_rows, output, optimizer, dtype, bad, shuffle):
    """Wherever the NaN or inf lies (the first row, the last row of the last minibatch,
    a ReLU output that may be off for its row, an inf made by the cast to float32), the
    error is the check's own, and the network is as it was: parameters, optimizer state,
    step count, target scaling and history."""
    X0, y = streamed_rows
    X = X0.copy()
    row, col, value = bad
    if value == 1e300 and dtype == np.float64:
        value = np.inf  # finite in float64: the case is the cast's
    X[row, col] = value
    made = "NaN" if np.isnan(value) else "inf"
    net = MLP([6, 1], output=output, dtype=dtype, seed=1)
    net.fit(X0[:50], y[:50], epochs=1, optimizer=optimizer, lr=1e-3, verbose=False)
    before = _state(net)
    expected = "X contains %s at row %d, column %d%s; only finite values are accepted" % (
        made, row, col, " (after conversion to float32)" if dtype == np.float32 else "")
    with pytest.raises(ValueError) as info:
        net.fit(X, y, epochs=2, optimizer=optimizer, lr=1e-3, batch_size=16, shuffle=shuffle)
    assert _one_line(info.value) == expected
    _same_state(_state(net), before)


def test_bad_validation_rows_and_a_finished_resume_are_still_refused(streamed_rows, tmp_path):
    """Rows no epoch trains on are checked as before: the validation split's (numbered as
    rows of X), and every row when no epoch runs (epochs=0, a resume after the last)."""
    X, y = streamed_rows
    X = X.astype(np.float32)
    X[190, 4] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN at row 190, column 4;"):
        MLP([6, 1], seed=0).fit(X, y, epochs=1, validation_fraction=0.1)
    with pytest.raises(ValueError, match=r"^X contains NaN at row 190, column 4;"):
        MLP([6, 1], seed=0).fit(X, y, epochs=0)
    path = tmp_path / "ck.npz"
    net = MLP([6, 1], seed=0)
    net.fit(X[:150], y[:150], epochs=2, checkpoint=path)
    with pytest.raises(ValueError, match=r"^X contains NaN at row 190, column 4;"):
        net.fit(X, y, epochs=2, checkpoint=path, resume=True)


def test_a_streamed_network_that_diverges_on_finite_rows_still_says_so(streamed_rows):
    X, y = streamed_rows
    from numba_dense.model.training.loop import DivergedError
    with pytest.raises(DivergedError, match="training diverged in epoch 1"):
        MLP([6, 1], seed=0).fit(X * 1e3, y, epochs=3, lr=1e3, standardize_target=False)


@pytest.mark.parametrize("output, value", [("tanh", np.inf), ("identity", np.nan)])
def test_a_ctrl_c_in_the_first_epoch_names_an_unchecked_bad_value(
        streamed_rows, monkeypatch, output, value):
    """Interrupted in the epoch that checks X, the fit names X's bad value and leaves the
    network as it was, as the check before training did: whether the steps met the value
    and went on onto NaN weights (tanh(inf) is 1: a finite cost, a 0 * inf gradient) or
    stopped on its NaN cost (the identity), with the trained rows' steps taken."""
    from numba_dense.model.training import loop
    X, y = streamed_rows
    X = X.copy()
    X[150, 1] = value
    real = loop.took_steps

    def interrupted(net, optimizer):
        real(net, optimizer)
        raise KeyboardInterrupt
    net = MLP([6, 1], output=output, seed=0)
    before = _state(net)
    monkeypatch.setattr(loop, "took_steps", interrupted)
    try:
        net.fit(X, y, epochs=1, shuffle=False, batch_size=8)
    except BaseException as exc:  # a TrainingInterrupted would stop pytest itself
        error = exc
    assert isinstance(error, ValueError), repr(error)
    assert str(error).startswith("X contains %s at row 150, column 1 (after conversion"
                                 % ("inf" if np.isinf(value) else "NaN"))
    _same_state(_state(net), before)


@pytest.mark.parametrize("changes, extra", [
    (dict(validation_fraction=0.1), [(200, 2)]),            # a bad validation row too
    (dict(y_row=60), []),                                   # a NaN in y
    (dict(validation_data=(np.zeros((3, 5)), np.zeros(3))), []),
    (dict(early_stopping=2), []),                           # no validation rows
])
def test_x_s_first_bad_value_is_named_before_any_later_error(streamed_rows, changes, extra):
    """X's values are left to the epoch, but an error found after X (y, the validation
    rows, options) still comes after X's own: the first bad value of X is named, as when
    X was checked before everything else."""
    X, y = streamed_rows
    X, y = X.copy(), y.copy()
    X[5, 1] = np.nan
    for row, col in extra:
        X[row, col] = np.inf
    changes = dict(changes)
    if "y_row" in changes:
        y[changes.pop("y_row")] = np.nan
    with pytest.raises(ValueError, match="^X contains NaN at row 5, column 1"):
        MLP([6, 1], seed=0).fit(X, y, epochs=1, **changes)


def test_a_network_too_large_for_memory_is_one_line_naming_its_sizes(monkeypatch):
    """np.zeros may be granted memory it has not touched; the first layer's random draw is
    then where a network too large meets the limit (MLP([4, 10**9, 1]) on 24 GiB): the
    same one-line error as when the parameters themselves cannot be allocated."""
    def no_memory(self, seed=None):
        raise MemoryError("Unable to allocate 29.8 GiB for an array")
    monkeypatch.setattr(MLP, "initialize", no_memory)
    with pytest.raises(MemoryError, match=r"^layer_sizes \[4, 1000, 1\] make 6,001 parameters:"
                                          r" .* more than this machine can give; use narrower"):
        MLP([4, 1000, 1])
    monkeypatch.undo()
    with pytest.raises(MemoryError, match=r"layer_sizes \[4, 1000000000000, 1\] make "):
        MLP([4, 10 ** 12, 1])  # np.zeros refuses at once


def test_load_errors_are_numba_dense_errors(tmp_path):
    """A missing, text or truncated model file: one line, a NumbaDenseError as well as the
    built-in FileNotFoundError or ValueError."""
    import numba_dense
    from numba_dense.model import load_model
    (tmp_path / "text.npz").write_text("not a model")
    net = MLP([2, 3, 1], seed=0)
    net.save(tmp_path / "whole.npz")
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:len(data) // 2])
    for name, builtin in (("missing.npz", FileNotFoundError), ("text.npz", ValueError),
                          ("cut.npz", ValueError)):
        for load in (MLP.load, load_model):
            with pytest.raises(numba_dense.NumbaDenseError) as caught:
                load(tmp_path / name)
            assert isinstance(caught.value, builtin)
            assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize("changed", [dict(validation_seed=4), dict(validation_fraction=0.3),
                                     dict(validation_seed=None)])
def test_resume_refuses_other_validation_rows(tmp_path, changed):
    """Other held-out rows on resume would train on rows the first part validated on."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    ckpt = tmp_path / "ck.npz"
    first = dict(epochs=2, seed=1, validation_fraction=0.2, validation_seed=3,
                 checkpoint=ckpt)
    MLP([3, 4, 1], seed=0).fit(X, X[:, 0], **first)
    with pytest.raises(ValueError, match="was written with other settings: validation="):
        MLP([3, 4, 1], seed=0).fit(X, X[:, 0], **{**first, "epochs": 4, "resume": True,
                                                  **changed})
    MLP([3, 4, 1], seed=0).fit(X, X[:, 0], **{**first, "epochs": 4, "resume": True})
