"""The masks of dropout on hidden layers (Srivastava et al., "Dropout: A Simple Way to
Prevent Neural Networks from Overfitting", JMLR 15, 2014), in its "inverted" form: during
training each unit of a hidden layer's output is kept with probability ``1 - rate`` and, when kept,
divided by ``1 - rate``, so that prediction (which drops nothing) needs no rescaling.

Which units are dropped is not drawn from a stateful generator but hashed from a counter:
unit ``(r, j)`` of hidden layer ``l`` at optimizer step ``t`` is dropped when

    mix(base(seed, t, l) + (r * n_l + j + 1) * GOLDEN) >> 11  <  round(rate * 2**53)

with ``mix`` the SplitMix64 finalizer (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014) and ``GOLDEN = 0x9E3779B97F4A7C15``. So the
mask needs no state beyond the seed and the step count that the optimizer already keeps:
the backward pass recomputes the mask instead of storing it, an epoch resumed from a
checkpoint draws exactly the masks the uninterrupted run would have, and the NumPy twin
(``kernels.reference.dropout_mask``) draws the same masks bit for bit.
"""

import numpy as np
from numba import njit

from ._cache import CACHE

#: 2**64 / golden ratio, odd: the SplitMix64 increment.
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
#: The bits of a hash compared with the rate: a double's mantissa.
FRACTION_BITS = 53


@njit(cache=CACHE, inline="always")
def _mix(x):
    """SplitMix64's finalizer: a bijection of uint64 whose output bits each depend on all
    input bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(_M1)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(_M2)
    return x ^ (x >> np.uint64(31))


@njit(cache=CACHE)
def mask_base(seed, step, layer):
    """The hash base of hidden layer ``layer``'s mask at optimizer step ``step``."""
    x = _mix(np.uint64(seed) + np.uint64(GOLDEN))
    x = _mix(x + np.uint64(step) * np.uint64(GOLDEN))
    return _mix(x + np.uint64(layer + 1) * np.uint64(GOLDEN))


@njit(cache=CACHE)
def rate_threshold(rate):
    """The integer below which a unit's 53-bit hash drops it: ``round(rate * 2**53)``."""
    return np.uint64(np.round(rate * 2.0 ** FRACTION_BITS))


@njit(cache=CACHE, inline="always")
def _dropped(base, counter, threshold):
    return (_mix(base + np.uint64(counter + 1) * np.uint64(GOLDEN))
            >> np.uint64(64 - FRACTION_BITS)) < threshold


@njit(cache=CACHE)
def drop_units(A, rate, base):
    """Inverted dropout in place on a hidden layer's output A (m, n): each unit dropped by
    the mask of ``base`` becomes 0, every other is divided by ``1 - rate``."""
    m, n = A.shape
    threshold = rate_threshold(rate)
    inv_keep = A.dtype.type(1.0 / (1.0 - rate))
    for r in range(m):
        for j in range(n):
            if _dropped(base, r * n + j, threshold):
                A[r, j] = 0
            else:
                A[r, j] *= inv_keep


@njit(cache=CACHE)
def undo_dropout(A, G, rate, base):
    """Before a dropped layer's activation derivative: G (m, n), the gradient of the cost
    with respect to the dropped output, becomes that with respect to the output before
    dropout (0 where the unit was dropped, divided by ``1 - rate`` where kept), and A,
    the dropped output, becomes the output before dropout where the unit was kept (times
    ``1 - rate``; where dropped, G is 0 and A's value does not matter)."""
    m, n = A.shape
    threshold = rate_threshold(rate)
    keep = A.dtype.type(1.0 - rate)
    inv_keep = G.dtype.type(1.0 / (1.0 - rate))
    for r in range(m):
        for j in range(n):
            if _dropped(base, r * n + j, threshold):
                G[r, j] = 0
            else:
                G[r, j] *= inv_keep
                A[r, j] *= keep


@njit(cache=CACHE)
def dropout_mask(seed, step, layer, m, n, rate):
    """The (m, n) bool mask, True where a unit is dropped (for tests and the twins)."""
    base = mask_base(seed, step, layer)
    threshold = rate_threshold(rate)
    out = np.empty((m, n), np.bool_)
    for r in range(m):
        for j in range(n):
            out[r, j] = _dropped(base, r * n + j, threshold)
    return out
