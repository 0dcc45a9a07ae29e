"""xpnet.gradcheck: numerical_gradient, the full and fast gradient checks, their report, and
that a check fails when backprop is broken."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import layers
from xpnet.gradcheck import (
    GradcheckReport,
    GradientCheckError,
    ParamCheck,
    gradient_check,
    numerical_gradient,
)
from xpnet.layers import Affine, Sigmoid, SoftmaxWithLoss
from xpnet.nets import TwoLayerNet

NAMES = ("W1", "b1", "W2", "b2")


# --------------------------------------------------------------------------- numerical_gradient


@pytest.mark.parametrize("shape", [(), (4,), (2, 3)], ids=["0d", "1d", "2d"])
def test_numerical_gradient_of_a_cubic(xp, rng, shape):
    xh = rng.standard_normal(shape)
    x = xp.asarray(xh)
    grad = numerical_gradient(lambda v: xp.sum(v * v * v), x)
    xp.assert_on(grad, "float64", shape)
    xp.assert_close(grad, 3 * xh**2, rtol=1e-7, atol=1e-8)  # truncation error h**2 = 1e-8
    xp.assert_close(x, xh, rtol=0)  # every element restored exactly


def test_numerical_gradient_float32_keeps_dtype_and_device(xp, rng):
    xh = rng.standard_normal((2, 2)).astype(np.float32)
    x = xp.asarray(xh)
    grad = numerical_gradient(lambda v: xp.sum(v * v), x, h=1e-2)
    xp.assert_on(grad, "float32", (2, 2))
    xp.assert_close(grad, 2 * xh, rtol=1e-3, atol=1e-3)
    xp.assert_close(x, xh, rtol=0)


def test_numerical_gradient_sees_the_array_through_a_closure(xp):
    # the book's net.numerical_gradient ignores its argument and reads the parameter itself
    w = xp.asarray([1.0, -2.0])
    grad = numerical_gradient(lambda _: xp.sum(w * w), w)
    xp.assert_close(grad, [2.0, -4.0], rtol=1e-9)


# --------------------------------------------------------------------------- the report


def _away_from_kink(xh, w1, margin):
    """Every hidden pre-activation (biases start at 0) is more than ``margin`` from 0: a
    numerical derivative across ReLU's kink is meaningless."""
    assert np.min(np.abs(xh @ w1)) > margin, "data too close to the ReLU kink: change the seed"


def _small(xp, rng, *, dtype=None, seed=0, n=4, sizes=(6, 4, 3), net_cls=TwoLayerNet,
           margin=1e-3):
    net = net_cls(*sizes, weight_init_std=0.5, xp=xp.namespace, device=xp.device, dtype=dtype,
                  seed=seed)
    xh = rng.standard_normal((n, sizes[0]))
    _away_from_kink(xh, xp.to_numpy(net.params["W1"]).astype(np.float64), margin)
    x = xp.asarray(xh, "float32" if dtype == "float32" else "float64")
    return net, x, xp.asarray(rng.integers(0, sizes[2], n), "uint8")


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_report_contents(xp, rng, mode):
    net, x, t = _small(xp, rng)
    report = gradient_check(net, x, t, mode=mode, n_directions=3)
    assert isinstance(report, GradcheckReport)
    assert report.ok
    assert report.raise_if_failed() is report
    assert report.mode == mode
    assert report.dtype == "float64"
    assert report.backend == xp.name.split("-")[0]
    assert report.device == str(xp.device)
    assert (report.h, report.atol, report.rtol) == (1e-4, 1e-8, 1e-6)
    assert [r.name for r in report.rows] == list(NAMES)
    assert all(isinstance(r, ParamCheck) for r in report.rows)
    sizes = {"W1": (6, 4), "b1": (4,), "W2": (4, 3), "b2": (3,)}
    for row in report.rows:
        assert row.shape == sizes[row.name]
        assert row.compared == (int(np.prod(row.shape)) if mode == "full" else 3)
        assert row.ok
        assert row.scale > 0
        assert row.max_abs < 1e-8
        assert row.max_rel == pytest.approx(row.max_abs / row.scale)
    assert set(report.max_abs) == set(NAMES)

    text = str(report)
    assert text == report.table()
    lines = text.splitlines()
    assert lines[0].startswith(f"gradient check ({mode} mode, float64, {report.backend} on ")
    assert "pass: max_abs <= 1e-08 + 1e-06 * scale" in lines[0]
    assert lines[1].split() == ["param", "shape", "elements" if mode == "full" else "directions",
                                "scale", "max_abs", "max_rel", "result"]
    assert len(lines) == 2 + len(NAMES)
    for line, row in zip(lines[2:], report.rows, strict=True):
        assert line.startswith(row.name)
        assert str(row.shape) in line
        assert f"{row.max_abs:.2e}" in line
        assert line.endswith("ok")


def test_gradient_check_leaves_the_network_alone(xp, rng):
    net, x, t = _small(xp, rng, dtype="float32")
    before = {k: xp.to_numpy(v) for k, v in net.params.items()}
    ids = {k: id(v) for k, v in net.params.items()}
    for mode in ("full", "fast"):
        gradient_check(net, x, t, mode=mode)
    assert net.dtype == xp.float32
    for name in NAMES:
        assert id(net.params[name]) == ids[name]
        np.testing.assert_array_equal(xp.to_numpy(net.params[name]), before[name])


def test_float32_network_is_checked_in_float64(xp, rng):
    net, x, t = _small(xp, rng, dtype="float32", seed=1)
    report = gradient_check(net, x, t)
    assert report.dtype == "float64"
    report.raise_if_failed()
    assert max(report.max_abs.values()) < 1e-8


def test_float32_check(xp, rng):
    net, x, t = _small(xp, rng, seed=2, margin=0.05)  # h = 1e-2 in float32
    report = gradient_check(net, x, t, dtype="float32")
    assert report.dtype == "float32"
    assert (report.h, report.atol, report.rtol) == (1e-2, 5e-5, 1e-3)
    report.raise_if_failed()


def test_device_without_float64_is_checked_in_float32(rng):
    pytest.importorskip("array_api_strict")
    net = TwoLayerNet(4, 3, 2, weight_init_std=0.5, xp="array_api_strict", device="no_float64",
                      seed=4)
    xh = rng.standard_normal((3, 4)).astype(np.float32)
    _away_from_kink(xh, np.asarray(net.to("numpy").params["W1"]), 0.05)  # h = 1e-2 in float32
    x = net.xp.asarray(xh, device=net.device)
    t = net.xp.asarray(np.array([0, 1, 1]), device=net.device)
    report = gradient_check(net, x, t)
    assert report.dtype == "float32"
    assert "no_float64" in report.device
    report.raise_if_failed()


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [({"mode": "exact"}, "mode must be 'full' or 'fast', got 'exact'"),
     ({"dtype": "float16"}, "dtype must be 'float32' or 'float64', got 'float16'")],
)
def test_bad_arguments(kwargs, pattern):
    net = TwoLayerNet(2, 2, 2, seed=0)
    with pytest.raises(ValueError, match=pattern):
        gradient_check(net, np.zeros((1, 2)), np.zeros(1, dtype=np.int64), **kwargs)


# --------------------------------------------------------------------------- checks that fail


def _break_affine(monkeypatch, *, first_layer: bool, attr: str, factor: float = 1.01):
    """Scale one Affine layer's dW or db by ``factor`` after a correct backward."""
    original = layers.Affine.backward

    def backward(self, dout):
        dx = original(self, dout)
        if (not self.input_grad) == first_layer:
            setattr(self, attr, getattr(self, attr) * factor)
        return dx

    monkeypatch.setattr(layers.Affine, "backward", backward)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize(
    ("first_layer", "attr", "broken"),
    [(True, "dW", "W1"), (False, "dW", "W2"), (False, "db", "b2")],
)
def test_broken_backprop_is_caught(xp, rng, monkeypatch, mode, first_layer, attr, broken):
    net, x, t = _small(xp, rng, seed=4)
    gradient_check(net, x, t, mode=mode).raise_if_failed()  # correct before breaking it
    _break_affine(monkeypatch, first_layer=first_layer, attr=attr)
    report = gradient_check(net, x, t, mode=mode)
    assert not report.ok
    assert [r.name for r in report.rows if not r.ok] == [broken]
    with pytest.raises(GradientCheckError,
                       match=rf"backprop disagrees with numerical gradients for {broken}\n") as exc:
        report.raise_if_failed()
    assert exc.value.report is report
    assert isinstance(exc.value, AssertionError)
    assert f"{broken} " in str(exc.value)
    assert "FAIL" in str(exc.value)


@pytest.mark.parametrize("mode", ["full", "fast"])
@pytest.mark.parametrize(
    ("first_layer", "attr", "broken"),
    [(True, "dW", "W1"), (True, "db", "b1"), (False, "dW", "W2"), (False, "db", "b2")],
)
def test_float32_check_catches_a_one_percent_error(xp, rng, monkeypatch, mode, first_layer,
                                                   attr, broken):
    """The float32 defaults are tight enough that a gradient 1% too large fails, in both
    modes, on every parameter (the old ``atol=1e-4, rtol=1e-2`` let it pass)."""
    net, x, t = _small(xp, rng, seed=2, margin=0.05)  # h = 1e-2 in float32
    gradient_check(net, x, t, mode=mode, dtype="float32").raise_if_failed()
    _break_affine(monkeypatch, first_layer=first_layer, attr=attr, factor=1.01)
    report = gradient_check(net, x, t, mode=mode, dtype="float32")
    assert [r.name for r in report.rows if not r.ok] == [broken]


def test_fast_mode_catches_breakage_on_the_book_sizes(rng, monkeypatch):
    net = TwoLayerNet(784, 50, 10, seed=5)
    x = rng.standard_normal((5, 784))
    t = rng.integers(0, 10, 5)
    _break_affine(monkeypatch, first_layer=True, attr="dW")
    report = gradient_check(net, x, t, mode="fast")
    assert [r.name for r in report.rows if not r.ok] == ["W1"]


class _ScaledW2Net(TwoLayerNet):
    """A subclass whose backprop overstates dW2 by 1%."""

    def gradient(self, x, t):
        grads = super().gradient(x, t)
        grads["W2"] = grads["W2"] * 1.01
        return grads


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_broken_subclass_is_caught(xp, rng, mode):
    net, x, t = _small(xp, rng, seed=6, net_cls=_ScaledW2Net)
    with pytest.raises(GradientCheckError, match=r"for W2\n"):
        gradient_check(net, x, t, mode=mode).raise_if_failed()


def test_relu_that_passes_every_gradient_is_caught(xp, rng, monkeypatch):
    net, x, t = _small(xp, rng, seed=7)
    monkeypatch.setattr(layers.Relu, "backward", lambda self, dout: dout)
    report = gradient_check(net, x, t)
    assert {r.name for r in report.rows if not r.ok} == {"W1", "b1"}


# --------------------------------------------------------------------------- any network


class _BookStyleNet:
    """A network as the book writes one: a plain dict of arrays shared with its layers."""

    def __init__(self, xp, device):
        rng = np.random.default_rng(13)
        self.params = {
            "W1": xp.asarray(rng.standard_normal((5, 4)), device=device),
            "b1": xp.asarray(rng.standard_normal(4), device=device),
            "W2": xp.asarray(rng.standard_normal((4, 3)), device=device),
            "b2": xp.asarray(np.zeros(3), device=device),
        }
        self.layers = [Affine(self.params["W1"], self.params["b1"]), Sigmoid(),
                       Affine(self.params["W2"], self.params["b2"])]
        self.last = SoftmaxWithLoss()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.last.forward(x, t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last.backward(1.0)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        a1, a2 = self.layers[0], self.layers[2]
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}


def test_gradient_check_works_on_any_network_with_params_loss_gradient(xp, rng):
    net = _BookStyleNet(xp.namespace, xp.device)
    before = {k: xp.to_numpy(v) for k, v in net.params.items()}
    x = xp.asarray(rng.standard_normal((3, 5)))
    t = xp.asarray([0, 2, 1], "uint8")
    report = gradient_check(net, x, t, mode="full")
    assert [row.name for row in report.rows] == ["W1", "b1", "W2", "b2"]
    report.raise_if_failed()
    for name, value in before.items():  # every element restored exactly
        xp.assert_close(net.params[name], value, rtol=0)
    with pytest.raises(ValueError, match="use mode='full'"):
        gradient_check(net, x, t, mode="fast")
