"""xpnet.testing: the ``xp`` fixture's object reads like the backend's namespace and keeps its
helpers, the backends are made by id (or say why they cannot run), the pytest header names the
backends that run, the plugin works from another project's conftest, and ``import xpnet`` does
not import it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xpnet import backend
from xpnet.testing import (
    BACKEND_IDS,
    Backend,
    make_backend,
    pytest_report_header,
    selected_backends,
    why_unusable,
)


def test_xp_forwards_the_namespace(xp):
    assert isinstance(xp, Backend)
    ns = xp.namespace
    assert xp.sum is ns.sum
    assert xp.matmul is ns.matmul
    assert xp.float32 is ns.float32
    assert xp.__array_namespace_info__ is ns.__array_namespace_info__
    assert {"sum", "float32", "asarray", "to_numpy", "namespace"} <= set(dir(xp))
    with pytest.raises(AttributeError, match="no_such_function"):
        xp.no_such_function  # noqa: B018
    assert repr(xp) == f"Backend({xp.name!r}, device={xp.device!r})"
    x = xp.asarray([[1.0, 2.0], [3.0, 4.0]])
    xp.assert_close(xp.sum(xp.matmul(x, x), axis=0), [22.0, 32.0])


@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float32"), "namespace"],
                         ids=["name", "numpy-type", "numpy-dtype", "namespace"])
def test_asarray_takes_a_dtype_name_a_numpy_dtype_or_a_namespace_dtype(xp, dtype):
    given = xp.float32 if dtype == "namespace" else dtype
    x = xp.asarray([1.5, -2.0], given)
    xp.assert_on(x, "float32", (2,))
    xp.assert_on(x, given)
    xp.assert_close(x, np.array([1.5, -2.0], dtype=np.float32), rtol=0)
    assert xp.dtype_name(given) == "float32"


def test_asarray_of_host_data_and_of_backend_arrays_copies(xp):
    host = np.arange(3.0)
    x = xp.asarray(host)
    host[0] = 7.0  # the array holds a copy
    xp.assert_close(x, [0.0, 1.0, 2.0], rtol=0)
    y = xp.asarray(x, "float32")  # an array of the backend: copied by the namespace
    xp.assert_on(y, "float32", (3,))
    assert y is not x
    xp.assert_close(y, [0.0, 1.0, 2.0], rtol=0)
    xp.assert_on(xp.asarray(x), "float64", (3,))


def test_a_dtype_of_another_kind_is_refused_by_name(xp):
    with pytest.raises(TypeError, match=rf"a dtype name \('float32'\) or a {xp.name} dtype"):
        xp.asarray([1.0], object())


def test_make_backend_by_id_and_its_errors():
    numpy_xp = make_backend("numpy")
    assert (numpy_xp.name, numpy_xp.device, numpy_xp.other_device) == ("numpy", "cpu", None)
    assert numpy_xp.namespace.__name__ == "array_api_compat.numpy"
    with pytest.raises(ValueError, match=r"name must be one of numpy, .*, got 'jax'"):
        make_backend("jax")
    for name in BACKEND_IDS:
        why = why_unusable(name)
        if why is not None:
            with pytest.raises(RuntimeError, match=f"backend {name} cannot run here"):
                make_backend(name)


def test_header_lists_only_the_backends_that_run_here(request):
    """`xpnet backends:` names the backends whose tests run; each other selected backend gets
    its own line with the reason its tests skip (no CuPy listed where CuPy is not usable)."""
    lines = pytest_report_header(request.config)
    selected = selected_backends(request.config)
    assert lines[0].startswith("xpnet backends: ")
    listed = [n for n in lines[0].removeprefix("xpnet backends: ").split(", ") if n != "none"]
    skipped = [line.split()[2] for line in lines[1:]]
    assert all(line.startswith("xpnet backend ") and " skipped: " in line for line in lines[1:])
    assert sorted(listed + skipped) == sorted(selected)
    if "cupy" in selected:
        usable, why = backend.cuda_status()
        assert ("cupy" in listed) == usable
        if not usable:
            assert f"xpnet backend cupy skipped: no usable CUDA device: {why}" in lines
    if "torch" in selected and "XPNET_TEST_TORCH_DEVICE" not in os.environ:
        assert ("torch" in listed) == (importlib.util.find_spec("torch") is not None)
    if "numpy" in selected:
        assert "numpy" in listed


def test_import_xpnet_imports_neither_xpnet_testing_nor_pytest():
    code = "import sys, xpnet; print(sorted({'xpnet.testing', 'pytest'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_another_project_uses_the_plugin_from_its_conftest(tmp_path):
    """``pytest_plugins = ["xpnet.testing"]`` is all another project's conftest needs."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["xpnet.testing"]\n')
    (tmp_path / "test_theirs.py").write_text(textwrap.dedent("""
        def test_relu(xp):
            x = xp.asarray([-1.0, 2.0], "float32")
            y = xp.where(x > 0, x, xp.zeros_like(x))
            xp.assert_on(y, "float32", (2,))
            xp.assert_close(y, [0.0, 2.0])
    """))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "--backend", "numpy,array_api_strict", str(tmp_path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ran = "2 passed" if importlib.util.find_spec("array_api_strict") else "1 passed, 1 skipped"
    assert ran in done.stdout
    assert "xpnet backends: numpy" in done.stdout
