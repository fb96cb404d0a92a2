"""Issue 25's losses (Huber, absolute error, quantile) and activations (GELU, SiLU): each
kernel against its NumPy twin in float32 and float64, central finite differences in
float64, and the networks and estimators that train with them.

Every kernel is compiled once per dtype (fixed shapes, no hypothesis): the whole module
stays within a minute including Numba's compilation."""

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.kernels.errors import InvalidValueError

from .conftest import assert_close

LOSS_KERNELS = [("huber_loss", ()), ("absolute_error_loss", ()), ("quantile_loss", (0.9,)),
                ("quantile_loss", (0.25,))]


def _pred_and_targets(dtype, shape=(9, 3), seed=3):
    rng = np.random.default_rng(seed)
    # errors of every size: inside and beyond Huber's delta of 1, of both signs
    pred = (rng.standard_normal(shape) * 2).astype(dtype)
    return pred, rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("name, args", LOSS_KERNELS)
def test_losses_match_their_numpy_twins(name, args, dtype):
    """The row functions, in both dtypes, through the two compiled sweeps every public cost
    kernel shares (``_mean_cost``, ``_mean_gradient``: one compilation per dtype for all
    the losses, where each public kernel is one more); the public kernels themselves in
    float64 (here and in the central differences below)."""
    from numba_dense.kernels.loss import _mean_cost, _mean_gradient
    pred, y = _pred_and_targets(dtype)
    code = {"huber_loss": kernels.HUBER, "absolute_error_loss": kernels.ABSOLUTE_ERROR,
            "quantile_loss": kernels.quantile_code(args[0]) if args else None}[name]
    rel = 1e-6 if dtype == np.float32 else 1e-12
    expected_cost = getattr(ref, name)(pred, y, *args)
    assert _mean_cost(pred, y, code) == pytest.approx(expected_cost, rel=rel)
    out, expected = np.empty_like(pred), np.empty_like(pred)
    _mean_gradient(pred, y, out, code)
    getattr(ref, name + "_grad")(pred, y, *args, expected)
    assert_close(out, expected, dtype)
    if dtype == np.float64:
        assert getattr(kernels, name)(pred, y, *args) == pytest.approx(expected_cost, rel=rel)
        getattr(kernels, name + "_grad")(pred, y, *args, out)
        assert_close(out, expected, dtype)


def test_losses_closed_forms():
    pred = np.array([[0.5, 3.0, -2.0]])
    y = np.zeros((1, 3))
    assert kernels.huber_loss(pred, y) == pytest.approx(0.125 + 2.5 + 1.5)
    assert kernels.absolute_error_loss(pred, y) == pytest.approx(5.5)
    # pinball at q = 0.9: over-predictions cost 0.1 each unit, under-predictions 0.9
    assert kernels.quantile_loss(pred, y, 0.9) == pytest.approx(0.1 * 3.5 + 0.9 * 2.0)
    # at q = 0.5 the pinball loss is half the absolute error
    assert kernels.quantile_loss(pred, y, 0.5) == pytest.approx(2.75)


@pytest.mark.parametrize("name, args", LOSS_KERNELS)
def test_loss_gradients_are_central_differences(name, args):
    pred, y = _pred_and_targets(np.float64, (6, 4), seed=8)
    g = np.empty_like(pred)
    getattr(kernels, name + "_grad")(pred, y, *args, g)
    h = 1e-6
    for idx in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[idx] += h
        down[idx] -= h
        fd = (getattr(kernels, name)(up, y, *args)
              - getattr(kernels, name)(down, y, *args)) / (2 * h)
        assert fd == pytest.approx(g[idx], rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.5, 0.12345, float("nan")])
def test_quantile_level_is_checked(quantile):
    pred, y = _pred_and_targets(np.float64)
    with pytest.raises(InvalidValueError, match="quantile must be"):
        kernels.quantile_loss(pred, y, quantile)
    with pytest.raises(InvalidValueError, match="quantile must be"):
        kernels.quantile_code(quantile)


def test_quantile_code_carries_the_level():
    assert kernels.quantile_code(0.9) == kernels.QUANTILE + 8999
    assert kernels.network([2, 1], [0], "quantile", quantile=0.5).loss == kernels.QUANTILE + 4999
    with pytest.raises(InvalidValueError, match="needs quantile="):
        kernels.network([2, 1], [0], "quantile")
    with pytest.raises(InvalidValueError, match="level of loss='quantile'"):
        kernels.network([2, 1], [0], "huber", quantile=0.5)


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("act", ["gelu", "silu"])
def test_activations_match_their_numpy_twins(act, dtype):
    code = kernels.ACTIVATIONS[act]
    Z, G = _pred_and_targets(dtype, (7, 5), seed=4)
    out, expected = Z.copy(), Z.copy()
    kernels.activation_forward(out, code)
    ref.activation_forward(expected, code)
    assert_close(out, expected, dtype)
    g, g_expected = G.copy(), G.copy()
    kernels.activation_backward_z(Z, g, code)
    ref.activation_backward_z(Z, g_expected, code)
    assert_close(g, g_expected, dtype)


def test_gelu_and_silu_closed_forms():
    z = np.array([[-1.0, 0.0, 2.0]])
    gelu, silu = z.copy(), z.copy()
    kernels.activation_forward(gelu, kernels.GELU)
    kernels.activation_forward(silu, kernels.SILU)
    # PyTorch: nn.GELU()(tensor([-1., 0., 2.])) = [-0.1587, 0.0000, 1.9545]
    np.testing.assert_allclose(gelu, [[-0.15865525393145707, 0.0, 1.9544997361036416]])
    np.testing.assert_allclose(silu, z / (1 + np.exp(-z)))


@pytest.mark.parametrize("act", ["gelu", "silu", "tanh", "relu", "sigmoid"])
def test_activation_derivatives_are_central_differences(act):
    code = kernels.ACTIVATIONS[act]
    Z = np.linspace(-4, 4, 33).reshape(3, 11) + 0.013  # off ReLU's kink
    g = np.ones_like(Z)
    kernels.activation_backward_z(Z, g, code)
    h = 1e-6
    up, down = Z + h, Z - h
    kernels.activation_forward(up, code)
    kernels.activation_forward(down, code)
    np.testing.assert_allclose(g, (up - down) / (2 * h), rtol=1e-7, atol=1e-8)


def test_output_only_backward_refuses_gelu_and_silu():
    A, G = _pred_and_targets(np.float64)
    for code in (kernels.GELU, kernels.SILU):
        with pytest.raises(InvalidValueError, match="needs Z"):
            kernels.activation_backward(A, G, code)


# ----------------------------------------------------------------------------- networks

@pytest.mark.parametrize("loss, quantile, hidden", [
    ("huber", None, ["tanh", "relu"]),
    ("absolute_error", None, "tanh"),
    ("quantile", 0.8, ["relu", "sigmoid"]),
    ("mse", None, ["gelu", "silu"]),  # hidden layers that keep their Z for the backward pass
    ("huber", None, ["silu", "gelu"]),
])
def test_network_gradients_of_the_new_losses_are_central_differences(loss, quantile, hidden):
    from numba_dense.model import MLP
    net = MLP([3, 5, 4, 2], hidden=hidden, loss=loss, quantile=quantile, dtype=np.float64,
              seed=11)
    rng = np.random.default_rng(5)
    for b in net.biases:
        b[...] = rng.uniform(0.05, 0.5, b.shape)
    X = rng.standard_normal((13, 3))
    # targets away from the outputs (no error sits on a kink) and some beyond Huber's delta
    y = net.predict(X) + rng.choice([-1, 1], (13, 2)) * rng.uniform(0.2, 3.0, (13, 2))
    analytic = net.gradients(X, y)
    numeric = np.empty_like(net.params)
    h = 1e-6
    for k in range(net.params.size):
        saved = net.params[k]
        net.params[k] = saved + h
        up = net.cost(X, y)
        net.params[k] = saved - h
        down = net.cost(X, y)
        net.params[k] = saved
        numeric[k] = (up - down) / (2 * h)
    scale = np.abs(numeric).max()
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * scale)
    assert net.acts.tolist()[:2] == [kernels.ACTIVATIONS[h] for h in (
        hidden if isinstance(hidden, list) else [hidden] * 2)]


def test_per_layer_activations_and_quantile_survive_save_and_load(tmp_path):
    from numba_dense.model import MLP
    net = MLP([3, 4, 4, 1], hidden=["relu", "tanh"], loss="quantile", quantile=0.75,
              dtype=np.float64, seed=0)
    net.save(tmp_path / "net.npz")
    back = MLP.load(tmp_path / "net.npz")
    assert (back.hidden, back.loss, back.quantile) == (["relu", "tanh"], "quantile", 0.75)
    assert back.loss_code == net.loss_code == kernels.quantile_code(0.75)


@pytest.mark.parametrize("bad, message", [
    (dict(hidden=["relu"]), "one activation per hidden layer"),
    (dict(output="silu"), "output='silu' cannot be trained"),
    (dict(loss="quantile"), "needs quantile="),
    (dict(loss="huber", quantile=0.5), "level of loss='quantile'"),
    (dict(output="softmax", loss="huber"), "needs output='identity'"),
])
def test_mlp_refuses(bad, message):
    from numba_dense.model import MLP
    with pytest.raises(InvalidValueError, match=message):
        MLP([3, 4, 4, 2], **bad)


# ----------------------------------------------------------------------------- class weights

def _classes(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.standard_normal(n) > 0.8).astype(int)  # about 1 in 4 positive
    y[X[:, 1] > 1.2] = 2
    return X, y


def test_mlp_class_weight_equals_the_sample_weight_it_stands_for():
    from numba_dense.model import MLP
    X, y = _classes()
    fits = []
    for weights in [dict(class_weight={0: 1.0, 1: 3.0, 2: 0.5}),
                    dict(sample_weight=np.array([1.0, 3.0, 0.5])[y])]:
        net = MLP([4, 6, 3], output="softmax", seed=1)
        net.fit(X, y, epochs=2, batch_size=16, lr=0.05, seed=2, **weights)
        fits.append(net.params.copy())
    np.testing.assert_array_equal(fits[0], fits[1])
    with pytest.raises(InvalidValueError, match="applies to a classifier"):
        MLP([4, 1]).fit(X, y.astype(float), class_weight="balanced")


def test_balanced_class_weight_is_scikit_learns():
    from sklearn.utils.class_weight import compute_sample_weight
    from numba_dense.model.data.inputs import class_weights
    _, y = _classes()
    np.testing.assert_allclose(class_weights(y, "balanced"),
                               compute_sample_weight("balanced", y), rtol=1e-15)
    np.testing.assert_allclose(class_weights(y, {1: 2.0}),
                               compute_sample_weight({1: 2.0}, y), rtol=1e-15)


def test_classifier_class_weight_equals_sample_weight_and_balanced():
    from sklearn.utils.class_weight import compute_sample_weight
    from numba_dense import MLPClassifier
    X, y = _classes()
    labels = np.array(["a", "b", "c"])[y]
    kwargs = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, batch_size=16)
    by_class = MLPClassifier(class_weight="balanced", **kwargs).fit(X, labels)
    by_row = MLPClassifier(**kwargs).fit(X, labels,
                                         sample_weight=compute_sample_weight("balanced", y))
    for a, b in zip(by_class.coefs_, by_row.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidValueError, match="not supported for partial_fit"):
        MLPClassifier(class_weight="balanced", **kwargs).partial_fit(X, labels,
                                                                     classes=["a", "b", "c"])
    with pytest.raises(InvalidValueError, match="class_weight must be"):
        MLPClassifier(class_weight="equal", **kwargs).fit(X, labels)


@pytest.mark.filterwarnings("ignore::UserWarning")  # lbfgs's ConvergenceWarning
def test_regressor_robust_losses_and_per_layer_activation():
    from numba_dense import MLPRegressor
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3))
    y = X[:, 0] + 0.3 * rng.standard_normal(300)
    kwargs = dict(hidden_layer_sizes=(8, 4), activation=["relu", "tanh"], solver="lbfgs",
                  random_state=0, max_iter=200)
    upper = MLPRegressor(loss="quantile", quantile=0.9, **kwargs).fit(X, y)
    assert upper._net.hidden == ["relu", "tanh"] and upper._net.quantile == 0.9
    assert 0.8 < np.mean(y <= upper.predict(X)) < 0.97
    assert MLPRegressor(loss="huber", **kwargs).fit(X, y).score(X, y) > 0.5
    with pytest.raises(InvalidValueError, match="level of loss='quantile'"):
        MLPRegressor(quantile=0.5).fit(X, y)
    with pytest.raises(InvalidValueError, match="one activation per hidden layer"):
        MLPRegressor(hidden_layer_sizes=(3,), activation=["relu", "tanh"]).fit(X, y)


def test_the_estimators_take_gelu_silu_and_leaky_relu():
    """The hidden activations scikit-learn lacks, by numba-dense's names, alone and per
    layer; an unknown name is still refused in scikit-learn's words."""
    from numba_dense import MLPClassifier, MLPRegressor
    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 4))
    y = np.tanh(X[:, 0] - X[:, 1]) + 0.1 * rng.standard_normal(200)
    for activation in ("gelu", "silu", "leaky_relu", ["gelu", "silu"]):
        sizes = (16, 8) if isinstance(activation, list) else (16,)
        reg = MLPRegressor(hidden_layer_sizes=sizes, activation=activation, solver="lbfgs",
                           random_state=0, max_iter=300).fit(X, y)
        assert reg._net.hidden == activation
        assert reg.score(X, y) > 0.8, activation
    clf = MLPClassifier((16,), activation="gelu", solver="lbfgs", random_state=0,
                        max_iter=200).fit(X, y > 0)
    assert clf.score(X, y > 0) > 0.9
    with pytest.raises(InvalidValueError, match="The 'activation' parameter must be one of"):
        MLPRegressor(activation="swish").fit(X, y)


# ----------------------------------------------------------------------------- real data

def test_robust_losses_with_default_options_on_diabetes_with_outliers():
    """scikit-learn's diabetes table (442 rows, 10 features) with a tenth of the training
    targets moved by 2000 (~25 standard deviations): Huber and absolute error, trained with
    default options, keep a positive R^2 on the clean test rows where the MSE's collapses,
    and the 0.9 quantile network leaves about 90% of the clean rows below its
    predictions."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from numba_dense.model import MLP
    X, y = load_diabetes(return_X_y=True)
    X = ((X - X.mean(axis=0)) / X.std(axis=0)).astype(np.float32)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0)
    rng = np.random.default_rng(0)
    y_bad = y_tr.copy()
    hit = rng.choice(len(y_bad), len(y_bad) // 10, replace=False)
    y_bad[hit] += rng.choice([-1, 1], len(hit)) * 2000  # ~25 standard deviations
    scores = {}
    for loss, q in [("mse", None), ("huber", None), ("absolute_error", None)]:
        net = MLP([10, 32, 1], loss=loss, quantile=q, seed=0)
        net.fit(X_tr, y_bad, seed=0)
        scores[loss] = net.score(X_te, y_te)
    # (measured: MSE -7.6, Huber 0.28, absolute error 0.26; 0.33 for the MSE on clean
    # targets: the robust losses' median/MAD target scaling keeps the outliers' units out)
    assert scores["huber"] > 0.2 and scores["absolute_error"] > 0.2, scores
    assert scores["mse"] < 0, scores
    net = MLP([10, 32, 1], loss="quantile", quantile=0.9, seed=0)
    net.fit(X_tr, y_tr, seed=0)
    assert 0.8 <= np.mean(y_te <= net.predict(X_te).ravel()) <= 0.97


# ----------------------------------------------------------------------------- command line

def test_command_line_weight_column_class_weight_loss_and_per_layer_hidden(tmp_path, capsys):
    """--weight-col equals passing that column as sample_weight (and is no input);
    --class-weight balanced, --loss quantile --quantile and --hidden relu,tanh reach MLP."""
    from numba_dense.model import MLP
    from numba_dense.model.interfaces.cli import main
    rng = np.random.default_rng(0)
    X = np.round(rng.standard_normal((200, 2)), 6)  # as the file holds them
    w = np.round(rng.uniform(0, 2, 200), 6)
    y = np.round(2 * X[:, 0] - X[:, 1], 6)
    with open(tmp_path / "t.csv", "w") as f:
        f.write("a,b,w,y,cls\n")
        for i in range(200):
            target = "" if i == 7 else "%.6f" % y[i]  # a row without a target: no weight
            f.write("%.6f,%.6f,%.6f,%s,%s\n" % (X[i, 0], X[i, 1], w[i], target,
                                                "p" if X[i, 0] > 1 else "n"))
    steps = ["--optimizer", "sgd", "--lr", "0.05"]
    common = ["--data", str(tmp_path / "t.csv"), "--epochs", "2", "--hidden-sizes", "6,5",
              "--no-shuffle", "--validation-fraction", "0", "--no-scale", *steps]
    assert main(["train", *common, "--target-col", "y", "--drop-cols", "cls", "--weight-col",
                 "w", "--hidden", "relu,tanh", "--loss", "huber",
                 "--save", str(tmp_path / "w.npz")]) == 0
    out = capsys.readouterr().out
    assert "hidden=['relu', 'tanh']" in out and "loss='huber'" in out
    weighted = MLP.load(tmp_path / "w.npz")
    assert weighted.n_inputs == 2  # the weight column is no input
    keep = np.arange(200) != 7
    # --no-scale still centres the numbers: the same inputs, in Python
    X = (X.astype(np.float32) - np.array([c["mean"] for c in weighted.preprocessing.columns],
                                         np.float32))
    net = MLP([2, 6, 5, 1], hidden=["relu", "tanh"], loss="huber", seed=0)
    net.fit(X[keep].astype(np.float32), y[keep], sample_weight=w[keep], epochs=2,
            shuffle=False, seed=None, **_cli_defaults(steps))
    # equal up to the file's float32 rounding; the unweighted fit is far from both
    np.testing.assert_allclose(net.params, weighted.params, rtol=1e-5, atol=1e-5)
    plain = MLP([2, 6, 5, 1], hidden=["relu", "tanh"], loss="huber", seed=0)
    plain.fit(X[keep].astype(np.float32), y[keep], epochs=2, shuffle=False, seed=None,
              **_cli_defaults(steps))
    assert np.abs(plain.params - weighted.params).max() > 1e-3
    assert main(["train", *common, "--target-col", "cls", "--drop-cols", "y",
                 "--class-weight", "balanced"]) == 0
    assert main(["train", *common, "--target-col", "y", "--drop-cols", "cls", "--loss",
                 "quantile", "--quantile", "0.9"]) == 0
    assert "quantile=0.9" in capsys.readouterr().out
    assert main(["train", *common, "--target-col", "y", "--drop-cols", "cls",
                 "--class-weight", "balanced"]) == 2
    assert "--class-weight applies to a classifier" in capsys.readouterr().err


def _cli_defaults(given):
    """The command line's fit options with ``given`` (its defaults differ from MLP's)."""
    from numba_dense.model.interfaces.cli import build_parser
    from numba_dense.model.training import options as fit_options
    args = build_parser().parse_args(["train", *given])
    return fit_options.from_arguments(args)


@pytest.mark.parametrize("order", ["storage", "shuffled"])
def test_epochs_through_gelu_and_silu_layers_match_the_numpy_loop(dtype, order):
    # the compiled epoch keeps Z for these hidden layers (kernels.loop, keep_z_and_activate)
    from numba_dense.kernels import reference as ref
    sizes, acts = [4, 6, 5, 2], [kernels.GELU, kernels.SILU, kernels.IDENTITY]
    network = kernels.network(sizes, acts, "mse")
    rng = np.random.default_rng(8)
    X = rng.standard_normal((37, 4)).astype(dtype)
    Y = rng.standard_normal((37, 2)).astype(dtype)
    params = (rng.standard_normal(int(kernels.param_count(network.sizes))) * 0.5).astype(dtype)
    got, want = params.copy(), params.copy()
    opt_got = kernels.optimizer("adam", got, 0.01)
    opt_want = kernels.optimizer("adam", want, 0.01)
    batches = kernels.batches(8, rng.permutation(37) if order == "shuffled" else None)
    work = np.empty(int(kernels.workspace_size(network.sizes, 8)), dtype)
    for _ in range(2):
        cost = kernels.train_epoch(X, Y, got, np.empty_like(got), network, opt_got, batches,
                                   work)
        expected = ref.train_epoch(X, Y, want, np.empty_like(want), network, opt_want,
                                   batches, None)
        assert cost == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * 10)


def test_mlp_trains_gelu_and_silu_hidden_layers_on_diabetes():
    from sklearn.datasets import load_diabetes
    from numba_dense.model import MLP
    X, y = load_diabetes(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    for hidden in ("gelu", ["silu", "gelu"]):
        net = MLP([10, 32, 16, 1], hidden=hidden, seed=0)
        net.fit(X[:350], y[:350], epochs=60, verbose=False)
        pred = net.predict(X[350:]).ravel()
        r2 = 1 - ((pred - y[350:]) ** 2).sum() / ((y[350:] - y[350:].mean()) ** 2).sum()
        assert r2 > 0.3, (hidden, r2)


def test_class_weight_keys_must_be_classes_and_weights_valid():
    from numba_dense.model import MLP, MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    labels = rng.integers(0, 3, 60)
    net = MLP([3, 6, 3], output="softmax", seed=0)
    before = net.params.copy()
    for bad, message in [({7: 1.0}, r"class_weight names \[7\], not classes of y "
                                    r"\(its classes are \[0, 1, 2\]\)"),
                         ({"a": 1.0}, r"class_weight names \['a'\], not classes of y")]:
        with pytest.raises(InvalidValueError, match=message):
            net.fit(X, labels, epochs=1, class_weight=bad, verbose=False)
    np.testing.assert_array_equal(net.params, before)  # refused before anything changed
    ys = np.array(["a", "b", "c"])[labels]
    with pytest.raises(InvalidValueError, match=r"class_weight\['a'\] must be a finite number "
                                                r">= 0, got -2.0"):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, class_weight={"a": -2.0}).fit(X, ys)
