"""BLAS threads per process when an MPI launcher starts several xpnet processes on one machine.

Each process's BLAS (OpenBLAS, MKL) and PyTorch start one thread per core by default: under
``mpiexec -n 2`` on a 2-core machine that makes four busy threads on two cores, and a training
step's small matrix products then wait for whole scheduler ticks (a 2-process run measured 20x
slower than one process). As ``torchrun`` does, xpnet gives each process
``cores // processes on this machine`` threads (at least 1), unless the user set a thread count
(any of :data:`THREAD_VARS`), in which case nothing is touched.

The count must be set before the BLAS library loads: ``import xpnet`` does it first thing
(:func:`limit_before_numpy`, which imports nothing and only sets environment variables, under an
MPI launcher, with several processes on the machine, before NumPy is imported). When NumPy was
imported earlier, :func:`apply` limits the loaded libraries through ``threadpoolctl`` (when it is
installed) and PyTorch through ``torch.set_num_threads``. :func:`describe` gives the one line
``xpnet train`` prints. This module imports no NumPy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = ["THREAD_VARS", "apply", "cores", "describe", "launched_by_mpi", "limit_before_numpy",
           "local_processes", "threads_per_process", "user_setting"]

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
        threadpool_limits(limits=threads)
        _applied.update(threads=threads, how="threadpoolctl")
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and \
            torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


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
