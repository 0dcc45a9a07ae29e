"""Imports run one way: no cycle among xpnet's modules (imports inside functions count), and
only the backend module and the operations know CuPy (and the test helper, xpnet.testing).

Run it alone with ``python -m pytest tests/project/test_layering.py`` or
``python tests/project/test_layering.py``
(prints every cycle and every CuPy mention outside its place).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "xpnet"

# Where CuPy may be named or tested for: the backend module and the operations; and the test
# helper xpnet.testing, which makes each backend by its id and reads its arrays back without
# going through xpnet (nothing of the runtime imports it).
CUPY_HOMES = ("xpnet/backend.py", "xpnet/ops/", "xpnet/cuda/", "xpnet/testing.py")


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """``{dotted module name: path}`` of every module of ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def import_edges(found: dict[str, Path]) -> dict[str, set[str]]:
    """``{module: modules it imports}`` within the package, from every import statement in
    the source (module level or inside functions). ``from . import sub`` is an edge to the
    submodule ``sub``, not to the package."""
    edges: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in found]
                targets = subs + ([target] if len(subs) < len(node.names) else [])
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in found and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


_CUPY = re.compile(r"""import cupy|from cupy|is_cupy|["']cupy["']""")


def cupy_mentions(found: dict[str, Path]) -> list[str]:
    """Code (not docstrings or comments) outside :data:`CUPY_HOMES` that imports CuPy, tests
    for it or compares a backend name with ``"cupy"``."""
    out = []
    for path in found.values():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(CUPY_HOMES):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                        ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)
                      and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            text = None
            if isinstance(node, (ast.Import, ast.ImportFrom, ast.Compare, ast.Call)):
                text = ast.unparse(node)
            elif isinstance(node, ast.Constant) and node.value == "cupy" and id(node) not in \
                    docstrings:
                text = repr(node.value)
            if text and _CUPY.search(text):
                out.append(f"{rel}:{node.lineno}: {text[:80]}")
    return sorted(set(out))


def test_no_import_cycle():
    found = cycles(import_edges(modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_nothing_in_xpnet_imports_the_test_helper():
    """xpnet.testing needs pytest: no module of the library imports it, even in a function."""
    edges = import_edges(modules())
    assert sorted(m for m, targets in edges.items() if "xpnet.testing" in targets) == []


def test_only_the_command_imports_the_book_runner():
    """``xpnet.book`` sits above nets, training and datasets, beside the command: only
    ``xpnet.cli`` imports it, and it imports nothing of the command."""
    edges = import_edges(modules())
    users = sorted(m for m, targets in edges.items()
                   if not m.startswith("xpnet.book") and any(
                       t == "xpnet.book" or t.startswith("xpnet.book.") for t in targets))
    assert users == ["xpnet.cli.book"]
    book = {t for m, targets in edges.items() if m.startswith("xpnet.book") for t in targets}
    assert not [t for t in book if t.startswith(("xpnet.cli", "xpnet.graph", "xpnet.plot"))]


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_backend_module_and_the_ops_know_cupy():
    found = cupy_mentions(modules())
    assert not found, "\n".join(found)


def test_the_cupy_finder_sees_a_test_for_cupy(tmp_path):
    package = tmp_path / "xpnet"
    package.mkdir()
    (package / "__init__.py").write_text('"""Mentions cupy in a docstring: fine."""\n')
    (package / "layers.py").write_text(
        "def f(xp):\n    return backend_name(xp) == 'cupy'\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert {m.split(":")[0] for m in cupy_mentions(modules(package))} == {"xpnet/layers.py"}
    finally:
        ROOT = saved


if __name__ == "__main__":
    edges = import_edges(modules())
    for component in cycles(edges):
        print("cycle:", " <-> ".join(component))
    for line in cupy_mentions(modules()):
        print("cupy outside its place:", line)
    print(f"{len(cycles(edges))} import cycle(s) among {len(edges)} modules")
