"""Measure where a compiled loop, register tiles and a BLAS call each win, on this CPU.

    python -m numba_dense tune [--quick] [--budget SECONDS]
    python -m numba_dense.kernels tune [--quick] [--budget SECONDS]

The training step makes three kinds of product (``kernels/products.py``, ``kernels/dense.py``):

- forward  ``sigma(A @ W.T + b)``: ``forward_loop``; ``W.T`` copied and register tiles
  (``kernels.tiled``); ``gemm_a_bt``; the last two then a bias/activation sweep;
- backprop ``delta @ W``: ``loop_a_b``, ``tiled_a_b``, ``gemm_a_b``;
- gradient ``W -= lr * delta.T @ A``: ``loop_a_b`` and ``tiled_a_b`` on ``delta.T``,
  ``gemm_at_b``.

For each kind ``grid`` times all three over a grid of batch sizes and layer widths (each
call repeated in compiled code until it has run for a while, the three taking turns for
``GRID_ROUNDS`` rounds and each keeping its fastest, the BLAS at its usual thread count).
The rule being tuned: a loop when the layer's output width ``n_out`` is at most ``L`` (the
thin side of a tabular network's products), otherwise tiles when the product has at most
``T`` multiply-adds, otherwise BLAS. For every pair (L, T) ``best_thresholds`` sums
the grid's time relative to the best choice shape by shape; the pair with the lowest total
wins, a near-tie (within ``TIE``) going to the pair nearest the packaged values, which
whole epochs settled (docs/performance.md, "Small products: loops, register tiles, BLAS").

``split_threads`` then times one network's split epoch (``kernels.parallel``) on one
thread and on 2, 4, ... (as many as the cores) at several minibatch sizes, for
``SPLIT_MIN_MACS_<k>``: the smallest step that k threads train faster than one here.

``tune`` does all this and ``write_tuning`` keeps the result where ``kernels.config`` reads
it in later processes (``kernels.host.tuning_choice``). ``benchmarks/tune_small.py`` prints
the whole grid.
"""

import argparse
import datetime
import itertools
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from . import config, host
from ._cache import CACHE, njit
from .activations import add_bias_activate
from .dense import forward_loop
from .products import gemm_a_b, gemm_a_bt, gemm_at_b, loop_a_b
from .tiled import tiled_a_b, transpose_into
from .variants import RELU

LOOP, TILED, BLAS = 0, 1, 2
IMPLS = ("loop", "tiles", "BLAS")
KINDS = ("forward", "backprop", "gradient")

#: (batch sizes, layer widths) of each grid: every (m, n_in, n_out) of them is timed.
GRIDS = {
    "full": ([8, 16, 32, 64, 128], [1, 4, 10, 20, 32, 64, 128, 256]),
    "quick": ([16, 64], [1, 8, 32, 128]),
}
#: Seconds each call is repeated for, at most and at least (``budget`` divides its seconds
#: between the grid's timings within these bounds).
TARGET_SECONDS = (2e-4, 0.02)
#: Rounds of each timing of the grid (``fastest_of_rounds``): a shape's loop, tiles and
#: BLAS take turns, round after round, and each keeps its fastest round. Another process
#: can only slow a round down; timed once each, one after the other, a burst of it during
#: one implementation's turn would decide between them.
GRID_ROUNDS = 3
#: Default measuring budgets in seconds (None: the most per timing, ``TARGET_SECONDS[1]``).
BUDGETS = {"full": None, "quick": 12.0}
#: Candidate ``*_TILED_MAX_MACS``: never, then powers of two 2^10 .. 2^24.
TILED_CANDIDATES = [0] + [1 << e for e in range(10, 25)]
#: A grid needs this many different widths at least: of one width every shape has the same
#: ``n_out``, and neither crossover can be placed on it.
MIN_WIDTHS = 2
#: Pairs within this fraction of the best total are a tie, settled towards the packaged
#: values: the grid's timings are not finer than that, whole epochs were.
TIE = 0.01


@njit(cache=CACHE)
def forward(impl, A, W, b, out, reps):
    """Time-able forward product: ``reps`` times ``relu(A @ W.T + b)`` into ``out``
    (A (m, n_in), W (n_out, n_in), b (n_out,), out (m, n_out)) by ``impl`` (LOOP, TILED,
    BLAS)."""
    WT = np.empty((W.shape[1], W.shape[0]), W.dtype)
    for _ in range(reps):
        if impl == LOOP:
            forward_loop(A, W, b, out, RELU)
            continue
        if impl == TILED:
            transpose_into(W, WT)
            tiled_a_b(A, WT, out, 1.0, 0.0)
        else:
            gemm_a_bt(A, W, out, 1.0, 0.0)
        add_bias_activate(out, b, RELU)


@njit(cache=CACHE)
def backprop(impl, D, W, below, reps):
    """``reps`` times ``below = D @ W`` (D (m, n_out), W (n_out, n_in)) by ``impl``."""
    for _ in range(reps):
        if impl == LOOP:
            loop_a_b(D, W, below, 1.0, 0.0)
        elif impl == TILED:
            tiled_a_b(D, W, below, 1.0, 0.0)
        else:
            gemm_a_b(D, W, below, 1.0, 0.0)


@njit(cache=CACHE)
def gradient(impl, D, A, W, reps):
    """``reps`` times ``W -= 1e-9 * D.T @ A`` (D (m, n_out), A (m, n_in)) by ``impl``."""
    for _ in range(reps):
        if impl == LOOP:
            loop_a_b(D.T, A, W, -1e-9, 1.0)
        elif impl == TILED:
            tiled_a_b(D.T, A, W, -1e-9, 1.0)
        else:
            gemm_at_b(D, A, W, -1e-9, 1.0)


def _reps_for(fn, args, target):
    """``(reps, seconds per call)``: reps grows 4x until one run of ``fn(*args, reps)`` lasts
    ``target`` seconds (after a first call that compiles and warms up)."""
    fn(*args, 1)
    reps = 1
    while True:
        start = time.perf_counter()
        fn(*args, reps)
        elapsed = time.perf_counter() - start
        if elapsed > target:
            return reps, elapsed / reps
        reps *= 4


def seconds_per_call(fn, args, target=TARGET_SECONDS[1]):
    """Seconds per call of ``fn(*args, reps)``: reps grows 4x until one run lasts ``target``
    seconds (after a first call that compiles and warms up)."""
    return _reps_for(fn, args, target)[1]


def fastest_of_rounds(calls, target=TARGET_SECONDS[1], rounds=None):
    """Seconds per call of each ``fn(*args, reps)`` of ``calls`` (a list of ``(fn, args)``):
    the fastest of ``rounds`` (default ``GRID_ROUNDS``) runs of each, the calls taking
    turns round after round, each run lasting about ``target / rounds`` seconds (the last
    run of ``_reps_for``'s growth is the first round)."""
    rounds = GRID_ROUNDS if rounds is None else rounds
    found = [_reps_for(fn, args, target / rounds) for fn, args in calls]
    best = [seconds for _, seconds in found]
    for _ in range(rounds - 1):
        for i, (fn, args) in enumerate(calls):
            reps = found[i][0]
            start = time.perf_counter()
            fn(*args, reps)
            best[i] = min(best[i], (time.perf_counter() - start) / reps)
    return tuple(best)


def grid(batches, widths, target=TARGET_SECONDS[1]):
    """Rows ``(kind, m, n_in, n_out, macs, (loop, tiles, BLAS) seconds per call)`` over
    every (m, n_in, n_out) of ``batches`` x ``widths`` x ``widths``, float32."""
    rng = np.random.default_rng(0)
    rows = []
    for m, n_in, n_out in itertools.product(batches, widths, widths):
        A = rng.standard_normal((m, n_in), dtype=np.float32)
        W = rng.standard_normal((n_out, n_in), dtype=np.float32)
        b = rng.standard_normal(n_out, dtype=np.float32)
        D = rng.standard_normal((m, n_out), dtype=np.float32)
        out = np.empty((m, n_out), np.float32)
        below = np.empty((m, n_in), np.float32)
        for kind, fn, args in (("forward", forward, (A, W, b, out)),
                               ("backprop", backprop, (D, W, below)),
                               ("gradient", gradient, (D, A, W))):
            times = fastest_of_rounds([(fn, (impl,) + args) for impl in (LOOP, TILED, BLAS)],
                                      target)
            rows.append((kind, m, n_in, n_out, m * n_in * n_out, times))
    return rows


def choice(n_out, macs, loop_max, tiled_max):
    """The implementation the rule picks: LOOP, TILED or BLAS."""
    if n_out <= loop_max:
        return LOOP
    return TILED if macs <= tiled_max else BLAS


def best_thresholds(rows, loop_candidates, tiled_candidates):
    """((L, T), {(L, T): total time relative to the per-shape best}) for one kind's rows."""
    totals = {}
    for pair in itertools.product(loop_candidates, tiled_candidates):
        totals[pair] = sum(times[choice(n_out, macs, *pair)] / min(times)
                           for _, _, _, n_out, macs, times in rows)
    return min(totals, key=totals.get), totals


def settle(totals, packaged, tie=TIE):
    """The pair (L, T) to use: of those within ``tie`` of the lowest total, the one nearest
    ``packaged`` (L, T) on a log scale."""
    best = min(totals.values())

    def distance(pair):
        return sum(abs(math.log2(a + 1) - math.log2(b + 1)) for a, b in zip(pair, packaged))
    close = [pair for pair, total in totals.items() if total <= (1 + tie) * best]
    return min(close, key=lambda pair: (distance(pair), totals[pair]))


def _names(kind):
    return "%s_LOOP_MAX_OUTPUTS" % kind.upper(), "%s_TILED_MAX_MACS" % kind.upper()


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def check_grid(batches, widths, budget=None):
    """Raise ValueError (one line) when the grid or the budget is out of range: sizes must
    be integers >= 1, at least ``MIN_WIDTHS`` different widths, a budget finite seconds > 0
    (or None)."""
    for name, sizes in (("batches", batches), ("widths", widths)):
        if not sizes or any(type(v) is not int or v < 1 for v in sizes):
            raise ValueError("%s: expected integers >= 1, got %r" % (name, sizes))
    if len(set(widths)) < MIN_WIDTHS:
        shapes = len(batches) * len(widths) ** 2
        raise ValueError("widths: expected at least %d different widths, got %r (a grid of "
                         "%s of one width cannot place a crossover)"
                         % (MIN_WIDTHS, widths, _plural(shapes, "shape")))
    if budget is not None and not (isinstance(budget, (int, float)) and math.isfinite(budget)
                                   and budget > 0):
        raise ValueError("budget: expected finite seconds > 0, got %r" % (budget,))


#: The network ``split_threads`` times (48-128-64-8, ReLU, MSE: 14,848 forward
#: multiply-adds a row), its minibatch sizes by grid, its rows, and the gain two threads
#: must show over one for a step of that size to take a second thread.
SPLIT_PROBE = [48, 128, 64, 8]
SPLIT_BATCHES = {"full": [16, 32, 64, 128, 256, 512], "quick": [32, 64, 128, 512]}
SPLIT_ROWS = 8192
SPLIT_GAIN = 1.1
#: ``SPLIT_MIN_MACS_<k>`` when k threads never gained: no step takes k threads.
NEVER_SPLIT = 1 << 40


def split_threads(batches, rounds=5, rows=SPLIT_ROWS, counts=None):
    """Measure ``config.SPLIT_MIN_MACS_<k>``: epochs of ``SPLIT_PROBE`` split into k shards
    (``kernels.train_epoch_parallel``) on one thread and on k, alternating ``rounds`` times
    (the fastest of the rounds: another process can only slow a round down), at each
    minibatch size of ``batches``, for k in ``counts`` (default ``config.SPLIT_COUNTS`` up
    to the usable cores). Each k's value is the forward multiply-adds of the smallest step
    from which k threads were at least ``SPLIT_GAIN`` times faster than one at every size
    measured (``NEVER_SPLIT`` when they never were): each count has its own, since on some
    machines two threads lose where eight gain. Returns ``(values, rows)``: values {name:
    int} for the counts measured, rows ``[k, batch, step MACs, one-thread s, k-thread
    s]``; ``(None, [])`` on a machine with one usable core, where nothing can be measured.
    """
    from . import parallel
    from .records import batches as batches_record, network
    from .threads import blas_threads, usable_cores
    from .loss import MSE
    from .activations import IDENTITY
    from .loop import param_count
    from .optim import optimizer
    cores = usable_cores()
    counts = [k for k in config.SPLIT_COUNTS if k <= cores] if counts is None else counts
    if not counts:
        return None, []
    sizes = np.array(SPLIT_PROBE, np.int64)
    per_row = parallel.forward_macs_per_row(sizes)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, sizes[0])).astype(np.float32)
    Y = rng.standard_normal((rows, sizes[-1])).astype(np.float32)
    net = network(sizes, [RELU, RELU, IDENTITY], MSE)
    params0 = (rng.standard_normal(int(param_count(sizes))) * 0.05).astype(np.float32)

    def seconds(batch, threads):
        params = params0.copy()
        opt = optimizer("sgd", params, 1e-3)
        start = time.perf_counter()
        parallel.train_epoch_parallel(X, Y, params, np.empty_like(params), net, opt,
                                      batches_record(batch, np.empty(0, np.int64)), threads)
        return time.perf_counter() - start

    results = []
    values = {}
    saved = parallel.SHARD_MIN_MACS
    try:
        with blas_threads(1):
            for k in counts:
                mine = []
                for batch in batches:
                    if batch < k:
                        continue
                    parallel.SHARD_MIN_MACS = max(batch // k, 1) * per_row  # k shards
                    seconds(batch, 1), seconds(batch, k)  # compile, warm up
                    times = {1: [], k: []}
                    for _ in range(rounds):
                        for threads in (1, k):
                            times[threads].append(seconds(batch, threads))
                    mine.append([k, batch, batch * per_row, min(times[1]), min(times[k])])
                value = NEVER_SPLIT
                for row in reversed(mine):
                    if row[3] / row[4] < SPLIT_GAIN:
                        break
                    value = row[2]
                values["SPLIT_MIN_MACS_%d" % k] = value
                results.extend(mine)
    finally:
        parallel.SHARD_MIN_MACS = saved
    return values, results


def split_record(timings, **extra):
    """What a tuning file keeps of ``split_threads``' measurement: the probe, its rows and
    the gain asked for, and ``timings`` (its rows, columns named), with ``extra``."""
    return {"probe": SPLIT_PROBE, "rows": SPLIT_ROWS, "gain": SPLIT_GAIN,
            "columns": ["threads", "batch", "step_macs", "one_thread_s", "threads_s"],
            "timings": timings, **extra}


def host_record():
    """What a tuning file says of the host it was measured on: ``format``, ``cpu_model``
    (``host.cpu_key``), ``vector_bytes``, ``cpu_flags``, ``versions`` and ``date``; the
    first four are what ``config.check_tuning`` matches."""
    return {"format": host.TUNING_FORMAT, "cpu_model": host.cpu_key(),
            "vector_bytes": config.VECTOR_BYTES, "cpu_flags": host.cpu_flags(),
            "versions": host.library_versions(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds")}


def tune(*, quick=False, budget=None, batches=None, widths=None):
    """Measure the grid and choose the dispatch values for this CPU.

    ``quick`` takes the small grid (``GRIDS``); ``budget`` (seconds > 0) is about how long the
    timings may take together, compilation aside (default ``BUDGETS``); ``batches`` and
    ``widths`` (lists of ints >= 1) replace the grid's. Returns the record
    ``write_tuning`` writes: ``values`` ({name of ``config.TUNABLE``: int}), the host
    (``cpu_model``, ``cpu_flags``, ``versions``), ``date`` and ``grid`` (its shapes, the
    seconds per timing, each kind's totals and every row's microseconds; a kind's
    ``tiled_at_top`` is True when its chosen ``*_TILED_MAX_MACS`` covers the grid's largest
    product that it decides: the crossover may lie above the grid), and ``split``, the
    timings behind ``SPLIT_MIN_MACS_<k>`` (``split_threads``). Raises ValueError for a budget
    or grid out of range (``check_grid``).
    """
    size = "quick" if quick else "full"
    batches = list(GRIDS[size][0] if batches is None else batches)
    widths = list(GRIDS[size][1] if widths is None else widths)
    check_grid(batches, widths, budget)
    budget = BUDGETS[size] if budget is None else budget
    timings = len(batches) * len(widths) ** 2 * len(KINDS) * len(IMPLS)
    target = TARGET_SECONDS[1]
    if budget is not None:  # a timing lasts about 3 x target (4x growth, then warm-up)
        target = min(max(budget / (3 * timings), TARGET_SECONDS[0]), TARGET_SECONDS[1])
    grid([2], [1, 3], 0.0)  # compiles (or loads) the three timing loops, outside the timing
    start = time.perf_counter()
    rows = grid(batches, widths, target)
    seconds = time.perf_counter() - start
    values, kinds = {}, {}
    split_values, split_rows = split_threads(SPLIT_BATCHES[size])
    values.update(split_values or {})  # the counts beyond the cores keep their values
    for kind in KINDS:
        loop_name, tiled_name = _names(kind)
        packaged = (config.PACKAGED[loop_name], config.PACKAGED[tiled_name])
        loop_candidates = sorted({0, packaged[0], *widths})
        kind_rows = [r for r in rows if r[0] == kind]
        _, totals = best_thresholds(kind_rows, loop_candidates, TILED_CANDIDATES)
        pair = settle(totals, packaged)
        values[loop_name], values[tiled_name] = pair
        n = len(kind_rows)
        decided = [r[4] for r in kind_rows if r[3] > pair[0]]  # shapes the loop leaves
        at_top = pair[1] > 0 and (not decided or pair[1] >= max(decided))
        kinds[kind] = {"loop_max_outputs": pair[0], "tiled_max_macs": pair[1],
                       "tiled_at_top": at_top,
                       "grid_vs_best": round(totals[pair] / n, 4),
                       "blas_always": round(totals[0, 0] / n, 4),
                       "tiles_always": round(totals[0, TILED_CANDIDATES[-1]] / n, 4),
                       "loop_always": round(totals[loop_candidates[-1], 0] / n, 4)}
    return {
        **host_record(),
        "values": values,
        "split": split_record(split_rows, note=None if split_values else
                              "one usable core: the packaged values kept"),
        "grid": {"size": size, "batches": batches, "widths": widths,
                 "seconds_per_timing": target, "seconds": round(seconds, 2), "kinds": kinds,
                 "columns": ["kind", "m", "n_in", "n_out", "loop_us", "tiles_us", "blas_us"],
                 "rows": [[kind, m, n_in, n_out, *(round(t * 1e6, 3) for t in times)]
                          for kind, m, n_in, n_out, _, times in rows]},
    }


def write_tuning(record, path=None):
    """Write ``record`` (``tune``'s) as JSON to ``path`` (default: where ``kernels.config``
    looks, ``kernels.host.tuning_choice``) atomically: a temporary file in the same folder,
    then ``os.replace``, so a reader never sees half a file and no temporary file is left.
    (When ``NUMBA_DENSE_TUNING`` is off, the default file of this host.) Returns the path.
    Raises OSError when the folder cannot be made or written."""
    if path is None:
        path, _ = host.tuning_choice(config.VECTOR_BYTES)
        if path is None:
            path = host.tuning_file(config.VECTOR_BYTES)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".dispatch-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return path


def _shown(name, value):
    if name.endswith("_MACS") and value > 0 and value & (value - 1) == 0:
        return "%d (2**%d)" % (value, value.bit_length() - 1)
    return str(value)


#: The note under ``table`` for a value marked ``*``.
TOP_NOTE = ("* at the top of the grid measured: the crossover may be higher; %s measures "
            "further")


def table(values, top=(), quick=False):
    """Lines: each dispatch value measured, as in force (with where it came from) -> as
    measured;
    the names in ``top`` (``*_TILED_MAX_MACS`` at the top of the grid measured) marked
    ``*``, with a note under the table (``quick``: the grid was ``--quick``'s)."""
    lines = ["%-26s %-28s    %s" % ("value", "in force (from)", "measured")]
    for name in config.TUNABLE:
        if name not in values:
            continue  # a thread count beyond this machine's cores: not measured
        old = getattr(config, name)
        source = config.SOURCES[name]
        source = "packaged" if source == "packaged" else "tuned"
        lines.append("%-26s %-28s -> %s%s%s" % (
            name, "%s (%s)" % (_shown(name, old), source), _shown(name, values[name]),
            " *" if name in top else "", "" if values[name] == old else "  (changed)"))
    if top:
        lines.append(TOP_NOTE % ("a fuller tune (without --quick)" if quick else
                                 "a grid of larger --batches and --widths"))
    return lines


def destination():
    """Where ``tune`` will write: ``(path, off)``, ``off`` True when ``NUMBA_DENSE_TUNING``
    turns the tuning off (the file is then this host's default one). Checked before anything
    is measured: a folder ``NUMBA_DENSE_TUNING`` names must exist; the default cache folder
    is made; either is test-written with a temporary file. Raises ValueError (one line
    naming the folder, where it came from and the way out) when it cannot be written."""
    path, named = host.tuning_choice(config.VECTOR_BYTES)
    off = path is None
    if off:
        path = host.tuning_file(config.VECTOR_BYTES)
    folder = os.path.dirname(path)
    way_out = "set %s=PATH to write the file elsewhere" % host.TUNING_ENV
    if named:
        origin = "%s=%s" % (host.TUNING_ENV, os.environ.get(host.TUNING_ENV))
        if os.path.isdir(path):
            raise ValueError("%s names a folder, not a file; name the file to write, e.g. "
                             "%s=%s" % (origin, host.TUNING_ENV,
                                        os.path.join(path, "dispatch.json")))
        if not os.path.isdir(folder):
            raise ValueError("%s: the folder %s does not exist; make it first, or %s"
                             % (origin, folder, way_out))
    else:
        base, origin = host.cache_base()
        if origin == "XDG_CACHE_HOME":
            origin = "XDG_CACHE_HOME=%s" % base
    try:
        if not named:
            os.makedirs(folder, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".dispatch-", suffix=".tmp")
        os.close(fd)
        os.unlink(temporary)
    except OSError as exc:
        raise ValueError("cannot write the tuning file's folder %s (from %s): %s; %s"
                         % (folder, origin, exc.strerror or exc, way_out)) from None
    return path, off


# ----------------------------------------------------------------------------- command line

def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError("expected finite seconds > 0, got %r" % text)
    return value


def _sizes(text):
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("expected comma-separated integers >= 1, got %r"
                                         % text)
    return values


def add_arguments(parser):
    """The ``tune`` command's options, on an argparse parser."""
    parser.add_argument("--quick", action="store_true",
                        help="a small grid (%d batch sizes x %d widths): well under a minute"
                             % tuple(len(g) for g in GRIDS["quick"]))
    parser.add_argument("--budget", type=_positive_seconds, metavar="SECONDS",
                        help="about how long the timings may take together, compilation "
                             "aside (default: %s s with --quick, else 20 ms per timing)"
                             % BUDGETS["quick"])
    parser.add_argument("--batches", type=_sizes, metavar="M,M",
                        help="the grid's batch sizes (default %s; --quick %s)"
                             % tuple(",".join(map(str, GRIDS[s][0])) for s in GRIDS))
    parser.add_argument("--widths", type=_sizes, metavar="N,N",
                        help="the grid's layer widths (default %s; --quick %s)"
                             % tuple(",".join(map(str, GRIDS[s][1])) for s in GRIDS))


def run(args, out=None):
    """Run the ``tune`` command of parsed ``args`` (``add_arguments``'): check the grid and
    where the file goes (``destination``) before measuring, measure, write the file, print
    the values old -> new and where they went. Returns 0; raises ValueError (one line) for
    a grid out of range or a destination that cannot be written."""
    out = out or sys.stdout
    size = "quick" if args.quick else "full"
    batches, widths = args.batches or GRIDS[size][0], args.widths or GRIDS[size][1]
    check_grid(batches, widths, args.budget)
    path, off = destination()
    budget = BUDGETS[size] if args.budget is None else args.budget
    print("tuning the dispatch on %s: %s (%s x %s x %s), %s; compiling first, the first "
          "time" % (host.cpu_model(), _plural(len(batches) * len(widths) ** 2, "shape"),
                    _plural(len(batches), "batch size"), len(widths),
                    _plural(len(widths), "width"),
                    "%d ms per timing" % (TARGET_SECONDS[1] * 1e3) if budget is None
                    else "about %g s of timings" % budget), file=out, flush=True)
    record = tune(quick=args.quick, budget=args.budget, batches=args.batches,
                  widths=args.widths)
    written = write_tuning(record, path)
    kinds = record["grid"]["kinds"]
    top = {_names(kind)[1] for kind in KINDS if kinds[kind]["tiled_at_top"]}
    for line in table(record["values"], top, args.quick):
        print(line, file=out)
    print("measured %s in %.1f s; wrote %s" % (
        _plural(len(record["grid"]["rows"]) // len(KINDS), "shape"), record["grid"]["seconds"],
        written), file=out)
    if off:
        print("%s=%s: new processes ignore this file until the variable is unset"
              % (host.TUNING_ENV, os.environ.get(host.TUNING_ENV)), file=out)
    else:
        print("new processes use these values (%s=off ignores the file; delete it to discard "
              "them)" % host.TUNING_ENV, file=out)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and status 2)."""

    def error(self, message):
        self.exit(2, "error: %s (see %s --help)\n" % (message, self.prog))


def main(argv=None, prog="python -m numba_dense.kernels tune"):
    """``python -m numba_dense.kernels tune``: parse ``argv`` and ``run``; returns the exit
    status (2 with one line on stderr when the file cannot be written)."""
    parser = _Parser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (OSError, ValueError) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
