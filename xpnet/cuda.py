"""CuPy-only fast paths: fused elementwise kernels and the CUDA-graph training step.

Nothing here runs unless the namespace in hand is CuPy's: :func:`fused_kernels` returns ``None``
for every other backend, and CuPy is imported only when the caller already uses it. Layers and
the trainer keep a portable Array API path beside each fused branch.
"""

from __future__ import annotations

from typing import Any

import array_api_compat

from .backend import Array, Namespace

__all__ = ["CudaGraphStep", "CupyKernels", "fused_kernels"]


class CupyKernels:
    """Fused CuPy kernels for the 784-50-10 step, which is launch-bound on a GPU.

    One kernel each where the portable code launches two to four: ReLU forward (output and
    mask), ReLU backward, ``(softmax - one_hot(t)) * scale`` and the SGD update ``p -= lr * g``.
    Layers use them only when :func:`fused_kernels` returns an instance (CuPy); every other
    backend takes the portable path. ``calls`` counts the fused launches.
    """

    def __init__(self, cupy: Any) -> None:
        self._cp = cupy
        kernel = cupy.ElementwiseKernel
        self.calls = 0
        self._relu_forward = kernel("T x", "T y, bool m", "m = x <= (T)0; y = m ? (T)0 : x;",
                                    "xpnet_relu_forward")
        self._relu_backward = kernel("T d, bool m", "T dx", "dx = m ? (T)0 : d;",
                                     "xpnet_relu_backward")
        self._softmax_grad_index = kernel(
            "raw T y, raw I t, T scale, int64 C", "T dx",
            "const long long n = i / C, c = i % C; "
            "dx = (y[i] - (c == (long long)t[n] ? (T)1 : (T)0)) * scale;",
            "xpnet_softmax_grad_index")
        self._softmax_grad_rows = kernel("T y, T t, T scale", "T dx", "dx = (y - t) * scale;",
                                         "xpnet_softmax_grad_rows")
        self._sgd = kernel("T g, T lr", "T p", "p -= lr * g;", "xpnet_sgd_update")

    def relu_forward(self, x: Array) -> tuple[Array, Array]:
        """``(max(x, 0), x <= 0)`` in one kernel."""
        self.calls += 1
        return self._relu_forward(x)

    def relu_backward(self, dout: Array, mask: Array) -> Array:
        """``dout`` with zeros where ``mask``, in one kernel (a new array)."""
        self.calls += 1
        return self._relu_backward(dout, mask)

    def softmax_grad(self, y: Array, t: Array, scale: float, *, rows: bool) -> Array:
        """``(y - one_hot(t)) * scale`` for class indices ``t`` (``rows=False``) or label rows."""
        self.calls += 1
        scale = y.dtype.type(scale)
        if rows:
            return self._softmax_grad_rows(y, t, scale)
        y = self._cp.ascontiguousarray(y)
        out = self._cp.empty_like(y)
        return self._softmax_grad_index(y, t, scale, y.shape[-1], out)

    def sgd_update(self, p: Array, g: Array, lr: float) -> None:
        """``p -= lr * g`` in place, in one kernel (no ``lr * g`` temporary)."""
        self.calls += 1
        self._sgd(g, p.dtype.type(lr), p)


_FUSED: dict[int, Any] = {}


def fused_kernels(xp: Namespace) -> CupyKernels | None:
    """The fused CuPy kernels when ``xp`` is CuPy's namespace, else ``None`` (cheap: a dict
    look-up per call; CuPy is imported only when ``xp`` already is CuPy)."""
    key = id(xp)
    try:
        return _FUSED[key]
    except KeyError:
        pass
    kernels = None
    if array_api_compat.is_cupy_namespace(xp):
        import cupy

        kernels = CupyKernels(cupy)
    _FUSED[key] = kernels
    return kernels


class CudaGraphStep:
    """Replays one training step as a CUDA graph (CuPy).

    ``fn()`` runs one step on static buffers: it reads the batch from arrays that the caller
    refills before each call, updates the parameters in place, and returns an array (the loss).
    The first ``warmup`` calls run ``fn`` eagerly (real steps, which also compile the kernels,
    create the cuBLAS handle and fill a private memory pool); the next call captures ``fn`` on
    :attr:`stream` into a graph and launches it; later calls only launch the graph. Every
    array ``fn`` allocates comes from a private memory pool that nothing else uses, so the
    graph's buffers are never handed to other arrays. The returned array is overwritten by the
    next launch: copy it to keep it. Run all other work of the loop on :attr:`stream` (``with
    step.stream:``) so it is ordered with the graph.
    """

    def __init__(self, fn: Any, *, warmup: int = 3, cupy: Any = None) -> None:
        if cupy is None:
            import cupy
        self._cp = cupy
        self._fn = fn
        self._warmup = int(warmup)
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._pool = cupy.cuda.MemoryPool()
        self.graph: Any = None
        self.output: Any = None
        self.eager_calls = 0
        self.launches = 0

    def __call__(self) -> Array:
        cp = self._cp
        with self.stream, cp.cuda.using_allocator(self._pool.malloc):
            if self.graph is None and self.eager_calls < self._warmup:
                self.eager_calls += 1
                return self._fn()
            if self.graph is None:
                self.stream.begin_capture()
                try:
                    output = self._fn()
                finally:
                    graph = self.stream.end_capture()
                self.graph, self.output = graph, output
            self.graph.launch(stream=self.stream)
            self.launches += 1
            return self.output
