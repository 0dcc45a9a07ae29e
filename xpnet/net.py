"""TwoLayerNet: the book's two-layer network, on any backend and device."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .backend import (
    Array,
    Namespace,
    asarray,
    backend_name,
    dtype_name,
    get_namespace,
    namespace,
    parse_device,
    resolve_dtype,
    to_numpy,
)
from .backend import device as device_of
from .gradcheck import numerical_gradient
from .layers import Affine, Relu, SoftmaxWithLoss

__all__ = ["Params", "TwoLayerNet"]


def check_param_shapes(shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Raise ``ValueError`` unless W1 ``(in, hidden)``, b1 ``(hidden,)``, W2 ``(hidden, out)``
    and b2 ``(out,)`` fit together."""
    shapes = {k: tuple(v) for k, v in shapes.items()}
    fits = (len(shapes["W1"]) == 2 and len(shapes["W2"]) == 2
            and shapes["b1"] == shapes["W1"][1:] and shapes["W2"][:1] == shapes["W1"][1:]
            and shapes["b2"] == shapes["W2"][1:])
    if not fits:
        msg = (f"parameter shapes do not fit together: {shapes}; expected W1 (in, hidden), "
               "b1 (hidden,), W2 (hidden, out), b2 (out,)")
        raise ValueError(msg)


def check_init_std(value: Any) -> float:
    """``value`` as a Python float if it is a finite real number >= 0, else a clear error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        msg = (f"weight_init_std must be a finite number >= 0 (e.g. 0.01), got "
               f"{type(value).__name__} {value!r}")
        raise TypeError(msg)
    std = float(value)
    if not (math.isfinite(std) and std >= 0):
        msg = f"weight_init_std must be a finite number >= 0 (e.g. 0.01), got {std!r}"
        raise ValueError(msg)
    return std


def check_batch(x: Array, what: str) -> None:
    """Refuse an empty batch, whose mean loss (a division by 0 rows) is undefined."""
    if x.ndim >= 1 and x.shape[0] == 0:
        msg = f"{what} of an empty batch is undefined: x has 0 rows; pass at least one sample"
        raise ValueError(msg)


class Params(dict):
    """The network's parameters by name; the one source of truth for the layers.

    Assigning ``params[name] = array`` (or ``params[name] -= lr * grad`` on a backend whose arrays
    cannot be changed in place) also rebinds the layer attribute that uses it, after checking
    that the new array has the old one's shape and dtype.
    """

    def __init__(self, arrays: Mapping[str, Array], bindings: Mapping[str, tuple[Any, str]]):
        super().__init__(arrays)
        self._bindings = dict(bindings)
        for name, value in arrays.items():
            layer, attr = self._bindings[name]
            setattr(layer, attr, value)

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

    def update(self, other: Mapping[str, Array] | Iterable[tuple[str, Array]] = (),
               **kwargs: Array) -> None:
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


class TwoLayerNet:
    """``Affine -> Relu -> Affine -> SoftmaxWithLoss``, as in the book (section 5.7).

    Parameters
    ----------
    input_size, hidden_size, output_size
        Layer widths, e.g. ``784, 50, 10`` for MNIST.
    weight_init_std
        Standard deviation of the initial weights (biases start at zero).
    xp
        Backend: a name (``"numpy"``, ``"cupy"``, ``"torch"``, ``"array_api_strict"``), an array
        module or namespace. Default NumPy.
    device
        Where the parameters live (``"cuda:0"``, a CuPy or strict device ...). Default: the
        backend's default device.
    dtype
        ``"float32"`` or ``"float64"``. Default float64 (the book's), or float32 on a device
        without float64.
    seed
        Seed of the host NumPy generator that draws the initial weights; the same seed gives
        the same network on every backend.

    Inputs of another floating or integer dtype are cast to the network's dtype.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        xp: Namespace | str | None = None,
        device: Any = None,
        dtype: Any = None,
        seed: int | None = None,
    ) -> None:
        for name, size in (("input_size", input_size), ("hidden_size", hidden_size),
                           ("output_size", output_size)):
            if not isinstance(size, (int, np.integer)) or size < 1:
                msg = f"{name} must be a positive integer, got {size!r}"
                raise ValueError(msg)
        weight_init_std = check_init_std(weight_init_std)
        rng = np.random.default_rng(seed)
        host = {
            "W1": weight_init_std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }
        self._build(host, xp=xp, device=device, dtype=dtype)

    def _build(self, host: Mapping[str, Any], *, xp: Any, device: Any, dtype: Any) -> None:
        self.xp = get_namespace(xp)
        self.device = parse_device(self.xp, device)
        self.dtype = resolve_dtype(self.xp, dtype, self.device)
        arrays = {k: asarray(v, self.xp, device=self.device, dtype=self.dtype)
                  for k, v in host.items()}
        if self.device is None:
            self.device = device_of(arrays["W1"])
        self.layers: OrderedDict[str, Any] = OrderedDict()
        # The first layer's input is data: no gradient is ever needed for it.
        self.layers["Affine1"] = Affine(arrays["W1"], arrays["b1"], input_grad=False)
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(arrays["W2"], arrays["b2"])
        self.lastLayer = SoftmaxWithLoss()
        self._params = Params(arrays, {
            "W1": (self.layers["Affine1"], "W"), "b1": (self.layers["Affine1"], "b"),
            "W2": (self.layers["Affine2"], "W"), "b2": (self.layers["Affine2"], "b"),
        })
        self.last_loss: Array | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, xp: Any = None, device: Any = None,
                    dtype: Any = None) -> TwoLayerNet:
        """A network holding copies of ``params`` (W1, b1, W2, b2 from any backend)."""
        missing = {"W1", "b1", "W2", "b2"} - set(params)
        if missing:
            msg = f"params lack {', '.join(sorted(missing))}; need W1, b1, W2 and b2"
            raise KeyError(msg)
        names = ("W1", "b1", "W2", "b2")
        host = {k: np.array(to_numpy(params[k]), dtype=np.float64) for k in names}
        check_param_shapes({k: host[k].shape for k in names})
        net = cls.__new__(cls)
        net._build(host, xp=xp, device=device, dtype=dtype)
        return net

    def to(self, xp: Any = None, *, device: Any = None, dtype: Any = None) -> TwoLayerNet:
        """A copy of this network on another backend, device or dtype (``None`` keeps each)."""
        return type(self).from_params(
            self.params,
            xp=self.xp if xp is None else xp,
            device=self.device if device is None and xp is None else device,
            dtype=self.dtype if dtype is None else dtype,
        )

    @property
    def params(self) -> Params:
        """``{'W1', 'b1', 'W2', 'b2'}``: assigning to an entry updates the layers too."""
        return self._params

    @params.setter
    def params(self, new: Mapping[str, Array]) -> None:
        self._params.update(new)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(input_size, hidden_size, output_size)``."""
        (d_in, d_hidden), d_out = self._params["W1"].shape, self._params["W2"].shape[1]
        return int(d_in), int(d_hidden), int(d_out)

    def _input(self, x: Array) -> Array:
        xp = namespace(x, self._params["W1"])
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
        namespace(t, self._params["W1"])  # same backend, or a clear TypeError
        if device_of(t) != self.device:
            msg = (f"labels are on device {device_of(t)} but the network is on {self.device}; "
                   "move them once with xp.asarray(t, device=net.device)")
            raise ValueError(msg)
        return t

    def predict(self, x: Array) -> Array:
        """Scores (logits) ``(N, output_size)`` for inputs ``(N, input_size)`` (or N-D)."""
        x = self._input(x)
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x: Array, t: Array) -> Array:
        """Mean cross-entropy loss (0-d array) for inputs ``x`` and labels ``t``
        (one-hot rows or class indices)."""
        check_batch(x, "the loss")
        y = self.predict(x)
        return self.lastLayer.forward(y, self._labels(t))

    def accuracy(self, x: Array, t: Array, *, batch_size: int = 10_000) -> float:
        """Fraction of rows whose highest score is the true class, evaluated ``batch_size`` rows
        at a time (one host sync at the end)."""
        xp = self.xp
        t = self._labels(t)
        n = x.shape[0]
        if t.shape[0] != n:
            msg = f"x has {n} rows but t has {t.shape[0]}"
            raise ValueError(msg)
        if n == 0:
            msg = "accuracy of an empty batch is undefined"
            raise ValueError(msg)
        correct = None
        for start in range(0, n, batch_size):
            y = xp.argmax(self.predict(x[start:min(start + batch_size, n), ...]), axis=1)
            tb = t[start:min(start + batch_size, n), ...]
            if tb.ndim != 1:
                tb = xp.argmax(tb, axis=1)
            hits = xp.sum(xp.astype(y == xp.astype(tb, y.dtype), xp.int64))
            correct = hits if correct is None else correct + hits
        return int(correct) / n

    def numerical_gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """The book's numerical gradients of the loss, by central differences (slow:
        two forward passes per parameter element)."""
        def loss_w(_: Array) -> float:
            return float(self.loss(x, t))

        return {k: numerical_gradient(loss_w, self._params[k]) for k in ("W1", "b1", "W2", "b2")}

    def gradient(self, x: Array, t: Array, *, scale: float = 1.0) -> dict[str, Array]:
        """Gradients of the loss by backpropagation. The loss of this forward pass is kept in
        ``self.last_loss`` (a 0-d array on the device), so logging it costs no second pass.

        ``scale`` (a Python float) returns the gradients of ``scale * loss`` at the cost of the
        unscaled ones (the factor enters once, at the top of the backward pass): a trainer
        passes ``scale=lr`` and updates with ``p -= g``, in place, with no ``lr * g``
        temporary. ``last_loss`` is the unscaled loss either way.
        """
        self.last_loss = self.loss(x, t)
        dout = self.lastLayer.backward(float(scale))
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}

    def __repr__(self) -> str:
        d_in, d_hidden, d_out = self.sizes
        return (f"TwoLayerNet({d_in}, {d_hidden}, {d_out}, xp={backend_name(self.xp)!r}, "
                f"device={self.device!r}, dtype={dtype_name(self.dtype)!r})")

