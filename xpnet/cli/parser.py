"""The ``xpnet`` command line: its options, the argument types, and :func:`main`."""



from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from .._version import __version__
from ..backend import BACKENDS
from .book import cmd_book
from .commands import (
    cmd_backends,
    cmd_data_fetch,
    cmd_evaluate,
    cmd_gradcheck,
    cmd_graph,
)
from .common import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    _launch_rank,
)
from .run import (
    MODELS,
    _hidden_list,
    _init_std,
    cmd_train,
)

# --------------------------------------------------------------------------- parser


# Option types: each refusal names what the option takes (argparse adds the option's name).


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a positive integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        msg = f"must be a positive number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _non_negative_float(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        msg = f"must be a number >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"must be an integer >= 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _existing_dir(text: str) -> str:
    path = Path(text)
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "no such folder"
        msg = f"{what}: {text}"
        raise argparse.ArgumentTypeError(msg)
    return text


def _add_backend_options(p: argparse.ArgumentParser, dtype: str | None,
                         dtype_help: str | None = None) -> None:
    p.add_argument("--backend", default="numpy", metavar="NAME",
                   help=f"array backend: {', '.join(BACKENDS)} (default numpy)")
    p.add_argument("--device", default=None,
                   help="device for the backend, e.g. cuda:0, cpu, device1 (default: its default)")
    p.add_argument("--dtype", default=dtype, choices=("float32", "float64"),
                   help=dtype_help or f"floating dtype (default {dtype})")
    p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                   help="CPU threads: xpnet's NumPy operations split their work over N threads "
                        "(one BLAS thread each), PyTorch runs N intra-op threads (default: the "
                        "cores this process may use, divided among the processes mpiexec "
                        "started on this machine; OMP_NUM_THREADS sets another default)")


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=MODELS, default="two-layer",
                   help="two-layer: TwoLayerNet 784-H-10 (chapter 5); mlp: MultiLayerNetExtend "
                        "(chapter 6); simple-convnet, deep-convnet (chapters 7, 8)")
    p.add_argument("--hidden-size", type=_positive_int, default=None,
                   help="two-layer: hidden width (default 50)")
    p.add_argument("--hidden", type=_hidden_list, default=None, metavar="W1,W2,...",
                   help="mlp: hidden layer widths (default 100,100,100,100)")
    p.add_argument("--activation", choices=("relu", "sigmoid"), default=None,
                   help="mlp: activation (default relu)")
    p.add_argument("--weight-init", type=_init_std, default=None, metavar="STD",
                   help="mlp: relu/he, sigmoid/xavier or a number (default relu)")
    p.add_argument("--batchnorm", action="store_true", help="mlp: batch normalization")
    p.add_argument("--dropout", type=float, default=None, metavar="RATIO",
                   help="mlp: dropout ratio after each hidden layer (default off)")
    p.add_argument("--weight-decay", type=_non_negative_float, default=None, metavar="LAMBDA",
                   help="mlp: L2 weight decay strength (default 0)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=_existing_dir, default=None, metavar="DIR",
                   help="folder holding the four MNIST IDX files (raw or .gz) to use first")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")


class _Parser(argparse.ArgumentParser):
    """argparse with the command's exit code for usage errors (2), printed once under
    ``mpiexec`` (the command line is the same on every rank: rank 0 says what is wrong)."""

    def error(self, message: str) -> Any:
        if _launch_rank() not in (None, 0):
            self.exit(EXIT_USAGE)
        super().error(message)


EPILOG = ("exit codes: 0 done; 1 the work failed (a damaged file, a failed download, a diverged "
          "run, a run directory in use); 2 the command line is wrong (an option, a value, a "
          "path that does not exist); 130 interrupted.")


def build_parser() -> argparse.ArgumentParser:
    """The ``xpnet`` command's parser (subcommands train, gradcheck, evaluate, data, graph,
    book, backends)."""
    parser = _Parser(
        prog="xpnet",
        description="The networks of 'Deep Learning from Scratch' (chapters 5 to 8: "
                    "TwoLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet) on NumPy, "
                    "CuPy, PyTorch or array-api-strict: train them on MNIST, check their "
                    "gradients, evaluate saved parameters, draw computational graphs.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a network of the book on MNIST",
                       description="Train one of the book's networks on MNIST (default: the "
                                   "chapter-5 TwoLayerNet with SGD, the book's settings) and "
                                   "write history.json, params.npz and accuracy.png.")
    _add_backend_options(p, "float32")
    _add_model_options(p)
    length = p.add_mutually_exclusive_group()
    length.add_argument("--iters", type=_positive_int, default=None,
                        help="training steps (default 10000)")
    length.add_argument("--epochs", type=_positive_int, default=None,
                        help="training epochs of N / batch-size steps (instead of --iters)")
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--eval-samples", type=_positive_int, default=None, metavar="N",
                   help="evaluate each epoch on the first N training and test images, then "
                        "the whole test set once at the end (the book's Trainer, "
                        "evaluate_sample_num_per_epoch; default: the whole sets every epoch)")
    p.add_argument("--optimizer", default="sgd", type=str.lower,
                   choices=("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"),
                   help="update rule (default sgd)")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.1 for two-layer with sgd, the book's "
                        "chapter 5; else the optimizer's book default, e.g. adam 0.001)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default runs/<date>-<time>-<backend>)")
    p.add_argument("--no-plot", action="store_true", help="do not draw accuracy.png")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or from its checkpoint.npz) from its "
                        "checkpoint (written at every evaluation, at the end and on Ctrl-C), "
                        "on any --backend/--device, in one process (not under mpiexec); its "
                        "settings come from the checkpoint (--iters/--epochs may lengthen it); "
                        "--out writes the continued run to another folder")
    _add_data_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("gradcheck", help="compare backprop with numerical gradients",
                       description="Print the per-parameter table (W1, b1, ...) comparing "
                                   "backprop with numerical gradients of a network "
                                   "(default the 784-50-10 TwoLayerNet).")
    _add_backend_options(p, "float64")
    p.add_argument("--mode", choices=("full", "fast"), default="full",
                   help="full: every element; fast: random directional derivatives")
    p.add_argument("--samples", type=_positive_int, default=None,
                   help="batch size (default 3 as the book's; 10 for other models: batch "
                        "normalization over 3 samples is too curved for central differences)")
    _add_model_options(p)
    p.add_argument("--h", type=_positive_float, default=None,
                   help="central-difference step (default 1e-4 in float64; 1e-6 for the conv "
                        "nets)")
    p.add_argument("--directions", type=_positive_int, default=4,
                   help="random directions per parameter in fast mode")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--data", choices=("mnist", "random"), default="mnist")
    _add_data_options(p)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("evaluate", help="accuracy of saved parameters on MNIST",
                       description="Train and test accuracy on MNIST of the parameters in "
                                   "PARAMS.npz, of a checkpoint (checkpoint.npz), or of a run "
                                   "directory (its params.npz, else its checkpoint.npz).")
    p.add_argument("params", metavar="PARAMS.npz")
    _add_backend_options(p, "float32")
    _add_data_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("data", help="fetch and verify data sets ahead of time")
    data_sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    f = data_sub.add_parser("fetch", help="fetch, verify (SHA-256) and cache a data set")
    f.add_argument("dataset", choices=("mnist",))
    _add_data_options(f)
    f.set_defaults(func=cmd_data_fetch)

    p = sub.add_parser("graph", help="draw a computational graph with forward values and "
                                     "backward gradients, like the book's figures")
    p.add_argument("name", choices=("apple", "apple-orange", "sigmoid", "two-layer-net"))
    p.add_argument("--format", choices=("svg", "png", "dot"), default=None,
                   help="picture format (default: from --out's suffix, else svg)")
    p.add_argument("--out", default=None, metavar="PATH")
    p.add_argument("--values", action="store_true", help="print small arrays' values")
    p.add_argument("--backend", default="numpy", metavar="NAME")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser(
        "book", help="run one of the book's own scripts, unedited, on any backend",
        description="Run SCRIPT, a script of a clone of the book's repository "
                    "(oreilly-japan/deep-learning-from-scratch), unedited, as __main__ in its "
                    "own folder, with the book's common/, dataset/mnist.py and chapter-local "
                    "networks resolved to xpnet's code (the book's own code never runs), its "
                    "networks on --backend/--device. Without a display, plt.show() saves the "
                    "figures to --out; save_params writes there too, never into the clone.")
    _add_backend_options(p, None, "the networks' dtype (default the book's float64, float32 "
                                  "where the device has no float64)")
    p.add_argument("--max-train", type=_positive_int, default=None, metavar="N",
                   help="train on the first N images of load_mnist's training set (the test set "
                        "cut in proportion), for a quick try")
    p.add_argument("--seed", type=_seed, default=None,
                   help="seed NumPy's global generator (np.random.seed) before the script runs")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="where figures and saved parameters go (default "
                        "./book-out/<chapter>/<script name>)")
    p.add_argument("--data-dir", type=_existing_dir, default=None, metavar="DIR",
                   help="folder holding the four MNIST IDX files (raw or .gz) to use first")
    p.add_argument("script", metavar="SCRIPT", help="the script, e.g. ch05/train_neuralnet.py")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="the script's own arguments (its sys.argv[1:])")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("backends", help="list the backends and whether they can be used")
    p.set_defaults(func=cmd_backends)
    return parser


def _warning_printer(shown: set[str]) -> Any:
    """``warnings.showwarning`` for the command: xpnet's own warnings as one line each
    (``xpnet: warning: ...``), each text once; others as Python prints them."""
    from ..checkpoint import CheckpointWarning
    from ..datasets import MNISTWarning

    default = warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if not issubclass(category, (CheckpointWarning, MNISTWarning)):
            default(message, category, filename, lineno, file, line)
            return
        text = str(message)
        if text not in shown:
            shown.add(text)
            print(f"xpnet: warning: {text}", file=sys.stderr, flush=True)

    return show


def _thread_count(args: argparse.Namespace) -> AbstractContextManager[Any]:
    """``--threads N`` in force while the command runs (the count before comes back)."""
    if getattr(args, "threads", None) is None:
        return nullcontext()
    from ..blas_threads import threads

    return threads(args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command; returns the exit code (see the module text)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --resume's checks
    try:
        with warnings.catch_warnings(), _thread_count(args):
            from ..checkpoint import CheckpointWarning
            from ..datasets import MNISTWarning

            for category in (CheckpointWarning, MNISTWarning):
                warnings.simplefilter("always", category)
            warnings.showwarning = _warning_printer(set())
            return int(args.func(args))
    except CLIError as exc:
        if not exc.quiet:
            print(f"xpnet: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
