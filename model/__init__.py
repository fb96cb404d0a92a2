"""numba-dense model layer: networks composed from the compiled kernels."""

from .datasets import teacher_regression
from .mlp import MLP, DivergedError, History

__all__ = ["MLP", "History", "DivergedError", "teacher_regression"]
