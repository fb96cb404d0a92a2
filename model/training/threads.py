"""How many threads one network's epoch runs on (``fit``'s ``n_jobs``).

A network whose products all fit the register tiles trains its minibatch steps split between
threads (``kernels.train_epoch_parallel``) when its minibatch is large enough to gain
(``kernels.shard_plan``: at least two shards); every other network trains with the
one-thread epoch (``kernels.train_epoch``), its large products on BLAS threads
(``kernels.threads``). Whether a network splits depends on the network, the batch size and
the data alone, never on ``n_jobs`` or on the machine's load: the parameters a fit reaches
are the same on any number of threads, and the same for a fit that gets fewer cores in
one epoch because other processes took them.

``n_jobs``: None or -1 for the cores no other process is running on at the start of each
epoch (``kernels.threads.free_cores``: threads that wait on each other at every step must
not share a core with another process), or a count of threads. scikit-learn's meaning,
except that None means all free cores rather than one: numba-dense's results do not depend
on it. Either is the most threads a piece of an epoch takes: ``PieceThreads`` runs pieces
on one thread where their timings show it faster.
"""

import numbers
import threading
import time

import numpy as np

from ... import kernels
from ...kernels.loop import streaming_network
from ...kernels.threads import free_cores, largest_product, usable_cores
from ...kernels.errors import InvalidTypeError, InvalidValueError
from ..data.validation import plain


def check_jobs(value, name="n_jobs"):
    """``value`` as None (every free core) or a thread count >= 1, with scikit-learn's
    (joblib's) negative counts: -1 means None, -k (k >= 2) the usable cores + 1 - k, at
    least 1 (-2: all cores but one). One-line errors naming ``name`` for 0 and for a value
    that is not an int."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError("%s must be None, -1 or a thread count >= 1, got %s"
                               % (name, plain(value)))
    value = int(value)
    if value == -1:
        return None
    if value == 0:
        raise InvalidValueError("%s must be None, -1 or a thread count >= 1, got 0" % name)
    if value < 0:
        return max(usable_cores() + 1 + value, 1)
    return value


def splits(net, batch_size, sparse, dropout):
    """Whether ``net``'s minibatches of ``batch_size`` rows train split between threads:
    a dense X, no dropout, no category embeddings (``kernels.train_epoch_parallel`` has
    no lookup), not the streamed one-layer epoch, every product of a whole
    minibatch small enough for the register tiles (``config.*_TILED_MAX_MACS``, so that
    no product of a split step calls BLAS, whose threads the split's would compete with)
    and at least two shards (``kernels.shard_plan``)."""
    sizes = [int(n) for n in net.sizes]
    if (sparse or dropout or getattr(net, "embeddings", None) is not None
            or streaming_network(len(sizes) - 1, sizes[-1], int(net.loss_code))):
        return False
    config = kernels.config
    tiles = min(config.FORWARD_TILED_MAX_MACS, config.BACKPROP_TILED_MAX_MACS,
                config.GRADIENT_TILED_MAX_MACS)
    if largest_product(sizes, batch_size) > tiles:
        return False
    return kernels.shard_plan(sizes, batch_size)[0] >= 2


#: Steps of a split epoch between two choices of its threads (``in_pieces``): a process
#: that takes a core in the middle of an epoch holds back at most this many steps of
#: threads waiting for each other (on T3, about 25 ms on two cores). A choice, not a
#: measured crossover: each piece starts its threads anew, about 0.1 ms. A segment of the
#: source (65,536 rows in memory) ends a piece too: at batch 512 a piece is 128 steps.
PIECE_STEPS = 1024


def in_pieces(segments, batch_size):
    """The segments ``(X, Y, order, sample_weight)`` of an epoch (``sources``), each cut
    into pieces of ``PIECE_STEPS`` minibatches (a storage-order segment's rows given as an
    order), so that a split epoch chooses its threads again before each piece. The same
    minibatches in the same order: the parameters are those of the whole segments."""
    rows = PIECE_STEPS * int(batch_size)
    for X, Y, order, sample_weight in segments:
        n = len(order) if len(order) else X.shape[0]
        if n <= rows:
            yield X, Y, order, sample_weight
            continue
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            piece = order[start:stop] if len(order) else np.arange(start, stop, dtype=np.int64)
            yield X, Y, piece, sample_weight


_pool = threading.local()


def in_pool():
    """Mark the calling thread as one of a pool whose threads each run a fit (a search's):
    the pool fills the cores, so each of its fits splits its steps on no more threads than
    its own (``epoch_threads`` gives 1), whatever its ``n_jobs``."""
    _pool.member = True


_first_use = {"measured": False}
_first_use_lock = threading.Lock()


def _measured_once():
    """Measure ``config.SPLIT_MIN_MACS_<k>`` on first use. When nothing has measured them
    on this host (no tuning file holds them), the first split epoch that could take several
    threads measures them (``kernels.tuning.split_threads`` on its quick sizes: about half
    a second on two cores once the kernels are compiled) and keeps them in this host's
    tuning file, so that later processes read them: ``python -m numba_dense tune`` made
    cheap enough to run on first use. Not on a machine whose cores are busy before or after
    (the next process tries again), not when ``NUMBA_DENSE_TUNING`` is off, and at most
    once a process."""
    config = kernels.config
    if config.SOURCES.get("SPLIT_MIN_MACS_2") == "packaged" and not _first_use["measured"]:
        with _first_use_lock:
            if not _first_use["measured"]:
                _first_use["measured"] = True
                _measure_on_first_use(config)


def _measure_on_first_use(config):
    from ...kernels import host, tuning
    path, _ = host.tuning_choice(config.VECTOR_BYTES)
    if path is None or free_cores() < 2:
        return
    values, timings = tuning.split_threads(tuning.SPLIT_BATCHES["quick"])
    if values and all(value == tuning.NEVER_SPLIT for value in values.values()):
        # "never" is kept for good (no fit on this host would split again), and half a
        # second of measuring says it whenever the second core is slowed throughout: on
        # a quiet Zen 4 one of three first uses found no gain at any size (1.02x at
        # most), the other two 1.16-1.49x from some size on. So "never" needs a second
        # measurement's agreement; the lower crossover of the two is kept.
        again, more = tuning.split_threads(tuning.SPLIT_BATCHES["quick"])
        if again:
            values = {name: min(value, again.get(name, value))
                      for name, value in values.items()}
            timings = timings + more
    if not values or free_cores() < 2:
        return  # a process took a core while it measured: nothing kept, the next one tries
    for name, value in values.items():
        setattr(config, name, value)
        config.SOURCES[name] = "%s (measured on first use)" % path
    record = _tuning_record(config, tuning, path)
    record["values"].update(values)
    record["split"] = tuning.split_record(timings, on_first_use=True)
    try:
        tuning.write_tuning(record, path)
    except OSError:
        pass  # a read-only cache: this process keeps the values, the next one measures


def _tuning_record(config, tuning, path):
    """The tuning file at ``path`` when it is a valid one of this host (its values kept),
    else a new record of this host without values (``tuning.host_record``)."""
    try:
        return config.read_tuning(path)[0]
    except (OSError, ValueError):
        return {**tuning.host_record(), "values": {}}


def epoch_threads(n_jobs, net, batch_size):
    """The threads of a split epoch of ``net`` under ``n_jobs`` (checked by
    ``check_jobs``) now: the largest count k of ``config.SPLIT_COUNTS`` within the free
    cores (None) or ``n_jobs`` and the step's shards whose ``SPLIT_MIN_MACS_<k>`` (the
    host's crossover for k threads, ``_measured_once``) the step's forward multiply-adds
    reach; 1 when there is none, and on a thread of a pool (``in_pool``). A count above
    the usable cores counts as the usable cores: the split's threads wait on each other at
    every step, and two threads on one core would each wait out the other's time slice.
    The parameters do not depend on it."""
    if getattr(_pool, "member", False):
        return 1
    wanted = free_cores() if n_jobs is None else min(n_jobs, usable_cores())
    sizes = [int(n) for n in net.sizes]
    limit = min(wanted, kernels.shard_plan(sizes, batch_size)[0])
    if limit < 2:
        return 1
    _measured_once()
    step = batch_size * kernels.parallel.forward_macs_per_row(sizes)
    threads = 1
    for k in kernels.config.SPLIT_COUNTS:
        if k <= limit and step >= getattr(kernels.config, "SPLIT_MIN_MACS_%d" % k):
            threads = k
    return threads


#: Pieces that took less than this many seconds are not timed (``PieceThreads``): an
#: epoch's short last piece, or a small epoch, where the threads' start (about 0.1 ms) and
#: a moment's noise are much of the time. Seconds, not steps: a piece is at most
#: ``PIECE_STEPS`` steps and at most a segment's rows (``model.data.sources``, 65,536), so
#: at batch 512 a whole piece is 128 steps.
TIMED_MIN_SECONDS = 0.005
#: Timed pieces before the first trial of one thread, then between two trials of the
#: thread count not in use, at first and at most (``PieceThreads``): each trial that loses
#: doubles the wait, one that wins starts it again. On a quiet machine a trial of one
#: thread costs about a third of a piece (T3 on two cores: 10 ms); on a core held by
#: something else each piece before the first trial costs as much as 0.6 pieces.
RETRY_PIECES = (2, 16, 64)
#: A fit's pieces on k threads this much slower a step than its fastest on k (and one thread
#: never tried) make the next piece a trial of one thread.
SLOWER = 1.25
#: The pieces whose median is a thread count's seconds a step (``PieceThreads``): one slow
#: piece (a moment's noise) moves nothing, two do.
RECENT_PIECES = 3


class PieceThreads:
    """The threads of each piece of a fit's split epochs: ``epoch_threads``' count, unless
    the pieces' own timings show one thread stepping faster.

    The free-core count (``/proc/loadavg``) cannot see everything that takes a core: a
    hypervisor's other guests, or a process that is runnable only part of the time. Two
    threads that meet at every step then wait for the slower core, and a split step can run
    at half the speed of one thread (seen on a 2-core VM: 0.57-0.63x). So each piece's
    seconds a step are recorded (``took``): a thread count's time is the median of its
    last ``RECENT_PIECES`` timed pieces, and the pieces run on the count whose time is
    lower. One thread is first tried after two timed pieces (or at once when the pieces on
    k threads slow down by ``SLOWER``), and the count not in use again after 16, 32, 64,
    64 ... timed pieces (``RETRY_PIECES``); a trial starts that count's time afresh, so
    that the machine of now, not of before, decides. The parameters do not depend on any
    of it: a split epoch's are the same on any number of threads
    (``kernels.train_epoch_parallel``)."""

    def __init__(self, n_jobs, net, batch_size):
        self.n_jobs, self.net, self.batch_size = n_jobs, net, batch_size
        self.recent = {}    # threads -> seconds a step of its last timed pieces
        self.fastest = {}   # threads -> its fastest seconds a step in this fit
        self.waited = 0     # timed pieces since the last trial
        self.retry = RETRY_PIECES[0]
        self.trial = None   # the count tried in the piece under way, if it is a trial

    def seconds(self, threads):
        """Seconds a step of ``threads`` threads now: the median of its recent pieces."""
        return float(np.median(self.recent[threads]))

    def __call__(self):
        """The threads of the next piece."""
        self.trial = None
        k = epoch_threads(self.n_jobs, self.net, self.batch_size)
        if k == 1 or k not in self.recent:
            return k
        if 1 in self.recent:
            best = 1 if self.seconds(1) < self.seconds(k) else k
            if self.waited >= self.retry:
                self.trial = k if best == 1 else 1
        else:
            best = k
            if self.waited >= self.retry or self.seconds(k) > SLOWER * self.fastest[k]:
                self.trial = 1
        return best if self.trial is None else self.trial

    def took(self, threads, steps, seconds):
        """Record a piece of ``steps`` steps on ``threads`` threads that took ``seconds``."""
        if seconds < TIMED_MIN_SECONDS or steps < 1:
            return
        rate = seconds / steps
        self.fastest[threads] = min(rate, self.fastest.get(threads, rate))
        if self.trial is None:
            self.recent[threads] = (self.recent.get(threads, []) + [rate])[-RECENT_PIECES:]
            self.waited += 1
            return
        self.recent[threads] = [rate]  # a trial: this count's time is today's
        won = all(rate < self.seconds(k) for k in self.recent if k != threads)
        # A trial that won (the machine changed) makes the next one come soon; one that
        # lost waits twice as long.
        first, most = RETRY_PIECES[1:]
        self.retry = first if won else min(max(2 * self.retry, first), most)
        self.waited = 0

    def timed(self, run, steps):
        """``run(threads)`` for the next piece of ``steps`` steps, timed; its result."""
        threads = self()
        start = time.perf_counter()
        result = run(threads)
        self.took(threads, steps, time.perf_counter() - start)
        return result
