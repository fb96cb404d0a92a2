"""Prediction for one row and small batches: one compiled call, no allocation, no BLAS.

``predict_into`` is built for many rows (BLAS products over batches, a workspace sized for
a batch). A request that carries one row, or a few, spends its time elsewhere: a BLAS call
costs microseconds to set up, and every array the call allocates costs another fraction of
one. ``predict_rows`` runs the network row by row with plain loops over the weights (each
output a dot product of a contiguous row of ``W`` with the row's activations), in two
slices of the caller's ``workspace``, on the calling thread (``nogil``: threads of the
caller's own run in parallel). Its checks compare a handful of integers, so a call costs
about what the row's multiply-adds cost.

Call it from Python, or from your own ``@njit`` code (a server loop, a simulation that
queries a network at every step)::

    work = np.empty(predict_workspace_size(net.sizes), np.float32)  # once
    out = np.empty((1, n_outputs), np.float32)                       # once
    predict_rows(x_row[None, :], net.params, kernels.network(net.sizes, net.acts), out, work)
"""

import numpy as np
from numba.extending import register_jitable

from ._cache import CACHE, njit
from ._checks import (INTS, MATRIX, MATRIX_OUT, VECTOR, VECTOR_OUT, as_int64, cast_like, check_dim,
                      check_float_dtypes, check_separate, check_types, checked_add,
                      checked_mul, kernel)
from .activations import N_ACTIVATIONS, _activate
from .config import FASTMATH_REDUCTION
from .errors import InvalidValueError, TooLargeError
from .records import Network


@kernel
def predict_workspace_size(sizes: INTS):
    """The length of ``predict_rows``' workspace for layer widths ``sizes`` (L + 1,) int:
    twice the widest hidden layer (at least 1), whatever the number of rows."""
    check_types("predict_workspace_size", sizes)
    need = _predict_workspace_size(as_int64("predict_workspace_size", "sizes", sizes))
    if need < 0:
        raise TooLargeError("predict_workspace_size: sizes %s need more than 2**63 - 1 workspace "
                            "elements, beyond int64", sizes)
    return need


@njit(cache=CACHE)
def _predict_workspace_size(sizes):
    widest = 1
    for l in range(1, sizes.shape[0] - 1):
        widest = max(widest, sizes[l])
    return checked_mul(2, widest)  # -1 beyond int64


@njit(cache=CACHE, fastmath=FASTMATH_REDUCTION)
def _layer(a, params, offset, n_in, n_out, act, out):
    """``out[j] = sigma(W[j] . a + b[j])`` for one row ``a`` (n_in,), W (n_out, n_in) and b
    (n_out,) read from ``params`` at ``offset``."""
    W = params[offset:offset + n_out * n_in]
    b = params[offset + n_out * n_in:offset + n_out * n_in + n_out]
    for j in range(n_out):
        w = W[j * n_in:(j + 1) * n_in]
        s = cast_like(0, out)
        for p in range(n_in):
            s += w[p] * a[p]
        out[j] = _activate(s + b[j], act)


@njit(cache=CACHE)
def _forward_rows(X, params, sizes, acts, out, workspace, transform):
    """Unchecked: ``out`` (m, n_L) = the last layer of the network for rows X (m, n_0); then,
    when ``transform`` (2 + n_L,) is not empty, ``out * transform[0] + transform[2:]`` and
    ``exp`` of that when ``transform[1]`` is not 0. ``workspace``:
    ``predict_workspace_size(sizes)`` elements."""
    n_layers = sizes.shape[0] - 1
    half = workspace.shape[0] // 2
    for i in range(X.shape[0]):
        a = X[i]
        offset = 0
        for l in range(n_layers):
            n_in, n_out = sizes[l], sizes[l + 1]
            if l == n_layers - 1:
                target = out[i]
            else:
                target = workspace[(l % 2) * half:(l % 2) * half + n_out]
            _layer(a, params, offset, n_in, n_out, acts[l], target)
            offset += n_out * n_in + n_out
            a = target
        if transform.shape[0] > 0:
            scale = transform[0]
            for j in range(out.shape[1]):
                out[i, j] = out[i, j] * scale + transform[2 + j]
            if transform[1] != 0:
                for j in range(out.shape[1]):
                    out[i, j] = np.exp(out[i, j])


@register_jitable
def _check_rows_call(kernel, X, params, sizes, acts, out, workspace):
    """The checks of ``predict_rows``: a few integer comparisons, whatever the row count."""
    n_layers = sizes.shape[0] - 1
    if n_layers < 1 or acts.shape[0] != n_layers:
        raise InvalidValueError("%s: network.sizes %s and network.acts %s do not describe a "
                                "network (L + 1 widths, L activation codes, L >= 1)", kernel,
                                sizes, acts)
    n_params = 0
    for l in range(n_layers):
        if sizes[l] < 1 or sizes[l + 1] < 1:
            raise InvalidValueError("%s: network.sizes %s must all be >= 1", kernel, sizes)
        if acts[l] < 0 or acts[l] >= N_ACTIVATIONS:
            raise InvalidValueError("%s: network.acts[%s] is %s, not an activation code (0-%s)",
                                    kernel, l, acts[l], N_ACTIVATIONS - 1)
        # checked: widths near 2**63 must not wrap round to a count that fits params
        n_params = checked_add(n_params, checked_add(checked_mul(sizes[l + 1], sizes[l]),
                                                     sizes[l + 1]))
    if n_params < 0:
        raise TooLargeError("%s: network.sizes %s make more than 2**63 - 1 weights and biases, "
                            "beyond int64", kernel, sizes)
    check_dim(kernel, "params", params.shape[0], "network", n_params, "elements")
    check_dim(kernel, "X", X.shape[1], "network.sizes[0]", sizes[0], "columns")
    check_dim(kernel, "out", out.shape[0], "X", X.shape[0], "rows")
    check_dim(kernel, "out", out.shape[1], "network.sizes[-1]", sizes[n_layers], "columns")
    need = _predict_workspace_size(sizes)
    if need < 0 or workspace.shape[0] < need:
        raise InvalidValueError("%s: workspace has %s elements but the network needs %s "
                                "(predict_workspace_size(network.sizes))", kernel,
                                workspace.shape[0], need)
    check_separate(kernel, "out", out, "X", X)
    check_separate(kernel, "out", out, "params", params)
    check_separate(kernel, "out", out, "workspace", workspace)
    check_separate(kernel, "workspace", workspace, "X", X)
    check_separate(kernel, "workspace", workspace, "params", params)


@kernel
def predict_rows(X: MATRIX, params: VECTOR, network: Network, out: MATRIX_OUT,
                 workspace: VECTOR_OUT):
    """``out`` (m, n_L) = the last layer's outputs of ``network`` with ``params`` (P,) for
    rows X (m, n_0): one row or a few, on the calling thread, allocating nothing.

    The values of ``predict_into`` (logits for a cross-entropy network, ``z`` before the
    ``exp`` of a Poisson one), computed row by row with loops instead of batched products:
    fastest up to a few dozen rows; ``predict_into`` beyond. ``workspace`` (at least
    ``predict_workspace_size(network.sizes)`` elements) is scratch; X, params, out and
    workspace share one float dtype (float32 or float64); X and out need not be
    contiguous. ``out`` and ``workspace`` share no memory with each other or an input.
    Raises ``ValueError`` for sizes that do not fit, ``TypeError`` for wrong types.
    """
    check_types("predict_rows", X, params, network, out, workspace)
    kernel = "predict_rows"
    sizes = as_int64(kernel, "network.sizes", network.sizes)
    acts = as_int64(kernel, "network.acts", network.acts)
    check_float_dtypes(kernel, "X, params, out, workspace", X, params, out, workspace)
    _check_rows_call(kernel, X, params, sizes, acts, out, workspace)
    _forward_rows(X, params, sizes, acts, out, workspace, params[:0])


@kernel
def predict_transformed(X: MATRIX, params: VECTOR, sizes: INTS, acts: INTS, out: MATRIX_OUT,
                        workspace: VECTOR_OUT, transform: VECTOR):
    """``predict_rows`` with the output's transform in the same call, and the network as its
    two arrays (``sizes`` (L + 1,), ``acts`` (L,): from Python, a call costs less than with a
    record): ``out = out * transform[0] + transform[2:]`` (a regression's target scaling:
    its scale, then the means of the n_L outputs; 1 and zeros for none), then ``exp(out)``
    where ``transform[1]`` is not 0 (a Poisson network's rates). ``MLP.predict``'s path for
    small inputs. ``transform`` (2 + n_L,) has X's dtype; shapes, dtypes and errors
    otherwise as ``predict_rows``.

    Returns True; False, leaving ``out`` unwritten, when X holds a value that is not
    finite (NaN or inf: a request to refuse; ``MLP.predict`` then raises naming it).
    """
    check_types("predict_transformed", X, params, sizes, acts, out, workspace, transform)
    kernel = "predict_transformed"
    sizes = as_int64(kernel, "sizes", sizes)
    acts = as_int64(kernel, "acts", acts)
    check_float_dtypes(kernel, "X, params, out, workspace, transform", X, params, out,
                       workspace, transform)
    _check_rows_call(kernel, X, params, sizes, acts, out, workspace)
    check_dim(kernel, "transform", transform.shape[0], "2 + network.sizes[-1]",
              2 + sizes[sizes.shape[0] - 1], "elements")
    check_separate(kernel, "out", out, "transform", transform)
    for k in range(transform.shape[0]):
        if not np.isfinite(transform[k]):
            raise InvalidValueError("%s: transform[%s] is %g: it must be finite", kernel, k,
                                    transform[k])
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            if not np.isfinite(X[i, j]):
                return False
    _forward_rows(X, params, sizes, acts, out, workspace, transform)
    return True
