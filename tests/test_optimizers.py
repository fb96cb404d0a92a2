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
       decoupled=st.booleans(), t=st.integers(1, 50))
def test_adam_update_matches_reference(p, dtype, seed, decoupled, t):
    rng = np.random.default_rng(seed)
    params, grads = random_array(rng, p, dtype), random_array(rng, p, dtype)
    m, v = random_array(rng, p, dtype, 0.1), np.abs(random_array(rng, p, dtype, 0.1))
    a, am, av = params.copy(), m.copy(), v.copy()
    e, em, ev = params.copy(), m.copy(), v.copy()
    kernels.adam_update(a, grads, am, av, t, 1e-2, 0.9, 0.999, 1e-8, 0.01, decoupled)
    ref.adam_update(e, grads, em, ev, t, 1e-2, 0.9, 0.999, 1e-8, 0.01, decoupled)
    assert_close(am, em, dtype)
    assert_close(av, ev, dtype)
    assert_close(a, e, dtype, scale=10)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "nesterov"])
def test_steps_match_torch_step_by_step(optimizer):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(50)
    param = torch.nn.Parameter(torch.tensor(p0.copy()))
    if optimizer == "nesterov":
        opt = torch.optim.SGD([param], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)
        state = np.zeros(50)
        code, momentum = kernels.SGD, 0.9
    else:
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.AdamW
        opt = cls([param], lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01)
        state = np.zeros(100)
        code, momentum = kernels.OPTIMIZERS[optimizer], 0.0
    lr = 0.05 if optimizer == "nesterov" else 0.01
    mine = p0.copy()
    for t in range(1, 21):
        g = rng.standard_normal(50)
        opt.zero_grad()
        param.grad = torch.tensor(g.copy())
        opt.step()
        kernels.optimizer_step(mine, g, state, code, t, lr, momentum, 0.01, 0.8, 0.99, 1e-6,
                               optimizer == "nesterov")
        np.testing.assert_allclose(mine, param.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_train_epoch_with_adam_matches_the_numpy_loop(dtype, optimizer):
    rng = np.random.default_rng(2)
    sizes, acts = np.array([4, 6, 2]), np.array([kernels.RELU, kernels.IDENTITY])
    P = int(kernels.param_count(sizes))
    X, Y = random_array(rng, (37, 4), dtype), random_array(rng, (37, 2), dtype)
    params = random_array(rng, P, dtype, 0.5)
    work = np.empty(int(kernels.workspace_size(sizes, 8)), dtype)
    code = kernels.OPTIMIZERS[optimizer]
    results = []
    for train in (kernels.train_epoch, ref.train_epoch):
        p, g, state = params.copy(), np.zeros(P, dtype), np.zeros(2 * P, dtype)
        costs = [train(X, Y, p, g, state, sizes, acts, 8, 0.01, 0.0, 0.001,
                       np.empty(0, np.int64), work, kernels.MSE, code, 0.9, 0.999, 1e-8, False,
                       5 * e) for e in range(3)]
        results.append((p, state, costs))
    assert_close(results[0][0], results[1][0], dtype, scale=50)
    assert_close(results[0][1], results[1][1], dtype, scale=50)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-4)


def test_the_one_layer_streaming_epoch_takes_adam_steps_too(dtype):
    rng = np.random.default_rng(3)
    sizes, acts = np.array([5, 1]), np.array([kernels.RELU])
    X, Y = random_array(rng, (40, 5), dtype), random_array(rng, (40, 1), dtype)
    params = random_array(rng, 6, dtype, 0.5)
    work = np.empty(int(kernels.workspace_size(sizes, 8)), dtype)
    out = []
    for train in (kernels.train_epoch, ref.train_epoch):
        p, state = params.copy(), np.zeros(12, dtype)
        train(X, Y, p, np.zeros(6, dtype), state, sizes, acts, 8, 0.01, 0.0, 0.0,
              np.empty(0, np.int64), work, kernels.MSE, kernels.ADAM, 0.9, 0.999, 1e-8, False, 0)
        out.append(p)
    assert_close(out[0], out[1], dtype, scale=50)


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizer=7), "optimizer is 7, not an optimizer code"),
    (dict(optimizer=kernels.ADAM, velocity_size=26),
     "velocity has 26 elements but 2 x params has 52"),
    (dict(optimizer=kernels.ADAM, beta1=1.0), "beta1 and beta2 must be in [0, 1)"),
    (dict(optimizer=kernels.ADAM, eps=0.0), "eps must be positive"),
    (dict(optimizer=kernels.ADAM, step=-1), "step is -1"),
])
def test_bad_optimizer_arguments_are_refused(kwargs, message):
    sizes, acts = np.array([3, 5, 1]), np.array([1, 0])
    X, Y = np.zeros((4, 3)), np.zeros((4, 1))
    P = int(kernels.param_count(sizes))
    state = np.zeros(kwargs.pop("velocity_size", 2 * P))
    args = dict(optimizer=0, beta1=0.9, beta2=0.999, eps=1e-8, nesterov=False, step=0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        kernels.train_epoch(X, Y, np.zeros(P), np.zeros(P), state, sizes, acts, 2, 0.1, 0.5,
                            0.0, np.empty(0, np.int64), np.zeros(200), 0, *args.values())


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
