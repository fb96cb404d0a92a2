"""python -m numba_dense.kernels info: the BLAS in use, its core type, thread counts and
GEMM rate."""

import sys

from .info import main

if len(sys.argv) > 1 and sys.argv[1] != "info":
    sys.exit("usage: python -m numba_dense.kernels info")
main()
