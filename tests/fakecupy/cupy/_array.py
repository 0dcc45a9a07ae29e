"""The fake ``cupy.ndarray`` (a NumPy buffer with a device identity) and the launch wrapper that
turns every NumPy function into a "kernel" on the current stream."""

from __future__ import annotations

import contextlib
import operator
from typing import Any

import numpy as np

from . import _core
from ._core import Buffer, check_access, check_device, enqueue, h2d, host_sync, new_array, record

# Floating matmul-like routines go through cuBLAS in CuPy (cupy/_core/_routines_linalg.pyx).
CUBLAS = {"matmul", "dot", "tensordot", "inner", "vdot", "einsum", "outer", "__matmul__"}
# Routines with a data-dependent output shape synchronise with the host in CuPy.
SYNCING = {"nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract"}


def _is_fake(x: Any) -> bool:
    return isinstance(x, ndarray)


def unwrap(obj: Any, reads: list | None = None, host: list | None = None) -> Any:
    """NumPy view of fake arrays inside ``obj`` (lists, tuples, dicts), noting what was read."""
    if isinstance(obj, ndarray):
        if reads is not None:
            reads.append(obj)
        return obj._a
    if isinstance(obj, np.ndarray):
        if host is not None:
            host.append(obj)
        return obj
    if isinstance(obj, (list, tuple)):
        items = [unwrap(o, reads, host) for o in obj]
        return type(obj)(items) if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        return {k: unwrap(v, reads, host) for k, v in obj.items()}
    return obj


def _flatten(r: Any) -> list:
    return list(r) if isinstance(r, (tuple, list)) else [r]


def _wrap_result(r: Any, inputs: list[ndarray], stream: _core.Stream) -> tuple[Any, list]:
    """Wrap NumPy results as fake arrays: views share their input's buffer, new arrays get
    memory from the pool (garbage while ``stream`` captures: the values come at replay).
    Returns ``(wrapped, new)``, ``new`` the ``(position, array)`` of each new one."""
    new: list[tuple[int, ndarray]] = []
    capturing = _core.capturing() is stream

    def one(pos: int, x: Any) -> Any:
        if isinstance(x, np.generic):
            x = np.asarray(x)
        if not isinstance(x, np.ndarray):
            return x
        for a in inputs:
            if np.may_share_memory(x, a._a):
                return ndarray._wrap(x, a._buf)
        order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
        data, buf = new_array(x.shape, x.dtype, stream, order)
        if not capturing:
            np.copyto(data, x)
        buf.writer = (stream, stream.last)
        out = ndarray._wrap(data, buf)
        new.append((pos, out))
        return out

    if isinstance(r, (tuple, list)):
        items = [one(pos, x) for pos, x in enumerate(r)]
        return (tuple(items) if isinstance(r, tuple) else items), new
    return one(0, r), new


def _record_refill(new: list[tuple[int, ndarray]], fn: Any, uargs: Any, ukw: Any,
                   stream: _core.Stream) -> None:
    """While ``stream`` captures: compute ``new``'s values at each replay (on NumPy views only,
    so the graph does not keep the arrays alive)."""
    if not new:
        return
    targets = [(pos, o._a) for pos, o in new]
    record(lambda: _refill(targets, fn(*uargs, **ukw)), [o._buf for _, o in new], stream)


def launch(name: str, fn: Any, args: tuple, kwargs: dict) -> Any:
    """Run NumPy ``fn`` as one CuPy routine on the current stream, under the capture rules."""
    reads: list[ndarray] = []
    host: list[np.ndarray] = []
    uargs = unwrap(args, reads, host)
    ukw = unwrap(kwargs, reads, host)
    out = kwargs.get("out")
    if not reads and not host:
        r = fn(*uargs, **ukw)
        if not isinstance(r, (np.ndarray, np.generic, tuple, list)) or (
                isinstance(r, (tuple, list)) and not any(isinstance(x, np.ndarray) for x in r)):
            return r  # a host-only helper (isdtype, result_type, finfo ...): no launch
        stream = enqueue()  # a creation routine (zeros, arange ...)
        wrapped, new = _wrap_result(r, [], stream)
        _record_refill(new, fn, uargs, ukw, stream)
        return wrapped
    if host:
        msg = f"Unsupported type {type(host[0])} (fake cupy: {name} got a host NumPy array)"
        raise TypeError(msg)
    stream = enqueue()
    for a in reads:
        check_device(a._buf)
        check_access(a._buf, stream)
    if name in CUBLAS and any(a.dtype.kind in "fc" for a in reads):
        _core.STATS["cublas"] += 1
        if _core.capturing() is stream:
            msg = "calling cuBLAS API during stream capture is currently unsupported"
            raise NotImplementedError(msg)
    if name in SYNCING or (name == "where" and len(args) == 1):
        host_sync(name)
    if isinstance(out, ndarray):
        return _inplace(out, lambda: fn(*uargs, **ukw), stream)
    # While capturing the inputs may be garbage: compute only for the result's shape and dtype.
    quiet = np.errstate(all="ignore") if _core.capturing() is stream else contextlib.nullcontext()
    with quiet:
        r = fn(*uargs, **ukw)
    wrapped, new = _wrap_result(r, reads, stream)
    _record_refill(new, fn, uargs, ukw, stream)
    return wrapped


def _refill(targets: list[tuple[int, np.ndarray]], r: Any) -> None:
    """Replay: write the recomputed results into the memory allocated at capture."""
    flat = _flatten(r)
    for pos, target in targets:
        np.copyto(target, np.asarray(flat[pos]), casting="unsafe")


def _inplace(target: ndarray, apply: Any, stream: _core.Stream | None = None) -> ndarray:
    """An in-place write into ``target``: run now, or only record it while capturing.
    ``apply`` must hold NumPy views only (see :func:`_core.record`)."""
    stream = enqueue() if stream is None else stream
    check_device(target._buf)
    check_access(target._buf, stream)
    if not record(apply, [target._buf], stream):
        apply()
    target._buf.writer = (stream, stream.last)
    return target


def _binary(name: str, fn: Any, reflected: bool = False) -> Any:
    if reflected:
        return lambda self, other: launch(name, fn, (other, self), {})
    return lambda self, other: launch(name, fn, (self, other), {})


def _iop(fn: Any) -> Any:
    def method(self: ndarray, other: Any) -> ndarray:
        if isinstance(other, np.ndarray):
            msg = f"Unsupported type {type(other)}"
            raise TypeError(msg)
        if isinstance(other, ndarray):
            check_device(other._buf)
            check_access(other._buf, _core.current_stream())
        a, b = self._a, unwrap(other)

        def apply() -> Any:
            return (fn(a, b, out=a, casting="same_kind") if isinstance(fn, np.ufunc)
                    else fn(a, b))

        return _inplace(self, apply)
    return method


class ndarray:
    """A fake CuPy array: device memory is a NumPy buffer that only kernels may touch."""

    __array_priority__ = 100
    __array_ufunc__ = None  # NumPy defers to us: host + device mixes fail as in CuPy
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None,
                 order: str = "C") -> None:
        stream = enqueue()
        self._a, self._buf = new_array(shape, dtype, stream, order)

    @classmethod
    def _wrap(cls, a: np.ndarray, buf: Buffer) -> ndarray:
        obj = object.__new__(cls)
        obj._a = a
        obj._buf = buf
        return obj

    # metadata: no launch
    shape = property(lambda self: self._a.shape, lambda self, s: setattr(self._a, "shape", s))
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray._wrap(self._a.T, self._buf))
    mT = property(lambda self: ndarray._wrap(np.swapaxes(self._a, -1, -2), self._buf))

    @property
    def device(self) -> Any:
        from .cuda import Device

        return Device(self._buf.device)

    @property
    def data(self) -> Any:
        return self._buf.memptr

    def view(self, dtype: Any = None) -> ndarray:
        return ndarray._wrap(self._a.view() if dtype is None else self._a.view(dtype), self._buf)

    def __len__(self) -> int:
        return len(self._a)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:  # no sync: a debugging aid of the fake
        return f"fake_cupy.array({self._a!r})"

    # host transfers
    def get(self, stream: Any = None, order: str = "C", out: Any = None,
            blocking: bool = True) -> np.ndarray:
        if stream is not None:
            with stream:
                return self.get()
        used = host_sync("ndarray.get")
        check_access(self._buf, used)
        return np.array(self._a, order=order)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        used = h2d()
        check_access(self._buf, used)
        self._a[...] = arr
        self._buf.writer = (used, used.last)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        msg = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to "
               "construct a NumPy array explicitly.")
        raise TypeError(msg)

    def item(self) -> Any:
        return self.get().item()

    def tolist(self) -> Any:
        return self.get().tolist()

    def __float__(self) -> float:
        return float(self.get())

    def __int__(self) -> int:
        return int(self.get())

    def __index__(self) -> int:
        return operator.index(self.get()[()])

    def __bool__(self) -> bool:
        return bool(self.get())

    def __complex__(self) -> complex:
        return complex(self.get())

    # kernels
    def __getitem__(self, key: Any) -> Any:
        reads: list = []
        unwrap(key, reads)
        if any(r.dtype == np.bool_ for r in reads):
            host_sync("boolean mask indexing")
        return launch("getitem", operator.getitem, (self, key), {})

    def __setitem__(self, key: Any, value: Any) -> None:
        reads: list = []
        host: list = []
        unwrap((key, value), reads, host)
        stream = h2d() if host else enqueue()
        for r in reads:
            check_device(r._buf)
            check_access(r._buf, stream)
        a, k, v = self._a, unwrap(key), unwrap(value)

        def apply() -> None:
            a[k] = v

        _inplace(self, apply, stream)

    def astype(self, dtype: Any, order: str = "K", casting: Any = None, subok: Any = None,
               copy: bool = True) -> ndarray:
        return launch("astype", lambda a: a.astype(dtype, copy=copy), (self,), {})

    def copy(self, order: str = "C") -> ndarray:
        return launch("copy", np.copy, (self,), {})

    def reshape(self, *shape: Any, order: str = "C") -> ndarray:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return launch("reshape", np.reshape, (self, shape), {})

    def fill(self, value: Any) -> None:
        a = self._a
        _inplace(self, lambda: a.fill(value))

    __add__, __radd__ = _binary("add", np.add), _binary("add", np.add, True)
    __sub__, __rsub__ = _binary("subtract", np.subtract), _binary("subtract", np.subtract, True)
    __mul__, __rmul__ = _binary("multiply", np.multiply), _binary("multiply", np.multiply, True)
    __truediv__ = _binary("divide", np.divide)
    __rtruediv__ = _binary("divide", np.divide, True)
    __floordiv__ = _binary("floor_divide", np.floor_divide)
    __rfloordiv__ = _binary("floor_divide", np.floor_divide, True)
    __mod__, __rmod__ = _binary("mod", np.mod), _binary("mod", np.mod, True)
    __pow__, __rpow__ = _binary("power", np.power), _binary("power", np.power, True)
    __matmul__ = _binary("matmul", np.matmul)
    __rmatmul__ = _binary("matmul", np.matmul, True)
    __and__, __rand__ = _binary("and", np.bitwise_and), _binary("and", np.bitwise_and, True)
    __or__, __ror__ = _binary("or", np.bitwise_or), _binary("or", np.bitwise_or, True)
    __xor__, __rxor__ = _binary("xor", np.bitwise_xor), _binary("xor", np.bitwise_xor, True)
    __lshift__, __rshift__ = _binary("lshift", np.left_shift), _binary("rshift", np.right_shift)
    __lt__, __le__ = _binary("less", np.less), _binary("less_equal", np.less_equal)
    __gt__, __ge__ = _binary("greater", np.greater), _binary("greater_equal", np.greater_equal)
    __eq__ = _binary("equal", np.equal)  # type: ignore[assignment]
    __ne__ = _binary("not_equal", np.not_equal)  # type: ignore[assignment]
    __iadd__, __isub__ = _iop(np.add), _iop(np.subtract)
    __imul__, __itruediv__ = _iop(np.multiply), _iop(np.true_divide)
    __ifloordiv__, __imod__ = _iop(np.floor_divide), _iop(np.mod)
    __ipow__ = _iop(np.power)
    __iand__, __ior__, __ixor__ = _iop(np.bitwise_and), _iop(np.bitwise_or), _iop(np.bitwise_xor)

    def __neg__(self) -> ndarray:
        return launch("negative", np.negative, (self,), {})

    def __pos__(self) -> ndarray:
        return launch("positive", np.positive, (self,), {})

    def __abs__(self) -> ndarray:
        return launch("absolute", np.absolute, (self,), {})

    def __invert__(self) -> ndarray:
        return launch("invert", np.invert, (self,), {})


def _method(name: str) -> Any:
    fn = getattr(np, name)
    return lambda self, *args, **kwargs: launch(name, fn, (self, *args), kwargs)


for _name in ("sum", "max", "min", "mean", "prod", "argmax", "argmin", "any", "all", "ravel",
              "transpose", "squeeze", "clip", "dot", "cumsum", "var", "std", "round",
              "swapaxes", "repeat", "take", "nonzero", "sort", "argsort", "conj"):
    setattr(ndarray, _name, _method(_name))
