"""Where Numba keeps the kernels' compiled code: decided once, before any kernel is defined.

Every kernel is ``@njit(cache=CACHE)``. Numba looks for a cache folder when a function
is *defined* (at import), in this order: ``NUMBA_CACHE_DIR``, the ``__pycache__`` folder
beside the source, then the user-wide ``~/.cache/numba`` (``$XDG_CACHE_HOME``); when none
of them is writable, ``cache=True`` makes the import fail with ``RuntimeError: cannot
cache function ...`` (a package installed read-only for a user whose home is read-only:
containers, shared clusters). So before any kernel is defined:

- when Numba finds a writable folder by itself, nothing changes and nothing is printed;
- else, when the user has not set ``NUMBA_CACHE_DIR``, the cache goes to a folder of this
  user under ``tempfile.gettempdir()`` (``NUMBA_CACHE_DIR`` is set to it, so the user's
  own cached functions and child processes find it too), with one line on stderr;
- when even that fails (or ``NUMBA_CACHE_DIR`` names a folder that cannot be written),
  the kernels run without a cache (``CACHE`` is False: every process compiles them
  afresh), again with one line on stderr.

Then, when dispatch values tuned on this CPU are in force (``kernels.config``), the cache
moves to a folder of their own (``_separate_tuned``). The reason: Numba freezes module
globals such as ``FORWARD_LOOP_MAX_OUTPUTS`` into the machine code as constants, and its
cache index is keyed by the function's own source file, bytecode and closure only, not by
the globals it read. Code compiled with the packaged values would be loaded, unchanged, by
a process that has tuned values (the tuning ignored), and the other way round (a tuning
file discarded, its crossovers still compiled in). So the folder is named after a
fingerprint of the values (``numba_dense-tuned-<hash>``): other values, another folder;
the packaged values keep the usual cache. It is a subfolder of ``NUMBA_CACHE_DIR`` when
the user set one, else of ``~/.cache/numba_dense`` (``$XDG_CACHE_HOME``).

Every kernel is defined with this module's ``njit`` (Numba's, plus one change): its cache
files are written so that processes compiling at the same time cannot mix them up
(``KeyedCacheFile``). Numba numbers a function's data files in the order they are saved,
choosing the next free number from the index file it has just read; two processes that
save different signatures of one function at once (the ranks of an MPI run on an empty
cache, the test suite's warm-up processes, a first run and its compile helper) can both
take number N, and then the index sends one signature to the other's code. Numba adds that
code under its own signature, so every later process that loads it fails to type its
callers ("Invalid use of type(CPUDispatcher(<function shares_memory ...>)) with
parameters ...") until the cache is deleted.
"""

import hashlib
import os
import sys
import tempfile

import numba

try:
    from numba.core.caching import FunctionCache, IndexDataCacheFile
except ImportError:  # pragma: no cover - a Numba without this layout keeps its own files
    FunctionCache = IndexDataCacheFile = None

#: Whether the kernels are compiled with ``cache=True`` (see the module's docstring).
CACHE = True
#: Compiler options of the kernels that run once a layer or a row of every minibatch and
#: neither allocate an array nor keep one past their return: no reference counting
#: (Numba's ``_nrt=False``). Their arrays are borrowed from a caller that holds them for
#: the whole call, yet every row view and every array argument bound in them cost an
#: atomic increment and decrement of a reference count, which were about 40% of a
#: 10-32-1 network's minibatch step on an AMD EPYC Zen 5 (gdb stacks of the running
#: epoch). A function compiled so fails to compile if it allocates.
BORROWED = {"_nrt": False}
#: The folder the cache was moved to, when it was (None: wherever Numba chose).
FALLBACK_DIR = None
#: The cache folder of code compiled with tuned dispatch values (None: packaged values).
TUNED_DIR = None
#: The name of such a folder is this and the values' fingerprint.
TUNED_PREFIX = "numba_dense-tuned-"
#: Set in the environment when the cache moved for tuned values: the ``NUMBA_CACHE_DIR``
#: there was before ("" for none). A child process inherits both variables and starts from
#: that one, since its own values may differ (``NUMBA_DENSE_TUNING=off`` in it, say).
BASE_ENV = "NUMBA_DENSE_CACHE_BASE"


if IndexDataCacheFile is not None:
    class KeyedCacheFile(IndexDataCacheFile):
        """Numba's index and data files of one function, safe for concurrent processes.

        A data file is named after a digest of its key (the signature, the CPU and the
        function's bytecode), prefixed by a digest of the bytecode alone, instead of a
        number, and holds the key beside the compiled code; a load whose file holds another
        key (an older cache's numbered file, a digest collision, a damaged file) is a miss,
        so the function is compiled again. Two processes saving one key at once write the
        same name (each by an atomic rename); saving two keys at once can lose one of them
        from the index, which costs a compile later and nothing else. An index that cannot
        be unpickled (emptied by a crash on some file systems) counts as empty; one that
        cannot be read (too many open files) is a miss and is not written over. The first
        save into an empty index (a new source, an edited function) deletes the function's
        files of other bytecode and Numba's numbered ones, which it never reads.
        """

        def __init__(self, cache_path, filename_base, source_stamp):
            super().__init__(cache_path, filename_base, source_stamp)
            self._base = filename_base

        def save(self, key, data):
            code = _digest(key[2])[:8]
            name = "%s.%s.%s.nbc" % (self._base, code, _digest(key)[:12])
            self._save_data(name, (key, data))  # the file first: the index never leads
            overloads = self._load_index()       # read late: less time to lose one
            if not overloads:
                self._remove_other_code(code)
            if overloads.get(key) != name:
                overloads[key] = name
                self._save_index(overloads)

        def load(self, key):
            try:
                name = self._load_index().get(key)
            except OSError:
                return None
            if name is None:
                return None
            try:
                stored = self._load_data(name)
            except Exception:  # noqa: BLE001 - removed under us, half a file, an old one
                return None
            if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == key:
                return stored[1]
            return None

        def _load_index(self):
            try:
                return super()._load_index()
            except OSError:
                raise
            except Exception:  # noqa: BLE001 - truncated, emptied, not a pickle: no entries
                return {}

        def _remove_other_code(self, code):
            prefix = self._base + "."
            try:
                names = os.listdir(self._cache_path)
            except OSError:
                return
            for name in names:
                if not (name.startswith(prefix) and name.endswith(".nbc")):
                    continue
                parts = name[len(prefix):].split(".")
                if (len(parts) == 3 and parts[0] != code
                        or len(parts) == 2 and parts[0].isdigit()):  # Numba's numbering
                    try:
                        os.remove(os.path.join(self._cache_path, name))
                    except OSError:
                        pass

    class KeyedFunctionCache(FunctionCache):
        """Numba's cache of one function, with ``KeyedCacheFile``s, and a save that cannot
        be written (a full disk or quota, a folder made read-only or deleted meanwhile)
        skipped with one line on stderr: the cache only saves time, so it never stops a
        run."""

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except OSError as error:
                _unsaved(self._cache_path, error)


def _digest(value):
    return hashlib.sha256(repr(value).encode()).hexdigest()


_UNSAVED = []


def _unsaved(folder, error):
    """Say once a process that compiled code could not be kept in ``folder``."""
    if not _UNSAVED:
        _UNSAVED.append(folder)
        print("kernels: cannot write Numba's cache in %s (%s); compiled kernels are not "
              "kept for later runs" % (folder, error.strerror or error), file=sys.stderr)


def njit(function=None, **options):
    """``numba.njit``, with ``cache=True`` kept in ``KeyedCacheFile``s (the module's
    docstring says why); every kernel of the package is defined with it, as ``@njit`` or
    ``@njit(options)`` (no signatures). A Numba whose cache is laid out otherwise keeps
    its own files."""
    if function is not None and not callable(function):
        raise TypeError("kernels._cache.njit takes a function and keyword options, "
                        "not %r" % (function,))
    decorate = numba.njit(**options)

    def keyed(function):
        dispatcher = decorate(function)
        cache = getattr(dispatcher, "_cache", None)
        if (options.get("cache") and FunctionCache is not None
                and type(cache) is FunctionCache):
            old = cache._cache_file
            # the same object, its class narrowed to add a guard to one method (no state)
            cache.__class__ = KeyedFunctionCache
            cache._cache_file = KeyedCacheFile(
                cache_path=old._cache_path, filename_base=old._index_name[:-len(".nbi")],
                source_stamp=old._source_stamp)
        return dispatcher

    return keyed(function) if function is not None else keyed


def _probe():
    """A function of this package's folder: Numba's cache locators are asked about it."""


def _cache_works():
    """True when Numba can cache a function of this package as things stand now.

    Asks Numba itself (``FunctionCache`` is what ``cache=True`` builds at definition); a
    Numba that lays this out differently is taken to cache as it always did.
    """
    try:
        from numba.core.caching import FunctionCache
    except ImportError:  # pragma: no cover - a Numba without this layout
        return True
    try:
        FunctionCache(_probe)
    except Exception:  # RuntimeError: cannot cache function ...: no locator available
        return False
    return True


def _private_folder():
    """A folder of this user's under the temporary folder, made if need be; else None.

    The folder's name is fixed so that later processes find the cache. Numba's cache
    files are pickles (loading one runs code), so a folder someone else owns or can write
    into is never used: a fresh folder of this process's is made instead.
    """
    try:
        base = tempfile.gettempdir()
    except OSError:  # no usable temporary folder at all
        return None
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(base, "numba-dense-cache" + ("-%d" % uid if uid is not None else ""))
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
        safe = (not os.path.islink(path) and os.path.isdir(path)
                and (uid is None or (st.st_uid == uid and not st.st_mode & 0o022)))
        if safe:
            return path
    except OSError:
        pass
    try:
        return tempfile.mkdtemp(prefix="numba-dense-cache-")
    except OSError:
        return None


def _set_cache_dir(path):
    """Point Numba's cache at ``path`` (None: unset), in the environment and in its config."""
    from numba.core import config
    if path is None:
        os.environ.pop("NUMBA_CACHE_DIR", None)
    else:
        os.environ["NUMBA_CACHE_DIR"] = path
    config.CACHE_DIR = path or ""


def _choose(stderr=None):
    """Decide ``CACHE`` and ``FALLBACK_DIR``; print one line when the cache moves or is off."""
    global CACHE, FALLBACK_DIR
    stderr = stderr or sys.stderr
    if _cache_works():
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    if not user_dir:
        folder = _private_folder()
        if folder is not None:
            _set_cache_dir(folder)
            if _cache_works():
                FALLBACK_DIR = folder
                print("kernels: cannot write Numba's cache in %s nor in the home folder; "
                      "caching compiled kernels in %s instead (set NUMBA_CACHE_DIR "
                      "to choose the folder)" % (here, folder), file=stderr)
                return
            _set_cache_dir(None)
        where = "%s, the home folder or %s" % (here, folder or "a temporary folder")
    else:
        where = "NUMBA_CACHE_DIR=%s, %s or the home folder" % (user_dir, here)
    CACHE = False
    print("kernels: no writable folder for Numba's cache (%s); compiling without a cache, "
          "so every process compiles the kernels afresh (set NUMBA_CACHE_DIR "
          "to a writable folder)" % where, file=stderr)


def _inherited_base():
    """Undo a parent process's move to a tuned folder (see ``BASE_ENV``)."""
    base = os.environ.pop(BASE_ENV, None)
    moved = os.environ.get("NUMBA_CACHE_DIR", "")
    if base is not None and os.path.basename(moved).startswith(TUNED_PREFIX):
        _set_cache_dir(base or None)


def _separate_tuned(stderr=None):
    """Move the cache to the tuned values' own folder when tuned values are in force (see
    the module's docstring); one stderr line, and no cache, when no such folder can be
    written."""
    global CACHE, TUNED_DIR
    from . import config
    from .host import cache_folder
    fingerprint = config.tuned_fingerprint()
    if fingerprint is None or not CACHE:
        return
    name = TUNED_PREFIX + fingerprint
    base = os.environ.get("NUMBA_CACHE_DIR") or ""  # the user's, or _choose's fallback
    candidates = [os.path.join(base or cache_folder(), name)]
    for folder in candidates:
        if folder is None:
            continue
        _set_cache_dir(folder)
        if _cache_works():
            TUNED_DIR = folder
            os.environ[BASE_ENV] = base
            return
        if not base and len(candidates) == 1:  # then a folder of this user's under /tmp
            private = _private_folder()
            candidates.append(private and os.path.join(private, name))
    _set_cache_dir(base or None)
    CACHE = False
    print("kernels: no writable folder for the Numba cache of the tuned dispatch values (%s); "
          "compiling without a cache (set NUMBA_CACHE_DIR to a writable folder)"
          % " or ".join(c for c in candidates if c), file=stderr or sys.stderr)


_inherited_base()
_choose()
_separate_tuned()
