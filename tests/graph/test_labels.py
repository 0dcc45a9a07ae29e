"""xpnet.graph.labels: values as the drawing prints them, and the labels on nodes and edges."""

from __future__ import annotations

from typing import Any

import numpy as np

from xpnet.graph import format_value, trace
from xpnet.layers import MulLayer, Relu

from .dot_text import parse_dot


def test_format_value_numbers() -> None:
    assert format_value(220.00000000000003) == "220"
    assert format_value(110.00000000000001) == "110"
    assert format_value(1.1) == "1.1"
    assert format_value(2) == "2"
    assert format_value(-0.0) == "0"
    assert format_value(np.float64(3.3000000000000003)) == "3.3"
    assert format_value(None) == ""
    assert format_value(True) == "True"


def test_format_value_arrays(xp: Any) -> None:
    device = xp.device
    big = xp.zeros((100, 50), dtype=xp.float32, device=device)
    assert format_value(big) == "(100, 50) float32"
    assert format_value(big, show_values=True) == "(100, 50) float32"  # too big to list
    small = xp.asarray([1.5, -2.0, 0.25], dtype=xp.float64, device=device)
    assert format_value(small) == "(3,) float64"
    assert format_value(small, show_values=True) == "(3,) float64\n[ 1.5 , -2.  ,  0.25]"
    assert format_value(xp.asarray(715.0000000000001, dtype=xp.float64, device=device)) == "715"
    assert format_value(xp.asarray([3], dtype=xp.int64, device=device)) == "(1,) int64"


def test_show_values_puts_lines_on_both_sides_of_the_rule() -> None:
    x = np.asarray([1.0, -1.0])
    with trace() as g:
        r = Relu()
        r.forward(x)
        r.backward(np.asarray([0.5, 0.5]))
    (edge_in, _) = parse_dot(g.to_dot(show_values=True))
    assert edge_in["fwd"] == "(2,) float64\n[ 1., -1.]"
    assert edge_in["bwd"] == "(2,) float64\n[0.5, 0. ]"


def test_labels_are_escaped() -> None:
    with trace() as g:
        MulLayer().forward(g.name(1.0, 'a<b & "c"'), 2.0)
    dot = g.to_dot(title="x < y")
    assert 'label="a<b & \\"c\\""' in dot
    assert "x &lt; y" in dot

