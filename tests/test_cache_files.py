"""Numba's cache files written by processes that compile at the same time (kernels._cache).

Numba numbers a function's data files by the next free number in the index it has just
read, so two processes saving different signatures of one function at once could both take
number N; the index then sent one signature to the other's code, and every later process
failed to type its callers until the cache was deleted (seen in CI: the test workers' warm-up
processes, one per dtype, compiling ``shares_memory`` side by side).
"""

import errno
import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap

import pytest
from numba.core.caching import IndexDataCacheFile
from numba.core.dispatcher import Dispatcher

from numba_dense.kernels import _cache
from numba_dense.kernels._cache import KeyedCacheFile

pytestmark = pytest.mark.skipif(not _cache.CACHE, reason="Numba's cache is off here")


def _files(folder, cls=KeyedCacheFile):
    return cls(cache_path=str(folder), filename_base="f-1.py311", source_stamp=(1.0, 10))


KEY_A = (("float32",), ("cpu", "znver4", ""), ("aa", ""))
KEY_B = (("float64",), ("cpu", "znver4", ""), ("aa", ""))


@pytest.mark.parametrize("stale", [True, False])
def test_two_processes_saving_at_once_never_swap_their_code(tmp_path, stale):
    """Process a's save is cut in two at its data write, and process b saves meanwhile,
    having read the index before a wrote it (``stale``) or after. Whatever the order, a load
    returns the code saved under its own key or nothing (a miss: compiled again), never the
    other key's. Numba's numbered files fail this: both take number 1, b's index entry
    points at the file a writes last."""
    a, b = _files(tmp_path), _files(tmp_path)
    if stale:
        b._load_index = lambda: {}
    write_data = a._save_data
    held = []
    a._save_data = lambda name, data: held.append((name, data))
    a.save(KEY_A, "code A")
    b.save(KEY_B, "code B")
    for name, data in held:  # a's data write lands last
        write_data(name, data)
    reader = _files(tmp_path)
    found = {key: reader.load(key) for key in (KEY_A, KEY_B)}
    assert found[KEY_A] in ("code A", None) and found[KEY_B] == "code B"


@pytest.mark.parametrize("cls", [IndexDataCacheFile, KeyedCacheFile],
                         ids=["numbered", "keyed"])
def test_an_index_entry_naming_another_keys_file_is_a_miss(tmp_path, cls):
    """The index sends KEY_A to a file holding KEY_B's code (left by the old numbering and
    the race it allowed, or by a digest collision): it is not loaded."""
    files = _files(tmp_path, cls)
    files.save(KEY_B, "code B")
    files._save_index({KEY_A: files._load_index()[KEY_B]})
    assert _files(tmp_path).load(KEY_A) is None
    assert _files(tmp_path).load(KEY_B) is None  # no longer in the index either


def test_an_edited_function_leaves_no_files_of_its_old_code(tmp_path):
    """Numba reused its numbers after a source change, so old files were overwritten; a
    digest never repeats, so the first save after a change deletes the function's files
    of other bytecode (and Numba's numbered ones), not those of its own."""
    numbered = _files(tmp_path, IndexDataCacheFile)
    numbered.save(KEY_A, "numbered code")
    files = _files(tmp_path)
    files.save(KEY_A, "code A")
    other = tmp_path / "g-1.py311.00000000.000000000000.nbc"  # another function's file
    other.write_bytes(b"")
    edited = KeyedCacheFile(cache_path=str(tmp_path), filename_base="f-1.py311",
                            source_stamp=(2.0, 11))  # the source changed: the index is stale
    new_key = KEY_A[:2] + (("bb", ""),)
    edited.save(new_key, "new code")
    edited.save(KEY_B[:2] + (("bb", ""),), "new code B")
    names = sorted(p.name for p in tmp_path.glob("f-1.*.nbc"))
    assert len(names) == 2 and all(".%s." % _cache._digest(new_key[2])[:8] in n
                                   for n in names), names
    assert other.exists() and edited.load(new_key) == "new code"


def test_a_damaged_data_file_is_a_miss(tmp_path):
    files = _files(tmp_path)
    files.save(KEY_A, "code A")
    (name,) = [p for p in tmp_path.iterdir() if p.suffix == ".nbc"]
    name.write_bytes(b"\x80\x05not a pickle")
    assert files.load(KEY_A) is None


@pytest.mark.parametrize("damage", [b"", b"\x80\x05\x95", b"garbage\n"],
                         ids=["emptied", "truncated", "not a pickle"])
def test_an_index_that_cannot_be_read_is_empty_and_is_written_again(tmp_path, damage):
    """An index emptied or cut short (a crash on some file systems) made every later
    process fail in Numba's unpickling until the cache was deleted; now it has no entries,
    and the next save writes a good one."""
    files = _files(tmp_path)
    files.save(KEY_A, "code A")
    (index,) = tmp_path.glob("*.nbi")
    index.write_bytes(damage)
    assert files.load(KEY_A) is None
    files.save(KEY_B, "code B")
    assert _files(tmp_path).load(KEY_B) == "code B"


def _twice(x):
    return 2 * x


@pytest.mark.parametrize("failure", ["folder", "replace"])
def test_a_cache_that_cannot_be_written_is_skipped_with_one_line(
        tmp_path, monkeypatch, capsys, failure):
    """A full disk, a folder made read-only or deleted meanwhile stopped the run that was
    compiling (``OSError: [Errno 28] No space left on device`` from ``fit``); the code is
    simply not kept, the user told so once a process, and no temporary file is left."""
    twice = _cache.njit(cache=True)(_twice)  # a dispatcher of its own: compiles here
    cache = twice._cache
    monkeypatch.setattr(_cache, "_UNSAVED", [])
    monkeypatch.setattr(cache, "load_overload", lambda *args: None)
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setattr(cache._cache_file, "_cache_path", str(folder))
    monkeypatch.setattr(cache._cache_file, "_index_path", str(folder / "f.nbi"))
    if failure == "folder":
        def unwritable():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        monkeypatch.setattr(cache._impl.locator, "ensure_cache_path", unwritable)
        expected = os.strerror(errno.EROFS)
    else:
        def full(*args):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(os, "replace", full)  # what Numba's atomic write ends with
        expected = os.strerror(errno.ENOSPC)
    assert twice(3) == 6 and twice(2.5) == 5.0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert list(folder.iterdir()) == []  # the temporary file removed again


def test_every_cached_kernel_of_the_package_uses_keyed_files():
    """A kernel written with ``numba.njit`` instead of ``kernels._cache.njit`` would share
    Numba's numbered files again."""
    from numba_dense import kernels, model
    for package in (kernels, model):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    checked = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith("numba_dense."):
            continue
        for value in vars(module).values():
            cache = getattr(value, "_cache", None)
            if isinstance(value, Dispatcher) and hasattr(cache, "_cache_file"):
                assert isinstance(cache, _cache.KeyedFunctionCache), (name, value)
                assert isinstance(cache._cache_file, KeyedCacheFile), (name, value)
                checked += 1
    assert checked > 100


_COMPILE = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from numba_dense.kernels._checks import shares_memory
    dtype, ndim, go = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    while not os.path.exists(go):  # start together
        time.sleep(0.005)
    a = np.zeros(4, dtype)
    print(shares_memory(a, np.zeros((2,) * ndim, dtype)))
""")

_LOAD = textwrap.dedent("""
    import numpy as np
    from numba_dense.kernels._checks import shares_memory
    for dtype in ("float32", "float64"):
        for ndim in (1, 2):
            a = np.zeros(4, dtype)
            assert not shares_memory(a, np.zeros((2,) * ndim, dtype))
            assert shares_memory(a, a.reshape((2,) * ndim) if ndim == 2 else a)
    print(len(shares_memory.signatures))
""")


def test_processes_compiling_one_function_together_leave_a_cache_that_loads(tmp_path):
    """Four processes compile one kernel for four signatures at the same moment into one
    empty cache; a fifth then calls all four and types each (it failed to when the race
    had swapped two files)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop(_cache.BASE_ENV, None)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _COMPILE, dtype, str(ndim), str(go)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for dtype in ("float32", "float64") for ndim in (1, 2)]
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
    load = subprocess.run([sys.executable, "-c", _LOAD], env=env, capture_output=True,
                          text=True, timeout=300)
    assert load.returncode == 0, load.stderr[-2000:]
    assert load.stdout.split() == ["4"]


def test_a_kernel_loaded_from_the_cache_is_the_one_compiled(tmp_path):
    """The keyed files round-trip through Numba itself: a second process loads (cache hit,
    no compile) and gets the same results; after the index is emptied, the next process
    compiles and the one after it loads again."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop(_cache.BASE_ENV, None)
    code = textwrap.dedent("""
        import numpy as np
        from numba_dense.kernels._checks import shares_memory
        a = np.zeros(6)
        print(shares_memory(a[:3], a[2:]), shares_memory(a[:3], a[3:]),
              sum(shares_memory.stats.cache_hits.values()))
    """)

    def run():
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=300)

    runs = [run(), run()]
    assert [r.stdout.split() for r in runs] == [["True", "False", "0"],
                                                ["True", "False", "1"]], runs[1].stderr
    for index in (tmp_path / "cache").rglob("_checks.shares_memory-*.nbi"):
        index.write_bytes(b"")  # emptied by a crash: compiled again, and kept again
    runs = [run(), run()]
    assert [r.stdout.split() for r in runs] == [["True", "False", "0"],
                                                ["True", "False", "1"]], runs[0].stderr
