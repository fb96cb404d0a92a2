"""Where training rows come from: arrays in memory, or .npy files and memmaps streamed in chunks.

A *source* hands the trainer ready-to-use blocks: C-contiguous inputs in the network's
dtype and targets already turned into the matrix the cost needs (one-hot rows for integer
class labels). Two kinds share one interface:

- ``ArraySource``: arrays in memory, checked and converted once per ``fit``;
- ``StreamSource``: an ``np.memmap`` or a path to a ``.npy`` file (opened with
  ``mmap_mode="r"``), read ``chunk_rows`` rows at a time into one buffer that is reused.
  Each chunk is checked and converted when it is read; the pages of the file it came from
  are handed back to the OS right after, so resident memory stays at about one chunk
  however large the file is.

Both produce an epoch as a sequence of *segments* ``(X, Y, order)`` for
``kernels.train_epoch``. In memory every segment but the last holds a whole number of
minibatches, so cutting an epoch into segments changes nothing in the arithmetic; a
stream's chunks are also whole minibatches except the file's last, whose short final
batch falls wherever the shuffled chunk order puts it.
"""

import copy
import mmap
import os
import shutil
import tempfile
import zipfile
import zlib
from typing import Protocol

import numpy as np

from ...kernels.errors import FolderGivenError, InvalidValueError, MissingFileError
from ...kernels.records import NO_WEIGHTS
from .paths import default_file_mode
from .validation import check_finite, targets_matrix
from ..training.signals import sigint_deferred

#: Bytes of converted inputs per streamed chunk (the resident working set of streaming).
CHUNK_BYTES = 32 << 20

#: Rows per compiled call when evaluating: bounds the workspace, not the data.
EVAL_BATCH = 4096

#: Rows per segment of an in-memory epoch: how often the progress display hears news.
SEGMENT_ROWS = 1 << 16


def is_streamed(X):
    """True for what ``fit`` streams: a path (str or os.PathLike) or an ``np.memmap``."""
    return isinstance(X, (str, os.PathLike, np.memmap))


def check_input_file(path, name):
    """Raise a one-line error unless ``path`` is an existing regular file."""
    if os.path.isdir(path):
        raise FolderGivenError("%s: %r is a folder, not a file" % (name, path))
    if not os.path.isfile(path):
        raise MissingFileError("%s: no such file: %r" % (name, path))


def _npy_problem(path, exc):
    """What went wrong reading a .npy file, in words (never NumPy's allow_pickle advice)."""
    with open(path, "rb") as f:
        head = f.read(6)
    if head != b"\x93NUMPY":
        return ("not a .npy file (it does not start with NumPy's magic bytes: a text or "
                "CSV file renamed .npy?)")
    text = str(exc)
    if "allow_pickle" in text or "Object arrays" in text or "Python objects" in text:
        return "it holds pickled Python objects, which numba-dense never loads"
    if "mmap length" in text or "cannot reshape" in text or isinstance(exc, EOFError):
        return "the file is truncated (shorter than its header says)"
    return text


def open_array(a, name):
    """``a`` if it is an array; a path is opened as a read-only memmap of a .npy file.

    An .npz archive is refused with a one-line error naming its arrays (which one would be
    X?): pass the array itself, ``np.load(path)["X"]``."""
    if not isinstance(a, (str, os.PathLike)):
        return a
    path = os.fspath(a)
    check_input_file(path, name)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidValueError("%s: cannot read %r as a .npy file: %s"
                                % (name, path, _npy_problem(path, exc))) from None
    if not isinstance(arr, np.ndarray):  # an .npz archive: several arrays, which one?
        keys = list(arr.files)
        arr.close()
        key = name.split()[-1] if name.split()[-1] in keys else (keys[0] if keys else "X")
        raise InvalidValueError("%s: %r is an .npz archive (arrays: %s), not one array; pass the "
                                "array itself, e.g. np.load(%r)[%r], or save it as a .npy file "
                                "to stream it" % (name, path, ", ".join(keys) or "none", path, key))
    return arr


def read_npz(path, name):
    """{name: array} of every array in an .npz file, or a one-line error naming the file."""
    path = os.fspath(path)
    check_input_file(path, name)
    with open(path, "rb") as f:
        head = f.read(6)
    why = None
    if head == b"\x93NUMPY":
        why = "it is a single .npy array, not an .npz archive"
    elif not head.startswith(b"PK"):
        why = "not an .npz file (no zip signature: a text file renamed .npz?)"
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (zipfile.BadZipFile, EOFError, zlib.error):
            why = "not a valid .npz (zip) archive: truncated or corrupt"
        except (ValueError, OSError, KeyError) as exc:
            why = str(exc)
            if "allow_pickle" in why or "Object arrays" in why:
                why = "it holds pickled Python objects, which numba-dense never loads"
    raise InvalidValueError("%s: cannot read %r as .npz: %s" % (name, path, why))


def release_pages(arr, start, stop):
    """Tell the OS this process is done with rows [start, stop) of a memmap (``MADV_DONTNEED``).

    The data stays in the page cache and in the file; only this process's mapping of it
    goes, so those pages stop counting as resident. Copy-on-write memmaps (mode "c") are
    left alone: dropping their pages would drop the user's private changes.
    """
    mm = getattr(arr, "_mmap", None)
    if mm is None or getattr(arr, "mode", "r") == "c" or not hasattr(mm, "madvise"):
        return
    base = np.frombuffer(mm, np.uint8).ctypes.data
    lo = arr.ctypes.data - base + start * arr.strides[0]
    hi = lo + (stop - start) * arr.strides[0]
    lo -= lo % mmap.PAGESIZE
    hi = min(len(mm), hi + (-hi) % mmap.PAGESIZE)
    if hi > lo:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


#: Rows of each block of ``held_out_rows``' draw: fixed, so that the draw depends on the
#: rows, n_val and the seed alone, not on how the rows are held or streamed.
DRAW_BLOCK_ROWS = 1 << 16


def held_out_rows(n_rows, n_val, rng):
    """The sorted int64 positions of ``n_val`` of ``n_rows`` rows drawn at random by the
    ``np.random.Generator`` rng (every set of n_val rows as likely): block by block of
    ``DRAW_BLOCK_ROWS`` rows, each block's share from the hypergeometric distribution,
    then its rows. The same rows whether the source is in memory or streamed in chunks of
    any size; memory is the n_val positions."""
    held = []
    left, rows_left = n_val, n_rows
    for a in range(0, n_rows, DRAW_BLOCK_ROWS):
        size = min(DRAW_BLOCK_ROWS, n_rows - a)
        # the last block holds every row left: its share is what is left to draw
        k = left if size == rows_left else int(rng.hypergeometric(left, rows_left - left,
                                                                  size)) if left else 0
        held.append(a + np.sort(rng.choice(size, k, replace=False)).astype(np.int64))
        left, rows_left = left - k, rows_left - size
    return np.concatenate(held) if held else np.empty(0, np.int64)


class Source(Protocol):
    """What ``fit`` trains on and evaluates: ``ArraySource`` or ``StreamSource``.

    ``n_rows``; ``split(n_val)``: (the first n_rows - n_val rows, the last n_val) as two
    sources; ``split_random(n_val, rng)``: (the rest, n_val rows drawn at random by the
    ``np.random.Generator`` rng) as two sources; ``target_blocks()``: the targets in
    blocks of rows; ``scaled(scaling)``: the same rows with standardized targets;
    ``segments(rng, shuffle, batch_size)``: one epoch as ``(X, Y, order, sample_weight)``
    for ``kernels.train_epoch``;
    ``blocks(rows)``: ``(X, Y)`` blocks in storage order. ``check_values()`` runs a
    check of X's values that ``fit`` left to the first epoch (``ArraySource``), and
    ``values_seen()`` drops it once an epoch has trained on every row without a NaN or
    inf; both do nothing where every value was checked as it was read.
    """

    n_rows: int

    def split(self, n_val): ...

    def split_random(self, n_val, rng): ...

    def target_blocks(self): ...

    def scaled(self, scaling): ...

    def segments(self, rng, shuffle, batch_size): ...

    def blocks(self, rows): ...

    def check_values(self):
        """Raise ``InvalidValueError`` naming a NaN or inf of X left unchecked."""

    def values_seen(self):
        """An epoch over every row stayed finite: X's values need no check."""


class ArraySource(Source):
    """Rows held in memory: X (N, n_in) and targets (N, n_out), already converted, and
    optionally ``sample_weight`` (N,) float64, one weight >= 0 per row (None: all 1; see
    ``kernels.Batches``). ``values_check``: None when X's values are checked, else the
    ``validation.ValuesCheck`` that ``check_values`` runs (``fit`` leaves it to the first
    epoch where that epoch finds a NaN or inf itself). ``rows``: None for every row of X,
    or the sorted int64 indices of the rows of X this source holds (``split_random``'s
    training rows: X is not copied, the epochs' orders name those rows)."""

    def __init__(self, X, Y, sample_weight=None, values_check=None, rows=None):
        self.X, self.Y = X, Y
        self.rows = rows
        self.n_rows = X.shape[0] if rows is None else len(rows)
        self.sample_weight = (NO_WEIGHTS if sample_weight is None
                              else np.ascontiguousarray(sample_weight, np.float64))
        self.values_check = values_check

    def check_values(self):
        check, self.values_check = self.values_check, None
        if check is not None:
            check(self.X)

    def values_seen(self):
        self.values_check = None

    def _rows(self, a, b):
        if self.rows is not None:
            return ArraySource(self.X, self.Y, self._weights(), self.values_check,
                               self.rows[a:b])
        weights = self.sample_weight[a:b] if len(self.sample_weight) else None
        check = self.values_check and self.values_check.rows_from(a)
        return ArraySource(self.X[a:b], self.Y[a:b], weights, check)

    def _weights(self):
        return self.sample_weight if len(self.sample_weight) else None

    def split(self, n_val):
        """(first N - n_val rows, last n_val rows) as two sources, without copying."""
        cut = self.n_rows - n_val
        return self._rows(0, cut), self._rows(cut, self.n_rows)

    def split_random(self, n_val, rng):
        """(the other rows, n_val rows drawn at random by ``rng``) as two sources: the
        training rows as indices into X (``rows``, nothing copied), the held-out rows
        copied. X's values are checked first, so that an error names X's row."""
        self.check_values()
        held = np.zeros(self.n_rows, bool)
        held[held_out_rows(self.n_rows, n_val, rng)] = True
        own = np.arange(self.n_rows, dtype=np.int64) if self.rows is None else self.rows
        val = own[held]
        weights = self.sample_weight[val] if len(self.sample_weight) else None
        return (ArraySource(self.X, self.Y, self._weights(), None, own[~held]),
                ArraySource(self.X[val], self.Y[val], weights))

    def target_blocks(self):
        """The targets, as blocks of rows (for their statistics)."""
        yield self.Y if self.rows is None else self.Y[self.rows]

    def scaled(self, scaling):
        """The same rows with targets standardized by a ``targets.TargetScaling``."""
        return ArraySource(self.X, scaling.standardize(self.Y), self._weights(),
                           self.values_check, self.rows)

    def segments(self, rng, shuffle, batch_size):
        """One epoch: a permutation from ``rng`` when ``shuffle``, cut into segments
        ``(X, Y, order, sample_weight)`` (the weights of X's rows; empty for all 1)."""
        step = max(batch_size, SEGMENT_ROWS // batch_size * batch_size)
        w = self.sample_weight
        if self.rows is not None:  # orders name the source's rows of X
            order = self.rows[rng.permutation(self.n_rows)] if shuffle else self.rows
            for a in range(0, self.n_rows, step):
                yield self.X, self.Y, order[a:a + step], w
        elif shuffle:
            order = rng.permutation(self.n_rows)
            for a in range(0, self.n_rows, step):
                yield self.X, self.Y, order[a:a + step], w
        else:
            empty = np.empty(0, np.int64)
            for a in range(0, self.n_rows, step):
                yield self.X[a:a + step], self.Y[a:a + step], empty, w[a:a + step]

    def blocks(self, rows):
        """(X, Y) blocks of at most ``rows`` rows, in storage order (for evaluation)."""
        for a in range(0, self.n_rows, rows):
            if self.rows is None:
                yield self.X[a:a + rows], self.Y[a:a + rows]
            else:
                index = self.rows[a:a + rows]
                yield self.X[index], self.Y[index]


class StreamSource(Source):
    """Rows read from a memmap in chunks; ``targets`` may be a memmap or an array."""

    def __init__(self, X, y, names, targets, chunk_rows, start=0, stop=None, codes=None):
        """``names``: (X's, y's) for messages; ``targets``: (dtype, n_outputs, kind), what
        ``validation.targets_matrix`` makes of each chunk's targets; rows ``start:stop``;
        ``codes``: the network's ``CategoryEmbeddings`` (each chunk's codes checked, its
        rows named as in the file), or None."""
        self.X, self.y = X, y
        self.codes = codes
        self.names = tuple(names)
        self.dtype, self.n_outputs, self.kind = targets
        self.start = start
        self.stop = X.shape[0] if stop is None else stop
        self.n_rows = self.stop - self.start
        self.chunk_rows = chunk_rows
        self.scaling = None  # a targets.TargetScaling applied to each chunk's targets
        self._xbuf = None
        # split_random's rows: None for every row of start:stop, else {chunk start: the
        # sorted indices in that chunk of the held-out rows} and whether this source holds
        # those rows or the others
        self.held, self.holds = None, False

    def split(self, n_val):
        cut = self.stop - n_val
        args = (self.X, self.y, self.names, (self.dtype, self.n_outputs, self.kind),
                self.chunk_rows)
        return (StreamSource(*args, self.start, cut, self.codes),
                StreamSource(*args, cut, self.stop, self.codes))

    def split_random(self, n_val, rng):
        """(the other rows, n_val rows of start:stop drawn at random by ``rng``): two
        sources over the same file, each reading every chunk and keeping its own rows. The
        rows are ``held_out_rows``' (those an ``ArraySource`` of the same rows holds out,
        whatever the chunks); memory is their positions."""
        rows = held_out_rows(self.n_rows, n_val, rng)
        held = {}
        for a, b in self._chunks():
            lo, hi = np.searchsorted(rows, [a - self.start, b - self.start])
            held[a] = rows[lo:hi] - (a - self.start)
        parts = []
        for holds, n in ((False, self.n_rows - n_val), (True, n_val)):
            part = copy.copy(self)
            part.held, part.holds, part.n_rows, part._xbuf = held, holds, n, None
            parts.append(part)
        return tuple(parts)

    def _own(self, a, b):
        """The rows of chunk [a, b) this source holds, as indices into the chunk (None:
        all of them)."""
        if self.held is None:
            return None
        if self.holds:
            return self.held[a]
        mine = np.ones(b - a, bool)
        mine[self.held[a]] = False
        return np.flatnonzero(mine)

    def _targets(self, a, b):
        return targets_matrix(np.asarray(self.y[a:b]), self.names[1], self.dtype,
                              self.n_outputs, self.kind, first_row=a)

    def target_blocks(self):
        """The targets chunk by chunk, checked (the inputs are not read)."""
        for a, b in self._chunks():
            own = self._own(a, b)
            yield self._targets(a, b) if own is None else self._targets(a, b)[own]

    def scaled(self, scaling):
        """The same rows with targets standardized by a ``targets.TargetScaling``."""
        twin = copy.copy(self)
        twin.scaling, twin._xbuf = scaling, None
        return twin

    def _read(self, a, b):
        """Rows [a, b) of the file, converted and checked; X lands in the reused buffer."""
        if self._xbuf is None:
            self._xbuf = np.empty((self.chunk_rows, self.X.shape[1]), self.dtype)
        Xc = read_rows(self.X, a, b, self._xbuf, self.names[0], self.codes)
        Yc = self._targets(a, b)
        if self.scaling is not None:
            Yc = self.scaling.standardize(Yc)
        if not Yc.flags.writeable:
            # A view of the read-only memmap: Numba would compile the epoch kernel again
            # for read-only targets (tens of MB of compiler memory mid-run); copy the chunk.
            Yc = Yc.copy()
        release_pages(self.y, a, b)
        return Xc, Yc

    def _chunks(self):
        return [(a, min(a + self.chunk_rows, self.stop))
                for a in range(self.start, self.stop, self.chunk_rows)]

    def segments(self, rng, shuffle, batch_size):
        """One epoch: chunks in an order from ``rng``, rows within each chunk shuffled too."""
        chunks = self._chunks()
        if shuffle:
            chunks = [chunks[i] for i in rng.permutation(len(chunks))]
        empty = np.empty(0, np.int64)
        for a, b in chunks:
            own = self._own(a, b)
            if own is not None and len(own) == 0:
                continue  # an empty order would mean every row of the chunk
            Xc, Yc = self._read(a, b)
            if own is None:
                yield Xc, Yc, rng.permutation(b - a) if shuffle else empty, NO_WEIGHTS
            else:
                yield Xc, Yc, own[rng.permutation(len(own))] if shuffle else own, NO_WEIGHTS

    def blocks(self, rows=None):
        for a, b in self._chunks():
            own = self._own(a, b)
            if own is None:
                yield self._read(a, b)
            elif len(own):
                Xc, Yc = self._read(a, b)
                yield Xc[own], Yc[own]


def read_rows(X, a, b, buf, name, codes=None):
    """Rows [a, b) of memmap X converted into ``buf[:b - a]`` and checked (finite; with
    ``codes``, a network's ``CategoryEmbeddings``, its category codes too, rows named as in
    the file); pages released."""
    Xc = buf[:b - a]
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(Xc, X[a:b], casting="unsafe")
    check_finite(Xc, name, first_row=a, original_dtype=X.dtype)
    if codes is not None:
        codes.check_codes(Xc, name, first_row=a)
    release_pages(X, a, b)
    return Xc


def feature_chunks(X, name, dtype, chunk_rows, codes=None):
    """(a, b, rows [a, b) of X converted to dtype and checked as ``read_rows`` checks them)
    for a whole memmap, one buffer reused."""
    buf = np.empty((min(chunk_rows, X.shape[0]), X.shape[1]), dtype)
    for a in range(0, X.shape[0], chunk_rows):
        b = min(a + chunk_rows, X.shape[0])
        yield a, b, read_rows(X, a, b, buf, name, codes)


def chunk_rows_for(n_features, dtype, batch_size, chunk_rows=None):
    """Rows per streamed chunk: ``chunk_rows`` or about CHUNK_BYTES, a multiple of batch_size."""
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // (n_features * np.dtype(dtype).itemsize))
    return max(batch_size, chunk_rows // batch_size * batch_size)


class NpyWriter:
    """A .npy file written block by block and renamed into place by ``commit`` (so a
    reader never sees half a file), with memory at one block whatever its size.

    ``n_columns`` None makes a 1-D array. With ``rows`` known in advance the header comes
    first and the blocks go straight after it (``commit`` checks the count); without, the
    blocks go to a raw temporary file and ``commit`` writes NumPy's header, then copies
    them over. ``discard`` removes what was written."""

    def __init__(self, path, dtype, n_columns, rows=None):
        self.path, self.dtype, self.n_columns = path, np.dtype(dtype), n_columns
        self.expected, self.rows, self.tmp = rows, 0, None
        folder = os.path.dirname(os.path.abspath(path))
        suffix = ".raw" if rows is None else ".npy"
        with sigint_deferred():  # a Ctrl-C in between would leave a file nothing removes
            fd, self.raw = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
            os.fchmod(fd, default_file_mode())
            self.f = os.fdopen(fd, "wb")
        if rows is not None:
            write_npy_header(self.f, self.dtype, self._shape(rows))

    def _shape(self, rows):
        return (rows,) if self.n_columns is None else (rows, self.n_columns)

    def append(self, block):
        self.f.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.rows += block.shape[0]

    def commit(self):
        """Rename the file into place (a ``ValueError`` if fewer or more rows than announced
        were appended: nothing is renamed)."""
        self.f.close()
        if self.expected is not None:
            if self.rows != self.expected:
                raise InvalidValueError("%s: %d rows written where %d were announced"
                                        % (self.path, self.rows, self.expected))
            os.replace(self.raw, self.path)
            self.raw = None
            return
        with sigint_deferred():  # self.tmp is set before a Ctrl-C can land (discard)
            fd, self.tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(self.path)),
                                            prefix=".tmp-", suffix=".npy")
        os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as out, open(self.raw, "rb") as raw:
            write_npy_header(out, self.dtype, self._shape(self.rows))
            shutil.copyfileobj(raw, out, 1 << 22)
        os.replace(self.tmp, self.path)
        os.unlink(self.raw)
        self.raw = self.tmp = None

    def discard(self):
        self.f.close()
        for path in (self.raw, self.tmp):
            if path and os.path.exists(path):
                os.unlink(path)


def write_npy_header(f, dtype, shape):
    """The header of a C-order .npy file of ``dtype`` and ``shape``, by NumPy's own writer."""
    from numpy.lib import format as npy
    npy.write_array_header_1_0(f, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                   "fortran_order": False, "shape": tuple(shape)})
