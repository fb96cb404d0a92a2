"""Training: the options of a fit and the records made from them (``options``), the epoch
loop (``loop``), data-parallel training over MPI (``distributed``), checkpoints, signals,
the history and the progress display."""
