"""Nothing silently wrong (issue 20): outputs sharing memory with inputs, sizes beyond
int64, step sizes training refuses, integer arrays of other dtypes, an unwritable cache.

Every kernel is called with C-contiguous arrays and records made by the factories, of the
signatures the other kernel tests compile, so that these tests compile little beyond the
few user functions here and the mixed-dtype refusals.
"""

import os
import shutil
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

from numba_dense import kernels
from numba_dense.kernels import reference as ref

from .conftest import assert_close, random_array

HUGE = 2**40
MSE = kernels.MSE


def _one_line_error(error, call, *expected):
    """The message of ``call``'s ``error``; it is one line and holds every ``expected``."""
    with pytest.raises(error) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and "nopython" not in text, text
    for part in expected:
        assert part in text, (part, text)
    return text


# ----------------------------------------------------------------------------- aliasing

def _network(dtype, sizes=(4, 3, 4), batch=3, rows=6, seed=0, loss=MSE):
    """A small network's arrays and records: X, Y, params, grads, net (a kernels.Network),
    sizes, acts, batch, batches (storage order), work."""
    rng = np.random.default_rng(seed)
    net = kernels.network(sizes, [kernels.TANH, kernels.IDENTITY], loss)
    n_params = kernels.param_count(net.sizes)
    return dict(X=random_array(rng, (rows, sizes[0]), dtype),
                Y=random_array(rng, (rows, sizes[-1]), dtype),
                params=random_array(rng, n_params, dtype) * 0.5,
                grads=np.zeros(n_params, dtype), net=net, sizes=net.sizes, acts=net.acts,
                batch=batch, batches=kernels.batches(batch),
                work=np.zeros(kernels.workspace_size(net.sizes, batch), dtype))


def _sgd(params, lr=0.1, **hyperparameters):
    return kernels.optimizer("sgd", params, lr, **hyperparameters)


def _epoch(n, **changes):
    """A call of train_epoch on ``n`` (``_network``) with plain SGD, arguments changed by
    name (X, Y, params, grads, network, optimizer, batches, workspace)."""
    args = dict(X=n["X"], Y=n["Y"], params=n["params"], grads=n["grads"], network=n["net"],
                optimizer=None, batches=n["batches"], workspace=n["work"])
    args.update(changes)
    if args["optimizer"] is None:
        args["optimizer"] = _sgd(args["params"])
    return lambda: kernels.train_epoch(*args.values())


def _aliasing_cases():
    """(name, make(dtype) -> call, message): every output sharing memory with an input."""
    def square(dtype, n=4, rows=4, seed=1):
        return [random_array(np.random.default_rng(seed + i), (rows, n), dtype)
                for i in range(3)]

    def dense_out_is_x(dtype):
        X, W, _ = square(dtype)
        return lambda: kernels.dense_forward(X, W, np.zeros(4, dtype), X, True)

    def dense_out_overlaps_x(dtype):
        buf = random_array(np.random.default_rng(2), (5, 4), dtype)
        W = square(dtype)[1]
        return lambda: kernels.dense_forward(buf[:4], W, np.zeros(4, dtype), buf[1:], False)

    def dense_out_is_w(dtype):
        X, W, _ = square(dtype)
        return lambda: kernels.dense_forward(X, W, np.zeros(4, dtype), W, False)

    def dense_b_in_out(dtype):
        X, W, out = square(dtype)
        return lambda: kernels.dense_forward(X, W, out[2], out, False)

    def backprop_out_is_delta(dtype):
        delta, W, _ = square(dtype)
        return lambda: kernels.backprop_input(delta, W, delta)

    def backprop_out_is_w(dtype):
        delta, W, _ = square(dtype)
        return lambda: kernels.backprop_input(delta, W, W)

    def gradients_dw_is_x(dtype):
        delta, X, _ = square(dtype)
        return lambda: kernels.accumulate_gradients(delta, X, X, np.zeros(4, dtype), 1.0,
                                                    False)

    def gradients_db_in_delta(dtype):
        delta, X, dW = square(dtype)
        return lambda: kernels.accumulate_gradients(delta, X, dW, delta[0], 1.0, False)

    def gradients_db_in_dw(dtype):
        delta, X, dW = square(dtype)
        return lambda: kernels.accumulate_gradients(delta, X, dW, dW[3], 1.0, True)

    def momentum_velocity_is_params(dtype):
        p = np.ones(5, dtype)
        return lambda: kernels.sgd_momentum_update(p, np.ones(5, dtype), p, 0.05, 0.9, 1e-3)

    def step_state_overlaps_grads(dtype):
        buf = np.zeros(11, dtype)
        opt = kernels.optimizer("adam", np.ones(5, dtype), 1e-2, state=buf[:10])
        return lambda: kernels.optimizer_step(np.ones(5, dtype), buf[6:], opt)

    def step_state_holds_params(dtype):
        state = np.zeros(10, dtype)
        opt = kernels.optimizer("adamw", state[:5], 0.01, state=state)
        return lambda: kernels.optimizer_step(state[:5], np.ones(5, dtype), opt)

    def momentum_step_state_is_params(dtype):
        p = np.ones(5, dtype)
        opt = kernels.optimizer("sgd", p, 0.01, momentum=0.9, state=p)
        return lambda: kernels.optimizer_step(p, np.ones(5, dtype), opt)

    def sgd_shifted(dtype):
        a = np.ones(6, dtype)
        return lambda: kernels.sgd_update(a[1:], a[:-1], 0.1)

    def relu_mask_shifted(dtype):
        buf = random_array(np.random.default_rng(3), (5, 4), dtype)
        return lambda: kernels.relu_mask(buf[:4], buf[1:])

    def activation_backward_shifted(dtype):
        buf = random_array(np.random.default_rng(3), (5, 4), dtype)
        return lambda: kernels.activation_backward(buf[1:], buf[:4], kernels.TANH)

    def mse_grad_shifted(dtype):
        buf = random_array(np.random.default_rng(4), (5, 4), dtype)
        return lambda: kernels.mse_grad(buf[:4], np.zeros((4, 4), dtype), buf[1:])

    def softmax_shifted(dtype):
        buf = random_array(np.random.default_rng(5), (5, 4), dtype)
        return lambda: kernels.softmax(buf[1:], buf[:4])

    def ce_grad_out_overlaps_y(dtype):
        buf = random_array(np.random.default_rng(5), (5, 4), dtype)
        Z = random_array(np.random.default_rng(6), (4, 4), dtype)
        return lambda: kernels.softmax_cross_entropy_grad(Z, buf[1:], buf[:4])

    def predict_out_is_params(dtype):
        n = _network(dtype)
        out = n["params"][:24].reshape(6, 4)
        return lambda: kernels.predict_into(n["X"], n["params"], n["net"], out, n["batch"],
                                            n["work"])

    def predict_work_holds_x(dtype):
        n = _network(dtype)
        X = n["work"][:24].reshape(6, 4)
        return lambda: kernels.predict_into(X, n["params"], n["net"], np.empty((6, 4), dtype),
                                            n["batch"], n["work"])

    def epoch_grads_is_params(dtype):
        n = _network(dtype)
        return _epoch(n, grads=n["params"])

    def epoch_state_is_grads(dtype):
        n = _network(dtype)
        return _epoch(n, optimizer=_sgd(n["params"], momentum=0.9, state=n["grads"]))

    def epoch_state_in_work(dtype):
        n = _network(dtype)
        state = n["work"][:n["params"].shape[0]]
        return _epoch(n, optimizer=_sgd(n["params"], momentum=0.9, state=state))

    def epoch_work_holds_y(dtype):
        n = _network(dtype)
        return _epoch(n, Y=n["work"][:24].reshape(6, 4))

    def gradient_grads_in_work(dtype):
        n = _network(dtype)
        grads = n["work"][:n["params"].shape[0]]
        return lambda: kernels.batch_gradient(n["X"], n["Y"], n["params"], grads, n["net"],
                                              n["batch"], n["work"], 1.0)

    def loss_and_gradient_grads_is_params(dtype):
        n = _network(dtype)
        return lambda: kernels.loss_and_gradient(n["X"], n["Y"], n["params"], n["params"],
                                                 n["net"], n["batch"], n["work"])

    def cost_work_holds_params(dtype):
        n = _network(dtype)
        work = np.zeros(n["work"].shape[0] + n["params"].shape[0], dtype)
        params = work[-n["params"].shape[0]:]
        params[:] = n["params"]
        return lambda: kernels.dataset_cost(n["X"], n["Y"], params, n["net"], n["batch"],
                                            work[:n["work"].shape[0] + 1])

    def epoch_params_overlaps_x(dtype):
        n = _network(dtype)
        big = np.zeros(24 + 31 - 5, dtype)  # X's 24 elements, then params over X's last 5
        X = big[:24].reshape(6, 4)
        X[:] = n["X"]
        params = big[19:]
        return _epoch(n, X=X, params=params)

    def epoch_params_overlaps_y(dtype):
        n = _network(dtype)
        big = np.zeros(31 + 24 - 3, dtype)  # params, then Y over params' last 3
        params = big[:31]
        params[:] = n["params"]
        Y = big[28:].reshape(6, 4)
        return _epoch(n, Y=Y, params=params)

    shares = "shares memory with"
    partly = "without being the same array"
    return [
        (dense_out_is_x, "dense_forward: out shares memory with X; pass a separate array"),
        (dense_out_overlaps_x, "dense_forward: out " + shares + " X"),
        (dense_out_is_w, "dense_forward: out " + shares + " W"),
        (dense_b_in_out, "dense_forward: out " + shares + " b"),
        (backprop_out_is_delta, "backprop_input: out " + shares + " delta"),
        (backprop_out_is_w, "backprop_input: out " + shares + " W"),
        (gradients_dw_is_x, "accumulate_gradients: dW " + shares + " X"),
        (gradients_db_in_delta, "accumulate_gradients: db " + shares + " delta"),
        (gradients_db_in_dw, "accumulate_gradients: db " + shares + " dW"),
        (momentum_velocity_is_params, "sgd_momentum_update: velocity " + shares + " params"),
        (step_state_overlaps_grads, "optimizer_step: optimizer.state overlaps grads " + partly),
        (step_state_holds_params, "optimizer_step: optimizer.state " + shares + " params"),
        (momentum_step_state_is_params, "optimizer_step: optimizer.state " + shares
         + " params"),
        (sgd_shifted, "sgd_update: params overlaps grads " + partly),
        (relu_mask_shifted, "relu_mask: G overlaps A " + partly),
        (activation_backward_shifted, "activation_backward: G overlaps A " + partly),
        (mse_grad_shifted, "mse_grad: out overlaps pred " + partly),
        (softmax_shifted, "softmax: out overlaps Z " + partly),
        (ce_grad_out_overlaps_y, "softmax_cross_entropy_grad: out overlaps Y " + partly),
        (predict_out_is_params, "predict_into: out " + shares + " params"),
        (predict_work_holds_x, "predict_into: workspace " + shares + " X"),
        (epoch_grads_is_params, "train_epoch: grads " + shares + " params"),
        (epoch_state_is_grads, "train_epoch: optimizer.state " + shares + " grads"),
        (epoch_state_in_work, "train_epoch: optimizer.state " + shares + " workspace"),
        (epoch_work_holds_y, "train_epoch: workspace " + shares + " Y"),
        (epoch_params_overlaps_x, "train_epoch: params " + shares + " X"),
        (epoch_params_overlaps_y, "train_epoch: params " + shares + " Y"),
        (gradient_grads_in_work, "batch_gradient: grads " + shares + " workspace"),
        (loss_and_gradient_grads_is_params, "loss_and_gradient: grads " + shares + " params"),
        (cost_work_holds_params, "dataset_cost: workspace " + shares + " params"),
    ]


ALIASING = _aliasing_cases()


@pytest.mark.parametrize("make, message", ALIASING, ids=[m.__name__ for m, _ in ALIASING])
def test_outputs_sharing_memory_with_inputs_are_refused(dtype, make, message):
    call = make(dtype)
    _one_line_error(ValueError, call, message)


def test_refused_aliasing_leaves_the_arrays_untouched(dtype):
    rng = np.random.default_rng(0)
    X, W = random_array(rng, (4, 4), dtype), random_array(rng, (4, 4), dtype)
    before = X.copy()
    with pytest.raises(ValueError):
        kernels.dense_forward(X, W, np.zeros(4, dtype), X, True)
    np.testing.assert_array_equal(X, before)


def test_separate_views_of_one_buffer_are_allowed(dtype):
    """Sharing a buffer is fine where the parts do not overlap: X above, out below."""
    rng = np.random.default_rng(1)
    buf = random_array(rng, (8, 4), dtype)
    W = random_array(rng, (4, 4), dtype)
    b = np.zeros(4, dtype)
    expected = np.empty((4, 4), dtype)
    ref.dense_forward(buf[:4], W, b, expected, True)
    kernels.dense_forward(buf[:4], W, b, buf[4:], True)
    assert_close(buf[4:], expected, dtype, scale=4)


def test_elementwise_kernels_work_in_place(dtype):
    """An output that is the very input of an elementwise kernel gives what a separate one
    gives; the kernels keep allowing it."""
    rng = np.random.default_rng(2)
    Z = random_array(rng, (5, 4), dtype, 2.0)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 5)]
    for fn in (kernels.softmax, kernels.sigmoid):
        separate, inplace = np.empty_like(Z), Z.copy()
        fn(Z, separate)
        fn(inplace, inplace)
        np.testing.assert_array_equal(inplace, separate)
    for grad in (kernels.softmax_cross_entropy_grad, kernels.sigmoid_binary_cross_entropy_grad,
                 kernels.mse_grad):
        separate = np.empty_like(Z)
        grad(Z, Y, separate)
        into_z, into_y = Z.copy(), Y.copy()
        grad(into_z, Y, into_z)
        grad(Z, into_y, into_y)
        np.testing.assert_array_equal(into_z, separate)
        np.testing.assert_array_equal(into_y, separate)
    for act in (kernels.RELU, kernels.TANH):
        A = Z.copy()
        kernels.activation_forward(A, act)
        separate, inplace = A.copy(), A.copy()
        kernels.activation_backward(A, separate, act)
        kernels.activation_backward(inplace, inplace, act)
        np.testing.assert_array_equal(inplace, separate)
    separate, inplace = Z.copy(), Z.copy()
    kernels.relu_mask(Z, separate)
    kernels.relu_mask(inplace, inplace)
    np.testing.assert_array_equal(inplace, separate)


def test_optimizer_updates_with_grads_the_same_array(dtype):
    rng = np.random.default_rng(3)
    p0, v0 = random_array(rng, 7, dtype), random_array(rng, 7, dtype)
    separate, inplace = p0.copy(), p0.copy()
    kernels.sgd_update(separate, p0.copy(), 0.1)
    kernels.sgd_update(inplace, inplace, 0.1)
    np.testing.assert_array_equal(inplace, separate)
    # grads the very velocity: the sweep reads both before it writes either
    p, v, g = p0.copy(), v0.copy(), v0.copy()
    kernels.sgd_momentum_update(p, g, v, 0.05, 0.9, 1e-3)
    p_in, v_in = p0.copy(), v0.copy()
    kernels.sgd_momentum_update(p_in, v_in, v_in, 0.05, 0.9, 1e-3)
    np.testing.assert_array_equal(p_in, p)
    np.testing.assert_array_equal(v_in, v)
    p = p0.copy()
    separate = kernels.optimizer("adam", p, 1e-2, weight_decay=0.01)
    kernels.optimizer_step(p, p0.copy(), separate)
    p_in = p0.copy()
    inplace = kernels.optimizer("adam", p_in, 1e-2, weight_decay=0.01)
    kernels.optimizer_step(p_in, p_in, inplace)
    np.testing.assert_array_equal(p_in, p)
    np.testing.assert_array_equal(inplace.state, separate.state)
    # grads the very state of momentum SGD, as with sgd_momentum_update above
    p, v = p0.copy(), v0.copy()
    kernels.optimizer_step(p, v0.copy(), _sgd(p, 0.05, momentum=0.9, state=v))
    p_in, v_in = p0.copy(), v0.copy()
    kernels.optimizer_step(p_in, v_in, _sgd(p_in, 0.05, momentum=0.9, state=v_in))
    np.testing.assert_array_equal(p_in, p)
    np.testing.assert_array_equal(v_in, v)


def test_refused_params_over_x_leaves_x_untouched(dtype):
    n = _network(dtype)
    big = np.zeros(24 + 31 - 5, dtype)
    X, params = big[:24].reshape(6, 4), big[19:]
    X[:] = n["X"]
    before = big.copy()
    with pytest.raises(ValueError, match="train_epoch: params shares memory with X"):
        _epoch(n, X=X, params=params)()
    np.testing.assert_array_equal(big, before)


def test_predict_into_names_out_in_its_messages(dtype):
    n = _network(dtype, sizes=(4, 3, 2))  # 4 inputs, 2 outputs: out=X has 2 columns too many
    X = n["X"]
    _one_line_error(ValueError, lambda: kernels.predict_into(
        X, n["params"], n["net"], X, n["batch"], n["work"]),
        "predict_into: out has 4 columns but sizes[-1] has 2")
    _one_line_error(ValueError, lambda: kernels.predict_into(
        X, n["params"], n["net"], np.empty((5, 2), dtype), n["batch"], n["work"]),
        "predict_into: out has 5 rows but X has 6")


def test_predict_into_may_write_over_its_input(dtype):
    n = _network(dtype)  # 4 inputs, 4 outputs
    separate = np.empty_like(n["X"])
    kernels.predict_into(n["X"], n["params"], n["net"], separate, n["batch"], n["work"])
    X = n["X"].copy()
    kernels.predict_into(X, n["params"], n["net"], X, n["batch"], n["work"])
    np.testing.assert_array_equal(X, separate)


@njit
def _user_forward_into_input(X, W, b):
    kernels.dense_forward(X, W, b, X, False)


def test_aliasing_is_refused_in_user_njit_code_too():
    X, W = np.ones((3, 3)), np.ones((3, 3))
    _one_line_error(ValueError, lambda: _user_forward_into_input(X, W, np.zeros(3)),
                    "dense_forward: out shares memory with X")


# ----------------------------------------------------------------------------- int64 overflow

def test_param_count_refuses_sizes_beyond_int64():
    sizes = np.array([HUGE, HUGE, HUGE])
    _one_line_error(OverflowError, lambda: kernels.param_count(sizes),
                    "param_count: sizes [1099511627776, 1099511627776, 1099511627776]",
                    "int64")
    _one_line_error(OverflowError, lambda: kernels.layer_offsets(sizes), "layer_offsets: sizes")


def test_param_count_at_the_edge_of_int64():
    # [1, n]: n weights and n biases; 2 * (2**62 - 1) fits, 2 * 2**62 does not
    assert kernels.param_count(np.array([1, 2**62 - 1])) == 2**63 - 2
    _one_line_error(OverflowError, lambda: kernels.param_count(np.array([1, 2**62])),
                    "param_count: sizes [1, 4611686018427387904]")


@pytest.mark.parametrize("batch_size", [-1, 0])
def test_workspace_size_refuses_a_batch_size_below_one(batch_size):
    _one_line_error(ValueError, lambda: kernels.workspace_size(np.array([4, 3, 2]), batch_size),
                    "workspace_size: batch_size must be positive, got %d" % batch_size)


def test_workspace_size_refuses_sizes_beyond_int64():
    _one_line_error(OverflowError, lambda: kernels.workspace_size(np.array([4, 3, 2]), 2**62),
                    "workspace_size: sizes [4, 3, 2] with batch_size 4611686018427387904")
    _one_line_error(OverflowError,
                    lambda: kernels.workspace_size(np.array([HUGE, HUGE, HUGE]), 1),
                    "workspace_size: sizes [")
    _one_line_error(ValueError, lambda: kernels.workspace_size(np.array([4, 0, 2]), 1),
                    "workspace_size: sizes[1] is 0")
    assert kernels.workspace_size(np.array([4, 3, 2]), 8) > 0


def test_train_epoch_refuses_sizes_beyond_int64():
    n = _network(np.float64)
    _one_line_error(OverflowError, _epoch(n, network=kernels.network([4, HUGE, HUGE, 4],
                                                                     [1, 1, 0])),
                    "train_epoch: sizes [4, 1099511627776, 1099511627776, 4]")


# ----------------------------------------------------------------------------- step sizes

BAD_LR = [(np.nan, "nan"), (np.inf, "inf"), (-0.1, "-0.1"), (0.0, "0")]


def _updates(dtype, lr=0.1, momentum=0.9, weight_decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8):
    """(kernel name, call, uses Adam) of every update with these hyperparameters, and the
    parameter vectors they would update. The records are made valid and then given the
    values (``_replace``), since ``kernels.optimizer`` refuses bad ones itself."""
    p = np.ones(4, dtype)
    g = np.ones(4, dtype)
    n = _network(dtype)
    values = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    adam = dict(values, beta1=beta1, beta2=beta2, eps=eps)
    sgd_step = _sgd(p, momentum=0.5)._replace(**values)
    adam_step = kernels.optimizer("adam", p, 0.1)._replace(**adam)
    adamw_epoch = kernels.optimizer("adamw", n["params"], 0.1)._replace(**adam)
    epoch = _sgd(n["params"], momentum=0.5)._replace(**values)
    calls = [
        ("sgd_update", lambda: kernels.sgd_update(p, g, lr), False),
        ("sgd_momentum_update",
         lambda: kernels.sgd_momentum_update(p, g, np.zeros(4, dtype), lr, momentum,
                                             weight_decay), False),
        ("optimizer_step", lambda: kernels.optimizer_step(p, g, sgd_step), False),
        ("optimizer_step", lambda: kernels.optimizer_step(p, g, adam_step), True),
        ("train_epoch", _epoch(n, optimizer=epoch), False),
        ("train_epoch", _epoch(n, optimizer=adamw_epoch), True),
    ]
    return calls, (p, n["params"])


@pytest.mark.parametrize("lr, shown", BAD_LR, ids=[s for _, s in BAD_LR])
def test_every_update_refuses_a_learning_rate_training_refuses(dtype, lr, shown):
    calls, arrays = _updates(dtype, lr=lr)
    before = [a.copy() for a in arrays]
    for name, call, _ in calls:
        _one_line_error(ValueError, call, "%s: lr must be positive and finite, got %s"
                        % (name, shown))
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("momentum, shown", [(np.nan, "nan"), (-0.1, "-0.1"), (1.0, "1"),
                                             (1.5, "1.5")])
def test_momentum_outside_0_1_is_refused(dtype, momentum, shown):
    calls, _ = _updates(dtype, momentum=momentum)
    for name, call, _ in calls:
        if name in ("sgd_momentum_update", "optimizer_step", "train_epoch"):
            _one_line_error(ValueError, call, "%s: momentum must be in [0, 1), got %s"
                            % (name, shown))


@pytest.mark.parametrize("weight_decay", [np.nan, -1e-3, np.inf])
def test_negative_or_infinite_weight_decay_is_refused(dtype, weight_decay):
    calls, _ = _updates(dtype, weight_decay=weight_decay)
    for name, call, _ in calls:
        if name != "sgd_update":
            _one_line_error(ValueError, call, "%s: weight_decay must be non-negative and finite"
                            % name)


@pytest.mark.parametrize("changes, message", [
    (dict(beta1=1.0), "beta1 and beta2 must be in [0, 1), got 1 and 0.999"),
    (dict(beta2=np.nan), "beta1 and beta2 must be in [0, 1), got 0.9 and nan"),
    (dict(eps=np.inf), "eps must be positive and finite, got inf"),
    (dict(eps=0.0), "eps must be positive and finite, got 0"),
])
def test_adam_hyperparameters_out_of_range_are_refused(dtype, changes, message):
    calls, _ = _updates(dtype, **changes)
    adam = [(name, call) for name, call, uses_adam in calls if uses_adam]
    assert len(adam) == 2
    for name, call in adam:
        _one_line_error(ValueError, call, "%s: %s" % (name, message))


def test_valid_hyperparameters_still_update():
    calls, (p, params) = _updates(np.float64, lr=0.1, momentum=0.5, weight_decay=1e-3)
    before = p.copy(), params.copy()
    for _, call, _ in calls:
        call()
    assert not np.array_equal(p, before[0]) and not np.array_equal(params, before[1])


@pytest.mark.parametrize("scale, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_a_non_finite_gradient_scale_is_refused(dtype, scale, shown):
    rng = np.random.default_rng(6)
    delta, X = random_array(rng, (4, 3), dtype), random_array(rng, (4, 5), dtype)
    dW, db = np.zeros((3, 5), dtype), np.zeros(3, dtype)
    _one_line_error(ValueError, lambda: kernels.accumulate_gradients(delta, X, dW, db, scale,
                                                                     False),
                    "accumulate_gradients: scale must be finite, got " + shown)
    n = _network(dtype)
    _one_line_error(ValueError, lambda: kernels.batch_gradient(
        n["X"], n["Y"], n["params"], n["grads"], n["net"], n["batch"], n["work"], scale),
        "batch_gradient: scale must be finite, got " + shown)
    assert not dW.any() and not db.any() and not n["grads"].any()


# ----------------------------------------------------------------------------- softmax, 1 output

def test_softmax_cross_entropy_with_one_output_is_refused(dtype):
    n = _network(dtype, sizes=(4, 3, 1), loss=kernels.SOFTMAX_CE)
    net = n["net"]
    calls = [
        ("train_epoch", _epoch(n)),
        ("batch_gradient", lambda: kernels.batch_gradient(
            n["X"], n["Y"], n["params"], n["grads"], net, n["batch"], n["work"], 1.0)),
        ("loss_and_gradient", lambda: kernels.loss_and_gradient(
            n["X"], n["Y"], n["params"], n["grads"], net, n["batch"], n["work"])),
        ("dataset_cost", lambda: kernels.dataset_cost(
            n["X"], n["Y"], n["params"], net, n["batch"], n["work"])),
    ]
    before = n["params"].copy()
    for name, call in calls:
        _one_line_error(ValueError, call, name + ": loss SOFTMAX_CE needs at least 2 outputs, "
                        "but sizes[-1] is 1; use SIGMOID_BCE for one output")
    np.testing.assert_array_equal(n["params"], before)
    # one output with SIGMOID_BCE still trains
    optimizer = _sgd(n["params"])
    cost = _epoch(n, Y=(n["Y"] > 0).astype(dtype), optimizer=optimizer,
                  network=net._replace(loss=kernels.SIGMOID_BCE))()
    assert cost > 0 and optimizer.steps[0] == 2


# ----------------------------------------------------------------------------- mixed dtypes

def _argument_for(arg, dtype):
    """A valid argument of an annotation (``kernels._checks.Arg``), float arrays of
    ``dtype``; a record has float fields of ``dtype`` too."""
    if arg.kind == "flag":
        return False
    if arg.kind == "int":
        return 1
    if arg.kind == "real":
        return 0.5
    if arg.kind == "ints":
        return np.array([2, 2], np.int64)
    if arg.kind == "record":
        if arg.record is kernels.Network:
            return kernels.network([2, 2], [0])
        if arg.record is kernels.Batches:
            return kernels.batches(1)
        if arg.record is kernels.Dropout:  # no rates: the network above has no hidden layer
            return kernels.dropout(kernels.batches(2), np.empty(0, dtype), 0)
        if arg.record is kernels.CSR:
            import scipy.sparse
            return kernels.csr(scipy.sparse.csr_matrix(np.ones((2, 2), dtype)))
        return kernels.optimizer("sgd", np.zeros(2, dtype), 0.1, momentum=0.5)
    return np.zeros((2,) * arg.ndim, dtype)


def _float_arguments(kernel):
    """[(position, field or None, name)] of every float array a public kernel takes, record
    fields included (``optimizer.state``), in the order the checks see them."""
    from numba_dense.kernels._checks import arguments_of
    found = []
    for i, (name, arg) in enumerate(arguments_of(getattr(kernels, kernel))):
        if arg.kind == "float":
            found.append((i, None, name))
        elif arg.kind == "record":
            found += [(i, field, name + "." + field) for field, f in arg.record.FIELDS.items()
                      if f.kind == "float"]
    return found


def _public_kernels():
    return [name for name in kernels.__all__
            if hasattr(getattr(kernels, name), "_compile_for_args")]


def _mixed_dtype_cases():
    """Every later float array of every kernel; of the long ones (more than four float
    arrays: the epochs, each mixed call ~20 s of compiling before it is refused) the second,
    the record fields and the last."""
    cases = []
    for kernel in _public_kernels():
        floats = _float_arguments(kernel)
        for other in range(1, len(floats)):
            if (len(floats) <= 4 or other in (1, len(floats) - 1)
                    or floats[other][1] is not None):
                cases.append((kernel, other))
    return cases


@pytest.mark.parametrize("kernel, other", _mixed_dtype_cases(),
                         ids=["%s-%d" % c for c in _mixed_dtype_cases()])
def test_every_kernel_refuses_mixed_float_dtypes_in_one_line(kernel, other):
    """float64 first, one later float array float32 (a record's field too): one line naming
    both, whichever array it is."""
    from numba_dense.kernels._checks import arguments_of
    args = [_argument_for(arg, np.float64) for _, arg in arguments_of(getattr(kernels, kernel))]
    floats = _float_arguments(kernel)
    i, field, name = floats[other]
    if field is None:
        args[i] = args[i].astype(np.float32)
    else:
        args[i] = args[i]._replace(**{field: getattr(args[i], field).astype(np.float32)})
    _one_line_error(TypeError, lambda: getattr(kernels, kernel)(*args),
                    "%s: %s has dtype float32 but %s has float64" % (kernel, name, floats[0][2]))


def _flat_cases():
    """(kernel, position, name) of every flat vector a public kernel views layer by layer
    (``Arg.contiguous``)."""
    from numba_dense.kernels._checks import arguments_of
    return [(kernel, i, name) for kernel in _public_kernels()
            for i, (name, arg) in enumerate(arguments_of(getattr(kernels, kernel)))
            if getattr(arg, "contiguous", False)]


@pytest.mark.parametrize("kernel, position, name", _flat_cases(),
                         ids=["%s-%s" % (k, n) for k, _, n in _flat_cases()])
def test_strided_flat_vectors_are_refused_in_one_line(kernel, position, name):
    """A strided params, grads or workspace (``x[::2]``) used to fail in Numba's typing
    with pages of TypingError: refused in one line before anything is compiled."""
    from numba_dense.kernels._checks import arguments_of
    args = [_argument_for(arg, np.float64) for _, arg in arguments_of(getattr(kernels, kernel))]
    args[position] = np.zeros(2 * args[position].size)[::2]
    _one_line_error(ValueError, lambda: getattr(kernels, kernel)(*args),
                    "%s: %s must be C-contiguous" % (kernel, name), "np.ascontiguousarray")


@pytest.mark.parametrize("kernel", ["batch_gradient", "loss_and_gradient", "dropout_gradient"])
def test_read_only_params_of_the_gradient_kernels_are_refused_in_one_line(kernel):
    from numba_dense.kernels._checks import arguments_of
    args = [_argument_for(arg, np.float64) for _, arg in arguments_of(getattr(kernels, kernel))]
    args[2].setflags(write=False)
    _one_line_error(TypeError, lambda: getattr(kernels, kernel)(*args),
                    "%s: params is read-only" % kernel, "pass a writable array")


def test_the_reported_mixed_dtype_calls_get_one_line_errors():
    X = np.ones((3, 4))
    W, b, out = np.ones((2, 4), np.float32), np.zeros(2, np.float32), np.zeros((3, 2), np.float32)
    _one_line_error(TypeError, lambda: kernels.dense_forward(X, W, b, out, True),
                    "dense_forward: W has dtype float32 but X has float64")
    n = _network(np.float32)
    _one_line_error(TypeError, _epoch(n, X=n["X"].astype(np.float64)),
                    "train_epoch: Y has dtype float32 but X has float64")


# ----------------------------------------------------------------------------- big integers

@pytest.mark.parametrize("size", [2**64, -2**63 - 1])
def test_a_batch_size_beyond_int64_gets_one_line(dtype, size):
    n = _network(dtype)
    for _ in range(2):  # before and after a version is compiled for these types
        _epoch(n, params=n["params"].copy())()
        _one_line_error(OverflowError, _epoch(n, batches=kernels.Batches(size, n["batches"].order)),
                        "train_epoch: batches.size must fit int64 (at most 2**63 - 1), got %d"
                        % size)
        _one_line_error(OverflowError, lambda: kernels.predict_into(
            n["X"], n["params"], n["net"], np.empty_like(n["Y"]), size, n["work"]),
            "predict_into: batch_size must fit int64 (at most 2**63 - 1), got %d" % size)


def test_other_integers_beyond_int64_get_one_line():
    sizes = np.array([4, 3, 2])
    kernels.workspace_size(sizes, 8)
    _one_line_error(OverflowError, lambda: kernels.workspace_size(sizes, 2**64),
                    "workspace_size: batch_size must fit int64 (at most 2**63 - 1), got %d"
                    % 2**64)


# ----------------------------------------------------------------------------- int arrays

def _as(kind, a):
    if kind == "list":
        return [int(v) for v in a]
    if kind == "tuple":
        return tuple(int(v) for v in a)
    return np.asarray(a).astype(kind)


INT_KINDS = ["int32", "uint16", "int8", "list", "tuple"]


@pytest.mark.parametrize("kind", INT_KINDS)
def test_network_kernels_accept_integer_arrays_of_any_dtype(dtype, kind):
    """Through the factories, which make every integer field int64 (no new compiled
    version); the int32 records made by hand compile their own version and agree too."""
    n = _network(dtype)
    order = np.array([5, 0, 3, 1, 2, 4])
    results = []
    for convert in (lambda a: a, lambda a: _as(kind, a)):
        params = n["params"].copy()
        net = kernels.network(convert(n["sizes"]), convert(n["acts"]))
        assert net.sizes.dtype == net.acts.dtype == np.int64
        batches = kernels.batches(n["batch"], convert(order))
        assert batches.order.dtype == np.int64
        cost = _epoch(n, params=params, grads=np.zeros_like(params), network=net,
                      batches=batches)()
        out = np.empty_like(n["Y"])
        kernels.predict_into(n["X"], params, net, out, n["batch"], n["work"])
        grads = np.empty_like(params)
        total = kernels.batch_gradient(n["X"], n["Y"], params, grads, net, n["batch"],
                                       n["work"], 1.0)
        mean = kernels.loss_and_gradient(n["X"], n["Y"], params, np.empty_like(params), net,
                                         n["batch"], n["work"])
        summed = kernels.dataset_cost(n["X"], n["Y"], params, net, n["batch"], n["work"])
        results.append((cost, params, out, total, grads, mean, summed))
    for expected, got in zip(*results):
        np.testing.assert_array_equal(got, expected)


def test_records_of_int32_arrays_made_by_hand_give_the_same_results():
    n = _network(np.float64)
    net32 = kernels.Network(n["sizes"].astype(np.int32), n["acts"].astype(np.int32), MSE)
    order = np.array([5, 0, 3, 1, 2, 4])
    results = []
    for net, batches in ((n["net"], kernels.batches(3, order)),
                         (net32, kernels.Batches(3, order.astype(np.int32)))):
        params = n["params"].copy()
        cost = _epoch(n, params=params, network=net, batches=batches)()
        results.append((cost, params, kernels.dataset_cost(n["X"], n["Y"], params, net, 3,
                                                           n["work"])))
    for expected, got in zip(*results):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kind", INT_KINDS)
def test_size_kernels_accept_integer_arrays_of_any_dtype(kind):
    sizes = np.array([7, 5, 3])
    assert kernels.param_count(_as(kind, sizes)) == kernels.param_count(sizes) == 58
    np.testing.assert_array_equal(kernels.layer_offsets(_as(kind, sizes)),
                                  kernels.layer_offsets(sizes))
    assert kernels.workspace_size(_as(kind, sizes), 8) == kernels.workspace_size(sizes, 8)


@pytest.mark.parametrize("empty", [(), [], None], ids=["tuple", "list", "none"])
def test_an_empty_order_may_be_a_tuple_a_list_or_none(empty):
    n = _network(np.float64)
    storage, empty_order = n["params"].copy(), n["params"].copy()
    _epoch(n, params=storage)()
    batches = kernels.batches(n["batch"], empty)
    assert batches.order.shape == (0,) and batches.order.dtype == np.int64
    _epoch(n, params=empty_order, batches=batches)()
    np.testing.assert_array_equal(empty_order, storage)


@pytest.mark.parametrize("empty", [(), [], np.empty(0, np.int64)], ids=["tuple", "list", "array"])
def test_empty_sizes_get_the_kernels_own_error(empty):
    for name in ("param_count", "layer_offsets"):
        _one_line_error(ValueError, lambda: getattr(kernels, name)(empty),
                        name + ": sizes must list at least 2 layer widths (inputs and outputs), "
                        "got 0")
    _one_line_error(ValueError, lambda: kernels.workspace_size(empty, 8),
                    "workspace_size: sizes must list at least 2 layer widths")
    _one_line_error(ValueError, lambda: kernels.param_count([5]),
                    "param_count: sizes must list at least 2 layer widths (inputs and outputs), "
                    "got 1")


@pytest.mark.parametrize("call, error, message", [
    (lambda: kernels.param_count([784.0, 10]), TypeError,
     "param_count: sizes must be integers, got a list of float64"),
    (lambda: kernels.param_count(np.array([True, False])), TypeError,
     "param_count: sizes must be an integer array, got bool"),
    (lambda: kernels.workspace_size(np.array([4.0, 2.0]), 8), TypeError,
     "workspace_size: sizes must be an integer array, got float64"),
    (lambda: kernels.param_count([[3, 2]]), ValueError,
     "param_count: sizes must be 1-D (a vector), got 2-D"),
    (lambda: kernels.param_count(np.array([2**63, 3], np.uint64)), ValueError,
     "param_count: sizes holds 9223372036854775808, more than int64 holds"),
    (lambda: kernels.predict_into(np.zeros((2, 4)), np.zeros(23),
                                  kernels.Network(np.array([4, 3, 2]), np.array([1.0, 0.0]), 0),
                                  np.zeros((2, 2)), 2, np.zeros(100)), TypeError,
     "predict_into: network.acts must be an integer array, got float64"),
    (lambda: kernels.predict_into(np.zeros((2, 4)), np.zeros(23), ([4, 3, 2], [1, 0], 0),
                                  np.zeros((2, 2)), 2, np.zeros(100)), TypeError,
     "predict_into: network must be a kernels.Network (kernels.network(sizes, acts, loss)), "
     "got tuple"),
    (lambda: kernels.network([4, 3, 2], [1.0, 0.0]), TypeError,
     "acts must be a 1-D array of integers, got float64"),
])
def test_unusable_integer_arguments_get_one_line_errors(call, error, message):
    _one_line_error(error, call, message)


@njit
def _user_sizes(sizes, batch_size):
    return (kernels.param_count(sizes), kernels.layer_offsets(sizes)[-1],
            kernels.workspace_size(sizes, batch_size))


def test_user_njit_code_may_pass_other_integer_dtypes():
    expected = _user_sizes(np.array([7, 5, 3]), 8)
    assert _user_sizes(np.array([7, 5, 3], np.int32), 8) == expected
    _one_line_error(TypeError, lambda: _user_sizes(np.array([7.0, 5.0]), 8),
                    "param_count: sizes must be an integer array, got float64")


# ----------------------------------------------------------------------------- the cache

def _read_only_home_and_package(tmp_path):
    """A copy of ``numba_dense.kernels`` (under an empty ``numba_dense``) in a read-only
    folder, and a read-only home, that Numba cannot cache in even as root: a file stands
    where each cache folder would be made."""
    pkg = tmp_path / "site"
    (pkg / "numba_dense").mkdir(parents=True)
    (pkg / "numba_dense" / "__init__.py").write_text("")
    copy = pkg / "numba_dense" / "kernels"
    shutil.copytree(os.path.dirname(kernels.__file__), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "__pycache__").write_text("not a folder")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("not a folder")
    locked = [copy, pkg / "numba_dense", pkg, home]
    for folder in locked:
        folder.chmod(0o555)
    return pkg, home, locked


def _run_python(code, pkg, env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=pkg, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def read_only_install(tmp_path):
    pkg, home, locked = _read_only_home_and_package(tmp_path)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env.update(HOME=str(home), PYTHONPATH=str(pkg), TMPDIR=str(tmp))
    yield pkg, tmp, env
    for folder in locked:
        folder.chmod(stat.S_IRWXU)


CALL_A_KERNEL = """
    import numpy as np
    from numba_dense import kernels
    print(kernels.__file__)
    print(kernels.param_count(np.array([3, 2])))
"""


def test_import_falls_back_to_a_temporary_cache_when_nothing_else_is_writable(
        read_only_install):
    pkg, tmp, env = read_only_install
    result = _run_python(CALL_A_KERNEL, pkg, env)
    assert result.returncode == 0, result.stderr
    file, count = result.stdout.split()
    assert file.startswith(str(pkg)) and count == "8"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kernels: ") and "NUMBA_CACHE_DIR" in lines[0]
    folder = [str(tmp / name) for name in os.listdir(tmp) if name.startswith("numba-dense")]
    assert len(folder) == 1 and folder[0] in lines[0]
    cached = [name for _, _, names in os.walk(folder[0]) for name in names
              if name.endswith(".nbi")]
    assert cached, "nothing was cached in the fallback folder"


def test_import_runs_without_a_cache_when_no_folder_is_writable(read_only_install, tmp_path):
    pkg, tmp, env = read_only_install
    (tmp_path / "a_file").write_text("")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "a_file" / "cache")  # can never be made
    result = _run_python(CALL_A_KERNEL, pkg, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "8"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "compiling without a cache" in lines[0] and "NUMBA_CACHE_DIR" in lines[0]


def test_import_is_silent_where_numba_can_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # writable, whatever the package folder is
    result = subprocess.run([sys.executable, "-c", "from numba_dense import kernels"],
                            capture_output=True, text=True, timeout=600, env=env,
                            cwd=os.path.dirname(os.path.dirname(kernels.__file__)))
    assert result.returncode == 0 and result.stderr == "", result.stderr


# ----------------------------------------------------------------------------- reference counts

def test_kernels_without_reference_counting_leak_and_free_nothing(dtype):
    """The per-minibatch kernels compiled without reference counting (``_cache.BORROWED``)
    take their arrays borrowed: an epoch through them, a forward pass and the costs
    allocate and free exactly as many blocks as before (no leak, no early free), and the
    arrays they were given are still whole afterwards."""
    from numba.core.runtime import _nrt_python, rtsys
    n = _network(dtype, sizes=(20, 40, 6), batch=16, rows=50)  # tiles and loops both
    before_params = n["params"].copy()
    reverse = kernels.batches(16, np.arange(50)[::-1])
    import scipy.sparse as sp
    X_csr = kernels.csr(sp.csr_matrix(np.where(n["X"] > 0.5, n["X"], 0)))
    calls = [_epoch(n), _epoch(n, batches=reverse), _epoch(n, X=X_csr, batches=reverse),
             lambda: kernels.mse_loss(n["Y"], n["Y"] * 0.5),
             lambda: kernels.dense_forward(n["X"], np.ones((5, n["X"].shape[1]), dtype),
                                           np.zeros(5, dtype), np.empty((n["X"].shape[0], 5),
                                                                        dtype), True)]
    for call in calls:
        call()  # compiled (or loaded) outside the count
    _nrt_python.memsys_enable_stats()
    try:
        start = rtsys.get_allocation_stats()
        for _ in range(3):
            for call in calls:
                call()
        end = rtsys.get_allocation_stats()
    finally:
        _nrt_python.memsys_disable_stats()
    allocated = end.alloc - start.alloc
    freed = end.free - start.free
    assert allocated == freed
    assert end.mi_alloc - start.mi_alloc == end.mi_free - start.mi_free
    assert np.isfinite(n["params"]).all() and not np.array_equal(n["params"], before_params)


_BORROWED_RETURNS = textwrap.dedent("""
    import numpy as np, scipy.sparse as sp
    from numba.core import types
    from numba.core.registry import CPUDispatcher
    from numba_dense import kernels
    from numba_dense.kernels import activations, dense, loop, loss, products, sparse, tiled
    rng = np.random.default_rng(0)
    net = kernels.network(np.array([20, 40, 6]), [kernels.TANH, kernels.IDENTITY], kernels.MSE)
    for X in (rng.standard_normal((50, 20)),
              kernels.csr(sp.random(50, 20, density=0.2, format="csr", random_state=0))):
        params = rng.standard_normal(kernels.param_count(net.sizes)) * 0.1
        work = np.zeros(kernels.workspace_size(net.sizes, 16))
        kernels.train_epoch(X, rng.standard_normal((50, 6)), params, np.zeros_like(params), net,
                            kernels.optimizer("adam", params, 0.01), kernels.batches(16), work)
    borrowed = [f for module in (activations, dense, loop, loss, products, sparse, tiled)
                for f in vars(module).values()
                if isinstance(f, CPUDispatcher) and f.targetoptions.get("_nrt") is False]
    for f in borrowed:
        signatures = set(f.nopython_signatures)  # compiled in this process
        files = getattr(f._cache, "_cache_file", None)  # None: Numba's cache is off
        for key in files._load_index() if files else ():  # compiled into it, anywhere
            compiled = f._cache.load_overload(key[0], f.targetctx)
            if compiled is not None:
                signatures.add(compiled.signature)
        for sig in signatures:
            bad = isinstance(sig.return_type, (types.Array, types.BaseTuple, types.List))
            print(f.py_func.__name__, "BAD" if bad else "ok")
""")


def test_no_kernel_without_reference_counting_returns_an_array(tmp_path):
    """A function compiled without reference counting (``_cache.BORROWED``) that returned
    an array would hand its caller a view without the reference the caller frees later: a
    use after free. A float64 dense and CSR epoch are run, which compiles them or loads
    them from Numba's cache; a function loaded inside its caller is not typed again in the
    process, so every version of every such function in the cache is read from there (each
    was saved when it was compiled, in whatever process): none returns an array. When the
    cache lacks one of the epoch's main parts (an index entry lost to two saves at once, a
    callee edited under a cached epoch), the check runs again in an empty cache, where the
    epochs compile everything (three minutes on a Zen 4)."""
    required = {"_forward_batch", "_backward_batch", "tiled_a_b", "_output_delta"}
    for env in (None, dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))):
        result = subprocess.run([sys.executable, "-c", _BORROWED_RETURNS],
                                capture_output=True, text=True, timeout=900, env=env)
        assert result.returncode == 0, result.stderr
        checked = [line.split() for line in result.stdout.splitlines()]
        if required <= {name for name, _ in checked}:
            break
    assert required <= {name for name, _ in checked}, checked
    assert not [name for name, verdict in checked if verdict == "BAD"], checked
