"""xpnet.nets.base: what every network shares, :class:`Params` (the dict of parameters bound to
the layers) and :class:`Network`'s checks of its arguments, whatever the network."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.nets import MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet


def test_params_cannot_lose_entries():
    from xpnet import TwoLayerNet

    params = TwoLayerNet(4, 3, 2, seed=0).params
    for remove in (lambda: params.pop("W1"), params.popitem, params.clear,
                   lambda: params.__delitem__("b1")):
        with pytest.raises(TypeError, match="cannot be removed"):
            remove()
    assert sorted(params) == ["W1", "W2", "b1", "b2"]
    with pytest.raises(KeyError, match="unknown parameter 'W3'"):
        params.setdefault("W3", params["W1"])


_LIST_NETS = {
    "TwoLayerNet": lambda xp: TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, seed=0),
    "MultiLayerNetExtend": lambda xp: MultiLayerNetExtend(
        4, [3], 2, use_batchnorm=True, use_dropout=True, xp=xp.namespace, device=xp.device, seed=0),
    "SimpleConvNet": lambda xp: SimpleConvNet(
        (1, 2, 2), {"filter_num": 1, "filter_size": 1}, 3, 2, xp=xp.namespace, device=xp.device,
        seed=0),
}
_ENTRY_POINTS = {
    "predict": lambda net, x, t: net.predict(x),
    "loss": lambda net, x, t: net.loss(x, t),
    "gradient": lambda net, x, t: net.gradient(x, t),
    "accuracy": lambda net, x, t: net.accuracy(x, t),
    "numerical_gradient": lambda net, x, t: net.numerical_gradient(x, t),
}


@pytest.mark.parametrize("entry", list(_ENTRY_POINTS))
@pytest.mark.parametrize("kind", list(_LIST_NETS))
def test_python_lists_are_refused_alike_by_every_entry_point(xp, kind, entry):
    """A list for x or t: one TypeError that names the argument and the conversion, from
    every entry point of every network (not AttributeError: 'list' object has no 'ndim')."""
    net = _LIST_NETS[kind](xp)
    call = _ENTRY_POINTS[entry]
    x_list = [[0.5, -1.0, 2.0, 0.0], [1.0, 0.0, -0.5, 0.25]]
    x, t = xp.asarray(np.array(x_list)), xp.asarray(np.array([0, 1]), "int64")
    call(net, x, t)  # arrays work
    pattern = (r"^x must be an array, got a Python list; convert it first: "
               r"x = net\.xp\.asarray\(x, device=net\.device\) \(this network holds "
               f"{xp.namespace.__name__.split('.')[-1]} arrays\\)$")
    with pytest.raises(TypeError, match=pattern):
        call(net, x_list, t)
    if entry != "predict":
        with pytest.raises(TypeError, match=r"^t must be an array, got a Python tuple; "
                                            r"convert it first: t = net\.xp\.asarray\(t, "):
            call(net, x, (0, 1))
    with pytest.raises(TypeError, match=r"^x must be an array, got builtins\.float"):
        call(net, 1.5, t)


# --------------------------------------------------------------------------- Network and Params
# Edges that mutation testing (tools/mutants.py) found unguarded.


def _mlp(xp, **options):
    return MultiLayerNetExtend(4, [3], 2, xp=xp.namespace, device=xp.device, seed=0, **options)


def test_assigning_params_on_a_base_network_rebinds_the_layers(xp, rng):
    """`net.params = {...}` on a network that inherits Network's setter (not TwoLayerNet's own
    copy) assigns each entry and rebinds its layer: guards the setter against a no-op."""
    net = _mlp(xp)
    new = {"W1": xp.asarray(rng.standard_normal((4, 3))), "b2": xp.asarray(rng.standard_normal(2))}
    net.params = new
    assert net.params["W1"] is new["W1"]
    layer, attr = net.params.binding("W1")
    assert getattr(layer, attr) is new["W1"]
    layer, attr = net.params.binding("b2")
    assert getattr(layer, attr) is new["b2"]


def test_params_refuse_another_shape_dtype_backend_or_device(xp):
    """Every refusal of Params.__setitem__, each with its own message; nothing is rebound."""
    net = _mlp(xp)
    params = net.params
    w1 = params["W1"]
    with pytest.raises(ValueError, match=r"params\['W1'\] must keep shape \(4, 3\), got \(3, 4\)"):
        params["W1"] = xp.asarray(np.zeros((3, 4)))
    with pytest.raises(TypeError, match=r"params\['W1'\] must keep dtype .*float64.*cast with"):
        params["W1"] = xp.asarray(np.zeros((4, 3)), "float32")
    with pytest.raises(KeyError, match="unknown parameter 'W9'; this network has W1, b1"):
        params["W9"] = w1
    if xp.name != "numpy":
        with pytest.raises(TypeError):
            params["W1"] = np.zeros((4, 3))
    if xp.other_device is not None:
        with pytest.raises(ValueError, match=r"params\['W1'\] must stay on device"):
            params["W1"] = xp.asarray(np.zeros((4, 3)), "float64", device=xp.other_device)
    assert params["W1"] is w1
    layer, attr = params.binding("W1")
    assert getattr(layer, attr) is w1
    params["W1"] = w1  # the same array again: nothing to check, nothing changes
    params.update(b1=xp.asarray(np.ones(3)))
    xp.assert_close(params["b1"], np.ones(3), rtol=0)
    assert params.setdefault("b1") is params["b1"]


def test_accuracy_batches_column_labels_and_refusals(xp, rng):
    """accuracy: the same value in batches of any size (and for a column of class indices or
    one-hot rows), and clear refusals of a row-count mismatch and of an empty batch."""
    net = _mlp(xp)
    xh = rng.standard_normal((7, 4))
    x = xp.asarray(xh)
    scores = xp.to_numpy(net.predict(x))
    labels = np.array([0, 1, 1, 0, 1, 0, 0])
    want = float(np.mean(np.argmax(scores, axis=1) == labels))
    t = xp.asarray(labels, "int64")
    for batch in (1, 2, 3, 7, 10_000):
        assert net.accuracy(x, t, batch_size=batch) == pytest.approx(want, abs=0), batch
    assert net.accuracy(x, xp.asarray(labels[:, None], "int64"), batch_size=3) == want
    assert net.accuracy(x, xp.asarray(np.eye(2)[labels]), batch_size=3) == want
    with pytest.raises(ValueError, match="x has 7 rows but t has 6"):
        net.accuracy(x, t[:6])
    with pytest.raises(ValueError, match="accuracy of an empty batch is undefined"):
        net.accuracy(x[:0, ...], t[:0])


def test_integer_input_is_cast_and_bool_input_refused(xp, rng):
    """Inputs of another real dtype are cast to the network's (integers too); a bool input is
    refused with the dtype named."""
    net = _mlp(xp)
    xh = rng.integers(0, 3, (2, 4))
    xp.assert_close(net.predict(xp.asarray(xh, "int64")),
                    xp.to_numpy(net.predict(xp.asarray(xh, "float64"))), rtol=1e-15)
    with pytest.raises(TypeError, match=r"input must hold real numbers, got dtype .*bool"):
        net.predict(xp.asarray(xh > 0, "bool"))


def test_input_and_labels_on_another_device_are_refused(xp):
    """x and t on another device than the network: refused with the fix (move them once)."""
    if xp.other_device is None:
        pytest.skip(f"{xp.name} has no second device here")
    net = _mlp(xp)
    x = xp.asarray(np.zeros((2, 4)), "float64", device=xp.other_device)
    t_there = xp.asarray([0, 1], "int64", device=xp.other_device)
    with pytest.raises(ValueError, match=r"input is on device .* move it once"):
        net.predict(x)
    with pytest.raises(ValueError, match=r"labels are on device .* move them once"):
        net.loss(xp.asarray(np.zeros((2, 4))), t_there)


def test_weight_decay_enters_the_loss_and_the_scaled_gradient(xp, rng):
    """The loss adds 0.5*lambda*sum(W**2) over every decayed weight, and gradient(scale=s)
    returns s times the gradient, decay included: against the same net without decay."""
    x = xp.asarray(rng.standard_normal((3, 4)))
    t = xp.asarray([0, 1, 1], "int64")
    plain = MultiLayerNet(4, [3], 2, xp=xp.namespace, device=xp.device, seed=0)
    decayed = MultiLayerNet(4, [3], 2, xp=xp.namespace, device=xp.device, seed=0,
                            weight_decay_lambda=0.3)
    ws = {k: xp.to_numpy(v) for k, v in plain.params.items() if k.startswith("W")}
    penalty = 0.5 * 0.3 * sum(float(np.sum(w * w)) for w in ws.values())
    assert float(decayed.loss(x, t)) == pytest.approx(float(plain.loss(x, t)) + penalty,
                                                      rel=1e-12)
    g0 = plain.gradient(x, t, scale=2.5)
    g1 = decayed.gradient(x, t, scale=2.5)
    assert float(decayed.last_loss) == pytest.approx(float(plain.last_loss) + penalty, rel=1e-12)
    for name in plain.params:
        extra = 2.5 * 0.3 * ws[name] if name in ws else 0.0
        xp.assert_close(g1[name], xp.to_numpy(g0[name]) + extra, rtol=1e-12, atol=1e-15)
    unscaled = plain.gradient(x, t)
    for name in plain.params:
        xp.assert_close(g0[name], 2.5 * xp.to_numpy(unscaled[name]), rtol=1e-12, atol=1e-15)


def test_to_keeps_parameters_and_running_statistics_and_repr_names_them(xp, rng):
    """to(): a copy with the same parameters and batch-norm statistics in the new dtype;
    repr names the sizes, options, backend, device and dtype."""
    net = _mlp(xp, use_batchnorm=True)
    net.gradient(xp.asarray(rng.standard_normal((5, 4))), xp.asarray([0, 1, 0, 1, 1], "int64"))
    copy = net.to(dtype="float32")
    for name, value in net.params.items():
        xp.assert_on(copy.params[name], "float32", tuple(value.shape))
        xp.assert_close(copy.params[name], xp.to_numpy(value), rtol=1e-6)
    for name, value in net.buffers().items():
        if value is not None:
            xp.assert_close(copy.buffers()[name], xp.to_numpy(value), rtol=1e-6)
    text = repr(copy)
    assert text.startswith("MultiLayerNetExtend(4, [3], 2, activation='relu', ")
    assert "use_batchnorm=True, xp='" in text
    assert text.endswith(f"device={copy.device!r}, dtype='float32')")


def test_from_params_names_the_missing_parameters():
    """from_params refuses parameters that lack entries, naming them and all it needs."""
    with pytest.raises(KeyError, match=r"params lack b2; need W1, b1, W2 and b2"):
        TwoLayerNet.from_params({"W1": np.ones((4, 3)), "b1": np.ones(3), "W2": np.ones((3, 2))})


def test_params_bind_each_array_to_its_layer_when_made():
    """Params binds every array to its (layer, attribute) when it is made, whatever the layer
    held before: it is the one source of truth for the layers."""
    from types import SimpleNamespace

    from xpnet.nets.base import Params

    layer = SimpleNamespace(W="stale")
    arrays = {"W1": np.ones((2, 2)), "b1": np.zeros(2)}
    params = Params(arrays, {"W1": (layer, "W"), "b1": (layer, "b")})
    assert layer.W is arrays["W1"]
    assert layer.b is arrays["b1"]
    assert params.binding("b1") == (layer, "b")
