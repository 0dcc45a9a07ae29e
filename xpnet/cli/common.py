"""What every subcommand of the ``xpnet`` command shares: the one-line errors and their exit
codes, the backend and device options, loading MNIST, agreeing across MPI ranks."""



from __future__ import annotations

import argparse
import os
from typing import Any

from ..backend import BackendError, get_namespace, parse_device

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
    from ..datasets import MNISTError, load_mnist

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


def _mpi_communicator() -> Any:
    """The communicator when ``mpiexec`` started this process with several ranks, else None."""
    from ..blas_threads import launched_by_mpi

    if not launched_by_mpi():
        return None  # the common case: nothing of MPI imported
    from ..training.parallel import from_environment

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
