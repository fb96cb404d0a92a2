"""Direct BLAS gemm from @njit code, through SciPy's ``cython_blas``.

Why not ``np.dot``: Numba's ``np.dot`` always computes ``C = A @ B`` into a fresh or
zeroed array. Training wants ``C = alpha * A @ B + beta * C`` so that the SGD update
``W -= lr * delta.T @ A`` is one gemm with ``alpha = -lr, beta = 1`` and no gradient
buffer is written and read back.

How it stays cacheable: the BLAS routine's address is registered with LLVM under a
fixed symbol name at import time (``llvmlite.binding.add_symbol``) and the kernels call
it through ``types.ExternalFunction``. Compiled code refers to the symbol by name, so
``cache=True`` works across processes (a raw ctypes pointer would be baked in as a
constant and defeat the cache).

Which BLAS: the OpenBLAS bundled with SciPy, a second instance beside NumPy's. Before it
loads we may point it at its AVX-512 kernels (``OPENBLAS_CORETYPE=SKYLAKEX``) when the
CPU has AVX-512 and nobody chose a core type; see ``_choose_coretype``. On a CPU without
AVX-512 that setting would die with an illegal instruction, so it is never forced there.
"""

import os
import sys

import numpy as np

# Row-major (C order) arrays are column-major transposes, so every product below is
# written as the column-major gemm that produces the transpose of the wanted C.
_SKYLAKEX = "SKYLAKEX"
_SCIPY_BLAS = "scipy.linalg.cython_blas"


def _cpu_has_avx512_skx():
    """True when the CPU has the AVX-512 subsets OpenBLAS's SkylakeX kernels use."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # pragma: no cover - older NumPy layout
        return False
    return bool(__cpu_features__.get("AVX512_SKX", False))


def _load_scipy_blas():
    """Load SciPy's ``cython_blas``, and with it SciPy's OpenBLAS: from its extension file
    alone where that is found (``_extension_alone``), else by the usual import. Imported by
    name it first runs ``scipy.linalg``'s ``__init__``, which imports most of SciPy's
    linear algebra: 0.23 s of every start on a Zen 4 (0.03 s alone), for nothing the
    kernels use."""
    try:
        _extension_alone(_SCIPY_BLAS)
    except Exception:  # noqa: BLE001 - any layout we do not know: the usual import
        import scipy.linalg.cython_blas  # noqa: F401


def _extension_alone(name):
    """Import the compiled module ``name`` (``package.module``) from its file without
    importing its package first; registered in ``sys.modules`` under ``name`` (and as the
    package's attribute when the package is loaded). ImportError when no file of that
    name exists."""
    import importlib.machinery
    import importlib.util
    package, _, leaf = name.rpartition(".")
    parts = package.split(".")
    top = importlib.util.find_spec(parts[0])
    if top is None or not top.submodule_search_locations:
        raise ImportError("no package %s" % parts[0])
    for root in top.submodule_search_locations:
        folder = os.path.join(root, *parts[1:])
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(folder, leaf + suffix)
            if not os.path.isfile(path):
                continue
            loader = importlib.machinery.ExtensionFileLoader(name, path)
            spec = importlib.util.spec_from_file_location(name, path, loader=loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            if package in sys.modules:
                setattr(sys.modules[package], leaf, module)
            return module
    raise ImportError("no extension file for %s" % name)


def _choose_coretype(env=os.environ, modules=sys.modules, has_avx512=_cpu_has_avx512_skx,
                     load=_load_scipy_blas):
    """Load SciPy's OpenBLAS with its AVX-512 kernels where that is sound.

    Returns a short reason string recorded for ``python -m numba_dense.kernels info``. The
    variable is
    set only while SciPy's BLAS loads and removed afterwards, so NumPy's own BLAS and child
    processes keep the user's configuration. The arguments exist for the tests.
    """
    if _SCIPY_BLAS in modules:
        return ("SciPy's BLAS was loaded before numba-dense, so its core type is OpenBLAS's "
                "own choice; on an AVX-512 CPU set OPENBLAS_CORETYPE=SKYLAKEX before starting "
                "Python, or import kernels first")
    if env.get("OPENBLAS_CORETYPE"):
        return "OPENBLAS_CORETYPE=%s set by the user" % env["OPENBLAS_CORETYPE"]
    if env.get("NUMBA_DENSE_NO_CORETYPE"):
        return "NUMBA_DENSE_NO_CORETYPE set: core type left as OpenBLAS chose"
    if not has_avx512():
        return "CPU has no AVX-512: OpenBLAS's own choice (AVX2 kernels) is the right one"
    env["OPENBLAS_CORETYPE"] = _SKYLAKEX
    try:
        load()
    finally:
        del env["OPENBLAS_CORETYPE"]
    return "AVX-512 CPU: SciPy's OpenBLAS loaded with OPENBLAS_CORETYPE=SKYLAKEX"


CORETYPE_DECISION = _choose_coretype()
if _SCIPY_BLAS not in sys.modules:
    _load_scipy_blas()  # where the core type was left to OpenBLAS: the same quick load

import llvmlite.binding as _llvm  # noqa: E402
from numba import types  # noqa: E402
from numba.core import cgutils  # noqa: E402
from numba.extending import get_cython_function_address, intrinsic, overload  # noqa: E402

from .errors import InvalidTypeError, InvalidValueError  # noqa: E402
from ._cache import CACHE, njit  # noqa: E402  (decided after the BLAS, before any kernel)

_P = types.CPointer


def _gemm_type(t):
    return types.void(_P(types.int8), _P(types.int8), _P(types.int32), _P(types.int32),
                      _P(types.int32), _P(t), _P(t), _P(types.int32), _P(t), _P(types.int32),
                      _P(t), _P(t), _P(types.int32))


for _name in ("sgemm", "dgemm"):
    _llvm.add_symbol("numba_dense_" + _name,
                     get_cython_function_address(_SCIPY_BLAS, _name))
if "scipy.linalg" not in sys.modules:
    # Loaded alone (imported by name, its package would be here too), and only the
    # addresses were wanted. Left in sys.modules without its package, the module
    # never became scipy.linalg's attribute (``scipy.linalg.cython_blas`` raised
    # AttributeError in a user's code after ``import numba_dense``). Out of it, a later
    # import runs scipy.linalg's __init__ as usual and gets this same module back (Cython
    # creates a module once a process; the library stays loaded), as its attribute.
    # Numba's array maths checks at its import that SciPy's BLAS imports (``ensure_blas``),
    # and every process that compiles or loads a kernel imports it: imported now, while the
    # module is here, rather than after, when that check would run scipy.linalg's __init__
    # (0.16 s of every cached start on a Zen 4).
    import numba.np.arraymath  # noqa: F401
    del sys.modules[_SCIPY_BLAS]

_sgemm = types.ExternalFunction("numba_dense_sgemm", _gemm_type(types.float32))
_dgemm = types.ExternalFunction("numba_dense_dgemm", _gemm_type(types.float64))

_INT32_MAX = 2**31 - 1


@intrinsic
def _ref(typingctx, value):
    """Pointer to a stack slot holding ``value``: Fortran BLAS takes scalars by reference.

    The slot lives in the calling function's entry block, so the hot loop allocates
    nothing on the heap.
    """
    def codegen(context, builder, sig, args):
        return cgutils.alloca_once_value(builder, args[0])
    return _P(value)(value), codegen


def _raw_gemm(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    """Column-major ``C = alpha * op(A) @ op(B) + beta * C`` (Fortran BLAS argument order)."""


@overload(_raw_gemm)
def _raw_gemm_impl(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
    if not (A.dtype == B.dtype == C.dtype) or A.dtype not in (types.float32, types.float64):
        # Unreachable at run time: every kernel's entry check has already raised a clear
        # TypeError. Returning a body (rather than failing to type) lets that check run.
        def refuse(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
            raise InvalidTypeError("gemm: operands must share one float dtype")
        return refuse
    fn = _sgemm if A.dtype == types.float32 else _dgemm
    t = A.dtype

    def impl(transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        fn(_ref(np.int8(transa)), _ref(np.int8(transb)),
           _ref(np.int32(m)), _ref(np.int32(n)), _ref(np.int32(k)),
           _ref(t(alpha)), A.ctypes, _ref(np.int32(max(lda, 1))),
           B.ctypes, _ref(np.int32(max(ldb, 1))), _ref(t(beta)),
           C.ctypes, _ref(np.int32(max(ldc, 1))))
    return impl


_N = ord("N")
_T = ord("T")


@njit(cache=CACHE)
def _check_blas_dims(a, b, c):
    # BLAS integers are 32-bit: a larger dimension would wrap and index out of bounds.
    if a > _INT32_MAX or b > _INT32_MAX or c > _INT32_MAX:
        raise InvalidValueError("gemm: a matrix dimension exceeds 2**31 - 1, "
                                "the BLAS integer limit")


@njit(cache=CACHE)
def gemm_a_bt(A, B, C, alpha, beta):
    """``C = alpha * A @ B.T + beta * C``; A (m, k), B (n, k), C (m, n), all C order."""
    m, k = A.shape
    n = B.shape[0]
    if m == 0 or n == 0:
        return
    _check_blas_dims(m, n, k)
    # C.T (n, m) = B (n, k) @ A.T (k, m), column-major.
    _raw_gemm(_T, _N, n, m, k, alpha, B, k, A, k, beta, C, n)


@njit(cache=CACHE)
def gemm_at_b(A, B, C, alpha, beta):
    """``C = alpha * A.T @ B + beta * C``; A (m, p), B (m, q), C (p, q), all C order."""
    m, p = A.shape
    q = B.shape[1]
    if p == 0 or q == 0:
        return
    _check_blas_dims(m, p, q)
    # C.T (q, p) = B.T (q, m) @ A (m, p), column-major.
    _raw_gemm(_N, _T, q, p, m, alpha, B, q, A, p, beta, C, q)


@njit(cache=CACHE)
def gemm_a_b(A, B, C, alpha, beta):
    """``C = alpha * A @ B + beta * C``; A (m, k), B (k, n), C (m, n), all C order."""
    m, k = A.shape
    n = B.shape[1]
    if m == 0 or n == 0:
        return
    _check_blas_dims(m, n, k)
    # C.T (n, m) = B.T (n, k) @ A.T (k, m), column-major.
    _raw_gemm(_N, _N, n, m, k, alpha, B, n, A, k, beta, C, n)


def blas_threadpool():
    """threadpoolctl's record of the OpenBLAS that the kernels call (SciPy's), or None."""
    from threadpoolctl import threadpool_info

    import scipy.linalg.cython_blas as cb
    scipy_dir = os.path.dirname(os.path.dirname(os.path.dirname(cb.__file__)))
    for info in threadpool_info():
        if info.get("user_api") == "blas" and "scipy.libs" in info["filepath"]:
            return info
    for info in threadpool_info():  # e.g. a SciPy linked against a system BLAS
        if info.get("user_api") == "blas" and info["filepath"].startswith(scipy_dir):
            return info
    return None
