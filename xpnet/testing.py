"""Test helpers for code that runs on every array backend: xpnet's own ``xp`` fixture.

A test that takes the ``xp`` fixture runs once per backend, and ``xp`` reads like that
backend's array namespace (``xp.sum``, ``xp.float32``, ``xp.matmul`` are the namespace's):

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

Load it as a pytest plugin from a ``conftest.py``::

    pytest_plugins = ["xpnet.testing"]

and write tests against the namespace, with host data in and host data out::

    def test_relu(xp):
        x = xp.asarray([-1.0, 2.0], "float32")   # NumPy data onto the backend's device
        y = Relu().forward(x)
        xp.assert_on(y, "float32", (2,))         # its backend, device, dtype and shape
        xp.assert_close(y, [0.0, 2.0])           # read back without xpnet

The plugin adds ``--backend NAME`` (repeatable or comma-separated: run the ``xp`` tests on those
backends only; naming ``cupy`` where CuPy is not usable is an error, not a run that skips
everything) and a header line naming the backends that run and why the others skip. Without
pytest's hooks, :func:`make_backend` gives a :class:`Backend` by its id.

Reading results back (:meth:`Backend.to_numpy`) and making test data (:meth:`Backend.asarray`)
do not go through xpnet, so tests of xpnet's own conversions have a reference. This module
needs pytest; ``import xpnet`` does not import it.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
import numpy.typing as npt
import pytest

from . import backend

__all__ = ["BACKEND_IDS", "DTYPE_NAMES", "Backend", "make_backend", "selected_backends",
           "why_unusable", "xp"]

#: The backend ids, in the order tests run on them.
BACKEND_IDS: tuple[str, ...] = ("numpy", "array_api_strict", "array_api_strict-device1",
                                "torch", "cupy")

#: The dtype names of the Array API standard (what :meth:`Backend.asarray` and
#: :meth:`Backend.assert_on` accept besides dtypes).
DTYPE_NAMES: tuple[str, ...] = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")

_SELECTED = pytest.StashKey[tuple[str, ...]]()


@dataclass(frozen=True, repr=False)
class Backend:
    """A backend under test, used like its array namespace.

    Every name the class does not define is the namespace's (``xp.sum``, ``xp.float32``,
    ``xp.__array_namespace_info__``); :attr:`namespace` is the namespace itself, for code that
    needs a module (``TwoLayerNet(..., xp=xp.namespace)``). ``xp.asarray`` is the helper below,
    not the namespace's: host data in, an array on :attr:`device` out.

    Attributes
    ----------
    name : str
        The backend id (one of :data:`BACKEND_IDS`).
    namespace : module
        The array namespace (``array_api_compat.numpy``, ``array_api_strict`` ...).
    device : object
        The device tests make their arrays on.
    other_device : object or None
        A second device of the same backend, for wrong-device tests (``None``: there is none).
    """

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

    def dtype_name(self, dtype: Any) -> str:
        """The standard name of ``dtype``: a name (``"float32"``), a NumPy dtype or a dtype of
        this namespace (``xp.float32``)."""
        if isinstance(dtype, str):
            return dtype
        if isinstance(dtype, np.dtype) or (isinstance(dtype, type)
                                           and issubclass(dtype, np.generic)):
            found: str = np.dtype(dtype).name
            return found
        for name in DTYPE_NAMES:
            # Same-library comparisons only: array-api-strict warns on any other.
            candidate = getattr(self.namespace, name, None)
            if type(candidate) is type(dtype) and candidate == dtype:
                return name
        msg = f"dtype must be a dtype name ('float32') or a {self.name} dtype, got {dtype!r}"
        raise TypeError(msg)

    def asarray(self, data: Any, dtype: Any = None, *, device: Any = None) -> Any:
        """A new array holding ``data`` on this backend's device.

        Parameters
        ----------
        data : array_like
            Host data (NumPy arrays, lists, numbers), copied through NumPy without xpnet; or
            an array of this backend, copied by the namespace.
        dtype : str or dtype, optional
            A name (``"float32"``), a NumPy dtype or a dtype of the namespace; by default
            ``data``'s own.
        device : object, optional
            Where to put it instead of :attr:`device`.

        Returns
        -------
        array
            An array of the namespace, of the shape of ``data``.
        """
        name = None if dtype is None else self.dtype_name(dtype)
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

    def to_numpy(self, x: Any) -> npt.NDArray[Any]:
        """A host NumPy copy of ``x`` (an array of this backend, on any of its devices)."""
        if isinstance(x, (np.ndarray, np.generic)):
            return np.array(x)
        if array_api_compat.is_torch_array(x):
            return x.detach().cpu().numpy().copy()  # type: ignore[no-any-return]
        if array_api_compat.is_cupy_array(x):
            return x.get()  # type: ignore[no-any-return]
        if self.name.startswith("array_api_strict"):
            import array_api_strict

            cpu = array_api_strict.Device("CPU_DEVICE")
            return np.array(array_api_strict.asarray(x, device=cpu))
        return np.array(x)

    def assert_on(self, x: Any, dtype: Any, shape: tuple[int, ...] | None = None) -> None:
        """Assert that ``x`` is an array of this backend on :attr:`device`, of dtype ``dtype``
        (a name or a dtype, as for :meth:`asarray`) and, when given, of shape ``shape``."""
        assert array_api_compat.is_array_api_obj(x), f"not an array: {type(x)}"
        name = self.dtype_name(dtype)
        assert x.dtype == getattr(self.namespace, name), f"dtype {x.dtype}, expected {name}"
        assert array_api_compat.device(x) == self.device, (
            f"device {array_api_compat.device(x)}, expected {self.device}")
        if shape is not None:
            assert tuple(x.shape) == tuple(shape)

    def assert_close(self, actual: Any, expected: Any, *, rtol: float = 1e-12,
                     atol: float = 0.0) -> None:
        """Assert that ``actual`` (an array of this backend) has the shape of host
        ``expected`` and its values within ``rtol``/``atol``."""
        got = self.to_numpy(actual)
        want = np.asarray(expected)
        assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def why_unusable(name: str) -> str | None:
    """Why backend ``name`` cannot run here (its tests' skip reason), or ``None`` when it can."""
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


def _strict_backend(name: str) -> Backend:
    import array_api_strict

    # The newest standard version this array-api-strict supports (the draft one excluded).
    from array_api_strict import _flags

    newest = max(getattr(_flags, "supported_versions", (_flags.API_VERSION,)))
    array_api_strict.set_array_api_strict_flags(api_version=newest)
    cpu, device1 = array_api_strict.Device("CPU_DEVICE"), array_api_strict.Device("device1")
    if name == "array_api_strict-device1":
        return Backend(name, array_api_strict, device1, other_device=cpu)
    return Backend(name, array_api_strict, cpu, other_device=device1)


def make_backend(name: str) -> Backend:
    """The :class:`Backend` of id ``name`` (one of :data:`BACKEND_IDS`).

    Raises
    ------
    ValueError
        ``name`` is not a backend id.
    RuntimeError
        The backend cannot run here; the message says why (:func:`why_unusable`).
    """
    if name not in BACKEND_IDS:
        msg = f"name must be one of {', '.join(BACKEND_IDS)}, got {name!r}"
        raise ValueError(msg)
    if name == "numpy":
        import array_api_compat.numpy as numpy_xp

        return Backend(name, numpy_xp, "cpu")
    why = why_unusable(name)
    if why is not None:
        msg = f"backend {name} cannot run here: {why}"
        raise RuntimeError(msg)
    if name.startswith("array_api_strict"):
        return _strict_backend(name)
    if name == "torch":
        import array_api_compat.torch as torch_xp
        import torch

        # XPNET_TEST_TORCH_DEVICE=cuda:0 runs the torch tests on a GPU (benchmarks/gpu_check.sh).
        where = torch.device(os.environ.get("XPNET_TEST_TORCH_DEVICE", "cpu"))
        other = torch.device("cuda:0") if torch.cuda.is_available() else None
        other = torch.device("cpu") if where.type == "cuda" else other
        return Backend(name, torch_xp, where, other_device=other)
    import array_api_compat.cupy as cupy_xp
    import cupy

    other = cupy.cuda.Device(1) if cupy.cuda.runtime.getDeviceCount() > 1 else None
    return Backend(name, cupy_xp, array_api_compat.device(cupy.zeros(1)), other_device=other)


def selected_backends(config: pytest.Config) -> tuple[str, ...]:
    """The backend ids the ``xp`` tests of this session are parametrized over (``--backend``,
    or all of :data:`BACKEND_IDS`)."""
    return config.stash[_SELECTED]


# --------------------------------------------------------------------------- the pytest plugin


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--backend NAME``."""
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help=("run the backend-parametrized tests on NAME only; repeatable or comma-separated, "
              f"from {', '.join(BACKEND_IDS)} (default: all)"),
    )


def pytest_configure(config: pytest.Config) -> None:
    """Check ``--backend`` and keep its choice for :func:`selected_backends`."""
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


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The backends the ``xp`` tests run on here, and why the others are skipped."""
    selected = selected_backends(config)
    skipped = {name: why for name in selected if (why := why_unusable(name)) is not None}
    lines = [f"xpnet backends: {', '.join(n for n in selected if n not in skipped) or 'none'}"]
    lines += [f"xpnet backend {name} skipped: {why}" for name, why in skipped.items()]
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses ``xp`` over the selected backends."""
    if "xp" in metafunc.fixturenames:
        names = selected_backends(metafunc.config)
        metafunc.parametrize("xp", names, ids=names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def xp(request: pytest.FixtureRequest) -> Backend:
    """The backend under test, one per backend id (skipped, saying why, where it cannot run)."""
    name: str = request.param
    why = why_unusable(name)
    if why is not None:
        pytest.skip(why)
    try:
        return make_backend(name)
    except ImportError as exc:  # found but broken
        pytest.skip(f"{name} cannot be imported ({exc})")
