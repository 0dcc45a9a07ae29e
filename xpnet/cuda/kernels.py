"""The CUDA C sources of every xpnet kernel, in one table (no CuPy import here).

Each :class:`KernelSource` is what ``cupy.ElementwiseKernel(in_params, out_params, body, name)``
takes, plus what the compile check (:mod:`xpnet.cuda.compile_check`) needs to build every
variant xpnet launches: the dtypes of the type placeholders (``T`` floating, ``I`` label
indices) and the number of dimensions of each ``raw`` array. :class:`xpnet.cuda.CupyKernels`
builds its kernels from this table, so the checked sources are the launched sources.

Layouts used by the convolution kernels (those of :mod:`xpnet.conv`): images ``(C, N, H, W)``,
transposed columns ``(C*FH*FW, N*OH*OW)``, pooled ``(C, N, OH, OW)``; zero padding is done by
the index arithmetic, and the scatters are gathers (each output element sums what reads it), so
no atomics and deterministic sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FLOATS", "KERNELS", "LABELS", "KernelSource"]

#: Floating dtypes a kernel's ``T`` may take (float16: the book's chapter-8 half-precision
#: inference runs the ReLU, convolution and pooling kernels in it).
FLOATS = ("float16", "float32", "float64")
#: Integer dtypes of class-index labels (MNIST's are uint8; NumPy and PyTorch make int64).
LABELS = ("uint8", "int32", "int64")


@dataclass(frozen=True)
class KernelSource:
    """One elementwise kernel: CuPy's ``ElementwiseKernel`` arguments and its variants."""

    key: str
    in_params: str
    out_params: str
    body: str
    #: ``{placeholder: dtypes}``: every combination is a variant xpnet may launch.
    types: dict[str, tuple[str, ...]] = field(default_factory=lambda: {"T": FLOATS})
    #: ``{raw parameter: ndim}`` of the arrays xpnet passes.
    raw_ndim: dict[str, int] = field(default_factory=dict)
    #: Input parameters that xpnet passes as scalars (the others are arrays).
    scalars: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The CUDA function name."""
        return f"xpnet_{self.key}"


_SHAPE = ("int32 C, int32 N, int32 H, int32 W, int32 fh, int32 fw, int32 s, int32 p, "
          "int32 oh, int32 ow")

_SHAPE_NAMES = tuple(p.split()[1] for p in _SHAPE.split(", "))

_SOURCES = [
    KernelSource("relu_forward", "T x", "T y, bool m", "m = x <= (T)0; y = m ? (T)0 : x;"),
    KernelSource("relu_backward", "T d, bool m", "T dx", "dx = m ? (T)0 : d;"),
    KernelSource(
        "softmax_grad_index", "raw T y, raw I t, T scale, int64 C", "T dx",
        "const long long n = i / C, c = i % C; "
        "dx = (y[i] - (c == (long long)t[n] ? (T)1 : (T)0)) * scale;",
        types={"T": FLOATS, "I": LABELS}, raw_ndim={"y": 2, "t": 1}, scalars=("scale", "C")),
    KernelSource("softmax_grad_rows", "T y, T t, T scale", "T dx", "dx = (y - t) * scale;",
                 scalars=("scale",)),
    KernelSource("sgd_update", "T g, T lr", "T p", "p -= lr * g;", scalars=("lr",)),
    # One thread per output element; strides in elements, so transposed views need no copy.
    KernelSource(
        "matmul",
        "raw T a, raw T b, int64 K, int64 N, int64 sa0, int64 sa1, int64 sb0, int64 sb1",
        "T c",
        "const long long r = i / N, col = i % N; "
        "const T* pa = &a[0] + r * sa0; const T* pb = &b[0] + col * sb1; "
        "T acc = (T)0; "
        "for (long long k = 0; k < K; ++k) acc += pa[k * sa1] * pb[k * sb0]; "
        "c = acc;",
        raw_ndim={"a": 2, "b": 2}, scalars=("K", "N", "sa0", "sa1", "sb0", "sb1")),
    # Counter-based uniform numbers: element i of a draw is splitmix64(key + (ctr + i) * phi)
    # scaled to [0, 1) with the type's mantissa bits (24 for float, 53 for double), so the
    # whole state is (key, ctr) and ctr lives on the device (a captured graph advances it).
    KernelSource(
        "uniform", "uint64 key, raw uint64 ctr", "T u",
        "unsigned long long z = key + (ctr[0] + (unsigned long long)i) "
        "* 0x9E3779B97F4A7C15ULL; "
        "z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL; "
        "z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL; "
        "z ^= z >> 31; "
        "u = sizeof(T) == 4 ? (T)((float)(z >> 40) * (1.0f / 16777216.0f)) "
        ": (T)((double)(z >> 11) * (1.0 / 9007199254740992.0));",
        raw_ndim={"ctr": 0}, scalars=("key",)),
    # The optimizers: each updates one parameter p and its state in place, element by element,
    # in the parameter's dtype T (sqrt and pow are the C overloads for either).
    KernelSource("momentum_update", "T g, T lr, T momentum", "T p, T v",
                 "v = momentum * v - lr * g; p += v;", scalars=("lr", "momentum")),
    KernelSource("nesterov_update", "T g, T lr, T momentum, T momentum_sq, T lr_ahead",
                 "T p, T v",
                 "p += momentum_sq * v; p -= lr_ahead * g; v = momentum * v - lr * g;",
                 scalars=("lr", "momentum", "momentum_sq", "lr_ahead")),
    KernelSource("adagrad_update", "T g, T lr, T eps", "T p, T h",
                 "h += g * g; p -= lr * g / (sqrt(h) + eps);", scalars=("lr", "eps")),
    KernelSource("rmsprop_update", "T g, T lr, T decay, T mix, T eps", "T p, T h",
                 "h *= decay; h += mix * g * g; p -= lr * g / (sqrt(h) + eps);",
                 scalars=("lr", "decay", "mix", "eps")),
    KernelSource("adam_update", "T g, float64 step, T lr, T beta1, T beta2, T eps",
                 "T p, T m, T v",
                 "const T lr_t = lr * sqrt((T)1 - pow(beta2, (T)step)) "
                 "/ ((T)1 - pow(beta1, (T)step)); "
                 "m += ((T)1 - beta1) * (g - m); "
                 "v += ((T)1 - beta2) * (g * g - v); "
                 "p -= lr_t * m / (sqrt(v) + eps);",
                 scalars=("lr", "beta1", "beta2", "eps")),
    # Convolution (chapter 7). Every body finds its element's coordinates from the flat index
    # i (row-major, last axis fastest).
    KernelSource(
        "im2col_t", "raw T x, " + _SHAPE, "T col",
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
        raw_ndim={"x": 4}, scalars=_SHAPE_NAMES),
    KernelSource(
        "col2im_t", "raw T col, " + _SHAPE, "T img",
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
        raw_ndim={"col": 2}, scalars=_SHAPE_NAMES),
    KernelSource(
        "max_pool_forward", "raw T x, " + _SHAPE, "T out, int32 arg",
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
        raw_ndim={"x": 4}, scalars=_SHAPE_NAMES),
    KernelSource(
        "max_pool_backward", "raw T dout, raw int32 arg, " + _SHAPE, "T dx",
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
        raw_ndim={"dout": 4, "arg": 4}, scalars=_SHAPE_NAMES),
]

#: Every kernel xpnet launches on CuPy, by key.
KERNELS: dict[str, KernelSource] = {k.key: k for k in _SOURCES}
