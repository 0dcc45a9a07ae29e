"""The old home of :class:`TwoLayerNet` and :class:`Params`, kept so that
``from xpnet.net import TwoLayerNet, Params`` goes on working; they live in :mod:`xpnet.nets`."""

from __future__ import annotations

from .nets.base import Params
from .nets.two_layer_net import TwoLayerNet, check_param_shapes  # noqa: F401 (old import path)

__all__ = ["Params", "TwoLayerNet"]
