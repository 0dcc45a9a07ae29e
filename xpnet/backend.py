"""Backends: the one module that knows backend names.

Everything else in xpnet takes its array namespace from its inputs with :func:`namespace` and
creates new arrays on the input's device. This module resolves namespaces (from arrays or from a
name), knows devices, copies arrays to the host (:func:`to_numpy`) and answers "is a CUDA device
usable" without ever raising on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from types import ModuleType
from typing import Any, cast

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "Array",
    "BackendError",
    "Namespace",
    "asarray",
    "backend_name",
    "backend_report",
    "clear_caches",
    "cuda_available",
    "cuda_device_count",
    "cuda_status",
    "default_device",
    "device",
    "device_text",
    "dtype_name",
    "get_namespace",
    "is_available",
    "is_numpy",
    "namespace",
    "on_device",
    "parse_device",
    "random_family",
    "register_cache",
    "resolve_dtype",
    "same_backend",
    "supports_float64",
    "to_numpy",
]

Array = Any
Namespace = ModuleType

#: Backend names that :func:`get_namespace` understands, in the order tests run them.
BACKENDS: tuple[str, ...] = ("numpy", "array_api_strict", "torch", "cupy")

# What each backend is installed as, for "not installed" messages.
_PIP_NAMES = {
    "numpy": "numpy",
    "array_api_strict": "array-api-strict",
    "torch": 'torch (or pip install "xpnet[torch]")',
    "cupy": 'cupy-cuda12x or cupy-cuda13x (pip install "xpnet[cuda12]" or "xpnet[cuda13]")',
}
_ALIASES = {"np": "numpy", "strict": "array_api_strict", "array-api-strict": "array_api_strict",
            "pytorch": "torch", "cp": "cupy"}


_CACHES: list[dict[Any, Any]] = []


def register_cache(cache: dict[Any, Any]) -> dict[Any, Any]:
    """Register a module-level cache (a dict) for :func:`clear_caches`; returns it."""
    _CACHES.append(cache)
    return cache


def clear_caches() -> None:
    """Forget everything xpnet remembers per backend, array type or namespace (namespaces,
    CUDA status, operations, label kinds, ...): for tests that swap a backend's module (the
    fake CuPy) and for long-lived processes that do."""
    for cache in _CACHES:
        cache.clear()


class BackendError(RuntimeError):
    """A backend was asked for that is unknown, not installed, or has no usable device."""


def _describe(obj: object) -> str:
    kind = type(obj)
    text = f"{kind.__module__}.{kind.__qualname__}"
    shape = getattr(obj, "shape", None)
    return f"{text} with shape {tuple(shape)}" if shape is not None else text


def namespace(*arrays: Any) -> Namespace:
    """The Array API namespace of ``arrays`` (Python scalars and ``None`` are ignored).

    Raises
    ------
    TypeError
        When the inputs mix backends, hold a list/tuple instead of an array, or are all scalars;
        the message names what was passed and what to do instead.
    """
    if arrays:
        # Fast path, taken by every layer call: all inputs of one array type whose namespace is
        # known. The namespace of an array type never changes, so it is resolved once per type.
        kind = type(arrays[0])
        cached = _NAMESPACE_OF_TYPE.get(kind)
        if cached is not None and all(type(a) is kind for a in arrays):
            return cached
    try:
        xp = array_namespace(*arrays)
    except TypeError as exc:
        given = ", ".join(_describe(a) for a in arrays) or "nothing"
        if any(isinstance(a, (list, tuple)) for a in arrays):
            msg = (f"expected arrays, got a Python list or tuple ({given}); "
                   "convert it first, e.g. xp.asarray(values, dtype=xp.float32)")
        elif all(a is None or isinstance(a, (bool, int, float, complex)) for a in arrays):
            msg = (f"need at least one array to pick a backend, got only scalars ({given}); "
                   "pass an array, e.g. numpy.asarray(value), or choose one with xp=...")
        elif "Multiple namespaces" in str(exc):
            msg = (f"inputs come from different array libraries ({given}); move them to one "
                   "backend first, e.g. xp.asarray(x, device=...) or xpnet.backend.to_numpy(x). "
                   "NumPy scalars such as np.float64(0.1) count as NumPy arrays: use Python floats")
        else:
            msg = f"not an array this library can use: {given} ({exc})"
        raise TypeError(msg) from None
    kind = type(arrays[0])
    if _cacheable(kind) and all(type(a) is kind for a in arrays):
        _NAMESPACE_OF_TYPE[kind] = xp
    return xp


# {array type: namespace} for the fast path of :func:`namespace`.
_NAMESPACE_OF_TYPE: dict[type, Namespace] = register_cache({})


def _cacheable(kind: type) -> bool:
    """Whether arrays of type ``kind`` get their namespace from the type alone (NumPy, torch,
    CuPy and array-api-strict arrays; NumPy scalars are left out). Looks only at modules already
    imported: never imports CuPy."""
    if kind is np.ndarray:
        return True
    for module, attr in (("torch", "Tensor"), ("cupy", "ndarray"), ("array_api_strict", "Array")):
        found = sys.modules.get(module)
        if found is not None and getattr(found, attr, None) is kind:
            return True
    return False


# array_api_compat's resolver, under a private name so tests and callers use :func:`namespace`.
array_namespace = array_api_compat.array_namespace


def is_numpy(xp: Namespace) -> bool:
    """Whether ``xp`` is NumPy's namespace (host arrays, no device)."""
    return bool(array_api_compat.is_numpy_namespace(xp))


def same_backend(x: Any, xp: Namespace) -> bool:
    """Whether ``x`` is an array of ``xp``'s backend (any device)."""
    try:
        return backend_name(namespace(x)) == backend_name(xp)
    except TypeError:
        return False


def random_family(name: str) -> str:
    """The random-state family of backend ``name``: generators of one family share a state
    format (PyTorch's and CuPy's are their own; every other backend draws with NumPy)."""
    return name if name in ("torch", "cupy") else "numpy-host"


def backend_name(xp: Namespace) -> str:
    """The short backend name (one of :data:`BACKENDS`) of a namespace."""
    for name, check in (
        ("numpy", array_api_compat.is_numpy_namespace),
        ("cupy", array_api_compat.is_cupy_namespace),
        ("torch", array_api_compat.is_torch_namespace),
        ("array_api_strict", array_api_compat.is_array_api_strict_namespace),
    ):
        if check(xp):
            return name
    return getattr(xp, "__name__", repr(xp))


def _canonical(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BACKENDS:
        msg = f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}"
        raise BackendError(msg)
    return key


def get_namespace(name: str | Namespace | None = None) -> Namespace:
    """The Array API namespace for a backend name (``"numpy"``, ``"cupy"``, ``"torch"``,
    ``"array_api_strict"``), a namespace or array module (returned in its compat form), or
    ``None`` (NumPy).

    Raises :class:`BackendError` for an unknown name, a backend that is not installed, or CuPy
    without a usable CUDA device.
    """
    if name is None:
        name = "numpy"
    if isinstance(name, ModuleType):
        module_name = name.__name__
        if module_name.startswith("array_api_compat."):
            return name
        return get_namespace(module_name.split(".")[0])
    key = _canonical(name)
    if key == "cupy" and not cuda_available():
        msg = ("backend 'cupy' needs a usable CUDA device and CuPy "
               f"({_PIP_NAMES['cupy']}); none was found: {cuda_status()[1]}")
        raise BackendError(msg)
    module = key if key == "array_api_strict" else f"array_api_compat.{key}"
    try:
        xp = importlib.import_module(module)
    except ImportError as exc:
        msg = f"backend {key!r} is not installed ({exc}); install {_PIP_NAMES[key]}"
        raise BackendError(msg) from None
    return xp


def is_available(name: str) -> bool:
    """Whether backend ``name`` is installed and (for CuPy) has a usable CUDA device."""
    try:
        get_namespace(name)
    except BackendError:
        return False
    return True


def backend_report() -> list[tuple[str, str]]:
    """``(backend, "available 2.4.6" / "not installed" / "unavailable: why")`` for each of
    :data:`BACKENDS` (CuPy: whether a CUDA device is usable, and if not, why)."""
    found = []
    for name in BACKENDS:
        if name == "cupy":
            ok, why = cuda_status()
            found.append((name, "available" if ok else "unavailable: " + why))
            continue
        if not is_available(name):
            found.append((name, "not installed"))
            continue
        module = importlib.import_module(name)
        found.append((name, f"available {getattr(module, '__version__', '')}".rstrip()))
    return found


_CUDA_STATE: dict[str, Any] = register_cache({})


def _probe_cuda() -> tuple[bool, str]:
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA runtime raising at import
        return False, f"cupy cannot be imported ({type(exc).__name__}: {exc})"
    try:
        if not cupy.is_available():
            return False, "cupy is installed but reports no CUDA device (cupy.is_available())"
        # A real allocation and kernel: drivers that enumerate a device may still fail here.
        probe = cupy.arange(4, dtype=cupy.float32) * 2
        if float(probe.sum()) != 12.0:
            return False, "a test kernel on the CUDA device returned a wrong result"
    except Exception as exc:
        why = f"the CUDA device is not usable ({type(exc).__name__}: {exc})"
        text = str(exc).lower()
        if "nvrtc" in text or "cuda headers" in text:
            # The bare cupy-cudaNNx wheel compiles no kernel: it has no NVRTC or headers.
            why += ('; CuPy needs NVRTC and the CUDA headers to compile kernels: pip install '
                    '"cupy-cuda12x[ctk]" (or cuda13x), or "xpnet[cuda12]"')
        return False, why
    return True, "ok"


def cuda_available() -> bool:
    """Whether CuPy is installed and can run a kernel on a CUDA device.

    Never raises; the answer is computed once per process.
    """
    if "ok" not in _CUDA_STATE:
        _CUDA_STATE["ok"], _CUDA_STATE["why"] = _probe_cuda()
    return bool(_CUDA_STATE["ok"])


def cuda_status() -> tuple[bool, str]:
    """``(usable, why)``: whether a CUDA device is usable through CuPy, and if not, why."""
    return cuda_available(), str(_CUDA_STATE["why"])


def cuda_device_count(xp: Namespace) -> int:
    """How many CUDA devices CuPy sees, when ``xp`` is CuPy's namespace; 0 for every other."""
    if not array_api_compat.is_cupy_namespace(xp):
        return 0
    import cupy

    return int(cupy.cuda.runtime.getDeviceCount())


def device(x: Array) -> Any:
    """The device ``x`` lives on (``array_api_compat.device``)."""
    return array_api_compat.device(x)


_NO_SCOPE = contextlib.nullcontext()


def on_device(where: Any) -> contextlib.AbstractContextManager[Any]:
    """A context in which ``where`` (a device, or an array: its device) is the current device.

    CuPy allocates and launches on the *current* device, whatever device the arrays live on
    (array-api-compat's ``zeros(..., device=)`` ignores ``device`` there), so work for a
    network on ``cuda:1`` must run with device 1 current: xpnet enters this around its
    networks' passes, the optimizers' updates, the training loop and the random generators.
    On every other backend (arrays carry their device) it does nothing, at no cost."""
    kind = type(where)
    if kind.__module__.startswith("cupy"):
        if hasattr(where, "synchronize") and hasattr(where, "id"):
            # a cupy.cuda.Device: a context manager that restores the previous
            return cast("contextlib.AbstractContextManager[Any]", where)
        found = getattr(where, "device", None)
        if found is not None and type(found).__module__.startswith("cupy"):
            return cast("contextlib.AbstractContextManager[Any]", found)
    return _NO_SCOPE


def device_text(dev: Any) -> str:
    """A device as the text :func:`parse_device` takes back: ``'cpu'``, ``'cuda:0'``,
    ``'device1'`` (array-api-strict) ..."""
    if dev is None or dev == "cpu":
        return "cpu"
    cuda_id = getattr(dev, "id", None)  # cupy.cuda.Device
    if isinstance(cuda_id, int) and type(dev).__module__.startswith("cupy"):
        return f"cuda:{cuda_id}"
    text = repr(dev)
    if text.startswith("array_api_strict.Device("):  # array_api_strict.Device('device1')
        return text.split("'")[1]
    return str(dev)  # torch.device('cuda:0') -> 'cuda:0'


def default_device(xp: Namespace) -> Any:
    """The device new arrays of ``xp`` land on when none is named."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        return info().default_device()
    return None


def parse_device(xp: Namespace, spec: Any) -> Any:
    """Turn a user's device spec (``None``, ``"cpu"``, ``"cuda:1"``, ``1``, ``"device1"`` or a
    device object) into a device object of ``xp``."""
    if spec is None or not isinstance(spec, (str, int)):
        return spec
    name = backend_name(xp)
    text = str(spec)
    if name == "numpy":
        if text != "cpu":
            msg = f"numpy arrays live on the CPU only; got device={spec!r} (use 'cpu' or omit it)"
            raise ValueError(msg)
        return "cpu"
    if name == "torch":
        import torch

        try:
            dev = torch.device(f"cuda:{spec}" if isinstance(spec, int) else text)
        except RuntimeError as exc:  # torch's own message: "Expected one of cpu, cuda, ..."
            msg = f"torch has no device {spec!r}: {str(exc).splitlines()[0]}"
            raise ValueError(msg) from None
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                msg = (f"this torch ({torch.__version__}) cannot use CUDA (a CPU-only build, or "
                       f"no GPU or driver here); got device={spec!r}: use --device cpu, or "
                       "install a CUDA build of torch on a machine with a GPU")
                raise ValueError(msg)
            count = torch.cuda.device_count()
            if dev.index is not None and dev.index >= count:
                msg = (f"torch sees {count} CUDA device(s) (cuda:0 to cuda:{count - 1}); got "
                       f"device={spec!r}")
                raise ValueError(msg)
        return dev
    if name == "cupy":
        index = _cuda_index(spec)  # before the import: a bad spec is the user's error either way
        import cupy

        return cupy.cuda.Device(index)
    if name == "array_api_strict":
        text = "CPU_DEVICE" if text == "cpu" else text
        # Device reprs read "array_api_strict.Device('device1')".
        devices = {repr(d).split("'")[1]: d for d in xp.__array_namespace_info__().devices()}
        if text in devices:
            return devices[text]
        msg = f"array_api_strict has no device {spec!r}; choose one of {sorted(devices)}"
        raise ValueError(msg)
    return spec


def _cuda_index(spec: str | int) -> int:
    """The CUDA device index that ``spec`` names: ``"cuda"``/``"gpu"`` (0), ``"cuda:N"``,
    ``"gpu:N"``, ``"N"`` or ``N``; a ``ValueError`` naming the accepted forms otherwise."""
    if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:
        return spec
    text = str(spec).strip().lower()
    head, colon, tail = text.partition(":")
    if not colon and text in ("cuda", "gpu"):
        return 0
    if not colon and text.isdecimal():
        return int(text)
    if colon and head in ("cuda", "gpu") and tail.isdecimal():
        return int(tail)
    msg = (f"cupy arrays live on CUDA devices; got device={spec!r}: use 'cuda', 'cuda:N' or a "
           "device index N (for the CPU choose another backend, e.g. xp='numpy')")
    raise ValueError(msg)


def supports_float64(xp: Namespace, device: Any = None) -> bool:
    """Whether ``device`` of ``xp`` can hold float64 arrays."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is None:
        return True
    try:
        return "float64" in info().dtypes(device=device, kind="real floating")
    except Exception:
        return True


def resolve_dtype(xp: Namespace, dtype: Any = None, device: Any = None) -> Any:
    """The floating dtype object of ``xp`` for ``dtype`` (``"float32"``, ``"float64"``, a dtype
    or ``None``). ``None`` means the book's float64, or float32 where the device has no float64.
    """
    if dtype is None:
        dtype = "float64" if supports_float64(xp, device) else "float32"
    if not isinstance(dtype, str):
        # A dtype of any library (np.float32, torch.float64, a strict dtype: what net.to()
        # passes on when it changes backend) matches by name. Comparing dtypes across
        # libraries is unsupported: strict warns, torch and NumPy never match.
        dtype = dtype_name(dtype)
    if dtype not in ("float32", "float64"):
        msg = f"dtype must be 'float32' or 'float64', got {dtype!r}"
        raise TypeError(msg)
    return getattr(xp, dtype)


def dtype_name(dtype: Any) -> str:
    """``"float32"``-style name of a dtype of any backend."""
    name = getattr(dtype, "__name__", None) or getattr(dtype, "name", None)
    return str(name) if name else str(dtype).rsplit(".", 1)[-1]


def asarray(x: Any, xp: Namespace, *, device: Any = None, dtype: Any = None) -> Array:
    """Move host data (NumPy arrays, lists) or another array of ``xp`` to ``device``."""
    if array_api_compat.is_array_api_obj(x) and not array_api_compat.is_numpy_array(x):
        other = namespace(x)
        if other is not xp and backend_name(other) != backend_name(xp):
            x = to_numpy(x)
    if array_api_compat.is_numpy_array(x):
        # strict refuses NumPy scalars, strict and torch refuse non-native byte order (big-endian
        # '>f8' data): a native-order array always works. (np.ascontiguousarray would keep the
        # byte order and turn 0-d arrays into shape (1,).) No copy when nothing changes.
        x = np.asarray(x, dtype=x.dtype.newbyteorder("="))
    if device is not None:
        return xp.asarray(x, device=device, dtype=dtype)
    return xp.asarray(x, dtype=dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy (or view) of ``x``, from any backend and device."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (int, float, bool, np.generic)):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return np.asarray(x.get())
    if array_api_compat.is_torch_array(x):
        return np.asarray(x.detach().cpu().numpy())
    if array_api_compat.is_array_api_obj(x) and array_api_compat.is_array_api_strict_namespace(
        array_api_compat.array_namespace(x)
    ):
        import array_api_strict

        x = array_api_strict.asarray(x, device=array_api_strict.Device("CPU_DEVICE"))
        return np.asarray(x)
    try:
        return np.asarray(x)
    except Exception:
        return np.from_dlpack(x)
