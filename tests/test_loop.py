"""The compiled epoch, prediction and full gradient against their NumPy twins."""

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.kernels.loop import STREAMING_MAX_OUTPUTS

from .conftest import assert_close, random_array

MSE, CE, BCE = kernels.MSE, kernels.SOFTMAX_CE, kernels.SIGMOID_BCE
NETWORKS = [
    # sizes, acts, cost; covers the streaming one-layer path and the BLAS path
    ([5, 1], [kernels.RELU], MSE),
    ([5, 3], [kernels.IDENTITY], MSE),
    ([5, 2], [kernels.TANH], MSE),
    ([37, 2], [kernels.RELU], MSE),  # rows of several cache lines, prefetched near the end
    ([6, STREAMING_MAX_OUTPUTS + 2], [kernels.RELU], MSE),
    ([7, 9, 2], [kernels.RELU, kernels.IDENTITY], MSE),
    ([4, 16, 8, 3], [kernels.RELU, kernels.RELU, kernels.RELU], MSE),
    ([4, 6, 1], [kernels.SIGMOID, kernels.SIGMOID], MSE),
    ([1, 1], [kernels.IDENTITY], MSE),
    ([7, 9, 4], [kernels.TANH, kernels.IDENTITY], CE),
    ([5, 3], [kernels.IDENTITY], CE),
    ([6, 5, 2], [kernels.SIGMOID, kernels.IDENTITY], BCE),
]


def _targets(rng, n, n_out, loss, dtype):
    """Regression targets, one-hot rows (softmax CE) or values in [0, 1] (BCE)."""
    if loss == CE:
        return np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    if loss == BCE:
        return rng.uniform(0, 1, (n, n_out)).astype(dtype)
    return random_array(rng, (n, n_out), dtype)


def _network(sizes, acts, dtype, seed):
    sizes, acts = np.array(sizes, np.int64), np.array(acts, np.int64)
    rng = np.random.default_rng(seed)
    params = random_array(rng, kernels.param_count(sizes), dtype, 0.5)
    return sizes, acts, params


@pytest.mark.parametrize("sizes, acts, cost", NETWORKS)
@pytest.mark.parametrize("order_kind", ["storage", "permutation", "subset"])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 1e-3)])
def test_train_epoch_matches_numpy_loop(dtype, sizes, acts, cost, order_kind, momentum,
                                        weight_decay):
    sizes, acts, params = _network(sizes, acts, dtype, 1)
    rng = np.random.default_rng(2)
    n, batch = 23, 5  # four full batches and one of 3 rows
    X, Y = random_array(rng, (n, sizes[0]), dtype), _targets(rng, n, sizes[-1], cost, dtype)
    order = {"storage": np.empty(0, np.int64), "permutation": rng.permutation(n),
             "subset": rng.permutation(n)[:12]}[order_kind]
    got, want = params.copy(), params.copy()
    v_got, v_want = np.zeros_like(params), np.zeros_like(params)
    work = np.empty(kernels.workspace_size(sizes, batch), dtype)
    for _ in range(2):
        loss = kernels.train_epoch(X, Y, got, np.empty_like(params), v_got, sizes, acts, batch,
                                   0.05, momentum, weight_decay, order, work, cost)
        expected = ref.train_epoch(X, Y, want, np.empty_like(params), v_want, sizes, acts, batch,
                                   0.05, momentum, weight_decay, order, None, cost)
        assert loss == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(got, want, dtype, scale=10)
    assert_close(v_got, v_want, dtype, scale=10)


def test_last_partial_batch_is_averaged_over_its_own_rows():
    # 1,000,000 / 120 of docs/MATH.md in miniature: 10 rows, batch 4 -> 4, 4, 2.
    sizes, acts = np.array([1, 1]), np.array([kernels.IDENTITY])
    X = np.ones((10, 1))
    Y = np.zeros((10, 1))
    params = np.array([1.0, 0.0])  # w = 1, b = 0: every error is 1 before the first step
    # Expected: step by step by hand, each batch's gradient averaged over its rows.
    w, b = 1.0, 0.0
    for m in (4, 4, 2):
        e = w + b  # x = 1, y = 0
        w, b = w - 0.1 * e, b - 0.1 * e  # mean over the batch of e * x is e
    kernels.train_epoch(X, Y, params, np.empty(2), np.empty(0), sizes, acts, 4, 0.1, 0.0, 0.0,
                        np.empty(0, np.int64), np.empty(kernels.workspace_size(sizes, 4)))
    np.testing.assert_allclose(params, [w, b], rtol=1e-14)


@pytest.mark.parametrize("sizes, acts, cost", NETWORKS)
def test_loss_and_gradient_and_predict_match_reference(dtype, sizes, acts, cost):
    sizes, acts, params = _network(sizes, acts, dtype, 3)
    rng = np.random.default_rng(4)
    X, Y = random_array(rng, (37, sizes[0]), dtype), _targets(rng, 37, sizes[-1], cost, dtype)
    work = np.empty(kernels.workspace_size(sizes, 8), dtype)
    grads, expected = np.empty_like(params), np.empty_like(params)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    loss = kernels.loss_and_gradient(X, Y, params, grads, sizes, acts, 8, work, cost)
    want = ref.loss_and_gradient(X, Y, params, expected, sizes, acts, 8, None, cost)
    assert loss == pytest.approx(want, rel=rel)
    assert_close(grads, expected, dtype, scale=10)
    total = kernels.dataset_cost(X, Y, params, sizes, acts, 8, work, cost)
    assert total == pytest.approx(ref.dataset_cost(X, Y, params, sizes, acts, 8, None, cost),
                                  rel=rel)
    assert total == pytest.approx(37 * loss, rel=rel)
    summed = np.empty_like(params)
    assert kernels.batch_gradient(X, Y, params, summed, sizes, acts, 8, work, 1.0, cost) == \
        pytest.approx(total, rel=rel)
    assert_close(summed / 37, grads, dtype, scale=10)
    out, expected_out = np.empty((37, sizes[-1]), dtype), np.empty((37, sizes[-1]), dtype)
    kernels.predict_into(X, params, sizes, acts, out, 8, work)
    ref.predict_into(X, params, sizes, acts, expected_out, 8, None)
    assert_close(out, expected_out, dtype, scale=10)


def test_all_inactive_relu_network_does_not_move():
    sizes, acts = np.array([3, 4, 1]), np.array([kernels.RELU, kernels.RELU])
    params = -np.ones(kernels.param_count(sizes))  # every pre-activation negative
    X, Y = np.abs(np.random.default_rng(0).standard_normal((9, 3))), np.ones((9, 1))
    before = params.copy()
    loss = kernels.train_epoch(X, Y, params, np.empty_like(params), np.empty(0), sizes, acts, 4,
                               0.1, 0.0, 0.0, np.empty(0, np.int64),
                               np.empty(kernels.workspace_size(sizes, 4)))
    assert loss == pytest.approx(0.5)
    np.testing.assert_array_equal(params, before)


def test_train_epoch_stops_with_nan_on_divergence():
    sizes, acts = np.array([2, 1]), np.array([kernels.IDENTITY])
    X, Y = np.full((50, 2), 1e3), np.zeros((50, 1))
    params = np.ones(3)
    loss = kernels.train_epoch(X, Y, params, np.empty(3), np.empty(0), sizes, acts, 1, 10.0, 0.0,
                               0.0, np.empty(0, np.int64),
                               np.empty(kernels.workspace_size(sizes, 1)))
    assert np.isnan(loss)


def _epoch_args(**changes):
    sizes = np.array([3, 4, 2])
    args = dict(X=np.zeros((5, 3)), Y=np.zeros((5, 2)), params=np.zeros(26), grads=np.zeros(26),
                velocity=np.zeros(0), sizes=sizes, acts=np.array([1, 0]), batch_size=2, lr=0.1,
                momentum=0.0, weight_decay=0.0, order=np.empty(0, np.int64),
                workspace=np.zeros(kernels.workspace_size(sizes, 2)))
    args.update(changes)
    return args


@pytest.mark.parametrize("changes, message", [
    (dict(X=np.zeros((5, 4))), "train_epoch: X has 4 columns but sizes[0] has 3"),
    (dict(Y=np.zeros((6, 2))), "train_epoch: Y has 6 rows but X has 5"),
    (dict(Y=np.zeros((5, 3))), "train_epoch: Y has 3 columns but sizes[-1] has 2"),
    (dict(params=np.zeros(25)), "train_epoch: params has 25 elements but the network has 26"),
    (dict(grads=np.zeros(3)), "train_epoch: grads has 3 elements but params has 26"),
    (dict(momentum=0.9), "train_epoch: velocity has 0 elements but params has 26"),
    (dict(order=np.array([0, 1, 2, 3, 5])), "train_epoch: order[4] is 5, outside range(5)"),
    (dict(order=np.array([0, -1])), "train_epoch: order[1] is -1, outside range(5)"),
    (dict(loss=3), "train_epoch: loss is 3, not a cost code"),
    (dict(acts=np.array([1, 1]), loss=1), "train_epoch: the cross-entropy costs take logits"),
    (dict(workspace=np.zeros(3)), "train_epoch: workspace has 3 elements but workspace_size"),
    (dict(acts=np.array([1, 7])), "train_epoch: acts[1] is 7, not an activation code"),
    (dict(acts=np.array([1])), "train_epoch: acts has 1 entries (layers) but sizes has 2"),
    (dict(batch_size=0), "train_epoch: batch_size must be positive, got 0"),
])
def test_train_epoch_refuses_inconsistent_arguments(changes, message):
    args = _epoch_args(**changes)
    before = args["params"].copy()
    with pytest.raises(ValueError) as info:
        kernels.train_epoch(*args.values())
    assert message in str(info.value)
    np.testing.assert_array_equal(args["params"], before)
