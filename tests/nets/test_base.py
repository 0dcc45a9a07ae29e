"""xpnet.nets.base: what every network shares, :class:`Params` (the dict of parameters bound to
the layers) and :class:`Network`'s checks of its arguments, whatever the network."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.nets import MultiLayerNetExtend, SimpleConvNet, TwoLayerNet


def test_params_cannot_lose_entries():
    from xpnet import TwoLayerNet

    params = TwoLayerNet(4, 3, 2, seed=0).params
    for remove in (lambda: params.pop("W1"), params.popitem, params.clear,
                   lambda: params.__delitem__("b1")):
        with pytest.raises(TypeError, match="cannot be removed"):
            remove()
    assert sorted(params) == ["W1", "W2", "b1", "b2"]
    with pytest.raises(KeyError, match="unknown parameter 'W3'"):
        params.setdefault("W3", params["W1"])


_LIST_NETS = {
    "TwoLayerNet": lambda xp: TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, seed=0),
    "MultiLayerNetExtend": lambda xp: MultiLayerNetExtend(
        4, [3], 2, use_batchnorm=True, use_dropout=True, xp=xp.namespace, device=xp.device, seed=0),
    "SimpleConvNet": lambda xp: SimpleConvNet(
        (1, 2, 2), {"filter_num": 1, "filter_size": 1}, 3, 2, xp=xp.namespace, device=xp.device,
        seed=0),
}
_ENTRY_POINTS = {
    "predict": lambda net, x, t: net.predict(x),
    "loss": lambda net, x, t: net.loss(x, t),
    "gradient": lambda net, x, t: net.gradient(x, t),
    "accuracy": lambda net, x, t: net.accuracy(x, t),
    "numerical_gradient": lambda net, x, t: net.numerical_gradient(x, t),
}


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
@pytest.mark.parametrize("kind", list(_LIST_NETS))
def test_python_lists_are_refused_alike_by_every_entry_point(xp, kind, entry):
    """A list for x or t: one TypeError that names the argument and the conversion, from
    every entry point of every network (not AttributeError: 'list' object has no 'ndim')."""
    net = _LIST_NETS[kind](xp)
    call = _ENTRY_POINTS[entry]
    x_list = [[0.5, -1.0, 2.0, 0.0], [1.0, 0.0, -0.5, 0.25]]
    x, t = xp.asarray(np.array(x_list)), xp.asarray(np.array([0, 1]), "int64")
    call(net, x, t)  # arrays work
    pattern = (r"^x must be an array, got a Python list; convert it first: "
               r"x = net\.xp\.asarray\(x, device=net\.device\) \(this network holds "
               f"{xp.namespace.__name__.split('.')[-1]} arrays\\)$")
    with pytest.raises(TypeError, match=pattern):
        call(net, x_list, t)
    if entry != "predict":
        with pytest.raises(TypeError, match=r"^t must be an array, got a Python tuple; "
                                            r"convert it first: t = net\.xp\.asarray\(t, "):
            call(net, x, (0, 1))
    with pytest.raises(TypeError, match=r"^x must be an array, got builtins\.float"):
        call(net, 1.5, t)
