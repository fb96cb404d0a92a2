"""``python -m numba_dense train|predict|evaluate|convert``: the command line."""

import sys

from .model.cli import main

sys.exit(main())
