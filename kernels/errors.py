"""The exceptions numba-dense raises, under one base class that callers can catch.

Each is also the built-in exception it refines (``InvalidValueError`` is a ``ValueError``),
so code that catches the built-in ones keeps working. ``TrainingInterrupted`` and
``Terminated`` (``model.training``) are ``KeyboardInterrupt``s instead: ``except
Exception`` must not swallow a Ctrl-C.
"""


class NumbaDenseError(Exception):
    """Base class of every error numba-dense raises about what it was given or met."""


class InvalidValueError(NumbaDenseError, ValueError):
    """An argument, file or setting with a value numba-dense cannot use."""


class InvalidTypeError(NumbaDenseError, TypeError):
    """An argument of a type numba-dense cannot use."""


class TooLargeError(NumbaDenseError, OverflowError):
    """A size or count beyond what int64 (or the machine) holds."""
