"""How many threads the kernels' BLAS uses, chosen by the size of a network's products.

OpenBLAS splits a product over its threads and hands the pieces off for every call. When
the cores are shared with other work, the hand-off waits for a thread that is not
running, and an epoch beside busy processes takes many times its fair share. And for
small products the second thread buys nothing even on a quiet machine. So each epoch
(``blas_threads_for``):

- runs on one BLAS thread when its largest product is below ``SINGLE_THREAD_MAX_MACS``;
- otherwise uses at most as many threads as there are cores that no other process is
  running on at that moment (Linux: runnable tasks from ``/proc/loadavg``, less this
  process's own), so a busy machine gets one thread and a quiet one all of them.

``python -m benchmarks.blas_threads`` measures the crossover and the behaviour under load
(docs/performance.md, "BLAS threads, and a machine that is busy with other work"); both
constants are in ``kernels.config``.

Only the BLAS that the kernels call (SciPy's OpenBLAS) is touched, for the duration of
the ``with`` block, and only ever lowered: a limit the user set (threadpoolctl,
``OPENBLAS_NUM_THREADS``) stays in force.
"""

import contextlib
import ctypes
import os
import time

from .config import READING_REUSE_SECONDS, SINGLE_THREAD_MAX_MACS


def largest_product(sizes, batch_size):
    """Multiply-adds of the largest product one training step makes."""
    sizes = [int(n) for n in sizes]
    return max(int(batch_size) * sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))


def other_running_tasks(samples=3, interval=0.0005):
    """Runnable tasks on this machine other than this process's threads (None if unknown).

    The fewest seen in ``samples`` readings ``interval`` seconds apart, so that a task that
    runs for a moment (a kernel worker, a shell command) does not count as a busy core; a
    process that keeps a core busy is in every reading. Costs ``samples - 1`` waits of
    ``interval``.
    """
    counts = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        count = _other_running_now()
        if count is None:
            return None
        counts.append(count)
    return min(counts)


_last_reading = [None, -1.0]  # (count, time.monotonic() of the reading)


def _recent_other_running_tasks():
    """``other_running_tasks()``, reusing a reading taken in the last
    ``READING_REUSE_SECONDS``."""
    now = time.monotonic()
    if now - _last_reading[1] > READING_REUSE_SECONDS:
        _last_reading[:] = [other_running_tasks(), now]
    return _last_reading[0]


def _other_running_now():
    """``/proc/loadavg``'s count of tasks running or ready to run, less this process's own."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            with open("/proc/self/task/%s/stat" % tid) as f:
                stat = f.read()
            own += stat[stat.rindex(")") + 2] == "R"
    except (OSError, ValueError, IndexError):
        return None
    return max(running - own, 0)


def usable_cores():
    """The cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def free_cores(others=None):
    """The cores no other process is running on now (at least 1): ``usable_cores()`` less
    the other runnable tasks (``/proc/loadavg``, a reading reused for
    ``READING_REUSE_SECONDS``), all usable cores when that cannot be told. ``others``
    overrides the count of other runnable tasks (for tests)."""
    others = _recent_other_running_tasks() if others is None else others
    cores = usable_cores()
    return cores if others is None else max(cores - others, 1)


def blas_threads_for(sizes, batch_size, others=None):
    """The BLAS thread limit for an epoch of this network now, or None for no limit.

    1 when the largest product is too small to gain from more threads; else the number of
    cores no other process is running on (at least 1), None when that is all of them or
    cannot be told. ``others`` overrides the count of other runnable tasks (for tests).
    """
    if largest_product(sizes, batch_size) < SINGLE_THREAD_MAX_MACS:
        return 1
    others = _recent_other_running_tasks() if others is None else others
    if others is None:
        return None
    cores = usable_cores()
    return max(cores - others, 1) if others > 0 else None


class _Control:
    """get/set of the thread count of the kernels' OpenBLAS through its C API (or nothing)."""

    def __init__(self):
        self.get = self.set = None
        path = _bundled_openblas()
        if path is None:
            from ._blas import blas_threadpool
            info = blas_threadpool()
            if not info or info.get("internal_api") != "openblas":
                return
            path, prefixes = info["filepath"], (info.get("prefix") or "openblas",)
        else:
            prefixes = ()
        lib = ctypes.CDLL(path)
        for prefix in prefixes + ("scipy_openblas", "openblas"):
            try:
                get = getattr(lib, prefix + "_get_num_threads")
                set_ = getattr(lib, prefix + "_set_num_threads")
            except AttributeError:
                continue
            get.restype, get.argtypes = ctypes.c_int, []
            set_.restype, set_.argtypes = None, [ctypes.c_int]
            self.get, self.set = get, set_
            return


def _bundled_openblas():
    """The path of the OpenBLAS bundled in SciPy's wheel (``scipy.libs/libscipy_openblas*``)
    when there is exactly one, else None (then threadpoolctl finds the library).

    threadpoolctl's survey of every loaded library took 25 ms, a sixth of a first L-BFGS
    fit on digits in a new process (``benchmarks.lbfgs_vs_sklearn``); the wheel's own
    library is found by name in a fraction of a millisecond."""
    import glob

    import scipy
    libs = os.path.join(os.path.dirname(os.path.dirname(scipy.__file__)), "scipy.libs")
    found = glob.glob(os.path.join(libs, "libscipy_openblas*.so*"))
    return found[0] if len(found) == 1 else None


_control = None


def _get_control():
    global _control
    if _control is None:
        _control = _Control()
    return _control


@contextlib.contextmanager
def blas_threads(limit):
    """Run the block with at most ``limit`` threads in the kernels' BLAS (None: unchanged)."""
    control = _get_control() if limit is not None else None
    if control is None or control.get is None:
        yield
        return
    before = control.get()
    if limit >= before:
        yield
        return
    control.set(limit)
    try:
        yield
    finally:
        control.set(before)


def current_blas_threads():
    """The kernels' BLAS thread count now (None when it cannot be read)."""
    control = _get_control()
    return control.get() if control.get is not None else None
