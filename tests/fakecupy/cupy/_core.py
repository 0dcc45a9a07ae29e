"""The fake CuPy's device model: NumPy buffers, streams, capture, memory pools.

Every operation is a "launch" on the current stream. The rules CuPy 14 and CUDA enforce while a
stream captures are modelled (each with the error CuPy raises) and, beyond them, two bugs that
real hardware lets pass silently are made loud:

* cuBLAS (``matmul``/``dot``/``@`` of floating arrays) while the current stream captures:
  ``NotImplementedError`` (``cupy_backends/cuda/libs/cublas.pyx`` ``setStream``).
* Host syncs while capturing: ``get()``/``float()``/``int()``/``bool()``/``item()``:
  ``RuntimeError`` ("the current stream is capturing, so D2H transfers are disallowed",
  ``cupy/cuda/memory.pyx``); host-to-device uploads likewise ("H2D transfers");
  ``Stream.synchronize()``/``Device.synchronize()`` on a capturing stream: ``CUDARuntimeError``
  ``cudaErrorStreamCaptureUnsupported`` and the capture is invalidated, so ``end_capture()``
  raises ``cudaErrorStreamCaptureInvalidated`` (CuPy's ``test_stream_capture_failure1/6``).
  ``__array__`` always raises ``TypeError`` as CuPy does (no implicit conversion).
* Work on the legacy stream while another stream captures: if the capturing stream is blocking,
  ``CUDARuntimeError`` ``cudaErrorStreamCaptureImplicit`` (invalidates); if it is non-blocking
  (as CuPy's examples and xpnet's graph step make it), the work runs once, now, outside the
  graph, silently, exactly as CUDA does (counted in ``STATS["outside_graph"]``, so tests can
  show it never happens). Work on any other stream: ``RuntimeError`` (stricter than CUDA, where
  that work silently stays out of the graph).
* Allocation during capture from the default memory pool (only an allocator installed with
  ``cupy.cuda.using_allocator`` may serve a capture): ``RuntimeError`` (stricter than CUDA, where
  it works but the pool may later hand the graph's buffers to other arrays).
* Unordered streams: an array last written on stream A and used on stream B with no event wait,
  ``A.synchronize()`` or device sync in between (and no implicit legacy/blocking ordering) raises
  ``RuntimeError`` (a data race on hardware).

While capturing, nothing runs: out-of-place operations get new buffers filled with garbage
(0xFF bytes: NaN for floats, -1 for integers) and in-place writes are only recorded;
``Graph.launch()`` replays everything recorded, in order, on the same memory, so a replay gives
real values and only a replay does.

Memory: every array lives in a block of a memory pool (the device's default pool, or the pool
of ``using_allocator``), as in CuPy: a block freed (its last array gone) goes back to its pool
and the next allocation of the same rounded size (512 bytes) gets the same memory. A graph holds
raw memory, not arrays: what a captured step rebinds instead of updating in place is freed, and
its memory is handed to later temporaries, which the replays then overwrite.

Devices: two (``Device(0)``, ``Device(1)``), with CuPy's current-device rules: arrays live on the
device that was current when they were allocated; an operation reading an array of another
device raises CuPy's ``ValueError`` (peer access unavailable); ``with stream`` on another
device's stream raises CuPy's ``RuntimeError``.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

import numpy as np

_CAPTURE_UNSUPPORTED = ("cudaErrorStreamCaptureUnsupported: operation not permitted when stream "
                        "is capturing")


class CUDARuntimeError(RuntimeError):
    """The fake's ``cupy.cuda.runtime.CUDARuntimeError``."""

    def __init__(self, status: str) -> None:
        # CuPy's takes the CUDA status code; the fake passes the error's name and what it means.
        super().__init__(status)


DEVICE_COUNT = 2


class _State(threading.local):
    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.allocators: list[Any] = []
        self.device = 0


def current_device() -> int:
    """The id of the current device (thread-local, as in CUDA)."""
    return _STATE.device


def set_device(device_id: int) -> None:
    if not 0 <= device_id < DEVICE_COUNT:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    _STATE.device = device_id


_STATE = _State()
_SEQ = [0]
DEVICE_DONE = [0]  # seq up to which a device-wide sync has finished everything
_CAPTURE: dict[str, Any] = {"stream": None}  # the one stream capturing now (process-wide)
STATS = {"launches": 0, "cublas": 0, "host_syncs": 0, "compiled": 0, "outside_graph": 0}
#: Every ElementwiseKernel launch's (name, placeholder dtypes, scalar parameters), so tests can
#: check that each variant xpnet launches is one the NVRTC compile check builds.
KERNEL_LAUNCHES: set[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]] = set()


def _next_seq() -> int:
    _SEQ[0] += 1
    return _SEQ[0]


class Event:
    def __init__(self, block: bool = False, disable_timing: bool = False,
                 interprocess: bool = False) -> None:
        self.mark: tuple[Stream, int] | None = None

    def record(self, stream: Stream | None = None) -> None:
        stream = current_stream() if stream is None else stream
        self.mark = (stream, stream.last)

    def synchronize(self) -> None:
        if self.mark is not None:
            stream, seq = self.mark
            _host_wait(stream, seq)

    @property
    def done(self) -> bool:
        return True


class Stream:
    """A CUDA stream: ``Stream.null`` is the legacy default stream."""

    null: Stream

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False,
                 priority: Any = None) -> None:
        self.is_legacy = bool(null)
        # CuPy: the stream belongs to the device current at its creation (-1: the legacy one).
        self.device_id = -1 if null else current_device()
        self.non_blocking = bool(non_blocking)
        self.ptr = 0 if null else id(self)
        self.last = 0  # seq of the last work queued here
        self.waited: dict[Stream, int] = {}  # what this stream has waited for, per stream
        self.host_done = 0  # seq up to which the host has seen this stream finish
        self.invalidated: Exception | None = None
        self.recorded: list[Any] | None = None

    def __repr__(self) -> str:
        kind = "legacy" if self.is_legacy else ("non-blocking" if self.non_blocking else "blocking")
        return f"<fake cupy Stream {kind} {self.ptr:#x}>"

    def _check_device(self) -> None:
        if self.device_id not in (-1, current_device()):
            msg = (f"The device that the stream is created on ({self.device_id}) does not match "
                   f"with the current device ({current_device()})")
            raise RuntimeError(msg)

    def __enter__(self) -> Stream:
        self._check_device()
        _STATE.streams.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _STATE.streams.pop()

    def use(self) -> Stream:
        self._check_device()
        _STATE.streams[:] = [self]
        return self

    @property
    def is_non_blocking(self) -> bool:
        return self.non_blocking

    def record(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def wait_event(self, event: Event) -> None:
        if event.mark is not None:
            stream, seq = event.mark
            self.waited[stream] = max(self.waited.get(stream, 0), seq)

    def synchronize(self) -> None:
        if _CAPTURE["stream"] is self:
            err = CUDARuntimeError(_CAPTURE_UNSUPPORTED)
            self.invalidated = self.invalidated or err
            raise err
        STATS["host_syncs"] += 1
        self.host_done = self.last

    @property
    def done(self) -> bool:
        return True

    def begin_capture(self, mode: Any = None) -> None:
        if self.is_legacy:
            msg = "cannot capture on the default (legacy) stream"
            raise RuntimeError(msg)
        if _CAPTURE["stream"] is not None:
            raise CUDARuntimeError("cudaErrorIllegalState: another stream is capturing")
        _CAPTURE["stream"] = self
        self.recorded, self.invalidated = [], None

    def end_capture(self) -> Graph:
        if _CAPTURE["stream"] is not self:
            raise CUDARuntimeError("cudaErrorIllegalState: the stream is not capturing")
        _CAPTURE["stream"] = None
        recorded, self.recorded = self.recorded, None
        if self.invalidated is not None:
            self.invalidated = None
            raise CUDARuntimeError("cudaErrorStreamCaptureInvalidated: operation failed due to "
                                   "a previous error during capture")
        return Graph(recorded)

    def is_capturing(self) -> bool:
        return _CAPTURE["stream"] is self


Stream.null = Stream(null=True)


def current_stream() -> Stream:
    """The innermost ``with stream`` of the current device, else the legacy stream."""
    device = current_device()
    for stream in reversed(_STATE.streams):
        if stream.device_id in (-1, device):
            return stream
    return Stream.null


def capturing() -> Stream | None:
    return _CAPTURE["stream"]


def _host_wait(stream: Stream, seq: int) -> None:
    STATS["host_syncs"] += 1
    stream.host_done = max(stream.host_done, seq)


class Graph:
    """A captured graph: ``launch()`` replays the recorded work on the same buffers."""

    def __init__(self, recorded: list[Any]) -> None:
        self._ops = recorded
        self.launches = 0

    def launch(self, stream: Stream | None = None) -> None:
        stream = current_stream() if stream is None else stream
        enqueue(stream)
        seq = stream.last
        with np.errstate(all="ignore"):  # replays read what the GPU would: maybe garbage
            for op, written in self._ops:
                op()
                for ref in written:
                    buf = ref()
                    if buf is not None:
                        buf.writer = (stream, seq)
        self.launches += 1

    def upload(self, stream: Stream | None = None) -> None:
        pass


def enqueue(stream: Stream | None = None) -> Stream:
    """Queue one operation on the current stream, enforcing the capture rules."""
    stream = current_stream() if stream is None else stream
    cap = _CAPTURE["stream"]
    if cap is not None and stream is not cap:
        if stream.is_legacy and not cap.non_blocking:
            err = CUDARuntimeError("cudaErrorStreamCaptureImplicit: legacy-stream work while "
                                   f"{cap!r} is capturing")
            cap.invalidated = cap.invalidated or err
            raise err
        if stream.is_legacy:  # CUDA: runs now, outside the graph, and never again
            STATS["outside_graph"] += 1
        else:
            msg = (f"fake cupy: work queued on {stream!r} while {cap!r} is capturing; it would "
                   "run eagerly, outside the graph")
            raise RuntimeError(msg)
    STATS["launches"] += 1
    stream.last = _next_seq()
    return stream


class Buffer:
    """Device memory that views share: a block of a pool on one device. ``writer`` is the last
    (stream, seq) that wrote it. When the last array using it is gone, the block goes back to
    its pool (``__del__``), as CuPy's pooled memory does."""

    __slots__ = ("__weakref__", "device", "memptr", "nbytes", "writer")

    def __init__(self, nbytes: int, stream: Stream | None = None) -> None:
        self.nbytes = nbytes
        self.writer: tuple[Stream, int] | None = None
        self.device = current_device()
        self.memptr = allocate(nbytes)

    def view(self, shape: Any, dtype: Any, order: str = "C") -> np.ndarray:
        """The block as an array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        return np.ndarray(shape, dtype=dtype, buffer=self.memptr.block, order=order)

    def __del__(self) -> None:
        memptr = getattr(self, "memptr", None)
        if memptr is not None:
            memptr.release()


def new_array(shape: Any, dtype: Any, stream: Stream, order: str = "C") -> tuple[np.ndarray,
                                                                                   Buffer]:
    """Memory for a new array on the current device, from the current pool; filled with
    garbage while ``stream`` captures (nothing has run yet)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = Buffer(nbytes, stream)
    data = buf.view(shape, dtype, order)
    if _CAPTURE["stream"] is stream and nbytes:
        buf.memptr.block[:nbytes] = 0xFF
    return data, buf


def check_device(buf: Buffer) -> None:
    """CuPy's peer-access check (``cupy/_core/_kernel.pyx``): an array of another device
    than the current one; the fake models GPUs without peer access."""
    device = current_device()
    if buf.device != device:
        msg = (f"The device where the array resides ({buf.device}) is different from the "
               f"current device ({device}). Peer access is unavailable between these devices.")
        raise ValueError(msg)


def check_access(buf: Buffer, stream: Stream) -> None:
    """Raise if ``buf`` was last written on another stream with no ordering to ``stream``."""
    if buf.writer is None:
        return
    src, seq = buf.writer
    done = max(src.host_done, DEVICE_DONE[0], stream.waited.get(src, 0))
    if src is stream or seq <= done:
        return
    # The legacy stream and blocking streams order with each other implicitly.
    if (src.is_legacy and not stream.non_blocking) or (stream.is_legacy and not src.non_blocking):
        return
    msg = (f"fake cupy: an array last written on {src!r} is used on {stream!r} with no "
           "ordering between them (a data race on a GPU): create it on the stream that uses it, "
           f"or make that stream wait for an event recorded on the other, or synchronize it")
    raise RuntimeError(msg)


class MemoryPointer:
    """A block of ``pool`` on ``device_id``; ``release()`` gives it back."""

    def __init__(self, pool: MemoryPool | None, block: np.ndarray, size: int,
                 device_id: int) -> None:
        self.mem = pool
        self.block = block
        self.size = size
        self.device_id = device_id
        self.ptr = block.ctypes.data

    def release(self) -> None:
        if self.mem is not None:
            self.mem._give_back(self)
            self.mem = None


_ROUND = 512  # CuPy's pool rounds allocations up to multiples of 512 bytes


class MemoryPool:
    """A pool per device: freed blocks are kept and handed to the next allocation of the same
    rounded size (CuPy reuses freed memory the same way, within a pool and a device)."""

    def __init__(self, allocator: Any = None) -> None:
        self.n_allocs = 0
        self.n_reused = 0
        self._free: dict[tuple[int, int], list[np.ndarray]] = {}
        self._used = 0
        self._total = 0

    def malloc(self, size: int) -> MemoryPointer:
        self.n_allocs += 1
        rounded = max(_ROUND, -(-int(size) // _ROUND) * _ROUND)
        device = current_device()
        free = self._free.get((device, rounded))
        if free:
            block = free.pop()
            self.n_reused += 1
        else:
            block = np.empty(rounded, dtype=np.uint8)
            self._total += rounded
        self._used += rounded
        return MemoryPointer(self, block, int(size), device)

    def _give_back(self, ptr: MemoryPointer) -> None:
        self._used -= ptr.block.nbytes
        self._free.setdefault((ptr.device_id, ptr.block.nbytes), []).append(ptr.block)

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._total

    def n_free_blocks(self) -> int:
        return sum(len(v) for v in self._free.values())

    def free_all_blocks(self, stream: Any = None) -> None:
        self._total -= sum(b.nbytes for v in self._free.values() for b in v)
        self._free.clear()


_DEFAULT_POOL = MemoryPool()


def get_default_memory_pool() -> MemoryPool:
    return _DEFAULT_POOL


@contextlib.contextmanager
def using_allocator(allocator: Any = None):
    _STATE.allocators.append(allocator)
    try:
        yield
    finally:
        _STATE.allocators.pop()


def allocate(nbytes: int) -> MemoryPointer:
    allocator = _STATE.allocators[-1] if _STATE.allocators else None
    if allocator is None:
        if _CAPTURE["stream"] is not None and current_stream() is _CAPTURE["stream"]:
            msg = ("fake cupy: allocation from the default memory pool during stream capture; "
                   "serve the capture from a private pool (cupy.cuda.using_allocator(pool.malloc))")
            raise RuntimeError(msg)
        return _DEFAULT_POOL.malloc(nbytes)
    return allocator(nbytes)


def record(op: Any, written: list[Buffer], stream: Stream) -> bool:
    """If ``stream`` is capturing, keep ``op`` for replay (it does not run now); returns
    whether it did. The graph keeps the memory ``op`` touches, not the arrays (``op`` must hold
    NumPy views only), so freeing an array does not keep its block from being reused."""
    cap = _CAPTURE["stream"]
    if cap is None or stream is not cap:
        return False
    cap.recorded.append((op, [weakref.ref(b) for b in written]))
    return True


def host_sync(what: str) -> Stream:
    """A device-to-host transfer on the current stream (``get()`` and friends)."""
    stream = current_stream()
    if _CAPTURE["stream"] is stream:
        msg = f"the current stream is capturing, so D2H transfers are disallowed ({what})"
        raise RuntimeError(msg)
    enqueue(stream)
    stream.synchronize()
    return stream


def h2d() -> Stream:
    stream = current_stream()
    if _CAPTURE["stream"] is stream:
        msg = "the current stream is capturing, so H2D transfers are disallowed"
        raise RuntimeError(msg)
    return enqueue(stream)


def device_synchronize() -> None:
    cap = _CAPTURE["stream"]
    if cap is not None:
        err = CUDARuntimeError(_CAPTURE_UNSUPPORTED)
        cap.invalidated = cap.invalidated or err
        raise err
    STATS["host_syncs"] += 1
    DEVICE_DONE[0] = _SEQ[0]
