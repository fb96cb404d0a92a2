"""The epoch loop behind ``MLP.fit``: schedules, validation, early stopping, checkpoints.

Each epoch's minibatches run in compiled code (``kernels.train_epoch``, one call per
segment of the data); this module does what happens between epochs. Everything that
decides the next epoch (parameters, momentum, the shuffling RNG, the history, the best
parameters so far) is in a checkpoint, so a resumed run continues bit for bit.
"""

import copy
import json
import math
import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

import numpy as np

from ..kernels.errors import InvalidValueError, NumbaDenseError
from .. import kernels

from . import persistence, progress
from .history import History

CHECKPOINT_FORMAT = "numba-dense-checkpoint"

#: Rows per compiled call when evaluating: bounds the workspace, not the data.
EVAL_BATCH = 4096

SCHEDULES = kernels.SCHEDULES


class DivergedError(NumbaDenseError, FloatingPointError):
    """Training produced a NaN or infinite loss; ``params`` hold the last finite values."""

    def __init__(self, message, epoch, history):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT), or SIGTERM where it is handled as one, stopped ``fit`` after the
    segment of data it was training on.

    The network holds the parameters reached so far; ``history.interrupted_epoch`` names
    the epoch that was cut short (its loss is not recorded) and ``rows_done`` how many of
    its rows were trained on. A checkpoint, if one was set, was written for the last whole
    epoch, so ``resume=True`` continues exactly as an uninterrupted run would. ``signum``
    is the signal that stopped it.
    """

    def __init__(self, epoch, rows_done, history, signum=signal.SIGINT):
        super().__init__("training interrupted in epoch %d after %d rows" % (epoch, rows_done))
        self.epoch = epoch
        self.rows_done = rows_done
        self.history = history
        self.signum = signum


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised as a Ctrl-C is (by ``raise_on_sigterm``), so that the same
    code keeps the work; ``signum`` tells them apart (the exit status is 128 + signum)."""

    def __init__(self, signum=signal.SIGTERM):
        super().__init__("terminated (%s)" % signal.Signals(signum).name)
        self.signum = signum


def raise_on_sigterm(signum, frame):
    """A SIGTERM (or SIGHUP) handler that raises ``Terminated``: what the command line
    installs, so a batch scheduler's time limit, ``timeout``, ``docker stop`` or a closed
    terminal saves the work as Ctrl-C does. In a script of your own,
    ``signal.signal(signal.SIGTERM, raise_on_sigterm)``."""
    raise Terminated(signum)


#: The signals that stop training with the work kept, when their handler raises (Python's
#: default for SIGINT; ``raise_on_sigterm`` or ``signal.default_int_handler`` for SIGTERM
#: and SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP",
                                                        "SIGUSR1", "SIGUSR2", "SIGALRM",
                                                        "SIGXCPU") if hasattr(signal, name))
_RAISING = (signal.default_int_handler, raise_on_sigterm)


@contextmanager
def sigint_ignored():
    """Ignore Ctrl-C and SIGTERM for the block (the main thread only): finishing a save
    beats a traceback or a half-kept run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS
                if signal.getsignal(s) in _RAISING or s == signal.SIGINT}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def sigint_deferred():
    """Hold a Ctrl-C (or a SIGTERM handled as one) that arrives during the block until the
    block ends, then raise it.

    A compiled epoch cannot be stopped half way: Python raises ``KeyboardInterrupt`` only
    once the call returns, and where it lands decides whether the bookkeeping after it ran.
    Deferring it to the end of the block makes "rows trained so far" exact. Only the main
    thread can hold signals, and a handler other than the raising ones is left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {}
    for s in STOP_SIGNALS:
        handler = signal.getsignal(s)
        if handler in _RAISING:
            previous[s] = handler
            signal.signal(s, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        previous[caught[0]](caught[0], None)  # raises as the signal would have


@dataclass(kw_only=True)
class Settings:
    """The options of one ``fit`` that decide its arithmetic (checked again on resume).

    ``hyperparameters`` holds the optimizer's hyperparameters but ``lr`` (every row of
    ``kernels.HYPERPARAMETER_TABLE``, by name); each can also be read as an attribute
    (``settings.momentum``).
    """

    epochs: int
    batch_size: int
    lr: float
    schedule: str
    step_size: int
    gamma: float
    min_lr: float
    shuffle: bool
    seed: object
    early_stopping: object
    optimizer: str = "sgd"
    hyperparameters: dict = field(default_factory=dict)

    def __post_init__(self):
        for h in kernels.HYPERPARAMETER_TABLE:
            if h.name != "lr":
                self.hyperparameters.setdefault(h.name, h.default)

    def __getattr__(self, name):
        hyperparameters = self.__dict__.get("hyperparameters", {})
        if name in hyperparameters:
            return hyperparameters[name]
        raise AttributeError(name)

    def learning_rate(self, epoch):
        """The rate of 0-based ``epoch`` under ``schedule`` (``kernels.SCHEDULE_TABLE``)."""
        return kernels.variants.learning_rate(self.schedule, epoch, self.lr, self.epochs,
                                              self.step_size, self.gamma, self.min_lr)

    def fingerprint(self):
        """The settings a resumed run must share with the run that wrote the checkpoint."""
        d = asdict(self)
        d.update(d.pop("hyperparameters"))
        if self.schedule != "cosine":  # only cosine depends on the total; others may extend
            d.pop("epochs")
        return d

    def optimizer_for(self, net, lr):
        """The ``kernels.Optimizer`` of a step at rate ``lr`` on ``net``: its state is the
        network's ``velocity``, its step count a copy of ``net.step`` (``took_steps``
        brings it back)."""
        values = {h.name: (bool if isinstance(h.default, bool) else float)(
            self.hyperparameters[h.name]) for h in kernels.HYPERPARAMETER_TABLE
            if h.name != "lr"}
        return kernels.Optimizer(code=kernels.OPTIMIZERS[self.optimizer], lr=float(lr),
                                 state=net.velocity, steps=np.array([net.step], np.int64),
                                 **values)


def took_steps(net, optimizer):
    """Record in ``net.step`` the steps an optimizer record has taken."""
    net.step = int(optimizer.steps[0])


def network_record(net):
    """The ``kernels.Network`` of a network."""
    return kernels.Network(net.sizes, net.acts, int(net.loss_code))


@dataclass
class DataOptions:
    """Where a fit's rows come from, besides X and y."""

    validation_data: object = None   # (X_val, y_val), or None
    validation_fraction: float = 0.0  # or hold out this last fraction of the rows
    chunk_rows: object = None        # rows per chunk when streaming from disk (None: ~32 MB)
    standardize_target: object = None  # None: for a regression (see model.targets)


@dataclass
class RunOptions:
    """What a fit does around its arithmetic: checkpoints and display."""

    checkpoint: object = None      # path of the checkpoint file, or None
    checkpoint_every: int = 1      # epochs between checkpoints
    resume: bool = False           # continue from the checkpoint when it exists
    verbose: bool = False          # a line per epoch
    progress: object = None        # a progress bar (None: when verbose on a terminal)


class Ranks(Protocol):
    """How ``run`` trains and evaluates: ``OneProcess`` here, ``distributed._Ranks`` over
    MPI.

    ``prepare(net, source, settings, verbose)`` compiles (or loads) the kernels before the
    first epoch; ``epoch(net, source, rng, lr, settings, bar)`` trains one epoch and returns
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

    def epoch(self, net, source, rng, lr, settings, bar): ...

    def mean_cost(self, net, source): ...

    def share(self, value): ...


class OneProcess(Ranks):
    """The ``Ranks`` of training in one process."""

    is_root = True
    comm_seconds = None

    global_rows = None

    def __init__(self):
        self.work = None
        self.done = [0]

    def prepare(self, net, source, settings, verbose):
        self.work = workspace(net, min(settings.batch_size, source.n_rows))
        compile_kernels(net, settings, self.work, verbose)

    def epoch(self, net, source, rng, lr, settings, bar):
        self.done[0] = 0
        return train_one_epoch(net, source, rng, lr, settings, self.work, bar, self.done)

    def mean_cost(self, net, source):
        return mean_cost(net, source)

    def share(self, value):
        return value


def workspace(net, batch_size):
    return np.empty(int(kernels.workspace_size(net.sizes, batch_size)), dtype=net.dtype)


def mean_cost(net, source):
    """The network's cost averaged over every row of a source, in the target's units: the
    source's targets are in the units of the network's outputs (standardized when the
    network has a ``target_scaling``), and the cost is scaled back (``model.targets``)."""
    batch = min(EVAL_BATCH, source.n_rows)
    work = workspace(net, batch)
    total = 0.0
    network = network_record(net)
    # The thread choice of training (kernels.threads): on a busy machine all threads make
    # each product wait for a core.
    # Held signals as in compile_kernels: the first call may compile the kernel.
    with kernels.blas_threads(kernels.blas_threads_for(net.sizes, batch)), sigint_deferred():
        for X, Y in source.blocks(EVAL_BATCH):
            total += kernels.dataset_cost(X, Y, net.params, network, batch, work)
    return total / source.n_rows * _cost_factor(net)


def _cost_factor(net):
    """Cost in the target's units over the cost the kernels compute (``model.targets``)."""
    scaling = getattr(net, "target_scaling", None)
    return 1.0 if scaling is None else scaling.cost_factor


def train_one_epoch(net, source, rng, lr, settings, work, bar, done=None):
    """One pass over ``source``; returns the mean cost over its rows, or NaN on divergence.

    ``done[0]`` counts the rows trained so far (read when Ctrl-C cuts the epoch short).
    """
    total, rows = 0.0, 0
    network = network_record(net)
    optimizer = settings.optimizer_for(net, lr)
    for X, Y, order in source.segments(rng, settings.shuffle, settings.batch_size):
        with sigint_deferred():  # a Ctrl-C now is raised after the count below is updated
            cost = kernels.train_epoch(X, Y, net.params, net.grads, network, optimizer,
                                       kernels.Batches(settings.batch_size, order), work)
            took_steps(net, optimizer)
            m = len(order) if len(order) else X.shape[0]
            total += cost * m
            rows += m
            if done is not None:
                done[0] = rows
        if not np.isfinite(cost):
            return np.nan
        bar.update(m)
        bar.set_postfix_str("loss %.4g" % (total / rows))
    return total / rows


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path, net, epoch, rng, history, best, settings):
    """Everything the next epoch depends on, written atomically to ``path`` (.npz)."""
    best_params, best_val, wait = best
    persistence.atomic_savez(
        path, "checkpoint", **persistence.network_arrays(net),
        kind=np.array(CHECKPOINT_FORMAT), epoch=np.array(epoch),
        rng_state=np.array(json.dumps(rng.bit_generator.state)),
        history=np.array(json.dumps(asdict(history))),
        best_params=best_params if best_params is not None else np.empty(0, net.dtype),
        best_val=np.array(best_val), wait=np.array(wait),
        settings=np.array(json.dumps(settings.fingerprint())))


class CheckpointWarning(RuntimeWarning):
    """A checkpoint could not be written; training went on without it."""


def _keep_checkpoint(path, net, epoch, rng, history, best, settings):
    """``save_checkpoint``, but a failed write (the folder removed, the disk full) warns and
    training goes on: the network in memory is worth more than one checkpoint."""
    try:
        save_checkpoint(path, net, epoch, rng, history, best, settings)
    except OSError as exc:
        # One message for every epoch it happens (warnings shows each text once).
        warnings.warn("checkpoint %s could not be written (%s); training goes on without it"
                      % (os.fspath(path), exc), CheckpointWarning, stacklevel=2)


def load_checkpoint(path, net, settings):
    """(epoch, rng_state, history, best) from a checkpoint, after checking it fits this run.

    The network's parameters and momentum are set from it.
    """
    arrays = persistence.read_arrays(path, "resume")
    if str(arrays.get("kind", "")) != CHECKPOINT_FORMAT:
        raise InvalidValueError("resume: %r is not a numba-dense checkpoint (a "
                                "model file saved with "
                                "save() has no training state)" % str(path))
    missing = [key for key in _CHECKPOINT_ARRAYS if key not in arrays]
    if missing:
        raise InvalidValueError("resume: checkpoint %r is incomplete: it lacks %s; start afresh "
                                "without --resume (or remove the file)"
                                % (str(path), ", ".join(missing)))
    state = persistence.load(path, arrays)
    mine = dict(layer_sizes=net.layer_sizes, hidden=net.hidden, output=net.output,
                loss=net.loss, dtype=net.dtype.name)
    differ = ["%s %r (this network: %r)" % (k, state[k], v) for k, v in mine.items()
              if state[k] != v]
    if differ:
        raise InvalidValueError("resume: checkpoint %r is of another network: %s"
                                % (str(path), "; ".join(differ)))
    try:
        saved = json.loads(str(arrays["settings"]))
        history = History(**json.loads(str(arrays["history"])))
        rng_state = json.loads(str(arrays["rng_state"]))
        epoch = int(arrays["epoch"])
        best_params = arrays["best_params"] if arrays["best_params"].size else None
        best = (best_params, float(arrays["best_val"]), int(arrays["wait"]))
    except (ValueError, TypeError) as exc:
        raise InvalidValueError("resume: checkpoint %r is damaged: %s" % (str(path), exc)) from None
    if not isinstance(saved, dict) or not 0 <= epoch:
        raise InvalidValueError("resume: checkpoint %r is damaged: settings %r, epoch %d"
                                % (str(path), saved, epoch))
    if best_params is not None and best_params.shape != net.params.shape:
        raise InvalidValueError("resume: checkpoint %r is damaged: best_params has shape %s, "
                                "the network %s" % (str(path), best_params.shape, net.params.shape))
    now = json.loads(json.dumps(settings.fingerprint()))
    differ = ["%s=%r (now %r)" % (k, saved.get(k), now.get(k)) for k in sorted(now)
              if saved.get(k) != now.get(k)]
    if differ:
        raise InvalidValueError("resume: checkpoint %r was written with other settings: %s; "
                                "resume with the same "
                                "ones or start afresh" % (str(path), ", ".join(differ)))
    net.set_state(state)
    return epoch, rng_state, history, best


#: What a checkpoint holds besides a saved network.
_CHECKPOINT_ARRAYS = ("epoch", "rng_state", "history", "best_params", "best_val", "wait",
                      "settings", "optimizer", "step", "target_mean", "target_scale")


# ----------------------------------------------------------------------------- the loop

def run(net, source, val_source, settings, options=None, ranks=None):
    """Train ``net`` for ``settings.epochs`` epochs; returns the ``History``.

    ``options``: a ``RunOptions`` (checkpoints, display). ``ranks``: how epochs run and
    costs are taken, ``OneProcess()`` by default (data-parallel training passes its own).
    Only the root writes checkpoints and prints.
    """
    options = options or RunOptions()
    ranks = ranks or OneProcess()
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
                found = _resume_state(checkpoint, net, settings)
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
    ranks.prepare(net, source, settings, verbose and is_root)
    show = is_root and progress.wanted(options.progress, verbose)
    # The epoch's cost on standardized targets, reported in the target's units (mean_cost
    # scales the validation cost itself).
    scaling = getattr(net, "target_scaling", None)
    factor = _cost_factor(net)
    if verbose and is_root and scaling is not None:
        print("targets standardized (mean %s, scale %.6g): the losses below are the MSE in "
              "the target's units" % (", ".join("%.6g" % m for m in scaling.mean),
                                      scaling.scale), flush=True)
    patience = settings.early_stopping

    for epoch in range(first, settings.epochs):
        if history.stopped_epoch is not None:
            break
        try:
            # The state after the last whole epoch, which a Ctrl-C checkpoint records; a
            # signal arriving while it is taken is raised once it is complete. The history
            # is marked by its lengths, not copied (a copy per epoch grows with the run).
            with sigint_deferred():
                lr = settings.learning_rate(epoch)
                before = net.snapshot()
                whole = (epoch, rng.bit_generator.state, _history_mark(history), best)
            loss, seconds = _train_epoch(net, source, rng, lr, settings, ranks, show, epoch)
            if not np.isfinite(loss) or not np.isfinite(net.params).all():
                net.restore(before)
                raise DivergedError(
                    "training diverged in epoch %d: the loss became NaN or inf (lr=%g is "
                    "probably too large); params hold the values from the start of epoch %d"
                    % (epoch + 1, lr, epoch + 1), epoch + 1, history)
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
                        line += "  (no improvement in %d epochs: stopping)" % patience
            if verbose and is_root:
                rows = ranks.global_rows or source.n_rows
                print("%s  lr %.3g  %.2fs  %.0f samples/s"
                      % (line, lr, seconds, rows / max(seconds, 1e-12)), flush=True)
            last = epoch + 1 == settings.epochs or history.stopped_epoch is not None
            if checkpoint is not None and is_root and (
                    (epoch + 1) % options.checkpoint_every == 0 or last):
                _keep_checkpoint(checkpoint, net, epoch + 1, rng, history, best, settings)
        except KeyboardInterrupt as stop:
            # Ctrl-C or SIGTERM: keep what was trained. The checkpoint records the last whole epoch
            # (so a resume is exact); the network keeps the parameters reached so far.
            history = _history_at(history, whole[2])
            whole = (whole[0], whole[1], history, whole[3])
            if checkpoint is not None and is_root:
                _interrupt_checkpoint(checkpoint, net, before, whole, settings)
            history = copy.deepcopy(history)
            history.interrupted_epoch = epoch + 1
            raise TrainingInterrupted(epoch + 1, ranks.done[0], history,
                                      getattr(stop, "signum", signal.SIGINT)) from None
    if patience is not None and best[0] is not None:
        net.params[...] = best[0]  # early stopping keeps the best parameters seen
    return history


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


def compile_kernels(net, settings, work, verbose):
    """Compile (or load from Numba's cache) the epoch kernel for this network's dtype now.

    So that compilation (tens of seconds on a first run, a fraction of a second from the
    cache) is not counted in the first epoch's time and rate. With ``verbose``, a line
    says what is going on when it takes more than a second.
    """
    import numba
    rows = np.empty((1, net.n_inputs), net.dtype), np.empty((1, net.n_outputs), net.dtype)
    args = (*rows, net.params, net.grads, network_record(net),
            settings.optimizer_for(net, settings.lr),
            kernels.Batches(int(settings.batch_size), np.empty(0, np.int64)), work)
    signature = tuple(numba.typeof(a) for a in args)
    epoch_kernel = kernels.train_epoch
    if not hasattr(epoch_kernel, "overloads") or signature in epoch_kernel.overloads:
        return  # compiled already (or not a Numba dispatcher: a test's stand-in)
    # A signal during compilation is held until it ends: raised inside Numba/llvmlite it
    # can land in a __del__, where Python prints it and goes on ("Exception ignored").
    with compiling_notice(verbose), sigint_deferred():
        epoch_kernel.compile(signature)


@contextmanager
def compiling_notice(verbose):
    """With ``verbose``, say that kernels are compiling when the block takes over a second."""
    timer = None
    if verbose:
        timer = threading.Timer(1.0, print, ("compiling kernels (first run only; later runs "
                                             "load them from the cache) ...",),
                                {"flush": True})
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


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


def _interrupt_checkpoint(checkpoint, net, before, whole, settings):
    """Write the checkpoint of the last whole epoch; the network keeps its current state."""
    epoch, rng_state, history, best = whole
    now = net.snapshot()
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    with sigint_ignored():
        net.restore(before)
        try:
            _keep_checkpoint(checkpoint, net, epoch, rng, history, best, settings)
        finally:
            net.restore(now)


def _resume_state(checkpoint, net, settings):
    """The checkpoint's state, or None when there is none yet (a first run with resume=True)."""
    if not os.path.exists(checkpoint):
        return None
    epoch, rng_state, history, best = load_checkpoint(checkpoint, net, settings)
    return epoch, rng_state, history, best, net.snapshot()
