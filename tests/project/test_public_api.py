"""The public API: ``xpnet.__all__`` is complete, has no duplicates, and every name imports."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import json
import types
from pathlib import Path

import pytest

import xpnet

CORE_MODULES = ("backend", "functions", "layers", "nets", "gradcheck")


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


@pytest.mark.parametrize("module", ["layers", "nets"])
def test_layers_and_networks_are_exported_at_the_top(module):
    mod = importlib.import_module(f"xpnet.{module}")
    assert set(mod.__all__) <= set(xpnet.__all__), sorted(set(mod.__all__) - set(xpnet.__all__))
    for name in mod.__all__:
        assert getattr(xpnet, name) is getattr(mod, name)


def _own_docstring(obj: object) -> str | None:
    """The docstring written for ``obj`` itself, not the signature that ``@dataclass`` fills
    in when there is none."""
    if isinstance(obj, type):
        doc = vars(obj).get("__doc__")
        if doc and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return None
        return doc
    return getattr(obj, "__doc__", None)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_module_all_is_importable(module):
    mod = importlib.import_module(f"xpnet.{module}")
    assert len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert obj is not None
        # Classes and functions defined in xpnet (aliases such as backend.Array = typing.Any
        # and constants carry their library's docstring, so they are not checked here).
        if callable(obj) and getattr(obj, "__module__", "").startswith("xpnet"):
            assert _own_docstring(obj), f"xpnet.{module}.{name} has no docstring of its own"


def test_the_docstring_check_refuses_generated_docstrings():
    @dataclasses.dataclass
    class Plain:
        x: int

    @dataclasses.dataclass
    class Documented:
        """Documented."""

        x: int

    assert Plain.__doc__  # "Plain(x: int)": what a getattr(obj, "__doc__") check accepts
    assert _own_docstring(Plain) is None
    assert _own_docstring(Documented) == "Documented."


def test_modules_are_reachable_but_all_lists_names():
    """``__all__`` is the API as names (issue 18: ``xpnet.train`` is the function, not a
    module); the submodules stay reachable as ``xpnet.backend`` ..."""
    for name in ("backend", "functions", "gradcheck", "layers"):
        assert name not in xpnet.__all__
        assert isinstance(getattr(xpnet, name), types.ModuleType)
    assert not [n for n in xpnet.__all__ if isinstance(getattr(xpnet, n), types.ModuleType)]


CHECKOUT = Path(xpnet.__file__).resolve().parents[1]


def test_version_matches_pyproject():
    """``xpnet.__version__`` is the version the project declares: true for a source checkout
    on ``PYTHONPATH`` (the GPU check runs xpnet so, uninstalled) as for an install."""
    pyproject = CHECKOUT / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip(f"xpnet is imported from {CHECKOUT}, not a source checkout: "
                    "test_version_matches_the_installed_metadata checks the version")
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs Python "
                                                      ">= 3.11 (tomllib) or tomli")
    declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    assert xpnet.__version__ == declared


def test_version_matches_the_installed_metadata():
    try:
        dist = importlib.metadata.distribution("xpnet")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("xpnet is not installed (a source checkout on PYTHONPATH): "
                    "test_version_matches_pyproject checks the version")
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url.startswith("file://") and Path(url.removeprefix("file://")).resolve() != CHECKOUT:
        pytest.skip(f"the installed xpnet is another checkout ({url}), not the imported "
                    f"one ({CHECKOUT}): test_version_matches_pyproject checks the version")
    assert xpnet.__version__ == dist.version


def test_the_old_net_module_is_an_alias_of_nets():
    """``from xpnet.net import TwoLayerNet, Params`` (the chapter-5 layout) keeps working."""
    from xpnet import nets
    from xpnet.net import Params, TwoLayerNet

    assert TwoLayerNet is nets.TwoLayerNet
    assert Params is nets.Params


def _imports_xpnet_net(source: str, package: str) -> bool:
    """Whether ``source``, a module of ``package`` (dotted), imports ``xpnet.net`` anywhere
    (functions included), absolutely or relatively."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            if module == "xpnet.net" or any(f"{module}.{a.name}" == "xpnet.net"
                                            for a in node.names):
                return True
        elif isinstance(node, ast.Import) and any(a.name == "xpnet.net" for a in node.names):
            return True
    return False


def test_nothing_in_xpnet_imports_the_old_net_module():
    root = Path(xpnet.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join(("xpnet", *path.parent.relative_to(root).parts))
        if _imports_xpnet_net(path.read_text(), package):
            found.append(str(path.relative_to(root)))
    assert found == []
    # The check finds each way of writing the import (here as in a module of xpnet.graph).
    for line in ("from ..net import TwoLayerNet", "from .. import net", "import xpnet.net",
                 "from xpnet.net import Params", "from xpnet import net"):
        assert _imports_xpnet_net(f"def f():\n    {line}\n", "xpnet.graph"), line
    assert not _imports_xpnet_net("from ..nets import TwoLayerNet\n", "xpnet.graph")
    assert not _imports_xpnet_net("from .net import x\n", "xpnet.graph")
