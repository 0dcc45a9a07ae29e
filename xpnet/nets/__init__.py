"""The book's networks: :class:`TwoLayerNet` (chapter 5) and :class:`MultiLayerNet`
(chapter 6), on any backend and device, sharing one base (:class:`Network`)."""

from .base import Network, Params
from .multi_layer_net import MultiLayerNet
from .two_layer_net import TwoLayerNet

__all__ = ["MultiLayerNet", "Network", "Params", "TwoLayerNet"]
