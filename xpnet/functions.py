"""Stateless math for the layers: activations, softmax and cross-entropy.

Every function takes its namespace from its input and returns arrays of the input's dtype on the
input's device. Labels ``t`` are either one-hot / probability rows (floating, same shape as the
scores) or class indices (any integer dtype, e.g. the ``uint8`` that MNIST files hold), for a batch
``(N, C)`` or a single sample ``(C,)``.
"""

from __future__ import annotations

import math
from typing import Any

from .backend import Array, namespace, register_cache
from .ops import one_hot

__all__ = [
    "check_labels",
    "cross_entropy_error",
    "identity_function",
    "log_softmax",
    "mean_squared_error",
    "one_hot",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]


def sigmoid(x: Array, /) -> Array:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, with no overflow for large ``|x|``.

    Uses ``e = exp(-|x|) <= 1``: ``1/(1+e)`` for ``x >= 0`` and ``e/(1+e)`` otherwise.
    """
    xp = namespace(x)
    e = xp.exp(-xp.abs(x))
    r = 1.0 / (1.0 + e)
    return xp.where(x >= 0, r, e * r)


def relu(x: Array, /) -> Array:
    """Rectified linear unit ``max(x, 0)``."""
    xp = namespace(x)
    return xp.maximum(x, 0.0)


def softmax(x: Array, /, *, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum so it never overflows."""
    xp = namespace(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Array, /, *, axis: int = -1) -> Array:
    """``log(softmax(x))`` computed as ``z - log(sum(exp(z)))`` with ``z = x - max(x)``."""
    xp = namespace(x)
    z = x - xp.max(x, axis=axis, keepdims=True)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def check_labels(t: Array, /, num_classes: int) -> None:
    """Raise ``ValueError`` unless integer labels ``t`` all lie in ``[0, num_classes)``.

    This reads two numbers back to the host (a device sync): call it once per data set,
    not once per step.
    """
    xp = namespace(t)
    if not xp.isdtype(t.dtype, "integral") or math.prod(t.shape) == 0:
        return
    low, high = int(xp.min(t)), int(xp.max(t))
    if low < 0 or high >= num_classes:
        msg = (f"labels must lie in [0, {num_classes}) for {num_classes} classes, "
               f"got values from {low} to {high}; check the labels or the output size")
        raise ValueError(msg)


_LABEL_KINDS: dict[tuple[int, Any], str | None] = register_cache({})


def _label_kind(xp: Any, dtype: Any) -> str | None:
    """``"bool"``, ``"integral"``, ``"real floating"`` or ``None``, remembered per dtype
    (``isdtype`` costs microseconds, and this runs every training step)."""
    key = (id(xp), dtype)
    try:
        return _LABEL_KINDS[key]
    except KeyError:
        pass
    kind = next((k for k in ("bool", "integral", "real floating") if xp.isdtype(dtype, k)), None)
    _LABEL_KINDS[key] = kind
    return kind


def _as_batch(y: Array, t: Array, xp: Any) -> tuple[Array, Array, bool]:
    """Validate the label form and lift a single sample to a batch of one.

    Returns ``(y, t, one_hot)`` with ``y`` of shape ``(N, C)``.
    """
    if y.ndim not in (1, 2):
        msg = f"scores must have shape (N, C) or (C,), got shape {tuple(y.shape)}"
        raise ValueError(msg)
    kind = _label_kind(xp, t.dtype)
    if kind == "bool":
        msg = "labels have dtype bool; pass class indices (an integer dtype) or one-hot floats"
        raise TypeError(msg)
    is_int = kind == "integral"
    if kind is None:
        msg = f"labels must be integer class indices or one-hot floats, got dtype {t.dtype}"
        raise TypeError(msg)
    expected = y.shape[:-1] if is_int else y.shape
    if is_int and y.shape[-1] > 1 and tuple(t.shape) == (*expected, 1):
        # A column of class indices, (N, 1): the book's ch07/gradient_check.py passes
        # np.array([1]).reshape((1, 1)).
        t = xp.reshape(t, tuple(expected))
    if not is_int and y.ndim == 2 and tuple(t.shape) == tuple(y.shape[:-1]):
        # One label per row, as class indices are, but floating (np.array([0., 3., ...])).
        msg = (f"labels of shape {tuple(t.shape)} and dtype {t.dtype} look like class indices, "
               "which must be integers: cast them (t.astype(int)), or pass one-hot rows of "
               f"shape {tuple(y.shape)}")
        raise TypeError(msg)
    if tuple(t.shape) != tuple(expected):
        form = "class indices" if is_int else "one-hot labels"
        msg = (f"{form} must have shape {tuple(expected)} for scores of shape "
               f"{tuple(y.shape)}, got shape {tuple(t.shape)}")
        raise ValueError(msg)
    if not is_int and t.dtype != y.dtype:
        # One-hot labels are data: the scores' dtype decides (float64 labels must not
        # turn a float32 loss and gradient into float64).
        t = xp.astype(t, y.dtype)
    if y.ndim == 1:
        y = y[None, ...]
        t = t[None, ...]
    return y, t, not is_int


def _picked(values: Array, t: Array, one_hot_t: bool, xp: Any) -> Array:
    """``sum_c t[n, c] * values[n, c]``: the value of each row's true class (one-hot or index)."""
    if not one_hot_t:
        t = one_hot(t, values.shape[-1], dtype=values.dtype)
    return xp.sum(t * values, axis=-1)


def softmax_cross_entropy(x: Array, t: Array, /) -> Array:
    """Mean cross-entropy ``-mean(sum(t * log_softmax(x)))`` of scores ``x`` (logits).

    Exact through log-softmax (no ``+1e-7`` inside the log). Returns a 0-d array.
    """
    xp = namespace(x, t)
    x, t, hot = _as_batch(x, t, xp)
    return -xp.sum(_picked(log_softmax(x), t, hot, xp)) / x.shape[0]


def cross_entropy_error(y: Array, t: Array, /) -> Array:
    """The book's ``-sum(t * log(y)) / N`` for probabilities ``y`` (softmax outputs).

    ``y`` is clipped at the dtype's smallest normal number instead of the book's ``+1e-7``,
    so the result is exact for every representable probability. Returns a 0-d array.
    """
    xp = namespace(y, t)
    y, t, hot = _as_batch(y, t, xp)
    tiny = float(xp.finfo(y.dtype).smallest_normal)
    return -xp.sum(_picked(xp.log(xp.maximum(y, tiny)), t, hot, xp)) / y.shape[0]


# --------------------------------------------------------------------------- the book's other names
# (common/functions.py and chapters 3-4), portable.


def identity_function(x: Array, /) -> Array:
    """The identity ``x`` (the book's output activation for regression)."""
    return x


def step_function(x: Array, /) -> Array:
    """Step ``1 if x > 0 else 0`` as int64, as the book's ``np.array(x > 0, dtype=int)``."""
    xp = namespace(x)
    return xp.astype(x > 0, xp.int64)


def sigmoid_grad(x: Array, /) -> Array:
    """Derivative of the sigmoid at ``x``: ``s * (1 - s)`` with ``s = sigmoid(x)``."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu_grad(x: Array, /) -> Array:
    """Derivative of ReLU at ``x``: ``1`` where ``x >= 0`` (the book counts 0 in), else ``0``;
    ``x``'s dtype."""
    xp = namespace(x)
    return xp.astype(x >= 0, x.dtype)


def mean_squared_error(y: Array, t: Array, /) -> Array:
    """The book's squared error ``0.5 * sum((y - t)**2)`` (chapter 4's name; its
    ``common/functions.py`` calls it :func:`sum_squared_error`). A sum, not a mean, as the book's.

    ``t`` may hold integers (one-hot lists, as in the book's example): they are cast to ``y``'s
    dtype. Floating ``y`` and ``t`` of different dtypes promote as in NumPy. Returns a 0-d array.
    """
    xp = namespace(y, t)
    if tuple(y.shape) != tuple(t.shape):
        msg = f"y and t must have the same shape, got {tuple(y.shape)} and {tuple(t.shape)}"
        raise ValueError(msg)
    if not xp.isdtype(t.dtype, "real floating"):
        t = xp.astype(t, y.dtype)
    elif t.dtype != y.dtype:
        # explicit: PyTorch keeps the larger operand's dtype when the other is 0-d
        dtype = xp.result_type(y.dtype, t.dtype)
        y, t = xp.astype(y, dtype), xp.astype(t, dtype)
    d = y - t
    return 0.5 * xp.sum(d * d)


sum_squared_error = mean_squared_error


def softmax_loss(x: Array, t: Array, /) -> Array:
    """The book's ``cross_entropy_error(softmax(x), t)`` for scores ``x``, computed exactly
    through log-softmax (:func:`softmax_cross_entropy`). Returns a 0-d array."""
    return softmax_cross_entropy(x, t)
