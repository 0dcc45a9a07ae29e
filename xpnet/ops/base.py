"""The portable operations: every operation that some backend runs faster, written once with
Array API calls only (:class:`Ops`). A backend with fused kernels subclasses it
(:mod:`xpnet.ops.cupy_ops`); layers, optimizers and the training loop ask
:func:`xpnet.ops.ops_for` once and never test for a backend themselves.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import numpy as np
from array_api_compat import is_writeable_array

from ..backend import Array, Namespace, asarray, device, is_numpy, namespace, register_cache
from .convolution import (
    Workspace,
    col2im_t,
    conv_input_grad,
    im2col_t,
    max_pool_backward,
    max_pool_forward,
)

__all__ = ["Ops", "RandomStream", "Workspace", "adam_moments", "add", "one_hot", "subtract",
           "writeable"]


def one_hot(t: Array, /, num_classes: int, *, dtype: Any = None) -> Array:
    """One-hot rows ``(N, num_classes)`` for integer labels ``t`` of shape ``(N,)``."""
    xp = namespace(t)
    classes = _classes(xp, num_classes, t.dtype, device(t))
    return xp.astype(t[..., None] == classes, dtype if dtype is not None else xp.float64)


_CLASSES: dict[tuple[int, int, Any, str], Array] = register_cache({})


def _classes(xp: Namespace, num_classes: int, dtype: Any, dev: Any) -> Array:
    """``arange(num_classes)`` in the labels' dtype (int64 where that cannot count so far)
    on their device, made once per (backend, size, dtype, device): a step should not pay for
    it. Comparing equal dtypes also spares a cast of the labels."""
    key = (id(xp), num_classes, dtype, repr(dev))  # repr: not every device type is hashable
    found = _CLASSES.get(key)
    if found is None:
        if xp.iinfo(dtype).max < num_classes - 1:
            dtype = xp.int64
        found = _CLASSES[key] = xp.arange(num_classes, dtype=dtype, device=dev)
    return found


def adam_moments(g: Array, m: Array, v: Array, beta1: float, beta2: float) -> None:
    """Adam's moments in place: ``m += (1 - beta1) * (g - m); v += (1 - beta2) * (g**2 - v)``."""
    delta = g - m
    delta *= 1.0 - beta1
    m += delta
    delta = g * g
    delta -= v
    delta *= 1.0 - beta2
    v += delta


def writeable(p: Array) -> bool:
    """Whether ``p`` can be changed in place (NumPy's own flag read directly: it is the common
    case, and ``is_writeable_array`` costs a few microseconds per call)."""
    if type(p) is np.ndarray:
        return bool(p.flags.writeable)
    return is_writeable_array(p)


def subtract(params: MutableMapping[str, Array], key: str, p: Array, delta: Array) -> Array:
    """``params[key] -= delta``: in place when ``p`` can be written (layers holding ``p`` see
    the change), else a new array stored through ``params[key] = ...``. Returns the result."""
    if writeable(p):
        p -= delta
        return p
    params[key] = p - delta
    return params[key]


def add(params: MutableMapping[str, Array], key: str, p: Array, delta: Array) -> Array:
    """``params[key] += delta``, in place where possible (as :func:`subtract`)."""
    if writeable(p):
        p += delta
        return p
    params[key] = p + delta
    return params[key]


def _scaled_step(lr: Any, g: Array, square: Array, xp: Namespace, eps: float) -> Array:
    """``lr * g / (sqrt(square) + eps)``, with the temporaries reused in place."""
    denominator = xp.sqrt(square)
    denominator += eps
    step = lr * g
    step /= denominator
    return step


class RandomStream:
    """Uniform ``[0, 1)`` numbers from a seeded NumPy generator on the host, moved to the
    device (backends without a generator of their own: NumPy itself, array-api-strict)."""

    #: Backends whose streams continue each other's states (see ``RandomGenerator.family``).
    family = "numpy-host"

    def __init__(self, xp: Namespace, dev: Any, seq: np.random.SeedSequence) -> None:
        self.xp, self.device = xp, dev
        self._gen = np.random.default_rng(seq)

    def random(self, shape: tuple[int, ...], name: str) -> Array:
        host = self._gen.random(shape, dtype=np.dtype(name))
        if is_numpy(self.xp):
            return host
        return asarray(host, self.xp, device=self.device, dtype=getattr(self.xp, name))

    def get_state(self) -> Any:
        return self._gen.bit_generator.state

    def set_state(self, state: Any) -> None:
        self._gen.bit_generator.state = state


class Ops:
    """The operations with a fast path somewhere, in portable Array API code.

    One instance per namespace (:func:`xpnet.ops.ops_for`); ``self.xp`` is that namespace.
    Each method is what the layers, the optimizers and the loop call; a subclass replaces
    the ones its backend does faster, with the same results (to float tolerance).
    """

    #: What the operations are (``"portable"``, ``"cupy"``, ``"torch"``), for messages.
    name = "portable"

    def __init__(self, xp: Namespace) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.xp, '__name__', self.xp)})"

    # ----------------------------------------------------------------- ReLU

    def relu_forward(self, x: Array) -> tuple[Array, Array]:
        """``(max(x, 0), x <= 0)``: the output and the mask backward needs."""
        # maximum: on NumPy ~4x faster than where(mask, 0.0, x), same values
        return self.xp.maximum(x, 0.0), x <= 0

    def relu_backward(self, dout: Array, mask: Array) -> Array:
        """``dout`` with zeros where ``mask`` (a new array: the caller's gradient stays)."""
        # dout * (x > 0), multiplied in place into the fresh 0/1 array: NumPy's where() is
        # 2x (small arrays) to 4x (large ones) slower.
        dx = self.xp.astype(self.xp.logical_not(mask), dout.dtype)
        dx *= dout
        return dx

    # ----------------------------------------------------------------- softmax with loss

    def softmax_index_terms(self, z: Array, labels: Array) -> tuple[Array, Array | None]:
        """For class indices ``labels`` ``(N,)`` and shifted scores ``z`` ``(N, C)``:
        ``(sum_n z[n, labels[n]], one-hot rows or None)``; the rows are kept for backward."""
        hot = one_hot(labels, z.shape[-1], dtype=z.dtype)
        return self.xp.sum(hot * z), hot

    def softmax_grad(self, y: Array, labels: Array, hot: Array | None, scale: float, *,
                     rows: bool) -> Array:
        """``(y - one_hot(labels)) * scale`` (``labels`` are rows when ``rows``; ``hot`` the
        one-hot rows when already made)."""
        if hot is None:
            hot = labels if rows else one_hot(labels, y.shape[-1], dtype=y.dtype)
        dx = y - hot
        dx *= scale
        return dx

    # ----------------------------------------------------------------- matrix products

    def matmul(self, a: Array, b: Array) -> Array:
        """``a @ b`` (the layers' products; a backend may swap in its own kernel)."""
        return a @ b

    def matmul_large(self, a: Array, b: Array) -> Array:
        """``a @ b`` for 2-D operands of a convolution (its column products): large enough
        that a backend may split them over threads (:class:`~xpnet.ops.numpy_ops.NumpyOps`).
        Unlike :meth:`matmul`, never replaced inside a CUDA-graph step."""
        return a @ b

    # ----------------------------------------------------------------- convolution, pooling

    def im2col_t(self, xt: Array, fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                 work: Workspace | None = None, tag: str = "") -> Array:
        """Transposed columns ``(C*fh*fw, N*oh*ow)`` of ``xt`` ``(C, N, H, W)`` (in ``work``'s
        buffers named ``tag...`` when given)."""
        return im2col_t(self.xp, xt, fh, fw, stride, pad, oh, ow, work, tag)

    def col2im_t(self, col_t: Array, shape_t: tuple[int, int, int, int], fh: int, fw: int,
                 stride: int, pad: int, oh: int, ow: int) -> Array:
        """The image ``(C, N, H, W)`` summed from transposed columns (adjoint of
        :meth:`im2col_t`)."""
        return col2im_t(self.xp, col_t, shape_t, fh, fw, stride, pad, oh, ow)

    def conv_input_grad(self, d2: Array, w2: Array, shape_t: tuple[int, int, int, int],
                        fh: int, fw: int, stride: int, pad: int, oh: int, ow: int,
                        work: Workspace) -> Array:
        """A convolution's input gradient ``(C, N, H, W)`` from ``dout`` as ``(FN, N*oh*ow)``
        and the filters as ``(FN, C*fh*fw)``."""
        return conv_input_grad(self.xp, d2, w2, shape_t, fh, fw, stride, pad, oh, ow, work)

    def max_pool_forward(self, xt: Array, ph: int, pw: int, stride: int, pad: int, oh: int,
                         ow: int) -> tuple[Array, Any]:
        """Max pooling of ``xt`` ``(C, N, H, W)``: ``(out (C, N, oh, ow), what backward
        needs)``; the second is ``("arg", arg_max)`` (row-major window position of the first
        maximum) or ``("masks", ...)``."""
        return max_pool_forward(self.xp, xt, ph, pw, stride, pad, oh, ow)

    def max_pool_backward(self, dt: Array, saved: Any, shape_t: tuple[int, int, int, int],
                          ph: int, pw: int, stride: int, pad: int, oh: int, ow: int) -> Array:
        """``dx`` ``(C, N, H, W)``: each element of ``dt`` to its window's first maximum."""
        return max_pool_backward(self.xp, dt, saved, shape_t, ph, pw, stride, pad, oh, ow)

    # ----------------------------------------------------------------- optimizer updates
    # In place where the parameter can be written, else rebound through params[key] (the
    # layers holding it see the change either way); the state arrays are the optimizer's.

    def sgd_update(self, params: MutableMapping[str, Array], key: str, g: Array,
                   lr: float) -> None:
        """``p -= lr * g``."""
        subtract(params, key, params[key], lr * g)

    def momentum_update(self, params: MutableMapping[str, Array], key: str, g: Array, v: Array,
                        lr: float, momentum: float) -> None:
        """``v = momentum * v - lr * g; p += v``."""
        v *= momentum
        v -= lr * g
        add(params, key, params[key], v)

    def nesterov_update(self, params: MutableMapping[str, Array], key: str, g: Array,
                        v: Array, lr: float, momentum: float) -> None:
        """``p += momentum**2 * v; p -= (1 + momentum) * lr * g; v = momentum * v - lr * g``."""
        p = add(params, key, params[key], (momentum * momentum) * v)
        subtract(params, key, p, ((1.0 + momentum) * lr) * g)
        v *= momentum
        v -= lr * g

    def adagrad_update(self, params: MutableMapping[str, Array], key: str, g: Array, h: Array,
                       lr: float, eps: float) -> None:
        """``h += g * g; p -= lr * g / (sqrt(h) + eps)``."""
        h += g * g
        subtract(params, key, params[key], _scaled_step(lr, g, h, self.xp, eps))

    def rmsprop_update(self, params: MutableMapping[str, Array], key: str, g: Array, h: Array,
                       lr: float, decay_rate: float, eps: float) -> None:
        """``h = decay_rate * h + (1 - decay_rate) * g * g; p -= lr * g / (sqrt(h) + eps)``."""
        h *= decay_rate
        square = (1.0 - decay_rate) * g
        square *= g
        h += square
        subtract(params, key, params[key], _scaled_step(lr, g, h, self.xp, eps))

    def adam_update(self, params: MutableMapping[str, Array], key: str, g: Array, m: Array,
                    v: Array, step: Array, lr: float, beta1: float, beta2: float, eps: float,
                    lr_t: Callable[[], Array]) -> None:
        """``m += (1 - beta1) * (g - m); v += (1 - beta2) * (g**2 - v);
        p -= lr_t * m / (sqrt(v) + eps)`` with ``lr_t() = lr * sqrt(1 - beta2**step) /
        (1 - beta1**step)`` (0-d, on the device; ``step`` is the update count there)."""
        adam_moments(g, m, v, beta1, beta2)
        subtract(params, key, params[key], _scaled_step(lr_t(), m, v, self.xp, eps))

    def threads_line(self) -> str | None:
        """How many CPU threads these operations use, for the one line a run prints
        (``None``: the backend's own runtime decides, or the work runs on a device)."""
        return None

    # ----------------------------------------------------------------- random numbers

    def random_stream(self, dev: Any, seq: np.random.SeedSequence) -> Any:
        """A seeded stream of uniform numbers on ``dev`` (``random(shape, dtype name)``,
        ``get_state()``, ``set_state()``, ``family``): NumPy's generator on the host here."""
        return RandomStream(self.xp, dev, seq)

    # ----------------------------------------------------------------- the training step

    def graph_step(self, fn: Callable[[], Array]) -> Any:
        """A step replayed as a CUDA graph: only where the backend has graphs."""
        msg = (f"cuda_graph=True needs the cupy backend, this network uses "
               f"{getattr(self.xp, '__name__', self.xp)!r}")
        raise ValueError(msg)

    def collectives(self, comm: Any, dev: Any) -> Any:
        """Device-side collectives for data parallelism (``allreduce_(buf)``,
        ``broadcast_(buf)``), or ``None``: the arrays go through MPI on the host."""
        return None

    def collectives_problem(self, comm: Any, dev: Any) -> str | None:
        """Why :meth:`collectives` cannot serve this job (a collective call: every rank)."""
        return None
