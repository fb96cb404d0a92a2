"""Built-in data: a seeded synthetic teacher network, the default job's dataset."""

import numpy as np


def teacher_regression(n_rows=200_000, n_features=32, hidden=64, noise=0.01, seed=0,
                       dtype=np.float32):
    """(X, y): X standard normal (n_rows, n_features), y (n_rows,) the output of a random ReLU
    teacher network ``n_features-hidden-1`` plus Gaussian noise of std ``noise``.

    A student MLP can fit it to roughly the noise level, so the loss curve shows learning.
    """
    rng = np.random.default_rng(seed)
    W1 = rng.standard_normal((hidden, n_features)) * np.sqrt(2.0 / n_features)
    b1 = rng.standard_normal(hidden) * 0.1
    w2 = rng.standard_normal(hidden) / np.sqrt(hidden)
    X = rng.standard_normal((n_rows, n_features)).astype(dtype)
    y = np.maximum(X @ W1.T.astype(dtype) + b1.astype(dtype), 0) @ w2.astype(dtype)
    y += rng.standard_normal(n_rows).astype(dtype) * dtype(noise)
    return X, y.astype(dtype)
