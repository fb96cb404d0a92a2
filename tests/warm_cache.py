"""Compile, once, the kernels that many test files call, before pytest-xdist's workers start.

    python -m tests.warm_cache float32      # what conftest.py runs, one process per dtype

Each worker of ``pytest -n 2`` would otherwise compile the same large kernels (the dense
epoch takes about 90 s to compile on one core) at the same time, in the first test of each
file that calls them: the second compilation is wasted, and both workers wait. Compiled
here first, in one process per dtype side by side, they are written to Numba's cache
(``cache=True``), and every worker loads them. The calls are those of the tests
(``kernels.network``, ``kernels.optimizer``, ``kernels.batches``, C-ordered arrays) so that
the signatures are the ones the tests compile; a kernel a test calls otherwise is simply
compiled there, as before.
"""

import sys

import numpy as np


def compile_kernels(dtype):
    from numba_dense import kernels
    from numba_dense.model import MLP
    rng = np.random.default_rng(0)
    net = kernels.network((4, 3, 2), [kernels.TANH, kernels.IDENTITY], kernels.MSE)
    n_params = kernels.param_count(net.sizes)
    X = rng.standard_normal((6, 4)).astype(dtype)
    Y = rng.standard_normal((6, 2)).astype(dtype)
    params = (rng.standard_normal(n_params) * 0.5).astype(dtype)
    work = np.zeros(kernels.workspace_size(net.sizes, 3), dtype)
    kernels.train_epoch(X, Y, params, np.zeros(n_params, dtype), net,
                        kernels.optimizer("sgd", params, 0.1), kernels.batches(3), work)
    kernels.dataset_cost(X, Y, params, net, 3, work)
    kernels.predict_into(X, params, net, np.empty((6, 2), dtype), 3, work)
    # The model layer's fit and predict, as the model tests call them.
    model = MLP([4, 3, 2], dtype=dtype, seed=0)
    model.fit(X, Y, epochs=1, batch_size=3)
    model.predict(X)


if __name__ == "__main__":
    compile_kernels(np.dtype(sys.argv[1]).type)
