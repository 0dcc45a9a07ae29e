"""xpnet.graph.tracing: methods replaced only inside a trace, registration, networks.

Backend tests take the ``be`` fixture of tests/conftest.py (every installed backend)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from xpnet.graph import register_layer, trace
from xpnet.graph import tracing as graph_tracing
from xpnet.layers import (
    AddLayer,
    Affine,
    ExpLayer,
    MulLayer,
    ReciprocalLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from xpnet.nets import TwoLayerNet

from .dot_text import parse_dot

_PATCHED = [(cls, m) for cls in (AddLayer, MulLayer, Relu, Sigmoid, Affine, SoftmaxWithLoss,
                                 ExpLayer, ReciprocalLayer) for m in ("forward", "backward")]
_PATCHED += [(TwoLayerNet, m) for m in ("predict", "loss", "gradient")]


def _originals() -> dict[tuple[type, str], Any]:
    return {(cls, m): cls.__dict__[m] for cls, m in _PATCHED}


def test_methods_are_replaced_only_inside_the_trace() -> None:
    before = _originals()
    with trace():
        for (cls, m), func in before.items():
            assert cls.__dict__[m] is not func, f"{cls.__name__}.{m} is not traced"
            assert cls.__dict__[m].__wrapped__ is func
    assert _originals() == before
    for (cls, m), func in before.items():
        assert cls.__dict__[m] is func
        assert not hasattr(func, "__wrapped__")


def test_methods_restored_after_an_exception() -> None:
    before = _originals()
    def fail() -> None:
        with trace():
            MulLayer().forward(1, 2)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail()
    assert _originals() == before
    with trace() as g:  # and a new trace can start
        MulLayer().forward(1, 2)
    assert len(g.edges()) == 3


def test_nested_trace_refused_and_outer_still_restores() -> None:
    before = _originals()
    with trace(), pytest.raises(RuntimeError, match="already active"), trace():
        pass
    assert _originals() == before


def test_inherited_methods_are_restored_by_deleting() -> None:
    class Doubler(MulLayer):
        pass

    register_layer(Doubler, "2×")
    try:
        assert "forward" not in Doubler.__dict__
        with trace() as g:
            Doubler().forward(3.0, 4.0)
            MulLayer().forward(1.0, 2.0)
        assert "forward" not in Doubler.__dict__
        assert "backward" not in Doubler.__dict__
        assert [n.label for n in g.nodes() if n.kind == "layer"] == ["2×", "×"]
    finally:
        graph_tracing._REGISTRY.pop(Doubler)


def test_nothing_recorded_outside_or_from_other_threads() -> None:
    layer = MulLayer()
    with trace() as g:
        worker = threading.Thread(target=lambda: layer.forward(2.0, 3.0))
        worker.start()
        worker.join()
    layer.forward(4.0, 5.0)
    layer.backward(1.0)
    assert g.nodes() == []
    assert g.edges() == []


def test_register_layer_checks_its_arguments() -> None:
    class NoBackward:
        def forward(self, x: Any) -> Any:
            return x

    with pytest.raises(TypeError, match="backward"):
        register_layer(NoBackward, "id")
    with pytest.raises(ValueError, match="not arguments"):
        register_layer(MulLayer, "×", grads=("z",))
    with trace(), pytest.raises(RuntimeError, match="trace is active"):
        register_layer(MulLayer, "×")


def _net_graph(be: Any, expand: bool) -> Any:
    xp, device = be.xp, be.device
    net = TwoLayerNet(6, 4, 3, xp=xp, device=device, seed=1)
    rng = np.random.default_rng(2)
    x = xp.asarray(rng.random((2, 6)), dtype=net.dtype, device=net.device)
    t = xp.asarray(np.array([0, 2]), device=net.device)
    with trace(expand=expand) as g:
        grads = net.gradient(x, t)
    return g, grads


def test_two_layer_net_expanded(be: Any) -> None:
    g, grads = _net_graph(be, expand=True)
    edges = {(e["tail"].split(":")[0], e["head"].split(":")[0]): e for e in parse_dot(g.to_dot())}
    assert set(edges) == {
        ("x", "Affine1"), ("W1", "Affine1"), ("b1", "Affine1"), ("Affine1", "Relu1"),
        ("Relu1", "Affine2"), ("W2", "Affine2"), ("b2", "Affine2"),
        ("Affine2", "Softmax-with-Loss"), ("t", "Softmax-with-Loss"), ("Softmax-with-Loss", "L"),
    }
    assert edges[("W1", "Affine1")]["fwd"] == "(6, 4) float64"
    assert edges[("W1", "Affine1")]["bwd"] == "(6, 4) float64"
    assert edges[("x", "Affine1")]["bwd"] == ""  # the first layer skips dx
    assert edges[("t", "Softmax-with-Loss")]["bwd"] == ""
    assert edges[("Softmax-with-Loss", "L")]["bwd"] == "1"
    (w1,) = [e for e in g.edges() if e.tail.label == "W1"]
    assert w1.grad is grads["W1"]


def test_two_layer_net_as_one_node(be: Any) -> None:
    g, grads = _net_graph(be, expand=False)
    assert [n.label for n in g.nodes() if n.kind == "layer"] == ["TwoLayerNet"]
    edges = {e.tail.label: e for e in g.edges() if e.head.kind == "layer"}
    assert set(edges) == {"x", "t", "W1", "b1", "W2", "b2"}
    for k in ("W1", "b1", "W2", "b2"):
        assert edges[k].grad is grads[k]
    (loss,) = [e for e in g.edges() if e.head.kind == "output"]
    assert loss.head.label == "L"
    assert loss.grad == 1.0

