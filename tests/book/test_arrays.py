"""xpnet.book.arrays: the views a book script gets of device arrays, and BookParams."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.book.arrays import BookParams, HostArray, unwrap, unwrap_mapping, wrap


def _view(xp, host):
    return wrap(xp.asarray(host, "float64"))


def test_numpy_arrays_and_numbers_come_as_they_are():
    a = np.ones(3)
    assert wrap(a) is a
    assert wrap(1.5) == 1.5
    assert unwrap(a) is a


def test_arithmetic_stays_on_the_device_and_numpy_reads_it_on_the_host(xp):
    if xp.name == "numpy":
        pytest.skip("NumPy arrays need no view")
    h = np.arange(6.0).reshape(2, 3)
    v = _view(xp, h)
    assert isinstance(v, HostArray)
    r = 2.0 * v - v / 2 + np.ones((2, 3))  # host data on either side moves to the device
    assert isinstance(r, HostArray)
    xp.assert_on(unwrap(r), "float64", (2, 3))
    np.testing.assert_allclose(np.asarray(r), 1.5 * h + 1)
    assert float(np.average(np.abs(v - v))) == 0.0  # NumPy functions read it as NumPy
    assert (v.shape, v.ndim, v.size, v.dtype) == ((2, 3), 2, 6, np.float64)
    np.testing.assert_array_equal(np.asarray(v.T), h.T)
    np.testing.assert_array_equal(np.asarray(v.reshape(3, 2)), h.reshape(3, 2))
    np.testing.assert_array_equal(np.asarray(v.flatten()), h.ravel())
    assert str(v) == str(h)


def test_in_place_updates_change_the_device_array(xp):
    if xp.name == "numpy":
        pytest.skip("NumPy arrays need no view")
    dev = xp.asarray(np.zeros((2, 3)), "float64")
    v = wrap(dev)
    v -= 0.5 * wrap(xp.asarray(np.ones((2, 3)), "float64"))
    v[0] = np.array([1.0, 2.0, 3.0])  # a partial index, host values
    v[1, 0] = 7.0
    xp.assert_close(unwrap(v), np.array([[1.0, 2.0, 3.0], [7.0, -0.5, -0.5]]))
    np.testing.assert_array_equal(np.asarray(v[1, 0]), 7.0)  # partial index completed


def test_astype_float16_rounds_as_numpy_does(xp):
    if xp.name == "numpy":
        pytest.skip("NumPy arrays need no view")
    h = np.array([0.1, 1 / 3, 1e-5])
    v = _view(xp, h)
    v[...] = v.astype(np.float16)
    np.testing.assert_array_equal(np.asarray(v), h.astype(np.float16).astype(np.float64))


def test_book_params_hand_out_views_and_take_host_data(xp):
    net = TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, seed=0)
    params = BookParams(net.params)
    w = params["W1"]
    assert isinstance(w, np.ndarray) == (xp.name == "numpy")
    params["b1"] = np.array([1.0, 2.0, 3.0])
    xp.assert_close(net.layers["Affine1"].b, np.array([1.0, 2.0, 3.0]))
    params["W2"] -= 0.0 * params["W2"]
    assert set(params) == {"W1", "b1", "W2", "b2"}
    grads = unwrap_mapping({k: np.zeros(tuple(v.shape)) for k, v in net.params.items()},
                           net.params)
    for g in grads.values():
        xp.assert_on(g, "float64")
