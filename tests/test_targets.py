"""Standardized regression targets (model.data.targets): trained on (y - mean) / scale, reported
and predicted in the target's units, saved, streamed, and checked."""

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.data.targets import TargetScaling, target_moments
from tests.test_gradients import _finite_difference_gradient


@pytest.fixture(scope="module")
def prices():
    """A regression whose targets are in the thousands, as prices are."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 6))
    y = 4000 + 1500 * X[:, 0] - 800 * X[:, 1] ** 2 + 300 * rng.standard_normal(2000)
    return X, y


def test_targets_in_the_thousands_train_where_raw_ones_diverge(prices):
    X, y = prices
    settings = dict(epochs=10, batch_size=64, lr=0.01, momentum=0.9, seed=0)
    with pytest.raises(FloatingPointError, match="diverged"):
        MLP([6, 32, 1], seed=0).fit(X, y, standardize_target=False, **settings)
    net = MLP([6, 32, 1], seed=0)
    net.fit(X, y, **settings)
    assert net.score(X, y) > 0.9
    assert net.target_scaling.mean == pytest.approx([y.mean()])
    assert net.target_scaling.scale == pytest.approx(y.std())


def test_costs_and_predictions_are_in_the_targets_units(prices):
    X, y = prices
    net = MLP([6, 16, 1], dtype=np.float64, seed=0)
    history = net.fit(X[:1500], y[:1500], epochs=3, batch_size=32, lr=0.01,
                      validation_data=(X[1500:], y[1500:]))
    pred = net.predict(X[1500:])[:, 0]
    mse = ((pred - y[1500:]) ** 2).sum() / (2 * 500)
    assert net.cost(X[1500:], y[1500:]) == pytest.approx(mse, rel=1e-10)
    assert history.val_loss[-1] == pytest.approx(mse, rel=1e-10)
    assert history.loss[0] > history.loss[-1] > 1000  # squared units of the thousands


def test_gradient_is_the_gradient_of_the_cost_in_the_targets_units(prices):
    X, y = prices[0][:50], prices[1][:50]
    net = MLP([6, 5, 1], dtype=np.float64, seed=1)
    net.fit(X, y, epochs=1, lr=0.01)
    np.testing.assert_allclose(net.gradients(X, y), _finite_difference_gradient(net, X, y),
                               rtol=1e-5, atol=1e-4)


def test_the_scaling_is_saved_loaded_and_kept_by_later_fits(prices, tmp_path):
    X, y = prices
    net = MLP([6, 8, 1], seed=0)
    net.fit(X, y, epochs=1)
    first = net.target_scaling
    net.fit(X, y * 10, epochs=1)                     # a warm fit keeps what it trained with
    assert net.target_scaling is first
    net.partial_fit(X[:100], y[:100])
    assert net.target_scaling is first
    net.save(tmp_path / "net.npz")
    loaded = MLP.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(loaded.target_scaling.mean, first.mean)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    net.initialize(0)                                 # a fresh network learns it again
    assert net.target_scaling is None


def test_streamed_targets_are_standardized_as_in_memory(prices, tmp_path):
    X, y = prices
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "y.npy", y.astype(np.float32))
    a, b = MLP([6, 8, 1], seed=0), MLP([6, 8, 1], seed=0)
    a.fit(X.astype(np.float32), y.astype(np.float32), epochs=2, shuffle=False)
    b.fit(str(tmp_path / "X.npy"), str(tmp_path / "y.npy"), epochs=2, shuffle=False,
          chunk_rows=512)
    np.testing.assert_allclose(a.target_scaling.mean, b.target_scaling.mean, rtol=1e-12)
    np.testing.assert_array_equal(a.params, b.params)


def test_several_outputs_share_one_scale(prices):
    X, y = prices
    Y = np.column_stack([y, y / 1000])
    net = MLP([6, 8, 2], seed=0)
    net.fit(X, Y, epochs=1)
    expected = TargetScaling.learn(target_moments([Y]))
    assert net.target_scaling.scale == pytest.approx(np.sqrt(Y.var(axis=0).mean()))
    np.testing.assert_allclose(net.target_scaling.mean, expected.mean)


@pytest.mark.parametrize("kwargs, output, error, message", [
    (dict(standardize_target=True), "relu", ValueError,
     "standardize_target=True needs output='identity' and loss 'mse', 'huber', "
     "'absolute_error' or 'quantile' \\(a regression\\), got output='relu', loss='mse'"),
    (dict(standardize_target="yes"), "identity", TypeError,
     "standardize_target must be None, True or False, got 'yes'"),
])
def test_bad_standardize_target_is_refused_before_anything_changes(prices, kwargs, output,
                                                                   error, message):
    X, y = prices
    net = MLP([6, 4, 1], output=output, seed=0)
    before = net.params.copy()
    with pytest.raises(error, match=message):
        net.fit(X, y, epochs=1, **kwargs)
    np.testing.assert_array_equal(net.params, before)
    assert net.target_scaling is None


def test_classifiers_and_bounded_outputs_are_not_standardized(prices):
    X, y = prices
    clf = MLP([6, 4, 2], output="softmax", seed=0)
    clf.fit(X, (y > 4000).astype(np.int64), epochs=1)
    relu = MLP([6, 4, 1], output="relu", seed=0)
    relu.fit(X, y / 1e4, epochs=1)
    assert clf.target_scaling is None and relu.target_scaling is None


def test_a_bad_saved_scaling_is_named_when_loading(prices, tmp_path):
    X, y = prices
    net = MLP([6, 4, 1], seed=0)
    net.fit(X, y, epochs=1)
    net.save(tmp_path / "net.npz")
    arrays = dict(np.load(tmp_path / "net.npz"))
    arrays["target_scale"] = np.array(-1.0)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"bad\.npz.*target_scale -1\.0 are not a scaling|"
                                         r"bad\.npz.*are not a scaling of 1 outputs"):
        MLP.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_target_moments_and_standardize_match_numpy(dtype):
    rng = np.random.default_rng(3)
    Y = (rng.standard_normal((997, 3)) * 1000 + 5000).astype(dtype)
    Y[990, 1] = np.nan  # a missing target late in the block, and an infinite one
    Y[500, 2] = np.inf
    blocks = [Y[:600], Y[600:], Y[:0]]
    count, mean, m2 = target_moments(blocks)
    finite = np.asarray(Y[np.isfinite(Y).all(axis=1)], np.float64)
    assert count == len(finite) == 995
    np.testing.assert_allclose(mean, finite.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(m2, ((finite - finite.mean(axis=0)) ** 2).sum(axis=0),
                               rtol=1e-10)
    scaling = TargetScaling.learn((count, mean, m2))
    assert scaling.scale == pytest.approx(np.sqrt(finite.var(axis=0).mean()), rel=1e-10)
    Z = scaling.standardize(finite.astype(dtype))
    assert Z.dtype == dtype and Z.shape == finite.shape
    np.testing.assert_array_equal(Z, ((finite - scaling.mean) / scaling.scale).astype(dtype))
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    assert target_moments([Y[[990]]])[0] == 0  # a block of no finite row adds nothing
    # other dtypes and shapes, as float64: 1-D is one output, float16, big-endian, ints
    for other in (finite[:, 0], finite.astype(np.float16), finite.astype(">f8"),
                  np.rint(finite).astype(np.int64)):
        n, m, _ = target_moments([other])
        assert n == 995 and m.shape == (1 if other.ndim == 1 else 3,)
        assert scaling.standardize(other).dtype == (
            other.dtype if other.dtype in (np.float32, np.float64) else np.float64)


@pytest.mark.parametrize("offset", [1e6, 1e9, 1e12])
def test_a_large_mean_does_not_swamp_the_spread(offset):
    """Targets far from 0 with a small spread (1e12 +- 3): the scale is their standard
    deviation, in one block or in many (a sum of squares less the squared mean gave 16 or
    nothing at 1e9), and a float64 network learns them."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3))
    y = offset + X @ np.array([1.0, 2.0, 3.0])
    for blocks in ([y[:, None]], np.array_split(y[:, None], 7)):
        scaling = TargetScaling.learn(target_moments(blocks))
        assert scaling.scale == pytest.approx(y.std(), rel=1e-6)
        assert scaling.mean[0] == pytest.approx(y.mean(), rel=1e-15)
    net = MLP([3, 16, 1], dtype=np.float64, seed=0)
    net.fit(X, y, epochs=200, batch_size=32, optimizer="adam", lr=0.01, verbose=False)
    assert net.target_scaling.scale == pytest.approx(y.std(), rel=1e-6)
    residual = net.predict(X)[:, 0] - y
    assert np.sqrt(np.mean(residual ** 2)) < 0.2 * y.std()
