"""xpnet.nets.TwoLayerNet: the book's API, gradients, params as the one source of truth, seeds,
copies between backends, dtype/device, and clear errors for bad inputs.

References are NumPy float64 computations on the host from the network's own parameters.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

from xpnet import TwoLayerNet, gradient_check
from xpnet.layers import Affine, Relu, SoftmaxWithLoss
from xpnet.nets import Network, Params

from ..helpers import host_params

NAMES = ("W1", "b1", "W2", "b2")


def _net(xp, *sizes, **kwargs):
    return TwoLayerNet(*sizes, xp=xp.namespace, device=xp.device, **kwargs)


def _ref_scores(p, xh):
    return np.maximum(xh.reshape(len(xh), -1) @ p["W1"] + p["b1"], 0.0) @ p["W2"] + p["b2"]


def _ref_loss(p, xh, labels):
    s = _ref_scores(p, xh)
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    return -np.mean(logp[np.arange(len(labels)), labels])


def _data(xp, net, rng, n, *, margin=1e-3):
    """``n`` inputs and labels on the device, checked to keep every hidden pre-activation at
    least ``margin`` away from ReLU's kink (numerical gradients are meaningless across it)."""
    p = host_params(xp, net)
    d_in, _, d_out = net.sizes
    xh = rng.standard_normal((n, d_in))
    labels = rng.integers(0, d_out, n)
    pre = xh @ p["W1"] + p["b1"]
    assert np.min(np.abs(pre)) > margin, "test data too close to the ReLU kink: change the seed"
    return xh, labels, xp.asarray(xh), xp.asarray(labels, "uint8")


# --------------------------------------------------------------------------- the book's API


def test_book_api(xp):
    net = _net(xp, 784, 50, 10, seed=0)
    assert list(net.params) == list(NAMES)
    assert isinstance(net.params, Params)
    for name, shape in zip(NAMES, [(784, 50), (50,), (50, 10), (10,)], strict=True):
        xp.assert_on(net.params[name], "float64", shape)
    assert isinstance(net.layers, OrderedDict)
    assert list(net.layers) == ["Affine1", "Relu1", "Affine2"]
    assert isinstance(net.layers["Affine1"], Affine)
    assert isinstance(net.layers["Relu1"], Relu)
    assert isinstance(net.layers["Affine2"], Affine)
    assert isinstance(net.lastLayer, SoftmaxWithLoss)
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.layers["Affine1"].b is net.params["b1"]
    assert net.layers["Affine2"].W is net.params["W2"]
    assert net.layers["Affine2"].b is net.params["b2"]
    p = host_params(xp, net)
    assert np.std(p["W1"]) == pytest.approx(0.01, rel=0.02)  # weight_init_std, 39200 draws
    assert np.std(p["W2"]) == pytest.approx(0.01, rel=0.1)
    assert not np.any(p["b1"])
    assert not np.any(p["b2"])
    assert net.sizes == (784, 50, 10)
    assert net.device == xp.device
    assert repr(net).startswith("TwoLayerNet(784, 50, 10, xp=")


def test_default_device_and_dtype(xp):
    net = TwoLayerNet(3, 2, 2, xp=xp.namespace)
    assert net.dtype == xp.float64
    assert net.device == xp.__array_namespace_info__().default_device()


def test_two_layer_net_has_the_same_base(xp):
    net = TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, seed=0)
    assert isinstance(net, Network)
    assert (net.input_size, net.output_size) == (4, 2)
    assert net.last_layer is net.lastLayer


def test_predict_loss_accuracy_match_reference(xp, rng):
    net = _net(xp, 6, 5, 3, weight_init_std=0.5, seed=1)
    p = host_params(xp, net)
    xh = rng.standard_normal((7, 6))
    labels = rng.integers(0, 3, 7)
    x = xp.asarray(xh)
    scores = net.predict(x)
    xp.assert_on(scores, "float64", (7, 3))
    xp.assert_close(scores, _ref_scores(p, xh), rtol=1e-12, atol=1e-14)
    want_loss = _ref_loss(p, xh, labels)
    want_acc = float(np.mean(np.argmax(_ref_scores(p, xh), axis=1) == labels))
    assert 0.0 < want_acc < 1.0  # a check that could tell right from wrong
    for t in (xp.asarray(labels, "uint8"), xp.asarray(labels, "int64"),
              xp.asarray(np.eye(3)[labels])):
        loss = net.loss(x, t)
        xp.assert_on(loss, "float64", ())
        xp.assert_close(loss, want_loss, rtol=1e-12)
        for batch_size in (3, 7, 10_000):
            acc = net.accuracy(x, t, batch_size=batch_size)
            assert isinstance(acc, float)
            assert acc == pytest.approx(want_acc, abs=1e-15)


def test_nd_input_is_flattened(xp, rng):
    net = _net(xp, 6, 4, 3, weight_init_std=0.5, seed=2)
    xh = rng.standard_normal((2, 2, 3))
    xp.assert_close(net.predict(xp.asarray(xh)), _ref_scores(host_params(xp, net), xh),
                    rtol=1e-12, atol=1e-14)


def test_integer_inputs_are_cast(xp, rng):
    net = _net(xp, 4, 3, 2, weight_init_std=0.5, seed=3)
    images = rng.integers(0, 256, (3, 4)).astype(np.uint8)
    xp.assert_close(net.predict(xp.asarray(images)), _ref_scores(host_params(xp, net), images),
                    rtol=1e-12)


# --------------------------------------------------------------------------- gradients


def test_numerical_gradient_matches_gradient(xp, rng):
    net = _net(xp, 4, 5, 3, weight_init_std=0.5, seed=4)
    _, labels, x, t = _data(xp, net, rng, 3)
    numeric = net.numerical_gradient(x, t)
    grads = net.gradient(x, t)
    assert set(numeric) == set(grads) == set(NAMES)
    for name in NAMES:
        xp.assert_on(grads[name], "float64", tuple(net.params[name].shape))
        xp.assert_on(numeric[name], "float64", tuple(net.params[name].shape))
        diff = np.abs(xp.to_numpy(numeric[name]) - xp.to_numpy(grads[name]))
        assert diff.max() < 1e-8, name
        assert np.abs(xp.to_numpy(grads[name])).max() > 1e-3, name  # not trivially zero
    xp.assert_close(net.last_loss, _ref_loss(host_params(xp, net), xp.to_numpy(x), labels),
                    rtol=1e-12)


def test_gradient_check_full_mode(xp, rng):
    net = _net(xp, 20, 10, 3, weight_init_std=0.1, seed=5)
    _, _, x, t = _data(xp, net, rng, 5)
    report = gradient_check(net, x, t, mode="full").raise_if_failed()
    assert max(report.max_abs.values()) < 1e-8


def test_gradient_check_fast_mode_book_sizes(xp, rng):
    net = _net(xp, 784, 50, 10, seed=6)
    _, _, x, t = _data(xp, net, rng, 5, margin=1e-4)
    report = gradient_check(net, x, t, mode="fast").raise_if_failed()
    assert max(report.max_abs.values()) < 1e-8


def test_gradient_with_one_hot_labels_equals_integer_labels(xp, rng):
    net = _net(xp, 5, 4, 3, weight_init_std=0.5, seed=7)
    _, labels, x, t = _data(xp, net, rng, 4)
    by_index = {k: xp.to_numpy(v) for k, v in net.gradient(x, t).items()}
    by_hot = net.gradient(x, xp.asarray(np.eye(3)[labels]))
    for name in NAMES:
        xp.assert_close(by_hot[name], by_index[name], rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- float32


def test_float32_network_keeps_float32_on_the_device(xp, rng):
    net = _net(xp, 6, 5, 3, weight_init_std=0.5, dtype="float32", seed=8)
    assert net.dtype == xp.float32
    for name in NAMES:
        xp.assert_on(net.params[name], "float32")
    xh = rng.standard_normal((4, 6))
    labels = np.array([0, 2, 1, 2])
    for x in (xp.asarray(xh, "float32"), xp.asarray(xh), xp.asarray(xh * 50, "uint8")):
        xp.assert_on(net.predict(x), "float32", (4, 3))
        for t in (xp.asarray(labels, "uint8"), xp.asarray(np.eye(3)[labels], "float32")):
            xp.assert_on(net.loss(x, t), "float32", ())
            grads = net.gradient(x, t)
            xp.assert_on(net.last_loss, "float32", ())
            for name in NAMES:
                xp.assert_on(grads[name], "float32", tuple(net.params[name].shape))
            assert isinstance(net.accuracy(x, t), float)
    p = host_params(xp, net)
    xp.assert_close(net.loss(xp.asarray(xh, "float32"), xp.asarray(labels, "uint8")),
                    _ref_loss(p, xh.astype(np.float32).astype(np.float64), labels), rtol=1e-5)


def test_float32_numerical_gradient_keeps_dtype(xp, rng):
    net = _net(xp, 3, 2, 2, weight_init_std=0.5, dtype="float32", seed=9)
    x, t = xp.asarray(rng.standard_normal((2, 3)), "float32"), xp.asarray([0, 1], "uint8")
    for name, g in net.numerical_gradient(x, t).items():
        xp.assert_on(g, "float32", tuple(net.params[name].shape))


# --------------------------------------------------------------------------- params


def test_params_in_place_update_changes_predict(xp, rng):
    net = _net(xp, 5, 4, 3, weight_init_std=0.5, seed=10)
    xh, _, x, t = _data(xp, net, rng, 3)
    before = xp.to_numpy(net.predict(x))
    grads = net.gradient(x, t)
    host_grads = {k: xp.to_numpy(v) for k, v in grads.items()}
    p = host_params(xp, net)
    w1 = net.params["W1"]
    for name in NAMES:
        net.params[name] -= 0.5 * grads[name]  # the book's update, a Python float times an array
        p[name] = p[name] - 0.5 * host_grads[name]
    # In place on every backend: the same array, now holding the new values, still the layer's.
    assert net.params["W1"] is w1
    assert net.layers["Affine1"].W is w1
    xp.assert_close(w1, p["W1"], rtol=1e-15)
    after = xp.to_numpy(net.predict(x))
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(after, _ref_scores(p, xh), rtol=1e-12, atol=1e-14)


def test_params_assignment_changes_predict(xp, rng):
    net = _net(xp, 5, 4, 3, weight_init_std=0.5, seed=11)
    xh = rng.standard_normal((3, 5))
    p = host_params(xp, net)
    p["W1"] = rng.standard_normal((5, 4))
    new = xp.asarray(p["W1"])
    net.params["W1"] = new
    assert net.params["W1"] is new
    assert net.layers["Affine1"].W is new
    xp.assert_close(net.predict(xp.asarray(xh)), _ref_scores(p, xh), rtol=1e-12, atol=1e-14)

    p["W2"], p["b2"] = rng.standard_normal((4, 3)), rng.standard_normal(3)
    net.params = {"W2": xp.asarray(p["W2"]), "b2": xp.asarray(p["b2"])}
    p["b1"] = rng.standard_normal(4)
    net.params.update(b1=xp.asarray(p["b1"]))
    assert net.layers["Affine2"].b is net.params["b2"]
    xp.assert_close(net.predict(xp.asarray(xh)), _ref_scores(p, xh), rtol=1e-12, atol=1e-14)


def _foreign(xp, shape):
    if xp.name != "numpy":
        return np.zeros(shape)
    return pytest.importorskip("array_api_strict").zeros(shape)


def test_params_assignment_errors(xp):
    net = _net(xp, 5, 4, 3, seed=12)
    old = net.params["W1"]
    with pytest.raises(ValueError, match=r"params\['W1'\] must keep shape \(5, 4\), got \(4, 5\)"):
        net.params["W1"] = xp.asarray(np.zeros((4, 5)))
    with pytest.raises(TypeError, match=r"params\['W1'\] must keep dtype .*float64, got .*float32"):
        net.params["W1"] = xp.asarray(np.zeros((5, 4)), "float32")
    with pytest.raises(TypeError, match="different array libraries"):
        net.params["W1"] = _foreign(xp, (5, 4))
    with pytest.raises(KeyError, match="unknown parameter 'W3'; this network has W1, b1, W2, b2"):
        net.params["W3"] = xp.asarray(np.zeros((5, 4)))
    with pytest.raises(TypeError, match="cannot be removed"):
        del net.params["W1"]
    assert net.params["W1"] is old
    assert net.layers["Affine1"].W is old


def test_params_assignment_on_another_device(xp):
    if xp.other_device is None:
        pytest.skip(f"{xp.name} has no second device here")
    net = _net(xp, 5, 4, 3, seed=13)
    with pytest.raises(ValueError, match=r"params\['b1'\] must stay on device"):
        net.params["b1"] = xp.asarray(np.zeros(4), device=xp.other_device)


# --------------------------------------------------------------------------- seeds and copies


def test_same_seed_same_weights_on_every_backend(xp):
    reference = TwoLayerNet(6, 5, 3, seed=14, xp="numpy")
    for dtype in ("float64", "float32"):
        net = _net(xp, 6, 5, 3, seed=14, dtype=dtype)
        for name in NAMES:
            want = np.asarray(reference.params[name]).astype(dtype)
            np.testing.assert_array_equal(xp.to_numpy(net.params[name]), want)
    other = _net(xp, 6, 5, 3, seed=15)
    assert not np.array_equal(xp.to_numpy(other.params["W1"]),
                              np.asarray(reference.params["W1"]))


def test_to_and_from_params(xp, rng):
    net = _net(xp, 5, 4, 3, weight_init_std=0.5, seed=16)
    p = host_params(xp, net)
    xh = rng.standard_normal((2, 5))

    on_numpy = net.to("numpy")
    assert isinstance(on_numpy.params["W1"], np.ndarray)
    np.testing.assert_allclose(on_numpy.predict(xh), _ref_scores(p, xh), rtol=1e-12, atol=1e-14)

    f32 = net.to(dtype="float32")
    assert f32.device == net.device
    for name in NAMES:
        xp.assert_on(f32.params[name], "float32")
    xp.assert_close(f32.predict(xp.asarray(xh, "float32")), _ref_scores(p, xh), rtol=1e-5,
                    atol=1e-6)

    back = on_numpy.to(xp.namespace, device=xp.device)
    assert back.device == xp.device
    xp.assert_close(back.predict(xp.asarray(xh)), _ref_scores(p, xh), rtol=1e-12, atol=1e-14)

    copy = net.to()
    copy.params["W1"] -= 1.0
    xp.assert_close(net.params["W1"], p["W1"], rtol=0)  # a copy, not a view

    rebuilt = TwoLayerNet.from_params(p, xp=xp.namespace, device=xp.device)
    for name in NAMES:
        xp.assert_on(rebuilt.params[name], "float64")
        xp.assert_close(rebuilt.params[name], p[name], rtol=0)
    from_lists = TwoLayerNet.from_params({k: v.tolist() for k, v in p.items()})
    np.testing.assert_array_equal(from_lists.params["W2"], p["W2"])


def test_from_params_errors():
    p = {"W1": np.zeros((3, 2)), "b1": np.zeros(2), "W2": np.zeros((2, 4)), "b2": np.zeros(4)}
    with pytest.raises(KeyError, match="params lack W2, b2; need W1, b1, W2 and b2"):
        TwoLayerNet.from_params({"W1": p["W1"], "b1": p["b1"]})
    with pytest.raises(ValueError, match="parameter shapes do not fit together"):
        TwoLayerNet.from_params({**p, "b1": np.zeros(3)})
    with pytest.raises(ValueError, match="parameter shapes do not fit together"):
        TwoLayerNet.from_params({**p, "W2": np.zeros((3, 4))})


# --------------------------------------------------------------------------- bad inputs


def test_input_on_another_device(xp, rng):
    if xp.other_device is None:
        pytest.skip(f"{xp.name} has no second device here")
    net = _net(xp, 4, 3, 2, seed=17)
    xh = rng.standard_normal((2, 4))
    x_other = xp.asarray(xh, device=xp.other_device)
    t = xp.asarray([0, 1], "uint8")
    with pytest.raises(ValueError, match=r"input is on device .* but the network is on"):
        net.predict(x_other)
    with pytest.raises(ValueError, match=r"input is on device .* but the network is on"):
        net.gradient(x_other, t)
    with pytest.raises(ValueError, match=r"labels are on device .* but the network is on"):
        net.loss(xp.asarray(xh), xp.asarray([0, 1], "uint8", device=xp.other_device))
    with pytest.raises(ValueError, match=r"labels are on device .* but the network is on"):
        net.accuracy(xp.asarray(xh), xp.asarray([0, 1], "uint8", device=xp.other_device))


def test_input_from_another_backend(xp):
    net = _net(xp, 4, 3, 2, seed=18)
    with pytest.raises(TypeError, match=r"^x is a \w+ array \(on \w+\) but this TwoLayerNet "
                                        r"holds \w+ arrays"):
        net.predict(_foreign(xp, (2, 4)))
    with pytest.raises(TypeError, match=r"^t is a \w+ array \(on \w+\) but this TwoLayerNet "):
        net.loss(xp.asarray(np.zeros((2, 4))), _foreign(xp, (2,)))


def _advice(message, start):
    """The statement of ``message`` that begins with ``start``, up to its closing parenthesis."""
    head = message.index(start)
    depth, end = 0, head
    for end in range(message.index("(", head), len(message)):
        depth += {"(": 1, ")": -1}.get(message[end], 0)
        if depth == 0:
            break
    return message[head:end + 1]


def test_a_default_network_given_another_backends_arrays_says_how_to_move(xp, rng):
    """A network built without xp= holds NumPy arrays and stays there (it never moves by
    itself: an optimizer's state, references to its parameters and the book's script semantics
    would silently break). Arrays of another backend get a TypeError whose two pieces of advice
    both work as written: move the network (net.to), or move the data."""
    import xpnet

    if xp.name == "numpy":
        pytest.skip("a default network is a NumPy network: NumPy arrays are its own")
    net = TwoLayerNet(4, 3, 2, seed=5)  # defaults: NumPy, float64
    xh, th = rng.standard_normal((3, 4)), np.array([0, 1, 1])
    x, t = xp.asarray(xh), xp.asarray(th, "int64")
    name = xp.namespace.__name__.split(".")[-1]
    where = xpnet.backend.device_text(xp.device)
    with pytest.raises(TypeError) as exc:
        net.loss(x, t)
    message = str(exc.value)
    assert message.startswith(f"x is a {name} array (on {where}) but this TwoLayerNet holds "
                              "numpy arrays (on cpu): a network stays on the backend and device "
                              "it was built on (xp=, device=; NumPy by default).")
    move_net = _advice(message, "net = net.to(")
    assert move_net == f"net = net.to({name!r}, device={where!r})"
    assert f"TwoLayerNet(..., xp={name!r}, device={where!r})" in message
    want = float(net.loss(xh, th))
    scope = {"net": net, "x": x, "t": t, "xpnet": xpnet}
    exec(move_net, scope)  # the advice, as written
    moved = scope["net"]
    xp.assert_on(moved.params["W1"], "float64", (4, 3))
    assert float(moved.loss(x, t)) == pytest.approx(want, rel=1e-12)
    assert net.xp.__name__.endswith("numpy")  # the original stays where it was
    move_data = _advice(message, "x = xpnet.backend.asarray(")
    exec(move_data, scope := {"net": net, "x": x, "xpnet": xpnet})
    assert float(net.loss(scope["x"], th)) == pytest.approx(want, rel=1e-12)


def test_a_column_of_class_indices_counts_as_the_indices(xp, rng):
    net = _net(xp, 4, 3, 3, seed=19)
    x = xp.asarray(rng.standard_normal((6, 4)))
    t = np.array([0, 1, 2, 2, 1, 0])
    flat, column = xp.asarray(t, "int64"), xp.asarray(t.reshape(6, 1), "int64")
    assert net.accuracy(x, column) == net.accuracy(x, flat)
    assert net.accuracy(x, column) > 0  # not all predictions are class 0 here...
    assert net.accuracy(x, flat) != np.mean(t == 0)  # ...so argmax over the column would differ
    xp.assert_close(net.loss(x, column), xp.to_numpy(net.loss(x, flat)), rtol=0)


def test_bad_inputs(xp):
    net = _net(xp, 4, 3, 2, seed=19)
    x = xp.asarray(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="input must hold real numbers, got dtype"):
        net.predict(xp.asarray(np.zeros((2, 4), dtype=bool)))
    with pytest.raises(ValueError, match="Affine expects 4 input features"):
        net.predict(xp.asarray(np.zeros((2, 5))))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\) for 2 classes"):
        net.loss(x, xp.asarray([0, 2], "uint8"))
    with pytest.raises(ValueError, match=r"class indices must have shape \(2,\)"):
        net.loss(x, xp.asarray([[0, 1, 0], [1, 0, 1]], "int64"))
    with pytest.raises(TypeError, match=r"look like class indices, which must be integers"):
        net.loss(x, xp.asarray([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"one-hot labels must have shape \(2, 2\)"):
        net.loss(x, xp.asarray(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="labels have dtype bool"):
        net.loss(x, xp.asarray([True, False]))
    with pytest.raises(ValueError, match="x has 2 rows but t has 3"):
        net.accuracy(x, xp.asarray([0, 1, 1], "uint8"))
    with pytest.raises(ValueError, match="accuracy of an empty batch is undefined"):
        net.accuracy(xp.asarray(np.zeros((0, 4))), xp.asarray(np.zeros(0), "uint8"))


@pytest.mark.parametrize(
    ("sizes", "pattern"),
    [((0, 3, 2), "input_size must be a positive integer, got 0"),
     ((4, 2.5, 2), "hidden_size must be a positive integer, got 2.5"),
     ((4, 3, -1), "output_size must be a positive integer, got -1")],
)
def test_bad_sizes(sizes, pattern):
    with pytest.raises(ValueError, match=pattern):
        TwoLayerNet(*sizes)


@pytest.mark.parametrize("dtype", ["int32", "float16"])
def test_bad_dtype(dtype):
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"):
        TwoLayerNet(3, 2, 2, dtype=dtype)


def test_device_without_float64_defaults_to_float32():
    strict = pytest.importorskip("array_api_strict")
    net = TwoLayerNet(3, 2, 2, xp="array_api_strict", device="no_float64", seed=0)
    assert net.dtype == strict.float32
    assert net.device == strict.Device("no_float64")


# --------------------------------------------------------------------------- issue 8 fixes


def test_empty_batch_is_a_clear_error(xp):
    net = _net(xp, 4, 3, 2, seed=20)
    x = xp.asarray(np.zeros((0, 4)))
    t = xp.asarray(np.zeros(0), "uint8")
    for method in (net.loss, net.gradient):
        with pytest.raises(ValueError, match=r"empty batch .*x has 0 rows"):
            method(x, t)
    with pytest.raises(ValueError, match="empty batch"):
        net.accuracy(x, t)
    assert net.last_loss is None  # nothing half-computed was kept


@pytest.mark.parametrize(
    ("std", "error"),
    [(float("nan"), ValueError), (float("inf"), ValueError), (-float("inf"), ValueError),
     (-0.01, ValueError), ("0.01", TypeError), (None, TypeError), (True, TypeError),
     ([0.01], TypeError), (np.float64("nan"), ValueError)],
)
def test_bad_weight_init_std_is_refused(std, error):
    with pytest.raises(error, match="weight_init_std must be a finite number >= 0"):
        TwoLayerNet(3, 2, 2, weight_init_std=std)


def test_weight_init_std_accepts_zero_and_numpy_numbers():
    assert not np.any(TwoLayerNet(3, 2, 2, weight_init_std=0.0, seed=0).params["W1"])
    w = TwoLayerNet(3, 2, 2, weight_init_std=np.float32(0.5), seed=0).params["W1"]
    same = TwoLayerNet(3, 2, 2, weight_init_std=0.5, seed=0).params["W1"]
    np.testing.assert_array_equal(w, same)
