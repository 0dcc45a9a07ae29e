"""The book's figures of chapter 5, traced and drawn: buying apples (5-16), apples and oranges
(5-17), the sigmoid from primitive nodes (5-19) and the two-layer network (section 5.7)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..backend import Namespace, asarray, get_namespace, parse_device, resolve_dtype
from ..backend import device as device_of
from ..layers import AddLayer, ExpLayer, MulLayer, ReciprocalLayer
from ..nets import TwoLayerNet
from .recorder import Graph
from .render import format_for
from .tracing import trace

__all__ = ["EXAMPLES", "build_example", "render_example", "sigmoid_from_primitives"]

#: The book's figures that :func:`render_example` draws.
EXAMPLES: tuple[str, ...] = ("apple", "apple-orange", "sigmoid", "two-layer-net")

_TITLES = {
    "apple": "Buying apples (figure 5-16)",
    "apple-orange": "Buying apples and oranges (figure 5-17)",
    "sigmoid": "The sigmoid from primitive nodes (figure 5-19)",
    "two-layer-net": "TwoLayerNet 784-50-10 on 3 samples (section 5.7)",
}


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
    fmt = format_for(path, fmt)
    if path is None:
        path = Path(f"{key}.{fmt}")
    graph = build_example(key, backend=backend)
    return graph.render(path, fmt, show_values=show_values, title=_TITLES[key])
