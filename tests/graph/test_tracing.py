"""xpnet.graph.tracing: methods replaced only inside a trace, registration, networks.

Backend tests take the ``xp`` fixture (xpnet.testing: every installed backend)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import numpy as np
import pytest

from xpnet.conv import Convolution, Pooling
from xpnet.graph import register_layer, trace
from xpnet.graph import tracing as graph_tracing
from xpnet.graph.tracing import NETWORK_PASSES
from xpnet.layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Dropout,
    ExpLayer,
    MulLayer,
    ReciprocalLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from xpnet.nets import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    Network,
    SimpleConvNet,
    TwoLayerNet,
)

from .dot_text import parse_dot

_NETWORKS = (TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)

# Where each traced method is defined: on the layer classes, and the networks' passes on Network
# or on the classes that define their own (MultiLayerNetExtend; the conv nets get device-scoped
# copies of ConvNetMixin's).
_PATCHED = [(cls, m) for cls in (AddLayer, MulLayer, Relu, Sigmoid, Affine, SoftmaxWithLoss,
                                 ExpLayer, ReciprocalLayer, Convolution, Pooling, Dropout,
                                 BatchNormalization) for m in ("forward", "backward")]
_PATCHED += [(cls, m) for cls in (Network, *_NETWORKS) for m in NETWORK_PASSES if m in vars(cls)]
# As callers reach them: TwoLayerNet.predict is Network's, and is traced all the same.
_SEEN = [(cls, m) for cls in _NETWORKS for m in ("predict", "loss", "gradient")]


def _originals() -> dict[tuple[type, str], Any]:
    return {(cls, m): cls.__dict__[m] for cls, m in _PATCHED}


def _seen() -> dict[tuple[type, str], Any]:
    return {(cls, m): getattr(cls, m) for cls, m in _SEEN}


def test_methods_are_replaced_only_inside_the_trace() -> None:
    before = _originals()
    seen = _seen()
    with trace():
        for (cls, m), func in before.items():
            assert cls.__dict__[m] is not func, f"{cls.__name__}.{m} is not traced"
            assert cls.__dict__[m].__wrapped__ is func
        for (cls, m), func in seen.items():
            assert getattr(cls, m) is not func, f"{cls.__name__}.{m} is not traced"
            assert getattr(cls, m).__wrapped__ is func
    assert _originals() == before
    assert _seen() == seen
    for (cls, m), func in before.items():
        assert cls.__dict__[m] is func
        assert not hasattr(func, "__wrapped__")
    for (cls, m), func in seen.items():
        assert getattr(cls, m) is func
        assert not hasattr(func, "__wrapped__")


def test_two_layer_net_has_no_passes_of_its_own_for_the_tracer() -> None:
    assert not {"predict", "loss", "gradient"} & set(vars(TwoLayerNet))
    assert (Network, "predict") in _PATCHED
    assert all(getattr(getattr(cls, m), "_device_scoped", False) for cls, m in _SEEN)


def test_a_network_class_made_during_a_trace_keeps_the_real_passes() -> None:
    """The device scope of a new class must not wrap the tracer's wrapper, which would stay
    on the class after the trace."""
    with trace():
        class Late(TwoLayerNet):
            pass

    for m in ("predict", "loss", "gradient", "accuracy"):
        assert getattr(Late, m) is getattr(Network, m)


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


def _net_graph(xp: Any, expand: bool) -> Any:
    device = xp.device
    net = TwoLayerNet(6, 4, 3, xp=xp.namespace, device=device, seed=1)
    rng = np.random.default_rng(2)
    x = xp.asarray(rng.random((2, 6)), dtype=net.dtype, device=net.device)
    t = xp.asarray(np.array([0, 2]), device=net.device)
    with trace(expand=expand) as g:
        grads = net.gradient(x, t)
    return g, grads


def test_two_layer_net_expanded(xp: Any) -> None:
    g, grads = _net_graph(xp, expand=True)
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


def test_two_layer_net_as_one_node(xp: Any) -> None:
    g, grads = _net_graph(xp, expand=False)
    assert [n.label for n in g.nodes() if n.kind == "layer"] == ["TwoLayerNet"]
    edges = {e.tail.label: e for e in g.edges() if e.head.kind == "layer"}
    assert set(edges) == {"x", "t", "W1", "b1", "W2", "b2"}
    for k in ("W1", "b1", "W2", "b2"):
        assert edges[k].grad is grads[k]
    (loss,) = [e for e in g.edges() if e.head.kind == "output"]
    assert loss.head.label == "L"
    assert loss.grad == 1.0



def test_register_layer_checks_its_inputs() -> None:
    with pytest.raises(ValueError, match="not arguments"):
        register_layer(Dropout, "Dropout", inputs=("y",))
    with pytest.raises(ValueError, match="not arguments"):
        register_layer(Dropout, "Dropout", inputs=("x",), grads=("train_flg",))


# --------------------------------------------------------------------------------------------
# Any network, through its public passes

_SMALL = {
    "TwoLayerNet": lambda **kw: TwoLayerNet(64, 5, 3, **kw),
    "MultiLayerNet": lambda **kw: MultiLayerNet(64, [5, 4], 3, activation="sigmoid", **kw),
    "MultiLayerNetExtend": lambda **kw: MultiLayerNetExtend(
        64, [5, 4], 3, use_batchnorm=True, use_dropout=True, **kw),
    "SimpleConvNet": lambda **kw: SimpleConvNet(
        (1, 8, 8), {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1}, 5, 3, **kw),
    "DeepConvNet": lambda **kw: DeepConvNet(
        (1, 8, 8), *[{"filter_num": 2, "filter_size": 3, "pad": 1, "stride": 1}] * 6,
        hidden_size=5, output_size=3, **kw),
}


def _network_graph(name: str, expand: bool, method: str = "gradient",
                   **kw: Any) -> tuple[Any, Any, Any]:
    net = _SMALL[name](seed=1, **kw)
    rng = np.random.default_rng(2)
    shape = (3, 1, 8, 8) if "Conv" in name else (3, 64)
    x = net.xp.asarray(rng.random(shape), dtype=net.dtype, device=net.device)
    t = net.xp.asarray(np.array([0, 2, 1]), device=net.device)
    with trace(expand=expand) as g:
        result = net.predict(x) if method == "predict" else getattr(net, method)(x, t)
    return g, net, result


@pytest.mark.parametrize("name", list(_SMALL))
def test_every_network_expanded_is_one_chain_of_its_layers(name: str) -> None:
    g, net, grads = _network_graph(name, expand=True)
    layers = [*net.layers.values(), net.last_layer]
    nodes = [n for n in g.nodes() if n.kind == "layer"]
    assert [n.layer for n in nodes] == layers  # every layer recorded, once, in order
    assert [n.name for n in nodes[:-1]] == list(net.layers)  # named after the layers' keys
    for a, b in itertools.pairwise(nodes):
        assert any(e.tail is a and e.head is b for e in g.edges()), f"{a.name} -/-> {b.name}"
    leaves = {n.label: n for n in g.nodes() if n.kind == "input"}
    assert set(leaves) == {"x", "t", *net.params}
    for key in net.params:
        (edge,) = [e for e in g.edges() if e.tail is leaves[key]]
        assert edge.value is net.params[key]
        assert edge.grad is grads[key]
    (loss,) = [e for e in g.edges() if e.head.kind == "output"]
    assert loss.head.label == "L"
    assert loss.value is net.last_loss
    assert loss.grad == 1.0


@pytest.mark.parametrize("name", list(_SMALL))
def test_every_network_as_one_node(name: str) -> None:
    g, net, grads = _network_graph(name, expand=False)
    assert [n.label for n in g.nodes() if n.kind == "layer"] == [type(net).__name__]
    edges = {e.tail.label: e for e in g.edges() if e.head.kind == "layer"}
    assert set(edges) == {"x", "t", *net.params}
    for k in net.params:
        assert edges[k].grad is grads[k]
    (loss,) = [e for e in g.edges() if e.head.kind == "output"]
    assert loss.head.label == "L"
    assert loss.grad == 1.0


@pytest.mark.parametrize("method", ["predict", "loss"])
@pytest.mark.parametrize("name", ["MultiLayerNetExtend", "SimpleConvNet"])
def test_passes_a_class_defines_itself_are_traced(name: str, method: str) -> None:
    """MultiLayerNetExtend defines its own predict/loss, the conv nets inherit them from a
    mixin: both are seen, as one node or as layers."""
    g, net, result = _network_graph(name, expand=False, method=method)
    (node,) = [n for n in g.nodes() if n.kind == "layer"]
    assert node.label == type(net).__name__
    (out,) = [e for e in g.edges() if e.head.kind == "output"]
    assert out.value is result
    assert out.head.label == ("L" if method == "loss" else "")
    g, net, result = _network_graph(name, expand=True, method=method)
    assert len([n for n in g.nodes() if n.kind == "layer"]) == len(net.layers) + (
        method == "loss")


def test_an_override_that_calls_super_is_recorded_once() -> None:
    class Wrapped(TwoLayerNet):
        def loss(self, x: Any, t: Any) -> Any:
            return super().loss(x, t)

    own = vars(Wrapped)["loss"]
    net = Wrapped(6, 4, 3, seed=1)
    x, t = np.random.default_rng(2).random((2, 6)), np.array([0, 2])
    with trace(expand=False) as g:
        assert vars(Wrapped)["loss"].__wrapped__ is own
        net.loss(x, t)
    assert [n.label for n in g.nodes() if n.kind == "layer"] == ["Wrapped"]
    with trace() as g:
        net.loss(x, t)
    assert [n.name for n in g.nodes() if n.kind == "layer"] == [
        "Affine1", "Relu1", "Affine2", None]
    assert vars(Wrapped)["loss"] is own
    assert own._device_scoped


@pytest.mark.parametrize("expand", [True, False])
@pytest.mark.parametrize("name", ["TwoLayerNet", "SimpleConvNet"])
def test_traced_passes_keep_the_device_scope(any_cupy: Any, name: str, expand: bool) -> None:
    """On the second CuPy device, traced passes still make it current (the fake CuPy raises on
    work that lands on device 0) and leave the caller's device as it was."""
    cp = any_cupy
    if cp.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one CUDA device here: this test needs two")
    g, _, grads = _network_graph(name, expand, xp="cupy", device="cuda:1")
    assert cp.cuda.Device().id == 0
    assert all(grad.device.id == 1 for grad in grads.values())
    assert len(g.edges()) > 2
