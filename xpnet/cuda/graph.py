"""The CUDA-graph training step (CuPy): capture one step after a few eager ones, replay it.

:func:`graph_safe` marks the steps whose products must avoid cuBLAS (CuPy refuses it during a
capture): :class:`xpnet.ops.cupy_ops.CupyOps` then multiplies with xpnet's own kernel.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from ..backend import Array

__all__ = ["CudaGraphStep", "graph_safe", "graph_safe_active"]

# >0 while a CUDA-graph step runs (warm-up, capture, fallback) or a caller asked for it: the
# layers then multiply with xpnet's own kernel, because CuPy refuses every cuBLAS call while a
# stream captures (cupy_backends/cuda/libs/cublas.pyx, setStream: NotImplementedError).
_GRAPH_SAFE = [0]


@contextlib.contextmanager
def graph_safe() -> Iterator[None]:
    """Inside, the layers' matmuls on CuPy use xpnet's own kernel instead of cuBLAS.

    :class:`CudaGraphStep` turns it on around every step, eager or captured, so that its eager
    warm-up steps compute exactly what its graph replays compute. Not thread-safe (a process
    counter)."""
    _GRAPH_SAFE[0] += 1
    try:
        yield
    finally:
        _GRAPH_SAFE[0] -= 1


def graph_safe_active() -> bool:
    """Whether the current step runs inside :func:`graph_safe`."""
    return _GRAPH_SAFE[0] > 0


class CudaGraphStep:
    """Replays one training step as a CUDA graph (CuPy).

    ``fn()`` runs one step on static buffers: it reads the batch from arrays that the caller
    refills before each call, updates the parameters in place, and returns an array (the loss).
    The first ``warmup`` calls run ``fn`` eagerly (real steps, which also compile the kernels
    and fill a private memory pool); the next call captures ``fn`` on :attr:`stream` into a
    graph and launches it; later calls only launch the graph. Every step runs inside
    :func:`graph_safe` (no cuBLAS: CuPy refuses it during capture), so warm-up and replays do
    the same arithmetic. Every array ``fn`` allocates comes from a private memory pool that
    nothing else uses, so the graph's buffers are never handed to arrays outside the step.
    Inside it, ``fn`` must update persistent state in place (parameters, optimizer state,
    running statistics, counters): an array it rebinds is freed at capture and its memory
    goes to later temporaries, which every replay overwrites. The returned array is
    overwritten by the next launch: copy it to keep it.

    :attr:`stream` is non-blocking: run all other work of the loop on it (``with step.stream:``)
    so it is ordered with the graph, and synchronise it before reading the results on another
    stream. The stream, the pool and every call belong to the device that was current when the
    step was made (``train()`` makes the network's current).
    The first call synchronises the device once, so that everything made before it on
    other streams (data, parameters) is ready.

    If the capture fails, the first error is kept in :attr:`error`, one ``RuntimeWarning`` says
    so, and every later call runs ``fn`` eagerly (never capturing again).
    """

    def __init__(self, fn: Any, *, warmup: int = 3, cupy: Any = None) -> None:
        if cupy is None:
            import cupy as cupy_module

            cupy = cupy_module
        self._cp = cupy
        self._fn = fn
        self._warmup = int(warmup)
        # The device current now (the network's, in train()) owns the stream and the pool;
        # every call makes it current again.
        self._device = cupy.cuda.Device()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._pool = cupy.cuda.MemoryPool()
        self._ready = False
        self.graph: Any = None
        self.output: Any = None
        self.error: BaseException | None = None
        self.eager_calls = 0
        self.launches = 0

    def __call__(self) -> Array:
        with self._device:
            if not self._ready:
                self._device.synchronize()
                self._ready = True
            return self._step()

    def _step(self) -> Array:
        cp = self._cp
        with self.stream, cp.cuda.using_allocator(self._pool.malloc), graph_safe():
            if self.graph is None and self.eager_calls >= self._warmup and self.error is None:
                self._capture()
            if self.graph is None:
                self.eager_calls += 1
                return self._fn()
            self.graph.launch(stream=self.stream)
            self.launches += 1
            return self.output

    def _capture(self) -> None:
        """Capture ``fn`` into :attr:`graph`; on failure keep the first error and warn once.
        Nothing captured has run, so the caller then runs the step eagerly."""
        stream = self.stream
        stream.begin_capture()
        error: BaseException | None = None
        output = None
        try:
            output = self._fn()
        except Exception as exc:
            error = exc
        except BaseException:  # Ctrl-C: leave capture mode, then stop
            with contextlib.suppress(Exception):
                stream.end_capture()
            raise
        try:
            graph = stream.end_capture()
        except Exception as exc:  # an invalidated capture; the first error is the one to see
            error = error if error is not None else exc
        if error is not None:
            self.error = error
            msg = (f"CUDA graph capture failed, running eager steps instead: "
                   f"{type(error).__name__}: {error}")
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            return
        self.graph, self.output = graph, output
