"""``xpnet train``: a new run, or ``--resume`` of one, into a locked run directory."""



from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CLIError,
    _agree,
    _load_mnist,
    _mpi_communicator,
    _namespace_and_device,
    _quiet_on_other_ranks,
    _root_first,
    _say,
)

# --------------------------------------------------------------------------- train


def _check_out(out: Path, *, resuming: Path | None = None) -> None:
    """Make the run directory ``out`` now and prove a file can be written there, so a run is
    never trained only to die at the end on an output error (exit 2, one line, otherwise).
    ``resuming``: the run directory that ``--resume`` continues into ``out``."""
    if resuming is not None and out == resuming:
        fix = (f"continue it into another folder: xpnet train --resume {resuming} --out NEW_DIR "
               "(the run there stays as it is)")
        flag = f"--resume {out}"
    else:
        fix, flag = "choose another --out", f"--out {out}"
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        what = "is a file" if blocker == out else f"cannot be made: {blocker} is a file"
        raise CLIError(f"{flag} {what}, not a folder; {fix}", EXIT_USAGE)
    from .._files import temp_path_beside

    try:
        out.mkdir(parents=True, exist_ok=True)
        temp_path_beside(out / "probe").unlink()
    except OSError as exc:
        raise CLIError(f"{flag}: cannot write there ({exc.strerror or exc}); {fix}",
                       EXIT_USAGE) from None


def _lock_run(out: Path, stack: contextlib.ExitStack, flag: str) -> None:
    """Hold ``out``'s run lock until ``stack`` closes; a run already there is an error naming
    it (exit 1)."""
    from ..runlock import RunInUseError, RunLock, describe_holder

    try:
        stack.enter_context(RunLock(out))
    except RunInUseError as exc:
        raise CLIError(f"{flag} {out} is in use by another run ({describe_holder(exc.holder)}); "
                       "wait for it to finish, or choose another folder") from None


def _write_run(out: Path, net: Any, history: Any, args: argparse.Namespace) -> list[Path]:
    """Write history.json, params.npz (unless the run diverged) and accuracy.png into ``out``."""
    from ..io import save_net, write_json

    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "history.json", history.to_dict())]
    if history.status != "diverged":
        meta = {"xpnet": __version__, "sizes": list(net.sizes), "dtype": history.dtype,
                "backend": history.backend, "iterations": history.iterations,
                "final_test_acc": history.final_test_acc, "seed": args.seed}
        written.append(save_net(out / "params.npz", net, meta))
    if history.epochs and not args.no_plot:
        from ..plot import MatplotlibMissing, plot_history

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
        sizes = [int(part) for part in text.split(",")]
    except ValueError:  # an empty width ("100,,10") or a word
        sizes = []
    if not sizes or min(sizes) < 1:
        msg = (f"must be positive layer widths separated by commas, e.g. 100,100,100; "
               f"got {text!r}")
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
        verb = "goes" if len(mlp_only) == 1 else "go"
        raise CLIError(f"{', '.join(mlp_only)} {verb} with --model mlp (got --model "
                       f"{args.model})", EXIT_USAGE)
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
        from ..nets import TwoLayerNet

        return TwoLayerNet(784, args.hidden_size or 50, 10, **common)
    if args.model == "mlp":
        from ..nets import MultiLayerNetExtend

        return MultiLayerNetExtend(
            784, args.hidden or [100, 100, 100, 100], 10,
            activation=args.activation or "relu",
            weight_init_std=args.weight_init if args.weight_init is not None else "relu",
            weight_decay_lambda=args.weight_decay or 0.0,
            use_dropout=bool(args.dropout), dropout_ration=args.dropout or 0.5,
            use_batchnorm=args.batchnorm, **common)
    from .. import nets

    if args.model == "simple-convnet":
        return nets.SimpleConvNet(**common)
    return nets.DeepConvNet(**common)


def _schedule(args: argparse.Namespace, train_size: int) -> tuple[int, str]:
    """``(iterations, text)`` from ``--iters`` or ``--epochs``."""
    per_epoch = max(train_size // args.batch_size, 1)
    if args.epochs is not None:
        iters = args.epochs * per_epoch
        return iters, f"{_count(args.epochs, 'epoch')} ({_count(iters, 'iteration')})"
    iters = args.iters if args.iters is not None else 10_000
    return iters, _count(iters, "iteration")


def _count(n: int, noun: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# Options that describe the run: --resume takes them from the checkpoint instead.
RESUME_FIXED = ("--model", "--hidden-size", "--hidden", "--activation", "--weight-init",
                "--batchnorm", "--dropout", "--weight-decay", "--batch-size", "--optimizer",
                "--lr", "--seed", "--dtype", "--eval-samples")


def _given(argv: Sequence[str], flags: Sequence[str]) -> list[str]:
    """Which of ``flags`` appear on the command line (abbreviations included, as argparse
    accepts them); the parser's defaults cannot tell ``--seed 0`` from no ``--seed``."""
    probe = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    for flag in flags:
        probe.add_argument(flag, nargs="?")
    found, _ = probe.parse_known_args(list(argv))
    return [flag for flag in flags if flag.lstrip("-").replace("-", "_") in vars(found)]


def _resume_paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(checkpoint file, run directory)`` that ``--resume`` names: a run directory or its
    ``checkpoint.npz``."""
    from ..checkpoint import CHECKPOINT_NAME

    given = Path(args.resume)
    if given.is_file():
        return given, given.parent
    if not given.is_dir():
        raise CLIError(f"--resume {given}: no such run directory or checkpoint file", EXIT_USAGE)
    path = given / CHECKPOINT_NAME
    if not path.is_file():
        raise CLIError(f"--resume {given}: no {CHECKPOINT_NAME} there, so no run to continue "
                       "(`xpnet train` writes one at every evaluation)", EXIT_USAGE)
    return path, given


def _resume_train(args: argparse.Namespace) -> int:
    """``xpnet train --resume RUN_DIR``: continue the run from its checkpoint (into ``--out``
    when given, else into RUN_DIR itself)."""
    from ..checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
    from ..training import train

    fixed = _given(getattr(args, "argv", None) or [], RESUME_FIXED)
    if fixed:
        raise CLIError(f"--resume continues the run with its own settings (from its "
                       f"checkpoint); drop {', '.join(fixed)}, or start a new run", EXIT_USAGE)
    path, run_dir = _resume_paths(args)
    out = Path(args.out) if args.out else run_dir
    if out != run_dir and (out / CHECKPOINT_NAME).exists():
        raise CLIError(f"--out {out} holds another run's checkpoint; choose a new folder to "
                       f"continue {run_dir} into", EXIT_USAGE)
    try:
        ckpt = load_checkpoint(path)
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
    _check_out(out, resuming=run_dir)
    with contextlib.ExitStack() as stack:
        _lock_run(out, stack, "--resume" if out == run_dir else "--out")
        (x_train, t_train), (x_test, t_test) = _load_mnist(
            args, flatten=model not in CONV_MODELS)
        iters = config["iters"]
        if args.iters is not None or args.epochs is not None:  # a longer (or shorter) run
            iters = _schedule(args, x_train.shape[0])[0]
        try:
            net = ckpt.build_net(xp=xp, device=device)
            optimizer = ckpt.build_optimizer()
        except (CheckpointError, ValueError, TypeError) as exc:
            raise CLIError(f"cannot resume {run_dir}: {exc}") from None
        into = "" if out == run_dir else f" into {out}"
        _say(args, f"xpnet {__version__}: resuming {run_dir}{into} at iteration "
                   f"{ckpt.iteration} of {iters}: {net!r}, {optimizer!r}")
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


def _setup_train(args: argparse.Namespace, comm: Any) -> tuple[Any, Any]:
    """``(network, optimizer)`` that the options describe (exit 2 if they do not fit)."""
    from ..optim import get_optimizer

    _check_model_options(args)
    xp, device = _namespace_and_device(args)
    if comm is not None:
        _check_batchnorm_batch(args, comm.size)
        if device is None:  # CuPy: the GPU of this rank's node-local rank
            from ..training.parallel import local_device

            device = local_device(comm, xp)
    try:
        net = _build_net(args, xp, device)
        # The book's chapter-5 run: SGD with lr 0.1; otherwise each optimizer's book default.
        lr = args.lr
        if lr is None and args.model == "two-layer" and args.optimizer == "sgd":
            lr = 0.1
        optimizer = get_optimizer(args.optimizer, **({} if lr is None else {"lr": lr}))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    return net, optimizer


def _check_batch_size(args: argparse.Namespace, train_size: int, comm: Any) -> None:
    if args.batch_size > train_size:
        raise CLIError(f"--batch-size {args.batch_size} is larger than the training set "
                       f"({train_size} images); choose at most {train_size}", EXIT_USAGE)
    if comm is not None and args.batch_size < comm.size:
        raise CLIError(f"--batch-size {args.batch_size} is smaller than the number of "
                       f"processes ({comm.size}): each needs at least one image per step",
                       EXIT_USAGE)


def cmd_train(args: argparse.Namespace) -> int:
    from ..checkpoint import CHECKPOINT_NAME
    from ..training import train

    comm = _mpi_communicator()
    if args.resume is not None:
        if comm is not None:
            raise _quiet_on_other_ranks(CLIError(
                "--resume runs in one process: run it without mpiexec", EXIT_USAGE))
        return _resume_train(args)
    root = comm is None or comm.is_root
    if not root:  # only rank 0 prints and writes the run directory
        args.quiet = True
    net, optimizer = _agree(comm, lambda: _setup_train(args, comm))
    out = Path(args.out) if args.out else Path("runs") / (
        _dt.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{args.backend}")
    with contextlib.ExitStack() as stack:
        def prepare() -> Any:
            if root:
                _check_out(out)
                _lock_run(out, stack, "--out")
            return _load_mnist(args, flatten=args.model not in CONV_MODELS)

        (x_train, t_train), (x_test, t_test) = _root_first(comm, prepare)
        _agree(comm, lambda: _check_batch_size(args, x_train.shape[0], comm))
        iters, schedule = _schedule(args, x_train.shape[0])
        _say(args, f"xpnet {__version__}: training {net!r}")
        _say(args, f"  {schedule}, batch {args.batch_size}, {optimizer!r}, "
                   f"seed {args.seed}; run directory {out}")
        if comm is not None:  # the threads of each process: train()'s "threads:" line
            devices = comm.allgather_object(str(net.device), "the device list")
            on = "" if set(devices) == {"cpu"} else f" on {', '.join(devices)}"
            _say(args, f"  data parallel: {comm.size} processes{on}, batch {args.batch_size} "
                       "split across them")
        try:
            history = train(net, x_train, t_train, x_test, t_test, iters=iters,
                            batch_size=args.batch_size, optimizer=optimizer, seed=args.seed,
                            eval_samples=args.eval_samples,
                            eval_at_end=args.eval_samples is None,
                            progress=not args.quiet and sys.stderr.isatty(),
                            log=None if args.quiet else print, comm=comm,
                            # every rank holds the same state: rank 0 alone writes the checkpoint
                            checkpoint=out / CHECKPOINT_NAME if root else None)
        except (ValueError, TypeError) as exc:  # the setup's checks: the same on every rank
            raise _quiet_on_other_ranks(CLIError(str(exc), EXIT_USAGE)) from None
        if not root:
            return {"diverged": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}.get(
                history.status, EXIT_OK)
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
