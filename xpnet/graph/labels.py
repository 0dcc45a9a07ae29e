"""Values and nodes as the drawing shows them: numbers and array summaries, and the DOT
attributes of nodes and of the labels that sit on edges."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from ..backend import dtype_name, to_numpy
from .model import PLAIN_NUMBERS, Edge, Node

__all__ = ["constant_text", "edge_label", "format_value", "node_attrs"]


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
    if isinstance(value, (*PLAIN_NUMBERS, np.generic)):
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


def constant_text(value: Any) -> str:
    """A constant folded into its node's label: ``1`` for ``+1``, ``(-1)`` for ``×(-1)``."""
    text = format_value(value)
    return f"({text})" if text.startswith("-") else text


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _html_lines(text: str) -> list[str]:
    return [html.escape(line) for line in text.split("\n")] if text else []


def node_attrs(node: Node) -> str:
    """The DOT attributes of ``node``: leaves and named ends as plain text, circles with their
    name beside them, boxes with their name inside."""
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


def edge_label(edge: Edge, show_values: bool) -> str:
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
