"""Parameter updates on the flat parameter vector (Theta of docs/MATH.md).

An optimizer is an ``Optimizer`` record: the code of its row of
``kernels.variants.OPTIMIZER_TABLE``, its hyperparameters (``HYPERPARAMETER_TABLE``), its
state -- one flat vector, momentum's velocity (P,) or Adam's first and second moments
(2P,) as ``[m, v]`` -- and ``steps``, a one-element int64 array counting the steps taken,
which every step advances. ``kernels.optimizer`` makes one. ``_optimizer_step`` is the one
update that training, data-parallel training and the public kernels run; each optimizer
is one compiled sweep below.
"""

import numbers
from collections import namedtuple

import numpy as np
from numba.extending import register_jitable

from .errors import InvalidTypeError, InvalidValueError
from ._cache import BORROWED, CACHE, njit
from ._checks import (FLAG, INT, INTS, REAL, VECTOR, VECTOR_OUT, cast_like, check_dim,
                      check_float_dtypes, check_same_or_separate, check_separate, check_types,
                      kernel)
from .config import FASTMATH_ELEMENTWISE
from .variants import (ADAM, ADAMW, HYPERPARAMETER_TABLE, HYPERPARAMETERS, N_OPTIMIZERS,
                       OPTIMIZER_TABLE, OPTIMIZERS, SGD)

_FAST = FASTMATH_ELEMENTWISE

#: Flat state vectors per parameter vector, by optimizer code (compiled code reads this).
_STATE_VECTORS = np.array([o.state_vectors for o in OPTIMIZER_TABLE], np.int64)


class Optimizer(namedtuple("Optimizer", ["code"] + [h.name for h in HYPERPARAMETER_TABLE]
                           + ["state", "steps"])):
    """An optimizer as compiled code takes it: ``code`` (``kernels.OPTIMIZERS``), one field
    per hyperparameter of ``kernels.variants.HYPERPARAMETER_TABLE``, ``state`` (its flat
    state vector, written; empty allowed for plain SGD) and ``steps`` (int64 (1,), the
    steps taken, advanced by each step). Make one with ``kernels.optimizer``; a schedule
    changes the rate with ``opt._replace(lr=...)``, which keeps the same state."""

    __slots__ = ()
    FIELDS = dict([("code", INT)] + [(h.name, FLAG if h.is_flag else REAL)
                                     for h in HYPERPARAMETER_TABLE]
                  + [("state", VECTOR_OUT), ("steps", INTS)])
    MADE_BY = "kernels.optimizer(name, params, lr, ...)"


def state_size(name, n_params):
    """Elements of state optimizer ``name`` keeps for ``n_params`` parameters."""
    return OPTIMIZER_TABLE[OPTIMIZERS[name]].state_vectors * n_params


def check_hyperparameter(name, value, optimizer=None):
    """``value`` of hyperparameter ``name`` as a float (bool for flags), or a one-line
    ``ValueError``/``TypeError`` naming it, its interval and the value; with ``optimizer``
    (a name), one that optimizer does not read is refused."""
    h = HYPERPARAMETERS.get(name)
    if h is None:
        raise InvalidTypeError("%r is not an optimizer hyperparameter; they are %s"
                               % (name, ", ".join(HYPERPARAMETERS)))
    if optimizer is not None and optimizer not in h.optimizers:
        raise InvalidValueError("%s applies to optimizer %s, not %r"
                                % (name, " or ".join(h.optimizers), optimizer))
    if h.is_flag:
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidTypeError("%s must be True or False, got %r" % (name, value))
        return bool(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidTypeError("%s must be a real number, got %r" % (name, value))
    value = float(value)
    above = value >= h.low if h.low_closed else value > h.low
    below = value <= h.high if h.high_closed else value < h.high
    if not (above and below):
        raise InvalidValueError("%s must be in %s, got %r" % (name, interval(h), value))
    return value


def interval(h):
    """The interval of a hyperparameter as text: ``[0, 1)``, ``(0, inf)``."""
    return "%s%g, %g%s" % ("[" if h.low_closed else "(", h.low, h.high,
                           "]" if h.high_closed else ")")


def optimizer(name, params, lr, state=None, step=0, **hyperparameters):
    """An ``Optimizer`` record for ``params`` (P,): ``name`` "sgd", "adam" or "adamw"
    (``kernels.OPTIMIZERS``), ``lr`` its rate, other hyperparameters by name (defaults and
    intervals: ``kernels.variants.HYPERPARAMETER_TABLE``; one that ``name`` does not read is
    refused). ``state`` defaults to zeros of params' dtype ((P,) for SGD with momentum or
    weight decay, (2P,) for Adam, empty for plain SGD); ``step``: the steps already taken.
    Raises ``ValueError``/``TypeError`` naming the first bad value."""
    if name not in OPTIMIZERS:
        raise InvalidValueError("optimizer must "
                                "be one of %s, got %r" % (", ".join(OPTIMIZERS), name))
    values = {"lr": check_hyperparameter("lr", lr, name)}
    for key, value in hyperparameters.items():
        values[key] = check_hyperparameter(key, value, name)
    for h in HYPERPARAMETER_TABLE:
        values.setdefault(h.name, h.default)
    params = np.asarray(params)
    if state is None:
        plain = name == "sgd" and values["momentum"] == 0 and values["weight_decay"] == 0
        state = np.zeros(0 if plain else state_size(name, params.shape[0]), params.dtype)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
        raise InvalidTypeError("step must be an integer (the steps already taken), got %r"
                               % (step,))
    if not 0 <= step <= np.iinfo(np.int64).max:
        raise InvalidValueError("step must be >= 0 (the steps already taken) and at most "
                                "2**63 - 1, got %d" % step)
    step = int(step)
    return Optimizer(code=OPTIMIZERS[name], state=state, steps=np.array([step], np.int64),
                     **values)


@njit(cache=CACHE, fastmath=_FAST, **BORROWED)
def _sgd_sweep(params, grads, lr, clear):
    """``params -= lr * grads`` (and with ``clear``, ``grads = 0`` in the same sweep)."""
    lr = cast_like(lr, params)
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]
        if clear:
            grads[i] = 0


@njit(cache=CACHE, fastmath=_FAST, **BORROWED)
def _momentum_sweep(params, grads, velocity, lr, momentum, weight_decay, nesterov, clear):
    """``g = grads + wd * params; v = mu * v + g;``
    ``params -= lr * (g + mu * v if nesterov else v)`` (with ``clear``, then ``grads = 0``)."""
    lr = cast_like(lr, params)
    mu = cast_like(momentum, params)
    wd = cast_like(weight_decay, params)
    for i in range(params.shape[0]):
        g = grads[i] + wd * params[i]
        if clear:
            grads[i] = 0
        v = mu * velocity[i] + g
        velocity[i] = v
        params[i] -= lr * (g + mu * v if nesterov else v)


# error_model="numpy": a division by zero gives inf as in NumPy instead of a check that
# raises (the check's branch kept the loop from vectorizing: 4x slower).
@njit(cache=CACHE, fastmath=_FAST, error_model="numpy", **BORROWED)
def _adam_sweep(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay, decoupled, clear):
    """One Adam (or, with ``decoupled``, AdamW) step at 1-based step ``t``, as PyTorch's.

    ``g = grads (+ wd * params unless decoupled); m = b1 m + (1 - b1) g;
    v = b2 v + (1 - b2) g**2; params -= lr * m / (1 - b1**t) / (sqrt(v / (1 - b2**t)) + eps)``,
    and with ``decoupled`` first ``params *= 1 - lr * wd``; with ``clear``, ``grads = 0``
    in the same sweep (its loads are there already: the store costs next to nothing beside
    the square root and the division).
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
        if clear:
            grads[i] = 0
        mi = b1 * m[i] + (one - b1) * g
        vi = b2 * v[i] + (one - b2) * g * g
        m[i] = mi
        v[i] = vi
        params[i] = p * shrink - step * mi / (np.sqrt(vi) * c2 + e)


@njit(cache=CACHE)
def _optimizer_step(params, grads, opt, clear):
    """One step of ``opt`` (an ``Optimizer``), its ``steps`` advanced by one; params, grads
    (P,). Plain SGD (momentum and weight decay 0) needs no state. With ``clear``, grads is
    left zero in the same sweep: for an epoch that adds each batch's gradient into a zeroed
    buffer (``kernels.loop``, a sparse epoch) rather than zeroing it before every batch, a
    sweep of its own. An epoch passes ``clear`` as a run-time bool: Numba compiles a
    callee again for each literal argument, with every sweep below it."""
    t = opt.steps[0] + 1
    opt.steps[0] = t
    _update_range(params, grads, opt, t, 0, params.shape[0], clear)


@register_jitable
def is_plain_sgd(opt):
    """Whether ``opt`` is plain SGD (momentum and weight decay 0): no state, and a step the
    epochs fuse into the weight-gradient products (``kernels.loop``, ``kernels.parallel``)."""
    return opt.code == SGD and opt.momentum == 0 and opt.weight_decay == 0


@njit(cache=CACHE, **BORROWED)
def _update_range(params, grads, opt, t, lo, hi, clear):
    """Step ``t`` (1-based) of ``opt`` on the parameters ``lo:hi`` only, its step count
    left alone: every update is element by element, so the sweeps of parts give what one
    sweep of the whole gives. The threads of a data-parallel step (``kernels.parallel``)
    each update their own parts, a few hundred parameters at a call: so it and the sweeps
    are compiled without reference counting (``_cache.BORROWED``), whose atomic
    instructions on every slice cost more than such a sweep."""
    P = params.shape[0]
    code = opt.code
    if code == ADAM or code == ADAMW:
        _adam_sweep(params[lo:hi], grads[lo:hi], opt.state[lo:hi], opt.state[P + lo:P + hi], t,
                    opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, code == ADAMW,
                    clear)
    elif is_plain_sgd(opt):
        _sgd_sweep(params[lo:hi], grads[lo:hi], opt.lr, clear)
    else:
        _momentum_sweep(params[lo:hi], grads[lo:hi], opt.state[lo:hi], opt.lr, opt.momentum,
                        opt.weight_decay, opt.nesterov, clear)


@register_jitable
def _check_hyperparameters(kernel, lr, momentum, weight_decay):
    """The one check of the step sizes every update and ``train_epoch`` take: ``lr`` positive
    and finite, ``momentum`` in [0, 1), ``weight_decay`` non-negative and finite (NaN is
    refused by every test: each is written so that NaN fails it)."""
    if not (lr > 0 and lr < np.inf):
        raise InvalidValueError("%s: lr must be positive and finite, got %g", kernel, lr)
    if not (momentum >= 0 and momentum < 1):
        raise InvalidValueError("%s: momentum must be in [0, 1), got %g", kernel, momentum)
    if not (weight_decay >= 0 and weight_decay < np.inf):
        raise InvalidValueError("%s: weight_decay must be non-negative and finite, got %g", kernel,
                                weight_decay)


@register_jitable
def check_optimizer(kernel, params, grads, opt):
    """The checks of the ``optimizer`` record for ``params`` and ``grads``: its code,
    hyperparameters, state length and memory, and step count. The messages' names are
    constants: a name joined in compiled code (``name + ".state"``, ``str(count)``) cost
    a first run about 1 s of compiling Numba's string concatenation and int formatting."""
    code = opt.code
    if code < 0 or code >= N_OPTIMIZERS:
        raise InvalidValueError("%s: optimizer.code is %s, not an optimizer code "
                                "(kernels.OPTIMIZERS)", kernel, code)
    _check_hyperparameters(kernel, opt.lr, opt.momentum, opt.weight_decay)
    state = opt.state
    if not is_plain_sgd(opt):  # plain SGD has no state
        vectors = _STATE_VECTORS[code]
        expected = params.shape[0] * vectors
        if state.shape[0] != expected:
            if vectors == 1:
                raise InvalidValueError("%s: optimizer.state has %s elements but params has "
                                        "%s", kernel, state.shape[0], expected)
            raise InvalidValueError("%s: optimizer.state has %s elements but %s x params has "
                                    "%s", kernel, state.shape[0], vectors, expected)
    if code == ADAM or code == ADAMW:
        if not (0 <= opt.beta1 < 1 and 0 <= opt.beta2 < 1):
            raise InvalidValueError("%s: beta1 and beta2 must be in [0, 1), got %g and %g", kernel,
                                    opt.beta1, opt.beta2)
        if not (opt.eps > 0 and opt.eps < np.inf):
            raise InvalidValueError("%s: eps must be positive and finite, got %g", kernel, opt.eps)
    if opt.steps.shape[0] != 1 or opt.steps[0] < 0:
        raise InvalidValueError("%s: optimizer.steps must hold one count >= 0 of the steps "
                                "taken", kernel)
    # The state is written: it shares no memory with params; it may be grads itself
    # (read before written, element by element), but no other view overlapping grads.
    check_separate(kernel, "optimizer.state", state, "params", params)
    check_same_or_separate(kernel, "optimizer.state", state, "grads", grads)


@register_jitable
def _check_update(kernel, names, params, grads, state, state_name):
    """Dtypes and lengths of an update's vectors; grads may be params itself (every sweep
    reads an element before it writes that element), but no other view overlapping it."""
    check_float_dtypes(kernel, names, params, grads, state)
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_dim(kernel, state_name, state.shape[0], "params", params.shape[0], "elements")
    check_same_or_separate(kernel, "params", params, "grads", grads)


@kernel
def sgd_update(params: VECTOR_OUT, grads: VECTOR, lr: REAL):
    """``params -= lr * grads`` in place; params, grads (P,); lr positive and finite."""
    check_types("sgd_update", params, grads, lr)
    _check_update("sgd_update", "params, grads", params, grads, grads, "grads")
    _check_hyperparameters("sgd_update", lr, 0.0, 0.0)
    _sgd_sweep(params, grads, lr, False)


@kernel
def sgd_momentum_update(params: VECTOR_OUT, grads: VECTOR, velocity: VECTOR_OUT, lr: REAL,
                        momentum: REAL, weight_decay: REAL):
    """``velocity = momentum * velocity + grads + weight_decay * params; params -= lr * velocity``.

    params, grads, velocity (P,), updated in place; lr positive, momentum in [0, 1),
    weight_decay non-negative.
    """
    check_types("sgd_momentum_update", params, grads, velocity, lr, momentum, weight_decay)
    kernel = "sgd_momentum_update"
    _check_update(kernel, "params, grads, velocity", params, grads, velocity, "velocity")
    check_separate(kernel, "velocity", velocity, "params", params)
    check_same_or_separate(kernel, "velocity", velocity, "grads", grads)
    _check_hyperparameters(kernel, lr, momentum, weight_decay)
    _momentum_sweep(params, grads, velocity, lr, momentum, weight_decay, False, False)


@kernel
def optimizer_step(params: VECTOR_OUT, grads: VECTOR, optimizer: Optimizer):
    """One step of ``optimizer`` (an ``Optimizer`` record, ``kernels.optimizer``), the step
    training takes: params, grads (P,), params updated in place, the optimizer's state
    updated and its ``steps`` advanced by one. SGD: ``params -= lr * grads``, or with
    momentum / weight_decay the step of ``sgd_momentum_update`` (``nesterov``: PyTorch's
    Nesterov form); Adam and AdamW at step ``t = steps + 1`` as PyTorch's (``weight_decay``
    added to the gradient for Adam, ``params *= 1 - lr * weight_decay`` first for AdamW).
    The hyperparameters are checked as ``train_epoch`` checks them."""
    check_types("optimizer_step", params, grads, optimizer)
    kernel = "optimizer_step"
    check_float_dtypes(kernel, "params, grads, optimizer.state", params, grads,
                       optimizer.state)
    check_dim(kernel, "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_same_or_separate(kernel, "params", params, "grads", grads)
    check_optimizer(kernel, params, grads, optimizer)
    _optimizer_step(params, grads, optimizer, False)
