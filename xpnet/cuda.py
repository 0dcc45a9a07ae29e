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

from .backend import Array, Namespace

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
        # One thread per output element; strides in elements, so transposed views need no copy.
        self._matmul = kernel(
            "raw T a, raw T b, int64 K, int64 N, int64 sa0, int64 sa1, int64 sb0, int64 sb1",
            "T c",
            "const long long r = i / N, col = i % N; "
            "const T* pa = &a[0] + r * sa0; const T* pb = &b[0] + col * sb1; "
            "T acc = (T)0; "
            "for (long long k = 0; k < K; ++k) acc += pa[k * sa1] * pb[k * sb0]; "
            "c = acc;",
            "xpnet_matmul")

        # Counter-based uniform numbers: element i of a draw is splitmix64(key + (ctr + i) * phi)
        # scaled to [0, 1) with the type's mantissa bits (24 for float, 53 for double), so the
        # whole state is (key, ctr) and ctr lives on the device (a captured graph advances it).
        self._uniform = kernel(
            "uint64 key, raw uint64 ctr", "T u",
            "unsigned long long z = key + (ctr[0] + (unsigned long long)i) "
            "* 0x9E3779B97F4A7C15ULL; "
            "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; "
            "z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL; "
            "z ^= z >> 31; "
            "u = sizeof(T) == 4 ? (T)((float)(z >> 40) * (1.0f / 16777216.0f)) "
            ": (T)((double)(z >> 11) * (1.0 / 9007199254740992.0));",
            "xpnet_uniform")

    def uniform(self, shape: tuple[int, ...], dtype: Any, key: int, counter: Array) -> Array:
        """Uniform ``[0, 1)`` numbers of ``shape`` and ``dtype`` (float32/float64) drawn from the
        stream ``(key, counter)``, in one kernel; ``counter`` (a 0-d uint64 array on the
        device) is advanced in place by the number drawn."""
        self.calls += 1
        out = self._cp.empty(shape, dtype=dtype)
        if out.size:
            self._uniform(self._cp.uint64(key), counter, out)
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
        return self._matmul(a, b, k, n, sa0, sa1, sb0, sb1, out)

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

    def _optimizer_kernel(self, name: str) -> Any:
        """The fused optimizer kernel ``name``, made on first use. Each updates one parameter
        ``p`` and its state in place, element by element, in the parameter's dtype ``T``
        (float32 or float64; ``sqrt`` and ``pow`` are the C overloads for either)."""
        kernels = self.__dict__.setdefault("_optimizer_kernels", {})
        if name not in kernels:
            in_params, out_params, body = {
                "momentum": ("T g, T lr, T momentum", "T p, T v",
                             "v = momentum * v - lr * g; p += v;"),
                "nesterov": ("T g, T lr, T momentum, T momentum_sq, T lr_ahead", "T p, T v",
                             "p += momentum_sq * v; p -= lr_ahead * g; "
                             "v = momentum * v - lr * g;"),
                "adagrad": ("T g, T lr, T eps", "T p, T h",
                            "h += g * g; p -= lr * g / (sqrt(h) + eps);"),
                "rmsprop": ("T g, T lr, T decay, T mix, T eps", "T p, T h",
                            "h *= decay; h += mix * g * g; p -= lr * g / (sqrt(h) + eps);"),
                "adam": ("T g, float64 step, T lr, T beta1, T beta2, T eps", "T p, T m, T v",
                         "const T lr_t = lr * sqrt((T)1 - pow(beta2, (T)step)) "
                         "/ ((T)1 - pow(beta1, (T)step)); "
                         "m += ((T)1 - beta1) * (g - m); "
                         "v += ((T)1 - beta2) * (g * g - v); "
                         "p -= lr_t * m / (sqrt(v) + eps);"),
            }[name]
            kernels[name] = self._cp.ElementwiseKernel(in_params, out_params, body,
                                                       f"xpnet_{name}_update")
        self.calls += 1
        return kernels[name]

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

    # --- convolution (chapter 7): one kernel each, compiled on first use. Layouts are those of
    # xpnet.conv: images (C, N, H, W), transposed columns (C*FH*FW, N*OH*OW), pooled (C, N, OH,
    # OW); zero padding is done by the index arithmetic, and the scatters are gathers (each
    # output element sums what reads it), so no atomics and deterministic sums.

    def _conv_kernel(self, name: str) -> Any:
        found = self.__dict__.setdefault("_conv_kernels", {})
        if name not in found:
            params, outs, body = _CONV_KERNELS[name]
            found[name] = self._cp.ElementwiseKernel(params, outs, body, f"xpnet_{name}")
        return found[name]

    def im2col_t(self, xt: Array, fh: int, fw: int, stride: int, pad: int, oh: int,
                 ow: int) -> Array:
        """Transposed columns ``(C*fh*fw, N*oh*ow)`` of ``xt`` ``(C, N, H, W)``, in one kernel."""
        self.calls += 1
        cp = self._cp
        xt = cp.ascontiguousarray(xt)
        C, N, H, W = xt.shape
        col = cp.empty((C * fh * fw, N * oh * ow), dtype=xt.dtype)
        self._conv_kernel("im2col_t")(xt, C, N, H, W, fh, fw, stride, pad, oh, ow, col)
        return col

    def col2im_t(self, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
                 stride: int, pad: int, oh: int, ow: int) -> Array:
        """The image ``(C, N, H, W)`` summed from transposed columns (adjoint of ``im2col_t``)."""
        self.calls += 1
        cp = self._cp
        col_t = cp.ascontiguousarray(col_t)
        C, N, H, W = shape_t
        img = cp.empty(shape_t, dtype=col_t.dtype)
        self._conv_kernel("col2im_t")(col_t, C, N, H, W, fh, fw, stride, pad, oh, ow, img)
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
        self._conv_kernel("max_pool_forward")(xt, C, N, H, W, ph, pw, stride, pad, oh, ow,
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
        self._conv_kernel("max_pool_backward")(dout_t, arg, C, N, H, W, ph, pw, stride, pad,
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
    nothing else uses, so the graph's buffers are never handed to other arrays. The returned
    array is overwritten by the next launch: copy it to keep it.

    :attr:`stream` is non-blocking: run all other work of the loop on it (``with step.stream:``)
    so it is ordered with the graph, and synchronise it before reading the results on another
    stream. The first call synchronises the device once, so that everything made before it on
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
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self._pool = cupy.cuda.MemoryPool()
        self._ready = False
        self.graph: Any = None
        self.output: Any = None
        self.error: BaseException | None = None
        self.eager_calls = 0
        self.launches = 0

    def __call__(self) -> Array:
        cp = self._cp
        if not self._ready:
            cp.cuda.Device().synchronize()
            self._ready = True
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

# Kernel sources for CupyKernels' convolution methods: (params, outputs, body). Every body
# finds its element's coordinates from the flat index ``i`` (row-major, last axis fastest).
_SHAPE = "int32 C, int32 N, int32 H, int32 W, int32 fh, int32 fw, int32 s, int32 p, " \
         "int32 oh, int32 ow"
_CONV_KERNELS: dict[str, tuple[str, str, str]] = {
    "im2col_t": (
        "raw T x, " + _SHAPE, "T col",
        """
        long long r = i;
        const int ox = (int)(r % ow); r /= ow;
        const int oy = (int)(r % oh); r /= oh;
        const int n = (int)(r % N); r /= N;
        const int kx = (int)(r % fw); r /= fw;
        const int ky = (int)(r % fh);
        const int c = (int)(r / fh);
        const int y = oy * s + ky - p, xx = ox * s + kx - p;
        col = (y >= 0 && y < H && xx >= 0 && xx < W)
            ? x[(((long long)c * N + n) * H + y) * W + xx] : (T)0;
        """,
    ),
    "col2im_t": (
        "raw T col, " + _SHAPE, "T img",
        """
        long long r = i;
        const int xx = (int)(r % W); r /= W;
        const int y = (int)(r % H); r /= H;
        const int n = (int)(r % N);
        const int c = (int)(r / N);
        T acc = (T)0;
        for (int ky = 0; ky < fh; ++ky) {
            const int ty = y + p - ky;
            if (ty < 0 || ty % s != 0 || ty / s >= oh) continue;
            for (int kx = 0; kx < fw; ++kx) {
                const int tx = xx + p - kx;
                if (tx < 0 || tx % s != 0 || tx / s >= ow) continue;
                acc += col[(((((long long)c * fh + ky) * fw + kx) * N + n) * oh + ty / s) * ow
                           + tx / s];
            }
        }
        img = acc;
        """,
    ),
    "max_pool_forward": (
        "raw T x, " + _SHAPE, "T out, int32 arg",
        """
        long long r = i;
        const int ox = (int)(r % ow); r /= ow;
        const int oy = (int)(r % oh); r /= oh;
        const int n = (int)(r % N);
        const int c = (int)(r / N);
        T best = (T)0;
        int where = -1;
        for (int ky = 0; ky < fh; ++ky) {
            const int y = oy * s + ky - p;
            for (int kx = 0; kx < fw; ++kx) {
                const int xx = ox * s + kx - p;
                const T v = (y >= 0 && y < H && xx >= 0 && xx < W)
                    ? x[(((long long)c * N + n) * H + y) * W + xx] : (T)0;
                /* strictly greater keeps the first maximum; a NaN wins, as in argmax */
                if (where < 0 || v > best || (v != v && best == best)) {
                    best = v;
                    where = ky * fw + kx;
                }
            }
        }
        out = best;
        arg = where;
        """,
    ),
    "max_pool_backward": (
        "raw T dout, raw int32 arg, " + _SHAPE, "T dx",
        """
        long long r = i;
        const int xx = (int)(r % W); r /= W;
        const int y = (int)(r % H); r /= H;
        const int n = (int)(r % N);
        const int c = (int)(r / N);
        T acc = (T)0;
        for (int ky = 0; ky < fh; ++ky) {
            const int ty = y + p - ky;
            if (ty < 0 || ty % s != 0 || ty / s >= oh) continue;
            for (int kx = 0; kx < fw; ++kx) {
                const int tx = xx + p - kx;
                if (tx < 0 || tx % s != 0 || tx / s >= ow) continue;
                const long long o = (((long long)c * N + n) * oh + ty / s) * ow + tx / s;
                if (arg[o] == ky * fw + kx) acc += dout[o];
            }
        }
        dx = acc;
        """,
    ),
}
