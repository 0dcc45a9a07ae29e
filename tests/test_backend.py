"""xpnet.backend: namespaces, names, devices, dtypes, host copies and the CUDA probe."""

from __future__ import annotations

import importlib.abc
import re
import sys
import types

import array_api_compat
import numpy as np
import pytest

from xpnet import backend
from xpnet.backend import BackendError


def _foreign(xp):
    """An array of another library than ``xp``'s (NumPy, or torch/strict for NumPy)."""
    if xp.name != "numpy":
        return np.ones(3)
    strict = pytest.importorskip("array_api_strict")
    return strict.ones(3)


# --------------------------------------------------------------------------- namespace


def test_namespace_of_each_backend(xp):
    x = xp.asarray([1.0, 2.0])
    found = backend.namespace(x, 2.0, None)  # scalars and None are ignored
    assert backend.backend_name(found) == backend.backend_name(xp.namespace)
    assert backend.backend_name(found) == xp.name.split("-")[0]


def test_namespace_mixed_backends_is_a_clear_type_error(xp):
    with pytest.raises(TypeError, match="different array libraries"):
        backend.namespace(xp.asarray([1.0]), _foreign(xp))


def test_namespace_numpy_and_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"different array libraries \(numpy.ndarray.*torch"):
        backend.namespace(np.ones(2), torch.ones(2))


def test_namespace_numpy_scalar_with_torch_explains_python_floats():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"NumPy scalars such as np\.float64"):
        backend.namespace(torch.ones(2), np.float64(0.1))


@pytest.mark.parametrize("value", [[1.0, 2.0], (1.0, 2.0)], ids=["list", "tuple"])
def test_namespace_rejects_lists(value):
    with pytest.raises(TypeError, match=r"got a Python list or tuple .*xp\.asarray"):
        backend.namespace(value)


@pytest.mark.parametrize("args", [(1.0,), (1, 2.5, None), ()], ids=["one", "several", "none"])
def test_namespace_rejects_scalars_only(args):
    with pytest.raises(TypeError, match="need at least one array to pick a backend"):
        backend.namespace(*args)


def test_namespace_rejects_other_objects():
    with pytest.raises(TypeError, match=r"not an array this library can use: builtins\.object"):
        backend.namespace(object())


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("numpy", "numpy"),
        ("np", "numpy"),
        ("  NumPy ", "numpy"),
        (None, "numpy"),
        ("array_api_strict", "array_api_strict"),
        ("strict", "array_api_strict"),
        ("array-api-strict", "array_api_strict"),
        ("torch", "torch"),
        ("pytorch", "torch"),
    ],
)
def test_get_namespace_by_name_and_alias(name, expected):
    if expected != "numpy":
        pytest.importorskip(expected)
    xp = backend.get_namespace(name)
    assert backend.backend_name(xp) == expected
    made = xp.asarray([1.0])  # the namespace makes arrays of its own library
    assert backend.backend_name(backend.namespace(made)) == expected
    assert tuple(made.shape) == (1,)


def test_get_namespace_numpy_is_the_compat_namespace():
    import array_api_compat.numpy as compat_numpy

    assert backend.get_namespace("numpy") is compat_numpy
    assert backend.get_namespace(np) is compat_numpy  # the bare module gets its compat form
    assert backend.get_namespace(compat_numpy) is compat_numpy


def test_get_namespace_of_a_namespace_round_trips(xp):
    assert backend.get_namespace(xp.namespace) is xp.namespace


@pytest.mark.parametrize("name", ["jax", "", "numpyy", "cuda"])
def test_get_namespace_unknown_name(name):
    with pytest.raises(BackendError, match=rf"unknown backend {name!r}; choose one of numpy, "):
        backend.get_namespace(name)


def test_backend_error_is_a_runtime_error():
    assert issubclass(BackendError, RuntimeError)


def test_cupy_without_cuda_is_a_backend_error(monkeypatch):
    monkeypatch.setattr(backend, "_CUDA_STATE", {"ok": False, "why": "no driver here"})
    with pytest.raises(BackendError, match=r"needs a usable CUDA device.*no driver here"):
        backend.get_namespace("cupy")
    assert backend.is_available("cupy") is False
    assert backend.is_available("numpy") is True
    assert backend.is_available("jax") is False


def test_backends_lists_every_backend():
    assert set(backend.BACKENDS) == {"numpy", "array_api_strict", "torch", "cupy"}


# --------------------------------------------------------------------------- CUDA probe


def test_cuda_available_is_a_bool():
    assert type(backend.cuda_available()) is bool
    usable, why = backend.cuda_status()
    assert usable is backend.cuda_available()
    assert isinstance(why, str)
    assert why


class _RaisingFinder(importlib.abc.MetaPathFinder):
    """Makes ``import cupy`` raise what a broken CUDA runtime raises at import."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "cupy":
            msg = "CUDA driver version is insufficient for CUDA runtime version"
            raise RuntimeError(msg)
        return None


def _fake_cupy(*, available=True, kernel_error=None, total=12.0):
    cupy = types.ModuleType("cupy")
    cupy.float32 = "float32"

    def is_available():
        if isinstance(available, Exception):
            raise available
        return available

    class _Probe:
        def __mul__(self, other):
            return self

        def sum(self):
            return total

    def arange(*args, **kwargs):
        if kernel_error is not None:
            raise kernel_error
        return _Probe()

    cupy.is_available = is_available
    cupy.arange = arange
    return cupy


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        ("missing", "cupy cannot be imported (ModuleNotFoundError"),
        ("import-raises", "cupy cannot be imported (RuntimeError: CUDA driver version"),
        ("no-device", "reports no CUDA device"),
        ("is-available-raises", "not usable (RuntimeError: cudaErrorNoDevice"),
        ("kernel-fails", "not usable (RuntimeError: cudaErrorInsufficientDriver"),
        ("wrong-result", "returned a wrong result"),
        # The bare cupy-cuda12x wheel: every kernel compile fails; say what to install.
        ("no-nvrtc", 'pip install "cupy-cuda12x[ctk]"'),
    ],
    ids=["missing", "import-raises", "no-device", "is-available-raises", "kernel-fails",
         "wrong-result", "no-nvrtc"],
)
def test_cuda_available_never_raises(monkeypatch, setup, why):
    monkeypatch.setattr(backend, "_CUDA_STATE", {})
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    if setup == "missing":
        monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError
    elif setup == "import-raises":
        monkeypatch.setattr(sys, "meta_path", [_RaisingFinder(), *sys.meta_path])
    elif setup == "no-device":
        monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(available=False))
    elif setup == "is-available-raises":
        fake = _fake_cupy(available=RuntimeError("cudaErrorNoDevice"))
        monkeypatch.setitem(sys.modules, "cupy", fake)
    elif setup == "kernel-fails":
        fake = _fake_cupy(kernel_error=RuntimeError("cudaErrorInsufficientDriver"))
        monkeypatch.setitem(sys.modules, "cupy", fake)
    elif setup == "no-nvrtc":
        error = RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: "
                             "cannot open shared object file")
        monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(kernel_error=error))
    else:
        monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(total=11.0))
    assert backend.cuda_available() is False
    assert why in backend.cuda_status()[1]
    with pytest.raises(BackendError, match="needs a usable CUDA device"):
        backend.get_namespace("cupy")


def test_cuda_available_true_with_a_working_device(monkeypatch):
    monkeypatch.setattr(backend, "_CUDA_STATE", {})
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    assert backend.cuda_available() is True
    assert backend.cuda_status()[1] == "ok"


def test_cuda_answer_is_cached(monkeypatch):
    monkeypatch.setattr(backend, "_CUDA_STATE", {})
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(available=False))
    assert backend.cuda_available() is False
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    assert backend.cuda_available() is False  # computed once per process


# --------------------------------------------------------------------------- to_numpy


def test_to_numpy_from_every_backend(xp, rng):
    host = rng.standard_normal((3, 4))
    for dtype in ("float64", "float32", "int64", "uint8", "bool"):
        want = (host * 10).astype(dtype) if dtype != "bool" else host > 0
        got = backend.to_numpy(xp.asarray(want))
        assert isinstance(got, np.ndarray)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_to_numpy_of_a_0d_array(xp):
    got = backend.to_numpy(xp.asarray(2.5))
    assert isinstance(got, np.ndarray)
    assert got.shape == ()
    assert float(got) == 2.5


def test_to_numpy_of_a_torch_tensor_that_requires_grad():
    torch = pytest.importorskip("torch")
    x = torch.ones(2, requires_grad=True)
    np.testing.assert_array_equal(backend.to_numpy(x * 3), [3.0, 3.0])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.5, np.array(1.5)), (3, np.array(3)), (np.float32(2.0), np.array(2.0, dtype=np.float32)),
     ([1, 2], np.array([1, 2])), ([[1.0], [2.0]], np.array([[1.0], [2.0]]))],
    ids=["float", "int", "numpy-scalar", "list", "nested-list"],
)
def test_to_numpy_of_host_values(value, expected):
    got = backend.to_numpy(value)
    assert isinstance(got, np.ndarray)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


# --------------------------------------------------------------------------- asarray


def test_asarray_moves_host_data_to_the_device(xp, rng):
    host = rng.standard_normal((2, 3))
    x = backend.asarray(host, xp.namespace, device=xp.device, dtype=xp.float32)
    xp.assert_on(x, "float32", (2, 3))
    xp.assert_close(x, host.astype(np.float32))


def test_asarray_from_another_backend(xp, rng):
    host = rng.standard_normal(4)
    other = _foreign(xp)
    other_host = backend.to_numpy(other)
    x = backend.asarray(other, xp.namespace, device=xp.device)
    xp.assert_on(x, "float64", other_host.shape)
    xp.assert_close(x, other_host)
    # and back to NumPy from this backend's device
    y = backend.asarray(xp.asarray(host), backend.get_namespace("numpy"))
    assert isinstance(y, np.ndarray)
    np.testing.assert_array_equal(y, host)


@pytest.mark.parametrize(
    ("host", "shape"),
    [(np.arange(3, dtype=">f8"), (3,)), (np.arange(3, dtype=">i4"), (3,)),
     (np.float64(2.5), ()), (np.asarray(2.5), ()), (np.ones((2, 4))[:, ::2], (2, 2))],
    ids=["big-endian-float", "big-endian-int", "numpy-scalar", "0d", "strided"],
)
def test_asarray_of_awkward_host_data(xp, host, shape):
    x = backend.asarray(host, xp.namespace, device=xp.device)
    xp.assert_on(x, np.asarray(host).dtype.newbyteorder("=").name, shape)
    np.testing.assert_array_equal(xp.to_numpy(x), host)


# --------------------------------------------------------------------------- devices


def test_device_and_default_device(xp):
    x = xp.asarray([1.0])
    assert backend.device(x) == xp.device
    default = backend.default_device(xp.namespace)
    assert default == array_api_compat.device(xp.zeros(1))


def test_parse_device_passes_none_and_device_objects(xp):
    assert backend.parse_device(xp.namespace, None) is None
    assert backend.parse_device(xp.namespace, xp.device) == xp.device


def test_parse_device_numpy():
    xp = backend.get_namespace("numpy")
    assert backend.parse_device(xp, "cpu") == "cpu"
    with pytest.raises(ValueError, match=r"numpy arrays live on the CPU only; got device='cuda:0'"):
        backend.parse_device(xp, "cuda:0")
    with pytest.raises(ValueError, match="CPU only; got device=1"):
        backend.parse_device(xp, 1)


def test_parse_device_strict():
    strict = pytest.importorskip("array_api_strict")
    assert backend.parse_device(strict, "cpu") == strict.Device("CPU_DEVICE")
    assert backend.parse_device(strict, "CPU_DEVICE") == strict.Device("CPU_DEVICE")
    assert backend.parse_device(strict, "device1") == strict.Device("device1")
    with pytest.raises(ValueError, match=r"no device 'cuda'; choose one of \[.*'device1'"):
        backend.parse_device(strict, "cuda")


def test_parse_device_torch():
    torch = pytest.importorskip("torch")
    xp = backend.get_namespace("torch")
    assert backend.parse_device(xp, "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="torch has no device 'tpu'"):
        backend.parse_device(xp, "tpu")
    if torch.cuda.is_available():
        assert backend.parse_device(xp, "cuda:0") == torch.device("cuda:0")
        count = torch.cuda.device_count()
        with pytest.raises(ValueError, match=f"torch sees {count} CUDA device"):
            backend.parse_device(xp, count)
    else:  # a CPU-only torch says so, instead of failing at the first array (issue 17)
        for spec in ("cuda:0", 1, "cuda"):
            with pytest.raises(ValueError, match=r"this torch \(.*\) cannot use CUDA"):
                backend.parse_device(xp, spec)


def _fake_cupy_namespace(monkeypatch):
    """A namespace that array_api_compat takes for CuPy's (it goes by the module name) and a
    stand-in ``cupy`` module whose ``cuda.Device(i)`` records ``i``: parse_device's CuPy
    branch, run on a machine without CuPy."""
    xp = types.ModuleType("array_api_compat.cupy")
    assert backend.backend_name(xp) == "cupy"
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(Device=lambda index: ("Device", index))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return xp


@pytest.mark.parametrize(
    ("spec", "index"),
    [("cuda", 0), ("gpu", 0), (" CUDA ", 0), ("cuda:0", 0), ("cuda:3", 3), ("gpu:2", 2),
     ("1", 1), (0, 0), (2, 2)],
)
def test_parse_device_cupy(monkeypatch, spec, index):
    xp = _fake_cupy_namespace(monkeypatch)
    assert backend.parse_device(xp, spec) == ("Device", index)


@pytest.mark.parametrize("spec", ["cpu", "cuda:", "cuda:x", "cpu:0", "tpu:1", "-1", -1, "1.5",
                                  True, ""])
def test_parse_device_cupy_rejects_other_specs(monkeypatch, spec):
    xp = _fake_cupy_namespace(monkeypatch)
    with pytest.raises(ValueError, match=(
            rf"cupy arrays live on CUDA devices; got device={re.escape(repr(spec))}: "
            r"use 'cuda', 'cuda:N' or a device index N \(for the CPU choose another backend")):
        backend.parse_device(xp, spec)


def test_supports_float64():
    assert backend.supports_float64(backend.get_namespace("numpy")) is True
    strict = pytest.importorskip("array_api_strict")
    assert backend.supports_float64(strict, strict.Device("device1")) is True
    assert backend.supports_float64(strict, strict.Device("no_float64")) is False


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("spec", ["float32", np.float32, np.dtype("float32")],
                         ids=["str", "numpy-type", "numpy-dtype"])
def test_resolve_dtype_from_names_and_numpy_dtypes(xp, spec):
    assert backend.resolve_dtype(xp.namespace, spec) == xp.float32
    assert backend.resolve_dtype(xp.namespace, xp.float64) == xp.float64


def test_resolve_dtype_default_is_float64_unless_the_device_lacks_it(xp):
    assert backend.resolve_dtype(xp.namespace, None, xp.device) == xp.float64
    strict = pytest.importorskip("array_api_strict")
    assert backend.resolve_dtype(strict, None, strict.Device("no_float64")) == strict.float32


@pytest.mark.parametrize("spec", ["int32", "float16", np.int64, "double"])
def test_resolve_dtype_rejects_other_dtypes(xp, spec):
    with pytest.raises(TypeError, match=r"dtype must be '?float32'? or '?float64'?, got"):
        backend.resolve_dtype(xp.namespace, spec)


def test_resolve_dtype_from_another_library(xp):
    numpy_xp = backend.get_namespace("numpy")
    assert backend.resolve_dtype(numpy_xp, xp.float32) == np.float32
    assert backend.resolve_dtype(numpy_xp, xp.float64) == np.float64
    strict = pytest.importorskip("array_api_strict")
    assert backend.resolve_dtype(strict, xp.float32) == strict.float32
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64', got 'int64'"):
        backend.resolve_dtype(numpy_xp, xp.int64)
