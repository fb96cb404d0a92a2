"""One epoch-runner per implementation, and the worker process each one runs in.

    python -m benchmarks.peers IMPL CONFIG [ROWS]    # a worker: used by compare_peers

A runner is built once (data made, network initialised, one warm-up epoch run so that
compilation and first-touch costs stay out of the timings) and then ``run(epochs)`` trains
that many epochs. Implementations:

- ``numpy``: the loop of ``benchmarks/numpy_loop.py``, what a competent NumPy user writes;
- ``numba``: ``MLP.fit`` as a user calls it (input checks, buffers, compiled epochs);
- ``torch``: ``nn.Sequential`` + ``MSELoss``/``CrossEntropyLoss`` + ``optim.SGD`` over
  pre-made tensor batches (optional: skipped when PyTorch is not installed);
- ``sklearn``: ``MLPRegressor``/``MLPClassifier`` with ``solver="sgd", momentum=0,
  alpha=0``, the same batch size and rate, ``shuffle=False``, one ``partial_fit`` per epoch
  (optional; on the tabular configurations T1-T3, the networks scikit-learn users train).

Every implementation starts from its own library's usual initialisation; speed does not
depend on the weights' values beyond the ReLU pattern, and all start at a similar scale.
"""

import os
import sys
import time

import numpy as np

from .configs import CONFIGS, LR, is_classifier, make_data
from .numpy_loop import NumpyLoop, one_hot


class Skip(Exception):
    """An optional peer that cannot run here; the message says why."""


def _network(config):
    from numba_dense.model import MLP
    return MLP(config.sizes, output=config.output, seed=0)


def numpy_runner(config, X, Y):
    net = _network(config)
    loop = NumpyLoop(net.weights, net.biases, config.output, config.batch)
    if is_classifier(config):
        Y = one_hot(Y, config.sizes[-1])
    return lambda epochs: [loop.epoch(X, Y, LR) for _ in range(epochs)]


def numba_runner(config, X, Y):
    net = _network(config)
    # compare_peers --scaling limits a worker's threads through the environment; fit's
    # threads are n_jobs (None, a user's default: the free cores)
    limit = os.environ.get("NUMBA_NUM_THREADS")
    n_jobs = int(limit) if limit else None

    def run(epochs):
        # y as given, as the other implementations train (and the same arithmetic as the
        # NumPy loop, which tests.test_blas_and_tools checks)
        net.fit(X, Y, epochs=epochs, batch_size=config.batch, lr=LR, shuffle=False,
                standardize_target=False, n_jobs=n_jobs)
    return run


def torch_runner(config, X, Y):
    try:
        import torch
    except ImportError:
        raise Skip("PyTorch is not installed (pip install torch)")
    torch.manual_seed(0)
    layers = []
    sizes = config.sizes
    for l in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[l], sizes[l + 1]))
        if l < len(sizes) - 2 or config.output == "relu":
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    # MSELoss averages over every element; with one output it is docs/MATH.md's cost x 2,
    # the same direction and, at this rate, the same speed.
    loss_fn = torch.nn.CrossEntropyLoss() if is_classifier(config) else torch.nn.MSELoss()
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


def sklearn_runner(config, X, Y):
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        raise Skip("scikit-learn is not installed (pip install scikit-learn)")
    if not config.name.startswith("T"):
        raise Skip("scikit-learn is compared on the tabular configurations (T1-T3)")
    kind = MLPClassifier if is_classifier(config) else MLPRegressor
    est = kind(hidden_layer_sizes=tuple(config.sizes[1:-1]), activation="relu", solver="sgd",
               alpha=0.0, batch_size=config.batch, learning_rate="constant",
               learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False, shuffle=False,
               random_state=0)
    y = Y if is_classifier(config) or Y.shape[1] > 1 else Y[:, 0]
    extra = {"classes": np.arange(config.sizes[-1])} if is_classifier(config) else {}

    def run(epochs):
        for _ in range(epochs):  # partial_fit: one epoch over the data each call
            est.partial_fit(X, y, **extra)
    return run


RUNNERS = {"numpy": numpy_runner, "numba": numba_runner, "torch": torch_runner,
           "sklearn": sklearn_runner}


def make_runner(impl, config, X=None, Y=None):
    """A warmed-up runner for ``impl`` on ``config`` (raises Skip for an absent peer).

    X, Y default to the configuration's data (``make_data``).
    """
    if X is None:
        X, Y = make_data(config)
    run = RUNNERS[impl](config, X, Y)
    run(1)  # warm-up: compilation (or the Numba cache), first-touch, allocator
    return run


def worker(impl, name, rows=None):
    """Serve timings over stdin/stdout: 'ready' (or 'skip <why>'), then one line a 'run'."""
    config = CONFIGS[name]
    if rows is not None:
        config = config._replace(rows=rows)
    try:
        run = make_runner(impl, config)
    except Skip as why:
        print("skip %s" % why, flush=True)
        return
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        run(config.epochs)
        print("%.9f" % ((time.perf_counter() - start) / config.epochs), flush=True)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
