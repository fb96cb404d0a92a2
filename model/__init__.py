"""numba-dense model layer: networks composed from the compiled kernels."""

from .datasets import teacher_regression
from .mlp import MLP, DivergedError, History
from .training import TrainingInterrupted

__all__ = ["MLP", "History", "DivergedError", "TrainingInterrupted", "teacher_regression"]
