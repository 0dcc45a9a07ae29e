"""CPU threads: xpnet's own thread count, and BLAS threads per process when an MPI launcher
starts several xpnet processes on one machine.

**xpnet's thread count** (:func:`set_threads`, :func:`get_threads`, ``with threads(n):``;
``xpnet.set_threads`` and ``train(threads=)``, ``--threads`` on the command). On NumPy,
xpnet's operations (:mod:`xpnet.ops.numpy_ops`) split their large work (column building,
pooling, ReLU, the convolutions' products) over that many threads, and BLAS runs one thread per
worker (``threadpoolctl``, process wide): BLAS threads of their own would busy-wait on the
cores the workers need, and BLAS's own split of the convolutions' wide, thin products measured
slower than one thread. A loaded PyTorch gets the count as its intra-op threads. The default
is PyTorch's: the cores this process may use (``os.sched_getaffinity``), or the count the user
set in ``OMP_NUM_THREADS`` (any of :data:`THREAD_VARS`); under ``mpiexec`` the cores divided
among the processes on this machine. :func:`describe_threads` is the line a run prints.

**BLAS under MPI.** Each process's BLAS (OpenBLAS, MKL) and PyTorch start one thread per core
by default: under ``mpiexec -n 2`` on a 2-core machine that makes four busy threads on two
cores, and a training step's small matrix products then wait for whole scheduler ticks (a
2-process run measured 20x slower than one process). As ``torchrun`` does, xpnet gives each
process ``cores // processes on this machine`` threads (at least 1), unless the user set a
thread count (any of :data:`THREAD_VARS`), in which case the environment is not touched.

The count must be set before the BLAS library loads: ``import xpnet`` does it first thing
(:func:`limit_before_numpy`, which imports nothing and only sets environment variables, under an
MPI launcher, with several processes on the machine, before NumPy is imported). When NumPy was
imported earlier, :func:`apply` limits the loaded libraries through ``threadpoolctl`` and
PyTorch through ``torch.set_num_threads``. :func:`describe` gives the BLAS line. This module
imports no NumPy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from numbers import Integral
from typing import Any

__all__ = ["THREAD_VARS", "apply", "check_threads", "cores", "default_threads", "describe",
           "describe_threads", "get_threads", "launched_by_mpi", "limit_before_numpy",
           "local_processes", "set_threads", "threads", "threads_per_process", "user_setting"]

#: Environment variables that set a thread count; any of them set by the user wins.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
#: Environment variables that the common MPI launchers set in every process they start.
LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS",
                 "HYDI_CONTROL_FD")
# Processes on this machine: MPICH and Intel MPI (Hydra), Open MPI, MVAPICH.
_LOCAL_SIZE_VARS = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")
# Processes in all (assumed on this machine when the launcher does not say).
_WORLD_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")

# What this process did: (threads, how) with how "environment" or "threadpoolctl".
_applied: dict[str, object] = {}


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``/``mpirun``)."""
    env = os.environ if environ is None else environ
    return any(name in env for name in LAUNCHER_VARS)


def _positive(text: str | None) -> int | None:
    try:
        value = int(str(text).strip())
    except ValueError:
        return None
    return value if value > 0 else None


def local_processes(environ: Mapping[str, str] | None = None) -> int | None:
    """How many processes the launcher started on this machine (``None``: not launched by MPI,
    or it does not say)."""
    env = os.environ if environ is None else environ
    if not launched_by_mpi(env):
        return None
    for names in (_LOCAL_SIZE_VARS, _WORLD_SIZE_VARS):
        for name in names:
            value = _positive(env.get(name))
            if value is not None:
                return value
    return None


def cores() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def user_setting(environ: Mapping[str, str] | None = None) -> str | None:
    """The thread count the user set (``"OMP_NUM_THREADS=2"``), or ``None``. Counts set by this
    module do not count as the user's."""
    env = os.environ if environ is None else environ
    if _applied.get("how") == "environment" and env is os.environ:
        return None
    for name in THREAD_VARS:
        if env.get(name, "").strip():
            return f"{name}={env[name].strip()}"
    return None


def threads_per_process(environ: Mapping[str, str] | None = None,
                        n_cores: int | None = None) -> int | None:
    """``max(cores // local processes, 1)`` when an MPI launcher started several processes on
    this machine and the user set no thread count; ``None`` otherwise (nothing to change)."""
    local = local_processes(environ)
    if local is None or local < 2 or user_setting(environ) is not None:
        return None
    return max((cores() if n_cores is None else n_cores) // local, 1)


def limit_before_numpy() -> None:
    """Set :data:`THREAD_VARS` to :func:`threads_per_process` when that is not ``None`` and
    NumPy is not imported yet (so its BLAS starts with that many threads). Imports nothing."""
    if _applied or "numpy" in sys.modules:
        return
    threads = threads_per_process()
    if threads is None:
        return
    for name in THREAD_VARS:
        os.environ[name] = str(threads)
    _applied.update(threads=threads, how="environment")


def apply() -> int | None:
    """Make sure the libraries already loaded use :func:`threads_per_process` threads (through
    ``threadpoolctl`` when the environment came too late, and ``torch.set_num_threads``).
    Returns the count in force, or ``None`` when xpnet leaves threads alone or cannot set them
    (no ``threadpoolctl``: :func:`describe` says what to do)."""
    applied = _applied.get("threads")
    threads = int(applied) if isinstance(applied, int) else threads_per_process()
    if applied is None:
        if threads is None:
            return None
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return None
        # One BLAS thread per worker once xpnet's operations run their own pool.
        threadpool_limits(limits=1 if "limiter" in _blas else threads, user_api="blas")
        _applied.update(threads=threads, how="threadpoolctl")
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and \
            torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


# xpnet's own thread count: {"count": n, "set": True when set_threads chose it}, and how
# BLAS was limited ({"blas": "threadpoolctl" or why not}).
_threads: dict[str, Any] = {}
_blas: dict[str, Any] = {}


def default_threads(environ: Mapping[str, str] | None = None,
                    n_cores: int | None = None) -> int:
    """The thread count when none was set: the count in the user's ``OMP_NUM_THREADS`` (or
    another of :data:`THREAD_VARS`), else the cores this process may use
    (``os.sched_getaffinity``, as PyTorch does) divided among the processes an MPI launcher
    started on this machine (at least 1)."""
    env = os.environ if environ is None else environ
    mine = user_setting(env)
    if mine is not None:
        value = _positive(mine.split("=", 1)[1])
        if value is not None:
            return value
    total = cores() if n_cores is None else n_cores
    local = local_processes(env)
    return max(total // local, 1) if local else total


def check_threads(n: Any, what: str = "threads") -> int:
    """``n`` as a thread count (an integer >= 1), else ``TypeError``/``ValueError`` saying
    what to pass."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        msg = (f"{what} must be an integer >= 1 (the threads of xpnet's operations), "
               f"got {type(n).__name__} {n!r}")
        raise TypeError(msg)
    if n < 1:
        msg = f"{what} must be >= 1, got {n}; 1 runs every operation on the calling thread"
        raise ValueError(msg)
    return int(n)


def get_threads() -> int:
    """The threads xpnet's NumPy operations split their work over: :func:`set_threads`'s
    count, else :func:`default_threads` (chosen, and BLAS limited, on the first call)."""
    found = _threads.get("count")
    if found is None:
        found = _configure(default_threads(), chosen=False)
    return int(found)


def set_threads(n: int) -> int:
    """Run xpnet's NumPy operations on ``n`` threads (``n = 1``: on the calling thread alone);
    returns the count it replaces. ``n`` must be an integer >= 1.

    BLAS gets one thread per worker (through ``threadpoolctl``, for the whole process: a BLAS
    pool of its own would spin on the cores the workers need; without ``threadpoolctl`` BLAS
    keeps its own threads and :func:`describe_threads` says so), and a loaded PyTorch ``n``
    intra-op threads (``torch.set_num_threads``). CuPy and array-api-strict are not affected."""
    n = check_threads(n)
    before = get_threads()
    _configure(n, chosen=True)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return before


@contextmanager
def threads(n: int) -> Iterator[int]:
    """``with threads(n):`` runs the block with :func:`set_threads` ``(n)``, then restores the
    counts before it (xpnet's, and a loaded PyTorch's)."""
    torch: Any = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if hasattr(torch, "get_num_threads") else None
    saved = dict(_threads) if _threads else {"count": get_threads(), "chosen": False}
    set_threads(n)
    try:
        yield n
    finally:
        _threads.clear()
        _threads.update(saved)  # the count and whether it was the default
        if torch_before is not None and torch.get_num_threads() != torch_before:
            torch.set_num_threads(torch_before)


def _configure(n: int, *, chosen: bool) -> int:
    _threads.update(count=n, chosen=chosen or bool(_threads.get("chosen")))
    if not _blas:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            _blas["how"] = "threadpoolctl is not installed: BLAS keeps its own threads"
        else:
            _blas["limiter"] = threadpool_limits(limits=1, user_api="blas")
            _blas["how"] = "1 BLAS thread each"
    return n


def describe_threads() -> str:
    """The one line a run prints about xpnet's threads (``"2 threads (2 cores; ...)"``)."""
    n = get_threads()
    why = "set" if _threads.get("chosen") else _default_reason()
    plural = "thread" if n == 1 else "threads"
    return f"{n} {plural} ({why}; {_blas.get('how', '')})"


def _default_reason() -> str:
    mine = user_setting()
    if mine is not None:
        return f"from {mine}"
    local = local_processes()
    if local:
        return f"{cores()} cores / {local} processes on this machine"
    return f"the {cores()} cores this process may use"


def describe() -> str | None:
    """One line on the BLAS threads of this process under MPI (``None`` when not under MPI)."""
    local = local_processes()
    if local is None:
        return None
    mine = user_setting()
    if mine is not None:
        return f"BLAS threads as you set them ({mine})"
    threads = apply()
    if threads is None:
        if local < 2:
            return None
        return (f"BLAS threads not limited: NumPy was imported before xpnet and threadpoolctl "
                f"is not installed; set OMP_NUM_THREADS={max(cores() // local, 1)} "
                f"({cores()} cores, {local} processes on this machine)")
    plural = "thread" if threads == 1 else "threads"
    return (f"{threads} BLAS {plural} per process ({cores()} cores, {local} processes on this "
            "machine; OMP_NUM_THREADS sets another count)")
