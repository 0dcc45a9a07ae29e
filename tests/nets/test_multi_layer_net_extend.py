"""xpnet.nets.MultiLayerNetExtend: batch normalization and dropout in the chapter-6 network.

References are NumPy float64 computations written here (batch-norm forward in training and
inference mode, the dropout mask applied by hand) from the network's own parameters.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet import BatchNormalization, Dropout, MultiLayerNetExtend, gradient_check
from xpnet.io import load_net, save_net

from ..helpers import clusters, host_params

EPS = 10e-7  # the book's batch-norm epsilon


def _net(xp, *args, **kwargs):
    return MultiLayerNetExtend(*args, xp=xp.namespace, device=xp.device, **kwargs)


def _reference_scores(p, x, depth, *, train, masks=None, stats=None, ratio=0.0):
    """NumPy float64 forward pass of Affine -> BatchNorm -> ReLU (-> Dropout) ... -> Affine."""
    h = x
    for i in range(1, depth + 1):
        h = h @ p[f"W{i}"] + p[f"b{i}"]
        if i == depth:
            return h
        if train:
            mu, var = h.mean(axis=0), h.var(axis=0)
        else:
            mu, var = stats[f"running_mean{i}"], stats[f"running_var{i}"]
        h = p[f"gamma{i}"] * (h - mu) / np.sqrt(var + EPS) + p[f"beta{i}"]
        h = np.maximum(h, 0.0)
        if masks is not None:
            h = h * masks[i - 1] if train else h * (1.0 - ratio)
    raise AssertionError


def test_book_layer_and_parameter_names(xp):
    net = _net(xp, 6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.3,
               seed=0)
    assert list(net.layers) == ["Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
                                "Affine2", "BatchNorm2", "Activation_function2", "Dropout2",
                                "Affine3"]
    assert sorted(net.params) == sorted(["W1", "b1", "W2", "b2", "W3", "b3",
                                         "gamma1", "beta1", "gamma2", "beta2"])
    xp.assert_close(net.params["gamma2"], np.ones(4))
    xp.assert_close(net.params["beta1"], np.zeros(5))
    assert isinstance(net.layers["BatchNorm1"], BatchNormalization)
    assert isinstance(net.layers["Dropout2"], Dropout)
    # Without the options it is exactly a MultiLayerNet.
    plain = _net(xp, 6, [5, 4], 3, seed=0)
    assert list(plain.layers) == ["Affine1", "Activation_function1", "Affine2",
                                  "Activation_function2", "Affine3"]
    assert sorted(plain.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]


def test_training_and_inference_forward_match_numpy(xp, rng):
    net = _net(xp, 6, [5, 4], 3, use_batchnorm=True, dtype="float64", seed=1)
    x = rng.standard_normal((8, 6))
    xd = xp.asarray(x)
    p = host_params(xp, net)
    # Training mode: batch statistics.
    got = xp.to_numpy(net.predict(xd, train_flg=True))
    np.testing.assert_allclose(got, _reference_scores(p, x, 3, train=True), rtol=1e-10)
    # After some training steps, inference uses the layers' running statistics.
    t = xp.asarray(rng.integers(0, 3, 8), "int64")
    for _ in range(3):
        net.gradient(xd, t)
    stats = {k: xp.to_numpy(v) for k, v in net.buffers().items()}
    assert sorted(stats) == ["running_mean1", "running_mean2", "running_var1", "running_var2"]
    p = host_params(xp, net)
    got = xp.to_numpy(net.predict(xd))  # train_flg=False: the book's default
    np.testing.assert_allclose(got, _reference_scores(p, x, 3, train=False, stats=stats),
                               rtol=1e-10)
    assert not np.allclose(got, _reference_scores(p, x, 3, train=True))


@pytest.mark.parametrize("use_batchnorm", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.2])
def test_gradient_check_float64_with_batchnorm_fixed_dropout_and_weight_decay(
        xp, rng, use_batchnorm, lam):
    net = _net(xp, 7, [6, 5], 3, use_batchnorm=use_batchnorm, use_dropout=True,
               dropout_ration=0.3, weight_decay_lambda=lam, dtype="float64", seed=2)
    x = xp.asarray(rng.standard_normal((6, 7)))
    t = xp.asarray(rng.integers(0, 3, 6), "int64")
    # A fixed mask per dropout layer: the numerical and backprop gradients see one function.
    for i, width in ((1, 6), (2, 5)):
        net.layers[f"Dropout{i}"].fixed_mask = xp.asarray(rng.random((6, width)) > 0.3)
    report = gradient_check(net, x, t, mode="full", dtype="float64")
    assert report.ok, report.table()
    names = {row.name for row in report.rows} if hasattr(report, "rows") else set(report.errors)
    assert names >= ({"gamma1", "beta2"} if use_batchnorm else {"W1", "b3"})


def test_dropout_masks_apply_in_training_and_scale_in_inference(xp, rng):
    ratio = 0.4
    net = _net(xp, 6, [5], 3, use_dropout=True, dropout_ration=ratio, dtype="float64", seed=3)
    x = rng.standard_normal((4, 6))
    mask = rng.random((4, 5)) > ratio
    net.layers["Dropout1"].fixed_mask = xp.asarray(mask)
    p = host_params(xp, net)
    got = xp.to_numpy(net.predict(xp.asarray(x), train_flg=True))
    h = np.maximum(x @ p["W1"] + p["b1"], 0.0) * mask
    np.testing.assert_allclose(got, h @ p["W2"] + p["b2"], rtol=1e-12)
    got = xp.to_numpy(net.predict(xp.asarray(x)))
    h = np.maximum(x @ p["W1"] + p["b1"], 0.0) * (1.0 - ratio)
    np.testing.assert_allclose(got, h @ p["W2"] + p["b2"], rtol=1e-12)


def test_dropout_layers_share_one_seeded_generator(xp, rng):
    def masks(seed):
        net = _net(xp, 6, [5, 5], 3, use_dropout=True, seed=seed)
        x = xp.asarray(rng.standard_normal((4, 6)), "float64")
        net.predict(x, train_flg=True)
        return [xp.to_numpy(net.layers[f"Dropout{i}"].mask) for i in (1, 2)]

    first, again, other = masks(7), masks(7), masks(8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[1])  # layers draw different masks
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_learns_with_batchnorm_and_adam(xp, rng):
    from xpnet import Adam

    xh, labels = clusters(rng, 120, 10)
    x = xp.asarray(xh, "float32")
    t = xp.asarray(labels, "int64")
    net = _net(xp, 10, [16, 16], 3, use_batchnorm=True, dtype="float32", seed=4)
    opt = Adam(lr=0.01)
    first = None
    for _ in range(60):
        opt.update(net.params, net.gradient(x, t))
        first = float(net.last_loss) if first is None else first
    assert float(net.last_loss) < 0.2 * first
    assert net.accuracy(x, t) > 0.95
    for value in [*net.params.values(), *net.buffers().values()]:
        xp.assert_on(value, "float32")


def test_save_and_load_keep_running_statistics_and_options(xp, rng, tmp_path):
    net = _net(xp, 6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dropout_ration=0.25,
               weight_decay_lambda=0.1, seed=5)
    x = xp.asarray(rng.standard_normal((8, 6)))
    t = xp.asarray(rng.integers(0, 3, 8), "int64")
    for _ in range(4):
        net.gradient(x, t)
    path = save_net(tmp_path / "net.npz", net)
    loaded = load_net(path, xp=xp.namespace, device=xp.device)
    assert type(loaded) is MultiLayerNetExtend
    assert loaded.config() == net.config()
    for name, value in net.buffers().items():
        xp.assert_close(loaded.buffers()[name], xp.to_numpy(value))
    xp.assert_close(loaded.predict(x), xp.to_numpy(net.predict(x)))


def test_to_keeps_options(xp):
    net = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, use_dropout=True, seed=0)
    moved = net.to(xp.namespace, device=xp.device)
    assert moved.config() == net.config()
    assert list(moved.layers) == list(net.layers)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"dropout_ration": 1.0, "use_dropout": True}, "dropout_ration"),
    ({"dropout_ration": float("nan"), "use_dropout": True}, "dropout_ration"),
    ({"activation": "tanh"}, "activation"),
])
def test_bad_options(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        MultiLayerNetExtend(6, [5], 3, **kwargs)


def test_load_buffers_refuses_wrong_names_and_shapes():
    net = MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=0)
    with pytest.raises(ValueError, match="unknown buffer"):
        net.load_buffers({"running_mean7": np.zeros(5)})
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        net.load_buffers({"running_var1": np.zeros(4)})


def test_gradient_check_without_a_fixed_dropout_mask_is_refused_clearly(rng):
    net = MultiLayerNetExtend(6, [5], 3, use_dropout=True, seed=0)
    x, t = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    with pytest.raises(ValueError, match=r"'Dropout1'.*fixed_mask"):
        gradient_check(net, x, t, mode="full")


def test_to_carries_the_batchnorm_running_statistics(xp, rng):
    """net.to() copies what inference needs: a trained batch-norm network's running
    statistics come along (they were lost: the copy predicted with zeros)."""
    net = MultiLayerNetExtend(4, [3, 3], 2, use_batchnorm=True, seed=1)
    xh, th = rng.standard_normal((6, 4)), np.array([0, 1, 1, 0, 1, 0])
    for _ in range(3):
        net.gradient(xh, th)  # training-mode passes move the running statistics
    moved = net.to(xp.namespace, device=xp.device)
    for key, value in net.buffers().items():
        xp.assert_close(moved.buffers()[key], value, rtol=0)
    xp.assert_close(moved.predict(xp.asarray(xh)), net.predict(xh), rtol=1e-12, atol=1e-14)
