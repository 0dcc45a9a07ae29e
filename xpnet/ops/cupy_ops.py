"""CuPy's operations: xpnet's fused kernels (:mod:`xpnet.cuda.kernels`), a counter-based
random stream that never leaves the device, the CUDA-graph step and NCCL collectives.

One kernel each where the portable code launches two to four: ReLU forward (output and mask)
and backward, ``(softmax - one_hot(t)) * scale``, each optimizer's update, im2col/col2im, max
pooling; and a plain matrix product that replaces cuBLAS inside a CUDA-graph step (CuPy refuses
cuBLAS during a capture). CuPy is imported when an instance is made, that is when the caller
already holds CuPy arrays. ``calls`` counts the fused launches.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import numpy as np

from ..backend import Array, Namespace, on_device
from ..cuda.graph import CudaGraphStep, graph_safe_active
from ..cuda.kernels import KERNELS
from .base import Ops

__all__ = ["CupyOps", "CupyRandomStream", "nccl_problem"]

_FUSED_FLOATS = ("float32", "float64")  # the optimizer kernels' dtypes


class CupyOps(Ops):
    """:class:`~xpnet.ops.base.Ops` with CuPy kernels (see the module text)."""

    name = "cupy"

    def __init__(self, xp: Namespace, cupy: Any = None) -> None:
        super().__init__(xp)
        if cupy is None:
            import cupy as cupy_module

            cupy = cupy_module
        self._cp = cupy
        self.calls = 0
        self._kernels: dict[str, Any] = {}

    def kernel(self, key: str) -> Any:
        """The ``ElementwiseKernel`` of :data:`~xpnet.cuda.kernels.KERNELS` ``[key]``, made on
        first use (CuPy compiles it on its first launch per dtype and layout)."""
        found = self._kernels.get(key)
        if found is None:
            src = KERNELS[key]
            found = self._kernels[key] = self._cp.ElementwiseKernel(
                src.in_params, src.out_params, src.body, src.name)
        self.calls += 1
        return found

    # ----------------------------------------------------------------- ReLU, softmax, matmul

    def relu_forward(self, x: Array) -> tuple[Array, Array]:
        out, mask = self.kernel("relu_forward")(x)
        return out, mask

    def relu_backward(self, dout: Array, mask: Array) -> Array:
        return self.kernel("relu_backward")(dout, mask)

    def softmax_index_terms(self, z: Array, labels: Array) -> tuple[Array, Array | None]:
        # No one-hot rows at all (fewer kernels): the fused backward reads the indices.
        xp = self.xp
        picked = xp.take_along_axis(z, xp.astype(labels, xp.int64)[:, None], axis=1)
        return xp.sum(picked), None

    def softmax_grad(self, y: Array, labels: Array, hot: Array | None, scale: float, *,
                     rows: bool) -> Array:
        scale = y.dtype.type(scale)
        if rows:
            return self.kernel("softmax_grad_rows")(y, labels, scale)
        y = self._cp.ascontiguousarray(y)
        out = self._cp.empty_like(y)
        return self.kernel("softmax_grad_index")(y, labels, scale, y.shape[-1], out)

    def matmul(self, a: Array, b: Array) -> Array:
        """cuBLAS, or inside a CUDA-graph step (:func:`~xpnet.cuda.graph.graph_safe`) one
        kernel of xpnet's own, any strides (meant for small shapes such as the 784-50-10
        step's)."""
        if not graph_safe_active():
            return a @ b
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
        return self.kernel("matmul")(a, b, k, n, sa0, sa1, sb0, sb1, out)

    # ----------------------------------------------------------------- convolution, pooling

    def im2col_t(self, xt: Array, fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                 work: Any = None, tag: str = "") -> Array:
        cp = self._cp
        xt = cp.ascontiguousarray(xt)
        C, N, H, W = xt.shape
        col = cp.empty((C * fh * fw, N * oh * ow), dtype=xt.dtype)
        self.kernel("im2col_t")(xt, C, N, H, W, fh, fw, stride, pad, oh, ow, col)
        return col

    def col2im_t(self, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
                 stride: int, pad: int, oh: int, ow: int) -> Array:
        cp = self._cp
        col_t = cp.ascontiguousarray(col_t)
        C, N, H, W = shape_t
        img = cp.empty(shape_t, dtype=col_t.dtype)
        self.kernel("col2im_t")(col_t, C, N, H, W, fh, fw, stride, pad, oh, ow, img)
        return img

    def conv_input_grad(self, d2: Array, w2: Array, shape_t: tuple[int, int, int, int],
                        fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                        work: Any) -> Array:
        # The gather kernel makes col2im cheap: always the C*FH*FW-row product.
        return self.col2im_t(w2.T @ d2, shape_t, fh, fw, stride, pad, oh, ow)

    def max_pool_forward(self, xt: Array, ph: int, pw: int, stride: int, pad: int, oh: int,
                         ow: int) -> tuple[Array, Any]:
        cp = self._cp
        xt = cp.ascontiguousarray(xt)
        C, N, H, W = xt.shape
        out = cp.empty((C, N, oh, ow), dtype=xt.dtype)
        arg = cp.empty((C, N, oh, ow), dtype=cp.int32)
        self.kernel("max_pool_forward")(xt, C, N, H, W, ph, pw, stride, pad, oh, ow, out, arg)
        return out, ("arg", arg)

    def max_pool_backward(self, dt: Array, saved: Any, shape_t: tuple[int, int, int, int],
                          ph: int, pw: int, stride: int, pad: int, oh: int, ow: int) -> Array:
        cp = self._cp
        dt = cp.ascontiguousarray(dt)
        C, N, H, W = shape_t
        dx = cp.empty(shape_t, dtype=dt.dtype)
        self.kernel("max_pool_backward")(dt, saved[1], C, N, H, W, ph, pw, stride, pad, oh, ow,
                                         dx)
        return dx

    # ----------------------------------------------------------------- optimizer updates
    # One kernel per parameter, in place, in the parameter's dtype (float32/float64; other
    # dtypes take the portable update).

    def _fusable(self, p: Array) -> bool:
        return p.dtype.name in _FUSED_FLOATS

    def sgd_update(self, params: MutableMapping[str, Array], key: str, g: Array,
                   lr: float) -> None:
        p = params[key]
        if not self._fusable(p):
            return super().sgd_update(params, key, g, lr)
        self.kernel("sgd_update")(g, p.dtype.type(lr), p)
        return None

    def momentum_update(self, params: MutableMapping[str, Array], key: str, g: Array, v: Array,
                        lr: float, momentum: float) -> None:
        p = params[key]
        if not self._fusable(p):
            return super().momentum_update(params, key, g, v, lr, momentum)
        t = p.dtype.type
        self.kernel("momentum_update")(g, t(lr), t(momentum), p, v)
        return None

    def nesterov_update(self, params: MutableMapping[str, Array], key: str, g: Array,
                        v: Array, lr: float, momentum: float) -> None:
        p = params[key]
        if not self._fusable(p):
            return super().nesterov_update(params, key, g, v, lr, momentum)
        t = p.dtype.type
        self.kernel("nesterov_update")(g, t(lr), t(momentum), t(momentum * momentum),
                                       t((1.0 + momentum) * lr), p, v)
        return None

    def adagrad_update(self, params: MutableMapping[str, Array], key: str, g: Array, h: Array,
                       lr: float, eps: float) -> None:
        p = params[key]
        if not self._fusable(p):
            return super().adagrad_update(params, key, g, h, lr, eps)
        t = p.dtype.type
        self.kernel("adagrad_update")(g, t(lr), t(eps), p, h)
        return None

    def rmsprop_update(self, params: MutableMapping[str, Array], key: str, g: Array, h: Array,
                       lr: float, decay_rate: float, eps: float) -> None:
        p = params[key]
        if not self._fusable(p):
            return super().rmsprop_update(params, key, g, h, lr, decay_rate, eps)
        t = p.dtype.type
        self.kernel("rmsprop_update")(g, t(lr), t(decay_rate), t(1.0 - decay_rate), t(eps), p, h)
        return None

    def adam_update(self, params: MutableMapping[str, Array], key: str, g: Array, m: Array,
                    v: Array, step: Array, lr: float, beta1: float, beta2: float, eps: float,
                    lr_t: Callable[[], Array]) -> None:
        # The kernel reads the step count on the device (a CUDA graph replays it).
        p = params[key]
        if not self._fusable(p):
            return super().adam_update(params, key, g, m, v, step, lr, beta1, beta2, eps, lr_t)
        t = p.dtype.type
        self.kernel("adam_update")(g, step, t(lr), t(beta1), t(beta2), t(eps), p, m, v)
        return None

    # ----------------------------------------------------------------- random numbers, graphs

    def random_stream(self, dev: Any, seq: np.random.SeedSequence) -> CupyRandomStream:
        return CupyRandomStream(self, dev, seq)

    def graph_step(self, fn: Callable[[], Array]) -> CudaGraphStep:
        return CudaGraphStep(fn, cupy=self._cp)

    # ----------------------------------------------------------------- data parallelism

    def collectives(self, comm: Any, dev: Any) -> Any:
        return _NcclCollectives(comm)

    def collectives_problem(self, comm: Any, dev: Any) -> str | None:
        return nccl_problem()


class CupyRandomStream:
    """xpnet's counter-based uniform kernel: element ``i`` of a draw is
    ``splitmix64(key + (counter + i) * phi)``; the state is a key and a counter that lives on
    the device, so drawing never reads back and a CUDA graph advances it."""

    family = "cupy"

    def __init__(self, ops: CupyOps, dev: Any, seq: np.random.SeedSequence) -> None:
        self._ops, self.device = ops, dev
        self._key = int(seq.generate_state(1, np.uint64)[0])
        xp = ops.xp
        with on_device(dev):
            self._counter = xp.zeros((), dtype=xp.uint64, device=dev)

    def random(self, shape: tuple[int, ...], name: str) -> Array:
        ops, cp = self._ops, self._ops._cp
        with on_device(self.device):
            out = cp.empty(shape, dtype=getattr(ops.xp, name))
            if out.size:
                ops.kernel("uniform")(cp.uint64(self._key), self._counter, out)
                self._counter += out.size
        return out

    def get_state(self) -> Any:
        return {"key": self._key, "counter": int(self._counter)}  # one device read

    def set_state(self, state: Any) -> None:
        self._key = int(state["key"])
        with on_device(self.device):
            self._counter[...] = int(state["counter"])


# --------------------------------------------------------------------------- NCCL

#: What to install for NCCL, by the CUDA major version CuPy was built for.
_NCCL_PACKAGES = {12: "nvidia-nccl-cu12", 13: "nvidia-nccl-cu13"}


def nccl_problem() -> str | None:
    """Why CuPy cannot use NCCL here (what to install), or ``None`` when it can.

    ``from cupy.cuda import nccl`` succeeds without the NCCL library; the module then holds
    only ``available = False`` (CuPy 14)."""
    try:
        import cupy
        from cupy.cuda import nccl
    except ImportError as exc:
        return f"CuPy's NCCL module cannot be imported ({exc})"
    if getattr(nccl, "available", False):
        return None
    try:
        major = int(cupy.cuda.runtime.runtimeGetVersion()) // 1000
    except Exception:
        major = 12
    package = _NCCL_PACKAGES.get(major, "nvidia-nccl-cu12")
    return (f"CuPy finds no NCCL library: pip install {package} (or xpnet[cuda{major}-mpi]) "
            "for GPU-to-GPU gradients")


class _NcclCollectives:
    """Sum and broadcast of CuPy arrays over the job's ranks by NCCL, on the current stream;
    the communicator is made on first use (its unique id travels over MPI, through ``comm``:
    an :class:`xpnet.training.parallel.Communicator`)."""

    def __init__(self, comm: Any) -> None:
        self._comm = comm
        self._nccl: Any = None

    def _communicator(self) -> Any:
        if self._nccl is None:
            problem = nccl_problem()
            if problem is not None:
                raise RuntimeError(problem)
            from cupy.cuda import nccl

            comm = self._comm
            uid = nccl.get_unique_id() if comm.is_root else None
            uid = comm.bcast_object(uid, "the NCCL id broadcast")
            self._nccl = nccl.NcclCommunicator(comm.size, uid, comm.rank)
        return self._nccl

    @staticmethod
    def _type(buf: Array) -> int:
        from cupy.cuda import nccl

        types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                 "float64": nccl.NCCL_FLOAT64}
        return int(types[str(buf.dtype)])

    def allreduce_(self, buf: Array) -> Array:
        import cupy
        from cupy.cuda import nccl

        self._communicator().allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._type(buf),
                                       nccl.NCCL_SUM, cupy.cuda.get_current_stream().ptr)
        return buf

    def broadcast_(self, buf: Array) -> Array:
        import cupy

        self._communicator().bcast(buf.data.ptr, buf.size, self._type(buf), 0,
                                   cupy.cuda.get_current_stream().ptr)
        return buf
