"""Argument checks, in one place: sizes, counts, rates, seeds, array shapes and dtypes.

Each check returns the value in its plain form (a Python ``int`` or ``float``) or raises with a
message that names the argument, what it must be and what it got: ``TypeError`` for a value of
the wrong kind, ``ValueError`` for one out of range. Layers, networks, optimizers and the loop
call these instead of writing the tests out again.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from array_api_compat import is_numpy_namespace

from .backend import Array, Namespace, device, namespace, register_cache

__all__ = ["Checked", "batch_not_empty", "floating_input", "four_d", "init_std", "int_at_least",
           "optional_positive_int", "param_and_grad", "positive_int", "positive_rate", "promoted",
           "real", "same_float", "seed", "unit_rate", "window_count"]

_SCALARS = (bool, int, float, complex)


# --------------------------------------------------------------------------- numbers

def _is_int(value: Any) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (a size, a count), else ``ValueError``."""
    if not _is_int(value) or value < 1:
        msg = f"{name} must be a positive integer, got {value!r}"
        raise ValueError(msg)
    return int(value)


def optional_positive_int(value: Any, name: str) -> int | None:
    """``None``, or :func:`positive_int` (saying that ``None`` is allowed too)."""
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        msg = f"{name} must be a positive integer or None, got {value!r}"
        raise ValueError(msg)
    return int(value)


def int_at_least(value: Any, name: str, low: int) -> int:
    """``value`` as an ``int`` if it is an integer >= ``low`` (a stride, a padding)."""
    if not _is_int(value) or value < low:
        msg = f"{name} must be an integer >= {low}, got {value!r}"
        raise ValueError(msg)
    return int(value)


def seed(value: Any) -> int | None:
    """A seed: ``None`` (fresh entropy) or an integer >= 0."""
    if value is not None and (not _is_int(value) or value < 0):
        msg = f"seed must be a non-negative integer or None, got {value!r}"
        raise ValueError(msg)
    return None if value is None else int(value)


def real(owner: str, name: str, value: Any) -> float:
    """``value`` as a finite Python float (``owner`` names who asks, e.g. an optimizer)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        msg = f"{owner}: {name} must be a real number (a Python float), got {value!r}"
        raise TypeError(msg)
    number = float(value)
    if not math.isfinite(number):
        msg = f"{owner}: {name} must be a positive finite number, got {number!r}"
        raise ValueError(msg)
    return number


def positive_rate(owner: str, name: str, value: Any) -> float:
    """A learning rate: a finite float > 0."""
    number = real(owner, name, value)
    if not number > 0:
        msg = f"{owner}: {name} must be a positive finite number, got {number!r}"
        raise ValueError(msg)
    return number


def unit_rate(owner: str, name: str, value: Any) -> float:
    """A decay or momentum: a float in ``[0, 1)``."""
    number = real(owner, name, value)
    if not 0.0 <= number < 1.0:
        msg = f"{owner}: {name} must lie in [0, 1), got {number!r}"
        raise ValueError(msg)
    return number


def init_std(value: Any, name: str = "weight_init_std") -> float:
    """``value`` as a Python float if it is a finite real number >= 0, else a clear error
    (``TypeError`` for a non-number, ``ValueError`` for NaN, infinity or a negative number)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        msg = (f"{name} must be a finite number >= 0 (e.g. 0.01), got "
               f"{type(value).__name__} {value!r}")
        raise TypeError(msg)
    number = float(value)
    if not (math.isfinite(number) and number >= 0):
        msg = f"{name} must be a finite number >= 0 (e.g. 0.01), got {number!r}"
        raise ValueError(msg)
    return number


def window_count(size: int, field: int, stride: int, pad: int, what: str) -> int:
    """``(size + 2*pad - field) // stride + 1``: the number of whole windows, floored as the
    book's layers (``1 + int(...)``), PyTorch's ``conv2d`` and ``max_pool2d`` do. Where
    ``stride`` does not divide ``size + 2*pad - field``, the last ``(size + 2*pad - field) %
    stride`` rows (columns) of the padded input are read by no window (they get zero gradient).
    Refuses a window that does not fit at all."""
    span = size + 2 * pad - field
    if span < 0:
        msg = (f"{what}: a window of {field} does not fit into an input of {size} with "
               f"padding {pad}; use a smaller window or more padding")
        raise ValueError(msg)
    return span // stride + 1


# --------------------------------------------------------------------------- arrays

def batch_not_empty(x: Array, what: str) -> None:
    """Refuse an empty batch, whose mean loss (a division by 0 rows) is undefined."""
    if x.ndim >= 1 and x.shape[0] == 0:
        msg = f"{what} of an empty batch is undefined: x has 0 rows; pass at least one sample"
        raise ValueError(msg)


def four_d(x: Any, what: str) -> None:
    """Refuse anything but an ``(N, C, H, W)`` array."""
    if getattr(x, "ndim", None) != 4:
        shape = tuple(getattr(x, "shape", ()))
        msg = f"{what} needs input of shape (N, C, H, W), got shape {shape}"
        raise ValueError(msg)


def floating_input(xp: Namespace, x: Array, what: str) -> None:
    """Refuse an input that is not real floating point."""
    if not xp.isdtype(x.dtype, "real floating"):
        msg = (f"{what} needs floating input, got dtype {x.dtype}; cast it first, "
               "e.g. xp.astype(x, xp.float32)")
        raise TypeError(msg)


def promoted(xp: Namespace, where: str, *arrays: Array) -> tuple[Array, ...]:
    """``arrays`` cast to their promoted floating dtype (``xp.result_type``), each cast only
    where its dtype differs. Every cast goes up (float16 < float32 < float64), so values are
    kept exactly: what NumPy computes for mixed dtypes. PyTorch's ``@`` does not promote, and
    in-place updates would cast down, hence explicit casts."""
    for a in arrays:
        if not xp.isdtype(a.dtype, "real floating"):
            names = ", ".join(str(b.dtype) for b in arrays)
            msg = (f"{where} needs floating arrays, got dtypes {names}; cast the input with "
                   "xp.astype(x, W.dtype) (e.g. images as float32 scaled to [0, 1])")
            raise TypeError(msg)
    dtype = xp.result_type(*(a.dtype for a in arrays))
    return tuple(a if a.dtype == dtype else xp.astype(a, dtype) for a in arrays)


def same_float(a: Any, b: Any) -> tuple[Any, Any]:
    """``a, b`` cast to their promoted dtype when both are floating arrays of different dtypes.

    PyTorch's ``*`` and ``+`` keep the dtype of the larger operand when the other is 0-d
    (float32 array * float64 0-d array is float32 there, float64 in NumPy and the Array API),
    and array_api_compat's wrappers do not fix it for float16. Anything else is left to the
    library's own rules."""
    if isinstance(a, _SCALARS) or isinstance(b, _SCALARS) or a.dtype == b.dtype:
        return a, b
    xp = namespace(a, b)
    if xp.isdtype(a.dtype, "real floating") and xp.isdtype(b.dtype, "real floating"):
        return promoted(xp, "", a, b)
    return a, b


# --------------------------------------------------------------------------- optimizers

class Checked:
    """An attribute checked by ``check(owner name, attribute name, value)`` whenever it is set:
    an optimizer's hyper-parameters (a schedule that assigns ``opt.lr = ...`` gets the same
    checks as the constructor)."""

    def __init__(self, check: Any) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = self.check(type(obj).__name__, self.name, value)


# {(namespace name, dtype): whether it is real floating}, for the per-update checks. The name
# comes first so that dtypes of two libraries are never compared (strict warns).
_REAL_FLOATING: dict[tuple[str, Any], bool] = register_cache({})


def _real_floating(xp: Namespace, dtype: Any) -> bool:
    key = (xp.__name__, dtype)
    found = _REAL_FLOATING.get(key)
    if found is None:
        found = _REAL_FLOATING[key] = bool(xp.isdtype(dtype, "real floating"))
    return found


def param_and_grad(key: str, p: Array, g: Array) -> Namespace:
    """One parameter and its gradient: one backend, one shape, real floating point, one
    device. Returns their namespace."""
    try:
        xp = namespace(p, g)
    except TypeError as exc:
        msg = f"grads[{key!r}] does not fit params[{key!r}]: {exc}"
        raise TypeError(msg) from None
    if tuple(g.shape) != tuple(p.shape):
        msg = (f"grads[{key!r}] has shape {tuple(g.shape)} but params[{key!r}] has "
               f"{tuple(p.shape)}")
        raise ValueError(msg)
    if not _real_floating(xp, p.dtype):
        msg = f"params[{key!r}] must be real floating point, got dtype {p.dtype}"
        raise TypeError(msg)
    if g.dtype != p.dtype and not _real_floating(xp, g.dtype):
        msg = f"grads[{key!r}] must be real floating point, got dtype {g.dtype}"
        raise TypeError(msg)
    # NumPy has only the CPU
    if not is_numpy_namespace(xp) and device(g) != device(p):
        msg = (f"grads[{key!r}] is on device {device(g)} but params[{key!r}] on "
               f"{device(p)}; compute the gradients where the parameters live")
        raise ValueError(msg)
    return xp
