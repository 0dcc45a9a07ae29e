"""The step interface (xpnet.training.steps): what a step does and what the loop may ask of it."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from xpnet import Adam, TwoLayerNet
from xpnet.optim import SGD
from xpnet.training import EagerStep, GraphStep, Step, loss_reader, make_step, takes_scale
from xpnet.training.data import labels_checked_once


def _data(rng):
    x = rng.normal(size=(40, 6)).astype(np.float64)
    t = rng.integers(0, 3, 40)
    return x, t


def test_a_step_without_call_refuses_and_the_rest_does_nothing():
    step = Step()
    with pytest.raises(NotImplementedError, match="Step does not define __call__"):
        step(np.arange(3))
    with step.context():
        step.poll()
        step.close()


@pytest.mark.parametrize("optimizer", [lambda: Adam(lr=0.01), lambda: SGD(lr=0.3)])
def test_an_eager_step_is_one_optimizer_step_on_the_rows_given(rng, optimizer):
    x, t = _data(rng)
    idx = np.array([3, 17, 5, 8, 21])
    net = TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
    ref = TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
    step, context = make_step(net, np, x, t, optimizer(), batch_size=5)
    assert isinstance(step, EagerStep)
    assert isinstance(context, contextlib.nullcontext)
    with context:
        loss = step(idx)
    grads = ref.gradient(x[idx], t[idx])
    optimizer().update(ref.params, grads)
    for key in ref.params:
        np.testing.assert_allclose(net.params[key], ref.params[key], rtol=1e-12, atol=1e-15)
    assert np.ndim(loss) == 0  # left on the device: nothing read back
    assert float(loss) == pytest.approx(float(TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
                                              .loss(x[idx], t[idx])), rel=1e-12)


def test_plain_sgd_folds_the_learning_rate_only_where_the_network_takes_a_scale(rng):
    x, t = _data(rng)
    net = TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
    assert takes_scale(net)
    assert EagerStep(net, np, x, t, SGD(lr=0.1)).folded
    assert not EagerStep(net, np, x, t, Adam()).folded

    class BookNet:  # the book's shape: gradient(x, t) and a last layer keeping its loss
        def __init__(self):
            self.params = {"W1": np.zeros((6, 3))}

        def gradient(self, x, t):
            self.lastLayer.loss = np.asarray(0.5)
            return {"W1": np.ones((6, 3))}

        class lastLayer:  # the book's name
            loss = None

    book = BookNet()
    assert not takes_scale(book)
    step = EagerStep(book, np, x, t, SGD(lr=0.1))
    assert not step.folded
    assert float(step(np.arange(4))) == 0.5  # the loss of the gradient pass, not a second one
    np.testing.assert_allclose(book.params["W1"], -0.1)


def test_the_loss_reader_prefers_the_kept_loss_over_a_second_forward_pass(rng):
    x, t = _data(rng)
    net = TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
    net.gradient(x[:4], t[:4])
    kept = net.last_loss
    assert loss_reader(net)(x[4:], t[4:]) is kept

    class Plain:
        def loss(self, x, t):
            return "second pass"

    assert loss_reader(Plain())(x, t) == "second pass"


def test_the_graph_step_needs_cupy(rng):
    x, t = _data(rng)
    net = TwoLayerNet(6, 5, 3, dtype="float64", seed=0)
    with pytest.raises(ValueError, match="cuda_graph=True needs the cupy backend"):
        make_step(net, np, x, t, SGD(lr=0.1), batch_size=4, cuda_graph=True)


def test_the_graph_step_runs_on_its_stream_and_waits_for_it_on_close(fake_cupy, rng):
    cp = fake_cupy
    x, t = _data(rng)
    net = TwoLayerNet(6, 5, 3, xp="cupy", dtype="float32", seed=0)
    xd, td = cp.asarray(x.astype(np.float32)), cp.asarray(t)
    step, context = make_step(net, net.xp, xd, td, SGD(lr=0.1), batch_size=4, cuda_graph=True)
    assert isinstance(step, GraphStep)
    assert context is step.graph_step.stream
    with labels_checked_once(net), context:  # a label check would read back in the capture
        losses = [step(cp.asarray(np.arange(4 * k, 4 * k + 4))) for k in range(5)]
    stream, synced = step.graph_step.stream, []
    real = stream.synchronize
    stream.synchronize = lambda: synced.append(True) or real()
    step.close()
    assert synced == [True]
    assert step.graph_step.error is None
    assert step.graph_step.launches == 2  # 3 eager warm-up steps, then the graph
    values = [float(v) for v in losses]
    assert all(np.isfinite(values))
    assert len(set(values)) == 5  # copies, not the graph's buffer
