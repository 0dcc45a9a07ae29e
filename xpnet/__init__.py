"""xpnet: the backprop layers of "Deep Learning from Scratch" (chapter 5) on any Array API backend.

One code path trains on NumPy on a CPU and on CuPy on a CUDA GPU (and on PyTorch and
array-api-strict): every layer takes its array namespace from its inputs.
"""

from . import backend, cuda, functions, gradcheck, graph, layers
from .backend import cuda_available, get_namespace, to_numpy
from .gradcheck import GradcheckReport, GradientCheckError, gradient_check, numerical_gradient
from .layers import (
    AddLayer,
    Affine,
    ExpLayer,
    MulLayer,
    ReciprocalLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from .net import Params, TwoLayerNet

__version__ = "0.1.0"

__all__ = [
    "AddLayer",
    "Affine",
    "ExpLayer",
    "GradcheckReport",
    "GradientCheckError",
    "MulLayer",
    "Params",
    "ReciprocalLayer",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "TwoLayerNet",
    "__version__",
    "backend",
    "cuda",
    "cuda_available",
    "functions",
    "get_namespace",
    "gradcheck",
    "gradient_check",
    "graph",
    "layers",
    "numerical_gradient",
    "to_numpy",
]
