"""Entry checks shared by the kernels: a handful of integer comparisons per call.

Every message names the kernel, the argument and both values, e.g.
``dense_forward: W has 30 columns but X has 31``. Dtype checks are decided when Numba
types the call, so a kernel compiled for matching dtypes carries no dtype test at all.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from .errors import InvalidTypeError, InvalidValueError, TooLargeError
from ._cache import CACHE


@njit(cache=CACHE)
def check_dim(kernel, a_name, a_value, b_name, b_value, what):
    """Raise ``ValueError`` unless two sizes agree: '<kernel>: <a> has 3 <what> but <b> has 4'."""
    if a_value != b_value:
        raise InvalidValueError(kernel + ": " + a_name + " has " + str(a_value) + " " + what
                                + " but " + b_name + " has " + str(b_value))


@njit(cache=CACHE)
def check_same_shape(kernel, names, a, a_name, b, b_name):
    """Raise unless ``a`` and ``b`` (2-D) are float arrays of one dtype and the same shape."""
    check_float_dtypes(kernel, names, a, b)
    check_dim(kernel, a_name, a.shape[0], b_name, b.shape[0], "rows")
    check_dim(kernel, a_name, a.shape[1], b_name, b.shape[1], "columns")


@njit(cache=CACHE)
def check_contiguous(kernel, name, a):
    """Raise ``ValueError`` unless ``a`` is C-contiguous (BLAS and flat views need it)."""
    if not a.flags.c_contiguous:
        raise InvalidValueError(kernel + ": " + name + " must be C-contiguous; pass "
                                "np.ascontiguousarray(" + name + ")")


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
        raise InvalidTypeError(message)
    return impl


def cast_like(value, like):
    """``value`` converted to the dtype of ``like``, an array or a scalar (in compiled code).

    A float64 scalar (or an int 0) in a float32 loop would otherwise promote the loop's
    arithmetic to double precision and stop it from vectorizing at full width.
    """


@overload(cast_like)
def _cast_like_impl(value, like):
    dtype = like.dtype if isinstance(like, types.Array) else like
    return lambda value, like: dtype(value)


@njit(cache=CACHE)
def check_positive(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` > 0 (e.g. a batch size)."""
    if value <= 0:
        raise InvalidValueError(kernel + ": " + name + " must be positive, got " + str(value))


@njit(cache=CACHE)
def check_finite(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` is finite (e.g. a gradient's scale; NaN fails)."""
    if not (abs(value) < np.inf):
        raise InvalidValueError(kernel + ": " + name + " must be finite, got " + real_text(value))


# ----------------------------------------------------------------------------- aliasing
#
# An output that shares memory with an input is read after it has been written: a
# product or a whole-row formula then computes garbage without a word. The kernels refuse
# it. An elementwise kernel, which reads each element before it writes that element,
# may write into its input itself (``sgd_update(p, p, lr)``, ``relu_mask(A, A)``); a
# partial overlap (a shifted view) is refused there too. For C-contiguous arrays the test
# is exact; for strided views it compares the address ranges (as np.may_share_memory),
# so two interleaved views such as ``x[::2]`` and ``x[1::2]`` count as sharing.

@njit(cache=CACHE)
def _address_range(a):
    """[first, last) byte addresses of the elements of a non-empty array."""
    low = np.int64(a.ctypes.data)  # uintp; mixed with int64 it would become float64
    high = low + a.itemsize
    for d in range(a.ndim):
        span = np.int64(a.strides[d]) * (a.shape[d] - 1)
        if span < 0:
            low += span
        else:
            high += span
    return low, high


@njit(cache=CACHE)
def shares_memory(a, b):
    """True when the address ranges of ``a`` and ``b`` overlap (never for an empty array)."""
    if a.size == 0 or b.size == 0:
        return False
    a_low, a_high = _address_range(a)
    b_low, b_high = _address_range(b)
    return a_low < b_high and b_low < a_high


@njit(cache=CACHE)
def check_separate(kernel, out_name, out, in_name, a):
    """Raise ``ValueError`` when output ``out`` shares memory with argument ``a``."""
    if shares_memory(out, a):
        raise InvalidValueError(kernel + ": " + out_name + " shares memory with " + in_name
                                + "; pass a separate array")


@njit(cache=CACHE)
def check_same_or_separate(kernel, out_name, out, in_name, a):
    """Raise ``ValueError`` when ``out`` overlaps ``a`` without being the very same elements
    (same start, shape and strides): for elementwise kernels, which may work in place."""
    if (shares_memory(out, a) and not (out.ctypes.data == a.ctypes.data
                                       and out.shape == a.shape and out.strides == a.strides)):
        raise InvalidValueError(kernel + ": " + out_name + " overlaps " + in_name
                                + " without being the same array; pass " + in_name
                                + " itself (in place) or a separate array")


# ----------------------------------------------------------------------------- int arrays

def as_int64(kernel, name, a):
    """An integer array ``a`` (sizes, acts, order) as int64: ``a`` itself when it is, else a
    copy; any other dtype raises ``TypeError`` (decided when Numba types the call)."""


@overload(as_int64)
def _as_int64_impl(kernel, name, a):
    if not isinstance(a, types.Array):
        return None
    if a.dtype == types.int64:
        return lambda kernel, name, a: a
    if isinstance(a.dtype, types.Integer):
        return lambda kernel, name, a: a.astype(np.int64)
    if not (isinstance(kernel, types.StringLiteral) and isinstance(name, types.StringLiteral)):
        return None  # Numba then types the call again with the names as literals
    message = "%s: %s must be an integer array, got %s" % (kernel.literal_value,
                                                           name.literal_value, a.dtype)

    def impl(kernel, name, a):
        if a.size >= 0:  # always: a condition keeps the int64 return below typed
            raise InvalidTypeError(message)
        return np.empty(0, np.int64)
    return impl


#: The largest int64, for the overflow checks of sizes.
INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(INT64_MAX)  # Python ints


@njit(cache=CACHE)
def checked_mul(a, b):
    """``a * b`` of non-negative int64, or -1 when it would overflow (or an input is -1)."""
    if a < 0 or b < 0 or (a != 0 and b > INT64_MAX // a):
        return np.int64(-1)
    return np.int64(a * b)


@njit(cache=CACHE)
def checked_add(a, b):
    """``a + b`` of non-negative int64, or -1 when it would overflow (or an input is -1)."""
    if a < 0 or b < 0 or a > INT64_MAX - b:
        return np.int64(-1)
    return np.int64(a + b)


@njit(cache=CACHE)
def _six_digits(x, e):
    """``round(x / 10**(e - 5))``: x's first six significant digits when 10**e <= x."""
    if e > 300 or e < -290:  # 10**(e - 5) alone would overflow or underflow
        x = x * 1e-300 if e > 0 else x * 1e300
        e = e - 300 if e > 0 else e + 300
    return int(np.round(x / 10.0 ** (e - 5)))


@njit(cache=CACHE)
def real_text(x):
    """A number for a message, as Python's ``%g`` writes it: ``0.001``, ``-2.5``, ``1e+300``,
    ``nan``, ``inf`` (numba's ``str`` of a float gives ``<object type:float64>``)."""
    x = float(x)
    if x != x:
        return "nan"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    x = abs(x)
    if x == np.inf:
        return sign + "inf"
    if x == 0:
        return sign + "0"
    e = int(np.floor(np.log10(x)))
    digits = _six_digits(x, e)
    if digits >= 1000000:  # rounding carried into a seventh digit
        digits //= 10
        e += 1
    elif digits < 100000:  # log10 came out one too high
        e -= 1
        digits = _six_digits(x, e)
    text = str(digits)
    if -4 <= e < 6:  # fixed: the point after digit e + 1
        if e >= 0:
            whole, frac = text[:e + 1], text[e + 1:]
        else:
            whole, frac = "0", "0" * (-e - 1) + text
        frac = frac.rstrip("0")
        return sign + whole + ("." + frac if len(frac) > 0 else "")
    frac = text[1:].rstrip("0")
    exponent = str(abs(e))
    return (sign + text[0] + ("." + frac if len(frac) > 0 else "") + "e"
            + ("-" if e < 0 else "+") + ("0" if abs(e) < 10 else "") + exponent)


@njit(cache=CACHE)
def ints_text(a):
    """``[3, 4, 5]``: an int array for a message (numba has no str of an array)."""
    text = "["
    for i in range(a.shape[0]):
        text += (", " if i > 0 else "") + str(a[i])
    return text + "]"


# ----------------------------------------------------------------------------- Python calls
#
# Each public kernel declares its arguments once, as annotations of its own parameters
# (``def dense_forward(X: MATRIX, W: MATRIX, b: VECTOR, out: MATRIX_OUT, relu: FLAG)``);
# Numba ignores annotations. ``kernel`` below gives a kernel a dispatcher class whose call
# answers a call that Numba cannot type -- a wrong number of dimensions, float16, a
# read-only output, a string where a flag belongs, which would fail with pages of
# TypingError -- with the one-line message of the first argument that does not fit its
# annotation. A call that matches a compiled version pays one Python-level call; the
# checks themselves run only once a call has failed.
#
# Two argument problems fail in Numba's C dispatcher rather than in typing: an empty list
# ("cannot compute fingerprint of empty list") and an integer beyond int64 ("int too big
# to convert"). They are answered the same way. An integer array argument given as a
# list or tuple is made an int64 array and the call made again.


class Arg:
    """What a kernel argument must be: ``kind`` "float" (an array of ``ndim`` dimensions,
    float32 or float64, one dtype per call; ``written``: the kernel writes into it),
    "ints" (a 1-D integer array), "int", "real", "flag" or "record" (an instance of the
    record class named ``record``, whose own ``FIELDS`` say what each field must be);
    ``optional``: None means the option's default."""

    def __init__(self, kind, ndim=0, written=False, optional=False, record=None):
        self.kind, self.ndim, self.written = kind, ndim, written
        self.optional, self.record = optional, record

    def __repr__(self):
        return "Arg(%r, ndim=%d%s%s)" % (self.kind, self.ndim, ", written" * self.written,
                                         ", optional" * self.optional)


MATRIX = Arg("float", 2)
MATRIX_OUT = Arg("float", 2, written=True)
VECTOR = Arg("float", 1)
VECTOR_OUT = Arg("float", 1, written=True)
INTS = Arg("ints", 1)
INT = Arg("int")
REAL = Arg("real")
FLAG = Arg("flag")
OPTIONAL_INT = Arg("int", optional=True)


def arguments_of(dispatcher):
    """[(name, Arg)] of a public kernel, read from its parameters' annotations (a record
    class -- ``kernels.Network`` -- stands for ``Arg("record", record=that class)``)."""
    import inspect
    arguments = []
    for name, p in inspect.signature(dispatcher.py_func).parameters.items():
        arg = p.annotation
        if isinstance(arg, type) and hasattr(arg, "FIELDS"):
            arg = Arg("record", record=arg)
        arguments.append((name, arg))
    return arguments


def _value_problem(kernel, name, arg, value, floats):
    """(class, message) when ``value`` does not fit ``arg``, else None; ``floats`` collects
    (name, dtype) of the float arrays seen, for the one-dtype-per-call rule."""
    import numbers
    if arg.optional and value is None:
        return None
    bad_type = InvalidTypeError
    if arg.kind == "flag":
        if not isinstance(value, (bool, np.bool_)):
            return bad_type, "%s: %s must be True or False, got %r" % (kernel, name, value)
    elif arg.kind == "int":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            return bad_type, "%s: %s must be an integer, got %r" % (kernel, name, value)
        if not _INT64_MIN <= value <= _INT64_MAX:
            return TooLargeError, ("%s: %s must fit int64 (at most 2**63 - 1), got %d"
                                   % (kernel, name, value))
    elif arg.kind == "real":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            return bad_type, "%s: %s must be a real number, got %r" % (kernel, name, value)
    elif arg.kind == "record":
        cls = arg.record
        if not isinstance(value, cls):
            return bad_type, ("%s: %s must be a kernels.%s (%s), got %s"
                              % (kernel, name, cls.__name__, cls.MADE_BY, type(value).__name__))
        for field, field_arg in cls.FIELDS.items():
            problem = _value_problem(kernel, name + "." + field, field_arg,
                                     getattr(value, field), floats)
            if problem is not None:
                return problem
    else:
        if not isinstance(value, np.ndarray):
            return bad_type, ("%s: %s must be a NumPy array, got %s; pass np.asarray(%s)"
                              % (kernel, name, type(value).__name__, name))
        if value.ndim != arg.ndim:
            return InvalidValueError, ("%s: %s must be %d-D (%s), got %d-D with shape %s"
                                       % (kernel, name, arg.ndim,
                                          "rows, columns" if arg.ndim == 2 else "a vector",
                                          value.ndim, value.shape))
        if arg.kind == "ints":
            if value.dtype.kind not in "iu":
                return bad_type, ("%s: %s must be an integer array, got %s"
                                  % (kernel, name, value.dtype))
            return None
        if value.dtype not in (np.float32, np.float64):
            return bad_type, ("%s: %s must be float32 or float64, got %s"
                              % (kernel, name, value.dtype))
        if arg.written and not value.flags.writeable:
            return bad_type, ("%s: %s is read-only, but the kernel writes into it; pass a "
                              "writable array (np.array(%s) copies it)" % (kernel, name, name))
        if floats and value.dtype != floats[0][1]:
            # one dtype per call: mixed, Numba fails deep in compilation
            return bad_type, ("%s: %s has dtype %s but %s has %s; pass arrays of one float "
                              "dtype" % (kernel, name, value.dtype, floats[0][0],
                                         floats[0][1]))
        floats.append((name, value.dtype))
    return None


def argument_problem(kernel, arguments, args, kws=None):
    """(exception class, one-line message) for the first of ``args`` (and keywords ``kws``)
    not fitting ``arguments`` ([(name, Arg)], ``arguments_of``), or None. ValueError for a
    wrong number of dimensions (a shape problem), OverflowError for an integer beyond
    int64, TypeError otherwise."""
    kws = kws or {}
    floats = []
    for i, (name, arg) in enumerate(arguments):
        if i < len(args):
            value = args[i]
        elif name in kws:
            value = kws[name]
        else:
            continue
        problem = _value_problem(kernel, name, arg, value, floats)
        if problem is not None:
            return problem
    return None


def _int64_array(kernel, name, value):
    """(converted, problem): an integer-array argument given as a list or tuple, as an
    int64 array (None when it needs nothing); problem a (class, message) or None."""
    if not isinstance(value, (list, tuple)):
        return None, None
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        return None, (InvalidTypeError, "%s: %s must be a 1-D integer array, got %r"
                      % (kernel, name, value))
    if array.ndim == 1 and array.size == 0:
        return np.empty(0, np.int64), None
    if array.ndim != 1:
        return array, None
    if array.dtype.kind not in "iu":
        return None, (InvalidTypeError, "%s: %s must be integers, got a %s of %s"
                      % (kernel, name, type(value).__name__, array.dtype))
    if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
        return None, (InvalidValueError, "%s: %s holds %d, more than int64 holds"
                      % (kernel, name, array.max()))
    return np.ascontiguousarray(array, np.int64), None


def int64_arguments(kernel, arguments, args):
    """(arguments, problem): ``args`` with every integer-array argument given as a list or
    tuple made an int64 array (None when none was), and the (class, message) of one that
    cannot be (None when all can)."""
    converted = None
    for i, ((name, arg), value) in enumerate(zip(arguments, args)):
        if arg.kind != "ints":
            continue
        array, problem = _int64_array(kernel, name, value)
        if problem is not None:
            return None, problem
        if array is not None:
            converted = list(args) if converted is None else converted
            converted[i] = array
    return converted, None


_CHECKED_CLASSES = {}


def _checked_class(base):
    """A subclass of the dispatcher class ``base`` whose failed calls are explained (made
    once per class, and named in this module so that a dispatcher still pickles)."""
    name = "Checked" + base.__name__
    if name in _CHECKED_CLASSES:
        return _CHECKED_CLASSES[name]
    base_call = base.__call__

    def __call__(self, *args, **kws):
        try:
            return base_call(self, *args, **kws)
        except Exception:
            # Whatever failed -- typing, lowering (mixed dtypes reach LLVM), the C
            # dispatcher or the kernel's own checks -- an argument that does not fit its
            # annotation is the clearer answer; else the error stands.
            kernel = self.py_func.__name__
            arguments = arguments_of(self)
            converted, problem = int64_arguments(kernel, arguments, args)
            if problem is None:
                problem = argument_problem(kernel, arguments, converted or args, kws)
            if problem is not None:
                raise problem[0](problem[1]) from None
            if converted is None:
                raise
        return base_call(self, *converted, **kws)

    cls = type(name, (base,), {"__call__": __call__, "__module__": __name__})
    globals()[name] = _CHECKED_CLASSES[name] = cls
    return cls


def kernel(function):
    """``@kernel``: a public kernel, ``njit(cache=CACHE)`` with its Python calls checked
    against the annotations of its parameters (see the note above)."""
    dispatcher = njit(cache=CACHE)(function)
    dispatcher.__class__ = _checked_class(type(dispatcher))
    return dispatcher
