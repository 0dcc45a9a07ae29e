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
* Work on the legacy stream while another stream captures: ``CUDARuntimeError``
  ``cudaErrorStreamCaptureImplicit`` (invalidates). Work on any other stream: ``RuntimeError``
  (stricter than CUDA, where that work silently stays out of the graph).
* Allocation during capture from the default memory pool (only an allocator installed with
  ``cupy.cuda.using_allocator`` may serve a capture): ``RuntimeError`` (stricter than CUDA, where
  it works but the pool may later hand the graph's buffers to other arrays).
* Unordered streams: an array last written on stream A and used on stream B with no event wait,
  ``A.synchronize()`` or device sync in between (and no implicit legacy/blocking ordering) raises
  ``RuntimeError`` (a data race on hardware).

While capturing, out-of-place operations compute into new buffers (their values are discarded
like uninitialised memory would be) and in-place writes are only recorded; ``Graph.launch()``
replays everything recorded, in order, on the same buffers, so a replay gives real values.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any


class CUDARuntimeError(RuntimeError):
    """The fake's ``cupy.cuda.runtime.CUDARuntimeError``."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"{name}: {detail}" if detail else name)


class _State(threading.local):
    def __init__(self) -> None:
        self.streams: list[Stream] = []
        self.allocators: list[Any] = []


_STATE = _State()
_SEQ = [0]
DEVICE_DONE = [0]  # seq up to which a device-wide sync has finished everything
_CAPTURE: dict[str, Any] = {"stream": None}  # the one stream capturing now (process-wide)
STATS = {"launches": 0, "cublas": 0, "host_syncs": 0, "compiled": 0}


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

    def __init__(self, null: bool = False, non_blocking: bool = False, ptds: bool = False) -> None:
        self.is_legacy = bool(null)
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

    def __enter__(self) -> Stream:
        _STATE.streams.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _STATE.streams.pop()

    def use(self) -> Stream:
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
            err = CUDARuntimeError("cudaErrorStreamCaptureUnsupported",
                                   "operation not permitted when stream is capturing")
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
            raise CUDARuntimeError("cudaErrorIllegalState", "another stream is capturing")
        _CAPTURE["stream"] = self
        self.recorded, self.invalidated = [], None

    def end_capture(self) -> Graph:
        if _CAPTURE["stream"] is not self:
            raise CUDARuntimeError("cudaErrorIllegalState", "the stream is not capturing")
        _CAPTURE["stream"] = None
        recorded, self.recorded = self.recorded, None
        if self.invalidated is not None:
            self.invalidated = None
            raise CUDARuntimeError("cudaErrorStreamCaptureInvalidated",
                                   "operation failed due to a previous error during capture")
        return Graph(recorded)

    def is_capturing(self) -> bool:
        return _CAPTURE["stream"] is self


Stream.null = Stream(null=True)


def current_stream() -> Stream:
    return _STATE.streams[-1] if _STATE.streams else Stream.null


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
        for op, written in self._ops:
            op()
            for buf in written:
                buf.writer = (stream, seq)
        self.launches += 1

    def upload(self, stream: Stream | None = None) -> None:
        pass


def enqueue(stream: Stream | None = None) -> Stream:
    """Queue one operation on the current stream, enforcing the capture rules."""
    stream = current_stream() if stream is None else stream
    cap = _CAPTURE["stream"]
    if cap is not None and stream is not cap:
        if stream.is_legacy:
            err = CUDARuntimeError(
                "cudaErrorStreamCaptureImplicit",
                f"work queued on the legacy stream while {cap!r} is capturing")
            cap.invalidated = cap.invalidated or err
            raise err
        msg = (f"fake cupy: work queued on {stream!r} while {cap!r} is capturing; it would run "
               "eagerly, outside the graph")
        raise RuntimeError(msg)
    STATS["launches"] += 1
    stream.last = _next_seq()
    return stream


class Buffer:
    """Device memory: what views share; ``writer`` is the last (stream, seq) that wrote it."""

    __slots__ = ("nbytes", "writer")

    def __init__(self, nbytes: int, stream: Stream) -> None:
        self.nbytes = nbytes
        self.writer: tuple[Stream, int] | None = None
        allocate(nbytes)


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
    def __init__(self, pool: Any, size: int) -> None:
        self.mem = pool
        self.size = size
        self.ptr = 0


class MemoryPool:
    """Counts allocations; the default pool refuses to serve a capture."""

    def __init__(self, allocator: Any = None) -> None:
        self.n_allocs = 0
        self.bytes = 0

    def malloc(self, size: int) -> MemoryPointer:
        self.n_allocs += 1
        self.bytes += size
        return MemoryPointer(self, size)

    def used_bytes(self) -> int:
        return self.bytes

    def total_bytes(self) -> int:
        return self.bytes

    def free_all_blocks(self, stream: Any = None) -> None:
        pass


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


def allocate(nbytes: int) -> None:
    allocator = _STATE.allocators[-1] if _STATE.allocators else None
    if allocator is None:
        if _CAPTURE["stream"] is not None:
            msg = ("fake cupy: allocation from the default memory pool during stream capture; "
                   "serve the capture from a private pool (cupy.cuda.using_allocator(pool.malloc))")
            raise RuntimeError(msg)
        _DEFAULT_POOL.malloc(nbytes)
    else:
        allocator(nbytes)


def record(op: Any, written: list[Buffer]) -> bool:
    """While the current stream captures, keep ``op`` for replay; returns whether it did."""
    cap = _CAPTURE["stream"]
    if cap is None:
        return False
    cap.recorded.append((op, written))
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
        err = CUDARuntimeError("cudaErrorStreamCaptureUnsupported",
                               "operation not permitted when stream is capturing")
        cap.invalidated = cap.invalidated or err
        raise err
    STATS["host_syncs"] += 1
    DEVICE_DONE[0] = _SEQ[0]
