"""The book's networks: :class:`TwoLayerNet` (chapter 5), :class:`MultiLayerNet` and
:class:`MultiLayerNetExtend` (chapter 6), on any backend and device, sharing one base
(:class:`Network`)."""

from .base import Network, Params
from .multi_layer_net import MultiLayerNet
from .multi_layer_net_extend import MultiLayerNetExtend
from .two_layer_net import TwoLayerNet

__all__ = ["MultiLayerNet", "MultiLayerNetExtend", "Network", "Params", "TwoLayerNet"]
