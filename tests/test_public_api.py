"""The public API: ``xpnet.__all__`` is complete, has no duplicates, and every name imports."""

from __future__ import annotations

import importlib
import importlib.metadata
import types

import pytest

import xpnet

CORE_MODULES = ("backend", "functions", "layers", "net", "gradcheck")


def test_all_names_exist_without_duplicates():
    assert len(xpnet.__all__) == len(set(xpnet.__all__))
    missing = [name for name in xpnet.__all__ if not hasattr(xpnet, name)]
    assert not missing


def test_star_import_gives_exactly_all():
    namespace: dict[str, object] = {}
    exec("from xpnet import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(xpnet.__all__)


def test_every_public_object_is_listed():
    """Every class, function and constant at the top level is in ``__all__`` (submodules that
    came along with imports are not API unless listed)."""
    public = {
        name for name, value in vars(xpnet).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(xpnet.__all__), sorted(public - set(xpnet.__all__))


@pytest.mark.parametrize("module", ["layers", "net"])
def test_layers_and_networks_are_exported_at_the_top(module):
    mod = importlib.import_module(f"xpnet.{module}")
    assert set(mod.__all__) <= set(xpnet.__all__), sorted(set(mod.__all__) - set(xpnet.__all__))
    for name in mod.__all__:
        assert getattr(xpnet, name) is getattr(mod, name)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_module_all_is_importable(module):
    mod = importlib.import_module(f"xpnet.{module}")
    assert len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert obj is not None
        if callable(obj):  # classes and functions
            assert getattr(obj, "__doc__", None), f"xpnet.{module}.{name} has no docstring"


def test_listed_modules_are_modules():
    for name in ("backend", "functions", "gradcheck", "layers"):
        assert name in xpnet.__all__
        assert isinstance(getattr(xpnet, name), types.ModuleType)


def test_version_matches_the_installed_metadata():
    assert xpnet.__version__ == importlib.metadata.version("xpnet")
