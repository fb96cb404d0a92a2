"""Row weights in the compiled epochs and full-batch gradients (``sample_weight``).

Each minibatch steps on the weighted mean of its rows' gradients, as scikit-learn's MLPs;
integer weights are the same as repeating rows. Checked against the NumPy twins
(``kernels.reference``) in both dtypes, against repeated rows, and for bad weights.
"""

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.model.data import sources
from numba_dense.model.network.mlp import MLP
from numba_dense.model.training import loop
from numba_dense.model.training import options as fit_options

SIZES = np.array([5, 7, 3])
LOSS_TARGETS = [(kernels.MSE, "values"), (kernels.SOFTMAX_CE, "one-hot"),
                (kernels.SIGMOID_BCE, "unit"), (kernels.POISSON, "counts")]


def _problem(rng, dtype, loss, targets, n=23):
    X = rng.normal(size=(n, SIZES[0])).astype(dtype)
    if targets == "one-hot":
        Y = np.eye(SIZES[-1], dtype=dtype)[rng.integers(0, SIZES[-1], n)]
    elif targets == "unit":
        Y = rng.uniform(0, 1, (n, SIZES[-1])).astype(dtype)
    elif targets == "counts":
        Y = rng.poisson(1.5, (n, SIZES[-1])).astype(dtype)
    else:
        Y = rng.normal(size=(n, SIZES[-1])).astype(dtype)
    params = (0.3 * rng.normal(size=kernels.param_count(SIZES))).astype(dtype)
    return X, Y, params, kernels.network(SIZES, [kernels.TANH, kernels.IDENTITY], loss)


def _work(dtype, batch):
    return np.empty(kernels.workspace_size(SIZES, batch), dtype)


@pytest.mark.parametrize("loss, targets", LOSS_TARGETS)
def test_weighted_gradient_matches_twin_and_repeated_rows(dtype, loss, targets):
    rng = np.random.default_rng(loss)
    X, Y, params, net = _problem(rng, dtype, loss, targets)
    w = rng.integers(0, 4, X.shape[0]).astype(np.float64)
    grads, twin, repeated = (np.zeros_like(params) for _ in range(3))
    cost = kernels.loss_and_gradient(X, Y, params, grads, net, 4, _work(dtype, 4), w)
    twin_cost = ref.loss_and_gradient(X, Y, params, twin, net, 4, None, w)
    rows = np.repeat(np.arange(X.shape[0]), w.astype(int))
    repeated_cost = kernels.loss_and_gradient(X[rows], Y[rows], params, repeated, net, 4,
                                              _work(dtype, 4))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert cost == pytest.approx(twin_cost, rel=tol)
    assert cost == pytest.approx(repeated_cost, rel=tol)
    np.testing.assert_allclose(grads, twin, rtol=tol * 10, atol=tol * np.abs(twin).max())
    np.testing.assert_allclose(grads, repeated, rtol=tol * 10, atol=tol * np.abs(twin).max())
    # the summed cost: sum_i w_i c_i
    summed = kernels.dataset_cost(X, Y, params, net, 4, _work(dtype, 4), w)
    assert summed == pytest.approx(ref.dataset_cost(X, Y, params, net, 4, None, w), rel=tol)
    assert summed == pytest.approx(cost * w.sum(), rel=tol)


def test_weights_of_one_are_no_weights(dtype):
    rng = np.random.default_rng(3)
    X, Y, params, net = _problem(rng, dtype, kernels.MSE, "values")
    a, b = np.zeros_like(params), np.zeros_like(params)
    ones = np.ones(X.shape[0])
    ca = kernels.loss_and_gradient(X, Y, params, a, net, 5, _work(dtype, 5), ones)
    cb = kernels.loss_and_gradient(X, Y, params, b, net, 5, _work(dtype, 5))
    assert ca == pytest.approx(cb, rel=1e-6)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_weighted_epoch_matches_twin(dtype, name):
    rng = np.random.default_rng(7)
    X, Y, params, net = _problem(rng, dtype, kernels.MSE, "values")
    w = rng.uniform(0, 2, X.shape[0])
    w[:6] = 0  # a whole minibatch of weight 0 (rows 0..5 in storage order) makes no step
    ours, twin = params.copy(), params.copy()
    for order in (np.empty(0, np.int64), rng.permutation(X.shape[0])):
        batches = kernels.batches(6, order, w)
        opt_a = kernels.optimizer(name, ours, 0.01)
        opt_b = kernels.optimizer(name, twin, 0.01)
        cost = kernels.train_epoch(X, Y, ours, np.zeros_like(ours), net, opt_a, batches,
                                   _work(dtype, 6))
        twin_cost = ref.train_epoch(X, Y, twin, np.zeros_like(twin), net, opt_b, batches, None)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        assert cost == pytest.approx(twin_cost, rel=tol)
        np.testing.assert_allclose(ours, twin, rtol=tol * 10, atol=tol)
        if not len(order):
            assert opt_a.steps[0] == 3  # 4 minibatches, the first of weight 0


def test_epoch_of_zero_weight_changes_nothing():
    rng = np.random.default_rng(1)
    X, Y, params, net = _problem(rng, np.float64, kernels.MSE, "values")
    before = params.copy()
    opt = kernels.optimizer("adam", params, 0.1)
    cost = kernels.train_epoch(X, Y, params, np.zeros_like(params), net, opt,
                               kernels.batches(4, None, np.zeros(X.shape[0])),
                               _work(np.float64, 4))
    assert cost == 0.0 and opt.steps[0] == 0
    np.testing.assert_array_equal(params, before)


@pytest.mark.parametrize("weights, error, message", [
    (np.ones(22), ValueError, "sample_weight has 22 rows but X has 23"),
    (np.r_[np.ones(22), -1.0], ValueError, r"sample_weight\[22\] is -1; sample weights must "
                                           "be finite and >= 0"),
    (np.r_[np.nan, np.ones(22)], ValueError, r"sample_weight\[0\] is nan"),
    (np.r_[np.inf, np.ones(22)], ValueError, r"sample_weight\[0\] is inf"),
    (np.zeros(23), ValueError, "sample_weight sums to 0"),
    (np.ones(23, np.int64), TypeError, "sample_weight must be float32 or float64, got int64"),
    (np.ones((23, 1)), ValueError, "sample_weight must be 1-D"),
])
def test_bad_weights_are_refused_in_one_line(weights, error, message):
    rng = np.random.default_rng(2)
    X, Y, params, net = _problem(rng, np.float64, kernels.MSE, "values")
    grads = np.zeros_like(params)
    with pytest.raises(error, match="^loss_and_gradient: " + message) as info:
        kernels.loss_and_gradient(X, Y, params, grads, net, 4, _work(np.float64, 4), weights)
    assert "\n" not in str(info.value)
    assert not grads.any()


def test_epoch_refuses_bad_weights_before_any_step():
    rng = np.random.default_rng(2)
    X, Y, params, net = _problem(rng, np.float64, kernels.MSE, "values")
    before = params.copy()
    w = np.ones(X.shape[0])
    w[-1] = np.nan
    with pytest.raises(ValueError, match=r"^train_epoch: batches.sample_weight\[22\] is nan"):
        kernels.train_epoch(X, Y, params, np.zeros_like(params), net,
                            kernels.optimizer("sgd", params, 0.1), kernels.batches(4, None, w),
                            _work(np.float64, 4))
    np.testing.assert_array_equal(params, before)
    with pytest.raises(TypeError, match="sample_weight must be a 1-D array of numbers"):
        kernels.batches(4, None, np.array(["a"] * 23))


def test_weighted_source_trains_as_repeated_rows():
    """Through the model's training loop: integer weights equal repeated rows (one batch a
    epoch, in storage order, Adam)."""
    rng = np.random.default_rng(4)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 1))
    w = rng.integers(0, 3, 50)
    rows = np.repeat(np.arange(50), w)
    results = []
    for source, batch in ((sources.ArraySource(X, Y, w), 50),
                          (sources.ArraySource(X[rows], Y[rows]), len(rows))):
        net = MLP([3, 4, 1], dtype=np.float64, seed=1)
        settings = fit_options.Settings(
            epochs=4, batch_size=batch, lr=0.01, schedule="constant", step_size=1, gamma=1.0,
            min_lr=0.0, shuffle=False, seed=0, early_stopping=None, optimizer="adam",
            hyperparameters=dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0))
        net.use_optimizer("adam")
        history = loop.run(net, source, None, settings)
        results.append((history.loss, net.params.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)


def test_poisson_network_learns_rates_and_refuses_negative_counts():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (2000, 3))
    rate = np.exp(X @ [1.0, -1.0, 0.5] + 0.3)
    y = rng.poisson(rate).astype(float)
    net = MLP([3, 8, 1], output="exp", dtype=np.float64, seed=0)
    assert net.loss == "poisson"
    net.fit(X, y, epochs=30)
    pred = net.predict(X).ravel()
    assert (pred > 0).all()
    # (the fit stops early on its validation split, so how close depends on its epochs)
    assert pred.mean() == pytest.approx(y.mean(), rel=0.15)
    assert np.corrcoef(pred, rate)[0, 1] > 0.97
    with pytest.raises(ValueError, match=r"y row 0 holds \[-\d.*the Poisson loss needs targets "
                                         ">= 0"):
        net.fit(X, -y - 1, epochs=1)


def test_estimator_refuses_negative_weights_before_its_warm_start_changes():
    """A negative weight is refused by scikit-learn's check at the start of fit, not by the
    epoch kernel once the network was set up: a warm-started estimator keeps its coefs_."""
    from numba_dense.model import MLPRegressor
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X.sum(axis=1)
    est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, warm_start=True,
                       random_state=0)
    with pytest.warns(Warning):
        est.fit(X, y)
    before = [c.copy() for c in est.coefs_]
    weights = np.ones(60)
    weights[7] = -1.0
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        est.fit(X, y, sample_weight=weights)
    assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))


def test_weights_that_are_all_zero_are_refused_before_training():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    labels = (X[:, 0] > 0).astype(int)
    net = MLP([3, 4, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="^sample_weight: every row weighs 0, so there is "
                                         "nothing to train on$"):
        net.fit(X, X.sum(axis=1), sample_weight=np.zeros(40))
    clf = MLP([3, 4, 2], output="softmax", seed=0)
    with pytest.raises(ValueError, match="^class_weight: every row weighs 0"):
        clf.fit(X, labels, class_weight={0: 0.0, 1: 0.0})
    np.testing.assert_array_equal(net.params, before)
