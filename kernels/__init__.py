"""numba-dense kernels: @njit functions for training dense networks on the CPU.

Every public function here is a Numba ``@njit`` function: call it from Python or from
your own ``@njit`` code. Arrays are float32 or float64 (one dtype per call), C-contiguous,
samples in rows, ``W`` of shape ``(n_out, n_in)``; outputs are written into the arrays you
pass. A network, an optimizer and an epoch's minibatches travel as records
(``network``, ``optimizer``, ``batches`` make them). The whole-network kernels also take
``X`` as a ``CSR`` record (``csr(matrix)`` of a ``scipy.sparse`` matrix), whose first
layer then costs what its non-zeros cost; and ``network`` as an ``Embeddings`` record
(``embeddings(network, columns, cardinalities, dims)``), whose first layer reads learned
embeddings of X's category-code columns. ``kernels.reference`` holds a NumPy twin of each
kernel with the same signature.
"""

from numba.core import config as _numba_config

if _numba_config.DISABLE_JIT:
    # With the JIT off, @njit returns plain functions, but the kernels are built of
    # @overload, @intrinsic and typed records that exist only in compiled code: refuse
    # here in one line rather than fail on the first kernel's decoration.
    raise ImportError("numba_dense needs Numba's compiler, but NUMBA_DISABLE_JIT=%s is set: "
                      "unset it (to step through the computations in a debugger, use the "
                      "kernels' NumPy twins in numba_dense.kernels.reference: plain Python)"
                      % _numba_config.DISABLE_JIT)

from ._blas import CORETYPE_DECISION  # noqa: E402,F401  (first: arranges SciPy's BLAS)
from .activations import (ACTIVATIONS, GELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, SILU, TANH,
                          activation_backward, activation_backward_z, activation_forward,
                          relu_mask)
from .dense import backprop_input, dense_forward
from .grads import accumulate_gradients
from .errors import InvalidTypeError, InvalidValueError, NumbaDenseError, TooLargeError
from .embedding import Embeddings, embedding_dim, embeddings, table_size
from .info import blas_summary
from .loop import (batch_gradient, dataset_cost, dropout_gradient, epoch_streaming,
                   layer_offsets, loss_and_gradient, param_count, predict_into, train_epoch,
                   train_epoch_batched, workspace_size)
from .loss import (ABSOLUTE_ERROR, HUBER, LOSSES, MSE, POISSON, QUANTILE, SIGMOID_BCE,
                   SOFTMAX_CE, absolute_error_loss, absolute_error_loss_grad, huber_loss,
                   huber_loss_grad, mse_grad, mse_loss, quantile_loss, quantile_loss_grad,
                   poisson_loss, poisson_loss_grad, sigmoid, sigmoid_binary_cross_entropy,
                   sigmoid_binary_cross_entropy_grad, softmax, softmax_cross_entropy,
                   softmax_cross_entropy_grad)
from .parallel import shard_plan, train_epoch_parallel
from .optim import (ADAM, ADAMW, OPTIMIZERS, SGD, Optimizer, optimizer, optimizer_step,
                    sgd_momentum_update, sgd_update)
from .predict import predict_rows, predict_transformed, predict_workspace_size
from .records import Batches, Dropout, Network, batches, dropout, network
from .sparse import CSR, csr, sparse_forward, sparse_weight_gradient
from .threads import blas_threads, blas_threads_for
from .variants import (ACTIVATION_TABLE, HYPERPARAMETER_TABLE, LOSS_TABLE, OPTIMIZER_TABLE,
                       SCHEDULE_TABLE, SCHEDULES, quantile_code)

__all__ = [
    "ACTIVATIONS", "IDENTITY", "RELU", "TANH", "SIGMOID", "LEAKY_RELU", "GELU", "SILU",
    "LOSSES", "MSE", "SOFTMAX_CE", "SIGMOID_BCE", "POISSON", "HUBER", "ABSOLUTE_ERROR",
    "QUANTILE", "quantile_code", "OPTIMIZERS", "SGD", "ADAM", "ADAMW",
    "SCHEDULES", "ACTIVATION_TABLE", "LOSS_TABLE", "OPTIMIZER_TABLE", "SCHEDULE_TABLE",
    "HYPERPARAMETER_TABLE", "NumbaDenseError", "InvalidValueError", "InvalidTypeError",
    "TooLargeError", "Network", "Optimizer", "Batches", "Dropout", "network", "optimizer",
    "batches", "dropout", "Embeddings", "embeddings", "embedding_dim", "table_size",
    "dense_forward", "relu_mask", "activation_forward", "activation_backward",
    "activation_backward_z",
    "accumulate_gradients", "backprop_input", "sgd_update", "sgd_momentum_update",
    "optimizer_step", "epoch_streaming",
    "mse_loss", "mse_grad", "softmax_cross_entropy", "softmax_cross_entropy_grad",
    "sigmoid_binary_cross_entropy", "sigmoid_binary_cross_entropy_grad", "poisson_loss",
    "poisson_loss_grad", "huber_loss", "huber_loss_grad", "absolute_error_loss",
    "absolute_error_loss_grad", "quantile_loss", "quantile_loss_grad", "softmax", "sigmoid",
    "train_epoch", "train_epoch_batched", "train_epoch_parallel", "shard_plan", "predict_into",
    "loss_and_gradient", "batch_gradient",
    "dropout_gradient",
    "dataset_cost",
    "param_count", "layer_offsets", "workspace_size", "blas_summary", "blas_threads",
    "blas_threads_for", "CSR", "csr", "sparse_forward", "sparse_weight_gradient",
    "predict_rows", "predict_transformed", "predict_workspace_size",
]
