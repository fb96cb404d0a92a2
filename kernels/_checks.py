"""Entry checks shared by the kernels: a handful of integer comparisons per call.

Every message names the kernel, the argument and both values, e.g.
``dense_forward: W has 30 columns but X has 31``. Dtype checks are decided when Numba
types the call, so a kernel compiled for matching dtypes carries no dtype test at all.
"""

from numba import njit, types
from numba.extending import overload


@njit(cache=True)
def check_dim(kernel, a_name, a_value, b_name, b_value, what):
    """Raise ``ValueError`` unless two sizes agree: '<kernel>: <a> has 3 <what> but <b> has 4'."""
    if a_value != b_value:
        raise ValueError(kernel + ": " + a_name + " has " + str(a_value) + " " + what
                         + " but " + b_name + " has " + str(b_value))


@njit(cache=True)
def check_contiguous(kernel, name, a):
    """Raise ``ValueError`` unless ``a`` is C-contiguous (BLAS and flat views need it)."""
    if not a.flags.c_contiguous:
        raise ValueError(kernel + ": " + name + " must be C-contiguous; pass np.ascontiguousarray("
                         + name + ")")


def check_float_dtypes(kernel, names, *arrays):
    """Raise unless every array is float32 or float64 and all share one dtype."""


def _dtype_error(kernel, names, arrays):
    """The message for mismatched or non-float dtypes, or None (computed at typing time)."""
    names = [n.strip() for n in names.literal_value.split(",")]
    first = arrays[0].dtype
    for name, arr in zip(names, arrays):
        if arr.dtype not in (types.float32, types.float64):
            return "%s: %s must be float32 or float64, got %s" % (kernel, name, arr.dtype)
        if arr.dtype != first:
            return "%s: %s has dtype %s but %s has %s" % (kernel, name, arr.dtype, names[0], first)
    return None


@overload(check_float_dtypes)
def _check_float_dtypes_impl(kernel, names, *arrays):
    if not isinstance(names, types.StringLiteral):
        return None
    message = _dtype_error(kernel.literal_value if isinstance(kernel, types.StringLiteral)
                           else "kernel", names, arrays)
    if message is None:
        return lambda kernel, names, *arrays: None

    def impl(kernel, names, *arrays):
        raise TypeError(message)
    return impl


@njit(cache=True)
def check_positive(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` > 0 (e.g. a batch size)."""
    if value <= 0:
        raise ValueError(kernel + ": " + name + " must be positive, got " + str(value))
