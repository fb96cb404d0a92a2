"""The small-input prediction path: kernels.predict_rows / predict_transformed and
MLP.predict's use of them."""

import pickle

import numpy as np
import pytest
from numba import njit

from numba_dense import MLP, kernels
from numba_dense.model.data.targets import TargetScaling


def tol(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def network(sizes, dtype, seed=0, **kw):
    net = MLP(sizes, dtype=dtype, seed=seed, **kw)
    for b in net.biases:
        b[...] = np.random.default_rng(seed + 1).standard_normal(b.shape) * 0.1
    return net


def rows(n, n_in, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_in)).astype(dtype)


def numpy_outputs(net, X):
    a = X.astype(np.float64)
    for l, (W, b) in enumerate(zip(net.weights, net.biases)):
        a = a @ W.T.astype(np.float64) + b
        name = kernels.ACTIVATION_TABLE[int(net.acts[l])].name
        a = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0),
             "identity": lambda z: z}[name](a)
    return a


def test_predict_rows_agrees_with_predict_into():
    dtype = np.float32
    net = network([6, 9, 5, 3], dtype, hidden="tanh")
    record = kernels.network(net.sizes, net.acts, net.loss_code)
    X = rows(40, 6, dtype)
    expected = np.empty((40, 3), dtype)
    work = np.empty(kernels.workspace_size(net.sizes, 40), dtype)
    kernels.predict_into(X, net.params, record, expected, 40, work)
    out = np.empty((40, 3), dtype)
    small = np.empty(kernels.predict_workspace_size(net.sizes), dtype)
    assert small.size == 18
    kernels.predict_rows(X, net.params, record, out, small)
    np.testing.assert_allclose(out, expected, **tol(dtype))
    kernels.predict_rows(X[::2], net.params, record, out[:20], small)  # strided rows
    np.testing.assert_allclose(out[:20], expected[::2], **tol(dtype))


def test_float64_through_mlp_predict():
    """(float32 is compared with the batched path above and below; float64 with NumPy, so
    that the batched float64 kernels need not compile here.)"""
    net = network([6, 9, 5, 3], np.float64, hidden="tanh")
    X = rows(MLP.SMALL_ROWS, 6, np.float64)
    np.testing.assert_allclose(net.predict(X), numpy_outputs(net, X), rtol=1e-12, atol=1e-12)
    net = network([6, 9, 1], np.float64, output="exp")
    net.target_scaling = None
    np.testing.assert_allclose(net.predict(X[:1]), np.exp(numpy_outputs(net, X[:1])),
                               rtol=1e-12)


def test_predict_rows_from_a_users_njit_code():
    dtype = np.float32
    net = network([4, 8, 2], dtype)

    @njit
    def serve(requests, params, sizes, acts):
        record = kernels.Network(sizes, acts, 0)
        work = np.empty(kernels.predict_workspace_size(sizes), requests.dtype)
        out = np.empty((1, sizes[-1]), requests.dtype)
        total = np.zeros(sizes[-1], requests.dtype)
        for i in range(requests.shape[0]):
            kernels.predict_rows(requests[i:i + 1], params, record, out, work)
            total += out[0]
        return total

    X = rows(30, 4, dtype)
    np.testing.assert_allclose(serve(X, net.params, net.sizes, net.acts),
                               net.predict(X).sum(axis=0), **tol(dtype))


def test_mlp_predict_small_and_large_inputs_agree():
    """Up to SMALL_ROWS rows the compiled small path, beyond it the batched one: the same
    values for a scaled regression, a Poisson network and the classifiers."""
    dtype = np.float32
    X = rows(MLP.SMALL_ROWS + 10, 5, dtype)
    scaled = network([5, 7, 2], dtype)
    scaled.target_scaling = TargetScaling(mean=np.array([10.0, -3.0]), scale=2.5)
    for net in (scaled, network([5, 7, 1], dtype, output="exp"),
                network([5, 7, 3], dtype, output="softmax"),
                network([5, 7, 1], dtype, output="sigmoid"),
                network([5, 7, 2], dtype, output="sigmoid")):
        whole = net.predict(X)  # the batched path
        for n in (1, 3, MLP.SMALL_ROWS):
            small = net.predict(X[:n])
            assert small.dtype == whole.dtype and small.shape == whole[:n].shape
            if net.is_classifier:
                np.testing.assert_array_equal(small, whole[:n])
                np.testing.assert_allclose(net.predict_proba(X[:n]), net.predict_proba(X)[:n],
                                           **tol(dtype))
            else:
                np.testing.assert_allclose(small, whole[:n], **tol(dtype))


def test_the_small_path_follows_changes_of_the_network():
    dtype = np.float32
    net = network([3, 4, 1], dtype)
    x = rows(1, 3, dtype)
    before = net.predict(x)
    net.target_scaling = TargetScaling(mean=np.array([100.0]), scale=1.0)
    np.testing.assert_allclose(net.predict(x), before + 100, **tol(dtype))
    net.params *= 2
    assert not np.allclose(net.predict(x), before + 100)
    copy = pickle.loads(pickle.dumps(net))  # the cached workspace is not pickled
    np.testing.assert_array_equal(copy.predict(x), net.predict(x))


def test_bad_values_and_shapes_get_the_usual_errors():
    net = network([3, 4, 1], np.float32)
    x = rows(2, 3, np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN at row 1, column 2"):
        net.predict(x)
    with pytest.raises(ValueError, match="X has 4 features .* but the network has 3"):
        net.predict(rows(1, 4, np.float32))
    np.testing.assert_allclose(net.predict(rows(1, 3, np.float64)),  # converted, batched path
                               net.predict(rows(1, 3, np.float32)), rtol=1e-6)


def test_kernel_errors_name_the_argument():
    net = network([3, 4, 2], np.float32)
    record = kernels.network(net.sizes, net.acts)
    X, out = rows(2, 3, np.float32), np.empty((2, 2), np.float32)
    work = np.empty(8, np.float32)
    with pytest.raises(ValueError, match="predict_rows: workspace has 1 elements but the "
                                         "network needs 8"):
        kernels.predict_rows(X, net.params, record, out, work[:1])
    with pytest.raises(ValueError, match="predict_rows: X has 4 columns but "
                                         "network.sizes\\[0\\] has 3"):
        kernels.predict_rows(rows(2, 4, np.float32), net.params, record, out, work)
    with pytest.raises(ValueError, match="predict_rows: out has 3 rows but X has 2"):
        kernels.predict_rows(X, net.params, record, np.empty((3, 2), np.float32), work)
    with pytest.raises(ValueError, match="predict_rows: out shares memory with workspace"):
        kernels.predict_rows(X, net.params, record, work[:4].reshape(2, 2), work)
    with pytest.raises(TypeError, match="predict_rows: out has dtype float64 but X has float32"):
        kernels.predict_rows(X, net.params, record, np.empty((2, 2)), work)
    transform = np.array([1, 0, 0, 0], np.float32)
    assert kernels.predict_transformed(X, net.params, net.sizes, net.acts, out, work, transform)
    X[0, 0] = np.inf
    assert not kernels.predict_transformed(X, net.params, net.sizes, net.acts, out, work,
                                           transform)
    with pytest.raises(ValueError, match="predict_transformed: transform has 3 elements"):
        kernels.predict_transformed(X, net.params, net.sizes, net.acts, out, work, transform[:3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_kernels_match_their_numpy_twins(dtype):
    from numba_dense.kernels import reference as ref
    net = network([5, 7, 4, 2], dtype, hidden=["relu", "tanh"], seed=3)
    record = kernels.network(net.sizes, net.acts, net.loss_code)
    X = rows(9, 5, dtype, seed=4)
    work = np.empty(kernels.predict_workspace_size(net.sizes), dtype)
    got, want = np.empty((9, 2), dtype), np.empty((9, 2), dtype)
    kernels.predict_rows(X, net.params, record, got, work)
    ref.predict_rows(X, net.params, record, want, None)
    np.testing.assert_allclose(got, want, **tol(dtype))
    for transform in ([2.0, 0.0, 0.5, -1.0], [1.0, 1.0, 0.0, 0.0]):  # scaling; exp
        transform = np.array(transform, dtype)
        assert kernels.predict_transformed(X, net.params, net.sizes, net.acts, got, work,
                                           transform)
        assert ref.predict_transformed(X, net.params, net.sizes, net.acts, want, None,
                                       transform)
        np.testing.assert_allclose(got, want, **tol(dtype))
    bad = X.copy()
    bad[3, 1] = np.nan
    before = got.copy()
    assert not kernels.predict_transformed(bad, net.params, net.sizes, net.acts, got, work,
                                           transform)
    assert not ref.predict_transformed(bad, net.params, net.sizes, net.acts, want, None,
                                       transform)
    np.testing.assert_array_equal(got, before)


def test_widths_beyond_int64_are_refused_not_wrapped():
    # sizes whose parameter count wraps round int64 to a small number once slipped past the
    # checks and wrote beyond the workspace (a crash); now an OverflowError names them
    sizes, acts = np.array([1, 2 ** 62, 2], np.int64), np.array([0, 0], np.int64)
    X, out = np.ones((1, 1), np.float32), np.empty((1, 2), np.float32)
    with pytest.raises(OverflowError, match="predict_workspace_size: sizes"):
        kernels.predict_workspace_size(sizes)
    with pytest.raises(OverflowError, match="more than 2\\*\\*63 - 1 weights"):
        kernels.predict_rows(X, np.ones(2, np.float32), kernels.network(sizes, acts), out,
                             np.empty(0, np.float32))
    with pytest.raises(OverflowError, match="more than 2\\*\\*63 - 1 weights"):
        kernels.predict_transformed(X, np.ones(2, np.float32), sizes, acts, out,
                                    np.empty(0, np.float32), np.array([1, 0, 0, 0], np.float32))


def test_predict_transformed_checks_its_transform():
    net = network([3, 4, 2], np.float32)
    X = rows(1, 3, np.float32)
    work = np.empty(kernels.predict_workspace_size(net.sizes), np.float32)
    t = np.array([1, 0, 0, 0], np.float32)
    with pytest.raises(ValueError, match="out overlaps transform|out shares memory"):
        kernels.predict_transformed(X, net.params, net.sizes, net.acts, t[2:].reshape(1, 2),
                                    work, t)
    t[2] = np.nan
    with pytest.raises(ValueError, match="transform\\[2\\] is nan: it must be finite"):
        kernels.predict_transformed(X, net.params, net.sizes, net.acts,
                                    np.empty((1, 2), np.float32), work, t)
