"""NumPy's operations: the portable ones, with the work NumPy does outside BLAS and the large
matrix products split over a pool of threads (:class:`NumpyOps`).

NumPy releases the GIL in its copies, ufunc loops and BLAS calls on large arrays, so a pool of
Python threads runs them on several cores at once. Each operation cuts its arrays along the
outermost axis of their memory (the channels of the convolutions' ``(C, N, H, W)`` images,
the batch where there is one channel) or, for a product, along its widest dimension, and the
calling thread takes the first part itself. BLAS runs one thread per worker
(:func:`xpnet.blas_threads.set_threads` sees to it): a BLAS pool of its own would spin on the
cores the workers need. Arrays below :data:`MIN_SPLIT` elements are not cut (the hand-off
costs more than it saves), so small networks (the book's MLPs) run as on one thread.

The results equal the portable operations' to float tolerance: cuts along an output axis
compute every element as before; a product cut along its inner dimension (a convolution's
weight gradient) sums the parts in another order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import blas_threads
from ..backend import Array
from .base import Ops, adam_moments
from .convolution import (
    Workspace,
    col2im_t,
    fill_unpadded_taps,
    max_pool_backward,
    max_pool_forward,
    route_to_maxima,
)

__all__ = ["MIN_FLOPS", "MIN_SPLIT", "MIN_SPLIT_UPDATE", "NumpyOps", "spans"]

#: Arrays (or products' outputs and operands) smaller than this many elements run unsplit.
MIN_SPLIT = 1 << 16
#: Products (:meth:`NumpyOps.matmul`) of fewer multiply-adds run unsplit.
MIN_FLOPS = 1 << 24
#: Parameters of fewer elements are updated unsplit (the 784x100 weights of the book's MLP:
#: measured slower in two pieces on this 2-core machine).
MIN_SPLIT_UPDATE = 1 << 18


def spans(n: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of ``parts`` near-equal, non-empty pieces of ``range(n)`` (fewer
    when ``n < parts``)."""
    parts = max(1, min(parts, n))
    edges = [n * k // parts for k in range(parts + 1)]
    return [(edges[k], edges[k + 1]) for k in range(parts)]


class _Pool:
    """The worker threads (made on first use, remade when the count changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._size = 0

    def run(self, fn: Callable[[int, int], Any], ranges: Sequence[tuple[int, int]]) -> list[Any]:
        """``[fn(*r) for r in ranges]``, the first on this thread, the rest on the workers;
        a piece no worker has started when this thread is done with its own runs here (on a
        busy machine a worker may wait for a core: the call then costs no more than one
        thread would)."""
        if len(ranges) == 1:
            return [fn(*ranges[0])]
        with self._lock:
            if self._executor is None or self._size < len(ranges) - 1:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)
                self._size = len(ranges) - 1
                self._executor = ThreadPoolExecutor(self._size, thread_name_prefix="xpnet")
            executor = self._executor
        futures: list[Future[Any]] = [executor.submit(fn, *r) for r in ranges[1:]]
        out = [fn(*ranges[0])]
        for future, r in zip(futures, ranges[1:], strict=True):
            out.append(fn(*r) if future.cancel() else future.result())
        return out


_POOL = _Pool()


def _outer_axis(a: np.ndarray) -> int:
    """The axis with the largest stride (its slices are the largest contiguous blocks)."""
    best = 0
    for axis in range(a.ndim):
        if a.shape[axis] > 1 and abs(a.strides[axis]) > abs(a.strides[best]):
            best = axis
    if a.shape[best] < 2:
        best = max(range(a.ndim), key=lambda k: a.shape[k])
    return best


def _along(a: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    index: list[Any] = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    piece: np.ndarray = a[tuple(index)]
    return piece


class NumpyOps(Ops):
    """:class:`~xpnet.ops.base.Ops` on NumPy, with the large operations split over
    :func:`xpnet.blas_threads.get_threads` threads (see the module text)."""

    name = "numpy"

    def threads_line(self) -> str | None:
        return f"xpnet's NumPy operations on {blas_threads.describe_threads()}"

    def _parts(self, size: int, extent: int) -> int:
        """How many pieces an operation on ``size`` elements, cut along an axis of ``extent``,
        is split into (1: run it whole)."""
        if size < MIN_SPLIT:
            return 1
        return min(blas_threads.get_threads(), extent, max(1, 2 * size // MIN_SPLIT))

    def _map(self, fn: Callable[[int, int], Any], extent: int, size: int) -> list[Any]:
        return _POOL.run(fn, spans(extent, self._parts(size, extent)))

    # ----------------------------------------------------------------- ReLU

    def relu_forward(self, x: Array) -> tuple[Array, Array]:
        if x.size < MIN_SPLIT or not isinstance(x, np.ndarray):
            return super().relu_forward(x)
        out = np.empty_like(x)
        mask = np.empty_like(x, dtype=bool)
        axis = _outer_axis(x)

        def part(a: int, b: int) -> None:
            xs = _along(x, axis, a, b)
            np.maximum(xs, 0.0, out=_along(out, axis, a, b))
            np.less_equal(xs, 0, out=_along(mask, axis, a, b))

        self._map(part, x.shape[axis], x.size)
        return out, mask

    def relu_backward(self, dout: Array, mask: Array) -> Array:
        if dout.size < MIN_SPLIT or not isinstance(dout, np.ndarray):
            return super().relu_backward(dout, mask)
        dx = np.empty_like(dout)
        axis = _outer_axis(dout)

        def part(a: int, b: int) -> None:
            d = _along(dx, axis, a, b)
            np.logical_not(_along(mask, axis, a, b), out=d, casting="unsafe")
            d *= _along(dout, axis, a, b)

        self._map(part, dout.shape[axis], dout.size)
        return dx

    # ----------------------------------------------------------------- matrix products

    def matmul(self, a: Array, b: Array) -> Array:
        """``a @ b``; 2-D products of at least :data:`MIN_FLOPS` multiply-adds (a wide affine
        layer) are cut as :meth:`matmul_large` cuts them, smaller ones (the book's MLPs) not."""
        if (a.ndim != 2 or b.ndim != 2 or a.shape[0] * a.shape[1] * b.shape[1] < MIN_FLOPS
                or not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray)):
            return a @ b
        return self.matmul_large(a, b)

    def matmul_large(self, a: Array, b: Array) -> Array:
        """``a @ b`` for 2-D operands, cut along the widest of its three dimensions."""
        m, k = a.shape
        n = b.shape[1]
        parts = self._parts(m * n + m * k + k * n, max(m, n, k))
        if parts == 1:
            return a @ b
        if n >= m and n >= k:
            out = np.empty((m, n), dtype=np.result_type(a, b))

            def cols(s: int, e: int) -> None:
                np.matmul(a, b[:, s:e], out=out[:, s:e])  # BLAS writes the strided slice

            _POOL.run(cols, spans(n, parts))
            return out
        if m >= k:
            out = np.empty((m, n), dtype=np.result_type(a, b))

            def rows(s: int, e: int) -> None:
                np.matmul(a[s:e], b, out=out[s:e])

            _POOL.run(rows, spans(m, parts))
            return out
        pieces = _POOL.run(lambda s, e: a[:, s:e] @ b[s:e], spans(k, parts))
        total = pieces[0]
        for piece in pieces[1:]:
            total += piece
        return total

    # ----------------------------------------------------------------- optimizer updates

    def adam_update(self, params: MutableMapping[str, Array], key: str, g: Array, m: Array,
                    v: Array, step: Array, lr: float, beta1: float, beta2: float, eps: float,
                    lr_t: Callable[[], Array]) -> None:
        """:meth:`Ops.adam_update`, the same operations in the same order on pieces of the
        parameter (a large one), in place."""
        p = params[key]
        if (p.size < MIN_SPLIT_UPDATE or not isinstance(p, np.ndarray) or not p.flags.writeable
                or not all(a.flags.c_contiguous for a in (p, g, m, v))):
            super().adam_update(params, key, g, m, v, step, lr, beta1, beta2, eps, lr_t)
            return
        rate = lr_t()
        flat = [a.reshape(-1) for a in (p, g, m, v)]

        def part(s: int, e: int) -> None:
            pp, gg, mm, vv = (a[s:e] for a in flat)
            adam_moments(gg, mm, vv, beta1, beta2)
            denominator = np.sqrt(vv)
            denominator += eps
            change = rate * mm
            change /= denominator
            pp -= change

        self._map(part, p.size, p.size)

    # ----------------------------------------------------------------- convolution, pooling

    def im2col_t(self, xt: Array, fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                 work: Workspace | None = None, tag: str = "") -> Array:
        C, N = xt.shape[0], xt.shape[1]
        size = C * fh * fw * N * oh * ow
        axis = 0 if blas_threads.get_threads() <= C else 1
        if self._parts(size, xt.shape[axis]) == 1:
            return super().im2col_t(xt, fh, fw, stride, pad, oh, ow, work, tag)
        shape = (C, fh, fw, N, oh, ow)
        direct = work is not None and stride == 1 and pad > 0
        if direct:
            assert work is not None
            col = work.get(np, tag + "col_unpadded", shape, xt, zeros=True)
        else:
            col = (np.empty(shape, dtype=xt.dtype) if work is None
                   else work.get(np, tag + "col", shape, xt))

        def part(a: int, b: int) -> None:
            src = _along(xt, axis, a, b)
            dst = col[a:b] if axis == 0 else col[:, :, :, a:b]
            if direct:
                fill_unpadded_taps(dst, src, fh, fw, pad, oh, ow)
            else:
                _copy_windows(dst, src, fh, fw, stride, pad, oh, ow)

        self._map(part, xt.shape[axis], size)
        return col.reshape(C * fh * fw, N * oh * ow)

    def col2im_t(self, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
                 stride: int, pad: int, oh: int, ow: int) -> Array:
        C, N, H, W = shape_t
        if self._parts(col_t.size, C) == 1:
            return super().col2im_t(col_t, shape_t, fh, fw, stride, pad, oh, ow)
        col = col_t.reshape(C, fh, fw, N, oh, ow)
        out = np.empty(shape_t, dtype=col_t.dtype)

        def part(a: int, b: int) -> None:
            piece = col[a:b].reshape((b - a) * fh * fw, N * oh * ow)
            out[a:b] = col2im_t(np, piece, (b - a, N, H, W), fh, fw, stride, pad, oh, ow)

        self._map(part, C, col_t.size)
        return out

    def conv_input_grad(self, d2: Array, w2: Array, shape_t: tuple[int, int, int, int],
                        fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                        work: Workspace) -> Array:
        FN = d2.shape[0]
        C, N, H, W = shape_t
        if stride == 1 and fh == fw and pad < fh and FN <= 2 * C:
            # The full convolution of dout with the flipped filters (see convolution.py).
            d4 = d2.reshape(FN, N, oh, ow)
            cols = self.im2col_t(d4, fh, fw, 1, fh - 1 - pad, H, W, work, tag="d")
            w = w2.reshape(FN, C, fh, fw)
            wt = np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3).reshape(C, -1)
            return self.matmul_large(wt, cols).reshape(C, N, H, W)
        return self.col2im_t(self.matmul_large(w2.T, d2), shape_t, fh, fw, stride, pad, oh, ow)

    def max_pool_forward(self, xt: Array, ph: int, pw: int, stride: int, pad: int, oh: int,
                         ow: int) -> tuple[Array, Any]:
        C = xt.shape[0]
        if self._parts(xt.size, C) == 1:
            return super().max_pool_forward(xt, ph, pw, stride, pad, oh, ow)
        out = np.empty((C, xt.shape[1], oh, ow), dtype=xt.dtype)

        def part(a: int, b: int) -> Any:
            piece, saved = max_pool_forward(np, xt[a:b], ph, pw, stride, pad, oh, ow)
            out[a:b] = piece
            return saved

        saved = self._map(part, C, xt.size)
        kind = saved[0][0]
        if kind == "arg":
            return out, ("arg", np.concatenate([s[1] for s in saved]))
        cols = [np.concatenate(m) for m in zip(*(s[1][0] for s in saved), strict=True)]
        rows = [np.concatenate(m) for m in zip(*(s[1][1] for s in saved), strict=True)]
        return out, ("masks", (cols, rows))

    def max_pool_backward(self, dt: Array, saved: Any, shape_t: tuple[int, int, int, int],
                          ph: int, pw: int, stride: int, pad: int, oh: int, ow: int) -> Array:
        C, N, H, W = shape_t
        kind, value = saved
        if kind == "masks":  # tiling windows (stride == ph == pw, no padding)
            tiled = H % stride == 0 and W % stride == 0
            out = (np.empty if tiled else np.zeros)(shape_t, dtype=dt.dtype)

            def route(a: int, b: int) -> None:
                mine = ([m[a:b] for m in value[0]], [m[a:b] for m in value[1]])
                route_to_maxima(np, out[a:b], dt[a:b], mine, stride, oh, ow, _split_in_place)

            self._map(route, C, C * N * H * W)
            return out
        if self._parts(C * N * H * W, C) == 1:
            return super().max_pool_backward(dt, saved, shape_t, ph, pw, stride, pad, oh, ow)
        out = np.empty(shape_t, dtype=dt.dtype)

        def part(a: int, b: int) -> None:
            out[a:b] = max_pool_backward(np, dt[a:b], ("arg", value[a:b]), (b - a, N, H, W),
                                         ph, pw, stride, pad, oh, ow)

        self._map(part, C, C * N * H * W)
        return out


def _split_in_place(xp: Any, target: np.ndarray, keys: list[Any], grad: np.ndarray,
                    masks: list[np.ndarray]) -> None:
    """:func:`~xpnet.ops.convolution.split_into` on NumPy: the same products and differences in
    the same order, each written straight into its view of ``target`` (no part cast,
    multiplied and subtracted in temporaries, then copied: SimpleConvNet's pooling backward,
    float64, one thread, 16 ms before, 4.2 ms with it)."""
    rest = grad
    for i, mask in enumerate(masks):
        part = target[keys[i]]
        np.multiply(mask, rest, out=part)
        if i + 1 < len(masks):
            rest = rest - part
        else:
            np.subtract(rest, part, out=target[keys[i + 1]])


def _copy_windows(col: np.ndarray, xt: np.ndarray, fh: int, fw: int, stride: int, pad: int,
                  oh: int, ow: int) -> None:
    """Columns of ``xt`` (zero-padded by ``pad``) into ``col``, window by window."""
    if pad:
        C, N, H, W = xt.shape
        img = np.zeros((C, N, H + 2 * pad, W + 2 * pad), dtype=xt.dtype)
        img[:, :, pad:pad + H, pad:pad + W] = xt
    else:
        img = xt
    for i in range(fh):
        for j in range(fw):
            col[:, i, j] = img[:, :, i:i + stride * (oh - 1) + 1:stride,
                               j:j + stride * (ow - 1) + 1:stride]
