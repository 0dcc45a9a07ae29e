"""The training loop: learning on every backend, reproducibility, divergence, interruption,
bad input, and host syncs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet import TwoLayerNet
from xpnet.training import History, NonFiniteLossError, sgd_step, train

from ..helpers import clusters


@pytest.fixture
def data(rng):
    x, t = clusters(rng, 390)
    return x[:300], t[:300], x[300:], t[300:]


def test_learns_on_every_backend(xp, data):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, xp=xp.namespace, device=xp.device, dtype="float32", seed=0)
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
        xp.assert_on(value, "float32")


def test_log_names_epochs_and_the_evaluation_after_the_last_step(data):
    x, t, xt, tt = data
    lines: list[str] = []
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    train(net, x, t, xt, tt, iters=25, batch_size=30, lr=0.5, seed=1, log=lines.append)
    rows = [line for line in lines if " iter " in line]
    # Epochs of 10 steps start at steps 1, 11, 21; the extra evaluation after step 25 is no
    # epoch 4 (a 20-epoch run used to print "epoch 21").
    assert [row.split("  iter")[0].strip() for row in rows] == [
        "epoch  1", "epoch  2", "epoch  3", "end"]
    assert rows[-1].split()[2] == "25"


def test_accepts_device_arrays_and_one_hot_labels(xp, data):
    x, t, xt, tt = data
    one_hot = np.eye(3, dtype=np.float32)
    net = TwoLayerNet(20, 16, 3, xp=xp.namespace, device=xp.device, dtype="float32", seed=0)
    history = train(net, xp.asarray(x), xp.asarray(one_hot[t]), xp.asarray(xt),
                    xp.asarray(one_hot[tt]), iters=60, batch_size=30, lr=0.5, seed=1)
    assert history.final_test_acc > 0.9


def test_same_seed_same_run_and_other_seed_other_run(data):
    x, t, xt, tt = data

    def run(seed):
        net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
        return train(net, x, t, xt, tt, iters=40, batch_size=30, lr=0.5, seed=seed).loss

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_backends_agree_on_the_same_run(xp, data):
    """Same init, same batches, same arithmetic in float64: the loss curves match NumPy's."""
    x, t, xt, tt = data
    ref = train(TwoLayerNet(20, 16, 3, dtype="float64", seed=0), x, t, xt, tt,
                iters=30, batch_size=30, lr=0.5, seed=2).loss
    net = TwoLayerNet(20, 16, 3, xp=xp.namespace, device=xp.device, dtype="float64", seed=0)
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


def test_nan_loss_stops_with_the_iteration_number(xp, data):
    x, t, xt, tt = data
    net = PoisonedNet(20, 16, 3, xp=xp.namespace, device=xp.device, dtype="float32", seed=0)
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


class RecordingNet(TwoLayerNet):
    """Records the label-check setting each step sees; raises ``error`` at step ``fail_at``."""

    fail_at = None
    error = RuntimeError

    def gradient(self, x, t, **kwargs):
        self.seen = [*getattr(self, "seen", []), self.lastLayer.check_labels]
        if len(self.seen) == self.fail_at:
            raise self.error("step failed")
        return super().gradient(x, t, **kwargs)


def _bad_labels_raise(net) -> bool:
    """Whether ``net.loss`` refuses a label out of range (it does while checks are on)."""
    x = np.zeros((2, 20), dtype=np.float32)
    try:
        net.loss(net.xp.asarray(x), net.xp.asarray(np.array([0, 7])))
    except ValueError as exc:
        return "labels must lie in [0, 3)" in str(exc)
    return False


def test_label_checks_are_off_while_training_and_restored_after(data):
    x, t, xt, tt = data
    net = RecordingNet(20, 16, 3, dtype="float32", seed=0)
    assert _bad_labels_raise(net)
    train(net, x, t, xt, tt, iters=12, batch_size=30, lr=0.5, seed=1)
    assert net.seen == [False] * 12  # no per-step host sync
    assert net.lastLayer.check_labels is True
    assert _bad_labels_raise(net)  # the caller's network checks labels again


def test_label_checks_stay_off_when_the_caller_turned_them_off(data):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    net.lastLayer.check_labels = False
    train(net, x, t, xt, tt, iters=3, batch_size=30, lr=0.5, seed=1)
    assert net.lastLayer.check_labels is False


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, NonFiniteLossError])
def test_label_checks_are_restored_when_a_step_raises(data, error):
    x, t, xt, tt = data
    net = RecordingNet(20, 16, 3, dtype="float32", seed=0)
    net.fail_at, net.error = 5, error
    if error is RuntimeError:
        with pytest.raises(RuntimeError, match="step failed"):
            train(net, x, t, xt, tt, iters=12, batch_size=30, lr=0.5, seed=1)
    else:  # caught by train: the run ends as interrupted or diverged
        history = train(net, x, t, xt, tt, iters=12, batch_size=30, lr=0.5, seed=1)
        assert history.status in ("interrupted", "diverged")
    assert net.seen == [False] * 5
    assert net.lastLayer.check_labels is True


def test_label_checks_are_restored_when_the_setup_fails(data):
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    with pytest.raises(ValueError, match="cuda_graph=True needs the cupy backend"):
        train(net, x, t, xt, tt, iters=3, batch_size=30, cuda_graph=True)
    assert net.lastLayer.check_labels is True


# Run in a fresh interpreter: a meta-path finder placed first sees every attempt to import a
# CuPy module (and lets it go on), whether or not CuPy is installed; the report is the last line.
_WATCH_CUPY = """
import json, sys
seen = []

class WatchCupy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("cupy", "cupyx", "cupy_backends"):
            seen.append(name)
        return None

sys.meta_path.insert(0, WatchCupy())
import numpy as np, xpnet
from xpnet.training import train
rng = np.random.default_rng(0)
x = rng.random((200, 784), dtype=np.float32)
t = rng.integers(0, 10, 200)
for xp in ("numpy", "array_api_strict"):
    net = xpnet.TwoLayerNet(784, 20, 10, xp=xp, dtype="float32", seed=0)
    train(net, x, t, x[:50], t[:50], iters=5, batch_size=20)
{extra}
print(json.dumps({{"seen": seen, "in_modules": "cupy" in sys.modules}}))
"""


def _cupy_imports(extra: str = "") -> dict:
    pytest.importorskip("array_api_strict")
    root = Path(__file__).resolve().parents[2]  # "-c" puts the cwd first: this checkout's xpnet
    done = subprocess.run([sys.executable, "-c", _WATCH_CUPY.format(extra=extra)], cwd=root,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_cpu_training_never_imports_cupy():
    assert _cupy_imports() == {"seen": [], "in_modules": False}


def test_the_cupy_import_watch_sees_an_import():
    """The watch above works where CuPy is not installed: asking whether CUDA is usable tries
    ``import cupy``, and the watch sees it."""
    report = _cupy_imports("from xpnet.backend import cuda_available; cuda_available()")
    assert report["seen"][:1] == ["cupy"]


class SyncCounter:
    """Counts device->host reads at the array type's boundary: every method of the backend's
    array class that hands values to Python or NumPy is wrapped. Only the outermost wrapped
    call counts (``torch.Tensor.__array__`` calls ``numpy()``: one read, not two)."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self._depth = 0

    def wrap(self, fn, name, is_read=None):
        def wrapper(*args, **kwargs):
            if self._depth == 0 and (is_read is None or is_read(*args, **kwargs)):
                self.reads.append(name)
            self._depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth -= 1

        return wrapper


_READS = ("__array__", "__dlpack__", "__float__", "__int__", "__bool__", "__index__",
          "__complex__")
SYNC_BACKENDS = ("array_api_strict-device1", "torch")


def _net_kwargs(name) -> dict:
    """``TwoLayerNet`` keywords for backend ``name``: strict on ``device1``, torch on the CPU."""
    if name == "torch":
        pytest.importorskip("torch")
        return {"xp": "torch", "device": "cpu"}
    strict = pytest.importorskip("array_api_strict")
    return {"xp": "array_api_strict", "device": strict.Device("device1")}


def _count_syncs(name, monkeypatch) -> SyncCounter:
    """A :class:`SyncCounter` installed on backend ``name``. On array-api-strict a read is
    anything that takes values off a non-CPU device (``device1``, the GPU stand-in): the
    dunders above, ``to_device``/``asarray`` to the CPU device. On torch (CPU) a read is any
    of the dunders, ``item``, ``tolist`` or ``numpy``."""
    counter = SyncCounter()
    if name == "torch":
        import torch

        for method in (*_READS, "item", "tolist", "numpy"):
            original = getattr(torch.Tensor, method)
            monkeypatch.setattr(torch.Tensor, method, counter.wrap(original, method))
        return counter
    import array_api_strict as strict
    from array_api_strict._array_object import Array

    cpu = strict.Device("CPU_DEVICE")

    def off_cpu(self, *args, **kwargs):
        return self.device != cpu

    for method in _READS:
        monkeypatch.setattr(Array, method, counter.wrap(getattr(Array, method), method, off_cpu))
    monkeypatch.setattr(Array, "to_device", counter.wrap(
        Array.to_device, "to_device", lambda self, dev, *a, **k: self.device != cpu
        and dev == cpu))
    monkeypatch.setattr(strict, "asarray", counter.wrap(
        strict.asarray, "asarray", lambda obj, *a, device=None, **k: isinstance(obj, Array)
        and obj.device != cpu and device == cpu))
    return counter


@pytest.mark.parametrize("name", SYNC_BACKENDS)
def test_the_sync_counter_sees_every_kind_of_read(name, monkeypatch):
    """Each way of reading a value back counts exactly once (and making arrays counts not)."""
    from xpnet.backend import to_numpy

    kwargs = _net_kwargs(name)
    xp = TwoLayerNet(4, 3, 2, **kwargs, seed=0).xp
    counter = _count_syncs(name, monkeypatch)
    x = xp.asarray(np.arange(3.0), device=kwargs["device"])
    n = xp.sum(x)
    reads = [lambda: float(n), lambda: int(n), lambda: bool(n), lambda: to_numpy(x),
             lambda: range(4)[xp.astype(n, xp.int64)]]
    if name == "torch":
        reads += [lambda: n.item(), lambda: x.tolist(), lambda: np.asarray(x)]
    else:
        reads += [lambda: x.to_device(xp.Device("CPU_DEVICE"))]
    for i, read in enumerate(reads, start=1):
        read()
        assert len(counter.reads) == i, (i, counter.reads)
    xp.asarray(np.ones(3), device=kwargs["device"]) + x  # host->device and device work: no read
    assert len(counter.reads) == len(reads)


@pytest.mark.parametrize("name", SYNC_BACKENDS)
def test_host_syncs_per_evaluation(name, monkeypatch, data):
    """No step reads anything back: the device->host reads of a run are the label checks
    (min and max of each set, 4) and three per evaluation (the losses since the last one, in
    one transfer, and the correct-prediction counts on the train and the test set)."""
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, **_net_kwargs(name), dtype="float32", seed=0)
    counter = _count_syncs(name, monkeypatch)
    history = train(net, x, t, xt, tt, iters=50, batch_size=30, lr=0.5, seed=1)
    assert history.status == "finished"
    assert len(history.epochs) == 6  # steps 1, 11, 21, 31, 41 and the last
    assert len(counter.reads) == 4 + 3 * len(history.epochs), counter.reads


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


def test_sgd_step_updates_what_the_layers_use(xp, rng):
    net = TwoLayerNet(4, 3, 2, xp=xp.namespace, device=xp.device, dtype="float64", seed=0)
    before = {k: xp.to_numpy(v) for k, v in net.params.items()}
    grads = {k: xp.asarray(rng.normal(size=v.shape)) for k, v in before.items()}
    sgd_step(net.params, grads, 0.5)
    for k, v in net.params.items():
        xp.assert_close(v, before[k] - 0.5 * xp.to_numpy(grads[k]), rtol=1e-14)
    xp.assert_close(net.layers["Affine1"].W, xp.to_numpy(net.params["W1"]))


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


# --------------------------------------------------------------------------- issue 17


def test_train_accuracy_is_measured_on_the_whole_training_set(data):
    """With ``eval_samples=None`` the train accuracy covers all training rows (it took as many
    as the test set has: 90 of 300 here)."""
    x, t, xt, tt = data
    t = t.copy()
    t[len(tt):] = (t[len(tt):] + 1) % 3  # rows past the test set's length: all mislabeled
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=30, batch_size=30, lr=0.5, seed=1)
    whole = net.accuracy(net.xp.asarray(x), net.xp.asarray(t))
    assert history.epochs[-1].iteration == 30  # the evaluation after the last step
    assert history.epochs[-1].train_acc == whole
    assert history.train_acc_list[-1] == whole
    head = net.accuracy(net.xp.asarray(x[:len(tt)]), net.xp.asarray(t[:len(tt)]))
    assert head != whole  # the data tell the two apart


@pytest.mark.parametrize("name", SYNC_BACKENDS)
def test_the_whole_training_set_is_evaluated_with_one_host_read(name, monkeypatch, rng):
    """A training set of several evaluation batches (10000 rows each) still costs one read
    for its hit count: the counts are summed on the device."""
    x, t = clusters(rng, 25_000)
    net = TwoLayerNet(20, 16, 3, **_net_kwargs(name), dtype="float32", seed=0)
    counter = _count_syncs(name, monkeypatch)
    history = train(net, x, t, x[:50], t[:50], iters=3, batch_size=30, lr=0.5, seed=1)
    assert [e.iteration for e in history.epochs] == [1, 3]
    assert len(counter.reads) == 4 + 3 * len(history.epochs), counter.reads


def test_a_loss_grown_far_past_its_start_stops_the_run_as_diverged(data):
    """``--lr 1e6``: the loss stays finite but grows by orders of magnitude (it used to run to
    the end and exit 0)."""
    x, t, xt, tt = data
    net = TwoLayerNet(20, 16, 3, dtype="float64", seed=0)  # float32 would overflow to inf
    history = train(net, x, t, xt, tt, iters=200, batch_size=30, lr=1e6, seed=1)
    assert history.status == "diverged"
    assert history.iterations < 200  # stopped at an evaluation, not run to the end
    assert all(math.isfinite(v) for v in history.loss)
    assert np.median(history.loss[-10:]) > 10 * history.loss[0]
    assert history.message.startswith("training diverged: the loss grew from")
    assert "learning rate is the likely cause" in history.message
    assert "lr=1e+06" in history.message


class SpikyNet(TwoLayerNet):
    """Reports a loss 1000 too large at every 7th step (the update is untouched)."""

    def gradient(self, x, t, **kwargs):
        grads = super().gradient(x, t, **kwargs)
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls % 7 == 0:
            self.last_loss = self.last_loss + 1000.0
        return grads


def test_loss_spikes_are_not_divergence(data):
    """The median of the last steps decides: a few huge losses do not stop a healthy run."""
    x, t, xt, tt = data
    net = SpikyNet(20, 16, 3, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=120, batch_size=30, lr=0.5, seed=1)
    assert history.status == "finished", history.message
    assert max(history.loss) > 100 * history.loss[0]
    assert history.final_test_acc > 0.9


def test_nan_in_the_data_is_named_and_the_learning_rate_is_not_blamed(data):
    x, t, xt, tt = data
    x = x.copy()
    x[17, 3] = np.nan
    net = TwoLayerNet(20, 16, 3, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=50, batch_size=300, lr=0.5, seed=1)
    assert history.status == "diverged"
    assert "the loss became nan at iteration 1" in history.message
    assert "training images hold 1 NaN or infinite values: clean the data" in history.message
    assert "a smaller learning rate will not help" in history.message
    assert "try a smaller" not in history.message


def test_unscaled_images_are_named_as_the_likely_cause(data):
    """Pixels of 0-255 (load_mnist(normalize=False)): the fix to name is scaling them."""
    x, t, xt, tt = data
    x = np.abs(x) * 255.0 / np.abs(x).max()
    net = TwoLayerNet(20, 16, 3, dtype="float64", seed=0)
    history = train(net, x, t, xt, tt, iters=200, batch_size=30, lr=100.0, seed=1)
    assert history.status == "diverged", history.loss[::10]
    assert "The training images reach |x| = 255: scale them" in history.message


def test_a_nan_from_the_updates_still_suggests_the_learning_rate(xp, data):
    x, t, xt, tt = data
    net = PoisonedNet(20, 16, 3, xp=xp.namespace, device=xp.device, dtype="float32", seed=0)
    history = train(net, x, t, xt, tt, iters=100, batch_size=30, lr=0.5, seed=1)
    assert "learning rate is the likely cause: try a smaller one than lr=0.5" in history.message


# --------------------------------------------------------------------------- threads (issue 20)

def test_threads_hold_for_the_run_and_are_said_once(xp):
    from xpnet import blas_threads

    x, t = clusters(0, 200)
    net = TwoLayerNet(20, 8, 3, xp=xp.namespace, device=xp.device, dtype="float32")
    data = (xp.asarray(x, "float32"), xp.asarray(t, "uint8"))
    before = blas_threads.get_threads()
    seen: list[int] = []
    step = net.gradient

    def gradient(*args, **kwargs):
        seen.append(blas_threads.get_threads())
        return step(*args, **kwargs)

    net.gradient = gradient
    lines: list[str] = []
    train(net, *data, *data, iters=4, batch_size=50, log=lines.append, threads=3)
    assert set(seen) == {3}
    assert blas_threads.get_threads() == before
    said = [line for line in lines if line.startswith("threads:")]
    if xp.name == "numpy":
        assert said == ["threads: xpnet's NumPy operations on 3 threads (set; 1 BLAS thread "
                        "each)"]
    elif xp.name == "torch":
        assert said == ["threads: 3 PyTorch intra-op threads"]
    else:  # array-api-strict, CuPy: their own runtime or a device
        assert said == []


@pytest.mark.parametrize(("threads", "error", "says"), [
    (0, ValueError, "threads must be >= 1, got 0"),
    (2.0, TypeError, "threads must be an integer >= 1"),
])
def test_bad_thread_counts_are_refused_before_the_run(threads, error, says):
    x, t = clusters(0, 60)
    net = TwoLayerNet(20, 8, 3)
    with pytest.raises(error, match=says):
        train(net, x, t, x, t, iters=2, batch_size=20, threads=threads)
