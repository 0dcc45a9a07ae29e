"""CuPy-only fast paths: fused elementwise kernels and the CUDA-graph training step.

Nothing here runs unless the namespace in hand is CuPy's: :func:`fused_kernels` returns ``None``
for every other backend, and CuPy is imported only when the caller already uses it. Layers and
the trainer keep a portable Array API path beside each fused branch.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import array_api_compat

from ..backend import Array, Namespace
from .kernels import KERNELS

__all__ = ["CudaGraphStep", "CupyKernels", "fused_kernels", "graph_safe"]

# >0 while a CUDA-graph step runs (warm-up, capture, fallback) or a caller asked for it: the
# layers then multiply with xpnet's own kernel, because CuPy refuses every cuBLAS call while a
# stream captures (cupy_backends/cuda/libs/cublas.pyx, setStream: NotImplementedError).
_GRAPH_SAFE = [0]


@contextlib.contextmanager
def graph_safe() -> Iterator[None]:
    """Inside, the layers' matmuls on CuPy use :meth:`CupyKernels.matmul` instead of cuBLAS.

    :class:`CudaGraphStep` turns it on around every step, eager or captured, so that its eager
    warm-up steps compute exactly what its graph replays compute. Not thread-safe (a process
    counter)."""
    _GRAPH_SAFE[0] += 1
    try:
        yield
    finally:
        _GRAPH_SAFE[0] -= 1


class CupyKernels:
    """Fused CuPy kernels for the 784-50-10 step, which is launch-bound on a GPU.

    One kernel each where the portable code launches two to four: ReLU forward (output and
    mask), ReLU backward, ``(softmax - one_hot(t)) * scale`` and the SGD update ``p -= lr * g``;
    and :meth:`matmul`, a plain matrix product that the layers use instead of cuBLAS inside
    :func:`graph_safe` (CUDA-graph capture). Layers use them only when :func:`fused_kernels`
    returns an instance (CuPy); every other backend takes the portable path. ``calls`` counts
    the fused launches.
    """

    def __init__(self, cupy: Any) -> None:
        self._cp = cupy
        self.calls = 0
        self._kernels: dict[str, Any] = {}

    def _kernel(self, key: str) -> Any:
        """The ``ElementwiseKernel`` of :data:`~xpnet.cuda.kernels.KERNELS` ``[key]``, made on
        first use (CuPy compiles it on its first launch per dtype and layout)."""
        kernel = self._kernels.get(key)
        if kernel is None:
            src = KERNELS[key]
            kernel = self._kernels[key] = self._cp.ElementwiseKernel(
                src.in_params, src.out_params, src.body, src.name)
        return kernel

    def uniform(self, shape: tuple[int, ...], dtype: Any, key: int, counter: Array) -> Array:
        """Uniform ``[0, 1)`` numbers of ``shape`` and ``dtype`` (float32/float64) drawn from the
        stream ``(key, counter)``, in one kernel; ``counter`` (a 0-d uint64 array on the
        device) is advanced in place by the number drawn."""
        self.calls += 1
        out = self._cp.empty(shape, dtype=dtype)
        if out.size:
            self._kernel("uniform")(self._cp.uint64(key), counter, out)
            counter += out.size
        return out

    @property
    def graph_safe(self) -> bool:
        """Whether the layers should multiply with :meth:`matmul` (inside :func:`graph_safe`)."""
        return _GRAPH_SAFE[0] > 0

    def matmul(self, a: Array, b: Array) -> Array:
        """``a @ b`` for 2-D ``a (M, K)`` and ``b (K, N)`` of one floating dtype, in one kernel
        (no cuBLAS: safe inside a CUDA-graph capture; meant for small shapes such as the
        784-50-10 step's). Any strides."""
        self.calls += 1
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            msg = f"matmul needs (M, K) and (K, N) arrays, got {a.shape} and {b.shape}"
            raise ValueError(msg)
        if a.dtype != b.dtype:
            msg = f"matmul needs one dtype, got {a.dtype} and {b.dtype}"
            raise TypeError(msg)
        (m, k), n = a.shape, b.shape[1]
        sa0, sa1 = (s // a.itemsize for s in a.strides)
        sb0, sb1 = (s // b.itemsize for s in b.strides)
        out = self._cp.empty((m, n), dtype=a.dtype)
        return self._kernel("matmul")(a, b, k, n, sa0, sa1, sb0, sb1, out)

    def relu_forward(self, x: Array) -> tuple[Array, Array]:
        """``(max(x, 0), x <= 0)`` in one kernel."""
        self.calls += 1
        return self._kernel("relu_forward")(x)

    def relu_backward(self, dout: Array, mask: Array) -> Array:
        """``dout`` with zeros where ``mask``, in one kernel (a new array)."""
        self.calls += 1
        return self._kernel("relu_backward")(dout, mask)

    def softmax_grad(self, y: Array, t: Array, scale: float, *, rows: bool) -> Array:
        """``(y - one_hot(t)) * scale`` for class indices ``t`` (``rows=False``) or label rows."""
        self.calls += 1
        scale = y.dtype.type(scale)
        if rows:
            return self._kernel("softmax_grad_rows")(y, t, scale)
        y = self._cp.ascontiguousarray(y)
        out = self._cp.empty_like(y)
        return self._kernel("softmax_grad_index")(y, t, scale, y.shape[-1], out)

    def sgd_update(self, p: Array, g: Array, lr: float) -> None:
        """``p -= lr * g`` in place, in one kernel (no ``lr * g`` temporary)."""
        self.calls += 1
        self._kernel("sgd_update")(g, p.dtype.type(lr), p)

    def _optimizer_kernel(self, name: str) -> Any:
        """The fused update kernel of optimizer ``name`` (counted as one fused launch)."""
        self.calls += 1
        return self._kernel(f"{name}_update")

    def momentum_update(self, p: Array, v: Array, g: Array, lr: float, momentum: float) -> None:
        """``v = momentum * v - lr * g; p += v`` in place, in one kernel."""
        t = p.dtype.type
        self._optimizer_kernel("momentum")(g, t(lr), t(momentum), p, v)

    def nesterov_update(self, p: Array, v: Array, g: Array, lr: float, momentum: float) -> None:
        """The book's Nesterov step ``p += momentum**2 * v; p -= (1 + momentum) * lr * g;
        v = momentum * v - lr * g`` in place, in one kernel."""
        t = p.dtype.type
        self._optimizer_kernel("nesterov")(g, t(lr), t(momentum), t(momentum * momentum),
                                           t((1.0 + momentum) * lr), p, v)

    def adagrad_update(self, p: Array, h: Array, g: Array, lr: float, eps: float) -> None:
        """``h += g * g; p -= lr * g / (sqrt(h) + eps)`` in place, in one kernel."""
        t = p.dtype.type
        self._optimizer_kernel("adagrad")(g, t(lr), t(eps), p, h)

    def rmsprop_update(self, p: Array, h: Array, g: Array, lr: float, decay_rate: float,
                       eps: float) -> None:
        """``h = decay_rate * h + (1 - decay_rate) * g * g; p -= lr * g / (sqrt(h) + eps)``
        in place, in one kernel."""
        t = p.dtype.type
        self._optimizer_kernel("rmsprop")(g, t(lr), t(decay_rate), t(1.0 - decay_rate), t(eps),
                                          p, h)

    def adam_update(self, p: Array, m: Array, v: Array, g: Array, step: Array, lr: float,
                    beta1: float, beta2: float, eps: float) -> None:
        """The book's Adam step in place, in one kernel: ``m += (1 - beta1) * (g - m);
        v += (1 - beta2) * (g**2 - v); p -= lr_t * m / (sqrt(v) + eps)`` with
        ``lr_t = lr * sqrt(1 - beta2**step) / (1 - beta1**step)``. ``step`` is the update count
        as a 0-d array on the device, so the kernel reads it there (a CUDA graph replays it)."""
        t = p.dtype.type
        self._optimizer_kernel("adam")(g, step, t(lr), t(beta1), t(beta2), t(eps), p, m, v)

    # --- convolution (chapter 7): one kernel each (layouts: see xpnet.cuda.kernels).

    def im2col_t(self, xt: Array, fh: int, fw: int, stride: int, pad: int, oh: int,
                 ow: int) -> Array:
        """Transposed columns ``(C*fh*fw, N*oh*ow)`` of ``xt`` ``(C, N, H, W)``, in one kernel."""
        self.calls += 1
        cp = self._cp
        xt = cp.ascontiguousarray(xt)
        C, N, H, W = xt.shape
        col = cp.empty((C * fh * fw, N * oh * ow), dtype=xt.dtype)
        self._kernel("im2col_t")(xt, C, N, H, W, fh, fw, stride, pad, oh, ow, col)
        return col

    def col2im_t(self, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
                 stride: int, pad: int, oh: int, ow: int) -> Array:
        """The image ``(C, N, H, W)`` summed from transposed columns (adjoint of ``im2col_t``)."""
        self.calls += 1
        cp = self._cp
        col_t = cp.ascontiguousarray(col_t)
        C, N, H, W = shape_t
        img = cp.empty(shape_t, dtype=col_t.dtype)
        self._kernel("col2im_t")(col_t, C, N, H, W, fh, fw, stride, pad, oh, ow, img)
        return img

    def max_pool_forward(self, xt: Array, ph: int, pw: int, stride: int, pad: int, oh: int,
                         ow: int) -> tuple[Array, Array]:
        """Max pooling of ``xt`` ``(C, N, H, W)`` with zero padding: ``(max, arg)``, both
        ``(C, N, oh, ow)``; ``arg`` (int32) is the row-major window position of the first
        maximum."""
        self.calls += 1
        cp = self._cp
        xt = cp.ascontiguousarray(xt)
        C, N, H, W = xt.shape
        out = cp.empty((C, N, oh, ow), dtype=xt.dtype)
        arg = cp.empty((C, N, oh, ow), dtype=cp.int32)
        self._kernel("max_pool_forward")(xt, C, N, H, W, ph, pw, stride, pad, oh, ow,
                                              out, arg)
        return out, arg

    def max_pool_backward(self, dout_t: Array, arg: Array, shape_t: tuple[int, int, int, int],
                          ph: int, pw: int, stride: int, pad: int, oh: int, ow: int) -> Array:
        """``dx`` ``(C, N, H, W)``: each ``dout_t`` element goes to its window's ``arg``."""
        self.calls += 1
        cp = self._cp
        dout_t = cp.ascontiguousarray(dout_t)
        C, N, H, W = shape_t
        dx = cp.empty(shape_t, dtype=dout_t.dtype)
        self._kernel("max_pool_backward")(dout_t, arg, C, N, H, W, ph, pw, stride, pad,
                                               oh, ow, dx)
        return dx


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
            import cupy
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
