"""xpnet.defaults: the backend, device and dtype of networks built without naming them."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet import TwoLayerNet
from xpnet._defaults import current_defaults


def test_a_network_built_in_the_block_lands_on_the_default_backend_and_device(xp):
    with xpnet.defaults(xp.namespace, xp.device, "float32") as chosen:
        assert current_defaults() is chosen
        net = TwoLayerNet(4, 3, 2)
    xp.assert_on(net.params["W1"], "float32", (4, 3))
    assert current_defaults() is None
    outside = TwoLayerNet(4, 3, 2)
    assert isinstance(outside.params["W1"], np.ndarray)
    assert outside.params["W1"].dtype == np.float64


def test_explicit_arguments_win_and_an_explicit_backend_takes_its_own_device(xp):
    with xpnet.defaults("numpy", dtype="float32"):
        net = TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, dtype="float64")
    xp.assert_on(net.params["W1"], "float64", (4, 3))
    with xpnet.defaults(xp.namespace, xp.device):
        mine = TwoLayerNet(4, 3, 2, xp="numpy")  # the default device belongs to xp's backend
        assert isinstance(mine.params["W1"], np.ndarray)


def test_blocks_nest_and_from_params_follows_them():
    host = TwoLayerNet(4, 3, 2, seed=0).params
    with xpnet.defaults(dtype="float32"):
        with xpnet.defaults(dtype="float64"):
            assert TwoLayerNet.from_params(host).dtype == np.float64
        assert TwoLayerNet.from_params(host).dtype == np.float32


def test_a_wrong_setting_fails_at_the_with_line():
    with pytest.raises(ValueError, match="numpy arrays live on the CPU only"), \
            xpnet.defaults("numpy", "cuda:0"):
        pass
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"), \
            xpnet.defaults(dtype="int8"):
        pass
    assert current_defaults() is None
