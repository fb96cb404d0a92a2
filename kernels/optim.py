"""Parameter updates on the flat parameter vector (Theta of docs/MATH.md).

An optimizer is a code of ``kernels.variants.OPTIMIZER_TABLE``, one flat ``state`` vector
(momentum's velocity (P,); Adam's first and second moments, (2P,) as ``[m, v]``) and a
step count ``t``. ``_optimizer_step`` is the one update that training, data-parallel
training and the public kernels run; each optimizer is one compiled sweep below.
"""

import numpy as np
from numba import njit

from ._cache import CACHE
from ._checks import (cast_like, check_dim, check_float_dtypes, check_same_or_separate,
                      check_separate, real_text)
from .variants import ADAM, ADAMW, N_OPTIMIZERS, OPTIMIZER_TABLE, OPTIMIZERS, SGD  # noqa: F401

_FAST = {"contract"}

#: Flat state vectors per parameter vector, by optimizer code (compiled code reads this).
_STATE_VECTORS = np.array([o.state_vectors for o in OPTIMIZER_TABLE], np.int64)


@njit(cache=CACHE, fastmath=_FAST)
def _sgd_sweep(params, grads, lr):
    """``params -= lr * grads``."""
    lr = cast_like(lr, params)
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]


@njit(cache=CACHE, fastmath=_FAST)
def _momentum_sweep(params, grads, velocity, lr, momentum, weight_decay, nesterov):
    """``g = grads + wd * params; v = mu * v + g;``
    ``params -= lr * (g + mu * v if nesterov else v)``."""
    lr = cast_like(lr, params)
    mu = cast_like(momentum, params)
    wd = cast_like(weight_decay, params)
    for i in range(params.shape[0]):
        g = grads[i] + wd * params[i]
        v = mu * velocity[i] + g
        velocity[i] = v
        params[i] -= lr * (g + mu * v if nesterov else v)


# error_model="numpy": a division by zero gives inf as in NumPy instead of a check that
# raises (the check's branch kept the loop from vectorizing: 4x slower).
@njit(cache=CACHE, fastmath=_FAST, error_model="numpy")
def _adam_sweep(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam (or, with ``decoupled``, AdamW) step at 1-based step ``t``, as PyTorch's.

    ``g = grads (+ wd * params unless decoupled); m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g**2; params -= lr * m / (1 - b1**t) / (sqrt(v / (1 - b2**t)) + eps)``,
    and with ``decoupled`` first ``params *= 1 - lr * wd``.
    """
    c1 = 1.0 / (1.0 - beta1 ** t)            # bias corrections, in float64 once per step
    c2 = 1.0 / np.sqrt(1.0 - beta2 ** t)
    step = cast_like(lr * c1, params)
    c2 = cast_like(c2, params)
    b1 = cast_like(beta1, params)
    b2 = cast_like(beta2, params)
    e = cast_like(eps, params)
    one = cast_like(1, params)
    l2 = cast_like(0.0 if decoupled else weight_decay, params)
    shrink = cast_like(1.0 - lr * weight_decay if decoupled else 1.0, params)
    for i in range(params.shape[0]):
        p = params[i]
        g = grads[i] + l2 * p
        mi = b1 * m[i] + (one - b1) * g
        vi = b2 * v[i] + (one - b2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] = p * shrink - step * mi / (np.sqrt(vi) * c2 + e)


@njit(cache=CACHE)
def _optimizer_step(params, grads, state, optimizer, t, lr, momentum, weight_decay, beta1,
                    beta2, eps, nesterov):
    """One step of optimizer code ``optimizer`` at 1-based step ``t``; params, grads (P,),
    state (P * state_vectors,). Plain SGD (momentum and weight_decay 0) needs no state."""
    P = params.shape[0]
    if optimizer == ADAM or optimizer == ADAMW:
        _adam_sweep(params, grads, state[:P], state[P:2 * P], t, lr, beta1, beta2, eps,
                    weight_decay, optimizer == ADAMW)
    elif momentum == 0 and weight_decay == 0:
        _sgd_sweep(params, grads, lr)
    else:
        _momentum_sweep(params, grads, state[:P], lr, momentum, weight_decay, nesterov)


@njit(cache=CACHE)
def _check_hyperparameters(kernel, lr, momentum, weight_decay):
    """The one check of the step sizes every update and ``train_epoch`` take: ``lr`` positive
    and finite, ``momentum`` in [0, 1), ``weight_decay`` non-negative and finite (NaN is
    refused by every test: each is written so that NaN fails it)."""
    if not (lr > 0 and lr < np.inf):
        raise ValueError(kernel + ": lr must be positive and finite, got " + real_text(lr))
    if not (momentum >= 0 and momentum < 1):
        raise ValueError(kernel + ": momentum must be in [0, 1), got " + real_text(momentum))
    if not (weight_decay >= 0 and weight_decay < np.inf):
        raise ValueError(kernel + ": weight_decay must be non-negative and finite, got "
                         + real_text(weight_decay))


@njit(cache=CACHE)
def _check_optimizer(kernel, params, state, state_name, optimizer, lr, momentum, weight_decay,
                     beta1, beta2, eps):
    """The checks of an optimizer code, its state's length and its hyperparameters."""
    if optimizer < 0 or optimizer >= N_OPTIMIZERS:
        raise ValueError(kernel + ": optimizer is " + str(optimizer)
                         + ", not an optimizer code (kernels.OPTIMIZERS)")
    _check_hyperparameters(kernel, lr, momentum, weight_decay)
    if optimizer != SGD or momentum != 0 or weight_decay != 0:  # plain SGD has no state
        vectors = _STATE_VECTORS[optimizer]
        check_dim(kernel, state_name, state.shape[0],
                  "params" if vectors == 1 else str(vectors) + " x params",
                  params.shape[0] * vectors, "elements")
    if optimizer == ADAM or optimizer == ADAMW:
        _check_adam(kernel, beta1, beta2, eps)


@njit(cache=CACHE)
def _check_adam(kernel, beta1, beta2, eps):
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(kernel + ": beta1 and beta2 must be in [0, 1), got "
                         + real_text(beta1) + " and " + real_text(beta2))
    if not (eps > 0 and eps < np.inf):
        raise ValueError(kernel + ": eps must be positive and finite, got " + real_text(eps))


@njit(cache=CACHE)
def _check_update(kernel, names, params, grads, state, state_name):
    """Dtypes and lengths of an update's vectors; grads may be params itself (every sweep
    reads an element before it writes that element), but no other view overlapping it."""
    check_float_dtypes(kernel, names, params, grads, state)
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_dim(kernel, state_name, state.shape[0], "params", params.shape[0], "elements")
    check_same_or_separate(kernel, "params", params, "grads", grads)


@njit(cache=CACHE)
def _check_state(kernel, state_name, state, params, grads):
    """An optimizer's state (written) shares no memory with params; it may be grads itself
    (read before written, element by element), but no other view overlapping grads."""
    check_separate(kernel, state_name, state, "params", params)
    check_same_or_separate(kernel, state_name, state, "grads", grads)


@njit(cache=CACHE)
def sgd_update(params, grads, lr):
    """``params -= lr * grads`` in place; params, grads (P,); lr positive and finite."""
    _check_update("sgd_update", "params, grads", params, grads, grads, "grads")
    _check_hyperparameters("sgd_update", lr, 0.0, 0.0)
    _sgd_sweep(params, grads, lr)


@njit(cache=CACHE)
def sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay):
    """``velocity = momentum * velocity + grads + weight_decay * params; params -= lr * velocity``.

    params, grads, velocity (P,), updated in place; lr positive, momentum in [0, 1),
    weight_decay non-negative.
    """
    kernel = "sgd_momentum_update"
    _check_update(kernel, "params, grads, velocity", params, grads, velocity, "velocity")
    _check_state(kernel, "velocity", velocity, params, grads)
    _check_hyperparameters(kernel, lr, momentum, weight_decay)
    _momentum_sweep(params, grads, velocity, lr, momentum, weight_decay, False)


@njit(cache=CACHE)
def adam_update(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled):
    """One Adam step in place: params, grads, m, v (P,); ``t`` the 1-based step number.

    ``weight_decay`` is added to the gradient (L2, as PyTorch's ``Adam`` and
    scikit-learn's ``alpha``) or, with ``decoupled``, applied to the parameters as
    ``params *= 1 - lr * weight_decay`` (AdamW). m and v start at zero.
    """
    kernel = "adam_update"
    _check_update(kernel, "params, grads, m, v", params, grads, m, "m")
    _check_update(kernel, "params, grads, m, v", params, grads, v, "v")
    _check_state(kernel, "m", m, params, grads)
    _check_state(kernel, "v", v, params, grads)
    check_separate(kernel, "v", v, "m", m)
    _check_hyperparameters(kernel, lr, 0.0, weight_decay)
    _check_adam(kernel, beta1, beta2, eps)
    if t < 1:
        raise ValueError(kernel + ": t is " + str(t) + "; steps count from 1")
    _adam_sweep(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled)


@njit(cache=CACHE)
def optimizer_step(params, grads, state, optimizer, t, lr, momentum, weight_decay, beta1, beta2,
                   eps, nesterov):
    """One step of optimizer code ``optimizer`` (``kernels.OPTIMIZERS``), the step training
    takes: params, grads (P,); ``state`` the optimizer's state (``train_epoch``'s
    velocity: (P,) for SGD with momentum or weight decay, empty allowed for plain SGD;
    (2P,) ``[m, v]`` for Adam and AdamW); ``t`` the 1-based step number. The
    hyperparameters are checked as ``train_epoch`` checks them."""
    kernel = "optimizer_step"
    check_float_dtypes(kernel, "params, grads, state", params, grads, state)
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_same_or_separate(kernel, "params", params, "grads", grads)
    _check_state(kernel, "state", state, params, grads)
    _check_optimizer(kernel, params, state, "state", optimizer, lr, momentum, weight_decay,
                     beta1, beta2, eps)
    if t < 1:
        raise ValueError(kernel + ": t is " + str(t) + "; steps count from 1")
    _optimizer_step(params, grads, state, optimizer, t, lr, momentum, weight_decay, beta1,
                    beta2, eps, nesterov)
