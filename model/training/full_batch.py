"""The full-batch cost and gradient on every free core: what L-BFGS evaluates.

``kernels.loss_and_gradient`` releases the GIL (every public kernel is compiled with
``nogil=True``), so contiguous ranges of rows run in threads of this process at once, each
with its own gradient and workspace and one BLAS thread. Their weighted means combine
exactly (up to rounding): with part ``p`` of weight ``W_p`` (its rows, or the sum of their
``sample_weight``), the cost is ``sum_p W_p C_p / W`` and the gradient
``sum_p W_p g_p / W``. The ranges are ``model.data.parallel.row_ranges``' (the split of
``predict`` on many rows too).

How many threads: as many as ``kernels.blas_threads_for`` would give the network's BLAS
(one for small products, and only the cores no other process is running on), decided once
per fit. Two threads on a quiet 2-core AMD EPYC (Zen 3) took a float64 evaluation of a
50-64-64-1 network on 20,000 rows from 27-32 ms to 19-21 ms (docs/guide.md, the
"lbfgs" entry of the solvers).
"""

from concurrent.futures import wait

import numpy as np

from ... import kernels
from ...kernels import config as kernel_config
from ...kernels.threads import usable_cores
from ..data.parallel import helper_pool, row_ranges
from ..data.validation import kernel_rows
from .loop import network_record, workspace
from . import signals

#: The fewest rows worth a thread of their own (scikit-learn's digits, 1,797 rows
#: through 64-64, took 0.11 s a fit in one part and in two: the hand-off, about 50 us an
#: evaluation, is what a smaller part could not repay; ``python -m
#: benchmarks.lbfgs_vs_sklearn --datasets digits``).
MIN_PART_ROWS = 256

#: Rows per kernel block at most: the whole part up to this many (block sizes from 1,024 to
#: 4,096 timed the same where the products go to BLAS; ``python -m
#: benchmarks.lbfgs_vs_sklearn --block N``).
BLOCK_ROWS = 2048
#: A block of fewer rows than this is not worth keeping the products in register tiles:
#: networks wider than that go to BLAS in blocks of ``BLOCK_ROWS``. With 32-byte tiles
#: (forced on an AMD EPYC Zen 5, whose crossover 2^18 allows 64-row blocks of a 64-wide
#: network) the make_regression fit of ``benchmarks.lbfgs_vs_sklearn`` took 3.76 s in
#: 64-row blocks against 2.13 s in 2,048-row BLAS blocks.
MIN_TILED_BLOCK_ROWS = 256
#: Rows per block when set (``benchmarks.lbfgs_vs_sklearn --block``), instead of
#: ``block_rows``'s choice.
FIXED_BLOCK_ROWS = None


def block_rows(sizes):
    """Rows per kernel block for a network of layer ``sizes``: the most, up to
    ``BLOCK_ROWS``, for which every product of its widest layer stays in register tiles
    (``kernels.config``'s ``*_TILED_MAX_MACS`` in force, tuned or packaged), rounded down to
    a multiple of 8; ``BLOCK_ROWS`` when that would be fewer than ``MIN_TILED_BLOCK_ROWS``
    (layers wide enough for BLAS to win). On scikit-learn's digits (1,797 rows, 64-64-64-10,
    float64) blocks of 256 rows instead of whole 900-row parts in BLAS took an lbfgs fit
    from 0.041-0.042 s to 0.035-0.036 s on an AMD EPYC Zen 5 with 64-byte tiles, and the
    make_regression fit (20,000 x 50, 64-64) from 2.09 s to 1.09 s (``python -m
    benchmarks.lbfgs_vs_sklearn --block N``)."""
    if FIXED_BLOCK_ROWS:
        return int(FIXED_BLOCK_ROWS)
    widest = max(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))
    limit = min(kernel_config.FORWARD_TILED_MAX_MACS, kernel_config.BACKPROP_TILED_MAX_MACS,
                kernel_config.GRADIENT_TILED_MAX_MACS)
    rows = limit // max(widest, 1) // 8 * 8
    return BLOCK_ROWS if rows < MIN_TILED_BLOCK_ROWS else min(rows, BLOCK_ROWS)


class FullBatch:
    """``evaluate(theta)``: the weighted mean cost of ``net`` on X (N, n_0) dense or SciPy
    sparse, Y (N, n_L), and its gradient (P,) float64, with ``net.params`` set to
    ``theta`` (cast to the network's dtype). ``sample_weight`` (N,) float64 or None.
    Use as a context manager: it holds the BLAS thread limit (the worker threads are
    ``model.data.parallel.helper_pool``'s, kept between fits)."""

    def __init__(self, net, X, Y, sample_weight=None):
        n = X.shape[0]
        self.net = net
        self.network = network_record(net)
        self.block = min(n, block_rows(net.sizes))
        limit = kernels.blas_threads_for(net.sizes, self.block)  # None: every core
        threads = usable_cores() if limit is None else int(limit)
        parts = max(1, min(threads, n // MIN_PART_ROWS))
        self.parts = []
        for a, b in row_ranges(n, parts):
            weights = None if sample_weight is None else sample_weight[a:b]
            weight = float(b - a if weights is None else weights.sum())
            if weight > 0:  # a part that counts for nothing adds nothing
                extra = {} if weights is None else {"sample_weight": weights}
                self.parts.append((kernel_rows(X[a:b]), Y[a:b], extra, weight,
                                   np.empty_like(net.grads),
                                   workspace(net, min(self.block, b - a))))
        self.weight = sum(part[3] for part in self.parts)
        # one BLAS thread per worker when the rows are split; else the BLAS's choice
        self._blas = 1 if len(self.parts) > 1 else limit
        self._pool = None
        self._limit = None

    def __enter__(self):
        self._limit = kernels.blas_threads(self._blas)
        self._limit.__enter__()
        if len(self.parts) > 1:
            self._pool = helper_pool(len(self.parts) - 1)
        return self

    def __exit__(self, *exc):
        return self._limit.__exit__(*exc)

    def _part(self, part):
        X, Y, extra, _, grads, work = part
        return kernels.loss_and_gradient(X, Y, self.net.params, grads, self.network,
                                         min(self.block, Y.shape[0]), work, **extra)

    def evaluate(self, theta):
        """(cost, gradient float64 (P,)) at parameters ``theta``. Raises
        ``KeyboardInterrupt`` once the search or ensemble running this fit on a thread of
        its own has been told to stop (``signals.stop_requested``): L-BFGS calls this
        between its steps, its only way back to Python (a threaded search's L-BFGS fits
        ran to their end after Ctrl-C)."""
        signals.raise_if_stopped()
        self.net.params[...] = theta
        if self._pool is None:
            costs = [self._part(part) for part in self.parts]
        else:
            # this thread computes the first part while the pool's threads compute the
            # others: one hand-off fewer (0.2-0.3 ms of an evaluation's 2 ms on digits)
            futures = [self._pool.submit(self._part, part) for part in self.parts[1:]]
            try:
                costs = [self._part(self.parts[0])] + [f.result() for f in futures]
            finally:
                wait(futures)  # an error or Ctrl-C: no thread writes a gradient after this
        cost = 0.0
        grad = np.zeros(self.net.params.shape, np.float64)
        for c, part in zip(costs, self.parts):
            share = part[3] / self.weight
            cost += share * c
            grad += share * part[4]
        return cost, grad
