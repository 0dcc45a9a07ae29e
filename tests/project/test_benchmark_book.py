"""``benchmarks/book.py``, the book's reference code the benchmarks' "book" contenders run,
computes what xpnet computes: the same losses, gradients and updates from the same weights (a
contender that trained something else would make the comparison meaningless). No timing here:
speed is measured in ``benchmarks/``."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet
from benchmarks import book
from xpnet.nets import DeepConvNet, SimpleConvNet, TwoLayerNet


def _host(net) -> dict[str, np.ndarray]:
    return {k: np.array(v, dtype=np.float64) for k, v in net.params.items()}


def _assert_same(got: dict[str, np.ndarray], want: dict[str, object]) -> None:
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=1e-9, atol=1e-12,
                                   err_msg=k)


def test_im2col_and_col2im_are_xpnets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    for fh, stride, pad in ((3, 1, 1), (2, 2, 0), (3, 2, 2)):
        cols = book.im2col(x, fh, fh, stride, pad)
        np.testing.assert_array_equal(cols, np.asarray(xpnet.im2col(x, fh, fh, stride, pad)))
        np.testing.assert_allclose(book.col2im(cols, x.shape, fh, fh, stride, pad),
                                   np.asarray(xpnet.col2im(cols, x.shape, fh, fh, stride, pad)),
                                   rtol=1e-12)


@pytest.mark.parametrize("labels", ["index", "one-hot"])
def test_two_layer_net(labels):
    rng = np.random.default_rng(1)
    x = rng.random((8, 784))
    t = rng.integers(0, 10, 8)
    ours = TwoLayerNet(784, 50, 10, dtype="float64", seed=0)
    net = book.two_layer_net(_host(ours))
    t_book = np.eye(10)[t] if labels == "one-hot" else t
    _assert_same(net.gradient(x, t_book), ours.gradient(x, t))
    # The book adds 1e-7 inside the log (y near 0.1 here: 1e-6 more than the exact loss).
    assert net.loss(x, t_book) == pytest.approx(float(ours.loss(x, t)), rel=1e-5)
    assert net.accuracy(x, t_book) == pytest.approx(float(ours.accuracy(x, t)))


def test_sgd_iteration_is_the_scripts_update():
    rng = np.random.default_rng(2)
    x, t = rng.random((50, 784)), np.eye(10)[rng.integers(0, 10, 50)]
    params = _host(TwoLayerNet(784, 50, 10, dtype="float64", seed=0))
    net = book.two_layer_net({k: v.copy() for k, v in params.items()})
    np.random.seed(3)  # noqa: NPY002  (the script's global generator)
    losses: list[float] = []
    book.sgd_iteration(net, x, t, 10, 0.1, losses)
    np.random.seed(3)  # noqa: NPY002
    mask = np.random.choice(50, 10)  # noqa: NPY002
    grads = book.two_layer_net({k: v.copy() for k, v in params.items()}).gradient(x[mask],
                                                                                t[mask])
    _assert_same(net.params, {k: params[k] - 0.1 * grads[k] for k in params})
    assert losses == [pytest.approx(net.loss(x[mask], t[mask]))]


def test_simple_convnet():
    rng = np.random.default_rng(4)
    x = rng.random((3, 1, 28, 28))
    t = rng.integers(0, 10, 3)
    ours = SimpleConvNet(seed=0, dtype="float64")
    _assert_same(book.simple_convnet(_host(ours)).gradient(x, t), ours.gradient(x, t))


def test_deep_convnet():
    rng = np.random.default_rng(5)
    x = rng.random((2, 1, 28, 28))
    t = rng.integers(0, 10, 2)
    ours = DeepConvNet(seed=0, dtype="float64", dropout_ratio=0.0)  # masks: all ones
    net = book.deep_convnet(_host(ours), np.random.default_rng(0))
    for name in ("Dropout1", "Dropout2"):
        net.layers[name].ratio = 0.0
    _assert_same(net.gradient(x, t), ours.gradient(x, t))
    # Test time, the book's ratio 0.5: each dropout layer scales by 1 - ratio.
    ours = DeepConvNet(seed=0, dtype="float64")
    net = book.deep_convnet(_host(ours), np.random.default_rng(0))
    np.testing.assert_allclose(net.predict(x), np.asarray(ours.predict(x)), rtol=1e-9)


def test_adam_is_xpnets():
    rng = np.random.default_rng(6)
    params = {"W": rng.standard_normal((4, 3)), "b": rng.standard_normal(3)}
    theirs = {k: v.copy() for k, v in params.items()}
    ours, opt = {k: v.copy() for k, v in params.items()}, xpnet.Adam(lr=0.01)
    adam = book.Adam(lr=0.01)
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        adam.update(theirs, grads)
        opt.update(ours, {k: g.copy() for k, g in grads.items()})
    _assert_same(theirs, ours)
