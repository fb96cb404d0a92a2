"""Output files: checked before any work starts, written atomically with normal permissions."""

import os
import tempfile


def check_output(path, what):
    """Raise a one-line error unless a file could be written at ``path``.

    ``what`` names the option or argument (``--save``, ``checkpoint``) in the message. The
    folder must exist and be writable, and ``path`` must not be a folder.
    """
    path = os.fspath(path)
    if not path:
        raise ValueError("%s: the path is empty" % what)
    if os.path.isdir(path):
        raise IsADirectoryError("%s: %r is a folder; give a file name inside it" % (what, path))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError("%s: folder %r does not exist" % (what, folder))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError("%s: folder %r is not writable" % (what, folder))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise PermissionError("%s: %r exists and is not writable" % (what, path))


def _same(a, b):
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(outputs, inputs=()):
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
                raise ValueError("%s and %s name the same file %r; give each its own"
                                 % (what, other, path))
        for other, in_path in inputs.items():
            if in_path is not None and _same(path, os.fspath(in_path)):
                raise ValueError("%s %r is the input %s: it would be overwritten; write the "
                                 "output elsewhere" % (what, path, other))


def default_file_mode():
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path, what, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C mid-write never leaves half a file at ``path``. The file gets the
    permissions a plain ``open(path, "w")`` would (0666 less the umask), not mkstemp's 0600.
    """
    path = os.fspath(path)
    check_output(path, what)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
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
