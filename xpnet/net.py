"""The old home of the networks (``from xpnet.net import TwoLayerNet, Params``): an alias of
:mod:`xpnet.nets`, kept for code written against it; nothing in xpnet imports it."""

from .nets import *  # noqa: F403
