"""The command line: ``python -m numba_dense
{train,predict,evaluate,convert,export,search,tune}`` (also ``numba-dense``).

Data files: ``.npz`` holding arrays ``X`` and ``y``; ``.npy`` inputs with ``--target``
naming a ``.npy`` of targets (both streamed from disk, never loaded whole); or ``.csv``
with a header and ``--target-col`` (converted to temporary .npy files first). Errors print
one line, ``error: ...``, and exit with status 2; Ctrl-C during training keeps what was
trained (see ``train``) and exits with status 130, SIGTERM (a scheduler's time limit,
``timeout``, ``docker stop``) the same with status 143. Two runs never write one output
file: the second is refused at its start (``paths.claimed``).
"""

import argparse
import os
import re
import signal
import sys
import tempfile
import time
import warnings

import numpy as np

from ...kernels.errors import InvalidValueError, NumbaDenseError
from ... import kernels
from ...kernels import tuning

from ..data import convert as convert_mod
from ..data import sources, datasets, tabular
from ..training import progress
from ..training import options as fit_options
from ..training.distributed import mpi_max, shard, world
from ..network.ensemble import Ensemble, EnsembleInterrupted, load_model, member_path
from ..network.embeddings import widths
from ..network.mlp import MLP, TRAINABLE_OUTPUTS
from ..data.paths import atomic_write, check_outputs, claimed
from ..training.loop import DivergedError
from ..training.signals import (TrainingInterrupted, raise_on_sigterm, restore_handlers,
                                sigint_ignored)


#: The default training length: at most this many rows trained on (epochs times rows) ...
EPOCH_ROWS = 4_000_000
#: ... and between this many epochs (small tables need many, large ones few).
EPOCH_RANGE = (10, 200)
#: Epochs without a better validation loss before training stops, by default.
PATIENCE = 10


def default_epochs(n_rows):
    """The epochs of a run given no --epochs: EPOCH_ROWS rows' worth, within EPOCH_RANGE."""
    low, high = EPOCH_RANGE
    return int(min(high, max(low, round(EPOCH_ROWS / max(n_rows, 1)))))


class UsageError(InvalidValueError):
    """A problem with the command line's options (reported like any other error)."""


def _widths(text):
    parts = [part.strip() for part in text.split(",")]
    if text.strip() == "":
        return []  # no hidden layer: a linear (or logistic) model
    try:
        widths = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers "
                                         "(layer widths), got %r" % text)
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError("layer widths must be at least 1, got %r" % text)
    return widths


def _one_character(text):
    """An argparse type for --delimiter (``tabular.check_delimiter``)."""
    try:
        return tabular.check_delimiter(text, "it")
    except InvalidValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)[len("it "):])


class _ColumnList(list):
    """Column names of a flag, split at commas; ``text``: the flag's text as given, for a
    column whose own name holds a comma (``_table_target``)."""

    text = None


def _columns(text):
    names = _ColumnList(part.strip() for part in text.split(",") if part.strip())
    names.text = text
    return names


# ----------------------------------------------------------------------------- data

def load_data(path, target=None, target_cols=None, need_targets=True, workdir=None):
    """(X, y) for a data path: arrays from .npz, memmaps from .npy/.csv; y None if not needed."""
    sources.check_input_file(path, "--data")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        for flag, value in (("--target", target), ("--target-col", target_cols)):
            if value:
                raise UsageError("%s does not apply to --data %s: an .npz holds its "
                                 "targets as the array y" % (flag, path))
        arrays = sources.read_npz(path, "--data")
        want = ["X", "y"] if need_targets else ["X"]
        if any(k not in arrays for k in want):
            raise UsageError("%s must hold arrays named %s; it has %s"
                             % (path, " and ".join(want), ", ".join(arrays) or "none"))
        return arrays["X"], arrays.get("y") if need_targets else None
    if ext == ".npy":
        if target_cols:
            raise UsageError("--target-col does not apply to --data %s: name a .npy of "
                             "targets with --target" % path)
        if need_targets and not target:
            raise UsageError("--data %s is inputs only: name the targets with --target y.npy"
                             % path)
        X = sources.open_array(path, "--data")
        return X, sources.open_array(target, "--target") if need_targets else None
    raise UsageError("--data must be a .npz, .npy, .csv (.csv.gz, .csv.bz2) or .parquet file, "
                     "got %r" % path)


def _activations(text):
    """--hidden: one activation name, or names separated by commas."""
    names = [t.strip() for t in text.split(",")]
    for name in names:
        if name not in kernels.ACTIVATIONS:
            raise argparse.ArgumentTypeError("%r is not an activation (one of %s)"
                                             % (name, ", ".join(kernels.ACTIVATIONS)))
    return names


def _table_target(args):
    """The one target column named for a CSV/Parquet --data."""
    cols = args.target_col or []
    text = getattr(cols, "text", None)
    if len(cols) > 1 and text in tabular.column_names(args.data):
        cols = [text]  # one column whose name holds a comma
    if len(cols) != 1:
        raise UsageError("--data %s is a table: name its target column with --target-col NAME%s"
                         % (args.data, " (one column, by its name or its index)"
                            if cols else ""))
    if getattr(args, "target", None):
        raise UsageError("--target does not apply to --data %s, a table: name its target "
                         "column with --target-col" % args.data)
    col = str(cols[0])
    names = tabular.column_names(args.data)
    if col not in names and col.isdigit():  # an index, as the help says
        if int(col) >= len(names):
            raise UsageError("--target-col %s: %s has %d columns (indexes 0 to %d)"
                             % (col, args.data, len(names), len(names) - 1))
        return names[int(col)]
    return col


def load_table(args, workdir):
    """(X, y, preprocessing) of a CSV/Parquet --data: the preprocessing is fit in one pass
    (model.data.tabular), then the file is written as .npy inputs and targets to stream."""
    drop = args.drop_cols
    if args.weight_col:  # weights, not a feature
        if args.features and args.weight_col in args.features:
            raise UsageError("--weight-col %s is also in --features: a column is either the "
                             "rows' weights or an input" % args.weight_col)
        names = tabular.column_names(args.data)
        if args.weight_col not in names:
            raise UsageError("--weight-col %s: %s has no such column (it has: %s)"
                             % (args.weight_col, args.data, ", ".join(names)))
        drop = list(drop or []) + [args.weight_col]
    prep = tabular.Preprocessing.fit(
        args.data, _table_target(args), features=args.features, drop=drop,
        max_categories=args.max_categories, scale=not args.no_scale,
        classify=True if args.output in ("softmax", "sigmoid") else None,
        keep_identifiers=args.keep_identifiers, progress=progress.wanted(args.progress, True),
        numeric_encoding=args.numeric_encoding, n_bins=args.n_bins,
        category_encoding=getattr(args, "category_encoding", "onehot"),
        categorical=getattr(args, "categorical_cols", None))
    for line in prep.summary():
        print(line)
    X, y = prep.write_npy(args.data, os.path.join(workdir, "X.npy"),
                          os.path.join(workdir, "y.npy"), progress=progress.wanted(args.progress,
                                                                                   True))
    return X, y, prep


def _weight_column(args, target):
    """The --weight-col values (float64) of the rows that have a target (those the
    preprocessing keeps), checked: numbers, finite, >= 0."""
    import pyarrow.compute as pc
    names = tabular.column_names(args.data)
    if args.weight_col not in names:
        raise UsageError("--weight-col %s: %s has no such column (it has: %s)"
                         % (args.weight_col, args.data, ", ".join(names)))
    if args.weight_col == target:
        raise UsageError("--weight-col %s is the target column" % args.weight_col)
    parts = []
    for batch in tabular.read_batches(args.data, [target, args.weight_col]):
        kept = batch.filter(tabular._has_target(batch.column(target)))
        column = kept.column(args.weight_col)
        try:
            values = pc.cast(column, "float64").to_numpy(zero_copy_only=False)
        except Exception:  # text that is not a number
            raise UsageError("--weight-col %s must hold numbers, got %s values"
                             % (args.weight_col, column.type)) from None
        parts.append(np.asarray(values, np.float64))
    w = np.concatenate(parts) if parts else np.empty(0)
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))[:1]
    if bad.size:
        raise UsageError("--weight-col %s: row weights must be finite numbers >= 0, got %r "
                         "(at the %d-th row with a target)"
                         % (args.weight_col, float(w[bad[0]]), bad[0] + 1))
    return w


def _n_outputs(y, output, classes=None, comm=None):
    """The network's output width for targets y (classes for a softmax on integer labels).

    ``classes`` (``--classes``) fixes the class count; otherwise it is one more than the
    largest label, taken over every MPI rank's shard so that all ranks agree.
    """
    if y.ndim == 2:
        return y.shape[1]
    if output != "softmax":
        return 1
    labels = np.asarray(y)
    if labels.dtype.kind not in "biuf":
        raise UsageError("softmax targets must be integer class labels 0..K-1, got dtype %s"
                         % labels.dtype)
    bad = np.flatnonzero((labels < 0) | (labels != np.round(labels)))[:1]
    if bad.size:
        raise UsageError("softmax targets must be integer class labels 0..K-1; y[%d] is %r "
                         "(for a regression drop --output softmax)"
                         % (bad[0], labels[bad[0]].item()))
    top = int(labels.max()) if labels.size else -1
    if comm is not None:
        top = comm.allreduce(top, op=mpi_max())
    if classes is not None:
        if top >= classes:
            raise UsageError("--classes %d: the targets hold label %d; labels must be 0..%d"
                             % (classes, top, classes - 1))
        return classes
    if top < 0:
        raise UsageError("softmax targets must be integer class labels 0..K-1 (none found)")
    return top + 1


def _count(minimum):
    """An argparse type: an integer >= minimum, with a one-line message otherwise."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected an integer, got %r" % text)
        if value < minimum:
            raise argparse.ArgumentTypeError("must be at least %d, got %d" % (minimum, value))
        return value
    parse.__name__ = "integer >= %d" % minimum
    return parse


def _jobs(text):
    """``--jobs``: ``n_jobs``' meaning, checked by the same rule
    (``training.threads.check_jobs``): a thread count >= 1; -1 for every free core (None);
    -k for the usable cores + 1 - k, at least 1 (-2: all but one)."""
    from ..training.threads import check_jobs
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an integer, got %r" % text) from None
    try:
        return check_jobs(value, "--jobs")
    except InvalidValueError:
        raise argparse.ArgumentTypeError(
            "must be a thread count >= 1, -1 (every free core) or -k (all cores but k - 1), "
            "got 0") from None


_jobs.__name__ = "thread count (-1: every free core, -2: all but one)"


# ----------------------------------------------------------------------------- parser

def _delimiter_option(p):
    p.add_argument("--delimiter", metavar="CHAR", type=_one_character,
                   help="the field separator of a CSV (default: found in its header line: a "
                        "comma, else a semicolon, tab or |)")


def _data_options(p, targets=True):
    p.add_argument("--data", required=True, metavar="PATH",
                   help=".npz with X%s, .npy of inputs%s, or a .csv / .parquet table" % (
                       " and y" if targets else "", " (with --target)" if targets else ""))
    _delimiter_option(p)
    if targets:
        p.add_argument("--target", metavar="PATH", help=".npy of targets, for --data X.npy")
        p.add_argument("--target-col", type=_columns, metavar="NAME",
                       help="the target column of a .csv / .parquet table")
    else:
        p.add_argument("--target-col", type=_columns, metavar="NAME",
                       help="the target column of a table, if it has one (checked to be the "
                            "network's target, and not read)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr (and status 2), like every error."""

    def error(self, message):
        self.exit(2, "error: %s (see %s --help)\n" % (message, self.prog))


def _program():
    """The name the usage lines give: the console script's when run as it, else ``python -m
    numba_dense``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "numba-dense" if name == "numba-dense" else "python -m numba_dense"


def build_parser():
    parser = _Parser(
        prog=_program(), description="Train and use dense networks with numba-dense.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    train = sub.add_parser(
        "train", help="train a network (with no --data: a built-in synthetic dataset)",
        description="Train an MLP by minibatch SGD and print the loss per epoch. Without "
                    "--data it trains on a built-in synthetic teacher-network regression.")
    train.add_argument("--data", metavar="PATH", help=".npz with X and y, .npy of inputs "
                       "(with --target), or .csv (with --target-col)")
    train.add_argument("--target", metavar="PATH", help=".npy of targets, for --data X.npy")
    train.add_argument("--target-col", type=_columns, metavar="COLS",
                       help="target column name(s) or index(es) of a CSV, comma-separated")
    _delimiter_option(train)
    train.add_argument("--rows", type=_count(1), default=200_000,
                       help="rows of the built-in dataset (default 200000)")
    train.add_argument("--features", type=_columns, metavar="A,B",
                       help="feature columns of a table (default: all but the target)")
    train.add_argument("--drop-cols", type=_columns, metavar="A,B",
                       help="columns of a table to leave out")
    train.add_argument("--categorical-cols", type=_columns, metavar="A,B",
                       help="columns of a table read as categories whatever their type (a "
                            "number code: an occupation, a store id), encoded as text "
                            "columns are (--category-encoding)")
    train.add_argument("--max-categories", type=_count(2), default=100, metavar="N",
                       help="most one-hot inputs per text column: rarer values are grouped as "
                            "one '<infrequent>' category (default 100); with "
                            "--category-encoding auto, a column of more values is embedded "
                            "instead")
    train.add_argument("--category-encoding", choices=tabular.CATEGORY_ENCODINGS,
                       default="onehot",
                       help="a table's text columns: one-hot (onehot, the default), embedding: "
                            "one input of category codes each, read through an embedding "
                            "the network learns (every value kept; those seen once, and "
                            "unseen ones, as one code), or auto: one-hot up to "
                            "--max-categories values, embedding beyond")
    train.add_argument("--max-embedding-dim", type=_count(1), metavar="N",
                       help="the widest an embedding may be (default: fastai's width, "
                            "min(600, round(1.6 * n ** 0.56)) for n categories)")
    train.add_argument("--keep-identifiers", action="store_true",
                       help="keep text columns whose values are nearly all distinct "
                            "(left out by default)")
    train.add_argument("--no-scale", action="store_true",
                       help="do not standardize a table's numeric columns")
    train.add_argument("--numeric-encoding", choices=tabular.NUMERIC_ENCODINGS,
                       default="standard",
                       help="a table's number and date columns: one standardized input each "
                            "(standard, the default), or ple: piecewise-linear over quantile "
                            "bins, one input per bin")
    train.add_argument("--n-bins", type=_count(2), default=tabular.N_BINS, metavar="N",
                       help="most quantile bins per column with --numeric-encoding ple "
                            "(default %d)" % tabular.N_BINS)
    train.add_argument("--standardize-target", action=argparse.BooleanOptionalAction,
                       default=None, help="train a regression on (y - mean) / std, predictions "
                                          "and losses in y's units (default: on "
                                          "for an identity output)")
    train.add_argument("--hidden-sizes", type=_widths, default=[128, 64], metavar="N,N",
                       help="hidden layer widths, comma-separated (default 128,64; '' for "
                            "none: a linear or logistic model)")
    train.add_argument("--hidden", default="relu", type=_activations, metavar="ACT[,ACT]",
                       help="hidden activation (default relu): one of %s, or one per hidden "
                            "layer, comma-separated (relu,tanh)" % ", ".join(kernels.ACTIVATIONS))
    train.add_argument("--output", default="identity", choices=TRAINABLE_OUTPUTS,
                       help="output layer (default identity; softmax/sigmoid for classes)")
    train.add_argument("--classes", type=_count(2), metavar="K",
                       help="number of classes of a softmax output (default: largest label + 1, "
                            "over every MPI rank)")
    train.add_argument("--loss", choices=list(kernels.LOSSES),
                       help="the cost (default: the output's natural one); huber, "
                            "absolute_error and quantile train an identity output")
    train.add_argument("--quantile", type=float, metavar="Q",
                       help="the level of --loss quantile, in (0, 1) (0.9: the 90th percentile)")
    train.add_argument("--class-weight", choices=["balanced"],
                       help="weigh each class's rows by N / (classes * its count) "
                            "(scikit-learn's class_weight='balanced'); a classifier only")
    train.add_argument("--weight-col", metavar="NAME",
                       help="a column of --data (CSV/Parquet) holding each row's weight "
                            "(a number >= 0); it is not used as an input")
    # The defaults of the options below were chosen by measuring candidates on real tables
    # (benchmarks/real_tables.py; docs/guide.md "Defaults" has the figures).
    train.add_argument("--epochs", type=_count(0), default=None,
                       help="most epochs (default: %d million rows' worth, %d to %d epochs; "
                            "early stopping usually ends sooner)"
                            % (EPOCH_ROWS // 10**6, *EPOCH_RANGE))
    # --batch-size, --optimizer, its hyperparameters and the schedule: model.training.options
    fit_options.add_arguments(train, _count)
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="share of rows held out for val_loss (default 0.1)")
    train.add_argument("--validation-rows", choices=("random", "last"), default="random",
                       help="which rows --validation-fraction holds out: drawn at random "
                            "with --seed (default; a file sorted by its target or by date "
                            "still validates on rows like the others) or the file's last")
    train.add_argument("--early-stopping", type=_count(0), metavar="PATIENCE",
                       help="stop after this many epochs without a better val_loss and keep "
                            "the best epoch's parameters (default %d when there are "
                            "validation rows; 0: off)" % PATIENCE)
    train.add_argument("--no-shuffle", action="store_true", help="keep the rows in file order")
    train.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint here (.npz)")
    train.add_argument("--checkpoint-every", type=_count(1), default=1, metavar="N")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint if it exists")
    train.add_argument("--save", "--out", dest="save", metavar="PATH",
                       help="write the trained network here (.npz)")
    train.add_argument("--plot", metavar="PNG", help="write the loss curve here (needs matplotlib)")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--seed", type=_count(0), default=0)
    train.add_argument("--networks", type=_count(1), default=1, metavar="K",
                       help="train an ensemble of K networks (seeds --seed, --seed + 1, ...) "
                       "whose predictions are averaged, saved as one file")
    train.add_argument("--jobs", type=_jobs, metavar="N",
                       help="threads: those the ensemble's networks train on, or those one "
                       "network's steps are split between where that gains (default, or "
                       "-1: the cores no other process is running on; -2: all usable cores "
                       "but one; a split step takes at most the usable cores; the same "
                       "results on any count)")
    train.add_argument("--chunk-rows", type=_count(1),
                       help="rows per chunk when streaming .npy files")
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="tqdm progress bar (default: when stderr is a terminal)")
    train.add_argument("--mpi", action="store_true",
                       help="data-parallel over MPI ranks (launch with mpiexec -n N)")
    _search_parser(sub, train)

    predict = sub.add_parser("predict", help="write a trained network's predictions",
                             description="Predict with a saved network and write .npy or .csv.")
    predict.add_argument("--model", required=True, metavar="PATH", help="a network saved by train")
    _data_options(predict, targets=False)
    predict.add_argument("--out", required=True, metavar="PATH", help="output .npy or .csv")
    predict.add_argument("--proba", action="store_true",
                         help="class probabilities instead of labels (classifiers)")

    evaluate = sub.add_parser("evaluate", help="print a saved network's loss and score on data",
                              description="Print the cost and the score (accuracy for "
                                          "classifiers, R^2 for regression) on labelled data.")
    evaluate.add_argument("--model", required=True, metavar="PATH")
    _data_options(evaluate)

    export = sub.add_parser("export", help="write a saved network as an ONNX graph",
                            description="Write a network saved by train (with the table "
                                        "preprocessing it carries) as an ONNX graph for ONNX "
                                        "Runtime and other servers (needs the onnx package: "
                                        "pip install 'numba-dense[onnx]').")
    export.add_argument("--model", required=True, metavar="PATH", help="a network saved by train")
    export.add_argument("--out", required=True, metavar="PATH", help="the .onnx file to write")

    conv = sub.add_parser("convert", help="convert a CSV to X.npy and y.npy",
                          description="Convert a CSV with a header into .npy files of inputs "
                                      "and targets, in chunks; bad rows are reported by line.")
    conv.add_argument("csv", help="the CSV file (first line: column names)")
    conv.add_argument("--target-col", type=_columns, required=True, metavar="COLS",
                      help="target column name(s) or index(es), comma-separated")
    conv.add_argument("--out-x", default="X.npy", metavar="PATH", help="inputs (default X.npy)")
    conv.add_argument("--out-y", default="y.npy", metavar="PATH", help="targets (default y.npy)")
    conv.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    _delimiter_option(conv)
    conv.add_argument("--chunk-rows", type=_count(1), default=100_000)
    conv.add_argument("--skip-bad", action="store_true",
                      help="leave bad rows out (and list them) instead of stopping")

    tune = sub.add_parser(
        "tune", help="measure the kernels' dispatch on this CPU and keep it for later runs",
        description="Time a compiled loop, register tiles and BLAS on a grid of product "
                    "shapes and write the crossovers that choose between them to a file of "
                    "this CPU and library versions in ~/.cache/numba_dense "
                    "($XDG_CACHE_HOME), which later processes read (NUMBA_DENSE_TUNING=off "
                    "ignores it, NUMBA_DENSE_TUNING=PATH names another).")
    tuning.add_arguments(tune)
    return parser


# ----------------------------------------------------------------------------- commands

def _check_plotting(path):
    if path is None:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed: "
                         "pip install 'numba-dense[plot]' (or pip install matplotlib)") from None
    return plt


def _plot(plt, history, path):
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = range(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, marker="o", label="training loss")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if min(history.loss) > 0 else "linear")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _outputs(args):
    """The files a command writes, ``{flag: path}`` (None where not given)."""
    if args.command == "train":
        return {"--save": args.save, "--checkpoint": args.checkpoint, "--plot": args.plot}
    if args.command == "predict":
        return {"--out": args.out}
    if args.command == "convert":
        return {"--out-x": args.out_x, "--out-y": args.out_y}
    if args.command == "export":
        return {"--out": args.out}
    if args.command == "search":
        return {"--save": args.save}
    return {}


def _given(argv, command):
    """The destinations of the options typed on the command line (not left at defaults)."""
    parser = build_parser()
    for action in _subparser(parser, command)._actions:
        if action.option_strings:
            action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _kind(path):
    """What --data is: None (built in), 'csv', 'parquet', 'npz', 'npy' or another suffix."""
    if path is None:
        return None
    ext = os.path.splitext(path)[1].lower()
    if tabular.is_table(path):
        return "parquet" if ext in tabular.PARQUET_EXTENSIONS else "csv"
    return ext.lstrip(".")


#: When each option of a command applies: (test of the parsed options, what the option
#: needs). An option typed where it does not apply is refused: it would be ignored.
_APPLIES = {
    **{o.name: (lambda a, o=o: fit_options.applies(o, vars(a)),
                "%s %s" % (fit_options.flag(o.applies[0]), " or ".join(o.applies[1])))
       for o in fit_options.cli_options() if o.applies is not None},
    "checkpoint_every": (lambda a: bool(a.checkpoint), "--checkpoint"),
    "validation_rows": (lambda a: a.validation_fraction > 0, "--validation-fraction above 0"),
    "rows": (lambda a: a.data is None, "the built-in dataset (no --data)"),
    "features": (lambda a: _kind(a.data) in ("csv", "parquet"), "a .csv or .parquet --data"),
    "drop_cols": (lambda a: _kind(a.data) in ("csv", "parquet"), "a .csv or .parquet --data"),
    "categorical_cols": (lambda a: _kind(a.data) in ("csv", "parquet"),
                         "a .csv or .parquet --data"),
    "max_categories": (lambda a: _kind(a.data) in ("csv", "parquet"),
                       "a .csv or .parquet --data"),
    "keep_identifiers": (lambda a: _kind(a.data) in ("csv", "parquet"),
                         "a .csv or .parquet --data"),
    "no_scale": (lambda a: _kind(a.data) in ("csv", "parquet"), "a .csv or .parquet --data"),
    "numeric_encoding": (lambda a: _kind(a.data) in ("csv", "parquet"),
                         "a .csv or .parquet --data"),
    "n_bins": (lambda a: a.numeric_encoding == "ple", "--numeric-encoding ple"),
    "category_encoding": (lambda a: _kind(a.data) in ("csv", "parquet"),
                          "a .csv or .parquet --data"),
    "max_embedding_dim": (lambda a: a.category_encoding != "onehot",
                          "--category-encoding embedding or auto"),
    "weight_col": (lambda a: _kind(a.data) in ("csv", "parquet"), "a .csv or .parquet --data"),
    "quantile": (lambda a: a.loss == "quantile", "--loss quantile"),
    "hidden": (lambda a: len(a.hidden_sizes) > 0
               or any(g.replace("-", "_").startswith("hidden_sizes=")
                      for g in getattr(a, "grid", None) or ()),
               "a network with hidden layers (--hidden-sizes)"),
    "delimiter": (lambda a: _kind(getattr(a, "data", None) or getattr(a, "csv", None)) == "csv",
                  "a .csv file"),
    "chunk_rows": (lambda a: a.command == "convert"
                   or _kind(a.data) in ("npy", "csv", "parquet"),
                   "--data streamed from disk (.npy or a table)"),
}


def _check_applicable(args, given):
    """Refuse options typed where they do not apply (they would be silently ignored)."""
    for dest in sorted(given):
        rule = _APPLIES.get(dest)
        if rule is None or rule[0](args):
            continue
        flag = _flag(args.command, dest)
        raise UsageError("%s applies to %s only; this run would ignore it" % (flag, rule[1]))


def _flag(command, dest):
    for action in _subparser(build_parser(), command)._actions:
        if action.dest == dest and action.option_strings:
            return [o for o in action.option_strings if o.startswith("--")][0]
    return dest  # pragma: no cover


def _check_quantile(args):
    """--loss quantile needs its level: refused before any file is read."""
    if args.loss == "quantile" and args.quantile is None:
        raise UsageError("--loss quantile needs --quantile Q, its level in (0, 1) (0.9: the "
                         "90th percentile)")


def _check_train_options(args):
    """Options that contradict each other or would be ignored, and the training options'
    values (checked as ``MLP.fit`` checks them: --lr -1 or nan, --validation-fraction 1):
    refused before any work, not after a large file is read."""
    _check_quantile(args)
    if args.plot and os.path.splitext(args.plot)[1].lower() != ".png":
        raise UsageError("--plot writes a PNG: give a path ending in .png, got %r" % args.plot)
    if args.plot and args.epochs == 0:
        raise UsageError("--plot: --epochs 0 trains no epoch, so there is no loss curve")
    if args.classes is not None and args.output != "softmax" and not (
            tabular.is_table(args.data) and "output" not in args.given):
        raise UsageError("--classes applies to a softmax output; this run has --output %s "
                         "(add --output softmax)" % args.output)
    if (args.early_stopping or 0) > 0 and args.validation_fraction == 0:
        raise UsageError("--early-stopping %d watches the validation loss, but "
                         "--validation-fraction 0 holds out no rows" % args.early_stopping)
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint PATH to resume from")
    if args.checkpoint and not args.resume and args.networks > 1:
        taken = [member_path(args.checkpoint, k) for k in range(args.networks)
                 if os.path.exists(member_path(args.checkpoint, k))]
        if taken:
            raise UsageError("--checkpoint: the ensemble's checkpoint %s already exists: pass "
                             "--resume to continue that run, or remove it" % taken[0])
    if args.checkpoint and not args.resume and os.path.exists(args.checkpoint):
        raise UsageError("--checkpoint %s already exists: pass --resume to continue that run, "
                         "or remove the file (or name another) to start afresh"
                         % args.checkpoint)
    if args.schedule == "cosine" and args.min_lr > args.lr:
        raise UsageError("--min-lr %g is above --lr %g: a cosine schedule falls "
                         "from --lr to --min-lr" % (args.min_lr, args.lr))
    # the rest as MLP.fit checks them (after the command line's own words above)
    fit_options.checked({**fit_options.from_arguments(args),
                         "validation_fraction": args.validation_fraction})


def train(args, workdir):
    check_outputs(_outputs(args), {"--data": args.data, "--target": args.target})
    _check_train_options(args)
    plt = _check_plotting(args.plot)
    comm = None
    if args.mpi:
        comm = world()
    root = comm is None or comm.Get_rank() == 0
    prep = None
    weights = None
    if args.data and tabular.is_table(args.data):
        X, y, prep = load_table(args, workdir)
        if args.weight_col:
            weights = _weight_column(args, prep.target)
        source = args.data
        if prep.task != "classification" and args.classes is not None:
            raise UsageError("--classes %d: the target %r holds numbers, a regression"
                             % (args.classes, prep.target))
        if prep.task == "classification":
            if args.output == "identity" and "output" in args.given:
                raise UsageError("--output identity: the target %r holds classes (%d); drop "
                                 "--output to train a softmax classifier, or "
                                 "give a numeric target" % (prep.target, prep.n_classes))
            if args.output == "identity":
                args.output = "softmax"  # text labels: a classifier
                print("the target %r holds classes: training a softmax classifier"
                      % prep.target)
            args.classes = args.classes or (prep.n_classes if args.output == "softmax"
                                            else None)
    elif args.data:
        X, y = load_data(args.data, args.target, args.target_col, workdir=workdir)
        source = args.data
    else:
        X, y = datasets.teacher_regression(n_rows=args.rows, seed=args.seed)
        source = "built-in teacher network (%d rows, %d features)" % X.shape
    if X.ndim != 2:
        raise UsageError("X must be 2-D (rows, features), got shape %s" % (X.shape,))
    if comm is not None:  # every rank trains on its own contiguous share of the rows
        X, y = shard(X, comm), shard(y, comm)
    hidden = args.hidden[0] if len(args.hidden) == 1 else args.hidden
    if len(args.hidden) > 1 and len(args.hidden) != len(args.hidden_sizes):
        raise UsageError("--hidden names %d activations but --hidden-sizes %d layers: give one "
                         "per hidden layer, or one for all" % (len(args.hidden),
                                                               len(args.hidden_sizes)))
    sizes = [X.shape[1], *args.hidden_sizes, _n_outputs(y, args.output, args.classes, comm)]
    net_options = dict(hidden=hidden, output=args.output, loss=args.loss, dtype=args.dtype,
                       seed=args.seed, quantile=args.quantile)
    if prep is not None and prep.embeddings:  # text columns as codes: learned embeddings
        net_options["embeddings"] = widths(prep.embeddings, args.max_embedding_dim)
    if args.networks > 1:
        net = Ensemble(sizes, n_networks=args.networks, n_jobs=args.jobs, **net_options)
        for member in net.members:
            member.preprocessing = prep
    else:
        net = MLP(sizes, **net_options)
        net.preprocessing = prep
    if root:
        print("data: %s" % source)
        if args.networks > 1:
            print("ensemble of %d networks: %r, %d parameters each; seeds %d to %d"
                  % (args.networks, net.members[0], net.members[0].params.size, args.seed,
                     args.seed + args.networks - 1))
        else:
            print("network: %r, %d parameters" % (net, net.params.size))
    if root and args.save:
        _check_file_size_limit(net, args.save)
    epochs = _epochs(args, X.shape[0], comm)
    start = time.perf_counter()
    try:
        history = _fit(net, X, y, args, comm, root, epochs, weights)
    except EnsembleInterrupted as stop:
        return _ensemble_interrupted(net, stop, args, root)
    except TrainingInterrupted as stop:
        return _interrupted(net, stop, args, root)
    except KeyboardInterrupt as stop:  # between epochs, or after the last one
        if isinstance(net, Ensemble):
            return _ensemble_interrupted(net, EnsembleInterrupted(
                len(net), list(range(len(net))), {}, getattr(stop, "signum", signal.SIGINT)),
                args, root)
        return _stopped_outside_an_epoch(net, stop, args, root)
    if not root:
        return 0
    with sigint_ignored():  # trained: a signal now waits until the network is saved
        if isinstance(net, Ensemble):
            return _report_and_save_ensemble(net, history, args, plt, start)
        return _report_and_save(net, history, args, plt, start, epochs)


def _report_and_save_ensemble(ens, histories, args, plt, start):
    """After ``train --networks K``: each member's last losses, the time, the one file."""
    for k, history in enumerate(histories):
        last = "loss %.6g" % history.loss[-1] if history.loss else "no epoch"
        if history.val_loss:
            last += "  val_loss %.6g" % history.val_loss[-1]
        if history.best_epoch is not None and _early_stopping_on(args):
            last += "  (kept epoch %d)" % history.best_epoch
        print("network %d (seed %s): %d epochs, %s" % (k, ens.seeds[k], len(history.loss), last))
    print("trained %d networks in %.2fs" % (len(histories), time.perf_counter() - start))
    if args.save:
        _save(ens, args.save)
        print("saved to %s" % args.save)
    if plt is not None and histories[0].loss:
        _plot(plt, histories[0], args.plot)
        print("loss curve of network 0 written to %s" % args.plot)
    return 0


def _ensemble_interrupted(ens, stop, args, root):
    """Ctrl-C (or SIGTERM, SIGHUP) while an ensemble trains: every member stopped after its
    segment; the ensemble as it stands is saved (members cut short keep their parameters so
    far, members not started their initial ones); status 128 + the signal."""
    with sigint_ignored():
        if root:
            _say("%s: %s" % (_stopped_by(stop.signum), stop))
            if args.save and (stop.finished or stop.interrupted):
                try:
                    _save(ens, args.save)
                except NotSaved as exc:
                    _say("error: %s" % exc)
                    return 128 + stop.signum
                _say("saved the ensemble so far to %s" % args.save)
            if args.checkpoint:
                _say("the members' checkpoints (%s, ...) hold their whole epochs; --resume "
                     "continues from there" % member_path(args.checkpoint, 0))
    return 128 + stop.signum


def _report_and_save(net, history, args, plt, start, epochs):
    first = history.resumed_epochs or 0
    trained = len(history.loss) - first
    if trained <= 0 and first == 0:
        print("nothing trained: --epochs 0%s" % (
            "; the network saved is as it was made" if args.save else ""))
    elif trained <= 0:
        print("nothing trained: checkpoint %s already holds %d epochs, this run asks for %d"
              % (args.checkpoint, first, epochs))
    else:
        print("trained %d epoch%s in %.2fs (%.2fs in the epochs; the rest compiling or "
              "loading kernels and preparing the data)"
              % (trained, "" if trained == 1 else "s", time.perf_counter() - start,
                 sum(history.seconds[first:])))
    if history.stopped_epoch is not None:
        print("early stopping after epoch %d; kept the parameters of epoch %d"
              % (history.stopped_epoch, history.best_epoch))
    elif history.best_epoch is not None and history.best_epoch < len(history.loss) \
            and _early_stopping_on(args):
        print("kept the parameters of epoch %d, the lowest val_loss" % history.best_epoch)
    if args.save:
        _save(net, args.save)
        print("saved to %s" % args.save)
    if plt is not None and history.loss:
        _plot(plt, history, args.plot)
        print("loss curve written to %s" % args.plot)
    return 0


def _stopped_outside_an_epoch(net, stop, args, root):
    """A signal that landed outside an epoch's bookkeeping (between epochs, or as the last
    one ended): the network holds whole epochs; keep it as Ctrl-C does."""
    signum = getattr(stop, "signum", signal.SIGINT)
    with sigint_ignored():
        if root and net.step == 0:  # stopped before its first step: nothing to keep
            _say("%s before the first epoch: nothing was trained, nothing saved"
                 % _stopped_by(signum))
        elif root:
            _say("%s between epochs" % _stopped_by(signum))
            if args.save:
                try:
                    _save(net, args.save)
                except NotSaved as exc:
                    _say("error: %s" % exc)
                    return 128 + signum
                _say("saved the parameters so far to %s" % args.save)
    return 128 + signum


def _check_file_size_limit(net, path):
    """Refuse before training when the process may not write a file the size of the saved
    network (``ulimit -f``): the save would fail after the work was done."""
    import resource
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    nets = getattr(net, "members", [net])
    need = sum(m.params.nbytes * 2 + m.velocity.nbytes for m in nets) + 64 * 1024
    if limit != resource.RLIM_INFINITY and limit < need:
        raise UsageError("--save %s: the file size limit (ulimit -f) is %d KiB, and this "
                         "network's file takes about %d KiB; raise the limit"
                         % (path, limit // 1024, need // 1024 + 1))


class NotSaved(NumbaDenseError, OSError):
    """--save failed after training; the network was kept in another file (``rescued``)."""


def _save(net, path):
    """Save the trained network to ``path``; if that fails now (the folder was removed, the
    disk filled during training), keep it in the current or the temporary folder and say
    where, rather than lose it."""
    try:
        net.save(path)
        return
    except OSError as exc:
        reason = exc
    name = "numba-dense-rescued-%d-%s" % (os.getpid(), os.path.basename(path)[-100:]
                                          or "model.npz")
    for folder in (os.getcwd(), tempfile.gettempdir()):
        rescued = os.path.join(folder, name)
        try:
            net.save(rescued)
        except OSError:
            continue
        raise NotSaved("--save %s could not be written after training (%s); the network "
                       "is saved at %s instead" % (path, reason, rescued))
    raise NotSaved("--save %s could not be written after training (%s), nor a copy in the "
                   "current or temporary folder: the network is lost" % (path, reason))


def _early_stopping_on(args):
    if args.early_stopping is None:
        return args.validation_fraction > 0
    return args.early_stopping > 0


def _interrupted(net, stop, args, root):
    """Ctrl-C (or SIGTERM, SIGHUP) during training: keep the parameters so far, say where
    it stopped; status 128 + the signal (130, 143, 129)."""
    with sigint_ignored():
        if root:
            _say("%s in epoch %d after %d rows of it"
                 % (_stopped_by(stop.signum), stop.epoch, stop.rows_done))
            if args.save:
                try:
                    _save(net, args.save)
                except NotSaved as exc:
                    _say("error: %s" % exc)
                    return 128 + stop.signum
                _say("saved the parameters so far to %s (its history marks "
                     "epoch %d as interrupted)" % (args.save, stop.epoch))
            if args.checkpoint:
                _say("checkpoint %s holds the %d whole epoch%s before; --resume "
                     "continues from there" % (args.checkpoint, stop.epoch - 1,
                                               "" if stop.epoch == 2 else "s"))
    return 128 + stop.signum


def _epochs(args, rows, comm):
    """--epochs, or the default for this many rows (over every MPI rank)."""
    if args.epochs is not None:
        return args.epochs
    return default_epochs(rows if comm is None else comm.allreduce(rows))


def _validation_seed(args):
    """``MLP.fit``'s ``validation_seed`` of ``--validation-rows``: --seed for rows drawn at
    random (also with --no-shuffle: the held-out rows are the same in every run of one
    --seed, so that --resume validates on the rows it did), None for the last rows."""
    if args.validation_rows == "last" or not args.validation_fraction:
        return None
    return args.seed


def _fit(net, X, y, args, comm, verbose, epochs, weights=None):
    """``net.fit`` with the command line's training options (and its defaults that depend
    on the data: the epochs, early stopping when there are validation rows); ``weights``:
    the --weight-col values, or None."""
    if args.class_weight and not net.is_classifier:
        raise UsageError("--class-weight applies to a classifier (softmax or sigmoid output); "
                         "this network has --loss %s" % net.loss)
    early_stopping = args.early_stopping
    if early_stopping is None:
        early_stopping = PATIENCE if args.validation_fraction > 0 else None
    elif early_stopping == 0:
        early_stopping = None
    return net.fit(X, y, sample_weight=weights, class_weight=args.class_weight,
                   epochs=epochs, **fit_options.from_arguments(args),
                   shuffle=not args.no_shuffle,
                   seed=None if args.no_shuffle else args.seed,  # --seed also seeds the network
                   validation_fraction=args.validation_fraction,
                   validation_seed=_validation_seed(args),
                   early_stopping=early_stopping, checkpoint=args.checkpoint,
                   checkpoint_every=args.checkpoint_every, resume=args.resume,
                   chunk_rows=args.chunk_rows, standardize_target=args.standardize_target,
                   verbose=verbose, progress=args.progress, comm=comm,
                   # an ensemble's --jobs are its members' threads (Ensemble(n_jobs=...))
                   **({} if isinstance(net, Ensemble) else {"n_jobs": args.jobs}))


def predict(args, workdir):
    check_outputs({"--out": args.out}, {"--model": args.model, "--data": args.data})
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".npy", ".csv"):
        raise UsageError("--out must end in .npy or .csv, got %r" % args.out)
    net = _load_for(args)
    if args.target_col:  # the column to leave out: it must be the network's target
        prep = net.preprocessing
        named = (args.target_col[0] if len(args.target_col) == 1
                 else getattr(args.target_col, "text", None))  # a name holding a comma
        if prep is None or named != prep.target:
            raise UsageError("--target-col %s: %s" % (",".join(args.target_col), (
                "the network predicts %r; leave --target-col out" % prep.target
                if prep is not None else "--data %s has no target column to leave out; "
                "leave --target-col out" % args.data)))
    if tabular.is_table(args.data):
        X = args.data  # read through the preprocessing saved with the network
    else:
        X, _ = load_data(args.data, need_targets=False, workdir=workdir)
    out = net.predict_proba(X) if args.proba else net.predict(X)
    _report_read(net)
    if ext == ".npy":
        if out.dtype == object and all(isinstance(v, str) for v in out.reshape(-1)):
            out = out.astype(str)  # text labels: np.load reads a '<U' array without pickle
        atomic_write(args.out, "--out", lambda f: np.save(f, out))
    else:
        out2 = out.reshape(len(out), -1)
        fmt = {"i": "%d", "f": "%.9g"}.get(out2.dtype.kind, "%s")
        prep = net.preprocessing
        if args.proba:
            names = (["p_%s" % c for c in prep.classes] if prep is not None and prep.classes
                     and len(prep.classes) == out2.shape[1]
                     else ["p%d" % k for k in range(out2.shape[1])])
        elif prep is not None and out2.shape[1] == 1:
            names = [prep.target]
        else:
            names = ["y%d" % k for k in range(out2.shape[1])]
        # UTF-8, and names or labels quoted where they need it (a comma, a quote): a
        # target "a,b" or classes "p,q" must stay one column each
        if out2.dtype.kind == "O":  # text labels
            atomic_write(args.out, "--out",
                         lambda f: f.write(_csv_rows([names] + out2.tolist()).encode()))
        else:
            atomic_write(args.out, "--out", lambda f: np.savetxt(
                f, out2, delimiter=",", fmt=fmt, header=_csv_rows([names])[:-1], comments="",
                encoding="utf-8"))
    print("wrote %spredictions of shape %s to %s"
          % ("probability " if args.proba else "", out.shape, args.out))


def _csv_rows(rows):
    """``rows`` as CSV text (the csv module's quoting), one line each, ending in a newline."""
    import csv
    import io
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def evaluate(args, workdir):
    if tabular.is_table(args.data):
        X, y = args.data, _table_target(args)
    else:
        X, y = load_data(args.data, args.target, args.target_col, workdir=workdir)
    net = _load_for(args)
    print("loss %.6g" % net.cost(X, y))
    print("%s %.6g" % ("accuracy" if net.is_classifier else "r2", net.score(X, y)))
    _report_read(net)


def _load_for(args):
    """The --model network, refused for --data it would read wrongly: a network trained on
    a table reads tables through its saved preprocessing; arrays would bypass it."""
    net = load_model(args.model)  # a network or an ensemble
    prep = net.preprocessing
    if prep is not None and not tabular.is_table(args.data):
        names = [c["name"] for c in prep.columns]
        raise UsageError("--model %s was trained on a table (target %r, columns %s): give "
                         "--data as a .csv or .parquet file with those columns; the arrays "
                         "of %s would bypass its preprocessing"
                         % (args.model, prep.target, ", ".join(names[:5])
                            + (", ..." if len(names) > 5 else ""), args.data))
    return net


def _report_read(net):
    """Say what reading a table left out or did not know (never silently)."""
    read = net.last_read or {}
    if read.get("dropped"):
        print("left out %d rows whose target is missing" % read["dropped"])
    if read.get("unseen"):
        prep = net.preprocessing
        coded = prep is not None and prep.embeddings
        print("values not seen in training (encoded as %s<infrequent> where %scolumn has it, "
              "else as all zeros): %s" % ("code 0 in an embedded column, as " if coded else "",
                                          "a one-hot " if coded else "the ", ", ".join(
                                              "%s %d" % kv for kv in
                                              sorted(read["unseen"].items()))))
        rows = read.get("rows", 0)
        for name, n in sorted(read["unseen"].items()):
            if rows > 1 and n == rows:  # a spelling that differs from the training file's
                print("every value of column %r was not seen in training: does this file "
                      "write it as the training file did (a number as text, a date format)?"
                      % name)


def convert(args, workdir):
    check_outputs({"--out-x": args.out_x, "--out-y": args.out_y}, {"the CSV": args.csv})
    result = convert_mod.csv_to_npy(args.csv, args.out_x, args.out_y, args.target_col,
                                    dtype=args.dtype, delimiter=args.delimiter,
                                    chunk_rows=args.chunk_rows, skip_bad=args.skip_bad)
    for line, reason in result.bad_lines:
        print("skipped line %d: %s" % (line, reason), file=sys.stderr)
    if result.n_bad > len(result.bad_lines):
        print("... %d bad lines skipped in all" % result.n_bad, file=sys.stderr)
    print("wrote %d rows: %s (%d features) and %s (%s)"
          % (result.rows, args.out_x, len(result.features), args.out_y, ",".join(result.targets)))


def export(args, workdir):
    from ..network import onnx_export
    sources.check_input_file(args.model, "--model")
    check_outputs({"--out": args.out}, {"--model": args.model})
    if os.path.splitext(args.out)[1].lower() != ".onnx":
        raise UsageError("--out must end in .onnx, got %r" % args.out)
    net = load_model(args.model)  # a network, or an ensemble: one graph averaging it
    model = net.to_onnx(args.out) if isinstance(net, Ensemble) else onnx_export.to_onnx(
        net, args.out)
    print("wrote %s: inputs %s, outputs %s" % (
        args.out, ", ".join(i.name for i in model.graph.input),
        ", ".join(o.name for o in model.graph.output)))


# ----------------------------------------------------------------------------- search

#: train's options that search takes as they are: the data and how a table is read, the
#: network, and how each candidate trains (what --grid does not vary).
_SEARCH_SHARED = ("target", "target_col", "delimiter", "features", "drop_cols",
                  "categorical_cols", "max_embedding_dim",
                  "max_categories", "keep_identifiers", "no_scale", "numeric_encoding",
                  "category_encoding",
                  "n_bins", "standardize_target", "hidden_sizes", "hidden", "output", "classes",
                  "loss", "quantile", "epochs", "validation_fraction", "validation_rows",
                  "early_stopping",
                  "no_shuffle", "dtype", "seed",
                  *(o.name for o in fit_options.cli_options()))


def _search_parser(sub, train):
    search = sub.add_parser(
        "search", help="cross-validate a grid of training options and print the candidates",
        description="Cross-validate every combination of --grid's values (K folds, shuffled "
                    "with --seed, stratified for a classifier), each candidate x fold a fit as "
                    "train makes it, run on threads of this process; print each candidate's "
                    "mean and std of the held-out score (R^2 or accuracy), its rank and "
                    "seconds per fit, and the best; --save refits the best on all rows. "
                    "Needs scikit-learn.")
    search.add_argument("--data", required=True, metavar="PATH",
                        help=".npz with X and y, .npy of inputs (with --target), or a .csv / "
                             ".parquet table (with --target-col)")
    for action in train._actions:  # shared, as argparse's parents= shares them
        if action.dest in _SEARCH_SHARED:
            search._add_action(action)
    search.add_argument("--grid", nargs="+", required=True, metavar="NAME=V1,V2",
                        help="the values to try: training options (lr=1e-3,3e-3 "
                             "weight_decay=0,1e-4 batch_size=64,256 optimizer=adam,sgd "
                             "dropout=0,0.1 epochs=...) and hidden_sizes=128x64,64 "
                             "hidden=relu,tanh seed=0,1; every combination is a candidate")
    search.add_argument("--cv", type=_count(2), default=5, metavar="K",
                        help="folds of the cross-validation (default 5)")
    search.add_argument("--jobs", dest="search_jobs", type=_jobs, metavar="N",
                        help="threads running the fits, at most the usable cores (default, "
                        "or -1: the usable cores; -2: all but one)")
    search.add_argument("--save", "--out", dest="save", metavar="PATH",
                        help="refit the best candidate on all rows and save it here (.npz)")


def _grid_converters(parser):
    """{--grid name: the function reading one value}: the flag's own argparse type."""
    from .network_search import _boolean, grid_names
    actions = {a.dest: a for a in _subparser(parser, "search")._actions}
    converters = {}
    for name in grid_names():
        action = actions.get(name)
        if action is None or isinstance(action, argparse._StoreTrueAction):
            converters[name] = _boolean if action is not None else _count(1)
            continue
        kind = action.type or str

        def convert(text, kind=kind, choices=action.choices):
            value = kind(text)
            if choices is not None and value not in choices:
                raise ValueError("choose from %s" % ", ".join(map(str, choices)))
            return value
        converters[name] = convert
    converters["validation_fraction"] = float
    converters["early_stopping"] = _count(0)
    converters["epochs"] = _count(0)
    return converters


def search_command(args, workdir):
    """``search``: the grid's candidates cross-validated (``model.interfaces.network_search``)."""
    from . import network_search
    check_outputs(_outputs(args), {"--data": args.data, "--target": args.target})
    grid = network_search.parse_grid(args.grid, _grid_converters(build_parser()))
    for name in grid:
        if name in args.given:
            raise UsageError("--grid %s and %s both set it: give one"
                             % (name, _flag("search", name)))
    if (args.early_stopping or 0) > 0 and args.validation_fraction == 0:
        raise UsageError("--early-stopping %d watches the validation loss, but "
                         "--validation-fraction 0 holds out no rows" % args.early_stopping)
    _check_quantile(args)
    prep = None
    args.weight_col = args.progress = None  # what load_table reads of train's options
    if tabular.is_table(args.data):
        X, y, prep = load_table(args, workdir)
        if prep.task == "classification":
            if args.output == "identity" and "output" in args.given:
                raise UsageError("--output identity: the target %r holds classes (%d)"
                                 % (prep.target, prep.n_classes))
            if args.output == "identity":
                args.output = "softmax"
                print("the target %r holds classes: searching softmax classifiers" % prep.target)
            args.classes = args.classes or (prep.n_classes if args.output == "softmax"
                                            else None)
    else:
        X, y = load_data(args.data, args.target, args.target_col, workdir=workdir)
    if X.ndim != 2:
        raise UsageError("X must be 2-D (rows, features), got shape %s" % (X.shape,))
    early_stopping = args.early_stopping
    if early_stopping is None:
        early_stopping = PATIENCE if args.validation_fraction > 0 else None
    base = dict(hidden_sizes=args.hidden_sizes,
                hidden=args.hidden[0] if len(args.hidden) == 1 else args.hidden,
                output=args.output, loss=args.loss, quantile=args.quantile, dtype=args.dtype,
                seed=args.seed, n_outputs=_n_outputs(y, args.output, args.classes),
                classifier=args.output in ("softmax", "sigmoid"),
                **{o.name: getattr(args, o.name) for o in fit_options.cli_options()},
                epochs=_epochs(args, X.shape[0], None), shuffle=not args.no_shuffle,
                validation_fraction=args.validation_fraction,
                validation_seed=_validation_seed(args),
                early_stopping=early_stopping or None,
                default_patience=args.early_stopping is None,
                standardize_target=args.standardize_target,
                embeddings=(widths(prep.embeddings, args.max_embedding_dim)
                            if prep is not None and prep.embeddings else None))
    search = network_search.run(X, y, base, grid, cv=args.cv, jobs=args.search_jobs,
                                refit=bool(args.save))
    if args.save:
        net = search.best_estimator_.net_
        net.preprocessing = prep
        with sigint_ignored():
            _save(net, args.save)
        print("saved to %s" % args.save)
    return 0


def tune_command(args, workdir):
    """``tune``: the dispatch measured on this CPU and written for later processes
    (``kernels.tuning``)."""
    return tuning.run(args)


COMMANDS = {"train": train, "predict": predict, "evaluate": evaluate, "convert": convert,
            "export": export, "search": search_command, "tune": tune_command}


def run():
    """``python -m numba_dense``: ``main()``'s status as the process's exit status. A
    second Ctrl-C that lands after the first one's work was kept (while the temporary
    copies are removed, or as the status is returned) ends in the same status, 130 (128 +
    the signal), not in a traceback or the process killed by the signal (8 of 10 double
    Ctrl-Cs, by a helper's attack); once the status is known a late one is ignored."""
    try:
        status = main()
    except KeyboardInterrupt as stop:
        status = 128 + getattr(stop, "signum", signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # exiting: a late Ctrl-C changes nothing
    sys.exit(status)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = _given(sys.argv[1:] if argv is None else argv, args.command)
    try:
        _check_applicable(args, args.given)
        with _stop_signals(), _one_line_warnings(), _closed_stdout_ignored():
            check_outputs(_outputs(args))  # before claiming: a claim writes beside them
            with claimed(_outputs(args) if _writes(args) else {}), \
                    tabular.csv_delimiter(getattr(args, "delimiter", None)), \
                    tempfile.TemporaryDirectory(prefix="numba-dense-") as workdir:
                return COMMANDS[args.command](args, workdir) or 0
    except (ValueError, TypeError, OSError, DivergedError) as exc:
        print("error: %s" % _in_flags(str(exc), parser, args.command), file=sys.stderr)
        return 2
    except ArithmeticError as exc:  # an overflow in a size computation
        print("error: %s" % _in_flags(str(exc), parser, args.command), file=sys.stderr)
        return 2
    except MemoryError as exc:
        print("error: out of memory: %s" % (exc or "a buffer did not fit"), file=sys.stderr)
        return 2
    except ImportError as exc:  # e.g. --mpi without mpi4py
        print("error: %s" % exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # outside training (reading data, compiling): nothing to keep
        signum = getattr(exc, "signum", signal.SIGINT)
        _say(_stopped_by(signum))
        return 128 + signum


def _writes(args):
    """Whether this process writes the outputs: under MPI only rank 0 does."""
    if getattr(args, "mpi", False):
        return world().Get_rank() == 0
    return True


#: The signals whose default action ends the process, handled as Ctrl-C while a command
#: runs: SIGTERM (schedulers' time limits, timeout, docker stop), SIGHUP (a closed
#: terminal), SIGUSR1/SIGUSR2 (Slurm's --signal warning), SIGALRM, SIGXCPU (a CPU-time
#: limit). SIGQUIT and SIGKILL are left as they are: a core dump and no chance.
_STOPPING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2",
                                                     "SIGALRM", "SIGXCPU")
                  if hasattr(signal, name))


class _stop_signals:
    """SIGTERM and SIGHUP handled as Ctrl-C while a command runs (the main thread only), so
    they save the work, remove temporary copies and exit 128 + the signal (143, 129)."""

    def __enter__(self):
        import threading
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in _STOPPING:
                if signal.getsignal(signum) == signal.SIG_DFL:
                    self.previous[signum] = signal.signal(signum, raise_on_sigterm)
        return self

    def __exit__(self, *exc):
        restore_handlers(self.previous)  # each one, even if a signal lands meanwhile


def _stopped_by(signum):
    if signum == signal.SIGINT:
        return "interrupted"
    return "terminated (%s)" % signal.Signals(signum).name


def _say(line):
    """A line on stderr, which may be gone (a closed terminal after SIGHUP)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


class _QuietWhenClosed:
    """stdout that, once its reader has gone (``train ... | head``), drops what is printed
    instead of raising: the run goes on to save what it trained."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if self.stream is not None:
            try:
                return self.stream.write(text)
            except OSError:  # a closed pipe (EPIPE) or terminal (EIO)
                self._drop()
        return len(text)

    def flush(self):
        if self.stream is not None:
            try:
                self.stream.flush()
            except OSError:
                self._drop()

    def _drop(self):
        self.stream = None
        # Python flushes the real stdout at exit: point it at /dev/null so that flush
        # does not raise (and print a warning) either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self.stream or sys.__stdout__, name)


class _closed_stdout_ignored:
    def __enter__(self):
        self.previous = sys.stdout
        if sys.stdout is sys.__stdout__ and sys.stdout is not None:
            sys.stdout = _QuietWhenClosed(sys.stdout)

    def __exit__(self, *exc):
        sys.stdout = self.previous


class _one_line_warnings(warnings.catch_warnings):
    """Warnings printed as ``warning: message``, one line each, like the errors."""

    def __enter__(self):
        super().__enter__()
        warnings.showwarning = lambda message, category, *rest, **kw: print(
            "warning: %s" % message, file=sys.stderr, flush=True)


def _in_flags(message, parser, command):
    """A message about a Python argument (``lr must be > 0.0``) in the command line's words
    (``--lr must be > 0.0``): the model layer's checks name its arguments, the user typed
    flags."""
    flags = {}
    for action in _subparser(parser, command)._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long:
            flags.setdefault(action.dest, long[0])
    flags.update(layer_sizes="--hidden-sizes", chunk_rows="--chunk-rows")
    if command in ("predict", "evaluate"):
        flags["load"] = "--model"  # persistence's errors name the Python call
    return re.sub(r"^(%s)\b(?=[ :=\[])" % "|".join(map(re.escape, sorted(flags, key=len,
                                                                         reverse=True))),
                  lambda m: flags[m.group(1)], message)


def _subparser(parser, command):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[command]
    return parser  # pragma: no cover
