"""One place for the kernels' compiler flags and tuned constants.

Each constant names the benchmark that measures it; the figures themselves are in
docs/performance.md, which the benchmark's output regenerates. The packaged values were
measured on the development machine (AMD EPYC, Zen 3, AVX2): another CPU may have other
crossovers, which running the named benchmark there shows.

The crossovers that choose how each product of training is computed (``TUNABLE``) can be
measured on the running CPU instead: ``python -m numba_dense tune`` writes them to a file
of this CPU model and library versions in the user's cache folder (``kernels.host``), and
this module reads that file when it is imported, before any kernel is defined; a missing
file leaves the packaged values, a bad one is ignored with one line on stderr.
``SOURCES`` says where each value in force came from, ``PACKAGED`` keeps the packaged ones.

The kernel modules import these names (``kernels.products.FORWARD_LOOP_MAX_OUTPUTS`` and
the like still resolve) and Numba freezes them into the compiled code. Its cache is keyed
by each kernel's own source file, not this one: after changing a value here, delete the
``__pycache__`` folders or set ``NUMBA_CACHE_DIR`` to an empty folder (docs/performance.md,
"Start-up"); tuned values get a cache folder of their own (``kernels._cache``).
``python -m benchmarks.ab_constant NAME VALUE`` rewrites one of them in a copy of the
package and times whole epochs with each.
"""

import hashlib
import json
import os
import sys

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
#: ... and asks for the row this many bytes of X ahead while it works on one (a software
#: prefetch; ``kernels.loop.prefetch_rows`` turns it into rows: 16 rows of 100 float32,
#: 8 of float64). A distance in bytes, since what it covers is the memory's latency: on an
#: AMD EPYC Zen 5, with 8-row passes (``loop.STREAM_ROWS``), 16 rows ahead were best for
#: 100 float32 inputs and 8 for 100 float64 (``python -m benchmarks.prefetch_distance``;
#: docs/performance.md, "Prefetch distance").
PREFETCH_BYTES = 6400

#: How many rows ahead ``kernels.sparse.csr_take_rows`` prefetches while it copies a
#: shuffled epoch's CSR rows in order. On 200,000 one-hot rows (8 non-zeros each; AMD EPYC
#: Zen 3, quiet, three runs): no prefetch 14-20 ms, 4 rows ahead 11 ms, 8 rows 10 ms,
#: 16 and 32 rows 15-19 ms (under load, 4 to 32 all about halved it). A flat optimum
#: between near neighbours, so a constant rather than a tuned value.
CSR_PREFETCH_ROWS = 8

# ----------------------------------------------------------------------------- register tiles
#
# The shape of ``kernels.tiled``'s tiles, fixed by the register file rather than tuned:
# ``python -m benchmarks.gemm_floor`` prints the rates they reach against OpenBLAS's
# (docs/performance.md, "Small products: loops, register tiles, BLAS").

#: The environment variable that sets the tiles' vector width in bytes, one of
#: ``VECTOR_CHOICES``, instead of the widest the compiler targets: the tests run the
#: 32-byte tiles on an AVX-512 host with it (and the 64-byte ones, split in halves by LLVM,
#: on an AVX2 host). Code compiled with it gets a cache folder of its own (``tuned_fingerprint``).
VECTOR_ENV = "NUMBA_DENSE_VECTOR_BYTES"
#: The vector widths the tiles are written for: AVX2's 32 bytes and AVX-512's 64.
VECTOR_CHOICES = (32, 64)


def compiled_vector_bytes():
    """The widest vector (bytes, int) of ``VECTOR_CHOICES`` that Numba compiles for here:
    64 when its target CPU features have ``avx512f`` (the host's, or ``NUMBA_CPU_FEATURES``
    where the user set them), else 32. On a CPU without AVX2 LLVM splits 32-byte vectors
    into halves, which is still correct."""
    try:
        from numba.core import config as numba_config
        features = numba_config.CPU_FEATURES
        if features is None:
            import llvmlite.binding as llvm
            features = llvm.get_host_cpu_features().flatten()
    except Exception:  # pragma: no cover - a Numba or llvmlite of another layout
        return 32
    return 64 if "+avx512f" in str(features).split(",") else 32


def _vector_bytes(stderr=None):
    """``(bytes, source)``: ``VECTOR_ENV``'s value where it is one of ``VECTOR_CHOICES``,
    else the compiler's widest (a bad value: one stderr line, then that)."""
    value = os.environ.get(VECTOR_ENV, "").strip()
    if value:
        if value in [str(c) for c in VECTOR_CHOICES]:
            return int(value), "%s=%s" % (VECTOR_ENV, value)
        print("kernels: %s must be one of %s, got %r; using the CPU's widest vectors"
              % (VECTOR_ENV, ", ".join(map(str, VECTOR_CHOICES)), value),
              file=stderr or sys.stderr)
    return HOST_VECTOR_BYTES, "the CPU's widest"


#: The widest vectors the compiler targets on this machine (``compiled_vector_bytes``).
HOST_VECTOR_BYTES = compiled_vector_bytes()
#: Width of one vector of the tiles in bytes, and where that came from: the CPU's widest
#: (64 with AVX-512, else 32, which every x86-64 CPU of the last decade has and LLVM
#: splits into halves where only 16-byte vectors exist), or ``VECTOR_ENV``.
VECTOR_BYTES, VECTOR_SOURCE = _vector_bytes()
#: Rows of C per tile, as many as the register file holds: with 32-byte vectors 4 x 2
#: accumulators + 2 loads of B + 1 broadcast fill AVX2's 16 registers; AVX-512 has 32, and
#: 8 x 2 + 3 of them doubled the 64-byte tiles' rate over 4 rows on an AMD EPYC Zen 5 (T1's
#: 64 x 64 x 32 weight gradient: 209 GFLOP/s with 4 rows, 239 with 8, 212 with 6;
#: 32-byte tiles 108; ``python -m benchmarks.gemm_floor``).
TILE_ROWS = 8 if VECTOR_BYTES == 64 else 4
#: Vectors of columns per tile.
TILE_VECTORS = 2
#: Rows of a one-vector (thin) tile, for the last columns of a narrow C: 8 x 1
#: accumulators keep both FMA units busy.
THIN_TILE_ROWS = 8

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
#: register tiles rather than BLAS calls, for each kind of product, by the tiles' vector
#: width: ``python -m numba_dense tune``'s full grid on the hosts the project was measured
#: on, 32-byte tiles on an AMD EPYC Zen 3 (AVX2), 64-byte ones on an AMD EPYC Zen 5
#: (AVX-512, where the 8 x 32 float32 tiles ran at 200-250 GFLOP/s, twice OpenBLAS's rate
#: on T1's and T3's products). The forward product's tiles stop lower because they first
#: copy ``W.T`` (``kernels.tiled.transpose_into``). Another CPU's crossovers may differ:
#: ``tune`` measures them there.
TILED_MAX_MACS_BY_WIDTH = {
    32: {"FORWARD": 1 << 18, "BACKPROP": 1 << 19, "GRADIENT": 1 << 19},
    64: {"FORWARD": 1 << 20, "BACKPROP": 1 << 21, "GRADIENT": 1 << 20},
}
FORWARD_TILED_MAX_MACS = TILED_MAX_MACS_BY_WIDTH[VECTOR_BYTES]["FORWARD"]
BACKPROP_TILED_MAX_MACS = TILED_MAX_MACS_BY_WIDTH[VECTOR_BYTES]["BACKPROP"]
GRADIENT_TILED_MAX_MACS = TILED_MAX_MACS_BY_WIDTH[VECTOR_BYTES]["GRADIENT"]

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

# ----------------------------------------------------------------------------- split steps
#
# ``kernels.parallel``: one network's minibatch steps split between threads, by shards of
# rows and by blocks of units. ``python -m benchmarks.step_threads`` measures the
# crossover (docs/performance.md, "One network on every core").

#: Fewest forward multiply-adds (rows x the sum of n_in x n_out over the layers) in a shard
#: of a data-parallel step: a minibatch is split into as many shards as have this much
#: work, up to ``MAX_SHARDS``; a minibatch with less than twice this trains unsplit.
SHARD_MIN_MACS = 1 << 18
#: Most shards of a minibatch, and so most threads one network trains on. The shards,
#: not the threads, decide the sums (and so the result), so this is fixed, never the
#: machine's core count: a network trains to the same bits on any number of threads.
MAX_SHARDS = 16
#: The thread counts a split step may take (powers of two: the shards are), and for each k
#: ``SPLIT_MIN_MACS_<k>``: the fewest forward multiply-adds of a step (rows x the sum of
#: n_in x n_out) from which k threads train it faster than one. A barrier's cost is the
#: host's (34-235 ns on the 2-core AMD EPYC Zen 5; on a 16-core Xeon VM two threads lost
#: up to steps of 3.8 M where eight gained from 1.9 M), so ``python -m numba_dense tune``
#: measures them (``kernels.tuning.split_threads``), and so does the first split fit when
#: no tuning file holds them. The threads, not the shards: no result depends on them.
#: Packaged: 2^18 a thread, from the Zen 5's measurements.
SPLIT_COUNTS = (2, 4, 8, 16)
SPLIT_MIN_MACS_2 = 1 << 19
SPLIT_MIN_MACS_4 = 1 << 20
SPLIT_MIN_MACS_8 = 1 << 21
SPLIT_MIN_MACS_16 = 1 << 22
#: Fewest weight-gradient multiply-adds (units x n_in x batch rows) in a block of a
#: data-parallel step's parameter phase (``kernels.parallel.unit_blocks``): smaller
#: blocks spread the phase over more threads but pay a call and a sweep each.
BLOCK_MIN_MACS = 1 << 16

# ----------------------------------------------------------------------------- prefetch

#: Bytes the CPU loads at a time (a cache line on x86-64 and the common ARM cores):
#: ``kernels._prefetch.prefetch_row`` asks for one address per line. A hardware fact, not
#: tuned; ``python -m benchmarks.prefetch_distance`` measures the prefetch it serves
#: (docs/performance.md, "The streamed one-layer epoch (config A)").
CACHE_LINE_BYTES = 64


# ----------------------------------------------------------------------------- tuned on this host
#
# Read last, so that the values above are the packaged ones whatever a tuning file says.

#: The dispatch values ``python -m numba_dense tune`` measures (``kernels.tuning``), each
#: with the inclusive range a tuned value must fall in: output widths and multiply-adds.
TUNABLE = {
    "FORWARD_LOOP_MAX_OUTPUTS": (0, 4096),
    "BACKPROP_LOOP_MAX_OUTPUTS": (0, 4096),
    "GRADIENT_LOOP_MAX_OUTPUTS": (0, 4096),
    "FORWARD_TILED_MAX_MACS": (0, 1 << 40),
    "BACKPROP_TILED_MAX_MACS": (0, 1 << 40),
    "GRADIENT_TILED_MAX_MACS": (0, 1 << 40),
    **{"SPLIT_MIN_MACS_%d" % k: (1, 1 << 40) for k in SPLIT_COUNTS},
}
#: The values of ``TUNABLE`` that compiled code never reads (Python reads them at each
#: call): a tuned one needs no cache folder of its own (``tuned_fingerprint``).
RUNTIME_TUNABLE = tuple("SPLIT_MIN_MACS_%d" % k for k in SPLIT_COUNTS)
#: The packaged values of ``TUNABLE`` (the fallback), whatever is in force.
PACKAGED = {name: globals()[name] for name in TUNABLE}
#: Where each value of ``TUNABLE`` in force came from: "packaged" or a tuning file's path.
SOURCES = dict.fromkeys(TUNABLE, "packaged")
#: The tuning file whose values are in force (None: the packaged values).
TUNING_FILE = None
#: Why no tuning file is in force, for ``python -m numba_dense.kernels info`` (None when
#: one is).
TUNING_STATUS = None


def _readable(count):
    """An integer as ``2**k`` when it is a power of two of 2**10 or more, else in digits."""
    if count >= 1 << 10 and count & (count - 1) == 0:
        return "2**%d" % (count.bit_length() - 1)
    return str(count)


def check_tuning(record, model, versions, vector_bytes):
    """The values of a tuning file's JSON ``record`` (dict) for this CPU (``model``, a
    ``host.cpu_key``), library ``versions`` and tiles of ``vector_bytes``-byte vectors.

    ``record`` is what ``kernels.tuning.write_tuning`` writes: ``format``, ``cpu_model``,
    ``vector_bytes``, ``versions`` and ``values`` ({name of ``TUNABLE``: int}). Returns
    {name: int} (names missing from it keep their packaged values). Raises ValueError with a
    one-line reason when the file is of another layout, CPU, tile width or versions, or a
    value is not an integer in its range.
    """
    from .host import TUNING_FORMAT
    if not isinstance(record, dict) or record.get("format") != TUNING_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise ValueError("not a tuning file of format %d (%s)" % (
            TUNING_FORMAT, "no format" if found is None else "found format %r" % (found,)))
    if record.get("cpu_model") != model:
        raise ValueError("measured on another CPU: %r, this one is %r"
                         % (record.get("cpu_model"), model))
    if record.get("vector_bytes") != vector_bytes:
        raise ValueError("measured with tiles of %r-byte vectors, these are %d-byte"
                         % (record.get("vector_bytes"), vector_bytes))
    if record.get("versions") != versions:
        raise ValueError("measured with other versions: %s, these are %s"
                         % (record.get("versions"), versions))
    values = record.get("values")
    if not isinstance(values, dict):
        raise ValueError("'values' must be an object of integers, got %r" % (values,))
    for name, value in values.items():
        if name not in TUNABLE:
            raise ValueError("unknown value %r (expected one of %s)"
                             % (name, ", ".join(TUNABLE)))
        low, high = TUNABLE[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError("%s must be an integer in [%s, %s], got %r"
                             % (name, _readable(low), _readable(high), value))
    return dict(values)


def tuned_fingerprint():
    """A short hash (str) of the ``TUNABLE`` values in force and of a vector width set by
    ``VECTOR_ENV``, or None when they are the packaged values and the CPU's widest vectors:
    names the Numba cache folder of code compiled with them. (Numba's own cache key holds
    the CPU's name and features, so the widest vectors of each CPU need no folder.)"""
    current = {name: globals()[name] for name in TUNABLE if name not in RUNTIME_TUNABLE}
    if VECTOR_BYTES != HOST_VECTOR_BYTES:
        current["VECTOR_BYTES"] = VECTOR_BYTES
    if current == {name: PACKAGED[name] for name in current if name in PACKAGED} \
            and "VECTOR_BYTES" not in current:
        return None
    text = json.dumps(current, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_tuning(path):
    """``(record, values)``: the tuning file at ``path`` (JSON, at most 1 MiB read) and its
    values checked for this host (``check_tuning``). Raises ``OSError`` for a file that
    cannot be read, ``ValueError`` (``UnicodeDecodeError``, ``JSONDecodeError``, or
    ``check_tuning``'s) for one that is not a valid tuning file of this host."""
    from . import host
    with open(path, "rb") as f:
        data = f.read(1 << 20)
    record = json.loads(data.decode("utf-8"))
    return record, check_tuning(record, host.cpu_key(), host.library_versions(), VECTOR_BYTES)


def _load_tuning(stderr=None):
    """Put the tuning file's values in force, if there is a valid one; else one stderr line
    (a missing default file is silent: nothing was tuned). Never raises."""
    global TUNING_FILE, TUNING_STATUS
    from . import host
    path, named = host.tuning_choice(VECTOR_BYTES)
    if path is None:
        TUNING_STATUS = "%s=%s: packaged values" % (host.TUNING_ENV,
                                                    os.environ.get(host.TUNING_ENV))
        return
    try:
        values = read_tuning(path)[1]
    except (FileNotFoundError, NotADirectoryError) as exc:
        TUNING_STATUS = "no tuning file for this CPU and versions (%s)" % path
        if named:
            TUNING_STATUS = "%s=%s: no such file" % (host.TUNING_ENV, path)
            print("kernels: %s=%s names no readable file (%s); using the packaged dispatch "
                  "values" % (host.TUNING_ENV, path, exc.strerror or exc),
                  file=stderr or sys.stderr)
        return
    except Exception as exc:  # unreadable, not JSON, another CPU, a value out of range
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError):
            reason = exc.strerror or reason
        elif isinstance(exc, UnicodeDecodeError) or type(exc).__name__ == "JSONDecodeError":
            reason = "not valid JSON: %s" % reason
        TUNING_STATUS = "ignored %s: %s" % (path, reason)
        print("kernels: ignoring the tuning file %s: %s; using the packaged dispatch values "
              "(rerun python -m numba_dense tune, or set %s=off)"
              % (path, reason, host.TUNING_ENV), file=stderr or sys.stderr)
        return
    globals().update(values)
    SOURCES.update(dict.fromkeys(values, path))
    TUNING_FILE = path


_load_tuning()
