"""SimpleConvNet and DeepConvNet together: what both get from ``xpnet.nets._convnet`` (the
seeded initial weights in the documented order, copies that keep the options, parameter files and
whole-network files).

The initial weights are compared with ``np.random.default_rng(seed)`` drawn in that order.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet.io
from xpnet.nets import DeepConvNet, SimpleConvNet

from .conv_reference import SMALL_DEEP, small_deep, small_simple

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- seeds, copies


def test_same_seed_same_weights_on_every_backend(xp):
    net = SimpleConvNet(xp=xp.namespace, device=xp.device, seed=11)
    ref = np.random.default_rng(11)
    for name, shape in (("W1", (30, 1, 5, 5)), ("W2", (4320, 100)), ("W3", (100, 10))):
        xp.assert_close(net.params[name], 0.01 * ref.standard_normal(shape), rtol=1e-15)
    for name in ("b1", "b2", "b3"):
        assert not np.any(xp.to_numpy(net.params[name]))
    deep = DeepConvNet(xp=xp.namespace, device=xp.device, seed=11)
    ref = np.random.default_rng(11)
    fan_in = (9, 16 * 9, 16 * 9, 32 * 9, 32 * 9, 64 * 9, 64 * 16, 50)  # the book's He scales
    for i, n_in in enumerate(fan_in, start=1):
        shape = tuple(deep.params[f"W{i}"].shape)
        want = np.sqrt(2.0 / n_in) * ref.standard_normal(shape)
        xp.assert_close(deep.params[f"W{i}"], want, rtol=1e-15)
    other = SimpleConvNet(xp=xp.namespace, device=xp.device, seed=12)
    assert not np.allclose(xp.to_numpy(other.params["W1"]), xp.to_numpy(net.params["W1"]))


def test_to_and_from_params_keep_the_options(xp, rng):
    net = SimpleConvNet((2, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1}, 4, 3,
                        weight_init_std=0.5, seed=0)
    copy = net.to(xp.namespace, device=xp.device, dtype="float32")
    assert copy.config() == net.config()
    xp.assert_on(copy.params["W1"], "float32", (2, 2, 3, 3))
    xh = rng.standard_normal((2, 2, 6, 6))
    xp.assert_close(copy.predict(xp.asarray(xh, "float32")), net.predict(xh), rtol=1e-4,
                    atol=1e-6)
    deep = DeepConvNet(**SMALL_DEEP, dropout_ratio=0.25, seed=0)
    moved = deep.to(xp.namespace, device=xp.device)
    assert moved.config() == deep.config()
    assert moved.dropout_ratio == 0.25
    xh = rng.standard_normal((2, 1, 12, 12))
    xp.assert_close(moved.predict(xp.asarray(xh)), deep.predict(xh), rtol=1e-10, atol=1e-12)
    assert "SimpleConvNet(input_dim=(2, 6, 6)" in repr(copy)


# --------------------------------------------------------------------------- files


def test_save_params_and_load_params_round_trip(xp, tmp_path, rng):
    net = small_simple(xp, weight_init_std=0.5, seed=0)
    path = net.save_params(tmp_path / "simple.npz")
    other = small_simple(xp, seed=1)
    other.load_params(path)
    for name in net.params:
        xp.assert_close(other.params[name], xp.to_numpy(net.params[name]), rtol=0)
        layer, attr = other.params.binding(name)
        assert getattr(layer, attr) is other.params[name]  # the layers see the loaded arrays
    xh = rng.standard_normal((2, 1, 8, 8))
    xp.assert_close(other.predict(xp.asarray(xh)), xp.to_numpy(net.predict(xp.asarray(xh))),
                    rtol=0)
    deep = small_deep(xp, seed=0)
    deep_path = deep.save_params(tmp_path / "deep.npz")
    fresh = small_deep(xp, seed=1)
    fresh.load_params(deep_path)
    xp.assert_close(fresh.params["W4"], xp.to_numpy(deep.params["W4"]), rtol=0)


def test_save_net_load_net_round_trip(xp, tmp_path, rng):
    simple = SimpleConvNet((2, 6, 6), {"filter_num": 2, "filter_size": 3, "pad": 1}, 4, 3,
                           weight_init_std=0.5, seed=0)
    deep = DeepConvNet(**SMALL_DEEP, dropout_ratio=0.3, seed=0)
    for net, shape in ((simple, (2, 2, 6, 6)), (deep, (2, 1, 12, 12))):
        path = xpnet.io.save_net(tmp_path / f"{type(net).__name__}.npz", net)
        loaded = xpnet.io.load_net(path, xp=xp.namespace, device=xp.device,
                                   input_size=int(np.prod(shape[1:])))
        assert type(loaded) is type(net)
        assert loaded.config() == net.config()
        xp.assert_on(loaded.params["W1"], "float64")
        xh = rng.standard_normal(shape)
        xp.assert_close(loaded.predict(xp.asarray(xh)), net.predict(xh), rtol=1e-12)
    with pytest.raises(xpnet.io.ParamsFileError, match="takes 72 values per sample but the "
                                                       "data has 784"):
        xpnet.io.load_net(tmp_path / "SimpleConvNet.npz", input_size=784)
