"""One network on several threads: each minibatch step split between them.

A small network's products are too small for BLAS threads to gain (``kernels.threads``),
so ``train_epoch`` runs it on one core. ``train_epoch_parallel`` runs it on several. Each
minibatch of m rows is cut into ``n_shards`` shards of ``shard_rows`` consecutive rows
(``shard_plan``) and the parameters into blocks of units (``unit_blocks``), and every step
has two phases:

1. **Rows.** Each thread takes its shards (shard s on thread ``s % threads``): the
   forward pass of the shard's rows, then their error terms down to the first layer
   (``loop._backward_deltas``), into the shard's rows of one workspace shared by all, and
   the shard's bias-gradient sums into its own buffer. The forward products' register
   tiles read each layer's ``W.T`` from one shared copy, not a copy made per shard.
2. **Parameters.** After a barrier (``kernels.sync``: atomics, no GIL, no thread started
   per step), each thread takes its blocks (``block_owners``: at most one run of each
   layer's consecutive blocks per thread, so that the threads' columns of ``W.T`` meet
   at few cache lines): the weight gradient of the block's units over all m rows, one
   product of their error terms with the layer's input; their bias gradient, the shards'
   sums added in shard order; the optimizer's update of those weights and biases (plain
   SGD fused into the product, as ``train_epoch`` fuses it); and the block's columns of
   the shared ``W.T``. A second barrier, and the next step reads the new weights.

No gradient is summed across threads: each weight's gradient is one product over the
whole minibatch's rows, as in ``train_epoch``; only the biases' column sums are split.

**The same bits on any number of threads.** The shards and the blocks are fixed by the
network and the batch size, never by the thread count, and each runs the same code on any
thread. So an epoch on 1, 2 or 16 threads gives the same parameters to the last bit
(``tests/test_parallel.py``). It is not bit-identical to ``train_epoch``: products over a
shard's rows and over the whole minibatch's may round differently.

**When it gains.** A shard needs enough rows for its products to run well in the tiles:
at least ``config.SHARD_MIN_MACS`` forward multiply-adds, and a thread's share of a step
enough work to pay for two barriers (``config.SPLIT_MIN_MACS_<k>``, the model layer's).
A minibatch with less is one shard, on one thread. ``python -m benchmarks.step_threads``
measures the crossover (docs/performance.md, "One network on every core"). The model layer
(``model.training.threads``) uses this epoch only where every product is small enough for
the register tiles, so that its threads never run beside BLAS threads.

Dense inputs, no dropout: the CSR epoch keeps its first layer transposed for the epoch and
dropout changes the order of the backward pass (``kernels.loop``); neither is done here.
"""

import math
import threading

import numpy as np

from ._cache import BORROWED, CACHE, njit
from ._checks import (FLAT_OUT, INT, MATRIX, _annotations, argument_problem, as_int64,
                      checked_add, checked_mul)
from .config import BLOCK_MIN_MACS, MAX_SHARDS, SHARD_MIN_MACS, TILE_ROWS, VECTOR_BYTES
from .errors import InvalidTypeError, InvalidValueError, TooLargeError
from .activations import IDENTITY, NEEDS_Z, keep_z_and_activate
from .dense import _forward_transposed
from .loop import (WHOLE_BATCH, _backward_deltas, _batch_weight, _bias_view, _block,
                   _epoch_arguments, _gather_rows, _rows, _weight_view, _workspace_layout,
                   _workspace_size, bias_start, layer_offsets, param_count, prefetch_rows_of)
from .optim import Optimizer, _update_range, is_plain_sgd
from .products import product_at_b
from .records import Batches, Network
from .sync import abort, barrier, new_sync
from .tiled import transpose_into
from .views import matrix_view


def forward_macs_per_row(sizes):
    """Multiply-adds of one row's forward pass: the sum of n_in x n_out over the layers."""
    sizes = [int(n) for n in sizes]
    return sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))


def shard_plan(sizes, batch_size):
    """``(n_shards, shard_rows)`` of a data-parallel step of this network: the largest
    power of two of shards that have at least ``SHARD_MIN_MACS`` forward multiply-adds
    each, at most ``MAX_SHARDS`` (a power of two spreads evenly over 2, 4, ... threads:
    3 shards on 2 threads gave T3 1.20x, 2 shards 1.33x), of equal rows rounded up to a
    multiple of the register tiles' rows (``TILE_ROWS``) where they have that many.
    ``(1, batch_size)`` when the minibatch is too small to split. A minibatch of fewer
    rows (an epoch's last) keeps the shard rows: its last shards are short or empty."""
    batch_size = int(batch_size)
    min_rows = max(math.ceil(SHARD_MIN_MACS / max(forward_macs_per_row(sizes), 1)), 1)
    n_shards = min(batch_size // min_rows, MAX_SHARDS)
    if n_shards < 2:
        return 1, batch_size
    n_shards = 1 << (n_shards.bit_length() - 1)  # a power of two: even on 2, 4, ... threads
    rows = math.ceil(batch_size / n_shards)
    if rows >= TILE_ROWS:
        rows = math.ceil(rows / TILE_ROWS) * TILE_ROWS
    return math.ceil(batch_size / rows), rows


def unit_blocks(sizes, batch_size):
    """(n_blocks, 3) int64: the parameter blocks of a data-parallel step, ``(l, u0, u1)``
    for units ``u0:u1`` of layer ``l`` (its weight rows and biases), layer by layer: each
    layer's units in as many equal blocks as have ``BLOCK_MIN_MACS`` multiply-adds of
    weight gradient over a minibatch, in multiples of ``BLOCK_UNITS`` units (whole register
    tiles, and whole vectors of float32 for the copy of each block's ``W.T``). Fixed by
    the sizes and the batch size alone, so each block's gradient and update are the same
    code on any thread."""
    blocks = []
    for l in range(len(sizes) - 1):
        n_in, n_out = int(sizes[l]), int(sizes[l + 1])
        count = max(n_out * n_in * int(batch_size) // BLOCK_MIN_MACS, 1)
        units = math.ceil(math.ceil(n_out / count) / BLOCK_UNITS) * BLOCK_UNITS
        blocks.extend((l, u, min(u + units, n_out)) for u in range(0, n_out, units))
    return np.array(blocks, np.int64).reshape(-1, 3)


#: Units of a parameter block are a multiple of this: the tiles' rows, and a float32
#: vector's lanes, so that each block's rows of ``W.T`` are copied a vector at a time.
BLOCK_UNITS = max(TILE_ROWS, VECTOR_BYTES // 4)


def block_owners(blocks, sizes, threads):
    """(n_blocks,) int64: the thread of each parameter block, by units x (n_in + 1) of
    work. Layer by layer, largest blocks first, the layer's work is poured into the least
    loaded threads up to a common level (``_filled_shares``), and each of them takes one
    run of the layer's consecutive blocks, those whose middles fall in its share. So each
    thread's columns of the shared ``W.T`` are one stretch of every row: dealt out in turn
    (1, 0, 1, 0, ...), two threads wrote beside each other on every row, sharing a cache
    line at each edge that did not fall on a line's (docs/performance.md, "Blocks of
    consecutive units"). Which thread runs a block changes no result, so this may depend
    on the threads."""
    cost = [int(u1 - u0) * (int(sizes[l]) + 1) for l, u0, u1 in blocks.tolist()]
    layers = {}
    for block, layer in enumerate(blocks[:, 0].tolist()):
        layers.setdefault(layer, []).append(block)
    work = {layer: sum(cost[b] for b in ids) for layer, ids in layers.items()}
    biggest = {layer: max(cost[b] for b in ids) for layer, ids in layers.items()}
    load = [0] * threads
    owners = np.empty(len(blocks), np.int64)
    for layer in sorted(layers, key=lambda l: (-biggest[l], -work[l], l)):
        ranked = sorted(range(threads), key=lambda t: (load[t], t))
        ends = np.cumsum(_filled_shares([load[t] for t in ranked], work[layer]))
        done, i = 0, 0
        for block in layers[layer]:
            middle = done + cost[block] / 2
            while i < threads - 1 and middle >= ends[i]:
                i += 1
            owners[block] = ranked[i]
            load[ranked[i]] += cost[block]
            done += cost[block]
    return owners


def _filled_shares(loads, work):
    """How much of ``work`` each thread of ``loads`` (ascending) takes when it is poured
    into the least loaded ones up to a common level: level - load, or 0 above the level."""
    level = loads[-1]
    for k in range(1, len(loads) + 1):
        level = (work + sum(loads[:k])) / k
        if k == len(loads) or level <= loads[k]:
            break
    return [max(level - load, 0.0) for load in loads]


#: Bytes of a cache line. The arrays that a split epoch's threads share start on one
#: (``_line_aligned``), so that blocks of units ending on a line boundary in one
#: thread's rows of ``W.T`` share no line with the next thread's.
CACHE_LINE = 64


def _line_aligned(n, dtype):
    """An uninitialised (n,) array of ``dtype`` whose first element starts a cache line
    (NumPy aligns only to 16 bytes)."""
    itemsize = np.dtype(dtype).itemsize
    buffer = np.empty(n + CACHE_LINE // itemsize, dtype)
    skip = (-buffer.ctypes.data % CACHE_LINE) // itemsize
    return buffer[skip:skip + n]


@njit(cache=CACHE)
def _parallel_layout(sizes, batch_size):
    """The workspace of a data-parallel epoch: ``train_epoch``'s (``_workspace_layout``:
    activations, Z blocks, the gathered batch), then an error-term block for every layer,
    since the parameter phase reads all of them (``train_epoch``'s two alternate). Returns
    ``(a_starts, z_starts, d_starts, x_start, y_start, total)``."""
    a_starts, z_starts, _, x_start, y_start, _, start = _workspace_layout(sizes, batch_size)
    n_layers = sizes.shape[0] - 1
    d_starts = np.empty(n_layers, np.int64)
    for l in range(n_layers):
        d_starts[l] = start
        start = checked_add(start, checked_mul(batch_size, sizes[l + 1]))
    return a_starts, z_starts, d_starts, x_start, y_start, start


@njit(cache=CACHE, inline="always")
def _transposed_view(flat, offsets, sizes, l):
    """``W.T`` of layer ``l + 1`` (n_l, n_{l+1}) in a flat vector laid out as the
    parameters, each layer's weights stored transposed (biases' places unused)."""
    return matrix_view(flat, offsets[l], sizes[l], sizes[l + 1])


@njit(cache=CACHE)
def _transpose_weights(params, sizes, WT):
    """Every layer's ``W.T`` into WT (``_transposed_view``), at the start of an epoch; the
    parameter blocks keep it up to date after each update (``_parameter_block``)."""
    offsets = layer_offsets(sizes)
    for l in range(sizes.shape[0] - 1):
        transpose_into(_weight_view(params, offsets, sizes, l),
                       _transposed_view(WT, offsets, sizes, l))


@njit(cache=CACHE, **BORROWED)
def _forward_rows(Xb, views, WT, acts, row0):
    """``loop._forward_batch`` (no dropout) for rows ``row0:row0 + m`` of the minibatch,
    the register tiles reading each layer's ``W.T`` from WT instead of copying it: the
    copy costs as much for a shard of 16 rows as for the whole minibatch."""
    params, _, offsets, sizes, work, a_starts, z_starts, _, batch_size = views
    m = Xb.shape[0]
    top = sizes.shape[0] - 2
    a_prev = Xb
    for l in range(top + 1):
        out = _rows(work, a_starts[l], batch_size, sizes[l + 1], row0, m)
        keep = l < top and NEEDS_Z[acts[l]] == 1
        _forward_transposed(a_prev, _weight_view(params, offsets, sizes, l),
                            _transposed_view(WT, offsets, sizes, l),
                            _bias_view(params, offsets, sizes, l), out,
                            IDENTITY if keep else acts[l])
        if keep:
            keep_z_and_activate(out, _rows(work, z_starts[l], batch_size, sizes[l + 1], row0, m),
                                acts[l])
        a_prev = out


@njit(cache=CACHE, **BORROWED)
def _shard_pass(X, Y, s, start, m, shard_rows, views, WT, acts, loss, layout, order,
                batch_weights, scale, shard_db):
    """Forward pass and error terms of shard s (rows ``s * shard_rows`` on) of the
    minibatch at ``start`` (m rows), its bias gradients into its part of ``shard_db``;
    returns its summed cost. Compiled without reference counting (``_cache.BORROWED``):
    it runs once a shard a step, and each view it takes would otherwise cost atomic
    instructions."""
    params, _, offsets, sizes, work, a_starts, _, _, batch_size = views
    x_start, y_start = layout[3], layout[4]
    n_layers = sizes.shape[0] - 1
    lo = s * shard_rows
    hi = min(lo + shard_rows, m)
    if order.shape[0] > 0:
        Xb = _rows(work, x_start, batch_size, sizes[0], lo, hi - lo)
        Yb = _rows(work, y_start, batch_size, sizes[n_layers], lo, hi - lo)
        _gather_rows(X, order, start + lo, Xb)
        _gather_rows(Y, order, start + lo, Yb)
        # this shard's rows of the next minibatch, loading while this one trains
        prefetch_rows_of(X, order, start + batch_size + lo, start + batch_size + hi)
        prefetch_rows_of(Y, order, start + batch_size + lo, start + batch_size + hi)
    else:
        Xb = X[start + lo:start + hi]
        Yb = Y[start + lo:start + hi]
    row0 = WHOLE_BATCH + lo
    _forward_rows(Xb, views, WT, acts, row0)
    weights = batch_weights[lo:hi] if batch_weights.shape[0] > 0 else batch_weights
    B = _bias_count(sizes)
    return _backward_deltas(Yb, views, acts, loss, scale, weights, row0,
                            shard_db[s * B:(s + 1) * B])


@njit(cache=CACHE, inline="always")
def _bias_count(sizes):
    """Biases of the whole network: n_1 + ... + n_L."""
    return bias_start(sizes, sizes.shape[0] - 1)


@njit(cache=CACHE, **BORROWED)
def _parameter_block(X, b, blocks, start, m, used, views, WT, layout, order, shard_db,
                     optimizer, t):
    """Block b of the parameter phase: the weight gradient of its units over all m rows
    of the minibatch (one product of their error terms with the layer's input), their
    bias gradient (the shards' sums added in shard order), the optimizer's step ``t`` on
    those weights and biases, and their rows of WT, the shared ``W.T``."""
    params, grads, offsets, sizes, work, a_starts, _, d_starts, batch_size = views
    l, u0, u1 = blocks[b, 0], blocks[b, 1], blocks[b, 2]
    n_in, n_out = sizes[l], sizes[l + 1]
    delta = _block(work, d_starts[l], batch_size, n_out)[:m, u0:u1]
    if l > 0:
        a_in = _block(work, a_starts[l - 1], batch_size, n_in)[:m]
    elif order.shape[0] > 0:
        a_in = _block(work, layout[3], batch_size, n_in)[:m]
    else:
        a_in = X[start:start + m]
    if is_plain_sgd(optimizer):  # fused as in train_epoch: W -= lr * delta.T @ a_in
        product_at_b(delta, a_in, _weight_view(params, offsets, sizes, l)[u0:u1],
                     -optimizer.lr, 1.0)
    else:
        product_at_b(delta, a_in, _weight_view(grads, offsets, sizes, l)[u0:u1], 1.0, 0.0)
        _update_range(params, grads, optimizer, t, offsets[l] + u0 * n_in,
                      offsets[l] + u1 * n_in, False)
    bias = offsets[l] + n_out * n_in
    B = _bias_count(sizes)
    first = bias_start(sizes, l)
    for u in range(u0, u1):
        total = shard_db[first + u]
        for s in range(1, used):
            total += shard_db[s * B + first + u]
        grads[bias + u] = total
    _update_range(params, grads, optimizer, t, bias + u0, bias + u1, False)
    # the new weights' rows, as columns of the W.T that the next step's forward reads
    transpose_into(_weight_view(params, offsets, sizes, l)[u0:u1],
                   _transposed_view(WT, offsets, sizes, l)[:, u0:u1])


@njit(cache=CACHE, nogil=True)
def _worker(t, threads, X, Y, params, grads, shard_db, WT, sizes, acts, loss, optimizer,
            batch_size, order, weights, workspace, shard_rows, n_shards, blocks, owners, sync,
            costs):
    """Thread t's part of a data-parallel epoch (the module's docstring). Every thread
    walks the same minibatches and computes the same totals; returns the epoch's mean
    cost (NaN after a non-finite batch cost), or NaN when another thread aborted."""
    shuffled = order.shape[0] > 0
    n = order.shape[0] if shuffled else X.shape[0]
    weighted = weights.shape[0] > 0
    layout = _parallel_layout(sizes, batch_size)
    a_starts, z_starts, d_starts = layout[0], layout[1], layout[2]
    views = (params, grads, layer_offsets(sizes), sizes, workspace, a_starts, z_starts,
             d_starts, batch_size)
    n_blocks = blocks.shape[0]
    batch_weights = np.empty(batch_size if weighted else 0, np.float64)
    met = 0
    total = 0.0
    total_weight = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        m = stop - start
        weight = _batch_weight(weights, order, start, m, batch_weights)
        if weight == 0:
            continue  # rows that count for nothing: no step (on every thread alike)
        scale = 1.0 / weight
        step = optimizer.steps[0]
        used = min((m + shard_rows - 1) // shard_rows, n_shards)
        for s in range(t, used, threads):
            costs[s] = _shard_pass(X, Y, s, start, m, shard_rows, views, WT, acts, loss,
                                   layout, order, batch_weights, scale, shard_db)
        met += 1
        if not barrier(sync, met * threads):
            return np.nan
        batch_cost = 0.0
        for s in range(used):
            batch_cost += costs[s]
        for b in range(n_blocks):
            if owners[b] == t:
                _parameter_block(X, b, blocks, start, m, used, views, WT, layout, order,
                                 shard_db, optimizer, step + 1)
        if t == 0:
            optimizer.steps[0] = step + 1  # read by every thread only after the barrier
        met += 1
        if not barrier(sync, met * threads):
            return np.nan
        if not np.isfinite(batch_cost):
            return np.nan
        total += batch_cost
        total_weight += weight
    return total / total_weight if total_weight > 0 else 0.0


@njit(cache=CACHE)
def _check_epoch(X, Y, params, grads, network, optimizer, batches, workspace):
    """The entry checks of ``train_epoch_parallel`` (``train_epoch``'s, ``_epoch_arguments``),
    and the arrays the workers take: ``(sizes, acts, order, weights)``."""
    return _epoch_arguments("train_epoch_parallel", X, Y, params, grads, network,
                            optimizer, batches, workspace, None)[:4]


@njit(cache=CACHE)
def _parallel_size(sizes, batch_size):
    """Elements of ``_parallel_layout``'s workspace (valid sizes checked, as
    ``workspace_size`` checks them)."""
    sizes = as_int64("train_epoch_parallel", "network.sizes", sizes)
    _workspace_size("train_epoch_parallel", sizes, batch_size)
    total = _parallel_layout(sizes, batch_size)[5]
    if total < 0:
        raise TooLargeError("train_epoch_parallel: sizes %s with batch_size %s need more "
                            "than 2**63 - 1 workspace elements, beyond int64", sizes,
                            batch_size)
    return total


def train_epoch_parallel(X: MATRIX, Y: MATRIX, params: FLAT_OUT, grads: FLAT_OUT,
                         network: Network, optimizer: Optimizer, batches: Batches,
                         threads: INT):
    """``train_epoch`` with each minibatch step split between ``threads`` threads (the
    module's docstring): the same parameters on any number of threads.

    X (N, n_0) a matrix (not a CSR record), Y (N, n_L), params and grads (P,), ``network``,
    ``optimizer`` and ``batches`` (a ``Batches`` record: no dropout) as ``train_epoch``'s,
    whose checks and errors apply; ``threads`` >= 1, of which at most
    ``shard_plan(network.sizes, batches.size)[0]`` are used (thread 0 is the calling one;
    the others are started for the epoch and joined before it returns); a ``batches.size``
    beyond X's rows counts as those rows. Its workspace (about ``workspace_size`` plus one
    error term per layer), the shards' bias sums (n_shards x (n_1 + ... + n_L)) and one
    shared ``W.T`` (P) are allocated per call. Returns the epoch's mean cost as
    ``train_epoch`` does (NaN after a non-finite batch cost; the caller restores the
    parameters); ``grads`` holds the last step's gradient (its weights' part only for
    plain SGD, which is fused). Raises ``InvalidValueError`` for ``threads``
    < 1, ``InvalidTypeError`` for a CSR X or a ``Dropout`` record. Not callable from
    compiled code: it starts Python threads. The threads wait for each other at every
    step, so a thread whose core is taken by another process holds back all of them: the
    model layer gives it only cores that no other process is running on.
    """
    if not isinstance(X, np.ndarray):
        raise InvalidTypeError("train_epoch_parallel: X must be a matrix (numpy.ndarray), "
                               "got %s" % type(X).__name__)
    problem = argument_problem("train_epoch_parallel", _ARGUMENTS,
                               (X, Y, params, grads, network, optimizer, batches, threads))
    if problem is not None:
        raise problem[0](problem[1])
    if threads < 1:
        raise InvalidValueError("train_epoch_parallel: threads must be >= 1, got %d" % threads)
    sizes = np.asarray(network.sizes)
    if batches.size < 1:
        raise InvalidValueError("train_epoch_parallel: batches.size must be positive, got %d"
                                % batches.size)
    # a minibatch of more rows than X has is X's rows: the workspace and the shards are
    # sized for those (so a huge batches.size allocates nothing huge). Not the rows of
    # this call's order: the shards of a call on a part of an epoch (model.training's
    # pieces) must be those of the whole epoch's call, or its last minibatch would differ.
    n = len(batches.order) if len(batches.order) else X.shape[0]
    batch_size = max(min(int(batches.size), X.shape[0]), 1)
    batches = batches._replace(size=batch_size)
    n_params = int(param_count(sizes))  # checks the sizes, in one line each
    if params.shape[0] != n_params:  # before the workspace of a network of other sizes
        raise InvalidValueError("train_epoch_parallel: params has %d elements but the network "
                                "(network.sizes %s) has %d" % (params.shape[0],
                                                               list(sizes), n_params))
    n_shards, shard_rows = shard_plan(sizes, batch_size)
    total = int(_parallel_size(sizes, batch_size))
    try:
        workspace = _line_aligned(total, params.dtype)
    except MemoryError:
        raise TooLargeError("train_epoch_parallel: network.sizes %s with minibatches of %d "
                            "rows need a workspace of %d elements, more than can be "
                            "allocated" % (list(sizes), batch_size, total)) from None
    sizes, acts, order, weights = _check_epoch(X, Y, params, grads, network, optimizer,
                                               batches, workspace)
    if n == 0:
        return 0.0
    shard_db = _line_aligned(n_shards * int(np.sum(sizes[1:])), params.dtype)
    shard_db[:] = 0
    costs = np.zeros(n_shards, np.float64)
    WT = _line_aligned(params.shape[0], params.dtype)  # every layer's W.T, for the shards' tiles
    _transpose_weights(params, sizes, WT)
    threads = min(int(threads), n_shards)
    blocks = unit_blocks(sizes, batch_size)
    args = (X, Y, params, grads, shard_db, WT, sizes, acts, int(network.loss), optimizer,
            batch_size, order, weights, workspace, shard_rows, n_shards, blocks,
            block_owners(blocks, sizes, threads))
    return _run(threads, args, costs)


_ARGUMENTS = _annotations(train_epoch_parallel)


def _run(threads, args, costs):
    """Run ``_worker`` on ``threads`` threads, the calling one as thread 0; re-raise the
    first failure of any (the others, waiting at a barrier, return on the abort flag)."""
    sync = new_sync()
    results = [np.nan] * threads
    errors = []

    def body(t):
        try:
            results[t] = _worker(t, threads, *args, sync, costs)
        except BaseException as error:  # noqa: B902 - the others must not wait for it
            errors.append(error)
            abort(sync)

    others = []
    try:
        for t in range(1, threads):
            # started inside the try: a thread that fails to start (or a Ctrl-C between two
            # starts) aborts the barrier, so the ones started do not wait for it for ever
            thread = threading.Thread(target=body, args=(t,), name="numba-dense shard %d" % t,
                                      daemon=True)
            thread.start()
            others.append(thread)
        body(0)
    except BaseException:  # noqa: B902
        abort(sync)
        raise
    finally:
        # every thread is joined before the parameters are handed back, even when a
        # Ctrl-C arrives here: none may still be writing them
        for thread in others:
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:
                    abort(sync)
                    errors.append(KeyboardInterrupt())
    if errors:
        raise errors[0]
    return results[0]
