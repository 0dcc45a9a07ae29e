"""One dispatch point: :func:`ops_for` gives the operations for a backend, and nothing outside
this package (and :mod:`xpnet.backend`) tests which backend it is.

:class:`Ops` holds the portable version of every operation that some backend runs faster (ReLU
forward/backward, the softmax-loss gradient, matmul, im2col/col2im, max pooling, the optimizer
updates, uniform random numbers, the CUDA-graph step, device collectives);
:class:`~xpnet.ops.numpy_ops.NumpyOps` splits NumPy's large ones over threads
(:func:`xpnet.set_threads`), :class:`~xpnet.ops.cupy_ops.CupyOps` replaces them with CuPy kernels
(:mod:`xpnet.cuda.kernels`), :class:`~xpnet.ops.torch_ops.TorchOps` draws random numbers with
PyTorch's generator. Layers ask once per call (a dict look-up) and use what they get.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ..backend import Namespace, backend_name, namespace, register_cache
from .base import Ops, Workspace, one_hot
from .cupy_ops import CupyOps
from .numpy_ops import NumpyOps
from .torch_ops import TorchOps

__all__ = ["CupyOps", "NumpyOps", "Ops", "TorchOps", "Workspace", "one_hot", "ops_for"]

_OPS: dict[int, Ops] = register_cache({})
_CLASSES: dict[str, type[Ops]] = {"cupy": CupyOps, "numpy": NumpyOps, "torch": TorchOps}


def ops_for(x: Any) -> Ops:
    """The operations for ``x``: an array, or a namespace (one :class:`Ops` per namespace;
    CuPy is imported only when ``x`` already is CuPy's)."""
    xp: Namespace = x if isinstance(x, ModuleType) else namespace(x)
    found = _OPS.get(id(xp))
    if found is None:
        found = _OPS[id(xp)] = _CLASSES.get(backend_name(xp), Ops)(xp)
    return found
