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


def cmd_train(args: argparse.Namespace) -> int:
    from .net import TwoLayerNet
    from .train import train

    xp, device = _namespace_and_device(args)
    out = Path(args.out) if args.out else Path("runs") / (
        _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{args.backend}")
    _check_out(out)
    (x_train, t_train), (x_test, t_test) = _load_mnist(args)
    net = TwoLayerNet(784, args.hidden_size, 10, xp=xp, device=device, dtype=args.dtype,
                      seed=args.seed)
    _say(args, f"xpnet {__version__}: training {net!r}")
    _say(args, f"  {args.iters} iterations, batch {args.batch_size}, lr {args.lr}, "
               f"seed {args.seed}; run directory {out}")
    history = train(net, x_train, t_train, x_test, t_test, iters=args.iters,
                    batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                    progress=not args.quiet and sys.stderr.isatty(),
                    log=None if args.quiet else print)
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
    from .net import TwoLayerNet

    xp, device = _namespace_and_device(args)
    if args.data == "mnist":
        (x_train, t_train), _ = _load_mnist(args)
        x, t = x_train[:args.samples], t_train[:args.samples]
        source = f"the first {args.samples} MNIST training images"
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.random((args.samples, 784)).astype(np.float32)
        t = rng.integers(0, 10, args.samples).astype(np.uint8)
        source = f"{args.samples} random inputs"
    net = TwoLayerNet(784, args.hidden_size, 10, xp=xp, device=device, dtype=args.dtype,
                      seed=args.seed)
    x_dev = asarray(x, xp, device=net.device)
    t_dev = asarray(t, xp, device=net.device)
    _say(args, f"checking {net!r} on {source}")
    report = gradient_check(net, x_dev, t_dev, mode=args.mode, dtype=args.dtype,
                            n_directions=args.directions, seed=args.seed)
    print(report.table())
    if not report.ok:
        print("FAILED: backprop and numerical gradients disagree", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


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

    p = sub.add_parser("train", help="train TwoLayerNet on MNIST (the book's settings)",
                       description="Train the 784-hidden-10 TwoLayerNet on MNIST with SGD and "
                                   "write history.json, params.npz and accuracy.png.")
    _add_backend_options(p, "float32")
    p.add_argument("--hidden-size", type=_positive_int, default=50)
    p.add_argument("--iters", type=_positive_int, default=10_000)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--lr", type=_positive_float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory (default runs/<date>-<time>-<backend>)")
    p.add_argument("--no-plot", action="store_true", help="do not draw accuracy.png")
    _add_data_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("gradcheck", help="compare backprop with numerical gradients",
                       description="Print the per-parameter table (W1, b1, W2, b2) comparing "
                                   "backprop with numerical gradients.")
    _add_backend_options(p, "float64")
    p.add_argument("--mode", choices=("full", "fast"), default="full",
                   help="full: every element; fast: random directional derivatives")
    p.add_argument("--samples", type=_positive_int, default=3)
    p.add_argument("--hidden-size", type=_positive_int, default=50)
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
