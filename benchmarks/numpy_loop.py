"""The NumPy baseline: the minibatch SGD loop a competent NumPy user writes.

This is what every "vs NumPy" figure of numba-dense is measured against, so it does no
work such a user's loop would skip:

- float32 throughout (``lr`` is a Python float, which NumPy does not let upcast);
- one Python iteration per minibatch, batches as views (no copies, no shuffling);
- activations written into preallocated buffers with ``np.matmul(..., out=)``, bias and
  ReLU in place, the update ``W -= lr * (delta.T @ a)`` in place;
- no gradient for the first layer's inputs (nothing needs it), no cost computed (the
  user's loop would only look at it once an epoch, if at all).

ReLU hidden layers; the output is identity or ReLU with the MSE cost ``sum((a - y)**2) /
(2m)``, or softmax with cross-entropy on one-hot targets, exactly the costs numba-dense
trains (so the updates agree to rounding, which the tests check).
"""

import numpy as np


class NumpyLoop:
    """A network as lists of ``W`` (n_out, n_in) and ``b`` (n_out,), trained by ``epoch``."""

    def __init__(self, weights, biases, output, batch_size):
        self.W = [np.array(W, dtype=np.float32) for W in weights]
        self.b = [np.array(b, dtype=np.float32) for b in biases]
        self.output = output
        self.batch = batch_size
        # One buffer per layer's activations, reused by every minibatch.
        self.acts = [np.empty((batch_size, W.shape[0]), np.float32) for W in self.W]

    def epoch(self, X, Y, lr):
        """One pass of minibatch SGD over X (N, n_0) and Y (N, n_L) (one-hot for softmax)."""
        W, b, last = self.W, self.b, len(self.W) - 1
        for start in range(0, X.shape[0], self.batch):
            x = X[start:start + self.batch]
            y = Y[start:start + self.batch]
            m = x.shape[0]
            # Forward: a_l = relu(a_{l-1} @ W_l.T + b_l), into the layer's buffer.
            a = [x]
            for l in range(last + 1):
                z = np.matmul(a[l], W[l].T, out=self.acts[l][:m])
                z += b[l]
                if l < last or self.output == "relu":
                    np.maximum(z, 0, out=z)
                a.append(z)
            out = a[-1]
            # Output error term dC/dz, already divided by the batch size.
            if self.output == "softmax":
                out -= out.max(axis=1, keepdims=True)
                np.exp(out, out=out)
                out /= out.sum(axis=1, keepdims=True)
            delta = out - y
            if self.output == "relu":
                delta *= out > 0
            delta *= 1.0 / m
            # Backward: propagate below with the forward weights, then update the layer.
            for l in range(last, -1, -1):
                if l > 0:
                    below = delta @ W[l]
                    below *= a[l] > 0
                W[l] -= lr * (delta.T @ a[l])
                b[l] -= lr * delta.sum(axis=0)
                if l > 0:
                    delta = below


def one_hot(labels, n_classes):
    """(N, n_classes) float32 one-hot rows of integer labels (N,)."""
    Y = np.zeros((labels.shape[0], n_classes), np.float32)
    Y[np.arange(labels.shape[0]), labels] = 1
    return Y
