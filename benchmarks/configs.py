"""The benchmark configurations of issue 3, shared by asv and compare_peers.py.

float32, ReLU hidden layers, identity output (ReLU output for the single neuron), MSE,
plain SGD, lr 0.01, no shuffling. Inputs are standard normal / sqrt(n_in), so rows have
unit expected norm and the wide network D does not diverge.
"""

from collections import namedtuple

import numpy as np

Config = namedtuple("Config", "name sizes output batch rows epochs")

CONFIGS = {
    "A": Config("A", [100, 1], "relu", 120, 1_000_000, 3),
    "B": Config("B", [784, 128, 10], "identity", 64, 60_000, 3),
    "C": Config("C", [784, 256, 256, 10], "identity", 128, 60_000, 3),
    "D": Config("D", [1024, 4096, 4096, 1], "identity", 1024, 16_384, 1),
}
LR = 0.01


def make_data(config, rows=None, seed=0):
    """(X, Y) float32 for a configuration: X standard normal / sqrt(n_in), Y from a teacher."""
    rng = np.random.default_rng(seed)
    rows = config.rows if rows is None else rows
    n_in, n_out = config.sizes[0], config.sizes[-1]
    X = rng.standard_normal((rows, n_in), dtype=np.float32)
    X *= np.float32(1 / np.sqrt(n_in))
    teacher = rng.standard_normal((n_in, n_out)).astype(np.float32)
    Y = np.ascontiguousarray(np.tanh(X @ teacher), dtype=np.float32)
    return X, Y


def matmul_flops(config, rows=None):
    """FLOPs of the matrix products one epoch needs: forward, dW, and delta for layers > 1."""
    rows = config.rows if rows is None else rows
    s = config.sizes
    products = sum(s[l] * s[l + 1] for l in range(len(s) - 1))
    return 2 * rows * (3 * products - s[0] * s[1])
