"""xpnet.nets.DeepConvNet (the book's chapter 8) on every backend.

References are NumPy float64 computations (``conv_reference.py``): convolution by explicit
windows, 2x2 max pooling by reshape, the dropout head's backprop by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import gradient_check
from xpnet.layers import Dropout
from xpnet.nets import DeepConvNet

from ..helpers import book_path, host_params
from .conv_reference import (
    BOOK_PADS,
    SMALL_DEEP,
    deep_features,
    loss_ref,
    mnist_test_images,
    random_biases,
    random_biases_np,
    small_deep,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- the book's API


def test_deep_convnet_book_api(xp):
    net = DeepConvNet(xp=xp.namespace, device=xp.device, seed=0)
    filters = (16, 16, 32, 32, 64, 64)
    channels = (1, *filters[:-1])
    for i in range(1, 7):
        xp.assert_on(net.params[f"W{i}"], "float64", (filters[i - 1], channels[i - 1], 3, 3))
        xp.assert_on(net.params[f"b{i}"], "float64", (filters[i - 1],))
        conv = net.layers[f"Conv{i}"]
        assert conv.W is net.params[f"W{i}"]
        assert (conv.stride, conv.pad) == (1, BOOK_PADS[i - 1])
        assert conv.input_grad is (i > 1)
    xp.assert_on(net.params["W7"], "float64", (64 * 4 * 4, 50))
    xp.assert_on(net.params["W8"], "float64", (50, 10))
    assert list(net.params) == [f"{k}{i}" for i in range(1, 9) for k in "Wb"]
    assert list(net.layers) == [
        "Conv1", "Relu1", "Conv2", "Relu2", "Pool1", "Conv3", "Relu3", "Conv4", "Relu4",
        "Pool2", "Conv5", "Relu5", "Conv6", "Relu6", "Pool3", "Affine1", "Relu7", "Dropout1",
        "Affine2", "Dropout2"]
    d1, d2 = net.layers["Dropout1"], net.layers["Dropout2"]
    assert isinstance(d1, Dropout)
    assert d1.dropout_ratio == d2.dropout_ratio == 0.5
    assert d1.rng is d2.rng  # one generator for both
    assert net.layers["Affine1"].W is net.params["W7"]
    assert net.sizes == (784, 50, 10)


# --------------------------------------------------------------------------- values


def test_deep_predict_matches_numpy_reference(xp, rng):
    net = small_deep(xp, seed=2)
    random_biases(xp, net, rng)
    p = host_params(xp, net)
    xh = rng.standard_normal((2, 1, 12, 12))
    feat = deep_features(p, xh, BOOK_PADS)
    # Inference: each dropout layer scales by (1 - ratio), as in the book.
    hidden = np.maximum(feat @ p["W7"] + p["b7"], 0.0) * 0.5
    want = (hidden @ p["W8"] + p["b8"]) * 0.5
    xp.assert_close(net.predict(xp.asarray(xh)), want, rtol=1e-10, atol=1e-12)
    xp.assert_close(net.predict(xp.asarray(xh), train_flg=False), want, rtol=1e-10, atol=1e-12)


def test_deep_gradient_with_fixed_dropout_masks_matches_numpy_backprop(xp, rng):
    net = small_deep(xp, seed=3)
    random_biases(xp, net, rng)
    p = host_params(xp, net)
    xh = rng.standard_normal((4, 1, 12, 12))
    labels = np.array([0, 2, 1, 2])
    m1, m2 = rng.random((4, 5)) > 0.5, rng.random((4, 3)) > 0.5
    net.layers["Dropout1"].fixed_mask = xp.asarray(m1)
    net.layers["Dropout2"].fixed_mask = xp.asarray(m2)
    grads = net.gradient(xp.asarray(xh), xp.asarray(labels))
    # The head by hand: h = relu(f W7 + b7) * m1, y = (h W8 + b8) * m2.
    feat = deep_features(p, xh, BOOK_PADS)
    z = feat @ p["W7"] + p["b7"]
    h = np.maximum(z, 0.0) * m1
    y = (h @ p["W8"] + p["b8"]) * m2
    loss, prob = loss_ref(y, labels)
    dy = prob.copy()
    dy[np.arange(4), labels] -= 1.0
    dy /= 4
    ds = dy * m2
    dz = (ds @ p["W8"].T) * m1 * (z > 0)
    assert float(net.last_loss) == pytest.approx(loss, rel=1e-10)
    for name, want in (("W8", h.T @ ds), ("b8", ds.sum(0)), ("W7", feat.T @ dz),
                       ("b7", dz.sum(0))):
        xp.assert_on(grads[name], "float64")
        xp.assert_close(grads[name], want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- gradient checks


def test_deep_gradient_check_float64(xp, rng):
    # Every pass must see the same dropout masks: keep-all fixed masks (and ratio 0, so that
    # a copy without them draws keep-all masks too). Random masks are checked above and in
    # the next test. Full on NumPy; directional elsewhere (a full check is ~1200 passes).
    net = small_deep(xp, dropout_ratio=0.0, seed=0)
    random_biases(xp, net, np.random.default_rng(0))
    net.layers["Dropout1"].fixed_mask = xp.asarray(np.ones((2, 5), dtype=bool))
    net.layers["Dropout2"].fixed_mask = xp.asarray(np.ones((2, 3), dtype=bool))
    xh = np.random.default_rng(1).standard_normal((2, 1, 12, 12))
    x, t = xp.asarray(xh), xp.asarray(np.array([0, 2]))
    mode = "full" if xp.name == "numpy" else "fast"
    report = gradient_check(net, x, t, mode=mode, dtype="float64")
    report.raise_if_failed()
    assert len(report.rows) == 16


def test_numerical_gradient_matches_gradient_with_fixed_masks(rng):
    net = DeepConvNet(**SMALL_DEEP, seed=4)
    random_biases_np(net, rng)
    x = rng.standard_normal((2, 1, 12, 12))
    t = np.array([1, 2])
    net.layers["Dropout1"].fixed_mask = rng.random((2, 5)) > 0.3
    net.layers["Dropout2"].fixed_mask = rng.random((2, 3)) > 0.3
    backprop = net.gradient(x, t)
    numeric = net.numerical_gradient(x, t)
    assert list(numeric) == list(backprop)
    for name in backprop:
        np.testing.assert_allclose(numeric[name], backprop[name], rtol=1e-5, atol=1e-8)


# --------------------------------------------------------------------------- seeds


def test_dropout_masks_follow_the_seed(xp, rng):
    xh = rng.standard_normal((6, 1, 12, 12))
    t = xp.asarray(np.array([0, 1, 2, 0, 1, 2]))

    def masks(seed):
        net = small_deep(xp, seed=seed)
        net.gradient(xp.asarray(xh), t)
        first = xp.to_numpy(net.layers["Dropout1"].mask)
        net.gradient(xp.asarray(xh), t)
        return first, xp.to_numpy(net.layers["Dropout1"].mask)

    a1, a2 = masks(7)
    b1, b2 = masks(7)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)  # a new mask every step (30 units: 2**-30 to collide)
    assert not np.array_equal(a1, masks(8)[0])


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"conv_param_2": {"filters": 3}}, ValueError, r"conv_param_2 has unknown keys \['filters'\]"),
    ({"dropout_ratio": 1.0}, ValueError, r"dropout_ratio must lie in \[0, 1\)"),
    ({"input_dim": (1, 3, 3)}, ValueError,
     r"Pool3 \(after conv 6\) \(height\): a window of 2 does not fit into an input of 1"),
    ({"output_size": -1}, ValueError, "output_size must be a positive integer"),
])
def test_bad_deep_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        DeepConvNet(**kwargs)


@pytest.mark.parametrize(("kwargs", "w7_rows"), [
    ({"conv_param_4": {"pad": 1}}, 64 * 3 * 3),  # 14 -> 14 -> pooled 7 -> 7 -> pooled 3
    ({"input_dim": (1, 16, 16)}, 64 * 2 * 2),    # 16 -> 8 -> 10 -> 5 -> 5 -> 2
])
def test_deep_floors_sizes_like_its_layers(kwargs, w7_rows):
    net = DeepConvNet(**kwargs, seed=0)
    assert tuple(net.params["W7"].shape) == (w7_rows, 50)
    x = np.random.default_rng(0).random((2, *net.input_dim))
    assert net.predict(x).shape == (2, 10)


# --------------------------------------------------------------------------- the book's weights


# The book's repository re-pickled both files in 2022 with other weights: its own code gives
# 0.961 (SimpleConvNet) and 0.976 (DeepConvNet) on the first 1000 test images with those, 0.990
# and 0.993 with the 2016 originals. The bounds hold for both.
@pytest.mark.mnist
def test_book_deep_convnet_weights_reach_the_books_accuracy():
    path = book_path("ch08/deep_convnet_params.pkl")
    x, t = mnist_test_images(1000)
    net = DeepConvNet(dtype="float32")
    net.load_params(path)
    assert net.accuracy(x, t) >= 0.97
    assert net.accuracy(x[:200].reshape(200, 784), t[:200], 50) == net.accuracy(x[:200], t[:200])
