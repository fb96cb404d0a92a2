"""The benchmark configurations, shared by asv, compare_peers and gemm_floor.

float32, ReLU hidden layers, plain SGD, lr 0.01, no shuffling. Inputs are standard normal /
sqrt(n_in), so rows have unit expected norm and the wide network D does not diverge.

- A-D: one ReLU neuron, and networks of MNIST-like width up to a wide one (identity output,
  MSE; A has a ReLU output).
- T1-T3: tabular networks, many rows and narrow layers, where a compiled loop matters most.
  T3 is a 7-class classifier (softmax cross-entropy), its targets integer labels.
"""

import contextlib
import subprocess
import sys
import time
from collections import namedtuple

import numpy as np

Config = namedtuple("Config", "name sizes output batch rows epochs")

CONFIGS = {
    "A": Config("A", [100, 1], "relu", 120, 1_000_000, 3),
    "B": Config("B", [784, 128, 10], "identity", 64, 60_000, 3),
    "C": Config("C", [784, 256, 256, 10], "identity", 128, 60_000, 3),
    "D": Config("D", [1024, 4096, 4096, 1], "identity", 1024, 16_384, 1),
    "T1": Config("T1", [20, 64, 64, 1], "identity", 32, 200_000, 3),
    "T2": Config("T2", [10, 32, 1], "identity", 16, 200_000, 3),
    "T3": Config("T3", [54, 128, 64, 7], "softmax", 64, 200_000, 3),
}
LR = 0.01


def is_classifier(config):
    return config.output == "softmax"


def make_data(config, rows=None, seed=0):
    """(X, Y) for a configuration: X float32 standard normal / sqrt(n_in), Y from a teacher.

    Regression: Y (rows, n_out) float32 = tanh(X @ teacher). Classifier: Y (rows,) int64
    labels, the argmax of the teacher's outputs.
    """
    rng = np.random.default_rng(seed)
    rows = config.rows if rows is None else rows
    n_in, n_out = config.sizes[0], config.sizes[-1]
    X = rng.standard_normal((rows, n_in), dtype=np.float32)
    X *= np.float32(1 / np.sqrt(n_in))
    teacher = rng.standard_normal((n_in, n_out)).astype(np.float32)
    if is_classifier(config):
        return X, np.argmax(X @ teacher, axis=1).astype(np.int64)
    Y = np.ascontiguousarray(np.tanh(X @ teacher), dtype=np.float32)
    return X, Y


def product_macs(sizes):
    """Multiply-adds per row of one training step: forward, dW, and delta below layer 1."""
    products = sum(sizes[l] * sizes[l + 1] for l in range(len(sizes) - 1))
    return 3 * products - sizes[0] * sizes[1]


def matmul_flops(config, rows=None):
    """FLOPs of the matrix products one epoch needs: forward, dW, and delta for layers > 1."""
    rows = config.rows if rows is None else rows
    return 2 * rows * product_macs(config.sizes)


def cpu_model():
    """The CPU's model name: every benchmark names the CPU its figures come from. The one
    place for it is ``numba_dense.kernels.host.cpu_model`` (the tuned values are kept per
    CPU model), imported when called so that a peer's process never loads numba-dense."""
    from numba_dense.kernels.host import cpu_model as model
    return model()


def cpu_line():
    """The CPU's model, its vector extensions and the width of numba-dense's register tiles
    (``kernels.info.tile_vectors``): what a reader needs to compare figures across hosts."""
    from numba_dense.kernels import host
    from numba_dense.kernels.info import tile_vectors
    flags = ", ".join(flag for flag, have in host.cpu_flags().items() if have) or "none found"
    return "%s (vector extensions: %s); register tiles of %s" % (cpu_model(), flags,
                                                                 tile_vectors())


@contextlib.contextmanager
def busy_processes(count):
    """``count`` processes spinning in pure Python (``while True: pass``) for the block,
    started half a second before it (so that the load average and the scheduler have seen
    them) and killed after it; none for 0."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(count)]
    try:
        if spinners:
            time.sleep(0.5)
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()
