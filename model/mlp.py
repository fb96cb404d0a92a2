"""``MLP``: a dense network whose weights and biases live in one flat vector."""

import time
from dataclasses import dataclass, field

import numpy as np

import kernels
from kernels.loop import layer_offsets

from . import persistence
from .validation import as_features, as_targets, choice, float_dtype, integer, real_number

#: Rows per compiled call in predict / loss / gradients: bounds the workspace, not the data.
EVAL_BATCH = 4096


class DivergedError(FloatingPointError):
    """Training produced a NaN or infinite loss; ``params`` hold the last finite values."""

    def __init__(self, message, epoch, history):
        super().__init__(message)
        self.epoch = epoch
        self.history = history


@dataclass
class History:
    """What ``fit`` records, one entry per epoch."""

    loss: list = field(default_factory=list)       # mean training cost over the epoch
    val_loss: list = field(default_factory=list)   # cost on validation_data, when given
    seconds: list = field(default_factory=list)    # wall time of the epoch's training


class MLP:
    """A multilayer perceptron trained by minibatch SGD on the MSE cost.

    ``layer_sizes`` lists the widths ``[n_0, n_1, ..., n_L]``, inputs first. Hidden
    layers use ``hidden``, the last layer ``output`` (each "relu" or "identity"). The single
    ReLU neuron of MATH.md is ``MLP([n, 1], output="relu")``.

    ``params`` (P,) holds every weight and bias; ``weights[l]`` (n_{l+1}, n_l) and
    ``biases[l]`` (n_{l+1},) are views into it, and ``grads`` has the same layout.
    """

    def __init__(self, layer_sizes, hidden="relu", output="identity", dtype=np.float32,
                 seed=None):
        sizes = list(layer_sizes) if not isinstance(layer_sizes, (str, bytes)) else None
        if sizes is None or len(sizes) < 2:
            raise ValueError("layer_sizes must list at least 2 widths (inputs, outputs), got %r"
                             % (layer_sizes,))
        sizes = [integer(n, "layer_sizes[%d]" % i, 1) for i, n in enumerate(sizes)]
        self.hidden = choice(hidden, "hidden", kernels.ACTIVATIONS)
        self.output = choice(output, "output", kernels.ACTIVATIONS)
        self.dtype = float_dtype(dtype)
        self.sizes = np.array(sizes, dtype=np.int64)
        n_layers = len(sizes) - 1
        self.acts = np.array([kernels.ACTIVATIONS[hidden]] * (n_layers - 1)
                             + [kernels.ACTIVATIONS[output]], dtype=np.int64)
        n_params = int(kernels.param_count(self.sizes))
        self.params = np.zeros(n_params, dtype=self.dtype)
        self.grads = np.zeros(n_params, dtype=self.dtype)
        self.velocity = np.zeros(n_params, dtype=self.dtype)  # momentum state, kept across fits
        self.weights, self.biases = self._views(self.params)
        self.initialize(seed)

    # ------------------------------------------------------------------ structure

    @property
    def layer_sizes(self):
        """The widths [n_0, ..., n_L] as a list of ints."""
        return [int(n) for n in self.sizes]

    @property
    def n_inputs(self):
        return int(self.sizes[0])

    @property
    def n_outputs(self):
        return int(self.sizes[-1])

    def _views(self, flat):
        offsets = layer_offsets(self.sizes)
        weights, biases = [], []
        for l in range(len(self.sizes) - 1):
            n_in, n_out = int(self.sizes[l]), int(self.sizes[l + 1])
            o = int(offsets[l])
            weights.append(flat[o:o + n_out * n_in].reshape(n_out, n_in))
            biases.append(flat[o + n_out * n_in:o + n_out * n_in + n_out])
        return weights, biases

    def initialize(self, seed=None):
        """Fresh weights: He normal for ReLU layers, Glorot normal otherwise; zero biases.

        Drawn in float64 from ``np.random.default_rng(seed)`` and then cast, so a seed
        gives the same network in float32 and float64 (up to rounding).
        """
        rng = np.random.default_rng(seed)
        for W, b, act in zip(self.weights, self.biases, self.acts):
            n_out, n_in = W.shape
            std = np.sqrt(2.0 / n_in) if act == kernels.RELU else np.sqrt(2.0 / (n_in + n_out))
            W[...] = rng.standard_normal((n_out, n_in)) * std
            b[...] = 0
        self.velocity[...] = 0

    def __repr__(self):
        return "MLP(%r, hidden=%r, output=%r, dtype=%s)" % (
            self.layer_sizes, self.hidden, self.output, self.dtype.name)

    # ------------------------------------------------------------------ data

    def _inputs(self, X, name="X"):
        return as_features(X, name, self.dtype, self.n_inputs)

    def _pair(self, X, y, x_name="X", y_name="y"):
        X = self._inputs(X, x_name)
        return X, as_targets(y, y_name, self.dtype, self.n_outputs, X.shape[0], x_name)

    def _workspace(self, batch_size):
        return np.empty(int(kernels.workspace_size(self.sizes, batch_size)), dtype=self.dtype)

    # ------------------------------------------------------------------ training

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.01, momentum=0.0, weight_decay=0.0,
            shuffle=True, seed=None, validation_data=None, verbose=False):
        """Minibatch SGD on the MSE cost; returns a ``History``.

        X (N, n_0); y (N, n_L), or (N,) for one output. Every ``batch_size`` rows (the last
        partial batch averaged over its own rows) make one step
        ``velocity = momentum * velocity + grad + weight_decay * params;
        params -= lr * velocity`` (plain SGD when both are 0). Rows are reshuffled each
        epoch from ``np.random.default_rng(seed)`` when ``shuffle``. The minibatch loop of
        each epoch runs in compiled code (``kernels.train_epoch``).

        Raises ``DivergedError`` naming the epoch if the loss becomes NaN or inf; the
        parameters are then those at the start of that epoch.
        """
        epochs = integer(epochs, "epochs", 0)
        batch_size = integer(batch_size, "batch_size", 1)
        lr = real_number(lr, "lr", 0.0, False)
        momentum = real_number(momentum, "momentum", 0.0, True, 1.0)
        weight_decay = real_number(weight_decay, "weight_decay", 0.0, True)
        X, Y = self._pair(X, y)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError("validation_data must be a pair (X_val, y_val), got %s"
                                % type(validation_data).__name__)
            X_val, Y_val = self._pair(*validation_data, x_name="validation X",
                                      y_name="validation y")

        rng = np.random.default_rng(seed)
        batch_size = min(batch_size, X.shape[0])  # a workspace no larger than the data
        workspace = self._workspace(batch_size)
        no_order = np.empty(0, dtype=np.int64)
        history = History()
        for epoch in range(1, epochs + 1):
            before = (self.params.copy(), self.velocity.copy())
            order = rng.permutation(X.shape[0]) if shuffle else no_order
            start = time.perf_counter()
            loss = kernels.train_epoch(X, Y, self.params, self.grads, self.velocity,
                                       self.sizes, self.acts, batch_size, lr, momentum,
                                       weight_decay, order, workspace)
            seconds = time.perf_counter() - start
            if not np.isfinite(loss) or not np.isfinite(self.params).all():
                self.params[...], self.velocity[...] = before
                raise DivergedError(
                    "training diverged in epoch %d: the loss became NaN or inf (lr=%g is "
                    "probably too large); params hold the values from the start of epoch %d"
                    % (epoch, lr, epoch), epoch, history)
            history.loss.append(float(loss))
            history.seconds.append(seconds)
            line = "epoch %d/%d  loss %.6g" % (epoch, epochs, loss)
            if validation_data is not None:
                history.val_loss.append(self._mse(X_val, Y_val))
                line += "  val_loss %.6g" % history.val_loss[-1]
            if verbose:
                print("%s  %.2fs  %.0f samples/s" % (line, seconds, X.shape[0] / seconds),
                      flush=True)
        return history

    # ------------------------------------------------------------------ evaluation

    def _predict_checked(self, X):
        out = np.empty((X.shape[0], self.n_outputs), dtype=self.dtype)
        batch = min(EVAL_BATCH, X.shape[0])
        kernels.predict_into(X, self.params, self.sizes, self.acts, out, batch,
                             self._workspace(batch))
        return out

    def _mse(self, X, Y):
        return float(kernels.mse_loss(self._predict_checked(X), Y))

    def predict(self, X):
        """The network's outputs, shape (N, n_L), in the network's dtype."""
        return self._predict_checked(self._inputs(X))

    def loss(self, X, y):
        """The MSE cost ``C = sum ||y_i - a_i||^2 / (2N)`` over all rows (MATH.md)."""
        return self._mse(*self._pair(X, y))

    def gradients(self, X, y):
        """The full-batch gradient ``dC/dTheta`` (P,), in the layout of ``params``.

        Also left in ``self.grads``.
        """
        X, Y = self._pair(X, y)
        batch = min(EVAL_BATCH, X.shape[0])
        kernels.loss_and_gradient(X, Y, self.params, self.grads, self.sizes, self.acts,
                                  batch, self._workspace(batch))
        return self.grads.copy()

    # ------------------------------------------------------------------ files

    def save(self, path):
        """Write the network to ``path`` as an .npz file (no pickle), atomically."""
        persistence.save(self, path)

    @classmethod
    def load(cls, path):
        """Read a network written by ``save``; raises a clear error for a missing or bad file."""
        state = persistence.load(path)
        net = cls(state["layer_sizes"], hidden=state["hidden"], output=state["output"],
                  dtype=state["dtype"])
        net.params[...] = state["params"]
        net.velocity[...] = state["velocity"]
        return net
