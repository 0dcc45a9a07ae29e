"""The modules of the book's repository, made of xpnet's code under the book's names.

:data:`MODULES` maps each module name a script of the book imports (``common``,
``common.layers`` ..., ``dataset.mnist``, and the chapter-local ``layer_naive``,
``two_layer_net``, ``simple_convnet``, ``deep_convnet``) to the names it holds; nothing of the
book's own files is read or run. A name the book's module has and xpnet does not provide is a
:class:`BookImportError` that names it.

Each module also holds ``np`` where the book's imports NumPy, since scripts rely on it: the
book's ``ch06/optimizer_compare_mnist.py`` uses ``np`` from ``from common.optimizer import *``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .. import conv, functions, layers, optim, util
from ..datasets import load_mnist as xpnet_load_mnist
from ..gradcheck import numerical_gradient as xpnet_numerical_gradient
from ..training.trainer import Trainer as XpnetTrainer
from . import nets
from .arrays import BookParams, HostArray, unwrap_mapping

__all__ = ["MODULES", "BookImportError", "DataSettings", "make_module"]


class BookImportError(ImportError):
    """A script imports a module or name of the book that xpnet does not provide."""


# ----------------------------------------------------------------------------- data


class DataSettings:
    """What ``dataset.mnist.load_mnist`` takes from the runner: the MNIST folder
    (``--data-dir``) and ``--max-train``; ``said`` keeps the cut's line to once per run."""

    root: str | None = None
    max_train: int | None = None
    said = False


def _cut(arrays: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
         ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The first ``--max-train`` training rows and the same share of the test rows."""
    (x_train, t_train), (x_test, t_test) = arrays
    n = DataSettings.max_train
    if n is None or n >= x_train.shape[0]:
        return arrays
    total, total_test = x_train.shape[0], x_test.shape[0]
    n_test = max(1, math.ceil(n * total_test / total))
    if not DataSettings.said:
        DataSettings.said = True
        print(f"xpnet book: --max-train {n}: training on the first {n} of {total} images, "
              f"testing on the first {n_test} of {total_test}", flush=True)
    return (x_train[:n], t_train[:n]), (x_test[:n_test], t_test[:n_test])


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
               ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The book's ``dataset.mnist.load_mnist``: xpnet's (same arrays), cut by
    ``--max-train``."""
    arrays = xpnet_load_mnist(normalize, flatten, one_hot_label, root=DataSettings.root)
    return _cut(arrays)


# ----------------------------------------------------------------------------- common


def _host(value: Any) -> Any:
    return np.asarray(value) if isinstance(value, HostArray) else value


def _script_layer(cls: type) -> type:
    """``cls`` as a script builds it itself (``Convolution(w, b)`` in
    ``ch07/apply_filter.py``): parameters handed over as views are read to the host, so the
    layer runs on the script's host data."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base: Any = cls
        base.__init__(self, *map(_host, args), **{k: _host(v) for k, v in kwargs.items()})

    return type(cls.__name__, (cls,), {"__init__": __init__, "__doc__": cls.__doc__,
                                       "__module__": "common.layers"})


def _book_optimizer(cls: type) -> type:
    """``cls`` whose ``update(params, grads)`` takes what a script passes: a network's
    ``params`` (:class:`BookParams`) and gradient dicts of views or host arrays."""

    def update(self: Any, params: Any, grads: Any) -> None:
        if isinstance(params, BookParams):
            params = params.params
        if isinstance(grads, Mapping):
            grads = unwrap_mapping(grads, params)
        base: Any = cls
        base.update(self, params, grads)

    return type(cls.__name__, (cls,), {"update": update, "__doc__": cls.__doc__,
                                       "__module__": "common.optimizer"})


class Trainer(XpnetTrainer):
    """The book's ``common/trainer.py`` ``Trainer``: xpnet's, given the xpnet network behind a
    script's network."""

    def __init__(self, network: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(network, nets.BookNetwork):
            network = network.net
        super().__init__(network, *args, **kwargs)


def numerical_gradient(f: Callable[[Any], Any], x: Any) -> Any:
    """The book's ``common.gradient.numerical_gradient(f, x)``: xpnet's, ``h = 1e-4``."""
    return xpnet_numerical_gradient(f, x)


_FUNCTIONS = {name: getattr(functions, name) for name in (
    "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
    "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss")}
_UTIL = {"smooth_curve": util.smooth_curve, "shuffle_dataset": util.shuffle_dataset,
         "conv_output_size": util.conv_output_size, "im2col": conv.im2col,
         "col2im": conv.col2im}
_LAYERS = {
    **_FUNCTIONS,
    "im2col": conv.im2col,
    "col2im": conv.col2im,
    **{name: _script_layer(getattr(layers, name)) for name in (
        "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout", "BatchNormalization")},
    "Convolution": _script_layer(conv.Convolution),
    "Pooling": _script_layer(conv.Pooling),
}
_OPTIMIZERS = {name: _book_optimizer(getattr(optim, name)) for name in (
    "SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam")}

#: ``{module name: (is a package, its names)}``: the names of the book's module that xpnet
#: provides (``np`` where the book's module imports NumPy).
MODULES: dict[str, tuple[bool, dict[str, Any]]] = {
    "common": (True, {}),
    "common.functions": (False, {"np": np, **_FUNCTIONS}),
    "common.gradient": (False, {"np": np, "numerical_gradient": numerical_gradient}),
    "common.layers": (False, {"np": np, **_LAYERS}),
    "common.util": (False, {"np": np, **_UTIL}),
    "common.optimizer": (False, {"np": np, **_OPTIMIZERS}),
    "common.trainer": (False, {"np": np, **_OPTIMIZERS, "Trainer": Trainer}),
    "common.multi_layer_net": (False, {"np": np, "MultiLayerNet": nets.MultiLayerNet}),
    "common.multi_layer_net_extend": (False, {
        "np": np, "MultiLayerNetExtend": nets.MultiLayerNetExtend}),
    "dataset": (True, {}),
    "dataset.mnist": (False, {"np": np, "load_mnist": load_mnist, "train_num": 60000,
                              "test_num": 10000, "img_dim": (1, 28, 28), "img_size": 784}),
    # chapter-local modules (ch05/, ch07/, ch08/)
    "layer_naive": (False, {"MulLayer": layers.MulLayer, "AddLayer": layers.AddLayer}),
    "two_layer_net": (False, {"np": np, "TwoLayerNet": nets.TwoLayerNet}),
    "simple_convnet": (False, {"np": np, "SimpleConvNet": nets.SimpleConvNet}),
    "deep_convnet": (False, {"np": np, "DeepConvNet": nets.DeepConvNet}),
}


class _BookModule(types.ModuleType):
    """A module of :data:`MODULES`: asking it for a name it lacks says that xpnet does not
    provide that name of the book."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or hasattr(self, "__path__"):
            raise AttributeError(name)  # a package's submodules are found by the import hook
        msg = (f"{self.__name__}.{name} is a name of the book's code that xpnet does not "
               f"provide (xpnet's {self.__name__} has {', '.join(sorted(self.__all__))}); "
               "xpnet book runs xpnet's code, never the book's")
        raise BookImportError(msg, name=self.__name__)


def make_module(fullname: str) -> types.ModuleType:
    """A fresh module ``fullname`` of :data:`MODULES`."""
    package, names = MODULES[fullname]
    module = _BookModule(fullname, f"xpnet's stand-in for the book's {fullname}")
    module.__dict__.update(names)
    module.__all__ = [k for k in names if k != "np"] if not package else []  # type: ignore[attr-defined]
    if "np" in names:
        module.__all__.append("np")  # the book's star imports bring np along
    if package:
        module.__path__ = []
    return module

