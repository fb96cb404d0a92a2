"""The epoch loop behind ``MLP.fit``: schedules, validation, early stopping.

Each epoch's minibatches run in compiled code (``kernels.train_epoch``, one call per
segment of the data); this module does what happens between epochs, and saves a
checkpoint (``training.checkpoints``) when asked.
"""

import copy
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import fields
from typing import Protocol

import numba
import numpy as np
from numba.core import event as numba_event

from ... import kernels
from ...kernels import compile_helper
from ...kernels.errors import NumbaDenseError
from ...kernels.loop import streaming_network
from . import checkpoints, progress, threads
from . import options as fit_options
from ..data.sources import EVAL_BATCH
from ..data.validation import is_sparse, kernel_rows
from .history import History
from .signals import TrainingInterrupted, sigint_deferred

SCHEDULES = kernels.SCHEDULES


class DivergedError(NumbaDenseError, FloatingPointError, ValueError):
    """Training produced a NaN or infinite loss; ``params`` hold the last finite values.

    A ``FloatingPointError`` as before, and a ``ValueError`` as well: scikit-learn's MLPs
    raise ``ValueError`` for weights that became non-finite, so code written for them
    catches this too."""

    def __init__(self, message, epoch, history):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


def took_steps(net, optimizer):
    """Record in ``net.step`` the steps an optimizer record has taken."""
    net.step = int(optimizer.steps[0])


def network_record(net):
    """The ``kernels.Network`` of a network, or its ``kernels.Embeddings`` when it reads
    category embeddings."""
    record = kernels.Network(net.sizes, net.acts, int(net.loss_code))
    embeddings = getattr(net, "embeddings", None)
    return record if embeddings is None else embeddings.record(record)


def epoch_kernel(net, sparse):
    """The epoch kernel ``net`` trains with: ``kernels.train_epoch`` for a network its
    streamed path can take (one MSE layer of at most ``STREAMING_MAX_OUTPUTS`` outputs, a
    dense X), else ``kernels.train_epoch_batched``, the same epoch compiled without that
    path: a first run then compiles only what it uses (docs/performance.md, "Start-up")."""
    streams = (streaming_network(len(net.sizes) - 1, int(net.sizes[-1]), int(net.loss_code))
               and not sparse and getattr(net, "embeddings", None) is None)
    return kernels.train_epoch if streams else kernels.train_epoch_batched


def epoch_finds_nonfinite(net, X, weighted):
    """Whether ``fit`` may leave the check of X's values to the first epoch: X a dense
    array in memory (not a file, memmap or sparse matrix), unweighted rows, and an epoch
    that streams (``epoch_kernel``; never split between threads). A NaN or inf in a row
    the streamed epoch trains on always shows: the row's output is NaN or inf (ReLU keeps
    a NaN), so its cost is, and the kernel stops before the step; or the activation
    saturates (``tanh(inf)`` is 1) and the row's gradient ``g * x`` (``_stream_batch``
    adds it for every input, with no test of ``g``) is ``0 * inf``, NaN, which every
    optimizer's update carries into the weights. ``run`` then restores the network and
    runs the check, which names the value (after a Ctrl-C too); a large X of that one-layer
    network is read once fewer (issue 23: a one-epoch ``fit`` of config A within 1.25x
    its epoch)."""
    return (not weighted and isinstance(X, np.ndarray) and not isinstance(X, np.memmap)
            and epoch_kernel(net, False) is kernels.train_epoch)


class Ranks(Protocol):
    """How ``run`` trains and evaluates: ``OneProcess`` here, ``distributed._Ranks`` over
    MPI.

    ``prepare(net, source, settings, verbose)`` compiles (or loads) the kernels before the
    first epoch, inside the context manager ``compiling(net, source, settings)`` (which may
    start a helper process that compiles part of them beside it, ``kernels.compile_helper``);
    ``epoch(net, source, rng, lr, settings, bar)`` trains one epoch and returns
    its mean cost (NaN on divergence); ``mean_cost(net, source)`` is the cost over
    validation rows; ``share(value)`` hands the root's value to every process.
    ``is_root``: this process prints and saves; ``comm_seconds``: the epoch's time in
    communication (None: none); ``global_rows``: every process's rows in the epoch (None:
    this one's); ``done[0]``: the rows trained so far in the current epoch (read when a
    Ctrl-C cuts it short).
    """

    is_root: bool
    comm_seconds: object
    global_rows: object
    done: list

    def prepare(self, net, source, settings, verbose): ...

    def compiling(self, net, source, settings): ...

    def epoch(self, net, source, rng, lr, settings, bar): ...

    def mean_cost(self, net, source): ...

    def share(self, value): ...


class OneProcess(Ranks):
    """The ``Ranks`` of training in one process; ``n_jobs`` the threads of a network whose
    steps split (``model.training.threads``)."""

    is_root = True
    comm_seconds = None

    global_rows = None

    def __init__(self, n_jobs=None):
        self.work = None
        self.done = [0]
        self.n_jobs = n_jobs
        self.split = False

    def prepare(self, net, source, settings, verbose):
        sparse = is_sparse(getattr(source, "X", None))
        self.split = threads.splits(net, settings.batch_size, sparse, settings.dropout)
        self.pieces = (threads.PieceThreads(self.n_jobs, net, settings.batch_size)
                       if self.split else None)
        self.work = workspace(net, min(settings.batch_size, source.n_rows))
        if self.split:
            compile_split_kernels(net, settings, verbose)
        else:
            compile_kernels(net, settings, self.work, verbose, sparse,
                            read_only_rows(getattr(source, "X", None)))

    def compiling(self, net, source, settings):
        return helped_compiling(net, settings, is_sparse(getattr(source, "X", None)),
                                self.n_jobs)

    def epoch(self, net, source, rng, lr, settings, bar):
        self.done[0] = 0
        return train_one_epoch(net, source, rng, lr, settings, self.work, bar, done=self.done,
                               split_threads=self.pieces)

    def mean_cost(self, net, source):
        return mean_cost(net, source)

    def share(self, value):
        return value


def workspace(net, batch_size):
    return np.empty(int(kernels.workspace_size(net.sizes, batch_size)), dtype=net.dtype)


def mean_cost(net, source):
    """The network's cost averaged over every row of a source, in the target's units: the
    source's targets are in the units of the network's outputs (standardized when the
    network has a ``target_scaling``), and the cost is scaled back (``model.data.targets``)."""
    batch = min(EVAL_BATCH, source.n_rows)
    work = workspace(net, batch)
    total = 0.0
    network = network_record(net)
    # The thread choice of training (kernels.threads): on a busy machine all threads make
    # each product wait for a core.
    # Held signals as in compile_kernels: the first call may compile the kernel.
    with kernels.blas_threads(kernels.blas_threads_for(net.sizes, batch)), sigint_deferred():
        for X, Y in source.blocks(EVAL_BATCH):
            total += kernels.dataset_cost(kernel_rows(X), Y, net.params, network, batch, work)
    return total / source.n_rows * _cost_factor(net)


#: How the epoch lines name each cost: the MSE cost is half the mean squared error (the
#: kernels' ``||a - y||^2 / 2`` a row, as scikit-learn's MLP reports its loss).
_COST_NAMES = {"mse": "MSE/2", "huber": "the Huber cost", "absolute_error": "the absolute error",
               "quantile": "the pinball loss"}


def _cost_factor(net):
    """Cost in the target's units over the cost the kernels compute (``model.data.targets``)."""
    scaling = getattr(net, "target_scaling", None)
    return 1.0 if scaling is None else scaling.cost_factor_of(net.loss)


def _dropout_rates_and_seed(net, settings, rng):
    """(rates, seed) of an epoch of ``net`` under ``settings``, the seed drawn from ``rng``
    (or ``rng`` itself when an int), or None without dropout."""
    rates = fit_options.dropout_rates(settings.dropout, len(net.sizes) - 2)
    if not rates.size:
        return None
    return rates, (rng if isinstance(rng, int) else int(rng.integers(2 ** 63)))


def _with_dropout(batches, dropout):
    """``batches``, or the ``kernels.Dropout`` of it with ``dropout`` = (rates, seed)."""
    return batches if dropout is None else kernels.Dropout(batches, *dropout)


def train_one_epoch(net, source, rng, lr, settings, work, bar, *, done=None,
                    split_threads=None):
    """One pass over ``source``; returns the (weighted) mean cost over its rows, or NaN on
    divergence.

    ``done[0]`` counts the rows trained so far (read when Ctrl-C cuts the epoch short).
    ``split_threads``: None for the one-thread epoch; else the network's steps split
    between threads (``kernels.train_epoch_parallel``), and the ``threads.PieceThreads``
    that chooses their number again every ``threads.PIECE_STEPS`` steps: the threads wait
    for each other at every step, so when another process takes a core in the middle of an
    epoch, the rest of it drops to the cores still free, or to one thread where the pieces'
    timings show it faster. The parameters are the same whatever the counts.
    """
    total, rows, weight = 0.0, 0, 0.0
    network = network_record(net)
    optimizer = settings.optimizer_for(net, lr)
    # The epoch's dropout masks come from a seed and the step count (kernels.masks), the
    # seed drawn from the shuffling's generator, whose state checkpoints keep: a resumed fit
    # draws the seed the uninterrupted one drew. No draw without dropout (the shuffles of
    # a fit without it stay as they were).
    dropout = _dropout_rates_and_seed(net, settings, rng)
    segments = source.segments(rng, settings.shuffle, settings.batch_size)
    if split_threads is not None:
        segments = threads.in_pieces(segments, settings.batch_size)
    for X, Y, order, sample_weight in segments:
        with sigint_deferred():  # a Ctrl-C now is raised after the count below is updated
            batches = kernels.Batches(settings.batch_size, order, sample_weight)
            m = len(order) if len(order) else X.shape[0]
            if split_threads is not None:
                cost = split_threads.timed(
                    lambda k: kernels.train_epoch_parallel(kernel_rows(X), Y, net.params,
                                                           net.grads, network, optimizer,
                                                           batches, k),
                    -(-m // settings.batch_size))
            else:
                cost = epoch_kernel(net, is_sparse(X))(
                    kernel_rows(X), Y, net.params, net.grads, network, optimizer,
                    _with_dropout(batches, dropout), work)
            took_steps(net, optimizer)
            # the kernel's mean is over the segment's weight (its rows when unweighted)
            if not len(sample_weight):
                w = m
            else:
                w = float(sample_weight[order].sum() if len(order) else sample_weight.sum())
            total += cost * w if w else 0.0
            rows += m
            weight += w
            if done is not None:
                done[0] = rows
        if not np.isfinite(cost):
            return np.nan
        bar.update(m)
        if weight:
            bar.set_postfix_str("loss %.4g" % (total / weight))
    return total / weight if weight else 0.0


def run(net, source, val_source, settings, options=None, ranks=None):
    """Train ``net`` for ``settings.epochs`` epochs; returns the ``History``.

    ``options``: a ``RunOptions`` (checkpoints, display). ``ranks``: how epochs run and
    costs are taken, ``OneProcess()`` by default (data-parallel training passes its own).
    Only the root writes checkpoints and prints.
    """
    options = options or fit_options.RunOptions()
    ranks = ranks or OneProcess(options.n_jobs)
    checkpoint, verbose = options.checkpoint, options.verbose
    is_root = ranks.is_root
    rng = np.random.default_rng(settings.seed)
    history = History()
    best = (None, math.inf, 0)
    first = 0
    if options.resume and checkpoint is not None:
        found = None
        if is_root:
            try:
                found = checkpoints.resume_state(checkpoint, net, settings)
            except (ValueError, OSError) as exc:  # raised on every rank, not only here
                found = exc
        found = ranks.share(found)
        if isinstance(found, Exception):
            raise found
        if found is not None:
            first, rng_state, history, best, snapshot = found
            history.resumed_epochs = first
            net.restore(snapshot)
            rng.bit_generator.state = rng_state
            if verbose and is_root:
                print("resuming from %s after epoch %d" % (checkpoint, first), flush=True)
    with ranks.compiling(net, source, settings) as helper:
        cost_kernel_beside(helper, net, verbose and is_root, val_source is not None,
                           is_sparse(getattr(val_source, "X", None)))
        ranks.prepare(net, source, settings, verbose and is_root)
    show = is_root and progress.wanted(options.progress, verbose)
    # The epoch's cost on standardized targets, reported in the target's units (mean_cost
    # scales the validation cost itself).
    scaling = getattr(net, "target_scaling", None)
    factor = _cost_factor(net)
    if verbose and is_root and scaling is not None:
        print("targets standardized (mean %s, scale %.6g): the losses below are %s in "
              "the target's units" % (", ".join("%.6g" % m for m in scaling.mean),
                                      scaling.scale, _COST_NAMES.get(net.loss, net.loss)),
              flush=True)
    patience = settings.early_stopping

    # A stop signal can land anywhere in this loop, not only inside the blocks that hold it
    # (a handler those blocks do not hold, or Python between two short epochs): every
    # KeyboardInterrupt here ends in TrainingInterrupted with the work kept.
    whole = None  # (epoch, rng state, history mark, best) as the epoch being trained began
    finished = first  # the epochs trained and recorded
    try:
        for epoch in range(first, settings.epochs):
            if history.stopped_epoch is not None:
                break
            # The state after the last whole epoch, which a Ctrl-C checkpoint records; a
            # signal arriving while it is taken is raised once it is complete. The history
            # is marked by its lengths, not copied (a copy per epoch grows with the run).
            with sigint_deferred():
                lr = settings.learning_rate(epoch)
                before, whole = _epoch_start(net, rng, history, best, ranks, epoch)
            loss, seconds = _train_epoch(net, source, rng, lr, settings, ranks, show, epoch)
            if not np.isfinite(loss) or not np.isfinite(net.params).all():
                net.restore(before)
                source.check_values()  # a NaN or inf of X is named, not taken for divergence
                raise DivergedError(
                    "training diverged in epoch %d: the loss became NaN or inf (lr=%g is "
                    "probably too large); params hold the values from the start of epoch %d"
                    % (epoch + 1, lr, epoch + 1), epoch + 1, history)
            source.values_seen()
            loss = float(loss) * factor
            history.loss.append(loss)
            history.lr.append(float(lr))
            history.seconds.append(seconds)
            if ranks.comm_seconds is not None:
                history.comm_seconds.append(ranks.comm_seconds)
            line = "epoch %d/%d  loss %.6g" % (epoch + 1, settings.epochs, loss)
            if val_source is not None:
                val = float(ranks.mean_cost(net, val_source))
                history.val_loss.append(val)
                line += "  val_loss %.6g" % val
                if val < best[1]:
                    best = (net.params.copy() if patience is not None else None, val, 0)
                    history.best_epoch = epoch + 1
                else:
                    best = (best[0], best[1], best[2] + 1)
                    if patience is not None and best[2] >= patience:
                        history.stopped_epoch = epoch + 1
            if verbose and is_root:
                rows = ranks.global_rows or source.n_rows
                rate = rows / max(seconds, 1e-12)
                line += "  lr %.3g  %.2fs  %.0f samples/s" % (lr, seconds, rate)
                if history.stopped_epoch == epoch + 1:  # the note last: the columns stay put
                    line += "  (no improvement in %d epochs: stopping)" % patience
                print(line, flush=True)
            last = epoch + 1 == settings.epochs or history.stopped_epoch is not None
            if checkpoint is not None and is_root and (
                    (epoch + 1) % options.checkpoint_every == 0 or last):
                checkpoints.keep_checkpoint(checkpoint, net, epoch + 1, rng, history, best,
                                            settings)
            finished = epoch + 1
    except KeyboardInterrupt as stop:
        # Ctrl-C or SIGTERM: keep what was trained. The checkpoint records the last whole epoch
        # (so a resume is exact); the network keeps the parameters reached so far.
        epoch = min(finished, settings.epochs - 1)  # the epoch being trained or next
        if whole is None or whole[0] != epoch:
            # Stopped before this epoch's state was taken (between two epochs, or inside
            # the block that takes it, by a handler the block does not hold): nothing of
            # the epoch has run, so the state now is the last whole epoch's.
            before, whole = _epoch_start(net, rng, history, best, ranks, epoch)
        # X's values left to the first epoch are checked now: a Ctrl-C before the epoch
        # met a NaN or inf (or after it met one, and stopped on its cost) raises X's error
        # (``_train`` puts the network back), as a check before training would have.
        source.check_values()
        if not np.isfinite(net.params).all():  # a divergence cut short keeps the epoch's start
            net.restore(before)
        history = _history_at(history, whole[2])
        whole = (whole[0], whole[1], history, whole[3])
        if checkpoint is not None and is_root:
            checkpoints.interrupt_checkpoint(checkpoint, net, before, whole, settings)
        history = copy.deepcopy(history)
        history.interrupted_epoch = epoch + 1
        raise TrainingInterrupted(epoch + 1, ranks.done[0], history,
                                  getattr(stop, "signum", signal.SIGINT)) from None
    source.check_values()  # no epoch ran (a resume after the last): X is checked here
    if patience is not None and best[0] is not None:
        net.params[...] = best[0]  # early stopping keeps the best parameters seen
    return history


def _epoch_start(net, rng, history, best, ranks, epoch):
    """``(before, whole)``: the network's state as ``epoch`` (0-based) begins, and what a
    Ctrl-C checkpoint records of it (the epoch, the generator's state, the history's mark,
    ``best``); the rows trained in it reset to none."""
    ranks.done[0] = 0
    return net.snapshot(), (epoch, rng.bit_generator.state, _history_mark(history), best)


def _history_mark(history):
    """What ``_history_at`` needs to give back ``history`` as it is now: its lists'
    lengths and its other fields (O(1), where a copy would grow with the epochs)."""
    values = ((f.name, getattr(history, f.name)) for f in fields(history))
    return {k: (len(v) if isinstance(v, list) else v) for k, v in values}


def _history_at(history, mark):
    """A new ``History`` as ``history`` was when ``mark`` was taken."""
    kept = {}
    for key, value in mark.items():
        current = getattr(history, key)
        kept[key] = list(current[:value]) if isinstance(current, list) else value
    return History(**kept)


def read_only_rows(X):
    """Whether the epochs will see the rows ``X`` (a source's) as a read-only array (a
    table's rows mapped from its temporary ``.npy``, a user's read-only array): Numba types
    a read-only array apart from a writable one, so the kernels compiled before the first
    epoch must be given one of the same kind."""
    return isinstance(X, np.ndarray) and not X.flags.writeable


def compile_kernels(net, settings, work, verbose, sparse=False, read_only=False):
    """Compile (or load from Numba's cache) the epoch kernel for this network's dtype now.

    So that compilation (tens of seconds on a first run, a fraction of a second from the
    cache) is not counted in the first epoch's time and rate. With ``verbose``, a line
    says what is going on when it takes more than a second. ``read_only``: the rows are a
    read-only array (``read_only_rows``).
    """
    args = epoch_placeholders(net, settings, work, sparse, read_only)
    signature = tuple(numba.typeof(a) for a in args)
    kernel = epoch_kernel(net, sparse)
    if not hasattr(kernel, "overloads") or signature in kernel.overloads:
        return  # compiled already (or not a Numba dispatcher: a test's stand-in)
    # A signal during compilation is held until it ends: raised inside Numba/llvmlite it
    # can land in a __del__, where Python prints it and goes on ("Exception ignored").
    with compiling_notice(verbose), sigint_deferred():
        kernel.compile(signature)


def helped_compiling(net, settings, sparse, n_jobs):
    """The context manager to compile ``net``'s epoch kernel in: on a first run a helper
    process compiles the epoch's backward pass on another core meanwhile
    (``kernels.compile_helper``), for a dense X only (the helper's typing is tested for
    it), not for a network whose steps split (another kernel), nor with ``n_jobs=1``."""
    if (sparse or n_jobs == 1
            or threads.splits(net, settings.batch_size, sparse, settings.dropout)):
        return nullcontext()
    # Only the types reach the helper (it compiles, and runs nothing): empty arrays for the
    # parameters, gradients, optimizer state and workspace, not a large network's values
    # through its pipe.
    empty = np.empty(0, net.dtype)
    X, Y, _, _, record, optimizer, batches, _ = epoch_placeholders(net, settings, empty, False)
    args = (X, Y, empty, empty, record,
            optimizer._replace(state=np.empty(0, optimizer.state.dtype)), batches, empty)
    signature = tuple(numba.typeof(a) for a in args)
    return compile_helper.backward_pass(epoch_kernel(net, False), signature, args)


def cost_kernel_beside(helper, net, verbose, validating, sparse=False):
    """What the main process compiles while a helper (``helped_compiling``; None: none)
    compiles the epoch's backward pass, before it compiles the epoch: the validation cost's
    kernel (``compile_cost_kernel``) when ``validating`` or a helper runs, then it waits
    for the helper (``compile_helper.finish``), so that the epoch loads the backward pass.
    The cost's kernel compiles the forward pass the epoch shares, so with a helper it is
    compiled even for a fit without validation: its own 3 s, against the 7 s of backward
    pass the helper takes off."""
    if validating or helper is not None:
        compile_cost_kernel(net, verbose, sparse)
    compile_helper.finish(helper)


def epoch_placeholders(net, settings, work, sparse, read_only=False):
    """The epoch kernel's arguments for one row of zeros, of the types training passes:
    X, Y (``_placeholder_rows``), the network's params and grads, its record, the
    optimizer and the batches of ``settings``, and ``work``."""
    return (*_placeholder_rows(net, sparse, read_only), net.params, net.grads, network_record(net),
            settings.optimizer_for(net, settings.lr),
            _with_dropout(kernels.Batches(int(settings.batch_size), np.empty(0, np.int64)),
                          _dropout_rates_and_seed(net, settings, 0)), work)


def compile_split_kernels(net, settings, verbose):
    """``compile_kernels`` for a network whose steps split between threads: one step of
    ``kernels.train_epoch_parallel`` on one row of zeros, on copies of the parameters and
    the optimizer's state, compiles (or loads) every function it runs."""
    X, Y = _placeholder_rows(net, False)
    optimizer = settings.optimizer_for(net, settings.lr)
    optimizer = optimizer._replace(state=optimizer.state.copy(), steps=optimizer.steps.copy())
    params = net.params.copy()
    with compiling_notice(verbose), sigint_deferred():
        kernels.train_epoch_parallel(X, Y, params, np.empty_like(params), network_record(net),
                                     optimizer, kernels.Batches(int(settings.batch_size),
                                                                np.empty(0, np.int64)), 1)


def compile_cost_kernel(net, verbose, sparse=False):
    """Compile (or load) the validation cost's kernel before the first epoch, under the same
    notice as the epoch's: on a first run it takes about a fifth of the epoch kernel's time,
    which would otherwise pass in silence after the first epoch, before its line."""
    with compiling_notice(verbose), sigint_deferred():
        kernels.dataset_cost(*_placeholder_rows(net, sparse), net.params, network_record(net),
                             1, workspace(net, 1))


def _placeholder_rows(net, sparse, read_only=False):
    """(X, Y) of one row of zeros, of the types the kernels will be called with: X a
    ``kernels.CSR`` record of one empty row for SciPy sparse input, else a matrix
    (read-only with ``read_only``)."""
    X = np.zeros((1, net.n_inputs), net.dtype)
    X.flags.writeable = not read_only
    if sparse:
        X = kernels.CSR(np.empty(0, net.dtype), np.empty(0, np.int64), np.zeros(2, np.int64),
                        net.n_inputs)
    return X, np.zeros((1, net.n_outputs), net.dtype)


def _compiling_message():
    """What the notice says: why kernels compile now (a first run, or the first run with
    the dispatch values of a tuning file, which compile into a cache folder of their own)."""
    tuned = kernels.config.TUNING_FILE
    # a file of values Python alone reads (config.RUNTIME_TUNABLE) compiles nothing anew
    why = ("first run only" if tuned is None or kernels.config.tuned_fingerprint() is None else
           "first run with the dispatch values tuned on this CPU (%s)" % tuned)
    return ("compiling kernels (%s; this can take a minute; later runs load them from the "
            "cache) ..." % why)


#: Seconds of compiling (summed over the block's compilations) before the notice prints.
NOTICE_AFTER_SECONDS = 1.0
#: Whether a notice block is open in this process (an inner block adds nothing).
_NOTICE_OPEN = [False]


class _CompilingListener(numba_event.Listener):
    """Prints ``_compiling_message()`` once when Numba has spent ``NOTICE_AFTER_SECONDS``
    compiling. Numba raises its "numba:compile" event around each compilation (nested ones
    too: only the outermost are timed) and not when it loads a function from its cache, so
    a warm cache never prints, however long the block; and the seconds before the line are
    compiling wherever it happens (validation's parallel check, the epoch, the validation
    cost), not a guess around one call.

    With ``progress``, once the line is out a tqdm counter on stderr then moves with every
    function Numba finishes compiling (about a hundred in a first run, some seconds
    apart), so a long first run shows that it is working; it closes when the outermost
    compilation ends, before any epoch's own bar."""

    def __init__(self, progress=False):
        self.lock = threading.Lock()
        self.progress = progress
        self.depth = 0
        self.spent = 0.0
        self.started = 0.0
        self.timer = None
        self.shown = False
        self.compiled = 0  # functions compiled in the block, nested ones included
        self.bar = None

    def on_start(self, event):
        with self.lock:
            self.depth += 1
            if self.depth == 1:
                self.started = time.perf_counter()
                if not self.shown:
                    self.timer = threading.Timer(max(NOTICE_AFTER_SECONDS - self.spent, 0.0),
                                                 self._show)
                    self.timer.daemon = True
                    self.timer.start()
                else:
                    self._open_bar()

    def on_end(self, event):
        with self.lock:
            self.depth = max(self.depth - 1, 0)
            self.compiled += 1
            if self.bar is not None:
                self.bar.update(1)
            if self.depth == 0:
                self.spent += time.perf_counter() - self.started
                self.close()

    def close(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _open_bar(self):
        # under self.lock, while a compilation runs
        if self.progress and self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(desc="compiling", unit=" functions", initial=self.compiled,
                            leave=False, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def _show(self):
        with self.lock:
            if self.shown or self.timer is None:
                return
            self.shown = True
        print(_compiling_message(), flush=True)
        with self.lock:
            if self.depth > 0:
                self._open_bar()


@contextmanager
def compiling_notice(verbose, progress_bar=None):
    """With ``verbose``, say once that kernels are compiling when Numba spends over a second
    compiling inside the block (``_CompilingListener``); with ``progress_bar`` (None: when
    verbose and stderr is a terminal, ``progress.wanted``) a counter of the functions
    compiled then moves on stderr until the compilation ends. ``MLP.fit`` opens one around
    the whole fit, so the notice covers every compilation before the first epoch and prints
    once; blocks inside it (``compile_kernels``, ``compile_cost_kernel``, MPI's
    ``prepare``) add nothing."""
    if not verbose or _NOTICE_OPEN[0]:
        yield
        return
    listener = _CompilingListener(progress.wanted(progress_bar, verbose))
    _NOTICE_OPEN[0] = True
    try:
        with numba_event.install_listener("numba:compile", listener):
            yield
    finally:
        with listener.lock:
            listener.close()
        _NOTICE_OPEN[0] = False


def _train_epoch(net, source, rng, lr, settings, ranks, show, epoch):
    """(mean cost, seconds) of one epoch, with its progress bar and BLAS thread limit."""
    bar = progress.bar(source.n_rows, "epoch %d/%d" % (epoch + 1, settings.epochs), show)
    start = time.perf_counter()
    try:
        # Narrow networks run their BLAS calls on one thread, and so does any network when
        # other processes hold the cores (kernels.threads: the hand-off then collapses).
        with kernels.blas_threads(kernels.blas_threads_for(net.sizes, settings.batch_size)):
            loss = ranks.epoch(net, source, rng, lr, settings, bar)
    finally:
        bar.close()
    return loss, time.perf_counter() - start
