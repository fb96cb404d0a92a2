"""asv: every public kernel against its NumPy twin, at small, medium and large sizes.

One class per kernel, generated from the table below; each times ``impl`` in
("numpy", "numba") on the same arrays. Compilation happens in ``setup``.
"""

import numpy as np

from numba_dense import kernels
from numba_dense.kernels import reference

# (rows m, inputs n_in, outputs n_out)
SIZES = {"small": (32, 64, 16), "medium": (256, 512, 256), "large": (1024, 1024, 1024)}


def _arrays(size):
    m, n_in, n_out = SIZES[size]
    rng = np.random.default_rng(0)

    def f(*shape):
        return rng.standard_normal(shape, dtype=np.float32)
    # A network n_in-n_out-n_out (ReLU, identity) for the whole-batch kernels.
    network = kernels.network([n_in, n_out, n_out], [kernels.RELU, kernels.IDENTITY])
    n_params = int(kernels.param_count(network.sizes))
    net = dict(network=network, net_params=f(n_params) * np.float32(0.05), net_grads=f(n_params),
               workspace=np.empty(int(kernels.workspace_size(network.sizes, m)), np.float32))
    return dict(X=f(m, n_in), W=f(n_out, n_in), b=f(n_out), out=f(m, n_out), delta=f(m, n_out),
                A=np.maximum(f(m, n_out), 0), G=f(m, n_out), dW=f(n_out, n_in), db=f(n_out),
                grad_in=f(m, n_in), params=f(n_out * n_in), grads=f(n_out * n_in),
                velocity=f(n_out * n_in), Y=f(m, n_out), moment1=f(n_out * n_in) * 0.01,
                moment2=np.abs(f(n_out * n_in)) * 0.01,
                onehot=np.eye(n_out, dtype=np.float32)[rng.integers(0, n_out, m)],
                Y01=rng.uniform(0, 1, (m, n_out)).astype(np.float32), **net)


# kernel name -> the argument list, built from the arrays of one size
CALLS = {
    "dense_forward": lambda a: (a["X"], a["W"], a["b"], a["out"], True),
    "relu_mask": lambda a: (a["A"], a["G"]),
    "accumulate_gradients": lambda a: (a["delta"], a["X"], a["dW"], a["db"], 0.01, True),
    "backprop_input": lambda a: (a["delta"], a["W"], a["grad_in"]),
    "sgd_update": lambda a: (a["params"], a["grads"], 1e-6),
    "sgd_momentum_update": lambda a: (a["params"], a["grads"], a["velocity"], 1e-6, 0.9, 0.0),
    # one Adam step (the record's state is [m, v]; steps 9 taken, so t = 10)
    "optimizer_step": lambda a: (a["params"], a["grads"], kernels.optimizer(
        "adam", a["params"], 1e-6, state=np.concatenate([a["moment1"], a["moment2"]]), step=9)),
    "mse_loss": lambda a: (a["out"], a["Y"]),
    "mse_grad": lambda a: (a["out"], a["Y"], a["G"]),
    "activation_forward": lambda a: (a["out"], kernels.TANH),
    "activation_backward": lambda a: (a["A"], a["G"], kernels.RELU),
    "softmax_cross_entropy": lambda a: (a["out"], a["onehot"]),
    "softmax_cross_entropy_grad": lambda a: (a["out"], a["onehot"], a["G"]),
    "sigmoid_binary_cross_entropy": lambda a: (a["out"], a["Y01"]),
    "sigmoid_binary_cross_entropy_grad": lambda a: (a["out"], a["Y01"], a["G"]),
    "softmax": lambda a: (a["out"], a["G"]),
    "sigmoid": lambda a: (a["out"], a["G"]),
    "predict_into": lambda a: (a["X"], a["net_params"], a["network"], a["out"],
                               a["X"].shape[0], a["workspace"]),
    "loss_and_gradient": lambda a: (a["X"], a["Y"], a["net_params"], a["net_grads"],
                                    a["network"], a["X"].shape[0], a["workspace"]),
    "batch_gradient": lambda a: (a["X"], a["Y"], a["net_params"], a["net_grads"],
                                 a["network"], a["X"].shape[0], a["workspace"], 1.0),
    "dropout_gradient": lambda a: (a["X"], a["Y"], a["net_params"], a["net_grads"],
                                   a["network"], kernels.dropout(
                                       kernels.batches(a["X"].shape[0]),
                                       np.full(len(a["network"].sizes) - 2, 0.1), 0),
                                   a["workspace"], 1.0),
    "dataset_cost": lambda a: (a["X"], a["Y"], a["net_params"], a["network"],
                               a["X"].shape[0], a["workspace"]),
}


class _KernelBenchmark:
    params = [["numpy", "numba"], list(SIZES)]
    param_names = ["impl", "size"]
    kernel = None

    def setup(self, impl, size):
        module = kernels if impl == "numba" else reference
        self.fn = getattr(module, self.kernel)
        self.args = CALLS[self.kernel](_arrays(size))
        self.fn(*self.args)  # compile outside the timing

    def time_kernel(self, impl, size):
        self.fn(*self.args)


for _name in CALLS:
    _cls = "".join(part.title() for part in _name.split("_"))
    globals()[_cls] = type(_cls, (_KernelBenchmark,), {"kernel": _name})
