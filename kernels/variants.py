"""The variants of every kind, one table each: activations, losses, optimizers, schedules.

Compiled code knows a variant by a small integer code; the model layer and the command
line know it by name. Both read these tables, so adding a variant is its kernel (a branch
on the code where the formula lives), one row here and one test row:

- an activation: ``_activate`` and ``_derivative_from_output`` in ``kernels/activations.py``
  (and the NumPy twin in ``kernels/reference.py``); one whose derivative needs ``z`` (not
  only ``a = sigma(z)``) sets ``needs_z`` and ``_derivative_from_input`` instead;
- a loss: a row function in ``kernels/loss.py`` called by ``_output_delta``;
- an optimizer: a sweep in ``kernels/optim.py`` called by ``_optimizer_step``;
- a schedule: its formula below.

Codes are positions in their table: never reorder a table (saved models store names, and
checkpoints store the codes' meaning through the names too, but user code may hold codes).
"""

import math
from typing import NamedTuple

from .errors import InvalidValueError


class Activation(NamedTuple):
    code: int
    name: str
    formula: str         # sigma(z)
    derivative: str      # sigma'(z) written with the layer's output a = sigma(z)
    he_init: bool        # weights drawn with He (rectifiers) rather than Glorot scaling
    # sigma'(z) is no function of a = sigma(z) (GELU, SiLU: not monotonic, so two z share an
    # a): the backward sweep needs z itself, which the compiled epoch does not keep
    # (kernels/activations.py, "Activations whose derivative needs z")
    needs_z: bool = False


class Loss(NamedTuple):
    code: int
    name: str
    output: str          # the model output layer it trains: "any" activation, or one name
    target: str          # "values" (any real), "classes" (one-hot / labels), "binary" (0..1),
    #                      "counts" (any real >= 0: rates, counts)
    takes_logits: bool   # computed from the last layer's pre-activation (identity layer)
    classifier: bool     # predict() returns labels
    default: bool = True  # the loss its ``output`` trains with unless another is named


class OptimizerVariant(NamedTuple):
    code: int
    name: str
    state_vectors: int   # flat vectors of state per parameter vector (velocity; m and v)
    step: str            # the update, per element, with g the gradient


class Hyperparameter(NamedTuple):
    name: str
    default: object      # None: no default (the caller must give it)
    low: float           # the interval of valid values; NaN is outside every interval
    low_closed: bool
    high: float
    high_closed: bool
    optimizers: tuple    # the optimizers that read it
    help: str

    @property
    def is_flag(self):
        """True for a switch (its default a bool), False for a number."""
        return isinstance(self.default, bool)

    def cast(self, value):
        """``value`` as the type the compiled ``Optimizer`` record holds: bool or float."""
        return bool(value) if self.is_flag else float(value)


class Schedule(NamedTuple):
    name: str
    formula: str


IDENTITY, RELU, TANH, SIGMOID, LEAKY_RELU, GELU, SILU = range(7)

#: Slope of leaky_relu for negative inputs.
LEAKY_SLOPE = 0.01

ACTIVATION_TABLE = (
    Activation(IDENTITY, "identity", "z", "1", False),
    Activation(RELU, "relu", "max(z, 0)", "1 if a > 0 else 0", True),
    Activation(TANH, "tanh", "tanh(z)", "1 - a**2", False),
    Activation(SIGMOID, "sigmoid", "1 / (1 + exp(-z))", "a (1 - a)", False),
    Activation(LEAKY_RELU, "leaky_relu", "z if z > 0 else 0.01 z", "1 if a > 0 else 0.01",
               True),
    # The exact (erf) GELU of Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016,
    # arXiv:1606.08415 (PyTorch's nn.GELU() default, approximate="none"), not the tanh form.
    Activation(GELU, "gelu", "z Phi(z) = z (1 + erf(z / sqrt 2)) / 2",
               "Phi(z) + z phi(z) (from z)", True, needs_z=True),
    # SiLU (swish-1): Elfwing, Uchibe & Doya, "Sigmoid-Weighted Linear Units", 2018,
    # arXiv:1702.03118; PyTorch's nn.SiLU.
    Activation(SILU, "silu", "z s(z) = z / (1 + exp(-z))",
               "s(z) (1 + z (1 - s(z))) (from z)", True, needs_z=True),
)

MSE, SOFTMAX_CE, SIGMOID_BCE, POISSON, HUBER, ABSOLUTE_ERROR, QUANTILE = range(7)

#: Huber's threshold ``delta``: quadratic within ``|a - y| <= delta``, linear beyond.
#: Fixed at 1, the default of PyTorch's ``nn.HuberLoss(delta=1.0)`` (Huber, "Robust
#: Estimation of a Location Parameter", Ann. Math. Statist. 35, 1964, with ``k = delta``).
#: ``MLP`` trains a regression on standardized targets, so this is one target standard
#: deviation; another threshold is a target scaled by ``1 / delta`` (the cost is then
#: ``delta**-2`` times Huber's with that ``delta``, the same minimiser).
HUBER_DELTA = 1.0

#: The quantile loss's level ``q`` travels in its code. Compiled code receives one value
#: for the loss, the ``Network`` record's int ``loss``, which the epoch
#: (``kernels/loop.py``) checks against ``N_LOSSES`` and hands unchanged to
#: ``_output_delta``; a parameter carried in the code reaches the row function with no
#: new argument on the hot path, no change to the epoch and no recompilation per level.
#: Level ``q = k / QUANTILE_STEPS`` (k = 1 .. QUANTILE_STEPS - 1) has code
#: ``QUANTILE + k - 1`` (``quantile_code``), so the quantile codes fill the end of the
#: code range: ``QUANTILE`` stays the last row of ``LOSS_TABLE`` and a new loss goes before
#: it (saved models store the loss name and its level, never the code).
QUANTILE_STEPS = 10_000

LOSS_TABLE = (
    Loss(MSE, "mse", "any", "values", False, False),
    Loss(SOFTMAX_CE, "cross_entropy", "softmax", "classes", True, True),
    Loss(SIGMOID_BCE, "binary_cross_entropy", "sigmoid", "binary", True, True),
    # scikit-learn's MLPRegressor(loss="poisson"): a log link, predictions exp(z)
    Loss(POISSON, "poisson", "exp", "counts", True, False),
    # scikit-learn's gradient boosting names; all on an identity output (z = a)
    Loss(HUBER, "huber", "identity", "values", True, False, default=False),
    Loss(ABSOLUTE_ERROR, "absolute_error", "identity", "values", True, False, default=False),
    Loss(QUANTILE, "quantile", "identity", "values", True, False, default=False),
)

SGD, ADAM, ADAMW = range(3)

OPTIMIZER_TABLE = (
    OptimizerVariant(SGD, "sgd", 1, "v = mu v + g + lambda theta; theta -= lr (g + mu v if "
                     "nesterov else v); plain theta -= lr g when mu = lambda = 0"),
    OptimizerVariant(ADAM, "adam", 2, "g += lambda theta; m = b1 m + (1-b1) g; v = b2 v + "
                     "(1-b2) g^2; theta -= lr m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps)"),
    OptimizerVariant(ADAMW, "adamw", 2, "theta *= 1 - lr lambda; then Adam's step without lambda"),
)

_ALL = ("sgd", "adam", "adamw")
_ADAMS = ("adam", "adamw")
_INF = float("inf")

#: Every optimizer hyperparameter, declared once: the kernels' factory
#: (``kernels.optimizer``), ``MLP.fit``, the estimators and the command line read it.
HYPERPARAMETER_TABLE = (
    Hyperparameter("lr", None, 0.0, False, _INF, False, _ALL,
                   "step size (the base rate that schedules scale)"),
    Hyperparameter("momentum", 0.0, 0.0, True, 1.0, False, ("sgd",),
                   "SGD momentum (heavy ball); 0 for none"),
    Hyperparameter("weight_decay", 0.0, 0.0, True, _INF, False, _ALL,
                   "L2 penalty added to the gradient (decoupled for adamw)"),
    Hyperparameter("nesterov", False, 0, True, 1, True, ("sgd",),
                   "PyTorch's Nesterov form of SGD momentum"),
    Hyperparameter("beta1", 0.9, 0.0, True, 1.0, False, _ADAMS,
                   "decay of Adam's first-moment average"),
    Hyperparameter("beta2", 0.999, 0.0, True, 1.0, False, _ADAMS,
                   "decay of Adam's second-moment average"),
    Hyperparameter("eps", 1e-8, 0.0, False, _INF, False, _ADAMS,
                   "added to Adam's denominator"),
)
HYPERPARAMETERS = {h.name: h for h in HYPERPARAMETER_TABLE}

SCHEDULE_TABLE = (
    Schedule("constant", "lr"),
    Schedule("step", "lr * gamma ** (epoch // step_size)"),
    Schedule("cosine", "min_lr + (lr - min_lr) (1 + cos(pi epoch / epochs)) / 2"),
)

#: name -> code, the tables as the model layer and command line look names up.
ACTIVATIONS = {a.name: a.code for a in ACTIVATION_TABLE}
LOSSES = {c.name: c.code for c in LOSS_TABLE}
OPTIMIZERS = {o.name: o.code for o in OPTIMIZER_TABLE}
SCHEDULES = tuple(s.name for s in SCHEDULE_TABLE)

N_ACTIVATIONS = len(ACTIVATION_TABLE)
#: One more than the largest cost code: the table's codes, then the quantile levels'.
N_LOSSES = QUANTILE + QUANTILE_STEPS - 1
N_OPTIMIZERS = len(OPTIMIZER_TABLE)


def loss_named(name):
    """The ``Loss`` row of a loss name."""
    return LOSS_TABLE[LOSSES[name]]


def quantile_code(quantile):
    """The cost code of the quantile (pinball) loss at level ``quantile``, a multiple of
    ``1 / QUANTILE_STEPS`` (0.0001) in (0, 1); ``InvalidValueError`` naming ``quantile``
    otherwise."""
    try:
        q = float(quantile)
    except (TypeError, ValueError):
        q = math.nan
    if isinstance(quantile, (bool, str)) or not 0 < q < 1:
        raise InvalidValueError("quantile must be a number in (0, 1), got %r" % (quantile,))
    k = round(q * QUANTILE_STEPS)
    if abs(k - q * QUANTILE_STEPS) > 1e-6:
        raise InvalidValueError("quantile must be a multiple of %g (the levels the loss code "
                                "carries), got %r" % (1 / QUANTILE_STEPS, quantile))
    return QUANTILE + k - 1


def quantile_level(code):
    """The level q of a quantile cost code (``quantile_code``'s inverse)."""
    return (code - QUANTILE + 1) / QUANTILE_STEPS


def default_loss(output):
    """The loss an output layer trains with unless one is named: the loss paired with it,
    else MSE."""
    for loss in LOSS_TABLE:
        if loss.output == output and loss.default:
            return loss.name
    return "mse"


def learning_rate(schedule, epoch, lr, epochs, step_size, gamma, min_lr):
    """The rate of 0-based ``epoch`` under a schedule of ``SCHEDULE_TABLE``."""
    if schedule == "step":
        return lr * gamma ** (epoch // step_size)
    if schedule == "cosine":
        return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs))
    if schedule == "constant":
        return lr
    raise InvalidValueError("schedule must be one of %s, got %r" % (", ".join(SCHEDULES), schedule))
