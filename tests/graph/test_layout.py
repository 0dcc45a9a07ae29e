"""The layout of xpnet.graph: one module per part, each importing only the parts below it (no
cycle, imports inside functions included), none over 300 lines; loaded on first use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import xpnet

PACKAGE = Path(xpnet.__file__).parent / "graph"

#: Bottom to top: a module may import only those before it.
ORDER = ("model", "labels", "render", "recorder", "tracing", "figures")


def package_imports(path: Path, package: str) -> set[str]:
    """The modules of ``package`` that the file ``path`` (a module of it) imports anywhere in
    its body, functions included: ``from .model import Node`` and ``from . import model`` both
    give ``"model"``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and (node.module or "").startswith(f"{package}."):
                base = node.module.removeprefix(f"{package}.")
            else:
                continue
            if base:
                found.add(base.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.removeprefix(f"{package}.").split(".")[0]
                         for alias in node.names if alias.name.startswith(f"{package}."))
    return found


def test_the_modules_are_the_parts() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == set(ORDER)


@pytest.mark.parametrize("module", ORDER)
def test_imports_run_one_way(module: str) -> None:
    below = set(ORDER[:ORDER.index(module)])
    imported = package_imports(PACKAGE / f"{module}.py", "xpnet.graph")
    assert imported <= below, f"{module} imports {sorted(imported - below)}, not below it"


def test_the_import_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("from .model import Node\n\ndef f():\n    from . import figures, labels\n"
                      "    import xpnet.graph.tracing\n")
    assert package_imports(source, "xpnet.graph") == {"model", "figures", "labels", "tracing"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_no_module_over_300_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 300


_LAZY = """
import sys
import xpnet
loaded = sorted(m for m in sys.modules if m == "xpnet.graph" or m.startswith("xpnet.graph."))
assert not loaded, f"import xpnet imported {loaded}"
from xpnet.graph import trace
assert xpnet.graph.trace is trace
assert "xpnet.graph.tracing" in sys.modules
"""


def test_import_xpnet_does_not_import_the_graph_package() -> None:
    """``import xpnet`` leaves xpnet.graph unloaded; ``xpnet.graph`` and ``from xpnet.graph
    import ...`` load it on first use."""
    done = subprocess.run([sys.executable, "-c", _LAZY], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_xpnet_graph_is_an_attribute_on_first_use() -> None:
    done = subprocess.run([sys.executable, "-c", "import xpnet; print(xpnet.graph.__name__)"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "xpnet.graph"
    with pytest.raises(AttributeError, match="no attribute 'grpah'"):
        xpnet.grpah  # noqa: B018
