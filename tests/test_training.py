"""fit's options: schedules, validation, early stopping, checkpoints, partial_fit, progress."""

import json
import math

import numpy as np
import pytest

from numba_dense.model import MLP
from numba_dense.model.training import progress as progress_mod


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5))
    y = np.tanh(X @ rng.standard_normal(5)) + 0.05 * rng.standard_normal(400)
    return X, y


def test_schedules_are_in_the_history(data):
    X, y = data
    net = MLP([5, 4, 1], seed=0)
    h = net.fit(X, y, epochs=5, lr=0.1, schedule="step", step_size=2, gamma=0.5)
    assert h.lr == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    h = net.fit(X, y, epochs=4, lr=0.1, schedule="cosine", min_lr=0.02)
    assert h.lr == pytest.approx([0.02 + 0.04 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    assert net.fit(X, y, epochs=3, lr=0.1).lr == [0.1] * 3


def test_schedule_changes_the_arithmetic(data):
    X, y = data
    a, b = MLP([5, 4, 1], seed=0), MLP([5, 4, 1], seed=0)
    a.fit(X, y, epochs=3, lr=0.1, seed=1)
    b.fit(X, y, epochs=3, lr=0.1, seed=1, schedule="step", step_size=1, gamma=0.5)
    assert not np.array_equal(a.params, b.params)


def test_validation_fraction_holds_out_the_last_rows(data):
    X, y = data
    net = MLP([5, 4, 1], seed=0)
    h = net.fit(X, y, epochs=2, validation_fraction=0.25, shuffle=False)
    assert len(h.val_loss) == 2
    assert h.val_loss[-1] == pytest.approx(net.cost(X[300:], y[300:]), rel=1e-6)
    # and the training rows were only the first 300: same as training on them alone
    other = MLP([5, 4, 1], seed=0)
    other.fit(X[:300], y[:300], epochs=2, shuffle=False)
    np.testing.assert_array_equal(net.params, other.params)


def test_early_stopping_keeps_the_best_parameters():
    # Noisy targets and a wide layer: the validation loss soon stops improving.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = np.tanh(X @ rng.standard_normal(5)) + 0.5 * rng.standard_normal(200)
    kwargs = dict(lr=0.01, momentum=0.9, batch_size=8, validation_fraction=0.3, seed=3)
    net = MLP([5, 64, 1], seed=0)
    h = net.fit(X, y, epochs=100, early_stopping=5, **kwargs)
    assert h.stopped_epoch is not None and h.stopped_epoch < 100
    assert len(h.loss) == len(h.val_loss) == h.stopped_epoch
    assert h.best_epoch == 1 + int(np.argmin(h.val_loss))
    assert h.stopped_epoch - h.best_epoch == 5
    # The parameters are those after the best epoch: rerun that many epochs and compare.
    again = MLP([5, 64, 1], seed=0)
    again.fit(X, y, epochs=h.best_epoch, **kwargs)
    np.testing.assert_array_equal(net.params, again.params)
    assert net.cost(X[140:], y[140:]) == pytest.approx(min(h.val_loss), rel=1e-6)


def test_a_finished_checkpoint_resumes_to_the_same_end(tmp_path, data):
    X, y = data
    kwargs = dict(lr=0.05, momentum=0.9, batch_size=16, seed=7, schedule="cosine")
    whole = MLP([5, 8, 1], seed=0)
    h_whole = whole.fit(X, y, epochs=6, **kwargs)
    path = tmp_path / "ck.npz"
    MLP([5, 8, 1], seed=0).fit(X, y, epochs=6, checkpoint=path, checkpoint_every=4, **kwargs)
    resumed = MLP([5, 8, 1], seed=123)  # another start: the checkpoint must win
    h = resumed.fit(X, y, epochs=6, checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.params, whole.params)
    assert h.loss == h_whole.loss  # nothing left to train: the history comes from the file


def test_resume_from_a_mid_run_checkpoint(tmp_path, data):
    X, y = data
    kwargs = dict(lr=0.05, momentum=0.9, batch_size=16, seed=7, shuffle=True)
    whole = MLP([5, 8, 1], seed=0)
    h_whole = whole.fit(X, y, epochs=5, **kwargs)
    path = tmp_path / "ck.npz"
    MLP([5, 8, 1], seed=0).fit(X, y, epochs=2, checkpoint=path, **kwargs)
    resumed = MLP([5, 8, 1], seed=0)
    h = resumed.fit(X, y, epochs=5, checkpoint=path, resume=True, **kwargs)
    np.testing.assert_array_equal(resumed.params, whole.params)
    np.testing.assert_array_equal(resumed.velocity, whole.velocity)
    assert h.loss == h_whole.loss and len(h.lr) == 5


def test_resume_without_a_checkpoint_starts_afresh(tmp_path, data):
    X, y = data
    a, b = MLP([5, 3, 1], seed=0), MLP([5, 3, 1], seed=0)
    a.fit(X, y, epochs=2, seed=1)
    b.fit(X, y, epochs=2, seed=1, checkpoint=tmp_path / "new.npz", resume=True)
    np.testing.assert_array_equal(a.params, b.params)
    assert (tmp_path / "new.npz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_resume_refuses_another_network_or_other_settings(tmp_path, data):
    X, y = data
    path = tmp_path / "ck.npz"
    MLP([5, 3, 1], seed=0).fit(X, y, epochs=1, checkpoint=path, seed=1)
    with pytest.raises(ValueError, match=r"is of another network: layer_sizes \[5, 3, 1\]"):
        MLP([5, 4, 1]).fit(X, y, epochs=2, checkpoint=path, resume=True, seed=1)
    with pytest.raises(ValueError, match=r"other settings: batch_size=32 \(now 8\)"):
        MLP([5, 3, 1]).fit(X, y, epochs=2, checkpoint=path, resume=True, seed=1, batch_size=8)
    model_file = tmp_path / "model.npz"
    MLP([5, 3, 1]).save(model_file)
    with pytest.raises(ValueError, match="is not a numba-dense checkpoint"):
        MLP([5, 3, 1]).fit(X, y, epochs=2, checkpoint=model_file, resume=True)


def test_checkpoint_holds_the_training_state(tmp_path, data):
    X, y = data
    path = tmp_path / "ck.npz"
    net = MLP([5, 3, 1], seed=0)
    net.fit(X, y, epochs=3, checkpoint=path, checkpoint_every=2, seed=4, momentum=0.5)
    with np.load(path) as f:
        assert int(f["epoch"]) == 3  # every 2 epochs, and at the end
        np.testing.assert_array_equal(f["params"], net.params)
        np.testing.assert_array_equal(f["velocity"], net.velocity)
        assert len(json.loads(str(f["history"]))["loss"]) == 3
        assert "state" in json.loads(str(f["rng_state"]))
    assert MLP.load(path).layer_sizes == [5, 3, 1]  # a checkpoint also loads as a model


def test_partial_fit_equals_one_epoch_over_the_blocks(data):
    X, y = data
    a, b = MLP([5, 4, 1], seed=0), MLP([5, 4, 1], seed=0)
    for block in (slice(0, 160), slice(160, 320), slice(320, 400)):
        assert a.partial_fit(X[block], y[block], batch_size=16, lr=0.05, momentum=0.9) is a
    b.fit(X, y, epochs=1, batch_size=16, lr=0.05, momentum=0.9, shuffle=False,
          standardize_target=False)  # partial_fit trains on y as given
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.velocity, b.velocity)


def test_estimator_protocol_for_clone():
    net = MLP([3, 4, 2], hidden="tanh", output="softmax", seed=5)
    params = net.get_params()
    assert params == dict(layer_sizes=[3, 4, 2], hidden="tanh", output="softmax", loss=None,
                          quantile=None, dtype=np.float32, seed=5, embeddings=None)
    copy = MLP(**params)
    np.testing.assert_array_equal(copy.params, net.params)
    assert net.set_params(hidden="relu") is net and net.hidden == "relu"
    with pytest.raises(ValueError, match="unknown parameters lr"):
        net.set_params(lr=0.1)


def test_progress_bar_shows_rate_and_loss_when_asked(data, capsys):
    X, y = data
    MLP([5, 3, 1], seed=0).fit(X, y, epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "rows/s" in err and "loss" in err


def test_progress_is_silent_unless_wanted(data, capsys):
    X, y = data
    MLP([5, 3, 1], seed=0).fit(X, y, epochs=1, verbose=True)  # stderr is not a terminal
    captured = capsys.readouterr()
    assert captured.err == "" and "epoch 1/1" in captured.out

    class Tty:
        def isatty(self):
            return True
    assert progress_mod.wanted(None, True, Tty())
    assert not progress_mod.wanted(None, False, Tty())
    assert not progress_mod.wanted(False, True, Tty())
    assert progress_mod.wanted(True, False, None)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(schedule="linear"), ValueError, "schedule must be one of 'constant', 'step', 'cosine'"),
    (dict(step_size=0), ValueError, "step_size must be >= 1, got 0"),
    (dict(validation_fraction=1.0), ValueError, "validation_fraction must be >= 0.0 and < 1.0"),
    (dict(early_stopping=3), ValueError, "early_stopping needs validation rows"),
    (dict(resume=True), ValueError, "resume=True needs checkpoint=path"),
    (dict(checkpoint="/no/such/folder/ck.npz"), FileNotFoundError, "checkpoint: folder"),
    (dict(validation_fraction=0.001), ValueError, "validation_fraction=0.001 of 400 rows leaves 0"),
    (dict(validation_fraction=0.1, validation_data=(np.zeros((2, 5)), np.zeros(2))), ValueError,
     "pass validation_data or validation_fraction, not both"),
    (dict(seed=-1), ValueError, "seed must be >= 0"),
])
def test_bad_training_options_are_refused_before_anything_changes(data, kwargs, error, message):
    X, y = data
    net = MLP([5, 3, 1], seed=0)
    before = net.params.copy()
    with pytest.raises(error) as info:
        net.fit(X, y, epochs=1, **kwargs)
    assert message in str(info.value)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("writable", [True, False])
def test_the_kernel_compiled_before_the_first_epoch_is_the_one_the_epochs_run(monkeypatch,
                                                                              writable):
    """Numba types a read-only array apart from a writable one: the kernel compiled before
    epoch 1 was given a writable placeholder whatever the rows, so a table's read-only
    rows (--weight-col, --class-weight) compiled the epoch again inside epoch 1, counted in
    its time (13 s on a first run)."""
    import numba

    from numba_dense.model.training import loop

    compiled, called = [], []
    real = loop.epoch_kernel

    class Recording:
        def __init__(self, kernel):
            self.kernel = kernel
            self.overloads = {}  # nothing compiled yet: compile_kernels compiles

        def compile(self, signature):
            compiled.append(signature)
            return self.kernel.compile(signature)

        def __call__(self, *args):
            called.append(tuple(numba.typeof(a) for a in args))
            return self.kernel(*args)

    monkeypatch.setattr(loop, "epoch_kernel", lambda net, sparse: Recording(real(net, sparse)))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    X.flags.writeable = writable
    MLP([3, 4, 1], seed=0).fit(X, X.sum(axis=1), epochs=1, batch_size=16, n_jobs=1)
    assert called and compiled
    assert called[0][0] == compiled[0][0], (called[0][0], compiled[0][0])
    assert called[0][0].mutable == writable
