"""Every training option, declared once: its name, default, bound, help and when it applies.

``MLP.fit`` takes these (its signature is made from ``FIT_OPTIONS``), the command line
makes its flags from them (``add_arguments``) and the scikit-learn estimators check their
own names for the optimizer's hyperparameters against the same bounds (``SKLEARN_NAMES``).
The optimizer's hyperparameters themselves are rows of ``kernels.HYPERPARAMETER_TABLE``:
a new one there (with its sweep in ``kernels/optim.py``) reaches all three without an edit
here.

To add an option: one row below, and the code that reads it (``Settings`` for
the arithmetic, ``DataOptions`` for where rows come from, ``RunOptions``
for what happens around training).
"""

import inspect
import math
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from ...kernels.errors import InvalidTypeError, InvalidValueError
from ... import kernels

from ..data.validation import boolean, choice, integer, plain, real_number
from .threads import check_jobs


class Option(NamedTuple):
    name: str            # MLP.fit's keyword; the command line's flag is --name-with-dashes
    default: object      # MLP.fit's default
    check: object        # value -> the value to use, or a one-line error naming ``name``
    help: str
    applies: tuple = None  # (setting, values): used only where that setting is one of values
    cli: object = None   # the command line's flag: None for none, else its default
    cli_type: object = None  # the flag's argparse type, where not a count or a float


# ----------------------------------------------------------------------------- checks

def _count(minimum):
    return lambda value, name: integer(value, name, minimum)


def _optional_count(minimum):
    return lambda value, name: None if value is None else integer(value, name, minimum)


def _real(low, low_closed, high=None):
    return lambda value, name: real_number(value, name, low, low_closed, high)


def _one_of(options):
    return lambda value, name: choice(value, name, options)


def _flag(value, name):
    return boolean(value, name)


def _dropout(value, name):
    """One dropout rate in [0, 1) for every hidden layer, or a list of one per hidden layer
    (a tuple of floats; its length is checked against the network by ``dropout_rates``)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        rates = tuple(real_number(v, "%s[%d]" % (name, i), 0.0, True, 1.0)
                      for i, v in enumerate(np.asarray(value, dtype=object).ravel()))
        if not rates:
            raise InvalidValueError("%s must be a rate or a list of one rate per hidden layer, "
                                    "got an empty list" % name)
        return rates
    return real_number(value, name, 0.0, True, 1.0)


def dropout_rates(dropout, n_hidden):
    """The (n_hidden,) float64 rates of a checked ``dropout`` option (empty when every rate
    is 0): ``InvalidValueError`` for a list whose length is not ``n_hidden``, or for a rate
    above 0 on a network without hidden layers."""
    rates = np.array(dropout if isinstance(dropout, tuple) else [dropout] * n_hidden,
                     dtype=np.float64)
    if isinstance(dropout, tuple) and len(dropout) != n_hidden:
        raise InvalidValueError("dropout must hold one rate per hidden layer (%d), got %d: %s"
                                % (n_hidden, len(dropout), plain(list(dropout))))
    if n_hidden == 0 and dropout != 0:
        raise InvalidValueError("dropout applies to hidden layers; this network has none, "
                                "got dropout=%s" % plain(dropout))
    return rates if rates.any() else np.empty(0, np.float64)


def cli_rates(text):
    """``--dropout``'s value: one rate (``0.1``) or one per hidden layer (``0.2,0.1``).
    Raises ``argparse.ArgumentTypeError`` (argparse prints it after the flag's name)."""
    try:
        parts = [float(t) for t in text.split(",")]
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(
            "expected a rate (0.2) or one rate per hidden layer (0.3,0.1), got %r" % text
        ) from None
    return parts[0] if len(parts) == 1 else tuple(parts)


def _optional_flag(value, name):
    """None or a bool (``progress``: None decides by the terminal)."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None if value is None else bool(value)
    raise InvalidTypeError("%s must be None, True or False, got %s" % (name, plain(value)))


def _seed(value, name):
    """A seed for np.random.default_rng that a checkpoint can hold: None or an int >= 0."""
    return None if value is None else integer(value, name, 0)


def _as_given(value, name):
    return value  # checked where it is used (paths, data, communicators)


def _hyperparameter_check(h):
    """The check of a row of ``kernels.HYPERPARAMETER_TABLE``, as the model's messages say it."""
    if h.is_flag:
        return _flag
    return _real(h.low, h.low_closed, None if math.isinf(h.high) else h.high)


#: MLP.fit's rate when none is given (the command line measured its own default).
DEFAULT_LR = 0.01
#: The command line's optimizer and rate, measured on real tables (docs/guide.md "Defaults").
CLI_OPTIMIZER, CLI_LR = "adam", 0.001
#: ... and its SGD momentum, used only with --optimizer sgd.
CLI_MOMENTUM = 0.9


def _hyperparameter_options():
    """An ``Option`` per row of ``kernels.HYPERPARAMETER_TABLE``."""
    options = []
    every = tuple(kernels.OPTIMIZERS)
    for h in kernels.HYPERPARAMETER_TABLE:
        default = DEFAULT_LR if h.name == "lr" else h.default
        cli = {"lr": CLI_LR, "momentum": CLI_MOMENTUM}.get(h.name, default)
        applies = None if set(h.optimizers) == set(every) else ("optimizer", h.optimizers)
        options.append(Option(h.name, default, _hyperparameter_check(h), h.help, applies, cli))
    return options


_HYPERPARAMETERS = _hyperparameter_options()

#: The options of ``MLP.fit``, in the order its signature lists them.
FIT_OPTIONS = tuple([
    Option("epochs", 10, _count(0), "passes over the training rows"),
    Option("batch_size", 32, _count(1), "rows per step", cli=256),
    Option("optimizer", "sgd", _one_of(tuple(kernels.OPTIMIZERS)),
           "sgd, adam or adamw (kernels.OPTIMIZER_TABLE)", cli=CLI_OPTIMIZER),
] + _HYPERPARAMETERS + [
    Option("schedule", "constant", _one_of(kernels.SCHEDULES),
           "learning-rate schedule (kernels.SCHEDULE_TABLE)", cli="constant"),
    Option("step_size", 10, _count(1), "epochs per step", ("schedule", ("step",)), cli=10),
    Option("gamma", 0.1, _real(0.0, False), "factor per step", ("schedule", ("step",)),
           cli=0.1),
    Option("min_lr", 0.0, _real(0.0, True), "final rate", ("schedule", ("cosine",)), cli=0.0),
    Option("dropout", 0.0, _dropout,
           "share of each hidden layer's units dropped in training: one rate in [0, 1), or "
           "one per hidden layer", cli=0.0, cli_type=cli_rates),
    Option("shuffle", True, _flag, "reshuffle the rows every epoch"),
    Option("seed", None, _seed, "seed of the shuffling (None: fresh entropy)"),
    Option("validation_data", None, _as_given, "(X_val, y_val) for val_loss"),
    Option("validation_fraction", 0.0, _real(0.0, True, 1.0),
           "share of rows held out for val_loss (the last ones, or see validation_seed)"),
    Option("validation_seed", None, _seed,
           "None: validation_fraction holds out the last rows; an int: rows drawn at random "
           "with this seed", ("validation_fraction", None)),
    Option("early_stopping", None, _optional_count(1),
           "stop after this many epochs without a better val_loss; keep the best"),
    Option("checkpoint", None, _as_given, "path of a checkpoint file"),
    Option("checkpoint_every", 1, _count(1), "epochs between checkpoints",
           ("checkpoint", None)),
    Option("resume", False, _flag, "continue from the checkpoint when it exists"),
    Option("chunk_rows", None, _optional_count(1), "rows per chunk when streaming from disk"),
    Option("standardize_target", None, _as_given,
           "train a regression on standardized targets (None: yes)"),
    Option("verbose", False, _flag, "a line per epoch"),
    Option("progress", None, _optional_flag, "a progress bar (None: when verbose on a terminal)"),
    Option("comm", None, _as_given, "an mpi4py communicator for data-parallel training"),
    Option("n_jobs", None, check_jobs,
           "threads one network's minibatch steps are split between, where that gains "
           "(None or -1: the cores no other process is running on); the same results on "
           "any count"),
])
BY_NAME = {o.name: o for o in FIT_OPTIONS}
#: The names of the optimizer's hyperparameters (``kernels.HYPERPARAMETER_TABLE``).
HYPERPARAMETERS = tuple(h.name for h in kernels.HYPERPARAMETER_TABLE)
#: What ``partial_fit`` takes: one epoch's step options.
PARTIAL_FIT_OPTIONS = ("batch_size", "optimizer", "dropout") + HYPERPARAMETERS


def signature(names=None, weights=False):
    """``inspect.Signature`` of ``fit(self, X, y, *, option=default, ...)`` (``names``: only
    these options; ``weights``: ``sample_weight=None, class_weight=None`` after y), so
    that help() and editors show every argument with its default."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD), P("X", P.POSITIONAL_OR_KEYWORD),
              P("y", P.POSITIONAL_OR_KEYWORD)]
    if weights:
        params += [P(name, P.POSITIONAL_OR_KEYWORD, default=None)
                   for name in ("sample_weight", "class_weight")]
    params += [P(o.name, P.KEYWORD_ONLY, default=o.default) for o in FIT_OPTIONS
               if names is None or o.name in names]
    return inspect.Signature(params)


def checked(given, allowed=None, function="fit"):
    """Every option of ``FIT_OPTIONS`` (``allowed``: those names only) with its value: the
    given ones checked, the others their defaults. An unknown name raises ``TypeError`` as
    Python does; a bad value the option's one-line error; an option given away from its
    default where it does not apply (``applicable``) a ``ValueError``."""
    names = BY_NAME if allowed is None else allowed
    for name in given:
        if name not in names:
            raise InvalidTypeError("%s() got an unexpected keyword argument %r" % (function, name))
    values = {}
    for o in FIT_OPTIONS:
        if o.name in given:
            values[o.name] = o.check(given[o.name], o.name)
        else:
            values[o.name] = o.default
    applicable(values)
    if values["schedule"] == "cosine" and values["min_lr"] > values["lr"]:
        raise InvalidValueError("min_lr must be <= lr for schedule='cosine' "
                                "(the rate falls from lr to min_lr), "
                                "got min_lr=%r > lr=%r" % (values["min_lr"], values["lr"]))
    return values


def split(values):
    """(``Settings``, ``DataOptions``, ``RunOptions``) of the
    checked values of ``checked``."""
    settings = Settings(
        **{name: values[name] for name in ("epochs", "batch_size", "lr", "schedule",
                                           "step_size", "gamma", "min_lr", "shuffle", "seed",
                                           "early_stopping", "optimizer", "dropout")},
        hyperparameters={name: values[name] for name in HYPERPARAMETERS if name != "lr"},
        validation=([values["validation_fraction"], values["validation_seed"]]
                    if values["validation_fraction"] else None))
    data = DataOptions(**{name: values[name] for name in (
        "validation_data", "validation_fraction", "validation_seed", "chunk_rows",
        "standardize_target")})
    run = RunOptions(**{name: values[name] for name in (
        "checkpoint", "checkpoint_every", "resume", "verbose", "progress", "n_jobs")})
    return settings, data, run


def applies(option, values):
    """True when ``option`` (an ``Option``) is used with these settings (a mapping)."""
    if option.applies is None:
        return True
    setting, users = option.applies
    if users is None:  # used when the setting is given at all
        return values.get(setting) not in (None, "", False)
    return values.get(setting) in users


def applicable(values):
    """Refuse an option set away from its default where it would be ignored (momentum with
    adam, min_lr without cosine, checkpoint_every without checkpoint)."""
    for o in FIT_OPTIONS:
        if o.applies is None or values[o.name] == o.default or applies(o, values):
            continue
        setting, users = o.applies
        if users is None:
            needs = {"checkpoint": "=path", "validation_fraction": " > 0"}.get(setting, " set")
            raise InvalidValueError("%s=%s applies with %s%s; this fit has %s=%s"
                                    % (o.name, plain(values[o.name]), setting, needs, setting,
                                       plain(values[setting])))
        raise InvalidValueError("%s=%s applies to %s=%s; this fit uses %r"
                                % (o.name, plain(values[o.name]), setting,
                                   " or ".join(repr(u) for u in users), values[setting]))


# ----------------------------------------------------------------------------- command line

def flag(name):
    """The command line's flag of an option: ``--batch-size``."""
    return "--" + name.replace("_", "-")


def cli_options():
    """The options the command line makes flags of, from this table."""
    return [o for o in FIT_OPTIONS if o.cli is not None]


def add_arguments(parser, count_type):
    """Add a flag per ``cli_options()`` to an argparse parser; ``count_type(minimum)`` is the
    command line's type for counts."""
    for o in cli_options():
        text = o.help
        if o.applies is not None and o.applies[1] is not None:
            text += "; with %s %s only" % (flag(o.applies[0]), " or ".join(o.applies[1]))
        if isinstance(o.default, bool):
            parser.add_argument(flag(o.name), action="store_true", help=text)
            continue
        text += " (default %s)" % o.cli
        kwargs = {}
        if isinstance(o.cli, str):
            choices = (kernels.OPTIMIZERS if o.name == "optimizer" else kernels.SCHEDULES)
            kwargs["choices"] = list(choices)
        elif o.cli_type is not None:
            kwargs["type"] = o.cli_type
        elif isinstance(o.cli, int):
            kwargs["type"] = count_type(1)
        else:
            kwargs["type"] = float
        parser.add_argument(flag(o.name), default=o.cli, help=text, **kwargs)


def from_arguments(args):
    """The table's options as ``MLP.fit`` keywords from parsed arguments, those that do not
    apply to this run left out (the command line's --momentum default is sgd's only)."""
    values = {o.name: getattr(args, o.name) for o in cli_options()}
    return {name: value for name, value in values.items()
            if applies(BY_NAME[name], values)}


# ----------------------------------------------------------------------------- scikit-learn

#: The estimators' name of each hyperparameter (scikit-learn's), and the reverse.
SKLEARN_NAMES = {"lr": "learning_rate_init", "weight_decay": "alpha", "momentum": "momentum",
                 "nesterov": "nesterovs_momentum", "beta1": "beta_1", "beta2": "beta_2",
                 "eps": "epsilon"}


def sklearn_bounds(name):
    """(low, low_inclusive, high, high_inclusive) of a hyperparameter under its
    scikit-learn name, from ``kernels.HYPERPARAMETER_TABLE`` (high None: unbounded)."""
    ours = {v: k for k, v in SKLEARN_NAMES.items()}[name]
    h = kernels.variants.HYPERPARAMETERS[ours]
    low, high = (int(b) if float(b).is_integer() else b for b in (h.low, h.high))
    return low, h.low_closed, high, h.high_closed  # as scikit-learn writes them: [0, 1)


def hyperparameters_of(estimator):
    """The hyperparameters (ours, but ``lr``) an estimator trains with: those of its solver
    from its scikit-learn parameters, the others at their defaults (scikit-learn ignores
    momentum with solver='adam', and so does this)."""
    solver = estimator.solver
    values = {}
    for h in kernels.HYPERPARAMETER_TABLE:
        if h.name == "lr":
            continue
        value = getattr(estimator, SKLEARN_NAMES[h.name])
        values[h.name] = h.cast(value) if solver in h.optimizers else h.default
    if solver == "sgd":  # scikit-learn's Nesterov needs momentum to mean anything
        values["nesterov"] = values["nesterov"] and values["momentum"] > 0
    return values


# ----------------------------------------------------------------------------- records

@dataclass(kw_only=True)
class Settings:
    """The options of one ``fit`` that decide its arithmetic (checked again on resume).

    ``hyperparameters`` holds the optimizer's hyperparameters but ``lr`` (every row of
    ``kernels.HYPERPARAMETER_TABLE``, by name); each can also be read as an attribute
    (``settings.momentum``).
    """

    epochs: int
    batch_size: int
    lr: float
    schedule: str
    step_size: int
    gamma: float
    min_lr: float
    shuffle: bool
    seed: object
    early_stopping: object
    optimizer: str = "sgd"
    dropout: object = 0.0  # a rate, or a tuple of one per hidden layer (dropout_rates)
    hyperparameters: dict = field(default_factory=dict)
    # the rows held out for val_loss, as [validation_fraction, validation_seed] (None: no
    # fraction held out): a resumed run must hold out the same rows, or it would train on
    # rows the first part validated on
    validation: object = None

    def __post_init__(self):
        for h in kernels.HYPERPARAMETER_TABLE:
            if h.name != "lr":
                self.hyperparameters.setdefault(h.name, h.default)

    def __getattr__(self, name):
        hyperparameters = self.__dict__.get("hyperparameters", {})
        if name in hyperparameters:
            return hyperparameters[name]
        raise AttributeError(name)

    def learning_rate(self, epoch):
        """The rate of 0-based ``epoch`` under ``schedule`` (``kernels.SCHEDULE_TABLE``)."""
        return kernels.variants.learning_rate(self.schedule, epoch, self.lr, self.epochs,
                                              self.step_size, self.gamma, self.min_lr)

    def fingerprint(self):
        """The settings a resumed run must share with the run that wrote the checkpoint."""
        d = asdict(self)
        d.update(d.pop("hyperparameters"))
        if self.schedule != "cosine":  # only cosine depends on the total; others may extend
            d.pop("epochs")
        if not self.dropout:  # as checkpoints written before dropout existed
            d.pop("dropout")
        if d["validation"] is None:  # as checkpoints written before it was recorded
            d.pop("validation")
        return d

    def optimizer_for(self, net, lr):
        """The ``kernels.Optimizer`` of a step at rate ``lr`` on ``net``: its state is the
        network's ``velocity``, its step count a copy of ``net.step`` (``took_steps``
        brings it back)."""
        values = {h.name: h.cast(self.hyperparameters[h.name])
                  for h in kernels.HYPERPARAMETER_TABLE if h.name != "lr"}
        return kernels.Optimizer(code=kernels.OPTIMIZERS[self.optimizer], lr=float(lr),
                                 state=net.velocity, steps=np.array([net.step], np.int64),
                                 **values)


@dataclass
class DataOptions:
    """Where a fit's rows come from, besides X and y."""

    validation_data: object = None   # (X_val, y_val), or None
    validation_fraction: float = 0.0  # or hold out this fraction of the rows:
    validation_seed: object = None   # the last ones (None), or drawn with this seed
    chunk_rows: object = None        # rows per chunk when streaming from disk (None: ~32 MB)
    standardize_target: object = None  # None: for a regression (see model.data.targets)


@dataclass
class RunOptions:
    """What a fit does around its arithmetic: checkpoints and display."""

    checkpoint: object = None      # path of the checkpoint file, or None
    checkpoint_every: int = 1      # epochs between checkpoints
    resume: bool = False           # continue from the checkpoint when it exists
    verbose: bool = False          # a line per epoch
    progress: object = None        # a progress bar (None: when verbose on a terminal)
    n_jobs: object = None          # threads of a split epoch (model.training.threads)
