"""The MLP: construction, training, evaluation, files, and every bad input."""

import numpy as np
import pytest

from numba_dense.model import MLP, DivergedError, History
from numba_dense.kernels.errors import InvalidTypeError


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3
    return X, y


def test_params_is_one_flat_buffer_with_views():
    net = MLP([3, 5, 2], seed=0)
    assert net.params.shape == (3 * 5 + 5 + 5 * 2 + 2,)
    assert net.weights[0].shape == (5, 3) and net.biases[1].shape == (2,)
    for view in net.weights + net.biases:
        assert np.shares_memory(view, net.params)
    net.params[...] = 0
    assert (net.weights[1] == 0).all()
    assert net.grads.shape == net.params.shape


def test_he_initialisation_scale():
    net = MLP([1000, 500, 1], seed=0, dtype=np.float64)
    assert net.weights[0].std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02)
    assert (net.biases[0] == 0).all()


def test_fit_reduces_loss_and_reports_history(data):
    X, y = data
    net = MLP([4, 16, 1], seed=0)
    before = net.cost(X, y)
    history = net.fit(X, y, epochs=20, batch_size=16, lr=0.02, seed=0,
                      validation_data=(X[:50], y[:50]), standardize_target=False)
    assert isinstance(history, History)
    assert len(history.loss) == len(history.val_loss) == len(history.seconds) == 20
    assert history.loss[-1] < history.loss[0] < before
    assert net.cost(X, y) < 0.01 * before


def test_same_seed_gives_bit_identical_parameters(data):
    X, y = data
    runs = []
    for _ in range(2):
        net = MLP([4, 8, 8, 1], seed=5)
        net.fit(X, y, epochs=3, batch_size=7, lr=0.01, momentum=0.9, seed=9)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = MLP([4, 8, 8, 1], seed=5)
    other.fit(X, y, epochs=3, batch_size=7, lr=0.01, momentum=0.9, seed=10)
    assert not np.array_equal(runs[0], other.params)


def test_inputs_of_other_dtypes_are_converted(data):
    X, y = data
    net = MLP([4, 1], dtype=np.float32, seed=0)
    net.fit(X.astype(np.float64), y.astype(np.int64), epochs=1)
    assert net.predict(np.ones((2, 4), dtype=np.int32)).dtype == np.float32
    assert net.predict([[1, 2, 3, 4]]).shape == (1, 1)


def test_one_dimensional_y_for_a_single_output(data):
    X, y = data
    net = MLP([4, 1], dtype=np.float64, seed=0)
    assert net.cost(X, y) == pytest.approx(net.cost(X, y.reshape(-1, 1)))


def test_loss_is_the_mse_cost_of_math_md(data):
    X, y = data
    net = MLP([4, 3, 1], dtype=np.float64, seed=0)
    pred = net.predict(X)[:, 0]
    assert net.cost(X, y) == pytest.approx(np.sum((y - pred) ** 2) / (2 * len(y)), rel=1e-12)


def test_momentum_and_weight_decay_train(data):
    X, y = data
    net = MLP([4, 8, 1], seed=1)
    history = net.fit(X, y, epochs=5, lr=0.01, momentum=0.9, weight_decay=1e-4, seed=0)
    assert history.loss[-1] < history.loss[0]
    assert np.abs(net.velocity).sum() > 0


def test_batch_larger_than_data_and_zero_epochs(data):
    X, y = data
    net = MLP([4, 1], seed=0)
    before = net.params.copy()
    assert net.fit(X, y, epochs=0).loss == []
    np.testing.assert_array_equal(net.params, before)
    net.fit(X[:5], y[:5], epochs=1, batch_size=1000)
    assert not np.array_equal(net.params, before)


def test_divergence_names_the_epoch_and_keeps_finite_parameters(data):
    X, y = data
    net = MLP([4, 8, 1], seed=0)
    with pytest.raises(DivergedError, match=r"diverged in epoch \d+") as info:
        net.fit(X * 100, y * 100, epochs=5, lr=10.0, seed=0)
    assert info.value.epoch >= 1
    assert np.isfinite(net.params).all()


def test_verbose_prints_one_line_per_epoch(data, capsys):
    X, y = data
    MLP([4, 1], seed=0).fit(X, y, epochs=2, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[2].startswith("epoch 2/2  loss")
    assert lines[0].startswith("targets standardized (mean 0.3")


# ----------------------------------------------------------------------------- bad input

BAD_FIT = [
    (dict(X=np.zeros((10, 5))), ValueError, "X has 5 features (columns) but the network has 4"),
    (dict(y=np.zeros(9)), ValueError, "y has 9 rows but X has 10"),
    (dict(y=np.zeros((10, 2))), ValueError, "y has 2 outputs (columns) but the network has 1"),
    (dict(X=np.zeros(10)), ValueError, "X must be a 2-D array"),
    (dict(X=np.zeros((0, 4)), y=np.zeros(0)), ValueError, "X is empty"),
    (dict(X=np.array([["a"] * 4] * 10)), InvalidTypeError,
     "X must be a numeric array, got dtype <U1"),
    (dict(X=np.array([[None] * 4] * 10)), InvalidTypeError,
     "X must be a numeric array, got dtype object"),
    (dict(X=np.where(np.eye(10, 4) > 0, np.nan, 0)), ValueError,
     "X contains NaN at row 0, column 0"),
    (dict(y=np.r_[np.zeros(9), np.inf]), ValueError, "y contains inf at row 9, column 0"),
    (dict(X=np.full((10, 4), 1e300)), ValueError,
     "X contains inf at row 0, column 0 (after conversion"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(batch_size=2.5), TypeError, "batch_size must be an integer, got 2.5"),
    (dict(lr=0.0), ValueError, "lr must be > 0.0, got 0.0"),
    (dict(lr=-1), ValueError, "lr must be > 0.0, got -1.0"),
    (dict(lr=float("nan")), ValueError, "lr must be > 0.0, got nan"),
    (dict(epochs=-1), ValueError, "epochs must be >= 0, got -1"),
    (dict(momentum=1.0), ValueError, "momentum must be >= 0.0 and < 1.0, got 1.0"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay must be >= 0.0, got -0.1"),
    (dict(validation_data=np.zeros(3)), TypeError, "validation_data must be a pair"),
    (dict(validation_data=(np.zeros((3, 5)), np.zeros(3))), ValueError,
     "validation X has 5 features (columns) but the network has 4"),
]


@pytest.mark.parametrize("changes, error, message", BAD_FIT)
def test_bad_fit_input_is_refused_before_anything_changes(changes, error, message):
    net = MLP([4, 1], seed=0)
    args = dict(X=np.zeros((10, 4)), y=np.zeros(10), epochs=1)
    args.update(changes)
    X, y = args.pop("X"), args.pop("y")
    before = (net.params.copy(), net.velocity.copy())
    with pytest.raises(error) as info:
        net.fit(X, y, **args)
    assert message in str(info.value)
    np.testing.assert_array_equal(net.params, before[0])
    np.testing.assert_array_equal(net.velocity, before[1])


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(layer_sizes=[4]), ValueError, "layer_sizes must list at least 2 widths"),
    (dict(layer_sizes=[4, 0]), ValueError, "layer_sizes[1] must be >= 1, got 0"),
    (dict(layer_sizes=[4, 2.0]), TypeError, "layer_sizes[1] must be an integer"),
    (dict(layer_sizes=[4, 1], hidden="mish"), ValueError,
     "hidden must be one of 'identity', 'relu', 'tanh', 'sigmoid', 'leaky_relu', 'gelu', "
     "'silu', got 'mish'"),
    (dict(layer_sizes=[4, 1], output="gelu"), ValueError,
     "output='gelu' cannot be trained: its derivative needs the layer's pre-activation Z"),
    (dict(layer_sizes=[4, 3], output="softmax", loss="mse"),
     ValueError, "output='softmax' trains with loss='cross_entropy'"),
    (dict(layer_sizes=[4, 1], output="softmax"), ValueError,
     "output='softmax' needs at least 2 outputs"),
    (dict(layer_sizes=[4, 2], loss="binary_cross_entropy"),
     ValueError, "loss='binary_cross_entropy' needs output='sigmoid'"),
    (dict(layer_sizes=[4, 2], loss="hinge"), ValueError,
     "loss must be one of 'mse', 'cross_entropy', 'binary_cross_entropy', 'poisson', "
     "'huber', 'absolute_error', 'quantile', got 'hinge'"),
    (dict(layer_sizes=[4, 1], output="softplus"), ValueError, "output must be one of"),
    (dict(layer_sizes=[4, 1], dtype=np.int32), TypeError,
     "dtype must be float32 or float64, got int32"),
])
def test_bad_construction_is_refused(kwargs, error, message):
    with pytest.raises(error) as info:
        MLP(**kwargs)
    assert message in str(info.value)


def test_predict_and_loss_check_their_input():
    net = MLP([4, 2], seed=0)
    with pytest.raises(ValueError, match="X has 3 features"):
        net.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="y is 1-D but the network has 2 outputs"):
        net.cost(np.zeros((2, 4)), np.zeros(2))


# ----------------------------------------------------------------------------- files

def test_save_load_is_bit_exact(tmp_path, dtype):
    net = MLP([3, 7, 2], hidden="relu", output="relu", dtype=dtype, seed=4)
    net.fit(np.random.default_rng(0).standard_normal((20, 3)), np.ones((20, 2)), epochs=1,
            momentum=0.5)
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = MLP.load(path)
    assert (loaded.layer_sizes, loaded.hidden, loaded.output, loaded.dtype) == \
        (net.layer_sizes, net.hidden, net.output, net.dtype)
    np.testing.assert_array_equal(loaded.params, net.params)
    np.testing.assert_array_equal(loaded.velocity, net.velocity)
    assert loaded.params.dtype == dtype
    X = np.random.default_rng(1).standard_normal((5, 3))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_save_writes_the_exact_path_and_no_temporary(tmp_path):
    MLP([2, 1], seed=0).save(tmp_path / "model.bin")
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        MLP.load(tmp_path / "absent.npz")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04garbage"])
def test_load_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="is not a valid numba-dense model file"):
        MLP.load(path)


def test_load_refuses_inconsistent_arrays_and_pickles(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, format="numba-dense-mlp", version=1, layer_sizes=[3, 2], hidden="relu",
             output="identity", dtype="float32", params=np.zeros(5), velocity=np.zeros(5))
    with pytest.raises(ValueError,
                       match=r"params has shape \(5,\) but layer_sizes \[3, 2\] need \(8,\)"):
        MLP.load(path)
    np.savez(path, params=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a valid numba-dense model file"):
        MLP.load(path)


def test_set_params_keeps_a_trained_network_unless_an_argument_changes():
    """An MLP's arguments are its shape and initialization: set_params with their current
    values keeps the trained network, a changed one makes a new untrained network, and a
    bad one raises with the network unchanged."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 3))
    y = X.sum(axis=1)
    net = MLP([3, 8, 1], seed=0)
    net.fit(X, y, epochs=3)
    trained = net.params.copy()
    assert net.set_params(hidden="relu", layer_sizes=[3, 8, 1], seed=0) is net
    np.testing.assert_array_equal(net.params, trained)
    # the same values in other types
    net.set_params(layer_sizes=np.array([3, 8, 1]), dtype="float32", seed=np.int64(0))
    np.testing.assert_array_equal(net.params, trained)
    assert net.target_scaling is not None and net.history is not None
    with pytest.raises(ValueError, match="hidden must be one of"):
        net.set_params(hidden="bogus")
    np.testing.assert_array_equal(net.params, trained)
    net.set_params(seed=5)
    np.testing.assert_array_equal(net.params, MLP([3, 8, 1], seed=5).params)
    assert net.target_scaling is None and net.history is None


def test_fit_signature_lists_the_weights_and_every_option():
    import inspect
    from numba_dense.model import Ensemble
    from numba_dense.model.training import options as fit_options
    for cls in (MLP, Ensemble):
        params = inspect.signature(cls.fit).parameters
        assert list(params)[:5] == ["self", "X", "y", "sample_weight", "class_weight"]
        assert set(o.name for o in fit_options.FIT_OPTIONS) <= set(params)


def test_scikit_learn_meta_estimators_take_an_mlp():
    """MLP has get_params/set_params and scikit-learn's tags: GridSearchCV and
    cross_val_score run it (R^2 for a regression, accuracy and stratified folds for a
    classifier)."""
    pytest.importorskip("sklearn")
    from sklearn.base import is_classifier
    from sklearn.model_selection import GridSearchCV, cross_val_score
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 4))
    search = GridSearchCV(MLP([4, 8, 1]), {"seed": [0, 1]}, cv=3).fit(X, X.sum(axis=1))
    assert search.best_params_["seed"] in (0, 1) and np.isfinite(search.best_score_)
    classifier = MLP([4, 8, 2], output="softmax")
    assert is_classifier(classifier) and not is_classifier(MLP([4, 8, 1]))
    scores = cross_val_score(classifier, X, (X[:, 0] > 0).astype(int), cv=3)
    assert ((0 <= scores) & (scores <= 1)).all()
    # the probability scorers read classes_ and predict_proba
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1)
    auc = GridSearchCV(MLP([4, 8, 3], output="softmax"), {"seed": [0]}, cv=3,
                       scoring="roc_auc_ovr", error_score="raise").fit(X, labels)
    assert 0 <= auc.best_score_ <= 1
    np.testing.assert_array_equal(MLP([4, 8, 1], output="sigmoid").classes_, [0, 1])
    assert not hasattr(MLP([4, 8, 1]), "classes_")


def test_unusable_output_paths_are_numba_dense_errors_and_the_os_errors(tmp_path):
    """The output checks raised bare IsADirectoryError and PermissionError, which
    ``except numba_dense.NumbaDenseError`` (the documented catch-all) missed."""
    import os

    from numba_dense import FolderGivenError, NotWritableError, NumbaDenseError
    net = MLP([2, 1], seed=0)
    with pytest.raises(FolderGivenError, match="is a folder; give a file name") as info:
        net.save(tmp_path)
    assert isinstance(info.value, NumbaDenseError) and isinstance(info.value, IsADirectoryError)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anywhere
            pytest.skip("this user may write into a read-only folder")
        with pytest.raises(NotWritableError, match="is not writable") as info:
            net.save(locked / "net.npz")
        assert isinstance(info.value, PermissionError)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []
