"""The real CuPy judges xpnet's CuPy calls and the fake CuPy's surface, without a device.

1. Every CuPy name that xpnet's code reaches (read from its source: attribute chains on
   ``cupy``, ``cp``, ``self._cp``, ``nccl`` ... and the ``from cupy... import`` names) exists
   in the real package, and every call of one binds to its real signature (``inspect``, or
   the signature Cython writes as the first line of a compiled function's docstring).
2. Every name the fake CuPy (``tests/fakecupy``) offers exists in the real package with a
   compatible signature: xpnet's CuPy paths run on the fake in CI, so what the fake accepts
   and the real CuPy does not would pass CI and break on the first GPU.

The real CuPy imports without a GPU (``pip install cupy-cuda12x nvidia-nccl-cu12``); CI runs
this file in a virtual environment of its own that has it (``.ci/run``). Elsewhere it skips.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ..helpers import skip_without_real_cupy as _skip

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "fakecupy"


def _real_cupy() -> Any:
    try:
        import cupy
    except Exception as exc:
        _skip(f"the real CuPy is not installed ({type(exc).__name__}: {exc}); CI runs "
                    "this in its CuPy venv (pip install cupy-cuda12x nvidia-nccl-cu12)")
    if getattr(cupy, "FAKE", False):
        _skip("cupy here is the fake of tests/fakecupy; this test needs the real one")
    return cupy


# ----------------------------------------------------------------------- signatures


def _parse_doc_signature(obj: Any) -> inspect.Signature | None:
    """The signature Cython embeds as the first docstring line, e.g.
    ``MemoryPool.malloc(self, size_t size) -> MemoryPointer``; C types are dropped."""
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    found = re.match(r"^[\w.]+\((.*)\)(\s*->.*)?$", first[0]) if first else None
    if found is None:
        return None
    params: list[inspect.Parameter] = []
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    for raw in filter(None, (p.strip().replace("\\", "") for p in _split_args(found.group(1)))):
        if raw == "*":
            kind = inspect.Parameter.KEYWORD_ONLY
            continue
        if raw == "/":
            params = [p.replace(kind=inspect.Parameter.POSITIONAL_ONLY) for p in params]
            continue
        name, _, default = raw.partition("=")
        name = name.split()[-1]  # "size_t size" -> "size", "int device_id" -> "device_id"
        if name.startswith("**"):
            params.append(inspect.Parameter(name[2:], inspect.Parameter.VAR_KEYWORD))
        elif name.startswith("*"):
            params.append(inspect.Parameter(name[1:], inspect.Parameter.VAR_POSITIONAL))
            kind = inspect.Parameter.KEYWORD_ONLY
        else:
            params.append(inspect.Parameter(
                name, kind, default=default or inspect.Parameter.empty))
    if params and params[0].name == "self":
        params = params[1:]
    return inspect.Signature(params)


def _split_args(text: str) -> list[str]:
    """Split an argument list at the top-level commas."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def signature_of(obj: Any) -> inspect.Signature | None:
    """``obj``'s signature without ``self``; ``None`` where neither inspect nor the docstring
    gives one."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        try:
            return _parse_doc_signature(obj)
        except ValueError:  # a docstring that is no signature (ufuncs: "f(x1, x2[, out])")
            return None
    params = list(sig.parameters.values())
    if params and params[0].name == "self":
        sig = sig.replace(parameters=params[1:])
    return sig


def binds(sig: inspect.Signature, n_positional: int, keywords: list[str]) -> str | None:
    """Why a call with ``n_positional`` arguments and ``keywords`` does not bind to ``sig``
    (``None`` when it does)."""
    try:
        sig.bind(*([None] * n_positional), **dict.fromkeys(keywords))
    except TypeError as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------- 1. xpnet's calls

# Names a module binds to CuPy objects by convention, beyond what it imports.
_CUPY_NAMES = {"cp": "cupy", "cupy": "cupy"}


def _dotted(node: ast.AST) -> list[str] | None:
    """``['self', '_cp', 'cuda', 'Stream']`` for ``self._cp.cuda.Stream``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def xpnet_cupy_uses() -> list[tuple[str, str, int, list[str] | None]]:
    """``(where, dotted CuPy name, positional count, keywords)`` for every CuPy name that
    xpnet's source reaches; the count and keywords are ``None``-free only for calls (for a
    plain reference, ``keywords`` is ``None``)."""
    uses = []
    for path in sorted((ROOT / "xpnet").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        aliases = dict(_CUPY_NAMES)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == "cupy" or a.name.startswith("cupy."):
                        # "import cupy.cuda as cc" binds cupy.cuda; "import cupy.cuda" binds cupy
                        aliases[a.asname or "cupy"] = a.name if a.asname else "cupy"
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cupy":
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    uses.append((f"{path.name}:{node.lineno}", f"{node.module}.{a.name}", 0,
                                 None))
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        seen_inner: set[int] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or id(node) in seen_inner:
                continue
            chain = _dotted(node)
            if chain is None:
                continue
            inner = node.value
            while isinstance(inner, ast.Attribute):
                seen_inner.add(id(inner))
                inner = inner.value
            if chain[:2] == ["self", "_cp"]:
                chain = ["cp", *chain[2:]]
            if chain[0] not in aliases or len(chain) < 2:
                continue
            name = ".".join([aliases[chain[0]], *chain[1:]])
            call = calls.get(id(node))
            if call is None or any(isinstance(a, ast.Starred) for a in call.args) or any(
                    k.arg is None for k in call.keywords):
                uses.append((f"{path.name}:{node.lineno}", name, 0, None))
            else:
                uses.append((f"{path.name}:{node.lineno}", name, len(call.args),
                             [k.arg for k in call.keywords]))
    return uses


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def test_the_source_scan_finds_xpnets_cupy_calls():
    """The scan sees what it must (so the next test can fail): a few known calls."""
    names = {name for _, name, _, _ in xpnet_cupy_uses()}
    for expected in ("cupy.ElementwiseKernel", "cupy.cuda.Stream", "cupy.cuda.MemoryPool",
                     "cupy.cuda.using_allocator", "cupy.cuda.nccl.NcclCommunicator",
                     "cupy.cuda.runtime.getDeviceCount", "cupy._core._kernel._ArgInfo"):
        assert expected in names, sorted(names)


def test_every_cupy_call_of_xpnet_exists_in_the_real_cupy_with_that_signature():
    _real_cupy()
    from cupy.cuda import nccl

    if not nccl.available:
        _skip("cupy.cuda.nccl needs the NCCL library to be inspected: "
              "pip install nvidia-nccl-cu12")
    problems = []
    for where, name, n_pos, keywords in xpnet_cupy_uses():
        try:
            obj = _resolve(name)
        except (AttributeError, ImportError) as exc:
            problems.append(f"{where}: {name} does not exist in the real CuPy ({exc})")
            continue
        if keywords is None:
            continue
        if not callable(obj):
            problems.append(f"{where}: {name} is called but is not callable")
            continue
        sig = signature_of(obj.__init__ if isinstance(obj, type) and signature_of(obj) is None
                           else obj)
        if sig is None:
            problems.append(f"{where}: {name} has no signature to check the call against")
            continue
        why = binds(sig, n_pos, keywords)
        if why is not None:
            problems.append(f"{where}: {name}({n_pos} positional, keywords {keywords}) does "
                            f"not bind to {sig}: {why}")
    assert not problems, "\n".join(problems)


# Methods that xpnet calls on CuPy objects (the source scan sees names, not the objects a name
# returns): (class, method, positional arguments, keywords), as xpnet/parallel.py and
# xpnet/cuda call them.
_METHOD_CALLS = [
    ("cupy.cuda.nccl.NcclCommunicator", "allReduce", 6, []),
    ("cupy.cuda.nccl.NcclCommunicator", "bcast", 5, []),
    ("cupy.cuda.Stream", "begin_capture", 0, []),
    ("cupy.cuda.Stream", "end_capture", 0, []),
    ("cupy.cuda.Stream", "synchronize", 0, []),
    ("cupy.cuda.Graph", "launch", 0, ["stream"]),
    ("cupy.cuda.Device", "synchronize", 0, []),
    ("cupy.cuda.Device", "__enter__", 0, []),
    ("cupy.cuda.MemoryPool", "malloc", 1, []),
    ("cupy.ndarray", "get", 0, []),
]


def test_methods_xpnet_calls_on_cupy_objects_exist_with_that_signature():
    _real_cupy()
    from cupy.cuda import nccl

    if not nccl.available:
        _skip("cupy.cuda.nccl needs the NCCL library: pip install nvidia-nccl-cu12")
    problems = []
    for cls, method, n_pos, keywords in _METHOD_CALLS:
        target = getattr(_resolve(cls), method, None)
        if target is None:
            problems.append(f"{cls}.{method} does not exist")
            continue
        sig = signature_of(target)
        why = "no signature" if sig is None else binds(sig, n_pos, keywords)
        if why:
            problems.append(f"{cls}.{method}: {why}")
    assert not problems, "\n".join(problems)


def test_a_call_that_the_real_cupy_lacks_is_caught(tmp_path, monkeypatch):
    """The check above fails for a misspelt name and for a keyword CuPy does not take."""
    _real_cupy()
    assert _resolve("cupy.cuda.Stream") is not None
    with pytest.raises((AttributeError, ImportError)):
        _resolve("cupy.cuda.Strem")
    sig = signature_of(_resolve("cupy.cuda.Stream"))
    assert binds(sig, 0, ["non_blocking"]) is None
    assert binds(sig, 0, ["nonblocking"]) is not None
    # A compiled function: the docstring's signature.
    malloc = signature_of(_resolve("cupy.cuda.MemoryPool.malloc"))
    assert binds(malloc, 1, []) is None
    assert binds(malloc, 2, []) is not None


# ----------------------------------------------------------------------- 2. the fake's surface

_DESCRIBE = r'''
import inspect, json, sys, types
import cupy
assert cupy.FAKE
MODULES = ["cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.nccl", "cupy.linalg", "cupy.fft"]

def params(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = []
    for p in sig.parameters.values():
        out.append([p.name, p.kind.name, p.default is not inspect.Parameter.empty])
    return out

def describe(obj):
    if isinstance(obj, type):
        methods = {}
        props = []
        for k, v in vars(obj).items():
            if k.startswith("_") and k not in ("__init__", "__call__", "__enter__", "__exit__"):
                continue
            if isinstance(v, property):
                props.append(k)
            elif callable(v):
                methods[k] = params(v)
        return {"kind": "class", "methods": methods, "properties": props}
    if callable(obj):
        return {"kind": "function", "params": params(obj)}
    return {"kind": "value"}

found = {}
for name in MODULES:
    module = __import__(name, fromlist=["_"])
    for attr, obj in vars(module).items():
        if attr.startswith("_") or attr == "annotations" or isinstance(obj, types.ModuleType):
            continue
        found[f"{name}.{attr}"] = describe(obj)
json.dump(found, sys.stdout)
'''

# Names only the fake has, on purpose.
_FAKE_ONLY = {"cupy.FAKE"}


def fake_surface() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{FAKE}{os.pathsep}{ROOT}"}
    done = subprocess.run([sys.executable, "-c", _DESCRIBE], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    return json.loads(done.stdout)


def _incompatible(fake: list | None, real: inspect.Signature | None) -> str | None:
    """Why a fake signature accepts calls the real one refuses (``None``: compatible)."""
    if fake is None or real is None:
        return None
    fake = [p for p in fake if p[0] != "self"]
    if [p[1] for p in fake] == ["VAR_POSITIONAL", "VAR_KEYWORD"]:
        return None  # a NumPy routine wrapped as a kernel: existence is what counts
    rparams = list(real.parameters.values())
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in rparams)
    has_var_pos = any(p.kind is p.VAR_POSITIONAL for p in rparams)
    positional = [p for p in rparams if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    named = {p.name for p in rparams if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    index = 0
    for name, kind, _ in fake:
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"):
            if index < len(positional):
                real_p = positional[index]
                if real_p.kind is real_p.POSITIONAL_OR_KEYWORD and real_p.name != name:
                    return f"positional argument {index} is {name!r}, CuPy's is {real_p.name!r}"
            elif not has_var_pos:
                return f"takes {name!r} as positional argument {index}; CuPy takes " \
                       f"{len(positional)} positional arguments"
            index += 1
        if kind != "POSITIONAL_ONLY" and name not in named and not has_var_kw:
            return f"takes the keyword {name!r}, which CuPy does not"
    return None


def test_every_name_of_the_fake_exists_in_the_real_cupy_with_a_compatible_signature():
    _real_cupy()
    problems = []
    surface = fake_surface()
    assert len(surface) > 300  # NumPy's routines as kernels, plus the hand-written parts
    for name, info in sorted(surface.items()):
        if name in _FAKE_ONLY:
            continue
        try:
            real = _resolve(name)
        except (AttributeError, ImportError):
            problems.append(f"{name}: the fake offers it, the real CuPy has no such name")
            continue
        if info["kind"] == "function":
            why = _incompatible(info["params"], signature_of(real))
            if why:
                problems.append(f"{name}: {why}")
        elif info["kind"] == "class":
            if not isinstance(real, type):
                problems.append(f"{name}: a class in the fake, {type(real).__name__} in CuPy")
                continue
            for method, fparams in info["methods"].items():
                target = real if method == "__init__" else getattr(real, method, None)
                if target is None:
                    problems.append(f"{name}.{method}: not in the real CuPy")
                    continue
                why = _incompatible(fparams, signature_of(target))
                if why:
                    problems.append(f"{name}.{method}: {why}")
            for prop in info["properties"]:
                if not hasattr(real, prop):
                    problems.append(f"{name}.{prop}: not in the real CuPy")
    assert not problems, "\n".join(problems)


def test_the_signature_comparison_catches_a_kinder_fake():
    """A fake that takes an argument positionally or by a keyword that CuPy refuses."""
    real = inspect.Signature([inspect.Parameter("a", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                              inspect.Parameter("b", inspect.Parameter.KEYWORD_ONLY,
                                                default=None)])
    assert _incompatible([["a", "POSITIONAL_OR_KEYWORD", False]], real) is None
    assert _incompatible([["a", "POSITIONAL_OR_KEYWORD", False],
                          ["b", "POSITIONAL_OR_KEYWORD", True]], real) is not None
    assert _incompatible([["a", "POSITIONAL_OR_KEYWORD", False],
                          ["c", "KEYWORD_ONLY", True]], real) is not None
    assert _incompatible([["x", "POSITIONAL_OR_KEYWORD", False]], real) is not None
