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

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ... import kernels
from ...kernels.threads import _recent_other_running_tasks, usable_cores
from .validation import kernel_rows

#: The fewest rows worth a thread of their own in ``forward_into`` (two batches). Measured
#: on the 2-core AMD EPYC of docs/performance.md (/proc/cpuinfo: "AMD EPYC"), T1's network
#: (20-64-64-1, float32), ``kernels.predict_into`` in one call (BLAS threads as
#: ``MLP._forward`` gives them) against ``forward_into`` on two threads, minimum of 300
#: calls each::
#:
#:     python -c "from numba_dense.model.data.parallel import _measure; \
#:                _measure(rows=(8192, 16384), calls=300)"
#:
#:     rows     one thread   two threads
#:     8,192    1.38 ms      1.62 ms
#:     16,384   2.79 ms      2.06 ms
#:
#: The machine was never quiet that morning (load average 3: other people's tests), so these
#: are the best moments of a shared machine; at 8,192 rows the start of a thread (0.1-0.15
#: ms) and the hand-off (about 0.3 ms in all at the least) took what the second core saved.
#: Ranges are whole batches (``EVAL_BATCH``, 4,096 rows), so this is a multiple of it.
MIN_THREAD_ROWS = 8192

#: Ranges per thread: a thread whose core another process takes for a while leaves its
#: later ranges to the others.
RANGES_PER_THREAD = 4


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


def forward_into(net, X, out, batch, threads):
    """``out`` (N, n_L) = ``kernels.predict_into`` of ``net`` for rows X (N, n_0) (an array
    or a SciPy CSR matrix), ``batch`` rows a call, over ``threads`` threads (this one and
    ``threads - 1`` more) with one BLAS thread each: ranges of whole batches, taken in
    turn, bitwise the outputs of one call on one BLAS thread."""
    from ..training.loop import network_record, workspace  # training imports this package

    ranges = row_ranges(X.shape[0], threads * RANGES_PER_THREAD, batch)
    network = network_record(net)
    params = net.params
    lock = threading.Lock()
    pending = iter(ranges)
    stop = []

    def worker():
        work = workspace(net, batch)
        while not stop:
            with lock:
                part = next(pending, None)
            if part is None:
                return
            a, b = part
            kernels.predict_into(kernel_rows(X[a:b]), params, network, out[a:b],
                                 min(batch, b - a), work)

    helpers = min(threads, len(ranges)) - 1  # the calling thread is the first worker
    with kernels.blas_threads(1), ThreadPoolExecutor(max(helpers, 1)) as pool:
        futures = [pool.submit(worker) for _ in range(helpers)]
        try:
            worker()
            for future in futures:
                future.result()
        finally:
            stop.append(True)  # an error or Ctrl-C: the others end after their range
    return out


def _measure(sizes=(20, 64, 64, 1), rows=(8192, 16384, 65536), calls=20):
    """The table of ``MIN_THREAD_ROWS``: ``kernels.predict_into`` in one call (the BLAS
    threads ``MLP._forward`` gives one thread) against ``forward_into`` on two threads."""
    import time

    from ..network.mlp import MLP
    from ..training.loop import network_record, workspace
    from .sources import EVAL_BATCH

    net = MLP(list(sizes), seed=0, dtype=np.float32)
    rng = np.random.default_rng(0)
    print("%s float32, minimum of %d calls; %s" % ("-".join(map(str, sizes)), calls,
                                                   _cpu_model()))
    print("rows      one thread   two threads")
    for n in rows:
        X = rng.standard_normal((n, sizes[0])).astype(np.float32)
        out = np.empty((n, sizes[-1]), np.float32)
        batch = min(EVAL_BATCH, n)
        work = workspace(net, batch)
        best = []
        for threads in (1, 2):
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                if threads == 1:
                    with kernels.blas_threads(kernels.blas_threads_for(net.sizes, batch)):
                        kernels.predict_into(X, net.params, network_record(net), out, batch,
                                             work)
                else:
                    forward_into(net, X, out, batch, threads)
                times.append(time.perf_counter() - t)
            best.append(min(times))
        print("%-9s %.2f ms      %.2f ms" % (format(n, ","), best[0] * 1e3, best[1] * 1e3))


def _cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"
