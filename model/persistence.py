"""Saving and loading networks as .npz files: plain arrays only, never pickle."""

import os
import tempfile
import zipfile

import numpy as np

import kernels

FORMAT = "numba-dense-mlp"
VERSION = 2  # 2 added the cost ("loss"); version 1 files are MSE networks


def atomic_savez(path, what, **arrays):
    """``np.savez`` to ``path`` through a temporary file and a rename: never a half file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError("%s: folder %r does not exist" % (what, folder))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def network_arrays(net):
    """Everything that defines a trained network, as plain arrays."""
    return dict(format=np.array(FORMAT), version=np.array(VERSION), layer_sizes=net.sizes,
                hidden=np.array(net.hidden), output=np.array(net.output),
                loss=np.array(net.loss), dtype=np.array(net.dtype.name),
                params=net.params, velocity=net.velocity)


def save(net, path):
    """Write ``net`` to ``path`` (the exact name given); a crash mid-write leaves no half file."""
    atomic_savez(path, "save", **network_arrays(net))


def _bad(path, why):
    return ValueError("load: %r is not a valid numba-dense model file: %s" % (path, why))


def read_arrays(path, what="load"):
    """Every array of an .npz file, or a clear error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError("%s: no such file: %r" % (what, path))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise _bad(path, "%s: %s" % (type(exc).__name__, exc)) from None


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
    if int(arrays["version"]) not in (1, VERSION):
        raise _bad(path, "version %d, this numba-dense reads versions 1 to %d"
                   % (int(arrays["version"]), VERSION))
    sizes = arrays["layer_sizes"]
    if sizes.ndim != 1 or sizes.dtype.kind not in "iu" or len(sizes) < 2 or (sizes < 1).any():
        raise _bad(path, "layer_sizes is %r" % (sizes,))
    n_params = int(kernels.param_count(sizes.astype(np.int64)))
    for key in ("params", "velocity"):
        if arrays[key].shape != (n_params,):
            raise _bad(path, "%s has shape %s but layer_sizes %s need (%d,)"
                       % (key, arrays[key].shape, sizes.tolist(), n_params))
    return {"layer_sizes": sizes.tolist(), "hidden": str(arrays["hidden"]),
            "output": str(arrays["output"]), "dtype": str(arrays["dtype"]),
            "loss": str(arrays["loss"]) if "loss" in arrays else "mse",
            "params": arrays["params"], "velocity": arrays["velocity"]}
