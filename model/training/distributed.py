"""Data-parallel training over MPI: one all-reduce of the flat gradient per step.

Every rank holds its own shard of the rows (arrays, memmaps or .npy paths, as for a
single process) and the same network. A *global* minibatch is the ranks' local
minibatches of ``batch_size`` rows together, as in PyTorch's DistributedDataParallel.
Per step each rank computes the *summed* gradient of its rows with the compiled kernels
(``kernels.batch_gradient`` with scale 1) into a buffer that also carries its row count
and summed cost; one ``Allreduce`` adds the buffers, and every rank divides by the global
row count and takes the same step. Ranks whose shard has run out contribute zeros, so a
last batch split unevenly across ranks is weighted by the rows actually there. The result
equals a single process stepping on the concatenated global minibatches (to rounding).

Before the first step the ranks compare notes with collective calls, so a bad setup (a
rank with no rows, different feature counts, different networks, different settings of
the fit, or any error on one rank) raises the same clear error on every rank, listing the
differences, instead of leaving the others waiting or letting the replicas drift apart.
"""

import contextlib
import time
from dataclasses import asdict

import numpy as np

from ...kernels.errors import InvalidValueError
from ...kernels.masks import mask_base
from ... import kernels

from ..data import inputs, sources
from ..data.validation import check_matrix_shape, is_sparse, kernel_rows
from ..data.targets import TargetScaling, combined_moments, target_moments
from . import loop, signals


def world():
    """``MPI.COMM_WORLD``, or an ImportError that says how to install MPI support."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("MPI training needs mpi4py and an MPI library: "
                          "pip install -e '.[mpi]' (brings mpi4py and MPICH from PyPI)") from None
    return MPI.COMM_WORLD


def shard(a, comm):
    """This rank's contiguous share of the rows of ``a`` (a view: memmaps stay on disk)."""
    n = a.shape[0]
    r, size = comm.Get_rank(), comm.Get_size()
    return a[r * n // size:(r + 1) * n // size]


class DistributedError(InvalidValueError):
    """A problem found on one or more ranks, raised on all of them."""


def _builtin_name(error):
    """The name of the built-in exception an error is (``ValueError`` for our
    ``InvalidValueError``): what the message on every rank says."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins":
            return cls.__name__
    return type(error).__name__  # pragma: no cover


def _agree(comm, error, facts):
    """Allgather every rank's (error, facts); raise the same DistributedError everywhere."""
    everyone = comm.allgather((None if error is None else "%s: %s" % (_builtin_name(error),
                                                                      error), facts))
    problems = ["rank %d: %s" % (r, e) for r, (e, _) in enumerate(everyone) if e is not None]
    if problems:
        raise DistributedError("data-parallel fit stopped before training: " + "; ".join(problems))
    return [f for _, f in everyone]


#: What data-parallel training calls on its communicator (mpi4py's names).
COMMUNICATOR_METHODS = ("Get_rank", "Get_size", "allgather", "allreduce", "bcast",
                        "Allreduce", "Barrier")


def is_communicator(comm):
    """Whether ``comm`` has every method data-parallel training calls (an mpi4py
    communicator does); ``MLP.fit`` refuses any other ``comm`` in one line."""
    return all(hasattr(comm, m) for m in COMMUNICATOR_METHODS)


@contextlib.contextmanager
def arguments_agreed(comm):
    """Around ``MLP.fit``'s checks of its arguments: with an MPI communicator, a bad
    argument on some ranks raises the same ``DistributedError`` on every rank (naming the
    ranks and their errors) instead of leaving the others waiting in the next collective;
    without one (None, or not a communicator, which the checks refuse), nothing changes.
    Every rank reaches the one ``allgather`` whether its checks passed or not."""
    if comm is None or not is_communicator(comm):
        yield
        return
    error = None
    try:
        yield
    except (ValueError, TypeError) as exc:
        error = exc
    _agree(comm, error, None)


def _differences(options):
    """'name (rank 0: a, rank 1: b)' for every option whose value is not the same on all ranks."""
    out = []
    for key in options[0]:
        values = [o.get(key) for o in options]
        if any(v != values[0] for v in values[1:]):
            out.append("%s (%s)" % (key, ", ".join("rank %d: %r" % (r, v)
                                                   for r, v in enumerate(values))))
    return out


def _signature(net):
    return (net.layer_sizes, net.hidden, net.output, net.loss, net.dtype.name)


def fit(net, X, y, settings, data_options, options, comm):
    """``MLP.fit(..., comm=comm)``: see the module docstring. ``settings``, ``data_options``
    and ``options`` are the ``Settings``, ``DataOptions`` and ``RunOptions`` of
    ``model.training.options``."""
    rank, size = comm.Get_rank(), comm.Get_size()
    error, source, val_source, n_features = None, None, None, None
    try:
        Xa = sources.open_array(X, "X") if sources.is_streamed(X) else np.asarray(X)
        n_features = int(Xa.shape[1]) if Xa.ndim == 2 else None
        if Xa.ndim == 2 and Xa.shape[0] == 0:
            raise InvalidValueError("X has no rows: every rank needs a share of the data")
        if n_features is not None and n_features == net.n_inputs:
            source, val_source = inputs.fit_sources(net, X, y, settings, data_options)
        else:
            check_matrix_shape(Xa, "X", net.n_inputs, "features")
    except (ValueError, TypeError, OSError) as exc:
        error = exc
    compared = dict(asdict(settings), checkpoint=options.checkpoint is not None,
                    checkpoint_every=options.checkpoint_every, resume=options.resume)
    facts = _agree(comm, error, (n_features, _signature(net), source.n_rows if source else 0,
                                 val_source is not None, compared))
    differ = _differences([f[4] for f in facts])
    if differ:  # e.g. other epochs on one rank: it would leave the others in Allreduce forever
        raise DistributedError("ranks were given different settings: %s" % "; ".join(differ))
    features = [f[0] for f in facts]
    if len(set(features)) > 1:
        raise DistributedError("ranks hold data with different feature counts: %s"
                               % ", ".join("rank %d: %s" % (r, n) for r, n in enumerate(features)))
    if len({repr(f[1]) for f in facts}) > 1:
        raise DistributedError("ranks built different networks: %s" % "; ".join(
            "rank %d: MLP(%r, hidden=%r, output=%r, loss=%r, dtype=%s)" % ((r,) + f[1])
            for r, f in enumerate(facts)))
    if len({f[3] for f in facts}) > 1:
        raise DistributedError("some ranks have validation rows and some do not")

    scaling = _target_scaling(net, source, data_options.standardize_target, comm)
    saved, saved_scaling = net.snapshot(), net.target_scaling
    net.use_optimizer(settings.optimizer)
    # Every rank starts from rank 0's parameters and optimizer state.
    net.restore(comm.bcast(net.snapshot() if rank == 0 else None, root=0))
    net.target_scaling = scaling
    source = inputs.scaled(net, source)
    val_source = val_source and inputs.scaled(net, val_source)
    steps = comm.allreduce(-(-source.n_rows // settings.batch_size), op=mpi_max())
    try:
        return loop.run(net, source, val_source, settings, options, _Ranks(comm, steps))
    except (ValueError, TypeError) as exc:
        net.restore(saved)
        net.target_scaling = saved_scaling
        if isinstance(exc, DistributedError):
            raise
        raise DistributedError("rank %d of %d: %s" % (rank, size, exc)) from None


def _target_scaling(net, source, standardize_target, comm):
    """Rank 0's target scaling, or one learned from the targets of every rank's training
    rows (``model.data.targets``) when rank 0's network has none; the same on every rank."""
    learn = comm.bcast(net.target_scaling is None and net.scales_targets(standardize_target)
                       if comm.Get_rank() == 0 else None, root=0)
    learned, n = None, net.n_outputs
    if learn:
        error, moments = None, None
        try:
            count, mean, m2 = target_moments(source.target_blocks())
            moments = (count, np.broadcast_to(mean, n).copy(), np.broadcast_to(m2, n).copy())
        except (ValueError, TypeError) as exc:
            error = exc
        _agree(comm, error, None)
        # every rank combines every rank's moments in rank order: the same scaling on all
        learned = TargetScaling.learn(combined_moments(comm.allgather(moments)))
    return comm.bcast(net.target_scaling if not learn else learned, root=0)


def mpi_max():
    """``MPI.MAX``, imported when MPI is in use."""
    from mpi4py import MPI
    return MPI.MAX


class _Ranks(loop.Ranks):
    """``training.loop.OneProcess``'s MPI twin: an epoch is ``steps`` all-reduces, whatever each
    rank's row count; costs are means over every rank's rows."""

    def __init__(self, comm, steps):
        self.comm, self.steps = comm, steps
        self.done = [0]
        self.is_root = comm.Get_rank() == 0
        self.comm_seconds = 0.0
        self.global_rows = None
        self.buffer = None

    def prepare(self, net, source, settings, verbose):
        """Compile (or load) the step's two kernels now, on copies, so that the first
        epoch's time and rate are its own (as ``training.loop.compile_kernels`` does)."""
        self.work = loop.workspace(net, settings.batch_size)
        params, grads = net.params.copy(), np.zeros_like(net.params)
        X = np.zeros((1, net.n_inputs), net.dtype)
        Y = np.zeros((1, net.n_outputs), net.dtype)
        optimizer = settings.optimizer_for(net, settings.lr)
        optimizer = optimizer._replace(state=optimizer.state.copy())
        with loop.compiling_notice(verbose), signals.sigint_deferred():
            self._gradient(X, Y, params, grads, loop.network_record(net), settings,
                           loop._dropout_rates_and_seed(net, settings, 0))
            kernels.optimizer_step(params, grads, optimizer)
        # Ranks compile side by side and finish apart (one loads from the shared cache what
        # another compiled): without this the first to finish would wait inside epoch 1's
        # first collective, and its time and samples/s would count the others' compiling.
        self.comm.Barrier()

    def compiling(self, net, source, settings):
        return contextlib.nullcontext()  # every rank compiles; no helper process beside them

    def _dropout(self, net, settings, rng):
        """(rates, seed) of the epoch, or None without dropout: the seed rank 0 drew (each
        rank draws from its own generator, as one process does, so that their states, which
        checkpoints keep, stay those of a single-process fit)."""
        dropout = loop._dropout_rates_and_seed(net, settings, rng)
        if dropout is None:
            return None
        return dropout[0], self.comm.bcast(dropout[1], root=0)

    def _gradient(self, X, Y, params, grads, network, settings, dropout, step=0):
        """The summed gradient of this rank's minibatch into grads; its summed cost. With
        dropout its masks are those of a seed hashed from the epoch's, the optimizer's step
        count and this rank (``kernels.masks.mask_base``): the ranks' rows of one global
        minibatch, and every step, get masks of their own, reproducibly (a resumed fit
        draws the same, its step count and epoch seed being checkpointed)."""
        if dropout is None:
            return kernels.batch_gradient(kernel_rows(X), Y, params, grads, network,
                                          settings.batch_size, self.work, 1.0)
        rates, seed = dropout
        seed = int(mask_base(seed, step, self.comm.Get_rank())) & (2 ** 63 - 1)
        record = kernels.dropout(kernels.batches(settings.batch_size), rates, seed)
        return kernels.dropout_gradient(kernel_rows(X), Y, params, grads, network, record,
                                        self.work, 1.0)

    def share(self, value):
        return self.comm.bcast(value, root=0)

    def mean_cost(self, net, source):
        local = loop.mean_cost(net, source) * source.n_rows
        total = self.comm.allreduce(np.array([local, source.n_rows], np.float64))
        return total[0] / total[1]

    def _batches(self, source, rng, settings):
        """This rank's minibatches (X, Y) of the epoch, in order."""
        b = settings.batch_size
        for X, Y, order, _ in source.segments(rng, settings.shuffle, b):  # unweighted
            n = len(order) if len(order) else X.shape[0]
            for a in range(0, n, b):
                if len(order):
                    rows = order[a:a + b]
                    yield (X[rows] if is_sparse(X) else np.ascontiguousarray(X[rows]),
                           np.ascontiguousarray(Y[rows]))
                else:
                    yield X[a:a + b], Y[a:a + b]

    def epoch(self, net, source, rng, lr, settings, bar):
        P = net.params.size
        if self.buffer is None:  # one _Epoch per fit: allocated on its first epoch
            self.buffer = np.empty(P + 2, net.dtype)  # grads, rows, summed cost
            self.total = np.empty_like(self.buffer)
        buf, total = self.buffer, self.total
        grads = buf[:P]
        dropout = self._dropout(net, settings, rng)  # drawn before the shuffle, as one process
        batches = self._batches(source, rng, settings)
        network = loop.network_record(net)
        optimizer = settings.optimizer_for(net, lr)
        epoch_cost, epoch_rows = 0.0, 0
        self.comm_seconds = 0.0
        self.done[0] = 0
        for _ in range(self.steps):
            batch = next(batches, None)
            if batch is None:  # this rank's shard is used up: add nothing, but take part
                buf[:] = 0
            else:
                Xb, Yb = batch
                buf[P + 1] = self._gradient(Xb, Yb, net.params, grads, network, settings,
                                            dropout, int(optimizer.steps[0]))
                buf[P] = Xb.shape[0]
            start = time.perf_counter()
            self.comm.Allreduce(buf, total)
            self.comm_seconds += time.perf_counter() - start
            rows = float(total[P])
            mean_grad = total[:P]
            mean_grad /= net.dtype.type(rows)
            kernels.optimizer_step(net.params, mean_grad, optimizer)
            loop.took_steps(net, optimizer)
            epoch_cost += float(total[P + 1])
            epoch_rows += rows
            self.done[0] = int(epoch_rows)  # every rank's rows, as the samples/s line
            bar.update(int(rows))
            if not np.isfinite(epoch_cost):
                return np.nan
        self.global_rows = epoch_rows  # every rank's rows, for the samples/s line
        return epoch_cost / epoch_rows
