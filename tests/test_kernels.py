"""Every public kernel against its NumPy twin in kernels.reference, both dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.kernels.products import (BACKPROP_LOOP_MAX_OUTPUTS, FORWARD_LOOP_MAX_OUTPUTS,
                                          GRADIENT_LOOP_MAX_OUTPUTS)

from .conftest import DTYPES, assert_close, random_array

dims = st.integers(1, 24)
seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)


# ----------------------------------------------------------------------------- forward

@given(m=dims, n_in=dims, n_out=dims, relu=st.booleans(), dtype=dtypes, seed=seeds)
def test_dense_forward_matches_reference(m, n_in, n_out, relu, dtype, seed):
    rng = np.random.default_rng(seed)
    X, W, b = (random_array(rng, s, dtype) for s in ((m, n_in), (n_out, n_in), (n_out,)))
    out, expected = np.full((m, n_out), np.nan, dtype), np.empty((m, n_out), dtype)
    kernels.dense_forward(X, W, b, out, relu)
    ref.dense_forward(X, W, b, expected, relu)
    assert_close(out, expected, dtype, scale=n_in)


PATH_SHAPES = [(1, 1, 1), (1, 300, 1), (256, 1, 7), (300, 200, 50), (1, 784, 128), (513, 31, 1),
               (33, 17, 10), (16, 10, 11)]


@pytest.mark.parametrize("threshold", [FORWARD_LOOP_MAX_OUTPUTS, BACKPROP_LOOP_MAX_OUTPUTS,
                                       GRADIENT_LOOP_MAX_OUTPUTS])
def test_path_shapes_cover_the_loop_and_the_blas_path(threshold):
    outputs = [n_out for _, _, n_out in PATH_SHAPES]
    assert threshold == 0 or min(outputs) <= threshold  # 0: no layer is thin enough
    assert threshold < max(outputs)


@pytest.mark.parametrize("m,n_in,n_out", PATH_SHAPES)
def test_dense_forward_small_and_blas_paths(dtype, m, n_in, n_out):
    rng = np.random.default_rng(m * n_in * n_out)
    X, W, b = (random_array(rng, s, dtype) for s in ((m, n_in), (n_out, n_in), (n_out,)))
    for relu in (False, True):
        out, expected = np.empty((m, n_out), dtype), np.empty((m, n_out), dtype)
        kernels.dense_forward(X, W, b, out, relu)
        ref.dense_forward(X, W, b, expected, relu)
        assert_close(out, expected, dtype, scale=n_in)


def test_dense_forward_all_negative_preactivations_give_zeros(dtype):
    rng = np.random.default_rng(0)
    X = np.abs(random_array(rng, (50, 40), dtype))
    W = -np.abs(random_array(rng, (30, 40), dtype))
    b = -np.ones(30, dtype)
    for shape in ((50, 40), (2, 40)):  # BLAS path and loop path
        out = np.full((shape[0], 30), 7, dtype)
        kernels.dense_forward(X[:shape[0]].copy(), W, b, out, True)
        assert (out == 0).all()


def test_dense_forward_propagates_nan_through_relu(dtype):
    X = np.array([[np.nan, 1.0]], dtype)
    out = np.empty((1, 1), dtype)
    kernels.dense_forward(X, np.ones((1, 2), dtype), np.zeros(1, dtype), out, True)
    assert np.isnan(out[0, 0])


def test_dense_forward_worked_example_of_math_md():
    # W = [[5, 2], [3, 6]], a = (10, 20), b = 6, ReLU: z = (96, 156).
    W = np.array([[5.0, 2.0], [3.0, 6.0]])
    out = np.empty((1, 2))
    kernels.dense_forward(np.array([[10.0, 20.0]]), W, np.array([6.0, 6.0]), out, True)
    np.testing.assert_array_equal(out, [[96.0, 156.0]])


# ----------------------------------------------------------------------------- backward

@given(m=dims, n=dims, dtype=dtypes, seed=seeds)
def test_relu_mask_matches_reference(m, n, dtype, seed):
    rng = np.random.default_rng(seed)
    A = np.maximum(random_array(rng, (m, n), dtype), 0)
    G = random_array(rng, (m, n), dtype)
    expected = G.copy()
    kernels.relu_mask(A, G)
    ref.relu_mask(A, expected)
    np.testing.assert_array_equal(G, expected)


def test_relu_mask_all_inactive_zeroes_everything(dtype):
    G = np.ones((3, 4), dtype)
    kernels.relu_mask(np.zeros((3, 4), dtype), G)
    assert (G == 0).all()


@given(m=dims, n_in=dims, n_out=dims, accumulate=st.booleans(), dtype=dtypes, seed=seeds)
def test_accumulate_gradients_matches_reference(m, n_in, n_out, accumulate, dtype, seed):
    rng = np.random.default_rng(seed)
    delta, X = random_array(rng, (m, n_out), dtype), random_array(rng, (m, n_in), dtype)
    dW0, db0 = random_array(rng, (n_out, n_in), dtype), random_array(rng, (n_out,), dtype)
    scale = 0.37
    dW, db, edW, edb = dW0.copy(), db0.copy(), dW0.copy(), db0.copy()
    kernels.accumulate_gradients(delta, X, dW, db, scale, accumulate)
    ref.accumulate_gradients(delta, X, edW, edb, scale, accumulate)
    assert_close(dW, edW, dtype, scale=m)
    assert_close(db, edb, dtype, scale=m)


def test_accumulate_gradients_large_batch_blas(dtype):
    rng = np.random.default_rng(1)
    delta, X = random_array(rng, (512, 64), dtype), random_array(rng, (512, 300), dtype)
    dW, db = np.empty((64, 300), dtype), np.empty(64, dtype)
    edW, edb = dW.copy(), db.copy()
    kernels.accumulate_gradients(delta, X, dW, db, 1.0 / 512, False)
    ref.accumulate_gradients(delta, X, edW, edb, 1.0 / 512, False)
    assert_close(dW, edW, dtype, scale=30)
    assert_close(db, edb, dtype, scale=30)


@pytest.mark.parametrize("m,n_in,n_out", PATH_SHAPES)
def test_gradient_and_backprop_small_and_blas_paths(dtype, m, n_in, n_out):
    rng = np.random.default_rng(m + n_in + n_out)
    delta, X = random_array(rng, (m, n_out), dtype), random_array(rng, (m, n_in), dtype)
    W = random_array(rng, (n_out, n_in), dtype)
    for accumulate in (False, True):
        dW, db = random_array(rng, (n_out, n_in), dtype), random_array(rng, (n_out,), dtype)
        edW, edb = dW.copy(), db.copy()
        kernels.accumulate_gradients(delta, X, dW, db, 0.25, accumulate)
        ref.accumulate_gradients(delta, X, edW, edb, 0.25, accumulate)
        assert_close(dW, edW, dtype, scale=m)
        assert_close(db, edb, dtype, scale=m)
    out, expected = np.full((m, n_in), np.nan, dtype), np.empty((m, n_in), dtype)
    kernels.backprop_input(delta, W, out)
    ref.backprop_input(delta, W, expected)
    assert_close(out, expected, dtype, scale=n_out)


@pytest.mark.parametrize("m,k,n", [(5, 1, 3), (7, 9, 10), (3, 13, 40)])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.75)])
def test_products_loop_and_blas_agree_for_any_alpha_beta(dtype, m, k, n, alpha, beta):
    from numba_dense.kernels.products import product_a_b as product_a_b
    from numba_dense.kernels.products import product_at_b as product_at_b
    rng = np.random.default_rng(m * k * n)
    A, B = random_array(rng, (m, k), dtype), random_array(rng, (k, n), dtype)
    C0 = random_array(rng, (m, n), dtype)
    C = C0.copy()
    product_a_b(A, B, C, alpha, beta)
    assert_close(C, alpha * (A @ B) + beta * C0, dtype, scale=k)
    D = random_array(rng, (m, n), dtype)
    E0 = random_array(rng, (k, n), dtype)
    E = E0.copy()
    product_at_b(A, D, E, alpha, beta)
    assert_close(E, alpha * (A.T @ D) + beta * E0, dtype, scale=m)


@given(m=dims, n_in=dims, n_out=dims, dtype=dtypes, seed=seeds)
def test_backprop_input_matches_reference(m, n_in, n_out, dtype, seed):
    rng = np.random.default_rng(seed)
    delta, W = random_array(rng, (m, n_out), dtype), random_array(rng, (n_out, n_in), dtype)
    out, expected = np.empty((m, n_in), dtype), np.empty((m, n_in), dtype)
    kernels.backprop_input(delta, W, out)
    ref.backprop_input(delta, W, expected)
    assert_close(out, expected, dtype, scale=n_out)


# ----------------------------------------------------------------------------- optimisers

@given(p=st.integers(1, 200), dtype=dtypes, seed=seeds)
def test_sgd_updates_match_reference(p, dtype, seed):
    rng = np.random.default_rng(seed)
    params, grads, velocity = (random_array(rng, p, dtype) for _ in range(3))
    a, e = params.copy(), params.copy()
    kernels.sgd_update(a, grads, 0.05)
    ref.sgd_update(e, grads, 0.05)
    assert_close(a, e, dtype)
    a, e, va, ve = params.copy(), params.copy(), velocity.copy(), velocity.copy()
    kernels.sgd_momentum_update(a, grads, va, 0.05, 0.9, 1e-3)
    ref.sgd_momentum_update(e, grads, ve, 0.05, 0.9, 1e-3)
    assert_close(a, e, dtype)
    assert_close(va, ve, dtype)


# ----------------------------------------------------------------------------- loss

@given(m=dims, n=dims, dtype=dtypes, seed=seeds)
def test_mse_loss_and_grad_match_reference(m, n, dtype, seed):
    rng = np.random.default_rng(seed)
    pred, y = random_array(rng, (m, n), dtype), random_array(rng, (m, n), dtype)
    assert kernels.mse_loss(pred, y) == pytest.approx(ref.mse_loss(pred, y),
                                                      rel=1e-5 if dtype == np.float32 else 1e-12)
    out, expected = np.empty((m, n), dtype), np.empty((m, n), dtype)
    kernels.mse_grad(pred, y, out)
    ref.mse_grad(pred, y, expected)
    assert_close(out, expected, dtype)


def test_mse_grad_is_the_derivative_of_mse_loss():
    rng = np.random.default_rng(3)
    pred, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    grad = np.empty_like(pred)
    kernels.mse_grad(pred, y, grad)
    h = 1e-6
    for idx in np.ndindex(pred.shape):
        up, down = pred.copy(), pred.copy()
        up[idx] += h
        down[idx] -= h
        fd = (kernels.mse_loss(up, y) - kernels.mse_loss(down, y)) / (2 * h)
        assert fd == pytest.approx(grad[idx], rel=1e-6, abs=1e-9)


def test_mse_loss_of_perfect_prediction_is_zero(dtype):
    y = np.ones((4, 2), dtype)
    assert kernels.mse_loss(y, y.copy()) == 0.0


# ----------------------------------------------------------------------------- cross-entropy

def _one_hot(rng, m, n, dtype):
    return np.eye(n, dtype=dtype)[rng.integers(0, n, m)]


@given(m=dims, n=st.integers(2, 12), dtype=dtypes, seed=seeds)
def test_cross_entropies_match_reference(m, n, dtype, seed):
    rng = np.random.default_rng(seed)
    Z = random_array(rng, (m, n), dtype, 3.0)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    for loss, grad, Y in [
            ("softmax_cross_entropy", "softmax_cross_entropy_grad", _one_hot(rng, m, n, dtype)),
            ("sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_grad",
             rng.uniform(0, 1, (m, n)).astype(dtype)),
            ("poisson_loss", "poisson_loss_grad", rng.poisson(2.0, (m, n)).astype(dtype))]:
        assert getattr(kernels, loss)(Z, Y) == pytest.approx(getattr(ref, loss)(Z, Y), rel=rel)
        out, expected = np.empty_like(Z), np.empty_like(Z)
        getattr(kernels, grad)(Z, Y, out)
        getattr(ref, grad)(Z, Y, expected)
        assert_close(out, expected, dtype)
    for fn in ("softmax", "sigmoid"):
        out, expected = np.empty_like(Z), np.empty_like(Z)
        getattr(kernels, fn)(Z, out)
        getattr(ref, fn)(Z, expected)
        assert_close(out, expected, dtype)


@pytest.mark.parametrize("loss, grad, targets", [
    ("softmax_cross_entropy", "softmax_cross_entropy_grad", "one-hot"),
    ("softmax_cross_entropy", "softmax_cross_entropy_grad", "probabilities"),
    ("sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_grad", "probabilities"),
    ("poisson_loss", "poisson_loss_grad", "counts"),
])
def test_cross_entropy_grads_are_derivatives(loss, grad, targets):
    rng = np.random.default_rng(5)
    Z = rng.standard_normal((6, 4)) * 2
    Y = _one_hot(rng, 6, 4, np.float64) if targets == "one-hot" else rng.uniform(0, 1, (6, 4))
    if targets == "counts":
        Y = rng.poisson(2.0, (6, 4)).astype(np.float64)
    if loss.startswith("softmax") and targets == "probabilities":
        Y /= Y.sum(axis=1, keepdims=True)
    g = np.empty_like(Z)
    getattr(kernels, grad)(Z, Y, g)
    h = 1e-6
    for idx in np.ndindex(Z.shape):
        up, down = Z.copy(), Z.copy()
        up[idx] += h
        down[idx] -= h
        fd = (getattr(kernels, loss)(up, Y) - getattr(kernels, loss)(down, Y)) / (2 * h)
        assert fd == pytest.approx(g[idx], rel=1e-6, abs=1e-9)


def test_cross_entropies_are_stable_for_huge_logits(dtype):
    Z = np.array([[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4]], dtype)
    Y = np.array([[1, 0, 0], [0, 0, 1]], dtype)
    ce = kernels.softmax_cross_entropy(Z, Y)
    assert np.isfinite(ce) and ce == pytest.approx(np.log(3) / 2, rel=1e-6)
    bce = kernels.sigmoid_binary_cross_entropy(Z, Y)
    assert np.isfinite(bce)
    # Confident and right costs 0; z = 0 costs log 2; z = -1e4 against target 1 costs 1e4.
    assert bce == pytest.approx((np.log(2) + 1e4) / 2, rel=1e-6)
    for fn in (kernels.softmax, kernels.sigmoid):
        out = np.empty_like(Z)
        fn(Z, out)
        assert np.isfinite(out).all()


# ----------------------------------------------------------------------------- activations

@given(m=dims, n=dims, act=st.sampled_from(sorted(kernels.ACTIVATIONS.values())),
       dtype=dtypes, seed=seeds)
def test_activation_kernels_match_reference(m, n, act, dtype, seed):
    rng = np.random.default_rng(seed)
    Z = random_array(rng, (m, n), dtype, 2.0)
    A, expected = Z.copy(), Z.copy()
    kernels.activation_forward(A, act)
    ref.activation_forward(expected, act)
    assert_close(A, expected, dtype)
    G = random_array(rng, (m, n), dtype)
    got, want = G.copy(), G.copy()
    if kernels.ACTIVATION_TABLE[act].needs_z:  # gelu, silu: the derivative from Z
        kernels.activation_backward_z(Z, got, act)
        ref.activation_backward_z(Z, want, act)
    else:
        kernels.activation_backward(A, got, act)
        ref.activation_backward(A, want, act)
    assert_close(got, want, dtype)


@pytest.mark.parametrize("act", ["identity", "relu", "tanh", "sigmoid"])
def test_activation_derivative_from_output_is_the_derivative(act):
    code = kernels.ACTIVATIONS[act]
    z = np.linspace(-3, 3, 25).reshape(5, 5) + 0.013  # no point sits on the ReLU kink
    h = 1e-6
    up, down, a = z + h, z - h, z.copy()
    for arr in (up, down, a):
        kernels.activation_forward(arr, code)
    g = np.ones_like(z)
    kernels.activation_backward(a, g, code)
    np.testing.assert_allclose(g, (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- errors

def _tiny_epoch(**changes):
    """The arguments of a valid train_epoch call on a [2, 1] network, with ``changes``."""
    args = dict(X=np.zeros((4, 2)), Y=np.zeros((4, 1)), params=np.zeros(3), grads=np.zeros(3),
                network=kernels.network([2, 1], [0]),
                optimizer=kernels.optimizer("sgd", np.zeros(3), 0.1),
                batches=kernels.batches(2), workspace=np.zeros(20))
    args.update(changes)
    return list(args.values())


def _readonly(shape, dtype=np.float64):
    a = np.zeros(shape, dtype)
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.dense_forward(np.zeros(4), np.zeros((2, 4)), np.zeros(2),
                                   np.zeros((1, 2)), True),
     ValueError, "dense_forward: X must be 2-D (rows, columns), got 1-D with shape (4,)"),
    (lambda: kernels.dense_forward(np.zeros((3, 4), np.float16), np.zeros((2, 4)), np.zeros(2),
                                   np.zeros((3, 2)), True),
     TypeError, "dense_forward: X must be float32 or float64, got float16"),
    (lambda: kernels.dense_forward(np.zeros((3, 4)), np.zeros((2, 4)), np.zeros(2),
                                   _readonly((3, 2)), True),
     TypeError, "dense_forward: out is read-only"),
    (lambda: kernels.dense_forward(np.zeros((3, 4)), np.zeros((2, 4)), np.zeros(2),
                                   np.zeros((3, 2)), "yes"),
     TypeError, "dense_forward: relu must be True or False, got 'yes'"),
    (lambda: kernels.sgd_update(np.zeros(3), np.zeros(3), "0.1"),
     TypeError, "sgd_update: lr must be a real number"),
    (lambda: kernels.mse_grad(np.zeros((2, 2)), np.zeros((2, 2)), _readonly((2, 2))),
     TypeError, "mse_grad: out is read-only"),
    (lambda: kernels.param_count([784.0, 10]),
     TypeError, "param_count: sizes must be integers, got a list of float64"),
    (lambda: kernels.param_count(np.array([-5, 3])),
     ValueError, "sizes[0] is -5: every layer width must be at least 1"),
    (lambda: kernels.train_epoch(*_tiny_epoch(batches=kernels.Batches(2, np.zeros(0)))),
     TypeError, "train_epoch: batches.order must be an integer array, got float64"),
    (lambda: kernels.train_epoch(*_tiny_epoch(batches=kernels.Batches(2.0, np.zeros(0, int)))),
     TypeError, "train_epoch: batches.size must be an integer, got 2.0"),
    (lambda: kernels.train_epoch(*_tiny_epoch(network=([2, 1], [0], 0))),
     TypeError, "train_epoch: network must be a kernels.Network "
     "(kernels.network(sizes, acts, loss)), got tuple"),
    (lambda: kernels.train_epoch(*_tiny_epoch(network=kernels.Network(np.array([2.0, 1.0]),
                                                                      np.array([0]), 0))),
     TypeError, "train_epoch: network.sizes must be an integer array, got float64"),
    (lambda: kernels.train_epoch(*_tiny_epoch(network=kernels.network([2, 1], [0])._replace(
        loss=0.0))),
     TypeError, "train_epoch: network.loss must be an integer, got 0.0"),
    (lambda: kernels.train_epoch(*_tiny_epoch(optimizer="sgd")),
     TypeError, "train_epoch: optimizer must be a kernels.Optimizer"),
    (lambda: kernels.optimizer_step(np.zeros(3), np.zeros(3), kernels.optimizer(
        "adam", np.zeros(3), 0.1, state=np.zeros(6, np.float32))),
     TypeError, "optimizer_step: optimizer.state has dtype float32 but params has float64"),
    (lambda: kernels.optimizer_step(np.zeros(3), np.zeros(3), kernels.optimizer(
        "adam", np.zeros(3), 0.1)._replace(nesterov=1)),
     TypeError, "optimizer_step: optimizer.nesterov must be True or False, got 1"),
    (lambda: kernels.optimizer_step(np.zeros(3), np.zeros(3), kernels.optimizer(
        "adam", np.zeros(3), 0.1, state=_readonly(6))),
     TypeError, "optimizer_step: optimizer.state is read-only"),
    (lambda: kernels.epoch_streaming(*_tiny_epoch()[:4], kernels.optimizer("sgd", np.zeros(3), 0.1),
                                     0, kernels.batches(2), 1.5),
     TypeError, "epoch_streaming: ahead must be an integer, got 1.5"),
    (lambda: kernels.predict_into(np.zeros(8), np.zeros(3), kernels.network([2, 1], [0]),
                                  np.zeros((4, 1)), 2, np.zeros(20)),
     ValueError, "predict_into: X must be 2-D (rows, columns), got 1-D"),
])
def test_python_calls_with_unusable_arguments_get_one_line_errors(call, error, message):
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert message in text and "\n" not in text and "nopython" not in text


def test_integer_arrays_may_be_lists_or_other_integer_dtypes():
    assert kernels.param_count([784, 10]) == kernels.param_count(np.array([784, 10])) == 7850
    # an int32 array is not converted: it compiles its own version, with the same result
    assert kernels.param_count(np.array([784, 10], np.int32)) == 7850
    np.testing.assert_array_equal(kernels.layer_offsets(np.array([3, 4, 2], np.int32)),
                                  kernels.layer_offsets(np.array([3, 4, 2])))
    assert kernels.workspace_size(np.array([3, 4, 2], np.uint8), 5) == \
        kernels.workspace_size([3, 4, 2], 5)


def _public_dispatchers():
    return {name: getattr(kernels, name) for name in kernels.__all__
            if hasattr(getattr(kernels, name), "_compile_for_args")}


def test_every_public_kernel_declares_every_argument():
    from numba_dense.kernels._checks import Arg, arguments_of
    dispatchers = _public_dispatchers()
    assert {"train_epoch", "optimizer_step", "epoch_streaming", "dense_forward"} <= \
        set(dispatchers)
    for name, dispatcher in dispatchers.items():
        assert type(dispatcher).__name__.startswith("Checked"), name
        arguments = arguments_of(dispatcher)
        assert arguments, name
        for arg_name, arg in arguments:
            assert isinstance(arg, Arg), (name, arg_name)
            assert arg.kind in ("float", "weights", "ints", "int", "real", "flag", "record")
            if arg.kind == "record":
                assert arg.record in (kernels.Network, kernels.Optimizer, kernels.Batches,
                                      kernels.CSR, kernels.Dropout)
                assert set(arg.record.FIELDS) == set(arg.record._fields)
                # train_epoch's batches: Batches or Dropout; network: Network or Embeddings
                if arg.alternative is not None:
                    assert arg.alternative in (kernels.CSR, kernels.Dropout, kernels.Embeddings)
                    assert set(arg.alternative.FIELDS) == set(arg.alternative._fields)


def test_no_public_function_takes_more_than_eight_positional_parameters():
    """Issue 21: options travel as records, never as a long argument list."""
    import inspect
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    checked = 0
    for name in kernels.__all__:
        obj = getattr(kernels, name)
        if isinstance(obj, type) or not callable(obj):
            continue
        function = getattr(obj, "py_func", obj)
        params = inspect.signature(function).parameters.values()
        assert sum(p.kind in positional for p in params) <= 8, name
        checked += 1
    assert checked > 20
    for name in dir(ref):
        obj = getattr(ref, name)
        if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == ref.__name__:
            assert len(inspect.signature(obj).parameters) <= 8, name


def test_record_factories_convert_to_int64():
    net = kernels.network(np.array([3, 4, 2], np.int32), (1, 0), "cross_entropy")
    assert isinstance(net, kernels.Network)
    assert net.sizes.dtype == net.acts.dtype == np.int64
    assert net.sizes.tolist() == [3, 4, 2] and net.acts.tolist() == [1, 0]
    assert net.loss == kernels.SOFTMAX_CE and type(net.loss) is int
    assert kernels.network([3, 1], [0]).loss == kernels.MSE
    assert kernels.network([3, 1], [0], np.int8(2)).loss == kernels.SIGMOID_BCE
    b = kernels.batches(np.int32(8), np.array([2, 0, 1], np.uint16))
    assert isinstance(b, kernels.Batches) and type(b.size) is int and b.size == 8
    assert b.order.dtype == np.int64 and b.order.tolist() == [2, 0, 1]
    assert kernels.batches(4).order.shape == (0,) and kernels.batches(4).order.dtype == np.int64
    assert kernels.batches(4, []).order.dtype == np.int64


def test_records_made_by_the_factories_compile_no_new_version():
    sizes32 = np.array([3, 4, 2], np.int32)
    X, Y = np.zeros((5, 3)), np.zeros((5, 2))
    params = np.zeros(kernels.param_count(sizes32))
    work = np.zeros(kernels.workspace_size(sizes32, 2))
    kernels.dataset_cost(X, Y, params, kernels.network([3, 4, 2], [1, 0]), 2, work)
    before = len(kernels.dataset_cost.signatures)
    for sizes in (sizes32, [3, 4, 2], np.array([3, 4, 2], np.uint8)):
        kernels.dataset_cost(X, Y, params, kernels.network(sizes, np.array([1, 0], np.int16)),
                             2, work)
    assert len(kernels.dataset_cost.signatures) == before


@pytest.mark.parametrize("make, error, message", [
    (lambda: kernels.network([3.0, 1.0], [0]), TypeError,
     "sizes must be a 1-D array of integers, got float64"),
    (lambda: kernels.network([[3, 1]], [0]), TypeError, "sizes must be a 1-D array of integers"),
    (lambda: kernels.network([3, 1], ["relu"]), TypeError, "acts must be a 1-D array of integers"),
    (lambda: kernels.network([3, 1], [0], "hinge"), ValueError, "loss must be one of"),
    (lambda: kernels.network([3, 1], [0], 1.0), TypeError, "loss must be an integer, got 1.0"),
    (lambda: kernels.network([3, 1], [0], True), TypeError, "loss must be an integer, got True"),
    (lambda: kernels.network(np.array([2**64 - 1, 1], np.uint64), [0]), ValueError,
     "sizes holds 18446744073709551615, more than int64 holds"),
    (lambda: kernels.batches(8.0), TypeError, "batch size must be an integer, got 8.0"),
    (lambda: kernels.batches(8, np.array([0.0, 1.0])), TypeError,
     "order must be a 1-D array of integers, got float64"),
])
def test_record_factories_refuse_bad_fields(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


def _f(shape, dtype=np.float64):
    return np.zeros(shape, dtype)


@pytest.mark.parametrize("call, message", [
    (lambda: kernels.dense_forward(_f((4, 31)), _f((2, 30)), _f(2), _f((4, 2)), True),
     "dense_forward: W has 30 columns but X has 31"),
    (lambda: kernels.dense_forward(_f((4, 3)), _f((2, 3)), _f(5), _f((4, 2)), True),
     "dense_forward: b has 5 elements (rows of W) but W has 2"),
    (lambda: kernels.dense_forward(_f((4, 3)), _f((2, 3)), _f(2), _f((3, 2)), False),
     "dense_forward: out has 3 rows but X has 4"),
    (lambda: kernels.dense_forward(_f((4, 3)), _f((2, 3)), _f(2), _f((4, 9)), False),
     "dense_forward: out has 9 columns (rows of W) but W has 2"),
    (lambda: kernels.dense_forward(_f((4, 6))[:, ::2], _f((2, 3)), _f(2), _f((4, 2)), False),
     "dense_forward: X must be C-contiguous"),
    (lambda: kernels.relu_mask(_f((2, 3)), _f((2, 4))), "relu_mask: G has 4 columns but A has 3"),
    (lambda: kernels.activation_backward(_f((2, 3)), _f((2, 3)), 9),
     "activation_backward: act is 9, not an activation code"),
    (lambda: kernels.softmax_cross_entropy(_f((2, 3)), _f((2, 4))),
     "softmax_cross_entropy: Y has 4 columns but Z has 3"),
    (lambda: kernels.sigmoid_binary_cross_entropy(_f((0, 3)), _f((0, 3))),
     "sigmoid_binary_cross_entropy: Z has 0 rows"),
    (lambda: kernels.softmax(_f((2, 3)), _f((3, 3))), "softmax: out has 3 rows but Z has 2"),
    (lambda: kernels.accumulate_gradients(_f((4, 2)), _f((5, 3)), _f((2, 3)), _f(2), 1.0, False),
     "accumulate_gradients: X has 5 rows but delta has 4"),
    (lambda: kernels.accumulate_gradients(_f((4, 2)), _f((4, 3)), _f((2, 3)), _f(7), 1.0, False),
     "accumulate_gradients: db has 7 elements"),
    (lambda: kernels.backprop_input(_f((4, 2)), _f((3, 5)), _f((4, 5))),
     "backprop_input: W has 3 rows (columns of delta) but delta has 2"),
    (lambda: kernels.sgd_update(_f(4), _f(5), 0.1),
     "sgd_update: grads has 5 elements but params has 4"),
    (lambda: kernels.sgd_momentum_update(_f(4), _f(4), _f(3), 0.1, 0.9, 0.0),
     "sgd_momentum_update: velocity has 3 elements but params has 4"),
    (lambda: kernels.mse_loss(_f((4, 2)), _f((4, 3))), "mse_loss: y has 3 columns but pred has 2"),
    (lambda: kernels.mse_loss(_f((0, 2)), _f((0, 2))), "mse_loss: pred has 0 rows"),
    (lambda: kernels.mse_grad(_f((4, 2)), _f((4, 2)), _f((3, 2))), "mse_grad: out has 3 rows"),
])
def test_shape_errors_name_kernel_argument_and_sizes(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_mixed_dtypes_are_refused():
    with pytest.raises(TypeError, match="dense_forward: W has dtype float32 but X has float64"):
        kernels.dense_forward(_f((4, 3)), _f((2, 3), np.float32), _f(2), _f((4, 2)), True)
    with pytest.raises(TypeError, match="sgd_update: params must be float32 or float64, got int64"):
        kernels.sgd_update(np.zeros(3, np.int64), np.zeros(3, np.int64), 0.1)


def test_shape_error_leaves_outputs_untouched():
    out = np.full((4, 2), 5.0)
    with pytest.raises(ValueError):
        kernels.dense_forward(_f((4, 31)), _f((2, 30)), _f(2), out, True)
    assert (out == 5.0).all()


# ----------------------------------------------------------------------------- from @njit

@njit
def _user_layer(X, W, b):
    """A user's own compiled function calling kernels: forward, loss gradient, step."""
    out = np.empty((X.shape[0], W.shape[0]), X.dtype)
    kernels.dense_forward(X, W, b, out, True)
    g = np.empty_like(out)
    kernels.mse_grad(out, np.zeros_like(out), g)
    kernels.relu_mask(out, g)
    dW = np.empty_like(W)
    db = np.empty_like(b)
    kernels.accumulate_gradients(g, X, dW, db, 1.0, False)
    kernels.sgd_update(W.reshape(-1), dW.reshape(-1), 0.1)
    return kernels.mse_loss(out, np.zeros_like(out))


def test_kernels_are_callable_from_user_njit_code(dtype):
    rng = np.random.default_rng(4)
    X, W, b = random_array(rng, (6, 5), dtype), random_array(rng, (3, 5), dtype), np.zeros(3, dtype)
    expected_out = np.maximum(X @ W.T + b, 0)
    expected_loss = ref.mse_loss(expected_out, np.zeros_like(expected_out))
    W_before = W.copy()
    assert _user_layer(X, W, b) == pytest.approx(expected_loss, rel=1e-5)
    assert not np.array_equal(W, W_before)


def test_public_kernels_take_no_default_values():
    """Numba's dispatcher recognises one left-out default value per Python type per process
    (numba issue #6173): every further one sends each call down a path 40x slower. The
    options of the public kernels travel in records instead; the one default allowed is
    None, for an optional argument (``sample_weight``), which the kernel fills inside."""
    import inspect
    for name, dispatcher in _public_dispatchers().items():
        for p in inspect.signature(dispatcher.py_func).parameters.values():
            if p.default is not inspect.Parameter.empty:
                assert p.default is None and p.annotation.optional, (name, p.name)


def test_a_loss_given_by_name_or_code_trains_alike():
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((40, 4)), rng.standard_normal((40, 2))
    networks = [kernels.network([4, 3, 2], [kernels.RELU, kernels.IDENTITY], loss)
                for loss in (None, "mse", kernels.MSE)]
    start = rng.standard_normal(kernels.param_count(networks[0].sizes)) * 0.3
    work = np.zeros(kernels.workspace_size(networks[0].sizes, 8))
    results = []
    for network in networks:
        params = start.copy()
        cost = kernels.train_epoch(X, Y, params, np.zeros_like(params), network,
                                   kernels.optimizer("sgd", params, 0.05), kernels.batches(8),
                                   work)
        results.append((cost, params))
    for cost, params in results[1:]:
        assert cost == results[0][0]
        np.testing.assert_array_equal(params, results[0][1])
    assert len({kernels.dataset_cost(X, Y, start, network, 8, work)
                for network in networks}) == 1


def test_a_call_numba_cannot_use_is_refused_before_anything_is_compiled():
    """The check runs in the dispatcher's _compile_for_args (kernels/_checks.py): a bad call
    compiles nothing. If a Numba release stopped calling that method, the call below would
    compile a float16 version, or fail with a TypingError, and this test would fail."""
    before = list(kernels.relu_mask.signatures)
    with pytest.raises(TypeError) as info:
        kernels.relu_mask(np.ones((2, 2), np.float16), np.ones((2, 2), np.float16))
    assert str(info.value) == "relu_mask: A must be float32 or float64, got float16"
    assert list(kernels.relu_mask.signatures) == before
    with pytest.raises(TypeError, match="relu must be True or False, got 'yes'"):
        kernels.dense_forward(np.ones((2, 2)), np.ones((1, 2)), np.ones(1), np.ones((2, 1)),
                              "yes")
    assert all("unicode" not in str(s) for s in kernels.dense_forward.signatures)
