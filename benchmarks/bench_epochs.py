"""asv: one training epoch of each configuration, the NumPy loop against numba-dense.

(``compare_peers`` adds PyTorch and scikit-learn, each in a process of its own.)
"""

from .configs import CONFIGS
from .peers import make_runner


class Epoch:
    params = [["numpy", "numba"], list(CONFIGS)]
    param_names = ["impl", "config"]
    timeout = 900
    number = 1
    repeat = (1, 3, 120.0)

    def setup(self, impl, config):
        self.run = make_runner(impl, CONFIGS[config])  # compiled and warmed up here

    def time_epoch(self, impl, config):
        self.run(1)

    def peakmem_epoch(self, impl, config):
        self.run(1)


class DropoutEpoch:
    """An epoch of a tabular configuration with no dropout and with every hidden layer
    dropped out at 0.1 (``benchmarks.dropout_cost``)."""

    params = [[0.0, 0.1], ["T1", "T3"]]
    param_names = ["rate", "config"]
    timeout = 600
    number = 1
    repeat = (1, 5, 60.0)

    def setup(self, rate, config):
        from .dropout_cost import make_epoch
        self.run = make_epoch(CONFIGS[config], rate)  # compiled and warmed up here

    def time_epoch(self, rate, config):
        self.run()
