"""The compiled epoch, prediction and full gradient against their NumPy twins."""

import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.kernels.loop import STREAMING_MAX_OUTPUTS
from numba_dense.kernels.variants import N_LOSSES

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


def _network(sizes, acts, dtype, seed, loss=MSE):
    network = kernels.network(sizes, acts, loss)
    rng = np.random.default_rng(seed)
    params = random_array(rng, kernels.param_count(network.sizes), dtype, 0.5)
    return network, params


@pytest.mark.parametrize("sizes, acts, cost", NETWORKS)
@pytest.mark.parametrize("order_kind", ["storage", "permutation", "subset"])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 1e-3)])
def test_train_epoch_matches_numpy_loop(dtype, sizes, acts, cost, order_kind, momentum,
                                        weight_decay):
    network, params = _network(sizes, acts, dtype, 1, cost)
    rng = np.random.default_rng(2)
    n, batch = 23, 5  # four full batches and one of 3 rows
    X = random_array(rng, (n, sizes[0]), dtype)
    Y = _targets(rng, n, sizes[-1], cost, dtype)
    order = {"storage": None, "permutation": rng.permutation(n),
             "subset": rng.permutation(n)[:12]}[order_kind]
    batches = kernels.batches(batch, order)
    got, want = params.copy(), params.copy()
    opt_got = kernels.optimizer("sgd", got, 0.05, momentum=momentum, weight_decay=weight_decay)
    opt_want = kernels.optimizer("sgd", want, 0.05, momentum=momentum,
                                 weight_decay=weight_decay)
    work = np.empty(kernels.workspace_size(network.sizes, batch), dtype)
    for _ in range(2):
        loss = kernels.train_epoch(X, Y, got, np.empty_like(params), network, opt_got, batches,
                                   work)
        expected = ref.train_epoch(X, Y, want, np.empty_like(params), network, opt_want,
                                   batches, None)
        assert loss == pytest.approx(expected, rel=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(got, want, dtype, scale=10)
    assert_close(opt_got.state, opt_want.state, dtype, scale=10)
    steps = 2 * -(-(n if order is None else len(order)) // batch)
    assert opt_got.steps[0] == opt_want.steps[0] == steps


def _epoch(X, Y, params, network, lr, batch_size, order=None, **hyperparameters):
    """One plain epoch through the records, with fresh grads and workspace."""
    return kernels.train_epoch(
        X, Y, params, np.empty_like(params), network,
        kernels.optimizer("sgd", params, lr, **hyperparameters),
        kernels.batches(batch_size, order),
        np.empty(kernels.workspace_size(network.sizes, batch_size), params.dtype))


def test_last_partial_batch_is_averaged_over_its_own_rows():
    # 1,000,000 / 120 of docs/MATH.md in miniature: 10 rows, batch 4 -> 4, 4, 2.
    network = kernels.network([1, 1], [kernels.IDENTITY])
    X = np.ones((10, 1))
    Y = np.zeros((10, 1))
    params = np.array([1.0, 0.0])  # w = 1, b = 0: every error is 1 before the first step
    # Expected: step by step by hand, each batch's gradient averaged over its rows.
    w, b = 1.0, 0.0
    for m in (4, 4, 2):
        e = w + b  # x = 1, y = 0
        w, b = w - 0.1 * e, b - 0.1 * e  # mean over the batch of e * x is e
    _epoch(X, Y, params, network, 0.1, 4)
    np.testing.assert_allclose(params, [w, b], rtol=1e-14)


@pytest.mark.parametrize("sizes, acts, cost", NETWORKS)
def test_loss_and_gradient_and_predict_match_reference(dtype, sizes, acts, cost):
    network, params = _network(sizes, acts, dtype, 3, cost)
    rng = np.random.default_rng(4)
    X = random_array(rng, (37, sizes[0]), dtype)
    Y = _targets(rng, 37, sizes[-1], cost, dtype)
    work = np.empty(kernels.workspace_size(network.sizes, 8), dtype)
    grads, expected = np.empty_like(params), np.empty_like(params)
    rel = 1e-5 if dtype == np.float32 else 1e-12
    loss = kernels.loss_and_gradient(X, Y, params, grads, network, 8, work)
    want = ref.loss_and_gradient(X, Y, params, expected, network, 8, None)
    assert loss == pytest.approx(want, rel=rel)
    assert_close(grads, expected, dtype, scale=10)
    total = kernels.dataset_cost(X, Y, params, network, 8, work)
    assert total == pytest.approx(ref.dataset_cost(X, Y, params, network, 8, None), rel=rel)
    assert total == pytest.approx(37 * loss, rel=rel)
    summed = np.empty_like(params)
    assert kernels.batch_gradient(X, Y, params, summed, network, 8, work, 1.0) == \
        pytest.approx(total, rel=rel)
    assert_close(summed / 37, grads, dtype, scale=10)
    out, expected_out = np.empty((37, sizes[-1]), dtype), np.empty((37, sizes[-1]), dtype)
    kernels.predict_into(X, params, network, out, 8, work)
    ref.predict_into(X, params, network, expected_out, 8, None)
    assert_close(out, expected_out, dtype, scale=10)


def test_all_inactive_relu_network_does_not_move():
    network = kernels.network([3, 4, 1], [kernels.RELU, kernels.RELU])
    params = -np.ones(kernels.param_count(network.sizes))  # every pre-activation negative
    X, Y = np.abs(np.random.default_rng(0).standard_normal((9, 3))), np.ones((9, 1))
    before = params.copy()
    loss = _epoch(X, Y, params, network, 0.1, 4)
    assert loss == pytest.approx(0.5)
    np.testing.assert_array_equal(params, before)


def test_train_epoch_stops_with_nan_on_divergence():
    network = kernels.network([2, 1], [kernels.IDENTITY])
    X, Y = np.full((50, 2), 1e3), np.zeros((50, 1))
    params = np.ones(3)
    assert np.isnan(_epoch(X, Y, params, network, 10.0, 1))


def test_epoch_streaming_matches_train_epoch_and_its_twin(dtype):
    rng = np.random.default_rng(5)
    network, params = _network([6, 2], [kernels.RELU], dtype, 6)
    X, Y = random_array(rng, (29, 6), dtype), random_array(rng, (29, 2), dtype)
    batches = kernels.batches(4, rng.permutation(29))
    results = []
    for run in ("stream", "epoch", "twin"):
        p = params.copy()
        opt = kernels.optimizer("sgd", p, 0.05, momentum=0.5)
        if run == "stream":
            cost = kernels.epoch_streaming(X, Y, p, np.empty_like(p), opt, kernels.RELU,
                                           batches, 3)
        elif run == "epoch":
            cost = kernels.train_epoch(X, Y, p, np.empty_like(p), network, opt, batches,
                                       np.empty(kernels.workspace_size(network.sizes, 4), dtype))
        else:
            cost = ref.epoch_streaming(X, Y, p, np.empty_like(p), opt, kernels.RELU, batches, 3)
        assert opt.steps[0] == 8
        results.append((cost, p))
    for cost, p in results[1:]:
        assert cost == pytest.approx(results[0][0], rel=1e-5 if dtype == np.float32 else 1e-12)
        assert_close(p, results[0][1], dtype, scale=10)


@pytest.mark.parametrize("act", [kernels.RELU, kernels.IDENTITY, kernels.TANH])
def test_epoch_streaming_passes_of_eight_rows_match_the_twin(dtype, act):
    """The streamed epoch takes ``loop.STREAM_ROWS`` rows a pass: whole passes, a last
    partial pass of each batch (its missing rows repeat the first with a zero error term)
    and batches shorter than one pass, in storage order and shuffled, on three outputs."""
    from numba_dense.kernels.loop import STREAM_ROWS
    rng = np.random.default_rng(11)
    n = 5 * STREAM_ROWS + 3
    X, Y = random_array(rng, (n, 7), dtype), random_array(rng, (n, 3), dtype)
    for size in (STREAM_ROWS, 2 * STREAM_ROWS + 5, STREAM_ROWS - 3, n):
        for order in (np.empty(0, np.int64), rng.permutation(n)):
            _, params = _network([7, 3], [act], dtype, 3)
            batches = kernels.batches(size, order)
            p, q = params.copy(), params.copy()
            cost = kernels.epoch_streaming(X, Y, p, np.empty_like(p),
                                           kernels.optimizer("sgd", p, 0.05), act, batches, 2)
            twin = ref.epoch_streaming(X, Y, q, np.empty_like(q),
                                       kernels.optimizer("sgd", q, 0.05), act, batches, 2)
            assert cost == pytest.approx(twin, rel=1e-5 if dtype == np.float32 else 1e-12)
            assert_close(p, q, dtype, scale=10)


def test_train_epoch_batched_is_train_epoch_without_the_streamed_path(dtype):
    """Bitwise train_epoch's result where the network cannot stream; the batched passes
    (its NumPy twin's result) where train_epoch would stream."""
    rng = np.random.default_rng(8)
    for sizes, acts in (([7, 9, 2], [kernels.RELU, kernels.IDENTITY]), ([6, 2], [kernels.RELU])):
        network, params = _network(sizes, acts, dtype, 9)
        X = random_array(rng, (29, sizes[0]), dtype)
        Y = random_array(rng, (29, sizes[-1]), dtype)
        batches = kernels.batches(4, rng.permutation(29))
        work = np.empty(kernels.workspace_size(network.sizes, 4), dtype)
        results = []
        for kernel in (kernels.train_epoch, kernels.train_epoch_batched):
            p = params.copy()
            opt = kernels.optimizer("adam", p, 0.01)
            results.append((kernel(X, Y, p, np.empty_like(p), network, opt, batches, work),
                            p, opt.state.copy()))
        p = params.copy()
        twin_cost = ref.train_epoch(X, Y, p, np.empty_like(p), network,
                                    kernels.optimizer("adam", p, 0.01), batches, work)
        (cost, p_epoch, s_epoch), (cost_b, p_b, s_b) = results
        if len(sizes) > 2:
            assert cost_b == cost
            np.testing.assert_array_equal(p_b, p_epoch)
            np.testing.assert_array_equal(s_b, s_epoch)
        assert cost_b == pytest.approx(twin_cost, rel=1e-5 if dtype == np.float32 else 1e-12)
        assert_close(p_b, p, dtype, scale=10)


def test_train_epoch_batched_compiles_no_streamed_epoch():
    """What makes it worth having: with ``ahead`` None, Numba's dead-branch pruning removes
    the call of the streamed epoch before typing, so it is never compiled. Checked on the
    pruned IR (Numba's own passes), which costs no compilation."""
    from numba.core import compiler, ir, types
    from numba.core.analysis import dead_branch_prune
    from numba_dense.kernels import loop

    def globals_used(ahead):
        func_ir = compiler.run_frontend(loop._epoch.py_func)
        dead_branch_prune(func_ir, [types.int64] * 9 + [ahead])
        return {inst.value.name for block in func_ir.blocks.values() for inst in block.body
                if isinstance(inst, ir.Assign) and isinstance(inst.value, ir.Global)}
    assert "_streamed_epoch" in globals_used(types.int64)  # train_epoch's
    assert "_streamed_epoch" not in globals_used(types.none)  # train_epoch_batched's
    assert "_forward_batch" in globals_used(types.none)


def test_train_epoch_from_a_users_own_njit_function_that_builds_the_records():
    from numba import njit

    @njit
    def two_epochs(X, Y, params, sizes, acts, lr, state, steps):
        network = kernels.Network(sizes, acts, kernels.MSE)
        optimizer = kernels.Optimizer(kernels.SGD, lr, 0.9, 0.0, False, 0.9, 0.999, 1e-8,
                                      state, steps)
        batches = kernels.Batches(4, np.empty(0, np.int64), np.empty(0, np.float64))
        grads = np.empty_like(params)
        workspace = np.empty(kernels.workspace_size(sizes, 4), params.dtype)
        first = kernels.train_epoch(X, Y, params, grads, network, optimizer, batches, workspace)
        # the factory works here too, its defaults filled
        second = kernels.train_epoch(X, Y, params, grads, network, optimizer,
                                     kernels.batches(4), workspace)
        return first, second

    rng = np.random.default_rng(7)
    network, params = _network([3, 5, 1], [kernels.TANH, kernels.IDENTITY], np.float64, 8)
    X, Y = rng.standard_normal((18, 3)), rng.standard_normal((18, 1))
    got, want = params.copy(), params.copy()
    opt = kernels.optimizer("sgd", got, 0.05, momentum=0.9)
    costs = two_epochs(X, Y, got, network.sizes, network.acts, 0.05, opt.state, opt.steps)
    opt_want = kernels.optimizer("sgd", want, 0.05, momentum=0.9)
    batches = kernels.batches(4)
    expected = [ref.train_epoch(X, Y, want, np.empty_like(want), network, opt_want, batches,
                                None) for _ in range(2)]
    np.testing.assert_allclose(costs, expected, rtol=1e-12)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(opt.state, opt_want.state, rtol=1e-12, atol=1e-12)
    assert opt.steps[0] == 10  # the steps array the user passed in was advanced


def _epoch_args(**changes):
    """The arguments of a valid train_epoch call, with ``changes``: array arguments by name,
    and network / optimizer / batches fields (sizes, acts, loss, momentum, optimizer_code,
    state, size, order)."""
    fields = dict(sizes=[3, 4, 2], acts=[1, 0], loss=MSE, momentum=0.0, state=None, size=2,
                  order=None, optimizer_code=kernels.OPTIMIZERS["sgd"])
    fields.update({k: changes.pop(k) for k in list(changes) if k in fields})
    params = changes.get("params", np.zeros(26))
    optimizer = kernels.optimizer("sgd", params, 0.1)
    optimizer = optimizer._replace(momentum=fields["momentum"], code=fields["optimizer_code"])
    if fields["state"] is not None:
        optimizer = optimizer._replace(state=fields["state"])
    network = kernels.network(fields["sizes"], fields["acts"])._replace(loss=fields["loss"])
    args = dict(X=np.zeros((5, 3)), Y=np.zeros((5, 2)), params=params, grads=np.zeros(26),
                network=network, optimizer=optimizer,
                batches=kernels.batches(2, fields["order"])._replace(size=fields["size"]),
                workspace=np.zeros(kernels.workspace_size(network.sizes, 2)))
    args.update(changes)
    return args


@pytest.mark.parametrize("changes, message", [
    (dict(X=np.zeros((5, 4))), "train_epoch: X has 4 columns but sizes[0] has 3"),
    (dict(Y=np.zeros((6, 2))), "train_epoch: Y has 6 rows but X has 5"),
    (dict(Y=np.zeros((5, 3))), "train_epoch: Y has 3 columns but sizes[-1] has 2"),
    (dict(params=np.zeros(25)), "train_epoch: params has 25 elements but the network has 26"),
    (dict(grads=np.zeros(3)), "train_epoch: grads has 3 elements but params has 26"),
    (dict(momentum=0.9), "train_epoch: optimizer.state has 0 elements but params has 26"),
    (dict(optimizer_code=kernels.OPTIMIZERS["adam"]),
     "train_epoch: optimizer.state has 0 elements but 2 x params has 52"),
    (dict(order=[0, 1, 2, 3, 5]), "train_epoch: batches.order[4] is 5, outside range(5)"),
    (dict(order=[0, -1]), "train_epoch: batches.order[1] is -1, outside range(5)"),
    # the quantile levels' codes fill the range up to N_LOSSES (kernels.quantile_code)
    (dict(loss=N_LOSSES), "train_epoch: loss is %d, not a cost code" % N_LOSSES),
    (dict(loss=-1), "train_epoch: loss is -1, not a cost code"),
    (dict(acts=[1, 1], loss=1), "train_epoch: the cross-entropy costs take logits"),
    (dict(workspace=np.zeros(3)), "train_epoch: workspace has 3 elements but workspace_size"),
    (dict(acts=[1, 7]), "train_epoch: acts[1] is 7, not an activation code"),
    (dict(acts=[1]), "train_epoch: acts has 1 entries but the network has 2 layers "
                     "(len(sizes) - 1)"),
    (dict(size=0), "train_epoch: batch_size must be positive, got 0"),
])
def test_train_epoch_refuses_inconsistent_arguments(changes, message):
    args = _epoch_args(**changes)
    before = args["params"].copy()
    steps = args["optimizer"].steps.copy()
    with pytest.raises(ValueError) as info:
        kernels.train_epoch(*args.values())
    assert message in str(info.value)
    np.testing.assert_array_equal(args["params"], before)
    np.testing.assert_array_equal(args["optimizer"].steps, steps)


def test_matrix_view_is_the_reshape_it_replaces(dtype):
    """kernels.views.matrix_view: the row-major view of a block of a flat vector, as
    ``flat[start:start + r * c].reshape((r, c))`` gives it, sharing its memory; a block
    that does not lie inside the vector raises rather than reading past it."""
    from numba import njit
    from numba_dense.kernels.views import matrix_view

    @njit
    def view_and_write(flat, start, rows, cols):
        V = matrix_view(flat, start, rows, cols)
        if rows > 0 and cols > 0:
            V[rows - 1, cols - 1] = -1.0
        return V.copy()

    for start, rows, cols in ((0, 3, 4), (5, 2, 7), (19, 1, 1), (4, 0, 3), (20, 0, 0)):
        flat = np.arange(20, dtype=dtype)
        expected = flat[start:start + rows * cols].reshape((rows, cols)).copy()
        if rows and cols:
            expected[-1, -1] = -1.0
        np.testing.assert_array_equal(view_and_write(flat, start, rows, cols), expected)
        if rows and cols:
            assert flat[start + rows * cols - 1] == -1.0  # written through the view
    for start, rows, cols in ((18, 1, 3), (-1, 1, 1), (0, 5, 5), (0, -1, 2)):
        with pytest.raises(IndexError, match="does not lie inside"):
            view_and_write(np.zeros(20, dtype), start, rows, cols)
