"""xpnet.nets.MultiLayerNet (the book's chapter-6 network) and the hooks its subclasses use.

References are NumPy float64 computations on the host written here (forward, loss with weight
decay, backprop), from the network's own parameters.
"""

from __future__ import annotations

from collections import OrderedDict

import array_api_compat
import numpy as np
import pytest

from xpnet import gradient_check
from xpnet.layers import Affine, Relu, Sigmoid, SoftmaxWithLoss
from xpnet.nets import MultiLayerNet, Network, Params

from ..helpers import host_params


def _net(xp, *args, **kwargs):
    return MultiLayerNet(*args, xp=xp.namespace, device=xp.device, **kwargs)


def _act(name, z):
    return np.maximum(z, 0.0) if name == "relu" else 1.0 / (1.0 + np.exp(-z))


def _ref(p, xh, labels, activation, lam):
    """NumPy float64 forward, loss (with 0.5 * lam * sum W**2) and backprop gradients."""
    depth = len(p) // 2
    hs, zs = [xh.reshape(len(xh), -1)], []
    for i in range(1, depth + 1):
        z = hs[-1] @ p[f"W{i}"] + p[f"b{i}"]
        zs.append(z)
        hs.append(_act(activation, z) if i < depth else z)
    s = hs[-1]
    logp = s - np.logaddexp.reduce(s, axis=1, keepdims=True)
    n = len(labels)
    loss = -np.mean(logp[np.arange(n), labels])
    loss += 0.5 * lam * sum(np.sum(p[f"W{i}"] ** 2) for i in range(1, depth + 1))
    d = np.exp(logp)
    d[np.arange(n), labels] -= 1.0
    d /= n
    grads = {}
    for i in range(depth, 0, -1):
        grads[f"W{i}"] = hs[i - 1].T @ d + lam * p[f"W{i}"]
        grads[f"b{i}"] = d.sum(axis=0)
        if i > 1:
            d = d @ p[f"W{i}"].T
            a = hs[i - 1]
            d = d * (zs[i - 2] > 0) if activation == "relu" else d * a * (1.0 - a)
    return s, loss, grads


# --------------------------------------------------------------------------- the book's API


def test_book_api(xp):
    net = _net(xp, 784, [100, 50, 30], 10, seed=0)
    names = ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    assert list(net.params) == names
    assert isinstance(net.params, Params)
    shapes = [(784, 100), (100,), (100, 50), (50,), (50, 30), (30,), (30, 10), (10,)]
    for name, shape in zip(names, shapes, strict=True):
        xp.assert_on(net.params[name], "float64", shape)
    assert isinstance(net.layers, OrderedDict)
    assert list(net.layers) == ["Affine1", "Activation_function1", "Affine2",
                                "Activation_function2", "Affine3", "Activation_function3",
                                "Affine4"]
    for i in range(1, 5):
        layer = net.layers[f"Affine{i}"]
        assert isinstance(layer, Affine)
        assert layer.W is net.params[f"W{i}"]
        assert layer.b is net.params[f"b{i}"]
    assert all(isinstance(net.layers[f"Activation_function{i}"], Relu) for i in (1, 2, 3))
    assert isinstance(net.last_layer, SoftmaxWithLoss)
    assert net.lastLayer is net.last_layer
    assert (net.input_size, net.output_size) == (784, 10)
    assert net.hidden_size_list == [100, 50, 30]
    assert net.hidden_layer_num == 3
    assert net.sizes == (784, 100, 50, 30, 10)
    assert net.activation == "relu"
    assert net.weight_decay_lambda == 0.0
    assert isinstance(net, Network)
    assert repr(net).startswith("MultiLayerNet(784, [100, 50, 30], 10, activation='relu', "
                                "weight_decay_lambda=0.0, xp=")
    sig = _net(xp, 4, [3], 2, activation="sigmoid", seed=0)
    assert isinstance(sig.layers["Activation_function1"], Sigmoid)
    assert not np.any(host_params(xp, sig)["b1"])


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("lam", [0.0, 0.3])
def test_predict_loss_gradient_match_numpy_reference(xp, rng, activation, lam):
    net = _net(xp, 6, [5, 4], 3, activation=activation, weight_init_std=0.5,
               weight_decay_lambda=lam, seed=1)
    p = host_params(xp, net)
    xh = rng.standard_normal((7, 6))
    labels = rng.integers(0, 3, 7)
    scores, loss, grads = _ref(p, xh, labels, activation, lam)
    x, t = xp.asarray(xh), xp.asarray(labels, "uint8")
    xp.assert_close(net.predict(x), scores, rtol=1e-12, atol=1e-14)
    xp.assert_close(net.loss(x, t), loss, rtol=1e-12)
    got = net.gradient(x, t)
    assert list(got) == list(net.params)
    for name, value in got.items():
        xp.assert_on(value, "float64", p[name].shape)
        xp.assert_close(value, grads[name], rtol=1e-10, atol=1e-13)
    xp.assert_close(net.last_loss, loss, rtol=1e-12)
    # scale=: gradients of scale * loss (the trainer's folded learning rate), loss unscaled
    scaled = net.gradient(x, t, scale=0.25)
    for name, value in scaled.items():
        xp.assert_close(value, 0.25 * grads[name], rtol=1e-10, atol=1e-13)
    xp.assert_close(net.last_loss, loss, rtol=1e-12)
    # the layers keep the data gradient: weight decay is added to the returned copy only
    xp.assert_close(net.layers["Affine1"].dW, 0.25 * (grads["W1"] - lam * p["W1"]),
                    rtol=1e-10, atol=1e-13)


def test_weight_decay_adds_half_lambda_sum_of_squares(xp, rng):
    plain = _net(xp, 5, [4, 4], 3, seed=2)
    decayed = MultiLayerNet.from_params(plain.params, xp=xp.namespace, device=xp.device,
                                        weight_decay_lambda=0.1)
    p = host_params(xp, plain)
    x = xp.asarray(rng.standard_normal((3, 5)))
    t = xp.asarray([0, 1, 2], "uint8")
    penalty = 0.05 * sum(np.sum(p[f"W{i}"] ** 2) for i in (1, 2, 3))
    diff = xp.to_numpy(decayed.loss(x, t)) - xp.to_numpy(plain.loss(x, t))
    np.testing.assert_allclose(diff, penalty, rtol=1e-10)
    g_plain, g_decayed = plain.gradient(x, t), decayed.gradient(x, t)
    for i in (1, 2, 3):
        xp.assert_close(g_decayed[f"W{i}"], xp.to_numpy(g_plain[f"W{i}"]) + 0.1 * p[f"W{i}"],
                        rtol=1e-10, atol=1e-14)
        xp.assert_close(g_decayed[f"b{i}"], xp.to_numpy(g_plain[f"b{i}"]), rtol=0)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_gradient_check_float64(xp, rng, activation, lam):
    net = _net(xp, 5, [4, 3], 3, activation=activation, weight_init_std=0.5,
               weight_decay_lambda=lam, seed=3)
    x = xp.asarray(rng.standard_normal((4, 5)))
    t = xp.asarray(rng.integers(0, 3, 4), "uint8")
    report = gradient_check(net, x, t, mode="full")
    assert report.dtype == "float64"
    assert [row.name for row in report.rows] == list(net.params)
    report.raise_if_failed()
    gradient_check(net, x, t, mode="fast").raise_if_failed()


def test_numerical_gradient_matches_gradient(xp, rng):
    net = _net(xp, 4, [3, 3], 2, activation="sigmoid", weight_decay_lambda=0.2, seed=4)
    x = xp.asarray(rng.standard_normal((3, 4)))
    t = xp.asarray([0, 1, 1], "uint8")
    numeric, backprop = net.numerical_gradient(x, t), net.gradient(x, t)
    assert list(numeric) == list(backprop)
    for name in backprop:
        xp.assert_close(numeric[name], xp.to_numpy(backprop[name]), rtol=1e-6, atol=1e-8)


def test_accuracy_is_batched_and_matches_reference(xp, rng):
    net = _net(xp, 6, [8], 4, weight_init_std=1.0, seed=5)
    xh = rng.standard_normal((25, 6))
    labels = rng.integers(0, 4, 25)
    scores, _, _ = _ref(host_params(xp, net), xh, labels, "relu", 0.0)
    want = float(np.mean(np.argmax(scores, axis=1) == labels))
    x = xp.asarray(xh)
    assert net.accuracy(x, xp.asarray(labels, "int64"), batch_size=7) == want
    one_hot = np.eye(4)[labels]
    assert net.accuracy(x, xp.asarray(one_hot)) == want


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize(
    ("init", "gain"), [("relu", 2.0), ("He", 2.0), ("sigmoid", 1.0), ("XAVIER", 1.0)])
def test_he_and_xavier_std(xp, init, gain):
    net = _net(xp, 1000, [400], 50, weight_init_std=init, seed=6)
    p = host_params(xp, net)
    # 400000 and 20000 draws: sample std within 1% and 3% (about 7 standard errors)
    assert np.std(p["W1"]) == pytest.approx(np.sqrt(gain / 1000), rel=0.01)
    assert np.std(p["W2"]) == pytest.approx(np.sqrt(gain / 400), rel=0.03)
    assert abs(np.mean(p["W1"])) < 0.01 * np.sqrt(gain / 1000)
    assert not np.any(p["b1"])
    assert not np.any(p["b2"])


def test_numeric_init_std(xp):
    p = host_params(xp, _net(xp, 500, [200], 100, weight_init_std=0.05, seed=7))
    assert np.std(p["W1"]) == pytest.approx(0.05, rel=0.01)
    assert np.std(p["W2"]) == pytest.approx(0.05, rel=0.02)
    zero = host_params(xp, _net(xp, 3, [2], 2, weight_init_std=0, seed=7))
    assert not np.any(zero["W1"])


def test_same_seed_same_weights_on_every_backend(xp):
    reference = MultiLayerNet(7, [5, 4], 3, seed=8)  # NumPy
    net = _net(xp, 7, [5, 4], 3, seed=8)
    for name, value in reference.params.items():
        xp.assert_close(net.params[name], value, rtol=0)
    f32 = _net(xp, 7, [5, 4], 3, seed=8, dtype="float32")
    for name, value in reference.params.items():
        xp.assert_on(f32.params[name], "float32")
        xp.assert_close(f32.params[name], value.astype(np.float32), rtol=0)
    other = _net(xp, 7, [5, 4], 3, seed=9)
    assert not np.array_equal(xp.to_numpy(other.params["W1"]), reference.params["W1"])


# --------------------------------------------------------------------------- copies


def test_to_and_from_params_keep_the_options(xp, rng):
    net = _net(xp, 5, [4, 3], 2, activation="sigmoid", weight_decay_lambda=0.2, seed=10)
    p = host_params(xp, net)
    xh = rng.standard_normal((3, 5))
    scores, _, _ = _ref(p, xh, np.zeros(3, int), "sigmoid", 0.2)
    on_numpy = net.to("numpy")
    assert isinstance(on_numpy, MultiLayerNet)
    assert (on_numpy.activation, on_numpy.weight_decay_lambda) == ("sigmoid", 0.2)
    np.testing.assert_allclose(on_numpy.predict(xh), scores, rtol=1e-12, atol=1e-14)
    f32 = net.to(dtype="float32")
    for value in f32.params.values():
        xp.assert_on(value, "float32")
    copy = net.to()
    copy.params["W1"] -= 1.0
    xp.assert_close(net.params["W1"], p["W1"], rtol=0)  # a copy, not a view
    rebuilt = MultiLayerNet.from_params(p, xp=xp.namespace, device=xp.device, activation="sigmoid")
    assert rebuilt.hidden_size_list == [4, 3]
    xp.assert_close(rebuilt.predict(xp.asarray(xh)), scores, rtol=1e-12, atol=1e-14)


def test_params_assignment_rebinds_the_layers(xp):
    net = _net(xp, 4, [3, 3], 2, seed=11)
    new = xp.asarray(np.full((3, 3), 0.5))
    net.params["W2"] = new
    assert net.layers["Affine2"].W is new
    net.params["b3"] -= 1.0
    xp.assert_close(net.layers["Affine3"].b, -np.ones(2), rtol=0)
    with pytest.raises(ValueError, match=r"params\['W2'\] must keep shape \(3, 3\)"):
        net.params["W2"] = xp.asarray(np.zeros((3, 2)))
    with pytest.raises(KeyError, match="unknown parameter 'W4'"):
        net.params["W4"] = new


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"hidden_size_list": []}, ValueError, "hidden_size_list is empty"),
        ({"hidden_size_list": 100}, TypeError, "hidden_size_list must be a list"),
        ({"hidden_size_list": [100, 0]}, ValueError,
         r"hidden_size_list\[1\] must be a positive integer, got 0"),
        ({"input_size": 0}, ValueError, "input_size must be a positive integer"),
        ({"activation": "tanh"}, ValueError, "activation must be 'relu' or 'sigmoid', got 'tanh'"),
        ({"weight_init_std": "lecun"}, ValueError,
         "weight_init_std must be 'relu'/'he', 'sigmoid'/'xavier' or a finite number"),
        ({"weight_init_std": float("nan")}, ValueError, "weight_init_std must be a finite"),
        ({"weight_init_std": -0.1}, ValueError, "weight_init_std must be a finite"),
        ({"weight_init_std": None}, TypeError, "weight_init_std must be a finite"),
        ({"weight_decay_lambda": -1}, ValueError, "weight_decay_lambda must be a finite"),
        ({"weight_decay_lambda": float("inf")}, ValueError, "weight_decay_lambda must be"),
        ({"dtype": "int32"}, TypeError, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_bad_arguments(kwargs, error, pattern):
    args = {"input_size": 4, "hidden_size_list": [3], "output_size": 2, **kwargs}
    with pytest.raises(error, match=pattern):
        MultiLayerNet(**args)


def test_from_params_errors():
    p = dict(MultiLayerNet(4, [3, 3], 2, seed=0).params)
    with pytest.raises(KeyError, match="params lack b3; need W1, b1, W2, b2, W3 and b3"):
        MultiLayerNet.from_params({k: v for k, v in p.items() if k != "b3"})
    with pytest.raises(ValueError, match="parameter shapes do not fit together"):
        MultiLayerNet.from_params({**p, "W2": np.zeros((4, 3))})
    with pytest.raises(TypeError, match=r"unknown options \['dropout'\]"):
        MultiLayerNet.from_params(p, dropout=0.5)
    with pytest.raises(ValueError, match="activation must be"):
        MultiLayerNet.from_params(p, activation="elu")


def test_empty_batch_and_foreign_inputs(xp):
    net = _net(xp, 4, [3], 2, seed=12)
    empty, labels = xp.asarray(np.zeros((0, 4))), xp.asarray(np.zeros(0), "uint8")
    for method in (net.loss, net.gradient):
        with pytest.raises(ValueError, match="empty batch"):
            method(empty, labels)
    with pytest.raises(ValueError, match="accuracy of an empty batch is undefined"):
        net.accuracy(empty, labels)
    with pytest.raises(TypeError, match="input must hold real numbers"):
        net.predict(xp.asarray(np.zeros((2, 4), dtype=bool)))
    if xp.other_device is not None:
        with pytest.raises(ValueError, match="input is on device"):
            net.predict(xp.asarray(np.zeros((2, 4)), device=xp.other_device))


# --------------------------------------------------------------------------- the Extend hook


class _Scale:
    """``out = x * gamma`` per feature, with a ``train_flg`` that records how it was called
    (a stand-in for BatchNormalization: a parameterised layer that takes ``train_flg``)."""

    def __init__(self, gamma):
        self.gamma = gamma
        self.calls = []

    def forward(self, x, train_flg=True):
        self.calls.append(train_flg)
        self.x = x
        return x * self.gamma

    def backward(self, dout):
        self.dgamma = array_api_compat.array_namespace(dout).sum(dout * self.x, axis=0)
        return dout * self.gamma


class _ScaledNet(MultiLayerNet):
    """What MultiLayerNetExtend does with batch norm, in miniature: extra ``gamma{i}``
    parameters bound to layers that take ``train_flg``."""

    def __init__(self, input_size, hidden_size_list, output_size, use_scale=True, *, xp=None,
                 device=None, dtype=None, seed=None):
        self._init(input_size, hidden_size_list, output_size, "relu", seed,
                   {"use_scale": use_scale}, xp=xp, device=device, dtype=dtype)

    @classmethod
    def _param_names(cls, params, *, use_scale=True, **config):
        names = super()._param_names(params, **config)
        depth = len(names) // 2
        return names + (tuple(f"gamma{i}" for i in range(1, depth)) if use_scale else ())

    def _extra_params(self, sizes, config):
        rng = np.random.default_rng(0)  # not ones: a gradient check should see them matter
        return {f"gamma{i}": 1.0 + 0.5 * rng.standard_normal(n)
                for i, n in enumerate(sizes[1:-1], start=1)}

    def _configure(self, host, *, use_scale=True, **config):
        self.use_scale = use_scale
        super()._configure({k: v for k, v in host.items() if not k.startswith("gamma")},
                           **config)

    def _build_layers(self, arrays):
        bindings = super()._build_layers(arrays)
        layers = list(self.layers.items())
        self.layers.clear()
        for name, layer in layers:
            self.layers[name] = layer
            if name.startswith("Affine") and f"gamma{name[6:]}" in arrays:
                i = name[6:]
                self.layers[f"Scale{i}"] = scale = _Scale(arrays[f"gamma{i}"])
                bindings[f"gamma{i}"] = (scale, "gamma")
        return bindings

    def config(self):
        return {**super().config(), "use_scale": self.use_scale}


def test_a_subclass_adds_parameters_and_train_flg_layers(xp, rng, tmp_path):
    from xpnet.io import load_net, save_net

    net = _ScaledNet(6, [5, 4], 3, xp=xp.namespace, device=xp.device, seed=14)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "gamma2"]
    assert list(net.layers) == ["Affine1", "Scale1", "Activation_function1", "Affine2",
                                "Scale2", "Activation_function2", "Affine3"]
    assert net.layers["Scale2"].gamma is net.params["gamma2"]
    x = xp.asarray(rng.standard_normal((4, 6)))
    t = xp.asarray([0, 1, 2, 0], "uint8")
    scale = net.layers["Scale1"]
    net.predict(x)
    net.loss(x, t)
    net.accuracy(x, t)
    assert scale.calls == [False, False, False]
    grads = net.gradient(x, t)
    assert scale.calls[-1] is True
    assert grads["gamma1"] is scale.dgamma
    gradient_check(net, x, t).raise_if_failed()
    # save/load finds the subclass by name and rebuilds it with its options
    path = save_net(tmp_path / "scaled.npz", net)
    again = load_net(path, xp=xp.namespace, device=xp.device)
    assert type(again) is _ScaledNet
    assert again.use_scale is True
    xp.assert_close(again.predict(x), xp.to_numpy(net.predict(x)), rtol=0)
