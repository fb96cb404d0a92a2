"""Output files: checked before any work starts, written atomically with normal permissions."""

import contextlib
import os
import tempfile

from ...kernels.errors import (FolderGivenError, InvalidValueError, MissingFileError,
                               NotWritableError, NumbaDenseError)
from ..training.signals import sigint_deferred


def check_output(path, what):
    """Raise a one-line error unless a file could be written at ``path``.

    ``what`` names the option or argument (``--save``, ``checkpoint``) in the message. The
    check is the one the write will meet (``atomic_write``): the path is followed through
    symbolic links; it must not name a folder (a trailing slash included); its folder must
    exist and take a new file (tried by creating and removing one); the name must fit the
    file system's limit on a name's length.
    """
    path = os.fspath(path)
    if not path:
        raise InvalidValueError("%s: the path is empty" % what)
    if path.endswith(os.sep) or (os.altsep and path.endswith(os.altsep)):
        raise FolderGivenError("%s: %r names a folder (it ends in %r); give a file name, "
                               "such as %r" % (what, path, path[-1],
                                               os.path.join(path, "model.npz")))
    if os.path.isdir(path):
        raise FolderGivenError("%s: %r is a folder; give a file name inside it" % (what, path))
    real = write_target(path)
    folder, name = os.path.split(real)
    if not os.path.isdir(folder):
        raise MissingFileError("%s: folder %r does not exist" % (what, folder))
    limit = _name_max(folder)
    if len(os.fsencode(name)) > limit:
        raise InvalidValueError("%s: the file name %.40r... is %d bytes long; this file "
                                "system allows %d" % (what, name, len(os.fsencode(name)), limit))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NotWritableError("%s: folder %r is not writable" % (what, folder))
    if os.path.exists(real) and not os.path.isfile(real):
        raise InvalidValueError("%s: %r exists and is not a regular file (a device, a pipe or a "
                                "socket); give the path of a file" % (what, path))
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise NotWritableError("%s: %r exists and is not writable" % (what, path))
    # What the write does first: a new file in the folder (read-only mounts, quotas). A
    # Ctrl-C is held until the probe is gone (one landing in between left it behind).
    with sigint_deferred():
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except OSError as exc:
            raise NotWritableError("%s: cannot create a file in folder %r: %s"
                                   % (what, folder, exc.strerror or exc)) from None
        os.close(fd)
        os.unlink(probe)


def write_target(path):
    """The file a write to ``path`` changes: symbolic links followed (so a link is written
    through, never replaced by a file)."""
    return os.path.realpath(os.fspath(path))


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # pragma: no cover - not POSIX
        return 255


def _same(a, b):
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs=None):
    """Check every output (``{what: path}``, None paths skipped) before the work starts.

    Each must be writable (``check_output``), differ from every other output and from
    every input (``{what: path}``): an input is never overwritten.
    """
    named = [(what, os.fspath(path)) for what, path in outputs.items() if path is not None]
    for what, path in named:
        check_output(path, what)
    for i, (what, path) in enumerate(named):
        for other, other_path in named[i + 1:]:
            if _same(path, other_path):
                raise InvalidValueError("%s and %s name the same file %r; give each its own"
                                        % (what, other, path))
        for other, in_path in (inputs or {}).items():
            if in_path is not None and _same(path, os.fspath(in_path)):
                raise InvalidValueError("%s %r is the input %s: it would be overwritten; write "
                                        "the output elsewhere" % (what, path, other))


def default_file_mode():
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, what, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C mid-write never leaves half a file at ``path``, nor the temporary
    file: a Ctrl-C (or a stop signal raised as one) during the write is held until the file
    is in place, then raised (``sigint_deferred``; a signal that landed between the
    temporary file's creation and the ``try`` that removes it left it behind). The file
    gets the permissions a plain ``open(path, "w")`` would (0666 less the umask), not
    mkstemp's 0600.
    """
    check_output(path, what)
    path = write_target(path)  # through a symbolic link, not over it
    folder = os.path.dirname(path)
    with sigint_deferred():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-",
                                   suffix=os.path.splitext(path)[1])
        try:
            os.fchmod(fd, default_file_mode())
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


class OutputBusy(NumbaDenseError, OSError):
    """Another run is writing the same output file."""


@contextlib.contextmanager
def claimed(outputs):
    """Hold an exclusive claim on each output file (``{what: path}``, None skipped) for the
    block, so that two runs never write one file: the second is refused at its start,
    naming the file and the process holding it.

    The claim is an ``fcntl.flock`` on a lock file beside the output (``.NAME.lock``): the
    kernel releases it when the process ends, however it ends, so a killed run never
    leaves a file locked; the lock file is removed when the block ends.
    """
    held = []
    try:
        for what, path in outputs.items():
            if path is not None:
                held.append(_claim(what, path))
        yield
    finally:
        for fd, lock in reversed(held):
            _release(fd, lock)


def _lock_path(path):
    folder, name = os.path.split(write_target(path))
    return os.path.join(folder, ".%s.lock" % name[:200])


def _claim(what, path):
    import fcntl
    lock = _lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusy("%s: %r is being written by another run (process %s); wait for "
                             "it to end or give this run another file"
                             % (what, os.fspath(path), owner)) from None
        except OSError:  # a file system without flock: no claim, as before
            os.close(fd)
            return None, None
        # The file may have been removed by its last holder between our open and our lock:
        # then the claim is on a name nobody else sees; take it again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            return fd, lock
        os.close(fd)


def _release(fd, lock):
    if fd is None:
        return
    try:
        os.unlink(lock)
    except OSError:
        pass
    os.close(fd)
