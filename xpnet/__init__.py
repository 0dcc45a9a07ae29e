"""xpnet: the library of "Deep Learning from Scratch" (chapters 5 to 8) on any Array API backend.

One code path trains on NumPy on a CPU and on CuPy on a CUDA GPU (and on PyTorch and
array-api-strict): every layer takes its array namespace from its inputs.
"""

# First, before NumPy loads its BLAS: under mpiexec, cores / processes BLAS threads per process
# (unless the user set a count). Imports nothing, does nothing outside an MPI launcher.
from .blas_threads import limit_before_numpy as _limit_before_numpy

_limit_before_numpy()

import importlib as _importlib
import types as _types

# The submodules stay reachable as attributes (xpnet.backend ...); __all__ lists names only.
from . import backend, conv, cuda, functions, gradcheck, layers, nets, optim, util  # noqa: F401
from ._defaults import defaults
from ._version import __version__
from .backend import cuda_available, get_namespace, to_numpy
from .blas_threads import get_threads, set_threads, threads
from .book_pickle import UnsafePickleError, load_book_params
from .conv import Convolution, Pooling, col2im, im2col
from .functions import (
    cross_entropy_error,
    identity_function,
    mean_squared_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    softmax_loss,
    step_function,
    sum_squared_error,
)
from .gradcheck import GradcheckReport, GradientCheckError, gradient_check, numerical_gradient
from .layers import (
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
from .nets import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    Network,
    Params,
    SimpleConvNet,
    TwoLayerNet,
)
from .optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    Optimizer,
    RMSprop,
    get_optimizer,
)
from .training import Trainer, train
from .util import conv_output_size, shuffle_dataset, smooth_curve


def __getattr__(name: str) -> _types.ModuleType:
    """``xpnet.graph`` (tracing and drawing graphs) is imported on first use, not by
    ``import xpnet``: training never needs it."""
    if name == "graph":
        return _importlib.import_module(f"{__name__}.graph")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "AddLayer",
    "Affine",
    "BatchNormalization",
    "Convolution",
    "DeepConvNet",
    "Dropout",
    "ExpLayer",
    "GradcheckReport",
    "GradientCheckError",
    "Momentum",
    "MulLayer",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Nesterov",
    "Network",
    "Optimizer",
    "Params",
    "Pooling",
    "RMSprop",
    "ReciprocalLayer",
    "Relu",
    "Sigmoid",
    "SimpleConvNet",
    "SoftmaxWithLoss",
    "Trainer",
    "TwoLayerNet",
    "UnsafePickleError",
    "__version__",
    "col2im",
    "conv_output_size",
    "cross_entropy_error",
    "cuda_available",
    "defaults",
    "get_namespace",
    "get_optimizer",
    "get_threads",
    "gradient_check",
    "identity_function",
    "im2col",
    "load_book_params",
    "mean_squared_error",
    "numerical_gradient",
    "relu",
    "relu_grad",
    "set_threads",
    "shuffle_dataset",
    "sigmoid",
    "sigmoid_grad",
    "smooth_curve",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
    "threads",
    "to_numpy",
    "train",
]
