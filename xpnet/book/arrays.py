"""What the book's scripts get back from a network on a device: :class:`HostArray` views of
its arrays and :class:`BookParams`, the ``params`` dict that hands them out.

The rule (the same on every backend and device; on NumPy there is nothing to convert, and the
script gets NumPy arrays as the book's own code gives):

- an array that stays on the device for the script to compute with (``params[key]``, the
  dicts of ``gradient`` and ``numerical_gradient``) comes as a :class:`HostArray`: arithmetic,
  indexing, ``reshape``, ``astype`` and in-place updates (``params[key] -= lr * grad[key]``,
  ``param[...] = value``) run on the device; whatever reads it as NumPy (``np.asarray``, a
  NumPy function such as ``np.abs`` or ``np.average``, ``print``, matplotlib's ``imshow``,
  ``float()``) gets a NumPy copy through ``__array__``, the one host copy the script asked for;
- host NumPy data a script mixes in (an ``ndarray`` on either side of ``+``, a value
  assigned into a parameter) is moved to the array's device first.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import numpy as np

from ..backend import Array, asarray, device, dtype_name, namespace, to_numpy

__all__ = ["BookParams", "HostArray", "unwrap", "wrap"]


def wrap(x: Any) -> Any:
    """``x`` for a script: NumPy arrays and numbers as they are, device arrays as
    :class:`HostArray`."""
    if isinstance(x, (np.ndarray, np.generic, int, float, HostArray)) or x is None:
        return x
    return HostArray(x)


def unwrap(x: Any) -> Any:
    """The device array behind a :class:`HostArray`; anything else as it is."""
    return x._array if isinstance(x, HostArray) else x


def _operand(x: Any, like: Array) -> Any:
    """``x`` as an operand of an operation with ``like``: a view's array, host NumPy data on
    ``like``'s device, a Python number as it is."""
    if isinstance(x, HostArray):
        return x._array
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return asarray(x, namespace(like), device=device(like))
    return x


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False) -> Any:
    def method(self: HostArray, other: Any) -> Any:
        theirs = _operand(other, self._array)
        if reflected:
            return wrap(op(theirs, self._array))
        return wrap(op(self._array, theirs))

    return method


def _inplace(op: Callable[[Any, Any], Any]) -> Any:
    def method(self: HostArray, other: Any) -> HostArray:
        result = op(self._array, _operand(other, self._array))
        if result is not self._array:  # a backend without in-place updates: rebind
            self._array = result
        return self

    return method


class HostArray:
    """A device array as the book's scripts use it (see the module text): operations stay on
    the device, NumPy reads it through ``__array__`` (one host copy)."""

    __slots__ = ("_array",)
    # ndarray <op> HostArray defers to our reflected operation (kept on the device).
    __array_priority__ = 1000.0
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, array: Array) -> None:
        self._array = array

    # ---------------------------------------------------------------- reading it as NumPy

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        host = to_numpy(self._array)
        if dtype is not None:
            return host.astype(dtype, copy=False)
        return host

    def __repr__(self) -> str:
        return repr(np.asarray(self))

    def __str__(self) -> str:
        return str(np.asarray(self))

    def __format__(self, spec: str) -> str:
        return format(np.asarray(self)[()] if self.ndim == 0 else np.asarray(self), spec)

    def __float__(self) -> float:
        return float(self._array)

    def __int__(self) -> int:
        return int(self._array)

    def __bool__(self) -> bool:
        return bool(self._array)

    def __len__(self) -> int:
        return int(self.shape[0])

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self)):
            yield self[i]

    # ---------------------------------------------------------------- attributes

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape, a tuple of ints."""
        return tuple(int(n) for n in self._array.shape)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape))

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype of the same name."""
        return np.dtype(dtype_name(self._array.dtype))

    @property
    def T(self) -> Any:
        """The transpose (reversed axes), on the device."""
        xp = namespace(self._array)
        return wrap(xp.permute_dims(self._array, tuple(reversed(range(self.ndim)))))

    # ---------------------------------------------------------------- NumPy-style methods

    def reshape(self, *shape: Any) -> Any:
        """``reshape(2, 3)`` or ``reshape((2, 3))``, on the device."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return wrap(namespace(self._array).reshape(self._array, tuple(int(n) for n in shape)))

    def flatten(self) -> Any:
        """A 1-D copy, on the device."""
        return wrap(namespace(self._array).reshape(self._array, (-1,), copy=True))

    def copy(self) -> Any:
        """A copy, on the device."""
        return wrap(namespace(self._array).asarray(self._array, copy=True))

    def astype(self, dtype: Any) -> Any:
        """A copy of another dtype: on the device where the backend has the dtype, else (e.g.
        ``np.float16`` on array-api-strict) a host NumPy array."""
        name = np.dtype(dtype).name
        xp = namespace(self._array)
        target = getattr(xp, name, None)
        if target is None:
            return np.asarray(self).astype(name)
        return wrap(xp.astype(self._array, target))

    def _key(self, key: Any) -> Any:
        """NumPy's partial index (``filters[i, 0]`` of a 4-D array) made whole with ``...``,
        as the standard asks (array-api-strict refuses a partial one)."""
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(unwrap(k) for k in key)
        if not any(k is Ellipsis or k is None for k in key) and len(key) < self.ndim:
            key = (*key, Ellipsis)
        return key

    def __getitem__(self, key: Any) -> Any:
        return wrap(self._array[self._key(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        xp = namespace(self._array)
        if isinstance(value, (np.ndarray, np.generic)):
            value = asarray(np.asarray(value, dtype=self.dtype), xp, device=device(self._array))
        value = unwrap(value)
        if not isinstance(value, (int, float)) and value.dtype != self._array.dtype:
            value = xp.astype(value, self._array.dtype)
        self._array[self._key(key)] = value

    # ---------------------------------------------------------------- arithmetic

    __add__ = _binary(operator.add)
    __radd__ = _binary(operator.add, reflected=True)
    __sub__ = _binary(operator.sub)
    __rsub__ = _binary(operator.sub, reflected=True)
    __mul__ = _binary(operator.mul)
    __rmul__ = _binary(operator.mul, reflected=True)
    __truediv__ = _binary(operator.truediv)
    __rtruediv__ = _binary(operator.truediv, reflected=True)
    __pow__ = _binary(operator.pow)
    __rpow__ = _binary(operator.pow, reflected=True)
    __matmul__ = _binary(operator.matmul)
    __rmatmul__ = _binary(operator.matmul, reflected=True)
    __eq__ = _binary(operator.eq)
    __ne__ = _binary(operator.ne)
    __lt__ = _binary(operator.lt)
    __le__ = _binary(operator.le)
    __gt__ = _binary(operator.gt)
    __ge__ = _binary(operator.ge)
    __iadd__ = _inplace(operator.iadd)
    __isub__ = _inplace(operator.isub)
    __imul__ = _inplace(operator.imul)
    __itruediv__ = _inplace(operator.itruediv)

    def __neg__(self) -> Any:
        return wrap(-self._array)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return wrap(abs(self._array))


class BookParams(MutableMapping[str, Any]):
    """A network's ``params`` as a book script sees it: the same entries as the network's
    :class:`~xpnet.nets.Params`, each handed out by :func:`wrap` (NumPy arrays on NumPy,
    :class:`HostArray` views elsewhere); assigning a view, a device array or host NumPy data
    (moved to the parameter's device, in its dtype) updates the network."""

    def __init__(self, params: MutableMapping[str, Array]) -> None:
        self.params = params

    def __getitem__(self, key: str) -> Any:
        return wrap(self.params[key])

    def __setitem__(self, key: str, value: Any) -> None:
        old = self.params[key]
        if isinstance(value, (np.ndarray, np.generic)) and not isinstance(old, np.ndarray):
            value = asarray(np.asarray(value), namespace(old), device=device(old),
                            dtype=old.dtype)
        self.params[key] = unwrap(value)

    def __delitem__(self, key: str) -> None:
        del self.params[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"BookParams({dict(self.items())!r})"


def unwrap_mapping(values: Mapping[str, Any], like: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (gradients) with each view unwrapped and host NumPy data moved to the
    device of the entry of ``like`` (the parameters) of the same name."""
    out = {}
    for key, value in values.items():
        ref = like.get(key)
        if isinstance(value, np.ndarray) and ref is not None and not isinstance(ref, np.ndarray) \
                and not isinstance(ref, (int, float)):
            value = asarray(value, namespace(ref), device=device(ref))
        out[key] = unwrap(value)
    return out
