"""The CuPy fast path without a GPU: CPU paths never import CuPy, and the CUDA-graph step
logic (eager warm-up, one capture, replays, private memory pool) through a stand-in CuPy."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from xpnet import backend
from xpnet.cuda import CudaGraphStep, fused_kernels


def test_cpu_training_never_imports_cupy():
    code = (
        "import sys, numpy as np, xpnet\n"
        "from xpnet.train import train\n"
        "from xpnet.backend import get_namespace\n"
        "from xpnet.cuda import fused_kernels\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.random((200, 784), dtype=np.float32); t = rng.integers(0, 10, 200)\n"
        "net = xpnet.TwoLayerNet(784, 20, 10, dtype='float32', seed=0)\n"
        "train(net, x, t, x[:50], t[:50], iters=5, batch_size=20)\n"
        "assert fused_kernels(get_namespace('numpy')) is None\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fused_kernels_are_none_off_cupy(be):
    assert fused_kernels(be.xp) is None or backend.backend_name(be.xp) == "cupy"


def test_cuda_graph_needs_cupy():
    import xpnet
    from xpnet.train import train

    net = xpnet.TwoLayerNet(4, 3, 2, dtype="float32", seed=0)
    x = np.zeros((8, 4), dtype=np.float32)
    t = np.zeros(8, dtype=np.int64)
    with pytest.raises(ValueError, match="cupy"):
        train(net, x, t, x, t, iters=1, batch_size=2, cuda_graph=True)


class _FakeGraph:
    def __init__(self, ops):
        self.ops, self.launched = ops, 0

    def launch(self, stream=None):
        self.launched += 1
        for op in self.ops:
            op()


class _FakeStream:
    """Records, while capturing, the work a step would queue instead of running it."""

    def __init__(self, non_blocking=False):
        self.capturing = False
        self.recorded = []
        self.entered = 0

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, *exc):
        return False

    def begin_capture(self):
        assert not self.capturing
        self.capturing, self.recorded = True, []

    def end_capture(self):
        assert self.capturing
        self.capturing = False
        return _FakeGraph(self.recorded)


class _FakeCuPy:
    def __init__(self):
        fake = self
        self.allocators = []
        self.pools = []

        class _Pool:
            def __init__(self):
                fake.pools.append(self)

            def malloc(self, n):
                raise AssertionError("not called in this stand-in")

        @contextmanager
        def using_allocator(alloc):
            fake.allocators.append(alloc)
            yield

        self.cuda = type("cuda", (), {"Stream": _FakeStream, "MemoryPool": _Pool,
                                      "using_allocator": staticmethod(using_allocator)})


def test_graph_step_warms_up_captures_once_then_replays():
    cp = _FakeCuPy()
    counter = {"ran": 0}
    state = {"stream": None}

    def fn():
        stream = state["stream"]
        if stream.capturing:  # captured work runs only when the graph is launched
            stream.recorded.append(lambda: counter.__setitem__("ran", counter["ran"] + 1))
        else:
            counter["ran"] += 1
        return "loss-buffer"

    step = CudaGraphStep(fn, warmup=2, cupy=cp)
    state["stream"] = step.stream
    outs = [step() for _ in range(5)]
    assert counter["ran"] == 5  # every call is exactly one real step
    assert step.eager_calls == 2
    assert step.launches == 3
    assert step.graph.launched == 3
    assert outs[2:] == ["loss-buffer"] * 3
    # Every call allocates from the graph's private pool, never the default one.
    assert len(cp.pools) == 1
    assert all(a == cp.pools[0].malloc for a in cp.allocators)
    assert len(cp.allocators) == 5


def test_graph_capture_ends_even_when_the_step_fails():
    cp = _FakeCuPy()

    def fn():
        raise RuntimeError("boom")

    step = CudaGraphStep(fn, warmup=0, cupy=cp)
    with pytest.raises(RuntimeError, match="boom"):
        step()
    assert not step.stream.capturing
