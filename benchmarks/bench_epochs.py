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
