"""Threads of one epoch waiting on each other in compiled code: atomics and a barrier.

The threads of a data-parallel epoch (``kernels.parallel``) meet twice a minibatch step,
which on a small network is a few microseconds: a lock or a condition variable through
Python would cost more than the step. So they meet at a counting barrier in an int64
array shared by all of them, read and written with the CPU's atomic instructions (LLVM
``atomicrmw add`` and ``load atomic acquire``: on x86 a ``lock xadd`` and a plain load).
Numba has no atomics of its own, so this module emits them (``numba.extending.intrinsic``).

A thread at the barrier spins on the counter with the CPU's spin-wait hint (x86
``pause``) for ``SPIN_LIMIT`` reads, then gives its core away (``sched_yield``) between
reads: on a machine whose cores are busy with other work, a thread that spun for its
whole time slice would keep the thread it waits for off the core.

Layout of the shared array (``new_sync``): the barrier's counter at ``COUNTER`` and an
abort flag at ``ABORT``, a cache line apart so that the flag's reads do not contend with
the counter's writes. A thread that fails outside compiled code sets the flag
(``abort``), and every thread waiting at a barrier then returns False instead of waiting
for a thread that will never come.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._cache import CACHE, njit

#: Index of the barrier's counter in the shared array, and of the abort flag.
COUNTER = 0
ABORT = 8
#: int64 elements of the shared array: two cache lines of 64 bytes.
SYNC_SIZE = 16
#: Reads of the counter with the spin-wait hint before a waiting thread starts yielding
#: its core between reads: about 20 to 50 microseconds of spinning, longer than a
#: minibatch step of the networks that run on threads.
SPIN_LIMIT = 2000


def new_sync():
    """A zeroed shared array for ``barrier`` (int64, ``SYNC_SIZE``)."""
    return np.zeros(SYNC_SIZE, np.int64)


def _element_pointer(context, builder, array_type, array, index):
    ary = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, ary, [index],
                                    wraparound=False)


@intrinsic
def atomic_add(typingctx, array, index, value):
    """``array[index] += value`` as one atomic instruction; returns the value before.
    ``array`` a 1-D int64 array (no bounds check: the callers index fixed slots)."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.atomic_rmw("add", ptr, args[2], "seq_cst")
    return sig, codegen


@intrinsic
def atomic_load(typingctx, array, index):
    """``array[index]`` read atomically with acquire order: reads after it in program
    order see every write that preceded the matching atomic writes of other threads."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.int64(array, types.intp)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "acquire", 8)
    return sig, codegen


@intrinsic
def atomic_store(typingctx, array, index, value):
    """``array[index] = value`` written atomically with release order: every write before
    it in program order is seen by a thread whose ``atomic_load`` reads this value."""
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        return None
    sig = types.void(array, types.intp, types.int64)

    def codegen(context, builder, signature, args):
        ptr = _element_pointer(context, builder, signature.args[0], args[0], args[1])
        builder.store_atomic(args[2], ptr, "release", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def spin_hint(typingctx):
    """The CPU's spin-wait hint (x86 ``pause``; nothing on other CPUs)."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        triple = builder.module.triple or ""
        if triple.startswith(("x86_64", "i386", "i686")):
            # the intrinsic, not inline asm: Numba's JIT has no assembler parser
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def yield_core(typingctx):
    """``sched_yield()`` (POSIX): give this thread's core to another runnable thread."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.IntType(32), [])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "sched_yield")
        builder.call(fn, [])
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=CACHE, nogil=True)
def barrier(sync, target):
    """Arrive at a barrier and wait until ``target`` arrivals have been counted in all.

    Every thread of ``n`` passes its k-th barrier (k = 1, 2, ...) with ``target = k * n``:
    the counter only grows, so no reset is needed between barriers. Returns False when
    another thread set the abort flag (the caller then stops), else True.
    """
    atomic_add(sync, COUNTER, np.int64(1))
    spins = 0
    while atomic_load(sync, COUNTER) < target:
        if atomic_load(sync, ABORT) != 0:
            return False
        if spins < SPIN_LIMIT:
            spin_hint()
            spins += 1
        else:
            yield_core()
    return atomic_load(sync, ABORT) == 0


def abort(sync):
    """Set the abort flag of ``sync`` (from Python, after a thread failed)."""
    sync[ABORT] = 1
