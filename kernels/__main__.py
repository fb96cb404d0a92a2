"""python -m numba_dense.kernels info [--no-rate] | tune [--quick] ...

``info``: the BLAS in use, its core type, threads and GEMM rate; the CPU, the vector width
of the register tiles and the dispatch values in force with where each came from.
``tune``: measure the dispatch values on this CPU and keep them for later processes
(``kernels.tuning``)."""

import sys

args = sys.argv[1:]
if args[:1] == ["tune"]:
    from .tuning import main as tune_main
    sys.exit(tune_main(args[1:]))
if args[:1] in ([], ["info"]) and args[1:] in ([], ["--no-rate"]):
    from .info import main
    main(rate="--no-rate" not in args)
    sys.exit(0)
print("error: python -m numba_dense.kernels: expected 'info [--no-rate]' or 'tune [options]', "
      "got %r" % " ".join(args), file=sys.stderr)
sys.exit(2)
