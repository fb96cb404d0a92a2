"""Activation functions and their derivatives, applied in passes that happen anyway.

Activations are small integer codes (``kernels.variants.ACTIVATION_TABLE``) so that a
whole network's description is an int array that compiled code can read. The derivative
of every activation here is computed from the layer's *output* ``A`` (for ReLU ``A > 0``
exactly where ``Z > 0``), so the forward pass never keeps ``Z``.

Training runs ``add_bias_activate`` and ``_backprop_activation``; the public kernels
``activation_forward``, ``activation_backward`` and ``relu_mask`` are checked wrappers of
those same sweeps, so every formula is written once: in ``_activate`` and
``_derivative_from_output``.

Activations whose derivative needs z
------------------------------------
GELU (exact, ``z Phi(z)``) and SiLU (``z s(z)``) are not monotonic: two values of z give
one output ``a``, so ``sigma'(z)`` is no function of ``a`` and the output-only rule above
cannot serve them (their rows of ``ACTIVATION_TABLE`` set ``needs_z``; ``NEEDS_Z`` for
compiled code). Their forward pass is ``_activate`` like every other's, and
``_derivative_from_input`` gives ``sigma'(z)`` from z (public: ``activation_backward_z``).
In the compiled epoch (``kernels/loop.py``) a hidden layer of theirs keeps its Z in a
workspace block of its own as it activates (``keep_z_and_activate``: the product first
runs with the identity) and its backward sweep reads that Z
(``_backprop_activation_z``); every other layer keeps its output-only sweeps, untouched.
``_backprop_activation`` itself, which has only A, refuses them with ``ValueError``
rather than use a wrong derivative, and so does an output layer of theirs
(``kernels.loss``).
"""

import math

import numpy as np
from numba.extending import register_jitable

from .errors import InvalidValueError
from ._cache import BORROWED, CACHE, njit
from ._checks import (INT, MATRIX, MATRIX_OUT, cast_like, check_float_dtypes,
                      check_same_or_separate, check_same_shape, check_types, kernel)
from .config import FASTMATH_ELEMENTWISE

from .variants import (ACTIVATION_TABLE, ACTIVATIONS, GELU, IDENTITY, LEAKY_RELU,  # noqa: F401
                       LEAKY_SLOPE, N_ACTIVATIONS, RELU, SIGMOID, SILU, TANH)

_SQRT_HALF = 1 / math.sqrt(2)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _activate(z, act):
    """sigma(z) for one element; NaN stays NaN (as np.maximum) so divergence is seen."""
    # The constants take z's type: a float64 0.0 here would make every caller's float32
    # arithmetic double precision (numba unifies the branches' return types). One
    # conditional expression, not an if/or: LLVM makes it a select, where a branch is
    # mispredicted on about half of a ReLU layer's elements.
    if act == RELU:
        return cast_like(0, z) if z <= 0 else z  # NaN is not <= 0: it stays NaN
    if act == TANH:
        return np.tanh(z)
    if act == SIGMOID:
        return _sigmoid_scalar(z)
    if act == LEAKY_RELU:
        return z * cast_like(LEAKY_SLOPE, z) if z <= 0 else z
    if act == GELU:  # exact erf form (PyTorch's default), in float64, then z's type
        return cast_like(0.5 * z * (1.0 + math.erf(z * _SQRT_HALF)), z)
    if act == SILU:
        return z * _sigmoid_scalar(z)
    return z


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _sigmoid_scalar(z):
    """1 / (1 + exp(-z)) without overflow: exp is only taken of a non-positive number."""
    if z >= 0:
        return 1 / (1 + np.exp(-z))
    e = np.exp(z)
    return e / (1 + e)


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _derivative_from_output(a, act):
    """sigma'(z) for one element, from a = sigma(z) (leaky_relu: a > 0 exactly where z > 0)."""
    if act == RELU:
        return 1 if a > 0 else 0
    if act == TANH:
        return 1 - a * a
    if act == SIGMOID:
        return a * (1 - a)
    if act == LEAKY_RELU:
        return 1 if a > 0 else LEAKY_SLOPE
    if act == GELU or act == SILU:
        return np.nan  # none exists: a path that asks anyway diverges rather than mislead
    return 1


@njit(cache=CACHE, fastmath=FASTMATH_ELEMENTWISE, inline="always")
def _derivative_from_input(z, act):
    """sigma'(z) for one element, from the pre-activation z (every activation; the only way
    for those that set ``needs_z``)."""
    if act == GELU:  # Phi(z) + z phi(z)
        return cast_like(0.5 * (1.0 + math.erf(z * _SQRT_HALF))
                         + z * _INV_SQRT_2PI * math.exp(-0.5 * z * z), z)
    if act == SILU:  # s (1 + z (1 - s))
        s = _sigmoid_scalar(z)
        return s * (1 + z * (1 - s))
    return cast_like(_derivative_from_output(_activate(z, act), act), z)


# The two sweeps below run for every layer of every minibatch. The activation is chosen
# outside the loops, so that each loop body is branch-free and LLVM vectorizes it (a branch
# on ``act`` per element kept the backward sweep scalar: docs/performance.md, "Elementwise
# sweeps").

@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def add_bias_activate(out, b, act):
    """In place ``out[i, j] = sigma(out[i, j] + b[j])``: bias and activation in one sweep.

    out (m, n), b (n,). NaN stays NaN through ReLU, as in ``_activate``.
    """
    m, n = out.shape
    zero = cast_like(0, out)
    # Elements by index, not row views (row = out[i]): a view costs an atomic increment
    # and decrement of the array's reference count, per row of every minibatch.
    if act == RELU:
        for i in range(m):
            for j in range(n):
                z = out[i, j] + b[j]
                out[i, j] = zero if z <= 0 else z
    elif act == IDENTITY:
        for i in range(m):
            for j in range(n):
                out[i, j] += b[j]
    else:
        for i in range(m):
            for j in range(n):
                out[i, j] = _activate(out[i, j] + b[j], act)


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def _backprop_activation(A, G, db, act, accumulate):
    """In place ``G *= sigma'(A)``, and ``db = G.sum(axis=0)`` (``+=`` with accumulate).

    A, G (m, n); db (n,). The bias gradient rides along in the sweep that forms the error
    term instead of costing a pass of its own.
    """
    m, n = G.shape
    if not accumulate:
        for j in range(n):
            db[j] = 0
    zero = cast_like(0, G)
    # elements by index, not row views: see add_bias_activate
    if act == RELU:
        for i in range(m):
            for j in range(n):
                v = zero if A[i, j] <= 0 else G[i, j]
                G[i, j] = v
                db[j] += v
    elif act == IDENTITY:
        for i in range(m):
            for j in range(n):
                db[j] += G[i, j]
    else:
        if act == GELU or act == SILU:  # once a call, outside the loops: no cost to tanh's
            raise InvalidValueError("the derivative of gelu and silu needs Z, not the "
                                    "layer's output A: use activation_backward_z (the "
                                    "compiled epoch keeps Z for them, docs/kernels.md)")
        for i in range(m):
            for j in range(n):
                G[i, j] *= _derivative_from_output(A[i, j], act)
                db[j] += G[i, j]


#: 1 for the activation codes whose derivative needs Z (gelu, silu), 0 for the others:
#: what compiled code reads to decide whether a layer keeps its Z (``kernels.loop``).
NEEDS_Z = np.array([1 if a.needs_z else 0 for a in ACTIVATION_TABLE], np.int64)


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def keep_z_and_activate(out, Z, act):
    """In place ``Z = out; out = sigma(out)``: a layer whose derivative needs its
    pre-activation (``NEEDS_Z``) keeps it in ``Z`` (m, n), out (m, n), as it activates."""
    m, n = out.shape
    for i in range(m):
        for j in range(n):
            Z[i, j] = out[i, j]
            out[i, j] = _activate(out[i, j], act)


@njit(cache=CACHE, **BORROWED, fastmath=FASTMATH_ELEMENTWISE)
def _backprop_activation_z(Z, G, db, act, accumulate):
    """``_backprop_activation`` from the pre-activation Z (m, n) kept by
    ``keep_z_and_activate``: in place ``G *= sigma'(Z)``, ``db = G.sum(axis=0)`` (``+=``
    with accumulate)."""
    m, n = G.shape
    if not accumulate:
        for j in range(n):
            db[j] = 0
    for i in range(m):
        for j in range(n):
            G[i, j] *= _derivative_from_input(Z[i, j], act)
            db[j] += G[i, j]


@register_jitable
def _check_act(kernel, act):
    if act < 0 or act >= N_ACTIVATIONS:
        raise InvalidValueError("%s: act is %s, not an activation code (0-%s)", kernel, act,
                                N_ACTIVATIONS - 1)


@kernel
def activation_forward(Z: MATRIX_OUT, act: INT):
    """In place ``Z = sigma(Z)`` for activation code ``act``; Z (m, n)."""
    check_types("activation_forward", Z, act)
    check_float_dtypes("activation_forward", "Z", Z)
    _check_act("activation_forward", act)
    add_bias_activate(Z, np.zeros(Z.shape[1], Z.dtype), act)


@kernel
def activation_backward(A: MATRIX, G: MATRIX_OUT, act: INT):
    """In place ``G *= sigma'(Z)``, computed from the layer's output ``A = sigma(Z)``.

    A, G (m, n). ReLU: ``A > 0``; tanh: ``1 - A**2``; sigmoid: ``A (1 - A)``; leaky_relu:
    1 or 0.01; identity: 1; gelu and silu: ``ValueError`` (their derivative needs Z:
    ``activation_backward_z``). G may be A itself (each element is read before it is written),
    but not a view overlapping A otherwise.
    """
    check_types("activation_backward", A, G, act)
    check_same_shape("activation_backward", "A, G", G, "G", A, "A")
    check_same_or_separate("activation_backward", "G", G, "A", A)
    _check_act("activation_backward", act)
    _backprop_activation(A, G, np.empty(G.shape[1], G.dtype), act, False)


@kernel
def activation_backward_z(Z: MATRIX, G: MATRIX_OUT, act: INT):
    """In place ``G *= sigma'(Z)``, computed from the layer's pre-activation ``Z``.

    Z, G (m, n), one float dtype; every activation code, and the only backward kernel for
    those whose derivative needs Z (gelu: ``Phi(Z) + Z phi(Z)``; silu:
    ``s(Z) (1 + Z (1 - s(Z)))``). G may be Z itself, not a view overlapping it otherwise;
    ``ValueError`` for an unknown code or mismatched shapes.
    """
    check_types("activation_backward_z", Z, G, act)
    check_same_shape("activation_backward_z", "Z, G", G, "G", Z, "Z")
    check_same_or_separate("activation_backward_z", "G", G, "Z", Z)
    _check_act("activation_backward_z", act)
    m, n = G.shape
    for i in range(m):
        for j in range(n):
            G[i, j] *= _derivative_from_input(Z[i, j], act)


@kernel
def relu_mask(A: MATRIX, G: MATRIX_OUT):
    """In place ``G[i, j] = 0`` wherever ``A[i, j] <= 0``: backprop through ReLU.

    A, G (m, n), the layer's stored activations and the gradient with respect to them.
    G may be A itself (then ``A = max(A, 0)``), not a view overlapping A otherwise.
    """
    check_types("relu_mask", A, G)
    check_same_shape("relu_mask", "A, G", G, "G", A, "A")
    check_same_or_separate("relu_mask", "G", G, "A", A)
    _backprop_activation(A, G, np.empty(G.shape[1], G.dtype), RELU, False)
