"""Entry checks shared by the kernels: a handful of integer comparisons per call.

Every message names the kernel, the argument and both values, e.g.
``dense_forward: W has 30 columns but X has 31``. Dtype checks are decided when Numba
types the call, so a kernel compiled for matching dtypes carries no dtype test at all.
"""


import numpy as np
from numba import types
from numba.extending import register_jitable
from numba.core import errors
from numba.core.dispatcher import OmittedArg
from numba.extending import overload

from .errors import InvalidTypeError, InvalidValueError, TooLargeError
from ._cache import CACHE, njit


@register_jitable
def check_dim(kernel, a_name, a_value, b_name, b_value, what):
    """Raise ``ValueError`` unless two sizes agree: '<kernel>: <a> has 3 <what> but <b> has 4'."""
    if a_value != b_value:
        raise InvalidValueError("%s: %s has %s %s but %s has %s", kernel, a_name, a_value, what,
                                b_name, b_value)


@register_jitable
def check_same_shape(kernel, names, a, a_name, b, b_name):
    """Raise unless ``a`` and ``b`` (2-D) are float arrays of one dtype and the same shape."""
    check_float_dtypes(kernel, names, a, b)
    check_dim(kernel, a_name, a.shape[0], b_name, b.shape[0], "rows")
    check_dim(kernel, a_name, a.shape[1], b_name, b.shape[1], "columns")


@register_jitable
def check_contiguous(kernel, name, a):
    """Raise ``ValueError`` unless ``a`` is C-contiguous (BLAS and flat views need it)."""
    if not a.flags.c_contiguous:
        raise InvalidValueError("%s: %s must be C-contiguous; pass np.ascontiguousarray(%s)",
                                kernel, name, name)


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


@register_jitable
def check_positive(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` > 0 (e.g. a batch size)."""
    if value <= 0:
        raise InvalidValueError("%s: %s must be positive, got %s", kernel, name, value)


@register_jitable
def check_finite(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` is finite (e.g. a gradient's scale; NaN fails)."""
    if not (abs(value) < np.inf):
        raise InvalidValueError("%s: %s must be finite, got %g", kernel, name, value)


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


@register_jitable
def check_separate(kernel, out_name, out, in_name, a):
    """Raise ``ValueError`` when output ``out`` shares memory with argument ``a``."""
    if shares_memory(out, a):
        raise InvalidValueError("%s: %s shares memory with %s; pass a separate array", kernel,
                                out_name, in_name)


@register_jitable
def check_same_or_separate(kernel, out_name, out, in_name, a):
    """Raise ``ValueError`` when ``out`` overlaps ``a`` without being the very same elements
    (same start, shape and strides): for elementwise kernels, which may work in place."""
    if (shares_memory(out, a) and not (out.ctypes.data == a.ctypes.data
                                       and out.shape == a.shape and out.strides == a.strides)):
        raise InvalidValueError("%s: %s overlaps %s without being the same array; pass %s itself "
                                "(in place) or a separate array", kernel, out_name, in_name,
                                in_name)


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
    if a.dtype == types.uint64:
        def checked(kernel, name, a):
            for i in range(a.size):
                if a.flat[i] > _INT64_MAX_UNSIGNED:  # (a mixed comparison would be float64)
                    raise InvalidValueError("%s: %s holds %s, more than int64 holds", kernel, name,
                                            a.flat[i])
            return a.astype(np.int64)
        return checked
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
_INT64_MAX_UNSIGNED = np.uint64(INT64_MAX)
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


# ----------------------------------------------------------------------------- Python calls
#
# Each public kernel declares its arguments once, as annotations of its own parameters
# (``def dense_forward(X: MATRIX, W: MATRIX, b: VECTOR, out: MATRIX_OUT, relu: FLAG)``);
# Numba ignores annotations. ``kernel`` below makes the kernel's dispatcher an instance of
# a subclass of Numba's that reads them:
#
# - ``_compile_for_args``, which Numba's dispatcher calls only when no compiled version
#   matches a call's argument types, first checks the arguments against the annotations,
#   so that a call Numba cannot use -- a wrong number of dimensions, float16, a read-only
#   output, mixed float dtypes, a string where a flag belongs -- gets the one-line message
#   of the first argument that does not fit, before anything is compiled for it (typing
#   then failing with pages of TypingError, or worse compiling a whole epoch kernel for
#   arguments that cannot be right, takes seconds). A call that matches a compiled version
#   never reaches it and pays nothing. It is the one Numba method the class overrides
#   (an underscore method of ``numba.core.dispatcher.Dispatcher``, kept since Numba 0.2x;
#   ``tests/test_kernels.py`` fails if a Numba release stops calling it).
# - Kernels that take integers get a ``__call__`` as well, for two failures of Numba's C
#   dispatcher that come before any of this: an empty list ("cannot compute fingerprint
#   of empty list") and an integer beyond int64 ("int too big to convert"). It costs those
#   kernels one Python-level call; the elementwise kernels do without.
#
# An integer array argument given as a list or tuple is made an int64 array and the call
# made again. From your own ``@njit`` code the same annotations are checked by
# ``check_types`` in each kernel's body when Numba types the call.


class Arg:
    """What a kernel argument must be: ``kind`` "float" (an array of ``ndim`` dimensions,
    float32 or float64, one dtype per call; ``written``: the kernel writes into it),
    "weights" (a float32 or float64 array of ``ndim`` dimensions, of any float dtype),
    "ints" (a 1-D integer array), "int", "real", "flag" or "record" (an instance of the
    record class named ``record``, whose own ``FIELDS`` say what each field must be);
    ``optional``: None means the option's default; ``alternative``: a record class taken
    in place of the array (``kernels.sparse.MATRIX_OR_CSR``: a matrix or a CSR record);
    ``writable``: read, never written, but typed as writable by code the kernel shares with
    one that writes it (``PARAMS_READ``), so a read-only array is refused in one line;
    ``contiguous``: C-contiguous, as the flat vectors the network kernels view layer by
    layer (``FLAT``, ``FLAT_OUT``): a strided one is refused in one line, not typed."""

    def __init__(self, kind, ndim=0, written=False, optional=False, record=None,
                 alternative=None, writable=False, contiguous=False):
        self.kind, self.ndim, self.written = kind, ndim, written
        self.optional, self.record = optional, record
        self.alternative = alternative
        self.writable, self.contiguous = writable, contiguous

    def __repr__(self):
        return "Arg(%r, ndim=%d%s%s)" % (self.kind, self.ndim, ", written" * self.written,
                                         ", optional" * self.optional)


MATRIX = Arg("float", 2)
MATRIX_OUT = Arg("float", 2, written=True)
VECTOR = Arg("float", 1)
VECTOR_OUT = Arg("float", 1, written=True)
#: ``params`` of the gradient kernels (``batch_gradient``, ``loss_and_gradient``,
#: ``dropout_gradient``): only read, but their backward pass is the training step's,
#: whose fused SGD update writes the weights, and Numba types that code for every call.
PARAMS_READ = Arg("float", 1, writable=True, contiguous=True)
#: The flat vectors of the network kernels (``params``, ``grads``, ``workspace``), which
#: they reshape into each layer's views: C-contiguous.
FLAT = Arg("float", 1, contiguous=True)
FLAT_OUT = Arg("float", 1, written=True, contiguous=True)
#: The message for a strided ``contiguous`` argument.
_NEEDS_CONTIGUOUS = ("%s: %s must be C-contiguous (a flat vector the kernel views layer by "
                     "layer), got a strided view; pass np.ascontiguousarray(%s)")
#: The message for a read-only ``PARAMS_READ`` argument.
_NEEDS_WRITABLE = ("%s: %s is read-only; the gradient kernels do not change it but "
                   "compile with the training step, which writes it: pass a writable array "
                   "(np.array(%s) copies it)")
INTS = Arg("ints", 1)
INT = Arg("int")
REAL = Arg("real")
FLAG = Arg("flag")
OPTIONAL_INT = Arg("int", optional=True)
#: Row weights: a 1-D float32 or float64 array whose dtype need not be the other arrays'.
WEIGHTS = Arg("weights", 1)
OPTIONAL_WEIGHTS = Arg("weights", 1, optional=True)


def arguments_of(dispatcher):
    """[(name, Arg)] of a public kernel, read from its parameters' annotations (a record
    class -- ``kernels.Network`` -- stands for ``Arg("record", record=that class)``)."""
    return _annotations(dispatcher.py_func)


def _annotations(function):
    import inspect
    arguments = []
    for name, p in inspect.signature(function).parameters.items():
        arg = p.annotation
        if isinstance(arg, type) and hasattr(arg, "FIELDS"):
            arg = Arg("record", record=arg)
        arguments.append((name, arg))
    return arguments


def _value_problem(kernel, name, arg, value, floats):
    """(class, message) when ``value`` does not fit ``arg``, else None; ``floats`` collects
    (name, dtype) of the float arrays seen, for the one-dtype-per-call rule."""
    import numbers
    if arg.optional and (value is None or isinstance(value, OmittedArg)):
        return None  # (Numba passes a left-out default as an OmittedArg)
    if arg.alternative is not None and isinstance(value, arg.alternative):
        return _value_problem(kernel, name, Arg("record", record=arg.alternative), value,
                              floats)
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
            if arg.alternative is not None:
                return bad_type, ("%s: %s must be a NumPy array or a kernels.%s (%s), got %s"
                                  % (kernel, name, arg.alternative.__name__,
                                     arg.alternative.MADE_BY, type(value).__name__))
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
        if arg.kind == "weights":
            if value.dtype not in (np.float32, np.float64):
                return bad_type, ("%s: %s must be float32 or float64, got %s"
                                  % (kernel, name, value.dtype))
            return None
        if value.dtype not in (np.float32, np.float64):
            return bad_type, ("%s: %s must be float32 or float64, got %s"
                              % (kernel, name, value.dtype))
        if arg.written and not value.flags.writeable:
            return bad_type, ("%s: %s is read-only, but the kernel writes into it; pass a "
                              "writable array (np.array(%s) copies it)" % (kernel, name, name))
        if arg.writable and not value.flags.writeable:
            return bad_type, _NEEDS_WRITABLE % (kernel, name, name)
        if arg.contiguous and not value.flags.c_contiguous:
            return InvalidValueError, _NEEDS_CONTIGUOUS % (kernel, name, name)
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


def _explained(self, args, kws):
    """(problem, converted) of a call of kernel dispatcher ``self``: the (class, message) of
    the first argument not fitting its annotation, and the arguments with integer lists
    made int64 arrays (None when none was)."""
    kernel = self.py_func.__name__
    arguments = arguments_of(self)
    converted, problem = int64_arguments(kernel, arguments, args)
    if problem is None:
        problem = argument_problem(kernel, arguments, converted or args, kws)
    return problem, converted


def _checked_class(base, takes_integers):
    """A subclass of the dispatcher class ``base`` that checks a call before compiling for
    it (and, for kernels that take integers, explains the C dispatcher's failures); made
    once per class and named in this module so that a dispatcher still pickles."""
    name = ("CheckedInts" if takes_integers else "Checked") + base.__name__
    if name in _CHECKED_CLASSES:
        return _CHECKED_CLASSES[name]
    base_call, base_compile = base.__call__, base._compile_for_args

    def _compile_for_args(self, *args, **kws):
        problem, converted = _explained(self, args, kws)
        if problem is not None:
            raise problem[0](problem[1])
        if converted is not None:
            # Numba calls what this returns with the caller's arguments; a Python function
            # is called as it is, so it calls the kernel again with the converted ones.
            return lambda *_args, **_kws: self(*converted, **kws)
        return base_compile(self, *args, **kws)

    def __call__(self, *args, **kws):
        try:
            return base_call(self, *args, **kws)
        except (ValueError, OverflowError) as error:
            text = str(error)
            if "fingerprint of empty list" not in text and "int too big to convert" not in text:
                raise
            problem, converted = _explained(self, args, kws)
            if problem is not None:
                raise problem[0](problem[1]) from None
            if converted is None:
                raise
        return base_call(self, *converted, **kws)

    methods = {"_compile_for_args": _compile_for_args, "__module__": __name__}
    if takes_integers:
        methods["__call__"] = __call__
    cls = type(name, (base,), methods)
    globals()[name] = _CHECKED_CLASSES[name] = cls
    return cls


#: The public kernels' Python functions by name, for ``check_types``.
_PUBLIC = {}


def check_types(kernel, *args):
    """In a public kernel's body, its arguments' Numba types checked against its own
    annotations when Numba types the call: a type that fits none (a string for a flag, a
    float for a count, an integer for a flag, mixed float dtypes, a record of the wrong
    class) stops the compilation there, before any code is generated for those types
    (a TypingError that holds the one-line reason; from Python the dispatcher answers with
    that line alone). An integer array of a float dtype is left to ``as_int64``, which
    compiles into a one-line error raised at run time. Nothing runs at run time."""


def _type_problem(kernel, arguments, given):
    """The message of the first Numba type in ``given`` not fitting ``arguments``, or None."""
    floats = []
    for (name, arg), t in zip(arguments, given):
        message = _one_type_problem(kernel, name, arg, t, floats)
        if message:
            return message
    return None


def _one_type_problem(kernel, name, arg, t, floats):
    if arg.optional and isinstance(t, (types.NoneType, types.Omitted)):
        return None
    if (arg.alternative is not None and isinstance(t, types.BaseNamedTuple)
            and t.instance_class is arg.alternative):
        return _one_type_problem(kernel, name, Arg("record", record=arg.alternative), t, floats)
    shown = t.dtype if isinstance(t, types.Array) and t.ndim == arg.ndim else t
    what = "%s: %s must be %%s, got %s" % (kernel, name, shown)
    if arg.kind == "flag":
        return None if isinstance(t, types.Boolean) else what % "True or False"
    if arg.kind == "int":
        return None if isinstance(t, types.Integer) else what % "an integer"
    if arg.kind == "real":
        return None if isinstance(t, (types.Integer, types.Float)) else what % "a real number"
    if arg.kind == "record":
        if not (isinstance(t, types.BaseNamedTuple) and t.instance_class is arg.record):
            return what % ("a kernels." + arg.record.__name__)
        for (field, field_arg), field_type in zip(arg.record.FIELDS.items(), t.types):
            message = _one_type_problem(kernel, name + "." + field, field_arg, field_type,
                                        floats)
            if message:
                return message
        return None
    if not (isinstance(t, types.Array) and t.ndim == arg.ndim):
        return what % ("a %d-D array" % arg.ndim)
    if arg.kind == "ints":
        return None  # its dtype is as_int64's to refuse, at run time, in one line
    if arg.kind == "weights":
        if t.dtype not in (types.float32, types.float64):
            return what % "a float32 or float64 array"
        return None
    if t.dtype not in (types.float32, types.float64):
        return what % "a float32 or float64 array"
    if arg.written and not t.mutable:
        return "%s: %s is read-only, but the kernel writes into it" % (kernel, name)
    if arg.writable and not t.mutable:
        return _NEEDS_WRITABLE % (kernel, name, name)
    if arg.contiguous and t.layout != "C":
        return _NEEDS_CONTIGUOUS % (kernel, name, name)
    if floats and t.dtype != floats[0][1]:
        return "%s: %s has dtype %s but %s has %s" % (kernel, name, t.dtype, floats[0][0],
                                                      floats[0][1])
    floats.append((name, t.dtype))
    return None


@overload(check_types)
def _check_types_impl(kernel, *args):
    if not isinstance(kernel, types.StringLiteral):
        return None
    name = kernel.literal_value
    message = _type_problem(name, _annotations(_PUBLIC[name]), args)
    if message is not None:
        # At typing time: no code is generated for arguments that cannot be right (a whole
        # epoch kernel would take seconds to compile, only to raise).
        raise errors.TypingError(message)
    return lambda kernel, *args: None


def kernel(function):
    """``@kernel``: a public kernel, ``njit(cache=CACHE)`` with its Python calls checked
    against the annotations of its parameters (see the note above)."""
    _PUBLIC[function.__name__] = function
    dispatcher = njit(cache=CACHE, nogil=True)(function)
    takes_integers = any(arg.kind in ("int", "ints", "record")
                         for _, arg in _annotations(function))
    dispatcher.__class__ = _checked_class(type(dispatcher), takes_integers)
    return dispatcher
