"""Saving and loading networks as .npz files: plain arrays only, never pickle."""

import json
import os
from dataclasses import asdict

import numpy as np

import kernels

from .data import read_npz
from .paths import atomic_write
from .targets import TargetScaling

FORMAT = "numba-dense-mlp"
VERSION = 5  # 5 the regression target's scaling; 4 the optimizer and its step, and a table file's preprocessing; 3 the last fit's history; 2 the cost ("loss")


def atomic_savez(path, what, **arrays):
    """``np.savez`` to ``path`` through a temporary file and a rename: never a half file."""
    atomic_write(path, what, lambda f: np.savez(f, **arrays))


def network_arrays(net):
    """Everything that defines a trained network, as plain arrays (the history as JSON)."""
    history = getattr(net, "history", None)
    return dict(format=np.array(FORMAT), version=np.array(VERSION), layer_sizes=net.sizes,
                hidden=np.array(net.hidden), output=np.array(net.output),
                loss=np.array(net.loss), dtype=np.array(net.dtype.name),
                params=net.params, velocity=net.velocity,
                optimizer=np.array(net.optimizer), step=np.array(net.step),
                fit_history=np.array(json.dumps(asdict(history)) if history else ""),
                preprocessing=np.array(net.preprocessing.to_json() if getattr(
                    net, "preprocessing", None) is not None else ""),
                **_scaling_arrays(getattr(net, "target_scaling", None)))


def _scaling_arrays(scaling):
    if scaling is None:
        return {"target_mean": np.empty(0), "target_scale": np.array(1.0)}
    return scaling.to_arrays()


def save(net, path):
    """Write ``net`` to ``path`` (the exact name given); a crash mid-write leaves no half file."""
    atomic_savez(path, "save", **network_arrays(net))


def _bad(path, why):
    return ValueError("load: %r is not a valid numba-dense model file: %s" % (path, why))


def read_arrays(path, what="load"):
    """Every array of an .npz file, or a clear error."""
    try:
        return read_npz(path, what)
    except ValueError as exc:
        raise _bad(os.fspath(path), str(exc).split(": ", 2)[-1]) from None


def load(path, arrays=None):
    """The saved state of a network as a dict of plain values, checked for consistency."""
    path = os.fspath(path)
    if arrays is None:
        arrays = read_arrays(path)
    needed = ("format", "version", "layer_sizes", "hidden", "output", "dtype", "params",
              "velocity")
    missing = [key for key in needed if key not in arrays]
    if missing:
        raise _bad(path, "missing arrays %s" % ", ".join(missing))
    if str(arrays["format"]) != FORMAT:
        raise _bad(path, "format is %r, expected %r" % (str(arrays["format"]), FORMAT))
    if int(arrays["version"]) not in range(1, VERSION + 1):
        raise _bad(path, "version %d, this numba-dense reads versions 1 to %d"
                   % (int(arrays["version"]), VERSION))
    sizes = arrays["layer_sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or (sizes < 1).any():
        raise _bad(path, "layer_sizes is %r" % (sizes,))
    n_params = int(kernels.param_count(sizes.astype(np.int64)))
    optimizer = str(arrays["optimizer"]) if "optimizer" in arrays else "sgd"
    if optimizer not in kernels.OPTIMIZERS:
        raise _bad(path, "optimizer is %r, not one of %s"
                   % (optimizer, ", ".join(kernels.OPTIMIZERS)))
    vectors = kernels.OPTIMIZER_TABLE[kernels.OPTIMIZERS[optimizer]].state_vectors
    for key, n in (("params", n_params), ("velocity", vectors * n_params)):
        if arrays[key].shape != (n,):
            raise _bad(path, "%s has shape %s but layer_sizes %s need (%d,)"
                       % (key, arrays[key].shape, sizes.tolist(), n))
    return {"layer_sizes": sizes.tolist(), "hidden": str(arrays["hidden"]),
            "output": str(arrays["output"]), "dtype": str(arrays["dtype"]),
            "loss": str(arrays["loss"]) if "loss" in arrays else "mse",
            "params": arrays["params"], "velocity": arrays["velocity"],
            "optimizer": optimizer, "step": int(arrays["step"]) if "step" in arrays else 0,
            "history": _history(path, arrays), "preprocessing": _preprocessing(path, arrays),
            "target_scaling": _target_scaling(path, arrays, int(sizes[-1]))}


def _target_scaling(path, arrays, n_outputs):
    try:
        return TargetScaling.from_arrays(arrays, n_outputs)
    except (ValueError, TypeError) as exc:
        raise _bad(path, str(exc)) from None


def _preprocessing(path, arrays):
    """The ``tabular.Preprocessing`` saved with a network trained on a table file, or None."""
    text = str(arrays["preprocessing"]) if "preprocessing" in arrays else ""
    if not text:
        return None
    from .tabular import Preprocessing
    try:
        return Preprocessing.from_json(text)
    except ValueError as exc:
        raise _bad(path, "preprocessing is not valid JSON: %s" % exc) from None


def _history(path, arrays):
    """The saved ``History`` of the last fit, or None (older files, untrained networks)."""
    text = str(arrays["fit_history"]) if "fit_history" in arrays else ""
    if not text:
        return None
    from .training import History
    try:
        return History(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise _bad(path, "fit_history is not a valid history: %s" % exc) from None
