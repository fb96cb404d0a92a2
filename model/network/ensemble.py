"""``Ensemble``: K networks of the same architecture, trained on the same rows, averaged.

Members are plain ``MLP`` objects (``ensemble.members``): member ``k`` is built with seed
``seed + k`` and trained with exactly the arguments ``MLP.fit`` would be given, so it is
bit-identical to ``MLP(..., seed=seed + k)`` trained alone with the same options (the fit's
shuffling ``seed=s`` becomes ``s + k`` for member ``k`` too, and so does
``validation_seed``). Predictions average the members: the mean of the outputs for a
regression (in the target's units, after ``exp`` for a Poisson network), the mean of the
class probabilities for a classifier, whose label is then the class of highest mean
probability (for sigmoid outputs: mean probability > 0.5).

**Threads.** The members are independent; ``fit`` trains them on ``n_jobs`` threads at once
(the compiled epochs release the GIL). Signals can only be handled on the main thread, which
``MLP.fit`` already allows for (``training.signals`` holds and ignores them there only); the
main thread waits for the members and, on Ctrl-C or a member's error, stops the others after
the compiled segment each is in, where ``MLP.fit`` on the main thread would raise a held
Ctrl-C (``signals.stop_on``; see ``fit``). While threads train, the kernels' BLAS runs on
one thread (``kernels.blas_threads(1)``), so that K members do not each start a BLAS thread
per core; products small enough for the compiled loops never call BLAS. With ``n_jobs=1`` the
members train one after another on the calling thread. With MPI (``comm=``) the members always
train one after another: every rank must make the same collective calls in the same order.

**Files.** ``save`` writes one ``.npz``: each member's arrays, as ``model.network.persistence``
writes a network, under the prefix ``member<k>.``, plus ``format`` ("numba-dense-ensemble"),
``version``, ``n_networks`` and ``seeds``; ``load`` checks each member as ``MLP.load`` does.
``load_model(path)`` reads either kind of file.
"""

import os
import signal
import tempfile
import threading
from contextlib import contextmanager

import numpy as np

from ... import kernels
from ...kernels.errors import InvalidTypeError, InvalidValueError
from ...kernels.threads import usable_cores
from ..data import inputs, sources, tabular
from ..data.paths import check_output
from ..data.targets import r2_score
from ..data.validation import (check_matrix_shape, class_labels, first_nonfinite, integer,
                               is_sparse, plain)
from ..training.threads import check_jobs
from ..training import options as fit_options
from ..training import signals
from ..training.signals import TrainingInterrupted
from . import persistence
from .mlp import MLP, rebuilt_with

FORMAT = "numba-dense-ensemble"
VERSION = 1
#: The prefix of member ``k``'s arrays in an ensemble file.
PREFIX = "member%d."


class EnsembleInterrupted(TrainingInterrupted):
    """Ctrl-C (or a stop signal handled as one) stopped ``Ensemble.fit``.

    ``finished``: indices of the members whose fit completed; ``interrupted``: {index:
    the member's ``TrainingInterrupted``} of those cut short (each member keeps the
    parameters it reached, as ``MLP.fit`` leaves them); the other members did not start.
    ``epoch``, ``rows_done`` and ``history`` are those of the lowest interrupted member
    (None when none had started an epoch)."""

    def __init__(self, n_members, finished, interrupted, signum):
        first = interrupted[min(interrupted)] if interrupted else None
        KeyboardInterrupt.__init__(
            self, "ensemble training interrupted: %d of %d members finished (%s), %d cut short"
            " (%s)" % (len(finished), n_members, _indices(finished), len(interrupted),
                       _indices(interrupted)))
        self.finished = sorted(finished)
        self.interrupted = dict(interrupted)
        self.epoch = getattr(first, "epoch", None)
        self.rows_done = getattr(first, "rows_done", None)
        self.history = getattr(first, "history", None)
        self.signum = signum


def _indices(ks):
    return ", ".join(str(k) for k in sorted(ks)) or "none"


def _check_seed(seed):
    if seed is None:
        return None
    return integer(seed, "seed", 0)


def member_path(path, k):
    """``net.npz`` -> ``net.member3.npz``: member ``k``'s own checkpoint."""
    root, ext = os.path.splitext(os.fspath(path))
    return "%s.member%d%s" % (root, k, ext or ".npz")


class Ensemble:
    """K ``MLP`` networks of one architecture whose predictions are averaged.

    ``layer_sizes``, ``hidden``, ``output``, ``loss``, ``dtype``, ``quantile`` and
    ``embeddings`` are ``MLP``'s; ``n_networks`` (K >= 1) members are built, member ``k`` with
    ``MLP(..., seed=seed + k)`` (``seed`` None: each member from fresh entropy). ``n_jobs``:
    the threads ``fit`` trains on, None or -1 for the usable cores
    (``kernels.threads.usable_cores``), 1 for one member after another; never more than K.

    Attributes: ``members`` (the K ``MLP``), ``seeds`` (member seeds, None entries for
    fresh entropy), ``histories`` (each member's ``History`` of the last fit), and, read
    from the members (which share them), ``layer_sizes``, ``n_inputs``, ``n_outputs``,
    ``dtype``, ``is_classifier``, ``output``, ``loss``, ``preprocessing``.

    Memory: K times a network's parameters, gradients and optimizer state, and each
    training thread's workspace; the rows are shared (an in-memory X is converted to the
    networks' dtype once, a table read once into a temporary ``.npy`` pair).
    """

    def __init__(self, layer_sizes, hidden="relu", output="identity", loss=None,
                 dtype=np.float32, seed=None, quantile=None, embeddings=None, *,
                 n_networks=5, n_jobs=None):
        k = integer(n_networks, "n_networks", 1)
        self.seed = _check_seed(seed)
        self.n_jobs = self._check_jobs(n_jobs)
        self.seeds = [None if self.seed is None else self.seed + i for i in range(k)]
        self.members = [MLP(layer_sizes, hidden=hidden, output=output, loss=loss, dtype=dtype,
                            seed=s, quantile=quantile, embeddings=embeddings)
                        for s in self.seeds]
        self.histories = None
        self.last_read = None

    @classmethod
    def from_members(cls, members, seeds=None, n_jobs=None):
        """An ensemble of existing ``MLP`` networks (kept, not copied), which must share
        layer sizes, activations, output, loss, quantile, dtype and embeddings
        (``InvalidValueError``
        otherwise; ``InvalidTypeError`` for a member that is not an ``MLP``)."""
        members = list(members)
        if not members:
            raise InvalidValueError("an ensemble needs at least one member, got none")
        for k, m in enumerate(members):
            if not isinstance(m, MLP):
                raise InvalidTypeError("members[%d] must be an MLP, got %s"
                                       % (k, type(m).__name__))
            if _architecture(m) != _architecture(members[0]):
                raise InvalidValueError("members[%d] is %r but members[0] is %r: an ensemble's "
                                        "members share their architecture" % (k, m, members[0]))
        if seeds is not None and len(seeds) != len(members):
            raise InvalidValueError("seeds lists %d seeds for %d members"
                                    % (len(seeds), len(members)))
        ens = cls.__new__(cls)
        ens.members = members
        ens.seeds = list(seeds) if seeds is not None else [None] * len(members)
        ens.seed = ens.seeds[0]
        ens.n_jobs = cls._check_jobs(n_jobs)
        ens.histories = [m.history for m in members]
        ens.last_read = None
        return ens

    @staticmethod
    def _check_jobs(n_jobs):
        return check_jobs(n_jobs)

    # ------------------------------------------------------------------ scikit-learn

    def get_params(self, deep=True):
        """The constructor's arguments (the scikit-learn protocol, for ``clone``): the
        members' shared ``MLP`` arguments, ``seed`` (member 0's), ``n_networks``, ``n_jobs``."""
        params = self.members[0].get_params()
        params.update(seed=self.seed, n_networks=len(self.members), n_jobs=self.n_jobs)
        return params

    def set_params(self, **params):
        """As ``MLP.set_params``: arguments given their current values change nothing; a
        changed one makes a new, untrained ensemble; a bad one raises with it unchanged."""
        return rebuilt_with(self, self.get_params(), params)

    def __sklearn_tags__(self):
        """scikit-learn's estimator tags: the members' (``MLP.__sklearn_tags__``)."""
        return self.members[0].__sklearn_tags__()

    # ------------------------------------------------------------------ structure

    def __len__(self):
        return len(self.members)

    @property
    def n_networks(self):
        return len(self.members)

    def __getattr__(self, name):
        # What the members share: read from member 0.
        if name in ("layer_sizes", "n_inputs", "n_outputs", "dtype", "is_classifier",
                    "output", "loss", "hidden", "quantile", "preprocessing", "sizes",
                    "_target_kind", "embeddings"):
            members = self.__dict__.get("members")
            if members:
                return getattr(members[0], name)
        raise AttributeError("'Ensemble' object has no attribute %r" % name)

    def __repr__(self):
        return "Ensemble(%d x %r)" % (len(self.members), self.members[0])

    def _jobs(self, comm):
        if comm is not None:
            return 1
        n = usable_cores() if self.n_jobs is None else self.n_jobs
        return max(1, min(n, len(self.members)))

    # ------------------------------------------------------------------ training

    def fit(self, X, y, sample_weight=None, class_weight=None, **options):
        """Train every member on the same rows; returns the list of their ``History``.

        Takes what ``MLP.fit`` takes (arrays, memmaps, ``.npy`` paths, a CSV/Parquet path with
        the target's name, SciPy sparse X; ``sample_weight``, ``class_weight`` and every fit
        option), and passes it to each member, but for: ``seed`` (the shuffling seed) and
        ``validation_seed`` (the held-out rows' draw), which become ``seed + k`` and
        ``validation_seed + k`` for member ``k`` (so that the command line's member k is
        the network ``train --seed s + k`` makes alone); ``checkpoint=path``, which becomes
        one file per member (``net.npz`` -> ``net.member<k>.npz``, each checked before
        training starts); ``comm``, with which the members train one after another. With
        ``verbose`` each member prints its own epoch lines; on several threads they
        interleave (the lines do not name the member).

        Raises what ``MLP.fit`` raises, before any member changes for a bad option or a bad
        in-memory X. A member's error stops the others after their current compiled segment
        and is raised with a note naming the member (``exc.ensemble_member``); the members
        are then left as their fits left them. Ctrl-C raises ``EnsembleInterrupted`` (a
        ``TrainingInterrupted``) once every running member has stopped.
        """
        values = fit_options.checked(options)  # a bad option raises here, for every member
        settings, _, run_options = fit_options.split(values)
        comm = values["comm"]
        n = len(self.members)
        per_member = []
        for k in range(n):
            mine = dict(options)
            for name in ("seed", "validation_seed"):
                if values[name] is not None:
                    mine[name] = values[name] + k
            if run_options.checkpoint is not None:
                mine["checkpoint"] = member_path(run_options.checkpoint, k)
                check_output(mine["checkpoint"], "checkpoint (member %d)" % k)
            per_member.append(mine)
        jobs = self._jobs(comm)
        if jobs > 1:
            # the members fill the cores; each one's steps stay on its own thread (its
            # parameters are the same on any count: model.training.threads)
            for mine in per_member:
                mine["n_jobs"] = 1
        try:
            with self._shared_rows(X, y, comm) as (X, y):
                def fit_member(k):
                    return self.members[k].fit(X, y, sample_weight=sample_weight,
                                               class_weight=class_weight, **per_member[k])
                if jobs == 1:
                    histories = self._fit_in_turn(fit_member)
                else:
                    self._compile_first(X, settings, values["verbose"])
                    with kernels.blas_threads(1):
                        histories = self._fit_threads(fit_member, jobs)
        except EnsembleInterrupted:
            raise
        except KeyboardInterrupt as stop:  # reading a table or compiling: no member trained
            raise EnsembleInterrupted(n, [], {}, getattr(stop, "signum", signal.SIGINT)) \
                from stop
        self.histories = histories
        return histories

    fit.__signature__ = fit_options.signature(weights=True)

    @contextmanager
    def _shared_rows(self, X, y, comm):
        """(X, y) each member trains on: a table file read once (member 0's preprocessing,
        shared by all), an in-memory X converted to the networks' dtype once."""
        first = self.members[0]
        if comm is None and tabular.is_table(X):
            with tempfile.TemporaryDirectory(prefix="numba-dense-") as work:
                Xa, ya = inputs.table_arrays(first, X, y, work)
                for m in self.members[1:]:
                    m.preprocessing = first.preprocessing
                yield Xa, ya
            return
        if comm is None and not sources.is_streamed(X) and not tabular.is_table(X):
            X = inputs.features_of(first, X)  # checked and converted once, for every member
        yield X, y

    def _compile_first(self, X, settings, verbose):
        """Compile (or load from the cache) the epoch kernel on the main thread before the
        threads start, where a Ctrl-C during compilation is held (``loop.compile_kernels``),
        rather than in every thread at once behind Numba's compiler lock. The workspace's
        size does not enter the kernel's signature: one row's is enough."""
        from ..training import loop, threads
        first = self.members[0]
        try:
            if threads.splits(first, settings.batch_size, is_sparse(X), settings.dropout):
                loop.compile_split_kernels(first, settings, verbose)
            else:
                with loop.helped_compiling(first, settings, is_sparse(X), None) as helper:
                    loop.cost_kernel_beside(helper, first, verbose, False)
                    loop.compile_kernels(first, settings, loop.workspace(first, 1), verbose,
                                         is_sparse(X), loop.read_only_rows(X))
        except Exception:  # noqa: BLE001 - best effort: the members' fits raise it, if real
            pass

    def _fit_in_turn(self, fit_member):
        histories, finished = [], []
        for k in range(len(self.members)):
            try:
                histories.append(fit_member(k))
            except TrainingInterrupted as stop:
                raise EnsembleInterrupted(len(self.members), finished, {k: stop},
                                          stop.signum) from stop
            except KeyboardInterrupt as stop:  # outside an epoch (compiling, reading)
                raise EnsembleInterrupted(len(self.members), finished, {},
                                          getattr(stop, "signum", signal.SIGINT)) from stop
            except Exception as exc:
                raise _noted(exc, k, self.seeds[k])
            finished.append(k)
        return histories

    def _fit_threads(self, fit_member, jobs):
        """Members on ``jobs`` threads, each taking the next member not started.

        Stopping is cooperative (``signals.stop_on``): a thread raises ``KeyboardInterrupt``
        where a held Ctrl-C would be raised on the main thread, after the compiled segment it
        is in, so each member's ``fit`` keeps its work exactly as on Ctrl-C. The main thread
        only waits on an ``Event`` (a Ctrl-C there sets the stop; ``Thread.join`` with a
        timeout is not used while a Ctrl-C can arrive: an interrupted one can mark a running
        thread as finished)."""
        n = len(self.members)
        lock = threading.Lock()
        todo = list(range(n))
        results, errors = {}, {}
        stop, all_done = threading.Event(), threading.Event()
        ended = []

        def work():
            try:
                with signals.stop_on(stop):
                    while True:
                        with lock:
                            if stop.is_set() or not todo:
                                return
                            k = todo.pop(0)
                        try:
                            results[k] = fit_member(k)
                        except BaseException as exc:  # reported by the main thread
                            errors[k] = exc
                            stop.set()
            finally:
                ended.append(threading.current_thread())
                if len(ended) == jobs:
                    all_done.set()

        threads = [threading.Thread(target=work, name="numba-dense-member-%d" % i, daemon=True)
                   for i in range(jobs)]
        for t in threads:
            t.start()
        signum = None
        while not all_done.is_set():
            try:
                all_done.wait(0.1)
            except KeyboardInterrupt as exc:  # Ctrl-C (or a stop signal raised as one)
                signum = signum or getattr(exc, "signum", signal.SIGINT)
                stop.set()
        for t in threads:
            t.join()
        real = {k: e for k, e in errors.items() if not isinstance(e, KeyboardInterrupt)}
        if real:
            k = min(real)
            raise _noted(real[k], k, self.seeds[k])
        if signum is not None or errors:
            cut = {k: e for k, e in errors.items() if isinstance(e, TrainingInterrupted)}
            raise EnsembleInterrupted(n, list(results), cut, signum or signal.SIGINT)
        return [results[k] for k in range(n)]

    # ------------------------------------------------------------------ prediction

    def _stacked(self, X, method):
        """(K, N, ...) of each member's ``predict`` or ``predict_proba`` (``method``) on
        arrays, the rows read once (a table's chunks through the shared preprocessing; a
        classifier's labels are then class indices)."""
        def each(A):
            return np.stack([getattr(m, method)(A) for m in self.members])
        first = self.members[0]
        if tabular.is_table(X):
            prep = inputs.table_preprocessing(first, X)
            counts = {}
            chunks = [each(Xc) for Xc, _ in prep.batches(X, with_target=False, counts=counts)]
            self.last_read = counts
            if chunks:
                return np.concatenate(chunks, axis=1)
            return each(np.empty((0, first.n_inputs), first.dtype))
        if sources.is_streamed(X):
            Xm = sources.open_array(X, "X")
            check_matrix_shape(Xm, "X", first.n_inputs, "features")
            rows = sources.chunk_rows_for(first.n_inputs, first.dtype, 1)
            chunks = [each(Xc) for _, _, Xc in sources.feature_chunks(
                Xm, "X", first.dtype, rows, first.embeddings)]
            return np.concatenate(chunks, axis=1)
        return each(inputs.features_of(first, X))

    def _check_classifier(self, what):
        if not self.is_classifier:
            raise InvalidTypeError("%s needs a classifier (output 'softmax' or 'sigmoid' with "
                                   "a cross-entropy loss); this ensemble has loss=%r"
                                   % (what, self.loss))

    def predict_members(self, X):
        """Each member's ``predict``: (K, N, n_L) outputs for a regression; (K, N) labels
        for a softmax or one-sigmoid classifier ((K, N, n_L) 0/1 for several sigmoids; a
        table's labels as the file spells them). X as for ``predict``."""
        stacked = self._stacked(X, "predict")
        first = self.members[0]
        if self.is_classifier and tabular.is_table(X) and first.preprocessing.classes is not None:
            return first.preprocessing.labels(stacked)
        return stacked

    def predict_proba_members(self, X):
        """Each member's ``predict_proba``, (K, N, C) in the networks' dtype."""
        self._check_classifier("predict_proba_members")
        return self._stacked(X, "predict_proba")

    def _mean(self, stacked):
        return stacked.mean(axis=0, dtype=np.float64).astype(self.dtype)

    def predict_proba(self, X):
        """The members' mean class probabilities, (N, C) in the networks' dtype (C: the
        classes of a softmax, 2 for one sigmoid output as ``[1 - p, p]``, K for K sigmoids).
        ``InvalidTypeError`` for a regression ensemble."""
        self._check_classifier("predict_proba")
        return self._mean(self._stacked(X, "predict_proba"))

    def predict(self, X):
        """Regression: the members' mean output (N, n_L) in the networks' dtype, in the
        target's units. Classifiers: the label of the highest mean probability, (N,) int64
        (the class index, or a table's label as its file spells it); for K sigmoid outputs
        (N, K) 0/1, mean probability > 0.5. X: what ``MLP.predict`` takes (arrays, memmaps,
        ``.npy`` paths, a table path for an ensemble trained on a table)."""
        if self.is_classifier:
            return self._labels(self.predict_proba(X), X)
        return self._mean(self._stacked(X, "predict"))

    def _labels(self, P, X):
        """Labels of (mean) probabilities P (N, C) of rows X."""
        first = self.members[0]
        if first.output == "softmax" or first.n_outputs == 1:
            labels = P.argmax(axis=1).astype(np.int64)  # [1 - p, p]: p > 1 - p
        else:
            labels = (P > 0.5).astype(np.int64)
        if tabular.is_table(X) and first.preprocessing.classes is not None:
            return first.preprocessing.labels(labels)
        return labels

    def score(self, X, y):
        """Accuracy of ``predict`` (classifiers) or R^2 averaged over outputs (regression),
        as ``MLP.score`` measures them; X, y as for ``MLP.score`` (a table path and its
        target's name too)."""
        if tabular.is_table(X):
            return self._table_score(X, y)
        pred = self.predict(X)
        first = self.members[0]
        Y = inputs.targets_of(first, sources.open_array(y, "y"), "y", pred.shape[0], "X")
        if self.is_classifier:
            labels = class_labels(Y, "y", first._target_kind).reshape(pred.shape)
            match = pred == labels if pred.ndim == 1 else (pred == labels).all(axis=1)
            return float(match.mean())
        return _r2(Y.astype(np.float64), pred.astype(np.float64))

    def cost(self, X, y):
        """The members' training costs (``MLP.cost``) averaged: (1/K) sum_k C_k, not the cost of
        the averaged prediction (``score`` measures that). X, y as for ``MLP.cost``."""
        return float(np.mean([m.cost(X, y) for m in self.members]))

    def _table_score(self, path, target):
        prep = inputs.table_preprocessing(self.members[0], path)
        if target != prep.target:
            raise InvalidValueError("y: the ensemble was trained to predict %r, not %r"
                                    % (prep.target, target))
        preds, ys, counts = [], [], {}
        for Xc, yc in prep.batches(path, counts=counts):
            if len(Xc):
                preds.append(self.predict(Xc))
                ys.append(yc)
        self.last_read = counts
        if not preds:
            raise InvalidValueError("%s has no rows with a value in %r"
                                    % (os.fspath(path), target))
        pred, Y = np.concatenate(preds), np.concatenate(ys)
        if self.is_classifier:
            return float((pred.reshape(Y.shape) == Y).mean())
        return _r2(Y.reshape(len(Y), -1).astype(np.float64), pred.astype(np.float64))

    # ------------------------------------------------------------------ files

    def save(self, path):
        """Write the ensemble to ``path`` as one ``.npz`` (each member as
        ``persistence`` writes a network, under ``member<k>.``), atomically. A member with
        NaN/inf parameters is refused (``InvalidValueError`` naming it)."""
        arrays = {"format": np.array(FORMAT), "version": np.array(VERSION),
                  "n_networks": np.array(len(self.members)),
                  "seeds": np.array([-1 if s is None else s for s in self.seeds], np.int64)}
        for k, m in enumerate(self.members):
            bad = first_nonfinite(m.params)
            if bad >= 0:
                raise InvalidValueError("save: member %d's params hold NaN or inf at index %d; "
                                        "it is not written (train it again, with a lower lr)"
                                        % (k, bad))
            tabular.check_preprocessing(m)
            for key, value in persistence.network_arrays(m).items():
                arrays[PREFIX % k + key] = value
        persistence.atomic_savez(path, "save", **arrays)

    @classmethod
    def load(cls, path):
        """Read an ensemble written by ``save``; every member is checked as ``MLP.load``
        checks a network (a one-line ``ValueError`` naming the file, the member and the
        field)."""
        return cls._from_arrays(path, persistence.read_arrays(path))

    @classmethod
    def _from_arrays(cls, path, arrays):
        path = os.fspath(path)
        if "format" not in arrays or str(arrays["format"]) != FORMAT:
            raise persistence.bad_file(path, "format is %r, expected %r (an ensemble file)"
                                       % (str(arrays.get("format")), FORMAT))
        for key in ("version", "n_networks", "seeds"):
            if key not in arrays:
                raise persistence.bad_file(path, "missing array %s" % key)
        version, n = arrays["version"], arrays["n_networks"]
        if version.ndim or version.dtype.kind not in "iu" or not 1 <= int(version) <= VERSION:
            raise persistence.bad_file(path, "version %s, this numba-dense reads 1 to %d"
                                       % (plain(version), VERSION))
        if n.ndim or n.dtype.kind not in "iu" or int(n) < 1:
            raise persistence.bad_file(path, "n_networks is %s, not a count >= 1" % plain(n))
        n = int(n)
        seeds = arrays["seeds"]
        if seeds.shape != (n,) or seeds.dtype.kind not in "iu":
            raise persistence.bad_file(path, "seeds must be %d integers" % n)
        members = []
        for k in range(n):
            prefix = PREFIX % k
            mine = {key[len(prefix):]: v for key, v in arrays.items() if key.startswith(prefix)}
            if not mine:
                raise persistence.bad_file(path, "member %d is missing" % k)
            try:
                members.append(_member_from_state(persistence.load(path, arrays=mine)))
            except ValueError as exc:
                raise persistence.bad_file(path, "member %d: %s"
                                           % (k, str(exc).split("model file: ", 1)[-1])) from None
        try:
            return cls.from_members(members, [None if s < 0 else int(s) for s in seeds])
        except (ValueError, TypeError) as exc:
            raise persistence.bad_file(path, exc) from None

    def to_onnx(self, path=None, opset=None):
        """One ONNX graph averaging the members (``model.network.ensemble_onnx``):
        the inputs and outputs of ``MLP.to_onnx``, ``variable`` the mean output, ``label`` and
        ``probabilities`` from the mean probabilities; a table's preprocessing once."""
        from .ensemble_onnx import to_onnx
        return to_onnx(self, path, opset=opset)


def _architecture(net):
    embeddings = getattr(net, "embeddings", None)
    return (net.layer_sizes, net.hidden, net.output, net.loss, net.quantile, net.dtype,
            None if embeddings is None else embeddings.as_dict())


def _member_from_state(state):
    net = MLP(state["layer_sizes"], hidden=state["hidden"], output=state["output"],
              loss=state["loss"], dtype=state["dtype"], quantile=state.get("quantile"),
              embeddings=state.get("embeddings"))
    net.set_state(state)
    net.history = state["history"]
    net.preprocessing = state["preprocessing"]
    return net


def _r2(Y, pred):
    return r2_score(((Y - pred) ** 2).sum(axis=0), ((Y - Y.mean(axis=0)) ** 2).sum(axis=0))


def _noted(exc, k, seed):
    """``exc`` marked as raised by member ``k`` (a note, and ``exc.ensemble_member``)."""
    note = "raised by member %d of the ensemble (seed %s); the ensemble's training stopped" \
        % (k, seed)
    try:
        exc.ensemble_member = k
    except AttributeError:  # pragma: no cover - an exception that takes no attributes
        pass
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    return exc


def load_model(path):
    """An ``MLP`` or an ``Ensemble``, whichever ``path`` holds (its ``format`` array)."""
    arrays = persistence.read_arrays(path)
    fmt = arrays.get("format")
    if isinstance(fmt, np.ndarray) and fmt.dtype.kind == "U" and fmt.ndim == 0 \
            and str(fmt) == FORMAT:
        return Ensemble._from_arrays(path, arrays)
    return MLP.load(path)
