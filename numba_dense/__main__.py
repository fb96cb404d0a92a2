"""``python -m numba_dense train|predict|evaluate|convert``: the command line."""

import sys

from .model.interfaces.cli import main

sys.exit(main())
