"""A fake CuPy for CPU tests: NumPy underneath, CuPy's stream-capture rules on top.

Never importable by default: tests put ``tests/fakecupy`` first on ``sys.path`` (the
``fake_cupy`` fixture in ``tests/conftest.py``) and the GPU check's ``--dry-run`` puts it on
``PYTHONPATH``. ``array_api_compat`` recognises its arrays as CuPy's (``cupy.ndarray``) and
``array_api_compat.cupy`` imports against it. ``ElementwiseKernel`` compiles the CUDA C body with
g++ and runs it on the NumPy buffers. See ``_core.py`` for the modelled rules and
``tests/fakecupy/README.md`` for how to use it.
"""

from __future__ import annotations

from typing import Any as _Any

import numpy as _np

from . import _core, cuda, fft, linalg  # noqa: F401
from ._array import launch as _launch
from ._array import ndarray
from ._kernel import KernelSpec as _KernelSpec
from ._kernel import check_name as _check_name

__version__ = "14.0.0+fakecupy"
FAKE = True  # how tests tell the fake from the real CuPy

_SKIP = {"ndarray", "asarray", "array", "ascontiguousarray", "asnumpy", "get_array_module",
         "is_available", "ElementwiseKernel", "test", "show_config", "info", "testing",
         "random", "linalg", "fft", "ctypeslib", "ma", "rec", "char", "strings", "lib",
         "polynomial", "emath", "exceptions", "dtypes", "typing", "f2py", "matlib", "version",
         "core", "distutils", "doc", "compat", "fromfile", "load", "save", "savez", "loadtxt",
         "savetxt", "genfromtxt", "frombuffer", "memmap", "set_printoptions",
         "get_printoptions", "printoptions"}
# NumPy names that CuPy 14 lacks (checked against the real package by tests/test_cupy_api.py):
# the fake must not offer what CuPy does not have.
_NOT_IN_CUPY = {"asmatrix", "block", "bmat", "busday_count", "busday_offset", "busdaycalendar",
                "bytes_", "character", "clongdouble", "complex256", "datetime64",
                "datetime_as_string", "datetime_data", "einsum_path", "errstate", "flexible",
                "float128", "frompyfunc", "fromregex", "geomspace", "get_include", "getbufsize",
                "geterr", "geterrcall", "histogram_bin_edges", "insert", "is_busday", "isnat",
                "little_endian", "longdouble", "matrix", "matvec", "nanpercentile",
                "nanquantile", "ndenumerate", "nditer", "nested_iters", "object_", "polyder",
                "polydiv", "polyint", "recarray", "record", "setbufsize", "seterr",
                "seterrcall", "show_runtime", "spacing", "str_", "timedelta64", "unstack",
                "vecdot", "vecmat", "void",
                # NumPy's own classes, which CuPy reimplements with fewer methods
                "broadcast", "ufunc"}
__all__: list[str] = []


def _wrapper(name: str, fn: _Any) -> _Any:
    def routine(*args: _Any, **kwargs: _Any) -> _Any:
        return _launch(name, fn, args, kwargs)

    routine.__name__ = routine.__qualname__ = name
    routine.__doc__ = f"fake cupy.{name}: numpy.{name} as a device routine"
    return routine


for _name in dir(_np):
    if _name.startswith("_") or _name in _SKIP or _name in _NOT_IN_CUPY:
        continue
    _obj = getattr(_np, _name)
    if isinstance(_obj, type) or not callable(_obj):
        if isinstance(_obj, (type, int, float)) or _obj is None:
            globals()[_name] = _obj  # dtypes, finfo, constants
            __all__.append(_name)
        continue
    globals()[_name] = _wrapper(_name, _obj)
    __all__.append(_name)

abs = _wrapper("absolute", _np.absolute)
max = _wrapper("max", _np.max)
min = _wrapper("min", _np.min)
round = _wrapper("round", _np.round)
bool_ = _np.bool_
newaxis = None


def is_available() -> bool:
    return True


def _h2d(obj: _Any, dtype: _Any, order: _Any = None) -> ndarray:
    stream = _core.h2d()
    host = _np.array(obj, dtype=dtype, copy=True, order="C" if order is None else order)
    data, buf = _core.new_array(host.shape, host.dtype, stream,
                                "F" if host.flags.f_contiguous and host.ndim > 1 else "C")
    data[...] = host
    buf.writer = (stream, stream.last)
    return ndarray._wrap(data, buf)


def asarray(a: _Any, dtype: _Any = None, order: _Any = None, *, blocking: bool = False) -> _Any:
    """A device array: ``a`` itself when it already is one of ``dtype``, else a copy."""
    if isinstance(a, ndarray):
        if dtype is None or _np.dtype(dtype) == a.dtype:
            return a
        return a.astype(dtype)
    return _h2d(a, dtype, order)


def array(obj: _Any, dtype: _Any = None, copy: _Any = True, order: _Any = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> _Any:
    if isinstance(obj, ndarray):
        if copy is False or copy is None:
            return asarray(obj, dtype)
        return _launch("array", lambda a: _np.array(a, dtype=dtype, copy=True), (obj,), {})
    return _h2d(obj, dtype)


def ascontiguousarray(a: _Any, dtype: _Any = None) -> _Any:
    if isinstance(a, ndarray):
        return _launch("ascontiguousarray", _np.ascontiguousarray, (a,), {"dtype": dtype})
    return _h2d(a, dtype)


def asnumpy(a: _Any, stream: _Any = None, order: str = "C", out: _Any = None, *,
            blocking: bool = True) -> _Any:
    return a.get(stream=stream, order=order) if isinstance(a, ndarray) else _np.asarray(a)


def get_array_module(*args: _Any) -> _Any:
    import sys

    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in args) else _np


def get_default_memory_pool() -> _core.MemoryPool:
    return _core.get_default_memory_pool()


class ElementwiseKernel:
    """CuPy's ``ElementwiseKernel``, executing the CUDA C ``operation`` on the CPU (g++)."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str = "kernel",
                 reduce_dims: bool = True, preamble: str = "", no_return: bool = False,
                 return_tuple: bool = False, *, loop_prep: str = "", after_loop: str = "",
                 options: tuple = (), **kwargs: _Any) -> None:
        if preamble or loop_prep or after_loop:
            operation = operation  # kept simple: the fake pastes only the loop body
        self.spec = _KernelSpec(in_params, out_params, operation, _check_name(name))
        self.name = name
        self.nin = len(self.spec.ins)
        self.nout = len(self.spec.outs)
        self.no_return = no_return
        self.return_tuple = return_tuple

    def __call__(self, *args: _Any, size: int | None = None, block_size: _Any = None) -> _Any:
        spec = self.spec
        if len(args) not in (self.nin, self.nin + self.nout):
            msg = f"Wrong number of arguments for {self.name!r}"
            raise TypeError(msg)
        for a in args:
            if isinstance(a, _np.ndarray):
                msg = f"Unsupported type {type(a)} (kernel {self.name!r} got a host array)"
                raise TypeError(msg)
            if isinstance(a, ndarray):
                _core.check_device(a._buf)
        ins, given = list(args[: self.nin]), list(args[self.nin:])
        values = [a._a if isinstance(a, ndarray) else a for a in args]
        values += [None] * (self.nin + self.nout - len(values))
        types = spec.resolve_types(values)
        _core.KERNEL_LAUNCHES.add((
            self.name, tuple(sorted((k, v.name) for k, v in types.items())),
            tuple(p.name for p, a in zip(spec.ins, ins, strict=False)
                  if not isinstance(a, ndarray))))
        shapes = [a.shape for p, a in zip(spec.ins + spec.outs, args, strict=False)
                  if isinstance(a, ndarray) and not p.raw]
        if shapes:
            shape = _np.broadcast_shapes(*shapes)
        elif size is not None:
            shape = (int(size),)
        else:
            msg = "Loop size is undecided"
            raise ValueError(msg)
        stream = _core.enqueue()
        for a in args:
            if isinstance(a, ndarray):
                _core.check_access(a._buf, stream)
        outs = list(given)
        for p in spec.outs[len(given):]:
            if p.raw:
                msg = f"raw output {p.name!r} of {self.name!r} must be given"
                raise ValueError(msg)
            data, buf = _core.new_array(shape, p.dtype(types), stream)
            outs.append(ndarray._wrap(data, buf))
        for p, o in zip(spec.outs, outs, strict=True):
            if not p.raw and o.shape != shape:
                msg = f"Out shape is mismatched: {o.shape} vs loop {shape} ({self.name!r})"
                raise ValueError(msg)
        # NumPy views only: a captured graph holds memory, not arrays.
        in_values = [a._a if isinstance(a, ndarray) else a for a in ins]
        out_values = [o._a for o in outs]

        def run() -> None:
            spec.run(in_values, out_values, types, shape)

        # While capturing nothing runs: the kernel is recorded and runs at each launch.
        if not _core.record(run, [o._buf for o in outs], stream):
            run()
        for o in outs:
            o._buf.writer = (stream, stream.last)
        if self.no_return:
            return None
        if len(outs) == 1 and not self.return_tuple:
            return outs[0]
        return tuple(outs)


# CuPy never checks gathers: out-of-range indices wrap around (its documented difference from
# NumPy for take and integer-array indexing).
def _take(a: _Any, indices: _Any, axis: _Any = None, out: _Any = None, mode: str = "wrap") -> _Any:
    return _np.take(a, indices, axis=axis, mode=mode)


def _take_along_axis(arr: _Any, indices: _Any, axis: _Any) -> _Any:
    size = arr.size if axis is None else arr.shape[axis]
    return _np.take_along_axis(arr, _np.mod(indices, size), axis=axis)


take = _wrapper("take", _take)
take_along_axis = _wrapper("take_along_axis", _take_along_axis)
