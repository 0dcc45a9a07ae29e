"""The optimizers against the book's update rules written out here in NumPy float64, on every
backend: in-place updates, xpnet's Params, state on the device, mixed-dtype gradients, state
round trips, bad input, the fused CuPy kernels (through a NumPy stand-in for CuPy) and
convergence."""

from __future__ import annotations

import re

import array_api_compat
import numpy as np
import pytest

import xpnet
from xpnet import optim
from xpnet.layers import Affine
from xpnet.ops import CupyOps
from xpnet.optim import OPTIMIZERS, get_optimizer

NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
# Hyper-parameters other than the defaults, so that swapped arguments show.
HYPER = {
    "sgd": {"lr": 0.05},
    "momentum": {"lr": 0.05, "momentum": 0.8},
    "nesterov": {"lr": 0.05, "momentum": 0.7},
    "adagrad": {"lr": 0.05},
    "rmsprop": {"lr": 0.02, "decay_rate": 0.9},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99},
}
STATE = {"sgd": (), "momentum": ("v",), "nesterov": ("v",), "adagrad": ("h",),
         "rmsprop": ("h",), "adam": ("m", "v")}
SHAPES = {"W": (4, 3), "b": (3,)}


class Reference:
    """The book's update rules (common/optimizer.py), in NumPy float64 on host copies."""

    def __init__(self, name: str, **hyper: float) -> None:
        self.name, self.hyper, self.state, self.iter = name, hyper, {}, 0

    def update(self, params: dict, grads: dict) -> None:
        h, eps = self.hyper, 1e-7
        lr = h["lr"]
        self.iter += 1
        for key, g in grads.items():
            g = np.asarray(g, dtype=np.float64)
            p = params[key]
            s = self.state.setdefault(key, {"a": np.zeros_like(p), "b": np.zeros_like(p)})
            if self.name == "sgd":
                p -= lr * g
            elif self.name == "momentum":
                s["a"] = h["momentum"] * s["a"] - lr * g
                p += s["a"]
            elif self.name == "nesterov":
                m = h["momentum"]
                p += m * m * s["a"]
                p -= (1 + m) * lr * g
                s["a"] = m * s["a"] - lr * g
            elif self.name == "adagrad":
                s["a"] += g * g
                p -= lr * g / (np.sqrt(s["a"]) + eps)
            elif self.name == "rmsprop":
                s["a"] = h["decay_rate"] * s["a"] + (1 - h["decay_rate"]) * g * g
                p -= lr * g / (np.sqrt(s["a"]) + eps)
            elif self.name == "adam":
                b1, b2 = h["beta1"], h["beta2"]
                lr_t = lr * np.sqrt(1.0 - b2 ** self.iter) / (1.0 - b1 ** self.iter)
                s["a"] += (1 - b1) * (g - s["a"])
                s["b"] += (1 - b2) * (g ** 2 - s["b"])
                p -= lr_t * s["a"] / (np.sqrt(s["b"]) + eps)

    def slot(self, name: str, key: str) -> np.ndarray:
        """The reference state called ``name`` by the book (v, h, m) for parameter ``key``."""
        second = self.name == "adam" and name == "v"
        return self.state[key]["b" if second else "a"]


def _host_problem(rng, steps=5):
    params = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]
    return params, grads


def _tolerance(dtype: str) -> dict:
    return {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 2e-5, "atol": 2e-6}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_matches_the_book_rules(xp, rng, name, dtype):
    host, grads = _host_problem(rng)
    params = {k: xp.asarray(v, dtype) for k, v in host.items()}
    ref_params = {k: np.asarray(v, dtype=dtype).astype(np.float64) for k, v in host.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    for step in grads:
        opt.update(params, {k: xp.asarray(v, dtype) for k, v in step.items()})
        ref.update(ref_params, {k: np.asarray(v, dtype=dtype) for k, v in step.items()})
        for k in SHAPES:
            xp.assert_on(params[k], dtype, SHAPES[k])
            xp.assert_close(params[k], ref_params[k], **_tolerance(dtype))
    for slot in STATE[name]:
        for k in SHAPES:
            xp.assert_close(getattr(opt, slot)[k], ref.slot(slot, k), **_tolerance(dtype))
    if name == "adam":
        assert int(opt.iter) == len(grads)


def test_book_defaults():
    assert optim.SGD().lr == 0.01
    assert (optim.Momentum().lr, optim.Momentum().momentum) == (0.01, 0.9)
    assert (optim.Nesterov().lr, optim.Nesterov().momentum) == (0.01, 0.9)
    assert optim.AdaGrad().lr == 0.01
    assert (optim.RMSprop().lr, optim.RMSprop().decay_rate) == (0.01, 0.99)
    adam = optim.Adam()
    assert (adam.lr, adam.beta1, adam.beta2, adam.iter, adam.m, adam.v) == (
        0.001, 0.9, 0.999, 0, None, None)
    # Positional order as the book's: (lr, momentum), (lr, decay_rate), (lr, beta1, beta2).
    assert optim.Momentum(0.1, 0.5).momentum == 0.5
    assert optim.RMSprop(0.1, 0.5).decay_rate == 0.5
    assert optim.Adam(0.1, 0.5, 0.6).beta2 == 0.6


@pytest.mark.parametrize("name", NAMES)
def test_updates_in_place_so_layers_holding_the_arrays_see_them(xp, rng, name):
    """The book's networks keep their parameters in a plain dict and the same arrays in the
    layers: the update must change those arrays, not replace them."""
    host, grads = _host_problem(rng, steps=2)
    params = {k: xp.asarray(v, "float64") for k, v in host.items()}
    layer = Affine(params["W"], params["b"])
    before = dict(params)
    x = xp.asarray(rng.standard_normal((2, 4)), "float64")
    out0 = xp.to_numpy(layer.forward(x))
    opt, ref = get_optimizer(name), Reference(name, **get_optimizer(name).hyper_parameters())
    ref_params = {k: v.copy() for k, v in host.items()}
    for step in grads:
        opt.update(params, {k: xp.asarray(v, "float64") for k, v in step.items()})
        ref.update(ref_params, step)
    assert all(params[k] is before[k] for k in params)
    assert layer.W is params["W"]
    expected = xp.to_numpy(x) @ ref_params["W"] + ref_params["b"]
    xp.assert_close(layer.forward(x), expected, rtol=1e-10)
    assert not np.allclose(xp.to_numpy(layer.forward(x)), out0)


def _net(xp, dtype="float64"):
    return xpnet.TwoLayerNet(6, 5, 3, weight_init_std=0.3, xp=xp.namespace, device=xp.device,
                             dtype=dtype, seed=3)


@pytest.mark.parametrize("name", NAMES)
def test_updates_a_two_layer_nets_params(xp, rng, name):
    net = _net(xp)
    arrays = dict(net.params)
    ref_params = {k: xp.to_numpy(v).copy() for k, v in net.params.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    x = xp.asarray(rng.standard_normal((8, 6)), "float64")
    t = xp.asarray(rng.integers(0, 3, 8), "int64")
    for _ in range(3):
        grads = net.gradient(x, t)
        ref.update(ref_params, {k: xp.to_numpy(g) for k, g in grads.items()})
        opt.update(net.params, grads)
    for k, v in net.params.items():
        assert v is arrays[k]
        xp.assert_close(v, ref_params[k], rtol=1e-10, atol=1e-13)
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.layers["Affine2"].b is net.params["b2"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_state_lives_on_the_parameters_device_and_dtype(xp, rng, name, dtype):
    host, grads = _host_problem(rng, steps=1)
    params = {k: xp.asarray(v, dtype) for k, v in host.items()}
    opt = get_optimizer(name)
    for slot in STATE[name]:
        assert getattr(opt, slot) is None  # made lazily
    opt.update(params, {k: xp.asarray(v, dtype) for k, v in grads[0].items()})
    for slot in STATE[name]:
        state = getattr(opt, slot)
        assert set(state) == set(SHAPES)
        for k, shape in SHAPES.items():
            xp.assert_on(state[k], dtype, shape)
    if name == "adam":
        assert array_api_compat.device(opt.iter) == xp.device
        assert int(opt.iter) == 1


@pytest.mark.parametrize("name", NAMES)
def test_float64_grads_for_float32_params_are_cast_as_numpy_does(xp, rng, name):
    host, grads = _host_problem(rng)
    params = {k: xp.asarray(v, "float32") for k, v in host.items()}
    before = dict(params)
    ref_params = {k: np.asarray(v, dtype=np.float32).astype(np.float64) for k, v in host.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    for step in grads:
        opt.update(params, {k: xp.asarray(v, "float64") for k, v in step.items()})
        ref.update(ref_params, step)
    for k in SHAPES:
        assert params[k] is before[k]
        xp.assert_on(params[k], "float32", SHAPES[k])
        xp.assert_close(params[k], ref_params[k], rtol=2e-5, atol=2e-6)
    for slot in STATE[name]:
        for k in SHAPES:
            xp.assert_on(getattr(opt, slot)[k], "float32")


@pytest.mark.parametrize("name", NAMES)
def test_float16_params_take_float32_grads(xp, rng, name):
    if xp.name.startswith("array_api_strict"):
        pytest.skip("array-api-strict has no float16 (the standard has none)")
    host, grads = _host_problem(rng, steps=2)
    params = {k: xp.asarray(v, "float16") for k, v in host.items()}
    ref_params = {k: np.asarray(v, dtype=np.float16).astype(np.float64) for k, v in host.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    for step in grads:
        opt.update(params, {k: xp.asarray(v, "float32") for k, v in step.items()})
        ref.update(ref_params, {k: np.asarray(v, dtype=np.float32) for k, v in step.items()})
    for k in SHAPES:
        xp.assert_on(params[k], "float16", SHAPES[k])
        xp.assert_close(params[k], ref_params[k], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_continues_identically(xp, rng, name):
    host, grads = _host_problem(rng, steps=6)

    def arrays(data):
        return {k: xp.asarray(v, "float64") for k, v in data.items()}

    straight = arrays(host)
    opt = get_optimizer(name, **HYPER[name])
    for step in grads:
        opt.update(straight, arrays(step))

    first = arrays(host)
    opt1 = get_optimizer(name, **HYPER[name])
    for step in grads[:3]:
        opt1.update(first, arrays(step))
    saved = opt1.state_dict()
    # Host NumPy arrays and plain numbers only, and a copy: the optimizer runs on unchanged.
    for key, value in saved.items():
        if key in STATE[name]:
            assert all(type(a) is np.ndarray for a in value.values())
        else:
            assert type(value) in (str, float, int), (key, type(value))
    for slot in STATE[name]:
        for a in saved[slot].values():
            a += 1000.0
    saved = opt1.state_dict()
    resumed = arrays({k: xp.to_numpy(v) for k, v in first.items()})
    opt2 = get_optimizer(name)  # defaults: the hyper-parameters come from the state
    opt2.load_state_dict(saved)
    for step in grads[3:]:
        opt2.update(resumed, arrays(step))
        opt1.update(first, arrays(step))
    for k in SHAPES:
        np.testing.assert_array_equal(xp.to_numpy(resumed[k]), xp.to_numpy(straight[k]))
        np.testing.assert_array_equal(xp.to_numpy(first[k]), xp.to_numpy(straight[k]))
    for slot in STATE[name]:
        for k in SHAPES:
            xp.assert_on(getattr(opt2, slot)[k], "float64")
    assert opt2.hyper_parameters() == HYPER[name] | {"lr": HYPER[name]["lr"]}


@pytest.mark.parametrize("name", NAMES)
def test_state_from_one_backend_continues_on_numpy(xp, rng, name):
    """A checkpoint taken on one device resumes on another (here: the host)."""
    host, grads = _host_problem(rng, steps=4)
    params = {k: xp.asarray(v, "float64") for k, v in host.items()}
    opt = get_optimizer(name, **HYPER[name])
    ref, ref_params = Reference(name, **HYPER[name]), {k: v.copy() for k, v in host.items()}
    for step in grads[:2]:
        opt.update(params, {k: xp.asarray(v, "float64") for k, v in step.items()})
        ref.update(ref_params, step)
    on_host = get_optimizer(name)
    on_host.load_state_dict(opt.state_dict())
    params = {k: xp.to_numpy(v) for k, v in params.items()}
    for step in grads[2:]:
        on_host.update(params, step)
        ref.update(ref_params, step)
    for k in SHAPES:
        np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-12, atol=1e-14)


# -- arrays that cannot be written in place -------------------------------------------------

def _read_only(a: np.ndarray) -> np.ndarray:
    """A stand-in for an immutable array type: a NumPy array that refuses in-place writes."""
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("name", NAMES)
def test_read_only_arrays_are_replaced_through_the_dict(rng, name):
    host, grads = _host_problem(rng, steps=3)
    params = {k: _read_only(v) for k, v in host.items()}
    originals = dict(params)
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    ref_params = {k: v.copy() for k, v in host.items()}
    for step in grads:
        opt.update(params, step)
        ref.update(ref_params, step)
    for k in SHAPES:
        assert params[k] is not originals[k]
        np.testing.assert_array_equal(originals[k], host[k])  # untouched
        np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_read_only_arrays_in_params_rebind_the_layers(rng, name):
    net = xpnet.TwoLayerNet(6, 5, 3, weight_init_std=0.3, seed=3)
    for k in list(net.params):
        net.params[k] = _read_only(net.params[k])
    ref_params = {k: v.copy() for k, v in net.params.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    for _ in range(2):
        grads = net.gradient(x, t)
        ref.update(ref_params, grads)
        opt.update(net.params, grads)
    assert net.layers["Affine1"].W is net.params["W1"]
    assert net.layers["Affine2"].b is net.params["b2"]
    for k, v in net.params.items():
        np.testing.assert_allclose(v, ref_params[k], rtol=1e-12, atol=1e-14)


# -- errors ---------------------------------------------------------------------------------

def _one_step(xp, rng, dtype="float64"):
    host, grads = _host_problem(rng, steps=1)
    return ({k: xp.asarray(v, dtype) for k, v in host.items()},
            {k: xp.asarray(v, dtype) for k, v in grads[0].items()})


@pytest.mark.parametrize("name", NAMES)
def test_bad_gradients_are_refused_and_change_nothing(xp, rng, name):
    params, grads = _one_step(xp, rng)
    before = {k: xp.to_numpy(v) for k, v in params.items()}
    opt = get_optimizer(name)
    with pytest.raises(KeyError, match=r"unknown parameter.*'W2'"):
        opt.update(params, {**grads, "W2": grads["W"]})
    with pytest.raises(KeyError, match=r"lacks parameter.*'b'"):
        opt.update(params, {"W": grads["W"]})
    with pytest.raises(ValueError, match=r"grads\['b'\] has shape \(4,\) but params\['b'\]"):
        opt.update(params, {"W": grads["W"], "b": xp.asarray(np.ones(4), "float64")})
    with pytest.raises(TypeError, match=r"grads\['b'\] must be real floating"):
        opt.update(params, {"W": grads["W"], "b": xp.asarray([1, 2, 3], "int64")})
    with pytest.raises(TypeError, match="two dicts"):
        opt.update(params, [grads["W"], grads["b"]])
    for k, v in params.items():  # the first parameter was not updated before the error
        np.testing.assert_array_equal(xp.to_numpy(v), before[k])


@pytest.mark.parametrize("name", NAMES)
def test_plain_numbers_follow_the_book_rules_and_are_rebound(name):
    # The book's optimizer_compare_naive.py: params = {'x': -7.0, 'y': 2.0}, x_history keeps
    # params['x'] after each update, so each update must bind a new number, not mutate one.
    params, ref_params = {"x": -7.0, "y": 2}, {"x": np.array(-7.0), "y": np.array(2.0)}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    history = [params["x"]]
    for _ in range(4):
        grads = {"x": params["x"] / 10.0, "y": 2.0 * params["y"]}
        opt.update(params, grads)
        ref.update(ref_params, {k: np.asarray(v) for k, v in grads.items()})
        history.append(params["x"])
        for key in params:
            assert type(params[key]) is float
            assert params[key] == pytest.approx(float(ref_params[key]), rel=1e-12)
    assert len(set(history)) == len(history)  # five different values: nothing aliased


def test_plain_numbers_beside_arrays(rng):
    w = rng.standard_normal(3)
    params = {"w": w, "s": 1.0}
    optim.SGD(lr=0.5).update(params, {"w": np.ones(3), "s": 2.0})
    assert params["w"] is w  # the array still changes in place
    np.testing.assert_allclose(w, params["w"])
    assert params["s"] == 0.0


def test_integer_params_are_refused(xp):
    opt = optim.SGD()
    with pytest.raises(TypeError, match=r"params\['n'\] must be real floating"):
        opt.update({"n": xp.asarray([1, 2], "int64")}, {"n": xp.asarray([1.0, 2.0], "float64")})


def test_grads_from_another_library_are_refused(xp, rng):
    params, grads = _one_step(xp, rng)
    if xp.name == "numpy":
        torch = pytest.importorskip("torch", reason="needs a second array library")
        other = torch.ones(3, dtype=torch.float64)
    else:
        other = np.ones(3)
    with pytest.raises(TypeError, match=r"grads\['b'\] does not fit params\['b'\]"):
        optim.Adam().update(params, {"W": grads["W"], "b": other})


def test_grads_on_another_device_are_refused(xp, rng):
    if xp.other_device is None:
        pytest.skip(f"{xp.name} has no second device here")
    params, grads = _one_step(xp, rng)
    elsewhere = xp.asarray(np.ones(3), "float64", device=xp.other_device)
    with pytest.raises(ValueError, match=r"grads\['b'\] is on device"):
        optim.Momentum().update(params, {"W": grads["W"], "b": elsewhere})


@pytest.mark.parametrize("name", NAMES)
def test_state_of_another_network_is_refused(rng, name):
    if not STATE[name]:
        pytest.skip("SGD keeps no state")
    params, grads = _host_problem(rng, steps=1)
    opt = get_optimizer(name)
    opt.update(params, grads[0])
    with pytest.raises(KeyError, match="use a new optimizer"):
        opt.update({"W": params["W"]}, {"W": grads[0]["W"]})
    bigger = {"W": np.ones((5, 3)), "b": np.ones(3)}
    with pytest.raises(ValueError, match=r"has shape \(4, 3\) but params\['W'\] has \(5, 3\)"):
        opt.update(bigger, {k: np.ones_like(v) for k, v in bigger.items()})


def test_state_on_another_backend_is_refused(xp, rng):
    if xp.name == "numpy":
        pytest.skip("moves NumPy state to another backend")
    host, grads = _host_problem(rng, steps=1)
    opt = optim.Momentum()
    opt.update({k: v.copy() for k, v in host.items()}, grads[0])
    params, grads = _one_step(xp, rng)
    with pytest.raises(ValueError, match="a moved network needs a new optimizer"):
        opt.update(params, grads)
    opt.load_state_dict(opt.state_dict())  # the way to move the state along
    opt.update(params, grads)
    xp.assert_on(opt.v["W"], "float64", SHAPES["W"])


def test_state_of_another_dtype_is_refused(xp, rng):
    params, grads = _one_step(xp, rng)
    opt = optim.Adam()
    opt.update(params, grads)
    params32, grads32 = _one_step(xp, rng, "float32")
    with pytest.raises(ValueError, match="a moved network needs a new optimizer"):
        opt.update(params32, grads32)


@pytest.mark.parametrize(("cls", "kwargs", "error", "match"), [
    (optim.SGD, {"lr": 0.0}, ValueError, "lr must be a positive finite number"),
    (optim.SGD, {"lr": -0.1}, ValueError, "lr must be a positive"),
    (optim.Adam, {"lr": float("nan")}, ValueError, "lr must be a positive finite"),
    (optim.AdaGrad, {"lr": float("inf")}, ValueError, "lr must be a positive finite"),
    (optim.SGD, {"lr": "0.1"}, TypeError, "lr must be a real number"),
    (optim.SGD, {"lr": True}, TypeError, "lr must be a real number"),
    (optim.Momentum, {"momentum": 1.0}, ValueError, r"momentum must lie in \[0, 1\)"),
    (optim.Nesterov, {"momentum": -0.1}, ValueError, r"momentum must lie in \[0, 1\)"),
    (optim.RMSprop, {"decay_rate": 1.0}, ValueError, r"decay_rate must lie in \[0, 1\)"),
    (optim.Adam, {"beta1": 1.0}, ValueError, r"beta1 must lie in \[0, 1\)"),
    (optim.Adam, {"beta2": -0.5}, ValueError, r"beta2 must lie in \[0, 1\)"),
    (optim.Adam, {"beta2": float("nan")}, ValueError, "beta2"),
])
def test_bad_hyper_parameters(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_hyper_parameters_are_checked_when_set_later():
    opt = optim.Momentum()
    opt.lr = np.float32(0.5)  # NumPy scalars become Python floats
    assert type(opt.lr) is float
    with pytest.raises(ValueError, match="lr must be a positive"):
        opt.lr = -1.0
    with pytest.raises(ValueError, match="momentum"):
        opt.momentum = 2.0


def test_get_optimizer_by_name():
    assert set(OPTIMIZERS) == set(NAMES)
    assert type(get_optimizer("ADAM")) is optim.Adam
    assert type(get_optimizer(" Momentum ")) is optim.Momentum
    assert type(get_optimizer("rmsprprop")) is optim.RMSprop  # the book's Trainer's spelling
    assert get_optimizer("sgd", lr=0.5).lr == 0.5
    opt = optim.AdaGrad()
    assert get_optimizer(opt) is opt
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; choose one of sgd, momentum"):
        get_optimizer("adamw")
    with pytest.raises(TypeError, match=r"'adam' takes lr, beta1, beta2.*momentum"):
        get_optimizer("adam", momentum=0.9)
    with pytest.raises(TypeError, match="set them on the instance"):
        get_optimizer(opt, lr=0.1)
    with pytest.raises(TypeError, match="a name such as 'adam'"):
        get_optimizer(None)


def test_load_state_dict_checks_what_it_gets(rng):
    params, grads = _host_problem(rng, steps=1)
    adam = optim.Adam()
    adam.update(params, grads[0])
    state = adam.state_dict()
    with pytest.raises(ValueError, match="state of optimizer 'adam'; expected 'momentum'"):
        optim.Momentum().load_state_dict(state)
    with pytest.raises(ValueError, match="lacks beta2"):
        optim.Adam().load_state_dict({k: v for k, v in state.items() if k != "beta2"})
    with pytest.raises(ValueError, match="beta1 must lie"):
        optim.Adam().load_state_dict({**state, "beta1": 1.5})
    with pytest.raises(ValueError, match="iter must be a non-negative int"):
        optim.Adam().load_state_dict({**state, "iter": -1})
    untouched = optim.Adam(lr=0.25)
    with pytest.raises(TypeError, match=r"state\['m'\]\['W'\] must be floating point"):
        untouched.load_state_dict({**state, "m": {"W": np.ones(3, dtype=np.int64)}, "lr": 0.5})
    assert (untouched.lr, untouched.m) == (0.25, None)  # a refused state changes nothing
    fresh = optim.Adam()
    fresh.load_state_dict(optim.Adam(lr=0.5).state_dict())  # before any update: no state
    assert (fresh.lr, fresh.m, fresh.iter) == (0.5, None, 0)


# -- the fused CuPy kernels, run through a NumPy stand-in for CuPy ------------------------

class _NumpyElementwiseKernel:
    """Runs an ElementwiseKernel body on NumPy arrays, one statement at a time over whole
    arrays (each statement is elementwise, so the order per element is kept). Checks that
    every ``T`` argument has one dtype, as CuPy does."""

    def __init__(self, in_params, out_params, body, name):
        self.ins = [p.split() for p in in_params.split(",")]
        self.outs = [p.split() for p in out_params.split(",")]
        self.body, self.name = body, name

    def __call__(self, *args):
        assert len(args) == len(self.ins) + len(self.outs), self.name
        params = self.ins + self.outs
        dtypes = {np.asarray(a).dtype for (kind, _), a in zip(params, args, strict=True)
                  if kind == "T"}
        assert len(dtypes) == 1, f"{self.name}: T arguments of dtypes {dtypes}"
        (dtype,) = dtypes
        scope = {"T": dtype.type, "sqrt": np.sqrt, "pow": np.power}
        for (kind, name), a in zip(self.ins, args, strict=False):
            scope[name] = np.float64(a) if kind == "float64" else a
        outs = dict(zip([n for _, n in self.outs], args[len(self.ins):], strict=True))
        scope.update(outs)
        for statement in filter(None, (s.strip() for s in self.body.split(";"))):
            statement = re.sub(r"\(T\)(\w+)", r"T(\1)", re.sub(r"^const T ", "", statement))
            exec(statement, scope)
        for name, out in outs.items():
            out[...] = scope[name]


class _FakeCupy:
    ElementwiseKernel = _NumpyElementwiseKernel


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_fused_kernels_follow_the_book_rules(monkeypatch, rng, name, dtype):
    import array_api_compat.numpy as numpy_xp

    kernels = CupyOps(numpy_xp, cupy=_FakeCupy)
    monkeypatch.setattr(optim, "ops_for", lambda xp: kernels)
    host, grads = _host_problem(rng)
    params = {k: v.astype(dtype) for k, v in host.items()}
    before = dict(params)
    ref_params = {k: v.astype(np.float64) for k, v in params.items()}
    opt, ref = get_optimizer(name, **HYPER[name]), Reference(name, **HYPER[name])
    for step in grads:
        opt.update(params, step)  # float64 grads: cast before the kernel
        ref.update(ref_params, {k: v.astype(dtype) for k, v in step.items()})
    assert kernels.calls == len(grads) * len(SHAPES)  # one kernel per parameter update
    for k in SHAPES:
        assert params[k] is before[k]
        assert params[k].dtype == dtype
        np.testing.assert_allclose(params[k], ref_params[k], **_tolerance(dtype))
        for slot in STATE[name]:
            np.testing.assert_allclose(getattr(opt, slot)[k], ref.slot(slot, k),
                                       **_tolerance(dtype))


# -- convergence ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_each_optimizer_reduces_the_loss(name):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, 10))
    t = np.argmax(x @ rng.standard_normal((10, 3)), axis=1)
    net = xpnet.TwoLayerNet(10, 16, 3, weight_init_std=0.3, seed=0)
    opt = get_optimizer(name)  # the book's defaults
    first = float(net.loss(x, t))
    for _ in range(300):
        idx = rng.choice(200, 50, replace=False)
        opt.update(net.params, net.gradient(x[idx], t[idx]))
    assert float(net.loss(x, t)) < 0.7 * first


@pytest.mark.parametrize("name", NAMES)
def test_checks_still_run_after_a_good_update(xp, rng, name):
    """The per-update checks are cached for the same params dict holding the same arrays;
    bad gradients, swapped arrays and other dicts are still refused after a good update."""
    params, grads = _one_step(xp, rng)
    opt = get_optimizer(name)
    opt.update(params, grads)
    opt.update(params, grads)  # the cached path
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape"):
        opt.update(params, {"W": xp.asarray(np.ones((3, 4))), "b": grads["b"]})
    with pytest.raises(KeyError, match="lacks"):
        opt.update(params, {"W": grads["W"]})
    with pytest.raises(TypeError, match=r"grads\['b'\] must be real floating"):
        opt.update(params, {"W": grads["W"], "b": xp.asarray([1, 2, 3], "int64")})
    if STATE[name]:  # state made for (4, 3) does not fit another network
        other = {"W": xp.asarray(np.ones((2, 2))), "b": params["b"]}
        with pytest.raises(ValueError, match="use a new optimizer"):
            opt.update(other, {"W": xp.asarray(np.ones((2, 2))), "b": grads["b"]})
        params["W"] = xp.asarray(np.ones((5, 3)))  # the same dict, another array
        with pytest.raises(ValueError, match="use a new optimizer"):
            opt.update(params, {"W": xp.asarray(np.ones((5, 3))), "b": grads["b"]})


@pytest.mark.parametrize("name", NAMES)
def test_the_cached_check_refuses_a_wrong_shape_with_one_parameter(xp, rng, name):
    """The cached per-update check on its own (one parameter, so no second one falls back to
    the full check): a gradient that broadcasts but has the wrong shape is refused, not
    broadcast into the parameter. Guards the cached shape test against being inverted."""
    params = {"W": xp.asarray(rng.standard_normal((4, 3)))}
    opt = get_optimizer(name)
    opt.update(params, {"W": xp.asarray(rng.standard_normal((4, 3)))})
    before = xp.to_numpy(params["W"])
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(1, 3\) but params\['W'\] "
                                         r"has \(4, 3\)"):
        opt.update(params, {"W": xp.asarray(np.ones((1, 3)))})
    xp.assert_close(params["W"], before, rtol=0)


@pytest.mark.parametrize(("cls", "name"), [(optim.Momentum, "momentum"),
                                           (optim.Nesterov, "momentum"),
                                           (optim.RMSprop, "decay_rate"), (optim.Adam, "beta1"),
                                           (optim.Adam, "beta2")])
def test_a_decay_of_exactly_zero_is_allowed(rng, cls, name):
    """Decays and momenta lie in [0, 1): exactly 0 is allowed (guards `0.0 <= number`
    against `<`), and with momentum 0 Momentum is plain SGD."""
    opt = cls(**{name: 0.0})
    assert getattr(opt, name) == 0.0
    params, grads = _host_problem(rng, steps=1)
    opt.update(params, grads[0])
    if cls is optim.Momentum:
        want, _ = _host_problem(np.random.default_rng(20240605), steps=1)
        for key, value in params.items():
            np.testing.assert_allclose(value, want[key] - 0.01 * grads[0][key], rtol=1e-15)


def test_adam_refuses_a_step_count_left_on_another_device():
    """Adam's step count must live with the parameters: a count on another device (same
    array type) is refused with the fix. Guards the `or` of its type-or-device check against
    `and`."""
    strict = pytest.importorskip("array_api_strict")
    here, there = strict.Device("CPU_DEVICE"), strict.Device("device1")
    params = {"W": strict.ones((2, 2), dtype=strict.float64, device=here)}
    opt = optim.Adam()
    opt.update(params, {"W": strict.ones((2, 2), dtype=strict.float64, device=here)})
    opt.m = opt.v = None  # fresh moments for the moved parameters, but the old step count
    moved = {"W": strict.ones((2, 2), dtype=strict.float64, device=there)}
    with pytest.raises(ValueError, match="step count lives on another device"):
        opt.update(moved, {"W": strict.ones((2, 2), dtype=strict.float64, device=there)})


def test_adam_refuses_parameters_on_two_devices():
    """Adam keeps one step count, so its parameters must share a device: refused with the
    reason, before anything changes."""
    strict = pytest.importorskip("array_api_strict")
    here, there = strict.Device("CPU_DEVICE"), strict.Device("device1")
    params = {"W": strict.ones((2, 2), dtype=strict.float64, device=here),
              "b": strict.ones((2,), dtype=strict.float64, device=there)}
    grads = {k: strict.ones(v.shape, dtype=strict.float64, device=v.device)
             for k, v in params.items()}
    with pytest.raises(ValueError, match=r"Adam keeps one step count, so all parameters must "
                                         r"live on one device; params\['b'\] is on"):
        optim.Adam().update(params, grads)


def test_a_parameter_swapped_in_the_same_dict_gets_the_full_check(xp, rng):
    """The cached check vouches only for the arrays it saw: a parameter replaced in the same
    dict (here by one on another device, its gradient left behind) gets the full check and its
    clear error (guards the cached check's `current is not p`)."""
    if xp.other_device is None:
        pytest.skip(f"{xp.name} has no second device here")
    params, grads = _one_step(xp, rng)
    opt = optim.SGD()
    opt.update(params, grads)
    params["W"] = xp.asarray(np.ones((4, 3)), "float64", device=xp.other_device)
    with pytest.raises(ValueError, match=r"grads\['W'\] is on device"):
        opt.update(params, grads)


@pytest.mark.parametrize("bad", [[1.0, 2.0], np.ones(3), "v"])
def test_load_state_dict_refuses_state_that_is_not_a_dict(bad):
    """A state entry that is not a dict of arrays (a list, an array, a string) is refused by
    name before anything changes (a list or string has no .items(), an array would be taken
    apart), and the optimizer keeps what it had."""
    opt = optim.Momentum(lr=0.1)
    state = {**opt.state_dict(), "lr": 0.5, "v": bad}
    with pytest.raises(TypeError, match=r"Momentum.load_state_dict: state\['v'\] must be a dict "
                                        r"of arrays"):
        opt.load_state_dict(state)
    assert opt.lr == 0.1
    assert opt.v is None
