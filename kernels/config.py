"""One place for the kernels' compiler flags and tuned constants.

Each constant names the benchmark that measures it; the figures themselves are in
docs/performance.md, which the benchmark's output regenerates. The packaged values were
measured on the development machine (AMD EPYC, Zen 3, AVX2): another CPU may have other
crossovers, which running the named benchmark there shows.

The kernel modules import these names (``kernels.products.FORWARD_LOOP_MAX_OUTPUTS`` and
the like still resolve) and Numba freezes them into the compiled code. Its cache is keyed
by each kernel's own source file, not this one: after changing a value here, delete the
``__pycache__`` folders or set ``NUMBA_CACHE_DIR`` to an empty folder (docs/performance.md,
"Start-up"). ``python -m benchmarks.ab_constant NAME VALUE`` rewrites one of them in a
copy of the package and times whole epochs with each.
"""

# ----------------------------------------------------------------------------- fastmath
#
# Numba's ``fastmath`` flags, by what a loop may be allowed to change. Plain sets, not
# frozensets: Numba (0.68) accepts only a bool, dict or set. Never modify them in place.

#: Fused multiply-add only: no reassociation, so NaN and inf propagate as in BLAS and the
#: entry checks' NaN tests stay exact. Elementwise sweeps, activations, products.
FASTMATH_ELEMENTWISE = {"contract"}
#: Fused multiply-add and reassociation: a reduction may be split into partial sums that
#: vectorize (the dense forward's dot products, the streamed epoch). Results differ from a
#: sequential sum in the last bits.
FASTMATH_REDUCTION = {"contract", "reassoc"}

# ----------------------------------------------------------------------------- streaming

#: A one-layer MSE network with at most this many outputs trains by streaming each row once
#: (``kernels.loop``): its forward product and its error-times-input gradient are done
#: while the row is in L1 cache, instead of two passes over the batch (config A).
STREAMING_MAX_OUTPUTS = 8
#: ... and asks for the row this many rows ahead while it works on one (a software
#: prefetch). Measured by ``python -m benchmarks.prefetch_distance``
#: (docs/performance.md, "Prefetch distance").
PREFETCH_ROWS = 8

#: How many rows ahead ``kernels.sparse.csr_take_rows`` prefetches while it copies a
#: shuffled epoch's CSR rows in order. On 200,000 one-hot rows (8 non-zeros each; AMD EPYC
#: Zen 3, quiet, three runs): no prefetch 14-20 ms, 4 rows ahead 11 ms, 8 rows 10 ms,
#: 16 and 32 rows 15-19 ms (under load, 4 to 32 all about halved it). A flat optimum
#: between near neighbours, so a constant rather than a tuned value.
CSR_PREFETCH_ROWS = 8

# ----------------------------------------------------------------------------- small products
#
# Which way ``kernels.products`` computes each product of training: a loop compiled into
# the caller for layers a few units wide, register tiles (``kernels.tiled``) up to a number
# of multiply-adds, a BLAS call above. The values are the crossovers that
# ``python -m benchmarks.tune_small`` picks (near-ties settled by whole epochs with
# ``benchmarks.ab_constant``); figures in docs/performance.md, "Small products: loops,
# register tiles, BLAS".

#: Layers with at most this many outputs compute ``sigma(A @ W.T + b)`` as a loop (dot form);
#: 0 means never.
FORWARD_LOOP_MAX_OUTPUTS = 4
#: ... ``delta @ W`` (backprop to the layer's input) as a loop.
BACKPROP_LOOP_MAX_OUTPUTS = 0
#: ... the weight gradient or update ``W += alpha * delta.T @ A`` as a loop.
GRADIENT_LOOP_MAX_OUTPUTS = 1
#: Products of wider layers up to this many multiply-adds (``m * n_in * n_out``) run as
#: register tiles rather than BLAS calls, for each kind of product. The forward product's
#: tiles stop at half the others' size because they first copy ``W.T``
#: (``kernels.tiled.transpose_into``).
FORWARD_TILED_MAX_MACS = 1 << 18
BACKPROP_TILED_MAX_MACS = 1 << 19
GRADIENT_TILED_MAX_MACS = 1 << 19

# ----------------------------------------------------------------------------- register tiles
#
# The shape of ``kernels.tiled``'s tiles, fixed by the register file rather than tuned:
# ``python -m benchmarks.gemm_floor`` prints the rates they reach against OpenBLAS's
# (docs/performance.md, "Small products: loops, register tiles, BLAS").

#: Rows of C per tile: 4 x 2 accumulators + 2 loads of B + 1 broadcast fit 16 registers.
#: (``kernels.tiled`` names its compiled variants after it: ``_tile_4``, ``_edge_4``.)
TILE_ROWS = 4
#: Width of one vector: 32 bytes (AVX2), which every x86-64 CPU of the last decade has and
#: LLVM splits into halves where only 16-byte vectors exist.
VECTOR_BYTES = 32
#: Vectors of columns per tile.
TILE_VECTORS = 2
#: Rows of a one-vector (thin) tile, for the last columns of a narrow C: 8 x 1
#: accumulators keep both FMA units busy.
THIN_TILE_ROWS = 8

# ----------------------------------------------------------------------------- BLAS threads
#
# ``kernels.threads.blas_threads_for``: how many threads an epoch's BLAS calls may use.
# ``python -m benchmarks.blas_threads`` measures the crossover and an epoch beside busy
# processes (docs/performance.md, "BLAS threads, and a machine that is busy with other
# work").

#: Below this many multiply-adds in its largest product (batch rows x n_in x n_out), an
#: epoch runs its BLAS calls on one thread: a second thread gained nothing below it.
SINGLE_THREAD_MAX_MACS = 1 << 19
#: A reading of the machine's load this recent is reused: epochs of small data follow each
#: other faster than a reading (three samples of ``/proc/loadavg``) is worth. A choice, not
#: a measured crossover.
READING_REUSE_SECONDS = 0.5

# ----------------------------------------------------------------------------- prefetch

#: Bytes the CPU loads at a time (a cache line on x86-64 and the common ARM cores):
#: ``kernels._prefetch.prefetch_row`` asks for one address per line. A hardware fact, not
#: tuned; ``python -m benchmarks.prefetch_distance`` measures the prefetch it serves
#: (docs/performance.md, "The streamed one-layer epoch (config A)").
CACHE_LINE_BYTES = 64
