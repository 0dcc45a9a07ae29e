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

Networks
--------
Any :class:`~xpnet.nets.Network` is traced through its public passes, ``predict``, ``loss`` and
``gradient``: ``trace()`` (expanded) names its layers after their keys and its parameters
after theirs (user names win) and calls the loss ``L``; ``trace(expand=False)`` draws each pass
as one node named after the network's class, with ``x``, ``t`` and every parameter as inputs.

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
Nothing is recorded and nothing costs anything when no trace is active: the layers' and
networks' methods are plain functions. ``trace()`` replaces the registered layer classes'
``forward``/``backward`` and the networks' ``predict``/``loss``/``gradient`` (where each is
defined: :class:`~xpnet.nets.Network`, a subclass that overrides one, a mixin) with recording
wrappers for the duration of the ``with`` block and puts the original functions back on exit,
exception or not.

Threads: the replacement is process wide. Calls from other threads during a trace go through the
wrappers (a small cost) but are not recorded; only one trace can be active at a time (a second
raises ``RuntimeError``), and registering layers during a trace is refused.

Modules, bottom to top (each imports only those before it): :mod:`~xpnet.graph.model`
(nodes, edges, layer specs), :mod:`~xpnet.graph.labels` (values and nodes as text),
:mod:`~xpnet.graph.render` (DOT and Graphviz), :mod:`~xpnet.graph.recorder` (:class:`Graph`),
:mod:`~xpnet.graph.tracing` (:func:`trace`, :func:`register_layer`),
:mod:`~xpnet.graph.figures` (the book's examples). ``import xpnet`` loads none of them:
``xpnet.graph`` is imported on first use.
"""

from __future__ import annotations

from .figures import EXAMPLES, build_example, render_example, sigmoid_from_primitives
from .labels import format_value
from .model import Edge, LayerSpec, Node
from .recorder import Graph
from .render import FORMATS, INSTALL_HINT, GraphvizNotFoundError, graphviz_available, render_dot
from .tracing import register_layer, trace

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
