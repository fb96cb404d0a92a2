"""numba-dense model layer: networks composed from the compiled kernels."""

from .data.datasets import teacher_regression
from .network.ensemble import Ensemble, EnsembleInterrupted, load_model
from .network.mlp import MLP
from .training.history import History
from .training.loop import DivergedError
from .training.signals import TrainingInterrupted

__all__ = ["MLP", "Ensemble", "EnsembleInterrupted", "load_model",
           "History", "DivergedError", "TrainingInterrupted", "teacher_regression",
           "MLPRegressor", "MLPClassifier", "GridSearchCV", "RandomizedSearchCV"]


def __getattr__(name):
    # The scikit-learn estimators and searches import scikit-learn: only when asked for.
    if name in ("MLPRegressor", "MLPClassifier"):
        from .interfaces import estimators
        return getattr(estimators, name)
    if name in ("GridSearchCV", "RandomizedSearchCV"):
        from .interfaces import search
        return getattr(search, name)
    raise AttributeError("module 'numba_dense.model' has no attribute %r" % name)
