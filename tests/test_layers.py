"""xpnet.layers: the book's examples, gradients against numerical differentiation, dout left
untouched, dtype and device kept, and clear errors for bad inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xpnet.gradcheck import numerical_gradient
from xpnet.layers import (
    AddLayer,
    Affine,
    BatchNormalization,
    Dropout,
    MulLayer,
    Relu,
    Sigmoid,
    SoftmaxWithLoss,
)
from xpnet.rng import random_generator

RTOL, ATOL = 1e-7, 1e-9  # float64 central differences: truncation ~1e-9, round-off ~1e-11


def _numerical(xp, f, x):
    """Host numerical gradient of the scalar ``f()`` with respect to backend array ``x``
    (``f`` reads ``x``, which numerical_gradient changes in place)."""
    return xp.to_numpy(numerical_gradient(lambda _: f(), x))


def _away_from_zero(rng, shape, margin=0.1):
    """Normal samples with |x| > margin (no ReLU kink within a step)."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.sign(x + 1e-300) * (margin + np.abs(x)), x)


# --------------------------------------------------------------------------- the book's examples


def test_buy_apple_with_python_numbers():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    price = mul_tax_layer.forward(apple_price, tax)
    assert price == pytest.approx(220.0, rel=1e-15)

    dapple_price, dtax = mul_tax_layer.backward(1)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    assert dapple_price == pytest.approx(1.1, rel=1e-15)
    assert dtax == pytest.approx(200.0, rel=1e-15)
    assert dapple == pytest.approx(2.2, rel=1e-15)
    assert dapple_num == pytest.approx(110.0, rel=1e-15)
    assert all(isinstance(v, (int, float)) for v in (price, dtax, dapple, dapple_num))


def _apple_orange(apple, apple_num, orange, orange_num, tax):
    mul_apple_layer, mul_orange_layer = MulLayer(), MulLayer()
    add_apple_orange_layer, mul_tax_layer = AddLayer(), MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dall_price, dtax = mul_tax_layer.backward(1)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    return {
        "price": price, "all_price": all_price, "dall_price": dall_price, "dtax": dtax,
        "dapple_price": dapple_price, "dorange_price": dorange_price, "dapple": dapple,
        "dapple_num": dapple_num, "dorange": dorange, "dorange_num": dorange_num,
    }


# The book's figure 5-17 (tax 1.1 on 2 apples at 100 and 3 oranges at 150).
APPLE_ORANGE = {
    "price": 715.0, "all_price": 650.0, "dall_price": 1.1, "dtax": 650.0,
    "dapple_price": 1.1, "dorange_price": 1.1, "dapple": 2.2, "dapple_num": 110.0,
    "dorange": 3.3, "dorange_num": 165.0,
}


def test_buy_apple_orange_with_python_numbers():
    got = _apple_orange(100, 2, 150, 3, 1.1)
    for name, want in APPLE_ORANGE.items():
        assert got[name] == pytest.approx(want, rel=1e-14), name


@pytest.mark.parametrize("shape", [(), (1,), (3,)], ids=["0d", "1d", "batch"])
def test_buy_apple_with_arrays(xp, shape):
    def arr(v):
        return xp.asarray(np.full(shape, v, dtype=np.float64))

    mul_apple_layer, mul_tax_layer = MulLayer(), MulLayer()
    price = mul_tax_layer.forward(mul_apple_layer.forward(arr(100.0), arr(2.0)), arr(1.1))
    dapple_price, dtax = mul_tax_layer.backward(arr(1.0))
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    for got, want in ((price, 220.0), (dapple_price, 1.1), (dtax, 200.0), (dapple, 2.2),
                      (dapple_num, 110.0)):
        xp.assert_on(got, "float64", shape)
        xp.assert_close(got, np.full(shape, want), rtol=1e-14)


@pytest.mark.parametrize("form", ["0d", "1d", "mixed"])
def test_buy_apple_orange_with_arrays(xp, form):
    if form == "mixed":  # prices as arrays, counts and tax as Python numbers
        got = _apple_orange(xp.asarray(100.0), 2, xp.asarray(150.0), 3, 1.1)
        shapes = {"dtax": (), "dapple_num": (), "dorange_num": ()}
    else:
        shape = () if form == "0d" else (1,)

        def arr(v):
            return xp.asarray(np.full(shape, v, dtype=np.float64))

        got = _apple_orange(arr(100.0), arr(2.0), arr(150.0), arr(3.0), arr(1.1))
        shapes = dict.fromkeys(APPLE_ORANGE, shape)
    for name, want in APPLE_ORANGE.items():
        value = got[name]
        if name in shapes:
            xp.assert_on(value, "float64", shapes[name])
        assert float(xp.to_numpy(value).sum()) == pytest.approx(want, rel=1e-14), name


# --------------------------------------------------------------------------- Add and Mul


# The last two stretch axes of length 2: they guard the reduction's `!= 1` test (mutation
# testing found `!= 2` unnoticed while every stretched axis had another length).
# A middle axis stretched in 3-D: its index counts from the front (`lead + i`); in 2-D a
# mistaken `lead - i` names the same axis from the back, and no 2-D case can tell.
BROADCAST = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (3, 4)), ((), (2, 3)), ((2, 3), (1,)),
             ((2, 1), (1, 2)), ((2, 2), (1, 2)), ((2, 4, 3), (2, 1, 3))]


@pytest.mark.parametrize(("xshape", "yshape"), BROADCAST, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layer_cls", [AddLayer, MulLayer])
def test_add_mul_gradients_with_broadcasting(xp, rng, layer_cls, xshape, yshape):
    xh, yh = rng.standard_normal(xshape), rng.standard_normal(yshape)
    out_shape = np.broadcast_shapes(xshape, yshape)
    wh = rng.standard_normal(out_shape)
    x, y, w = xp.asarray(xh), xp.asarray(yh), xp.asarray(wh)

    layer = layer_cls()
    out = layer.forward(x, y)
    xp.assert_close(out, xh + yh if layer_cls is AddLayer else xh * yh, rtol=1e-15)
    dx, dy = layer.backward(w)
    xp.assert_on(dx, "float64", xshape)
    xp.assert_on(dy, "float64", yshape)

    def loss():
        return xp.sum(layer_cls().forward(x, y) * w)

    xp.assert_close(dx, _numerical(xp, loss, x), rtol=RTOL, atol=ATOL)
    xp.assert_close(dy, _numerical(xp, loss, y), rtol=RTOL, atol=ATOL)
    xp.assert_close(w, wh, rtol=0)  # dout untouched


def test_add_backward_hands_each_input_its_own_array(xp):
    dout = xp.asarray([1.0, 2.0])
    layer = AddLayer()
    layer.forward(xp.asarray([0.0, 0.0]), xp.asarray([0.0, 0.0]))
    dx, dy = layer.backward(dout)
    assert dx is not dout
    assert dy is not dout
    assert dx is not dy


def test_mul_with_a_python_number(xp, rng):
    xh, wh = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    layer = MulLayer()
    xp.assert_close(layer.forward(xp.asarray(xh), 3.0), xh * 3.0, rtol=1e-15)
    dx, dy = layer.backward(xp.asarray(wh))
    xp.assert_close(dx, wh * 3.0, rtol=1e-15)
    xp.assert_close(dy, np.sum(wh * xh), rtol=1e-13)


@pytest.mark.parametrize("layer_cls", [AddLayer, MulLayer])
def test_add_mul_leave_float_with_integer_to_the_library(xp, layer_cls):
    """A float array with an integer array is left to the library's own promotion (only two
    floating dtypes are cast by xpnet): guards the dtype check's `and` against `or`, which
    sends the integer array to the floating-point promotion and refuses it."""
    x = xp.asarray([1.5, -2.0], "float32")
    k = xp.asarray([3, 4], "int32")
    try:
        want = x + k if layer_cls is AddLayer else x * k
    except TypeError:  # array-api-strict: no float-with-integer promotion at all
        with pytest.raises(TypeError):
            layer_cls().forward(x, k)
        return
    out = layer_cls().forward(x, k)
    assert out.dtype == want.dtype
    xp.assert_close(out, xp.to_numpy(want), rtol=0)


def test_mul_refuses_mixed_backends(xp):
    other = np.ones(2) if xp.name != "numpy" else pytest.importorskip("array_api_strict").ones(2)
    with pytest.raises(TypeError, match="different array libraries"):
        MulLayer().forward(xp.asarray([1.0, 2.0]), other)
    with pytest.raises(TypeError, match="different array libraries"):
        AddLayer().forward(other, xp.asarray([1.0, 2.0]))


# --------------------------------------------------------------------------- Relu and Sigmoid


def test_relu_forward_and_gradient(xp, rng):
    xh, wh = _away_from_zero(rng, (3, 4)), rng.standard_normal((3, 4))
    assert np.any(xh < 0)
    assert np.any(xh > 0)
    x, w = xp.asarray(xh), xp.asarray(wh)
    layer = Relu()
    xp.assert_close(layer.forward(x), np.maximum(xh, 0.0), rtol=0)
    dx = layer.backward(w)
    xp.assert_close(dx, (xh > 0) * wh, rtol=0)
    xp.assert_close(dx, _numerical(xp, lambda: xp.sum(Relu().forward(x) * w), x),
                    rtol=RTOL, atol=ATOL)
    xp.assert_close(w, wh, rtol=0)  # the book's Relu zeroed dout in place


def test_relu_gradient_at_zero_is_zero(xp):
    layer = Relu()
    layer.forward(xp.asarray([-1.0, 0.0, 1.0]))
    xp.assert_close(layer.backward(xp.asarray([5.0, 5.0, 5.0])), [0.0, 0.0, 5.0], rtol=0)


def test_relu_backward_on_a_fresh_dout_each_time(xp):
    layer = Relu()
    layer.forward(xp.asarray([-1.0, 2.0]))
    dout = xp.asarray([3.0, 4.0])
    first = xp.to_numpy(layer.backward(dout))
    second = xp.to_numpy(layer.backward(dout))
    np.testing.assert_array_equal(first, [0.0, 4.0])
    np.testing.assert_array_equal(second, first)
    xp.assert_close(dout, [3.0, 4.0], rtol=0)


def test_sigmoid_forward_and_gradient(xp, rng):
    xh, wh = rng.standard_normal((3, 4)) * 3, rng.standard_normal((3, 4))
    x, w = xp.asarray(xh), xp.asarray(wh)
    layer = Sigmoid()
    y = layer.forward(x)
    want = np.exp(-np.logaddexp(0.0, -xh))
    xp.assert_close(y, want, rtol=1e-14)
    dx = layer.backward(w)
    xp.assert_close(dx, wh * want * (1 - want), rtol=1e-12)
    xp.assert_close(dx, _numerical(xp, lambda: xp.sum(Sigmoid().forward(x) * w), x),
                    rtol=RTOL, atol=ATOL)
    xp.assert_close(w, wh, rtol=0)


# --------------------------------------------------------------------------- Affine


@pytest.mark.parametrize("xshape", [(2, 4), (2, 2, 2), (3, 1, 2, 2)], ids=["2d", "3d", "4d"])
def test_affine_forward_and_gradients(xp, rng, xshape):
    n, features = xshape[0], int(np.prod(xshape[1:]))
    xh = rng.standard_normal(xshape)
    Wh, bh = rng.standard_normal((features, 3)), rng.standard_normal(3)
    wh = rng.standard_normal((n, 3))
    x, W, b, w = xp.asarray(xh), xp.asarray(Wh), xp.asarray(bh), xp.asarray(wh)

    layer = Affine(W, b)
    out = layer.forward(x)
    xp.assert_on(out, "float64", (n, 3))
    xp.assert_close(out, xh.reshape(n, -1) @ Wh + bh, rtol=1e-13)
    dx = layer.backward(w)
    xp.assert_on(dx, "float64", xshape)  # the original shape back
    xp.assert_on(layer.dW, "float64", (features, 3))
    xp.assert_on(layer.db, "float64", (3,))

    def loss():
        return xp.sum(Affine(W, b).forward(x) * w)

    xp.assert_close(dx, _numerical(xp, loss, x), rtol=RTOL, atol=ATOL)
    xp.assert_close(layer.dW, _numerical(xp, loss, W), rtol=RTOL, atol=ATOL)
    xp.assert_close(layer.db, _numerical(xp, loss, b), rtol=RTOL, atol=ATOL)
    xp.assert_close(w, wh, rtol=0)
    xp.assert_close(W, Wh, rtol=0)  # numerical_gradient restored the parameters exactly


def test_affine_without_input_grad(xp, rng):
    xh, Wh = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    wh = rng.standard_normal((2, 2))
    layer = Affine(xp.asarray(Wh), xp.asarray(np.zeros(2)), input_grad=False)
    layer.forward(xp.asarray(xh))
    assert layer.backward(xp.asarray(wh)) is None
    xp.assert_close(layer.dW, xh.T @ wh, rtol=1e-13)
    xp.assert_close(layer.db, wh.sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize(
    ("xshape", "pattern"),
    [((2, 5), r"Affine expects 4 input features, got input of shape \(2, 5\) \(5 features"),
     ((2, 2, 3), r"expects 4 input features, got input of shape \(2, 2, 3\) \(6 features after"),
     ((), r"Affine needs input of shape \(N, features\), got a 0-d array")],
)
def test_affine_shape_errors(xp, xshape, pattern):
    layer = Affine(xp.asarray(np.zeros((4, 3))), xp.asarray(np.zeros(3)))
    with pytest.raises(ValueError, match=pattern):
        layer.forward(xp.asarray(np.zeros(xshape)))


def test_affine_refuses_integer_input(xp):
    layer = Affine(xp.asarray(np.zeros((4, 3))), xp.asarray(np.zeros(3)))
    with pytest.raises(TypeError, match=r"Affine needs floating arrays, got dtypes .*uint8"):
        layer.forward(xp.asarray(np.zeros((2, 4)), "uint8"))


def test_affine_refuses_another_backend(xp):
    other = np.zeros((2, 4)) if xp.name != "numpy" else (
        pytest.importorskip("array_api_strict").zeros((2, 4)))
    layer = Affine(xp.asarray(np.zeros((4, 3))), xp.asarray(np.zeros(3)))
    with pytest.raises(TypeError, match="different array libraries"):
        layer.forward(other)


# --------------------------------------------------------------------------- SoftmaxWithLoss


def _ce_ref(xh, labels):
    logp = xh - np.logaddexp.reduce(xh, axis=-1, keepdims=True)
    return -np.mean(logp[np.arange(len(labels)), labels])


@pytest.mark.parametrize("labels_as", ["one-hot", "uint8", "int8", "int16", "int32", "int64"])
def test_softmax_with_loss_gradient(xp, rng, labels_as):
    xh = rng.standard_normal((4, 3)) * 2
    labels = np.array([2, 0, 1, 2])
    th = np.eye(3)[labels] if labels_as == "one-hot" else labels.astype(labels_as)
    x, t = xp.asarray(xh), xp.asarray(th)

    layer = SoftmaxWithLoss()
    loss = layer.forward(x, t)
    xp.assert_on(loss, "float64", ())
    xp.assert_close(loss, _ce_ref(xh, labels), rtol=1e-13)
    xp.assert_close(layer.y, np.exp(xh - np.logaddexp.reduce(xh, axis=1, keepdims=True)),
                    rtol=1e-13)
    dx = layer.backward(1.0)
    xp.assert_on(dx, "float64", (4, 3))
    numeric = _numerical(xp, lambda: SoftmaxWithLoss().forward(x, t), x)
    xp.assert_close(dx, numeric, rtol=RTOL, atol=ATOL)
    xp.assert_close(layer.backward(), numeric, rtol=RTOL, atol=ATOL)  # dout defaults to 1
    xp.assert_close(layer.backward(2.5), 2.5 * xp.to_numpy(dx), rtol=1e-15)


@pytest.mark.parametrize("labels_as", ["one-hot", "uint8", "int64"])
def test_softmax_with_loss_single_sample(xp, rng, labels_as):
    xh = rng.standard_normal(4)
    th = np.eye(4)[1] if labels_as == "one-hot" else np.asarray(1, dtype=labels_as)
    x, t = xp.asarray(xh), xp.asarray(th)
    layer = SoftmaxWithLoss()
    xp.assert_close(layer.forward(x, t), _ce_ref(xh[None, :], np.array([1])), rtol=1e-13)
    dx = layer.backward(1.0)
    xp.assert_on(dx, "float64", (4,))
    numeric = _numerical(xp, lambda: SoftmaxWithLoss().forward(x, t), x)
    xp.assert_close(dx, numeric, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n", [1, 3])
def test_softmax_with_loss_takes_a_column_of_class_indices(xp, rng, n):
    # The book's ch07/gradient_check.py passes T = np.array([1]).reshape((1, 1)).
    xh, th = rng.standard_normal((n, 4)), rng.integers(0, 4, n)
    flat, column = SoftmaxWithLoss(), SoftmaxWithLoss()
    want = flat.forward(xp.asarray(xh), xp.asarray(th, "int64"))
    got = column.forward(xp.asarray(xh), xp.asarray(th.reshape(n, 1), "int64"))
    xp.assert_close(got, xp.to_numpy(want), rtol=0)
    xp.assert_close(column.backward(1.0), xp.to_numpy(flat.backward(1.0)), rtol=0)
    xp.assert_close(got, _ce_ref(xh, th), rtol=1e-13)


def test_softmax_with_loss_dout_array_untouched(xp, rng):
    layer = SoftmaxWithLoss()
    layer.forward(xp.asarray(rng.standard_normal((2, 3))), xp.asarray([0, 2], "uint8"))
    dout = xp.asarray(2.0)
    layer.backward(dout)
    xp.assert_close(dout, 2.0, rtol=0)


@pytest.mark.parametrize(("labels", "dtype"), [([0, 3], "uint8"), ([-1, 0], "int16")])
def test_softmax_with_loss_label_out_of_range(xp, labels, dtype):
    x = xp.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for 3 classes"):
        SoftmaxWithLoss().forward(x, xp.asarray(labels, dtype))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        SoftmaxWithLoss().forward(x[0, ...], xp.asarray(max(labels, key=abs), dtype))
    # a trainer that checked its labels once may turn the check off
    SoftmaxWithLoss(check_labels=False).forward(x, xp.asarray(labels, dtype))


def test_softmax_with_loss_bad_labels(xp):
    x = xp.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"class indices must have shape \(2,\)"):
        SoftmaxWithLoss().forward(x, xp.asarray([0, 1, 2], "int64"))
    with pytest.raises(TypeError, match=r"look like class indices, which must be integers"):
        SoftmaxWithLoss().forward(x, xp.asarray([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"one-hot labels must have shape \(2, 3\)"):
        SoftmaxWithLoss().forward(x, xp.asarray(np.zeros((2, 2))))
    with pytest.raises(TypeError, match="labels have dtype bool"):
        SoftmaxWithLoss().forward(x, xp.asarray([True, False]))


# --------------------------------------------------------------------------- dtype and device


def test_float32_in_float32_out_on_the_device(xp, rng):
    def f32(shape):
        return xp.asarray(rng.standard_normal(shape), "float32")

    x, y, dout = f32((2, 3)), f32((2, 3)), f32((2, 3))
    for layer in (AddLayer(), MulLayer()):
        xp.assert_on(layer.forward(x, y), "float32", (2, 3))
        for g in layer.backward(dout):
            xp.assert_on(g, "float32", (2, 3))
        xp.assert_on(layer.forward(x, 2.0), "float32", (2, 3))
        dx, _ = layer.backward(dout)
        xp.assert_on(dx, "float32", (2, 3))
    for layer in (Relu(), Sigmoid()):
        xp.assert_on(layer.forward(x), "float32", (2, 3))
        xp.assert_on(layer.backward(dout), "float32", (2, 3))

    affine = Affine(f32((6, 4)), f32((4,)))
    xp.assert_on(affine.forward(f32((2, 3, 2))), "float32", (2, 4))
    xp.assert_on(affine.backward(f32((2, 4))), "float32", (2, 3, 2))
    xp.assert_on(affine.dW, "float32", (6, 4))
    xp.assert_on(affine.db, "float32", (4,))

    labels = np.array([1, 0])
    for t in (xp.asarray(labels, "uint8"), xp.asarray(np.eye(3)[labels], "float32"),
              xp.asarray(np.eye(3)[labels], "float64")):
        layer = SoftmaxWithLoss()
        xp.assert_on(layer.forward(x, t), "float32", ())
        xp.assert_on(layer.backward(1.0), "float32", (2, 3))
        xp.assert_on(layer.backward(xp.asarray(1.0, "float32")), "float32", (2, 3))
    single = SoftmaxWithLoss()
    xp.assert_on(single.forward(x[0, ...], xp.asarray(1, "uint8")), "float32", ())
    xp.assert_on(single.backward(), "float32", (3,))


# --------------------------------------------------------------------------- mixed dtypes

# (x, W, b) dtypes: the book's float32 images (and chapter 8's float16 ones) with float64 weights,
# and the other ways round.
MIXED = [("float32", "float64", "float64"), ("float16", "float64", "float64"),
         ("float64", "float32", "float32"), ("float16", "float32", "float32"),
         ("float32", "float32", "float64"), ("float32", "float16", "float16")]
TOL = {"float16": 2e-3, "float32": 2e-6, "float64": 1e-13}


def _skip_float16(xp, *dtypes):
    if "float16" in dtypes and xp.name.startswith("array_api_strict"):
        pytest.skip("array-api-strict has no float16 (the Array API standard defines none)")


@pytest.mark.parametrize(("xd", "wd", "bd"), MIXED, ids=["-".join(m) for m in MIXED])
def test_affine_mixed_dtypes_follow_numpy(xp, rng, xd, wd, bd):
    _skip_float16(xp, xd, wd, bd)
    xh = rng.random((5, 2, 3)).astype(xd)  # N-D input, flattened to (5, 6)
    Wh, bh = rng.standard_normal((6, 4)).astype(wd), rng.standard_normal(4).astype(bd)
    # NumPy, as the book's code runs it: the reference dtypes and values.
    x2 = xh.reshape(5, -1)
    out_ref = np.dot(x2, Wh) + bh
    douth = rng.standard_normal((5, 4)).astype(out_ref.dtype)
    dx_ref = np.dot(douth, Wh.T).reshape(xh.shape)
    dW_ref, db_ref = np.dot(x2.T, douth), np.sum(douth, axis=0)

    W, b = xp.asarray(Wh), xp.asarray(bh)
    layer = Affine(W, b)
    out = layer.forward(xp.asarray(xh))
    xp.assert_on(out, out_ref.dtype.name, out_ref.shape)
    xp.assert_close(out, out_ref, rtol=TOL[out_ref.dtype.name], atol=1e-6)
    dx = layer.backward(xp.asarray(douth))
    for got, want in ((dx, dx_ref), (layer.dW, dW_ref), (layer.db, db_ref)):
        xp.assert_on(got, want.dtype.name, want.shape)
        xp.assert_close(got, want, rtol=TOL[want.dtype.name], atol=1e-6)
    # the weights are neither cast nor changed
    xp.assert_on(W, wd, (6, 4))
    xp.assert_on(b, bd, (4,))
    xp.assert_close(W, Wh, rtol=0)


def test_affine_same_dtypes_take_the_fast_path(xp, rng):
    W, b = xp.asarray(rng.standard_normal((3, 2)), "float32"), xp.asarray(np.zeros(2), "float32")
    layer = Affine(W, b)
    x = xp.asarray(rng.standard_normal((4, 3)), "float32")
    layer.forward(x)
    assert layer.x is x  # no cast, no copy
    layer.backward(xp.asarray(np.ones((4, 2)), "float32"))
    xp.assert_on(layer.dW, "float32", (3, 2))


@pytest.mark.parametrize(("ad", "bd"), [("float32", "float64"), ("float16", "float64"),
                                        ("float64", "float16")])
def test_elementwise_layers_mixed_dtypes_follow_numpy(xp, rng, ad, bd):
    _skip_float16(xp, ad, bd)
    ah = rng.standard_normal((3, 4)).astype(ad)
    sh = np.asarray(1.5, dtype=bd)  # a 0-d array: PyTorch's own `*` would keep ad
    for layer_cls, op in ((MulLayer, np.multiply), (AddLayer, np.add)):
        want = op(ah, sh)
        layer = layer_cls()
        out = layer.forward(xp.asarray(ah), xp.asarray(sh))
        xp.assert_on(out, want.dtype.name, (3, 4))
        xp.assert_close(out, want, rtol=TOL[want.dtype.name])
        dx, dy = layer.backward(xp.asarray(np.ones((3, 4), dtype=want.dtype)))
        xp.assert_on(dx, want.dtype.name, (3, 4))
        xp.assert_on(dy, want.dtype.name, ())

    sig = Sigmoid()
    y = sig.forward(xp.asarray(ah))
    xp.assert_on(y, ad, (3, 4))
    douth = rng.standard_normal((3, 4)).astype(bd)
    yh = xp.to_numpy(y)
    want = douth * (1.0 - yh) * yh  # the book's formula in NumPy
    got = sig.backward(xp.asarray(douth))
    xp.assert_on(got, want.dtype.name, (3, 4))
    xp.assert_close(got, want, rtol=TOL[want.dtype.name], atol=1e-6)

    relu = Relu()
    relu.forward(xp.asarray(ah))
    xp.assert_on(relu.backward(xp.asarray(douth)), bd, (3, 4))  # the book returns dout's dtype


def test_softmax_with_loss_backward_promotes_a_0d_dout(xp, rng):
    layer = SoftmaxWithLoss()
    layer.forward(xp.asarray(rng.standard_normal((2, 3)), "float32"), xp.asarray([0, 2], "uint8"))
    y = xp.to_numpy(layer.y)
    want = (y - np.eye(3)[[0, 2]].astype(np.float32)) * (np.asarray(3.0) / 2)
    got = layer.backward(xp.asarray(3.0, "float64"))
    xp.assert_on(got, "float64", (2, 3))
    xp.assert_close(got, want, rtol=1e-15)


def test_half_float_network_float16_images_with_float64_weights(xp, rng):
    """Chapter 8's half_float_network.py: float16 images into float64 weights that hold
    float16-rounded values. NumPy computes in float64."""
    _skip_float16(xp, "float16")
    host = {"W1": rng.standard_normal((12, 8)) * 0.3, "b1": rng.standard_normal(8) * 0.1,
            "W2": rng.standard_normal((8, 5)) * 0.3, "b2": rng.standard_normal(5) * 0.1}
    for value in host.values():
        value[...] = value.astype(np.float16)  # the book's rounding, kept in float64 arrays
    xh = rng.random((6, 12)).astype(np.float16)
    want = np.maximum(xh @ host["W1"] + host["b1"], 0.0) @ host["W2"] + host["b2"]
    assert want.dtype == np.float64

    params = {k: xp.asarray(v) for k, v in host.items()}
    layers = [Affine(params["W1"], params["b1"]), Relu(), Affine(params["W2"], params["b2"])]
    y = xp.asarray(xh)
    for layer in layers:
        y = layer.forward(y)
    xp.assert_on(y, "float64", (6, 5))
    xp.assert_close(y, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.argmax(xp.to_numpy(y), axis=1), np.argmax(want, axis=1))


class _ReadersTwoLayerNet:
    """A reader's chapter-5 network: float64 weights from np.random.randn in a plain dict,
    xpnet's layers instead of the book's, everything else as a reader writes it."""

    def __init__(self, input_size, hidden_size, output_size, *, put, weight_init_std=0.01):
        randn = np.random.RandomState(0).randn
        self.params = {
            "W1": put(weight_init_std * randn(input_size, hidden_size)),
            "b1": put(np.zeros(hidden_size)),
            "W2": put(weight_init_std * randn(hidden_size, output_size)),
            "b2": put(np.zeros(output_size)),
        }
        self.layers = {
            "Affine1": Affine(self.params["W1"], self.params["b1"]),
            "Relu1": Relu(),
            "Affine2": Affine(self.params["W2"], self.params["b2"]),
        }
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        return {"W1": a1.dW, "b1": a1.db, "W2": a2.dW, "b2": a2.db}


def _reference_sgd(params, x, labels, lr, steps):
    """The same training in plain NumPy float64, by the textbook formulas."""
    p = {k: v.copy() for k, v in params.items()}
    x = x.astype(np.float64)
    n, losses = len(labels), []
    onehot = np.eye(p["b2"].size)[labels]
    for _ in range(steps):
        h_pre = x @ p["W1"] + p["b1"]
        h = np.maximum(h_pre, 0.0)
        z = h @ p["W2"] + p["b2"]
        logp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        losses.append(-np.sum(onehot * logp) / n)
        dz = (np.exp(logp) - onehot) / n
        dh = (dz @ p["W2"].T) * (h_pre > 0)
        grads = {"W1": x.T @ dh, "b1": dh.sum(0), "W2": h.T @ dz, "b2": dz.sum(0)}
        for k in p:
            p[k] = p[k] - lr * grads[k]
    return losses, p


def test_readers_chapter5_script_float32_images_float64_weights(xp, rng):
    x_host = (rng.integers(0, 256, (32, 784)) / 255.0).astype(np.float32)  # load_mnist(normalize)
    t_host = rng.integers(0, 10, 32).astype(np.uint8)
    net = _ReadersTwoLayerNet(784, 50, 10, put=xp.asarray, weight_init_std=0.1)
    start = {k: xp.to_numpy(v) for k, v in net.params.items()}
    x_batch, t_batch = xp.asarray(x_host), xp.asarray(t_host)

    lr, losses = 0.5, []
    for _ in range(5):
        grad = net.gradient(x_batch, t_batch)
        for key in ("W1", "b1", "W2", "b2"):
            net.params[key] -= lr * grad[key]  # the book's in-place update
        losses.append(float(net.last_layer.loss))

    want_losses, want_params = _reference_sgd(start, x_host, t_host, lr, 5)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-10)
    assert losses[-1] < losses[0]
    for key, value in net.params.items():
        xp.assert_on(value, "float64")
        xp.assert_close(value, want_params[key], rtol=1e-9, atol=1e-12)
    xp.assert_on(net.predict(x_batch), "float64", (32, 10))


# --------------------------------------------------------------------------- Dropout


def test_dropout_training_masks_and_inference_scaling(xp, rng):
    xh = rng.standard_normal((100, 100))
    x = xp.asarray(xh)
    layer = Dropout(0.3, seed=4)
    out = layer.forward(x)  # train_flg defaults to True, as in the book
    mask = xp.to_numpy(layer.mask)
    assert mask.dtype == np.bool_
    assert mask.shape == (100, 100)
    assert 0.67 < mask.mean() < 0.73  # keeps 70% of 10000: sd 0.005
    xp.assert_close(out, xh * mask, rtol=0)
    # the mask is the backend generator's float32 stream compared with the ratio
    want = random_generator(xp.namespace, xp.device, 4).random((100, 100), "float32") > 0.3
    np.testing.assert_array_equal(mask, xp.to_numpy(want))

    xp.assert_close(layer.forward(x, train_flg=False), xh * (1.0 - 0.3), rtol=0)
    xp.assert_close(layer.backward(xp.asarray(np.ones((100, 100)))), np.full((100, 100), 0.7),
                    rtol=0)


def test_dropout_backward_is_dout_times_mask(xp, rng):
    layer = Dropout(0.5, seed=0)
    layer.forward(xp.asarray(rng.standard_normal((4, 6))))
    wh = rng.standard_normal((4, 6))
    w = xp.asarray(wh)
    xp.assert_close(layer.backward(w), wh * xp.to_numpy(layer.mask), rtol=0)
    xp.assert_close(w, wh, rtol=0)  # dout untouched


def test_dropout_seeds(xp, rng):
    x = xp.asarray(rng.standard_normal((8, 16)))
    a, b, c = Dropout(0.5, seed=1), Dropout(0.5, seed=1), Dropout(0.5, seed=2)
    masks_a = [xp.to_numpy(a.forward(x) != 0) for _ in range(2)]
    masks_b = [xp.to_numpy(b.forward(x) != 0) for _ in range(2)]
    np.testing.assert_array_equal(masks_a, masks_b)
    assert not np.array_equal(masks_a[0], masks_a[1])  # a new mask every step
    c.forward(x)
    assert not np.array_equal(xp.to_numpy(c.mask), masks_a[0])
    # two layers sharing one generator draw one stream between them
    shared = random_generator(xp.namespace, xp.device, 9)
    d1, d2 = Dropout(0.5, rng=shared), Dropout(0.5, rng=shared)
    d1.forward(x)
    d2.forward(x)
    ref = random_generator(xp.namespace, xp.device, 9)
    for layer in (d1, d2):
        np.testing.assert_array_equal(xp.to_numpy(layer.mask),
                                      xp.to_numpy(ref.random((8, 16), "float32") > 0.5))


@pytest.mark.parametrize("shape", [(3, 5), (2, 2, 2, 3)], ids=["2d", "4d"])
def test_dropout_gradient_with_a_fixed_mask(xp, rng, shape):
    xh, wh = rng.standard_normal(shape), rng.standard_normal(shape)
    maskh = rng.random(shape) > 0.4
    x, w = xp.asarray(xh), xp.asarray(wh)
    layer = Dropout(0.4)
    layer.fixed_mask = xp.asarray(maskh)
    out = layer.forward(x)
    xp.assert_close(out, xh * maskh, rtol=0)
    dx = layer.backward(w)
    xp.assert_on(dx, "float64", shape)
    numeric = _numerical(xp, lambda: xp.sum(layer.forward(x) * w), x)
    xp.assert_close(dx, numeric, rtol=RTOL, atol=ATOL)
    xp.assert_close(dx, wh * maskh, rtol=0)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_dropout_keeps_dtype_and_device(xp, rng, dtype):
    _skip_float16(xp, dtype)
    x = xp.asarray(rng.standard_normal((4, 5)), dtype)
    layer = Dropout(0.5, seed=3)
    xp.assert_on(layer.forward(x), dtype, (4, 5))
    xp.assert_on(layer.mask, "bool", (4, 5))
    xp.assert_on(layer.backward(x), dtype, (4, 5))
    xp.assert_on(layer.forward(x, train_flg=False), dtype, (4, 5))


def test_dropout_extreme_ratios(xp, rng):
    xh = rng.standard_normal((5, 5))
    xp.assert_close(Dropout(0.0, seed=0).forward(xp.asarray(xh)), xh, rtol=0)
    xp.assert_close(Dropout(1.0, seed=0).forward(xp.asarray(xh)), np.zeros((5, 5)), rtol=0)


def test_dropout_errors(xp):
    for ratio in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"dropout_ratio must lie in \[0, 1\], got"):
            Dropout(ratio)
    x = xp.asarray(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"needs a forward\(x, train_flg=True\) first"):
        Dropout().backward(x)
    layer = Dropout(seed=0)
    layer.forward(x)
    with pytest.raises(ValueError, match=r"dout has shape \(3, 2\), the forward input had"):
        layer.backward(xp.asarray(np.ones((3, 2))))
    layer.fixed_mask = xp.asarray(np.ones((3, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"fixed_mask must have the input's shape \(2, 3\), got"):
        layer.forward(x)
    layer.fixed_mask = xp.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match="fixed_mask must be a boolean array, got dtype"):
        layer.forward(x)
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None, got -3"):
        Dropout(seed=-3)
    if xp.other_device is not None:
        elsewhere = random_generator(xp.namespace, xp.other_device, 0)
        with pytest.raises(ValueError, match=r"Dropout's rng draws on .* but the input is on"):
            Dropout(rng=elsewhere).forward(x)


# --------------------------------------------------------------------------- BatchNormalization

EPS = 1e-6  # the book's 10e-7


def _bn_ref(xh, gamma, beta):
    """Training-mode batch norm in NumPy float64 with its batch statistics."""
    x2 = xh.reshape(xh.shape[0], -1)
    mu = x2.mean(axis=0)
    var = x2.var(axis=0)  # biased, as the book's mean((x - mu)**2)
    out = gamma * (x2 - mu) / np.sqrt(var + EPS) + beta
    return out.reshape(xh.shape), mu, var


SHAPES = [(4, 3), (5, 2, 2, 2), (2, 3)]  # (2, 3): the smallest batch training takes
SHAPE_IDS = ["2d", "4d", "batch2"]


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_batchnorm_forward_and_running_statistics(xp, rng, shape):
    d = int(np.prod(shape[1:]))
    gh, bh = rng.random(d) + 0.5, rng.standard_normal(d)
    layer = BatchNormalization(xp.asarray(gh), xp.asarray(bh))
    run_mean, run_var = np.zeros(d), np.zeros(d)
    for _ in range(3):
        xh = rng.standard_normal(shape) * 2 + 1
        out = layer.forward(xp.asarray(xh))
        want, mu, var = _bn_ref(xh, gh, bh)
        xp.assert_on(out, "float64", shape)
        xp.assert_close(out, want, rtol=1e-10, atol=1e-12)
        run_mean = 0.9 * run_mean + 0.1 * mu
        run_var = 0.9 * run_var + 0.1 * var
        xp.assert_on(layer.running_mean, "float64", (d,))
        xp.assert_close(layer.running_mean, run_mean, rtol=1e-12, atol=1e-15)
        xp.assert_close(layer.running_var, run_var, rtol=1e-12, atol=1e-15)
    # inference uses the running statistics and leaves them alone
    xh = rng.standard_normal(shape)
    out = layer.forward(xp.asarray(xh), train_flg=False)
    want = gh * (xh.reshape(shape[0], -1) - run_mean) / np.sqrt(run_var + EPS) + bh
    xp.assert_close(out, want.reshape(shape), rtol=1e-10, atol=1e-12)
    xp.assert_close(layer.running_var, run_var, rtol=1e-12, atol=1e-15)


def test_batchnorm_given_running_statistics_and_momentum(xp, rng):
    gh, bh = np.ones(3), np.zeros(3)
    mh, vh = rng.standard_normal(3), rng.random(3) + 0.1
    layer = BatchNormalization(xp.asarray(gh), xp.asarray(bh), momentum=0.5,
                               running_mean=xp.asarray(mh), running_var=xp.asarray(vh))
    xh = rng.standard_normal((6, 3))
    xp.assert_close(layer.forward(xp.asarray(xh), train_flg=False), (xh - mh) / np.sqrt(vh + EPS),
                    rtol=1e-12)
    layer.forward(xp.asarray(xh))
    xp.assert_close(layer.running_mean, 0.5 * mh + 0.5 * xh.mean(0), rtol=1e-12)
    xp.assert_close(layer.running_var, 0.5 * vh + 0.5 * xh.var(0), rtol=1e-12)


@pytest.mark.parametrize(("shape", "train"), [
    *[pytest.param(s, t, id=f"{'train' if t else 'inference'}-{i}")
      for t in (True, False) for s, i in zip(SHAPES, SHAPE_IDS, strict=True)],
    pytest.param((1, 3), False, id="inference-batch1"),  # one sample: running statistics
])
def test_batchnorm_gradients(xp, rng, shape, train):
    d = int(np.prod(shape[1:]))
    xh, wh = rng.standard_normal(shape), rng.standard_normal(shape)
    x, w = xp.asarray(xh), xp.asarray(wh)
    gamma, beta = xp.asarray(rng.random(d) + 0.5), xp.asarray(rng.standard_normal(d))
    stats = {"running_mean": xp.asarray(rng.standard_normal(d)),
             "running_var": xp.asarray(rng.random(d) + 0.5)}

    def loss():
        fresh = BatchNormalization(gamma, beta, **stats)
        return xp.sum(fresh.forward(x, train_flg=train) * w)

    layer = BatchNormalization(gamma, beta, **stats)
    layer.forward(x, train_flg=train)
    dx = layer.backward(w)
    xp.assert_on(dx, "float64", shape)
    xp.assert_on(layer.dgamma, "float64", (d,))
    xp.assert_on(layer.dbeta, "float64", (d,))
    xp.assert_close(dx, _numerical(xp, loss, x), rtol=1e-6, atol=1e-8)
    xp.assert_close(layer.dgamma, _numerical(xp, loss, gamma), rtol=RTOL, atol=ATOL)
    xp.assert_close(layer.dbeta, _numerical(xp, loss, beta), rtol=RTOL, atol=ATOL)
    xp.assert_close(w, wh, rtol=0)  # dout untouched


@pytest.mark.parametrize(("xd", "pd"), [("float32", "float32"), ("float32", "float64"),
                                        ("float16", "float64"), ("float64", "float32")])
def test_batchnorm_dtypes_follow_numpy(xp, rng, xd, pd):
    _skip_float16(xp, xd, pd)
    xh = rng.standard_normal((6, 2, 2, 2)).astype(xd)
    gh, bh = (rng.random(8) + 0.5).astype(pd), rng.standard_normal(8).astype(pd)
    # The book's layer in NumPy gives the reference dtype and values.
    x2 = xh.reshape(6, -1)
    mu = x2.mean(axis=0)
    xc = x2 - mu
    var = np.mean(xc**2, axis=0)
    want = (gh * (xc / np.sqrt(var + 10e-7)) + bh).reshape(xh.shape)

    layer = BatchNormalization(xp.asarray(gh), xp.asarray(bh))
    out = layer.forward(xp.asarray(xh))
    xp.assert_on(out, want.dtype.name, xh.shape)
    tol = 10 * max(TOL[xd], TOL[pd])  # statistics in x's dtype: summation order differs
    xp.assert_close(out, want, rtol=tol, atol=tol)
    xp.assert_on(layer.running_mean, xd, (8,))  # made in the input's dtype on its device
    dx = layer.backward(xp.asarray(np.ones(xh.shape, dtype=want.dtype)))
    xp.assert_on(dx, want.dtype.name, xh.shape)
    xp.assert_on(layer.dgamma, want.dtype.name, (8,))


@pytest.mark.parametrize("shape", [(1, 4), (1, 1, 2, 2)])
def test_batchnorm_refuses_a_training_batch_of_one(xp, rng, shape):
    """One sample is its own batch mean: the output would be beta whatever the input.
    PyTorch's batch_norm refuses it in training; so does this layer, and it says what to do.
    Inference on one sample uses the running statistics and works."""
    g, b = xp.asarray(rng.random(4) + 0.5), xp.asarray(rng.standard_normal(4))
    x = xp.asarray(rng.standard_normal(shape))
    layer = BatchNormalization(g, b)
    with pytest.raises(ValueError, match=(
            r"^BatchNormalization in training mode needs a batch of 2 or more samples, got a "
            rf"batch of 1 \(shape {re.escape(str(shape))}\): .* would be beta whatever the "
            r"input; train with a batch size of 2 or more, or pass train_flg=False")):
        layer.forward(x, train_flg=True)
    assert layer.running_mean is None or not np.any(xp.to_numpy(layer.running_mean))
    out = layer.forward(x, train_flg=False)  # the running statistics: any batch size
    xp.assert_on(out, "float64", shape)
    torch = pytest.importorskip("torch", reason="PyTorch's refusal is the reference")
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        torch.nn.functional.batch_norm(torch.zeros(1, 4), torch.zeros(4), torch.ones(4),
                                       training=True)


def test_batchnorm_errors(xp):
    g, b = xp.asarray(np.ones(4)), xp.asarray(np.zeros(4))
    layer = BatchNormalization(g, b)
    with pytest.raises(ValueError, match=r"takes \(N, D\) or \(N, C, H, W\) input, got shape"):
        layer.forward(xp.asarray(np.zeros((2, 2, 2))))
    with pytest.raises(ValueError, match=r"has 4 features \(gamma, beta\) but the input of shape"):
        layer.forward(xp.asarray(np.zeros((2, 5))))
    with pytest.raises(ValueError, match="needs at least one sample, got an empty batch"):
        layer.forward(xp.asarray(np.zeros((0, 4))))
    with pytest.raises(TypeError, match="needs floating input, got dtype"):
        layer.forward(xp.asarray(np.zeros((2, 4)), "int32"))
    with pytest.raises(RuntimeError, match="needs a forward first"):
        layer.backward(xp.asarray(np.zeros((2, 4))))
    layer.forward(xp.asarray(np.ones((2, 4))))
    with pytest.raises(ValueError, match=r"dout has shape \(3, 4\), the forward input had"):
        layer.backward(xp.asarray(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"gamma and beta must both have shape \(D,\)"):
        BatchNormalization(g, xp.asarray(np.zeros(3)))
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\]"):
        BatchNormalization(g, b, momentum=1.5)


# --------------------------------------------------------------------------- edges
# Found unguarded by mutation testing (tools/mutants.py).


def test_fresh_layers_hold_the_books_attributes_as_none(xp):
    """The book's code (and xpnet.graph's labels) read these attributes; before a forward pass
    they exist and are None."""
    W, b = xp.asarray(np.ones((2, 3))), xp.asarray(np.zeros(3))
    assert Relu().mask is None
    assert Sigmoid().out is None
    affine = Affine(W, b)
    assert (affine.x, affine.dW, affine.db) == (None, None, None)
    assert affine.W is W
    assert affine.b is b
    loss = SoftmaxWithLoss()
    assert (loss.loss, loss.y, loss.t) == (None, None, None)
    assert Dropout(0.3).mask is None


def test_batchnorm_of_a_constant_feature_is_beta(xp):
    """A feature with zero variance in the batch normalizes to 0 (the epsilon is added to the
    variance, not taken from it: sqrt(0 - eps) is NaN), so the output is beta."""
    x = np.ones((4, 2))
    x[:, 1] = [1.0, 2.0, 3.0, 4.0]
    gamma, beta = xp.asarray([2.0, 2.0]), xp.asarray([0.5, -0.5])
    out = xp.to_numpy(BatchNormalization(gamma, beta).forward(xp.asarray(x)))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 0], 0.5, rtol=0, atol=0)
    # Inference before any training: the running variance starts at 0, as in the book.
    xp.assert_close(BatchNormalization(gamma, beta).forward(xp.asarray(x), train_flg=False),
                    2.0 * x / np.sqrt(10e-7) + np.array([0.5, -0.5]), rtol=1e-12)


def test_batchnorm_with_gamma_and_beta_of_two_dtypes_promotes(xp, rng):
    """float32 input, float32 gamma, float64 beta: the output is float64, as NumPy's
    `gamma * xn + beta` gives (the in-place fast path needs both to match the input)."""
    x = rng.standard_normal((5, 3))
    gamma = xp.asarray(np.full(3, 1.5), "float32")
    beta = xp.asarray(np.full(3, 0.25), "float64")
    out = BatchNormalization(gamma, beta).forward(xp.asarray(x, "float32"))
    xn = (x - x.mean(0)) / np.sqrt(x.var(0) + 10e-7)
    xp.assert_on(out, "float64", (5, 3))
    xp.assert_close(out, 1.5 * xn + 0.25, rtol=1e-5, atol=1e-6)


def test_batchnorm_running_statistics_of_another_dtype_update_as_new_arrays(xp, rng):
    """float64 running statistics with a float32 batch: updated as new float64 arrays (not in
    place, which would cast), by the same rule m * running + (1 - m) * batch."""
    d = 3
    gamma, beta = xp.asarray(np.ones(d), "float32"), xp.asarray(np.zeros(d), "float32")
    mean0, var0 = rng.standard_normal(d), rng.random(d) + 0.5
    layer = BatchNormalization(gamma, beta, momentum=0.8, running_mean=xp.asarray(mean0),
                               running_var=xp.asarray(var0))
    xh = rng.standard_normal((6, d)).astype(np.float32)
    layer.forward(xp.asarray(xh, "float32"))
    x64 = xh.astype(np.float64)
    xp.assert_on(layer.running_mean, "float64", (d,))
    xp.assert_close(layer.running_mean, 0.8 * mean0 + 0.2 * x64.mean(0), rtol=1e-6)
    xp.assert_close(layer.running_var, 0.8 * var0 + 0.2 * x64.var(0), rtol=1e-6)

def test_batch_norm_trains_on_one_sample_when_allowed(xp, rng):
    """``allow_batch_of_one`` (the book's networks set it): one sample is its own mean, so the
    output is beta, as the book's code computes it; the running statistics move."""
    g, b = xp.asarray(rng.random(4) + 0.5), xp.asarray(rng.standard_normal(4))
    layer = BatchNormalization(g, b)
    layer.allow_batch_of_one = True
    x = rng.standard_normal((1, 4))
    out = layer.forward(xp.asarray(x), train_flg=True)
    xp.assert_close(out, np.broadcast_to(xp.to_numpy(b), (1, 4)))
    xp.assert_close(layer.running_mean, 0.1 * x[0])
    assert BatchNormalization(g, b).allow_batch_of_one is False
