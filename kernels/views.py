"""Matrix views into a flat vector without Numba's reshape helper.

The epochs see every layer's weights, gradients and activations as 2-D views into flat
vectors (``params``, ``grads``, the workspace). ``flat[o:o + r * c].reshape((r, c))`` does
that, but Numba lowers every reshape to a call of its C helper
``numba_attempt_nocopy_reshape``, which works out the strides of any layout: about 4% of
the samples of a 10-32-1 network's epoch (batch 16) under ``perf`` on an AMD EPYC Zen 5,
for views whose strides are known in advance (row-major: ``(c * itemsize, itemsize)``).
``matrix_view`` builds the same view directly.
"""

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ._cache import CACHE, njit


@intrinsic
def _row_major(typingctx, flat, start, rows, cols):
    """The (rows, cols) C-contiguous view of a 1-D C-contiguous ``flat`` from element
    ``start`` on, sharing its memory (no bounds check: ``matrix_view`` makes it)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    view = flat.copy(ndim=2, layout="C")

    def codegen(context, builder, signature, args):
        source = make_array(signature.args[0])(context, builder, args[0])
        start, rows, cols = (context.cast(builder, value, kind, types.intp)
                             for value, kind in zip(args[1:], signature.args[1:]))
        out = make_array(view)(context, builder)
        itemsize = source.itemsize
        populate_array(out, data=builder.gep(source.data, [start]),
                       shape=cgutils.pack_array(builder, [rows, cols]),
                       strides=cgutils.pack_array(builder, [builder.mul(cols, itemsize),
                                                            itemsize]),
                       itemsize=itemsize, meminfo=source.meminfo, parent=source.parent)
        return impl_ret_borrowed(context, builder, view, out._getvalue())
    return view(flat, start, rows, cols), codegen


@njit(cache=CACHE, inline="always")
def matrix_view(flat, start, rows, cols):
    """``flat[start:start + rows * cols].reshape((rows, cols))`` for a 1-D C-contiguous
    ``flat`` (compiled code only), without the reshape helper's call. Raises
    ``IndexError`` for a block that does not lie inside ``flat`` (the kernels' entry
    checks make every block they take fit). Inlined (``inline="always"``), as the view
    helpers of ``kernels.loop`` are: a view returned from a function compiled without
    reference counting would reach its caller without the reference the caller frees.
    """
    if start < 0 or rows < 0 or cols < 0 or start + rows * cols > flat.shape[0]:
        raise IndexError("matrix_view: the block does not lie inside the array")
    return _row_major(flat, start, rows, cols)
