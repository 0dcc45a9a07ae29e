"""The contenders: the same task (TwoLayerNet 784-H-10, SGD on MNIST) written several ways.

Each contender has ``full_run(iters)`` (the whole book run: training plus train/test accuracy
once per epoch; returns the final parameters as host NumPy float64) and ``make_step()`` (a
callable running one training step, for timing blocks of steps). All start from the same
initial weights (``init_params``: NumPy ``default_rng(seed)``, as ``xpnet.TwoLayerNet``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import xpnet
from xpnet.backend import cuda_status, to_numpy

from . import book

LR = 0.1


def init_params(sizes: tuple[int, int, int], seed: int) -> dict[str, np.ndarray]:
    """The initial weights every contender starts from (float64, like TwoLayerNet's)."""
    d_in, d_hidden, d_out = sizes
    rng = np.random.default_rng(seed)
    return {"W1": 0.01 * rng.standard_normal((d_in, d_hidden)), "b1": np.zeros(d_hidden),
            "W2": 0.01 * rng.standard_normal((d_hidden, d_out)), "b2": np.zeros(d_out)}


def host_accuracy(params: dict[str, np.ndarray], x: np.ndarray, t: np.ndarray) -> float:
    """Test accuracy of host parameters, the same way for every contender (float64)."""
    correct = 0
    for start in range(0, x.shape[0], 10_000):
        xb = x[start:start + 10_000].astype(np.float64)
        h = np.maximum(xb @ params["W1"] + params["b1"], 0.0)
        correct += int(np.sum(np.argmax(h @ params["W2"] + params["b2"], axis=1)
                              == t[start:start + 10_000]))
    return correct / x.shape[0]


@dataclass
class Data:
    """MNIST as the book loads it: float32 images in [0, 1] ``(N, 784)``, uint8 labels."""

    x_train: np.ndarray
    t_train: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    _hot: dict[str, np.ndarray] = field(default_factory=dict)

    def one_hot(self, which: str) -> np.ndarray:
        """The book's ``one_hot_label=True`` labels (float64 rows)."""
        if which not in self._hot:
            t = self.t_train if which == "train" else self.t_test
            hot = np.zeros((t.size, 10))
            hot[np.arange(t.size), t] = 1.0
            self._hot[which] = hot
        return self._hot[which]


def synthetic_data(n_train: int, n_test: int, d_in: int, seed: int = 0) -> Data:
    """Random images in [0, 1) and labels, the shapes of MNIST's (no learning signal)."""
    rng = np.random.default_rng(seed)
    return Data(rng.random((n_train, d_in), dtype=np.float32),
                rng.integers(0, 10, n_train).astype(np.uint8),
                rng.random((n_test, d_in), dtype=np.float32),
                rng.integers(0, 10, n_test).astype(np.uint8))


class Contender:
    """One way of training the network."""

    name = "?"
    description = ""
    dtype = "float32"

    def __init__(self, data: Data, sizes: tuple[int, int, int], batch_size: int,
                 seed: int) -> None:
        self.data, self.sizes, self.batch_size, self.seed = data, sizes, batch_size, seed

    def full_run(self, iters: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def make_step(self) -> Callable[[int], None]:
        """``step(i)``: one training step (fresh network); ``sync()`` waits for the device."""
        raise NotImplementedError

    def sync(self) -> None:
        """Wait for queued device work (GPU contenders)."""

    launches_per_step: float | None = None


# --- the book's training script ------------------------------------------------------------

class BookLoop(Contender):
    """The book's training script on ``benchmarks.book``'s TwoLayerNet: ``np.random.choice``
    batches, full backprop (the first layer's ``dx`` too), ``params[k] -= lr * grad[k]``, a
    second ``loss()`` forward per step to log the loss, train and test accuracy over the full
    sets every epoch. One-hot labels."""

    def __init__(self, data: Data, sizes: tuple[int, int, int], batch_size: int, seed: int,
                 dtype: Any) -> None:
        super().__init__(data, sizes, batch_size, seed)
        self.np_dtype = np.dtype(dtype)
        self.dtype = self.np_dtype.name
        self.name = "book-f64 (reference)" if self.dtype == "float64" else "numpy-f32 book-style"
        self.description = ("the book's loop in float64 parameters (float32 images)"
                            if self.dtype == "float64" else
                            "the book's loop with float32 parameters and labels")

    def _setup(self) -> tuple[book.Net, np.ndarray, np.ndarray]:
        params = {k: v.astype(self.np_dtype) for k, v in init_params(self.sizes,
                                                                      self.seed).items()}
        hot = self.data.one_hot("train").astype(self.np_dtype)
        np.random.seed(self.seed)  # noqa: NPY002  (the book's global generator)
        return book.two_layer_net(params), self.data.x_train, hot

    def full_run(self, iters: int) -> dict[str, np.ndarray]:
        net, x, t = self._setup()
        x_test, t_test = self.data.x_test, self.data.one_hot("test").astype(self.np_dtype)
        losses: list[float] = []
        iter_per_epoch = max(x.shape[0] // self.batch_size, 1)
        for i in range(iters):
            book.sgd_iteration(net, x, t, self.batch_size, LR, losses)
            if i % iter_per_epoch == 0:
                net.accuracy(x, t)
                net.accuracy(x_test, t_test)
        return {k: v.astype(np.float64) for k, v in net.params.items()}

    def make_step(self) -> Callable[[int], None]:
        net, x, t = self._setup()
        losses: list[float] = []

        def step(i: int) -> None:
            book.sgd_iteration(net, x, t, self.batch_size, LR, losses)
        return step


# --- xpnet ----------------------------------------------------------------------------------

class XpnetContender(Contender):
    """xpnet through its public API: ``TwoLayerNet`` + ``xpnet.train``."""

    def __init__(self, data: Data, sizes: tuple[int, int, int], batch_size: int, seed: int,
                 backend: str, dtype: str, cuda_graph: bool = False) -> None:
        super().__init__(data, sizes, batch_size, seed)
        self.backend, self.dtype, self.cuda_graph = backend, dtype, cuda_graph
        short = {"numpy": "numpy", "cupy": "cupy", "torch": "torch"}[backend]
        self.name = f"xpnet {short}-{dtype.replace('float', 'f')}" + (" graph" if cuda_graph
                                                                      else "")
        self.description = (f"xpnet.train on {backend} {dtype}"
                            + (", CUDA graph replay" if cuda_graph else ""))
        self._graph_step: Any = None

    def _net(self) -> Any:
        d_in, d_hidden, d_out = self.sizes
        return xpnet.TwoLayerNet(d_in, d_hidden, d_out, xp=self.backend, dtype=self.dtype,
                                 seed=self.seed)

    def full_run(self, iters: int) -> dict[str, np.ndarray]:
        from xpnet.training import train

        net = self._net()
        d = self.data
        train(net, d.x_train, d.t_train, d.x_test, d.t_test, iters=iters,
              batch_size=self.batch_size, lr=LR, seed=self.seed, cuda_graph=self.cuda_graph)
        return {k: to_numpy(v).astype(np.float64) for k, v in net.params.items()}

    def make_step(self) -> Callable[[int], None]:
        # Exactly the trainer's step (xpnet.train uses the same helper,
        # xpnet.training.make_step), on the same per-epoch permutation and take() gather.
        from xpnet.optim import SGD
        from xpnet.training import make_step as _make_step
        from xpnet.training import move_images as _move_images
        from xpnet.training import move_labels as _move_labels

        net = self._net()
        xp, device = net.xp, net.device
        x = _move_images(self.data.x_train, xp, device, net.dtype)
        t = _move_labels(self.data.t_train, xp, device, net.dtype)
        net.lastLayer.check_labels = False
        run, context = _make_step(net, xp, x, t, SGD(lr=LR), self.batch_size,
                                  self.cuda_graph)
        self._context = context
        self._graph_step = getattr(run, "graph_step", None)
        rng = np.random.default_rng(self.seed)
        per = x.shape[0] // self.batch_size
        b = self.batch_size
        state: dict[str, Any] = {}

        def step(i: int) -> None:
            slot = i % per
            with context:  # the order too: on the graph's stream, which never waits for others
                if slot == 0:
                    state["order"] = xp.asarray(rng.permutation(x.shape[0]), device=device)
                run(state["order"][slot * b:(slot + 1) * b])
        return step

    def sync(self) -> None:
        if self.backend == "cupy":
            import cupy

            if self._graph_step is not None:
                self._graph_step.stream.synchronize()
            cupy.cuda.Device().synchronize()


# --- PyTorch eager --------------------------------------------------------------------------

class TorchEager(Contender):
    """PyTorch eager with autograd: ``nn.functional`` layers, ``loss.backward()``, a manual SGD
    update under ``no_grad``, the same per-epoch permutation as xpnet, accuracy every epoch in
    batches of 10000. Losses stay on the device (no ``.item()`` per step)."""

    def __init__(self, data: Data, sizes: tuple[int, int, int], batch_size: int, seed: int,
                 device: str = "cpu") -> None:
        super().__init__(data, sizes, batch_size, seed)
        self.device = device
        self.name = f"torch-{device} eager f32"
        self.description = f"PyTorch {device} eager, autograd, float32"

    def _setup(self) -> tuple[Any, ...]:
        import torch

        dev = torch.device(self.device)
        params = {k: torch.tensor(v, dtype=torch.float32, device=dev, requires_grad=True)
                  for k, v in init_params(self.sizes, self.seed).items()}
        x = torch.from_numpy(self.data.x_train).to(dev)
        t = torch.from_numpy(self.data.t_train.astype(np.int64)).to(dev)
        return torch, dev, params, x, t

    @staticmethod
    def _forward(torch: Any, p: dict[str, Any], x: Any) -> Any:
        h = torch.relu(x @ p["W1"] + p["b1"])
        return h @ p["W2"] + p["b2"]

    def _one(self, torch: Any, p: dict[str, Any], x: Any, t: Any, idx: Any) -> Any:
        xb, tb = x.index_select(0, idx), t.index_select(0, idx)
        loss = torch.nn.functional.cross_entropy(self._forward(torch, p, xb), tb)
        loss.backward()
        with torch.no_grad():
            for v in p.values():
                v -= LR * v.grad
                v.grad = None
        return loss.detach()

    def _accuracy(self, torch: Any, p: dict[str, Any], x: Any, t: Any) -> float:
        with torch.no_grad():
            hits = sum(int((self._forward(torch, p, x[s:s + 10_000]).argmax(1)
                            == t[s:s + 10_000]).sum()) for s in range(0, x.shape[0], 10_000))
        return hits / x.shape[0]

    def full_run(self, iters: int) -> dict[str, np.ndarray]:
        torch, dev, p, x, t = self._setup()
        xt = torch.from_numpy(self.data.x_test).to(dev)
        tt = torch.from_numpy(self.data.t_test.astype(np.int64)).to(dev)
        rng = np.random.default_rng(self.seed)
        per = x.shape[0] // self.batch_size
        b = self.batch_size
        losses = []
        for i in range(iters):
            slot = i % per
            if slot == 0:
                order = torch.from_numpy(rng.permutation(x.shape[0])).to(dev)
            losses.append(self._one(torch, p, x, t, order[slot * b:(slot + 1) * b]))
            if i % per == 0 or i + 1 == iters:
                torch.stack(losses).cpu()
                losses = []
                self._accuracy(torch, p, x, t)
                self._accuracy(torch, p, xt, tt)
        return {k: v.detach().cpu().numpy().astype(np.float64) for k, v in p.items()}

    def make_step(self) -> Callable[[int], None]:
        torch, dev, p, x, t = self._setup()
        rng = np.random.default_rng(self.seed)
        per = x.shape[0] // self.batch_size
        b = self.batch_size
        state: dict[str, Any] = {}

        def step(i: int) -> None:
            slot = i % per
            if slot == 0:
                state["order"] = torch.from_numpy(rng.permutation(x.shape[0])).to(dev)
            self._one(torch, p, x, t, state["order"][slot * b:(slot + 1) * b])
        return step

    def sync(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize()


def torch_available(device: str = "cpu") -> tuple[bool, str]:
    """``(True, "ok")`` where torch imports (and sees a CUDA device for ``cuda``), else why not."""
    try:
        import torch
    except ImportError as exc:
        return False, f"torch is not installed ({exc})"
    if device.startswith("cuda") and not torch.cuda.is_available():
        return False, "torch reports no CUDA device"
    return True, "ok"


def gpu_contenders(data: Data, sizes: tuple[int, int, int], batch_size: int,
                   seed: int) -> tuple[list[Contender], list[str]]:
    """CuPy (eager and CUDA graph) and PyTorch CUDA contenders, or the reasons they are
    skipped. CuPy is imported only when ``cuda_available()`` says it is usable."""
    out: list[Contender] = []
    skipped: list[str] = []
    ok, why = cuda_status()
    if ok:
        out.append(XpnetContender(data, sizes, batch_size, seed, "cupy", "float32"))
        out.append(XpnetContender(data, sizes, batch_size, seed, "cupy", "float32",
                                  cuda_graph=True))
    else:
        skipped.append(f"xpnet cupy-f32 (eager and graph): {why}")
    ok, why = torch_available("cuda")
    if ok:
        out.append(TorchEager(data, sizes, batch_size, seed, device="cuda"))
    else:
        skipped.append(f"torch-cuda eager f32: {why}")
    return out, skipped


def count_launches(contender: Contender, steps: int = 20) -> tuple[float | None, str]:
    """CUDA kernels (and memcpy/memset) per training step, counted by the PyTorch profiler
    (CUPTI traces every kernel of the process, CuPy's included, graph-launched ones too).
    ``(None, why)`` when that is not possible."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError as exc:
        return None, f"torch.profiler is not available ({exc})"
    step = contender.make_step()
    for i in range(5):
        step(i)
    contender.sync()
    try:
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for i in range(5, 5 + steps):
                step(i)
            contender.sync()
    except Exception as exc:  # CUPTI missing or busy
        return None, f"the profiler failed: {type(exc).__name__}: {exc}"
    events = [e for e in prof.events() if getattr(e, "device_type", None) is not None
              and "CUDA" in str(e.device_type)]
    del torch
    if not events:
        return None, "torch.profiler saw no device events (CUPTI did not trace this library)"
    return len(events) / steps, "torch.profiler (CUPTI), device events per step"

