"""The book's layers (chapter 5), each a small class with ``forward`` and ``backward``.

Each layer takes its array namespace from its inputs, keeps only what ``backward`` needs, and never
modifies the gradient it is given. Outputs keep the input's dtype and device.
"""

from __future__ import annotations

from typing import Any

from .backend import Array, namespace
from .cuda import fused_kernels
from .functions import _as_batch, check_labels, one_hot, sigmoid

__all__ = ["AddLayer", "Affine", "MulLayer", "Relu", "Sigmoid", "SoftmaxWithLoss"]

_SCALARS = (bool, int, float, complex)


def _check_operands(x: Any, y: Any) -> None:
    """Plain numbers pass (the book's apple example); arrays must share one backend."""
    if not (isinstance(x, _SCALARS) and isinstance(y, _SCALARS)):
        namespace(x, y)


def _sum_to_shape(grad: Any, like: Any) -> Any:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach ``like``'s shape.

    The gradient of a broadcast operand is the sum of the gradients of its copies.
    """
    if isinstance(like, _SCALARS):
        if isinstance(grad, _SCALARS):
            return grad
        return namespace(grad).sum(grad)
    shape = tuple(like.shape)
    if isinstance(grad, _SCALARS) or tuple(grad.shape) == shape:
        return grad
    xp = namespace(grad)
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    grad = xp.sum(grad, axis=axes) if axes else grad
    return xp.reshape(grad, shape)


class MulLayer:
    """Multiplication node ``out = x * y``; backward swaps the inputs: ``dx = dout*y, dy = dout*x``.

    Takes arrays of one backend or plain Python numbers (the book's apple example).
    """

    def __init__(self) -> None:
        self.x = None
        self.y = None

    def forward(self, x: Any, y: Any) -> Any:
        _check_operands(x, y)
        self.x = x
        self.y = y
        return x * y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        dx = _sum_to_shape(dout * self.y, self.x)
        dy = _sum_to_shape(dout * self.x, self.y)
        return dx, dy


class AddLayer:
    """Addition node ``out = x + y``; backward passes ``dout`` on to both inputs unchanged."""

    def __init__(self) -> None:
        self.x = None
        self.y = None

    def forward(self, x: Any, y: Any) -> Any:
        _check_operands(x, y)
        self.x = x
        self.y = y
        return x + y

    def backward(self, dout: Any) -> tuple[Any, Any]:
        # `* 1` hands each input its own array, as the book does.
        dx = _sum_to_shape(dout * 1, self.x)
        dy = _sum_to_shape(dout * 1, self.y)
        return dx, dy


class Relu:
    """``out = max(x, 0)``; backward lets ``dout`` through where ``x > 0``."""

    def __init__(self) -> None:
        self.mask = None
        self.xp = None

    def forward(self, x: Array) -> Array:
        xp = self.xp = namespace(x)
        fused = fused_kernels(xp)
        if fused is not None:  # CuPy: one kernel for the mask and the output
            out, self.mask = fused.relu_forward(x)
            return out
        self.mask = x <= 0
        return xp.maximum(x, 0.0)  # NumPy: ~4x faster than where(mask, 0.0, x), same values

    def backward(self, dout: Array) -> Array:
        # A new array: the book's `dout[self.mask] = 0` would overwrite the caller's gradient.
        xp = self.xp
        fused = fused_kernels(xp)
        if fused is not None:
            return fused.relu_backward(dout, self.mask)
        # dout * (x > 0), multiplied in place into the fresh 0/1 array: NumPy's where() is
        # 2x (small arrays) to 4x (large ones) slower.
        dx = xp.astype(xp.logical_not(self.mask), dout.dtype)
        dx *= dout
        return dx


class Sigmoid:
    """``out = 1 / (1 + exp(-x))``; backward ``dx = dout * out * (1 - out)``."""

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Array) -> Array:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1.0 - self.out) * self.out


class Affine:
    """Fully connected layer ``out = x @ W + b``.

    ``x`` may be N-D ``(N, d1, d2, ...)``: it is flattened to ``(N, d1*d2*...)`` and ``dx`` gets
    the original shape back. Backward stores ``dW = x.T @ dout`` and ``db = sum(dout, axis=0)``
    and returns ``dx = dout @ W.T``, or ``None`` when ``input_grad=False`` (a first layer, whose
    input is data, skips that matmul).
    """

    def __init__(self, W: Array, b: Array, *, input_grad: bool = True) -> None:
        self.W = W
        self.b = b
        self.input_grad = input_grad
        self.x = None
        self.original_x_shape: tuple[int, ...] | None = None
        self.dW = None
        self.db = None
        self.xp = None

    def forward(self, x: Array) -> Array:
        xp = self.xp = namespace(x, self.W)
        self.original_x_shape = tuple(x.shape)
        if x.ndim != 2:
            if x.ndim == 0:
                msg = "Affine needs input of shape (N, features), got a 0-d array"
                raise ValueError(msg)
            x = xp.reshape(x, (x.shape[0], -1))
        if x.shape[1] != self.W.shape[0]:
            msg = (f"Affine expects {self.W.shape[0]} input features, got input of shape "
                   f"{self.original_x_shape} ({x.shape[1]} features after flattening)")
            raise ValueError(msg)
        if x.dtype != self.W.dtype:
            msg = (f"Affine input has dtype {x.dtype} but W has {self.W.dtype}; "
                   "cast the input with xp.astype(x, W.dtype)")
            raise TypeError(msg)
        self.x = x
        fused = fused_kernels(xp)
        # CuPy inside a CUDA-graph step: xpnet's own kernel (CuPy refuses cuBLAS in a capture).
        out = fused.matmul(x, self.W) if fused is not None and fused.graph_safe else x @ self.W
        out += self.b  # in place on the fresh product: no second (N, out) array
        return out

    def backward(self, dout: Array) -> Array | None:
        xp = self.xp
        fused = fused_kernels(xp)
        matmul = fused.matmul if fused is not None and fused.graph_safe else xp.matmul
        self.dW = matmul(self.x.T, dout)
        self.db = xp.sum(dout, axis=0)
        if not self.input_grad:
            return None
        dx = matmul(dout, self.W.T)
        return xp.reshape(dx, self.original_x_shape)


class SoftmaxWithLoss:
    """Softmax followed by the cross-entropy loss; backward ``dx = (y - t) / N``.

    ``t`` holds one-hot rows ``(N, C)`` or class indices ``(N,)`` of any integer dtype;
    a single sample ``(C,)`` with a scalar label also works. ``check_labels`` (default on)
    verifies that class indices lie in ``[0, C)``: that reads two numbers back to the host, so
    a trainer that has checked its labels once turns it off.
    """

    def __init__(self, *, check_labels: bool = True) -> None:
        self.loss = None
        self.y = None  # softmax output, (N, C)
        self.t = None  # labels as given
        self.t_hot = None  # labels as one-hot rows, (N, C)
        self.check_labels = check_labels
        self._single = False
        self._labels = None  # labels as a batch: indices (N,) or rows (N, C)
        self._rows_given = False  # whether the labels came as rows
        self.xp = None

    def forward(self, x: Array, t: Array) -> Array:
        xp = self.xp = namespace(x, t)
        self._single = x.ndim == 1
        x2, t2, hot = _as_batch(x, t, xp)
        if not hot and self.check_labels:
            check_labels(t2, x2.shape[-1])
        self.t = t
        self._labels, self._rows_given = t2, hot
        # Softmax and log-softmax share z = x - max(x) and s = sum(exp(z)):
        # y = exp(z) / s and log(y) = z - log(s), with no second exp.
        z = x2 - xp.max(x2, axis=-1, keepdims=True)
        e = xp.exp(z)
        s = xp.sum(e, axis=-1, keepdims=True)
        self.y = e / s
        if hot:  # any rows t (they need not sum to 1): -sum(t * log(y)) / N
            self.t_hot = t2
            self.loss = -xp.sum(t2 * (z - xp.log(s))) / x2.shape[0]
            return self.loss
        # Index labels: one-hot rows sum to 1, so -sum(t * (z - log s)) = sum(log s) - sum(t * z).
        if fused_kernels(xp) is None:
            self.t_hot = one_hot(t2, x2.shape[-1], dtype=x2.dtype)
            picked = xp.sum(self.t_hot * z)
        else:  # CuPy: no one-hot array at all (fewer kernels); backward reads the indices
            self.t_hot = None
            picked = xp.sum(xp.take_along_axis(z, xp.astype(t2, xp.int64)[:, None], axis=1))
        self.loss = (xp.sum(xp.log(s)) - picked) / x2.shape[0]
        return self.loss

    def backward(self, dout: Any = 1) -> Array:
        batch_size = self.y.shape[0]
        fused = fused_kernels(self.xp)
        if fused is not None and isinstance(dout, (int, float)):
            # One kernel: (y - one_hot(t)) * (dout / N).
            dx = fused.softmax_grad(self.y, self._labels, dout / batch_size,
                                    rows=self._rows_given)
        else:
            if self.t_hot is None:
                self.t_hot = one_hot(self._labels, self.y.shape[-1], dtype=self.y.dtype)
            dx = (self.y - self.t_hot) * (dout / batch_size)
        return dx[0, ...] if self._single else dx


# Primitive nodes for the book's sigmoid derivation (figure 5-19): with MulLayer by -1 and
# AddLayer with 1 (both take a plain Python number as one operand), they compose
# ``y = 1 / (1 + exp(-x))`` node by node, and their backward passes multiply to the
# ``Sigmoid`` layer's ``dout * y * (1 - y)``.
__all__ += ["ExpLayer", "ReciprocalLayer"]


class ExpLayer:
    """The "exp" node: ``out = exp(x)``; backward ``dx = dout * out`` (exp is its own derivative).

    Takes a floating array of any backend (the result keeps its dtype and device) or a plain
    Python number (``math.exp``).
    """

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        if type(x) in _SCALARS:  # exactly a Python number: NumPy scalars keep their type
            import cmath
            import math

            self.out = cmath.exp(x) if isinstance(x, complex) else math.exp(x)
        else:
            self.out = namespace(x).exp(x)
        return self.out

    def backward(self, dout: Any) -> Any:
        return dout * self.out


class ReciprocalLayer:
    """The "/" node: ``out = 1 / x``; backward ``dx = -dout * out**2``.

    Takes a floating array of any backend (the result keeps its dtype and device) or a plain
    Python number.
    """

    def __init__(self) -> None:
        self.out = None

    def forward(self, x: Any) -> Any:
        if type(x) not in _SCALARS:
            namespace(x)  # an array (or NumPy scalar) of one backend, or a clear TypeError
        self.out = 1.0 / x
        return self.out

    def backward(self, dout: Any) -> Any:
        return -(dout * (self.out * self.out))
