"""Entry checks shared by the kernels: a handful of integer comparisons per call.

Every message names the kernel, the argument and both values, e.g.
``dense_forward: W has 30 columns but X has 31``. Dtype checks are decided when Numba
types the call, so a kernel compiled for matching dtypes carries no dtype test at all.
"""

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._cache import CACHE


@njit(cache=CACHE)
def check_dim(kernel, a_name, a_value, b_name, b_value, what):
    """Raise ``ValueError`` unless two sizes agree: '<kernel>: <a> has 3 <what> but <b> has 4'."""
    if a_value != b_value:
        raise ValueError(kernel + ": " + a_name + " has " + str(a_value) + " " + what
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
        raise ValueError(kernel + ": " + name + " must be positive, got " + str(value))


@njit(cache=CACHE)
def check_finite(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` is finite (e.g. a gradient's scale; NaN fails)."""
    if not (abs(value) < np.inf):
        raise ValueError(kernel + ": " + name + " must be finite, got " + real_text(value))


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
        raise ValueError(kernel + ": " + out_name + " shares memory with " + in_name
                         + "; pass a separate array")


@njit(cache=CACHE)
def check_same_or_separate(kernel, out_name, out, in_name, a):
    """Raise ``ValueError`` when ``out`` overlaps ``a`` without being the very same elements
    (same start, shape and strides): for elementwise kernels, which may work in place."""
    if (shares_memory(out, a) and not (out.ctypes.data == a.ctypes.data
                                       and out.shape == a.shape and out.strides == a.strides)):
        raise ValueError(kernel + ": " + out_name + " overlaps " + in_name
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
            raise TypeError(message)
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
# A call from Python whose argument types match no compiled version goes through the
# dispatcher's ``_compile_for_args`` before Numba types it. A wrong number of dimensions, a
# dtype Numba cannot use (float16), a read-only output or a string where a flag belongs
# would fail there with pages of TypingError; the hook below checks the arguments first
# and raises the same one-line messages as the entry checks. It costs nothing on calls
# that match a compiled version.
#
# Integer arrays (sizes, acts, order) of another integer dtype than int64, and lists or
# tuples of integers, are converted to int64 arrays there (``int64_arguments``), so that
# ``sizes = np.array([784, 10], np.int32)`` or ``[784, 10]`` runs the compiled int64
# version instead of compiling another one (from your own @njit code, ``as_int64`` at
# the kernel's entry does the same).

#: Each public kernel's positional arguments: ``name:kind``. Kinds: ``1``/``2`` a float
#: array of that many dimensions (``w``: written, so it must be writable; ``i``: integer
#: array); ``flag`` a bool; ``int``; ``real`` a number; a trailing ``?`` marks an option
#: that may be None (its default; see the note above ``loop.train_epoch``).
SIGNATURES = {
    "dense_forward": "X:2 W:2 b:1 out:2w relu:flag",
    "relu_mask": "A:2 G:2w",
    "accumulate_gradients": "delta:2 X:2 dW:2w db:1w scale:real accumulate:flag",
    "backprop_input": "delta:2 W:2 out:2w",
    "sgd_update": "params:1w grads:1 lr:real",
    "sgd_momentum_update": "params:1w grads:1 velocity:1w lr:real momentum:real "
                           "weight_decay:real",
    "optimizer_step": "params:1w grads:1 state:1w optimizer:int t:int lr:real momentum:real "
                      "weight_decay:real beta1:real beta2:real eps:real nesterov:flag",
    "adam_update": "params:1w grads:1 m:1w v:1w t:int lr:real beta1:real beta2:real eps:real "
                   "weight_decay:real decoupled:flag",
    "activation_forward": "Z:2w act:int",
    "activation_backward": "A:2 G:2w act:int",
    "mse_loss": "pred:2 y:2",
    "mse_grad": "pred:2 y:2 out:2w",
    "softmax_cross_entropy": "Z:2 Y:2",
    "softmax_cross_entropy_grad": "Z:2 Y:2 out:2w",
    "sigmoid_binary_cross_entropy": "Z:2 Y:2",
    "sigmoid_binary_cross_entropy_grad": "Z:2 Y:2 out:2w",
    "softmax": "Z:2 out:2w",
    "sigmoid": "Z:2 out:2w",
    "train_epoch": "X:2 Y:2 params:1w grads:1w velocity:1w sizes:1i acts:1i batch_size:int "
                   "lr:real momentum:real weight_decay:real order:1i workspace:1w loss:int? "
                   "optimizer:int? beta1:real? beta2:real? eps:real? nesterov:flag? step:int?",
    "predict_into": "X:2 params:1 sizes:1i acts:1i out:2w batch_size:int workspace:1w",
    "loss_and_gradient": "X:2 Y:2 params:1 grads:1w sizes:1i acts:1i batch_size:int "
                         "workspace:1w loss:int?",
    "batch_gradient": "X:2 Y:2 params:1 grads:1w sizes:1i acts:1i batch_size:int "
                      "workspace:1w scale:real loss:int?",
    "dataset_cost": "X:2 Y:2 params:1 sizes:1i acts:1i batch_size:int workspace:1w "
                    "loss:int?",
    "param_count": "sizes:1i",
    "layer_offsets": "sizes:1i",
    "workspace_size": "sizes:1i batch_size:int",
}


def argument_problem(kernel, spec, args):
    """(exception class, one-line message) for the first argument not fitting ``spec``, or None.

    ValueError for a wrong number of dimensions (a shape problem), TypeError otherwise.
    """
    import numbers

    import numpy as np
    from numba.core.dispatcher import OmittedArg
    first_float = None  # (name, dtype) of the first float array
    for (name, kind), value in zip((item.split(":") for item in spec.split()), args):
        if isinstance(value, OmittedArg):  # a default the caller left out
            continue
        if kind.endswith("?"):  # an option: None means its default
            if value is None:
                continue
            kind = kind[:-1]
        if kind == "flag":
            if not isinstance(value, (bool, np.bool_)):
                return TypeError, "%s: %s must be True or False, got %r" % (kernel, name, value)
        elif kind == "int":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                return TypeError, "%s: %s must be an integer, got %r" % (kernel, name, value)
            if not _INT64_MIN <= value <= _INT64_MAX:
                if name == "t":
                    return OverflowError, ("%s: t must fit int64 and be >= 1 (a step number), "
                                           "got %d" % (kernel, value))
                return OverflowError, ("%s: %s must fit int64 (at most 2**63 - 1), got %d"
                                       % (kernel, name, value))
        elif kind == "real":
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
                return TypeError, "%s: %s must be a real number, got %r" % (kernel, name, value)
        else:
            if not isinstance(value, np.ndarray):
                return TypeError, ("%s: %s must be a NumPy array, got %s; pass np.asarray(%s)"
                                   % (kernel, name, type(value).__name__, name))
            ndim = int(kind[0])
            if value.ndim != ndim:
                return ValueError, ("%s: %s must be %d-D (%s), got %d-D with shape %s"
                                    % (kernel, name, ndim,
                                       "rows, columns" if ndim == 2 else "a vector",
                                       value.ndim, value.shape))
            if kind.endswith("i"):
                if value.dtype.kind not in "iu":
                    return TypeError, ("%s: %s must be an integer array, got %s"
                                       % (kernel, name, value.dtype))
            elif value.dtype not in (np.float32, np.float64):
                return TypeError, ("%s: %s must be float32 or float64, got %s"
                                   % (kernel, name, value.dtype))
            if kind.endswith("w") and not value.flags.writeable:
                return TypeError, ("%s: %s is read-only, but the kernel writes into it; pass a "
                                   "writable array (np.array(%s) copies it)"
                                   % (kernel, name, name))
            if not kind.endswith("i"):
                if first_float is None:
                    first_float = (name, value.dtype)
                elif value.dtype != first_float[1]:
                    # one dtype per call: mixed, Numba fails deep in compilation
                    return TypeError, ("%s: %s has dtype %s but %s has %s; pass arrays of one "
                                       "float dtype" % (kernel, name, value.dtype,
                                                        first_float[0], first_float[1]))
    return None


def _int64_array(kernel, name, value):
    """(converted, problem): ``value`` of an integer-array argument as a C-contiguous int64
    array (a list or tuple as an array, whatever its shape), or None when it needs
    nothing; problem a (class, message) or None. Shapes are left to ``argument_problem``."""
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except (ValueError, TypeError, OverflowError):
            return None, (TypeError, "%s: %s must be a 1-D integer array, got %r"
                          % (kernel, name, value))
        if array.ndim == 1 and array.size == 0:
            return np.empty(0, np.int64), None
        if array.ndim != 1:
            return array, None
        if array.dtype.kind not in "iu":
            return None, (TypeError, "%s: %s must be integers, got a %s of %s"
                          % (kernel, name, type(value).__name__, array.dtype))
    elif isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim == 1:
        if value.dtype == np.int64 and value.flags.c_contiguous:
            return None, None
        array = value
    else:
        return None, None
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        return None, (ValueError, "%s: %s holds %d, more than int64 holds"
                      % (kernel, name, array.max()))
    return np.ascontiguousarray(array, np.int64), None


def int64_arguments(kernel, spec, args):
    """(arguments, problem): ``args`` with every integer-array argument of ``spec`` given as
    another integer dtype, a list or a tuple made an int64 array (None when none was),
    and the (class, message) of one that cannot be (None when all can)."""
    converted = None
    for i, ((name, kind), value) in enumerate(zip((item.split(":") for item in spec.split()),
                                                  args)):
        if not kind.startswith("1i"):
            continue
        array, problem = _int64_array(kernel, name, value)
        if problem is not None:
            return None, problem
        if array is not None:
            converted = list(args) if converted is None else converted
            converted[i] = array
    return converted, None


def _call_arguments(args):
    """Arguments to call a dispatcher with, from those ``_compile_for_args`` receives:
    defaults left out (``OmittedArg``) at the end stay left out, others are given."""
    from numba.core.dispatcher import OmittedArg
    args = list(args)
    while args and isinstance(args[-1], OmittedArg):
        args.pop()
    return [a.value if isinstance(a, OmittedArg) else a for a in args]


# Two argument problems fail in Numba's C dispatcher before the hook above can see them:
# an empty list (``order=[]``, ``param_count([])``: "cannot compute fingerprint of empty
# list") and, once a version is compiled, an integer beyond int64 ("int too big to
# convert"). Kernels taking an integer or an integer array get a dispatcher class whose
# call catches those two and answers as the hook does: the empty list becomes
# ``np.empty(0, np.int64)`` and the call is made again, the integer gets a one-line error.
# Only those kernels: the Python-level call costs about 0.5 us, nothing beside a network
# kernel's work but a third of a small elementwise update's.

_CHECKED_CLASSES = {}


def _checked_class(base):
    """A subclass of the dispatcher class ``base`` whose calls catch the two failures (made
    once per class, and named in this module so that a dispatcher still pickles)."""
    name = "Checked" + base.__name__
    if name in _CHECKED_CLASSES:
        return _CHECKED_CLASSES[name]
    base_call = base.__call__

    def __call__(self, *args, **kws):
        try:
            return base_call(self, *args, **kws)
        except (ValueError, OverflowError) as error:
            text = str(error)
            if "fingerprint of empty list" not in text and "int too big to convert" not in text:
                raise
            kernel, spec = self._kernel_signature
            converted, problem = int64_arguments(kernel, spec, args)
            if problem is None:
                problem = argument_problem(kernel, spec, converted or args)
            if problem is not None:
                raise problem[0](problem[1]) from None
            if converted is None:
                raise
        return base_call(self, *converted, **kws)

    cls = type(name, (base,), {"__call__": __call__, "__module__": __name__})
    globals()[name] = _CHECKED_CLASSES[name] = cls
    return cls


def install_argument_checks(namespace):
    """Give every kernel of ``SIGNATURES`` in ``namespace`` the Python-call argument check."""
    for kernel, spec in SIGNATURES.items():
        dispatcher = namespace[kernel]
        if ":int" in spec or ":1i" in spec:
            dispatcher.__class__ = _checked_class(type(dispatcher))
            dispatcher._kernel_signature = (kernel, spec)
        compile_for_args = dispatcher._compile_for_args

        def checked(*args, _kernel=kernel, _spec=spec, _compile=compile_for_args,
                    _dispatcher=dispatcher, **kws):
            converted, problem = int64_arguments(_kernel, _spec, args)
            if problem is None:
                problem = argument_problem(_kernel, _spec, converted or args)
            if problem is not None:
                error, message = problem
                raise error(message)
            if converted is not None:
                # Numba calls what this returns with the caller's arguments; a Python
                # function (not a compiled entry point) is called as it is, so it can call
                # the kernel again with the converted ones, which match the int64 version.
                call = _call_arguments(converted)
                return lambda *_args, **_kws: _dispatcher(*call)
            return _compile(*args, **kws)
        dispatcher._compile_for_args = checked
