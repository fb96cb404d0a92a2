"""Dropout on hidden layers: the hashed masks, the compiled epoch against its NumPy twin and
against central finite differences, and dropout through MLP.fit, the estimators, checkpoints
and the command line."""

import numpy as np
import pytest
import scipy.sparse as sp

from numba_dense import kernels
from numba_dense.kernels import reference
from numba_dense.kernels.masks import dropout_mask
from numba_dense.model import MLP, MLPClassifier, MLPRegressor
from numba_dense.model.interfaces.cli import main

from .conftest import assert_close

ACTS = {"relu": kernels.RELU, "tanh": kernels.TANH, "sigmoid": kernels.SIGMOID,
        "gelu": kernels.GELU, "leaky_relu": kernels.LEAKY_RELU}


@pytest.mark.parametrize("seed,step,layer,m,n,rate", [
    (0, 0, 0, 5, 7, 0.5), (-3, 123456789, 2, 33, 17, 0.1), (2 ** 62, 5, 1, 4, 4, 0.999),
    (7, 2 ** 40, 0, 1, 1, 0.0), (1, 1, 9, 64, 32, 0.25)])
def test_the_compiled_mask_is_the_twins_bit_for_bit(seed, step, layer, m, n, rate):
    np.testing.assert_array_equal(dropout_mask(seed, step, layer, m, n, rate),
                                  reference.dropout_mask(seed, step, layer, m, n, rate))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_masks_drop_the_rate_and_differ_by_step_layer_and_seed(rate):
    masks = [dropout_mask(s, t, l, 200, 500, rate) for s, t, l in
             [(1, 0, 0), (1, 1, 0), (1, 0, 1), (2, 0, 0)]]
    n = masks[0].size
    for mask in masks:  # within 5 standard deviations of a binomial's mean
        assert abs(mask.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    for other in masks[1:]:  # agreement of independent masks: rate^2 + (1 - rate)^2
        agree = (masks[0] == other).mean()
        assert abs(agree - (rate ** 2 + (1 - rate) ** 2)) < 0.02
    assert not dropout_mask(1, 0, 0, 50, 50, 0.0).any()


def _epoch_args(rng, dtype, acts, n=40, sizes=(6, 9, 7, 2), optimizer="adam"):
    sizes = np.array(sizes)
    net = kernels.network(sizes, [ACTS[a] for a in acts] + [kernels.IDENTITY], "mse")
    P = int(kernels.param_count(sizes))
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    Y = rng.standard_normal((n, sizes[-1])).astype(dtype)
    params = (rng.standard_normal(P) * 0.4).astype(dtype)
    return net, X, Y, params, optimizer


def _run(impl, X, Y, params, net, optimizer, batches, dropout=None, epochs=2, **hyper):
    p = params.copy()
    g = np.zeros_like(p)
    opt = kernels.optimizer(optimizer, p, 0.02, **hyper)
    work = np.empty(int(kernels.workspace_size(net.sizes, batches.size)), p.dtype)
    if dropout is not None:
        batches = kernels.dropout(batches, *dropout)
    costs = [impl.train_epoch(X, Y, p, g, net, opt, batches, work) for _ in range(epochs)]
    return p, g, costs, opt


@pytest.mark.parametrize("acts", [("relu", "tanh"), ("sigmoid", "gelu"), ("leaky_relu", "relu")])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_epoch_with_dropout_matches_the_numpy_loop(dtype, acts, optimizer):
    rng = np.random.default_rng(3)
    net, X, Y, params, _ = _epoch_args(rng, dtype, acts)
    order = rng.permutation(X.shape[0])
    weights = rng.uniform(0.2, 2.0, X.shape[0])
    for batches, dropout in ((kernels.batches(8), ([0.3, 0.5], 42)),
                             (kernels.batches(7, order, weights), ([0.0, 0.4], -5))):
        ours = _run(kernels, X, Y, params, net, optimizer, batches, dropout)
        twin = _run(reference, X, Y, params, net, optimizer, batches, dropout)
        assert_close(ours[0], twin[0], dtype, scale=20)
        np.testing.assert_allclose(ours[2], twin[2], rtol=1e-5 if dtype == np.float32 else 1e-12)
        # and dropout changed the run (the masks are not all ones)
        plain = _run(kernels, X, Y, params, net, optimizer, batches)
        assert not np.allclose(ours[0], plain[0])


def test_a_sparse_epoch_with_dropout_matches_the_numpy_loop():
    rng = np.random.default_rng(4)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, ("relu", "tanh"), n=30)
    X[rng.random(X.shape) < 0.6] = 0
    batches = kernels.batches(8, rng.permutation(30))
    dropout = ([0.25, 0.25], 9)
    ours = _run(kernels, kernels.csr(sp.csr_matrix(X)), Y, params, net, "adam", batches, dropout)
    twin = _run(reference, X, Y, params, net, "adam", batches, dropout)
    assert_close(ours[0], twin[0], np.float64, scale=20)


def _dropped_cost(params, net, X, Y, rates, seed, step):
    """The mean cost of the network with the masks of (seed, step) held fixed, by the twin."""
    layers = reference.layer_views(params, net.sizes)
    activations, _ = reference._forward(X, layers, net.acts, rates, seed, step)
    return reference._cost_and_delta(activations[-1], Y, net.acts[-1], net.loss)[0] / len(X)


def _central_differences(params, net, X, Y, rates, seed, h=1e-6):
    """The gradient of ``_dropped_cost`` (masks of ``seed`` at step 0) by central
    differences, one parameter at a time."""
    numeric = np.empty_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (_dropped_cost(up, net, X, Y, rates, seed, 0)
                      - _dropped_cost(down, net, X, Y, rates, seed, 0)) / (2 * h)
    return numeric


@pytest.mark.parametrize("acts", [("relu", "tanh"), ("sigmoid", "gelu")])
def test_the_gradient_with_dropout_is_the_finite_difference_one(acts):
    """One batch, momentum SGD (the gradient is kept in ``grads``): the kernel's gradient
    of the dropped-out network against central differences of its cost, float64."""
    rng = np.random.default_rng(5)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, acts, n=12)
    rates, seed = np.array([0.4, 0.3]), 77
    _, grads, _, _ = _run(kernels, X, Y, params, net, "sgd", kernels.batches(12),
                          (rates, seed), epochs=1, momentum=0.5)
    np.testing.assert_allclose(grads, _central_differences(params, net, X, Y, rates, seed),
                               rtol=1e-6, atol=1e-8)


def _dropout_gradient(impl, X, Y, params, net, rates, seed, scale, weights=()):
    grads = np.zeros_like(params)
    work = np.empty(int(kernels.workspace_size(net.sizes, X.shape[0])), params.dtype)
    record = kernels.dropout(kernels.batches(X.shape[0], sample_weight=np.asarray(weights)),
                             rates, seed)
    cost = impl.dropout_gradient(X, Y, params.copy(), grads, net, record, work, scale)
    return grads, cost


@pytest.mark.parametrize("acts", [("relu", "tanh"), ("gelu", "sigmoid")])
def test_dropout_gradient_matches_its_twin_and_the_epochs_first_step(dtype, acts):
    """The gradient of one minibatch with dropout (what data-parallel training sums across
    processes) against the NumPy twin, weighted too; and it is the gradient the compiled
    epoch steps on at step 0 with the same seed: a plain SGD epoch of one batch moves the
    parameters by -lr times it."""
    rng = np.random.default_rng(8)
    net, X, Y, params, _ = _epoch_args(rng, dtype, acts, n=16)
    rates, seed = np.array([0.3, 0.5]), 1234
    weights = rng.uniform(0.5, 2.0, 16)
    for w in ((), weights):
        ours = _dropout_gradient(kernels, X, Y, params, net, rates, seed, 1.0, w)
        twin = _dropout_gradient(reference, X, Y, params, net, rates, seed, 1.0, w)
        assert_close(ours[0], twin[0], dtype, scale=20)
        assert ours[1] == pytest.approx(twin[1], rel=1e-5 if dtype == np.float32 else 1e-12)
    grads, _ = _dropout_gradient(kernels, X, Y, params, net, rates, seed, 1.0 / 16)
    stepped, _, _, _ = _run(kernels, X, Y, params, net, "sgd", kernels.batches(16),
                            (rates, seed), epochs=1)
    assert_close(stepped, params - dtype(0.02) * grads, dtype, scale=4)
    plain, _ = _dropout_gradient(kernels, X, Y, params, net, np.zeros(2), seed, 1.0 / 16)
    assert not np.allclose(plain, grads)  # the masks changed it


def test_dropout_gradient_is_the_finite_difference_one():
    rng = np.random.default_rng(9)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, ("tanh", "sigmoid"), n=10)
    rates, seed = np.array([0.4, 0.2]), 31
    grads, cost = _dropout_gradient(kernels, X, Y, params, net, rates, seed, 1.0 / 10)
    assert cost / 10 == pytest.approx(_dropped_cost(params, net, X, Y, rates, seed, 0))
    np.testing.assert_allclose(grads, _central_differences(params, net, X, Y, rates, seed),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("change,message", [
    (dict(order=np.arange(4)), "dropout.batches.order must be empty (the rows of X in storage "
                               "order), got 4 indices"),
    (dict(size=3), "X has 4 rows but dropout.batches.size is 3: one call is one minibatch"),
    (dict(rates=[0.5]), "dropout.rates must hold one rate for each of the 2 hidden layers"),
])
def test_dropout_gradient_refuses_bad_records_in_one_line(change, message):
    rng = np.random.default_rng(10)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, ("relu", "relu"), n=4)
    batches = kernels.batches(change.get("size", 4), change.get("order", np.empty(0, np.int64)))
    record = kernels.dropout(batches, change.get("rates", [0.1, 0.1]), 0)
    work = np.empty(int(kernels.workspace_size(net.sizes, 4)), np.float64)
    grads = np.zeros_like(params)
    with pytest.raises(kernels.InvalidValueError) as info:
        kernels.dropout_gradient(X, Y, params, grads, net, record, work, 1.0)
    assert str(info.value).startswith("dropout_gradient: " + message)
    assert "\n" not in str(info.value) and not grads.any()


@pytest.mark.parametrize("bad,message", [
    ([0.5], "dropout.rates must hold one rate for each of the 2 hidden layers"),
    ([0.5, 1.0], "dropout.rates[1] is 1: a dropout rate must be in [0, 1)"),
    ([-0.1, 0.0], "dropout.rates[0] is -0.1"),
    ([np.nan, 0.0], "dropout.rates[0] is nan"),
])
def test_the_kernel_refuses_bad_rates_in_one_line(bad, message):
    rng = np.random.default_rng(6)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, ("relu", "relu"))
    with pytest.raises(kernels.InvalidValueError) as info:
        _run(kernels, X, Y, params, net, "sgd", kernels.batches(8), (bad, 0))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_dropout_from_the_users_own_njit_code():
    from numba import njit

    @njit
    def epoch(X, Y, params, grads, net, opt, work, rates):
        return kernels.train_epoch(X, Y, params, grads, net, opt,
                                   kernels.Dropout(kernels.batches(8), rates, 3), work)

    rng = np.random.default_rng(7)
    net, X, Y, params, _ = _epoch_args(rng, np.float64, ("relu", "relu"))
    p, g = params.copy(), np.zeros_like(params)
    opt = kernels.optimizer("sgd", p, 0.02)
    work = np.empty(int(kernels.workspace_size(net.sizes, 8)))
    epoch(X, Y, p, g, net, opt, work, np.array([0.2, 0.2]))
    expected = _run(kernels, X, Y, params, net, "sgd", kernels.batches(8),
                    ([0.2, 0.2], 3), epochs=1)[0]
    np.testing.assert_array_equal(p, expected)


# ----------------------------------------------------------------------------- the model

@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.preprocessing import StandardScaler
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_fit_with_dropout_is_reproducible_and_predict_drops_nothing(cancer):
    X, y = cancer
    nets = [MLP([30, 32, 16, 1], output="sigmoid", seed=0) for _ in range(3)]
    for net, seed in zip(nets, (1, 1, 2)):
        net.fit(X[:400], y[:400], epochs=5, seed=seed, dropout=0.3, optimizer="adam", lr=1e-3)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert not np.array_equal(nets[0].params, nets[2].params)
    net = nets[0]
    # predict uses every unit, unscaled: the plain forward pass of the NumPy twin
    layers = reference.layer_views(net.params.astype(np.float64), net.sizes)
    logits = reference._forward(X[400:], layers, net.acts)[-1]
    np.testing.assert_allclose(net.predict_proba(X[400:])[:, -1], 1 / (1 + np.exp(-logits[:, 0])),
                               rtol=1e-4)
    np.testing.assert_array_equal(net.predict(X[400:]), net.predict(X[400:]))
    assert (net.predict(X[400:]) == y[400:]).mean() > 0.93


def test_dropout_per_layer_and_without_shuffle(cancer):
    X, y = cancer
    a, b = (MLP([30, 16, 8, 1], output="sigmoid", seed=0) for _ in range(2))
    for net in (a, b):
        net.fit(X, y, epochs=2, shuffle=False, seed=3, dropout=[0.5, 0.0])
    np.testing.assert_array_equal(a.params, b.params)


def test_a_fit_with_dropout_resumes_bit_identically_from_a_checkpoint(tmp_path, cancer):
    X, y = cancer
    kwargs = dict(lr=0.01, optimizer="adam", batch_size=16, seed=7, dropout=0.25)
    whole = MLP([30, 8, 1], output="sigmoid", seed=0)
    h_whole = whole.fit(X, y, epochs=4, **kwargs)
    path = tmp_path / "ck.npz"
    MLP([30, 8, 1], output="sigmoid", seed=0).fit(X, y, epochs=2, checkpoint=path, **kwargs)
    resumed = MLP([30, 8, 1], output="sigmoid", seed=0)
    h = resumed.fit(X, y, epochs=4, checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.params, whole.params)
    assert h.loss == h_whole.loss
    with pytest.raises(ValueError, match=r"dropout=0.25 \(now 0.5\)"):
        MLP([30, 8, 1], output="sigmoid", seed=0).fit(
            X, y, epochs=4, checkpoint=path, resume=True, **dict(kwargs, dropout=0.5))


def test_fit_streamed_from_npy_with_dropout_equals_in_memory(tmp_path, cancer):
    X, y = cancer
    X = X.astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y.astype(np.float32))
    a, b = (MLP([30, 8, 1], output="sigmoid", seed=0) for _ in range(2))
    a.fit(X, y, epochs=2, seed=4, dropout=0.2, shuffle=False)
    b.fit(tmp_path / "X.npy", tmp_path / "y.npy", epochs=2, seed=4, dropout=0.2, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("kwargs,sizes,message", [
    (dict(dropout=1.0), [30, 4, 1], "dropout must be >= 0.0 and < 1.0, got 1.0"),
    (dict(dropout=-0.5), [30, 4, 1], "dropout must be >= 0.0 and < 1.0, got -0.5"),
    (dict(dropout="0.1"), [30, 4, 1], "dropout must be a real number"),
    (dict(dropout=[0.1, 0.2]), [30, 4, 1], "one rate per hidden layer (1), got 2"),
    (dict(dropout=[]), [30, 4, 1], "got an empty list"),
    (dict(dropout=0.1), [30, 1], "this network has none"),
    (dict(dropout=0.1, comm=object()), [30, 4, 1], "comm must be an MPI communicator"),
])
def test_bad_dropout_is_one_line_before_anything_changes(cancer, kwargs, sizes, message):
    X, y = cancer
    net = MLP(sizes, output="sigmoid", seed=0)
    before = net.params.copy()
    with pytest.raises((ValueError, TypeError)) as info:
        net.fit(X, y, epochs=1, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    np.testing.assert_array_equal(net.params, before)


def test_the_estimators_take_dropout(cancer):
    from sklearn.datasets import load_diabetes
    X, y = cancer
    clf = MLPClassifier((32,), dropout=0.2, random_state=0, max_iter=30, shuffle=False)
    clf.fit(X[:400], y[:400])
    again = MLPClassifier((32,), dropout=0.2, random_state=0, max_iter=30, shuffle=False)
    np.testing.assert_array_equal(again.fit(X[:400], y[:400]).coefs_[0], clf.coefs_[0])
    assert clf.score(X[400:], y[400:]) > 0.93
    Xd, yd = load_diabetes(return_X_y=True)
    reg = MLPRegressor(hidden_layer_sizes=(16, 16), dropout=[0.1, 0.1], random_state=0, max_iter=30,
                       learning_rate_init=0.01).fit(Xd, yd / yd.std())
    assert reg.get_params()["dropout"] == [0.1, 0.1]
    with pytest.raises(ValueError, match="dropout applies to solver='sgd' and 'adam'"):
        MLPRegressor(solver="lbfgs", dropout=0.1).fit(Xd, yd)
    with pytest.raises(ValueError, match=r"one rate per hidden layer \(2\), got 1"):
        MLPRegressor(hidden_layer_sizes=(4, 4), dropout=[0.1]).fit(Xd, yd)


def test_the_command_line_takes_dropout(tmp_path, capsys):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", X[:, 0] - X[:, 1])
    args = ["train", "--data", str(tmp_path / "X.npy"), "--target", str(tmp_path / "y.npy"),
            "--hidden-sizes", "8,8", "--epochs", "2", "--seed", "1"]
    assert main(args + ["--dropout", "0.2,0.1", "--save", str(tmp_path / "m.npz")]) == 0
    assert main(args + ["--dropout", "0.2,0.1,0.3"]) == 2
    assert "dropout must hold one rate per hidden layer (2), got 3" in capsys.readouterr().err
    assert main(args + ["--dropout", "1.5"]) == 2
    assert "dropout must be >= 0.0 and < 1.0, got 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse's own error: usage, then exit 2
        main(args + ["--dropout", "abc"])
    assert exit_info.value.code == 2
    assert ("argument --dropout: expected a rate (0.2) or one rate per hidden layer (0.3,0.1), "
            "got 'abc'") in capsys.readouterr().err
