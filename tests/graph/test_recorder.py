"""xpnet.graph.recorder: how recorded calls become nodes and edges, and how values and layers
are named."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.graph import sigmoid_from_primitives, trace
from xpnet.layers import AddLayer, Affine, MulLayer, Relu, Sigmoid

from .dot_text import APPLE_EDGES, edge_set, parse_dot


def test_tracing_the_book_code_verbatim() -> None:
    """The book's own code inside a trace, leaves named up front."""
    with trace() as g:
        apple, apple_num, tax = g.name(100, "apple"), g.name(2, "apple_num"), g.name(1.1, "tax")
        mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
        apple_price = mul_apple_layer.forward(apple, apple_num)
        price = mul_tax_layer.forward(apple_price, tax)
        g.name(price, "price")
        dprice = 1
        dapple_price, _dtax = mul_tax_layer.backward(dprice)
        _dapple, _dapple_num = mul_apple_layer.backward(dapple_price)
    assert edge_set(g.to_dot()) == APPLE_EDGES


def test_named_intermediate_value_is_drawn_on_its_edge() -> None:
    with trace() as g:
        apple_price = MulLayer().forward(g.name(100, "apple"), g.name(2, "apple_num"))
        g.name(apple_price, "apple_price")
        MulLayer().forward(apple_price, g.name(1.1, "tax"))
    (edge,) = [e for e in g.edges() if e.tail.kind == "layer" and e.head.kind == "layer"]
    assert edge.name == "apple_price"
    assert '<FONT COLOR="gray40">apple_price</FONT> 200' in g.to_dot()


def test_small_int_names_given_first_make_leaves() -> None:
    """CPython shares small ints: an output 2 and a later literal 2 are one object. A name given
    before use makes the literal a leaf; without one, identity links it to the output."""
    with trace() as g:
        g.name(2, "two")
        m1, m2 = MulLayer(), AddLayer()
        a = m1.forward(1, 2)  # uses the named 2 as a leaf, returns the shared small int 2
        m2.forward(a, 5)
    edges = {(e.tail.label, e.head.label, e.value) for e in g.edges()}
    assert ("two", "×", 2) in edges
    assert ("×", "+", 2) in edges  # the output reached the AddLayer as one edge


def test_unnamed_plain_numbers_get_one_leaf_per_use() -> None:
    with trace() as g:
        MulLayer().forward(3.0, 3.0)
    leaves = [n for n in g.nodes() if n.kind == "input"]
    assert len(leaves) == 2


def test_array_used_twice_is_one_leaf() -> None:
    x = np.linspace(-1.0, 1.0, 4)
    with trace() as g:
        g.name(x, "x")
        a = Relu().forward(x)
        b = Sigmoid().forward(x)
        AddLayer().forward(a, b)
    leaves = [n for n in g.nodes() if n.kind == "input"]
    assert [n.label for n in leaves] == ["x"]
    assert sum(e.tail is leaves[0] for e in g.edges()) == 2


def test_constants_of_array_ops_fold_into_the_node(xp: Any) -> None:
    device = xp.device
    x = xp.asarray(1.0, dtype=xp.float64, device=device)
    with trace() as g:
        g.name(x, "x")
        y, _ = sigmoid_from_primitives(x)
        g.name(y, "y")
    ops = [n.label for n in g.nodes() if n.kind == "layer"]
    assert ops == ["×(-1)", "exp", "+1", "/"]
    edges = edge_set(g.to_dot())
    y_ = 1 / (1 + np.exp(-1.0))
    assert ("/:" + f"{y_:.6g}", "y", f"{y_:.6g}", "1") in edges
    assert ("x", "×(-1):-1", "1", f"{y_ * (1 - y_):.6g}") in edges


def test_named_layers_and_forward_only_graphs() -> None:
    relu, affine = Relu(), Affine(np.ones((2, 3)), np.zeros(3))
    with trace() as g:
        g.name_layer(relu, "relu_1")
        h = relu.forward(np.asarray([[1.0, -1.0]]))
        affine.forward(h)
        g.name_layer(affine, "fc")  # naming after the call works too
    dot = g.to_dot()
    assert 'label="fc"' in dot  # boxes show the name
    assert 'label="ReLU"' not in dot
    assert 'label="relu_1"' in dot
    labels = {e.tail.label: e for e in g.edges() if e.head.label == "Affine"}
    assert set(labels) == {"ReLU", "W", "b"}  # a lone Affine's parameters are named W and b
    assert all(e.grad is None for e in g.edges())  # no backward ran: forward values only
    assert all(e["bwd"] == "" for e in parse_dot(dot))

