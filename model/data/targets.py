"""Standardized regression targets: the network learns ``(y - mean) / scale``.

Real regression targets are in their own units (prices in the thousands, delays in
minutes), and a network initialised for outputs of order 1 then takes its first steps
on gradients thousands of times too large: with SGD and momentum it diverges, with Adam it
spends its epochs catching up with the mean. So ``MLP.fit`` standardizes the targets of a
regression (identity output, MSE), as scikit-learn users do with
``TransformedTargetRegressor(transformer=StandardScaler())``, and predictions come back in
the target's units.

``mean`` is per output, ``scale`` one number for all outputs: the root mean square of the
outputs' standard deviations. One common scale leaves the cost being minimized the same
function of the parameters, up to the constant factor ``scale**2``, as the cost in the
target's units (a scale per output would weight the outputs differently); so every cost
the package reports (``history.loss``, ``val_loss``, ``cost``) is exactly the MSE cost (half
the mean squared error) in the target's units: the standardized cost times ``scale**2``.
"""

from dataclasses import dataclass

import numpy as np

from ...kernels._cache import CACHE, njit  # Numba's cache where it can write one (kernels._cache)
from ...kernels.errors import InvalidValueError


#: The regression costs ``MLP.fit`` standardizes the targets for, and the power of the
#: target's scale that turns their standardized cost into the cost in the target's units.
SCALE_POWER = {"mse": 2, "huber": 2, "absolute_error": 1, "quantile": 1}

#: The costs whose scaling is learned robustly (``TargetScaling.learn_robust``).
ROBUST_LOSSES = ("huber", "absolute_error", "quantile")


@dataclass(frozen=True)
class TargetScaling:
    """``mean`` (n_outputs,) float64 and ``scale`` (a float > 0) of a regression target."""

    mean: np.ndarray
    scale: float

    @classmethod
    def learn(cls, moments):
        """From ``(count, mean (n_out,), m2 (n_out,))`` of the finite targets
        (``target_moments``: m2 the sum of squared deviations from the mean)."""
        count, mean, m2 = moments
        count = max(float(count), 1.0)
        mean = np.asarray(mean, np.float64).copy()
        var = np.maximum(np.asarray(m2, np.float64) / count, 0.0)
        scale = float(np.sqrt(var.mean()))
        return cls(mean=mean, scale=scale if scale > 0 and np.isfinite(scale) else 1.0)

    @classmethod
    def learn_robust(cls, blocks):
        """From the target blocks (n, n_out) themselves, for the robust costs (Huber,
        absolute error, quantile): the median per output and, for ``scale``, the root mean
        square of the outputs' normal-consistent median absolute deviations (1.4826 MAD),
        so that outliers, which these costs are chosen to withstand, do not set the units
        (a mean and standard deviation would follow them); an output whose MAD is 0 falls
        back to its standard deviation, then 1."""
        Y = np.concatenate([np.asarray(b, np.float64).reshape(len(b), -1) for b in blocks])
        Y = Y[np.isfinite(Y).all(axis=1)]
        if len(Y) == 0:
            return cls(mean=np.zeros(Y.shape[1]), scale=1.0)
        center = np.median(Y, axis=0)
        mad = 1.4826 * np.median(np.abs(Y - center), axis=0)
        mad = np.where(mad > 0, mad, Y.std(axis=0))
        scale = float(np.sqrt(np.mean(mad * mad)))
        return cls(mean=center, scale=scale if scale > 0 and np.isfinite(scale) else 1.0)

    @property
    def cost_factor(self):
        """Cost in the target's units over the cost on standardized targets (MSE's)."""
        return self.scale * self.scale

    def cost_factor_of(self, loss):
        """``cost_factor`` of the regression cost named ``loss``: ``scale**2`` for "mse" and
        "huber" (whose delta of 1 on standardized targets is ``scale`` in the target's
        units), ``scale`` for "absolute_error" and "quantile"."""
        return self.scale ** SCALE_POWER.get(loss, 2)

    def standardize(self, Y):
        """``(Y - mean) / scale`` (a new (n, n_outputs) array; a 1-D Y is one output),
        computed in float64 and rounded once to Y's dtype when that is float32 or float64,
        float64 otherwise."""
        Y = _compiled_floats(Y)
        return _standardized(Y, np.ascontiguousarray(self.mean, np.float64), float(self.scale))

    def restore(self, Z):
        """Network outputs back in the target's units, in place; returns Z."""
        Z *= Z.dtype.type(self.scale)
        Z += self.mean.astype(Z.dtype)
        return Z

    def to_arrays(self):
        """For a saved model: {"target_mean", "target_scale"}."""
        return {"target_mean": self.mean, "target_scale": np.array(self.scale)}

    @classmethod
    def from_arrays(cls, arrays, n_outputs):
        """The scaling saved in ``arrays`` (None when the model has none); ValueError for a
        bad one."""
        if "target_mean" not in arrays or arrays["target_mean"].size == 0:
            return None
        mean, scale = np.asarray(arrays["target_mean"]), arrays.get("target_scale")
        if scale is None:
            raise InvalidValueError("target_mean is saved without its target_scale")
        scale = np.asarray(scale)
        if mean.dtype.kind not in "iuf" or scale.dtype.kind not in "iuf" or scale.ndim != 0:
            raise InvalidValueError("target_mean (dtype %s, shape %s) / "
                                    "target_scale (dtype %s, shape "
                                    "%s) must be numbers: a mean per output and one scale"
                                    % (mean.dtype, mean.shape, scale.dtype, scale.shape))
        mean, scale = mean.astype(np.float64), float(scale)
        if mean.shape != (n_outputs,) or not np.isfinite(mean).all() \
                or not (np.isfinite(scale) and scale > 0):
            raise InvalidValueError("target_mean %s / target_scale %r are not a scaling of %d "
                                    "outputs (a finite mean per output, a finite scale > 0)"
                                    % (mean.tolist() if mean.size <= 8 else mean.shape, scale,
                                       n_outputs))
        return cls(mean=mean, scale=scale)


def target_moments(blocks):
    """``(count, mean, m2)`` of the finite rows of target blocks (n, n_out): the mean and
    the sum of squared deviations from it per output, (n_out,) float64 each.

    Each block's in two compiled passes (its mean, then the deviations from it), the blocks
    combined with ``combine_moments``. A sum of squares less the squared mean, as this
    once was, loses every digit when the mean dwarfs the spread (targets of 1e9 +- 3 gave
    a scale of 16, or none at all), as Chan, Golub and LeVeque explain ("Algorithms for
    computing the sample variance", The American Statistician 37, 1983)."""
    return combined_moments(_finite_row_moments(_compiled_floats(Y)) for Y in blocks)


def _compiled_floats(Y):
    """Y as the compiled passes take it: 2-D (a 1-D Y is one output), native float32 or
    float64 (any other dtype, float16 or big-endian included, as float64)."""
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        Y = Y.astype(np.float64)
    return Y


def combined_moments(parts):
    """The ``(count, mean, m2)`` of every part's rows from each part's, combined in order
    with ``combine_moments`` (no parts: count 0): blocks of a source, or MPI's ranks."""
    moments = (0, 0.0, 0.0)
    for part in parts:
        moments = combine_moments(moments, part)
    return moments


def combine_moments(a, b):
    """The ``(count, mean, m2)`` of two sets of rows from theirs (Chan et al.'s pairwise
    update: ``m2 = m2_a + m2_b + delta**2 n_a n_b / n`` with ``delta = mean_b - mean_a``)."""
    na, ma, m2a = a
    nb, mb, m2b = b
    if nb == 0:
        return a
    if na == 0:
        return int(nb), np.asarray(mb, np.float64), np.asarray(m2b, np.float64)
    n = na + nb
    delta = np.asarray(mb, np.float64) - ma
    return (int(n), ma + delta * (nb / n), m2a + m2b + delta * delta * (na * nb / n))


# Compiled passes over the targets: on 400,000 float32 rows NumPy's masking, float64
# copy and reductions took 6 ms of a 50 ms epoch (issue 23's config A), these about 1 ms.

@njit(cache=CACHE, fastmath={"reassoc"})
def _finite_row_moments(Y):
    # A row counts when all its targets are finite (``x * 0`` is 0 exactly then); the
    # sums are per column over those rows, with a select rather than a branch so that each
    # column's loop vectorizes (reassoc lets it split the sums across the vector's lanes).
    n, m = Y.shape
    finite = np.empty(n, np.bool_)
    for i in range(n):
        probe = 0.0
        for j in range(m):
            probe += np.float64(Y[i, j]) * 0.0
        finite[i] = probe == probe
    count = finite.sum()
    mean = np.zeros(m)
    m2 = np.zeros(m)
    if count == 0:
        return 0, mean, m2
    for j in range(m):
        s = 0.0
        for i in range(n):
            s += np.float64(Y[i, j]) if finite[i] else 0.0
        mean[j] = s / count
        sq = 0.0
        for i in range(n):
            d = np.float64(Y[i, j]) - mean[j] if finite[i] else 0.0
            sq += d * d
        m2[j] = sq
    return count, mean, m2


@njit(cache=CACHE)
def _standardized(Y, mean, scale):
    n, m = Y.shape
    out = np.empty((n, m), Y.dtype)
    for i in range(n):
        for j in range(m):
            out[i, j] = (np.float64(Y[i, j]) - mean[j]) / scale
    return out


def r2_score(ss_res, ss_tot):
    """The coefficient of determination averaged over outputs, as scikit-learn's
    ``r2_score``: ``1 - ss_res / ss_tot`` per output (ss_res the summed squared errors,
    ss_tot the summed squared deviations from the mean, (n_outputs,)); an output whose
    targets are constant scores 1 when predicted exactly, else 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
    return float(r2.mean())
