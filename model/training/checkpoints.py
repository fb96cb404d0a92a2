"""Checkpoints: everything the next epoch depends on (parameters, optimizer state, the
shuffling RNG, the history, the best parameters so far), written atomically, so that a
resumed run continues bit for bit."""

import json
import os
import warnings
from dataclasses import asdict

import numpy as np

from ...kernels.errors import InvalidValueError
from ..network import persistence
from .history import History
from .signals import sigint_ignored


CHECKPOINT_FORMAT = "numba-dense-checkpoint"


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


def keep_checkpoint(path, net, epoch, rng, history, best, settings):
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
    embeddings = getattr(net, "embeddings", None)
    mine = dict(layer_sizes=net.layer_sizes, hidden=net.hidden, output=net.output,
                loss=net.loss, quantile=getattr(net, "quantile", None), dtype=net.dtype.name,
                embeddings=None if embeddings is None else embeddings.as_dict())
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


def interrupt_checkpoint(checkpoint, net, before, whole, settings):
    """Write the checkpoint of the last whole epoch; the network keeps its current state."""
    epoch, rng_state, history, best = whole
    now = net.snapshot()
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    with sigint_ignored():
        net.restore(before)
        try:
            keep_checkpoint(checkpoint, net, epoch, rng, history, best, settings)
        finally:
            net.restore(now)


def resume_state(checkpoint, net, settings):
    """The checkpoint's state, or None when there is none yet (a first run with resume=True)."""
    if not os.path.exists(checkpoint):
        return None
    epoch, rng_state, history, best = load_checkpoint(checkpoint, net, settings)
    return epoch, rng_state, history, best, net.snapshot()
