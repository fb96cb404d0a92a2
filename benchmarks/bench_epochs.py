"""asv: one training epoch of each issue-3 configuration, NumPy baseline against numba-dense."""

from .configs import CONFIGS, make_data
from .peers import RUNNERS


class Epoch:
    params = [["numpy", "numba"], list(CONFIGS)]
    param_names = ["impl", "config"]
    timeout = 900
    number = 1
    repeat = (1, 3, 120.0)

    def setup(self, impl, config):
        c = CONFIGS[config]
        X, Y = make_data(c)
        self.run = RUNNERS[impl](c, X, Y)  # compiles (or loads the cache) here

    def time_epoch(self, impl, config):
        self.run(1)

    def peakmem_epoch(self, impl, config):
        self.run(1)
