""":class:`Graph`: the record a trace fills. It names values and layers, turns recorded layer
calls into nodes and edges (see :mod:`xpnet.graph` for how values become edges) and draws
itself through :mod:`xpnet.graph.render`.

It knows nothing of layer classes or networks: :mod:`xpnet.graph.tracing` calls
:meth:`Graph.record_forward`, :meth:`Graph.record_backward` and the ``suggest_*`` methods.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .labels import constant_text
from .model import Edge, LayerSpec, Node, is_plain_number
from .render import dot_source, render_dot

__all__ = ["Graph"]


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
    """A recorded computational graph. Made by :func:`~xpnet.graph.trace`; read it with
    :meth:`nodes` and :meth:`edges`, draw it with :meth:`to_dot` and :meth:`render`.

    ``expand`` is the trace's choice for networks: drawn as their layers (``True``) or as one
    node each (``False``).
    """

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
        elif is_plain_number(value):
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

    def suggest_name(self, value: Any, label: str) -> None:
        """Name the input ``value`` ``label`` unless it has a name or is an output already, or is
        a plain number (the tracer's defaults: ``x``, ``t``, a network's ``W1`` ...)."""
        key = id(value)
        if (value is None or is_plain_number(value) or key in self._value_names
                or key in self._producer):
            return
        self._keep.append(value)
        self._value_names[key] = label
        leaf = self._leaf_of.get(key)
        if leaf is not None and leaf.name is None:
            leaf.label = leaf.name = label

    def suggest_output_name(self, value: Any, label: str) -> None:
        """Name a recorded output ``label`` unless it has a name (a network's loss: ``L``)."""
        key = id(value)
        if key in self._producer and key not in self._value_names:
            self.name(value, label)

    def suggest_layer_name(self, layer: Any, label: str) -> None:
        """Name ``layer`` ``label`` unless it has a name (a network's layer keys)."""
        if id(layer) not in self._layer_names:
            self._keep.append(layer)
            self._layer_names[id(layer)] = label

    # ---- recording ------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}{self._ids}"

    def _new_leaf(self, name: str | None) -> Node:
        leaf = Node(self._new_id("in"), "input", name if name is not None else "", name=name,
                    shape="plaintext")
        self._leaves.append(leaf)
        return leaf

    def _source(self, value: Any, spec: LayerSpec, all_plain: bool) -> Node | None:
        """The node ``value`` comes from: a named plain number's leaf, the newest layer call
        that returned it, its array leaf, a constant (``None``) or a new leaf."""
        key = id(value)
        if is_plain_number(value) and self._pending.get(key):
            return self._new_leaf(self._pending[key].pop(0))
        if key in self._producer:
            producer = self._producer[key]
            producer.consumed = True
            return producer.node
        if not is_plain_number(value):
            source = self._leaf_of.get(key)
            if source is None:
                source = self._leaf_of[key] = self._new_leaf(self._value_names.get(key))
            return source
        if spec.fold_constants and not all_plain:
            return None
        return self._new_leaf(None)

    def record_forward(self, owner: Any, spec: LayerSpec, inputs: Sequence[tuple[str, Any]],
                       output: Any) -> None:
        """Record that ``owner`` (a layer or network drawn as ``spec``) took ``inputs``
        (``(name, value)`` pairs) and returned ``output``."""
        node = Node(self._new_id("op"), "layer", spec.label,
                    name=self._layer_names.get(id(owner)), layer=owner, shape=spec.shape)
        all_plain = all(is_plain_number(v) for _, v in inputs)
        sources = [self._source(value, spec, all_plain) for _, value in inputs]
        constants = [v for (_, v), s in zip(inputs, sources, strict=True) if s is None]
        if constants:
            node.label = spec.label + "".join(constant_text(c) for c in constants)
        call = _Call(node, owner, [n for n, _ in inputs], [v for _, v in inputs], sources, output,
                     grads=[None] * len(inputs))
        self._calls.append(call)
        self._keep.append(owner)
        self._producer[id(output)] = call
        self._last_call[id(owner)] = call

    def record_backward(self, owner: Any, dout: Any, grads: dict[str, Any]) -> None:
        """Record ``owner``'s backward: it took ``dout`` and gave ``grads`` by input name. A
        backward whose forward ran before the trace began is ignored."""
        call = self._last_call.get(id(owner))
        if call is None:
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
        return dot_source(self.nodes(), self.edges(), show_values=show_values, title=title,
                          legend=legend)

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
