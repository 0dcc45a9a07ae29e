"""The book's networks: :class:`TwoLayerNet` (chapter 5), :class:`MultiLayerNet` and
:class:`MultiLayerNetExtend` (chapter 6), :class:`SimpleConvNet` (chapter 7) and
:class:`DeepConvNet` (chapter 8), on any backend and device, sharing one base
(:class:`Network`)."""

from .base import Network, Params
from .deep_convnet import DeepConvNet
from .multi_layer_net import MultiLayerNet
from .multi_layer_net_extend import MultiLayerNetExtend
from .simple_convnet import SimpleConvNet
from .two_layer_net import TwoLayerNet

__all__ = ["DeepConvNet", "MultiLayerNet", "MultiLayerNetExtend", "Network", "Params",
           "SimpleConvNet", "TwoLayerNet"]
