"""One epoch-runner per implementation: NumPy baseline, numba-dense, PyTorch (optional)."""

import numpy as np

from kernels import reference
from kernels.info import gemm_gflops
from model import MLP

from .configs import LR


def numpy_runner(config, X, Y):
    """The NumPy minibatch loop of kernels.reference, as a user would write it."""
    net = MLP(config.sizes, output=config.output, seed=0)
    params = net.params.copy()
    grads = np.empty_like(params)
    order = np.empty(0, np.int64)

    def run(epochs):
        for _ in range(epochs):
            reference.train_epoch(X, Y, params, grads, None, net.sizes, net.acts, config.batch,
                                  LR, 0.0, 0.0, order, None)
    return run


def numba_runner(config, X, Y):
    """``MLP.fit``: validation, buffers and the compiled epochs, as a user calls it."""
    net = MLP(config.sizes, output=config.output, seed=0)
    net.fit(X[:config.batch * 2], Y[:config.batch * 2], epochs=1, batch_size=config.batch,
            lr=LR, shuffle=False)  # compile (or load from cache) outside the timing

    def run(epochs):
        net.fit(X, Y, epochs=epochs, batch_size=config.batch, lr=LR, shuffle=False)
    return run


def torch_runner(config, X, Y):
    """nn.Sequential + MSELoss + optim.SGD over pre-made tensor batches; None if no torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    layers = []
    sizes = config.sizes
    for l in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        last = l == len(sizes) - 2
        if not last or config.output == "relu":
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batches = list(zip(torch.from_numpy(X).split(config.batch),
                       torch.from_numpy(Y).split(config.batch)))

    def run(epochs):
        for _ in range(epochs):
            for xb, yb in batches:
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
    return run


RUNNERS = {"numpy": numpy_runner, "numba": numba_runner, "torch": torch_runner}


def gemm_rates(n=4096, repeats=3):
    """Best float32 GFLOP/s of an n x n x n product: NumPy's BLAS and the kernels' BLAS."""
    return {"numpy": gemm_gflops(n, np.float32, repeats, blas="numpy"),
            "numba-dense": gemm_gflops(n, np.float32, repeats)}
