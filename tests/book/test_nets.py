"""xpnet.book.nets: the book's networks as its scripts use them, over xpnet's."""

# The book draws its weights from NumPy's global generator; so must these references.
# ruff: noqa: NPY002

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from xpnet.book import nets
from xpnet.book.arrays import HostArray


def test_weights_are_drawn_from_the_global_generator_in_the_books_order():
    np.random.seed(3)
    net = nets.TwoLayerNet(input_size=6, hidden_size=4, output_size=2)
    np.random.seed(3)
    w1, w2 = 0.01 * np.random.randn(6, 4), 0.01 * np.random.randn(4, 2)
    np.testing.assert_array_equal(net.params["W1"], w1)
    np.testing.assert_array_equal(net.params["W2"], w2)
    np.testing.assert_array_equal(net.params["b1"], np.zeros(4))


@pytest.mark.parametrize(("cls", "args", "scale"), [
    (nets.MultiLayerNet, (6, [5], 2), lambda fan_in: np.sqrt(2.0 / fan_in)),
    (nets.MultiLayerNetExtend, (6, [5], 2, "sigmoid", "sigmoid"),
     lambda fan_in: np.sqrt(1.0 / fan_in)),
])
def test_the_mlps_scale_by_fan_in(cls, args, scale):
    np.random.seed(1)
    net = cls(*args)
    np.random.seed(1)
    np.testing.assert_allclose(net.params["W1"], scale(6) * np.random.randn(6, 5))
    np.testing.assert_allclose(net.params["W2"], scale(5) * np.random.randn(5, 2))


SMALL_CONV = {"input_dim": (1, 6, 6), "conv_param": {"filter_num": 2, "filter_size": 3,
                                                     "pad": 0, "stride": 1}}


@pytest.mark.parametrize(("make", "scale"), [
    (lambda: nets.TwoLayerNet(6, 4, 2, 0.5), 0.5),  # weight_init_std, positional
    (lambda: nets.TwoLayerNet(6, 4, 2, weight_init_std=0.3), 0.3),
    (lambda: nets.MultiLayerNet(6, [5], 2, "relu", 0.2), 0.2),
    (lambda: nets.SimpleConvNet(SMALL_CONV["input_dim"], SMALL_CONV["conv_param"], 4, 2, 0.7),
     0.7),
    (lambda: nets.SimpleConvNet(**SMALL_CONV, hidden_size=4, output_size=2), 0.01),  # default
])
def test_weight_init_std_is_read_where_the_books_constructor_takes_it(make, scale):
    np.random.seed(2)
    net = make()
    np.random.seed(2)
    shape = net.params["W1"].shape
    np.testing.assert_array_equal(net.params["W1"], scale * np.random.randn(*shape))


def test_deep_convnet_draws_he_weights_by_fan_in():
    np.random.seed(4)
    net = nets.DeepConvNet()
    np.random.seed(4)
    fan_ins = [1 * 9, 16 * 9, 16 * 9, 32 * 9, 32 * 9, 64 * 9, 64 * 4 * 4, 50]  # the book's
    for i, fan_in in enumerate(fan_ins, start=1):
        shape = net.params[f"W{i}"].shape
        np.testing.assert_allclose(net.params[f"W{i}"],
                                   np.sqrt(2.0 / fan_in) * np.random.randn(*shape))


def test_host_batches_in_numbers_and_numpy_out(xp):
    with xpnet.defaults(xp.namespace, xp.device):
        net = nets.TwoLayerNet(6, 4, 3)
    xp.assert_on(net.net.params["W1"], "float64", (6, 4))
    rng = np.random.default_rng(0)
    x, t = rng.random((5, 6)).astype(np.float32), np.array([0, 1, 2, 0, 1], dtype=np.uint8)
    y = net.predict(x)
    assert isinstance(y, np.ndarray)
    assert y.shape == (5, 3)
    assert isinstance(net.loss(x, t), float)
    assert isinstance(net.accuracy(x, t), float)
    grads = net.gradient(x, t)
    for g in grads.values():
        assert isinstance(g, np.ndarray if xp.name == "numpy" else HostArray)
    before = np.asarray(net.params["W1"]).copy()
    for key in ("W1", "b1", "W2", "b2"):
        net.params[key] -= 0.1 * grads[key]  # the book's update, on the device
    np.testing.assert_allclose(np.asarray(net.params["W1"]),
                               before - 0.1 * np.asarray(grads["W1"]))
    # device data in: xpnet's results as they are
    dev = xp.asarray(x, "float32")
    xp.assert_on(net.predict(dev), "float64", (5, 3))


def test_the_books_batch_norm_trains_on_one_sample():
    net = nets.MultiLayerNetExtend(6, [5], 2, use_batchnorm=True)
    grads = net.gradient(np.ones((1, 6)), np.array([1]))
    assert set(grads) >= {"gamma1", "beta1"}


def test_save_params_writes_into_the_output_folder(tmp_path, capsys):
    nets.set_output_folder(tmp_path / "out")
    try:
        net = nets.SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 2,
                                 "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=4)
        path = net.save_params("params.pkl")
    finally:
        nets.set_output_folder(tmp_path)
    assert path == tmp_path / "out" / "params.pkl"
    assert f"saved the parameters to {path}" in capsys.readouterr().out
    other = nets.SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 2,
                               "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=4)
    other.load_params(path)
    np.testing.assert_array_equal(other.params["W1"], net.params["W1"])
