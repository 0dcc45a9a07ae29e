"""``xpnet gradcheck``, ``evaluate``, ``data``, ``graph`` and ``backends``."""



from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..backend import BackendError
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CLIError,
    _load_mnist,
    _namespace_and_device,
    _say,
)
from .run import (
    CONV_MODELS,
    _build_net,
    _check_model_options,
)

# --------------------------------------------------------------------------- gradcheck


def cmd_gradcheck(args: argparse.Namespace) -> int:
    import numpy as np

    from ..backend import asarray
    from ..gradcheck import gradient_check

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
    from ..checkpoint import CHECKPOINT_NAME

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

    from ..checkpoint import _META_KEY

    try:
        with zipfile.ZipFile(path) as archive:
            return f"{_META_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..backend import asarray
    from ..io import ParamsFileError, load_net

    path = _evaluated_file(Path(args.params))
    xp, device = _namespace_and_device(args)
    what = ""
    if _is_checkpoint(path):
        from ..checkpoint import CheckpointError, load_checkpoint

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
    from ..datasets import MNISTError, fetch_mnist, mnist_paths

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
    from .. import graph

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
    from ..backend import backend_report

    for name, text in backend_report():
        print(f"{name:<18} {text}")
    return EXIT_OK
