"""xpnet.Trainer: the book's ``common/trainer.py`` API over xpnet's one training loop."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

from xpnet import SGD, Adam, MultiLayerNet, MultiLayerNetExtend, Trainer, TwoLayerNet
from xpnet.layers import Affine, Relu, SoftmaxWithLoss

from ..helpers import clusters


@pytest.fixture
def data(rng):
    x, t = clusters(rng, 260, 12)
    return x[:200], t[:200], x[200:], t[200:]


def test_book_defaults_and_schedule(data):
    x, t, xt, tt = data
    net = TwoLayerNet(12, 8, 3, seed=0)
    trainer = Trainer(net, x, t, xt, tt, verbose=False)
    assert (trainer.epochs, trainer.batch_size) == (20, 100)
    assert type(trainer.optimizer) is SGD
    assert trainer.optimizer.lr == 0.01
    assert trainer.evaluate_sample_num_per_epoch is None
    # The book's arithmetic: 200 / 100 = 2 steps per epoch, 20 epochs.
    assert trainer.iter_per_epoch == 2.0
    assert trainer.max_iter == 40
    trainer = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=30, verbose=False)
    assert trainer.iter_per_epoch == pytest.approx(200 / 30)
    assert trainer.max_iter == int(3 * 200 / 30)


def test_lists_have_one_entry_per_epoch_and_one_loss_per_step(xp, data):
    x, t, xt, tt = data
    net = MultiLayerNetExtend(12, [16, 16], 3, use_batchnorm=True, xp=xp.namespace,
                              device=xp.device, dtype="float32", seed=0)
    trainer = Trainer(net, x, t, xt, tt, epochs=8, mini_batch_size=20, optimizer="Adam",
                      optimizer_param={"lr": 0.01}, verbose=False)
    history = trainer.train()
    assert history.status == "finished"
    assert len(trainer.train_loss_list) == trainer.max_iter == 80
    # The book plots these against np.arange(max_epochs): exactly one value per epoch.
    assert len(trainer.train_acc_list) == len(trainer.test_acc_list) == 8
    assert [e.iteration for e in history.epochs] == list(range(1, 80, 10))
    assert all(math.isfinite(v) for v in trainer.train_loss_list)
    assert np.mean(trainer.train_loss_list[-10:]) < 0.3 * np.mean(trainer.train_loss_list[:10])
    assert trainer.test_acc_list[-1] > 0.9
    # The final accuracy is measured after the last step, on the whole test set.
    assert trainer.final_test_acc == history.final_test_acc
    assert trainer.final_test_acc == net.accuracy(xp.asarray(xt), xp.asarray(tt, "int64"))
    assert type(trainer.optimizer) is Adam
    for value in net.params.values():
        xp.assert_on(value, "float32")


def test_same_seed_same_run(data):
    x, t, xt, tt = data

    def run(seed):
        net = MultiLayerNet(12, [10], 3, seed=0)
        trainer = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=25,
                          optimizer="momentum", verbose=False, seed=seed)
        trainer.train()
        return trainer.train_loss_list

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_evaluate_sample_num_per_epoch_limits_the_evaluation(data):
    x, t, xt, tt = data
    sizes = []

    class Spy(MultiLayerNet):
        def accuracy(self, x, t, **kwargs):
            sizes.append(x.shape[0])
            return super().accuracy(x, t, **kwargs)

    net = Spy(12, [10], 3, seed=0)
    Trainer(net, x, t, xt, tt, epochs=2, mini_batch_size=50, verbose=False,
            evaluate_sample_num_per_epoch=30).train()
    # Two epochs of (train, test) on 30 samples each, then the final test accuracy on all 60.
    assert sizes == [30, 30, 30, 30, 60]


class BookStyleNet:
    """A reader's own network in the book's chapter-5 shape: a plain dict of float64 NumPy
    weights shared with xpnet's layers, ``gradient`` returning a dict, no ``xp``/``dtype``."""

    def __init__(self, d_in, hidden, d_out, rng):
        self.params = {"W1": 0.1 * rng.standard_normal((d_in, hidden)), "b1": np.zeros(hidden),
                       "W2": 0.1 * rng.standard_normal((hidden, d_out)), "b2": np.zeros(d_out)}
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.lastLayer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.lastLayer.forward(self.predict(x), t)

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x), axis=1)
        return float(np.sum(y == t)) / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.lastLayer.backward(1)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return {"W1": self.layers["Affine1"].dW, "b1": self.layers["Affine1"].db,
                "W2": self.layers["Affine2"].dW, "b2": self.layers["Affine2"].db}


def test_trains_a_book_style_network_with_float32_data(data, rng):
    x, t, xt, tt = data
    net = BookStyleNet(12, 10, 3, rng)
    w1 = net.params["W1"]
    trainer = Trainer(net, x, t, xt, tt, epochs=5, mini_batch_size=20, optimizer="adagrad",
                      optimizer_param={"lr": 0.1}, verbose=False)
    history = trainer.train()
    assert history.status == "finished"
    assert net.params["W1"] is w1  # updated in place: the layers saw every step
    assert net.params["W1"].dtype == np.float64  # float32 data promoted, weights untouched
    assert len(trainer.train_acc_list) == 5
    assert trainer.final_test_acc > 0.9
    # The losses came from the last layer of each gradient pass (no second forward pass).
    assert len(trainer.train_loss_list) == trainer.max_iter


def test_verbose_prints_epochs_and_the_final_accuracy(data, capsys):
    x, t, xt, tt = data
    Trainer(TwoLayerNet(12, 8, 3, seed=0), x, t, xt, tt, epochs=2, mini_batch_size=100,
            optimizer_param={"lr": 0.1}).train()
    out = capsys.readouterr().out
    assert out.count("train acc") == 2
    assert "Final Test Accuracy" in out
    Trainer(TwoLayerNet(12, 8, 3, seed=0), x, t, xt, tt, epochs=2, verbose=False).train()
    assert capsys.readouterr().out == ""


def test_optimizer_objects_and_bad_arguments(data):
    x, t, xt, tt = data
    net = TwoLayerNet(12, 8, 3, seed=0)
    opt = Adam(lr=0.002)
    assert Trainer(net, x, t, xt, tt, optimizer=opt, verbose=False).optimizer is opt
    with pytest.raises(TypeError, match="optimizer_param"):
        Trainer(net, x, t, xt, tt, optimizer=opt, optimizer_param={"lr": 0.1})
    with pytest.raises(ValueError, match="adam"):
        Trainer(net, x, t, xt, tt, optimizer="adamw")
    with pytest.raises(ValueError, match="epochs"):
        Trainer(net, x, t, xt, tt, epochs=0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        Trainer(net, x, t, xt, tt, mini_batch_size=0)
    with pytest.raises(ValueError, match="evaluate_sample_num_per_epoch"):
        Trainer(net, x, t, xt, tt, evaluate_sample_num_per_epoch=0)


def test_a_diverging_run_stops_and_says_so(data, capsys):
    x, t, xt, tt = data
    trainer = Trainer(TwoLayerNet(12, 8, 3, dtype="float32", seed=0), x * 1e30, t, xt, tt,
                      epochs=3, optimizer_param={"lr": 1e30}, verbose=True)
    history = trainer.train()
    assert history.status == "diverged"
    assert trainer.final_test_acc is None
    assert "training stopped" in capsys.readouterr().out


class RowCountingNet(TwoLayerNet):
    """Records how many rows each accuracy evaluation sees."""

    def accuracy(self, x, t, **kwargs):
        self.rows = [*getattr(self, "rows", []), int(x.shape[0])]
        return super().accuracy(x, t, **kwargs)


@pytest.mark.parametrize("samples", [None, 50])
def test_train_acc_list_covers_the_whole_training_set(data, samples):
    """The book's Trainer with evaluate_sample_num_per_epoch=None measures the whole training
    set; xpnet took only as many rows as the test set has (60 of 200 here)."""
    x, t, xt, tt = data
    net = RowCountingNet(12, 8, 3, seed=0)
    trainer = Trainer(net, x, t, xt, tt, epochs=3, mini_batch_size=50, verbose=False,
                      evaluate_sample_num_per_epoch=samples)
    trainer.train()
    assert len(trainer.train_acc_list) == 3
    train_rows = net.rows[0:-1:2]  # per epoch: train, then test; at the end: the whole test set
    assert train_rows == [len(x) if samples is None else samples] * 3
    assert net.rows[1:-1:2] == [len(xt) if samples is None else samples] * 3
    assert net.rows[-1] == len(xt)
