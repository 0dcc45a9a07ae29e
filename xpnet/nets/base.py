"""What every network shares: parameters bound to layers, input checks, the forward and
backward passes, weight decay, accuracy, copies between backends.

A network subclass says only what is its own:

- ``_param_names(params, **config)`` (classmethod): the parameter names a network built from
  ``params`` holds, in order;
- ``_configure(host, **config)``: check the host parameter arrays (shapes) and the
  constructor options, and keep the options (``self.weight_decay_lambda`` ...);
- ``_build_layers(arrays)``: fill ``self.layers`` and set ``self.last_layer``; return
  ``{param name: (layer, attribute)}``, the binding that makes ``params`` the one source of truth;
- ``config()``: the constructor options that ``from_params``/``to``/``load_net`` need again.

Gradients need no code of their own: the gradient of the parameter bound to ``(layer, "W")`` is
``layer.dW`` after the backward pass (``"gamma"`` -> ``layer.dgamma`` ...), plus
``weight_decay_lambda * W`` for the names in ``self._decay_names``. Layers whose ``forward``
takes ``train_flg`` (Dropout, BatchNormalization) get it: ``False`` in ``predict``/``loss``/
``accuracy``, ``True`` in ``gradient``/``numerical_gradient``.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import array_api_compat
import numpy as np

from .._checks import batch_not_empty as check_batch
from .._checks import init_std as check_init_std
from .._checks import positive_int
from .._defaults import current_defaults
from ..backend import (
    Array,
    Namespace,
    asarray,
    backend_name,
    device_text,
    dtype_name,
    get_namespace,
    namespace,
    on_device,
    parse_device,
    register_cache,
    resolve_dtype,
    to_numpy,
)
from ..backend import device as device_of
from ..gradcheck import numerical_gradient

__all__ = ["Network", "Params", "check_batch", "check_init_std"]


def check_size(name: str, size: Any) -> int:
    """A layer width: a positive integer (Python or NumPy), else ``ValueError``."""
    return positive_int(size, name)


def names_text(names: Sequence[str]) -> str:
    """``"W1, b1, W2 and b2"``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class Params(dict[str, Array]):
    """A network's parameters by name; the one source of truth for its layers.

    ``bindings`` maps each name to ``(layer, attribute)``: assigning ``params[name] = array``
    (or ``params[name] -= lr * grad`` on a backend whose arrays cannot be changed in place) also
    rebinds that layer attribute, after checking that the new array has the old one's shape,
    dtype, backend and device. Entries cannot be added or removed.
    """

    def __init__(self, arrays: Mapping[str, Array], bindings: Mapping[str, tuple[Any, str]]):
        super().__init__(arrays)
        self._bindings = dict(bindings)
        for name, value in arrays.items():
            layer, attr = self._bindings[name]
            setattr(layer, attr, value)

    def binding(self, name: str) -> tuple[Any, str]:
        """``(layer, attribute)`` that parameter ``name`` lives in."""
        return self._bindings[name]

    def __setitem__(self, name: str, value: Array) -> None:
        if name not in self._bindings:
            msg = f"unknown parameter {name!r}; this network has {', '.join(self._bindings)}"
            raise KeyError(msg)
        old = dict.__getitem__(self, name)
        if value is not old:
            if tuple(getattr(value, "shape", ())) != tuple(old.shape):
                msg = (f"params[{name!r}] must keep shape {tuple(old.shape)}, "
                       f"got {tuple(getattr(value, 'shape', ()))}")
                raise ValueError(msg)
            namespace(value, old)  # same backend, or a clear TypeError
            if value.dtype != old.dtype:
                msg = (f"params[{name!r}] must keep dtype {old.dtype}, got {value.dtype}; "
                       "cast with xp.astype(value, dtype)")
                raise TypeError(msg)
            if device_of(value) != device_of(old):
                msg = (f"params[{name!r}] must stay on device {device_of(old)}, got an array on "
                       f"{device_of(value)}; move it with xp.asarray(value, device=net.device)")
                raise ValueError(msg)
            layer, attr = self._bindings[name]
            setattr(layer, attr, value)
        dict.__setitem__(self, name, value)

    def update(self, other: Any = (), /, **kwargs: Array) -> None:
        """Assign each entry of ``other`` (a mapping or pairs) and ``kwargs`` (as
        ``params[name] = value``: checked, layers rebound)."""
        for name, value in dict(other, **kwargs).items():
            self[name] = value

    def __delitem__(self, name: str) -> None:
        msg = "parameters cannot be removed from a network"
        raise TypeError(msg)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        msg = "parameters cannot be removed from a network"
        raise TypeError(msg)

    pop = popitem = clear = _refuse

    def setdefault(self, name: str, default: Array | None = None) -> Array:
        if name not in self:
            self[name] = default  # unknown names raise KeyError in __setitem__
        return dict.__getitem__(self, name)


_TAKES_TRAIN_FLG: dict[type, bool] = register_cache({})


def takes_train_flg(layer: Any) -> bool:
    """Whether ``layer.forward`` takes ``train_flg`` (Dropout, BatchNormalization), per type."""
    kind = type(layer)
    known = _TAKES_TRAIN_FLG.get(kind)
    if known is None:
        try:
            known = "train_flg" in inspect.signature(layer.forward).parameters
        except (TypeError, ValueError):
            known = False
        _TAKES_TRAIN_FLG[kind] = known
    return known


#: The passes a caller starts; each runs with the network's device current (CuPy: see
#: :func:`xpnet.backend.on_device`), in whichever class defines or overrides it.
_DEVICE_SCOPED = ("predict", "loss", "accuracy", "gradient", "numerical_gradient")


def _device_scoped(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run with ``self.device`` current."""
    if getattr(method, "_device_scoped", False):
        return method

    @functools.wraps(method)
    def scoped(self: Any, *args: Any, **kwargs: Any) -> Any:
        with on_device(self.device):
            return method(self, *args, **kwargs)

    # The method's own signature (train() asks whether gradient takes scale=), without a
    # __wrapped__ link: xpnet.graph's tracer marks its own wrappers that way.
    scoped.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    del scoped.__wrapped__
    scoped._device_scoped = True  # type: ignore[attr-defined]
    return scoped


def _scope_passes(cls: type) -> None:
    """Scope each pass ``cls`` defines, and each it inherits unscoped: from a mixin that is not
    a Network (the conv nets' ``ConvNetMixin``), which ``__init_subclass__`` never sees."""
    for name in _DEVICE_SCOPED:
        method = getattr(cls, name, None)
        if inspect.isfunction(method) and not getattr(method, "_device_scoped", False):
            setattr(cls, name, _device_scoped(method))


class Network:
    """Base class of xpnet's networks (see the module docstring for what a subclass adds).

    Attributes: ``xp``, ``device``, ``dtype``, ``params`` (:class:`Params`), ``layers``
    (``OrderedDict``), ``last_layer`` (also ``lastLayer``, the book's chapter-5 name),
    ``last_loss`` (the loss of the last :meth:`gradient` call, a 0-d array on the device).
    """

    #: Every subclass by class name: ``load_net`` rebuilds the class a file names.
    registry: ClassVar[dict[str, type[Network]]] = {}
    #: Strength of the L2 penalty ``0.5 * lambda * sum(W**2)`` on the ``_decay_names``.
    weight_decay_lambda: float = 0.0
    _decay_names: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Network.registry[cls.__name__] = cls
        _scope_passes(cls)

    # ----------------------------------------------------------------- what subclasses add

    @classmethod
    def _param_names(cls, params: Mapping[str, Any], **config: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def _configure(self, host: Mapping[str, np.ndarray], **config: Any) -> None:
        raise NotImplementedError

    def _build_layers(self, arrays: Mapping[str, Array]) -> dict[str, tuple[Any, str]]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The constructor options (beyond the sizes, which the parameters' shapes give) that
        :meth:`from_params` needs to rebuild this network."""
        return {}

    # ----------------------------------------------------------------- construction

    def _setup(self, host: Mapping[str, Any], *, xp: Any, device: Any, dtype: Any) -> None:
        """Put the host parameters on the backend and device, build and bind the layers.
        ``None`` for ``xp``/``device``/``dtype`` takes :func:`xpnet.defaults`' setting, if any
        (``device`` only along with the default ``xp``)."""
        chosen = current_defaults()
        if chosen is not None:
            if xp is None:
                xp = chosen.xp
                device = chosen.device if device is None else device
            dtype = chosen.dtype if dtype is None else dtype
        self.xp = get_namespace(xp)
        self.device = parse_device(self.xp, device)
        self.dtype = resolve_dtype(self.xp, dtype, self.device)
        arrays = {k: asarray(v, self.xp, device=self.device, dtype=self.dtype)
                  for k, v in host.items()}
        if self.device is None:
            self.device = device_of(next(iter(arrays.values())))
        self.layers: OrderedDict[str, Any] = OrderedDict()
        self.last_layer: Any = None
        bindings = self._build_layers(arrays)
        self._params = Params(arrays, bindings)
        self.last_loss: Array | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, xp: Any = None, device: Any = None,
                    dtype: Any = None, **config: Any) -> Any:
        """A network holding copies of ``params`` (arrays of any backend, or nested lists);
        its sizes come from the parameters' shapes, other options from ``config``."""
        names = cls._param_names(params, **config)
        missing = [k for k in names if k not in params]
        if missing:
            msg = f"params lack {', '.join(missing)}; need {names_text(names)}"
            raise KeyError(msg)
        host = {k: np.array(to_numpy(params[k]), dtype=np.float64) for k in names}
        net = cls.__new__(cls)
        net._configure(host, **config)
        net._setup(host, xp=xp, device=device, dtype=dtype)
        return net

    def to(self, xp: Any = None, *, device: Any = None, dtype: Any = None) -> Any:
        """A copy of this network on another backend, device or dtype (``None`` keeps each):
        its parameters and, where it has them, its batch-norm running statistics
        (``buffers()``). An optimizer's state belongs to the old parameters: make a new
        optimizer for the copy (or ``opt.load_state_dict(opt.state_dict())``)."""
        net = type(self).from_params(
            self.params,
            xp=self.xp if xp is None else xp,
            device=self.device if device is None and xp is None else device,
            dtype=self.dtype if dtype is None else dtype,
            **self.config(),
        )
        buffers = getattr(self, "buffers", None)
        held = {k: v for k, v in buffers().items() if v is not None} if buffers else {}
        if held:
            net.load_buffers(held)
        return net

    # ----------------------------------------------------------------- parameters

    @property
    def params(self) -> Params:
        """The parameters by name: assigning to an entry updates the layers too."""
        return self._params

    @params.setter
    def params(self, new: Mapping[str, Array]) -> None:
        self._params.update(new)

    @property
    def lastLayer(self) -> Any:
        """The book's chapter-5 name of :attr:`last_layer`."""
        return self.last_layer

    @lastLayer.setter
    def lastLayer(self, layer: Any) -> None:
        self.last_layer = layer

    @property
    def input_size(self) -> int:
        """Features per sample."""
        return self.sizes[0]

    @property
    def output_size(self) -> int:
        """Classes."""
        return self.sizes[-1]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Layer widths, input to output."""
        raise NotImplementedError

    # ----------------------------------------------------------------- checks

    def _check_array(self, value: Any, name: str) -> Namespace:
        """The one check of what the entry points are given (``predict``, ``loss``,
        ``accuracy``, ``gradient``, ``numerical_gradient``: through :meth:`_input` and
        :meth:`_labels`): ``value`` (the argument ``name``) must be an array of this network's
        backend. A list, a tuple or a number, or an array of another library, is a
        ``TypeError`` that says how to convert it, or how to move the network (which never
        moves by itself). Returns the namespace."""
        ref = next(iter(self._params.values()))
        if type(value) is type(ref):  # the common case: one type check
            return namespace(value, ref)
        if not array_api_compat.is_array_api_obj(value):
            given = (f"a Python {type(value).__name__}" if isinstance(value, (list, tuple))
                     else f"{type(value).__module__}.{type(value).__qualname__}")
            msg = (f"{name} must be an array, got {given}; convert it first: "
                   f"{name} = net.xp.asarray({name}, device=net.device) (this network holds "
                   f"{backend_name(self.xp)} arrays)")
            raise TypeError(msg)
        theirs = backend_name(array_api_compat.array_namespace(value))
        mine = backend_name(self.xp)
        if theirs != mine:
            cls, where = type(self).__name__, device_text(device_of(value))
            msg = (f"{name} is a {theirs} array (on {where}) but this {cls} holds {mine} arrays "
                   f"(on {device_text(self.device)}): a network stays on the backend and device "
                   f"it was built on (xp=, device=; NumPy by default). To compute on {theirs}, "
                   f"move the network once, before making its optimizer: "
                   f"net = net.to({theirs!r}, device={where!r}) (or build it there: "
                   f"{cls}(..., xp={theirs!r}, device={where!r})); to stay on {mine}, move "
                   f"the data: {name} = xpnet.backend.asarray({name}, net.xp, "
                   "device=net.device)")
            raise TypeError(msg)
        return namespace(value, ref)

    def _input(self, x: Array) -> Array:
        xp = self._check_array(x, "x")
        if x.dtype != self.dtype:
            if not (xp.isdtype(x.dtype, "real floating") or xp.isdtype(x.dtype, "integral")):
                msg = f"input must hold real numbers, got dtype {x.dtype}"
                raise TypeError(msg)
            x = xp.astype(x, self.dtype)
        if device_of(x) != self.device:
            msg = (f"input is on device {device_of(x)} but the network is on {self.device}; "
                   "move it once with xp.asarray(x, device=net.device)")
            raise ValueError(msg)
        return x

    def _labels(self, t: Array) -> Array:
        self._check_array(t, "t")
        if device_of(t) != self.device:
            msg = (f"labels are on device {device_of(t)} but the network is on {self.device}; "
                   "move them once with xp.asarray(t, device=net.device)")
            raise ValueError(msg)
        return t

    # ----------------------------------------------------------------- passes

    def _forward(self, x: Array, train_flg: bool) -> Array:
        """Run the layers; those whose ``forward`` takes ``train_flg`` get it."""
        for layer in self.layers.values():
            x = layer.forward(x, train_flg) if takes_train_flg(layer) else layer.forward(x)
        return x

    def _weight_decay(self) -> Array | float:
        """``0.5 * lambda * sum(W**2)`` over the decayed weights (0.0 when lambda is 0)."""
        lam = self.weight_decay_lambda
        if not lam or not self._decay_names:
            return 0.0
        xp = self.xp
        total: Any = None
        for name in self._decay_names:
            w = self._params[name]
            term = xp.sum(w * w)
            total = term if total is None else total + term
        return (0.5 * lam) * total

    def _loss(self, x: Array, t: Array, train_flg: bool) -> Array:
        x, t = self._input(x), self._labels(t)
        check_batch(x, "the loss")
        y = self._forward(x, train_flg)
        loss = self.last_layer.forward(y, t)
        if self.weight_decay_lambda and self._decay_names:
            loss = loss + self._weight_decay()
        return loss

    def predict(self, x: Array) -> Array:
        """Scores (logits) ``(N, output_size)`` for inputs ``(N, input_size)`` (or N-D)."""
        return self._forward(self._input(x), False)

    def loss(self, x: Array, t: Array) -> Array:
        """Mean cross-entropy loss (0-d array) for inputs ``x`` and labels ``t`` (one-hot
        rows or class indices), plus the weight decay ``0.5 * lambda * sum(W**2)``."""
        return self._loss(x, t, False)

    def accuracy(self, x: Array, t: Array, *, batch_size: int = 10_000) -> float:
        """Fraction of rows whose highest score is the true class, evaluated ``batch_size`` rows
        at a time (one host sync at the end)."""
        xp = self.xp
        self._check_array(x, "x")  # predict converts x batch by batch: check it whole first
        t = self._labels(t)
        if t.ndim == 2 and t.shape[1] == 1 and xp.isdtype(t.dtype, "integral"):
            t = xp.reshape(t, (t.shape[0],))  # a column of class indices, as the loss takes
        n = x.shape[0]
        if t.shape[0] != n:
            msg = f"x has {n} rows but t has {t.shape[0]}"
            raise ValueError(msg)
        if n == 0:
            msg = "accuracy of an empty batch is undefined"
            raise ValueError(msg)
        correct: Any = None
        for start in range(0, n, batch_size):
            y = xp.argmax(self.predict(x[start:min(start + batch_size, n), ...]), axis=1)
            tb = t[start:min(start + batch_size, n), ...]
            if tb.ndim != 1:
                tb = xp.argmax(tb, axis=1)
            hits = xp.sum(xp.astype(y == xp.astype(tb, y.dtype), xp.int64))
            correct = hits if correct is None else correct + hits
        return float(int(correct) / n)

    def numerical_gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """The book's numerical gradients of the loss (training mode), by central differences
        (slow: two forward passes per parameter element)."""
        def loss_w(_: Array) -> float:
            return float(self._loss(x, t, True))

        return {k: numerical_gradient(loss_w, self._params[k]) for k in self._params}

    def gradient(self, x: Array, t: Array, *, scale: float = 1.0) -> dict[str, Array]:
        """Gradients of the loss by backpropagation (training mode), weight decay included:
        ``dW + lambda * W``. The loss of this forward pass is kept in ``self.last_loss``
        (a 0-d array on the device), so logging it costs no second pass.

        ``scale`` (a Python float) returns the gradients of ``scale * loss`` at the cost of the
        unscaled ones (the factor enters once, at the top of the backward pass): a trainer
        passes ``scale=lr`` and updates with ``p -= g``, in place, with no ``lr * g``
        temporary. ``last_loss`` is the unscaled loss either way.
        """
        scale = float(scale)
        self.last_loss = self._loss(x, t, True)
        dout = self.last_layer.backward(scale)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        grads = {}
        for name in self._params:
            layer, attr = self._params.binding(name)
            grads[name] = getattr(layer, "d" + attr)
        if self.weight_decay_lambda:
            decay = scale * self.weight_decay_lambda
            for name in self._decay_names:
                grads[name] = grads[name] + decay * self._params[name]
        return grads

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.config().items())
        sizes = ", ".join(map(str, self._repr_sizes()))
        return (f"{type(self).__name__}({sizes}{options}, xp={backend_name(self.xp)!r}, "
                f"device={self.device!r}, dtype={dtype_name(self.dtype)!r})")

    def _repr_sizes(self) -> tuple[Any, ...]:
        return self.sizes


_scope_passes(Network)
