"""Classification: softmax and sigmoid outputs, labels, probabilities, scores, initialisation."""

import numpy as np
import pytest

from numba_dense.model import MLP


@pytest.fixture(scope="module")
def blobs():
    """Three well separated Gaussian classes in 4 dimensions."""
    rng = np.random.default_rng(0)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], float)
    labels = rng.integers(0, 3, 600)
    X = centres[labels] + rng.standard_normal((600, 4)) * 0.7
    return X, labels


def test_softmax_classifier_learns_and_predicts_labels(blobs):
    X, labels = blobs
    net = MLP([4, 16, 3], output="softmax", seed=0)
    assert net.loss == "cross_entropy" and net.is_classifier
    history = net.fit(X, labels, epochs=15, batch_size=32, lr=0.1, seed=0)
    assert history.loss[-1] < 0.3 * history.loss[0]
    pred = net.predict(X)
    assert pred.shape == (600,) and pred.dtype == np.int64
    assert net.score(X, labels) > 0.95
    proba = net.predict_proba(X)
    assert proba.shape == (600, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), pred)


def test_integer_labels_train_exactly_like_one_hot_rows(blobs):
    X, labels = blobs
    a, b = MLP([4, 8, 3], output="softmax", seed=1), MLP([4, 8, 3], output="softmax", seed=1)
    a.fit(X, labels, epochs=2, seed=0)
    b.fit(X, np.eye(3)[labels], epochs=2, seed=0)
    np.testing.assert_array_equal(a.params, b.params)
    assert a.score(X, labels) == b.score(X, np.eye(3)[labels])


def test_sigmoid_binary_classifier(blobs):
    X, labels = blobs
    y = (labels == 0).astype(float)
    net = MLP([4, 8, 1], output="sigmoid", seed=0)
    assert net.loss == "binary_cross_entropy"
    net.fit(X, y, epochs=10, lr=0.1, seed=0)
    pred = net.predict(X)
    assert pred.shape == (600,) and set(np.unique(pred)) <= {0, 1}
    assert net.score(X, y) > 0.95
    proba = net.predict_proba(X)
    assert proba.shape == (600, 2)  # scikit-learn's [1 - p, p]
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(proba[:, 1] > 0.5, pred == 1)


def test_multi_label_sigmoid_outputs(blobs):
    X, labels = blobs
    Y = np.stack([labels == 0, labels != 2], axis=1).astype(float)
    net = MLP([4, 8, 2], output="sigmoid", seed=0)
    net.fit(X, Y, epochs=10, lr=0.1, seed=0)
    assert net.predict(X).shape == (600, 2)
    assert net.predict_proba(X).shape == (600, 2)
    assert net.score(X, Y) > 0.9


def test_sigmoid_output_with_mse_is_regression():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3))
    y = 1 / (1 + np.exp(-X[:, 0]))
    net = MLP([3, 8, 1], output="sigmoid", loss="mse", seed=0)
    assert not net.is_classifier
    net.fit(X, y, epochs=20, lr=0.5, seed=0)
    assert net.predict(X).shape == (200, 1)
    assert net.score(X, y) > 0.8
    with pytest.raises(TypeError, match="predict_proba needs a classifier"):
        net.predict_proba(X)


def test_r2_score_of_regression_matches_definition():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((100, 3))
    Y = np.stack([X[:, 0], X[:, 1] * 2], axis=1)
    net = MLP([3, 2], seed=0, dtype=np.float64)
    pred = net.predict(X)
    r2 = [1 - ((Y[:, k] - pred[:, k]) ** 2).sum() / ((Y[:, k] - Y[:, k].mean()) ** 2).sum()
          for k in range(2)]
    assert net.score(X, Y) == pytest.approx(np.mean(r2), rel=1e-12)


@pytest.mark.parametrize("hidden, expected_std", [
    ("relu", lambda n_in, n_out: np.sqrt(2 / n_in)),            # He
    ("tanh", lambda n_in, n_out: np.sqrt(2 / (n_in + n_out))),   # Glorot
    ("sigmoid", lambda n_in, n_out: np.sqrt(2 / (n_in + n_out))),
])
def test_initialisation_follows_the_activation(hidden, expected_std):
    net = MLP([800, 400, 2], hidden=hidden, dtype=np.float64, seed=0)
    assert net.weights[0].std() == pytest.approx(expected_std(800, 400), rel=0.02)


@pytest.mark.parametrize("output, y, message", [
    ("softmax", np.array([0, 1, 3, 1]), "y[2] is 3: class labels must be integers 0..2"),
    ("softmax", np.array([0, 1, -1, 1]), "y[2] is -1: class labels must be integers 0..2"),
    ("softmax", np.array([0, 1.5, 2, 1]), "y[1] is 1.5: class labels must be integers 0..2"),
    ("softmax", np.full((4, 3), 2.0), "y row 0 holds [2.0, 2.0, 2.0]; class-probability targets"),
    ("sigmoid", np.array([0, 1, 2, 1]), "y row 2 holds [2.0]; binary targets must lie in [0, 1]"),
])
def test_bad_labels_are_refused_before_training(output, y, message):
    net = MLP([2, 3 if output == "softmax" else 1], output=output, seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError) as info:
        net.fit(np.zeros((4, 2)), y, epochs=1)
    assert message in str(info.value)
    np.testing.assert_array_equal(net.params, before)


def test_classifier_save_load_keeps_the_cost(tmp_path, blobs):
    X, labels = blobs
    net = MLP([4, 5, 3], hidden="tanh", output="softmax", seed=0)
    net.fit(X, labels, epochs=1)
    net.save(tmp_path / "c.npz")
    back = MLP.load(tmp_path / "c.npz")
    assert (back.hidden, back.output, back.loss) == ("tanh", "softmax", "cross_entropy")
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
