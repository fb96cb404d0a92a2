"""``python -m numba_dense train|predict|evaluate|convert``: the command line."""

from .model.interfaces.cli import run

run()
