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
def check_same_shape(kernel, names, a, a_name, b, b_name):
    """Raise unless ``a`` and ``b`` (2-D) are float arrays of one dtype and the same shape."""
    check_float_dtypes(kernel, names, a, b)
    check_dim(kernel, a_name, a.shape[0], b_name, b.shape[0], "rows")
    check_dim(kernel, a_name, a.shape[1], b_name, b.shape[1], "columns")


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


def cast_like(value, like):
    """``value`` converted to the dtype of ``like``, an array or a scalar (in compiled code).

    A float64 scalar (or an int 0) in a float32 loop would otherwise promote the loop's
    arithmetic to double precision and stop it from vectorizing at full width.
    """


@overload(cast_like)
def _cast_like_impl(value, like):
    dtype = like.dtype if isinstance(like, types.Array) else like
    return lambda value, like: dtype(value)


@njit(cache=True)
def check_positive(kernel, name, value):
    """Raise ``ValueError`` unless ``value`` > 0 (e.g. a batch size)."""
    if value <= 0:
        raise ValueError(kernel + ": " + name + " must be positive, got " + str(value))


# ----------------------------------------------------------------------------- Python calls
#
# A call from Python whose argument types match no compiled version goes through the
# dispatcher's ``_compile_for_args`` before Numba types it. A wrong number of dimensions, a
# dtype Numba cannot use (float16), a read-only output or a string where a flag belongs
# would fail there with pages of TypingError; the hook below checks the arguments first
# and raises the same one-line messages as the entry checks. It costs nothing on calls
# that match a compiled version.

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
    return None


def install_argument_checks(namespace):
    """Give every kernel of ``SIGNATURES`` in ``namespace`` the Python-call argument check."""
    for kernel, spec in SIGNATURES.items():
        dispatcher = namespace[kernel]
        compile_for_args = dispatcher._compile_for_args

        def checked(*args, _kernel=kernel, _spec=spec, _compile=compile_for_args, **kws):
            problem = argument_problem(_kernel, _spec, args)
            if problem is not None:
                error, message = problem
                raise error(message)
            return _compile(*args, **kws)
        dispatcher._compile_for_args = checked
