"""Optimizers: Adam/AdamW and Nesterov kernels against their NumPy twins and PyTorch, the
optimizer table, and the optimizer state through fit, checkpoints, files and MPI-free paths."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numba_dense import kernels
from numba_dense.kernels import reference as ref
from numba_dense.kernels import variants
from numba_dense.model import MLP

from .conftest import DTYPES, assert_close, random_array

dtypes = st.sampled_from(DTYPES)


# ----------------------------------------------------------------------------- the tables

def test_every_table_code_is_its_position_and_names_are_unique():
    for table in (variants.ACTIVATION_TABLE, variants.LOSS_TABLE, variants.OPTIMIZER_TABLE):
        assert [row.code for row in table] == list(range(len(table)))
        assert len({row.name for row in table}) == len(table)
    assert kernels.ACTIVATIONS == {a.name: a.code for a in kernels.ACTIVATION_TABLE}
    assert kernels.LOSSES == {c.name: c.code for c in kernels.LOSS_TABLE}
    assert kernels.OPTIMIZERS == {"sgd": 0, "adam": 1, "adamw": 2}
    assert kernels.SCHEDULES == ("constant", "step", "cosine")


def test_the_command_line_offers_what_the_tables_hold():
    out = subprocess.run([sys.executable, "-m", "numba_dense", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for name in list(kernels.ACTIVATIONS) + list(kernels.LOSSES) + list(kernels.OPTIMIZERS):
        assert name in out


def test_leaky_relu_is_an_activation_everywhere():
    code = kernels.ACTIVATIONS["leaky_relu"]
    Z = np.array([[-2.0, 0.0, 3.0]])
    kernels.activation_forward(Z, code)
    np.testing.assert_allclose(Z, [[-0.02, 0.0, 3.0]])
    G = np.ones((1, 3))
    kernels.activation_backward(Z, G, code)
    np.testing.assert_allclose(G, [[0.01, 0.01, 1.0]])
    X = np.random.default_rng(0).standard_normal((64, 3))
    net = MLP([3, 8, 1], hidden="leaky_relu", seed=0, dtype=np.float64)
    h = net.fit(X, X[:, :1] - X[:, 1:2], epochs=3, lr=0.05, shuffle=False)
    assert h.loss[-1] < h.loss[0]


# ----------------------------------------------------------------------------- kernels

@given(p=st.integers(1, 300), dtype=dtypes, seed=st.integers(0, 2**31 - 1),
       name=st.sampled_from(["adam", "adamw"]), t=st.integers(1, 50))
def test_adam_step_matches_reference(p, dtype, seed, name, t):
    rng = np.random.default_rng(seed)
    params, grads = random_array(rng, p, dtype), random_array(rng, p, dtype)
    m, v = random_array(rng, p, dtype, 0.1), np.abs(random_array(rng, p, dtype, 0.1))
    a = params.copy()
    e, em, ev = params.copy(), m.copy(), v.copy()
    opt = kernels.optimizer(name, a, 1e-2, state=np.concatenate([m, v]), step=t - 1,
                            beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
    kernels.optimizer_step(a, grads, opt)
    assert opt.steps[0] == t
    ref._adam_step(e, grads, em, ev, t, opt)
    assert_close(opt.state[:p], em, dtype)
    assert_close(opt.state[p:], ev, dtype)
    assert_close(a, e, dtype, scale=10)


@pytest.mark.parametrize("name, hyperparameters", [
    ("sgd", {}), ("sgd", dict(momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(momentum=0.9, nesterov=True)), ("adam", dict(weight_decay=0.01)),
    ("adamw", dict(weight_decay=0.01, beta1=0.8))])
def test_optimizer_step_matches_its_twin_and_advances_steps(dtype, name, hyperparameters):
    rng = np.random.default_rng(9)
    params = random_array(rng, 40, dtype)
    got, want = params.copy(), params.copy()
    opt_got = kernels.optimizer(name, got, 0.01, step=3, **hyperparameters)
    opt_want = kernels.optimizer(name, want, 0.01, step=3, **hyperparameters)
    for _ in range(4):
        g = random_array(rng, 40, dtype)
        kernels.optimizer_step(got, g, opt_got)
        ref.optimizer_step(want, g, opt_want)
    assert opt_got.steps[0] == opt_want.steps[0] == 7
    assert_close(got, want, dtype, scale=10)
    assert_close(opt_got.state, opt_want.state, dtype, scale=10)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nesterov"])
def test_steps_match_torch_step_by_step(optimizer):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(50)
    param = torch.nn.Parameter(torch.tensor(p0.copy()))
    mine = p0.copy()
    if optimizer == "nesterov":
        opt = torch.optim.SGD([param], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
        record = kernels.optimizer("sgd", mine, 0.05, momentum=0.9, nesterov=True,
                                   weight_decay=0.01)
    else:
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW
        opt = cls([param], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
        record = kernels.optimizer(optimizer, mine, 0.01, beta1=0.8, beta2=0.99, eps=1e-6,
                                   weight_decay=0.01)
    for t in range(1, 21):
        g = rng.standard_normal(50)
        opt.zero_grad()
        param.grad = torch.tensor(g.copy())
        opt.step()
        kernels.optimizer_step(mine, g, record)
        assert record.steps[0] == t
        np.testing.assert_allclose(mine, param.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_train_epoch_with_adam_matches_the_numpy_loop(dtype, optimizer):
    rng = np.random.default_rng(2)
    network = kernels.network([4, 6, 2], [kernels.RELU, kernels.IDENTITY])
    P = int(kernels.param_count(network.sizes))
    X, Y = random_array(rng, (37, 4), dtype), random_array(rng, (37, 2), dtype)
    params = random_array(rng, P, dtype, 0.5)
    work = np.empty(int(kernels.workspace_size(network.sizes, 8)), dtype)
    batches = kernels.batches(8)
    results = []
    for train in (kernels.train_epoch, ref.train_epoch):
        p, g = params.copy(), np.zeros(P, dtype)
        opt = kernels.optimizer(optimizer, p, 0.01, weight_decay=0.001, step=2)
        costs = [train(X, Y, p, g, network, opt, batches, work) for e in range(3)]
        assert opt.steps[0] == 2 + 3 * 5
        results.append((p, opt.state, costs))
    assert_close(results[0][0], results[1][0], dtype, scale=50)
    assert_close(results[0][1], results[1][1], dtype, scale=50)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-4)


def test_the_one_layer_streaming_epoch_takes_adam_steps_too(dtype):
    rng = np.random.default_rng(3)
    network = kernels.network([5, 1], [kernels.RELU])
    X, Y = random_array(rng, (40, 5), dtype), random_array(rng, (40, 1), dtype)
    params = random_array(rng, 6, dtype, 0.5)
    work = np.empty(int(kernels.workspace_size(network.sizes, 8)), dtype)
    out = []
    for train in (kernels.train_epoch, ref.train_epoch):
        p = params.copy()
        opt = kernels.optimizer("adam", p, 0.01)
        train(X, Y, p, np.zeros(6, dtype), network, opt, kernels.batches(8), work)
        assert opt.steps[0] == 5
        out.append(p)
    assert_close(out[0], out[1], dtype, scale=50)


def test_a_schedule_changes_lr_with_replace_and_keeps_the_state():
    rng = np.random.default_rng(5)
    params = rng.standard_normal(12)
    opt = kernels.optimizer("adam", params, 0.1)
    slower = opt._replace(lr=0.01)
    assert slower.lr == 0.01 and opt.lr == 0.1
    assert slower.state is opt.state and slower.steps is opt.steps
    kernels.optimizer_step(params, rng.standard_normal(12), slower)
    assert opt.steps[0] == 1 and np.abs(opt.state).sum() > 0  # the one state, advanced


# ----------------------------------------------------------------------------- records

def test_optimizer_factory_fills_defaults_and_state():
    p32 = np.zeros(7, np.float32)
    sgd = kernels.optimizer("sgd", p32, 0.1)
    assert sgd.code == kernels.SGD and sgd.state.shape == (0,) and sgd.state.dtype == np.float32
    assert sgd.steps.dtype == np.int64 and list(sgd.steps) == [0]
    assert kernels.optimizer("sgd", p32, 0.1, momentum=0.5).state.shape == (7,)
    adam = kernels.optimizer("adamw", np.zeros(7), 0.1, step=4)
    assert adam.state.shape == (14,) and adam.state.dtype == np.float64
    assert adam.steps[0] == 4
    defaults = {h.name: h.default for h in kernels.HYPERPARAMETER_TABLE if h.name != "lr"}
    assert {k: getattr(adam, k) for k in defaults} == defaults


@pytest.mark.parametrize("name, kwargs, error, message", [
    ("adam", dict(momentum=0.9), ValueError, "momentum applies to optimizer sgd, not 'adam'"),
    ("adamw", dict(nesterov=True), ValueError, "nesterov applies to optimizer sgd, not 'adamw'"),
    ("sgd", dict(beta1=0.5), ValueError, "beta1 applies to optimizer adam or adamw, not 'sgd'"),
    ("sgd", dict(eps=1e-6), ValueError, "eps applies to optimizer adam or adamw, not 'sgd'"),
    ("rmsprop", {}, ValueError, "optimizer must be one of sgd, adam, adamw, got 'rmsprop'"),
    ("sgd", dict(lr=0.0), ValueError, "lr must be in (0, inf), got 0.0"),
    ("sgd", dict(lr=float("nan")), ValueError, "lr must be in (0, inf), got nan"),
    ("sgd", dict(momentum=1.0), ValueError, "momentum must be in [0, 1), got 1.0"),
    ("adam", dict(beta2=-0.1), ValueError, "beta2 must be in [0, 1), got -0.1"),
    ("sgd", dict(weight_decay=-1.0), ValueError, "weight_decay must be in [0, inf), got -1.0"),
    ("sgd", dict(nesterov=1), TypeError, "nesterov must be True or False, got 1"),
    ("sgd", dict(lr="0.1"), TypeError, "lr must be a real number, got '0.1'"),
    ("sgd", dict(gamma=0.1), TypeError, "'gamma' is not an optimizer hyperparameter"),
    ("sgd", dict(step=-1), ValueError, "step must be >= 0"),
])
def test_optimizer_factory_refuses_bad_hyperparameters(name, kwargs, error, message):
    kwargs = dict(dict(lr=0.1), **kwargs)
    with pytest.raises(error) as info:
        kernels.optimizer(name, np.zeros(4), **kwargs)
    assert message in str(info.value)


def test_every_hyperparameter_in_the_table_is_an_optimizer_field():
    fields = set(kernels.Optimizer._fields)
    for h in kernels.HYPERPARAMETER_TABLE:
        assert h.name in fields and h.help
        assert set(h.optimizers) <= set(kernels.OPTIMIZERS)
        for name in kernels.OPTIMIZERS:
            kwargs = {} if h.name == "lr" or h.default is None else {h.name: h.default}
            if name in h.optimizers:
                kernels.optimizer(name, np.zeros(2), 0.1, **kwargs)
            elif kwargs:
                with pytest.raises(ValueError, match="applies to optimizer"):
                    kernels.optimizer(name, np.zeros(2), 0.1, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(code=7), "optimizer.code is 7, not an optimizer code"),
    (dict(name="adam", state_size=26), "optimizer.state has 26 elements but 2 x params has 52"),
    (dict(name="adam", beta1=1.0), "beta1 and beta2 must be in [0, 1)"),
    (dict(name="adam", eps=0.0), "eps must be positive"),
    (dict(name="adam", steps=np.array([-1])), "optimizer.steps must hold one count >= 0"),
    (dict(name="adam", steps=np.array([0, 0])), "optimizer.steps must hold one count >= 0"),
    (dict(lr=-0.1), "lr must be positive and finite, got -0.1"),
    (dict(momentum=1.5), "momentum must be in [0, 1), got 1.5"),
])
def test_bad_optimizer_records_are_refused(kwargs, message):
    network = kernels.network([3, 5, 1], [1, 0])
    X, Y = np.zeros((4, 3)), np.zeros((4, 1))
    P = int(kernels.param_count(network.sizes))
    params = np.zeros(P)
    name = kwargs.pop("name", "sgd")
    opt = kernels.optimizer(name, params, 0.1, **({"momentum": 0.5} if name == "sgd" else {}))
    if "state_size" in kwargs:
        opt = opt._replace(state=np.zeros(kwargs.pop("state_size")))
    opt = opt._replace(**kwargs)
    with pytest.raises(ValueError) as info:
        kernels.train_epoch(X, Y, params, np.zeros(P), network, opt, kernels.batches(2),
                            np.zeros(200))
    assert "train_epoch: " in str(info.value) and message in str(info.value)
    with pytest.raises(ValueError) as info:
        kernels.optimizer_step(params, np.zeros(P), opt)
    assert "optimizer_step: " in str(info.value) and message in str(info.value)


# ----------------------------------------------------------------------------- the model

@pytest.fixture
def data():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 5))
    return X, X @ rng.standard_normal(5) + 0.1 * rng.standard_normal(300)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_fit_with_adam_learns_and_keeps_its_state(data, optimizer):
    X, y = data
    net = MLP([5, 16, 1], seed=0)
    h = net.fit(X, y, epochs=8, lr=0.01, optimizer=optimizer, weight_decay=1e-4, seed=0)
    assert h.loss[-1] < 0.2 * h.loss[0]
    assert net.optimizer == optimizer and net.velocity.size == 2 * net.params.size
    assert net.step == 8 * -(-300 // 32)


def test_adam_resumes_bit_identically_from_a_checkpoint(tmp_path, data):
    X, y = data
    kwargs = dict(lr=0.01, optimizer="adam", batch_size=16, seed=7)
    whole = MLP([5, 8, 1], seed=0)
    h_whole = whole.fit(X, y, epochs=4, **kwargs)
    path = tmp_path / "ck.npz"
    MLP([5, 8, 1], seed=0).fit(X, y, epochs=2, checkpoint=path, **kwargs)
    resumed = MLP([5, 8, 1], seed=0)
    h = resumed.fit(X, y, epochs=4, checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(resumed.velocity, whole.velocity)
    assert resumed.step == whole.step and h.loss == h_whole.loss


def test_save_and_load_keep_the_optimizer_state(tmp_path, data):
    X, y = data
    net = MLP([5, 4, 1], seed=0)
    net.fit(X, y, epochs=1, optimizer="adam")
    net.save(tmp_path / "net.npz")
    back = MLP.load(tmp_path / "net.npz")
    assert (back.optimizer, back.step) == ("adam", net.step)
    np.testing.assert_array_equal(back.velocity, net.velocity)


def test_partial_fit_with_adam_equals_one_epoch_over_the_blocks(data):
    X, y = data
    a, b = MLP([5, 4, 1], seed=0), MLP([5, 4, 1], seed=0)
    a.fit(X, y, epochs=1, batch_size=20, shuffle=False, optimizer="adam",
          standardize_target=False)  # partial_fit trains on y as given
    for start in range(0, 300, 100):
        b.partial_fit(X[start:start + 100], y[start:start + 100], batch_size=20,
                      optimizer="adam")
    np.testing.assert_array_equal(a.params, b.params)
    assert a.step == b.step == 15


def test_switching_optimizer_starts_a_fresh_state(data):
    X, y = data
    net = MLP([5, 4, 1], seed=0)
    net.fit(X, y, epochs=1, momentum=0.9)
    assert net.velocity.size == net.params.size and np.abs(net.velocity).sum() > 0
    net.fit(X, y, epochs=1, optimizer="adam")
    assert net.velocity.size == 2 * net.params.size and net.step == 10


def test_a_diverging_adam_run_restores_the_state(data):
    X, y = data
    net = MLP([5, 4, 1], seed=0)
    net.fit(X, y, epochs=1, optimizer="adam")
    before = net.snapshot()
    with pytest.raises(FloatingPointError):
        net.fit(X, y * 1e30, epochs=2, optimizer="adam", lr=1e30)
    np.testing.assert_array_equal(net.params, before[0])
    np.testing.assert_array_equal(net.velocity, before[1])
    assert net.step == before[3]


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer="rmsprop"), "optimizer must be one of 'sgd', 'adam', 'adamw'"),
    (dict(beta1=1.0), "beta1 must be >= 0.0 and < 1.0"),
    (dict(eps=0), "eps must be > 0.0"),
])
def test_bad_optimizer_options_are_refused_before_anything_changes(data, kwargs, message):
    X, y = data
    net = MLP([5, 2, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        net.fit(X, y, epochs=1, **kwargs)
    np.testing.assert_array_equal(net.params, before)


def test_command_line_trains_with_adam(tmp_path):
    save = tmp_path / "net.npz"
    result = subprocess.run([sys.executable, "-m", "numba_dense", "train", "--rows", "2000",
                             "--epochs", "2", "--optimizer", "adamw", "--lr", "0.001",
                             "--hidden", "leaky_relu", "--save", str(save)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    net = MLP.load(save)
    assert net.optimizer == "adamw" and net.hidden == "leaky_relu" and net.step > 0
