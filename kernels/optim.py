"""Parameter updates on the flat parameter vector (Theta of docs/MATH.md)."""

from numba import njit

from ._checks import check_dim, check_float_dtypes


@njit(cache=True, fastmath={"contract"})
def sgd_update_into(params, grads, lr):
    """Unchecked ``params -= lr * grads``."""
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]


@njit(cache=True, fastmath={"contract"})
def momentum_update_into(params, grads, velocity, lr, momentum, weight_decay):
    """Unchecked momentum step (see ``sgd_momentum_update``)."""
    for i in range(params.shape[0]):
        v = momentum * velocity[i] + grads[i] + weight_decay * params[i]
        velocity[i] = v
        params[i] -= lr * v


@njit(cache=True)
def sgd_update(params, grads, lr):
    """``params -= lr * grads`` in place; params, grads (P,)."""
    check_float_dtypes("sgd_update", "params, grads", params, grads)
    check_dim("sgd_update", "grads", grads.shape[0], "params", params.shape[0], "elements")
    sgd_update_into(params, grads, lr)


@njit(cache=True)
def sgd_momentum_update(params, grads, velocity, lr, momentum, weight_decay):
    """``velocity = momentum * velocity + grads + weight_decay * params; params -= lr * velocity``.

    params, grads, velocity (P,), updated in place.
    """
    check_float_dtypes("sgd_momentum_update", "params, grads, velocity", params, grads, velocity)
    check_dim("sgd_momentum_update", "grads", grads.shape[0], "params", params.shape[0], "elements")
    check_dim("sgd_momentum_update", "velocity", velocity.shape[0], "params", params.shape[0], "elements")
    momentum_update_into(params, grads, velocity, lr, momentum, weight_decay)
