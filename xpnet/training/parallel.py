"""Data-parallel training over MPI (mpi4py), with NCCL between GPUs: imported only when asked for.

``mpiexec -n N xpnet train ...`` or ``train(..., comm=MPI.COMM_WORLD)`` trains one model on N
processes. Every rank draws the same permutation (the seed is broadcast from rank 0), so all
ranks agree on each global mini-batch of ``B`` rows; rank ``r`` takes its contiguous share
``[r*B//N, (r+1)*B//N)`` and computes the gradient of that share's mean loss, scaled by its
weight ``n_r / B``. One fused allreduce per step (every gradient packed into one flat buffer of
the parameters' dtype, with the weighted loss at its end) sums the shares: the update is the
one-process update on the whole batch, up to rounding, for every optimizer (each rank keeps the
same optimizer state). Plain SGD's folded learning rate rides on the same factor:
``gradient(scale=lr * n_r / B)``. The initial parameters are broadcast from rank 0;
evaluations are split across ranks and the hit counts summed.

Transports: NumPy arrays go through MPI directly (buffer protocol, in place); CuPy arrays
through NCCL (``cupy.cuda.nccl``; its id is broadcast over MPI), on the device, no host copy;
other backends (PyTorch, array-api-strict) through a host copy each step (said once in the log).
CuPy arrays fall back to that host copy too, with one line saying why, where NCCL cannot run:
CuPy without NCCL (``pip install nvidia-nccl-cu12``), or two ranks of one node on the same GPU
(NCCL refuses duplicate devices). ``mpiexec -n N xpnet train --backend cupy`` gives each rank
the GPU of its node-local rank (:func:`local_device`).

Batch normalization: each rank normalizes with its own share's batch statistics (as PyTorch's
DDP does without SyncBatchNorm), so a network with batch norm does not reproduce the
one-process run exactly; the running averages used for evaluation are averaged across ranks
before every evaluation, so all ranks (and the saved parameters) agree. Dropout layers draw
their masks from their own generators, seeded the same on every rank.

Faults: an exception on one rank inside the loop prints ``rank r of N failed: ...`` and aborts
every rank (``MPI_Abort``); a rank that dies is noticed by the launcher (MPICH's ``mpiexec``
kills the others) or, failing that, by a watchdog: every collective is nonblocking and a rank
that waits longer than ``timeout`` seconds (default 60, ``XPNET_MPI_TIMEOUT``) aborts with a
message. Ctrl-C (``mpiexec`` forwards it to every rank) sets a flag that travels with the next
step's allreduce, so all ranks stop after the same step and rank 0 keeps its run directory.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np

from .. import blas_threads
from ..backend import (
    Array,
    backend_name,
    cuda_device_count,
    namespace,
    parse_device,
    to_numpy,
)
from ..backend import asarray as _asarray
from ..backend import device as device_of
from ..ops import ops_for
from ..optim import SGD
from .steps import Step, loss_reader, takes_scale

__all__ = ["Communicator", "DataParallel", "ParallelStep", "from_environment", "launched_by_mpi",
           "local_device"]


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``/``mpirun``)."""
    return blas_threads.launched_by_mpi()


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        msg = (f"data-parallel training needs mpi4py and an MPI library ({exc}); install them "
               'with pip install "xpnet[mpi]" (mpi4py and the mpich wheel)')
        raise ImportError(msg) from None
    return MPI


def _default_timeout() -> float:
    text = os.environ.get("XPNET_MPI_TIMEOUT", "60")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"XPNET_MPI_TIMEOUT must be a positive number of seconds, got {text!r}"
        raise ValueError(msg)
    return value


def from_environment(*, timeout: float | None = None) -> Communicator | None:
    """A :class:`Communicator` over ``MPI.COMM_WORLD`` when this process was started by
    ``mpiexec`` with more than one process, else ``None`` (nothing imported)."""
    if not launched_by_mpi():
        return None
    comm = Communicator(_import_mpi().COMM_WORLD, timeout=timeout)
    return comm if comm.size > 1 else None


class Communicator:
    """An mpi4py communicator with the few collectives data parallelism needs.

    Parameters
    ----------
    comm
        An mpi4py intracommunicator (e.g. ``MPI.COMM_WORLD``).
    timeout
        Seconds a rank waits in one collective before it aborts every rank with a message
        (default ``XPNET_MPI_TIMEOUT`` or 60).
    """

    def __init__(self, comm: Any, *, timeout: float | None = None) -> None:
        if isinstance(comm, Communicator):
            comm = comm.__dict__["comm"]
        if not all(hasattr(comm, a) for a in ("Get_rank", "Get_size", "Iallreduce")):
            msg = (f"comm must be an mpi4py communicator such as MPI.COMM_WORLD, got "
                   f"{type(comm).__name__}")
            raise TypeError(msg)
        self.MPI = _import_mpi()
        self.comm = comm
        self.rank = int(comm.Get_rank())
        self.size = int(comm.Get_size())
        self.timeout = _default_timeout() if timeout is None else float(timeout)
        self._local: tuple[int, int] | None = None
        #: Device-side collectives (NCCL on CuPy: :meth:`xpnet.ops.Ops.collectives`), or
        #: ``None``: arrays go through MPI (in place for NumPy, through host copies for the
        #: others). :meth:`DataParallel.make_step` decides it for all ranks alike.
        self.collectives: Any = None

    @property
    def local_rank(self) -> int:
        """This rank's index among the ranks of its node (``MPI.COMM_TYPE_SHARED``)."""
        return self._node()[0]

    @property
    def local_size(self) -> int:
        """How many ranks run on this node."""
        return self._node()[1]

    def _node(self) -> tuple[int, int]:
        if self._local is None:
            node = self.comm.Split_type(self.MPI.COMM_TYPE_SHARED)
            try:
                self._local = (int(node.Get_rank()), int(node.Get_size()))
            finally:
                node.Free()
        return self._local

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """``(start, stop)``: this rank's contiguous share of ``n`` rows."""
        return self.rank * n // self.size, (self.rank + 1) * n // self.size

    # ----------------------------------------------------------------- faults

    def abort(self, message: str, code: int = 1) -> None:
        """Print ``message`` (with this rank) and end every rank of the job."""
        print(f"xpnet: rank {self.rank} of {self.size}: {message}", file=sys.stderr, flush=True)
        # MPI_Abort ends the launcher's output forwarding too: give it time to pass this on.
        time.sleep(0.5)
        try:
            self.comm.Abort(code)
        finally:  # Abort does not return; if the MPI library is broken, leave anyway
            os._exit(code)

    def _wait(self, request: Any, what: str, timeout: float | None = None) -> None:
        """Complete a nonblocking request, aborting every rank if it takes over ``timeout``."""
        limit = self.timeout if timeout is None else timeout
        start = time.monotonic()
        spins = 0
        try:
            while not request.Test():
                spins += 1
                if spins > 2000:  # waiting long: yield the core between polls
                    time.sleep(1e-4)
                    if time.monotonic() - start > limit:
                        self.abort(f"no answer from the other ranks for {limit:g} s in {what}: "
                                   "a rank died or hangs; aborting all ranks "
                                   "(XPNET_MPI_TIMEOUT sets the limit)")
        except self.MPI.Exception as exc:
            self.abort(f"MPI failed in {what} ({exc}): a rank died; aborting all ranks")

    # ----------------------------------------------------------------- collectives

    def allreduce_(self, buf: Array, what: str = "the gradient allreduce") -> Array:
        """Sum ``buf`` (1-d) over all ranks; returns the sum (in place where possible)."""
        if isinstance(buf, np.ndarray):
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), what)
            return buf
        if self.collectives is not None:
            return self.collectives.allreduce_(buf)
        # Other backends: through a host copy (torch CPU tensors share memory with it).
        host = np.array(to_numpy(buf), copy=True)
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM), what)
        return _asarray(host, namespace(buf), device=device_of(buf))

    def broadcast_(self, buf: Array, what: str = "the parameter broadcast") -> Array:
        """Rank 0's ``buf`` on every rank. Ranks may reach this at different times (data
        loading), so the watchdog allows ten times the usual timeout."""
        if self.collectives is not None and not isinstance(buf, np.ndarray):
            return self.collectives.broadcast_(buf)
        host = buf if isinstance(buf, np.ndarray) else np.array(to_numpy(buf), copy=True)
        self._wait(self.comm.Ibcast(host, root=0), what, 10 * self.timeout)
        return host if host is buf else _asarray(host, namespace(buf), device=device_of(buf))

    def sum_host(self, values: list[float], what: str) -> list[float]:
        """Sum a few host numbers over all ranks."""
        buf = np.asarray(values, dtype=np.float64)
        self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), what)
        return [float(v) for v in buf]

    def allgather_object(self, value: Any, what: str) -> list[Any]:
        """Every rank's ``value`` (a small picklable object), in rank order, on every rank."""
        self._wait(self.comm.Ibarrier(), what, 10 * self.timeout)
        return list(self.comm.allgather(value))

    def bcast_object(self, value: Any, what: str) -> Any:
        """Rank 0's ``value`` (a small picklable object) on every rank."""
        self._wait(self.comm.Ibarrier(), what, 10 * self.timeout)
        return self.comm.bcast(value, root=0)


# --------------------------------------------------------------------------- devices


def local_device(comm: Communicator, xp: Any) -> Any:
    """The device a rank should train on: on CuPy, CUDA device ``local_rank % devices`` of its
    node (one GPU per rank where there are enough); ``None`` (the backend's default) on every
    other backend."""
    count = cuda_device_count(xp)
    if not count:
        return None
    return parse_device(xp, comm.local_rank % count)


def _device_transport_problem(comm: Communicator, device: Any, ops: Any) -> str | None:
    """Why the arrays of this job cannot travel by the device's collectives (NCCL): two ranks
    of one node on the same device, or what ``ops`` says is missing; the same answer on every
    rank, or ``None``. Collective: every rank must call it."""
    node = comm.comm.Get_processor_name() if hasattr(comm.comm, "Get_processor_name") else ""
    seen = comm.allgather_object(
        (str(node), getattr(device, "id", device), ops.collectives_problem(comm, device)),
        "the device check")
    where: dict[tuple[str, Any], list[int]] = {}
    for rank, (host, dev, _) in enumerate(seen):
        where.setdefault((host, dev), []).append(rank)
    shared = next((ranks for ranks in where.values() if len(ranks) > 1), None)
    if shared is not None:
        dev = seen[shared[0]][1]
        return (f"ranks {', '.join(map(str, shared))} share CUDA device {dev}, which NCCL "
                "refuses: give each rank its own GPU (xpnet train picks cuda:<node-local rank> "
                "when --device is left out)")
    missing = next((why for _, _, why in seen if why is not None), None)
    return missing


# --------------------------------------------------------------------------- the training step


def _pack(xp: Any, arrays: list[Array], tail: Sequence[Array] = ()) -> Array:
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays] + list(tail))


def _unpack(xp: Any, buf: Array, like: list[Array]) -> list[Array]:
    out, at = [], 0
    for a in like:
        n = math.prod(a.shape)  # not np.prod: microseconds a call, six calls a step
        out.append(xp.reshape(buf[at:at + n], a.shape))
        at += n
    return out


def _assign(params: Any, key: str, value: Array) -> None:
    """``params[key] = value`` in place where the array allows it (layers of the book's own
    networks hold the same arrays), else by rebinding."""
    p = params[key]
    if isinstance(p, np.ndarray) and p.flags.writeable:
        p[...] = value
    else:
        params[key] = namespace(p).asarray(value, copy=True)


def _running_stat_layers(net: Any) -> list[Any]:
    layers = getattr(net, "layers", {})
    return [layer for layer in getattr(layers, "values", lambda: layers)()
            if getattr(layer, "running_mean", None) is not None
            and getattr(layer, "running_var", None) is not None]


class DataParallel:
    """What :func:`xpnet.train` needs to train on several ranks (see the module text)."""

    def __init__(self, comm: Any, *, batch_size: int, cuda_graph: bool = False) -> None:
        self.comm = comm if isinstance(comm, Communicator) else Communicator(comm)
        if batch_size < self.comm.size:
            msg = (f"batch_size {batch_size} is smaller than the number of processes "
                   f"({self.comm.size}): every rank needs at least one row per step")
            raise ValueError(msg)
        if cuda_graph:
            msg = "cuda_graph=True is not supported with data parallelism (comm=...)"
            raise ValueError(msg)
        # cores / local processes BLAS threads each (set before NumPy loaded when xpnet was
        # imported first; else through threadpoolctl, when installed): see xpnet.blas_threads.
        blas_threads.apply()
        self.batch_size = batch_size
        self.is_root = self.comm.is_root
        self.size = self.comm.size
        self._stop = False  # this rank saw a Ctrl-C
        self._agreed = False  # the last allreduce said some rank did
        #: A line for the log (rank 0): how the arrays travel, when it costs a host copy.
        self.note: str | None = None

    def common_seed(self, seed: int | None) -> int:
        """The seed every rank uses: rank 0's (fresh entropy drawn there when ``None``)."""
        if seed is None and self.is_root:
            seed = int(np.random.SeedSequence().generate_state(1)[0])
        return int(self.comm.bcast_object(seed, "the seed broadcast"))

    def broadcast_params(self, net: Any) -> None:
        """Every rank starts from rank 0's parameters."""
        params = net.params
        keys = list(params.keys())
        values = [params[k] for k in keys]
        xp = namespace(values[0])
        buf = self.comm.broadcast_(_pack(xp, values))
        for key, value in zip(keys, _unpack(xp, buf, values), strict=True):
            _assign(params, key, value)

    def make_step(self, net: Any, xp: Any, x_train: Array, t_train: Array,
                  optimizer: Any) -> tuple[Step, AbstractContextManager[Any]]:
        """``(step, context)`` as :func:`xpnet.training.steps.make_step` returns them: the
        :class:`ParallelStep`, and its guard to run the steps inside. Collective: decides how
        the arrays travel (the same on every rank) and starts every rank from rank 0's
        parameters."""
        first = next(iter(net.params.values()))
        self._choose_transport(xp, first)
        self.broadcast_params(net)
        step = ParallelStep(self, net, xp, x_train, t_train, optimizer)
        return step, step.context()

    def _choose_transport(self, xp: Any, first: Array) -> None:
        """The device's collectives (NCCL) where every rank can use them, else MPI on the host;
        :attr:`note` says what it costs when that is a host copy."""
        ops = ops_for(xp)
        collectives = ops.collectives(self.comm, device_of(first))
        if collectives is not None:
            problem = _device_transport_problem(self.comm, device_of(first), ops)
            if problem is not None:
                collectives = None
                if self.is_root:
                    self.note = (f"note: {problem}; until then the gradients go through MPI "
                                 "on the host each step (slower)")
        self.comm.collectives = collectives
        if (collectives is None and not isinstance(first, np.ndarray) and self.is_root
                and self.note is None):
            self.note = (f"note: {backend_name(xp)} arrays go through a host copy for MPI "
                         "each step (NumPy and CuPy/NCCL need none)")

    def poll(self) -> None:
        """Raise ``KeyboardInterrupt`` if the last step's allreduce carried a Ctrl-C from any
        rank (every rank got the same flag, so all stop at the same step)."""
        if self._agreed:
            self._agreed = False
            raise KeyboardInterrupt

    def _stop_elsewhere(self) -> bool:
        """Device transports: the Ctrl-C flag goes through a small host allreduce."""
        return self.comm.sum_host([1.0 if self._stop else 0.0], "the stop flag")[0] > 0

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the loop with Ctrl-C turned into a flag that all ranks act on after the same
        step, and with any other exception aborting every rank (the others would wait in the
        next allreduce forever)."""
        def on_interrupt(signum: int, frame: Any) -> None:
            if self._stop:  # a second Ctrl-C: stop this rank now
                raise KeyboardInterrupt
            self._stop = True

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, on_interrupt) if main else None
        try:
            yield
        except BaseException as exc:
            self.comm.abort(f"failed: {type(exc).__name__}: {exc}; aborting all ranks")
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)

    def accuracy(self, net: Any) -> Callable[[Array, Array], float]:
        """``accuracy(x, t)`` over all ranks: each evaluates its share of the rows, the hit
        counts are summed. Batch-norm running averages are averaged across ranks first."""
        def accuracy(x: Array, t: Array) -> float:
            self.sync_running_stats(net)
            n = int(x.shape[0])
            lo, hi = self.comm.share(n)
            hits = round(net.accuracy(x[lo:hi, ...], t[lo:hi, ...]) * (hi - lo)) if hi > lo else 0
            return self.comm.sum_host([float(hits)], "the evaluation")[0] / n

        return accuracy

    def sync_running_stats(self, net: Any) -> None:
        """Average the batch-norm running mean and variance over the ranks."""
        layers = _running_stat_layers(net)
        if not layers:
            return
        values = [v for layer in layers for v in (layer.running_mean, layer.running_var)]
        xp = namespace(values[0])
        buf = self.comm.allreduce_(_pack(xp, values), "the batch-norm statistics allreduce")
        out = _unpack(xp, buf / self.size, values)
        for i, layer in enumerate(layers):
            layer.running_mean = xp.asarray(out[2 * i], copy=True)
            layer.running_var = xp.asarray(out[2 * i + 1], copy=True)


class ParallelStep(Step):
    """One data-parallel step (see the module text): this rank's share of the global batch of
    rows ``idx``, its gradient weighted by the share's size, one fused allreduce of the
    gradients and the loss (and, on the host transport, the Ctrl-C flag), the update.
    Returns the whole batch's loss, the same on every rank."""

    def __init__(self, parallel: DataParallel, net: Any, xp: Any, x_train: Array,
                 t_train: Array, optimizer: Any) -> None:
        params = net.params
        self.parallel, self.net, self.xp, self.optimizer = parallel, net, xp, optimizer
        self.x_train, self.t_train, self.params = x_train, t_train, params
        self.read_loss = loss_reader(net)
        self.takes_scale = takes_scale(net)
        self.folded = type(optimizer) is SGD and self.takes_scale
        self.lo, self.hi = parallel.comm.share(parallel.batch_size)
        self.weight = (self.hi - self.lo) / parallel.batch_size
        self.keys = list(params.keys())
        self.dtype = params[self.keys[0]].dtype
        self.device = device_of(params[self.keys[0]])
        self.host = parallel.comm.collectives is None  # the stop flag rides on the allreduce

    def _gradients(self, x_batch: Array, t_batch: Array) -> list[Array]:
        """This share's gradients, times its weight (and the folded learning rate)."""
        net, weight = self.net, self.weight
        if self.takes_scale:
            grads = net.gradient(x_batch, t_batch,
                                 scale=(self.optimizer.lr if self.folded else 1.0) * weight)
            return [grads[k] for k in self.keys]
        grads = net.gradient(x_batch, t_batch)
        return [grads[k] * weight for k in self.keys]

    def __call__(self, idx: Array, /) -> Array:
        xp, parallel, keys = self.xp, self.parallel, self.keys
        mine = idx[self.lo:self.hi]
        x_batch = xp.take(self.x_train, mine, axis=0)
        t_batch = xp.take(self.t_train, mine, axis=0)
        values = self._gradients(x_batch, t_batch)
        loss = xp.asarray(self.read_loss(x_batch, t_batch), dtype=self.dtype, device=self.device)
        tail = [xp.reshape(loss * self.weight, (1,))]
        if self.host:
            tail.append(xp.asarray([1.0 if parallel._stop else 0.0], dtype=self.dtype,
                                   device=self.device))
        # parallel.comm.allreduce_ is looked up each step (benchmarks.parallel times it).
        buf = parallel.comm.allreduce_(_pack(xp, values, tail))
        summed = dict(zip(keys, _unpack(xp, buf, values), strict=True))
        if self.folded:
            for key in keys:
                self.params[key] -= summed[key]
        else:
            self.optimizer.update(self.params, summed)
        # The update is applied: the step is whole. poll() stops the loop before the next
        # one, on every rank alike, once the loop has counted this one.
        parallel._agreed = float(buf[-1]) > 0 if self.host else parallel._stop_elsewhere()
        return buf[buf.shape[0] - (2 if self.host else 1)]

    def context(self) -> AbstractContextManager[Any]:
        """Ctrl-C as a flag all ranks act on; any other error aborts every rank."""
        return self.parallel.guard()

    def poll(self) -> None:
        """Stop (``KeyboardInterrupt``) when the last allreduce carried a Ctrl-C."""
        self.parallel.poll()
