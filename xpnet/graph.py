"""Tracing and drawing the computational graph, as the book draws it in chapter 5.

Inside ``with trace() as g:`` every call of a registered layer's ``forward`` and ``backward`` is
recorded: the values flowing forward and the gradients flowing back. ``g.to_dot()`` then draws
the graph left to right, the operations as nodes ("×", "+", "exp", "/", "Affine", ...), each
forward value above its edge and the gradient below it in red; ``g.render("apple.png")`` runs
Graphviz's ``dot`` when it is installed and writes the DOT text otherwise::

    from xpnet import MulLayer
    from xpnet.graph import trace

    with trace() as g:
        apple, apple_num, tax = g.name(100, "apple"), g.name(2, "apple_num"), g.name(1.1, "tax")
        mul_apple, mul_tax = MulLayer(), MulLayer()
        price = g.name(mul_tax.forward(mul_apple.forward(apple, apple_num), tax), "price")
        dapple_price, dtax = mul_tax.backward(1)
        dapple, dapple_num = mul_apple.backward(dapple_price)
    g.render("apple.png")

How edges connect
-----------------
A value that one traced layer returned and a later one takes as input is one edge: outputs are
matched to inputs by object identity (``is``), newest producer first. Any other input is a leaf
(drawn at the left): arrays get one leaf per object, shared by all their uses; plain Python
numbers get one leaf per use, because CPython shares equal small ints (and equal constants of a
function) between unrelated variables. Values computed outside traced layers (``y * 2``) are new
objects, so the graph starts over from a leaf there.

``g.name(value, label)`` names a value. Named before any traced layer returned it, it names a
leaf; named after, it names that layer's output (an edge, or the end of the graph). For plain
numbers, names given before their use are handed out to leaves in order and take precedence over
identity with an earlier output, so ``g.name(2, "apple_num")`` is unambiguous even when some layer
returned another ``2``. Plain numbers combined with an array by ``MulLayer`` / ``AddLayer``,
unnamed, are constants: they are drawn inside the node (``×(-1)``, ``+1``) as in figure 5-19.

Cost
----
Nothing is recorded and nothing costs anything when no trace is active: the layers' methods are
plain functions. ``trace()`` replaces the registered classes' ``forward``/``backward`` (and
TwoLayerNet's ``predict``/``loss``/``gradient``) with recording wrappers for the duration of the
``with`` block and puts the original functions back on exit, exception or not.

Threads: the replacement is process wide. Calls from other threads during a trace go through the
wrappers (a small cost) but are not recorded; only one trace can be active at a time (a second
raises ``RuntimeError``), and registering layers during a trace is refused.
"""

from __future__ import annotations

import contextlib
import functools
import html
import inspect
import math
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .backend import (
    Namespace,
    asarray,
    dtype_name,
    get_namespace,
    parse_device,
    resolve_dtype,
    to_numpy,
)
from .backend import device as device_of
from .io import atomic_write_bytes, temp_path_beside
from .layers import (
    AddLayer,
    Affine,
    ExpLayer,
    MulLayer,
    ReciprocalLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from .net import TwoLayerNet

__all__ = [
    "EXAMPLES",
    "FORMATS",
    "INSTALL_HINT",
    "Edge",
    "Graph",
    "GraphvizNotFoundError",
    "LayerSpec",
    "Node",
    "build_example",
    "format_value",
    "graphviz_available",
    "register_layer",
    "render_dot",
    "render_example",
    "sigmoid_from_primitives",
    "trace",
]

#: Output formats: ``dot`` is the graph's text, ``svg`` and ``png`` need Graphviz's ``dot``.
FORMATS: tuple[str, ...] = ("svg", "png", "dot")

#: The book's figures that :func:`render_example` draws.
EXAMPLES: tuple[str, ...] = ("apple", "apple-orange", "sigmoid", "two-layer-net")

INSTALL_HINT = ("install Graphviz for SVG/PNG: apt-get install graphviz, brew install graphviz "
                "or conda install graphviz")

_PLAIN = (int, float, bool, complex)


def _is_plain_number(value: Any) -> bool:
    """Exactly a Python number (NumPy scalars, which are new objects per result, are not)."""
    return type(value) in _PLAIN


# --------------------------------------------------------------------------------------------
# What the graph records


@dataclass(frozen=True)
class LayerSpec:
    """How a layer class appears in the graph.

    ``inputs`` are the names of ``forward``'s positional arguments that are graph inputs,
    ``grads`` those that ``backward`` returns gradients for, in its return order (a single
    gradient is returned bare, several as a tuple), and ``params`` holds
    ``(shown name, value attribute, gradient attribute)`` for parameters drawn as extra inputs
    (Affine's ``W``/``dW`` and ``b``/``db``).
    """

    label: str
    inputs: tuple[str, ...]
    grads: tuple[str, ...]
    params: tuple[tuple[str, str, str], ...] = ()
    shape: str = "circle"
    fold_constants: bool = False


@dataclass(eq=False)
class Node:
    """A node: a layer call (``kind="layer"``), a leaf input (``"input"``) or the end of an output
    that no traced layer took (``"output"``). ``label`` is what the node shows."""

    id: str
    kind: str
    label: str
    name: str | None = None
    layer: Any = None
    shape: str = "circle"


@dataclass(eq=False)
class Edge:
    """A value flowing from ``tail`` to ``head``: ``value`` forward and ``grad`` backward (the
    gradient ``head``'s backward returned for it; ``None`` when backward did not run or did not
    compute it). ``name`` is the name given to an intermediate value, if any."""

    tail: Node
    head: Node
    value: Any
    grad: Any = None
    name: str | None = None


@dataclass(eq=False)
class _Call:
    """One recorded forward call (and its backward, once that runs)."""

    node: Node
    owner: Any
    names: list[str]
    values: list[Any]
    sources: list[Node | None]  # None: a constant drawn inside the node
    output: Any
    dout: Any = None
    grads: list[Any] = field(default_factory=list)
    consumed: bool = False
    sink: Node | None = None


class Graph:
    """A recorded computational graph. Made by :func:`trace`; read it with :meth:`nodes` and
    :meth:`edges`, draw it with :meth:`to_dot` and :meth:`render`."""

    def __init__(self, *, expand: bool = True) -> None:
        self.expand = expand
        self._calls: list[_Call] = []
        self._leaves: list[Node] = []
        self._leaf_of: dict[int, Node] = {}  # array leaves by id()
        self._producer: dict[int, _Call] = {}  # id(output) -> newest call that returned it
        self._last_call: dict[int, _Call] = {}  # id(layer) -> its newest forward call
        self._value_names: dict[int, str] = {}
        self._pending: dict[int, list[str]] = {}  # names for plain numbers not used yet
        self._layer_names: dict[int, str] = {}
        self._keep: list[Any] = []  # everything whose id() is a key above stays alive
        self._depth = 0  # > 0 inside a TwoLayerNet drawn as one node
        self._thread: int | None = None
        self._ids = 0

    # ---- naming ---------------------------------------------------------------------------

    def name(self, value: Any, label: str) -> Any:
        """Name ``value`` in the drawing and return it unchanged.

        Before any traced layer returned ``value`` the name goes to the leaf it becomes (for
        plain numbers: to its next use as a leaf); afterwards it names that layer's output.
        """
        if not isinstance(label, str) or not label:
            msg = f"a name must be a non-empty string, got {label!r}"
            raise TypeError(msg)
        self._keep.append(value)
        key = id(value)
        if key in self._producer:
            self._value_names[key] = label
            call = self._producer[key]
            if call.sink is not None:
                call.sink.label = call.sink.name = label
        elif _is_plain_number(value):
            self._pending.setdefault(key, []).append(label)
        else:
            self._value_names[key] = label
            leaf = self._leaf_of.get(key)
            if leaf is not None:
                leaf.label = leaf.name = label
        return value

    def name_layer(self, layer: Any, label: str) -> Any:
        """Name ``layer``'s nodes (shown inside boxes, beside circles) and return it."""
        self._keep.append(layer)
        self._layer_names[id(layer)] = label
        for call in self._calls:
            if call.owner is layer:
                call.node.name = label
        return layer

    def _auto_name(self, value: Any, label: str) -> None:
        key = id(value)
        if (value is None or _is_plain_number(value) or key in self._value_names
                or key in self._producer):
            return
        self._keep.append(value)
        self._value_names[key] = label
        leaf = self._leaf_of.get(key)
        if leaf is not None and leaf.name is None:
            leaf.label = leaf.name = label

    def _auto_name_output(self, value: Any, label: str) -> None:
        key = id(value)
        if key in self._producer and key not in self._value_names:
            self.name(value, label)

    def _adopt_net(self, net: TwoLayerNet, x: Any = None, t: Any = None) -> None:
        """Names from a TwoLayerNet: its layers' keys, W1..b2, x and t (user names win)."""
        for key, layer in net.layers.items():
            if id(layer) not in self._layer_names:
                self._keep.append(layer)
                self._layer_names[id(layer)] = key
        for key, value in net.params.items():
            self._auto_name(value, key)
        self._auto_name(x, "x")
        self._auto_name(t, "t")

    # ---- recording ------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def _new_leaf(self, value: Any, name: str | None) -> Node:
        leaf = Node(self._new_id("in"), "input", name if name is not None else "", name=name,
                    shape="plaintext")
        self._leaves.append(leaf)
        return leaf

    def _record_forward(self, owner: Any, spec: LayerSpec, inputs: Sequence[tuple[str, Any]],
                        output: Any) -> None:
        node = Node(self._new_id("op"), "layer", spec.label,
                    name=self._layer_names.get(id(owner)), layer=owner, shape=spec.shape)
        all_plain = all(_is_plain_number(v) for _, v in inputs)
        sources: list[Node | None] = []
        constants: list[Any] = []
        for _, value in inputs:
            key = id(value)
            if _is_plain_number(value) and self._pending.get(key):
                source: Node | None = self._new_leaf(value, self._pending[key].pop(0))
            elif key in self._producer:
                producer = self._producer[key]
                producer.consumed = True
                source = producer.node
            elif not _is_plain_number(value):
                source = self._leaf_of.get(key)
                if source is None:
                    source = self._leaf_of[key] = self._new_leaf(value,
                                                                 self._value_names.get(key))
            elif spec.fold_constants and not all_plain:
                source = None
                constants.append(value)
            else:
                source = self._new_leaf(value, None)
            sources.append(source)
        if constants:
            node.label = spec.label + "".join(_constant_text(c) for c in constants)
        call = _Call(node, owner, [n for n, _ in inputs], [v for _, v in inputs], sources, output,
                     grads=[None] * len(inputs))
        self._calls.append(call)
        self._keep.append(owner)
        self._producer[id(output)] = call
        self._last_call[id(owner)] = call

    def _record_backward(self, owner: Any, dout: Any, grads: dict[str, Any]) -> None:
        call = self._last_call.get(id(owner))
        if call is None:  # its forward ran before the trace began
            return
        call.dout = dout
        for i, name in enumerate(call.names):
            if name in grads:
                call.grads[i] = grads[name]

    # ---- reading --------------------------------------------------------------------------

    def _sink(self, call: _Call) -> Node:
        if call.sink is None:
            name = self._value_names.get(id(call.output))
            call.sink = Node(self._new_id("out"), "output", name or "", name=name,
                             shape="plaintext")
        return call.sink

    def nodes(self) -> list[Node]:
        """All nodes: leaf inputs, layer calls in call order, then the outputs' ends."""
        ends = [self._sink(c) for c in self._calls if not c.consumed]
        return [*self._leaves, *(c.node for c in self._calls), *ends]

    def edges(self) -> list[Edge]:
        """All edges, each with its forward value and backward gradient."""
        edges: list[Edge] = []
        for call in self._calls:
            for value, grad, source in zip(call.values, call.grads, call.sources, strict=True):
                if source is None:
                    continue
                name = self._value_names.get(id(value)) if source.kind == "layer" else None
                edges.append(Edge(source, call.node, value, grad, name))
        for call in self._calls:
            if not call.consumed:
                edges.append(Edge(call.node, self._sink(call), call.output, call.dout))
        return edges

    def __repr__(self) -> str:
        return f"<Graph: {len(self._calls)} layer calls, {len(self._leaves)} inputs>"

    # ---- drawing --------------------------------------------------------------------------

    def to_dot(self, *, show_values: bool = False, title: str | None = None,
               legend: bool = True) -> str:
        """The graph in Graphviz's DOT language, laid out left to right like the book's figures.

        Each edge passes through a small label whose upper line is the forward value and whose
        lower line, in red, is the gradient flowing back. Plain numbers and 0-d arrays print as
        numbers (``%.6g``), other arrays as ``shape dtype``; ``show_values`` adds the values of
        arrays with at most 16 elements (copied to the host for that).
        """
        out = ["digraph xpnet {",
               '  graph [rankdir=LR, ranksep=0.15, nodesep=0.25, fontname="Helvetica", '
               'fontsize=11, labelloc=b, outputorder=edgesfirst];',
               '  node [fontname="Helvetica", fontsize=14];',
               '  edge [arrowsize=0.7, penwidth=1.1];']
        caption = [html.escape(title)] if title else []
        if legend:
            caption.append('<FONT POINT-SIZE="10">forward values above the arrows, '
                           'backward gradients <FONT COLOR="red">below in red</FONT></FONT>')
        if caption:
            out.append(f"  label=<{'<BR/>'.join(caption)}>;")
        for node in self.nodes():
            out.append(f"  {node.id} [{_node_attrs(node)}];")
        for k, edge in enumerate(self.edges(), 1):
            mid = f"e{k}"
            label = _edge_label(edge, show_values)
            out.append(f"  {mid} [shape=plaintext, margin=0, width=0, height=0, label=<{label}>];")
            out.append(f"  {edge.tail.id} -> {mid}:w [arrowhead=none];")
            out.append(f"  {mid}:e -> {edge.head.id};")
        out.append("}")
        return "\n".join(out) + "\n"

    def render(self, path: str | os.PathLike[str], fmt: str | None = None, *,
               show_values: bool = False, title: str | None = None, fallback: bool = True,
               timeout: float = 60.0) -> Path:
        """Draw the graph into ``path`` and return the path written.

        ``fmt`` is ``"svg"``, ``"png"`` or ``"dot"`` (default: from the suffix of ``path``,
        else SVG). SVG and PNG need Graphviz's ``dot`` on PATH; without it the DOT text is written
        next to ``path`` with the suffix ``.dot`` and a one-line message names how to install
        Graphviz (``fallback=False`` raises :class:`GraphvizNotFoundError` instead).
        """
        source = self.to_dot(show_values=show_values, title=title)
        return render_dot(source, path, fmt, fallback=fallback, timeout=timeout)


def _constant_text(value: Any) -> str:
    text = format_value(value)
    return f"({text})" if text.startswith("-") else text


# --------------------------------------------------------------------------------------------
# Labels


def _number_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (complex, np.complexfloating)):
        value = complex(value)
        return f"{_number_text(value.real)}{'+' if value.imag >= 0 else '-'}" \
               f"{_number_text(abs(value.imag))}j"
    text = f"{float(value):.6g}"
    return "0" if text == "-0" else text


def format_value(value: Any, *, show_values: bool = False, max_elements: int = 16) -> str:
    """A value as the graph prints it: numbers compactly (``%.6g``, so 220.00000000000003 reads
    ``220``), 0-d arrays as numbers, other arrays as ``shape dtype`` (``(100, 50) float32``),
    followed by their values when ``show_values`` and they have at most ``max_elements``
    elements. Only 0-d arrays and the shown values are copied to the host."""
    if value is None:
        return ""
    if isinstance(value, (*_PLAIN, np.generic)):
        return _number_text(value.item() if isinstance(value, np.generic) else value)
    shape = getattr(value, "shape", None)
    if shape is None:
        return str(value)
    shape = tuple(int(n) for n in shape)
    if not shape:
        return _number_text(to_numpy(value).item())
    text = f"{shape} {dtype_name(value.dtype)}"
    if show_values and math.prod(shape) <= max_elements:
        host = np.asarray(to_numpy(value))
        values = np.array2string(host, precision=4, separator=", ", suppress_small=True)
        text += "\n" + values
    return text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html_lines(text: str) -> list[str]:
    return [html.escape(line) for line in text.split("\n")] if text else []


def _node_attrs(node: Node) -> str:
    if node.kind == "input":
        return f"shape=plaintext, width=0, height=0, margin=0.04, label={_quote(node.label)}"
    if node.kind == "output":
        if node.label:
            return f"shape=plaintext, width=0, height=0, margin=0.04, label={_quote(node.label)}"
        return 'shape=point, width=0.01, style=invis, label=""'
    if node.shape == "circle":
        attrs = f"shape=circle, width=0.5, margin=0.03, label={_quote(node.label)}"
        if node.name:
            attrs += f", xlabel={_quote(node.name)}, fontsize=14"
        return attrs
    label = node.name or node.label
    return f'shape=box, style="rounded", margin="0.12,0.06", label={_quote(label)}'


_PAD = "&#160;"


def _edge_label(edge: Edge, show_values: bool) -> str:
    """A two-row table: the forward value above a rule, the gradient (red) below it. The edge
    enters at the table's west side and leaves at its east side, and the rule joins the two
    halves; both rows get the same number of lines so that the rule sits at mid-height."""
    forward = _html_lines(format_value(edge.value, show_values=show_values))
    backward = _html_lines(format_value(edge.grad, show_values=show_values))
    if edge.name and forward:
        forward[0] = f'<FONT COLOR="gray40">{html.escape(edge.name)}</FONT> {forward[0]}'
    rows = max(len(forward), len(backward), 1)
    forward = [_PAD] * (rows - len(forward)) + forward
    backward = backward + [_PAD] * (rows - len(backward))
    top = "<BR/>".join(forward)
    bottom = "<BR/>".join(f'<FONT COLOR="red">{line}</FONT>' if line != _PAD else line
                          for line in backward)
    return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1" CELLPADDING="2">'
            f'<TR><TD WIDTH="28">{top}</TD></TR><HR/>'
            f'<TR><TD WIDTH="28">{bottom}</TD></TR></TABLE>')


# --------------------------------------------------------------------------------------------
# Rendering through Graphviz


class GraphvizNotFoundError(RuntimeError):
    """Graphviz's ``dot`` is not on PATH (raised only with ``fallback=False``)."""


def graphviz_available() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH."""
    return shutil.which("dot") is not None


def _format_for(path: Path | None, fmt: str | None) -> str:
    suffix = path.suffix.lower().lstrip(".") if path is not None else ""
    if fmt is None:
        fmt = suffix if suffix in FORMATS else "svg"
    fmt = fmt.lower()
    if fmt not in FORMATS:
        msg = f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    if suffix in FORMATS and suffix != fmt:
        msg = f"{path} ends in .{suffix} but the format asked for is {fmt!r}; make them agree"
        raise ValueError(msg)
    return fmt


def render_dot(source: str, path: str | os.PathLike[str], fmt: str | None = None, *,
               fallback: bool = True, timeout: float = 60.0) -> Path:
    """Write DOT ``source`` to ``path`` as ``fmt`` (see :meth:`Graph.render`); returns the path
    written. Files are written atomically (a temporary file beside it, then ``os.replace``)."""
    path = Path(path)
    fmt = _format_for(path, fmt)
    if fmt == "dot":
        return atomic_write_bytes(path, source.encode("utf-8"))
    exe = shutil.which("dot")
    if exe is None:
        if not fallback:
            raise GraphvizNotFoundError(f"Graphviz's 'dot' is not on PATH; {INSTALL_HINT}")
        dot_path = atomic_write_bytes(path.with_suffix(".dot"), source.encode("utf-8"))
        print(f"xpnet: Graphviz 'dot' not found, wrote {dot_path} instead of {fmt.upper()}; "
              f"{INSTALL_HINT}", file=sys.stderr)
        return dot_path
    tmp = temp_path_beside(path)
    try:
        try:
            args = [exe, f"-T{fmt}", "-o", str(tmp)] + (["-Gdpi=144"] if fmt == "png" else [])
            done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            msg = f"Graphviz 'dot' took longer than {timeout:g} s drawing {path}"
            raise RuntimeError(msg) from None
        if done.returncode != 0 or tmp.stat().st_size == 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            msg = f"Graphviz 'dot' failed (exit {done.returncode}) drawing {path}: {err}"
            raise RuntimeError(msg)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------------------------
# Tracing: the layer classes' methods are replaced only inside `with trace()`

_REGISTRY: dict[type, LayerSpec] = {}
_LOCK = threading.Lock()
_ACTIVE: list[Graph] = []
_MISSING = object()


def _positional_names(func: Callable[..., Any]) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p.name for p in inspect.signature(func).parameters.values() if p.kind in kinds]
    return tuple(params[1:])  # drop self


def register_layer(cls: type, label: str, *, grads: Sequence[str] | None = None,
                   params: Sequence[tuple[str, str, str]] = (), shape: str | None = None,
                   fold_constants: bool = False) -> LayerSpec:
    """Have :func:`trace` record ``cls`` (a class with ``forward`` and ``backward``).

    ``label`` is what its node shows. ``grads`` names the ``forward`` arguments that
    ``backward`` returns gradients for, in order (default: all of them); ``params`` lists
    ``(name, value attribute, gradient attribute)`` of parameters to draw as inputs. ``shape``
    is ``"circle"`` (default for labels of up to 3 characters) or ``"box"``.
    """
    if _ACTIVE:
        msg = "cannot register a layer while a trace is active"
        raise RuntimeError(msg)
    for method in ("forward", "backward"):
        if not callable(getattr(cls, method, None)):
            msg = f"{cls.__name__} has no {method}() method"
            raise TypeError(msg)
    inputs = _positional_names(cls.forward)
    grads = inputs if grads is None else tuple(grads)
    unknown = set(grads) - set(inputs)
    if unknown:
        msg = f"grads {sorted(unknown)} are not arguments of {cls.__name__}.forward{inputs}"
        raise ValueError(msg)
    shape = shape or ("circle" if len(label) <= 3 else "box")
    if shape not in ("circle", "box"):
        msg = f"shape must be 'circle' or 'box', got {shape!r}"
        raise ValueError(msg)
    spec = LayerSpec(label, inputs, grads, tuple(tuple(p) for p in params), shape, fold_constants)
    _REGISTRY[cls] = spec
    return spec


register_layer(MulLayer, "×", fold_constants=True)
register_layer(AddLayer, "+", fold_constants=True)
register_layer(ExpLayer, "exp")
register_layer(ReciprocalLayer, "/")
register_layer(Relu, "ReLU")
register_layer(Sigmoid, "sigmoid")
register_layer(Affine, "Affine", params=(("W", "W", "dW"), ("b", "b", "db")))
register_layer(SoftmaxWithLoss, "Softmax-with-Loss", grads=("x",))

_NET_SPEC = LayerSpec("TwoLayerNet", ("x", "t"), (), shape="box")
_NET_PARAMS = ("W1", "b1", "W2", "b2")


def _recording(graph: Graph) -> bool:
    return graph._depth == 0 and threading.get_ident() == graph._thread


def _layer_forward(orig: Callable[..., Any], spec: LayerSpec, graph: Graph) -> Callable[..., Any]:
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(self, *args, **kwargs)
        if _recording(graph):
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            inputs = [(n, bound.arguments[n]) for n in spec.inputs]
            for name, attr, _ in spec.params:
                value = getattr(self, attr)
                graph._auto_name(value, name)
                inputs.append((name, value))
            graph._record_forward(self, spec, inputs, out)
        return out

    return forward


def _layer_backward(orig: Callable[..., Any], spec: LayerSpec, graph: Graph) -> Callable[..., Any]:
    sig = inspect.signature(orig)
    first = next(iter(list(sig.parameters)[1:]), None)

    @functools.wraps(orig)
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = orig(self, *args, **kwargs)
        if _recording(graph):
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            dout = bound.arguments.get(first) if first is not None else None
            if len(spec.grads) == 1:
                grads = {spec.grads[0]: result}
            else:
                grads = dict(zip(spec.grads, result or (), strict=False))
            for name, _, grad_attr in spec.params:
                grads[name] = getattr(self, grad_attr, None)
            graph._record_backward(self, dout, grads)
        return result

    return backward


def _net_inputs(net: TwoLayerNet, x: Any, t: Any = None) -> list[tuple[str, Any]]:
    inputs = [("x", x)] if t is None else [("x", x), ("t", t)]
    return inputs + [(k, net.params[k]) for k in _NET_PARAMS]


def _net_method(orig: Callable[..., Any], method: str, graph: Graph) -> Callable[..., Any]:
    """TwoLayerNet's predict/loss/gradient: name its parts (expanded) or record one node."""

    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def wrapper(self: TwoLayerNet, *args: Any, **kwargs: Any) -> Any:
        if not _recording(graph):
            return orig(self, *args, **kwargs)
        bound = sig.bind(self, *args, **kwargs)
        x, t = bound.arguments.get("x"), bound.arguments.get("t")
        graph._adopt_net(self, x, t)
        if graph.expand:
            result = orig(self, *args, **kwargs)
            if method != "predict":
                graph._auto_name_output(self.last_loss if method == "gradient" else result, "L")
            return result
        graph._depth += 1
        try:
            result = orig(self, *args, **kwargs)
        finally:
            graph._depth -= 1
        if method == "gradient":
            graph._record_forward(self, _NET_SPEC, _net_inputs(self, x, t), self.last_loss)
            graph._record_backward(self, 1.0, dict(result))
        else:
            graph._record_forward(self, _NET_SPEC, _net_inputs(self, x, t), result)
        if method != "predict":
            graph._auto_name_output(self.last_loss if method == "gradient" else result, "L")
        return result

    return wrapper


def _targets(graph: Graph) -> list[tuple[type, str, Callable[..., Any]]]:
    """(class, method, replacement) for everything a trace replaces, built from the originals."""
    targets = []
    for cls, spec in _REGISTRY.items():
        targets.append((cls, "forward", _layer_forward(cls.forward, spec, graph)))
        targets.append((cls, "backward", _layer_backward(cls.backward, spec, graph)))
    for method in ("predict", "loss", "gradient"):
        targets.append((TwoLayerNet, method,
                        _net_method(getattr(TwoLayerNet, method), method, graph)))
    return targets


@contextlib.contextmanager
def trace(*, expand: bool = True) -> Iterator[Graph]:
    """Record the registered layers' forward and backward calls made inside the block.

    ``expand=True`` draws a TwoLayerNet as its layers (Affine1, Relu1, Affine2,
    Softmax-with-Loss, with W1..b2 as inputs); ``expand=False`` as one node. Yields the
    :class:`Graph`, which stays readable after the block. See the module docstring for how
    values become edges and for the cost and thread caveats.
    """
    graph = Graph(expand=expand)
    with _LOCK:
        if _ACTIVE:
            msg = "a trace is already active; xpnet records one graph at a time"
            raise RuntimeError(msg)
        _ACTIVE.append(graph)
    graph._thread = threading.get_ident()
    saved: list[tuple[type, str, Any]] = []
    try:
        for cls, method, replacement in _targets(graph):
            saved.append((cls, method, cls.__dict__.get(method, _MISSING)))
            setattr(cls, method, replacement)
        yield graph
    finally:
        for cls, method, original in reversed(saved):
            if original is _MISSING:
                delattr(cls, method)
            else:
                setattr(cls, method, original)
        with _LOCK:
            _ACTIVE.clear()


# --------------------------------------------------------------------------------------------
# The book's figures


def _numbers(backend: str | Namespace | None, device: Any) -> tuple[Callable[[float], Any], Any]:
    """A function turning Python numbers into 0-d arrays of ``backend`` (or leaving them plain
    for ``backend=None``), and the namespace."""
    if backend is None:
        return (lambda v: v), None
    xp = get_namespace(backend)
    dev = parse_device(xp, device)
    dtype = resolve_dtype(xp, None, dev)
    return (lambda v: asarray(float(v), xp, device=dev, dtype=dtype)), xp


def _apple(g: Graph, num: Callable[[float], Any]) -> None:
    apple = g.name(num(100), "apple")
    apple_num = g.name(num(2), "apple_num")
    tax = g.name(num(1.1), "tax")
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)
    g.name(price, "price")
    dapple_price, _dtax = mul_tax_layer.backward(num(1))
    mul_apple_layer.backward(dapple_price)


def _apple_orange(g: Graph, num: Callable[[float], Any]) -> None:
    apple = g.name(num(100), "apple")
    apple_num = g.name(num(2), "apple_num")
    orange = g.name(num(150), "orange")
    orange_num = g.name(num(3), "orange_num")
    tax = g.name(num(1.1), "tax")
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()
    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)
    g.name(price, "price")
    dall_price, _dtax = mul_tax_layer.backward(num(1))
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    mul_orange_layer.backward(dorange_price)
    mul_apple_layer.backward(dapple_price)


def sigmoid_from_primitives(x: Any, dout: Any = 1.0) -> tuple[Any, Any]:
    """Figure 5-19: ``y = 1 / (1 + exp(-x))`` from the "×(-1)", "exp", "+1" and "/" nodes, forward
    and backward. Returns ``(y, dx)``."""
    neg, exp, add, rec = MulLayer(), ExpLayer(), AddLayer(), ReciprocalLayer()
    y = rec.forward(add.forward(exp.forward(neg.forward(x, -1)), 1))
    d = rec.backward(dout)
    d, _ = add.backward(d)
    d = exp.backward(d)
    dx, _ = neg.backward(d)
    return y, dx


def _sigmoid(g: Graph, num: Callable[[float], Any]) -> None:
    x = g.name(num(1.0), "x")
    y, _ = sigmoid_from_primitives(x, num(1))
    g.name(y, "y")


def _two_layer_net(g: Graph, xp: Any, device: Any) -> None:
    del g  # the network names its own parts
    net = TwoLayerNet(784, 50, 10, xp=xp, device=device, seed=0)
    rng = np.random.default_rng(0)
    x = asarray(rng.random((3, 784)), net.xp, device=net.device, dtype=net.dtype)
    t = asarray(rng.integers(0, 10, size=3), net.xp, device=device_of(x))
    net.gradient(x, t)


def _example_name(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in EXAMPLES:
        msg = f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}"
        raise ValueError(msg)
    return key


def build_example(name: str, *, backend: str | Namespace | None = "numpy", device: Any = None,
                  expand: bool = True) -> Graph:
    """Trace one of the book's figures (:data:`EXAMPLES`) and return its graph.

    ``backend`` (a name or namespace) and ``device`` pick the arrays (0-d arrays for the number
    examples, float64 where the device has it); ``backend=None`` uses plain Python numbers as the
    book does (the network then uses NumPy).
    ``two-layer-net`` is a 784-50-10 TwoLayerNet on 3 random samples, drawn as its layers
    (``expand=False``: one node).
    """
    key = _example_name(name)
    num, xp = _numbers(backend, device)
    with trace(expand=expand) as g:
        if key == "apple":
            _apple(g, num)
        elif key == "apple-orange":
            _apple_orange(g, num)
        elif key == "sigmoid":
            _sigmoid(g, num)
        else:
            _two_layer_net(g, xp if xp is not None else "numpy", device)
    return g


_TITLES = {
    "apple": "Buying apples (figure 5-16)",
    "apple-orange": "Buying apples and oranges (figure 5-17)",
    "sigmoid": "The sigmoid from primitive nodes (figure 5-19)",
    "two-layer-net": "TwoLayerNet 784-50-10 on 3 samples (section 5.7)",
}


def render_example(name: str, *, fmt: str | None = "svg", out: str | Path | None = None,
                   show_values: bool = False, backend: str = "numpy") -> Path:
    """Draw one of the book's figures (:data:`EXAMPLES`) and return the path written.

    ``out`` is a file or an existing folder (default: ``<name>.<fmt>`` in the current folder).
    ``fmt=None`` takes the format from ``out``'s suffix (default SVG); a suffix that contradicts
    ``fmt`` raises ``ValueError``. Without Graphviz, SVG/PNG fall back to a ``.dot`` file and a
    one-line message on stderr.
    """
    key = _example_name(name)
    path = Path(out) if out is not None else None
    if path is not None and path.is_dir():
        path = path / f"{key}.{fmt or 'svg'}"
    fmt = _format_for(path, fmt)
    if path is None:
        path = Path(f"{key}.{fmt}")
    graph = build_example(key, backend=backend)
    return graph.render(path, fmt, show_values=show_values, title=_TITLES[key])
