"""The training loop: learning on every backend, reproducibility, divergence, interruption,
bad input, and host syncs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet.train as train_module
from xpnet import TwoLayerNet
from xpnet.train import History, sgd_step, train


def clusters(rng: np.random.Generator, n: int, features: int = 20, classes: int = 3):
    """Well separated Gaussian clusters: a small problem any working trainer solves."""
    centers = rng.normal(0.0, 3.0, (classes, features))
    labels = rng.integers(0, classes, n).astype(np.uint8)
    x = centers[labels] + rng.normal(0.0, 0.5, (n, features))
    return x.astype(np.float32), labels


@pytest.fixture
def data(rng):
    x, t = clusters(rng, 390)
    return x[:300], t[:300], x[300:], t[300:]


def test_learns_on_every_backend(be, data):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, xp=be.xp, device=be.device, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=120, batch_size=30, lr=0.5, seed=1)
    assert history.status == "finished"
    assert history.iterations == 120
    assert len(history.loss) == 120
    assert all(math.isfinite(v) for v in history.loss)
    # One evaluation per epoch of 10 steps (at steps 1, 11, ..., 111) and one after the last.
    assert [e.iteration for e in history.epochs] == [*range(1, 120, 10), 120]
    assert history.epochs[0].test_acc < 0.9 < history.final_test_acc
    assert np.mean(history.loss[-10:]) < 0.5 * np.mean(history.loss[:10])
    # Parameters stayed on the backend's device, in float32.
    for value in net.params.values():
        be.assert_on(value, "float32")


def test_accepts_device_arrays_and_one_hot_labels(be, data):
    x, t, xt, tt = data
    one_hot = np.eye(3, dtype=np.float32)
    net = TwoLayerNet(20, 16, 3, xp=be.xp, device=be.device, dtype="float32", seed=0)
    history = train(net, be.asarray(x), be.asarray(one_hot[t]), be.asarray(xt),
                    be.asarray(one_hot[tt]), iters=60, batch_size=30, lr=0.5, seed=1)
    assert history.final_test_acc > 0.9


def test_same_seed_same_run_and_other_seed_other_run(data):
    x, t, xt, tt = data

    def run(seed):
        net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
        return train(net, x, t, xt, tt, iters=40, batch_size=30, lr=0.5, seed=seed).loss

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_backends_agree_on_the_same_run(be, data):
    """Same init, same batches, same arithmetic in float64: the loss curves match NumPy's."""
    x, t, xt, tt = data
    ref = train(TwoLayerNet(20, 16, 3, dtype="float64", seed=0), x, t, xt, tt,
                iters=30, batch_size=30, lr=0.5, seed=2).loss
    net = TwoLayerNet(20, 16, 3, xp=be.xp, device=be.device, dtype="float64", seed=0)
    got = train(net, x, t, xt, tt, iters=30, batch_size=30, lr=0.5, seed=2).loss
    np.testing.assert_allclose(got, ref, rtol=1e-10)


class PoisonedNet(TwoLayerNet):
    """Writes NaN into W1 after ``poison_after`` gradient steps."""

    poison_after = 7

    def gradient(self, x, t):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == self.poison_after + 1:
            xp = self.xp
            w = self.params["W1"]
            self.params["W1"] = xp.full(w.shape, xp.nan, dtype=w.dtype, device=self.device)
        return super().gradient(x, t)


def test_nan_loss_stops_with_the_iteration_number(be, data):
    x, t, xt, tt = data
    net = PoisonedNet(20, 16, 3, xp=be.xp, device=be.device, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=100, batch_size=30, lr=0.5, seed=1)
    assert history.status == "diverged"
    assert "iteration 8" in history.message
    assert "nan" in history.message
    assert all(math.isfinite(v) for v in history.loss[:7])
    assert not math.isfinite(history.loss[7])


class InterruptedNet(TwoLayerNet):
    def gradient(self, x, t):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 26:
            raise KeyboardInterrupt
        return super().gradient(x, t)


def test_ctrl_c_keeps_what_was_measured(data):
    x, t, xt, tt = data
    net = InterruptedNet(20, 16, 3, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=100, batch_size=30, lr=0.5, seed=1)
    assert history.status == "interrupted"
    assert history.iterations == 25
    assert len(history.loss) == 25
    assert "25 iterations" in history.message


def test_one_host_sync_per_epoch(monkeypatch, data):
    """Per-step losses come back in one batch per evaluation, not one per step."""
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    calls = []
    real = train_module.to_numpy
    monkeypatch.setattr(train_module, "to_numpy", lambda a: calls.append(1) or real(a))
    history = train(net, x, t, xt, tt, iters=50, batch_size=30, lr=0.5, seed=1)
    # 4 moves of the data at the start, then one per evaluation.
    assert len(calls) <= 4 + len(history.epochs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"iters": 0}, ValueError, "iters must be a positive integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"batch_size": 1000}, ValueError, "larger than the training set"),
        ({"lr": -0.1}, ValueError, "lr must be a positive finite number"),
        ({"lr": float("nan")}, ValueError, "lr must be a positive finite number"),
    ],
)
def test_bad_settings(data, kwargs, error, match):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    with pytest.raises(error, match=match):
        train(net, x, t, xt, tt, **kwargs)


def test_bad_data(data):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    with pytest.raises(ValueError, match="differ in length: 300 vs 299"):
        train(net, x, t[:-1], xt, tt)
    with pytest.raises(ValueError, match="takes 20 features"):
        train(net, x[:, :10], t, xt, tt)
    bad = t.copy()
    bad[5] = 3
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*from 0 to 3"):
        train(net, x, bad, xt, tt)
    with pytest.raises(TypeError, match="class indices"):
        train(net, x, t.astype(np.float32), xt, tt)


def test_sgd_step_updates_what_the_layers_use(be, rng):
    net = TwoLayerNet(4, 3, 2, xp=be.xp, device=be.device, dtype="float64", seed=0)
    before = {k: be.to_numpy(v) for k, v in net.params.items()}
    grads = {k: be.asarray(rng.normal(size=v.shape)) for k, v in before.items()}
    sgd_step(net.params, grads, 0.5)
    for k, v in net.params.items():
        be.assert_close(v, before[k] - 0.5 * be.to_numpy(grads[k]), rtol=1e-14)
    be.assert_close(net.layers["Affine1"].W, be.to_numpy(net.params["W1"]))


def test_history_to_dict_is_json_ready(data):
    import json

    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=20, batch_size=30, lr=0.5)
    record = json.loads(json.dumps(history.to_dict()))
    assert record["final_test_acc"] == history.final_test_acc
    assert record["epochs"][-1]["iteration"] == 20
    assert record["versions"]["numpy"] == np.__version__
    assert isinstance(history, History)
