"""The exceptions numba-dense raises, under one base class that callers can catch.

Each is also the built-in exception it refines (``InvalidValueError`` is a ``ValueError``),
so code that catches the built-in ones keeps working. ``TrainingInterrupted`` and
``Terminated`` (``model.training``) are ``KeyboardInterrupt``s instead: ``except
Exception`` must not swallow a Ctrl-C.
"""


class NumbaDenseError(Exception):
    """Base class of every error numba-dense raises about what it was given or met.

    ``NumbaDenseError(template, *values)`` is the message ``template % values``: compiled
    kernels raise their errors this way (``raise InvalidValueError("%s: lr must be
    positive, got %g", kernel, lr)``), so that the text is made here, in Python, when the
    error reaches the interpreter. Building it in compiled code (string concatenation,
    ``str`` of each number, a ``%g`` of our own) was about a quarter of the kernels'
    first-run compile time (docs/performance.md, "Start-up"). Int64 arrays among the
    values read as lists (``[3, 4, 5]``). With one argument, or a template the values do
    not fit, the arguments are kept as given, as for any exception.
    """

    def __init__(self, *args):
        if len(args) > 1 and isinstance(args[0], str):
            values = tuple(v.tolist() if hasattr(v, "tolist") and getattr(v, "ndim", 0) > 0
                           else v for v in args[1:])
            try:
                args = (args[0] % values,)
            except (TypeError, ValueError):
                pass
        super().__init__(*args)


class InvalidValueError(NumbaDenseError, ValueError):
    """An argument, file or setting with a value numba-dense cannot use."""


class InvalidTypeError(NumbaDenseError, TypeError):
    """An argument of a type numba-dense cannot use."""


class MissingFileError(NumbaDenseError, FileNotFoundError):
    """A file or folder named as input (or as the folder of an output) that does not exist."""


class TooLargeError(NumbaDenseError, OverflowError):
    """A size or count beyond what int64 (or the machine) holds."""


class FolderGivenError(NumbaDenseError, IsADirectoryError):
    """A folder where the path of a file was expected (an output, or a file to read)."""


class NotWritableError(NumbaDenseError, PermissionError):
    """An output path that cannot be written: its folder or the file is read-only, or the
    folder takes no new file (a read-only mount, a quota, a pseudo file system)."""
