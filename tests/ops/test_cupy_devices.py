"""A network on the second CUDA device (``device="cuda:1"``) keeps everything there: parameters,
gradients, optimizer state, batch-norm statistics, the dropout generator's counter, the
training loop's buffers and the CUDA-graph step. The fake CuPy has two devices and CuPy's
current-device rules (``tests/fakecupy``): work that lands on the current device 0 instead, or
reads an array of device 1 from device 0, raises there as it does on a GPU without peer access.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.backend import to_numpy
from xpnet.rng import random_generator
from xpnet.training import train


@pytest.fixture
def cupy2(any_cupy):
    """Two CUDA devices: the fake always has them; a real GPU machine may not."""
    if any_cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("one CUDA device here: these tests need two")
    return any_cupy


def _data(n=300):
    rng = np.random.default_rng(5)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def _all_on(arrays, device_id):
    for name, a in arrays.items():
        assert a.device.id == device_id, f"{name} is on device {a.device.id}"


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "momentum"])
def test_training_on_the_second_device(cupy2, optimizer):
    cp = cupy2
    x, t = _data()
    net = xpnet.MultiLayerNetExtend(784, [30, 20], 10, use_batchnorm=True, use_dropout=True,
                                    dropout_ration=0.2, xp="cupy", device="cuda:1",
                                    dtype="float32", seed=0)
    opt = xpnet.optim.get_optimizer(optimizer)
    h = train(net, x, t, x[:60], t[:60], iters=6, batch_size=50, optimizer=opt)
    assert h.status == "finished"
    assert cp.cuda.Device().id == 0  # the caller's current device is left as it was
    _all_on(dict(net.params), 1)
    _all_on(net.buffers(), 1)
    for slot in ("v", "m", "h"):
        _all_on(getattr(opt, slot, None) or {}, 1)
    if optimizer == "adam":
        assert opt.iter.device.id == 1
    dropout = next(layer for layer in net.layers.values() if hasattr(layer, "rng"))
    assert dropout.rng._stream._counter.device.id == 1
    # The same run on device 0 gives the same numbers.
    net0 = xpnet.MultiLayerNetExtend(784, [30, 20], 10, use_batchnorm=True, use_dropout=True,
                                     dropout_ration=0.2, xp="cupy", dtype="float32", seed=0)
    h0 = train(net0, x, t, x[:60], t[:60], iters=6, batch_size=50,
               optimizer=xpnet.optim.get_optimizer(optimizer))
    np.testing.assert_allclose(h.loss, h0.loss, rtol=1e-6)
    for key in net0.params:
        np.testing.assert_allclose(to_numpy(net.params[key]), to_numpy(net0.params[key]),
                                   rtol=1e-6, atol=1e-7)


def test_network_methods_on_the_second_device(cupy2):
    cp = cupy2
    x, t = _data(20)
    net = xpnet.TwoLayerNet(784, 16, 10, xp="cupy", device="cuda:1", seed=0)
    with cp.cuda.Device(1):
        xd, td = cp.asarray(x), cp.asarray(t)
    grads = net.gradient(xd, td)
    _all_on(grads, 1)
    assert net.loss(xd, td).device.id == 1
    assert net.predict(xd).device.id == 1
    assert 0.0 <= net.accuracy(xd, td) <= 1.0
    assert cp.cuda.Device().id == 0


_EVERY_NETWORK = {
    "TwoLayerNet": lambda **kw: xpnet.TwoLayerNet(784, 16, 10, **kw),
    "MultiLayerNet": lambda **kw: xpnet.MultiLayerNet(784, [16], 10, **kw),
    "MultiLayerNetExtend": lambda **kw: xpnet.MultiLayerNetExtend(
        784, [16], 10, use_batchnorm=True, use_dropout=True, **kw),
    "SimpleConvNet": lambda **kw: xpnet.SimpleConvNet(
        conv_param={"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}, hidden_size=16,
        **kw),
    "DeepConvNet": lambda **kw: xpnet.DeepConvNet(hidden_size=16, **kw),
}


@pytest.mark.parametrize("name", list(_EVERY_NETWORK))
def test_every_networks_passes_on_the_second_device(cupy2, name):
    """Each pass a caller starts runs with the network's device current, also those a class
    inherits from a mixin that is not a Network (the conv nets' predict/loss/accuracy)."""
    cp = cupy2
    x, t = _data(4)
    net = _EVERY_NETWORK[name](xp="cupy", device="cuda:1", dtype="float32", seed=0)
    with cp.cuda.Device(1):
        xd, td = cp.asarray(x), cp.asarray(t)
    assert net.predict(xd).device.id == 1
    assert net.loss(xd, td).device.id == 1
    assert 0.0 <= net.accuracy(xd, td) <= 1.0
    _all_on(net.gradient(xd, td), 1)
    assert cp.cuda.Device().id == 0


def test_cuda_graph_on_the_second_device(cupy2):
    x, t = _data()
    net = xpnet.TwoLayerNet(784, 20, 10, xp="cupy", device="cuda:1", dtype="float32", seed=0)
    h = train(net, x, t, x[:60], t[:60], iters=8, batch_size=50, cuda_graph=True)
    assert h.status == "finished"
    _all_on(dict(net.params), 1)


def test_random_generator_on_the_second_device(cupy2):
    cp = cupy2
    gen = random_generator("cupy", cp.cuda.Device(1), seed=3)
    u = gen.random((4,), "float32")
    assert u.device.id == 1
    state = gen.get_state()
    again = gen.random((4,), "float32")
    gen.set_state(state)
    np.testing.assert_array_equal(gen.random((4,), "float32").get(), again.get())
