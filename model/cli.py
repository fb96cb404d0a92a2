"""The command line: ``python -m model train`` (also installed as ``numba-dense``)."""

import argparse
import sys
import time

import numpy as np

from . import datasets
from .mlp import MLP, DivergedError


def _widths(text):
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    return widths


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data.files or "y" not in data.files:
                raise ValueError("%s must hold arrays named 'X' and 'y', it has %s"
                                 % (path, ", ".join(data.files) or "none"))
            return data["X"], data["y"]
    except FileNotFoundError:
        raise FileNotFoundError("no such file: %r" % path) from None
    except (OSError, EOFError) as exc:
        raise ValueError("cannot read %r as .npz: %s" % (path, exc)) from None


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m model", description="Train dense networks with numba-dense.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train", help="train a network (with no --data: a built-in synthetic teacher dataset)",
        description="Train an MLP by minibatch SGD on the MSE cost and print the loss per epoch.")
    train.add_argument("--data", help=".npz file holding arrays X (rows, features) and y")
    train.add_argument("--rows", type=int, default=200_000,
                       help="rows of the built-in dataset (default 200000)")
    train.add_argument("--hidden-sizes", type=_widths, default=[128, 64],
                       help="hidden layer widths, comma-separated (default 128,64)")
    train.add_argument("--hidden", default="relu", help="hidden activation (default relu)")
    train.add_argument("--output", default="identity", help="output activation (default identity)")
    train.add_argument("--epochs", type=int, default=8)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=0.01)
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--validation-fraction", type=float, default=0.1,
                       help="share of rows held out to report val_loss (default 0.1)")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--save", metavar="PATH", help="write the trained network here (.npz)")
    return parser


def train(args):
    if args.data:
        X, y = _load_npz(args.data)
        source = args.data
    else:
        X, y = datasets.teacher_regression(n_rows=args.rows, seed=args.seed)
        source = "built-in teacher network (%d rows, %d features)" % X.shape
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError("X must be 2-D (rows, features), got shape %s" % (X.shape,))
    y = np.asarray(y)
    n_outputs = 1 if y.ndim == 1 else y.shape[1]
    if not 0 <= args.validation_fraction < 1:
        raise ValueError("--validation-fraction must be in [0, 1), got %g" % args.validation_fraction)
    n_val = int(len(X) * args.validation_fraction)
    validation = (X[len(X) - n_val:], y[len(X) - n_val:]) if n_val else None
    X, y = X[:len(X) - n_val], y[:len(X) - n_val]

    net = MLP([X.shape[1], *args.hidden_sizes, n_outputs], hidden=args.hidden,
              output=args.output, dtype=args.dtype, seed=args.seed)
    print("data: %s" % source)
    print("network: %r, %d parameters" % (net, net.params.size))
    start = time.perf_counter()
    net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            momentum=args.momentum, weight_decay=args.weight_decay, seed=args.seed,
            validation_data=validation, verbose=True)
    print("trained in %.2fs" % (time.perf_counter() - start))
    if args.save:
        net.save(args.save)
        print("saved to %s" % args.save)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except (ValueError, TypeError, OSError, DivergedError) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    return 0
