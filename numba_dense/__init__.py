"""numba-dense: Numba-compiled kernels for training dense neural networks on the CPU.

- ``numba_dense.kernels``: the ``@njit`` kernels (callable from your own ``@njit`` code);
- ``numba_dense.model``: ``MLP``, the scikit-learn estimators, tables, the command line.

The repository keeps the two as its top-level folders ``kernels/`` and ``model/``; the
installed package maps them under this one name (``pyproject.toml``'s ``package-dir``), so
a ``model.py`` or ``kernels.py`` of your own never shadows them.
"""

from . import kernels, model
from .kernels.errors import (FolderGivenError, InvalidTypeError, InvalidValueError,
                             MissingFileError, NotWritableError, NumbaDenseError,
                             TooLargeError)
from .model import (MLP, DivergedError, Ensemble, EnsembleInterrupted, History,
                    TrainingInterrupted, load_model)

__all__ = ["kernels", "model", "MLP", "Ensemble", "EnsembleInterrupted", "load_model",
           "MLPRegressor", "MLPClassifier", "GridSearchCV", "RandomizedSearchCV", "History",
           "NumbaDenseError", "InvalidValueError", "InvalidTypeError", "MissingFileError",
           "TooLargeError", "FolderGivenError", "NotWritableError",
           "DivergedError", "TrainingInterrupted"]


def __getattr__(name):
    # The scikit-learn estimators and searches import scikit-learn: only when asked for.
    if name in ("MLPRegressor", "MLPClassifier", "GridSearchCV", "RandomizedSearchCV"):
        return getattr(model, name)
    raise AttributeError("module 'numba_dense' has no attribute %r" % name)
