"""The first run's helper process (kernels.compile_helper): it compiles the very version of the
backward pass the epoch calls, into the cache the main process reads, and changes no result."""

import contextlib
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from numba_dense import kernels
from numba_dense.kernels import compile_helper
from numba_dense.kernels.loop import _backward_batch, _backward_pass_types
from numba_dense.model import MLP
from numba_dense.model.training import loop
from numba_dense.model.training import options as fit_options


def _settings(**changes):
    values = dict(epochs=1, batch_size=32, lr=1e-3, schedule="constant", step_size=1,
                  gamma=0.1, min_lr=0.0, shuffle=True, seed=0, early_stopping=None)
    values.update(changes)
    return fit_options.Settings(**values)


def _readme_case():
    """The README's first command's network and settings: float32, Adam, no dropout."""
    return MLP([32, 128, 64, 1], dtype=np.float32, seed=0), _settings(optimizer="adam")


def _other_case():
    """float64, SGD with momentum, dropout, category embeddings."""
    net = MLP([4, 16, 8, 2], dtype=np.float64, seed=0, embeddings={3: (6, 3)})
    return net, _settings(optimizer="sgd", dropout=0.2, batch_size=8,
                          hyperparameters={"momentum": 0.9})


def _backward_call(dispatcher, args):
    """The argument types of the ``_backward_batch`` call that ``dispatcher``'s code makes
    for ``args``, from the typed IR of a fresh, uncached compilation."""
    fresh = numba.njit(nogil=True)(dispatcher.py_func)
    fresh.compile(tuple(numba.typeof(a) for a in args))
    fndesc = fresh.overloads[fresh.signatures[0]].fndesc
    found = set()
    for expr, signature in fndesc.calltypes.items():
        if getattr(expr, "op", None) != "call":
            continue
        callee = fndesc.typemap.get(expr.func.name)
        if isinstance(callee, numba.types.Dispatcher) and callee.dispatcher is _backward_batch:
            found.add(signature.args)
    assert len(found) == 1, found
    return found.pop()


@pytest.mark.parametrize("case", [_readme_case, _other_case], ids=["readme", "other"])
def test_helper_types_the_backward_pass_as_the_epoch_does(case):
    """``_backward_pass_types`` repeats the statements of the epoch that make the backward
    pass's arguments: the two must call it with the same types, or the helper compiles a
    version the epoch never loads."""
    net, settings = case()
    args = loop.epoch_placeholders(net, settings, loop.workspace(net, settings.batch_size),
                                   False)
    assert _backward_call(_backward_pass_types, args) == _backward_call(
        loop.epoch_kernel(net, False), args)


def test_helper_is_wanted_only_for_a_first_compile(monkeypatch):
    net, settings = _readme_case()
    args = loop.epoch_placeholders(net, settings, loop.workspace(net, 32), False)
    signature = tuple(numba.typeof(a) for a in args)
    kernel = loop.epoch_kernel(net, False)
    kernel.compile(signature)  # compiled (or loaded) in this process: nothing to help with
    assert not compile_helper.wanted(kernel, signature)
    monkeypatch.setenv(compile_helper.ENV, "0")
    assert not compile_helper.wanted(kernels.train_epoch_batched, signature[:1])
    # a version this process has not compiled, that the cache does not hold
    monkeypatch.setenv(compile_helper.ENV, "1")
    monkeypatch.setattr(kernels.threads, "free_cores", lambda others=None: 2)
    other = (numba.types.float32[:, :],) + signature[1:]  # X of any layout: not compiled
    assert not compile_helper.cached(kernel, other)
    # this process compiled (or loaded) the epoch above: whether it compiled a backward
    # pass depends on the cache, so both answers are set here
    monkeypatch.setattr(compile_helper, "compiled_backward_pass", lambda: False)
    assert compile_helper.wanted(kernel, other)
    monkeypatch.setattr(compile_helper, "compiled_backward_pass", lambda: True)
    assert not compile_helper.wanted(kernel, other)  # a later compile: no helper
    monkeypatch.setattr(compile_helper, "compiled_backward_pass", lambda: False)
    monkeypatch.setattr(kernels.threads, "free_cores", lambda others=None: 1)
    assert not compile_helper.wanted(kernel, other)


def test_helper_gets_the_types_not_the_parameters(monkeypatch):
    """What goes down the helper's pipe is a few hundred bytes whatever the network's size:
    empty parameters, gradients and optimizer state of the right types."""
    import pickle
    sent = []

    def capture(kernel, signature, args):
        sent.append((signature, args))
        return contextlib.nullcontext()
    monkeypatch.setattr(compile_helper, "backward_pass", capture)
    monkeypatch.setattr(loop.threads, "splits", lambda *a: False)
    net = MLP([500, 1000, 1], dtype=np.float32, seed=0)
    settings = _settings(optimizer="adam")
    with loop.helped_compiling(net, settings, False, None):
        pass
    signature, args = sent[0]
    assert len(pickle.dumps(args)) < 20_000
    full = loop.epoch_placeholders(net, settings, loop.workspace(net, 32), False)
    assert signature == tuple(numba.typeof(a) for a in full)


def test_an_argument_that_does_not_pickle_starts_no_helper(monkeypatch):
    import threading
    monkeypatch.setattr(compile_helper, "wanted", lambda kernel, signature: True)
    with compile_helper.backward_pass(kernels.train_epoch_batched, ("u",),
                                      (threading.Lock(),)) as process:
        assert process is None
    assert not compile_helper._running


_FIT = textwrap.dedent("""
    import sys
    import numpy as np
    from numba_dense.model import MLP
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 32)).astype(np.float32)
    y = X[:, :1] * 2
    net = MLP([32, 128, 64, 1], dtype=np.float32, seed=0)
    net.fit(X, y, epochs=2, batch_size=32, lr=1e-3, seed=0)
    np.save(sys.argv[1], net.params)
""")


def test_helper_fills_the_cache_and_changes_no_result(tmp_path):
    """The helper, run on the README network's arguments with an empty cache, writes the
    backward pass there; a fit that then loads it trains the same parameters as one that
    compiled everything itself (this process)."""
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop(kernels._cache.BASE_ENV, None)
    net, settings = _readme_case()
    args = loop.epoch_placeholders(net, settings, loop.workspace(net, 32), False)
    helper = subprocess.run([sys.executable, "-m", compile_helper.__name__],
                            input=__import__("pickle").dumps(args), env=env, timeout=600,
                            capture_output=True)
    assert helper.returncode == 0, helper.stderr.decode()[-2000:]
    written = [p.name for p in cache.rglob("loop._backward_batch-*.nbi")]
    assert written, sorted(p.name for p in cache.rglob("*"))[:20]
    assert not list(cache.rglob("loop.train_epoch*"))  # only what the helper compiles

    env[compile_helper.ENV] = "0"
    out = tmp_path / "params.npy"
    fit = subprocess.run([sys.executable, "-c", _FIT, str(out)], env=env, timeout=600,
                         capture_output=True, text=True)
    assert fit.returncode == 0, fit.stderr[-2000:]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 32)).astype(np.float32)
    here = MLP([32, 128, 64, 1], dtype=np.float32, seed=0)
    here.fit(X, X[:, :1] * 2, epochs=2, batch_size=32, lr=1e-3, seed=0)
    np.testing.assert_array_equal(np.load(out), here.params)


def test_helper_is_stopped_when_the_block_ends(monkeypatch):
    """A helper still compiling when the main process is done is ended, not left behind."""
    started = []

    def slow(args):
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        started.append(process)
        return process
    monkeypatch.setattr(compile_helper, "wanted", lambda kernel, signature: True)
    monkeypatch.setattr(compile_helper, "start", slow)
    with compile_helper.backward_pass(None, (), ()) as process:
        assert process.poll() is None
    assert started[0].poll() is not None


def test_one_helper_for_fits_that_start_together(monkeypatch):
    """Two blocks on the same signature at once (two fits of a search starting on two
    threads) start one helper, and the next block after them may start one again."""
    started = []

    def fake(args):
        started.append(args)
        return None
    monkeypatch.setattr(compile_helper, "wanted", lambda kernel, signature: True)
    monkeypatch.setattr(compile_helper, "start", fake)
    with compile_helper.backward_pass(kernels.train_epoch_batched, ("s",), 1):
        with compile_helper.backward_pass(kernels.train_epoch_batched, ("s",), 2):
            pass
        with compile_helper.backward_pass(kernels.train_epoch_batched, ("t",), 3):
            pass
    with compile_helper.backward_pass(kernels.train_epoch_batched, ("s",), 4):
        pass
    assert started == [1, 3, 4]


def test_with_a_helper_the_cost_kernel_compiles_first_then_the_main_process_waits(
        monkeypatch):
    """run() and Ensemble's first compile: the validation cost's kernel (which compiles
    the forward pass the epoch shares) is compiled while a helper runs, even without
    validation, and the helper is waited for before the epoch compiles."""
    calls = []
    monkeypatch.setattr(loop, "compile_cost_kernel",
                        lambda net, verbose, sparse=False: calls.append("cost"))
    monkeypatch.setattr(compile_helper, "finish", lambda helper: calls.append(("wait", helper)))
    helper = object()
    for given, validating, expected in (
            (None, False, [("wait", None)]),
            (None, True, ["cost", ("wait", None)]),
            (helper, False, ["cost", ("wait", helper)]),
            (helper, True, ["cost", ("wait", helper)])):
        calls.clear()
        loop.cost_kernel_beside(given, None, False, validating)
        assert calls == expected
