"""Analytic gradients against central finite differences, and the closed forms of docs/MATH.md."""

import numpy as np
import pytest

from numba_dense.model import MLP


def _finite_difference_gradient(net, X, y, h=1e-6):
    grad = np.empty_like(net.params)
    for k in range(net.params.size):
        saved = net.params[k]
        net.params[k] = saved + h
        up = net.cost(X, y)
        net.params[k] = saved - h
        down = net.cost(X, y)
        net.params[k] = saved
        grad[k] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("sizes, hidden, output, loss", [
    ([4, 1], "relu", "identity", None),
    ([4, 1], "relu", "relu", None),
    ([3, 5, 2], "relu", "identity", None),
    ([3, 6, 5, 2], "relu", "identity", None),
    ([2, 4, 4, 4, 3], "relu", "relu", None),
    ([3, 5, 4, 2], "tanh", "tanh", None),
    ([3, 5, 2], "sigmoid", "sigmoid", "mse"),
    ([3, 5, 2], "identity", "identity", None),
    ([4, 6, 3], "tanh", "softmax", None),          # softmax + cross-entropy, one-hot
    ([4, 6, 5, 1], "sigmoid", "sigmoid", None),    # sigmoid + binary cross-entropy
    ([4, 6, 3], "relu", "sigmoid", None),          # three independent binary outputs
    ([3, 5, 2], "tanh", "exp", None),              # Poisson on a log link
])
def test_network_gradient_matches_central_differences(sizes, hidden, output, loss):
    net = MLP(sizes, hidden=hidden, output=output, loss=loss, dtype=np.float64, seed=11)
    rng = np.random.default_rng(5)
    # Non-zero biases: with zero biases a sample whose previous layer is all zero sits
    # exactly on the ReLU kink (z == 0), where a central difference sees half a slope.
    for b in net.biases:
        b[...] = rng.uniform(0.05, 0.5, b.shape)
    X = rng.standard_normal((13, sizes[0]))
    if output == "softmax":
        y = rng.integers(0, sizes[-1], 13)
    elif net.loss == "binary_cross_entropy":
        y = rng.uniform(0, 1, (13, sizes[-1]))
    elif net.loss == "poisson":
        y = rng.poisson(1.5, (13, sizes[-1])).astype(float)
    else:
        y = rng.standard_normal((13, sizes[-1]))
    analytic = net.gradients(X, y)
    numeric = _finite_difference_gradient(net, X, y)
    scale = np.abs(numeric).max()
    assert scale > 0
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * scale)


def test_gradient_is_written_into_grads_in_params_layout():
    net = MLP([3, 4, 2], dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    g = net.gradients(X, y)
    np.testing.assert_array_equal(g, net.grads)
    # The last layer's bias gradient is the mean output error (identity output).
    np.testing.assert_allclose(g[-2:], (net.predict(X) - y).mean(axis=0), rtol=1e-12)


# ----------------------------------------------------------------------------- one neuron

def test_single_relu_neuron_gradient_equals_closed_form():
    rng = np.random.default_rng(7)
    n, m = 6, 40
    net = MLP([n, 1], output="relu", dtype=np.float64, seed=2)
    X, y = rng.standard_normal((m, n)), rng.standard_normal(m)
    w, b = net.weights[0][0], net.biases[0][0]
    z = X @ w + b
    active = z > 0
    assert 0 < active.sum() < m  # both branches of the ReLU are exercised
    dw = ((z - y)[active, None] * X[active]).sum(axis=0) / m
    db = (z - y)[active].sum() / m
    g = net.gradients(X, y)
    np.testing.assert_allclose(g[:n], dw, rtol=1e-12, atol=1e-15)
    assert g[n] == pytest.approx(db, rel=1e-12)


def test_single_neuron_zero_error_gives_zero_gradient():
    net = MLP([3, 1], output="relu", dtype=np.float64, seed=0)
    net.biases[0][...] = 10.0  # active everywhere
    X = np.random.default_rng(1).standard_normal((8, 3))
    assert (net.gradients(X, net.predict(X)) == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_recovers_a_planted_relu_neuron(dtype):
    rng = np.random.default_rng(8)
    w_true, b_true = np.array([0.8, -0.5, 0.3, 1.2, -0.7]), 0.4
    X = rng.standard_normal((4000, 5))
    y = np.maximum(X @ w_true + b_true, 0)
    net = MLP([5, 1], output="relu", dtype=dtype, seed=3)
    net.biases[0][...] = 0.1
    net.fit(X, y, epochs=60, batch_size=32, lr=0.05, seed=0)
    tol = 1e-3
    np.testing.assert_allclose(net.weights[0][0], w_true, atol=tol)
    assert net.biases[0][0] == pytest.approx(b_true, abs=tol)


# ------------------------------------------------------------------------- docs/MATH.md examples

def _jacobian(f, x, h=1e-6):
    x = np.asarray(x, float)
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        cols.append((np.atleast_1d(f(x + e)) - np.atleast_1d(f(x - e))) / (2 * h))
    return np.stack(cols, axis=1)


def test_worked_example_gradient_of_x2_plus_cos_y():
    f = lambda v: v[0] ** 2 + np.cos(v[1])  # noqa: E731
    x, y = 1.3, -0.4
    np.testing.assert_allclose(_jacobian(f, [x, y])[0], [2 * x, -np.sin(y)], rtol=1e-8)


def test_worked_example_jacobian():
    f = lambda v: np.array([2 * v[0] + v[1] ** 3, np.exp(v[1]) - 13 * v[0]])  # noqa: E731
    x, y = 0.7, 1.1
    np.testing.assert_allclose(_jacobian(f, [x, y]), [[2, 3 * y ** 2], [-13, np.exp(y)]],
                               rtol=1e-7)


def test_worked_example_relu_layer_through_the_model():
    net = MLP([2, 2], output="relu", dtype=np.float64)
    net.weights[0][...] = [[5, 2], [3, 6]]
    net.biases[0][...] = 6
    np.testing.assert_array_equal(net.predict([[10, 20]]), [[96, 156]])
