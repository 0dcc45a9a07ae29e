"""One backend fixture, ``xp``, parametrized over every backend.

A test that takes ``xp`` runs once per backend:

===========================  ==============================================================
id                           arrays
===========================  ==============================================================
numpy                        NumPy through ``array_api_compat.numpy``
array_api_strict             array-api-strict (newest standard version) on CPU_DEVICE
array_api_strict-device1     array-api-strict on ``Device("device1")``: the CPU stand-in for
                             a GPU, where any array created on the default device raises
torch                        PyTorch on the CPU (skipped when not installed; on
                             ``$XPNET_TEST_TORCH_DEVICE``, e.g. ``cuda:0``, when set)
cupy                         CuPy on CUDA (skipped unless ``xpnet.backend.cuda_available()``)
===========================  ==============================================================

``xp`` reads like the backend's array namespace (``xp.sum``, ``xp.float32`` are the
namespace's); ``xp.namespace`` is the namespace itself and ``xp.device`` the device. Tests make
their data on the host with NumPy and put it there with ``xp.asarray(host, "float32")``, and read
results back with ``xp.to_numpy(arr)``. Neither uses xpnet, so tests of xpnet's own conversions
have a reference.

``--backend NAME`` (repeatable or comma-separated) runs the ``xp`` tests on those backends only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import array_api_compat
import numpy as np
import pytest

from xpnet import backend

BACKEND_IDS = ("numpy", "array_api_strict", "array_api_strict-device1", "torch", "cupy")

_SELECTED = pytest.StashKey[tuple[str, ...]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help=("run the backend-parametrized tests on NAME only; repeatable or comma-separated, "
              f"from {', '.join(BACKEND_IDS)} (default: all)"),
    )


def pytest_configure(config: pytest.Config) -> None:
    given = config.getoption("backend")
    names = [n.strip() for value in given for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in BACKEND_IDS]
    if unknown or (given and not names):
        msg = (f"--backend: unknown backend {', '.join(map(repr, unknown)) or repr('')}; "
               f"choose from {', '.join(BACKEND_IDS)}")
        raise pytest.UsageError(msg)
    config.stash[_SELECTED] = tuple(n for n in BACKEND_IDS if n in names) if names else BACKEND_IDS
    if "cupy" in names:
        # Asked for by name (the fake-CuPy run, the GPU check): skipping every CuPy test would
        # pass with nothing run, so an unusable CuPy is an error here.
        usable, why = backend.cuda_status()
        if not usable:
            msg = f"--backend cupy: CuPy is not usable here, every cupy test would skip: {why}"
            raise pytest.UsageError(msg)


def why_unusable(name: str) -> str | None:
    """Why backend ``name`` cannot run here (its tests' skip reason), or ``None`` when it can."""
    import importlib.util

    if name.startswith("array_api_strict") and importlib.util.find_spec(
            "array_api_strict") is None:
        return "array-api-strict is not installed (pip install array-api-strict)"
    if name == "torch":
        if importlib.util.find_spec("torch") is None:
            return 'torch is not installed (pip install torch, or "xpnet[torch]")'
        where = os.environ.get("XPNET_TEST_TORCH_DEVICE", "cpu")
        if where.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return f"XPNET_TEST_TORCH_DEVICE={where} but torch sees no CUDA device"
    if name == "cupy":
        usable, why = backend.cuda_status()
        if not usable:
            return f"no usable CUDA device: {why}"
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The backends the ``xp`` tests run on here, and why the others are skipped."""
    selected = config.stash[_SELECTED]
    skipped = {name: why for name in selected if (why := why_unusable(name)) is not None}
    lines = [f"xpnet backends: {', '.join(n for n in selected if n not in skipped) or 'none'}"]
    lines += [f"xpnet backend {name} skipped: {why}" for name, why in skipped.items()]
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xp" in metafunc.fixturenames:
        names = metafunc.config.stash[_SELECTED]
        metafunc.parametrize("xp", names, ids=names, indirect=True, scope="session")


#: The dtype names the Array API standard defines (the names ``asarray``/``assert_on`` accept).
DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64", "complex64", "complex128")


@dataclass(frozen=True, repr=False)
class Backend:
    """A backend under test, to be used like its array namespace: ``xp.sum``, ``xp.float32``,
    ``xp.matmul`` ... are the namespace's own (every name this class does not define is looked
    up there), and ``xp.namespace`` is the namespace itself, for code that needs a module
    (``TwoLayerNet(..., xp=xp.namespace)``).

    What the class adds: ``name`` (the backend id), ``device`` (where tests make their arrays),
    ``other_device`` (a second device of the same backend, or ``None``, for wrong-device
    tests), and helpers that do not go through xpnet: :meth:`asarray` (host data onto the
    device), :meth:`to_numpy`, :meth:`assert_on` and :meth:`assert_close`."""

    name: str
    namespace: Any
    device: Any
    other_device: Any = None

    def __getattr__(self, attr: str) -> Any:
        # Only names the class does not define get here: the namespace's functions and dtypes.
        try:
            namespace = self.__dict__["namespace"]
        except KeyError:  # not set yet (copying, unpickling): no namespace to ask
            raise AttributeError(attr) from None
        return getattr(namespace, attr)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self.namespace)))

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, device={self.device!r})"

    def _dtype_name(self, dtype: Any) -> str | None:
        """The standard name of ``dtype``: a name, a NumPy dtype or a dtype of the namespace."""
        if dtype is None or isinstance(dtype, str):
            return dtype
        if isinstance(dtype, np.dtype) or (isinstance(dtype, type)
                                           and issubclass(dtype, np.generic)):
            return np.dtype(dtype).name
        for name in DTYPE_NAMES:
            # Same-library comparisons only: array-api-strict warns on any other.
            candidate = getattr(self.namespace, name, None)
            if type(candidate) is type(dtype) and candidate == dtype:
                return name
        msg = f"dtype must be a dtype name ('float32') or a {self.name} dtype, got {dtype!r}"
        raise TypeError(msg)

    def asarray(self, data: Any, dtype: Any = None, *, device: Any = None) -> Any:
        """A new array holding ``data`` on this backend's device (or ``device``).

        ``data`` is host data (NumPy arrays, lists, numbers), copied through NumPy without
        xpnet, or an array of this backend (copied by the namespace). ``dtype`` is a name
        (``"float32"``), a NumPy dtype or a dtype of the namespace (``xp.float32``); by default
        ``data``'s own."""
        name = self._dtype_name(dtype)
        where = self.device if device is None else device
        if array_api_compat.is_array_api_obj(data) and not isinstance(data, (np.ndarray,
                                                                             np.generic)):
            given = None if name is None else getattr(self.namespace, name)
            return self.namespace.asarray(data, dtype=given, device=where, copy=True)
        host = np.array(data, dtype=name, copy=True)  # a private copy: torch would share memory
        if host.dtype.byteorder not in "=|":
            host = host.astype(host.dtype.newbyteorder("="))
        return self.namespace.asarray(host, dtype=getattr(self.namespace, host.dtype.name),
                                      device=where)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A host NumPy copy of ``x`` (an array of this backend, on any of its devices)."""
        if isinstance(x, (np.ndarray, np.generic)):
            return np.array(x)
        if array_api_compat.is_torch_array(x):
            return x.detach().cpu().numpy().copy()
        if array_api_compat.is_cupy_array(x):
            return x.get()
        if self.name.startswith("array_api_strict"):
            import array_api_strict

            cpu = array_api_strict.Device("CPU_DEVICE")
            return np.array(array_api_strict.asarray(x, device=cpu))
        return np.array(x)

    def assert_on(self, x: Any, dtype: Any, shape: tuple[int, ...] | None = None) -> None:
        """``x`` is an array of this backend on its device, of dtype ``dtype`` (a name or a
        dtype, as for :meth:`asarray`) and, when given, shape ``shape``."""
        assert array_api_compat.is_array_api_obj(x), f"not an array: {type(x)}"
        name = self._dtype_name(dtype)
        assert x.dtype == getattr(self.namespace, name), f"dtype {x.dtype}, expected {name}"
        assert array_api_compat.device(x) == self.device, (
            f"device {array_api_compat.device(x)}, expected {self.device}")
        if shape is not None:
            assert tuple(x.shape) == tuple(shape)

    def assert_close(self, actual: Any, expected: Any, *, rtol: float = 1e-12,
                     atol: float = 0.0) -> None:
        """``actual`` (an array of this backend) matches host ``expected`` value by value."""
        got = self.to_numpy(actual)
        want = np.asarray(expected)
        assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _strict_backend(name: str) -> Backend:
    try:
        import array_api_strict
    except ImportError as exc:
        pytest.skip(f"array-api-strict is not installed ({exc})")
    # The newest standard version this array-api-strict supports (the draft one excluded).
    from array_api_strict import _flags

    newest = max(getattr(_flags, "supported_versions", (_flags.API_VERSION,)))
    array_api_strict.set_array_api_strict_flags(api_version=newest)
    cpu, device1 = array_api_strict.Device("CPU_DEVICE"), array_api_strict.Device("device1")
    if name == "array_api_strict-device1":
        return Backend(name, array_api_strict, device1, other_device=cpu)
    return Backend(name, array_api_strict, cpu, other_device=device1)


def _make_backend(name: str) -> Backend:
    if name == "numpy":
        import array_api_compat.numpy as xp

        return Backend(name, xp, "cpu")
    why = why_unusable(name)
    if why is not None:
        pytest.skip(why)
    if name.startswith("array_api_strict"):
        return _strict_backend(name)
    if name == "torch":
        try:
            import torch
        except ImportError as exc:
            pytest.skip(f"torch is not installed ({exc})")
        import array_api_compat.torch as xp

        # XPNET_TEST_TORCH_DEVICE=cuda:0 runs the torch tests on a GPU (benchmarks/gpu_check.sh).
        where = torch.device(os.environ.get("XPNET_TEST_TORCH_DEVICE", "cpu"))
        other = torch.device("cuda:0") if torch.cuda.is_available() else None
        other = torch.device("cpu") if where.type == "cuda" else other
        return Backend(name, xp, where, other_device=other)
    if name == "cupy":
        import array_api_compat.cupy as xp
        import cupy

        other = cupy.cuda.Device(1) if cupy.cuda.runtime.getDeviceCount() > 1 else None
        return Backend(name, xp, array_api_compat.device(xp.zeros(1)), other_device=other)
    raise AssertionError(name)


@pytest.fixture(scope="session")
def xp(request: pytest.FixtureRequest) -> Backend:
    """The backend under test (see the module docstring)."""
    return _make_backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A host random generator with a fixed seed: every backend sees the same numbers."""
    return np.random.default_rng(20240605)


#: The environment variable that names a clone of the book's repository
#: (https://github.com/oreilly-japan/deep-learning-from-scratch): tests that compare with the
#: book's own code or read its weight files skip, naming it, when it is not set.
BOOK_ENV = "XPNET_BOOK_DIR"
BOOK_URL = "https://github.com/oreilly-japan/deep-learning-from-scratch"


def book_path(relative: str) -> Path:
    """``relative`` inside the book's repository named by ``$XPNET_BOOK_DIR``.

    Skips the test when the variable is not set (saying what to set); fails when it is set but
    the file is not there (a wrong folder is a broken setup, not a reason to skip)."""
    root = os.environ.get(BOOK_ENV)
    if not root:
        pytest.skip(f"needs the book's code: set {BOOK_ENV} to a clone of {BOOK_URL}")
    path = Path(root) / relative
    if not path.exists():
        pytest.fail(f"{BOOK_ENV}={root} has no {relative}: point it at a clone of {BOOK_URL}")
    return path


@pytest.fixture(scope="session")
def book_common() -> Any:
    """The book's ``common`` package (``common.layers``, ``common.util``), imported from
    ``$XPNET_BOOK_DIR`` for this session (see :func:`book_path`); nothing of it stays in
    ``sys.modules`` or ``sys.path``."""
    import importlib
    import sys
    from types import SimpleNamespace

    root = str(book_path("common/layers.py").parents[1])
    if "common" in sys.modules:
        pytest.fail(f"another module named 'common' is imported ({sys.modules['common']!r}); "
                    "the book's package cannot be loaded beside it")
    sys.path.insert(0, root)
    try:
        found = SimpleNamespace(layers=importlib.import_module("common.layers"),
                                util=importlib.import_module("common.util"))
    finally:
        sys.path.remove(root)
        for name in [m for m in sys.modules if m == "common" or m.startswith("common.")]:
            del sys.modules[name]
    return found


FAKE_CUPY_DIR = Path(__file__).parent / "fakecupy"


def _forget_cupy() -> None:
    import sys

    for name in [m for m in sys.modules if m == "cupy" or m.startswith("cupy.")
                 or m.startswith("array_api_compat.cupy")]:
        del sys.modules[name]
    backend.clear_caches()


def _real_cupy_usable() -> bool:
    """Whether the real CuPy runs kernels on a CUDA device in this process."""
    import sys

    loaded = sys.modules.get("cupy")
    if loaded is not None and getattr(loaded, "FAKE", False):
        return False
    usable, _ = backend.cuda_status()
    return usable and not getattr(sys.modules.get("cupy"), "FAKE", False)


@pytest.fixture
def any_cupy(request: pytest.FixtureRequest) -> Any:
    """CuPy for the CuPy-only tests of xpnet's behaviour: the real one where a CUDA device is
    usable (the GPU check runs them there), else the fake of ``tests/fakecupy``. Tests of the
    fake's own rules take ``fake_cupy``; assertions on the fake's counters (``cupy.FAKE``)
    are made on the fake only."""
    if _real_cupy_usable():
        import cupy

        return cupy
    return request.getfixturevalue("fake_cupy")


@pytest.fixture
def fake_cupy() -> Any:
    """The fake CuPy of ``tests/fakecupy`` as ``cupy`` for one test (see its README): xpnet's
    CuPy paths run on NumPy with CuPy's stream-capture rules. Yields the ``cupy`` module;
    afterwards nothing of it stays imported or cached."""
    import sys

    if "cupy" in sys.modules and not getattr(sys.modules["cupy"], "FAKE", False):
        pytest.skip("the real CuPy is imported in this process")
    _forget_cupy()
    sys.path.insert(0, str(FAKE_CUPY_DIR))
    try:
        import cupy

        assert cupy.FAKE
        yield cupy
    finally:
        sys.path.remove(str(FAKE_CUPY_DIR))
        _forget_cupy()
