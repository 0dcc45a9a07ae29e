"""``xpnet book SCRIPT``: one of the book's own scripts, unedited, on any backend
(:mod:`xpnet.book`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import EXIT_OK, EXIT_USAGE, CLIError, _namespace_and_device


def cmd_book(args: argparse.Namespace) -> int:
    """Run ``args.script`` with the book's modules resolved to xpnet's."""
    from ..backend import resolve_dtype
    from ..book import BookRunError, RunSettings, run_script

    xp, device = _namespace_and_device(args)  # a wrong backend or device: exit 2, one line
    try:
        resolve_dtype(xp, args.dtype, device)
    except TypeError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from None
    settings = RunSettings(
        backend=args.backend, device=args.device, dtype=args.dtype,
        max_train=args.max_train, data_dir=args.data_dir,
        out=None if args.out is None else Path(args.out), seed=args.seed,
        args=tuple(args.args))
    try:
        run_script(args.script, settings)
    except BookRunError as exc:
        raise CLIError(str(exc), exc.code) from None
    except SystemExit as exc:  # the script's own sys.exit(code)
        code = exc.code
        if code is None or isinstance(code, int):
            return code or EXIT_OK
        print(code, file=sys.stderr)  # sys.exit("message"): printed, exit 1, as Python does
        return 1
    return EXIT_OK
