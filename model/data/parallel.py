"""Rows on every free core: contiguous ranges of rows in threads of this process.

The compiled kernels release the GIL (every public kernel is compiled with ``nogil=True``),
so ranges of rows run at once in threads, each with its own workspace and one BLAS thread
(a BLAS that split each product over the cores as well would only make the threads wait
for each other). ``model.training.full_batch`` splits the L-BFGS gradient this way;
``forward_into`` splits the forward pass of ``predict``, ``predict_proba`` and ``score``
(``MLP._forward``).

**The same numbers as one thread.** ``kernels.predict_into`` runs ``batch`` rows at a
time, and what a row's outputs are depends on the size of its batch (a product of few
enough multiply-adds goes to register tiles, a larger one to BLAS: their sums round
differently), not on the other rows in it. So the ranges are cut at multiples of the
batch: every batch of the split run holds exactly the rows, and the row count, of the
one-thread run, and its outputs are bitwise those of one thread on one BLAS thread
(``tests/test_predict_parallel.py``). The BLAS thread count does matter: OpenBLAS 0.3.30
(Haswell kernels, the 2-core AMD EPYC of docs/performance.md) on two threads changed the
last bits of 3,136 of 12,325 rows of T1's network (at most 3.6e-7) against one thread.
When fewer than two cores are free ``MLP._forward`` keeps its one-thread path, and there
``kernels.blas_threads_for`` gives one BLAS thread too; so a large prediction is the same
whatever the load. (From ``MLP.SMALL_ROWS`` to ``2 * MIN_THREAD_ROWS`` rows on a quiet
machine the one-thread path lets a BLAS of wide layers use every core, as before.)

**How many threads** (``free_cores``): the cores this process may run on less those
other processes are running on at that moment (``kernels.threads``' load check, reused
for half a second), and no more than the rows give ``MIN_THREAD_ROWS`` each.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from ... import kernels
from ...kernels.threads import _recent_other_running_tasks, usable_cores
from .validation import kernel_rows

#: The fewest rows worth a thread of their own in ``forward_into``. Measured on the 2-core
#: AMD EPYC (Zen 3) of docs/performance.md, quiet (load average 0.9), T1's network
#: (20-64-64-1, float32), ``kernels.predict_into`` in one call against ``forward_into`` on
#: two threads, minimum of 50 calls each::
#:
#:     python -m benchmarks.predict_threads --rows 8192 16384 65536 1000000 --calls 50
#:
#:     rows        one thread   two threads
#:     8,192       1.51 ms      2.08 ms
#:     16,384      1.74 ms      2.63 ms
#:     65,536      9.06 ms      8.84 ms
#:     1,000,000   123.05 ms    100.54 ms
#:
#: Two threads paid only from about 65,536 rows (two of these), and 1.2x at a million: the
#: one-thread forward already runs near the FMA rate of a core, and the start and hand-off
#: of a thread cost 0.3-0.5 ms. (An earlier measurement on a busy machine had put the
#: crossover at 16,384.) A multiple of the 4,096-row batch (``EVAL_BATCH``): ranges are
#: whole batches. Issue 23's per-host tuning is where this crossover belongs.
MIN_THREAD_ROWS = 32768

#: Ranges per thread: a thread whose core another process takes for a while leaves its
#: later ranges to the others.
RANGES_PER_THREAD = 4


_POOL_LOCK = threading.Lock()
_POOL = {"pool": None, "workers": 0, "pid": None}


def helper_pool(workers):
    """A ``ThreadPoolExecutor`` of at least ``workers`` threads, kept for the life of the
    process and shared by ``forward_into`` and ``model.training.full_batch``.

    Why kept: starting two threads and joining them again cost about 7 ms a call on the
    2-core AMD EPYC of docs/performance.md (3 ms to start, 4 ms to join: each waits for a
    thread to be scheduled), a twentieth of a whole L-BFGS fit on scikit-learn's digits.
    Idle threads cost nothing and the interpreter joins them at exit. A forked child (the
    threads do not survive ``fork``) gets a pool of its own; a pool too small for
    ``workers`` is replaced (the old one ends its threads once they are idle)."""
    with _POOL_LOCK:
        pool = _POOL["pool"]
        if pool is None or _POOL["pid"] != os.getpid() or _POOL["workers"] < workers:
            if pool is not None and _POOL["pid"] == os.getpid():
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="numba_dense")
            _POOL.update(pool=pool, workers=max(workers, 1), pid=os.getpid())
        return pool


def free_cores():
    """The cores this process may run on that no other process is running on now (at
    least 1; all of them when that cannot be told)."""
    cores = usable_cores()
    others = _recent_other_running_tasks()
    return cores if others is None else max(cores - others, 1)


def row_ranges(n, parts, align=1):
    """``parts`` contiguous (start, stop) ranges covering ``range(n)``, as equal as cuts at
    multiples of ``align`` allow (fewer when there are fewer than ``parts`` units of
    ``align`` rows); none empty. With ``align`` 1 the cuts of ``np.linspace``."""
    units = -(-n // align)
    parts = max(1, min(parts, units))
    cuts = np.minimum(np.linspace(0, units, parts + 1).astype(int) * align, n)
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def threads_for(n_rows):
    """How many threads ``forward_into`` uses for ``n_rows`` rows: the free cores, no more
    than ``MIN_THREAD_ROWS`` rows each allow (1 without reading the load below twice
    that)."""
    if n_rows < 2 * MIN_THREAD_ROWS:
        return 1
    return max(1, min(free_cores(), n_rows // MIN_THREAD_ROWS))


def forward_into(net, network, X, out, batch, threads):
    """``out`` (N, n_L) = ``kernels.predict_into`` of ``net`` (an ``MLP``: its ``params``
    and ``_workspace(batch)``; ``network`` its ``kernels.Network`` record) for rows X (N,
    n_0) (an array or a SciPy CSR matrix), ``batch`` rows a call, over ``threads`` threads
    (this one and ``threads - 1`` more) with one BLAS thread each: ranges of whole
    batches, taken in turn, bitwise the outputs of one call on one BLAS thread."""
    ranges = row_ranges(X.shape[0], threads * RANGES_PER_THREAD, batch)
    params = net.params
    lock = threading.Lock()
    pending = iter(ranges)
    stop = []

    def worker():
        work = net._workspace(batch)
        while not stop:
            with lock:
                part = next(pending, None)
            if part is None:
                return
            a, b = part
            kernels.predict_into(kernel_rows(X[a:b]), params, network, out[a:b],
                                 min(batch, b - a), work)

    helpers = min(threads, len(ranges)) - 1  # the calling thread is the first worker
    with kernels.blas_threads(1):
        pool = helper_pool(helpers)
        futures = [pool.submit(worker) for _ in range(helpers)]
        try:
            worker()
            for future in futures:
                future.result()
        finally:
            stop.append(True)  # an error or Ctrl-C: the others end after their range
            wait(futures)  # and nothing writes into ``out`` after this returns
    return out
