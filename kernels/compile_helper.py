"""A first run's compile on two cores: a helper process compiles the epoch's backward pass.

Numba compiles one function at a time in a process (its compiler holds a lock), so a first
run's epoch kernel compiles on one core, about 19 s of the README's first command on an AMD
EPYC Zen 5, of which the backward pass (``kernels.loop._backward_batch``) is about 7 s. A
function compiled with ``cache=True`` is written to Numba's cache as soon as its own
compilation ends, and a caller being compiled in another process loads a callee from that
cache instead of compiling it. So on a first run the model layer (``model.training.loop``)
starts this module as a helper process, hands it the epoch kernel's argument types (one
row of zeros for X and Y, empty arrays for the rest), and goes on compiling the validation
cost and then the epoch itself while the helper compiles the backward pass on another core
(``loop._backward_pass_types``); when the epoch reaches its backward pass, it is found in
the cache (the main process waits for the helper, ``finish``, before it compiles the epoch).
Measured in docs/performance.md, "Start-up".

The helper starts only when it can gain: the epoch is neither compiled in this process nor
in Numba's cache, Numba's cache is in use, and another core is free (``threads.free_cores``);
``NUMBA_DENSE_COMPILE_HELPER=0`` in the environment turns it off. Results never depend on
it: a backward pass the helper has not finished by the time the epoch needs it is compiled
by the main process as before, and the two compilations are the same code.

    python -m numba_dense.kernels.compile_helper < pickled-arguments   # what the helper runs
"""

import os
import pickle
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

#: The environment variable that turns the helper off when set to "0".
ENV = "NUMBA_DENSE_COMPILE_HELPER"


def cached(kernel, signature):
    """Whether Numba's cache holds ``kernel``'s version for ``signature`` (a tuple of Numba
    types), read from its index file without loading it. True when it cannot be told (a
    kernel without a cache, or a Numba whose cache is laid out otherwise): no helper then.
    """
    try:
        cache = kernel._cache
        key = cache._index_key(signature, kernel.targetctx.codegen())
        return key in cache._cache_file._load_index()
    except Exception:  # Numba's private cache API: anything unexpected means "don't know"
        return True


def compiled_backward_pass():
    """Whether this process has compiled a backward pass already (for an epoch of other
    types): its callees shared with the next epoch (the products, the checks) are compiled
    then, the main process's compile is short, and a helper, which starts from nothing,
    would make it wait longer than it saves (a float64 fit after a float32 one: 9 s with a
    helper, 6 s without). Loading an epoch from the cache compiles none."""
    from .loop import _backward_batch
    return len(_backward_batch.overloads) > 0


def wanted(kernel, signature):
    """Whether a helper would gain: ``kernel`` (the epoch's Numba dispatcher) will compile
    for ``signature`` in this process, as its first epoch compile
    (``compiled_backward_pass``), Numba's cache is on, no ``NUMBA_DENSE_COMPILE_HELPER=0``,
    and a second core is free now."""
    from ._cache import CACHE
    from .threads import free_cores
    if os.environ.get(ENV, "1") == "0" or not CACHE:
        return False
    if not hasattr(kernel, "overloads") or signature in kernel.overloads:
        return False
    return (not compiled_backward_pass() and not cached(kernel, signature)
            and free_cores() >= 2)


def start(args):
    """Start the helper on ``args`` (the epoch kernel's arguments: X, Y, params, grads,
    network, optimizer, batches, workspace, of the types training will pass; only their
    types matter, so the caller sends empty arrays where it can: ``model.training.loop.
    helped_compiling``); returns the ``subprocess.Popen``, or None when it could not start
    (the main process then compiles everything itself). Its output is discarded: whatever
    it fails to compile, the main process compiles."""
    try:
        data = pickle.dumps(tuple(args), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an argument that does not pickle: no helper
        return None
    process = None
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
        process.stdin.write(data)
        process.stdin.close()
    except OSError:
        stop(process)
        return None
    return process


#: The longest the main process waits for a helper (``finish``) before compiling the
#: backward pass itself, in seconds: a helper takes about 8 s on a free core.
WAIT_SECONDS = 120


def finish(process):
    """Wait for the helper (None: none) to have compiled the backward pass, at most
    ``WAIT_SECONDS``. The main process calls it when all it has left to compile is the
    epoch: without the wait, an epoch that reaches its backward pass before the helper is
    done would compile it again rather than load it."""
    if process is None:
        return
    try:
        process.wait(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        pass  # the main process compiles it too; stop() ends the helper with the block


def stop(process):
    """End the helper if it still runs (the main process needs nothing more from it)."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - a helper stuck in a system call
        process.kill()
        process.wait()


#: The signatures a helper of this process is compiling now, under ``_lock``: fits that
#: start together on threads (a search's, an ensemble's) start one helper between them.
_running = set()
_lock = threading.Lock()


@contextmanager
def backward_pass(kernel, signature, args):
    """Within the block, a helper process compiles the backward pass of ``kernel`` (the
    epoch: ``train_epoch`` or ``train_epoch_batched``) for ``args``, whose Numba types are
    ``signature``, when ``wanted`` and no other block of this process has a helper on it;
    it is stopped when the block ends. Yields the process or None."""
    key = (id(kernel), signature)
    with _lock:
        mine = key not in _running and wanted(kernel, signature)
        if mine:
            _running.add(key)
    process = None
    try:
        process = start(args) if mine else None
        yield process
    finally:
        stop(process)
        if mine:
            with _lock:
                _running.discard(key)


def main():
    """The helper: read the pickled arguments from stdin and compile the backward pass."""
    # A Ctrl-C at the terminal reaches the whole process group: the main process holds it
    # while it compiles and then stops this one; no traceback from here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    args = pickle.loads(sys.stdin.buffer.read())
    from .loop import _backward_pass_types
    _backward_pass_types(*args)


if __name__ == "__main__":
    main()
