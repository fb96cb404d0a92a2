"""What a fit records per epoch: ``History`` (saved with networks and checkpoints)."""

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class History:
    """What ``fit`` records, one entry per epoch trained (resumed runs include earlier ones)."""

    loss: list = field(default_factory=list)       # mean training cost over the epoch
    val_loss: list = field(default_factory=list)   # cost on the validation rows, when any
    lr: list = field(default_factory=list)         # learning rate the epoch used
    seconds: list = field(default_factory=list)    # wall time of the epoch's training
    comm_seconds: list = field(default_factory=list)  # of which in MPI all-reduce (comm=...)
    best_epoch: int = None                         # epoch of the lowest val_loss (1-based)
    stopped_epoch: int = None                      # set when early stopping ended the run
    interrupted_epoch: int = None                  # set when Ctrl-C cut this epoch short
    resumed_epochs: int = None                     # epochs taken from a checkpoint by the fit
