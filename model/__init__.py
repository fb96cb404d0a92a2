"""numba-dense model layer: networks composed from the compiled kernels."""

from .datasets import teacher_regression
from .mlp import MLP, DivergedError, History
from .training import TrainingInterrupted

__all__ = ["MLP", "History", "DivergedError", "TrainingInterrupted", "teacher_regression",
           "MLPRegressor", "MLPClassifier"]


def __getattr__(name):
    # The scikit-learn estimators import scikit-learn: only when asked for.
    if name in ("MLPRegressor", "MLPClassifier"):
        from . import estimators
        return getattr(estimators, name)
    raise AttributeError("module 'numba_dense.model' has no attribute %r" % name)
