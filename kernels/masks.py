"""The masks of dropout on hidden layers (Srivastava et al., "Dropout: A Simple Way to
Prevent Neural Networks from Overfitting", JMLR 15, 2014), in its "inverted" form: during
training each unit of a hidden layer's output is kept with probability ``1 - rate`` and, when kept,
divided by ``1 - rate``, so that prediction (which drops nothing) needs no rescaling.

Which units are dropped is not drawn from a stateful generator but hashed from a counter.
The units of hidden layer ``l`` (width ``n``) at optimizer step ``t`` are taken four at a
time along each row: word ``w`` of row ``r`` is the 64-bit hash

    h = mix(base(seed, t, l) + (r * ceil(n / 4) + w + 1) * GOLDEN)

and unit ``j = 4 w + i`` of that row is dropped when its 16 bits ``(h >> 16 i) & 0xFFFF``
are below ``round(rate * 2**16)`` (at most 65535): rates act as multiples of 2**-16. ``mix``
is the SplitMix64 finalizer (Steele, Lea and Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014) and ``GOLDEN = 0x9E3779B97F4A7C15``. One hash serves four units
because the 64-bit multiplies of a hash do not vectorise on AVX2. What it costs, measured
(``python -m benchmarks.dropout_cost``, 2-core AMD EPYC Zen 3, rate 0.1 on every hidden
layer): T1's epoch 2.1x, T3's 1.7x the epoch without dropout; with these two functions
made no-ops the epochs with and without took the same time, so the masks (about 3.5 ns a
unit, in the forward and again in the backward pass) are the whole difference.

So the masks need no state beyond the seed and the step count that the optimizer already
keeps: the backward pass recomputes them instead of storing them, an epoch resumed from a
checkpoint draws exactly the masks the uninterrupted run would have, and the NumPy twin
(``kernels.reference.dropout_mask``) draws the same masks bit for bit.
"""

import numpy as np

from ._cache import CACHE, njit

#: 2**64 / golden ratio, odd: the SplitMix64 increment.
GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
#: Units decided by one 64-bit hash, and the bits each unit's decision reads.
LANES = 4
LANE_BITS = 16


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
def rows_mask_base(seed, step, layer, row0, n):
    """The hash base under which rows ``0, 1, ...`` of a block of a minibatch hash as rows
    ``row0, row0 + 1, ...`` of it in ``mask_base(seed, step, layer)``'s mask, for a hidden
    layer of width ``n``: a shard of a data-parallel step (``kernels.parallel``) drops the
    units its rows would lose in the whole minibatch. Word w of row r hashes
    ``base + (r * ceil(n / 4) + w + 1) * GOLDEN`` (mod 2**64), so moving the rows by row0
    moves the base by ``row0 * ceil(n / 4) * GOLDEN``."""
    words = (n + LANES - 1) // LANES
    return mask_base(seed, step, layer) + np.uint64(row0 * words) * np.uint64(GOLDEN)


@njit(cache=CACHE)
def rate_threshold(rate):
    """The integer below which a unit's 16 bits drop it: ``round(rate * 2**16)``, at most
    65535 (so that a rate just below 1 still keeps a unit in 65536)."""
    return np.uint64(min(np.round(rate * 2.0 ** LANE_BITS), 2.0 ** LANE_BITS - 1))


@njit(cache=CACHE, inline="always")
def _word(base, r, words, w):
    """The hash deciding units ``4 w .. 4 w + 3`` of row ``r``."""
    return _mix(base + np.uint64(r * words + w + 1) * np.uint64(GOLDEN))


@njit(cache=CACHE, inline="always")
def _lane_dropped(h, i, threshold):
    return ((h >> np.uint64(LANE_BITS * i)) & np.uint64(0xFFFF)) < threshold


@njit(cache=CACHE)
def drop_units(A, rate, base):
    """Inverted dropout in place on a hidden layer's output A (m, n): each unit dropped by
    the mask of ``base`` becomes 0, every other is divided by ``1 - rate``."""
    m, n = A.shape
    threshold = rate_threshold(rate)
    inv_keep = A.dtype.type(1.0 / (1.0 - rate))
    zero = A.dtype.type(0)
    words = (n + LANES - 1) // LANES
    for r in range(m):
        for w in range(words):
            h = _word(base, r, words, w)
            for i in range(min(LANES, n - LANES * w)):
                j = LANES * w + i
                # a select, not a branch: at rates like 0.1 a branch mispredicts often
                A[r, j] *= zero if _lane_dropped(h, i, threshold) else inv_keep


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
    zero, one = G.dtype.type(0), A.dtype.type(1)
    words = (n + LANES - 1) // LANES
    for r in range(m):
        for w in range(words):
            h = _word(base, r, words, w)
            for i in range(min(LANES, n - LANES * w)):
                j = LANES * w + i
                dropped = _lane_dropped(h, i, threshold)
                G[r, j] *= zero if dropped else inv_keep
                A[r, j] *= one if dropped else keep


@njit(cache=CACHE)
def dropout_mask(seed, step, layer, m, n, rate):
    """The (m, n) bool mask, True where a unit is dropped (for tests and the twins)."""
    base = mask_base(seed, step, layer)
    threshold = rate_threshold(rate)
    out = np.empty((m, n), np.bool_)
    words = (n + LANES - 1) // LANES
    for r in range(m):
        for w in range(words):
            h = _word(base, r, words, w)
            for i in range(min(LANES, n - LANES * w)):
                out[r, LANES * w + i] = _lane_dropped(h, i, threshold)
    return out
