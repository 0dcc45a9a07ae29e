"""The ``xpnet`` command: train, gradcheck, evaluate, data, graph, backends."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .backend import BACKENDS, BackendError, get_namespace, is_available, parse_device

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A problem to report as one line, with an exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _namespace_and_device(args: argparse.Namespace) -> tuple[Any, Any]:
    try:
        xp = get_namespace(args.backend)
        device = parse_device(xp, args.device)
    except (BackendError, ValueError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    return xp, device


def _load_mnist(args: argparse.Namespace, **kwargs: Any) -> Any:
    from .datasets import MNISTError, load_mnist

    try:
        return load_mnist(root=args.data_dir, **kwargs)
    except MNISTError as exc:
        raise CLIError(str(exc)) from None


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


# --------------------------------------------------------------------------- train


def _check_out(out: Path) -> None:
    """Make the run directory ``out`` now and prove a file can be written there, so a run is
    never trained only to die at the end on an output error (exit 2, one line, otherwise)."""
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file" if blocker == out else f"cannot be made: {blocker} is a file"
        raise CLIError(f"--out {out} {what}, not a folder; choose another --out", EXIT_USAGE)
    from .io import temp_path_beside

    try:
        out.mkdir(parents=True, exist_ok=True)
        temp_path_beside(out / "probe").unlink()
    except OSError as exc:
        raise CLIError(f"--out {out}: cannot write there ({exc.strerror or exc}); "
                       "choose another --out", EXIT_USAGE) from None


def _write_run(out: Path, net: Any, history: Any, args: argparse.Namespace) -> list[Path]:
    """Write history.json, params.npz (unless the run diverged) and accuracy.png into ``out``."""
    from .io import save_net, write_json

    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "history.json", history.to_dict())]
    if history.status != "diverged":
        meta = {"xpnet": __version__, "sizes": list(net.sizes), "dtype": history.dtype,
                "backend": history.backend, "iterations": history.iterations,
                "final_test_acc": history.final_test_acc, "seed": args.seed}
        written.append(save_net(out / "params.npz", net, meta))
    if history.epochs and not args.no_plot:
        from .plot import MatplotlibMissing, plot_history

        try:
            written.append(plot_history(history, out / "accuracy.png"))
        except MatplotlibMissing as exc:
            print(f"note: no accuracy.png: {exc}", file=sys.stderr)
    return written


def _rescue_run(out: Path, error: OSError, net: Any, history: Any,
                args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """The run could not be written to ``out`` after training: write it to a new folder under
    ./runs, else under the system temporary folder, and say where."""
    import tempfile

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tried = [f"{out} ({error.strerror or error})"]
    for base in (Path.cwd() / "runs", Path(tempfile.gettempdir())):
        try:
            base.mkdir(parents=True, exist_ok=True)
            rescue = Path(tempfile.mkdtemp(prefix=f"{stamp}-{args.backend}-rescued-", dir=base))
            return rescue, _write_run(rescue, net, history, args)
        except OSError as exc:
            tried.append(f"{base} ({exc.strerror or exc})")
    raise CLIError(f"the trained run could not be written anywhere: {'; '.join(tried)}")


MODELS = ("two-layer", "mlp", "simple-convnet", "deep-convnet")
CONV_MODELS = ("simple-convnet", "deep-convnet")


def _hidden_list(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        msg = f"must be layer widths separated by commas, e.g. 100,100,100; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return sizes


def _init_std(text: str) -> str | float:
    if text.lower() in ("relu", "he", "sigmoid", "xavier"):
        return text.lower()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        msg = f"must be relu, he, sigmoid, xavier or a number >= 0; got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _check_model_options(args: argparse.Namespace) -> None:
    """Options that do not fit the chosen model are an error, not silently ignored."""
    mlp_only = [flag for flag, on in (
        ("--batchnorm", args.batchnorm), ("--dropout", args.dropout is not None),
        ("--weight-decay", args.weight_decay is not None), ("--hidden", args.hidden is not None),
        ("--activation", args.activation is not None)) if on]
    if args.model != "mlp" and mlp_only:
        raise CLIError(f"{', '.join(mlp_only)} go with --model mlp (got --model {args.model})",
                       EXIT_USAGE)
    if args.model != "two-layer" and args.hidden_size is not None:
        raise CLIError(f"--hidden-size goes with --model two-layer; use --hidden for mlp "
                       f"(got --model {args.model})", EXIT_USAGE)
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise CLIError(f"--dropout must lie in [0, 1), got {args.dropout}", EXIT_USAGE)
    _check_batchnorm_batch(args)


def _check_batchnorm_batch(args: argparse.Namespace, processes: int = 1) -> None:
    """``--batchnorm`` trains on batches of 2 or more per process: one sample is its own
    batch mean, and BatchNormalization refuses it (its output would be beta)."""
    flag, size = (("--batch-size", args.batch_size) if hasattr(args, "batch_size")
                  else ("--samples", args.samples))
    if not args.batchnorm or size is None or size // processes >= 2:
        return
    if processes == 1:
        raise CLIError(f"--batchnorm needs {flag} 2 or more (got {size}): batch normalization "
                       "normalizes each feature over the batch, and one sample is its own "
                       "mean", EXIT_USAGE)
    raise CLIError(f"--batchnorm needs 2 or more samples per process: {flag} {size} split "
                   f"across {processes} processes gives {size // processes}; use {flag} "
                   f"{2 * processes} or more", EXIT_USAGE)


def _build_net(args: argparse.Namespace, xp: Any, device: Any) -> Any:
    """The network that ``--model`` and its options describe."""
    common = {"xp": xp, "device": device, "dtype": args.dtype, "seed": args.seed}
    if args.model == "two-layer":
        from .nets import TwoLayerNet

        return TwoLayerNet(784, args.hidden_size or 50, 10, **common)
    if args.model == "mlp":
        from .nets import MultiLayerNetExtend

        return MultiLayerNetExtend(
            784, args.hidden or [100, 100, 100, 100], 10,
            activation=args.activation or "relu",
            weight_init_std=args.weight_init if args.weight_init is not None else "relu",
            weight_decay_lambda=args.weight_decay or 0.0,
            use_dropout=bool(args.dropout), dropout_ration=args.dropout or 0.5,
            use_batchnorm=args.batchnorm, **common)
    from . import nets

    if args.model == "simple-convnet":
        return nets.SimpleConvNet(**common)
    return nets.DeepConvNet(**common)


def _schedule(args: argparse.Namespace, train_size: int) -> tuple[int, str]:
    """``(iterations, text)`` from ``--iters`` or ``--epochs``."""
    per_epoch = max(train_size // args.batch_size, 1)
    if args.epochs is not None:
        iters = args.epochs * per_epoch
        return iters, f"{args.epochs} epochs ({iters} iterations)"
    iters = args.iters if args.iters is not None else 10_000
    return iters, f"{iters} iterations"


# Options that describe the run: --resume takes them from the checkpoint instead.
RESUME_FIXED = ("--model", "--hidden-size", "--hidden", "--activation", "--weight-init",
                "--batchnorm", "--dropout", "--weight-decay", "--batch-size", "--optimizer",
                "--lr", "--seed", "--dtype", "--out", "--eval-samples")


def _given(argv: Sequence[str], flags: Sequence[str]) -> list[str]:
    """Which of ``flags`` appear on the command line (abbreviations included, as argparse
    accepts them); the parser's defaults cannot tell ``--seed 0`` from no ``--seed``."""
    probe = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    for flag in flags:
        probe.add_argument(flag, nargs="?")
    found, _ = probe.parse_known_args(list(argv))
    return [flag for flag in flags if flag.lstrip("-").replace("-", "_") in vars(found)]


def _resume_train(args: argparse.Namespace) -> int:
    """``xpnet train --resume RUN_DIR``: continue the run from its checkpoint."""
    from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
    from .train import train

    if _mpi_communicator() is not None:
        raise CLIError("--resume runs in one process; resume without mpiexec", EXIT_USAGE)
    fixed = _given(getattr(args, "argv", None) or [], RESUME_FIXED)
    if fixed:
        raise CLIError(f"--resume continues the run with its own settings (from its "
                       f"checkpoint); drop {', '.join(fixed)}, or start a new run", EXIT_USAGE)
    out = Path(args.resume)
    if not out.is_dir():
        raise CLIError(f"--resume {out}: no such run directory", EXIT_USAGE)
    try:
        ckpt = load_checkpoint(out / CHECKPOINT_NAME)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    config = ckpt.config
    model = {"TwoLayerNet": "two-layer", "MultiLayerNetExtend": "mlp",
             "SimpleConvNet": "simple-convnet", "DeepConvNet": "deep-convnet"}.get(
                 ckpt.meta["network"]["class"])
    if model is None:
        raise CLIError(f"{ckpt.path} holds a {ckpt.meta['network']['class']}, which "
                       "`xpnet train` does not train")
    args.seed, args.batch_size, args.model = config["seed"], config["batch_size"], model
    xp, device = _namespace_and_device(args)
    _check_out(out)
    (x_train, t_train), (x_test, t_test) = _load_mnist(
        args, flatten=model not in CONV_MODELS)
    iters = config["iters"]
    if args.iters is not None or args.epochs is not None:  # a longer (or shorter) run
        iters = _schedule(args, x_train.shape[0])[0]
    try:
        net = ckpt.build_net(xp=xp, device=device)
        optimizer = ckpt.build_optimizer()
    except (CheckpointError, ValueError, TypeError) as exc:
        raise CLIError(f"cannot resume {out}: {exc}") from None
    _say(args, f"xpnet {__version__}: resuming {out} at iteration {ckpt.iteration} of "
               f"{iters}: {net!r}, {optimizer!r}")
    try:
        history = train(net, x_train, t_train, x_test, t_test, iters=iters,
                        batch_size=config["batch_size"], optimizer=optimizer,
                        seed=config["seed"], eval_every=config["eval_every"],
                        eval_samples=config["eval_samples"],
                        eval_at_end=config.get("eval_at_end", True),
                        progress=not args.quiet and sys.stderr.isatty(),
                        log=None if args.quiet else print,
                        checkpoint=out / CHECKPOINT_NAME, resume_from=ckpt)
    except CheckpointError as exc:
        raise CLIError(str(exc)) from None
    return _finish_run(args, out, net, history)


def _mpi_communicator() -> Any:
    """The communicator when ``mpiexec`` started this process with several ranks, else None."""
    import os

    if not any(k in os.environ for k in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")):
        return None  # the common case: nothing of MPI imported
    from .parallel import from_environment

    try:
        return from_environment()
    except ImportError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None


def _root_first(comm: Any, work: Any) -> Any:
    """Run ``work()`` on rank 0 first (it makes the run directory, fetches MNIST into the
    cache), then on the others; a CLIError on rank 0 stops every rank with its message."""
    if comm is None:
        return work()
    result, error = None, None
    if comm.is_root:
        try:
            result = work()
        except CLIError as exc:
            error = (str(exc), exc.code)
    error = comm.bcast_object(error, "the start of the run")
    if error is not None:
        raise CLIError(*error) if comm.is_root else CLIError(f"rank 0 failed: {error[0]}",
                                                              error[1])
    return result if comm.is_root else work()


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import CHECKPOINT_NAME
    from .optim import get_optimizer
    from .train import train

    if args.resume is not None:
        return _resume_train(args)
    _check_model_options(args)
    comm = _mpi_communicator()
    if comm is not None:
        _check_batchnorm_batch(args, comm.size)
    root = comm is None or comm.is_root
    if not root:  # only rank 0 prints and writes the run directory
        args.quiet = True
    xp, device = _namespace_and_device(args)
    if comm is not None and device is None:  # CuPy: the GPU of this rank's node-local rank
        from .parallel import local_device

        device = local_device(comm, xp)
    out = Path(args.out) if args.out else Path("runs") / (
        _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{args.backend}")

    def prepare() -> Any:
        if root:
            _check_out(out)
        return _load_mnist(args, flatten=args.model not in CONV_MODELS)

    (x_train, t_train), (x_test, t_test) = _root_first(comm, prepare)
    try:
        net = _build_net(args, xp, device)
        # The book's chapter-5 run: SGD with lr 0.1; otherwise each optimizer's book default.
        lr = args.lr
        if lr is None and args.model == "two-layer" and args.optimizer == "sgd":
            lr = 0.1
        optimizer = get_optimizer(args.optimizer, **({} if lr is None else {"lr": lr}))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    iters, schedule = _schedule(args, x_train.shape[0])
    _say(args, f"xpnet {__version__}: training {net!r}")
    _say(args, f"  {schedule}, batch {args.batch_size}, {optimizer!r}, "
               f"seed {args.seed}; run directory {out}")
    if comm is not None:
        devices = comm.allgather_object(str(net.device), "the device list")
        on = "" if set(devices) == {"cpu"} else f" on {', '.join(devices)}"
        _say(args, f"  data parallel: {comm.size} processes{on}, batch {args.batch_size} split "
                   "across them")
    try:
        history = train(net, x_train, t_train, x_test, t_test, iters=iters,
                        batch_size=args.batch_size, optimizer=optimizer, seed=args.seed,
                        eval_samples=args.eval_samples, eval_at_end=args.eval_samples is None,
                        progress=not args.quiet and sys.stderr.isatty(),
                        log=None if args.quiet else print, comm=comm,
                        # every rank holds the same state: rank 0 alone writes the checkpoint
                        checkpoint=out / CHECKPOINT_NAME if root else None)
    except ValueError as exc:
        if comm is None:
            raise
        raise CLIError(str(exc), EXIT_USAGE) from None
    if not root:
        return {"diverged": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}.get(history.status,
                                                                             EXIT_OK)
    return _finish_run(args, out, net, history)


def _finish_run(args: argparse.Namespace, out: Path, net: Any, history: Any) -> int:
    """Write the run directory and report (the tail of a new run and of a resumed one)."""
    output_error = None
    try:
        written = _write_run(out, net, history, args)
    except OSError as exc:  # never lose a finished run to an output problem
        rescue, written = _rescue_run(out, exc, net, history, args)
        output_error = (f"cannot write the run to {out} ({exc.strerror or exc}); "
                        f"wrote it to {rescue} instead")
        out = rescue
    for path in written:
        _say(args, f"wrote {path}")
    if history.status == "diverged":
        raise CLIError(f"{history.message} (history written to {out})")
    final = history.final_test_acc
    summary = (f"test accuracy after iteration {history.iterations}: {final:.4f} "
               f"({history.train_time:.1f} s training, {history.backend} {history.dtype})")
    print(summary if final is not None else f"no evaluation ran ({history.message})")
    if output_error is not None:
        raise CLIError(output_error)
    if history.status == "interrupted":
        print(f"stopped: {history.message}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


# --------------------------------------------------------------------------- gradcheck


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from .backend import asarray
    from .gradcheck import gradient_check

    _check_model_options(args)
    if args.samples is None:
        args.samples = 3 if args.model == "two-layer" else 10
    xp, device = _namespace_and_device(args)
    flat = args.model not in CONV_MODELS
    if args.data == "mnist":
        (x_train, t_train), _ = _load_mnist(args, flatten=flat)
        x, t = x_train[:args.samples], t_train[:args.samples]
        source = f"the first {args.samples} MNIST training images"
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.random((args.samples, 784) if flat else (args.samples, 1, 28, 28))
        x = x.astype(np.float32)
        t = rng.integers(0, 10, args.samples).astype(np.uint8)
        source = f"{args.samples} random inputs"
    try:
        net = _build_net(args, xp, device)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    x_dev = asarray(x, xp, device=net.device)
    t_dev = asarray(t, xp, device=net.device)
    _fix_dropout_masks(net, x_dev)
    if args.model in CONV_MODELS:
        # Zero biases on MNIST's blank borders put pre-activations exactly on ReLU's kink (and
        # max pooling on ties), where the numerical derivative is meaningless: start from small
        # random biases instead.
        rng = np.random.default_rng(args.seed)
        for name in [k for k in net.params if k.startswith("b")]:
            shape = tuple(net.params[name].shape)
            net.params[name] = asarray(0.1 * rng.standard_normal(shape), xp, device=net.device,
                                       dtype=net.dtype)
        _say(args, "(biases set to small random values: zero biases sit on ReLU's kink)")
    _say(args, f"checking {net!r} on {source}")
    h = args.h
    if h is None and args.model in CONV_MODELS:
        # Tens of thousands of pre-activations and pooling windows: a step of 1e-4 along a
        # random direction crosses some ReLU kink or pooling tie; 1e-6 (float64) does not.
        h = 1e-6
    report = gradient_check(net, x_dev, t_dev, mode=args.mode, dtype=args.dtype, h=h,
                            n_directions=args.directions, seed=args.seed)
    print(report.table())
    if not report.ok:
        print("FAILED: backprop and numerical gradients disagree", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _fix_dropout_masks(net: Any, x: Any) -> None:
    """Freeze every dropout layer's mask (one training-mode pass draws them): the numerical
    and backprop gradients must see one function."""
    drops = [layer for layer in net.layers.values() if hasattr(layer, "fixed_mask")]
    if not drops:
        return
    net.predict(x, train_flg=True)
    for layer in drops:
        layer.fixed_mask = layer.mask


# --------------------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .backend import asarray
    from .io import ParamsFileError, load_net

    xp, device = _namespace_and_device(args)
    try:
        net = load_net(args.params, xp=xp, device=device, dtype=args.dtype, input_size=784)
    except ParamsFileError as exc:
        raise CLIError(str(exc)) from None
    (x_train, t_train), (x_test, t_test) = _load_mnist(args)
    results = {}
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        acc = net.accuracy(asarray(x, xp, device=net.device), asarray(t, xp, device=net.device))
        results[name] = acc
    print(f"{args.params}: train acc {results['train']:.4f}  test acc {results['test']:.4f}  "
          f"({net!r})")
    return EXIT_OK


# --------------------------------------------------------------------------- data


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from .datasets import MNISTError, fetch_mnist, mnist_paths

    try:
        folder = fetch_mnist(root=args.data_dir, progress=not args.quiet)
    except MNISTError as exc:
        raise CLIError(str(exc)) from None
    print(f"MNIST verified (SHA-256) and cached in {folder}")
    for name, path in mnist_paths(folder.parent).items():
        print(f"  {name}: {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- graph


def cmd_graph(args: argparse.Namespace) -> int:
    from . import graph

    try:
        path = graph.render_example(args.name, fmt=args.format, out=args.out,
                                    show_values=args.values, backend=args.backend)
    except BackendError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    print(f"wrote {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- backends


def cmd_backends(args: argparse.Namespace) -> int:
    from .backend import cuda_status

    for name in BACKENDS:
        if name == "cupy":
            ok, why = cuda_status()
            print(f"{name:<18} {'available' if ok else 'unavailable: ' + why}")
            continue
        state = "available" if is_available(name) else "not installed"
        version = ""
        if state == "available":
            import importlib

            module = importlib.import_module(name)
            version = f" {getattr(module, '__version__', '')}"
        print(f"{name:<18} {state}{version}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be a positive integer, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        msg = f"must be a positive number, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _add_backend_options(p: argparse.ArgumentParser, dtype: str) -> None:
    p.add_argument("--backend", default="numpy", metavar="NAME",
                   help=f"array backend: {', '.join(BACKENDS)} (default numpy)")
    p.add_argument("--device", default=None,
                   help="device for the backend, e.g. cuda:0, cpu, device1 (default: its default)")
    p.add_argument("--dtype", default=dtype, choices=("float32", "float64"),
                   help=f"floating dtype (default {dtype})")


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
    p.add_argument("--weight-decay", type=float, default=None, metavar="LAMBDA",
                   help="mlp: L2 weight decay strength (default 0)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the four MNIST IDX files (raw or .gz) to use first")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the result")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpnet",
        description="The chapter-5 backprop network of 'Deep Learning from Scratch' "
                    "on NumPy, CuPy, PyTorch or array-api-strict.")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default runs/<date>-<time>-<backend>)")
    p.add_argument("--no-plot", action="store_true", help="do not draw accuracy.png")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its checkpoint (written at every "
                        "evaluation and on Ctrl-C), on any --backend/--device; its settings "
                        "come from the checkpoint (--iters/--epochs may lengthen it)")
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", choices=("mnist", "random"), default="mnist")
    _add_data_options(p)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("evaluate", help="accuracy of saved parameters on MNIST")
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

    p = sub.add_parser("backends", help="list the backends and whether they can be used")
    p.set_defaults(func=cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --resume's checks
    try:
        return int(args.func(args))
    except CLIError as exc:
        print(f"xpnet: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
