"""Tracing: inside ``with trace()`` the registered layer classes' ``forward``/``backward`` and
every network's public passes (``predict``, ``loss``, ``gradient``) are replaced by recording
wrappers; the original functions are put back on exit, exception or not."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..conv import Convolution, Pooling
from ..layers import (
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
from ..nets.base import Network
from .model import LayerSpec
from .recorder import Graph

__all__ = ["NETWORK_PASSES", "register_layer", "trace"]

_REGISTRY: dict[type[Any], LayerSpec] = {}
_LOCK = threading.Lock()
_ACTIVE: list[Graph] = []
_MISSING = object()

#: The public methods through which a trace sees a :class:`~xpnet.nets.Network` of any class.
NETWORK_PASSES: tuple[str, ...] = ("predict", "loss", "gradient")


def _positional_names(func: Callable[..., Any]) -> tuple[str, ...]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p.name for p in inspect.signature(func).parameters.values() if p.kind in kinds]
    return tuple(params[1:])  # drop self


def _names_of(cls: type[Any], what: str, names: Sequence[str] | None,
              allowed: tuple[str, ...]) -> tuple[str, ...]:
    if names is None:
        return allowed
    names = tuple(names)
    unknown = set(names) - set(allowed)
    if unknown:
        msg = f"{what} {sorted(unknown)} are not arguments of {cls.__name__}.forward{allowed}"
        raise ValueError(msg)
    return names


def register_layer(cls: type[Any], label: str, *, inputs: Sequence[str] | None = None,
                   grads: Sequence[str] | None = None,
                   params: Sequence[tuple[str, str, str]] = (), shape: str | None = None,
                   fold_constants: bool = False) -> LayerSpec:
    """Have :func:`trace` record ``cls`` (a class with ``forward`` and ``backward``).

    ``label`` is what its node shows. ``inputs`` names the ``forward`` arguments that are graph
    inputs (default: all positional ones; Dropout leaves out ``train_flg``); ``grads`` those
    that ``backward`` returns gradients for, in order (default: all inputs); ``params`` lists
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
    taken = _names_of(cls, "inputs", inputs, _positional_names(cls.forward))
    grads = _names_of(cls, "grads", grads, taken)
    shape = shape or ("circle" if len(label) <= 3 else "box")
    if shape not in ("circle", "box"):
        msg = f"shape must be 'circle' or 'box', got {shape!r}"
        raise ValueError(msg)
    triples = tuple((str(a), str(b), str(c)) for a, b, c in params)
    spec = LayerSpec(label, taken, grads, triples, shape, fold_constants)
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
# The layers of the chapter-6 to 8 networks, so that any network's graph is connected.
register_layer(Convolution, "Convolution", params=(("W", "W", "dW"), ("b", "b", "db")))
register_layer(Pooling, "Pooling")
register_layer(Dropout, "Dropout", inputs=("x",))
register_layer(BatchNormalization, "BatchNorm", inputs=("x",),
               params=(("gamma", "gamma", "dgamma"), ("beta", "beta", "dbeta")))


@dataclass(eq=False)
class _Session:
    """The active trace: its graph, the thread it records, and how deep it is inside networks
    drawn as one node (whose inner calls are not recorded)."""

    graph: Graph
    thread: int
    depth: int = 0

    def recording(self) -> bool:
        return self.depth == 0 and threading.get_ident() == self.thread


def _layer_forward(orig: Callable[..., Any], spec: LayerSpec,
                   session: _Session) -> Callable[..., Any]:
    sig = inspect.signature(orig)

    @functools.wraps(orig)
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = orig(self, *args, **kwargs)
        if session.recording():
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            inputs = [(n, bound.arguments[n]) for n in spec.inputs]
            for name, attr, _ in spec.params:
                value = getattr(self, attr)
                session.graph.suggest_name(value, name)
                inputs.append((name, value))
            session.graph.record_forward(self, spec, inputs, out)
        return out

    return forward


def _layer_backward(orig: Callable[..., Any], spec: LayerSpec,
                    session: _Session) -> Callable[..., Any]:
    sig = inspect.signature(orig)
    first = next(iter(list(sig.parameters)[1:]), None)

    @functools.wraps(orig)
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = orig(self, *args, **kwargs)
        if session.recording():
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            dout = bound.arguments.get(first) if first is not None else None
            if len(spec.grads) == 1:
                grads = {spec.grads[0]: result}
            else:
                grads = dict(zip(spec.grads, result or (), strict=False))
            for name, _, grad_attr in spec.params:
                grads[name] = getattr(self, grad_attr, None)
            session.graph.record_backward(self, dout, grads)
        return result

    return backward


def _adopt_network(graph: Graph, net: Network, x: Any, t: Any) -> None:
    """Names from a network: its layers' keys, its parameters' names, x and t (user names
    win)."""
    for key, layer in net.layers.items():
        graph.suggest_layer_name(layer, key)
    for key, value in net.params.items():
        graph.suggest_name(value, key)
    graph.suggest_name(x, "x")
    graph.suggest_name(t, "t")


def _network_method(orig: Callable[..., Any], method: str,
                    session: _Session) -> Callable[..., Any]:
    """A network's ``predict``/``loss``/``gradient``: name its parts (expanded) or record the
    whole pass as one node with ``x``, ``t`` and every parameter as inputs."""
    sig = inspect.signature(orig)

    # functools.wraps also copies the device scope's mark (``_device_scoped``): a network class
    # defined during the trace then inherits this wrapper instead of scoping a copy of it,
    # which would outlive the trace.
    @functools.wraps(orig)
    def wrapper(self: Network, *args: Any, **kwargs: Any) -> Any:
        if not session.recording():  # not this trace's thread, or inside a one-node network
            return orig(self, *args, **kwargs)
        graph = session.graph
        bound = sig.bind(self, *args, **kwargs)
        x, t = bound.arguments.get("x"), bound.arguments.get("t")
        _adopt_network(graph, self, x, t)
        if graph.expand:
            result = orig(self, *args, **kwargs)
        else:
            session.depth += 1
            try:
                result = orig(self, *args, **kwargs)
            finally:
                session.depth -= 1
            spec = LayerSpec(type(self).__name__, ("x", "t"), (), shape="box")
            inputs = [("x", x)] if t is None else [("x", x), ("t", t)]
            inputs += list(self.params.items())
            output = self.last_loss if method == "gradient" else result
            graph.record_forward(self, spec, inputs, output)
            if method == "gradient":
                graph.record_backward(self, 1.0, dict(result))
        if method != "predict":
            graph.suggest_output_name(self.last_loss if method == "gradient" else result, "L")
        return result

    return wrapper


def _network_owners() -> list[tuple[type, str]]:
    """``(class, pass)`` for the function each live network class runs for each pass: the
    class in its MRO that defines it (:class:`Network`, a subclass, or a mixin such as the conv
    nets' ``ConvNetMixin``). Wrapping it there reaches every class that inherits it."""
    owners: dict[tuple[type, str], None] = {}
    todo, seen = [Network], set()
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        todo.extend(cls.__subclasses__())
        for method in NETWORK_PASSES:
            owner = next((c for c in cls.__mro__ if method in vars(c)), None)
            if owner is not None and inspect.isfunction(vars(owner)[method]):
                owners[(owner, method)] = None
    return list(owners)


def _targets(session: _Session) -> list[tuple[type, str, Callable[..., Any]]]:
    """(class, method, replacement) for everything a trace replaces, built from the originals."""
    targets = []
    for cls, spec in _REGISTRY.items():
        forward, backward = cls.forward, cls.backward
        targets.append((cls, "forward", _layer_forward(forward, spec, session)))
        targets.append((cls, "backward", _layer_backward(backward, spec, session)))
    for cls, method in _network_owners():
        targets.append((cls, method, _network_method(vars(cls)[method], method, session)))
    return targets


@contextlib.contextmanager
def trace(*, expand: bool = True) -> Iterator[Graph]:
    """Record the registered layers' forward and backward calls made inside the block.

    Networks (any :class:`~xpnet.nets.Network`) are seen through their ``predict``, ``loss``
    and ``gradient``: ``expand=True`` draws one as its layers (for a TwoLayerNet: Affine1,
    Relu1, Affine2, Softmax-with-Loss, with W1..b2 as inputs); ``expand=False`` as one node
    named after its class. Yields the :class:`Graph`, which stays readable after the block.
    See :mod:`xpnet.graph` for how values become edges and for the cost and thread caveats.
    """
    graph = Graph(expand=expand)
    with _LOCK:
        if _ACTIVE:
            msg = "a trace is already active; xpnet records one graph at a time"
            raise RuntimeError(msg)
        _ACTIVE.append(graph)
    session = _Session(graph, threading.get_ident())
    saved: list[tuple[type, str, Any]] = []
    try:
        for cls, method, replacement in _targets(session):
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
