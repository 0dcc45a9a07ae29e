"""The test suite's fixtures.

- ``xp``: the backend fixture, from the :mod:`xpnet.testing` plugin (loaded below): a test that
  takes it runs once per backend (numpy, array_api_strict, array_api_strict-device1, torch,
  cupy), and ``xp`` reads like that backend's namespace (``xp.sum``, ``xp.float32``) with
  helpers that do not go through xpnet (``xp.asarray(host, "float32")``, ``xp.to_numpy``,
  ``xp.assert_on``, ``xp.assert_close``); ``xp.namespace`` is the namespace itself.
  ``--backend NAME[,NAME]`` picks backends.
- ``rng``: a seeded host generator.
- ``book_common``: the book's own ``common`` package from ``$XPNET_BOOK_DIR``.
- ``mnist``: ``xpnet.datasets.load_mnist`` replaced by :func:`tests.helpers.fake_mnist`.
- ``fake_cupy`` and ``any_cupy``: the fake CuPy of ``tests/fakecupy``, or the real one where a
  CUDA device is usable.

Plain helpers that test files import (``clusters``, ``book_path`` ...) are in ``helpers.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xpnet import backend

from .helpers import book_path, fake_mnist

pytest_plugins = ["xpnet.testing"]


@pytest.fixture
def rng() -> np.random.Generator:
    """A host random generator with a fixed seed: every backend sees the same numbers."""
    return np.random.default_rng(20240605)


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


@pytest.fixture
def mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    """``xpnet.datasets.load_mnist`` is :func:`tests.helpers.fake_mnist` for one test."""
    import xpnet.datasets

    monkeypatch.setattr(xpnet.datasets, "load_mnist", fake_mnist)


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
