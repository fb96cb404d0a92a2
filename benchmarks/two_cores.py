"""Would a second core speed up a tabular network's minibatch step? Measures the answer.

    python -m benchmarks.two_cores                 # T1's products, 3 rounds
    python -m benchmarks.two_cores --config T3

SGD's minibatch steps are sequential, so a second core can only share the work inside a
step: each product split in two (rows of the batch for the forward and backprop products,
rows of W for the weight update), a helper thread doing one half while the calling thread
does the other, then a join before the next product, which needs the whole result. This
builds that from the same register tiles training uses (``kernels.tiled``): a helper
thread running compiled code without the GIL, a mailbox of int64 words read and written
with atomic loads and stores (``kernels.sync``'s, which the split epoch's barriers use),
spinning with ``pause`` between reads. It prints

- the round trip of an empty job (post, helper sees it, helper answers, caller sees it);
- an epoch of the configuration's products (forward with W.T copied, backprop, fused
  update; no bias, activation or cost) on one thread and split over two, alternating.

Run it on a quiet machine: a spinning join waits out any other process that holds the
helper's core. x86-64 only (the ``pause`` instruction).
"""

import argparse
import statistics
import threading
import time

import numpy as np
from numba import njit

from numba_dense.kernels.sync import atomic_load, atomic_store, spin_hint
from numba_dense.kernels.tiled import tiled_a_b, transpose_into

from .configs import CONFIGS

POSTED, DONE, KIND, LAYER, START, STOP, QUIT = range(7)  # mailbox words
FORWARD, BACKPROP, UPDATE, NOTHING = range(4)


@njit(nogil=True, cache=True)
def _job(kind, l, r0, r1, X, W, WT, A, D, lr):
    """Rows r0:r1 of one product of layer l (the batch's rows, or W's for the update)."""
    a_in = X if l == 0 else A[l - 1]
    if kind == FORWARD:
        tiled_a_b(a_in[r0:r1], WT[l], A[l][r0:r1], 1.0, 0.0)
    elif kind == BACKPROP:
        tiled_a_b(D[l][r0:r1], W[l], D[l - 1][r0:r1], 1.0, 0.0)
    elif kind == UPDATE:
        tiled_a_b(D[l].T[r0:r1], a_in, W[l][r0:r1], -lr, 1.0)


@njit(nogil=True, cache=True)
def _helper(box, X, W, WT, A, D, lr):
    seen = 0
    while True:
        posted = atomic_load(box, POSTED)
        if posted == seen:
            spin_hint()
            continue
        seen = posted
        if atomic_load(box, QUIT) == 1:
            atomic_store(box, DONE, posted)
            return
        _job(atomic_load(box, KIND), atomic_load(box, LAYER), atomic_load(box, START),
             atomic_load(box, STOP), X, W, WT, A, D, lr)
        atomic_store(box, DONE, posted)


@njit(nogil=True, cache=True)
def _split(box, kind, l, n, X, W, WT, A, D, lr, two):
    """One product: rows 0:n/2 here, n/2:n on the helper (all here when not two)."""
    if not two:
        _job(kind, l, 0, n, X, W, WT, A, D, lr)
        return
    half = n // 2
    posted = box[POSTED] + 1
    atomic_store(box, KIND, kind)
    atomic_store(box, LAYER, l)
    atomic_store(box, START, half)
    atomic_store(box, STOP, n)
    atomic_store(box, POSTED, posted)
    _job(kind, l, 0, half, X, W, WT, A, D, lr)
    while atomic_load(box, DONE) != posted:
        spin_hint()


@njit(nogil=True, cache=True)
def _steps(box, X, W, WT, A, D, lr, n_steps, two):
    m = X.shape[0]
    n_layers = len(W)
    for _ in range(n_steps):
        for l in range(n_layers):
            transpose_into(W[l], WT[l])
            _split(box, FORWARD, l, m, X, W, WT, A, D, lr, two)
        for l in range(n_layers - 1, -1, -1):
            if l > 0:
                _split(box, BACKPROP, l, m, X, W, WT, A, D, lr, two)
            _split(box, UPDATE, l, W[l].shape[0], X, W, WT, A, D, lr, two)


@njit(nogil=True, cache=True)
def _round_trips(box, X, W, WT, A, D, lr, n):
    for _ in range(n):
        _split(box, NOTHING, 0, 2, X, W, WT, A, D, lr, True)


@njit(nogil=True, cache=True)
def _quit(box):
    atomic_store(box, QUIT, 1)
    atomic_store(box, POSTED, box[POSTED] + 1)


def _with_helper(box, args, fn, *fn_args):
    box[:] = 0
    helper = threading.Thread(target=_helper, args=(box,) + args)
    helper.start()
    try:
        start = time.perf_counter()
        fn(box, *fn_args)
        return time.perf_counter() - start
    finally:
        _quit(box)
        helper.join()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="T1", choices=sorted(CONFIGS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    config = CONFIGS[args.config]
    m, sizes = config.batch, config.sizes
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, sizes[0]), dtype=np.float32)
    W = tuple(rng.standard_normal((sizes[l + 1], sizes[l]), dtype=np.float32) * 0.01
              for l in range(len(sizes) - 1))
    WT = tuple(np.empty(w.T.shape, np.float32) for w in W)
    A = tuple(np.zeros((m, w.shape[0]), np.float32) for w in W)
    D = tuple(rng.standard_normal((m, w.shape[0]), dtype=np.float32) * 0.01 for w in W)
    args_ = (X, W, WT, A, D, 1e-6)
    box = np.zeros(8, np.int64)
    n_steps = -(-config.rows // m)
    _steps(box, *args_, 2, False)  # compile
    _with_helper(box, args_, _steps, *args_, 2, True)
    trips = 100_000
    _with_helper(box, args_, _round_trips, *args_, 10)
    rt = min(_with_helper(box, args_, _round_trips, *args_, trips) for _ in range(3)) / trips
    print("round trip of an empty job: %.0f ns" % (rt * 1e9))
    one, two = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        _steps(box, *args_, n_steps, False)
        one.append(time.perf_counter() - start)
        two.append(_with_helper(box, args_, _steps, *args_, n_steps, True))
    a, b = statistics.median(one), statistics.median(two)
    print("%s products, %d steps of batch %d: one thread %.4f s, split over two %.4f s "
          "(%.2fx); %d joins, %.1f us a step" % (config.name, n_steps, m, a, b, a / b,
                                                 n_steps * (3 * len(W) - 1), b / n_steps * 1e6))


if __name__ == "__main__":
    main()
