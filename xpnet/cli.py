"""The ``xpnet`` command: train, gradcheck, evaluate, data, graph, backends.

Exit codes, the same for every subcommand: 0 done; 1 the work failed (a file's contents are not
what they should be, a download failed, training diverged, a gradient check disagreed, a run
directory is in use); 2 the command line is wrong (an unknown option or value, options that do
not go together, a path that does not exist or is a file where a folder is needed, or the
reverse, a backend or device that is not there); 130 interrupted (Ctrl-C). Every error is one
line, ``xpnet: error: ...``; under ``mpiexec`` it is printed once, by rank 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .backend import BACKENDS, BackendError, get_namespace, parse_device

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class CLIError(Exception):
    """A problem to report as one line, with an exit code. ``quiet``: another rank of the same
    ``mpiexec`` job reports it; this one only exits with the code."""

    def __init__(self, message: str, code: int = EXIT_FAILED, *, quiet: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.quiet = quiet


def _launch_rank() -> int | None:
    """This process's rank when an MPI launcher started it (from the environment, without
    importing MPI), else ``None``."""
    for name in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        text = os.environ.get(name, "").strip()
        if text.isdecimal():
            return int(text)
    return None


def _quiet_on_other_ranks(exc: CLIError) -> CLIError:
    """``exc`` for an error that every rank of an ``mpiexec`` job meets alike (the command line
    is the same on each): only rank 0 prints it."""
    exc.quiet = exc.quiet or _launch_rank() not in (None, 0)
    return exc


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


def _agree(comm: Any, work: Any) -> Any:
    """Run ``work()`` on every rank (on the one process without MPI). When it raises a
    :class:`CLIError` on any rank, every rank stops: rank 0 reports the first error (naming the
    rank it came from, if not its own), the others exit quietly with the same code."""
    if comm is None:
        return work()
    result, error = None, None
    try:
        result = work()
    except CLIError as exc:
        error = (str(exc), exc.code)
    errors = comm.allgather_object(error, "the start of the run")
    failed = [(rank, e) for rank, e in enumerate(errors) if e is not None]
    if failed:
        rank, (message, code) = failed[0]
        if rank != 0:
            message = f"rank {rank} of {comm.size}: {message}"
        raise CLIError(message, code, quiet=not comm.is_root)
    return result


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


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
    from ._files import temp_path_beside

    try:
        out.mkdir(parents=True, exist_ok=True)
        temp_path_beside(out / "probe").unlink()
    except OSError as exc:
        raise CLIError(f"{flag}: cannot write there ({exc.strerror or exc}); {fix}",
                       EXIT_USAGE) from None


def _lock_run(out: Path, stack: contextlib.ExitStack, flag: str) -> None:
    """Hold ``out``'s run lock until ``stack`` closes; a run already there is an error naming
    it (exit 1)."""
    from .checkpoint import RunInUseError, RunLock, describe_holder

    try:
        stack.enter_context(RunLock(out))
    except RunInUseError as exc:
        raise CLIError(f"{flag} {out} is in use by another run ({describe_holder(exc.holder)}); "
                       "wait for it to finish, or choose another folder") from None


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
    from .checkpoint import CHECKPOINT_NAME

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
    from .checkpoint import CHECKPOINT_NAME, CheckpointError, load_checkpoint
    from .training import train

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


def _mpi_communicator() -> Any:
    """The communicator when ``mpiexec`` started this process with several ranks, else None."""
    from .blas_threads import launched_by_mpi

    if not launched_by_mpi():
        return None  # the common case: nothing of MPI imported
    from .training.parallel import from_environment

    try:
        return from_environment()
    except ImportError as exc:
        raise _quiet_on_other_ranks(CLIError(str(exc), EXIT_USAGE)) from None


def _root_first(comm: Any, work: Any) -> Any:
    """Run ``work()`` on rank 0 first (it makes the run directory, fetches MNIST into the
    cache), then on the others; a CLIError on any rank stops every rank, reported once."""
    if comm is None:
        return work()
    mine = _agree(comm, work if comm.is_root else lambda: None)
    theirs = _agree(comm, (lambda: None) if comm.is_root else work)
    return mine if comm.is_root else theirs


def _setup_train(args: argparse.Namespace, comm: Any) -> tuple[Any, Any]:
    """``(network, optimizer)`` that the options describe (exit 2 if they do not fit)."""
    from .optim import get_optimizer

    _check_model_options(args)
    xp, device = _namespace_and_device(args)
    if comm is not None:
        _check_batchnorm_batch(args, comm.size)
        if device is None:  # CuPy: the GPU of this rank's node-local rank
            from .training.parallel import local_device

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
    from .checkpoint import CHECKPOINT_NAME
    from .training import train

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
        if comm is not None:
            from .blas_threads import describe

            threads = describe()
            devices = comm.allgather_object(str(net.device), "the device list")
            on = "" if set(devices) == {"cpu"} else f" on {', '.join(devices)}"
            _say(args, f"  data parallel: {comm.size} processes{on}, batch {args.batch_size} "
                       "split across them" + (f"; {threads}" if threads else ""))
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


def _evaluated_file(given: Path) -> Path:
    """The file ``xpnet evaluate`` reads: ``given``, or in a run directory its params.npz (else
    its checkpoint.npz)."""
    from .checkpoint import CHECKPOINT_NAME

    if given.is_dir():
        for name in ("params.npz", CHECKPOINT_NAME):
            if (given / name).is_file():
                return given / name
        raise CLIError(f"{given} holds neither params.npz nor {CHECKPOINT_NAME}: not a run "
                       "directory of `xpnet train`", EXIT_USAGE)
    if not given.exists():
        raise CLIError(f"no such file: {given}", EXIT_USAGE)
    return given


def _is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` holding a checkpoint's entry (read from the archive's
    table of contents only)."""
    import zipfile

    from .checkpoint import _META_KEY

    try:
        with zipfile.ZipFile(path) as archive:
            return f"{_META_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .backend import asarray
    from .io import ParamsFileError, load_net

    path = _evaluated_file(Path(args.params))
    xp, device = _namespace_and_device(args)
    what = ""
    if _is_checkpoint(path):
        from .checkpoint import CheckpointError, load_checkpoint

        try:
            ckpt = load_checkpoint(path)
            net = ckpt.build_net(xp=xp, device=device, dtype=args.dtype)
        except (CheckpointError, ValueError, TypeError) as exc:
            raise CLIError(str(exc)) from None
        what = f", the checkpoint at iteration {ckpt.iteration}"
    else:
        try:
            net = load_net(path, xp=xp, device=device, dtype=args.dtype, input_size=784)
        except ParamsFileError as exc:
            raise CLIError(str(exc)) from None
    flat = type(net).__name__ not in ("SimpleConvNet", "DeepConvNet")
    (x_train, t_train), (x_test, t_test) = _load_mnist(args, flatten=flat)
    results = {}
    for name, x, t in (("train", x_train, t_train), ("test", x_test, t_test)):
        acc = net.accuracy(asarray(x, xp, device=net.device), asarray(t, xp, device=net.device))
        results[name] = acc
    print(f"{path}: train acc {results['train']:.4f}  test acc {results['test']:.4f}  "
          f"({net!r}{what})")
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

    if args.out is not None:
        out = Path(args.out)
        blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise CLIError(f"--out {out}: {blocker} is a file, not a folder; choose another "
                           "--out", EXIT_USAGE)
    try:
        path = graph.render_example(args.name, fmt=args.format, out=args.out,
                                    show_values=args.values, backend=args.backend)
    except BackendError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        flag = f"--out {args.out}: " if args.out else ""
        raise CLIError(f"{flag}cannot write {exc.filename or args.out} "
                       f"({exc.strerror or exc}); choose another --out", EXIT_USAGE) from None
    print(f"wrote {path}")
    return EXIT_OK


# --------------------------------------------------------------------------- backends


def cmd_backends(args: argparse.Namespace) -> int:
    from .backend import backend_report

    for name, text in backend_report():
        print(f"{name:<18} {text}")
    return EXIT_OK


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
    backends)."""
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

    p = sub.add_parser("backends", help="list the backends and whether they can be used")
    p.set_defaults(func=cmd_backends)
    return parser


def _warning_printer(shown: set[str]) -> Any:
    """``warnings.showwarning`` for the command: xpnet's own warnings as one line each
    (``xpnet: warning: ...``), each text once; others as Python prints them."""
    from .checkpoint import CheckpointWarning
    from .datasets import MNISTWarning

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xpnet`` command; returns the exit code (see the module text)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --resume's checks
    try:
        with warnings.catch_warnings():
            from .checkpoint import CheckpointWarning
            from .datasets import MNISTWarning

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
