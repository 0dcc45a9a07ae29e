"""The book's networks as its scripts build and use them, over xpnet's networks.

``TwoLayerNet(input_size=784, hidden_size=50, output_size=10)`` in a script run by ``xpnet
book`` builds an xpnet :class:`~xpnet.TwoLayerNet` where :func:`xpnet.defaults` says (the
runner's ``--backend``/``--device``/``--dtype``) and hands the script a :class:`BookNetwork`
around it:

- the loss value is the book's (``+1e-7`` inside the log: :class:`BookSoftmaxWithLoss`);
- the initial weights are drawn as the book's own constructors draw them, from NumPy's global
  generator (``np.random.randn``, W1, W2, ... in turn, scaled by ``weight_init_std``, or He /
  Xavier by fan-in where the book uses them), then moved to the device: a script seeded with
  ``np.random.seed`` gets the book's network;
- ``predict``, ``loss``, ``accuracy``, ``gradient`` and ``numerical_gradient`` take host NumPy
  batches (moved to the device on entry) or device arrays; with host data ``predict`` returns
  NumPy, ``loss`` and ``accuracy`` Python floats, the gradients dicts of
  :class:`~xpnet.book.arrays.HostArray` views (NumPy arrays on NumPy); with device data
  everything stays as xpnet's network gives it;
- ``params`` is a :class:`~xpnet.book.arrays.BookParams`; ``save_params`` writes (``.npz``
  contents, no pickle) into the run's output folder, never into the book's clone;
  ``load_params`` reads the book's pickles safely (:mod:`xpnet.book_pickle`);
- anything else (``layers``, ``last_layer``, ``hidden_layer_num`` ...) is the xpnet network's.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import nets
from ..backend import Array, asarray, to_numpy
from ..functions import one_hot
from ..layers import SoftmaxWithLoss
from .arrays import BookParams, unwrap, wrap

__all__ = [
    "BookNetwork",
    "BookSoftmaxWithLoss",
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "SimpleConvNet",
    "TwoLayerNet",
    "set_output_folder",
]

_OUTPUT: list[Path] = [Path.cwd()]


def set_output_folder(folder: Path) -> None:
    """Where ``save_params`` writes (the runner sets the run's ``--out``)."""
    _OUTPUT[0] = folder


def _is_host(x: Any) -> bool:
    return isinstance(x, (np.ndarray, list, tuple))


def _std_scale(std: Any) -> Callable[[tuple[int, ...]], float]:
    """The scale of a weight of this shape: the number given, or He (``'relu'``, ``'he'``)
    or Xavier (``'sigmoid'``, ``'xavier'``) by the fan-in, as the book's MLPs compute it."""
    text = str(std).lower()

    def scale(shape: tuple[int, ...]) -> float:
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        if text in ("relu", "he"):
            return float(np.sqrt(2.0 / fan_in))
        if text in ("sigmoid", "xavier"):
            return float(np.sqrt(1.0 / fan_in))
        return float(std)

    return scale


class BookSoftmaxWithLoss(SoftmaxWithLoss):
    """xpnet's :class:`~xpnet.layers.SoftmaxWithLoss` (the same softmax, the same backward)
    whose loss value is the book's: ``-sum(log(y[n, t_n] + 1e-7)) / N``, the ``1e-7`` inside
    the log as in the book's ``cross_entropy_error`` (xpnet's own loss is exact). So a book
    script's numerical gradients, and the losses it prints, are the book's."""

    EPS = 1e-7

    def forward(self, x: Array, t: Array) -> Array:
        super().forward(x, t)
        xp, y = self.xp, self.y
        hot = self.t_hot
        if hot is None:
            hot = one_hot(self._labels, y.shape[-1], dtype=y.dtype)
        # One term per row (the others are zeros), then their sum: the book's order of sums.
        rows = xp.sum(hot * xp.log(y + self.EPS), axis=-1)
        self.loss = -xp.sum(rows) / y.shape[0]
        return self.loss


class BookNetwork:
    """A script's network: an xpnet network built under :func:`xpnet.defaults`, with the
    book's host-side rules (module text). ``network.net`` is the xpnet network."""

    _xpnet_class: ClassVar[type[Any]] = nets.Network
    #: Where the book's constructor takes ``weight_init_std`` positionally (None: keyword
    #: only), and its default there.
    _std_position: ClassVar[int | None] = None
    _default_std: ClassVar[Any] = 0.01

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        net = self._xpnet_class(*args, **kwargs)
        self.__dict__["net"] = net
        self.__dict__["_params"] = BookParams(net.params)
        if type(net.last_layer) is SoftmaxWithLoss:  # the book's loss value (1e-7 in the log)
            net.last_layer = BookSoftmaxWithLoss(check_labels=net.last_layer.check_labels)
        for layer in net.layers.values():  # the book's batch norm trains on one sample too
            if hasattr(type(layer), "allow_batch_of_one"):
                layer.allow_batch_of_one = True
        self._draw_like_the_book(self._scale(args, kwargs))

    def _scale(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[..., float]:
        at = self._std_position
        if at is not None and len(args) > at:
            return _std_scale(args[at])
        return _std_scale(kwargs.get("weight_init_std", self._default_std))

    def _draw_like_the_book(self, scale: Callable[[tuple[int, ...]], float]) -> None:
        """Redraw every weight ``W1, W2, ...`` from NumPy's global generator, in the book's
        order, and put it on the network's device (biases, gamma, beta stay as built)."""
        net = self.net
        weights = sorted((int(k[1:]), k) for k in net.params if k[0] == "W" and k[1:].isdigit())
        for _, key in weights:
            shape = tuple(int(n) for n in net.params[key].shape)
            host = scale(shape) * np.random.randn(*shape)  # noqa: NPY002 (the book's draw)
            net.params[key] = asarray(host, net.xp, device=net.device, dtype=net.dtype)

    # ---------------------------------------------------------------- the book's interface

    @property
    def params(self) -> BookParams:
        """The parameters (see :class:`~xpnet.book.arrays.BookParams`)."""
        return self._params  # type: ignore[no-any-return]

    @params.setter
    def params(self, new: Any) -> None:
        for key, value in dict(new).items():
            self._params[key] = value

    def _device(self, x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        on_numpy = isinstance(next(iter(self.net.params.values())), np.ndarray)
        if isinstance(x, np.ndarray) and not on_numpy:
            if x.dtype.kind == "f" and x.dtype.itemsize < 4:  # float16 data: strict lacks it
                x = x.astype(np.float32)
            return asarray(x, self.net.xp, device=self.net.device)
        return unwrap(x)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        """Scores; NumPy for a host batch."""
        y = self.net.predict(self._device(x), *args, **kwargs)
        return to_numpy(y) if _is_host(x) else y

    def loss(self, x: Any, t: Any, *args: Any, **kwargs: Any) -> Any:
        """The loss; a Python float for a host batch."""
        value = self.net.loss(self._device(x), self._device(t), *args, **kwargs)
        return float(value) if _is_host(x) else value

    def accuracy(self, x: Any, t: Any, *args: Any, **kwargs: Any) -> float:
        """The accuracy, a Python float."""
        return float(self.net.accuracy(self._device(x), self._device(t), *args, **kwargs))

    def gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Backprop gradients by name; views of device arrays for a host batch."""
        grads = self.net.gradient(self._device(x), self._device(t))
        return {k: wrap(v) for k, v in grads.items()} if _is_host(x) else grads

    def numerical_gradient(self, x: Any, t: Any) -> dict[str, Any]:
        """Numerical gradients by name; views of device arrays for a host batch."""
        grads = self.net.numerical_gradient(self._device(x), self._device(t))
        return {k: wrap(v) for k, v in grads.items()} if _is_host(x) else grads

    def save_params(self, file_name: str = "params.pkl") -> Path:
        """Write the parameters (``.npz`` contents under the name given) into the run's output
        folder, and say where."""
        path = _OUTPUT[0] / Path(file_name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the .pkl-name warning: said below
            written: Path = self.net.save_params(path)
        print(f"xpnet book: saved the parameters to {written} (.npz contents, no pickle; "
              "load_params reads it)", flush=True)
        return written

    def load_params(self, file_name: str = "params.pkl") -> None:
        """Read the book's pickle (safely) or an ``.npz`` of ``save_params``."""
        self.net.load_params(file_name)

    def __getattr__(self, name: str) -> Any:
        if name == "net":
            raise AttributeError(name)
        return getattr(self.net, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "params":
            object.__setattr__(self, name, value)
        else:
            setattr(self.net, name, value)

    def __repr__(self) -> str:
        return f"book view of {self.net!r}"


class TwoLayerNet(BookNetwork):
    """The book's ``ch05/two_layer_net.py`` ``TwoLayerNet``."""

    _xpnet_class = nets.TwoLayerNet
    _std_position = 3


class MultiLayerNet(BookNetwork):
    """The book's ``common/multi_layer_net.py`` ``MultiLayerNet``."""

    _xpnet_class = nets.MultiLayerNet
    _std_position = 4
    _default_std = "relu"


class MultiLayerNetExtend(MultiLayerNet):
    """The book's ``common/multi_layer_net_extend.py`` ``MultiLayerNetExtend``."""

    _xpnet_class = nets.MultiLayerNetExtend


class SimpleConvNet(BookNetwork):
    """The book's ``ch07/simple_convnet.py`` ``SimpleConvNet``."""

    _xpnet_class = nets.SimpleConvNet
    _std_position = 4


class DeepConvNet(BookNetwork):
    """The book's ``ch08/deep_convnet.py`` ``DeepConvNet`` (He initial weights)."""

    _xpnet_class = nets.DeepConvNet
    _default_std = "he"  # the book's DeepConvNet takes no weight_init_std
