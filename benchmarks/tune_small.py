"""Find where a compiled loop, register tiles and a BLAS call each win, for each kind of product.

    python -m benchmarks.tune_small            # prints the grid's times and the thresholds
    python -m benchmarks.tune_small --quick    # a smaller grid
    python -m benchmarks.tune_small --quick --budget 10   # about 10 s of timings

The measuring is ``numba_dense.kernels.tuning`` (its docstring has the rule being tuned);
this prints every shape of the grid and each kind's totals, and writes nothing.
``python -m numba_dense tune`` measures the same and keeps the values for later processes
on this CPU; to change the packaged values in ``kernels/config.py``, run this on the
development machine and settle near-ties with ``benchmarks.ab_constant`` on whole epochs.
"""

import argparse

import numpy as np

from numba_dense.kernels import config
from numba_dense.kernels.tuning import (IMPLS, KINDS, TILED_CANDIDATES, add_arguments,
                                        best_thresholds, tune)

from .configs import cpu_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    record = tune(quick=args.quick, budget=args.budget, batches=args.batches,
                  widths=args.widths)
    rows = record["grid"]["rows"]
    print("CPU: %s" % cpu_model())
    print("%-9s %5s %5s %5s %9s %9s %9s %9s"
          % ("kind", "m", "n_in", "n_out", "MACs", "loop us", "tiles us", "BLAS us"))
    for kind, m, n_in, n_out, *times in rows:
        print("%-9s %5d %5d %5d %9d %9.2f %9.2f %9.2f %s"
              % ((kind, m, n_in, n_out, m * n_in * n_out) + tuple(times)
                 + (IMPLS[int(np.argmin(times))],)))
    widths = record["grid"]["widths"]
    print()
    for kind in KINDS:
        kind_rows = [(k, m, n_in, n_out, m * n_in * n_out, times)
                     for k, m, n_in, n_out, *times in rows if k == kind]
        loop_candidates = sorted({0, config.PACKAGED["%s_LOOP_MAX_OUTPUTS" % kind.upper()],
                                  *widths})
        (loop_max, tiled_max), totals = best_thresholds(kind_rows, loop_candidates,
                                                        TILED_CANDIDATES)
        summary = record["grid"]["kinds"][kind]
        print("%-9s loop for n_out <= %3d, tiles up to 2^%d MACs: grid time %.2f x the "
              "per-shape best (BLAS always: %.2f x, tiles always: %.2f x, loop always: %.2f x)"
              % (kind, loop_max, int(np.log2(max(tiled_max, 1))),
                 totals[loop_max, tiled_max] / len(kind_rows), summary["blas_always"],
                 summary["tiles_always"], summary["loop_always"]))
        best = totals[loop_max, tiled_max]
        close = sorted(pair for pair, total in totals.items()
                       if pair != (loop_max, tiled_max) and total <= 1.01 * best)
        if close:
            print("          within 1%% of it (settle with benchmarks.ab_constant on whole "
                  "epochs): %s" % ", ".join("n_out <= %d, 2^%d" % (l, int(np.log2(max(t, 1))))
                                            for l, t in close))
            print("          python -m numba_dense tune would keep: n_out <= %d, 2^%d"
                  % (summary["loop_max_outputs"],
                     int(np.log2(max(summary["tiled_max_macs"], 1)))))


if __name__ == "__main__":
    main()
